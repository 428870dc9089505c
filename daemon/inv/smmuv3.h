/* SPDX-License-Identifier: MIT */
/*
 * ARM SMMUv3 commands on a vIOMMU (IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3):
 * the 7.x driver's validation rules and the daemon's coalescer. Pure code
 * over arrays; the vIOMMU and vDEVICE objects are the caller's (a vSID ->
 * pSID table stands for the vDEVICEs of one vIOMMU).
 */
#ifndef IOMMU_NESTD_INV_SMMUV3_H
#define IOMMU_NESTD_INV_SMMUV3_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/smmuv3_cmd.h"
#include "inv/coalesce.h"
#include "inv/request.h"

/* One vDEVICE of the vIOMMU: virt_id (the guest's StreamID) -> pSID. */
struct smmuv3_vsid {
	uint32_t vsid;
	uint32_t psid;
};

/* The vDEVICEs of one vIOMMU, sorted by vsid (smmuv3_vsid_sort). */
struct smmuv3_vsid_map {
	const struct smmuv3_vsid *ents;
	uint32_t n;
};

void smmuv3_vsid_sort(struct smmuv3_vsid *ents, uint32_t n);

/* pSID of vsid, or false when no vDEVICE has that virt_id. */
bool smmuv3_vsid_lookup(const struct smmuv3_vsid_map *map, uint32_t vsid, uint32_t *psid);

/*
 * Request-level rules (iommufd_hwpt_invalidate, then
 * iommu_copy_struct_from_full_user_array): the header rules of
 * inv_validate_header, then a data type other than ARM_SMMUV3 -> -EINVAL,
 * entry_num 0 -> -EINVAL (no empty-array probe on a vIOMMU). Any entry_len
 * from 1 to PAGE_SIZE passes: shorter entries are zero-extended, longer
 * ones must have zero tails (the wire carries native entries, so they do).
 */
int smmuv3_validate_request(const struct inv_request *req);

/*
 * The kernel reads entry_len bytes of each command and zero-fills the
 * rest (copy_struct_from_user): with 0 < entry_len < 16 this clears the
 * bytes of req->entries (n native 16-byte commands) the kernel never sees,
 * so that what is validated, coalesced and submitted is what it would run.
 */
void smmuv3_truncate_entries(struct inv_request *req);

/*
 * arm_vsmmu_convert_user_cmd: the eight allowed opcodes pass (TLBIs have
 * their VMID rewritten by the kernel, any value is fine), ATC_INV /
 * CFGI_CD / CFGI_CD_ALL need a vDEVICE for their SID; anything else, and
 * an unknown vSID, -> -EIO. No other field is checked.
 */
int smmuv3_validate_cmd(const void *cmd, const struct smmuv3_vsid_map *map);

/*
 * inv_validate_entries' shape: INV_PENDING or INV_FAILED with the errno;
 * without req->cont everything after the first failure is
 * INV_NOT_ATTEMPTED. Returns the number pending.
 */
uint32_t smmuv3_validate_entries(struct inv_request *req, const struct smmuv3_vsid_map *map);

/* The command classes coalescing never reorders against each other. */
enum smmuv3_class {
	SMMUV3_CLASS_TLB,
	SMMUV3_CLASS_CD,
	SMMUV3_CLASS_ATC,
	SMMUV3_CLASS_NONE, /* not an allowed opcode */
};

enum smmuv3_class smmuv3_cmd_class(const void *cmd);

struct smmuv3_coalesce_params {
	bool enabled; /* false: one submitted command per input command */
	/*
	 * The host SMMU implements range invalidation (SMMU_IDR3.RIL). Without
	 * it TG/SCALE/NUM are ignored by the hardware, so a range command
	 * would flush one address: then TLBI VAs are only de-duplicated.
	 */
	bool range;
	/*
	 * TG to give a range made of non-range (TG 0) VAs, one of the host's
	 * granules (1: 4 KiB, 2: 16 KiB, 3: 64 KiB); 0 leaves them non-range.
	 */
	uint32_t va_tg;
	/* Merge VA ranges across gaps of up to this many granules. */
	uint64_t slack_granules;
};

/*
 * Coalesces the commands of ONE request (one guest CMD_SYNC batch); see
 * inv/coalesce_smmuv3.c for what merges. Every input is served by exactly
 * one output command (plan->first[i] == plan->last[i]); outputs keep the
 * order of the class runs they come from. Input commands must have passed
 * smmuv3_validate_cmd (-EINVAL otherwise: never guess what one flushes).
 */
int coalesce_smmuv3(const void *in, uint32_t n, const struct smmuv3_coalesce_params *p,
		    struct coalesce_plan *plan);

#endif
