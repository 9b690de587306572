//! Prometheus metrics and the `/metrics`, `/healthz`, `/readyz` endpoints.

use ferrolb_cluster::http::{self, Exporter};
use ferrolb_shared::alloc::PoolStats;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, IntGaugeVec, Opts, Registry};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The controller's metrics, registered once in their own registry.
pub struct Metrics {
    pub registry: Registry,
    pub pool_capacity: IntGaugeVec,
    pub pool_in_use: IntGaugeVec,
    pub services_allocated: IntGauge,
    /// Services of ours waiting for an address (AllocationFailed, retried when one frees up).
    pub services_waiting: IntGauge,
    pub allocation_failures: IntCounter,
    pub config_loaded: IntGauge,
    pub config_stale: IntGauge,
    pub reconcile_duration: Histogram,
    /// Set once the source's first full listing has been reconciled.
    pub ready: AtomicBool,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let pool_capacity = IntGaugeVec::new(
            Opts::new(
                "ferrolb_pool_capacity_addresses",
                "Usable addresses in each pool (saturated at 2^63-1)",
            ),
            &["pool", "family"],
        )
        .expect("valid metric");
        let pool_in_use = IntGaugeVec::new(
            Opts::new(
                "ferrolb_pool_addresses_in_use",
                "Addresses of each pool held by at least one Service",
            ),
            &["pool", "family"],
        )
        .expect("valid metric");
        let services_allocated = IntGauge::new(
            "ferrolb_services_allocated",
            "LoadBalancer Services that hold their addresses",
        )
        .expect("valid metric");
        let services_waiting = IntGauge::new(
            "ferrolb_services_waiting",
            "LoadBalancer Services of ours that have no address yet and wait for one",
        )
        .expect("valid metric");
        let allocation_failures = IntCounter::new(
            "ferrolb_allocation_failures_total",
            "Allocation attempts that failed",
        )
        .expect("valid metric");
        let config_loaded = IntGauge::new(
            "ferrolb_config_loaded",
            "1 when a valid configuration is in force",
        )
        .expect("valid metric");
        let config_stale = IntGauge::new(
            "ferrolb_config_stale",
            "1 when the newest configuration was rejected and an older one (or none) is in force",
        )
        .expect("valid metric");
        let reconcile_duration = Histogram::with_opts(
            HistogramOpts::new(
                "ferrolb_reconcile_duration_seconds",
                "Time to reconcile one batch of changes, in seconds",
            )
            .buckets(prometheus::exponential_buckets(0.0001, 4.0, 10).expect("valid buckets")),
        )
        .expect("valid metric");
        for c in [
            Box::new(pool_capacity.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(pool_in_use.clone()),
            Box::new(services_allocated.clone()),
            Box::new(services_waiting.clone()),
            Box::new(allocation_failures.clone()),
            Box::new(config_loaded.clone()),
            Box::new(config_stale.clone()),
            Box::new(reconcile_duration.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Arc::new(Metrics {
            registry,
            pool_capacity,
            pool_in_use,
            services_allocated,
            services_waiting,
            allocation_failures,
            config_loaded,
            config_stale,
            reconcile_duration,
            ready: AtomicBool::new(false),
        })
    }

    /// Replace the per-pool gauges (pools that went away disappear).
    pub fn set_pools(&self, stats: &[PoolStats]) {
        self.pool_capacity.reset();
        self.pool_in_use.reset();
        let clamp = |v: u128| i64::try_from(v).unwrap_or(i64::MAX);
        for s in stats {
            for (family, cap, used) in [
                ("ipv4", s.capacity_v4, s.in_use_v4),
                ("ipv6", s.capacity_v6, s.in_use_v6),
            ] {
                if cap > 0 {
                    self.pool_capacity
                        .with_label_values(&[&s.name, family])
                        .set(clamp(cap));
                    self.pool_in_use
                        .with_label_values(&[&s.name, family])
                        .set(clamp(used));
                }
            }
        }
    }

    pub fn render(&self) -> String {
        http::render(&self.registry)
    }
}

impl Exporter for Metrics {
    fn render(&self) -> String {
        Metrics::render(self)
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Serve `/metrics`, `/healthz` and `/readyz` on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    http::serve(addr, metrics).await
}
