//! The kernel data path's program: nftables scripts rendered from the virtual server table.
//!
//! One table per family (`ip ferrolb`, `ip6 ferrolb`), owned by FerroLB alone:
//!
//! ```text
//! map services  (daddr . l4proto . dport) -> goto <chain>     one lookup per packet
//! chain prerouting / output (nat, dstnat)   vmap @services
//! chain postrouting (nat, srcnat)           masquerade what a virtual server marked, and
//!                                           hairpin traffic (set hairpin, below)
//! map be-<proto>-XX  (daddr . dport . n) -> real server, for rr and wrr (see `backends`)
//! chain <vs>    [mark] [affinity lookups] pick a real server, DNAT to it (round robin with
//!                                           RoundRobin::PerService, the hashing schedulers,
//!                                           affinity, the proxy's redirect)
//! chain rr-<proto>-<N>[-masq]-XX (shared)   round robin with RoundRobin::Shared: N slots of
//!                                           map be-<proto>-XX, for every virtual server alike
//! chain dropped  (shared)                   no endpoint, or Local policy without a local one
//! chain <vs>-s-<server>  (affinity only)    remember the client, DNAT to that real server
//! set   <vs>-a-<server>  (affinity only)    its clients, each for the affinity timeout
//! ```
//!
//! Which chain a virtual server jumps to is `place`'s decision; with [`RoundRobin::Shared`]
//! most share a few chains, so a table of 10,000 Services holds a few hundred chains at most
//! and a commit (which walks every chain) stays cheap.
//!
//! The userspace path adds one more table, `inet ferrolb-proxy-guard` ([`guard`]), which
//! closes the proxy's port range to everything but the redirects.
//!
//! Hairpin: a pod that reaches its own Service and is sent back to itself would get the reply
//! from its own address, not the Service's, unless the node rewrites the source (kube-proxy
//! masquerades it too). The set `hairpin` holds `addr . addr` for every local real server;
//! postrouting masquerades DNATed traffic whose source and new destination form such a pair,
//! and nothing else. (The userspace path needs none of this: the proxy connects from the node.)
//!
//! Every script is applied with one `nft -f`, which the kernel runs as one transaction: the
//! data path is never seen half-programmed. A change that only replaces elements of the
//! shared backend maps is also available as data ([`element_changes_for`]), which the speaker
//! sends as one nfnetlink transaction of its own ([`netlink`]), and so are a first program's
//! elements ([`render_first`]). Changes touch only the chains and map elements of the
//! virtual servers that changed, so connections through the others are never disturbed;
//! affinity sets are named after their real server, not its position, so the clients of a
//! real server that stays keep their affinity while others come and go.

use super::maglev::{DEFAULT_TABLE_SIZE, MaglevBackend, MaglevTable};
use super::model::{Change, RealServer, Table, VirtualServer, VsKey};
use super::scheduler::{Dest, HASH_BUCKETS, SchedulerKind};
use backends::Elements;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::IpAddr;

/// The table name in both families.
pub const TABLE: &str = "ferrolb";
/// The set of `addr . addr` pairs of local real servers whose hairpin traffic is masqueraded.
pub const HAIRPIN: &str = "hairpin";
/// Packet mark asking postrouting to masquerade (kube-proxy's bit, so tools recognise it).
pub const MASQ_MARK: u32 = 0x4000;
pub use super::hash::JHASH_SEED;

/// An address family: `ip` or `ip6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Ip,
    Ip6,
}

impl Family {
    pub fn of(addr: IpAddr) -> Family {
        if addr.is_ipv4() {
            Family::Ip
        } else {
            Family::Ip6
        }
    }
    /// The nftables family name (`ip`, `ip6`).
    pub fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
        }
    }
    fn addr_type(self) -> &'static str {
        match self {
            Family::Ip => "ipv4_addr",
            Family::Ip6 => "ipv6_addr",
        }
    }
}

