//! `externalTrafficPolicy: Local`: only this node's endpoints, the client address kept (in
//! the kernel path; the userspace proxy connects from the node), traffic dropped on a node
//! without a local endpoint, and the health-check node port saying which nodes have one.

use super::fixture::{
    self, ECHO, answers, endpoints, host_addr, node_addr, pod_gateway, route, speakers,
};
use super::{family, tally};
use ferrolb_e2e::lab::{Lab, wait_until};
use std::net::IpAddr;
use std::time::Duration;

const HEALTH: u16 = 32100;

/// GET the health-check node port of node `i` (address of the family of `like`) from the
/// client: the status code and the body's `localEndpoints`.
fn health(lab: &Lab, i: u8, like: IpAddr) -> anyhow::Result<(u16, serde_json::Value)> {
    let (status, body) = lab.http_request("client1", node_addr(i, like), HEALTH, "/healthz")?;
    let json: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| anyhow::anyhow!("node{i}: not JSON ({e}): {body:?}"))?;
    assert_eq!(json["service"]["namespace"], "default", "{json}");
    assert_eq!(json["service"]["name"], "local", "{json}");
    Ok((status, json["localEndpoints"].clone()))
}

/// Wait until node `i` answers its health check with `status` on both families.
fn wait_health(lab: &Lab, i: u8, status: u16, ips: &[IpAddr]) -> anyhow::Result<()> {
    for ip in ips {
        wait_until(
            &format!("node{i} health check {status} over {}", family(*ip)),
            fixture::PROGRAMMED,
            || {
                Ok(match health(lab, i, *ip) {
                    Ok((s, n)) if s == status => Ok(n),
                    Ok((s, n)) => Err(format!("{s}, localEndpoints {n}")),
                    Err(e) => Err(e.to_string()),
                })
            },
        )?;
    }
    Ok(())
}

pub(crate) fn local_policy(dataplane: &str) -> anyhow::Result<()> {
    let lab = fixture::lab(&[("web-a", 1), ("web-b", 2)])?;
    let spec = format!("  externalTrafficPolicy: Local\n  healthCheckNodePort: {HEALTH}\n");
    lab.write_manifest(
        "local.yaml",
        &fixture::service("local", "LoadBalancer", None, "", &spec),
    )?;
    // web-b exists but is not an endpoint yet: node2 has none.
    endpoints(&lab, "local", &["web-a"])?;
    lab.start_controller()?;
    speakers(&lab, dataplane, &["node1", "node2"])?;
    let ips = lab.wait_service_ips("default", "local", Duration::from_secs(20))?;

    // node1 has the endpoint: only web-a answers, and (kernel path) sees the real client.
    route(&lab, "client1", &ips, 1)?;
    super::ipvs_matches_model(&lab, dataplane, &[1, 2])?;
    for ip in &ips {
        let seen = match dataplane {
            "nftables" | "ipvs" => host_addr(&lab, "client1", *ip)?,
            _ => pod_gateway(1, *ip),
        };
        for a in answers(&lab, "client1", *ip, ECHO, 6)? {
            assert_eq!(
                (a.pod.as_str(), a.client.ip()),
                ("web-a", seen),
                "{dataplane}: {a}"
            );
        }
    }
    // The health check: 200 where the endpoint is, 503 where it is not. node2's 503 also
    // says its data path has programmed the Service (it is served after programming).
    wait_health(&lab, 1, 200, &ips)?;
    wait_health(&lab, 2, 503, &ips)?;
    for ip in &ips {
        assert_eq!(health(&lab, 1, *ip)?, (200, 1.into()), "{dataplane}");
        assert_eq!(health(&lab, 2, *ip)?, (503, 0.into()), "{dataplane}");
    }
    // Traffic sent to node2 anyway is dropped, not forwarded to node1's pod.
    route(&lab, "client1", &ips, 2)?;
    for ip in &ips {
        assert!(
            fixture::refused(&lab, "client1", *ip, ECHO),
            "{dataplane} {ip} via node2 answered"
        );
    }

    // web-b becomes an endpoint: node2's health check turns to 200 and it serves web-b only.
    endpoints(&lab, "local", &["web-a", "web-b"])?;
    wait_health(&lab, 2, 200, &ips)?;
    super::ipvs_matches_model(&lab, dataplane, &[1, 2])?;
    for ip in &ips {
        let seen = match dataplane {
            "nftables" | "ipvs" => host_addr(&lab, "client1", *ip)?,
            _ => pod_gateway(2, *ip),
        };
        let got = answers(&lab, "client1", *ip, ECHO, 4)?;
        assert_eq!(
            tally(got.iter().map(|a| a.pod.as_str())).len(),
            1,
            "{got:?}"
        );
        assert_eq!(
            (got[0].pod.as_str(), got[0].client.ip()),
            ("web-b", seen),
            "{dataplane}"
        );
        assert_eq!(health(&lab, 2, *ip)?, (200, 1.into()), "{dataplane}");
    }
    lab.down()?;
    Ok(())
}

#[test]
fn nftables_local_policy_keeps_the_client_and_drops_without_a_local_endpoint() -> anyhow::Result<()>
{
    local_policy("nftables")
}

#[test]
fn userspace_local_policy_drops_without_a_local_endpoint() -> anyhow::Result<()> {
    local_policy("userspace")
}
