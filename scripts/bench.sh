#!/usr/bin/env bash
# make bench: measures the release binaries and writes the figures into docs/BENCHMARKS.md
# (between its "make bench" markers; the text around them is kept).
#
#   1. cold start, memory and CPU per invocation of each function next to a hello-world floor,
#      against the emulator (coldstart, local/bench), over HTTP and HTTPS;
#   2. compute's parser on generated data, step by step (score-files: split, parse, full) and a
#      large input's peak RSS;
#   3. each binary's size, stripped, and zipped as `sam build` packages it.
#
# Variables: BENCH_COLD_STARTS (default 15 per binary and endpoint), BENCH_WARM (default 1000
# invocations per path), BENCH_LARGE_COPIES (default 80: the generated lake scored that many times
# over in one pass, about 1 GiB). Benchmarks, not tests: nothing here fails because the machine
# is slow; it fails only when a binary answers wrongly.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
release=$target/release
work=$target/bench
mkdir -p "$work"

scripts/venv.sh moto
# The functions and the floor exactly as they ship (the features of their own dependencies only),
# then the tools, whose emulator dependency brings more features into the SDK crates.
cargo build --release --bins -p request-api -p compute -p notifier -p metadata-sync -p hello-floor
cargo build --release --bins -p deferred-bench -p datagen

