/* SPDX-License-Identifier: MIT */
/*
 * The simulator's whole state, in one self-contained struct (everything is
 * reachable from it, nothing lives in globals), so that it can later be
 * serialised across daemon restarts.
 *
 * Objects model iommufd HWPT objects: every configured device owns one
 * kernel-managed nest parent (a paging HWPT) and user-managed nested HWPTs
 * are allocated on top of it. Ids are allocated like iommufd's: the lowest
 * free u32 from 1 (xa_alloc on an XA_FLAGS_ALLOC1 xarray), so a destroyed
 * id is reused by the next object, and a stale id may name a newer one.
 *
 * Not thread safe: the daemon drives the backend from its event loop.
 */
#ifndef IOMMU_NESTD_SIM_STATE_H
#define IOMMU_NESTD_SIM_STATE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "util/config.h"
#include "backend/iommufd_uapi.h"
#include "backend/sim/iset.h"
#include "backend/veventq_uapi.h"
#include "backend/viommu_uapi.h"

/* Object ids are positive ints, as the kernel's xarray hands them out. */
#define SIM_ID_MAX INT32_MAX

enum sim_obj_type {
	SIM_OBJ_PARENT = 1, /* IOMMUFD_OBJ_HWPT_PAGING, nest parent */
	SIM_OBJ_NESTED = 2, /* IOMMUFD_OBJ_HWPT_NESTED */
	SIM_OBJ_FAULT = 3,  /* IOMMUFD_OBJ_FAULT (its queues: struct sim_fault) */
	SIM_OBJ_VIOMMU = 4,  /* IOMMUFD_OBJ_VIOMMU (7.x): parent_id is its nest parent */
	SIM_OBJ_VDEVICE = 5, /* IOMMUFD_OBJ_VDEVICE (7.x): parent_id is its vIOMMU */
	SIM_OBJ_VEVENTQ = 6, /* IOMMUFD_OBJ_VEVENTQ (7.x): parent_id is its vIOMMU (veventq.c) */
};

struct smmuv3_model;

struct sim_obj {
	uint32_t id;
	enum sim_obj_type type;
	enum device_kind kind; /* the driver that owns the domain */
	uint32_t dev;	       /* index of the device it was allocated for */
	uint32_t parent_id;    /* nested: its nest parent */
	uint32_t fault_id;     /* nested: its fault object (FAULT_ID_VALID), or 0 */
	/*
	 * Like iommufd_object.users beyond the table's own reference:
	 * attached devices plus (for a parent) nested children. Destroy
	 * needs it to be zero.
	 */
	uint32_t users;
	/* Nested VT-d: what IOMMU_HWPT_ALLOC stored (checked at attach). */
	struct iommu_hwpt_vtd_s1 vtd;
	/* Nested selftest: the mock IOTLB slots. */
	uint32_t iotlb[MOCK_NESTED_DOMAIN_IOTLB_NUM];
	/* Nested VT-d: cached pages, leaf translations and paging structures. */
	struct sim_iset iotlb_set;
	struct sim_iset psc_set;
	/* vIOMMU: its type; vDEVICE: the guest's id for the device (backend/sim/viommu.c). */
	uint32_t viommu_type;
	uint64_t virt_id;
	/* ARM SMMUv3 vIOMMU: the host SMMU's caches for its VMID (vsmmu.c), or NULL. */
	struct smmuv3_model *smmu;
	/* A HWPT allocated with IOMMU_HWPT_ALLOC_PASID (hwpt->pasid_compat, 7.x). */
	bool pasid_compat;
};

/* One PASID of a device and the HWPT on it (the core's igroup->pasid_attach). */
struct sim_pasid {
	uint32_t pasid;
	uint32_t hwpt_id;
};

/* One IOMMU_IOAS_MAP area: [iova, last], inclusive like iopt_area. */
struct sim_map {
	uint64_t iova;
	uint64_t last;
	uint32_t flags; /* IOMMU_IOAS_MAP_READABLE / _WRITEABLE */
};

