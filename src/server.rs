//! Running the server: open the store, bootstrap a fresh data directory, serve until
//! the shutdown future resolves, then let in-flight requests finish.

use std::future::Future;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::{app, AppState};
use crate::config::Config;
use crate::core::admin::{Admin, FirstRun};
use crate::store::{self, Store};

/// Opens the configured store, creating the data directory for the embedded default.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if config.database_url.starts_with("sqlite://") {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the data directory {}: {e}",
                config.data_dir.display()
            )
        })?;
    }
    Ok(store::open(&config.database_url).await?)
}

/// Serves on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    if let Some(first) = Admin::new(store.clone()).bootstrap().await? {
        let addr = listener.local_addr()?;
        let path = write_credentials(&config.data_dir, &first)?;
        print_welcome(&first, &path, &addr.to_string());
    }
    let state = AppState::new(
        store,
        config.token_lifetime_secs,
        config.auto_register,
        config.max_body_bytes,
    );
    tracing::info!(address = %listener.local_addr()?, "tagd is listening");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!("tagd stopped");
    Ok(())
}

/// Writes the first-run credentials where only the owner can read them.
fn write_credentials(dir: &Path, first: &FirstRun) -> anyhow::Result<std::path::PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("credentials");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(
        file,
        "# Created by tagd on first start. Keep it secret.\ndomain_name = \"{}\"\ndomain_id = \"{}\"\nproject_name = \"{}\"\nproject_id = \"{}\"\nuser_name = \"{}\"\npassword = \"{}\"",
        first.domain.name, first.domain.id, first.project.name, first.project.id, first.user.name, first.password
    )?;
    Ok(path)
}

fn print_welcome(first: &FirstRun, credentials: &Path, addr: &str) {
    println!(
        r#"
tagd: first start. Created domain "{domain}", project "{project}" ({project_id}) and administrator "{user}".
The password is in {credentials} (readable only by you).

Get a token:
  TOKEN=$(curl -si http://{addr}/v3/auth/tokens -H 'Content-Type: application/json' -d '{{"auth":{{"identity":{{"methods":["password"],"password":{{"user":{{"name":"{user}","password":"'"$(sed -n 's/^password = "\(.*\)"/\1/p' {credentials})"'","domain":{{"name":"{domain}"}}}}}}}},"scope":{{"domain":{{"name":"{domain}"}}}}}}}}' | tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p')

Register a disk and tag it through TMS:
  {exe} admin resource add --data-dir {data_dir} --project {project_id} --type disk --id disk-1   (or start with --auto-register)
  curl -s http://{addr}/v1.0/resource-tags/batch-create -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' -d '{{"project_id":"{project_id}","resources":[{{"resource_id":"disk-1","resource_type":"disk"}}],"tags":[{{"key":"ENV","value":"dev"}}]}}'
  curl -s "http://{addr}/v2.0/resources/disk-1/tags?project_id={project_id}&resource_type=disk" -H "X-Auth-Token: $TOKEN"
"#,
        domain = first.domain.name,
        project = first.project.name,
        project_id = first.project.id,
        user = first.user.name,
        credentials = credentials.display(),
        exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "tagd".to_owned()),
        data_dir = credentials
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
