//! What a simulated VM does before its launch, as `launch.sh`'s agent does
//! on a real one: a pool VM builds its pinned repositories first, then
//! every VM long-polls stackbinder's `GET /api/vm/assignment` with its
//! boot secret until it has its job.

use super::launch_script::push_console;
use crate::cloud_init::{Assignment, BootData, PinnedRepo};
use axum::http::StatusCode;
use std::sync::Mutex;
use std::time::Duration;

/// As launch.sh: a long bound on retries while stackbinder is unreachable
/// or failing (an hour at 3 s), so an outage does not waste the VM.
const ASK_ATTEMPTS: u32 = 1200;
const RETRY_DELAY: Duration = Duration::from_secs(3);
/// Longer than any hold (`provision.assignment_hold_seconds` <= 300).
const ASK_TIMEOUT: Duration = Duration::from_secs(330);

/// "Build" each pinned repository ahead, as launch.sh runs
/// `repo2docker --no-run` for them; the images it leaves are what
/// `prebuilt` finds. Takes no time of its own: the timing model of a
/// prebuild lives in `config/simulator.rs`.
pub(super) fn prebuild(boot: &BootData, console: &Mutex<Vec<String>>) {
    for pinned in &boot.prebuild {
        push_console(
            console,
            &format!("prebuilding {} at {}", pinned.repo, pinned.git_ref),
        );
    }
}

/// Whether the launch of `assignment` finds its environment prebuilt on a
/// VM booted with `prebuild`: the same repository at the same ref (a real
/// VM compares the image names of the resolved commits).
pub fn prebuilt(prebuild: &[PinnedRepo], assignment: &Assignment) -> bool {
    prebuild
        .iter()
        .any(|p| p.repo == assignment.repo && p.git_ref == assignment.git_ref)
}

/// Ask for the VM's job until it has one; `None` when stackbinder says no
/// job will come (409), refuses the secret, or never answers.
pub(super) async fn ask_for_job(
    http: &reqwest::Client,
    boot: &BootData,
    console: &Mutex<Vec<String>>,
) -> Option<Assignment> {
    let mut failures = 0;
    while failures < ASK_ATTEMPTS {
        let sent = http
            .get(boot.assignment_url.clone())
            .query(&[("vm", boot.vm_id.to_string())])
            .bearer_auth(&boot.callback_secret)
            .timeout(ASK_TIMEOUT)
            .send()
            .await;
        let (status, retry_after, response) = match sent {
            Ok(r) => (r.status(), retry_after(&r), Some(r)),
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, None, None),
        };
        match status {
            StatusCode::OK => match response?.json::<Assignment>().await {
                Ok(job) => return Some(job),
                Err(e) => push_console(console, &format!("the assignment is unusable: {e}")),
            },
            StatusCode::NO_CONTENT => continue,
            StatusCode::CONFLICT => {
                push_console(
                    console,
                    "stackbinder no longer expects this VM (HTTP 409); stopping",
                );
                return None;
            }
            s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {}
            s => {
                push_console(
                    console,
                    &format!(
                        "stackbinder refused to give this VM its job (HTTP {}); giving up",
                        s.as_u16()
                    ),
                );
                return None;
            }
        }
        failures += 1;
        tokio::time::sleep(retry_after.unwrap_or(RETRY_DELAY)).await;
    }
    push_console(console, "stackbinder never gave this VM its job; giving up");
    None
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_is_prebuilt_only_for_a_pinned_repository_at_its_ref() {
        let pinned = vec![PinnedRepo {
            repo: "https://github.com/course/a".into(),
            git_ref: "main".into(),
        }];
        let job = |repo: &str, git_ref: &str| Assignment {
            login: "ada".into(),
            repo: repo.into(),
            git_ref: git_ref.into(),
            url_path: String::new(),
            jupyter_token: "t".into(),
            gpu: false,
            home_volume_id: None,
            callback_secret: None,
        };
        assert!(prebuilt(
            &pinned,
            &job("https://github.com/course/a", "main")
        ));
        assert!(!prebuilt(
            &pinned,
            &job("https://github.com/course/a", "dev")
        ));
        assert!(!prebuilt(
            &pinned,
            &job("https://github.com/other/b", "main")
        ));
        assert!(!prebuilt(&[], &job("https://github.com/course/a", "main")));
    }
}
