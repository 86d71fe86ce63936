/* testlib — helpers for tests that run real PowerHive processes on loopback:
 * spawn and stop daemons, free ports, temp dirs, HTTP with libcurl. */
#ifndef HIVE_TESTLIB_H
#define HIVE_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#include "hive/clock.h"   /* hive_mono_ms, hive_wall_ms */

/* Path of a built program: "$HIVE_BIN/<name>" (HIVE_BIN defaults to "bin").
 * Returns a static buffer per call slot (up to 8 live results). */
const char *tl_bin(const char *name);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int tl_free_port(void);

/* A fresh directory under $TMPDIR (malloc'd path), removed by tl_rmrf. */
char *tl_tmpdir(const char *tag);
void tl_rmrf(const char *path);
/* Writes text to path; 0 / -1. */
int tl_write_file(const char *path, const char *text);
/* Reads a whole file (malloc'd, NUL-terminated) or NULL. */
char *tl_read_file(const char *path);

/* Runs cmd with sh -c: its exit status (-1 when it did not exit), and all
 * its stdout in *out (malloc'd; NULL when it could not run). out may be
 * NULL. */
int tl_run(const char *cmd, char **out);

/* tl_run of a printf-formatted command with its stderr too (2>&1); on a
 * non-zero exit the command and its output go to stderr unless quiet. */
int tl_sh(char **out, bool quiet, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Starts argv[0] with stdout+stderr appended to log_path (NULL: inherit),
 * extra environment "K=V" strings in env (NULL-terminated, may be NULL).
 * Returns the pid, or -1. */
pid_t tl_spawn(const char *log_path, char *const argv[], char *const env[]);
/* Sends sig and waits up to timeout_ms for exit (then SIGKILL). Returns the
 * exit status as waitpid gives it, or -1. */
int tl_stop(pid_t pid, int sig, int timeout_ms);
/* True while the process runs (reaps it if it exited). */
bool tl_alive(pid_t pid);

/* The runs a test has started and not yet stopped, so that a failed test
 * leaks none: tl_live_add after tl_spawn, tl_live_del when stopped (it
 * holds 8; more are not tracked), tl_live_kill_all in the teardown
 * (SIGKILL, then waits up to 2 s for each). */
void tl_live_add(pid_t pid);
void tl_live_del(pid_t pid);
void tl_live_kill_all(void);

/* Waits until the file log holds line (checked every 10 ms) while pid runs.
 * 0, or -1 when pid exited or timeout_ms passed, with the log on stderr. */
int tl_wait_log(pid_t pid, const char *log, const char *line, int timeout_ms);

/* A simulator a test runs itself, outside a suite: bin/<prog> args in a
 * fresh tl_tmpdir(tag) that holds its log, <dir>/<prog>.log, and tracked
 * by tl_live_add. tl_sim_start waits 15 s for its "<prog> ready " line;
 * 0, or -1 with the log on stderr and nothing left behind. */
struct tl_sim {
	pid_t pid;               /* 0: not running */
	char *dir;
	char log[512];
};
int tl_sim_start(struct tl_sim *p, const char *prog, const char *tag, const char *const args[]);
/* SIGTERM (SIGKILL after 5 s); the dir goes unless keep. The exit status
 * as waitpid gives it, or -1 when it was not running. */
int tl_sim_stop(struct tl_sim *p, bool keep);

/* Waits until a TCP connect to host:port succeeds. 0 / -1 on timeout. */
int tl_wait_port(const char *host, int port, int timeout_ms);

/* Polls pred(arg) every 50 ms until true or timeout. 0 / -1. */
int tl_wait_until(int timeout_ms, bool (*pred)(void *arg), void *arg);

/* One HTTP request. headers: NULL-terminated "Name: value" list or NULL;
 * body may be NULL. *out_body (malloc'd, may be NULL) and *out_status are
 * set. Returns 0 when a response arrived, -1 otherwise. */
int tl_http(const char *method, const char *url, const char *const headers[],
	    const char *body, char **out_body, long *out_status);
/* The same, parsing the answer as JSON (NULL when not JSON). */
json_t *tl_http_json(const char *method, const char *url, const char *const headers[],
		     const char *body, long *out_status);
/* tl_http_json to http://127.0.0.1:<port><path>, no headers; out_status
 * may be NULL. */
json_t *tl_local_json(const char *method, int port, const char *path, const char *body,
		      long *out_status);

/* Sleeps ms milliseconds, across signals. */
void tl_sleep_ms(int ms);

/* The positive integer in environment variable name, or def. */
int tl_env_int(const char *name, int def);

/* A "<field>: <n> kB" line of /proc/<pid>/status (VmRSS, VmHWM...) in KiB,
 * or -1. */
long tl_proc_kib(pid_t pid, const char *field);
/* CPU seconds (user + system) pid has used so far; 0 when unknown. */
double tl_proc_cpu_s(pid_t pid);

#endif
