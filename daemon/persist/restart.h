/* SPDX-License-Identifier: MIT */
/*
 * persist/'s face to the rest of the daemon (main, req, net). Restart without loss. The kernel
 * objects the daemon owns live as long as the iommufd (and the VFIO device cdevs) stay open;
 * systemd's fd store keeps them open across a crash, and the state file says what they are and
 * whose: on start, the daemon takes the stored descriptors back from $LISTEN_FDS (by name),
 * re-adopts the objects, and holds the clients' HWPTs as orphans until their owners Reclaim them
 * with the resume token their Alloc reply carried, or the grace period runs out.
 *
 * State file (JSON, see docs/iommu-nestd.8): a snapshot, written
 * atomically (temporary file, fsync, rename), and a journal next to it
 * (STATE.journal, state_journal.h) to which every change of the registry
 * or the backend state appends records of what changed, before the reply
 * that reports the change leaves. A change costs a write proportional to
 * the change; when the journal outgrows JOURNAL_FACTOR times the snapshot
 * (and at start), a fresh snapshot replaces both.
 *
 * Lifecycle, and which file does it:
 *   start      restart_init (restart.c: fdstore.c takes $LISTEN_FDS,
 *              state_file.c locks and loads the file),
 *              restart_open_backend (backend_open.c), (server_init),
 *              restart_take_socket (fdstore.c), restart_restore (recovery.c)
 *   running    restart_save / restart_save_if_changed (state_save.c),
 *              Reclaim and the grace timer (recovery.c)
 *   SIGTERM    restart_clean_stop (restart.c): orphans destroyed, state file
 *              and stored fds removed (clients' own HWPTs go with their
 *              sessions)
 *   crash      nothing: the next instance recovers
 *
 * persist sits below net and req: it is given what it works on (the
 * registry, the backend, the HWPT counter, the event base), never the
 * server.
 */
#ifndef IOMMU_NESTD_RESTART_H
#define IOMMU_NESTD_RESTART_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend/backend.h"
#include "util/config.h"

#define STATE_FORMAT  "iommu-nestd-state"
#define STATE_VERSION 1

struct session;
struct mem_map;
struct event;
struct event_base;
struct hwpt_registry;
struct hwpt_entry;
struct json_object;

/* A descriptor from $LISTEN_FDS with its $LISTEN_FDNAMES name. */
struct inherited_fd {
	int fd;
	char name[256];
	bool taken;   /* handed over (socket, backend) or closed */
	bool removed; /* FDSTOREREMOVE sent for its name */
};

struct restart {
	const struct config *cfg;

	/* $LISTEN_FDS: the listening socket and the fd store's descriptors. */
	struct inherited_fd *in;
	uint32_t n_in;

	/* Persistence: on when state_file is set, its directory exists and locks. */
	bool enabled;
	int lock_fd;
	struct json_object *state; /* the file found at start, until restored */
	bool restored;		   /* the backend re-adopted the saved objects */
	uint64_t saved_gen;	   /* backend generation at the last save */
	bool stopping;		   /* clean stop in progress: no more saves */
	uint32_t save_failures;

	/*
	 * The journal continuing the snapshot of epoch (a random number per
	 * snapshot, so that a journal left by another snapshot never
	 * matches); -1 when the next save must write a snapshot.
	 */
	int journal_fd;
	uint64_t epoch;
	uint64_t journal_bytes;		 /* records appended since the snapshot */
	uint64_t snapshot_bytes;	 /* size of the last snapshot */
	uint64_t n_snapshots, n_appends; /* since start, for the log and tests */
	/* Each device's attachment and memory as the file has them now. */
	struct binding_snap {
		uint32_t hwpt_id;
		uint32_t mem_uid;
		uint32_t n_maps;
		struct mem_map *maps;
		bool claimed; /* a device claim (persist/claims.c) */
	} snap[CONFIG_MAX_DEVICES];

	/* Names this instance keeps in the fd store (removed at a clean stop). */
	char stored[BACKEND_MAX_FDS][BACKEND_FD_NAME_MAX];
	uint32_t n_stored;
	/*
	 * The root backend's descriptors as the store holds them now, kept in
	 * step at every save (fdstore_resync): a VFIO cdev bound afresh
	 * replaces the old file, whose copy in the store would keep the old
	 * binding, and with it the device, out of reach.
	 */
	struct backend_fd root_fds[BACKEND_MAX_FDS];
	uint32_t n_root_fds;
	/*
	 * The VM contexts' descriptors in the fd store ("ctx.<no>.<name>"),
	 * kept in step with the open contexts at every save (fdstore.c).
	 */
	struct backend_fd *ctx_fds;
	uint32_t n_ctx_fds, cap_ctx_fds;
	bool ctx_saved; /* the last save had contexts: journal deltas cannot say they went */
	/* The fault queues' descriptors in the store ("fault.<no>", fdstore_sync_faults). */
	struct backend_fd *fault_fds;
	uint32_t n_fault_fds, cap_fault_fds;
	bool faults_saved; /* the last save had fault queues (snapshots only, as contexts) */
	/*
	 * The vIOMMU/vDEVICE table's generation at the last snapshot: the
	 * journal has no records for them, so a change takes a snapshot
	 * (persist/viommus.c).
	 */
	uint64_t vobj_saved_gen;
	/* The last snapshot had vEVENTQs (persist/veventqs.c): snapshots only, as faults. */
	bool veventqs_saved;
	bool pasids_saved; /* the same for PASID attachments (persist/pasids.c) */
	uint64_t
	    session_salt; /* restart_session_key(): this instance's, random, 0 until first used */
	/*
	 * Bit i: configured device i was in a saved context that could not be
	 * reopened; its memory records went with that context's IOAS.
	 */
	uint64_t lost_ctx_devs;

