/* json — typed access to jansson objects, with errors that name the field.
 *
 * Every getter returns 0 when the field was read, 1 when it is absent or
 * null and not required (out untouched), and -1 with a message
 * "<key>: expected <type>, got <type>" (or "<key>: missing") in err. */
#ifndef HIVE_JSON_H
#define HIVE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

int hive_json_int(const json_t *obj, const char *key, bool required, long long *out,
		  char *err, size_t errlen);
/* Accepts integers and reals. */
int hive_json_num(const json_t *obj, const char *key, bool required, double *out,
		  char *err, size_t errlen);
/* Copies into buf; a string that does not fit is an error. */
int hive_json_str(const json_t *obj, const char *key, bool required, char *buf, size_t len,
		  char *err, size_t errlen);
int hive_json_bool(const json_t *obj, const char *key, bool required, bool *out,
		   char *err, size_t errlen);
/* Borrowed reference to an object/array member of the right type. */
int hive_json_obj(const json_t *obj, const char *key, bool required, json_t **out,
		  char *err, size_t errlen);
int hive_json_arr(const json_t *obj, const char *key, bool required, json_t **out,
		  char *err, size_t errlen);

/* "object", "array", "string", "integer", "real", "true", "false", "null". */
const char *hive_json_type_name(const json_t *j);

#endif
