// SPDX-License-Identifier: MIT
/*
 * The 7.x ARM SMMUv3 driver's vIOMMU (arm-smmu-v3-iommufd.c) on the sim:
 * IOMMU_HWPT_INVALIDATE on an ARM_SMMUV3 vIOMMU copies the whole array,
 * converts command by command (arm_vsmmu_convert_user_cmd: VMID rewrite,
 * vSID -> pSID through the vIOMMU's vDEVICEs, -EIO otherwise) and issues
 * them in blocks of CMDQ_BATCH_ENTRIES - 1 to the host SMMU (the model of
 * backend/sim/smmuv3.c). On a conversion error it stops and reports the
 * commands before the bad one as handled, although the block they were in
 * was never issued (entry_num over-reports): the sim does exactly that.
 * A failing issue (fault injection: a CMD_SYNC timeout) counts all but the
 * block's last command as handled, as the driver's cur-- does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sim/smmuv3.h"
#include "backend/sim/state.h"
#include "backend/smmuv3_cmd.h"

/* arm_smmu_cmdq_issue_cmdlist() batches: BITS_PER_LONG entries, one kept for the sync. */
#define CMDQ_BATCH_ENTRIES 64u

uint32_t sim_smmuv3_sid(uint32_t dev)
{
	return SIM_SMMUV3_SID_BASE + dev;
}

/* The model behind a vIOMMU, made on first use (a restarted sim starts cold). */
struct smmuv3_model *sim_vsmmu_model(struct sim_obj *v)
{
	if (!v->smmu) {
		v->smmu = calloc(1, sizeof(*v->smmu));
		if (v->smmu)
			smmuv3_model_init(v->smmu);
	}
	return v->smmu;
}

/* The vIOMMU's VMID: the driver allocates one per vIOMMU (arm_vsmmu_init). */
uint16_t sim_vsmmu_vmid(const struct sim_obj *v)
{
	return (uint16_t)v->id;
}

/* The vIOMMU's vdevs xarray as the model's conversion reads it. */
static int vdevs_of(struct sim_state *st, uint32_t viommu_id, struct smmuv3_sim_vdev **out,
		    uint32_t *n)
{
	struct smmuv3_sim_vdev *v = calloc(st->n_objs ? st->n_objs : 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	*n = 0;
	for (uint32_t i = 0; i < st->n_objs; i++) {
		const struct sim_obj *o = &st->objs[i];

		if (o->type == SIM_OBJ_VDEVICE && o->parent_id == viommu_id)
			v[(*n)++] = (struct smmuv3_sim_vdev){.vsid = (uint32_t)o->virt_id,
							     .psid = sim_smmuv3_sid(o->dev)};
	}
	*out = v;
	return 0;
}

/* copy_struct_from_user(): zero-extend a shorter entry, a longer one needs a zero tail. */
static int copy_cmds(uint8_t *dst, const struct backend_inv *inv, uint32_t n)
{
	const uint8_t *src = inv->entries;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *s = src + (size_t)inv->entry_len * i;
		uint8_t *d = dst + (size_t)SMMUV3_CMD_SIZE * i;

		memcpy(d, s, inv->entry_len < SMMUV3_CMD_SIZE ? inv->entry_len : SMMUV3_CMD_SIZE);
		for (size_t b = SMMUV3_CMD_SIZE; b < inv->entry_len; b++)
			if (s[b])
				return -E2BIG;
	}
	return 0;
}

/*
 * Fault injection (test only) on the issue of block [first, end): a fault
 * AT_INDEX inside it, on this vIOMMU (its id, a nested HWPT on it, or any:
 * 0), makes arm_smmu_cmdq_issue_cmdlist() fail with the fault's errno. The
 * block is then not known to have run: the model keeps its entries.
 */
static int issue_fault(struct sim_state *st, const struct sim_obj *v, uint32_t first, uint32_t end)
{
	const struct backend_fault *f = &st->fault;
	const struct sim_obj *o = f->hwpt_id ? sim_obj_find(st, f->hwpt_id) : NULL;
	int rc;

	if (f->mode != FAULT_AT_INDEX || f->index < first || f->index >= end || !f->error)
		return 0;
	if (f->hwpt_id && f->hwpt_id != v->id && !(o && o->parent_id == v->id))
		return 0;
	rc = f->error;
	if (f->count && !--st->fault_fires_left)
		memset(&st->fault, 0, sizeof(st->fault));
	return rc;
}

