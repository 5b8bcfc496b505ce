#!/usr/bin/env bash
# Fails on a dependency that nothing uses, so one that becomes unused is removed when it does:
#   1. cargo-machete: a crate's dependency its code never names (dev and build ones included);
#   2. an entry of the workspace's [workspace.dependencies] that no member crate takes.
# cargo-machete is pinned below and installed from crates.io into .venv/cargo the first time (a
# minute or two); later runs reuse it while the version matches. Arguments go to cargo-machete.
# A false positive (a dependency used only through a macro, or only to turn on a feature) goes in
# the crate's Cargo.toml, with the reason:
#   [package.metadata.cargo-machete]
#   ignored = ["name"]   # why it is needed although no code names it
set -uo pipefail
version=0.9.2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin="$root/.venv/cargo/bin/cargo-machete"
if [ "$("$bin" --version 2>/dev/null)" != "$version" ]; then
  echo "installing cargo-machete $version into .venv/cargo (pinned in scripts/machete.sh)" >&2
  # Its own build directory: not the workspace's target, which it would only clutter.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  CARGO_TARGET_DIR="$tmp" cargo install --quiet --locked --root "$root/.venv/cargo" "cargo-machete@$version" \
    || { echo "machete: could not install cargo-machete $version" >&2; exit 2; }
fi

failed=0
"$bin" "$@" || failed=1

python3 - "$root" <<'PY' || failed=1
import pathlib, sys, tomllib
root = pathlib.Path(sys.argv[1])
workspace = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]
used = set()
for member in workspace["members"]:
    manifest = tomllib.loads((root / member / "Cargo.toml").read_text())
    tables = [manifest] + list(manifest.get("target", {}).values())
    for table in tables:
        for kind in ("dependencies", "dev-dependencies", "build-dependencies"):
            for name, spec in table.get(kind, {}).items():
                if isinstance(spec, dict) and spec.get("workspace"):
                    used.add(name)
unused = sorted(set(workspace.get("dependencies", {})) - used)
if unused:
    print("[workspace.dependencies] entries that no member crate uses (remove them from Cargo.toml):")
    for name in unused:
        print(f"\t{name}")
    sys.exit(1)
print("[workspace.dependencies]: every entry is used by a member crate")
PY

if [ "$failed" -ne 0 ]; then
  echo "machete: unused dependencies (see above)" >&2
  exit 1
fi
