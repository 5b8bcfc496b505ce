#!/usr/bin/env bash
# make profile: where one warm Lambda binary's CPU goes on one request path. Builds the binary
# with the `profiling` profile (the release build with symbols and line tables kept), keeps it
# warm under the local Runtime API against the emulator with `perf record` attached for the warm
# calls only (local/bench's profile-warm), and prints perf's report: by binary or library, then
# the top functions. perf (linux-perf) is installed with apt-get when missing.
#
#   make profile                                   request-api, done path
#   make profile BINARY=request-api PATH_NAME="new subject"
#   PROFILE_WARM=5000 make profile                 more invocations
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
binary=${BINARY:-request-api}
path=${PATH_NAME:-done}
target=${CARGO_TARGET_DIR:-$root/target}
work=$target/bench
mkdir -p "$work"

if ! command -v perf >/dev/null; then
  echo "profile: installing perf (apt-get)" >&2
  sudo_cmd=""
  [[ $(id -u) -eq 0 ]] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq linux-perf >/dev/null
fi
scripts/venv.sh moto
cargo build --profile profiling --bins -p "$binary"
# compute's release binary leaves the done path's score (its cold start computes one).
cargo build --release --bins -p compute -p deferred-bench

data=$work/perf-${binary}-${path// /-}.data
scripts/moto.sh run "$target/release/profile-warm" --bin-dir "$target/profiling" \
  --release-dir "$target/release" --binary "$binary" --path "$path" \
  --warm "${PROFILE_WARM:-2000}" --out "$data" >"$work/profile-functions.log"
echo
echo "== CPU by binary or library (kernel: system calls, scheduling)"
perf report -i "$data" --stdio --no-children --sort dso -g none 2>/dev/null | grep '%' | head -8
echo
echo "== top functions"
perf report -i "$data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null | grep '%' |
  head -"${PROFILE_TOP:-40}" | cut -c1-160
echo
echo "perf data: $data (perf report -i $data)"
