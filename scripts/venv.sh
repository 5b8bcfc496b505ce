#!/usr/bin/env bash
# Creates (or refreshes) a project-local environment from pinned requirements.
#   scripts/venv.sh moto   -> .venv/moto  from local/requirements-moto.txt  (the AWS emulator)
#   scripts/venv.sh tools  -> .venv/tools from local/requirements-tools.txt (SAM CLI, cfn-lint, cargo-lambda)
#   scripts/venv.sh checkov -> .venv/checkov from local/requirements-checkov.txt (the template security scan)
#   scripts/venv.sh node   -> .venv/node  from local/node/package-lock.json (dynalite, a strict DynamoDB)
# Separate Python environments because the SAM CLI and moto pin overlapping dependencies differently.
# Re-installs only when the pinned file changed (its hash is kept in the environment).
set -euo pipefail
name=${1:?usage: scripts/venv.sh moto|tools|checkov|node}
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv/$name"
case "$name" in
  node) req="$root/local/node/package-lock.json" ;;
  *) req="$root/local/requirements-$name.txt" ;;
esac
[ -f "$req" ] || { echo "no $req" >&2; exit 2; }
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "setting up $venv (pinned in ${req#"$root"/})" >&2
if [ "$name" = node ]; then
  command -v npm >/dev/null || { echo "Node.js 20+ with npm is required (https://nodejs.org)" >&2; exit 2; }
  mkdir -p "$venv"
  cp "$root/local/node/package.json" "$root/local/node/package-lock.json" "$venv/"
  # No install scripts: dynalite runs in memory and needs none of its optional native builds.
  (cd "$venv" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
else
  python=${PYTHON:-python3}
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
fi
echo "$want" > "$venv/.requirements.sha256"
