/* loop — a small event loop: file descriptors and timers, one thread.
 *
 * Every daemon runs in one: apid's scheduler, discoverd's probes, the
 * firmware client's curl sockets, the bus receive fds. Callbacks run on the
 * loop's thread; they may add or remove fds and timers, including their own.
 * Delays are milliseconds on the monotonic clock (hive/clock.h).
 */
#ifndef HIVE_LOOP_H
#define HIVE_LOOP_H

#include <signal.h>
#include <stdint.h>

#include "hive/clock.h"

#define HIVE_LOOP_READ  1
#define HIVE_LOOP_WRITE 2

struct hive_loop;

/* events: HIVE_LOOP_READ|HIVE_LOOP_WRITE that are ready (or both on error). */
typedef void hive_loop_fd_cb(struct hive_loop *loop, int fd, int events, void *arg);
/* Returns the delay in ms until it runs again, or -1 to be removed. */
typedef int64_t hive_loop_timer_cb(struct hive_loop *loop, void *arg);

/* Returns NULL on allocation failure. Free with hive_loop_free. */
struct hive_loop *hive_loop_new(void);
void hive_loop_free(struct hive_loop *loop);

/* Watches fd for `events`; calling again for the same fd replaces the
 * events, callback and argument. 0 / -1. */
int hive_loop_watch(struct hive_loop *loop, int fd, int events, hive_loop_fd_cb *cb, void *arg);
void hive_loop_unwatch(struct hive_loop *loop, int fd);

/* Runs cb after delay_ms. Returns a timer id (> 0), or -1. */
int64_t hive_loop_timer(struct hive_loop *loop, int64_t delay_ms, hive_loop_timer_cb *cb, void *arg);
void hive_loop_cancel(struct hive_loop *loop, int64_t timer_id);

/* Waits at most max_wait_ms (-1: until something happens) and runs what is
 * due. Returns the number of callbacks run, or -1 on a poll error. */
int hive_loop_run_once(struct hive_loop *loop, int max_wait_ms);
/* Runs until hive_loop_stop() or *quit becomes non-zero (quit may be NULL);
 * wakes at least every 250 ms to look at *quit. */
void hive_loop_run(struct hive_loop *loop, volatile sig_atomic_t *quit);
void hive_loop_stop(struct hive_loop *loop);

#endif
