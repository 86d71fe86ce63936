/* test_log — line format, levels, secret masking, the complaint limiter,
 * quoting and whole lines under concurrent writers. */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "hive/clock.h"
#include "hive/log.h"

static FILE *out;

/* Everything written so far (malloc'd); the file offset is left alone. */
static char *slurp(void)
{
	struct stat st;
	char *buf;
	ssize_t n;

	fflush(out);
	assert_int_equal(fstat(fileno(out), &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	n = pread(fileno(out), buf, (size_t)st.st_size, 0);
	assert_int_equal(n, st.st_size);
	buf[n] = '\0';
	return buf;
}

static void reset(void)
{
	assert_int_equal(ftruncate(fileno(out), 0), 0);
	assert_int_equal(lseek(fileno(out), 0, SEEK_SET), 0);
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* The message part of the only line written since reset(). */
static char *only_message(void)
{
	char *all = slurp(), *msg, *p;

	assert_int_equal(count_lines(all), 1);
	/* "<ts> <daemon>[pid] LEVEL msg\n": the message follows the third space. */
	p = all;
	for (int i = 0; i < 3; i++) {
		p = strchr(p, ' ');
		assert_non_null(p);
		p++;
	}
	msg = strndup(p, strlen(p) - 1);
	free(all);
	return msg;
}

static int setup(void **state)
{
	(void)state;
	out = tmpfile();
	assert_non_null(out);
	hive_log_init("tlog", HIVE_LOG_DEBUG, out);
	hive_log_complain_interval(300);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hive_log_init("tlog", HIVE_LOG_INFO, NULL);
	fclose(out);
	return 0;
}

static void test_format(void **state)
{
	char pattern[256], *all;
	regex_t re;
	struct tm tm;
	time_t when;

	(void)state;
	log_info("miner_seen mac=%s ip=%s", "aa:bb:cc:dd:ee:ff", "127.42.0.7");
	all = slurp();
	snprintf(pattern, sizeof(pattern),
		 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
		 "tlog\\[%ld\\] INFO miner_seen mac=aa:bb:cc:dd:ee:ff ip=127\\.42\\.0\\.7\n$",
		 (long)getpid());
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&re, all, 0, NULL, 0) != 0)
		fail_msg("line does not match: %s", all);
	regfree(&re);

	/* The timestamp is UTC and now. */
	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(all, "%Y-%m-%dT%H:%M:%S", &tm));
	when = timegm(&tm);
	assert_true(labs((long)(when - time(NULL))) <= 5);
	free(all);
}

static void test_levels(void **state)
{
	static const char *const names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

	(void)state;
	for (int threshold = HIVE_LOG_DEBUG; threshold <= HIVE_LOG_ERROR; threshold++) {
		hive_log_set_level((enum hive_log_level)threshold);
		assert_int_equal(hive_log_get_level(), threshold);
		for (int level = HIVE_LOG_DEBUG; level <= HIVE_LOG_ERROR; level++) {
			char *all, want[64];

			reset();
			hive_log((enum hive_log_level)level, "event n=%d", level);
			all = slurp();
			if (level < threshold) {
				assert_string_equal(all, "");
			} else {
				snprintf(want, sizeof(want), "] %s event n=%d\n", names[level], level);
				assert_non_null(strstr(all, want));
			}
			free(all);
		}
	}
	/* The macros map to the levels their names say. */
	hive_log_set_level(HIVE_LOG_DEBUG);
	reset();
	log_debug("a");
	log_info("b");
	log_warnx("c");
	log_errx("d");
	char *all = slurp();
	assert_non_null(strstr(all, "DEBUG a\n"));
	assert_non_null(strstr(all, "INFO b\n"));
	assert_non_null(strstr(all, "WARN c\n"));
	assert_non_null(strstr(all, "ERROR d\n"));
	free(all);
}

