//! Image builders left over by an `image build` that died or could not
//! clean up: when one may be deleted (pure).

use crate::cloud::{META_BUILD_UNTIL, Server};
use chrono::{DateTime, Utc};

/// A builder is left over once it is older than the build timeout and the
/// build that booted it has passed the time it said it would give up by.
///
/// Why a deadline in the builder's metadata rather than a heartbeat row:
/// `image build` enforces its own deadlines (build, snapshot, teardown)
/// and deletes its builder in every outcome but a crash, so a build past
/// its deadline cannot be running. The deadline is written by the build
/// itself, with its own `[image]` timeouts, at the moment it boots the
/// builder, so it holds even when `image build` ran with other settings,
/// on another machine, or against another database than `serve`; a
/// heartbeat would need both processes to share one database and a task
/// that keeps writing. Nova's own `created` time (not ours) gives the age;
/// a builder without a readable deadline falls back to the age alone.
pub(super) fn abandoned(
    builder: &Server,
    now: DateTime<Utc>,
    build_timeout: chrono::Duration,
) -> bool {
    let Some(created) = builder.created else {
        return false;
    };
    let until = builder
        .metadata
        .get(META_BUILD_UNTIL)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    now - created >= build_timeout && until.is_none_or(|until| now >= until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ServerStatus;
    use std::collections::BTreeMap;

    fn server(id: &str) -> Server {
        Server {
            id: id.into(),
            name: "snap-builder".into(),
            status: ServerStatus::Stopped,
            fault: None,
            addresses: vec![],
            volume_ids: vec![],
            metadata: BTreeMap::new(),
            created: Some(Utc::now()),
        }
    }

    fn minutes(m: i64) -> chrono::Duration {
        chrono::Duration::minutes(m)
    }

    #[test]
    fn reconciler_deletes_a_builder_only_past_its_builds_deadline() {
        let now = Utc::now();
        let builder = |age: i64, until: Option<DateTime<Utc>>| {
            let mut s = server("b");
            s.created = Some(now - minutes(age));
            if let Some(until) = until {
                s.metadata
                    .insert(META_BUILD_UNTIL.into(), until.to_rfc3339());
            }
            s
        };
        let timeout = minutes(90);
        assert!(!abandoned(&builder(30, None), now, timeout), "young");
        assert!(
            abandoned(&builder(100, None), now, timeout),
            "old, no deadline"
        );
        assert!(
            !abandoned(&builder(100, Some(now + minutes(60))), now, timeout),
            "old, but its build (snapshotting, say) runs until later"
        );
        assert!(abandoned(
            &builder(200, Some(now - minutes(1))),
            now,
            timeout
        ));
        let mut unknown = builder(500, None);
        unknown.created = None;
        assert!(
            !abandoned(&unknown, now, timeout),
            "age unknown: left alone"
        );
    }
}
