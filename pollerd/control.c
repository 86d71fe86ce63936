/* control — one control job (hive.job.control): the firmware call its kind
 * names and, for set_preset, the restart the firmware asks for.
 *
 *   set_preset  POST /settings {"miner":{"overclock":{"preset":P}}}; when
 *               it answers restart_required:true, POST /mining/restart
 *   restart     POST /mining/restart
 *   pause       POST /mining/pause
 *   resume      POST /mining/resume
 *   reboot      POST /system/reboot → reboot_after from {"after":n}
 *
 * The result (hive.action.result) says what the firmware answered, nothing
 * more: a 200 is not proof, apid reads the effect back through status
 * jobs. Nothing is retried here either — apid decides what is sent again,
 * and a reboot never is. A restart that fails after the preset was
 * accepted fails the job with the restart's error: the change the firmware
 * said it needs did not happen.
 */
#include "pollerd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Below this a restart after the preset is not worth sending: it would
 * time out on our budget, not the miner's. */
#define CONTROL_MIN_MS 500

static const struct control_kind {
	const char *name;               /* the job's kind */
	enum hive_fw_call call;
} kinds[] = {
	{ "set_preset", HIVE_FW_SET_PRESET },
	{ "restart", HIVE_FW_MINING_RESTART },
	{ "pause", HIVE_FW_MINING_PAUSE },
	{ "resume", HIVE_FW_MINING_RESUME },
	{ "reboot", HIVE_FW_REBOOT },
};

struct control_job {
	struct hive_worker_job *job;
	struct hive_fw_client *fw;
	const struct hive_msg_control_job *cj;  /* job->body */
	struct hive_msg_action_result r;
};

static const struct control_kind *kind_of(const char *name)
{
	for (size_t i = 0; name && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	return NULL;
}

int pollerd_control_check(const struct hive_worker_job *job, char *err, size_t errlen)
{
	const struct hive_msg_control_job *cj = job->body;
	const struct control_kind *k = kind_of(cj->kind);

	if (!k) {
		snprintf(err, errlen, "kind: \"%s\" is not a control", cj->kind ? cj->kind : "");
		return -1;
	}
	if (k->call == HIVE_FW_SET_PRESET && (!cj->preset || !*cj->preset)) {
		snprintf(err, errlen, "preset: missing for set_preset");
		return -1;
	}
	return 0;
}

static void on_answer(const struct hive_fw_result *res, void *arg);

/* Asks the miner for call; 0 / -1 (nothing asked). */
static int ask(struct control_job *c, enum hive_fw_call call, int timeout_ms)
{
	struct hive_fw_req req;

	memset(&req, 0, sizeof(req));
	req.ip = c->job->ip;
	req.port = c->job->port;
	req.api_key = c->job->api_key;
	req.call = call;
	req.arg = call == HIVE_FW_SET_PRESET ? c->cj->preset : NULL;
	req.timeout_ms = timeout_ms;
	req.cb = on_answer;
	req.cb_arg = c;
	return hive_fw_request(c->fw, &req);
}

static void fail(struct control_job *c, const struct hive_fw_err *err)
{
	hive_worker_fail(c->job, err);
	free(c);
}

static void done(struct control_job *c)
{
	/* c->r borrows the job's strings: c goes after the result is out */
	hive_worker_done(c->job, &c->r);
	free(c);
}

/* set_preset was accepted and the firmware wants a restart to apply it. */
static void restart_after_preset(struct control_job *c)
{
	int left = hive_worker_time_left(c->job);
	struct hive_fw_err e = { .kind = HIVE_FW_ERR_TIMEOUT };
	const char *path = hive_fw_call_path(HIVE_FW_MINING_RESTART);

	if (left >= CONTROL_MIN_MS && ask(c, HIVE_FW_MINING_RESTART, left) == 0)
		return;
	snprintf(e.endpoint, sizeof(e.endpoint), "%s", path);
	if (left >= CONTROL_MIN_MS) {
		e.kind = HIVE_FW_ERR_INTERNAL;
		snprintf(e.msg, sizeof(e.msg), "%s: could not queue the request after the preset was"
			 " accepted", path);
	} else {
		snprintf(e.msg, sizeof(e.msg), "%s: no time left to apply the accepted preset", path);
	}
	fail(c, &e);
}

static void on_answer(const struct hive_fw_result *res, void *arg)
{
	struct control_job *c = arg;

	if (res->err.kind != HIVE_FW_OK) {
		struct hive_fw_err e = res->err;

		if (res->call == HIVE_FW_MINING_RESTART && c->r.restart_required == 1)
			snprintf(e.msg, sizeof(e.msg), "%.200s (the preset was accepted)",
				 res->err.msg);
		fail(c, &e);
		return;
	}
	switch (res->call) {
	case HIVE_FW_SET_PRESET:
		c->r.restart_required = res->settings.restart_required;
		c->r.restarted = 0;
		if (res->settings.restart_required) {
			restart_after_preset(c);
			return;
		}
		break;
	case HIVE_FW_MINING_RESTART:
		if (c->r.restart_required == 1)
			c->r.restarted = 1;
		break;
	case HIVE_FW_REBOOT:
		if (res->reboot.after >= 0)
			c->r.reboot_after = res->reboot.after;
		break;
	default:
		break;
	}
	done(c);
}

int pollerd_control_start(struct hive_worker_job *job, void *arg)
{
	struct control_job *c;
	const struct control_kind *k;

	if (!(c = calloc(1, sizeof(*c)))) {
		errno = ENOMEM;
		return -1;
	}
	c->job = job;
	c->fw = arg;
	c->cj = job->body;
	k = kind_of(c->cj->kind);       /* pollerd_control_check made sure */
	hive_msg_init(HIVE_MSG_ACTION_RESULT, &c->r);
	c->r.action = c->cj->action;
	c->r.kind = c->cj->kind;
	job->priv = c;
	if (!k || ask(c, k->call, job->timeout_ms) < 0) {
		job->priv = NULL;
		free(c);
		if (!k)
			errno = EINVAL;
		return -1;
	}
	return 0;
}

void pollerd_control_abort(struct hive_worker_job *job, void *arg)
{
	(void)arg;
	free(job->priv);
	job->priv = NULL;
}
