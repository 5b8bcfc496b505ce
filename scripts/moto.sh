#!/usr/bin/env bash
# The local AWS emulator: moto server (pinned in local/requirements-moto.txt, in .venv/moto), with
# every DynamoDB request also checked by dynalite (pinned in local/node, in .venv/node) and IAM
# enforced (the access key `test` is the administrator). See local/moto_server.py.
#   scripts/moto.sh start          start on 127.0.0.1 on a free port (or $MOTO_PORT), wait until it answers
#   scripts/moto.sh stop           stop the one started by `start` (by its PID)
#   scripts/moto.sh env            print the environment that points the AWS SDK at it
#   scripts/moto.sh run CMD ...    start a private instance, run CMD with that environment, stop it;
#                                  fails if any request was one that DynamoDB would have rejected
# State (pid, port, log) lives in .local/moto-<name>/, name from $MOTO_NAME (default "dev").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${MOTO_NAME:-dev}
state="$root/.local/moto-$name"

free_port() {
  "$root/.venv/moto/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

running() {
  [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null
}

print_env() {
  cat <<ENV
export AWS_ENDPOINT_URL=http://127.0.0.1:$(cat "$state/port")
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
ENV
}

start() {
  "$root/scripts/venv.sh" moto
  "$root/scripts/venv.sh" node
  if running; then
    echo "moto already running on port $(cat "$state/port") (pid $(cat "$state/pid"))" >&2
    return 0
  fi
  mkdir -p "$state"
  local port=${MOTO_PORT:-$(free_port)}
  # moto's server with requests handled one at a time, DynamoDB checked by dynalite, IAM enforced
  # (see local/moto_server.py for why).
  : >"$state/violations"
  "$root/.venv/moto/bin/python" "$root/local/moto_server.py" -H 127.0.0.1 -p "$port" \
    --dynalite "$root/.venv/node/node_modules/dynalite/cli.js" \
    --violations "$state/violations" --enforce-iam >"$state/log" 2>&1 &
  echo $! >"$state/pid"
  echo "$port" >"$state/port"
  for _ in $(seq 1 100); do
    if "$root/.venv/moto/bin/python" - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
PY
      echo "moto listening on http://127.0.0.1:$port (pid $(cat "$state/pid"), log $state/log)" >&2
      return 0
    fi
    if ! running; then
      echo "moto exited; its log:" >&2
      cat "$state/log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "moto did not answer within 10 s; its log: $state/log" >&2
  stop
  return 1
}

stop() {
  if running; then
    kill "$(cat "$state/pid")" 2>/dev/null || true
    wait "$(cat "$state/pid")" 2>/dev/null || true
  fi
  rm -f "$state/pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  run)
    shift
    name="run-$$"
    state="$root/.local/moto-$name"
    start
    trap 'stop; rm -rf "$state"' EXIT
    eval "$(print_env)"
    status=0
    "$@" || status=$?
    if [ -s "$state/violations" ]; then
      echo "the emulator saw $(wc -l <"$state/violations") request(s) that AWS would answer differently:" >&2
      cat "$state/violations" >&2
      [ "$status" -ne 0 ] || status=1
    fi
    exit "$status"
    ;;
  violations) cat "$state/violations" 2>/dev/null ;;
  *) echo "usage: $0 start|stop|env|run CMD...|violations" >&2; exit 2 ;;
esac
