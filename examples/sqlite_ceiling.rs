//! The storage ceiling of bench/suite.sh: a plain SQLite program storing what the
//! workloads store, on tagd's own schema (migrations/sqlite: `resources` and `tags`),
//! plus the (key, value, rid) query index that plain SQL needs to find resources by tag
//! ("S1i" in perf-anchors.md; `--no-query-index` leaves it out, as tagd does), with tagd's
//! durability (WAL, `synchronous=FULL`: every commit is synced). No HTTP, no checks,
//! no tag index beside the store. Prints one JSON line like examples/load.rs.
//!
//! Modes:
//! - `w1`: per transaction `--group` batches of 50 fresh resources x 10 tag upserts.
//!   `--threads N` runs N writers on their own connections (SQLite serialises them);
//!   `--group G` > 1 is one writer committing G batches per transaction (what group
//!   commit can reach). Unit: tag rows.
//! - `w2`: per transaction `--group` single-tag upserts on 1,000 registered resources.
//! - `m2`: 5,000 resources x 5 tags (bench/moto_peer.py's data), then env=prod AND
//!   team=t3, every match with its tags, as plain SQL; one sequential client.
//!
//! ```sh
//! cargo run --release --example sqlite_ceiling -- --mode w1 --threads 1 --duration 10
//! ```

#[path = "shared/w5.rs"]
mod w5;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use rusqlite::{params, Connection, TransactionBehavior};
use serde_json::json;
use w5::{m2_expected, m2_tags, quantile_ms, M1_RESOURCES};

const DOMAIN: &str = "d0";
const PROJECT: &str = "p0";

#[derive(Parser, Debug)]
#[command(about = "Plain-SQLite storage ceiling for bench/suite.sh")]
struct Args {
    #[arg(long, value_enum)]
    mode: Mode,
    /// Writer threads, each on its own connection.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Batches (w1) or single-tag writes (w2) per transaction.
    #[arg(long, default_value_t = 1)]
    group: u64,
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Directory for the database (a fresh file is created in it).
    #[arg(long)]
    dir: PathBuf,
    /// Name copied into the JSON line.
    #[arg(long, default_value = "sqlite")]
    system: String,
    /// m2: resources loaded (20 per data call, as bench/moto_peer.py).
    #[arg(long, default_value_t = 5000)]
    resources: u64,
    /// Leave out the SQL (key, value, rid) index: faster writes, and tag queries that
    /// scan (tagd answers them from its in-memory tag index instead).
    #[arg(long)]
    no_query_index: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    W1,
    W2,
    M2,
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn create(path: &Path, query_index: bool) -> rusqlite::Result<Connection> {
    let conn = open(path)?;
    for m in tagd::store::sqlite::MIGRATIONS {
        conn.execute_batch(m)?;
    }
    if query_index {
        conn.execute_batch("CREATE INDEX tags_by_key_value ON tags (key, value, rid)")?;
    }
    conn.execute(
        "INSERT INTO domains (id, name, created_at) VALUES (?1, 'bench', 0)",
        [DOMAIN],
    )?;
    conn.execute(
        "INSERT INTO projects (id, domain_id, name, created_at) VALUES (?1, ?2, 'bench', 0)",
        [PROJECT, DOMAIN],
    )?;
    Ok(conn)
}

fn insert_resource(conn: &Connection, id: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO resources (domain_id, project_id, resource_type, resource_id, created_at)
         VALUES (?1, ?2, 'disk', ?3, 0) RETURNING rid",
    )?
    .query_row(params![DOMAIN, PROJECT, id], |r| r.get(0))
}

