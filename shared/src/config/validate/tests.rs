use super::*;
use crate::manifest::parse_documents;

/// Parse YAML documents and validate the config objects among them.
fn check(text: &str) -> Result<Config, Vec<ConfigError>> {
    let f = parse_documents("cfg.yaml", text);
    assert!(f.errors.is_empty(), "parse errors: {:?}", f.errors);
    let objects: Vec<(Source, ConfigObject)> = f.config_objects();
    validate(&objects)
}

/// The (field, message) pairs of a rejected config.
fn errors(text: &str) -> Vec<(String, String)> {
    match check(text) {
        Ok(_) => panic!("config should be rejected:\n{text}"),
        Err(e) => e.into_iter().map(|e| (e.field, e.message)).collect(),
    }
}

fn assert_error(text: &str, field: &str, needle: &str) {
    let errs = errors(text);
    assert!(
        errs.iter().any(|(f, m)| f == field && m.contains(needle)),
        "expected {field}: ...{needle}... in {errs:#?}"
    );
}

const POOL: &str = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, labels: {zone: a}}\nspec: {addresses: [10.0.0.0/24, 'fd00::/120']}\n";

fn peer(spec: &str) -> String {
    format!(
        "{POOL}---\napiVersion: ferrolb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: tor}}\nspec: {spec}\n"
    )
}

fn bgp_adv(spec: &str) -> String {
    format!(
        "{}---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: adv}}\nspec: {spec}\n",
        peer("{myASN: 1, peerASN: 2, peerAddress: 10.1.0.1}")
    )
}

#[test]
fn a_good_config_resolves_everything() {
    let text = format!(
        "{}---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: l2}}\n---\napiVersion: ferrolb.io/v1beta1\nkind: Community\nmetadata: {{name: c}}\nspec: {{communities: [{{name: vip, value: '65000:1'}}]}}\n---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: b}}\nspec: {{communities: [vip, 'large:1:2:3'], ipAddressPoolSelectors: [{{matchLabels: {{zone: a}}}}], aggregationLength: 24}}\n",
        peer("{myASN: 64500, peerASN: 64501, peerAddress: 10.1.0.1, holdTime: 3s}")
    );
    let cfg = check(&text).expect("valid");
    assert_eq!(cfg.pools["p"].ranges.len(), 2);
    assert_eq!(
        cfg.l2_advertisements["l2"].pools.iter().collect::<Vec<_>>(),
        ["p"]
    );
    assert_eq!(
        cfg.bgp_advertisements["b"].pools.iter().collect::<Vec<_>>(),
        ["p"]
    );
    assert_eq!(cfg.bgp_advertisements["b"].communities.len(), 2);
    let p = &cfg.peers["tor"];
    assert_eq!(p.hold_time, Duration::from_secs(3));
    assert_eq!(p.keepalive_time, Duration::from_secs(1));
    assert_eq!(p.spec.peer_port(), 179);
}

#[test]
fn missing_names_and_addresses() {
    let errs = errors(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {}\nspec: {addresses: []}\n",
    );
    assert!(errs.iter().any(|(f, _)| f == "metadata.name"));
    assert!(errs.iter().any(|(f, _)| f == "spec.addresses"));
}

#[test]
fn bad_cidrs_ranges_and_reversed_ranges_are_all_reported() {
    let errs = errors(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.0.0.0/40, 10.0.0.9-10.0.0.1, bogus]}\n",
    );
    let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.addresses[0]",
            "spec.addresses[1]",
            "spec.addresses[2]"
        ]
    );
    assert!(errs[1].1.contains("after its end"));
}

#[test]
fn overlapping_pools_are_refused() {
    let text = format!(
        "{POOL}---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: q}}\nspec: {{addresses: [10.0.0.200-10.0.1.5]}}\n"
    );
    assert_error(
        &text,
        "spec.addresses[0]",
        "overlaps 10.0.0.0-10.0.0.255 of pool \"p\"",
    );
    // Adjacent is fine, and IPv4 never overlaps IPv6.
    let ok = format!(
        "{POOL}---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: q}}\nspec: {{addresses: [10.0.1.0/24, 'fd00::100/120']}}\n"
    );
    assert!(check(&ok).is_ok());
    // Within one pool too.
    assert_error(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.0.0.0/16, 10.0.3.0/24, 10.0.4.4/32]}\n",
        "spec.addresses[2]",
        "overlaps",
    );
}

