//! The simulated cloud with the demo's timings (`[simulator]` defaults: a
//! real cloud's, scaled). stackbinder runs as `demo` runs it (the
//! simulated cloud, the demo login). A simulated VM plays the agent in
//! process (`src/cloud/simulated/agent.rs`); its own time is the
//! simulator's clone, build and start (a prebuilt start: clone and cached
//! start), the boot is the simulated cloud's.

use crate::measure::{self, Launch};
use crate::report::{self, Notes, secs};
use crate::web_app::WebApp;
use stackbinder::cloud::Cloud;
use stackbinder::cloud::simulated::{SimulatedCloud, Timings};
use stackbinder::config::Config;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A launch, a fill or a refill not done within this long has failed.
const LIMIT: Duration = Duration::from_secs(120);

pub async fn run(size: u32) {
    let mut config = Config::defaults();
    measure::with_pool(&mut config, size);
    let timings = Timings::from_config(&config.simulator);
    println!(
        "## warm pool on the simulated cloud: {}, pool of {size}",
        report::machine()
    );
    println!(
        "the simulated VM alone: {} s for a cold launch (boot, clone, build, start), {} s for a prebuilt start (clone, cached start)\n",
        secs(timings.cold_launch()),
        secs(timings.prebuilt_launch()),
    );
    let cloud = SimulatedCloud::new(timings.clone(), 64);
    let started = Instant::now();
    let app = WebApp::start(config, Arc::new(cloud) as Arc<dyn Cloud>, "student0", LIMIT).await;
    let run = measure::run(&app, size, started, LIMIT).await;
    let vm_own = |l: &Launch| {
        if l.prebuilt {
            timings.prebuilt_launch()
        } else {
            timings.clone + timings.build + timings.start
        }
    };
    let notes = Notes {
        vm_own: &format!(
            "the simulator's: {} s for a prebuilt start (clone, cached start), {} s with a build (clone, build, start)",
            secs(timings.prebuilt_launch()),
            secs(timings.clone + timings.build + timings.start),
        ),
        boot: &format!("one simulated boot: {} s", secs(timings.boot)),
    };
    report::print(&run, vm_own, &notes);
}
