//! BIRD's table, read fast: the bench speaks BIRD's control protocol on its socket
//! (`<lab>/bird-router/bird.ctl`) over one long-lived connection, instead of starting `birdc`
//! (a process in the router's namespace, several ms each) per look. A query takes tens of
//! microseconds, so polling every millisecond measures BIRD's table, not the poller.
//!
//! The socket is a file: connecting to it needs no network namespace, and touches no network.
//!
//! The protocol (BIRD's `nest/cli.c`): every reply line starts with a 4-digit code and `-`
//! (more follows), or a space alone (same code as the line before); a code followed by a
//! space ends the reply (`0000 ` after a listing, `8001 Network not found`, ...).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A BGP protocol as BIRD reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Protocol {
    pub established: bool,
    /// Routes it imported into BIRD's table (its channel's counter).
    pub imported: usize,
}

pub struct Birdc {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Birdc {
    /// Connects to BIRD's control socket and reads its greeting.
    pub fn connect(socket: &Path) -> anyhow::Result<Birdc> {
        let stream = UnixStream::connect(socket)
            .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", socket.display()))?;
        // A wedged BIRD must fail the bench, not hang it.
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let writer = stream.try_clone()?;
        let mut me = Birdc {
            reader: BufReader::new(stream),
            writer,
        };
        let hello = me.reply()?;
        anyhow::ensure!(
            hello.iter().any(|l| l.contains("ready")),
            "BIRD did not greet: {hello:?}"
        );
        Ok(me)
    }

    /// Sends one command and returns its reply, one entry per line, without the codes.
    pub fn query(&mut self, command: &str) -> anyhow::Result<Vec<String>> {
        self.writer.write_all(format!("{command}\n").as_bytes())?;
        self.reply()
    }

    fn reply(&mut self) -> anyhow::Result<Vec<String>> {
        let mut lines = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            anyhow::ensure!(
                self.reader.read_line(&mut line)? > 0,
                "BIRD closed its control socket"
            );
            let text = line.trim_end_matches('\n');
            let b = text.as_bytes();
            let coded = b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit);
            if coded && b[4] == b' ' {
                lines.push(text[5..].to_string());
                return Ok(lines);
            }
            lines.push(
                if coded {
                    &text[5..]
                } else {
                    text.get(1..).unwrap_or("")
                }
                .to_string(),
            );
        }
    }

    /// The protocols (`node1_v4`, ...) that have a route for exactly `prefix` in BIRD's table.
    pub fn sources(&mut self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let reply = self.query(&format!("show route {prefix}"))?;
        Ok(reply
            .iter()
            .filter_map(|l| {
                let (_, rest) = l.split_once(" [")?;
                Some(
                    rest.split_whitespace()
                        .next()?
                        .trim_end_matches(']')
                        .to_string(),
                )
            })
            .collect())
    }

    /// BIRD's view of protocol `proto`: session state and routes imported. Cheap for BIRD
    /// (counters it keeps), unlike counting routes in its table, so it can be asked every
    /// millisecond while 10,000 routes arrive.
    pub fn protocol(&mut self, proto: &str) -> anyhow::Result<Protocol> {
        let reply = self.query(&format!("show protocols all {proto}"))?;
        let mut p = Protocol::default();
        for l in &reply {
            let t = l.trim();
            if let Some(state) = t.strip_prefix("BGP state:") {
                p.established = state.trim() == "Established";
            } else if let Some(routes) = t.strip_prefix("Routes:") {
                // "10000 imported, 0 exported, 10000 preferred"
                p.imported = routes
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
            }
        }
        Ok(p)
    }

    /// `disable` or `enable` a protocol (the router closing or reopening the session).
    pub fn set_enabled(&mut self, proto: &str, on: bool) -> anyhow::Result<()> {
        let verb = if on { "enable" } else { "disable" };
        self.query(&format!("{verb} {proto}")).map(drop)
    }
}
