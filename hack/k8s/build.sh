#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager, etcd and kubectl from this wrapper module
# into a per-version cache directory outside the work tree (binaries are never
# committed), and print that directory as the last line of stdout.
#
#   K8SBIN_DIR=/some/dir hack/k8s/build.sh     # default: ~/.cache/kube-bind/k8sbin/<version>
#
# A no-op when all four binaries are already there, so callers (pytest fixture,
# make k8sbin, CI) simply run it every time. Progress goes to stderr: what is built, where,
# one line per stage and per binary, and a heartbeat while the compiler is silent.
# A cold build takes a while on 2 cores (see hack/k8s/README.md for measured figures).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# kube-apiserver first: it compiles most of the shared module graph, the others reuse it.
BINARIES=(kube-apiserver kube-controller-manager kubectl etcd)
PROGRESS_PREFIX=k8sbin
# shellcheck source=hack/progress.sh
. "$HERE/../progress.sh"
# shellcheck source=hack/gobuild.sh
. "$HERE/../gobuild.sh"

# The version comes from go.mod, so the cache key can never drift from what is built.
K8S_VERSION=$(sed -n 's#^[[:space:]]*\(require[[:space:]]\+\)\?k8s\.io/kubernetes \(v[0-9][^[:space:]]*\).*#\2#p' "$HERE/go.mod" | head -1)
[[ -n "$K8S_VERSION" ]] || die "cannot read the k8s.io/kubernetes version from $HERE/go.mod"
OUT="${K8SBIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-bind/k8sbin/${K8S_VERSION}}"

exit_if_built "real API servers and kubectl for the tests" "${BINARIES[@]}"
go_setup "the test clusters' binaries"

log "building ${BINARIES[*]} (Kubernetes ${K8S_VERSION}, $(go version | cut -d' ' -f3)) from"
log "  source into $OUT, for the tests that run real API servers (hack/k8s/README.md)."
log "  A one-time cost: about 10 minutes on 2 cores the first time (under a minute with a warm Go"
log "  build cache); later runs find the binaries there and take no time."
log "[1/3] downloading Go modules (GOPROXY=$(go env GOPROXY), GOMODCACHE=$(go env GOMODCACHE))"
download_modules

# Without the -X flags /version reports v0.0.0-master; clients that parse it would see nonsense.
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
V=k8s.io/component-base/version
LDFLAGS="-s -w -X $V.gitVersion=${K8S_VERSION} -X $V.gitMajor=1 -X $V.gitMinor=${minor} -X $V.gitTreeState=clean"

make_build_dir
start=$SECONDS
log "[2/3] compiling, one binary after the other (the first is the longest: it compiles most of"
log "  what the others share)"
n=0
for b in "${BINARIES[@]}"; do
  n=$((n + 1))
  log "  compiling $b ($n of ${#BINARIES[@]})"
  with_heartbeat "compiling $b" go build -trimpath -ldflags "$LDFLAGS" -o "$TMP/$b" "./cmd/$b"
done
log "[3/3] installing into $OUT"
mkdir -p "$OUT"
for b in "${BINARIES[@]}"; do mv -f "$TMP/$b" "$OUT/$b"; done
log "built in $((SECONDS - start)) s: $(du -sh "$OUT" | cut -f1) in $OUT"
{ "$OUT/kube-apiserver" --version; "$OUT/etcd" --version | sed -n 1p; } >&2
echo "$OUT"
