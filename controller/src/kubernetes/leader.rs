//! Leader election I/O: reads and writes the `coordination.k8s.io/v1` Lease as
//! [`ferrolb_shared::lease::LeaderElector`] decides, and publishes whether we lead.
//!
//! Every write names the resourceVersion it read (a `replace`), so when two replicas race
//! for an expired Lease the API server lets exactly one win; the other gets a 409 and reads
//! again. Every API call has a time limit, so a hung request cannot keep a deposed leader
//! believing it still leads past its renew deadline.

use ferrolb_shared::lease::{LeaderElector, LeaseAction, LeaseRecord, LeaseTiming};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The Lease's name, in the controller's namespace.
pub const LEASE_NAME: &str = "ferrolb-controller";

/// Campaigns for and holds the Lease.
pub struct Campaign {
    api: Api<Lease>,
    elector: LeaderElector,
}

impl Campaign {
    pub fn new(client: Client, namespace: &str, identity: &str, timing: LeaseTiming) -> Self {
        Campaign {
            api: Api::namespaced(client, namespace),
            elector: LeaderElector::new(identity, timing),
        }
    }

    /// Read and write the Lease every retry period, forever, publishing on `leading` until
    /// when we may act as leader (`None`: we are not the leader). Errors are logged and
    /// retried; they end leadership only by letting that deadline pass, which the receiver
    /// must enforce itself (see [`held_until_lost`]).
    pub async fn run(mut self, leading: watch::Sender<Option<Instant>>) {
        let timing = self.elector.timing();
        // A round may take at most this long: a hung call must not stall renewals forever.
        let call_limit = timing.retry_period.max(Duration::from_millis(500)) * 2;
        loop {
            let started = Instant::now();
            match tokio::time::timeout(call_limit, self.step(started)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(lease = LEASE_NAME, "leader election: {e}"),
                Err(_) => tracing::warn!(lease = LEASE_NAME, "leader election: API call timed out"),
            }
            let until = self.elector.leader_until();
            leading.send_if_modified(|l| {
                let changed = *l != until;
                *l = until;
                changed
            });
            tokio::time::sleep(timing.retry_period.saturating_sub(started.elapsed())).await;
        }
    }

    /// One round: read the Lease, decide, write.
    async fn step(&mut self, started: Instant) -> Result<(), kube::Error> {
        let lease = self.api.get_opt(LEASE_NAME).await?;
        let record = lease.as_ref().map(record_of);
        let action = self.elector.decide(Instant::now(), record.as_ref());
        let identity = self.elector.identity().to_string();
        let seconds = self.elector.timing().duration_seconds();
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let pp = PostParams::default();
        let written = match (action, lease) {
            (LeaseAction::Wait, _) => return Ok(()),
            (LeaseAction::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(LEASE_NAME.into()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(identity),
                        lease_duration_seconds: Some(seconds),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                match self.api.create(&pp, &lease).await {
                    Err(kube::Error::Api(s)) if s.is_already_exists() => return Ok(()),
                    r => r,
                }
            }
            (LeaseAction::Renew, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(Default::default);
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = Some(seconds);
                self.replace(lease).await
            }
            (LeaseAction::TakeOver, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(Default::default);
                let transitions = spec.lease_transitions.unwrap_or(0);
                spec.holder_identity = Some(identity);
                spec.lease_duration_seconds = Some(seconds);
                spec.acquire_time = Some(now.clone());
                spec.renew_time = Some(now);
                spec.lease_transitions = Some(transitions.saturating_add(1));
                tracing::info!(lease = LEASE_NAME, "taking over an expired lease");
                self.replace(lease).await
            }
        };
        match written {
            Ok(_) => {
                self.elector.acquired(started);
                Ok(())
            }
            // Someone else wrote since we read: read again next round.
            Err(kube::Error::Api(s)) if s.is_conflict() => {
                tracing::debug!(lease = LEASE_NAME, "lost a write race for the lease");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Write `lease` back, guarded by the resourceVersion it was read with.
    async fn replace(&self, lease: Lease) -> Result<Lease, kube::Error> {
        self.api
            .replace(LEASE_NAME, &PostParams::default(), &lease)
            .await
    }

    /// Give the Lease up (on a clean shutdown), so another replica takes over at once
    /// instead of waiting for it to expire. Best effort.
    pub async fn release(api: &Api<Lease>, identity: &str) {
        let Ok(Some(mut lease)) = api.get_opt(LEASE_NAME).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        match api
            .replace(LEASE_NAME, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = LEASE_NAME, "lease released"),
            Err(e) => tracing::warn!(lease = LEASE_NAME, "could not release the lease: {e}"),
        }
    }
}

/// Wait until we lead. False if the campaign stopped first.
pub async fn acquired(leading: &mut watch::Receiver<Option<Instant>>) -> bool {
    leading
        .wait_for(|until| until.is_some_and(|u| u > Instant::now()))
        .await
        .is_ok()
}

/// Return as soon as we no longer lead: another holder was seen, or the renew deadline
/// passed without a successful renewal. Exact to the deadline, whatever the campaign loop
/// is doing.
pub async fn held_until_lost(leading: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let until = *leading.borrow_and_update();
        let Some(until) = until.filter(|u| *u > Instant::now()) else {
            return;
        };
        tokio::select! {
            changed = leading.changed() => {
                if changed.is_err() {
                    return; // the campaign stopped: nobody renews any more
                }
            }
            _ = tokio::time::sleep_until(until.into()) => {}
        }
    }
}

fn record_of(lease: &Lease) -> LeaseRecord {
    let spec = lease.spec.as_ref();
    LeaseRecord {
        holder: spec.and_then(|s| s.holder_identity.clone()),
        duration: spec
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs),
        version: lease.metadata.resource_version.clone().unwrap_or_default(),
    }
}