/// Why a virtual server cannot be programmed in the kernel path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{vs}: {why}")]
pub struct Unsupported {
    pub vs: VsKey,
    pub scheduler: SchedulerKind,
    pub why: String,
}

/// Whether the kernel path can program `vs`.
pub fn check(vs: &VirtualServer) -> Result<(), Unsupported> {
    let why = if vs.scheduler.needs_connection_counts() {
        format!(
            "scheduler {} needs live connection counts, which nftables cannot express; use the ipvs or userspace data path, or one of rr, wrr, sh, dh, mh",
            vs.scheduler
        )
    } else if vs.scheduler_flags.any() {
        format!(
            "scheduler {} with flags {} is carried out by the ipvs data path only; use it, or remove the flags",
            vs.scheduler, vs.scheduler_flags
        )
    } else {
        return Ok(());
    };
    Err(Unsupported {
        vs: vs.key,
        scheduler: vs.scheduler,
        why,
    })
}

/// A script that replaces whatever FerroLB table of `family` exists with one programming
/// every supported virtual server of `table` (unsupported ones are skipped: see [`check`]).
pub fn render_full(table: &Table, family: Family) -> String {
    render_full_with(table, family, Target::Kernel(RoundRobin::default()))
}

/// Where the virtual servers' traffic goes.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// DNAT in the kernel to the chosen real server (the nftables data path).
    Kernel(RoundRobin),
    /// Redirect to the userspace proxy's local port for each virtual server (the userspace
    /// data path); servers without a port are left out.
    Proxy(&'a BTreeMap<VsKey, u16>),
}

#[derive(Clone, Copy)]
struct Prog<'a> {
    family: Family,
    target: Target<'a>,
}

impl Prog<'_> {
    fn supports(&self, vs: &VirtualServer) -> bool {
        Family::of(vs.key.addr) == self.family
            && match self.target {
                Target::Kernel(_) => check(vs).is_ok(),
                Target::Proxy(ports) => vs.drop || ports.contains_key(&vs.key),
            }
    }
}

/// How the kernel path lays out the round-robin schedulers (rr, and wrr up to 4,096 slots):
/// the choice between IPVS's exact rotation and a table of a few chains. Both keep the real
/// servers in the shared maps `be-<proto>-XX`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RoundRobin {
    /// A chain per virtual server, so a counter per virtual server: each rotates over its own
    /// servers in strict turn, as IPVS does. A table of 10,000 Services holds 10,000 chains,
    /// which every commit walks (1-4 ms at 10,000) and the first program creates (0.7 s).
    #[default]
    PerService,
    /// Chains shared by the virtual servers with the same protocol, slot count, marking and
    /// backend map (`rr-<proto>-<N>[-masq]-XX`): a few hundred chains at most, commits of a tenth
    /// of a millisecond; but one counter per shared chain, so a virtual server's connections
    /// spread evenly over its servers without a strict turn while others of its chain are
    /// busy too.
    Shared,
}

/// [`render_full`] for either target.
pub fn render_full_with(table: &Table, family: Family, target: Target<'_>) -> String {
    let f = family.name();
    // `add` then `delete` makes the delete succeed whether or not the table existed.
    let mut s = format!("add table {f} {TABLE}\ndelete table {f} {TABLE}\nadd table {f} {TABLE}\n");
    let parts = render_parts(table, Prog { family, target });
    s.push_str(&parts.base);
    s.push_str(&parts.decls);
    s.push_str(&parts.chains);
    s.push_str(&parts.services);
    s.push_str(&parts.backends.concat());
    s.push_str(&parts.hairpin);
    s
}

