/* SPDX-License-Identifier: MIT */
/*
 * Bad input against a running vhu-blk on an image file, black box, in the style of
 * vhu-net.c: each case does one hostile thing and expects the daemon to drop that connection,
 * stay alive, and hold no more fds or memory mappings than before. Finally a good session
 * must still write and read back a sector.
 *
 * usage: vhu-blk-bad PATH-TO-vhu-blk
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/bad.h"
#include "../common/drv.h"
#include "../t.h"

T_DEFINE;

static char sock_path[128];
static char log_path[128];
static char image_path[128];
/* Mappings of front-end files: memory, inflight buffer and dirty log. */
static const char *const front_end_maps[] = { "drv-mem", "drv-inflight", "drv-log", NULL };
static struct bad_daemon dm = {
	.name = "vhu-blk", .sock = sock_path, .log = log_path, .maps = front_end_maps
};

/* ---- a one-queue block device, with or without an inflight buffer ---- */

#define INFLIGHT_SIZE 4096 /* one queue of 64 entries needs 2112 bytes */

static int inflight_fd = -1;

/* SET_INFLIGHT_FD of an fd holding file_size bytes, said to hold mmap_size. Returns the
 * ack (0 accepted) or -errno. */
static int64_t set_inflight(struct drv *d, uint64_t file_size, uint64_t mmap_size)
{
	struct vhu_inflight in = { .mmap_size = mmap_size,
				   .num_queues = 1,
				   .queue_size = DRV_QSIZE };
	uint64_t pf = d->protocol_features | 1ULL << VHU_PROTO_F_INFLIGHT_SHMFD;

	if (inflight_fd >= 0)
		close(inflight_fd);
	inflight_fd = memfd_create("drv-inflight", MFD_CLOEXEC);
	if (inflight_fd < 0 || ftruncate(inflight_fd, (off_t)file_size) < 0)
		return -errno;
	int ret = drv_send(d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0);
	if (ret)
		return ret;
	return drv_call_ack(d, VHU_REQ_SET_INFLIGHT_FD, &in, sizeof(in), &inflight_fd, 1);
}

static int blk_start(struct drv *d, bool inflight)
{
	d->nq = 1;
	if (drv_start(d, false, ~0ull))
		return -1;
	if (inflight && set_inflight(d, INFLIGHT_SIZE, INFLIGHT_SIZE) != 0)
		return -1;
	return 0;
}

/* Request `slot` (header and status in the ring's buffer area) with len data bytes at data_gpa.
 */
static void blk_req(struct drv *d, unsigned slot, uint32_t type, uint64_t sector, uint64_t data_gpa,
		    uint32_t len)
{
	struct virtio_blk_outhdr *h = (void *)drv_buf(d, 0, 2 * slot);
	uint64_t a[3] = { drv_buf_gpa(d, 0, 2 * slot), data_gpa, drv_buf_gpa(d, 0, 2 * slot + 1) };
	uint32_t l[3] = { sizeof(*h), len, 1 };
	uint16_t f[3] = { 0, type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0, VRING_DESC_F_WRITE };

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	*drv_buf(d, 0, 2 * slot + 1) = 0xff;
	drv_add_raw(d, 0, a, l, f, 3);
}

static uint8_t blk_status(struct drv *d, unsigned slot)
{
	return *drv_buf(d, 0, 2 * slot + 1);
}

/* Guest addresses of data buffers: in the first half of the memory, and in the second half
 * (lost when the front-end truncates its memfd to half). */
static uint64_t data_low(unsigned i)
{
	return drv_gpa(0x180000 + (uint64_t)i * 4096);
}

static uint64_t data_high(unsigned i)
{
	return drv_gpa(DRV_MEM_SIZE / 2 + 0x10000 + (uint64_t)i * 4096);
}

/* ---- cases ---- */

/* The inflight buffer's fd must hold what the front-end says it does: an fd shorter than
 * mmap_size killed the daemon (SIGBUS) when the rings started on it. Refused now. */
