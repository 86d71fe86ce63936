/* http — plantsim's HTTP server (civetweb): one port for the aggregator's
 * reading at --path and the admin API under /sim/. Answers are JSON and
 * leave in one mg_write, headers and body together. */
#include "plantsim.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hive/log.h"

/* enough that readings held by a "delay_ms" fault leave room for /sim/ */
#define HTTP_THREADS "16"
#define BODY_MAX     65536

static struct mg_context *ctx;
/* The status a handler answered, for civetweb's return value. */
static __thread int answered;

void ps_http_json(struct mg_connection *c, int status, json_t *j)
{
	char *body = j ? json_dumps(j, PS_JSON_FLAGS) : NULL;
	size_t len = body ? strlen(body) : 0;
	char head[256];
	char *out;
	int n;

	json_decref(j);
	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nCache-Control: no-store\r\n\r\n",
		     status, mg_get_response_code_text(c, status), len + 1);
	out = malloc((size_t)n + len + 1);
	if (!body || !out) {
		static const char oom[] = "HTTP/1.1 500 Internal Server Error\r\n"
			"Content-Length: 0\r\nConnection: close\r\n\r\n";
		mg_write(c, oom, sizeof(oom) - 1);
		answered = 500;
	} else {
		memcpy(out, head, (size_t)n);
		memcpy(out + n, body, len);
		out[(size_t)n + len] = '\n';
		mg_write(c, out, (size_t)n + len + 1);
		answered = status;
	}
	free(out);
	free(body);
}

void ps_http_error(struct mg_connection *c, int status, const char *msg)
{
	ps_http_json(c, status, json_pack("{s:s}", "error", msg));
}

json_t *ps_http_body_object(struct mg_connection *c)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	char *buf, msg[256];
	size_t len = 0;
	json_error_t e;
	json_t *j;
	int n;

	if (ri->content_length > BODY_MAX) {
		ps_http_error(c, 413, "body: larger than 64 KiB");
		return NULL;
	}
	if (!(buf = malloc(BODY_MAX + 1))) {
		ps_http_error(c, 500, "out of memory");
		return NULL;
	}
	while (len <= BODY_MAX && (n = mg_read(c, buf + len, BODY_MAX + 1 - len)) > 0)
		len += (size_t)n;
	if (len > BODY_MAX) {
		free(buf);
		ps_http_error(c, 413, "body: larger than 64 KiB");
		return NULL;
	}
	/* an empty body is an empty object: POST /sim/reset needs none */
	j = len ? json_loadb(buf, len, 0, &e) : json_object();
	free(buf);
	if (!json_is_object(j)) {
		snprintf(msg, sizeof(msg), "body: expected a JSON object (%s)",
			 j ? "got another type" : e.text);
		json_decref(j);
		ps_http_error(c, 400, msg);
		return NULL;
	}
	return j;
}

static int route(struct mg_connection *c, void *cbdata)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	const char *path = ri->local_uri ? ri->local_uri : "";

	(void)cbdata;
	answered = 0;
	if (strcmp(path, "/sim") == 0 || strncmp(path, "/sim/", 5) == 0)
		ps_admin_handle(c);
	else if (strcmp(path, ps_opts.path) == 0)
		ps_agg_handle(c);
	else
		ps_http_error(c, 404, "not found");
	if (ps_opts.verbose)
		log_debug("http request method=%s path=%.200s status=%d", ri->request_method,
			  path, answered);
	return answered ? answered : 500;
}

static int on_log_message(const struct mg_connection *c, const char *message)
{
	(void)c;
	log_warnx("http civetweb message=\"%.300s\"", message);
	return 1;
}

int ps_http_start(char *err, size_t errlen)
{
	struct mg_callbacks cb = { .log_message = on_log_message };
	const char *opts[] = {
		"listening_ports", ps_opts.http_addr,
		"num_threads", HTTP_THREADS,
		"tcp_nodelay", "1",
		"enable_keep_alive", "yes",
		"keep_alive_timeout_ms", "5000",
		"request_timeout_ms", "10000",
		"enable_directory_listing", "no",
		NULL,
	};
	char cwerr[256] = "";
	unsigned cwcode = 0;
	struct mg_error_data ed = { .code = &cwcode, .text = cwerr, .text_buffer_size = sizeof(cwerr) };
	struct mg_init_data init = { .callbacks = &cb, .configuration_options = opts };

	mg_init_library(0);
	ctx = mg_start2(&init, &ed);
	if (!ctx) {
		snprintf(err, errlen, "--http %s: cannot serve: %s", ps_opts.http_addr,
			 cwerr[0] ? cwerr : "civetweb failed to start");
		mg_exit_library();
		return -1;
	}
	mg_set_request_handler(ctx, "/", route, NULL);
	return 0;
}

/* civetweb 1.15's master thread polls the listener with a 2 s quantum and
 * looks at the stop flag only between polls, so a bare mg_stop takes up to
 * 2 s (every test run of plantsim paid it). A connection to our own port
 * wakes the poll: keep knocking until mg_stop, on a thread, returns. */
static int stopped;

static void *stop_thread(void *arg)
{
	(void)arg;
	mg_stop(ctx);   /* joins the workers */
	__atomic_store_n(&stopped, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void knock(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	(void)!connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
}

void ps_http_stop(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timespec nap = { 0, 10 * 1000000L };
	char ip[16], err[128];
	pthread_t t;
	int port;

	if (!ctx)
		return;
	if (ps_parse_loopback_addr(ps_opts.http_addr, ip, &port, err, sizeof(err)) < 0 ||
	    pthread_create(&t, NULL, stop_thread, NULL) != 0) {
		mg_stop(ctx);
	} else {
		sa.sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &sa.sin_addr);
		while (!__atomic_load_n(&stopped, __ATOMIC_ACQUIRE)) {
			knock(&sa);
			nanosleep(&nap, NULL);
		}
		pthread_join(t, NULL);
	}
	mg_exit_library();
	ctx = NULL;
}
