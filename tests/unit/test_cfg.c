/* test_cfg — defaults, every key, environment overrides, validation (golden
 * files under tests/unit/golden/cfg: NAME.json with NAME.expected holding the
 * exact error), unknown-key warnings, subnet, IPv4 and address helpers. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "hive/cfg.h"
#include "hive/log.h"
#include "../lib/testlib.h"

#define GOLDEN_DIR "tests/unit/golden/cfg"

static FILE *logf_;

static const char *const env_vars[] = {
	"POWERHIVE_LOG_LEVEL", "POWERHIVE_HTTP_ADDR", "POWERHIVE_API_TOKEN", "POWERHIVE_DATABASE",
};

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
		unsetenv(env_vars[i]);
}

static char *log_text(void)
{
	struct stat st;
	char *buf;

	fflush(logf_);
	assert_int_equal(fstat(fileno(logf_), &st), 0);
	buf = calloc(1, (size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fileno(logf_), buf, (size_t)st.st_size, 0), st.st_size);
	return buf;
}

static void log_reset(void)
{
	assert_int_equal(ftruncate(fileno(logf_), 0), 0);
	assert_int_equal(lseek(fileno(logf_), 0, SEEK_SET), 0);
}

static int group_setup(void **state)
{
	(void)state;
	logf_ = tmpfile();
	assert_non_null(logf_);
	hive_log_init("tcfg", HIVE_LOG_DEBUG, logf_);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	hive_log_init("tcfg", HIVE_LOG_INFO, NULL);
	fclose(logf_);
	return 0;
}

static int each_setup(void **state)
{
	(void)state;
	clear_env();
	log_reset();
	return 0;
}

static void test_defaults(void **state)
{
	struct hive_cfg c;

	(void)state;
	hive_cfg_defaults(&c);
	const struct {
		const char *key;
		long long got, want;
	} ints[] = {
		{ "database.batch_max", c.database.batch_max, 500 },
		{ "database.batch_ms", c.database.batch_ms, 200 },
		{ "network.n_subnets", (long long)c.network.n_subnets, 0 },
		{ "network.port", c.network.port, 80 },
		{ "network.miner_probe_timeout_ms", c.network.miner_probe_timeout_ms, 1500 },
		{ "network.probe_concurrency", c.network.probe_concurrency, 2048 },
		{ "network.http_timeout_ms", c.network.http_timeout_ms, 5000 },
		{ "network.http_concurrency", c.network.http_concurrency, 256 },
		{ "intervals.discovery_seconds", c.intervals.discovery_seconds, 30 },
		{ "intervals.status_seconds", c.intervals.status_seconds, 15 },
		{ "intervals.telemetry_seconds", c.intervals.telemetry_seconds, 60 },
		{ "intervals.heartbeat_seconds", c.intervals.heartbeat_seconds, 5 },
		{ "http.max_body_bytes", (long long)c.http.max_body_bytes, 65536 },
		{ "http.auth.open_reads", c.http.auth.open_reads, 0 },
		{ "bus.sendbuf", c.bus.sendbuf, 8192 },
		{ "bus.recvbuf", c.bus.recvbuf, 8192 },
		{ "bus.max_message_bytes", (long long)c.bus.max_message_bytes, 1048576 },
		{ "retention.status_days", c.retention.status_days, 365 },
		{ "retention.telemetry_days", c.retention.telemetry_days, 7 },
		{ "retention.audit_days", c.retention.audit_days, 365 },
		{ "retention.prune_batch", c.retention.prune_batch, 2000 },
		{ "retention.status_raw_hours", c.retention.status_raw_hours, 6 },
		{ "retention.telemetry_raw_hours", c.retention.telemetry_raw_hours, 6 },
		{ "retention.minute_days", c.retention.minute_days, 7 },
		{ "retention.max_bytes", c.retention.max_bytes, 0 },
		{ "scheduler.managed_only", c.scheduler.managed_only, 0 },
		{ "scheduler.job_timeout_seconds", c.scheduler.job_timeout_seconds, 30 },
	};
	const struct {
		const char *key, *got, *want;
	} strs[] = {
		{ "source", c.source, "" },
		{ "log_level", c.log_level, "info" },
		{ "database.path", c.database.path, "data/powerhive.db" },
		{ "database.secrets_key_file", c.database.secrets_key_file, "" },
		{ "network.default_password", c.network.default_password, "admin" },
		{ "http.addr", c.http.addr, "127.0.0.1:8080" },
		{ "http.web_root", c.http.web_root, "web" },
		{ "http.auth.token", c.http.auth.token, "" },
		{ "http.auth.token_file", c.http.auth.token_file, "data/api-token" },
		/* ipc sockets beside the database: no port anyone could dial */
		{ "bus.events", c.bus.events, "ipc://data/bus/events" },
		{ "bus.jobs_status", c.bus.jobs_status, "ipc://data/bus/jobs_status" },
		{ "bus.jobs_telemetry", c.bus.jobs_telemetry, "ipc://data/bus/jobs_telemetry" },
		{ "bus.jobs_control", c.bus.jobs_control, "ipc://data/bus/jobs_control" },
		{ "bus.jobs_plant", c.bus.jobs_plant, "ipc://data/bus/jobs_plant" },
		{ "bus.control", c.bus.control, "ipc://data/bus/control" },
		{ "bus.feed", c.bus.feed, "ipc://data/bus/feed" },
		{ "bus.discovery_events", c.bus.discovery_events, "ipc://data/bus/discovery/events" },
		{ "bus.discovery_control", c.bus.discovery_control,
		  "ipc://data/bus/discovery/control" },
		{ "bus.tls.discovery_ca_file", c.bus.tls.discovery_ca_file, "" },
		{ "bus.tls.ca_file", c.bus.tls.ca_file, "" },
		{ "bus.tls.cert_file", c.bus.tls.cert_file, "" },
		{ "bus.tls.key_file", c.bus.tls.key_file, "" },
	};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		if (ints[i].got != ints[i].want)
			fail_msg("%s: %lld, want %lld", ints[i].key, ints[i].got, ints[i].want);
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (strcmp(strs[i].got, strs[i].want) != 0)
			fail_msg("%s: \"%s\", want \"%s\"", strs[i].key, strs[i].got, strs[i].want);
	assert_null(c.network.subnets);

	/* The defaults are valid on their own; an empty object means them. */
	char err[512];
	assert_int_equal(hive_cfg_validate(&c, err, sizeof(err)), 0);
	struct hive_cfg p;
	assert_int_equal(hive_cfg_parse(&p, "empty.json", "{}", err, sizeof(err)), 0);
	assert_string_equal(p.source, "empty.json");
	memset(p.source, 0, sizeof(p.source));
	assert_memory_equal(&p, &c, sizeof(c));
	hive_cfg_free(&p);
}

