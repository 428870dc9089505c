/* SPDX-License-Identifier: MIT */
/*
 * The floors every daemon figure is compared with:
 *
 *  (a) a raw SOCK_SEQPACKET ping-pong: the client protobuf-encodes a real
 *      1-entry Invalidate Request, sends it, receives and decodes a real
 *      InvalidateReply of the size the daemon answers with; the peer only
 *      receives and sends. The cost of any socket broker at all.
 *  (b) the workload driven into the sim backend in-process, one entry per
 *      backend call, no daemon: what a VMM owning /dev/iommu does today.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend/backend.h"
#include "bench.h"
#include "util/config.h"
#include "iommu_nest.pb-c.h"
#include "backend/iommufd_uapi.h"

#define PP_BUF 4096

/* ---- (a) ping-pong ------------------------------------------------------- */

/* The request a client sends for one 1-page leaf invalidation. */
static size_t pack_request(uint64_t id, uint64_t addr, uint8_t *buf)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Invalidate inv = IOMMU_NEST__INVALIDATE__INIT;
	uint64_t npages = 1;
	uint32_t flags = IOMMU_NEST_VTD_INV_FLAGS_LEAF;

	inv.hwpt_id = 3;
	inv.data_type = IOMMU_NEST_INV_DATA_VTD_S1;
	inv.n_addr = inv.n_npages = inv.n_entry_flags = 1;
	inv.addr = &addr;
	inv.npages = &npages;
	inv.entry_flags = &flags;
	req.id = id;
	req.body_case = IOMMU_NEST__REQUEST__BODY_INVALIDATE;
	req.invalidate = &inv;
	return iommu_nest__request__pack(&req, buf);
}

/* The daemon's answer to it: one DONE entry. */
static size_t pack_reply(uint64_t id, uint8_t *buf)
{
	IommuNest__Reply rep = IOMMU_NEST__REPLY__INIT;
	IommuNest__InvalidateReply ir = IOMMU_NEST__INVALIDATE_REPLY__INIT;
	uint32_t state = IOMMU_NEST__ENTRY_STATE__ENTRY_DONE, hw = 0;
	int32_t err = 0;

	ir.entries_handled = 1;
	ir.entries_submitted = 1;
	ir.pages_flushed = 1;
	ir.n_state = ir.n_error = ir.n_hw_error = 1;
	ir.state = &state;
	ir.error = &err;
	ir.hw_error = &hw;
	rep.id = id;
	rep.body_case = IOMMU_NEST__REPLY__BODY_INVALIDATE;
	rep.invalidate = &ir;
	return iommu_nest__reply__pack(&rep, buf);
}

void floor_msg_sizes(size_t *req, size_t *rep)
{
	uint8_t buf[PP_BUF];

	*req = pack_request(1000, 0x100000000ull, buf);
	*rep = pack_reply(1000, buf);
}

/* The echo side: one process, every client socket, replies in order. */
static void echo_loop(int *fds, uint32_t n)
{
	uint8_t in[PP_BUF], out[PP_BUF];
	size_t len = pack_reply(1000, out);
	struct epoll_event ev;
	uint32_t open = n;
	int ep;

	if (n == 1) {
		/* Two processes, blocking calls: the textbook ping-pong. */
		while (recv(fds[0], in, sizeof(in), 0) > 0)
			if (send(fds[0], out, len, MSG_NOSIGNAL) < 0)
				break;
		return;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (uint32_t i = 0; i < n; i++) {
		ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = i };
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	while (open) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, -1);

		for (int j = 0; j < k; j++) {
			int fd = fds[evs[j].data.u32];
			ssize_t r;

			while ((r = recv(fd, in, sizeof(in), MSG_DONTWAIT)) > 0)
				send(fd, out, len, MSG_NOSIGNAL);
			if (r == 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				open--;
			}
		}
	}
}

struct pp_arg {
	int *cfds;
	uint32_t window;
};

static int pp_client(uint32_t idx, struct shared *sh, void *argp)
{
	struct pp_arg *a = argp;
	struct client_slot *cs = &sh->c[idx];
	int fd = a->cfds[idx];
	uint8_t sbuf[PP_BUF], rbuf[PP_BUF];
	uint64_t t0[64], id = 0, next_rx = 0;
	uint32_t w = a->window > 64 ? 64 : a->window;

	harness_ready(sh);
	while (!sh_stopping(sh) || next_rx < id) {
		IommuNest__Reply *rep;
		ssize_t r;

		/* Fill the window (the echo answers in order). */
		while (!sh_stopping(sh) && id - next_rx < w) {
			size_t len = pack_request(id, (0x100000ull + id) << 12, sbuf);

			t0[id % 64] = bench_now_ns();
			if (send(fd, sbuf, len, MSG_NOSIGNAL) < 0)
				return -errno;
			id++;
		}
		if (next_rx == id)
			break;
		r = recv(fd, rbuf, sizeof(rbuf), 0);
		if (r <= 0)
			return r ? -errno : -ECONNRESET;
		rep = iommu_nest__reply__unpack(NULL, (size_t)r, rbuf);
		if (!rep)
			return -EPROTO;
		iommu_nest__reply__free_unpacked(rep, NULL);
		if (sh_counting(sh)) {
			hist_add(&cs->lat, bench_now_ns() - t0[next_rx % 64]);
			cs->requests++;
			cs->entries++;
		}
		next_rx++;
	}
	return 0;
}

