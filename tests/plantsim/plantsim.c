/* plantsim — main: options, start in order, the once-a-second jobs, stop in
 * reverse. See plantsim.h for the map and docs/plantsim.md for the story. */
#include "plantsim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hive/clock.h"
#include "hive/log.h"

struct ps_opts ps_opts;

static volatile sig_atomic_t quit;
static int64_t started_ms;

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

bool ps_stopping(void)
{
	return quit != 0;
}

int64_t ps_now_ms(void)
{
	return hive_mono_ms() - started_ms;
}

const char *ps_rfc3339(time_t t, char buf[21])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* Loopback only: this program must never answer for, or reach, anything
 * but this machine. */
int ps_parse_loopback_addr(const char *s, char ip[16], int *port, char *err, size_t errlen)
{
	char buf[64], *colon, *end;
	struct in_addr a;
	long p;

	if (strlen(s) >= sizeof(buf) || !(colon = strrchr(strcpy(buf, s), ':'))) {
		snprintf(err, errlen, "expected 127.x.y.z:PORT, got \"%s\"", s);
		return -1;
	}
	*colon = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
		snprintf(err, errlen, "%s: refused, the host must be a 127.x.y.z address "
			 "(loopback only)", s);
		return -1;
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || p < 1 || p > 65535) {
		snprintf(err, errlen, "%s: expected a port in 1..65535", s);
		return -1;
	}
	snprintf(ip, 16, "%s", buf);
	*port = (int)p;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: plantsim --api-key KEY | --api-key-file PATH [options]\n"
"  --http ADDR:PORT          aggregator and admin API (/sim/) (loopback;\n"
"                            default 127.0.0.1:18090)\n"
"  --path PATH               the reading's path (default /v1/reading)\n"
"  --plant-id ID             the plant_id answered (default plant-1)\n"
"  --api-key KEY             the bearer key the aggregator wants\n"
"  --api-key-file PATH       the same, first line of a file\n"
"  --generation-w W          initial generation in watts (default 500000)\n"
"  --generators N            generator sources gen_a.. (default 2)\n"
"  --containers N            consumption sources container_1.. (default 2)\n"
"  --consumption-w W         containers' draw without --minersim (default 0)\n"
"  --confidence S            trust.confidence_score, 0..1 (default 0.95)\n"
"  --minersim URL            follow the fleet's true draw: minersim's admin API,\n"
"                            http://127.x.y.z:PORT\n"
"  --minersim-interval-ms MS polling period (default 1000)\n"
"  --modbus ADDR:PORT        serve a Modbus TCP power meter (loopback)\n"
"  --modbus-table T          holding | input (default holding)\n"
"  --modbus-register N       protocol address of the value (default 0)\n"
"  --modbus-type T           u16 | s16 | u32 | s32 | float32 (default u32)\n"
"  --modbus-order O          abcd | badc | cdab | dcba (default abcd)\n"
"  --modbus-scale W          watts per unit (default 1)\n"
"  --modbus-unit N           unit id (default 1; 0 and 255 are always answered)\n"
"  -n, --check               check the options and exit\n"
"  -v, --verbose             log every HTTP request\n"
"  -h, --help                this text\n"
"  -V, --version             print the version\n");
}

