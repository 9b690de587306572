//! `ferrolb-lab-echo`: the lab's pod server, and the probe that talks to it.
//!
//! ```text
//! ferrolb-lab-echo --name POD [--tcp PORT] [--udp PORT] [--http PORT]
//! ferrolb-lab-echo probe tcp|udp|http ADDR PORT [--timeout-ms MS] [--source ADDR[:PORT]]
//! ferrolb-lab-echo get ADDR PORT PATH [--timeout-ms MS]
//! ferrolb-lab-echo cps ADDR PORT [--conns N] [--concurrency C] [--seconds T] [--timeout-ms MS]
//! ferrolb-lab-echo hold ADDR PORT [--hold N] [--duration-ms MS] [--new-every-ms MS] [--check-every-ms MS]
//! ```
//!
//! The server binds `[::]` (dual-stack) and answers every TCP connection, UDP datagram and
//! HTTP `GET` with one line, `pod=<name> client=<address:port it saw>`, so tests can tell
//! which backend answered and whether the client address was preserved. After the line, TCP
//! connections echo what they receive. The probe prints the line it got, or fails. `get` is a
//! plain HTTP client for any server in a lab host (metrics, health endpoints): it prints the
//! status code on the first line, then the body. `cps` opens short TCP connections to an echo
//! server (connect, read its line, close), at most N in all, C at a time, for at most T seconds,
//! and prints `ok=... errors=... secs=... cps=...` (`ferrolb_e2e::lab::load`). `hold` keeps N
//! TCP connections open and echoes a line through each periodically, while it opens new
//! connections one after another, logging every event with the wall clock
//! (`ferrolb_e2e::lab::hold`). A probe's `--source` picks the client address (one of the
//! host's), so one host can stand for many clients, and optionally the port, so successive
//! UDP probes are one flow.

use clap::{Parser, Subcommand};
use ferrolb_e2e::lab::hold::{self, HoldSpec};
use ferrolb_e2e::lab::load::{self, CpsOptions};
use ferrolb_e2e::lab::{Answer, Proto};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "ferrolb-lab-echo",
    about = "The lab's pod echo server (and its probe)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The pod name to answer with.
    #[arg(long)]
    name: Option<String>,
    /// TCP port: one line, then echo.
    #[arg(long)]
    tcp: Option<u16>,
    /// UDP port: one line per datagram.
    #[arg(long)]
    udp: Option<u16>,
    /// HTTP port: `GET` answers the line as the body.
    #[arg(long)]
    http: Option<u16>,
}

