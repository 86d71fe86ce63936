/* meter — the plant's meters on the mining containers. With --minersim the
 * containers draw what the simulated fleet really draws: GET /sim/fleet on
 * minersim's admin API, its "power_w" (the true draw, metered miners or
 * not), split evenly over the containers by the plant model. A failed poll
 * keeps the last value, says so once (and once when it recovers), and
 * shows "meter_ok": false in the state. Loopback only, no redirects. */
#include "plantsim.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/log.h"

#define FLEET_PATH   "/sim/fleet"
#define TIMEOUT_MS   2000L
#define ANSWER_MAX   (1 << 20)
#define COMPLAIN_KEY "minersim poll"

static struct {
	CURL *curl;
	char url[300];
	char *buf;
	size_t len;
	bool overflow;
	long long polls, errors;     /* __atomic: the admin API reads them */
	int64_t last_ok_ms;          /* -1: never */
} T = { .last_ok_ms = -1 };

int ps_meter_check_url(const char *url, char *err, size_t errlen)
{
	char host[64];
	const char *h, *colon, *end;
	struct in_addr a;
	size_t n;

	if (strncmp(url, "http://", 7) != 0)
		goto bad;
	h = url + 7;
	colon = strchr(h, ':');
	end = colon ? colon : h + strcspn(h, "/");
	n = (size_t)(end - h);
	if (n == 0 || n >= sizeof(host))
		goto bad;
	memcpy(host, h, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
		snprintf(err, errlen, "--minersim %s: refused, the host must be a 127.x.y.z "
			 "address (loopback only)", url);
		return -1;
	}
	if (colon) {
		char *e;
		long port = strtol(colon + 1, &e, 10);
		if (e == colon + 1 || port < 1 || port > 65535 || (*e && *e != '/'))
			goto bad;
		if (*e == '/' && e[1])
			goto bad;
	} else if (*end == '/' && end[1]) {
		goto bad;
	}
	return 0;
bad:
	snprintf(err, errlen, "--minersim: expected http://127.x.y.z:PORT (minersim's "
		 "admin API), got \"%s\"", url);
	return -1;
}

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
	size_t n = size * nmemb;
	char *grown;

	(void)arg;
	if (T.len + n > ANSWER_MAX) {
		T.overflow = true;
		return 0;
	}
	if (!(grown = realloc(T.buf, T.len + n + 1)))
		return 0;
	T.buf = grown;
	memcpy(T.buf + T.len, data, n);
	T.len += n;
	T.buf[T.len] = '\0';
	return n;
}

int ps_meter_init(char *err, size_t errlen)
{
	size_t n;

	if (!ps_opts.minersim[0])
		return 0;
	if (ps_meter_check_url(ps_opts.minersim, err, errlen) < 0)
		return -1;
	n = strlen(ps_opts.minersim);
	while (n && ps_opts.minersim[n - 1] == '/')
		n--;
	snprintf(T.url, sizeof(T.url), "%.*s%s", (int)n, ps_opts.minersim, FLEET_PATH);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(T.curl = curl_easy_init())) {
		snprintf(err, errlen, "libcurl: cannot initialise");
		return -1;
	}
	curl_easy_setopt(T.curl, CURLOPT_URL, T.url);
	curl_easy_setopt(T.curl, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(T.curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(T.curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(T.curl, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
	curl_easy_setopt(T.curl, CURLOPT_CONNECTTIMEOUT_MS, TIMEOUT_MS);
	curl_easy_setopt(T.curl, CURLOPT_WRITEFUNCTION, collect);
	return 0;
}

void ps_meter_free(void)
{
	if (!T.curl)
		return;
	curl_easy_cleanup(T.curl);
	curl_global_cleanup();
	free(T.buf);
	T.curl = NULL;
	T.buf = NULL;
}

/* power_w of the answer into *w; 0, or -1 with a reason. */
static int parse_fleet(double *w, char *why, size_t len)
{
	json_error_t e;
	json_t *j = json_loadb(T.buf ? T.buf : "", T.len, 0, &e), *p;
	int rc = -1;

	p = json_object_get(j, "power_w");
	if (!j)
		snprintf(why, len, "not JSON: %.100s", e.text);
	else if (!json_is_number(p) || json_number_value(p) < 0)
		snprintf(why, len, "power_w: expected a number >= 0");
	else {
		*w = json_number_value(p);
		rc = 0;
	}
	json_decref(j);
	return rc;
}

void ps_meter_poll(void)
{
	char why[160];
	long status = 0;
	double w = 0;
	CURLcode cc;

	if (!T.curl)
		return;
	T.len = 0;
	T.overflow = false;
	cc = curl_easy_perform(T.curl);
	__atomic_add_fetch(&T.polls, 1, __ATOMIC_RELAXED);
	if (cc != CURLE_OK) {
		snprintf(why, sizeof(why), "%s", T.overflow ? "answer larger than 1 MiB"
							   : curl_easy_strerror(cc));
	} else if (curl_easy_getinfo(T.curl, CURLINFO_RESPONSE_CODE, &status), status != 200) {
		snprintf(why, sizeof(why), "HTTP status %ld", status);
	} else if (parse_fleet(&w, why, sizeof(why)) == 0) {
		ps_plant_metered(w, true);
		__atomic_store_n(&T.last_ok_ms, ps_now_ms(), __ATOMIC_RELAXED);
		hive_log_recovered(COMPLAIN_KEY, "minersim poll url=%s power_w=%.0f", T.url, w);
		return;
	}
	__atomic_add_fetch(&T.errors, 1, __ATOMIC_RELAXED);
	ps_plant_metered(0, false);
	hive_log_complain(COMPLAIN_KEY, "minersim poll_failed url=%s err=\"%s\" "
			  "(consumption keeps its last value)", T.url, why);
}

json_t *ps_meter_state(void)
{
	int64_t last = __atomic_load_n(&T.last_ok_ms, __ATOMIC_RELAXED);

	if (!T.curl)
		return json_null();
	return json_pack("{s:s, s:I, s:I, s:o}", "url", T.url,
			 "polls", (json_int_t)__atomic_load_n(&T.polls, __ATOMIC_RELAXED),
			 "errors", (json_int_t)__atomic_load_n(&T.errors, __ATOMIC_RELAXED),
			 "last_ok_ms_ago", last < 0 ? json_null()
						    : json_integer(ps_now_ms() - last));
}