struct sim_dev {
	char name[CONFIG_NAME_MAX];
	enum device_kind kind;
	uint32_t parent_id;   /* its nest parent, allocated at open */
	uint32_t attached_id; /* the HWPT it is attached to: parent or nested */
	/*
	 * The areas of the device's own IOAS (the nest parent's stage 2),
	 * sorted by iova and disjoint (backend/sim/mem.c). Only ranges and access
	 * are modelled: the memory itself stays with the client.
	 */
	struct sim_map *maps;
	uint32_t n_maps;
	uint32_t cap_maps;
	/*
	 * Dirty tracking of the nest parent (backend/sim/dirty.c): on or
	 * off, and the dirty 4 KiB pages, always mapped ones (an unmap
	 * drops its pages, as the kernel's page table loses them). Not
	 * saved across a restart: a migration does not survive one.
	 */
	bool dirty_tracking;
	struct sim_iset dirty;
	/*
	 * Whether this iommufd holds the device now: always, in the root
	 * (the daemon's first instance); in a VM context, once added
	 * (sim_dev_plug). borrowed: a context's VTD device, whose VFIO
	 * cdev the root gave up for it (a cdev binds to one iommufd).
	 */
	bool present;
	bool borrowed;
	/*
	 * 7.x: the device's vDEVICE (idev->vdev, at most one; 0: none) and
	 * the mock device's cache the selftest vIOMMU invalidates
	 * (selftest.c mock_dev->cache, set to the default when it is created).
	 */
	uint32_t vdev_id;
	uint32_t cache[NESTD_MOCK_DEV_CACHE_NUM];
	/*
	 * 7.x PASIDs (backend/sim/pasid.c): the width (dev->iommu->max_pasids
	 * is 1 << pasid_bits; 0: none) and what sits on each attached PASID.
	 * Saved across a restart (persist.c), as the kernel keeps them.
	 */
	uint8_t pasid_bits;
	bool pasid_1024_fake_error; /* selftest.c mock_domain_set_dev_pasid_nop() */
	struct sim_pasid *pasids;
	uint32_t n_pasids, cap_pasids;
};

/* One fault group (the selftest's: one page request, LAST_PAGE). */
struct sim_iopf_group {
	uint32_t dev;	  /* the device that faulted */
	uint32_t hwpt_id; /* the HWPT it faulted on */
	uint32_t cookie;  /* 0 until delivered */
	struct backend_iopf req;
};

/*
 * A fault object's queues, as iommufd's struct iommufd_fault: groups to
 * deliver (FIFO) and delivered ones awaiting a response (the response
 * xarray, by cookie). efd polls readable while deliver is not empty.
 */
struct sim_fault {
	uint32_t id;
	int efd; /* -1 once the fd is closed */
	struct sim_iopf_group *deliver;
	uint32_t n_deliver, cap_deliver;
	struct sim_iopf_group *resp;
	uint32_t n_resp, cap_resp;
};

/* One vEVENT in a vEVENTQ's deliver list: a normal record, or the LOST_EVENTS header. */
struct sim_vevent {
	struct nestd_vevent_header hdr;
	uint32_t data_len; /* 0 for the LOST_EVENTS header */
	uint8_t data[NESTD_VEVENT_DATA_MAX];
};

/*
 * A vEVENTQ's state, as iommufd's struct iommufd_veventq: the deliver
 * list (FIFO; the LOST_EVENTS header, if there, is its last entry),
 * num_events (normal records in it, at most depth), the next sequence.
 * efd polls readable while the list is not empty.
 */
struct sim_veventq {
	uint32_t id;
	uint32_t viommu_id;
	uint32_t type;
	uint32_t depth;
	int efd; /* -1 once the fd is closed */
	uint32_t num_events;
	uint32_t sequence;
	struct sim_vevent *deliver;
	uint32_t n_deliver, cap_deliver;
};

/*
 * The sim has no device objects; the dev_id of its fault records names
 * device i as SIM_DEV_ID_BASE + i, above every object id it hands out.
 */
#define SIM_DEV_ID_BASE 0x80000000u

struct sim_state {
	struct sim_dev devs[CONFIG_MAX_DEVICES];
	uint32_t n_devs;

	/* Sorted by id; new objects take the lowest free id (backend/sim/table.c). */
	struct sim_obj *objs;
	uint32_t n_objs;
	uint32_t cap_objs;
	uint32_t next_id; /* one past the highest id ever live */

	/* Fault injection; fault.mode == FAULT_CLEAR means none. */
	struct backend_fault fault;
	uint32_t fault_fires_left; /* 0 with fault.count == 0: unlimited */
	uint32_t latency_us;
	/*
	 * Set by a nested HWPT's invalidation walk (backend/sim/inv.c) when it
	 * changed saved state: cached pages dropped, a mock slot cleared, a
	 * counted fault fired. The caller clears it before the walk.
	 */
	bool inv_changed;

	/* Fault objects' queues (backend/sim/fault.c); not saved across a restart. */
	struct sim_fault *faults;
	uint32_t n_faults, cap_faults;
	/* vEVENTQs' queues (backend/sim/veventq.c), saved across a restart (veventq_save.c). */
	struct sim_veventq *veventqs;
	uint32_t n_veventqs, cap_veventqs;

