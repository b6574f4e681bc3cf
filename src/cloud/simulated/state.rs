//! What the simulated cloud holds: its servers, volumes, floating IPs and
//! images, the faults it was told to inject, and what it was asked.

use super::jupyter_stand_in::Jupyter;
use super::{Op, Scenario};
use crate::cloud::{
    BuilderSpec, Image, ImageStatus, Server, ServerSpec, ServerStatus, Volume, VolumeSpec,
    VolumeStatus,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::task::JoinHandle;

/// A floating IP of the project, as Neutron keeps it.
pub(super) struct SimFip {
    pub(super) address: String,
    /// The server it is attached to.
    pub(super) attached: Option<String>,
    /// The installation its description names; `None` for one an operator
    /// allocated by hand.
    pub(super) owner: Option<String>,
}

/// An image being made from a server, or made.
pub(super) struct SimImage {
    pub(super) image: Image,
    /// When a pending image settles.
    pub(super) ready_at: Instant,
    /// Settles as `killed` instead of active.
    pub(super) fails: bool,
}

pub(super) struct SimServer {
    pub(super) server: Server,
    pub(super) spec: ServerSpec,
    pub(super) delete_at: Option<Instant>,
    pub(super) console: Arc<Mutex<Vec<String>>>,
    pub(super) vm: Option<JoinHandle<()>>,
    pub(super) fip_listener: Option<JoinHandle<()>>,
    pub(super) floating_ip: Option<String>,
    pub(super) jupyter: Option<Jupyter>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) servers: HashMap<String, SimServer>,
    /// volume id → server id it is attached to (None: available).
    pub(super) volumes: BTreeMap<String, Option<String>>,
    /// volume id → the installation its metadata names (Cinder metadata).
    pub(super) volume_owners: HashMap<String, String>,
    /// Volumes made with `create_volume` (home volumes), as asked for;
    /// whether one is attached is in `volumes`.
    pub(super) made_volumes: HashMap<String, VolumeSpec>,
    pub(super) floating_ips: BTreeMap<String, SimFip>,
    pub(super) created: Vec<ServerSpec>,
    pub(super) builders: Vec<BuilderSpec>,
    pub(super) images: BTreeMap<String, SimImage>,
    pub(super) calls: HashMap<Op, u64>,
    pub(super) failures: HashMap<Op, u32>,
    /// Calls that take effect but whose answer is lost.
    pub(super) lost_answers: HashMap<Op, u32>,
    /// Servers asked to be deleted stay in DELETING for ever.
    pub(super) stuck_deletes: bool,
    pub(super) scenarios: VecDeque<Scenario>,
}

impl State {
    /// A volume made with `create_volume`, as Cinder would show it.
    pub(super) fn volume(&self, id: &str) -> Option<Volume> {
        let spec = self.made_volumes.get(id)?;
        let attached_to: Vec<String> = self.volumes.get(id)?.iter().cloned().collect();
        Some(Volume {
            id: id.to_owned(),
            status: if attached_to.is_empty() {
                VolumeStatus::Available
            } else {
                VolumeStatus::InUse
            },
            size_gb: spec.size_gb,
            availability_zone: Some(
                spec.availability_zone
                    .clone()
                    .unwrap_or_else(|| "nova".into()),
            ),
            attached_to,
            metadata: spec.metadata.clone(),
        })
    }
}

impl SimServer {
    pub(super) fn new(
        id: &str,
        spec: ServerSpec,
        address: Ipv4Addr,
        volume_ids: Vec<String>,
    ) -> Self {
        Self {
            server: Server {
                id: id.to_owned(),
                name: spec.name.clone(),
                status: ServerStatus::Build,
                fault: None,
                addresses: vec![address.to_string()],
                volume_ids,
                metadata: spec.metadata.clone(),
                created: Some(chrono::Utc::now()),
            },
            spec,
            delete_at: None,
            console: Arc::default(),
            vm: None,
            fip_listener: None,
            floating_ip: None,
            jupyter: None,
        }
    }
}

impl SimImage {
    /// The image as Glance shows it at `now`.
    pub(super) fn settle(&mut self, now: Instant) -> &Image {
        if matches!(self.image.status, ImageStatus::Pending(_)) && now >= self.ready_at {
            self.image.status = if self.fails {
                ImageStatus::Failed("killed".into())
            } else {
                ImageStatus::Active
            };
        }
        &self.image
    }
}
