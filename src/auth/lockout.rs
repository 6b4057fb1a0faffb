//! Password guessing is cut short: after [`MAX_FAILURES`] wrong passwords for one user
//! within [`WINDOW`], that user's logins are refused for [`LOCK_FOR`] without the
//! password even being checked (so a guessing run also stops costing argon2 time). A
//! right password clears the count.
//!
//! Counted per process, in memory: replicas sharing a database each allow their own
//! attempts, and a restart forgives (D66). A name that matches no user is counted like
//! a user, so a lockout does not reveal which names exist.
//!
//! Anyone can fail a login, so the table is bounded twice: in entries ([`MAX_TRACKED`])
//! and in the size of each, since an entry is kept under the SHA-256 of whatever names
//! the client sent, never the names themselves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Wrong passwords allowed within [`WINDOW`] before the lock.
pub const MAX_FAILURES: u32 = 5;
/// How far back failures count.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a user stays locked.
pub const LOCK_FOR: Duration = Duration::from_secs(15 * 60);
/// Users tracked at most; beyond it, entries that no longer matter are dropped first.
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
pub struct Lockout {
    tracked: Mutex<HashMap<Who, Failures>>,
}

/// Whose failures an entry counts: a digest, 32 bytes whatever the names' length.
type Who = [u8; 32];

fn who(name: &str) -> Who {
    Sha256::digest(name.as_bytes()).into()
}

struct Failures {
    count: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    fn matters(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|t| t > now) || now.duration_since(self.first) < WINDOW
    }
}

impl Lockout {
    /// `Err(wait)` while `name` is locked out.
    pub fn check(&self, name: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(tracked) = self.tracked.lock() else {
            return Ok(());
        };
        match tracked.get(&who(name)).and_then(|f| f.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Counts a wrong password for `name`; locks it at the limit.
    pub fn failed(&self, name: &str) {
        let who = who(name);
        let now = Instant::now();
        let Ok(mut tracked) = self.tracked.lock() else {
            return;
        };
        if tracked.len() >= MAX_TRACKED && !tracked.contains_key(&who) {
            tracked.retain(|_, f| f.matters(now));
            if tracked.len() >= MAX_TRACKED {
                // A flood of names: forget the oldest half rather than grow.
                let mut firsts: Vec<Instant> = tracked.values().map(|f| f.first).collect();
                firsts.sort_unstable();
                let cut = firsts[firsts.len() / 2];
                tracked.retain(|_, f| f.first > cut);
            }
        }
        let entry = tracked.entry(who).or_insert(Failures {
            count: 0,
            first: now,
            locked_until: None,
        });
        if !entry.matters(now) {
            *entry = Failures {
                count: 0,
                first: now,
                locked_until: None,
            };
        }
        entry.count += 1;
        if entry.count >= MAX_FAILURES {
            entry.locked_until = Some(now + LOCK_FOR);
            tracing::warn!(
                failures = entry.count,
                "too many wrong passwords; logins for this user are refused for a while"
            );
        }
    }

    /// A right password: the count starts over.
    pub fn succeeded(&self, name: &str) {
        if let Ok(mut tracked) = self.tracked.lock() {
            tracked.remove(&who(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_at_the_limit_and_only_that_user() {
        let lockout = Lockout::default();
        for _ in 0..MAX_FAILURES - 1 {
            lockout.failed("alice");
        }
        assert!(lockout.check("alice").is_ok(), "one attempt is left");
        lockout.failed("alice");
        let wait = lockout.check("alice").expect_err("locked");
        assert!(wait > LOCK_FOR - Duration::from_secs(5) && wait <= LOCK_FOR);
        assert!(lockout.check("bob").is_ok(), "others are not locked");
    }

    #[test]
    fn a_right_password_clears_the_count() {
        let lockout = Lockout::default();
        for _ in 0..MAX_FAILURES - 1 {
            lockout.failed("alice");
        }
        lockout.succeeded("alice");
        lockout.failed("alice");
        assert!(lockout.check("alice").is_ok());
    }

    #[test]
    fn a_flood_of_names_stays_bounded() {
        let lockout = Lockout::default();
        for i in 0..MAX_TRACKED + 10 {
            lockout.failed(&format!("user{i}"));
        }
        let tracked = lockout.tracked.lock().expect("lock").len();
        assert!(tracked <= MAX_TRACKED, "{tracked}");
    }

    #[test]
    fn long_names_are_kept_as_digests_and_still_lock() {
        let lockout = Lockout::default();
        let long = "x".repeat(100_000);
        for _ in 0..MAX_FAILURES {
            lockout.failed(&long);
        }
        assert!(lockout.check(&long).is_err(), "locked under its digest");
        assert!(lockout.check(&long[1..]).is_ok(), "another name is not");
        let tracked = lockout.tracked.lock().expect("lock");
        assert_eq!(tracked.len(), 1);
    }
}