int sim_vsmmu_invalidate(struct sim_state *st, struct sim_obj *v, struct backend_inv *inv,
			 uint32_t n)
{
	struct smmuv3_model *m = sim_vsmmu_model(v);
	struct smmuv3_sim_vdev *vdevs = NULL;
	uint8_t *cmds = NULL;
	uint32_t n_vdevs = 0, cur = 0, last = 0;
	int rc;

	/* iommu_copy_struct_from_full_user_array(): the type, then emptiness. */
	if (inv->data_type != NESTD_VIOMMU_INV_DATA_ARM_SMMUV3 || !n)
		return -EINVAL;
	if (!m)
		return -ENOMEM;
	cmds = calloc(n, SMMUV3_CMD_SIZE);
	rc = cmds ? vdevs_of(st, v->id, &vdevs, &n_vdevs) : -ENOMEM;
	if (!rc)
		rc = copy_cmds(cmds, inv, n);
	if (rc)
		goto out;
	while (cur != n) {
		uint8_t *c = cmds + (size_t)cur * SMMUV3_CMD_SIZE;

		rc = smmuv3_sim_convert(c, sim_vsmmu_vmid(v), vdevs, n_vdevs, c);
		if (rc)
			break; /* [last, cur) converted but never issued */
		cur++;
		if (cur != n && cur - last != CMDQ_BATCH_ENTRIES - 1)
			continue;
		/* The host SMMU runs the block and its CMD_SYNC. */
		rc = issue_fault(st, v, last, cur);
		if (rc) {
			cur--; /* the driver's count: the block's last one "not handled" */
			break;
		}
		for (uint32_t i = last; i < cur; i++)
			smmuv3_model_apply(m, cmds + (size_t)i * SMMUV3_CMD_SIZE, NULL);
		last = cur;
	}
	inv->entry_num = cur;
out:
	free(cmds);
	free(vdevs);
	return rc;
}

int sim_vsmmu_nested_check(const struct backend_alloc *req)
{
	struct nestd_hwpt_arm_smmuv3 arg;

	/* arm_vsmmu_alloc_domain_nested(): no flags, its own data type and size. */
	if (req->flags & ~IOMMU_HWPT_FAULT_ID_VALID)
		return -EOPNOTSUPP;
	if (req->data_type != NESTD_HWPT_DATA_ARM_SMMUV3)
		return -EOPNOTSUPP;
	if (req->data_len != sizeof(arg))
		return -EINVAL;
	if (!req->data)
		return -EFAULT;
	memcpy(&arg, req->data, sizeof(arg));
	return sim_vsmmu_validate_ste(&arg);
}

/* STE fields the guest may set (STRTAB_STE_{0,1}_NESTING_ALLOWED) and the ones read. */
#define STE0_V		 (1ULL << 0)
#define STE0_CFG_SHIFT	 1
#define STE0_ALLOWED	 (0x3fULL | (((1ULL << 46) - 1) << 6) | (0x1fULL << 59))
#define STE1_ALLOWED	 (0xffULL | (1ULL << 27) | (3ULL << 28))
#define STE1_EATS_SHIFT	 28
#define STE_CFG_ABORT	 0
#define STE_CFG_BYPASS	 4
#define STE_CFG_S1_TRANS 5
#define STE_EATS_ABT	 0
#define STE_EATS_TRANS	 1

int sim_vsmmu_validate_ste(const struct nestd_hwpt_arm_smmuv3 *arg)
{
	uint64_t s0 = le64toh(arg->ste[0]), s1 = le64toh(arg->ste[1]);
	unsigned cfg = (unsigned)(s0 >> STE0_CFG_SHIFT) & 7,
		 eats = (unsigned)(s1 >> STE1_EATS_SHIFT) & 3;

	/* arm_smmu_validate_vste(): an invalid STE is zeroed and accepted (abort). */
	if (!(s0 & STE0_V))
		return 0;
	if ((s0 & ~STE0_ALLOWED) || (s1 & ~STE1_ALLOWED))
		return -EIO;
	if (cfg != STE_CFG_ABORT && cfg != STE_CFG_BYPASS && cfg != STE_CFG_S1_TRANS)
		return -EIO;
	if (eats != STE_EATS_ABT && eats != STE_EATS_TRANS)
		return -EIO;
	return 0;
}

