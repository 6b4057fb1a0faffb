//! Running the server: open the store, bootstrap a fresh data directory, serve until
//! the shutdown future resolves, then let in-flight requests finish.

use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::api::{app, AppState};
use crate::auth::vault::Vault;
use crate::config::{Config, ConnectionLimits};
use crate::core::admin::{Admin, FirstRun};
use crate::metrics::{Exposition, Metrics};
use crate::store::metered::Metered;
use crate::store::{self, ProjectTotals, Store};

/// Opens the configured store, creating the data directory first (mode 0700: it holds
/// the first-run credentials and the server key, and the embedded store's password
/// hashes and tags), whichever store is configured. An existing directory that others
/// may read or enter is made private, with a warning (D82).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let dir = &config.data_dir;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                anyhow::anyhow!("cannot create the data directory {}: {e}", dir.display())
            })?;
    } else if let Ok(meta) = std::fs::metadata(dir) {
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() && mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "the data directory {} is open to other users (mode {mode:o}) and cannot be made private: {e}",
                        dir.display()
                    )
                })?;
            tracing::warn!(
                path = %dir.display(),
                was = format!("{mode:o}"),
                now = format!("{:o}", mode & 0o700),
                "made the data directory private"
            );
        }
    }
    Ok(store::open(&config.database_url, config.database_pool).await?)
}

/// The server key: given in the configuration, or kept in its file. The store records
/// the key's fingerprint the first time; a process with another key (a replica or an
/// admin command started without `TAGD_SERVER_KEY`, say) refuses to run rather than
/// seal secrets no one else can open. A missing key file is created only for a store
/// that has never had a key.
pub async fn open_vault(config: &Config, store: &Arc<dyn Store>) -> anyhow::Result<Vault> {
    let recorded = store.setting(store::SERVER_KEY_FINGERPRINT).await?;
    let vault = match (&config.server_key, &recorded) {
        (Some(key), _) => Vault::from_hex(&key.0)?,
        (None, None) => Vault::open_or_create(&config.server_key_file)?,
        (None, Some(_)) => Vault::open_existing(&config.server_key_file).map_err(|e| {
            anyhow::anyhow!(
                "{e}; this store's access keys are sealed with a server key: give it with TAGD_SERVER_KEY or --server-key-file"
            )
        })?,
    };
    let stored = store
        .claim_setting(store::SERVER_KEY_FINGERPRINT, vault.fingerprint())
        .await?;
    if stored != vault.fingerprint() {
        anyhow::bail!(
            "the server key is not the one this store's access keys are sealed with (fingerprint {} instead of {stored}); give the right key with TAGD_SERVER_KEY or --server-key-file",
            vault.fingerprint()
        );
    }
    Ok(vault)
}

/// Serves on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // A bad certificate stops the start before the store is touched.
    let tls = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
    let store = open_store(&config).await?;
    first_run(&store, &config, &listener.local_addr()?.to_string()).await?;
    let vault = open_vault(&config, &store).await?;
    // Bound before serving, so a taken admin port stops the start.
    let admin_listener = match config.admin_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (admin_listen): {e}"))?,
        ),
        None => None,
    };
    // Only now: the writer builds the tag index before its next write, and the start's
    // own writes (first run, the server key's fingerprint) must not wait for that.
    store.prepare_for_queries();
    let store: Arc<dyn Store> = Arc::new(Metered::new(store));
    let state = AppState::new(store, &config, Arc::new(vault));
    // The admin listener has nothing in flight worth finishing: it stops with the server.
    let admin = match admin_listener {
        Some(listener) => {
            tracing::info!(address = %listener.local_addr()?, "metrics are served at /metrics");
            let router = admin_app(state.metrics.clone(), state.store.clone());
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "the admin listener stopped");
                }
            }))
        }
        None => None,
    };
    tracing::info!(address = %listener.local_addr()?, https = tls.is_some(), "tagd is listening");
    let metrics = state.metrics.clone();
    serve_http(
        listener,
        tls,
        app(state),
        &config.connections,
        metrics,
        shutdown,
    )
    .await;
    if let Some(admin) = admin {
        admin.abort();
    }
    tracing::info!("tagd stopped");
    Ok(())
}

