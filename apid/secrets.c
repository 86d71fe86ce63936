/* secrets — see secrets.h. */
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <mbedtls/aes.h>
#include <mbedtls/base64.h>
#include <mbedtls/gcm.h>

#include "hive/clock.h"
#include "hive/log.h"
#include "hive/mac.h"
#include "store.h"

#define PREFIX      "enc1:"
#define PREFIX_LEN  5
#define ID_CHARS    8
#define NONCE_BYTES 12
#define TAG_BYTES   16
#define RAW_MAX     (NONCE_BYTES + APID_SECRET_MAX + TAG_BYTES)
#define B64_MAX     (4 * ((RAW_MAX + 2) / 3) + 1)
#define STORED_MAX  (PREFIX_LEN + ID_CHARS + 1 + B64_MAX)
#define PATH_MAX_   4096

struct apid_secrets {
	unsigned char key[APID_SECRETS_KEY_BYTES];
	char id[ID_CHARS + 1];
	int lock_fd;          /* the key file's directory, flock()ed; -1 none */
};

static const char *const columns[] = { "api_key", "unlock_pass" };

/* ------------------------------------------------------------ the key */

/* The first 4 bytes of AES(key, 0^16): names the key, reveals nothing. */
static int key_id(const unsigned char *key, char out[ID_CHARS + 1])
{
	static const unsigned char zero[16];
	unsigned char block[16];
	mbedtls_aes_context aes;
	int rc;

	mbedtls_aes_init(&aes);
	rc = mbedtls_aes_setkey_enc(&aes, key, APID_SECRETS_KEY_BYTES * 8);
	if (rc == 0)
		rc = mbedtls_aes_crypt_ecb(&aes, MBEDTLS_AES_ENCRYPT, zero, block);
	mbedtls_aes_free(&aes);
	if (rc != 0)
		return -1;
	snprintf(out, ID_CHARS + 1, "%02x%02x%02x%02x", block[0], block[1], block[2], block[3]);
	return 0;
}

static void dir_of(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, len, ".");
	else if (slash == path)
		snprintf(out, len, "/");
	else
		snprintf(out, len, "%.*s", (int)(slash - path), path);
}

void apid_secrets_key_path(const char *configured, const char *db_path, char *out, size_t len)
{
	char dir[PATH_MAX_];

	if (configured && *configured) {
		snprintf(out, len, "%s", configured);
		return;
	}
	dir_of(db_path, dir, sizeof(dir));
	snprintf(out, len, "%s/%s", dir, APID_SECRETS_KEY_FILE);
}

