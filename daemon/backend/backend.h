/* SPDX-License-Identifier: MIT */
/*
 * The backend interface: what the daemon needs from whatever owns the real
 * (or simulated) iommufd objects. Every call returns 0 or a negative errno,
 * with exactly the kernel's meaning. Backends: "sim" (in process model,
 * backend/sim/sim.c) and "iommufd" (real ioctls, backend/iommufd/iommufd.c).
 */
#ifndef IOMMU_NESTD_BACKEND_H
#define IOMMU_NESTD_BACKEND_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/iommufd_uapi.h"

/* The access bits of IOMMU_IOAS_MAP: one of them at least, nothing else. */
#define IOAS_MAP_ACCESS (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)

struct backend;
struct config;
struct json_object;

/* Largest number of data types a backend reports in its capabilities. */
#define BACKEND_MAX_TYPES 4

/*
 * Where Linux versions answer the same call differently, which rules a
 * backend follows: the sim by its [daemon] sim_kernel knob, iommufd by
 * what the running kernel answered a probe at open.
 */
enum kernel_rules {
	KERNEL_RULES_6_12 = 0, /* the default: Linux 6.12 */
	KERNEL_RULES_7 = 1,    /* Linux 7.x (invalidation ids are any object) */
};

struct backend_caps {
	uint32_t hwpt_types[BACKEND_MAX_TYPES]; /* IOMMU_HWPT_DATA_* */
	uint32_t n_hwpt_types;
	uint32_t inv_types[BACKEND_MAX_TYPES]; /* IOMMU_HWPT_INVALIDATE_DATA_* */
	uint32_t n_inv_types;
	bool check_iotlb;  /* check_iotlb is implemented */
	bool sim_model;    /* sim_populate / sim_query are implemented */
	bool fault_inject; /* inject_fault is implemented */
	enum kernel_rules rules; /* whose rules the backend's answers follow */
};

/*
 * What IOMMU_HWPT_INVALIDATE answers for an id naming a live object that
 * cannot be invalidated (a paging HWPT such as a nest parent, an IOAS):
 * 6.12 looks the id up as a nested HWPT only (-ENOENT); 7.x looks it up as
 * any object and refuses the wrong kind (-EINVAL, hw_pagetable.c:549).
 */
static inline int kernel_rules_inv_wrong_object(enum kernel_rules r)
{
	return r == KERNEL_RULES_7 ? -EINVAL : -ENOENT;
}

/* IOMMU_HWPT_ALLOC of a nested HWPT on a device's nest parent. */
struct backend_alloc {
	uint32_t data_type; /* IOMMU_HWPT_DATA_VTD_S1 / _SELFTEST */
	uint32_t flags;     /* IOMMU_HWPT_ALLOC_* as given by the client */
	const void *data;   /* struct iommu_hwpt_vtd_s1 / iommu_hwpt_selftest */
	uint32_t data_len;
	uint32_t viommu_id; /* 7.x: a vIOMMU as pt_id; 0: the device's nest parent */
	uint32_t fault_id; /* with IOMMU_HWPT_FAULT_ID_VALID: the fault object */
};

/*
 * A fault object (IOMMU_FAULT_QUEUE_ALLOC): its id and a descriptor that
 * polls readable while records wait (iommufd: the kernel's fault fd; sim:
 * an eventfd the model keeps in step). The backend owns both.
 */
struct backend_fault_queue {
	uint32_t id;
	int fd;
};

/*
 * A vEVENTQ (IOMMU_VEVENTQ_ALLOC, 7.x): its id and a descriptor that polls
 * readable while records wait (iommufd: the kernel's vEVENTQ fd, made
 * non-blocking; sim: an eventfd the model keeps in step). The backend owns both.
 */
struct backend_veventq {
	uint32_t id;
	int fd;
};

/* IOMMU_TEST_OP_TRIGGER_IOPF: one page request from the device. */
struct backend_iopf {
	uint32_t pasid;
	uint32_t grpid;
	uint32_t perm; /* IOMMU_PGFAULT_PERM_* */
	uint64_t addr;
};

/*
 * IOMMU_HWPT_INVALIDATE, with the ioctl's exact semantics: entries of
 * entry_len bytes each; on return entry_num holds the number of entries
 * handled (the kernel stops at the first failing one) and the return value
 * is 0 or the failing entry's negative errno. hw_error, when not NULL, has
 * room for entry_num values, all zero on the call; backends that know a
 * per-entry hardware error (the simulator) write it for the entries they
 * walk (up to and including the one they stop at) and touch nothing else,
 * so a call costs what the backend walked, not entry_num.
 */
