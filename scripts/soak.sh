#!/usr/bin/env bash
# make soak: load and soak of the local system, over loopback only, with wrk (docs/RELIABILITY.md).
#
# Starts a private emulator and a local runner on a free 127.0.0.1 port with the demo data and
# ApiAuth=NONE (wrk cannot sign requests), waits until shop-1..shop-20 are computed, then runs
# ROUNDS rounds of four routes (scripts/soak.lua): GET of a computed subject (200), GET of a new
# subject (202), POST batch-get (200), POST refresh (202). Each route of each round is bounded in
# time (wrk -d SECONDS) and in count (REQUESTS). Prints p50/p99/max latency per route and the
# runner's RSS before and after.
#
# Asserts correctness only, never speed: every answer has the route's status (no 5xx), no socket
# error or timeout, and the runner's RSS grows by at most RSS_GROWTH_MIB over the run.
#
# Settings (environment): SOAK_ROUNDS (5), SOAK_SECONDS (15), SOAK_REQUESTS (1000),
# SOAK_CONNECTIONS (8), SOAK_RSS_GROWTH_MIB (64).
#
# wrk is Debian's package (`apt-get install wrk`, a few seconds), installed here when missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${SOAK_ROUNDS:-5}
seconds=${SOAK_SECONDS:-15}
requests=${SOAK_REQUESTS:-1000}
connections=${SOAK_CONNECTIONS:-8}
rss_growth_mib=${SOAK_RSS_GROWTH_MIB:-64}
threads=2
target=${CARGO_TARGET_DIR:-$root/target}

if [ -z "${SOAK_WITH_EMULATOR:-}" ]; then
  if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package) with apt-get" >&2
    sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends wrk >/dev/null \
      || { echo "soak: wrk is needed: apt-get install wrk" >&2; exit 2; }
  fi
  scripts/venv.sh moto
  echo "building the local runner..." >&2
  cargo build --quiet -p local-runner
  # A private emulator for this run (stopped on exit), then this script again inside it.
  SOAK_WITH_EMULATOR=1 exec scripts/moto.sh run "$0" "$@"
fi

state=$(mktemp -d)
runner=
cleanup() {
  if [ -n "$runner" ]; then
    kill -TERM "$runner" 2>/dev/null || true
    wait "$runner" 2>/dev/null || true
  fi
  rm -rf "$state"
}
trap cleanup EXIT

port=$("$root/.venv/moto/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# ApiAuth=NONE: wrk cannot sign requests (SigV4), so this run plays a stack deployed without IAM
# auth; the signature check itself is tested in tests/api_auth.rs.
"$target/debug/local-runner" --port "$port" --prefix soak --seed-demo --param ApiAuth=NONE >"$state/runner.log" 2>&1 &
runner=$!
echo "runner pid $runner on $base, seeding the demo data..." >&2
for _ in $(seq 1 600); do
  grep -q "Deferred is running locally" "$state/runner.log" && break
  kill -0 "$runner" 2>/dev/null || { cat "$state/runner.log" >&2; echo "soak: the runner exited" >&2; exit 1; }
  sleep 0.5
done
grep -q "Deferred is running locally" "$state/runner.log" || { echo "soak: the runner did not start in 300 s" >&2; exit 1; }

# The subjects the routes read must be computed first (a GET starts them; ?wait long-polls).
for i in $(seq 1 20); do
  for _ in $(seq 1 30); do
    status=$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/scores/shop-$i?wait=10")
    [ "$status" = 200 ] && break
  done
  [ "$status" = 200 ] || { echo "soak: shop-$i was not computed" >&2; exit 1; }
done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$runner/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# route expected-status
routes=("get-done 200" "get-new 202" "batch-get 200" "refresh 202")
per_thread=$(( (requests + threads - 1) / threads ))
failed=0
total=0
# run ROUND SECONDS ROUTE EXPECTED COUNT_PER_THREAD: one wrk run; prints its table row.
run() {
  local round=$1 duration=$2 route=$3 expected=$4 cap=$5 line
  if ! line=$(wrk -t "$threads" -c "$connections" -d "${duration}s" --timeout 30s \
      -s scripts/soak.lua "$base" -- "$route" "$expected" "$cap" "r$round-$$" 2>"$state/wrk.err" | grep '^SOAK|'); then
    cat "$state/wrk.err" >&2
    echo "soak: wrk failed on $route" >&2
    failed=1
    return
  fi
  IFS='|' read -r _ count p50 p99 max wrong socket <<<"$line"
  [ -s "$state/wrk.err" ] && cat "$state/wrk.err" >&2
  if [ "$wrong" -ne 0 ] || [ "$socket" -ne 0 ] || [ "$count" -eq 0 ]; then
    failed=1
  fi
  total=$((total + count))
  echo "| $round | $route | $count | $p50 | $p99 | $max | $wrong | $socket | $(mib "$(rss_kib)") |" | tee -a "$state/rows"
}

echo "warm-up round (not counted)..." >&2
for entry in "${routes[@]}"; do run 0 2 $entry 50 >/dev/null; done
failed=0
total=0
before=$(rss_kib)

echo
echo "wrk $threads threads, $connections connections, per route and round: at most $requests requests and ${seconds} s; $base"
echo
echo "| round | route | requests | p50 ms | p99 ms | max ms | wrong status | socket errors/timeouts | runner RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|"
: >"$state/rows"
for round in $(seq 1 "$rounds"); do
  for entry in "${routes[@]}"; do run "$round" "$seconds" $entry "$per_thread"; done
done
after=$(rss_kib)
echo
echo "Per route over the $rounds rounds (p50 and p99: lowest and highest round):"
echo
echo "| route | requests | p50 ms | p99 ms | wrong status | socket errors/timeouts |"
echo "|---|---|---|---|---|---|"
awk -F' *[|] *' '{
  r = $3; if (!(r in n)) order[++k] = r
  n[r] += $4; wrong[r] += $8; socket[r] += $9
  if (!(r in lo50) || $5 < lo50[r]) lo50[r] = $5; if ($5 > hi50[r]) hi50[r] = $5
  if (!(r in lo99) || $6 < lo99[r]) lo99[r] = $6; if ($6 > hi99[r]) hi99[r] = $6
} END {
  for (i = 1; i <= k; i++) { r = order[i]
    printf "| %s | %d | %s – %s | %s – %s | %d | %d |\n", r, n[r], lo50[r], hi50[r], lo99[r], hi99[r], wrong[r], socket[r] }
}' "$state/rows"
echo
echo "runner RSS: $(mib "$before") MiB before, $(mib "$after") MiB after $total requests (growth $(mib $((after - before))) MiB, bound $rss_growth_mib MiB)"
if [ $((after - before)) -gt $((rss_growth_mib * 1024)) ]; then
  echo "soak: the runner's RSS grew by $(mib $((after - before))) MiB, more than $rss_growth_mib MiB" >&2
  failed=1
fi
if [ "$failed" -ne 0 ]; then
  echo "soak: FAILED (a wrong status, a socket error or RSS growth; see above)" >&2
  exit 1
fi
echo "soak: ok (every answer as expected, no socket error, RSS growth within the bound)"