static void test_shipped_config(void **state)
{
	struct hive_cfg c;
	char err[512], *log;
	struct hive_subnet loopback;

	(void)state;
	assert_int_equal(hive_subnet_parse("127.0.0.0/8", &loopback), 0);
	if (hive_cfg_load(&c, "etc/powerhive.json", err, sizeof(err)) != 0)
		fail_msg("etc/powerhive.json: %s", err);
	/* Safety: the shipped config sweeps loopback only (the simulated fleet). */
	assert_true(c.network.n_subnets > 0);
	for (size_t i = 0; i < c.network.n_subnets; i++) {
		uint32_t last = c.network.subnets[i].network |
				~(c.network.subnets[i].prefix ? 0xffffffffu << (32 - c.network.subnets[i].prefix) : 0);

		assert_true(hive_subnet_contains(&loopback, c.network.subnets[i].network));
		assert_true(hive_subnet_contains(&loopback, last));
	}
	assert_int_equal(c.network.port, 18080);
	assert_string_equal(c.http.addr, "127.0.0.1:8080");
	/* The bus: ipc sockets in data/bus (apid makes it 0700), never TCP. */
	const char *urls[] = { c.bus.events, c.bus.jobs_status, c.bus.jobs_telemetry,
			       c.bus.jobs_control, c.bus.jobs_plant, c.bus.control, c.bus.feed };
	for (size_t i = 0; i < 7; i++)
		assert_true(strncmp(urls[i], "ipc://data/bus/", 15) == 0);
	assert_string_equal(c.database.path, "data/powerhive.db");
	assert_string_equal(c.http.auth.token_file, "data/api-token");
	/* It uses no key the code does not know. */
	log = log_text();
	assert_null(strstr(log, "unknown key"));
	free(log);
	hive_cfg_free(&c);
}

