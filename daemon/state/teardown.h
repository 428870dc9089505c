/* SPDX-License-Identifier: MIT */
/*
 * The one teardown path: what a holder leaves behind goes, in one order,
 * whether the holder is a session that disconnects or the orphans of a
 * previous instance that nobody reclaimed (at the end of the grace period
 * and at a clean stop).
 *
 * The order: devices attached to the holder's HWPTs go back to their nest
 * parents, then the holder's guest memory is unmapped, then its HWPTs are
 * destroyed, children before parents. Detaching first means no device
 * walks the holder's stage-1 tables any more while its memory goes;
 * unmapping before the HWPTs go means the memory is released even if a
 * destroy fails. All of it completes before the event loop runs again, so
 * no other client can take a device while any of this holder's memory is
 * still mapped behind it. A backend error is logged and the object
 * forgotten all the same: keeping it would keep the device busy for
 * everyone, forever.
 */
#ifndef IOMMU_NESTD_STATE_TEARDOWN_H
#define IOMMU_NESTD_STATE_TEARDOWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct backend;
struct hwpt_entry;
struct hwpt_registry;
struct session;

/* Whose objects go. The session's id and credentials name it in the log. */
struct teardown_holder {
	const struct session *s; /* NULL: the orphans */
	uint64_t session_id;
	struct ucred cred;
	/* s's HWPTs (next_owned list, newest first); for the orphans, unused. */
	struct hwpt_entry *owned;
	/*
	 * The orphans only (s NULL): just those living in this instance (a
	 * VM context about to close, whose owner reclaimed it but not all
	 * of its HWPTs); NULL: every orphan.
	 */
	const struct backend *only_be;
};

/*
 * Releases everything h holds in reg and be; *hwpts_active counts the
 * HWPTs destroyed down. The session's owned list is consumed (its entries
 * are freed): the caller empties it. Returns whether anything changed
 * (then the state file must be written).
 */
bool state_teardown(struct hwpt_registry *reg, struct backend *be, struct teardown_holder *h,
		    uint64_t *hwpts_active);

#endif