static void test_level_names(void **state)
{
	static const struct {
		const char *name;
		int rc;
		enum hive_log_level level;
	} cases[] = {
		{ "debug", 0, HIVE_LOG_DEBUG }, { "info", 0, HIVE_LOG_INFO },
		{ "warn", 0, HIVE_LOG_WARN },   { "warning", 0, HIVE_LOG_WARN },
		{ "error", 0, HIVE_LOG_ERROR }, { "verbose", -1, 0 },
		{ "", -1, 0 },                  { "info ", -1, 0 },
		{ "err", -1, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum hive_log_level l = HIVE_LOG_ERROR + 1;

		assert_int_equal(hive_log_level_parse(cases[i].name, &l), cases[i].rc);
		if (cases[i].rc == 0)
			assert_int_equal(l, cases[i].level);
	}
	assert_int_equal(hive_log_level_parse(NULL, NULL), -1);
	assert_string_equal(hive_log_level_name(HIVE_LOG_DEBUG), "debug");
	assert_string_equal(hive_log_level_name(HIVE_LOG_INFO), "info");
	assert_string_equal(hive_log_level_name(HIVE_LOG_WARN), "warn");
	assert_string_equal(hive_log_level_name(HIVE_LOG_ERROR), "error");
}

static void test_errno(void **state)
{
	char *msg;

	(void)state;
	errno = ENOENT;
	log_warn("open_failed path=%s", "/nonexistent");
	assert_int_equal(errno, ENOENT);  /* preserved for the caller */
	msg = only_message();
	assert_string_equal(msg, "open_failed path=/nonexistent errno=2 "
				 "err=\"No such file or directory\"");
	free(msg);
}

static void test_secrets(void **state)
{
	static const struct {
		const char *secrets[4];
		const char *in;
		const char *want;
	} cases[] = {
		{ { "hunter2" }, "login pass=hunter2 ok=1", "login pass=<secret> ok=1" },
		{ { "hunter2" }, "hunter2hunter2 x", "<secret> x" },
		{ { "hunter2" }, "a=hunter2 b=hunter2", "a=<secret> b=<secret>" },
		{ { "hunter2" }, "hunter2", "<secret>" },
		{ { "hunter2" }, "hunter", "hunter" },
		/* One secret inside another: the longer one must not leak its tail. */
		{ { "abc", "abcdef" }, "k=xabcdefx", "k=x<secret>x" },
		{ { "abcdef", "abc" }, "k=abc abcdef", "k=<secret> <secret>" },
		/* Overlapping secrets are masked as one run. */
		{ { "abcdef", "defghi" }, "k=abcdefghi", "k=<secret>" },
		{ { "abcdef", "defghi" }, "k=defghi,abcdef", "k=<secret>,<secret>" },
		{ { "" }, "nothing to hide", "nothing to hide" },
		{ { "key=a b" }, "x=key=a b y", "x=<secret> y" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *msg;

		for (int s = 0; s < 4 && cases[i].secrets[s]; s++)
			hive_log_secret(cases[i].secrets[s]);
		reset();
		log_info("%s", cases[i].in);
		msg = only_message();
		if (strcmp(msg, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, msg, cases[i].want);
		free(msg);
		for (int s = 0; s < 4 && cases[i].secrets[s]; s++)
			hive_log_forget_secret(cases[i].secrets[s]);
	}
	/* Forgotten secrets print again. */
	reset();
	log_info("pass=hunter2");
	char *msg = only_message();
	assert_string_equal(msg, "pass=hunter2");
	free(msg);
}

static void test_secret_refcount(void **state)
{
	char *msg;

	(void)state;
	/* Two miners with the same key: forgetting one keeps it masked. */
	hive_log_secret("sharedkey");
	hive_log_secret("sharedkey");
	hive_log_forget_secret("sharedkey");
	reset();
	log_info("k=sharedkey");
	msg = only_message();
	assert_string_equal(msg, "k=<secret>");
	free(msg);
	hive_log_forget_secret("sharedkey");
	reset();
	log_info("k=sharedkey");
	msg = only_message();
	assert_string_equal(msg, "k=sharedkey");
	free(msg);
}

/* Thousands of per-miner keys, all of the same length, plus removals: the
 * hash table must find every one and keep its clusters intact. */
static void test_many_secrets(void **state)
{
	enum { N = 5000 };
	char key[40], line[128], *msg;

	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "apikey-%08d-xyz", i);
		hive_log_secret(key);
	}
	for (int i = 0; i < N; i += 2) {
		snprintf(key, sizeof(key), "apikey-%08d-xyz", i);
		hive_log_forget_secret(key);
	}
	for (int i = 0; i < N; i += 97) {
		snprintf(key, sizeof(key), "apikey-%08d-xyz", i);
		snprintf(line, sizeof(line), "miner=%d key=%s end", i, key);
		reset();
		log_info("%s", line);
		msg = only_message();
		if (i % 2)
			snprintf(line, sizeof(line), "miner=%d key=<secret> end", i);
		assert_string_equal(msg, line);
		free(msg);
	}
	/* Cost of a line with 2500 keys registered. */
	int64_t t0 = hive_mono_us();
	for (int i = 0; i < 20000; i++)
		log_info("status_ok mac=aa:bb:cc:dd:ee:%02x ip=127.42.0.%d hashrate_ths=%d.%d "
			 "temp_c=%d key=apikey-%08d-xyz", i & 255, i & 255, i % 200, i % 10, i % 90, i % N);
	double secs = (double)(hive_mono_us() - t0) / 1e6;
	printf("figure: log %d lines/s with %d secrets registered (masked, written to a file)\n",
	       (int)(20000 / secs), N / 2);
	fflush(stdout);
	for (int i = 1; i < N; i += 2) {
		snprintf(key, sizeof(key), "apikey-%08d-xyz", i);
		hive_log_forget_secret(key);
	}
	reset();
	log_info("key=apikey-00000001-xyz");
	msg = only_message();
	assert_string_equal(msg, "key=apikey-00000001-xyz");
	free(msg);
}

static void test_secret_in_errno_and_complaint(void **state)
{
	char *all;

	(void)state;
	hive_log_secret("pw-123456");
	errno = EACCES;
	log_warn("unlock_failed pass=%s", "pw-123456");
	hive_log_complain("sec", "unlock_failed pass=%s", "pw-123456");
	all = slurp();
	assert_null(strstr(all, "pw-123456"));
	assert_int_equal(count_lines(all), 2);
	free(all);
	hive_log_forget_secret("pw-123456");
	hive_log_recovered("sec", "ok");
}

static void test_complain(void **state)
{
	char *all, *msg;

	(void)state;
	hive_log_complain_interval(1);
	assert_int_equal(hive_log_complain("m1 status", "status_failed mac=m1"), 1);
	msg = only_message();
	assert_string_equal(msg, "status_failed mac=m1");
	free(msg);
	all = slurp();
	assert_non_null(strstr(all, "] WARN status_failed"));
	free(all);

	reset();
	for (int i = 0; i < 3; i++)
		assert_int_equal(hive_log_complain("m1 status", "status_failed mac=m1"), 0);
	/* Another key has its own limit. */
	assert_int_equal(hive_log_complain("m2 status", "status_failed mac=m2"), 1);
	all = slurp();
	assert_int_equal(count_lines(all), 1);
	assert_non_null(strstr(all, "mac=m2"));
	free(all);

	usleep(1100 * 1000);
	reset();
	assert_int_equal(hive_log_complain("m1 status", "status_failed mac=m1"), 1);
	msg = only_message();
	assert_string_equal(msg, "status_failed mac=m1 repeated=3");
	free(msg);

	/* Just logged: the next one is suppressed again, counted from zero. */
	reset();
	assert_int_equal(hive_log_complain("m1 status", "status_failed mac=m1"), 0);
	assert_int_equal(hive_log_recovered("m1 status", "status_ok mac=m1"), 1);
	msg = only_message();
	assert_string_equal(msg, "status_ok mac=m1 repeated=1 recovered=1");
	free(msg);
	all = slurp();
	assert_non_null(strstr(all, "] INFO status_ok"));
	free(all);

	/* Recovered once: the key is forgotten. */
	reset();
	assert_int_equal(hive_log_recovered("m1 status", "status_ok mac=m1"), 0);
	assert_int_equal(hive_log_recovered("never", "status_ok mac=m9"), 0);
	all = slurp();
	assert_string_equal(all, "");
	free(all);

	/* A new failure after recovery is a first complaint again. */
	assert_int_equal(hive_log_complain("m1 status", "status_failed mac=m1"), 1);
	msg = only_message();
	assert_string_equal(msg, "status_failed mac=m1");
	free(msg);
	reset();
	assert_int_equal(hive_log_recovered("m1 status", "status_ok mac=m1"), 1);
	msg = only_message();
	assert_string_equal(msg, "status_ok mac=m1 recovered=1");
	free(msg);
	hive_log_recovered("m2 status", "x");
	hive_log_complain_interval(300);
}

static void test_complain_eviction(void **state)
{
	enum { N = 65536 + 10 };
	char key[32];

	(void)state;
	/* Counted but not printed: the limiter works below the threshold too. */
	hive_log_set_level(HIVE_LOG_ERROR);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(hive_log_complain(key, "x"), 0);
	}
	hive_log_set_level(HIVE_LOG_DEBUG);
	reset();
	/* The ten oldest were evicted; the rest are remembered. */
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(hive_log_recovered(key, "back"), 0);
	}
	for (int i = 10; i < N; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(hive_log_recovered(key, "back"), 1);
	}
	char *all = slurp();
	assert_int_equal(count_lines(all), N - 10);
	free(all);
}

