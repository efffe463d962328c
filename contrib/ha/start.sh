#!/bin/sh
# Starts the counting Redis master, its replica and three Sentinels from
# contrib/ha on one machine, for trying high availability out (README "High
# availability"). In production each runs on its own machine.
#
#   contrib/ha/start.sh            all five
#   contrib/ha/start.sh master     the master alone: an old master brought
#                                  back after a failover (the Sentinels then
#                                  make it a replica of the new one)
#   contrib/ha/stop.sh             stops what is running
#
# Environment, for running beside other Redis servers or for a quick try:
#   HA_PORT_OFFSET    added to every port of the files (default 0: master 6500,
#                     replica 6501, Sentinels 26379-26381)
#   HA_DOWN_AFTER_MS  the Sentinels' down-after-milliseconds (default: the
#                     files' 5000)
# Both apply when a Sentinel's working copy (ha-sentinel-N.conf, which
# Sentinel rewrites as it learns) is first made: delete the copies to change
# them.
#
# Everything is written under the repository root: ha-master/, ha-replica/,
# ha-sentinel-N.conf and their logs and pid files.
set -e
usage="usage: contrib/ha/start.sh [all|master]"
what=${1:-all}
case $what in
all | master) ;;
-h | --help)
	echo "$usage"
	exit 0
	;;
*)
	echo "$usage" >&2
	exit 2
	;;
esac
off=${HA_PORT_OFFSET:-0}
case $off in
'' | *[!0-9]*)
	echo "contrib/ha/start.sh: HA_PORT_OFFSET=$off is not a whole number; want 0-39000" >&2
	exit 2
	;;
esac
if [ "$off" -gt 39000 ]; then
	echo "contrib/ha/start.sh: HA_PORT_OFFSET=$off is too large: ports would pass 65535; want 0-39000" >&2
	exit 2
fi
down=${HA_DOWN_AFTER_MS:-}
case $down in
*[!0-9]*)
	echo "contrib/ha/start.sh: HA_DOWN_AFTER_MS=$down is not a whole number of milliseconds; want 100 or more" >&2
	exit 2
	;;
esac
if [ -n "$down" ] && [ "$down" -lt 100 ]; then
	echo "contrib/ha/start.sh: HA_DOWN_AFTER_MS=$down is too short; want 100 or more" >&2
	exit 2
fi
downexpr=""
if [ -n "$down" ]; then
	downexpr="s/^\(sentinel down-after-milliseconds counting\) .*/\1 $down/"
fi
cd "$(dirname "$0")/../.."
master=$((6500 + off))
replica=$((6501 + off))

# up PORT LOG: wait until the server on PORT answers (a daemonized
# redis-server that cannot bind its port exits after the fork, with status 0).
up() {
	n=0
	until redis-cli -h 127.0.0.1 -p "$1" ping >/dev/null 2>&1; do
		n=$((n + 1))
		if [ "$n" -ge 100 ]; then
			echo "contrib/ha/start.sh: nothing answers on 127.0.0.1:$1 after 10 s; see $2" >&2
			tail -n 5 "$2" >&2 || true
			exit 1
		fi
		sleep 0.1
	done
}

mkdir -p ha-master
redis-server contrib/ha/master.conf --port "$master" --daemonize yes \
	--pidfile "$PWD/ha-master/redis.pid" --logfile "$PWD/ha-master/redis.log"
up "$master" ha-master/redis.log
[ "$what" = master ] && exit 0

mkdir -p ha-replica
redis-server contrib/ha/replica.conf --port "$replica" --replicaof 127.0.0.1 "$master" --daemonize yes \
	--pidfile "$PWD/ha-replica/redis.pid" --logfile "$PWD/ha-replica/redis.log"
up "$replica" ha-replica/redis.log
sentinels=""
for i in 1 2 3; do
	port=$((26378 + i + off))
	if [ ! -f "ha-sentinel-$i.conf" ]; then
		sed -e "s/^port .*/port $port/" \
			-e "s/^\(sentinel monitor counting [^ ]*\) 6500 /\1 $master /" \
			-e "$downexpr" \
			"contrib/ha/sentinel-$i.conf" >"ha-sentinel-$i.conf"
	fi
	redis-server "ha-sentinel-$i.conf" --sentinel --daemonize yes \
		--pidfile "$PWD/ha-sentinel-$i.pid" --logfile "$PWD/ha-sentinel-$i.log"
	up "$port" "ha-sentinel-$i.log"
	sentinels="$sentinels${sentinels:+,}127.0.0.1:$port"
done
echo "master 127.0.0.1:$master, replica 127.0.0.1:$replica, sentinels $sentinels"
echo "conf/redis_parsers: sentinel://$sentinels/counting/16 (contrib/ha/redis_parsers when HA_PORT_OFFSET is 0); conf/analyzer.toml: min_replicas = 1"