static int inflight_short(struct drv *d, uint64_t file_size)
{
	if (blk_start(d, false))
		return -1;
	int64_t ack = set_inflight(d, file_size, 2 * INFLIGHT_SIZE);
	if (ack == 0) {
		T_FAILF("SET_INFLIGHT_FD of a %llu-byte fd for %u bytes accepted",
			(unsigned long long)file_size, 2 * INFLIGHT_SIZE);
		return -1;
	}
	return 0;
}

static int inflight_empty_fd(struct drv *d)
{
	return inflight_short(d, 0);
}

static int inflight_half_fd(struct drv *d)
{
	return inflight_short(d, INFLIGHT_SIZE);
}

/* Eight reads in flight, then the front-end truncates its memory to 0 and kicks again: the
 * queue thread faults (status bytes, the ring) and the connection is dropped. */
static int memory_shrunk_in_flight(struct drv *d)
{
	if (blk_start(d, true))
		return -1;
	for (unsigned i = 0; i < 8; i++)
		blk_req(d, i, VIRTIO_BLK_T_IN, i * 8, data_high(i), 4096);
	if (ftruncate(d->memfd, 0) < 0)
		return -1;
	drv_kick(d, 0);
	return 0;
}

/* The inflight buffer truncated after SET_INFLIGHT_FD: the next request's entry faults. */
static int inflight_shrunk(struct drv *d)
{
	if (blk_start(d, true))
		return -1;
	if (ftruncate(inflight_fd, 0) < 0)
		return -1;
	blk_req(d, 0, VIRTIO_BLK_T_IN, 0, data_low(0), 4096);
	return 0;
}

/*
 * Memory truncated to half with the rings in the first half: the kernel does the I/O into
 * the lost buffers (io_uring), which fails with EFAULT rather than SIGBUS; each such request
 * completes with IOERR and the connection goes on serving the rest.
 */
static int memory_half_io(void)
{
	struct drv d;
	uint32_t id, len;

	ASSERT_OK(drv_open(&d, sock_path));
	ASSERT_OK(blk_start(&d, true));
	ASSERT_OK(ftruncate(d.memfd, DRV_MEM_SIZE / 2));
	blk_req(&d, 0, VIRTIO_BLK_T_IN, 0, data_high(0), 4096);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(blk_status(&d, 0), VIRTIO_BLK_S_IOERR);
	blk_req(&d, 1, VIRTIO_BLK_T_OUT, 0, data_high(1), 4096);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(blk_status(&d, 1), VIRTIO_BLK_S_IOERR);
	blk_req(&d, 2, VIRTIO_BLK_T_IN, 0, data_low(0), 4096);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(blk_status(&d, 2), VIRTIO_BLK_S_OK);
	drv_close(&d);
	return bad_check_clean(&dm, "memory truncated to half");
}

/* ---- live migration: the dirty log ---- */

/* SET_LOG_BASE of fd with {size, offset}: the u64 reply, or -1 when none came. */
static int64_t log_base(struct drv *d, int fd, uint64_t size, uint64_t offset)
{
	struct vhu_log_desc ld = { size, offset };
	struct vhu_hdr h;
	uint64_t v;

	if (drv_send(d, VHU_REQ_SET_LOG_BASE, VHU_VERSION, &ld, sizeof(ld), &fd, 1) ||
	    drv_recv(d, &h, &v, 8, 3000) != 8 || h.request != VHU_REQ_SET_LOG_BASE)
		return -1;
	return (int64_t)v;
}

static bool page_marked(const uint8_t *log, uint64_t gpa)
{
	return log[gpa / 4096 / 8] >> (gpa / 4096 % 8) & 1;
}

/*
 * Hostile logs are refused and the connection goes on: one too small for the memory, one
 * larger than its file, an offset past it or wrapping, a pipe, and SET_LOG_BASE before
 * LOG_SHMFD. A good one then logs a read: its data page and status byte's page. Last, the
 * front-end truncates the log under the running device: the SIGBUS guard drops this
 * connection alone and the daemon serves on, with nothing left mapped.
 */
