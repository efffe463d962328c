#!/usr/bin/env bash
# Sets up analyzer-d4-log on a Debian or Ubuntu machine: redis-server and
# screen from apt, the binary ./analyzer-d4-log built from this checkout,
# and db/ for the counting Redis. Running it again changes only what is
# missing or out of date.
set -Eeuo pipefail

STEP="start"
on_error() {
	local rc=$?
	echo "install_server.sh: failed during step \"$STEP\" (exit status $rc)" >&2
	exit "$rc"
}
trap on_error ERR

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
HERE=$(pwd -P)

PACKAGES=(redis-server screen)
GO_TARBALL_DIR=/usr/local/go
SERVICE_USER_DEFAULT=alog

usage() {
	cat <<EOF
Usage: ./install_server.sh [--no-packages] [--systemd] [-h]

Prepares this checkout to run analyzer-d4-log with ./launch_server.sh:
  1. installs the Debian packages ${PACKAGES[*]} with apt-get (as root, or
     through sudo), running apt-get update only when one is missing;
  2. checks that the counting Redis port (redis.conf, 6500) is free or
     already held by this checkout's counting Redis;
  3. checks for a Go toolchain as new as go.mod asks (on PATH, or in
     $GO_TARBALL_DIR/bin), and says what to install when there is none;
  4. builds ./analyzer-d4-log;
  5. creates db/, where the counting Redis keeps its data;
  6. creates conf/ from conf.sample/ when conf/ does not exist (never
     overwrites it): edit conf/, which git ignores; conf.sample/ is the
     shipped reference.
Nothing is built from source but analyzer-d4-log itself. Safe to run again.

  --no-packages  skip step 1, for machines whose packages are managed otherwise
  --systemd      also (as root): create the system user $SERVICE_USER_DEFAULT if missing, give
                 it db/, data/, archive/ and the log file, and install the units of
                 contrib/systemd/ (the counting Redis and the daemon, enabled,
                 not started) and contrib/logrotate/ with this checkout's path;
                 screen (./launch_server.sh) stays the default otherwise
  -h, --help     this help

Environment: GO names the go command to use instead of searching for one;
ALOG_USER the service user of --systemd (default $SERVICE_USER_DEFAULT);
ALOG_SYSTEMD_DIR and ALOG_LOGROTATE_DIR where --systemd writes
(default /etc/systemd/system and /etc/logrotate.d).
EOF
}

die() {
	echo "install_server.sh: $*" >&2
	exit 1
}

step() {
	STEP=$1
	echo "==> $1"
}

have() { command -v "$1" >/dev/null 2>&1; }

with_packages=1
with_systemd=0
for arg in "$@"; do
	case "$arg" in
	--no-packages) with_packages=0 ;;
	--systemd) with_systemd=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "install_server.sh: unknown option \"$arg\"" >&2
		usage >&2
		exit 2
		;;
	esac
done

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif have sudo; then
		sudo "$@"
	else
		die "installing packages needs root: run this script as root, or install sudo, or install ${PACKAGES[*]} yourself and run it with --no-packages"
	fi
}

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

if [ "$with_packages" = 1 ]; then
	step "packages: ${PACKAGES[*]}"
	if ! have apt-get || ! have dpkg-query; then
		die "apt-get not found: this script installs packages on Debian or Ubuntu only; install ${PACKAGES[*]} yourself and run it again with --no-packages"
	fi
	missing=()
	for pkg in "${PACKAGES[@]}"; do
		if installed "$pkg"; then
			echo "$pkg is installed"
		else
			missing+=("$pkg")
		fi
	done
	if [ "${#missing[@]}" -gt 0 ]; then
		echo "installing ${missing[*]}"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
	fi
	echo "note: the redis-server package also runs a system-wide Redis service on port 6379; it is left alone."
	echo "      analyzer-d4-log's counting Redis is a separate instance (redis.conf, port 6500) that ./launch_server.sh starts."
else
	step "packages: skipped (--no-packages)"
	for cmd in redis-server redis-cli screen; do
		have "$cmd" || echo "warning: $cmd is not on PATH; ./launch_server.sh needs it" >&2
	done
fi

