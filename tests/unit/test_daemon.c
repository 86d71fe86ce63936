/* test_daemon — option parsing, -n/-V/-h, precedence of defaults < file <
 * environment < command line, signals, and reload keeping the old config
 * when the new one is bad. hive_daemon_start exits the process for -n, -V,
 * -h and errors, so those cases run in a forked child whose exit status and
 * output are checked. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "hive/daemon.h"
#include "hive/log.h"
#include "../lib/testlib.h"

#define STARTED 42  /* the child's exit code when hive_daemon_start returned */

static char *dir;
static char good[600], quiet[600], bad[600], missing[600], empty[600];

static const char *const env_vars[] = {
	"POWERHIVE_CONFIG", "POWERHIVE_LOG_LEVEL", "POWERHIVE_HTTP_ADDR", "POWERHIVE_API_TOKEN",
	"POWERHIVE_DATABASE",
};

static const char good_text[] =
	"{\"log_level\":\"info\",\"network\":{\"subnets\":[\"127.42.0.0/24\"],\"port\":81},"
	"\"http\":{\"addr\":\"127.0.0.1:7001\",\"auth\":{\"token\":\"tok-secret-1234\"}}}";
static const char quiet_text[] =
	"{\"log_level\":\"warn\",\"http\":{\"addr\":\"127.0.0.1:7002\"}}";
static const char bad_text[] = "{\"network\":{\"port\":0}}";