static int dirty_log(void)
{
	const uint64_t need = (DRV_GPA_BASE + DRV_MEM_SIZE) / 32768;
	struct drv d;
	uint32_t id, len;
	int lfd, p[2];
	uint8_t *log;

	ASSERT_OK(drv_open(&d, sock_path));
	ASSERT_OK(blk_start(&d, false));
	lfd = memfd_create("drv-log", MFD_CLOEXEC);
	ASSERT_TRUE(lfd >= 0 && ftruncate(lfd, 4096) == 0);
	log = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, lfd, 0);
	ASSERT_TRUE(log != MAP_FAILED);
	struct vhu_log_desc ld = { need, 0 };
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_LOG_BASE, &ld, sizeof(ld), &lfd, 1), ENOPROTOOPT);
	uint64_t pf = d.protocol_features | 1ULL << VHU_PROTO_F_LOG_SHMFD;
	ASSERT_OK(drv_send(&d, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, 8, NULL, 0));
	d.protocol_features = pf;
	ASSERT_TRUE(log_base(&d, lfd, need - 1, 0) > 0);
	ASSERT_TRUE(log_base(&d, lfd, 8192, 0) > 0);
	ASSERT_TRUE(log_base(&d, lfd, need, 4096) > 0);
	ASSERT_TRUE(log_base(&d, lfd, need, UINT64_MAX - 4) > 0);
	ASSERT_OK(pipe(p));
	ASSERT_TRUE(log_base(&d, p[1], need, 0) > 0);
	close(p[0]);
	close(p[1]);
	ASSERT_EQ(log_base(&d, lfd, need, 0), 0);
	uint64_t f = d.features | 1ULL << VHU_F_LOG_ALL;
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_FEATURES, &f, 8, NULL, 0), 0);
	blk_req(&d, 0, VIRTIO_BLK_T_IN, 0, data_low(3), 4096);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(blk_status(&d, 0), VIRTIO_BLK_S_OK);
	ASSERT_TRUE(page_marked(log, data_low(3)));
	ASSERT_TRUE(page_marked(log, drv_buf_gpa(&d, 0, 1)));
	ASSERT_TRUE(!page_marked(log, data_low(5)));
	/* The log shrinks under the device. */
	ASSERT_OK(ftruncate(lfd, 0));
	blk_req(&d, 1, VIRTIO_BLK_T_IN, 0, data_low(4), 4096);
	ASSERT_TRUE(closed_by_peer(d.fd, 3000));
	munmap(log, 4096);
	close(lfd);
	drv_close(&d);
	return bad_check_clean(&dm, "dirty log");
}

/* Write a sector, read it back. */
static int good_session(void)
{
	struct drv d;
	uint32_t id, len;

	ASSERT_OK(drv_open(&d, sock_path));
	ASSERT_OK(blk_start(&d, true));
	uint8_t *w = d.mem + (data_low(0) - DRV_GPA_BASE), *r = w + 4096;
	for (unsigned i = 0; i < 4096; i++)
		w[i] = (uint8_t)(i * 7 + 1);
	blk_req(&d, 0, VIRTIO_BLK_T_OUT, 16, data_low(0), 4096);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(blk_status(&d, 0), VIRTIO_BLK_S_OK);
	memset(r, 0, 4096);
	blk_req(&d, 1, VIRTIO_BLK_T_IN, 16, data_low(1), 4096);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(blk_status(&d, 1), VIRTIO_BLK_S_OK);
	ASSERT_OK(memcmp(w, r, 4096));
	drv_close(&d);
	return bad_check_clean(&dm, "good session");
}

/* ---- the write cache: mode from the negotiated features, SET_CONFIG, RESET_DEVICE ---- */

#define WCE_OFF offsetof(struct virtio_blk_config, wce)