/// A whole program for a family that has no FerroLB table yet, with its elements as data: `nft`
/// parses the structure (the hooks, maps, chains and their rules), and a driver
/// writes the elements (100,000 backend elements take `nft` about a second to parse; netlink
/// batches of them a tenth of that) straight to the kernel.
///
/// Apply [`FirstProgram::script`] first, then [`FirstProgram::backends`] in any number of
/// transactions, then [`FirstProgram::services`] in one. Traffic reaches a virtual server only
/// through its element of the `services` map, which comes last: no packet ever meets a
/// half-built virtual server, as with the one transaction of [`render_full`]. `script`
/// *creates* the table and fails if one exists: a stale table must be replaced in one
/// transaction ([`render_full`]), or its traffic would stop meanwhile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FirstProgram {
    /// The table, its hooks, maps, chains and rules, and the hairpin set's elements.
    pub script: String,
    /// The shared backend maps' elements.
    pub backends: Vec<Replacement>,
    /// The services map's elements: each virtual server and the chain it jumps to.
    pub services: Vec<(VsKey, String)>,
}

/// [`FirstProgram`] for `table`.
pub fn render_first(table: &Table, family: Family, target: Target<'_>) -> FirstProgram {
    let f = family.name();
    let p = Prog { family, target };
    let (chains, e) = render_servers(table, p);
    let (decls, services, backends) = e.into_data(family);
    let mut script = format!("create table {f} {TABLE}\n{}", base(p));
    script.push_str(&decls);
    script.push_str(&chains);
    add_hairpin_elements(&mut script, p, &hairpin_servers(table, p));
    FirstProgram {
        script,
        backends,
        services,
    }
}

/// The pieces of a whole program, in the order one transaction needs them.
struct Parts {
    /// The services map, the hook chains and their rules, the hairpin set.
    base: String,
    /// The shared backend maps' declarations.
    decls: String,
    /// Every virtual server's chain and rules (and affinity sets).
    chains: String,
    /// The services map's elements.
    services: String,
    /// One element command per shared backend map.
    backends: Vec<String>,
    /// The hairpin set's elements.
    hairpin: String,
}

fn render_parts(table: &Table, p: Prog<'_>) -> Parts {
    let (chains, e) = render_servers(table, p);
    let (decls, services, backends) = e.finish_parts(p.family);
    let mut hairpin = String::new();
    add_hairpin_elements(&mut hairpin, p, &hairpin_servers(table, p));
    Parts {
        base: base(p),
        decls,
        chains,
        services,
        backends,
        hairpin,
    }
}

/// The services map, the hook chains and their rules, the hairpin set.
fn base(p: Prog<'_>) -> String {
    let family = p.family;
    let f = family.name();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "add map {f} {TABLE} services {{ type {} . inet_proto . inet_service : verdict; }}",
        family.addr_type()
    );
    // `dstnat` (-100) by number: nft accepts the symbolic name only on prerouting.
    for (hook, prio) in [("prerouting", "-100"), ("output", "-100")] {
        let _ = writeln!(
            s,
            "add chain {f} {TABLE} {hook} {{ type nat hook {hook} priority {prio}; policy accept; }}"
        );
        let _ = writeln!(
            s,
            "add rule {f} {TABLE} {hook} {f} daddr . meta l4proto . th dport vmap @services"
        );
    }
    let _ = writeln!(
        s,
        "add chain {f} {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}"
    );
    let _ = writeln!(
        s,
        "add rule {f} {TABLE} postrouting meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} masquerade"
    );
    let t = family.addr_type();
    let _ = writeln!(
        s,
        "add set {f} {TABLE} {HAIRPIN} {{ type {t} . {t}; }}\n\
         add rule {f} {TABLE} postrouting ct status dnat {f} saddr . {f} daddr @{HAIRPIN} masquerade"
    );
    s
}

/// Every supported virtual server of `table`: the chains (shared ones first) and rules as
/// text, the elements collected.
fn render_servers(table: &Table, p: Prog<'_>) -> (String, Elements) {
    let (mut own, mut e, mut used) = (String::new(), Elements::default(), BTreeSet::new());
    for vs in table.servers.values().filter(|v| p.supports(v)) {
        add_server(&mut own, &mut e, &mut used, p, vs);
    }
    let mut chains = String::new();
    add_shared_chains(&mut chains, p, &used);
    chains.push_str(&own);
    (chains, e)
}

