/* SPDX-License-Identifier: MIT */
/*
 * Configuration: INI (libinih) over built-in defaults. Unknown keys are
 * errors, so that a typo in a limit or policy never silently falls back to
 * a default on a privileged daemon.
 */
#include "util/config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/iommufd_uapi.h"
#include "util/log.h"

#define DEFAULT_SOCKET "/run/iommu-nestd/iommu-nestd.sock"
#define DEFAULT_STATE_FILE "/run/iommu-nestd/state"

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%s", DEFAULT_SOCKET);
	snprintf(cfg->backend, sizeof(cfg->backend), "sim");
	snprintf(cfg->iommufd_path, sizeof(cfg->iommufd_path), "/dev/iommu");
	cfg->log_level = LOG_INFO;
	cfg->socket_mode = 0660;
	cfg->max_entries = 4096;
	cfg->max_message_size = 256 * 1024;
	cfg->coalesce = true;
	cfg->coalesce_slack_pages = 16;
	cfg->flush_all_pages = 1u << 18; /* 1 GiB of 4 KiB pages */
	cfg->vtd_max_mask = 18;
	cfg->batch_delay_us = 0;
	/* About 200 KiB of working arrays: within a core's L2 (512 KiB and up). */
	cfg->batch_max_entries = 1024;
	/* A few round trips' worth: on 2 CPUs a longer spin steals the client's. */
	cfg->queue_poll_us = 50;
	/* A socket client waits at most this for a turn of the poll loop to end. */
	cfg->queue_poll_slice_us = 20;
	/* One VMM's burst of 32 requests, then the next queue's turn. */
	cfg->queue_budget = 32;
	cfg->test_requests = false;
	/* Each client its own iommufd: the kernel keeps tenants apart (issue 15). */
	cfg->vm_contexts = true;
	snprintf(cfg->state_file, sizeof(cfg->state_file), "%s", DEFAULT_STATE_FILE);
	cfg->reclaim_grace_ms = 30000;
	cfg->log_rate_burst = 20;
	cfg->log_rate_interval_ms = 10000;
	cfg->quota.max_clients = 1024;
	/* One tenant gets an eighth of the slots, one process half of that. */
	cfg->quota.max_clients_per_uid = 128;
	cfg->quota.max_clients_per_pid = 64;
	cfg->quota.hello_timeout_ms = 10000;
	cfg->quota.max_hwpts = 64;
	cfg->quota.max_inflight = 256;
	cfg->quota.max_outq_bytes = 4u << 20;
	cfg->quota.max_events = 256;
	cfg->quota.max_total_buffered_bytes = 64u << 20;
	cfg->quota.max_requests_per_sec = 0;
	cfg->quota.max_queue_bytes = 1u << 20;
	cfg->max_mapped_bytes = 16ULL << 30;
}

struct parse_state {
	struct config *cfg;
	char *err;
	size_t errlen;
};

static int parse_u64(const char *v, uint64_t *out)
{
	char *end;

	errno = 0;
	if (*v == '-')
		return -EINVAL;
	*out = strtoull(v, &end, 0);
	if (errno || end == v || *end)
		return -EINVAL;
	return 0;
}

static int parse_u32(const char *v, uint32_t *out)
{
	uint64_t x;

	if (parse_u64(v, &x) || x > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)x;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "on"))
		*out = true;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "off"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static int copy_str(char *dst, size_t len, const char *v)
{
	if (strlen(v) >= len)
		return -ENAMETOOLONG;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* Errno values accepted by name in [sim.fault] error = ... */
static int parse_errno(const char *v, int32_t *out)
{
	static const struct {
		const char *name;
		int value;
	} names[] = {
		{ "EIO", EIO },         { "EINVAL", EINVAL }, { "ENOMEM", ENOMEM },
		{ "ETIMEDOUT", ETIMEDOUT }, { "EFAULT", EFAULT }, { "EBUSY", EBUSY },
		{ "EOPNOTSUPP", EOPNOTSUPP },
	};
	int64_t x;
	char *end;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(v, names[i].name)) {
			*out = -names[i].value;
			return 0;
		}
	x = strtoll(v, &end, 0);
	if (end == v || *end || x > 0 || x < -4095)
		return -EINVAL;
	*out = (int32_t)x;
	return 0;
}

