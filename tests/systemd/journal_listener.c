/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for journald's native socket (/run/systemd/journal/socket):
 * binds an AF_UNIX datagram socket at argv[1], decodes every entry of the
 * native protocol (KEY=value lines, or KEY\n<le64 size><data>\n for values
 * with newlines; an entry too big for a datagram comes as a memfd passed
 * with SCM_RIGHTS) and prints it as KEY=value lines (newlines in values as
 * "\n") followed by an empty line. Exits after an entry with
 * NESTD_EVENT=daemon_stop and a quiet 0.5 s, or after argv[2] seconds.
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_ENTRY (1 << 20)

static void print_value(const char *key, size_t klen, const char *v, size_t vlen)
{
	fwrite(key, 1, klen, stdout);
	putchar('=');
	for (size_t i = 0; i < vlen; i++) {
		if (v[i] == '\n')
			fputs("\\n", stdout);
		else
			putchar(v[i]);
	}
	putchar('\n');
}

/* Returns 1 if the entry is the daemon's stop event, -1 if malformed. */
static int print_entry(const char *p, size_t n)
{
	const char *end = p + n;
	int stop = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eq;
		uint64_t len = 0;

		if (!nl)
			nl = end;
		eq = memchr(p, '=', (size_t)(nl - p));
		if (eq) {
			print_value(p, (size_t)(eq - p), eq + 1, (size_t)(nl - eq - 1));
			if ((size_t)(nl - p) == strlen("NESTD_EVENT=daemon_stop") &&
			    !memcmp(p, "NESTD_EVENT=daemon_stop", (size_t)(nl - p)))
				stop = 1;
			p = nl + 1;
			continue;
		}
		/* Binary-safe form: KEY\n, 64-bit little-endian size, data, \n. */
		if (end - nl < 9)
			return -1;
		for (int i = 7; i >= 0; i--)
			len = len << 8 | (uint8_t)nl[1 + i];
		if (len > (uint64_t)(end - nl - 9))
			return -1;
		print_value(p, (size_t)(nl - p), nl + 9, (size_t)len);
		p = nl + 9 + len + 1;
	}
	putchar('\n');
	return stop;
}

/* One datagram, or the memfd it carries. Returns its length, -1 on error. */
static ssize_t receive(int fd, char *buf, size_t cap)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	struct cmsghdr *c;
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

	if (n < 0)
		return -1;
	c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
		int mfd;

		memcpy(&mfd, CMSG_DATA(c), sizeof(mfd));
		n = pread(mfd, buf, cap, 0);
		close(mfd);
	}
	return n;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int timeout_s = argc > 2 ? atoi(argv[2]) : 30;
	time_t deadline = time(NULL) + timeout_s;
	int stopping = 0, fd;
	char *buf = malloc(MAX_ENTRY);

	if (argc < 2 || strlen(argv[1]) >= sizeof(sa.sun_path) || !buf) {
		fprintf(stderr, "usage: journal_listener PATH [TIMEOUT_S]\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("journal socket");
		return 1;
	}
	/* journald's socket is writable by everyone. */
	chmod(argv[1], 0666);
	setvbuf(stdout, NULL, _IOFBF, 0);
	while (time(NULL) < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, stopping ? 500 : 1000);
		ssize_t n;

		if (r == 0 && stopping)
			break;
		if (r <= 0)
			continue;
		n = receive(fd, buf, MAX_ENTRY);
		if (n <= 0)
			continue;
		r = print_entry(buf, (size_t)n);
		if (r < 0)
			printf("MALFORMED=%zd bytes\n\n", n);
		stopping |= r > 0;
		fflush(stdout);
	}
	unlink(argv[1]);
	free(buf);
	return 0;
}
