//! How tagd writes its log: to stderr, as text for people or JSON lines for log
//! collectors, at the levels of an `EnvFilter` directive (`info,tagd::store=debug`).
//!
//! Every request runs in a `request` span carrying its `request_id` and ends with one
//! line on the target `tagd::access` (see `api::middleware`); quieting access lines is
//! `tagd::access=warn` in the directive.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

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