#[test]
fn duplicate_names() {
    let text = format!(
        "{POOL}---\n{}",
        POOL.replace("10.0.0.0/24, 'fd00::/120'", "10.9.0.0/24")
    );
    assert_error(&text, "metadata.name", "duplicate name");
}

#[test]
fn asn_rules() {
    assert_error(
        &peer("{myASN: 0, peerASN: 1, peerAddress: 10.1.0.1}"),
        "spec.myASN",
        "ASN 0",
    );
    assert_error(
        &peer("{myASN: 1, peerASN: 0, peerAddress: 10.1.0.1}"),
        "spec.peerASN",
        "ASN 0",
    );
    assert_error(
        &peer("{myASN: 1, peerASN: 2, dynamicASN: external, peerAddress: 10.1.0.1}"),
        "spec.dynamicASN",
        "both",
    );
    assert_error(
        &peer("{myASN: 1, peerAddress: 10.1.0.1}"),
        "spec.peerASN",
        "peerASN or dynamicASN",
    );
    assert_error(
        &peer("{myASN: 1, dynamicASN: sideways, peerAddress: 10.1.0.1}"),
        "spec.dynamicASN",
        "sideways",
    );
    assert!(
        check(&peer(
            "{myASN: 1, dynamicASN: external, peerAddress: 10.1.0.1, ebgpMultiHop: true}"
        ))
        .is_ok()
    );
}

#[test]
fn ebgp_multihop_on_ibgp() {
    assert_error(
        &peer("{myASN: 5, peerASN: 5, peerAddress: 10.1.0.1, ebgpMultiHop: true}"),
        "spec.ebgpMultiHop",
        "iBGP",
    );
    assert_error(
        &peer("{myASN: 5, dynamicASN: internal, peerAddress: 10.1.0.1, ebgpMultiHop: true}"),
        "spec.ebgpMultiHop",
        "iBGP",
    );
}

#[test]
fn timers() {
    assert_error(
        &peer("{myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, holdTime: 2s}"),
        "spec.holdTime",
        "under 3s",
    );
    assert!(
        check(&peer(
            "{myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, holdTime: '0', keepaliveTime: '0'}"
        ))
        .is_ok()
    );
    assert_error(
        &peer("{myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, holdTime: 9s, keepaliveTime: 10s}"),
        "spec.keepaliveTime",
        "longer than holdTime",
    );
    assert_error(
        &peer("{myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, holdTime: soon}"),
        "spec.holdTime",
        "soon",
    );
}

#[test]
fn addresses_of_peers() {
    assert_error(
        &peer("{myASN: 1, peerASN: 2, peerAddress: router}"),
        "spec.peerAddress",
        "router",
    );
    assert_error(
        &peer("{myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, sourceAddress: 'fd00::1'}"),
        "spec.sourceAddress",
        "different IP families",
    );
    assert_error(
        &peer("{myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, routerID: 'fd00::1'}"),
        "spec.routerID",
        "not an IPv4",
    );
}

#[test]
fn password_with_secret() {
    assert_error(
        &peer(
            "{myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, password: x, passwordSecret: {name: s}}",
        ),
        "spec.passwordSecret",
        "at most one",
    );
}

#[test]
fn password_longer_than_a_tcp_md5_key() {
    let long = "k".repeat(81);
    assert_error(
        &peer(&format!(
            "{{myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, password: {long}}}"
        )),
        "spec.password",
        "at most 80 bytes",
    );
    let fits = "k".repeat(80);
    let config = peer(&format!(
        "{{myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, password: {fits}}}"
    ));
    assert!(check(&config).is_ok(), "{:?}", check(&config).err());
}

