#!/bin/sh
# Runs every test binary given, counts cmocka's per-test results and prints
# one closing line: "N passed, N failed, N skipped". A binary that crashes
# or exits non-zero without a cmocka summary counts as one failure. A test
# that cannot run here calls cmocka's skip() (never counted as passed) and
# says why on a line starting with "skip:", shown under its name.
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
# Sanitizer builds: known leaks inside nng are suppressed (see the file).
LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
kill_after=${TEST_KILL_AFTER:-10}
mkdir -p "$log_dir"
# The test runs in timeout's own process group, which Ctrl-C does not reach:
# pass it on (timeout hands it to the group).
child=
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; exit 130' INT
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; exit 143' TERM
for t in "$@"; do
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
	wait "$child" 2>/dev/null
	rc=$?
	child=
	secs=$(( $(date +%s) - start ))
	# 124: timed out; 137: SIGKILL, from timeout when the test outlived -k.
	timed_out=false
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
		echo "ok   $name ($p tests, $sk skipped, ${secs}s)"
	else
		echo "ok   $name ($p tests, ${secs}s)"
	fi
	# Figures a test prints (lines starting with "figure:") and why it
	# skipped belong in the output.
	grep -E '^(figure|skip):' "$log" | sed 's/^/    /'
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
