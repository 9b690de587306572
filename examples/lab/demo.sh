#!/usr/bin/env bash
# FerroLB's demo: a whole bare-metal cluster in network namespaces on this machine (3 nodes,
# a BIRD router, a client on the LAN and one behind the router, pods running echo servers),
# the example pools and Services (examples/lab/*.yaml), the controller and the speakers, and
# what a client really gets from each LoadBalancer IP.
#
#   examples/lab/demo.sh                  stays up with a live summary until Ctrl-C
#   examples/lab/demo.sh --check          runs through once; exit 0 only if every expected
#                                         answer arrived (CI runs this)
#   examples/lab/demo.sh --router frr     or gobgp: another BGP daemon in the router
#   examples/lab/demo.sh --failover       then kill the speaker announcing web's address and
#                                         show another node take over
#
# Run as root on a Debian machine: it installs the Debian packages it needs (without letting
# their services start), builds the binaries (release; FERROLB_DEMO_DEBUG=1 uses the debug
# build), and leaves no namespace, link or process behind when it ends.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: run as root: the lab creates network namespaces and veth links" >&2
  exit 1
fi

tests/install-deps.sh

command -v cargo >/dev/null || { echo "demo.sh: cargo is not installed (install Rust first, e.g. with rustup)" >&2; exit 1; }

if [ "${FERROLB_DEMO_PREBUILT:-0}" = 1 ]; then
  # tests/run.sh has built every target already; a bins-only build would resolve features
  # without the dev-dependencies and compile the workspace a second time.
  bin=target/debug/ferrolb-lab
  [ -x "$bin" ] || { echo "demo.sh: FERROLB_DEMO_PREBUILT=1 but $bin is not built" >&2; exit 1; }
elif [ "${FERROLB_DEMO_DEBUG:-0}" = 1 ]; then
  echo "== cargo build --workspace --bins"
  cargo build --workspace --bins
  bin=target/debug/ferrolb-lab
else
  echo "== cargo build --release --workspace --bins"
  cargo build --release --workspace --bins
  bin=target/release/ferrolb-lab
fi

exec "$bin" demo "$@"
