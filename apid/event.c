/* event — the decoding of every event body that arrives on bus.events into
 * a struct apid_event, and the names of the reasons an event is refused.
 * The writer thread calls it once per event. */
#include "event.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chips.h"
#include "hive/cfg.h"
#include "hive/json.h"
#include "hive/mac.h"
#include "hive/msg.h"

#define MAX_CHAINS    64
#define MAX_CHIPS     4096      /* per chain */
#define MAX_PRESETS   256
#define MAX_TEXT      1024      /* free text: names, messages */

static const char *const reject_names[APID_REJ_COUNT] = {
	[APID_REJ_UNKNOWN_TOPIC] = "unknown topic",
	[APID_REJ_BAD_BODY] = "bad body",
	[APID_REJ_UNKNOWN_MINER] = "unknown miner",
	[APID_REJ_DATABASE] = "database error",
};

const char *apid_reject_name(enum apid_reject r)
{
	return r < APID_REJ_COUNT ? reject_names[r] : "?";
}

/* ------------------------------------------------------------ decoding */

/* A string member borrowed from obj; same contract as hive_json_str. */
static int get_str(const json_t *obj, const char *key, bool required, size_t max,
		   const char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v)) {
		if (!required)
			return 1;
		snprintf(err, errlen, "%s: missing", key);
		return -1;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s: expected string, got %s", key,
			 hive_json_type_name(v));
		return -1;
	}
	if (json_string_length(v) > max) {
		snprintf(err, errlen, "%s: longer than %zu characters", key, max);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

static int get_num(const json_t *obj, const char *key, double *out, char *err, size_t errlen)
{
	*out = NAN;
	if (hive_json_num(obj, key, false, out, err, errlen) < 0)
		return -1;
	if (!isfinite(*out)) {
		*out = NAN;
		return 0;
	}
	return 0;
}

static int get_mac(const json_t *obj, bool allow_empty, char out[APID_MAC_LEN], char *err,
		   size_t errlen)
{
	const char *s = NULL;

	if (get_str(obj, "mac", true, 64, &s, err, errlen) < 0)
		return -1;
	if (allow_empty && !*s) {
		out[0] = '\0';
		return 0;
	}
	if (hive_mac_normalise(s, out) < 0) {
		snprintf(err, errlen, "mac: not a MAC address: \"%.40s\"", s);
		return -1;
	}
	return 0;
}

static int get_ip(const json_t *obj, bool required, char out[APID_IP_LEN], char *err,
		  size_t errlen)
{
	const char *s = NULL;
	struct in_addr a;
	int rc = get_str(obj, "ip", required, 64, &s, err, errlen);

	out[0] = '\0';
	if (rc != 0)
		return rc;
	if (inet_pton(AF_INET, s, &a) != 1) {
		snprintf(err, errlen, "ip: not an IPv4 address: \"%.40s\"", s);
		return -1;
	}
	inet_ntop(AF_INET, &a, out, APID_IP_LEN);
	return 0;
}

static int get_job(const json_t *obj, long long *job, char *err, size_t errlen)
{
	*job = 0;
	return hive_json_int(obj, "job", false, job, err, errlen) < 0 ? -1 : 0;
}

/* Optional text fields, all up to MAX_TEXT. */
static int get_texts(const json_t *obj, const char *const *keys, const char **const *outs,
		     char *err, size_t errlen)
{
	for (int i = 0; keys[i]; i++) {
		*outs[i] = NULL;
		if (get_str(obj, keys[i], false, MAX_TEXT, outs[i], err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int decode_seen(const json_t *b, struct apid_ev_seen *e, char *err, size_t errlen)
{
	static const char *const keys[] = { "model", "miner", "fw_name", "fw_version",
					    "hostname", NULL };
	const char **const outs[] = { &e->model, &e->miner, &e->fw_name, &e->fw_version,
				      &e->hostname };
	const char *subnet = NULL;
	struct hive_subnet sn;

	if (get_mac(b, false, e->mac, err, errlen) < 0 || get_ip(b, true, e->ip, err, errlen) < 0 ||
	    get_texts(b, keys, outs, err, errlen) < 0 ||
	    get_str(b, "subnet", false, 64, &subnet, err, errlen) < 0)
		return -1;
	e->subnet[0] = '\0';
	if (subnet && *subnet) {
		if (hive_subnet_parse(subnet, &sn) < 0) {
			snprintf(err, errlen, "subnet: not a CIDR: \"%.40s\"", subnet);
			return -1;
		}
		snprintf(e->subnet, sizeof(e->subnet), "%s", sn.text);
	}
	return 0;
}

static int decode_key(const json_t *b, struct apid_ev_key *e, char *err, size_t errlen)
{
	if (get_mac(b, false, e->mac, err, errlen) < 0 ||
	    get_str(b, "api_key", true, 512, &e->api_key, err, errlen) < 0)
		return -1;
	if (!*e->api_key) {
		snprintf(err, errlen, "api_key: empty");
		return -1;
	}
	return 0;
}

static int decode_error(const json_t *b, struct apid_ev_error *e, char *err, size_t errlen)
{
	static const char *const ops[] = { "discover", "unlock", "provision", "status",
					   "telemetry", "control", NULL };
	int i;

	e->message = NULL;
	if (get_mac(b, true, e->mac, err, errlen) < 0 ||
	    get_str(b, "op", true, 32, &e->op, err, errlen) < 0 ||
	    get_str(b, "kind", true, 64, &e->kind, err, errlen) < 0 ||
	    get_str(b, "message", false, 1 << 16, &e->message, err, errlen) < 0 ||
	    get_num(b, "http_status", &e->http_status, err, errlen) < 0)
		return -1;
	for (i = 0; ops[i] && strcmp(ops[i], e->op) != 0; i++)
		;
	if (!ops[i]) {
		snprintf(err, errlen, "op: unknown operation \"%.32s\"", e->op);
		return -1;
	}
	if (!*e->kind) {
		snprintf(err, errlen, "kind: empty");
		return -1;
	}
	return 0;
}

/* {"rows","cols","chips":[[id|-1,...],...]} */
static int check_topology(const json_t *t, char *err, size_t errlen)
{
	long long rows, cols;
	json_t *chips, *row, *cell;
	size_t i, j;

	if (hive_json_int(t, "rows", true, &rows, err, errlen) < 0 ||
	    hive_json_int(t, "cols", true, &cols, err, errlen) < 0 ||
	    hive_json_arr(t, "chips", true, &chips, err, errlen) < 0)
		goto fail;
	if (rows < 0 || cols < 0 || rows > 1024 || cols > 1024 ||
	    json_array_size(chips) != (size_t)rows) {
		snprintf(err, errlen, "chips: expected %lld rows, got %zu", rows,
			 json_array_size(chips));
		goto fail;
	}
	json_array_foreach(chips, i, row) {
		if (!json_is_array(row) || json_array_size(row) != (size_t)cols) {
			snprintf(err, errlen, "chips[%zu]: expected an array of %lld ids", i, cols);
			goto fail;
		}
		json_array_foreach(row, j, cell) {
			if (!json_is_integer(cell)) {
				snprintf(err, errlen, "chips[%zu][%zu]: expected integer, got %s",
					 i, j, hive_json_type_name(cell));
				goto fail;
			}
		}
	}
	return 0;
fail:;
	char msg[256];

	snprintf(msg, sizeof(msg), "%s", err);
	snprintf(err, errlen, "topology.%s", msg);
	return -1;
}

static int decode_model(const json_t *b, struct apid_ev_model *e, char *err, size_t errlen)
{
	json_t *presets, *p;
	size_t i;
	char msg[256];

	memset(e, 0, sizeof(*e));
	if (get_str(b, "model", true, 64, &e->alias, err, errlen) < 0 ||
	    get_str(b, "full_name", false, MAX_TEXT, &e->full_name, err, errlen) < 0 ||
	    get_str(b, "fw_version", false, 128, &e->fw_version, err, errlen) < 0 ||
	    get_num(b, "num_chains", &e->num_chains, err, errlen) < 0 ||
	    get_num(b, "chips_per_chain", &e->chips_per_chain, err, errlen) < 0 ||
	    hive_json_obj(b, "topology", false, &e->topology, err, errlen) < 0 ||
	    hive_json_arr(b, "presets", true, &presets, err, errlen) < 0)
		return -1;
	if (!*e->alias) {
		snprintf(err, errlen, "model: empty");
		return -1;
	}
	if (e->topology && check_topology(e->topology, err, errlen) < 0)
		return -1;
	if (json_array_size(presets) > MAX_PRESETS) {
		snprintf(err, errlen, "presets: more than %d", MAX_PRESETS);
		return -1;
	}
	e->n_presets = json_array_size(presets);
	e->presets = calloc(e->n_presets ? e->n_presets : 1, sizeof(*e->presets));
	if (!e->presets) {
		snprintf(err, errlen, "presets: out of memory");
		return -1;
	}
	json_array_foreach(presets, i, p) {
		struct apid_ev_preset *q = &e->presets[i];
		bool tuned = false;

		q->order = (long long)i;
		if (!json_is_object(p)) {
			snprintf(msg, sizeof(msg), "expected object, got %s", hive_json_type_name(p));
			goto fail;
		}
		if (get_str(p, "name", true, 64, &q->name, msg, sizeof(msg)) < 0 ||
		    get_str(p, "pretty", false, 256, &q->pretty, msg, sizeof(msg)) < 0 ||
		    get_num(p, "watts", &q->watts, msg, sizeof(msg)) < 0 ||
		    get_num(p, "th", &q->th, msg, sizeof(msg)) < 0 ||
		    hive_json_int(p, "order", false, &q->order, msg, sizeof(msg)) < 0 ||
		    hive_json_bool(p, "tuned", false, &tuned, msg, sizeof(msg)) < 0)
			goto fail;
		if (!*q->name) {
			snprintf(msg, sizeof(msg), "name: empty");
			goto fail;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(e->presets[k].name, q->name) == 0) {
				snprintf(msg, sizeof(msg), "name: \"%.64s\" listed twice", q->name);
				goto fail;
			}
		}
		q->tuned = tuned;
	}
	return 0;
fail:
	snprintf(err, errlen, "presets[%zu].%s", i, msg);
	free(e->presets);
	e->presets = NULL;
	return -1;
}

static int decode_sweep(const json_t *b, struct apid_ev_sweep *e, char *err, size_t errlen)
{
	const char *subnet;
	struct hive_subnet sn;
	json_t *m;
	size_t i;
	char mac[APID_MAC_LEN];

	if (get_str(b, "subnet", true, 64, &subnet, err, errlen) < 0 ||
	    hive_json_arr(b, "macs", true, &e->macs, err, errlen) < 0 ||
	    get_num(b, "started", &e->started, err, errlen) < 0 ||
	    get_num(b, "duration_ms", &e->duration_ms, err, errlen) < 0 ||
	    get_num(b, "probed", &e->probed, err, errlen) < 0 ||
	    get_num(b, "answered", &e->answered, err, errlen) < 0 ||
	    get_num(b, "miners", &e->miners, err, errlen) < 0)
		return -1;
	if (hive_subnet_parse(subnet, &sn) < 0) {
		snprintf(err, errlen, "subnet: not a CIDR: \"%.40s\"", subnet);
		return -1;
	}
	snprintf(e->subnet, sizeof(e->subnet), "%s", sn.text);
	json_array_foreach(e->macs, i, m) {
		if (!json_is_string(m) || hive_mac_normalise(json_string_value(m), mac) < 0) {
			snprintf(err, errlen, "macs[%zu]: not a MAC address", i);
			return -1;
		}
	}
	return 0;
}

static int check_num_array(const json_t *a, const char *key, char *err, size_t errlen)
{
	json_t *v;
	size_t i;

	json_array_foreach(a, i, v) {
		if (!json_is_number(v)) {
			snprintf(err, errlen, "%s[%zu]: expected number, got %s", key, i,
				 hive_json_type_name(v));
			return -1;
		}
	}
	return 0;
}

static int decode_status(const json_t *b, struct apid_ev_status *e, char *err, size_t errlen)
{
	static const struct { const char *key; size_t off; } nums[] = {
		{ "state_time", offsetof(struct apid_ev_status, state_time) },
		{ "hr_realtime_ghs", offsetof(struct apid_ev_status, hr_realtime) },
		{ "hr_average_ghs", offsetof(struct apid_ev_status, hr_average) },
		{ "hr_nominal_ghs", offsetof(struct apid_ev_status, hr_nominal) },
		{ "chip_temp_max", offsetof(struct apid_ev_status, chip_temp_max) },
		{ "pcb_temp_max", offsetof(struct apid_ev_status, pcb_temp_max) },
		{ "power_w", offsetof(struct apid_ev_status, power_w) },
		{ "fan_duty", offsetof(struct apid_ev_status, fan_duty) },
		{ "hw_errors", offsetof(struct apid_ev_status, hw_errors) },
	};
	json_t *v;
	size_t i;
	bool metered;
	int rc;

	e->state = e->preset = NULL;
	e->fans = e->chains = e->pools = NULL;
	if (get_mac(b, false, e->mac, err, errlen) < 0 || get_job(b, &e->job, err, errlen) < 0 ||
	    get_str(b, "state", false, 64, &e->state, err, errlen) < 0 ||
	    get_str(b, "preset", false, 64, &e->preset, err, errlen) < 0)
		return -1;
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (get_num(b, nums[i].key, (double *)((char *)e + nums[i].off), err, errlen) < 0)
			return -1;
	rc = hive_json_bool(b, "power_metered", false, &metered, err, errlen);
	if (rc < 0)
		return -1;
	e->power_metered = rc == 0 ? metered : -1;
	if (hive_json_arr(b, "fans", false, &e->fans, err, errlen) < 0 ||
	    hive_json_arr(b, "chains", false, &e->chains, err, errlen) < 0 ||
	    hive_json_obj(b, "pools", false, &e->pools, err, errlen) < 0)
		return -1;
	if (e->fans && check_num_array(e->fans, "fans", err, errlen) < 0)
		return -1;
	if (e->chains) {
		if (json_array_size(e->chains) > MAX_CHAINS) {
			snprintf(err, errlen, "chains: more than %d", MAX_CHAINS);
			return -1;
		}
		json_array_foreach(e->chains, i, v) {
			if (!json_is_object(v)) {
				snprintf(err, errlen, "chains[%zu]: expected object, got %s", i,
					 hive_json_type_name(v));
				return -1;
			}
		}
	}
	return 0;
}

/* One of chips' column arrays: NULL (absent) or exactly n numbers. */
static int chip_column(const json_t *chips, const char *key, size_t n, json_t **out,
		       char *err, size_t errlen)
{
	*out = NULL;
	if (hive_json_arr(chips, key, false, out, err, errlen) < 0)
		return -1;
	if (!*out)
		return 0;
	if (json_array_size(*out) != n) {
		snprintf(err, errlen, "%s: expected %zu values, got %zu", key, n,
			 json_array_size(*out));
		return -1;
	}
	return check_num_array(*out, key, err, errlen);
}

static double col(const json_t *a, size_t i)
{
	json_t *v = a ? json_array_get(a, i) : NULL;

	return v ? json_number_value(v) : 0.0;
}

static int pack_chain(const json_t *c, struct apid_ev_chain *ch, char *err, size_t errlen)
{
	json_t *chips, *hr, *freq, *volt, *temp, *errs;
	const char *grade = NULL, *thr = NULL;
	struct apid_chip *tmp;
	size_t n;

	if (hive_json_int(c, "id", true, &ch->id, err, errlen) < 0 ||
	    get_str(c, "state", false, 64, &ch->state, err, errlen) < 0 ||
	    get_num(c, "hr_realtime_ghs", &ch->hr_realtime, err, errlen) < 0 ||
	    get_num(c, "hr_nominal_ghs", &ch->hr_nominal, err, errlen) < 0 ||
	    get_num(c, "freq", &ch->freq, err, errlen) < 0 ||
	    hive_json_obj(c, "chips", true, &chips, err, errlen) < 0 ||
	    hive_json_arr(chips, "hr", true, &hr, err, errlen) < 0)
		return -1;
	n = json_array_size(hr);
	if (n > MAX_CHIPS) {
		snprintf(err, errlen, "chips.hr: more than %d chips", MAX_CHIPS);
		return -1;
	}
	if (check_num_array(hr, "chips.hr", err, errlen) < 0 ||
	    chip_column(chips, "freq", n, &freq, err, errlen) < 0 ||
	    chip_column(chips, "volt", n, &volt, err, errlen) < 0 ||
	    chip_column(chips, "temp", n, &temp, err, errlen) < 0 ||
	    chip_column(chips, "errs", n, &errs, err, errlen) < 0 ||
	    get_str(chips, "grade", false, MAX_CHIPS, &grade, err, errlen) < 0 ||
	    get_str(chips, "throttled", false, MAX_CHIPS, &thr, err, errlen) < 0)
		return -1;
	if ((grade && strlen(grade) != n) || (thr && strlen(thr) != n)) {
		snprintf(err, errlen, "chips.%s: expected %zu letters",
			 grade && strlen(grade) != n ? "grade" : "throttled", n);
		return -1;
	}
	tmp = calloc(n ? n : 1, sizeof(*tmp));
	ch->chips = malloc(n ? n * APID_CHIP_BYTES : 1);
	if (!tmp || !ch->chips) {
		free(tmp);
		snprintf(err, errlen, "chips: out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		double e = col(errs, i);

		tmp[i].hr_ghs = (float)col(hr, i);
		tmp[i].freq = (int)lround(fmin(fmax(col(freq, i), -1), 1e6));
		tmp[i].volt = (int)lround(fmin(fmax(col(volt, i), -1), 1e6));
		tmp[i].temp = (float)col(temp, i);
		tmp[i].grade = grade ? grade[i] : '?';
		tmp[i].throttled = thr && thr[i] == '1';
		tmp[i].errs = e <= 0 ? 0 : e >= 4294967295.0 ? 4294967295u : (unsigned)e;
	}
	ch->n_chips = n;
	apid_chips_pack(tmp, n, ch->chips);
	free(tmp);
	return 0;
}

static int decode_telemetry(const json_t *b, struct apid_ev_telemetry *e, char *err,
			    size_t errlen)
{
	const char *source = NULL;
	json_t *chains, *c;
	size_t i;
	char msg[256];

	e->n_chains = 0;
	e->chains = NULL;
	if (get_mac(b, false, e->mac, err, errlen) < 0 || get_job(b, &e->job, err, errlen) < 0 ||
	    get_str(b, "source", false, 16, &source, err, errlen) < 0 ||
	    hive_json_arr(b, "chains", true, &chains, err, errlen) < 0)
		return -1;
	if (!source || !*source)
		source = "chains";
	if (strcmp(source, "chains") != 0 && strcmp(source, "boards") != 0) {
		snprintf(err, errlen, "source: expected \"chains\" or \"boards\", got \"%s\"",
			 source);
		return -1;
	}
	snprintf(e->source, sizeof(e->source), "%s", source);
	if (json_array_size(chains) > MAX_CHAINS) {
		snprintf(err, errlen, "chains: more than %d", MAX_CHAINS);
		return -1;
	}
	e->chains = calloc(json_array_size(chains) + 1, sizeof(*e->chains));
	if (!e->chains) {
		snprintf(err, errlen, "chains: out of memory");
		return -1;
	}
	json_array_foreach(chains, i, c) {
		if (!json_is_object(c)) {
			snprintf(msg, sizeof(msg), "expected object, got %s", hive_json_type_name(c));
			goto fail;
		}
		if (pack_chain(c, &e->chains[i], msg, sizeof(msg)) < 0)
			goto fail;
		e->n_chains = i + 1;
	}
	return 0;
fail:
	snprintf(err, errlen, "chains[%zu].%s", i, msg);
	for (size_t k = 0; k < e->n_chains; k++)
		free(e->chains[k].chips);
	free(e->chains);
	e->chains = NULL;
	e->n_chains = 0;
	return -1;
}

static int decode_job_failed(const json_t *b, struct apid_ev_job_failed *e, char *err,
			     size_t errlen)
{
	e->kind = NULL;
	if (get_mac(b, false, e->mac, err, errlen) < 0 ||
	    hive_json_int(b, "job", true, &e->job, err, errlen) < 0 ||
	    get_str(b, "kind", false, 64, &e->kind, err, errlen) < 0)
		return -1;
	return 0;
}

static int decode_heartbeat(const json_t *b, struct apid_ev_heartbeat *e, char *err,
			    size_t errlen)
{
	json_t *v;
	const char *k;

	e->daemon = e->host = NULL;
	e->counters = NULL;
	if (get_str(b, "daemon", true, 64, &e->daemon, err, errlen) < 0 ||
	    get_str(b, "host", false, 128, &e->host, err, errlen) < 0 ||
	    get_num(b, "pid", &e->pid, err, errlen) < 0 ||
	    get_num(b, "started", &e->started, err, errlen) < 0 ||
	    get_num(b, "in_flight", &e->in_flight, err, errlen) < 0 ||
	    get_num(b, "latency_ms", &e->latency_ms, err, errlen) < 0 ||
	    hive_json_obj(b, "counters", false, &e->counters, err, errlen) < 0)
		return -1;
	if (e->counters) {
		if (json_object_size(e->counters) > 256) {
			snprintf(err, errlen, "counters: more than 256");
			return -1;
		}
		json_object_foreach(e->counters, k, v) {
			if (!json_is_number(v)) {
				snprintf(err, errlen, "counters.%.64s: expected number, got %s", k,
					 hive_json_type_name(v));
				return -1;
			}
		}
	}
	return 0;
}

int apid_event_decode(const struct hive_envelope *env, struct apid_event *ev,
		      enum apid_reject *reason, char *err, size_t errlen)
{
	static const struct { const char *topic; enum apid_event_kind kind; } topics[] = {
		{ HIVE_TOPIC_STATUS_RESULT, APID_EV_STATUS },
		{ HIVE_TOPIC_TELEMETRY_RESULT, APID_EV_TELEMETRY },
		{ HIVE_TOPIC_MINER_SEEN, APID_EV_MINER_SEEN },
		{ HIVE_TOPIC_MINER_ERROR, APID_EV_MINER_ERROR },
		{ HIVE_TOPIC_JOB_FAILED, APID_EV_JOB_FAILED },
		{ HIVE_TOPIC_HEARTBEAT, APID_EV_HEARTBEAT },
		{ HIVE_TOPIC_MINER_KEY, APID_EV_MINER_KEY },
		{ HIVE_TOPIC_MODEL_CATALOGUE, APID_EV_MODEL },
		{ HIVE_TOPIC_SWEEP_DONE, APID_EV_SWEEP },
	};
	const json_t *b = env->body;
	size_t i;
	int rc = -1;

	for (i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
		if (strcmp(env->topic, topics[i].topic) == 0)
			break;
	if (i == sizeof(topics) / sizeof(topics[0])) {
		*reason = APID_REJ_UNKNOWN_TOPIC;
		snprintf(err, errlen, "unknown topic \"%s\"", env->topic);
		return -1;
	}
	*reason = APID_REJ_BAD_BODY;
	if (!json_is_object(b)) {
		snprintf(err, errlen, "body: expected object, got %s", hive_json_type_name(b));
		return -1;
	}
	memset(ev, 0, sizeof(*ev));
	ev->kind = topics[i].kind;
	switch (ev->kind) {
	case APID_EV_MINER_SEEN:  rc = decode_seen(b, &ev->u.seen, err, errlen); break;
	case APID_EV_MINER_KEY:   rc = decode_key(b, &ev->u.key, err, errlen); break;
	case APID_EV_MINER_ERROR: rc = decode_error(b, &ev->u.error, err, errlen); break;
	case APID_EV_MODEL:       rc = decode_model(b, &ev->u.model, err, errlen); break;
	case APID_EV_SWEEP:       rc = decode_sweep(b, &ev->u.sweep, err, errlen); break;
	case APID_EV_STATUS:      rc = decode_status(b, &ev->u.status, err, errlen); break;
	case APID_EV_TELEMETRY:   rc = decode_telemetry(b, &ev->u.telemetry, err, errlen); break;
	case APID_EV_JOB_FAILED:  rc = decode_job_failed(b, &ev->u.job_failed, err, errlen); break;
	case APID_EV_HEARTBEAT:   rc = decode_heartbeat(b, &ev->u.heartbeat, err, errlen); break;
	}
	return rc;
}

void apid_event_clear(struct apid_event *ev)
{
	switch (ev->kind) {
	case APID_EV_MODEL:
		free(ev->u.model.presets);
		ev->u.model.presets = NULL;
		break;
	case APID_EV_TELEMETRY:
		for (size_t i = 0; i < ev->u.telemetry.n_chains; i++)
			free(ev->u.telemetry.chains[i].chips);
		free(ev->u.telemetry.chains);
		ev->u.telemetry.chains = NULL;
		ev->u.telemetry.n_chains = 0;
		break;
	default:
		break;
	}
}

