//! What the status page says about how a launch goes: the path it got (a
//! VM of the warm pool, or a new one), whether its environment is prebuilt,
//! and how long launches like it took lately. The estimate comes from
//! history only: with no past launch of the repository on that path the
//! page says nothing rather than invent a figure.

use crate::config::PinnedRepoConfig;
use crate::domain::{LaunchPath, VmState};
use crate::store::{Store, StoreError, VmRecord};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How many of the last ready launches the estimate is the median of:
/// enough to ride out one slow boot, few enough to follow a change (a new
/// snapshot, a pool turned on).
pub const ESTIMATE_OF: u32 = 20;

/// How this launch goes, as its owner sees it (`VmView` says what each
/// field means).
#[derive(Debug, Clone, PartialEq)]
pub struct Outlook {
    pub launch_path: LaunchPath,
    pub path: &'static str,
    pub prebuilt: bool,
    pub environment: Option<String>,
    pub eta: Option<Eta>,
}

/// An estimate from the last launches of the same repository on the same
/// path that got ready.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Eta {
    /// The median time from click to ready of those launches.
    pub seconds: i64,
    /// How many launches it is the median of.
    pub launches: usize,
    /// This launch's click plus that median.
    pub ready_by: DateTime<Utc>,
    /// All of it in words.
    pub text: String,
}

impl Outlook {
    /// The outlook of `vm`; the estimate is looked up only while it launches.
    pub async fn load(
        store: &Store,
        pinned: &[PinnedRepoConfig],
        vm: &VmRecord,
    ) -> Result<Self, StoreError> {
        let launching = matches!(
            vm.state,
            VmState::Requested | VmState::Creating | VmState::Booting | VmState::Building
        );
        let history = if launching {
            store
                .recent_launch_times(&vm.repo, vm.launch_path, ESTIMATE_OF)
                .await?
        } else {
            Vec::new()
        };
        Ok(outlook(vm, pinned, launching, &history))
    }
}

/// The outlook of `vm` given the click and ready times of past launches.
fn outlook(
    vm: &VmRecord,
    pinned: &[PinnedRepoConfig],
    launching: bool,
    history: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Outlook {
    let prebuilt = vm.launch_path == LaunchPath::Pool
        && pinned
            .iter()
            .any(|p| p.repo == vm.repo && p.git_ref == vm.git_ref);
    let durations: Vec<i64> = history
        .iter()
        .map(|(asked, ready)| (*ready - *asked).num_seconds())
        .filter(|s| *s >= 0)
        .collect();
    let eta = median(&durations)
        .filter(|_| launching)
        .map(|seconds| {
            let ready_by = vm.created_at + chrono::Duration::seconds(seconds);
            let text = format!(
                "usually ready {} after the click (the median of the last {} launch{} of this repository {}): about {}",
                about(seconds),
                durations.len(),
                if durations.len() == 1 { "" } else { "es" },
                match vm.launch_path {
                    LaunchPath::Pool => "from the warm pool",
                    LaunchPath::Cold => "on a new VM",
                },
                ready_by.format("%H:%M:%S UTC"),
            );
            Eta {
                seconds,
                launches: durations.len(),
                ready_by,
                text,
            }
        });
    let environment = launching.then(|| match (prebuilt, &eta) {
        (true, _) => "prebuilt: starting Jupyter".to_owned(),
        (false, Some(eta)) => format!("not prebuilt: building, {}", about(eta.seconds)),
        (false, None) => "not prebuilt: building".to_owned(),
    });
    Outlook {
        launch_path: vm.launch_path,
        path: match vm.launch_path {
            LaunchPath::Pool => "from the warm pool",
            LaunchPath::Cold => "booting a new VM",
        },
        prebuilt,
        environment,
        eta,
    }
}

/// The middle value (the mean of the middle two of an even count).
fn median(values: &[i64]) -> Option<i64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// A duration the way people say it: "~40 s" under a minute and a half,
/// else "~3 min".
fn about(seconds: i64) -> String {
    if seconds < 90 {
        format!("~{} s", seconds.max(1))
    } else {
        format!("~{} min", (seconds + 30) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GitRef, RepoSpec};

    fn vm(path: LaunchPath, repo: &str, git_ref: &str) -> VmRecord {
        let mut vm = VmRecord::example(VmState::Booting);
        vm.repo = RepoSpec::parse(repo).unwrap();
        vm.git_ref = GitRef::parse(git_ref).unwrap();
        vm.launch_path = path;
        vm
    }

    fn pinned(repo: &str, git_ref: &str) -> PinnedRepoConfig {
        PinnedRepoConfig {
            repo: RepoSpec::parse(repo).unwrap(),
            git_ref: GitRef::parse(git_ref).unwrap(),
        }
    }

    fn took(seconds: &[i64]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let t0 = Utc::now() - chrono::Duration::hours(1);
        seconds
            .iter()
            .map(|s| (t0, t0 + chrono::Duration::seconds(*s)))
            .collect()
    }

    #[test]
    fn only_a_pinned_repo_and_ref_on_a_pool_vm_is_prebuilt() {
        let course = [pinned("https://github.com/a/course", "main")];
        let on = |path, git_ref| {
            outlook(
                &vm(path, "https://github.com/a/course", git_ref),
                &course,
                true,
                &[],
            )
        };
        assert!(on(LaunchPath::Pool, "main").prebuilt);
        assert_eq!(on(LaunchPath::Pool, "main").path, "from the warm pool");
        assert_eq!(
            on(LaunchPath::Pool, "main").environment.as_deref(),
            Some("prebuilt: starting Jupyter")
        );
        assert!(!on(LaunchPath::Pool, "other").prebuilt);
        assert!(!on(LaunchPath::Cold, "main").prebuilt);
        assert_eq!(on(LaunchPath::Cold, "main").path, "booting a new VM");
        let other = outlook(
            &vm(LaunchPath::Pool, "https://github.com/a/other", "main"),
            &course,
            true,
            &[],
        );
        assert_eq!(other.environment.as_deref(), Some("not prebuilt: building"));
    }

    #[test]
    fn the_estimate_is_the_median_of_past_launches_and_absent_without_them() {
        let v = vm(LaunchPath::Cold, "https://github.com/a/b", "HEAD");
        let o = outlook(&v, &[], true, &took(&[100, 400, 200]));
        let eta = o.eta.unwrap();
        assert_eq!((eta.seconds, eta.launches), (200, 3));
        assert_eq!(eta.ready_by, v.created_at + chrono::Duration::seconds(200));
        assert!(
            eta.text.starts_with("usually ready ~3 min after the click"),
            "{}",
            eta.text
        );
        assert_eq!(
            o.environment.as_deref(),
            Some("not prebuilt: building, ~3 min")
        );
        assert_eq!(outlook(&v, &[], true, &[]).eta, None);
        assert_eq!(
            outlook(&v, &[], false, &took(&[10])).eta,
            None,
            "not once it is ready"
        );
        assert_eq!(outlook(&v, &[], false, &[]).environment, None);
    }

    #[test]
    fn medians_and_durations_in_words() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5]), Some(5));
        assert_eq!(median(&[9, 1, 4, 6]), Some(5));
        assert_eq!(about(0), "~1 s");
        assert_eq!(about(42), "~42 s");
        assert_eq!(about(200), "~3 min");
        assert_eq!(about(150), "~3 min");
    }
}
