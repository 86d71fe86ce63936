/* test_netns — PowerHive across hosts, without Docker: three network
 * namespaces made by this test stand for three machines.
 *
 *   hub  apid (bus on tls+tcp://0.0.0.0), discoverd, minersim (40 miners on
 *        its own loopback, 127.66.0.0/24)
 *   w1   pollerd, dialing apid at tls+tcp://10.250.1.1 over a veth pair
 *   w2   pollerd, dialing apid at tls+tcp://10.250.2.1 over another
 *
 * The bus is mutual TLS, as docs/operations.md lays out a multi-host farm:
 * etc/hive-certs makes the farm CA, the discovery CA, apid's certificate
 * (naming 10.250.1.1, 10.250.2.1 and 127.0.0.1, the addresses dialled) and
 * one per daemon and host (pollerd-w1, pollerd-w2; discoverd-hub, signed
 * by the discovery CA, which apid's discovery endpoints trust alone).
 *
 * The veth links carry private /30s that exist only inside these
 * namespaces; the workers reach the simulated miners through the hub
 * (route_localnet on the veth ends lets 127.66.0.0/24 cross them), and
 * their own loopback stays down. Nothing touches the host's interfaces.
 *
 * It shows the work crossing: both pollerds run in namespaces other than
 * apid's (and cannot reach apid's loopback), and apid stores statuses
 * whose source is each of their pids. Needs root (CAP_NET_ADMIN) for
 * `ip netns`; skipped otherwise. Namespaces are removed at the end, on
 * failure and on SIGINT/SIGTERM; stale ones of a killed run are removed at
 * the next start. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "../lib/suite.h"
#include "../lib/testlib.h"

#define NS_PREFIX  "phnet-"
#define SIM_SUBNET "127.66.0.0/24"
#define SIM_PORT   18080
#define HTTP_PORT  8080
#define BUS_PORT   5550
#define MINERS     40
#define TOKEN      "netns-test-token-5d1c0a"

enum { HUB, W1, W2, NNS };
enum { P_SIM, P_APID, P_DISC, P_POLL1, P_POLL2, NPROC };

static const char *const proc_names[NPROC] = { "minersim", "apid", "discoverd", "pollerd-w1",
					       "pollerd-w2" };
static char ns[NNS][64];
static bool ns_made[NNS];
static pid_t procs[NPROC];
static char *dir;
static const char *ipcmd;
static bool skipping;
static char skip_why[256];
static int orig_ns = -1;

/* ------------------------------------------------------------ helpers */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st != 0)
		fprintf(stderr, "netns: command failed (status %d): %s\n", st, cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int enter(int which)
{
	char path[128];
	int fd, rc;

	snprintf(path, sizeof(path), "/run/netns/%s", ns[which]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = setns(fd, CLONE_NEWNET);
	close(fd);
	return rc;
}

static void leave(void)
{
	if (orig_ns >= 0 && setns(orig_ns, CLONE_NEWNET) != 0)
		fprintf(stderr, "netns: cannot return to the test's own namespace: %s\n",
			strerror(errno));
}

/* Starts argv inside namespace `which`, output appended to log. Returns
 * once the program runs there (exec done: the close-on-exec pipe closed),
 * or -1 when setns or exec failed. */
static pid_t ns_spawn(int which, const char *log, char *const argv[])
{
	int p[2], fd, err = 0;
	pid_t pid;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		if (enter(which) != 0) {
			err = errno;
			(void)!write(p[1], &err, sizeof(err));
			_exit(126);
		}
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], argv);
		err = errno;
		(void)!write(p[1], &err, sizeof(err));
		_exit(127);
	}
	close(p[1]);
	do
		n = read(p[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n > 0) {
		fprintf(stderr, "netns: cannot start %s in %s: %s\n", argv[0], ns[which],
			strerror(err));
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static void stop_all(void)
{
	/* Workers first, the hub last. */
	for (int i = NPROC - 1; i >= 0; i--) {
		if (procs[i] > 0)
			tl_stop(procs[i], SIGTERM, 5000);
		procs[i] = 0;
	}
}

static void remove_namespaces(void)
{
	for (int i = 0; i < NNS; i++)
		if (ns_made[i]) {
			sh("%s netns del %s", ipcmd, ns[i]);
			ns_made[i] = false;
		}
}

static void cleanup(void)
{
	leave();
	stop_all();
	remove_namespaces();
}

static void on_signal(int sig)
{
	cleanup();
	if (dir)
		tl_rmrf(dir);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Namespaces "phnet-<pid>-..." of runs whose process is gone. */
static void remove_stale(void)
{
	DIR *d = opendir("/run/netns");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		long pid;
		char *end;

		if (strncmp(e->d_name, NS_PREFIX, strlen(NS_PREFIX)) != 0)
			continue;
		pid = strtol(e->d_name + strlen(NS_PREFIX), &end, 10);
		if (*end != '-' || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		sh("%s netns del %s", ipcmd, e->d_name);
	}
	closedir(d);
}

/* Hand-written: the bus is on bus_host (apid's end of a veth, or 0.0.0.0
 * for apid itself), every endpoint (ts_bus_keys) on BUS_PORT + its index,
 * mutual TLS with the certificate <dir>/certs/<cert>.crt. */
static int write_config(const char *name, const char *bus_host, const char *cert)
{
	char path[1024], text[8192], bus[3072];
	size_t n = 0;

	for (size_t i = 0; i < ts_nbus && n < sizeof(bus); i++)
		n += (size_t)snprintf(bus + n, sizeof(bus) - n, "%s\"%s\": \"tls+tcp://%s:%d\"",
				      i ? ",\n   " : "", ts_bus_keys[i], bus_host, BUS_PORT + (int)i);
	if (n < sizeof(bus))
		n += (size_t)snprintf(bus + n, sizeof(bus) - n,
				      ",\n   \"tls\": {\"ca_file\": \"%s/certs/ca.crt\", "
				      "\"discovery_ca_file\": \"%s/certs/discovery-ca.crt\", "
				      "\"cert_file\": \"%s/certs/%s.crt\", "
				      "\"key_file\": \"%s/certs/%s.key\"}", dir, dir, dir, cert, dir,
				      cert);
	if (n >= sizeof(bus))
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(text, sizeof(text),
		 "{\n"
		 " \"log_level\": \"info\",\n"
		 " \"database\": {\"path\": \"%s/powerhive.db\", \"batch_ms\": 50},\n"
		 " \"network\": {\"subnets\": [\"" SIM_SUBNET "\"], \"port\": %d,\n"
		 "   \"miner_probe_timeout_ms\": 500, \"http_timeout_ms\": 3000},\n"
		 " \"intervals\": {\"discovery_seconds\": 3, \"status_seconds\": 2,\n"
		 "   \"telemetry_seconds\": 3600, \"heartbeat_seconds\": 1},\n"
		 " \"http\": {\"addr\": \"127.0.0.1:%d\", \"web_root\": \"web\",\n"
		 "   \"auth\": {\"token\": \"" TOKEN "\", \"token_file\": \"%s/api-token\"}},\n"
		 " \"bus\": {%s}\n"
		 "}\n",
		 dir, SIM_PORT, HTTP_PORT, dir, bus);
	return tl_write_file(path, text);
}

static const char *find_ip(void)
{
	static const char *const paths[] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* ------------------------------------------------------------ setup */

static int make_network(void)
{
	pid_t me = getpid();

	snprintf(ns[HUB], sizeof(ns[HUB]), NS_PREFIX "%d-hub", (int)me);
	snprintf(ns[W1], sizeof(ns[W1]), NS_PREFIX "%d-w1", (int)me);
	snprintf(ns[W2], sizeof(ns[W2]), NS_PREFIX "%d-w2", (int)me);
	for (int i = 0; i < NNS; i++) {
		if (sh("%s netns add %s", ipcmd, ns[i]) != 0)
			return -1;
		ns_made[i] = true;
	}
	if (sh("%s -n %s link set lo up", ipcmd, ns[HUB]) != 0)
		return -1;
	for (int k = 1; k <= 2; k++) {
		int w = k == 1 ? W1 : W2;
		/* Interface names live in their namespace: short and fixed. */
		if (sh("%s link add phh%d netns %s type veth peer name phw%d netns %s", ipcmd, k,
		       ns[HUB], k, ns[w]) != 0 ||
		    sh("%s -n %s addr add 10.250.%d.1/30 dev phh%d", ipcmd, ns[HUB], k, k) != 0 ||
		    sh("%s -n %s addr add 10.250.%d.2/30 dev phw%d", ipcmd, ns[w], k, k) != 0 ||
		    sh("%s netns exec %s sh -c 'echo 1 > /proc/sys/net/ipv4/conf/phh%d/route_localnet'",
		       ipcmd, ns[HUB], k) != 0 ||
		    sh("%s netns exec %s sh -c 'echo 1 > /proc/sys/net/ipv4/conf/phw%d/route_localnet'",
		       ipcmd, ns[w], k) != 0 ||
		    sh("%s -n %s link set phh%d up", ipcmd, ns[HUB], k) != 0 ||
		    sh("%s -n %s link set phw%d up", ipcmd, ns[w], k) != 0 ||
		    sh("%s -n %s route add " SIM_SUBNET " via 10.250.%d.1 dev phw%d", ipcmd, ns[w],
		       k, k) != 0)
			return -1;
	}
	return 0;
}

static int setup(void **state)
{
	char path[1024], log[1024], port[16], subnet_arg[] = SIM_SUBNET;

	(void)state;
	if (geteuid() != 0) {
		skipping = true;
		snprintf(skip_why, sizeof(skip_why), "needs root for ip netns (CI runs as root)");
		printf("test_netns: skipped: %s\n", skip_why);
		return 0;
	}
	ipcmd = find_ip();
	if (!ipcmd) {
		fprintf(stderr, "netns: the ip command is missing: apt-get install iproute2\n");
		return -1;
	}
	orig_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig_ns < 0)
		return -1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	atexit(cleanup);
	remove_stale();
	dir = tl_tmpdir("netns");
	if (!dir || make_network() < 0)
		goto fail;
	if (sh("etc/hive-certs -d '%s/certs' ca >/dev/null", dir) ||
	    sh("etc/hive-certs -d '%s/certs' ca discovery >/dev/null", dir) ||
	    sh("etc/hive-certs -d '%s/certs' issue apid hub --ip 10.250.1.1 --ip 10.250.2.1 "
	       "--ip 127.0.0.1 >/dev/null", dir) ||
	    sh("etc/hive-certs -d '%s/certs' issue discoverd hub >/dev/null", dir) ||
	    sh("etc/hive-certs -d '%s/certs' issue pollerd w1 >/dev/null", dir) ||
	    sh("etc/hive-certs -d '%s/certs' issue pollerd w2 >/dev/null", dir))
		goto fail;
	if (write_config("hub.json", "0.0.0.0", "apid-hub") < 0 ||
	    write_config("discoverd.json", "127.0.0.1", "discoverd-hub") < 0 ||
	    write_config("w1.json", "10.250.1.1", "pollerd-w1") < 0 ||
	    write_config("w2.json", "10.250.2.1", "pollerd-w2") < 0)
		goto fail;

	snprintf(log, sizeof(log), "%s/minersim.log", dir);
	snprintf(port, sizeof(port), "%d", SIM_PORT);
	procs[P_SIM] = ns_spawn(HUB, log, (char *const[]){ (char *)tl_bin("minersim"),
		"--subnet", subnet_arg, "--miners", "40", "--non-miners", "4", "--port", port,
		"--admin", "127.0.0.1:18081", "--seed", "3", NULL });
	snprintf(path, sizeof(path), "%s/hub.json", dir);
	snprintf(log, sizeof(log), "%s/apid.log", dir);
	procs[P_APID] = ns_spawn(HUB, log, (char *const[]){ (char *)tl_bin("apid"), "-c", path,
							    NULL });
	snprintf(path, sizeof(path), "%s/discoverd.json", dir);
	snprintf(log, sizeof(log), "%s/discoverd.log", dir);
	procs[P_DISC] = ns_spawn(HUB, log, (char *const[]){ (char *)tl_bin("discoverd"), "-c",
							    path, NULL });
	snprintf(path, sizeof(path), "%s/w1.json", dir);
	snprintf(log, sizeof(log), "%s/pollerd-w1.log", dir);
	procs[P_POLL1] = ns_spawn(W1, log, (char *const[]){ (char *)tl_bin("pollerd"), "-c", path,
							    NULL });
	snprintf(path, sizeof(path), "%s/w2.json", dir);
	snprintf(log, sizeof(log), "%s/pollerd-w2.log", dir);
	procs[P_POLL2] = ns_spawn(W2, log, (char *const[]){ (char *)tl_bin("pollerd"), "-c", path,
							    NULL });
	for (int i = 0; i < NPROC; i++)
		if (procs[i] <= 0)
			goto fail;
	return 0;
fail:
	cleanup();
	return -1;
}

static void dump_logs(void)
{
	for (int i = 0; i < NPROC; i++) {
		char path[1024], *text;

		snprintf(path, sizeof(path), "%s/%s.log", dir, proc_names[i]);
		text = tl_read_file(path);
		if (text) {
			size_t n = strlen(text);
			fprintf(stderr, "---- %s (last 1500 bytes)\n%s\n", proc_names[i],
				n > 1500 ? text + n - 1500 : text);
			free(text);
		}
	}
}

static int teardown(void **state)
{
	(void)state;
	if (skipping)
		return 0;
	cleanup();
	if (dir) {
		tl_rmrf(dir);
		free(dir);
		dir = NULL;
	}
	close(orig_ns);
	orig_ns = -1;
	return 0;
}

/* ------------------------------------------------------------ apid's view */

static json_t *hub_get(const char *path)
{
	char url[256];
	const char *hdr[] = { "Authorization: Bearer " TOKEN, NULL };
	json_t *j = NULL;
	long status = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", HTTP_PORT, path);
	if (enter(HUB) != 0)
		return NULL;
	j = tl_http_json("GET", url, hdr, NULL, &status);
	leave();
	if (status != 200) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static long stored_from(json_t *health, pid_t pid)
{
	json_t *srcs = json_object_get(json_object_get(health, "events"), "sources"), *s;
	char tail[32];
	size_t i;

	snprintf(tail, sizeof(tail), "/%d", (int)pid);
	json_array_foreach(srcs, i, s) {
		const char *src = json_string_value(json_object_get(s, "src"));
		size_t n = src ? strlen(src) : 0, t = strlen(tail);
		if (src && strncmp(src, "pollerd/", 8) == 0 && n > t && strcmp(src + n - t, tail) == 0)
			return (long)json_integer_value(json_object_get(s, "stored"));
	}
	return -1;
}

static bool statuses_from_both(void *arg)
{
	json_t *h = hub_get("/api/health"), *list;
	long a, b;
	size_t with = 0, i;
	json_t *m;

	(void)arg;
	if (!h)
		return false;
	a = stored_from(h, procs[P_POLL1]);
	b = stored_from(h, procs[P_POLL2]);
	json_decref(h);
	if (a < 20 || b < 20)
		return false;
	list = hub_get("/api/miners?limit=100");
	json_array_foreach(json_object_get(list, "miners"), i, m)
		if (json_is_object(json_object_get(m, "status")))
			with++;
	json_decref(list);
	return with >= MINERS * 9 / 10;
}

/* ------------------------------------------------------------ tests */

static void ns_id(pid_t pid, char *out, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	n = readlink(path, out, len - 1);
	out[n > 0 ? n : 0] = '\0';
}

static void test_separate_namespaces(void **state)
{
	char hub[64], w1[64], w2[64], self[64];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(HTTP_PORT) };
	int fd, rc;

	(void)state;
	if (skipping)
		skip();
	for (int i = 0; i < NPROC; i++)
		assert_true(tl_alive(procs[i]));
	ns_id(procs[P_APID], hub, sizeof(hub));
	ns_id(procs[P_POLL1], w1, sizeof(w1));
	ns_id(procs[P_POLL2], w2, sizeof(w2));
	ns_id(getpid(), self, sizeof(self));
	assert_true(hub[0] && w1[0] && w2[0]);
	assert_string_not_equal(hub, w1);
	assert_string_not_equal(hub, w2);
	assert_string_not_equal(w1, w2);
	assert_string_not_equal(hub, self);
	/* apid's HTTP is on the hub's loopback: w1's is another, and down. */
	assert_int_equal(enter(HUB), 0);
	rc = tl_wait_port("127.0.0.1", HTTP_PORT, 15000);
	leave();
	assert_int_equal(rc, 0);
	assert_int_equal(enter(W1), 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	leave();
	assert_int_not_equal(rc, 0);
}

static void test_work_crosses_namespaces(void **state)
{
	json_t *h, *d;
	long a, b;
	size_t i;
	int seen = 0;

	(void)state;
	if (skipping)
		skip();
	if (tl_wait_until(60000, statuses_from_both, NULL) != 0) {
		dump_logs();
		fail_msg("apid did not store statuses from both pollerds within 60 s");
	}
	h = hub_get("/api/health");
	assert_non_null(h);
	a = stored_from(h, procs[P_POLL1]);
	b = stored_from(h, procs[P_POLL2]);
	printf("figure: netns statuses stored by apid from pollerd in w1: %ld, in w2: %ld\n", a, b);
	/* Both workers are connected to apid's job socket, over the veths. */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "workers"), "status")),
			 2);
	json_array_foreach(json_object_get(h, "daemons"), i, d) {
		pid_t pid = (pid_t)json_integer_value(json_object_get(d, "pid"));
		if (pid == procs[P_POLL1] || pid == procs[P_POLL2]) {
			json_t *done = json_object_get(json_object_get(d, "counters"), "jobs_done");
			assert_string_equal(json_string_value(json_object_get(d, "daemon")), "pollerd");
			assert_true(json_integer_value(done) > 0);
			seen++;
		}
	}
	assert_int_equal(seen, 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "events"), "lost")), 0);
	json_decref(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_separate_namespaces),
		cmocka_unit_test(test_work_crosses_namespaces),
	};

	return cmocka_run_group_tests_name("netns", tests, setup, teardown);
}
