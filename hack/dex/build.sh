#!/usr/bin/env bash
# Build the `dex` binary the OIDC tests use (tests/harness/oidc.py) from this wrapper module into
# a per-version cache directory outside the work tree, and print that directory as the last line
# of stdout. Dex publishes no binaries on the registries this project can reach, but its source is
# on the Go module proxy, so it is built the way hack/helm/build.sh builds helm.
#
#   DEX_BIN_DIR=/some/dir hack/dex/build.sh     # default: ~/.cache/kube-bind/dex/<version>
#
# A no-op when the binary is already there, so callers (the pytest fixture, `make dexbin`, CI)
# simply run it every time. Progress goes to stderr: what is built, where, a line per stage, and
# a heartbeat while the compiler is silent.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PROGRESS_PREFIX=dexbin
# shellcheck source=hack/progress.sh
. "$HERE/../progress.sh"
# shellcheck source=hack/gobuild.sh
. "$HERE/../gobuild.sh"

# The proxy knows Dex only by pseudo-version (its tags lack the module path's /v2), so the release
# it is gets named here; the cache key is the pseudo-version from go.mod, which cannot drift.
DEX_RELEASE=v2.45.1
DEX_MODULE_VERSION=$(sed -n 's#^[[:space:]]*github\.com/dexidp/dex \(v[0-9][^[:space:]]*\).*#\1#p' "$HERE/go.mod" | head -1)
[[ -n "$DEX_MODULE_VERSION" ]] || die "cannot read the github.com/dexidp/dex version from $HERE/go.mod"
OUT="${DEX_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-bind/dex/${DEX_MODULE_VERSION}}"

exit_if_built "Dex for the OIDC tests" dex
go_setup Dex

log "building Dex ${DEX_RELEASE} (${DEX_MODULE_VERSION}, $(go version | cut -d' ' -f3)) from source"
log "  into $OUT,"
log "  for the tests that log in through a real OIDC provider (hack/dex/README.md). A one-time"
log "  cost: a few minutes on 2 cores the first time; later runs find the binary there and take"
log "  no time."
log "[1/2] downloading Go modules (GOPROXY=$(go env GOPROXY))"
download_modules

make_build_dir
start=$SECONDS
log "[2/2] compiling dex"
# Dex's own Makefile sets main.version; without it `dex version` says DEV.
with_heartbeat "compiling dex" go build -trimpath -ldflags "-s -w -X main.version=${DEX_RELEASE}" \
  -o "$TMP/dex" github.com/dexidp/dex/cmd/dex
mkdir -p "$OUT"
mv -f "$TMP/dex" "$OUT/dex"
log "built in $((SECONDS - start)) s: $("$OUT/dex" version | sed -n 1p) in $OUT"
echo "$OUT"
