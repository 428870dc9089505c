/* SPDX-License-Identifier: MIT */
/*
 * The request table: net/ hands over one decoded request, the table
 * checks what its kind needs (Hello done, admin, test mode, a descriptor,
 * a usable device, an owned HWPT) and runs the handler. Handlers fill the
 * reply and return; they never send. req_dispatch() is the one place that
 * counts request errors, and the reply goes back to net/ to be sent.
 *
 * Calls: persist, inv, state, backend, util; never net/. The one thing a
 * request may need from the loop, the queued batch run first, it asks for
 * by returning REQ_RUN_BATCH.
 */
#ifndef IOMMU_NESTD_REQ_DISPATCH_H
#define IOMMU_NESTD_REQ_DISPATCH_H

#include "iommu_nest.pb-c.h"
#include "backend/backend.h"
#include "util/config.h"

struct session;
struct server;
struct inv_request;
struct hwpt_entry;
struct device_binding;

/* Returned by the Invalidate handler instead of an errno. */
enum {
	/* Accepted: in->inv goes to this pass's batch on ctx->hwpt, answered by the flush. */
	REQ_DEFERRED = 1,
	/* in->inv failed before any submission: answer with its (not attempted) results now. */
	REQ_INV_DONE = 2,
	/* Admitted, but the queued batch must run first: run it, call req_dispatch() again. */
	REQ_RUN_BATCH = 3,
};

/* One decoded request, as net/wire.c made it from a packet. */
struct req_in {
	const IommuNest__Request *msg; /* in the decode arena */
	/* The descriptor passed with it (MapMemory only), or -1; whoever closes it sets -1. */
	int fd;
	/*
	 * Invalidate: the entries in the kernel's layout (one allocation;
	 * whoever keeps it sets NULL), or NULL with inv_err saying why:
	 * -EINVAL arrays that do not describe entries, -E2BIG over inv_max
	 * (inv_n entries), -ENOMEM.
	 */
	struct inv_request *inv;
	int inv_err;
	int64_t inv_n;
	uint32_t inv_max;
	struct hwpt_entry *inv_hwpt; /* REQ_DEFERRED: the HWPT whose batch takes inv */
	/* QueueSetup: the memfd, kick and call eventfds passed with it, or -1 (taken: -1). */
	int queue_fds[3];
	bool admitted; /* passed the session-wide gates (and was counted) */
};

/*
 * The reply and the storage of its body: it is sent after the handler
 * returned, so nothing it points to may live on the handler's stack.
 * heap[]: allocations net frees once the reply is encoded.
 */
struct req_reply {
	IommuNest__Reply rep;
	union {
		struct {
			IommuNest__HelloReply hr;
			uint32_t hwpt_types[BACKEND_MAX_TYPES], inv_types[BACKEND_MAX_TYPES];
			char *devices[CONFIG_MAX_DEVICES];
		} hello;
		IommuNest__AllocReply alloc;
		IommuNest__SimQueryReply sim_query;
		struct {
			IommuNest__ReclaimReply rr;
			char *names[CONFIG_MAX_DEVICES];
			char *claimed[CONFIG_MAX_DEVICES];
		} reclaim;
		IommuNest__StatsReply stats;
		struct {
			IommuNest__StatusReply sr;
			IommuNest__StatsReply totals;
			IommuNest__DeviceStatus devs[CONFIG_MAX_DEVICES];
			IommuNest__DeviceStatus *devp[CONFIG_MAX_DEVICES];
			IommuNest__Histogram hist[2];
			IommuNest__Histogram *histp[2];
		} status;
		IommuNest__ClientsReply clients;
		IommuNest__HwptsReply hwpts;
		struct {
			IommuNest__HwInfoReply hr;
			struct backend_hw_info info; /* hr.data points into it */
		} hw_info;
		IommuNest__OpenDeviceReply open_device;
		IommuNest__AllocViommuReply alloc_viommu;
		IommuNest__AllocVdeviceReply alloc_vdevice;
		IommuNest__DestroyObjectReply destroy_object;
		IommuNest__AllocVeventqReply alloc_veventq;
	} body;
	void *heap[4];
	/* Passed with the reply (SCM_RIGHTS) and then closed by net/, or -1. */
	int fd;
};

/* What a handler gets: the request, its reply, and what the table resolved. */
struct req_ctx {
	struct session *s;
	struct server *srv;
	struct req_in *in;
	const IommuNest__Request *msg;
	struct req_reply *out;
	IommuNest__Reply *rep;
	struct hwpt_entry *hwpt;    /* REQ_NEED_OWN_HWPT; Invalidate: its target */
	struct device_binding *dev; /* REQ_NEED_DEVICE */
};

/*
 * Routes one request of s: fills out->rep (id, status, body) and returns
 * 0, an errno already in the reply, REQ_DEFERRED, REQ_INV_DONE, or
 * REQ_RUN_BATCH (then nothing is filled yet).
 */
int req_dispatch(struct session *s, struct req_in *in, struct req_reply *out);

/* The one counter of failed requests (replies with a non-zero status). */
void req_count_error(struct server *srv, int status);

/* Entries one Invalidate may carry: max_entries, or fewer if replies would not fit. */
uint32_t invalidate_max_entries(const struct server *srv);

/*
 * An Invalidate request of s decoded from either transport, through the
 * kernel's rules: REQ_DEFERRED with the HWPT whose batch takes it in
 * *hwpt, or REQ_INV_DONE with every entry not attempted and the reason
 * in r->status. Counts its entries as received.
 */
int req_invalidate_accept(struct session *s, struct inv_request *r, struct hwpt_entry **hwpt);

/*
 * VM contexts (req/vmctx.c). req_be: the instance the session's device,
 * memory and HWPT calls go to (its context; the root when contexts are
 * off or none is open). req_claim_device: puts b into the session's
 * context (opening it on first use), else fills the reply: -EBUSY while
 * another client's context holds it. req_settle_device: after a request,
 * takes b out of the context when the session holds nothing on it any
 * more, so that another client may claim it.
 */
struct backend *req_be_of(const struct session *s);
struct backend *req_be(const struct req_ctx *c);
int req_claim_device(struct req_ctx *c, struct device_binding *b);
void req_settle_device(struct session *s, struct device_binding *b);
/*
 * The instance that has b bound now: the session's context, else the
 * context of whichever client holds it (the root lent it away and
 * answers -ENODEV for it), else the root. For what describes the host,
 * not a tenant (GetHwInfo).
 */
struct backend *req_be_holding(const struct req_ctx *c, const struct device_binding *b);

/* Root or a member of [policy] admin_groups (looked up now: reloads apply). */
bool req_is_admin(const struct session *s);

/* Fills a reply with an error: status and a human-readable reason. */
void reply_error(IommuNest__Reply *rep, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A refusal by policy or quota: logged with the peer's identity and counted. */
void req_deny(struct session *s, IommuNest__Reply *rep, int err, uint64_t limit, const char *fmt,
	      ...) __attribute__((format(printf, 5, 6)));

#endif
