/* SPDX-License-Identifier: MIT */
/*
 * The state file at start and at a clean stop: the lock that keeps two
 * instances apart, reading the snapshot and replaying its journal, and
 * removing both when there is nothing left to recover. Writing is
 * state_save.c's: reading runs once, writing on every change, and they
 * share only the format (restart.h) and the paths (state_file.h).
 */
#include "persist/state_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/journal.h"
#include "util/json_util.h"
#include "util/log.h"

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
	state_journal_path(rs, path, sizeof(path), "");
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

void state_file_setup(struct restart *rs)
{
	setup_persistence(rs);
	if (rs->enabled)
		load_state(rs);
}

void state_file_remove(struct restart *rs)
{
	if (unlink(rs->cfg->state_file) < 0 && errno != ENOENT)
		log_warn("cannot remove %s: %s", rs->cfg->state_file, strerror(errno));
	else {
		char path[CONFIG_PATH_MAX + 24];

		/* After the snapshot: a journal alone is never read. */
		state_journal_path(rs, path, sizeof(path), "");
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("cannot remove %s: %s", path, strerror(errno));
	}
}

void state_file_fini(struct restart *rs)
{
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
