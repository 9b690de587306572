//! The pods' echo servers and the probes that talk to them from inside a host.
//!
//! A test process cannot open a socket in another network namespace without `setns`, so a
//! probe runs `ferrolb-lab-echo probe ...` in the host with `ip netns exec` and reads the one
//! line the echo server answers: `pod=<name> client=<address the pod saw>`.

use super::error::{LabError, Result};
use super::host::Role;
use super::instance::{Lab, binary};
use super::plan;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How the echo server is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// A TCP connection: the server writes its line first.
    Tcp,
    /// A UDP datagram: the server answers with its line.
    Udp,
    /// HTTP/1.1 `GET /`: the body is the line.
    Http,
}

impl Proto {
    /// Lower-case name, as the probe command takes it.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Http => "http",
        }
    }

    /// The echo servers' port for this protocol.
    pub fn echo_port(self) -> u16 {
        match self {
            Proto::Tcp => plan::ECHO_TCP,
            Proto::Udp => plan::ECHO_UDP,
            Proto::Http => plan::ECHO_HTTP,
        }
    }
}

impl std::str::FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "http" => Ok(Proto::Http),
            _ => Err(format!("unknown protocol {s:?}: use tcp, udp or http")),
        }
    }
}

/// What an echo server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The pod that answered.
    pub pod: String,
    /// The client address and port the pod saw (IPv4-mapped addresses shown as IPv4).
    pub client: SocketAddr,
}

impl Answer {
    /// The line an echo server sends.
    pub fn line(pod: &str, client: SocketAddr) -> String {
        let client = SocketAddr::new(client.ip().to_canonical(), client.port());
        format!("pod={pod} client={client}")
    }

    /// Parse an echo server's line.
    pub fn parse(line: &str) -> Option<Answer> {
        let mut pod = None;
        let mut client = None;
        for word in line.split_whitespace() {
            if let Some(v) = word.strip_prefix("pod=") {
                pod = Some(v.to_string());
            } else if let Some(v) = word.strip_prefix("client=") {
                client = v.parse().ok();
            }
        }
        Some(Answer {
            pod: pod?,
            client: client?,
        })
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pod {} (saw client {})", self.pod, self.client.ip())
    }
}

/// Start `ferrolb-lab-echo` in every pod and wait until each listens.
pub(crate) fn start_echo_servers(lab: &Lab) -> Result<()> {
    let bin = binary("ferrolb-lab-echo")?;
    let bin = bin.to_string_lossy();
    let (tcp, udp, http) = (
        plan::ECHO_TCP.to_string(),
        plan::ECHO_UDP.to_string(),
        plan::ECHO_HTTP.to_string(),
    );
    let mut names = Vec::new();
    for pod in lab
        .hosts()
        .iter()
        .filter(|h| matches!(h.role, Role::Pod { .. }))
    {
        let argv = [
            &*bin, "--name", &pod.name, "--tcp", &tcp, "--udp", &udp, "--http", &http,
        ];
        names.push(lab.spawn("echo", &pod.name, &argv)?);
    }
    for n in names {
        lab.wait_log(&n, "listening", Duration::from_secs(10))?;
    }
    Ok(())
}

impl Lab {
    /// Ask the echo server at `addr:port` from inside `from`, within `timeout`.
    pub fn probe_with_timeout(
        &self,
        from: &str,
        proto: Proto,
        addr: IpAddr,
        port: u16,
        timeout: Duration,
    ) -> Result<Answer> {
        self.probe_inner(from, None, proto, addr, port, timeout)
    }

    /// [`Lab::probe`] from `source`, one of the addresses of `from` (added with `ip addr add`),
    /// and its port unless 0: one host stands for many clients, and successive UDP probes
    /// from one port are one flow.
    pub fn probe_as(
        &self,
        from: &str,
        source: SocketAddr,
        proto: Proto,
        addr: IpAddr,
        port: u16,
    ) -> Result<Answer> {
        self.probe_inner(
            from,
            Some(source),
            proto,
            addr,
            port,
            Duration::from_secs(2),
        )
    }

    fn probe_inner(
        &self,
        from: &str,
        source: Option<SocketAddr>,
        proto: Proto,
        addr: IpAddr,
        port: u16,
        timeout: Duration,
    ) -> Result<Answer> {
        let bin = binary("ferrolb-lab-echo")?;
        let (a, p, t) = (
            addr.to_string(),
            port.to_string(),
            timeout.as_millis().to_string(),
        );
        let bin = bin.to_string_lossy();
        let mut argv = vec![&*bin, "probe", proto.name(), &a, &p, "--timeout-ms", &t];
        let source = source.map(|s| s.to_string());
        if let Some(s) = &source {
            argv.extend(["--source", s]);
        }
        let out = self.exec(from, &argv)?;
        Answer::parse(out.trim()).ok_or_else(|| LabError::Parse {
            host: from.into(),
            command: format!("ferrolb-lab-echo probe {} {a} {p}", proto.name()),
            reason: format!("not an echo answer: {out:?}"),
        })
    }

    /// HTTP `GET path` on any server at `addr:port`, from inside `from` (metrics, health
    /// endpoints): the status code and the body.
    pub fn http_request(
        &self,
        from: &str,
        addr: IpAddr,
        port: u16,
        path: &str,
    ) -> Result<(u16, String)> {
        let bin = binary("ferrolb-lab-echo")?;
        let (a, p) = (addr.to_string(), port.to_string());
        let out = self.exec(from, &[&bin.to_string_lossy(), "get", &a, &p, path])?;
        let (status, body) = out.split_once('\n').unwrap_or((&out, ""));
        let status = status.trim().parse().map_err(|_| LabError::Parse {
            host: from.into(),
            command: format!("ferrolb-lab-echo get {a} {p} {path}"),
            reason: format!("no status code in {out:?}"),
        })?;
        Ok((status, body.to_string()))
    }

    /// Ask the echo server at `addr:port` from inside `from` (2 s timeout).
    pub fn probe(&self, from: &str, proto: Proto, addr: IpAddr, port: u16) -> Result<Answer> {
        self.probe_with_timeout(from, proto, addr, port, Duration::from_secs(2))
    }

    /// Connect over TCP to the echo port of `addr` from `from`.
    pub fn connect_tcp(&self, from: &str, addr: IpAddr) -> Result<Answer> {
        self.probe(from, Proto::Tcp, addr, plan::ECHO_TCP)
    }

    /// Send a UDP datagram to the echo port of `addr` from `from`.
    pub fn send_udp(&self, from: &str, addr: IpAddr) -> Result<Answer> {
        self.probe(from, Proto::Udp, addr, plan::ECHO_UDP)
    }

    /// `GET /` on the echo HTTP port of `addr` from `from`.
    pub fn http_get(&self, from: &str, addr: IpAddr) -> Result<Answer> {
        self.probe(from, Proto::Http, addr, plan::ECHO_HTTP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_round_trips() {
        let a: SocketAddr = "[::ffff:10.0.0.1]:5".parse().unwrap();
        let line = Answer::line("p1", a);
        assert_eq!(line, "pod=p1 client=10.0.0.1:5");
        let back = Answer::parse(&line).unwrap();
        assert_eq!(back.pod, "p1");
        assert_eq!(back.client, "10.0.0.1:5".parse().unwrap());
        let v6 = Answer::parse("pod=x client=[fd00::1]:80").unwrap();
        assert_eq!(v6.client.ip(), "fd00::1".parse::<IpAddr>().unwrap());
        assert_eq!(Answer::parse("nonsense"), None);
    }
}
