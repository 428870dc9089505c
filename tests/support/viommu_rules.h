/* SPDX-License-Identifier: MIT */
/*
 * The vIOMMU / vDEVICE / selftest-vIOMMU-invalidation rules of the 7.2
 * kernel as one table that three drivers run unchanged: directly on
 * /dev/iommu in the kernel tiers' guest (tests/kernel/ktest_viommu.c),
 * through the daemon and libiommu-nest (tests/integration/test_viommu_rules.c,
 * on the sim and on both kernel tiers), and on the sim backend directly
 * (tests/unit/test_sim_viommu_rules.c). Every row is a short script of
 * steps on two mock devices (0 and 1, each with its own nest parent); each
 * step has the kernel's errno and, for invalidations, its entry_num. A row
 * passes when every step answers exactly that. The ARM SMMUv3 rows use two
 * SMMUv3 devices (2, 3) that only the sim has (no SMMUv3 on an x86 guest):
 * there the sim stands for the 7.2 driver (arm-smmu-v3-iommufd.c) and the
 * daemon must answer as the sim does.
 *
 * Where the daemon refuses more than the kernel (its own documented rule)
 * the row's last step carries the daemon's errno and the reason; where a
 * request cannot be expressed through a driver at all, the row says so and
 * that driver skips it with the reason. On Linux 6.12 (no IOMMU_VIOMMU_ALLOC)
 * every row's first step, always an AllocViommu, answers -ENOTTY.
 *
 * Independent of daemon code: the kernel's numbers are written out here.
 */
#ifndef IOMMU_NESTD_VIOMMU_RULES_H
#define IOMMU_NESTD_VIOMMU_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* include/uapi/linux/iommufd.h, drivers/iommu/iommufd/iommufd_test.h (7.2). */
#define VR_VIOMMU_TYPE_DEFAULT	  0u
#define VR_VIOMMU_TYPE_ARM_SMMUV3 1u
#define VR_VIOMMU_TYPE_SELFTEST	  0xdeadbeefu
#define VR_INV_DATA_SELFTEST	  0xdeadbeefu /* IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST */
#define VR_INV_DATA_SELFTEST_BAD  0xdadbeefu  /* ..._SELFTEST_INVALID */
#define VR_INV_DATA_ARM_SMMUV3	  1u
#define VR_HWPT_DATA_VTD_S1	  1u
#define VR_HWPT_DATA_SELFTEST	  0xdeadu
#define VR_HWPT_DATA_ARM_SMMUV3	  2u
#define VR_SMMU_CMD_LEN		  16u /* struct iommu_viommu_arm_smmuv3_invalidate */
#define VR_INV_FLAG_ALL		  1u  /* IOMMU_TEST_INVALIDATE_FLAG_ALL */
#define VR_CACHE_ID_MAX		  3u  /* MOCK_DEV_CACHE_ID_MAX */
#define VR_INV_LEN		  12u /* struct iommu_viommu_invalidate_selftest */
#define VR_PAGE_SIZE		  4096u
#define VR_IOTLB_DEFAULT	  0xbadbeefu /* IOMMU_TEST_IOTLB_DEFAULT */

enum vr_op {
	VR_END = 0,
	VR_VIOMMU,  /* IOMMU_VIOMMU_ALLOC on dev's parent: type, flags, parent */
	VR_VDEV,    /* IOMMU_VDEVICE_ALLOC: ref (the vIOMMU), dev, virt_id */
	VR_DESTROY, /* IOMMU_DESTROY of ref's object, named as kind */
	VR_NESTED,  /* IOMMU_HWPT_ALLOC on dev, pt_id = ref (a vIOMMU), data type */
	VR_ATTACH,  /* dev onto ref's HWPT */
	VR_DETACH,  /* dev back to its nest parent */
	VR_INV,	    /* IOMMU_HWPT_INVALIDATE on ref's id: type, entry_len, entries */
};

/* Which page table VR_VIOMMU names (the kernel lets any id be hwpt_id). */
enum vr_parent {
	VR_PARENT_NEST = 0, /* the device's nest parent: all the daemon can name */
	VR_PARENT_PAGING,   /* a plain paging HWPT of the device (no NEST_PARENT) */
	VR_PARENT_ZERO,	    /* hwpt_id 0 */
};

/* What VR_DESTROY names the object as (IOMMU_DESTROY itself takes any kind). */
enum vr_kind {
	VR_KIND_VIOMMU = 1, /* = IOMMU_NEST_OBJECT_VIOMMU */
	VR_KIND_VDEVICE = 2,
	VR_KIND_HWPT = 3,
};

