//! Watching the build: the builder's status and console until it powers
//! off, then the snapshot until Glance says it is active.

use super::Timing;
use super::{BuildError, BuildEvent, unless_stopped};
use crate::cloud::{Cloud, ImageStatus, ServerStatus};
use crate::cloud_init::{ImageBuildVerdict, image_build_verdict};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Lines of console asked for at each look; the overlap with the previous
/// look tells which lines are new.
const CONSOLE_WINDOW: u32 = 200;

/// Poll the builder and its console until it is SHUTOFF; the verdict of
/// the console's last marker.
pub(super) async fn watch_build(
    cloud: &dyn Cloud,
    builder: &str,
    timing: &Timing,
    started: Instant,
    progress: &mut (dyn FnMut(BuildEvent) + Send),
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
                    progress(BuildEvent::Console(line));
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the builder's console"),
        }
        if let Some(server) = looked {
            let Some(server) = server else {
                return Err(BuildError::BuilderVanished);
            };
            if last_status.as_ref() != Some(&server.status) {
                progress(BuildEvent::Step(format!(
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

pub(super) async fn wait_until_active(
    cloud: &dyn Cloud,
    image: &str,
    timing: &Timing,
    progress: &mut (dyn FnMut(BuildEvent) + Send),
    cancel: &CancellationToken,
) -> Result<(), BuildError> {
    let deadline = Instant::now() + timing.snapshot_timeout;
    let mut last = None;
    loop {
        match unless_stopped(cancel, cloud.get_image(image)).await? {
            Ok(Some(found)) => {
                if last.as_ref() != Some(&found.status) {
                    progress(BuildEvent::Step(match &found.status {
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
}
