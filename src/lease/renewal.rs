//! The thin loop around `decide`: every lease/3 it reads the lease row,
//! decides, writes (an atomic conditional INSERT or UPDATE, compared on
//! holder and epoch) and publishes this replica's role.
//!
//! A leadership is good for lease − lease/3 after the start of the round
//! that confirmed it, by this replica's own monotonic clock. The row's
//! expiry is the database's time at that round plus the whole lease, so a
//! leader cut off from the database stops driving a third of a lease
//! before any standby can take over.

use super::{DRIVER, Decision, Fence, Leadership, Role, decide};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Hold or wait for the `driver` lease until `stop`; a leader lets it go
/// when it stops, so the next replica (or this one restarted) need not
/// wait for it to expire.
pub async fn keep_leadership(
    store: Store,
    leadership: Leadership,
    lease: Duration,
    metrics: Metrics,
    stop: CancellationToken,
) {
    let every = lease / 3;
    let good_for = lease - every;
    // The fence we lead with, and until when that leadership holds.
    let mut held: Option<(Fence, Instant)> = None;
    loop {
        let started = Instant::now();
        if held.as_ref().is_some_and(|(_, until)| *until <= started) {
            tracing::warn!("the driver lease was not renewed in time: standing by");
            held = None;
        }
        publish(&leadership, &metrics, held.as_ref());
        // A leader's round must end while its leadership holds; a
        // standby's within a period, so a hung query does not stall it.
        let deadline = held.as_ref().map_or(started + every, |(_, until)| *until);
        let round = tokio::time::timeout_at(
            deadline,
            round(&store, &leadership, held.as_ref().map(|(f, _)| f), lease),
        );
        let outcome = tokio::select! {
            outcome = round => outcome,
            () = stop.cancelled() => break,
        };
        held = match outcome {
            Ok(Ok(Some(fence))) => {
                if held.as_ref().map(|(f, _)| f) != Some(&fence) {
                    tracing::info!(epoch = %fence.epoch, replica = %fence.holder, "leading: this replica drives");
                }
                Some((fence, started + good_for))
            }
            Ok(Ok(None)) => {
                if let Some((fence, _)) = &held {
                    tracing::warn!(epoch = %fence.epoch, "the driver lease was taken over: standing by");
                }
                None
            }
            // The database did not answer: a leader keeps its leadership
            // until it would lapse, and tries again.
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read or renew the driver lease");
                held
            }
            Err(_) => {
                if held.is_some() {
                    tracing::warn!("renewing the driver lease took too long: standing by");
                }
                None
            }
        };
        publish(&leadership, &metrics, held.as_ref());
        let next = held
            .as_ref()
            .map_or(started + every, |(_, until)| (started + every).min(*until));
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = stop.cancelled() => break,
        }
    }
    leadership.publish(Role::Standby);
    metrics.set_driver_leader(false);
    if let Some((fence, _)) = held {
        match tokio::time::timeout(every, store.release_lease(&fence)).await {
            Ok(Ok(())) => tracing::info!(epoch = %fence.epoch, "let the driver lease go"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot let the driver lease go; it expires"),
            Err(_) => tracing::warn!("letting the driver lease go took too long; it expires"),
        }
    }
}

fn publish(leadership: &Leadership, metrics: &Metrics, held: Option<&(Fence, Instant)>) {
    metrics.set_driver_leader(held.is_some());
    leadership.publish(held.map_or(Role::Standby, |(fence, _)| Role::Leader(fence.clone())));
}

/// One read, decision and write: the fence this replica leads with after
/// it, or none.
async fn round(
    store: &Store,
    leadership: &Leadership,
    held: Option<&Fence>,
    lease: Duration,
) -> Result<Option<Fence>, StoreError> {
    let me = leadership.me();
    let (observed, now) = store.observe_lease(DRIVER).await?;
    let expires_at = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::days(1));
    match (
        decide(observed.as_ref(), me, held.map(|f| f.epoch), now),
        held,
    ) {
        (Decision::Renew, Some(fence)) => Ok(store
            .renew_lease(fence, expires_at)
            .await?
            .then(|| fence.clone())),
        (Decision::Acquire { epoch }, _) => {
            let taken = store
                .take_lease(DRIVER, me, observed.as_ref(), epoch, expires_at)
                .await?;
            Ok(taken.then(|| Fence {
                lease: DRIVER,
                holder: me.clone(),
                epoch,
            }))
        }
        (Decision::Renew | Decision::Standby | Decision::Lost, _) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bound on every wait: the rounds take milliseconds.
    const WAIT: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn a_standby_takes_over_a_lease_its_holder_stopped_renewing() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("lease.db").display());
        let store = Store::connect(&url).await.unwrap();
        let lease = Duration::from_millis(600);
        let run = |leadership: &Leadership, stop: &CancellationToken| {
            tokio::spawn(keep_leadership(
                store.clone(),
                leadership.clone(),
                lease,
                Metrics::new(),
                stop.clone(),
            ))
        };
        let (a, b) = (Leadership::new(), Leadership::new());
        let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
        let task_a = run(&a, &stop_a);
        tokio::time::timeout(WAIT, a.until_leader()).await.unwrap();
        let first = a.fence().unwrap();
        let task_b = run(&b, &stop_b);

        // A crash: no renewal, and no letting go either.
        task_a.abort();
        tokio::time::timeout(WAIT, b.until_leader()).await.unwrap();
        let second = b.fence().unwrap();
        assert!(second.epoch > first.epoch, "{second:?} after {first:?}");
        assert_ne!(second.holder, first.holder);
        assert!(matches!(
            store.fenced(first).check_lease().await,
            Err(StoreError::Fenced { .. })
        ));

        // A clean stop lets the lease go at once.
        stop_b.cancel();
        task_b.await.unwrap();
        assert_eq!(b.role(), Role::Standby);
        let (row, now) = store.observe_lease(DRIVER).await.unwrap();
        let row = row.unwrap();
        assert_eq!(row.epoch, second.epoch);
        assert!(row.expires_at <= now, "{row:?} at {now}");
    }
}
