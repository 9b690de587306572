#!/usr/bin/env bash
# The image, proven in the lab: builds it (image/build.sh), checks its metadata, mounts the
# built image's root filesystem (buildah, vfs storage) and runs the lab demo with the
# controller and every speaker started from it: each runs chrooted into the image's root,
# in its lab host's network namespace, with the lab's /tmp (manifests, status, logs) bound in.
# Only the lab's own tools (the router, the echo servers, ferrolb-lab) come from the host.
# As root; tests/run.sh runs it.   tests/image.sh [DEMO_ARGS...]   (default: --check)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "tests/image.sh: run as root" >&2; exit 1; }

image=$(image/build.sh)
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
b() { buildah --storage-driver vfs "$@"; }

fail() { echo "tests/image.sh: $*" >&2; exit 1; }
inspect=$(b inspect --type image "$image")
label() { python3 -c 'import json,sys; print(json.load(sys.stdin)["OCIv1"]["config"]["Labels"].get(sys.argv[1], ""))' "$1" <<<"$inspect"; }
[ "$(label org.opencontainers.image.version)" = "$version" ] || fail "version label is not $version"
[ "$(label org.opencontainers.image.revision)" = "$revision" ] || fail "revision label is not $revision"
[ -n "$(label org.opencontainers.image.source)" ] || fail "no source label"
user=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["OCIv1"]["config"].get("User", ""))' <<<"$inspect")
[ "$user" = "65532:65532" ] || fail "the image's user is '$user', not the nonroot 65532:65532"
echo "== image $image: version $version, revision $revision, user $user"

ctr=$(b from --quiet "$image")
cleanup() { b umount "$ctr" >/dev/null 2>&1 || true; b rm "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT
root=$(b mount "$ctr")
# Nothing but what the image was built from: the binaries, nft, conntrack, their libraries.
for f in usr/local/bin/ferrolb-controller usr/local/bin/ferrolb-speaker usr/sbin/nft usr/sbin/conntrack; do
  [ -x "$root/$f" ] || fail "$f is missing from the image"
done
[ ! -e "$root/bin/sh" ] && [ ! -e "$root/usr/bin/sh" ] || fail "the image has a shell"

bin=target/image/bin
rm -rf "$bin"; mkdir -p "$bin"
# The environment a container runtime gives the image's processes (its ENV).
image_path=$(python3 -c 'import json,sys; env=json.load(sys.stdin)["OCIv1"]["config"].get("Env", []); print(next(e[5:] for e in env if e.startswith("PATH=")))' <<<"$inspect")
for name in ferrolb-controller ferrolb-speaker; do
  cat > "$bin/$name" <<WRAP
#!/bin/sh
# $name from the image's root filesystem ($root), in the caller's network namespace.
exec unshare --mount --propagation slave sh -c '
  root=\$1; shift
  for d in dev tmp run proc sys; do mount --rbind "/\$d" "\$root/\$d"; done
  PATH=$image_path exec chroot "\$root" /usr/local/bin/$name "\$@"' sh "$root" "\$@"
WRAP
  chmod +x "$bin/$name"
done
# A container runtime gives every container /dev (the speaker's child processes get /dev/null),
# /proc and /sys; the lab's /tmp holds its manifests, status and logs.
# The lab's own tools stay the workspace's.
cargo build -p ferrolb-e2e --bins >&2
for tool in ferrolb-lab ferrolb-lab-echo; do ln -sfn "$PWD/target/debug/$tool" "$bin/$tool"; done

echo "== the demo with the controller and the speakers from the image"
[ $# -gt 0 ] || set -- --check
FERROLB_BIN_DIR=$PWD/$bin target/debug/ferrolb-lab demo "$@"
