/* SPDX-License-Identifier: MIT */
/*
 * Runs inside the test guest: zeroes a byte range of a block device with BLKZEROOUT (the
 * kernel sends virtio-blk WRITE_ZEROES when the device offers it), reads it back with
 * O_DIRECT and checks every byte is zero.
 * usage: blkzero DEVICE OFFSET LENGTH
 */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: blkzero DEVICE OFFSET LENGTH\n");
		return 2;
	}
	uint64_t range[2] = { strtoull(argv[2], NULL, 0), strtoull(argv[3], NULL, 0) };
	int fd = open(argv[1], O_RDWR | O_DIRECT);
	if (fd < 0 || ioctl(fd, BLKZEROOUT, range) < 0) {
		perror("blkzero: BLKZEROOUT");
		return 1;
	}
	void *buf;
	if (posix_memalign(&buf, 4096, 1 << 20))
		return 1;
	for (uint64_t off = 0; off < range[1]; off += 1 << 20) {
		size_t n = range[1] - off < (1 << 20) ? range[1] - off : (1 << 20);
		if (pread(fd, buf, n, (off_t)(range[0] + off)) != (ssize_t)n) {
			perror("blkzero: read");
			return 1;
		}
		for (size_t i = 0; i < n; i++) {
			if (((uint8_t *)buf)[i]) {
				fprintf(stderr, "blkzero: byte %llu is not zero\n",
					(unsigned long long)(range[0] + off + i));
				return 1;
			}
		}
	}
	printf("blkzero: %llu bytes at %llu zeroed and read back as zeroes\n",
	       (unsigned long long)range[1], (unsigned long long)range[0]);
	return 0;
}
