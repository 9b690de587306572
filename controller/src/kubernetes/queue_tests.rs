use super::*;
use k8s_openapi::api::core::v1::Event;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Records every attempt; fails jobs as scripted; holds jobs while a gate is closed.
#[derive(Default)]
struct Recorder {
    /// (lane name, job label) per attempt, in start order.
    attempts: Mutex<Vec<(String, String)>>,
    /// (lane name, job label) per success, in completion order.
    done: Mutex<Vec<(String, String)>>,
    /// label → errors still to return for it.
    failures: Mutex<BTreeMap<String, VecDeque<WriteError>>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// While closed, jobs whose label starts with "slow" wait.
    gate: tokio::sync::Notify,
    gate_open: std::sync::atomic::AtomicBool,
}

fn label(job: &Job) -> (String, String) {
    match job {
        Job::SetStatus { key, ips, .. } => (key.name.clone(), format!("status {}", ips[0])),
        Job::ClearStatus { key } => (key.name.clone(), "clear".into()),
        Job::Event(e) => {
            let name = e.involved_object.name.clone().unwrap_or_default();
            (name, e.reason.clone().unwrap_or_default())
        }
        Job::PoolStatus { name, .. } => (name.clone(), "pool".into()),
        Job::ConfigState(s) => ("controller".into(), format!("config {}", s.result)),
    }
}

impl Perform for Recorder {
    async fn perform(&self, job: &Job) -> Result<(), WriteError> {
        let (lane, what) = label(job);
        self.attempts
            .lock()
            .unwrap()
            .push((lane.clone(), what.clone()));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if what.starts_with("slow") {
            while !self.gate_open.load(Ordering::SeqCst) {
                self.gate.notified().await;
            }
        }
        // Let other lanes interleave.
        tokio::time::sleep(Duration::from_millis(1 + (lane.len() as u64 % 3))).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let failure = self
            .failures
            .lock()
            .unwrap()
            .get_mut(&what)
            .and_then(VecDeque::pop_front);
        match failure {
            Some(e) => Err(e),
            None => {
                self.done.lock().unwrap().push((lane, what));
                Ok(())
            }
        }
    }
}

impl Recorder {
    fn open_gate(&self) {
        self.gate_open.store(true, Ordering::SeqCst);
        self.gate.notify_waiters();
    }

    fn fail(&self, what: &str, errors: Vec<WriteError>) {
        self.failures
            .lock()
            .unwrap()
            .insert(what.into(), errors.into());
    }

    fn done_in(&self, lane: &str) -> Vec<String> {
        self.done
            .lock()
            .unwrap()
            .iter()
            .filter(|(l, _)| l == lane)
            .map(|(_, w)| w.clone())
            .collect()
    }
}

fn key(name: &str) -> ServiceKey {
    ServiceKey::new("default", name)
}

fn status(name: &str, last_octet: u8) -> (Lane, Job) {
    let job = Job::SetStatus {
        key: key(name),
        ips: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, last_octet))],
        pool: "main".into(),
    };
    (Lane::Service(key(name)), job)
}

fn event(name: &str, reason: &str) -> (Lane, Job) {
    let mut e = Event::default();
    e.involved_object.name = Some(name.into());
    e.reason = Some(reason.into());
    (Lane::Service(key(name)), Job::Event(Box::new(e)))
}

fn conflict() -> WriteError {
    WriteError::Conflict("injected".into())
}

/// Start a writer over `rec`; returns the sender and the task.
fn start(
    rec: &Arc<Recorder>,
    limit: usize,
) -> (
    mpsc::UnboundedSender<(Lane, Job)>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = Writer::new(rec.clone(), limit)
        .with_retry(Duration::from_millis(1), Duration::from_millis(5));
    (tx, tokio::spawn(writer.run(rx)))
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..2000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn keeps_order_per_lane_and_bounds_concurrency() {
    let rec = Arc::new(Recorder::default());
    let (tx, task) = start(&rec, 3);
    let lanes = ["a", "bb", "ccc", "dddd", "eeeee", "f", "gg", "hhh"];
    for round in 0..5u8 {
        for lane in lanes {
            tx.send(event(lane, &format!("e{round}"))).unwrap();
        }
    }
    until("every job", || {
        rec.done.lock().unwrap().len() == lanes.len() * 5
    })
    .await;
    for lane in lanes {
        assert_eq!(
            rec.done_in(lane),
            ["e0", "e1", "e2", "e3", "e4"],
            "lane {lane}"
        );
    }
    let max = rec.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 3, "{max} writes in flight, limit 3");
    assert!(max > 1, "lanes must be written concurrently");
    task.abort();
}

