/* SPDX-License-Identifier: MIT */
#include "backend/backend.h"

#include <errno.h>
#include <string.h>

#include "util/config.h"

int backend_open(const struct config *cfg, struct backend **out, const char **errmsg)
{
	if (!strcmp(cfg->backend, "sim"))
		return backend_sim_open(cfg, out, errmsg);
	if (!strcmp(cfg->backend, "iommufd"))
		return backend_iommufd_open(cfg, out, errmsg);
	*errmsg = "unknown backend (expected \"sim\" or \"iommufd\")";
	return -EINVAL;
}

const struct backend_ops *backend_ops_named(const char *name)
{
	if (!strcmp(name, "sim"))
		return &backend_sim_ops;
	if (!strcmp(name, "iommufd"))
		return &backend_iommufd_ops;
	return NULL;
}
