#!/bin/sh
# powerhive-healthcheck DAEMON CONFIG — the health check of each container
# of docker-compose.yml (installed in the image as
# /usr/local/bin/powerhive-healthcheck). Exit 0 when healthy; otherwise
# exit 1 with one line saying why, which `docker inspect` keeps.
#
# apid: GET /api/live answers 200: apid's HTTP server answers and the
#   database takes writes (no write refused within health.failing_seconds,
#   the disk under it not full). No token: /api/live needs none and says
#   nothing but that; GET /api/health (with the token) says why.
# pollerd, telemetryd, discoverd: the state file the daemon rewrites with
#   each heartbeat (<health.state_dir>/<daemon>.state, docs/operations.md):
#   its process runs, its last beat is under three heartbeats old, and each
#   bus socket it lists (bus.events and the job queues) is connected to
#   apid. A worker that lost apid redials quietly; this is where it shows.
#   A daemon stopped on purpose removes the file.
# https: GET /api/live through stunnel answers 200: stunnel accepts TLS on
#   its accept address (CONFIG is its stunnel config) and reaches apid. The
#   certificate is not verified here (-k): the check runs on the container's
#   own address, not the name the certificate is for; clients verify it.
#
# Values are read from the config's "key": "value" lines (the shipped files
# have one key per line); POWERHIVE_HTTP_ADDR wins over the file, as it
# does for apid.
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

check_apid() {
	addr=${POWERHIVE_HTTP_ADDR:-$(cfg addr)}
	host=${addr%:*}
	port=${addr##*:}
	case $host in
	'' | 0.0.0.0) host=127.0.0.1 ;;
	'[::]') host='[::1]' ;;
	esac
	body=$(curl -sS --max-time 4 -w ' HTTP %{http_code}' "http://$host:$port/api/live" 2>&1)
	case $body in
	*' HTTP 200') echo "apid: ok" ;;
	*) fail "GET http://$host:$port/api/live: $body" ;;
	esac
}

# The value of the line "KEY VALUE" of the state file $state.
state_value() {
	sed -n "s/^$1 //p" "$state" | head -n 1
}

check_worker() {
	[ -r "$config" ] || fail "cannot read $config"
	dir=$(cfg state_dir)
	[ -n "$dir" ] || fail "no health.state_dir in $config: the daemon writes no state file"
	state=$dir/$daemon.state
	[ -r "$state" ] || fail "no $state: not started yet, or stopped"
	pid=$(state_value pid)
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || fail "not running (pid ${pid:-?} of $state)"
	beat=$(state_value beat_ms)
	every=$(state_value heartbeat_seconds)
	age=$(($(date +%s%3N) - ${beat:-0}))
	[ "$age" -lt $((3 * ${every:-5} * 1000 + 1000)) ] ||
		fail "no heartbeat for $((age / 1000)) s (every ${every:-?} s; $state)"
	links=$(sed -n 's/^bus\.\([a-z_]*\) \([0-9]*\)$/\1=\2/p' "$state")
	[ -n "$links" ] || fail "$state lists no bus socket"
	for l in $links; do
		[ "${l#*=}" -gt 0 ] || fail "not connected to apid's bus.${l%=*} ($(cfg "${l%=*}"))"
	done
	echo "$daemon: ok, connected to apid"
}

check_https() {
	[ -r "$config" ] || fail "cannot read $config"
	accept=$(sed -n 's/^accept[[:space:]]*=[[:space:]]*//p' "$config" | head -n 1)
	case $accept in
	'') fail "no accept line in $config" ;;
	*:*) host=${accept%:*} port=${accept##*:} ;;
	*) host=127.0.0.1 port=$accept ;;
	esac
	body=$(curl -ksS --max-time 4 -w ' HTTP %{http_code}' "https://$host:$port/api/live" 2>&1)
	case $body in
	*' HTTP 200') echo "https: ok" ;;
	*) fail "GET https://$host:$port/api/live: $body" ;;
	esac
}

case $daemon in
apid) check_apid ;;
https) check_https ;;
pollerd | telemetryd | discoverd) check_worker ;;
*)
	echo "usage: powerhive-healthcheck apid|discoverd|pollerd|telemetryd|https [CONFIG]" >&2
	exit 2
	;;
esac
