//! The `Cloud` trait on the simulated cloud: what Nova, Cinder, Neutron
//! and Glance would answer, with the faults a drill asked for.

use super::builder_console::BuilderScript;
use super::state::{SimFip, SimImage, SimServer};
use super::{MAX_USER_DATA_B64, Op, Scenario, SimulatedCloud};
use crate::cloud::{
    BuilderSpec, CheckItem, Cloud, CloudError, CloudResult, FloatingIp, Image, ImageStatus,
    InstallationId, META_HOME, META_IMAGE_BUILD, META_VM, Owned, Server, ServerSpec, ServerStatus,
    Volume, VolumeSpec,
};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Instant;

#[async_trait]
impl Cloud for SimulatedCloud {
    fn kind(&self) -> &'static str {
        "simulated"
    }

    async fn create_server(&self, spec: &ServerSpec) -> CloudResult<String> {
        self.enter(Op::CreateServer)?;
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&spec.user_data);
        if encoded.len() > MAX_USER_DATA_B64 {
            return Err(CloudError::Rejected(format!(
                "user data is {} bytes base64-encoded, over Nova's limit of {MAX_USER_DATA_B64}",
                encoded.len()
            )));
        }
        if spec.name.is_empty() || spec.image.is_empty() || spec.flavor.is_empty() {
            return Err(CloudError::Rejected(
                "name, image and flavor are required".into(),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let volume = uuid::Uuid::new_v4().to_string();
        let scenario = {
            let mut st = self.lock();
            // Nova refuses to boot with a volume that is not available.
            let mut volumes = vec![volume.clone()];
            if let Some(home) = &spec.home_volume {
                match st.volumes.get(home) {
                    Some(None) => volumes.push(home.clone()),
                    Some(Some(_)) => {
                        return Err(CloudError::Rejected(format!(
                            "volume {home} is in-use, not available (400)"
                        )));
                    }
                    None => return Err(CloudError::Rejected(format!("no volume {home}"))),
                }
                st.volumes.insert(home.clone(), Some(id.clone()));
            }
            let scenario = st.scenarios.pop_front();
            let address = match &scenario {
                Some(Scenario::ExternalJupyter(at)) => *at.ip(),
                _ => Self::next_address(),
            };
            st.volumes.insert(volume.clone(), Some(id.clone()));
            st.created.push(spec.clone());
            st.servers.insert(
                id.clone(),
                SimServer::new(&id, spec.clone(), address, volumes),
            );
            scenario
        };
        let lose_answer = matches!(scenario, Some(Scenario::LoseCreateResponse));
        let handle = tokio::spawn(self.clone().boot(id.clone(), scenario));
        if let Some(sim) = self.lock().servers.get_mut(&id) {
            sim.vm = Some(handle);
        }
        if lose_answer {
            return Err(CloudError::Unavailable(
                "simulated timeout: the server was created but the answer was lost".into(),
            ));
        }
        self.deliver(Op::CreateServer, id)
    }

    async fn get_server(&self, id: &str) -> CloudResult<Option<Server>> {
        self.enter(Op::GetServer)?;
        self.reap();
        Ok(self.lock().servers.get(id).map(|s| s.server.clone()))
    }

    async fn console_output(&self, id: &str, lines: u32) -> CloudResult<String> {
        self.enter(Op::ConsoleOutput)?;
        let console = self
            .lock()
            .servers
            .get(id)
            .map(|s| s.console.clone())
            .ok_or_else(|| CloudError::Rejected(format!("no server {id}")))?;
        let all = console.lock().expect("console lock");
        let skip = all.len().saturating_sub(lines as usize);
        Ok(all[skip..].join("\n"))
    }

    async fn attach_floating_ip(
        &self,
        server_id: &str,
        owner: &InstallationId,
    ) -> CloudResult<FloatingIp> {
        self.enter(Op::AttachFloatingIp)?;
        let capacity = self.floating_ip_capacity;
        let mut st = self.lock();
        if !st.servers.contains_key(server_id) {
            return Err(CloudError::Rejected(format!("no server {server_id}")));
        }
        let ours = |f: &SimFip| f.owner.as_deref() == Some(owner.as_str());
        if let Some((id, fip)) = st
            .floating_ips
            .iter()
            .find(|(_, f)| ours(f) && f.attached.as_deref() == Some(server_id))
        {
            return Ok(FloatingIp {
                id: id.clone(),
                address: fip.address.clone(),
            });
        }
        // One lock for the look and the attach: two VMs never get one
        // address (the OpenStack backend gets the same from `If-Match`).
        let free = st
            .floating_ips
            .iter()
            .find(|(_, f)| ours(f) && f.attached.is_none())
            .map(|(id, f)| (id.clone(), f.address.clone()));
        let (id, address) = match free {
            Some(found) => found,
            None if st.floating_ips.len() >= capacity => {
                return Err(CloudError::NoFloatingIps(format!(
                    "all {capacity} addresses of the pool are allocated"
                )));
            }
            None => {
                let address = Self::next_address().to_string();
                (uuid::Uuid::new_v4().to_string(), address)
            }
        };
        st.floating_ips.insert(
            id.clone(),
            SimFip {
                address: address.clone(),
                attached: Some(server_id.to_owned()),
                owner: Some(owner.as_str().to_owned()),
            },
        );
        let sim = st.servers.get_mut(server_id).expect("checked above");
        sim.floating_ip = Some(address.clone());
        // The floating IP reaches the same Jupyter as the fixed address.
        if let (Some(jupyter), Ok(ip)) = (sim.jupyter.clone(), address.parse::<Ipv4Addr>()) {
            sim.fip_listener = Some(tokio::spawn(async move { jupyter.serve_on(ip).await }));
        }
        drop(st);
        self.deliver(Op::AttachFloatingIp, FloatingIp { id, address })
    }

    async fn tag_volume(
        &self,
        volume_id: &str,
        owner: &InstallationId,
        _vm_id: &str,
    ) -> CloudResult<()> {
        self.enter(Op::TagVolume)?;
        let mut st = self.lock();
        if !st.volumes.contains_key(volume_id) {
            return Err(CloudError::Rejected(format!("no volume {volume_id}")));
        }
        st.volume_owners
            .insert(volume_id.to_owned(), owner.as_str().to_owned());
        drop(st);
        self.deliver(Op::TagVolume, ())
    }

    async fn update_server(
        &self,
        id: &str,
        name: &str,
        metadata: &BTreeMap<String, String>,
    ) -> CloudResult<()> {
        self.enter(Op::UpdateServer)?;
        let mut st = self.lock();
        let Some(sim) = st.servers.get_mut(id) else {
            return Err(CloudError::Rejected(format!("no server {id}")));
        };
        sim.server.name = name.to_owned();
        sim.server.metadata = metadata.clone();
        drop(st);
        self.deliver(Op::UpdateServer, ())
    }

    async fn attach_volume(&self, server_id: &str, volume_id: &str) -> CloudResult<()> {
        self.enter(Op::AttachVolume)?;
        let mut st = self.lock();
        if !st.servers.contains_key(server_id) {
            return Err(CloudError::Rejected(format!("no server {server_id}")));
        }
        match st.volumes.get_mut(volume_id) {
            Some(attached @ None) => *attached = Some(server_id.to_owned()),
            Some(Some(_)) => return Err(CloudError::VolumeBusy),
            None => return Err(CloudError::Rejected(format!("no volume {volume_id}"))),
        }
        if let Some(sim) = st.servers.get_mut(server_id) {
            sim.server.volume_ids.push(volume_id.to_owned());
        }
        drop(st);
        self.deliver(Op::AttachVolume, ())
    }

    async fn delete_server(&self, id: &str) -> CloudResult<()> {
        self.enter(Op::DeleteServer)?;
        let delay = self.timings.delete;
        let mut st = self.lock();
        let stuck = st.stuck_deletes;
        if let Some(sim) = st.servers.get_mut(id)
            && sim.delete_at.is_none()
        {
            sim.delete_at = (!stuck).then(|| Instant::now() + delay);
            sim.server.status = ServerStatus::Deleting;
        }
        drop(st);
        self.deliver(Op::DeleteServer, ())
    }

    async fn delete_volume(&self, id: &str) -> CloudResult<()> {
        self.enter(Op::DeleteVolume)?;
        self.reap();
        {
            let mut st = self.lock();
            match st.volumes.get(id) {
                Some(Some(_)) => return Err(CloudError::VolumeBusy),
                Some(None) => {
                    st.volumes.remove(id);
                    st.volume_owners.remove(id);
                    st.made_volumes.remove(id);
                }
                None => {}
            }
        }
        self.deliver(Op::DeleteVolume, ())
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> CloudResult<String> {
        self.enter(Op::CreateVolume)?;
        if spec.name.is_empty() || spec.size_gb == 0 {
            return Err(CloudError::Rejected("name and size are required".into()));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let mut st = self.lock();
        st.volumes.insert(id.clone(), None);
        st.made_volumes.insert(id.clone(), spec.clone());
        drop(st);
        self.deliver(Op::CreateVolume, id)
    }

    async fn get_volume(&self, id: &str) -> CloudResult<Option<Volume>> {
        self.enter(Op::GetVolume)?;
        self.reap();
        Ok(self.lock().volume(id))
    }

    async fn find_home_volume(
        &self,
        owner: &InstallationId,
        github_id: &str,
    ) -> CloudResult<Option<Volume>> {
        self.enter(Op::FindHomeVolume)?;
        self.reap();
        let st = self.lock();
        let found = st.made_volumes.iter().find(|(_, spec)| {
            owner.made(&spec.metadata)
                && spec.metadata.get(META_HOME).map(String::as_str) == Some(github_id)
        });
        Ok(found.and_then(|(id, _)| st.volume(id)))
    }

    async fn release_floating_ip(&self, id: &str) -> CloudResult<()> {
        self.enter(Op::ReleaseFloatingIp)?;
        self.lock().floating_ips.remove(id);
        self.deliver(Op::ReleaseFloatingIp, ())
    }

    async fn list_owned(&self, owner: &InstallationId) -> CloudResult<Owned> {
        self.enter(Op::ListOwned)?;
        self.reap();
        let st = self.lock();
        let servers_with = |key: &str| -> Vec<Server> {
            st.servers
                .values()
                .filter(|s| s.server.metadata.contains_key(key) && owner.made(&s.server.metadata))
                .map(|s| s.server.clone())
                .collect()
        };
        Ok(Owned {
            servers: servers_with(META_VM),
            builders: servers_with(META_IMAGE_BUILD),
            volume_ids: st
                .volume_owners
                .iter()
                .filter(|(_, o)| o.as_str() == owner.as_str())
                .map(|(id, _)| id.clone())
                .collect(),
            home_volume_ids: st
                .made_volumes
                .iter()
                .filter(|(_, spec)| {
                    owner.made(&spec.metadata) && spec.metadata.contains_key(META_HOME)
                })
                .map(|(id, _)| id.clone())
                .collect(),
            floating_ips: st
                .floating_ips
                .iter()
                .filter(|(_, f)| f.owner.as_deref() == Some(owner.as_str()))
                .map(|(id, f)| FloatingIp {
                    id: id.clone(),
                    address: f.address.clone(),
                })
                .collect(),
        })
    }

    async fn create_builder(&self, spec: &BuilderSpec) -> CloudResult<String> {
        self.enter(Op::CreateBuilder)?;
        if spec.name.is_empty() || spec.image.is_empty() || spec.flavor.is_empty() {
            return Err(CloudError::Rejected(
                "name, image and flavor are required".into(),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let script = {
            let mut st = self.lock();
            let script = match st.scenarios.front() {
                Some(Scenario::ImageBuildFails(step)) => BuilderScript::Fails(step.clone()),
                Some(Scenario::ImageBuildHangs) => BuilderScript::NeverPowersOff,
                _ => BuilderScript::Succeeds,
            };
            if script != BuilderScript::Succeeds {
                st.scenarios.pop_front();
            }
            // Booted from the image onto the flavor's disk: no volume.
            let as_server = ServerSpec {
                name: spec.name.clone(),
                image: spec.image.clone(),
                flavor: spec.flavor.clone(),
                volume_size_gb: 0,
                delete_volume_on_termination: true,
                key_name: None,
                security_groups: Vec::new(),
                network: None,
                user_data: spec.user_data.clone(),
                metadata: spec.metadata.clone(),
                home_volume: None,
                availability_zone: None,
            };
            st.builders.push(spec.clone());
            st.servers.insert(
                id.clone(),
                SimServer::new(&id, as_server, Self::next_address(), Vec::new()),
            );
            script
        };
        let handle = tokio::spawn(self.clone().run_builder(id.clone(), script));
        if let Some(sim) = self.lock().servers.get_mut(&id) {
            sim.vm = Some(handle);
        }
        self.deliver(Op::CreateBuilder, id)
    }

    async fn create_image(&self, server_id: &str, name: &str) -> CloudResult<String> {
        self.enter(Op::CreateImage)?;
        self.reap();
        let ready_at = Instant::now() + self.timings.boot;
        let mut st = self.lock();
        match st.servers.get(server_id).map(|s| &s.server.status) {
            None => return Err(CloudError::Rejected(format!("no server {server_id}"))),
            Some(ServerStatus::Active | ServerStatus::Stopped) => {}
            Some(other) => {
                return Err(CloudError::Rejected(format!(
                    "cannot snapshot server {server_id} while it is {other:?} (409)"
                )));
            }
        }
        let fails = matches!(st.scenarios.front(), Some(Scenario::SnapshotFails));
        if fails {
            st.scenarios.pop_front();
        }
        let id = uuid::Uuid::new_v4().to_string();
        st.images.insert(
            id.clone(),
            SimImage {
                image: Image {
                    id: id.clone(),
                    name: name.to_owned(),
                    status: ImageStatus::Pending("saving".into()),
                },
                ready_at,
                fails,
            },
        );
        drop(st);
        self.deliver(Op::CreateImage, id)
    }

    async fn get_image(&self, id: &str) -> CloudResult<Option<Image>> {
        self.enter(Op::GetImage)?;
        let now = Instant::now();
        Ok(self
            .lock()
            .images
            .get_mut(id)
            .map(|i| i.settle(now).clone()))
    }

    async fn delete_image(&self, id: &str) -> CloudResult<()> {
        self.enter(Op::DeleteImage)?;
        self.lock().images.remove(id);
        self.deliver(Op::DeleteImage, ())
    }

    async fn check(&self) -> Vec<CheckItem> {
        let free = self
            .floating_ip_capacity
            .saturating_sub(self.floating_ip_count());
        vec![
            CheckItem::ok("cloud", "the simulated cloud needs no credentials"),
            CheckItem::ok("floating IPs", format!("{free} free in the simulated pool")),
        ]
    }
}
