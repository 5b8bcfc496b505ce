#!/usr/bin/env bash
# The real Lambda binaries, each driven through the Lambda Runtime API with its events/ payloads
# (the same check runs inside `make test`). Set PROFILE=release to check the release build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
profile=${PROFILE:-dev}
cargo build --profile "$profile" --workspace --bins
scripts/moto.sh run cargo test --profile "$profile" -p e2e-tests --test lambda_binaries