#[derive(Subcommand)]
enum Command {
    /// Ask an echo server and print its line.
    Probe {
        /// tcp, udp or http.
        proto: Proto,
        /// Address to reach.
        addr: IpAddr,
        /// Port to reach.
        port: u16,
        /// Give up after this long.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
        /// Send from this address (one of the host's) instead of the kernel's choice, and from
        /// this port if one is given (`10.0.0.1:4000`, `[fd00::1]:4000`).
        #[arg(long, value_parser = parse_source)]
        source: Option<SocketAddr>,
    },
    /// HTTP GET any URL path; print the status code, then the body.
    Get {
        /// Address to reach.
        addr: IpAddr,
        /// Port to reach.
        port: u16,
        /// The path, e.g. /readyz.
        path: String,
        /// Give up after this long.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Short TCP connections per second to an echo server, bounded in count and time.
    Cps {
        /// Address to reach.
        addr: IpAddr,
        /// Port to reach (the echo TCP port).
        port: u16,
        /// Connections in all, at most.
        #[arg(long, default_value_t = 100_000)]
        conns: u64,
        /// Connections at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Start no connection after this many seconds.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Per connection: give up after this long.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Send a stream of bytes through a TCP echo server and check that every byte comes back
    /// in order (the proxy's bulk path); print the server's line and the byte count.
    Bulk {
        /// Address to reach.
        addr: IpAddr,
        /// Port to reach (the echo TCP port).
        port: u16,
        /// Bytes to send (at most 256 MiB).
        #[arg(long, default_value_t = 8 << 20)]
        bytes: usize,
        /// Give up when nothing moves for this long.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Hold TCP connections open and check them while opening new ones; log every event.
    Hold {
        /// Address to reach.
        addr: IpAddr,
        /// Port to reach (the echo TCP port).
        port: u16,
        /// Long-lived connections (at most 64).
        #[arg(long, default_value_t = 6)]
        hold: usize,
        /// Open no new connection after this long (at most 60 s).
        #[arg(long, default_value_t = 4000)]
        duration_ms: u64,
        /// Pause between new connections.
        #[arg(long, default_value_t = 20)]
        new_every_ms: u64,
        /// Echo through every held connection this often.
        #[arg(long, default_value_t = 100)]
        check_every_ms: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Probe {
            proto,
            addr,
            port,
            timeout_ms,
            source,
        }) => probe(
            proto,
            SocketAddr::new(addr, port),
            source,
            Duration::from_millis(timeout_ms),
        )
        .map(|line| {
            println!("{line}");
        }),
        Some(Command::Bulk {
            addr,
            port,
            bytes,
            timeout_ms,
        }) => bulk(
            SocketAddr::new(addr, port),
            bytes.min(256 << 20),
            Duration::from_millis(timeout_ms),
        )
        .map(|line| println!("{line}")),
        Some(Command::Get {
            addr,
            port,
            path,
            timeout_ms,
        }) => http_get(
            SocketAddr::new(addr, port),
            None,
            &path,
            Duration::from_millis(timeout_ms),
        )
        .map(|(status, body)| print!("{status}\n{body}")),
        Some(Command::Hold {
            addr,
            port,
            hold,
            duration_ms,
            new_every_ms,
            check_every_ms,
        }) => {
            let spec = HoldSpec {
                hold,
                duration: Duration::from_millis(duration_ms),
                new_every: Duration::from_millis(new_every_ms),
                check_every: Duration::from_millis(check_every_ms),
            };
            hold::run(SocketAddr::new(addr, port), &spec, &mut std::io::stdout())
                .map_err(|e| format!("hold: {e}"))
        }
        Some(Command::Cps {
            addr,
            port,
            conns,
            concurrency,
            seconds,
            timeout_ms,
        }) => {
            let report = load::run(CpsOptions {
                to: SocketAddr::new(addr, port),
                conns,
                concurrency,
                duration: Duration::from_secs_f64(seconds.clamp(0.0, 600.0)),
                timeout: Duration::from_millis(timeout_ms),
            });
            println!("{}", report.line());
            Ok(())
        }
        None => match cli.name {
            Some(name) => serve(name, cli.tcp, cli.udp, cli.http),
            None => Err("give --name POD to serve, or use `probe`".into()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrolb-lab-echo: {e}");
            ExitCode::from(1)
        }
    }
}

type Res<T> = Result<T, String>;

fn bind_tcp(port: u16) -> Res<TcpListener> {
    // [::] with the kernel default (bindv6only=0) accepts IPv4 too, as ::ffff:a.b.c.d.
    TcpListener::bind(("::", port)).map_err(|e| format!("bind tcp [::]:{port}: {e}"))
}

fn serve(name: String, tcp: Option<u16>, udp: Option<u16>, http: Option<u16>) -> Res<()> {
    let mut threads = Vec::new();
    if let Some(port) = tcp {
        let l = bind_tcp(port)?;
        let name = name.clone();
        threads.push(std::thread::spawn(move || accept(l, name, handle_tcp)));
    }
    if let Some(port) = http {
        let l = bind_tcp(port)?;
        let name = name.clone();
        threads.push(std::thread::spawn(move || accept(l, name, handle_http)));
    }
    if let Some(port) = udp {
        let s = UdpSocket::bind(("::", port)).map_err(|e| format!("bind udp [::]:{port}: {e}"))?;
        let name = name.clone();
        threads.push(std::thread::spawn(move || serve_udp(s, name)));
    }
    if threads.is_empty() {
        return Err("nothing to serve: give --tcp, --udp or --http".into());
    }
    // The lab waits for this line before it uses the pod.
    println!("{name}: listening tcp={tcp:?} udp={udp:?} http={http:?}");
    std::io::stdout().flush().ok();
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn accept(l: TcpListener, name: String, handle: fn(TcpStream, &str) -> std::io::Result<()>) {
    for conn in l.incoming() {
        let Ok(conn) = conn else { continue };
        let name = name.clone();
        std::thread::spawn(move || {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
            let _ = handle(conn, &name);
        });
    }
}

fn handle_tcp(mut conn: TcpStream, name: &str) -> std::io::Result<()> {
    let peer = conn.peer_addr()?;
    writeln!(conn, "{}", Answer::line(name, peer))?;
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n])?;
    }
}

fn handle_http(mut conn: TcpStream, name: &str) -> std::io::Result<()> {
    let peer = conn.peer_addr()?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Skip the headers; a GET has no body.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let (status, body) = if request.starts_with("GET ") {
        ("200 OK", format!("{}\n", Answer::line(name, peer)))
    } else {
        ("405 Method Not Allowed", "only GET\n".to_string())
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn serve_udp(s: UdpSocket, name: String) {
    let mut buf = [0u8; 2048];
    loop {
        if let Ok((_, peer)) = s.recv_from(&mut buf) {
            let _ = s.send_to(format!("{}\n", Answer::line(&name, peer)).as_bytes(), peer);
        }
    }
}

/// `ADDR` or `ADDR:PORT` (port 0: any).
fn parse_source(s: &str) -> Res<SocketAddr> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)))
        .map_err(|_| format!("not an address or address:port: {s:?}"))
}

