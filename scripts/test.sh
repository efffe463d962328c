#!/usr/bin/env bash
# The project's test command: installs what the tests need when it is
# missing (redis-server, screen, shellcheck, chromium, prometheus for
# promtool, systemd for systemd-analyze, logrotate; apt-get, as root or
# with sudo), then vets, checks formatting, runs every test with the race
# detector, and runs each fuzz target briefly.
#
#   scripts/test.sh            everything (what CI runs)
#   FUZZTIME=60s scripts/test.sh   longer fuzzing
#   SKIP_FUZZ=1 scripts/test.sh    no fuzzing
set -Eeuo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
# set -E carries the trap into functions and command substitutions; only a
# failure that reaches the script itself is reported (a grep that finds
# nothing inside $(...) is not a failure of the run).
trap '[ "$BASH_SUBSHELL" -eq 0 ] && echo "scripts/test.sh: FAILED during: ${current:-setup}" >&2' ERR

current="checking tools"
step "$current"
if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		export PATH="$PATH:/usr/local/go/bin"
	else
		echo "go is not on PATH: install Go (see README, 'The two commands')" >&2
		exit 1
	fi
fi
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v screen >/dev/null 2>&1 || need+=(screen)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The operations files: promtool tests the alert rules, systemd-analyze
# verifies the units, logrotate reads the rotation file.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v logrotate >/dev/null 2>&1 || need+=(logrotate)
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

# fuzz_one runs one fuzz target. Go 1.26's fuzzing coordinator can report
# "context deadline exceeded" when -fuzztime ends while a starved worker is
# mid-call (go.dev/issue/75804, fixed in Go 1.27): that is not a finding.
# A real finding writes a reproducer under testdata/fuzz and fails; a bare
# deadline is run once more, and tolerated with a warning if it recurs.
# inputs counts the failing inputs Go has written for one target.
inputs() {
	if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi
}

fuzz_one() {
	local pkg=$1 dir=$2 target=$3 fuzztime=$4 out before after attempt
	for attempt in 1 2; do
		before=$(inputs "$dir/testdata/fuzz/$target")
		if out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1); then
			printf '%s\n' "$out" | tail -n 3
			return 0
		fi
		after=$(inputs "$dir/testdata/fuzz/$target")
		printf '%s\n' "$out" | tail -n 20
		if [ "$after" -ne "$before" ] || ! grep -q 'context deadline exceeded' <<<"$out"; then
			echo "fuzz $target found a failing input (see above)" >&2
			return 1
		fi
		echo "fuzz $target: coordinator deadline race, no failing input written (attempt $attempt)" >&2
	done
	echo "warning: fuzz $target hit the coordinator deadline race twice; no failing input was found" >&2
}

if [ -z "${SKIP_FUZZ:-}" ]; then
	fuzztime=${FUZZTIME:-10s}
	# Every reader of untrusted bytes has a fuzz target; list them all so a
	# new one cannot be forgotten.
	for pkg in $(go list ./internal/...); do
		dir=$(go list -f '{{.Dir}}' "$pkg")
		# shellcheck disable=SC2013 # target names are single words
		for target in $({ grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null || true; } | sed 's/^func //'); do
			current="fuzz $target ($pkg) for $fuzztime"
			step "$current"
			fuzz_one "$pkg" "$dir" "$target" "$fuzztime"
		done
	done
fi
echo
echo "all tests passed"
