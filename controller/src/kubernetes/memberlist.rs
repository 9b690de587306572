//! The speakers' gossip key: the Secret `ferrolb-memberlist` (key `secretkey`) in the
//! controller's namespace, created by the leader when it is missing, as MetalLB's controller
//! creates its `memberlist` Secret, so an install needs no hand-made Secret. It is never
//! overwritten: an operator's own key, or the one the speakers already use, stays (a new key
//! would split the gossip until every speaker restarted).

use ferrolb_shared::l2::gossip::{SECRET_KEY, SECRET_NAME};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use std::io::Read;
use std::time::Duration;

/// Random bytes in a new key (256 bits).
pub const KEY_BYTES: usize = 32;
/// Wait between attempts while the API server refuses.
const RETRY: Duration = Duration::from_secs(5);

/// What [`ensure`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The Secret was missing; the controller created it.
    Created,
    /// The Secret exists (made by an operator, an earlier leader, or another replica just
    /// now): left as it is.
    Exists,
}

/// Creates the Secret in `namespace` if it is missing; never changes an existing one.
pub async fn ensure(client: Client, namespace: &str) -> anyhow::Result<Outcome> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    if api.get_opt(SECRET_NAME).await?.is_some() {
        return Ok(Outcome::Exists);
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(SECRET_NAME.into()),
            namespace: Some(namespace.into()),
            labels: Some([("app.kubernetes.io/name".to_string(), "ferrolb".to_string())].into()),
            ..ObjectMeta::default()
        },
        data: Some([(SECRET_KEY.to_string(), ByteString(random_key()?))].into()),
        type_: Some("Opaque".into()),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(Outcome::Created),
        // Made meanwhile by someone else: theirs stays.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(Outcome::Exists),
        Err(e) => Err(e.into()),
    }
}

/// [`ensure`] until it succeeds, logging what it did (a task of the leader).
pub async fn ensure_until_done(client: Client, namespace: String) {
    loop {
        match ensure(client.clone(), &namespace).await {
            Ok(Outcome::Created) => {
                tracing::info!(namespace, "created the gossip key Secret {SECRET_NAME}");
                return;
            }
            Ok(Outcome::Exists) => return,
            Err(e) => {
                tracing::warn!(retry_in = ?RETRY, "cannot create the gossip key Secret {namespace}/{SECRET_NAME}: {e:#}");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

fn random_key() -> anyhow::Result<Vec<u8>> {
    let mut key = vec![0u8; KEY_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| anyhow::anyhow!("cannot read random bytes from /dev/urandom: {e}"))?;
    Ok(key)
}
