//! How tagd writes its log: to stderr, as text for people or JSON lines for log
//! collectors, at the levels of an `EnvFilter` directive (`info,tagd::store=debug`).
//!
//! Every request runs in a `request` span carrying its `request_id` and ends with one
//! line on the target `tagd::access` (see `api::middleware`); quieting access lines is
//! `tagd::access=warn` in the directive.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
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

/// Installs the process's subscriber. Once per process: the binary calls it first thing
/// and keeps the returned guard until it exits, which writes out what is buffered.
pub fn init(settings: &LogSettings) -> LogGuard {
    let filter = EnvFilter::builder()
        .parse(&settings.filter)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = BufferedStderr::start();
    let _ = ACCESS_LOG.set(AccessLog {
        to: writer.clone(),
        format: settings.format,
        ansi: std::io::stderr().is_terminal(),
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer.clone());
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
    LogGuard(writer)
}

/// Writes out the buffered log when dropped.
pub struct LogGuard(BufferedStderr);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// Most bytes held before a write to stderr is forced.
const BUFFER_LIMIT: usize = 256 * 1024;
/// Longest a buffered line waits.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Stderr behind a buffer: lines at info level and below (one access line per request)
/// are appended to memory and written out by a thread every 100 ms or 256 KiB, so a
/// request does not pay a write(2) for its line (that took a tenth of a cached GET's
/// time, D71); warnings and errors are written at once, with what came before them.
#[derive(Clone)]
struct BufferedStderr(Arc<Shared>);

struct Shared {
    buffer: Mutex<Vec<u8>>,
    full: Condvar,
    /// Whether the flushing thread runs; without it (it could not be started) every
    /// line is written at once.
    flushed_in_background: AtomicBool,
}

impl BufferedStderr {
    fn start() -> Self {
        let writer = Self(Arc::new(Shared {
            buffer: Mutex::new(Vec::with_capacity(BUFFER_LIMIT)),
            full: Condvar::new(),
            flushed_in_background: AtomicBool::new(false),
        }));
        let flusher = writer.clone();
        let started = std::thread::Builder::new()
            .name("tagd-log".into())
            .spawn(move || loop {
                {
                    let buffer = flusher.lock();
                    let _ = flusher.0.full.wait_timeout(buffer, FLUSH_EVERY);
                }
                flusher.flush();
            });
        writer
            .0
            .flushed_in_background
            .store(started.is_ok(), Ordering::Release);
        writer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A panic while appending a line leaves at worst half a line.
        self.0.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes out what is buffered. Taken out under the lock, written outside it, so
    /// requests never wait for the terminal or the disk.
    fn flush(&self) {
        let pending = {
            let mut buffer = self.lock();
            if buffer.is_empty() {
                return;
            }
            std::mem::replace(&mut *buffer, Vec::with_capacity(BUFFER_LIMIT))
        };
        let _ = std::io::stderr().lock().write_all(&pending);
    }
}

/// One event's line, handed over whole (the formatter writes each event in one call).
struct Line<'a> {
    to: &'a BufferedStderr,
    /// Written out at once (with everything before it) rather than buffered.
    now: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut buffer = self.to.lock();
            buffer.extend_from_slice(bytes);
            buffer.len() >= BUFFER_LIMIT
        };
        if self.now || !self.to.0.flushed_in_background.load(Ordering::Acquire) {
            self.to.flush();
        } else if full {
            self.to.0.full.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            to: self,
            now: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        Line {
            to: self,
            now: *meta.level() <= Level::WARN,
        }
    }
}

/// Where access lines go: set by [`init`]. Without it (a server run inside a test
/// process) access lines are dropped, as events are with no subscriber.
static ACCESS_LOG: OnceLock<AccessLog> = OnceLock::new();

struct AccessLog {
    to: BufferedStderr,
    format: LogFormat,
    ansi: bool,
}

/// What one access line says about a request.
pub struct Access<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    /// The raw path (only in the request span's fields, as every other event has them).
    pub path: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub duration: Duration,
    pub dialect: &'a str,
    pub domain: Option<&'a str>,
    pub project: Option<&'a str>,
}

/// Writes one access line (target `tagd::access`, info level), formatted here rather
/// than by `tracing-subscriber`: its formatter took about 3.5 µs per request, an eighth
/// of a cached GET (D75). The line has the shape the subscriber gives every other
/// event, so log collectors see one format. Whether it is written follows the
/// configured levels (`tagd::access=warn` turns it off).
pub fn access(line: &Access<'_>) {
    let Some(log) = ACCESS_LOG.get() else { return };
    if !tracing::enabled!(target: "tagd::access", Level::INFO) {
        return;
    }
    let mut out = String::with_capacity(384);
    timestamp(&mut out);
    match log.format {
        LogFormat::Json => access_json(&mut out, line),
        LogFormat::Text => access_text(&mut out, line, log.ansi),
    }
    out.push('\n');
    let _ = Line {
        to: &log.to,
        now: false,
    }
    .write(out.as_bytes());
}

