//! `stackbinder image build`: make the snapshot image every VM boots from.
//!
//! Boot a builder VM from the stock base image with the rendered
//! base-image cloud-config, follow its console until it powers off, read
//! the build's verdict from the console marker, snapshot it (Nova
//! `createImage`), wait until the image is active in Glance, and delete
//! the builder. A failure or an interruption deletes whatever the build
//! made: the half-made image, the builder and its volumes.
//!
//! **Why the builder boots from the image, not from a volume.** Nova's
//! `createImage` of a volume-backed server does not copy the disk: it makes
//! a Cinder snapshot of the boot volume and a Glance image that only points
//! at that snapshot (`block_device_mapping`). Cinder then refuses to delete
//! the volume while the snapshot exists, and the snapshot must exist as
//! long as the image does, so the builder's volume could never be deleted
//! and the image would live and die with it. Booted from the image onto the
//! flavor's root disk, the builder's snapshot is uploaded to Glance as a
//! self-contained image; every launch then makes its own boot volume from
//! it, and the builder leaves nothing behind. The price: the builder flavor
//! needs a root disk big enough for the image (`image.builder_flavor`).

use crate::cloud::teardown::{self, Patience};
use crate::cloud::{
    BuilderSpec, Cloud, CloudError, ImageStatus, InstallationId, META_BUILD_UNTIL,
    META_IMAGE_BUILD, META_INSTANCE, ServerStatus,
};
use crate::cloud_init::{ImageBuildVerdict, image_build_verdict, render_base_image};
use crate::config::{Config, ImageConfig};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Looks for the builder behind a lost boot answer (waits doubling from
/// one poll interval) before the build gives up.
const LOST_BUILDER_LOOKUPS: u32 = 4;

/// Lines of console asked for at each look; the overlap with the previous
/// look tells which lines are new.
const CONSOLE_WINDOW: u32 = 200;

/// What to build.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Name of the new image.
    pub name: String,
    /// The stock image the builder boots, name or id.
    pub base_image: String,
    pub flavor: String,
    /// The rendered base-image cloud-config.
    pub user_data: String,
}

impl Plan {
    /// The plan of `[image]`, with the command line's overrides. The image
    /// is named after the day by default, so builds do not collide.
    pub fn from_config(
        image: &ImageConfig,
        name: Option<String>,
        base_image: Option<String>,
        flavor: Option<String>,
    ) -> Result<Self, String> {
        let name = name.unwrap_or_else(|| {
            format!(
                "stackbinder-snapshot-{}",
                chrono::Utc::now().format("%Y%m%d-%H%M")
            )
        });
        // Glance takes up to 255 characters; "-builder" is added for the VM.
        if name.trim().is_empty()
            || name.chars().count() > 200
            || name.chars().any(char::is_control)
        {
            return Err(format!(
                "{name:?} is not a usable image name: use 1 to 200 printable characters"
            ));
        }
        let pick = |flag: Option<String>, key: &str, configured: &str| {
            let value = flag.unwrap_or_else(|| configured.to_owned());
            if value.trim().is_empty() {
                Err(format!("{key} is empty"))
            } else {
                Ok(value)
            }
        };
        Ok(Self {
            name,
            base_image: pick(base_image, "--base-image", &image.base_image)?,
            flavor: pick(flavor, "--flavor", &image.builder_flavor)?,
            user_data: render_base_image(image),
        })
    }

    /// The builder VM's name.
    pub fn builder_name(&self) -> String {
        format!("{}-builder", self.name)
    }
}

/// How often to look, and how long each stage may take.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub poll: Duration,
    /// From the boot request until the builder has powered off.
    pub build_timeout: Duration,
    /// From `createImage` until the image is active.
    pub snapshot_timeout: Duration,
    /// Deleting the builder and its volumes, and the image.
    pub teardown_timeout: Duration,
}

impl Timing {
    /// The build's limits from `[image]`; the cloud is polled as often as
    /// the provisioner polls it (`provision.poll_interval_ms`).
    pub fn from_config(config: &Config) -> Self {
        Self {
            poll: config.provision.poll_interval(),
            build_timeout: config.image.build_timeout(),
            snapshot_timeout: config.image.snapshot_timeout(),
            // Someone is waiting at the terminal: give up on a stuck
            // deletion sooner than the provisioner does, and say so.
            teardown_timeout: Duration::from_secs(600),
        }
    }
}

