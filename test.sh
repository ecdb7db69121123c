#!/usr/bin/env bash
# The whole test suite: installs what it needs (Python packages into .venv from the lock,
# requirements/test.txt; Debian packages chromium, nginx, redis-server, postgresql, tmux... when missing),
# lints, type-checks, tests. The run's header names the Debian programs' versions.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-system-deps.sh test
scripts/venv.sh test
exec scripts/check.sh .venv "$@"
