/* sweep — every configured subnet in turn, every address of it probed with
 * a non-blocking TCP connect to network.port.
 *
 * Addresses are handed out by a cursor, so a /16 costs no more memory than
 * a /24: what a sweep holds is its probes in flight (at most probe_cap, a
 * fixed pool) and the MACs it has seen. A probe is a socket watched for
 * writability on the loop; SO_ERROR then says whether the host accepted.
 * Each probe has its own timer (network.miner_probe_timeout_ms); when it
 * fires the socket is asked once more, so a loop that came late never
 * takes a host that accepted for one that did not. Hosts
 * that accepted go on to identify.c; a subnet is done when every address
 * was probed and every host's pipeline has ended, and then its
 * hive.sweep.done lists the MACs seen, in chunks that fit the bus's
 * message cap (apid marks the others offline once it has them all).
 *
 * Running out of descriptors (EMFILE) or local ports (EADDRNOTAVAIL) only
 * slows the sweep: the address is probed again when a probe ends.
 */
#include "discoverd.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hive/clock.h"
#include "hive/log.h"
#include "hive/msg.h"

#define STARVED_RETRY_MS 100
/* Bytes of one MAC in hive.sweep.done's list ("aa:bb:cc:dd:ee:ff",) and
 * what the rest of the message takes at most. */
#define MAC_JSON_BYTES   20
#define SWEEP_MSG_ROOM   4096
/* Hosts between a successful probe and the end of their pipeline, at most,
 * per HTTP slot: probing waits for them, so a /16 full of miners holds
 * a few thousand pipelines at a time, not 65,000. */
#define HOSTS_PER_SLOT   4

struct probe {
	struct discoverd *dd;
	int fd;                        /* -1: slot free */
	uint32_t addr;
	int64_t timer;
};

struct disc_sweep {
	struct hive_subnet *subnets;   /* copied: a reload may replace the config */
	size_t nsubnets, cur;
	int64_t started_mono;          /* of the whole sweep */
	bool asking;                   /* waiting for apid's recheck list */
	uint64_t miners;               /* MACs listed, all subnets */

	/* the subnet being swept */
	uint32_t first;
	uint64_t count, cursor;
	int64_t subnet_wall, subnet_mono;
	uint64_t probed, answered;
	char (*macs)[HIVE_MAC_LEN];
	size_t nmacs, capmacs;

	struct probe *probes;
	int nprobes;
	int *free_slots;
	int nfree;
	int in_flight;
	bool starved;
	int64_t retry_timer;
};

static void fill(struct discoverd *dd);
static void subnet_begin(struct discoverd *dd);

/* ---------------------------------------------------------------- probes */

static void probe_close(struct discoverd *dd, struct probe *p)
{
	struct disc_sweep *s = dd->sweep;

	hive_loop_unwatch(dd->loop, p->fd);
	close(p->fd);
	p->fd = -1;
	if (p->timer > 0)
		hive_loop_cancel(dd->loop, p->timer);
	p->timer = 0;
	s->free_slots[s->nfree++] = (int)(p - s->probes);
	s->in_flight--;
}

static void answered(struct discoverd *dd, uint32_t addr)
{
	char ip[HIVE_IPV4_LEN];

	dd->sweep->answered++;
	dd->c.answered++;
	if (disc_host_start(dd, addr) < 0)
		log_warn("host_start_failed ip=%s", hive_ipv4_format(addr, ip));
}

static void on_probe_fd(struct hive_loop *loop, int fd, int events, void *arg)
{
	struct probe *p = arg;
	struct discoverd *dd = p->dd;
	uint32_t addr = p->addr;
	int e = 0;
	socklen_t len = sizeof(e);

	(void)loop;
	(void)events;
	if (p->fd != fd)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	probe_close(dd, p);
	if (e == 0)
		answered(dd, addr);
	dd->sweep->starved = false;
	fill(dd);
}