impl Timing {
    /// The longest a build can run, from boot to its last clean-up.
    pub fn whole_build(&self) -> chrono::Duration {
        let total = self.build_timeout + self.snapshot_timeout + self.teardown_timeout;
        chrono::Duration::from_std(total).unwrap_or(chrono::Duration::MAX)
    }
}

/// What the build tells its watcher as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A stage of the build, in words.
    Step(String),
    /// A new line on the builder's console.
    Console(String),
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    pub image_id: String,
    pub name: String,
    /// Things the build could not delete after it succeeded (the builder),
    /// described so an operator can delete them by hand.
    pub left_behind: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("cannot {doing}: {source}")]
    Cloud {
        doing: &'static str,
        source: CloudError,
    },
    #[error("the build on the builder VM failed: {0}")]
    BuildFailed(String),
    #[error(
        "the builder powered off without reporting success (no `STACKBINDER-IMAGE-BUILD: OK` on its console); look at its console output above"
    )]
    NoVerdict,
    #[error("the builder VM went to ERROR: {0}")]
    BuilderError(String),
    #[error("the builder VM disappeared from the cloud before it finished")]
    BuilderVanished,
    #[error("the builder did not power off within {0} minutes (image.build_timeout_minutes)")]
    BuildTimedOut(u64),
    #[error("the snapshot ended {0} instead of active")]
    SnapshotFailed(String),
    #[error("the snapshot was not active within {0} minutes (image.snapshot_timeout_minutes)")]
    SnapshotTimedOut(u64),
    #[error("interrupted")]
    Interrupted,
}

/// A failed build, and what its clean-up could not delete.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: BuildError,
    pub left_behind: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if self.left_behind.is_empty() {
            write!(f, "; everything the build created was deleted")
        } else {
            write!(
                f,
                "; these could not be deleted, delete them by hand: {}",
                self.left_behind.join("; ")
            )
        }
    }
}

impl std::error::Error for Failure {}

/// What the build has made so far, for the clean-up.
#[derive(Debug, Default)]
struct Made {
    builder: Option<String>,
    image: Option<String>,
}

/// Build the image. `cancel` interrupts the build while it waits or looks;
/// a request that creates something (the builder, the snapshot) is let
/// finish first, because dropping it half-way could leave a resource whose
/// id we never learn. What the build made is deleted before this returns,
/// in every case but success, where the image stays and only the builder
/// goes.
pub async fn build_image(
    cloud: &dyn Cloud,
    owner: &InstallationId,
    plan: &Plan,
    timing: &Timing,
    progress: &mut (dyn FnMut(Progress) + Send),
    cancel: &CancellationToken,
) -> Result<Built, Failure> {
    let mut made = Made::default();
    let outcome = work(
        cloud,
        owner,
        plan,
        timing,
        &mut *progress,
        &mut made,
        cancel,
    )
    .await;
    let patience = Patience {
        poll: timing.poll,
        timeout: timing.teardown_timeout,
    };
    match outcome {
        Ok(image_id) => {
            made.image = None;
            let left_behind = clean_up(cloud, &made, patience, progress).await;
            Ok(Built {
                image_id,
                name: plan.name.clone(),
                left_behind,
            })
        }
        Err(error) => {
            progress(Progress::Step(format!("{error}: cleaning up")));
            let left_behind = clean_up(cloud, &made, patience, progress).await;
            Err(Failure { error, left_behind })
        }
    }
}

