/* apid — PowerHive's hub: the only process that opens the database.
 *
 * Threads: main (this loop: scheduler, heartbeat, watch, reload), the
 * writer (writer.c), the receive thread (ingest.c), control (control.c),
 * feed (feed.c), and civetweb's workers (http.c). docs/apid.md has the
 * picture. */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actions.h"
#include "alerts.h"
#include "power.h"
#include "control.h"
#include "core.h"
#include "feed.h"
#include "health.h"
#include "hive/bus.h"
#include "hive/clock.h"
#include "hive/daemon.h"
#include "hive/log.h"
#include "hive/loop.h"
#include "hive/msg.h"
#include "http.h"
#include "ingest.h"
#include "guard.h"
#include "notify.h"
#include "traffic.h"
#include "sched.h"
#include "secrets.h"
#include "store.h"
#include "writer.h"

#define SCHED_TICK_MAX_MS   250   /* roster changes are picked up this fast */
#define ROSTER_MIN_GAP_MS   1000  /* at most one roster reload per second */
#define WATCH_MS            5000

/* What the main loop's timers share. */
struct main_state {
	struct apid *a;
	sqlite3 *ro;                 /* roster reads */
	uint64_t roster_gen;
	int64_t roster_loaded_ms;
	uint64_t lost_seen;
	struct hive_cfg fixed;       /* the settings a reload cannot change */
};

static struct apid_writer_opts writer_opts(struct apid *a)
{
	const struct hive_cfg *c = &a->d.cfg;
	struct apid_writer_opts o = {
		.db_path = a->db_path,
		.batch_max = c->database.batch_max,
		.batch_ms = c->database.batch_ms,
		.queue_max = (size_t)(c->bus.recvbuf > 2048 ? c->bus.recvbuf * 2 : 16384),
		.status_raw_hours = c->retention.status_raw_hours,
		.telemetry_raw_hours = c->retention.telemetry_raw_hours,
		.minute_days = c->retention.minute_days,
		.status_days = c->retention.status_days,
		.telemetry_days = c->retention.telemetry_days,
		.audit_days = c->retention.audit_days,
		.power_days = c->retention.power_days,
		.max_bytes = c->retention.max_bytes,
		.prune_batch = c->retention.prune_batch,
		.prune_every_ms = 10000,
		.prune_first_ms = 1000,
		.traffic = a->traffic,
		.sched = a->sched,
		.feed = a->feed,
		.guard = a->guard,
		.secrets_key_file = c->database.secrets_key_file,
	};

	return o;
}

static struct apid_sched_opts sched_opts(const struct hive_cfg *c)
{
	struct apid_sched_opts o = {
		.interval_ms = { (int64_t)c->intervals.status_seconds * 1000,
				 (int64_t)c->intervals.telemetry_seconds * 1000 },
		.job_timeout_ms = (int64_t)c->scheduler.job_timeout_seconds * 1000,
		.managed_only = c->scheduler.managed_only,
		.port = c->network.port,
	};

	return o;
}

static struct apid_actions_opts actions_opts(const struct hive_cfg *c)
{
	struct apid_actions_opts o = {
		.action_timeout_ms = (int64_t)c->control.action_timeout_seconds * 1000,
		.job_timeout_ms = (int64_t)c->control.job_timeout_seconds * 1000,
		.max_corrections_per_hour = c->control.max_corrections_per_hour,
	};

	return o;
}

static struct hive_bus *listen_on(struct apid *a, enum hive_bus_role role, const char *what,
				  const char *url)
{
	const struct hive_cfg *c = &a->d.cfg;
	struct hive_bus_opts o = {
		.listen = true,
		.sendbuf = c->bus.sendbuf,
		.recvbuf = c->bus.recvbuf,
		.max_message_bytes = c->bus.max_message_bytes,
		.send_timeout_ms = 1000,
		.recv_timeout_ms = -1,
		.source = a->d.source,
		.boot = a->d.boot,
		.tls_ca_file = c->bus.tls.ca_file,
		.tls_cert_file = c->bus.tls.cert_file,
		.tls_key_file = c->bus.tls.key_file,
	};
	char err[512];
	struct hive_bus *b = hive_bus_open(role, url, &o, err, sizeof(err));

	if (!b)
		log_errx("cannot listen bus=%s url=%s err=\"%s\"", what, url, err);
	return b;
}

