#!/usr/bin/env bash
# make dev: the whole system on this machine. Starts the AWS emulator (moto, in .venv/moto),
# builds and starts the local runner (HTTP API on 127.0.0.1:${PORT:-3000}, queue and stream
# pollers), seeds demo data, and prints what to try. Ctrl-C stops everything.
#
# The HTTP API plays the template's auth: with ApiAuth=AWS_IAM (the default) it takes requests
# SigV4-signed with the emulator's credentials (the curl lines printed sign with curl's
# --aws-sigv4); `scripts/dev.sh --param ApiAuth=NONE` serves unsigned requests. Arguments go to
# the runner (local-runner --help).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export MOTO_NAME=dev

scripts/venv.sh moto
echo "building the local runner (the first build takes a few minutes)..." >&2
cargo build --quiet -p local-runner
# A fresh emulator each time: the runner provisions template.yaml's resources into it.
scripts/moto.sh stop
scripts/moto.sh start
runner=
cleanup() {
  [ -n "$runner" ] && kill -TERM "$runner" 2>/dev/null && wait "$runner" 2>/dev/null
  scripts/moto.sh stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM
eval "$(scripts/moto.sh env)"
"${CARGO_TARGET_DIR:-$root/target}/debug/local-runner" --seed-demo "$@" &
runner=$!
wait "$runner"
