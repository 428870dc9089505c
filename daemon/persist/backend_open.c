/* SPDX-License-Identifier: MIT */
/*
 * Opening the configured backend at start: re-adopting the previous
 * instance's objects through the backend's reopen op where the state file
 * and the fd store allow it, else afresh; then the fd store is made to
 * hold what the backend keeps. Its own file because it is the one step
 * that joins the three (state file, fd store, backend) before the
 * registry exists.
 */
#include "persist/restart.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "persist/fdstore.h"
#include "util/json_util.h"
#include "util/log.h"

static struct json_object *saved_backend_state(const struct restart *rs)
{
	return rs->state ? js_get(rs->state, "backend_state", json_type_object) : NULL;
}

static void forget_state(struct restart *rs, const char *why)
{
	if (!rs->state)
		return;
	log_warn("cannot recover the previous instance's objects: %s", why);
	json_object_put(rs->state);
	rs->state = NULL;
}

/*
 * Every backend the same way, through its reopen op: re-adopt what the
 * state file and the fd store allow, else open afresh.
 */
int restart_open_backend(struct restart *rs, struct backend **out, const char **why)
{
	const struct backend_ops *ops = backend_ops_named(rs->cfg->backend);
	const char *err = "no backend state saved";
	int rc = -ENOENT;

	if (ops && ops->reopen)
		rc = ops->reopen(rs->cfg, saved_backend_state(rs), fdstore_take, rs, out, &err);
	if (rc) {
		if (err)
			forget_state(rs, err);
		rc = backend_open(rs->cfg, out, why);
		if (rc)
			return rc;
	} else {
		rs->restored = true;
	}
	rs->be = *out;
	fdstore_sync(rs, *out);
	return 0;
}
