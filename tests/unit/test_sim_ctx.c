// SPDX-License-Identifier: MIT
/*
 * VM contexts of the sim backend, against the kernel's rules as the kernel
 * tier's kernel/vmctx shows them on the real iommufd: every context is its
 * own id space (like its own open of /dev/iommu: two contexts hand out the
 * same ids, an id of one is ENOENT in the other), with ONE IOAS shared by
 * its devices (mapped once, in every device's nest parent), devices held
 * only once added, and a VTD (VFIO) device bound to one iommufd at a time.
 */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "backend/backend.h"
#include "backend/iommufd_uapi.h"
#include "util/config.h"
#include "unit_run.h"

#define IOVA (1ull << 24) /* inside the mock aperture */
#define PG   4096ull

static struct config cfg;
static struct backend *root, *a, *b;

static void cfg_add(const char *name, enum device_kind kind)
{
	struct config_device *d = &cfg.devices[cfg.n_devices++];

	strncpy(d->name, name, sizeof(d->name) - 1);
	d->kind = kind;
}

static void up(void)
{
	const char *err = NULL;

	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.backend, "sim");
	cfg_add("mock0", DEVICE_KIND_SELFTEST);
	cfg_add("mock1", DEVICE_KIND_SELFTEST);
	cfg_add("vtd0", DEVICE_KIND_VTD);
	root = a = b = NULL;
	CU_ASSERT_FATAL(backend_sim_open(&cfg, &root, &err) == 0);
	CU_ASSERT_FATAL(root->ops->open_context(root, &a) == 0);
	CU_ASSERT_FATAL(root->ops->open_context(root, &b) == 0);
}

static void down(void)
{
	b->ops->close(b);
	a->ops->close(a);
	root->ops->close(root);
}

static int alloc_st(struct backend *be, const char *dev, uint32_t *id)
{
	struct iommu_hwpt_selftest data = {.iotlb = IOMMU_TEST_IOTLB_DEFAULT};
	struct backend_alloc req = {
	    .data_type = IOMMU_HWPT_DATA_SELFTEST, .data = &data, .data_len = sizeof(data)};

	return be->ops->alloc_nested(be, dev, &req, id, NULL);
}

static int inv_all(struct backend *be, uint32_t hwpt)
{
	struct iommu_hwpt_invalidate_selftest e = {.flags = IOMMU_TEST_INVALIDATE_FLAG_ALL};
	struct backend_inv in = {
	    .hwpt_id = hwpt,
	    .data_type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
	    .entry_len = sizeof(e),
	    .entry_num = 1,
	    .entries = &e,
	};

	return be->ops->invalidate(be, &in);
}

static int map(struct backend *be, const char *dev, uint64_t len)
{
	return be->ops->map_memory(be, dev, IOVA, len, -1, 0,
				   IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE);
}

static void test_ids_per_context(void)
{
	uint32_t ida = 0, idb = 0, ida2 = 0;

	up();
	CU_ASSERT(root->ops->open_context(a, &b) == -EINVAL); /* contexts do not nest */
	CU_ASSERT(a->ops->add_device(a, "nosuch") == -ENODEV);
	CU_ASSERT(alloc_st(a, "mock0", &ida) == -ENODEV); /* not added yet */
	CU_ASSERT(a->ops->add_device(a, "mock0") == 0);
	CU_ASSERT(a->ops->add_device(a, "mock0") == -EEXIST);
	CU_ASSERT(b->ops->add_device(b, "mock0") == 0);
	CU_ASSERT(alloc_st(a, "mock0", &ida) == 0);
	CU_ASSERT(alloc_st(b, "mock0", &idb) == 0);
	CU_ASSERT(ida == idb); /* one id space each: the same first id */
	CU_ASSERT(alloc_st(a, "mock0", &ida2) == 0);
	CU_ASSERT(a->ops->attach(a, "mock0", ida) == 0);

	CU_ASSERT(inv_all(a, ida) == 0);
	CU_ASSERT(a->ops->check_iotlb(a, ida, 0, 0) == 0);
	CU_ASSERT(b->ops->check_iotlb(b, idb, 0, IOMMU_TEST_IOTLB_DEFAULT) == 0);

	CU_ASSERT(inv_all(b, ida2) == -ENOENT);
	CU_ASSERT(b->ops->destroy(b, ida2) == -ENOENT);
	CU_ASSERT(b->ops->attach(b, "mock0", ida2) == -ENOENT);
	CU_ASSERT(b->ops->has_hwpt(b, ida2) == false);
	CU_ASSERT(a->ops->check_iotlb(a, ida2, 0, IOMMU_TEST_IOTLB_DEFAULT) == 0);

	CU_ASSERT(a->ops->remove_device(a, "mock0") == -EBUSY); /* nested on its parent */
	CU_ASSERT(a->ops->detach(a, "mock0") == 0);
	CU_ASSERT(a->ops->destroy(a, ida) == 0);
	CU_ASSERT(b->ops->check_iotlb(b, idb, 0, IOMMU_TEST_IOTLB_DEFAULT) == 0);
	CU_ASSERT(a->ops->destroy(a, ida2) == 0);
	CU_ASSERT(a->ops->remove_device(a, "mock0") == 0);
	CU_ASSERT(a->ops->remove_device(a, "mock0") == -ENOENT);
	CU_ASSERT(alloc_st(a, "mock0", &ida) == -ENODEV);
	down();
}

