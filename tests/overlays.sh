#!/usr/bin/env bash
# Renders the kustomize base (config/Kustomization) and every overlay in overlays/ with a real
# kustomize (kubectl's built-in one) and checks: the base holds the objects of
# config/install.yaml, field for field; each overlay changes the speaker DaemonSet exactly as it
# means to and nothing else; an `images` entry on top of an overlay retags both workloads.
# Run as root on a fresh Debian machine.
#
#   tests/overlays.sh                          the kubectl on PATH (Debian's if there is none)
#   KUBECTL=/path/to/kubectl tests/overlays.sh another kubectl (another kustomize version)
set -euo pipefail
cd "$(dirname "$0")/.."

# Belongs in tests/install-deps.sh. Debian's kubernetes-client ships kubectl 1.20, whose
# built-in kustomize (2.0) is the oldest the overlays are written for; python3-yaml reads the
# renders. A kubectl already there (a newer one) is kept: kubernetes-client would also clash
# with another package's /usr/bin/kubectl.
# A python3 that can import yaml: the one on PATH, else Debian's (the PATH one may be another
# installation, which Debian's python3-yaml does not reach).
yaml_python() {
  local py
  for py in python3 /usr/bin/python3; do
    if "$py" -c 'import yaml' 2>/dev/null; then echo "$py"; return 0; fi
  done
  return 1
}
install_overlay_test_deps() {
  local missing=()
  [ -n "${KUBECTL:-}" ] || command -v kubectl >/dev/null || missing+=(kubernetes-client)
  yaml_python >/dev/null || missing+=(python3 python3-yaml)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
install_overlay_test_deps

kubectl=${KUBECTL:-kubectl}
if ! "$kubectl" kustomize --help >/dev/null 2>&1; then
  echo "tests/overlays.sh: '$kubectl kustomize' does not run: install kubernetes-client" >&2
  exit 1
fi
python=$(yaml_python) || { echo "tests/overlays.sh: no python3 can import yaml (python3-yaml)" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
render() { # DIR NAME: the render of DIR in $out/NAME.yaml, or the error and a failed run
  if ! "$kubectl" kustomize "$1" >"$out/$2.yaml" 2>"$out/$2.err"; then
    echo "FAIL: $kubectl kustomize $1:" >&2
    cat "$out/$2.err" >&2
    exit 1
  fi
}

"$kubectl" version --client 2>/dev/null | head -2 | sed 's/^/   /'
render config base
overlays=()
for dir in overlays/*/; do
  name=$(basename "$dir")
  render "$dir" "$name"
  overlays+=("$name")
done
# One more level, as an operator would add for their registry: the images entry must reach
# both workloads through an overlay.
mkdir "$out/retag"
cat >"$out/retag/kustomization.yaml" <<EOF
bases: [$(realpath --relative-to="$out/retag" overlays/bgp-only)]
images: [{name: ghcr.io/ferrolb/ferrolb, newName: registry.example/ferrolb, newTag: test}]
EOF
render "$out/retag" retag

"$python" - "$out" "${overlays[@]}" <<'EOF'
import copy, sys, yaml

out, overlays = sys.argv[1], sys.argv[2:]
failed, passed = [], 0

def load(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    objs = {}
    for d in docs:
        key = (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
        assert key not in objs, f"{path}: {key} twice"
        objs[key] = d
    return objs

def diffs(a, b, path=""):
    """Where two parsed documents differ, as paths."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in sorted(set(a) | set(b), key=str)
                for p in diffs(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, (x, y) in enumerate(zip(a, b)) for p in diffs(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]

def check(name, want, got):
    global passed
    problems = []
    if set(want) != set(got):
        problems.append(f"missing {sorted(set(want) - set(got))}, extra {sorted(set(got) - set(want))}")
    for key in sorted(set(want) & set(got)):
        problems += [f"{key}{p}" for p in diffs(want[key], got[key])]
    if problems:
        failed.append(name)
        print(f"FAIL: {name}:\n  " + "\n  ".join(problems[:20]))
    else:
        passed += 1
        print(f"ok: {name}")

base = load(f"{out}/base.yaml")
check("config renders the objects of config/install.yaml", load("config/install.yaml"), base)

SPEAKER = ("DaemonSet", "ferrolb-system", "ferrolb-speaker")

def speaker(objs):
    c = objs[SPEAKER]["spec"]["template"]["spec"]["containers"][0]
    return c, c["securityContext"]["capabilities"]

def without(caps, cap):
    assert cap in caps, f"the base speaker has no {cap}"
    return [c for c in caps if c != cap]

def dataplane_none(c, caps):
    assert c["args"][0] == "--dataplane=auto", c["args"]
    c["args"][0] = "--dataplane=none"

# What each overlay means to change in the speaker, applied to the base render.
INTENDED = {
    "layer2-only": lambda c, caps: (c["args"].append("--bgp=false"),
                                    caps.update(add=without(caps["add"], "NET_BIND_SERVICE"))),
    "bgp-only": lambda c, caps: (c["args"].append("--layer2=false"),
                                 caps.update(add=without(caps["add"], "NET_RAW"))),
    "dataplane-none": dataplane_none,
}
if sorted(overlays) != sorted(INTENDED):
    failed.append("overlay list")
    print(f"FAIL: overlays/ holds {sorted(overlays)}, this test knows {sorted(INTENDED)}")
for name in sorted(set(overlays) & set(INTENDED)):
    want = copy.deepcopy(base)
    INTENDED[name](*speaker(want))
    check(f"overlays/{name} changes only the speaker's {speaker(want)[0]['args']}, "
          f"capabilities {speaker(want)[1]['add']}", want, load(f"{out}/{name}.yaml"))

want = copy.deepcopy(base)
INTENDED["bgp-only"](*speaker(want))
for key in [SPEAKER, ("Deployment", "ferrolb-system", "ferrolb-controller")]:
    want[key]["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/ferrolb:test"
check("an images entry over overlays/bgp-only retags both workloads", want, load(f"{out}/retag.yaml"))

print(f"overlays: {passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
EOF
