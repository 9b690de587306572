#!/usr/bin/env bash
# Runs a command inside a stock Debian kernel booted in a VM (QEMU under TCG, through
# virtme-ng), for what the host kernel lacks: IPVS. The guest shares the host's root
# filesystem read-only (writable overlays on /tmp, /var, /etc, ...), so the workspace's
# binaries and every Debian tool run unchanged inside; the repository is the working directory.
#
#   tests/vm.sh [--timeout SECS] [--] COMMAND [ARG...]
#   tests/vm.sh -- cargo test --test ipvs_kernel          # e.g.
#   tests/vm.sh -- ipvsadm -Ln
#
# The kernel (the version Debian's linux-image-amd64 depends on) is fetched once with
# `apt-get download`, unpacked with `dpkg-deb -x` into target/vm (FERROLB_VM_CACHE) and never
# installed on the host. A guest that runs past the deadline (default 1200 s) is killed.
# The command's output and exit status reach the caller; the guest's console log is kept in
# <cache>/guest.log and its tail printed when the command fails. KVM hangs on these machines,
# so the guest is emulated (TCG) unless FERROLB_VM_KVM=1.
set -euo pipefail
cd "$(dirname "$0")/.."

timeout_s=1200
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout_s="$2"; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
if [ $# -eq 0 ]; then
  echo "usage: tests/vm.sh [--timeout SECS] [--] COMMAND [ARG...]" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/vm.sh: run as root (the guest runs the lab, which needs root)" >&2
  exit 1
fi

tests/install-deps.sh
# virtme-ng comes from PyPI (Debian 12 has none); pinned so a new release cannot break CI.
if ! command -v vng >/dev/null; then
  pip install --quiet 'virtme-ng==1.42' >&2
  hash -r
fi
command -v vng >/dev/null || { echo "tests/vm.sh: vng (virtme-ng) is not on PATH after pip install" >&2; exit 1; }

cache=${FERROLB_VM_CACHE:-$PWD/target/vm}
mkdir -p "$cache"
# The guest does not see /var/tmp: the cache must live elsewhere.
case "$cache" in /var/tmp/*) echo "tests/vm.sh: FERROLB_VM_CACHE must not be under /var/tmp" >&2; exit 1 ;; esac

package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$package" ] || { echo "tests/vm.sh: cannot tell which kernel linux-image-amd64 depends on" >&2; exit 1; }
version=${package#linux-image-}
kernel="$cache/root/boot/vmlinuz-$version"
if [ ! -e "$kernel" ] || [ ! -e "$cache/root/lib/modules/$version/modules.dep" ]; then
  echo "== tests/vm.sh: fetching $package (unpacked into $cache, not installed)" >&2
  rm -rf "$cache/root" "$cache"/*.deb
  # apt downloads as _apt where it can write; the cache is root's, which only costs a warning.
  (cd "$cache" && apt-get download "$package" 2>&1 | grep -v "^W: Download is performed unsandboxed" >&2 || true)
  deb=$(ls "$cache"/linux-image-*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || { echo "tests/vm.sh: apt-get download $package failed" >&2; exit 1; }
  dpkg-deb -x "$deb" "$cache/root"
  depmod -b "$cache/root" "$version"
  rm -f "$deb"
fi

accel=(--disable-kvm)
[ "${FERROLB_VM_KVM:-0}" = 1 ] && accel=()

# The command runs through a tiny script so its arguments survive vng's --exec string. Its
# output and exit status go to a directory shared read-write with the host: the guest's script
# channel needs udev for its virtio-serial ports, which this machine does not have.
run="$cache/run.$$"
rm -rf "$run"
mkdir -p "$run"
guest=""
follow=""
# The guest (vng and its QEMU) runs in a process group of its own, killed whole on the way out.
cleanup() {
  [ -n "$guest" ] && kill -KILL -- "-$guest" 2>/dev/null || true
  [ -n "$follow" ] && kill "$follow" 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
script="$run/command.sh"
{
  echo '#!/bin/sh'
  echo "cd '$PWD' || exit 97"
  echo 'export PATH="$PATH:/usr/sbin:/sbin"'
  printf '('
  printf ' %q' "$@"
  printf ' ) >%q 2>&1 </dev/null\n' "$run/output"
  printf 'echo $? >%q\n' "$run/status"
} >"$script"
chmod +x "$script"
: >"$run/output"

log="$cache/guest.log"
echo "== tests/vm.sh: booting $version (TCG, 2 CPUs, 3 GiB), deadline ${timeout_s}s: $*" >&2
start=$(date +%s)
tail -n +1 -F "$run/output" 2>/dev/null &
follow=$!
# --verbose: the guest's console (the kernel's messages) goes to the log.
setsid vng --run "$kernel" "${accel[@]}" --force-9p --verbose --memory 3G --cpus 2 \
  --rwdir="$run" --exec "$script" >"$log" 2>&1 &
guest=$!
vm=0
while kill -0 "$guest" 2>/dev/null; do
  if [ $(( $(date +%s) - start )) -ge "$timeout_s" ]; then
    kill -TERM -- "-$guest" 2>/dev/null || true
    sleep 5
    kill -KILL -- "-$guest" 2>/dev/null || true
    vm=124
    break
  fi
  sleep 1
done
if [ $vm -eq 0 ]; then
  set +e
  wait "$guest"
  vm=$?
  set -e
fi
guest=""
sleep 0.5
kill "$follow" 2>/dev/null || true
elapsed=$(( $(date +%s) - start ))
if [ -s "$run/status" ]; then
  status=$(cat "$run/status")
  echo "== tests/vm.sh: the command ended with status $status; guest up ${elapsed}s" >&2
elif [ $vm -eq 124 ]; then
  status=124
  echo "tests/vm.sh: the guest ran past ${timeout_s}s and was killed; the end of its log ($log):" >&2
  tail -n 60 "$log" >&2
else
  status=1
  echo "tests/vm.sh: the guest ended (status $vm) without the command's status; the end of its log ($log):" >&2
  tail -n 60 "$log" >&2
fi
exit "$status"
