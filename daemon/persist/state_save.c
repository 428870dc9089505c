/* SPDX-License-Identifier: MIT */
/*
 * Writing the state file: the registry and the backend state as JSON, a
 * snapshot written atomically, and between snapshots journal records of
 * what changed, appended before the reply that reports the change leaves
 * (format: restart.h, util/journal.h).
 */
#include "persist/state_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "persist/fdstore.h"
#include "state/faults.h"
#include "state/registry.h"
#include "util/common.h"
#include "util/journal.h"
#include "util/json_util.h"
#include "util/log.h"

struct save_ctx {
	const struct restart *rs;
	struct json_object *arr;
	int rc;
};

/* "ctx": the VM context an object lives in (none: the root, as earlier files have it). */
static int add_ctx(const struct restart *rs, struct json_object *o, const struct backend *be)
{
	uint32_t no = be && be != rs->be ? restart_ctx_no(rs, be) : 0;

	return no ? js_add_u64(o, "ctx", no) : 0;
}

static struct json_object *hwpt_to_json(const struct restart *rs, const struct hwpt_entry *e)
{
	struct json_object *o = json_object_new_object();
	char hex[2 * HWPT_TOKEN_LEN + 1];

	js_hex(hex, e->token, HWPT_TOKEN_LEN);
	if (o && (js_add_u64(o, "id", e->id) || js_add_u64(o, "parent_id", e->parent_id) ||
		  js_add_u64(o, "data_type", e->data_type) || js_add_str(o, "device", e->device) ||
		  js_add_u64(o, "uid", e->owner_uid) || js_add_u64(o, "gid", e->owner_gid) ||
		  js_add_i64(o, "pid", e->owner_pid) || js_add_str(o, "resume_token", hex) ||
		  (e->viommu_id && js_add_u64(o, "viommu_id", e->viommu_id)) ||
		  js_add_u64(o, "session", e->owner_session) || add_ctx(rs, o, e->be) ||
		  (e->fault_id && js_add_u64(o, "fault_id", e->fault_id)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static void push_hwpt(struct hwpt_entry *e, void *arg)
{
	struct save_ctx *c = arg;

	if (!c->rc)
		c->rc = js_push(c->arr, hwpt_to_json(c->rs, e));
}

static struct json_object *attachment_to_json(const struct restart *rs,
					      const struct device_binding *b)
{
	struct json_object *o = json_object_new_object();

	if (o && (js_add_str(o, "device", b->dev->name) || js_add_u64(o, "hwpt_id", b->hwpt_id) ||
		  add_ctx(rs, o, b->hwpt_be))) {
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
static int mappings_to_json(const struct restart *rs, struct json_object *root)
{
	struct json_object *arr = js_add_new(root, "mappings", true);
	int rc = arr ? 0 : -ENOMEM;

	for (uint32_t i = 0; !rc && i < rs->reg->n_bindings; i++) {
		const struct device_binding *b = &rs->reg->bindings[i];

		for (uint32_t k = 0; !rc && k < b->n_maps; k++)
			rc = js_push(arr, mapping_to_json(b, &b->maps[k]));
	}
	return rc;
}

static int registry_to_json(const struct restart *rs, struct json_object *root)
{
	struct save_ctx c = {.rs = rs, .arr = js_add_new(root, "hwpts", true)};
	struct json_object *att = js_add_new(root, "attachments", true);

	if (!c.arr || !att)
		return -ENOMEM;
	hwpt_registry_for_each(rs->reg, push_hwpt, &c);
	for (uint32_t i = 0; !c.rc && i < rs->reg->n_bindings; i++)
		if (rs->reg->bindings[i].hwpt_id)
			c.rc = js_push(att, attachment_to_json(rs, &rs->reg->bindings[i]));
	return c.rc ? c.rc : mappings_to_json(rs, root);
}

static struct json_object *state_to_json(const struct restart *rs)
{
	const struct config *cfg = rs->cfg;
	struct json_object *root = json_object_new_object(), *bs;
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (!root || js_add_str(root, "format", STATE_FORMAT) ||
	    js_add_u64(root, "version", STATE_VERSION) ||
	    js_add_str(root, "backend", cfg->backend) ||
	    js_add_str(root, "socket", cfg->socket_path) || js_add_i64(root, "pid", getpid()) ||
	    js_add_i64(root, "saved_at", now.tv_sec) ||
	    js_add_u64(root, JOURNAL_EPOCH_KEY, rs->epoch) || registry_to_json(rs, root) ||
	    restart_save_contexts(rs, root) || restart_save_claims(rs, root) ||
	    restart_save_faults(rs, root) || restart_save_vobjs(rs, root) ||
	    restart_save_veventqs(rs, root) || restart_save_pasids(rs, root))
		goto nomem;
	bs = js_add_new(root, "backend_state", false);
	if (!bs || (rs->be->ops->save && rs->be->ops->save(rs->be, bs)))
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

	state_journal_path(rs, tmp, sizeof(tmp), ".tmp");
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

	state_journal_path(rs, tmp, sizeof(tmp), ".tmp");
	state_journal_path(rs, path, sizeof(path), "");
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
	sn->claimed = b->opener || b->claim_orphan;
}

/* What the file now says: nothing is dirty any more. */
static void mark_saved(struct restart *rs)
{
	dirty_ids_clear(&rs->reg->dirty);
	for (uint32_t i = 0; i < rs->reg->n_bindings; i++)
		snap_binding(rs, i, &rs->reg->bindings[i]);
}

static int save_snapshot(struct restart *rs)
{
	struct json_object *root;
	const char *text;
	int rc, jfd = -1;

	if (getrandom(&rs->epoch, sizeof(rs->epoch), GRND_NONBLOCK) != sizeof(rs->epoch))
		rs->epoch = monotonic_ns() ^ ((uint64_t)getpid() << 32);
	root = state_to_json(rs);
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
		state_journal_path(rs, tmp, sizeof(tmp), ".tmp");
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
	rs->ctx_saved = rs->reg->ctxs.head != NULL;
	rs->faults_saved = rs->reg->faults != NULL;
	rs->vobj_saved_gen = rs->reg->vobjs.gen;
	rs->veventqs_saved = rs->reg->veventqs.head != NULL;
	rs->pasids_saved = rs->reg->pasids.n != 0;
	mark_saved(rs);
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
static int registry_delta(struct restart *rs, struct json_object *recs)
{
	struct dirty_ids *d = &rs->reg->dirty;
	int rc = 0;

	dirty_ids_unique(d);
	for (uint32_t i = 0; !rc && i < d->n; i++) {
		struct hwpt_entry *e = hwpt_registry_find(rs->reg, rs->be, d->id[i]);
		struct json_object *v = e ? one_elem(hwpt_to_json(rs, e)) : json_object_new_array();

		rc = journal_rec_replace(recs, "hwpts", "id", json_object_new_int64(d->id[i]), v);
	}
	for (uint32_t i = 0; !rc && i < rs->reg->n_bindings; i++) {
		const struct device_binding *b = &rs->reg->bindings[i];
		const struct binding_snap *sn = &rs->snap[i];
		struct json_object *v;

		/* The journal has no records for claims: a claim that came or went takes a
		 * snapshot. */
		if (sn->claimed != (b->opener || b->claim_orphan))
			return -EAGAIN;
		if (sn->hwpt_id != b->hwpt_id) {
			v = b->hwpt_id ? one_elem(attachment_to_json(rs, b))
				       : json_object_new_array();
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
static int append_delta(struct restart *rs)
{
	struct json_object *recs = json_object_new_array();
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	int rc = recs ? 0 : -ENOMEM;

	if (!rc && rs->reg->dirty.lost)
		rc = -ENOMEM;
	if (!rc)
		rc = registry_delta(rs, recs);
	if (!rc && rs->be->ops->save_delta &&
	    (!rs->be->ops->generation || rs->be->ops->generation(rs->be) != rs->saved_gen))
		rc = rs->be->ops->save_delta(rs->be, recs);
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
	mark_saved(rs);
	return 0;
}

void restart_save(struct restart *rs)
{
	uint64_t limit;
	int rc;

	/* Nothing to write before restart_restore gave us the registry. */
	if (!rs || !rs->reg || !rs->enabled || rs->stopping)
		return;
	limit = rs->snapshot_bytes * JOURNAL_FACTOR;
	if (limit < JOURNAL_MIN_BYTES)
		limit = JOURNAL_MIN_BYTES;
	/* Before the file names them: new contexts' descriptors in, closed ones' out. */
	fdstore_sync_ctx(rs, &rs->reg->ctxs);
	fdstore_resync(rs);
	fdstore_sync_faults(rs);
	/*
	 * With VM contexts (now or at the last save), snapshots only: the
	 * journal's records name HWPTs by id, which repeats across contexts,
	 * and the contexts' own state is no delta of the root's.
	 */
	rc = rs->journal_fd >= 0 && !rs->reg->ctxs.head && !rs->ctx_saved && !rs->reg->faults &&
		     !rs->faults_saved && !restart_vobjs_changed(rs) && !rs->reg->veventqs.head &&
		     !rs->veventqs_saved && !rs->reg->pasids.n && !rs->pasids_saved
		 ? append_delta(rs)
		 : -EAGAIN;
	/* Compaction: O(state) now and then, O(change) every time. */
	if (rc || rs->journal_bytes > limit)
		rc = save_snapshot(rs);
	rs->saved_gen = restart_generation(rs);
	if (rc) {
		/* Once per power of two: a full disk must not flood the journal. */
		if (!(rs->save_failures & (rs->save_failures + 1)))
			log_err("cannot write %s: %s (a restart now would lose HWPTs)",
				rs->cfg->state_file, strerror(-rc));
		rs->save_failures++;
	}
}

void restart_save_if_changed(struct restart *rs)
{
	if (!rs || !rs->reg || !rs->enabled || !rs->be->ops->generation)
		return;
	if (restart_generation(rs) != rs->saved_gen)
		restart_save(rs);
}
