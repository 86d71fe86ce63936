/* test_bus_tls — the bus's transport security, with real processes on
 * loopback (docs/operations.md, "Bus security"):
 *
 *   1. mutual TLS: etc/hive-certs makes a farm CA, a discovery CA and a
 *      certificate each for apid, discoverd (the discovery CA's) and
 *      pollerd (127.0.0.1); every bus endpoint is
 *      tls+tcp://127.0.0.1. discoverd finds minersim's miners, provisions
 *      their keys and pollerd polls them: the suite works over TLS;
 *   2. a rogue nng client (nng itself, as an attacker would write it)
 *      dialling apid's endpoints without a certificate, with one from
 *      another CA, or in plain TCP gets no connection: a PULL on
 *      jobs_status receives no job, a REQUEST for a miner's credentials on
 *      control gets no reply, a PUBLISH of a miner on events stores
 *      nothing. The same client with a worker's certificate of the farm
 *      CA does get a job; it cannot connect to discoverd's endpoints
 *      (discovery_control, discovery_events: their own CA), asking for
 *      credentials on control gets an error and no secret, and the
 *      hive.miner.seen, hive.miner.key and hive.sweep.done it publishes on
 *      events are refused ("wrong role", counted) and change nothing. With
 *      discoverd's certificate (the discovery CA's) the reply carries the
 *      credentials and the miner is stored: the probes can see what they
 *      look for;
 *   3. a tls+tcp:// endpoint with a private key others may read is
 *      refused, and one without the files says which are missing; a worker
 *      refuses an apid whose certificate (of the farm CA) does not name
 *      the host it dials; `hive-certs revoke` makes a CA file with a
 *      revocation list that refuses the revoked certificate only;
 *   4. ipc://: apid refuses to start on a socket directory group or others
 *      may enter; on a good one each socket is 0600, a worker connects
 *      through them and discoverd through its own (a directory of their
 *      own, 0700), and another user (uid 65534, when the test runs as
 *      root) is refused by the kernel; a directory of another user is
 *      refused; a missing one is made 0700.
 *
 * KEEP_TMP=1 keeps the run directory (configs, certificates, logs).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "hive/bus.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET      "127.63.5.0/28"
#define MINERS      4

static struct ts_suite S;              /* the TLS stack */
static char certs[1200];               /* <dir>/certs: the farm CA and certificates */
static char rogue_ca[1200];            /* <dir>/rogue: another CA */
static char a_mac[18];                 /* a miner apid knows, for the credentials probe */
static char forged_ip[16];             /* in the subnet, no miner there */
static bool failed;

/* ------------------------------------------------------------ helpers */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096], *out = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = tl_run(cmd, &out);
	if (rc != 0)
		fprintf(stderr, "%s: exit %d\n%s\n", cmd, rc, out ? out : "");
	free(out);
	return rc;
}

/* "tcp://127.0.0.1:P" of the suite's config → "tls+tcp://127.0.0.1:P". */
static void to_tls(struct ts_suite *s)
{
	json_t *bus = json_object_get(s->config, "bus");

	for (size_t i = 0; i < ts_nbus; i++) {
		const char *u = json_string_value(json_object_get(bus, ts_bus_keys[i]));
		char url[256];

		assert_non_null(u);
		assert_int_equal(strncmp(u, "tcp://", 6), 0);
		snprintf(url, sizeof(url), "tls+%s", u);
		json_object_set_new(bus, ts_bus_keys[i], json_string(url));
	}
	s->dirty = true;
}

/* The suite's config with another daemon's certificate, in <dir>/<role>.json. */
static void write_role_config(struct ts_suite *s, const char *role, char *path, size_t len)
{
	json_t *c = json_deep_copy(s->config), *tls;
	char f[1300];

	tls = json_object_get(json_object_get(c, "bus"), "tls");
	snprintf(f, sizeof(f), "%s/%s-127.0.0.1.crt", certs, role);
	json_object_set_new(tls, "cert_file", json_string(f));
	snprintf(f, sizeof(f), "%s/%s-127.0.0.1.key", certs, role);
	json_object_set_new(tls, "key_file", json_string(f));
	snprintf(path, len, "%s/%s.json", s->dir, role);
	assert_int_equal(json_dump_file(c, path, JSON_INDENT(2)), 0);
	json_decref(c);
}

/* ------------------------------------------------------------ the rogue */

/* FARM_CERT: a worker's (pollerd's) certificate, signed by the farm CA;
 * DISCOVERD_CERT: discoverd's, signed by the discovery CA. */
