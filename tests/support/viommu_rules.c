/* SPDX-License-Identifier: MIT */
/*
 * The rows of viommu_rules.h, each from the 7.2 kernel's code:
 * drivers/iommu/iommufd/viommu.c (VIOMMU_ALLOC, VDEVICE_ALLOC),
 * hw_pagetable.c (HWPT_ALLOC with a vIOMMU, HWPT_INVALIDATE's bounds and
 * object lookup), main.c (IOMMU_DESTROY), selftest.c (the mock vIOMMU:
 * mock_get_viommu_size, mock_viommu_alloc_domain_nested,
 * mock_viommu_cache_invalidate, mock_domain_nop_attach), and the selftest
 * cases of tools/testing/selftests/iommu/iommufd.c (iommufd_viommu:
 * viommu_negative_tests, vdevice_alloc, vdevice_cache) whose EXPECT_ERRNOs
 * our calls reach; the SMMUv3 rows from arm-smmu-v3-iommufd.c
 * (arm_vsmmu_convert_user_cmd's opcode allowlist and vSID translation,
 * arm_vsmmu_cache_invalidate's full-array copy and entry_num,
 * arm_vsmmu_alloc_domain_nested / arm_smmu_validate_vste).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np */
#endif
#include "viommu_rules.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Step constructors. */
#define V(d)                                                                                       \
	{                                                                                          \
		.op = VR_VIOMMU, .dev = (d), .type = VR_VIOMMU_TYPE_SELFTEST                       \
	}
#define VT(t, w)                                                                                   \
	{                                                                                          \
		.op = VR_VIOMMU, .type = (t), .want = (w)                                          \
	}
#define D(r, d, virt, w)                                                                           \
	{                                                                                          \
		.op = VR_VDEV, .ref = (r), .dev = (d), .virt_id = (virt), .want = (w)              \
	}
#define X(k, r, w)                                                                                 \
	{                                                                                          \
		.op = VR_DESTROY, .kind = (k), .ref = (r), .want = (w)                             \
	}
#define N(r, d, t, w)                                                                              \
	{                                                                                          \
		.op = VR_NESTED, .ref = (r), .dev = (d), .type = (t), .want = (w)                  \
	}
#define A(d, r, w)                                                                                 \
	{                                                                                          \
		.op = VR_ATTACH, .dev = (d), .ref = (r), .want = (w)                               \
	}
#define INV(r, t, len, w, c, ...)                                                                  \
	{                                                                                          \
		.op = VR_INV, .ref = (r), .type = (t), .entry_len = (len),                         \
		.n = sizeof((struct vr_entry[]){__VA_ARGS__}) / sizeof(struct vr_entry),           \
		.e = {__VA_ARGS__}, .want = (w), .count = (c)                                      \
	}
#define INV0(r, t, w)                                                                              \
	{                                                                                          \
		.op = VR_INV, .ref = (r), .type = (t), .entry_len = VR_INV_LEN, .want = (w)        \
	}
#define E(f, v, c)                                                                                 \
	{                                                                                          \
		.flags = (f), .vdev_id = (v), .cache_id = (c)                                      \
	}

/* The invalidation rows' setup: a vIOMMU on dev 0, vDEVICEs 0x10 (dev 0) and 0x20 (dev 1). */
#define SETUP V(0), D(0, 0, 0x10, 0), D(0, 1, 0x20, 0)
#define ST    VR_INV_DATA_SELFTEST

#define ONLY_KERNEL (VR_SIDE_DAEMON | VR_SIDE_SIM)

/* ARM SMMUv3 (arm-smmu-v3-iommufd.c): devices 2 and 3 exist on the sim only. */
#define NO_SMMU "no SMMUv3 on an x86 guest: the rows hold the sim to arm-smmu-v3-iommufd.c"
#define SMROW(nm, why, ...)                                                                        \
	{                                                                                          \
		.name = nm, .rule = why, .steps = {__VA_ARGS__}, .unreachable = VR_SIDE_KERNEL,    \
		.unreachable_why = NO_SMMU                                                         \
	}
#define VS(d)                                                                                      \
	{                                                                                          \
		.op = VR_VIOMMU, .dev = (d), .type = VR_VIOMMU_TYPE_ARM_SMMUV3                     \
	}
#define NS(r, d, s0, s1, w)                                                                        \
	{                                                                                          \
		.op = VR_NESTED, .ref = (r), .dev = (d), .type = VR_HWPT_DATA_ARM_SMMUV3,          \
		.ste = {(s0), (s1)}, .want = (w)                                                   \
	}
#define SMINV(len, w, c, ...) INV(0, VR_INV_DATA_ARM_SMMUV3, len, w, c, __VA_ARGS__)
/* The setup of the SMMUv3 invalidation rows: a vIOMMU on sm0, sm0 as vSID 8. */
#define SM_SETUP VS(2), D(0, 2, 8, 0)
/* Commands (the architecture's formats): opcode in bits 7:0 of the first word. */
#define CMD(w0, w1)                                                                                \
	{                                                                                          \
		.cmd = {(w0), (w1) }                                                               \
	}
