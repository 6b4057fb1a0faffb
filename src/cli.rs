//! The command line: `tagd serve`, and `tagd admin ...` for the chores of identities
//! and the resource inventory. Admin commands work on the store directly, so they also
//! work while the server is down; passwords are read from standard input, never argv.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Identity;
use crate::config::{Config, ServeArgs};
use crate::core::admin::{Admin, ResourceSpec};
use crate::core::model::Domain;
use crate::core::model::KeyStatus;
use crate::server;
use crate::store::{ResourceFilter, Store};

#[derive(Debug, Parser)]
#[command(
    name = "tagd",
    version,
    about = "A resource-tag service compatible with the Huawei Cloud tagging APIs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage domains, projects, users and resources in the store.
    Admin {
        #[command(flatten)]
        store: ServeArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    #[command(flatten)]
    Identity(InventoryCommand),
    /// Access keys (AK/SK) of users, for requests signed as the SDKs sign them.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Copy a whole deployment from one store to another, e.g. SQLite to PostgreSQL.
    ///
    /// Copies identities (with password hashes), tokens, access keys, settings,
    /// resources (keeping their row ids), tags, system tags and predefined tags, in
    /// any direction: sqlite:// or postgres:// on either side. Both schemas are first
    /// brought to this tagd's version. The target is written in one transaction and
    /// committed only when every table's row count matches the source's, so a failed
    /// copy leaves it as it was. Ignores the configured store (--database-url).
    ///
    /// Access-key secrets stay sealed with the source's server key: start tagd on the
    /// target with the same key (its server.key file, or TAGD_SERVER_KEY). Stop tagd on
    /// the target while copying.
    CopyStore {
        /// The store to read: sqlite://PATH or postgres://USER@HOST:PORT/DATABASE.
        #[arg(long)]
        from: String,
        /// The store to write (created if a SQLite file does not exist; a PostgreSQL
        /// database must exist).
        #[arg(long)]
        to: String,
        /// Replace whatever the target holds; without it a target with any row is
        /// refused. It is emptied in the copy's own transaction.
        #[arg(long)]
        force: bool,
    },
    /// Write a consistent snapshot of the SQLite store to FILE, safe while tagd serves.
    ///
    /// The snapshot holds every write committed before it started; writes go on while it
    /// is taken. FILE is a complete SQLite database (no -wal beside it), written under a
    /// temporary name in FILE's directory, synced, then renamed, so FILE is never half
    /// written. Keep the server key file with it: the access keys' secrets are sealed
    /// with that key. For PostgreSQL, use pg_dump.
    Backup {
        /// The backup file to write.
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Replace the SQLite store's database with a backup made by `tagd admin backup`.
    ///
    /// FILE must pass SQLite's integrity check and be a tagd database of a schema this
    /// tagd knows. Refused while any tagd process (server or admin command) uses the
    /// store: stop tagd first. Only the database is replaced; the server key file and
    /// credentials stay as they are, and tagd starts only with the server key the
    /// backup's access keys were sealed with.
    Restore {
        /// The backup file to restore.
        file: PathBuf,
    },
}

/// Commands on identities and the inventory, which need only the store.
#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Domains (accounts).
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Projects of a domain.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Users of a domain.
    #[command(subcommand)]
    User(UserCommand),
    /// The resource inventory: only registered resources can be tagged.
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Load reproducible synthetic disks with five tags each, for benchmarks.
    Generate {
        #[arg(long)]
        domain: Option<String>,
        /// Project id or name.
        #[arg(long)]
        project: String,
        #[arg(long, default_value_t = 1_000_000)]
        resources: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Resource type to generate.
        #[arg(long = "type", default_value = "disk")]
        resource_type: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Create an access key; the secret key is printed once and never again.
    Create {
        #[arg(long)]
        domain: Option<String>,
        /// The user's name.
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List a user's access keys.
    List {
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        user: String,
    },
    /// Let an access key sign requests again.
    Enable {
        access: String,
    },
    /// Stop an access key from signing requests.
    Disable {
        access: String,
    },
    Delete {
        access: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    Create {
        name: String,
    },
    List,
    /// Delete a domain with everything in it.
    Delete {
        domain: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    Create {
        /// Domain id or name (optional when the store has one domain).
        #[arg(long)]
        domain: Option<String>,
        name: String,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    /// Delete a project with its resources and tags.
    Delete {
        #[arg(long)]
        domain: Option<String>,
        project: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from the first line of standard input.
    Create {
        #[arg(long)]
        domain: Option<String>,
        /// Make the user an administrator of its domain.
        #[arg(long)]
        admin: bool,
        name: String,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    /// Set a user's password from the first line of standard input.
    SetPassword {
        #[arg(long)]
        domain: Option<String>,
        name: String,
    },
    Delete {
        #[arg(long)]
        domain: Option<String>,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// Register one resource.
    Add {
        #[arg(long)]
        domain: Option<String>,
        /// Project id or name (omit for global resource types).
        #[arg(long)]
        project: Option<String>,
        #[arg(long = "type")]
        resource_type: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Register resources from a JSON array or a CSV file with the header
    /// `project_id,resource_type,resource_id,name`.
    Import {
        #[arg(long)]
        domain: Option<String>,
        file: PathBuf,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        project: Option<String>,
        #[arg(long = "type")]
        resource_type: Option<String>,
    },
    /// Remove one resource and its tags.
    Remove {
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        project: Option<String>,
        #[arg(long = "type")]
        resource_type: String,
        #[arg(long)]
        id: String,
    },
}

impl Cli {
    /// The log settings the command line, environment and configuration file give.
    pub fn log_settings(&self) -> Result<crate::logging::LogSettings, crate::config::ConfigError> {
        let args = match &self.command {
            Command::Serve(args) => args,
            Command::Admin { store, .. } => store,
        };
        Config::resolve(args).map(|c| c.logging)
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = Config::resolve(&args)?;
            let shutdown =
                server::shutdown_signal().context("cannot install the signal handlers")?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            server::run(config, listener, shutdown).await
        }
        Command::Admin { store, command } => match command {
            AdminCommand::Credential(command) => {
                let (config, store) = configured_store(&store).await?;
                let identity = Identity::new(
                    store.clone(),
                    config.token_lifetime_secs,
                    Arc::new(server::open_vault(&config, &store).await?),
                    Duration::from_secs(config.signature_window_secs),
                    Duration::from_millis(config.credential_cache_ms),
                );
                credential(Admin::new(store), identity, command).await
            }
            AdminCommand::Identity(command) => {
                let (_, store) = configured_store(&store).await?;
                admin(Admin::new(store), command).await
            }
            // It names its own two stores and opens no other.
            AdminCommand::CopyStore { from, to, force } => {
                let summary = crate::store::copy::copy_store(&from, &to, force).await?;
                println!("{summary}");
                Ok(())
            }
            // Neither opens the store as a store: that would create and migrate it.
            AdminCommand::Backup { file, force } => {
                let config = Config::resolve(&store)?;
                let db = crate::store::backup::sqlite_path(&config.database_url, "backup")?;
                let summary = tokio::task::spawn_blocking(move || {
                    crate::store::backup::backup(&db, &file, force)
                })
                .await??;
                println!("{summary}");
                Ok(())
            }
            AdminCommand::Restore { file } => {
                let config = Config::resolve(&store)?;
                let db = crate::store::backup::sqlite_path(&config.database_url, "restore")?;
                let key = configured_key_fingerprint(&config);
                let (summary, notes) = tokio::task::spawn_blocking(move || {
                    crate::store::backup::restore(&file, &db, key.as_deref())
                })
                .await??;
                println!("{summary}");
                for note in notes {
                    println!("{note}");
                }
                Ok(())
            }
        },
    }
}

/// The store the configuration names, opened (created and migrated if need be).
async fn configured_store(args: &ServeArgs) -> anyhow::Result<(Config, Arc<dyn Store>)> {
    let config = Config::resolve(args)?;
    let store = server::open_store(&config).await?;
    Ok((config, store))
}

/// The fingerprint of the server key tagd would start with, if there is one yet: what
/// `restore` compares with the key a backup's access keys are sealed with.
fn configured_key_fingerprint(config: &Config) -> Option<String> {
    use crate::auth::vault::Vault;
    let vault = match &config.server_key {
        Some(key) => Vault::from_hex(&key.0).ok()?,
        None => Vault::open_existing(&config.server_key_file).ok()?,
    };
    Some(vault.fingerprint().to_owned())
}

/// The domain a command names, or the only one there is.
async fn pick_domain(admin: &Admin, domain: Option<&str>) -> anyhow::Result<Domain> {
    if let Some(d) = domain {
        return Ok(admin.domain(d).await?);
    }
    let mut all = admin.list_domains().await?;
    match all.len() {
        1 => Ok(all.remove(0)),
        0 => bail!("the store has no domain yet; start `tagd serve` once or run `tagd admin domain create NAME`"),
        _ => bail!("the store has several domains; name one with --domain"),
    }
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input; pipe it in, e.g. `printf '%s\\n' \"$PW\" | tagd admin user create ...`");
    }
    Ok(password)
}

async fn project_id(
    admin: &Admin,
    domain: &Domain,
    project: Option<&str>,
) -> anyhow::Result<Option<String>> {
    Ok(match project {
        Some(p) => Some(admin.project(domain, p).await?.id),
        None => None,
    })
}

async fn credential(
    admin: Admin,
    identity: Identity,
    command: CredentialCommand,
) -> anyhow::Result<()> {
    match command {
        CredentialCommand::Create {
            domain,
            user,
            description,
        } => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            let u = admin.user(&d, &user).await?;
            let issued = identity.create_access_key(&u, &description).await?;
            println!(
                "access_key = {}\nsecret_key = {}",
                issued.key.access, issued.secret
            );
            eprintln!("The secret key is shown only now; store it safely.");
        }
        CredentialCommand::List { domain, user } => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            let u = admin.user(&d, &user).await?;
            for k in identity.access_keys(&u).await? {
                println!("{}\t{}\t{}", k.access, k.status.as_str(), k.description);
            }
        }
        CredentialCommand::Enable { access } => {
            permanent(&identity, &access).await?;
            identity
                .update_access_key(&access, Some(KeyStatus::Active), None)
                .await?;
            println!("{access} enabled");
        }
        CredentialCommand::Disable { access } => {
            permanent(&identity, &access).await?;
            identity
                .update_access_key(&access, Some(KeyStatus::Inactive), None)
                .await?;
            println!("{access} disabled");
        }
        CredentialCommand::Delete { access } => {
            permanent(&identity, &access).await?;
            identity.delete_access_key(&access).await?;
            println!("{access} deleted");
        }
    }
    Ok(())
}

/// Checks that `access` names a permanent key (temporary ones expire by themselves).
async fn permanent(identity: &Identity, access: &str) -> anyhow::Result<()> {
    if identity.permanent_key(access).await?.is_none() {
        bail!("there is no permanent access key {access}; see `tagd admin credential list --user NAME`");
    }
    Ok(())
}

async fn admin(admin: Admin, command: InventoryCommand) -> anyhow::Result<()> {
    match command {
        InventoryCommand::Generate {
            domain,
            project,
            resources,
            seed,
            resource_type,
        } => {
            crate::core::tagging::known_type("--type", &resource_type)?;
            let d = pick_domain(&admin, domain.as_deref()).await?;
            let p = admin.project(&d, &project).await?;
            let started = std::time::Instant::now();
            let mut last = 0;
            crate::datagen::generate(
                admin.store(),
                &d.id,
                &p.id,
                &resource_type,
                resources,
                seed,
                2_000,
                |done| {
                    if done - last >= 100_000 || done == resources {
                        eprintln!("{done} / {resources} resources ({:.0?})", started.elapsed());
                        last = done;
                    }
                },
            )
            .await?;
            println!(
                "generated {resources} resources with {} tags in {:.1?}",
                resources * 5,
                started.elapsed()
            );
        }
        InventoryCommand::Domain(DomainCommand::Create { name }) => {
            let d = admin.create_domain(&name).await?;
            println!("{}\t{}", d.id, d.name);
        }
        InventoryCommand::Domain(DomainCommand::List) => {
            for d in admin.list_domains().await? {
                println!("{}\t{}", d.id, d.name);
            }
        }
        InventoryCommand::Domain(DomainCommand::Delete { domain }) => {
            let d = admin.domain(&domain).await?;
            admin.delete_domain(&d).await?;
            println!("deleted domain {}", d.name);
        }
        InventoryCommand::Project(ProjectCommand::Create { domain, name }) => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            let p = admin.create_project(&d, &name).await?;
            println!("{}\t{}", p.id, p.name);
        }
        InventoryCommand::Project(ProjectCommand::List { domain }) => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            for p in admin.list_projects(&d).await? {
                println!("{}\t{}", p.id, p.name);
            }
        }
        InventoryCommand::Project(ProjectCommand::Delete { domain, project }) => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            let p = admin.project(&d, &project).await?;
            admin.delete_project(&p).await?;
            println!("deleted project {}", p.name);
        }
        InventoryCommand::User(UserCommand::Create {
            domain,
            admin: is_admin,
            name,
        }) => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            let u = admin
                .create_user(&d, &name, read_password()?, is_admin)
                .await?;
            println!("{}\t{}", u.id, u.name);
        }
        InventoryCommand::User(UserCommand::List { domain }) => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            for u in admin.list_users(&d).await? {
                println!(
                    "{}\t{}\t{}",
                    u.id,
                    u.name,
                    if u.is_admin { "admin" } else { "" }
                );
            }
        }
        InventoryCommand::User(UserCommand::SetPassword { domain, name }) => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            let u = admin.user(&d, &name).await?;
            admin.set_password(&u, read_password()?).await?;
            println!("password of {} changed", u.name);
        }
        InventoryCommand::User(UserCommand::Delete { domain, name }) => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            let u = admin.user(&d, &name).await?;
            admin.delete_user(&u).await?;
            println!("deleted user {}", u.name);
        }
        InventoryCommand::Resource(ResourceCommand::Add {
            domain,
            project,
            resource_type,
            id,
            name,
        }) => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            let spec = ResourceSpec {
                project_id: project_id(&admin, &d, project.as_deref()).await?,
                resource_type,
                resource_id: id,
                name,
            };
            let created = admin.register(&d, &[spec]).await?;
            println!(
                "{}",
                if created == 1 {
                    "registered"
                } else {
                    "already registered; name updated"
                }
            );
        }
        InventoryCommand::Resource(ResourceCommand::Import { domain, file }) => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            let specs = read_specs(&file)?;
            let created = admin.register(&d, &specs).await?;
            println!("{} resources read, {created} newly registered", specs.len());
        }
        InventoryCommand::Resource(ResourceCommand::List {
            domain,
            project,
            resource_type,
        }) => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            let filter = ResourceFilter {
                domain_id: Some(d.id.clone()),
                project_id: project_id(&admin, &d, project.as_deref()).await?,
                resource_type,
                limit: None,
                offset: 0,
            };
            for r in admin.list(&filter).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    r.at.project_id, r.at.resource_type, r.at.resource_id, r.name
                );
            }
        }
        InventoryCommand::Resource(ResourceCommand::Remove {
            domain,
            project,
            resource_type,
            id,
        }) => {
            let d = pick_domain(&admin, domain.as_deref()).await?;
            let spec = ResourceSpec {
                project_id: project_id(&admin, &d, project.as_deref()).await?,
                resource_type,
                resource_id: id,
                name: None,
            };
            let removed = admin.remove(&d, &[spec]).await?;
            if removed == 0 {
                bail!("no such resource is registered");
            }
            println!("removed");
        }
    }
    Ok(())
}

/// Reads resource specs from a `.json` array or a CSV file.
fn read_specs(path: &std::path::Path) -> anyhow::Result<Vec<ResourceSpec>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON array of resources", path.display()));
    }
    crate::core::admin::parse_resource_csv(&text).with_context(|| format!("{}", path.display()))
}