enum rogue_id { NO_CERT, OTHER_CA, PLAIN_TCP, FARM_CERT, DISCOVERD_CERT };
static const char *const rogue_names[] = { "no certificate", "a certificate of another CA",
					   "plain tcp://", "a worker's farm certificate",
					   "discoverd's certificate" };

struct rogue {
	nng_socket sock;
	atomic_int pipes;        /* connections that got past the handshake */
};

static void rogue_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct rogue *r = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&r->pipes, 1);
}

/* A PEM file with the certificate and its key, as nng wants them. */
static void cert_key_file(const char *dir, const char *base, char *out, size_t len)
{
	char crt[1400], key[1400];
	char *a, *b;

	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, base);
	snprintf(key, sizeof(key), "%s/%s.key", dir, base);
	snprintf(out, len, "%s/%s.pem", dir, base);
	assert_non_null(a = tl_read_file(crt));
	assert_non_null(b = tl_read_file(key));
	{
		size_t n = strlen(a) + strlen(b) + 2;
		char *both = malloc(n);

		assert_non_null(both);
		snprintf(both, n, "%s%s", a, b);
		assert_int_equal(tl_write_file(out, both), 0);
		chmod(out, 0600);
		free(both);
	}
	free(a);
	free(b);
}

/* Dials key's endpoint as kind (0 pull, 1 req, 2 pub) the way id says. The
 * rogue does not check who answers (NNG_TLS_AUTH_MODE_NONE): all it wants
 * is in. */
static void rogue_open(struct rogue *r, int kind, const char *key, enum rogue_id id)
{
	const char *url = ts_bus(&S, key);
	char plain[256], pem[1500];
	nng_tls_config *tc = NULL;
	nng_dialer d;

	atomic_init(&r->pipes, 0);
	assert_int_equal(kind == 0 ? nng_pull0_open(&r->sock) :
			 kind == 1 ? nng_req0_open(&r->sock) : nng_pub0_open(&r->sock), 0);
	assert_int_equal(nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_POST, rogue_pipe, r), 0);
	if (id == PLAIN_TCP) {
		assert_int_equal(strncmp(url, "tls+", 4), 0);
		snprintf(plain, sizeof(plain), "%s", url + 4);
		url = plain;
	}
	assert_int_equal(nng_dialer_create(&d, r->sock, url), 0);
	if (id != PLAIN_TCP) {
		assert_int_equal(nng_tls_config_alloc(&tc, NNG_TLS_MODE_CLIENT), 0);
		assert_int_equal(nng_tls_config_auth_mode(tc, NNG_TLS_AUTH_MODE_NONE), 0);
		if (id == OTHER_CA) {
			cert_key_file(rogue_ca, "pollerd-127.0.0.1", pem, sizeof(pem));
			assert_int_equal(nng_tls_config_cert_key_file(tc, pem, NULL), 0);
		} else if (id == FARM_CERT || id == DISCOVERD_CERT) {
			cert_key_file(certs, id == FARM_CERT ? "pollerd-rogue" : "discoverd-rogue",
				      pem, sizeof(pem));
			assert_int_equal(nng_tls_config_cert_key_file(tc, pem, NULL), 0);
		}
		assert_int_equal(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tc), 0);
		nng_tls_config_free(tc);
	}
	nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 100);
	nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 200);
	assert_int_equal(nng_dialer_start(d, NNG_FLAG_NONBLOCK), 0);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define NROGUES 3                      /* NO_CERT, OTHER_CA, PLAIN_TCP, at once */

/* Jobs a PULL on jobs_status receives within ms (status every 2 s), for
 * each of the n rogues from first on; their connections in pipes[]. */
static void rogue_pull(enum rogue_id first, int n, int ms, int jobs[], int pipes[])
{
	struct rogue r[NROGUES];
	long long end = now_ms() + ms;

	for (int i = 0; i < n; i++) {
		rogue_open(&r[i], 0, "jobs_status", first + i);
		jobs[i] = 0;
	}
	while (now_ms() < end) {
		for (int i = 0; i < n; i++) {
			nng_msg *m = NULL;

			if (nng_recvmsg(r[i].sock, &m, NNG_FLAG_NONBLOCK) == 0) {
				jobs[i]++;
				nng_msg_free(m);
			}
		}
		if (first == FARM_CERT && jobs[0])
			break;           /* one is proof; the rest are the pollerd's */
		tl_sleep_ms(20);
	}
	for (int i = 0; i < n; i++) {
		pipes[i] = atomic_load(&r[i].pipes);
		nng_close(r[i].sock);
	}
}

