/* SPDX-License-Identifier: MIT */
/*
 * Restart without loss: fd store, state file, orphans and Reclaim (see
 * restart.h for the lifecycle).
 */
#include "persist/restart.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "state/registry.h"
#include "state/teardown.h"
#include "util/json_util.h"
#include "util/latency_hist.h"
#include "util/log.h"
#include "net/server.h"
#include "net/session.h"
#include "util/journal.h"

/* ---- inherited descriptors ----------------------------------------------- */

/*
 * Names the daemon gives its fd store entries (FDNAME=): the backends'.
 * Anything else systemd passes is a socket unit's (FileDescriptorName=,
 * by default the unit's name).
 */
static bool is_store_name(const char *name)
{
	return !strcmp(name, "iommufd") || !strcmp(name, "sim") || !strncmp(name, "vfio.", 5);
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

static int collect_inherited(struct restart *rs)
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

/* backend_take_fd_fn: the first untaken descriptor called name. */
static int take_fd(void *ctx, const char *name)
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

/* ---- fd store --------------------------------------------------------------- */

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

/*
 * Makes the fd store hold exactly the backend's descriptors: stale
 * inherited entries out, new descriptors in. An adopted descriptor is
 * already there: systemd keeps the store across our restart.
 */
static void sync_store(struct restart *rs, struct backend *be)
{
	struct backend_fd fds[BACKEND_MAX_FDS];
	uint32_t n = 0;

	for (uint32_t i = 0; i < rs->n_in; i++)
		if (is_store_name(rs->in[i].name))
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
	}
}

/* ---- state file ------------------------------------------------------------ */

static int lock_state(struct restart *rs)
{
	char path[CONFIG_PATH_MAX + 8];

	snprintf(path, sizeof(path), "%s.lock", rs->cfg->state_file);
	rs->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (rs->lock_fd < 0)
		return -errno;
	if (flock(rs->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int rc = -errno;

		close(rs->lock_fd);
		rs->lock_fd = -1;
		return rc;
	}
	return 0;
}

/*
 * Persistence needs the state file's directory (RuntimeDirectory=, kept
 * across restarts by RuntimeDirectoryPreserve=): it is not created here,
 * so a daemon started by hand or by a test without one simply runs
 * without recovery. The lock keeps two instances from sharing a file.
 */
static void setup_persistence(struct restart *rs)
{
	char dir[CONFIG_PATH_MAX];
	struct stat st;
	int rc;

	if (!rs->cfg->state_file[0]) {
		log_info("no state_file: restart recovery is off");
		return;
	}
	snprintf(dir, sizeof(dir), "%s", rs->cfg->state_file);
	if (stat(dirname(dir), &st) || !S_ISDIR(st.st_mode)) {
		log_notice("state directory of %s does not exist: restart recovery is off",
			   rs->cfg->state_file);
		return;
	}
	rc = lock_state(rs);
	if (rc) {
		log_warn("cannot lock %s.lock: %s; restart recovery is off", rs->cfg->state_file,
			 rc == -EWOULDBLOCK ? "another instance uses it" : strerror(-rc));
		return;
	}
	rs->enabled = true;
}

/* Whether a loaded file belongs to this configuration; logs why not. */
static bool state_matches(const struct restart *rs, struct json_object *o)
{
	char fmt[32], backend[16], sock[sizeof(rs->cfg->socket_path)];
	uint32_t version;

	if (js_str(o, "format", fmt, sizeof(fmt)) || strcmp(fmt, STATE_FORMAT) ||
	    js_u32(o, "version", &version)) {
		log_warn("%s is not an iommu-nestd state file; ignoring it", rs->cfg->state_file);
		return false;
	}
	if (version != STATE_VERSION) {
		log_warn("%s has format version %u, this daemon reads %u; ignoring it",
			 rs->cfg->state_file, version, STATE_VERSION);
		return false;
	}
	if (js_str(o, "backend", backend, sizeof(backend)) || strcmp(backend, rs->cfg->backend) ||
	    js_str(o, "socket", sock, sizeof(sock)) || strcmp(sock, rs->cfg->socket_path)) {
		log_warn("%s was written for another backend or socket; ignoring it",
			 rs->cfg->state_file);
		return false;
	}
	return true;
}

static void journal_path(const struct restart *rs, char *buf, size_t len, const char *suffix)
{
	snprintf(buf, len, "%s.journal%s", rs->cfg->state_file, suffix);
}

/* The whole of a (regular) file, NUL-terminated; NULL with errno. */
static char *read_whole(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 0)
		goto out;
	buf = malloc((size_t)st.st_size + 1);
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (buf)
		buf[got] = '\0';
	*len = got;
out:
	close(fd);
	return buf;
}

