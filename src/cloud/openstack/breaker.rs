//! A small circuit breaker: after `threshold` calls in a row fail because
//! the cloud is down (no answer, 5xx), calls fail at once for `cooldown`,
//! then one trial call decides whether the circuit closes again. A cloud
//! that is down then costs one call per cooldown instead of one per VM per
//! driver tick, and the user sees "the cloud is unreachable" at once.
//!
//! Every admitted call holds a `Pass` and settles it with a `Verdict`; a
//! pass dropped unsettled (the caller gave up, a panic) settles as
//! `Unknown`. So the half-open trial always ends in `Closed` or `Open`:
//! there is no outcome that leaves the breaker waiting for a trial that
//! will never report.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Calls go out; `failures` outages in a row so far.
    Closed { failures: u32 },
    /// Calls fail at once until `until`.
    Open { until: Instant },
    /// One trial call is out, finding out whether the cloud is back.
    HalfOpen,
}

/// What a call taught us about the cloud's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The cloud answered (a success, or a refusal such as a 404 or 409).
    Up,
    /// No answer, no answer in time, or a 5xx.
    Down,
    /// Nothing either way (our own credentials file is unreadable, the
    /// call was abandoned). A trial that learns nothing has not shown
    /// the cloud is back: the circuit opens again.
    Unknown,
}

/// Leave to make one call; settle it with `settle` (or by dropping it).
#[derive(Debug)]
#[must_use = "settle the pass with the call's verdict"]
pub struct Pass<'a> {
    breaker: &'a Breaker,
    trial: bool,
    settled: bool,
}

