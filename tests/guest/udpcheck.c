/* SPDX-License-Identifier: MIT */
/*
 * Guest-side UDP checker, linked statically into the test initramfs.
 *   udpcheck send IP PORT COUNT SIZE   sends COUNT datagrams of SIZE bytes with a sequence
 *                                      number and a pattern; expects each back intact (from a
 *                                      reflector or an echo server); prints counts, exits 0
 *                                      only if every one came back intact.
 *   udpcheck echo PORT SECONDS         echoes datagrams back to their sender for SECONDS.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void fill(uint8_t *b, size_t n, uint32_t seq)
{
	memcpy(b, &seq, 4);
	for (size_t i = 4; i < n; i++)
		b[i] = (uint8_t)(seq * 31 + i * 7);
}

static int do_send(const char *ip, int port, int count, int size)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 1 };
	uint8_t out[65536], in[65536];
	int fd = socket(AF_INET, SOCK_DGRAM, 0), good = 0, bad = 0, lost = 0;

	if (size < 4 || size > 65000 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return 2;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < count; i++) {
		fill(out, (size_t)size, (uint32_t)i);
		if (send(fd, out, (size_t)size, 0) != size) {
			perror("send");
			return 1;
		}
		ssize_t n = recv(fd, in, sizeof(in), 0);
		if (n < 0) {
			lost++;
			continue;
		}
		if (n == size && memcmp(in, out, (size_t)size) == 0)
			good++;
		else
			bad++;
	}
	printf("udpcheck: sent %d good %d bad %d lost %d\n", count, good, bad, lost);
	return good == count ? 0 : 1;
}

static int do_echo(int port, int seconds)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 1 };
	uint8_t b[65536];
	int fd = socket(AF_INET, SOCK_DGRAM, 0), echoed = 0;
	time_t end = time(NULL) + seconds;

	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("bind");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (time(NULL) < end) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &fl);
		if (n > 0 && sendto(fd, b, (size_t)n, 0, (struct sockaddr *)&from, fl) == n)
			echoed++;
	}
	printf("udpcheck: echoed %d\n", echoed);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "send"))
		return do_send(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	if (argc == 4 && !strcmp(argv[1], "echo"))
		return do_echo(atoi(argv[2]), atoi(argv[3]));
	fprintf(stderr, "usage: udpcheck send IP PORT COUNT SIZE | echo PORT SECONDS\n");
	return 2;
}
