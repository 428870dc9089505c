/* SPDX-License-Identifier: MIT */
/*
 * The VMM side of the real-systemd tier (test-pid1.sh), run inside the
 * container against the packaged daemon and libiommu-nest:
 *
 *   hold SOCK DEV FILE [N]  allocate N (default 1) nested VT-d HWPTs on
 *                           DEV, fill pages [0, 64) of each model IOTLB
 *                           and invalidate [0, 16); write "ID TOKEN" per
 *                           HWPT to FILE, then keep the connection (and
 *                           the HWPTs) until the daemon goes away or a
 *                           signal ends this process
 *   reclaim SOCK ID TOKEN   reclaim; on success also check the model
 *                           survived exactly: [0, 16) gone, [16, 64)
 *                           cached. Prints "reclaim <rc>"; exits 0 when
 *                           the answer is 0 and the model is right, 3 for
 *                           -ENOENT, 1 otherwise
 *   ping SOCK               connect (Hello); prints "ping <rc>", exits 0
 *                           when served
 *   flood SOCK N FILE       open N raw connections (no Hello: a daemon
 *                           that cannot accept must not be waited for),
 *                           write how many connected to FILE, hold them
 *                           until a signal
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "iommu_nest.h"

#define PAGE 4096ULL

static int usage(void)
{
	fprintf(stderr, "usage: pid1_client hold SOCK DEV FILE [N] | reclaim SOCK ID TOKEN |\n"
			"       ping SOCK | flood SOCK N FILE\n");
	return 2;
}

static void hex(char *out, const uint8_t *tok)
{
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", tok[i]);
}

static int unhex(uint8_t *tok, const char *s)
{
	if (strlen(s) != 32)
		return -1;
	for (int i = 0; i < 16; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		tok[i] = (uint8_t)v;
	}
	return 0;
}

/* Writes FILE atomically, so the caller never reads half of it. */
static int publish(const char *file, const char *text)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f))
		return -1;
	return rename(tmp, file);
}

static int do_hold(const char *sock, const char *dev, const char *file, int n)
{
	struct iommu_nest *h;
	char text[4096] = "";
	int rc = iommu_nest_connect(sock, "pid1-hold", &h);

	if (rc) {
		fprintf(stderr, "connect: %s\n", strerror(-rc));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct iommu_nest_vtd_inv e = {
		    .addr = 0, .npages = 16, .flags = IOMMU_NEST_VTD_INV_FLAGS_LEAF};
		struct iommu_nest_entry_result r = {0};
		uint8_t tok[16];
		char line[64];
		uint32_t id;

		rc = iommu_nest_alloc_vtd_s1(h, dev, 0, 0x100000, 48, &id);
		if (!rc)
			rc = iommu_nest_last_resume_token(h, tok);
		if (!rc)
			rc = iommu_nest_sim_populate(h, id, 0, 64, IOMMU_NEST_SIM_IOTLB);
		if (!rc)
			rc = iommu_nest_invalidate(h, id, IOMMU_NEST_INV_DATA_VTD_S1, &e, 1, 0, &r,
						   NULL);
		if (rc || r.state != IOMMU_NEST_ENTRY_DONE) {
			fprintf(stderr, "hwpt %d: %s\n", i, strerror(rc ? -rc : EIO));
			return 1;
		}
		snprintf(line, sizeof(line), "%u ", id);
		hex(line + strlen(line), tok);
		strcat(line, "\n");
		strncat(text, line, sizeof(text) - strlen(text) - 1);
	}
	if (publish(file, text)) {
		perror(file);
		return 1;
	}
	/* Holds the session until the daemon dies (EOF) or a signal. */
	for (;;) {
		char b[1];

		if (recv(iommu_nest_fd(h), b, sizeof(b), MSG_PEEK) <= 0)
			break;
		pause();
	}
	return 0;
}

static int do_reclaim(const char *sock, const char *id_s, const char *tok_s)
{
	uint64_t io16 = ~0ULL, io48 = ~0ULL;
	struct iommu_nest *h;
	uint32_t id = (uint32_t)strtoul(id_s, NULL, 0);
	uint8_t tok[16];
	int rc;

	if (unhex(tok, tok_s))
		return usage();
	rc = iommu_nest_connect(sock, "pid1-reclaim", &h);
	if (rc) {
		printf("connect %d\n", rc);
		return 1;
	}
	rc = iommu_nest_reclaim(h, id, tok);
	printf("reclaim %d\n", rc);
	if (rc == -ENOENT)
		return 3;
	if (rc)
		return 1;
	if (iommu_nest_sim_query(h, id, 0, 16, &io16, NULL) ||
	    iommu_nest_sim_query(h, id, 16 * PAGE, 48, &io48, NULL))
		return 1;
	printf("cached [0,16) %llu [16,64) %llu\n", (unsigned long long)io16,
	       (unsigned long long)io48);
	iommu_nest_close(h);
	return io16 == 0 && io48 == 48 ? 0 : 1;
}

static int do_ping(const char *sock)
{
	struct iommu_nest *h;
	int rc = iommu_nest_connect(sock, "pid1-ping", &h);

	printf("ping %d\n", rc);
	if (!rc)
		iommu_nest_close(h);
	return rc ? 1 : 0;
}

static int do_flood(const char *sock, int n, const char *file)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct rlimit rl = {(rlim_t)n + 64, (rlim_t)n + 64};
	char text[32];
	int ok = 0;

	if (setrlimit(RLIMIT_NOFILE, &rl)) {
		perror("setrlimit");
		return 1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		if (fd < 0) {
			perror("socket");
			return 1;
		}
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			ok++;
		else
			close(fd); /* backlog full: EAGAIN */
	}
	snprintf(text, sizeof(text), "%d\n", ok);
	if (publish(file, text)) {
		perror(file);
		return 1;
	}
	pause();
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 5 && !strcmp(argv[1], "hold"))
		return do_hold(argv[2], argv[3], argv[4], argc > 5 ? atoi(argv[5]) : 1);
	if (argc == 5 && !strcmp(argv[1], "reclaim"))
		return do_reclaim(argv[2], argv[3], argv[4]);
	if (argc == 3 && !strcmp(argv[1], "ping"))
		return do_ping(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "flood"))
		return do_flood(argv[2], atoi(argv[3]), argv[4]);
	return usage();
}
