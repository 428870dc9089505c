/* SPDX-License-Identifier: MIT */
/*
 * systemd's side of a restart: the descriptors $LISTEN_FDS passes (by
 * $LISTEN_FDNAMES name: the listening socket and the fd store's entries),
 * and the fd store itself (FDSTORE=1 / FDSTOREREMOVE=1). Its own file
 * because it is all sd_notify protocol and knows nothing of the state
 * file or the registry.
 */
#include "persist/fdstore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "state/faults.h"
#include "state/registry.h"
#include "state/vmctx.h"
#include "util/log.h"
#include "util/common.h"

/* A VM context's descriptor: "ctx.<no>." and the context's own name for it. */
static bool is_ctx_name(const char *name)
{
	return !strncmp(name, "ctx.", 4);
}

/* A fault queue's: "fault.<no>" (persist/faults.c). */
static bool is_fault_name(const char *name)
{
	return !strncmp(name, "fault.", 6);
}

/* A vEVENTQ's: "veventq.<no>" (persist/veventqs.c). */
static bool is_veventq_name(const char *name)
{
	return !strncmp(name, "veventq.", 8);
}

/*
 * Names the daemon gives its fd store entries (FDNAME=): the backends'.
 * Anything else systemd passes is a socket unit's (FileDescriptorName=,
 * by default the unit's name).
 */
static bool is_store_name(const char *name)
{
	return !strcmp(name, "iommufd") || !strcmp(name, "sim") || !strncmp(name, "vfio.", 5) ||
	       is_ctx_name(name) || is_fault_name(name) || is_veventq_name(name);
}

/* systemd's fdname_is_valid(): printable ASCII but ':', at most 255. */
static bool fdname_ok(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > 255)
		return false;
	for (const char *c = name; *c; c++)
		if (*c <= ' ' || *c >= 0x7f || *c == ':')
			return false;
	return true;
}

int fdstore_collect(struct restart *rs)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);

	if (n <= 0) {
		free(names);
		return 0;
	}
	rs->in = calloc((size_t)n, sizeof(*rs->in));
	for (int i = 0; i < n; i++) {
		if (rs->in) {
			rs->in[i].fd = SD_LISTEN_FDS_START + i;
			snprintf(rs->in[i].name, sizeof(rs->in[i].name), "%s",
				 names && names[i] ? names[i] : "unknown");
		}
		if (names)
			free(names[i]);
	}
	free(names);
	if (!rs->in)
		return -ENOMEM;
	rs->n_in = (uint32_t)n;
	for (uint32_t i = 0; i < rs->n_in; i++)
		log_debug("inherited fd %d \"%s\"", rs->in[i].fd, rs->in[i].name);
	return 0;
}

int fdstore_take(void *ctx, const char *name)
{
	struct restart *rs = ctx;

	for (uint32_t i = 0; i < rs->n_in; i++)
		if (!rs->in[i].taken && !strcmp(rs->in[i].name, name)) {
			rs->in[i].taken = true;
			log_info("took \"%s\" (fd %d) from the fd store", name, rs->in[i].fd);
			return rs->in[i].fd;
		}
	return -1;
}

int restart_take_socket(struct restart *rs, int *fd)
{
	int found = -1, count = 0;

	for (uint32_t i = 0; i < rs->n_in; i++) {
		if (rs->in[i].taken || is_store_name(rs->in[i].name))
			continue;
		count++;
		found = (int)i;
	}
	if (!count)
		return -ENOENT;
	if (count > 1) {
		log_err("expected one socket from systemd, got %d", count);
		return -EINVAL;
	}
	if (sd_is_socket(rs->in[found].fd, AF_UNIX, SOCK_SEQPACKET, 1) <= 0) {
		log_err("the socket from systemd is not a listening SOCK_SEQPACKET socket");
		return -EINVAL;
	}
	rs->in[found].taken = true;
	*fd = rs->in[found].fd;
	return 0;
}

static void store_remove(const char *name)
{
	sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", name);
}

static void remember_stored(struct restart *rs, const struct backend_fd *f)
{
	for (uint32_t i = 0; i < rs->n_stored; i++)
		if (!strcmp(rs->stored[i], f->name))
			return;
	if (rs->n_stored < BACKEND_MAX_FDS)
		memcpy(rs->stored[rs->n_stored++], f->name, sizeof(f->name));
}

/*
 * Inherited store entries the backend did not adopt are stale: closed here
 * and dropped from the store. FDSTOREREMOVE drops every entry of a name,
 * so namesakes of a stale one are marked removed too.
 */
