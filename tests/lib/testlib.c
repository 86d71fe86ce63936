/* testlib — see testlib.h. */
#include "testlib.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *tl_bin(const char *name)
{
	static char slots[8][1024];
	static int next;
	const char *dir = getenv("HIVE_BIN");
	char *buf = slots[next++ % 8];

	snprintf(buf, sizeof(slots[0]), "%s/%s", dir && *dir ? dir : "bin", name);
	return buf;
}

int tl_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port = -1;

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

char *tl_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *path;

	if (asprintf(&path, "%s/powerhive-%s-XXXXXX", base && *base ? base : "/tmp",
		     tag ? tag : "test") < 0)
		return NULL;
	if (!mkdtemp(path)) {
		free(path);
		return NULL;
	}
	return path;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tl_rmrf(const char *path)
{
	if (path && *path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int tl_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (!f)
		return -1;
	rc = fputs(text, f) < 0 ? -1 : 0;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* All of f (malloc'd, NUL-terminated) or NULL. */
static char *read_all(FILE *f)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
	return buf;
}

char *tl_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	if (!f)
		return NULL;
	buf = read_all(f);
	fclose(f);
	return buf;
}

int tl_run(const char *cmd, char **out)
{
	FILE *p = popen(cmd, "r");
	char *buf;
	int st;

	if (out)
		*out = NULL;
	if (!p)
		return -1;
	/* All of it, not a capped prefix: a writer blocked on a full pipe
	 * would hang pclose. */
	buf = read_all(p);
	st = pclose(p);
	st = buf && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	if (out)
		*out = buf;
	else
		free(buf);
	return st;
}

int tl_sh(char **out, bool quiet, const char *fmt, ...)
{
	char *cmd = NULL, *full = NULL, *text = NULL;
	va_list ap;
	int rc, n;

	if (out)
		*out = NULL;
	va_start(ap, fmt);
	n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (n < 0 || asprintf(&full, "%s 2>&1", cmd) < 0) {
		free(cmd);
		return -1;
	}
	rc = tl_run(full, &text);
	if (rc != 0 && !quiet)
		fprintf(stderr, "$ %s\n-> exit %d\n%s\n", cmd, rc, text ? text : "");
	if (out)
		*out = text;
	else
		free(text);
	free(cmd);
	free(full);
	return rc;
}

pid_t tl_spawn(const char *log_path, char *const argv[], char *const env[])
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	if (log_path) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
	}
	for (size_t i = 0; env && env[i]; i++)
		putenv(env[i]);
	execv(argv[0], argv);
	fprintf(stderr, "tl_spawn: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int tl_stop(pid_t pid, int sig, int timeout_ms)
{
	int status;
	long long deadline = hive_mono_ms() + timeout_ms;

	if (pid <= 0)
		return -1;
	kill(pid, sig);
	while (hive_mono_ms() < deadline) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0)
			return -1;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) == pid)
		return status;
	return -1;
}

bool tl_alive(pid_t pid)
{
	int status;

	return pid > 0 && waitpid(pid, &status, WNOHANG) == 0;
}

static pid_t tl_live[8];

void tl_live_add(pid_t pid)
{
	for (int i = 0; i < 8; i++)
		if (!tl_live[i]) {
			tl_live[i] = pid;
			return;
		}
}

void tl_live_del(pid_t pid)
{
	for (int i = 0; i < 8; i++)
		if (tl_live[i] == pid)
			tl_live[i] = 0;
}

void tl_live_kill_all(void)
{
	for (int i = 0; i < 8; i++)
		if (tl_live[i]) {
			tl_stop(tl_live[i], SIGKILL, 2000);
			tl_live[i] = 0;
		}
}

int tl_wait_log(pid_t pid, const char *log, const char *line, int timeout_ms)
{
	long long t0 = hive_mono_ms();
	char *text;

	while (hive_mono_ms() - t0 < timeout_ms) {
		bool seen;

		text = tl_read_file(log);
		seen = text && strstr(text, line);
		free(text);
		if (seen)
			return 0;
		if (!tl_alive(pid))
			break;
		usleep(10000);
	}
	text = tl_read_file(log);
	fprintf(stderr, "%s not seen in %s:\n%s\n", line, log, text ? text : "(no log)");
	free(text);
	return -1;
}