/* hive.control.credentials requests for a_mac from n rogues for ms:
 * got[i] = 1 when apid answered rogue i (its reply in reply). */
static void rogue_request(const char *key, enum rogue_id first, int n, int ms, int got[],
			  int pipes[], char *reply, size_t rlen)
{
	struct rogue r[NROGUES];
	json_t *body = json_pack("{s:s}", "mac", a_mac);
	char *buf = NULL;
	size_t len = 0;
	long long end = now_ms() + ms;
	bool all = false, sent[NROGUES];

	assert_int_equal(hive_envelope_encode("hive.control.credentials", "discoverd/rogue/1", 1, 1,
					      (long long)time(NULL) * 1000, body, &buf, &len), 0);
	json_decref(body);
	for (int i = 0; i < n; i++) {
		rogue_open(&r[i], 1, key, first + i);
		got[i] = 0;
		sent[i] = false;
	}
	while (!all && now_ms() < end) {
		all = true;
		for (int i = 0; i < n; i++) {
			nng_msg *m = NULL;

			/* req0 takes a request only once a connection is there */
			if (!sent[i])
				sent[i] = nng_send(r[i].sock, buf, len, NNG_FLAG_NONBLOCK) == 0;
			if (sent[i] && !got[i] &&
			    nng_recvmsg(r[i].sock, &m, NNG_FLAG_NONBLOCK) == 0) {
				size_t k = nng_msg_len(m) < rlen - 1 ? nng_msg_len(m) : rlen - 1;

				memcpy(reply, nng_msg_body(m), k);
				reply[k] = '\0';
				for (size_t j = 0; j < k; j++)   /* topic '\0' json */
					if (!reply[j])
						reply[j] = ' ';
				got[i] = 1;
				nng_msg_free(m);
			}
			all = all && got[i];
		}
		tl_sleep_ms(20);
	}
	free(buf);
	for (int i = 0; i < n; i++) {
		pipes[i] = atomic_load(&r[i].pipes);
		nng_close(r[i].sock);
	}
}

/* n rogues publish hive.miner.seen for macs[i] at forged_ip for ms, every
 * 100 ms. */
static void rogue_publish(const char *key, enum rogue_id first, int n, const char *const macs[],
			  int ms, int pipes[])
{
	struct rogue r[NROGUES];
	long long end = now_ms() + ms, boot = (long long)time(NULL) * 1000;
	unsigned long long seq = 0;

	for (int i = 0; i < n; i++)
		rogue_open(&r[i], 2, key, first + i);
	while (now_ms() < end) {
		seq++;
		for (int i = 0; i < n; i++) {
			json_t *body = json_pack("{s:s,s:s,s:s,s:s}", "mac", macs[i], "ip",
						 forged_ip, "subnet", SUBNET, "model", "s19");
			char *buf = NULL;
			size_t len = 0;

			assert_int_equal(hive_envelope_encode("hive.miner.seen", "discoverd/rogue/1",
							      boot, seq, (long long)time(NULL) * 1000,
							      body, &buf, &len), 0);
			json_decref(body);
			nng_send(r[i].sock, buf, len, NNG_FLAG_NONBLOCK);
			free(buf);
		}
		tl_sleep_ms(100);
	}
	for (int i = 0; i < n; i++) {
		pipes[i] = atomic_load(&r[i].pipes);
		nng_close(r[i].sock);
	}
}

/* One message (topic, body) from a rogue with id on key's endpoint, once
 * it is connected (5 s at most). The connections it got. */
static int rogue_send_once(const char *key, enum rogue_id id, const char *topic, json_t *body)
{
	struct rogue r;
	char *buf = NULL;
	size_t len = 0;
	int pipes;

	rogue_open(&r, 2, key, id);
	for (int i = 0; i < 250 && atomic_load(&r.pipes) == 0; i++)
		tl_sleep_ms(20);
	tl_sleep_ms(100);                /* apid's subscription reaches the rogue */
	assert_int_equal(hive_envelope_encode(topic, "discoverd/rogue/2", 1, 1,
					      (long long)time(NULL) * 1000, body, &buf, &len), 0);
	json_decref(body);
	nng_send(r.sock, buf, len, 0);
	free(buf);
	tl_sleep_ms(300);
	pipes = atomic_load(&r.pipes);
	nng_close(r.sock);
	return pipes;
}