static void drop_stale(struct restart *rs, const char *name)
{
	bool dropped = false;

	for (uint32_t i = 0; i < rs->n_in; i++) {
		struct inherited_fd *in = &rs->in[i];

		if (strcmp(in->name, name) || in->removed)
			continue;
		if (!in->taken) {
			close(in->fd);
			in->taken = true;
			dropped = true;
		} else if (!rs->restored) {
			dropped = true; /* the backend closed it: not restored */
		}
	}
	if (!dropped)
		return;
	for (uint32_t i = 0; i < rs->n_in; i++)
		if (!strcmp(rs->in[i].name, name))
			rs->in[i].removed = true;
	store_remove(name);
}

/* Whether the backend's descriptor called name is the store's own. */
static bool adopted(const struct restart *rs, const char *name)
{
	if (!rs->restored)
		return false;
	for (uint32_t i = 0; i < rs->n_in; i++)
		if (!strcmp(rs->in[i].name, name) && rs->in[i].taken && !rs->in[i].removed)
			return true;
	return false;
}

static void store_add(const struct backend_fd *f)
{
	char msg[sizeof(f->name) + 300];
	int fd = f->fd, rc;

	/* FDPOLL=0: a chardev or memfd never signals an error worth dropping it. */
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", f->name);
	rc = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
	if (rc < 0)
		log_warn("cannot put \"%s\" in the fd store: %s", f->name, strerror(-rc));
	else if (rc > 0)
		log_info("put \"%s\" (fd %d) in the fd store", f->name, fd);
}

void fdstore_sync(struct restart *rs, struct backend *be)
{
	struct backend_fd fds[BACKEND_MAX_FDS];
	uint32_t n = 0;

	rs->n_root_fds = 0;
	/* The contexts' are taken later, when recovery reopens them (fdstore_drop_stale_ctx). */
	for (uint32_t i = 0; i < rs->n_in; i++)
		if (is_store_name(rs->in[i].name) && !is_ctx_name(rs->in[i].name) &&
		    !is_fault_name(rs->in[i].name) && !is_veventq_name(rs->in[i].name))
			drop_stale(rs, rs->in[i].name);
	/* Without a state file a stored fd could not be used again. */
	if (!rs->enabled || !be->ops->stored_fds)
		return;
	n = be->ops->stored_fds(be, fds, BACKEND_MAX_FDS);
	for (uint32_t i = 0; i < n; i++) {
		if (!fdname_ok(fds[i].name)) {
			log_warn("cannot keep \"%s\" in the fd store: not a valid FDNAME",
				 fds[i].name);
			continue;
		}
		remember_stored(rs, &fds[i]);
		if (!adopted(rs, fds[i].name))
			store_add(&fds[i]);
		rs->root_fds[rs->n_root_fds++] = fds[i];
	}
}

static bool fd_known(const struct backend_fd *set, uint32_t n, const struct backend_fd *f)
{
	for (uint32_t i = 0; i < n; i++)
		if (set[i].fd == f->fd && set[i].gen == f->gen && !strcmp(set[i].name, f->name))
			return true;
	return false;
}

void fdstore_resync(struct restart *rs)
{
	struct backend_fd cur[BACKEND_MAX_FDS];
	uint32_t n, keep = 0;

	if (!rs->enabled || !rs->be || !rs->be->ops->stored_fds)
		return;
	n = rs->be->ops->stored_fds(rs->be, cur, BACKEND_MAX_FDS);
	/* Out first: FDSTOREREMOVE drops every entry of the name, the new file goes in after. */
	for (uint32_t i = 0; i < rs->n_root_fds; i++) {
		if (fd_known(cur, n, &rs->root_fds[i]))
			rs->root_fds[keep++] = rs->root_fds[i];
		else
			store_remove(rs->root_fds[i].name);
	}
	rs->n_root_fds = keep;
	for (uint32_t i = 0; i < n; i++) {
		if (fd_known(rs->root_fds, rs->n_root_fds, &cur[i]) || !fdname_ok(cur[i].name) ||
		    rs->n_root_fds >= BACKEND_MAX_FDS)
			continue;
		remember_stored(rs, &cur[i]);
		store_add(&cur[i]);
		rs->root_fds[rs->n_root_fds++] = cur[i];
	}
}

int fdstore_take_ctx(void *arg, const char *name)
{
	const struct fdstore_ctx_take *t = arg;
	char full[BACKEND_FD_NAME_MAX];

	if ((size_t)snprintf(full, sizeof(full), "ctx.%u.%s", t->no, name) >= sizeof(full))
		return -1;
	return fdstore_take(t->rs, full);
}

void fdstore_drop_stale_ctx(struct restart *rs)
{
	for (uint32_t i = 0; i < rs->n_in; i++)
		if (is_ctx_name(rs->in[i].name))
			drop_stale(rs, rs->in[i].name);
}

