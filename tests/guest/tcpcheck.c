/* SPDX-License-Identifier: MIT */
/*
 * Guest-side TCP stream checker, linked statically into the test initramfs.
 *   tcpcheck serve PORT BYTES SECONDS  accepts one connection within SECONDS, reads BYTES bytes
 *                                      and checks every one against the pattern (its offset in
 *                                      the stream decides it), answers one byte 'K' when all
 *                                      were right; exits 0 only then.
 *   tcpcheck send IP PORT BYTES SECONDS  connects (retrying for up to SECONDS), sends BYTES
 *                                      bytes of the pattern, and waits for the 'K'; prints the
 *                                      rate, exits 0 only with the 'K'.
 * The pattern depends on the offset in ways a lost, repeated or reordered segment breaks.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static uint8_t pat(uint64_t off)
{
	return (uint8_t)(off * 131 + (off >> 8) * 7 + (off >> 16) * 3 + 1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int serve(int port, uint64_t bytes, int secs)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = secs };
	static uint8_t buf[1 << 16];
	uint64_t got = 0;
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0), fd;

	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(ls, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0) {
		perror("tcpcheck: bind/listen");
		return 1;
	}
	fd = accept(ls, NULL, NULL);
	if (fd < 0) {
		perror("tcpcheck: accept");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < bytes) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			fprintf(stderr, "tcpcheck: stream ended at %llu of %llu bytes\n",
				(unsigned long long)got, (unsigned long long)bytes);
			return 1;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != pat(got + (uint64_t)i)) {
				fprintf(stderr, "tcpcheck: byte %llu wrong\n",
					(unsigned long long)(got + (uint64_t)i));
				return 1;
			}
		}
		got += (uint64_t)n;
	}
	if (send(fd, "K", 1, 0) != 1)
		return 1;
	printf("tcpcheck: received %llu bytes, all checked\n", (unsigned long long)got);
	close(fd);
	return 0;
}

static int do_send(const char *ip, int port, uint64_t bytes, int secs)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = secs };
	static uint8_t buf[1 << 16];
	double t0 = now(), t1;
	uint64_t sent = 0;
	char k = 0;
	int fd = -1;

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return 2;
	while (now() - t0 < secs) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(fd);
		fd = -1;
		usleep(200000);
	}
	if (fd < 0) {
		fprintf(stderr, "tcpcheck: could not connect to %s:%d\n", ip, port);
		return 1;
	}
	/* A path that loses every frame of some size (a jumbo frame dropped on the way) leaves
	 * send() blocked while TCP retransmits: it gives up after secs without progress too. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	t0 = now();
	while (sent < bytes) {
		size_t n = bytes - sent < sizeof(buf) ? (size_t)(bytes - sent) : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(sent + i);
		ssize_t w = send(fd, buf, n, 0);
		if (w <= 0) {
			perror("tcpcheck: send");
			return 1;
		}
		sent += (uint64_t)w;
	}
	shutdown(fd, SHUT_WR);
	if (recv(fd, &k, 1, 0) != 1 || k != 'K') {
		fprintf(stderr, "tcpcheck: the receiver did not confirm\n");
		return 1;
	}
	t1 = now();
	printf("tcpcheck: sent %llu bytes in %.2fs (%.1f MB/s), confirmed\n",
	       (unsigned long long)sent, t1 - t0, (double)sent / 1e6 / (t1 - t0));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "serve"))
		return serve(atoi(argv[2]), strtoull(argv[3], NULL, 0), atoi(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "send"))
		return do_send(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 0), atoi(argv[5]));
	fprintf(stderr, "usage: tcpcheck serve PORT BYTES SECONDS | send IP PORT BYTES SECONDS\n");
	return 2;
}