/// The byte at `i` of a bulk stream: not periodic in any power of two, so a chunk lost,
/// repeated or reordered shows.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8 ^ (i / 251 % 253) as u8
}

/// Sends `bytes` bytes of [`pattern`] through the echo server at `to` while reading them
/// back; the server's line and the count when all came back intact.
fn bulk(to: SocketAddr, bytes: usize, timeout: Duration) -> Res<String> {
    bulk_io(to, bytes, timeout).map_err(|e| format!("bulk through {to}: {e}"))
}

fn bulk_io(to: SocketAddr, bytes: usize, timeout: Duration) -> std::io::Result<String> {
    let conn = TcpStream::connect_timeout(&to, timeout)?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    let mut reader = std::io::BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line)?;
    let mut writer = conn;
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut sent = 0;
        while sent < bytes {
            let n = chunk.len().min(bytes - sent);
            for (k, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(sent + k);
            }
            writer.write_all(&chunk[..n])?;
            sent += n;
        }
        writer.shutdown(std::net::Shutdown::Write)
    });
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(k) = (0..n).find(|&k| buf[k] != pattern(got + k)) {
            let wrong = format!("byte {} came back wrong", got + k);
            return Err(std::io::Error::other(wrong));
        }
        got += n;
    }
    sender
        .join()
        .map_err(|_| std::io::Error::other("the sender panicked"))??;
    if got != bytes {
        let short = format!("{got} of {bytes} bytes came back");
        return Err(std::io::Error::other(short));
    }
    Ok(format!("{} {got} bytes echoed intact", line.trim_end()))
}

/// A TCP connection to `to`, from `source` if given.
fn connect(
    to: SocketAddr,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect_timeout(&to, timeout);
    };
    let s = socket2::Socket::new(
        socket2::Domain::for_address(to),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.bind(&source.into())?;
    s.connect_timeout(&to.into(), timeout)?;
    Ok(s.into())
}

fn probe(
    proto: Proto,
    to: SocketAddr,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> Res<String> {
    let err = |e: std::io::Error| format!("{} {to}: {e}", proto.name());
    let deadline = Instant::now() + timeout;
    let line = match proto {
        Proto::Tcp => {
            let mut c = connect(to, source, timeout).map_err(err)?;
            c.set_read_timeout(Some(remaining(deadline))).map_err(err)?;
            let mut line = String::new();
            BufReader::new(&mut c).read_line(&mut line).map_err(err)?;
            line
        }
        Proto::Udp => {
            let any: IpAddr = if to.is_ipv4() {
                Ipv4Addr::UNSPECIFIED.into()
            } else {
                Ipv6Addr::UNSPECIFIED.into()
            };
            let local = source.unwrap_or(SocketAddr::new(any, 0));
            let s = UdpSocket::bind(local).map_err(err)?;
            s.connect(to).map_err(err)?;
            let mut buf = [0u8; 2048];
            // Datagrams can be lost while neighbors resolve: ask again a few times.
            loop {
                s.send(b"ping\n").map_err(err)?;
                let left = remaining(deadline);
                s.set_read_timeout(Some(left.min(Duration::from_millis(300))))
                    .map_err(err)?;
                match s.recv(&mut buf) {
                    Ok(n) => break String::from_utf8_lossy(&buf[..n]).into_owned(),
                    Err(e) if Instant::now() >= deadline => return Err(err(e)),
                    Err(_) => continue,
                }
            }
        }
        Proto::Http => match http_get(to, source, "/", timeout)? {
            (200, body) => body,
            (status, _) => return Err(format!("http {to}: status {status}")),
        },
    };
    let line = line.trim().to_string();
    Answer::parse(&line)
        .map(|_| line.clone())
        .ok_or_else(|| format!("{} {to}: not an echo answer: {line:?}", proto.name()))
}

/// A minimal HTTP/1.1 GET (Connection: close): the status code and the body.
fn http_get(
    to: SocketAddr,
    source: Option<SocketAddr>,
    path: &str,
    timeout: Duration,
) -> Res<(u16, String)> {
    let err = |e: std::io::Error| format!("http {to}{path}: {e}");
    let mut c = connect(to, source, timeout).map_err(err)?;
    c.set_read_timeout(Some(timeout)).map_err(err)?;
    let host = match to.ip() {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(err)?;
    let mut resp = String::new();
    c.read_to_string(&mut resp).map_err(err)?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("http {to}{path}: not an HTTP answer: {head:?}"))?;
    Ok((status, body.to_string()))
}

fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}