#define F_ASID(a)     ((uint64_t)(a) << 48)
#define F_SID(s)      ((uint64_t)(s) << 32) /* and VMID: bits 47:32 */
#define F_SSID(s)     ((uint64_t)(s) << 12)
#define SMVA	      0x40000000ull
#define C_NH_VA(va)   CMD(0x12 | F_ASID(5), (va) | 1)
#define C_NH_VAA(va)  CMD(0x13, (va) | 1)
#define C_NH_ALL      CMD(0x10, 0)
#define C_NH_ASID(a)  CMD(0x11 | F_ASID(a), 0)
#define C_NSNH_ALL    CMD(0x30, 0)
#define C_ATC(sid)    CMD(0x40 | F_SID(sid), 0)
#define C_CD(sid)     CMD(0x05 | F_SSID(0) | F_SID(sid), 1)
#define C_CD_ALL(sid) CMD(0x06 | F_SID(sid), 0)
#define C_OP(op)      CMD((op), 0)
/* A valid S1 STE: V, Config S1 translate, a CD table pointer. */
#define STE_S1 (1 | 5u << 1 | 0x80000000ull)

const struct vr_row vr_rows[] = {
    /* ---- IOMMU_VIOMMU_ALLOC (viommu.c iommufd_viommu_alloc_ioctl) ---- */
    {.name = "viommu_alloc", .rule = "the mock's own type on a nest parent", .steps = {V(0)}},
    {.name = "viommu_two_on_one_parent",
     .rule = "each alloc is a new object holding the parent",
     .steps = {V(0), V(0)}},
    {.name = "viommu_flags",
     .rule = "cmd->flags != 0: -EOPNOTSUPP before any lookup",
     .steps =
	 {{.op = VR_VIOMMU, .type = VR_VIOMMU_TYPE_SELFTEST, .flags = 1, .want = -EOPNOTSUPP}}},
    {.name = "viommu_type_default",
     .rule = "IOMMU_VIOMMU_TYPE_DEFAULT: -EOPNOTSUPP",
     .steps = {VT(VR_VIOMMU_TYPE_DEFAULT, -EOPNOTSUPP)}},
    {.name = "viommu_type_unknown",
     .rule = "get_viommu_size() 0 for 0xdead (selftest: unsupported viommu type)",
     .steps = {VT(0xdead, -EOPNOTSUPP)}},
    {.name = "viommu_type_smmuv3_on_mock",
     .rule = "mock_get_viommu_size() knows only the selftest type",
     .steps = {VT(VR_VIOMMU_TYPE_ARM_SMMUV3, -EOPNOTSUPP)}},
    {.name = "viommu_not_nest_parent",
     .rule = "a paging HWPT without NEST_PARENT: -EINVAL (selftest)",
     .steps = {{.op = VR_VIOMMU,
		.type = VR_VIOMMU_TYPE_SELFTEST,
		.parent = VR_PARENT_PAGING,
		.want = -EINVAL}},
     .unreachable = ONLY_KERNEL,
     .unreachable_why =
	 "AllocViommu (and the backend's viommu_alloc) always names the device's nest parent"},
    {.name = "viommu_hwpt_zero",
     .rule = "hwpt_id 0: iommufd_get_hwpt_paging() -ENOENT (selftest)",
     .steps = {{.op = VR_VIOMMU,
		.type = VR_VIOMMU_TYPE_SELFTEST,
		.parent = VR_PARENT_ZERO,
		.want = -ENOENT}},
     .unreachable = ONLY_KERNEL,
     .unreachable_why =
	 "AllocViommu (and the backend's viommu_alloc) always names the device's nest parent"},

    /* ---- IOMMU_VDEVICE_ALLOC (viommu.c iommufd_vdevice_alloc_ioctl) ---- */
    {.name = "vdev_alloc",
     .rule = "a device on the vIOMMU with a virt_id",
     .steps = {V(0), D(0, 0, 0x10, 0)}},
    {.name = "vdev_viommu_unknown",
     .rule = "iommufd_get_viommu() of no object: -ENOENT",
     .steps = {V(0), D(VR_BOGUS, 0, 0x10, -ENOENT)}},
    {.name = "vdev_viommu_is_vdevice",
     .rule = "iommufd_get_viommu() of a vDEVICE's id: the wrong kind, -ENOENT",
     .steps = {V(0), D(0, 0, 0x10, 0), D(1, 1, 0x11, -ENOENT)}},
    {.name = "vdev_virt_id_taken",
     .rule = "xa_insert() of a taken virt_id: -EBUSY turned -EEXIST",
     .steps = {V(0), D(0, 0, 0x10, 0), D(0, 1, 0x10, -EEXIST)}},
    {.name = "vdev_device_has_vdev",
     .rule = "idev->vdev set: -EEXIST (selftest vdevice_alloc)",
     .steps = {V(0), D(0, 0, 0x10, 0), D(0, 0, 0x11, -EEXIST)}},
    {.name = "vdev_device_has_vdev_elsewhere",
     .rule = "idev->vdev is per device, whichever vIOMMU holds it",
     .steps = {V(0), V(1), D(0, 0, 0x10, 0), D(1, 0, 0x12, -EEXIST)}},
    {.name = "vdev_virt_id_per_viommu",
     .rule = "virt_ids live in each vIOMMU's own xarray",
     .steps = {V(0), V(1), D(0, 0, 0x10, 0), D(1, 1, 0x10, 0)}},
    {.name = "vdev_again_after_destroy",
     .rule = "destroy clears idev->vdev and the xarray slot",
     .steps = {V(0), D(0, 0, 7, 0), X(VR_KIND_VDEVICE, 1, 0), D(0, 0, 7, 0)}},

    /* ---- IOMMU_DESTROY (main.c: users refcount) ---- */
    {.name = "destroy_viommu_with_vdev",
     .rule = "a vDEVICE holds the vIOMMU: -EBUSY",
     .steps = {V(0), D(0, 0, 0x10, 0), X(VR_KIND_VIOMMU, 0, -EBUSY)}},
    {.name = "destroy_viommu_with_nested",
     .rule = "a nested HWPT on it holds the vIOMMU: -EBUSY",
     .steps = {V(0), N(0, 0, VR_HWPT_DATA_SELFTEST, 0), X(VR_KIND_VIOMMU, 0, -EBUSY)}},
    {.name = "destroy_vdev_then_viommu",
     .rule = "vDEVICE first, then the vIOMMU is free",
     .steps = {V(0), D(0, 0, 0x10, 0), X(VR_KIND_VDEVICE, 1, 0), X(VR_KIND_VIOMMU, 0, 0)}},
    {.name = "destroy_nested_then_viommu",
     .rule = "the HWPT first, then the vIOMMU is free",
     .steps = {V(0), N(0, 0, VR_HWPT_DATA_SELFTEST, 0), X(VR_KIND_HWPT, 1, 0),
	       X(VR_KIND_VIOMMU, 0, 0)}},
    {.name = "destroy_vdev_twice",
     .rule = "a destroyed id is gone: -ENOENT",
     .steps = {V(0), D(0, 0, 0x10, 0), X(VR_KIND_VDEVICE, 1, 0), X(VR_KIND_VDEVICE, 1, -ENOENT)}},
    {.name = "destroy_vdev_named_viommu",
     .rule = "IOMMU_DESTROY takes any object's id: the vDEVICE goes",
     .steps = {V(0), D(0, 0, 0x10, 0), X(VR_KIND_VIOMMU, 1, 0)},
     .daemon_differs = true,
     .daemon_want = -ENOENT,
     .daemon_count = 0,
     .daemon_why = "DestroyObject names the kind: a vDEVICE's id is no vIOMMU of this client"},
    {.name = "destroy_viommu_named_hwpt",
     .rule = "IOMMU_DESTROY takes any object's id: the unused vIOMMU goes",
     .steps = {V(0), X(VR_KIND_HWPT, 0, 0)},
     .daemon_differs = true,
     .daemon_want = -ENOENT,
     .daemon_count = 0,
     .daemon_why = "Destroy takes HWPTs only: a vIOMMU's id is no HWPT of this client"},

    /* ---- IOMMU_HWPT_ALLOC on a vIOMMU (hw_pagetable.c, the mock's alloc_domain_nested) ---- */
    {.name = "nested_on_viommu",
     .rule = "pt_id a vIOMMU: the mock's nested domain",
     .steps = {V(0), N(0, 0, VR_HWPT_DATA_SELFTEST, 0)}},
    {.name = "nested_on_viommu_other_device",
     .rule = "one mock IOMMU instance: another mock device may use it",
     .steps = {V(0), N(0, 1, VR_HWPT_DATA_SELFTEST, 0)}},
    {.name = "nested_on_viommu_vtd_data",
     .rule = "__mock_domain_alloc_nested(): not its data type, -EOPNOTSUPP",
     .steps = {V(0), N(0, 0, VR_HWPT_DATA_VTD_S1, -EOPNOTSUPP)}},
    {.name = "nested_pt_unknown",
     .rule = "iommufd_get_object() of no object: -EINVAL",
     .steps = {V(0), N(VR_BOGUS, 0, VR_HWPT_DATA_SELFTEST, -EINVAL)},
     .daemon_differs = true,
     .daemon_want = -ENOENT,
     .daemon_count = 0,
     .daemon_why = "a client names only its own objects; any other id is -ENOENT"},
    {.name = "nested_pt_is_vdevice",
     .rule = "pt_id of a vDEVICE: neither IOAS, paging HWPT nor vIOMMU, -EINVAL",
     .steps = {V(0), D(0, 0, 0x10, 0), N(1, 0, VR_HWPT_DATA_SELFTEST, -EINVAL)},
     .daemon_differs = true,
     .daemon_want = -ENOENT,
     .daemon_count = 0,
     .daemon_why = "a vDEVICE's id is no vIOMMU of this client: -ENOENT"},
    {.name = "attach_without_vdev",
     .rule = "mock_domain_nop_attach(): no vDEVICE on its vIOMMU, -ENOENT",
     .steps = {V(0), N(0, 0, VR_HWPT_DATA_SELFTEST, 0), A(0, 1, -ENOENT)}},
    {.name = "attach_with_vdev",
     .rule = "the device's vDEVICE on the HWPT's vIOMMU: attached",
     .steps = {V(0), N(0, 0, VR_HWPT_DATA_SELFTEST, 0), D(0, 0, 0x10, 0), A(0, 1, 0)}},
    {.name = "attach_vdev_of_other_device",
     .rule = "only the device's own vDEVICE counts: -ENOENT",
     .steps = {V(0), N(0, 0, VR_HWPT_DATA_SELFTEST, 0), D(0, 1, 0x10, 0), A(0, 1, -ENOENT)}},
    {.name = "attach_vdev_on_other_viommu",
     .rule = "a vDEVICE on another vIOMMU does not count: -ENOENT",
     .steps = {V(0), V(0), N(0, 0, VR_HWPT_DATA_SELFTEST, 0), D(1, 0, 0x10, 0), A(0, 2, -ENOENT)}},

    {.name = "destroy_nested_attached",
     .rule = "an attached HWPT is held by the device: -EBUSY",
     .steps = {V(0), N(0, 0, VR_HWPT_DATA_SELFTEST, 0), D(0, 0, 0x10, 0), A(0, 1, 0),
	       X(VR_KIND_HWPT, 1, -EBUSY)}},
    {.name = "destroy_nested_detached",
     .rule = "back on its nest parent, the device lets the HWPT go",
     .steps = {V(0),
	       N(0, 0, VR_HWPT_DATA_SELFTEST, 0),
	       D(0, 0, 0x10, 0),
	       A(0, 1, 0),
	       {.op = VR_DETACH, .dev = 0},
	       X(VR_KIND_HWPT, 1, 0)}},

    /* ---- IOMMU_HWPT_INVALIDATE on a vIOMMU (mock_viommu_cache_invalidate) ---- */
    {.name = "inv_entries",
     .rule = "in order, each its slot or FLAG_ALL every slot",
     .steps = {SETUP, INV(0, ST, VR_INV_LEN, 0, 4, E(0, 0x10, 1), E(VR_INV_FLAG_ALL, 0x20, 0),
			  E(0, 0x10, 3), E(0, 0x20, 2))}},
    {.name = "inv_empty",
     .rule = "entry_num 0 with its own type validates the type: 0, entry_num 0",
     .steps = {SETUP, INV0(0, ST, 0)}},
    {.name = "inv_empty_wrong_type",
     .rule = "entry_num 0 with another type: the full-array copy's -EINVAL",
     .steps = {SETUP, INV0(0, VR_INV_DATA_SELFTEST_BAD, -EINVAL)}},
    {.name = "inv_wrong_type",
     .rule = "..._SELFTEST_INVALID: -EINVAL, nothing handled (selftest)",
     .steps = {SETUP, INV(0, VR_INV_DATA_SELFTEST_BAD, VR_INV_LEN, -EINVAL, 0, E(0, 0x10, 0))}},
    {.name = "inv_smmuv3_type_on_mock",
     .rule = "the SMMUv3 type on the mock vIOMMU: -EINVAL",
     .steps = {SETUP, INV(0, VR_INV_DATA_ARM_SMMUV3, 16, -EINVAL, 0, E(0, 0x10, 0))}},
    {.name = "inv_flags_unknown",
     .rule = "flags beyond FLAG_ALL: -EOPNOTSUPP, the ones before done",
     .steps = {SETUP, INV(0, ST, VR_INV_LEN, -EOPNOTSUPP, 2, E(0, 0x10, 0), E(0, 0x20, 1),
			  E(2, 0x10, 2), E(0, 0x10, 3))}},
    {.name = "inv_flags_all_ones",
     .rule = "flags 0xffffffff first: -EOPNOTSUPP, entry_num 0 (selftest)",
     .steps = {SETUP, INV(0, ST, VR_INV_LEN, -EOPNOTSUPP, 0, E(0xffffffffu, 0x10, 0))}},
    {.name = "inv_flags_before_cache_id",
     .rule = "the flags are checked before cache_id",
     .steps = {SETUP, INV(0, ST, VR_INV_LEN, -EOPNOTSUPP, 0, E(2, 0x10, 9))}},
    {.name = "inv_cache_id_max",
     .rule = "cache_id MOCK_DEV_CACHE_ID_MAX is the last slot",
     .steps = {SETUP, INV(0, ST, VR_INV_LEN, 0, 1, E(0, 0x10, VR_CACHE_ID_MAX))}},
    {.name = "inv_cache_id_past_max",
     .rule = "cache_id > MOCK_DEV_CACHE_ID_MAX: -EINVAL at that entry",
     .steps = {SETUP,
	       INV(0, ST, VR_INV_LEN, -EINVAL, 1, E(0, 0x10, 0), E(0, 0x10, VR_CACHE_ID_MAX + 1))}},
    {.name = "inv_all_checks_cache_id",
     .rule = "FLAG_ALL ignores cache_id only after its range check",
     .steps = {SETUP,
	       INV(0, ST, VR_INV_LEN, -EINVAL, 0, E(VR_INV_FLAG_ALL, 0x10, VR_CACHE_ID_MAX + 1))}},
    {.name = "inv_vdev_unknown",
     .rule = "iommufd_viommu_find_dev() finds no vDEVICE: -EINVAL at that entry",
     .steps = {SETUP, INV(0, ST, VR_INV_LEN, -EINVAL, 1, E(0, 0x10, 0), E(0, 0x9, 0))}},
    {.name = "inv_vdev_destroyed",
     .rule = "a destroyed vDEVICE's virt_id is unknown again",
     .steps = {SETUP, X(VR_KIND_VDEVICE, 1, 0), INV(0, ST, VR_INV_LEN, -EINVAL, 0, E(0, 0x10, 0))}},
    {.name = "inv_len_longer_zero_tail",
     .rule = "copy_struct_from_user(): zeros past 12 bytes are fine",
     .steps = {SETUP, INV(0, ST, 16, 0, 2, E(0, 0x10, 0), E(0, 0x20, 1))}},
    {.name = "inv_len_longer_nonzero_tail",
     .rule = "a non-zero byte past 12: -E2BIG, the whole array first",
     .steps = {SETUP, INV(0, ST, 16, -E2BIG, 0, E(0, 0x10, 0),
			  {.vdev_id = 0x20, .cache_id = 1, .tail = 9})}},
    {.name = "inv_len_13",
     .rule = "sizeof + 1 (selftest's structure size case) with a zero last byte",
     .steps = {SETUP, INV(0, ST, 13, 0, 2, E(0, 0x10, 0), E(0, 0x20, 1))}},
    {.name = "inv_len_8",
     .rule = "a shorter entry is zero-extended: cache_id 0",
     .steps = {SETUP, INV(0, ST, 8, 0, 1, E(0, 0x10, 9))}},
    {.name = "inv_len_1",
     .rule = "entry_len 1 (selftest): vdev_id zero-extended to 0, no such vDEVICE",
     .steps = {SETUP, INV(0, ST, 1, -EINVAL, 0, E(0, 0x10, 0))}},
    {.name = "inv_len_past_page",
     .rule = "entry_len > PAGE_SIZE: the core's -EINVAL before any lookup",
     .steps = {SETUP, INV(0, ST, VR_PAGE_SIZE + 1, -EINVAL, 0, E(0, 0x10, 0))}},
    {.name = "inv_len_zero",
     .rule = "entry_len 0 with entries: the core's -EINVAL (selftest)",
     .steps = {SETUP, INV(0, ST, 0, -EINVAL, 0, E(0, 0x10, 0))},
     .daemon_differs = true,
     .daemon_want = 0,
     .daemon_count = 1,
     .daemon_why = "on the wire entry_len 0 means the type's native size (12 bytes)"},
    {.name = "inv_unknown_id",
     .rule = "iommufd_get_object() of no object: -ENOENT",
     .steps = {SETUP, INV(VR_BOGUS, ST, VR_INV_LEN, -ENOENT, 0, E(0, 0x10, 0))}},
    {.name = "inv_on_vdevice",
     .rule = "a vDEVICE's id: neither nested HWPT nor vIOMMU, -EINVAL",
     .steps = {SETUP, INV(1, ST, VR_INV_LEN, -EINVAL, 0, E(0, 0x10, 0))},
     .daemon_differs = true,
     .daemon_want = -ENOENT,
     .daemon_count = 0,
     .daemon_why = "a vDEVICE's id is no vIOMMU of this client: -ENOENT"},

    /* ---- ARM SMMUv3 vIOMMU (arm-smmu-v3-iommufd.c), on the sim and through the daemon ---- */
    SMROW("smmu_viommu_alloc", "arm_smmu_get_viommu_size(): its own type", VS(2)),
    SMROW("smmu_viommu_selftest_type", "the SMMUv3 driver makes no selftest vIOMMU",
	  {.op = VR_VIOMMU, .dev = 2, .type = VR_VIOMMU_TYPE_SELFTEST, .want = -EOPNOTSUPP}),
    SMROW("smmu_vdev", "a vSID for the device", VS(2), D(0, 2, 8, 0)),
    SMROW("smmu_vdev_vsid_taken", "a vSID names one device per vIOMMU: -EEXIST", VS(2),
	  D(0, 2, 8, 0), D(0, 3, 8, -EEXIST)),
    SMROW("smmu_vdev_mock_device", "the vIOMMU's IOMMU instance is not the mock's: -EINVAL", VS(2),
	  D(0, 0, 8, -EINVAL)),
    SMROW("smmu_nested_ste", "arm_vsmmu_alloc_domain_nested(): a valid S1 STE", VS(2),
	  NS(0, 2, STE_S1, 0, 0)),
    SMROW("smmu_nested_selftest_data", "not IOMMU_HWPT_DATA_ARM_SMMUV3: -EOPNOTSUPP", VS(2),
	  N(0, 2, VR_HWPT_DATA_SELFTEST, -EOPNOTSUPP)),
    SMROW("smmu_nested_ste_eats", "arm_smmu_validate_vste(): EATS outside ABT/TRANS: -EIO", VS(2),
	  NS(0, 2, 1 | 5u << 1, 2ull << 28, -EIO)),
    SMROW("smmu_destroy_busy", "a vDEVICE holds the vIOMMU: -EBUSY", VS(2), D(0, 2, 8, 0),
	  X(VR_KIND_VIOMMU, 0, -EBUSY)),
    SMROW("smmu_inv_allowed_opcodes",
	  "arm_vsmmu_convert_user_cmd(): the eight opcodes it lets through, vSIDs translated",
	  SM_SETUP,
	  SMINV(VR_SMMU_CMD_LEN, 0, 8, C_NH_VA(SMVA), C_NH_VAA(SMVA), C_NH_ALL, C_NH_ASID(5),
		C_NSNH_ALL, C_ATC(8), C_CD(8), C_CD_ALL(8))),
    SMROW("smmu_inv_vmid_replaced", "the guest's VMID field is overwritten with the vSMMU's",
	  SM_SETUP, SMINV(VR_SMMU_CMD_LEN, 0, 1, CMD(0x11 | F_ASID(5) | F_SID(0x77), 0))),
    SMROW("smmu_inv_opcode_s2_ipa",
	  "TLBI_S2_IPA is no guest command: -EIO, entry_num counts the one before it", SM_SETUP,
	  SMINV(VR_SMMU_CMD_LEN, -EIO, 1, C_NH_VA(SMVA), C_OP(0x2a))),
    SMROW("smmu_inv_opcode_cmd_sync", "CMD_SYNC in the array: -EIO (the ioctl is the sync)",
	  SM_SETUP, SMINV(VR_SMMU_CMD_LEN, -EIO, 0, C_OP(0x46))),
    SMROW("smmu_inv_opcode_cfgi_ste", "CFGI_STE: -EIO (the STE is the host's)", SM_SETUP,
	  SMINV(VR_SMMU_CMD_LEN, -EIO, 0, CMD(0x03 | F_SID(8), 0))),
    SMROW("smmu_inv_opcode_s12_vmall", "TLBI_S12_VMALL: -EIO", SM_SETUP,
	  SMINV(VR_SMMU_CMD_LEN, -EIO, 0, C_OP(0x28))),
    SMROW("smmu_inv_opcode_el2_all", "TLBI_EL2_ALL: -EIO", SM_SETUP,
	  SMINV(VR_SMMU_CMD_LEN, -EIO, 0, C_OP(0x20))),
    SMROW("smmu_inv_vsid_unknown_cfgi_cd", "arm_vsmmu_vsid_to_sid() finds no vDEVICE: -EIO",
	  SM_SETUP, SMINV(VR_SMMU_CMD_LEN, -EIO, 0, C_CD(9))),
    SMROW("smmu_inv_vsid_unknown_atc", "ATC_INV of an unknown vSID: -EIO", SM_SETUP,
	  SMINV(VR_SMMU_CMD_LEN, -EIO, 0, C_ATC(9))),
    SMROW("smmu_inv_vsid_unknown_cd_all", "CFGI_CD_ALL of an unknown vSID: -EIO", SM_SETUP,
	  SMINV(VR_SMMU_CMD_LEN, -EIO, 0, C_CD_ALL(9))),
    SMROW("smmu_inv_vsid_other_viommu", "a vSID of another vIOMMU is unknown here: -EIO", VS(2),
	  VS(3), D(0, 2, 8, 0), D(1, 3, 9, 0),
	  INV(0, VR_INV_DATA_ARM_SMMUV3, VR_SMMU_CMD_LEN, -EIO, 0, C_CD(9))),
    SMROW("smmu_inv_over_report",
	  "a conversion error after two commands: entry_num 2 though their block never ran "
	  "(the daemon issues them first, so its 2 is true)",
	  SM_SETUP, SMINV(VR_SMMU_CMD_LEN, -EIO, 2, C_NH_VA(SMVA), C_NH_VA(SMVA + 4096), C_CD(9))),
    SMROW("smmu_inv_empty", "entry_num 0: the full-array copy's -EINVAL (no empty probe)", SM_SETUP,
	  INV0(0, VR_INV_DATA_ARM_SMMUV3, -EINVAL)),
    SMROW("smmu_inv_selftest_type", "the mock's data type on an SMMUv3 vIOMMU: -EINVAL", SM_SETUP,
	  INV(0, ST, VR_INV_LEN, -EINVAL, 0, E(0, 8, 0))),
    SMROW("smmu_inv_len_8", "an 8-byte entry is zero-extended: the command's second word 0",
	  SM_SETUP, SMINV(8, 0, 1, C_NH_ASID(5))),
    SMROW("smmu_inv_len_24_zero_tail", "zeros past 16 bytes are fine", SM_SETUP,
	  SMINV(24, 0, 2, C_NH_VA(SMVA), C_NH_ASID(5))),
    SMROW("smmu_inv_len_24_nonzero_tail", "a non-zero byte past 16: -E2BIG, nothing handled",
	  SM_SETUP, SMINV(24, -E2BIG, 0, C_NH_VA(SMVA), {.cmd = {0x11 | F_ASID(5), 0}, .tail = 1})),
    SMROW("smmu_inv_len_past_page", "entry_len > PAGE_SIZE: the core's -EINVAL", SM_SETUP,
	  SMINV(VR_PAGE_SIZE + 1, -EINVAL, 0, C_NH_ALL)),
    SMROW("smmu_inv_unknown_id", "no such object: -ENOENT", SM_SETUP,
	  INV(VR_BOGUS, VR_INV_DATA_ARM_SMMUV3, VR_SMMU_CMD_LEN, -ENOENT, 0, C_NH_ALL)),
};

