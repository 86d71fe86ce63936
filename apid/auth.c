/* auth — the API's bearer token (see auth.h). */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/md.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hive/cfg.h"
#include "hive/log.h"

#define TOKEN_RANDOM_BYTES 32

/* A token is printable ASCII without spaces: it travels in a header. */
static bool token_chars_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return n > 0;
}

/* mkdir -p for the token file's parent, new directories 0700. */
static int make_parents(const char *path, char *err, size_t errlen)
{
	char dir[HIVE_CFG_PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(dir)) {
		snprintf(err, errlen, "http.auth.token_file: path too long");
		return -1;
	}
	memcpy(dir, path, n + 1);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "http.auth.token_file: cannot create %s: %s", dir,
				 strerror(errno));
			return -1;
		}
		*p = '/';
	}
	return 0;
}

/* 0 = read, 1 = no such file, -1 = error. */
static int token_read(const char *path, char *token, size_t len, char *err, size_t errlen)
{
	char buf[APID_TOKEN_MAX + 2];
	struct stat st;
	ssize_t n;
	size_t end;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "http.auth.token_file: %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "http.auth.token_file: %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & 077)
		log_warnx("api token file readable by others file=%s mode=%03o (chmod 600 it)",
			  path, (unsigned)(st.st_mode & 0777));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "http.auth.token_file: %s: %s", path, strerror(errno));
		return -1;
	}
	end = (size_t)n;
	while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r' ||
			   buf[end - 1] == ' ' || buf[end - 1] == '\t'))
		end--;
	if (end >= len || end > APID_TOKEN_MAX) {
		snprintf(err, errlen, "http.auth.token_file: %s: token longer than %d characters",
			 path, APID_TOKEN_MAX);
		return -1;
	}
	if (!token_chars_ok(buf, end)) {
		snprintf(err, errlen,
			 "http.auth.token_file: %s: empty, or not one word of printable ASCII",
			 path);
		return -1;
	}
	if (end < APID_TOKEN_MIN) {
		snprintf(err, errlen, "http.auth.token_file: %s: token shorter than %d characters",
			 path, APID_TOKEN_MIN);
		return -1;
	}
	memcpy(token, buf, end);
	token[end] = '\0';
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

/* Writes a new token to a private temporary file, then link(2)s it into
 * place: the file appears whole, 0600, and a token file another apid wrote
 * meanwhile is kept (EEXIST → read that one). */
static int token_create(const char *path, char *token, size_t len, char *err, size_t errlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[TOKEN_RANDOM_BYTES];
	char tmp[HIVE_CFG_PATH_MAX + 32], line[2 * TOKEN_RANDOM_BYTES + 2];
	size_t got = 0;
	int fd = -1, rc = -1;

	if (len < 2 * TOKEN_RANDOM_BYTES + 1) {
		snprintf(err, errlen, "api token buffer too small");
		return -1;
	}
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "getrandom: %s", strerror(errno));
			return -1;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		line[2 * i] = hex[raw[i] >> 4];
		line[2 * i + 1] = hex[raw[i] & 15];
	}
	explicit_bzero(raw, sizeof(raw));
	line[2 * TOKEN_RANDOM_BYTES] = '\n';
	line[2 * TOKEN_RANDOM_BYTES + 1] = '\0';
	/* Registered before anything can log it. */
	memcpy(token, line, 2 * TOKEN_RANDOM_BYTES);
	token[2 * TOKEN_RANDOM_BYTES] = '\0';
	hive_log_secret(token);

	if (make_parents(path, err, errlen) < 0)
		goto fail;
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "http.auth.token_file: cannot create %s: %s", tmp,
			 strerror(errno));
		goto fail;
	}
	if (fchmod(fd, 0600) != 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line) ||
	    fsync(fd) != 0) {
		snprintf(err, errlen, "http.auth.token_file: cannot write %s: %s", tmp,
			 strerror(errno));
		goto fail;
	}
	close(fd);
	fd = -1;
	if (link(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		if (e == EEXIST) {
			hive_log_forget_secret(token);
			rc = token_read(path, token, len, err, errlen);
			if (rc == 0) {
				hive_log_secret(token);
				log_info("api token read file=%s (written meanwhile by another process)",
					 path);
			} else if (rc == 1) {
				snprintf(err, errlen, "http.auth.token_file: %s vanished", path);
				rc = -1;
			}
			explicit_bzero(line, sizeof(line));
			return rc;
		}
		snprintf(err, errlen, "http.auth.token_file: cannot create %s: %s", path,
			 strerror(e));
		goto fail;
	}
	unlink(tmp);
	log_info("api token generated file=%s mode=0600", path);
	rc = 0;
fail:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	explicit_bzero(line, sizeof(line));
	return rc;
}

