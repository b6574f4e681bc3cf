//! The pool step of the driver (leader only, writes fenced): move each
//! pool VM forward by at most one cloud interaction, then boot, recycle
//! and shrink as `plan` says. A pool VM's row is written before its server
//! is asked for, and its server deleted before its row, so a crash leaves
//! nothing the reconciler would not find.

use super::plan::{self, Inputs};
use crate::cloud::{Server, ServerStatus};
use crate::domain::VmId;
use crate::provision::{Provisioner, StepError};
use crate::secret;
use crate::store::{NewPoolVm, PoolState, PoolVm};
use chrono::Utc;
use futures_util::StreamExt;

impl Provisioner {
    /// One pool step: each pool VM forward (concurrently, like the users'
    /// VMs), then the plan against the places users' VMs take now.
    #[tracing::instrument(name = "pool", skip_all)]
    pub(in crate::provision) async fn step_pool(&self) -> Result<(), StepError> {
        let store = &self.inner.driver_store;
        let pool = store.pool_vms().await?;
        if pool.is_empty() && !self.inner.settings.pool.enabled() {
            return Ok(());
        }
        // One pool VM's cloud calls do not wait for another's.
        let fenced = std::sync::Mutex::new(None);
        futures_util::stream::iter(&pool)
            .for_each_concurrent(self.inner.concurrency.limit(), |vm| async {
                match self.drive_pool_vm(vm).await {
                    Err(e) if e.is_fenced() => *fenced.lock().expect("fenced lock") = Some(e),
                    Err(e) => {
                        tracing::warn!(vm = %vm.id, error = %e, "pool VM step failed; will retry");
                    }
                    Ok(()) => {}
                }
            })
            .await;
        if let Some(e) = fenced.into_inner().expect("fenced lock") {
            return Err(e);
        }
        let user_places = super::super::capacity::places_taken(&store.live_vms().await?);
        let pool = store.pool_vms().await?;
        let settings = &self.inner.settings;
        let now = Utc::now();
        let plan = plan::plan(
            &pool,
            &Inputs {
                target: settings.pool.size_at(now),
                user_vms: user_places,
                max_vms: settings.cloud.max_vms,
                max_idle: chrono::Duration::from_std(settings.pool.max_idle())
                    .unwrap_or(chrono::Duration::MAX),
                now,
            },
        );
        for id in &plan.recycle {
            let hours = settings.pool.max_idle_hours;
            store
                .delete_pool_vm(*id, &format!("recycled: unclaimed for {hours} h"))
                .await?;
        }
        for id in &plan.shrink {
            store.delete_pool_vm(*id, "the pool shrinks").await?;
        }
        let failed = std::sync::Mutex::new(None);
        futures_util::stream::iter(0..plan.boot)
            .for_each_concurrent(self.inner.concurrency.limit(), |_| async {
                if let Err(e) = self.boot_pool_vm().await {
                    *failed.lock().expect("failed lock") = Some(e);
                }
            })
            .await;
        if let Some(e) = failed.into_inner().expect("failed lock") {
            return Err(e);
        }
        Ok(())
    }

    /// Record a new pool VM, then ask the cloud for its server.
    async fn boot_pool_vm(&self) -> Result<(), StepError> {
        let store = &self.inner.driver_store;
        let id = VmId::new();
        let short = id.to_string().chars().take(8).collect::<String>();
        let name = format!("{}pool-{short}", self.inner.settings.cloud.name_prefix);
        let callback_secret = secret::generate();
        let prebuilt: Vec<String> = self
            .inner
            .settings
            .pool
            .repos
            .iter()
            .map(|r| format!("{}@{}", r.repo, r.git_ref))
            .collect();
        store
            .insert_pool_vm(NewPoolVm {
                id,
                name: &name,
                secret_hash: &secret::hash(&callback_secret),
                prebuilt: &prebuilt,
            })
            .await?;
        let spec = self.pool_server_spec(id, &name, &callback_secret);
        store.check_lease().await?;
        match self.inner.cloud.create_server(&spec).await {
            Ok(server) => {
                store.set_pool_server(id, &server).await?;
                tracing::info!(vm = %id, "pool VM booting");
            }
            Err(e) => {
                // Its server may exist all the same (a lost answer): the
                // deletion looks for it by its metadata.
                store
                    .delete_pool_vm(id, &format!("the cloud did not create it: {e}"))
                    .await?;
                return Err(e.into());
            }
        }
        Ok(())
    }

