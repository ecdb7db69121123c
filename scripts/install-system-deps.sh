#!/usr/bin/env bash
# Install the Debian packages the project needs, only those missing.
# Usage: scripts/install-system-deps.sh [run|test|bench]
set -euo pipefail
what=${1:-test}
pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
# python3 -m venv needs Debian's python3-venv unless the Python is not Debian's.
if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then pkgs+=(python3-venv); fi
if [ "$what" = test ] || [ "$what" = bench ]; then
  have chromium || pkgs+=(chromium)
  [ -x /usr/sbin/nginx ] || have nginx || pkgs+=(nginx-light)
  have tmux || pkgs+=(tmux)
  # tests/test_deploy_systemd.py rates the shipped units with systemd-analyze security --offline.
  have systemd-analyze || pkgs+=(systemd)
  # The shared room of several nodes: tests and the benchmark start their own redis-server on a free port.
  [ -x /usr/bin/redis-server ] || have redis-server || pkgs+=(redis-server)
  # The durable history's PostgreSQL tests make a private cluster (initdb as the postgres user) per session.
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || pkgs+=(postgresql)
  # The page's unit tests (tests/js/, run by tests/test_page_units.py) run on Node's built-in test runner.
  have node || pkgs+=(nodejs)
  # Korean glyphs for Chromium's screenshots of the page (the UI speaks Korean).
  [ -d /usr/share/fonts/truetype/nanum ] || pkgs+=(fonts-nanum)
fi
# The benchmark's smoke test builds the C load generator and speaks IRC to a private ngircd.
if [ "$what" = test ] || [ "$what" = bench ]; then
  [ -x /usr/sbin/ngircd ] || have ngircd || pkgs+=(ngircd)
  have gcc || pkgs+=(gcc)
fi
[ ${#pkgs[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${pkgs[*]}" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
# ngircd starts a system instance on install; the benchmark runs its own.
if [[ " ${pkgs[*]} " == *" ngircd "* ]]; then $sudo systemctl disable --now ngircd >/dev/null 2>&1 || $sudo service ngircd stop >/dev/null 2>&1 || true; fi
# redis-server too: tests and the benchmark start private instances.
if [[ " ${pkgs[*]} " == *" redis-server "* ]]; then $sudo systemctl disable --now redis-server >/dev/null 2>&1 || $sudo service redis-server stop >/dev/null 2>&1 || true; fi
# postgresql too: the tests make their own cluster on a free port.
if [[ " ${pkgs[*]} " == *" postgresql "* ]]; then $sudo systemctl disable --now postgresql >/dev/null 2>&1 || $sudo service postgresql stop >/dev/null 2>&1 || true; fi
# Same for nginx: tests start their own on ephemeral ports.
if [[ " ${pkgs[*]} " == *" nginx-light "* ]]; then $sudo service nginx stop >/dev/null 2>&1 || true; fi