/* events.refused[why] in apid's health. */
static long long refused(const char *why)
{
	json_t *h = ts_api_get(&S, "/api/health");
	long long n = json_integer_value(json_object_get(
		json_object_get(json_object_get(h, "events"), "refused"), why));

	json_decref(h);
	return n;
}

static bool miner_known(const char *mac)
{
	char path[96];
	long status = 0;
	json_t *j;

	snprintf(path, sizeof(path), "/api/miners/%s", mac);
	j = ts_api(&S, "GET", path, NULL, &status);
	json_decref(j);
	return status == 200;
}

/* ------------------------------------------------------------ setup */

static int setup(void **state)
{
	char cfg[1300];

	(void)state;
	if (ts_init(&S, "bustls") != 0)
		return -1;
	snprintf(certs, sizeof(certs), "%s/certs", S.dir);
	snprintf(rogue_ca, sizeof(rogue_ca), "%s/rogue", S.dir);
	if (sh("etc/hive-certs -d '%s' ca", certs) || sh("etc/hive-certs -d '%s' ca", rogue_ca) ||
	    sh("etc/hive-certs -d '%s' ca discovery", certs) ||
	    sh("etc/hive-certs -d '%s' issue apid 127.0.0.1", certs) ||
	    sh("etc/hive-certs -d '%s' issue discoverd 127.0.0.1", certs) ||
	    sh("etc/hive-certs -d '%s' issue pollerd 127.0.0.1", certs) ||
	    sh("etc/hive-certs -d '%s' issue pollerd rogue", certs) ||
	    sh("etc/hive-certs -d '%s' issue discoverd rogue", certs) ||
	    sh("etc/hive-certs -d '%s' issue apid elsewhere", certs) ||
	    sh("etc/hive-certs -d '%s' issue pollerd 127.0.0.1", rogue_ca))
		return -1;
	if (ts_minersim(&S, SUBNET, MINERS, (const char *[]){ "--non-miners", "0", NULL }) != 0)
		return -1;
	if (ts_merge(&S, "{\"intervals\": {\"discovery_seconds\": 3, \"status_seconds\": 2, "
		     "\"telemetry_seconds\": 30, \"heartbeat_seconds\": 1},"
		     " \"bus\": {\"tls\": {\"ca_file\": \"%s/ca.crt\","
		     " \"discovery_ca_file\": \"%s/discovery-ca.crt\","
		     " \"cert_file\": \"%s/apid-127.0.0.1.crt\", \"key_file\": \"%s/apid-127.0.0.1.key\"}}}",
		     certs, certs, certs, certs) != 0)
		return -1;
	to_tls(&S);
	if (ts_write_config(&S) != 0 || !ts_start(&S, "apid", NULL, NULL, NULL))
		return -1;
	write_role_config(&S, "discoverd", cfg, sizeof(cfg));
	if (!ts_start(&S, "discoverd", NULL, (const char *[]){ "-c", cfg, NULL }, NULL))
		return -1;
	write_role_config(&S, "pollerd", cfg, sizeof(cfg));
	if (!ts_start(&S, "pollerd", NULL, (const char *[]){ "-c", cfg, NULL }, NULL))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (failed)
		ts_dump_logs(&S, 30);
	ts_down(&S, failed);
	return 0;
}

/* ------------------------------------------------------------ 1 */

static void test_suite_over_tls(void **state)
{
	json_t *list, *items;
	const char *id;

	(void)state;
	failed = true;
	assert_int_equal(ts_wait_healthy(&S, 20000), 0);
	/* discovered (events), keyed (control: credentials), polled (jobs) */
	assert_int_equal(ts_wait_miners(&S, MINERS, 30000), 0);
	assert_non_null(list = ts_api_get(&S, "/api/miners"));
	items = json_object_get(list, "miners");
	assert_true(json_array_size(items) >= MINERS);
	id = json_string_value(json_object_get(json_array_get(items, 0), "id"));
	assert_non_null(id);
	snprintf(a_mac, sizeof(a_mac), "%s", id);
	/* an address of the subnet where no miner lives, for the forged one */
	for (int host = 14; host >= 1 && !forged_ip[0]; host--) {
		bool used = false;
		char ip[16];

		snprintf(ip, sizeof(ip), "127.63.5.%d", host);
		for (size_t i = 0; i < json_array_size(items); i++) {
			const char *at = json_string_value(json_object_get(json_array_get(items, i),
									   "ip"));

			assert_non_null(at);
			used = used || strcmp(ip, at) == 0;
		}
		if (!used)
			snprintf(forged_ip, sizeof(forged_ip), "%s", ip);
	}
	assert_true(forged_ip[0]);
	json_decref(list);
	assert_int_equal(strlen(a_mac), 17);
	printf("figure: %d miners discovered, keyed and polled over tls+tcp://127.0.0.1\n", MINERS);
	failed = false;
}

