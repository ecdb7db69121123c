#!/usr/bin/env bash
# Tomorrow's break, today: lint, types and the whole suite against the newest release of every
# dependency (pyproject.toml's ranges, not the lock), in a throwaway venv. Not part of CI: a maintainer
# runs it, and when it fails, fixes the code (or bounds a range) and refreshes the lock (scripts/lock.sh).
# Usage: scripts/check-latest.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-deps.sh test
venv=$(mktemp -d /tmp/hanchat-latest.XXXXXX)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input --upgrade)
"${pip[@]}" pip
PYTHONWARNINGS=ignore "${pip[@]}" --upgrade-strategy eager -e ".[fast,test]"
echo "newest releases:" >&2
"$venv/bin/python" -m pip list --disable-pip-version-check --format=freeze >&2
status=0
scripts/check.sh "$venv" "$@" || status=$?
# The editable install left its metadata in the tree; the lock's venv will make its own again.
exit "$status"
