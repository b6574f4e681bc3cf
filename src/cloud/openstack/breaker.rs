//! A small circuit breaker: after `threshold` calls in a row fail because
//! the cloud is down (no answer, 5xx), calls fail at once for `cooldown`,
//! then one trial call decides whether the circuit closes again. A cloud
//! that is down then costs one call per cooldown instead of one per VM per
//! driver tick, and the user sees "the cloud is unreachable" at once.
//!
//! Small enough that a crate would add more than it saves.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    /// A trial call is in flight after the cooldown (half-open).
    trial: bool,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold,
            cooldown,
            state: Mutex::default(),
        }
    }

    /// May a call go out now? `Err` holds how long the circuit stays open.
    pub fn admit(&self) -> Result<(), Duration> {
        let mut st = self.state.lock().expect("breaker lock");
        let Some(until) = st.open_until else {
            return Ok(());
        };
        let now = Instant::now();
        if now < until {
            return Err(until - now);
        }
        if st.trial {
            // Someone else is already finding out whether the cloud is back.
            return Err(Duration::ZERO);
        }
        st.trial = true;
        Ok(())
    }

    pub fn record_success(&self) {
        let mut st = self.state.lock().expect("breaker lock");
        *st = State::default();
    }

    pub fn record_outage(&self) {
        let mut st = self.state.lock().expect("breaker lock");
        st.failures += 1;
        st.trial = false;
        if st.failures >= self.threshold {
            st.open_until = Some(Instant::now() + self.cooldown);
        }
    }

    /// An answer that is not an outage (e.g. a 404) still proves the cloud is up.
    pub fn record_answer(&self) {
        self.record_success();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_lets_one_trial_through_after_the_cooldown() {
        let b = Breaker::new(3, Duration::from_millis(30));
        for _ in 0..3 {
            assert!(b.admit().is_ok());
            b.record_outage();
        }
        assert!(b.admit().is_err(), "open after 3 outages");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.admit().is_ok(), "one trial after the cooldown");
        assert!(b.admit().is_err(), "only one trial at a time");
        b.record_success();
        assert!(b.admit().is_ok(), "closed again");
    }

    #[test]
    fn a_failed_trial_opens_the_circuit_again() {
        let b = Breaker::new(1, Duration::from_millis(20));
        b.record_outage();
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.admit().is_ok());
        b.record_outage();
        assert!(b.admit().is_err());
    }
}