struct backend_inv {
	uint32_t hwpt_id;
	uint32_t data_type;
	uint32_t reserved; /* the ioctl's __reserved word */
	uint32_t entry_len;
	uint32_t entry_num; /* in: entries; out: handled */
	const void *entries;
	uint32_t *hw_error;
};

/*
 * IOMMU_GET_HW_INFO of a device, as the kernel answers it. data holds the
 * first min(data_len, BACKEND_HW_INFO_DATA_MAX) bytes of the type's
 * structure (struct iommu_hw_info_vtd, struct iommu_test_hw_info), the
 * rest zero; data_len is the length the kernel has for the type.
 */
#define BACKEND_HW_INFO_DATA_MAX 128

struct backend_hw_info {
	uint32_t data_type; /* IOMMU_HW_INFO_TYPE_* (NONE: the driver reports nothing) */
	uint32_t data_len;
	uint8_t data[BACKEND_HW_INFO_DATA_MAX];
	uint64_t capabilities;	/* IOMMU_HW_CAP_* */
	uint8_t max_pasid_log2; /* 0: no PASID support */
};

/*
 * A dirty bitmap of a device's nest parent, in the kernel's layout
 * (struct iommu_hwpt_get_dirty_bitmap): bit i of data[i / 64] is the page
 * [iova + i * page_size, + page_size). data holds
 * DIV_ROUND_UP(length / page_size, 64) words; get_dirty_bitmap only sets
 * bits (the caller zeroes it), set_dirty reads it.
 */
struct backend_dirty {
	uint64_t iova;
	uint64_t length;
	uint64_t page_size;
	uint32_t flags; /* IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR */
	uint64_t *data;
};

/*
 * A configured device as a VMM sees it once the daemon hands it over
 * (OpenDevice / AdoptDevice): the bound VFIO cdev (borrowed: the backend
 * keeps owning it; the caller dups what it passes on) and the kernel
 * objects behind it. parent_id 0: the host IOMMU cannot nest (nest_err
 * says what IOMMU_HWPT_ALLOC_NEST_PARENT answered) and the device sits on
 * a plain paging HWPT of its IOAS, so guest memory and DMA still work.
 */
struct backend_device {
	int fd; /* the VFIO cdev, bound to the backend's iommufd */
	uint32_t dev_id, parent_id, ioas_id, attached_id;
	uint32_t vfio_flags; /* VFIO_DEVICE_GET_INFO */
	uint32_t num_regions, num_irqs;
};

/* Test-only fault injection (sim); mirrors the InjectFault message. */
enum fault_mode {
	FAULT_CLEAR = 0,
	FAULT_AT_INDEX = 1, /* entry `index` of every submission */
	FAULT_AT_ADDR = 2,  /* any VT-d entry whose range covers `addr` */
};

struct backend_fault {
	uint32_t hwpt_id; /* 0: any */
	uint32_t mode;    /* enum fault_mode */
	uint32_t index;
	uint64_t addr;
	int32_t error;      /* negative errno, or 0 with hw_error only */
	uint32_t hw_error;  /* reported on the faulting entry */
	uint32_t latency_us; /* added to every submission */
	uint32_t count;     /* fires this many times; 0 = until cleared */
};

/* Kinds for sim_populate / sim_query (match SimCacheKind on the wire). */
enum sim_cache_kind {
	SIM_KIND_IOTLB = 1, /* leaf translation */
	SIM_KIND_PSC = 2,   /* paging-structure cache entry */
};

/*
 * A descriptor the backend's objects live in (persist/fdstore.c keeps it in
 * systemd's fd store under name, so that they survive a crash).
 */
#define BACKEND_FD_NAME_MAX 256 /* systemd's FDNAME limit: "ctx.<n>.vfio." + a device name */
#define BACKEND_MAX_FDS (1 + 64) /* iommufd + one per device */

struct backend_fd {
	char name[BACKEND_FD_NAME_MAX];
	int fd;
	/*
	 * Changes whenever fd is another open file under the same name (a
	 * VFIO cdev bound afresh may get the number back): the store's copy of
	 * the old file would keep the old binding alive.
	 */
	uint32_t gen;
};

/*
 * Hands over the inherited descriptor called name (the caller owns it from
 * then on), or returns -1 if there is none.
 */
