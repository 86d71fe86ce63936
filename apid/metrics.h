/* metrics — GET /metrics: the health document (health.h) and one set of
 * series per miner, in the Prometheus text exposition format 0.0.4.
 * docs/apid.md lists every family. */
#ifndef APID_METRICS_H
#define APID_METRICS_H

struct apid;

/* The whole text (free it with apid_metrics_free); NULL when out of memory. The
 * per-miner families are left out (and the reason logged) when the
 * database cannot be read. Thread-safe: each call reads through a
 * read-only connection of its own. */
char *apid_metrics(struct apid *a);
/* Frees what apid_metrics returned (a mapping of its own, not malloc's). */
void apid_metrics_free(char *text);

#endif
