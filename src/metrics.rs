//! What tagd counts for Prometheus, and the text exposition format (version 0.0.4) it is
//! served in on the admin listener's `/metrics`.
//!
//! Hand-written on atomics rather than a metrics library (D70): the label sets are few
//! and known in advance (route templates, dialects, reasons, store operations), so a
//! request costs one read-locked map lookup and a few relaxed atomic adds; and each
//! server owns its [`Metrics`], so servers (and tests) in one process never share
//! counters through a global registry.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Latency bucket bounds, in nanoseconds: 100 µs to 10 s.
const LATENCY_BOUNDS_NS: &[u64] = &[
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

/// Bucket bounds of counts (writes per group commit): powers of two up to 1024.
const SIZE_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// A histogram of integer observations (nanoseconds, or counts), lock-free. Bucket counts
/// are kept per bucket and made cumulative when encoded, so an observation is two
/// relaxed adds; `_count` is their sum, so it always agrees with the `+Inf` bucket.
pub struct Histogram {
    bounds: &'static [u64],
    /// One per bound, then the overflow (`+Inf`) bucket.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    /// Units of an observation per exposed unit (1e9 nanoseconds a second): dividing
    /// prints 0.0001, where multiplying by 1e-9 printed 0.00010000000000000002.
    per_unit: f64,
}

impl Histogram {
    fn new(bounds: &'static [u64], per_unit: f64) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            per_unit,
        }
    }

    /// Durations, exposed in seconds.
    pub fn seconds() -> Self {
        Self::new(LATENCY_BOUNDS_NS, 1e9)
    }

    /// Counts (a batch's size).
    pub fn sizes() -> Self {
        Self::new(SIZE_BOUNDS, 1.0)
    }

    pub fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
    }

    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }
}

/// The API dialect a request belongs to, by its path: the label `dialect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Tms,
    Iam,
    Admin,
    Workspace,
    Fabric,
    Rds,
    Dis,
    /// No service's path: answered as the cloud's API gateway answers.
    Gateway,
}

impl Dialect {
    pub const ALL: [Dialect; 8] = [
        Dialect::Tms,
        Dialect::Iam,
        Dialect::Admin,
        Dialect::Workspace,
        Dialect::Fabric,
        Dialect::Rds,
        Dialect::Dis,
        Dialect::Gateway,
    ];

    /// The dialect of a request path, or of a route template (`{project_id}` is one
    /// segment like any other).
    pub fn of_path(path: &str) -> Self {
        let mut segments = path.split('/').skip(1);
        let (first, second, third) = (segments.next(), segments.next(), segments.next());
        match (first, second, third) {
            (Some("v1.0" | "v2.0"), _, _) => Dialect::Tms,
            (Some("v3"), Some("auth" | "projects"), _) | (Some("v3.0"), _, _) => Dialect::Iam,
            (Some("tagd"), _, _) => Dialect::Admin,
            (Some("v2"), Some(_), Some("desktops")) => Dialect::Workspace,
            (Some("v1"), Some(_), Some("fabric-workspace")) => Dialect::Fabric,
            (Some("v3"), Some(_), Some("instances" | "tags")) => Dialect::Rds,
            (Some("v2"), Some(_), Some("stream")) => Dialect::Dis,
            _ => Dialect::Gateway,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Dialect::Tms => "tms",
            Dialect::Iam => "iam",
            Dialect::Admin => "admin",
            Dialect::Workspace => "workspace",
            Dialect::Fabric => "fabric",
            Dialect::Rds => "rds",
            Dialect::Dis => "dis",
            Dialect::Gateway => "gateway",
        }
    }
}

/// The `route` label of requests that matched no route: one value, whatever the path,
/// so a scan of random paths cannot grow the series without bound.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Lowest and highest status counted; anything else is counted as 500 (hyper cannot
/// send one outside this range anyway).
const FIRST_STATUS: u16 = 100;
const LAST_STATUS: u16 = 599;