static void test_quote(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
		{ "plain", "plain" },
		{ "127.42.0.7:80", "127.42.0.7:80" },
		{ "back\\slash", "back\\slash" },
		{ "two words", "\"two words\"" },
		{ "k=v", "\"k=v\"" },
		{ "say \"hi\"", "\"say \\\"hi\\\"\"" },
		{ "", "\"\"" },
		{ "a\tb", "\"a\\tb\"" },
		{ "line\nbreak\r", "\"line\\nbreak\\r\"" },
		{ "bell\x07", "\"bell\\x07\"" },
		{ "a b\\c", "\"a b\\\\c\"" },
	};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(hive_log_quote(cases[i].in, buf, sizeof(buf)), cases[i].want);
	/* Too long: cut, but still a closed quoted value. */
	assert_string_equal(hive_log_quote("hello world", buf, 8), "\"hello\"");
	assert_string_equal(hive_log_quote("abcdefghij", buf, 5), "abcd");
	assert_ptr_equal(hive_log_quote("x", buf, sizeof(buf)), buf);
}

static void test_one_line(void **state)
{
	char big[10000], *all;

	(void)state;
	log_info("multi\nline\rmessage");
	all = slurp();
	assert_int_equal(count_lines(all), 1);
	assert_non_null(strstr(all, "INFO multi line message\n"));
	free(all);

	reset();
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_info("big=%s", big);
	all = slurp();
	assert_int_equal(count_lines(all), 1);
	assert_true(strlen(all) <= 4096);
	assert_non_null(strstr(all, "x...\n"));
	free(all);
}

