#!/usr/bin/env bash
# Build krew's own plugin-manifest validator, `validate-krew-manifest`, and krew itself
# (`kubectl-krew`), which the packaging tests (tests/packaging/test_plugin.py) run on the
# generated dist/krew/bind.yaml and archive (validate, then `kubectl krew install --manifest
# --archive`, which checks the sha256), from this wrapper module into a per-version cache
# directory outside the work tree, and print that directory as the last line of stdout. The
# tests need no krew on PATH. krew's source is on the Go module proxy, so it is built the way
# hack/dex/build.sh builds Dex.
#
#   KREW_BIN_DIR=/some/dir hack/krew/build.sh     # default: ~/.cache/kube-bind/krew/<version>
#
# A no-op when the binary is already there, so callers (`make krewvalidate`, CI) simply run it
# every time. Progress goes to stderr.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PROGRESS_PREFIX=krewvalidate
# shellcheck source=hack/progress.sh
. "$HERE/../progress.sh"
# shellcheck source=hack/gobuild.sh
. "$HERE/../gobuild.sh"

KREW_VERSION=$(sed -n 's#^[[:space:]]*sigs\.k8s\.io/krew \(v[0-9][^[:space:]]*\).*#\1#p' "$HERE/go.mod" | head -1)
[[ -n "$KREW_VERSION" ]] || die "cannot read the sigs.k8s.io/krew version from $HERE/go.mod"
OUT="${KREW_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-bind/krew/${KREW_VERSION}}"

exit_if_built "krew and its manifest validator" validate-krew-manifest kubectl-krew
go_setup "krew's manifest validator"

log "building kubectl-krew and validate-krew-manifest from krew ${KREW_VERSION} ($(go version | cut -d' ' -f3))"
log "  into $OUT, for the krew manifest check (tests/packaging). A one-time cost: under a"
log "  minute on 2 cores; later runs find the binary there and take no time."
log "[1/2] downloading Go modules (GOPROXY=$(go env GOPROXY))"
download_modules

make_build_dir
start=$SECONDS
log "[2/2] compiling kubectl-krew and validate-krew-manifest"
# krew's own Makefile sets its version this way; without it `kubectl krew version` says unknown.
with_heartbeat "compiling kubectl-krew" go build -trimpath \
  -ldflags "-s -w -X sigs.k8s.io/krew/internal/version.gitTag=${KREW_VERSION}" \
  -o "$TMP/kubectl-krew" sigs.k8s.io/krew/cmd/krew
with_heartbeat "compiling validate-krew-manifest" go build -trimpath -ldflags "-s -w" \
  -o "$TMP/validate-krew-manifest" sigs.k8s.io/krew/cmd/validate-krew-manifest
mkdir -p "$OUT"
mv -f "$TMP/kubectl-krew" "$TMP/validate-krew-manifest" "$OUT/"
log "built in $((SECONDS - start)) s in $OUT"
echo "$OUT"
