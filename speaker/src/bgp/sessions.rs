//! BGP session state for operators: one `BGPSessionState` per (node, peer) in the speaker's
//! namespace (`kubectl get bgpsessionstates`), or `sessions.yaml` in the standalone report
//! directory (the same objects, one YAML document each).
//!
//! Each peer task posts its session's state on a shared board whenever it exports its
//! metrics (so the two never disagree); a writer task follows the board and writes only what
//! changed, never holding up a session.
//!
//! ```text
//!  peer tasks ── post() ──▶ watch<Board> ──▶ writer task ──▶ API server | sessions.yaml
//! ```

use crate::status::{Objects, STOP_TIMEOUT, StatusKind, StatusTarget, StatusTask, Writer};
use ferrolb_cluster::files::write_atomic;
use ferrolb_shared::config::{BGPSessionState, BGPSessionStateStatus, LABEL_NODE};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// Each peer's session state, by `BGPPeer` name (the `node` field is the writer's to fill).
pub type Sessions = BTreeMap<String, BGPSessionStateStatus>;

/// Where the peer tasks post their state. Cheap to clone.
#[derive(Clone)]
pub struct Board(Arc<watch::Sender<Sessions>>);

impl Default for Board {
    fn default() -> Self {
        Board(Arc::new(watch::channel(Sessions::new()).0))
    }
}

impl Board {
    /// `peer`'s session is now `state` (a no-op when nothing changed).
    pub fn post(&self, peer: &str, state: BGPSessionStateStatus) {
        self.0.send_if_modified(|s| {
            let changed = s.get(peer) != Some(&state);
            if changed {
                s.insert(peer.to_string(), state);
            }
            changed
        });
    }

    /// `peer` is gone (its `BGPPeer` was deleted or no longer selects this node).
    pub fn forget(&self, peer: &str) {
        self.0.send_if_modified(|s| s.remove(peer).is_some());
    }

    fn subscribe(&self) -> watch::Receiver<Sessions> {
        self.0.subscribe()
    }
}

/// The objects of `node` for `sessions` (pure): `<peer>.<node>` in `namespace`, labelled with
/// the node.
pub fn objects(node: &str, namespace: &str, sessions: &Sessions) -> Objects<BGPSessionState> {
    sessions
        .iter()
        .map(|(peer, state)| {
            let name = crate::status::naming::object_name(peer, node);
            let metadata = ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.to_string()),
                labels: Some(BTreeMap::from([(
                    LABEL_NODE.to_string(),
                    crate::status::naming::label_value(node),
                )])),
                ..Default::default()
            };
            let mut status = state.clone();
            status.node = node.to_string();
            (
                (namespace.to_string(), name),
                BGPSessionState::assemble(metadata, Some(status)),
            )
        })
        .collect()
}

/// Start the writer of `node`'s sessions; [`StatusTask::stop`] ends it (and, in Kubernetes
/// mode, deletes this node's objects).
pub fn start(target: &StatusTarget, node: &str, namespace: &str, board: &Board) -> StatusTask {
    let (target, node, namespace) = (target.clone(), node.to_string(), namespace.to_string());
    let board = board.subscribe();
    StatusTask::spawn(tracing::info_span!("bgpsessions"), |stopped| {
        run(target, node, namespace, board, stopped)
    })
}

async fn run(
    target: StatusTarget,
    node: String,
    namespace: String,
    mut board: watch::Receiver<Sessions>,
    mut stopped: watch::Receiver<bool>,
) {
    let writer = Writer::<BGPSessionState>::for_target(&target, &node);
    loop {
        let sessions = board.borrow_and_update().clone();
        let objects = objects(&node, &namespace, &sessions);
        match (&target, &writer) {
            (StatusTarget::File(dir), _) => {
                if let Err(e) = write_file(dir, &objects) {
                    tracing::warn!("cannot write sessions.yaml in {}: {e}", dir.display());
                }
            }
            (_, Some(writer)) => writer.set(objects),
            _ => {}
        }
        tokio::select! {
            r = board.changed() => if r.is_err() { break },
            _ = stopped.changed() => break,
        }
    }
    if let Some(writer) = writer {
        writer.stop(STOP_TIMEOUT).await;
    }
}

/// `sessions.yaml`: the objects, one YAML document each (what `kubectl get -o yaml` shows).
fn write_file(dir: &Path, objects: &Objects<BGPSessionState>) -> std::io::Result<()> {
    let mut text = String::from("# written by ferrolb-speaker: this node's BGP sessions\n");
    for object in objects.values() {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(object).unwrap_or_default());
    }
    write_atomic(&dir.join("sessions.yaml"), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_keeps_one_entry_per_peer_and_objects_name_both() {
        let board = Board::default();
        let rx = board.subscribe();
        let up = BGPSessionStateStatus {
            peer: "tor".into(),
            bgp_status: "Established".into(),
            ..Default::default()
        };
        board.post("tor", up.clone());
        board.post("tor", up.clone());
        assert_eq!(rx.borrow().len(), 1);
        let o = objects("node1", "ferrolb-system", &rx.borrow());
        let ((ns, name), object) = o.into_iter().next().unwrap();
        assert_eq!(
            (ns.as_str(), name.as_str()),
            ("ferrolb-system", "tor.node1")
        );
        assert_eq!(object.status.as_ref().unwrap().node, "node1");
        board.forget("tor");
        assert!(rx.borrow().is_empty());
    }
}
