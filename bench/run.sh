#!/usr/bin/env bash
# Reproduce BENCHMARKS.md: install what the benchmark needs (gcc, ngircd, the
# Python packages), then run every scenario against our server and ngircd.
#
# Usage: bench/run.sh            the whole suite: ramps three times per server (about 55 minutes on 2 cores)
#        bench/run.sh --quick    one run of each, ngircd's 5,000-user join storm left out (about 30 minutes)
#        bench/run.sh --soak     the hour-long soak instead of the 10-minute one (50 minutes more)
#
# Every server is started by the bench on a private loopback port (37100 and up)
# and stopped after its scenario; nothing leaves 127.0.0.1. Results go to
# bench/results/*.json, plots to bench/plots/*.png, tables to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
soak=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --soak) soak=1 ;;
    *) echo "usage: bench/run.sh [--quick] [--soak]" >&2; exit 64 ;;
  esac
done

scripts/install-system-deps.sh bench
scripts/venv.sh test
# A system ngircd (Debian starts one on install) would compete for the CPU; the bench runs its own.
if pgrep -x ngircd >/dev/null 2>&1 && command -v service >/dev/null 2>&1; then
  service ngircd stop >/dev/null 2>&1 || true
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # 10,000 idle connections need the descriptors

B=.venv/bin/chat-bench
repeat=3
[ "$quick" = 1 ] && repeat=1

$B machine
$B build >/dev/null
uptime
$B fanout --users 1000 --max-offered 200e6 --repeat "$repeat" --name fanout-1000
uptime
$B fanout --users 100 --start 100000 --max-offered 200e6 --repeat "$repeat" --name fanout-100
uptime
$B whisper --users 1000 --senders 100 --start 20000 --factor 1.3 --repeat "$repeat" --name whisper-1000
uptime
$B gateway --users 200 --start 10000 --max-offered 200e6 --name gateway-200   # WebSocket users vs direct TCP
if [ "$quick" = 1 ]; then
  $B joins --users 5000 --servers ours --name joins-5000
  $B joins --users 1000 --name joins-1000
else
  $B joins --users 5000 --name joins-5000          # ngircd needs about 4.5 minutes here
fi
$B idle --users 10000 --servers ours --name idle-10000
$B idle --users 2000 --name idle-2000               # both: ngircd joins past that take many minutes
if [ "$soak" = 1 ]; then
  $B soak --secs 3600 --tick 30 --servers ours --name soak-3600s
else
  $B soak --secs 600 --tick 15 --servers ours --name soak-600s
fi