#define VR_BOGUS       (-1)	   /* ref: an id that names nothing */
#define VR_BOGUS_ID    0x7ffffff0u /* ... this one */
#define VR_MAX_STEPS   8
#define VR_MAX_ENTRIES 8

/*
 * One invalidation entry: a selftest {flags, vdev_id, cache_id}, or with
 * the SMMUv3 data type the command's two words (host order; laid out
 * little-endian). tail: the first byte past the native size where
 * entry_len is longer.
 */
struct vr_entry {
	uint32_t flags, vdev_id, cache_id;
	uint8_t tail;
	uint64_t cmd[2];
};

struct vr_step {
	enum vr_op op;
	uint8_t dev;
	int8_t ref; /* index of an earlier step whose object this names, or VR_BOGUS */
	enum vr_parent parent;
	enum vr_kind kind;
	uint32_t type; /* vIOMMU type, invalidation or nested data type */
	uint32_t flags;
	uint64_t virt_id;
	uint32_t entry_len;
	uint32_t n;
	struct vr_entry e[VR_MAX_ENTRIES];
	int want;	 /* the kernel's answer: 0 or -errno */
	uint32_t count;	 /* VR_INV: the kernel's entry_num */
	uint64_t ste[2]; /* VR_NESTED with VR_HWPT_DATA_ARM_SMMUV3: the guest's STE */
};

/*
 * Devices: 0 and 1 are selftest mock devices (st0, st1), 2 and 3 ARM
 * SMMUv3 devices (sm0, sm1), which only the sim has.
 */
#define VR_N_DEVS 4

/* The sides a row runs on. */
enum vr_side {
	VR_SIDE_KERNEL = 1, /* ioctls on /dev/iommu */
	VR_SIDE_DAEMON = 2, /* through libiommu-nest */
	VR_SIDE_SIM = 4,    /* the sim backend's ops */
};

struct vr_row {
	const char *name;
	const char *rule; /* what the kernel does, and where */
	struct vr_step steps[VR_MAX_STEPS];
	/* Sides that cannot express the request, and why. */
	unsigned unreachable;
	const char *unreachable_why;
	/* The daemon's own answer to the last step, where its documented rule differs. */
	bool daemon_differs;
	int daemon_want;
	uint32_t daemon_count;
	const char *daemon_why;
};

extern const struct vr_row vr_rows[];
extern const size_t vr_n_rows;

/* A driver: fresh state per row (begin/end), one call per step kind. */
struct vr_driver {
	enum vr_side side;
	void *ctx;
	int (*begin)(void *ctx);
	/* Optional: false for a device this side does not offer (its rows skip). */
	bool (*has_dev)(void *ctx, unsigned dev);
	void (*end)(void *ctx);
	int (*viommu_alloc)(void *ctx, unsigned dev, enum vr_parent parent, uint32_t type,
			    uint32_t flags, uint32_t *id);
	int (*vdevice_alloc)(void *ctx, uint32_t viommu, unsigned dev, uint64_t virt_id,
			     uint32_t *id);
	int (*destroy)(void *ctx, enum vr_kind kind, uint32_t id);
	int (*alloc_nested)(void *ctx, unsigned dev, uint32_t viommu, uint32_t data_type,
			    const void *data, uint32_t len, uint32_t *id);
	int (*attach)(void *ctx, unsigned dev, uint32_t hwpt);
	int (*detach)(void *ctx, unsigned dev);
	/* entries: n * entry_len bytes in the driver's layout; *done: entry_num. */
	int (*invalidate)(void *ctx, uint32_t id, uint32_t data_type, uint32_t entry_len,
			  const void *entries, uint32_t n, uint32_t *done);
};

enum vr_result { VR_PASS, VR_FAIL, VR_SKIP };

/*
 * Runs row on d. kernel7: the running kernel (or the sim) follows 7.x
 * rules; otherwise only the first step runs and must answer -ENOTTY.
 * msg says what differed (VR_FAIL) or why the row cannot run (VR_SKIP).
 */
enum vr_result vr_run(const struct vr_row *row, const struct vr_driver *d, bool kernel7, char *msg,
		      size_t msglen);

/* The table's own invariants (first step an AllocViommu, refs backwards): NULL or a complaint. */
const char *vr_table_check(void);

/* "-EINVAL" or "0". */
const char *vr_errname(int rc, char *buf, size_t len);

#endif
