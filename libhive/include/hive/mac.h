/* mac — a miner's identity. Miner ids everywhere (database, bus, API) are
 * lower-case MACs "aa:bb:cc:dd:ee:ff". */
#ifndef HIVE_MAC_H
#define HIVE_MAC_H

#define HIVE_MAC_LEN 18   /* "aa:bb:cc:dd:ee:ff" + NUL */

/* "AA-BB-CC-DD-EE-FF" or "aa:BB:cc:dd:ee:ff" (one separator throughout)
 * → "aa:bb:cc:dd:ee:ff" in out. 0 / -1 (out untouched on -1 is not
 * promised). */
int hive_mac_normalise(const char *in, char out[HIVE_MAC_LEN]);

#endif