/// Create the shared chains `chains` with their one rule each.
fn add_shared_chains(s: &mut String, p: Prog<'_>, chains: &BTreeSet<SharedChain>) {
    let f = p.family.name();
    for c in chains {
        let name = c.name();
        let _ = writeln!(s, "add chain {f} {TABLE} {name}");
        let _ = writeln!(s, "add rule {f} {TABLE} {name} {}", c.rule(p));
    }
}

/// The local real servers of the programmed virtual servers (kernel target only).
fn hairpin_servers(table: &Table, p: Prog<'_>) -> BTreeSet<IpAddr> {
    if !matches!(p.target, Target::Kernel(_)) {
        return BTreeSet::new();
    }
    table
        .servers
        .values()
        .filter(|v| p.supports(v) && !dropping(v))
        .flat_map(|v| v.real_servers.iter().filter(|r| r.local).map(|r| r.addr))
        .collect()
}

/// Whether the hairpin pairs of `new` differ from `old`'s when only the virtual servers
/// `changed` differ. Only when one of those has other local real servers now is the whole
/// table walked (an endpoint change in a large table must not cost a walk of every server).
fn hairpin_changed(old: &Table, new: &Table, changed: &[VsKey], p: Prog<'_>) -> bool {
    let local = |t: &Table, k: &VsKey| -> Vec<IpAddr> {
        let vs = t.servers.get(k).filter(|v| p.supports(v) && !dropping(v));
        let servers = vs.into_iter().flat_map(|v| &v.real_servers);
        servers.filter(|r| r.local).map(|r| r.addr).collect()
    };
    matches!(p.target, Target::Kernel(_))
        && changed.iter().any(|k| local(old, k) != local(new, k))
        && hairpin_servers(old, p) != hairpin_servers(new, p)
}

fn add_hairpin_elements(s: &mut String, p: Prog<'_>, addrs: &BTreeSet<IpAddr>) {
    if addrs.is_empty() {
        return;
    }
    let pairs: Vec<String> = addrs.iter().map(|a| format!("{a} . {a}")).collect();
    let _ = writeln!(
        s,
        "add element {} {TABLE} {HAIRPIN} {{ {} }}",
        p.family.name(),
        pairs.join(", ")
    );
}

/// A script that turns the programmed `old` table into `new` (for `family` only), touching
/// only the virtual servers that differ. The caller must have programmed `old` exactly
/// (with [`render_full`] and earlier changes); if the kernel disagrees the transaction fails
/// as a whole and the caller falls back to [`render_full`].
pub fn render_changes(old: &Table, new: &Table, family: Family) -> String {
    render_changes_with(old, new, family, Target::Kernel(RoundRobin::default()))
}

/// [`render_changes`] for either target. With [`Target::Proxy`], a virtual server keeps its
/// port for its whole life, so a change of its real servers needs no rule change at all.
pub fn render_changes_with(old: &Table, new: &Table, family: Family, target: Target<'_>) -> String {
    let changes = old.diff_matching(new, |k| Family::of(k.addr) == family);
    render_change_list(old, new, family, target, changes)
}

/// [`render_changes_with`] looking only at the virtual servers named by `keys` (what an
/// incremental build reported as touched), so a small change costs little in a large table.
pub fn render_changes_for(
    old: &Table,
    new: &Table,
    keys: &BTreeSet<VsKey>,
    family: Family,
    target: Target<'_>,
) -> String {
    let keys = keys.iter().filter(|k| Family::of(k.addr) == family);
    render_change_list(old, new, family, target, old.diff_keys(new, keys))
}

