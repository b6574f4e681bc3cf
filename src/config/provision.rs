//! `[provision]`: the rhythm of the background driver and the reconciler.

use super::ConfigError;
use serde::Deserialize;
use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisionConfig {
    /// How often the background driver looks at unfinished VMs.
    pub poll_interval_ms: NonZeroU64,
    /// The most VMs the driver moves forward at the same time; fewer while
    /// the cloud answers slowly or asks to slow down (`provision::concurrency`).
    pub concurrency: NonZeroUsize,
    /// How often the store is compared with what the cloud really has.
    pub reconcile_interval_seconds: u64,
    /// Something of ours in the cloud without a record is deleted once it
    /// has been seen for this long (a launch may be about to record it).
    pub orphan_grace_minutes: u64,
    /// How often a ready VM's Jupyter is asked for its last activity.
    pub idle_check_seconds: u64,
    /// A stalled deletion is asked for again this often...
    pub delete_retry_seconds: u64,
    /// ...and fails (to be retried at its expiry) after this long.
    pub delete_give_up_seconds: u64,
    /// How long `GET /api/vm/assignment` holds a VM's request while the VM
    /// has no job yet (a pool VM), before it answers 204 and the VM asks
    /// again; at most `MAX_ASSIGNMENT_HOLD_SECONDS`.
    pub assignment_hold_seconds: NonZeroU64,
}

/// The agent on a VM gives up on an answer after 330 s (curl's
/// `--max-time` in launch.sh): a hold must end well before.
pub const MAX_ASSIGNMENT_HOLD_SECONDS: u64 = 300;

impl ProvisionConfig {
    /// How often the background driver looks at unfinished VMs.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.get())
    }

    /// How often the store is compared with the cloud.
    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(self.reconcile_interval_seconds)
    }

    /// How long something of ours without a record is left alone.
    pub fn orphan_grace(&self) -> Duration {
        Duration::from_secs(self.orphan_grace_minutes * 60)
    }

    /// How often a ready VM's Jupyter is asked for its last activity.
    pub fn idle_check_interval(&self) -> Duration {
        Duration::from_secs(self.idle_check_seconds)
    }

    /// How often a stalled deletion is asked for again.
    pub fn delete_retry(&self) -> Duration {
        Duration::from_secs(self.delete_retry_seconds)
    }

    /// When a stalled deletion fails.
    pub fn delete_give_up(&self) -> Duration {
        Duration::from_secs(self.delete_give_up_seconds)
    }

    /// How long a VM's request for its job is held while it has none.
    pub fn assignment_hold(&self) -> Duration {
        Duration::from_secs(self.assignment_hold_seconds.get())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let hold = self.assignment_hold_seconds.get();
        if hold > MAX_ASSIGNMENT_HOLD_SECONDS {
            return Err(ConfigError::new(
                "provision.assignment_hold_seconds",
                format!("{hold} s is longer than a VM waits for an answer"),
                format!("use at most {MAX_ASSIGNMENT_HOLD_SECONDS} seconds, e.g. 25"),
            ));
        }
        Ok(())
    }

    /// How to fix a value of `field` that does not parse (or is 0).
    pub(super) fn fix(field: &str) -> Option<&'static str> {
        match field {
            "poll_interval_ms" => {
                Some("use a positive number of milliseconds, e.g. poll_interval_ms = 2000")
            }
            "concurrency" => Some("use a positive number of VMs, e.g. concurrency = 8"),
            "assignment_hold_seconds" => Some("use a positive number of seconds, e.g. 25"),
            _ => None,
        }
    }
}

impl Default for ProvisionConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: const { NonZeroU64::new(2000).unwrap() },
            concurrency: const { NonZeroUsize::new(8).unwrap() },
            reconcile_interval_seconds: 300,
            orphan_grace_minutes: 15,
            idle_check_seconds: 300,
            delete_retry_seconds: 600,
            delete_give_up_seconds: 3600,
            assignment_hold_seconds: const { NonZeroU64::new(25).unwrap() },
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_str;
    use std::time::Duration;

    #[test]
    fn the_durations_are_in_the_units_their_keys_say() {
        let c = load_str(
            "[provision]\npoll_interval_ms = 250\nreconcile_interval_seconds = 7\n\
             orphan_grace_minutes = 2\nidle_check_seconds = 9\n\
             delete_retry_seconds = 11\ndelete_give_up_seconds = 13",
        )
        .unwrap()
        .provision;
        assert_eq!(c.assignment_hold(), Duration::from_secs(25));
        assert_eq!(
            [
                c.poll_interval(),
                c.reconcile_interval(),
                c.orphan_grace(),
                c.idle_check_interval(),
                c.delete_retry(),
                c.delete_give_up(),
            ],
            [
                Duration::from_millis(250),
                Duration::from_secs(7),
                Duration::from_secs(120),
                Duration::from_secs(9),
                Duration::from_secs(11),
                Duration::from_secs(13),
            ]
        );
    }

    #[test]
    fn an_assignment_hold_ends_before_the_vm_stops_waiting() {
        let c = load_str("[provision]\nassignment_hold_seconds = 300").unwrap();
        assert_eq!(c.provision.assignment_hold(), Duration::from_secs(300));
        for bad in ["0", "301"] {
            let e = load_str(&format!("[provision]\nassignment_hold_seconds = {bad}")).unwrap_err();
            assert_eq!(e.key, "provision.assignment_hold_seconds", "{bad}");
        }
    }
}
