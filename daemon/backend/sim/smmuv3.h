/* SPDX-License-Identifier: MIT */
/*
 * The sim's model of an SMMUv3 behind a vIOMMU: its TLB (stage-1 entries
 * by VMID/ASID/VA, leaf and walk-cache entries, global or not), its CD
 * cache (by StreamID/SubstreamID, CDs and level-1 CD table descriptors)
 * and the ATCs of its devices (by StreamID/SubstreamID/address), and what
 * each command the 7.x driver lets through invalidates, by the SMMUv3
 * architecture (and PCIe ATS for ATC_INV). Also the driver's conversion of
 * a guest command (VMID rewrite, vSID -> pSID). Not wired to requests yet.
 */
#ifndef IOMMU_NESTD_SIM_SMMUV3_H
#define IOMMU_NESTD_SIM_SMMUV3_H

#include <stdbool.h>
#include <stdint.h>

struct smmuv3_tlb_ent {
	uint16_t vmid;
	uint16_t asid;	    /* ignored for a global leaf entry */
	uint64_t va;	    /* aligned to 2^size_shift */
	uint8_t size_shift; /* log2 of the bytes the entry translates */
	uint8_t level;	    /* lookup level 1..3 it came from */
	bool leaf;	    /* final-level entry; false: a walk-cache entry */
	bool global;	    /* leaf only: nG = 0, matches every ASID */
	bool valid;
};

struct smmuv3_cd_ent {
	uint32_t sid;
	uint32_t ssid;
	bool leaf; /* a cached CD; false: the L1 descriptor holding ssid's L2 table */
	bool valid;
};

#define SMMUV3_NO_SSID UINT32_MAX

struct smmuv3_atc_ent {
	uint32_t sid;
	uint32_t ssid; /* SMMUV3_NO_SSID: requested without PASID */
	uint64_t page; /* 4 KiB page number, aligned to 2^lg */
	uint8_t lg;
	bool valid;
};

struct smmuv3_model {
	struct smmuv3_tlb_ent *tlb;
	uint32_t n_tlb, cap_tlb;
	struct smmuv3_cd_ent *cd;
	uint32_t n_cd, cap_cd;
	struct smmuv3_atc_ent *atc;
	uint32_t n_atc, cap_atc;
};

void smmuv3_model_init(struct smmuv3_model *m);
void smmuv3_model_free(struct smmuv3_model *m);
/* Frees a model made on the heap, and forgets it (*m NULL: nothing). */
void smmuv3_model_destroy(struct smmuv3_model **m);
/* dst becomes a copy of src (entries in the same order). */
int smmuv3_model_copy(struct smmuv3_model *dst, const struct smmuv3_model *src);

int smmuv3_model_add_tlb(struct smmuv3_model *m, const struct smmuv3_tlb_ent *e);
int smmuv3_model_add_cd(struct smmuv3_model *m, const struct smmuv3_cd_ent *e);
int smmuv3_model_add_atc(struct smmuv3_model *m, const struct smmuv3_atc_ent *e);

/*
 * Runs one command as the host SMMU would (after the driver's conversion:
 * the TLBI's VMID field and the pSID are what it matches). Returns 0, or
 * -EIO for an opcode the model does not implement. Returns the number of
 * entries it invalidated in *hits when hits is not NULL.
 */
int smmuv3_model_apply(struct smmuv3_model *m, const void *cmd, uint32_t *hits);

/* A vDEVICE as the driver's xarray holds it: virt_id -> pSID. */
struct smmuv3_sim_vdev {
	uint32_t vsid;
	uint32_t psid;
};

/*
 * arm_vsmmu_convert_user_cmd: out gets the command the kernel would queue
 * (NSNH_ALL -> NH_ALL of vmid, TLBIs get vmid, vSIDs become pSIDs).
 * Returns 0 or -EIO (other opcode, unknown vSID).
 */
int smmuv3_sim_convert(const void *cmd, uint16_t vmid, const struct smmuv3_sim_vdev *vdevs,
		       uint32_t n_vdevs, void *out);

#endif