	/* Which kernel version's rules to model ([daemon] sim_kernel). */
	enum kernel_rules rules;

	/*
	 * A VM context (open_context): its own id space, like its own open
	 * of /dev/iommu, and ONE IOAS that every device of it translates
	 * through; only ioas's maps are used. The root keeps an IOAS per
	 * device (each device's own maps).
	 */
	bool is_ctx;
	struct sim_dev ioas;
};

/*
 * Who calls whom (calls only go down this line; backend/sim/README.md):
 * sim.c -> persist.c -> state.c -> {pasid->objects->fault,mem,cache,inv,dirty->hwinfo}.c -> table.c
 * -> iset.c
 */

/* backend/sim/table.c: the object table and device lookup, under everything. */
struct sim_obj *sim_obj_find(struct sim_state *st, uint32_t id);
int sim_dev_find(const struct sim_state *st, const char *name);
/* The same, present or not (a context's devices before they are added). */
int sim_dev_find_any(const struct sim_state *st, const char *name);
/* The IOAS device dev translates through: the context's one, else its own. */
struct sim_dev *sim_ioas_of(struct sim_state *st, uint32_t dev);
/*
 * Inserts an object of type for device dev with the lowest free id. The
 * pointer is valid until the next insertion or removal. 0, -EBUSY (ids
 * exhausted) or -ENOMEM.
 */
int sim_obj_new(struct sim_state *st, enum sim_obj_type type, uint32_t dev, struct sim_obj **out);
/* Removes o and frees what it owns; the caller keeps the users counts. */
void sim_obj_remove(struct sim_state *st, struct sim_obj *o);

/* backend/sim/state.c: the state from the configuration, and freeing it. */
int sim_state_init(struct sim_state *st, const struct config *cfg, const char **errmsg);
/* A VM context knowing root's devices, holding none of them yet. */
void sim_state_init_ctx(struct sim_state *st, const struct sim_state *root);
void sim_state_free(struct sim_state *st);

/* backend/sim/objects.c: IOMMU_HWPT_ALLOC, IOMMU_DESTROY, attach and detach. */
int sim_alloc_nested(struct sim_state *st, const char *device, const struct backend_alloc *req,
		     uint32_t *out_id, uint32_t *out_parent);
int sim_destroy(struct sim_state *st, uint32_t id);
int sim_attach(struct sim_state *st, const char *device, uint32_t id);
int sim_detach(struct sim_state *st, const char *device);
/*
 * A device joins the iommufd (bind, a nest parent, attached to it) or
 * leaves it (unbind: off its page table, the parent destroyed; -EBUSY
 * while nested HWPTs sit on the parent, the kernel's refusal to destroy it).
 */
int sim_dev_plug(struct sim_state *st, uint32_t dev);
/* intel/pasid.c intel_pasid_setup_nested(): a VT-d stage-1 config that cannot be set up. */
int sim_vtd_attach_check(const struct sim_obj *o);
int sim_dev_unplug(struct sim_state *st, uint32_t dev);
/*
 * Whose stage 2 the device translates through now: the index of the
 * device whose IOAS holds the nest parent under its domain (itself unless
 * it was attached across devices), or -ENODEV.
 */
int sim_dev_stage2(struct sim_state *st, const char *device);

/*
 * backend/sim/fault.c: fault objects (IOMMU_FAULT_QUEUE_ALLOC, the fault
 * fd's read and write) and IOMMU_TEST_OP_TRIGGER_IOPF. sim_fault_detach()
 * answers the groups a device had on a HWPT it leaves (the kernel's
 * iommufd_auto_response_faults()); sim_fault_forget() frees the queues
 * of a destroyed fault object; sim_faults_free() all of them.
 */
int sim_fault_alloc(struct sim_state *st, struct backend_fault_queue *out);
int sim_fault_read(struct sim_state *st, const struct backend_fault_queue *q,
		   struct iommu_hwpt_pgfault *recs, uint32_t max);
int sim_fault_respond(struct sim_state *st, const struct backend_fault_queue *q,
		      const struct iommu_hwpt_page_response *resp);
int sim_fault_free(struct sim_state *st, const struct backend_fault_queue *q);
int sim_trigger_iopf(struct sim_state *st, const char *device, const struct backend_iopf *t);
void sim_fault_detach(struct sim_state *st, uint32_t fault_id, uint32_t dev, uint32_t hwpt_id);
void sim_fault_forget(struct sim_state *st, uint32_t fault_id);
/* The eventfd of fault object id (after a restore: a new one), or -ENOENT. */
int sim_fault_fd(struct sim_state *st, uint32_t id);
void sim_faults_free(struct sim_state *st);

