use super::*;
use proptest::prelude::*;

const FAMILY: u16 = 0x24;

fn web(addr: &str) -> Service {
    Service {
        id: ServiceId::Addr {
            proto: Proto::Tcp,
            addr: addr.parse().unwrap(),
            port: 80,
        },
        scheduler: "rr".into(),
        flags: 0,
        timeout: 0,
        netmask: if addr.contains(':') { 128 } else { u32::MAX },
    }
}

/// A dump reply as the kernel sends it: one NEW_SERVICE message per item, then DONE.
fn dump_reply(items: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (outer, attrs)) in items.iter().enumerate() {
        let mut body = Vec::new();
        push_nested(&mut body, *outer, attrs);
        push_message(
            &mut out,
            FAMILY,
            0x2,
            i as u32 + 1,
            &genl(Command::NewService as u8, &body),
        );
    }
    push_message(&mut out, netlink::NLMSG_DONE, 0x2, 9, &0i32.to_ne_bytes());
    out
}

#[test]
fn services_read_back_what_was_written() {
    for svc in [web("10.96.0.1"), web("fd00:96::1"), {
        let mut s = web("10.96.0.2");
        s.id = ServiceId::Addr {
            proto: Proto::Sctp,
            addr: "10.96.0.2".parse().unwrap(),
            port: 3868,
        };
        s.scheduler = "mh".into();
        s.flags = SVC_F_PERSISTENT | SVC_F_SCHED1 | SVC_F_SCHED2;
        s.timeout = 10800;
        s
    }] {
        let reply = dump_reply(&[(CMD_ATTR_SERVICE, service_attrs(&svc))]);
        let got = parse_services(&reply).unwrap();
        assert_eq!(got.items, std::slice::from_ref(&svc));
        assert!(got.done);
    }
    let mark = Service {
        id: ServiceId::Fwmark {
            ipv6: true,
            mark: 7,
        },
        ..web("fd00::1")
    };
    let reply = dump_reply(&[(CMD_ATTR_SERVICE, service_attrs(&mark))]);
    assert_eq!(parse_services(&reply).unwrap().items, [mark]);
}

#[test]
fn dests_read_back_with_their_connection_counts() {
    let d = Dest::masq("fd00:244:1::11".parse().unwrap(), 7000, 3);
    let mut attrs = dest_attrs(&d);
    push_attr(&mut attrs, DEST_ATTR_ACTIVE_CONNS, &4u32.to_ne_bytes());
    push_attr(&mut attrs, DEST_ATTR_INACT_CONNS, &5u32.to_ne_bytes());
    push_attr(&mut attrs, DEST_ATTR_PERSIST_CONNS, &6u32.to_ne_bytes());
    let got = parse_dests(&dump_reply(&[(CMD_ATTR_DEST, attrs)])).unwrap();
    assert_eq!(
        got.items,
        [DestState {
            dest: d,
            active: 4,
            inactive: 5,
            persistent: 6
        }]
    );
    // An old kernel without the family attribute: the address tells.
    let v4 = Dest::masq("10.244.1.11".parse().unwrap(), 7000, 1);
    let attrs = dest_attrs(&v4)[8..].to_vec();
    let got = parse_dests(&dump_reply(&[(CMD_ATTR_DEST, attrs)])).unwrap();
    assert_eq!(got.items[0].dest, v4);
}

#[test]
fn requests_carry_the_family_command_and_flags() {
    let svc = web("10.96.0.1");
    let msg = service_request(FAMILY, Command::NewService, &svc, 5);
    let m = netlink::messages(&msg).next().unwrap().unwrap();
    assert_eq!(
        (m.kind, m.flags, m.seq),
        (FAMILY, NLM_F_REQUEST | NLM_F_ACK, 5)
    );
    assert_eq!(&m.body[..4], &[Command::NewService as u8, 1, 0, 0]);
    let dump = dump_services(FAMILY, 6);
    let m = netlink::messages(&dump).next().unwrap().unwrap();
    assert_eq!(m.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP);
    assert_eq!(m.body, [Command::GetService as u8, 1, 0, 0]);
}

#[test]
fn family_resolution() {
    let req = resolve_family(1);
    let m = netlink::messages(&req).next().unwrap().unwrap();
    assert_eq!(m.kind, GENL_ID_CTRL);
    assert!(m.body.ends_with(b"IPVS\0\0\0\0"), "{:?}", m.body);
    let mut attrs = Vec::new();
    push_attr(&mut attrs, CTRL_ATTR_FAMILY_NAME, b"IPVS\0");
    push_attr(&mut attrs, CTRL_ATTR_FAMILY_ID, &0x24u16.to_ne_bytes());
    let mut reply = Vec::new();
    push_message(&mut reply, GENL_ID_CTRL, 0, 1, &genl(1, &attrs));
    assert_eq!(family_id(&reply), Ok(Some(0x24)));
    let mut enoent = Vec::new();
    push_message(
        &mut enoent,
        netlink::NLMSG_ERROR,
        0,
        1,
        &(-2i32).to_ne_bytes(),
    );
    assert_eq!(family_id(&enoent), Err(DecodeError::Refused(-2)));
}

