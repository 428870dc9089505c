/* SPDX-License-Identifier: MIT */
/*
 * The state file's journal: what changed since the last full snapshot, as
 * one JSON record per line, so that a change costs a write proportional
 * to the change instead of a rewrite of everything (persist/state_save.c).
 *
 * The snapshot keeps the format of every earlier version: arrays of
 * elements ("hwpts", "attachments", "mappings", "backend_state.objects",
 * ...) and plain fields. A record says how one part of it changed:
 *
 *   {"s": SECTION, "f": FIELD, "k": KEY, "v": [ELEMENTS]}
 *       every element of the array SECTION whose FIELD equals KEY is
 *       replaced by ELEMENTS (none: deleted; a new KEY: added);
 *   {"s": SECTION, "m": {FIELDS}}
 *       the fields are set in the object SECTION.
 *
 * SECTION is a key of the snapshot's root or "outer.inner" one level down.
 * Replaying the journal onto the snapshot gives exactly the snapshot the
 * daemon would have written at the last record, so the loader stays the
 * one that reads full snapshots. Records are idempotent in order: replaying
 * a journal whose changes a newer snapshot already holds changes nothing.
 */
#ifndef IOMMU_NESTD_STATE_JOURNAL_H
#define IOMMU_NESTD_STATE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/* Object ids changed since the last save; repeats allowed until sorted. */
struct dirty_ids {
	uint32_t *id;
	uint32_t n;
	uint32_t cap;
	bool lost; /* an id could not be recorded: only a full save is right */
};

void dirty_ids_add(struct dirty_ids *d, uint32_t id);
/* Sorts and drops repeats. */
void dirty_ids_unique(struct dirty_ids *d);
void dirty_ids_clear(struct dirty_ids *d);
void dirty_ids_free(struct dirty_ids *d);

/*
 * Appends a replace record to the array records; key and elems (an array)
 * are taken over, also on failure. 0 or -ENOMEM.
 */
int journal_rec_replace(struct json_object *records, const char *section, const char *field,
			struct json_object *key, struct json_object *elems);
/* Appends a merge record; fields (an object) is taken over. 0 or -ENOMEM. */
int journal_rec_merge(struct json_object *records, const char *section, struct json_object *fields);

/* The journal's first line: which snapshot (its "journal_epoch") it continues. */
#define JOURNAL_EPOCH_KEY "journal_epoch"
/* Appends that line to buf (at least 48 bytes); returns its length. */
size_t journal_header(char *buf, size_t cap, uint64_t epoch);

/*
 * Applies the records of text (len bytes: the header, then one record per
 * line) to root in order, if the header names epoch; a journal of another
 * snapshot is ignored (0, *why says so). A line that does not parse ends
 * the replay there: it is the torn tail of a write the daemon did not
 * live to finish (and so never acknowledged). Returns the number of
 * records applied, or -EINVAL / -ENOMEM with *why.
 */
long journal_replay(struct json_object *root, const char *text, size_t len, uint64_t epoch,
		    const char **why);

#endif
