/* SPDX-License-Identifier: MIT */
/*
 * Guest memory for stage 2: MapMemory and UnmapMemory. A client hands over
 * its guest RAM as a memfd (SCM_RIGHTS) and the IOVA range it covers; the
 * backend maps it into the device's own IOAS, which the device's nest
 * parent translates through. Without it the nest parent is empty and a
 * nested HWPT translates to nothing.
 *
 * Ownership: a device's stage 2 serves one client at a time. The client
 * that first maps memory on a device, or attaches one of its HWPTs to it,
 * holds it until it has neither (everything unmapped and detached) or goes
 * away; meanwhile nobody else may map on it or attach to it (-EBUSY).
 * Otherwise a device a client B drives could reach client A's memory, or
 * A's guest tables could point into B's.
 *
 * The daemon mirrors the kernel's areas per device (struct device_binding)
 * so that it can refuse what would fail before anything is pinned, count
 * the quota, undo a session's mappings and persist them for a restart.
 * The table resolved the device (and, for MapMemory, that exactly one
 * descriptor came with the packet: in->fd) already.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/iommufd_uapi.h"
#include "util/log.h"
#include "persist/restart.h"
#include "net/server.h"
#include "net/session.h"
#include "req/handlers.h"

#define MEM_PAGE_SIZE 4096ULL
/*
 * Areas per device. The kernel has no such limit, but every area costs
 * the daemon memory and a line in the state file; a VMM maps a handful of
 * RAM slots.
 */
#define MEM_MAX_MAPS_PER_DEVICE 4096

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_WRITE
#define F_SEAL_WRITE 0x0008
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

/* The request's own rules, in the kernel's order where it has them (ioas.c:208). */
static int map_args_check(const IommuNest__MapMemory *m, IommuNest__Reply *rep)
{
	uint64_t last, end;

	if (m->flags & ~IOAS_MAP_ACCESS) {
		reply_error(rep, -EOPNOTSUPP, "flags %#x: only READABLE (%#x) and WRITEABLE (%#x)",
			    m->flags, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE);
		return -EOPNOTSUPP;
	}
	if (!(m->flags & IOAS_MAP_ACCESS)) {
		reply_error(rep, -EINVAL, "flags: neither READABLE nor WRITEABLE");
		return -EINVAL;
	}
	if (!m->length || ((m->iova | m->length | m->offset) & (MEM_PAGE_SIZE - 1))) {
		reply_error(rep, -EINVAL,
			    "iova, length and offset must be page aligned, length > 0");
		return -EINVAL;
	}
	if (__builtin_add_overflow(m->iova, m->length - 1, &last) ||
	    __builtin_add_overflow(m->offset, m->length, &end) || end > (uint64_t)INT64_MAX) {
		reply_error(rep, -EOVERFLOW, "iova or offset + length overflows");
		return -EOVERFLOW;
	}
	return 0;
}

/*
 * The descriptor must be something the kernel can pin pages of: a memfd
 * or a regular file covering [offset, offset + length), opened for the
 * access asked for (a WRITEABLE mapping of a read-only descriptor would
 * let the client write what it may only read). mmap(2) would say the
 * same on the iommufd backend; checking here gives the sim the same
 * answers.
 */
static int fd_check(int fd, const IommuNest__MapMemory *m, IommuNest__Reply *rep)
{
	int mode = fcntl(fd, F_GETFL), seals;
	struct stat st;

	/*
	 * O_PATH: fcntl and fstat work, but the file may not be read or
	 * mapped; mmap (iommufd backend) says EBADF, so the sim must too.
	 */
	if (mode < 0 || (mode & O_PATH) || fstat(fd, &st) < 0) {
		reply_error(rep, -EBADF, "the passed descriptor is unusable (closed or O_PATH)");
		return -EBADF;
	}
	if (!S_ISREG(st.st_mode)) {
		reply_error(rep, -EINVAL, "the passed descriptor is not a memfd or regular file");
		return -EINVAL;
	}
	if ((uint64_t)st.st_size < m->offset + m->length) {
		reply_error(rep, -EINVAL, "the file (%lld bytes) ends before offset + length",
			    (long long)st.st_size);
		return -EINVAL;
	}
	mode &= O_ACCMODE;
	if (mode == O_WRONLY || ((m->flags & IOMMU_IOAS_MAP_WRITEABLE) && mode != O_RDWR)) {
		reply_error(rep, -EACCES, "the descriptor is not open for the access asked for");
		return -EACCES;
	}
	/* A write-sealed memfd refuses a shared writable mmap (mm/memfd.c). */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals > 0 && (m->flags & IOMMU_IOAS_MAP_WRITEABLE) &&
	    (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))) {
		reply_error(rep, -EPERM, "the memfd is sealed against writing");
		return -EPERM;
	}
	return 0;
}

