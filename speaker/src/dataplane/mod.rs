//! The forwarding layer's driver: every published snapshot becomes the node's virtual server
//! table (`ferrolb_shared::ipvs::build`), and the selected data path is brought in line with it.
//!
//! ```text
//!  SnapshotReceiver ──▶ Programmer: TableBuilder (only the Services that changed are rebuilt)
//!                         ├─▶ ipvs: IpvsPath (the kernel's IPVS table, the dummy interface
//!                         │         with the service addresses, nftables marks and SNAT)
//!                         ├─▶ nftables: NftablesDataplane (DNAT in the kernel)
//!                         ├─▶ userspace: UserspaceProxy (listeners) + nftables redirects
//!                         └─▶ both: HealthChecks (health-check node ports of Local Services),
//!                             after the data path is programmed; 503 while it cannot be
//! ```
//!
//! A program the kernel refuses is retried whole, with backoff (200 ms doubling to 10 s),
//! until it succeeds.
//!
//! On a clean stop ([`Dataplane::stop`] with [`StopKind::Clean`]) what FerroLB programmed is
//! removed (nftables tables, IPVS virtual servers, the dummy interface); if the speaker
//! crashes, or stops for a restart ([`StopKind::Keep`]), it stays, and the kernel keeps
//! forwarding until the next speaker takes over (it adopts what it finds).
//!
//! `--dataplane auto` (the default) is resolved once at start ([`resolve`]): ipvs where the
//! kernel offers IPVS, nftables where it does not.

pub mod conntrack;
pub mod healthcheck;
pub mod ipvs;
pub mod nftables;
pub mod program;
pub mod userspace;

use crate::events::Events;
use crate::snapshots::SnapshotReceiver;
use ferrolb_shared::stop::StopKind;
pub use program::{Programmer, Settings};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// Which data path forwards traffic on this node (`--dataplane`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The kernel's IPVS (what `ipvsadm -Ln` shows), with nftables for marks and SNAT.
    Ipvs,
    /// The kernel fast path, programmed through nftables.
    Nftables,
    /// A userspace proxy (no kernel programming).
    Userspace,
    /// Stand aside: kube-proxy or another data path forwards.
    None,
    /// ipvs if the kernel offers it, else nftables: resolved at start ([`resolve`]).
    Auto,
}

