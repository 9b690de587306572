//! The kernel data path: the virtual server table programmed into nftables, in atomic
//! transactions, changes only where the table changed.
//!
//! On start the whole program replaces whatever FerroLB table is there (a stale one from a
//! crash included), in one transaction (`nft -f`); where there is none, `nft` creates the
//! table's structure (hooks, maps, chains and rules) and the elements go straight to
//! the kernel as nfnetlink batches, the backends first and the `services` map (which steers
//! traffic) last, in one transaction ([`run_first`]). A change goes through `nft -f` too,
//! except when it only moves real servers behind rules that stay (the common endpoint change):
//! those elements of the shared backend maps go to the kernel as one nfnetlink transaction
//! ([`write_elements`]), sparing `nft` reading the whole table back first; if the kernel
//! refuses it, the same change goes through `nft`. On a clean stop the table is deleted; on a
//! crash it stays, so traffic keeps flowing until the next speaker takes over.

use ferrolb_shared::ipvs::model::{Table, VirtualServer, VsKey};
use ferrolb_shared::ipvs::nft::{self, Family, RoundRobin, Target, Unsupported};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Errors from running `nft` or `conntrack`.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run {0} (install the Debian package {1}): {2}")]
    Spawn(&'static str, &'static str, std::io::Error),
    #[error("nft rejected the {family} program: {stderr}")]
    Rejected {
        family: &'static str,
        stderr: String,
    },
}

/// Runs one nftables program per family and remembers what it programmed.
pub struct NftablesDataplane {
    /// How round-robin virtual servers are laid out (kernel path).
    round_robin: RoundRobin,
    /// The table as programmed; `None` until the first full program.
    programmed: Option<Table>,
    /// The userspace path: redirect to the proxy's listeners instead of DNAT to the real
    /// servers, and close their port range to all but the redirects ([`nft::guard`]).
    guard: Option<RangeInclusive<u16>>,
    /// Whether the guard is in place.
    guarded: bool,
    /// The netlink socket element changes go through, kept open between changes: closing a
    /// `NETLINK_NETFILTER` socket costs the kernel about 5 ms, more than a whole endpoint
    /// change.
    elements: Option<ElementSocket>,
}

impl NftablesDataplane {
    /// The kernel path (DNAT to real servers), round robin laid out as `round_robin` says.
    pub fn kernel(round_robin: RoundRobin) -> Self {
        NftablesDataplane {
            round_robin,
            programmed: None,
            guard: None,
            guarded: false,
            elements: None,
        }
    }

    /// Redirects for the userspace path, whose listeners take their ports from `ports`.
    pub fn proxy(ports: RangeInclusive<u16>) -> Self {
        NftablesDataplane {
            round_robin: RoundRobin::default(),
            programmed: None,
            guard: Some(ports),
            guarded: false,
            elements: None,
        }
    }

    /// Whether this is the userspace path's program (redirects, not DNAT).
    fn is_proxy(&self) -> bool {
        self.guard.is_some()
    }

    /// Closes the proxy's port range to everything but the redirects, once, before the first
    /// listener opens (the userspace path; nothing to do on the kernel path).
    pub async fn close_proxy_ports(&mut self) -> Result<(), NftError> {
        let Some(ports) = self.guard.as_ref().filter(|_| !self.guarded) else {
            return Ok(());
        };
        run_nft(&nft::guard::render(ports), "inet").await?;
        self.guarded = true;
        Ok(())
    }

    /// Virtual servers this path refuses (kernel path: schedulers needing connection counts).
    /// `touched`: look at these only (`None`: all).
    pub fn unsupported(
        &self,
        table: &Table,
        touched: Option<&BTreeSet<VsKey>>,
    ) -> Vec<Unsupported> {
        if self.is_proxy() {
            return Vec::new();
        }
        let check = |v: &VirtualServer| nft::check(v).err();
        match touched {
            Some(keys) => keys
                .iter()
                .filter_map(|k| table.servers.get(k))
                .filter_map(check)
                .collect(),
            None => table.servers.values().filter_map(check).collect(),
        }
    }

    /// Program `table`; for the userspace path, `proxy_ports` are the listeners' ports (a
    /// virtual server keeps its port for its whole life). Only the differences from what was
    /// programmed before are sent, looking only at the `touched` virtual servers when the
    /// caller knows them (`None`: compare everything). If the kernel refuses the differences
    /// (someone edited the table behind our back), the whole program is sent instead; if that
    /// fails too, the next call programs everything again.
    pub async fn apply(
        &mut self,
        table: &Table,
        touched: Option<&BTreeSet<VsKey>>,
        proxy_ports: &BTreeMap<VsKey, u16>,
    ) -> Result<(), NftError> {
        let result = self.program(table, touched, proxy_ports).await;
        if result.is_err() {
            // What the kernel holds is unknown now: start from nothing next time.
            self.programmed = None;
            return result;
        }
        let kernel = !self.is_proxy();
        super::conntrack::after_program(&mut self.programmed, table, kernel, touched).await;
        result
    }

