// The HTTP suite, shared by two test crates: `tests/api` (the embedded SQLite store)
// and `tests/api_postgres` (a throwaway PostgreSQL database per server). Each crate
// root defines `BACKEND` and includes this file; module paths are written from either
// root's directory, hence `../api/`.

#[path = "../api/admin.rs"]
mod admin;
#[path = "../api/dis.rs"]
mod dis;
#[path = "../api/dis_reads.rs"]
mod dis_reads;
#[path = "../api/fabric.rs"]
mod fabric;
#[path = "../api/fabric_reads.rs"]
mod fabric_reads;
#[path = "../api/health.rs"]
mod health;
#[path = "../api/iam.rs"]
mod iam;
#[path = "../api/openapi.rs"]
mod openapi;
#[path = "../api/persistence.rs"]
mod persistence;
#[path = "../api/process.rs"]
mod process;
#[path = "../api/rds.rs"]
mod rds;
#[path = "../api/rds_reads.rs"]
mod rds_reads;
#[path = "../api/services.rs"]
mod services;
#[path = "../api/signing.rs"]
mod signing;
#[path = "../api/tagd_process.rs"]
mod tagd_process;
#[path = "../api/tenants.rs"]
mod tenants;
#[path = "../api/tms.rs"]
mod tms;
#[path = "../api/tms_reads.rs"]
mod tms_reads;
#[path = "../api/workspace.rs"]
mod workspace;
#[path = "../api/workspace_reads.rs"]
mod workspace_reads;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use std::sync::Arc;

use serde_json::{json, Value};
use tagd::config::{Config, ServeArgs};
use tagd::store::throwaway::ThrowawayDatabase;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What the first start wrote to `<data-dir>/credentials`.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub domain_name: String,
    pub domain_id: String,
    pub project_id: String,
    pub project_name: String,
    pub user_name: String,
    pub password: String,
}

impl Credentials {
    fn read(dir: &Path) -> Self {
        let text = std::fs::read_to_string(dir.join("credentials")).expect("credentials file");
        let field = |name: &str| -> String {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or_else(|| panic!("{name} in credentials"))
                .to_owned()
        };
        Self {
            domain_name: field("domain_name"),
            domain_id: field("domain_id"),
            project_id: field("project_id"),
            project_name: field("project_name"),
            user_name: field("user_name"),
            password: field("password"),
        }
    }
}

/// The store a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default, in the server's data directory.
    Sqlite,
    /// A throwaway database per server on the PostgreSQL test server.
    Postgres,
}