fn upsert_tag(conn: &Connection, rid: i64, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO tags (rid, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (rid, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![rid, key, value])?;
    Ok(())
}

struct Outcome {
    ops: u64,
    latencies_us: Vec<u32>,
}

/// Runs `op(conn, thread, seq)` as one IMMEDIATE transaction each, until the deadline.
fn writers(
    path: &Path,
    threads: usize,
    deadline: Instant,
    op: impl Fn(&Connection, u64, u64) -> rusqlite::Result<()> + Sync,
) -> rusqlite::Result<Outcome> {
    let results: Vec<rusqlite::Result<Outcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let op = &op;
                s.spawn(move || -> rusqlite::Result<Outcome> {
                    let mut conn = open(path)?;
                    let mut out = Outcome {
                        ops: 0,
                        latencies_us: Vec::new(),
                    };
                    let mut seq = 0;
                    while Instant::now() < deadline {
                        let started = Instant::now();
                        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                        op(&tx, t, seq)?;
                        tx.commit()?;
                        out.latencies_us
                            .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        out.ops += 1;
                        seq += 1;
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a writer thread panicked"))
            .collect()
    });
    let mut all = Outcome {
        ops: 0,
        latencies_us: Vec::new(),
    };
    for r in results {
        let r = r?;
        all.ops += r.ops;
        all.latencies_us.extend(r.latencies_us);
    }
    Ok(all)
}

fn m2(path: &Path, resources: u64, deadline_after: Duration) -> rusqlite::Result<Outcome> {
    let mut conn = open(path)?;
    let tx = conn.transaction()?;
    for c in 0..resources / M1_RESOURCES {
        let tags = m2_tags(c);
        for j in 0..M1_RESOURCES {
            let rid = insert_resource(&tx, &format!("m2-{:06}", c * M1_RESOURCES + j))?;
            for (k, v) in &tags {
                upsert_tag(&tx, rid, k, v)?;
            }
        }
    }
    tx.commit()?;
    conn.execute_batch("ANALYZE")?;
    let expected = m2_expected(resources);
    let mut query = conn.prepare(
        // Driven by the query index from the more selective tag (team: a tenth), as a
        // plain program that knows its data would write it (perf-anchors.md S2s).
        "SELECT r.resource_id, t.key, t.value
         FROM tags a
         JOIN tags b ON b.rid = a.rid AND b.key = 'env' AND b.value = 'prod'
         JOIN resources r ON r.rid = a.rid
         JOIN tags t ON t.rid = r.rid
         WHERE a.key = 'team' AND a.value = 't3'
           AND r.domain_id = ?1 AND r.project_id = ?2 AND r.resource_type = 'disk'
         ORDER BY r.resource_type, r.resource_id, t.key",
    )?;
    let mut out = Outcome {
        ops: 0,
        latencies_us: Vec::new(),
    };
    let deadline = Instant::now() + deadline_after;
    while Instant::now() < deadline {
        let started = Instant::now();
        let mut found: Vec<(String, Vec<(String, String)>)> = Vec::new();
        let mut rows = query.query(params![DOMAIN, PROJECT])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let tag = (row.get(1)?, row.get(2)?);
            match found.last_mut() {
                Some((last, tags)) if *last == id => tags.push(tag),
                _ => found.push((id, vec![tag])),
            }
        }
        out.latencies_us
            .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if found.len() as u64 != expected {
            return Err(rusqlite::Error::InvalidQuery).inspect_err(|_| {
                eprintln!(
                    "sqlite_ceiling m2: {} matches, expected {expected}",
                    found.len()
                )
            });
        }
        out.ops += 1;
    }
    Ok(out)
}

fn run(args: &Args) -> rusqlite::Result<(Outcome, f64, u64)> {
    let path = args.dir.join(format!("ceiling-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let conn = create(&path, !args.no_query_index)?;
    let duration = Duration::from_secs_f64(args.duration);
    let group = args.group.max(1);
    let threads = args.threads.max(1);
    let result = match args.mode {
        Mode::W1 => {
            drop(conn);
            let started = Instant::now();
            let out = writers(&path, threads, started + duration, |tx, t, seq| {
                for b in 0..group {
                    for i in 0..50 {
                        let rid = insert_resource(tx, &format!("w1-{t}-{seq}-{b}-{i}"))?;
                        for k in 0..10 {
                            upsert_tag(tx, rid, &format!("k{k}"), &format!("v{}", seq % 100))?;
                        }
                    }
                }
                Ok(())
            })?;
            (out, started.elapsed().as_secs_f64(), 500 * group)
        }
        Mode::W2 => {
            let tx = conn.unchecked_transaction()?;
            for i in 0..1000 {
                insert_resource(&tx, &format!("rds-{i}"))?;
            }
            tx.commit()?;
            drop(conn);
            let started = Instant::now();
            let out = writers(&path, threads, started + duration, |tx, t, seq| {
                for g in 0..group {
                    let c = (seq * group + g) * threads as u64 + t;
                    let rid = (c.wrapping_mul(7919) % 1000) as i64 + 1;
                    upsert_tag(tx, rid, &format!("k{}", c % 5), &format!("v{c}"))?;
                }
                Ok(())
            })?;
            (out, started.elapsed().as_secs_f64(), group)
        }
        Mode::M2 => {
            drop(conn);
            let out = m2(&path, args.resources, duration)?;
            // Seconds of querying only: the load is set-up.
            let seconds = out.latencies_us.iter().map(|&u| u as f64).sum::<f64>() / 1e6;
            (out, seconds, 1)
        }
    };
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(result)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok((mut out, seconds, units)) => {
            out.latencies_us.sort_unstable();
            let rps = out.ops as f64 / seconds.max(1e-9);
            let workload = match args.mode {
                Mode::W1 => "w1",
                Mode::W2 => "w2",
                Mode::M2 => "w5-query",
            };
            println!(
                "{}",
                json!({
                    "system": args.system,
                    "workload": workload,
                    "concurrency": args.threads.max(1),
                    "group": args.group.max(1),
                    "requests": out.ops,
                    "seconds": (seconds * 1000.0).round() / 1000.0,
                    "rps": (rps * 10.0).round() / 10.0,
                    "p50_ms": quantile_ms(&out.latencies_us, 0.50),
                    "p99_ms": quantile_ms(&out.latencies_us, 0.99),
                    "max_ms": quantile_ms(&out.latencies_us, 1.0),
                    "errors": 0,
                    "unit_per_request": units,
                    "units_per_s": (rps * units as f64).round(),
                })
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sqlite_ceiling: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
