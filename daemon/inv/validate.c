/* SPDX-License-Identifier: MIT */
/*
 * The kernel's IOMMU_HWPT_INVALIDATE checks, in the kernel's order, so that
 * a client sees exactly the errno the ioctl would have returned:
 *   iommufd_hwpt_invalidate()            drivers/iommu/iommufd/hw_pagetable.c
 *   intel_nested_cache_invalidate_user() drivers/iommu/intel/nested.c
 *   mock_domain_cache_invalidate_user()  drivers/iommu/iommufd/selftest.c
 *   __iommu_copy_struct_from_user()      include/linux/iommu.h
 */
#include "inv/validate.h"

#include <errno.h>
#include <string.h>

#include "backend/iommufd_uapi.h"

/* First-version size of an entry type (the smallest entry_len accepted). */
static uint32_t inv_entry_min_len(uint32_t data_type)
{
	switch (data_type) {
	case IOMMU_HWPT_INVALIDATE_DATA_VTD_S1:
		return VTD_S1_INV_MIN_LEN;
	case IOMMU_HWPT_INVALIDATE_DATA_SELFTEST:
		return SELFTEST_INV_MIN_LEN;
	default:
		return 0;
	}
}

/* On the wire 0 means "native"; the ioctl always gets a real length. */
static uint32_t effective_len(const struct inv_request *req)
{
	return req->entry_len ? req->entry_len : inv_entry_size(req->data_type);
}

int inv_validate_header(const struct inv_request *req)
{
	uint32_t len = effective_len(req);

	if (req->reserved)
		return -EOPNOTSUPP;
	/* hw_pagetable.c bounds the array before looking at anything else. */
	if (req->n && (!req->entries || !len || len > IOMMUFD_PAGE_SIZE ||
		       req->n > IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX))
		return -EINVAL;
	return 0;
}

int inv_validate_request(const struct inv_request *req, uint32_t hwpt_inv_type)
{
	uint32_t native = inv_entry_size(req->data_type);
	uint32_t len = effective_len(req);
	int rc = inv_validate_header(req);

	if (rc)
		return rc;
	/*
	 * The drivers check the type before their loop, so even a probe
	 * (n == 0) with the wrong type fails.
	 */
	if (req->data_type != hwpt_inv_type || !native)
		return -EINVAL;
	/* The first entry's copy fails on a bad length: nothing is handled. */
	if (req->n && (len < inv_entry_min_len(req->data_type) || len > native))
		return -EINVAL;
	return 0;
}

/* Inline in the marking loop below (check_vtd()): one of the hottest loops. */
static inline int vtd_entry_check(const void *entry)
{
	struct iommu_hwpt_vtd_s1_invalidate e;

	memcpy(&e, entry, sizeof(e));
	if ((e.flags & ~(uint32_t)IOMMU_VTD_INV_FLAGS_LEAF) || e.__reserved)
		return -EOPNOTSUPP;
	if ((e.addr & (IOMMUFD_PAGE_SIZE - 1)) || (e.npages == UINT64_MAX && e.addr))
		return -EINVAL;
	/*
	 * npages == 0 passes, as in the kernel; the coalescer treats it as an
	 * empty range (see inv/coalesce_vtd.c).
	 */
	return 0;
}

int inv_validate_vtd_entry(const void *entry)
{
	return vtd_entry_check(entry);
}

int inv_validate_selftest_entry(const void *entry)
{
	struct iommu_hwpt_invalidate_selftest e;

	memcpy(&e, entry, sizeof(e));
	if (e.flags & ~(uint32_t)IOMMU_TEST_INVALIDATE_FLAG_ALL)
		return -EOPNOTSUPP;
	/* Checked even with FLAG_ALL, which ignores the id otherwise. */
	if (e.iotlb_id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX)
		return -EINVAL;
	return 0;
}

/*
 * The marking loop, inlined into each caller so that a constant check is
 * a direct (and inline) call rather than one through a pointer per entry.
 */
static inline __attribute__((always_inline)) uint32_t
mark_with(struct inv_request *req, size_t esz, inv_entry_check_fn check, const void *ctx)
{
	const uint8_t *p = req->entries;
	uint32_t pending = 0;
	uint32_t i;

	for (i = 0; i < req->n; i++) {
		struct inv_entry_result *r = &req->res[i];
		int rc = check(p + (size_t)i * esz, ctx);

		r->error = 0;
		r->hw_error = 0;
		if (!rc) {
			r->state = INV_PENDING;
			pending++;
			continue;
		}
		r->state = INV_FAILED;
		r->error = rc;
		if (!req->cont)
			break;
	}
	/* Without cont the kernel stops at the first bad entry. */
	for (i++; i < req->n; i++) {
		req->res[i].state = INV_NOT_ATTEMPTED;
		req->res[i].error = 0;
		req->res[i].hw_error = 0;
	}
	return pending;
}

uint32_t inv_mark_entries(struct inv_request *req, size_t esz, inv_entry_check_fn check,
			  const void *ctx)
{
	return mark_with(req, esz, check, ctx);
}

static int check_vtd(const void *entry, const void *ctx)
{
	(void)ctx;
	return vtd_entry_check(entry);
}

static int check_selftest(const void *entry, const void *ctx)
{
	(void)ctx;
	return inv_validate_selftest_entry(entry);
}

static int check_unknown(const void *entry, const void *ctx)
{
	(void)entry;
	(void)ctx;
	return -EINVAL;
}

uint32_t inv_validate_entries(struct inv_request *req)
{
	switch (req->data_type) {
	case IOMMU_HWPT_INVALIDATE_DATA_VTD_S1:
		return mark_with(req, sizeof(struct iommu_hwpt_vtd_s1_invalidate), check_vtd, NULL);
	case IOMMU_HWPT_INVALIDATE_DATA_SELFTEST:
		return mark_with(req, sizeof(struct iommu_hwpt_invalidate_selftest), check_selftest,
				 NULL);
	default:
		/* No entry size: every entry fails (the kernel's data type check). */
		return mark_with(req, 0, check_unknown, NULL);
	}
}
