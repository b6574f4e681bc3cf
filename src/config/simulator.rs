//! `[simulator]`: the timings of the simulated cloud
//! (`cloud.backend = "simulated"`) and the Jupyter its VMs run.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    pub boot_seconds: f64,
    pub clone_seconds: f64,
    pub build_seconds: f64,
    pub start_seconds: f64,
    pub delete_seconds: f64,
    /// The command of a real JupyterLab the simulated VM runs instead of
    /// its built-in stand-in, e.g. `["/venv/bin/python", "-m", "jupyterlab"]`
    /// (it is given what `launch.sh` gives Jupyter in the container);
    /// empty: the stand-in.
    pub jupyter_command: Vec<String>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            boot_seconds: 3.0,
            clone_seconds: 2.0,
            build_seconds: 6.0,
            start_seconds: 2.0,
            delete_seconds: 2.0,
            jupyter_command: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_str;

    #[test]
    fn the_simulator_runs_its_stand_in_unless_given_a_jupyter_command() {
        let c = load_str("").unwrap();
        assert!(c.simulator.jupyter_command.is_empty());
        let c = load_str("[simulator]\njupyter_command = [\"python3\", \"-m\", \"jupyterlab\"]")
            .unwrap();
        assert_eq!(c.simulator.jupyter_command, ["python3", "-m", "jupyterlab"]);
    }
}
