/* event — the decoding of every event body that arrives on bus.events
 * into a struct apid_event (libhive's message tables do the reading), the
 * packing of telemetry chips into apid's storage format, and the names of
 * the reasons an event is refused. */
#include "event.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chips.h"

static const char *const reject_names[APID_REJ_COUNT] = {
	[APID_REJ_UNKNOWN_TOPIC] = "unknown topic",
	[APID_REJ_BAD_BODY] = "bad body",
	[APID_REJ_UNKNOWN_MINER] = "unknown miner",
	[APID_REJ_DATABASE] = "database error",
	[APID_REJ_OUTSIDE_SUBNETS] = "outside subnets",
	[APID_REJ_NO_NONCE] = "no nonce",
	[APID_REJ_NOT_ISSUED] = "job not issued",
	[APID_REJ_FUTURE] = "future timestamp",
	[APID_REJ_SWEEP_UNCONFIRMED] = "sweep unconfirmed",
	[APID_REJ_WRONG_ROLE] = "wrong role",
	[APID_REJ_NO_JOB] = "no job held",
};

const char *apid_reject_name(enum apid_reject r)
{
	return r < APID_REJ_COUNT ? reject_names[r] : "?";
}

static double col(const double *v, size_t n, size_t i)
{
	return v && i < n && !isnan(v[i]) ? v[i] : 0.0;
}

/* The table already checked that every column has one value per chip. */
static int pack_chain(const struct hive_msg_chips *c, struct apid_packed_chips *out)
{
	size_t n = c->n_hr;
	struct apid_chip *tmp = calloc(n ? n : 1, sizeof(*tmp));

	out->blob = malloc(APID_CHIPS_PACKED_MAX(n));
	if (!tmp || !out->blob) {
		free(tmp);
		free(out->blob);
		out->blob = NULL;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		double e = col(c->errs, c->n_errs, i);

		tmp[i].hr_ghs = (float)col(c->hr, n, i);
		tmp[i].freq = (int)lround(fmin(fmax(col(c->freq, c->n_freq, i), -1), 1e6));
		tmp[i].volt = (int)lround(fmin(fmax(col(c->volt, c->n_volt, i), -1), 1e6));
		tmp[i].temp = (float)col(c->temp, c->n_temp, i);
		tmp[i].grade = c->grade ? c->grade[i] : '?';
		tmp[i].throttled = c->throttled && c->throttled[i] == '1';
		tmp[i].errs = e <= 0 ? 0 : e >= 4294967295.0 ? 4294967295u : (unsigned)e;
	}
	out->n_chips = n;
	out->len = apid_chips_pack_columns(tmp, n, out->blob, APID_CHIPS_PACKED_MAX(n));
	free(tmp);
	return out->len ? 0 : -1;
}

static int pack_telemetry(struct apid_event *ev, char *err, size_t errlen)
{
	const struct hive_msg_telemetry_result *t = &ev->u.telemetry;

	ev->packed = calloc(t->n_chains + 1, sizeof(*ev->packed));
	if (!ev->packed)
		goto oom;
	for (size_t i = 0; i < t->n_chains; i++)
		if (pack_chain(&t->chains[i].chips, &ev->packed[i]) < 0)
			goto oom;
	return 0;
oom:
	snprintf(err, errlen, "chains: out of memory");
	return -1;
}

int apid_event_decode(const struct hive_envelope *env, struct apid_event *ev,
		      enum apid_reject *reason, char *err, size_t errlen)
{
	int kind = hive_msg_kind_of(env->topic, HIVE_CH_EVENTS);

	memset(ev, 0, sizeof(*ev));
	if (kind < 0) {
		*reason = APID_REJ_UNKNOWN_TOPIC;
		snprintf(err, errlen, "unknown topic \"%s\"", env->topic);
		return -1;
	}
	*reason = APID_REJ_BAD_BODY;
	ev->kind = (enum hive_msg_kind)kind;
	if (hive_msg_decode(ev->kind, env->body, &ev->u, err, errlen) < 0)
		return -1;
	if (ev->kind == HIVE_MSG_TELEMETRY_RESULT && pack_telemetry(ev, err, errlen) < 0) {
		apid_event_clear(ev);
		return -1;
	}
	return 0;
}

void apid_event_clear(struct apid_event *ev)
{
	if (ev->packed) {
		for (size_t i = 0; i < ev->u.telemetry.n_chains; i++)
			free(ev->packed[i].blob);
		free(ev->packed);
		ev->packed = NULL;
	}
	hive_msg_free(ev->kind, &ev->u);
}
