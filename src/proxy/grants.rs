//! What the proxy remembers of a session it has let through: the user,
//! and the VM their `/user/<login>/` reaches. A kernel's REST calls and a
//! notebook's saves come many a second; checking each against the
//! database (the session, the user, their VM: three queries) was most of
//! what the proxy added to a request's latency.
//!
//! A grant is kept only while both hold:
//! - no write of this process that can take access away has happened since
//!   it was checked (`store::AccessGeneration`: a VM leaving a state, a
//!   deletion, a revocation, a logout), so such a change applies to the
//!   very next request;
//! - it was checked less than `RECHECK_AFTER` ago, which bounds how long a
//!   change made by another process (the `stackbinder` CLI on the same
//!   database, another replica) takes to apply, and keeps the session's
//!   idle expiry pushed back by the full check while the user works.
//!
//! Keys are digests of the session cookie: the cookie itself is not kept.

use super::Upstream;
use crate::domain::{GithubId, Login};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a checked session may go without a new check.
pub const RECHECK_AFTER: Duration = Duration::from_secs(2);
/// More sessions than this at once in `RECHECK_AFTER` is a class of
/// thousands: the stale entries go, and if that is not enough, all.
const MAX_GRANTS: usize = 16_384;

type Key = [u8; 32];

#[derive(Debug, Clone)]
pub struct Grant {
    pub user: GithubId,
    pub login: Login,
    pub upstream: Upstream,
    generation: u64,
    checked_at: Instant,
}

#[derive(Default)]
pub struct Grants {
    entries: Mutex<HashMap<Key, Grant>>,
}

fn key(cookie: &str) -> Key {
    Sha256::digest(cookie.as_bytes()).into()
}

impl Grant {
    /// What a full check found. `generation` must have been read before
    /// the check's queries: a change committed while they ran then makes
    /// the grant stale at once instead of hiding behind it.
    pub fn checked(
        (user, login, upstream): (GithubId, Login, Upstream),
        generation: u64,
        checked_at: Instant,
    ) -> Self {
        Self {
            user,
            login,
            upstream,
            generation,
            checked_at,
        }
    }

    fn valid(&self, generation: u64, now: Instant) -> bool {
        self.generation == generation && now.duration_since(self.checked_at) < RECHECK_AFTER
    }
}

impl Grants {
    /// The grant of `cookie` for `/user/<login>/`, if it still holds.
    pub fn get(&self, cookie: &str, login: &Login, generation: u64, now: Instant) -> Option<Grant> {
        let entries = self.entries.lock().expect("grants lock");
        entries
            .get(&key(cookie))
            .filter(|g| g.valid(generation, now) && g.login == *login)
            .cloned()
    }

    /// Remember a full check of `cookie`.
    pub fn put(&self, cookie: &str, grant: Grant) {
        let mut entries = self.entries.lock().expect("grants lock");
        if entries.len() >= MAX_GRANTS {
            entries.retain(|_, g| g.valid(grant.generation, grant.checked_at));
            if entries.len() >= MAX_GRANTS {
                entries.clear();
            }
        }
        entries.insert(key(cookie), grant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::VmId;

    fn ada() -> (GithubId, Login, Upstream) {
        let upstream = Upstream {
            vm: VmId::new(),
            addr: "10.0.0.7:8888".parse().unwrap(),
        };
        (GithubId(7), Login::parse("ada").unwrap(), upstream)
    }

    #[test]
    fn a_grant_holds_for_its_cookie_and_login_only() {
        let grants = Grants::default();
        let now = Instant::now();
        grants.put("cookie-a", Grant::checked(ada(), 1, now));
        let ada_login = Login::parse("ada").unwrap();
        assert!(grants.get("cookie-a", &ada_login, 1, now).is_some());
        assert!(grants.get("cookie-b", &ada_login, 1, now).is_none());
        let bob = Login::parse("bob").unwrap();
        assert!(grants.get("cookie-a", &bob, 1, now).is_none());
    }

    #[test]
    fn a_grant_goes_stale_with_any_access_change_or_with_time() {
        let grants = Grants::default();
        let now = Instant::now();
        let login = Login::parse("ada").unwrap();
        grants.put("cookie-a", Grant::checked(ada(), 1, now));
        assert!(grants.get("cookie-a", &login, 2, now).is_none());
        let later = now + RECHECK_AFTER;
        assert!(grants.get("cookie-a", &login, 1, later).is_none());
        let just_before = now + RECHECK_AFTER - Duration::from_millis(1);
        assert!(grants.get("cookie-a", &login, 1, just_before).is_some());
    }

    #[test]
    fn a_full_table_makes_room() {
        let grants = Grants::default();
        let now = Instant::now();
        for n in 0..MAX_GRANTS {
            grants.put(&format!("old-{n}"), Grant::checked(ada(), 1, now));
        }
        grants.put("new", Grant::checked(ada(), 2, now));
        let entries = grants.entries.lock().unwrap();
        assert_eq!(entries.len(), 1, "every stale grant went");
    }
}
