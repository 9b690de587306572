#!/usr/bin/env bash
# IPVS against nftables in one stock kernel (the VM lab): builds the benches on the host and
# runs them in one guest: programming (tests/benches/ipvs), then new TCP connections per
# second and throughput through each path (the forwarding bench's traffic part, with the
# paths direct, nftables and ipvs). As root.   tests/benches/ipvs.sh [SERVICES [ENDPOINTS]]
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/install-deps.sh
bench=$(cargo bench -p ferrolb-e2e --features vm-lab --bench ipvs --no-run --message-format=json 2>/dev/null \
  | grep '"name":"ipvs"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$bench" ] || { echo "tests/benches/ipvs.sh: cannot build the bench" >&2; exit 1; }
traffic=$(cargo bench -p ferrolb-e2e --bench forwarding --no-run --message-format=json 2>/dev/null \
  | grep '"name":"forwarding"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$traffic" ] || { echo "tests/benches/ipvs.sh: cannot build the forwarding bench" >&2; exit 1; }
# The programs that run in lab namespaces must exist (the lab's echo server).
cargo build -p ferrolb-e2e --bins >&2
args=$(printf ' %q' "$@")
exec tests/vm.sh --timeout 2400 -- sh -c "$bench$args && FERROLB_BENCH_ONLY=traffic FERROLB_BENCH_PATHS=direct,nftables,ipvs $traffic"
