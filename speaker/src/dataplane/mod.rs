//! The forwarding layer's driver: every published snapshot becomes the node's virtual server
//! table (`ferrolb_shared::ipvs::build`), and the selected data path is brought in line with it.
//!
//! ```text
//!  SnapshotReceiver ──▶ Snapshot::table ──▶ nftables: NftablesDataplane (DNAT in the kernel)
//!                                       ├─▶ userspace: UserspaceProxy (listeners) + nftables
//!                                       │   redirects to their ports
//!                                       └─▶ both: HealthChecks (health-check node ports of
//!                                           Local Services), after the data path is programmed
//! ```
//!
//! On a clean stop ([`Dataplane::stop`]) FerroLB's nftables tables are removed; if the speaker
//! crashes they stay, and the kernel keeps forwarding until the next speaker takes over.

pub mod conntrack;
pub mod healthcheck;
pub mod nftables;
pub mod userspace;

use crate::snapshots::SnapshotReceiver;
use ferrolb_shared::ipvs::build::Options;
use ferrolb_shared::ipvs::model::Table;
use healthcheck::HealthChecks;
use nftables::NftablesDataplane;
use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;
use userspace::UserspaceProxy;

/// Which data path forwards traffic on this node (`--dataplane`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The kernel fast path, programmed through nftables.
    Nftables,
    /// A userspace proxy (no kernel programming).
    Userspace,
    /// Stand aside: kube-proxy or another data path forwards.
    None,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Nftables, Mode::Userspace, Mode::None];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Nftables => "nftables",
            Mode::Userspace => "userspace",
            Mode::None => "none",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--dataplane` named no known data path.
#[derive(Debug, thiserror::Error)]
#[error("unknown data path {0:?}: use nftables, userspace or none")]
pub struct UnknownMode(String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownMode(s.to_string()))
    }
}

/// A running data path.
pub struct Dataplane {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Dataplane {
    /// Stop cleanly: remove what was programmed, then return (at most a few seconds).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        // Not stopped cleanly (the speaker is going down hard): leave the kernel programmed.
        if !self.task.is_finished() && !*self.stop.borrow() {
            self.task.abort();
        }
    }
}

/// Start the data path for `mode`, following `snapshots` until stopped.
pub fn spawn(mode: Mode, snapshots: SnapshotReceiver) -> Dataplane {
    let (stop, stopped) = watch::channel(false);
    let span = tracing::info_span!("dataplane", %mode);
    let task = tokio::spawn(drive(mode, snapshots, stopped).instrument(span));
    Dataplane { stop, task }
}

async fn drive(mode: Mode, mut snapshots: SnapshotReceiver, mut stopped: watch::Receiver<bool>) {
    let options = Options::default();
    let mut nft = match mode {
        Mode::Nftables => Some(NftablesDataplane::kernel()),
        Mode::Userspace => Some(NftablesDataplane::proxy()),
        Mode::None => None,
    };
    let mut proxy = (mode == Mode::Userspace).then(|| {
        UserspaceProxy::new(
            userspace::DEFAULT_PORTS,
            userspace::DEFAULT_UDP_IDLE_TIMEOUT,
        )
    });
    // Whoever forwards for the node answers its health checks; with `none` that is someone
    // else (kube-proxy), which would hold the ports.
    let mut health = (mode != Mode::None).then(|| HealthChecks::new(Ipv6Addr::UNSPECIFIED.into()));
    let mut reported: BTreeSet<String> = BTreeSet::new();
    tracing::info!("data path {mode} selected");
    loop {
        let snapshot = tokio::select! {
            s = snapshots.next() => match s { Some(s) => s, None => break },
            _ = stopped.changed() => break,
        };
        let (table, warnings) = snapshot.table(&options);
        for w in warnings {
            report_once(&mut reported, format!("{}: {}", w.service, w.message));
        }
        if let Some(nft) = nft.as_mut() {
            match program(nft, proxy.as_mut(), &table, &mut reported).await {
                Ok(()) => tracing::debug!(
                    generation = snapshot.generation,
                    virtual_servers = table.servers.len(),
                    "data path programmed"
                ),
                Err(e) => tracing::error!("cannot program the data path: {e}"),
            }
        }
        // After the data path, so a 200 never announces a node that does not forward yet.
        if let Some(h) = health.as_mut() {
            for e in h.apply(&table.health_checks).await {
                report_once(&mut reported, e.to_string());
            }
        }
    }
    if let Some(h) = health.as_mut() {
        h.shutdown();
    }
    if let Some(p) = proxy.as_mut() {
        p.shutdown();
    }
    if let Some(nft) = nft.as_mut() {
        match nft.remove().await {
            Ok(()) => tracing::info!("nftables tables removed"),
            Err(e) => tracing::warn!("cannot remove the nftables tables: {e}"),
        }
    }
}

/// Bring the proxy's listeners (userspace path) and the nftables program in line with `table`.
async fn program(
    nft: &mut NftablesDataplane,
    proxy: Option<&mut UserspaceProxy>,
    table: &Table,
    reported: &mut BTreeSet<String>,
) -> Result<(), nftables::NftError> {
    let ports = match proxy {
        Some(p) => {
            let (ports, errors) = p.apply(table).await;
            for e in errors {
                report_once(reported, e.to_string());
            }
            ports
        }
        None => {
            for u in nft.unsupported(table) {
                // Named by Service first, as the table builder's warnings are.
                let service = table.servers.get(&u.vs).map(|v| v.service.to_string());
                report_once(reported, format!("{}: {u}", service.unwrap_or_default()));
            }
            Default::default()
        }
    };
    nft.apply(table, &ports).await
}

/// Log a problem the first time it is seen, not on every snapshot.
fn report_once(seen: &mut BTreeSet<String>, message: String) {
    if seen.insert(message.clone()) {
        tracing::error!("{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_by_name_only() {
        for m in Mode::ALL {
            assert_eq!(m.name().parse::<Mode>().unwrap(), m);
        }
        let err = "ipvs".parse::<Mode>().unwrap_err();
        assert!(err.to_string().contains("\"ipvs\""), "{err}");
    }
}
