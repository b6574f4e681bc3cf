//! How many VMs the driver moves forward at once: sized by what the cloud
//! answers, as TCP sizes its window. Every answer in good time lets the
//! limit grow by about one per limit's worth of answers (additive
//! increase); a cloud that is failing or asks us to slow down (after the
//! client's own retries of 429 and 5xx: `CloudError::Unavailable`) halves
//! it, and a slow answer takes a tenth off (multiplicative decrease). It
//! stays between 1 and `provision.concurrency`. The calls in flight when
//! the cloud pushed back all answer alike, so one decrease stands for a
//! limit's worth of answers after it.

use std::sync::Mutex;
use std::time::Duration;

/// An answer slower than this is a sign of a cloud at its limit (a 429
/// that the client waited out is slow too).
pub const SLOW: Duration = Duration::from_secs(2);

/// What one cloud call came to, as the limit sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Answered (even with a refusal) in good time.
    Timely,
    /// Answered, but slower than `SLOW`.
    Slow,
    /// Failing, unreachable, or asking us to slow down.
    Overloaded,
}

impl Answer {
    pub fn of(took: Duration, overloaded: bool) -> Self {
        if overloaded {
            Self::Overloaded
        } else if took > SLOW {
            Self::Slow
        } else {
            Self::Timely
        }
    }
}

/// The limit itself: pure, so its rule is tested on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Aimd {
    limit: f64,
    max: f64,
    /// Answers still to come from calls made before the last decrease.
    hold: u32,
}

impl Aimd {
    /// Start at `start`, never above `max` (both at least 1).
    pub fn new(start: usize, max: usize) -> Self {
        let max = max.max(1) as f64;
        Self {
            limit: (start.max(1) as f64).min(max),
            max,
            hold: 0,
        }
    }

    /// How many VMs may be driven at once now.
    pub fn limit(&self) -> usize {
        self.limit.floor() as usize
    }

    pub fn on(&mut self, answer: Answer) {
        let factor = match answer {
            Answer::Timely => {
                self.limit = (self.limit + 1.0 / self.limit).min(self.max);
                self.hold = self.hold.saturating_sub(1);
                return;
            }
            Answer::Slow => 0.9,
            Answer::Overloaded => 0.5,
        };
        if self.hold > 0 {
            self.hold -= 1;
            return;
        }
        self.limit = (self.limit * factor).max(1.0);
        self.hold = self.limit() as u32;
    }
}

/// `Aimd` shared between the driver, which reads it once a step, and the
/// metered cloud, which feeds it every answer.
#[derive(Debug)]
pub struct AdaptiveConcurrency(Mutex<Aimd>);

/// Where the limit starts: the fixed concurrency of old, or the bound.
const START: usize = 8;

impl AdaptiveConcurrency {
    pub fn new(max: usize) -> Self {
        Self(Mutex::new(Aimd::new(START, max)))
    }

    pub fn limit(&self) -> usize {
        self.0.lock().expect("concurrency lock").limit()
    }

    pub fn record(&self, took: Duration, overloaded: bool) {
        self.0
            .lock()
            .expect("concurrency lock")
            .on(Answer::of(took, overloaded));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers in a row: each so many times.
    type Answers<'a> = &'a [(Answer, usize)];

    fn after(start: usize, max: usize, answers: Answers) -> usize {
        let mut aimd = Aimd::new(start, max);
        for &(answer, times) in answers {
            for _ in 0..times {
                aimd.on(answer);
            }
        }
        aimd.limit()
    }

    #[test]
    fn the_limit_grows_with_timely_answers_and_backs_off_when_the_cloud_pushes_back() {
        use Answer::*;
        let cases: &[(&str, usize, usize, Answers, usize)] = &[
            ("starts where it is told", 8, 32, &[], 8),
            ("never starts above the bound", 8, 4, &[], 4),
            ("nor below one", 0, 32, &[], 1),
            (
                "about one more per limit's worth of answers",
                8,
                32,
                &[(Timely, 9)],
                9,
            ),
            ("two more after about twenty", 8, 32, &[(Timely, 20)], 10),
            (
                "up to the bound and no further",
                8,
                32,
                &[(Timely, 10_000)],
                32,
            ),
            (
                "halves when the cloud is overloaded",
                16,
                32,
                &[(Overloaded, 1)],
                8,
            ),
            ("a tenth off for a slow answer", 20, 32, &[(Slow, 1)], 18),
            (
                "the answers of calls in flight at a decrease count once",
                16,
                32,
                &[(Overloaded, 9)],
                8,
            ),
            (
                "pushing back after them halves again",
                16,
                32,
                &[(Overloaded, 10)],
                4,
            ),
            ("never below one", 2, 32, &[(Overloaded, 100)], 1),
            (
                "and grows back once the cloud answers in time",
                16,
                32,
                &[(Overloaded, 1), (Timely, 20)],
                10,
            ),
        ];
        for (what, start, max, answers, expected) in cases {
            assert_eq!(after(*start, *max, answers), *expected, "{what}");
        }
    }

    #[test]
    fn answers_are_judged_by_their_outcome_and_time() {
        let ms = Duration::from_millis;
        assert_eq!(Answer::of(ms(30), false), Answer::Timely);
        assert_eq!(Answer::of(SLOW, false), Answer::Timely);
        assert_eq!(Answer::of(SLOW + ms(1), false), Answer::Slow);
        assert_eq!(Answer::of(ms(30), true), Answer::Overloaded);
        assert_eq!(Answer::of(ms(9000), true), Answer::Overloaded);
    }
}