/// The admin listener's application: `GET /metrics` in the Prometheus text format, and
/// 404 for anything else. Kept off the public router so that metrics (which name
/// projects and domains) are reachable only where the operator chose to expose them.
pub fn admin_app(metrics: Arc<Metrics>, store: Arc<dyn Store>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || scrape(metrics.clone(), store.clone())),
    )
}

/// One scrape: the HTTP counters, the store's instruments, and the per-project totals
/// read from the store now (a failed read is logged and leaves those gauges out).
async fn scrape(metrics: Arc<Metrics>, store: Arc<dyn Store>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let totals = store.project_totals().await;
    let mut out = Exposition::new();
    metrics.encode(&mut out);
    store.metrics().encode(&mut out);
    match totals {
        Ok(totals) => {
            for (name, help, value) in [
                (
                    "tagd_project_resources",
                    "Registered resources per project (project \"\": a global type's resources).",
                    (|t: &ProjectTotals| t.resources) as fn(&ProjectTotals) -> u64,
                ),
                (
                    "tagd_project_tags",
                    "Tags on the resources of each project (system tags not counted).",
                    |t: &ProjectTotals| t.tags,
                ),
            ] {
                out.family(name, help, "gauge");
                for t in &totals {
                    out.sample(
                        name,
                        &[("domain", &t.domain_id), ("project", &t.project_id)],
                        value(t),
                    );
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "could not count resources and tags per project"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        out.finish(),
    )
        .into_response()
}

/// Accepts connections and serves HTTP/1.1 (over TLS when `tls` is set) on each until
/// `shutdown` resolves, then stops accepting and gives in-flight requests
/// `limits.shutdown_grace` to finish.
///
/// Driven here rather than by `axum::serve` for the limits that protect the server from
/// its clients: a head must arrive within `header_read_timeout` (a slow client cannot
/// hold a connection open by trickling bytes; the TLS handshake gets as long), heads
/// larger than `max_header_bytes` or with more than `max_headers` headers get 431, and
/// at most `max_connections` are served at once (the rest wait in the kernel's accept
/// queue).
async fn serve_http(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    limits: &ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let handshake_timeout = limits.header_read_timeout;
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was
                    // accepted: wait a little instead of spinning.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        match &tls {
            None => {
                let connection =
                    graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    run_connection(connection, &metrics).await;
                    drop(slot);
                });
            }
            Some(acceptor) => {
                // The handshake runs in the connection's task, so a slow or silent
                // client holds only its own slot, never the accept loop.
                let handshake = acceptor.accept(stream);
                let watcher = graceful.watcher();
                let http = http.clone();
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(handshake_timeout, handshake).await {
                        Ok(Ok(stream)) => {
                            let connection =
                                watcher.watch(http.serve_connection(TokioIo::new(stream), service));
                            run_connection(connection, &metrics).await;
                        }
                        Ok(Err(e)) => {
                            metrics.connection_refused("tls_handshake_failed");
                            tracing::debug!(error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics.connection_refused("tls_handshake_timeout");
                            tracing::debug!("TLS handshake timed out");
                        }
                    }
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(grace = ?limits.shutdown_grace, "requests still running at shutdown were cut off");
        }
    }
}

/// Serves one connection to its end. A connection hyper closed before its request
/// reached the router is counted: those never pass the middleware, so the request
/// counters cannot see them. Other endings (the client went away) are only logged.
async fn run_connection(
    connection: impl Future<Output = Result<(), hyper::Error>>,
    metrics: &Metrics,
) {
    let Err(e) = connection.await else { return };
    let reason = if e.is_parse_too_large() {
        Some("head_too_large")
    } else if e.is_timeout() {
        Some("head_timeout")
    } else if e.is_parse() {
        Some("malformed_head")
    } else {
        None
    };
    if let Some(reason) = reason {
        metrics.connection_refused(reason);
    }
    tracing::debug!(error = %e, reason, "connection ended with an error");
}

/// Initialises an empty store so that its administrator can never be locked out: the
/// credentials are on disk (as `credentials.new`) before the identity is committed, and
/// renamed to `credentials` after. A start that finds `credentials.new` finishes or
/// discards the interrupted first run.
async fn first_run(store: &Arc<dyn Store>, config: &Config, addr: &str) -> anyhow::Result<()> {
    let dir = config.data_dir.as_path();
    let pending = dir.join("credentials.new");
    let done = dir.join("credentials");
    if pending.exists() {
        let text = std::fs::read_to_string(&pending)?;
        let domain_id = text
            .lines()
            .find_map(|l| l.strip_prefix("domain_id = \""))
            .and_then(|r| r.strip_suffix('"'))
            .unwrap_or_default();
        if !domain_id.is_empty() && store.domain(domain_id).await?.is_some() && !done.exists() {
            std::fs::rename(&pending, &done)?;
            tracing::warn!(path = %done.display(), "finished an interrupted first start");
        } else {
            std::fs::remove_file(&pending)?;
        }
    }
    let admin = Admin::new(store.clone());
    let Some(first) = admin.prepare_first_run().await? else {
        return Ok(());
    };
    refuse_another_stores_files(store, config).await?;
    write_private_file(&pending, &credentials_text(&first))?;
    if admin.commit_first_run(&first).await? {
        std::fs::rename(&pending, &done)?;
        std::fs::File::open(dir)?.sync_all()?;
        print_welcome(&first, &done, addr);
    } else {
        // Another process sharing the store initialised it first.
        std::fs::remove_file(&pending)?;
    }
    Ok(())
}

/// Refuses a first start on a store that has never started while the data directory
/// holds the credentials or the server key made for another one: the database URL is
/// likely wrong, or the database was recreated, and a first start would overwrite the
/// credentials of the store they belong to (D84). A store that did start once (it
/// records its server key's fingerprint) and has lost every domain since is initialised
/// again as before.
async fn refuse_another_stores_files(
    store: &Arc<dyn Store>,
    config: &Config,
) -> anyhow::Result<()> {
    if store
        .setting(store::SERVER_KEY_FINGERPRINT)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let dir = &config.data_dir;
    let mut found = vec![dir.join("credentials")];
    // Only the key tagd keeps in the data directory: a key given in the environment or
    // a file elsewhere is the operator's, provisioned on purpose.
    if config.server_key.is_none() && config.server_key_file == dir.join("server.key") {
        found.push(config.server_key_file.clone());
    }
    found.retain(|f| f.exists());
    if found.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = found.iter().map(|f| f.display().to_string()).collect();
    anyhow::bail!(
        "the data directory {} holds {} made for another store, but the database at {} has never been started: is --database-url right, or was the database recreated? No identity was created. Point tagd at the store these files belong to; or, to start afresh on this database, move {} out of {} first",
        dir.display(),
        names.join(" and "),
        store::redact_url(&config.database_url),
        names.join(" and "),
        dir.display()
    )
}

fn credentials_text(first: &FirstRun) -> String {
    format!(
        "# Created by tagd on first start. Keep it secret.\ndomain_name = \"{}\"\ndomain_id = \"{}\"\nproject_name = \"{}\"\nproject_id = \"{}\"\nuser_name = \"{}\"\npassword = \"{}\"\n",
        first.domain.name, first.domain.id, first.project.name, first.project.id, first.user.name, first.password
    )
}

/// Writes a file only the owner can read, and syncs it to disk.
fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn print_welcome(first: &FirstRun, credentials: &Path, addr: &str) {
    println!(
        r#"
tagd: first start. Created domain "{domain}", project "{project}" ({project_id}) and administrator "{user}".
The password is in {credentials} (readable only by you).

Get a token:
  TOKEN=$(curl -si http://{addr}/v3/auth/tokens -H 'Content-Type: application/json' -d '{{"auth":{{"identity":{{"methods":["password"],"password":{{"user":{{"name":"{user}","password":"'"$(sed -n 's/^password = "\(.*\)"/\1/p' {credentials})"'","domain":{{"name":"{domain}"}}}}}}}},"scope":{{"domain":{{"name":"{domain}"}}}}}}}}' | tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p')

Register a disk and tag it through TMS:
  {exe} admin --data-dir {data_dir} resource add --project {project_id} --type disk --id disk-1   (or start with --auto-register)
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

/// Installs the SIGINT and SIGTERM handlers now and returns a future that
/// resolves on either.
///
/// The handlers are registered before the caller binds its listener: a lazily
/// registered handler (one created on first poll) leaves a window in which the
/// process already answers requests but a SIGTERM still kills it outright.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutdown requested; finishing in-flight requests");
    })
}
