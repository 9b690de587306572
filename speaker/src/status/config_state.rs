//! The speaker's own `ConfigurationState` (`speaker.<node>` in the speaker's namespace, or
//! `configurationstate.yaml` in its standalone report directory): whether the configuration
//! this speaker reads is the one in force here, with every error. A speaker validates its own
//! view of the configuration, which can differ from the controller's (a lagging watch, a
//! controller that is down, a Secret only the speaker reads), so each says its own verdict.
//!
//! Follows the snapshots (it never holds up a mode) and writes only when the verdict changes.

use super::naming::{self, label_value};
use super::{Objects, STOP_TIMEOUT, StatusTarget, StatusTask, Writer};
use crate::snapshots::SnapshotReceiver;
use ferrolb_cluster::files::write_state;
use ferrolb_shared::config::{
    ConfigurationState, ConfigurationStateStatus, LABEL_NODE, configuration_state,
};
use ferrolb_shared::reconcile::summarize;
use ferrolb_shared::snapshot::Snapshot;
use std::collections::BTreeMap;
use tokio::sync::watch;

/// The name of `node`'s object, `speaker.<node>`: named like the per-Service status objects
/// (`<service>.<node>`), so a valid name whatever the node is called.
pub fn object_name(node: &str) -> String {
    naming::object_name("speaker", node)
}

/// The verdict a snapshot carries (pure).
pub fn verdict(node: &str, snapshot: &Snapshot) -> ConfigurationStateStatus {
    if snapshot.config_stale {
        return ConfigurationStateStatus::invalid("speaker", node, &snapshot.config_errors);
    }
    let summary = snapshot
        .config
        .as_deref()
        .map_or_else(|| "no configuration yet".to_string(), summarize);
    ConfigurationStateStatus::valid("speaker", node, summary)
}

/// Start the writer; [`StatusTask::stop`] ends it (and, in Kubernetes mode, deletes the
/// object).
pub fn spawn(
    target: StatusTarget,
    node: String,
    namespace: String,
    snapshots: SnapshotReceiver,
) -> StatusTask {
    StatusTask::spawn(tracing::info_span!("configuration_state"), |stopped| {
        run(target, node, namespace, snapshots, stopped)
    })
}

async fn run(
    target: StatusTarget,
    node: String,
    namespace: String,
    mut snapshots: SnapshotReceiver,
    mut stopped: watch::Receiver<bool>,
) {
    let name = object_name(&node);
    let writer = Writer::<ConfigurationState>::for_target(&target, &node);
    let mut last: Option<ConfigurationStateStatus> = None;
    loop {
        let snapshot = tokio::select! {
            s = snapshots.next() => match s { Some(s) => s, None => break },
            _ = stopped.changed() => break,
        };
        let status = verdict(&node, &snapshot);
        if last.as_ref() == Some(&status) {
            continue;
        }
        let mut object = configuration_state(&name, &namespace, status.clone());
        object.metadata.labels = Some(BTreeMap::from([(
            LABEL_NODE.to_string(),
            label_value(&node),
        )]));
        match (&target, &writer) {
            (StatusTarget::File(dir), _) => {
                if let Err(e) = write_state(dir, object) {
                    tracing::warn!("cannot write {}: {e}", dir.display());
                }
            }
            (_, Some(writer)) => {
                writer.set(Objects::from([((namespace.clone(), name.clone()), object)]));
            }
            _ => {}
        }
        last = Some(status);
    }
    // Stopping: the object goes with the speaker (as its ServiceL2Status objects do).
    if let Some(writer) = writer {
        writer.stop(STOP_TIMEOUT).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_shared::config::{ConfigError, Source};

    #[test]
    fn names_fit_whatever_the_node_is_called() {
        assert_eq!(object_name("node1"), "speaker.node1");
        let long = object_name(&"N_".repeat(200));
        assert!(long.len() <= 253, "{long}");
        let allowed =
            |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
        assert!(long.bytes().all(allowed), "{long}");
    }

    #[test]
    fn a_stale_snapshot_is_invalid_with_its_errors() {
        let mut s = Snapshot::default();
        assert_eq!(verdict("n", &s).summary, "no configuration yet");
        assert!(verdict("n", &s).is_valid());
        s.config_stale = true;
        s.config_errors = vec![ConfigError {
            source: Source::api(),
            kind: "BGPPeer".into(),
            name: "p".into(),
            field: "spec.bfdProfile".into(),
            message: "BFDProfile \"x\" does not exist".into(),
        }];
        let v = verdict("n", &s);
        assert!(!v.is_valid());
        assert_eq!(v.node, "n");
        assert_eq!(v.component, "speaker");
        assert!(v.errors[0].contains("spec.bfdProfile"), "{v:?}");
    }
}
