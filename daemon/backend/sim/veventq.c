// SPDX-License-Identifier: MIT
/*
 * Simulator vEVENTQs, with the 7.x kernel's rules: IOMMU_VEVENTQ_ALLOC
 * (eventq.c iommufd_veventq_alloc(): type DEFAULT -EOPNOTSUPP, depth
 * outside 1..2^19 -EINVAL, no vIOMMU -ENOENT, a second one of the type on
 * the vIOMMU -EEXIST; any other type is taken, whatever the vIOMMU's
 * driver), the driver's report (driver.c iommufd_viommu_report_event() and
 * iommufd_vevent_handler(): past depth the LOST_EVENTS header takes the
 * sequence number instead, always at the tail, and leaves when the next
 * record comes), the fd's read (iommufd_veventq_fops_read(): whole records
 * only, -EINVAL under a header or when the first record does not fit) and
 * the mock's IOMMU_TEST_OP_TRIGGER_VEVENT (selftest.c). The fd holds a
 * reference: IOMMU_DESTROY is -EBUSY until it is closed; the vEVENTQ holds
 * its vIOMMU (-EBUSY for that one). Calls table.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend/sim/state.h"

static struct sim_veventq *find(struct sim_state *st, uint32_t id)
{
	for (uint32_t i = 0; i < st->n_veventqs; i++)
		if (st->veventqs[i].id == id)
			return &st->veventqs[i];
	return NULL;
}

static struct sim_veventq *find_type(struct sim_state *st, uint32_t viommu_id, uint32_t type)
{
	for (uint32_t i = 0; i < st->n_veventqs; i++)
		if (st->veventqs[i].viommu_id == viommu_id && st->veventqs[i].type == type)
			return &st->veventqs[i];
	return NULL;
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

/* The eventfd follows the deliver list: readable exactly while it is not empty. */
static void sync_efd(const struct sim_veventq *q)
{
	uint64_t v = 1;

	if (q->efd < 0)
		return;
	if (q->n_deliver)
		(void)!write(q->efd, &v, sizeof(v));
	else
		(void)!read(q->efd, &v, sizeof(v));
}

int sim_veventq_alloc(struct sim_state *st, uint32_t viommu_id, uint32_t type, uint32_t depth,
		      uint32_t *out_id, int *out_fd)
{
	struct sim_obj *v = sim_obj_find(st, viommu_id), *o;
	struct sim_veventq *q;
	uint32_t dev;
	int efd, rc;

	if (st->rules != KERNEL_RULES_7)
		return -ENOTTY;
	if (type == NESTD_VEVENTQ_TYPE_DEFAULT)
		return -EOPNOTSUPP;
	if (!depth || depth > NESTD_VEVENTQ_MAX_DEPTH)
		return -EINVAL;
	if (!v || v->type != SIM_OBJ_VIOMMU)
		return -ENOENT; /* iommufd_get_viommu(): the wrong kind is not found either */
	if (find_type(st, viommu_id, type))
		return -EEXIST;
	dev = v->dev;
	rc = grow((void **)&st->veventqs, &st->cap_veventqs, st->n_veventqs, sizeof(*st->veventqs));
	if (rc)
		return rc;
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0)
		return -errno;
	rc = sim_obj_new(st, SIM_OBJ_VEVENTQ, dev, &o);
	if (rc) {
		close(efd);
		return rc;
	}
	o->parent_id = viommu_id;
	o->users = 1; /* the fd's reference (iommufd_eventq_init()) */
	*out_id = o->id;
	sim_obj_find(st, viommu_id)->users++; /* o may have moved v */
	q = &st->veventqs[st->n_veventqs++];
	memset(q, 0, sizeof(*q));
	q->id = *out_id;
	q->viommu_id = viommu_id;
	q->type = type;
	q->depth = depth;
	q->efd = efd;
	*out_fd = efd;
	return 0;
}

/* iommufd_vevent_handler(): a LOST_EVENTS header at the tail leaves, rec goes last. */
static void handler(struct sim_veventq *q, struct sim_vevent *rec)
{
	if (q->n_deliver &&
	    (q->deliver[q->n_deliver - 1].hdr.flags & NESTD_VEVENTQ_FLAG_LOST_EVENTS))
		q->n_deliver--;
	rec->hdr.sequence = q->sequence;
	q->sequence = (q->sequence + 1) & NESTD_VEVENT_SEQUENCE_MASK;
	q->deliver[q->n_deliver++] = *rec;
	sync_efd(q);
}