/* discoverd's endpoint on a socket listen_on opened (docs/bus.md, Roles):
 * its own URL and, with TLS, its own CA, so that only discoverd's
 * certificate connects there. 0 / -1. */
static int listen_discovery(struct apid *a, struct hive_bus *b, const char *what,
			    const char *url)
{
	const struct hive_cfg *c = &a->d.cfg;
	struct hive_bus_opts o = {
		.listen = true,
		.tls_ca_file = c->bus.tls.discovery_ca_file[0] ? c->bus.tls.discovery_ca_file
							       : c->bus.tls.ca_file,
		.tls_cert_file = c->bus.tls.cert_file,
		.tls_key_file = c->bus.tls.key_file,
	};
	char err[512];

	if (!b)
		return -1;
	if (hive_bus_listen_also(b, url, &o, err, sizeof(err)) != APID_ENDPOINT_DISCOVERY) {
		log_errx("cannot listen bus=%s url=%s err=\"%s\"", what, url, err);
		return -1;
	}
	if (strncmp(url, "tls+tcp://", 10) == 0 && !c->bus.tls.discovery_ca_file[0])
		log_warnx("bus.tls.discovery_ca_file is not set: %s trusts bus.tls.ca_file, so any"
			  " farm certificate may act as discoverd (hive-certs ca discovery)", what);
	return 0;
}

static int open_bus(struct apid *a)
{
	const struct hive_cfg *c = &a->d.cfg;

	a->events = listen_on(a, HIVE_BUS_SUBSCRIBE, "events", c->bus.events);
	if (listen_discovery(a, a->events, "discovery_events", c->bus.discovery_events) < 0)
		return -1;
	a->jobs_status = listen_on(a, HIVE_BUS_PUSH, "jobs_status", c->bus.jobs_status);
	a->jobs_telemetry = listen_on(a, HIVE_BUS_PUSH, "jobs_telemetry", c->bus.jobs_telemetry);
	a->jobs_control = listen_on(a, HIVE_BUS_PUSH, "jobs_control", c->bus.jobs_control);
	a->jobs_plant = listen_on(a, HIVE_BUS_PUSH, "jobs_plant", c->bus.jobs_plant);
	a->control_bus = listen_on(a, HIVE_BUS_REPLY, "control", c->bus.control);
	if (listen_discovery(a, a->control_bus, "discovery_control", c->bus.discovery_control) < 0)
		return -1;
	a->feed_bus = listen_on(a, HIVE_BUS_PUBLISH, "feed", c->bus.feed);
	return a->events && a->jobs_status && a->jobs_telemetry && a->jobs_control &&
	       a->jobs_plant && a->control_bus && a->feed_bus ? 0 : -1;
}

static void close_bus(struct apid *a)
{
	struct hive_bus *all[] = { a->events, a->jobs_status, a->jobs_telemetry, a->jobs_control,
				   a->jobs_plant, a->control_bus, a->feed_bus };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i])
			hive_bus_close(all[i]);
}

/* The scheduler's timer: reloads the roster when the writer says it
 * changed, then sends what is due. */
static int64_t sched_timer(struct hive_loop *loop, void *arg)
{
	struct main_state *m = arg;
	struct apid *a = m->a;
	int64_t now = hive_mono_ms(), next;
	uint64_t gen = apid_writer_roster_gen(a->writer);
	char err[512];

	(void)loop;
	if (gen != m->roster_gen && now - m->roster_loaded_ms >= ROSTER_MIN_GAP_MS) {
		if (apid_sched_load_roster(a->sched, m->ro, now, err, sizeof(err)) == 0) {
			m->roster_gen = gen;
			hive_log_recovered("roster", "roster loaded again");
		} else {
			hive_log_complain("roster", "roster load failed err=\"%s\"", err);
		}
		m->roster_loaded_ms = now;
	}
	next = apid_sched_tick(a->sched, now);
	return next < SCHED_TICK_MAX_MS ? next : SCHED_TICK_MAX_MS;
}

/* Actions: send what may go, time out what waited too long. */
static int64_t actions_timer(struct hive_loop *loop, void *arg)
{
	struct main_state *m = arg;

	(void)loop;
	return apid_actions_tick(m->a->actions, hive_mono_ms());
}

