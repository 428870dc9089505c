/* SPDX-License-Identifier: MIT */
/*
 * QueueSetup: check a client's shared-memory queue against the policy and
 * map it (proto/iommu_nest_queue.h), then hand it to the loop
 * (srv->queue_attach), which consumes it from then on. sq_entries 0 closes
 * the session's queue. The table ran the session's queued batch first,
 * so nothing of an old queue is in flight here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/queue_slot.h"
#include "net/server.h"
#include "net/session.h"
#include "req/handlers.h"
#include "util/log.h"

static int close_queue(struct req_ctx *c)
{
	if (!c->s->queue) {
		reply_error(c->rep, -ENOENT, "no shared queue to close");
		return -ENOENT;
	}
	c->srv->queue_detach(c->s);
	return 0;
}

/*
 * The area must stay as large as the mapping for as long as it is mapped:
 * a client that shrank it would have the daemon fault (SIGBUS) on the next
 * read. Only a memfd sealed against shrinking promises that.
 */
static int check_area(struct req_ctx *c, int fd, uint64_t total)
{
	int seals = fcntl(fd, F_GET_SEALS);
	struct stat st;

	if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
		reply_error(c->rep, -EINVAL, "the queue must be a memfd sealed with F_SEAL_SHRINK");
		return -EINVAL;
	}
	if (fstat(fd, &st) || (uint64_t)st.st_size < total) {
		reply_error(c->rep, -EINVAL,
			    "the memfd holds less than the %llu bytes of the queue",
			    (unsigned long long)total);
		return -EINVAL;
	}
	return 0;
}

/*
 * The doorbells must be eventfds: the loop waits on the kick, and any
 * other kind (a pipe at its end, a socket) could stay readable forever
 * and spin it, or block it.
 */
static bool is_eventfd(int fd)
{
	char path[32], target[32];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return !strcmp(target, "anon_inode:[eventfd]");
}

static int map_and_attach(struct req_ctx *c, struct queue_area *a)
{
	int *fds = c->in->queue_fds;
	void *p;
	int rc;

	rc = check_area(c, fds[0], a->l.total);
	if (rc)
		return rc;
	if (!is_eventfd(fds[1]) || !is_eventfd(fds[2])) {
		reply_error(c->rep, -EINVAL, "the kick and call descriptors must be eventfds");
		return -EINVAL;
	}
	p = mmap(NULL, a->l.total, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		reply_error(c->rep, rc, "cannot map the queue: %s", strerror(-rc));
		return rc;
	}
	a->base = p;
	rc = c->srv->queue_attach(c->s, a, fds[1], fds[2]);
	if (rc) {
		munmap(p, a->l.total);
		reply_error(c->rep, rc, "cannot serve the queue");
		return rc;
	}
	/* The mapping holds the memory; the eventfds are the loop's now. */
	close(fds[0]);
	fds[0] = fds[1] = fds[2] = -1;
	log_debug("session %llu: shared queue of %llu bytes (%u/%u slots)",
		  (unsigned long long)c->s->id, (unsigned long long)a->l.total, a->l.sq_entries,
		  a->l.cq_entries);
	return 0;
}

int handle_queue_setup(struct req_ctx *c)
{
	const IommuNest__QueueSetup *m = c->msg->queue_setup;
	uint64_t max = c->srv->cfg->quota.max_queue_bytes;
	struct queue_area a;

	if (!m->sq_entries && !m->cq_entries && !m->data_bytes && c->in->queue_fds[0] < 0)
		return close_queue(c);
	if (m->layout_version != NESTQ_VERSION) {
		reply_error(c->rep, -EPROTONOSUPPORT,
			    "queue layout version %u, this daemon speaks %u: libiommu-nest and "
			    "iommu-nestd are from different releases",
			    m->layout_version, NESTQ_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (c->in->queue_fds[0] < 0) {
		reply_error(c->rep, -EINVAL,
			    "QueueSetup needs three descriptors: memfd, kick and call eventfds");
		return -EINVAL;
	}
	if (c->s->queue) {
		reply_error(c->rep, -EBUSY, "this session has a shared queue already");
		return -EBUSY;
	}
	if (!nestq_layout(&a.l, m->sq_entries, m->cq_entries, m->data_bytes)) {
		reply_error(c->rep, -EINVAL,
			    "ring sizes must be powers of two up to %u, the entry area a multiple "
			    "of 8 below 4 GiB",
			    NESTQ_MAX_ENTRIES);
		return -EINVAL;
	}
	if (max && a.l.total > max) {
		req_deny(c->s, c->rep, -EDQUOT, max,
			 "a queue of %llu bytes is over max_queue_bytes",
			 (unsigned long long)a.l.total);
		return -EDQUOT;
	}
	return map_and_attach(c, &a);
}