static void test_shared_ioas(void)
{
	uint64_t bits[1] = {0};
	struct backend_dirty bm = {.iova = IOVA, .length = 4 * PG, .page_size = PG, .data = bits};

	up();
	CU_ASSERT(a->ops->add_device(a, "mock0") == 0);
	CU_ASSERT(a->ops->add_device(a, "mock1") == 0);
	CU_ASSERT(b->ops->add_device(b, "mock0") == 0);
	CU_ASSERT(map(a, "mock0", 2 * PG) == 0);
	/* The same IOAS behind mock1: the range is taken, and mock1 can unmap it. */
	CU_ASSERT(map(a, "mock1", 2 * PG) == -EEXIST);
	/* mock1's nest parent maps the pages: marking them dirty reports them. */
	CU_ASSERT(a->ops->set_dirty_tracking(a, "mock1", true) == 0);
	bits[0] = 0xf;
	CU_ASSERT(a->ops->set_dirty(a, "mock1", &bm) == 0);
	bits[0] = 0;
	/* 6.12's rules: the walk reads the mapped run, then fails at the gap after it. */
	CU_ASSERT(a->ops->get_dirty_bitmap(a, "mock1", &bm) == -EINVAL);
	CU_ASSERT(bits[0] == 0x3); /* the two mapped pages, not the two unmapped ones */
	/*
	 * Memory after the gap is not walked: page 3 mapped and marked stays
	 * unread, and still dirty for a read that starts there.
	 */
	CU_ASSERT(a->ops->map_memory(a, "mock0", IOVA + 3 * PG, PG, -1, 0,
				     IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE) == 0);
	bits[0] = 0xf;
	CU_ASSERT(a->ops->set_dirty(a, "mock1", &bm) == 0);
	bits[0] = 0;
	CU_ASSERT(a->ops->get_dirty_bitmap(a, "mock1", &bm) == -EINVAL);
	CU_ASSERT(bits[0] == 0x3);
	{
		struct backend_dirty tail = {
		    .iova = IOVA + 3 * PG, .length = PG, .page_size = PG, .data = bits};

		bits[0] = 0;
		CU_ASSERT(a->ops->get_dirty_bitmap(a, "mock1", &tail) == 0);
		CU_ASSERT(bits[0] == 0x1);
	}
	CU_ASSERT(a->ops->unmap_memory(a, "mock0", IOVA + 3 * PG, PG) == 0);
	/* B's IOAS is its own: the range is free there, and B cannot reach mock1. */
	CU_ASSERT(map(b, "mock1", 2 * PG) == -ENODEV);
	CU_ASSERT(map(b, "mock0", 2 * PG) == 0);
	CU_ASSERT(a->ops->unmap_memory(a, "mock1", IOVA, 2 * PG) == 0);
	CU_ASSERT(a->ops->unmap_memory(a, "mock0", IOVA, 2 * PG) == -ENOENT);
	CU_ASSERT(b->ops->unmap_memory(b, "mock0", IOVA, 2 * PG) == 0);
	down();
}

