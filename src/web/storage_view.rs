//! A user's storage as the status page and `/storage` show it: size, used
//! space as the VM last reported it, last attachment, and the warning of
//! `storage.retention_days` from a week before the deletion.

use super::AppState;
use crate::domain::GithubId;
use crate::store::{HomeVolume, StoreError};
use chrono::{DateTime, Duration, Utc};

/// How long before a retention deletion the pages warn.
const WARN_BEFORE: Duration = Duration::days(7);

pub struct StorageView {
    pub size_gb: i64,
    pub created: String,
    /// A time, or "never".
    pub last_attached: String,
    /// "2.1 GB of 10 GB used, as of 2026-12-02 17:40 UTC"; `None` until a
    /// VM reported it.
    pub used: Option<String>,
    /// "Your storage will be deleted on 2026-12-09 unless you launch before then."
    pub warning: Option<String>,
    /// A VM of the owner's is ready: their work can be downloaded from it.
    pub downloadable: bool,
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Bytes for people: "340 MB", "2.1 GB" (decimal units, as Cinder's GB).
pub fn human_bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    if n < 1e9 {
        format!("{:.0} MB", n / 1e6)
    } else {
        format!("{:.1} GB", n / 1e9)
    }
}

impl StorageView {
    /// `volume` at `now`; `has_vm`: its owner has a VM (then nothing is
    /// due for deletion).
    pub fn new(
        volume: &HomeVolume,
        retention: Option<Duration>,
        has_vm: bool,
        now: DateTime<Utc>,
    ) -> Self {
        let used = match (volume.used_bytes, volume.usage_reported_at) {
            (Some(used), Some(at)) => Some(format!(
                "{} of {} GB used, as of {}",
                human_bytes(used),
                volume.size_gb,
                time(at)
            )),
            _ => None,
        };
        let warning = volume
            .deleted_after(retention)
            .filter(|due| !has_vm && *due - WARN_BEFORE <= now)
            .map(|due| {
                format!(
                    "Your storage will be deleted on {} unless you launch before then.",
                    due.format("%Y-%m-%d")
                )
            });
        Self {
            size_gb: volume.size_gb,
            created: time(volume.created_at),
            last_attached: volume
                .last_attached_at
                .map(time)
                .unwrap_or_else(|| "never".into()),
            used,
            warning,
            downloadable: false,
        }
    }
}

/// `owner`'s storage as of now, if they have any.
pub async fn load(state: &AppState, owner: GithubId) -> Result<Option<StorageView>, StoreError> {
    let Some(volume) = state.store.home_volume(owner).await? else {
        return Ok(None);
    };
    let vm = state.store.live_vm_of(owner).await?;
    let retention = state.config.storage.retention();
    let mut view = StorageView::new(&volume, retention, vm.is_some(), Utc::now());
    view.downloadable = vm.is_some_and(|vm| vm.state == crate::domain::VmState::Ready);
    Ok(Some(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(unused_since: DateTime<Utc>) -> HomeVolume {
        HomeVolume {
            github_id: GithubId(1),
            volume_id: "v1".into(),
            size_gb: 10,
            availability_zone: None,
            created_at: unused_since - Duration::days(30),
            last_attached_at: Some(unused_since - Duration::days(2)),
            used_bytes: Some(2_100_000_000),
            total_bytes: Some(9_800_000_000),
            usage_reported_at: Some(unused_since - Duration::days(2)),
            purge_requested_at: None,
            last_vm_gone_at: Some(unused_since),
        }
    }

    #[test]
    fn the_used_space_is_told_with_its_time() {
        let now = Utc::now();
        let v = volume(now);
        let view = StorageView::new(&v, None, false, now);
        let used = view.used.expect("reported");
        assert!(used.starts_with("2.1 GB of 10 GB used, as of 20"), "{used}");
        assert_eq!(human_bytes(340_000_000), "340 MB");
        let unreported = HomeVolume {
            used_bytes: None,
            ..v
        };
        assert!(
            StorageView::new(&unreported, None, false, now)
                .used
                .is_none()
        );
    }

    #[test]
    fn the_deletion_is_warned_of_from_a_week_before_and_never_with_a_vm() {
        let now = Utc::now();
        let keep = Some(Duration::days(30));
        let warned = |unused_days, has_vm| {
            StorageView::new(
                &volume(now - Duration::days(unused_days)),
                keep,
                has_vm,
                now,
            )
            .warning
        };
        assert_eq!(warned(22, false), None, "8 days left");
        let due = (now + Duration::days(7)).format("%Y-%m-%d").to_string();
        assert_eq!(
            warned(23, false),
            Some(format!(
                "Your storage will be deleted on {due} unless you launch before then."
            ))
        );
        assert_eq!(warned(40, true), None, "a VM holds it");
        let kept = StorageView::new(&volume(now - Duration::days(400)), None, false, now);
        assert_eq!(kept.warning, None, "kept for ever");
    }
}
