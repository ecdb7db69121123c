#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml: requirements/run.txt (./run.sh) and requirements/test.txt
# (./test.sh, CI, development). uv resolves for every supported Python and platform at once (--universal)
# and writes exact versions with their hashes. Pins already in a lock are kept unless pyproject.toml needs
# otherwise; `scripts/lock.sh --upgrade` (or --upgrade-package NAME) takes newer releases.
# Usage: scripts/lock.sh [uv pip compile flags]
set -euo pipefail
cd "$(dirname "$0")/.."
tool=${CHAT_LOCK_VENV:-.venv-lock}
if [ ! -x "$tool/bin/uv" ]; then
  python3 -m venv "$tool"
  "$tool/bin/python" -m pip install -q --require-hashes --no-deps -r requirements/uv.txt
fi
python3 scripts/lock_inputs.py build.in > requirements/build.in
fingerprint=$(python3 scripts/lock_inputs.py fingerprint)
for env in run test; do
  out=requirements/$env.txt
  # shellcheck disable=SC2046  # the extras are separate words
  "$tool/bin/uv" pip compile --quiet pyproject.toml requirements/build.in $(python3 scripts/lock_inputs.py extras "$env") \
    --universal --python-version 3.11 --generate-hashes --custom-compile-command "scripts/lock.sh" \
    -o "$out" "$@"
  # The fingerprint of what the lock was made from: tests/test_lock.py compares it with pyproject.toml.
  sed -i '/^# pyproject-fingerprint: /d' "$out"
  sed -i "1i # pyproject-fingerprint: $fingerprint" "$out"
done
echo "locked: requirements/run.txt ($(grep -c '==' requirements/run.txt) packages), requirements/test.txt ($(grep -c '==' requirements/test.txt) packages)"
