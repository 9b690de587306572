//! The two probes, identical for FerroLB and keepalived, and what they saw:
//!
//! - [`ArpWatch`]: tcpdump on client2's LAN side (`-tt`: kernel timestamps, wall clock) while
//!   arping on client2 asks for the address every 10 ms (25 ms while a failure is undone);
//!   every request of client2 and every reply sent to it, with its MAC.
//! - [`UdpProbe`]: this bench re-run inside client1 (`--scenario udp`), sending a datagram to
//!   port 7000 of the address every 10 ms and printing the wall-clock time of every answer.

use crate::stream::Stream;
use ferrolb_e2e::lab::Lab;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The LAN client that sends ARP requests and captures the replies.
pub const ARP_CLIENT: &str = "client2";
/// The LAN client whose UDP traffic measures the outage a client sees.
pub const UDP_CLIENT: &str = "client1";
/// The echo servers' UDP port.
pub const ECHO_UDP: u16 = 7000;
/// Interval of both probes.
pub const INTERVAL: Duration = Duration::from_millis(10);

/// Wall-clock seconds since the epoch: the time base of tcpdump `-tt` and the UDP probe.
pub fn now() -> f64 {
    epoch(SystemTime::now())
}

pub fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One ARP frame seen on client2: a request for `ip` from client2, or a reply about `ip`
/// sent to client2 (gratuitous broadcasts are not replies to anyone and are left out).
#[derive(Clone, Debug, PartialEq)]
pub enum Arp {
    Request { t: f64, ip: Ipv4Addr },
    Reply { t: f64, ip: Ipv4Addr, mac: String },
}

impl Arp {
    pub fn t(&self) -> f64 {
        match self {
            Arp::Request { t, .. } | Arp::Reply { t, .. } => *t,
        }
    }
}

/// Parse one `tcpdump -tt -e -n` line: `<epoch> <src> > <dst>, ethertype ARP (0x0806),
/// length 42: Request who-has <ip> tell <ip>, length 28` or `...: Reply <ip> is-at <mac>, ...`.
pub fn parse_arp(line: &str, client_mac: &str) -> Option<Arp> {
    let mut words = line.split_whitespace();
    let t: f64 = words.next()?.parse().ok()?;
    let src = words.next()?;
    let _ = words.next()?;
    let dst = words.next()?.trim_end_matches(',');
    let (_, what) = line.split_once(": ")?;
    let mut w = what.split_whitespace();
    match w.next()? {
        "Request" if src == client_mac => {
            let _ = w.next()?; // who-has
            let ip = w.next()?.trim_end_matches(',').parse().ok()?;
            Some(Arp::Request { t, ip })
        }
        "Reply" if dst == client_mac => {
            let ip = w.next()?.parse().ok()?;
            let _ = w.next()?; // is-at
            let mac = w.next()?.trim_end_matches(',').to_ascii_lowercase();
            Some(Arp::Reply { t, ip, mac })
        }
        _ => None,
    }
}

/// tcpdump on client2, for the whole of a session.
pub struct ArpWatch {
    capture: Stream,
    client_mac: String,
    read: usize,
    events: Vec<Arp>,
}

/// The most packets one capture keeps (a bound; a session sees a few tens of thousands).
const CAPTURE_PACKETS: &str = "2000000";

impl ArpWatch {
    pub fn start(lab: &Lab) -> anyhow::Result<ArpWatch> {
        let client_mac = lab.mac(ARP_CLIENT, "eth0")?;
        let tcpdump = ferrolb_e2e::lab::cmd::require_tool("tcpdump", "tcpdump")?;
        let mut capture = Stream::start(
            lab,
            ARP_CLIENT,
            &[
                &tcpdump.to_string_lossy(),
                "-i",
                "eth0",
                "-tt",
                "-n",
                "-e",
                "-l",
                "-U",
                "--immediate-mode",
                "-c",
                CAPTURE_PACKETS,
                "arp",
            ],
        )?;
        capture.wait_for("listening on", Duration::from_secs(5))?;
        Ok(ArpWatch {
            capture,
            client_mac,
            read: 0,
            events: Vec::new(),
        })
    }

    /// Read what tcpdump printed since the last call.
    pub fn update(&mut self) -> &[Arp] {
        let lines = self.capture.lines_from(self.read);
        self.read += lines.len();
        self.events
            .extend(lines.iter().filter_map(|l| parse_arp(l, &self.client_mac)));
        &self.events
    }

    /// The events from time `after` on (the capture is in time order).
    fn after(&mut self, after: f64) -> &[Arp] {
        self.update();
        let i = self.events.partition_point(|e| e.t() <= after);
        &self.events[i..]
    }

    /// The first reply about `ip` after `after` from a MAC other than `old`: its time and MAC.
    pub fn first_other_reply(
        &mut self,
        ip: Ipv4Addr,
        old: &str,
        after: f64,
    ) -> Option<(f64, String)> {
        self.after(after).iter().find_map(|e| match e {
            Arp::Reply { t, ip: i, mac } if *i == ip && mac != old => Some((*t, mac.clone())),
            _ => None,
        })
    }

    /// The first reply about `ip` after `after`, from anyone.
    pub fn first_reply(&mut self, ip: Ipv4Addr, after: f64) -> Option<f64> {
        self.after(after).iter().find_map(|e| match e {
            Arp::Reply { t, ip: i, .. } if *i == ip => Some(*t),
            _ => None,
        })
    }

