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
# perf's reports are cut with head: no SIGPIPE failures from here on.
set +o pipefail
echo
grep -F "warm invocations" "$work/profile-functions.log" || true
echo
echo "== CPU by binary or library (kernel: system calls, scheduling)"
perf report -i "$data" --stdio --no-children --sort dso -g none 2>/dev/null | grep '%' | head -8
echo
echo "== CPU by what it does (self time of each function, grouped by crate)"
perf report -i "$data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null | grep '%' | awk '
{ share = $1; sub("%", "", share); dso = $2; symbol = ""; for (i = 4; i <= NF; i++) symbol = symbol " " $i
  group = "other"
  if (dso ~ /kernel/) group = "kernel: system calls, scheduling, TCP"
  else if (symbol ~ /malloc|free|_int_|unlink_chunk|realloc|memmove|memcpy|memcmp|memset|memchr/) group = "libc: allocation, memory copies"
  else if (dso ~ /libc|vdso|libm/) group = "libc: other"
  else if (symbol ~ /aws_sigv4|SigV4/) group = "AWS SDK: SigV4 signing"
  else if (symbol ~ /aws_smithy_json|protocol_serde/) group = "AWS SDK: request and response (de)serialisation"
  else if (symbol ~ /aws_smithy|aws_sdk|aws_runtime|aws_types|aws_credential/) group = "AWS SDK: orchestrator, interceptors, endpoints"
  else if (symbol ~ /hyper|http::|httparse/) group = "HTTP: hyper, http"
  else if (symbol ~ /lambda_runtime|lambda_http|aws_lambda_events/) group = "Lambda runtime, event types"
  else if (symbol ~ /tracing|json_subscriber/) group = "tracing: log lines"
  else if (symbol ~ /metrics/) group = "EMF metrics"
  else if (symbol ~ /serde_json|serde_core|itoa|zmij|ryu/) group = "serde_json, number formatting"
  else if (symbol ~ /serde_dynamo/) group = "serde_dynamo"
  else if (symbol ~ /tokio|mio|futures/) group = "tokio, futures"
  else if (symbol ~ /request_api|compute::|notifier::|metadata_sync|shared::/) group = "the function and shared"
  else if (symbol ~ /core::|alloc::|std::/) group = "Rust std: fmt, hashing, UTF-8"
  total[group] += share }
END { for (group in total) printf "%6.2f%%  %s\n", total[group], group }' | sort -rn
echo
echo "== top functions"
perf report -i "$data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null | grep '%' |
  head -"${PROFILE_TOP:-30}" | cut -c1-160
echo
echo "perf data: $data (perf report -i $data)"