step "counting Redis port"
port=$(awk '$1 == "port" { p = $2 } END { print p }' redis.conf)
port=${port:-6500}
if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	echo "port $port is free for the counting Redis"
else
	pong="" dir=""
	if have redis-cli; then
		pong=$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)
		if [ "$pong" = PONG ]; then
			dir=$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" --raw config get dir 2>/dev/null | sed -n 2p || true)
		fi
	fi
	if [ "$pong" = PONG ] && [ "$dir" = "$HERE/db" ]; then
		echo "port $port is held by this checkout's counting Redis, already running: fine"
	elif [ "$pong" = PONG ]; then
		echo "warning: port $port is held by another Redis (its data directory: ${dir:-unknown});" >&2
		echo "         ./launch_server.sh cannot start the counting Redis until it stops, or until redis.conf and conf/redis_parsers name another port" >&2
	else
		echo "warning: port $port is in use by another program; ./launch_server.sh cannot start the counting Redis until it stops," >&2
		echo "         or until redis.conf and conf/redis_parsers name another port" >&2
	fi
fi

step "Go toolchain"
need=$(awk '$1 == "go" { print $2; exit }' go.mod)
[ -n "$need" ] || die "go.mod has no go line"

# version_of GO prints the bare version of a go command, like 1.26.8.
# It runs outside this module, whose go line would make an older go refuse
# to answer; GOTOOLCHAIN=local reports (and later builds with) this
# toolchain itself rather than one it would try to download.
version_of() {
	(cd / && GOTOOLCHAIN=local GOWORK=off "$1" version 2>/dev/null) | grep -oE '[0-9]+(\.[0-9]+)+' | head -n 1 || true
}

# at_least HAVE NEED, dotted versions.
at_least() {
	[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

candidates=()
if [ -n "${GO:-}" ]; then
	candidates=("$GO")
else
	if have go; then
		candidates+=("$(command -v go)")
	fi
	if [ -x "$GO_TARBALL_DIR/bin/go" ]; then
		candidates+=("$GO_TARBALL_DIR/bin/go")
	fi
fi
go=""
found=()
for c in "${candidates[@]}"; do
	v=$(version_of "$c")
	found+=("$c (${v:-version unknown})")
	if [ -n "$v" ] && at_least "$v" "$need"; then
		go=$c
		echo "using $c, Go $v (go.mod asks for $need or newer)"
		break
	fi
done
if [ -z "$go" ]; then
	case "$(uname -m)" in
	x86_64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	armv6l | armv7l) arch=armv6l ;;
	i?86) arch=386 ;;
	*) arch="<arch>" ;;
	esac
	if [ "${#found[@]}" -gt 0 ]; then
		seen="found only: ${found[*]}"
	else
		seen="none found on PATH nor in $GO_TARBALL_DIR/bin"
	fi
	cat >&2 <<EOF
