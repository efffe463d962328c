#!/usr/bin/env bash
# The project's test command: installs what the tests need when it is
# missing (redis-server, screen, shellcheck, chromium; apt-get, as root or
# with sudo), then vets, checks formatting, runs every test with the race
# detector, and runs each fuzz target briefly.
#
#   scripts/test.sh            everything (what CI runs)
#   FUZZTIME=60s scripts/test.sh   longer fuzzing
#   SKIP_FUZZ=1 scripts/test.sh    no fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
trap 'echo "scripts/test.sh: FAILED during: ${current:-setup}" >&2' ERR

current="checking tools"
step "$current"
if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		export PATH="$PATH:/usr/local/go/bin"
	else
		echo "go is not on PATH: install Go (see README, 'Install')" >&2
		exit 1
	fi
fi
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v screen >/dev/null 2>&1 || need+=(screen)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
	current="installing ${need[*]}"
	step "$current"
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install: ${need[*]}" >&2; exit 1; }
		sudo="sudo"
	fi
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian package starts a redis-server service on 6379; the tests never
# use it: each starts its own servers on free loopback ports.

current="gofmt"
step "$current"
unformatted=$(gofmt -l cmd internal)
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi

current="go vet"
step "$current"
go vet ./...

current="go test -race"
step "$current"
go test -race -count=1 -timeout 15m ./...

if [ -z "${SKIP_FUZZ:-}" ]; then
	fuzztime=${FUZZTIME:-10s}
	# Every reader of untrusted bytes has a fuzz target; list them all so a
	# new one cannot be forgotten.
	for pkg in $(go list ./internal/...); do
		dir=$(go list -f '{{.Dir}}' "$pkg")
		# shellcheck disable=SC2013 # target names are single words
		for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
			current="fuzz $target ($pkg) for $fuzztime"
			step "$current"
			go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg"
		done
	done
fi
echo
echo "all tests passed"
