// SPDX-License-Identifier: MIT
/*
 * Simulator model of IOMMU_GET_HW_INFO (iommufd_get_hw_info() in
 * drivers/iommu/iommufd/device.c of Linux 6.12): what the driver behind a
 * device reports, and the generic capabilities the core adds.
 *
 * VT-d devices sit behind one modelled Sapphire Rapids-like IOMMU whose
 * registers say what the rest of the sim does: scalable mode with nesting,
 * first-stage 4- and 5-level paging with SRE and EAFE (objects.c accepts
 * both address widths and the flags), a 4-level (48-bit) second stage
 * (mem.c's aperture), second-stage dirty bits; and the read-only-mapping
 * erratum that mem.c enforces. Selftest devices answer as the kernel's
 * mock does (selftest.c mock_domain_hw_info(), mock_domain_capable()).
 * Neither kind of modelled device has PCI PASID or ATS capabilities: no
 * PASID width, and under 7.x rules the core's "ATS not supported" bit
 * (device.c: !device_iommu_capable(IOMMU_CAP_PCI_ATS_SUPPORTED)).
 */
#include <errno.h>
#include <string.h>

#include "backend/iommufd_test_uapi.h"
#include "backend/sim/state.h"

/* Capability register fields (VT-d spec 11.4.2; intel/iommu.h cap_*). */
#define VTD_CAP_ND_64K	   (6ULL << 0)	 /* 2^16 domain ids */
#define VTD_CAP_SAGAW_4LVL (0x4ULL << 8) /* second stage: 4-level, 48-bit */
#define VTD_CAP_MGAW_48	   (47ULL << 16) /* guest address width - 1 */
#define VTD_CAP_ZLR	   (1ULL << 22)
#define VTD_CAP_FRO	   (0x40ULL << 24) /* fault recording registers at 0x400 */
#define VTD_CAP_SLLPS	   (0x3ULL << 34)  /* second stage 2 MiB and 1 GiB pages */
#define VTD_CAP_PSI	   (1ULL << 39)
#define VTD_CAP_NFR_8	   (7ULL << 40)
#define VTD_CAP_MAMV	   (18ULL << 48)
#define VTD_CAP_DWD	   (1ULL << 54)
#define VTD_CAP_DRD	   (1ULL << 55)
#define VTD_CAP_FL1GP	   (1ULL << 56)
#define VTD_CAP_PI	   (1ULL << 59)
#define VTD_CAP_FL5LP	   (1ULL << 60) /* first stage 5-level: addr_width 57 */
#define VTD_CAP_ESIRTPS	   (1ULL << 62)
#define VTD_CAP_ESRTPS	   (1ULL << 63)

/* Extended capability register fields (VT-d spec 11.4.3; ecap_*). */
#define VTD_ECAP_C	(1ULL << 0)
#define VTD_ECAP_QI	(1ULL << 1)
#define VTD_ECAP_DT	(1ULL << 2)
#define VTD_ECAP_IR	(1ULL << 3)
#define VTD_ECAP_EIM	(1ULL << 4)
#define VTD_ECAP_PT	(1ULL << 6)
#define VTD_ECAP_SC	(1ULL << 7)
#define VTD_ECAP_IRO	(0x50ULL << 8) /* IOTLB registers at 0x500 */
#define VTD_ECAP_MHMV	(0xfULL << 20)
#define VTD_ECAP_NEST	(1ULL << 26)
#define VTD_ECAP_PRS	(1ULL << 29)
#define VTD_ECAP_SRS	(1ULL << 31)  /* IOMMU_VTD_S1_SRE */
#define VTD_ECAP_EAFS	(1ULL << 34)  /* IOMMU_VTD_S1_EAFE */
#define VTD_ECAP_PSS_20 (19ULL << 35) /* 20-bit PASIDs */
#define VTD_ECAP_PASID	(1ULL << 40)
#define VTD_ECAP_SMTS	(1ULL << 43)
#define VTD_ECAP_SLADS	(1ULL << 45)
#define VTD_ECAP_SLTS	(1ULL << 46)
#define VTD_ECAP_FLTS	(1ULL << 47)
#define VTD_ECAP_SMPWC	(1ULL << 48)
#define VTD_ECAP_RPS	(1ULL << 49)

#define SIM_VTD_CAP_REG                                                                            \
	(VTD_CAP_ND_64K | VTD_CAP_SAGAW_4LVL | VTD_CAP_MGAW_48 | VTD_CAP_ZLR | VTD_CAP_FRO |       \
	 VTD_CAP_SLLPS | VTD_CAP_PSI | VTD_CAP_NFR_8 | VTD_CAP_MAMV | VTD_CAP_DWD | VTD_CAP_DRD |  \
	 VTD_CAP_FL1GP | VTD_CAP_PI | VTD_CAP_FL5LP | VTD_CAP_ESIRTPS | VTD_CAP_ESRTPS)
#define SIM_VTD_ECAP_REG                                                                           \
	(VTD_ECAP_C | VTD_ECAP_QI | VTD_ECAP_DT | VTD_ECAP_IR | VTD_ECAP_EIM | VTD_ECAP_PT |       \
	 VTD_ECAP_SC | VTD_ECAP_IRO | VTD_ECAP_MHMV | VTD_ECAP_NEST | VTD_ECAP_PRS |               \
	 VTD_ECAP_SRS | VTD_ECAP_EAFS | VTD_ECAP_PSS_20 | VTD_ECAP_PASID | VTD_ECAP_SMTS |         \
	 VTD_ECAP_SLADS | VTD_ECAP_SLTS | VTD_ECAP_FLTS | VTD_ECAP_SMPWC | VTD_ECAP_RPS)

