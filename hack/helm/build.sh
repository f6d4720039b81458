#!/usr/bin/env bash
# Build the `helm` binary the chart tests use (tests/chart) from this wrapper module into a
# per-version cache directory outside the work tree, and print that directory as the last line
# of stdout. Helm is not on the package registries this project can reach, but its source is on
# the Go module proxy, so it is built the way hack/k8s/build.sh builds the API servers.
#
#   HELM_BIN_DIR=/some/dir hack/helm/build.sh     # default: ~/.cache/kube-bind/helm/<version>
#
# A no-op when the binary is already there, so callers (the pytest fixture, `make helm`, CI)
# simply run it every time. Progress goes to stderr: what is built, where, a line per stage, and
# a heartbeat while the compiler is silent.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PROGRESS_PREFIX=helm
# shellcheck source=hack/progress.sh
. "$HERE/../progress.sh"
# shellcheck source=hack/gobuild.sh
. "$HERE/../gobuild.sh"

# Versions come from go.mod, so the cache key can never drift from what is built.
modver() { sed -n "s#^[[:space:]]*$1 \(v[0-9][^[:space:]]*\).*#\1#p" "$HERE/go.mod" | head -1; }
HELM_VERSION=$(modver 'helm\.sh/helm/v3')
CLIENT_GO=$(modver 'k8s\.io/client-go')
[[ -n "$HELM_VERSION" && -n "$CLIENT_GO" ]] || die "cannot read helm/client-go versions from $HERE/go.mod"
OUT="${HELM_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-bind/helm/${HELM_VERSION}}"

exit_if_built "helm for the chart tests" helm
go_setup helm

log "building helm ${HELM_VERSION} ($(go version | cut -d' ' -f3)) from source into $OUT,"
log "  for the chart tests (hack/helm/README.md). A one-time cost: a few minutes on 2 cores the"
log "  first time; later runs find the binary there and take no time."
log "[1/2] downloading Go modules (GOPROXY=$(go env GOPROXY))"
download_modules

# The same -X flags as helm's own Makefile: without them `helm version` says v3.22+unreleased
# and the default .Capabilities.KubeVersion is not the one its client-go was released with.
k8s_minor="${CLIENT_GO#v0.}"; k8s_minor="${k8s_minor%%.*}"
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
LDFLAGS+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  LDFLAGS+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=${k8s_minor}"
done

make_build_dir
start=$SECONDS
log "[2/2] compiling helm"
with_heartbeat "compiling helm" go build -trimpath -ldflags "$LDFLAGS" -o "$TMP/helm" helm.sh/helm/v3/cmd/helm
mkdir -p "$OUT"
mv -f "$TMP/helm" "$OUT/helm"
log "built in $((SECONDS - start)) s: $("$OUT/helm" version --short) in $OUT"
echo "$OUT"
