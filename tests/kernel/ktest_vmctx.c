/* SPDX-License-Identifier: MIT */
/*
 * VM contexts on the real kernel (run inside the test VM, CONFIG_IOMMUFD_TEST):
 * each context of the iommufd backend is its own open of /dev/iommu, so the
 * kernel itself keeps one VM's object ids out of another's reach, and has one
 * IOAS that all of its devices translate through. Checked here with two
 * contexts A and B on the selftest mock devices:
 *   - both allocate their first nested HWPT: the kernel hands both the same
 *     numeric id, and each invalidation and destroy touches only its own;
 *   - an id only A has is the kernel's ENOENT in B (invalidate, raw destroy);
 *   - B cannot attach to A's HWPT or map into a device it does not hold;
 *   - memory mapped once through one device of A is in the nest parents of
 *     both of A's devices (IOMMU_TEST_OP_MD_CHECK_MAP against the memfd's
 *     pages), and not in B's;
 *   - a context survives its daemon: saved, its fds kept (as systemd's fd
 *     store keeps them), abandoned and re-adopted, with its HWPT, its
 *     attachment and its memory where they were.
 * TAP-like output; exit 0 when every check passed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np, memfd_create */
#endif
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/iommufd/iommufd.h"
#include "backend/iommufd_test_uapi.h"
#include "backend/iommufd_uapi.h"
#include "util/config.h"

#include "ktest_tap.h"

/* Inside the mock domain's aperture (iommufd_test.h: MOCK_APERTURE_START). */
#define IOVA (1ULL << 24)

static struct backend *b_none;

static int alloc_st(struct backend *be, const char *dev, uint32_t *id)
{
	struct iommu_hwpt_selftest data = {.iotlb = IOMMU_TEST_IOTLB_DEFAULT};
	struct backend_alloc req = {
	    .data_type = IOMMU_HWPT_DATA_SELFTEST, .data = &data, .data_len = sizeof(data)};

	return be->ops->alloc_nested(be, dev, &req, id, NULL);
}

/* Invalidates every mock IOTLB slot of hwpt; returns the errno. */
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

static int raw_destroy(struct backend *be, uint32_t id)
{
	struct iommu_destroy cmd = {.size = sizeof(cmd), .id = id};

	return ioctl(backend_iommufd_fd(be), IOMMU_DESTROY, &cmd) ? -errno : 0;
}