/// The requests of one (dialect, route): counts by status, and their latency.
struct RouteStats {
    dialect: Dialect,
    /// Indexed by status - 100: a slot per possible status costs 4 KiB per route and
    /// makes counting a single add, with no lock.
    statuses: Box<[AtomicU64]>,
    latency: Histogram,
}

impl RouteStats {
    fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            statuses: (FIRST_STATUS..=LAST_STATUS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            latency: Histogram::seconds(),
        }
    }

    fn observe(&self, status: u16, elapsed: Duration) {
        let status = if (FIRST_STATUS..=LAST_STATUS).contains(&status) {
            status
        } else {
            500
        };
        self.statuses[usize::from(status - FIRST_STATUS)].fetch_add(1, Relaxed);
        self.latency.observe_duration(elapsed);
    }
}

/// Counters of labels known in advance (auth failure reasons, rate-limit policies):
/// rare events, so a mutex is cheap enough.
#[derive(Default)]
struct LabelCounts(Mutex<BTreeMap<&'static str, u64>>);

impl LabelCounts {
    fn with_zeros(labels: &[&'static str]) -> Self {
        Self(Mutex::new(labels.iter().map(|l| (*l, 0)).collect()))
    }

    fn add(&self, label: &'static str) {
        // A poisoned map only means a panic between two adds; the counts are sound.
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(label).or_insert(0) += 1;
    }

    fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts.iter().map(|(l, n)| (*l, *n)).collect()
    }
}

/// What the HTTP layer counts, for one server.
pub struct Metrics {
    /// By route template; the dialect is the template's own.
    routes: RwLock<HashMap<Box<str>, Arc<RouteStats>>>,
    /// Requests that matched no route, by the dialect of their path.
    unmatched: Vec<RouteStats>,
    auth_failures: LabelCounts,
    rate_limited: LabelCounts,
    /// Connections the HTTP layer closed before any route saw a request.
    connections_refused: LabelCounts,
}

/// Why the HTTP layer closed a connection before a request reached the router.
pub const CONNECTION_REFUSALS: &[&str] = &[
    "head_too_large",
    "head_timeout",
    "malformed_head",
    "tls_handshake_failed",
    "tls_handshake_timeout",
];

impl Metrics {
    /// Counters starting at zero; `auth_reasons` and `policies` are listed (at 0) from
    /// the start, so a rate over them is defined before the first failure.
    pub fn new(auth_reasons: &[&'static str], policies: &[&'static str]) -> Self {
        Self {
            routes: RwLock::default(),
            unmatched: Dialect::ALL.iter().map(|d| RouteStats::new(*d)).collect(),
            auth_failures: LabelCounts::with_zeros(auth_reasons),
            rate_limited: LabelCounts::with_zeros(policies),
            connections_refused: LabelCounts::with_zeros(CONNECTION_REFUSALS),
        }
    }

    /// Counts one answered request: `route` is its route template, `None` for a path no
    /// route matched (then `path` names the dialect). Returns the dialect it was counted
    /// under, so the access log names the same one without working it out again.
    pub fn request(
        &self,
        route: Option<&str>,
        path: &str,
        status: u16,
        elapsed: Duration,
    ) -> Dialect {
        let Some(route) = route else {
            let dialect = Dialect::of_path(path);
            let slot = Dialect::ALL.iter().position(|d| *d == dialect).unwrap_or(0);
            self.unmatched[slot].observe(status, elapsed);
            return dialect;
        };
        // Counted under the read lock: cloning the `Arc` out would add two more atomic
        // operations on a line every core shares.
        if let Some(stats) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
        {
            stats.observe(status, elapsed);
            return stats.dialect;
        }
        // Once per route template in the process's life.
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        let stats = routes
            .entry(route.into())
            .or_insert_with(|| Arc::new(RouteStats::new(Dialect::of_path(route))));
        stats.observe(status, elapsed);
        stats.dialect
    }

    /// Counts a refused credential; `None` (the store failed, no refusal) counts nothing.
    pub fn auth_failure(&self, reason: Option<&'static str>) {
        if let Some(reason) = reason {
            self.auth_failures.add(reason);
        }
    }

    pub fn rate_limited(&self, policy: &'static str) {
        self.rate_limited.add(policy);
    }

    /// Counts a connection closed before its request reached a route; `reason` is one
    /// of [`CONNECTION_REFUSALS`].
    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused.add(reason);
    }

    /// Writes the HTTP metrics.
    pub fn encode(&self, out: &mut Exposition) {
        let routes: Vec<(Box<str>, Arc<RouteStats>)> = {
            let map = self.routes.read().unwrap_or_else(|e| e.into_inner());
            let mut v: Vec<_> = map.iter().map(|(k, s)| (k.clone(), s.clone())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let all: Vec<(&str, &RouteStats)> = routes
            .iter()
            .map(|(r, s)| (&**r, &**s))
            .chain(self.unmatched.iter().map(|s| (UNMATCHED_ROUTE, s)))
            .collect();
        out.family(
            "tagd_http_requests_total",
            "HTTP requests answered, by dialect, route template and status.",
            "counter",
        );
        for (route, stats) in &all {
            for (i, n) in stats.statuses.iter().enumerate() {
                let n = n.load(Relaxed);
                if n > 0 {
                    let status = (FIRST_STATUS as usize + i).to_string();
                    out.sample(
                        "tagd_http_requests_total",
                        &[
                            ("dialect", stats.dialect.label()),
                            ("route", route),
                            ("status", &status),
                        ],
                        n,
                    );
                }
            }
        }
        out.family(
            "tagd_http_request_duration_seconds",
            "Time from a request's head to its response, by dialect and route template.",
            "histogram",
        );
        for (route, stats) in &all {
            if stats.latency.count() > 0 {
                out.histogram(
                    "tagd_http_request_duration_seconds",
                    &[("dialect", stats.dialect.label()), ("route", route)],
                    &stats.latency,
                );
            }
        }
        out.family(
            "tagd_auth_failures_total",
            "Requests refused for their credentials (401), by reason.",
            "counter",
        );
        for (reason, n) in self.auth_failures.snapshot() {
            out.sample("tagd_auth_failures_total", &[("reason", reason)], n);
        }
        out.family(
            "tagd_rate_limited_total",
            "Requests refused by a rate limit (429), by policy.",
            "counter",
        );
        for (policy, n) in self.rate_limited.snapshot() {
            out.sample("tagd_rate_limited_total", &[("policy", policy)], n);
        }
        out.family(
            "tagd_http_connections_refused_total",
            "Connections closed before a request reached any route (431 for a head too \
             large, a head too slow, a malformed head, a failed TLS handshake), by reason.",
            "counter",
        );
        for (reason, n) in self.connections_refused.snapshot() {
            out.sample(
                "tagd_http_connections_refused_total",
                &[("reason", reason)],
                n,
            );
        }
    }
}

/// Store operations' latency by operation, and the SQLite writer's group commits.
pub struct StoreMetrics {
    backend: &'static str,
    operations: RwLock<HashMap<&'static str, Arc<(&'static str, Histogram)>>>,
    /// Writes per group commit (SQLite's single writer).
    pub batch_size: Histogram,
    /// Time to commit one group (SQLite's single writer).
    pub commit: Histogram,
}

impl StoreMetrics {
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            operations: RwLock::default(),
            batch_size: Histogram::sizes(),
            commit: Histogram::seconds(),
        }
    }

    /// Counts one store call: `operation` is the store method, `kind` `read` or `write`.
    pub fn operation(&self, operation: &'static str, kind: &'static str, elapsed: Duration) {
        if let Some(slot) = self
            .operations
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(operation)
        {
            slot.1.observe_duration(elapsed);
            return;
        }
        self.operations
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(operation)
            .or_insert_with(|| Arc::new((kind, Histogram::seconds())))
            .1
            .observe_duration(elapsed);
    }

    pub fn encode(&self, out: &mut Exposition) {
        let mut operations: Vec<(&'static str, Arc<(&'static str, Histogram)>)> = self
            .operations
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        operations.sort_by_key(|(k, _)| *k);
        out.family(
            "tagd_store_operation_duration_seconds",
            "Time of store calls, by backend, operation and kind (read or write).",
            "histogram",
        );
        for (operation, slot) in &operations {
            out.histogram(
                "tagd_store_operation_duration_seconds",
                &[
                    ("backend", self.backend),
                    ("kind", slot.0),
                    ("operation", operation),
                ],
                &slot.1,
            );
        }
        if self.backend == "sqlite" {
            out.family(
                "tagd_store_write_batch_size",
                "Writes committed together by the SQLite writer (group commit).",
                "histogram",
            );
            out.histogram("tagd_store_write_batch_size", &[], &self.batch_size);
            out.family(
                "tagd_store_group_commit_duration_seconds",
                "Time the SQLite writer took to run and commit one group of writes.",
                "histogram",
            );
            out.histogram(
                "tagd_store_group_commit_duration_seconds",
                &[],
                &self.commit,
            );
        }
    }
}