/* ------------------------------------------------------------ 2 */

static void test_rogue_pull(void **state)
{
	int pipes[NROGUES], jobs[NROGUES];

	(void)state;
	failed = true;
	rogue_pull(NO_CERT, NROGUES, 2500, jobs, pipes);
	for (int id = NO_CERT; id <= PLAIN_TCP; id++)
		printf("figure: rogue PULL on jobs_status with %s: %d connections, %d jobs in 2.5 s (a status cycle every 2 s)\n",
		       rogue_names[id], pipes[id], jobs[id]);
	for (int id = NO_CERT; id <= PLAIN_TCP; id++) {
		assert_int_equal(pipes[id], 0);
		assert_int_equal(jobs[id], 0);
	}
	rogue_pull(FARM_CERT, 1, 8000, jobs, pipes);
	printf("figure: the same PULL with %s: %d connections, %d job\n", rogue_names[FARM_CERT],
	       pipes[0], jobs[0]);
	assert_true(pipes[0] >= 1);
	assert_int_equal(jobs[0], 1);
	failed = false;
}

static void test_rogue_credentials(void **state)
{
	char reply[4096];
	int pipes[NROGUES], got[NROGUES];

	(void)state;
	failed = true;
	assert_int_equal(strlen(a_mac), 17);
	rogue_request("discovery_control", NO_CERT, NROGUES, 1500, got, pipes, reply,
		      sizeof(reply));
	for (int id = NO_CERT; id <= PLAIN_TCP; id++)
		printf("figure: rogue REQUEST credentials with %s: %d connections, %s\n",
		       rogue_names[id], pipes[id], got[id] ? "ANSWERED" : "no reply in 1.5 s");
	for (int id = NO_CERT; id <= PLAIN_TCP; id++) {
		assert_int_equal(pipes[id], 0);
		assert_int_equal(got[id], 0);
	}
	/* A worker's certificate: discoverd's endpoint (its own CA) does not
	 * let it in; on bus.control it gets an error and no secret. */
	rogue_request("discovery_control", FARM_CERT, 1, 2000, got, pipes, reply, sizeof(reply));
	printf("figure: REQUEST credentials on discovery_control with %s: %d connections, %s\n",
	       rogue_names[FARM_CERT], pipes[0], got[0] ? "ANSWERED" : "no reply in 2 s");
	assert_int_equal(pipes[0], 0);
	assert_int_equal(got[0], 0);
	rogue_request("control", FARM_CERT, 1, 6000, got, pipes, reply, sizeof(reply));
	printf("figure: REQUEST credentials on control with %s: %s\n", rogue_names[FARM_CERT],
	       got[0] ? reply : "no reply");
	assert_int_equal(got[0], 1);
	assert_non_null(strstr(reply, "hive.control.error"));
	assert_null(strstr(reply, "api_key"));
	assert_null(strstr(reply, "unlock_pass"));
	/* discoverd's certificate on its endpoint: answered. */
	rogue_request("discovery_control", DISCOVERD_CERT, 1, 6000, got, pipes, reply,
		      sizeof(reply));
	printf("figure: the same REQUEST with %s: %s\n", rogue_names[DISCOVERD_CERT],
	       got[0] ? "answered" : "no reply");
	assert_int_equal(got[0], 1);
	assert_non_null(strstr(reply, "hive.control.credentials"));
	assert_non_null(strstr(reply, a_mac));
	failed = false;
}

