/* json — see hive/json.h. */
#include "hive/json.h"

#include <stdio.h>
#include <string.h>

const char *hive_json_type_name(const json_t *j)
{
	if (!j)
		return "nothing";
	switch (json_typeof(j)) {
	case JSON_OBJECT:  return "object";
	case JSON_ARRAY:   return "array";
	case JSON_STRING:  return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL:    return "real";
	case JSON_TRUE:    return "true";
	case JSON_FALSE:   return "false";
	case JSON_NULL:    return "null";
	}
	return "unknown";
}

/* Looks key up; 1 = absent/null and optional, -1 = absent and required,
 * 0 = *out holds the member. */
static int member(const json_t *obj, const char *key, bool required, json_t **out,
		  char *err, size_t errlen)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	if (!v || json_is_null(v)) {
		if (!required)
			return 1;
		snprintf(err, errlen, "%s: missing", key);
		return -1;
	}
	*out = v;
	return 0;
}

static int mistyped(const char *key, const char *want, const json_t *got, char *err,
		    size_t errlen)
{
	snprintf(err, errlen, "%s: expected %s, got %s", key, want, hive_json_type_name(got));
	return -1;
}

int hive_json_int(const json_t *obj, const char *key, bool required, long long *out,
		  char *err, size_t errlen)
{
	json_t *v;
	int rc = member(obj, key, required, &v, err, errlen);

	if (rc != 0)
		return rc;
	if (!json_is_integer(v))
		return mistyped(key, "integer", v, err, errlen);
	*out = json_integer_value(v);
	return 0;
}

int hive_json_num(const json_t *obj, const char *key, bool required, double *out,
		  char *err, size_t errlen)
{
	json_t *v;
	int rc = member(obj, key, required, &v, err, errlen);

	if (rc != 0)
		return rc;
	if (!json_is_number(v))
		return mistyped(key, "number", v, err, errlen);
	*out = json_number_value(v);
	return 0;
}

int hive_json_str(const json_t *obj, const char *key, bool required, char *buf, size_t len,
		  char *err, size_t errlen)
{
	json_t *v;
	int rc = member(obj, key, required, &v, err, errlen);

	if (rc != 0)
		return rc;
	if (!json_is_string(v))
		return mistyped(key, "string", v, err, errlen);
	if (json_string_length(v) >= len) {
		snprintf(err, errlen, "%s: longer than %zu characters", key, len - 1);
		return -1;
	}
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int hive_json_bool(const json_t *obj, const char *key, bool required, bool *out,
		   char *err, size_t errlen)
{
	json_t *v;
	int rc = member(obj, key, required, &v, err, errlen);

	if (rc != 0)
		return rc;
	if (!json_is_boolean(v))
		return mistyped(key, "boolean", v, err, errlen);
	*out = json_is_true(v);
	return 0;
}

int hive_json_obj(const json_t *obj, const char *key, bool required, json_t **out,
		  char *err, size_t errlen)
{
	json_t *v;
	int rc = member(obj, key, required, &v, err, errlen);

	if (rc != 0)
		return rc;
	if (!json_is_object(v))
		return mistyped(key, "object", v, err, errlen);
	*out = v;
	return 0;
}

int hive_json_arr(const json_t *obj, const char *key, bool required, json_t **out,
		  char *err, size_t errlen)
{
	json_t *v;
	int rc = member(obj, key, required, &v, err, errlen);

	if (rc != 0)
		return rc;
	if (!json_is_array(v))
		return mistyped(key, "array", v, err, errlen);
	*out = v;
	return 0;
}