int tl_sim_start(struct tl_sim *p, const char *prog, const char *tag, const char *const args[])
{
	const char *argv[64] = { tl_bin(prog) };
	char ready[64];
	size_t n = 1;

	memset(p, 0, sizeof(*p));
	if (!(p->dir = tl_tmpdir(tag)))
		return -1;
	snprintf(p->log, sizeof(p->log), "%s/%s.log", p->dir, prog);
	snprintf(ready, sizeof(ready), "%s ready ", prog);
	for (size_t i = 0; args && args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if ((p->pid = tl_spawn(p->log, (char *const *)argv, NULL)) < 0)
		p->pid = 0;
	else
		tl_live_add(p->pid);
	if (p->pid > 0 && tl_wait_log(p->pid, p->log, ready, 15000) == 0)
		return 0;
	tl_sim_stop(p, false);
	return -1;
}

int tl_sim_stop(struct tl_sim *p, bool keep)
{
	int status = -1;

	if (p->pid > 0) {
		status = tl_stop(p->pid, SIGTERM, 5000);
		tl_live_del(p->pid);
		p->pid = 0;
	}
	if (p->dir && !keep)
		tl_rmrf(p->dir);
	free(p->dir);
	p->dir = NULL;
	return status;
}

int tl_wait_port(const char *host, int port, int timeout_ms)
{
	long long deadline = hive_mono_ms() + timeout_ms;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	do {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd >= 0) {
			int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
			close(fd);
			if (ok)
				return 0;
		}
		usleep(20000);
	} while (hive_mono_ms() < deadline);
	return -1;
}

int tl_wait_until(int timeout_ms, bool (*pred)(void *arg), void *arg)
{
	long long deadline = hive_mono_ms() + timeout_ms;

	do {
		if (pred(arg))
			return 0;
		usleep(50000);
	} while (hive_mono_ms() < deadline);
	return pred(arg) ? 0 : -1;
}

struct tl_buf {
	char *data;
	size_t len;
};

static size_t tl_collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct tl_buf *b = arg;
	size_t n = size * nmemb;
	char *nd = realloc(b->data, b->len + n + 1);

	if (!nd)
		return 0;
	b->data = nd;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

int tl_http(const char *method, const char *url, const char *const headers[],
	    const char *body, char **out_body, long *out_status)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct tl_buf b = { 0 };
	CURLcode rc;

	if (out_body)
		*out_body = NULL;
	if (out_status)
		*out_status = 0;
	if (!c)
		return -1;
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	if (body)
		hl = curl_slist_append(hl, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tl_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK && out_status)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, out_status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	if (out_body)
		*out_body = b.data;
	else
		free(b.data);
	return rc == CURLE_OK ? 0 : -1;
}

json_t *tl_http_json(const char *method, const char *url, const char *const headers[],
		     const char *body, long *out_status)
{
	char *text = NULL;
	json_t *j = NULL;

	if (tl_http(method, url, headers, body, &text, out_status) == 0 && text)
		j = json_loads(text, JSON_DECODE_ANY, NULL);
	free(text);
	return j;
}

json_t *tl_local_json(const char *method, int port, const char *path, const char *body,
		      long *out_status)
{
	char url[256];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	return tl_http_json(method, url, NULL, body, out_status);
}

void tl_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int tl_env_int(const char *name, int def)
{
	const char *s = getenv(name);

	return s && atoi(s) > 0 ? atoi(s) : def;
}

long tl_proc_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t n = strlen(field);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

double tl_proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return 0;
	/* The command name may hold spaces: fields start after the last ')'. */
	if (!fgets(buf, sizeof(buf), f) || !(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		ut = st = 0;
	fclose(f);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}
