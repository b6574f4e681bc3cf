//! What a VM's server is made of: its launch profile's shape (or
//! `[cloud]`'s), the boot data that tells it where to ask for its job, the
//! metadata that marks it as ours, and the owner's home volume; and the
//! job itself, the assignment its owner's launch gives it.

use super::{Provisioner, profiles};
use crate::cloud::{META_INSTANCE, META_LOGIN, META_OWNER, META_REPO, META_VM, ServerSpec};
use crate::cloud_init::{self, Assignment, BootData};
use crate::config::Profile;
use crate::domain::VmId;
use crate::store::VmRecord;
use std::collections::BTreeMap;

impl Provisioner {
    /// The server of `vm`, made of its launch profile, with the owner's
    /// home volume if it has one; an error for a profile taken out of the
    /// configuration since the launch.
    pub(super) fn server_spec(
        &self,
        vm: &VmRecord,
        callback_secret: &str,
        home_volume: Option<String>,
    ) -> Result<ServerSpec, String> {
        let s = &self.inner.settings;
        let shape = profiles::shape(&s.cloud, self.profile_of(vm)?);
        let metadata = BTreeMap::from([
            (META_OWNER.to_owned(), vm.owner_id.to_string()),
            (META_LOGIN.to_owned(), vm.owner_login.to_string()),
            (META_REPO.to_owned(), vm.repo.to_string()),
            (META_VM.to_owned(), vm.id.to_string()),
            (
                META_INSTANCE.to_owned(),
                self.inner.installation.as_str().to_owned(),
            ),
        ]);
        Ok(ServerSpec {
            name: vm.name.clone(),
            image: shape.image,
            flavor: shape.flavor,
            volume_size_gb: shape.volume_size_gb,
            delete_volume_on_termination: s.cloud.delete_volume_on_termination,
            key_name: s.cloud.key_name.clone(),
            security_groups: s.cloud.security_groups.clone(),
            network: s.cloud.network.clone(),
            user_data: cloud_init::render_boot_data(&self.boot_data(vm.id, callback_secret)),
            metadata,
            home_volume,
            availability_zone: s.cloud.availability_zone.clone(),
        })
    }

    /// What a VM is booted with, pool VM or not: where it reports, where
    /// it asks for its job, and its boot secret. Nothing to prebuild; a
    /// pool VM's caller fills `prebuild` from `[pool] repos`.
    pub fn boot_data(&self, vm: VmId, callback_secret: &str) -> BootData {
        let s = &self.inner.settings;
        let at = |path: &str| s.callback_url.join(path).expect("a relative path joins");
        BootData {
            vm_id: vm,
            callback_url: at("api/vm/callback"),
            assignment_url: at("api/vm/assignment"),
            callback_secret: callback_secret.to_owned(),
            jupyter_port: s.launch.jupyter_port.get(),
            prebuild: Vec::new(),
        }
    }

    /// The job of `vm` for its owner, as `GET /api/vm/assignment` answers
    /// it (without a rotated secret); an error for a profile taken out of
    /// the configuration since the launch.
    pub fn assignment_for(
        &self,
        vm: &VmRecord,
        home_volume: Option<String>,
    ) -> Result<Assignment, String> {
        Ok(Assignment {
            login: vm.owner_login.to_string(),
            repo: vm.repo.to_string(),
            git_ref: vm.git_ref.to_string(),
            url_path: vm.url_path.to_string(),
            jupyter_token: vm.jupyter_token.clone(),
            gpu: self.profile_of(vm)?.is_some_and(|p| p.gpu),
            home_volume_id: home_volume,
            callback_secret: None,
        })
    }

    fn profile_of(&self, vm: &VmRecord) -> Result<Option<&Profile>, String> {
        let Some(name) = &vm.profile else {
            return Ok(None);
        };
        self.inner
            .settings
            .profiles
            .get(name)
            .map(Some)
            .ok_or_else(|| {
                format!("the launch profile \"{name}\" is no longer configured on this server")
            })
    }
}
