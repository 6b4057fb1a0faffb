//! The server's configuration: one struct, filled from flags, `TAGD_*` environment
//! variables and an optional TOML file, in that order of precedence.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::logging::{LogFormat, LogSettings};

/// Options of `tagd serve`. Every flag also reads a `TAGD_*` environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TAGD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded database and first-run credentials [default: ./tagd-data].
    #[arg(long, env = "TAGD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://<data-dir>/tagd.db].
    #[arg(long, env = "TAGD_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Most PostgreSQL connections this process opens [default: 16].
    #[arg(long, env = "TAGD_DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<usize>,
    /// Seconds a request waits for a free PostgreSQL connection, and for a new one to
    /// open, before it fails [default: 10].
    #[arg(long, env = "TAGD_DATABASE_ACQUIRE_TIMEOUT_SECS")]
    pub database_acquire_timeout_secs: Option<u64>,
    /// TOML configuration file; its keys are these options' long names with `_`.
    #[arg(long, env = "TAGD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Emulator mode: treat any well-formed resource id as existing (registers it on
    /// first tag). `--auto-register` alone means true; also takes true/false/1/0/yes/no.
    #[arg(
        long,
        env = "TAGD_AUTO_REGISTER",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub auto_register: Option<bool>,
    /// Lifetime of issued tokens, in seconds [default: 86400].
    #[arg(long, env = "TAGD_TOKEN_LIFETIME_SECS")]
    pub token_lifetime_secs: Option<i64>,
    /// Largest request body accepted, in bytes [default: 1048576].
    #[arg(long, env = "TAGD_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// A request not answered within this many seconds gets 408 [default: 30].
    #[arg(long, env = "TAGD_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Most unpaged tag listings (RDS, DIS, Workspace and Fabric project tags, TMS
    /// `GET /v1.0/tags`) answered at once; each holds a whole scope's tags in memory, so
    /// further ones wait their turn [default: 4].
    #[arg(long, env = "TAGD_MAX_CONCURRENT_UNPAGED_LISTINGS")]
    pub max_concurrent_unpaged_listings: Option<usize>,
    /// A client must send a request's whole head within this many seconds, or its
    /// connection is closed (slow-client protection); an idle keep-alive connection is
    /// closed after as long [default: 30].
    #[arg(long, env = "TAGD_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Largest request head (request line and headers) accepted, in bytes; larger gets
    /// 431 [default: 16384, at least 8192].
    #[arg(long, env = "TAGD_MAX_HEADER_BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Most headers one request may carry; more gets 431 [default: 100].
    #[arg(long, env = "TAGD_MAX_HEADERS")]
    pub max_headers: Option<usize>,
    /// Most client connections served at once; further clients wait to be accepted
    /// (each connection carries one request at a time) [default: 4096].
    #[arg(long, env = "TAGD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// On SIGINT/SIGTERM, in-flight requests get this many seconds to finish before the
    /// server exits anyway [default: 30].
    #[arg(long, env = "TAGD_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Requests a second one access key or token may make, like the cloud's API
    /// gateway; beyond it, 429 APIGW.0308 with Retry-After; 0 turns it off [default: 0].
    #[arg(long, env = "TAGD_RATE_LIMIT_PER_CREDENTIAL")]
    pub rate_limit_per_credential: Option<u32>,
    /// Requests a second all callers together may make on one project (a domain-scoped
    /// caller's own requests count against its domain); 0 turns it off [default: 0].
    #[arg(long, env = "TAGD_RATE_LIMIT_PER_PROJECT")]
    pub rate_limit_per_project: Option<u32>,
    /// Seconds' worth of requests a rate limit lets through at once before the rate
    /// applies [default: 1].
    #[arg(long, env = "TAGD_RATE_LIMIT_BURST_SECS")]
    pub rate_limit_burst_secs: Option<u32>,
    /// Serve HTTPS with this certificate chain (PEM); needs `--tls-key-file`.
    #[arg(long, env = "TAGD_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key (PEM) of `--tls-cert-file`.
    #[arg(long, env = "TAGD_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// A signed request's X-Sdk-Date may be this many seconds off the server's clock [default: 900].
    #[arg(long, env = "TAGD_SIGNATURE_WINDOW_SECS")]
    pub signature_window_secs: Option<u64>,
    /// How long, in milliseconds, a looked-up token, access key or project is trusted
    /// before it is read again; changes made through this process take effect at once,
    /// those of other processes sharing the database within this time; 0 turns the
    /// cache off [default: 1000].
    #[arg(long, env = "TAGD_CREDENTIAL_CACHE_MS")]
    pub credential_cache_ms: Option<u64>,
    /// File holding the server key that seals access-key secrets; created if missing
    /// [default: <data-dir>/server.key].
    #[arg(long, env = "TAGD_SERVER_KEY_FILE")]
    pub server_key_file: Option<PathBuf>,
    /// The server key itself, 64 hex characters (overrides the file; for replicas that
    /// share one database).
    #[arg(long, env = "TAGD_SERVER_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub server_key: Option<SecretString>,
    /// Address of the admin listener, which serves Prometheus metrics at /metrics (never
    /// served on the public address); no admin listener when not given [default: off].
    #[arg(long, env = "TAGD_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Log levels, as an EnvFilter directive: a default level and per-module levels,
    /// e.g. `info,tagd::store=debug`; `tagd::access=warn` silences the access log
    /// [default: info].
    #[arg(long, env = "TAGD_LOG")]
    pub log: Option<String>,
    /// Log lines as human-readable text or as JSON objects, one per line [default: text].
    #[arg(long, env = "TAGD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// Tokens live at most a year: long enough for any test rig, short enough that expiry