#[test]
fn missing_bfd_profile() {
    assert_error(
        &peer("{myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, bfdProfile: fast}"),
        "spec.bfdProfile",
        "\"fast\" does not exist",
    );
    let with_profile = format!(
        "{}---\napiVersion: ferrolb.io/v1beta1\nkind: BFDProfile\nmetadata: {{name: fast}}\nspec: {{receiveInterval: 100}}\n",
        peer("{myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, bfdProfile: fast}")
    );
    assert!(
        check(&with_profile).is_ok(),
        "the profile may be defined after the peer"
    );
}

#[test]
fn bfd_ranges() {
    let errs = errors(
        "apiVersion: ferrolb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: b}\nspec: {receiveInterval: 5, transmitInterval: 70000, detectMultiplier: 1, echoInterval: 9, minimumTtl: 255}\n",
    );
    assert_eq!(errs.len(), 5, "{errs:?}");
}

#[test]
fn aggregation_lengths() {
    assert_error(
        &bgp_adv("{aggregationLength: 16}"),
        "spec.aggregationLength",
        "shorter than prefix 10.0.0.0/24",
    );
    assert_error(
        &bgp_adv("{aggregationLengthV6: 64}"),
        "spec.aggregationLengthV6",
        "shorter than prefix fd00::/120",
    );
    assert_error(
        &bgp_adv("{aggregationLength: 33}"),
        "spec.aggregationLength",
        "out of range",
    );
    assert_error(
        &bgp_adv("{aggregationLengthV6: 129}"),
        "spec.aggregationLengthV6",
        "out of range",
    );
    assert!(
        check(&bgp_adv(
            "{aggregationLength: 24, aggregationLengthV6: 124}"
        ))
        .is_ok()
    );
}

#[test]
fn communities() {
    assert_error(
        &bgp_adv("{communities: ['65536:1']}"),
        "spec.communities[0]",
        "65536",
    );
    assert_error(
        &bgp_adv("{communities: [friends]}"),
        "spec.communities[0]",
        "known alias",
    );
    assert!(check(&bgp_adv("{communities: [no-export, '1:2']}")).is_ok());
    let bad_alias = format!(
        "{}---\napiVersion: ferrolb.io/v1beta1\nkind: Community\nmetadata: {{name: c}}\nspec: {{communities: [{{name: x, value: 'large:1'}}]}}\n",
        POOL
    );
    assert_error(&bad_alias, "spec.communities[0].value", "large");
}

#[test]
fn references_to_missing_pools_and_peers() {
    assert_error(
        &bgp_adv("{ipAddressPools: [nope]}"),
        "spec.ipAddressPools[0]",
        "\"nope\" does not exist",
    );
    assert_error(
        &bgp_adv("{peers: [ghost]}"),
        "spec.peers[0]",
        "\"ghost\" does not exist",
    );
}

#[test]
fn conflicting_local_pref() {
    let text = format!(
        "{}---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: other}}\nspec: {{localPref: 200}}\n",
        bgp_adv("{localPref: 100}")
    );
    assert_error(&text, "spec.localPref", "conflicts with localPref");
    let disjoint = format!(
        "{}---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: other}}\nspec: {{localPref: 200, ipAddressPools: [q]}}\n---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: q}}\nspec: {{addresses: [10.7.0.0/24]}}\n",
        bgp_adv("{localPref: 100, ipAddressPools: [p]}")
    );
    assert!(check(&disjoint).is_ok());
}

#[test]
fn bad_selectors_are_reported_with_paths() {
    let text = "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l}\nspec:\n  nodeSelectors: [{matchExpressions: [{key: a, operator: Maybe}]}]\n  interfaces: ['this-name-is-far-too-long']\n";
    let errs = errors(text);
    let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.interfaces[0]",
            "spec.nodeSelectors[0].matchExpressions[0].operator"
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = format!(
        "{}---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: q}}\nspec: {{addresses: [10.0.0.5/32]}}\n",
        peer("{myASN: 0, peerAddress: x, holdTime: 1s}")
    );
    let errs = errors(&text);
    assert!(errs.len() >= 4, "{errs:#?}");
}