static void test_vfio_one_iommufd(void)
{
	struct backend_hw_info info;

	up();
	/* The mock domain takes a read-only map... */
	CU_ASSERT(a->ops->add_device(a, "mock0") == 0);
	CU_ASSERT(a->ops->map_memory(a, "mock0", IOVA, PG, -1, 0, IOMMU_IOAS_MAP_READABLE) == 0);
	CU_ASSERT(a->ops->unmap_memory(a, "mock0", 0, UINT64_MAX) == 0);
	CU_ASSERT(root->ops->hw_info(root, "vtd0", &info) == 0);
	CU_ASSERT(a->ops->add_device(a, "vtd0") == 0);
	/* The root gave its binding up, and a second bind is vfio_df_open's EINVAL. */
	CU_ASSERT(root->ops->hw_info(root, "vtd0", &info) == -ENODEV);
	CU_ASSERT(b->ops->add_device(b, "vtd0") == -EINVAL);
	CU_ASSERT(a->ops->hw_info(a, "vtd0", &info) == 0);
	/*
	 * ...but with vtd0's nest parent on the same IOAS the VT-d driver
	 * refuses it, whichever device the map names.
	 */
	CU_ASSERT(a->ops->map_memory(a, "mock0", IOVA, PG, -1, 0, IOMMU_IOAS_MAP_READABLE) ==
		  -EINVAL);
	CU_ASSERT(map(a, "mock0", PG) == 0);
	CU_ASSERT(a->ops->remove_device(a, "vtd0") == 0);
	CU_ASSERT(root->ops->hw_info(root, "vtd0", &info) == 0);
	CU_ASSERT(b->ops->add_device(b, "vtd0") == 0);
	/* Closing a context gives the device back. */
	b->ops->close(b);
	CU_ASSERT(root->ops->hw_info(root, "vtd0", &info) == 0);
	CU_ASSERT(root->ops->open_context(root, &b) == 0);
	down();
}

/* A stand-in for systemd's fd store: what stored_fds named, dup'ed. */
struct store {
	struct backend_fd fds[BACKEND_MAX_FDS];
	uint32_t n;
};

static void store_keep(struct store *st, struct backend *be)
{
	st->n = be->ops->stored_fds(be, st->fds, BACKEND_MAX_FDS);
	for (uint32_t i = 0; i < st->n; i++)
		st->fds[i].fd = dup(st->fds[i].fd);
}

static int store_take(void *ctx, const char *name)
{
	struct store *st = ctx;

	for (uint32_t i = 0; i < st->n; i++) {
		if (st->fds[i].fd >= 0 && !strcmp(st->fds[i].name, name)) {
			int fd = st->fds[i].fd;

			st->fds[i].fd = -1;
			return fd;
		}
	}
	return -1;
}

static void store_drop(struct store *st)
{
	for (uint32_t i = 0; i < st->n; i++)
		if (st->fds[i].fd >= 0)
			close(st->fds[i].fd);
	st->n = 0;
}

/*
 * The daemon dies with A holding mock0 and the borrowed vtd0, a nested
 * HWPT attached, memory in its IOAS: the root and A come back from their
 * saved states and fds, everything where it was.
 */
