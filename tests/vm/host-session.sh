# Sourced by the host-side scripts that boot the test VM (scripts/demo.sh,
# tests/bench/run-capture-bench.sh): a work directory, a private D-Bus
# session bus in it, and cleanup of every background process on exit.
#
#   source tests/vm/host-session.sh
#   host_session_start PREFIX      # sets WORK and BUS
#   track_pid PID                  # killed on exit

pids=()
track_pid() { pids+=("$1"); }

host_session_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${WORK:-}" ] && rm -rf "$WORK"
}

host_session_start() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  trap host_session_cleanup EXIT
  # A private bus, so nothing here touches the user's session bus.
  dbus-daemon --session --nofork --print-address=1 --address="unix:tmpdir=$WORK" \
    > "$WORK/bus" 2> "$WORK/dbus.err" &
  track_pid $!
  for _ in $(seq 50); do [ -s "$WORK/bus" ] && break; sleep 0.1; done
  BUS=$(head -n1 "$WORK/bus")
  if [ -z "$BUS" ]; then
    echo "$1: dbus-daemon did not start: $(cat "$WORK/dbus.err")" >&2
    exit 1
  fi
}
