/* fwfix — canned firmware answers for the unit tests of what reads them:
 * a fixture of tests/unit/fixtures/fw/ parsed the way the firmware client
 * parses a 2xx body, and a bus body built from it checked against the table
 * apid decodes with. No cmocka here: a helper that fails says why on stderr
 * and returns NULL, and the test asserts. Tests run from the top of the
 * tree, where the fixture paths start. */
#ifndef HIVE_FWFIX_H
#define HIVE_FWFIX_H

#include <jansson.h>

#include "hive/fw.h"
#include "hive/msg.h"

#define TL_FW_FIXTURES "tests/unit/fixtures/fw/"

/* TL_FW_FIXTURES<name> parsed as an answer to `call`, without error, into a
 * heap result (the chains member is large; free() it); NULL when the file
 * cannot be read or does not parse. */
struct hive_fw_result *tl_fw_fixture(enum hive_fw_call call, const char *name);

/* body (the kind's struct) encoded, and that JSON decoded back into back
 * (the kind's struct; hive_msg_free it) as apid would: the JSON (the
 * caller's), or NULL when encoding gives nothing or apid would refuse it. */
json_t *tl_msg_roundtrip(enum hive_msg_kind kind, const void *body, void *back);

#endif
