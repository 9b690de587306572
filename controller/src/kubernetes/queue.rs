//! The write queue between the sink and the API server.
//!
//! ```text
//!  KubeSink::apply ──Job──▶ mpsc ──▶ lanes (one per Service / pool / the controller)
//!                                      │  ready lanes, at most `limit` in flight
//!                                      ▼
//!                                 Writes::run ──▶ API server
//!                                      │ failed: back to the front of its lane,
//!                                      └ retried after a backoff
//! ```
//!
//! Writes of one lane happen one at a time and in order, so a Service's status never goes
//! back in time; different lanes are written concurrently. A lane whose write failed waits
//! for its retry without holding up the others. A new status for a lane replaces the one
//! still waiting there (it is the state that must land, not the history), so the queue
//! holds at most one status per object; Events are capped per lane and retried a bounded
//! number of times, since losing one is better than growing without end.

use super::backoff::delay;
use super::writes::{Job, WriteError, Writes};
use ferrolb_shared::alloc::ServiceKey;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

/// Events waiting in one lane beyond this are dropped, oldest first.
const MAX_EVENTS_PER_LANE: usize = 32;
/// Attempts at creating one Event before giving up on it.
const EVENT_ATTEMPTS: u32 = 5;
/// One write may take this long before it counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Retry delays: doubling from the first to the last.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Carries out one job; [`Writes`] against the API server, a recorder in tests.
pub trait Perform: Send + Sync + 'static {
    fn perform(&self, job: &Job) -> impl Future<Output = Result<(), WriteError>> + Send;
}

impl Perform for Writes {
    fn perform(&self, job: &Job) -> impl Future<Output = Result<(), WriteError>> + Send {
        self.run(job)
    }
}

/// Writes of one lane are ordered; lanes are independent.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    Service(ServiceKey),
    Pool(String),
    Controller,
    /// The controller's ConfigurationState: a newer verdict replaces one not yet written.
    ConfigState,
}

#[derive(Default)]
struct LaneState {
    queue: VecDeque<Job>,
    busy: bool,
    /// Failed attempts at the job at the front.
    attempts: u32,
    retry_at: Option<Instant>,
}

/// Owns the lanes and the writes in flight. See the module documentation.
pub struct Writer<W> {
    writes: Arc<W>,
    limit: usize,
    retry: (Duration, Duration),
    lanes: BTreeMap<Lane, LaneState>,
    /// Lanes with work that may start now, in arrival order.
    ready: VecDeque<Lane>,
    /// Lanes waiting for a retry.
    delayed: BTreeSet<(Instant, Lane)>,
    in_flight: JoinSet<(Lane, Job, Result<(), WriteError>)>,
}

impl<W: Perform> Writer<W> {
    pub fn new(writes: Arc<W>, limit: usize) -> Self {
        Writer {
            writes,
            limit: limit.max(1),
            retry: (RETRY_MIN, RETRY_MAX),
            lanes: BTreeMap::new(),
            ready: VecDeque::new(),
            delayed: BTreeSet::new(),
            in_flight: JoinSet::new(),
        }
    }

    /// Retry after `min`, doubling up to `max`.
    pub fn with_retry(mut self, min: Duration, max: Duration) -> Self {
        self.retry = (min, max);
        self
    }

    /// Write jobs from `rx` until it closes.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<(Lane, Job)>) {
        loop {
            self.start_ready();
            let wake = self.delayed.first().map(|(at, _)| *at);
            tokio::select! {
                job = rx.recv() => match job {
                    Some((lane, job)) => self.enqueue(lane, job),
                    None => return,
                },
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    match done {
                        Ok((lane, job, result)) => self.finish(lane, job, result),
                        Err(e) => tracing::error!("a write task failed: {e}"),
                    }
                }
                _ = sleep_until(wake), if wake.is_some() => self.wake_due(),
            }
        }
    }

    fn enqueue(&mut self, lane: Lane, job: Job) {
        let state = self.lanes.entry(lane.clone()).or_default();
        let events_waiting = state.queue.iter().filter(|j| !j.is_state()).count();
        if job.is_state() {
            state.queue.retain(|j| !j.is_state());
        } else if events_waiting >= MAX_EVENTS_PER_LANE
            && let Some(i) = state.queue.iter().position(|j| !j.is_state())
        {
            state.queue.remove(i);
            tracing::warn!(?lane, "too many Events waiting; dropping the oldest");
        }
        let idle = !state.busy && state.retry_at.is_none() && state.queue.is_empty();
        state.queue.push_back(job);
        if idle {
            self.ready.push_back(lane);
        }
    }

    fn start_ready(&mut self) {
        while self.in_flight.len() < self.limit {
            let Some(lane) = self.ready.pop_front() else {
                return;
            };
            let Some(state) = self.lanes.get_mut(&lane) else {
                continue;
            };
            let Some(job) = state.queue.pop_front() else {
                self.lanes.remove(&lane);
                continue;
            };
            state.busy = true;
            let writes = self.writes.clone();
            let span = match &lane {
                Lane::Service(k) => {
                    tracing::debug_span!("write", service = %k.name, namespace = %k.namespace)
                }
                Lane::Pool(p) => tracing::debug_span!("write", pool = %p),
                Lane::Controller => tracing::debug_span!("write", controller = true),
                Lane::ConfigState => tracing::debug_span!("write", configuration_state = true),
            };
            self.in_flight.spawn(
                async move {
                    let result =
                        match tokio::time::timeout(WRITE_TIMEOUT, writes.perform(&job)).await {
                            Ok(r) => r,
                            Err(_) => Err(WriteError::Timeout),
                        };
                    (lane, job, result)
                }
                .instrument(span),
            );
        }
    }

    fn finish(&mut self, lane: Lane, job: Job, result: Result<(), WriteError>) {
        let Some(state) = self.lanes.get_mut(&lane) else {
            return;
        };
        state.busy = false;
        match result {
            Ok(()) => state.attempts = 0,
            Err(WriteError::NotFound(msg)) => {
                // Deleted meanwhile; its deletion reaches the core through the watch.
                tracing::debug!(?lane, "object gone, dropping the write: {msg}");
                state.attempts = 0;
            }
            Err(e) => {
                state.attempts += 1;
                let superseded = job.is_state() && state.queue.iter().any(Job::is_state);
                let give_up = !job.is_state() && state.attempts >= EVENT_ATTEMPTS;
                if superseded || give_up {
                    tracing::warn!(
                        ?lane,
                        attempts = state.attempts,
                        "write failed, dropped: {e}"
                    );
                    state.attempts = 0;
                } else {
                    let wait = delay(state.attempts - 1, self.retry.0, self.retry.1);
                    tracing::warn!(
                        ?lane,
                        attempts = state.attempts,
                        ?wait,
                        "write failed, will retry: {e}"
                    );
                    state.queue.push_front(job);
                    let at = Instant::now() + wait;
                    state.retry_at = Some(at);
                    self.delayed.insert((at, lane));
                    return;
                }
            }
        }
        if state.queue.is_empty() {
            self.lanes.remove(&lane);
        } else {
            self.ready.push_back(lane);
        }
    }

    fn wake_due(&mut self) {
        let now = Instant::now();
        while let Some((at, _)) = self.delayed.first() {
            if *at > now {
                break;
            }
            let Some((_, lane)) = self.delayed.pop_first() else {
                break;
            };
            if let Some(state) = self.lanes.get_mut(&lane) {
                state.retry_at = None;
                self.ready.push_back(lane);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
