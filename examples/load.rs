//! The benchmark suite's load client (bench/suite.sh): N workers, each on its own
//! keep-alive HTTP/1.1 connection over loopback, send one workload's requests for D
//! seconds (or a fixed count, for loading data) and check every answer. Prints one JSON
//! line: `{system, workload, requests, seconds, rps, p50_ms, p99_ms, errors,
//! unit_per_request, units_per_s, ...}`; exits 1 if any request failed.
//!
//! ```sh
//! cargo run --release --example load -- --url http://127.0.0.1:8080 --workload w2 \
//!     --concurrency 32 --duration 10 --token "$TOKEN" --project "$PROJECT"
//! ```
//!
//! Workloads (names as in issue 7 and BENCHMARKS.md):
//! - `w1`: TMS batch-create, 50 fresh disks x 10 tags per request (tagd needs
//!   `--auto-register`, or the disks registered beforehand); unit: tag writes.
//! - `w2`: RDS `tags/action` create of one tag on one of `--instances` registered
//!   instances `rds-0..`, expecting 204; unit: tag writes.
//! - `w3`: RDS `GET .../instances/rds-7/tags` (tagged with five tags first).
//! - `w5-write`: moto's M1 shape, 20 fresh disks x 10 tags per TMS batch-create.
//! - `w5-load`: tags `--resources` disks (20 per call, five tags each, env/team spread
//!   as in `m2_tags`) once; not time-bounded.
//! - `w5-query`: moto's M2: env=prod AND team=t3 over the `w5-load` data, paged (100)
//!   to the end; one operation is the whole query; the match count is checked.
//! - `w4-*`: the queries of bench/queries.sh over `tagd admin generate` data.
//! - `soak`: a steady mix over a fixed data set, so the store stops growing (bench/soak.sh):
//!   per ten operations, four RDS single-tag creates and one delete on the registered
//!   `rds-0..`, one TMS batch-create and one batch-delete on ten of `--resources`
//!   `soak-disk-N` (tagd needs `--auto-register`), two reads of an instance's tags and
//!   one TMS filter.

#[path = "shared/w5.rs"]
mod w5;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;
use w5::{m2_expected, m2_tags, quantile_ms, M1_RESOURCES};

#[derive(Parser, Debug)]
#[command(about = "HTTP load client for bench/suite.sh")]
struct Args {
    /// Base URL, e.g. http://127.0.0.1:8080 (loopback only; no TLS).
    #[arg(long)]
    url: String,
    #[arg(long, value_enum)]
    workload: Workload,
    /// Concurrent workers, one connection each.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Seconds to send for (time-bounded workloads).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// X-Auth-Token sent with every request (empty: none).
    #[arg(long, default_value = "")]
    token: String,
    /// Project id used in paths and bodies.
    #[arg(long, default_value = "p")]
    project: String,
    /// Name of the system under test, copied into the JSON line.
    #[arg(long, default_value = "tagd")]
    system: String,
    /// W2: registered RDS instances rds-0 .. rds-(N-1).
    #[arg(long, default_value_t = 1000)]
    instances: u64,
    /// W5: disks in the query data set; W4: resources generated (for w4-get's id).
    #[arg(long, default_value_t = 5000)]
    resources: u64,
    /// Tokio worker threads of the client.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Prefix that makes W1/W5 resource ids fresh across runs against one server.
    #[arg(long)]
    run_id: Option<String>,
    /// A request (or W5 query) taking longer than this many seconds counts as an error.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    W1,
    W2,
    W3,
    #[value(name = "w5-write")]
    W5Write,
    #[value(name = "w5-load")]
    W5Load,
    #[value(name = "w5-query")]
    W5Query,
    #[value(name = "w4-filter")]
    W4Filter,
    #[value(name = "w4-count")]
    W4Count,
    #[value(name = "w4-untagged")]
    W4Untagged,
    #[value(name = "w4-keys")]
    W4Keys,
    #[value(name = "w4-values")]
    W4Values,
    #[value(name = "w4-get")]
    W4Get,
    Soak,
}

impl Workload {
    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }

    /// What one operation counts for: tag writes for the write workloads, else 1.
    fn units(self) -> u64 {
        match self {
            Workload::W1 => W1_RESOURCES * TAGS_PER_CALL,
            Workload::W5Write => M1_RESOURCES * TAGS_PER_CALL,
            Workload::W5Load => M1_RESOURCES * 5,
            _ => 1,
        }
    }
}

const W1_RESOURCES: u64 = 50;
const TAGS_PER_CALL: u64 = 10;
const W3_INSTANCE: &str = "rds-7";

/// How an answer is judged.
#[derive(Clone, Copy)]
enum Expect {
    Status(u16),
    /// TMS batch-create: 200 and no failed resources (a 200 may report failures).
    NoFailures,
}

