/* minersim — main: options, the loop, randomness, logging. See sim.h for
 * the map of the other files and docs/minersim.md for the whole story. */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "hive/clock.h"

struct sim_opts sim_opts;

static volatile sig_atomic_t quit;
static int64_t started_ms;
static struct sim_ev admin_ev = { .type = SIM_EV_ADMIN, .fd = -1 };

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

int64_t sim_now_ms(void)
{
	return hive_mono_ms() - started_ms;
}

uint64_t sim_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t sim_hash3(uint64_t a, uint64_t b, uint64_t c)
{
	return sim_mix(sim_mix(sim_mix(a) ^ b) ^ c);
}

double sim_unit(uint64_t h)
{
	return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t sim_rand(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	return sim_mix(*state);
}

static void vlog(const char *level, const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "minersim[%d] %s ", (int)getpid(), level);

	if (n < 0)
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	strcat(line, "\n");
	(void)!write(STDERR_FILENO, line, strlen(line));
}

void sim_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("INFO", fmt, ap);
	va_end(ap);
}

void sim_debug(const char *fmt, ...)
{
	va_list ap;

	if (!sim_opts.verbose)
		return;
	va_start(ap, fmt);
	vlog("DEBUG", fmt, ap);
	va_end(ap);
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: minersim [options]\n"
"  --subnet CIDR          loopback subnet of the fleet (127.0.0.0/8 only, /16../30;\n"
"                         default 127.42.0.0/22)\n"
"  --miners N             simulated miners (default 100)\n"
"  --non-miners N         other hosts: closed, routers, stock firmware (default 0)\n"
"  --port P               port every miner listens on (default 18080)\n"
"  --admin HOST:PORT      admin API (loopback; default 127.0.0.1:18081)\n"
"  --seed S               fleet layout, identities and noise (default 1)\n"
"  --tune-seconds S       auto-tuning a preset never tuned on the miner (default 300)\n"
"  --tuned-seconds S      auto-tuning a preset tuned before (default min(30, tune))\n"
"  --start-seconds S      restarting/starting before mining (default 1)\n"
"  --preset-apply MODE    how POST /settings takes effect: live, restart, quiet,\n"
"                         firmware (1.2.6 restart, 1.3.x quiet) (default live)\n"
"  --apply-seconds S      quiet firmware: a saved preset runs after S (default 20)\n"
"  --reboot-seconds S     gone for S after a reboot (default 60)\n"
"  --init-seconds S       initializing after a reboot (default reboot/2, at least 1)\n"
"  --token-ttl S          unlock token lifetime (default 240)\n"
"  --unlock-limit N       wrong passwords within the window before 429 (default 5)\n"
"  --lockout-seconds S    the window and the lockout (default 60)\n"
"  --firmware-mix[=SHARE] share of miners on firmware 1.3.x (/boards, no /chains);\n"
"                         0.1 when given without a value, 0 when absent\n"
"  --unmetered SHARE      miners reporting power_consumption 0 (default 0.3)\n"
"  --models LIST          s19,s19jpro (default both)\n"
"  -v, --verbose          log every request\n"
"  -h, --help             this text\n"
"  -V, --version          print the version\n");
}

static int parse_int(const char *s, long lo, long hi, const char *opt, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "minersim: %s: expected an integer in %ld..%ld, got \"%s\"\n",
			opt, lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_share(const char *s, const char *opt, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.0 && v <= 1.0)) {
		fprintf(stderr, "minersim: %s: expected a share in 0..1, got \"%s\"\n", opt, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* Loopback only: this program must never answer for, or look like, any
 * other network. */
static int parse_subnet(const char *s)
{
	char buf[64], *slash;
	struct in_addr a;
	long prefix;
	uint32_t net, mask;

	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash)
		goto bad;
	*slash = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		goto bad;
	if (parse_int(slash + 1, 0, 32, "--subnet prefix", &prefix) < 0)
		return -1;
	net = ntohl(a.s_addr);
	if (prefix < 8 || (net >> 24) != 127) {
		fprintf(stderr, "minersim: --subnet %s: refused, only subnets inside "
			"127.0.0.0/8 (loopback) are allowed\n", s);
		return -1;
	}
	if (prefix < 16 || prefix > 30) {
		fprintf(stderr, "minersim: --subnet %s: prefix must be /16 to /30\n", s);
		return -1;
	}
	mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
	if (net & ~mask) {
		fprintf(stderr, "minersim: --subnet %s: host bits set (network address "
			"expected)\n", s);
		return -1;
	}
	sim_opts.net = net;
	sim_opts.prefix = (int)prefix;
	return 0;
bad:
	fprintf(stderr, "minersim: --subnet: expected a.b.c.d/n, got \"%s\"\n", s);
	return -1;
}

static int parse_admin(const char *s)
{
	char buf[64], *colon;
	struct in_addr a;
	long port;

	if (strlen(s) >= sizeof(buf) || !(colon = strrchr(strcpy(buf, s), ':'))) {
		fprintf(stderr, "minersim: --admin: expected HOST:PORT, got \"%s\"\n", s);
		return -1;
	}
	*colon = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
		fprintf(stderr, "minersim: --admin %s: the host must be a 127.x.y.z "
			"address (loopback only)\n", s);
		return -1;
	}
	if (parse_int(colon + 1, 1, 65535, "--admin port", &port) < 0)
		return -1;
	sim_opts.admin_ip = ntohl(a.s_addr);
	sim_opts.admin_port = (int)port;
	return 0;
}