/* len bytes of config space at off into buf; 0 or -1. */
static int get_config(struct drv *d, uint32_t off, void *buf, uint32_t len)
{
	struct vhu_config c = { .offset = off, .size = len };
	struct vhu_hdr h;

	if (drv_send(d, VHU_REQ_GET_CONFIG, VHU_VERSION, &c, VHU_CONFIG_HDR_SIZE + len, NULL, 0) ||
	    drv_recv(d, &h, &c, sizeof(c), 3000) != (int)(VHU_CONFIG_HDR_SIZE + len))
		return -1;
	memcpy(buf, c.region, len);
	return 0;
}

/* The writeback byte, or -1. */
static int get_wce(struct drv *d)
{
	uint8_t v;
	return get_config(d, WCE_OFF, &v, 1) ? -1 : v;
}

/* SET_CONFIG with NEED_REPLY; the ack (0 accepted). */
static int64_t set_config(struct drv *d, uint32_t flags, uint32_t off, const void *buf,
			  uint32_t len)
{
	struct vhu_config c = { .offset = off, .size = len, .flags = flags };

	memcpy(c.region, buf, len);
	return drv_call_ack(d, VHU_REQ_SET_CONFIG, &c, VHU_CONFIG_HDR_SIZE + len, NULL, 0);
}

/*
 * virtio-blk "Device Initialization" / "Device Operation": neither CONFIG_WCE nor FLUSH is
 * writethrough (every write stable when completed); CONFIG_WCE without FLUSH "MUST initialize
 * writeback to 0"; FLUSH alone is writeback; both: the initial value (1 without --writethrough).
 */
static int write_cache_modes(void)
{
	const uint64_t wce = 1ULL << VIRTIO_BLK_F_CONFIG_WCE, flush = 1ULL << VIRTIO_BLK_F_FLUSH;
	static const struct {
		uint64_t without;
		int wb;
	} cases[] = {
		{ wce | flush, 0 },
		{ flush, 0 },
		{ wce, 1 },
		{ 0, 1 },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct drv d;
		ASSERT_OK(drv_open(&d, sock_path));
		d.nq = 1;
		ASSERT_OK(drv_start(&d, false, ~cases[i].without));
		if (get_wce(&d) != cases[i].wb) {
			T_FAILF("CONFIG_WCE %d, FLUSH %d negotiated: writeback %d, expected %d",
				!!(d.features & wce), !!(d.features & flush), get_wce(&d),
				cases[i].wb);
			drv_close(&d);
			return -1;
		}
		drv_close(&d);
	}
	return bad_check_clean(&dm, "write cache modes");
}

/* SET_CONFIG: the guest's write of writeback (flags 0) is taken and read back, survives
 * SET_FEATURES sent again (QEMU restarts the device so), and a write to a read-only field is
 * refused; a migration write (flags 1) is taken when it matches this disk, refused when it
 * does not; RESET_DEVICE puts writeback back to 1, and without CONFIG_WCE negotiated the
 * guest may not write it. */