    /// The first request for `ip` after `after` (so the caller knows arping is at work).
    pub fn first_request(&mut self, ip: Ipv4Addr, after: f64) -> Option<f64> {
        self.after(after).iter().find_map(|e| match e {
            Arp::Request { t, ip: i } if *i == ip => Some(*t),
            _ => None,
        })
    }

    /// The events about `ip` in `[from, to]`.
    pub fn window(&mut self, ip: Ipv4Addr, from: f64, to: f64) -> Vec<Arp> {
        self.all(from, to)
            .into_iter()
            .filter(|e| match e {
                Arp::Request { ip: i, .. } | Arp::Reply { ip: i, .. } => *i == ip,
            })
            .collect()
    }

    /// Every event in `[from, to]`.
    pub fn all(&mut self, from: f64, to: f64) -> Vec<Arp> {
        self.update();
        let i = self.events.partition_point(|e| e.t() < from);
        self.events[i..]
            .iter()
            .take_while(|e| e.t() <= to)
            .cloned()
            .collect()
    }

    pub fn stop(self) {
        drop(self.capture.stop());
    }
}

/// One request of client2 and the replies that came before the next one.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    pub t: f64,
    /// (MAC, time) of every reply.
    pub replies: Vec<(String, f64)>,
}

impl Exchange {
    /// How many different MACs replied.
    pub fn macs(&self) -> usize {
        let mut macs: Vec<&str> = self.replies.iter().map(|(m, _)| m.as_str()).collect();
        macs.sort_unstable();
        macs.dedup();
        macs.len()
    }
}

/// Group `events` into requests and the replies that followed each.
pub fn exchanges(events: &[Arp]) -> Vec<Exchange> {
    let mut out: Vec<Exchange> = Vec::new();
    for e in events {
        match e {
            Arp::Request { t, .. } => out.push(Exchange {
                t: *t,
                replies: Vec::new(),
            }),
            Arp::Reply { t, mac, .. } => {
                if let Some(last) = out.last_mut() {
                    last.replies.push((mac.clone(), *t));
                }
            }
        }
    }
    out
}

/// arping on client2 for `ip`, every `interval`, at most `count` requests.
pub fn arping(lab: &Lab, ip: Ipv4Addr, interval: Duration, count: u32) -> anyhow::Result<Stream> {
    let arping = ferrolb_e2e::lab::cmd::require_tool("arping", "arping")?;
    Stream::start(
        lab,
        ARP_CLIENT,
        &[
            &arping.to_string_lossy(),
            "-q",
            "-W",
            &format!("{}", interval.as_secs_f64()),
            "-c",
            &count.to_string(),
            "-i",
            "eth0",
            &ip.to_string(),
        ],
    )
}

/// The MACs answering one ARP request for `ip` from client2 within 100 ms, sorted. (The
/// lab's `Lab::arping` waits a whole second after its last request; this does not.)
pub fn arp_once(lab: &Lab, ip: Ipv4Addr) -> anyhow::Result<Vec<String>> {
    Ok(lab.arping_once(ARP_CLIENT, "eth0", ip, Duration::from_millis(100))?)
}

/// The UDP probe in client1, for the whole of a session.
pub struct UdpProbe {
    probe: Stream,
    read: usize,
    /// Wall-clock times of the answers, in order.
    pub answers: Vec<f64>,
}

/// The longest a UDP probe runs (a bound; it is stopped at the end of its session).
const UDP_LIFETIME_SECS: u32 = 900;

impl UdpProbe {
    pub fn start(lab: &Lab, ip: Ipv4Addr) -> anyhow::Result<UdpProbe> {
        let exe = std::env::current_exe()?;
        let mut probe = Stream::start(
            lab,
            UDP_CLIENT,
            &[
                &exe.to_string_lossy(),
                "--scenario",
                "udp",
                &ip.to_string(),
                &ECHO_UDP.to_string(),
                &INTERVAL.as_millis().to_string(),
                &UDP_LIFETIME_SECS.to_string(),
            ],
        )?;
        probe.wait_for("answer ", Duration::from_secs(20))?;
        Ok(UdpProbe {
            probe,
            read: 0,
            answers: Vec::new(),
        })
    }

    pub fn update(&mut self) -> &[f64] {
        let lines = self.probe.lines_from(self.read);
        self.read += lines.len();
        self.answers.extend(lines.iter().filter_map(|l| {
            l.strip_prefix("answer ")?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        }));
        &self.answers
    }

    /// The first answer after `after`.
    pub fn first_after(&mut self, after: f64) -> Option<f64> {
        let answers = self.update();
        let i = answers.partition_point(|t| *t <= after);
        answers.get(i).copied()
    }

    /// The longest gap between consecutive answers, over the answers in `[from, to]` and the
    /// last one before `from` (so an outage that began just before `from` counts whole).
    pub fn longest_gap(&mut self, from: f64, to: f64) -> Option<f64> {
        let answers = self.update();
        let start = answers.iter().rposition(|t| *t < from).unwrap_or(0);
        answers[start..]
            .iter()
            .take_while(|t| **t <= to)
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| w[1] - w[0])
            .max_by(f64::total_cmp)
    }

    pub fn stop(self) {
        drop(self.probe.stop());
    }
}