/// The kernel path's changes from `old` to `new` among `keys` (for `family`) as element
/// replacements in the shared backend maps, when that is all they are: real servers moved
/// behind rules that stay. A driver may then write them to the kernel without `nft`, which
/// reads the whole table back before every command. `None` when anything else changes (that
/// needs [`render_changes_for`]); an empty list when nothing does. Exactly the elements the
/// script would delete and add, and nothing else.
pub fn element_changes_for(
    old: &Table,
    new: &Table,
    keys: &BTreeSet<VsKey>,
    family: Family,
    round_robin: RoundRobin,
) -> Option<Vec<Replacement>> {
    let p = Prog {
        family,
        target: Target::Kernel(round_robin),
    };
    let supported = |v: &&VirtualServer| p.supports(v);
    let keys = keys.iter().filter(|k| Family::of(k.addr) == family);
    let (mut out, mut changed) = (Vec::new(), Vec::new());
    for change in old.diff_keys(new, keys) {
        let Change::Update(vs) = change else {
            return None;
        };
        changed.push(vs.key);
        let before = old.servers.get(&vs.key).filter(supported);
        let after = new.servers.get(&vs.key).filter(supported);
        match (before, after) {
            (None, None) => {}
            (Some(was), Some(vs)) => out.push(backends::replacement(was, vs)?),
            _ => return None,
        }
    }
    if hairpin_changed(old, new, &changed, p) {
        return None;
    }
    out.retain(|r| !r.slots.is_empty());
    Some(out)
}

fn render_change_list(
    old: &Table,
    new: &Table,
    family: Family,
    target: Target<'_>,
    changes: Vec<Change>,
) -> String {
    let p = Prog { family, target };
    let (mut s, mut e) = (String::new(), Elements::default());
    // Shared chains the new definitions jump to, and those the old ones left.
    let (mut wanted, mut left) = (BTreeSet::new(), BTreeSet::new());
    let supported = |v: &&VirtualServer| p.supports(v);
    let mut changed = Vec::with_capacity(changes.len());
    for change in changes {
        let key = match &change {
            Change::Add(v) | Change::Update(v) => v.key,
            Change::Remove(k) => *k,
        };
        changed.push(key);
        let before = old.servers.get(&key).filter(supported);
        let after = new.servers.get(&key).filter(supported);
        let (was_place, place_now) = (before.map(|v| place(p, v)), after.map(|v| place(p, v)));
        if let Some(Place::Shared(c)) = was_place.filter(|w| Some(*w) != place_now) {
            left.insert(c);
        }
        match (before, after) {
            (None, Some(vs)) => add_server(&mut s, &mut e, &mut wanted, p, vs),
            (Some(vs), None) => remove_server(&mut s, p, vs),
            (Some(was), Some(vs)) if was_place == place_now => {
                update_server(&mut s, &mut e, p, (was, vs))
            }
            // Another chain: the virtual server leaves the old one and joins the new one in
            // the same transaction (its services element is replaced).
            (Some(was), Some(vs)) => {
                remove_server(&mut s, p, was);
                add_server(&mut s, &mut e, &mut wanted, p, vs);
            }
            (None, None) => {}
        }
    }
    // Only when a virtual server changes chains, look at the whole program: which shared
    // chains (and so backend maps) exist, which stay used.
    let walked = (!wanted.is_empty() || !left.is_empty())
        .then(|| (shared_chains(old, p), shared_chains(new, p)));
    for c in walked.iter().flat_map(|(before, _)| before) {
        if let SharedChain::RoundRobin(rr) = c {
            e.exists(backends::map_of(rr.proto, rr.map));
        }
    }
    let (decls, adds) = e.finish(family);
    let mut out = decls;
    match walked {
        Some((before, after)) => {
            let create: BTreeSet<SharedChain> = wanted.difference(&before).copied().collect();
            add_shared_chains(&mut out, p, &create);
            out.push_str(&s);
            for c in left.difference(&after) {
                let _ = writeln!(out, "delete chain {} {TABLE} {}", family.name(), c.name());
            }
        }
        None => out.push_str(&s),
    }
    out.push_str(&adds);
    // Shared by every virtual server, so replaced whole when it changes.
    if hairpin_changed(old, new, &changed, p) {
        let _ = writeln!(out, "flush set {} {TABLE} {HAIRPIN}", family.name());
        add_hairpin_elements(&mut out, p, &hairpin_servers(new, p));
    }
    out
}

