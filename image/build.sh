#!/usr/bin/env bash
# Builds FerroLB's image offline, from a clean clone, as root:
#
#   image/build.sh [TAG]   # default tag ghcr.io/ferrolb/ferrolb:<version> (what config/install.yaml
#                          # runs); prints the image id
#
# 1. release binaries (ferrolb-controller, ferrolb-speaker);
# 2. the root filesystem in target/image/rootfs: the binaries, `nft` and `conntrack`, and every
#    shared library they (and the binaries) load, each taken from its Debian package
#    (`apt-get download`, `dpkg-deb -x`: the packages the host's own copies come from, never
#    the host's files), plus /etc/passwd and /etc/group for root and the nonroot user 65532;
# 3. `buildah bud` on image/Containerfile (FROM scratch: nothing is pulled), with vfs storage
#    (no overlay needed), labelled with the version and the git revision; the image is also
#    written as an OCI archive, target/image/ferrolb.oci.tar.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-}
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# The name the install manifest (config/install.yaml) runs.
tag=${tag:-ghcr.io/ferrolb/ferrolb:$version}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)

command -v buildah >/dev/null || tests/install-deps.sh >&2
for tool in nft conntrack; do
  command -v "$tool" >/dev/null || { echo "image/build.sh: $tool is not installed (tests/install-deps.sh)" >&2; exit 1; }
done

cargo build --release --locked -p ferrolb-controller -p ferrolb-speaker --bins >&2

out=target/image
rm -rf "$out/rootfs" "$out/debs" "$out/unpacked"
mkdir -p "$out/rootfs/usr/local/bin" "$out/rootfs/usr/sbin" "$out/rootfs/etc" \
  "$out/rootfs/dev" "$out/rootfs/tmp" "$out/rootfs/run" "$out/rootfs/proc" "$out/rootfs/sys" "$out/debs" "$out/unpacked"
chmod 1777 "$out/rootfs/tmp"
install -m 0755 target/release/ferrolb-controller target/release/ferrolb-speaker "$out/rootfs/usr/local/bin/"
# Without the debug info the release profile keeps for profiling (symbols stay, for backtraces).
strip --strip-debug "$out"/rootfs/usr/local/bin/ferrolb-*

tools=("$(command -v nft)" "$(command -v conntrack)")
# Every file wanted from a package: the tools themselves and every library ldd resolves for
# them and for the binaries, the dynamic loader included.
files=$( (printf '%s\n' "${tools[@]}"
  for bin in "${tools[@]}" target/release/ferrolb-controller target/release/ferrolb-speaker; do
    ldd "$bin" | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}'
  done) | xargs -n1 readlink -f | sort -u)
# The Debian package of each file (dpkg knows the usrmerged paths under their /lib names).
packages=$(for f in $files; do
  dpkg -S "$f" 2>/dev/null || dpkg -S "${f#/usr}" 2>/dev/null || { echo "image/build.sh: no package owns $f" >&2; exit 1; }
done | cut -d: -f1 | sed 's/,.*//' | sort -u)
(cd "$out/debs" && apt-get download $packages 2>&1 | grep -v "^W: Download is performed unsandboxed" >&2 || true)
for deb in "$out"/debs/*.deb; do dpkg-deb -x "$deb" "$out/unpacked"; done
for f in $files; do
  src="$out/unpacked$f"
  [ -e "$src" ] || src="$out/unpacked${f#/usr}"
  [ -e "$src" ] || { echo "image/build.sh: $f is not in its package's files" >&2; exit 1; }
  dest="$out/rootfs$f"
  mkdir -p "$(dirname "$dest")"
  cp -a "$src" "$dest"
done
# The names the loader and the binaries ask for: every symlink ldd followed, as in Debian.
for bin in "${tools[@]}" target/release/ferrolb-controller target/release/ferrolb-speaker; do
  ldd "$bin" | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}'
done | sort -u | while read -r link; do
  [ -L "$link" ] || continue
  mkdir -p "$out/rootfs$(dirname "$link")"
  ln -sfn "$(readlink -f "$link")" "$out/rootfs$link"
done
for tool in "${tools[@]}"; do
  [ -e "$out/rootfs$tool" ] || ln -sfn "$(readlink -f "$tool")" "$out/rootfs$tool"
done
# usrmerge: /lib, /lib64, /sbin as links into /usr, as on Debian 12.
for d in lib lib64 sbin bin; do
  if [ -d "$out/rootfs/$d" ] && [ ! -L "$out/rootfs/$d" ]; then
    mkdir -p "$out/rootfs/usr/$d"; cp -a "$out/rootfs/$d/." "$out/rootfs/usr/$d/"; rm -rf "$out/rootfs/$d"
  fi
  [ -e "$out/rootfs/usr/$d" ] && ln -sfn "usr/$d" "$out/rootfs/$d"
done
printf 'root:x:0:0:root:/:/nonexistent\nnonroot:x:65532:65532:nonroot:/:/nonexistent\n' > "$out/rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$out/rootfs/etc/group"
cp image/Containerfile "$out/Containerfile"

export STORAGE_DRIVER=vfs
buildah --storage-driver vfs bud --quiet --layers=false \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  -f "$out/Containerfile" -t "$tag" "$out" >&2
rm -f "$out/ferrolb.oci.tar"
buildah --storage-driver vfs push --quiet "$tag" "oci-archive:$out/ferrolb.oci.tar:$tag" >&2
buildah --storage-driver vfs images --quiet --no-trunc "$tag" | head -1