/// Options a test may change; everything else is tagd's default.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub auto_register: bool,
    pub max_body_bytes: Option<usize>,
    pub token_lifetime_secs: Option<i64>,
    pub database_max_connections: Option<usize>,
    pub database_acquire_timeout_secs: Option<u64>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    /// The server's PostgreSQL database (kept across restarts, dropped last).
    database: Option<Arc<ThrowawayDatabase>>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    pub http: reqwest::Client,
    pub creds: Credentials,
    options: Options,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let tempdir = tempfile::tempdir().expect("tempdir");
        let dir = tempdir.path().to_path_buf();
        let database = match BACKEND {
            Backend::Sqlite => None,
            Backend::Postgres => Some(Arc::new(ThrowawayDatabase::create().await)),
        };
        let mut server = Self::start_in(dir, options, database).await;
        server._tempdir = Some(tempdir);
        server
    }

    async fn start_in(
        dir: PathBuf,
        options: Options,
        database: Option<Arc<ThrowawayDatabase>>,
    ) -> Self {
        let args = ServeArgs {
            data_dir: Some(dir.clone()),
            database_url: database.as_ref().map(|d| d.url.clone()),
            auto_register: Some(options.auto_register),
            max_body_bytes: options.max_body_bytes,
            token_lifetime_secs: options.token_lifetime_secs,
            database_max_connections: options.database_max_connections,
            database_acquire_timeout_secs: options.database_acquire_timeout_secs,
            ..Default::default()
        };
        let config = Config::resolve(&args).expect("config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(tagd::server::run(config, listener, async {
            let _ = rx.await;
        }));
        // The listener is bound before run() starts, so requests queue until it serves;
        // wait for the first-run bootstrap to have written the credentials.
        for _ in 0..200 {
            if dir.join("credentials").exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let creds = Credentials::read(&dir);
        let server = Self {
            addr,
            dir,
            _tempdir: None,
            database,
            shutdown: Some(tx),
            handle: Some(handle),
            http: reqwest::Client::new(),
            creds,
            options,
        };
        // Ready once the server answers.
        for _ in 0..200 {
            if server.http.get(server.url("/")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        server
    }

    /// Stops gracefully and starts again on the same data directory and a new port.
    pub async fn restart(mut self) -> Self {
        self.stop_in_place().await;
        let tempdir = self._tempdir.take();
        let mut server = Self::start_in(
            self.dir.clone(),
            self.options.clone(),
            self.database.clone(),
        )
        .await;
        server._tempdir = tempdir;
        server
    }

    /// Stops gracefully; the port is free once this returns.
    /// The URL of this server's database, for a test that writes to it directly.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(database) => database.url.clone(),
            None => format!("sqlite://{}", self.dir.join("tagd.db").display()),
        }
    }

    pub async fn stop(mut self) {
        self.stop_in_place().await;
    }

    async fn stop_in_place(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server result");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Issues a token for the first-run administrator with `scope`.
    pub async fn token(&self, scope: Value) -> String {
        self.token_for(&self.creds.user_name, &self.creds.password, scope)
            .await
    }

    pub async fn token_for(&self, user: &str, password: &str, scope: Value) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": password, "domain": {"name": self.creds.domain_name}}}},
            "scope": scope}});
        let resp = self
            .post("/v3/auth/tokens?nocatalog=true", None, &body)
            .await;
        assert_eq!(resp.status, 201, "token issue failed: {}", resp.body);
        resp.header("x-subject-token").expect("X-Subject-Token")
    }

    pub async fn domain_token(&self) -> String {
        self.token(json!({"domain": {"name": self.creds.domain_name}}))
            .await
    }

    pub async fn project_token(&self) -> String {
        self.token(json!({"project": {"id": self.creds.project_id}}))
            .await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json;charset=utf-8")
                .body(b);
        }
        Reply::from(req.send().await.expect("request")).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send(
            reqwest::Method::POST,
            path,
            token,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// Registers resources through the admin API with an administrator's token.
    pub async fn register(&self, resources: Value) {
        let token = self.domain_token().await;
        let resp = self
            .post(
                "/tagd/v1/resources",
                Some(&token),
                &json!({ "resources": resources }),
            )
            .await;
        assert_eq!(resp.status, 200, "register failed: {}", resp.body);
    }

    /// Registers disks with these ids in the default project.
    pub async fn register_disks(&self, ids: &[&str]) {
        let resources: Vec<Value> = ids
            .iter()
            .map(|id| json!({"project_id": self.creds.project_id, "resource_type": "disk", "resource_id": id}))
            .collect();
        self.register(Value::Array(resources)).await;
    }

    /// Registers resources of `resource_type` with these ids in the default project.
    pub async fn register_in(&self, resource_type: &str, ids: &[&str]) {
        let resources: Vec<Value> = ids
            .iter()
            .map(|id| json!({"project_id": self.creds.project_id, "resource_type": resource_type, "resource_id": id}))
            .collect();
        self.register(Value::Array(resources)).await;
    }

    /// A resource's tags as (key, value) pairs, read through TMS with its resource type
    /// (`workspace-desktop`, `fabric-workspace`, `rds`, `dis`, `disk`, ...).
    pub async fn tms_tags(
        &self,
        token: &str,
        resource_type: &str,
        id: &str,
    ) -> Vec<(String, String)> {
        let resp = self
            .get(
                &format!(
                    "/v2.0/resources/{id}/tags?project_id={}&resource_type={resource_type}",
                    self.creds.project_id
                ),
                Some(token),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.body["tags"]
            .as_array()
            .expect("tags array")
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().expect("key").to_owned(),
                    t["value"].as_str().expect("value").to_owned(),
                )
            })
            .collect()
    }

    /// Sends `body` with `method` and extra headers.
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        Reply::from(req.send().await.expect("request")).await
    }

    /// Creates another project in the default domain and returns a token scoped to it.
    pub async fn other_project_token(&self, name: &str) -> String {
        let out = self
            .cli(
                &[
                    "project",
                    "create",
                    "--domain",
                    &self.creds.domain_name,
                    name,
                ],
                None,
            )
            .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.token(json!({"project": {"name": name}})).await
    }

    /// The keys of a JSON object, sorted: for asserting an error body's exact field set.
    pub fn fields(body: &Value) -> Vec<String> {
        let mut keys: Vec<String> = body
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// A disk's tags as (key, value) pairs, read through TMS.
    pub async fn disk_tags(&self, token: &str, id: &str) -> Vec<(String, String)> {
        self.tms_tags(token, "disk", id).await
    }

    /// Runs one statement on the store directly, as an operator would, for what no API
    /// or command changes (a user's `enabled` flag). The SQL must suit both backends.
    pub async fn execute_sql(&self, sql: &str) -> u64 {
        let Some(database) = &self.database else {
            let conn = rusqlite::Connection::open(self.dir.join("tagd.db")).expect("open the store");
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .expect("busy timeout");
            return conn.execute(sql, []).expect("statement") as u64;
        };
        postgres_client(database)
            .await
            .execute(sql, &[])
            .await
            .expect("statement")
    }

    /// Everything the store holds, as bytes: the SQLite database and its WAL, or a text
    /// dump of every row of every table on PostgreSQL.
    pub async fn stored_bytes(&self) -> Vec<u8> {
        let Some(database) = &self.database else {
            let mut bytes = std::fs::read(self.dir.join("tagd.db")).expect("database");
            bytes.extend(std::fs::read(self.dir.join("tagd.db-wal")).unwrap_or_default());
            return bytes;
        };
        let client = postgres_client(database).await;
        let tables = client
            .query(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
                &[],
            )
            .await
            .expect("list tables");
        let mut bytes = Vec::new();
        for table in tables {
            let table: String = table.get(0);
            for row in client
                .query(&format!("SELECT t::text FROM {table} t"), &[])
                .await
                .expect("dump")
            {
                bytes.extend(row.get::<_, String>(0).into_bytes());
            }
        }
        bytes
    }

    /// Runs the tagd binary's admin CLI on this server's data directory.
    pub async fn cli(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tagd"));
        cmd.arg("admin").arg("--data-dir").arg(&self.dir);
        if let Some(database) = &self.database {
            cmd.arg("--database-url").arg(&database.url);
        }
        cmd.args(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.env_remove("TAGD_DATABASE_URL");
        let mut child = cmd.spawn().expect("spawn tagd");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).await.expect("write stdin");
        }
        drop(input);
        child.wait_with_output().await.expect("tagd admin")
    }

    /// Creates a non-admin user through the CLI and returns a token of theirs.
    pub async fn user_token(&self, name: &str, scope: Value) -> String {
        let out = self
            .cli(&["user", "create", name], Some("a-long-password\n"))
            .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.token_for(name, "a-long-password", scope).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A response with its body parsed as JSON (`Value::Null` when empty or not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn from_response(resp: reqwest::Response) -> Self {
        Self::from(resp).await
    }

    async fn from(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The TMS error code of a nested error body.
    pub fn tms_code(&self) -> &str {
        self.body["error"]["error_code"]
            .as_str()
            .unwrap_or_else(|| panic!("no TMS error body in {}", self.text))
    }

    pub fn tms_msg(&self) -> &str {
        self.body["error"]["error_msg"]
            .as_str()
            .unwrap_or_else(|| panic!("no TMS error body in {}", self.text))
    }
}

/// A connection to a test server's PostgreSQL database.
async fn postgres_client(database: &ThrowawayDatabase) -> tokio_postgres::Client {
    let (client, connection) = database
        .config()
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
}