#[test]
fn acks_and_refusals_are_told_apart() {
    let mut d = Vec::new();
    push_message(&mut d, netlink::NLMSG_ERROR, 0, 3, &0i32.to_ne_bytes());
    push_message(&mut d, netlink::NLMSG_ERROR, 0, 4, &(-17i32).to_ne_bytes());
    let r = parse_acks(&d).unwrap();
    assert_eq!((r.acked, r.refused), (vec![3], vec![(4, -17)]));
}

#[test]
fn malformed_replies_are_errors_that_say_what() {
    let mut attrs = service_attrs(&web("10.96.0.1"));
    // The port attribute (AF 8 + PROTOCOL 8 + ADDR 20 bytes in) given 3 bytes.
    let port_at = 36;
    attrs[port_at] = 7;
    let got = parse_services(&dump_reply(&[(CMD_ATTR_SERVICE, attrs)]));
    assert!(got.is_err(), "{got:?}");
    let mut no_af = Vec::new();
    push_attr(&mut no_af, SVC_ATTR_PROTOCOL, &6u16.to_ne_bytes());
    assert_eq!(
        parse_services(&dump_reply(&[(CMD_ATTR_SERVICE, no_af)])),
        Err(DecodeError::Missing {
            what: "service",
            attr: SVC_ATTR_AF
        })
    );
    let mut odd = Vec::new();
    push_attr(&mut odd, SVC_ATTR_AF, &2u16.to_ne_bytes());
    push_attr(&mut odd, SVC_ATTR_PROTOCOL, &99u16.to_ne_bytes());
    assert_eq!(
        parse_services(&dump_reply(&[(CMD_ATTR_SERVICE, odd)]))
            .unwrap_err()
            .to_string(),
        "service: unknown protocol 99"
    );
    let mut short = Vec::new();
    push_message(&mut short, FAMILY, 0, 1, &[1, 1]);
    assert_eq!(parse_services(&short), Err(DecodeError::ShortGenl));
}

/// The messages ipvsadm sent and the kernel answered in the VM lab (`ipvsadm-6.1.txt`).
struct Captured {
    requests: Vec<(String, u16, Vec<u8>)>,
    replies: Vec<(String, u16, Vec<u8>)>,
}

fn captured() -> Captured {
    let mut c = Captured {
        requests: Vec::new(),
        replies: Vec::new(),
    };
    for line in include_str!("ipvsadm-6.1.txt").lines() {
        let Some((kind, rest)) = line.split_once(' ').filter(|_| !line.starts_with('#')) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('|').collect();
        let [command, flags, body] = parts[..] else {
            continue;
        };
        let flags = u16::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
        let body: Vec<u8> = (0..body.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&body[i..i + 2], 16).unwrap())
            .collect();
        let entry = (command.to_string(), flags, body);
        match kind {
            "request" => c.requests.push(entry),
            "reply" => c.replies.push(entry),
            _ => {}
        }
    }
    c
}

/// The captured requests of `command`, as (flags, body).
fn sent<'a>(c: &'a Captured, command: &str) -> Vec<(u16, &'a [u8])> {
    c.requests
        .iter()
        .filter(|(name, ..)| name == command)
        .map(|(_, flags, body)| (*flags, &body[..]))
        .collect()
}

/// Our message's flags and body (the header's length, type, seq and port differ by design).
fn ours(message: &[u8]) -> (u16, Vec<u8>) {
    let m = netlink::messages(message).next().unwrap().unwrap();
    assert_eq!(m.kind, 0x20);
    (m.flags, m.body.to_vec())
}

fn id(proto: Proto, addr: &str, port: u16) -> ServiceId {
    ServiceId::Addr {
        proto,
        addr: addr.parse().unwrap(),
        port,
    }
}

