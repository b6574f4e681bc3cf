//! Requests per token: each token may make `[api] requests_per_minute`
//! requests a minute, as a burst or spread out (a token bucket refilled
//! evenly over the minute). Counted after authentication, so only real
//! tokens are keys and a forged one cannot use up anyone's allowance.
//!
//! Wrong tokens per address: tokens are too long to guess, but every wrong
//! one costs a store lookup, so an address that sends
//! `WRONG_TOKENS_PER_ADDRESS` unknown tokens within `WRONG_TOKEN_WINDOW`
//! is locked out of the API for that long, right token or not (else a
//! locked-out guesser could still tell a hit by the answer).

use crate::web::guard::{ADDRESS_ALLOWANCE, GuessGuard, Guesser};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Unknown tokens one address may send per `WRONG_TOKEN_WINDOW`: far more
/// than a script with a stale token makes before someone looks at it.
pub const WRONG_TOKENS_PER_ADDRESS: u32 = 30;
pub const WRONG_TOKEN_WINDOW: Duration = Duration::from_secs(600);

/// Tokens that went quiet are forgotten once the table is this large.
const FORGET_ABOVE: usize = 1000;

pub struct ApiRateLimit {
    per_token: DefaultKeyedRateLimiter<i64>,
    /// Keyed by address only: API clients have no session.
    wrong_tokens: GuessGuard,
}

impl ApiRateLimit {
    pub fn new(requests_per_minute: NonZeroU32) -> Self {
        Self {
            per_token: RateLimiter::keyed(Quota::per_minute(requests_per_minute)),
            wrong_tokens: GuessGuard::new(
                WRONG_TOKENS_PER_ADDRESS / ADDRESS_ALLOWANCE,
                WRONG_TOKEN_WINDOW,
            ),
        }
    }

    /// Seconds until `address` may use the API again, if it sent too many
    /// wrong tokens.
    pub fn address_locked_for(&self, address: IpAddr) -> Option<u64> {
        self.wrong_tokens.address_locked_for(address)
    }

    /// Count an unknown token from `address`; true when that locks it out.
    pub fn wrong_token(&self, address: IpAddr) -> bool {
        self.wrong_tokens
            .wrong_guess(Guesser {
                address,
                session: None,
            })
            .is_some()
    }

    /// Whether token `id` may make a request now; if not, the whole
    /// seconds (at least 1) until it may.
    pub fn check(&self, id: i64) -> Result<(), u64> {
        if self.per_token.len() > FORGET_ABOVE {
            self.per_token.retain_recent();
        }
        self.per_token.check_key(&id).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_past_its_allowance_waits_and_others_do_not() {
        let limit = ApiRateLimit::new(NonZeroU32::new(2).unwrap());
        assert_eq!(limit.check(1), Ok(()));
        assert_eq!(limit.check(1), Ok(()));
        let wait = limit.check(1).unwrap_err();
        // One request comes back every 30 s.
        assert!((1..=30).contains(&wait), "{wait}");
        assert_eq!(limit.check(2), Ok(()));
    }

    #[test]
    fn an_address_is_locked_out_after_its_allowance_of_wrong_tokens() {
        let limit = ApiRateLimit::new(NonZeroU32::new(2).unwrap());
        let guesser: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..WRONG_TOKENS_PER_ADDRESS {
            assert_eq!(limit.address_locked_for(guesser), None);
            assert!(!limit.wrong_token(guesser));
        }
        assert!(limit.wrong_token(guesser), "one more locks it out");
        let wait = limit.address_locked_for(guesser).expect("locked out");
        assert!(wait <= WRONG_TOKEN_WINDOW.as_secs(), "{wait}");
        assert_eq!(limit.address_locked_for(other), None);
    }
}