/// A page in the Prometheus text format, written family by family.
#[derive(Default)]
pub struct Exposition {
    text: String,
}

/// The content type of [`Exposition`] pages.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, help: &str, kind: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.name_and_labels(name, labels, None);
        let _ = writeln!(self.text, " {value}");
    }

    /// A histogram's `_bucket` lines (cumulative, ending with `+Inf`), `_sum` and `_count`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, count) in h.counts.iter().enumerate() {
            cumulative += count.load(Relaxed);
            let le = match h.bounds.get(i) {
                Some(bound) => float(*bound as f64 / h.per_unit),
                None => "+Inf".to_owned(),
            };
            self.name_and_labels(&bucket, labels, Some(&le));
            let _ = writeln!(self.text, " {cumulative}");
        }
        self.name_and_labels(&format!("{name}_sum"), labels, None);
        let _ = writeln!(
            self.text,
            " {}",
            float(h.sum.load(Relaxed) as f64 / h.per_unit)
        );
        self.name_and_labels(&format!("{name}_count"), labels, None);
        let _ = writeln!(self.text, " {cumulative}");
    }

    fn name_and_labels(&mut self, name: &str, labels: &[(&str, &str)], le: Option<&str>) {
        self.text.push_str(name);
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.text.push('{');
        let le = le.map(|le| ("le", le));
        for (i, (label, value)) in labels.iter().copied().chain(le).enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.text.push_str(label);
            self.text.push_str("=\"");
            for c in value.chars() {
                match c {
                    '\\' => self.text.push_str("\\\\"),
                    '"' => self.text.push_str("\\\""),
                    '\n' => self.text.push_str("\\n"),
                    c => self.text.push(c),
                }
            }
            self.text.push('"');
        }
        self.text.push('}');
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// A float as Prometheus reads it; whole numbers without a fraction.
fn float(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v.is_nan() {
        "NaN".to_owned()
    } else if v > 0.0 {
        "+Inf".to_owned()
    } else {
        "-Inf".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_end_with_inf() {
        let h = Histogram::sizes();
        for v in [1, 1, 3, 2000] {
            h.observe(v);
        }
        let mut out = Exposition::new();
        out.family("t_batch", "Batch sizes.", "histogram");
        out.histogram("t_batch", &[("kind", "w")], &h);
        let text = out.finish();
        assert!(text.starts_with("# HELP t_batch Batch sizes.\n# TYPE t_batch histogram\n"));
        assert!(
            text.contains("t_batch_bucket{kind=\"w\",le=\"1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("t_batch_bucket{kind=\"w\",le=\"2\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("t_batch_bucket{kind=\"w\",le=\"4\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("t_batch_bucket{kind=\"w\",le=\"1024\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("t_batch_bucket{kind=\"w\",le=\"+Inf\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("t_batch_sum{kind=\"w\"} 2005\n"), "{text}");
        assert!(text.contains("t_batch_count{kind=\"w\"} 4\n"), "{text}");
    }

    #[test]
    fn durations_are_exposed_in_seconds() {
        let h = Histogram::seconds();
        h.observe_duration(Duration::from_micros(300));
        h.observe_duration(Duration::from_millis(2));
        let mut out = Exposition::new();
        out.histogram("t_seconds", &[], &h);
        let text = out.finish();
        assert!(
            text.contains("t_seconds_bucket{le=\"0.0001\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{le=\"0.0025\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("t_seconds_bucket{le=\"10\"} 2\n"), "{text}");
        assert!(text.contains("t_seconds_sum 0.0023\n"), "{text}");
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut out = Exposition::new();
        out.family("t_total", "Back\\slash\nnewline.", "counter");
        out.sample("t_total", &[("route", "a\"b\\c\nd")], 7);
        assert_eq!(
            out.finish(),
            "# HELP t_total Back\\\\slash\\nnewline.\n# TYPE t_total counter\nt_total{route=\"a\\\"b\\\\c\\nd\"} 7\n"
        );
    }

    #[test]
    fn requests_are_counted_by_template_status_and_dialect() {
        let m = Metrics::new(&["missing_token"], &["credential"]);
        let ms = Duration::from_millis(1);
        m.request(
            Some("/v3/{project_id}/instances/{id}/tags"),
            "/v3/p1/instances/i/tags",
            200,
            ms,
        );
        m.request(
            Some("/v3/{project_id}/instances/{id}/tags"),
            "/v3/p2/instances/j/tags",
            200,
            ms,
        );
        m.request(
            Some("/v3/{project_id}/instances/{id}/tags"),
            "/v3/p2/instances/j/tags",
            404,
            ms,
        );
        m.request(None, "/nowhere/1", 404, ms);
        m.request(None, "/v1.0/nowhere", 404, ms);
        m.auth_failure(Some("missing_token"));
        m.auth_failure(Some("bad_signature"));
        m.auth_failure(None);
        let mut out = Exposition::new();
        m.encode(&mut out);
        let text = out.finish();
        for line in [
            "tagd_http_requests_total{dialect=\"rds\",route=\"/v3/{project_id}/instances/{id}/tags\",status=\"200\"} 2\n",
            "tagd_http_requests_total{dialect=\"rds\",route=\"/v3/{project_id}/instances/{id}/tags\",status=\"404\"} 1\n",
            "tagd_http_requests_total{dialect=\"gateway\",route=\"unmatched\",status=\"404\"} 1\n",
            "tagd_http_requests_total{dialect=\"tms\",route=\"unmatched\",status=\"404\"} 1\n",
            "tagd_http_request_duration_seconds_count{dialect=\"rds\",route=\"/v3/{project_id}/instances/{id}/tags\"} 3\n",
            "tagd_auth_failures_total{reason=\"bad_signature\"} 1\n",
            "tagd_auth_failures_total{reason=\"missing_token\"} 1\n",
            "tagd_rate_limited_total{policy=\"credential\"} 0\n",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            !text.contains("p1"),
            "a raw path leaked into a label:\n{text}"
        );
    }

    #[test]
    fn dialects_follow_the_paths_of_error_bodies() {
        for (path, dialect) in [
            ("/v1.0/resource-tags/batch-create", Dialect::Tms),
            ("/v2.0/resources/{resource_id}/tags", Dialect::Tms),
            ("/v3/auth/tokens", Dialect::Iam),
            ("/v3.0/OS-CREDENTIAL/credentials", Dialect::Iam),
            ("/tagd/v1/resources", Dialect::Admin),
            ("/v2/{project_id}/desktops/tags", Dialect::Workspace),
            ("/v1/{project_id}/fabric-workspace/tags", Dialect::Fabric),
            ("/v3/{project_id}/instances/{id}/tags", Dialect::Rds),
            ("/v2/{project_id}/stream/tags", Dialect::Dis),
            ("/metrics", Dialect::Gateway),
            ("/", Dialect::Gateway),
        ] {
            assert_eq!(Dialect::of_path(path), dialect, "{path}");
        }
    }
}
