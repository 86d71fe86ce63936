/* modbus — the plant's power meter over Modbus TCP (libmodbus), on a
 * thread of its own.
 *
 * The meter holds the plant's generation in one block of the holding or the
 * input table, at one address, in one of the layouts vendors use: u16/s16
 * in one register, u32/s32/float32 across two, in any of the four byte
 * orders, with a scale in watts per unit. The block is refreshed from the
 * plant before every answer, so a read always sees the generation of now.
 * Any other address or table answers "illegal data address"; writes answer
 * "illegal function" (a meter is read-only); a unit id other than ours (0
 * and 255 are taken as "any", as TCP meters do) answers "gateway target
 * failed to respond".
 *
 * libmodbus serves one socket at a time, so the thread polls the listener
 * and every client and points the context at the one that is readable
 * (modbus_set_socket) before modbus_receive.
 *
 * Note for clients: Debian 12's libmodbus 3.1.6 modbus_set_float_abcd & co.
 * write the wrong byte order on little-endian hosts (abcd gives badc, ...);
 * the getters are right. The encoder below writes the bytes itself.
 */
#include "plantsim.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <modbus.h>

#include "hive/clock.h"
#include "hive/log.h"

#define MAX_CLIENTS  32
#define POLL_MS      250
#define APPLY_WAIT_S 3

static struct {
	modbus_t *ctx;
	modbus_mapping_t *map;
	pthread_t thread;
	bool running;
	bool stop;               /* __atomic: main asks the thread to end */
	int listen_fd;
	int clients[MAX_CLIENTS];
	int nclients;
	int wake[2];             /* admin → thread: a mode change waits */
	pthread_mutex_t mtx;     /* guards what follows */
	pthread_cond_t applied_cv;
	int mode, exception;     /* wanted */
	unsigned long want_seq, done_seq;
	int cur_mode, cur_exception;   /* applied by the thread */
	bool listening;
	int nclients_seen;       /* M.nclients, as others may read it */
	uint16_t regs[2];
	int nregs;
	double value_w;
	long long requests, answered, exceptions;
} M = {
	.listen_fd = -1, .wake = { -1, -1 }, .mtx = PTHREAD_MUTEX_INITIALIZER,
	.exception = MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE,
	.cur_exception = MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE,
};

/* ---------------------------------------------------------------- names */

static const char *const table_names[] = { "holding", "input" };
static const char *const type_names[] = { "u16", "s16", "u32", "s32", "float32" };
static const char *const order_names[] = { "abcd", "badc", "cdab", "dcba" };
static const char *const mode_names[] = { "ok", "silent", "exception", "closed" };

