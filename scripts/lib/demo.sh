# Sourced by the scripts that test a running `tally demo` (scripts/schemathesis.sh,
# benches/abuse.sh): start it on a free loopback port in a fresh data
# directory, wait for it, make tokens, stop it. Needs, set by the caller:
# `tally` (the binary), `work` (a temporary folder), `log` (a function) and
# `python` (an interpreter). Sets `pid`, `port`, `base` and `admin`.

# No inherited database, config file or data dir: the fresh SQLite in $work.
# `env` execs tally, so $! is the server's own PID.
tally_env=(env -u DATABASE_URL -u TALLY_CONFIG -u TALLY_DATA_DIR TALLY_LOG=warn)
pid=""

# demo_start [VAR=VALUE...]: starts the demo with these settings and waits
# until it prints its admin token (exit 2 when it does not).
demo_start() {
  port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  base="http://127.0.0.1:$port"
  log "starting tally demo on $base (data in $work/data)"
  : >"$work/demo.out"
  "${tally_env[@]}" "$@" "$tally" --data-dir "$work/data" demo --listen "127.0.0.1:$port" >"$work/demo.out" 2>"$work/server.log" &
  pid=$!
  admin=""
  local deadline=$((SECONDS + ${TALLY_START_SECONDS:-300}))
  while [ -z "$admin" ]; do
    admin=$(sed -n 's/.*API token (admin, 30 days): \(tly_[0-9a-f]\{64\}\).*/\1/p' "$work/demo.out" | head -n 1 || true)
    [ -n "$admin" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      log "tally demo exited before serving; its last output:"; tail -n 20 "$work/demo.out" "$work/server.log" >&2; exit 2
    fi
    [ "$SECONDS" -lt "$deadline" ] || { log "tally demo printed no API token within ${TALLY_START_SECONDS:-300} s"; exit 2; }
    sleep 0.5
  done
  log "demo ready after ${SECONDS} s (server pid $pid)"
}

# demo_token ARGS...: a token made with `tally token create ARGS...` (exit 2 when none).
demo_token() {
  local token
  token=$("${tally_env[@]}" "$tally" --data-dir "$work/data" token create --expires 1d "$@" 2>>"$work/server.log" | tr -d '[:space:]')
  [[ "$token" =~ ^tly_[0-9a-f]{64}$ ]] || { log "token create $* printed no token"; tail -n 20 "$work/server.log" >&2; exit 2; }
  echo "$token"
}

# demo_stop: only the server this script started, by its PID: SIGTERM
# (graceful, within the header timeout), then SIGKILL if it is still there.
demo_stop() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