static int parse_num(const char *s, double lo, double hi, const char *opt, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "plantsim: %s: expected a number in %g..%g, got \"%s\"\n",
			opt, lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_int(const char *s, long lo, long hi, const char *opt, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "plantsim: %s: expected an integer in %ld..%ld, got \"%s\"\n",
			opt, lo, hi, s);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int parse_word(const char *s, int (*parse)(const char *), const char *opt,
		      const char *choices, int *out)
{
	int v = parse(s);

	if (v < 0) {
		fprintf(stderr, "plantsim: %s: expected %s, got \"%s\"\n", opt, choices, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* A key is one token of printable ASCII. */
static int set_key(const char *k, const char *from)
{
	size_t n = strlen(k);

	if (n == 0 || n >= sizeof(ps_opts.api_key)) {
		fprintf(stderr, "plantsim: %s: the key must be 1..%zu characters\n", from,
			sizeof(ps_opts.api_key) - 1);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (k[i] <= ' ' || k[i] > '~') {
			fprintf(stderr, "plantsim: %s: the key must be printable ASCII without "
				"spaces\n", from);
			return -1;
		}
	memcpy(ps_opts.api_key, k, n + 1);
	return 0;
}

static int read_key_file(const char *path)
{
	char line[PS_KEY_MAX + 2];
	FILE *f = fopen(path, "r");
	size_t n;
	int rc;

	if (!f) {
		fprintf(stderr, "plantsim: --api-key-file %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = '\0';
	rc = set_key(line, "--api-key-file");
	explicit_bzero(line, sizeof(line));
	return rc;
}

enum {
	OPT_HTTP = 256, OPT_PATH, OPT_PLANT, OPT_KEY, OPT_KEY_FILE, OPT_GEN, OPT_GENERATORS,
	OPT_CONTAINERS, OPT_CONS, OPT_CONFIDENCE, OPT_MINERSIM, OPT_MINERSIM_MS, OPT_MODBUS,
	OPT_MB_TABLE, OPT_MB_REG, OPT_MB_TYPE, OPT_MB_ORDER, OPT_MB_SCALE, OPT_MB_UNIT,
};

static int parse_options(int argc, char **argv, bool *check_only)
{
	static const struct option longopts[] = {
		{ "http", required_argument, NULL, OPT_HTTP },
		{ "path", required_argument, NULL, OPT_PATH },
		{ "plant-id", required_argument, NULL, OPT_PLANT },
		{ "api-key", required_argument, NULL, OPT_KEY },
		{ "api-key-file", required_argument, NULL, OPT_KEY_FILE },
		{ "generation-w", required_argument, NULL, OPT_GEN },
		{ "generators", required_argument, NULL, OPT_GENERATORS },
		{ "containers", required_argument, NULL, OPT_CONTAINERS },
		{ "consumption-w", required_argument, NULL, OPT_CONS },
		{ "confidence", required_argument, NULL, OPT_CONFIDENCE },
		{ "minersim", required_argument, NULL, OPT_MINERSIM },
		{ "minersim-interval-ms", required_argument, NULL, OPT_MINERSIM_MS },
		{ "modbus", required_argument, NULL, OPT_MODBUS },
		{ "modbus-table", required_argument, NULL, OPT_MB_TABLE },
		{ "modbus-register", required_argument, NULL, OPT_MB_REG },
		{ "modbus-type", required_argument, NULL, OPT_MB_TYPE },
		{ "modbus-order", required_argument, NULL, OPT_MB_ORDER },
		{ "modbus-scale", required_argument, NULL, OPT_MB_SCALE },
		{ "modbus-unit", required_argument, NULL, OPT_MB_UNIT },
		{ "check", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ps_opts *o = &ps_opts;
	char err[256], ip[16];
	int ch, port;

	*o = (struct ps_opts){
		.http_addr = "127.0.0.1:18090", .path = "/v1/reading", .plant_id = "plant-1",
		.generation_w = 500000, .confidence = 0.95, .generators = 2, .containers = 2,
		.minersim_ms = 1000,
		.mb = { .table = PS_MB_HOLDING, .type = PS_MB_U32, .order = PS_MB_ABCD,
			.scale = 1, .unit = 1 },
	};
	while ((ch = getopt_long(argc, argv, "nvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_HTTP:
		case OPT_MODBUS:
			if (ps_parse_loopback_addr(optarg, ip, &port, err, sizeof(err)) < 0) {
				fprintf(stderr, "plantsim: %s %s\n",
					ch == OPT_HTTP ? "--http" : "--modbus", err);
				return -1;
			}
			snprintf(ch == OPT_HTTP ? o->http_addr : o->modbus_addr,
				 sizeof(o->http_addr), "%s:%d", ip, port);
			o->modbus |= ch == OPT_MODBUS;
			break;
		case OPT_PATH:
			if (optarg[0] != '/' || strlen(optarg) >= sizeof(o->path) ||
			    strncmp(optarg, "/sim", 4) == 0 || strpbrk(optarg, "?# ")) {
				fprintf(stderr, "plantsim: --path: expected an absolute path outside "
					"/sim, got \"%s\"\n", optarg);
				return -1;
			}
			snprintf(o->path, sizeof(o->path), "%s", optarg);
			break;
		case OPT_PLANT:
			if (!optarg[0] || strlen(optarg) >= sizeof(o->plant_id)) {
				fprintf(stderr, "plantsim: --plant-id: 1..%zu characters\n",
					sizeof(o->plant_id) - 1);
				return -1;
			}
			snprintf(o->plant_id, sizeof(o->plant_id), "%s", optarg);
			break;
		case OPT_KEY:
			if (set_key(optarg, "--api-key") < 0)
				return -1;
			/* keep it out of ps and /proc/<pid>/cmdline from now on */
			explicit_bzero(optarg, strlen(optarg));
			break;
		case OPT_KEY_FILE:
			if (read_key_file(optarg) < 0)
				return -1;
			break;
		case OPT_GEN:
			if (parse_num(optarg, 0, 1e10, "--generation-w", &o->generation_w) < 0)
				return -1;
			break;
		case OPT_GENERATORS:
			if (parse_int(optarg, 1, 8, "--generators", &o->generators) < 0)
				return -1;
			break;
		case OPT_CONTAINERS:
			if (parse_int(optarg, 1, 8, "--containers", &o->containers) < 0)
				return -1;
			break;
		case OPT_CONS:
			if (parse_num(optarg, 0, 1e10, "--consumption-w", &o->consumption_w) < 0)
				return -1;
			break;
		case OPT_CONFIDENCE:
			if (parse_num(optarg, 0, 1, "--confidence", &o->confidence) < 0)
				return -1;
			break;
		case OPT_MINERSIM:
			if (strlen(optarg) >= sizeof(o->minersim) ||
			    ps_meter_check_url(optarg, err, sizeof(err)) < 0) {
				fprintf(stderr, "plantsim: %s\n", err);
				return -1;
			}
			snprintf(o->minersim, sizeof(o->minersim), "%s", optarg);
			break;
		case OPT_MINERSIM_MS:
			if (parse_int(optarg, 100, 60000, "--minersim-interval-ms", &o->minersim_ms) < 0)
				return -1;
			break;
		case OPT_MB_TABLE:
			if (parse_word(optarg, ps_mb_table_parse, "--modbus-table", "holding or input",
				       &o->mb.table) < 0)
				return -1;
			break;
		case OPT_MB_REG:
			if (parse_int(optarg, 0, 65535, "--modbus-register", &o->mb.reg) < 0)
				return -1;
			break;
		case OPT_MB_TYPE:
			if (parse_word(optarg, ps_mb_type_parse, "--modbus-type",
				       "u16, s16, u32, s32 or float32", &o->mb.type) < 0)
				return -1;
			break;
		case OPT_MB_ORDER:
			if (parse_word(optarg, ps_mb_order_parse, "--modbus-order",
				       "abcd, badc, cdab or dcba", &o->mb.order) < 0)
				return -1;
			break;
		case OPT_MB_SCALE:
			if (parse_num(optarg, 1e-6, 1e9, "--modbus-scale", &o->mb.scale) < 0)
				return -1;
			break;
		case OPT_MB_UNIT:
			if (parse_int(optarg, 1, 247, "--modbus-unit", &o->mb.unit) < 0)
				return -1;
			break;
		case 'n':
			*check_only = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("plantsim %s\n", PS_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "plantsim: unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	if (!o->api_key[0]) {
		fprintf(stderr, "plantsim: an API key is required (--api-key or --api-key-file)\n");
		return -1;
	}
	if (o->generators + o->containers > PS_MAX_SOURCES) {
		fprintf(stderr, "plantsim: at most %d sources in all\n", PS_MAX_SOURCES);
		return -1;
	}
	if (o->mb.type != PS_MB_U16 && o->mb.type != PS_MB_S16 && o->mb.reg > 65534) {
		fprintf(stderr, "plantsim: --modbus-register: a 32-bit value needs two "
			"registers, so 0..65534\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	char err[512];
	bool check_only = false;
	int64_t next_tick = 1000, next_poll = 0;
	struct timespec nap = { 0, 50 * 1000000L };

	started_ms = hive_mono_ms();
	if (parse_options(argc, argv, &check_only) < 0)
		return 2;
	if (check_only) {
		printf("plantsim: options ok\n");
		return 0;
	}
	hive_log_init("plantsim", ps_opts.verbose ? HIVE_LOG_DEBUG : HIVE_LOG_INFO, NULL);
	/* the key never reaches a log line, whoever prints it */
	hive_log_secret(ps_opts.api_key);

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* the model first: every server reads it */
	if (ps_plant_init(err, sizeof(err)) < 0)
		goto fail;
	/* then the consumption, so the first reading already has it */
	if (ps_meter_init(err, sizeof(err)) < 0)
		goto fail;
	ps_meter_poll();
	/* the meter, then the HTTP port: the ready line means both answer */
	if (ps_opts.modbus && ps_modbus_start(err, sizeof(err)) < 0)
		goto fail_meter;
	if (ps_http_start(err, sizeof(err)) < 0)
		goto fail_modbus;

	printf("plantsim ready http=%s path=%s plant_id=%s modbus=%s minersim=%s\n",
	       ps_opts.http_addr, ps_opts.path, ps_opts.plant_id,
	       ps_opts.modbus ? ps_opts.modbus_addr : "-",
	       ps_opts.minersim[0] ? ps_opts.minersim : "-");
	fflush(stdout);
	log_info("ready http=%s path=%s plant_id=%s generation_w=%.0f generators=%d "
		 "containers=%d modbus=%s table=%s register=%d type=%s order=%s scale=%g unit=%d "
		 "minersim=%s", ps_opts.http_addr, ps_opts.path, ps_opts.plant_id,
		 ps_opts.generation_w, ps_opts.generators, ps_opts.containers,
		 ps_opts.modbus ? ps_opts.modbus_addr : "-", ps_mb_table_name(ps_opts.mb.table),
		 ps_opts.mb.reg, ps_mb_type_name(ps_opts.mb.type),
		 ps_mb_order_name(ps_opts.mb.order), ps_opts.mb.scale, ps_opts.mb.unit,
		 ps_opts.minersim[0] ? ps_opts.minersim : "-");

	/* Periodic jobs: poll minersim every --minersim-interval-ms; once a
	 * second, the plant's overdraw bookkeeping and timed glitches. */
	while (!quit) {
		int64_t now = ps_now_ms();

		if (ps_opts.minersim[0] && now >= next_poll) {
			ps_meter_poll();
			next_poll = now + ps_opts.minersim_ms;
		}
		if (now >= next_tick) {
			ps_plant_tick();
			next_tick += 1000;
		}
		nanosleep(&nap, NULL);
	}
	log_info("stopping");
	/* reverse order: nobody asks once the port is closed */
	ps_http_stop();
	ps_modbus_stop();
	ps_meter_free();
	return 0;

fail_modbus:
	ps_modbus_stop();
fail_meter:
	ps_meter_free();
fail:
	fprintf(stderr, "plantsim: %s\n", err);
	return 1;
}