struct Call {
    method: Method,
    path: String,
    body: Option<String>,
    expect: Expect,
}

/// One keep-alive connection, reopened after a transport error.
struct Conn {
    addr: SocketAddr,
    host: String,
    token: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    async fn connect(&mut self) -> Result<(), String> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("nodelay: {e}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            // The connection ends when the worker drops its sender; errors show up there.
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends one request; returns the status and the whole body.
    async fn send(&mut self, call: &Call) -> Result<(u16, Bytes), String> {
        let result = self.try_send(call).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn try_send(&mut self, call: &Call) -> Result<(u16, Bytes), String> {
        if self.sender.is_none() {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().ok_or("not connected")?;
        sender.ready().await.map_err(|e| format!("ready: {e}"))?;
        let mut builder = Request::builder()
            .method(call.method.clone())
            .uri(call.path.as_str())
            .header(hyper::header::HOST, self.host.as_str());
        if !self.token.is_empty() {
            builder = builder.header("X-Auth-Token", self.token.as_str());
        }
        let body = match &call.body {
            Some(b) => {
                builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(b.clone()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((status, bytes))
    }

    /// Sends `call` and judges the answer.
    async fn check(&mut self, call: &Call) -> Result<Bytes, String> {
        let (status, body) = self.send(call).await?;
        let ok = match call.expect {
            Expect::Status(s) => status == s,
            Expect::NoFailures => {
                status == 200
                    && body
                        .windows(NO_FAILURES.len())
                        .any(|w| w == NO_FAILURES.as_bytes())
            }
        };
        if ok {
            Ok(body)
        } else {
            Err(format!(
                "{} {}: {status} {}",
                call.method,
                call.path,
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ))
        }
    }
}

const NO_FAILURES: &str = "\"failed_resources\":[]";

/// Everything a worker needs to build its calls.
struct Plan {
    workload: Workload,
    project: String,
    instances: u64,
    resources: u64,
    run_id: String,
    concurrency: u64,
}

impl Plan {
    fn batch_create(&self, ids: impl Iterator<Item = String>, tags: &[(String, String)]) -> Call {
        let resources: Vec<_> = ids
            .map(|id| json!({"resource_id": id, "resource_type": "disk"}))
            .collect();
        let tags: Vec<_> = tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        Call {
            method: Method::POST,
            path: "/v1.0/resource-tags/batch-create".into(),
            body: Some(
                json!({"project_id": self.project, "resources": resources, "tags": tags})
                    .to_string(),
            ),
            expect: Expect::NoFailures,
        }
    }

    fn filter_body(&self, tags: serde_json::Value, extra: serde_json::Value) -> String {
        let mut body = json!({
            "project_id": self.project,
            "resource_types": ["disk"],
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            if !tags.is_null() {
                b.insert("tags".into(), tags);
            }
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        body.to_string()
    }

    fn two_keys() -> serde_json::Value {
        json!([{"key": "env", "values": ["prod"]}, {"key": "team", "values": ["t3"]}])
    }

    /// The call of operation `seq` of worker `worker` (all workloads but w5-query).
    fn call(&self, worker: u64, seq: u64) -> Call {
        let p = &self.project;
        let fixed_tags = |n: u64, seq: u64| -> Vec<(String, String)> {
            (0..n)
                .map(|k| (format!("k{k}"), format!("v{}", seq % 100)))
                .collect()
        };
        match self.workload {
            Workload::W1 => self.batch_create(
                (0..W1_RESOURCES).map(|i| format!("{}-{worker}-{seq}-{i}", self.run_id)),
                &fixed_tags(TAGS_PER_CALL, seq),
            ),
            Workload::W5Write => self.batch_create(
                (0..M1_RESOURCES).map(|i| format!("{}-m1-{seq}-{i}", self.run_id)),
                &fixed_tags(TAGS_PER_CALL, seq),
            ),
            Workload::W5Load => self.batch_create(
                (0..M1_RESOURCES).map(|j| format!("m2-{:06}", seq * M1_RESOURCES + j)),
                &m2_tags(seq),
            ),
            Workload::W2 => {
                let c = seq * self.concurrency + worker;
                let instance = format!("rds-{}", c.wrapping_mul(7919) % self.instances.max(1));
                Call {
                    method: Method::POST,
                    path: format!("/v3/{p}/instances/{instance}/tags/action"),
                    body: Some(format!(
                        r#"{{"action":"create","tags":[{{"key":"k{}","value":"v{c}"}}]}}"#,
                        c % 5
                    )),
                    expect: Expect::Status(204),
                }
            }
            Workload::W3 => Call {
                method: Method::GET,
                path: format!("/v3/{p}/instances/{W3_INSTANCE}/tags"),
                body: None,
                expect: Expect::Status(200),
            },
            Workload::W4Filter => Call {
                method: Method::POST,
                path: "/v1.0/resource-instances/filter".into(),
                body: Some(self.filter_body(Self::two_keys(), json!({"limit": 100}))),
                expect: Expect::Status(200),
            },
            Workload::W4Untagged => Call {
                method: Method::POST,
                path: "/v1.0/resource-instances/filter".into(),
                body: Some(self.filter_body(
                    serde_json::Value::Null,
                    json!({"without_any_tag": true, "limit": 100}),
                )),
                expect: Expect::Status(200),
            },
            Workload::W4Count => Call {
                method: Method::POST,
                path: format!("/v2/{p}/stream/resource_instances/action"),
                body: Some(json!({"action": "count", "tags": Self::two_keys()}).to_string()),
                expect: Expect::Status(200),
            },
            Workload::W4Keys => Call {
                method: Method::GET,
                path: "/v1.0/tag-keys?limit=200".into(),
                body: None,
                expect: Expect::Status(200),
            },
            Workload::W4Values => Call {
                method: Method::GET,
                path: "/v1.0/tag-values?key=owner&limit=200".into(),
                body: None,
                expect: Expect::Status(200),
            },
            Workload::W4Get => Call {
                method: Method::GET,
                path: format!(
                    "/v2.0/resources/disk-{:07}/tags?project_id={p}&resource_type=disk",
                    self.resources / 2
                ),
                body: None,
                expect: Expect::Status(200),
            },
            Workload::Soak => self.soak_call(worker, seq),
            Workload::W5Query => unreachable!("w5-query is paged, see query_all"),
        }
    }

    /// Operation `seq` of worker `worker` of the soak mix: every key, value and resource
    /// comes from a fixed set, so the data set stays the same size however long it runs.
    fn soak_call(&self, worker: u64, seq: u64) -> Call {
        let p = &self.project;
        let c = seq * self.concurrency + worker;
        let instance = format!("rds-{}", c.wrapping_mul(7919) % self.instances.max(1));
        let disks = self.resources.max(10);
        let first = (c.wrapping_mul(104_729) % (disks / 10)) * 10;
        let ten_disks = (first..first + 10).map(|i| format!("soak-disk-{i}"));
        let rds_action = |action: &str, tag: String| Call {
            method: Method::POST,
            path: format!("/v3/{p}/instances/{instance}/tags/action"),
            body: Some(format!(r#"{{"action":"{action}","tags":[{tag}]}}"#)),
            expect: Expect::Status(204),
        };
        match c % 10 {
            0..=3 => rds_action(
                "create",
                format!(r#"{{"key":"k{}","value":"v{}"}}"#, c % 5, c % 1000),
            ),
            4 => rds_action("delete", format!(r#"{{"key":"k{}"}}"#, c % 5)),
            5 => self.batch_create(
                ten_disks,
                &[
                    (
                        "env".into(),
                        ["prod", "test", "dev"][(c % 3) as usize].into(),
                    ),
                    ("team".into(), format!("t{}", c % 7)),
                    ("owner".into(), format!("o{}", c % 50)),
                ],
            ),
            6 => {
                let resources: Vec<_> = ten_disks
                    .map(|id| json!({"resource_id": id, "resource_type": "disk"}))
                    .collect();
                Call {
                    method: Method::POST,
                    path: "/v1.0/resource-tags/batch-delete".into(),
                    body: Some(
                        json!({"project_id": p, "resources": resources, "tags": [{"key": "owner"}]})
                            .to_string(),
                    ),
                    expect: Expect::NoFailures,
                }
            }
            7 | 8 => Call {
                method: Method::GET,
                path: format!("/v3/{p}/instances/{instance}/tags"),
                body: None,
                expect: Expect::Status(200),
            },
            _ => Call {
                method: Method::POST,
                path: "/v1.0/resource-instances/filter".into(),
                body: Some(self.filter_body(
                    json!([{"key": "env", "values": ["prod"]}]),
                    json!({"limit": 100}),
                )),
                expect: Expect::Status(200),
            },
        }
    }

    /// W5 query: env=prod AND team=t3, pages of 100 to the end; checks the count.
    async fn query_all(&self, conn: &mut Conn) -> Result<(), String> {
        let expected = m2_expected(self.resources);
        let mut got = 0u64;
        let mut offset = 0u64;
        loop {
            let call = Call {
                method: Method::POST,
                path: "/v1.0/resource-instances/filter".into(),
                body: Some(
                    self.filter_body(Self::two_keys(), json!({"limit": 100, "offset": offset})),
                ),
                expect: Expect::Status(200),
            };
            let body = conn.check(&call).await?;
            let page: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| format!("w5-query body: {e}"))?;
            let n = page["resources"].as_array().map_or(0, Vec::len) as u64;
            let total = page["total_count"].as_u64().unwrap_or(0);
            got += n;
            offset += n;
            if n == 0 || got >= total {
                if got != expected || total != expected {
                    return Err(format!(
                        "w5-query: {got} resources, total_count {total}, expected {expected}"
                    ));
                }
                return Ok(());
            }
        }
    }
}

#[derive(Default)]
struct WorkerResult {
    ops: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    samples: Vec<String>,
}

async fn worker(
    plan: std::sync::Arc<Plan>,
    mut conn: Conn,
    id: u64,
    deadline: Instant,
    timeout: Duration,
) -> WorkerResult {
    let mut out = WorkerResult::default();
    let mut seq = 0u64;
    // w5-load is a fixed amount of work: call c goes to worker c % concurrency.
    let fixed = plan.workload == Workload::W5Load;
    let calls = plan.resources / M1_RESOURCES;
    loop {
        let op = if fixed {
            let c = seq * plan.concurrency + id;
            if c >= calls {
                break;
            }
            c
        } else {
            if Instant::now() >= deadline {
                break;
            }
            seq
        };
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, async {
            if plan.workload == Workload::W5Query {
                plan.query_all(&mut conn).await
            } else {
                conn.check(&plan.call(id, op)).await.map(|_| ())
            }
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")));
        let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
        match result {
            Ok(()) => {
                out.ops += 1;
                out.latencies_us.push(micros);
            }
            Err(e) => {
                out.errors += 1;
                if out.samples.len() < 3 {
                    out.samples.push(e);
                }
                // A refused or broken connection must not turn into a hot loop.
                tokio::time::sleep(Duration::from_millis(10)).await;
                if fixed {
                    // Loading stops at the first failure: the data would be incomplete.
                    break;
                }
            }
        }
        seq += 1;
    }
    out
}

fn parse_url(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let host = rest.trim_end_matches('/').to_owned();
    let addr = host
        .parse::<SocketAddr>()
        .map_err(|e| format!("{url}: want http://IP:PORT ({e})"))?;
    Ok((addr, host))
}

async fn run(args: Args) -> Result<bool, String> {
    let (addr, host) = parse_url(&args.url)?;
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("r{:x}", nanos % 0xff_ffff)
    });
    let concurrency = args.concurrency.max(1);
    let plan = std::sync::Arc::new(Plan {
        workload: args.workload,
        project: args.project.clone(),
        instances: args.instances,
        resources: args.resources,
        run_id,
        concurrency: concurrency as u64,
    });
    let new_conn = || Conn {
        addr,
        host: host.clone(),
        token: args.token.clone(),
        sender: None,
    };
    if args.workload == Workload::W3 {
        // The resource W3 reads carries five tags.
        let tags: Vec<_> = (0..5)
            .map(|k| json!({"key": format!("k{k}"), "value": format!("value-{k}")}))
            .collect();
        let call = Call {
            method: Method::POST,
            path: format!("/v3/{}/instances/{W3_INSTANCE}/tags/action", args.project),
            body: Some(json!({"action": "create", "tags": tags}).to_string()),
            expect: Expect::Status(204),
        };
        new_conn()
            .check(&call)
            .await
            .map_err(|e| format!("w3 set-up: {e}"))?;
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    let handles: Vec<_> = (0..concurrency as u64)
        .map(|id| tokio::spawn(worker(plan.clone(), new_conn(), id, deadline, timeout)))
        .collect();
    let mut all = WorkerResult::default();
    for h in handles {
        let r = h.await.map_err(|e| format!("worker panicked: {e}"))?;
        all.ops += r.ops;
        all.errors += r.errors;
        all.latencies_us.extend(r.latencies_us);
        all.samples.extend(r.samples);
    }
    let seconds = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let units = args.workload.units();
    let rps = all.ops as f64 / seconds;
    let line = json!({
        "system": args.system,
        "workload": args.workload.name(),
        "concurrency": concurrency,
        "requests": all.ops,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "rps": (rps * 10.0).round() / 10.0,
        "p50_ms": quantile_ms(&all.latencies_us, 0.50),
        "p99_ms": quantile_ms(&all.latencies_us, 0.99),
        "max_ms": quantile_ms(&all.latencies_us, 1.0),
        "errors": all.errors,
        "unit_per_request": units,
        "units_per_s": (rps * units as f64).round(),
    });
    println!("{line}");
    for s in &all.samples {
        eprintln!("load: {} {}: {s}", args.system, args.workload.name());
    }
    if all.errors > 0 {
        eprintln!(
            "load: {} {}: {} of {} requests failed",
            args.system,
            args.workload.name(),
            all.errors,
            all.errors + all.ops
        );
    }
    if all.ops == 0 {
        eprintln!(
            "load: {} {}: no request completed",
            args.system,
            args.workload.name()
        );
    }
    Ok(all.errors == 0 && all.ops > 0)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("load: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