static int map_limits(struct session *s, struct device_binding *b, uint64_t length,
		      IommuNest__Reply *rep)
{
	uint64_t max = s->srv->cfg->max_mapped_bytes;
	uint64_t used = hwpt_registry_mapped_bytes(&s->srv->reg, s);

	if (length > max || used > max - length) {
		req_deny(s, rep, -EDQUOT, max,
			 "mapped guest memory quota of %llu bytes reached (%llu mapped)",
			 (unsigned long long)max, (unsigned long long)used);
		return -EDQUOT;
	}
	if (b->n_maps >= MEM_MAX_MAPS_PER_DEVICE) {
		req_deny(s, rep, -ENOSPC, MEM_MAX_MAPS_PER_DEVICE,
			 "%u mappings on device %s already", MEM_MAX_MAPS_PER_DEVICE, b->dev->name);
		return -ENOSPC;
	}
	return 0;
}

static const struct device_binding *shared_ioas_overlap(const struct session *s,
							const struct device_binding *b,
							uint64_t iova, uint64_t last);

/* Everything but the backend call; 0 when the mapping may go ahead. */
static int map_check(struct session *s, const IommuNest__MapMemory *m, int fd,
		     struct device_binding *b, IommuNest__Reply *rep)
{
	int rc;

	rc = map_args_check(m, rep);
	if (!rc)
		rc = fd_check(fd, m, rep);
	if (rc)
		return rc;
	if (binding_map_overlaps(b, m->iova, m->iova + m->length - 1) ||
	    shared_ioas_overlap(s, b, m->iova, m->iova + m->length - 1)) {
		reply_error(rep, -EEXIST, "[%#llx, +%#llx) overlaps a mapping on %s",
			    (unsigned long long)m->iova, (unsigned long long)m->length, m->device);
		return -EEXIST;
	}
	return map_limits(s, b, m->length, rep);
}

int handle_map_memory(struct req_ctx *c)
{
	const IommuNest__MapMemory *m = c->msg->map_memory;
	struct server *srv = c->srv;
	struct session *s = c->s;
	IommuNest__Reply *rep = c->rep;
	struct device_binding *b = c->dev;
	int fd = c->in->fd;
	int rc;

	c->in->fd = -1; /* this handler closes it */
	rc = map_check(s, m, fd, b, rep);
	if (!rc) {
		struct backend *be = req_be(c);

		rc = be->ops->map_memory ? be->ops->map_memory(be, m->device, m->iova, m->length,
							       fd, m->offset, m->flags)
					 : -EOPNOTSUPP;
		if (rc)
			reply_error(rep, rc, "IOMMU_IOAS_MAP on %s: %s", m->device, strerror(-rc));
	}
	/* The kernel holds the pages now; the descriptor has done its job. */
	close(fd);
	if (rc)
		return rep->status;
	rc = binding_map_add(b, m->iova, m->iova + m->length - 1);
	if (rc) {
		/* Untracked memory must not stay mapped: nobody could unmap it. */
		req_be(c)->ops->unmap_memory(req_be(c), m->device, m->iova, m->length);
		reply_error(rep, rc, "cannot track the mapping: %s", strerror(-rc));
		return rep->status;
	}
	b->mem_owner = s;
	b->mem_uid = s->cred.uid;
	log_info("session %llu (pid %d uid %u): mapped [%#llx, +%#llx) on %s",
		 (unsigned long long)s->id, (int)s->cred.pid, (unsigned)s->cred.uid,
		 (unsigned long long)m->iova, (unsigned long long)m->length, m->device);
	restart_save(srv->rs);
	return rep->status;
}

/*
 * IOMMU_IOAS_UNMAP's range rules (ioas.c:307-323, io_pagetable.c:761):
 * iova 0 with length UINT64_MAX is everything, else the range must not
 * wrap and length must not be 0. *last gets the range's last byte.
 */