static int group_setup(void **state)
{
	(void)state;
	dir = tl_tmpdir("daemon");
	assert_non_null(dir);
	snprintf(good, sizeof(good), "%s/good.json", dir);
	snprintf(quiet, sizeof(quiet), "%s/quiet.json", dir);
	snprintf(bad, sizeof(bad), "%s/bad.json", dir);
	snprintf(missing, sizeof(missing), "%s/missing.json", dir);
	snprintf(empty, sizeof(empty), "%s/empty.json", dir);
	assert_int_equal(tl_write_file(empty, "{}"), 0);
	assert_int_equal(tl_write_file(good, good_text), 0);
	assert_int_equal(tl_write_file(quiet, quiet_text), 0);
	assert_int_equal(tl_write_file(bad, bad_text), 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tl_rmrf(dir);
	free(dir);
	return 0;
}

enum child_mode { MODE_PRINT, MODE_SIGNALS, MODE_SECRET };

struct result {
	int status;   /* exit code, or -signal */
	char *out, *err;
	pid_t pid;
};

/* Runs hive_daemon_start in a child with argv (NULL-terminated, without
 * argv[0]) and env ("K=V", NULL-terminated) and collects what it printed. */
static void run(struct result *r, bool http_option, enum child_mode mode, const char *const *args,
		const char *const *env)
{
	char outp[700], errp[700];
	const char *argv[32] = { "tdaemon" };
	int argc = 1, st;
	pid_t pid;

	for (; args && args[argc - 1]; argc++)
		argv[argc] = args[argc - 1];
	argv[argc] = NULL;
	snprintf(outp, sizeof(outp), "%s/out", dir);
	snprintf(errp, sizeof(errp), "%s/err", dir);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct hive_daemon_spec spec = { .name = "tdaemon", .summary = "Test daemon.",
						 .http_option = http_option };
		struct hive_daemon d;

		for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
			unsetenv(env_vars[i]);
		for (; env && *env; env++)
			putenv((char *)*env);
		if (!freopen(outp, "w", stdout) || !freopen(errp, "w", stderr))
			_exit(99);
		hive_daemon_start(&d, &spec, argc, (char **)argv);
		switch (mode) {
		case MODE_PRINT:
			printf("source=%s host=%s boot=%lld level=%s loglevel=%s addr=%s port=%d "
			       "config=%s name=%s\n",
			       d.source, d.host, d.boot, d.cfg.log_level,
			       hive_log_level_name(hive_log_get_level()), d.cfg.http.addr,
			       d.cfg.network.port, d.config_path, d.name);
			break;
		case MODE_SIGNALS:
			raise(SIGPIPE);  /* ignored: the process lives on */
			printf("before reload=%d quit=%d\n", (int)hive_reload, (int)hive_quit);
			raise(SIGHUP);
			printf("hup reload=%d quit=%d\n", (int)hive_reload, (int)hive_quit);
			raise(SIGTERM);
			printf("term reload=%d quit=%d\n", (int)hive_reload, (int)hive_quit);
			hive_quit = 0;
			raise(SIGINT);
			printf("int quit=%d\n", (int)hive_quit);
			break;
		case MODE_SECRET:
			log_info("leak token=%s", d.cfg.http.auth.token);
			break;
		}
		hive_daemon_finish(&d);
		fflush(NULL);
		_exit(STARTED);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	r->pid = pid;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
	r->out = tl_read_file(outp);
	r->err = tl_read_file(errp);
	assert_non_null(r->out);
	assert_non_null(r->err);
}

static void result_free(struct result *r)
{
	free(r->out);
	free(r->err);
}

#define A(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_options(void **state)
{
	char ok_good[700], bad_msg[700], missing_msg[700];
	const struct {
		const char *name;
		bool http;
		const char *const *args;
		const char *const *env;
		int status;
		const char *out_exact;   /* NULL: not checked exactly */
		const char *out_has, *err_has, *err_exact;
	} cases[] = {
		{ "-V", false, A("-V"), NULL, 0, "tdaemon " HIVE_VERSION "\n", NULL, NULL, "" },
		{ "--version", false, A("--version"), NULL, 0, "tdaemon " HIVE_VERSION "\n", NULL, NULL, "" },
		{ "-h", false, A("-h"), NULL, 0, NULL, "usage: tdaemon [-hnV] [-c file] [-l level]\n", NULL, "" },
		{ "--help", true, A("--help"), NULL, 0, NULL, "--http ADDR", NULL, "" },
		{ "bad long option", false, A("--bogus"), NULL, 1, "", NULL, "usage: tdaemon", NULL },
		{ "bad short option", false, A("-x"), NULL, 1, "", NULL, "usage: tdaemon", NULL },
		{ "missing argument", false, A("-c"), NULL, 1, "", NULL, "usage: tdaemon", NULL },
		{ "--http without http_option", false, A("--http", "127.0.0.1:9", "-c", good), NULL, 1, "",
		  NULL, "usage: tdaemon", NULL },
		{ "--http bad", true, A("--http", "nope", "-c", good), NULL, 1, "", NULL,
		  NULL, "tdaemon: --http: \"nope\" is not host:port\n" },
		{ "-l bad", false, A("-l", "loud", "-n", "-c", good), NULL, 1, "", NULL, NULL,
		  "tdaemon: -l: \"loud\" is not a log level (debug, info, warn, error)\n" },
		{ "extra argument", false, A("-c", good, "extra"), NULL, 1, "", NULL,
		  "unexpected argument \"extra\"", NULL },
		{ "-n good", false, A("-n", "-c", good), NULL, 0, ok_good, NULL, NULL, "" },
		{ "--check bad", false, A("--check", "--config", bad), NULL, 1, "", NULL, NULL, bad_msg },
		{ "-n missing", false, A("-n", "-c", missing), NULL, 1, "", NULL, NULL, missing_msg },
		{ "POWERHIVE_CONFIG", false, A("-n"), A(NULL), 0, NULL, NULL, NULL, NULL },
		{ "bad config without -n", false, A("-c", bad), NULL, 1, "", NULL,
		  "ERROR config invalid problem=", NULL },
		{ "bad env with -n", true, A("-n", "-c", good), A("POWERHIVE_HTTP_ADDR=nowhere"), 1, "",
		  NULL, NULL, "POWERHIVE_HTTP_ADDR: http.addr: \"nowhere\" is not host:port\n" },
		{ "bad env overridden by --http", true, A("-n", "-c", good, "--http", "127.0.0.1:7003"),
		  A("POWERHIVE_HTTP_ADDR=nowhere"), 1, "", NULL, "POWERHIVE_HTTP_ADDR", NULL },
	};

	(void)state;
	snprintf(ok_good, sizeof(ok_good), "%s: configuration OK\n", good);
	snprintf(bad_msg, sizeof(bad_msg), "%s: network.port: 0 is out of range (1..65535)\n", bad);
	snprintf(missing_msg, sizeof(missing_msg), "%s: No such file or directory\n", missing);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct result r;
		char envbuf[700];
		const char *env1[2] = { envbuf, NULL };
		const char *const *env = cases[i].env;

		/* POWERHIVE_CONFIG names the file when -c does not. */
		if (env && !env[0]) {
			snprintf(envbuf, sizeof(envbuf), "POWERHIVE_CONFIG=%s", good);
			env = env1;
		}
		run(&r, cases[i].http, MODE_PRINT, cases[i].args, env);
		if (r.status != cases[i].status)
			fail_msg("%s: exit %d, want %d\nstdout: %s\nstderr: %s", cases[i].name, r.status,
				 cases[i].status, r.out, r.err);
		if (cases[i].out_exact && strcmp(r.out, cases[i].out_exact) != 0)
			fail_msg("%s: stdout \"%s\", want \"%s\"", cases[i].name, r.out, cases[i].out_exact);
		if (cases[i].out_has && !strstr(r.out, cases[i].out_has))
			fail_msg("%s: stdout lacks \"%s\": %s", cases[i].name, cases[i].out_has, r.out);
		if (cases[i].err_has && !strstr(r.err, cases[i].err_has))
			fail_msg("%s: stderr lacks \"%s\": %s", cases[i].name, cases[i].err_has, r.err);
		if (cases[i].err_exact && strcmp(r.err, cases[i].err_exact) != 0)
			fail_msg("%s: stderr \"%s\", want \"%s\"", cases[i].name, r.err, cases[i].err_exact);
		if (env == env1) {
			assert_string_equal(r.out, ok_good);
		}
		result_free(&r);
	}
}

