//! What a VM's server is made of: its launch profile's shape (or
//! `[cloud]`'s), the user data that tells it its launch, the metadata that
//! marks it as ours, and the owner's home volume.

use super::{Provisioner, profiles};
use crate::cloud::{META_INSTANCE, META_LOGIN, META_OWNER, META_REPO, META_VM, ServerSpec};
use crate::cloud_init::{self, LaunchData};
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
        let profile = match &vm.profile {
            None => None,
            Some(name) => Some(s.profiles.get(name).ok_or_else(|| {
                format!("the launch profile \"{name}\" is no longer configured on this server")
            })?),
        };
        let shape = profiles::shape(&s.cloud, profile);
        let data = LaunchData {
            vm_id: vm.id,
            login: vm.owner_login.to_string(),
            repo: vm.repo.to_string(),
            git_ref: vm.git_ref.to_string(),
            url_path: vm.url_path.to_string(),
            jupyter_port: s.launch.jupyter_port.get(),
            jupyter_token: vm.jupyter_token.clone(),
            callback_url: s
                .callback_url
                .join("api/vm/callback")
                .expect("a relative path joins"),
            callback_secret: callback_secret.to_owned(),
            gpu: profile.is_some_and(|p| p.gpu),
            home_volume_id: home_volume.clone(),
        };
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
            user_data: cloud_init::render_user_data(&data),
            metadata,
            home_volume,
            availability_zone: s.cloud.availability_zone.clone(),
        })
    }
}
