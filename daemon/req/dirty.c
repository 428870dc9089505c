/* SPDX-License-Identifier: MIT */
/*
 * Dirty tracking of a device's nest parent, for live migration:
 * SetDirtyTracking, GetDirtyBitmap, and the test-only SetDirty that plays
 * a device writing to memory. The table checked that the device is
 * configured, allowed to the caller and not held by another client: a
 * device's stage 2 is its holder's guest memory, and so are its dirty bits.
 *
 * GetDirtyBitmap's bits go into the caller's memfd, which the daemon maps
 * shared and hands to the kernel as the bitmap. A file that shrank under
 * that mapping would make the daemon's (or the kernel's) access fault, and
 * the daemon die of SIGBUS: the memfd must be sealed against shrinking
 * (F_SEAL_SHRINK), and is then checked once to be large enough.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/iommufd_uapi.h"
#include "net/server.h"
#include "net/session.h"
#include "req/handlers.h"

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_SHRINK
#define F_SEAL_SHRINK 0x0002
#endif

/*
 * The most bitmap the daemon maps for one request: 8 TiB of IOVA at 4 KiB
 * a bit. A VMM reads larger guests in pieces.
 */
#define DIRTY_BITMAP_MAX (256ULL << 20)

/* The test op's own limit (iommufd_test_dirty(): SZ_16M * BITS_PER_BYTE pages). */
#define DIRTY_TEST_MAX_PAGES (16ULL * 1024 * 1024 * 8)

bool has_set_dirty(const struct backend_ops *ops)
{
	return ops->set_dirty != NULL;
}

int handle_set_dirty_tracking(struct req_ctx *c)
{
	const IommuNest__SetDirtyTracking *m = c->msg->set_dirty_tracking;
	struct backend *be = req_be(c);
	int rc;

	rc = be->ops->set_dirty_tracking ? be->ops->set_dirty_tracking(be, m->device, m->enable)
					 : -EOPNOTSUPP;
	if (rc)
		reply_error(c->rep, rc, "IOMMU_HWPT_SET_DIRTY_TRACKING(%s) on %s: %s",
			    m->enable ? "on" : "off", m->device, strerror(-rc));
	else
		vmctx_set_tracking(&c->s->vm, (uint32_t)(c->dev - c->srv->reg.bindings), m->enable);
	return rc;
}

/*
 * The bytes the kernel writes for the range: iova_bitmap.c counts a bit
 * per 1 << __ffs(page_size) bytes, in u64 words. 0 when the range is one
 * the kernel refuses before touching the bitmap (length or page_size 0,
 * a range that wraps): the backend then answers with its errno.
 */
static uint64_t bitmap_bytes(const IommuNest__GetDirtyBitmap *m)
{
	uint64_t last;

	if (!m->length || !m->page_size || __builtin_add_overflow(m->iova, m->length - 1, &last))
		return 0;
	return (((m->length - 1) >> __builtin_ctzll(m->page_size)) / 64 + 1) * 8;
}

/* The memfd's checks: sealed against shrinking, large enough, mappable read-write. */
static int map_bitmap(int fd, uint64_t bytes, void **out, IommuNest__Reply *rep)
{
	struct stat st;
	int seals;
	void *p;

	if (fd < 0) {
		reply_error(rep, -EINVAL,
			    "GetDirtyBitmap needs exactly one descriptor (SCM_RIGHTS)");
		return -EINVAL;
	}
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
		reply_error(rep, -EINVAL, "the bitmap's memfd must be sealed with F_SEAL_SHRINK");
		return -EINVAL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < bytes) {
		reply_error(rep, -EINVAL, "the bitmap needs %llu bytes, the memfd has %lld",
			    (unsigned long long)bytes, (long long)st.st_size);
		return -EINVAL;
	}
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int rc = -errno;

		reply_error(rep, rc, "cannot map the bitmap's memfd read-write: %s", strerror(-rc));
		return rc;
	}
	*out = p;
	return 0;
}

