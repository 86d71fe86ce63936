/* discoverd — sweeps the configured subnets for miners, provisions their
 * API keys, publishes what it saw. See discoverd.h for the files and
 * docs/discoverd.md for the story.
 *
 * Periodic work on the loop:
 *   on_sweep_timer   a sweep every intervals.discovery_seconds (counted
 *                    from the start of the previous one; never two at once)
 *   on_beat          hive.daemon.heartbeat every intervals.heartbeat_seconds
 */
#include "discoverd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "hive/bus.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/msg.h"
#include "hive/worker.h"

/* Before the first sweep, wait this long at most for the events socket to
 * reach apid: what is published before then is lost. */
#define FIRST_SWEEP_WAIT_MS 3000
#define FIRST_SWEEP_POLL_MS 100
#define FD_RESERVE          64

static int64_t on_sweep_timer(struct hive_loop *loop, void *arg);

/* ---------------------------------------------------------------- publishing */

int disc_publish(struct discoverd *dd, enum hive_msg_kind kind, const void *body)
{
	json_t *b = hive_msg_encode(kind, body);
	int rc = -1;

	if (b && hive_bus_send(dd->events, hive_msg_topic(kind)->topic, b, false) == HIVE_BUS_OK)
		rc = 0;
	else
		dd->c.publish_failed++;
	json_decref(b);
	return rc;
}

void disc_miner_error(struct discoverd *dd, const struct miner *m, const char *ip,
		      const char *op, const struct hive_fw_err *err)
{
	struct hive_msg_miner_error e;
	char key[64], q[600];

	hive_worker_error_fill(&e, m ? m->mac : "", ip, op, err, 0);
	disc_publish(dd, HIVE_MSG_MINER_ERROR, &e);
	snprintf(key, sizeof(key), "%s %s", m ? m->mac : ip, op);
	hive_log_complain(key, "miner_error mac=%s ip=%s op=%s kind=%s http_status=%d message=%s",
			  m ? m->mac : "-", ip, op, hive_fw_err_name(err->kind), err->http_status,
			  hive_log_quote(err->msg, q, sizeof(q)));
}

/* ---------------------------------------------------------------- timers */

void disc_sweep_finished(struct discoverd *dd, int64_t started_mono)
{
	int64_t next = started_mono + (int64_t)dd->d.cfg.intervals.discovery_seconds * 1000;
	int64_t delay = next - hive_mono_ms();

	if (delay < 0)
		delay = 0;
	if (dd->sweep_timer > 0)
		hive_loop_cancel(dd->loop, dd->sweep_timer);
	dd->sweep_timer = hive_loop_timer(dd->loop, delay, on_sweep_timer, dd);
}

static int64_t on_sweep_timer(struct hive_loop *loop, void *arg)
{
	struct discoverd *dd = arg;
	int64_t again = (int64_t)dd->d.cfg.intervals.discovery_seconds * 1000;

	(void)loop;
	/* A sweep that ends re-arms this timer; one that does not start tries
	 * again an interval later. */
	dd->sweep_timer = 0;
	if (disc_sweep_start(dd) == 0)
		return -1;
	dd->sweep_timer = hive_loop_timer(dd->loop, again, on_sweep_timer, dd);
	return -1;
}

/* The first sweep waits (a little) for the events socket to connect. */
static int64_t on_first_sweep(struct hive_loop *loop, void *arg)
{
	struct discoverd *dd = arg;
	static int64_t waited;

	if (hive_bus_peers(dd->events) == 0 && waited < FIRST_SWEEP_WAIT_MS) {
		waited += FIRST_SWEEP_POLL_MS;
		return FIRST_SWEEP_POLL_MS;
	}
	if (waited >= FIRST_SWEEP_WAIT_MS)
		log_warnx("events_not_connected url=%s reason=\"sweeping anyway\"",
			  dd->d.cfg.bus.discovery_events);
	on_sweep_timer(loop, arg);
	return -1;
}