static void test_every_key(void **state)
{
	static const char *text =
		"{\"log_level\":\"debug\","
		"\"database\":{\"path\":\"/var/lib/ph.db\",\"batch_max\":50,\"batch_ms\":20},"
		"\"network\":{\"subnets\":[\"127.42.0.0/22\",\"127.43.1.0/24\",\"127.44.0.9/32\"],"
		"\"port\":8081,\"miner_probe_timeout_ms\":900,\"probe_concurrency\":100,"
		"\"http_timeout_ms\":3000,\"http_concurrency\":64,\"default_password\":\"root\"},"
		"\"intervals\":{\"discovery_seconds\":31,\"status_seconds\":16,"
		"\"telemetry_seconds\":61,\"heartbeat_seconds\":6},"
		"\"http\":{\"addr\":\"localhost:9090\",\"web_root\":\"/srv/web\","
		"\"max_body_bytes\":1000,\"auth\":{\"token\":\"tok-123\","
		"\"token_file\":\"/etc/ph/token\",\"open_reads\":true}},"
		"\"bus\":{\"events\":\"ipc:///tmp/ph-events\",\"jobs_status\":\"inproc://js\","
		"\"jobs_telemetry\":\"tcp://localhost:6552\",\"control\":\"tcp://[::1]:6553\","
		"\"feed\":\"tcp://127.0.0.1:6554\",\"sendbuf\":100,\"recvbuf\":200,"
		"\"max_message_bytes\":4096},"
		"\"retention\":{\"status_days\":1,\"telemetry_days\":2,\"audit_days\":3,"
		"\"prune_batch\":4,\"status_raw_hours\":5,\"telemetry_raw_hours\":7,"
		"\"minute_days\":8,\"max_bytes\":53687091200},"
		"\"scheduler\":{\"managed_only\":true,\"job_timeout_seconds\":45}}";
	struct hive_cfg c;
	char err[512];

	(void)state;
	if (hive_cfg_parse(&c, "all.json", text, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(c.log_level, "debug");
	assert_string_equal(c.database.path, "/var/lib/ph.db");
	assert_int_equal(c.database.batch_max, 50);
	assert_int_equal(c.database.batch_ms, 20);
	assert_int_equal(c.network.n_subnets, 3);
	assert_string_equal(c.network.subnets[0].text, "127.42.0.0/22");
	assert_int_equal(c.network.subnets[0].network, 0x7f2a0000);
	assert_int_equal(c.network.subnets[0].prefix, 22);
	assert_string_equal(c.network.subnets[1].text, "127.43.1.0/24");
	assert_string_equal(c.network.subnets[2].text, "127.44.0.9/32");
	assert_int_equal(c.network.port, 8081);
	assert_int_equal(c.network.miner_probe_timeout_ms, 900);
	assert_int_equal(c.network.probe_concurrency, 100);
	assert_int_equal(c.network.http_timeout_ms, 3000);
	assert_int_equal(c.network.http_concurrency, 64);
	assert_string_equal(c.network.default_password, "root");
	assert_int_equal(c.intervals.discovery_seconds, 31);
	assert_int_equal(c.intervals.status_seconds, 16);
	assert_int_equal(c.intervals.telemetry_seconds, 61);
	assert_int_equal(c.intervals.heartbeat_seconds, 6);
	assert_string_equal(c.http.addr, "localhost:9090");
	assert_string_equal(c.http.web_root, "/srv/web");
	assert_int_equal(c.http.max_body_bytes, 1000);
	assert_string_equal(c.http.auth.token, "tok-123");
	assert_string_equal(c.http.auth.token_file, "/etc/ph/token");
	assert_true(c.http.auth.open_reads);
	assert_string_equal(c.bus.events, "ipc:///tmp/ph-events");
	assert_string_equal(c.bus.jobs_status, "inproc://js");
	assert_string_equal(c.bus.jobs_telemetry, "tcp://localhost:6552");
	assert_string_equal(c.bus.control, "tcp://[::1]:6553");
	assert_string_equal(c.bus.feed, "tcp://127.0.0.1:6554");
	assert_int_equal(c.bus.sendbuf, 100);
	assert_int_equal(c.bus.recvbuf, 200);
	assert_int_equal(c.bus.max_message_bytes, 4096);
	assert_int_equal(c.retention.status_days, 1);
	assert_int_equal(c.retention.telemetry_days, 2);
	assert_int_equal(c.retention.audit_days, 3);
	assert_int_equal(c.retention.prune_batch, 4);
	assert_int_equal(c.retention.status_raw_hours, 5);
	assert_int_equal(c.retention.telemetry_raw_hours, 7);
	assert_int_equal(c.retention.minute_days, 8);
	assert_true(c.retention.max_bytes == 53687091200LL);
	assert_true(c.scheduler.managed_only);
	assert_int_equal(c.scheduler.job_timeout_seconds, 45);

	/* A deep copy survives freeing the original. */
	struct hive_cfg d;
	assert_int_equal(hive_cfg_copy(&d, &c), 0);
	assert_ptr_not_equal(d.network.subnets, c.network.subnets);
	hive_cfg_free(&c);
	assert_null(c.network.subnets);
	assert_int_equal(c.network.n_subnets, 0);
	assert_int_equal(d.network.n_subnets, 3);
	assert_string_equal(d.network.subnets[2].text, "127.44.0.9/32");
	hive_cfg_free(&d);
	hive_cfg_free(&d);  /* twice is harmless */
}

static void test_null_keeps_default(void **state)
{
	struct hive_cfg c;
	char err[512];

	(void)state;
	assert_int_equal(hive_cfg_parse(&c, "n.json",
					 "{\"network\":{\"port\":null,\"subnets\":null},\"bus\":null}",
					 err, sizeof(err)), 0);
	assert_int_equal(c.network.port, 80);
	assert_int_equal(c.network.n_subnets, 0);
	assert_string_equal(c.bus.events, "ipc://data/bus/events");
	hive_cfg_free(&c);
}

static void test_unknown_keys(void **state)
{
	struct hive_cfg c;
	char err[512], *log;

	(void)state;
	assert_int_equal(hive_cfg_parse(&c, "u.json",
					 "{\"colour\":\"blue\",\"network\":{\"prot\":81,\"port\":82},"
					 "\"http\":{\"auth\":{\"tokn\":\"x\"}},\"extra\":{\"deep\":{\"er\":1}}}",
					 err, sizeof(err)), 0);
	assert_int_equal(c.network.port, 82);
	log = log_text();
	assert_non_null(strstr(log, "WARN config unknown key file=u.json key=colour\n"));
	assert_non_null(strstr(log, "WARN config unknown key file=u.json key=network.prot\n"));
	assert_non_null(strstr(log, "WARN config unknown key file=u.json key=http.auth.tokn\n"));
	assert_non_null(strstr(log, "WARN config unknown key file=u.json key=extra\n"));
	free(log);
	hive_cfg_free(&c);
}

/* Every NAME.json in the golden directory fails with exactly NAME.expected. */
static void test_golden(void **state)
{
	DIR *dir;
	struct dirent *de;
	int cases = 0, bad = 0;

	(void)state;
	dir = opendir(GOLDEN_DIR);
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		size_t n = strlen(de->d_name);
		char path[512], exp_path[512], err[1024], *expected;
		struct hive_cfg c;

		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, de->d_name);
		snprintf(exp_path, sizeof(exp_path), "%s/%.*s.expected", GOLDEN_DIR, (int)(n - 5),
			 de->d_name);
		expected = tl_read_file(exp_path);
		if (!expected) {
			printf("golden: %s has no .expected\n", path);
			bad++;
			continue;
		}
		expected[strcspn(expected, "\n")] = '\0';
		cases++;
		memset(&c, 0x5a, sizeof(c));
		if (hive_cfg_load(&c, path, err, sizeof(err)) != -1) {
			printf("golden: %s loaded, want: %s\n", path, expected);
			hive_cfg_free(&c);
			bad++;
		} else if (strcmp(err, expected) != 0) {
			printf("golden: %s\n   got: %s\n  want: %s\n", path, err, expected);
			bad++;
		} else if (c.network.subnets != NULL || c.network.n_subnets != 0) {
			printf("golden: %s left subnets behind\n", path);
			bad++;
		}
		free(expected);
	}
	closedir(dir);
	printf("figure: cfg golden cases %d, mismatches %d\n", cases, bad);
	fflush(stdout);
	assert_true(cases >= 50);
	assert_int_equal(bad, 0);
}

