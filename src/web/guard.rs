//! Rate limit for guessable secrets: a client that sends too many wrong
//! registration secrets is locked out of registration for a while, right
//! or wrong (otherwise a locked-out guesser could still tell a hit by the
//! answer). Only wrong guesses count, so a class registering from behind
//! one address is not locked out.
//!
//! Wrong guesses count twice: against the visitor's session and against
//! the client address.
//!
//! - A session is locked after `allowed` wrong guesses. That stops a
//!   guesser without touching anyone else, also when everybody shares one
//!   address (behind a TLS proxy without `server.trust_forwarded_for`,
//!   every client has the proxy's address).
//! - An address is locked after `ADDRESS_ALLOWANCE` times as many. A
//!   session costs a guesser nothing to throw away (a new cookie, or none),
//!   so the address limit is the backstop that still bounds the guesses
//!   one machine can make. It is set high because, when it fires, it locks
//!   out everyone at that address: with a proxy in front, only
//!   `trust_forwarded_for` gives each client its own address again.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many sessions' worth of wrong guesses lock out a whole address.
pub const ADDRESS_ALLOWANCE: u32 = 10;

/// Who sent a guess: the client address, and the session if it has one.
#[derive(Debug, Clone, Copy)]
pub struct Guesser<'a> {
    pub address: IpAddr,
    pub session: Option<&'a str>,
}

/// What a wrong guess locked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lockout {
    Session,
    Address,
}

pub struct GuessGuard {
    sessions: Tally<String>,
    addresses: Tally<IpAddr>,
}

impl GuessGuard {
    /// `allowed` wrong guesses per `window` and session (ten times as many
    /// per address), then locked for `window`.
    pub fn new(allowed: u32, window: Duration) -> Self {
        let allowed = NonZeroU32::new(allowed).unwrap_or(NonZeroU32::MIN);
        let per_address = allowed
            .saturating_mul(NonZeroU32::new(ADDRESS_ALLOWANCE).expect("a positive allowance"));
        Self {
            sessions: Tally::new(allowed, window),
            addresses: Tally::new(per_address, window),
        }
    }

    /// Seconds until `guesser` may try again, if it is locked out.
    pub fn locked_for(&self, guesser: Guesser<'_>) -> Option<u64> {
        let session = guesser
            .session
            .and_then(|s| self.sessions.locked_for(&s.to_owned()));
        let address = self.addresses.locked_for(&guesser.address);
        session.max(address)
    }

    /// Seconds until `address` may try again, if the whole address is
    /// locked out (not just one of its sessions).
    pub fn address_locked_for(&self, address: IpAddr) -> Option<u64> {
        self.addresses.locked_for(&address)
    }

    /// Count a wrong guess; says what it locked out, if anything.
    pub fn wrong_guess(&self, guesser: Guesser<'_>) -> Option<Lockout> {
        let session = guesser
            .session
            .is_some_and(|s| self.sessions.wrong(s.to_owned()));
        let address = self.addresses.wrong(guesser.address);
        match (address, session) {
            (true, _) => Some(Lockout::Address),
            (false, true) => Some(Lockout::Session),
            (false, false) => None,
        }
    }
}

/// Wrong guesses per key, and the keys locked out.
struct Tally<K: Hash + Eq + Clone> {
    wrong: DefaultKeyedRateLimiter<K>,
    locked: Mutex<HashMap<K, Instant>>,
    lockout: Duration,
}

impl<K: Hash + Eq + Clone> Tally<K> {
    fn new(allowed: NonZeroU32, window: Duration) -> Self {
        let quota = Quota::with_period(window / allowed.get())
            .expect("a positive window")
            .allow_burst(allowed);
        Self {
            wrong: RateLimiter::keyed(quota),
            locked: Mutex::default(),
            lockout: window,
        }
    }

    fn locked_for(&self, key: &K) -> Option<u64> {
        let mut locked = self.locked.lock().expect("guard lock");
        let now = Instant::now();
        locked.retain(|_, until| *until > now);
        locked.get(key).map(|until| (*until - now).as_secs().max(1))
    }

    /// Count a wrong guess of `key`; true when it locks `key` out.
    fn wrong(&self, key: K) -> bool {
        let over = self.wrong.check_key(&key).is_err();
        // Forget keys whose guesses are all outside the window, so
        // throw-away sessions do not pile up.
        self.wrong.retain_recent();
        if over {
            let until = Instant::now() + self.lockout;
            self.locked.lock().expect("guard lock").insert(key, until);
        }
        over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(600);

    fn from(address: &str, session: Option<&'static str>) -> Guesser<'static> {
        Guesser {
            address: address.parse().unwrap(),
            session,
        }
    }

    #[test]
    fn a_client_is_locked_out_after_too_many_wrong_guesses() {
        let guard = GuessGuard::new(3, WINDOW);
        let ip = from("192.0.2.7", None);
        let other = from("192.0.2.8", None);
        for _ in 0..3 * ADDRESS_ALLOWANCE {
            assert_eq!(guard.wrong_guess(ip), None);
        }
        assert!(guard.locked_for(ip).is_none());
        assert_eq!(guard.wrong_guess(ip), Some(Lockout::Address));
        assert!(guard.locked_for(ip).is_some());
        assert!(guard.locked_for(other).is_none());
    }

    #[test]
    fn a_guessing_session_is_locked_out_without_its_address() {
        let guard = GuessGuard::new(3, WINDOW);
        let guesser = from("192.0.2.7", Some("guesser"));
        for _ in 0..3 {
            assert_eq!(guard.wrong_guess(guesser), None);
        }
        assert_eq!(guard.wrong_guess(guesser), Some(Lockout::Session));
        assert!(guard.locked_for(guesser).is_some());
        assert!(
            guard
                .locked_for(from("192.0.2.7", Some("classmate")))
                .is_none(),
            "another session at the same address"
        );
        assert!(guard.locked_for(from("192.0.2.7", None)).is_none());
    }

    #[test]
    fn throwing_sessions_away_still_meets_the_address_limit() {
        let guard = GuessGuard::new(2, WINDOW);
        let sessions: Vec<String> = (0..2 * ADDRESS_ALLOWANCE)
            .map(|n| format!("s{n}"))
            .collect();
        for s in &sessions {
            let guesser = Guesser {
                address: "192.0.2.9".parse().unwrap(),
                session: Some(s),
            };
            assert_eq!(guard.wrong_guess(guesser), None, "{s}");
        }
        assert_eq!(
            guard.wrong_guess(from("192.0.2.9", Some("fresh"))),
            Some(Lockout::Address)
        );
        assert!(
            guard
                .locked_for(from("192.0.2.9", Some("another")))
                .is_some()
        );
    }
}