impl Pass<'_> {
    pub fn settle(self, verdict: Verdict) {
        self.settle_at(verdict, Instant::now());
    }

    fn settle_at(mut self, verdict: Verdict, now: Instant) {
        self.settled = true;
        self.breaker.settle(self.trial, verdict, now);
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker
                .settle(self.trial, Verdict::Unknown, Instant::now());
        }
    }
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// May a call go out now? `Err` holds how long the circuit stays open.
    pub fn admit(&self) -> Result<Pass<'_>, Duration> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Result<Pass<'_>, Duration> {
        let mut state = self.state.lock().expect("breaker lock");
        let trial = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now < until => return Err(until - now),
            State::Open { .. } => {
                *state = State::HalfOpen;
                true
            }
            // Someone else is already finding out whether the cloud is back.
            State::HalfOpen => return Err(Duration::ZERO),
        };
        Ok(Pass {
            breaker: self,
            trial,
            settled: false,
        })
    }

    fn settle(&self, trial: bool, verdict: Verdict, now: Instant) {
        let mut state = self.state.lock().expect("breaker lock");
        let open = State::Open {
            until: now + self.cooldown,
        };
        *state = match (*state, verdict) {
            // Any answer proves the cloud is up, whoever got it.
            (_, Verdict::Up) => State::Closed { failures: 0 },
            (State::HalfOpen, Verdict::Down | Verdict::Unknown) if trial => open,
            (State::Closed { failures }, Verdict::Down) => {
                let failures = failures + 1;
                if failures >= self.threshold {
                    open
                } else {
                    State::Closed { failures }
                }
            }
            // A call admitted before the circuit opened, reporting late,
            // or one that learnt nothing: no change.
            (current, _) => current,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    fn state(b: &Breaker) -> State {
        *b.state.lock().unwrap()
    }

    /// A breaker opened by `threshold` outages at `t0`.
    fn opened(threshold: u32, t0: Instant) -> Breaker {
        let b = Breaker::new(threshold, COOLDOWN);
        for _ in 0..threshold {
            let pass = b.admit_at(t0).unwrap();
            assert!(!pass.trial);
            pass.settle_at(Verdict::Down, t0);
        }
        assert_eq!(
            state(&b),
            State::Open {
                until: t0 + COOLDOWN
            }
        );
        b
    }

    /// The trial call after the cooldown, settled with `verdict` at `t`.
    fn trial_ends(b: &Breaker, t: Instant, verdict: Verdict) {
        let pass = b.admit_at(t).expect("one trial after the cooldown");
        assert!(pass.trial);
        assert_eq!(state(b), State::HalfOpen);
        assert_eq!(
            b.admit_at(t).unwrap_err(),
            Duration::ZERO,
            "only one trial at a time"
        );
        pass.settle_at(verdict, t);
    }

    #[test]
    fn stays_closed_below_the_threshold_and_a_success_resets_the_count() {
        let t0 = Instant::now();
        let b = Breaker::new(3, COOLDOWN);
        b.settle(false, Verdict::Down, t0);
        b.settle(false, Verdict::Down, t0);
        assert_eq!(state(&b), State::Closed { failures: 2 });
        b.settle(false, Verdict::Up, t0);
        b.settle(false, Verdict::Down, t0);
        b.settle(false, Verdict::Unknown, t0);
        assert_eq!(state(&b), State::Closed { failures: 1 });
        assert!(b.admit_at(t0).is_ok());
    }

    #[test]
    fn opens_after_the_threshold_and_refuses_until_the_cooldown_is_over() {
        let t0 = Instant::now();
        let b = opened(3, t0);
        let left = b.admit_at(t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(left, Duration::from_secs(20));
    }

    #[test]
    fn a_trial_that_succeeds_closes_the_circuit() {
        let t0 = Instant::now();
        let b = opened(2, t0);
        trial_ends(&b, t0 + COOLDOWN, Verdict::Up);
        assert_eq!(state(&b), State::Closed { failures: 0 });
    }

    #[test]
    fn a_trial_that_meets_an_outage_opens_the_circuit_again() {
        let t0 = Instant::now();
        let b = opened(2, t0);
        let t1 = t0 + COOLDOWN;
        trial_ends(&b, t1, Verdict::Down);
        assert_eq!(
            state(&b),
            State::Open {
                until: t1 + COOLDOWN
            }
        );
        trial_ends(&b, t1 + COOLDOWN, Verdict::Up);
        assert_eq!(state(&b), State::Closed { failures: 0 });
    }

    #[test]
    fn a_trial_that_fails_without_an_outage_opens_the_circuit_again_not_for_ever() {
        let t0 = Instant::now();
        let b = opened(2, t0);
        let t1 = t0 + COOLDOWN;
        trial_ends(&b, t1, Verdict::Unknown);
        assert_eq!(
            state(&b),
            State::Open {
                until: t1 + COOLDOWN
            }
        );
        assert!(
            b.admit_at(t1 + COOLDOWN).is_ok(),
            "the next cooldown ends in a new trial"
        );
    }

    #[test]
    fn a_trial_that_is_abandoned_opens_the_circuit_again() {
        let b = Breaker::new(1, Duration::ZERO);
        b.admit().unwrap().settle(Verdict::Down);
        let pass = b.admit().expect("the (empty) cooldown is over");
        assert!(pass.trial);
        // The caller drops its pass (timed out, cancelled) without a verdict.
        drop(pass);
        assert!(
            matches!(state(&b), State::Open { .. }),
            "{:?}: not half-open for ever",
            state(&b)
        );
        let pass = b.admit().expect("a new trial");
        assert!(pass.trial);
        pass.settle(Verdict::Up);
        assert_eq!(state(&b), State::Closed { failures: 0 });
    }

    #[test]
    fn a_late_answer_from_before_the_outage_closes_the_circuit_and_a_late_outage_changes_nothing() {
        let t0 = Instant::now();
        let b = opened(1, t0);
        b.settle(false, Verdict::Down, t0);
        b.settle(false, Verdict::Unknown, t0);
        assert_eq!(
            state(&b),
            State::Open {
                until: t0 + COOLDOWN
            }
        );
        b.settle(false, Verdict::Up, t0);
        assert_eq!(state(&b), State::Closed { failures: 0 });
    }

    #[test]
    fn a_trial_settles_even_when_an_earlier_call_closed_the_circuit_meanwhile() {
        let t0 = Instant::now();
        let b = opened(2, t0);
        let trial = b.admit_at(t0 + COOLDOWN).unwrap();
        b.settle(false, Verdict::Up, t0 + COOLDOWN);
        trial.settle_at(Verdict::Down, t0 + COOLDOWN);
        assert_eq!(state(&b), State::Closed { failures: 1 });
    }
}
