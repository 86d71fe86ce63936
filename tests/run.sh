#!/bin/sh
# Runs every test binary given, counts cmocka's per-test results and prints
# one closing line: "N passed, N failed". A binary that crashes or exits
# non-zero without a cmocka summary counts as one failure.
passed=0
failed=0
failures=""
log_dir=${TEST_LOG_DIR:-build/test-logs}
# Sanitizer builds: known leaks inside nng are suppressed (see the file).
LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
mkdir -p "$log_dir"
for t in "$@"; do
	name=$(basename "$t")
	log="$log_dir/$name.log"
	start=$(date +%s)
	"$t" >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	# cmocka writes to stdout and stderr, so its summary may share a line.
	p=$(grep -o '\[  PASSED  \] [0-9]* test' "$log" | tail -1 | tr -dc '0-9')
	f=$(grep -o '\[  FAILED  \] [0-9]* test' "$log" | tail -1 | tr -dc '0-9')
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		echo "FAIL $name (${secs}s, exit $rc): see $log"
		grep -E '^\[  (FAILED|  ERROR) \]|^\[  FAILED  \] .*|[Ee]rror|assert' "$log" | head -20 | sed 's/^/    /'
		failures="$failures $name"
	else
		echo "ok   $name ($p tests, ${secs}s)"
	fi
	# Figures a test prints (lines starting with "figure:") belong in the output.
	grep '^figure:' "$log" | sed 's/^/    /'
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
