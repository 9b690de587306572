//! What a stopping speaker does with what it set up (`--on-stop auto|keep|clean`).
//!
//! Kubernetes sends the same SIGTERM for two opposite reasons:
//! - **uninstall** (`kubectl delete -f install.yaml`): nothing will replace the speaker, so it
//!   must leave the node clean: remove its forwarding, cease its BGP sessions with a
//!   NOTIFICATION (routers withdraw at once) and leave the layer 2 gossip ([`StopKind::Clean`]);
//! - **a restart** (a DaemonSet rolling update, `kubectl rollout restart`, a deleted pod): a
//!   new speaker follows within seconds and adopts what the kernel still holds, as after a
//!   crash, so the old one should leave the kernel's data path programmed and close its BGP
//!   connections *without* a NOTIFICATION: a router that negotiated graceful restart (RFC
//!   4724) then keeps the routes as stale until the new speaker's End-of-RIB, and established
//!   connections never notice ([`StopKind::Keep`]).
//!
//! `auto` tells them apart by asking the API server (the speaker gathers the [`Facts`], this
//! module decides): the pod is being deleted and its DaemonSet still exists and is not being
//! deleted, so the DaemonSet will start a new pod: keep. Anything else is clean: the DaemonSet
//! is gone or going (uninstall), the API refuses us (the uninstall deleted our RBAC), the pod
//! is not being deleted (the kubelet stops it for a node shutdown, where routers must not
//! keep routes to a node going away), or the answer is unknown (when in doubt, do what a
//! speaker always did on SIGTERM). Standalone mode has no DaemonSet: clean.

use std::fmt;
use std::str::FromStr;

/// `--on-stop`: what to do on SIGTERM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnStop {
    /// Ask the API server (see the module documentation).
    #[default]
    Auto,
    /// A restart follows: leave the data path, close BGP without a NOTIFICATION.
    Keep,
    /// Nothing follows: remove everything, cease BGP sessions.
    Clean,
}

impl OnStop {
    pub const ALL: [OnStop; 3] = [OnStop::Auto, OnStop::Keep, OnStop::Clean];

    pub fn name(self) -> &'static str {
        match self {
            OnStop::Auto => "auto",
            OnStop::Keep => "keep",
            OnStop::Clean => "clean",
        }
    }
}

impl fmt::Display for OnStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--on-stop` named no known behaviour.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown --on-stop {0:?}: use auto, keep or clean")]
pub struct UnknownOnStop(String);

impl FromStr for OnStop {
    type Err = UnknownOnStop;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OnStop::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| UnknownOnStop(s.to_string()))
    }
}

/// How a speaker stops, once decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    Keep,
    Clean,
}

/// What the speaker learnt about its pod and the pod's DaemonSet when told to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Facts {
    /// Standalone mode (a manifest directory): no API server, no DaemonSet.
    Standalone,
    /// Kubernetes mode without `FERROLB_POD_NAME`: the pod cannot be looked up.
    NoPodName,
    /// The API server answered 403 (our RBAC was deleted, as by an uninstall).
    Forbidden,
    /// Our pod no longer exists (force-deleted).
    PodGone,
    /// Our pod has no controlling DaemonSet (run by hand, or by something else).
    NoDaemonSet,
    /// The DaemonSet and the pod, as the API server has them.
    Found {
        /// The pod has a deletionTimestamp: someone (the DaemonSet controller on an update)
        /// deleted it. The kubelet's own stops (node shutdown, a failed liveness probe) set
        /// none.
        pod_deleting: bool,
        /// The DaemonSet exists (`false`: 404).
        daemonset: bool,
        /// The DaemonSet has a deletionTimestamp (foreground deletion).
        daemonset_deleting: bool,
    },
    /// Any other failure (timeout, server error, unreachable), with what went wrong.
    Unknown(String),
}

/// The stop to carry out, and why (for the log).
pub fn decide(flag: OnStop, facts: &Facts) -> (StopKind, String) {
    match flag {
        OnStop::Keep => return (StopKind::Keep, "--on-stop keep".into()),
        OnStop::Clean => return (StopKind::Clean, "--on-stop clean".into()),
        OnStop::Auto => {}
    }
    let clean = |why: &str| (StopKind::Clean, format!("--on-stop auto: {why}"));
    match facts {
        Facts::Standalone => clean("standalone mode, no DaemonSet will restart this speaker"),
        Facts::NoPodName => clean("FERROLB_POD_NAME is not set, the pod cannot be looked up"),
        Facts::Forbidden => clean("the API server refuses the lookup (RBAC removed: uninstall)"),
        Facts::PodGone => clean("the pod is gone"),
        Facts::NoDaemonSet => clean("the pod has no DaemonSet to restart it"),
        Facts::Found {
            daemonset: false, ..
        } => clean("the DaemonSet is gone (uninstall)"),
        Facts::Found {
            daemonset_deleting: true,
            ..
        } => clean("the DaemonSet is being deleted (uninstall)"),
        Facts::Found {
            pod_deleting: false,
            ..
        } => clean("the pod is not being deleted (node shutdown or the kubelet's own restart)"),
        Facts::Found { .. } => (
            StopKind::Keep,
            "--on-stop auto: the DaemonSet replaces this pod (rolling update or restart)".into(),
        ),
        Facts::Unknown(e) => clean(&format!("the lookup failed ({e}); stopping as always")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(pod_deleting: bool, daemonset: bool, daemonset_deleting: bool) -> Facts {
        Facts::Found {
            pod_deleting,
            daemonset,
            daemonset_deleting,
        }
    }

    #[test]
    fn explicit_flags_win_whatever_the_facts() {
        for facts in [
            Facts::Standalone,
            found(true, true, false),
            Facts::Forbidden,
        ] {
            assert_eq!(decide(OnStop::Keep, &facts).0, StopKind::Keep);
            assert_eq!(decide(OnStop::Clean, &facts).0, StopKind::Clean);
        }
    }

    #[test]
    fn auto_keeps_only_when_the_daemonset_replaces_the_pod() {
        assert_eq!(
            decide(OnStop::Auto, &found(true, true, false)),
            (
                StopKind::Keep,
                "--on-stop auto: the DaemonSet replaces this pod (rolling update or restart)"
                    .to_string()
            )
        );
        let clean = [
            (Facts::Standalone, "standalone mode"),
            (Facts::NoPodName, "FERROLB_POD_NAME"),
            (Facts::Forbidden, "RBAC removed"),
            (Facts::PodGone, "the pod is gone"),
            (Facts::NoDaemonSet, "no DaemonSet"),
            (found(true, false, false), "the DaemonSet is gone"),
            (found(true, true, true), "being deleted"),
            (found(false, true, false), "node shutdown"),
            (Facts::Unknown("timed out".into()), "timed out"),
        ];
        for (facts, why) in clean {
            let (kind, reason) = decide(OnStop::Auto, &facts);
            assert_eq!(kind, StopKind::Clean, "{facts:?}");
            assert!(reason.contains(why), "{facts:?}: {reason}");
        }
    }

    #[test]
    fn flag_names_parse_and_others_are_refused() {
        for o in OnStop::ALL {
            assert_eq!(o.name().parse::<OnStop>(), Ok(o));
        }
        assert_eq!(OnStop::default(), OnStop::Auto);
        assert_eq!(
            "restart".parse::<OnStop>().unwrap_err().to_string(),
            "unknown --on-stop \"restart\": use auto, keep or clean"
        );
    }
}
