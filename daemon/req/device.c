/* SPDX-License-Identifier: MIT */
/*
 * Device hand-off: OpenDevice, CloseDevice, AdoptDevice.
 *
 * A VMM needs the VFIO device itself (config space, BARs, interrupts,
 * reset), not only page tables. OpenDevice claims a configured device for
 * the session (the table checked the policy's allow rules and that nobody
 * else holds it) and passes a dup of the cdev the backend bound to its
 * iommufd back with the reply. The claim holds the device like an
 * attachment or guest memory does: nobody else may map on it, attach to
 * it or open it until CloseDevice or the session's end, which detach,
 * unmap, put the device back and reset it (state/claim.c).
 *
 * The fd is the daemon's binding: a VFIO_DEVICE_ATTACH_IOMMUFD_PT the VMM
 * issues with it names objects of the daemon's iommufd. The daemon puts
 * the device back on its own page table when it opens and when it takes
 * the device back, so such a move does not outlive the claim.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "persist/restart.h"
#include "net/server.h"
#include "net/session.h"
#include "req/handlers.h"
#include "state/claim.h"
#include "util/log.h"

static int no_device_fds(struct req_ctx *c)
{
	/*
	 * The sim models the kernel's page tables, not VFIO: a memfd or an
	 * eventfd standing for the device would answer no VFIO ioctl, so it
	 * hands out nothing rather than a fake.
	 */
	reply_error(c->rep, -EOPNOTSUPP,
		    "the %s backend has no VFIO device fds to hand over (it models no VFIO "
		    "device)",
		    c->srv->be->ops->name);
	return -EOPNOTSUPP;
}

/* The reply body both OpenDevice and AdoptDevice give. */
static void fill_reply(struct req_ctx *c, const struct backend_device *d)
{
	IommuNest__OpenDeviceReply *r = &c->out->body.open_device;

	iommu_nest__open_device_reply__init(r);
	r->dev_id = d->dev_id;
	r->parent_id = d->parent_id;
	r->ioas_id = d->ioas_id;
	r->attached_id = d->attached_id;
	r->vfio_flags = d->vfio_flags;
	r->num_regions = d->num_regions;
	r->num_irqs = d->num_irqs;
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_OPEN_DEVICE;
	c->rep->open_device = r;
}

/* Puts the device back where the daemon has it; a VMM that held it before may have moved it. */
static void put_back(struct req_ctx *c, const char *device)
{
	struct backend *be = req_be(c);
	int rc = be->ops->device_reclaim ? be->ops->device_reclaim(be, device) : 0;

	if (rc)
		log_err("device %s: putting it back on its page table: %s", device, strerror(-rc));
}

/*
 * A new claim starts on a binding nobody else holds. It has one already
 * unless a previous instance of the daemon handed it out (the claim did
 * not survive the restart; the kept fd may have): then the backend binds
 * afresh, and while that old fd is open the device serves nobody.
 */
static int take_back(struct req_ctx *c, const char *device)
{
	struct backend *be = req_be(c);
	int rc;

	if (c->dev->opener == c->s || !be->ops->device_release)
		return 0;
	rc = be->ops->device_release(be, device);
	if (rc == 0)
		return 0;
	c->dev->stale = rc == -EBUSY;
	reply_error(c->rep, rc,
		    "device %s: its VFIO binding was handed out before and cannot be taken "
		    "back: %s",
		    device,
		    rc == -EBUSY ? "a former client still keeps the fd open" : strerror(-rc));
	return rc;
}

/* The claim, with whose it is for the state file: it outlives a crash of the daemon. */
static void claim(struct req_ctx *c)
{
	c->dev->opener = c->s;
	c->dev->claim_uid = c->s->cred.uid;
	c->dev->claim_pid = c->s->cred.pid;
}

int handle_open_device(struct req_ctx *c)
{
	const char *device = c->msg->open_device->device;
	struct backend *be = req_be(c);
	struct backend_device d;
	const char *why = "";
	int rc;

	if (!be->ops->device_get)
		return no_device_fds(c);
	rc = take_back(c, device);
	if (rc)
		return rc;
	rc = be->ops->device_get(be, device, &d, &why);
	if (rc) {
		reply_error(c->rep, rc, "device %s: %s", device, why);
		return rc;
	}
	put_back(c, device); /* also the repair for a VMM that moved its device itself */
	c->out->fd = fcntl(d.fd, F_DUPFD_CLOEXEC, 3);
	if (c->out->fd < 0) {
		rc = -errno;
		reply_error(c->rep, rc, "device %s: dup of its fd: %s", device, strerror(-rc));
		return rc;
	}
	claim(c);
	log_info("session %llu opened device %s (dev_id %u)", (unsigned long long)c->s->id, device,
		 d.dev_id);
	fill_reply(c, &d);
	restart_save(c->srv->rs); /* the backend has the binding as handed out now */
	return 0;
}

int handle_adopt_device(struct req_ctx *c)
{
	const char *device = c->msg->adopt_device->device;
	struct backend *be = req_be(c);
	struct backend_device d;
	const char *why = "";
	int rc;

	if (!be->ops->device_adopt || !be->ops->device_get)
		return no_device_fds(c);
	rc = be->ops->device_adopt(be, device, c->in->fd, &why);
	if (rc == 0)
		rc = be->ops->device_get(be, device, &d, &why);
	if (rc) {
		reply_error(c->rep, rc, "device %s: %s", device, why);
		return rc;
	}
	claim(c);
	log_info("session %llu adopted a cdev of device %s (dev_id %u)",
		 (unsigned long long)c->s->id, device, d.dev_id);
	fill_reply(c, &d);
	restart_save(c->srv->rs); /* the backend has the binding as handed out now */
	return 0;
}

int handle_close_device(struct req_ctx *c)
{
	const char *device = c->msg->close_device->device;

	if (c->dev->opener != c->s) {
		reply_error(c->rep, -ENOENT, "device %s is not open by this client", device);
		return -ENOENT;
	}
	device_claim_end(&c->srv->reg, req_be(c), c->dev, c->s);
	restart_save(c->srv->rs);
	log_info("session %llu closed device %s", (unsigned long long)c->s->id, device);
	return 0;
}