static int64_t on_probe_timeout(struct hive_loop *loop, void *arg)
{
	struct probe *p = arg;
	struct discoverd *dd = p->dd;
	struct pollfd pf;

	(void)loop;
	p->timer = 0;               /* this timer is over: do not cancel it */
	if (p->fd >= 0) {
		/* A busy loop comes late: the host may have accepted long ago
		 * and we have not looked yet. Only the socket says it did not. */
		pf.fd = p->fd;
		pf.events = POLLOUT;
		pf.revents = 0;
		if (poll(&pf, 1, 0) == 1 && (pf.revents & (POLLOUT | POLLERR | POLLHUP))) {
			on_probe_fd(loop, p->fd, HIVE_LOOP_WRITE, p);
			return -1;
		}
		probe_close(dd, p);
		dd->sweep->starved = false;
		fill(dd);
	}
	return -1;
}

static int64_t on_starved_retry(struct hive_loop *loop, void *arg)
{
	struct discoverd *dd = arg;

	(void)loop;
	if (dd->sweep) {
		dd->sweep->retry_timer = 0;
		dd->sweep->starved = false;
		fill(dd);
	}
	return -1;
}

/* Probes addr. 0 when the address is dealt with (probe in flight or
 * answered at once), -1 when we are out of local resources. */
static int probe_start(struct discoverd *dd, uint32_t addr)
{
	struct disc_sweep *s = dd->sweep;
	struct sockaddr_in sa;
	struct probe *p;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			return -1;
		dd->c.probe_errors++;
		hive_log_complain("probe socket", "probe_socket_failed errno=%d err=\"%s\"", errno,
				  strerror(errno));
		return 0;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)dd->d.cfg.network.port);
	sa.sin_addr.s_addr = htonl(addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		s->probed++;
		dd->c.probed++;
		answered(dd, addr);
		return 0;
	}
	if (errno != EINPROGRESS) {
		int e = errno;

		close(fd);
		if (e == EADDRNOTAVAIL || e == EAGAIN || e == ENOBUFS)
			return -1;
		s->probed++;
		dd->c.probed++;
		if (e != ECONNREFUSED && e != ENETUNREACH && e != EHOSTUNREACH) {
			dd->c.probe_errors++;
			hive_log_complain("probe connect", "probe_connect_failed errno=%d err=\"%s\"",
					  e, strerror(e));
		}
		return 0;
	}
	p = &s->probes[s->free_slots[--s->nfree]];
	p->dd = dd;
	p->fd = fd;
	p->addr = addr;
	p->timer = 0;
	s->in_flight++;
	s->probed++;
	dd->c.probed++;
	if (hive_loop_watch(dd->loop, fd, HIVE_LOOP_WRITE, on_probe_fd, p) < 0 ||
	    (p->timer = hive_loop_timer(dd->loop, dd->d.cfg.network.miner_probe_timeout_ms,
					on_probe_timeout, p)) < 0) {
		p->timer = 0;
		probe_close(dd, p);
		dd->c.probe_errors++;
		return 0;
	}
	return 0;
}

/* ---------------------------------------------------------------- subnets */

static void sweep_free(struct disc_sweep *s)
{
	free(s->subnets);
	free(s->probes);
	free(s->free_slots);
	free(s->macs);
	free(s);
}

static void sweep_end(struct discoverd *dd)
{
	struct disc_sweep *s = dd->sweep;
	int64_t started = s->started_mono;

	dd->c.sweeps++;
	dd->c.miners = s->miners;
	dd->c.last_sweep_ms = hive_mono_ms() - started;
	log_info("sweep_done sweep=%llu subnets=%zu miners=%llu ms=%lld",
		 (unsigned long long)dd->sweep_no, s->nsubnets, (unsigned long long)s->miners,
		 (long long)dd->c.last_sweep_ms);
	if (s->retry_timer > 0)
		hive_loop_cancel(dd->loop, s->retry_timer);
	sweep_free(s);
	dd->sweep = NULL;
	disc_sweep_finished(dd, started);
}

/* MACs per hive.sweep.done: as many as fit bus.max_message_bytes. */
static size_t macs_per_message(const struct discoverd *dd)
{
	long room = (long)dd->d.cfg.bus.max_message_bytes - SWEEP_MSG_ROOM;

	return room / MAC_JSON_BYTES > 1 ? (size_t)(room / MAC_JSON_BYTES) : 1;
}

/* The subnet's list in as many hive.sweep.done as it takes, each with the
 * sweep id, its number and the whole sweep's figures; apid acts only
 * once it has every chunk. 0, or -1 when a chunk was not sent. */
