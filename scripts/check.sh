#!/usr/bin/env bash
# Lint, types and the whole suite with one venv's tools: ./test.sh runs it with .venv (from the lock),
# scripts/check-latest.sh with a throwaway venv of the newest releases.
# Usage: scripts/check.sh VENV [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1; shift
# The project's packages (each one present in this checkout).
pkgs=()
for p in tcp_server chat_client web_gateway bench; do [ -d "$p" ] && pkgs+=("$p"); done
"$venv/bin/ruff" check "${pkgs[@]}" tests
"$venv/bin/mypy" "${pkgs[@]}"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
