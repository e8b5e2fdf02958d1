#!/usr/bin/env bash
# Run a command while a busy loop keeps one core fully loaded, as a user's busy machine would.
#
#   scripts/under-load.sh COMMAND [ARG...]     e.g. scripts/under-load.sh .venv/bin/pytest tests/test_faults.py
#
# The busy loop is pinned to the last core (taskset, where it exists), ends when the command ends
# (or at the latest after UNDER_LOAD_MAX_S seconds, default 3600), and the command's exit code is
# this script's.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: under-load.sh COMMAND [ARG...]" >&2; exit 2; }
max_s="${UNDER_LOAD_MAX_S:-3600}"
[[ "$max_s" =~ ^[0-9]+$ ]] && [ "$max_s" -gt 0 ] ||
	{ echo "under-load.sh: UNDER_LOAD_MAX_S must be a whole number of seconds, not '$max_s'" >&2; exit 2; }

pin=()
if command -v taskset >/dev/null; then pin=(taskset -c "$(($(nproc) - 1))"); fi
"${pin[@]}" timeout "$max_s" bash -c 'while :; do :; done' &
hog=$!
trap 'kill "$hog" 2>/dev/null || true' EXIT
echo "under-load.sh: busy loop (pid $hog) on core $(($(nproc) - 1)) for at most ${max_s} s" >&2
status=0
"$@" || status=$?
exit "$status"