static void test_rogue_publish(void **state)
{
	static const char *const macs[] = { "02:00:5e:00:be:01", "02:00:5e:00:be:02",
					    "02:00:5e:00:be:03" };
	static const char *const good[] = { "02:00:5e:00:be:04" };
	static const char *const worker[] = { "02:00:5e:00:be:05" };
	int pipes[NROGUES], rogue_pipes[NROGUES], worker_pipes[2];
	long long wrong0 = refused("wrong role");

	(void)state;
	failed = true;
	rogue_publish("events", NO_CERT, NROGUES, macs, 1500, rogue_pipes);
	rogue_publish("discovery_events", NO_CERT, NROGUES, macs, 1000, pipes);
	for (int id = NO_CERT; id <= PLAIN_TCP; id++)
		assert_int_equal(pipes[id], 0);
	/* A worker's certificate: not let in on discoverd's endpoint; on
	 * bus.events its seen, key and sweep are refused, counted. */
	rogue_publish("discovery_events", FARM_CERT, 1, worker, 1000, &worker_pipes[0]);
	rogue_publish("events", FARM_CERT, 1, worker, 1000, &worker_pipes[1]);
	assert_int_equal(worker_pipes[0], 0);
	assert_true(worker_pipes[1] >= 1);
	assert_true(rogue_send_once("events", FARM_CERT, "hive.miner.key",
				    json_pack("{s:s,s:s}", "mac", a_mac, "api_key", "forged")) >= 1);
	assert_true(rogue_send_once("events", FARM_CERT, "hive.sweep.done",
				    json_pack("{s:s,s:[],s:I,s:i}", "subnet", SUBNET, "macs",
					      "started", (json_int_t)time(NULL) * 1000 - 1000,
					      "duration_ms", 1000)) >= 1);
	rogue_publish("discovery_events", DISCOVERD_CERT, 1, good, 1000, pipes);
	assert_true(pipes[0] >= 1);
	for (int i = 0; i < 30 && !miner_known(good[0]); i++)
		tl_sleep_ms(200);
	printf("figure: PUBLISH hive.miner.seen on discovery_events with %s: miner %s\n",
	       rogue_names[DISCOVERD_CERT], miner_known(good[0]) ? "stored" : "not stored");
	assert_true(miner_known(good[0]));
	/* apid has taken in what came before it: the rogues' would be there */
	for (int id = NO_CERT; id <= PLAIN_TCP; id++) {
		bool known = miner_known(macs[id]);

		printf("figure: rogue PUBLISH hive.miner.seen with %s: %d connections, miner %s\n",
		       rogue_names[id], rogue_pipes[id], known ? "STORED" : "not stored");
		assert_int_equal(rogue_pipes[id], 0);
		assert_false(known);
	}
	printf("figure: PUBLISH seen (10 a s for 1 s), key and sweep on events with %s: miner %s,"
	       " %lld refused \"wrong role\"; on discovery_events: %d connections\n",
	       rogue_names[FARM_CERT], miner_known(worker[0]) ? "STORED" : "not stored",
	       refused("wrong role") - wrong0, worker_pipes[0]);
	assert_false(miner_known(worker[0]));
	/* at least the key, the sweep and one seen of the ten */
	assert_true(refused("wrong role") - wrong0 >= 3);
	/* the sweep changed nothing: the fleet is still online */
	assert_int_equal(ts_wait_miners(&S, MINERS, 5000), 0);
	failed = false;
}

/* A private key others may read is refused (a tls+tcp:// endpoint). */
static void test_key_mode_refused(void **state)
{
	struct hive_bus_opts o = { .listen = true };
	char ca[1300], crt[1300], key[1300], err[1024];
	char url[64];
	struct hive_bus *b;

	(void)state;
	snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
	snprintf(crt, sizeof(crt), "%s/pollerd-rogue.crt", certs);
	snprintf(key, sizeof(key), "%s/pollerd-rogue.key", certs);
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", tl_free_port());
	o.tls_ca_file = ca;
	o.tls_cert_file = crt;
	o.tls_key_file = key;
	assert_int_equal(chmod(key, 0644), 0);
	b = hive_bus_open(HIVE_BUS_PULL, url, &o, err, sizeof(err));
	assert_int_equal(chmod(key, 0600), 0);
	assert_null(b);
	printf("refused: %s\n", err);
	assert_non_null(strstr(err, "readable by its owner only"));
	/* and with the mode right it opens: the refusal was the mode's */
	assert_non_null(b = hive_bus_open(HIVE_BUS_PULL, url, &o, err, sizeof(err)));
	hive_bus_close(b);
	/* a tls+tcp:// endpoint without the files says what is missing */
	o.tls_ca_file = NULL;
	assert_null(hive_bus_open(HIVE_BUS_PULL, url, &o, err, sizeof(err)));
	assert_non_null(strstr(err, "bus.tls.ca_file"));
}

/* A worker checks apid's certificate: one that does not name the host
 * dialled is refused by the dialer, though the farm CA signed it. */
