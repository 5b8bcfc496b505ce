#!/usr/bin/env bash
# The Lambda binaries as they ship: built with the release profile (fat LTO, stripped), then each
# driven through the Lambda Runtime API with its events/ payloads (tests/lambda_binaries.rs), with
# the emulator behind it. `make test` runs the same test on the debug binaries.
# (`sam build` / `make lambda-build` cross-compile the same code for arm64 with cargo-lambda.)
# scripts/lambda-check.sh build only builds the binaries (CI starts it early).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -p request-api -p compute -p notifier -p metadata-sync --bins
[ "${1:-}" = build ] && exit 0
ls -l "$target"/release/{request-api,compute,notifier,metadata-sync}
scripts/venv.sh moto
LAMBDA_BIN_DIR="$target/release" scripts/moto.sh run cargo test -p e2e-tests --test lambda_binaries
