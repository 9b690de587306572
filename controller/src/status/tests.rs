use super::*;
use ferrolb_shared::config::ConfigurationStateStatus;

fn inputs() -> Inputs {
    let mut i = Inputs {
        configuration: vec![
            ConfigurationStateStatus::valid("speaker", "node2", "1 pools"),
            ConfigurationStateStatus::valid("controller", "", "1 pools"),
        ],
        ..Default::default()
    };
    i.pools = vec![Pool {
        name: "lan".into(),
        capacity_v4: 51,
        in_use_v4: 1,
        capacity_v6: 0,
        in_use_v6: 0,
    }];
    i.services.insert(
        "default/web".into(),
        ServiceAddresses {
            addresses: vec!["10.0.0.1".into()],
            pool: "lan".into(),
        },
    );
    i.layer2 = vec![Announcement {
        service: "default/web".into(),
        node: "node2".into(),
        interfaces: vec![],
        addresses: vec!["10.0.0.1".into()],
    }];
    i.bgp = vec![
        (
            "default/web".into(),
            "node3".into(),
            vec!["r6".into(), "r4".into()],
        ),
        ("default/web".into(), "node1".into(), vec!["r4".into()]),
        ("default/gone".into(), "node1".into(), vec!["r4".into()]),
    ];
    i.sessions = vec![BGPSessionStateStatus {
        node: "node1".into(),
        peer: "r4".into(),
        peer_address: "10.0.0.254".into(),
        bgp_status: "Established".into(),
        established_since: "2026-12-06T10:00:00Z".into(),
        bfd_status: "Up".into(),
        last_error: String::new(),
    }];
    i
}

#[test]
fn the_report_joins_every_source_by_service_and_sorts() {
    let now: jiff::Timestamp = "2026-12-06T11:02:03Z".parse().unwrap();
    let r = assemble(inputs(), now);
    assert_eq!(r.configuration[0].component, "controller");
    assert_eq!(
        r.services.len(),
        1,
        "status of a Service that is gone is left out"
    );
    let web = &r.services[0];
    assert_eq!(
        (web.namespace.as_str(), web.name.as_str()),
        ("default", "web")
    );
    assert_eq!(web.layer2_nodes[0].node, "node2");
    assert_eq!(web.layer2_nodes[0].addresses, ["10.0.0.1"]);
    assert_eq!(web.bgp[0].node, "node1");
    assert_eq!(web.bgp[1].peers, ["r4", "r6"]);
    assert_eq!(r.bgp_sessions[0].uptime_seconds, Some(3723));
}

#[test]
fn the_three_outputs_say_the_same() {
    let now: jiff::Timestamp = "2026-12-06T11:02:03Z".parse().unwrap();
    let r = assemble(inputs(), now);
    let table = render(&r, Output::Table);
    assert!(
        table.contains("default/web  10.0.0.1   lan   node2"),
        "{table}"
    );
    assert!(
        table.contains("node1; node3") || table.contains("node1: r4; node3: r4,r6"),
        "{table}"
    );
    assert!(table.contains("Established  1h2m"), "{table}");
    assert!(table.contains("lan   1/51"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&render(&r, Output::Json)).unwrap();
    assert_eq!(json["services"][0]["layer2Nodes"][0]["node"], "node2");
    assert_eq!(json["bgpSessions"][0]["bgpStatus"], "Established");
    assert_eq!(json["bgpSessions"][0]["uptimeSeconds"], 3723);
    assert_eq!(json["pools"][0]["capacityIPv4"], 51);
    let yaml: serde_json::Value = serde_yaml::from_str(&render(&r, Output::Yaml)).unwrap();
    assert_eq!(yaml, json);
}

#[test]
fn an_invalid_configuration_lists_its_errors_under_the_table() {
    let e = ferrolb_shared::config::ConfigError {
        source: ferrolb_shared::config::Source::api(),
        kind: "BGPPeer".into(),
        name: "p".into(),
        field: "spec.bfdProfile".into(),
        message: "BFDProfile \"x\" does not exist".into(),
    };
    let i = Inputs {
        configuration: vec![ConfigurationStateStatus::invalid("speaker", "node1", &[e])],
        ..Default::default()
    };
    let table = render(&assemble(i, jiff::Timestamp::now()), Output::Table);
    assert!(table.contains("speaker    node1  Invalid"), "{table}");
    assert!(
        table.contains("  speaker node1: api: BGPPeer \"p\": spec.bfdProfile"),
        "{table}"
    );
}

#[test]
fn uptimes_read_at_a_glance() {
    assert_eq!(table::uptime(59), "59s");
    assert_eq!(table::uptime(61), "1m1s");
    assert_eq!(table::uptime(3723), "1h2m");
    assert_eq!(table::uptime(90000), "1d1h");
}

#[test]
fn a_directory_without_controller_status_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let e = from_dir::read(tmp.path()).unwrap_err().to_string();
    assert!(e.contains(&tmp.path().display().to_string()), "{e}");
    assert!(e.contains("configurationstate.yaml"), "{e}");
}

#[test]
fn unreadable_files_are_named_in_warnings_and_the_rest_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lb.status");
    let state = ferrolb_shared::config::configuration_state(
        "controller",
        "standalone",
        ConfigurationStateStatus::valid("controller", "", "1 pools"),
    );
    ferrolb_cluster::files::write_state(&dir, state).unwrap();
    std::fs::write(dir.join("pools.yaml"), "lan: [unterminated").unwrap();
    let speaker = ferrolb_cluster::files::speaker_report_dir(&dir, "node1");
    std::fs::create_dir_all(&speaker).unwrap();
    std::fs::write(speaker.join("sessions.yaml"), "---\nkind: [\n").unwrap();
    let (inputs, warnings) = from_dir::read(&dir).unwrap();
    assert_eq!(inputs.configuration.len(), 1);
    assert!(inputs.pools.is_empty() && inputs.sessions.is_empty());
    assert!(
        warnings.iter().any(|w| w.contains("pools.yaml")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("sessions.yaml")),
        "{warnings:?}"
    );
}
