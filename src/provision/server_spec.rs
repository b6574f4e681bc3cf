//! What a VM's server is made of: its launch profile's shape (or
//! `[cloud]`'s), the boot data that tells it where to ask for its job, the
//! metadata that marks it as ours, and the owner's home volume; and the
//! job itself, the assignment its owner's launch gives it.

use super::{Provisioner, profiles};
use crate::cloud::{
    META_INSTANCE, META_LOGIN, META_OWNER, META_POOL, META_REPO, META_VM, ServerSpec, Shape,
};
use crate::cloud_init::{self, Assignment, BootData, PinnedRepo};
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
        Ok(self.spec_of(
            shape,
            vm.name.clone(),
            cloud_init::render_boot_data(&self.boot_data(vm.id, callback_secret)),
            self.owner_metadata(vm),
            home_volume,
        ))
    }

    /// What marks a VM's server as ours and its owner's.
    pub(super) fn owner_metadata(&self, vm: &VmRecord) -> BTreeMap<String, String> {
        BTreeMap::from([
            (META_OWNER.to_owned(), vm.owner_id.to_string()),
            (META_LOGIN.to_owned(), vm.owner_login.to_string()),
            (META_REPO.to_owned(), vm.repo.to_string()),
            (META_VM.to_owned(), vm.id.to_string()),
            (
                META_INSTANCE.to_owned(),
                self.inner.installation.as_str().to_owned(),
            ),
        ])
    }

    /// A pool VM's server: the default profile's shape, boot data that
    /// names no owner (the VM asks for its job once booted) with the
    /// repositories to build ahead, and metadata that marks it as ours and
    /// the pool's (`stackbinder_vm` is the id it keeps when claimed).
    pub(super) fn pool_server_spec(
        &self,
        id: VmId,
        name: &str,
        callback_secret: &str,
    ) -> ServerSpec {
        let s = &self.inner.settings;
        let shape = profiles::shape(&s.cloud, s.profiles.default_profile());
        let data = BootData {
            prebuild: s
                .pool
                .repos
                .iter()
                .map(|r| PinnedRepo {
                    repo: r.repo.to_string(),
                    git_ref: r.git_ref.to_string(),
                })
                .collect(),
            ..self.boot_data(id, callback_secret)
        };
        let metadata = BTreeMap::from([
            (META_VM.to_owned(), id.to_string()),
            (META_POOL.to_owned(), "1".to_owned()),
            (
                META_INSTANCE.to_owned(),
                self.inner.installation.as_str().to_owned(),
            ),
        ]);
        self.spec_of(
            shape,
            name.to_owned(),
            cloud_init::render_boot_data(&data),
            metadata,
            None,
        )
    }

    fn spec_of(
        &self,
        shape: Shape,
        name: String,
        user_data: String,
        metadata: BTreeMap<String, String>,
        home_volume: Option<String>,
    ) -> ServerSpec {
        let cloud = &self.inner.settings.cloud;
        ServerSpec {
            name,
            image: shape.image,
            flavor: shape.flavor,
            volume_size_gb: shape.volume_size_gb,
            delete_volume_on_termination: cloud.delete_volume_on_termination,
            key_name: cloud.key_name.clone(),
            security_groups: cloud.security_groups.clone(),
            network: cloud.network.clone(),
            user_data,
            metadata,
            home_volume,
            availability_zone: cloud.availability_zone.clone(),
        }
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
