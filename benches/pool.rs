//! The warm pool (issue #16), in one run on the simulated cloud, on the
//! real control plane of `scripts/openstack-dev.sh`, or on both one after
//! the other:
//!
//!     cargo bench --bench pool                  # the simulated cloud
//!     cargo bench --bench pool -- openstack     # the dev control plane
//!     cargo bench --bench pool -- both
//!     POOL_SIZE=8 cargo bench --bench pool      # 4 by default; 2 on the dev cloud
//!
//! The dev control plane needs `eval "$(scripts/openstack-dev.sh env)"`
//! and `TEST_JUPYTER_PYTHON` (a python with jupyter-server: the played
//! VMs' Jupyter).
//!
//! stackbinder runs in this process with `[pool] size = POOL_SIZE` and the
//! launched repository pinned in `[pool] repos` (`measure`). Once the pool
//! is full (`stackbinder_pool_ready` on `/metrics`), POOL_SIZE students
//! press Launch at once and take every pool VM, and one more launches the
//! same repository right after, when the pool is empty: a cold launch.
//! Each watches `/api/vm` until ready.
//!
//! Reported (`report`): click → ready of the pooled launches (p50, max)
//! and of the cold one, and their ratio (goal: the pooled at least 4×
//! faster); stackbinder's own share of a pooled launch, its click → ready
//! less what the VM itself takes (goal: under 1 s); the refill, from the
//! claims until the pool is full again, in VMs per minute. What "the VM
//! itself" is differs by mode: see `simulated` and `openstack`.

#[path = "../tests/conformance/dev.rs"]
#[allow(dead_code)]
mod dev;
#[path = "../tests/support/real_jupyter.rs"]
mod real_jupyter;
#[path = "../tests/support/web_app.rs"]
mod web_app;

// A bench's root resolves modules in benches/, as its siblings.
#[path = "pool/measure.rs"]
mod measure;
#[path = "pool/openstack.rs"]
mod openstack;
#[path = "pool/played_vm.rs"]
mod played_vm;
#[path = "pool/report.rs"]
mod report;
#[path = "pool/simulated.rs"]
mod simulated;

/// Where a run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Simulated,
    OpenStack,
}

/// The modes the arguments ask for: none is the simulated cloud. Cargo
/// passes `--bench` to a bench without harness; flags are not modes.
fn modes(args: &[String]) -> Result<Vec<Mode>, String> {
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    match words.as_slice() {
        [] | ["simulated"] => Ok(vec![Mode::Simulated]),
        ["openstack"] => Ok(vec![Mode::OpenStack]),
        ["both"] => Ok(vec![Mode::Simulated, Mode::OpenStack]),
        other => Err(format!(
            "unknown arguments {other:?}: say `simulated` (the default), `openstack` or `both`"
        )),
    }
}

/// `POOL_SIZE`, else the mode's default.
fn pool_size(default: u32) -> u32 {
    std::env::var("POOL_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let modes = modes(&args).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    });
    // Before a long simulated run, not after it.
    if modes.contains(&Mode::OpenStack)
        && let Err(missing) = openstack::Env::from_environment()
    {
        eprintln!("{missing}");
        std::process::exit(1);
    }
    for mode in modes {
        match mode {
            Mode::Simulated => simulated::run(pool_size(4)).await,
            Mode::OpenStack => {
                let env = openstack::Env::from_environment().expect("checked above");
                openstack::run(env, pool_size(2)).await;
            }
        }
        println!();
    }
}
