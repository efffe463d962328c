#!/bin/sh
# Starts the counting Redis master, its replica and three Sentinels from
# contrib/ha on one machine, for trying high availability out (README "High
# availability"). In production each runs on its own machine.
set -e
cd "$(dirname "$0")/../.."
mkdir -p ha-master ha-replica
redis-server contrib/ha/master.conf --daemonize yes --logfile "$PWD/ha-master/redis.log"
redis-server contrib/ha/replica.conf --daemonize yes --logfile "$PWD/ha-replica/redis.log"
for i in 1 2 3; do
	[ -f ha-sentinel-$i.conf ] || cp contrib/ha/sentinel-$i.conf ha-sentinel-$i.conf
	redis-server ha-sentinel-$i.conf --sentinel --daemonize yes --logfile "$PWD/ha-sentinel-$i.log"
done
echo "master 127.0.0.1:6500, replica 127.0.0.1:6501, sentinels 26379-26381; put contrib/ha/redis_parsers in conf/ and min_replicas = 1 in conf/analyzer.toml"
