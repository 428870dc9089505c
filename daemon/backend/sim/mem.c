// SPDX-License-Identifier: MIT
/*
 * Simulator model of a device's stage 2: the areas of its own IOAS, as
 * IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP leave them. The checks, their order and
 * their errnos follow Linux 6.12: iommufd_ioas_map() / iommufd_ioas_unmap()
 * in drivers/iommu/iommufd/ioas.c, iopt_alloc_pages() in pages.c and
 * iopt_alloc_area_pages() / iopt_check_iova() / iopt_unmap_iova_range() in
 * io_pagetable.c. Areas are kept sorted and disjoint, so every lookup is a
 * binary search.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sim/state.h"
#include "util/search.h"
#include "util/common.h"

#define SIM_PAGE_SIZE 4096ULL

/* selftest.c: the mock domain's IO page size is half a CPU page. */
#define MOCK_IO_PAGE_SIZE (SIM_PAGE_SIZE / 2)
/* iommufd_test.h:29: the mock domain's aperture. */
#define MOCK_APERTURE_START (1ULL << 24)
#define MOCK_APERTURE_LAST  ((1ULL << 31) - 1)
/* intel/iommu.c:46: the IOAPIC window every VT-d device reports reserved. */
#define VTD_IOAPIC_START 0xfee00000ULL
#define VTD_IOAPIC_LAST	 0xfeefffffULL
/* The modelled VT-d nest parent is a 4-level (48-bit) second stage. */
#define VTD_APERTURE_LAST ((1ULL << 48) - 1)

/*
 * iopt->iova_alignment: the smallest IO page size of the domains on the
 * IOAS (io_pagetable.c:1066), here the device's nest parent alone.
 */
static uint64_t iova_alignment(enum device_kind kind)
{
	return kind == DEVICE_KIND_SELFTEST ? MOCK_IO_PAGE_SIZE : SIM_PAGE_SIZE;
}

/*
 * iopt_table_add_domain() reserves everything outside the domain's
 * aperture (io_pagetable.c:1080) and the device's reserved regions are
 * reserved too; a mapping that touches a reserved range is -EINVAL
 * (iopt_check_iova, io_pagetable.c:196).
 */
int sim_map_range_ok(enum device_kind kind, uint64_t iova, uint64_t last)
{
	if (kind == DEVICE_KIND_SELFTEST)
		return iova >= MOCK_APERTURE_START && last <= MOCK_APERTURE_LAST ? 0 : -EINVAL;
	if (last > VTD_APERTURE_LAST)
		return -EINVAL;
	if (iova <= VTD_IOAPIC_LAST && last >= VTD_IOAPIC_START)
		return -EINVAL;
	return 0;
}

static bool last_ge(const void *arr, uint32_t i, uint64_t iova)
{
	return ((const struct sim_map *)arr)[i].last >= iova;
}

/* Index of the first area that ends at or after iova. */
static uint32_t first_from(const struct sim_dev *d, uint64_t iova)
{
	return search_first_past(d->maps, d->n_maps, iova, last_ge);
}

bool sim_mapped_run(const struct sim_dev *d, uint64_t iova, uint64_t last, bool *any,
		    uint64_t *walked_last)
{
	uint64_t at = iova;

	*any = false;
	for (uint32_t i = first_from(d, iova); i < d->n_maps && d->maps[i].iova <= at; i++) {
		*any = true;
		if (d->maps[i].last >= last) {
			*walked_last = last;
			return true;
		}
		*walked_last = d->maps[i].last;
		at = d->maps[i].last + 1;
	}
	return false;
}

static int insert_at(struct sim_dev *d, uint32_t i, uint64_t iova, uint64_t last, uint32_t flags)
{
	struct sim_map *m = array_room(d->maps, d->n_maps, &d->cap_maps, sizeof(*m), 8);

	if (!m)
		return -ENOMEM;
	d->maps = m;
	memmove(&d->maps[i + 1], &d->maps[i], (size_t)(d->n_maps - i) * sizeof(*d->maps));
	d->maps[i] = (struct sim_map){.iova = iova, .last = last, .flags = flags};
	d->n_maps++;
	return 0;
}

int sim_map_append(struct sim_dev *d, uint64_t iova, uint64_t last, uint32_t flags)
{
	return insert_at(d, d->n_maps, iova, last, flags);
}

void sim_dev_maps_free(struct sim_dev *d)
{
	free(d->maps);
	d->maps = NULL;
	d->n_maps = 0;
	d->cap_maps = 0;
}

/* The ioctl's own checks, before it looks at the IOAS (ioas.c:208-218). */
static int map_args_check(uint64_t iova, uint64_t length, uint32_t flags)
{
	if (flags & ~(IOMMU_IOAS_MAP_FIXED_IOVA | IOAS_MAP_ACCESS))
		return -EOPNOTSUPP;
	if (iova >= UINT64_MAX || length >= UINT64_MAX)
		return -EOVERFLOW;
	if (!(flags & IOAS_MAP_ACCESS))
		return -EINVAL;
	/* iopt_alloc_pages(), pages.c:1152. */
	if (!length || length > UINT64_MAX - SIM_PAGE_SIZE)
		return -EINVAL;
	return 0;
}

