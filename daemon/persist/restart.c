/* SPDX-License-Identifier: MIT */
/*
 * The lifecycle's ends (restart.h): start (the inherited descriptors and
 * the state file) and stop (clean, or leaving everything for the next
 * instance). The jobs in between have their own files: fdstore.c,
 * state_file.c, state_save.c, backend_open.c, recovery.c.
 */
#include "persist/restart.h"

#include <errno.h>
#include <event2/event.h>
#include <string.h>

#include "persist/fdstore.h"
#include "persist/state_file.h"

int restart_init(struct restart *rs, const struct config *cfg)
{
	memset(rs, 0, sizeof(*rs));
	rs->cfg = cfg;
	rs->lock_fd = -1;
	rs->journal_fd = -1; /* the first save writes a snapshot */
	if (fdstore_collect(rs))
		return -ENOMEM;
	state_file_setup(rs);
	return 0;
}

void restart_clean_stop(struct restart *rs)
{
	rs->stopping = true;
	restart_reap_orphans(rs);
	if (!rs->enabled)
		return;
	/* Nothing to recover after a clean stop: say so to the next instance. */
	state_file_remove(rs);
	fdstore_forget_ours(rs);
}

void restart_fini(struct restart *rs)
{
	if (rs->ev_grace)
		event_free(rs->ev_grace);
	rs->ev_grace = NULL;
	fdstore_fini(rs);
	state_file_fini(rs);
}
