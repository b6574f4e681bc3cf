//! What happens after the cloud said yes: a server boots, asks for its
//! job and runs its launch like a VM would, and an image builder prints its build.

use super::agent;
use super::builder_console::{self, BuilderScript};
use super::jupyter_stand_in::Jupyter;
use super::launch_script::{self, VmScript};
use super::{Scenario, SimulatedCloud, push_console};
use crate::cloud::ServerStatus;
use crate::cloud_init::{self, LaunchData};
use std::net::Ipv4Addr;

impl SimulatedCloud {
    /// Boot: after the delay the server is ACTIVE (or ERROR) and its VM starts.
    pub(super) async fn boot(self, id: String, scenario: Option<Scenario>) {
        tokio::time::sleep(self.timings.boot).await;
        let started = {
            let mut st = self.lock();
            let Some(sim) = st.servers.get_mut(&id) else {
                return;
            };
            if sim.delete_at.is_some() {
                return;
            }
            if let Some(Scenario::BootFault(fault)) = &scenario {
                sim.server.status = ServerStatus::Error;
                sim.server.fault = Some(fault.clone());
                return;
            }
            sim.server.status = ServerStatus::Active;
            let address = sim
                .server
                .addresses
                .first()
                .and_then(|a| a.parse().ok())
                .unwrap_or(Ipv4Addr::LOCALHOST);
            (address, sim.console.clone(), sim.spec.user_data.clone())
        };
        let (address, console, user_data) = started;
        push_console(
            &console,
            "[    0.000000] Linux version 6.8.0-simulated (stackbinder simulator)",
        );
        push_console(&console, "Cloud-init v. 24.4 running 'modules:final'");
        let Some(boot) = cloud_init::parse_boot_data(&user_data) else {
            push_console(
                &console,
                "stackbinder: no boot data in the user data; nothing to run",
            );
            return;
        };
        agent::prebuild(&boot, &console);
        let Some(job) = agent::ask_for_job(&self.http, &boot, &console).await else {
            return;
        };
        let prebuilt = agent::prebuilt(&boot.prebuild, &job);
        let data = LaunchData::new(&boot, &job);
        let Some(jupyter) = self.jupyter_for(&id, &data) else {
            return;
        };
        let script = match scenario {
            Some(Scenario::BuildFails(lines)) => VmScript::BuildFails(lines),
            Some(Scenario::JupyterNeverAnswers) => VmScript::JupyterNeverAnswers,
            Some(Scenario::ExternalJupyter(at)) => VmScript::ExternalJupyter(at.port()),
            _ if !self.jupyter_command.is_empty() => {
                VmScript::RealJupyter(self.jupyter_command.clone())
            }
            _ => VmScript::Succeeds,
        };
        launch_script::run(
            self.http.clone(),
            data,
            prebuilt,
            address,
            jupyter,
            script,
            self.timings.clone(),
            console,
        )
        .await;
    }

    /// The Jupyter of the VM's job, known to the server from now on; a
    /// floating IP attached while the VM waited for its job reaches it
    /// too. `None` once the server is being deleted.
    fn jupyter_for(&self, id: &str, data: &LaunchData) -> Option<Jupyter> {
        let mut st = self.lock();
        let sim = st.servers.get_mut(id)?;
        if sim.delete_at.is_some() {
            return None;
        }
        let jupyter = Jupyter::new(data);
        sim.jupyter = Some(jupyter.clone());
        if let Some(ip) = sim
            .floating_ip
            .as_ref()
            .and_then(|a| a.parse::<Ipv4Addr>().ok())
        {
            let serving = jupyter.clone();
            sim.fip_listener = Some(tokio::spawn(async move { serving.serve_on(ip).await }));
        }
        Some(jupyter)
    }

    /// The builder boots, prints the build on its console over
    /// `timings.build`, and powers off (unless told to hang).
    pub(super) async fn run_builder(self, id: String, script: BuilderScript) {
        tokio::time::sleep(self.timings.boot).await;
        let (console, user_data) = {
            let mut st = self.lock();
            let Some(sim) = st.servers.get_mut(&id) else {
                return;
            };
            if sim.delete_at.is_some() {
                return;
            }
            sim.server.status = ServerStatus::Active;
            (sim.console.clone(), sim.spec.user_data.clone())
        };
        let (lines, powers_off) = builder_console::console_lines(&user_data, &script);
        let pause = self.timings.build / lines.len().max(1) as u32;
        for line in &lines {
            push_console(&console, line);
            tokio::time::sleep(pause).await;
        }
        if powers_off
            && let Some(sim) = self.lock().servers.get_mut(&id)
            && sim.delete_at.is_none()
        {
            sim.server.status = ServerStatus::Stopped;
        }
    }
}
