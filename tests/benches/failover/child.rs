//! The part of the benchmark that runs inside a lab host: the bench re-runs itself there
//! (`ip netns exec <client1> <bench> --scenario udp VIP PORT INTERVAL_MS LIFETIME_S`).
//!
//! The UDP probe sends a datagram to VIP:PORT every INTERVAL_MS and prints, for every answer,
//! `answer <wall-clock seconds> <source> <first word of the answer>` at once, until it is
//! stopped or LIFETIME_S has passed. It never connects its socket: keepalived's nodes answer
//! from their own address, FerroLB's pods from the Service's.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

pub fn scenario(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| {
        arg(i)
            .parse::<u64>()
            .map_err(|e| format!("{:?}: {e}", arg(i)))
    };
    match arg(0) {
        "udp" => {
            let ip: IpAddr = arg(1).parse().map_err(|e| format!("{:?}: {e}", arg(1)))?;
            let port = u16::try_from(num(2)?).map_err(|e| e.to_string())?;
            udp_probe(
                SocketAddr::new(ip, port),
                Duration::from_millis(num(3)?.max(1)),
                Duration::from_secs(num(4)?.min(3600)),
            )
        }
        other => Err(format!("unknown scenario {other:?}")),
    }
}

pub use ferrolb_e2e::bench::require_lab_netns;

fn udp_probe(to: SocketAddr, interval: Duration, lifetime: Duration) -> Result<(), String> {
    require_lab_netns()?;
    let bind: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().expect("address")
    } else {
        "[::]:0".parse().expect("address")
    };
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let sender = socket.try_clone().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + lifetime;
    std::thread::spawn(move || {
        let mut next = Instant::now();
        let mut seq = 0u64;
        while Instant::now() < deadline {
            // Errors (no neighbour yet, an ICMP error reported back) are part of an outage.
            let _ = sender.send_to(format!("probe {seq}\n").as_bytes(), to);
            seq += 1;
            next += interval;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now;
            }
        }
    });
    let mut buf = [0u8; 2048];
    let mut out = std::io::stdout().lock();
    while Instant::now() < deadline {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let t = crate::probes::now();
        let text = String::from_utf8_lossy(&buf[..n]);
        let first = text.split_whitespace().next().unwrap_or("-");
        writeln!(out, "answer {t:.6} {from} {first}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}