/* intel_iommu_hw_info(), and intel_iommu_capable()'s ssads_supported(). */
static void vtd_hw_info(struct backend_hw_info *out)
{
	struct iommu_hw_info_vtd vtd = {
	    .cap_reg = SIM_VTD_CAP_REG,
	    .ecap_reg = SIM_VTD_ECAP_REG,
	};
	const uint64_t ssads = VTD_ECAP_SMTS | VTD_ECAP_SLADS | VTD_ECAP_SMPWC;

	if (sim_kind_no_ro_nest_parent(DEVICE_KIND_VTD))
		vtd.flags |= IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17;
	out->data_type = IOMMU_HW_INFO_TYPE_INTEL_VTD;
	out->data_len = sizeof(vtd);
	memcpy(out->data, &vtd, sizeof(vtd));
	if ((vtd.ecap_reg & ssads) == ssads)
		out->capabilities |= IOMMU_HW_CAP_DIRTY_TRACKING;
	out->max_pasid_log2 = 0;
}

/* A mock device made by IOMMU_TEST_OP_MOCK_DOMAIN without flags: dirty tracking, no PASID. */
static void selftest_hw_info(struct backend_hw_info *out)
{
	struct iommu_test_hw_info info = {.test_reg = IOMMU_HW_INFO_SELFTEST_REGVAL};

	out->data_type = IOMMU_HW_INFO_TYPE_SELFTEST;
	out->data_len = sizeof(info);
	memcpy(out->data, &info, sizeof(info));
	out->capabilities = IOMMU_HW_CAP_DIRTY_TRACKING;
	out->max_pasid_log2 = 0;
}

/*
 * The SMMU behind the sim's smmuv3 devices: an SMMUv3.2 (MMU-700-like)
 * with both stages and nesting, AArch64 tables, 16-bit ASIDs and VMIDs,
 * 2-level stream and CD tables, coherent walks, ATS, and range
 * invalidation (IDR3.RIL, which the daemon's coalescer reads); 48-bit
 * OAS, 4K/16K/64K granules. arm_smmu_hw_info() copies the registers raw.
 */
#define SMMU_IDR0_S2P	   (1u << 0)
#define SMMU_IDR0_S1P	   (1u << 1)
#define SMMU_IDR0_TTF_A64  (2u << 2)
#define SMMU_IDR0_COHACC   (1u << 4)
#define SMMU_IDR0_ATS	   (1u << 10)
#define SMMU_IDR0_ASID16   (1u << 12)
#define SMMU_IDR0_MSI	   (1u << 13)
#define SMMU_IDR0_VMID16   (1u << 18)
#define SMMU_IDR0_CD2L	   (1u << 19)
#define SMMU_IDR0_ST_2LVL  (1u << 27)
#define SMMU_IDR1_SIDSIZE  16u	       /* 16-bit StreamIDs */
#define SMMU_IDR1_SSIDSIZE (20u << 6)  /* 20-bit SubstreamIDs */
#define SMMU_IDR1_EVTQS	   (19u << 16) /* log2 of the queue entries */
#define SMMU_IDR1_CMDQS	   (19u << 21)
#define SMMU_IDR3_RIL	   (1u << 10)
#define SMMU_IDR5_OAS_48   5u
#define SMMU_IDR5_GRAN4K   (1u << 4)
#define SMMU_IDR5_GRAN16K  (1u << 5)
#define SMMU_IDR5_GRAN64K  (1u << 6)
#define SMMU_IIDR_MMU700   ((0x487u << 20) | 0x43bu) /* ProductID, Implementer Arm */
#define SMMU_AIDR_V3_2	   2u

static void smmuv3_hw_info(struct backend_hw_info *out)
{
	struct nestd_hw_info_arm_smmuv3 info = {
	    .idr = {SMMU_IDR0_S2P | SMMU_IDR0_S1P | SMMU_IDR0_TTF_A64 | SMMU_IDR0_COHACC |
			SMMU_IDR0_ATS | SMMU_IDR0_ASID16 | SMMU_IDR0_MSI | SMMU_IDR0_VMID16 |
			SMMU_IDR0_CD2L | SMMU_IDR0_ST_2LVL,
		    SMMU_IDR1_SIDSIZE | SMMU_IDR1_SSIDSIZE | SMMU_IDR1_EVTQS | SMMU_IDR1_CMDQS, 0,
		    SMMU_IDR3_RIL, 0,
		    SMMU_IDR5_OAS_48 | SMMU_IDR5_GRAN4K | SMMU_IDR5_GRAN16K | SMMU_IDR5_GRAN64K},
	    .iidr = SMMU_IIDR_MMU700,
	    .aidr = SMMU_AIDR_V3_2,
	};

	out->data_type = NESTD_HW_INFO_TYPE_ARM_SMMUV3;
	out->data_len = sizeof(info);
	memcpy(out->data, &info, sizeof(info));
	out->max_pasid_log2 = 0;
}

int sim_hw_info(const struct sim_state *st, const char *device, struct backend_hw_info *out)
{
	int dev = sim_dev_find(st, device);

	if (dev < 0)
		return dev;
	memset(out, 0, sizeof(*out));
	if (st->devs[dev].kind == DEVICE_KIND_VTD)
		vtd_hw_info(out);
	else if (st->devs[dev].kind == DEVICE_KIND_SMMUV3)
		smmuv3_hw_info(out);
	else
		selftest_hw_info(out);
	if (st->rules == KERNEL_RULES_7)
		out->capabilities |= IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED;
	/* device.c:1634: ilog2(dev->iommu->max_pasids); 6.12 has no such field. */
	out->max_pasid_log2 = st->devs[dev].pasid_bits;
	return 0;
}