    async fn drive_pool_vm(&self, vm: &PoolVm) -> Result<(), StepError> {
        let store = &self.inner.driver_store;
        match vm.state {
            // Left by a step that died between the row and the answer.
            PoolState::Creating => {
                store
                    .delete_pool_vm(vm.id, "interrupted while it was created")
                    .await?;
            }
            PoolState::Booting => self.watch_pool_boot(vm).await?,
            // Ready before this step saw it running: its address and boot
            // volume are recorded now.
            PoolState::Ready if vm.address.is_none() || vm.volume_ids.0.is_empty() => {
                if let Some(server) = vm.server_id.as_deref()
                    && let Some(server) = self.inner.cloud.get_server(server).await?
                {
                    self.record_pool_server(vm, &server).await?;
                }
            }
            PoolState::Ready => {}
            PoolState::Deleting => self.tear_down_pool_vm(vm).await?,
        }
        Ok(())
    }

    /// A booting pool VM: record its address and boot volume as Nova shows
    /// them; a server gone or in ERROR, or one that never asks for its
    /// assignment, is deleted (and the plan replaces it).
    async fn watch_pool_boot(&self, vm: &PoolVm) -> Result<(), StepError> {
        let store = &self.inner.driver_store;
        let server_id = vm
            .server_id
            .as_deref()
            .expect("a booting pool VM has a server");
        let Some(server) = self.inner.cloud.get_server(server_id).await? else {
            store
                .delete_pool_vm(vm.id, "its server disappeared from the cloud")
                .await?;
            return Ok(());
        };
        match server.status {
            ServerStatus::Error => {
                let fault = server.fault.as_deref().unwrap_or("no reason given");
                store
                    .delete_pool_vm(vm.id, &format!("the cloud reports an error: {fault}"))
                    .await?;
                return Ok(());
            }
            ServerStatus::Active => self.record_pool_server(vm, &server).await?,
            _ => {}
        }
        let launch = &self.inner.settings.launch;
        let limit = launch.boot_timeout_seconds.get()
            + launch.clone_timeout_seconds.get()
            + launch.build_timeout_seconds.get();
        if (Utc::now() - vm.created_at).num_seconds() > limit as i64 {
            store
                .delete_pool_vm(
                    vm.id,
                    &format!("it did not ask for its assignment within {limit} s"),
                )
                .await?;
        }
        Ok(())
    }

    /// Record a running pool server's address and boot volume (marked as
    /// ours in Cinder first), once each.
    async fn record_pool_server(&self, vm: &PoolVm, server: &Server) -> Result<(), StepError> {
        let store = &self.inner.driver_store;
        if vm.address.is_none()
            && let Some(address) = server.addresses.first()
        {
            store.set_pool_address(vm.id, address).await?;
        }
        if vm.volume_ids.0.is_empty()
            && let [boot] = server.volume_ids.as_slice()
        {
            self.inner
                .cloud
                .tag_volume(boot, &self.inner.installation, &vm.id.to_string())
                .await?;
            store
                .set_pool_volume_ids(vm.id, std::slice::from_ref(boot))
                .await?;
        }
        Ok(())
    }

    /// Delete the server (found by its metadata if the row has none) and
    /// wait until it is gone, then its boot volume, then forget the row.
    async fn tear_down_pool_vm(&self, vm: &PoolVm) -> Result<(), StepError> {
        let cloud = &self.inner.cloud;
        let store = &self.inner.driver_store;
        let server_id = match &vm.server_id {
            Some(id) => Some(id.clone()),
            None => cloud
                .find_server(&self.inner.installation, &vm.id.to_string())
                .await?
                .map(|s| s.id),
        };
        let server = match &server_id {
            Some(id) => cloud.get_server(id).await?,
            None => None,
        };
        if let Some(server) = server {
            if server.status != ServerStatus::Deleting {
                store.check_lease().await?;
                cloud.delete_server(&server.id).await?;
            }
            return Ok(());
        }
        for volume in &vm.volume_ids.0 {
            store.check_lease().await?;
            cloud.delete_volume(volume).await?;
        }
        store.forget_pool_vm(vm.id).await?;
        tracing::info!(vm = %vm.id, reason = vm.reason.as_deref().unwrap_or(""), "pool VM deleted");
        Ok(())
    }
}
