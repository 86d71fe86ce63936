/* store — apid's SQLite database: opening connections and the schema.
 *
 * The schema is a versioned list of migrations; PRAGMA user_version holds
 * the number of the last one applied. apid refuses a database whose version
 * is newer than the binary (a downgrade would misread it). Every connection
 * runs in WAL with synchronous=NORMAL, foreign_keys=ON and a busy timeout;
 * the database with auto_vacuum=INCREMENTAL (retention gives space back).
 * docs/apid.md describes the tables; the HTTP side reads them directly.
 */
#ifndef APID_STORE_H
#define APID_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sqlite3.h>

/* PRAGMA application_id of a PowerHive database ("PHIV"). */
#define APID_STORE_APP_ID 0x50484956

/* Milliseconds a connection waits for a lock before SQLITE_BUSY. */
#define APID_STORE_BUSY_MS 5000

/* The schema version this binary writes (the number of migrations). */
int apid_store_schema_version(void);

/* Opens the database read-write, creating the file 0600 (and its directory
 * 0700) when missing, and migrates it to the newest schema. A database file
 * group or others may read is narrowed to 0600 with a warning; a directory
 * they may enter is warned about. secure_delete is on. Only the writer thread
 * holds this connection. NULL with a message in err; close with
 * sqlite3_close. */
sqlite3 *apid_store_open(const char *path, char *err, size_t errlen);

/* Opens an existing database read-only: the one way every reader opens it
 * (HTTP worker threads, control, feed, health, the roster). Refuses
 * another application's file and a schema version other than this
 * binary's. NULL with a message in err; close with sqlite3_close. */
sqlite3 *apid_store_open_readonly(const char *path, char *err, size_t errlen);

/* Applies the migrations after the database's version up to `target`
 * (apid_store_open uses apid_store_schema_version()); each one in its own
 * transaction. Tests use it to build old databases. 0 / -1 with err. */
int apid_store_migrate(sqlite3 *db, int target, char *err, size_t errlen);

/* The one-time VACUUM that turns incremental vacuum on (databases made
 * before schema 5) fits when free_db (on the database's file system,
 * db_dir) and free_tmp (SQLite's temporary directory, tmp_dir; the same
 * file system when same_fs) can hold data bytes twice over: a copy, and
 * the WAL. 0, or -1 with a message that says what to do. */
int apid_store_vacuum_room(long long data, long long free_db, long long free_tmp,
			   bool same_fs, const char *db_dir, const char *tmp_dir, char *err,
			   size_t errlen);
/* A full VACUUM (and a truncating checkpoint) of the writer's database at
 * path, after apid_store_vacuum_room says the disk can hold it; `why` goes
 * to the log. 0 / -1 with err. */
int apid_store_vacuum(sqlite3 *db, const char *path, const char *why, char *err,
		      size_t errlen);
/* PRAGMA user_version, or -1. */
int apid_store_version(sqlite3 *db);

/* Runs sql (no result rows); 0 / -1 with "<what>: <sqlite message>". */
int apid_store_exec(sqlite3 *db, const char *sql, const char *what, char *err,
		    size_t errlen);

#endif