/* Power: asks for plant readings, balances when none came. */
static int64_t power_timer(struct hive_loop *loop, void *arg)
{
	struct main_state *m = arg;

	(void)loop;
	return apid_power_tick(m->a->power, hive_mono_ms());
}

/* apid's own heartbeat, on the feed, like every daemon's on the events bus. */
static int64_t heartbeat_timer(struct hive_loop *loop, void *arg)
{
	struct main_state *m = arg;
	struct apid *a = m->a;
	struct apid_writer_stats ws;
	struct apid_sched_stats ss;
	struct apid_actions_stats as;
	struct hive_msg_heartbeat hb;
	json_t *body;

	(void)loop;
	apid_writer_get_stats(a->writer, &ws);
	apid_sched_get_stats(a->sched, &ss);
	apid_actions_get_stats(a->actions, &as);
	hive_msg_init(HIVE_MSG_HEARTBEAT, &hb);
	hb.daemon = "apid";
	hb.host = a->d.host;
	hb.pid = getpid();
	hb.started = a->started_ms;
	hb.in_flight = (long long)(ss.kind[0].outstanding + ss.kind[1].outstanding);
	hb.counters = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
				"events_stored", (json_int_t)ws.stored,
				"events_rejected", (json_int_t)ws.rejected,
				"batches", (json_int_t)ws.batches, "queue_depth", (json_int_t)ws.depth,
				"jobs_sent", (json_int_t)(ss.kind[0].sent + ss.kind[1].sent),
				"miners", (json_int_t)ss.miners,
				"actions_open", (json_int_t)as.open,
				"actions_created", (json_int_t)as.created);
	body = hive_msg_encode(HIVE_MSG_HEARTBEAT, &hb);
	if (body)
		hive_bus_send(a->feed_bus, HIVE_TOPIC_HEARTBEAT, body, true);
	json_decref(body);
	json_decref(hb.counters);
	return (int64_t)a->d.cfg.intervals.heartbeat_seconds * 1000;
}

/* Says when events go missing, when the writer falls behind, and when a
 * daemon stops beating. */
static int64_t watch_timer(struct hive_loop *loop, void *arg)
{
	struct main_state *m = arg;
	struct apid *a = m->a;
	json_t *h = apid_health(a), *ev, *d;
	int64_t stale_ms = (int64_t)a->d.cfg.intervals.heartbeat_seconds * 3000;
	uint64_t lost;
	size_t i;

	(void)loop;
	if (!h)
		return WATCH_MS;
	ev = json_object_get(h, "events");
	lost = (uint64_t)json_integer_value(json_object_get(ev, "lost"));
	if (lost > m->lost_seen)
		log_warnx("events lost new=%llu total=%llu",
			  (unsigned long long)(lost - m->lost_seen), (unsigned long long)lost);
	m->lost_seen = lost;
	json_array_foreach(json_object_get(h, "daemons"), i, d) {
		const char *src = json_string_value(json_object_get(d, "src"));
		json_int_t age = json_integer_value(json_object_get(d, "heartbeat_age_ms"));
		char key[256];

		snprintf(key, sizeof(key), "heartbeat %s", src ? src : "?");
		if (json_is_integer(json_object_get(d, "stopped_ms")))
			continue;   /* it said goodbye (logged then) */
		if (age > stale_ms)
			hive_log_complain(key, "daemon silent src=%s age_ms=%lld", src ? src : "?",
					  (long long)age);
		else
			hive_log_recovered(key, "daemon beating again src=%s", src ? src : "?");
	}
	log_debug("stats received=%lld stored=%lld rejected=%lld lost=%llu depth=%lld",
		  (long long)json_integer_value(json_object_get(ev, "received")),
		  (long long)json_integer_value(json_object_get(ev, "stored")),
		  (long long)json_integer_value(json_object_get(ev, "rejected")),
		  (unsigned long long)lost,
		  (long long)json_integer_value(json_object_get(
			  json_object_get(json_object_get(h, "queues"), "writer"), "depth")));
	json_decref(h);
	return WATCH_MS;
}

/* SIGHUP: intervals, batching, retention and the log level change live;
 * the database, the bus and the HTTP address need a restart. */
