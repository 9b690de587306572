//! The measurement both sources share: with the controller and the speaker running on the
//! cluster's config and Nodes, memory empty, after the first half of the Services (with their
//! EndpointSlices) and after all of them, each time once both processes have the whole view
//! and have settled.

use crate::Settings;
use crate::process::{CONTROLLER_PORT, Memory, Process, SPEAKER_PORT};
use ferrolb_e2e::bench::metric;
use ferrolb_e2e::netns::Netns;
use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

/// The two processes under test, in their namespace.
pub struct Pair<'a> {
    pub ns: &'a Netns,
    pub controller: Process,
    pub speaker: Process,
}

/// How to start one of the pair: its arguments and its environment.
pub type Launch<'e> = (Vec<String>, Vec<(&'e str, String)>);

impl<'a> Pair<'a> {
    /// Start the controller, then the speaker, in `ns` (their logs in `dir`).
    pub fn start(
        ns: &'a Netns,
        dir: &Path,
        controller: Launch<'_>,
        speaker: Launch<'_>,
    ) -> anyhow::Result<Self> {
        Ok(Pair {
            ns,
            controller: Process::start(
                ns,
                "controller",
                "ferrolb-controller",
                &controller.0,
                &controller.1,
                CONTROLLER_PORT,
                dir,
            )?,
            speaker: Process::start(
                ns,
                "speaker",
                "ferrolb-speaker",
                &speaker.0,
                &speaker.1,
                SPEAKER_PORT,
                dir,
            )?,
        })
    }
}

/// Memory at one point.
#[derive(Clone, Debug)]
pub struct Point {
    pub services: usize,
    pub controller: Memory,
    pub speaker: Memory,
    /// Writing the objects of this step (files written, or objects created in the fake).
    pub write: Duration,
    /// From the start of the write until the controller's metrics count every Service as
    /// allocated (and its config loaded).
    pub controller_synced: Duration,
    /// Until the speaker's snapshot holds every Service, endpoint and address.
    pub speaker_synced: Duration,
}

/// What the speaker's and the controller's metrics say.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct View {
    speaker_config: Option<f64>,
    nodes: Option<f64>,
    services: Option<f64>,
    endpoints: Option<f64>,
    lb_ips: Option<f64>,
    controller_config: Option<f64>,
    allocated: Option<f64>,
}

impl View {
    fn read(pair: &Pair) -> View {
        let s = pair.speaker.metrics(pair.ns).unwrap_or_default();
        let c = pair.controller.metrics(pair.ns).unwrap_or_default();
        View {
            speaker_config: metric(&s, "ferrolb_speaker_config_loaded"),
            nodes: metric(&s, "ferrolb_speaker_snapshot_nodes"),
            services: metric(&s, "ferrolb_speaker_snapshot_services"),
            endpoints: metric(&s, "ferrolb_speaker_snapshot_endpoints"),
            lb_ips: metric(&s, "ferrolb_speaker_snapshot_loadbalancer_ips"),
            controller_config: metric(&c, "ferrolb_config_loaded"),
            allocated: metric(&c, "ferrolb_services_allocated"),
        }
    }

    fn controller_done(&self, n: usize) -> bool {
        self.controller_config == Some(1.0) && self.allocated == Some(n as f64)
    }

    fn speaker_done(&self, n: usize, endpoints: usize) -> bool {
        self.speaker_config == Some(1.0)
            && self.nodes == Some(crate::objects::NODES.len() as f64)
            && self.services == Some(n as f64)
            && self.endpoints == Some((n * endpoints) as f64)
            && self.lb_ips == Some(n as f64)
    }
}

/// Empty, half, all: `load` writes the Services (and slices) of a range of indexes.
pub fn run(
    pair: &mut Pair,
    settings: &Settings,
    mut load: impl FnMut(Range<usize>) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Point>> {
    let n = settings.services;
    let half = n / 2;
    let mut points = Vec::new();
    for range in [0..0, 0..half, half..n] {
        let total = range.end;
        let started = Instant::now();
        if !range.is_empty() {
            note!("writing Services {}..{}", range.start, range.end);
            load(range)?;
        }
        let write = started.elapsed();
        let (controller_synced, speaker_synced) = wait_view(pair, settings, total, started)?;
        note!(
            "{total} Services: written in {:.2} s, controller synced after {:.2} s, speaker after {:.2} s; settling {} s",
            write.as_secs_f64(),
            controller_synced.as_secs_f64(),
            speaker_synced.as_secs_f64(),
            settings.settle.as_secs()
        );
        std::thread::sleep(settings.settle);
        pair.controller.check_alive()?;
        pair.speaker.check_alive()?;
        let point = Point {
            services: total,
            controller: pair.controller.memory()?,
            speaker: pair.speaker.memory()?,
            write,
            controller_synced,
            speaker_synced,
        };
        note!(
            "{total} Services: VmRSS controller {:.1} MiB, speaker {:.1} MiB",
            mib(point.controller.rss),
            mib(point.speaker.rss)
        );
        points.push(point);
    }
    Ok(points)
}

/// Waits until both have the whole view of `n` Services; how long each took from `started`.
fn wait_view(
    pair: &mut Pair,
    settings: &Settings,
    n: usize,
    started: Instant,
) -> anyhow::Result<(Duration, Duration)> {
    let limit = settings.limit;
    let (mut controller, mut speaker) = (None, None);
    let mut last_note = Instant::now();
    loop {
        pair.controller.check_alive()?;
        pair.speaker.check_alive()?;
        let view = View::read(pair);
        if controller.is_none() && view.controller_done(n) {
            controller = Some(started.elapsed());
        }
        if speaker.is_none() && view.speaker_done(n, settings.endpoints) {
            speaker = Some(started.elapsed());
        }
        if let (Some(c), Some(s)) = (controller, speaker) {
            return Ok((c, s));
        }
        if last_note.elapsed() >= Duration::from_secs(10) {
            note!("still waiting for {n} Services: {view:?}");
            last_note = Instant::now();
        }
        if started.elapsed() > limit {
            anyhow::bail!(
                "timed out after {limit:?} waiting for the controller (config loaded, {n} Services \
                 allocated: {}) and the speaker (config loaded, {} Nodes, {n} Services, {} endpoints, \
                 {n} addresses: {}); they last reported {view:?}\ncontroller log:\n{}\nspeaker log:\n{}",
                if controller.is_some() {
                    "done"
                } else {
                    "not yet"
                },
                crate::objects::NODES.len(),
                n * settings.endpoints,
                if speaker.is_some() { "done" } else { "not yet" },
                pair.controller.log_tail(15),
                pair.speaker.log_tail(15),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