/* The context's descriptors under their store names; how many (at most max). */
static uint32_t ctx_fds_of(const struct vm_ctx *v, struct backend_fd *out, uint32_t max)
{
	struct backend_fd own[BACKEND_MAX_FDS];
	uint32_t n = 0, k;

	if (!v->be->ops->stored_fds)
		return 0;
	k = v->be->ops->stored_fds(v->be, own, BACKEND_MAX_FDS);
	for (uint32_t i = 0; i < k && n < max; i++) {
		if ((size_t)snprintf(out[n].name, sizeof(out[n].name), "ctx.%u.%s", v->no,
				     own[i].name) >= sizeof(out[n].name))
			continue;
		out[n].gen = own[i].gen;
		out[n++].fd = own[i].fd;
	}
	return n;
}

static int ctx_fd_add(struct restart *rs, const struct backend_fd *f)
{
	struct backend_fd *n =
	    array_room(rs->ctx_fds, rs->n_ctx_fds, &rs->cap_ctx_fds, sizeof(*n), 16);

	if (!n)
		return -ENOMEM;
	rs->ctx_fds = n;
	rs->ctx_fds[rs->n_ctx_fds++] = *f;
	return 0;
}

void fdstore_adopt_ctx(struct restart *rs, const struct vm_ctx *v)
{
	struct backend_fd fds[BACKEND_MAX_FDS];
	uint32_t n = ctx_fds_of(v, fds, BACKEND_MAX_FDS);

	/* Taken from the store, so there already; a failure to record re-adds it at the next sync.
	 */
	for (uint32_t i = 0; i < n; i++)
		(void)ctx_fd_add(rs, &fds[i]);
}

void fdstore_sync_ctx(struct restart *rs, const struct vm_ctx_list *list)
{
	struct backend_fd *cur = NULL;
	uint32_t n = 0, cap = 0, keep = 0;

	if (!rs->enabled)
		return;
	for (const struct vm_ctx *v = list->head; v; v = v->next) {
		if (n + BACKEND_MAX_FDS > cap) {
			struct backend_fd *c =
			    realloc(cur, (cap = n + 2 * BACKEND_MAX_FDS) * sizeof(*c));

			if (!c) {
				free(cur);
				log_warn("fd store: out of memory, the VM contexts' entries stay "
					 "as they are");
				return;
			}
			cur = c;
		}
		n += ctx_fds_of(v, cur + n, BACKEND_MAX_FDS);
	}
	/*
	 * Gone first (a closed context, a device that left one): the store's
	 * copy would keep the object, and a VFIO device's binding, alive.
	 */
	for (uint32_t i = 0; i < rs->n_ctx_fds; i++) {
		if (fd_known(cur, n, &rs->ctx_fds[i]))
			rs->ctx_fds[keep++] = rs->ctx_fds[i];
		else
			store_remove(rs->ctx_fds[i].name);
	}
	rs->n_ctx_fds = keep;
	for (uint32_t i = 0; i < n; i++) {
		if (fd_known(rs->ctx_fds, rs->n_ctx_fds, &cur[i]))
			continue;
		if (!fdname_ok(cur[i].name)) {
			log_warn("cannot keep \"%s\" in the fd store: not a valid FDNAME",
				 cur[i].name);
			continue;
		}
		if (ctx_fd_add(rs, &cur[i]))
			break; /* unrecorded: tried again at the next sync */
		store_add(&cur[i]);
	}
	free(cur);
}

static int set_add(struct backend_fd **set, uint32_t *n, uint32_t *cap, const struct backend_fd *f)
{
	struct backend_fd *nf = array_room(*set, *n, cap, sizeof(*nf), 16);

	if (!nf)
		return -ENOMEM;
	*set = nf;
	(*set)[(*n)++] = *f;
	return 0;
}

void fdstore_adopt_fault(struct restart *rs, const char *name, int fd)
{
	struct backend_fd f = {.fd = fd};

	snprintf(f.name, sizeof(f.name), "%s", name);
	/* A failure to record re-adds it at the next sync. */
	(void)set_add(&rs->fault_fds, &rs->n_fault_fds, &rs->cap_fault_fds, &f);
}

void fdstore_drop_taken(struct restart *rs, const char *name)
{
	for (uint32_t i = 0; i < rs->n_in; i++)
		if (!strcmp(rs->in[i].name, name))
			rs->in[i].removed = true;
	store_remove(name);
}

void fdstore_drop_stale_faults(struct restart *rs)
{
	for (uint32_t i = 0; i < rs->n_in; i++)
		if (is_fault_name(rs->in[i].name))
			drop_stale(rs, rs->in[i].name);
}

/* How long a release waits for the service manager to close its copies (it answers at once). */
#define BARRIER_TIMEOUT_US (5 * 1000000ull)

