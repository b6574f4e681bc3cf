//! A VM learns its job by asking (`GET /api/vm/assignment`): the request
//! is authenticated by the VM's secret, answered at once when the store
//! holds the VM's assignment, and otherwise held until a claim wakes it,
//! the VM goes away, or the hold ends. A change on this replica wakes the
//! held request at once (`assignment_ready`); on PostgreSQL it is also
//! announced to the other replicas, which wake theirs
//! (`relay_assignments`).

use super::{AuthenticatedVm, ProvisionError, Provisioner};
use crate::domain::VmId;
use crate::secret;
use crate::store::{AssignmentLookup, Backend, SecretUse};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often a held request looks at the store again for a change that
/// woke nobody here: one made by another process on SQLite (a CLI
/// command), or announced on PostgreSQL while this replica's listener was
/// reconnecting.
const RECHECK: Duration = Duration::from_secs(5);

/// The held requests, one wake-up per VM; an entry lives as long as a
/// request holds it.
#[derive(Default)]
pub(super) struct Waiters(Mutex<HashMap<VmId, Weak<Notify>>>);

impl Waiters {
    fn register(&self, vm: VmId) -> Arc<Notify> {
        let mut held = self.0.lock().expect("waiters lock");
        if let Some(notify) = held.get(&vm).and_then(Weak::upgrade) {
            return notify;
        }
        held.retain(|_, w| w.strong_count() > 0);
        let notify = Arc::new(Notify::new());
        held.insert(vm, Arc::downgrade(&notify));
        notify
    }

    fn wake(&self, vm: VmId) {
        let held = self.0.lock().expect("waiters lock");
        if let Some(notify) = held.get(&vm).and_then(Weak::upgrade) {
            notify.notify_waiters();
        }
    }

    fn wake_all(&self) {
        let held = self.0.lock().expect("waiters lock");
        for notify in held.values().filter_map(Weak::upgrade) {
            notify.notify_waiters();
        }
    }

    fn count(&self, vm: VmId) -> usize {
        let held = self.0.lock().expect("waiters lock");
        held.get(&vm).map_or(0, Weak::strong_count)
    }
}

impl Provisioner {
    /// Check a VM's secret for a progress report: only the secret that
    /// acts for it, never the boot secret of a rotated VM (compared in
    /// constant time).
    #[tracing::instrument(name = "authenticate", skip_all, fields(vm = %vm))]
    pub async fn authenticate(
        &self,
        vm: VmId,
        secret: &str,
    ) -> Result<AuthenticatedVm, ProvisionError> {
        match self.check_secret(vm, secret).await? {
            Some(SecretUse::Current { .. }) => Ok(AuthenticatedVm(vm)),
            Some(SecretUse::Boot) | None => Err(ProvisionError::Unauthorized),
        }
    }

    /// Check a VM's secret for its assignment: the boot secret of a
    /// rotated VM too, as the answer is how the VM learns the new one.
    #[tracing::instrument(name = "authenticate", skip_all, fields(vm = %vm))]
    pub async fn authenticate_for_assignment(
        &self,
        vm: VmId,
        secret: &str,
    ) -> Result<AuthenticatedVm, ProvisionError> {
        match self.check_secret(vm, secret).await? {
            Some(_) => Ok(AuthenticatedVm(vm)),
            None => Err(ProvisionError::Unauthorized),
        }
    }

    /// Which of its secrets `vm` presented. The first use of a rotated
    /// secret retires the boot secret for good.
    async fn check_secret(
        &self,
        vm: VmId,
        secret: &str,
    ) -> Result<Option<SecretUse>, ProvisionError> {
        let store = &self.inner.store;
        let secrets = match store.vm_secrets(vm).await? {
            Some(secrets) => secrets,
            None => match self.check_pool_secret(vm, secret).await? {
                Some(used) => return Ok(Some(used)),
                // Or claimed between the two looks: the claim's commit
                // removed the pool row and made the VM's together.
                None => match store.vm_secrets(vm).await? {
                    Some(secrets) => secrets,
                    None => return Ok(None),
                },
            },
        };
        let used = secrets.check(secret);
        if used
            == Some(SecretUse::Current {
                rotation_pending: true,
            })
        {
            store.rotated_secret_taken_up(vm).await?;
            tracing::info!("the VM uses its rotated secret; its boot secret no longer acts");
        }
        Ok(used)
    }

    /// A pool VM nobody claimed yet: its boot secret may ask for the
    /// assignment only (never report). Its first request makes it ready
    /// to be claimed.
    async fn check_pool_secret(
        &self,
        vm: VmId,
        secret: &str,
    ) -> Result<Option<SecretUse>, ProvisionError> {
        let store = &self.inner.store;
        let Some(hash) = store.pool_secret_hash(vm).await? else {
            return Ok(None);
        };
        if !secret::matches_hash(secret, &hash) {
            return Ok(None);
        }
        if store.pool_vm_polled(vm).await? {
            tracing::info!("the pool VM asks for its job: ready to be claimed");
        }
        Ok(Some(SecretUse::Boot))
    }

    /// The job of `vm` as soon as it has one, within the hold
    /// (`provision.assignment_hold_seconds`): `Waiting` once the hold is
    /// over. A rotated secret is in it until the VM has used it (its
    /// first use forgets the delivered copy), so a request held since
    /// before the claim, with the then current boot secret, gets it too.
    pub async fn wait_for_assignment(
        &self,
        vm: AuthenticatedVm,
    ) -> Result<AssignmentLookup, ProvisionError> {
        let id = vm.id();
        let until = Instant::now() + self.inner.settings.assignment_hold;
        let notify = self.inner.assignment_waiters.register(id);
        loop {
            // Armed before the look, so a claim between the look and the
            // wait still wakes it.
            let woken = notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match self.inner.store.vm_assignment(id).await? {
                AssignmentLookup::Waiting => {}
                answer => return Ok(answer),
            }
            let now = Instant::now();
            if now >= until {
                return Ok(AssignmentLookup::Waiting);
            }
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep_until(until.min(now + RECHECK)) => {}
            }
        }
    }

    /// `vm`'s assignment changed (a claim gave it one; it is going away):
    /// its held request, if any, on whichever replica, looks again now.
    /// Called once the change's transaction has committed.
    pub fn assignment_ready(&self, vm: VmId) {
        self.inner.assignment_waiters.wake(vm);
        let store = self.inner.store.clone();
        if !matches!(store.backend(), Backend::Postgres(_)) {
            return;
        }
        tokio::spawn(async move {
            if let Err(e) = store.announce_assigned(vm).await {
                tracing::warn!(vm = %vm, error = %e, "cannot announce the assignment to the other replicas");
            }
        });
    }

    /// Wake the held requests of this replica for the assignments other
    /// replicas announce, until `cancel` (on PostgreSQL; on SQLite the
    /// one process wakes its own).
    pub async fn relay_assignments(self, cancel: CancellationToken) {
        let waiters = &self.inner.assignment_waiters;
        let store = self.inner.store.clone();
        store
            .listen_for_assignments(
                |vm| match vm {
                    Some(vm) => waiters.wake(vm),
                    None => waiters.wake_all(),
                },
                &cancel,
            )
            .await;
    }

    /// How many requests of `vm` for its job are held right now.
    pub fn held_assignment_requests(&self, vm: VmId) -> usize {
        self.inner.assignment_waiters.count(vm)
    }
}
