//! Rate limits like the cloud's API gateway: per credential (an access key or a token)
//! and per project, each answering 429 `APIGW.0308` with `Retry-After` once spent.
//!
//! Requests are counted after authentication, so nobody can spend another caller's
//! budget by sending requests that merely name its access key. Each limit is a GCRA
//! (a token bucket kept as one timestamp per key): `rate` requests a second, with
//! `burst_secs` seconds' worth allowed at once. Keys that have been idle long enough
//! to be full again are forgotten, so memory follows the active callers, not every
//! caller ever seen.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use super::language::{self, Language};
use crate::auth::{Credential, Principal};

/// Which limit a refused request ran into; named in the error message as the gateway
/// names its policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// One access key or token.
    Credential,
    /// One project (or, for a domain-scoped caller, its domain), whoever calls.
    Project,
}

impl Policy {
    /// Every policy, for counters that start at zero.
    pub const LABELS: [&'static str; 2] = ["credential", "project"];

    /// The policy as a metric label (`tagd_rate_limited_total{policy}`).
    pub fn label(self) -> &'static str {
        match self {
            Policy::Credential => "credential",
            Policy::Project => "project",
        }
    }
}

/// A request refused by a limit: what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub policy: Policy,
    /// Requests a second the policy allows.
    pub limit: u32,
    /// Whole seconds until a request would be let through again (at least 1).
    pub retry_after_secs: u64,
    /// The id of the refused request, repeated in the body as the gateway does.
    pub request_id: String,
}

impl Throttled {
    /// The gateway's answer, whatever the API: 429 with a flat `APIGW.0308` body and
    /// `Retry-After`. (The Python SDKs retry a 429 on GET by themselves, honouring
    /// `Retry-After`, and parse the body of a 429 on POST.)
    pub fn response(&self) -> Response {
        let (policy_en, policy_zh) = match self.policy {
            Policy::Credential => ("user", "用户"),
            Policy::Project => ("project", "项目"),
        };
        let message = match language::current() {
            Language::English => format!(
                "The throttling threshold has been reached: policy {policy_en} over ratelimit, limit:{}, time:1 second",
                self.limit
            ),
            Language::Chinese => format!(
                "已达到流控阈值：{policy_zh}流控策略，每秒最多{}次请求",
                self.limit
            ),
        };
        let mut response = super::json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &serde_json::json!({
                "error_code": "APIGW.0308",
                "error_msg": message,
                "request_id": self.request_id,
            }),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(self.retry_after_secs),
        );
        response
    }
}

/// The configured limits; a rate of 0 turns that limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub per_credential: u32,
    pub per_project: u32,
    pub burst_secs: u32,
}

/// The rate limiter of one process. (Replicas sharing a database each keep their own
/// counts: a limit is per process, documented in `docs/decisions.md`.)
pub struct Throttle {
    credentials: Option<Limiter>,
    projects: Option<Limiter>,
}

impl Throttle {
    pub fn new(limits: RateLimits) -> Self {
        let limiter = |rate: u32| (rate > 0).then(|| Limiter::new(rate, limits.burst_secs));
        Self {
            credentials: limiter(limits.per_credential),
            projects: limiter(limits.per_project),
        }
    }

    /// Counts one request of `principal` acting on `project` (a project id, or `None`
    /// for the caller's own scope); refused when either budget is spent. A refused
    /// request is not counted against the other limit.
    pub fn admit(&self, principal: &Principal, project: Option<&str>) -> Result<(), Throttled> {
        let credential = match &principal.credential {
            Credential::Token(t) => t.token_hash.as_str(),
            Credential::AccessKey { access, .. } => access.as_str(),
        };
        let now = Instant::now();
        self.admit_credential_at(credential, now)?;
        if let Some(limiter) = &self.projects {
            let key = project
                .or(principal.project.as_ref().map(|p| p.id.as_str()))
                .unwrap_or(principal.domain.id.as_str());
            limiter.admit(key, now, Policy::Project)?;
        }
        Ok(())
    }

    /// Counts one request under a credential alone: a token's digest, an access key,
    /// or the id of a user logging in with a password. Minting a token is counted so
    /// (IAM is no project's API, so no project budget is spent on it).
    pub fn admit_credential(&self, credential: &str) -> Result<(), Throttled> {
        self.admit_credential_at(credential, Instant::now())
    }

    fn admit_credential_at(&self, credential: &str, now: Instant) -> Result<(), Throttled> {
        match &self.credentials {
            Some(limiter) => limiter.admit(credential, now, Policy::Credential),
            None => Ok(()),
        }
    }
}

/// Shards keep concurrent callers from queueing on one lock.
const SHARDS: usize = 16;
/// A shard this large is swept of keys that have become full again.
const SWEEP_AT: usize = 4096;

