# The steps the Go wrapper-module builds share (hack/k8s/build.sh, hack/helm/build.sh), sourced by
# both after hack/progress.sh. The caller sets HERE (its module's directory) and OUT (the
# per-version cache directory it builds into).

# exit_if_built WHAT BINARY...: when every BINARY is in OUT already, say so, print OUT, and exit.
exit_if_built() {
  local what=$1 b
  shift
  for b in "$@"; do [[ -x "$OUT/$b" ]] || return 0; done
  log "$what: cached in $OUT"
  echo "$OUT"
  exit 0
}

# go_setup WHAT: go must be on PATH (WHAT says what it is needed for); then work in HERE.
go_setup() {
  command -v go >/dev/null 2>&1 || die "'go' is not on PATH; install Go >= $(sed -n 's/^go //p' "$HERE/go.mod") to build $1"
  # Never let go fetch a different toolchain or touch go.mod/go.sum; upstream builds these static.
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
  cd "$HERE"
}

# download_modules: `go mod download` under a heartbeat; on failure, its last lines and why.
# go.sum is committed, so with a warm module cache this needs no network at all.
download_modules() {
  GO_DOWNLOAD_LOG=$(mktemp)
  if ! with_heartbeat "downloading Go modules" _go_mod_download; then
    tail -n 20 "$GO_DOWNLOAD_LOG" >&2
    rm -f "$GO_DOWNLOAD_LOG"
    die "could not download the Go modules; is the Go module proxy ($(go env GOPROXY)) reachable?"
  fi
  rm -f "$GO_DOWNLOAD_LOG"
}
_go_mod_download() { go mod download 2>"$GO_DOWNLOAD_LOG"; }

# make_build_dir: TMP, a directory beside OUT (removed on exit) to build into. The binaries move
# into OUT at the end, so an interrupted build never leaves a half-written binary that looks
# complete.
make_build_dir() {
  mkdir -p "$(dirname "$OUT")"
  TMP=$(mktemp -d "$(dirname "$OUT")/.build.XXXXXX")
  trap 'stop_heartbeat; rm -rf "$TMP"' EXIT
}