static int set_config_paths(void)
{
	uint8_t zero = 0, one = 1, two = 2, cfg[sizeof(struct virtio_blk_config)];
	uint32_t id, len;
	struct drv d;

	ASSERT_OK(drv_open(&d, sock_path));
	d.nq = 1;
	ASSERT_OK(drv_start(&d, false, ~0ull));
	ASSERT_EQ(get_wce(&d), 1);
	ASSERT_EQ(set_config(&d, 0, WCE_OFF, &zero, 1), 0);
	ASSERT_EQ(get_wce(&d), 0);
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_SET_FEATURES, &d.features, 8, NULL, 0), 0);
	ASSERT_EQ(get_wce(&d), 0);
	/* A write in writethrough mode (RWF_DSYNC) completes as any other. */
	blk_req(&d, 0, VIRTIO_BLK_T_OUT, 8, data_low(0), 4096);
	ASSERT_EQ(drv_get_used(&d, 0, &id, &len, 3000), 1);
	ASSERT_EQ(blk_status(&d, 0), VIRTIO_BLK_S_OK);
	/* Read-only fields and values other than 0 and 1 are refused, nothing changes. */
	ASSERT_TRUE(set_config(&d, 0, 0, &zero, 1) > 0);
	ASSERT_TRUE(set_config(&d, 0, WCE_OFF, &two, 1) > 0);
	ASSERT_TRUE(set_config(&d, 2, WCE_OFF, &one, 1) > 0);
	ASSERT_EQ(get_wce(&d), 0);
	/* Migration: the whole config of this very disk, writeback 1, is taken. */
	ASSERT_OK(get_config(&d, 0, cfg, sizeof(cfg)));
	cfg[WCE_OFF] = 1;
	ASSERT_EQ(set_config(&d, 1, 0, cfg, sizeof(cfg)), 0);
	ASSERT_EQ(get_wce(&d), 1);
	/* ... and another disk's (a different capacity) is refused. */
	cfg[WCE_OFF] = 0;
	cfg[0] ^= 1;
	ASSERT_TRUE(set_config(&d, 1, 0, cfg, sizeof(cfg)) > 0);
	ASSERT_EQ(get_wce(&d), 1);
	/* RESET_DEVICE: writeback back to its initial value. */
	ASSERT_EQ(set_config(&d, 0, WCE_OFF, &zero, 1), 0);
	ASSERT_EQ(get_wce(&d), 0);
	ASSERT_EQ(drv_call_ack(&d, VHU_REQ_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	ASSERT_EQ(get_wce(&d), 1);
	/* No features negotiated since: writeback is not the guest's to write. */
	ASSERT_TRUE(set_config(&d, 0, WCE_OFF, &zero, 1) > 0);
	ASSERT_EQ(get_wce(&d), 1);
	drv_close(&d);
	return bad_check_clean(&dm, "SET_CONFIG");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s VHU-BLK\n", argv[0]);
		return T_FAIL;
	}
	snprintf(sock_path, sizeof(sock_path), "/tmp/vhu-blk-bad-%d.sock", getpid());
	snprintf(log_path, sizeof(log_path), "/tmp/vhu-blk-bad-%d.log", getpid());
	snprintf(image_path, sizeof(image_path), "/tmp/vhu-blk-bad-%d.img", getpid());
	if (bad_make_image(image_path, 16 << 20))
		return T_FAIL;
	bad_start(&dm, argv[1],
		  (const char *[]){ "--socket-path", sock_path, "--image", image_path, NULL },
		  false);

	static const struct {
		const char *name;
		bad_fn fn;
	} cases[] = {
		{ "SET_INFLIGHT_FD: empty fd", inflight_empty_fd },
		{ "SET_INFLIGHT_FD: fd shorter than mmap_size", inflight_half_fd },
		{ "memory truncated to 0 right after eight reads were posted",
		  memory_shrunk_in_flight },
		{ "inflight buffer truncated after SET_INFLIGHT_FD", inflight_shrunk },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		bad_run_case(&dm, cases[i].name, cases[i].fn);
	RUN(memory_half_io);
	RUN(write_cache_modes);
	RUN(set_config_paths);
	RUN(dirty_log);
	RUN(good_session);

	bad_stop(&dm);
	if (!t_failed) {
		/* The guard caught the truncations, and said which mapping. */
		if (!grep_log(log_path, "shrank under the device: SIGBUS at .* in region gpa") ||
		    !grep_log(log_path,
			      "shrank under the device: SIGBUS at .* in the inflight buffer") ||
		    !grep_log(log_path, "shrank under the device: SIGBUS at .* in the dirty log"))
			T_FAILF("no SIGBUS guard messages in the daemon log");
	}
	bad_finish(&dm, 40);
	if (inflight_fd >= 0)
		close(inflight_fd);
	unlink(image_path);
	T_MAIN_END();
}