typedef int (*backend_take_fd_fn)(void *ctx, const char *name);

struct backend_ops {
	const char *name;
	void (*close)(struct backend *be);
	void (*get_caps)(struct backend *be, struct backend_caps *caps);
	/* Names of the devices the backend knows, in config order. */
	uint32_t (*n_devices)(struct backend *be);
	const char *(*device_name)(struct backend *be, uint32_t i);
	int (*alloc_nested)(struct backend *be, const char *device, const struct backend_alloc *req,
			    uint32_t *out_hwpt_id, uint32_t *out_parent_id);
	int (*destroy)(struct backend *be, uint32_t hwpt_id);
	int (*attach)(struct backend *be, const char *device, uint32_t hwpt_id);
	int (*detach)(struct backend *be, const char *device);
	int (*invalidate)(struct backend *be, struct backend_inv *inv);
	/*
	 * Guest memory in the device's stage 2 (its own IOAS), with the
	 * semantics of IOMMU_IOAS_MAP (FIXED_IOVA implied) and
	 * IOMMU_IOAS_UNMAP. map_memory maps [offset, offset + length) of fd
	 * at iova; flags are IOMMU_IOAS_MAP_READABLE / _WRITEABLE. fd stays
	 * the caller's: the backend keeps no reference to it (the kernel
	 * holds the pinned pages). unmap_memory removes every mapping inside
	 * [iova, iova + length) (iova 0, length UINT64_MAX: all of them).
	 */
	int (*map_memory)(struct backend *be, const char *device, uint64_t iova, uint64_t length,
			  int fd, uint64_t offset, uint32_t flags);
	int (*unmap_memory)(struct backend *be, const char *device, uint64_t iova, uint64_t length);
	/* IOMMU_GET_HW_INFO on the device's iommufd device object. */
	int (*hw_info)(struct backend *be, const char *device, struct backend_hw_info *out);
	/*
	 * Dirty tracking on the device's nest parent, with the semantics of
	 * IOMMU_HWPT_SET_DIRTY_TRACKING and IOMMU_HWPT_GET_DIRTY_BITMAP.
	 */
	int (*set_dirty_tracking)(struct backend *be, const char *device, bool enable);
	int (*get_dirty_bitmap)(struct backend *be, const char *device,
				const struct backend_dirty *bm);
	/*
	 * Device hand-off, optional (NULL: the backend has no device fds; the
	 * sim models no VFIO device, a memfd standing for one would not be one).
	 * device_get: the bound cdev and ids, for the caller to hand out (from
	 *   then on device_adopt refuses: -EBUSY); -EOPNOTSUPP for a device
	 *   with no cdev (selftest mock), with *why saying so.
	 * device_adopt: replaces the backend's own cdev of the device by fd
	 *   (the backend dups it), bound and attached where the old one was:
	 *   -ENOTTY not a VFIO cdev, -EXDEV another device's, -EBUSY bound
	 *   already or the backend's own handed out, *why saying so.
	 * device_reclaim: puts the device back on the page table the backend
	 *   has it on (a VMM holding the fd may have attached it elsewhere;
	 *   the kernel cannot be asked where it is, so a move is undone, not
	 *   detected): 0 or a negative errno.
	 * device_reset: VFIO_DEVICE_RESET when GET_INFO has FLAGS_RESET;
	 *   -ENOTTY when the device has no reset.
	 * device_release: at the end of a claim, takes the device back for
	 *   the daemon alone: the backend's handed-out cdev is closed and a
	 *   fresh one bound, so a descriptor the former holder kept reaches
	 *   nothing. -EBUSY while that holder still keeps the old one open
	 *   (its binding lives as long as any descriptor of it): the device
	 *   must then serve nobody; calling again retries.
	 * nest_err: 0, or the errno IOMMU_HWPT_ALLOC_NEST_PARENT answered for
	 *   the device (it has no nest parent then: nested HWPTs cannot be).
	 */
	int (*device_get)(struct backend *be, const char *device, struct backend_device *out,
			  const char **why);
	int (*device_adopt)(struct backend *be, const char *device, int fd, const char **why);
	int (*device_reclaim)(struct backend *be, const char *device);
	int (*device_reset)(struct backend *be, const char *device);
	int (*device_release)(struct backend *be, const char *device);
	int (*nest_err)(struct backend *be, const char *device);
	int (*device_holds_fd)(struct backend *be, const char *device, int fd);
	/*
	 * Fault delivery, with the semantics of the fault fd: fault_read
	 * reads whole groups of records (each read assigns the group its
	 * cookie, the lowest free from 1) and returns how many records, 0 if
	 * none wait, or a negative errno; fault_respond writes one
	 * response (-EINVAL: unknown cookie or code). fault_free closes the
	 * descriptor and destroys the object (-EBUSY while a HWPT uses it).
	 * dev_id_name: the configured device behind an iommufd device id
	 * (a record's dev_id), or NULL.
	 * fault_reopen: after a restart, fault object id of a restored
	 * instance again, read and answered through fd (the fault fd the
	 * previous instance kept in the fd store; -1: none): 0 with *out
	 * (the backend owns out->fd from then on, as after fault_alloc), or
	 * -ESTALE / -ENOENT with fd left to the caller.
	 */
	int (*fault_alloc)(struct backend *be, struct backend_fault_queue *out);
	int (*fault_read)(struct backend *be, const struct backend_fault_queue *q,
			  struct iommu_hwpt_pgfault *recs, uint32_t max);
	int (*fault_respond)(struct backend *be, const struct backend_fault_queue *q,
			     const struct iommu_hwpt_page_response *resp);
	int (*fault_free)(struct backend *be, const struct backend_fault_queue *q);
	const char *(*dev_id_name)(struct backend *be, uint32_t dev_id);
	int (*fault_reopen)(struct backend *be, uint32_t id, int fd,
			    struct backend_fault_queue *out);
	/* Optional (NULL when the backend cannot): test-only operations. */
	int (*trigger_iopf)(struct backend *be, const char *device, const struct backend_iopf *t);
	/* Marks the bitmap's pages of the nest parent dirty (IOMMU_TEST_OP_DIRTY). */
	int (*set_dirty)(struct backend *be, const char *device, const struct backend_dirty *bm);
	int (*check_iotlb)(struct backend *be, uint32_t hwpt_id, uint32_t iotlb_id,
			   uint32_t expected);
	int (*sim_populate)(struct backend *be, uint32_t hwpt_id, uint64_t addr, uint64_t npages,
			    uint32_t kind);
	int (*sim_query)(struct backend *be, uint32_t hwpt_id, uint64_t addr, uint64_t npages,
			 uint64_t *iotlb_pages, uint64_t *psc_pages);
	/*
	 * The same on a nested HWPT of an ARM SMMUv3 vIOMMU: the host SMMU's
	 * TLB entries of the vIOMMU's VMID and asid (IOTLB: 4 KiB leaves;
	 * PSC: walk-cache entries of the 2 MiB blocks holding the pages).
	 */
	int (*sim_smmu_populate)(struct backend *be, uint32_t hwpt_id, uint32_t asid, uint64_t addr,
				 uint64_t npages, uint32_t kind);
	int (*sim_smmu_query)(struct backend *be, uint32_t hwpt_id, uint32_t asid, uint64_t addr,
			      uint64_t npages, uint64_t *iotlb_pages, uint64_t *psc_pages);
	int (*inject_fault)(struct backend *be, const struct backend_fault *f);

