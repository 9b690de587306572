//! The speaker's Prometheus metrics, served by the shared `/metrics` `/healthz` `/readyz`
//! server ([`ferrolb_cluster::http`]).

use crate::dataplane::Mode;
use ferrolb_cluster::http::{self, Exporter};
use ferrolb_shared::snapshot::{ConfigStatus, Summary};
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The speaker's metrics, registered once in their own registry.
pub struct Metrics {
    pub registry: Registry,
    pub config_loaded: IntGauge,
    pub config_stale: IntGauge,
    pub services: IntGauge,
    pub lb_ips: IntGauge,
    pub endpoint_slices: IntGauge,
    pub endpoints: IntGauge,
    pub nodes: IntGauge,
    pub secrets: IntGauge,
    pub generation: IntGauge,
    pub events: IntCounter,
    pub batch_duration: Histogram,
    /// 1 for the selected data path, 0 for the others.
    pub dataplane: IntGaugeVec,
    /// Layer 2: 1 per IP this node announces.
    pub l2_announced: IntGaugeVec,
    /// The layer 2 addresses this speaker's election gives to some node (any node): with
    /// `l2_announced` of every speaker, "announced by none" and "by two" are queries.
    pub l2_elected: IntGaugeVec,
    pub l2_requests: IntCounterVec,
    pub l2_replies: IntCounterVec,
    pub l2_gratuitous: IntCounterVec,
    pub l2_dropped: IntCounterVec,
    pub gossip_members: IntGauge,
    pub gossip_datagrams: IntCounterVec,
    /// BGP, per peer (`BGPPeer` name): 1 while the session is Established.
    pub bgp_session_up: IntGaugeVec,
    pub bgp_updates_sent: IntCounterVec,
    pub bgp_updates_received: IntCounterVec,
    /// 1 for the peer's last error (one series per peer; the previous error's is removed).
    /// An info-style gauge rather than a counter of downs by reason: the issue asks for the
    /// last error, which is state ("why is this peer not up now?"), and it includes failures
    /// that never were a session (connection refused), which a count of downs would miss.
    pub bgp_last_error: IntGaugeVec,
    pub bgp_prefixes_advertised: IntGaugeVec,
    /// 1 while the BFD session with this BGP peer is Up.
    pub bfd_session_up: IntGaugeVec,
    /// BFD datagrams dropped before reaching a session, by reason (ttl, malformed,
    /// unknown_peer).
    pub bfd_discarded: IntCounterVec,
    /// Set once the first snapshot is published.
    pub ready: AtomicBool,
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric")
}

fn counter_vec(name: &str, help: &str, label: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric")
}