/// A virtual server that stays in the same place: in a shared chain only its elements change
/// (real servers moved behind the same rule); a chain of its own has its rules replaced.
fn update_server(s: &mut String, e: &mut Elements, p: Prog<'_>, (was, vs): Pair<'_>) {
    match place(p, vs) {
        Place::Shared(SharedChain::RoundRobin(_)) => {
            // Same chain: same counter range and marking, so this always holds.
            let kept = backends::update_in_place(s, e, p.family, (was, vs));
            debug_assert!(kept, "{}: same shared chain, different rule", vs.key);
        }
        Place::Shared(SharedChain::Dropped) => {}
        // The proxy's port is the virtual server's for its whole life: nothing to change.
        Place::Own if matches!(p.target, Target::Proxy(_)) => {}
        // Only real servers moved behind its rule: a few elements of a shared map.
        Place::Own if backends::update_in_place(s, e, p.family, (was, vs)) => {}
        Place::Own => {
            let f = p.family.name();
            let chain = chain_name(&vs.key);
            // The map entry keeps pointing at the chain; only its rules are replaced.
            let _ = writeln!(s, "flush chain {f} {TABLE} {chain}");
            remove_affinity(s, p, was, Some(vs));
            backends::remove(s, p.family, was);
            add_rules(s, e, p, vs);
        }
    }
}

/// A virtual server's definition before and after a change.
type Pair<'a> = (&'a VirtualServer, &'a VirtualServer);

/// The chain name of a virtual server: stable, short, and free of characters nft would
/// need quoted.
pub fn chain_name(key: &VsKey) -> String {
    let addr = match key.addr {
        IpAddr::V4(a) => format!("{:08x}", u32::from(a)),
        IpAddr::V6(a) => format!("{:032x}", u128::from(a)),
    };
    format!("vs-{}-{addr}-{}", key.proto, key.port)
}

fn element(key: &VsKey) -> String {
    format!("{} . {} . {}", key.addr, key.proto, key.port)
}

/// A real server as a map value (`addr . port`).
fn target(r: &RealServer) -> String {
    format!("{} . {}", r.addr, r.port)
}

/// A real server as a plain DNAT target (`addr:port`, `[addr]:port`).
fn socket(r: &RealServer) -> String {
    match r.addr {
        IpAddr::V4(a) => format!("{a}:{}", r.port),
        IpAddr::V6(a) => format!("[{a}]:{}", r.port),
    }
}

/// Add `vs`: its services element, its chain (or the shared chain's name in `used`) and its
/// backend elements.
fn add_server(
    s: &mut String,
    e: &mut Elements,
    used: &mut BTreeSet<SharedChain>,
    p: Prog<'_>,
    vs: &VirtualServer,
) {
    match place(p, vs) {
        Place::Shared(chain) => {
            used.insert(chain);
            e.service(&vs.key, chain.name());
            if let (SharedChain::RoundRobin(_), Some(owners)) = (chain, backends::spread(vs)) {
                e.backends(vs, &owners);
            }
        }
        Place::Own => {
            let chain = chain_name(&vs.key);
            let _ = writeln!(s, "add chain {} {TABLE} {chain}", p.family.name());
            add_rules(s, e, p, vs);
            e.service(&vs.key, chain);
        }
    }
}

