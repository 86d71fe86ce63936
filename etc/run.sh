#!/bin/sh
# etc/run.sh BIN — what `make run` starts: apid, discoverd, pollerd ×N,
# telemetryd ×M and, unless the config points at a real farm, a simulated
# fleet (minersim) on loopback, and a simulated plant (plantsim) when the
# simulator config's power.source is an aggregator or a Modbus meter on
# loopback (the shipped one is). Prints the dashboard URL and where the API
# token is; Ctrl-C (or SIGTERM) stops every process it started.
#
# Which config:
#   POWERHIVE_CONFIG (default etc/powerhive.json). When it lists a subnet
#   outside 127.0.0.0/8 it is a real farm: the suite runs against it and no
#   simulator starts. Otherwise the simulated fleet runs with
#   POWERHIVE_SIM_CONFIG (default etc/powerhive.sim.json), whose first
#   subnet and network.port are where minersim listens.
#
# Knobs (environment):
#   POWERHIVE_POLLERS=2            pollerd processes
#   POWERHIVE_TELEMETRY_WORKERS=1  telemetryd processes
#   POWERHIVE_SIM_MINERS=300       simulated miners
#   POWERHIVE_SIM_NON_MINERS=12    simulated hosts that are not miners
#   POWERHIVE_SIM_ADMIN=127.0.0.1:18081  minersim's admin API
#   POWERHIVE_SIM_SEED=1           fleet layout and noise
#   POWERHIVE_SIM_PLANT=1          0: no simulated plant
#   POWERHIVE_SIM_GENERATION_W=1000000 the plant's generation at start
#   POWERHIVE_SIM_PLANT_NOISE=2    ± % random walk on the generation (0: steady)
#   POWERHIVE_SIM_PLANT_HTTP=127.0.0.1:18090   plantsim's HTTP (admin API; the
#                                  aggregator's own address when the source is one)
#   POWERHIVE_SIM_PLANT_MODBUS=127.0.0.1:18502 its Modbus meter (the source's
#                                  host:port when the source is a meter)
#   POWERHIVE_SIM_MANAGED=250      miners made managed on a fresh database, so
#                                  that the balancer has miners to balance
#   POWERHIVE_SIM_MAX_PRESETS="s19=3200 s19jpro=3320"  max_preset set where none is
#   POWERHIVE_LOG_DIR              default: logs/ beside the database
#   POWERHIVE_RUN_DRY=1            print what would run and exit
#   POWERHIVE_API_TOKEN, POWERHIVE_HTTP_ADDR, POWERHIVE_DATABASE,
#   POWERHIVE_LOG_LEVEL            read by the daemons themselves
# docs/operations.md tells the rest.

BIN=${1:-bin}
cd "$(dirname "$0")/.." || exit 1

say() { printf 'run: %s\n' "$*"; }
die() { printf 'run: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- config
# The few values this script needs, read without a JSON tool: the config
# files are the suite's own, one key per line or not.

flat() { tr -d '\n\r\t' <"$1"; }

# json_str FILE KEY: the first "KEY": "value" in the file.
json_str() {
	flat "$1" | sed -n 's/.*"'"$2"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' | head -1
}
json_int() {
	flat "$1" | sed -n 's/.*"'"$2"'"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -1
}
# The subnets, one a line.
json_subnets() {
	flat "$1" | sed -n 's/.*"subnets"[[:space:]]*:[[:space:]]*\[\([^]]*\)\].*/\1/p' |
		tr ',' '\n' | tr -d ' "'
}
# The power.source object's members (text, no braces), "" when none.
json_source() {
	flat "$1" | sed -n 's/.*"source"[[:space:]]*:[[:space:]]*{\([^}]*\)}.*/\1/p' | head -1
}
# src_str / src_num KEY: a member of $SOURCE.
src_str() {
	printf '%s' "$SOURCE" | sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p'
}
src_num() {
	printf '%s' "$SOURCE" | sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*\([0-9.eE+-][0-9.eE+-]*\).*/\1/p'
}

USER_CFG=${POWERHIVE_CONFIG:-etc/powerhive.json}
[ -r "$USER_CFG" ] || die "cannot read the config $USER_CFG"

farm=""
for s in $(json_subnets "$USER_CFG"); do
	case $s in
	127.*) ;;
	*) farm=$s ;;
	esac
