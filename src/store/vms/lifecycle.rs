//! A VM's life in the store: its launch, the moves between states, its
//! deletion and its expiry.

use super::super::events::{EventKind, append};
use super::super::leases::begin_write;
use super::super::wake::notify_wake;
use super::super::{Result, Store, StoreError, is_unique_violation, on_pool};
use super::VmRecord;
use crate::domain::{GithubId, LaunchRequest, VmId, VmState};
use chrono::{DateTime, Utc};

#[derive(Clone, Copy)]
pub struct NewVm<'a> {
    pub owner: GithubId,
    pub name: &'a str,
    pub request: &'a LaunchRequest,
    pub jupyter_token: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// The first event of a launch: what was asked for.
pub(in crate::store) fn launch_message(request: &LaunchRequest) -> String {
    format!(
        "launch requested: {} at {}{}",
        request.repo,
        request.git_ref,
        if request.url_path.as_str().is_empty() {
            String::new()
        } else {
            format!(", opening /{}", request.url_path)
        },
    ) + &request
        .profile
        .as_ref()
        .map(|p| format!(", profile {p}"))
        .unwrap_or_default()
}

impl Store {
    /// Record a launch. The partial unique index makes a second live VM for
    /// the same owner impossible, however many requests race.
    pub async fn insert_vm(&self, new: NewVm<'_>) -> Result<VmRecord> {
        let id = VmId::new();
        let now = Utc::now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
            "INSERT INTO vms (id, owner_id, name, repo, git_ref, url_path, state, jupyter_token,
                              created_at, updated_at, phase_started_at, expires_at, profile, ide)
             VALUES ($1, $2, $3, $4, $5, $6, 'requested', $7, $8, $8, $8, $9, $10, $11)",
        )
        .bind(id)
        .bind(new.owner)
        .bind(new.name)
        .bind(new.request.repo.as_str())
        .bind(new.request.git_ref.as_str())
        .bind(new.request.url_path.as_str())
        .bind(new.jupyter_token)
        .bind(now)
        .bind(new.expires_at)
        .bind(new.request.profile.as_ref())
        .bind(new.request.ide)
        .execute(&mut *tx)
        .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyHasVm),
                other => other?,
            };
            append!(&mut *tx, id, EventKind::State, &launch_message(new.request))?;
            notify_wake!(self, tx);
            tx.commit().await?;
        });
        Ok(self.vm(id).await?.expect("the VM was just inserted"))
    }

    /// Move a VM from `from` to `to` if nobody moved it meanwhile; records
    /// the event in the same transaction. Returns whether it moved.
    pub async fn transition(
        &self,
        id: VmId,
        from: VmState,
        to: VmState,
        message: &str,
    ) -> Result<bool> {
        let now = Utc::now();
        let error = (to == VmState::Failed).then_some(message);
        let moved = on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool);
            let moved = sqlx::query(
                "UPDATE vms SET state = $1, updated_at = $2, phase_started_at = $2,
                    last_error = COALESCE($3, last_error),
                    ready_at = CASE WHEN $1 = 'ready' THEN $2 ELSE ready_at END,
                    deleted_at = CASE WHEN $1 = 'deleted' THEN $2 ELSE deleted_at END
             WHERE id = $4 AND state = $5",
            )
            .bind(to)
            .bind(now)
            .bind(error)
            .bind(id)
            .bind(from)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if moved {
                let kind = if to == VmState::Failed {
                    EventKind::Error
                } else {
                    EventKind::State
                };
                append!(&mut *tx, id, kind, &format!("{to}: {message}"))?;
            }
            tx.commit().await?;
            moved
        });
        if moved {
            self.access_generation().bump();
        }
        Ok(moved)
    }

    /// Ask for deletion from any state but deleting/deleted.
    pub async fn request_delete(&self, id: VmId, why: &str) -> Result<bool> {
        let moved = on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool);
            let moved = sqlx::query(
                "UPDATE vms SET state = 'deleting', updated_at = $1, phase_started_at = $1
             WHERE id = $2 AND state NOT IN ('deleting', 'deleted')",
            )
            .bind(Utc::now())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if moved {
                append!(&mut *tx, id, EventKind::State, &format!("deleting: {why}"))?;
                notify_wake!(self, tx);
            }
            tx.commit().await?;
            moved
        });
        if moved {
            self.access_generation().bump();
        }
        Ok(moved)
    }

    /// Push the expiry back by `by`, if the VM has extensions left.
    /// Compare-and-set on the count, so two clicks extend once each at most.
    pub async fn extend(
        &self,
        vm: &VmRecord,
        max_extensions: u32,
        by: chrono::Duration,
    ) -> Result<bool> {
        if vm.extensions >= i64::from(max_extensions) || !vm.state.can_delete() {
            return Ok(false);
        }
        let now = Utc::now();
        let base = vm.expires_at.map_or(now, |t| t.max(now));
        let new_expiry = base + by;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE vms SET expires_at = $1, extensions = extensions + 1, updated_at = $2
             WHERE id = $3 AND extensions = $4 AND state NOT IN ('deleting', 'deleted')",
            )
            .bind(new_expiry)
            .bind(now)
            .bind(vm.id)
            .bind(vm.extensions)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if done {
                let message = format!(
                    "expiry extended to {}",
                    new_expiry.format("%Y-%m-%d %H:%M UTC")
                );
                append!(&mut *tx, vm.id, EventKind::State, &message)?;
            }
            tx.commit().await?;
            Ok(done)
        })
    }

    pub async fn set_expiry(&self, id: VmId, expires_at: DateTime<Utc>) -> Result<()> {
        self.update(
            id,
            "UPDATE vms SET expires_at = $1, updated_at = $2 WHERE id = $3",
            expires_at,
        )
        .await
    }

    pub async fn set_last_activity(&self, id: VmId, at: DateTime<Utc>) -> Result<()> {
        self.update(
            id,
            "UPDATE vms SET last_activity_at = $1, updated_at = $2 WHERE id = $3",
            at,
        )
        .await
    }
}
