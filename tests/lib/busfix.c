/* busfix — see busfix.h. */
#include "busfix.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hive/cfg.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/msg.h"
#include "testlib.h"

struct hive_bus_opts tl_bus_opts(bool listen, const char *src)
{
	struct hive_cfg d;

	hive_cfg_defaults(&d);
	return (struct hive_bus_opts){
		.listen = listen,
		.sendbuf = d.bus.sendbuf,
		.recvbuf = d.bus.recvbuf,
		.max_message_bytes = d.bus.max_message_bytes,
		.send_timeout_ms = 2000,
		.recv_timeout_ms = 2000,
		.source = src,
		.boot = hive_wall_ms(),
	};
}

void tl_mac_of(int i, char out[18])
{
	snprintf(out, 18, "aa:bb:cc:00:%02x:%02x", (i >> 8) & 0xff, i & 0xff);
}

json_t *tl_status_body(const char *mac)
{
	json_t *chains = json_array();

	for (int c = 0; c < 3; c++)
		json_array_append_new(chains, json_pack(
			"{s:i,s:s,s:f,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "id", c, "state", "mining",
			"hr_rt_ghs", 45123.5 + c, "freq_mhz", 490, "voltage", 1380,
			"chip_temp_max", 71, "pcb_temp_max", 60, "red", 0, "orange", 1, "grey", 0,
			"hw_errors", 12));
	return json_pack("{s:I,s:s,s:s,s:s,s:i,s:s,s:s,s:f,s:f,s:f,s:i,s:i,s:i,s:b,s:i,"
			 "s:[iiii],s:i,s:o,s:{s:i,s:i,s:i,s:i,s:s,s:s},s:{s:b,s:s},s:i}",
			 "job", (json_int_t)0, "mac", mac, "ip", "127.0.0.1", "state", "mining",
			 "state_time", 86400, "preset", "3300", "preset_pretty", "3300 W",
			 "hr_realtime_ghs", 135370.5, "hr_average_ghs", 135000.1,
			 "hr_nominal_ghs", 136000.0, "chip_temp_max", 71, "pcb_temp_max", 60,
			 "power_w", 3310, "power_metered", 1, "fan_duty", 70,
			 "fans", 5400, 5400, 5300, 5350, "hw_errors", 36, "chains", chains,
			 "pools", "total", 3, "working", 1, "accepted", 12345, "rejected", 3,
			 "url", "stratum+tcp://127.0.0.1:3333", "user", "farm.worker1",
			 "switcher", "enabled", 0, "top_preset", "3300",
			 "latency_ms", 84);
}

/* ------------------------------------------------------------ publishers
 * The handshake over the child's stdin/stdout: it writes 'R' once
 * connected, reads 'G', writes 'S' once it has sent everything. */

static int pub_main(const char *url, const char *src, int count)
{
	struct hive_bus_opts o = tl_bus_opts(false, src);
	json_t *body = tl_status_body("02:00:00:00:00:01");
	struct hive_bus *pub = NULL;
	char err[256], c;
	int waited = 0, rc = 1;

	if (!body)
		goto fail;
	if (!(pub = hive_bus_open(HIVE_BUS_PUBLISH, url, &o, err, sizeof(err)))) {
		fprintf(stderr, "%s publisher: %s\n", program_invocation_short_name, err);
		goto fail;
	}
	while (hive_bus_peers(pub) == 0 && waited < 10000) {
		tl_sleep_ms(5);
		waited += 5;
	}
	if (hive_bus_peers(pub) == 0 || write(1, "R", 1) != 1 || read(0, &c, 1) != 1 || c != 'G')
		goto fail;
	for (int i = 0; i < count; i++) {
		json_object_set_new(body, "job", json_integer(i + 1));
		if (hive_bus_send(pub, HIVE_TOPIC_STATUS_RESULT, body, false) != HIVE_BUS_OK)
			goto fail;
	}
	if (write(1, "S", 1) != 1)
		goto fail;
	while (read(0, &c, 1) == 1)
		;
	rc = 0;
fail:
	if (pub)
		hive_bus_close(pub);
	json_decref(body);
	return rc;
}

int tl_pub_child(int argc, char **argv)
{
	static char name[64];

	if (argc != 5 || strcmp(argv[1], "--publisher") != 0)
		return -1;
	snprintf(name, sizeof(name), "%s-publisher", program_invocation_short_name);
	hive_log_init(name, HIVE_LOG_WARN, NULL);
	return pub_main(argv[2], argv[3], atoi(argv[4]));
}

