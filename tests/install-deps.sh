#!/usr/bin/env bash
# Installs the Debian packages FerroLB's tests, lab and demo use, when missing. Run as root.
#
# Installing bird2, frr or gobgpd would start their daemons in the root network namespace,
# which FerroLB never touches: service starts are forbidden while installing (policy-rc.d
# exit 101), and only a guard this script created is removed afterwards.
set -euo pipefail

# qemu-system-x86, busybox-static (virtme-ng's initramfs), kmod (depmod) and ipvsadm: the VM lab
# (tests/vm.sh), where a stock kernel with IPVS runs. buildah: the image (image/build.sh; FROM
# scratch and COPY only, so no OCI runtime is needed and its recommends are not installed).
# prometheus: its promtool unit-tests the alerting rules (the server itself never starts).
packages=(iproute2 nftables conntrack bird2 frr gobgpd arping ndisc6 tcpdump iperf3 keepalived haproxy
  qemu-system-x86 busybox-static kmod ipvsadm strace buildah prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: packages ${missing[*]} are missing and only root can install them" >&2
  exit 1
fi
echo "== installing ${missing[*]}"
guard=/usr/sbin/policy-rc.d
created_guard=0
if [ ! -e "$guard" ]; then
  printf '#!/bin/sh\n# written by FerroLB tests/install-deps.sh while installing packages\nexit 101\n' >"$guard"
  chmod +x "$guard"
  created_guard=1
fi
cleanup_guard() { if [ "$created_guard" = 1 ]; then rm -f "$guard"; fi; }
trap cleanup_guard EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