static int parse_models(const char *s)
{
	char buf[256], *tok, *save;
	unsigned mask = 0;

	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int i = sim_model_find(tok);
		if (i < 0) {
			fprintf(stderr, "minersim: --models: unknown model \"%s\" "
				"(known: s19, s19jpro)\n", tok);
			return -1;
		}
		mask |= 1u << i;
	}
	if (!mask)
		goto bad;
	sim_opts.models = mask;
	return 0;
bad:
	fprintf(stderr, "minersim: --models: expected a list such as s19,s19jpro\n");
	return -1;
}

enum {
	OPT_SUBNET = 256, OPT_MINERS, OPT_NON_MINERS, OPT_PORT, OPT_ADMIN, OPT_SEED,
	OPT_TUNE, OPT_REBOOT, OPT_INIT, OPT_TTL, OPT_UNLOCK_LIMIT, OPT_LOCKOUT,
	OPT_FW_MIX, OPT_UNMETERED, OPT_MODELS, OPT_TUNED, OPT_START, OPT_APPLY_S,
	OPT_PRESET_APPLY,
};

static int parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "subnet", required_argument, NULL, OPT_SUBNET },
		{ "miners", required_argument, NULL, OPT_MINERS },
		{ "non-miners", required_argument, NULL, OPT_NON_MINERS },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "admin", required_argument, NULL, OPT_ADMIN },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "tune-seconds", required_argument, NULL, OPT_TUNE },
		{ "tuned-seconds", required_argument, NULL, OPT_TUNED },
		{ "start-seconds", required_argument, NULL, OPT_START },
		{ "apply-seconds", required_argument, NULL, OPT_APPLY_S },
		{ "preset-apply", required_argument, NULL, OPT_PRESET_APPLY },
		{ "reboot-seconds", required_argument, NULL, OPT_REBOOT },
		{ "init-seconds", required_argument, NULL, OPT_INIT },
		{ "token-ttl", required_argument, NULL, OPT_TTL },
		{ "unlock-limit", required_argument, NULL, OPT_UNLOCK_LIMIT },
		{ "lockout-seconds", required_argument, NULL, OPT_LOCKOUT },
		{ "firmware-mix", optional_argument, NULL, OPT_FW_MIX },
		{ "unmetered", required_argument, NULL, OPT_UNMETERED },
		{ "models", required_argument, NULL, OPT_MODELS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	long v;
	int ch;
	char *end;

	sim_opts = (struct sim_opts){
		.net = 0x7f2a0000, .prefix = 22, .miners = 100, .port = 18080,
		.admin_ip = 0x7f000001, .admin_port = 18081, .seed = 1,
		.tune_s = 300, .tuned_s = -1, .apply_s = 20, .start_s = 1, .reboot_s = 60, .init_s = -1, .token_ttl_s = 240,
		.unlock_limit = 5, .lockout_s = 60, .unmetered = 0.3, .models = 3,
	};
	while ((ch = getopt_long(argc, argv, "vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_SUBNET:
			if (parse_subnet(optarg) < 0)
				return -1;
			break;
		case OPT_MINERS:
			if (parse_int(optarg, 0, 65536, "--miners", &v) < 0)
				return -1;
			sim_opts.miners = (int)v;
			break;
		case OPT_NON_MINERS:
			if (parse_int(optarg, 0, 65536, "--non-miners", &v) < 0)
				return -1;
			sim_opts.non_miners = (int)v;
			break;
		case OPT_PORT:
			if (parse_int(optarg, 1, 65535, "--port", &v) < 0)
				return -1;
			sim_opts.port = (int)v;
			break;
		case OPT_ADMIN:
			if (parse_admin(optarg) < 0)
				return -1;
			break;
		case OPT_SEED:
			errno = 0;
			sim_opts.seed = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end || *optarg == '-') {
				fprintf(stderr, "minersim: --seed: expected an unsigned "
					"integer, got \"%s\"\n", optarg);
				return -1;
			}
			break;
		case OPT_TUNE:
			if (parse_int(optarg, 0, 86400, "--tune-seconds", &v) < 0)
				return -1;
			sim_opts.tune_s = (int)v;
			break;
		case OPT_TUNED:
			if (parse_int(optarg, 0, 86400, "--tuned-seconds", &v) < 0)
				return -1;
			sim_opts.tuned_s = (int)v;
			break;
		case OPT_START:
			if (parse_int(optarg, 0, 86400, "--start-seconds", &v) < 0)
				return -1;
			sim_opts.start_s = (int)v;
			break;
		case OPT_APPLY_S:
			if (parse_int(optarg, 0, 86400, "--apply-seconds", &v) < 0)
				return -1;
			sim_opts.apply_s = (int)v;
			break;
		case OPT_PRESET_APPLY:
			if ((sim_opts.preset_apply = sim_apply_parse(optarg)) < 0) {
				fprintf(stderr, "minersim: --preset-apply: expected live, restart, "
					"quiet or firmware, got \"%s\"\n", optarg);
				return -1;
			}
			break;
		case OPT_REBOOT:
			if (parse_int(optarg, 0, 86400, "--reboot-seconds", &v) < 0)
				return -1;
			sim_opts.reboot_s = (int)v;
			break;
		case OPT_INIT:
			if (parse_int(optarg, 0, 86400, "--init-seconds", &v) < 0)
				return -1;
			sim_opts.init_s = (int)v;
			break;
		case OPT_TTL:
			if (parse_int(optarg, 1, 86400, "--token-ttl", &v) < 0)
				return -1;
			sim_opts.token_ttl_s = (int)v;
			break;
		case OPT_UNLOCK_LIMIT:
			if (parse_int(optarg, 1, 1000, "--unlock-limit", &v) < 0)
				return -1;
			sim_opts.unlock_limit = (int)v;
			break;
		case OPT_LOCKOUT:
			if (parse_int(optarg, 1, 86400, "--lockout-seconds", &v) < 0)
				return -1;
			sim_opts.lockout_s = (int)v;
			break;
		case OPT_FW_MIX:
			sim_opts.fw_mix = 0.1;
			/* "--firmware-mix 0.3" as well as "--firmware-mix=0.3" */
			if (!optarg && optind < argc && argv[optind][0] != '-')
				optarg = argv[optind++];
			if (optarg && parse_share(optarg, "--firmware-mix", &sim_opts.fw_mix) < 0)
				return -1;
			break;
		case OPT_UNMETERED:
			if (parse_share(optarg, "--unmetered", &sim_opts.unmetered) < 0)
				return -1;
			break;
		case OPT_MODELS:
			if (parse_models(optarg) < 0)
				return -1;
			break;
		case 'v':
			sim_opts.verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("minersim %s\n", SIM_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "minersim: unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	if (sim_opts.init_s < 0)
		sim_opts.init_s = sim_opts.reboot_s / 2 > 0 ? sim_opts.reboot_s / 2 : 1;
	return 0;
}

/* One descriptor per listening address, one per connection: ask for all
 * the kernel allows. */
static int raise_nofile(long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < need) {
		fprintf(stderr, "minersim: %ld listening sockets need more descriptors than "
			"RLIMIT_NOFILE allows (%ld); use fewer miners or raise the hard "
			"limit\n", need, (long)rl.rlim_cur);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	char err[256], a[16], b[16];
	int64_t last_fleet_tick = 0;

	started_ms = hive_mono_ms();
	if (parse_options(argc, argv) < 0)
		return 2;
	/* listeners for miners and non-miners, plus room for connections */
	if (raise_nofile((long)sim_opts.miners + sim_opts.non_miners + 64) < 0)
		return 1;
	if (sim_fleet_init(err, sizeof(err)) < 0) {
		fprintf(stderr, "minersim: %s\n", err);
		return 1;
	}
	if (sim_http_init() < 0) {
		fprintf(stderr, "minersim: epoll: %s\n", strerror(errno));
		return 1;
	}
	if (sim_fleet_listen(err, sizeof(err)) < 0) {
		fprintf(stderr, "minersim: %s\n", err);
		return 1;
	}
	if (sim_http_listen(&admin_ev, sim_opts.admin_ip, sim_opts.admin_port) < 0) {
		fprintf(stderr, "minersim: admin listen %s:%d: %s\n",
			hive_ipv4_format(sim_opts.admin_ip, a), sim_opts.admin_port, strerror(errno));
		return 1;
	}

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	printf("minersim ready miners=%d non_miners=%d subnet=%s/%d port=%d admin=%s:%d\n",
	       sim_fleet.nminers, sim_fleet.nhosts, hive_ipv4_format(sim_opts.net, a),
	       sim_opts.prefix, sim_opts.port, hive_ipv4_format(sim_opts.admin_ip, b),
	       sim_opts.admin_port);
	fflush(stdout);
	sim_log("ready miners=%d non_miners=%d seed=%llu start_ms=%lld", sim_fleet.nminers,
		sim_fleet.nhosts, (unsigned long long)sim_opts.seed, (long long)sim_now_ms());

	while (!quit) {
		int64_t now;

		sim_http_poll(50);
		now = sim_now_ms();
		if (now - last_fleet_tick >= 100) {
			sim_fleet_tick(now);
			last_fleet_tick = now;
		}
		sim_http_tick(now);
	}
	sim_log("stopping");
	sim_http_shutdown();
	sim_fleet_free();
	return 0;
}
