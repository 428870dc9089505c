/* SPDX-License-Identifier: MIT */
/* Hello: the handshake. */
#include <errno.h>
#include <stdio.h>

#include "net/server.h"
#include "net/session.h"
#include "req/handlers.h"

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

/* Only the devices this peer may use. */
static size_t allowed_devices(const struct session *s, char **devices)
{
	const struct server *srv = s->srv;
	uint32_t n_dev = srv->be->ops->n_devices(srv->be);
	size_t n = 0;

	for (uint32_t i = 0; i < n_dev && n < CONFIG_MAX_DEVICES; i++) {
		const char *name = srv->be->ops->device_name(srv->be, i);
		const struct config_device *d = config_find_device(srv->cfg, name);

		if (d && policy_allows(&d->allow, &s->cred))
			devices[n++] = (char *)name;
	}
	return n;
}

int handle_hello(struct req_ctx *c)
{
	const IommuNest__Hello *h = c->msg->hello;
	struct server *srv = c->srv;
	struct session *s = c->s;
	__typeof__(c->out->body.hello) *b = &c->out->body.hello;
	IommuNest__HelloReply *hr = &b->hr;

	iommu_nest__hello_reply__init(hr);
	hr->version = PROTOCOL_VERSION;
	hr->backend = (char *)srv->be->ops->name;
	for (uint32_t i = 0; i < srv->caps.n_hwpt_types; i++)
		b->hwpt_types[i] = srv->caps.hwpt_types[i];
	for (uint32_t i = 0; i < srv->caps.n_inv_types; i++)
		b->inv_types[i] = srv->caps.inv_types[i];
	hr->n_hwpt_data_types = srv->caps.n_hwpt_types;
	hr->hwpt_data_types = b->hwpt_types;
	hr->n_inv_data_types = srv->caps.n_inv_types;
	hr->inv_data_types = b->inv_types;
	hr->max_entries = invalidate_max_entries(srv);
	hr->max_message_size = srv->cfg->max_message_size;
	hr->capabilities = capability_bits(srv);
	hr->n_devices = allowed_devices(s, b->devices);
	hr->devices = b->devices;
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_HELLO;
	c->rep->hello = hr;

	if (h->version != PROTOCOL_VERSION) {
		/* The reply still says which version we speak. */
		reply_error(c->rep, -EPROTONOSUPPORT,
			    "protocol version %u not supported (daemon speaks %u)", h->version,
			    PROTOCOL_VERSION);
		return -EPROTONOSUPPORT;
	}
	s->hello_done = true;
	snprintf(s->name, sizeof(s->name), "%s", h->client_name ? h->client_name : "");
	return 0;
}
