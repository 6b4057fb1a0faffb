//! The command line: `tagd serve`, `tagd admin ...` for the chores of identities, the
//! resource inventory and tags, and `tagd config ...`. Admin commands work on the store
//! directly, so they also work while the server is down; passwords are read from
//! standard input, never argv.
//!
//! One file per command family; this one holds the command tree, the dispatch and the
//! look-ups whose errors say how to find the right name.

mod config;
mod identity;
mod inventory;
mod output;
mod tags;

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Identity;
use crate::config::{Config, ServeArgs};
use crate::core::admin::Admin;
use crate::core::model::{Domain, Project, User};
use crate::core::CoreError;
use crate::server;
use crate::store::Store;

pub use config::{options, reference, show, ConfigCommand, OptionDoc};
pub use identity::{CredentialCommand, DomainCommand, ProjectCommand, UserCommand};
pub use inventory::{FileFormat, ResourceCommand};
pub use output::Output;
pub use tags::{PredefinedTagCommand, TagsCommand};

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
    /// Probe a running tagd: exits 0 when its /readyz (or, with --live, /healthz)
    /// answers 200, 1 otherwise. For container health checks; reads the same options
    /// as `serve` (--listen, --config, TLS) to find the server.
    Healthcheck {
        #[command(flatten)]
        server: ServeArgs,
        /// Probe /healthz (the process serves HTTP) instead of /readyz (the store
        /// can serve requests too).
        #[arg(long)]
        live: bool,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
    /// Manage domains, projects, users, access keys, resources and tags in the store.
    Admin {
        #[command(flatten)]
        store: ServeArgs,
        /// How listings and reports are printed: aligned columns, or JSON for scripts.
        #[arg(long, value_enum, default_value_t, global = true)]
        output: Output,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The effective configuration, and the reference of every option.
    #[command(subcommand)]
    Config(ConfigCommand),
}

impl Cli {
    /// The log settings the command line, environment and configuration file give.
    pub fn log_settings(&self) -> Result<crate::logging::LogSettings, crate::config::ConfigError> {
        let args = match &self.command {
            Command::Serve(args) => args,
            Command::Healthcheck { server, .. } => server,
            Command::Admin { store, .. } => store,
            Command::Config(config::ConfigCommand::Show(args)) => args,
            Command::Config(config::ConfigCommand::Reference) => {
                return Ok(crate::logging::LogSettings::default())
            }
        };
        Config::resolve(args).map(|c| c.logging)
    }
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
    /// The domain's predefined tags (as TMS's /v1.0/predefine_tags manages them).
    #[command(subcommand)]
    PredefinedTag(PredefinedTagCommand),
    /// A project's tags, exported and imported as JSON lines.
    #[command(subcommand)]
    Tags(TagsCommand),
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
        Command::Healthcheck {
            server,
            live,
            timeout_secs,
        } => {
            let config = Config::resolve(&server)?;
            let probe = crate::healthcheck::Probe {
                addr: config.listen,
                https: config.tls.is_some(),
                path: if live { "/healthz" } else { "/readyz" },
                timeout: Duration::from_secs(timeout_secs.max(1)),
            };
            println!("{}", crate::healthcheck::run(&probe).await?);
            Ok(())
        }
        Command::Config(command) => config::run(command),
        Command::Admin {
            store,
            output,
            command,
        } => match command {
            AdminCommand::Credential(command) => {
                let (config, store) = configured_store(&store).await?;
                let identity = Identity::new(
                    store.clone(),
                    config.token_lifetime_secs,
                    Arc::new(server::open_vault(&config, &store).await?),
                    Duration::from_secs(config.signature_window_secs),
                    Duration::from_millis(config.credential_cache_ms),
                );
                identity::credential(&Admin::new(store), identity, output, command).await
            }
            AdminCommand::Identity(command) => {
                let (_, store) = configured_store(&store).await?;
                inventory(&Admin::new(store), output, command).await
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

/// Runs a command on identities, the inventory or tags.
async fn inventory(admin: &Admin, output: Output, command: InventoryCommand) -> anyhow::Result<()> {
    match command {
        InventoryCommand::Domain(c) => identity::domain(admin, output, c).await,
        InventoryCommand::Project(c) => identity::project(admin, output, c).await,
        InventoryCommand::User(c) => identity::user(admin, output, c).await,
        InventoryCommand::Resource(c) => inventory::resource(admin, output, c).await,
        InventoryCommand::PredefinedTag(c) => tags::predefined(admin, output, c).await,
        InventoryCommand::Tags(c) => tags::tags(admin, output, c).await,
        InventoryCommand::Generate {
            domain,
            project,
            resources,
            seed,
            resource_type,
        } => {
            inventory::generate(
                admin,
                domain.as_deref(),
                &project,
                resources,
                seed,
                &resource_type,
            )
            .await
        }
    }
}

/// A not-found error with the command that lists what exists; other errors as they are.
fn hint(e: CoreError, listing: impl FnOnce() -> String) -> anyhow::Error {
    match e {
        CoreError::NotFound { .. } => anyhow::anyhow!("{e}; see `{}`", listing()),
        e => e.into(),
    }
}

async fn find_domain(admin: &Admin, id_or_name: &str) -> anyhow::Result<Domain> {
    admin
        .domain(id_or_name)
        .await
        .map_err(|e| hint(e, || "tagd admin domain list".to_owned()))
}

/// The domain a command names, or the only one there is.
async fn pick_domain(admin: &Admin, domain: Option<&str>) -> anyhow::Result<Domain> {
    if let Some(d) = domain {
        return find_domain(admin, d).await;
    }
    let mut all = admin.list_domains().await?;
    match all.len() {
        1 => Ok(all.remove(0)),
        0 => bail!("the store has no domain yet; start `tagd serve` once or run `tagd admin domain create NAME`"),
        _ => bail!("the store has several domains; name one with --domain (see `tagd admin domain list`)"),
    }
}

async fn find_project(admin: &Admin, domain: &Domain, id_or_name: &str) -> anyhow::Result<Project> {
    admin.project(domain, id_or_name).await.map_err(|e| {
        hint(e, || {
            format!("tagd admin project list --domain {}", domain.name)
        })
    })
}

async fn find_user(admin: &Admin, domain: &Domain, name: &str) -> anyhow::Result<User> {
    admin.user(domain, name).await.map_err(|e| {
        hint(e, || {
            format!("tagd admin user list --domain {}", domain.name)
        })
    })
}

/// The id of the project a command names, if it names one.
async fn project_id(
    admin: &Admin,
    domain: &Domain,
    project: Option<&str>,
) -> anyhow::Result<Option<String>> {
    Ok(match project {
        Some(p) => Some(find_project(admin, domain, p).await?.id),
        None => None,
    })
}
