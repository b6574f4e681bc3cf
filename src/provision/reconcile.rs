//! The reconciler compares the store with what the cloud really has and
//! repairs the difference: a VM whose server was deleted outside stackbinder
//! is cleaned up and marked gone; servers, volumes (never a user's home
//! volume, which outlives every VM), floating IPs and image
//! builders of this installation that no record explains (a crash, a bug, a
//! lost answer, a manual mistake) are deleted once they have been seen for
//! a grace period.
//!
//! The decision is a pure function, `plan`, of what the cloud showed, the
//! records, what earlier passes saw, the time and the rules; the I/O around
//! it only looks and carries the actions out. Two rules keep live VMs safe:
//!
//! - A VM is "server gone" only after `GET /servers/{id}` answered 404 on
//!   two passes at least `orphan_grace_minutes` apart. A list is never
//!   proof of absence: it may be one page short, or miss a server of a
//!   cell that is down.
//! - Only what carries this installation's id is ours: another
//!   stackbinder's, or an operator's, resources are never touched.

mod leftover_builders;
mod plan;
mod pool;

pub use plan::{Action, Observed, Rules, Seen, plan, to_look_up};

use super::driver::StepError;
use super::{DeleteReason, Provisioner};
use crate::store::VmRecord;
use chrono::Utc;
use std::collections::HashMap;
use std::time::Instant;

/// What the reconciler remembers between runs.
#[derive(Default)]
pub(super) struct Memory {
    last_run: Option<Instant>,
    seen: Seen,
}

impl Provisioner {
    pub(super) async fn reconcile_if_due(&self) -> Result<(), StepError> {
        {
            let mut memory = self.inner.reconciler.lock().expect("lock");
            let due = memory
                .last_run
                .is_none_or(|t| t.elapsed() >= self.inner.settings.reconcile_interval);
            if !due {
                return Ok(());
            }
            memory.last_run = Some(Instant::now());
        }
        let reconciled = self.reconcile().await;
        // Storage to delete is looked for as often, even when the cloud
        // failed the comparison.
        if let Err(e) = self.clean_up_storage().await {
            tracing::warn!(error = %e, "cleaning up storage failed; will retry");
        }
        reconciled
    }

    /// One full comparison of store and cloud: look, `plan`, carry out.
    #[tracing::instrument(name = "reconcile", skip_all)]
    pub async fn reconcile(&self) -> Result<(), StepError> {
        let (observed, records) = self.observe().await?;
        let actions = {
            let mut memory = self.inner.reconciler.lock().expect("lock");
            let (actions, next) =
                plan(&observed, &records, &memory.seen, Utc::now(), &self.rules());
            memory.seen = next;
            actions
        };
        for action in actions {
            self.carry_out(action).await?;
        }
        Ok(())
    }

    /// What the cloud has of ours, the live records, and for each record
    /// whose server the list left out, whether Nova still knows it.
    #[tracing::instrument(skip_all)]
    async fn observe(&self) -> Result<(Observed, Vec<VmRecord>), StepError> {
        let cloud = &self.inner.cloud;
        let mut owned = cloud.list_owned(&self.inner.installation).await?;
        // The pool before the records: a pool VM claimed in between is in
        // the records then (a claim moves it from the one to the other).
        let pool_vms = self.inner.driver_store.pool_vms().await?;
        let records = self.inner.driver_store.live_vms().await?;
        // A recorded home volume is never an orphan, even one whose
        // metadata an operator stripped of its `stackbinder_home` mark.
        let homes = self.inner.driver_store.home_volume_ids().await?;
        owned.volume_ids.retain(|id| !homes.contains(id));
        self.replace_dead_pool_vms(&owned, &pool_vms).await?;
        pool::leave_out_pool(&mut owned, &pool_vms);
        let mut found = HashMap::new();
        for (vm, server) in to_look_up(&owned, &records) {
            let there = cloud.get_server(&server).await?.is_some();
            if there {
                tracing::info!(%vm, server, "the server is missing from the list but exists");
            }
            found.insert(vm, there);
        }
        Ok((Observed { owned, found }, records))
    }

    /// Send ready pool VMs whose server died to deletion; the pool step
    /// boots their replacements.
    async fn replace_dead_pool_vms(
        &self,
        owned: &crate::cloud::Owned,
        pool_vms: &[crate::store::PoolVm],
    ) -> Result<(), StepError> {
        let (mut dead, unlisted) = pool::dead_or_unlisted(owned, pool_vms);
        for (vm, server) in unlisted {
            if self.inner.cloud.get_server(&server).await?.is_none() {
                dead.push(vm);
            }
        }
        for vm in dead {
            tracing::warn!(%vm, "a ready pool VM's server died; replacing it");
            self.inner
                .driver_store
                .delete_pool_vm(vm, "its server died before it was claimed")
                .await?;
        }
        Ok(())
    }

    fn rules(&self) -> Rules {
        let settings = &self.inner.settings;
        let duration = |d| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        Rules {
            grace: duration(settings.orphan_grace),
            release_floating_ips: settings.cloud.release_floating_ip,
            build_timeout: duration(settings.build_timeout),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn carry_out(&self, action: Action) -> Result<(), StepError> {
        let cloud = &self.inner.cloud;
        // Deleting is for the leader only, as of now, not as of the plan.
        self.inner.driver_store.check_lease().await?;
        let done = match &action {
            Action::MarkGone(vm) => {
                tracing::warn!(%vm, "the server was deleted outside stackbinder");
                self.request_delete(
                    &self.inner.driver_store,
                    *vm,
                    DeleteReason::Vanished,
                    "the server was deleted outside stackbinder",
                )
                .await?;
                return Ok(());
            }
            Action::DeleteServer(id) => cloud.delete_server(id).await,
            Action::DeleteVolume(id) => cloud.delete_volume(id).await,
            Action::ReleaseFloatingIp(id) => cloud.release_floating_ip(id).await,
            Action::DeleteBuilder(id) => cloud.delete_server(id).await,
        };
        tracing::warn!(?action, "deleting what stackbinder left in the cloud");
        if let Err(e) = done {
            tracing::warn!(?action, error = %e, "could not delete a leftover; will retry");
        }
        Ok(())
    }
}
