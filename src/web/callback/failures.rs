//! Failed callback attempts per client address. A VM proves itself with a
//! secret only it has, so a wrong or missing one comes from a bug or from
//! someone forging reports; past a few such attempts in a window, that
//! address is answered 429 until the window ends, before any database work.
//! Only failures count: a healthy VM behind the same address is slowed only
//! while someone there keeps failing, and then it retries (`Retry-After`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered before the ones whose window ended are dropped, so
/// a flood from many addresses cannot grow the table without bound.
const PRUNE_ABOVE: usize = 10_000;

pub struct FailedAttempts {
    allowed: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl FailedAttempts {
    /// `allowed` failures per address in each `window`.
    pub fn new(allowed: u32, window: Duration) -> Self {
        Self {
            allowed,
            window,
            seen: Mutex::default(),
        }
    }

    /// How long `ip` must wait, if it used up its failures.
    pub fn retry_after(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let seen = self.seen.lock().expect("failed attempts lock");
        let window = seen.get(&ip)?;
        let ends = window.started + self.window;
        (window.failures >= self.allowed && ends > now).then(|| ends - now)
    }

    /// Count one failed attempt of `ip`.
    pub fn record(&self, ip: IpAddr, now: Instant) {
        let mut seen = self.seen.lock().expect("failed attempts lock");
        if seen.len() > PRUNE_ABOVE {
            seen.retain(|_, w| w.started + self.window > now);
        }
        let window = seen.entry(ip).or_insert(Window {
            started: now,
            failures: 0,
        });
        if window.started + self.window <= now {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_held_off_after_its_failures_until_the_window_ends() {
        let attempts = FailedAttempts::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..2 {
            attempts.record(ip, t0);
        }
        assert_eq!(attempts.retry_after(ip, t0), None);
        attempts.record(ip, t0);
        assert_eq!(
            attempts.retry_after(ip, t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(50))
        );
        assert_eq!(attempts.retry_after(other, t0), None);
        assert_eq!(attempts.retry_after(ip, t0 + Duration::from_secs(60)), None);
        attempts.record(ip, t0 + Duration::from_secs(61));
        assert_eq!(
            attempts.retry_after(ip, t0 + Duration::from_secs(61)),
            None,
            "a new window starts afresh"
        );
    }
}
