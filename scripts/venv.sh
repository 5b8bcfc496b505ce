#!/usr/bin/env bash
# Creates (or refreshes) a project-local Python virtual environment from a pinned requirements file.
#   scripts/venv.sh moto   -> .venv/moto  from local/requirements-moto.txt  (the AWS emulator)
#   scripts/venv.sh tools  -> .venv/tools from local/requirements-tools.txt (SAM CLI, cfn-lint, cargo-lambda)
# Separate environments because the SAM CLI and moto pin overlapping dependencies differently.
# Re-installs only when the requirements file changed (its hash is kept in the venv).
set -euo pipefail
name=${1:?usage: scripts/venv.sh moto|tools}
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/local/requirements-$name.txt"
venv="$root/.venv/$name"
[ -f "$req" ] || { echo "no $req" >&2; exit 2; }
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
python=${PYTHON:-python3}
echo "setting up $venv (pinned in ${req#"$root"/})" >&2
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$venv/.requirements.sha256"
