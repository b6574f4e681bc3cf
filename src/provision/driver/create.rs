//! Creating a VM's server, or adopting the one an earlier attempt made.

use super::StepError;
use super::home::HomeVolumeUse;
use crate::cloud::{CloudError, Server};
use crate::domain::{VmId, VmState};
use crate::provision::Provisioner;
use crate::secret;
use crate::store::{EventKind, VmRecord};
use std::collections::HashSet;
use std::time::Instant;

impl Provisioner {
    #[tracing::instrument(skip_all)]
    pub(super) async fn start_creating(&self, vm: &VmRecord) -> Result<(), StepError> {
        if self
            .inner
            .driver_store
            .transition(
                vm.id,
                VmState::Requested,
                VmState::Creating,
                "asking the cloud for a server",
            )
            .await?
        {
            let vm = self
                .inner
                .driver_store
                .vm(vm.id)
                .await?
                .expect("the VM exists");
            self.create(&vm).await?;
        }
        Ok(())
    }

    /// Create the server, or adopt the one an interrupted attempt created:
    /// servers carry our VM id in their metadata, so none is made twice.
    #[tracing::instrument(skip_all)]
    pub(super) async fn create(&self, vm: &VmRecord) -> Result<(), StepError> {
        let cloud = &self.inner.cloud;
        let store = &self.inner.driver_store;
        if vm.server_id.is_none() {
            // A stored secret hash means an earlier attempt sent `POST
            // /servers` and never recorded the answer (a timeout, a
            // crash): that server may exist and not be listed yet.
            let earlier_attempt = vm.secret_hash.is_some();
            let found = if earlier_attempt {
                match self.look_for_lost_server(vm).await? {
                    LostServer::Found(server) => Some(server),
                    // Look again at a later step; the other VMs move on.
                    LostServer::NotYet => return Ok(()),
                    LostServer::NotFound => None,
                }
            } else {
                self.find_server(vm).await?
            };
            match found {
                Some(server) => {
                    store.set_server_id(vm.id, &server.id).await?;
                    store
                        .append_event(
                            vm.id,
                            EventKind::State,
                            "found the server an earlier attempt created",
                        )
                        .await?;
                }
                None => {
                    let home_volume = match self.home_volume_for(vm).await? {
                        HomeVolumeUse::Off => None,
                        HomeVolumeUse::Attach(id) => Some(id),
                        HomeVolumeUse::Wait(why) => return Err(StepError::Waiting(why)),
                        HomeVolumeUse::Refuse(why) => {
                            self.fail(vm, &why).await;
                            return Ok(());
                        }
                    };
                    let callback_secret = secret::generate();
                    let made = self
                        .assignment_for(vm, home_volume.clone())
                        .and_then(|job| {
                            Ok((job, self.server_spec(vm, &callback_secret, home_volume)?))
                        });
                    let (assignment, spec) = match made {
                        Ok(made) => made,
                        Err(why) => {
                            self.fail(vm, &why).await;
                            return Ok(());
                        }
                    };
                    // The hash and the job are stored before the secret
                    // leaves, so whatever server results from this call can
                    // authenticate and learn its job at once.
                    store
                        .set_boot_secret(vm.id, &secret::hash(&callback_secret), Some(&assignment))
                        .await?;
                    store.check_lease().await?;
                    match cloud.create_server(&spec).await {
                        Ok(id) => {
                            store.set_server_id(vm.id, &id).await?;
                            if spec.home_volume.is_some() {
                                store
                                    .home_volume_attached(vm.owner_id, chrono::Utc::now())
                                    .await?;
                            }
                        }
                        Err(e) if !e.is_transient() => {
                            self.fail(vm, &format!("the cloud refused to create your server: {e}"))
                                .await;
                            return Ok(());
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        store
            .transition(
                vm.id,
                VmState::Creating,
                VmState::Booting,
                "the server exists and is booting",
            )
            .await?;
        Ok(())
    }

    pub(super) async fn find_server(&self, vm: &VmRecord) -> Result<Option<Server>, CloudError> {
        self.inner
            .cloud
            .find_server(&self.inner.installation, &vm.id.to_string())
            .await
    }

    /// Look once for the server of an attempt whose answer was lost, when
    /// the wait since the last look is over: the waits double from one
    /// poll interval (a new server can take a moment to be listed), and
    /// after `create_lookups` of them the caller makes another server. A
    /// second server would boot with a new secret, and the first would be
    /// an orphan. One look per step, never a sleep, so the step (and every
    /// other VM in it) goes on while this one waits.
    #[tracing::instrument(skip_all)]
    async fn look_for_lost_server(&self, vm: &VmRecord) -> Result<LostServer, CloudError> {
        let due = self
            .inner
            .lost_creates
            .lock()
            .expect("lock")
            .get(&vm.id)
            .is_none_or(|search| Instant::now() >= search.next_look);
        if !due {
            return Ok(LostServer::NotYet);
        }
        let found = self.find_server(vm).await?;
        let mut searches = self.inner.lost_creates.lock().expect("lock");
        if let Some(server) = found {
            searches.remove(&vm.id);
            return Ok(LostServer::Found(server));
        }
        let search = searches.entry(vm.id).or_insert(LostCreate {
            looks: 0,
            next_look: Instant::now(),
        });
        search.looks += 1;
        if search.looks > self.inner.settings.create_lookups {
            searches.remove(&vm.id);
            return Ok(LostServer::NotFound);
        }
        let doubled = 2u32.saturating_pow(search.looks - 1);
        search.next_look =
            Instant::now() + self.inner.settings.poll_interval.saturating_mul(doubled);
        Ok(LostServer::NotYet)
    }

    /// Whether the server of a lost create answer of `vm` is being looked for.
    pub(super) fn searching_lost_server(&self, vm: VmId) -> bool {
        self.inner
            .lost_creates
            .lock()
            .expect("lock")
            .contains_key(&vm)
    }

    /// Forget the searches of VMs that are no longer being created.
    pub(super) fn forget_finished_searches(&self, live: &[VmRecord]) {
        let creating: HashSet<VmId> = live
            .iter()
            .filter(|vm| vm.state == VmState::Creating)
            .map(|vm| vm.id)
            .collect();
        self.inner
            .lost_creates
            .lock()
            .expect("lock")
            .retain(|id, _| creating.contains(id));
    }
}

/// What one look for a lost create's server found.
enum LostServer {
    Found(Server),
    /// Not listed (yet): look again once the wait is over.
    NotYet,
    /// Not listed after every look: make another.
    NotFound,
}

/// Where the search for a lost create's server stands, per VM.
///
/// Kept in the driver's memory, not in the store, and that is safe across
/// a restart: a restarted driver finds the VM still creating with its
/// secret hash stored, and starts the search over from the first look.
/// A restart can only make the search longer, never let a second server
/// be made sooner than without it; what it costs is a few more lists.
#[derive(Debug, Clone, Copy)]
pub(in crate::provision) struct LostCreate {
    /// Looks that found nothing so far.
    looks: u32,
    next_look: Instant,
}