void fdstore_release_queue(struct restart *rs, const char *name)
{
	uint32_t keep = 0;
	bool found = false;
	int rc;

	for (uint32_t i = 0; i < rs->n_fault_fds; i++) {
		if (strcmp(rs->fault_fds[i].name, name)) {
			rs->fault_fds[keep++] = rs->fault_fds[i];
			continue;
		}
		found = true;
	}
	rs->n_fault_fds = keep;
	if (!found)
		return;
	store_remove(name);
	/*
	 * BARRIER=1: the manager handles notifications in order, so once it
	 * closed the barrier's fd it closed its copy of this one too.
	 */
	rc = sd_notify_barrier(0, BARRIER_TIMEOUT_US);
	if (rc < 0)
		log_warn(
		    "fd store: no barrier after removing \"%s\": %s (its object may stay busy)",
		    name, strerror(-rc));
}

void fdstore_drop_stale_veventqs(struct restart *rs)
{
	for (uint32_t i = 0; i < rs->n_in; i++)
		if (is_veventq_name(rs->in[i].name))
			drop_stale(rs, rs->in[i].name);
}

void fdstore_sync_faults(struct restart *rs)
{
	struct backend_fd *cur = NULL;
	uint32_t n = 0, cap = 0, keep = 0;

	if (!rs->enabled)
		return;
	for (const struct client_faults *cf = rs->reg->faults; cf; cf = cf->next) {
		struct backend_fd f = {.fd = cf->q.fd};

		fdstore_fault_name(f.name, sizeof(f.name), cf->no);
		if (set_add(&cur, &n, &cap, &f)) {
			free(cur);
			log_warn("fd store: out of memory, the fault queues' entries stay as they "
				 "are");
			return;
		}
	}
	/*
	 * The clients' vEVENTQs' too (one set: both are a queue's fd). Not an
	 * orphan's: the store's copy would hold the object (its fd's
	 * reference) past the destroy at the grace period's end, and nothing
	 * tells when systemd closed it (persist/veventqs.c).
	 */
	for (const struct veventq *v = rs->reg->veventqs.head; v; v = v->next) {
		struct backend_fd f = {.fd = v->q.fd};

		if (v->orphan)
			continue;
		fdstore_veventq_name(f.name, sizeof(f.name), v->no);
		if (set_add(&cur, &n, &cap, &f)) {
			free(cur);
			log_warn("fd store: out of memory, the queues' entries stay as they are");
			return;
		}
	}
	/* Gone first: the store's copy of a closed queue's fd would keep its iommufd alive. */
	for (uint32_t i = 0; i < rs->n_fault_fds; i++) {
		if (fd_known(cur, n, &rs->fault_fds[i]))
			rs->fault_fds[keep++] = rs->fault_fds[i];
		else
			store_remove(rs->fault_fds[i].name);
	}
	rs->n_fault_fds = keep;
	for (uint32_t i = 0; i < n; i++) {
		if (fd_known(rs->fault_fds, rs->n_fault_fds, &cur[i]))
			continue;
		if (set_add(&rs->fault_fds, &rs->n_fault_fds, &rs->cap_fault_fds, &cur[i]))
			break; /* unrecorded: tried again at the next sync */
		store_add(&cur[i]);
	}
	free(cur);
}

void fdstore_close_leftovers(struct restart *rs)
{
	for (uint32_t i = 0; i < rs->n_in; i++) {
		if (rs->in[i].taken)
			continue;
		log_warn("closing unused inherited fd %d \"%s\"", rs->in[i].fd, rs->in[i].name);
		close(rs->in[i].fd);
		rs->in[i].taken = true;
	}
}

void fdstore_forget_ours(struct restart *rs)
{
	for (uint32_t i = 0; i < rs->n_stored; i++)
		store_remove(rs->stored[i]);
	rs->n_stored = 0;
	for (uint32_t i = 0; i < rs->n_ctx_fds; i++)
		store_remove(rs->ctx_fds[i].name);
	rs->n_ctx_fds = 0;
	for (uint32_t i = 0; i < rs->n_fault_fds; i++)
		store_remove(rs->fault_fds[i].name);
	rs->n_fault_fds = 0;
}

void fdstore_fini(struct restart *rs)
{
	for (uint32_t i = 0; i < rs->n_in; i++)
		if (!rs->in[i].taken)
			close(rs->in[i].fd);
	free(rs->in);
	rs->in = NULL;
	free(rs->ctx_fds);
	rs->ctx_fds = NULL;
	free(rs->fault_fds);
	rs->fault_fds = NULL;
	rs->n_fault_fds = rs->cap_fault_fds = 0;
	rs->n_ctx_fds = rs->cap_ctx_fds = 0;
	rs->n_in = 0;
}