static json_t *counters(struct discoverd *dd)
{
	const struct disc_counters *c = &dd->c;
	json_t *o = json_object();

#define PUT(name, v) json_object_set_new(o, name, json_integer((json_int_t)(v)))
	if (!o)
		return NULL;
	PUT("sweeps", c->sweeps);
	PUT("subnet_sweeps", c->subnet_sweeps_done);
	PUT("probed", c->probed);
	PUT("answered", c->answered);
	PUT("miners", c->miners);
	PUT("known", disc_miners_count(dd->miners));
	PUT("identified", c->identified);
	PUT("unchanged", c->unchanged);
	PUT("rechecks_asked", c->rechecks_asked);
	PUT("sweep_chunks", c->sweep_chunks);
	PUT("not_miners", c->not_miners);
	PUT("info_errors", c->info_errors);
	PUT("keys_verified", c->keys_verified);
	PUT("keys_created", c->keys_created);
	PUT("keys_reused", c->keys_reused);
	PUT("keys_published", c->keys_published);
	PUT("unlock_attempts", c->unlock_attempts);
	PUT("unlock_failures", c->unlock_failures);
	PUT("unlock_deferred", c->unlock_deferred);
	PUT("provision_errors", c->provision_errors);
	PUT("apid_unavailable", c->apid_unavailable);
	PUT("catalogues", c->catalogues);
	PUT("catalogue_errors", c->catalogue_errors);
	PUT("probe_errors", c->probe_errors);
	PUT("publish_failed", c->publish_failed);
	PUT("last_sweep_ms", c->last_sweep_ms);
#undef PUT
	return o;
}

static int64_t on_beat(struct hive_loop *loop, void *arg)
{
	struct discoverd *dd = arg;
	struct disc_counters *c = &dd->c;
	struct hive_msg_heartbeat hb;
	json_t *counts;
	int in_flight;

	(void)loop;
	if (c->info_latency_n) {
		c->info_latency_ms = c->info_latency_sum / (double)c->info_latency_n;
		c->info_latency_sum = 0;
		c->info_latency_n = 0;
	}
	in_flight = disc_sweep_probes_in_flight(dd) + hive_fw_client_pending(dd->fw);
	if ((counts = counters(dd))) {
		hive_worker_heartbeat_fill(&hb, &dd->d, counts, in_flight, c->info_latency_ms);
		disc_publish(dd, HIVE_MSG_HEARTBEAT, &hb);
		json_decref(counts);
	} else {
		c->publish_failed++;
	}
	{
		/* The container's health check reads it (hive/daemon.h). */
		struct hive_daemon_link l = { "discovery_events", hive_bus_peers(dd->events) };

		hive_daemon_write_state(&dd->d, &l, 1);
	}
	return (int64_t)dd->d.cfg.intervals.heartbeat_seconds * 1000;
}

/* ---------------------------------------------------------------- setup */

/* Probes in flight at most: network.probe_concurrency, within what the
 * descriptor limit leaves after the HTTP connections. */
static int probe_budget(const struct hive_cfg *cfg)
{
	struct rlimit rl;
	long room;
	int cap = cfg->network.probe_concurrency;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		room = (long)rl.rlim_cur - cfg->network.http_concurrency - FD_RESERVE;
		if (room < 1)
			room = 1;
		if (cap > room) {
			log_warnx("probe_concurrency_limited wanted=%d allowed=%ld nofile=%llu", cap,
				  room, (unsigned long long)rl.rlim_cur);
			cap = (int)room;
		}
	}
	return cap > 0 ? cap : 1;
}

