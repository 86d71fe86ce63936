/* routes — the API's route table: every endpoint with its method, its
 * path, the least role that may use it (auth.h) and its handler. One
 * table routes the requests, checks the roles, and is what
 * test_apid_roles drives, so an endpoint cannot exist without a role.
 * docs/api.md lists the same roles. */
#ifndef APID_ROUTES_H
#define APID_ROUTES_H

#include <stddef.h>

#include "auth.h"

struct api_req;

struct apid_route {
	const char *method;      /* GET (HEAD too), POST, PATCH, DELETE */
	/* "/api/miners/{mac}": {mac} is a miner's MAC (checked and lowered),
	 * {alias} a model alias, {id} and {name} one segment as it is; the
	 * handler gets it. */
	const char *path;
	enum apid_role role;
	int (*fn)(struct api_req *r);                   /* no {…} in path */
	int (*fn_on)(struct api_req *r, const char *id); /* one {…} in path */
};

extern const struct apid_route apid_routes[];
extern const size_t apid_routes_count;

/* Answers r (r->segs, r->method, r->role, r->anonymous): 404 for no such
 * path, 405 for a method it does not take, 401 for an anonymous reader
 * below the route's role, 403 for a token below it, 400 for a bad MAC or
 * alias, else the handler's answer. */
int apid_route(struct api_req *r);

#endif
