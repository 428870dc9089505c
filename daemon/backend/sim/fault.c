// SPDX-License-Identifier: MIT
/*
 * Simulator fault objects, with the kernel's rules (Linux 6.12
 * drivers/iommu/iommufd/fault.c, 7.x eventq.c; selftest.c
 * iommufd_test_trigger_iopf()): a page request on a device attached to a
 * HWPT with a fault object is queued there; reading delivers whole groups
 * and gives each the lowest free cookie from 1 (xa_alloc on an
 * XA_FLAGS_ALLOC1 xarray, so an answered cookie comes back); a response
 * needs a known cookie and code SUCCESS or INVALID (else -EINVAL); leaving
 * the HWPT answers the device's groups (auto response), so their cookies
 * are unknown from then on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend/sim/state.h"

#define SIM_NO_PASID 0 /* IOMMU_NO_PASID */

static struct sim_fault *find(struct sim_state *st, uint32_t id)
{
	for (uint32_t i = 0; i < st->n_faults; i++)
		if (st->faults[i].id == id)
			return &st->faults[i];
	return NULL;
}

int sim_fault_fd(struct sim_state *st, uint32_t id)
{
	struct sim_fault *f = find(st, id);

	return f && f->efd >= 0 ? f->efd : -ENOENT;
}

static int grow(void **arr, uint32_t *cap, uint32_t n, size_t elem)
{
	uint32_t c = *cap ? *cap * 2 : 8;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*arr, (size_t)c * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

int sim_fault_alloc(struct sim_state *st, struct backend_fault_queue *out)
{
	struct sim_fault *f;
	struct sim_obj *o;
	int efd, rc;

	if (!st->n_devs)
		return -ENODEV;
	rc = grow((void **)&st->faults, &st->cap_faults, st->n_faults, sizeof(*st->faults));
	if (rc)
		return rc;
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0)
		return -errno;
	rc = sim_obj_new(st, SIM_OBJ_FAULT, 0, &o);
	if (rc) {
		close(efd);
		return rc;
	}
	/* The fd's reference (fault.c: refcount_inc for the file). */
	o->users = 1;
	f = &st->faults[st->n_faults++];
	memset(f, 0, sizeof(*f));
	f->id = o->id;
	f->efd = efd;
	out->id = o->id;
	out->fd = efd;
	return 0;
}

/* The eventfd follows the deliver list: readable exactly while it is not empty. */
static void sync_efd(const struct sim_fault *f)
{
	uint64_t v = 1;

	if (f->efd < 0)
		return;
	if (f->n_deliver)
		(void)!write(f->efd, &v, sizeof(v));
	else
		(void)!read(f->efd, &v, sizeof(v));
}

static bool cookie_used(const struct sim_fault *f, uint32_t c)
{
	for (uint32_t i = 0; i < f->n_resp; i++)
		if (f->resp[i].cookie == c)
			return true;
	return false;
}

static uint32_t lowest_free_cookie(const struct sim_fault *f)
{
	uint32_t c = 1;

	while (cookie_used(f, c))
		c++;
	return c;
}

static void compose(const struct sim_iopf_group *g, struct iommu_hwpt_pgfault *r)
{
	memset(r, 0, sizeof(*r));
	r->flags = IOMMU_PGFAULT_FLAGS_LAST_PAGE;
	if (g->req.pasid != SIM_NO_PASID)
		r->flags |= IOMMU_PGFAULT_FLAGS_PASID_VALID;
	r->dev_id = SIM_DEV_ID_BASE + g->dev;
	r->pasid = g->req.pasid;
	r->grpid = g->req.grpid;
	r->perm = g->req.perm;
	r->addr = g->req.addr;
	r->length = 0; /* the core fills no length hint */
	r->cookie = g->cookie;
}

int sim_fault_read(struct sim_state *st, const struct backend_fault_queue *q,
		   struct iommu_hwpt_pgfault *recs, uint32_t max)
{
	struct sim_fault *f = find(st, q->id);
	uint32_t done = 0;

	if (!f || f->efd < 0)
		return -EBADF;
	while (f->n_deliver && done < max) {
		struct sim_iopf_group g = f->deliver[0];

		if (grow((void **)&f->resp, &f->cap_resp, f->n_resp, sizeof(*f->resp)))
			break; /* as xa_alloc failing: the group stays queued */
		g.cookie = lowest_free_cookie(f);
		f->resp[f->n_resp++] = g;
		compose(&g, &recs[done++]);
		memmove(&f->deliver[0], &f->deliver[1], (f->n_deliver - 1) * sizeof(g));
		f->n_deliver--;
	}
	sync_efd(f);
	/* A buffer too small for the first group is -EINVAL (fault.c read()). */
	if (!done && f->n_deliver)
		return -EINVAL;
	return (int)done;
}

