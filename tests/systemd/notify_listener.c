/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for systemd's NOTIFY_SOCKET: binds an AF_UNIX datagram socket
 * at argv[1] and prints every notification it receives, one per line, with
 * embedded newlines turned into '|'. Exits after STOPPING=1 has been seen
 * and the sender went quiet, or after argv[2] seconds.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int timeout_s = argc > 2 ? atoi(argv[2]) : 30;
	time_t deadline = time(NULL) + timeout_s;
	int stopping = 0, fd;
	char buf[4096];

	if (argc < 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify_listener PATH [TIMEOUT_S]\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("notify socket");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (time(NULL) < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, stopping ? 500 : 1000);
		ssize_t n;

		if (r == 0 && stopping)
			break;
		if (r <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (char *c = buf; *c; c++)
			if (*c == '\n')
				*c = '|';
		printf("%s\n", buf);
		if (strstr(buf, "STOPPING=1"))
			stopping = 1;
	}
	unlink(argv[1]);
	return 0;
}