/* IOMMU_TEST_OP_MD_CHECK_MAP: the device's nest parent maps va's pages at IOVA. */
static int check_map(struct backend *be, const char *dev, void *va, size_t len)
{
	uint32_t parent = 0;
	struct iommu_test_cmd cmd = {.size = sizeof(cmd), .op = IOMMU_TEST_OP_MD_CHECK_MAP};
	int rc = backend_iommufd_device_ids(be, dev, NULL, &parent, NULL);

	if (rc)
		return rc;
	cmd.id = parent;
	cmd.check_map.iova = IOVA;
	cmd.check_map.length = len;
	cmd.check_map.uptr = (uintptr_t)va;
	return ioctl(backend_iommufd_fd(be), IOMMU_TEST_CMD, &cmd) ? -errno : 0;
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

static void restart_context(struct backend *root, struct backend **a, void *va, size_t len, int mfd)
{
	struct json_object *saved = json_object_new_object();
	struct store st = {.n = 0};
	const char *err = NULL;
	uint32_t id = 0;
	int rc;

	EXPECT_RC(0, (*a)->ops->add_device(*a, "mock0"), "A adds mock0 again");
	EXPECT_RC(0, alloc_st(*a, "mock0", &id), "A allocates a HWPT to keep");
	EXPECT_RC(0, (*a)->ops->attach(*a, "mock0", id), "A attaches mock0 to it");
	EXPECT_RC(0,
		  (*a)->ops->map_memory(*a, "mock1", IOVA, len, mfd, 0,
					IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE),
		  "A maps its memory again");
	EXPECT_RC(0, (*a)->ops->save(*a, saved), "save A");
	store_keep(&st, *a);
	EXPECT_EQ(1, st.n, "A keeps one fd: its iommufd (mock devices have no cdev)");
	(*a)->ops->abandon(*a);
	*a = NULL;
	rc = root->ops->reopen_context(root, saved, store_take, &st, a, &err);
	EXPECT_RC(0, rc, "A re-adopted from its saved state and fds");
	if (rc) {
		printf("# %s\n", err ? err : "?");
		json_object_put(saved);
		return;
	}
	EXPECT_RC(0, (*a)->ops->check_iotlb(*a, id, 0, IOMMU_TEST_IOTLB_DEFAULT),
		  "A's HWPT is alive, its IOTLB as it was");
	EXPECT_RC(0, check_map(*a, "mock0", va, len), "mock0's parent still maps A's memory");
	EXPECT_RC(0, check_map(*a, "mock1", va, len), "mock1's too");
	EXPECT_RC(0, inv_all(*a, id), "A invalidates after the restart");
	EXPECT_RC(0, (*a)->ops->check_iotlb(*a, id, 0, 0), "and the kernel did");
	EXPECT_RC(-EBUSY, (*a)->ops->remove_device(*a, "mock0"), "the parent is still busy");
	EXPECT_RC(0, (*a)->ops->detach(*a, "mock0"), "A detaches");
	EXPECT_RC(0, (*a)->ops->destroy(*a, id), "A destroys the HWPT");
	EXPECT_RC(0, (*a)->ops->unmap_memory(*a, "mock0", 0, UINT64_MAX), "A unmaps all");
	/* Without its iommufd there is nothing to re-adopt. */
	st.n = 0;
	EXPECT_RC(-ENOENT, root->ops->reopen_context(root, saved, store_take, &st, &b_none, &err),
		  "no iommufd in the store: ENOENT");
	json_object_put(saved);
}

static void config_two(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->backend, sizeof(cfg->backend), "iommufd");
	snprintf(cfg->iommufd_path, sizeof(cfg->iommufd_path), "/dev/iommu");
	snprintf(cfg->devices[0].name, sizeof(cfg->devices[0].name), "mock0");
	snprintf(cfg->devices[1].name, sizeof(cfg->devices[1].name), "mock1");
	cfg->devices[0].kind = cfg->devices[1].kind = DEVICE_KIND_SELFTEST;
	cfg->n_devices = 2;
}

