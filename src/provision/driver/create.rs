//! Creating a VM's server, or adopting the one an earlier attempt made.

use super::StepError;
use crate::cloud::{CloudError, Server};
use crate::domain::VmState;
use crate::provision::Provisioner;
use crate::secret;
use crate::store::{EventKind, VmRecord};

impl Provisioner {
    pub(super) async fn start_creating(&self, vm: &VmRecord) -> Result<(), StepError> {
        if self
            .inner
            .store
            .transition(
                vm.id,
                VmState::Requested,
                VmState::Creating,
                "asking the cloud for a server",
            )
            .await?
        {
            let vm = self.inner.store.vm(vm.id).await?.expect("the VM exists");
            self.create(&vm).await?;
        }
        Ok(())
    }

    /// Create the server, or adopt the one an interrupted attempt created:
    /// servers carry our VM id in their metadata, so none is made twice.
    pub(super) async fn create(&self, vm: &VmRecord) -> Result<(), StepError> {
        let cloud = &self.inner.cloud;
        let store = &self.inner.store;
        if vm.server_id.is_none() {
            // A stored secret hash means an earlier attempt sent `POST
            // /servers` and never recorded the answer (a timeout, a
            // crash): that server may exist and not be listed yet.
            let earlier_attempt = vm.secret_hash.is_some();
            let found = if earlier_attempt {
                self.look_for_lost_server(vm).await?
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
                    // The hash is stored before the secret leaves, so whatever
                    // server results from this call can authenticate.
                    let callback_secret = secret::generate();
                    store
                        .set_secret_hash(vm.id, &secret::hash(&callback_secret))
                        .await?;
                    let spec = self.server_spec(vm, &callback_secret);
                    match cloud.create_server(&spec).await {
                        Ok(id) => store.set_server_id(vm.id, &id).await?,
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

    /// Look for the server of an attempt whose answer was lost, a few
    /// times with doubling waits (a new server can take a moment to be
    /// listed), before the caller makes another: a second server would
    /// boot with a new secret, and the first would be an orphan.
    async fn look_for_lost_server(&self, vm: &VmRecord) -> Result<Option<Server>, CloudError> {
        let mut wait = self.inner.settings.poll_interval;
        for _ in 0..self.inner.settings.create_lookups {
            if let Some(server) = self.find_server(vm).await? {
                return Ok(Some(server));
            }
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        self.find_server(vm).await
    }
}
