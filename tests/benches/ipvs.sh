#!/usr/bin/env bash
# IPVS against nftables in one stock kernel (the VM lab): builds the bench on the host and
# runs it in the guest. As root.   tests/benches/ipvs.sh [SERVICES [ENDPOINTS]]
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/install-deps.sh
bench=$(cargo bench -p ferrolb-e2e --features vm-lab --bench ipvs --no-run --message-format=json 2>/dev/null \
  | grep '"name":"ipvs"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$bench" ] || { echo "tests/benches/ipvs.sh: cannot build the bench" >&2; exit 1; }
exec tests/vm.sh --timeout 1800 -- "$bench" "$@"
