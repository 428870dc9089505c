/* SPDX-License-Identifier: MIT */
/* Hello: the handshake. */
#include <errno.h>
#include <stdio.h>

#include "req/dispatch.h"
#include "net/server.h"
#include "net/session.h"

#define PROTOCOL_VERSION 1

static uint32_t capability_bits(const struct server *srv)
{
	uint32_t caps = IOMMU_NEST__CAPABILITY__CAP_CONTINUE;

	if (!srv->cfg->test_requests)
		return caps;
	if (srv->caps.check_iotlb)
		caps |= IOMMU_NEST__CAPABILITY__CAP_CHECK_IOTLB;
	if (srv->caps.sim_model)
		caps |= IOMMU_NEST__CAPABILITY__CAP_SIM_MODEL;
	if (srv->caps.fault_inject)
		caps |= IOMMU_NEST__CAPABILITY__CAP_FAULT_INJECT;
	return caps;
}

void handle_hello(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep)
{
	const IommuNest__Hello *h = req->hello;
	struct server *srv = s->srv;
	IommuNest__HelloReply hr = IOMMU_NEST__HELLO_REPLY__INIT;
	uint32_t hwpt_types[BACKEND_MAX_TYPES], inv_types[BACKEND_MAX_TYPES];
	char *devices[CONFIG_MAX_DEVICES];
	uint32_t n_dev = srv->be->ops->n_devices(srv->be);

	hr.version = PROTOCOL_VERSION;
	hr.backend = (char *)srv->be->ops->name;
	for (uint32_t i = 0; i < srv->caps.n_hwpt_types; i++)
		hwpt_types[i] = srv->caps.hwpt_types[i];
	for (uint32_t i = 0; i < srv->caps.n_inv_types; i++)
		inv_types[i] = srv->caps.inv_types[i];
	hr.n_hwpt_data_types = srv->caps.n_hwpt_types;
	hr.hwpt_data_types = hwpt_types;
	hr.n_inv_data_types = srv->caps.n_inv_types;
	hr.inv_data_types = inv_types;
	hr.max_entries = invalidate_max_entries(srv);
	hr.max_message_size = srv->cfg->max_message_size;
	hr.capabilities = capability_bits(srv);
	/* Only the devices this peer may use. */
	for (uint32_t i = 0; i < n_dev && hr.n_devices < CONFIG_MAX_DEVICES; i++) {
		const char *name = srv->be->ops->device_name(srv->be, i);
		const struct config_device *d = config_find_device(srv->cfg, name);

		if (d && policy_allows(&d->allow, &s->cred))
			devices[hr.n_devices++] = (char *)name;
	}
	hr.devices = devices;
	rep->body_case = IOMMU_NEST__REPLY__BODY_HELLO;
	rep->hello = &hr;

	if (h->version != PROTOCOL_VERSION) {
		/* The reply still says which version we speak. */
		reply_error(rep, -EPROTONOSUPPORT, "protocol version %u not supported (daemon speaks %u)",
			    h->version, PROTOCOL_VERSION);
		srv->stats.request_errors++;
	} else {
		s->hello_done = true;
		snprintf(s->name, sizeof(s->name), "%s", h->client_name ? h->client_name : "");
	}
	session_send_reply(s, rep);
}
