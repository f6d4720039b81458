#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager, etcd and kubectl from this wrapper module
# into a per-version cache directory outside the work tree (binaries are never
# committed), and print that directory as the last line of stdout.
#
#   K8SBIN_DIR=/some/dir hack/k8s/build.sh     # default: ~/.cache/kube-bind/k8sbin/<version>
#
# A no-op when all four binaries are already there, so callers (pytest fixture,
# make k8sbin, CI) simply run it every time. Progress goes to stderr.
# A cold build takes a while on 2 cores (see hack/k8s/README.md for measured figures).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BINARIES=(kube-apiserver kube-controller-manager etcd kubectl)
log() { echo "k8sbin: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The version comes from go.mod, so the cache key can never drift from what is built.
K8S_VERSION=$(sed -n 's#^[[:space:]]*\(require[[:space:]]\+\)\?k8s\.io/kubernetes \(v[0-9][^[:space:]]*\).*#\2#p' "$HERE/go.mod" | head -1)
[[ -n "$K8S_VERSION" ]] || die "cannot read the k8s.io/kubernetes version from $HERE/go.mod"
OUT="${K8SBIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-bind/k8sbin/${K8S_VERSION}}"

have_all() { local b; for b in "${BINARIES[@]}"; do [[ -x "$OUT/$b" ]] || return 1; done; }
if have_all; then echo "$OUT"; exit 0; fi

command -v go >/dev/null 2>&1 || die "'go' is not on PATH; install Go >= $(sed -n 's/^go //p' "$HERE/go.mod") to build the test clusters' binaries"
# Never let go fetch a different toolchain; upstream builds these binaries static.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
cd "$HERE"

log "building k8s.io/kubernetes ${K8S_VERSION} binaries into $OUT ($(go version | cut -d' ' -f3))"
log "downloading modules (GOPROXY=$(go env GOPROXY), GOMODCACHE=$(go env GOMODCACHE))"
# go.sum is committed, so with a warm module cache this needs no network at all.
DLLOG=$(mktemp)
if ! go mod download 2>"$DLLOG"; then
  tail -n 20 "$DLLOG" >&2; rm -f "$DLLOG"
  die "could not download the Go modules; is the Go module proxy ($(go env GOPROXY)) reachable?"
fi
rm -f "$DLLOG"

# Without the -X flags /version reports v0.0.0-master; clients that parse it would see nonsense.
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
V=k8s.io/component-base/version
LDFLAGS="-s -w -X $V.gitVersion=${K8S_VERSION} -X $V.gitMajor=1 -X $V.gitMinor=${minor} -X $V.gitTreeState=clean"

# Build into a temporary directory beside OUT and move the binaries in at the end,
# so an interrupted build never leaves a half-written binary that looks complete.
mkdir -p "$(dirname "$OUT")"
TMP=$(mktemp -d "$(dirname "$OUT")/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
start=$SECONDS
log "compiling ${BINARIES[*]} (cold: about 10 min on 2 cores; warm cache: about a minute)"
go build -trimpath -ldflags "$LDFLAGS" -o "$TMP/" ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/etcd ./cmd/kubectl
mkdir -p "$OUT"
for b in "${BINARIES[@]}"; do mv -f "$TMP/$b" "$OUT/$b"; done
log "built in $((SECONDS - start))s: $(du -sh "$OUT" | cut -f1) in $OUT"
{ "$OUT/kube-apiserver" --version; "$OUT/etcd" --version | head -1; } >&2
echo "$OUT"