	/*
	 * Restart support (persist/). All optional.
	 *
	 * save: adds what the backend needs to find its objects again to obj
	 *   (a JSON object owned by the caller).
	 * restore: replaces a freshly opened backend's state with a saved one
	 *   (sim: the whole model); take_fd hands over inherited descriptors.
	 *   0, or a negative errno with the backend unchanged.
	 * reopen: the way back after a restart, and the only one persist/
	 *   takes, for every backend: makes a backend from what a previous
	 *   instance left, saved (the "backend_state" save() wrote; NULL: the
	 *   state file has none) and the descriptors take_fd hands over. A
	 *   constructor, not a method, because re-adopting can be all of the
	 *   construction (iommufd: a fresh open would create objects and bind
	 *   devices the stored fds still hold). 0 with *out; else a negative
	 *   errno, nothing taken left open, and *errmsg saying why the saved
	 *   objects cannot be recovered (NULL: there were none to recover).
	 * stored_fds: the descriptors to keep in the fd store; returns how many
	 *   (at most max). They stay owned by the backend.
	 * generation: a counter that changes whenever state that save()
	 *   writes changes, so that the caller persists only when needed (the
	 *   sim's model IOTLB changes on every invalidation, iommufd's never).
	 * save_delta: appends to records (a JSON array) journal records
	 *   (state_journal.h) of what changed since the last save or
	 *   save_delta, relative to the "backend_state" section that save()
	 *   fills; what it reports is then clean. -ENOMEM (or any error)
	 *   means the caller must write a full save() instead. NULL: only
	 *   full saves.
	 * has_hwpt: whether a nested HWPT id is alive in the backend.
	 * abandon: frees the backend without destroying the objects it
	 *   created (they outlive us in the fd store); NULL: close.
	 */
	int (*save)(struct backend *be, struct json_object *obj);
	int (*restore)(struct backend *be, struct json_object *obj, backend_take_fd_fn take_fd,
		       void *ctx, const char **errmsg);
	int (*reopen)(const struct config *cfg, struct json_object *saved,
		      backend_take_fd_fn take_fd, void *ctx, struct backend **out,
		      const char **errmsg);
	uint32_t (*stored_fds)(struct backend *be, struct backend_fd *out, uint32_t max);
	uint64_t (*generation)(struct backend *be);
	int (*save_delta)(struct backend *be, struct json_object *records);
	bool (*has_hwpt)(struct backend *be, uint32_t hwpt_id);
	void (*abandon)(struct backend *be);