const size_t vr_n_rows = sizeof(vr_rows) / sizeof(vr_rows[0]);

const char *vr_errname(int rc, char *buf, size_t len)
{
	const char *n = rc < 0 ? strerrorname_np(-rc) : NULL;

	if (!rc)
		snprintf(buf, len, "0");
	else if (n)
		snprintf(buf, len, "-%s", n);
	else
		snprintf(buf, len, "%d", rc);
	return buf;
}

static unsigned n_steps(const struct vr_row *row)
{
	unsigned n = 0;

	while (n < VR_MAX_STEPS && row->steps[n].op != VR_END)
		n++;
	return n;
}

const char *vr_table_check(void)
{
	static char why[160];

	for (size_t r = 0; r < vr_n_rows; r++) {
		const struct vr_row *row = &vr_rows[r];
		unsigned n = n_steps(row);

		if (!n || row->steps[0].op != VR_VIOMMU) {
			snprintf(why, sizeof(why), "%s: the first step is not an AllocViommu",
				 row->name);
			return why;
		}
		for (unsigned i = 0; i < n; i++) {
			const struct vr_step *s = &row->steps[i];
			bool refs = s->op != VR_VIOMMU && s->op != VR_DETACH;

			if (refs && s->ref != VR_BOGUS && (s->ref < 0 || (unsigned)s->ref >= i)) {
				snprintf(why, sizeof(why), "%s: step %u names step %d", row->name,
					 i, s->ref);
				return why;
			}
			if (s->n > VR_MAX_ENTRIES || s->dev >= VR_N_DEVS) {
				snprintf(why, sizeof(why), "%s: step %u out of range", row->name,
					 i);
				return why;
			}
		}
		if ((row->unreachable != 0) != (row->unreachable_why != NULL) ||
		    row->daemon_differs != (row->daemon_why != NULL)) {
			snprintf(why, sizeof(why), "%s: an exception without its reason",
				 row->name);
			return why;
		}
	}
	return NULL;
}

