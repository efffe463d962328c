#!/usr/bin/env bash
# Ships new sshd lines of a log file to a D4 server, type 3, through a D4
# client (d4-goclient by default), and reconnects when the client ends.
# Why each part: tail -n0 -F sends only lines written from now on (a
# restart resends nothing) and follows the file across rotation;
# grep --line-buffered passes each line at once (plain grep holds kilobytes
# for minutes when writing to a pipe); the loop starts the client again
# when it exits (the D4 server drops a connection idle for 30 s). The lines
# wait in a FIFO this script holds open meanwhile, so tail and grep never
# see a closed pipe.
set -euo pipefail

LOG=/var/log/auth.log
CONF=""
CLIENT=d4-goclient
PATTERN='sshd'
DELAY=5

usage() {
	cat <<EOF
Usage: contrib/d4-sensor.sh -c DIR [-l FILE] [-b CLIENT] [-p REGEX] [-r SECONDS]

Runs: tail -n0 -F FILE | grep --line-buffered -E REGEX | CLIENT -c DIR
and starts CLIENT again SECONDS after it exits (a dropped connection),
keeping the lines written meanwhile. Runs until stopped (Ctrl-C, SIGTERM).

  -c DIR      the D4 client's configuration directory (required): for
              d4-goclient, destination (the D4 server, host:port), type (3),
              uuid, key, version, snaplen, source (stdin), and its TLS files
  -l FILE     the log to follow (default $LOG)
  -b CLIENT   the D4 client program (default $CLIENT); run as CLIENT -c DIR,
              reading the lines on standard input
  -p REGEX    which lines to send, an extended regular expression
              (default '$PATTERN'; the analyzer counts only sshd lines)
  -r SECONDS  wait before starting the client again (default $DELAY)
  -h          this help

Only lines written after the start are sent: a restart of this script
resends nothing, and lines written while it is stopped are not sent.
EOF
}

die() {
	echo "d4-sensor.sh: $*" >&2
	exit 1
}

while getopts "c:l:b:p:r:h" opt; do
	case "$opt" in
	c) CONF=$OPTARG ;;
	l) LOG=$OPTARG ;;
	b) CLIENT=$OPTARG ;;
	p) PATTERN=$OPTARG ;;
	r) DELAY=$OPTARG ;;
	h)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || die "unexpected argument \"$1\" (-h lists the options)"
[ -n "$CONF" ] || die "-c DIR is required: the D4 client's configuration directory (-h says more)"
[ -d "$CONF" ] || die "the D4 client configuration directory $CONF does not exist"
[[ $DELAY =~ ^[0-9]+$ ]] || die "-r \"$DELAY\": want whole seconds, like 5"
command -v "$CLIENT" >/dev/null 2>&1 || die "the D4 client $CLIENT is not found: install d4-goclient (github.com/D4-project/d4-goclient) or name it with -b"
[ -r "$LOG" ] || echo "d4-sensor.sh: warning: $LOG cannot be read yet; tail waits for it" >&2

work=$(mktemp -d)
fifo=$work/lines
mkfifo "$fifo"
# Read-write: the FIFO then always has a reader (this shell), so grep's
# writes wait in it while the client reconnects instead of failing.
exec 3<>"$fifo"
rm -rf "$work"

tail -n0 -F "$LOG" 2>/dev/null | grep --line-buffered -E -- "$PATTERN" >&3 &
feeder=$!
trap 'kill "$feeder" 2>/dev/null || true; exit 0' INT TERM
trap 'kill "$feeder" 2>/dev/null || true' EXIT

echo "d4-sensor.sh: following $LOG (lines matching $PATTERN) into $CLIENT -c $CONF"
while :; do
	rc=0
	"$CLIENT" -c "$CONF" <&3 || rc=$?
	echo "d4-sensor.sh: $CLIENT exited with status $rc; starting it again in $DELAY s" >&2
	sleep "$DELAY"
done
