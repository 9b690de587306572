//! The Kubernetes cluster source: `kube-runtime` watchers over Services, Namespaces and the
//! six config kinds, merged into one stream and turned into the same [`Input`]s the
//! standalone directory source produces (see [`super::state`] for the mapping).
//!
//! Watchers recover by themselves: a lost connection resumes from the last resourceVersion,
//! a `410 Gone` relists. Errors are logged and retried with an exponential backoff; none is
//! fatal, so an API server restart only delays us.

use super::backoff::WatchBackoff;
use super::state::{SharedView, SourceState, Update, map_event};
use ferrolb_shared::config::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, ConfigObject, IPAddressPool, L2Advertisement,
};
use ferrolb_shared::reconcile::Input;
use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use tokio::sync::mpsc;

/// One watcher's output, named for the logs.
type Feed = BoxStream<'static, (&'static str, Result<Update, watcher::Error>)>;

/// Watches the API server and sends [`Input`]s.
pub struct KubeSource {
    client: Client,
    /// Namespace of the config kinds; `None`: all namespaces.
    config_namespace: Option<String>,
    backoff: WatchBackoff,
    view: SharedView,
}

impl KubeSource {
    pub fn new(
        client: Client,
        config_namespace: Option<String>,
        backoff: WatchBackoff,
        view: SharedView,
    ) -> Self {
        KubeSource {
            client,
            config_namespace,
            backoff,
            view,
        }
    }

    /// Watch until the receiver goes away. Never fails because of the API server.
    pub async fn run(self, tx: mpsc::Sender<Input>) -> anyhow::Result<()> {
        let mut state = SourceState::new(self.view.clone());
        let mut feeds = self.feeds();
        while let Some((feed, item)) = feeds.next().await {
            let update = match item {
                Ok(update) => update,
                Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                    // Routine: the server's history window moved on; the watcher relists.
                    tracing::info!(feed, "watch expired ({}); relisting", status.message);
                    continue;
                }
                Err(e) => {
                    // The watcher resumes or relists on the next poll, after the backoff.
                    tracing::warn!(feed, "watch failed, retrying: {e}");
                    continue;
                }
            };
            log_update(feed, &update);
            let was_synced = state.synced();
            for input in state.handle(update) {
                if tx.send(input).await.is_err() {
                    return Ok(());
                }
            }
            if !was_synced && state.synced() {
                tracing::info!("initial listing of every kind received");
            }
        }
        anyhow::bail!("all watch streams ended")
    }

    fn feeds(&self) -> SelectAll<Feed> {
        let client = &self.client;
        futures::stream::select_all([
            self.feed(
                "services",
                Api::<Service>::all(client.clone()),
                Update::Service,
            ),
            self.feed(
                "namespaces",
                Api::<Namespace>::all(client.clone()),
                Update::Namespace,
            ),
            self.config_feed::<IPAddressPool>(|o| {
                let mut o = strip(o);
                o.status = None; // our own writes; must not look like a config change
                ConfigObject::IPAddressPool(o)
            }),
            self.config_feed::<L2Advertisement>(|o| ConfigObject::L2Advertisement(strip(o))),
            self.config_feed::<BGPAdvertisement>(|o| ConfigObject::BGPAdvertisement(strip(o))),
            self.config_feed::<BGPPeer>(|o| ConfigObject::BGPPeer(strip(o))),
            self.config_feed::<BFDProfile>(|o| ConfigObject::BFDProfile(strip(o))),
            self.config_feed::<Community>(|o| ConfigObject::Community(strip(o))),
        ])
    }

    fn config_feed<K>(&self, wrap: fn(K) -> ConfigObject) -> Feed
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug
            + Send
            + 'static,
        K::DynamicType: Default,
    {
        let api = match &self.config_namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let kind = K::kind(&K::DynamicType::default()).into_owned();
        // The kinds are a fixed list; find its static name for the tag.
        let kind = super::state::CONFIG_KINDS
            .iter()
            .copied()
            .find(|k| *k == kind)
            .unwrap_or("unknown");
        self.feed(kind, api, move |e| Update::Config(kind, map_event(e, wrap)))
    }

    fn feed<K>(
        &self,
        name: &'static str,
        api: Api<K>,
        tag: impl Fn(Event<K>) -> Update + Send + 'static,
    ) -> Feed
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        let stream = watcher(api).backoff(self.backoff);
        stream.map(move |item| (name, item.map(&tag))).boxed()
    }
}

fn watcher<K>(api: Api<K>) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default())
}

/// Drop the server-maintained metadata, so that only changes an operator made compare
/// unequal (a status write on a pool bumps its resourceVersion, for one).
fn strip<K: ResourceExt>(mut obj: K) -> K {
    let meta = obj.meta_mut();
    meta.resource_version = None;
    meta.managed_fields = None;
    meta.generation = None;
    meta.creation_timestamp = None;
    meta.uid = None;
    meta.self_link = None;
    obj
}

fn log_update(feed: &'static str, update: &Update) {
    let (verb, name) = match update {
        Update::Service(e) => describe(e, |s| {
            let ns = s.metadata.namespace.as_deref().unwrap_or("");
            format!("{ns}/{}", s.name_any())
        }),
        Update::Namespace(e) => describe(e, |n| n.name_any()),
        Update::Config(_, e) => describe(e, |o| o.name().to_string()),
    };
    tracing::debug!(feed, object = name, "{verb}");
}

fn describe<K>(event: &Event<K>, name: impl Fn(&K) -> String) -> (&'static str, String) {
    match event {
        Event::Apply(o) => ("applied", name(o)),
        Event::Delete(o) => ("deleted", name(o)),
        Event::Init => ("listing", String::new()),
        Event::InitApply(o) => ("listed", name(o)),
        Event::InitDone => ("listing done", String::new()),
    }
}
