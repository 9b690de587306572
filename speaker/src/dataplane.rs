//! The hook for the forwarding layer. The data paths themselves (nftables, userspace) are
//! built in their own issue; this is where they plug in: [`spawn`] receives the selected
//! [`Mode`] and a [`SnapshotReceiver`], and runs until the speaker stops.
//!
//! A data path's loop is expected to look like this:
//!
//! ```text
//! let mut programmed = Table::default();
//! while let Some(snapshot) = snapshots.next().await {
//!     let (table, warnings) = snapshot.table(&options);   // ferrolb_shared::ipvs::build
//!     apply(programmed.diff(&table));                     // only what changed
//!     programmed = table;
//! }
//! ```

use crate::snapshots::SnapshotReceiver;
use ferrolb_shared::ipvs::build::Options;
use std::fmt;
use std::str::FromStr;
use tokio::task::JoinHandle;
use tracing::Instrument;

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

/// Start the data path for `mode`, consuming `snapshots` until the speaker stops.
///
/// Not built yet: every mode only follows the snapshots (and, at debug level, says how many
/// virtual servers it would program), so the speaker forwards nothing by itself.
pub fn spawn(mode: Mode, mut snapshots: SnapshotReceiver) -> JoinHandle<()> {
    let span = tracing::info_span!("dataplane", %mode);
    tokio::spawn(
        async move {
            if mode != Mode::None {
                tracing::warn!("the {mode} data path is not implemented yet: forwarding nothing");
            }
            while let Some(snapshot) = snapshots.next().await {
                if mode != Mode::None && tracing::enabled!(tracing::Level::DEBUG) {
                    let (table, warnings) = snapshot.table(&Options::default());
                    tracing::debug!(
                        generation = snapshot.generation,
                        virtual_servers = table.servers.len(),
                        warnings = warnings.len(),
                        "would program"
                    );
                }
            }
        }
        .instrument(span),
    )
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
