/* SPDX-License-Identifier: MIT */
/*
 * Ring corner cases against a running vhu-net --loopback, black box:
 * - a tx ring whose kick is VRING_NOFD ("poll this ring") must be polled while the daemon has
 *   nothing else to do: its frames come back with no other event to wake the loop, and the
 *   control plane still answers meanwhile;
 * - with MRG_RXBUF, a first receive buffer shorter than the virtio-net header is given back
 *   used with length 0 and untouched, the frame counted as a drop, not as delivered.
 *
 * usage: vhu-net-rings PATH-TO-vhu-net
 */
#include <errno.h>
#include <linux/virtio_net.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/bad.h"
#include "../common/drv.h"
#include "../t.h"

T_DEFINE;

static pid_t daemon_pid;
static char sock_path[128], log_path[128], stats_path[128];

/* Puts a 60-byte UDP frame (after a zeroed 12-byte header) on tx, in slot `slot`. */
static int send_frame(struct drv *d, unsigned slot, uint8_t tag)
{
	static const uint8_t src[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	uint8_t frame[60] = { 0x52, 0x54, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0x45 };
	uint8_t *f = drv_buf(d, 1, slot);

	memcpy(frame + 6, src, 6);
	frame[14 + 9] = 17;
	frame[59] = tag;
	memset(f, 0, 12);
	memcpy(f + 12, frame, sizeof(frame));
	return drv_add_buf(d, 1, slot, 12 + sizeof(frame), false);
}

/* The rx counters vhu-net prints on SIGUSR1 for queue 0. */
static int rx_stats(unsigned long long *packets, unsigned long long *drops)
{
	char line[256];
	bool found = false;

	kill(daemon_pid, SIGUSR1);
	msleep(200);
	FILE *f = fopen(stats_path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "  queue 0 rx: packets %llu bytes %*u drops %llu", packets,
			   drops) == 2)
			found = true;
	fclose(f);
	return found ? 0 : -1;
}

static struct drv d;

/* Runs fn on a fresh connection, closed afterwards whatever happened. */
static int with_conn(int (*fn)(void))
{
	ASSERT_OK(drv_open(&d, sock_path));
	int ret = drv_start(&d, false, ~0ull);
	if (ret == 0)
		ret = fn();
	else
		T_FAILF("drv_start: %s", strerror(-ret));
	drv_close(&d);
	msleep(100); /* vhu-net takes one front-end per port: let it see the hang-up */
	return ret;
}

static int nofd_tx(void)
{
	uint64_t u = 1 | VHU_VRING_NOFD, v;
	uint32_t id, len;

	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_VRING_KICK, &u, 8, NULL, 0), 0);
	for (unsigned i = 0; i < 3; i++) {
		/* rx buffer first (its kick is an event), then let the loop go idle. */
		drv_add_buf(&d, 0, i, 2048, true);
		msleep(200);
		/* The tx kick goes to the eventfd vhu-net no longer has: only polling sees it. */
		int head = send_frame(&d, i, (uint8_t)i);
		ASSERT_EQ(drv_get_used(&d, 1, &id, &len, 1000), 1);
		ASSERT_EQ(id, head);
		ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 1000), 1);
		ASSERT_EQ(len, 12 + 60);
		ASSERT_EQ(drv_buf(&d, 0, i)[12 + 59], i);
	}
	/* Polling does not starve the control plane. */
	uint64_t t = now_ms();
	for (unsigned i = 0; i < 20; i++)
		ASSERT_OK(drv_get_u64(&d, VHU_REQ_GET_FEATURES, &v));
	if (now_ms() - t > 1000) {
		T_FAILF("20 GET_FEATURES took %llu ms", (unsigned long long)(now_ms() - t));
		return -1;
	}
	return 0;
}

static int nofd_tx_polled(void)
{
	return with_conn(nofd_tx);
}

static int mrg_short_first(void)
{
	unsigned long long pk0, dr0, pk1, dr1;
	uint32_t id, len;

	ASSERT_TRUE(d.features & (1ull << VIRTIO_NET_F_MRG_RXBUF));
	ASSERT_OK(rx_stats(&pk0, &dr0));
	/* A 4-byte first buffer, then room enough after it. */
	uint8_t *small = drv_buf(&d, 0, 0);
	memset(small, 0xee, 16);
	int head = drv_add_buf(&d, 0, 0, 4, true);
	drv_add_buf(&d, 0, 1, 2048, true);
	send_frame(&d, 0, 1);
	ASSERT_EQ(drv_get_used(&d, 1, &id, &len, 2000), 1);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 2000), 1);
	ASSERT_EQ(id, head);
	ASSERT_EQ(len, 0);
	for (unsigned i = 0; i < 16; i++)
		ASSERT_EQ(small[i], 0xee); /* no partial header */
	ASSERT_OK(rx_stats(&pk1, &dr1));
	ASSERT_EQ(pk1, pk0);
	ASSERT_EQ(dr1, dr0 + 1);
	/* The ring goes on: the next frame lands in the good buffer, one of one. */
	send_frame(&d, 1, 2);
	ASSERT_EQ(drv_get_used(&d, 1, &id, &len, 2000), 1);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 2000), 1);
	ASSERT_EQ(len, 12 + 60);
	struct virtio_net_hdr_mrg_rxbuf *h = (void *)drv_buf(&d, 0, 1);
	ASSERT_EQ(h->num_buffers, 1);
	ASSERT_EQ(drv_buf(&d, 0, 1)[12 + 59], 2);
	ASSERT_OK(rx_stats(&pk1, &dr1));
	ASSERT_EQ(pk1, pk0 + 1);
	return 0;
}

static int mrg_short_first_rx(void)
{
	return with_conn(mrg_short_first);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s VHU-NET\n", argv[0]);
		return T_FAIL;
	}
	snprintf(sock_path, sizeof(sock_path), "/tmp/vhu-net-rings-%d.sock", getpid());
	snprintf(log_path, sizeof(log_path), "/tmp/vhu-net-rings-%d.log", getpid());
	snprintf(stats_path, sizeof(stats_path), "/tmp/vhu-net-rings-%d.out", getpid());
	daemon_pid = spawn_daemon(
		argv[1], (const char *[]){ "--socket-path", sock_path, "--loopback", NULL },
		log_path, stats_path, false);
	wait_socket(sock_path);

	RUN(nofd_tx_polled);
	RUN(mrg_short_first_rx);

	int status = stop_daemon(daemon_pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		T_FAILF("vhu-net exit status 0x%x", status);
	if (t_failed) {
		char files[300];
		snprintf(files, sizeof(files), "%s %s", log_path, stats_path);
		tail_log(files, 30);
	}
	unlink(log_path);
	unlink(stats_path);
	unlink(sock_path);
	T_MAIN_END();
}
