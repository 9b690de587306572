//! Many routes at once (10,000 by default), FerroLB and GoBGP one after the other (each
//! alone on the machine while it is measured).
//!
//! - *Live*: FerroLB's Services (and their EndpointSlices, written first) in pool `big`;
//!   GoBGP's routes through `gobgp mrt inject global` ([`crate::mrt`]). Timed to BIRD's
//!   "imported" counter for the node's session reaching N, polled every 2 ms. For FerroLB
//!   also from the controller's last status write (the newest status file's mtime): the
//!   controller allocates 10,000 addresses first, which is not BGP's work.
//! - *Session*: BIRD closes the session and reopens it (`disable`, `enable`); timed from
//!   BIRD seeing it Established to all N imported: the whole table sent, received and
//!   installed, the same work for both daemons.
//!
//! Afterwards the routes are removed again (Services deleted, GoBGP's RIB cleared).

use crate::birdc::Birdc;
use crate::setup::{self, Bench, memory_kib, service, slices};
use crate::{gobgp, mrt, now, poll};
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(2);
/// 10,000 Services through the controller on a loaded 2-core machine: generous.
const LIMIT: Duration = Duration::from_secs(600);

/// One system's figures, seconds (None: that step failed).
#[derive(Debug, Default)]
pub struct Side {
    /// From writing the Services / starting the injection to all at BIRD.
    pub live: Option<f64>,
    /// FerroLB: from the controller's last status write to all at BIRD.
    pub after_status: Option<f64>,
    /// GoBGP: how long the injecting CLI took to read the routes in.
    pub cli: Option<f64>,
    /// From Established (seen at BIRD) to all at BIRD.
    pub session: Option<f64>,
    /// From `enable` to Established (how fast each side reconnects; informative).
    pub reconnect: Option<f64>,
    /// VmRSS and VmHWM with the routes, KiB.
    pub memory: Option<(u64, u64)>,
    /// Before the routes, KiB (VmRSS).
    pub rss_before: Option<u64>,
}

pub struct Bulk {
    pub routes: usize,
    pub ferrolb: Side,
    pub gobgp: Side,
    pub errors: Vec<String>,
}

pub fn measure(b: &mut Bench, n: usize) -> anyhow::Result<Bulk> {
    let mut out = Bulk {
        routes: n,
        ferrolb: Side::default(),
        gobgp: Side::default(),
        errors: Vec::new(),
    };
    note!("bulk: {n} routes from FerroLB");
    if let Err(e) = ferrolb(b, n, &mut out.ferrolb) {
        note!("bulk FerroLB FAILED: {e:#}");
        out.errors.push(format!("FerroLB: {e:#}"));
    }
    note!("bulk: {n} routes from GoBGP");
    if let Err(e) = gobgp_side(b, n, &mut out.gobgp) {
        note!("bulk GoBGP FAILED: {e:#}");
        out.errors.push(format!("GoBGP: {e:#}"));
    }
    Ok(out)
}

/// Polls BIRD until `proto` has imported `n` routes; returns when (wall clock).
fn until_imported(bird: &mut Birdc, proto: &str, n: usize) -> anyhow::Result<f64> {
    let mut last_note = now();
    poll(
        &format!("{n} routes from {proto} at BIRD"),
        EVERY,
        LIMIT,
        || {
            let p = bird.protocol(proto)?;
            if now() - last_note > 10.0 {
                last_note = now();
                note!("bulk: BIRD has {} routes from {proto}", p.imported);
            }
            Ok((p.imported == n).then(now))
        },
    )
}

/// Closes and reopens BIRD's session `proto` once `before` routes are there; returns
/// (enable → Established, Established → all `before` again).
fn session(bird: &mut Birdc, proto: &str, before: usize) -> anyhow::Result<(f64, f64)> {
    bird.set_enabled(proto, false)?;
    poll("the session to close", EVERY, LIMIT, || {
        let p = bird.protocol(proto)?;
        Ok((!p.established && p.imported == 0).then_some(()))
    })?;
    let enabled = now();
    bird.set_enabled(proto, true)?;
    let mut up = None;
    let full = poll(
        &format!("{before} routes from {proto} again"),
        EVERY,
        LIMIT,
        || {
            let p = bird.protocol(proto)?;
            if up.is_none() && p.established {
                up = Some(now());
            }
            Ok((p.imported == before).then(now))
        },
    )?;
    let up = up.expect("routes come over an established session");
    Ok((up - enabled, full - up))
}