static void reload(struct main_state *m)
{
	struct apid *a = m->a;
	struct apid_writer_opts wo;
	struct apid_sched_opts so;
	struct apid_actions_opts ao;
	const struct hive_cfg *c;

	if (hive_daemon_reload(&a->d) != 1)
		return;
	c = &a->d.cfg;
	if (strcmp(c->database.path, m->fixed.database.path) != 0 ||
	    memcmp(&c->bus, &m->fixed.bus, sizeof(c->bus)) != 0 ||
	    strcmp(c->http.addr, m->fixed.http.addr) != 0)
		log_warnx("reload: database.path, bus.* and http.addr take effect after a restart");
	wo = writer_opts(a);
	apid_writer_configure(a->writer, &wo);
	so = sched_opts(c);
	apid_sched_configure(a->sched, &so);
	ao = actions_opts(c);
	apid_actions_configure(a->actions, &ao);
	apid_power_configure(a->power, c);
	apid_guard_configure(a->guard, c);
	apid_notify_configure(a->notify, c);
	apid_alerts_configure(a->alerts, c);
}

/* apid --rotate-secrets-key: with apid stopped, every miner secret sealed
 * again under a new key file (secrets.h). 0 / 1. */
static int rotate_secrets_key(struct hive_daemon *d)
{
	char key_path[HIVE_CFG_PATH_MAX + 64], err[1024];
	int rc;

	apid_secrets_key_path(d->cfg.database.secrets_key_file, d->cfg.database.path, key_path,
			      sizeof(key_path));
	rc = apid_secrets_rotate(d->cfg.database.path, key_path, err, sizeof(err));
	if (rc < 0)
		log_errx("secrets key rotation failed err=\"%s\"", err);
	else
		log_info("secrets key rotated key_file=%s", key_path);
	hive_daemon_finish(d);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct hive_daemon_spec spec = {
		.name = "apid",
		.summary = "PowerHive hub: database, scheduler, HTTP API and dashboard",
		.http_option = true,
		.options = "      --rotate-secrets-key  with apid stopped: seal every miner secret with\n"
			   "                        a new key file (docs/operations.md)\n",
	};
	static struct apid a;
	struct main_state m = { .a = &a };
	struct apid_writer_opts wo;
	struct apid_sched_opts so;
	char err[512];
	int status = 1;
	bool rotate = false;

	/* apid's one option of its own: taken out before the common ones. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--rotate-secrets-key") == 0) {
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
			argc--;
			rotate = true;
			break;
		}
	hive_daemon_start(&a.d, &spec, argc, argv);
	if (rotate)
		return rotate_secrets_key(&a.d);
	a.started_ms = hive_wall_ms();
	snprintf(a.db_path, sizeof(a.db_path), "%s", a.d.cfg.database.path);
	m.fixed = a.d.cfg;            /* shallow: only its strings are compared */
	m.fixed.network.subnets = NULL;

	if (!(a.traffic = apid_traffic_new()) || !(a.ingest = apid_ingest_new(a.traffic)) ||
	    !(a.guard = apid_guard_new(&a.d.cfg)) ||
	    !(a.loop = hive_loop_new())) {
		log_errx("out of memory");
		goto out;
	}
	wo = writer_opts(&a);
	if (!(a.writer = apid_writer_start(&wo, err, sizeof(err)))) {
		log_errx("cannot open database err=\"%s\"", err);
		goto out;
	}
	if (!(m.ro = apid_store_open_readonly(a.db_path, err, sizeof(err)))) {
		log_errx("cannot read database err=\"%s\"", err);
		goto out;
	}
	if (open_bus(&a) < 0)
		goto out;
	so = sched_opts(&a.d.cfg);
	if (!(a.sched = apid_sched_new(&so, a.jobs_status, a.jobs_telemetry)) ||
	    !(a.feed = apid_feed_start(a.db_path, a.feed_bus, err, sizeof(err)))) {
		log_errx("cannot start err=\"%s\"", a.sched ? err : "out of memory");
		goto out;
	}
	apid_writer_attach(a.writer, a.sched, a.feed);
	apid_sched_set_guard(a.sched, a.guard);     /* every job gets a nonce */
	apid_sched_set_secrets(a.sched, apid_writer_secrets(a.writer));
	apid_ingest_set_guard(a.ingest, a.guard);   /* every event is checked */
	/* Actions: the open ones from the last run, then the writer's hooks
	 * (results, failures, statuses) and the control job queue. */
	{
		struct apid_actions_opts ao = actions_opts(&a.d.cfg);
		struct apid_writer_hooks hooks;

		if (!(a.actions = apid_actions_new(&ao, a.sched, a.writer)) ||
		    apid_actions_load(a.actions, m.ro, err, sizeof(err)) < 0) {
			log_errx("cannot start actions err=\"%s\"", a.actions ? err : "out of memory");
			goto out;
		}
		apid_actions_hooks(a.actions, &hooks);
		/* The balancer sees every event first-hand too (readings), and
		 * passes each on to the actions. */
		if (!(a.power = apid_power_new(&a.d.cfg, a.actions, a.writer, a.jobs_plant)) ||
		    apid_power_load(a.power, m.ro, err, sizeof(err)) < 0) {
			log_errx("cannot start power err=\"%s\"", a.power ? err : "out of memory");
			goto out;
		}
		apid_power_set_guard(a.power, a.guard);
		apid_power_hooks(a.power, &hooks, &hooks);
		apid_writer_set_hooks(a.writer, &hooks);
		apid_sched_set_control_bus(a.sched, a.jobs_control);
	}
	/* Before its first askers: control, HTTP and the watch. */
	if (!(a.health = apid_health_new(a.db_path))) {
		log_errx("out of memory");
		goto out;
	}
	/* Deliveries: on a thread of their own, through the writer. Both
	 * before control and HTTP, whose health answers read them. */
	if (!(a.notify = apid_notify_start(&a, err, sizeof(err)))) {
		log_errx("cannot start notify err=\"%s\"", err);
		goto out;
	}
	/* The rules: the firing alerts back from the last run, then a round
	 * every alerts.evaluate_seconds (it kicks the deliveries). */
	if (!(a.alerts = apid_alerts_start(&a, a.notify, err, sizeof(err)))) {
		log_errx("cannot start alerts err=\"%s\"", err);
		goto out;
	}
	if (apid_ingest_start(a.ingest, a.events, a.writer, err, sizeof(err)) < 0 ||
	    !(a.control = apid_control_start(&a, a.control_bus, err, sizeof(err)))) {
		log_errx("cannot start err=\"%s\"", err);
		goto out;
	}
	if (!(a.http = apid_http_start(&a, err, sizeof(err)))) {
		log_errx("cannot start http addr=%s err=\"%s\"", a.d.cfg.http.addr, err);
		goto out;
	}
	hive_loop_timer(a.loop, 0, sched_timer, &m);
	hive_loop_timer(a.loop, 0, actions_timer, &m);
	hive_loop_timer(a.loop, 0, power_timer, &m);
	hive_loop_timer(a.loop, 0, heartbeat_timer, &m);
	hive_loop_timer(a.loop, WATCH_MS, watch_timer, &m);
	log_info("started db=%s events=%s http=%s", a.db_path, a.d.cfg.bus.events,
		 a.d.cfg.http.addr);

	while (!hive_quit) {
		if (hive_loop_run_once(a.loop, 250) < 0) {
			log_warn("loop failed");
			break;
		}
		if (hive_reload)
			reload(&m);
	}
	status = 0;
out:
	if (a.http)
		apid_http_stop(a.http);   /* no more PATCHes */
	apid_ingest_stop(a.ingest);       /* no more events */
	apid_control_stop(a.control);
	apid_alerts_stop(a.alerts);       /* no more alerts nor notifications */
	apid_notify_stop(a.notify);       /* its last states go through the writer */
	apid_writer_stop(a.writer);       /* commits what was queued; lets go of actions */
	apid_feed_stop(a.feed);
	apid_power_free(a.power);
	apid_actions_free(a.actions);
	apid_sched_free(a.sched);
	apid_health_free(a.health);       /* nobody asks for health any more */
	sqlite3_close(m.ro);
	close_bus(&a);
	apid_ingest_free(a.ingest);
	apid_guard_free(a.guard);         /* after every sender and the receive thread */
	apid_traffic_free(a.traffic);
	if (a.loop)
		hive_loop_free(a.loop);
	hive_daemon_finish(&a.d);
	return status;
}
