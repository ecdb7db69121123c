#!/usr/bin/env bash
# Create .venv and install the project with the given extras, when anything changed.
# Usage: scripts/venv.sh EXTRAS   (e.g. "fast" or "fast,test")
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-fast}
venv=${CHAT_VENV:-.venv}
stamp="$venv/.installed-$extras"
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  # setuptools warns about editable installs on every build; nothing to act on.
  PYTHONWARNINGS=ignore "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[$extras]"
  touch "$stamp"
fi