static void test_file_errors(void **state)
{
	struct hive_cfg c;
	char err[512], want[600], *dir;

	(void)state;
	assert_int_equal(hive_cfg_load(&c, "tests/unit/golden/cfg/no-such-file.json", err,
				       sizeof(err)), -1);
	assert_string_equal(err, "tests/unit/golden/cfg/no-such-file.json: No such file or directory");
	dir = tl_tmpdir("cfg");
	assert_non_null(dir);
	assert_int_equal(hive_cfg_load(&c, dir, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: Is a directory", dir);
	assert_string_equal(err, want);
	tl_rmrf(dir);
	free(dir);
	assert_int_equal(hive_cfg_load(&c, "", err, sizeof(err)), -1);
	assert_int_equal(hive_cfg_parse(&c, "x.json", "{\"a\":", err, sizeof(err)), -1);
	assert_string_equal(err, "x.json: line 1 column 5: unexpected token near end of file");
}

static void test_env(void **state)
{
	static const char *file = "{\"log_level\":\"warn\",\"http\":{\"addr\":\"127.0.0.1:7000\","
				  "\"auth\":{\"token\":\"from-file\"}},\"database\":{\"path\":\"f.db\"}}";
	static const struct {
		const char *var, *val;
		size_t off;   /* where the value must land */
		const char *want;
	} cases[] = {
		{ "POWERHIVE_LOG_LEVEL", "error", offsetof(struct hive_cfg, log_level), "error" },
		{ "POWERHIVE_HTTP_ADDR", "127.0.0.1:18888", offsetof(struct hive_cfg, http.addr),
		  "127.0.0.1:18888" },
		{ "POWERHIVE_API_TOKEN", "env-token", offsetof(struct hive_cfg, http.auth.token),
		  "env-token" },
		{ "POWERHIVE_DATABASE", "/tmp/env.db", offsetof(struct hive_cfg, database.path),
		  "/tmp/env.db" },
		/* Empty means unset: the file's value stays. */
		{ "POWERHIVE_LOG_LEVEL", "", offsetof(struct hive_cfg, log_level), "warn" },
		{ "POWERHIVE_DATABASE", "", offsetof(struct hive_cfg, database.path), "f.db" },
	};
	static const struct {
		const char *var, *val, *want;
	} bad[] = {
		{ "POWERHIVE_LOG_LEVEL", "loud",
		  "POWERHIVE_LOG_LEVEL: log_level: \"loud\" is not a log level (debug, info, warn, error)" },
		{ "POWERHIVE_HTTP_ADDR", "nowhere",
		  "POWERHIVE_HTTP_ADDR: http.addr: \"nowhere\" is not host:port" },
		{ "POWERHIVE_API_TOKEN", "has space",
		  "POWERHIVE_API_TOKEN: http.auth.token: contains a space or control character" },
		{ "POWERHIVE_API_TOKEN",
		  "0123456789012345678901234567890123456789012345678901234567890123"
		  "0123456789012345678901234567890123456789012345678901234567890123",
		  "POWERHIVE_API_TOKEN: http.auth.token: longer than 127 characters" },
	};
	struct hive_cfg c;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		clear_env();
		setenv(cases[i].var, cases[i].val, 1);
		if (hive_cfg_parse(&c, "e.json", file, err, sizeof(err)) != 0)
			fail_msg("case %zu: %s", i, err);
		assert_string_equal((char *)&c + cases[i].off, cases[i].want);
		hive_cfg_free(&c);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		clear_env();
		setenv(bad[i].var, bad[i].val, 1);
		assert_int_equal(hive_cfg_parse(&c, "e.json", file, err, sizeof(err)), -1);
		assert_string_equal(err, bad[i].want);
	}
	/* The environment does not excuse a bad file. */
	clear_env();
	setenv("POWERHIVE_LOG_LEVEL", "info", 1);
	assert_int_equal(hive_cfg_parse(&c, "e.json", "{\"log_level\":\"loud\"}", err, sizeof(err)), -1);
	assert_string_equal(err, "e.json: log_level: \"loud\" is not a log level (debug, info, warn, error)");
	clear_env();
}

static void test_token_not_echoed(void **state)
{
	struct hive_cfg c;
	char err[512];

	(void)state;
	assert_int_equal(hive_cfg_parse(&c, "t.json",
					 "{\"http\":{\"auth\":{\"token\":\"s3cret\\tvalue\"}}}", err,
					 sizeof(err)), -1);
	assert_null(strstr(err, "s3cret"));
	assert_string_equal(err, "t.json: http.auth.token: contains a space or control character");
}

static void test_validate(void **state)
{
	struct hive_cfg c;
	char err[512];
	struct hive_subnet wide = { .network = 0x7e000000, .prefix = 7, .text = "126.0.0.0/7" };
	struct hive_subnet dirty = { .network = 0x7f000001, .prefix = 8, .text = "127.0.0.1/8" };

	(void)state;
	hive_cfg_defaults(&c);
	c.network.port = 0;
	assert_int_equal(hive_cfg_validate(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "(defaults): network.port: 0 is out of range (1..65535)");
	hive_cfg_defaults(&c);
	strcpy(c.source, "etc/x.json");
	strcpy(c.http.addr, "127.0.0.1:99999");
	assert_int_equal(hive_cfg_validate(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "etc/x.json: http.addr: \"127.0.0.1:99999\" is not host:port");
	hive_cfg_defaults(&c);
	c.network.subnets = &wide;
	c.network.n_subnets = 1;
	assert_int_equal(hive_cfg_validate(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "(defaults): network.subnets[0]: \"126.0.0.0/7\" is wider than /8 "
				 "(a sweep that size is a mistake)");
	c.network.subnets = &dirty;
	assert_int_equal(hive_cfg_validate(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "(defaults): network.subnets[0]: \"127.0.0.1/8\" has host bits set");
	hive_cfg_defaults(&c);
	strcpy(c.log_level, "warning");
	assert_int_equal(hive_cfg_validate(&c, err, sizeof(err)), 0);
}

/* A failure after subnets were read leaves nothing to free (ASan checks). */
static void test_failure_frees(void **state)
{
	struct hive_cfg c;
	char err[512];

	(void)state;
	assert_int_equal(hive_cfg_parse(&c, "f.json",
					 "{\"network\":{\"subnets\":[\"127.42.0.0/24\"]},"
					 "\"bus\":{\"sendbuf\":0}}", err, sizeof(err)), -1);
	assert_null(c.network.subnets);
	assert_int_equal(c.network.n_subnets, 0);
	/* The same cfg is fine to reuse after a failure. */
	assert_int_equal(hive_cfg_parse(&c, "f.json",
					 "{\"network\":{\"subnets\":[\"127.42.0.0/24\"]},"
					 "\"log_level\":\"debug\"}", err, sizeof(err)), 0);
	hive_cfg_free(&c);
}

static void test_subnets(void **state)
{
	static const struct {
		const char *text;
		int rc;
		uint32_t network;
		int prefix;
		uint64_t hosts;
	} cases[] = {
		{ "127.42.0.0/24", 0, 0x7f2a0000, 24, 254 },
		{ "127.42.0.0/22", 0, 0x7f2a0000, 22, 1022 },
		{ "127.0.0.0/8", 0, 0x7f000000, 8, 16777214 },
		{ "127.42.0.4/30", 0, 0x7f2a0004, 30, 2 },
		{ "127.42.0.4/31", 0, 0x7f2a0004, 31, 2 },
		{ "127.42.0.7/32", 0, 0x7f2a0007, 32, 1 },
		{ "0.0.0.0/0", 0, 0, 0, 4294967294ULL },
		{ "127.42.0.1/24", -1, 0, 0, 0 },   /* host bits */
		{ "127.42.0.0", -1, 0, 0, 0 },
		{ "127.42.0.0/", -1, 0, 0, 0 },
		{ "127.42.0.0/33", -1, 0, 0, 0 },
		{ "127.42.0.0/024", -1, 0, 0, 0 },
		{ "127.42.0.0/+4", -1, 0, 0, 0 },
		{ "127.042.0.0/16", -1, 0, 0, 0 },
		{ "127.42.0/24", -1, 0, 0, 0 },
		{ "127.42.0.0.0/24", -1, 0, 0, 0 },
		{ "127.42.0.0/24 ", -1, 0, 0, 0 },
		{ " 127.42.0.0/24", -1, 0, 0, 0 },
		{ "127.42.0.256/32", -1, 0, 0, 0 },
		{ "1270.42.0.0/16", -1, 0, 0, 0 },
		{ "a.b.c.d/8", -1, 0, 0, 0 },
		{ "", -1, 0, 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hive_subnet s;

		if (hive_subnet_parse(cases[i].text, &s) != cases[i].rc)
			fail_msg("\"%s\": rc != %d", cases[i].text, cases[i].rc);
		if (cases[i].rc != 0)
			continue;
		assert_int_equal(s.network, cases[i].network);
		assert_int_equal(s.prefix, cases[i].prefix);
		assert_string_equal(s.text, cases[i].text);
		assert_int_equal(hive_subnet_hosts(&s), cases[i].hosts);
	}

	struct hive_subnet s;
	assert_int_equal(hive_subnet_parse("127.42.4.0/22", &s), 0);
	assert_true(hive_subnet_contains(&s, ntohl(inet_addr("127.42.4.0"))));
	assert_true(hive_subnet_contains(&s, ntohl(inet_addr("127.42.7.255"))));
	assert_false(hive_subnet_contains(&s, ntohl(inet_addr("127.42.8.0"))));
	assert_false(hive_subnet_contains(&s, ntohl(inet_addr("127.42.3.255"))));
	assert_int_equal(hive_subnet_parse("0.0.0.0/0", &s), 0);
	assert_true(hive_subnet_contains(&s, 0xffffffff));
	assert_int_equal(hive_subnet_parse("127.0.0.1/32", &s), 0);
	assert_true(hive_subnet_contains(&s, 0x7f000001));
	assert_false(hive_subnet_contains(&s, 0x7f000002));
}

/* Against inet_ntop, including the widest address and the returned buffer. */
static void test_ipv4_format(void **state)
{
	static const uint32_t addrs[] = {
		0, 1, 0x7f000001, 0x7f2a0a0b, 0x0a000100, 0xc0a80001, 0xff000000, 0xffffffff,
	};
	char out[HIVE_IPV4_LEN], want[INET_ADDRSTRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		struct in_addr a = { .s_addr = htonl(addrs[i]) };

		assert_non_null(inet_ntop(AF_INET, &a, want, sizeof(want)));
		memset(out, 'x', sizeof(out));
		assert_ptr_equal(hive_ipv4_format(addrs[i], out), out);
		assert_string_equal(out, want);
	}
	assert_int_equal(strlen(hive_ipv4_format(0xffffffff, out)), HIVE_IPV4_LEN - 1);
}

static void test_addr_url(void **state)
{
	static const struct {
		const char *s;
		int rc;
	} addrs[] = {
		{ "127.0.0.1:8080", 0 }, { "localhost:1", 0 }, { "0.0.0.0:65535", 0 },
		{ "[::1]:8080", 0 },     { "my-host.local:80", 0 },
		{ "127.0.0.1", -1 },     { "8080", -1 },        { ":8080", -1 },
		{ "127.0.0.1:", -1 },    { "127.0.0.1:0", -1 }, { "127.0.0.1:65536", -1 },
		{ "127.0.0.1:080", -1 }, { "127.0.0.1:8a", -1 }, { "host name:80", -1 },
		{ "[]:80", -1 },         { "[::1]80", -1 },     { "", -1 },
		{ "127.0.0.1:123456", -1 },
	};
	static const struct {
		const char *s;
		int rc;
	} urls[] = {
		{ "tcp://127.0.0.1:5550", 0 }, { "tcp://localhost:1", 0 },
		{ "tcp://[::1]:5550", 0 },     { "ipc:///tmp/powerhive.sock", 0 },
		{ "inproc://events", 0 },      { "ipc://data/bus/events", 0 },
		{ "tcp://127.9.8.7:5550", 0 }, { "tls+tcp://10.0.0.1:5550", 0 },
		{ "tls+tcp://hub.farm:5550", 0 },
		/* plain TCP off loopback carries the bus to anyone: refused */
		{ "tcp://10.0.0.1:5550", -1 }, { "tcp://0.0.0.0:5550", -1 },
		{ "tcp://hub.farm:5550", -1 }, { "tcp://127.0.0.1.evil:5550", -1 },
		{ "tcp://[::]:5550", -1 },     { "tls+tcp://10.0.0.1", -1 },
		{ "tcp://127.0.0.1", -1 },     { "tcp://:5550", -1 },
		{ "tcp://127.0.0.1:0", -1 },   { "http://127.0.0.1:5550", -1 },
		{ "127.0.0.1:5550", -1 },      { "ipc://", -1 },
		{ "inproc://", -1 },           { "inproc://a b", -1 },
		{ "ws://127.0.0.1:5550", -1 }, { "", -1 },
	};
	char longurl[400];

	(void)state;
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		if (hive_cfg_addr_ok(addrs[i].s) != addrs[i].rc)
			fail_msg("addr \"%s\": want %d", addrs[i].s, addrs[i].rc);
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
		if (hive_cfg_url_ok(urls[i].s) != urls[i].rc)
			fail_msg("url \"%s\": want %d", urls[i].s, urls[i].rc);
	assert_int_equal(hive_cfg_addr_ok(NULL), -1);
	assert_int_equal(hive_cfg_url_ok(NULL), -1);
	memset(longurl, 'a', sizeof(longurl) - 1);
	longurl[sizeof(longurl) - 1] = '\0';
	memcpy(longurl, "inproc://", 9);
	assert_int_equal(hive_cfg_url_ok(longurl), -1);
}

/* The bus's transports: plain TCP off loopback is refused with a reason
 * (nothing dials it: validation only); TLS needs its three files. */
static void test_bus_transports(void **state)
{
	struct hive_cfg c;
	char err[512];

	(void)state;
	assert_int_equal(hive_cfg_parse(&c, "t.json", "{\"bus\":{\"events\":\"tcp://10.0.0.1:5550\"}}",
					 err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bus.events"));
	assert_non_null(strstr(err, "allowed on loopback (127.0.0.0/8) only"));
	assert_int_equal(hive_cfg_parse(&c, "t.json",
					 "{\"bus\":{\"events\":\"tls+tcp://10.0.0.1:5550\","
					 "\"tls\":{\"ca_file\":\"ca.crt\",\"cert_file\":\"w.crt\"}}}",
					 err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needs bus.tls.ca_file, bus.tls.cert_file and bus.tls.key_file"));
	assert_int_equal(hive_cfg_parse(&c, "t.json",
					 "{\"bus\":{\"events\":\"tls+tcp://10.0.0.1:5550\","
					 "\"control\":\"tls+tcp://hub.farm:5553\","
					 "\"feed\":\"tcp://127.0.0.1:5554\","
					 "\"tls\":{\"ca_file\":\"ca.crt\",\"cert_file\":\"w.crt\","
					 "\"key_file\":\"w.key\"}}}", err, sizeof(err)), 0);
	assert_string_equal(c.bus.events, "tls+tcp://10.0.0.1:5550");
	assert_string_equal(c.bus.tls.key_file, "w.key");
	hive_cfg_free(&c);
}

/* Every key the code knows is documented in docs/config.md, and the code
 * knows every key listed here (no unknown-key warning for it). */
static void test_keys_documented(void **state)
{
	static const char *const all[] = {
		"log_level", "database.path", "database.batch_max", "database.batch_ms",
		"network.subnets", "network.port", "network.miner_probe_timeout_ms",
		"network.probe_concurrency", "network.http_timeout_ms", "network.http_concurrency",
		"network.default_password", "intervals.discovery_seconds", "intervals.status_seconds",
		"intervals.telemetry_seconds", "intervals.heartbeat_seconds", "http.addr",
		"http.web_root", "http.max_body_bytes", "http.auth.token", "http.auth.token_file",
		"http.auth.open_reads", "bus.events", "bus.jobs_status", "bus.jobs_telemetry",
		"bus.control", "bus.feed", "bus.sendbuf", "bus.recvbuf", "bus.max_message_bytes",
		"retention.status_days", "retention.telemetry_days", "retention.audit_days",
		"retention.prune_batch", "scheduler.managed_only", "scheduler.job_timeout_seconds",
		"bus.jobs_plant", "retention.power_days", "power.mode", "power.margin_pct",
		"power.interval_seconds", "power.stale_seconds", "power.raise_after_seconds",
		"power.allow_pause", "power.max_w", "power.fallback", "power.fallback_w",
		"power.deadband_w", "power.min_raise_interval_seconds", "power.raise_step_pct",
		"power.max_jump_pct", "power.source", "retention.status_raw_hours",
		"retention.telemetry_raw_hours", "retention.minute_days", "retention.max_bytes",
		"alerts.enabled", "alerts.evaluate_seconds", "alerts.group_seconds",
		"alerts.resolve_seconds", "alerts.retry_max_seconds", "alerts.give_up_hours",
		"alerts.rules", "alerts.channels", "bus.jobs_control", "bus.tls.ca_file",
		"bus.tls.cert_file", "bus.tls.key_file", "database.secrets_key_file",
		"bus.discovery_events", "bus.discovery_control", "bus.tls.discovery_ca_file",
		"POWERHIVE_CONFIG", "POWERHIVE_LOG_LEVEL", "POWERHIVE_HTTP_ADDR",
		"POWERHIVE_API_TOKEN", "POWERHIVE_DATABASE",
	};
	char *doc = tl_read_file("docs/config.md"), want[128], json[256], err[512], *log;
	struct hive_cfg c;

	(void)state;
	assert_non_null(doc);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		snprintf(want, sizeof(want), "`%s`", all[i]);
		if (!strstr(doc, want))
			fail_msg("docs/config.md does not document %s", all[i]);
		if (strncmp(all[i], "POWERHIVE_", 10) == 0)
			continue;
		/* Nest "a.b.c" as {"a":{"b":{"c":null}}}: null keeps the default. */
		char *p = json;
		const char *k = all[i];
		int depth = 0;
		for (;;) {
			const char *dot = strchr(k, '.');
			size_t n = dot ? (size_t)(dot - k) : strlen(k);
			p += sprintf(p, "{\"%.*s\":", (int)n, k);
			depth++;
			if (!dot)
				break;
			k = dot + 1;
		}
		p += sprintf(p, "null");
		while (depth--)
			*p++ = '}';
		*p = '\0';
		log_reset();
		if (hive_cfg_parse(&c, "k.json", json, err, sizeof(err)) != 0)
			fail_msg("%s: %s", json, err);
		hive_cfg_free(&c);
		log = log_text();
		if (strstr(log, "unknown key"))
			fail_msg("%s: %s", all[i], log);
		free(log);
	}
	free(doc);
}


/* alerts: the rules' defaults, overrides per model, channels, and the
 * errors, none of which may echo a channel's URL or secret. */
static void test_alerts(void **state)
{
	static const struct {
		const char *json, *err;
	} bad[] = {
		{ "{\"alerts\":{\"rules\":{\"chip_temp_high\":{\"threshold\":500}}}}",
		  "a.json: alerts.rules.chip_temp_high.threshold: 500 is out of range (20..200)" },
		{ "{\"alerts\":{\"rules\":{\"miner_offline\":{\"threshold\":3}}}}",
		  "a.json: alerts.rules.miner_offline.threshold: rule miner_offline has no threshold" },
		{ "{\"alerts\":{\"rules\":{\"hashrate_low\":{\"for_seconds\":-1}}}}",
		  "a.json: alerts.rules.hashrate_low.for_seconds: -1 is out of range (0..604800)" },
		{ "{\"alerts\":{\"rules\":{\"hashrate_low\":{\"models\":{\"s19\":{\"threshold\":\"x\"}}}}}}",
		  "a.json: alerts.rules.hashrate_low.models.s19.threshold: expected number, got string" },
		{ "{\"alerts\":{\"channels\":[{\"name\":\"a\",\"kind\":\"pager\"}]}}",
		  "a.json: alerts.channels[0].kind: expected one of webhook, slack, telegram, email" },
		{ "{\"alerts\":{\"channels\":[{\"name\":\"a\",\"kind\":\"webhook\",\"url\":\"ftp://h/TOPSECRET\"}]}}",
		  "a.json: alerts.channels[0].url: a webhook channel needs an http:// or https:// URL" },
		{ "{\"alerts\":{\"channels\":[{\"name\":\"a\",\"kind\":\"slack\",\"url\":\"https://h/TOPSECRET\"},"
		  "{\"name\":\"a\",\"kind\":\"webhook\",\"url\":\"http://h/x\"}]}}",
		  "a.json: alerts.channels[1].name: \"a\" is also alerts.channels[0]" },
		{ "{\"alerts\":{\"channels\":[{\"name\":\"t\",\"kind\":\"telegram\",\"url\":\"https://h/botTOPSECRET/sendMessage\"}]}}",
		  "a.json: alerts.channels[0].chat_id: a telegram channel needs the chat id" },
		{ "{\"alerts\":{\"channels\":[{\"name\":\"m\",\"kind\":\"email\",\"smtp_url\":\"http://TOPSECRET\","
		  "\"from\":\"a@b\",\"to\":\"c@d\"}]}}",
		  "a.json: alerts.channels[0].smtp_url: an email channel needs smtp://host[:port] or smtps://host[:port]" },
		{ "{\"alerts\":{\"channels\":[{\"name\":\"w\",\"url\":\"http://h/\"}]}}",
		  "a.json: alerts.channels[0].kind: missing (webhook, slack, telegram, email)" },
		{ "{\"alerts\":{\"channels\":[{\"name\":\"w\",\"kind\":\"webhook\",\"url\":\"http://h/\",\"secret\":7}]}}",
		  "a.json: alerts.channels[0].secret: expected string, got integer" },
		{ "{\"alerts\":{\"evaluate_seconds\":0}}",
		  "a.json: alerts.evaluate_seconds: 0 is out of range (1..3600)" },
	};
	struct hive_cfg c, d;
	char err[512], *log;

	(void)state;
	hive_cfg_defaults(&c);
	assert_true(c.alerts.enabled);
	assert_int_equal(c.alerts.evaluate_seconds, 5);
	assert_int_equal(c.alerts.rules[HIVE_ALERT_MINER_OFFLINE].for_seconds, 120);
	assert_true(c.alerts.rules[HIVE_ALERT_CHIP_TEMP_HIGH].threshold == 90);
	assert_true(c.alerts.rules[HIVE_ALERT_HASHRATE_LOW].threshold == 70);
	assert_int_equal(c.alerts.rules[HIVE_ALERT_HASHRATE_LOW].for_seconds, 600);
	assert_true(c.alerts.rules[HIVE_ALERT_DISK_LOW].threshold == 5);
	for (int i = 0; i < HIVE_ALERT_RULES; i++) {
		assert_non_null(hive_alert_rule_name(i));
		assert_int_equal(hive_alert_rule_parse(hive_alert_rule_name(i)), i);
		assert_true(c.alerts.rules[i].enabled);
	}
	assert_null(hive_alert_rule_name(HIVE_ALERT_RULES));
	assert_int_equal(hive_alert_rule_parse("nope"), -1);
	assert_int_equal(hive_cfg_validate(&c, err, sizeof(err)), 0);

	assert_int_equal(hive_cfg_parse(&c, "a.json",
		"{\"alerts\":{\"group_seconds\":5,\"rules\":{"
		"\"hashrate_low\":{\"threshold\":80,\"for_seconds\":60,"
		"  \"models\":{\"s19\":{\"threshold\":60},\"s21\":{\"for_seconds\":10}}},"
		"\"fan_stopped\":{\"enabled\":false},\"miner_ofline\":{}},"
		"\"channels\":[{\"name\":\"ops\",\"kind\":\"webhook\",\"url\":\"http://127.0.0.1:9/h\","
		"  \"secret\":\"k\"},"
		" {\"name\":\"mail\",\"kind\":\"email\",\"smtp_url\":\"smtp://127.0.0.1:25\","
		"  \"from\":\"hive@farm\",\"to\":\"a@farm,b@farm\"}]}}", err, sizeof(err)), 0);
	assert_int_equal(c.alerts.group_seconds, 5);
	assert_true(c.alerts.rules[HIVE_ALERT_HASHRATE_LOW].threshold == 80);
	assert_int_equal(c.alerts.rules[HIVE_ALERT_HASHRATE_LOW].n_models, 2);
	assert_false(c.alerts.rules[HIVE_ALERT_FAN_STOPPED].enabled);
	log = log_text();
	assert_non_null(strstr(log, "alerts.rules.miner_ofline"));
	free(log);
	assert_int_equal(c.alerts.n_channels, 2);
	assert_int_equal(c.alerts.channels[1].kind, HIVE_CHANNEL_EMAIL);
	assert_string_equal(c.alerts.channels[0].secret, "k");
	/* A deep copy outlives its source. */
	assert_int_equal(hive_cfg_copy(&d, &c), 0);
	hive_cfg_free(&c);
	{
		const struct hive_alert_rule *r = &d.alerts.rules[HIVE_ALERT_HASHRATE_LOW];
		const struct hive_alert_override *o = &r->models[0], *o2 = &r->models[1];

		if (strcmp(o->model, "s19") != 0) {
			o = &r->models[1];
			o2 = &r->models[0];
		}
		assert_string_equal(o->model, "s19");
		assert_true(o->threshold == 60);
		assert_int_equal(o->for_seconds, -1);
		assert_string_equal(o2->model, "s21");
		assert_true(o2->threshold != o2->threshold);   /* NAN: the rule's */
		assert_int_equal(o2->for_seconds, 10);
	}
	assert_string_equal(d.alerts.channels[1].to, "a@farm,b@farm");
	hive_cfg_free(&d);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(hive_cfg_parse(&c, "a.json", bad[i].json, err, sizeof(err)), -1);
		if (strcmp(err, bad[i].err) != 0)
			fail_msg("%zu: got '%s', want '%s'", i, err, bad[i].err);
		assert_null(strstr(err, "TOPSECRET"));
		assert_null(c.alerts.channels);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, each_setup),
		cmocka_unit_test_setup(test_shipped_config, each_setup),
		cmocka_unit_test_setup(test_every_key, each_setup),
		cmocka_unit_test_setup(test_null_keeps_default, each_setup),
		cmocka_unit_test_setup(test_unknown_keys, each_setup),
		cmocka_unit_test_setup(test_golden, each_setup),
		cmocka_unit_test_setup(test_file_errors, each_setup),
		cmocka_unit_test_setup(test_env, each_setup),
		cmocka_unit_test_setup(test_token_not_echoed, each_setup),
		cmocka_unit_test_setup(test_validate, each_setup),
		cmocka_unit_test_setup(test_failure_frees, each_setup),
		cmocka_unit_test_setup(test_subnets, each_setup),
		cmocka_unit_test_setup(test_ipv4_format, each_setup),
		cmocka_unit_test_setup(test_addr_url, each_setup),
		cmocka_unit_test_setup(test_bus_transports, each_setup),
		cmocka_unit_test_setup(test_keys_documented, each_setup),
		cmocka_unit_test_setup(test_alerts, each_setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
