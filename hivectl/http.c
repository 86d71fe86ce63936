/* http — hivectl's one way to the API: the token, a request with libcurl,
 * and what its answer means as an exit code.
 *
 * The token goes only into the Authorization header: never on stdout or
 * stderr, not even in a refusal, which says where the token came from. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hivectl.h"
#include "hive/daemon.h"          /* HIVE_VERSION */

#define DEFAULT_TOKEN_FILE "data/api-token"
#define CONNECT_TIMEOUT_MS 5000L
#define TIMEOUT_MS         120000L  /* 10,000 miners are ~7 MB: well under */
#define ANSWER_MAX         (256u << 20)

/* As apid takes it (apid/auth.c): printable ASCII without spaces, since it
 * travels in a header. */
static bool token_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* The file's first line, trimmed, into c->token. 0, 1 when the file does
 * not exist, -1 (said on stderr) when it cannot be used. */
static int token_file(struct hc *c, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[sizeof(c->token) + 2];
	size_t a, b;

	if (!f) {
		if (errno == ENOENT)
			return 1;
		fprintf(stderr, "hivectl: token file %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	for (a = 0; line[a] == ' ' || line[a] == '\t'; a++)
		;
	b = strcspn(line + a, "\r\n") + a;
	while (b > a && (line[b - 1] == ' ' || line[b - 1] == '\t'))
		b--;
	line[b] = '\0';
	if (b == a || b - a >= sizeof(c->token) || !token_ok(line + a)) {
		fprintf(stderr, "hivectl: token file %s: %s\n", path, b == a ? "empty" :
			"not a token (printable characters without spaces, at most 512)");
		return -1;
	}
	memcpy(c->token, line + a, b - a + 1);
	snprintf(c->token_from, sizeof(c->token_from), "the token from %s", path);
	return 0;
}

/* The token (see hc_call): HC_OK, or HC_USAGE with the reason on stderr. */
static int token_load(struct hc *c, const char *file_flag)
{
	const char *env = getenv("POWERHIVE_API_TOKEN");
	int rc;

	if (file_flag) {
		rc = token_file(c, file_flag);
		if (rc == 1)
			fprintf(stderr, "hivectl: token file %s: %s\n", file_flag, strerror(ENOENT));
		return rc == 0 ? HC_OK : HC_USAGE;
	}
	if (env && *env) {
		if (strlen(env) >= sizeof(c->token) || !token_ok(env)) {
			fprintf(stderr, "hivectl: POWERHIVE_API_TOKEN: not a token (printable "
				"characters without spaces, at most 512)\n");
			return HC_USAGE;
		}
		snprintf(c->token, sizeof(c->token), "%s", env);
		snprintf(c->token_from, sizeof(c->token_from), "the token from POWERHIVE_API_TOKEN");
		return HC_OK;
	}
	rc = token_file(c, DEFAULT_TOKEN_FILE);
	if (rc == 1)
		snprintf(c->token_from, sizeof(c->token_from), "a request without a token "
			 "(POWERHIVE_API_TOKEN unset, no --token-file, no %s)", DEFAULT_TOKEN_FILE);
	return rc < 0 ? HC_USAGE : HC_OK;
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct hc *c = arg;
	size_t len = size * n;
	char *nb;

	if (c->body_len + len > ANSWER_MAX || !(nb = realloc(c->body, c->body_len + len + 1)))
		return 0;
	memcpy(nb + c->body_len, p, len);
	c->body = nb;
	c->body_len += len;
	c->body[c->body_len] = '\0';
	return len;
}

/* The API's "error" message of the last answer, or what stands for it. */
static const char *api_message(const json_t *j, long status, char *buf, size_t len)
{
	const char *m = json_string_value(json_object_get(j, "error"));

	if (m)
		return m;
	snprintf(buf, len, "HTTP %ld without an error message", status);
	return buf;
}

int hc_call(struct hc *c, const char *method, const char *path, const json_t *body,
	    json_t **out)
{
	char url[4096], auth[600], errbuf[CURL_ERROR_SIZE] = "", mbuf[64], *text = NULL;
	struct curl_slist *hdrs = NULL;
	json_t *j;
	long status = 0;
	CURLcode rc;
	int code;

	if (out)
		*out = NULL;
	if (!c->token_loaded) {
		if ((code = token_load(c, c->token_file)) != HC_OK)
			return code;
		c->token_loaded = true;
	}
	if (!c->curl && !(c->curl = curl_easy_init())) {
		fprintf(stderr, "hivectl: cannot start libcurl\n");
		return HC_UNREACHABLE;
	}
	free(c->body);
	c->body = NULL;
	c->body_len = 0;
	snprintf(url, sizeof(url), "%s%s", c->url, path);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	if (c->token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
		hdrs = curl_slist_append(hdrs, auth);
		explicit_bzero(auth, sizeof(auth));   /* the list holds its own copy */
	}
	if (body && !(text = json_dumps(body, JSON_COMPACT))) {
		curl_slist_free_all(hdrs);
		fprintf(stderr, "hivectl: out of memory\n");
		return HC_UNREACHABLE;
	}
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "hivectl/" HIVE_VERSION);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
	if (text)
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, text);
	/* No redirects: the token must not follow a Location elsewhere. */
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(hdrs);
	free(text);
	if (rc != CURLE_OK) {
		fprintf(stderr, "hivectl: cannot reach %s: %s\n", c->url,
			errbuf[0] ? errbuf : curl_easy_strerror(rc));
		return HC_UNREACHABLE;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	j = c->body ? json_loadb(c->body, c->body_len, 0, NULL) : NULL;
	if (status >= 200 && status < 300 && j) {
		if (out)
			*out = j;
		else
			json_decref(j);
		return HC_OK;
	}
	if (status >= 200 && status < 300) {
		fprintf(stderr, "hivectl: %s %s: the answer is not JSON (is %s apid?)\n", method,
			path, c->url);
		code = HC_UNREACHABLE;
	} else if (status == 401 || status == 403) {
		fprintf(stderr, "hivectl: %s refused %s (HTTP %ld): %s\n", c->url, c->token_from,
			status, api_message(j, status, mbuf, sizeof(mbuf)));
		code = HC_AUTH;
	} else if (status >= 400 && status < 500) {
		fprintf(stderr, "hivectl: %s (HTTP %ld)\n", api_message(j, status, mbuf, sizeof(mbuf)),
			status);
		code = HC_REFUSED;
	} else {
		fprintf(stderr, "hivectl: %s %s: HTTP %ld: %s\n", method, path, status,
			api_message(j, status, mbuf, sizeof(mbuf)));
		code = HC_UNREACHABLE;
	}
	json_decref(j);
	return code;
}

void hc_print_body(const struct hc *c)
{
	if (!c->body_len)
		return;
	fwrite(c->body, 1, c->body_len, stdout);
	if (c->body[c->body_len - 1] != '\n')
		putchar('\n');
}

char *hc_escape(struct hc *c, const char *s)
{
	char *e, *copy;

	if (!c->curl && !(c->curl = curl_easy_init()))
		return NULL;
	if (!(e = curl_easy_escape(c->curl, s, 0)))
		return NULL;
	copy = strdup(e);         /* callers free() it, not curl_free() */
	curl_free(e);
	return copy;
}

void hc_close(struct hc *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
	free(c->body);
	c->body = NULL;
	explicit_bzero(c->token, sizeof(c->token));
}
