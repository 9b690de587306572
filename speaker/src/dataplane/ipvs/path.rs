//! The IPVS data path as a whole (`--dataplane ipvs`): the kernel's virtual server table
//! ([`IpvsTable`]), the dummy interface holding the service addresses ([`ServiceAddresses`]),
//! FerroLB's nftables table around IPVS (`inet ferrolb-ipvs`:
//! [`ferrolb_shared::ipvs::kernel::companion`]) and the `vs` sysctls, kept in line with the
//! node's virtual server table.
//!
//! Order within a pass, so no packet meets a half-made path: the sysctls and the nftables
//! marks first (a masquerading virtual server is marked before it exists), then the kernel's
//! virtual servers, then the addresses (an address appears once IPVS serves it; one that goes
//! is gone before its virtual server). On a clean stop everything FerroLB added goes: its
//! virtual servers, the interface with its addresses, the nftables table. After a crash all
//! of it stays and the kernel keeps forwarding; the next speaker adopts it.

use super::addresses::{DEFAULT_LINK, LinkError, ServiceAddresses};
use super::socket::IpvsError;
use super::sysctls::{self, SysctlError};
use super::table::{DEFAULT_STATE_FILE, IpvsTable};
use crate::dataplane::conntrack;
use crate::dataplane::nftables::{NftError, run_nft};
use ferrolb_shared::ipvs::kernel::companion::Companion;
use ferrolb_shared::ipvs::model::{Table, VsKey};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the connection counts of draining real servers are looked at: a drained real
/// server is deleted at most this long after its last connection closed.
pub const DRAIN_POLL: Duration = Duration::from_secs(2);

/// Why the IPVS path could not be programmed.
#[derive(Debug, thiserror::Error)]
pub enum IpvsPathError {
    #[error("IPVS: {0}")]
    Ipvs(#[from] IpvsError),
    #[error("service addresses: {0}")]
    Link(#[from] LinkError),
    #[error("{0}")]
    Sysctl(#[from] SysctlError),
    #[error("nftables table around IPVS: {0}")]
    Nft(#[from] NftError),
}

/// Where the IPVS path keeps its state.
#[derive(Clone, Debug)]
pub struct IpvsSettings {
    /// The dummy interface holding the service addresses.
    pub link: String,
    /// The virtual servers FerroLB owns, for the next speaker after a crash.
    pub state_file: PathBuf,
}

impl Default for IpvsSettings {
    fn default() -> Self {
        IpvsSettings {
            link: DEFAULT_LINK.to_string(),
            state_file: PathBuf::from(DEFAULT_STATE_FILE),
        }
    }
}

pub struct IpvsPath {
    table: IpvsTable,
    addresses: Option<ServiceAddresses>,
    link: String,
    companion: Companion,
    /// The table as programmed, for the UDP conntrack entries a change leaves stale.
    programmed: Option<Table>,
    /// Whether the sysctls, the nftables table and the addresses are known to match
    /// `companion`; false at first and after a failure: the next pass writes them whole.
    synced: bool,
}

impl IpvsPath {
    pub fn new(settings: &IpvsSettings) -> IpvsPath {
        IpvsPath {
            table: IpvsTable::new(settings.state_file.clone()),
            addresses: None,
            link: settings.link.clone(),
            companion: Companion::default(),
            programmed: None,
            synced: false,
        }
    }

    /// Brings the path in line with `table`, looking only at the `touched` virtual servers
    /// when given (`None`: everything). Returns the number of IPVS requests sent.
    pub async fn apply(
        &mut self,
        table: &Table,
        touched: Option<&BTreeSet<VsKey>>,
    ) -> Result<usize, IpvsPathError> {
        let result = self.program(table, touched).await;
        if result.is_err() {
            // Start from what is there next time.
            self.synced = false;
            self.companion = Companion::default();
            return result;
        }
        // Flows that would go on the wrong way: those that began before their virtual server
        // existed (never translated), and those to UDP real servers that left.
        conntrack::after_program(&mut self.programmed, table, true, touched).await;
        result
    }

    async fn program(
        &mut self,
        table: &Table,
        touched: Option<&BTreeSet<VsKey>>,
    ) -> Result<usize, IpvsPathError> {
        let whole = !self.synced;
        let changes = self.companion.update(table, touched.filter(|_| !whole));
        if whole {
            // Opening the IPVS socket loads ip_vs, which the vs sysctls need.
            self.table.open()?;
            sysctls::apply()?;
            run_nft(&self.companion.render_full(), "inet").await?;
        } else if changes.rules_changed() {
            run_nft(&Companion::render_changes(&changes), "inet").await?;
        }
        // Addresses that go are gone before their virtual servers; new ones come after.
        if !whole && !changes.addresses_removed.is_empty() {
            let mut before = self.companion.addresses();
            for a in &changes.addresses_added {
                before.remove(a);
            }
            self.sync_addresses(&before).await?;
        }
        let sent = blocking(|| {
            self.table
                .apply(table, touched.filter(|_| !whole), Instant::now())
        })?;
        if whole || changes.addresses_changed() {
            let all = self.companion.addresses();
            self.sync_addresses(&all).await?;
        }
        self.synced = true;
        Ok(sent.len())
    }

    /// Looks at the draining real servers only (deleting those whose connections are gone or
    /// whose time is up). Returns the number of IPVS requests sent.
    pub async fn drain(&mut self, table: &Table) -> Result<usize, IpvsPathError> {
        if !self.synced {
            return Ok(0);
        }
        let sent = blocking(|| {
            self.table
                .apply(table, Some(&BTreeSet::new()), Instant::now())
        })?;
        Ok(sent.len())
    }

    /// When the draining real servers should be looked at next, if any drains.
    pub fn next_drain_check(&self) -> Option<Instant> {
        self.table
            .drain_deadline()
            .map(|deadline| deadline.min(Instant::now() + DRAIN_POLL))
    }

    /// Removes everything FerroLB added (a clean stop).
    pub async fn remove(&mut self) -> Result<(), IpvsPathError> {
        blocking(|| self.table.remove(Instant::now()))?;
        self.link_handle()?.remove().await?;
        run_nft(&Companion::render_removal(), "inet").await?;
        self.synced = false;
        self.companion = Companion::default();
        self.programmed = None;
        Ok(())
    }

    async fn sync_addresses(
        &mut self,
        wanted: &BTreeSet<std::net::IpAddr>,
    ) -> Result<(), IpvsPathError> {
        let (added, removed) = self.link_handle()?.sync(wanted).await?;
        if !added.is_empty() || !removed.is_empty() {
            tracing::debug!(added = added.len(), removed = removed.len(), link = %self.link, "service addresses");
        }
        Ok(())
    }

    fn link_handle(&mut self) -> Result<&ServiceAddresses, LinkError> {
        match self.addresses {
            Some(ref a) => Ok(a),
            None => Ok(self.addresses.insert(ServiceAddresses::open(&self.link)?)),
        }
    }
}

/// Runs a blocking netlink exchange (one message per change, answered at once; a whole table
/// at start takes longer) without stalling the runtime's other tasks where it has several
/// worker threads.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
