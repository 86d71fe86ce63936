/* core.h — the hub: struct apid, filled by apid.c's main and read by the
 * parts it wires together. Each part's interface is in the header named
 * after its file (traffic.h, ingest.h, writer.h, sched.h, feed.h, control.h,
 * health.h, http.h); the HTTP handlers see none of this (apid.h). */
#ifndef APID_CORE_H
#define APID_CORE_H

#include <stdint.h>

#include "hive/cfg.h"
#include "hive/daemon.h"

struct hive_bus;
struct hive_loop;
struct apid_writer;
struct apid_ingest;
struct apid_traffic;
struct apid_sched;
struct apid_actions;
struct apid_power;
struct apid_feed;
struct apid_control;
struct apid_health;
struct apid_http;
struct apid_notify;
struct apid_alerts;

struct apid {
	struct hive_daemon d;            /* config, envelope source, boot */
	struct hive_loop *loop;
	struct apid_writer *writer;
	struct apid_traffic *traffic;      /* what arrived from whom */
	struct apid_ingest *ingest;
	struct apid_guard *guard;          /* what an event must pass (guard.h) */
	struct apid_sched *sched;
	struct apid_actions *actions;      /* changes to miners (actions.h) */
	struct apid_power *power;          /* the balancer (power.h) */
	struct apid_feed *feed;
	struct apid_control *control;
	struct apid_health *health;      /* the fleet totals' connection and cache */
	struct apid_http *http;
	struct apid_notify *notify;      /* alert deliveries (notify.h) */
	struct apid_alerts *alerts;      /* the alert rules' engine (alerts.h) */
	struct hive_bus *events;         /* SUBSCRIBE, listens on bus.events */
	struct hive_bus *jobs_status;    /* PUSH, bus.jobs_status */
	struct hive_bus *jobs_telemetry; /* PUSH, bus.jobs_telemetry */
	struct hive_bus *jobs_control;   /* PUSH, bus.jobs_control */
	struct hive_bus *jobs_plant;     /* PUSH, bus.jobs_plant */
	struct hive_bus *control_bus;    /* REPLY, bus.control */
	struct hive_bus *feed_bus;       /* PUBLISH, bus.feed */
	int64_t started_ms;              /* wall clock */
	char db_path[HIVE_CFG_PATH_MAX]; /* fixed at start: a reload cannot move it */
};

#endif
