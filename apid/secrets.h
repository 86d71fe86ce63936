/* secrets — the miners' API keys and unlock passwords, encrypted at rest.
 *
 * miners.api_key and miners.unlock_pass hold "enc1:<key id>:<base64>":
 * AES-256-GCM under the key in the key file (database.secrets_key_file,
 * 32 random bytes, 0600), a fresh random 12-byte nonce per value, and the
 * column and the miner's MAC as additional data, so a value copied to
 * another row or column does not open. The key id is the first 4 bytes of
 * AES(key, 0^16) in hex: it tells which key sealed a value without
 * revealing it. An empty or NULL value stays as it is (no secret).
 *
 * At start (apid_secrets_start, on the writer's connection): the key file
 * is read, or created when absent and nothing in the database is
 * encrypted; a key file readable by group or others, or not 32 bytes, is
 * refused; so is one whose id is not the one the rows were sealed with.
 * Plaintext rows (a database from before) are encrypted in one
 * transaction, then the database is rewritten (VACUUM) and the WAL
 * truncated, so no plaintext stays in free pages or the WAL.
 *
 * Rotation (apid --rotate-secrets-key, apid stopped): a new key is written
 * beside the old one as <key file>.next, every value is re-sealed under it
 * in one transaction, then .next replaces the key file (rename). A crash
 * after the commit is finished at the next start (the rows name .next's
 * id); one before it leaves the old key in force and .next is dropped.
 * While apid runs it holds a shared lock on the key file's directory, so a
 * rotation refuses to run beside it.
 *
 * A handle is read-only once started: any thread may seal and reveal.
 */
#ifndef APID_SECRETS_H
#define APID_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <sqlite3.h>

#define APID_SECRETS_KEY_BYTES 32
#define APID_SECRET_MAX 1024        /* longest value sealed, bytes */
#define APID_SECRETS_KEY_FILE "secrets.key"

struct apid_secrets;

/* The key file's path: `configured` when set, else secrets.key in the
 * database's directory. */
void apid_secrets_key_path(const char *configured, const char *db_path, char *out,
			   size_t len);

/* Reads (or creates) the key file, checks it against the rows, encrypts
 * plaintext rows. db is apid_store_open's connection, outside a
 * transaction. NULL with a message in err, having changed no row. */
struct apid_secrets *apid_secrets_start(sqlite3 *db, const char *db_path, const char *key_path,
					char *err, size_t errlen);

/* Re-seals every value under a new key and replaces the key file (see
 * above). apid must be stopped. 0, or -1 with err (the old key stays in
 * force). */
int apid_secrets_rotate(const char *db_path, const char *key_path, char *err, size_t errlen);

void apid_secrets_free(struct apid_secrets *s);

/* 8 hex digits. */
const char *apid_secrets_key_id(const struct apid_secrets *s);

/* The stored form of plain for `column` ("api_key", "unlock_pass") of the
 * miner `mac`; malloc'd, NULL when out of memory or plain is too long. An
 * empty plain is returned as "" (nothing to hide). */
char *apid_secrets_seal(const struct apid_secrets *s, const char *column, const char *mac,
			const char *plain);

/* The plaintext of a stored value into out (NUL-terminated). "" or NULL
 * gives "". -1 with a reason in err (never the value) for a value that is
 * not sealed, sealed under another key, altered, or moved from another row
 * or column; s NULL refuses every sealed value. */
int apid_secrets_reveal(const struct apid_secrets *s, const char *column, const char *mac,
			const char *stored, char *out, size_t outlen, char *err, size_t errlen);

/* True when stored is in the sealed form (whichever key). */
bool apid_secrets_sealed(const char *stored);

#endif
