//! How tagd writes its log: to stderr, as text for people or JSON lines for log
//! collectors, at the levels of an `EnvFilter` directive (`info,tagd::store=debug`).
//!
//! Every request runs in a `request` span carrying its `request_id` and ends with one
//! line on the target `tagd::access` (see `api::middleware`); quieting access lines is
//! `tagd::access=warn` in the directive.

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// The shape of log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event, with its spans' fields.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, the event's fields at
    /// the top level (`message`, and for access lines `request_id`, `status`, ...), and
    /// the fields of the request's span under `span`.
    Json,
}

/// Where the log goes and what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// An `EnvFilter` directive, already checked to parse.
    pub filter: String,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// Checks a filter directive, with the parser's complaint when it does not parse.
pub fn check_filter(directive: &str) -> Result<(), String> {
    EnvFilter::builder()
        .parse(directive)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Installs the process's subscriber. Once per process: the binary calls it first thing.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::builder()
        .parse(&settings.filter)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.format {
        LogFormat::Text => builder.init(),
        // The request span's fields (request_id, method, path) under `span`; the list of
        // all enclosing spans would repeat them.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
