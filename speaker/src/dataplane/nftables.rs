//! The kernel data path: the virtual server table programmed into nftables, in atomic
//! transactions, changes only where the table changed.
//!
//! On start the whole program replaces whatever FerroLB table is there (a stale one from a
//! crash included), in one transaction (`nft -f`); where there is none, it is sent in parts
//! that several `nft` processes parse at once, steering traffic only in the last one. A
//! change goes through `nft -f` too, except when it only moves real servers behind rules that
//! stay (the common endpoint change): those elements of the shared backend maps go straight
//! to the kernel as one nfnetlink transaction ([`write_elements`]), sparing `nft` reading the
//! whole table back first; if the kernel refuses it, the same change goes through `nft`. On a
//! clean stop the table is deleted; on a crash it stays, so traffic keeps flowing until the
//! next speaker takes over.

use ferrolb_shared::ipvs::model::{Table, VirtualServer, VsKey};
use ferrolb_shared::ipvs::nft::{self, Family, Target, Unsupported};
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
    /// The table as programmed; `None` until the first full program.
    programmed: Option<Table>,
    /// The userspace path: redirect to the proxy's listeners instead of DNAT to the real
    /// servers, and close their port range to all but the redirects ([`nft::guard`]).
    guard: Option<RangeInclusive<u16>>,
    /// Whether the guard is in place.
    guarded: bool,
}

impl NftablesDataplane {
    /// The kernel path (DNAT to real servers).
    pub fn kernel() -> Self {
        NftablesDataplane {
            programmed: None,
            guard: None,
            guarded: false,
        }
    }

    /// Redirects for the userspace path, whose listeners take their ports from `ports`.
    pub fn proxy(ports: RangeInclusive<u16>) -> Self {
        NftablesDataplane {
            programmed: None,
            guard: Some(ports),
            guarded: false,
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
            Target::Kernel
        };
        for family in [Family::Ip, Family::Ip6] {
            let name = if family == Family::Ip { "ip" } else { "ip6" };
            let kernel_old = self.programmed.as_ref().filter(|_| !self.is_proxy());
            if let (Some(old), Some(keys)) = (kernel_old, touched)
                && write_element_changes(old, table, keys, family).await
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
            let done = done || self.programmed.is_none() && run_staged(table, family, target).await;
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

/// The whole program for a family without a FerroLB table yet, parsed by several `nft`
/// processes at once (see [`nft::Staged`]: nothing is steered until the last step). False
/// when a table exists already (a stale one, to be replaced in one transaction) or a part
/// failed: the caller then sends the whole program in one transaction, which replaces
/// whatever was built.
async fn run_staged(table: &Table, family: Family, target: Target<'_>) -> bool {
    let name = if family == Family::Ip { "ip" } else { "ip6" };
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get());
    let staged = nft::render_staged(table, family, target, parts);
    if let Err(e) = run_nft(&staged.setup, name).await {
        tracing::debug!("{name}: not programming from nothing ({e}); replacing the table");
        return false;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for script in std::iter::once(staged.chains).chain(staged.backends) {
        if !script.is_empty() {
            tasks.spawn(async move { run_nft(&script, name).await });
        }
    }
    let mut ok = true;
    while let Some(result) = tasks.join_next().await {
        if let Err(e) = result
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            tracing::warn!("{name}: a part of the first program failed ({e}); sending it whole");
            ok = false;
        }
    }
    if staged.commit.is_empty() {
        return ok;
    }
    ok && match run_nft(&staged.commit, name).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("{name}: the first program's last step failed ({e}); sending it whole");
            false
        }
    }
}

/// Sends the change from `old` to `table` among `keys` as element replacements through
/// netlink when that is all it is ([`nft::element_changes_for`]) and it is small; true when
/// the kernel has it (or there was nothing to send). False: send it through `nft`.
async fn write_element_changes(
    old: &Table,
    table: &Table,
    keys: &BTreeSet<VsKey>,
    family: Family,
) -> bool {
    let Some(changes) = nft::element_changes_for(old, table, keys, family) else {
        return false;
    };
    if changes.is_empty() {
        return true;
    }
    if changes.iter().map(|r| r.slots.len()).sum::<usize>() > MAX_NETLINK_ELEMENTS {
        return false;
    }
    let name = if family == Family::Ip { "ip" } else { "ip6" };
    match tokio::task::spawn_blocking(move || write_elements(family, &changes)).await {
        Ok(Ok(())) => true,
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

/// The most elements written through netlink at once: one message, well inside the socket's
/// buffers; a larger change (a whole node's pods moved) goes through `nft`, whose read-back
/// of the table is small next to parsing it.
const MAX_NETLINK_ELEMENTS: usize = 1024;

/// How long the kernel may take to answer an element batch: it answers at once, so this only
/// bounds a stuck socket.
const NETLINK_REPLY_TIMEOUT: nix::sys::time::TimeVal = nix::sys::time::TimeVal::new(1, 0);

/// Sends element replacements as one nfnetlink transaction ([`nft::netlink`]) and waits for
/// the kernel's acknowledgements. Any error leaves the table as it was (the transaction is
/// all or nothing) and is the caller's cue to send the same change through `nft`.
pub fn write_elements(family: Family, changes: &[nft::Replacement]) -> Result<(), String> {
    use nix::sys::socket::{self as sock, AddressFamily, MsgFlags, SockFlag, SockProtocol};
    use std::os::fd::AsRawFd;
    let fail = |what: &str, e: nix::Error| format!("netlink element change: {what}: {e}");
    let fd = sock::socket(
        AddressFamily::Netlink,
        sock::SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )
    .map_err(|e| fail("socket", e))?;
    sock::bind(fd.as_raw_fd(), &sock::NetlinkAddr::new(0, 0)).map_err(|e| fail("bind", e))?;
    sock::setsockopt(&fd, sock::sockopt::ReceiveTimeout, &NETLINK_REPLY_TIMEOUT)
        .map_err(|e| fail("SO_RCVTIMEO", e))?;
    let batch = nft::netlink::encode(family, changes, 0);
    sock::send(fd.as_raw_fd(), &batch.bytes, MsgFlags::empty()).map_err(|e| fail("send", e))?;
    let mut pending: BTreeSet<u32> = batch.acks.into_iter().collect();
    let mut buf = vec![0u8; 64 * 1024];
    while !pending.is_empty() {
        let n = sock::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())
            .map_err(|e| fail("waiting for the kernel's answer", e))?;
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