static int peers_after(const char *ca_file, const char *apid_cert, const char *worker_cert,
		       int ms)
{
	struct hive_bus_opts lo = { .listen = true }, dopt = { .listen = false };
	char ca[1300], certs_ca[1300], crt[1300], key[1300], wcrt[1300], wkey[1300], err[1024];
	char url[64];
	struct hive_bus *l, *d;
	int peers = 0;

	snprintf(ca, sizeof(ca), "%s/%s", certs, ca_file);
	snprintf(certs_ca, sizeof(certs_ca), "%s/ca.crt", certs);
	snprintf(crt, sizeof(crt), "%s/%s.crt", certs, apid_cert);
	snprintf(key, sizeof(key), "%s/%s.key", certs, apid_cert);
	snprintf(wcrt, sizeof(wcrt), "%s/%s.crt", certs, worker_cert);
	snprintf(wkey, sizeof(wkey), "%s/%s.key", certs, worker_cert);
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", tl_free_port());
	lo.tls_ca_file = ca;
	dopt.tls_ca_file = certs_ca;
	lo.tls_cert_file = crt;
	lo.tls_key_file = key;
	dopt.tls_cert_file = wcrt;
	dopt.tls_key_file = wkey;
	assert_non_null(l = hive_bus_open(HIVE_BUS_SUBSCRIBE, url, &lo, err, sizeof(err)));
	assert_non_null(d = hive_bus_open(HIVE_BUS_PUBLISH, url, &dopt, err, sizeof(err)));
	for (long long end = now_ms() + ms; now_ms() < end && !peers;) {
		tl_sleep_ms(50);
		peers = hive_bus_peers(l);
	}
	hive_bus_close(d);
	hive_bus_close(l);
	return peers;
}

static void test_dialer_checks_name(void **state)
{
	int wrong, right;

	(void)state;
	wrong = peers_after("ca.crt", "apid-elsewhere", "pollerd-rogue", 1000);
	right = peers_after("ca.crt", "apid-127.0.0.1", "pollerd-rogue", 5000);
	printf("figure: a worker dialling 127.0.0.1: apid's certificate for \"elsewhere\": %d "
	       "connections; for 127.0.0.1: %d\n", wrong, right);
	assert_int_equal(wrong, 0);
	assert_int_equal(right, 1);
}

/* hive-certs revoke: a listener whose CA file carries the revocation
 * list (ca-crl.pem) refuses the revoked certificate and takes the others;
 * one with ca.crt alone still takes it. (apid reads its CA file when it
 * opens the bus: the same hive_bus_open, at its next start.) */
static void test_revoked(void **state)
{
	int revoked, other, before;

	(void)state;
	assert_int_equal(sh("etc/hive-certs -d '%s' revoke pollerd rogue", certs), 0);
	revoked = peers_after("ca-crl.pem", "apid-127.0.0.1", "pollerd-rogue", 800);
	other = peers_after("ca-crl.pem", "apid-127.0.0.1", "pollerd-127.0.0.1", 5000);
	before = peers_after("ca.crt", "apid-127.0.0.1", "pollerd-rogue", 5000);
	printf("figure: revoked pollerd-rogue: %d connections with ca-crl.pem (%d without the "
	       "list); pollerd-127.0.0.1: %d\n", revoked, before, other);
	assert_int_equal(revoked, 0);
	assert_int_equal(other, 1);
	assert_int_equal(before, 1);
}

/* ------------------------------------------------------------ 4 */

/* connect() to path as uid 65534 in a child: its errno (0 = connected). */
static int connect_as_nobody(const char *path)
{
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int fd;

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(100);
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0)
			_exit(101);
		_exit(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : errno);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static bool log_has(const struct ts_suite *s, const char *name, const char *what)
{
	char path[1200];
	char *text;
	bool has;

	snprintf(path, sizeof(path), "%s/%s.log", s->dir, name);
	text = tl_read_file(path);
	has = text && strstr(text, what);
	free(text);
	return has;
}

/* Where test_ipc puts key's socket: discoverd's in a directory of their
 * own (<dir>/discovery/events), the rest in dir. */
static void ipc_path(const char *dir, const char *key, char *out, size_t len)
{
	if (strncmp(key, "discovery_", 10) == 0)
		snprintf(out, len, "%s/discovery/%s", dir, key + 10);
	else
		snprintf(out, len, "%s/%s", dir, key);
}

