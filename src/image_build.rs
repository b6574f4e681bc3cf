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

mod outcome;
mod plan;
mod watch;

pub use outcome::{BuildError, Built, Failure};
pub use plan::{Plan, Timing};
pub use watch::ConsoleTail;

use crate::cloud::teardown::{self, Patience};
use crate::cloud::{
    BuilderSpec, Cloud, InstallationId, META_BUILD_UNTIL, META_IMAGE_BUILD, META_INSTANCE,
};
use crate::cloud_init::ImageBuildVerdict;
use std::collections::BTreeMap;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use watch::{wait_until_active, watch_build};

/// Looks for the builder behind a lost boot answer (waits doubling from
/// one poll interval) before the build gives up.
const LOST_BUILDER_LOOKUPS: u32 = 4;

/// What the build tells its watcher as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A stage of the build, in words.
    Step(String),
    /// A new line on the builder's console.
    Console(String),
}

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
    progress: &mut (dyn FnMut(BuildEvent) + Send),
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
            progress(BuildEvent::Step(format!("{error}: cleaning up")));
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
    progress: &mut (dyn FnMut(BuildEvent) + Send),
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
    progress(BuildEvent::Step(format!(
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
                    progress(BuildEvent::Step(format!(
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
    progress(BuildEvent::Step(format!(
        "builder {builder} requested; following its console until it powers off"
    )));
    let verdict = watch_build(cloud, &builder, timing, started, progress, cancel).await?;
    match verdict {
        ImageBuildVerdict::Succeeded => {}
        ImageBuildVerdict::Failed(reason) => return Err(BuildError::BuildFailed(reason)),
        ImageBuildVerdict::Unknown => return Err(BuildError::NoVerdict),
    }
    progress(BuildEvent::Step(format!(
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
    progress: &mut (dyn FnMut(BuildEvent) + Send),
) -> Vec<String> {
    let mut left = Vec::new();
    if let Some(image) = &made.image {
        progress(BuildEvent::Step(format!(
            "deleting the unfinished image {image}"
        )));
        if let Err(e) = cloud.delete_image(image).await {
            left.push(format!("image {image} ({e})"));
        }
    }
    if let Some(builder) = &made.builder {
        progress(BuildEvent::Step(format!("deleting the builder {builder}")));
        // It boots from an image, so it has no volume of its own: anything
        // attached to it is someone else's.
        match teardown::delete_server_and_volumes(cloud, builder, &[], patience).await {
            Ok(()) => progress(BuildEvent::Step(format!("builder {builder} deleted"))),
            Err(e) => left.push(format!("builder server {builder} ({e})")),
        }
    }
    left
}