/// The rules of a virtual server's own (existing, empty) chain, with its affinity sets and
/// per-server chains.
fn add_rules(s: &mut String, e: &mut Elements, p: Prog<'_>, vs: &VirtualServer) {
    let family = p.family;
    let f = family.name();
    let chain = chain_name(&vs.key);
    let proto = vs.key.proto;
    let rule = |s: &mut String, body: &str| {
        let _ = writeln!(s, "add rule {f} {TABLE} {chain} {body}");
    };
    if let Target::Proxy(ports) = p.target {
        if let Some(port) = ports.get(&vs.key) {
            rule(s, &format!("meta l4proto {proto} redirect to :{port}"));
        }
        return;
    }
    if let Some(owners) = backends::spread(vs) {
        let (n, map) = (owners.len() as u32, map_name(&vs.key));
        rule(s, &backends::rule(family, proto, n, vs.masquerade, &map));
        e.backends(vs, &owners);
        return;
    }
    let mark = masquerade_mark(vs.masquerade);
    let servers = &vs.real_servers;
    let (expr, arms) = pick_expr(vs, family);
    let Some(timeout) = vs.affinity else {
        let arms: Vec<String> = arms
            .iter()
            .map(|(range, i)| format!("{range} : {}", target(&servers[*i])))
            .collect();
        rule(
            s,
            &format!(
                "{mark}meta l4proto {proto} dnat {f} to {expr} map {{ {} }}",
                arms.join(", ")
            ),
        );
        return;
    };
    // Per real server: a set of clients seen recently, and a chain that refreshes the
    // client's entry and DNATs. A known client goes straight to its server. `add` leaves an
    // existing set (and its clients) as it is; the server's chain gets its one rule anew.
    for r in servers {
        let (set, to) = affinity_names(&chain, r);
        let _ = writeln!(
            s,
            "add set {f} {TABLE} {set} {{ type {}; flags dynamic,timeout; timeout {}s; }}",
            family.addr_type(),
            timeout.as_secs().max(1)
        );
        let _ = writeln!(
            s,
            "add chain {f} {TABLE} {to}\nflush chain {f} {TABLE} {to}"
        );
        let _ = writeln!(
            s,
            "add rule {f} {TABLE} {to} {mark}update @{set} {{ {f} saddr }} meta l4proto {proto} dnat {f} to {}",
            socket(r)
        );
        rule(s, &format!("{f} saddr @{set} goto {to}"));
    }
    let arms: Vec<String> = arms
        .iter()
        .map(|(range, i)| format!("{range} : goto {}", affinity_names(&chain, &servers[*i]).1))
        .collect();
    rule(s, &format!("{expr} vmap {{ {} }}", arms.join(", ")));
}

/// The statement marking a connection for masquerade (empty when it keeps the client address).
fn masquerade_mark(masquerade: bool) -> String {
    if masquerade {
        format!("meta mark set meta mark | {MASQ_MARK:#x} ")
    } else {
        String::new()
    }
}

/// Traffic to `vs` is dropped: Local policy without a local endpoint, or no endpoint at all.
fn dropping(vs: &VirtualServer) -> bool {
    vs.drop || vs.real_servers.is_empty()
}

fn remove_server(s: &mut String, p: Prog<'_>, vs: &VirtualServer) {
    let f = p.family.name();
    let _ = writeln!(
        s,
        "delete element {f} {TABLE} services {{ {} }}",
        element(&vs.key)
    );
    if place(p, vs) == Place::Own {
        let chain = chain_name(&vs.key);
        let _ = writeln!(s, "flush chain {f} {TABLE} {chain}");
        remove_affinity(s, p, vs, None);
        let _ = writeln!(s, "delete chain {f} {TABLE} {chain}");
    }
    if matches!(p.target, Target::Kernel(_)) {
        backends::remove(s, p.family, vs);
    }
}

/// The affinity set and the chain of real server `r` of the virtual server chain `chain`:
/// named after the server (address in hex, port), so they outlive changes to the others.
fn affinity_names(chain: &str, r: &RealServer) -> (String, String) {
    let addr = match r.addr {
        IpAddr::V4(a) => format!("{:08x}", u32::from(a)),
        IpAddr::V6(a) => format!("{:032x}", u128::from(a)),
    };
    (
        format!("{chain}-a-{addr}-{}", r.port),
        format!("{chain}-s-{addr}-{}", r.port),
    )
}

/// The real servers `vs` has affinity sets and chains for in the program.
fn with_affinity<'a>(p: Prog<'_>, vs: &'a VirtualServer) -> Vec<&'a RealServer> {
    if matches!(p.target, Target::Proxy(_)) || vs.affinity.is_none() || dropping(vs) {
        return Vec::new();
    }
    vs.real_servers.iter().collect()
}