static int unmap_args_check(uint64_t iova, uint64_t length, uint64_t *last)
{
	if (iova == 0 && length == UINT64_MAX) {
		*last = UINT64_MAX;
		return 0;
	}
	if (iova >= UINT64_MAX || length >= UINT64_MAX)
		return -EOVERFLOW;
	if (!length)
		return -EINVAL;
	if (__builtin_add_overflow(iova, length - 1, last))
		return -EOVERFLOW;
	return 0;
}

/*
 * Which of s's areas on b go. The kernel unmaps the areas inside the
 * range in IOVA order and stops at the first one that sticks out, leaving
 * the earlier ones unmapped; the daemon refuses such a request whole
 * (same -ENOENT, nothing unmapped), so that its records never have to
 * guess what the kernel did. Another client's memory reads as not mapped.
 */
static int unmap_span(struct session *s, struct device_binding *b, uint64_t iova, uint64_t last,
		      uint32_t *first, uint32_t *count)
{
	if (!b->n_maps && iova == 0 && last == UINT64_MAX) {
		*first = *count = 0;
		return 0; /* iopt_unmap_all() of an empty IOAS succeeds */
	}
	if (b->mem_owner != s)
		return -ENOENT;
	return binding_map_span(b, iova, last, first, count);
}

/*
 * Another device of s's VM context with s's memory in [iova, last]: the
 * context has one IOAS, so a mapping made through one device is every
 * device's, and an IOMMU_IOAS_UNMAP through b would remove it too.
 */
static const struct device_binding *shared_ioas_overlap(const struct session *s,
							const struct device_binding *b,
							uint64_t iova, uint64_t last)
{
	const struct hwpt_registry *reg = &s->srv->reg;

	if (!s->vm.be)
		return NULL;
	for (uint32_t i = 0; i < reg->n_bindings; i++) {
		const struct device_binding *o = &reg->bindings[i];

		if (o != b && o->mem_owner == s && vmctx_has(&s->vm, i) &&
		    binding_map_overlaps(o, iova, last))
			return o;
	}
	return NULL;
}

int handle_unmap_memory(struct req_ctx *c)
{
	const IommuNest__UnmapMemory *u = c->msg->unmap_memory;
	struct server *srv = c->srv;
	struct session *s = c->s;
	IommuNest__Reply *rep = c->rep;
	struct device_binding *b = c->dev;
	const struct device_binding *other;
	uint32_t first, count;
	uint64_t last;
	int rc;

	rc = unmap_args_check(u->iova, u->length, &last);
	if (rc) {
		reply_error(rep, rc, "bad range [%#llx, +%#llx)", (unsigned long long)u->iova,
			    (unsigned long long)u->length);
		return rep->status;
	}
	rc = unmap_span(s, b, u->iova, last, &first, &count);
	if (rc) {
		reply_error(rep, rc, "[%#llx, +%#llx) on %s: no mapping of yours lies inside",
			    (unsigned long long)u->iova, (unsigned long long)u->length, u->device);
		return rep->status;
	}
	other = shared_ioas_overlap(s, b, u->iova, last);
	if (other) {
		/* One IOAS: the kernel would unmap those too, behind their records. */
		reply_error(rep, -EBUSY,
			    "[%#llx, +%#llx) also holds memory mapped through %s (the VM context's "
			    "one IOAS): unmap that through %s",
			    (unsigned long long)u->iova, (unsigned long long)u->length,
			    other->dev->name, other->dev->name);
		return rep->status;
	}
	if (!count)
		return rep->status;
	rc = req_be(c)->ops->unmap_memory(req_be(c), u->device, u->iova, u->length);
	if (rc) {
		/* Records and kernel disagree: keep the records, say what happened. */
		log_event(LOG_ERR, LOG_EV_BACKEND_ERROR,
			  LOG_FIELDS(LF_UINT("session", s->id), LF_STR("op", "unmap"),
				     LF_STR("device", u->device), LF_HEX("iova", u->iova),
				     LF_HEX("length", u->length), LF_INT("error", rc)),
			  "IOMMU_IOAS_UNMAP: %s", strerror(-rc));
		reply_error(rep, rc, "IOMMU_IOAS_UNMAP on %s: %s", u->device, strerror(-rc));
		return rep->status;
	}
	binding_map_remove(b, first, count);
	restart_save(srv->rs);
	return rep->status;
}
