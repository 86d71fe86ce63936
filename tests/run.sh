#!/bin/bash
# Runs every test binary given, counts cmocka's per-test results and prints
# one closing line: "N passed, N failed, N skipped". A binary that crashes
# or exits non-zero without a cmocka summary counts as one failure. A test
# that cannot run here calls cmocka's skip() (never counted as passed) and
# says why on a line starting with "skip:", shown under its name.
#
# TEST_JOBS (default 1) tests run at once: most end-to-end tests spend their
# time waiting for a cadence, so two share two cores. A test named in
# TEST_ALONE runs with no other beside it: those that hold the machine busy
# themselves, or measure time or CPU against a bound; they run last. Each
# test's lines are printed when it ends, with the CPU seconds it and what it
# waited for used.
#
# A binary that hangs is stopped after TEST_TIMEOUT seconds (default 600),
# or TEST_TIMEOUT_<name> for that one (TEST_TIMEOUT_test_fleet=1200), and
# fails as "FAIL <name> (timeout after N s)". timeout(1) signals the test's
# whole process group, so the daemons it started go too; whatever ignores
# SIGTERM gets SIGKILL TEST_KILL_AFTER seconds (default 10) later.
passed=0
failed=0
skipped=0
failures=""
log_dir=${TEST_LOG_DIR:-build/test-logs}
jobs=${TEST_JOBS:-1}
alone=" ${TEST_ALONE:-} "
# Sanitizer builds: known leaks inside nng are suppressed (see the file).
LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
kill_after=${TEST_KILL_AFTER:-10}
mkdir -p "$log_dir"

# One test, in a subshell of its own: leaves "rc seconds cpu limit" in
# <log>.result. The test runs in timeout's own process group, which
# Ctrl-C does not reach: a TERM to this subshell is passed on.
run_one() {
	local t=$1 name log limit start rc child cpu
	name=$(basename "$t")
	log="$log_dir/$name.log"
	limit=${TEST_TIMEOUT:-600}
	case $name in
	*[!A-Za-z0-9_]*) ;;
	*) eval "limit=\${TEST_TIMEOUT_$name:-\$limit}" ;;
	esac
	start=$(date +%s)
	timeout -k "$kill_after" "$limit" "$t" >"$log" 2>&1 &
	child=$!
	trap 'kill -TERM $child 2>/dev/null; exit 143' TERM
	wait "$child" 2>/dev/null
	rc=$?
	# user and system seconds of the children this subshell waited for
	times >"$log.times"             # not in $(...): a fork has no children yet
	cpu=$(tail -1 "$log.times" | awk '{ n = 0; for (i = 1; i <= 2; i++) { v = $i;
		m = v; sub(/m.*/, "", m); s = v; sub(/^[0-9]*m/, "", s); sub(/s$/, "", s);
		n += m * 60 + s } printf "%.0f", n }')
	rm -f "$log.times"
	echo "$rc $(($(date +%s) - start)) ${cpu:-0} $limit" >"$log.result"
}

# Prints what a finished test left and adds its counts.
report() {
	local name=$1 log="$log_dir/$1.log" rc secs cpu limit p f sk timed_out=false
	read -r rc secs cpu limit <"$log.result"
	rm -f "$log.result"
	# 124: timed out; 137: SIGKILL, from timeout when the test outlived -k.
	if [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ "$secs" -ge "$limit" ]; }; then
		timed_out=true
	fi
	# cmocka writes to stdout and stderr, so its summary may share a line.
	p=$(grep -o '\[  PASSED  \] [0-9]* test' "$log" | tail -1 | tr -dc '0-9')
	f=$(grep -o '\[  FAILED  \] [0-9]* test' "$log" | tail -1 | tr -dc '0-9')
	sk=$(grep -o '\[  SKIPPED \] [0-9]* test' "$log" | tail -1 | tr -dc '0-9')
	p=${p:-0}
	f=${f:-0}
	sk=${sk:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + sk))
	if $timed_out; then
		echo "FAIL $name (timeout after $limit s): see $log"
		tail -5 "$log" | sed 's/^/    /'
		failures="$failures $name"
	elif [ "$f" -ne 0 ]; then
		echo "FAIL $name (${secs}s, exit $rc): see $log"
		grep -E '^\[  (FAILED|  ERROR) \]|^\[  FAILED  \] .*|[Ee]rror|assert' "$log" | head -20 | sed 's/^/    /'
		failures="$failures $name"
	elif [ "$sk" -ne 0 ] && [ "$p" -eq 0 ]; then
		echo "skip $name ($sk tests skipped, ${secs}s)"
	elif [ "$sk" -ne 0 ]; then
		echo "ok   $name ($p tests, $sk skipped, ${secs}s, cpu ${cpu}s)"
	else
		echo "ok   $name ($p tests, ${secs}s, cpu ${cpu}s)"
	fi
	# Figures a test prints (lines starting with "figure:") and why it
	# skipped belong in the output.
	grep -E '^(figure|skip):' "$log" | sed 's/^/    /'
}

declare -A running=()            # subshell pid -> test name
wait_one() {
	local pid
	wait -n -p pid "${!running[@]}" 2>/dev/null
	[ -n "$pid" ] || return 0
	report "${running[$pid]}"
	unset "running[$pid]"
}
wait_all() {
	while [ ${#running[@]} -gt 0 ]; do
		wait_one
	done
}
stop_all() {
	local pid
	for pid in "${!running[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	wait
	exit "$1"
}
trap 'stop_all 130' INT
trap 'stop_all 143' TERM

# The tests that share the machine first, then those that run alone, one
# after another: one wait for a pair to drain instead of one per alone test.
for t in "$@"; do
	case $alone in
	*" $(basename "$t") "*) ;;
	*)
		while [ ${#running[@]} -ge "$jobs" ]; do
			wait_one
		done
		run_one "$t" &
		running[$!]=$(basename "$t")
		;;
	esac
done
wait_all
for t in "$@"; do
	case $alone in
	*" $(basename "$t") "*)
		run_one "$t" &
		running[$!]=$(basename "$t")
		wait_all
		;;
	esac
done
wait_all
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