/* The entries as the guest lays them out: entry_len bytes each, then the tail byte. */
static uint8_t *build_entries(const struct vr_step *s)
{
	bool smmu = s->type == VR_INV_DATA_ARM_SMMUV3;
	size_t native = smmu ? VR_SMMU_CMD_LEN : VR_INV_LEN;
	size_t len = s->entry_len ? s->entry_len : native;
	uint8_t *buf = calloc(s->n ? s->n : 1, len);

	if (!buf)
		return NULL;
	for (uint32_t i = 0; i < s->n; i++) {
		uint32_t w[3] = {s->e[i].flags, s->e[i].vdev_id, s->e[i].cache_id};
		uint64_t c[2] = {htole64(s->e[i].cmd[0]), htole64(s->e[i].cmd[1])};
		uint8_t *p = buf + i * len;

		memcpy(p, smmu ? (const void *)c : (const void *)w, len < native ? len : native);
		if (len > native)
			p[native] = s->e[i].tail;
	}
	return buf;
}

static const char *op_name(enum vr_op op)
{
	static const char *const names[] = {"end",     "AllocViommu", "AllocVdevice",
					    "Destroy", "AllocNested", "Attach",
					    "Detach",  "Invalidate"};

	return op <= VR_INV ? names[op] : "?";
}

