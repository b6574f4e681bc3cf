//! A launch takes a ready pool VM: in one transaction the pool row is
//! consumed and the owner's `vms` row inserted with the same id, the
//! server, address and volumes of the pool VM and `launch_path = 'pool'`;
//! it gets its job (the assignment) and its boot secret is rotated, so the
//! boot secret only fetches that job, which delivers the new secret. A
//! user's first claim with home volumes on gets no job yet (the driver
//! sets it once their new volume is attached): the secret is rotated all
//! the same, so the boot secret never acts for the user meanwhile.
//! Concurrent launches never take the same VM:
//! PostgreSQL locks the row it picks and skips those others hold (`FOR
//! UPDATE SKIP LOCKED`); SQLite takes its write lock first (`BEGIN
//! IMMEDIATE`), so the read and the delete see no other claim between them.

use super::super::events::{EventKind, append};
use super::super::vms::{assign_vm_on, launch_message, rotate_vm_secret_on};
use super::super::wake::notify_wake;
use super::super::{Backend, Result, Store, StoreError, is_unique_violation, on_pool};
use super::PoolVm;
use crate::cloud_init::Assignment;
use crate::domain::VmId;
use crate::store::{NewVm, VmRecord};
use chrono::Utc;

/// A launch that got a pool VM.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub vm: VmRecord,
    /// How the pool VM had been booted (its prebuilt repositories, when).
    pub pool_vm: PoolVm,
}

/// The owner's `vms` row of a claimed pool VM, in `$tx`, with the pool
/// VM's boot secret (rotated right after, in the same transaction).
macro_rules! insert_claimed {
    ($tx:expr, $new:expr, $picked:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO vms (id, owner_id, name, repo, git_ref, url_path, state, jupyter_token,
                              created_at, updated_at, phase_started_at, expires_at, profile, ide,
                              server_id, address, volume_ids, secret_hash, launch_path)
             VALUES ($1, $2, $3, $4, $5, $6, 'building', $7, $8, $8, $8, $9, $10, $11,
                     $12, $13, $14, $15, 'pool')",
        )
        .bind($picked.id)
        .bind($new.owner)
        .bind($new.name)
        .bind($new.request.repo.as_str())
        .bind($new.request.git_ref.as_str())
        .bind($new.request.url_path.as_str())
        .bind($new.jupyter_token)
        .bind($now)
        .bind($new.expires_at)
        .bind($new.request.profile.as_ref())
        .bind($new.request.ide)
        .bind($picked.server_id.as_deref())
        .bind($picked.address.as_deref())
        .bind(&$picked.volume_ids)
        .bind(&$picked.secret_hash)
        .execute($tx)
        .await
    };
}

const PICK: &str = "SELECT * FROM pool_vms WHERE state = 'ready' ORDER BY ready_at, id LIMIT 1";

impl Store {
    /// Claim the longest-ready pool VM for `new`: it gets `assignment`
    /// (`None`: later, `assign_vm`) and its secret is rotated to
    /// `new_secret` (the boot secret may only fetch the assignment from
    /// now on, which delivers the new one).
    /// `None` when none is ready; `AlreadyHasVm` (and nothing claimed)
    /// when the owner has a live VM. Wake the VM's held request afterwards
    /// (`Provisioner::assignment_ready`).
    pub async fn claim_pool_vm(
        &self,
        new: NewVm<'_>,
        assignment: Option<&Assignment>,
        new_secret: &str,
    ) -> Result<Option<Claimed>> {
        let now = Utc::now();
        let (begin, pick) = match self.backend() {
            Backend::Sqlite(_) => ("BEGIN IMMEDIATE", PICK.to_owned()),
            Backend::Postgres(_) => ("BEGIN", format!("{PICK} FOR UPDATE SKIP LOCKED")),
        };
        let claimed: Option<PoolVm> = on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            let picked: Option<PoolVm> = sqlx::query_as(&pick).fetch_optional(&mut *tx).await?;
            let Some(picked) = picked else {
                return Ok(None);
            };
            sqlx::query("DELETE FROM pool_vms WHERE id = $1")
                .bind(picked.id)
                .execute(&mut *tx)
                .await?;
            match insert_claimed!(&mut *tx, &new, &picked, now) {
                Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyHasVm),
                other => other?,
            };
            if let Some(assignment) = assignment {
                assign_vm_on!(&mut *tx, picked.id, assignment)?;
            }
            rotate_vm_secret_on!(&mut *tx, picked.id, new_secret)?;
            let request = launch_message(new.request);
            append!(&mut *tx, picked.id, EventKind::State, &request)?;
            append!(
                &mut *tx,
                picked.id,
                EventKind::State,
                &claim_message(&picked)
            )?;
            notify_wake!(self, tx);
            tx.commit().await?;
            Some(picked)
        });
        let Some(pool_vm) = claimed else {
            return Ok(None);
        };
        let vm = self.vm(pool_vm.id).await?.expect("the VM was just claimed");
        Ok(Some(Claimed { vm, pool_vm }))
    }

    /// A claimed VM that never asked for its assignment is sent back to a
    /// cold boot: no server (the caller deleted it), no addresses, no
    /// secret, `launch_path = 'cold'`, queued again. Fenced: the driver's.
    pub async fn unclaim(&self, id: VmId, why: &str) -> Result<bool> {
        let now = Utc::now();
        Ok(on_pool!(self, |pool| {
            let mut tx = super::super::leases::begin_write!(self, pool);
            let moved = sqlx::query(
                "UPDATE vms SET state = 'requested', launch_path = 'cold', server_id = NULL,
                    address = NULL, floating_ip = NULL, floating_ip_id = NULL,
                    volume_ids = '[]', secret_hash = NULL, progress = NULL,
                    updated_at = $1, phase_started_at = $1
                 WHERE id = $2 AND state = 'building' AND launch_path = 'pool'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if moved {
                append!(
                    &mut *tx,
                    id,
                    EventKind::Warning,
                    &format!("requested: {why}")
                )?;
            }
            tx.commit().await?;
            moved
        }))
    }
}

fn claim_message(picked: &PoolVm) -> String {
    let mut message = "building: claimed a ready VM from the warm pool".to_owned();
    if !picked.prebuilt.0.is_empty() {
        message += &format!(" (prebuilt: {})", picked.prebuilt.0.join(", "));
    }
    message
}
