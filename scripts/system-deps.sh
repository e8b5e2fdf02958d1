#!/usr/bin/env bash
# The system packages AI-Mesh uses beyond Python, installed with apt when they are missing.
#
#   scripts/system-deps.sh run    what `make run` needs: bubblewrap (the sandbox's stand-in where
#                                 the kernel lacks Landlock)
#   scripts/system-deps.sh test   what `make test` needs too: Debian's chromium and chromium-driver
#                                 (the dashboard's browser tests; no browser is downloaded), a Java
#                                 runtime (17+) and Maven (the real-Kafka tier: scripts/kafka.sh
#                                 fetches Kafka from Maven Central)
#
# As root with apt-get, it installs what is missing (refreshing apt's lists when an install fails).
# Otherwise it prints the exact command to run and exits 1. A bad argument exits 2.
set -euo pipefail

usage() { echo "usage: system-deps.sh run|test" >&2; exit 2; }
[ $# -eq 1 ] || usage

java_major() {  # the major version of `java` on PATH, 0 when there is none
	command -v java >/dev/null || { echo 0; return; }
	java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1 | grep . || echo 0
}

missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
case "$1" in
	run) ;;
	test)
		command -v chromium >/dev/null || missing+=(chromium)
		command -v chromedriver >/dev/null || missing+=(chromium-driver)
		[ "$(java_major)" -ge 17 ] || missing+=(default-jre-headless)
		command -v mvn >/dev/null || missing+=(maven)
		;;
	*) echo "system-deps.sh: unknown argument '$1'" >&2; usage ;;
esac
[ ${#missing[@]} -eq 0 ] && exit 0

command="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "AI-Mesh needs these system packages for 'make $1': ${missing[*]}" >&2
	if command -v apt-get >/dev/null; then
		echo "Install them, then run 'make $1' again:" >&2
		echo "    sudo apt-get update && sudo $command" >&2
	else
		echo "This is not a Debian-like system: install their equivalents, then run 'make $1' again." >&2
	fi
	exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# apt's lists may be missing or stale on a new machine: refresh them only when an install fails.
$command >/dev/null 2>&1 || { apt-get update -q >/dev/null && $command >/dev/null; }
