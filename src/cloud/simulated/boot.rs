//! What happens after the cloud said yes: a server boots and runs its
//! launch like a VM would, and an image builder prints its build.

use super::builder_console::{self, BuilderScript};
use super::jupyter_stand_in::Jupyter;
use super::launch_script::{self, VmScript};
use super::{Scenario, SimulatedCloud, push_console};
use crate::cloud::ServerStatus;
use crate::cloud_init;
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
            // The VM's Jupyter exists before anyone can see the server
            // ACTIVE, so a floating IP attached right away reaches it too.
            let data = cloud_init::parse_launch_data(&sim.spec.user_data);
            sim.jupyter = data.as_ref().map(Jupyter::new);
            sim.server.status = ServerStatus::Active;
            let address = sim
                .server
                .addresses
                .first()
                .and_then(|a| a.parse().ok())
                .unwrap_or(Ipv4Addr::LOCALHOST);
            (data, sim.jupyter.clone(), address, sim.console.clone())
        };
        let (data, jupyter, address, console) = started;
        push_console(
            &console,
            "[    0.000000] Linux version 6.8.0-simulated (stackbinder simulator)",
        );
        push_console(&console, "Cloud-init v. 24.4 running 'modules:final'");
        let (Some(data), Some(jupyter)) = (data, jupyter) else {
            push_console(
                &console,
                "stackbinder: no launch data in the user data; nothing to run",
            );
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
            address,
            jupyter,
            script,
            self.timings.clone(),
            console,
        )
        .await;
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
