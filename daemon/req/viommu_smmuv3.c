/* SPDX-License-Identifier: MIT */
/*
 * Invalidate on an ARM SMMUv3 vIOMMU. The 7.x driver reports commands it
 * never issued as handled when a later one fails to convert, so nothing
 * that could fail conversion goes to the kernel: every command is checked
 * first (inv/validate_smmuv3.c, against this vIOMMU's vDEVICEs as the
 * daemon holds them) and a bad one gets its errno here. The rest of the
 * request (one guest CMD_SYNC batch) is coalesced (inv/coalesce_smmuv3.c,
 * ranges only if the host SMMU has IDR3.RIL) and goes out in one ioctl. A
 * guest entry is done only if the command serving it was issued; if the
 * kernel still reports a failure, its entry_num cannot be trusted, so
 * every command goes again one by one and only those that succeed count.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/viommu_uapi.h"
#include "inv/smmuv3.h"
#include "net/server.h"
#include "net/session.h"
#include "req/handlers.h"
#include "state/viommus.h"

/* The vIOMMU's vDEVICEs by virt_id (the pSID is the kernel's business). */
static int vsid_map_of(const struct vobj_table *t, const struct session *owner, uint32_t viommu_id,
		       struct smmuv3_vsid **out, uint32_t *n)
{
	struct smmuv3_vsid *v = calloc(t->count ? t->count : 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	*n = 0;
	for (const struct vobj *o = t->head; o; o = o->next)
		/*
		 * A vsid wider than the SID field can never match a command.
		 * The owner's only: vIOMMU ids repeat across VM contexts and a
		 * previous instance's orphans.
		 */
		if (o->kind == VOBJ_VDEVICE && o->owner == owner && o->viommu_id == viommu_id &&
		    o->virt_id <= UINT32_MAX)
			v[(*n)++] = (struct smmuv3_vsid){.vsid = (uint32_t)o->virt_id};
	smmuv3_vsid_sort(v, *n);
	*out = v;
	return 0;
}

/*
 * copy_struct_from_user() of each command: a shorter entry is zero-extended,
 * a longer one must have only zeros past 16 bytes (-E2BIG for the request).
 */
static int native_cmds(const struct inv_request *r, uint8_t *out)
{
	const uint8_t *in = r->entries;
	uint32_t len = r->entry_len;

	for (uint32_t i = 0; i < r->n; i++) {
		const uint8_t *s = in + (size_t)i * len;

		memcpy(out + (size_t)i * SMMUV3_CMD_SIZE, s,
		       len < SMMUV3_CMD_SIZE ? len : SMMUV3_CMD_SIZE);
		for (uint32_t b = SMMUV3_CMD_SIZE; b < len; b++)
			if (s[b])
				return -E2BIG;
	}
	return 0;
}

/* Whether the host SMMU behind device has range commands (SMMU_IDR3.RIL). */
bool req_smmuv3_host_range(struct backend *be, const char *device)
{
	struct backend_hw_info hi;
	struct nestd_hw_info_arm_smmuv3 info = {0};

	if (!be->ops->hw_info || be->ops->hw_info(be, device, &hi) ||
	    hi.data_type != NESTD_HW_INFO_TYPE_ARM_SMMUV3)
		return false;
	memcpy(&info, hi.data, hi.data_len < sizeof(info) ? hi.data_len : sizeof(info));
	return info.idr[3] & NESTD_SMMU_IDR3_RIL;
}

static void coalesce_params_of(const struct session *s, const struct vobj *viommu,
			       struct smmuv3_coalesce_params *p)
{
	memset(p, 0, sizeof(*p));
	p->enabled = s->srv->cfg->coalesce;
	p->range = viommu->smmu_range;
	p->va_tg = p->range ? 1 : 0; /* 4 KiB granules: every SMMUv3 has them */
	p->slack_granules = s->srv->cfg->coalesce_slack_pages;
}

/* One ioctl of n commands; returns the kernel's errno, counts the submission. */
static int issue(struct session *s, struct inv_request *r, const uint8_t *cmds, uint32_t n)
{
	struct backend *be = req_be_of(s);
	struct backend_inv inv = {.hwpt_id = r->hwpt_id,
				  .data_type = NESTD_VIOMMU_INV_DATA_ARM_SMMUV3,
				  .entry_len = SMMUV3_CMD_SIZE,
				  .entry_num = n,
				  .entries = cmds};

	s->srv->stats.submissions++;
	s->srv->stats.entries_submitted += n;
	r->entries_submitted += n;
	return be->ops->invalidate(be, &inv);
}

/*
 * Submits the plan; issued[k] says whether output k surely ran. Returns 0
 * or the kernel's last error.
 */
static int submit_plan(struct session *s, struct inv_request *r, const struct coalesce_plan *plan,
		       bool *issued)
{
	const uint8_t *sub = plan->sub;
	int rc = issue(s, r, sub, plan->n_sub), last = 0;

	for (uint32_t k = 0; k < plan->n_sub; k++)
		issued[k] = !rc;
	if (!rc)
		return 0;
	/* entry_num over-reports: nothing of this call is known to have run. */
	for (uint32_t k = 0; k < plan->n_sub; k++) {
		int one = issue(s, r, sub + (size_t)k * SMMUV3_CMD_SIZE, 1);

		issued[k] = !one;
		if (one)
			last = one;
	}
	return last;
}

/* Pending entries [idx] served by the plan: done iff their command was issued. */
static void record(struct inv_request *r, const uint32_t *idx, uint32_t n_pend,
		   const struct coalesce_plan *plan, const bool *issued, int err)
{
	for (uint32_t j = 0; j < n_pend; j++) {
		bool ok = true;

		for (uint32_t k = plan->first[j]; k <= plan->last[j]; k++)
			ok = ok && issued[k];
		r->res[idx[j]] = ok ? (struct inv_entry_result){.state = INV_DONE}
				    : (struct inv_entry_result){.state = INV_FAILED, .error = err};
	}
}

static void finish(struct session *s, struct inv_request *r)
{
	for (uint32_t i = 0; i < r->n; i++) {
		if (r->res[i].state == INV_FAILED) {
			s->srv->stats.entries_failed++;
			if (!r->status)
				r->status = r->res[i].error;
		}
	}
	for (r->entries_handled = 0; r->entries_handled < r->n; r->entries_handled++)
		if (r->res[r->entries_handled].state != INV_DONE)
			break;
}

int req_viommu_smmuv3_invalidate(struct session *s, struct inv_request *r,
				 const struct vobj *viommu)
{
	struct inv_request v = *r; /* the same results, over native commands */
	struct coalesce_plan plan;
	struct smmuv3_coalesce_params p;
	struct smmuv3_vsid *vsids = NULL;
	uint8_t *cmds = NULL, *pend = NULL;
	uint32_t *idx = NULL, n_vsid = 0, n_pend = 0;
	bool *issued = NULL;
	int rc = smmuv3_validate_request(r);

	coalesce_plan_init(&plan);
	if (rc)
		goto out;
	cmds = calloc(r->n, SMMUV3_CMD_SIZE);
	pend = calloc(r->n, SMMUV3_CMD_SIZE);
	idx = calloc(r->n, sizeof(*idx));
	rc = cmds && pend && idx ? native_cmds(r, cmds) : -ENOMEM;
	if (!rc)
		rc = vsid_map_of(&s->srv->reg.vobjs, s, r->hwpt_id, &vsids, &n_vsid);
	if (rc)
		goto out;
	v.entries = cmds;
	v.entry_len = SMMUV3_CMD_SIZE;
	smmuv3_validate_entries(&v, &(struct smmuv3_vsid_map){.ents = vsids, .n = n_vsid});
	for (uint32_t i = 0; i < r->n; i++) {
		if (r->res[i].state != INV_PENDING)
			continue;
		memcpy(pend + (size_t)n_pend * SMMUV3_CMD_SIZE, cmds + (size_t)i * SMMUV3_CMD_SIZE,
		       SMMUV3_CMD_SIZE);
		idx[n_pend++] = i;
	}
	if (n_pend) {
		coalesce_params_of(s, viommu, &p);
		rc = coalesce_smmuv3(pend, n_pend, &p, &plan);
		issued = rc ? NULL : calloc(plan.n_sub ? plan.n_sub : 1, sizeof(*issued));
		if (!rc && !issued)
			rc = -ENOMEM;
		if (rc)
			goto out;
		record(r, idx, n_pend, &plan, issued, submit_plan(s, r, &plan, issued));
	}
	finish(s, r);
out:
	if (rc)
		r->status = rc;
	coalesce_plan_free(&plan);
	free(issued);
	free(vsids);
	free(idx);
	free(pend);
	free(cmds);
	return rc;
}