fn ferrolb(b: &mut Bench, n: usize, side: &mut Side) -> anyhow::Result<()> {
    let pid = b.lab.pid(setup::SPEAKER)?;
    side.rss_before = Some(memory_kib(pid)?.0);
    let base = b.bird.protocol(setup::PROTO)?.imported;
    let names: Vec<String> = (0..n).map(|i| format!("big{i:06}")).collect();
    let slices_yaml: Vec<String> = names.iter().map(|s| slices(&b.lab, s)).collect();
    let services: Vec<String> = names.iter().map(|s| service(s, Some("big"))).collect();
    b.lab
        .write_manifest("big-slices.yaml", &slices_yaml.join("---\n"))?;
    // The speaker takes the endpoints in first: the Services alone are measured.
    std::thread::sleep(Duration::from_secs(2));
    let written = now();
    b.lab.write_manifest("big.yaml", &services.join("---\n"))?;
    let full = until_imported(&mut b.bird, setup::PROTO, base + n)?;
    side.live = Some(full - written);
    let last_status = last_status(b, &names)?;
    side.after_status = Some(full - last_status);
    note!(
        "bulk FerroLB: all {n} at BIRD {:.2} s after the write, {:.3} s after the last status",
        full - written,
        full - last_status
    );
    side.memory = Some(memory_kib(pid)?);
    let (reconnect, transfer) = session(&mut b.bird, setup::PROTO, base + n)?;
    side.reconnect = Some(reconnect);
    side.session = Some(transfer);
    note!("bulk FerroLB: session reopened, all {n} in {transfer:.3} s after Established");
    b.lab.remove_manifest("big.yaml")?;
    until_imported(&mut b.bird, setup::PROTO, base)?;
    b.lab.remove_manifest("big-slices.yaml")?;
    Ok(())
}

/// The newest mtime of the status files of `names`.
fn last_status(b: &Bench, names: &[String]) -> anyhow::Result<f64> {
    let dir = b.lab.status_dir().join("services").join("default");
    let mut last = 0.0f64;
    for name in names {
        let m = std::fs::metadata(dir.join(format!("{name}.yaml")))?;
        last = last.max(crate::epoch(m.modified()?));
    }
    Ok(last)
}

fn gobgp_side(b: &mut Bench, n: usize, side: &mut Side) -> anyhow::Result<()> {
    let pid = b.lab.pid(gobgp::PROCESS)?;
    side.rss_before = Some(memory_kib(pid)?.0);
    let base = b.bird.protocol(gobgp::PROTO)?.imported;
    let node = ferrolb_e2e::lab::plan::node(2).0;
    let prefixes = mrt::host_routes("10.128.0.0/15".parse()?, n);
    let bytes = mrt::table_dump(&prefixes, node);
    // Through a FIFO: `gobgp mrt inject` (3.10) ends its stream when it reaches the end of
    // the file, and paths gobgpd has not processed by then are lost (a file of 500 left
    // 274). Holding the FIFO open keeps the stream open until BIRD has them all.
    let fifo = b.lab.dir().join("gobgp-bench").join("routes.fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
    anyhow::ensure!(made.success(), "mkfifo {}: {made}", fifo.display());
    let path = fifo.to_string_lossy().into_owned();
    let started = now();
    let mut child = gobgp::spawn_cli(&b.lab, &["mrt", "inject", "global", &path])?;
    // Read and write: opening never waits for the reader, and the reader sees no end of
    // file while this end is open. Written from a thread: the pipe holds 64 KiB at a time.
    let writer = std::thread::spawn(move || -> std::io::Result<(std::fs::File, f64)> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)?;
        f.write_all(&bytes)?;
        Ok((f, now()))
    });
    let bird = &mut b.bird;
    let want = base + n;
    let full = poll(
        &format!("{want} routes from GoBGP at BIRD"),
        EVERY,
        LIMIT,
        || {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("gobgp mrt inject ended early ({status})");
            }
            Ok((bird.protocol(gobgp::PROTO)?.imported == want).then(now))
        },
    );
    // Closing the FIFO ends the CLI (a writer blocked on a dead reader is left behind).
    let read_in = match full {
        Ok(_) => writer.join().ok().and_then(Result::ok).map(|(f, at)| {
            drop(f);
            at
        }),
        Err(_) => None,
    };
    // It ends by itself at the end of the FIFO; killed only if it does not.
    let _ = poll(
        "gobgp mrt inject to end",
        EVERY,
        Duration::from_secs(5),
        || Ok(child.try_wait()?.map(drop)),
    );
    let _ = child.kill();
    let _ = child.wait();
    let full = full?;
    side.cli = read_in.map(|t| t - started);
    side.live = Some(full - started);
    note!(
        "bulk GoBGP: all {n} at BIRD {:.3} s after starting the injection",
        full - started
    );
    side.memory = Some(memory_kib(pid)?);
    let (reconnect, transfer) = session(&mut b.bird, gobgp::PROTO, base + n)?;
    side.reconnect = Some(reconnect);
    side.session = Some(transfer);
    note!("bulk GoBGP: session reopened, all {n} in {transfer:.3} s after Established");
    gobgp::clear(&b.lab)?;
    until_imported(&mut b.bird, gobgp::PROTO, base)?;
    Ok(())
}