int sim_veventq_report(struct sim_state *st, uint32_t viommu_id, uint32_t type, const void *data,
		       uint32_t data_len)
{
	struct sim_veventq *q = find_type(st, viommu_id, type);
	struct sim_vevent rec = {.hdr.flags = NESTD_VEVENTQ_FLAG_LOST_EVENTS};

	if (!data_len || data_len > NESTD_VEVENT_DATA_MAX)
		return -EINVAL;
	if (!q)
		return -EOPNOTSUPP;
	/* The model's own allocation failing (the kernel would queue its LOST_EVENTS header). */
	if (grow((void **)&q->deliver, &q->cap_deliver, q->n_deliver, sizeof(*q->deliver)))
		return -ENOMEM;
	if (q->num_events < q->depth) {
		rec.hdr.flags = 0;
		rec.data_len = data_len;
		memcpy(rec.data, data, data_len);
		q->num_events++;
	}
	handler(q, &rec);
	return 0;
}

int sim_veventq_read(struct sim_state *st, uint32_t id, void *buf, uint32_t len)
{
	struct sim_veventq *q = find(st, id);
	const size_t hsz = sizeof(struct nestd_vevent_header);
	uint8_t *out = buf;
	uint32_t done = 0, k = 0;
	int rc = 0;

	if (!q || q->efd < 0)
		return -EBADF;
	if (len < hsz)
		return -EINVAL; /* minimum read count is a header */
	for (; k < q->n_deliver; k++) {
		const struct sim_vevent *r = &q->deliver[k];

		if (done >= len || hsz > len - done)
			break;
		if (!(r->hdr.flags & NESTD_VEVENTQ_FLAG_LOST_EVENTS) &&
		    hsz + r->data_len > len - done) {
			if (!done)
				rc = -EINVAL; /* the count does not fit a single record */
			break;
		}
		memcpy(out + done, &r->hdr, hsz);
		if (r->data_len)
			memcpy(out + done + hsz, r->data, r->data_len);
		done += (uint32_t)hsz + r->data_len;
		if (!(r->hdr.flags & NESTD_VEVENTQ_FLAG_LOST_EVENTS))
			q->num_events--;
	}
	/* Nothing to move (and deliver may still be NULL) when nothing was read. */
	if (k)
		memmove(q->deliver, q->deliver + k, (q->n_deliver - k) * sizeof(*q->deliver));
	q->n_deliver -= k;
	sync_efd(q);
	return done ? (int)done : rc;
}

int sim_veventq_close(struct sim_state *st, uint32_t id)
{
	struct sim_veventq *q = find(st, id);
	struct sim_obj *o = sim_obj_find(st, id);

	if (!q || !o || o->type != SIM_OBJ_VEVENTQ || q->efd < 0)
		return -EBADF;
	close(q->efd);
	q->efd = -1;
	o->users--; /* iommufd_eventq_fops_release() */
	return 0;
}

int sim_trigger_vevent(struct sim_state *st, const char *device)
{
	int dev = sim_dev_find(st, device);
	struct nestd_vevent_selftest ev;
	const struct sim_obj *hwpt, *vd;
	uint32_t viommu_id;

	if (dev < 0)
		return dev;
	/* Only a mock device has the op's state (to_mock_dev()). */
	if (st->devs[dev].kind != DEVICE_KIND_SELFTEST)
		return -EINVAL;
	/*
	 * mdev->viommu and vdev_id: set when the device attached to a nested
	 * domain on a vIOMMU, through its vDEVICE there (mock_domain_nop_attach()).
	 */
	hwpt = sim_obj_find(st, st->devs[dev].attached_id);
	if (!hwpt || hwpt->type != SIM_OBJ_NESTED)
		return -ENOENT;
	viommu_id = hwpt->parent_id;
	if (sim_obj_find(st, viommu_id)->type != SIM_OBJ_VIOMMU)
		return -ENOENT;
	vd = st->devs[dev].vdev_id ? sim_obj_find(st, st->devs[dev].vdev_id) : NULL;
	/* vdev_id 0 reads as "none" there (!mdev->vdev_id). */
	if (!vd || vd->parent_id != viommu_id || !vd->virt_id)
		return -ENOENT;
	ev.virt_id = (uint32_t)vd->virt_id;
	return sim_veventq_report(st, viommu_id, NESTD_VEVENTQ_TYPE_SELFTEST, &ev, sizeof(ev));
}

int sim_veventq_fd(struct sim_state *st, uint32_t id)
{
	struct sim_veventq *q = find(st, id);

	return q && q->efd >= 0 ? q->efd : -ENOENT;
}

void sim_veventq_forget(struct sim_state *st, uint32_t id)
{
	struct sim_veventq *q = find(st, id);

	if (!q)
		return;
	if (q->efd >= 0)
		close(q->efd);
	free(q->deliver);
	*q = st->veventqs[--st->n_veventqs];
}

void sim_veventqs_free(struct sim_state *st)
{
	while (st->n_veventqs)
		sim_veventq_forget(st, st->veventqs[0].id);
	free(st->veventqs);
	st->veventqs = NULL;
	st->cap_veventqs = 0;
}