int apid_auth_resolve(const struct hive_cfg *cfg, char *token, size_t len,
		      char *err, size_t errlen)
{
	const char *given = cfg->http.auth.token;
	const char *path = cfg->http.auth.token_file;
	int rc;

	if (given[0]) {
		if (strlen(given) >= len || !token_chars_ok(given, strlen(given))) {
			snprintf(err, errlen,
				 "http.auth.token: must be one word of printable ASCII");
			return -1;
		}
		if (strlen(given) < APID_TOKEN_MIN) {
			snprintf(err, errlen, "http.auth.token: shorter than %d characters",
				 APID_TOKEN_MIN);
			return -1;
		}
		hive_log_secret(given);
		snprintf(token, len, "%s", given);
		log_info("api token from=config");
		return 0;
	}
	if (!path[0]) {
		snprintf(err, errlen, "http.auth: neither token nor token_file is set");
		return -1;
	}
	rc = token_read(path, token, len, err, errlen);
	if (rc == 0) {
		hive_log_secret(token);
		log_info("api token read file=%s", path);
		return 0;
	}
	if (rc < 0)
		return -1;
	return token_create(path, token, len, err, errlen);
}

/* ------------------------------------------------------------ roles */

static const char *const role_names[] = {
	[APID_ROLE_NONE] = "none",
	[APID_ROLE_VIEWER] = "viewer",
	[APID_ROLE_OPERATOR] = "operator",
	[APID_ROLE_ADMIN] = "admin",
};

const char *apid_role_name(enum apid_role role)
{
	return role >= APID_ROLE_NONE && role <= APID_ROLE_ADMIN ? role_names[role] : "none";
}

enum apid_role apid_role_parse(const char *name)
{
	for (int i = APID_ROLE_VIEWER; i <= APID_ROLE_ADMIN; i++)
		if (name && strcmp(name, role_names[i]) == 0)
			return (enum apid_role)i;
	return APID_ROLE_NONE;
}

/* Who else writes an actor into actions and audit rows: apid's own parts,
 * the fallbacks, and the names the API gives. A token of such a name
 * would make the audit lie. */
static const char *const reserved_names[] = {
	"enforcer", "balancer", "alerts", "answers", "api", "apid", "notify", "scheduler",
	"system", "powerhive", "root", "hivectl", APID_TOKEN_BOOTSTRAP, APID_TOKEN_ANONYMOUS,
	NULL,
};

const char *apid_token_name_refused(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > APID_TOKEN_NAME_MAX)
		return "a name is 1 to 64 characters";
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return "a name is letters, digits, '.', '_' and '-', beginning with a "
			       "letter or digit";
	}
	for (size_t i = 0; reserved_names[i]; i++)
		if (strcasecmp(name, reserved_names[i]) == 0)
			return "reserved: apid itself writes this name into the audit";
	return NULL;
}

void apid_token_hash(const char *token, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char sum[32];

	mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)token,
		   strlen(token), sum);
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[sum[i] >> 4];
		hex[2 * i + 1] = digits[sum[i] & 15];
	}
	hex[64] = '\0';
	explicit_bzero(sum, sizeof(sum));
}

