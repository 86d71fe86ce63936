#!/bin/sh
# powerhive-healthcheck DAEMON CONFIG — the health check of each container
# of docker-compose.yml (installed in the image as
# /usr/local/bin/powerhive-healthcheck). Exit 0 when healthy; otherwise
# exit 1 with one line saying why, which `docker inspect` keeps.
#
# apid: GET /api/health answers 200 with the API token, and the database
#   takes writes: neither database.commit_failures nor the events rejected
#   with "database error" grew in the last POWERHIVE_HEALTH_WINDOW seconds
#   (default 30). Both are apid's own counters; the window is there because
#   a write lock held by another process fails writes one busy timeout
#   (5 s) apart, and apid's "status" does not count those rejections.
# pollerd, telemetryd: the daemon runs in this container and holds an
#   established connection to apid's bus: its job queue
#   (bus.jobs_status, bus.jobs_telemetry) and bus.events — for tcp:// and
#   tls+tcp:// one to each port; for ipc:// (the shipped compose configs)
#   at least as many Unix connections as endpoints checked. A worker that
#   lost apid redials quietly; this is where it shows.
# discoverd: the same with bus.events.
#
# Values are read from the config's "key": "value" lines (the shipped files
# have one key per line); POWERHIVE_HTTP_ADDR and POWERHIVE_API_TOKEN win
# over the file, as they do for the daemons. The state of the apid check
# (counters and when they last grew) is kept in /tmp.
set -u
daemon=${1:-}
config=${2:-${POWERHIVE_CONFIG:-/etc/powerhive/powerhive.json}}

fail() {
	echo "$daemon: $*"
	exit 1
}

# The first "KEY": "string" of the config.
cfg() {
	grep -o "\"$1\"[[:space:]]*:[[:space:]]*\"[^\"]*\"" "$config" | head -n 1 |
		sed 's/.*:[[:space:]]*"\(.*\)"$/\1/'
}

# The number after the first "KEY": of a JSON text (0 when none).
num() {
	n=$(printf '%s' "$2" | grep -o "\"$1\":[0-9]*" | head -n 1)
	echo "${n##*:}" | sed 's/^$/0/'
}

# The pid of the process named $1 in this container: same mount namespace
# as this check (with pid: host every container's processes are visible).
# Builtins only in the loop: one fork per process is seconds on a busy host.
own_pid() {
	me=$(readlink /proc/self/ns/mnt)
	for d in /proc/[0-9]*; do
		comm=
		read -r comm 2>/dev/null <"$d/comm" || continue
		[ "$comm" = "$1" ] || continue
		[ "$(readlink "$d/ns/mnt" 2>/dev/null)" = "$me" ] || continue
		echo "${d#/proc/}"
		return 0
	done
	return 1
}

# Whether process $1 has an established TCP connection to remote port $2.
# ss asks the kernel for just those sockets (netlink): /proc/net/tcp lists
# every socket of the namespace, and in the host's network on a busy host
# that is 100,000s of lines (1.8 s to read on the test machine).
connected() {
	inodes=" $(ls -l "/proc/$1/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p' | tr '\n' ' ') "
	for ino in $(ss -Htne state established "( dport = :$2 )" 2>/dev/null | grep -o 'ino:[0-9]*'); do
		case $inodes in
		*" ${ino#ino:} "*) return 0 ;;
		esac
	done
	return 1
}

# How many established Unix connections process $1 holds to another
# process: an ipc:// bus
# endpoint's dialer side carries no path, and apid's side may be in another
# container's network namespace (discoverd's is the host's), where ss cannot
# see it, so the connections are counted instead of matched by path.
ipc_connections() {
	inodes=" $(ls -l "/proc/$1/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p' | tr '\n' ' ') "
	n=0
	# "local-inode:peer-inode"; a pair inside the process (socketpair) is
	# not a connection to apid.
	for pair in $(ss -Hxn state established 2>/dev/null | awk '$7 != 0 { print $5 ":" $7 }'); do
		case $inodes in
		*" ${pair%:*} "*)
			case $inodes in
			*" ${pair#*:} "*) ;;
			*) n=$((n + 1)) ;;
			esac
			;;
		esac
	done
	echo "$n"
}

check_apid() {
	addr=${POWERHIVE_HTTP_ADDR:-$(cfg addr)}
	host=${addr%:*}
	port=${addr##*:}
	case $host in
	'' | 0.0.0.0) host=127.0.0.1 ;;
	'[::]') host='[::1]' ;;
	esac
	token=${POWERHIVE_API_TOKEN:-}
	if [ -z "$token" ]; then
		file=$(cfg token_file)
		token=$(cat "${file:-/var/lib/powerhive/api-token}" 2>/dev/null) ||
			fail "no API token yet (${file:-/var/lib/powerhive/api-token})"
	fi
	# The header from stdin: the token stays out of the process list.
	body=$(printf 'Authorization: Bearer %s\n' "$token" |
		curl -fsS --max-time 4 -H @- "http://$host:$port/api/health" 2>&1) ||
		fail "GET http://$host:$port/api/health: $body"
	started=$(num started_ms "$body")
	failures=$(($(num commit_failures "$body") + $(num 'database error' "$body")))
	now=$(date +%s)
	state=/tmp/powerhive-healthcheck.apid
	last_started='' last_failures=0 grew_at=0
	[ -r "$state" ] && read -r last_started last_failures grew_at <"$state"
	if [ "$last_started" = "$started" ] && [ "$failures" -gt "$last_failures" ]; then
		grew_at=$now
	elif [ "$last_started" != "$started" ]; then
		grew_at=0         # another apid: its counters start again
	fi
	echo "$started $failures $grew_at" >"$state"
	window=${POWERHIVE_HEALTH_WINDOW:-30}
	if [ $((now - grew_at)) -lt "$window" ]; then
		fail "database writes failing: $failures failed commits or events rejected with \"database error\", the last $((now - grew_at)) s ago"
	fi
	echo "apid: ok"
}

check_worker() {
	[ -r "$config" ] || fail "cannot read $config"
	pid=$(own_pid "$daemon") || fail "not running"
	ipc=0
	for key in "$@"; do
		url=$(cfg "$key")
		[ -n "$url" ] || fail "no bus.$key in $config"
		case $url in
		ipc://*)
			ipc=$((ipc + 1))
			continue
			;;
		esac
		port=${url##*:}
		connected "$pid" "$port" || fail "not connected to apid's bus.$key ($url)"
	done
	if [ "$ipc" -gt 0 ]; then
		have=$(ipc_connections "$pid")
		[ "$have" -ge "$ipc" ] ||
			fail "not connected to apid's bus: $have of the $ipc ipc:// endpoints ($*)"
	fi
	echo "$daemon: ok, connected to apid"
}

case $daemon in
apid) check_apid ;;
pollerd) check_worker jobs_status events ;;
telemetryd) check_worker jobs_telemetry events ;;
discoverd) check_worker events ;;
*)
	echo "usage: powerhive-healthcheck apid|discoverd|pollerd|telemetryd [CONFIG]" >&2
	exit 2
	;;
esac
