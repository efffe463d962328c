#!/usr/bin/env bash
# Runs analyzer-d4-log under screen: a session "alog" with the windows
# alog-redis (the counting Redis, ./redis.conf, data in db/) and
# alog-ingester (./analyzer-d4-log -c conf, or conf.sample when conf/ does
# not exist). "-k" stops both in the order that loses nothing: the daemon
# first, so it finishes its batch, then Redis, so its last writes are
# saved. "-s" stops the daemon alone; "-F" runs the rebuild between.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
# Physical path: it is compared with what /proc and Redis report.
HERE=$(pwd -P)

SESSION=${ALOG_SESSION:-alog}
DAEMON_PIDFILE=db/analyzer-d4-log.pid
REDIS_PIDFILE=db/redis-server.pid
WAIT_SECONDS=30
REDIS_SAVE_SECONDS=600

die() {
	echo "launch_server.sh: $*" >&2
	exit 1
}

# The port comes from redis.conf unless overridden, so that an operator
# who edits the port there stops and starts the same Redis as this script.
conf_port() {
	awk '$1 == "port" { p = $2 } END { print p }' redis.conf 2>/dev/null || true
}
PORT=${ALOG_REDIS_PORT:-$(conf_port)}
PORT=${PORT:-6500}
if ! [[ $PORT =~ ^[0-9]{1,5}$ ]] || ((10#$PORT < 1 || 10#$PORT > 65535)); then
	die "the counting Redis port \"$PORT\" is not a port number (see ALOG_REDIS_PORT and redis.conf)"
fi

usage() {
	cat <<EOF
Usage: ./launch_server.sh [-c DIR] [-k | -s | -F | -h]

Without an option, starts the screen session "$SESSION" with two windows:
  alog-redis     the counting Redis: redis-server ./redis.conf (port $PORT, data in db/)
  alog-ingester  ./analyzer-d4-log -c DIR, once that Redis answers
                 (its log: analyzer-d4-log.log)
If the session already runs, says so and starts nothing; if only the daemon
is stopped (after -s), starts the daemon again.

  -c DIR  the configuration directory (default: conf, which ./install_server.sh
          creates from conf.sample; conf.sample, the shipped reference, when
          conf/ does not exist)
  -k      stop: SIGTERM to analyzer-d4-log, waiting up to ${WAIT_SECONDS} s for it to
          finish its batch; then SHUTDOWN of the counting Redis (which saves);
          then the screen session. Harmless when nothing runs.
  -s      stop the daemon only; the counting Redis and the session keep running
          (./launch_server.sh starts the daemon again).
  -F      rebuild the statistics: stop the daemon (the counting Redis keeps
          running), run ./analyzer-d4-log -c DIR -F in this terminal, then
          start the daemon again. A failed rebuild leaves the daemon stopped.
  -h      this help.

Look at the windows with: screen -r $SESSION  (Ctrl-a n: next window;
Ctrl-a d: detach, leaving everything running).

Environment: ALOG_SESSION names the session (default alog); ALOG_REDIS_PORT
the counting Redis port (default: the port line of redis.conf, 6500), for a
second instance beside the first. DIR/redis_parsers must name the same port.
EOF
}

# conf_dir_default: conf/ when it exists, else the shipped reference.
conf_dir_default() {
	if [ -d conf ]; then
		echo conf
	else
		echo conf.sample
	fi
}

have() { command -v "$1" >/dev/null 2>&1; }

# session_id prints "PID.NAME" of the session named exactly $SESSION:
# screen -S matches names by prefix, so "alog" alone could address
# "alog-test" and the wrong session would be stopped.
session_id() {
	have screen || return 0
	{ screen -ls 2>/dev/null || true; } | awk -v want="$SESSION" '
		$1 ~ /^[0-9]+\./ {
			name = $1
			sub(/^[0-9]+\./, "", name)
			if (name == want) { print $1; exit }
		}'
}

# session_dir prints the directory the session was started from (the
# screen server's working directory), to tell our session from a
# same-named one of another checkout.
session_dir() {
	readlink "/proc/${1%%.*}/cwd" 2>/dev/null || true
}

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

# A Redis answers at once; only another kind of server on the port would
# leave redis-cli waiting.
rcli() {
	timeout 2 redis-cli -h 127.0.0.1 -p "$PORT" "$@" 2>/dev/null
}

redis_answers() {
	have redis-cli && [ "$(rcli ping)" = PONG ]
}

# our_redis: the Redis on $PORT is this directory's counting Redis, not
# the system one or another checkout's.
our_redis() {
	redis_answers && [ "$(rcli --raw config get dir | sed -n 2p)" = "$HERE/db" ]
}

# is_running PID NAME CWD: PID is a live NAME process whose working
# directory is CWD. The directory tells our process from another
# checkout's; the name guards against a reused PID. (An exited process
# that its parent has not reaped yet has no cwd, so it counts as gone.)
is_running() {
	[[ $1 =~ ^[0-9]+$ ]] || return 1
	[ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
	[ "$(readlink "/proc/$1/cwd" 2>/dev/null)" = "$3" ]
}

# pid_from FILE NAME CWD prints the PID in FILE if it is running.
pid_from() {
	local pid=""
	[ -r "$1" ] || return 0
	read -r pid <"$1" || true
	if is_running "$pid" "$2" "$3"; then
		echo "$pid"
	fi
}

daemon_pid() { pid_from "$DAEMON_PIDFILE" analyzer-d4-log "$HERE"; }
# redis-server moves into its dir, ./db/.
redis_pid() { pid_from "$REDIS_PIDFILE" redis-server "$HERE/db"; }

# wait_gone PID NAME CWD SECONDS: true once the process has exited.
wait_gone() {
	local deadline=$((SECONDS + $4))
	while is_running "$1" "$2" "$3"; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

# wait_port_closed SECONDS: true once nothing listens on $PORT.
wait_port_closed() {
	local deadline=$((SECONDS + $1))
	while port_open; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

# redis_version_at_least MAJOR MINOR
redis_version_at_least() {
	local v
	v=$(redis-server --version 2>/dev/null | sed -n 's/.* v=\([0-9]*\.[0-9]*\).*/\1/p')
	[ -n "$v" ] || return 0
	[ "$(printf '%s\n%s\n' "$1.$2" "$v" | sort -V | head -n 1)" = "$1.$2" ]
}

# The two window programs. Each stays in its window after the program ends
# (an interactive shell takes over) so the operator can read why it ended.
window_redis() {
	local extra=()
	if ! redis_version_at_least 6 2; then
		# Before 6.2, "-::1" in redis.conf is not an optional address but
		# a host name that fails to resolve.
		echo "note: this redis-server is older than 6.2; listening on 127.0.0.1 only"
		extra=(--bind 127.0.0.1)
	fi
	local rc=0
	(
		echo "$BASHPID" >"$REDIS_PIDFILE"
		exec redis-server ./redis.conf --port "$PORT" "${extra[@]}"
	) || rc=$?
	echo
	echo "redis-server exited with status $rc. Stop the session with ./launch_server.sh -k"
	exec bash
}

window_ingester() {
	local rc=0
	(
		# The PID file lets "-k" signal exactly this process: exec keeps
		# the subshell's PID.
		echo "$BASHPID" >"$DAEMON_PIDFILE"
		exec ./analyzer-d4-log -c "$CONF"
	) || rc=$?
	echo
	echo "analyzer-d4-log exited with status $rc (its log: analyzer-d4-log.log). Stop the session with ./launch_server.sh -k"
	exec bash
}

check_parsers_port() {
	local want
	want=$(sed -n '1s/^[^:]*:\([0-9]*\)\/.*$/\1/p' "$CONF/redis_parsers" 2>/dev/null || true)
	if [ -n "$want" ] && [ "$want" != "$PORT" ]; then
		echo "warning: $CONF/redis_parsers names port $want, but the counting Redis listens on $PORT" >&2
	fi
}

# check_conf refuses a configuration directory the daemon could not use.
check_conf() {
	# The directory travels to the screen window as an argument, through
	# screen's command parser: only plain path characters pass unchanged.
	[[ $CONF =~ ^[A-Za-z0-9._/-]+$ ]] || die "-c \"$CONF\": use a directory path of letters, digits and . _ / - only"
	[ -d "$CONF" ] || die "the configuration directory $CONF does not exist: run ./install_server.sh (it creates conf/ from conf.sample/)"
}

# say_conf tells which configuration directory runs, and why.
say_conf() {
	if [ "$CONF_GIVEN" = 0 ] && [ "$CONF" = conf.sample ]; then
		echo "conf/ does not exist: using conf.sample/, the shipped reference (./install_server.sh creates conf/ from it; edit conf/)"
	fi
}

# start_ingester opens the window alog-ingester in session $1 and checks
# that the daemon stays up.
start_ingester() {
	local id=$1 deadline pid
	echo "starting window alog-ingester: ./analyzer-d4-log -c $CONF (log: analyzer-d4-log.log)"
	rm -f "$DAEMON_PIDFILE"
	# Arguments given to a running session pass through screen's command
	# parser, which expands $VARIABLES: so the window runs this script
	# rather than an inline shell command (and -c DIR is restricted to
	# plain path characters).
	screen -S "$id" -X screen -t alog-ingester ./launch_server.sh -c "$CONF" --window ingester
	deadline=$((SECONDS + 5))
	until [ -s "$DAEMON_PIDFILE" ]; do
		((SECONDS < deadline)) || die "the window alog-ingester did not start: see screen -r $SESSION, then ./launch_server.sh -k"
		sleep 0.1
	done
	# A bad configuration ends the daemon at once: say so here rather than
	# leave the operator to find out later.
	sleep 1
	pid=$(daemon_pid)
	[ -n "$pid" ] || die "analyzer-d4-log exited right after starting: see why in its window (screen -r $SESSION -p alog-ingester) or in analyzer-d4-log.log; then ./launch_server.sh -k"
	echo "running: screen session $SESSION ($id), analyzer-d4-log PID $pid"
	echo "Look at it with: screen -r $SESSION; stop it with: ./launch_server.sh -k"
}

start() {
	[ -x ./analyzer-d4-log ] || die "./analyzer-d4-log is missing: run ./install_server.sh first (it builds it)"
	local cmd
	for cmd in screen redis-server redis-cli; do
		have "$cmd" || die "$cmd is not installed: run ./install_server.sh first (it installs redis-server and screen)"
	done
	screen -wipe >/dev/null 2>&1 || true

	local id dir
	say_conf
	id=$(session_id)
	if [ -n "$id" ]; then
		dir=$(session_dir "$id")
		if [ -n "$dir" ] && [ "$dir" != "$HERE" ]; then
			die "a screen session named $SESSION ($id) already runs, started from $dir: stop it there, or name ours with ALOG_SESSION"
		fi
		if [ -z "$(daemon_pid)" ] && our_redis; then
			# After -s (or a daemon that ended): the counting Redis runs,
			# the daemon does not; start it alone.
			echo "screen session $SESSION is running ($id) with the counting Redis, but not analyzer-d4-log: starting it"
			check_conf
			close_ingester_window
			start_ingester "$id"
			return 0
		fi
		echo "launch_server.sh: screen session $SESSION is already running ($id); nothing started."
		echo "Look at it with: screen -r $SESSION; stop it with: ./launch_server.sh -k"
		exit 0
	fi
	if port_open; then
		if our_redis; then
			die "the counting Redis of this directory already runs on port $PORT, outside the screen session: stop it with ./launch_server.sh -k, then launch again"
		fi
		die "port $PORT is in use by another program: stop it, or give the counting Redis another port in redis.conf and conf.sample/redis_parsers"
	fi
	local pid
	pid=$(daemon_pid)
	[ -z "$pid" ] || die "analyzer-d4-log already runs from this directory (PID $pid), outside the screen session: stop it with ./launch_server.sh -k, then launch again"
	check_conf
	check_parsers_port
	mkdir -p db

	echo "starting screen session $SESSION, window alog-redis: redis-server ./redis.conf (port $PORT)"
	rm -f "$REDIS_PIDFILE"
	screen -dmS "$SESSION" -t alog-redis ./launch_server.sh --window redis
	local deadline=$((SECONDS + 5))
	until id=$(session_id) && [ -n "$id" ]; do
		((SECONDS < deadline)) || die "screen did not start the session $SESSION"
		sleep 0.1
	done

	echo "waiting up to ${WAIT_SECONDS} s for the counting Redis to answer on port $PORT"
	deadline=$((SECONDS + WAIT_SECONDS))
	local rpid="" answer loading=0
	until answer=$(rcli ping) && [ "$answer" = PONG ]; do
		[ -n "$rpid" ] || read -r rpid 2>/dev/null <"$REDIS_PIDFILE" || true
		if [[ $rpid =~ ^[0-9]+$ ]] && ! kill -0 "$rpid" 2>/dev/null; then
			die "redis-server exited at start: see why in its window (screen -r $SESSION -p alog-redis), then ./launch_server.sh -k and launch again"
		fi
		if [[ $answer == LOADING* ]]; then
			# Reading a large AOF takes as long as it takes; the daemon
			# must not start before it is done.
			((loading)) || echo "the counting Redis is loading its data from db/; waiting until it is done"
			loading=1
			deadline=$((SECONDS + WAIT_SECONDS))
		fi
		if ((SECONDS >= deadline)); then
			die "the counting Redis did not answer PING on port $PORT within ${WAIT_SECONDS} s: see why in its window (screen -r $SESSION -p alog-redis), then ./launch_server.sh -k and launch again"
		fi
		sleep 0.2
	done
	our_redis || die "the Redis answering on port $PORT is not the one started from this directory (its dir is not $HERE/db): stop it with ./launch_server.sh -k and check redis.conf"

	start_ingester "$id"
}

# stop_daemon stops analyzer-d4-log alone; false when it does not stop.
stop_daemon() {
	local failed=0 pid
	pid=$(daemon_pid)
	if [ -n "$pid" ]; then
		echo "stopping analyzer-d4-log (PID $pid): SIGTERM, waiting up to ${WAIT_SECONDS} s for it to finish its batch"
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_gone "$pid" analyzer-d4-log "$HERE" "$WAIT_SECONDS"; then
			# A second signal makes the daemon exit without finishing; the
			# batch it held stays in its processing list and is counted at
			# the next start.
			echo "warning: analyzer-d4-log did not exit within ${WAIT_SECONDS} s; sending a second SIGTERM" >&2
			kill -TERM "$pid" 2>/dev/null || true
			if ! wait_gone "$pid" analyzer-d4-log "$HERE" 5; then
				echo "warning: analyzer-d4-log still runs; sending SIGKILL" >&2
				kill -KILL "$pid" 2>/dev/null || true
				wait_gone "$pid" analyzer-d4-log "$HERE" 5 || {
					echo "launch_server.sh: analyzer-d4-log (PID $pid) does not stop" >&2
					failed=1
				}
			fi
		fi
		[ "$failed" = 1 ] || echo "analyzer-d4-log stopped"
	else
		echo "analyzer-d4-log is not running"
	fi
	[ "$failed" = 1 ] && return 1
	rm -f "$DAEMON_PIDFILE"
	return 0
}

# close_ingester_window closes the window alog-ingester, whose shell only
# says how the stopped daemon ended, so a restart does not add a second one.
close_ingester_window() {
	local id
	id=$(session_id)
	[ -n "$id" ] || return 0
	[ "$(session_dir "$id")" = "$HERE" ] || return 0
	screen -S "$id" -p alog-ingester -X kill >/dev/null 2>&1 || true
}

# stop_only_daemon is -s.
stop_only_daemon() {
	stop_daemon || return 1
	close_ingester_window
	if our_redis; then
		echo "the counting Redis keeps running on port $PORT; start the daemon again with ./launch_server.sh"
	fi
}

# rebuild is -F: daemon stopped, counting Redis kept, flush, daemon again.
rebuild() {
	[ -x ./analyzer-d4-log ] || die "./analyzer-d4-log is missing: run ./install_server.sh first (it builds it)"
	check_conf
	say_conf
	our_redis || die "the counting Redis of this directory does not answer on port $PORT: start everything with ./launch_server.sh, then run ./launch_server.sh -F"
	local id
	id=$(session_id)
	if [ -z "$id" ] || [ "$(session_dir "$id")" != "$HERE" ]; then
		die "no screen session $SESSION of this directory runs the counting Redis (started otherwise, by systemd?): stop the daemon there, run ./analyzer-d4-log -c $CONF -F, start it again"
	fi
	stop_daemon || die "analyzer-d4-log does not stop; nothing rebuilt"
	close_ingester_window
	echo "rebuilding: ./analyzer-d4-log -c $CONF -F (the counting Redis keeps running; progress below and in analyzer-d4-log.log)"
	local rc=0
	./analyzer-d4-log -c "$CONF" -F || rc=$?
	if [ "$rc" != 0 ]; then
		die "the rebuild failed (exit status $rc, see above); the daemon stays stopped: fix the cause and run ./launch_server.sh -F again, or ./launch_server.sh to start the daemon without it"
	fi
	echo "rebuild done; starting the daemon again"
	start_ingester "$id"
}

stop() {
	local failed=0 id dir
	stop_daemon || failed=1

	if our_redis; then
		echo "stopping the counting Redis on port $PORT: SHUTDOWN (it saves db/ first)"
		local out
		# SHUTDOWN answers once the snapshot is written, which for a large
		# data set takes a while: no tight limit here.
		out=$(timeout "$REDIS_SAVE_SECONDS" redis-cli -h 127.0.0.1 -p "$PORT" shutdown 2>&1 || true)
		if [[ $out == *ERR* ]]; then
			echo "launch_server.sh: the counting Redis refused to shut down: $out (its window tells why)" >&2
			failed=1
		elif ! wait_port_closed "$WAIT_SECONDS"; then
			echo "launch_server.sh: the counting Redis on port $PORT did not shut down: ${out:-no answer}" >&2
			failed=1
		else
			pid=$(redis_pid)
			[ -z "$pid" ] || wait_gone "$pid" redis-server "$HERE/db" 10 || true
			echo "counting Redis stopped"
		fi
	elif port_open; then
		echo "port $PORT is held by another program than this directory's counting Redis: left alone"
	else
		echo "the counting Redis is not running"
	fi
	[ "$failed" = 1 ] || rm -f "$REDIS_PIDFILE"

	if [ "$failed" = 1 ]; then
		# Ending the session would hide the windows that say what went wrong.
		echo "launch_server.sh: screen session $SESSION left running so that its windows show what went wrong: screen -r $SESSION" >&2
		return 1
	fi

	id=$(session_id)
	if [ -n "$id" ]; then
		dir=$(session_dir "$id")
		if [ -n "$dir" ] && [ "$dir" != "$HERE" ]; then
			echo "the screen session $SESSION ($id) was started from $dir, not here: left alone"
		else
			screen -S "$id" -X quit >/dev/null 2>&1 || true
			local deadline=$((SECONDS + 5))
			while [ -n "$(session_id)" ] && ((SECONDS < deadline)); do
				sleep 0.1
			done
			echo "screen session $SESSION ended"
		fi
	else
		echo "no screen session $SESSION"
	fi
	return 0
}

CONF=$(conf_dir_default)
CONF_GIVEN=0
action=start
window=""
while [ $# -gt 0 ]; do
	case "$1" in
	-c)
		[ $# -ge 2 ] || die "-c needs a configuration directory"
		CONF=$2 CONF_GIVEN=1
		shift 2
		;;
	-k) action=stop && shift ;;
	-s) action=stop_only_daemon && shift ;;
	-F) action=rebuild && shift ;;
	-h | --help)
		usage
		exit 0
		;;
	--window)
		# Internal: what the screen windows run.
		action=window window=${2:-}
		shift $(($# >= 2 ? 2 : 1))
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
done

case "$action" in
start) start ;;
stop) stop ;;
stop_only_daemon) stop_only_daemon ;;
rebuild) rebuild ;;
window)
	case "$window" in
	redis) window_redis ;;
	ingester) check_conf && window_ingester ;;
	*) die "--window wants redis or ingester" ;;
	esac
	;;
esac
