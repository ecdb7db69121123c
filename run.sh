#!/usr/bin/env bash
# Quick start: install into .venv and run the whole chat on embedded defaults.
# Flags are passed on (see `.venv/bin/chat-run --help`).
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-system-deps.sh run
scripts/venv.sh run
exec .venv/bin/chat-run "$@"