static int set_daemon(struct config *cfg, const char *k, const char *v)
{
	int lvl;

	if (!strcmp(k, "socket"))
		return copy_str(cfg->socket_path, sizeof(cfg->socket_path), v);
	if (!strcmp(k, "backend")) {
		if (strcmp(v, "sim") && strcmp(v, "iommufd"))
			return -EINVAL;
		return copy_str(cfg->backend, sizeof(cfg->backend), v);
	}
	if (!strcmp(k, "iommufd"))
		return copy_str(cfg->iommufd_path, sizeof(cfg->iommufd_path), v);
	if (!strcmp(k, "log_level")) {
		lvl = log_level_from_name(v);
		if (lvl < 0)
			return -EINVAL;
		cfg->log_level = lvl;
		return 0;
	}
	if (!strcmp(k, "socket_mode")) {
		uint32_t mode;
		char *end;

		mode = (uint32_t)strtoul(v, &end, 8);
		if (end == v || *end || mode > 0777)
			return -EINVAL;
		cfg->socket_mode = mode;
		return 0;
	}
	if (!strcmp(k, "test_requests"))
		return parse_bool(v, &cfg->test_requests);
	if (!strcmp(k, "vm_contexts"))
		return parse_bool(v, &cfg->vm_contexts);
	/* An empty value turns persistence off. */
	if (!strcmp(k, "state_file"))
		return copy_str(cfg->state_file, sizeof(cfg->state_file), v);
	if (!strcmp(k, "reclaim_grace_ms"))
		return parse_u32(v, &cfg->reclaim_grace_ms);
	if (!strcmp(k, "log_rate_burst"))
		return parse_u32(v, &cfg->log_rate_burst);
	if (!strcmp(k, "log_rate_interval_ms"))
		return parse_u32(v, &cfg->log_rate_interval_ms);
	if (!strcmp(k, "sim_kernel")) {
		if (!strcmp(v, "6.12"))
			cfg->sim_kernel = KERNEL_RULES_6_12;
		else if (!strcmp(v, "7.0"))
			cfg->sim_kernel = KERNEL_RULES_7;
		else
			return -EINVAL;
		return 0;
	}
	return -ENOENT;
}

static int set_limits(struct config *cfg, const char *k, const char *v)
{
	int rc;

	if (!strcmp(k, "max_entries")) {
		rc = parse_u32(v, &cfg->max_entries);
		if (!rc && (cfg->max_entries == 0 ||
			    cfg->max_entries > IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX))
			rc = -ERANGE;
		return rc;
	}
	if (!strcmp(k, "max_message_size")) {
		rc = parse_u32(v, &cfg->max_message_size);
		/* SEQPACKET packets above a few MiB would exceed socket buffers. */
		if (!rc && (cfg->max_message_size < 4096 || cfg->max_message_size > (8u << 20)))
			rc = -ERANGE;
		return rc;
	}
	return -ENOENT;
}

static int set_coalesce(struct config *cfg, const char *k, const char *v)
{
	if (!strcmp(k, "enabled"))
		return parse_bool(v, &cfg->coalesce);
	if (!strcmp(k, "slack_pages"))
		return parse_u64(v, &cfg->coalesce_slack_pages);
	if (!strcmp(k, "flush_all_pages"))
		return parse_u64(v, &cfg->flush_all_pages);
	if (!strcmp(k, "vtd_max_mask")) {
		int rc = parse_u32(v, &cfg->vtd_max_mask);

		if (!rc && cfg->vtd_max_mask > 52)
			rc = -ERANGE;
		return rc;
	}
	if (!strcmp(k, "batch_delay_us"))
		return parse_u32(v, &cfg->batch_delay_us);
	if (!strcmp(k, "batch_max_entries"))
		return parse_u32(v, &cfg->batch_max_entries);
	if (!strcmp(k, "queue_poll_us")) {
		int rc = parse_u32(v, &cfg->queue_poll_us);

		/* A poll is a CPU spun: bounded to a second. */
		return !rc && cfg->queue_poll_us > 1000000 ? -ERANGE : rc;
	}
	if (!strcmp(k, "queue_poll_slice_us")) {
		int rc = parse_u32(v, &cfg->queue_poll_slice_us);

		/* A slice is a socket client kept waiting: 1 us to 10 ms. */
		return !rc && (!cfg->queue_poll_slice_us || cfg->queue_poll_slice_us > 10000)
			   ? -ERANGE
			   : rc;
	}
	if (!strcmp(k, "queue_budget")) {
		int rc = parse_u32(v, &cfg->queue_budget);

		/* At most a ring (NESTQ_MAX_ENTRIES): more would never bound a turn. */
		return !rc && (!cfg->queue_budget || cfg->queue_budget > 4096) ? -ERANGE : rc;
	}
	return -ENOENT;
}

