#!/bin/sh
# Stops what contrib/ha/start.sh started (README "High availability"): the
# Sentinels first, so that they do not fail over while the master stops,
# then the replica and the master, each with SIGTERM (the master and the
# replica write their append-only files to the end). A pid file whose
# process is gone, or is no longer a redis-server, is left alone.
set -e
cd "$(dirname "$0")/../.."

# running PID: the process exists and has not exited (a zombie has).
running() {
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$state" != Z ]
}

for f in ha-sentinel-1.pid ha-sentinel-2.pid ha-sentinel-3.pid ha-replica/redis.pid ha-master/redis.pid; do
	[ -f "$f" ] || continue
	pid=$(cat "$f")
	case $pid in
	'' | *[!0-9]*) continue ;;
	esac
	if ! running "$pid" || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != redis-server ]; then
		rm -f "$f"
		continue
	fi
	kill "$pid"
	n=0
	while running "$pid"; do
		n=$((n + 1))
		if [ "$n" -ge 300 ]; then
			echo "contrib/ha/stop.sh: redis-server $pid ($f) still runs 30 s after SIGTERM" >&2
			exit 1
		fi
		sleep 0.1
	done
	rm -f "$f"
	echo "stopped $f ($pid)"
done