static int find(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

const char *ps_mb_table_name(int t) { return table_names[t]; }
const char *ps_mb_type_name(int t) { return type_names[t]; }
const char *ps_mb_order_name(int o) { return order_names[o]; }
const char *ps_mb_mode_name(int m) { return mode_names[m]; }
int ps_mb_table_parse(const char *s) { return find(table_names, 2, s); }
int ps_mb_type_parse(const char *s) { return find(type_names, 5, s); }
int ps_mb_order_parse(const char *s) { return find(order_names, 4, s); }
int ps_mb_mode_parse(const char *s) { return find(mode_names, 4, s); }

/* ---------------------------------------------------------------- layout */

static uint16_t swap16(uint16_t r)
{
	return (uint16_t)((r << 8) | (r >> 8));
}

static long long clamp(double v, long long lo, long long hi)
{
	if (!(v >= (double)lo))
		return lo;
	if (v >= (double)hi)
		return hi;
	return llround(v);
}

/* Bytes of the value, most significant first, are a b c d. A register
 * holds two bytes high-first; the order names what the registers hold in
 * address order: abcd = ab cd (big-endian), badc = ba dc (bytes swapped),
 * cdab = cd ab (words swapped), dcba = dc ba (little-endian). A 16-bit
 * value is a b: abcd/cdab send ab, badc/dcba send ba. Integers saturate at
 * the type's range. */
int ps_modbus_encode(double watts, const struct ps_mb_layout *l, uint16_t regs[2])
{
	double v = watts / l->scale;
	bool swap = l->order == PS_MB_BADC || l->order == PS_MB_DCBA;
	uint32_t x = 0;
	uint16_t hi, lo;
	float f;

	switch (l->type) {
	case PS_MB_U16:
		regs[0] = (uint16_t)clamp(v, 0, 65535);
		break;
	case PS_MB_S16:
		regs[0] = (uint16_t)(int16_t)clamp(v, -32768, 32767);
		break;
	case PS_MB_U32:
		x = (uint32_t)clamp(v, 0, 4294967295LL);
		break;
	case PS_MB_S32:
		x = (uint32_t)(int32_t)clamp(v, -2147483648LL, 2147483647LL);
		break;
	default:
		f = (float)v;
		memcpy(&x, &f, sizeof(x));
		break;
	}
	if (l->type == PS_MB_U16 || l->type == PS_MB_S16) {
		if (swap)
			regs[0] = swap16(regs[0]);
		return 1;
	}
	hi = (uint16_t)(x >> 16);
	lo = (uint16_t)x;
	if (swap) {
		hi = swap16(hi);
		lo = swap16(lo);
	}
	if (l->order == PS_MB_CDAB || l->order == PS_MB_DCBA) {
		regs[0] = lo;
		regs[1] = hi;
	} else {
		regs[0] = hi;
		regs[1] = lo;
	}
	return 2;
}

static int layout_words(const struct ps_mb_layout *l)
{
	return l->type == PS_MB_U16 || l->type == PS_MB_S16 ? 1 : 2;
}

/* The block shows the generation of now. */
static void refresh(void)
{
	const struct ps_mb_layout *l = &ps_opts.mb;
	uint16_t regs[2];
	double w = ps_plant_meter_w();
	int n = ps_modbus_encode(w, l, regs);
	uint16_t *tab = l->table == PS_MB_HOLDING ? M.map->tab_registers
						  : M.map->tab_input_registers;

	memcpy(tab, regs, (size_t)n * sizeof(regs[0]));
	pthread_mutex_lock(&M.mtx);
	memcpy(M.regs, regs, sizeof(regs));
	M.nregs = n;
	M.value_w = w;
	pthread_mutex_unlock(&M.mtx);
}

/* ---------------------------------------------------------------- thread */

static void drop_clients(void)
{
	for (int i = 0; i < M.nclients; i++)
		close(M.clients[i]);
	M.nclients = 0;
}

static void apply_mode(void)
{
	unsigned long seq;
	int mode, exc;

	pthread_mutex_lock(&M.mtx);
	mode = M.mode;
	exc = M.exception;
	seq = M.want_seq;
	pthread_mutex_unlock(&M.mtx);
	if (mode == PS_MB_CLOSED && M.listen_fd >= 0) {
		drop_clients();
		close(M.listen_fd);
		M.listen_fd = -1;
	} else if (mode != PS_MB_CLOSED && M.listen_fd < 0) {
		/* libmodbus sets SO_REUSEADDR: the old port comes back at once */
		M.listen_fd = modbus_tcp_listen(M.ctx, MAX_CLIENTS);
		if (M.listen_fd < 0)
			hive_log_complain("modbus listen", "modbus listen_failed addr=%s err=\"%s\"",
					  ps_opts.modbus_addr, modbus_strerror(errno));
	}
	pthread_mutex_lock(&M.mtx);
	M.cur_mode = mode;
	M.cur_exception = exc;
	M.listening = M.listen_fd >= 0;
	M.nclients_seen = M.nclients;
	M.done_seq = seq;
	pthread_cond_broadcast(&M.applied_cv);
	pthread_mutex_unlock(&M.mtx);
}

static void count(long long *n)
{
	pthread_mutex_lock(&M.mtx);
	(*n)++;
	pthread_mutex_unlock(&M.mtx);
}

static int reply_exception(const uint8_t *q, int code)
{
	count(&M.exceptions);
	return modbus_reply_exception(M.ctx, q, (unsigned)code);
}

/* One request from fd. -1: the client is gone (or spoke garbage). */
static int serve(int fd)
{
	uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
	int hl = modbus_get_header_length(M.ctx), rc, unit, fc;

	modbus_set_socket(M.ctx, fd);
	rc = modbus_receive(M.ctx, q);
	if (rc <= 0)
		return rc;
	unit = q[hl - 1];
	fc = q[hl];
	count(&M.requests);
	switch (M.cur_mode) {
	case PS_MB_SILENT:
		return 0;
	case PS_MB_EXCEPTION:
		return reply_exception(q, M.cur_exception) < 0 ? -1 : 0;
	}
	if (unit != ps_opts.mb.unit && unit != 0 && unit != 255)
		return reply_exception(q, MODBUS_EXCEPTION_GATEWAY_TARGET) < 0 ? -1 : 0;
	if (fc != MODBUS_FC_READ_HOLDING_REGISTERS && fc != MODBUS_FC_READ_INPUT_REGISTERS)
		return reply_exception(q, MODBUS_EXCEPTION_ILLEGAL_FUNCTION) < 0 ? -1 : 0;
	refresh();
	count(&M.answered);
	return modbus_reply(M.ctx, q, rc, M.map) < 0 ? -1 : 0;
}

static void accept_client(void)
{
	int fd = modbus_tcp_accept(M.ctx, &M.listen_fd);

	if (fd < 0)
		return;
	if (M.nclients == MAX_CLIENTS) {
		close(fd);
		return;
	}
	M.clients[M.nclients++] = fd;
}

static void *modbus_main(void *arg)
{
	struct pollfd p[2 + MAX_CLIENTS];
	char drain[64];

	(void)arg;
	while (!__atomic_load_n(&M.stop, __ATOMIC_ACQUIRE)) {
		int n = 0, base, nc;

		apply_mode();
		refresh();
		p[n++] = (struct pollfd){ .fd = M.wake[0], .events = POLLIN };
		if (M.listen_fd >= 0)
			p[n++] = (struct pollfd){ .fd = M.listen_fd, .events = POLLIN };
		base = n;
		nc = M.nclients;
		for (int i = 0; i < nc; i++)
			p[n++] = (struct pollfd){ .fd = M.clients[i], .events = POLLIN };
		if (poll(p, (nfds_t)n, POLL_MS) <= 0)
			continue;
		if (p[0].revents)
			while (read(M.wake[0], drain, sizeof(drain)) > 0)
				;
		/* a mode change first: "closed" must not answer one more read */
		if (p[0].revents)
			continue;
		for (int i = 0; i < nc; i++) {
			if (!p[base + i].revents)
				continue;
			if (serve(p[base + i].fd) < 0) {
				close(p[base + i].fd);
				p[base + i].fd = -1;
			}
		}
		/* compact the clients that closed */
		M.nclients = 0;
		for (int i = 0; i < nc; i++)
			if (p[base + i].fd >= 0)
				M.clients[M.nclients++] = p[base + i].fd;
		if (base == 2 && p[1].revents)
			accept_client();
		pthread_mutex_lock(&M.mtx);
		M.nclients_seen = M.nclients;
		pthread_mutex_unlock(&M.mtx);
	}
	drop_clients();
	if (M.listen_fd >= 0)
		close(M.listen_fd);
	M.listen_fd = -1;
	return NULL;
}

/* ---------------------------------------------------------------- control */

int ps_modbus_start(char *err, size_t errlen)
{
	const struct ps_mb_layout *l = &ps_opts.mb;
	int words = layout_words(l), port;
	char ip[16];

	if (ps_parse_loopback_addr(ps_opts.modbus_addr, ip, &port, err, errlen) < 0)
		return -1;
	if ((errno = hive_cond_init_mono(&M.applied_cv)) != 0 ||
	    pipe2(M.wake, O_NONBLOCK | O_CLOEXEC) < 0) {
		snprintf(err, errlen, "modbus: %s", strerror(errno));
		return -1;
	}
	M.ctx = modbus_new_tcp(ip, port);
	M.map = l->table == PS_MB_HOLDING
		? modbus_mapping_new_start_address(0, 0, 0, 0, (unsigned)l->reg, (unsigned)words, 0, 0)
		: modbus_mapping_new_start_address(0, 0, 0, 0, 0, 0, (unsigned)l->reg, (unsigned)words);
	if (!M.ctx || !M.map) {
		snprintf(err, errlen, "modbus: %s", modbus_strerror(errno));
		goto fail;
	}
	M.listen_fd = modbus_tcp_listen(M.ctx, MAX_CLIENTS);
	if (M.listen_fd < 0) {
		snprintf(err, errlen, "--modbus %s: cannot listen: %s", ps_opts.modbus_addr,
			 modbus_strerror(errno));
		goto fail;
	}
	M.listening = true;
	refresh();
	if ((errno = pthread_create(&M.thread, NULL, modbus_main, NULL)) != 0) {
		snprintf(err, errlen, "modbus: thread: %s", strerror(errno));
		goto fail;
	}
	M.running = true;
	return 0;
fail:
	if (M.listen_fd >= 0)
		close(M.listen_fd);
	M.listen_fd = -1;
	if (M.map)
		modbus_mapping_free(M.map);
	if (M.ctx)
		modbus_free(M.ctx);
	M.map = NULL;
	M.ctx = NULL;
	close(M.wake[0]);
	close(M.wake[1]);
	M.wake[0] = M.wake[1] = -1;
	pthread_cond_destroy(&M.applied_cv);
	return -1;
}

void ps_modbus_stop(void)
{
	if (!M.running)
		return;
	__atomic_store_n(&M.stop, true, __ATOMIC_RELEASE);
	(void)!write(M.wake[1], "q", 1);
	pthread_join(M.thread, NULL);
	M.running = false;
	modbus_set_socket(M.ctx, -1);   /* the thread closed every socket */
	modbus_mapping_free(M.map);
	modbus_free(M.ctx);
	close(M.wake[0]);
	close(M.wake[1]);
	pthread_cond_destroy(&M.applied_cv);
}

int ps_modbus_set_mode(int mode, int exception, char *err, size_t errlen)
{
	int64_t deadline = hive_mono_ms() + APPLY_WAIT_S * 1000;
	unsigned long seq;
	int rc = 0;

	if (!M.running) {
		snprintf(err, errlen, "no Modbus meter (start plantsim with --modbus)");
		return -1;
	}
	if (exception < 1 || exception > 255) {
		snprintf(err, errlen, "exception: expected a Modbus exception code 1..255");
		return -1;
	}
	pthread_mutex_lock(&M.mtx);
	M.mode = mode;
	M.exception = exception;
	seq = ++M.want_seq;
	pthread_mutex_unlock(&M.mtx);
	(void)!write(M.wake[1], "m", 1);
	pthread_mutex_lock(&M.mtx);
	while (M.done_seq < seq && rc == 0)
		rc = hive_cond_wait_until(&M.applied_cv, &M.mtx, deadline);
	pthread_mutex_unlock(&M.mtx);
	if (rc) {
		snprintf(err, errlen, "modbus thread did not apply the change within %d s", APPLY_WAIT_S);
		return -1;
	}
	return 0;
}

void ps_modbus_reset(void)
{
	char err[128];

	if (M.running)
		ps_modbus_set_mode(PS_MB_OK, MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE, err, sizeof(err));
}

json_t *ps_modbus_state(void)
{
	const struct ps_mb_layout *l = &ps_opts.mb;
	json_t *regs, *j;

	if (!M.running)
		return json_null();
	regs = json_array();
	pthread_mutex_lock(&M.mtx);
	for (int i = 0; i < M.nregs; i++)
		json_array_append_new(regs, json_integer(M.regs[i]));
	j = json_pack("{s:s, s:s, s:i, s:s, s:s, s:f, s:i, s:s, s:i, s:b, s:i, s:o, s:I,"
		      " s:I, s:I, s:I}",
		      "addr", ps_opts.modbus_addr, "table", table_names[l->table],
		      "register", l->reg, "type", type_names[l->type], "order", order_names[l->order],
		      "scale", l->scale, "unit", l->unit,
		      "mode", mode_names[M.cur_mode], "exception", M.cur_exception,
		      "listening", M.listening,
		      "clients", M.nclients_seen, "registers", regs,
		      "value_w", (json_int_t)llround(M.value_w),
		      "requests", (json_int_t)M.requests, "answered", (json_int_t)M.answered,
		      "exceptions", (json_int_t)M.exceptions);
	pthread_mutex_unlock(&M.mtx);
	return j;
}