static void test_restart(void)
{
	struct json_object *sr = json_object_new_object(), *sa = json_object_new_object();
	struct store fr = {.n = 0}, fa = {.n = 0};
	struct backend_hw_info info;
	struct backend *gone = NULL;
	const char *err = NULL;
	uint32_t id = 0;

	up();
	CU_ASSERT(a->ops->add_device(a, "mock0") == 0);
	CU_ASSERT(a->ops->add_device(a, "vtd0") == 0);
	CU_ASSERT(alloc_st(a, "mock0", &id) == 0);
	CU_ASSERT(a->ops->attach(a, "mock0", id) == 0);
	CU_ASSERT(map(a, "mock0", 2 * PG) == 0);
	CU_ASSERT(inv_all(a, id) == 0);
	CU_ASSERT(root->ops->save(root, sr) == 0);
	CU_ASSERT(a->ops->save(a, sa) == 0);
	store_keep(&fr, root);
	store_keep(&fa, a);
	CU_ASSERT(fa.n == 1); /* A's own anchor, as it would be A's own iommufd */
	b->ops->close(b);
	a->ops->abandon(a);
	root->ops->abandon(root);

	CU_ASSERT_FATAL(backend_sim_ops.reopen(&cfg, sr, store_take, &fr, &root, &err) == 0);
	CU_ASSERT(root->ops->reopen_context(root, sr, store_take, &fa, &a, &err) == -EINVAL);
	CU_ASSERT_FATAL(root->ops->reopen_context(root, sa, store_take, &fa, &a, &err) == 0);
	CU_ASSERT(root->ops->hw_info(root, "vtd0", &info) == -ENODEV); /* still A's */
	CU_ASSERT(a->ops->hw_info(a, "vtd0", &info) == 0);
	CU_ASSERT(a->ops->has_hwpt(a, id));
	CU_ASSERT(a->ops->check_iotlb(a, id, 0, 0) == 0);
	CU_ASSERT(map(a, "vtd0", 2 * PG) == -EEXIST); /* the memory is back in the one IOAS */
	CU_ASSERT(a->ops->remove_device(a, "mock0") == -EBUSY);
	CU_ASSERT(root->ops->open_context(root, &b) == 0);
	CU_ASSERT(b->ops->add_device(b, "vtd0") == -EINVAL);
	CU_ASSERT(a->ops->remove_device(a, "vtd0") == 0);
	CU_ASSERT(root->ops->hw_info(root, "vtd0", &info) == 0);
	CU_ASSERT(b->ops->add_device(b, "vtd0") == 0);
	/* Without its anchor (the fd store lost it) a context's objects are gone. */
	fa.n = 0;
	CU_ASSERT(root->ops->reopen_context(root, sa, store_take, &fa, &gone, &err) == -ENOENT);
	store_drop(&fr);
	json_object_put(sr);
	json_object_put(sa);
	down();
}

/*
 * A context that does not come back after a restart (its saved state is
 * unusable): the root still has vtd0 lent out, as its saved state says,
 * until take_back_device binds it again on the root's own nest parent.
 */
static void test_take_back(void)
{
	struct json_object *sr = json_object_new_object();
	struct store fr = {.n = 0};
	struct backend_hw_info info;
	const char *err = NULL;

	up();
	CU_ASSERT(a->ops->add_device(a, "vtd0") == 0);
	CU_ASSERT(root->ops->save(root, sr) == 0);
	store_keep(&fr, root);
	b->ops->close(b);
	a->ops->abandon(a);
	root->ops->abandon(root);

	CU_ASSERT_FATAL(backend_sim_ops.reopen(&cfg, sr, store_take, &fr, &root, &err) == 0);
	CU_ASSERT(root->ops->hw_info(root, "vtd0", &info) == -ENODEV); /* lent to nothing */
	CU_ASSERT_FATAL(root->ops->open_context(root, &a) == 0);
	CU_ASSERT(a->ops->add_device(a, "vtd0") == -EINVAL);
	CU_ASSERT(root->ops->take_back_device(root, "vtd0") == 0);
	CU_ASSERT(root->ops->hw_info(root, "vtd0", &info) == 0);
	/* Held already: nothing to do. Mock devices are never lent. */
	CU_ASSERT(root->ops->take_back_device(root, "vtd0") == 0);
	CU_ASSERT(root->ops->take_back_device(root, "mock0") == 0);
	CU_ASSERT(root->ops->take_back_device(root, "nope") == -ENODEV);
	CU_ASSERT(a->ops->take_back_device(a, "vtd0") == -EINVAL); /* contexts lend nothing */
	/* Lent again to a new context, and given back when it closes. */
	CU_ASSERT(a->ops->add_device(a, "vtd0") == 0);
	CU_ASSERT(root->ops->hw_info(root, "vtd0", &info) == -ENODEV);
	CU_ASSERT_FATAL(root->ops->open_context(root, &b) == 0);
	store_drop(&fr);
	json_object_put(sr);
	down();
}

static const struct unit_case tests[] = {
    {"ids per context", test_ids_per_context},
    {"one IOAS per context", test_shared_ioas},
    {"a VFIO device in one iommufd at a time", test_vfio_one_iommufd},
    {"restart: root and context re-adopted", test_restart},
    {"restart: a lost context's device taken back by the root", test_take_back},
};

int main(void)
{
	return unit_run("sim_ctx", UNIT_CASES(tests));
}
