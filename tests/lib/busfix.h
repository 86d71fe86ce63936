/* busfix — bus fixtures shared by the bus and apid tests and benchmarks:
 * the bus options a daemon uses, a realistic status result and test MACs,
 * publisher child processes, and a receive-and-enqueue thread like apid's.
 * Loopback only, as everything in the tests. */
#ifndef HIVE_BUSFIX_H
#define HIVE_BUSFIX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#include "hive/bus.h"

/* The options a daemon would use: buffers and size cap from the config
 * defaults, 2 s send and receive timeouts, boot = now (wall clock ms). */
struct hive_bus_opts tl_bus_opts(bool listen, const char *src);

/* The MAC of test miner i (0..65535): "aa:bb:cc:00:XX:XX". */
void tl_mac_of(int i, char out[18]);

/* A hive.status.result body of realistic size (~1 KB as an envelope): three
 * chains, four fans, pools; "job" is 0. The caller owns it. */
json_t *tl_status_body(const char *mac);

/* ------------------------------------------------------------ publishers
 * A publisher child is this very binary executed again (/proc/self/exe) with
 * "--publisher URL SRC COUNT": fork after nng has started its threads is not
 * safe, exec is. It dials URL as SRC, says it is ready once connected, waits
 * for go, sends COUNT status results (job 1..COUNT) through hive_bus_send as
 * pollerd does, says it has sent them, and keeps its socket open (nng has no
 * linger: closing would drop what is still queued) until its stdin closes.
 * Every main that spawns publishers calls tl_pub_child first. */
struct tl_pub {
	pid_t pid;
	int to, from;            /* its stdin (write end), its stdout (read end) */
};

/* Starts one; 0, or -1 with p->pid = -1 and nothing left open. */
int tl_pub_spawn(struct tl_pub *p, const char *url, const char *src, int count);
/* True once it is connected (within timeout_ms). */
bool tl_pub_ready(struct tl_pub *p, int timeout_ms);
/* Tells it to send. 0 / -1. */
int tl_pub_go(struct tl_pub *p);
/* True once it has sent all it had to (within timeout_ms). */
bool tl_pub_sent(struct tl_pub *p, int timeout_ms);
/* Closes its pipes and reaps it (SIGKILL after timeout_ms). False, with a
 * line on stderr, unless it exited 0. */
bool tl_pub_finish(struct tl_pub *p, int timeout_ms);
/* When argv is a publisher child's, runs it and returns its exit code;
 * otherwise returns -1 at once. */
int tl_pub_child(int argc, char **argv);

/* ------------------------------------------------------------ receiver
 * Like apid's receive loop: one thread does nothing but receive and
 * enqueue; the consumer pops at its own pace. */
struct tl_recv_node;

struct tl_receiver {
	struct hive_bus *bus;
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct tl_recv_node *head, *tail;
	size_t depth, max_depth;  /* envelopes queued now, the most ever queued */
	atomic_ulong rejected;    /* receives the bus refused (malformed envelopes) */
};

/* Starts the thread on bus (which stays the caller's). 0 / -1. */
int tl_receiver_start(struct tl_receiver *r, struct hive_bus *bus);
/* The next envelope within timeout_ms (0: only what is queued); false on
 * timeout. The caller clears *out with hive_envelope_clear. */
bool tl_receiver_pop(struct tl_receiver *r, struct hive_envelope *out, int timeout_ms);
/* Stops the thread and drops what is still queued; max_depth and rejected
 * stay readable. */
void tl_receiver_stop(struct tl_receiver *r);

#endif