	/* What recovery and saving work on: given at restart_open_backend and restart_restore. */
	struct backend *be;
	struct hwpt_registry *reg;
	uint64_t *hwpts_active; /* the daemon's count of live HWPTs */
	struct event_base *base;
	struct event *ev_grace;
};

/*
 * Takes $LISTEN_FDS/$LISTEN_FDNAMES, sets up persistence (lock, load the
 * state file if one matches this configuration). Failures to persist are
 * logged and turn persistence off; only -ENOMEM is returned.
 */
int restart_init(struct restart *rs, const struct config *cfg);

/*
 * Opens the configured backend: re-adopting the stored objects where the
 * state file and the fd store allow it, else fresh. Then puts the
 * backend's descriptors in the fd store and drops stale ones from it.
 */
int restart_open_backend(struct restart *rs, struct backend **out, const char **why);

/*
 * The listening socket systemd passed (by type, among the descriptors that
 * are not the fd store's): 0 with *fd, -ENOENT if none, -EINVAL (logged)
 * if what was passed is unusable.
 */
int restart_take_socket(struct restart *rs, int *fd);

/*
 * Restores the saved HWPTs into reg as orphans (counted in *hwpts_active),
 * with their device attachments, arms the grace timer on base, writes the
 * state file afresh, and closes inherited descriptors nobody took. From
 * here on rs works on reg (the caller keeps it and rs alive together).
 */
int restart_restore(struct restart *rs, struct event_base *base, struct hwpt_registry *reg,
		    uint64_t *hwpts_active);

/* Writes the state file now (no-op when rs is NULL or persistence is off). */
void restart_save(struct restart *rs);
/* Writes it if the backend's own state changed since the last write. */
void restart_save_if_changed(struct restart *rs);

/*
 * Reclaim: gives orphan id to session s if token (len bytes) is its (rs
 * NULL: -ENOENT), with *out its entry. An orphan of a restored VM context
 * brings the whole context (its devices and memory) to s, which must have
 * none of its own yet (-EBUSY).
 */
int restart_reclaim(struct restart *rs, struct session *s, uint32_t id, const uint8_t *token,
		    size_t len, struct hwpt_entry **out);

/*
 * The VM contexts (persist/contexts.c): each one's number for the state
 * file (0: be is the root or unknown), restored ones, their descriptors in
 * the fd store, the orphaned ones' end.
 */
uint32_t restart_ctx_no(const struct restart *rs, const struct backend *be);
int restart_save_contexts(const struct restart *rs, struct json_object *root);
void restart_restore_contexts(struct restart *rs);
void restart_scrub_context_memory(struct restart *rs);
void restart_close_orphan_contexts(struct restart *rs);
uint32_t restart_orphan_contexts(const struct restart *rs);
/* Whose VM context an orphan of be is: moves it to s (0), or -EBUSY / -ENOENT. */
int restart_adopt_context(struct restart *rs, struct session *s, struct backend *be);
/* The sum of every instance's generation (root and contexts). */
uint64_t restart_generation(const struct restart *rs);

/*
 * Device claims (persist/claims.c): saved with the opener's uid and pid,
 * restored as orphans (the VMM's fd still bound), given back with the
 * Reclaim of what came with the device (claims_follow: its HWPT, memory
 * or context) or of the claim itself by the descriptor the VMM holds
 * (reclaim_device: 0 with *out, -ENOENT, -EPERM or -EBUSY as for a
 * context; then restart_grace_check), ended as on the VMM's death at the grace period's end.
 */
struct device_binding;
int restart_save_claims(const struct restart *rs, struct json_object *root);
void restart_restore_claims(struct restart *rs);
uint32_t restart_orphan_claims(const struct restart *rs);
void restart_claims_follow(struct restart *rs, struct session *s);
int restart_reclaim_device(struct restart *rs, struct session *s, int fd,
			   struct device_binding **out);
void restart_end_orphan_claims(struct restart *rs);
/*
 * Fault queues (persist/faults.c): saved with their object id, instance,
 * uid and book of unanswered groups, the fd in the store; reopened as
 * orphans; faults_follow gives the one a reclaimed HWPT e uses to s
 * (-EEXIST: s has a queue of its own already, which fault_conflict tells
 * before anything changed); the unclaimed ones closed after their HWPTs.
 */