static void test_ipc(void **state)
{
	struct ts_suite I;
	struct hive_bus_opts o = { .listen = true };
	struct hive_bus *b;
	json_t *bus;
	char dir[1200], url[1300], err[1024];
	struct stat st;
	bool ok = false;

	(void)state;
	assert_int_equal(ts_init(&I, "busipc"), 0);
	snprintf(dir, sizeof(dir), "%s/run/bus", I.dir);
	bus = json_object_get(I.config, "bus");
	for (size_t i = 0; i < ts_nbus; i++) {
		ipc_path(dir, ts_bus_keys[i], url + 6, sizeof(url) - 6);
		memcpy(url, "ipc://", 6);
		json_object_set_new(bus, ts_bus_keys[i], json_string(url));
	}
	ts_merge(&I, "{\"intervals\": {\"heartbeat_seconds\": 1}}");

	/* apid refuses to start on a directory group or others may enter */
	snprintf(url, sizeof(url), "%s/run", I.dir);
	assert_int_equal(mkdir(url, 0755), 0);
	assert_int_equal(mkdir(dir, 0750), 0);
	assert_int_equal(chmod(dir, 0750), 0);      /* whatever the umask */
	assert_null(ts_start(&I, "apid", NULL, NULL, NULL));
	assert_true(log_has(&I, "apid", "has mode 0750: group and others must have no access"));
	assert_int_equal(chmod(dir, 0700), 0);

	assert_non_null(ts_start(&I, "apid", NULL, NULL, NULL));
	assert_non_null(ts_start(&I, "pollerd", NULL, NULL, NULL));
	assert_non_null(ts_start(&I, "discoverd", NULL, NULL, NULL));
	/* pollerd's heartbeats came through bus.events, discoverd's through
	 * its own socket (apid takes discoverd's from nowhere else) */
	if (ts_wait_healthy(&I, 20000) != 0)
		goto out;
	snprintf(url, sizeof(url), "%s/discovery", dir);
	assert_int_equal(lstat(url, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	assert_int_equal(lstat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	printf("figure: ipc socket directory %s mode %04o\n", dir, (unsigned)(st.st_mode & 07777));
	assert_int_equal(st.st_mode & 07777, 0700);
	for (size_t i = 0; i < ts_nbus; i++) {
		char path[1300];

		ipc_path(dir, ts_bus_keys[i], path, sizeof(path));
		assert_int_equal(lstat(path, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		if ((st.st_mode & 07777) != 0600)
			fail_msg("%s: mode %04o, want 0600", path, (unsigned)(st.st_mode & 07777));
		if (geteuid() == 0) {
			/* another local user: the directory stops it; with the
			 * directory opened up, the socket's own mode still does */
			int e = connect_as_nobody(path);

			assert_int_equal(e, EACCES);
			assert_int_equal(chmod(dir, 0711), 0);
			e = connect_as_nobody(path);
			assert_int_equal(chmod(dir, 0700), 0);
			assert_int_equal(e, EACCES);
		}
	}
	printf("figure: %zu ipc sockets 0600%s\n", ts_nbus,
	       geteuid() == 0 ? "; uid 65534 refused (EACCES) on each, also with the directory 0711"
			      : " (not root: the other-user connect is not tried)");

	/* a directory of another user is refused too (the same check as
	 * apid's, in this process: only root can make one) */
	if (geteuid() == 0) {
		snprintf(url, sizeof(url), "%s/theirs", I.dir);
		assert_int_equal(mkdir(url, 0700), 0);
		assert_int_equal(chown(url, 65534, 65534), 0);
		snprintf(url, sizeof(url), "ipc://%s/theirs/events", I.dir);
		assert_null(b = hive_bus_open(HIVE_BUS_SUBSCRIBE, url, &o, err, sizeof(err)));
		printf("refused: %s\n", err);
		assert_non_null(strstr(err, "belongs to uid 65534, not to this user"));
	}
	/* and a missing one is made 0700, parents included */
	snprintf(url, sizeof(url), "ipc://%s/new/dir/events", I.dir);
	assert_non_null(b = hive_bus_open(HIVE_BUS_SUBSCRIBE, url, &o, err, sizeof(err)));
	hive_bus_close(b);
	snprintf(url, sizeof(url), "%s/new/dir", I.dir);
	assert_int_equal(lstat(url, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	ok = true;
out:
	ts_down(&I, !ok);
	assert_true(ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suite_over_tls),
		cmocka_unit_test(test_rogue_pull),
		cmocka_unit_test(test_rogue_credentials),
		cmocka_unit_test(test_rogue_publish),
		cmocka_unit_test(test_key_mode_refused),
		cmocka_unit_test(test_dialer_checks_name),
		cmocka_unit_test(test_revoked),
		cmocka_unit_test(test_ipc),
	};

	return cmocka_run_group_tests_name("bus_tls", tests, setup, teardown);
}
