/* chips — per-chip telemetry packed into one BLOB per chain.
 *
 * Two formats. apid first wrote (and still reads, from databases of
 * schema 4) one 16-byte little-endian record per chip:
 *   float32 hr_ghs; uint16 freq_mhz; uint16 volt_mv; int16 temp_c10 (°C×10);
 *   uint8 grade ('r','o','g' or '?'); uint8 throttled (0/1); uint32 errs.
 * Values out of a field's range are clamped; a grade other than r/o/g is
 * stored as '?'. apid now writes packed columns (below), about a third of
 * the size; telemetry.chips_format says which a row holds.
 */
#ifndef APID_CHIPS_H
#define APID_CHIPS_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#define APID_CHIP_BYTES 16

struct apid_chip {
	float hr_ghs;
	int freq;          /* MHz */
	int volt;          /* mV */
	float temp;        /* °C, kept to 0.1 */
	char grade;        /* 'r', 'o', 'g' or '?' */
	bool throttled;
	unsigned errs;
};

/* Packs n chips into out, which holds APID_CHIP_BYTES * n bytes. Returns
 * the bytes written. */
size_t apid_chips_pack(const struct apid_chip *chips, size_t n, unsigned char *out);

/* Unpacks up to max chips of blob. Returns the number of chips in blob
 * (which may exceed max: only max are written), or -1 when len is not a
 * multiple of APID_CHIP_BYTES. */
int apid_chips_unpack(const void *blob, size_t len, struct apid_chip *out, size_t max);

/* The blob as the bus body carries it:
 * {"hr":[..],"freq":[..],"volt":[..],"temp":[..],"errs":[..],
 *  "grade":"rog?...","throttled":"0101..."}.
 * New reference, or NULL when len is not a multiple of APID_CHIP_BYTES. */
json_t *apid_chips_json(const void *blob, size_t len);

/* ---- packed columns (telemetry.chips_format 2, what apid writes now)
 *
 * A chain's chips as six columns, one after the other: hr (0.01 GH/s),
 * freq (MHz), volt (mV), temp (0.1 °C), errs, and flags (grade: g 0, o 1,
 * r 2, ? 3; throttled adds 4). The blob starts with a varint of the chip
 * count. Each column is a run of tokens, each a varint: (zigzag(v - prev)
 * << 1) for one value, or (k << 1 | 1) for k more values equal to the
 * previous one; prev starts at 0. Chips side by side differ little and
 * freq, volt and flags repeat, so a 126-chip chain takes ~700 bytes where
 * the 16-byte records took 2016 (and a page each). Values are rounded to
 * the unit and clamped as the records' are (hr ≥ 0, temp −3276.8..3276.7).
 */
/* More chips than this on one chain is a broken blob, not a board. */
#define APID_CHIPS_MAX 65536
#define APID_CHIPS_RECORDS 1       /* chips_format NULL or 1: 16-byte records */
#define APID_CHIPS_PACKED  2

/* Bytes apid_chips_pack_columns may need for n chips (the worst case). */
#define APID_CHIPS_PACKED_MAX(n) (10 + (size_t)(n) * 6 * 10)

/* Packs n chips into out (cap bytes); the bytes written, 0 when cap is
 * too small. */
size_t apid_chips_pack_columns(const struct apid_chip *chips, size_t n, unsigned char *out,
			       size_t cap);
/* Unpacks a blob of either format (APID_CHIPS_RECORDS, APID_CHIPS_PACKED)
 * into up to max chips. The number of chips in the blob (which may exceed
 * max), or -1 when it is not a well-formed blob of that format. */
int apid_chips_unpack_any(const void *blob, size_t len, int format, struct apid_chip *out,
			  size_t max);
/* apid_chips_json of a blob of either format; NULL when malformed. */
json_t *apid_chips_json_any(const void *blob, size_t len, int format);

/* ---- per-chip summaries (telemetry_hours.chips)
 *
 * An hour of one chain: per chip the mean hr, freq, volt and temp, the
 * highest temp, the errors it added (a counter that went down counts from
 * 0: the miner restarted), the worst grade seen (r > o > g > ?) and how
 * many samples it was throttled in. Packed as columns like the samples:
 * varint chips, varint samples, then hr, freq, volt, temp, temp_max, errs,
 * flags (worst grade), throttled. */
struct apid_chip_acc {
	size_t n_chips;          /* of the widest sample seen */
	unsigned samples;
	struct apid_chip_sum {
		unsigned n;
		double hr, freq, volt, temp; /* sums */
		float temp_max;
		double errs_added;
		unsigned errs_last;
		char grade;
		unsigned throttled;
	} *chip;                 /* n_chips, owned */
};

/* Adds one sample (in time order); -1 when out of memory. */
int apid_chips_acc_add(struct apid_chip_acc *acc, const struct apid_chip *chips, size_t n);
/* The summary packed into a malloc'd blob (*len bytes; NULL when out of
 * memory). The caller frees. */
unsigned char *apid_chips_acc_pack(const struct apid_chip_acc *acc, size_t *len);
void apid_chips_acc_clear(struct apid_chip_acc *acc);
/* A packed summary as {"hr":[..],"freq":[..],"volt":[..],"temp":[..],
 * "temp_max":[..],"errs":[..],"grade":"..","throttled":[..]} (means,
 * highest temperature, errors added, worst grade, samples throttled);
 * *samples gets the samples it summarises. NULL when malformed. */
json_t *apid_chips_summary_json(const void *blob, size_t len, long long *samples);

#endif
