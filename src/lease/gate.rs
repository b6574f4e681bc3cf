//! Background work that runs only while this replica leads: started when
//! the lease is taken, cancelled the moment it is lost.

use super::{Fence, Leadership, Role};
use std::future::Future;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Run `work` whenever this replica leads, until `stop`. Each leadership
/// gets a run of its own, with the fence it leads with and a token that is
/// cancelled at `stop`: a clean shutdown lets the work finish its step.
/// Losing the lease does not wait: the run is aborted at once (the driver
/// persists every step, so this is no worse than a crash, and the fence
/// refuses what a late write would still try).
pub async fn while_leader<W, F>(leadership: Leadership, stop: CancellationToken, work: W)
where
    W: Fn(Fence, CancellationToken) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut role = leadership.subscribe();
    loop {
        let fence = tokio::select! {
            () = stop.cancelled() => return,
            led = wait_to_lead(&mut role) => match led {
                Some(fence) => fence,
                // The leadership is gone: nobody will lead here any more.
                None => return,
            },
        };
        let cancel = stop.child_token();
        let mut run = tokio::spawn(work(fence.clone(), cancel.clone()));
        let still = Role::Leader(fence);
        let ended_by_itself = tokio::select! {
            // A shutdown, not a lost lease, when both are seen at once.
            biased;
            () = stop.cancelled() => {
                let _ = run.await;
                return;
            }
            () = until_changed(&mut role, &still) => {
                cancel.cancel();
                run.abort();
                let _ = run.await;
                false
            }
            _ = &mut run => true,
        };
        if ended_by_itself {
            // Nothing more to do under this leadership: wait for the next.
            tokio::select! {
                () = stop.cancelled() => return,
                () = until_changed(&mut role, &still) => {}
            }
        }
    }
}

/// The fence of the next leadership; none once no role is published any more.
async fn wait_to_lead(role: &mut watch::Receiver<Role>) -> Option<Fence> {
    let led = role.wait_for(|r| matches!(r, Role::Leader(_))).await.ok()?;
    match &*led {
        Role::Leader(fence) => Some(fence.clone()),
        Role::Standby => None,
    }
}

/// Resolves once the role is not `still` (or no role is published any more).
async fn until_changed(role: &mut watch::Receiver<Role>, still: &Role) {
    let _ = role.wait_for(|r| r != still).await.map(drop);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::{DRIVER, Epoch, ReplicaId};
    use tokio::sync::mpsc;

    /// Says when it is dropped: the run it lives in ended or was aborted.
    struct Ended(mpsc::UnboundedSender<String>);

    impl Drop for Ended {
        fn drop(&mut self) {
            let _ = self.0.send("ended".into());
        }
    }

    fn fence(epoch: i64) -> Fence {
        Fence {
            lease: DRIVER,
            holder: ReplicaId::from_stored("me".into()),
            epoch: Epoch::from_stored(epoch),
        }
    }

    #[tokio::test]
    async fn the_work_runs_while_leading_and_is_aborted_when_the_lease_is_lost() {
        let leadership = Leadership::for_replica(ReplicaId::from_stored("me".into()));
        let stop = CancellationToken::new();
        let (events, mut seen) = mpsc::unbounded_channel::<String>();
        let gate = tokio::spawn(while_leader(leadership.clone(), stop.clone(), {
            let events = events.clone();
            move |fence: Fence, _cancel| {
                let events = events.clone();
                async move {
                    let _ended = Ended(events.clone());
                    let _ = events.send(format!("leading at {}", fence.epoch));
                    // Works until stopped from outside: never by itself.
                    std::future::pending::<()>().await;
                }
            }
        }));
        leadership.publish(Role::Leader(fence(1)));
        assert_eq!(seen.recv().await.unwrap(), "leading at 1");
        leadership.publish(Role::Standby);
        assert_eq!(
            seen.recv().await.unwrap(),
            "ended",
            "aborted, not waited for"
        );
        leadership.publish(Role::Leader(fence(2)));
        assert_eq!(seen.recv().await.unwrap(), "leading at 2");
        leadership.publish(Role::Leader(fence(3)));
        assert_eq!(
            seen.recv().await.unwrap(),
            "ended",
            "another epoch, another run"
        );
        assert_eq!(seen.recv().await.unwrap(), "leading at 3");
        // This work never looks at its token, so a shutdown would wait for
        // it for ever: the test lets the gate go.
        gate.abort();
        let _ = gate.await;
    }

    #[tokio::test]
    async fn a_shutdown_lets_the_run_finish_on_its_token() {
        let leadership = Leadership::for_replica(ReplicaId::from_stored("me".into()));
        let stop = CancellationToken::new();
        let (events, mut seen) = mpsc::unbounded_channel::<String>();
        let gate = tokio::spawn(while_leader(leadership.clone(), stop.clone(), {
            move |_fence: Fence, cancel: CancellationToken| {
                let events = events.clone();
                async move {
                    let _ = events.send("leading".into());
                    cancel.cancelled().await;
                    let _ = events.send("finished its step".into());
                }
            }
        }));
        leadership.publish(Role::Leader(fence(1)));
        assert_eq!(seen.recv().await.unwrap(), "leading");
        stop.cancel();
        // Seen stopping and standing by at once: the shutdown wins.
        leadership.publish(Role::Standby);
        gate.await.unwrap();
        assert_eq!(seen.recv().await.unwrap(), "finished its step");
    }
}
