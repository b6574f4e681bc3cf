//! The figures of one run, the same for both modes: each launch's click →
//! ready split into what the VM itself took (`vm_own`: its clone, build
//! and Jupyter start, as the mode defines them) and the rest, which is
//! stackbinder and the cloud's APIs.

use crate::measure::{Launch, Run};
use std::time::Duration;

/// What the mode says of its VMs, for the lines of the report.
pub struct Notes<'a> {
    /// What the VM's own time is in this mode.
    pub vm_own: &'a str,
    /// What one boot takes here, to read the refill rate against.
    pub boot: &'a str,
}

pub fn print(run: &Run, vm_own: impl Fn(&Launch) -> Duration, notes: &Notes) {
    if !run.missed.is_empty() {
        println!(
            "{} of the {} launches did not get a pool VM: {:?}",
            run.missed.len(),
            run.size,
            run.missed.iter().map(|l| &l.path).collect::<Vec<_>>()
        );
    }
    println!("the pool filled in {} s after the start", secs(run.filled));
    let p50 = run.p50();
    let max = run.pooled.last().unwrap_or(p50);
    let rest = |l: &Launch| l.took.saturating_sub(vm_own(l));
    println!("the VM's own time: {}", notes.vm_own);
    println!("| launch | click → ready | the VM's own | stackbinder and the cloud |");
    println!("|---|---|---|---|");
    let row = |what: String, l: &Launch| {
        println!(
            "| {what} | {} s | {} s | {} s |",
            secs(l.took),
            secs(vm_own(l)),
            secs(rest(l))
        );
    };
    let n = run.pooled.len();
    let prebuilt = run.pooled.iter().filter(|l| l.prebuilt).count();
    row(
        format!("pooled, pinned repository: p50 of {n} ({prebuilt} prebuilt)"),
        p50,
    );
    row(format!("pooled, pinned repository: max of {n}"), max);
    row("cold, same repository, empty pool".into(), &run.cold);
    println!();
    let ratio = |cold: Duration, pooled: Duration| cold.as_secs_f64() / pooled.as_secs_f64();
    println!(
        "ratio cold / pooled p50: {:.1}× click → ready (goal: at least 4×); {:.1}× for stackbinder and the cloud alone",
        ratio(run.cold.took, p50.took),
        ratio(rest(&run.cold), rest(p50)),
    );
    println!(
        "stackbinder's own share of a pooled launch (p50 less the VM's own): {} ms (goal: under 1000 ms)",
        rest(p50).as_millis()
    );
    println!(
        "refill: {} VMs in {} s after the claims, {:.1} VMs per minute ({})",
        run.size,
        secs(run.refill),
        f64::from(run.size) * 60.0 / run.refill.as_secs_f64(),
        notes.boot
    );
}

pub fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// The machine and the build, for the first line of a run.
pub fn machine() -> String {
    format!(
        "{} cores, {} build",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )
}
