//! The dummy interface that holds the addresses IPVS serves (ClusterIPs, external and
//! LoadBalancer IPs), so the kernel takes their traffic as local, as kube-proxy's
//! `kube-ipvs0` does; through `rtnetlink`.
//!
//! The node must never answer ARP or NDP for them on its own: only the layer 2 election
//! decides who answers for a LoadBalancer IP (MetalLB's "strictARP" trap, its issue 153,
//! closed by construction). IPv4: `arp_ignore=1` (answer only for addresses of the receiving
//! interface) and `arp_announce=2` (never source ARP from an address of another interface),
//! set on `all` in the node's own network namespace (the speaker runs there), as kube-proxy's
//! IPVS mode with strictARP does. IPv6 needs nothing: the kernel answers a neighbour
//! solicitation only for addresses of the receiving interface, and a dummy interface (NOARP)
//! does no duplicate address detection.

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::{Handle, LinkDummy, LinkUnspec};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// The interface's default name.
pub const DEFAULT_LINK: &str = "ferrolb0";

/// The sysctls that keep the node from answering ARP for addresses of other interfaces.
pub const ARP_SYSCTLS: [(&str, &str); 2] = [
    ("/proc/sys/net/ipv4/conf/all/arp_ignore", "1"),
    ("/proc/sys/net/ipv4/conf/all/arp_announce", "2"),
];

/// Why the interface or its addresses could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("netlink route socket: {0}")]
    Socket(std::io::Error),
    #[error("{what}: {source}")]
    Request {
        what: String,
        source: rtnetlink::Error,
    },
    #[error("the interface {0} did not appear after it was created")]
    Vanished(String),
    #[error("sysctl {path}: {source}")]
    Sysctl {
        path: &'static str,
        source: std::io::Error,
    },
}

/// The dummy interface and the service addresses on it.
pub struct ServiceAddresses {
    handle: Handle,
    name: String,
    connection: tokio::task::JoinHandle<()>,
}

impl ServiceAddresses {
    /// A handle on interface `name` (nothing is created yet). Needs a tokio runtime.
    pub fn open(name: &str) -> Result<ServiceAddresses, LinkError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(LinkError::Socket)?;
        Ok(ServiceAddresses {
            handle,
            name: name.to_string(),
            connection: tokio::spawn(connection),
        })
    }

    /// Makes the interface hold exactly `wanted` (each as a /32 or /128), creating it (a
    /// dummy, up) if missing, and sets the ARP sysctls first, so no address is ever exposed
    /// to ARP. Returns the addresses added and removed.
    pub async fn sync(
        &self,
        wanted: &BTreeSet<IpAddr>,
    ) -> Result<(Vec<IpAddr>, Vec<IpAddr>), LinkError> {
        for (path, value) in ARP_SYSCTLS {
            let fail = |source| LinkError::Sysctl { path, source };
            // Written only when different: a node set up beforehand needs no writable /proc/sys.
            if std::fs::read_to_string(path).map_err(fail)?.trim() != value {
                std::fs::write(path, value).map_err(fail)?;
            }
        }
        let index = self.ensure_link().await?;
        let mut held = BTreeSet::new();
        let mut extra = Vec::new();
        let mut addresses = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(message) = addresses
            .try_next()
            .await
            .map_err(|source| self.failed("list its addresses", source))?
        {
            let addr = message.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            match addr {
                // IPv6 link-local addresses come with the link; they are not ours to manage.
                Some(IpAddr::V6(v6)) if v6.is_unicast_link_local() => {}
                Some(ip) if wanted.contains(&ip) => {
                    held.insert(ip);
                }
                Some(ip) => extra.push((ip, message)),
                None => {}
            }
        }
        let mut removed = Vec::new();
        for (ip, message) in extra {
            self.handle
                .address()
                .del(message)
                .execute()
                .await
                .map_err(|source| self.failed(&format!("remove {ip}"), source))?;
            removed.push(ip);
        }
        let mut added = Vec::new();
        for &ip in wanted.difference(&held) {
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            self.handle
                .address()
                .add(index, ip, prefix)
                .execute()
                .await
                .map_err(|source| self.failed(&format!("add {ip}"), source))?;
            added.push(ip);
        }
        Ok((added, removed))
    }

    /// Deletes the interface, and with it every address (a clean stop).
    pub async fn remove(&self) -> Result<(), LinkError> {
        if let Some(index) = self.index().await? {
            self.handle
                .link()
                .del(index)
                .execute()
                .await
                .map_err(|source| self.failed("delete it", source))?;
        }
        Ok(())
    }

    /// The interface's index, creating it (a dummy, up) when missing.
    async fn ensure_link(&self) -> Result<u32, LinkError> {
        if let Some(index) = self.index().await? {
            self.handle
                .link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(|source| self.failed("set it up", source))?;
            return Ok(index);
        }
        self.handle
            .link()
            .add(LinkDummy::new(&self.name).up().build())
            .execute()
            .await
            .map_err(|source| self.failed("create it", source))?;
        self.index()
            .await?
            .ok_or_else(|| LinkError::Vanished(self.name.clone()))
    }

    async fn index(&self) -> Result<Option<u32>, LinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(self.name.clone())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(source) => Err(self.failed("look it up", source)),
        }
    }

    fn failed(&self, what: &str, source: rtnetlink::Error) -> LinkError {
        LinkError::Request {
            what: format!("interface {}: cannot {what}", self.name),
            source,
        }
    }
}

impl Drop for ServiceAddresses {
    fn drop(&mut self) {
        self.connection.abort();
    }
}
