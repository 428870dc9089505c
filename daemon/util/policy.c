/* SPDX-License-Identifier: MIT */
#include "util/policy.h"
#include "util/common.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*resolve_fn)(const char *name, uint32_t *id);

static int resolve_uid(const char *name, uint32_t *id)
{
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) || !res)
		return -ENOENT;
	*id = pw.pw_uid;
	return 0;
}

static int resolve_gid(const char *name, uint32_t *id)
{
	struct group gr, *res = NULL;
	char buf[4096];

	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) || !res)
		return -ENOENT;
	*id = gr.gr_gid;
	return 0;
}

/* Splits a space or comma separated list of numbers or names. */
static int parse_list(uint32_t *out, uint32_t *n, const char *list, resolve_fn resolve)
{
	char copy[1024], *save = NULL, *tok;

	if (strlen(list) >= sizeof(copy))
		return -ENAMETOOLONG;
	strcpy(copy, list);
	*n = 0;
	for (tok = strtok_r(copy, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
		char *end;
		unsigned long v = strtoul(tok, &end, 10);
		uint32_t id;

		if (*n == POLICY_MAX_IDS)
			return -ENOSPC;
		if (end != tok && !*end && v <= UINT32_MAX)
			id = (uint32_t)v;
		else if (resolve(tok, &id))
			return -ENOENT;
		out[(*n)++] = id;
	}
	return 0;
}

int policy_parse_uids(struct policy_ids *ids, const char *list)
{
	return parse_list(ids->uids, &ids->n_uids, list, resolve_uid);
}

int policy_parse_gids(struct policy_ids *ids, const char *list)
{
	return parse_list(ids->gids, &ids->n_gids, list, resolve_gid);
}

static bool listed(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Supplementary groups come from the account database, as login would set them. */
static bool in_supplementary_group(const struct policy_ids *ids, uid_t uid, gid_t gid)
{
	struct passwd pw, *res = NULL;
	gid_t groups[256];
	int ngroups = 256;
	char buf[1024];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) || !res)
		return false;
	if (getgrouplist(pw.pw_name, gid, groups, &ngroups) < 0)
		ngroups = 256; /* truncated: check the ones we have */
	for (int i = 0; i < ngroups; i++)
		if (listed(ids->gids, ids->n_gids, groups[i]))
			return true;
	return false;
}

bool policy_allows(const struct policy_ids *ids, const struct ucred *cred)
{
	if (!ids->n_uids && !ids->n_gids)
		return true;
	if (listed(ids->uids, ids->n_uids, cred->uid))
		return true;
	if (!ids->n_gids)
		return false;
	if (listed(ids->gids, ids->n_gids, cred->gid))
		return true;
	return in_supplementary_group(ids, cred->uid, cred->gid);
}

bool policy_is_admin(const struct policy_ids *admin, const struct ucred *cred)
{
	if (cred->uid == 0)
		return true;
	if (!admin->n_gids)
		return false;
	return policy_allows(admin, cred);
}

bool rate_limiter_take(struct rate_limiter *rl, uint32_t rate)
{
	return !rate || rate_limiter_take_at(rl, rate, monotonic_ns());
}

bool rate_limiter_take_at(struct rate_limiter *rl, uint32_t rate, uint64_t now)
{
	uint64_t cap;

	if (!rate)
		return true;
	/* A bucket of one second's worth of requests allows short bursts. */
	cap = (uint64_t)rate * 1000;
	if (!rl->last_ns) {
		rl->tokens_milli = cap;
		rl->last_ns = now;
	} else {
		/* rate requests/s is rate thousandths per ms; keep the partial ms. */
		uint64_t ms = (now - rl->last_ns) / 1000000;
		uint64_t add = ms * rate;

		rl->tokens_milli = rl->tokens_milli + add > cap ? cap : rl->tokens_milli + add;
		rl->last_ns += ms * 1000000;
	}
	if (rl->tokens_milli < 1000)
		return false;
	rl->tokens_milli -= 1000;
	return true;
}