int floor_pingpong(uint32_t nclients, uint32_t window, double seconds, double warmup,
		   struct run_result *out)
{
	int *sfds = calloc(nclients, sizeof(int)), *cfds = calloc(nclients, sizeof(int));
	struct pp_arg a = { .cfds = cfds, .window = window };
	pid_t echo;
	int rc = 0;

	if (!sfds || !cfds) {
		free(sfds);
		free(cfds);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nclients; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
			rc = -errno;
			nclients = i;
			goto out;
		}
		sfds[i] = sv[0];
		cfds[i] = sv[1];
	}
	echo = fork();
	if (echo < 0) {
		rc = -errno;
		goto out;
	}
	if (echo == 0) {
		for (uint32_t i = 0; i < nclients; i++)
			close(cfds[i]);
		pin_server();
		echo_loop(sfds, nclients);
		_exit(0);
	}
	for (uint32_t i = 0; i < nclients; i++)
		close(sfds[i]);
	rc = harness_run(nclients, pp_client, &a, warmup, seconds, NULL, NULL, out);
	for (uint32_t i = 0; i < nclients; i++)
		close(cfds[i]);
	nclients = 0;
	if (wait_child(echo, 2000) < 0)
		fprintf(stderr, "bench: ping-pong echo did not exit\n");
out:
	for (uint32_t i = 0; i < nclients; i++) {
		close(sfds[i]);
		close(cfds[i]);
	}
	free(sfds);
	free(cfds);
	return rc;
}

/* ---- (b) in-process, one entry per backend call -------------------------- */

int bench_sim_vtd(const struct config **cfgp, struct backend **bep, uint32_t *hwpt)
{
	static struct config cfg;
	struct iommu_hwpt_vtd_s1 data = { .addr_width = 48, .pgtbl_addr = 0x10000000 };
	struct backend_alloc ba = {
		.data_type = IOMMU_HWPT_DATA_VTD_S1,
		.data = &data,
		.data_len = sizeof(data),
	};
	const char *why = "";
	uint32_t parent;
	int rc;

	config_defaults(&cfg);
	cfg.n_devices = 1;
	snprintf(cfg.devices[0].name, sizeof(cfg.devices[0].name), "vf0");
	cfg.devices[0].kind = DEVICE_KIND_VTD;
	rc = backend_open(&cfg, bep, &why);
	if (rc) {
		fprintf(stderr, "bench: in-process sim backend: %s\n", why);
		return rc;
	}
	rc = (*bep)->ops->alloc_nested(*bep, "vf0", &ba, hwpt, &parent);
	if (rc) {
		fprintf(stderr, "bench: in-process alloc: %s\n", strerror(-rc));
		(*bep)->ops->close(*bep);
		return rc;
	}
	if (cfgp)
		*cfgp = &cfg;
	return 0;
}

int floor_inproc(const struct workload *wl, double seconds, struct run_result *out)
{
	struct iommu_nest_vtd_inv *e = calloc(wl->batch, sizeof(*e));
	uint32_t hw[1], hwpt;
	struct wl_state st;
	struct backend *be;
	uint64_t t_end, t0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!e)
		return -ENOMEM;
	rc = bench_sim_vtd(NULL, &be, &hwpt);
	if (rc) {
		free(e);
		return rc;
	}
	wl_state_init(&st, 0);
	pin_server();
	t0 = bench_now_ns();
	t_end = t0 + (uint64_t)(seconds * 1e9);
	for (uint64_t loops = 0;; loops++) {
		if ((loops & 15) == 0 && bench_now_ns() >= t_end)
			break;
		wl->gen(&st, e, wl->batch);
		for (uint32_t i = 0; i < wl->batch; i++) {
			struct backend_inv inv = {
				.hwpt_id = hwpt,
				.data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
				.entry_len = sizeof(*e),
				.entry_num = 1,
				.entries = &e[i],
				.hw_error = hw,
			};

			if (be->ops->invalidate(be, &inv) || inv.entry_num != 1)
				out->errors++;
		}
		out->requests++;
		out->entries += wl->batch;
	}
	out->seconds = (double)(bench_now_ns() - t0) / 1e9;
	if (bench_server_cpu >= 0)
		pin_none();
	out->submitted = out->submissions = out->received = out->entries;
	be->ops->destroy(be, hwpt);
	be->ops->close(be);
	free(e);
	return rc;
}

/* ---- idle connections ---------------------------------------------------- */

int open_idle_connections(const char *path, int n, int *fds)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Hello hi = IOMMU_NEST__HELLO__INIT;
	uint8_t buf[PP_BUF];
	size_t len;
	static uint8_t rbuf[1 << 16];

	hi.version = IOMMU_NEST_PROTOCOL_VERSION;
	hi.client_name = "bench-idle";
	req.id = 1;
	req.body_case = IOMMU_NEST__REQUEST__BODY_HELLO;
	req.hello = &hi;
	len = iommu_nest__request__pack(&req, buf);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* Connect and say Hello on all of them first, then collect replies. */
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) ||
		    send(fds[i], buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
			int rc = -errno;

			if (fds[i] >= 0)
				close(fds[i]);
			for (int j = 0; j < i; j++)
				close(fds[j]);
			fprintf(stderr, "bench: idle connection %d: %s\n", i, strerror(-rc));
			return rc;
		}
	}
	for (int i = 0; i < n; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };

		if (poll(&p, 1, 5000) != 1 || recv(fds[i], rbuf, sizeof(rbuf), 0) <= 0) {
			for (int j = 0; j < n; j++)
				close(fds[j]);
			fprintf(stderr, "bench: no Hello reply on idle connection %d\n", i);
			return -ETIMEDOUT;
		}
	}
	return 0;
}
