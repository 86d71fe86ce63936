/* apidfake — see apidfake.h. */
#include "apidfake.h"

#include <stdio.h>
#include <string.h>

#include "hive/msg.h"

struct hive_bus *tl_apid_listen(const struct ts_suite *s, const char *key,
				const struct hive_bus_opts *o)
{
	bool events = strcmp(key, "events") == 0;
	struct hive_bus_opts lo = *o;
	struct hive_bus *bus;
	char err[256] = "";

	lo.listen = true;
	bus = hive_bus_open(events ? HIVE_BUS_SUBSCRIBE : HIVE_BUS_PUSH, ts_bus(s, key), &lo,
			    err, sizeof(err));
	if (bus && events && hive_bus_subscribe(bus, "") < 0) {
		snprintf(err, sizeof(err), "cannot subscribe to every topic");
		hive_bus_close(bus);
		bus = NULL;
	}
	if (!bus)
		fprintf(stderr, "hub: bus.%s %s: %s\n", key, ts_bus(s, key), err);
	return bus;
}

int tl_apid_drain(struct hive_bus *sub, tl_apid_on_event *fn, void *arg, char *err,
		  size_t errlen)
{
	union { char buf[65536]; long long align; } u;
	struct hive_envelope env;
	char why[256];
	int n = 0;

	for (;;) {
		int kind;

		memset(&env, 0, sizeof(env));
		if (hive_bus_recv(sub, &env, 0) != HIVE_BUS_OK)
			return n;
		kind = hive_msg_kind_of(env.topic, HIVE_CH_EVENTS);
		if (kind < 0) {
			snprintf(err, errlen, "unknown topic %s from %s", env.topic, env.src);
			hive_envelope_clear(&env);
			return -1;
		}
		if (hive_msg_decode(kind, env.body, u.buf, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s from %s: apid would refuse it: %s", env.topic,
				 env.src, why);
			hive_envelope_clear(&env);
			return -1;
		}
		n++;
		if (fn)
			fn(kind, u.buf, &env, arg);
		hive_msg_free(kind, u.buf);
		hive_envelope_clear(&env);
	}
}
