//! The Kubernetes cluster source: one `kube-runtime` watcher per subscribed kind and per config
//! kind, merged into one stream and turned into
//! [`ClusterEvent`](ferrolb_shared::cluster::ClusterEvent)s by the pure [`WatchState`]
//! (listings buffered, relists diffed, the config sent as a whole set).
//!
//! Watchers recover by themselves: a lost connection resumes from the last resourceVersion,
//! a `410 Gone` relists. Errors are logged and retried with an exponential backoff; none is
//! fatal, so an API server restart only delays us.

use crate::EventSink;
use crate::backoff::WatchBackoff;
use ferrolb_shared::cluster::watch::{CONFIG_KINDS, Update, WatchEvent, WatchState};
use ferrolb_shared::cluster::{ClusterObject, Kind, Subscription};
use ferrolb_shared::config::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, ConfigObject, IPAddressPool, L2Advertisement,
};
use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// One watcher's output, named for the logs.
type Feed = BoxStream<'static, (&'static str, Result<Update, watcher::Error>)>;

/// Why the Kubernetes source stopped (it never stops because of the API server).
#[derive(Debug, thiserror::Error)]
pub enum KubeSourceError {
    /// Every watch stream ended, which `kube-runtime` watchers never do by themselves.
    #[error("all watch streams ended")]
    StreamsEnded,
}

/// Watches the API server and sends [`ClusterEvent`](ferrolb_shared::cluster::ClusterEvent)s.
pub struct KubeSource {
    client: Client,
    subscription: Subscription,
    backoff: WatchBackoff,
}

impl KubeSource {
    pub fn new(client: Client, subscription: Subscription, backoff: WatchBackoff) -> Self {
        KubeSource {
            client,
            subscription,
            backoff,
        }
    }

    /// Watch until the consumer goes away (then `Ok`).
    pub async fn run(self, mut sink: impl EventSink) -> Result<(), KubeSourceError> {
        let mut state = WatchState::new(&self.subscription);
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
            let events = state.handle(update);
            if !events.is_empty() && sink.deliver(events).await.is_err() {
                return Ok(());
            }
            if !was_synced && state.synced() {
                tracing::info!("initial listing of every kind received");
            }
        }
        Err(KubeSourceError::StreamsEnded)
    }

    fn feeds(&self) -> SelectAll<Feed> {
        let client = &self.client;
        let sub = &self.subscription;
        let mut feeds = Vec::new();
        for kind in &sub.kinds {
            feeds.push(match kind {
                Kind::Service => self.cluster_feed(
                    Api::<Service>::all(client.clone()),
                    *kind,
                    ClusterObject::service,
                ),
                Kind::EndpointSlice => self.cluster_feed(
                    Api::<EndpointSlice>::all(client.clone()),
                    *kind,
                    ClusterObject::endpoint_slice,
                ),
                Kind::Node => {
                    self.cluster_feed(Api::<Node>::all(client.clone()), *kind, ClusterObject::node)
                }
                Kind::Namespace => self.cluster_feed(
                    Api::<Namespace>::all(client.clone()),
                    *kind,
                    ClusterObject::namespace,
                ),
                Kind::Secret => {
                    let api = match &sub.secrets_namespace {
                        Some(ns) => Api::<Secret>::namespaced(client.clone(), ns),
                        None => Api::all(client.clone()),
                    };
                    self.cluster_feed(api, *kind, ClusterObject::secret)
                }
            });
        }
        feeds.extend([
            self.config_feed::<IPAddressPool>(|o| {
                let mut o = strip(o);
                o.status = None; // the controller's writes; must not look like a config change
                ConfigObject::IPAddressPool(o)
            }),
            self.config_feed::<L2Advertisement>(|o| ConfigObject::L2Advertisement(strip(o))),
            self.config_feed::<BGPAdvertisement>(|o| ConfigObject::BGPAdvertisement(strip(o))),
            self.config_feed::<BGPPeer>(|o| ConfigObject::BGPPeer(strip(o))),
            self.config_feed::<BFDProfile>(|o| ConfigObject::BFDProfile(strip(o))),
            self.config_feed::<Community>(|o| ConfigObject::Community(strip(o))),
        ]);
        futures::stream::select_all(feeds)
    }

    fn cluster_feed<K>(&self, api: Api<K>, kind: Kind, wrap: fn(K) -> ClusterObject) -> Feed
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        self.feed(kind.name(), api, move |e| {
            Update::Cluster(
                kind,
                // `wrap` trims the object to what FerroLB reads (see ClusterObject::service).
                convert(e, wrap),
            )
        })
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
        let api = match &self.subscription.config_namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let kind = K::kind(&K::DynamicType::default()).into_owned();
        // The kinds are a fixed list; find its static name for the tag.
        let kind = CONFIG_KINDS
            .iter()
            .copied()
            .find(|k| *k == kind)
            .unwrap_or("unknown");
        self.feed(kind, api, move |e| Update::Config(kind, convert(e, wrap)))
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
        let stream = watcher::watcher(api, watcher::Config::default()).backoff(self.backoff);
        stream.map(move |item| (name, item.map(&tag))).boxed()
    }
}

/// A `kube-runtime` watcher event as the pure state machine takes it.
fn convert<A, B>(event: Event<A>, f: impl FnOnce(A) -> B) -> WatchEvent<B> {
    match event {
        Event::Apply(o) => WatchEvent::Apply(f(o)),
        Event::Delete(o) => WatchEvent::Delete(f(o)),
        Event::Init => WatchEvent::Init,
        Event::InitApply(o) => WatchEvent::InitApply(f(o)),
        Event::InitDone => WatchEvent::InitDone,
    }
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
    let (event, name) = match update {
        Update::Cluster(_, e) => (verb(e), e.object().map(|o| o.key().to_string())),
        Update::Config(_, e) => (verb(e), e.object().map(|o| o.name().to_string())),
    };
    tracing::debug!(feed, object = name.unwrap_or_default(), "{event}");
}

fn verb<T>(event: &WatchEvent<T>) -> &'static str {
    match event {
        WatchEvent::Apply(_) => "applied",
        WatchEvent::Delete(_) => "deleted",
        WatchEvent::Init => "listing",
        WatchEvent::InitApply(_) => "listed",
        WatchEvent::InitDone => "listing done",
    }
}
