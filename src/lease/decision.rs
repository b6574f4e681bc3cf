//! What a replica does with the lease, decided from the row as it was read:
//! a pure function of the row, who we are, what we believe we hold and the
//! database's time, so every case is a table test.

use super::{Epoch, ReplicaId};
use chrono::{DateTime, Utc};

/// The lease row as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub holder: ReplicaId,
    pub epoch: Epoch,
    pub expires_at: DateTime<Utc>,
}

impl Observed {
    fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Take the lease over at `epoch`: there is none yet, its holder let it
    /// expire, or it is ours from a leadership we gave up (a fresh epoch
    /// fences out whatever that one still had in flight).
    Acquire { epoch: Epoch },
    /// Ours, at the epoch we hold: push its expiry back.
    Renew,
    /// Another replica holds it and it has not expired: wait.
    Standby,
    /// We held it, and the row says otherwise (another holder or epoch, or
    /// it expired before we renewed): stop driving now.
    Lost,
}

/// `held` is the epoch this replica believes it leads at, if any.
pub fn decide(
    observed: Option<&Observed>,
    me: &ReplicaId,
    held: Option<Epoch>,
    now: DateTime<Utc>,
) -> Decision {
    match (held, observed) {
        (Some(epoch), Some(row))
            if row.holder == *me && row.epoch == epoch && !row.expired(now) =>
        {
            Decision::Renew
        }
        (Some(_), _) => Decision::Lost,
        (None, None) => Decision::Acquire {
            epoch: Epoch::FIRST,
        },
        (None, Some(row)) if row.expired(now) || row.holder == *me => Decision::Acquire {
            epoch: row.epoch.next(),
        },
        (None, Some(_)) => Decision::Standby,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn row(holder: &str, epoch: i64, expires: i64) -> Observed {
        Observed {
            holder: ReplicaId::from_stored(holder.into()),
            epoch: Epoch::from_stored(epoch),
            expires_at: at(expires),
        }
    }

    /// The row, the epoch we believe we hold, the time, the decision, why.
    type Case = (Option<Observed>, Option<Epoch>, i64, Decision, &'static str);

    #[test]
    fn every_case_of_row_belief_and_time() {
        let me = ReplicaId::from_stored("me".into());
        let e = Epoch::from_stored;
        #[rustfmt::skip]
        let cases: [Case; 12] = [
            (None, None, 0, Decision::Acquire { epoch: Epoch::FIRST }, "no lease yet: the first holder"),
            (Some(row("other", 4, 10)), None, 0, Decision::Standby, "another holds it"),
            (Some(row("other", 4, 10)), None, 10, Decision::Acquire { epoch: e(5) }, "expired at this very instant"),
            (Some(row("other", 4, 10)), None, 11, Decision::Acquire { epoch: e(5) }, "expired: take it over"),
            (Some(row("me", 4, 10)), None, 0, Decision::Acquire { epoch: e(5) }, "ours from a leadership we gave up: a new epoch"),
            (Some(row("me", 4, 10)), Some(e(4)), 0, Decision::Renew, "ours at our epoch"),
            (Some(row("me", 4, 10)), Some(e(4)), 10, Decision::Lost, "ours, but it expired before the renewal"),
            (Some(row("me", 5, 10)), Some(e(4)), 0, Decision::Lost, "ours at another epoch"),
            (Some(row("other", 5, 10)), Some(e(4)), 0, Decision::Lost, "taken over"),
            (Some(row("other", 4, 10)), Some(e(4)), 0, Decision::Lost, "same epoch, another holder"),
            (None, Some(e(4)), 0, Decision::Lost, "the row is gone"),
            (Some(row("other", i64::MAX, 0)), None, 1, Decision::Acquire { epoch: e(i64::MAX) }, "the epoch saturates"),
        ];
        for (observed, held, now, expected, why) in cases {
            assert_eq!(
                decide(observed.as_ref(), &me, held, at(now)),
                expected,
                "{why}"
            );
        }
    }

    #[test]
    fn replica_ids_differ_between_starts() {
        let (a, b) = (ReplicaId::generate(), ReplicaId::generate());
        assert_ne!(a, b);
        assert!(
            a.as_str().contains(&format!(":{}:", std::process::id())),
            "{a}"
        );
    }
}