int handle_get_dirty_bitmap(struct req_ctx *c)
{
	const IommuNest__GetDirtyBitmap *m = c->msg->get_dirty_bitmap;
	struct backend *be = req_be(c);
	struct backend_dirty bm = {
	    .iova = m->iova, .length = m->length, .page_size = m->page_size, .flags = m->flags};
	uint64_t bytes = bitmap_bytes(m);
	void *map = NULL;
	int fd = c->in->fd;
	int rc = 0;

	c->in->fd = -1; /* this handler closes it */
	if (!be->ops->get_dirty_bitmap) {
		rc = -EOPNOTSUPP;
		reply_error(c->rep, rc, "the %s backend has no dirty tracking", be->ops->name);
		goto out;
	}
	/* The kernel's first check, before the range's. */
	if (m->flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) {
		rc = -EOPNOTSUPP;
		reply_error(c->rep, rc, "flags %#x: only NO_CLEAR (%#x)", m->flags,
			    IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
		goto out;
	}
	/*
	 * 6.12's errno for an empty range; 7.x has no such check and would
	 * walk a bitmap of length - 1 bits: the daemon keeps the old rule.
	 */
	if (!m->length) {
		rc = -EINVAL;
		reply_error(c->rep, rc, "length 0");
		goto out;
	}
	/*
	 * The kernel takes any page_size and counts by its lowest bit; the
	 * daemon wants a power of two, whose bits mean what they say.
	 */
	if (m->page_size & (m->page_size - 1)) {
		rc = -EINVAL;
		reply_error(c->rep, rc, "page_size %#llx is not a power of two",
			    (unsigned long long)m->page_size);
		goto out;
	}
	if (bytes > DIRTY_BITMAP_MAX) {
		rc = -E2BIG;
		reply_error(c->rep, rc, "a bitmap of %llu bytes: at most %llu per request",
			    (unsigned long long)bytes, DIRTY_BITMAP_MAX);
		c->rep->limit = DIRTY_BITMAP_MAX;
		goto out;
	}
	if (bytes) {
		rc = map_bitmap(fd, bytes, &map, c->rep);
		if (rc)
			goto out;
		/* The kernel only sets bits: the answer is these bits alone. */
		memset(map, 0, bytes);
		bm.data = map;
	}
	rc = be->ops->get_dirty_bitmap(be, m->device, &bm);
	if (rc)
		reply_error(c->rep, rc, "IOMMU_HWPT_GET_DIRTY_BITMAP on %s: %s", m->device,
			    strerror(-rc));
out:
	if (map)
		munmap(map, bytes);
	if (fd >= 0)
		close(fd);
	return rc;
}

int handle_set_dirty(struct req_ctx *c)
{
	const IommuNest__SetDirty *m = c->msg->set_dirty;
	struct backend *be = req_be(c);
	struct backend_dirty bm = {.iova = m->iova, .length = m->length, .page_size = m->page_size};
	uint64_t pages = m->page_size ? m->length / m->page_size : 0;
	uint64_t *bits = NULL;
	int rc;

	/* The bits in full words, the missing ones clear (the kernel copies whole bytes). */
	if (pages && pages <= DIRTY_TEST_MAX_PAGES) {
		bits = calloc((pages + 63) / 64, sizeof(*bits));
		if (!bits) {
			reply_error(c->rep, -ENOMEM, "no memory for %llu pages' bits",
				    (unsigned long long)pages);
			return -ENOMEM;
		}
		/* An empty bytes field decodes with no data at all. */
		if (m->bitmap.len)
			memcpy(bits, m->bitmap.data,
			       m->bitmap.len < (pages + 7) / 8 ? m->bitmap.len : (pages + 7) / 8);
	}
	bm.data = bits;
	rc = be->ops->set_dirty(be, m->device, &bm);
	free(bits);
	if (rc)
		reply_error(c->rep, rc, "IOMMU_TEST_OP_DIRTY on %s: %s", m->device, strerror(-rc));
	return rc;
}