    async fn program(
        &mut self,
        table: &Table,
        touched: Option<&BTreeSet<VsKey>>,
        proxy_ports: &BTreeMap<VsKey, u16>,
    ) -> Result<(), NftError> {
        let target = if self.is_proxy() {
            Target::Proxy(proxy_ports)
        } else {
            Target::Kernel(self.round_robin)
        };
        for family in [Family::Ip, Family::Ip6] {
            let name = family.name();
            let kernel_old = self.programmed.as_ref().filter(|_| !self.is_proxy());
            if let (Some(old), Some(keys)) = (kernel_old, touched)
                && write_element_changes(&mut self.elements, (old, table), keys, target, family)
                    .await
            {
                continue;
            }
            let incremental = self.programmed.as_ref().map(|old| match touched {
                Some(keys) => nft::render_changes_for(old, table, keys, family, target),
                None => nft::render_changes_with(old, table, family, target),
            });
            let done = match incremental {
                Some(script) if script.is_empty() => true,
                Some(script) => match run_nft(&script, name).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(
                            "incremental nftables update failed, reprogramming the {name} table: {e}"
                        );
                        false
                    }
                },
                None => false,
            };
            let done = done || self.programmed.is_none() && run_first(table, family, target).await;
            if !done {
                run_nft(&nft::render_full_with(table, family, target), name).await?;
            }
        }
        Ok(())
    }

    /// Remove FerroLB's tables (clean shutdown).
    pub async fn remove(&mut self) -> Result<(), NftError> {
        for family in ["ip", "ip6"] {
            let script = format!(
                "add table {family} {t}\ndelete table {family} {t}\n",
                t = nft::TABLE
            );
            run_nft(&script, family).await?;
        }
        self.programmed = None;
        if self.guard.is_some() {
            // The listeners are closed by now.
            run_nft(&nft::guard::render_removal(), "inet").await?;
            self.guarded = false;
        }
        Ok(())
    }
}

/// The whole program for a family without a FerroLB table yet: the structure through `nft`,
/// the elements through netlink (see [`nft::FirstProgram`]: nothing is steered until the last
/// transaction). False when a table exists already (a stale one, to be replaced in one
/// transaction) or a step failed: the caller then sends the whole program in one transaction,
/// which replaces whatever was built.
async fn run_first(table: &Table, family: Family, target: Target<'_>) -> bool {
    let name = family.name();
    let first = nft::render_first(table, family, target);
    if let Err(e) = run_nft(&first.script, name).await {
        tracing::debug!("{name}: not programming from nothing ({e}); replacing the table");
        return false;
    }
    match tokio::task::spawn_blocking(move || write_first_elements(family, &first)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!("{name}: the first program's elements failed ({e}); sending it whole");
            false
        }
        Err(e) => {
            tracing::warn!("{name}: the element writer failed ({e}); sending the program whole");
            false
        }
    }
}

/// Writes the elements of a first program whose script is in: the backends in transactions
/// of [`TRANSACTION_BYTES`], then the services map in one.
pub fn write_first_elements(family: Family, first: &nft::FirstProgram) -> Result<(), String> {
    let backends = nft::netlink::encode_additions(family, &first.backends, 0, TRANSACTION_BYTES);
    let seq = backends.iter().flat_map(|b| b.acks.last()).max();
    let services = nft::netlink::encode_services(family, &first.services, seq.map_or(0, |s| s + 1));
    let mut socket = ElementSocket::open()?;
    for batch in backends.iter().chain([&services]) {
        socket.transact(batch)?;
    }
    Ok(())
}

/// The most element bytes in one transaction of a first program's backends: the kernel
/// holds a transaction's elements until it commits, so the 100,000 of a large program go in
/// several (nothing reads them until the services map points at their chains).
const TRANSACTION_BYTES: usize = 1024 * 1024;

/// Sends the change from `old` to `table` among `keys` as element replacements through
/// netlink when that is all it is ([`nft::element_changes_for`]) and it is small; true when
/// the kernel has it (or there was nothing to send). False: send it through `nft`. `socket`
/// is kept for the next change unless this one failed.
async fn write_element_changes(
    socket: &mut Option<ElementSocket>,
    (old, table): (&Table, &Table),
    keys: &BTreeSet<VsKey>,
    target: Target<'_>,
    family: Family,
) -> bool {
    let Target::Kernel(round_robin) = target else {
        return false;
    };
    let Some(changes) = nft::element_changes_for(old, table, keys, family, round_robin) else {
        return false;
    };
    if changes.is_empty() {
        return true;
    }
    if changes.iter().map(|r| r.slots.len()).sum::<usize>() > MAX_NETLINK_ELEMENTS {
        return false;
    }
    let name = family.name();
    let kept = socket.take();
    let write = move || {
        let mut socket = match kept {
            Some(s) => s,
            None => ElementSocket::open()?,
        };
        let batch = nft::netlink::encode(family, &changes, socket.seq);
        socket.transact(&batch).map(|()| socket)
    };
    match tokio::task::spawn_blocking(write).await {
        Ok(Ok(kept)) => {
            *socket = Some(kept);
            true
        }
        Ok(Err(e)) => {
            tracing::warn!("{name}: {e}; sending the change through nft");
            false
        }
        Err(e) => {
            tracing::warn!(
                "{name}: the element writer failed ({e}); sending the change through nft"
            );
            false
        }
    }
}