static void test_start(void **state)
{
	struct result r;
	char want[800], host[128];

	(void)state;
	run(&r, false, MODE_PRINT, A("-c", good), NULL);
	assert_int_equal(r.status, STARTED);
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	snprintf(want, sizeof(want), "source=tdaemon/%s/%ld host=%s boot=", host, (long)r.pid, host);
	if (strncmp(r.out, want, strlen(want)) != 0)
		fail_msg("stdout \"%s\", want prefix \"%s\"", r.out, want);
	long long boot = atoll(r.out + strlen(want));
	assert_true(llabs(boot - (long long)time(NULL) * 1000) < 10000);
	assert_non_null(strstr(r.out, " level=info loglevel=info addr=127.0.0.1:7001 port=81 "));
	assert_non_null(strstr(r.out, " name=tdaemon\n"));
	snprintf(want, sizeof(want), "INFO started version=%s config=%s", HIVE_VERSION, good);
	assert_non_null(strstr(r.err, want));
	assert_non_null(strstr(r.err, "INFO stopped\n"));
	result_free(&r);
}

/* defaults < file < environment < command line, for log level and address. */
static void test_precedence(void **state)
{
	const struct {
		const char *name;
		const char *const *args;
		const char *const *env;
		const char *level, *addr;
	} cases[] = {
		{ "file", A("-c", quiet), NULL, "warn", "127.0.0.1:7002" },
		{ "env over file", A("-c", quiet),
		  A("POWERHIVE_LOG_LEVEL=error", "POWERHIVE_HTTP_ADDR=127.0.0.1:7004"), "error",
		  "127.0.0.1:7004" },
		{ "command line over env", A("-c", quiet, "-l", "debug", "--http", "127.0.0.1:7005"),
		  A("POWERHIVE_LOG_LEVEL=error", "POWERHIVE_HTTP_ADDR=127.0.0.1:7004"), "debug",
		  "127.0.0.1:7005" },
		{ "long options", A("--config", quiet, "--log-level", "warning"), NULL, "warn",
		  "127.0.0.1:7002" },
		{ "defaults", A("-c", empty), NULL, "info", "127.0.0.1:8080" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct result r;
		char want[300];

		run(&r, true, MODE_PRINT, cases[i].args, cases[i].env);
		if (r.status != STARTED)
			fail_msg("%s: exit %d: %s", cases[i].name, r.status, r.err);
		snprintf(want, sizeof(want), " level=%s loglevel=%s addr=%s ", cases[i].level,
			 cases[i].level, cases[i].addr);
		if (!strstr(r.out, want))
			fail_msg("%s: \"%s\" lacks \"%s\"", cases[i].name, r.out, want);
		/* The quiet levels hide the INFO start line. */
		if (strcmp(cases[i].level, "warn") == 0 || strcmp(cases[i].level, "error") == 0)
			assert_null(strstr(r.err, "started"));
		result_free(&r);
	}
}

static void test_signals(void **state)
{
	struct result r;

	(void)state;
	run(&r, false, MODE_SIGNALS, A("-c", good), NULL);
	assert_int_equal(r.status, STARTED);
	assert_string_equal(r.out, "before reload=0 quit=0\n"
				   "hup reload=1 quit=0\n"
				   "term reload=1 quit=1\n"
				   "int quit=1\n");
	result_free(&r);
}

static void test_secret_masked(void **state)
{
	struct result r;

	(void)state;
	run(&r, false, MODE_SECRET, A("-c", good), NULL);
	assert_int_equal(r.status, STARTED);
	assert_non_null(strstr(r.err, "INFO leak token=<secret>\n"));
	assert_null(strstr(r.err, "tok-secret-1234"));
	result_free(&r);
}

static char *slurp(FILE *f)
{
	struct stat st;
	char *buf;

	fflush(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	buf = calloc(1, (size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fileno(f), buf, (size_t)st.st_size, 0), st.st_size);
	return buf;
}

/* In this process: the reload path does not exit. */
static void test_reload(void **state)
{
	char path[700], *argv[] = { "tdaemon", "-c", path, "-l", "debug", NULL }, *log, want[900];
	struct hive_daemon_spec spec = { .name = "tdaemon", .summary = "Test daemon." };
	struct hive_daemon d;
	FILE *lf = tmpfile();

	(void)state;
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
		unsetenv(env_vars[i]);
	assert_non_null(lf);
	snprintf(path, sizeof(path), "%s/reload.json", dir);
	assert_int_equal(tl_write_file(path,
				       "{\"log_level\":\"info\",\"network\":{\"port\":81},"
				       "\"http\":{\"auth\":{\"token\":\"tok-one-111\"}}}"), 0);
	hive_daemon_start(&d, &spec, 5, argv);
	hive_log_init("tdaemon", hive_log_get_level(), lf);
	assert_int_equal(d.cfg.network.port, 81);
	assert_int_equal(hive_log_get_level(), HIVE_LOG_DEBUG);

	/* Bad values, bad JSON, no file: each refused, the running config stays. */
	const char *bad_texts[] = { "{\"network\":{\"port\":0}}", "{\"network\":", NULL };
	for (size_t i = 0; i < 3; i++) {
		if (bad_texts[i])
			assert_int_equal(tl_write_file(path, bad_texts[i]), 0);
		else
			assert_int_equal(unlink(path), 0);
		hive_reload = 1;
		assert_int_equal(hive_daemon_reload(&d), 0);
		assert_int_equal(hive_reload, 0);
		assert_int_equal(d.cfg.network.port, 81);
		assert_string_equal(d.cfg.http.auth.token, "tok-one-111");
	}
	log = slurp(lf);
	snprintf(want, sizeof(want), "ERROR reload refused, keeping the running config "
		 "problem=\"%s: network.port: 0 is out of range (1..65535)\"\n", path);
	assert_non_null(strstr(log, want));
	snprintf(want, sizeof(want), "problem=\"%s: No such file or directory\"\n", path);
	assert_non_null(strstr(log, want));
	free(log);

	/* A good one replaces it; -l still wins over the file's level. */
	assert_int_equal(tl_write_file(path,
				       "{\"log_level\":\"error\",\"network\":{\"port\":82,"
				       "\"subnets\":[\"127.42.0.0/24\",\"127.42.1.0/24\"]},"
				       "\"http\":{\"auth\":{\"token\":\"tok-two-222\"}}}"), 0);
	hive_reload = 1;
	assert_int_equal(hive_daemon_reload(&d), 1);
	assert_int_equal(hive_reload, 0);
	assert_int_equal(d.cfg.network.port, 82);
	assert_int_equal(d.cfg.network.n_subnets, 2);
	assert_string_equal(d.cfg.log_level, "debug");
	assert_int_equal(hive_log_get_level(), HIVE_LOG_DEBUG);

	/* The new token is masked; the old one is no longer a secret. */
	log_info("tokens new=%s old=%s", "tok-two-222", "tok-one-111");
	log = slurp(lf);
	assert_non_null(strstr(log, "INFO reloaded config="));
	assert_non_null(strstr(log, "INFO tokens new=<secret> old=tok-one-111\n"));
	free(log);

	hive_daemon_finish(&d);
	log = slurp(lf);
	assert_non_null(strstr(log, "INFO stopped\n"));
	free(log);
	assert_null(d.cfg.network.subnets);
	hive_log_init("tdaemon", HIVE_LOG_INFO, NULL);
	fclose(lf);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_start),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_signals),
		cmocka_unit_test(test_secret_masked),
		cmocka_unit_test(test_reload),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
