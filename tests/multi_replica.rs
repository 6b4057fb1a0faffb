//! Three tagd processes on one PostgreSQL database, hammered at once.
//!
//! 64 clients spread over the replicas create, overwrite and delete tags on 100 hot RDS
//! instances for a bounded time (`TAGD_MULTI_REPLICA_SECS`, 20 by default), half through
//! RDS's own `tags/action` and half through TMS's batch API; after some writes a client
//! reads the instance back through another replica. Every value written is unique to
//! its request, so a stored value names the request that wrote it. Afterwards:
//!
//! - no request got a 5xx or any answer other than success or the documented limit
//!   refusal;
//! - every instance is within its tag limit, and all replicas read the same final state;
//! - the final state, and every read-back, is one that a replay of the acknowledged
//!   requests in some order consistent with real time produces: for each key, the value
//!   seen was written by a request that may have been the last to touch the key before
//!   the read (none that surely came after it and surely came before the read), and an
//!   absent key was last touched by a delete or never surely touched at all;
//! - a value of a refused request appears nowhere;
//! - the final state equals a replay of the applied requests in commit order. The test
//!   (not tagd) puts a trigger on the `tags` table that logs every row change with a
//!   sequence number and its transaction; a resource's transactions are ordered by
//!   their first change (its row lock is held from before the first change until
//!   commit, so this is commit order). Each logged transaction must be exactly the effect
//!   of one acknowledged request on the state replayed so far, no request may appear
//!   twice, every applied request that sets tags must appear, and the replayed state
//!   must stay within the limit after every step and end equal to what the replicas
//!   read.
//!
//! Tokens and predefined tags are checked across processes on the way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tagd::datagen::Lcg;
use tagd::store::throwaway::ThrowawayDatabase;
use tokio::process::Child;

#[path = "api/tagd_process.rs"]
mod tagd_process;
use tagd_process::{admin_token, credential, free_port, spawn_with};

const REPLICAS: usize = 3;
const CLIENTS: usize = 64;
const RESOURCES: usize = 100;
const KEYS: usize = 30;
const TAG_LIMIT: usize = 20;
/// Shared by the replicas: access-key secrets sealed by one are opened by the others.
const SERVER_KEY: &str = "5ea1ed5ea1ed5ea1ed5ea1ed5ea1ed5ea1ed5ea1ed5ea1ed5ea1ed5ea1ed5ea1";

/// A replica on the shared database, with the shared server key.
async fn spawn_replica(dir: &Path, port: u16, database_url: &str) -> Child {
    spawn_with(
        dir,
        port,
        &[
            "--database-url",
            database_url,
            "--database-max-connections",
            "8",
        ],
        &[("TAGD_SERVER_KEY", SERVER_KEY)],
    )
    .await
}

#[derive(Debug, Clone, PartialEq)]
enum Change {
    Set(Vec<(String, String)>),
    Delete(Vec<String>),
}

impl Change {
    fn touches(&self, key: &str) -> bool {
        match self {
            Change::Set(tags) => tags.iter().any(|(k, _)| k == key),
            Change::Delete(keys) => keys.iter().any(|k| k == key),
        }
    }
}

/// One acknowledged write.
#[derive(Debug, Clone)]
struct Write {
    resource: usize,
    change: Change,
    sent: Instant,
    acked: Instant,
    applied: bool,
}

/// One read of a resource's tags.
#[derive(Debug, Clone)]
struct Read {
    resource: usize,
    sent: Instant,
    acked: Instant,
    tags: BTreeMap<String, String>,
}

#[derive(Default)]
struct History {
    writes: Vec<Write>,
    reads: Vec<Read>,
    /// Answers that are neither success nor the documented limit refusal.
    unexpected: Vec<String>,
}

/// Uniform in `0..n`, from the project's deterministic generator: each client's
/// choices are reproducible.
fn pick(rng: &mut Lcg, n: usize) -> usize {
    rng.below(n as u32) as usize
}

fn instance(i: usize) -> String {
    format!("hot{i:03}in01")
}

struct Replica {
    base: String,
}

struct Run {
    replicas: Vec<Replica>,
    project: String,
    token: String,
    http: reqwest::Client,
    next_value: AtomicU64,
    history: Mutex<History>,
}

impl Run {
    fn unexpected(&self, what: String) {
        if let Ok(mut h) = self.history.lock() {
            h.unexpected.push(what);
        }
    }