fn access_json(out: &mut String, l: &Access<'_>) {
    use std::fmt::Write as _;
    // The timestamp is already in `out`; wrap it as the subscriber does.
    let stamp = std::mem::take(out);
    out.push_str("{\"timestamp\":\"");
    out.push_str(&stamp);
    out.push_str("\",\"level\":\"INFO\",\"message\":\"request\",\"request_id\":");
    json_str(out, l.request_id);
    out.push_str(",\"method\":");
    json_str(out, l.method);
    out.push_str(",\"route\":");
    json_str(out, l.route);
    let _ = write!(
        out,
        ",\"status\":{},\"duration_ms\":{}",
        l.status,
        l.duration.as_secs_f64() * 1000.0
    );
    out.push_str(",\"dialect\":");
    json_str(out, l.dialect);
    if let Some(domain) = l.domain {
        out.push_str(",\"domain\":");
        json_str(out, domain);
    }
    if let Some(project) = l.project {
        out.push_str(",\"project\":");
        json_str(out, project);
    }
    out.push_str(",\"target\":\"tagd::access\",\"span\":{\"method\":");
    json_str(out, l.method);
    out.push_str(",\"path\":");
    json_str(out, l.path);
    out.push_str(",\"request_id\":");
    json_str(out, l.request_id);
    out.push_str(",\"name\":\"request\"}}");
}

fn access_text(out: &mut String, l: &Access<'_>, ansi: bool) {
    use std::fmt::Write as _;
    let level = if ansi {
        "\x1b[32m INFO\x1b[0m"
    } else {
        " INFO"
    };
    let _ = write!(
        out,
        " {level} request{{request_id={} method={} path={}}}: tagd::access: request request_id={} method={} route={} status={} duration_ms={} dialect={}",
        l.request_id,
        l.method,
        l.path,
        l.request_id,
        l.method,
        l.route,
        l.status,
        l.duration.as_secs_f64() * 1000.0,
        l.dialect
    );
    if let Some(domain) = l.domain {
        let _ = write!(out, " domain={domain}");
    }
    if let Some(project) = l.project {
        let _ = write!(out, " project={project}");
    }
}

/// A JSON string literal of `s`.
fn json_str(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

thread_local! {
    /// The second last formatted on this thread, and its text up to the seconds:
    /// calendar arithmetic once a second, not once a line.
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

/// Appends the current UTC time as RFC 3339 with microseconds (`2026-12-02T06:53:04.458056Z`),
/// as the subscriber writes it.
fn timestamp(out: &mut String) {
    use std::fmt::Write as _;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            let text = time::OffsetDateTime::from_unix_timestamp(secs as i64)
                .ok()
                .and_then(|t| {
                    t.format(time::macros::format_description!(
                        "[year]-[month]-[day]T[hour]:[minute]:[second]"
                    ))
                    .ok()
                })
                .unwrap_or_default();
            *cached = (secs, text);
        }
        out.push_str(&cached.1);
    });
    let _ = write!(out, ".{:06}Z", now.subsec_micros());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Access<'static> {
        Access {
            request_id: "id\"with\\quote",
            method: "POST",
            path: "/v3/p/instances/i-1/tags",
            route: "/v3/{project_id}/instances/{instance_id}/tags",
            status: 204,
            duration: Duration::from_micros(1500),
            dialect: "rds",
            domain: Some("d1"),
            project: None,
        }
    }

    #[test]
    fn json_access_lines_parse_and_carry_every_field() {
        let mut out = String::new();
        timestamp(&mut out);
        access_json(&mut out, &sample());
        let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(v["request_id"], "id\"with\\quote");
        assert_eq!(v["span"]["request_id"], "id\"with\\quote");
        assert_eq!(v["status"], 204);
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["target"], "tagd::access");
        assert_eq!(v["domain"], "d1");
        assert!(v.get("project").is_none(), "{v}");
        let stamp = v["timestamp"].as_str().expect("timestamp");
        assert!(
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "{stamp}"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        json_str(&mut out, "a\u{1}b\nc");
        assert_eq!(out, "\"a\\u0001b\\u000ac\"");
        let back: String = serde_json::from_str(&out).expect("valid JSON string");
        assert_eq!(back, "a\u{1}b\nc");
    }
}