static int run_step(const struct vr_step *s, const struct vr_driver *d, const uint32_t *ids,
		    uint32_t *out, uint32_t *count)
{
	uint32_t ref = s->ref == VR_BOGUS ? VR_BOGUS_ID : ids[s->ref];
	uint32_t iotlb = VR_IOTLB_DEFAULT, vtd[6] = {0};
	uint64_t ste[2] = {htole64(s->ste[0]), htole64(s->ste[1])};
	uint8_t *buf;
	int rc;

	switch (s->op) {
	case VR_VIOMMU:
		return d->viommu_alloc(d->ctx, s->dev, s->parent, s->type, s->flags, out);
	case VR_VDEV:
		return d->vdevice_alloc(d->ctx, ref, s->dev, s->virt_id, out);
	case VR_DESTROY:
		return d->destroy(d->ctx, s->kind, ref);
	case VR_NESTED:
		if (s->type == VR_HWPT_DATA_ARM_SMMUV3)
			return d->alloc_nested(d->ctx, s->dev, ref, s->type, ste, sizeof(ste), out);
		if (s->type == VR_HWPT_DATA_VTD_S1)
			return d->alloc_nested(d->ctx, s->dev, ref, s->type, vtd, sizeof(vtd), out);
		return d->alloc_nested(d->ctx, s->dev, ref, s->type, &iotlb, sizeof(iotlb), out);
	case VR_ATTACH:
		return d->attach(d->ctx, s->dev, ref);
	case VR_DETACH:
		return d->detach(d->ctx, s->dev);
	case VR_INV:
		buf = build_entries(s);
		if (!buf)
			return -ENOMEM;
		rc = d->invalidate(d->ctx, ref, s->type, s->entry_len, buf, s->n, count);
		free(buf);
		return rc;
	case VR_END:
		break;
	}
	return -EINVAL;
}