/// One GCRA limit over many keys.
struct Limiter {
    rate: u32,
    /// Time one request costs.
    interval: Duration,
    /// How far ahead of now a key's schedule may run: the burst.
    tolerance: Duration,
    epoch: Instant,
    hasher: std::collections::hash_map::RandomState,
    /// Per key, the theoretical arrival time of its next request, as nanoseconds
    /// since `epoch`: a key whose time is in the past has its whole burst available.
    shards: Vec<Mutex<Shard>>,
}

#[derive(Default)]
struct Shard {
    schedule: HashMap<String, u64>,
    /// The size at which the next sweep happens; doubled past the keys still active,
    /// so a shard full of busy callers is not swept on every new one.
    sweep_at: usize,
}

impl Limiter {
    fn new(rate: u32, burst_secs: u32) -> Self {
        let interval = Duration::from_secs(1) / rate.max(1);
        let burst = u64::from(rate) * u64::from(burst_secs.max(1));
        Self {
            rate,
            interval,
            tolerance: interval.saturating_mul(u32::try_from(burst).unwrap_or(u32::MAX)),
            epoch: Instant::now(),
            hasher: Default::default(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        schedule: HashMap::new(),
                        sweep_at: SWEEP_AT,
                    })
                })
                .collect(),
        }
    }

    fn admit(&self, key: &str, now: Instant, policy: Policy) -> Result<(), Throttled> {
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        // A poisoned shard only means another request panicked mid-update of a
        // timestamp; the map itself is still sound.
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        let now_ns = nanos(now.saturating_duration_since(self.epoch));
        let interval = nanos(self.interval);
        let tolerance = nanos(self.tolerance);
        let next = shard.schedule.get(key).copied().unwrap_or(0).max(now_ns) + interval;
        if next - now_ns > tolerance {
            let wait = next - now_ns - tolerance;
            return Err(Throttled {
                policy,
                limit: self.rate,
                retry_after_secs: wait.div_ceil(1_000_000_000).max(1),
                request_id: String::new(),
            });
        }
        match shard.schedule.get_mut(key) {
            Some(slot) => *slot = next,
            None => {
                if shard.schedule.len() >= shard.sweep_at {
                    shard.schedule.retain(|_, next| *next > now_ns);
                    shard.sweep_at = SWEEP_AT.max(2 * shard.schedule.len());
                }
                shard.schedule.insert(key.to_owned(), next);
            }
        }
        Ok(())
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_admitted_then_the_rate_applies() {
        let limiter = Limiter::new(10, 1);
        let start = Instant::now();
        for i in 0..10 {
            assert!(
                limiter.admit("ak", start, Policy::Credential).is_ok(),
                "request {i} of the burst"
            );
        }
        let refused = limiter
            .admit("ak", start, Policy::Credential)
            .expect_err("the eleventh at once");
        assert_eq!(refused.limit, 10);
        assert_eq!(refused.retry_after_secs, 1);
        // Another key has its own budget.
        assert!(limiter.admit("other", start, Policy::Credential).is_ok());
        // A tenth of a second later, one more request fits, and only one.
        let later = start + Duration::from_millis(100);
        assert!(limiter.admit("ak", later, Policy::Credential).is_ok());
        assert!(limiter.admit("ak", later, Policy::Credential).is_err());
    }

    #[test]
    fn retry_after_covers_the_wait_in_whole_seconds() {
        // One request a second: 0.2 s after one, the next is 0.8 s away.
        let limiter = Limiter::new(1, 1);
        let start = Instant::now();
        assert!(limiter.admit("k", start, Policy::Project).is_ok());
        let refused = limiter
            .admit("k", start + Duration::from_millis(200), Policy::Project)
            .expect_err("spent");
        assert_eq!(refused.retry_after_secs, 1);
        assert!(limiter
            .admit("k", start + Duration::from_secs(1), Policy::Project)
            .is_ok());
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let limiter = Limiter::new(1000, 1);
        let start = Instant::now();
        for i in 0..SWEEP_AT * SHARDS * 2 {
            let _ = limiter.admit(&format!("key-{i}"), start, Policy::Credential);
        }
        let later = start + Duration::from_secs(5);
        for i in 0..SWEEP_AT * SHARDS * 4 {
            let _ = limiter.admit(&format!("new-{i}"), later, Policy::Credential);
        }
        let idle_kept: usize = limiter
            .shards
            .iter()
            .map(|s| {
                let shard = s.lock().expect("shard");
                shard
                    .schedule
                    .keys()
                    .filter(|k| k.starts_with("key-"))
                    .count()
            })
            .sum();
        assert_eq!(idle_kept, 0, "keys idle for 5 s were not swept");
    }
}