int apid_token_generate(char token[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[TOKEN_RANDOM_BYTES];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		token[2 * i] = digits[raw[i] >> 4];
		token[2 * i + 1] = digits[raw[i] & 15];
	}
	token[64] = '\0';
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

bool apid_auth_bearer_token(const char *header, char *out, size_t len)
{
	size_t got;

	if (!header)
		return false;
	while (*header == ' ' || *header == '\t')
		header++;
	if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
		return false;
	header += 6;
	while (*header == ' ' || *header == '\t')
		header++;
	got = strlen(header);
	while (got > 0 && (header[got - 1] == ' ' || header[got - 1] == '\t'))
		got--;
	if (got == 0 || got >= len)
		return false;
	memcpy(out, header, got);
	out[got] = '\0';
	return true;
}

/* ------------------------------------------------------------ failed sign-ins */

/* A fixed table, 8 ways per bucket of the address's hash: bounded memory
 * whatever the number of addresses; a full bucket forgets its oldest
 * unlocked address first. */
#define LIMIT_BUCKETS 128
#define LIMIT_WAYS    8
#define LIMIT_ADDR    48     /* an IPv6 address as text, with room */

struct limit_slot {
	char addr[LIMIT_ADDR];
	long long first_ms;      /* the window's first failure */
	long long last_ms;
	long long locked_until;
	int fails;
};

struct apid_auth_limit {
	pthread_mutex_t mu;
	unsigned used;           /* slots ever taken: 0 skips the lookup */
	unsigned long long failed, refused;
	struct limit_slot slots[LIMIT_BUCKETS][LIMIT_WAYS];
};

struct apid_auth_limit *apid_auth_limit_new(void)
{
	struct apid_auth_limit *l = calloc(1, sizeof(*l));

	if (l)
		pthread_mutex_init(&l->mu, NULL);
	return l;
}

void apid_auth_limit_free(struct apid_auth_limit *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static struct limit_slot *limit_bucket(struct apid_auth_limit *l, const char *addr)
{
	uint32_t h = 2166136261u;

	for (const char *p = addr; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return l->slots[h % LIMIT_BUCKETS];
}

static struct limit_slot *limit_find(struct apid_auth_limit *l, const char *addr)
{
	struct limit_slot *b = limit_bucket(l, addr);

	for (int i = 0; i < LIMIT_WAYS; i++)
		if (b[i].addr[0] && strncmp(b[i].addr, addr, LIMIT_ADDR - 1) == 0)
			return &b[i];
	return NULL;
}

long apid_auth_limit_locked(struct apid_auth_limit *l, const char *addr, long long now_ms)
{
	struct limit_slot *s;
	long wait = 0;

	if (!l || !addr)
		return 0;
	pthread_mutex_lock(&l->mu);
	if (l->used && (s = limit_find(l, addr)) && s->locked_until > now_ms) {
		wait = (long)((s->locked_until - now_ms + 999) / 1000);
		l->refused++;
	}
	pthread_mutex_unlock(&l->mu);
	return wait;
}

void apid_auth_limit_fail(struct apid_auth_limit *l, const char *addr, long long now_ms)
{
	struct limit_slot *s, *b;

	if (!l || !addr)
		return;
	pthread_mutex_lock(&l->mu);
	l->failed++;
	if (!(s = limit_find(l, addr))) {
		b = limit_bucket(l, addr);
		s = &b[0];
		for (int i = 0; i < LIMIT_WAYS; i++) {
			bool locked = b[i].locked_until > now_ms, s_locked = s->locked_until > now_ms;
			if (!b[i].addr[0]) {
				s = &b[i];
				break;
			}
			if ((s_locked && !locked) || (s_locked == locked && b[i].last_ms < s->last_ms))
				s = &b[i];
		}
		memset(s, 0, sizeof(*s));
		snprintf(s->addr, sizeof(s->addr), "%s", addr);
		l->used++;
	}
	if (now_ms - s->first_ms > APID_AUTH_FAIL_WINDOW_MS || s->fails == 0) {
		s->first_ms = now_ms;
		s->fails = 0;
	}
	s->last_ms = now_ms;
	if (++s->fails >= APID_AUTH_FAIL_MAX) {
		s->locked_until = now_ms + APID_AUTH_LOCK_MS;
		s->fails = 0;
		log_warnx("http sign-ins locked out addr=%s failures=%d seconds=%d", addr,
			  APID_AUTH_FAIL_MAX, APID_AUTH_LOCK_MS / 1000);
	}
	pthread_mutex_unlock(&l->mu);
}

void apid_auth_limit_counts(struct apid_auth_limit *l, unsigned long long *failed,
			    unsigned long long *refused)
{
	*failed = *refused = 0;
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	*failed = l->failed;
	*refused = l->refused;
	pthread_mutex_unlock(&l->mu);
}

bool apid_auth_bearer_ok(const char *header, const char *token)
{
	char got[APID_TOKEN_MAX + 1];
	size_t want, n, i;
	unsigned diff;

	if (!token || !token[0] || !apid_auth_bearer_token(header, got, sizeof(got)))
		return false;
	n = strlen(got);
	want = strlen(token);
	/* Work depends on the token's length only: every byte of it is
	 * compared, a shorter candidate reads as zeros. */
	diff = n != want;
	for (i = 0; i < want; i++) {
		unsigned char c = i < n ? (unsigned char)got[i] : 0;
		diff |= (unsigned)(c ^ (unsigned char)token[i]);
	}
	explicit_bzero(got, sizeof(got));
	return diff == 0;
}