    /// Writes through RDS's `tags/action` or TMS's batch API; returns whether the write
    /// was applied, or `None` for an unexpected answer (recorded).
    async fn write(
        &self,
        replica: usize,
        via_tms: bool,
        resource: usize,
        change: &Change,
    ) -> Option<bool> {
        let base = &self.replicas[replica].base;
        let id = instance(resource);
        let request = if via_tms {
            let (path, tags) = match change {
                Change::Set(tags) => (
                    "batch-create",
                    tags.iter()
                        .map(|(k, v)| json!({"key": k, "value": v}))
                        .collect::<Vec<_>>(),
                ),
                Change::Delete(keys) => (
                    "batch-delete",
                    keys.iter().map(|k| json!({"key": k})).collect(),
                ),
            };
            self.http
                .post(format!("{base}/v1.0/resource-tags/{path}"))
                .json(&json!({"project_id": self.project,
                    "resources": [{"resource_id": id, "resource_type": "rds"}], "tags": tags}))
        } else {
            let body = match change {
                Change::Set(tags) => json!({"action": "create", "tags":
                    tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()}),
                Change::Delete(keys) => json!({"action": "delete", "tags":
                    keys.iter().map(|k| json!({"key": k})).collect::<Vec<_>>()}),
            };
            self.http
                .post(format!(
                    "{base}/v3/{}/instances/{id}/tags/action",
                    self.project
                ))
                .json(&body)
        };
        let response = match request.header("X-Auth-Token", &self.token).send().await {
            Ok(r) => r,
            Err(e) => {
                self.unexpected(format!("transport error: {e}"));
                return None;
            }
        };
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let limit_refusal = |code: &Value| code == "DBS.200087" || code == "TMS.0014";
        let applied = match (via_tms, status) {
            (false, 204) => Some(true),
            (false, 400) if limit_refusal(&body["error_code"]) => Some(false),
            (true, 200) => match body["failed_resources"].as_array() {
                Some(failed) if failed.is_empty() => Some(true),
                Some(failed) if failed.len() == 1 && limit_refusal(&failed[0]["error_code"]) => {
                    Some(false)
                }
                _ => None,
            },
            _ => None,
        };
        if applied.is_none() {
            self.unexpected(format!(
                "{status} {body} for {change:?} via {}",
                if via_tms { "TMS" } else { "RDS" }
            ));
        }
        applied
    }

