//! Requests per token: each token may make `[api] requests_per_minute`
//! requests a minute, as a burst or spread out (a token bucket refilled
//! evenly over the minute). Counted after authentication, so only real
//! tokens are keys and a forged one cannot use up anyone's allowance.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;

/// Tokens that went quiet are forgotten once the table is this large.
const FORGET_ABOVE: usize = 1000;

pub struct ApiRateLimit {
    per_token: DefaultKeyedRateLimiter<i64>,
}

impl ApiRateLimit {
    pub fn new(requests_per_minute: NonZeroU32) -> Self {
        Self {
            per_token: RateLimiter::keyed(Quota::per_minute(requests_per_minute)),
        }
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
}