	/*
	 * VM contexts. All optional (NULL: the backend has none).
	 *
	 * open_context: a new instance (same ops) for one VM: its own id space
	 *   (iommufd: its own open of /dev/iommu, so the kernel itself keeps
	 *   every other tenant's ids out of reach) and ONE IOAS for the VM's
	 *   guest memory, which map_memory fills whichever of the context's
	 *   devices it names. It holds no device until add_device; it knows
	 *   the root's device names. Close a context before its root.
	 * add_device: binds a device of the configuration into the context,
	 *   with a nest parent on the context's IOAS, attached to it (VFIO:
	 *   the root gives up its binding meanwhile, a cdev is bound to one
	 *   iommufd at a time). -ENODEV: no such device; -EEXIST: already in.
	 * remove_device: unbinds it (-EBUSY while nested HWPTs sit on its
	 *   parent; the caller destroys them first). Closing the context
	 *   removes every device.
	 */
	int (*open_context)(struct backend *root, struct backend **out);
	int (*add_device)(struct backend *ctx, const char *device);
	int (*remove_device)(struct backend *ctx, const char *device);
	/*
	 * A context after a restart, like reopen: from what save() wrote
	 * for it and the descriptors its stored_fds named (take_fd is asked
	 * for those names), linked to root again. save, stored_fds and
	 * abandon work on a context as on any instance.
	 */
	int (*reopen_context)(struct backend *root, struct json_object *saved,
			      backend_take_fd_fn take_fd, void *ctx, struct backend **out,
			      const char **errmsg);
	/*
	 * take_back_device: the root binds a device it lent to a context
	 * again, on its own nest parent, when that context is gone without
	 * giving it back (one that could not be reopened after a restart;
	 * its descriptors closed first). 0, also when the root holds it or
	 * has nothing to lend (mock devices); -EBUSY while another open
	 * descriptor still binds the cdev (retried at the next request that
	 * names the device, as after a failed give-back).
	 */
	int (*take_back_device)(struct backend *root, const char *device);
	/*
	 * vIOMMU objects (Linux 7.x, backend/viommu_uapi.h), with the
	 * semantics of IOMMU_VIOMMU_ALLOC on the device's nest parent,
	 * IOMMU_VDEVICE_ALLOC and IOMMU_DESTROY of either (-EBUSY while a
	 * vIOMMU has vDEVICEs). A 6.12 kernel answers -ENOTTY. Invalidation
	 * on a vIOMMU id is invalidate() with that id. NULL: -ENOTTY.
	 */
	int (*viommu_alloc)(struct backend *be, const char *device, uint32_t type, uint32_t flags,
			    uint32_t *out_viommu_id, uint32_t *out_parent_id);
	int (*vdevice_alloc)(struct backend *be, uint32_t viommu_id, const char *device,
			     uint64_t virt_id, uint32_t *out_vdevice_id);
	int (*destroy_object)(struct backend *be, uint32_t id);
	/*
	 * vEVENTQs (Linux 7.x, backend/veventq_uapi.h), with the semantics of
	 * IOMMU_VEVENTQ_ALLOC and its fd. veventq_read: the fd's read() of at
	 * most len bytes, whole records only (struct nestd_vevent_header and
	 * the type's data; a LOST_EVENTS header alone): the bytes read, 0 if
	 * none wait (never blocks), or a negative errno (-EINVAL: len under a
	 * header or under the first record). veventq_free closes the fd (it
	 * holds a reference) and destroys the object. trigger_vevent:
	 * IOMMU_TEST_OP_TRIGGER_VEVENT (test-only, optional). NULL: -ENOTTY.
	 */
	int (*veventq_alloc)(struct backend *be, uint32_t viommu_id, uint32_t type, uint32_t depth,
			     struct backend_veventq *out);
	int (*veventq_read)(struct backend *be, const struct backend_veventq *q, void *buf,
			    uint32_t len);
	int (*veventq_free)(struct backend *be, const struct backend_veventq *q);
	int (*trigger_vevent)(struct backend *be, const char *device);
	/*
	 * After a restart, as fault_reopen: vEVENTQ id of a restored instance
	 * read again through fd (the one the previous instance kept in the fd
	 * store; -1: none). 0 with *out (the backend owns out->fd, as after
	 * veventq_alloc; the kernel queued the records meanwhile, up to its
	 * depth), or -ESTALE / -ENOENT with fd left to the caller.
	 */
	int (*veventq_reopen)(struct backend *be, uint32_t id, int fd, struct backend_veventq *out);
	/*
	 * PASID attachments (Linux 7.x; backend/sim/pasid.c, backend/iommufd/pasid.c), with the
	 * semantics of VFIO_DEVICE_ATTACH_IOMMUFD_PT / _DETACH with the
	 * PASID flag: attach_pasid attaches hwpt_id (a nested HWPT, or the
	 * device's nest parent) to pasid of device, or replaces what that
	 * pasid has; the HWPT must be IOMMU_HWPT_ALLOC_PASID and so must the
	 * device's RID domain (-EINVAL otherwise, iommufd/device.c
	 * iommufd_hwpt_pasid_compat()); a HWPT attached on a PASID is -EBUSY
	 * to destroy. detach_pasid answers 0 when nothing is attached.
	 * Linux 6.12 has none of it: the mock's test op is -EOPNOTSUPP,
	 * VFIO's flag -EINVAL. pasid 0 (IOMMU_NO_PASID) is the RID's: the
	 * daemon never passes it. NULL: -EOPNOTSUPP.
	 */
	int (*attach_pasid)(struct backend *be, const char *device, uint32_t pasid,
			    uint32_t hwpt_id);
	int (*detach_pasid)(struct backend *be, const char *device, uint32_t pasid);
	/*
	 * After a restart: the state file says hwpt_id sits on pasid of
	 * device (the kernel kept the attachment in the kept iommufd). 0 when
	 * the backend has it so (and tracks it again, for detach_pasid and
	 * its close), -EINVAL when it has not (a mock asks the kernel,
	 * PASID_CHECK_HWPT; VFIO has no such question and trusts the file),
	 * -ENOENT for an unknown device. NULL: none survive.
	 */
	int (*pasid_restore)(struct backend *be, const char *device, uint32_t pasid,
			     uint32_t hwpt_id);
	/*
	 * After a restart: whether id is alive in the backend as a vIOMMU
	 * (viommu true) or a vDEVICE, as the state file says it was. NULL:
	 * the backend has none.
	 */
	bool (*has_vobj)(struct backend *be, uint32_t id, bool viommu);
	/*
	 * Before vdevice_alloc, for a backend whose objects outlive the
	 * state file's write (iommufd): the id the vDEVICE will get, kept
	 * in what save() writes until vdevice_alloc returns, so that a
	 * restart after a crash in between finds the vDEVICE nobody
	 * recorded (no ioctl looks a vDEVICE up by id). NULL: not needed.
	 */
	int (*vdevice_intent)(struct backend *be);
};

/* Every backend object starts with this. */
struct backend {
	const struct backend_ops *ops;
};

/*
 * Opens the backend named in cfg->backend ("sim", "iommufd"). Returns 0 or a
 * negative errno; on failure *errmsg (static or cfg-owned) says why.
 */
int backend_open(const struct config *cfg, struct backend **out, const char **errmsg);

/* The operations of the backend called name ("sim", "iommufd"), or NULL. */
const struct backend_ops *backend_ops_named(const char *name);
extern const struct backend_ops backend_sim_ops;
extern const struct backend_ops backend_iommufd_ops;

/* Constructors, one per backend. */
int backend_sim_open(const struct config *cfg, struct backend **out, const char **errmsg);
int backend_iommufd_open(const struct config *cfg, struct backend **out, const char **errmsg);

#endif