enum { THREADS = 4, PER_THREAD = 500 };

static void *writer(void *arg)
{
	long id = (long)(intptr_t)arg;

	for (int i = 0; i < PER_THREAD; i++)
		log_info("thread=%ld seq=%d pad=%0200d", id, i, 0);
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t th[THREADS];
	regex_t re;
	char *all, *line, *save;
	int n = 0;

	(void)state;
	for (long i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	all = slurp();
	assert_int_equal(regcomp(&re, "^[0-9T:.-]+Z tlog\\[[0-9]+\\] INFO thread=[0-3] seq=[0-9]+ pad=0{200}$",
				 REG_EXTENDED | REG_NOSUB), 0);
	for (line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (regexec(&re, line, 0, NULL, 0) != 0)
			fail_msg("torn line: %s", line);
		n++;
	}
	regfree(&re);
	assert_int_equal(n, THREADS * PER_THREAD);
	free(all);
}

static int each_setup(void **state)
{
	(void)state;
	reset();
	hive_log_set_level(HIVE_LOG_DEBUG);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_format, each_setup),
		cmocka_unit_test_setup(test_levels, each_setup),
		cmocka_unit_test_setup(test_level_names, each_setup),
		cmocka_unit_test_setup(test_errno, each_setup),
		cmocka_unit_test_setup(test_secrets, each_setup),
		cmocka_unit_test_setup(test_secret_refcount, each_setup),
		cmocka_unit_test_setup(test_many_secrets, each_setup),
		cmocka_unit_test_setup(test_secret_in_errno_and_complaint, each_setup),
		cmocka_unit_test_setup(test_complain, each_setup),
		cmocka_unit_test_setup(test_complain_eviction, each_setup),
		cmocka_unit_test_setup(test_quote, each_setup),
		cmocka_unit_test_setup(test_one_line, each_setup),
		cmocka_unit_test_setup(test_threads, each_setup),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