/*
 * backend/sim/veventq.c (7.x; 6.12 answers -ENOTTY): IOMMU_VEVENTQ_ALLOC,
 * the vEVENTQ fd's read (eventq.c iommufd_veventq_fops_read(): whole
 * records), closing it (sim_veventq_close: the fd's reference goes, the
 * object stays until IOMMU_DESTROY), IOMMU_TEST_OP_TRIGGER_VEVENT and the
 * driver's report (driver.c iommufd_viommu_report_event()).
 * sim_veventq_forget() frees a destroyed one's queue, sim_veventqs_free() all.
 */
int sim_veventq_alloc(struct sim_state *st, uint32_t viommu_id, uint32_t type, uint32_t depth,
		      uint32_t *out_id, int *out_fd);
int sim_veventq_read(struct sim_state *st, uint32_t id, void *buf, uint32_t len);
int sim_veventq_close(struct sim_state *st, uint32_t id);
int sim_veventq_report(struct sim_state *st, uint32_t viommu_id, uint32_t type, const void *data,
		       uint32_t data_len);
int sim_trigger_vevent(struct sim_state *st, const char *device);
void sim_veventq_forget(struct sim_state *st, uint32_t id);
/* The eventfd of vEVENTQ id (a restored one's is new), or -ENOENT. */
int sim_veventq_fd(struct sim_state *st, uint32_t id);
void sim_veventqs_free(struct sim_state *st);

/* backend/sim/mem.c: IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP on a device's IOAS. */
int sim_map_memory(struct sim_state *st, const char *device, uint64_t iova, uint64_t length,
		   uint32_t flags);
int sim_unmap_memory(struct sim_state *st, const char *device, uint64_t iova, uint64_t length);
/* 0 if [iova, last] may be mapped on a device of kind (aperture, reserved). */
int sim_map_range_ok(enum device_kind kind, uint64_t iova, uint64_t last);
/* Appends an area above every existing one (state file loading). */
int sim_map_append(struct sim_dev *d, uint64_t iova, uint64_t last, uint32_t flags);
void sim_dev_maps_free(struct sim_dev *d);
/*
 * iopt_for_each_contig_area() from iova on: true when d's areas cover
 * [iova, last] without a gap. *any: iova itself is mapped; *walked_last:
 * the end of the run from iova (up to last), what a dirty read walks.
 */
bool sim_mapped_run(const struct sim_dev *d, uint64_t iova, uint64_t last, bool *any,
		    uint64_t *walked_last);

/*
 * The VT-d driver maps nothing read-only into a nest parent (intel/iommu.c
 * __domain_mapping(), erratum 772415_SPR17) and says so in hw_info: mem.c
 * refuses such a map and hwinfo.c reports the erratum, from this one rule.
 */
static inline bool sim_kind_no_ro_nest_parent(enum device_kind kind)
{
	return kind == DEVICE_KIND_VTD;
}

/* backend/sim/hwinfo.c: IOMMU_GET_HW_INFO of a device. */
int sim_hw_info(const struct sim_state *st, const char *device, struct backend_hw_info *out);

/*
 * backend/sim/dirty.c: IOMMU_HWPT_SET_DIRTY_TRACKING, IOMMU_HWPT_GET_DIRTY_BITMAP
 * and IOMMU_TEST_OP_DIRTY on a device's nest parent; sim_dirty_forget()
 * drops the dirty pages of an unmapped range (all: iova 0, length UINT64_MAX).
 */
int sim_set_dirty_tracking(struct sim_state *st, const char *device, bool enable);
int sim_get_dirty_bitmap(struct sim_state *st, const char *device, const struct backend_dirty *bm);
int sim_set_dirty(struct sim_state *st, const char *device, const struct backend_dirty *bm);
void sim_dirty_forget(struct sim_state *st, const char *device, uint64_t iova, uint64_t length);

/* backend/sim/cache.c: model caches, read back and seeded by tests. */
int sim_check_iotlb(struct sim_state *st, uint32_t id, uint32_t iotlb_id, uint32_t expected);
int sim_populate(struct sim_state *st, uint32_t id, uint64_t addr, uint64_t npages, uint32_t kind);
int sim_query(struct sim_state *st, uint32_t id, uint64_t addr, uint64_t npages,
	      uint64_t *iotlb_pages, uint64_t *psc_pages);