#[test]
fn requests_are_byte_for_byte_what_ipvsadm_sends() {
    let c = captured();
    let svc = |id, scheduler: &str, flags, timeout| Service {
        id,
        scheduler: scheduler.into(),
        flags,
        timeout,
        netmask: match id {
            ServiceId::Addr { addr, .. } => whole_address_netmask(addr.is_ipv6()),
            ServiceId::Fwmark { ipv6, .. } => whole_address_netmask(ipv6),
        },
    };
    let v4 = id(Proto::Tcp, "10.96.0.1", 80);
    let v6 = id(Proto::Udp, "fd00:96::1", 53);
    let pod = |weight| Dest::masq("10.244.1.11".parse().unwrap(), 7000, weight);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "ipvsadm -A -t 10.96.0.1:80 -s rr",
            service_request(0x20, Command::NewService, &svc(v4, "rr", 0, 0), 1),
        ),
        (
            "ipvsadm -A -u [fd00:96::1]:53 -s mh -b flag-1,flag-2",
            service_request(
                0x20,
                Command::NewService,
                &svc(v6, "mh", SVC_F_SCHED1 | SVC_F_SCHED2, 0),
                1,
            ),
        ),
        (
            "ipvsadm -A -t 10.96.0.2:443 -s wlc -p 10800",
            service_request(
                0x20,
                Command::NewService,
                &svc(
                    id(Proto::Tcp, "10.96.0.2", 443),
                    "wlc",
                    SVC_F_PERSISTENT,
                    10800,
                ),
                1,
            ),
        ),
        (
            "ipvsadm -A -t [fd00:96::2]:443 -s sh -p 60",
            service_request(
                0x20,
                Command::NewService,
                &svc(
                    id(Proto::Tcp, "fd00:96::2", 443),
                    "sh",
                    SVC_F_PERSISTENT,
                    60,
                ),
                1,
            ),
        ),
        (
            "ipvsadm -E -t 10.96.0.2:443 -s lc",
            service_request(
                0x20,
                Command::SetService,
                &svc(id(Proto::Tcp, "10.96.0.2", 443), "lc", 0, 0),
                1,
            ),
        ),
        (
            "ipvsadm -D -t 10.96.0.1:80",
            service_request(0x20, Command::DelService, &svc(v4, "rr", 0, 0), 1),
        ),
        (
            "ipvsadm -a -t 10.96.0.1:80 -r 10.244.1.11:7000 -m -w 3",
            dest_request(0x20, Command::NewDest, &v4, &pod(3), 1),
        ),
        (
            "ipvsadm -a -u [fd00:96::1]:53 -r [fd00:244:1::11]:53 -m -w 1",
            dest_request(
                0x20,
                Command::NewDest,
                &v6,
                &Dest::masq("fd00:244:1::11".parse().unwrap(), 53, 1),
                1,
            ),
        ),
        (
            "ipvsadm -e -t 10.96.0.1:80 -r 10.244.1.11:7000 -m -w 0",
            dest_request(0x20, Command::SetDest, &v4, &pod(0), 1),
        ),
        (
            // ipvsadm fills a deletion with its defaults (direct routing, weight 1); the
            // kernel reads only the address and port.
            "ipvsadm -d -t 10.96.0.1:80 -r 10.244.1.11:7000",
            dest_request(0x20, Command::DelDest, &v4, &Dest { fwd: 3, ..pod(1) }, 1),
        ),
    ];
    for (command, message) in cases {
        let captured = sent(&c, command);
        assert_eq!(captured.len(), 1, "{command}");
        let (flags, body) = ours(&message);
        assert_eq!(flags, captured[0].0, "{command}: flags");
        assert_eq!(body, captured[0].1, "{command}: body");
    }
    // The dumps `ipvsadm -Ln` sends: every virtual server, then each one's real servers.
    let listing = sent(&c, "ipvsadm -Ln");
    let (flags, body) = ours(&dump_services(0x20, 1));
    assert_eq!((flags, &body[..]), listing[0]);
    let (flags, body) = ours(&dump_dests(0x20, &v4, 1));
    assert!(listing.contains(&(flags, &body[..])), "{listing:?}");
}

#[test]
fn the_kernels_dumps_read_as_ipvsadm_showed_them() {
    let c = captured();
    let datagram = |wanted: u8| {
        let mut out = Vec::new();
        for (_, flags, body) in c.replies.iter().filter(|(n, ..)| n == "ipvsadm -Ln") {
            if body[0] == wanted {
                push_message(&mut out, 0x20, *flags, 1, body);
            }
        }
        out
    };
    let services = parse_services(&datagram(Command::NewService as u8)).unwrap();
    let got: Vec<String> = services
        .items
        .iter()
        .map(|s| {
            format!(
                "{} {} {:#x} {} {:#x}",
                s.id, s.scheduler, s.flags, s.timeout, s.netmask
            )
        })
        .collect();
    // The kernel adds IP_VS_SVC_F_HASHED (0x2) to what it reports.
    assert_eq!(
        got,
        [
            "udp/[fd00:96::1]:53 mh 0x1a 0 0x80",
            "tcp/10.96.0.2:443 wlc 0x3 10800 0xffffffff",
            "tcp/10.96.0.1:80 rr 0x2 0 0xffffffff",
            "tcp/[fd00:96::2]:443 sh 0x3 60 0x80",
        ]
    );
    let dests = parse_dests(&datagram(Command::NewDest as u8)).unwrap();
    let got: Vec<(Dest, u32, u32)> = dests
        .items
        .iter()
        .map(|d| (d.dest, d.active, d.inactive))
        .collect();
    assert_eq!(
        got,
        [
            (Dest::masq("10.244.1.11".parse().unwrap(), 7000, 0), 0, 0),
            (Dest::masq("fd00:244:1::11".parse().unwrap(), 53, 1), 0, 0),
        ]
    );
}

proptest! {
    /// Any bytes: the readers return (an error or items) and never panic.
    #[test]
    fn readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_services(&bytes);
        let _ = parse_dests(&bytes);
        let _ = parse_acks(&bytes);
        let _ = family_id(&bytes);
    }
}
