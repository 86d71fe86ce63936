/* feed — re-publishes on bus.feed (PUBLISH) what the writer committed:
 * miner rows, statuses and models. Its own thread and a bounded queue; the
 * writer never waits for it (a full queue drops the update and counts it). */
#ifndef APID_FEED_H
#define APID_FEED_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct hive_bus;
struct apid_feed;

/* Starts the feed thread publishing on pub; it reads miner and model rows
 * through its own read-only connection to db_path. NULL with err;
 * apid_feed_stop frees (pub stays the caller's). */
struct apid_feed *apid_feed_start(const char *db_path, struct hive_bus *pub, char *err,
				  size_t errlen);
void apid_feed_stop(struct apid_feed *f);
/* Called by the writer after a commit; never block (a full feed queue
 * drops and counts). apid_feed_status steals body. */
void apid_feed_status(struct apid_feed *f, const char *mac, long long id, long long ts_ms,
		      json_t *body);
void apid_feed_miner(struct apid_feed *f, const char *mac);
void apid_feed_model(struct apid_feed *f, const char *alias);
void apid_feed_stats(struct apid_feed *f, uint64_t *published, uint64_t *dropped);

#endif