static int set_fault(struct config *cfg, const char *k, const char *v)
{
	struct backend_fault *f = &cfg->sim_fault;

	if (!strcmp(k, "mode")) {
		if (!strcmp(v, "index"))
			f->mode = FAULT_AT_INDEX;
		else if (!strcmp(v, "addr"))
			f->mode = FAULT_AT_ADDR;
		else if (!strcmp(v, "none"))
			f->mode = FAULT_CLEAR;
		else
			return -EINVAL;
		return 0;
	}
	if (!strcmp(k, "hwpt"))
		return parse_u32(v, &f->hwpt_id);
	if (!strcmp(k, "index"))
		return parse_u32(v, &f->index);
	if (!strcmp(k, "addr"))
		return parse_u64(v, &f->addr);
	if (!strcmp(k, "error"))
		return parse_errno(v, &f->error);
	if (!strcmp(k, "hw_error"))
		return parse_u32(v, &f->hw_error);
	if (!strcmp(k, "latency_us"))
		return parse_u32(v, &f->latency_us);
	if (!strcmp(k, "count"))
		return parse_u32(v, &f->count);
	return -ENOENT;
}

static int set_policy(struct config *cfg, const char *k, const char *v)
{
	struct policy_quota *q = &cfg->quota;

	if (!strcmp(k, "allow_users"))
		return policy_parse_uids(&cfg->allow, v);
	if (!strcmp(k, "allow_groups"))
		return policy_parse_gids(&cfg->allow, v);
	if (!strcmp(k, "admin_groups"))
		return policy_parse_gids(&cfg->admin, v);
	if (!strcmp(k, "max_clients"))
		return parse_u32(v, &q->max_clients);
	if (!strcmp(k, "max_clients_per_uid"))
		return parse_u32(v, &q->max_clients_per_uid);
	if (!strcmp(k, "max_clients_per_pid"))
		return parse_u32(v, &q->max_clients_per_pid);
	if (!strcmp(k, "hello_timeout_ms"))
		return parse_u32(v, &q->hello_timeout_ms);
	if (!strcmp(k, "max_hwpts"))
		return parse_u32(v, &q->max_hwpts);
	if (!strcmp(k, "max_inflight"))
		return parse_u32(v, &q->max_inflight);
	if (!strcmp(k, "max_buffered_bytes")) {
		int rc = parse_u32(v, &q->max_outq_bytes);

		/* No "unlimited" here: a client that never reads would grow without bound. */
		return !rc && !q->max_outq_bytes ? -ERANGE : rc;
	}
	if (!strcmp(k, "max_total_buffered_bytes"))
		return parse_u64(v, &q->max_total_buffered_bytes);
	if (!strcmp(k, "max_requests_per_sec"))
		return parse_u32(v, &q->max_requests_per_sec);
	if (!strcmp(k, "max_queue_bytes"))
		return parse_u64(v, &q->max_queue_bytes);
	if (!strcmp(k, "max_events")) {
		int rc = parse_u32(v, &q->max_events);

		/* 0 would drop every event: a configuration mistake, not a policy. */
		return !rc && !q->max_events ? -ERANGE : rc;
	}
	if (!strcmp(k, "max_mapped_bytes"))
		return parse_u64(v, &cfg->max_mapped_bytes);
	return -ENOENT;
}

/* [device NAME]: finds or appends the device called NAME. */
static struct config_device *device_for(struct config *cfg, const char *name)
{
	struct config_device *d;

	for (uint32_t i = 0; i < cfg->n_devices; i++)
		if (!strcmp(cfg->devices[i].name, name))
			return &cfg->devices[i];
	if (cfg->n_devices == CONFIG_MAX_DEVICES || !*name ||
	    strlen(name) >= CONFIG_NAME_MAX)
		return NULL;
	d = &cfg->devices[cfg->n_devices++];
	memset(d, 0, sizeof(*d));
	memcpy(d->name, name, strlen(name) + 1);
	d->kind = DEVICE_KIND_VTD;
	return d;
}

