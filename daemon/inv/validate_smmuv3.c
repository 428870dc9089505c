/* SPDX-License-Identifier: MIT */
/*
 * The 7.x kernel's rules for SMMUv3 commands on a vIOMMU, in its order:
 *   iommufd_hwpt_invalidate()                 drivers/iommu/iommufd/hw_pagetable.c
 *   iommu_copy_struct_from_full_user_array()  include/linux/iommu.h
 *   arm_vsmmu_convert_user_cmd()              drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-iommufd.c
 * The driver converts command by command and, on a bad one, reports the
 * commands before it as handled although the last partial block of them
 * was never issued; so no command that would fail conversion may ever
 * reach the kernel: everything submitted has passed smmuv3_validate_cmd.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/iommufd_uapi.h"
#include "inv/smmuv3.h"
#include "inv/validate.h"
#include "util/search.h"

static int vsid_cmp(const void *a, const void *b)
{
	const struct smmuv3_vsid *x = a, *y = b;

	return x->vsid < y->vsid ? -1 : x->vsid > y->vsid;
}

void smmuv3_vsid_sort(struct smmuv3_vsid *ents, uint32_t n)
{
	if (n > 1)
		qsort(ents, n, sizeof(*ents), vsid_cmp);
}

static bool vsid_past(const void *arr, uint32_t i, uint64_t key)
{
	return ((const struct smmuv3_vsid *)arr)[i].vsid >= key;
}

bool smmuv3_vsid_lookup(const struct smmuv3_vsid_map *map, uint32_t vsid, uint32_t *psid)
{
	uint32_t i;

	if (!map || !map->n)
		return false;
	i = search_first_past(map->ents, map->n, vsid, vsid_past);
	if (i == map->n || map->ents[i].vsid != vsid)
		return false;
	if (psid)
		*psid = map->ents[i].psid;
	return true;
}

int smmuv3_validate_request(const struct inv_request *req)
{
	uint32_t len = req->entry_len ? req->entry_len : SMMUV3_CMD_SIZE;

	/* hw_pagetable.c's bounds, as inv_validate_header (whose native size is VT-d's). */
	if (req->reserved)
		return -EOPNOTSUPP;
	if (req->n && (!req->entries || len > IOMMUFD_PAGE_SIZE ||
		       req->n > IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX))
		return -EINVAL;
	/* The copy helper checks the type first, then the empty array. */
	if (req->data_type != IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3)
		return -EINVAL;
	if (!req->n)
		return -EINVAL;
	return 0;
}

void smmuv3_truncate_entries(struct inv_request *req)
{
	uint8_t *p = req->entries;

	if (!p || !req->entry_len || req->entry_len >= SMMUV3_CMD_SIZE)
		return;
	for (uint32_t i = 0; i < req->n; i++)
		memset(p + (size_t)i * SMMUV3_CMD_SIZE + req->entry_len, 0,
		       SMMUV3_CMD_SIZE - req->entry_len);
}

enum smmuv3_class smmuv3_cmd_class(const void *cmd)
{
	struct smmuv3_cmd c;

	smmuv3_cmd_load(&c, cmd);
	switch (smmuv3_op(&c)) {
	case SMMUV3_OP_TLBI_NSNH_ALL:
	case SMMUV3_OP_TLBI_NH_VA:
	case SMMUV3_OP_TLBI_NH_VAA:
	case SMMUV3_OP_TLBI_NH_ALL:
	case SMMUV3_OP_TLBI_NH_ASID:
		return SMMUV3_CLASS_TLB;
	case SMMUV3_OP_CFGI_CD:
	case SMMUV3_OP_CFGI_CD_ALL:
		return SMMUV3_CLASS_CD;
	case SMMUV3_OP_ATC_INV:
		return SMMUV3_CLASS_ATC;
	default:
		return SMMUV3_CLASS_NONE;
	}
}

int smmuv3_validate_cmd(const void *cmd, const struct smmuv3_vsid_map *map)
{
	struct smmuv3_cmd c;

	smmuv3_cmd_load(&c, cmd);
	switch (smmuv3_cmd_class(&c)) {
	case SMMUV3_CLASS_TLB:
		/* The kernel overwrites the VMID; nothing else is looked at. */
		return 0;
	case SMMUV3_CLASS_CD:
	case SMMUV3_CLASS_ATC:
		/* CFGI and ATC_INV put the SID in the same bits. */
		if (!smmuv3_vsid_lookup(map, (uint32_t)SMMUV3_W0(&c, SMMUV3_SID), NULL))
			return -EIO;
		return 0;
	default:
		return -EIO;
	}
}

static int check_cmd(const void *entry, const void *ctx)
{
	return smmuv3_validate_cmd(entry, ctx);
}

uint32_t smmuv3_validate_entries(struct inv_request *req, const struct smmuv3_vsid_map *map)
{
	return inv_mark_entries(req, SMMUV3_CMD_SIZE, check_cmd, map);
}