/// arithmetic never overflows.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 366 * 24 * 3600;

/// The same options as read from a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_max_connections: Option<usize>,
    database_acquire_timeout_secs: Option<u64>,
    auto_register: Option<bool>,
    token_lifetime_secs: Option<i64>,
    max_body_bytes: Option<usize>,
    request_timeout_secs: Option<u64>,
    max_concurrent_unpaged_listings: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    max_header_bytes: Option<usize>,
    max_headers: Option<usize>,
    max_connections: Option<usize>,
    shutdown_grace_secs: Option<u64>,
    rate_limit_per_credential: Option<u32>,
    rate_limit_per_project: Option<u32>,
    rate_limit_burst_secs: Option<u32>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    signature_window_secs: Option<u64>,
    credential_cache_ms: Option<u64>,
    server_key_file: Option<PathBuf>,
    server_key: Option<SecretString>,
    admin_listen: Option<SocketAddr>,
    log: Option<String>,
    log_format: Option<LogFormat>,
}

/// The effective configuration of a server.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub database_pool: crate::store::postgres::PoolOptions,
    pub auto_register: bool,
    pub token_lifetime_secs: i64,
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    pub max_concurrent_unpaged_listings: usize,
    pub connections: ConnectionLimits,
    pub rate_limits: crate::api::throttle::RateLimits,
    /// HTTPS when set; plain HTTP otherwise.
    pub tls: Option<crate::tls::TlsFiles>,
    pub signature_window_secs: u64,
    pub credential_cache_ms: u64,
    pub server_key_file: PathBuf,
    pub server_key: Option<SecretString>,
    /// Where `/metrics` is served; `None`: nowhere.
    pub admin_listen: Option<SocketAddr>,
    pub logging: LogSettings,
}

/// What one client connection may hold of the server (issue 8: slow clients, huge heads,
/// connection floods), and how long a shutdown waits for in-flight requests.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_read_timeout: std::time::Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_connections: usize,
    pub shutdown_grace: std::time::Duration,
}

/// One numeric setting: flag or environment, else file, else `default`, checked to lie
/// in `range`.
fn setting<T>(
    name: &str,
    arg: Option<T>,
    file: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    let value = arg.or(file).unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid(format!(
            "{name} must be from {} to {}, got {value}",
            range.start(),
            range.end()
        )))
    }
}

