//! A VM's own progress reports, applied under the rule of
//! `domain::report` in one transaction.

use super::super::events::{EventKind, append};
use super::super::wake::notify_wake;
use super::super::{Result, Store, on_pool};
use crate::domain::report::{self, Kept, Report, Standing, Verdict};
use crate::domain::{LogLine, Progress, VmId, VmState};
use chrono::Utc;

/// What a progress report from a VM did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    Applied,
    /// An old or replayed report (sequence number not above the last one).
    Stale,
    /// The VM is not building any more (deleting, failed, ready...).
    Refused,
}

impl Store {
    /// Apply a progress report from the VM, as `domain::report::judge`
    /// rules: only while it launches, only if newer than the last one, its
    /// progress only forward; its log lines are appended up to the cap.
    pub async fn apply_callback(
        &self,
        id: VmId,
        seq: i64,
        progress: Option<Progress>,
        port: Option<u16>,
        log: &[LogLine],
    ) -> Result<CallbackOutcome> {
        // The report is judged on the row as it stands, and applied, with
        // no other writer in between: one body, expanded for each backend's
        // transaction.
        macro_rules! judged_and_applied {
            ($tx:ident, $select:expr) => {{
                let standing: Option<(VmState, Option<Progress>, i64)> = sqlx::query_as($select)
                    .bind(id)
                    .fetch_optional(&mut *$tx)
                    .await?;
        let standing = standing.map(|(state, progress, last_seq)| Standing {
            state,
            progress,
            last_seq,
        });
        let (advance, log_rule) = match report::judge(standing, Report { seq, progress }) {
            Verdict::Refused => return Ok(CallbackOutcome::Refused),
            Verdict::Stale => return Ok(CallbackOutcome::Stale),
            Verdict::Accepted { advance, log } => (advance, log),
        };
        let now = Utc::now();
        sqlx::query("UPDATE vms SET last_seq = $1, updated_at = $2 WHERE id = $3")
            .bind(seq)
            .bind(now)
            .bind(id)
            .execute(&mut *$tx)
            .await?;
        let stored = if log_rule.needs_count() {
            sqlx::query_scalar("SELECT COUNT(*) FROM vm_events WHERE vm_id = $1 AND kind = 'log'")
                .bind(id)
                .fetch_one(&mut *$tx)
                .await?
        } else {
            0
        };
        let Kept {
            lines,
            warn_cap_reached,
        } = log_rule.kept(stored, log.len());
        if warn_cap_reached {
            append!(&mut *$tx,
                id,
                EventKind::Warning,
                &format!(
                    "the VM sent more than {} log lines; \
                     further lines are not kept, but its progress still is",
                    report::MAX_LOG_LINES_PER_VM
                ),
            )?;
        }
        for line in &log[..lines] {
            append!(&mut *$tx, id, EventKind::Log, line.as_str())?;
        }
        if let Some(advance) = advance {
            sqlx::query(
                "UPDATE vms SET progress = $1, phase_started_at = $2, port = COALESCE($3, port),
                        failed_during = $4
                 WHERE id = $5",
            )
            .bind(advance.to)
            .bind(now)
            .bind(port.map(i32::from))
            .bind(advance.failed_during)
            .bind(id)
            .execute(&mut *$tx)
            .await?;
            append!(&mut *$tx,
                id,
                EventKind::State,
                &format!("the VM reports: {}", advance.to),
            )?;
        }
                notify_wake!(self, $tx);
                $tx.commit().await?;
            }};
        }
        on_pool!(
            self,
            sqlite | pool | {
                // IMMEDIATE: the transaction reads before it writes. A
                // deferred one would take the write lock only at its first
                // write, and SQLite answers that upgrade with "database is
                // locked" at once, without the busy timeout, whenever another
                // connection writes meanwhile: under a class start, reports
                // failed by the dozen that way.
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                judged_and_applied!(
                    tx,
                    "SELECT state, progress, last_seq FROM vms WHERE id = $1"
                )
            },
            postgres | pool | {
                // FOR UPDATE: a concurrent report for the same VM waits for
                // this one, and is then judged on what this one wrote.
                let mut tx = pool.begin().await?;
                judged_and_applied!(
                    tx,
                    "SELECT state, progress, last_seq FROM vms WHERE id = $1 FOR UPDATE"
                )
            }
        );
        Ok(CallbackOutcome::Applied)
    }
}