int sim_fault_respond(struct sim_state *st, const struct backend_fault_queue *q,
		      const struct iommu_hwpt_page_response *resp)
{
	struct sim_fault *f = find(st, q->id);

	if (!f || f->efd < 0)
		return -EBADF;
	if (resp->code != IOMMUFD_PAGE_RESP_SUCCESS && resp->code != IOMMUFD_PAGE_RESP_INVALID)
		return -EINVAL;
	for (uint32_t i = 0; i < f->n_resp; i++)
		if (f->resp[i].cookie == resp->cookie) {
			f->resp[i] = f->resp[--f->n_resp];
			return 0;
		}
	return -EINVAL;
}

static void drop_queues(struct sim_fault *f)
{
	free(f->deliver);
	free(f->resp);
	f->deliver = f->resp = NULL;
	f->n_deliver = f->cap_deliver = f->n_resp = f->cap_resp = 0;
}

void sim_fault_forget(struct sim_state *st, uint32_t fault_id)
{
	struct sim_fault *f = find(st, fault_id);

	if (!f)
		return;
	if (f->efd >= 0)
		close(f->efd);
	drop_queues(f);
	*f = st->faults[--st->n_faults];
}

int sim_fault_free(struct sim_state *st, const struct backend_fault_queue *q)
{
	struct sim_fault *f = find(st, q->id);
	struct sim_obj *o = sim_obj_find(st, q->id);

	if (!f || !o || o->type != SIM_OBJ_FAULT)
		return -ENOENT;
	if (f->efd >= 0) {
		close(f->efd);
		f->efd = -1;
		o->users--;
	}
	/* IOMMU_DESTROY: refcount_dec_if_one() or -EBUSY (a HWPT still uses it). */
	if (o->users)
		return -EBUSY;
	sim_obj_remove(st, o);
	sim_fault_forget(st, q->id);
	return 0;
}

int sim_trigger_iopf(struct sim_state *st, const char *device, const struct backend_iopf *t)
{
	int dev = sim_dev_find(st, device);
	struct sim_obj *o;
	struct sim_fault *f;
	struct sim_iopf_group *g;

	if (dev < 0)
		return dev;
	/* selftest.c: only a mock device takes it (-EINVAL for any other). */
	if (st->devs[dev].kind != DEVICE_KIND_SELFTEST)
		return -EINVAL;
	o = sim_obj_find(st, st->devs[dev].attached_id);
	/*
	 * iommu_report_device_fault() on a domain without a fault handler
	 * answers the request itself and the op still returns 0: nothing
	 * reaches any queue.
	 */
	if (!o || o->type != SIM_OBJ_NESTED || !o->fault_id)
		return 0;
	f = find(st, o->fault_id);
	if (!f)
		return 0;
	if (grow((void **)&f->deliver, &f->cap_deliver, f->n_deliver, sizeof(*f->deliver)))
		return 0; /* the core's allocation failing: answered, dropped */
	g = &f->deliver[f->n_deliver++];
	memset(g, 0, sizeof(*g));
	g->dev = (uint32_t)dev;
	g->hwpt_id = o->id;
	g->req = *t;
	sync_efd(f);
	return 0;
}

static uint32_t drop_dev(struct sim_iopf_group *arr, uint32_t n, uint32_t dev, uint32_t hwpt_id)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++)
		if (arr[i].dev != dev || arr[i].hwpt_id != hwpt_id)
			arr[k++] = arr[i];
	return k;
}

void sim_fault_detach(struct sim_state *st, uint32_t fault_id, uint32_t dev, uint32_t hwpt_id)
{
	struct sim_fault *f = find(st, fault_id);

	if (!f)
		return;
	f->n_deliver = drop_dev(f->deliver, f->n_deliver, dev, hwpt_id);
	f->n_resp = drop_dev(f->resp, f->n_resp, dev, hwpt_id);
	sync_efd(f);
}

void sim_faults_free(struct sim_state *st)
{
	while (st->n_faults)
		sim_fault_forget(st, st->faults[0].id);
	free(st->faults);
	st->faults = NULL;
	st->cap_faults = 0;
}
