//! `tagd admin domain|project|user|credential`: the identities and their access keys.
//!
//! A created record prints as one tab-separated `ID<TAB>NAME` line (or, for an access
//! key, `access_key = ...` / `secret_key = ...` lines) unless `--output json`: scripts
//! and the SDK test fixtures parse those lines, so they stay as they were.

use std::io::BufRead;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

use super::output::{print_record, print_rows, row, timestamp, Output};
use super::{find_domain, find_user, pick_domain};
use crate::auth::Identity;
use crate::core::admin::Admin;
use crate::core::model::KeyStatus;

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

/// A created record: the historical `ID<TAB>NAME` line, or a JSON object.
fn created(output: Output, id: &str, name: &str) {
    match output {
        Output::Table => println!("{id}\t{name}"),
        Output::Json => print_record(output, &row([("id", json!(id)), ("name", json!(name))])),
    }
}

/// The outcome of a change: a sentence, or a JSON object saying the same.
pub(super) fn done(
    output: Output,
    sentence: &str,
    record: serde_json::Map<String, serde_json::Value>,
) {
    match output {
        Output::Table => println!("{sentence}"),
        Output::Json => print_record(output, &record),
    }
}

pub async fn domain(admin: &Admin, output: Output, command: DomainCommand) -> anyhow::Result<()> {
    match command {
        DomainCommand::Create { name } => {
            let d = admin.create_domain(&name).await?;
            created(output, &d.id, &d.name);
        }
        DomainCommand::List => {
            let rows: Vec<_> = admin
                .list_domains()
                .await?
                .into_iter()
                .map(|d| row([("id", json!(d.id)), ("name", json!(d.name))]))
                .collect();
            print_rows(output, &["id", "name"], &rows);
        }
        DomainCommand::Delete { domain } => {
            let d = find_domain(admin, &domain).await?;
            admin.delete_domain(&d).await?;
            done(
                output,
                &format!("deleted domain {}", d.name),
                row([("deleted_domain", json!(d.name))]),
            );
        }
    }
    Ok(())
}

pub async fn project(admin: &Admin, output: Output, command: ProjectCommand) -> anyhow::Result<()> {
    match command {
        ProjectCommand::Create { domain, name } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let p = admin.create_project(&d, &name).await?;
            created(output, &p.id, &p.name);
        }
        ProjectCommand::List { domain } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let rows: Vec<_> = admin
                .list_projects(&d)
                .await?
                .into_iter()
                .map(|p| row([("id", json!(p.id)), ("name", json!(p.name))]))
                .collect();
            print_rows(output, &["id", "name"], &rows);
        }
        ProjectCommand::Delete { domain, project } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let p = super::find_project(admin, &d, &project).await?;
            admin.delete_project(&p).await?;
            done(
                output,
                &format!("deleted project {}", p.name),
                row([("deleted_project", json!(p.name))]),
            );
        }
    }
    Ok(())
}

pub async fn user(admin: &Admin, output: Output, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create {
            domain,
            admin: is_admin,
            name,
        } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let u = admin
                .create_user(&d, &name, read_password()?, is_admin)
                .await?;
            created(output, &u.id, &u.name);
        }
        UserCommand::List { domain } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let rows: Vec<_> = admin
                .list_users(&d)
                .await?
                .into_iter()
                .map(|u| {
                    row([
                        ("id", json!(u.id)),
                        ("name", json!(u.name)),
                        ("admin", json!(u.is_admin)),
                        ("enabled", json!(u.enabled)),
                    ])
                })
                .collect();
            print_rows(output, &["id", "name", "admin", "enabled"], &rows);
        }
        UserCommand::SetPassword { domain, name } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let u = find_user(admin, &d, &name).await?;
            admin.set_password(&u, read_password()?).await?;
            done(
                output,
                &format!("password of {} changed", u.name),
                row([("password_changed", json!(u.name))]),
            );
        }
        UserCommand::Delete { domain, name } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let u = find_user(admin, &d, &name).await?;
            admin.delete_user(&u).await?;
            done(
                output,
                &format!("deleted user {}", u.name),
                row([("deleted_user", json!(u.name))]),
            );
        }
    }
    Ok(())
}

pub async fn credential(
    admin: &Admin,
    identity: Identity,
    output: Output,
    command: CredentialCommand,
) -> anyhow::Result<()> {
    match command {
        CredentialCommand::Create {
            domain,
            user,
            description,
        } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let u = find_user(admin, &d, &user).await?;
            let issued = identity.create_access_key(&u, &description).await?;
            match output {
                Output::Table => println!(
                    "access_key = {}\nsecret_key = {}",
                    issued.key.access, issued.secret
                ),
                Output::Json => print_record(
                    output,
                    &row([
                        ("access_key", json!(issued.key.access)),
                        ("secret_key", json!(issued.secret)),
                        ("user", json!(u.name)),
                        ("description", json!(issued.key.description)),
                    ]),
                ),
            }
            eprintln!("The secret key is shown only now; store it safely.");
        }
        CredentialCommand::List { domain, user } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let u = find_user(admin, &d, &user).await?;
            let rows: Vec<_> = identity
                .access_keys(&u)
                .await?
                .into_iter()
                .map(|k| {
                    row([
                        ("access_key", json!(k.access)),
                        ("status", json!(k.status.as_str())),
                        ("created_at", json!(timestamp(k.created_at))),
                        ("description", json!(k.description)),
                    ])
                })
                .collect();
            print_rows(
                output,
                &["access_key", "status", "created_at", "description"],
                &rows,
            );
        }
        CredentialCommand::Enable { access } => {
            set_status(&identity, output, &access, KeyStatus::Active).await?;
        }
        CredentialCommand::Disable { access } => {
            set_status(&identity, output, &access, KeyStatus::Inactive).await?;
        }
        CredentialCommand::Delete { access } => {
            permanent(&identity, &access).await?;
            identity.delete_access_key(&access).await?;
            done(
                output,
                &format!("{access} deleted"),
                row([("access_key", json!(access)), ("deleted", json!(true))]),
            );
        }
    }
    Ok(())
}

async fn set_status(
    identity: &Identity,
    output: Output,
    access: &str,
    status: KeyStatus,
) -> anyhow::Result<()> {
    permanent(identity, access).await?;
    identity
        .update_access_key(access, Some(status), None)
        .await?;
    let word = match status {
        KeyStatus::Active => "enabled",
        KeyStatus::Inactive => "disabled",
    };
    done(
        output,
        &format!("{access} {word}"),
        row([
            ("access_key", json!(access)),
            ("status", json!(status.as_str())),
        ]),
    );
    Ok(())
}

/// Checks that `access` names a permanent key (temporary ones expire by themselves).
async fn permanent(identity: &Identity, access: &str) -> anyhow::Result<()> {
    if identity.permanent_key(access).await?.is_none() {
        bail!("there is no permanent access key {access}; see `tagd admin credential list --user NAME`");
    }
    Ok(())
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