impl Mode {
    /// Every name `--dataplane` accepts.
    pub const ALL: [Mode; 5] = [
        Mode::Ipvs,
        Mode::Nftables,
        Mode::Userspace,
        Mode::None,
        Mode::Auto,
    ];
    /// The data paths a speaker can run (what `auto` resolves to, and the metric's labels).
    pub const RUNNABLE: [Mode; 4] = [Mode::Ipvs, Mode::Nftables, Mode::Userspace, Mode::None];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Ipvs => "ipvs",
            Mode::Nftables => "nftables",
            Mode::Userspace => "userspace",
            Mode::None => "none",
            Mode::Auto => "auto",
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
#[error("unknown data path {0:?}: use auto, ipvs, nftables, userspace or none")]
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

/// The data path `mode` runs as on this node, and why. `auto` is ipvs when the kernel offers
/// IPVS (asking for its netlink family loads `ip_vs` where it is a module), nftables when not;
/// every other mode is itself.
pub fn resolve(mode: Mode) -> (Mode, String) {
    if mode != Mode::Auto {
        return (mode, format!("--dataplane {mode}"));
    }
    match ipvs::socket::IpvsSocket::open() {
        Ok(_) => (
            Mode::Ipvs,
            "--dataplane auto: the kernel offers IPVS (the ip_vs module answers)".to_string(),
        ),
        Err(e) => (
            Mode::Nftables,
            format!("--dataplane auto: the kernel offers no IPVS ({e}); using nftables"),
        ),
    }
}

/// A running data path.
pub struct Dataplane {
    stop: watch::Sender<Option<StopKind>>,
    task: JoinHandle<()>,
}

impl Dataplane {
    /// Stop: with [`StopKind::Clean`] remove what was programmed, with [`StopKind::Keep`]
    /// leave it to the next speaker; then return (at most a few seconds).
    pub async fn stop(mut self, kind: StopKind) {
        let _ = self.stop.send(Some(kind));
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        // Not stopped cleanly (the speaker is going down hard): leave the kernel programmed.
        if !self.task.is_finished() && self.stop.borrow().is_none() {
            self.task.abort();
        }
    }
}

/// Start the data path, following `snapshots` until stopped.
pub fn spawn(settings: Settings, snapshots: SnapshotReceiver, events: Events) -> Dataplane {
    let (stop, stopped) = watch::channel(None);
    let span = tracing::info_span!("dataplane", mode = %settings.mode);
    debug_assert_ne!(settings.mode, Mode::Auto, "resolve the mode first");
    let programmer = Programmer::new(&settings).with_events(events);
    let task = tokio::spawn(drive(settings, programmer, snapshots, stopped).instrument(span));
    Dataplane { stop, task }
}

/// First and longest wait before programming everything again after a failure.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

async fn drive(
    settings: Settings,
    mut programmer: Programmer,
    mut snapshots: SnapshotReceiver,
    mut stopped: watch::Receiver<Option<StopKind>>,
) {
    tracing::info!("data path {} selected", settings.mode);
    let mut backoff = RETRY_FIRST;
    let retry_at = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(retry_at);
    // The IPVS path's next look at its draining real servers: set once, kept while snapshots
    // come (so a stream of them cannot postpone it), and brought forward if one is due sooner.
    let drain_at = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(drain_at);
    let mut drain_due: Option<std::time::Instant> = None;
    loop {
        if let Some(at) = programmer.next_drain_check()
            && drain_due.is_none_or(|due| at < due)
        {
            drain_due = Some(at);
            drain_at.as_mut().reset(at.into());
        }
        let outcome = tokio::select! {
            s = snapshots.next() => match s {
                Some(s) => {
                    let outcome = programmer.on_snapshot(&s).await;
                    if outcome.failed.is_none() && outcome.touched > 0 {
                        tracing::debug!(
                            generation = s.generation,
                            touched = outcome.touched,
                            full = outcome.full,
                            "data path programmed"
                        );
                    }
                    outcome
                }
                None => break,
            },
            () = &mut retry_at, if programmer.failed() => programmer.retry().await,
            () = &mut drain_at, if drain_due.is_some() && !programmer.failed() => {
                drain_due = None;
                programmer.drain().await
            }
            _ = stopped.changed() => break,
        };
        match outcome.failed {
            Some(e) => {
                tracing::error!(retry_in = ?backoff, "cannot program the data path: {e}");
                retry_at
                    .as_mut()
                    .reset(tokio::time::Instant::now() + backoff);
                backoff = (backoff * 2).min(RETRY_MAX);
            }
            None if !programmer.failed() => backoff = RETRY_FIRST,
            None => {}
        }
    }
    if *stopped.borrow() == Some(StopKind::Keep) {
        // Dropping the programmer closes its sockets and in-process listeners only.
        tracing::info!("data path left programmed for the next speaker");
    } else {
        programmer.shutdown().await;
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
        let err = "iptables".parse::<Mode>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown data path \"iptables\": use auto, ipvs, nftables, userspace or none"
        );
    }

    /// `auto` itself is resolved in the labs' namespaces only (asking the kernel for IPVS may
    /// load a module): `auto_is_nftables_on_a_kernel_without_ipvs` on the host and
    /// `ipvs_is_what_auto_picks_on_a_kernel_with_ipvs` in the VM lab.
    #[test]
    fn every_other_mode_is_itself() {
        for m in Mode::RUNNABLE {
            assert_eq!(resolve(m), (m, format!("--dataplane {m}")));
        }
    }
}
