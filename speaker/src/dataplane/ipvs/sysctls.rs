//! The kernel settings the IPVS path needs in the node's network namespace (they are per
//! namespace: the speaker runs in the node's, so nothing else is touched), kube-proxy's IPVS
//! mode's set:
//! - `net.ipv4.vs.conntrack=1`: IPVS keeps conntrack entries for its connections, so the
//!   masquerade and hairpin rules in FerroLB's nftables table see them;
//! - `net.ipv4.vs.expire_nodest_conn=1`: a connection to a deleted real server is dropped at
//!   its next packet instead of hanging until it times out;
//! - `net.ipv4.vs.expire_quiescent_template=1`: persistence templates of a real server at
//!   weight 0 expire, so sticky clients move on while it drains;
//! - `net.ipv4.ip_forward=1`: masqueraded traffic to pods on other nodes is forwarded.
//!
//! `ARP_SYSCTLS` (arp_ignore, arp_announce) are set with the service addresses, in
//! [`super::addresses`].

/// Each setting: its `/proc/sys` path and value.
pub const VS_SYSCTLS: [(&str, &str); 4] = [
    ("/proc/sys/net/ipv4/vs/conntrack", "1"),
    ("/proc/sys/net/ipv4/vs/expire_nodest_conn", "1"),
    ("/proc/sys/net/ipv4/vs/expire_quiescent_template", "1"),
    ("/proc/sys/net/ipv4/ip_forward", "1"),
];

/// A setting that could not be written: the `net.ipv4.vs` ones exist only once `ip_vs` is
/// loaded (opening the IPVS socket loads it).
#[derive(Debug, thiserror::Error)]
#[error("sysctl {path}: {source}")]
pub struct SysctlError {
    pub path: &'static str,
    pub source: std::io::Error,
}

/// Writes every setting that does not already have its value; returns the paths written.
pub fn apply() -> Result<Vec<&'static str>, SysctlError> {
    let mut written = Vec::new();
    for (path, value) in VS_SYSCTLS {
        let current =
            std::fs::read_to_string(path).map_err(|source| SysctlError { path, source })?;
        if current.trim() != value {
            std::fs::write(path, value).map_err(|source| SysctlError { path, source })?;
            written.push(path);
        }
    }
    Ok(written)
}