static int publish_done(struct discoverd *dd, const struct hive_subnet *net, int64_t ms)
{
	struct disc_sweep *s = dd->sweep;
	struct hive_msg_sweep_done b;
	size_t per = macs_per_message(dd);
	size_t chunks = s->nmacs ? (s->nmacs + per - 1) / per : 1;
	int rc = 0;

	for (size_t i = 0; i < chunks; i++) {
		hive_msg_init(HIVE_MSG_SWEEP_DONE, &b);
		snprintf(b.subnet, sizeof(b.subnet), "%s", net->text);
		b.macs = s->nmacs ? s->macs + i * per : NULL;
		b.n_macs = i + 1 < chunks ? per : s->nmacs - i * per;
		b.started = s->subnet_wall;
		b.duration_ms = ms;
		b.probed = (long long)s->probed;
		b.answered = (long long)s->answered;
		b.miners = (long long)s->nmacs;
		b.sweep = (long long)dd->c.subnet_sweeps;
		if (chunks > 1) {
			b.chunk = (long long)i + 1;
			b.chunks = (long long)chunks;
		}
		if (disc_publish(dd, HIVE_MSG_SWEEP_DONE, &b) < 0)
			rc = -1;
		else
			dd->c.sweep_chunks++;
	}
	if (rc < 0)
		log_warnx("sweep_done_not_sent subnet=%s miners=%zu chunks=%zu", net->text,
			  s->nmacs, chunks);
	return rc;
}

static void subnet_end(struct discoverd *dd)
{
	struct disc_sweep *s = dd->sweep;
	const struct hive_subnet *net = &s->subnets[s->cur];
	int64_t ms = hive_mono_ms() - s->subnet_mono;

	publish_done(dd, net, ms);
	dd->c.subnet_sweeps_done++;
	log_info("subnet_swept subnet=%s probed=%llu answered=%llu miners=%zu ms=%lld", net->text,
		 (unsigned long long)s->probed, (unsigned long long)s->answered, s->nmacs,
		 (long long)ms);
	s->miners += s->nmacs;
	if (++s->cur < s->nsubnets)
		subnet_begin(dd);
	else
		sweep_end(dd);
}

static void maybe_done(struct discoverd *dd)
{
	struct disc_sweep *s = dd->sweep;

	if (s && !s->asking && s->cursor == s->count && s->in_flight == 0 && dd->nhosts == 0)
		subnet_end(dd);
}

/* Starts probes while there is room and addresses are left. */
static void fill(struct discoverd *dd)
{
	struct disc_sweep *s = dd->sweep;
	int hosts_max = HOSTS_PER_SLOT * dd->d.cfg.network.http_concurrency;

	while (!s->starved && s->nfree > 0 && s->cursor < s->count && dd->nhosts < hosts_max) {
		if (probe_start(dd, s->first + (uint32_t)s->cursor) < 0) {
			s->starved = true;
			hive_log_complain("probe starved",
					  "probe_starved in_flight=%d errno=%d err=\"%s\"",
					  s->in_flight, errno, strerror(errno));
			/* With nothing in flight no probe end will wake us. */
			if (s->in_flight == 0 && s->retry_timer == 0)
				s->retry_timer = hive_loop_timer(dd->loop, STARVED_RETRY_MS,
								 on_starved_retry, dd);
			break;
		}
		s->cursor++;
	}
	maybe_done(dd);
}

static void subnet_begin(struct discoverd *dd)
{
	struct disc_sweep *s = dd->sweep;
	const struct hive_subnet *net = &s->subnets[s->cur];

	s->count = hive_subnet_hosts(net);
	s->first = net->prefix >= 31 ? net->network : net->network + 1;
	s->cursor = 0;
	s->probed = s->answered = 0;
	s->nmacs = 0;
	s->subnet_wall = hive_wall_ms();
	s->subnet_mono = hive_mono_ms();
	dd->c.subnet_sweeps++;
	log_debug("subnet_sweep subnet=%s addresses=%llu", net->text,
		  (unsigned long long)s->count);
	fill(dd);
}

/* ---------------------------------------------------------------- public */