#[tokio::test]
async fn a_newer_status_replaces_one_still_waiting() {
    let rec = Arc::new(Recorder::default());
    let (tx, task) = start(&rec, 4);
    // The lane is busy with a slow Event; meanwhile three statuses arrive.
    tx.send(event("web", "slow")).unwrap();
    until("the slow job to start", || {
        !rec.attempts.lock().unwrap().is_empty()
    })
    .await;
    tx.send(status("web", 1)).unwrap();
    tx.send(event("web", "IPAllocated")).unwrap();
    tx.send(status("web", 2)).unwrap();
    tx.send(status("web", 3)).unwrap();
    rec.open_gate();
    until("the lane to drain", || rec.done_in("web").len() == 3).await;
    assert_eq!(
        rec.done_in("web"),
        ["slow", "IPAllocated", "status 10.0.0.3"]
    );
    task.abort();
}

#[tokio::test]
async fn failed_writes_are_retried_in_place_without_blocking_other_lanes() {
    let rec = Arc::new(Recorder::default());
    rec.fail("status 10.0.0.1", vec![conflict(), conflict(), conflict()]);
    let (tx, task) = start(&rec, 4);
    tx.send(status("web", 1)).unwrap();
    tx.send(event("web", "after")).unwrap();
    tx.send(event("other", "independent")).unwrap();
    until("the lane to drain", || rec.done_in("web").len() == 2).await;
    assert_eq!(rec.done_in("web"), ["status 10.0.0.1", "after"]);
    assert_eq!(rec.done_in("other"), ["independent"]);
    let attempts = rec.attempts.lock().unwrap().clone();
    let tries = attempts
        .iter()
        .filter(|(_, w)| w == "status 10.0.0.1")
        .count();
    assert_eq!(tries, 4, "three conflicts, then success");
    task.abort();
}

#[tokio::test]
async fn gone_objects_and_hopeless_events_are_dropped() {
    let rec = Arc::new(Recorder::default());
    rec.fail(
        "status 10.0.0.1",
        vec![WriteError::NotFound("deleted".into())],
    );
    rec.fail("doomed", (0..10).map(|_| conflict()).collect());
    let (tx, task) = start(&rec, 2);
    tx.send(status("web", 1)).unwrap();
    tx.send(event("web", "next")).unwrap();
    tx.send(event("ev", "doomed")).unwrap();
    tx.send(event("ev", "later")).unwrap();
    until("both lanes to drain", || {
        rec.done_in("web") == ["next"] && rec.done_in("ev") == ["later"]
    })
    .await;
    let attempts = rec.attempts.lock().unwrap().clone();
    let tries = |what: &str| attempts.iter().filter(|(_, w)| w == what).count();
    assert_eq!(tries("status 10.0.0.1"), 1, "404: not retried");
    assert_eq!(tries("doomed"), EVENT_ATTEMPTS as usize);
    task.abort();
}

#[tokio::test]
async fn a_failed_status_superseded_meanwhile_is_not_retried() {
    let rec = Arc::new(Recorder::default());
    rec.fail("status 10.0.0.1", (0..10).map(|_| conflict()).collect());
    let (tx, task) = start(&rec, 2);
    tx.send(status("web", 1)).unwrap();
    until("the first attempt", || {
        !rec.attempts.lock().unwrap().is_empty()
    })
    .await;
    tx.send(status("web", 2)).unwrap();
    until("the newer status", || {
        rec.done_in("web") == ["status 10.0.0.2"]
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn too_many_waiting_events_drop_the_oldest() {
    let rec = Arc::new(Recorder::default());
    let (tx, task) = start(&rec, 1);
    tx.send(event("web", "slow")).unwrap();
    until("the slow job to start", || {
        !rec.attempts.lock().unwrap().is_empty()
    })
    .await;
    for i in 0..MAX_EVENTS_PER_LANE + 3 {
        tx.send(event("web", &format!("e{i}"))).unwrap();
    }
    rec.open_gate();
    until("the lane to drain", || {
        rec.done_in("web").len() == MAX_EVENTS_PER_LANE + 1
    })
    .await;
    let done = rec.done_in("web");
    assert_eq!(
        done[1], "e3",
        "the three oldest waiting Events were dropped"
    );
    assert_eq!(done.last().map(String::as_str), Some("e34"));
    task.abort();
}