/* Thousands of probes need thousands of descriptors: take the hard limit. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("setrlimit_nofile_failed");
	}
}

static void reload(struct discoverd *dd)
{
	char events[HIVE_CFG_URL_MAX], control[HIVE_CFG_URL_MAX];

	snprintf(events, sizeof(events), "%s", dd->d.cfg.bus.discovery_events);
	snprintf(control, sizeof(control), "%s", dd->d.cfg.bus.discovery_control);
	if (!hive_daemon_reload(&dd->d))
		return;
	dd->probe_cap = probe_budget(&dd->d.cfg);
	if (strcmp(events, dd->d.cfg.bus.discovery_events) ||
	    strcmp(control, dd->d.cfg.bus.discovery_control))
		log_warnx("reload_partial reason=\"bus addresses are fixed at start; restart to apply\"");
	log_info("reload_applied subnets=%zu probes_max=%d next=\"at the next sweep\"",
		 dd->d.cfg.network.n_subnets, dd->probe_cap);
}

int main(int argc, char **argv)
{
	static const struct hive_daemon_spec spec = {
		.name = "discoverd",
		.summary = "PowerHive discovery: finds miners, provisions API keys, reads catalogues",
	};
	static struct discoverd dd;
	struct hive_bus_opts bo = { 0 };
	struct hive_fw_opts fo = { 0 };
	char err[512];
	int rc = 1;

	hive_daemon_start(&dd.d, &spec, argc, argv);
	raise_nofile();
	dd.probe_cap = probe_budget(&dd.d.cfg);
	if (!(dd.loop = hive_loop_new()) || !(dd.miners = disc_miners_new()) ||
	    !(dd.catalogue = disc_catalogue_new())) {
		log_errx("fatal reason=\"out of memory\"");
		goto out;
	}
	fo.max_in_flight = dd.d.cfg.network.http_concurrency;
	fo.timeout_ms = dd.d.cfg.network.http_timeout_ms;
	if (!(dd.fw = hive_fw_client_new(dd.loop, &fo))) {
		log_warn("fatal reason=\"cannot create the firmware client\"");
		goto out;
	}
	bo.sendbuf = dd.d.cfg.bus.sendbuf;
	bo.max_message_bytes = dd.d.cfg.bus.max_message_bytes;
	bo.send_timeout_ms = 1000;
	bo.recv_timeout_ms = 0;
	bo.source = dd.d.source;
	bo.boot = dd.d.boot;
	bo.tls_ca_file = dd.d.cfg.bus.tls.ca_file;
	bo.tls_cert_file = dd.d.cfg.bus.tls.cert_file;
	bo.tls_key_file = dd.d.cfg.bus.tls.key_file;
	/* discoverd's own endpoints: apid believes sweeps and keys only there. */
	if (!(dd.events = hive_bus_open(HIVE_BUS_PUBLISH, dd.d.cfg.bus.discovery_events, &bo,
					err, sizeof(err)))) {
		log_errx("fatal reason=\"%s\"", err);
		goto out;
	}
	if (!(dd.control = disc_control_start(&dd, err, sizeof(err)))) {
		log_errx("fatal reason=\"%s\"", err);
		goto out;
	}
	if (hive_loop_timer(dd.loop, 0, on_first_sweep, &dd) < 0 ||
	    (dd.beat_timer = hive_loop_timer(dd.loop, 1000, on_beat, &dd)) < 0) {
		log_errx("fatal reason=\"cannot arm the timers\"");
		goto out;
	}
	log_info("discoverd_ready subnets=%zu port=%d probes_max=%d http_max=%d every_s=%d",
		 dd.d.cfg.network.n_subnets, dd.d.cfg.network.port, dd.probe_cap,
		 dd.d.cfg.network.http_concurrency, dd.d.cfg.intervals.discovery_seconds);

	while (!hive_quit) {
		if (hive_loop_run_once(dd.loop, 250) < 0) {
			log_warn("loop_failed");
			break;
		}
		if (hive_reload)
			reload(&dd);
	}
	rc = 0;
	if (hive_quit) {
		/* Stopping on purpose: apid shows discoverd stopped, not missing. */
		struct hive_msg_goodbye g;
		struct timespec pause = { 0, 100 * 1000 * 1000 };

		hive_daemon_remove_state(&dd.d);
		hive_worker_goodbye_fill(&g, &dd.d);
		if (disc_publish(&dd, HIVE_MSG_GOODBYE, &g) == 0 && hive_bus_peers(dd.events) > 0)
			nanosleep(&pause, NULL);   /* before the socket closes (worker.c) */
	}
out:
	/* Order: nothing may call back into what is already gone. */
	disc_sweep_abort(&dd);
	disc_control_stop(dd.control);
	hive_fw_client_free(dd.fw);
	disc_hosts_free(&dd);
	hive_bus_close(dd.events);
	disc_catalogue_free(dd.catalogue);
	disc_miners_free(dd.miners);
	hive_loop_free(dd.loop);
	hive_daemon_finish(&dd.d);
	return rc;
}