/// Boot, watch, snapshot, wait: the image's id.
async fn work(
    cloud: &dyn Cloud,
    owner: &InstallationId,
    plan: &Plan,
    timing: &Timing,
    progress: &mut (dyn FnMut(Progress) + Send),
    made: &mut Made,
    cancel: &CancellationToken,
) -> Result<String, BuildError> {
    let started = Instant::now();
    stop_if(cancel)?;
    let spec = BuilderSpec {
        name: plan.builder_name(),
        image: plan.base_image.clone(),
        flavor: plan.flavor.clone(),
        user_data: plan.user_data.clone(),
        metadata: BTreeMap::from([
            (META_IMAGE_BUILD.to_owned(), plan.name.clone()),
            (META_INSTANCE.to_owned(), owner.as_str().to_owned()),
            // The latest this build can still own the builder: its own
            // limits, end to end. The reconciler of `serve` deletes a
            // builder only past this (see `provision::reconcile`).
            (
                META_BUILD_UNTIL.to_owned(),
                (chrono::Utc::now() + timing.whole_build()).to_rfc3339(),
            ),
        ]),
    };
    progress(Progress::Step(format!(
        "booting the builder {} from {} (flavor {})",
        spec.name, spec.image, spec.flavor
    )));
    let builder = match cloud.create_builder(&spec).await {
        Ok(id) => id,
        // A timeout may hide a builder that Nova made: look it up by its
        // metadata before giving up, so it is watched (or cleaned up).
        Err(source) if source.is_transient() => {
            match find_lost_builder(cloud, owner, plan, timing, cancel).await? {
                Some(id) => {
                    progress(Progress::Step(format!(
                        "the answer to the boot request was lost ({source}); found the builder {id} by its metadata"
                    )));
                    id
                }
                None => {
                    return Err(BuildError::Cloud {
                        doing: "boot the builder",
                        source,
                    });
                }
            }
        }
        Err(source) => {
            return Err(BuildError::Cloud {
                doing: "boot the builder",
                source,
            });
        }
    };
    made.builder = Some(builder.clone());
    stop_if(cancel)?;
    progress(Progress::Step(format!(
        "builder {builder} requested; following its console until it powers off"
    )));
    let verdict = watch_build(cloud, &builder, timing, started, progress, cancel).await?;
    match verdict {
        ImageBuildVerdict::Succeeded => {}
        ImageBuildVerdict::Failed(reason) => return Err(BuildError::BuildFailed(reason)),
        ImageBuildVerdict::Unknown => return Err(BuildError::NoVerdict),
    }
    progress(Progress::Step(format!(
        "the build succeeded; snapshotting the builder into image {:?}",
        plan.name
    )));
    let image = cloud
        .create_image(&builder, &plan.name)
        .await
        .map_err(|source| BuildError::Cloud {
            doing: "snapshot the builder",
            source,
        })?;
    made.image = Some(image.clone());
    stop_if(cancel)?;
    wait_until_active(cloud, &image, timing, progress, cancel).await?;
    Ok(image)
}

/// The builder this build booted (`stackbinder_image_build` and our
/// installation id), looked for a few times with doubling waits.
async fn find_lost_builder(
    cloud: &dyn Cloud,
    owner: &InstallationId,
    plan: &Plan,
    timing: &Timing,
    cancel: &CancellationToken,
) -> Result<Option<String>, BuildError> {
    let mut wait = timing.poll;
    for _ in 0..LOST_BUILDER_LOOKUPS {
        match unless_stopped(cancel, cloud.find_builder(owner, &plan.name)).await? {
            Ok(Some(found)) => return Ok(Some(found.id)),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not look for the builder; trying again"),
        }
        unless_stopped(cancel, tokio::time::sleep(wait)).await?;
        wait = wait.saturating_mul(2);
    }
    match unless_stopped(cancel, cloud.find_builder(owner, &plan.name)).await? {
        Ok(found) => Ok(found.map(|s| s.id)),
        Err(_) => Ok(None),
    }
}

