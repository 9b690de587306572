//! The kernel IPVS data path (`--dataplane ipvs`), under construction: so far the generic
//! netlink socket that programs and reads the kernel's virtual server table
//! ([`socket::IpvsSocket`]), proven against a stock kernel in the VM lab
//! (`tests/ipvs_kernel.rs`, run by `tests/vm.sh`).

pub mod socket;