/// A secret configuration value: never printed, not even in debug output.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretString(pub String);

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn parse_secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString(s.to_owned()))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Only the message and line are shown, never the offending text: it may be a secret.
    #[error("the configuration file {path} is invalid at line {line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Resolves flags and environment (already in `args`) over the file over defaults.
    pub fn resolve(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./tagd-data"));
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tagd.db").display()));
        let max_connections = args
            .database_max_connections
            .or(file.database_max_connections)
            .unwrap_or(16);
        if !(1..=1000).contains(&max_connections) {
            return Err(ConfigError::Invalid(format!(
                "database_max_connections must be from 1 to 1000, got {max_connections}"
            )));
        }
        let acquire_timeout_secs = args
            .database_acquire_timeout_secs
            .or(file.database_acquire_timeout_secs)
            .unwrap_or(10);
        if !(1..=600).contains(&acquire_timeout_secs) {
            return Err(ConfigError::Invalid(format!(
                "database_acquire_timeout_secs must be from 1 to 600, got {acquire_timeout_secs}"
            )));
        }
        let database_pool = crate::store::postgres::PoolOptions {
            max_connections,
            acquire_timeout: std::time::Duration::from_secs(acquire_timeout_secs),
        };
        let token_lifetime_secs = args
            .token_lifetime_secs
            .or(file.token_lifetime_secs)
            .unwrap_or(24 * 3600);
        if !(1..=MAX_TOKEN_LIFETIME_SECS).contains(&token_lifetime_secs) {
            return Err(ConfigError::Invalid(format!(
                "token_lifetime_secs must be from 1 to {MAX_TOKEN_LIFETIME_SECS} (one year), got {token_lifetime_secs}"
            )));
        }
        let max_body_bytes = args
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(1024 * 1024);
        if max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "max_body_bytes must be at least 1024".into(),
            ));
        }
        let request_timeout_secs = args
            .request_timeout_secs
            .or(file.request_timeout_secs)
            .unwrap_or(30);
        if !(1..=3600).contains(&request_timeout_secs) {
            return Err(ConfigError::Invalid(format!(
                "request_timeout_secs must be from 1 to 3600, got {request_timeout_secs}"
            )));
        }
        let max_concurrent_unpaged_listings = setting(
            "max_concurrent_unpaged_listings",
            args.max_concurrent_unpaged_listings,
            file.max_concurrent_unpaged_listings,
            crate::core::tagging::DEFAULT_UNPAGED_LISTINGS,
            1..=1024,
        )?;
        let connections = ConnectionLimits {
            header_read_timeout: std::time::Duration::from_secs(setting(
                "header_read_timeout_secs",
                args.header_read_timeout_secs,
                file.header_read_timeout_secs,
                30,
                1..=3600,
            )?),
            // hyper's read buffer, which bounds the head, cannot be smaller than 8 KiB.
            max_header_bytes: setting(
                "max_header_bytes",
                args.max_header_bytes,
                file.max_header_bytes,
                16 * 1024,
                8192..=1024 * 1024,
            )?,
            max_headers: setting(
                "max_headers",
                args.max_headers,
                file.max_headers,
                100,
                16..=10_000,
            )?,
            max_connections: setting(
                "max_connections",
                args.max_connections,
                file.max_connections,
                4096,
                1..=1_000_000,
            )?,
            shutdown_grace: std::time::Duration::from_secs(setting(
                "shutdown_grace_secs",
                args.shutdown_grace_secs,
                file.shutdown_grace_secs,
                30,
                0..=3600,
            )?),
        };
        let rate_limits = crate::api::throttle::RateLimits {
            per_credential: setting(
                "rate_limit_per_credential",
                args.rate_limit_per_credential,
                file.rate_limit_per_credential,
                0,
                0..=1_000_000,
            )?,
            per_project: setting(
                "rate_limit_per_project",
                args.rate_limit_per_project,
                file.rate_limit_per_project,
                0,
                0..=1_000_000,
            )?,
            burst_secs: setting(
                "rate_limit_burst_secs",
                args.rate_limit_burst_secs,
                file.rate_limit_burst_secs,
                1,
                1..=3600,
            )?,
        };
        let tls =
            match (
                args.tls_cert_file.clone().or(file.tls_cert_file),
                args.tls_key_file.clone().or(file.tls_key_file),
            ) {
                (Some(cert), Some(key)) => Some(crate::tls::TlsFiles { cert, key }),
                (None, None) => None,
                _ => return Err(ConfigError::Invalid(
                    "tls_cert_file and tls_key_file go together: give both for HTTPS, or neither"
                        .into(),
                )),
            };
        let signature_window_secs = args
            .signature_window_secs
            .or(file.signature_window_secs)
            .unwrap_or(900);
        if !(1..=86_400).contains(&signature_window_secs) {
            return Err(ConfigError::Invalid(format!(
                "signature_window_secs must be from 1 to 86400, got {signature_window_secs}"
            )));
        }
        let credential_cache_ms = args
            .credential_cache_ms
            .or(file.credential_cache_ms)
            .unwrap_or(1000);
        if credential_cache_ms > 60_000 {
            return Err(ConfigError::Invalid(format!(
                "credential_cache_ms must be from 0 to 60000, got {credential_cache_ms}"
            )));
        }
        let server_key_file = args
            .server_key_file
            .clone()
            .or(file.server_key_file)
            .unwrap_or_else(|| data_dir.join("server.key"));
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let admin_listen = args.admin_listen.or(file.admin_listen);
        if admin_listen == Some(listen) {
            return Err(ConfigError::Invalid(format!(
                "admin_listen must differ from listen ({listen}): metrics are never served on the public address"
            )));
        }
        let logging = LogSettings {
            filter: args
                .log
                .clone()
                .or(file.log)
                .unwrap_or_else(|| LogSettings::default().filter),
            format: args.log_format.or(file.log_format).unwrap_or_default(),
        };
        crate::logging::check_filter(&logging.filter).map_err(|e| {
            ConfigError::Invalid(format!(
                "log must be a filter directive such as \"info,tagd::store=debug\", got {:?}: {e}",
                logging.filter
            ))
        })?;
        Ok(Self {
            admin_listen,
            logging,
            server_key: args.server_key.clone().or(file.server_key),
            server_key_file,
            signature_window_secs,
            credential_cache_ms,
            request_timeout_secs,
            max_concurrent_unpaged_listings,
            connections,
            rate_limits,
            tls,
            listen,
            data_dir,
            database_url,
            database_pool,
            auto_register: args.auto_register.or(file.auto_register).unwrap_or(false),
            token_lifetime_secs,
            max_body_bytes,
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e: toml::de::Error| ConfigError::Parse {
        path: path.to_owned(),
        line: e.span().map_or(0, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        }),
        message: e.message().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tagd.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\nmax_body_bytes = 4096\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(file),
            max_body_bytes: Some(2048),
            ..Default::default()
        };
        let c = Config::resolve(&args).expect("config");
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.max_body_bytes, 2048);
        assert_eq!(c.token_lifetime_secs, 86400);
    }

    #[test]
    fn log_settings_and_the_admin_listener_come_from_the_file_or_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tagd.toml");
        std::fs::write(
            &file,
            "log = \"warn,tagd::access=info\"\nlog_format = \"json\"\nadmin_listen = \"127.0.0.1:9100\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::resolve(&args).expect("config");
        assert_eq!(c.logging.filter, "warn,tagd::access=info");
        assert_eq!(c.logging.format, LogFormat::Json);
        assert_eq!(
            c.admin_listen,
            Some("127.0.0.1:9100".parse().expect("addr"))
        );
        let args = ServeArgs {
            config: Some(file),
            log: Some("debug".into()),
            log_format: Some(LogFormat::Text),
            ..Default::default()
        };
        let c = Config::resolve(&args).expect("config");
        assert_eq!(c.logging.filter, "debug");
        assert_eq!(c.logging.format, LogFormat::Text);
        let defaults = Config::resolve(&ServeArgs::default()).expect("config");
        assert_eq!(
            defaults.admin_listen, None,
            "metrics are off unless asked for"
        );
        assert_eq!(defaults.logging, LogSettings::default());
    }

    #[test]
    fn bad_log_directives_and_a_shared_admin_address_are_rejected() {
        let args = ServeArgs {
            log: Some("info,tagd=loud".into()),
            ..Default::default()
        };
        let err = Config::resolve(&args)
            .expect_err("bad directive")
            .to_string();
        assert!(err.contains("tagd=loud"), "{err}");
        let args = ServeArgs {
            listen: Some("127.0.0.1:8080".parse().expect("addr")),
            admin_listen: Some("127.0.0.1:8080".parse().expect("addr")),
            ..Default::default()
        };
        let err = Config::resolve(&args)
            .expect_err("same address")
            .to_string();
        assert!(err.contains("admin_listen"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tagd.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9999\"\n").expect("write");
        let args = ServeArgs {
            config: Some(file),
            ..Default::default()
        };
        let err = Config::resolve(&args).expect_err("unknown key").to_string();
        assert!(err.contains("lisen"), "{err}");
    }
}