/// Poll the builder and its console until it is SHUTOFF; the verdict of
/// the console's last marker.
async fn watch_build(
    cloud: &dyn Cloud,
    builder: &str,
    timing: &Timing,
    started: Instant,
    progress: &mut (dyn FnMut(Progress) + Send),
    cancel: &CancellationToken,
) -> Result<ImageBuildVerdict, BuildError> {
    let deadline = started + timing.build_timeout;
    let mut tail = ConsoleTail::default();
    let mut verdict = ImageBuildVerdict::Unknown;
    let mut last_status = None;
    loop {
        let looked = match unless_stopped(cancel, cloud.get_server(builder)).await? {
            Ok(server) => Some(server),
            // A blip of the cloud during a long build is not the build's
            // failure: look again at the next poll.
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "could not look at the builder; trying again");
                None
            }
            Err(source) => {
                return Err(BuildError::Cloud {
                    doing: "look at the builder",
                    source,
                });
            }
        };
        // Read after the status, so a SHUTOFF server's console is complete.
        match unless_stopped(cancel, cloud.console_output(builder, CONSOLE_WINDOW)).await? {
            Ok(output) => {
                let new = tail.advance(&output);
                let said = image_build_verdict(&new.join("\n"));
                if said != ImageBuildVerdict::Unknown {
                    verdict = said;
                }
                for line in new {
                    progress(Progress::Console(line));
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the builder's console"),
        }
        if let Some(server) = looked {
            let Some(server) = server else {
                return Err(BuildError::BuilderVanished);
            };
            if last_status.as_ref() != Some(&server.status) {
                progress(Progress::Step(format!(
                    "builder is {}",
                    status_word(&server.status)
                )));
                last_status = Some(server.status.clone());
            }
            match server.status {
                ServerStatus::Stopped => return Ok(verdict),
                ServerStatus::Error => {
                    return Err(BuildError::BuilderError(
                        server.fault.unwrap_or_else(|| "no fault given".into()),
                    ));
                }
                ServerStatus::Deleting => return Err(BuildError::BuilderVanished),
                _ => {}
            }
        }
        if Instant::now() >= deadline {
            return Err(BuildError::BuildTimedOut(minutes(timing.build_timeout)));
        }
        unless_stopped(cancel, tokio::time::sleep(timing.poll)).await?;
    }
}

async fn wait_until_active(
    cloud: &dyn Cloud,
    image: &str,
    timing: &Timing,
    progress: &mut (dyn FnMut(Progress) + Send),
    cancel: &CancellationToken,
) -> Result<(), BuildError> {
    let deadline = Instant::now() + timing.snapshot_timeout;
    let mut last = None;
    loop {
        match unless_stopped(cancel, cloud.get_image(image)).await? {
            Ok(Some(found)) => {
                if last.as_ref() != Some(&found.status) {
                    progress(Progress::Step(match &found.status {
                        ImageStatus::Pending(s) => format!("image {image} is {s}"),
                        ImageStatus::Active => format!("image {image} is active"),
                        ImageStatus::Failed(s) => format!("image {image} is {s}"),
                    }));
                    last = Some(found.status.clone());
                }
                match found.status {
                    ImageStatus::Active => return Ok(()),
                    ImageStatus::Failed(s) => return Err(BuildError::SnapshotFailed(s)),
                    ImageStatus::Pending(_) => {}
                }
            }
            Ok(None) => return Err(BuildError::SnapshotFailed("deleted".into())),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "could not look at the image; trying again");
            }
            Err(source) => {
                return Err(BuildError::Cloud {
                    doing: "look at the new image",
                    source,
                });
            }
        }
        if Instant::now() >= deadline {
            return Err(BuildError::SnapshotTimedOut(minutes(
                timing.snapshot_timeout,
            )));
        }
        unless_stopped(cancel, tokio::time::sleep(timing.poll)).await?;
    }
}

fn stop_if(cancel: &CancellationToken) -> Result<(), BuildError> {
    if cancel.is_cancelled() {
        Err(BuildError::Interrupted)
    } else {
        Ok(())
    }
}

/// Wait for `step` (a look or a pause, which creates nothing) unless the
/// build is cancelled first.
async fn unless_stopped<T>(
    cancel: &CancellationToken,
    step: impl std::future::Future<Output = T>,
) -> Result<T, BuildError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(BuildError::Interrupted),
        done = step => Ok(done),
    }
}