/*
 * Whether a domain of kind on the IOAS takes the mapping, in the order
 * the kernel meets the checks: *last is computed on the way.
 */
static int domain_checks(enum device_kind kind, uint64_t iova, uint64_t length, uint64_t *last)
{
	/* iopt_alloc_area_pages() (io_pagetable.c:270), then iopt_check_iova(). */
	uint64_t align = iova_alignment(kind);

	if ((length & (align - 1)) || (iova & (align - 1)))
		return -EINVAL;
	if (__builtin_add_overflow(iova, length - 1, last))
		return -EOVERFLOW;
	return sim_map_range_ok(kind, iova, *last);
}

/*
 * The VT-d driver refuses a mapping without write access on a nest parent
 * (intel/iommu.c __domain_mapping(), erratum 772415_SPR17, which hwinfo.c
 * reports); the mock domain takes it.
 */
static int domain_takes(enum device_kind kind, uint32_t flags)
{
	if (sim_kind_no_ro_nest_parent(kind) && !(flags & IOMMU_IOAS_MAP_WRITEABLE))
		return -EINVAL;
	return 0;
}

int sim_map_memory(struct sim_state *st, const char *device, uint64_t iova, uint64_t length,
		   uint32_t flags)
{
	int dev = sim_dev_find(st, device);
	struct sim_dev *io;
	uint64_t last = 0;
	uint32_t i;
	int rc;

	if (dev < 0)
		return dev;
	io = sim_ioas_of(st, (uint32_t)dev);
	rc = map_args_check(iova, length, flags);
	if (rc)
		return rc;
	/*
	 * The IOAS's alignment and reserved ranges are those of every domain
	 * on it: a context's one IOAS carries every one of its devices' nest
	 * parents, a root device's IOAS its own parent only.
	 */
	for (uint32_t k = 0; k < st->n_devs; k++) {
		if (!st->devs[k].present || (!st->is_ctx && k != (uint32_t)dev))
			continue;
		rc = domain_checks(st->devs[k].kind, iova, length, &last);
		if (rc)
			return rc;
	}
	i = first_from(io, iova);
	if (i < io->n_maps && io->maps[i].iova <= last)
		return -EEXIST;
	/* Then the area is mapped into the IOAS's domains, the nest parents. */
	for (uint32_t k = 0; k < st->n_devs; k++) {
		if (!st->devs[k].present || (!st->is_ctx && k != (uint32_t)dev))
			continue;
		rc = domain_takes(st->devs[k].kind, flags);
		if (rc)
			return rc;
	}
	return insert_at(io, i, iova, last, flags & IOAS_MAP_ACCESS);
}

/*
 * iopt_unmap_iova_range(): walks the areas meeting [iova, last] in IOVA
 * order and unmaps each one that lies inside; the first area that sticks
 * out stops the walk with -ENOENT, and the ones before it stay unmapped
 * (the kernel does not roll back). Nothing unmapped at all is -ENOENT too
 * (ioas.c:320).
 */
static int unmap_range(struct sim_dev *d, uint64_t iova, uint64_t last)
{
	uint32_t i = first_from(d, iova), j = i;
	uint64_t unmapped = 0;
	int rc = 0;

	while (j < d->n_maps && d->maps[j].iova <= last) {
		if (d->maps[j].iova < iova || d->maps[j].last > last) {
			rc = -ENOENT;
			break;
		}
		unmapped += d->maps[j].last - d->maps[j].iova + 1;
		j++;
	}
	/* Nothing met: maps may be NULL (no area yet), which memmove may not take. */
	if (j > i) {
		memmove(&d->maps[i], &d->maps[j], (size_t)(d->n_maps - j) * sizeof(*d->maps));
		d->n_maps -= j - i;
	}
	if (rc)
		return rc;
	return unmapped ? 0 : -ENOENT;
}

int sim_unmap_memory(struct sim_state *st, const char *device, uint64_t iova, uint64_t length)
{
	int dev = sim_dev_find(st, device);
	uint64_t last;

	if (dev < 0)
		return dev;
	/* ioas.c:307: iopt_unmap_all(), which succeeds on an empty IOAS. */
	if (iova == 0 && length == UINT64_MAX) {
		sim_ioas_of(st, (uint32_t)dev)->n_maps = 0;
		return 0;
	}
	if (iova >= UINT64_MAX || length >= UINT64_MAX)
		return -EOVERFLOW;
	/* iopt_unmap_iova(), io_pagetable.c:761. */
	if (!length)
		return -EINVAL;
	if (__builtin_add_overflow(iova, length - 1, &last))
		return -EOVERFLOW;
	return unmap_range(sim_ioas_of(st, (uint32_t)dev), iova, last);
}