/*
 * Brings the snapshot o up to date with the journal that continues it.
 * A snapshot without an epoch predates the journal (an older daemon's
 * file): it is the whole state as it is.
 */
static int replay_journal(struct restart *rs, struct json_object *o)
{
	char path[CONFIG_PATH_MAX + 24];
	const char *why = NULL;
	uint64_t epoch;
	size_t len = 0;
	char *text;
	long n;

	if (js_u64(o, JOURNAL_EPOCH_KEY, UINT64_MAX, &epoch))
		return 0;
	journal_path(rs, path, sizeof(path), "");
	text = read_whole(path, &len);
	if (!text) {
		if (errno != ENOENT)
			log_warn("%s: %s; using the snapshot alone", path, strerror(errno));
		return 0;
	}
	n = journal_replay(o, text, len, epoch, &why);
	free(text);
	if (n < 0) {
		log_warn("%s: %s", path, why ? why : strerror((int)-n));
		return (int)n;
	}
	log_info("replayed %ld journal records of %s%s%s", n, path, why ? ": " : "",
		 why ? why : "");
	return 0;
}

static void load_state(struct restart *rs)
{
	struct json_object *o;
	struct stat st;

	if (stat(rs->cfg->state_file, &st)) {
		if (errno != ENOENT)
			log_warn("%s: %s", rs->cfg->state_file, strerror(errno));
		return;
	}
	o = json_object_from_file(rs->cfg->state_file);
	if (!o) {
		log_warn("%s: unreadable or not JSON (%s); ignoring it", rs->cfg->state_file,
			 json_util_get_last_err());
		return;
	}
	if (!state_matches(rs, o) || replay_journal(rs, o)) {
		json_object_put(o);
		return;
	}
	rs->state = o;
	log_event(
	    LOG_NOTICE, LOG_EV_RECOVERY,
	    LOG_FIELDS(LF_STR("phase", "found_state"), LF_STR("state_file", rs->cfg->state_file)),
	    "found state of a previous instance in %s", rs->cfg->state_file);
}

int restart_init(struct restart *rs, const struct config *cfg)
{
	memset(rs, 0, sizeof(*rs));
	rs->cfg = cfg;
	rs->lock_fd = -1;
	rs->journal_fd = -1; /* the first save writes a snapshot */
	if (collect_inherited(rs))
		return -ENOMEM;
	setup_persistence(rs);
	if (rs->enabled)
		load_state(rs);
	return 0;
}

/* ---- writing ---------------------------------------------------------------- */

struct save_ctx {
	struct json_object *arr;
	int rc;
};

static struct json_object *hwpt_to_json(const struct hwpt_entry *e)
{
	struct json_object *o = json_object_new_object();
	char hex[2 * HWPT_TOKEN_LEN + 1];

