/* SPDX-License-Identifier: MIT */
/* The simulator's state to and from the state file (backend/sim/persist.c). */
#ifndef IOMMU_NESTD_SIM_PERSIST_H
#define IOMMU_NESTD_SIM_PERSIST_H

#include "backend/sim/state.h"

struct json_object;

/* Adds st's whole state to the JSON object o. 0 or -ENOMEM. */
int sim_state_save(const struct sim_state *st, struct json_object *o);

/*
 * Journal records (state_journal.h) for the objects ids[0..n) (deleted
 * if gone), the devices whose bit is set in devs, and the scalars (next
 * id, fault), under "backend_state". 0 or -ENOMEM.
 */
int sim_state_save_delta(const struct sim_state *st, const uint32_t *ids, uint32_t n, uint64_t devs,
			 struct json_object *records);

/*
 * Builds st (uninitialised on entry) from o, checked against the configured
 * devices. 0, or -EINVAL (*errmsg says why) / -ENOMEM with st empty.
 */
/*
 * Fault objects' queues (fault_save.c): saved under "fault_queues"; loaded
 * once "objects" is, each object's queues and a new eventfd (the fd's
 * reference counted in users). 0, -EINVAL with *errmsg, or -ENOMEM.
 */
struct sim_state;
int sim_faults_to_json(const struct sim_state *st, struct json_object *o);
int sim_faults_load(struct sim_state *st, struct json_object *o, const char **errmsg);
/*
 * vEVENTQs' queues (veventq_save.c), the same way: "veventq_queues" (type,
 * depth, sequence, deliver list), loaded once "objects" is, each with a
 * new eventfd. 0, -EINVAL with *errmsg, or -ENOMEM.
 */
int sim_veventqs_to_json(const struct sim_state *st, struct json_object *o);
int sim_veventqs_load(struct sim_state *st, struct json_object *o, const char **errmsg);

int sim_state_load(struct sim_state *st, const struct config *cfg, struct json_object *o,
		   const char **errmsg);

/*
 * The 7.x objects' fields (backend/sim/vpersist.c): a vIOMMU's type and
 * SMMUv3 model, a vDEVICE's virt_id, into the object's JSON and back;
 * a mock device's cache. Loading: 0, -EINVAL (*why says why) or -ENOMEM.
 */
int sim_vobj_to_json(const struct sim_obj *ob, struct json_object *o);
int sim_vobj_load(struct json_object *j, struct sim_obj *o, const char **why);
int sim_dev_cache_to_json(const struct sim_dev *d, struct json_object *o);
int sim_dev_cache_load(struct json_object *j, struct sim_dev *d);

#endif
