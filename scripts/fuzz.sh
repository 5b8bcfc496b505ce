#!/usr/bin/env bash
# make fuzz: runs every fuzz target of fuzz/ (libFuzzer, through cargo-fuzz) for a bounded time,
# starting from the seed corpus fuzz/seeds.py writes (the events/ payloads, the compute test
# datasets, the limits' edges) and fuzz/regressions/<target>/ (inputs that once failed).
#
#   FUZZ_SECONDS=20       seconds per target (default 20)
#   FUZZ_TARGETS="a b"    the targets to run (default: all of them)
#   FUZZ_TARGET_DIR=...   where the instrumented build goes (default $CARGO_TARGET_DIR/fuzz,
#                         or target/fuzz): its own directory, as every crate is built with
#                         coverage instrumentation and nothing is shared with normal builds
#   FUZZ_JOBS=N           cargo build jobs
#
# cargo-fuzz is pinned below and installed from crates.io into .venv/cargo the first time (about
# a minute); the first build of the targets takes several minutes more (docs/RELIABILITY.md).
# cargo fuzz needs nightly-only compiler flags (-Zsanitizer, coverage passes); with the stable
# toolchain RUSTC_BOOTSTRAP=1 allows them for this build only. Without a sanitizer (-s none):
# the code is safe Rust, and AddressSanitizer would double the build for nothing it can find.
#
# The corpus each target grows is kept in .local/fuzz/corpus/<target> (later runs start from
# it too); a failing input is written to .local/fuzz/artifacts/<target>/ and the run fails.
# Reproduce one with: scripts/fuzz.sh run <target> <file>  (runs the input once, shows the panic).
# scripts/fuzz.sh build only installs cargo-fuzz and builds the targets (CI starts it early).
# A fixed failure's input belongs in fuzz/regressions/<target>/, with a regression test.
set -euo pipefail
version=0.13.2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin="$root/.venv/cargo/bin/cargo-fuzz"
if [ "$("$bin" --version 2>/dev/null)" != "cargo-fuzz $version" ]; then
  echo "installing cargo-fuzz $version into .venv/cargo (pinned in scripts/fuzz.sh)" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  CARGO_TARGET_DIR="$tmp" cargo install --quiet --locked --root "$root/.venv/cargo" "cargo-fuzz@$version" \
    || { echo "fuzz: could not install cargo-fuzz $version" >&2; exit 2; }
  rm -rf "$tmp"
  trap - EXIT
fi

export RUSTC_BOOTSTRAP=1
seconds=${FUZZ_SECONDS:-20}
target_dir=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}/fuzz}
work="$root/.local/fuzz"
# The same flags for build and run, or `cargo fuzz run` would build again.
flags=(--fuzz-dir "$root/fuzz" --target-dir "$target_dir" --sanitizer none --release --debug-assertions)
[ -n "${FUZZ_JOBS:-}" ] && export CARGO_BUILD_JOBS="$FUZZ_JOBS"
fuzz() { "$bin" fuzz "$@"; }

if [ "${1:-}" = run ]; then
  target=${2:?usage: scripts/fuzz.sh run TARGET INPUT}
  input=${3:?usage: scripts/fuzz.sh run TARGET INPUT}
  exec "$bin" fuzz run "${flags[@]}" "$target" "$input"
fi

if [ "${1:-}" = build ]; then
  exec "$bin" fuzz build "${flags[@]}"
fi

targets=${FUZZ_TARGETS:-$(fuzz list --fuzz-dir "$root/fuzz")}
start=$SECONDS
echo "fuzz: building the targets (instrumented, in $target_dir)" >&2
fuzz build "${flags[@]}"
echo "fuzz: built in $((SECONDS - start)) s" >&2

rm -rf "$work/seeds"
python3 "$root/fuzz/seeds.py" "$work/seeds"
failed=()
for target in $targets; do
  corpus="$work/corpus/$target"
  artifacts="$work/artifacts/$target"
  mkdir -p "$corpus" "$artifacts" "$work/seeds/$target"
  inputs=("$corpus" "$work/seeds/$target")
  [ -d "$root/fuzz/regressions/$target" ] && inputs+=("$root/fuzz/regressions/$target")
  echo "==> $target: $seconds s" >&2
  # -timeout: an input taking over 10 s is a hang; -rss_limit_mb / -malloc_limit_mb: memory
  # beyond 1 GiB in all, or 256 MiB in one allocation, for inputs of a few KiB is unbounded.
  if ! fuzz run "${flags[@]}" "$target" "${inputs[@]}" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=256 \
      -artifact_prefix="$artifacts/" -print_final_stats=1 2>"$work/$target.log"; then
    tail -n 60 "$work/$target.log" >&2
    failed+=("$target")
    continue
  fi
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$work/$target.log" >&2 || true
done

echo "fuzz: done in $((SECONDS - start)) s" >&2
if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $work/artifacts/<target>/; scripts/fuzz.sh run <target> <input> replays one)" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds} s without a failure"
