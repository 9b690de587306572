#!/usr/bin/env bash
# Runs FerroLB's whole test suite on a fresh machine, as root. Installs what it needs first.
#
#   tests/run.sh            everything: format, lints, unit, property, integration tests, the
#                           IPVS suites in the VM lab (tests/vm.sh), the demo, the image and
#                           the demo run from it (tests/image.sh), a fuzz smoke run
#   tests/run.sh --quick    skip clippy and the fuzz smoke run
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

log() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/run.sh: run as root: the lab and data-path tests create network namespaces" >&2
  exit 1
fi
tests/install-deps.sh

# No incremental caches: a one-shot run never reuses them and they doubled the target directory.
export CARGO_INCREMENTAL=0

command -v cargo >/dev/null || { echo "tests/run.sh: cargo is not installed" >&2; exit 1; }

log "cargo fmt --check"
cargo fmt --all -- --check

if [ $quick -eq 0 ]; then
  log "cargo clippy (all targets, warnings are errors)"
  cargo clippy --workspace --all-targets --all-features -- -D warnings
fi

log "build"
df -h . | sed 's/^/   /'
cargo build --workspace --all-targets

log "tests"
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.txt
grep -q '^test result: ok' target/test-output.txt

log "the IPVS suites in the VM lab (a stock Debian kernel under QEMU: tests/vm.sh)"
# Built on the host with the vm-lab feature (the host kernel has no IPVS), run in one guest:
# the netlink suite, then the forwarding and layer 2 lab cases of the IPVS path (named ipvs_*).
vm_suite() {
  cargo test --features vm-lab --test "$1" --no-run --message-format=json 2>/dev/null \
    | grep "\"name\":\"$1\"" | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1
}
ipvs_kernel=$(vm_suite ipvs_kernel)
ipvs_forwarding=$(vm_suite lab_forwarding)
ipvs_layer2=$(vm_suite lab_layer2)
for suite in "$ipvs_kernel" "$ipvs_forwarding" "$ipvs_layer2"; do
  [ -x "$suite" ] || { echo "tests/run.sh: cannot build the IPVS suites" >&2; exit 1; }
done
tests/vm.sh --timeout 1800 -- sh -c \
  "$ipvs_kernel && $ipvs_forwarding --test-threads 2 ipvs_ && $ipvs_layer2 ipvs_"

log "controller check accepts the examples and rejects a bad config"
./target/debug/ferrolb-controller check examples/pools.yaml examples/services.yaml >/dev/null
./target/debug/ferrolb-controller check examples/metallb/migrated.yaml >/dev/null
./target/debug/ferrolb-controller check examples/lab/pools.yaml examples/lab/services.yaml examples/lab/gossip.yaml >/dev/null
if ./target/debug/ferrolb-controller check tests/data/bad-config.yaml >/dev/null 2>&1; then
  echo "check accepted tests/data/bad-config.yaml" >&2
  exit 1
fi

log "kustomize base and overlays (tests/overlays.sh)"
tests/overlays.sh

log "the demo, once through with a failover (examples/lab/demo.sh --check --failover, debug build)"
FERROLB_DEMO_PREBUILT=1 examples/lab/demo.sh --check --failover

log "the image (image/build.sh, buildah), and the demo with its controller and speakers"
tests/image.sh --check

if [ $quick -eq 0 ]; then
  log "fuzz smoke run (libFuzzer, 20 s per target)"
  fuzz/run-smoke.sh 20
fi

df -h . | sed 's/^/   /'
log "all tests passed"