fn gauge_vec(name: &str, help: &str, label: &str) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), &[label]).expect("valid metric")
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let m = Metrics {
            config_loaded: gauge(
                "ferrolb_speaker_config_loaded",
                "1 when a valid configuration is in force",
            ),
            config_stale: gauge(
                "ferrolb_speaker_config_stale",
                "1 when the newest configuration was rejected and an older one (or none) is in force",
            ),
            services: gauge(
                "ferrolb_speaker_snapshot_services",
                "Services in the speaker's current cluster snapshot",
            ),
            lb_ips: gauge(
                "ferrolb_speaker_snapshot_loadbalancer_ips",
                "Addresses in the status of the snapshot's Services",
            ),
            endpoint_slices: gauge(
                "ferrolb_speaker_snapshot_endpoint_slices",
                "EndpointSlices in the current snapshot",
            ),
            endpoints: gauge(
                "ferrolb_speaker_snapshot_endpoints",
                "Endpoints in the current snapshot's EndpointSlices",
            ),
            nodes: gauge(
                "ferrolb_speaker_snapshot_nodes",
                "Nodes in the current snapshot",
            ),
            secrets: gauge(
                "ferrolb_speaker_snapshot_secrets",
                "Secrets of the speaker's namespace in the current snapshot",
            ),
            generation: gauge(
                "ferrolb_speaker_snapshot_generation",
                "Snapshots published since start (the current one's number)",
            ),
            events: IntCounter::new(
                "ferrolb_speaker_cluster_events_total",
                "Events received from the cluster source",
            )
            .expect("valid metric"),
            batch_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "ferrolb_speaker_snapshot_batch_duration_seconds",
                    "Time to apply one batch of cluster events and publish the snapshot, in seconds",
                )
                .buckets(prometheus::exponential_buckets(0.0001, 4.0, 10).expect("valid buckets")),
            )
            .expect("valid metric"),
            dataplane: IntGaugeVec::new(
                Opts::new(
                    "ferrolb_speaker_dataplane",
                    "1 for the data path this speaker runs (--dataplane), 0 for the others",
                ),
                &["mode"],
            )
            .expect("valid metric"),
            l2_announced: IntGaugeVec::new(
                Opts::new(
                    "ferrolb_l2_announced",
                    "1 for each address this node announces with ARP/NDP",
                ),
                &["ip"],
            )
            .expect("valid metric"),
            l2_elected: gauge_vec(
                "ferrolb_l2_elected",
                "1 for each layer 2 address this speaker's election gives to some node (any node, not only this one)",
                "ip",
            ),
            l2_requests: counter_vec(
                "ferrolb_l2_requests_received_total",
                "ARP requests and neighbor solicitations received for an announced address",
                "ip",
            ),
            l2_replies: counter_vec(
                "ferrolb_l2_responses_sent_total",
                "ARP replies and neighbor advertisements sent for an announced address",
                "ip",
            ),
            l2_gratuitous: counter_vec(
                "ferrolb_l2_gratuitous_sent_total",
                "Gratuitous ARP frames and unsolicited neighbor advertisements sent for an address",
                "ip",
            ),
            l2_dropped: counter_vec(
                "ferrolb_l2_frames_dropped_total",
                "ARP/NDP frames dropped (malformed, rate_limited, lease_expired: this speaker was frozen) and replies not sent (send_error)",
                "reason",
            ),
            gossip_members: gauge(
                "ferrolb_gossip_members",
                "Speakers this one sees alive through gossip, itself included",
            ),
            gossip_datagrams: counter_vec(
                "ferrolb_gossip_datagrams_total",
                "Gossip datagrams received, by outcome (accepted, bad_auth, malformed)",
                "outcome",
            ),
            bgp_session_up: gauge_vec(
                "ferrolb_bgp_session_up",
                "1 while the BGP session with this peer is Established",
                "peer",
            ),
            bgp_updates_sent: counter_vec(
                "ferrolb_bgp_updates_sent_total",
                "BGP UPDATE messages sent to this peer (End-of-RIB markers included)",
                "peer",
            ),
            bgp_updates_received: counter_vec(
                "ferrolb_bgp_updates_received_total",
                "BGP UPDATE messages received from this peer (never installed)",
                "peer",
            ),
            bgp_last_error: IntGaugeVec::new(
                Opts::new(
                    "ferrolb_bgp_last_error_info",
                    "1 for the last error of the BGP session with this peer (ours or the peer's NOTIFICATION, connection closed or refused)",
                ),
                &["peer", "error"],
            )
            .expect("valid metric"),
            bgp_prefixes_advertised: gauge_vec(
                "ferrolb_bgp_announced_prefixes",
                "Prefixes this peer has from this node",
                "peer",
            ),
            bfd_session_up: gauge_vec(
                "ferrolb_bfd_session_up",
                "1 while the BFD session with this BGP peer is Up",
                "peer",
            ),
            bfd_discarded: counter_vec(
                "ferrolb_bfd_packets_discarded_total",
                "BFD datagrams dropped before reaching a session: ttl (not 255, so not from the link: RFC 5881), malformed, unknown_peer",
                "reason",
            ),
            ready: AtomicBool::new(false),
            registry,
        };
        for c in [
            Box::new(m.config_loaded.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.config_stale.clone()),
            Box::new(m.services.clone()),
            Box::new(m.lb_ips.clone()),
            Box::new(m.endpoint_slices.clone()),
            Box::new(m.endpoints.clone()),
            Box::new(m.nodes.clone()),
            Box::new(m.secrets.clone()),
            Box::new(m.generation.clone()),
            Box::new(m.events.clone()),
            Box::new(m.batch_duration.clone()),
            Box::new(m.dataplane.clone()),
            Box::new(m.l2_announced.clone()),
            Box::new(m.l2_elected.clone()),
            Box::new(m.l2_requests.clone()),
            Box::new(m.l2_replies.clone()),
            Box::new(m.l2_gratuitous.clone()),
            Box::new(m.l2_dropped.clone()),
            Box::new(m.gossip_members.clone()),
            Box::new(m.gossip_datagrams.clone()),
            Box::new(m.bgp_session_up.clone()),
            Box::new(m.bgp_updates_sent.clone()),
            Box::new(m.bgp_updates_received.clone()),
            Box::new(m.bgp_last_error.clone()),
            Box::new(m.bgp_prefixes_advertised.clone()),
            Box::new(m.bfd_session_up.clone()),
            Box::new(m.bfd_discarded.clone()),
        ] {
            m.registry.register(c).expect("metric registered once");
        }
        Arc::new(m)
    }

    /// Record which data path runs (after `auto` is resolved): one label per runnable mode.
    pub fn set_dataplane(&self, selected: Mode) {
        for mode in Mode::RUNNABLE {
            self.dataplane
                .with_label_values(&[mode.name()])
                .set(i64::from(mode == selected));
        }
    }

    /// Describe a newly published snapshot.
    pub fn set_snapshot(&self, generation: u64, s: &Summary) {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.config_loaded.set(i64::from(s.config_loaded));
        self.config_stale
            .set(i64::from(s.config == ConfigStatus::Stale));
        self.services.set(n(s.services));
        self.lb_ips.set(n(s.lb_ips));
        self.endpoint_slices.set(n(s.endpoint_slices));
        self.endpoints.set(n(s.endpoints));
        self.nodes.set(n(s.nodes));
        self.secrets.set(n(s.secrets));
        self.generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
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
