# Progress lines for the long one-time builds (hack/k8s/build.sh, hack/helm/build.sh), sourced
# by both. A cold build stays silent inside `go build` for minutes, which looks like a hang, so
# every step says what it does and a heartbeat says it is still going.
#
#   PROGRESS_PREFIX=k8sbin            set by the caller: the prefix of every line
#   KUBE_BIND_PROGRESS_SECONDS=60     how often the heartbeat speaks (the tests shorten it)

log() { echo "${PROGRESS_PREFIX}: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

HEARTBEAT_PID=""
# Run "$@" while a background loop says "still <what>" every KUBE_BIND_PROGRESS_SECONDS, then
# "<what>: done in Ns". Its sleep has no hold on our stdout or stderr, so whoever reads them sees
# the end of output when we finish, not a minute later.
with_heartbeat() {
  local what=$1 every=${KUBE_BIND_PROGRESS_SECONDS:-60} t0=$SECONDS rc=0
  shift
  (
    while sleep "$every" >/dev/null 2>&1 </dev/null; do
      log "  still $what ($(((SECONDS - t0) / 60)) min $(((SECONDS - t0) % 60)) s so far)"
    done
  ) &
  HEARTBEAT_PID=$!
  "$@" || rc=$?
  stop_heartbeat
  [[ $rc -eq 0 ]] || return "$rc"
  log "  $what: done in $((SECONDS - t0)) s"
}

stop_heartbeat() {
  if [[ -n "$HEARTBEAT_PID" ]]; then
    kill "$HEARTBEAT_PID" 2>/dev/null || true
    wait "$HEARTBEAT_PID" 2>/dev/null || true
    HEARTBEAT_PID=""
  fi
}
