#!/usr/bin/env bash
# The whole test suite: installs what it needs (Python packages into .venv,
# Debian packages chromium, nginx, tmux when missing), lints, type-checks, tests.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-system-deps.sh test
scripts/venv.sh fast,test
.venv/bin/ruff check tcp_server chat_client web_gateway bench tests
.venv/bin/mypy tcp_server chat_client web_gateway bench
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
