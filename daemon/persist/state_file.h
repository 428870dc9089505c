/* SPDX-License-Identifier: MIT */
/*
 * persist/'s own: the state file's paths, opening and removing it
 * (state_file.c); writing it is restart_save (state_save.c, restart.h).
 */
#ifndef IOMMU_NESTD_PERSIST_STATE_FILE_H
#define IOMMU_NESTD_PERSIST_STATE_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "persist/restart.h"

/* STATE.journal (suffix ""), or its temporary (".tmp"). */
static inline void state_journal_path(const struct restart *rs, char *buf, size_t len,
				      const char *suffix)
{
	snprintf(buf, len, "%s.journal%s", rs->cfg->state_file, suffix);
}

/*
 * Persistence on if state_file is set, its directory exists and the lock
 * is ours; then loads the file if one matches this configuration (into
 * rs->state). Failures are logged and leave persistence off.
 */
void state_file_setup(struct restart *rs);

/* Clean stop: the state file, then its journal, removed. */
void state_file_remove(struct restart *rs);

/* Closes the lock and the journal, frees what was loaded and the saved-state copy. */
void state_file_fini(struct restart *rs);

#endif
