//! Rate limit for guessable secrets: a client that sends too many wrong
//! registration secrets is locked out of registration for a while, right
//! or wrong (otherwise a locked-out guesser could still tell a hit by the
//! answer). Only wrong guesses count, so a class registering from behind
//! one address is not locked out.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct GuessGuard {
    wrong: DefaultKeyedRateLimiter<IpAddr>,
    locked: Mutex<HashMap<IpAddr, Instant>>,
    lockout: Duration,
}

impl GuessGuard {
    /// `allowed` wrong guesses per `window`, then locked for `window`.
    pub fn new(allowed: u32, window: Duration) -> Self {
        let allowed = NonZeroU32::new(allowed).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(window / allowed.get())
            .expect("a positive window")
            .allow_burst(allowed);
        Self {
            wrong: RateLimiter::keyed(quota),
            locked: Mutex::default(),
            lockout: window,
        }
    }

    /// Seconds until `ip` may try again, if it is locked out.
    pub fn locked_for(&self, ip: IpAddr) -> Option<u64> {
        let mut locked = self.locked.lock().expect("guard lock");
        let now = Instant::now();
        locked.retain(|_, until| *until > now);
        locked.get(&ip).map(|until| (*until - now).as_secs().max(1))
    }

    /// Count a wrong guess; returns true when it locks `ip` out.
    pub fn wrong_guess(&self, ip: IpAddr) -> bool {
        if self.wrong.check_key(&ip).is_ok() {
            return false;
        }
        let until = Instant::now() + self.lockout;
        self.locked.lock().expect("guard lock").insert(ip, until);
        self.wrong.retain_recent();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_locked_out_after_too_many_wrong_guesses() {
        let guard = GuessGuard::new(3, Duration::from_secs(600));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(!guard.wrong_guess(ip));
        assert!(!guard.wrong_guess(ip));
        assert!(!guard.wrong_guess(ip));
        assert!(guard.locked_for(ip).is_none());
        assert!(guard.wrong_guess(ip));
        assert!(guard.locked_for(ip).is_some());
        assert!(guard.locked_for(other).is_none());
    }
}