int tl_pub_spawn(struct tl_pub *p, const char *url, const char *src, int count)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	char countbuf[16];

	p->to = p->from = -1;
	snprintf(countbuf, sizeof(countbuf), "%d", count);
	/* Close-on-exec: no later child may hold this child's stdin open. */
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		goto fail;
	if ((p->pid = fork()) < 0)
		goto fail;
	if (p->pid == 0) {
		/* Only async-signal-safe calls until exec: nng threads exist. */
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl("/proc/self/exe", program_invocation_short_name, "--publisher", url, src,
		      countbuf, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	p->to = in[1];
	p->from = out[0];
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	p->pid = -1;
	return -1;
}

/* Reads the byte the child should write next, within timeout_ms. */
static bool pub_expect(struct tl_pub *p, char want, int timeout_ms)
{
	struct pollfd pfd = { .fd = p->from, .events = POLLIN };
	char c;

	if (poll(&pfd, 1, timeout_ms) != 1 || read(p->from, &c, 1) != 1)
		return false;
	return c == want;
}

bool tl_pub_ready(struct tl_pub *p, int timeout_ms)
{
	return pub_expect(p, 'R', timeout_ms);
}

int tl_pub_go(struct tl_pub *p)
{
	return write(p->to, "G", 1) == 1 ? 0 : -1;
}

bool tl_pub_sent(struct tl_pub *p, int timeout_ms)
{
	return pub_expect(p, 'S', timeout_ms);
}

bool tl_pub_finish(struct tl_pub *p, int timeout_ms)
{
	pid_t pid = p->pid;
	int status;

	if (pid <= 0)
		return false;
	close(p->to);
	close(p->from);
	p->to = p->from = -1;
	p->pid = -1;
	status = tl_stop(pid, 0, timeout_ms);   /* signal 0: its stdin closed, it exits */
	if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return true;
	fprintf(stderr, "publisher %d: status %#x\n", (int)pid, (unsigned)status);
	return false;
}

/* ------------------------------------------------------------ receiver */

struct tl_recv_node {
	struct tl_recv_node *next;
	struct hive_envelope env;
};

static void *receiver_main(void *arg)
{
	struct tl_receiver *r = arg;
	struct tl_recv_node *n = NULL;

	while (!atomic_load(&r->stop)) {
		int rc;

		if (!n && !(n = calloc(1, sizeof(*n)))) {
			tl_sleep_ms(1);
			continue;
		}
		rc = hive_bus_recv(r->bus, &n->env, 100);
		if (rc == HIVE_BUS_REJECTED)
			atomic_fetch_add(&r->rejected, 1);
		if (rc == HIVE_BUS_CLOSED)
			break;
		if (rc != HIVE_BUS_OK)
			continue;
		pthread_mutex_lock(&r->mu);
		if (r->tail)
			r->tail->next = n;
		else
			r->head = n;
		r->tail = n;
		if (++r->depth > r->max_depth)
			r->max_depth = r->depth;
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
		n = NULL;
	}
	free(n);
	return NULL;
}

int tl_receiver_start(struct tl_receiver *r, struct hive_bus *bus)
{
	memset(r, 0, sizeof(*r));
	atomic_init(&r->stop, false);
	atomic_init(&r->rejected, 0);
	r->bus = bus;
	if (pthread_mutex_init(&r->mu, NULL) != 0)
		return -1;
	if (hive_cond_init_mono(&r->cv) == 0) {
		if (pthread_create(&r->thread, NULL, receiver_main, r) == 0)
			return 0;
		pthread_cond_destroy(&r->cv);
	}
	pthread_mutex_destroy(&r->mu);
	return -1;
}

bool tl_receiver_pop(struct tl_receiver *r, struct hive_envelope *out, int timeout_ms)
{
	struct tl_recv_node *n;
	int64_t deadline = hive_mono_ms() + timeout_ms;

	pthread_mutex_lock(&r->mu);
	while (!r->head)
		if (hive_cond_wait_until(&r->cv, &r->mu, deadline) == ETIMEDOUT)
			break;
	if ((n = r->head)) {
		r->head = n->next;
		if (!r->head)
			r->tail = NULL;
		r->depth--;
	}
	pthread_mutex_unlock(&r->mu);
	if (!n)
		return false;
	*out = n->env;
	free(n);
	return true;
}

void tl_receiver_stop(struct tl_receiver *r)
{
	struct hive_envelope env;

	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	while (tl_receiver_pop(r, &env, 0))
		hive_envelope_clear(&env);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}
