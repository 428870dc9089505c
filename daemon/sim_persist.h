/* SPDX-License-Identifier: MIT */
/* The simulator's state to and from the state file (sim_persist.c). */
#ifndef IOMMU_NESTD_SIM_PERSIST_H
#define IOMMU_NESTD_SIM_PERSIST_H

#include "sim_state.h"

struct json_object;

/* Adds st's whole state to the JSON object o. 0 or -ENOMEM. */
int sim_state_save(const struct sim_state *st, struct json_object *o);

/*
 * Builds st (uninitialised on entry) from o, checked against the configured
 * devices. 0, or -EINVAL (*errmsg says why) / -ENOMEM with st empty.
 */
int sim_state_load(struct sim_state *st, const struct config *cfg, struct json_object *o,
		   const char **errmsg);

#endif