/// Delete the half-made image first (so Nova stops uploading into it),
/// then the builder and its volumes. What could not be deleted, in words.
async fn clean_up(
    cloud: &dyn Cloud,
    made: &Made,
    patience: Patience,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Vec<String> {
    let mut left = Vec::new();
    if let Some(image) = &made.image {
        progress(Progress::Step(format!(
            "deleting the unfinished image {image}"
        )));
        if let Err(e) = cloud.delete_image(image).await {
            left.push(format!("image {image} ({e})"));
        }
    }
    if let Some(builder) = &made.builder {
        progress(Progress::Step(format!("deleting the builder {builder}")));
        // It boots from an image, so it has no volume of its own: anything
        // attached to it is someone else's.
        match teardown::delete_server_and_volumes(cloud, builder, &[], patience).await {
            Ok(()) => progress(Progress::Step(format!("builder {builder} deleted"))),
            Err(e) => left.push(format!("builder server {builder} ({e})")),
        }
    }
    left
}

/// Nova's word for a status, as operators know it.
fn status_word(status: &ServerStatus) -> &str {
    match status {
        ServerStatus::Build => "BUILD",
        ServerStatus::Active => "ACTIVE",
        ServerStatus::Error => "ERROR",
        ServerStatus::Stopped => "SHUTOFF",
        ServerStatus::Deleting => "being deleted",
        ServerStatus::Unknown => "UNKNOWN (its cell does not answer)",
        ServerStatus::Other(other) => other,
    }
}

fn minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60)
}

/// The lines of a console not seen before. Nova gives the last N lines;
/// the longest end of the previous look that starts this one is old.
#[derive(Debug, Default)]
pub struct ConsoleTail {
    last: Vec<String>,
}

impl ConsoleTail {
    pub fn advance(&mut self, output: &str) -> Vec<String> {
        // An empty answer is Nova not showing the console (409 while the
        // server changes state), not a console that was wiped: keep the
        // last look, or the next one would print everything again.
        if output.is_empty() {
            return Vec::new();
        }
        let now: Vec<String> = output.lines().map(str::to_owned).collect();
        let longest = self.last.len().min(now.len());
        let overlap = (0..=longest)
            .rev()
            .find(|&k| self.last[self.last.len() - k..] == now[..k])
            .unwrap_or(0);
        let new = now[overlap..].to_vec();
        self.last = now;
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_tail_gives_each_line_once_as_the_window_slides() {
        let mut tail = ConsoleTail::default();
        assert_eq!(tail.advance("a\nb"), ["a", "b"]);
        assert_eq!(tail.advance("a\nb"), Vec::<String>::new());
        assert_eq!(tail.advance("a\nb\nc"), ["c"]);
        // A window of three that slid by two.
        assert_eq!(tail.advance("c\nd\ne"), ["d", "e"]);
        // Repeated lines are new lines when they come again.
        assert_eq!(tail.advance("d\ne\ne"), ["e"]);
        assert_eq!(tail.advance(""), Vec::<String>::new());
        assert_eq!(tail.advance("d\ne\ne\nf"), ["f"]);
    }

    #[test]
    fn the_plan_takes_the_flags_over_the_configuration() {
        let image = ImageConfig::default();
        let plan = Plan::from_config(&image, None, None, None).unwrap();
        assert!(
            plan.name.starts_with("stackbinder-snapshot-20"),
            "{}",
            plan.name
        );
        assert_eq!(plan.base_image, image.base_image);
        assert_eq!(plan.flavor, image.builder_flavor);
        assert_eq!(plan.user_data, render_base_image(&image));
        let plan = Plan::from_config(
            &image,
            Some("snap".into()),
            Some("jammy".into()),
            Some("m1.xlarge".into()),
        )
        .unwrap();
        assert_eq!(
            (
                plan.name.as_str(),
                plan.base_image.as_str(),
                plan.flavor.as_str()
            ),
            ("snap", "jammy", "m1.xlarge")
        );
        assert_eq!(plan.builder_name(), "snap-builder");
        assert!(Plan::from_config(&image, Some("a\nb".into()), None, None).is_err());
        assert!(Plan::from_config(&image, Some(" ".into()), None, None).is_err());
        assert!(Plan::from_config(&image, None, Some("".into()), None).is_err());
    }

    #[test]
    fn a_failure_says_what_is_left_behind() {
        let clean = Failure {
            error: BuildError::BuildFailed("pre-building x".into()),
            left_behind: vec![],
        };
        assert_eq!(
            clean.to_string(),
            "the build on the builder VM failed: pre-building x; everything the build created was deleted"
        );
        let dirty = Failure {
            error: BuildError::Interrupted,
            left_behind: vec!["builder server s1 (the cloud is unreachable)".into()],
        };
        assert!(
            dirty
                .to_string()
                .contains("delete them by hand: builder server s1")
        );
    }
}