/// Remove the per-server chains and sets of `was` that its new definition `next` does not
/// keep: those of real servers that left, or all of them when affinity ends or its timeout
/// changes (a set's timeout is fixed). `was`'s main chain must be flushed first.
fn remove_affinity(s: &mut String, p: Prog<'_>, was: &VirtualServer, next: Option<&VirtualServer>) {
    let f = p.family.name();
    let chain = chain_name(&was.key);
    let kept = match next {
        Some(n) if n.affinity == was.affinity => with_affinity(p, n),
        _ => Vec::new(),
    };
    for r in with_affinity(p, was) {
        if kept.iter().any(|k| k.addr == r.addr && k.port == r.port) {
            continue;
        }
        let (set, to) = affinity_names(&chain, r);
        let _ = writeln!(
            s,
            "flush chain {f} {TABLE} {to}\ndelete chain {f} {TABLE} {to}\ndelete set {f} {TABLE} {set}"
        );
    }
}

/// The selector expression and its arms (`"0-2"` → real server index) for the scheduler.
fn pick_expr(vs: &VirtualServer, family: Family) -> (String, Vec<(String, usize)>) {
    let f = family.name();
    let servers = &vs.real_servers;
    match vs.scheduler {
        SchedulerKind::Wrr => {
            let weights: Vec<u32> = servers.iter().map(|r| r.weight.max(1)).collect();
            let total: u32 = weights.iter().sum();
            let mut arms = Vec::new();
            let mut at = 0u32;
            for (i, w) in weights.iter().enumerate() {
                arms.push((range(at, at + w - 1), i));
                at += w;
            }
            (format!("numgen inc mod {total}"), arms)
        }
        SchedulerKind::Sh | SchedulerKind::Dh => {
            let field = if vs.scheduler == SchedulerKind::Sh {
                "saddr"
            } else {
                "daddr"
            };
            let dests: Vec<Dest> = servers.iter().map(RealServer::dest).collect();
            let buckets = super::scheduler::hash_buckets(&dests);
            (
                format!("jhash {f} {field} mod {HASH_BUCKETS} seed {JHASH_SEED:#x}"),
                runs(&buckets),
            )
        }
        SchedulerKind::Mh => {
            let backends: Vec<MaglevBackend> = servers
                .iter()
                .map(|r| MaglevBackend {
                    id: r.id(),
                    weight: r.weight,
                })
                .collect();
            let table =
                MaglevTable::build(&backends, DEFAULT_TABLE_SIZE).unwrap_or_else(|_| MaglevTable {
                    backends: vec![],
                    entries: vec![],
                });
            // Map the table's backend order back to indices in `servers`.
            let index: Vec<usize> = table
                .backends
                .iter()
                .map(|b| servers.iter().position(|r| r.id() == b.id).unwrap_or(0))
                .collect();
            let owners: Vec<usize> = table.entries.iter().map(|&e| index[e as usize]).collect();
            (
                format!("jhash {f} saddr mod {DEFAULT_TABLE_SIZE} seed {JHASH_SEED:#x}"),
                runs(&owners),
            )
        }
        // rr (and anything else the kernel path accepts) spreads new connections evenly.
        _ => (
            format!("numgen inc mod {}", servers.len()),
            (0..servers.len()).map(|i| (i.to_string(), i)).collect(),
        ),
    }
}

/// Collapse consecutive equal owners into ranges (`"4-9" → 2`).
fn runs(owners: &[usize]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    let mut start = 0;
    for i in 1..=owners.len() {
        if i == owners.len() || owners[i] != owners[start] {
            out.push((range(start as u32, i as u32 - 1), owners[start]));
            start = i;
        }
    }
    out
}

fn range(a: u32, b: u32) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

mod backends;
pub mod guard;
pub mod netlink;
mod place;

use place::{Place, SharedChain, place, shared_chains};

pub use backends::{Replacement, Slot, map_name};

#[cfg(test)]
mod tests;