int main(void)
{
	static struct config cfg;
	struct backend *root = NULL, *a = NULL, *b = NULL;
	const char *err = NULL;
	uint32_t ida = 0, idb = 0, ida2 = 0;
	size_t len = 2 * (size_t)sysconf(_SC_PAGESIZE);
	void *va;
	int mfd;

	config_two(&cfg);
	if (backend_iommufd_open(&cfg, &root, &err)) {
		printf("Bail out! iommufd backend: %s\n", err ? err : "?");
		return 1;
	}
	EXPECT_RC(0, root->ops->open_context(root, &a), "open context A");
	EXPECT_RC(0, root->ops->open_context(root, &b), "open context B");
	if (!a || !b)
		return 1;
	report(backend_iommufd_fd(a) != backend_iommufd_fd(b) &&
		   backend_iommufd_fd(a) != backend_iommufd_fd(root),
	       "each context is its own iommufd", NULL);
	EXPECT_RC(-EINVAL, a->ops->open_context(a, &root), "contexts do not nest");

	/* A device's ids exist in a context only once it is added there. */
	EXPECT_RC(-ENOENT, alloc_st(a, "mock0", &ida), "alloc on a device not in the context");
	EXPECT_RC(-ENODEV, a->ops->add_device(a, "nosuch"), "add an unknown device");
	EXPECT_RC(0, a->ops->add_device(a, "mock0"), "A adds mock0");
	EXPECT_RC(-EEXIST, a->ops->add_device(a, "mock0"), "A adds mock0 twice");
	EXPECT_RC(0, b->ops->add_device(b, "mock0"), "B adds its own mock0");

	/* The same steps in two iommufds: the kernel gives both the same id. */
	EXPECT_RC(0, alloc_st(a, "mock0", &ida), "A allocates a nested HWPT");
	EXPECT_RC(0, alloc_st(b, "mock0", &idb), "B allocates a nested HWPT");
	EXPECT_EQ(ida, idb, "A and B hold the same numeric HWPT id");
	EXPECT_RC(0, alloc_st(a, "mock0", &ida2), "A allocates a second nested HWPT");
	EXPECT_RC(0, a->ops->attach(a, "mock0", ida), "A attaches mock0 to its HWPT");

	/* Invalidation touches only its own context's HWPT. */
	EXPECT_RC(0, inv_all(a, ida), "A invalidates its HWPT");
	EXPECT_RC(0, a->ops->check_iotlb(a, ida, 0, 0), "A's IOTLB is cleared");
	EXPECT_RC(0, b->ops->check_iotlb(b, idb, 0, IOMMU_TEST_IOTLB_DEFAULT),
		  "B's IOTLB with the same id is untouched");

	/* An id only A has does not exist for B: the kernel's ENOENT. */
	EXPECT_RC(-ENOENT, inv_all(b, ida2), "B invalidates A's second id: ENOENT");
	EXPECT_RC(-ENOENT, raw_destroy(b, ida2), "raw IOMMU_DESTROY of A's id in B: ENOENT");
	EXPECT_RC(-ENOENT, b->ops->destroy(b, ida2), "B destroys A's id: ENOENT");
	EXPECT_RC(-ENOENT, b->ops->attach(b, "mock0", ida2), "B attaches to A's id: ENOENT");
	EXPECT_RC(0, a->ops->check_iotlb(a, ida2, 0, IOMMU_TEST_IOTLB_DEFAULT),
		  "A's second HWPT is untouched");

	/* One IOAS per context: mapped once, seen by both of A's devices. */
	EXPECT_RC(0, a->ops->add_device(a, "mock1"), "A adds mock1");
	mfd = memfd_create("vmctx", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, (off_t)len))
		return 1;
	va = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (va == MAP_FAILED)
		return 1;
	memset(va, 0x5a, len); /* the pages exist before the map pins them */
	EXPECT_RC(0,
		  a->ops->map_memory(a, "mock0", IOVA, len, mfd, 0,
				     IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE),
		  "A maps guest memory once, naming mock0");
	EXPECT_RC(0, check_map(a, "mock0", va, len), "mock0's nest parent maps it");
	EXPECT_RC(0, check_map(a, "mock1", va, len), "mock1's nest parent maps it too");
	EXPECT_RC(-EINVAL, check_map(b, "mock0", va, len), "B's nest parent does not");
	EXPECT_RC(-ENOENT,
		  b->ops->map_memory(b, "mock1", IOVA, len, mfd, 0, IOMMU_IOAS_MAP_READABLE),
		  "B maps through a device it does not hold: ENOENT");
	EXPECT_RC(-EEXIST,
		  a->ops->map_memory(a, "mock1", IOVA, len, mfd, 0, IOMMU_IOAS_MAP_READABLE),
		  "the same range through mock1 is the shared IOAS's EEXIST");

	/* Destroy touches only its own; a parent with children stays. */
	EXPECT_RC(-EBUSY, a->ops->remove_device(a, "mock0"), "remove mock0 with nested HWPTs");
	EXPECT_RC(0, a->ops->detach(a, "mock0"), "A detaches mock0");
	EXPECT_RC(0, a->ops->destroy(a, ida), "A destroys its HWPT");
	EXPECT_RC(0, b->ops->check_iotlb(b, idb, 0, IOMMU_TEST_IOTLB_DEFAULT),
		  "B's HWPT with that id is alive");
	EXPECT_RC(0, a->ops->destroy(a, ida2), "A destroys its second HWPT");
	EXPECT_RC(0, a->ops->remove_device(a, "mock0"), "A removes mock0");
	EXPECT_RC(0, check_map(a, "mock1", va, len), "mock1 still sees the memory");
	EXPECT_RC(0, a->ops->unmap_memory(a, "mock1", 0, UINT64_MAX), "A unmaps all");
	EXPECT_RC(-EINVAL, check_map(a, "mock1", va, len), "gone from mock1's parent");

	restart_context(root, &a, va, len, mfd);
	b->ops->close(b);
	if (a)
		a->ops->close(a);
	root->ops->close(root);
	munmap(va, len);
	close(mfd);
	printf("1..%d\n", n_checks);
	return n_failed ? 1 : 0;
}
