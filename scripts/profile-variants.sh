#!/usr/bin/env bash
# make bench-profiles: the release profile's trade-offs, measured. Builds the functions, the floor
# and score-files once per Cargo profile variant (each a profile defined here with --config,
# inheriting the workspace's release profile, in target/<variant>), then measures them side by
# side in one run (local/bench's profile-variants): stripped size, init, first call, RSS, warm
# CPU per invocation, compute's parser throughput. Not in CI: every variant is a full release
# build (5-15 min each on 2 cores).
#
#   VARIANTS="lto-thin panic-abort" make bench-profiles    some of them (default: all below)
#   BENCH_COLD_STARTS=10 BENCH_WARM=300                     per binary and variant
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
work=$target/bench
mkdir -p "$work"

# Each variant changes one setting of [profile.release] (opt-level 3, fat LTO, one codegen unit,
# unwinding panics, stripped); "release" is the profile as it ships.
declare -A setting=(
  [lto-thin]='lto="thin"'
  [lto-off]='lto="off"'
  [panic-abort]='panic="abort"'
  [opt-s]='opt-level="s"'
)
variants=${VARIANTS:-lto-thin lto-off panic-abort opt-s}
packages=(-p request-api -p compute -p notifier -p metadata-sync -p hello-floor)

scripts/venv.sh moto
cargo build --release --bins -p deferred-bench -p datagen
# Every variant's score-files built alike: on its own, after the tools (which share its name).
cargo build --release --bins "${packages[@]}"
cargo build --release --bin score-files -p datagen
args=(--variant "release=$target/release")
for variant in $variants; do
  [[ -n ${setting[$variant]:-} ]] || { echo "unknown variant $variant (${!setting[*]})" >&2; exit 2; }
  config=(--config "profile.$variant.inherits=\"release\"" --config "profile.$variant.${setting[$variant]}")
  echo "profile-variants: building $variant (${setting[$variant]})" >&2
  cargo build --profile "$variant" "${config[@]}" --bins "${packages[@]}"
  cargo build --profile "$variant" "${config[@]}" --bin score-files -p datagen
  args+=(--variant "$variant=$target/$variant")
done

lake=$work/lake
[[ -d $lake ]] || "$target/release/datagen" --subjects 20 --out "$lake" >/dev/null
out=$work/profile-variants.md
scripts/moto.sh run "$target/release/profile-variants" "${args[@]}" --lake "$lake" \
  --cold-starts "${BENCH_COLD_STARTS:-10}" --warm "${BENCH_WARM:-300}" --out "$out" \
  >"$work/profile-variants.log"
echo "Written by \`make bench-profiles\` on $(date -u +%Y-%m-%d) at commit \`$(git rev-parse --short HEAD)\`; $(nproc) vCPU, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end." >>"$out"
cat "$out"