static void fsync_dir(const char *path)
{
	char dir[PATH_MAX_];
	int fd;

	dir_of(path, dir, sizeof(dir));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* 0 = read into key, 1 = no such file, -1 = refused (err). */
static int key_read(const char *path, unsigned char *key, char *err, size_t errlen)
{
	unsigned char buf[APID_SECRETS_KEY_BYTES + 1];
	struct stat sb;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "secrets key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "secrets key file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (sb.st_mode & 077) {
		snprintf(err, errlen,
			 "secrets key file %s: mode %03o lets group or others read it; chmod 600 it"
			 " (and think whether it leaked)", path, (unsigned)(sb.st_mode & 0777));
		close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n != APID_SECRETS_KEY_BYTES) {
		snprintf(err, errlen, "secrets key file %s: holds %s bytes, expected exactly %d",
			 path, n < 0 ? "unreadable" : n > APID_SECRETS_KEY_BYTES ? "more than 32" :
			 n == 0 ? "no" : "fewer than 32", APID_SECRETS_KEY_BYTES);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	memcpy(key, buf, APID_SECRETS_KEY_BYTES);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

/* Writes key to path whole, 0600: a temporary file, fsync, then link (keep
 * one that appeared meanwhile: EEXIST) or rename (replace). 0 / -1. */
static int key_write(const char *path, const unsigned char *key, bool replace, char *err,
		     size_t errlen)
{
	char tmp[PATH_MAX_ + 32];
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "secrets key file %s: cannot create: %s", tmp, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) < 0 || write(fd, key, APID_SECRETS_KEY_BYTES) != APID_SECRETS_KEY_BYTES ||
	    fsync(fd) < 0) {
		snprintf(err, errlen, "secrets key file %s: cannot write: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	rc = replace ? rename(tmp, path) : link(tmp, path);
	if (rc < 0 && !(errno == EEXIST && !replace)) {
		snprintf(err, errlen, "secrets key file %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (!replace)
		unlink(tmp);
	fsync_dir(path);
	return 0;
}

static int key_new(unsigned char *key, char *err, size_t errlen)
{
	size_t got = 0;

	while (got < APID_SECRETS_KEY_BYTES) {
		ssize_t n = getrandom(key + got, APID_SECRETS_KEY_BYTES - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "secrets key: getrandom: %s", strerror(errno));
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

/* The shared (apid) or exclusive (rotation) lock on the key file's
 * directory; the fd, or -1 with err. */
static int dir_lock(const char *key_path, bool exclusive, char *err, size_t errlen)
{
	char dir[PATH_MAX_];
	int fd;

	dir_of(key_path, dir, sizeof(dir));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "secrets key directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
		snprintf(err, errlen, exclusive ?
			 "secrets key directory %s is locked: apid is running; stop it first" :
			 "secrets key directory %s is locked: a key rotation"
			 " (apid --rotate-secrets-key) is running", dir);
		close(fd);
		return -1;
	}
	return fd;
}

static struct apid_secrets *handle(const unsigned char *key, int lock_fd)
{
	struct apid_secrets *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	memcpy(s->key, key, APID_SECRETS_KEY_BYTES);
	if (key_id(s->key, s->id) < 0) {
		free(s);
		return NULL;
	}
	s->lock_fd = lock_fd;
	return s;
}

void apid_secrets_free(struct apid_secrets *s)
{
	if (!s)
		return;
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	explicit_bzero(s->key, sizeof(s->key));
	free(s);
}

const char *apid_secrets_key_id(const struct apid_secrets *s)
{
	return s->id;
}

/* ------------------------------------------------------------ values */

bool apid_secrets_sealed(const char *stored)
{
	return stored && strncmp(stored, PREFIX, PREFIX_LEN) == 0;
}

/* The additional data: the column and the miner, so a value only opens
 * where it was sealed. */
static size_t aad(const char *column, const char *mac, unsigned char *out, size_t len)
{
	char norm[HIVE_MAC_LEN];
	int n;

	if (hive_mac_normalise(mac, norm) < 0)
		snprintf(norm, sizeof(norm), "%.17s", mac ? mac : "");
	n = snprintf((char *)out, len, "powerhive/%s/%s", column, norm);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

char *apid_secrets_seal(const struct apid_secrets *s, const char *column, const char *mac,
			const char *plain)
{
	unsigned char raw[RAW_MAX], ad[96];
	size_t n = strlen(plain), adn, b64n;
	mbedtls_gcm_context gcm;
	char *out;
	int rc;

	if (!*plain)
		return strdup("");
	if (n > APID_SECRET_MAX || getrandom(raw, NONCE_BYTES, 0) != NONCE_BYTES)
		return NULL;
	adn = aad(column, mac, ad, sizeof(ad));
	mbedtls_gcm_init(&gcm);
	rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, s->key, APID_SECRETS_KEY_BYTES * 8);
	if (rc == 0)
		rc = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, n, raw, NONCE_BYTES, ad, adn,
					       (const unsigned char *)plain, raw + NONCE_BYTES,
					       TAG_BYTES, raw + NONCE_BYTES + n);
	mbedtls_gcm_free(&gcm);
	if (rc != 0 || !(out = malloc(STORED_MAX)))
		return NULL;
	memcpy(out, PREFIX, PREFIX_LEN);
	memcpy(out + PREFIX_LEN, s->id, ID_CHARS);
	out[PREFIX_LEN + ID_CHARS] = ':';
	if (mbedtls_base64_encode((unsigned char *)out + PREFIX_LEN + ID_CHARS + 1, B64_MAX, &b64n,
				  raw, NONCE_BYTES + n + TAG_BYTES) != 0) {
		free(out);
		return NULL;
	}
	out[PREFIX_LEN + ID_CHARS + 1 + b64n] = '\0';
	return out;
}

/* The key id a sealed value names, or "" when it names none. */
static void stored_id(const char *stored, char id[ID_CHARS + 1])
{
	id[0] = '\0';
	if (apid_secrets_sealed(stored) && strlen(stored) > PREFIX_LEN + ID_CHARS &&
	    stored[PREFIX_LEN + ID_CHARS] == ':')
		snprintf(id, ID_CHARS + 1, "%.*s", ID_CHARS, stored + PREFIX_LEN);
}

int apid_secrets_reveal(const struct apid_secrets *s, const char *column, const char *mac,
			const char *stored, char *out, size_t outlen, char *err, size_t errlen)
{
	unsigned char raw[RAW_MAX + 3], ad[96];
	char id[ID_CHARS + 1];
	const char *b64;
	size_t rawn, n, adn;
	mbedtls_gcm_context gcm;
	int rc;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if (!stored || !*stored)
		return 0;
	if (!apid_secrets_sealed(stored)) {
		snprintf(err, errlen, "%s is not encrypted", column);
		return -1;
	}
	stored_id(stored, id);
	if (!s || strlen(id) != ID_CHARS || strcmp(id, s->id) != 0) {
		snprintf(err, errlen, "%s is encrypted under key id %s, not this key file's (%s)",
			 column, id[0] ? id : "?", s ? s->id : "none");
		return -1;
	}
	b64 = stored + PREFIX_LEN + ID_CHARS + 1;
	if (strlen(b64) > B64_MAX ||
	    mbedtls_base64_decode(raw, sizeof(raw), &rawn, (const unsigned char *)b64,
				  strlen(b64)) != 0 ||
	    rawn < NONCE_BYTES + TAG_BYTES || rawn - NONCE_BYTES - TAG_BYTES >= outlen) {
		snprintf(err, errlen, "%s: malformed encrypted value", column);
		return -1;
	}
	n = rawn - NONCE_BYTES - TAG_BYTES;
	adn = aad(column, mac, ad, sizeof(ad));
	mbedtls_gcm_init(&gcm);
	rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, s->key, APID_SECRETS_KEY_BYTES * 8);
	if (rc == 0)
		rc = mbedtls_gcm_auth_decrypt(&gcm, n, raw, NONCE_BYTES, ad, adn,
					      raw + NONCE_BYTES + n, TAG_BYTES, raw + NONCE_BYTES,
					      (unsigned char *)out);
	mbedtls_gcm_free(&gcm);
	if (rc != 0 || memchr(out, '\0', n)) {
		explicit_bzero(out, outlen);
		out[0] = '\0';
		snprintf(err, errlen, "%s: encrypted value does not authenticate (altered, or"
			 " moved from another miner)", column);
		return -1;
	}
	out[n] = '\0';
	return 0;
}

/* ------------------------------------------------------------ the rows */

/* What the miners table holds: plaintext values, and the key ids of the
 * sealed ones (at most two kinds are expected; more are counted as
 * "others"). */
struct census {
	long long plain, sealed;
	char ids[2][ID_CHARS + 1];
	long long per_id[2], others;
};

static int census_take(sqlite3 *db, struct census *c, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	memset(c, 0, sizeof(*c));
	if (sqlite3_prepare_v2(db, "SELECT api_key, unlock_pass FROM miners", -1, &st, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "secrets: %s", sqlite3_errmsg(db));
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int i = 0; i < 2; i++) {
			const char *v = (const char *)sqlite3_column_text(st, i);
			char id[ID_CHARS + 1];
			int k;

			if (!v || !*v)
				continue;
			if (!apid_secrets_sealed(v)) {
				c->plain++;
				continue;
			}
			c->sealed++;
			stored_id(v, id);
			for (k = 0; k < 2; k++) {
				if (!c->ids[k][0])
					snprintf(c->ids[k], sizeof(c->ids[k]), "%s", id);
				if (strcmp(c->ids[k], id) == 0) {
					c->per_id[k]++;
					break;
				}
			}
			if (k == 2)
				c->others++;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "secrets: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* Every sealed value is under id (and there is at least one, when any). */
static bool census_all(const struct census *c, const char *id)
{
	return c->sealed == 0 ||
	       (!c->others && !c->ids[1][0] && strcmp(c->ids[0], id) == 0);
}

/* An audit row: a record for the operator, and the mark a VACUUM is owed
 * until one with action secrets.vacuum follows it. */
static int audit(sqlite3 *db, const char *action, json_t *detail, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	char *d = json_dumps(detail, JSON_COMPACT);
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT INTO audit(ts_ms, actor, action, target, detail)"
			       " VALUES(?1, 'apid', ?2, 'miners', ?3)", -1, &st, NULL) != SQLITE_OK) {
		free(d);
		snprintf(err, errlen, "secrets: audit: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, hive_wall_ms());
	sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, d, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	free(d);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "secrets: audit: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* Re-seals every value in one transaction: plaintext under `to`; sealed
 * under `from` (may be NULL) re-sealed under `to`. A value that does not
 * open stops it all (nothing changes). *count: values written. */
static int reseal(sqlite3 *db, const struct apid_secrets *from, const struct apid_secrets *to,
		  const char *action, long long *count, char *err, size_t errlen)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	char plain[APID_SECRET_MAX + 1], why[160];
	long long n = 0;
	int rc = -1, step;
	json_t *detail;

	if (apid_store_exec(db, "BEGIN IMMEDIATE", "secrets", err, errlen) < 0)
		return -1;
	/* Each row is updated where the scan stands (rowid order, which the
	 * update does not move). */
	if (sqlite3_prepare_v2(db, "SELECT mac, api_key, unlock_pass, rowid FROM miners", -1,
			       &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE miners SET api_key=?2, unlock_pass=?3 WHERE rowid=?1",
			       -1, &upd, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "secrets: %s", sqlite3_errmsg(db));
		goto out;
	}
	while ((step = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *mac = (const char *)sqlite3_column_text(sel, 0);
		bool changed = false;

		sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 3));
		for (int i = 0; i < 2; i++) {
			const char *v = (const char *)sqlite3_column_text(sel, i + 1);
			char *sealed;

			if (!v || !*v || (apid_secrets_sealed(v) && !from)) {
				sqlite3_bind_value(upd, i + 2, sqlite3_column_value(sel, i + 1));
				continue;
			}
			if (!apid_secrets_sealed(v)) {
				if (strlen(v) > APID_SECRET_MAX) {
					snprintf(err, errlen, "secrets: miner %s: %s longer than %d bytes",
						 mac, columns[i], APID_SECRET_MAX);
					goto out;
				}
				snprintf(plain, sizeof(plain), "%s", v);
			} else if (apid_secrets_reveal(from, columns[i], mac, v, plain, sizeof(plain),
						       why, sizeof(why)) < 0) {
				snprintf(err, errlen, "secrets: miner %s: %s; clear it (UPDATE miners SET"
					 " %s=NULL WHERE mac='%s') and set it again", mac, why,
					 columns[i], mac);
				goto out;
			}
			sealed = apid_secrets_seal(to, columns[i], mac, plain);
			explicit_bzero(plain, sizeof(plain));
			if (!sealed) {
				snprintf(err, errlen, "secrets: miner %s: cannot encrypt %s", mac,
					 columns[i]);
				goto out;
			}
			sqlite3_bind_text(upd, i + 2, sealed, -1, free);
			changed = true;
			n++;
		}
		if (!changed) {
			sqlite3_clear_bindings(upd);
			continue;
		}
		if (sqlite3_step(upd) != SQLITE_DONE) {
			snprintf(err, errlen, "secrets: %s", sqlite3_errmsg(db));
			goto out;
		}
		sqlite3_reset(upd);
		sqlite3_clear_bindings(upd);
	}
	if (step != SQLITE_DONE) {
		snprintf(err, errlen, "secrets: %s", sqlite3_errmsg(db));
		goto out;
	}
	detail = json_pack("{s:I,s:s}", "values", (json_int_t)n, "key_id", to->id);
	if (from && detail)
		json_object_set_new(detail, "old_key_id", json_string(from->id));
	rc = detail ? audit(db, action, detail, err, errlen) : -1;
	json_decref(detail);
	if (rc == 0)
		rc = apid_store_exec(db, "COMMIT", "secrets", err, errlen);
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	if (rc < 0)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	*count = n;
	return rc;
}

/* Whether a secrets.encrypt or secrets.rotate row has no secrets.vacuum
 * after it: the free pages may still hold what the values were. */
static bool vacuum_owed(sqlite3 *db)
{
	sqlite3_stmt *st;
	bool owed = false;

	if (sqlite3_prepare_v2(db,
			       "SELECT 1 FROM audit WHERE action IN ('secrets.encrypt', 'secrets.rotate')"
			       " AND id > coalesce((SELECT max(id) FROM audit"
			       " WHERE action = 'secrets.vacuum'), 0) LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return false;
	owed = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return owed;
}

/* Rewrites the whole database, so that the plaintext (or the old key's
 * ciphertext) an UPDATE left in free pages and in the WAL is gone. A disk
 * too full for it is not fatal: the values are sealed already; the next
 * start tries again. */
static void scrub(sqlite3 *db, const char *db_path)
{
	char err[1024];
	json_t *detail;

	if (!vacuum_owed(db))
		return;
	if (apid_store_vacuum(db, db_path, "secrets: no plaintext in free pages", err,
			      sizeof(err)) < 0) {
		sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
		log_warnx("secrets encrypted, but the database was not rewritten: free pages may"
			  " still hold the old values until it is; apid tries again at its next"
			  " start err=\"%s\"", err);
		return;
	}
	detail = json_object();
	if (apid_store_exec(db, "BEGIN IMMEDIATE", "secrets", err, sizeof(err)) < 0 ||
	    audit(db, "secrets.vacuum", detail, err, sizeof(err)) < 0 ||
	    apid_store_exec(db, "COMMIT", "secrets", err, sizeof(err)) < 0 ||
	    apid_store_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", "secrets", err,
			    sizeof(err)) < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		log_warnx("secrets vacuum not recorded err=\"%s\"", err);
	}
	json_decref(detail);
}

/* The key at path as a handle, creating it when allowed. NULL with err. */
static struct apid_secrets *load(const char *key_path, bool create, const struct census *c,
				 int lock_fd, char *err, size_t errlen)
{
	unsigned char key[APID_SECRETS_KEY_BYTES];
	struct apid_secrets *s;
	int rc = key_read(key_path, key, err, errlen);

	if (rc == 1 && !create) {
		snprintf(err, errlen,
			 "secrets key file %s is missing, and the database holds %lld values"
			 " encrypted under key id %s: restore the key file from the backup taken"
			 " with this database (nothing was changed)", key_path, c->sealed,
			 c->ids[0]);
		return NULL;
	}
	if (rc == 1) {
		if (key_new(key, err, errlen) < 0 || key_write(key_path, key, false, err, errlen) < 0)
			return NULL;
		/* Another apid may have linked its own first: use what is there. */
		if (key_read(key_path, key, err, errlen) != 0)
			return NULL;
		log_info("secrets key file created file=%s", key_path);
	} else if (rc < 0) {
		return NULL;
	}
	s = handle(key, lock_fd);
	explicit_bzero(key, sizeof(key));
	if (!s)
		snprintf(err, errlen, "secrets: out of memory");
	return s;
}

/* apid_secrets_start; a rotation holds the exclusive lock already. */
static struct apid_secrets *start(sqlite3 *db, const char *db_path, const char *key_path,
				  bool take_lock, char *err, size_t errlen)
{
	struct apid_secrets *s = NULL, *next = NULL;
	char next_path[PATH_MAX_ + 8], why[512];
	struct census c;
	long long n;
	int lock_fd = -1;

	if (census_take(db, &c, err, errlen) < 0)
		return NULL;
	if (take_lock && (lock_fd = dir_lock(key_path, false, err, errlen)) < 0)
		return NULL;
	if (!(s = load(key_path, c.sealed == 0, &c, lock_fd, err, errlen))) {
		if (lock_fd >= 0)
			close(lock_fd);
		return NULL;
	}
	snprintf(next_path, sizeof(next_path), "%s.next", key_path);
	if (!census_all(&c, s->id)) {
		/* A rotation that committed and stopped before its rename. */
		next = load(next_path, false, &c, -1, why, sizeof(why));
		if (next && census_all(&c, next->id) &&
		    rename(next_path, key_path) == 0) {
			fsync_dir(key_path);
			log_warnx("secrets key rotation finished at start (it stopped before"
				  " replacing the key file) key_id=%s", next->id);
			next->lock_fd = s->lock_fd;
			s->lock_fd = -1;
			apid_secrets_free(s);
			s = next;
			next = NULL;
		} else {
			snprintf(err, errlen,
				 "secrets key file %s has key id %s, but the database's secrets are"
				 " encrypted under key id %s%s: this is not their key file; restore"
				 " the one backed up with this database (nothing was changed)",
				 key_path, s->id, c.ids[0][0] && strcmp(c.ids[0], s->id) != 0 ?
				 c.ids[0] : c.ids[1], c.ids[1][0] || c.others ? " and others" : "");
			apid_secrets_free(next);
			apid_secrets_free(s);
			return NULL;
		}
	} else if (access(next_path, F_OK) == 0) {
		/* A rotation that stopped before its commit: the old key holds. */
		if (unlink(next_path) == 0)
			log_warnx("secrets key rotation had not finished; the key in force is"
				  " unchanged key_id=%s dropped=%s", s->id, next_path);
	}
	if (c.plain > 0) {
		if (reseal(db, NULL, s, "secrets.encrypt", &n, err, errlen) < 0) {
			apid_secrets_free(s);
			return NULL;
		}
		log_info("secrets encrypted values=%lld key_id=%s", n, s->id);
	}
	scrub(db, db_path);
	log_info("secrets ready key_file=%s key_id=%s encrypted=%lld", key_path, s->id,
		 c.sealed + c.plain);
	return s;
}

struct apid_secrets *apid_secrets_start(sqlite3 *db, const char *db_path, const char *key_path,
					char *err, size_t errlen)
{
	return start(db, db_path, key_path, true, err, errlen);
}

int apid_secrets_rotate(const char *db_path, const char *key_path, char *err, size_t errlen)
{
	unsigned char key[APID_SECRETS_KEY_BYTES];
	struct apid_secrets *old = NULL, *neu = NULL;
	char next_path[PATH_MAX_ + 8];
	sqlite3 *db = NULL;
	struct stat sb;
	long long n;
	int lock_fd, rc = -1;

	/* Files written by another user (root) would lock apid out of them. */
	if (stat(db_path, &sb) < 0) {
		snprintf(err, errlen, "no database at %s: %s", db_path, strerror(errno));
		return -1;
	}
	if (sb.st_uid != geteuid()) {
		snprintf(err, errlen, "run it as the user apid runs as (uid %u owns %s), not uid %u",
			 (unsigned)sb.st_uid, db_path, (unsigned)geteuid());
		return -1;
	}
	if ((lock_fd = dir_lock(key_path, true, err, errlen)) < 0)
		return -1;
	if (!(db = apid_store_open(db_path, err, errlen)))
		goto out;
	/* The start's checks and repairs first: a key that fits, no plaintext,
	 * no rotation half done. */
	if (!(old = start(db, db_path, key_path, false, err, errlen)))
		goto out;
	if (key_new(key, err, errlen) < 0 || !(neu = handle(key, -1)))
		goto out;
	snprintf(next_path, sizeof(next_path), "%s.next", key_path);
	/* The new key is on disk before any row depends on it. */
	if (key_write(next_path, key, true, err, errlen) < 0)
		goto out;
	if (reseal(db, old, neu, "secrets.rotate", &n, err, errlen) < 0) {
		unlink(next_path);
		goto out;
	}
	if (rename(next_path, key_path) < 0) {
		snprintf(err, errlen, "secrets key file %s: %s (the database is re-encrypted under"
			 " %s; apid finishes the rename at its next start)", key_path,
			 strerror(errno), next_path);
		goto out;
	}
	fsync_dir(key_path);
	log_info("secrets key rotated values=%lld old_key_id=%s key_id=%s", n, old->id, neu->id);
	scrub(db, db_path);
	rc = 0;
out:
	explicit_bzero(key, sizeof(key));
	apid_secrets_free(old);
	apid_secrets_free(neu);
	sqlite3_close(db);
	close(lock_fd);
	return rc;
}
