use super::leases::begin_write;
use super::{Result, Store, on_pool};
use crate::domain::VmId;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A state transition.
    State,
    /// A line the VM sent from its launch log.
    Log,
    /// Something the user should know that did not stop the launch.
    Warning,
    /// A failed attempt (the provisioner will retry or fail the VM).
    Error,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VmEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub message: String,
}

/// Longest single log line we keep; the rest is cut (a VM must not be able
/// to fill our disk with one line).
pub const MAX_EVENT_LEN: usize = 1000;

/// Append an event to a VM's log through `$executor` (a pool or an open
/// transaction of either backend): a macro, so the one query is typed for
/// whichever driver the caller has at hand. Yields `sqlx::Result<()>`.
macro_rules! append {
    ($executor:expr, $vm:expr, $kind:expr, $message:expr $(,)?) => {
        sqlx::query("INSERT INTO vm_events (vm_id, at, kind, message) VALUES ($1, $2, $3, $4)")
            .bind($vm)
            .bind(chrono::Utc::now())
            .bind($kind)
            .bind($crate::store::events::truncate(
                $message,
                $crate::store::events::MAX_EVENT_LEN,
            ))
            .execute($executor)
            .await
            .map(drop)
    };
}
pub(super) use append;

pub(super) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Store {
    pub async fn append_event(&self, vm: VmId, kind: EventKind, message: &str) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool);
            append!(&mut *tx, vm, kind, message)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The last `limit` events of a VM, oldest first.
    pub async fn recent_events(&self, vm: VmId, limit: u32) -> Result<Vec<VmEvent>> {
        self.last_events(vm, None, limit).await
    }

    /// The last `limit` lines the VM logged, oldest first.
    pub async fn log_tail(&self, vm: VmId, limit: u32) -> Result<Vec<VmEvent>> {
        self.last_events(vm, Some(EventKind::Log), limit).await
    }

    async fn last_events(
        &self,
        vm: VmId,
        kind: Option<EventKind>,
        limit: u32,
    ) -> Result<Vec<VmEvent>> {
        let mut events: Vec<VmEvent> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, at, kind, message FROM vm_events
             WHERE vm_id = $1 AND ($2 IS NULL OR kind = $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(vm)
        .bind(kind)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?);
        events.reverse();
        Ok(events)
    }
}
