#!/usr/bin/env bash
# Create .venv and install one environment from its lock, when the lock or the project changed.
# Usage: scripts/venv.sh run|test   (requirements/run.txt for ./run.sh; requirements/test.txt for ./test.sh)
# First the lock, exact versions checked against their hashes (pip refuses anything unpinned or unhashed);
# then the project itself, editable, without dependencies and without build isolation: it builds with
# the setuptools the lock just installed, so nothing is fetched that the lock does not name.
set -euo pipefail
cd "$(dirname "$0")/.."
env=${1:-run}
case "$env" in run|test) ;; *) echo "usage: scripts/venv.sh run|test" >&2; exit 2 ;; esac
venv=${CHAT_VENV:-.venv}
lock=requirements/$env.txt
stamp="$venv/.installed-$env"
want=$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input)
  "${pip[@]}" --require-hashes --no-deps -r "$lock"
  # setuptools warns about editable installs on every build; nothing to act on.
  PYTHONWARNINGS=ignore "${pip[@]}" --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi
