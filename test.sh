#!/usr/bin/env bash
# The whole test suite: installs what it needs (Python packages into .venv,
# Debian packages chromium, nginx, tmux when missing), lints, type-checks, tests.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-system-deps.sh test
scripts/venv.sh fast,test
# The project's packages (each one present in this checkout).
pkgs=()
for p in tcp_server chat_client web_gateway bench; do [ -d "$p" ] && pkgs+=("$p"); done
.venv/bin/ruff check "${pkgs[@]}" tests
.venv/bin/mypy "${pkgs[@]}"
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
