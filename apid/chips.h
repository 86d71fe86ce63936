/* chips — per-chip telemetry packed into one BLOB per chain.
 *
 * Each chip is a 16-byte little-endian record:
 *   float32 hr_ghs; uint16 freq_mhz; uint16 volt_mv; int16 temp_c10 (°C×10);
 *   uint8 grade ('r','o','g' or '?'); uint8 throttled (0/1); uint32 errs.
 * Values out of a field's range are clamped; a grade other than r/o/g is
 * stored as '?'.
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

#endif
