/* auth — the API's bearer token (see auth.h). */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
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

bool apid_auth_bearer_ok(const char *header, const char *token)
{
	size_t want, got, i;
	unsigned diff;

	if (!header || !token || !token[0])
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
	want = strlen(token);
	/* Work depends on the token's length only: every byte of it is
	 * compared, a shorter candidate reads as zeros. */
	diff = got != want;
	for (i = 0; i < want; i++) {
		unsigned char c = i < got ? (unsigned char)header[i] : 0;
		diff |= (unsigned)(c ^ (unsigned char)token[i]);
	}
	return diff == 0;
}
