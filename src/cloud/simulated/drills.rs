//! Drills for tests and the demo: faults to inject into the simulated
//! cloud, and what to look at afterwards.

use super::state::SimFip;
use super::{Op, Scenario, SimulatedCloud};
use crate::cloud::{BuilderSpec, Image, ServerSpec, ServerStatus};
use std::time::Instant;

impl SimulatedCloud {
    /// The next launch goes through `scenario` instead of succeeding.
    pub fn push_scenario(&self, scenario: Scenario) {
        self.lock().scenarios.push_back(scenario);
    }

    /// The next `times` calls of `op` fail as if the API were down.
    pub fn fail_next(&self, op: Op, times: u32) {
        self.lock().failures.insert(op, times);
    }

    /// The next `times` calls of `op` take effect, but their answer is
    /// lost (a timeout, or a crash before the caller recorded it).
    pub fn lose_answer(&self, op: Op, times: u32) {
        self.lock().lost_answers.insert(op, times);
    }

    /// While on, deleted servers stay in DELETING (a stuck compute host).
    pub fn set_stuck_deletes(&self, stuck: bool) {
        let mut st = self.lock();
        st.stuck_deletes = stuck;
        if !stuck {
            let now = Instant::now();
            for sim in st.servers.values_mut() {
                if sim.server.status == ServerStatus::Deleting && sim.delete_at.is_none() {
                    sim.delete_at = Some(now);
                }
            }
        }
    }

    /// Make every running VM's Jupyter report its last activity at `at`.
    pub fn set_jupyter_last_activity(&self, at: chrono::DateTime<chrono::Utc>) {
        for sim in self.lock().servers.values() {
            if let Some(jupyter) = &sim.jupyter {
                jupyter.set_last_activity(at);
            }
        }
    }

    /// How many times `op` was called.
    pub fn calls(&self, op: Op) -> u64 {
        self.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// Every server spec the cloud accepted, in order.
    pub fn created(&self) -> Vec<ServerSpec> {
        self.lock().created.clone()
    }

    pub fn server_count(&self) -> usize {
        self.reap();
        self.lock().servers.len()
    }

    pub fn volume_count(&self) -> usize {
        self.reap();
        self.lock().volumes.len()
    }

    /// Every image builder the cloud booted, in order.
    pub fn builders(&self) -> Vec<BuilderSpec> {
        self.lock().builders.clone()
    }

    /// The images made with `create_image` that still exist.
    pub fn images(&self) -> Vec<Image> {
        let mut st = self.lock();
        let now = Instant::now();
        st.images
            .values_mut()
            .map(|i| i.settle(now).clone())
            .collect()
    }

    pub fn floating_ip_count(&self) -> usize {
        self.lock().floating_ips.len()
    }

    /// An operator allocates a floating IP by hand (no installation's):
    /// its id. Stackbinder must never take or release it.
    pub fn add_operator_floating_ip(&self) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let fip = SimFip {
            address: Self::next_address().to_string(),
            attached: None,
            owner: None,
        };
        self.lock().floating_ips.insert(id.clone(), fip);
        id
    }

    /// Whether the floating IP `id` still exists, and the server it is on.
    pub fn floating_ip_attachment(&self, id: &str) -> Option<Option<String>> {
        self.lock().floating_ips.get(id).map(|f| f.attached.clone())
    }

    /// An operator attaches a new volume to `server_id` by hand: its id.
    pub fn attach_operator_volume(&self, server_id: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut st = self.lock();
        st.volumes.insert(id.clone(), Some(server_id.to_owned()));
        if let Some(sim) = st.servers.get_mut(server_id) {
            sim.server.volume_ids.push(id.clone());
        }
        id
    }

    /// Whether the volume `id` exists.
    pub fn has_volume(&self, id: &str) -> bool {
        self.reap();
        self.lock().volumes.contains_key(id)
    }
}