enum vr_result vr_run(const struct vr_row *row, const struct vr_driver *d, bool kernel7, char *msg,
		      size_t msglen)
{
	uint32_t ids[VR_MAX_STEPS] = {0};
	unsigned n = n_steps(row);
	enum vr_result res = VR_PASS;
	char g[32], w[32];
	int rc;

	msg[0] = 0;
	if (row->unreachable & d->side) {
		snprintf(msg, msglen, "%s", row->unreachable_why);
		return VR_SKIP;
	}
	for (unsigned i = 0; i < n && d->has_dev; i++) {
		if (!d->has_dev(d->ctx, row->steps[i].dev)) {
			snprintf(msg, msglen, "no device %u here (the SMMUv3 devices: sim only)",
				 row->steps[i].dev);
			return VR_SKIP;
		}
	}
	rc = d->begin(d->ctx);
	if (rc) {
		snprintf(msg, msglen, "cannot set up: %s", vr_errname(rc, g, sizeof(g)));
		return VR_FAIL;
	}
	/* 6.12: no IOMMU_VIOMMU_ALLOC, the row ends at its first step. */
	if (!kernel7)
		n = 1;
	for (unsigned i = 0; i < n; i++) {
		const struct vr_step *s = &row->steps[i];
		bool last = i + 1 == n;
		int want = kernel7 ? s->want : -ENOTTY;
		uint32_t want_count = s->count, count = 0xa5a5a5a5u;

		if (kernel7 && last && row->daemon_differs && d->side == VR_SIDE_DAEMON) {
			want = row->daemon_want;
			want_count = row->daemon_count;
		}
		rc = run_step(s, d, ids, &ids[i], &count);
		if (rc != want || (s->op == VR_INV && kernel7 && count != want_count)) {
			if (s->op == VR_INV && kernel7)
				snprintf(msg, msglen,
					 "step %u (%s): got %s entry_num %u, want %s entry_num %u",
					 i, op_name(s->op), vr_errname(rc, g, sizeof(g)), count,
					 vr_errname(want, w, sizeof(w)), want_count);
			else
				snprintf(msg, msglen, "step %u (%s): got %s, want %s", i,
					 op_name(s->op), vr_errname(rc, g, sizeof(g)),
					 vr_errname(want, w, sizeof(w)));
			res = VR_FAIL;
			break;
		}
		if (rc)
			ids[i] = 0;
	}
	d->end(d->ctx);
	return res;
}