/* Test-only seeding and counting of the model (SimPopulate / SimQuery). */
#define SMMU_PAGE_SHIFT	 12
#define SMMU_BLOCK_SHIFT 21	      /* a level-2 table maps 2 MiB of 4 KiB pages */
#define SMMU_SEED_MAX	 (1ULL << 20) /* pages per populate: a bounded model */

/* The vIOMMU behind nested HWPT id, or the errno (cache.c's order). */
static int smmu_nested(struct sim_state *st, uint32_t id, struct sim_obj **viommu)
{
	struct sim_obj *o = sim_obj_find(st, id), *v;

	if (!o || o->type != SIM_OBJ_NESTED)
		return -ENOENT;
	v = sim_obj_find(st, o->parent_id);
	if (o->kind != DEVICE_KIND_SMMUV3 || !v || v->type != SIM_OBJ_VIOMMU)
		return -EINVAL;
	*viommu = v;
	return 0;
}

static bool range_ok(uint64_t addr, uint64_t npages)
{
	return !(addr & ((1ULL << SMMU_PAGE_SHIFT) - 1)) && npages &&
	       npages <= ((UINT64_MAX - addr) >> SMMU_PAGE_SHIFT) + 1;
}

int sim_vsmmu_populate(struct sim_state *st, uint32_t hwpt_id, uint32_t asid, uint64_t addr,
		       uint64_t npages, uint32_t kind)
{
	struct sim_obj *v;
	struct smmuv3_model *m;
	int rc = smmu_nested(st, hwpt_id, &v);

	if (rc)
		return rc;
	if (!range_ok(addr, npages) || npages > SMMU_SEED_MAX || asid > UINT16_MAX ||
	    (kind != SIM_KIND_IOTLB && kind != SIM_KIND_PSC))
		return -EINVAL;
	m = sim_vsmmu_model(v);
	if (!m)
		return -ENOMEM;
	for (uint64_t p = 0; p < npages && !rc; p++) {
		uint64_t va = addr + (p << SMMU_PAGE_SHIFT);
		struct smmuv3_tlb_ent e = {.vmid = sim_vsmmu_vmid(v),
					   .asid = (uint16_t)asid,
					   .va = va,
					   .size_shift = SMMU_PAGE_SHIFT,
					   .level = 3,
					   .leaf = true,
					   .valid = true};

		if (kind == SIM_KIND_PSC) {
			/* One walk-cache entry per 2 MiB block the pages touch. */
			if (p && (va & ((1ULL << SMMU_BLOCK_SHIFT) - 1)))
				continue;
			e.va = va & ~((1ULL << SMMU_BLOCK_SHIFT) - 1);
			e.size_shift = SMMU_BLOCK_SHIFT;
			e.level = 2;
			e.leaf = false;
		}
		rc = smmuv3_model_add_tlb(m, &e);
	}
	return rc;
}

/* Pages of [first, last] (inclusive bytes) an entry covers. */
static uint64_t overlap_pages(const struct smmuv3_tlb_ent *e, uint64_t first, uint64_t last)
{
	uint64_t ef = e->va, el = e->va + ((1ULL << e->size_shift) - 1);

	if (el < first || ef > last)
		return 0;
	ef = ef > first ? ef : first;
	el = el < last ? el : last;
	return ((el - ef) >> SMMU_PAGE_SHIFT) + 1;
}

int sim_vsmmu_query(struct sim_state *st, uint32_t hwpt_id, uint32_t asid, uint64_t addr,
		    uint64_t npages, uint64_t *iotlb_pages, uint64_t *psc_pages)
{
	uint64_t leaf = 0, walk = 0, last;
	struct sim_obj *v;
	int rc = smmu_nested(st, hwpt_id, &v);

	if (rc)
		return rc;
	if (!range_ok(addr, npages))
		return -EINVAL;
	last = addr + ((npages - 1) << SMMU_PAGE_SHIFT) + ((1ULL << SMMU_PAGE_SHIFT) - 1);
	for (uint32_t i = 0; v->smmu && i < v->smmu->n_tlb; i++) {
		const struct smmuv3_tlb_ent *e = &v->smmu->tlb[i];

		/* What a translation of this ASID could still hit. */
		if (!e->valid || e->vmid != sim_vsmmu_vmid(v) || (e->asid != asid && !e->global))
			continue;
		if (e->leaf)
			leaf += overlap_pages(e, addr, last);
		else
			walk += overlap_pages(e, addr, last);
	}
	if (iotlb_pages)
		*iotlb_pages = leaf;
	if (psc_pages)
		*psc_pages = walk;
	return 0;
}
