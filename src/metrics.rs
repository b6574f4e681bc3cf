//! Prometheus metrics. One registry per application (not a global), so
//! tests that run several applications in one process stay apart.

use crate::domain::VmState;
use crate::store::BusyCounts;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloudCallLabel {
    pub service: String,
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloudErrorLabel {
    pub service: String,
    pub operation: String,
    pub error: String,
}

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    launches: Counter,
    failures: Family<ReasonLabel, Counter>,
    deletions: Family<ReasonLabel, Counter>,
    launch_duration: Histogram,
    vms: Family<StateLabel, Gauge>,
    cloud_latency: Family<CloudCallLabel, Histogram>,
    cloud_errors: Family<CloudErrorLabel, Counter>,
    driver_leader: Gauge,
    pool_ready: Gauge,
    pool_claims: Counter,
    pool_misses: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::with_sqlite(&BusyCounts::default())
    }

    /// The metrics, with the busy-handler counts of the store's SQLite
    /// connections (shared: they count on as the store works).
    pub fn with_sqlite(busy: &BusyCounts) -> Self {
        let mut registry = Registry::with_prefix("stackbinder");
        registry.register(
            "sqlite_busy",
            "SQLite statements that found the database locked and waited",
            busy.busy.clone(),
        );
        registry.register(
            "sqlite_busy_retries",
            "Further looks at SQLite's lock while waiting (one a millisecond)",
            busy.retries.clone(),
        );
        registry.register(
            "sqlite_busy_timeouts",
            "SQLite waits given up: the statement failed with database is locked",
            busy.timeouts.clone(),
        );
        let launches = Counter::default();
        registry.register("launches", "Launches requested", launches.clone());
        let failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "launch_failures",
            "Launches that failed, by the phase they failed in",
            failures.clone(),
        );
        let deletions = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "deletions",
            "Deletions requested, by reason",
            deletions.clone(),
        );
        // 30 s to about 2 h: a cached image starts in a minute or two, a
        // fresh repo2docker build can take most of an hour.
        let launch_duration = Histogram::new([
            30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 2400.0, 3600.0, 7200.0,
        ]);
        registry.register(
            "launch_duration_seconds",
            "From the launch request to Jupyter answering",
            launch_duration.clone(),
        );
        let vms = Family::<StateLabel, Gauge>::default();
        registry.register("vms", "VMs by state (deleted ones excluded)", vms.clone());
        let cloud_latency = Family::<CloudCallLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
        });
        registry.register(
            "cloud_request_duration_seconds",
            "Cloud API calls, by service and operation",
            cloud_latency.clone(),
        );
        let cloud_errors = Family::<CloudErrorLabel, Counter>::default();
        registry.register(
            "cloud_errors",
            "Cloud API calls that failed",
            cloud_errors.clone(),
        );
        let driver_leader = Gauge::default();
        registry.register(
            "driver_leader",
            "1 while this replica holds the driver lease and runs the background work, else 0",
            driver_leader.clone(),
        );
        let pool_ready = Gauge::default();
        registry.register(
            "pool_ready",
            "Warm-pool VMs ready to be claimed by a launch",
            pool_ready.clone(),
        );
        let pool_claims = Counter::default();
        registry.register(
            "pool_claims",
            "Launches that got a ready VM from the warm pool",
            pool_claims.clone(),
        );
        let pool_misses = Counter::default();
        registry.register(
            "pool_misses",
            "Launches with the pool on that found no ready pool VM and boot their own",
            pool_misses.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                launches,
                failures,
                deletions,
                launch_duration,
                vms,
                cloud_latency,
                cloud_errors,
                driver_leader,
                pool_ready,
                pool_claims,
                pool_misses,
            }),
        }
    }

    pub fn launch_requested(&self) {
        self.inner.launches.inc();
    }

    pub fn launch_failed(&self, phase: &str) {
        self.inner
            .failures
            .get_or_create(&ReasonLabel {
                reason: phase.to_owned(),
            })
            .inc();
    }

    pub fn deletion_requested(&self, reason: &str) {
        self.inner
            .deletions
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn launch_ready(&self, seconds: f64) {
        self.inner.launch_duration.observe(seconds);
    }

    pub fn cloud_call(&self, service: &str, operation: &str, seconds: f64, error: Option<&str>) {
        let label = CloudCallLabel {
            service: service.to_owned(),
            operation: operation.to_owned(),
        };
        self.inner
            .cloud_latency
            .get_or_create(&label)
            .observe(seconds);
        if let Some(error) = error {
            self.inner
                .cloud_errors
                .get_or_create(&CloudErrorLabel {
                    service: service.to_owned(),
                    operation: operation.to_owned(),
                    error: error.to_owned(),
                })
                .inc();
        }
    }

    pub fn set_driver_leader(&self, leader: bool) {
        self.inner.driver_leader.set(i64::from(leader));
    }

    pub fn pool_claimed(&self) {
        self.inner.pool_claims.inc();
    }

    pub fn pool_missed(&self) {
        self.inner.pool_misses.inc();
    }

    /// Render the text format, with the VM counts and the ready pool VMs
    /// given as of now.
    pub fn render(&self, vms_by_state: &[(VmState, i64)], pool_ready: i64) -> String {
        self.inner.pool_ready.set(pool_ready);
        self.inner.vms.clear();
        for (state, count) in vms_by_state {
            self.inner
                .vms
                .get_or_create(&StateLabel {
                    state: state.as_str().to_owned(),
                })
                .set(*count);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