	js_hex(hex, e->token, HWPT_TOKEN_LEN);
	if (o && (js_add_u64(o, "id", e->id) || js_add_u64(o, "parent_id", e->parent_id) ||
		  js_add_u64(o, "data_type", e->data_type) || js_add_str(o, "device", e->device) ||
		  js_add_u64(o, "uid", e->owner_uid) || js_add_u64(o, "gid", e->owner_gid) ||
		  js_add_i64(o, "pid", e->owner_pid) || js_add_str(o, "resume_token", hex))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static void push_hwpt(struct hwpt_entry *e, void *arg)
{
	struct save_ctx *c = arg;

	if (!c->rc)
		c->rc = js_push(c->arr, hwpt_to_json(e));
}

static struct json_object *attachment_to_json(const struct device_binding *b)
{
	struct json_object *o = json_object_new_object();

	if (o && (js_add_str(o, "device", b->dev->name) || js_add_u64(o, "hwpt_id", b->hwpt_id))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *mapping_to_json(const struct device_binding *b, const struct mem_map *m)
{
	struct json_object *o = json_object_new_object();

	if (o &&
	    (js_add_str(o, "device", b->dev->name) || js_add_u64(o, "iova", m->iova) ||
	     js_add_u64(o, "length", m->last - m->iova + 1) || js_add_u64(o, "uid", b->mem_uid))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/*
 * Guest memory: the areas themselves live on in the backend (iommufd: in
 * the device's IOAS inside the stored iommufd; sim: in its saved state);
 * the file says whose they are, so that they can be given back or undone.
 */
static int mappings_to_json(const struct server *srv, struct json_object *root)
{
	struct json_object *arr = js_add_new(root, "mappings", true);
	int rc = arr ? 0 : -ENOMEM;

	for (uint32_t i = 0; !rc && i < srv->reg.n_bindings; i++) {
		const struct device_binding *b = &srv->reg.bindings[i];

		for (uint32_t k = 0; !rc && k < b->n_maps; k++)
			rc = js_push(arr, mapping_to_json(b, &b->maps[k]));
	}
	return rc;
}

static int registry_to_json(const struct server *srv, struct json_object *root)
{
	struct save_ctx c = {.arr = js_add_new(root, "hwpts", true)};
	struct json_object *att = js_add_new(root, "attachments", true);

	if (!c.arr || !att)
		return -ENOMEM;
	hwpt_registry_for_each(&srv->reg, push_hwpt, &c);
	for (uint32_t i = 0; !c.rc && i < srv->reg.n_bindings; i++)
		if (srv->reg.bindings[i].hwpt_id)
			c.rc = js_push(att, attachment_to_json(&srv->reg.bindings[i]));
	return c.rc ? c.rc : mappings_to_json(srv, root);
}

static struct json_object *state_to_json(const struct server *srv)
{
	const struct config *cfg = srv->cfg;
	struct json_object *root = json_object_new_object(), *bs;
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (!root || js_add_str(root, "format", STATE_FORMAT) ||
	    js_add_u64(root, "version", STATE_VERSION) ||
	    js_add_str(root, "backend", cfg->backend) ||
	    js_add_str(root, "socket", cfg->socket_path) || js_add_i64(root, "pid", getpid()) ||
	    js_add_i64(root, "saved_at", now.tv_sec) ||
	    js_add_u64(root, JOURNAL_EPOCH_KEY, srv->rs->epoch) || registry_to_json(srv, root))
		goto nomem;
	bs = js_add_new(root, "backend_state", false);
	if (!bs || (srv->be->ops->save && srv->be->ops->save(srv->be, bs)))
		goto nomem;
	return root;
nomem:
	json_object_put(root);
	return NULL;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Temporary file, fsync, rename: a reader (the next instance) sees the old
 * or the new state, never a torn one. The directory is not fsynced: the
 * file lives on tmpfs and must survive a process crash, not a power cut
 * (which takes the kernel objects with it anyway).
 */
static int write_atomically(const char *path, const char *text)
{
	char tmp[CONFIG_PATH_MAX + 8];
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, text, strlen(text));
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

/* A snapshot is due once the journal is this many times its size, and at least MIN. */
#define JOURNAL_FACTOR	  4
#define JOURNAL_MIN_BYTES (1u << 20)

/*
 * A fresh journal for the snapshot about to be written (epoch): a
 * temporary file renamed over the old journal after the snapshot is in
 * place (commit_journal), so that at any moment the pair on disk is an
 * old or a new one; the old journal names another epoch and is ignored
 * next to the new snapshot.
 */
static int new_journal(struct restart *rs, int *fd)
{
	char tmp[CONFIG_PATH_MAX + 24], hdr[64];
	size_t len = journal_header(hdr, sizeof(hdr), rs->epoch);
	int rc;

	journal_path(rs, tmp, sizeof(tmp), ".tmp");
	*fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (*fd < 0)
		return -errno;
	rc = write_all(*fd, hdr, len);
	if (rc) {
		close(*fd);
		*fd = -1;
		unlink(tmp);
	}
	return rc;
}

static int commit_journal(struct restart *rs, int fd)
{
	char tmp[CONFIG_PATH_MAX + 24], path[CONFIG_PATH_MAX + 24];

	journal_path(rs, tmp, sizeof(tmp), ".tmp");
	journal_path(rs, path, sizeof(path), "");
	if (rename(tmp, path) < 0) {
		int rc = -errno;

		close(fd);
		unlink(tmp);
		return rc;
	}
	if (rs->journal_fd >= 0)
		close(rs->journal_fd);
	rs->journal_fd = fd;
	rs->journal_bytes = 0;
	return 0;
}

static void snap_binding(struct restart *rs, uint32_t i, const struct device_binding *b)
{
	struct binding_snap *sn = &rs->snap[i];
	struct mem_map *maps = NULL;

	if (b->n_maps) {
		maps = malloc(b->n_maps * sizeof(*maps));
		if (!maps) {
			/* Unknown is "changed": the next delta writes this device again. */
			sn->n_maps = UINT32_MAX;
			return;
		}
		memcpy(maps, b->maps, b->n_maps * sizeof(*maps));
	}
	free(sn->maps);
	sn->maps = maps;
	sn->n_maps = b->n_maps;
	sn->mem_uid = b->mem_uid;
	sn->hwpt_id = b->hwpt_id;
}

/* What the file now says: nothing is dirty any more. */
static void mark_saved(struct server *srv)
{
	dirty_ids_clear(&srv->reg.dirty);
	for (uint32_t i = 0; i < srv->reg.n_bindings; i++)
		snap_binding(srv->rs, i, &srv->reg.bindings[i]);
}

static int save_snapshot(struct server *srv)
{
	struct restart *rs = srv->rs;
	struct json_object *root;
	const char *text;
	int rc, jfd = -1;

	if (getrandom(&rs->epoch, sizeof(rs->epoch), GRND_NONBLOCK) != sizeof(rs->epoch))
		rs->epoch = monotonic_ns() ^ ((uint64_t)getpid() << 32);
	root = state_to_json(srv);
	if (!root)
		return -ENOMEM;
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	rc = new_journal(rs, &jfd);
	if (!rc)
		rc = write_atomically(rs->cfg->state_file, text);
	if (!rc) {
		rs->snapshot_bytes = strlen(text);
		rc = commit_journal(rs, jfd);
		jfd = -1;
	}
	json_object_put(root);
	if (jfd >= 0) {
		char tmp[CONFIG_PATH_MAX + 24];

		close(jfd);
		journal_path(rs, tmp, sizeof(tmp), ".tmp");
		unlink(tmp);
	}
	if (rc) {
		/* Without a journal that continues the file, only snapshots are right. */
		if (rs->journal_fd >= 0)
			close(rs->journal_fd);
		rs->journal_fd = -1;
		return rc;
	}
	rs->n_snapshots++;
	mark_saved(srv);
	return 0;
}

static struct json_object *one_elem(struct json_object *e)
{
	struct json_object *a = json_object_new_array();

	if (!a || js_push(a, e)) {
		json_object_put(a);
		return NULL;
	}
	return a;
}

static bool binding_changed_maps(const struct binding_snap *sn, const struct device_binding *b)
{
	return sn->n_maps != b->n_maps || sn->mem_uid != b->mem_uid ||
	       (b->n_maps && memcmp(sn->maps, b->maps, b->n_maps * sizeof(*b->maps)));
}

/* Records for the registry: HWPTs that came, went or changed hands; devices. */
static int registry_delta(struct server *srv, struct json_object *recs)
{
	struct restart *rs = srv->rs;
	struct dirty_ids *d = &srv->reg.dirty;
	int rc = 0;

	dirty_ids_unique(d);
	for (uint32_t i = 0; !rc && i < d->n; i++) {
		struct hwpt_entry *e = hwpt_registry_find(&srv->reg, d->id[i]);
		struct json_object *v = e ? one_elem(hwpt_to_json(e)) : json_object_new_array();

		rc = journal_rec_replace(recs, "hwpts", "id", json_object_new_int64(d->id[i]), v);
	}
	for (uint32_t i = 0; !rc && i < srv->reg.n_bindings; i++) {
		const struct device_binding *b = &srv->reg.bindings[i];
		const struct binding_snap *sn = &rs->snap[i];
		struct json_object *v;

		if (sn->hwpt_id != b->hwpt_id) {
			v = b->hwpt_id ? one_elem(attachment_to_json(b)) : json_object_new_array();
			rc = journal_rec_replace(recs, "attachments", "device",
						 json_object_new_string(b->dev->name), v);
		}
		if (!rc && binding_changed_maps(sn, b)) {
			v = json_object_new_array();
			for (uint32_t k = 0; v && k < b->n_maps; k++)
				if (js_push(v, mapping_to_json(b, &b->maps[k]))) {
					json_object_put(v);
					v = NULL;
				}
			rc = journal_rec_replace(recs, "mappings", "device",
						 json_object_new_string(b->dev->name), v);
		}
	}
	return rc;
}

/*
 * Appends what changed since the last save to the journal: one write of
 * the records, one per line. A write that fails part way is cut off again
 * (the loader would stop at the torn record and miss everything after).
 */
static int append_delta(struct server *srv)
{
	struct restart *rs = srv->rs;
	struct json_object *recs = json_object_new_array();
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	int rc = recs ? 0 : -ENOMEM;

	if (!rc && srv->reg.dirty.lost)
		rc = -ENOMEM;
	if (!rc)
		rc = registry_delta(srv, recs);
	if (!rc && srv->be->ops->save_delta &&
	    (!srv->be->ops->generation || srv->be->ops->generation(srv->be) != rs->saved_gen))
		rc = srv->be->ops->save_delta(srv->be, recs);
	n = recs ? json_object_array_length(recs) : 0;
	for (size_t i = 0; !rc && i < n; i++) {
		const char *line = json_object_to_json_string_ext(
		    json_object_array_get_idx(recs, i), JSON_C_TO_STRING_PLAIN);
		size_t l = strlen(line);

		if (len + l + 1 > cap) {
			char *nb = realloc(buf, cap = 2 * (len + l + 1));

			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			buf = nb;
		}
		memcpy(buf + len, line, l);
		buf[len + l] = '\n';
		len += l + 1;
	}
	json_object_put(recs);
	if (!rc && len) {
		off_t end = lseek(rs->journal_fd, 0, SEEK_END);

		rc = write_all(rs->journal_fd, buf, len);
		if (rc && end >= 0)
			(void)!ftruncate(rs->journal_fd, end);
	}
	free(buf);
	if (rc)
		return rc;
	if (len) {
		rs->journal_bytes += len;
		rs->n_appends++;
	}
	mark_saved(srv);
	return 0;
}

void restart_save(struct server *srv)
{
	struct restart *rs = srv->rs;
	uint64_t limit;
	int rc;

	if (!rs || !rs->enabled || rs->stopping)
		return;
	limit = rs->snapshot_bytes * JOURNAL_FACTOR;
	if (limit < JOURNAL_MIN_BYTES)
		limit = JOURNAL_MIN_BYTES;
	rc = rs->journal_fd >= 0 ? append_delta(srv) : -EAGAIN;
	/* Compaction: O(state) now and then, O(change) every time. */
	if (rc || rs->journal_bytes > limit)
		rc = save_snapshot(srv);
	if (srv->be->ops->generation)
		rs->saved_gen = srv->be->ops->generation(srv->be);
	if (rc) {
		/* Once per power of two: a full disk must not flood the journal. */
		if (!(rs->save_failures & (rs->save_failures + 1)))
			log_err("cannot write %s: %s (a restart now would lose HWPTs)",
				rs->cfg->state_file, strerror(-rc));
		rs->save_failures++;
	}
}

void restart_save_if_changed(struct server *srv)
{
	struct restart *rs = srv->rs;

	if (!rs || !rs->enabled || !srv->be->ops->generation)
		return;
	if (srv->be->ops->generation(srv->be) != rs->saved_gen)
		restart_save(srv);
}

/* ---- opening the backend ----------------------------------------------------- */

static struct json_object *saved_backend_state(const struct restart *rs)
{
	return rs->state ? js_get(rs->state, "backend_state", json_type_object) : NULL;
}

static void forget_state(struct restart *rs, const char *why)
{
	if (!rs->state)
		return;
	log_warn("cannot recover the previous instance's objects: %s", why);
	json_object_put(rs->state);
	rs->state = NULL;
}

/*
 * Every backend the same way, through its reopen op: re-adopt what the
 * state file and the fd store allow, else open afresh.
 */
int restart_open_backend(struct restart *rs, struct backend **out, const char **why)
{
	const struct backend_ops *ops = backend_ops_named(rs->cfg->backend);
	const char *err = "no backend state saved";
	int rc = -ENOENT;

	if (ops && ops->reopen)
		rc = ops->reopen(rs->cfg, saved_backend_state(rs), take_fd, rs, out, &err);
	if (rc) {
		if (err)
			forget_state(rs, err);
		rc = backend_open(rs->cfg, out, why);
		if (rc)
			return rc;
	} else {
		rs->restored = true;
	}
	sync_store(rs, *out);
	return 0;
}

/* ---- restoring the registry ------------------------------------------------- */

static int restore_hwpt(struct server *srv, struct json_object *j)
{
	struct hwpt_entry e = {.orphan = true};
	struct hwpt_entry *stored;
	char hex[2 * HWPT_TOKEN_LEN + 1];
	uint32_t uid, gid;
	int64_t pid;

	if (js_u32(j, "id", &e.id) || js_u32(j, "parent_id", &e.parent_id) ||
	    js_u32(j, "data_type", &e.data_type) ||
	    js_str(j, "device", e.device, sizeof(e.device)) || js_u32(j, "uid", &uid) ||
	    js_u32(j, "gid", &gid) || js_i64(j, "pid", 0, INT32_MAX, &pid) ||
	    js_str(j, "resume_token", hex, sizeof(hex)) || js_unhex(hex, e.token, HWPT_TOKEN_LEN) ||
	    hwpt_inv_type_for(e.data_type, &e.inv_type)) {
		log_warn("state file: malformed HWPT entry skipped");
		return 0;
	}
	if (!config_find_device(srv->cfg, e.device) || hwpt_registry_find(&srv->reg, e.id) ||
	    !srv->be->ops->has_hwpt || !srv->be->ops->has_hwpt(srv->be, e.id)) {
		log_warn("state file: hwpt %u (device %s) is gone; skipped", e.id, e.device);
		return 0;
	}
	e.owner_uid = uid;
	e.owner_gid = gid;
	e.owner_pid = (pid_t)pid;
	stored = hwpt_registry_add(&srv->reg, &e);
	if (!stored)
		return -ENOMEM;
	srv->reg.n_orphans++;
	srv->stats.hwpts_active++;
	log_info("hwpt %u on %s (uid %u, pid %d) waits for its owner's Reclaim", e.id, e.device,
		 uid, (int)pid);
	return 0;
}

static void restore_attachment(struct server *srv, struct json_object *j)
{
	char device[CONFIG_NAME_MAX];
	struct device_binding *b;
	struct hwpt_entry *e;
	uint32_t id;

	if (js_str(j, "device", device, sizeof(device)) || js_u32(j, "hwpt_id", &id)) {
		log_warn("state file: malformed attachment skipped");
		return;
	}
	b = hwpt_registry_binding(&srv->reg, device);
	e = hwpt_registry_find(&srv->reg, id);
	if (!b || !e || b->hwpt_id) {
		log_warn("state file: attachment of %s to hwpt %u skipped", device, id);
		return;
	}
	b->hwpt_id = id;
	b->owner = NULL; /* held by the orphan until Reclaim */
	e->n_attached++;
}

/* One area of guest memory, restored as an orphan (no mem_owner). */
static int restore_mapping(struct server *srv, struct json_object *j)
{
	char device[CONFIG_NAME_MAX];
	struct device_binding *b;
	uint64_t iova, length, last;
	uint32_t uid;
	int rc;

	if (js_str(j, "device", device, sizeof(device)) || js_u64(j, "iova", UINT64_MAX, &iova) ||
	    js_u64(j, "length", UINT64_MAX, &length) || js_u32(j, "uid", &uid) || !length ||
	    __builtin_add_overflow(iova, length - 1, &last)) {
		log_warn("state file: malformed mapping skipped");
		return 0;
	}
	b = hwpt_registry_binding(&srv->reg, device);
	/* One client's memory per device: a second uid on it is a corrupt file. */
	if (!b || (b->n_maps && b->mem_uid != uid)) {
		log_warn("state file: mapping [%#llx, +%#llx) on %s skipped",
			 (unsigned long long)iova, (unsigned long long)length, device);
		return 0;
	}
	rc = binding_map_add(b, iova, last);
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		log_warn("state file: overlapping mapping on %s skipped", device);
	b->mem_uid = uid;
	b->mem_owner = NULL;
	return 0;
}

/*
 * Unmaps what the backend has in a device's stage 2 but the file does not
 * know: areas mapped by a daemon that crashed before it saved them. Left
 * there, they would put a client's memory behind whichever client takes
 * the device next. The kernel's areas are disjoint and the recorded ones
 * exist, so an unknown area lies wholly inside a gap between recorded
 * ones, and unmapping each gap removes exactly the unknown areas.
 */
static void scrub_unknown_memory(struct server *srv, struct device_binding *b)
{
	const char *dev = b->dev->name;
	uint64_t from = 0;

	if (!srv->be->ops->unmap_memory)
		return;
	if (!b->n_maps) {
		srv->be->ops->unmap_memory(srv->be, dev, 0, UINT64_MAX);
		return;
	}
	for (uint32_t k = 0; k < b->n_maps; k++) {
		if (b->maps[k].iova > from)
			srv->be->ops->unmap_memory(srv->be, dev, from, b->maps[k].iova - from);
		from = b->maps[k].last + 1;
	}
	/* from 0: the last recorded area ends at the top of the IOVA space. */
	if (from)
		srv->be->ops->unmap_memory(srv->be, dev, from, UINT64_MAX - from + 1);
}

static int restore_registry(struct server *srv, struct json_object *st)
{
	struct json_object *hwpts = js_get(st, "hwpts", json_type_array);
	struct json_object *att = js_get(st, "attachments", json_type_array);
	struct json_object *maps = js_get(st, "mappings", json_type_array);
	size_t n = hwpts ? json_object_array_length(hwpts) : 0;
	int rc;

	for (size_t i = 0; i < n; i++) {
		rc = restore_hwpt(srv, json_object_array_get_idx(hwpts, i));
		if (rc)
			return rc;
	}
	n = att ? json_object_array_length(att) : 0;
	for (size_t i = 0; i < n; i++)
		restore_attachment(srv, json_object_array_get_idx(att, i));
	/* Files of daemons that predate guest memory have no "mappings". */
	n = maps ? json_object_array_length(maps) : 0;
	for (size_t i = 0; i < n; i++) {
		rc = restore_mapping(srv, json_object_array_get_idx(maps, i));
		if (rc)
			return rc;
	}
	for (uint32_t i = 0; i < srv->reg.n_bindings; i++)
		scrub_unknown_memory(srv, &srv->reg.bindings[i]);
	return 0;
}

/* Devices whose guest memory waits for its owner's Reclaim. */
static uint32_t orphan_memory(const struct server *srv)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < srv->reg.n_bindings; i++)
		n += srv->reg.bindings[i].n_maps && !srv->reg.bindings[i].mem_owner;
	return n;
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct restart *rs = arg;

	if (!rs->srv->reg.n_orphans && !orphan_memory(rs->srv))
		return;
	log_event(LOG_NOTICE, LOG_EV_RECOVERY,
		  LOG_FIELDS(LF_STR("phase", "grace_over"),
			     LF_UINT("hwpts", rs->srv->reg.n_orphans),
			     LF_UINT("devices", orphan_memory(rs->srv))),
		  "reclaim grace period over: destroying %u unclaimed HWPTs and the guest "
		  "memory of %u devices",
		  rs->srv->reg.n_orphans, orphan_memory(rs->srv));
	restart_reap_orphans(rs->srv);
	restart_save(rs->srv);
}

static int arm_grace(struct restart *rs, struct server *srv)
{
	uint32_t ms = rs->cfg->reclaim_grace_ms;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	rs->ev_grace = evtimer_new(srv->base, on_grace, rs);
	if (!rs->ev_grace || evtimer_add(rs->ev_grace, &tv))
		return -ENOMEM;
	log_event(LOG_NOTICE, LOG_EV_RECOVERY,
		  LOG_FIELDS(LF_STR("phase", "waiting"), LF_UINT("hwpts", srv->reg.n_orphans),
			     LF_UINT("devices", orphan_memory(srv)), LF_UINT("grace_ms", ms)),
		  "%u HWPTs (and guest memory on %u devices) of the previous instance wait %u ms "
		  "for Reclaim",
		  srv->reg.n_orphans, orphan_memory(srv), ms);
	return 0;
}

/* Closes what nobody took (a socket we do not serve, say) and says so. */
static void close_leftovers(struct restart *rs)
{
	for (uint32_t i = 0; i < rs->n_in; i++) {
		if (rs->in[i].taken)
			continue;
		log_warn("closing unused inherited fd %d \"%s\"", rs->in[i].fd, rs->in[i].name);
		close(rs->in[i].fd);
		rs->in[i].taken = true;
	}
}

int restart_restore(struct restart *rs, struct server *srv)
{
	int rc = 0;

	rs->srv = srv;
	srv->rs = rs;
	close_leftovers(rs);
	if (rs->state && rs->restored)
		rc = restore_registry(srv, rs->state);
	if (rs->state) {
		json_object_put(rs->state);
		rs->state = NULL;
	}
	if (rc)
		return rc;
	if (srv->reg.n_orphans || orphan_memory(srv))
		rc = arm_grace(rs, srv);
	/* A fresh start overwrites a stale file; a restore normalises it. */
	restart_save(srv);
	return rc;
}

/* ---- orphans and Reclaim ------------------------------------------------------ */

bool restart_token_equal(const uint8_t *a, const uint8_t *b)
{
	volatile uint8_t diff = 0;

	for (size_t i = 0; i < HWPT_TOKEN_LEN; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

int restart_reclaim(struct server *srv, struct session *s, uint32_t id, const uint8_t *token,
		    size_t len)
{
	static const uint8_t dummy[HWPT_TOKEN_LEN];
	struct hwpt_entry *e = hwpt_registry_find(&srv->reg, id);
	const struct config_device *dev;
	bool match;

	/* Compare even without a candidate: timing says nothing about ids. */
	match = restart_token_equal(e ? e->token : dummy, len == HWPT_TOKEN_LEN ? token : dummy);
	if (!e || !e->orphan || len != HWPT_TOKEN_LEN || !match || e->owner_uid != s->cred.uid)
		return -ENOENT;
	/* The token holder may learn that the policy changed under it. */
	dev = config_find_device(srv->cfg, e->device);
	if (dev && !policy_allows(&dev->allow, &s->cred))
		return -EPERM;
	if (quota_reached(s->n_owned, srv->cfg->quota.max_hwpts))
		return -EDQUOT;
	e->orphan = false;
	e->owner = s;
	e->owner_pid = s->cred.pid;
	e->owner_gid = s->cred.gid;
	dirty_ids_add(&srv->reg.dirty, id); /* its record names the new pid and gid */
	e->next_owned = s->owned;
	s->owned = e;
	s->n_owned++;
	srv->reg.n_orphans--;
	for (uint32_t i = 0; i < srv->reg.n_bindings; i++) {
		struct device_binding *b = &srv->reg.bindings[i];

		if (b->hwpt_id != id)
			continue;
		b->owner = s;
		/*
		 * The guest memory behind a device goes with the HWPT attached
		 * to it: the device was held by one client, so the holder of
		 * this HWPT's token is the one whose memory it is.
		 */
		if (b->n_maps && !b->mem_owner && b->mem_uid == s->cred.uid)
			b->mem_owner = s;
	}
	if (!srv->reg.n_orphans && !orphan_memory(srv) && srv->rs && srv->rs->ev_grace)
		evtimer_del(srv->rs->ev_grace);
	return 0;
}

void restart_reap_orphans(struct server *srv)
{
	struct teardown_holder h = {.s = NULL};

	state_teardown(&srv->reg, srv->be, &h, &srv->stats.hwpts_active);
}

/* ---- stop ------------------------------------------------------------------------ */

void restart_clean_stop(struct restart *rs)
{
	rs->stopping = true;
	if (rs->srv)
		restart_reap_orphans(rs->srv);
	if (!rs->enabled)
		return;
	/* Nothing to recover after a clean stop: say so to the next instance. */
	if (unlink(rs->cfg->state_file) < 0 && errno != ENOENT)
		log_warn("cannot remove %s: %s", rs->cfg->state_file, strerror(errno));
	else {
		char path[CONFIG_PATH_MAX + 24];

		/* After the snapshot: a journal alone is never read. */
		journal_path(rs, path, sizeof(path), "");
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("cannot remove %s: %s", path, strerror(errno));
	}
	for (uint32_t i = 0; i < rs->n_stored; i++)
		store_remove(rs->stored[i]);
	rs->n_stored = 0;
}

void restart_fini(struct restart *rs)
{
	if (rs->ev_grace)
		event_free(rs->ev_grace);
	rs->ev_grace = NULL;
	for (uint32_t i = 0; i < rs->n_in; i++)
		if (!rs->in[i].taken)
			close(rs->in[i].fd);
	free(rs->in);
	rs->in = NULL;
	rs->n_in = 0;
	if (rs->state)
		json_object_put(rs->state);
	rs->state = NULL;
	if (rs->lock_fd >= 0)
		close(rs->lock_fd);
	rs->lock_fd = -1;
	if (rs->journal_fd >= 0)
		close(rs->journal_fd);
	rs->journal_fd = -1;
	for (uint32_t i = 0; i < CONFIG_MAX_DEVICES; i++) {
		free(rs->snap[i].maps);
		rs->snap[i].maps = NULL;
	}
}