int disc_sweep_start(struct discoverd *dd)
{
	const struct hive_cfg *cfg = &dd->d.cfg;
	struct disc_sweep *s;

	if (dd->sweep)
		return 0;
	if (cfg->network.n_subnets == 0) {
		log_warnx("sweep_skipped reason=\"network.subnets is empty\"");
		return -1;
	}
	if (!(s = calloc(1, sizeof(*s))))
		goto oom;
	s->nsubnets = cfg->network.n_subnets;
	s->nprobes = dd->probe_cap;
	if (!(s->subnets = calloc(s->nsubnets, sizeof(*s->subnets))) ||
	    !(s->probes = calloc((size_t)s->nprobes, sizeof(*s->probes))) ||
	    !(s->free_slots = calloc((size_t)s->nprobes, sizeof(*s->free_slots))))
		goto oom;
	memcpy(s->subnets, cfg->network.subnets, s->nsubnets * sizeof(*s->subnets));
	for (int i = 0; i < s->nprobes; i++) {
		s->probes[i].fd = -1;
		s->free_slots[s->nfree++] = s->nprobes - 1 - i;
	}
	s->started_mono = hive_mono_ms();
	dd->sweep = s;
	dd->sweep_no++;
	log_debug("sweep_start sweep=%llu subnets=%zu probes_max=%d",
		  (unsigned long long)dd->sweep_no, s->nsubnets, s->nprobes);
	/* Miners we know are confirmed by /info alone unless apid says their
	 * key fails: ask first (one request), then probe. */
	if (disc_miners_count(dd->miners) == 0 || disc_control_recheck(dd->control) < 0)
		subnet_begin(dd);
	else
		s->asking = true;
	return 0;
oom:
	if (s)
		sweep_free(s);
	log_warnx("sweep_skipped reason=\"out of memory\"");
	return -1;
}

void disc_sweep_recheck(struct discoverd *dd, const struct hive_msg_recheck_reply *r)
{
	struct disc_sweep *s = dd->sweep;
	struct miner *m;
	size_t marked = 0;

	if (r) {
		for (size_t i = 0; i < r->n_macs; i++) {
			if ((m = disc_miners_get(dd->miners, r->macs[i], false))) {
				m->recheck_sweep = dd->sweep_no;
				marked++;
			}
		}
		if (r->all > 0)
			dd->recheck_all = dd->sweep_no;
		dd->c.rechecks_asked += marked;
		if (marked || r->all > 0)
			log_info("keys_recheck sweep=%llu miners=%zu all=%d",
				 (unsigned long long)dd->sweep_no, marked, r->all > 0);
	}
	if (s && s->asking) {
		s->asking = false;
		subnet_begin(dd);
	}
}

void disc_sweep_saw(struct discoverd *dd, struct miner *m)
{
	struct disc_sweep *s = dd->sweep;

	if (!s || m->seen_sweep == dd->c.subnet_sweeps)
		return;
	if (s->nmacs == s->capmacs) {
		size_t cap = s->capmacs ? s->capmacs * 2 : 256;
		char (*n)[HIVE_MAC_LEN] = realloc(s->macs, cap * sizeof(*n));

		if (!n) {
			log_warnx("sweep_mac_dropped mac=%s reason=\"out of memory\"", m->mac);
			return;
		}
		s->macs = n;
		s->capmacs = cap;
	}
	memcpy(s->macs[s->nmacs++], m->mac, HIVE_MAC_LEN);
	m->seen_sweep = dd->c.subnet_sweeps;
	m->listed_sweep = dd->sweep_no;
}

void disc_sweep_host_done(struct discoverd *dd)
{
	if (dd->sweep && !dd->sweep->asking)
		fill(dd);
}

void disc_sweep_abort(struct discoverd *dd)
{
	struct disc_sweep *s = dd->sweep;

	if (!s)
		return;
	for (int i = 0; i < s->nprobes; i++)
		if (s->probes[i].fd >= 0)
			probe_close(dd, &s->probes[i]);
	if (s->retry_timer > 0)
		hive_loop_cancel(dd->loop, s->retry_timer);
	sweep_free(s);
	dd->sweep = NULL;
}

const char *disc_sweep_subnet(const struct discoverd *dd)
{
	const struct disc_sweep *s = dd->sweep;

	return s && s->cur < s->nsubnets ? s->subnets[s->cur].text : "";
}

int disc_sweep_probes_in_flight(const struct discoverd *dd)
{
	return dd->sweep ? dd->sweep->in_flight : 0;
}
