/* SPDX-License-Identifier: MIT */
/*
 * Request routing: one handler per request kind. A handler fills the reply
 * and sends it itself (so reply bodies may live on its stack), or, for
 * Invalidate, queues the request in the batch, which answers it later.
 */
#ifndef IOMMU_NESTD_DISPATCH_H
#define IOMMU_NESTD_DISPATCH_H

#include "iommu_nest.pb-c.h"

struct session;
struct inv_request;

/* Decodes one packet and handles it. Returns 0, or -EPROTO for a broken frame. */
int dispatch_packet(struct session *s, const uint8_t *buf, size_t len);

/*
 * As dispatch_packet(), for a packet that came with nfds descriptors
 * (SCM_RIGHTS), which it takes over: whatever happens, each one is closed
 * by the time it returns, or handed to the one handler that takes a
 * descriptor (MapMemory, exactly one), which closes it itself.
 */
int dispatch_packet_fds(struct session *s, const uint8_t *buf, size_t len, int *fds,
			int nfds);

/*
 * For the handler of a request that carries a descriptor: takes the one
 * passed with the packet (the caller owns it from then on), or returns
 * -1 when the packet did not carry exactly one.
 */
int dispatch_take_fd(void);

typedef void (*request_handler)(struct session *s, const IommuNest__Request *req,
				IommuNest__Reply *rep);

void handle_hello(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_probe(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_alloc(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_destroy(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_attach(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_detach(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_invalidate(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_check_iotlb(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_sim_populate(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_sim_query(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_inject_fault(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_stats(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_reclaim(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_map_memory(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_unmap_memory(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_status(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_list_clients(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_list_hwpts(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);
void handle_reload(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep);

struct server;
/* Entries one Invalidate may carry: max_entries, or fewer if replies would not fit. */
uint32_t invalidate_max_entries(const struct server *srv);

/*
 * Answers an Invalidate request whose batch has run (or that failed early);
 * returns the number of its entries that failed.
 */
uint32_t invalidate_send_reply(struct session *s, struct inv_request *req);
/* Frees the reply encoder's reusable buffers (at shutdown). */
void invalidate_encoder_free(void);

#endif
