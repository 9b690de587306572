//! Gossip timing: detection time against false failovers under CPU load (part `timing`).
//!
//! For each preset (`FERROLB_FAILOVER_TIMINGS`: `period/timeout/suspect` triples, comma
//! separated), every speaker is restarted with `--gossip-probe-period`,
//! `--gossip-probe-timeout` and `--gossip-suspect-timeout`, then:
//! - **detection**: the announcer's speaker is SIGKILLed `FERROLB_FAILOVER_TIMING_REPS` times
//!   (ARP takeover as in the main table);
//! - **false failovers under load**: every core of the machine is kept busy by
//!   `FERROLB_FAILOVER_HOGS_PER_CORE` busy-looping threads per core (at the speakers' own
//!   priority) for `FERROLB_FAILOVER_LOAD_SECS`, while nothing fails. Every "member down" a
//!   speaker logs then is a false suspicion that went all the way (a live speaker declared
//!   dead), and every change of the address's announcer is a false failover a client would
//!   see. Both are counted; the announcer is sampled every 50 ms.
//!
//! The busy threads are bounded in time (they stop at the window's end, or when the bench
//! panics: they check a deadline) and never touch the network.

use crate::failover::{self, Way};
use crate::ferrolb::{FerroLb, NODES};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One gossip timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    pub period: Duration,
    pub timeout: Duration,
    pub suspect: Duration,
}

impl Preset {
    pub fn label(&self) -> String {
        format!(
            "{}/{}/{} ms",
            self.period.as_millis(),
            self.timeout.as_millis(),
            self.suspect.as_millis()
        )
    }

    fn flags(&self) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        vec![
            "--gossip-probe-period".into(),
            ms(self.period),
            "--gossip-probe-timeout".into(),
            ms(self.timeout),
            "--gossip-suspect-timeout".into(),
            ms(self.suspect),
        ]
    }
}

impl std::str::FromStr for Preset {
    type Err = String;

    /// `100/40/200`: milliseconds.
    fn from_str(s: &str) -> Result<Preset, String> {
        let parts: Vec<u64> = s
            .trim()
            .split('/')
            .map(|p| p.trim().trim_end_matches("ms").parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("gossip timing {s:?}: {e} (use period/timeout/suspect in ms)"))?;
        match parts.as_slice() {
            [p, t, s] => Ok(Preset {
                period: Duration::from_millis(*p),
                timeout: Duration::from_millis(*t),
                suspect: Duration::from_millis(*s),
            }),
            _ => Err(format!(
                "gossip timing {s:?}: use period/timeout/suspect in ms"
            )),
        }
    }
}

/// What one preset measured.
pub struct TimingResult {
    pub preset: Preset,
    /// ARP takeovers (s) of the kills that worked, and how many did not.
    pub takeovers: Vec<f64>,
    pub failed: usize,
    pub load: LoadResult,
}

/// What a load window saw.
pub struct LoadResult {
    /// Speakers declared dead ("member down" log lines) while all were alive, under load.
    pub false_downs: usize,
    /// Changes of the address's announcer under load (none failed).
    pub moves: usize,
    /// Samples in which not exactly one node reported announcing the address.
    pub unowned_samples: usize,
    pub samples: usize,
}

pub fn measure(
    f: &mut FerroLb,
    presets: &[Preset],
    settings: &crate::Settings,
) -> anyhow::Result<Vec<TimingResult>> {
    let mut out = Vec::new();
    for preset in presets {
        note!(
            "timing {}: restarting every speaker with it",
            preset.label()
        );
        f.restart_all(&preset.flags())?;
        std::thread::sleep(settings.hold_down + Duration::from_secs(1));
        let kills = crate::Settings {
            reps: settings.timing_reps,
            ways: vec![Way::Kill],
            ..settings.clone()
        };
        f.label = Some(format!("FerroLB {}", preset.label()));
        let session = failover::session(f, &kills);
        f.label = None;
        let session = session?;
        let samples = session.ways.get(&Way::Kill).cloned().unwrap_or_default();
        let takeovers: Vec<f64> = samples
            .iter()
            .filter_map(|s| s.as_ref().ok().map(|s| s.arp_takeover))
            .collect();
        let failed = samples.len() - takeovers.len();
        let load = under_load(f, settings)?;
        note!(
            "timing {}: {} false member downs, {} announcer changes under load",
            preset.label(),
            load.false_downs,
            load.moves
        );
        out.push(TimingResult {
            preset: *preset,
            takeovers,
            failed,
            load,
        });
    }
    // Back to the defaults for whatever runs next.
    f.restart_all(&[])?;
    Ok(out)
}

/// Busy every core for the load window and count what the speakers did meanwhile.
fn under_load(f: &mut FerroLb, settings: &crate::Settings) -> anyhow::Result<LoadResult> {
    let owner = failover::System::owner(f)?;
    let downs_before = member_downs(f)?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hogs = cores * settings.hogs_per_core;
    let deadline = Instant::now() + settings.load_window;
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..hogs)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    for i in 0..10_000u64 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
                    }
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    let mut moves = 0;
    let mut unowned = 0;
    let mut samples = 0;
    let mut last = owner.clone();
    while Instant::now() < deadline {
        let now: Vec<&str> = NODES.into_iter().filter(|n| f.announces_vip(n)).collect();
        samples += 1;
        match now.as_slice() {
            [one] => {
                if *one != last {
                    moves += 1;
                    last = one.to_string();
                }
            }
            _ => unowned += 1,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let false_downs = member_downs(f)? - downs_before;
    // Let a false failover, if any, heal before the next measurement.
    std::thread::sleep(settings.hold_down + Duration::from_secs(1));
    Ok(LoadResult {
        false_downs,
        moves,
        unowned_samples: unowned,
        samples,
    })
}

/// "member down" lines in every speaker's log so far.
fn member_downs(f: &FerroLb) -> anyhow::Result<usize> {
    let mut n = 0;
    for node in NODES {
        n += f
            .lab
            .log(&format!("speaker@{node}"))?
            .matches("member down")
            .count();
    }
    Ok(n)
}