struct hwpt_entry;
int restart_save_faults(const struct restart *rs, struct json_object *root);
void restart_restore_faults(struct restart *rs);
int restart_faults_follow(struct restart *rs, struct session *s, const struct hwpt_entry *e);
bool restart_fault_conflict(const struct restart *rs, const struct session *s,
			    const struct hwpt_entry *e);
void restart_close_orphan_faults(struct restart *rs);
/*
 * Before a session's own fault queue is destroyed: its fd out of the fd
 * store and waited for, as the store's copy would keep the object busy.
 */
struct client_faults;
void restart_fault_release(struct restart *rs, const struct client_faults *cf);

/* Stops the grace timer once nothing of the previous instance waits any more (rs NULL: none). */
void restart_grace_check(struct restart *rs);
/*
 * vIOMMUs and vDEVICEs (persist/viommus.c): "viommus" and "vdevices" in
 * the state file, restored as orphans (after the contexts, before the
 * HWPTs that sit on them), handed to the session that reclaims a HWPT of
 * the same owner (uid and session) in the same instance, or with the context
 * they live in; reaped with the other orphans, after the HWPTs.
 */
int restart_save_vobjs(const struct restart *rs, struct json_object *root);
bool restart_vobjs_changed(const struct restart *rs);
int restart_restore_vobjs(struct restart *rs, struct json_object *st);
uint32_t restart_orphan_vobjs(const struct restart *rs);
/*
 * Hands s the orphans of be that uid's session number session made (0:
 * any of uid's: a VM context goes whole); how many.
 */
uint32_t restart_vobjs_follow(struct restart *rs, struct session *s, const struct backend *be,
			      uid_t uid, uint64_t session);
/*
 * Reclaim by a vIOMMU's own token (an owner with no HWPT): orphan vIOMMU
 * id goes to s with what its session made (its vEVENTQs, vDEVICEs, other
 * vIOMMUs; with VM contexts the context). 0, -ENOENT (wrong id, token or
 * uid, or not an orphan), -EPERM (the policy no longer lets s use its
 * device), or restart_adopt_context()'s -EBUSY.
 */
int restart_reclaim_viommu(struct restart *rs, struct session *s, uint32_t id, const uint8_t *token,
			   size_t len);
/*
 * vEVENTQs (persist/veventqs.c): "veventqs" in the state file (owner,
 * instance, vIOMMU, type, depth, object id), the fd in the store as
 * "veventq.<no>" while a client holds it; restored as orphans with their
 * vIOMMUs (after them), handed over with them (veventqs_follow, from
 * vobjs_follow: the same Reclaim; session_key is s's restart_session_key),
 * reaped before them.
 */
int restart_save_veventqs(const struct restart *rs, struct json_object *root);
void restart_restore_veventqs(struct restart *rs, struct json_object *st);
uint32_t restart_orphan_veventqs(const struct restart *rs);
/*
 * Before a vEVENTQ is destroyed (DestroyObject, its session's end): its fd
 * out of the fd store, and the store's copy closed, since that copy holds
 * the object (-EBUSY). rs NULL or persistence off: nothing to do.
 */
struct veventq;
void restart_veventq_release(struct restart *rs, const struct veventq *v);
void restart_veventqs_release(struct restart *rs, const struct session *s);
uint32_t restart_veventqs_follow(struct restart *rs, struct session *s, const struct backend *be,
				 uint32_t viommu_id, uint64_t session_key);
/*
 * PASID attachments (persist/pasids.c): "pasids" in the state file
 * (device, PASID, HWPT, owner, instance); restored after the HWPTs into
 * the backend's table (pasid_restore) and the registry's as orphans;
 * pasids_follow hands the orphans on e's device (a context's: all of its)
 * to s when it reclaims e; detached at the grace period's end first.
 */
int restart_save_pasids(const struct restart *rs, struct json_object *root);
int restart_restore_pasids(struct restart *rs, struct json_object *st);
uint32_t restart_orphan_pasids(const struct restart *rs);
uint32_t restart_pasids_follow(struct restart *rs, struct session *s, const struct hwpt_entry *e,
			       uint64_t session_key);
/*
 * What the state file names s's session by (hwpt_entry and vobj
 * owner_session): its id, salted per instance, so that sessions of two
 * instances (orphans of one next to a later one's objects) never share a
 * key. rs NULL (no recovery): the id.
 */
uint64_t restart_session_key(struct restart *rs, const struct session *s);

/* Destroys every orphan through the one teardown path (state/teardown.h). */
void restart_reap_orphans(struct restart *rs);

/* SIGTERM: orphans destroyed, state file and fd store entries removed. */
void restart_clean_stop(struct restart *rs);

/* Frees rs; stored descriptors and the state file stay as they are. */
void restart_fini(struct restart *rs);

/* Constant-time comparison of two resume tokens. */
bool restart_token_equal(const uint8_t *a, const uint8_t *b);

#endif