/// The most elements written through netlink at once (about 1 MiB): a larger change goes
/// through `nft`, which parses it in about as long as the kernel takes to apply it.
const MAX_NETLINK_ELEMENTS: usize = 16 * 1024;

/// How long the kernel may take to answer an element batch: it answers at once, so this only
/// bounds a stuck socket.
const NETLINK_REPLY_TIMEOUT: nix::sys::time::TimeVal = nix::sys::time::TimeVal::new(1, 0);

/// Sends element replacements as one nfnetlink transaction ([`nft::netlink`]) and waits for
/// the kernel's acknowledgements. Any error leaves the table as it was (the transaction is
/// all or nothing) and is the caller's cue to send the same change through `nft`.
pub fn write_elements(family: Family, changes: &[nft::Replacement]) -> Result<(), String> {
    ElementSocket::open()?.transact(&nft::netlink::encode(family, changes, 0))
}

/// A `NETLINK_NETFILTER` socket for element transactions, and the next sequence number.
struct ElementSocket {
    fd: std::os::fd::OwnedFd,
    seq: u32,
}

fn netlink_error(what: &str, e: nix::Error) -> String {
    format!("netlink element change: {what}: {e}")
}

impl ElementSocket {
    fn open() -> Result<ElementSocket, String> {
        use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockProtocol};
        use std::os::fd::AsRawFd;
        let fd = sock::socket(
            AddressFamily::Netlink,
            sock::SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(|e| netlink_error("socket", e))?;
        sock::bind(fd.as_raw_fd(), &sock::NetlinkAddr::new(0, 0))
            .map_err(|e| netlink_error("bind", e))?;
        sock::setsockopt(&fd, sock::sockopt::ReceiveTimeout, &NETLINK_REPLY_TIMEOUT)
            .map_err(|e| netlink_error("SO_RCVTIMEO", e))?;
        Ok(ElementSocket { fd, seq: 0 })
    }

    /// Sends one transaction and waits for every acknowledgement it asks for; the first
    /// refusal is the error (the kernel then applied none of it).
    fn transact(&mut self, batch: &nft::netlink::Batch) -> Result<(), String> {
        use nix::sys::socket::{self as sock, MsgFlags};
        use std::os::fd::AsRawFd;
        let fd = self.fd.as_raw_fd();
        // Past the batch's end delimiter, which follows its last acknowledged message.
        let last = batch.acks.iter().copied().max().unwrap_or(self.seq);
        self.seq = last.wrapping_add(2);
        if batch.bytes.len() > DEFAULT_SEND_BUFFER {
            // One datagram holds the whole transaction: the socket's buffer must take it
            // (beyond net.core.wmem_max: we hold CAP_NET_ADMIN, as for nftables itself).
            let size = batch.bytes.len() + 64 * 1024;
            sock::setsockopt(&self.fd, sock::sockopt::SndBufForce, &size)
                .map_err(|e| netlink_error("SO_SNDBUFFORCE", e))?;
        }
        sock::send(fd, &batch.bytes, MsgFlags::empty()).map_err(|e| netlink_error("send", e))?;
        let mut pending: BTreeSet<u32> = batch.acks.iter().copied().collect();
        // An error echoes the refused message (up to 64 KiB of elements) after its header.
        let mut buf = vec![0u8; 128 * 1024];
        while !pending.is_empty() {
            let n = sock::recv(fd, &mut buf, MsgFlags::empty())
                .map_err(|e| netlink_error("waiting for the kernel's answer", e))?;
            for reply in nft::netlink::replies(buf.get(..n).unwrap_or_default()) {
                if reply.error != 0 {
                    let errno = nix::errno::Errno::from_raw(-reply.error);
                    return Err(format!("the kernel refused the element change: {errno}"));
                }
                pending.remove(&reply.seq);
            }
        }
        Ok(())
    }
}

/// What a socket's send buffer takes without being enlarged (a datagram must fit whole).
const DEFAULT_SEND_BUFFER: usize = 128 * 1024;

pub(crate) async fn run_nft(script: &str, family: &'static str) -> Result<(), NftError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NftError::Spawn("nft", "nftables", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes()).await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| NftError::Spawn("nft", "nftables", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Rejected {
            family,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}
