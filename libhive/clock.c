/* clock — the only file that reads the system clocks (see hive/clock.h). */
#include "hive/clock.h"

#include <time.h>

static int64_t read_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hive_wall_ms(void)
{
	return read_ms(CLOCK_REALTIME);
}

int64_t hive_mono_ms(void)
{
	return read_ms(CLOCK_MONOTONIC);
}

int64_t hive_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t hive_ms_left(int64_t deadline)
{
	int64_t left = deadline - hive_mono_ms();

	return left > 0 ? left : 0;
}

int hive_cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rv;

	if ((rv = pthread_condattr_init(&ca)) != 0)
		return rv;
	rv = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rv == 0)
		rv = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return rv;
}

int hive_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline)
{
	struct timespec ts;

	if (deadline < 0)
		deadline = 0;
	ts.tv_sec = (time_t)(deadline / 1000);
	ts.tv_nsec = (long)(deadline % 1000) * 1000000L;
	return pthread_cond_timedwait(cv, mu, &ts);
}