install_server.sh: building analyzer-d4-log needs Go $need or newer (the go line of go.mod); $seen.
The golang-go package of Debian and Ubuntu is older (Debian 12 has 1.19). Install Go from the official tarball:
  1. download go$need.linux-$arch.tar.gz, or the newest go${need%.*}.x, from https://go.dev/dl/
  2. as root: rm -rf $GO_TARBALL_DIR && tar -C ${GO_TARBALL_DIR%/*} -xzf go$need.linux-$arch.tar.gz
  3. add this line to ~/.profile (and run it in this shell):
       export PATH=$GO_TARBALL_DIR/bin:\$PATH
Then run ./install_server.sh again.
EOF
	exit 1
fi

step "build ./analyzer-d4-log"
# Build beside the binary and replace it only when it differs: a second
# run then changes nothing, and a daemon that is running keeps its file
# until the rename.
fresh=analyzer-d4-log.new
trap 'rm -f "$fresh"' EXIT
build() { GOTOOLCHAIN=local "$go" build "$@" -o "$fresh" ./cmd/analyzer-d4-log; }
if ! out=$(build 2>&1); then
	if grep -q -- '-buildvcs=false' <<<"$out"; then
		# git missing, or the checkout owned by another user: the binary
		# then reports no commit, but builds.
		echo "note: cannot read the git state of this checkout; building without version stamping"
		build -buildvcs=false
	else
		printf '%s\n' "$out" >&2
		false
	fi
elif [ -n "$out" ]; then
	printf '%s\n' "$out"
fi
if [ -f analyzer-d4-log ] && cmp -s "$fresh" analyzer-d4-log; then
	rm -f "$fresh"
	echo "./analyzer-d4-log is up to date"
else
	mv -f "$fresh" analyzer-d4-log
	echo "built ./analyzer-d4-log"
fi

step "data directory db/"
if [ -d db ]; then
	echo "db/ exists"
else
	mkdir db
	echo "created db/"
fi

step "configuration directory conf/"
if [ -d conf ]; then
	echo "conf/ exists: left as it is (compare it with conf.sample/, the shipped reference, after an upgrade)"
elif [ -d conf.sample ]; then
	cp -R conf.sample conf
	echo "created conf/ from conf.sample/: edit conf/redis_d4 and conf/redis_queue"
else
	echo "warning: conf.sample/ is missing, so conf/ was not created" >&2
fi

if [ "$with_systemd" = 1 ]; then
	step "systemd units"
	user=${ALOG_USER:-$SERVICE_USER_DEFAULT}
	unit_dir=${ALOG_SYSTEMD_DIR:-/etc/systemd/system}
	rotate_dir=${ALOG_LOGROTATE_DIR:-/etc/logrotate.d}
	[[ $HERE =~ ^/[A-Za-z0-9._/-]+$ ]] || die "the checkout path $HERE has characters a unit file cannot hold unquoted; move the checkout to a plain path like /opt/analyzer-d4-log"
	if ! id -u "$user" >/dev/null 2>&1; then
		[ "$(id -u)" -eq 0 ] || die "--systemd creates the user $user: run it as root"
		useradd --system --home-dir "$HERE" --no-create-home --shell /usr/sbin/nologin "$user"
		echo "created the system user $user"
	fi
	group=$(id -gn "$user")
	mkdir -p data db archive
	touch analyzer-d4-log.log
	chown -R "$user:$group" db data archive analyzer-d4-log.log
	echo "$user owns db/, data/, archive/ and analyzer-d4-log.log"
	# The service user must reach the checkout: a checkout under a home
	# directory closed to others cannot run as a service.
	if have runuser && [ "$(id -u)" -eq 0 ] && ! runuser -u "$user" -- test -x "$HERE/analyzer-d4-log"; then
		die "the user $user cannot run $HERE/analyzer-d4-log (a parent directory closed to others?): move the checkout, e.g. to /opt/analyzer-d4-log"
	fi
	render() { sed -e "s#/opt/analyzer-d4-log#$HERE#g" -e "s/^User=alog\$/User=$user/" -e "s/^Group=alog\$/Group=$group/" -e "s/ alog alog\$/ $user $group/" "$1"; }
	mkdir -p "$unit_dir"
	for unit in analyzer-d4-log-redis.service analyzer-d4-log.service; do
		render "contrib/systemd/$unit" >"$unit_dir/$unit"
		echo "installed $unit_dir/$unit"
	done
	if [ -d "$rotate_dir" ] || [ -n "${ALOG_LOGROTATE_DIR:-}" ]; then
		mkdir -p "$rotate_dir"
		render contrib/logrotate/analyzer-d4-log >"$rotate_dir/analyzer-d4-log"
		echo "installed $rotate_dir/analyzer-d4-log"
	else
		echo "note: $rotate_dir does not exist (logrotate not installed); contrib/logrotate/analyzer-d4-log not installed"
	fi
	if [ -d /run/systemd/system ] && [ -z "${ALOG_SYSTEMD_DIR:-}" ]; then
		systemctl daemon-reload
		systemctl enable analyzer-d4-log-redis.service analyzer-d4-log.service
		echo "enabled; start with: ./launch_server.sh -k (if the screen session runs), then systemctl start analyzer-d4-log"
	else
		echo "note: systemd is not running here (or ALOG_SYSTEMD_DIR is set): run systemctl daemon-reload and systemctl enable --now analyzer-d4-log where it runs"
	fi
fi

STEP="done"
cat <<EOF
==> done
Next: check the D4 side in conf/ (redis_d4: the D4 server's Redis; redis_queue:
the UUID of the analyzer queue created in the D4 web UI), check it with
./analyzer-d4-log -c conf -check-config, then start with ./launch_server.sh
EOF