/*
 * backend/sim/viommu.c: IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC (7.x; 6.12
 * answers -ENOTTY), and IOMMU_HWPT_INVALIDATE on a vIOMMU id after the
 * core's checks (inv.c): the driver's cache_invalidate.
 */
int sim_viommu_alloc(struct sim_state *st, const char *device, uint32_t type, uint32_t flags,
		     uint32_t *out_id, uint32_t *out_parent);
int sim_vdevice_alloc(struct sim_state *st, uint32_t viommu_id, const char *device,
		      uint64_t virt_id, uint32_t *out_id);
int sim_viommu_invalidate(struct sim_state *st, struct sim_obj *viommu, struct backend_inv *inv,
			  uint32_t n);
/*
 * iommufd_viommu_alloc_hwpt_nested() and the mock's alloc_domain_nested:
 * whether a nested HWPT of req may sit on vIOMMU req->viommu_id for dev.
 */
int sim_viommu_nested_check(struct sim_state *st, uint32_t dev, const struct backend_alloc *req);

/*
 * backend/sim/vsmmu.c: the ARM SMMUv3 driver's vIOMMU. A device's StreamID
 * (SIM_SMMUV3_SID_BASE + its index), the vIOMMU's VMID and model (made on
 * first use, freed with the object: smmuv3_model_destroy), its cache_invalidate, its nested STE
 * rules (arm_smmu_validate_vste), the test-only seeding and counting of
 * the model's TLB through a nested HWPT on the vIOMMU.
 */
#define SIM_SMMUV3_SID_BASE 0x100u
uint32_t sim_smmuv3_sid(uint32_t dev);
struct smmuv3_model *sim_vsmmu_model(struct sim_obj *viommu);
uint16_t sim_vsmmu_vmid(const struct sim_obj *viommu);
int sim_vsmmu_invalidate(struct sim_state *st, struct sim_obj *viommu, struct backend_inv *inv,
			 uint32_t n);
int sim_vsmmu_nested_check(const struct backend_alloc *req);
int sim_vsmmu_validate_ste(const struct nestd_hwpt_arm_smmuv3 *arg);
int sim_vsmmu_populate(struct sim_state *st, uint32_t hwpt_id, uint32_t asid, uint64_t addr,
		       uint64_t npages, uint32_t kind);
int sim_vsmmu_query(struct sim_state *st, uint32_t hwpt_id, uint32_t asid, uint64_t addr,
		    uint64_t npages, uint64_t *iotlb_pages, uint64_t *psc_pages);

/*
 * backend/sim/pasid.c: PASID attachments, the core's rules (iommufd/device.c,
 * iommu.c iommu_attach_device_pasid()). sim_pasid_attach, _replace and
 * _detach are iommufd_device_attach / _replace / _detach on a PASID (the
 * selftest's PASID_ATTACH / REPLACE / DETACH; 6.12: -EOPNOTSUPP, an
 * unknown test op); sim_pasid_op_attach / _op_detach are the backend's
 * ops: VFIO's attach-or-replace and detach (6.12: the mock's -EOPNOTSUPP,
 * VFIO's -EINVAL for the unknown flag). sim_pasid_check is PASID_CHECK_HWPT (0: the
 * HWPT on it, -EINVAL another one); sim_pasid_rid_ok says whether the RID
 * may go onto o while PASIDs are attached; sim_pasid_bits the width a
 * configured device gets; sim_dev_pasids_free frees the table.
 */
int sim_pasid_attach(struct sim_state *st, const char *device, uint32_t pasid, uint32_t id);
int sim_pasid_replace(struct sim_state *st, const char *device, uint32_t pasid, uint32_t id);
int sim_pasid_detach(struct sim_state *st, const char *device, uint32_t pasid);
int sim_pasid_op_attach(struct sim_state *st, const char *device, uint32_t pasid, uint32_t id);
int sim_pasid_op_detach(struct sim_state *st, const char *device, uint32_t pasid);
int sim_pasid_check(struct sim_state *st, const char *device, uint32_t pasid, uint32_t id);
static inline int sim_pasid_rid_ok(const struct sim_dev *d, const struct sim_obj *o)
{
	return d->n_pasids && !o->pasid_compat ? -EINVAL : 0;
}
uint8_t sim_pasid_bits(const struct config_device *cd, enum kernel_rules rules);
void sim_dev_pasids_free(struct sim_dev *d);

/* backend/sim/inv.c: IOMMU_HWPT_INVALIDATE and fault injection. */
int sim_invalidate(struct sim_state *st, struct backend_inv *inv);
int sim_inject_fault(struct sim_state *st, const struct backend_fault *f);

#endif
