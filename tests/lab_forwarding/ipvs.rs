//! Every forwarding case with `--dataplane ipvs`, in the VM lab's stock kernel (the host's has
//! no IPVS): built only with the `vm-lab` feature, run by `tests/run.sh` through `tests/vm.sh`.

#[test]
fn ipvs_forwards_a_loadbalancer_ip_to_pods_on_every_node() -> anyhow::Result<()> {
    super::check_data_path("ipvs")
}