static int set_device(struct config *cfg, const char *name, const char *k, const char *v)
{
	struct config_device *d = device_for(cfg, name);

	if (!d)
		return -ENOSPC;
	if (!strcmp(k, "kind")) {
		if (!strcmp(v, "vtd"))
			d->kind = DEVICE_KIND_VTD;
		else if (!strcmp(v, "selftest"))
			d->kind = DEVICE_KIND_SELFTEST;
		else if (!strcmp(v, "smmuv3"))
			d->kind = DEVICE_KIND_SMMUV3;
		else
			return -EINVAL;
		return 0;
	}
	if (!strcmp(k, "path"))
		return copy_str(d->path, sizeof(d->path), v);
	if (!strcmp(k, "pasid"))
		return parse_bool(v, &d->pasid);
	if (!strcmp(k, "allow_users"))
		return policy_parse_uids(&d->allow, v);
	if (!strcmp(k, "allow_groups"))
		return policy_parse_gids(&d->allow, v);
	return -ENOENT;
}

static int on_key(void *user, const char *section, const char *k, const char *v)
{
	struct parse_state *ps = user;
	struct config *cfg = ps->cfg;
	int rc;

	if (!strcmp(section, "daemon"))
		rc = set_daemon(cfg, k, v);
	else if (!strcmp(section, "limits"))
		rc = set_limits(cfg, k, v);
	else if (!strcmp(section, "coalesce"))
		rc = set_coalesce(cfg, k, v);
	else if (!strcmp(section, "policy"))
		rc = set_policy(cfg, k, v);
	else if (!strcmp(section, "sim.fault"))
		rc = set_fault(cfg, k, v);
	else if (!strncmp(section, "device ", 7))
		rc = set_device(cfg, section + 7, k, v);
	else
		rc = -ENOENT;
	if (rc) {
		snprintf(ps->err, ps->errlen, "[%s] %s = %s: %s", section, k, v,
			 rc == -ENOENT ? "unknown key" : strerror(-rc));
		return 0; /* inih then reports this line number */
	}
	return 1;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct parse_state ps = { .cfg = cfg, .err = err, .errlen = errlen };
	int rc;

	err[0] = '\0';
	rc = ini_parse(path, on_key, &ps);
	if (rc == -1) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc ? rc : -EIO;
	}
	if (rc == -2) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (rc > 0 && !err[0])
		snprintf(err, errlen, "syntax error");
	return rc;
}

/* The reason, or NULL when every device is declared alike (allow lists aside). */
static const char *devices_differ(const struct config *a, const struct config *b)
{
	if (a->n_devices != b->n_devices)
		return "the set of [device] sections";
	for (uint32_t i = 0; i < a->n_devices; i++) {
		const struct config_device *x = &a->devices[i], *y = &b->devices[i];

		if (strcmp(x->name, y->name) || x->kind != y->kind || strcmp(x->path, y->path))
			return "a [device] section's name, kind or path";
	}
	return NULL;
}

const char *config_reload_conflict(const struct config *cur, const struct config *next)
{
	if (strcmp(cur->socket_path, next->socket_path))
		return "[daemon] socket";
	if (strcmp(cur->backend, next->backend))
		return "[daemon] backend";
	if (strcmp(cur->iommufd_path, next->iommufd_path))
		return "[daemon] iommufd";
	if (cur->socket_mode != next->socket_mode)
		return "[daemon] socket_mode";
	if (strcmp(cur->state_file, next->state_file))
		return "[daemon] state_file";
	if (cur->reclaim_grace_ms != next->reclaim_grace_ms)
		return "[daemon] reclaim_grace_ms";
	/* The receive and send buffers and the decode arena are sized for it. */
	if (cur->max_message_size != next->max_message_size)
		return "[limits] max_message_size";
	if (memcmp(&cur->sim_fault, &next->sim_fault, sizeof(cur->sim_fault)))
		return "[sim.fault]";
	/* The sim's rules and the daemon's copy of them are set at open. */
	if (cur->sim_kernel != next->sim_kernel)
		return "[daemon] sim_kernel";
	return devices_differ(cur, next);
}

const struct config_device *config_find_device(const struct config *cfg, const char *name)
{
	for (uint32_t i = 0; i < cfg->n_devices; i++)
		if (!strcmp(cfg->devices[i].name, name))
			return &cfg->devices[i];
	return NULL;
}
