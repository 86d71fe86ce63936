/* clock — the two clocks, in milliseconds, and deadlines.
 *
 * Wall time is for what leaves the process: envelope and row timestamps,
 * a job's "deadline" field, log lines. Anything measured or waited for
 * inside a process uses the monotonic clock, which an NTP step does not
 * move. A deadline is an absolute hive_mono_ms() value.
 */
#ifndef HIVE_CLOCK_H
#define HIVE_CLOCK_H

#include <pthread.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t hive_wall_ms(void);
/* Milliseconds on CLOCK_MONOTONIC (since an arbitrary point). */
int64_t hive_mono_ms(void);
/* The same clock in microseconds, for timing what takes less than 1 ms. */
int64_t hive_mono_us(void);

/* Milliseconds left until deadline (a hive_mono_ms value); 0 once passed. */
int64_t hive_ms_left(int64_t deadline);

/* A condition variable whose timed waits run on the monotonic clock.
 * 0 or an errno value; destroy with pthread_cond_destroy. */
int hive_cond_init_mono(pthread_cond_t *cv);
/* pthread_cond_timedwait until deadline (a hive_mono_ms value) on a cv
 * from hive_cond_init_mono, mu held: 0 when woken, ETIMEDOUT. */
int hive_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline);

#endif
