//! BFD packets forged from off the link (RFC 5881 §5): a single-hop BFD packet arrives with
//! TTL / Hop Limit 255 or it crossed a router, and then it must be discarded. An AdminDown
//! "from the router" would tear the node's BGP session down; sent with 254 (as if one router
//! away) it must change nothing, sent with 255 (the control: the very same bytes, so the
//! forgery is good enough to matter) it must take the session down.
//!
//! The forger is a UDP socket opened in the router's namespace with the router's LAN address,
//! beside the real BIRD, which runs BFD with every node (100 ms x 3). Your Discriminator zero
//! with state AdminDown is what a real peer sends before it has learned ours, so the speaker
//! picks the session by source address alone and the forgery needs no capture.

use super::{LIMIT, in_netns, last_errors, metric, node_addr, up_with, wait_sessions};
use ferrolb_e2e::lab::{Lab, RouterKind, plan, wait_for};
use ferrolb_shared::bfd::packet::{ControlPacket, Diag, State};
use socket2::{Domain, SockAddr, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU8, NonZeroU32};
use std::time::Duration;

/// Forged packets per family and TTL.
const FORGED: u32 = 20;
/// Between two forged packets: 20 of them cover 1 s, 10 detection times of the profile.
const GAP: Duration = Duration::from_millis(50);
const PEERS: [&str; 2] = ["router-v4", "router-v6"];

/// An AdminDown from a sender that has not learned our discriminator.
fn admin_down() -> [u8; 24] {
    ControlPacket {
        diag: Diag::AdministrativelyDown,
        state: State::AdminDown,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: NonZeroU8::new(3).unwrap_or(NonZeroU8::MIN),
        my_discriminator: NonZeroU32::new(0x00fe_7ced).unwrap_or(NonZeroU32::MIN),
        your_discriminator: None,
        desired_min_tx_us: 100_000,
        required_min_rx_us: 100_000,
        required_min_echo_rx_us: 0,
    }
    .to_bytes()
}

/// A UDP socket in the router's namespace, from its LAN address of the family of `v6`, that
/// sends with TTL / Hop Limit `ttl`.
fn forger(lab: &Lab, v6: bool, ttl: u32) -> anyhow::Result<Socket> {
    let (r4, r6) = plan::router_lan();
    let from: IpAddr = if v6 { r6.into() } else { r4.into() };
    in_netns(&lab.host("router")?.netns, move || {
        let socket = Socket::new(
            Domain::for_address(SocketAddr::new(from, 0)),
            Type::DGRAM,
            None,
        )?;
        if v6 {
            socket.set_unicast_hops_v6(ttl)?;
        } else {
            socket.set_ttl_v4(ttl)?;
        }
        socket.bind(&SockAddr::from(SocketAddr::new(from, 0)))?;
        Ok(socket)
    })
}

/// Sends [`FORGED`] AdminDowns with `ttl` to node1's BFD port, over both families.
fn forge(lab: &Lab, ttl: u32) -> anyhow::Result<()> {
    let sockets = [forger(lab, false, ttl)?, forger(lab, true, ttl)?];
    let packet = admin_down();
    for _ in 0..FORGED {
        for (socket, v6) in sockets.iter().zip([false, true]) {
            let to = SocketAddr::new(node_addr(1, v6), 3784);
            socket.send_to(&packet, &SockAddr::from(to))?;
        }
        std::thread::sleep(GAP);
    }
    Ok(())
}

fn value(lab: &Lab, series: &str) -> anyhow::Result<f64> {
    Ok(metric(lab, "node1", series)?.unwrap_or(0.0))
}

/// The peers whose last error on node1 is a BFD Down (the session torn down by BFD).
fn bfd_down_peers(lab: &Lab) -> anyhow::Result<Vec<&'static str>> {
    let mut down = Vec::new();
    for peer in PEERS {
        if last_errors(lab, "node1", peer)?
            .iter()
            .any(|e| e.contains("BFD Down"))
        {
            down.push(peer);
        }
    }
    Ok(down)
}

#[test]
fn bfd_packets_from_off_the_link_are_discarded() -> anyhow::Result<()> {
    let lab = up_with(
        RouterKind::Bird,
        plan::NODE_ASN,
        "",
        ", bfdProfile: fast",
        true,
    )?;
    wait_sessions(&lab)?;
    for peer in PEERS {
        wait_for(&format!("BFD up with {peer} on node1"), LIMIT, || {
            let series = format!("ferrolb_bfd_session_up{{peer=\"{peer}\"}}");
            (value(&lab, &series).ok()? == 1.0).then_some(())
        })?;
    }
    let ttl_series = "ferrolb_bfd_packets_discarded_total{reason=\"ttl\"}";
    let before = value(&lab, ttl_series)?;

    // One hop away: every forged packet is counted as discarded, nothing goes down.
    forge(&lab, 254)?;
    let all = f64::from(2 * FORGED);
    wait_for("every forged packet counted as discarded", LIMIT, || {
        (value(&lab, ttl_series).ok()? - before >= all).then_some(())
    })?;
    for peer in PEERS {
        for series in ["ferrolb_bfd_session_up", "ferrolb_bgp_session_up"] {
            let series = format!("{series}{{peer=\"{peer}\"}}");
            assert_eq!(value(&lab, &series)?, 1.0, "{series} after TTL 254");
        }
    }
    assert_eq!(bfd_down_peers(&lab)?, Vec::<&str>::new());

    // The control: the same packets with 255 are believed, and take both sessions down.
    forge(&lab, 255)?;
    wait_for(
        "both sessions torn down by BFD",
        Duration::from_secs(5),
        || (bfd_down_peers(&lab).ok()? == PEERS).then_some(()),
    )?;
    lab.down()?;
    Ok(())
}
