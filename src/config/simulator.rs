//! `[simulator]`: the timings of the simulated cloud
//! (`cloud.backend = "simulated"`) and the Jupyter its VMs run.
//!
//! The timings are those of a real cloud (a boot from volume takes tens of
//! seconds, a repo2docker build minutes, a start from a cached image
//! seconds), all multiplied by one `time_scale`, so that the demo and the
//! tests keep the real proportions (which the pool's gain depends on)
//! without waiting minutes.

use super::ConfigError;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    /// Every duration below is multiplied by this.
    pub time_scale: f64,
    /// Server BUILD -> ACTIVE: a boot from a new volume.
    pub boot_seconds: f64,
    pub clone_seconds: f64,
    /// A repo2docker build of an environment not in Docker's cache.
    pub build_seconds: f64,
    /// Starting Jupyter in a freshly built image.
    pub start_seconds: f64,
    /// Starting Jupyter from an image that is already built (repo2docker
    /// finds it and skips the build): a prebuilt environment.
    pub cached_start_seconds: f64,
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
            time_scale: 0.05,
            boot_seconds: 40.0,
            clone_seconds: 4.0,
            build_seconds: 180.0,
            start_seconds: 6.0,
            cached_start_seconds: 3.0,
            delete_seconds: 20.0,
            jupyter_command: Vec::new(),
        }
    }
}

impl SimulatorConfig {
    /// `seconds` of a real cloud, as the simulator plays them.
    pub fn scaled(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64((seconds * self.time_scale).max(0.0))
    }

    pub fn boot(&self) -> Duration {
        self.scaled(self.boot_seconds)
    }

    pub fn clone_repo(&self) -> Duration {
        self.scaled(self.clone_seconds)
    }

    pub fn build(&self) -> Duration {
        self.scaled(self.build_seconds)
    }

    pub fn start(&self) -> Duration {
        self.scaled(self.start_seconds)
    }

    pub fn cached_start(&self) -> Duration {
        self.scaled(self.cached_start_seconds)
    }

    pub fn delete(&self) -> Duration {
        self.scaled(self.delete_seconds)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(ConfigError::new(
                "simulator.time_scale",
                format!("must be a positive number, not {}", self.time_scale),
                "use a factor above 0, e.g. time_scale = 0.05 (1 plays real time)",
            ));
        }
        let durations = [
            ("boot_seconds", self.boot_seconds),
            ("clone_seconds", self.clone_seconds),
            ("build_seconds", self.build_seconds),
            ("start_seconds", self.start_seconds),
            ("cached_start_seconds", self.cached_start_seconds),
            ("delete_seconds", self.delete_seconds),
        ];
        for (key, seconds) in durations {
            if !(seconds.is_finite() && seconds >= 0.0) {
                return Err(ConfigError::new(
                    &format!("simulator.{key}"),
                    format!("must be 0 or more seconds, not {seconds}"),
                    format!("use a number of seconds of a real cloud, e.g. {key} = 5"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_str;
    use std::time::Duration;

    #[test]
    fn the_simulator_runs_its_stand_in_unless_given_a_jupyter_command() {
        let c = load_str("").unwrap();
        assert!(c.simulator.jupyter_command.is_empty());
        let c = load_str("[simulator]\njupyter_command = [\"python3\", \"-m\", \"jupyterlab\"]")
            .unwrap();
        assert_eq!(c.simulator.jupyter_command, ["python3", "-m", "jupyterlab"]);
    }

    #[test]
    fn one_factor_scales_every_timing_of_a_real_cloud() {
        let c = load_str("[simulator]\ntime_scale = 0.5\nboot_seconds = 30\nbuild_seconds = 120")
            .unwrap()
            .simulator;
        assert_eq!(c.boot(), Duration::from_secs(15));
        assert_eq!(c.build(), Duration::from_secs(60));
        assert_eq!(c.cached_start(), Duration::from_secs_f64(1.5));
    }

    #[test]
    fn a_scale_or_a_duration_that_is_not_a_positive_number_is_refused() {
        for bad in ["0", "-1", "nan"] {
            let e = load_str(&format!("[simulator]\ntime_scale = {bad}")).unwrap_err();
            assert_eq!(e.key, "simulator.time_scale", "{bad}");
        }
        let e = load_str("[simulator]\ncached_start_seconds = -2").unwrap_err();
        assert_eq!(e.key, "simulator.cached_start_seconds");
    }
}