out=$work/report.md
{
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%d) at commit \`$(git rev-parse --short HEAD)\`$(git diff --quiet HEAD -- . ':!docs/BENCHMARKS.md' || echo ' plus uncommitted changes')."
  echo "Machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start; $(rustc --version | cut -d' ' -f1-2); the workspace's release profile, x86_64."
  echo
  echo "### Cold start, memory, CPU per invocation"
  echo
  echo "\`target/release/coldstart --cold-starts ${BENCH_COLD_STARTS:-15} --warm ${BENCH_WARM:-1000}\` under \`scripts/moto.sh run\`:"
  echo "init is exec to the first \`invocation/next\` (Lambda's Init Duration), medians of"
  echo "${BENCH_COLD_STARTS:-15} processes per binary, interleaved; CPU is the process's own (its threads'"
  echo "run time), so the emulator's time is left out."
  echo
  scripts/moto.sh run "$release/coldstart" --bin-dir "$release" --work-dir "$work" \
    --cold-starts "${BENCH_COLD_STARTS:-15}" --warm "${BENCH_WARM:-1000}" \
    --out "$work/coldstart.md" >"$work/functions.log"
  cat "$work/coldstart.md"
  echo
} >"$out.part"

# compute's parser, step by step, on the demo lake (20 subjects, seed 1).
lake=$work/lake
rm -rf "$lake"
"$release/datagen" --subjects 20 --out "$lake" >/dev/null
declare -A lines_per_second
{
  echo "### compute's parser, step by step"
  echo
  echo "\`score-files --mode split|parse|full\` over the demo lake (\`datagen --subjects 20 --out\`),"
  echo "one thread, best of 5 runs each:"
  echo
  echo "| mode | what it does | MiB/s | lines/s |"
  echo "|---|---|---|---|"
  for mode in split parse full; do
    best=""
    for _ in 1 2 3 4 5; do
      line=$("$release/score-files" --mode "$mode" "$lake")
      line=${line%%$'\n'*}
      mibs=$(sed -E 's/.*: ([0-9.]+) MiB\/s.*/\1/' <<<"$line")
      lps=$(sed -E 's/.*MiB\/s, ([0-9]+) lines\/s.*/\1/' <<<"$line")
      if [[ -z $best || $lps -gt ${best#* } ]]; then best="$mibs $lps"; fi
    done
    lines_per_second[$mode]=${best#* }
    case $mode in
      split) what="finds the lines" ;;
      parse) what="parses each line into a transaction" ;;
      full) what="features and score (what compute does)" ;;
    esac
    echo "| $mode | $what | ${best% *} | ${best#* } |"
  done
  echo
  copies=${BENCH_LARGE_COPIES:-80}
  args=()
  for _ in $(seq "$copies"); do args+=("$lake"); done
  /usr/bin/time -f '%M' -o "$work/large.rss" "$release/score-files" --mode full "${args[@]}" >"$work/large.out"
  large_bytes=$(sed -E 's/.* ([0-9]+) bytes.*/\1/' <<<"$(head -1 "$work/large.out")")
  large_rss_kib=$(cat "$work/large.rss")
  echo "The demo lake scored $copies times over in one pass ($((large_bytes / 1024 / 1024)) MiB, one accumulator):"
  echo "peak RSS $((large_rss_kib / 1024)) MiB (\`/usr/bin/time -f %M\`)."
  echo
  ratio=$(awk -v f="${lines_per_second[full]}" -v p="${lines_per_second[parse]}" 'BEGIN { printf "%.2f", f / p }')
  met_ratio=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? "yes" : "**no**" }')
  met_rss=$([[ $large_rss_kib -le $((64 * 1024)) ]] && echo yes || echo "**no**")
  echo "| figure | target | measured | met |"
  echo "|---|---|---|---|"
  echo "| full / parse, lines/s | >= 0.80 | $ratio | $met_ratio |"
  echo "| peak RSS scoring $((large_bytes / 1024 / 1024)) MiB | <= 64 MiB | $((large_rss_kib / 1024)) MiB | $met_rss |"
  echo
} >>"$out.part"

# compute's object downloads at once, against the emulator with S3's time to first byte injected.
{
  echo "### compute's object downloads at once"
  echo
  echo "\`target/release/fetch-objects\` under \`scripts/moto.sh run\`: compute's own feature source (catalog"
  echo "query, every object streamed from S3 and parsed) over one subject, with a delay injected before"
  echo "each GetObject for S3's time to first byte, which the emulator on loopback does not have."
  echo
  scripts/moto.sh run "$release/fetch-objects" 2>>"$work/functions.log"
  echo
} >>"$out.part"

# Sizes: the stripped binaries, and zipped as sam build's deployment package (bootstrap); arm64
# too when `make lambda-build` has built it (cargo-lambda's target/lambda/<name>/bootstrap).
size_mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
zipped_mb() {
  rm -rf "$work/zip" && mkdir -p "$work/zip"
  cp "$1" "$work/zip/bootstrap"
  (cd "$work/zip" && zip -q -9 package.zip bootstrap)
  size_mb "$work/zip/package.zip"
}
{
  echo "### Binary sizes"
  echo
  echo "| binary | x86_64 stripped | x86_64 zipped | arm64 stripped (\`make lambda-build\`) | arm64 zipped |"
  echo "|---|---|---|---|---|"
  for bin in hello-floor request-api compute notifier metadata-sync; do
    arm=$target/lambda/$bin/bootstrap
    if [[ -f $arm ]]; then
      arm_sizes="$(size_mb "$arm") | $(zipped_mb "$arm")"
    else
      arm_sizes="not built | not built"
    fi
    echo "| $bin | $(size_mb "$release/$bin") | $(zipped_mb "$release/$bin") | $arm_sizes |"
  done
  echo
} >>"$out.part"
mv "$out.part" "$out"

# Into docs/BENCHMARKS.md, between the markers.
doc=docs/BENCHMARKS.md
begin='<!-- make bench: begin -->'
end='<!-- make bench: end -->'
grep -qF "$begin" "$doc" && grep -qF "$end" "$doc" || {
  echo "bench: $doc has no '$begin' / '$end' markers" >&2
  exit 1
}
awk -v begin="$begin" -v end="$end" -v report="$out" '
  $0 == begin { print; while ((getline line < report) > 0) print line; skip = 1; next }
  $0 == end { skip = 0 }
  !skip { print }
' "$doc" >"$doc.new"
mv "$doc.new" "$doc"
echo "bench: figures written to $doc (report: $out)"