done

if [ -n "$farm" ]; then
	MODE=farm
	CFG=$USER_CFG
else
	MODE=sim
	CFG=${POWERHIVE_SIM_CONFIG:-etc/powerhive.sim.json}
	[ -r "$CFG" ] || die "cannot read the simulator config $CFG"
fi

for b in apid discoverd pollerd telemetryd; do
	[ -x "$BIN/$b" ] || die "$BIN/$b is missing: build it first (make)"
done
[ "$MODE" = farm ] || [ -x "$BIN/minersim" ] || die "$BIN/minersim is missing: build it first (make)"

# The simulated plant plays the config's power.source when that is an
# aggregator or a Modbus meter on loopback: its address, plant id, key and
# register layout come from there.
PLANT=""
SOURCE=""
if [ "$MODE" = sim ] && [ "${POWERHIVE_SIM_PLANT:-1}" != 0 ]; then
	SOURCE=$(json_source "$CFG")
	case $(src_str kind) in
	aggregator)
		PLANT_URL=$(src_str url)
		hostport=${PLANT_URL#http://}
		PLANT_PATH=/${hostport#*/}
		hostport=${hostport%%/*}
		case $hostport in
		127.*:*)
			PLANT=aggregator
			PLANT_HTTP=$hostport
			PLANT_MODBUS=${POWERHIVE_SIM_PLANT_MODBUS:-127.0.0.1:18502}
			;;
		esac
		;;
	modbus)
		case $(src_str host) in
		127.*)
			PLANT=modbus
			PLANT_HTTP=${POWERHIVE_SIM_PLANT_HTTP:-127.0.0.1:18090}
			PLANT_MODBUS=$(src_str host):$(src_num port)
			PLANT_PATH=/v1/reading
			;;
		esac
		;;
	esac
	[ -z "$PLANT" ] || [ -x "$BIN/plantsim" ] || die "$BIN/plantsim is missing: build it first (make)"
fi

# Each daemon checks the config itself; do it once here with a clear message.
"$BIN/apid" -n -c "$CFG" >/dev/null || die "the config $CFG is not valid (see above)"

DB=${POWERHIVE_DATABASE:-$(json_str "$CFG" path)}
DB=${DB:-data/powerhive.db}
DATA=$(dirname "$DB")
LOGS=${POWERHIVE_LOG_DIR:-$DATA/logs}
TOKEN_FILE=$(json_str "$CFG" token_file)
TOKEN_FILE=${TOKEN_FILE:-data/api-token}
ADDR=${POWERHIVE_HTTP_ADDR:-$(json_str "$CFG" addr)}
ADDR=${ADDR:-127.0.0.1:8080}
case $ADDR in
0.0.0.0:*) URL_HOST=127.0.0.1:${ADDR#0.0.0.0:} ;;
\[::\]:*) URL_HOST="[::1]:${ADDR#\[::\]:}" ;;
*) URL_HOST=$ADDR ;;
esac
URL="http://$URL_HOST/"
POLLERS=${POWERHIVE_POLLERS:-2}
TELEMETRY_WORKERS=${POWERHIVE_TELEMETRY_WORKERS:-1}

# POWERHIVE_RUN_DRY=1: say what would run, start nothing.
if [ -n "${POWERHIVE_RUN_DRY:-}" ]; then
	echo "mode=$MODE config=$CFG url=$URL database=$DB token_file=$TOKEN_FILE logs=$LOGS" \
		"pollers=$POLLERS telemetry_workers=$TELEMETRY_WORKERS plant=${PLANT:-none}"
	exit 0
fi
# The data directory holds the database, its secrets key file and the API
# token: 0700 when run.sh makes it (apid warns about a wider one).
[ -d "$DATA" ] || (umask 077 && mkdir -p "$DATA") || die "cannot create $DATA"
mkdir -p "$LOGS" || die "cannot create $LOGS"

# ---------------------------------------------------------------- processes
# "name pid" per line.
PIDS=""
STOPPING=""
DEMO_PID=""

start() {
	name=$1
	shift
	log="$LOGS/$name.log"
	printf '\n==== %s start %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$*" >>"$log"
	# Where this run's lines begin: the logs keep earlier runs.
	LOG_START=$(wc -c <"$log")
	"$@" >>"$log" 2>&1 &
	PIDS="$PIDS$name $!
"
	say "started $name (pid $!), log $log"
}

pid_of() {
	printf '%s' "$PIDS" | while read -r n p; do
		[ "$n" = "$1" ] && echo "$p"
	done
}

# Workers first, then the hub, then the fleet: nothing is left half-done.
stop_all() {
	[ -n "$STOPPING" ] && return
	STOPPING=1
	[ -z "$PIDS" ] && return
	trap '' INT TERM
	say "stopping..."
	[ -n "$DEMO_PID" ] && kill -TERM "$DEMO_PID" 2>/dev/null
	for group in "discoverd pollerd telemetryd" "apid" "minersim plantsim"; do
		pids=""
		for p in $(printf '%s' "$PIDS" | while read -r n q; do
			for g in $group; do
				case $n in "$g" | "$g"-*) echo "$q" ;; esac
			done
		done); do
			kill -TERM "$p" 2>/dev/null && pids="$pids $p"
		done
		# Up to 15 s for a graceful stop, then SIGKILL.
		i=0
		while [ -n "$pids" ] && [ $i -lt 150 ]; do
			left=""
			for p in $pids; do
				kill -0 "$p" 2>/dev/null && left="$left $p"
			done
			pids=$left
			[ -n "$pids" ] && sleep 0.1
			i=$((i + 1))
		done
		for p in $pids; do
			say "pid $p did not stop in 15 s: killing it"
			kill -KILL "$p" 2>/dev/null
		done
	done
	wait 2>/dev/null
	say "stopped"
}

trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

# Fails the run when a process that must stay up is gone.
alive_or_die() {
	p=$(pid_of "$1")
	if [ -n "$p" ] && ! kill -0 "$p" 2>/dev/null; then
		wait "$p" 2>/dev/null
		rc=$?
		say "$1 exited (status $rc); the end of $LOGS/$1.log:"
		tail -n 15 "$LOGS/$1.log" | sed 's/^/    /' >&2
		exit 1
	fi
}

# ---------------------------------------------------------------- start
if [ "$MODE" = sim ]; then
	SUBNET=$(json_subnets "$CFG" | head -1)
	PORT=$(json_int "$CFG" port)
	case $SUBNET in
	127.*) ;;
	*) die "$CFG: the simulated fleet needs a loopback subnet, not '$SUBNET'" ;;
	esac
	MINERS=${POWERHIVE_SIM_MINERS:-300}
	start minersim "$BIN/minersim" --subnet "$SUBNET" --port "${PORT:-18080}" \
		--miners "$MINERS" --non-miners "${POWERHIVE_SIM_NON_MINERS:-12}" \
		--admin "${POWERHIVE_SIM_ADMIN:-127.0.0.1:18081}" --seed "${POWERHIVE_SIM_SEED:-1}"
	# Its listeners first, so that the first sweep finds the fleet.
	i=0
	SIM_LOG_START=$LOG_START
	until tail -c +"$((SIM_LOG_START + 1))" "$LOGS/minersim.log" | grep -q 'minersim ready'; do
		alive_or_die minersim
		i=$((i + 1))
		[ $i -gt 300 ] && die "minersim did not get ready in 30 s"
		sleep 0.1
	done
fi

if [ -n "$PLANT" ]; then
	# The key the config gives apid, in a file only this user reads.
	KEY=$(src_str api_key)
	KEY_FILE="$DATA/plant-key"
	(umask 077 && printf '%s\n' "${KEY:-sim-plant-key}" >"$KEY_FILE") ||
		die "cannot write $KEY_FILE"
	set -- --http "$PLANT_HTTP" --path "${PLANT_PATH:-/v1/reading}" --api-key-file "$KEY_FILE" \
		--plant-id "$(src_str plant_id | grep . || echo plant-1)" \
		--minersim "http://${POWERHIVE_SIM_ADMIN:-127.0.0.1:18081}" \
		--generation-w "${POWERHIVE_SIM_GENERATION_W:-1000000}" --modbus "$PLANT_MODBUS"
	if [ "$PLANT" = modbus ]; then
		for k in unit register table type byte_order scale; do
			v=$(src_str $k)
			[ -n "$v" ] || v=$(src_num $k)
			[ -z "$v" ] && continue
			case $k in
			byte_order) set -- "$@" --modbus-order "$v" ;;
			*) set -- "$@" "--modbus-$k" "$v" ;;
			esac
		done
	else
		# the meter beside the aggregator, for a config that switches to it
		set -- "$@" --modbus-type float32 --modbus-scale 1000
	fi
	start plantsim "$BIN/plantsim" "$@"
	i=0
	PLANT_LOG_START=$LOG_START
	until tail -c +"$((PLANT_LOG_START + 1))" "$LOGS/plantsim.log" | grep -q 'plantsim ready'; do
		alive_or_die plantsim
		i=$((i + 1))
		[ $i -gt 300 ] && die "plantsim did not get ready in 30 s"
		sleep 0.1
	done
	noise=${POWERHIVE_SIM_PLANT_NOISE:-2}
	if [ "$noise" != 0 ]; then
		curl -s -o /dev/null --max-time 2 -X POST \
			-d "{\"percent\":$noise,\"seed\":${POWERHIVE_SIM_SEED:-1}}" \
			"http://$PLANT_HTTP/sim/noise" || say "plantsim: could not set the noise"
	fi
fi

start apid "$BIN/apid" -c "$CFG"
# Up when it answers HTTP at all (401 without a token is an answer).
i=0
until code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${URL}api/health") &&
	[ "$code" != 000 ]; do
	alive_or_die apid
	i=$((i + 1))
	[ $i -gt 150 ] && die "apid does not answer on $URL after 30 s (see $LOGS/apid.log)"
	sleep 0.2
done

start discoverd "$BIN/discoverd" -c "$CFG"
n=1
while [ $n -le "$POLLERS" ]; do
	start "pollerd-$n" "$BIN/pollerd" -c "$CFG"
	n=$((n + 1))
done
n=1
while [ $n -le "$TELEMETRY_WORKERS" ]; do
	start "telemetryd-$n" "$BIN/telemetryd" -c "$CFG"
	n=$((n + 1))
done

# A fresh demo database has no managed miners, and the balancer only moves
# managed ones: make some managed (and give each model a max_preset where it
# has none) once they are discovered. In the background; it gives up after
# 90 s, and never touches a database where a miner is managed already.
demo_managed() {
	n=${POWERHIVE_SIM_MANAGED:-250}
	[ "$n" -gt 0 ] 2>/dev/null || return 0
	tok=${POWERHIVE_API_TOKEN:-$(json_str "$CFG" token)}
	i=0
	while [ -z "$tok" ] && [ $i -lt 100 ]; do
		[ -s "$TOKEN_FILE" ] && tok=$(head -n 1 "$TOKEN_FILE")
		sleep 0.2
		i=$((i + 1))
	done
	[ -n "$tok" ] || return 0
	hdr="Authorization: Bearer $tok"
	demo_api() { curl -s --max-time 5 -H "$hdr" "$@"; }
	i=0
	while :; do
		list=$(demo_api "${URL}api/miners?limit=5000") || list=""
		have=$(printf '%s' "$list" | grep -o '"has_api_key": *true' | wc -l)
		[ "$have" -ge "$MINERS" ] && break
		i=$((i + 1))
		[ $i -gt 90 ] && break
		sleep 1
	done
	printf '%s' "$list" | grep -q '"managed": *true' && return 0
	for mp in ${POWERHIVE_SIM_MAX_PRESETS:-s19=3200 s19jpro=3320}; do
		alias=${mp%%=*}
		demo_api "${URL}api/models/$alias" | grep -q '"max_preset": *null' &&
			demo_api -o /dev/null -X PATCH -H 'Content-Type: application/json' \
				-d "{\"max_preset\":\"${mp#*=}\"}" "${URL}api/models/$alias"
	done
	done_n=0
	for id in $(printf '%s' "$list" | grep -o '"id": *"[0-9a-f:]\{17\}"' |
		sed 's/.*"\([0-9a-f:]*\)"/\1/' | head -n "$n"); do
		demo_api -o /dev/null -X PATCH -H 'Content-Type: application/json' \
			-d '{"managed":true}' "${URL}api/miners/$id" && done_n=$((done_n + 1))
	done
	say "demo: $done_n simulated miners made managed (max_preset: ${POWERHIVE_SIM_MAX_PRESETS:-s19=3200 s19jpro=3320}); the balancer keeps them under the plant's power"
}
if [ -n "$PLANT" ]; then
	demo_managed &
	DEMO_PID=$!
fi

echo
if [ "$MODE" = sim ]; then
	say "PowerHive runs against a simulated fleet: $MINERS miners on $SUBNET port ${PORT:-18080} (config $CFG)"
	[ -n "$PLANT" ] && say "simulated plant: plantsim, ${POWERHIVE_SIM_GENERATION_W:-1000000} W ±${POWERHIVE_SIM_PLANT_NOISE:-2} %, $PLANT on $([ "$PLANT" = aggregator ] && echo "http://$PLANT_HTTP${PLANT_PATH}" || echo "$PLANT_MODBUS"); admin API http://$PLANT_HTTP/sim/ (docs/plantsim.md)"
else
	say "PowerHive runs against the farm of $CFG (subnet $farm and the others it lists); no simulator"
fi
say "dashboard:  $URL"
if [ -n "${POWERHIVE_API_TOKEN:-}" ]; then
	say "API token:  the value of POWERHIVE_API_TOKEN"
elif [ -n "$(json_str "$CFG" token)" ]; then
	say "API token:  http.auth.token in $CFG"
else
	i=0
	while [ ! -s "$TOKEN_FILE" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	say "API token:  in $TOKEN_FILE  (cat $TOKEN_FILE, paste it into the sign-in form)"
fi
say "database:   $DB    logs: $LOGS/"
say "Ctrl-C stops everything."

# ---------------------------------------------------------------- watch
# apid and the simulator are the run; a worker that dies is reported (the
# dashboard's Health view shows it missing) and the rest goes on.
reported=""
while :; do
	sleep 1 &
	wait $! 2>/dev/null
	alive_or_die apid
	[ "$MODE" = sim ] && alive_or_die minersim
	for np in $(printf '%s' "$PIDS" | tr ' ' ':'); do
		n=${np%%:*}
		p=${np#*:}
		case " $reported " in *" $n "*) continue ;; esac
		if ! kill -0 "$p" 2>/dev/null; then
			say "$n (pid $p) exited; see $LOGS/$n.log"
			reported="$reported $n"
		fi
	done
done