    async fn read(&self, replica: usize, resource: usize) -> Option<BTreeMap<String, String>> {
        let base = &self.replicas[replica].base;
        let response = self
            .http
            .get(format!(
                "{base}/v3/{}/instances/{}/tags",
                self.project,
                instance(resource)
            ))
            .header("X-Auth-Token", &self.token)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                self.unexpected(format!("transport error on read: {e}"));
                return None;
            }
        };
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let Some(tags) = body["tags"].as_array().filter(|_| status == 200) else {
            self.unexpected(format!("read answered {status} {body}"));
            return None;
        };
        Some(
            tags.iter()
                .map(|t| {
                    (
                        t["key"].as_str().unwrap_or_default().to_owned(),
                        t["value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
        )
    }

    async fn client(self: Arc<Self>, n: usize, deadline: Instant) {
        let mut rng = Lcg::new(n as u64 * 7919 + 17);
        let replica = n % REPLICAS;
        let via_tms = n % 2 == 1;
        while Instant::now() < deadline {
            let resource = pick(&mut rng, RESOURCES);
            let change = if pick(&mut rng, 100) < 75 {
                let count = 1 + pick(&mut rng, 5);
                Change::Set(
                    (0..count)
                        .map(|_| {
                            let value = self.next_value.fetch_add(1, Ordering::Relaxed);
                            (format!("k{:02}", pick(&mut rng, KEYS)), format!("v{value}"))
                        })
                        // One value per key within a request.
                        .collect::<BTreeMap<_, _>>()
                        .into_iter()
                        .collect(),
                )
            } else {
                let count = 1 + pick(&mut rng, 3);
                let mut keys: Vec<String> = (0..count)
                    .map(|_| format!("k{:02}", pick(&mut rng, KEYS)))
                    .collect();
                keys.sort();
                keys.dedup();
                Change::Delete(keys)
            };
            let sent = Instant::now();
            let Some(applied) = self.write(replica, via_tms, resource, &change).await else {
                continue;
            };
            let acked = Instant::now();
            if let Ok(mut h) = self.history.lock() {
                h.writes.push(Write {
                    resource,
                    change,
                    sent,
                    acked,
                    applied,
                });
            }
            // Read your write through another replica, now and then.
            if pick(&mut rng, 3) == 0 {
                let sent = Instant::now();
                if let Some(tags) = self.read((replica + 1) % REPLICAS, resource).await {
                    let acked = Instant::now();
                    if let Ok(mut h) = self.history.lock() {
                        h.reads.push(Read {
                            resource,
                            sent,
                            acked,
                            tags,
                        });
                    }
                }
            }
        }
    }
}

/// Whether `observed` (the value of `key`, or its absence) is what some replay of the
/// applied writes, in an order consistent with real time, leaves for a read that ran
/// between `sent` and `acked`. `writes` are the applied writes of the resource.
fn explains(
    writes: &[&Write],
    key: &str,
    observed: Option<&str>,
    sent: Instant,
    acked: Instant,
) -> Result<(), String> {
    let touching: Vec<&&Write> = writes.iter().filter(|w| w.change.touches(key)).collect();
    // May have been the last to touch the key before the read: it started before the
    // read ended, and no write of the key surely came after it and surely before the read.
    let last_candidates: Vec<&&Write> = touching
        .iter()
        .copied()
        .filter(|w| w.sent < acked)
        .filter(|w| {
            !touching
                .iter()
                .any(|later| later.sent > w.acked && later.acked < sent)
        })
        .collect();
    let initial_possible = !touching.iter().any(|w| w.acked < sent);
    match observed {
        Some(value) => {
            let writer = touching.iter().find(|w| match &w.change {
                Change::Set(tags) => tags.iter().any(|(k, v)| k == key && v == value),
                Change::Delete(_) => false,
            });
            match writer {
                None => Err(format!("{key}={value} was written by no applied request")),
                Some(w) if last_candidates.iter().any(|c| std::ptr::eq(**c, **w)) => Ok(()),
                Some(w) => Err(format!(
                    "{key}={value} is stale: its write {w:?} was surely overwritten before the read"
                )),
            }
        }
        None => {
            let deleted = last_candidates
                .iter()
                .any(|w| matches!(w.change, Change::Delete(_)));
            if deleted || initial_possible {
                Ok(())
            } else {
                Err(format!(
                    "{key} is missing, but it was surely set and no delete can have been last"
                ))
            }
        }
    }
}

fn check(
    history: &History,
    resource: usize,
    tags: &BTreeMap<String, String>,
    sent: Instant,
    acked: Instant,
) -> Result<(), String> {
    let writes: Vec<&Write> = history
        .writes
        .iter()
        .filter(|w| w.resource == resource && w.applied)
        .collect();
    if tags.len() > TAG_LIMIT {
        return Err(format!(
            "{} tags, over the limit of {TAG_LIMIT}",
            tags.len()
        ));
    }
    for k in 0..KEYS {
        let key = format!("k{k:02}");
        explains(
            &writes,
            &key,
            tags.get(&key).map(String::as_str),
            sent,
            acked,
        )?;
    }
    if let Some(stray) = tags.keys().find(|k| !k.starts_with('k') || k.len() != 3) {
        return Err(format!("a key no request wrote: {stray}"));
    }
    Ok(())
}

/// Logs every change of `tags` in `tag_history`, with its transaction.
const HISTORY: &str = "
    CREATE TABLE tag_history (
        seq    BIGSERIAL PRIMARY KEY,
        tx     BIGINT NOT NULL DEFAULT txid_current(),
        rid    BIGINT NOT NULL,
        key    TEXT NOT NULL,
        value  TEXT
    );
    CREATE FUNCTION log_tag_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO tag_history (rid, key, value) VALUES (OLD.rid, OLD.key, NULL);
            RETURN OLD;
        END IF;
        INSERT INTO tag_history (rid, key, value) VALUES (NEW.rid, NEW.key, NEW.value);
        RETURN NEW;
    END $$;
    CREATE TRIGGER log_tag_change AFTER INSERT OR UPDATE OR DELETE ON tags
        FOR EACH ROW EXECUTE FUNCTION log_tag_change();";

/// One committed transaction's changes to one resource: key → new value (`None`:
/// deleted).
type Effect = BTreeMap<String, Option<String>>;

/// What replaying `change` on `state` changes.
fn effect_of(change: &Change, state: &BTreeMap<String, String>) -> Effect {
    match change {
        Change::Set(tags) => tags
            .iter()
            .filter(|(k, v)| state.get(k) != Some(v))
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect(),
        Change::Delete(keys) => keys
            .iter()
            .filter(|k| state.contains_key(*k))
            .map(|k| (k.clone(), None))
            .collect(),
    }
}

/// Replays one resource's logged transactions (in commit order) with the requests
/// they must come from; returns the replayed state and how many requests it placed.
fn replay(
    resource: usize,
    transactions: &[Effect],
    history: &History,
    used: &mut BTreeSet<usize>,
) -> Result<BTreeMap<String, String>, String> {
    let mut state = BTreeMap::new();
    for (step, logged) in transactions.iter().enumerate() {
        // The request whose unique value the transaction wrote, or a delete whose
        // effect on this state is exactly the logged one.
        let written = logged.iter().find_map(|(k, v)| v.as_ref().map(|v| (k, v)));
        let origin = history.writes.iter().enumerate().find(|(i, w)| {
            w.resource == resource
                && !used.contains(i)
                && match written {
                    Some((k, v)) => matches!(&w.change, Change::Set(tags)
                        if tags.iter().any(|(tk, tv)| tk == k && tv == v)),
                    None => {
                        matches!(w.change, Change::Delete(_))
                            && w.applied
                            && &effect_of(&w.change, &state) == logged
                    }
                }
        });
        let Some((index, write)) = origin else {
            return Err(format!(
                "transaction #{step} {logged:?} comes from no request"
            ));
        };
        if !write.applied {
            return Err(format!(
                "transaction #{step} applied a refused request {write:?}"
            ));
        }
        let expected = effect_of(&write.change, &state);
        if &expected != logged {
            return Err(format!(
                "transaction #{step} changed {logged:?}, but {:?} on {state:?} changes {expected:?}",
                write.change
            ));
        }
        used.insert(index);
        for (k, v) in logged {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
        if state.len() > TAG_LIMIT {
            return Err(format!("after transaction #{step}: {} tags", state.len()));
        }
    }
    Ok(state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_on_one_database_lose_nothing_and_pass_no_limit() {
    let seconds: u64 = std::env::var("TAGD_MULTI_REPLICA_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let database = ThrowawayDatabase::create().await;
    let dirs: Vec<tempfile::TempDir> = (0..REPLICAS)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect();
    // The first replica creates the first identity; the others find it there.
    let mut children = vec![spawn_replica(dirs[0].path(), ports[0], &database.url).await];
    for i in 1..REPLICAS {
        children.push(spawn_replica(dirs[i].path(), ports[i], &database.url).await);
        assert!(
            !dirs[i].path().join("credentials").exists(),
            "only the first replica bootstraps the identity"
        );
    }
    let (db, connection) = database
        .config()
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    db.batch_execute(HISTORY)
        .await
        .expect("install the change log");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("client");
    let replicas: Vec<Replica> = ports
        .iter()
        .map(|p| Replica {
            base: format!("http://127.0.0.1:{p}"),
        })
        .collect();

    // A token issued by one replica works on every other.
    let token_for = |scope: Value| {
        let base = replicas[0].base.clone();
        let dir = dirs[0].path().to_path_buf();
        async move { admin_token(&base, &dir, scope).await }
    };
    let project = credential(dirs[0].path(), "project_id");
    let token = token_for(json!({"project": {"id": project}})).await;
    let domain_token =
        token_for(json!({"domain": {"name": credential(dirs[0].path(), "domain_name")}})).await;

    // Predefined tags created through one replica are listed by another.
    let r = http
        .post(format!("{}/v1.0/predefine_tags/action", replicas[1].base))
        .header("X-Auth-Token", &domain_token)
        .json(&json!({"action": "create", "tags": [{"key": "cost", "value": "shared"}]}))
        .send()
        .await
        .expect("predefine");
    assert_eq!(r.status(), 204);
    let listed: Value = http
        .get(format!("{}/v1.0/predefine_tags", replicas[2].base))
        .header("X-Auth-Token", &domain_token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["tags"][0]["key"], "cost", "{listed}");

    // The hot instances, registered through the third replica.
    let resources: Vec<Value> = (0..RESOURCES)
        .map(|i| json!({"project_id": project, "resource_type": "rds", "resource_id": instance(i)}))
        .collect();
    let r = http
        .post(format!("{}/tagd/v1/resources", replicas[2].base))
        .header("X-Auth-Token", &domain_token)
        .json(&json!({ "resources": resources }))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 200);

    let run = Arc::new(Run {
        replicas,
        project,
        token,
        http,
        next_value: AtomicU64::new(0),
        history: Mutex::new(History::default()),
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(run.clone().client(n, deadline)))
        .collect();
    for client in clients {
        client.await.expect("client task");
    }

    // The final state, read through every replica after every write was acknowledged.
    let end = Instant::now();
    let mut finals: HashMap<usize, BTreeMap<String, String>> = HashMap::new();
    for resource in 0..RESOURCES {
        for replica in 0..REPLICAS {
            let tags = run.read(replica, resource).await.expect("final read");
            match finals.get(&resource) {
                None => {
                    finals.insert(resource, tags);
                }
                Some(first) => assert_eq!(first, &tags, "replicas disagree on {resource}"),
            }
        }
    }
    let history = std::mem::take(&mut *run.history.lock().expect("history"));
    assert!(
        history.unexpected.is_empty(),
        "{} unexpected answers, e.g. {:?}",
        history.unexpected.len(),
        &history.unexpected[..history.unexpected.len().min(5)]
    );
    let applied = history.writes.iter().filter(|w| w.applied).count();
    let refused = history.writes.len() - applied;
    assert!(
        applied > 500 && refused > 0,
        "the run exercised too little: {applied} applied, {refused} refused"
    );
    for (resource, tags) in &finals {
        check(&history, *resource, tags, end, Instant::now())
            .unwrap_or_else(|e| panic!("final state of {}: {e}", instance(*resource)));
    }
    for read in &history.reads {
        check(&history, read.resource, &read.tags, read.sent, read.acked).unwrap_or_else(|e| {
            panic!(
                "a read of {} through another replica: {e}",
                instance(read.resource)
            )
        });
    }
    // A refused request's values appear nowhere.
    for w in history.writes.iter().filter(|w| !w.applied) {
        if let Change::Set(tags) = &w.change {
            for (k, v) in tags {
                assert!(
                    finals.values().all(|f| f.get(k) != Some(v)),
                    "refused {k}={v} was stored"
                );
            }
        }
    }
    // The replay in commit order.
    let logged = db
        .query(
            "SELECT h.tx, r.resource_id::text, h.key::text, h.value::text
             FROM tag_history h JOIN resources r ON r.rid = h.rid ORDER BY h.seq",
            &[],
        )
        .await
        .expect("read the change log");
    let index_of: HashMap<String, usize> = (0..RESOURCES).map(|i| (instance(i), i)).collect();
    let mut per_resource: HashMap<usize, Vec<(i64, Effect)>> = HashMap::new();
    for row in &logged {
        let (tx, id, key, value): (i64, String, String, Option<String>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let resource = index_of[&id];
        let transactions = per_resource.entry(resource).or_default();
        match transactions.last_mut() {
            Some((last, effect)) if *last == tx => {
                effect.insert(key, value);
            }
            _ => {
                assert!(
                    transactions.iter().all(|(seen, _)| *seen != tx),
                    "transaction {tx} on {id} interleaved with another: not serialised"
                );
                transactions.push((tx, BTreeMap::from([(key, value)])));
            }
        }
    }
    let mut used = BTreeSet::new();
    let mut replayed_transactions = 0;
    for resource in 0..RESOURCES {
        let transactions: Vec<Effect> = per_resource
            .remove(&resource)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, effect)| effect)
            .collect();
        replayed_transactions += transactions.len();
        let state = replay(resource, &transactions, &history, &mut used)
            .unwrap_or_else(|e| panic!("replay of {}: {e}", instance(resource)));
        assert_eq!(
            state,
            finals[&resource],
            "the replay of {} in commit order differs from the final state",
            instance(resource)
        );
    }
    for (i, w) in history.writes.iter().enumerate() {
        if w.applied && matches!(w.change, Change::Set(_)) {
            assert!(
                used.contains(&i),
                "applied request missing from the log: {w:?}"
            );
        }
    }
    let deadlocks: i64 = db
        .query_one(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .expect("statistics")
        .get(0);
    // How often two writes of one resource were in flight at once (they then took turns
    // on its row lock).
    let mut overlapping = 0;
    for resource in 0..RESOURCES {
        let mut writes: Vec<&Write> = history
            .writes
            .iter()
            .filter(|w| w.resource == resource)
            .collect();
        writes.sort_by_key(|w| w.sent);
        let mut latest_ack: Option<Instant> = None;
        for w in writes {
            if latest_ack.is_some_and(|a| a > w.sent) {
                overlapping += 1;
            }
            latest_ack = Some(latest_ack.map_or(w.acked, |a| a.max(w.acked)));
        }
    }
    eprintln!(
        "{seconds} s: {} requests acknowledged ({applied} applied, {refused} refused at the limit), \
         {replayed_transactions} committed transactions replayed in commit order, \
         {overlapping} writes overlapped another write of the same resource, \
         {} reads through another replica and {} final states checked, {deadlocks} deadlocks",
        history.writes.len(),
        history.reads.len(),
        finals.len()
    );
    drop(children);
}
