//! Holding back the answer to an address that is locked out (too many
//! wrong registration secrets, too many forged callbacks). Refusing it at
//! once lets it ask again at once: a client that never stops keeps the
//! server answering 429s as fast as it can send, and on a small server
//! those answers take the CPU the class needs (at a class start, two such
//! clients took thousands of requests a second and the students' launch
//! p99 from 28 to 76 ms). Held for a second (`server.lockout_hold_ms`), a client that waits for its
//! answers sends a few requests a second per connection, and a held
//! request costs a timer, not CPU. Each address has a bound on how many of
//! its requests are held at once; past it they are refused at once, so
//! the held sockets cannot grow without bound either.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Requests of one address held at once at most.
const MAX_HELD_PER_ADDRESS: u32 = 64;

pub struct Tarpit {
    /// The longest a refusal is held (`server.lockout_hold_ms`).
    hold: Duration,
    held: Mutex<HashMap<IpAddr, u32>>,
}

/// One held request; gives its place back when dropped.
struct Held<'a> {
    tarpit: &'a Tarpit,
    ip: IpAddr,
}

impl Tarpit {
    pub fn new(hold: Duration) -> Self {
        Self {
            hold,
            held: Mutex::default(),
        }
    }

    /// Wait before a locked-out `ip` is refused: the hold, or `retry_after`
    /// if sooner, or not at all if `ip` has its bound of held requests.
    pub async fn hold(&self, ip: IpAddr, retry_after: Duration) {
        if self.hold.is_zero() {
            return;
        }
        if let Some(_held) = self.take(ip) {
            tokio::time::sleep(retry_after.min(self.hold)).await;
        }
    }

    fn take(&self, ip: IpAddr) -> Option<Held<'_>> {
        let mut held = self.held.lock().expect("tarpit lock");
        let count = held.entry(ip).or_insert(0);
        if *count >= MAX_HELD_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(Held { tarpit: self, ip })
    }

    #[cfg(test)]
    fn held(&self, ip: IpAddr) -> u32 {
        let held = self.held.lock().expect("tarpit lock");
        held.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut held = self.tarpit.held.lock().expect("tarpit lock");
        if let Some(count) = held.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const HOLD: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_locked_out_address_waits_a_second_or_its_retry_after_if_sooner() {
        let tarpit = Tarpit::new(HOLD);
        let start = tokio::time::Instant::now();
        tarpit.hold(ATTACKER, Duration::from_secs(600)).await;
        assert_eq!(start.elapsed(), HOLD);
        let start = tokio::time::Instant::now();
        tarpit.hold(ATTACKER, Duration::from_millis(300)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        assert_eq!(tarpit.held(ATTACKER), 0, "nothing held any more");
    }

    #[tokio::test(start_paused = true)]
    async fn past_its_bound_an_address_is_refused_without_waiting() {
        let tarpit = Arc::new(Tarpit::new(HOLD));
        let holds: Vec<_> = (0..MAX_HELD_PER_ADDRESS)
            .map(|_| {
                let tarpit = tarpit.clone();
                tokio::spawn(async move { tarpit.hold(ATTACKER, HOLD).await })
            })
            .collect();
        tokio::task::yield_now().await;
        while tarpit.held(ATTACKER) < MAX_HELD_PER_ADDRESS {
            tokio::task::yield_now().await;
        }
        let start = tokio::time::Instant::now();
        tarpit.hold(ATTACKER, HOLD).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "one too many: at once");
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(
            tarpit.take(other).is_some(),
            "another address is not bound by it"
        );
        for hold in holds {
            hold.await.unwrap();
        }
        assert_eq!(tarpit.held(ATTACKER), 0);
    }
}
