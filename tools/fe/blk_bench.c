/* SPDX-License-Identifier: MIT */
/*
 * vhu-fe blk-bench: fio-like load on a virtio-blk front-end.
 *
 * Each queue keeps `iodepth` requests in flight (header | data | status). With --verify every
 * block written carries its own number, a generation and a pattern derived from both, every
 * read of a block with a known generation is compared, no two requests touch one block at the
 * same time, and before the timed run the other request types are checked once: GET_ID,
 * FLUSH, WRITE_ZEROES (then read back as zeros) and DISCARD, each when offered.
 *
 * One thread serves every queue, busy-polling the used rings.
 *
 * --log-check: logging on (logcheck.c); every status byte, and the data of every read and
 * GET_ID that succeeded, counts as written by the back-end.
 */
#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fe.h"

#define MAX_QUEUES 16
#define MAX_DEPTH  256
#define SECTOR	   512
#define MAGIC	   0x564855424c4b0000ull /* "VHUBLK" */

enum rw { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW };
static const char *const rw_names[] = { "read", "write", "randread", "randwrite", "randrw" };

struct req {
	struct virtio_blk_outhdr *hdr;
	uint8_t *data;
	uint8_t *status;
	uint64_t block;
	uint32_t gen; /* write: the generation being written */
	uint32_t type;
	uint32_t in_len; /* writable data bytes (IN, GET_ID) */
	double t0;
	bool busy;
};

struct queue {
	struct vhu_drvq *q;
	struct req r[MAX_DEPTH];
	unsigned inflight;
	uint64_t seq_next; /* sequential workloads: next block */
};

struct blk {
	struct vhu_frontend *fe;
	enum rw rw;
	unsigned bs, depth, nq, rwmix;
	uint64_t nblocks, capacity;
	bool verify, ro;
	uint32_t *gen; /* per block: last generation written and completed; 0 unknown */
	uint8_t *busy; /* per block: a request in flight */
	uint32_t next_gen;
	uint64_t rng;
	uint64_t ios, bytes, errors, verify_errors, reads_checked;
	unsigned reconnects;
	int reconnect_ms; /* 0: a back-end that goes away ends the run */
	double next_check;
	struct fe_logcheck lc;
	struct fe_hist hist;
	struct queue qs[MAX_QUEUES];
};

static volatile sig_atomic_t stop_flag;
/* --iommu: the front-end whose channel answers IOTLB misses; strict: also invalidates every
 * completed request's pages. NULL without. */
static struct vhu_frontend *iommu_fe;
static bool iommu_strict;

/* --iommu: answers the back-end's IOTLB misses (every call when strict, else every 64th). */
static void serve_chan(void)
{
	static unsigned calls;

	if (iommu_fe && (iommu_strict || ++calls % 64 == 0))
		vhu_frontend_channel_dispatch(iommu_fe);
}

/* --iommu-strict: the vIOMMU takes a completed request's buffers back. */
static void unmap_req(const struct req *r)
{
	if (!iommu_strict)
		return;
	vhu_frontend_iotlb_invalidate(iommu_fe, r->hdr, sizeof(*r->hdr));
	vhu_frontend_iotlb_invalidate(iommu_fe, r->data, 1);
	vhu_frontend_iotlb_invalidate(iommu_fe, r->status, 1);
}

static void on_sig(int s)
{
	(void)s;
	stop_flag = 1;
}

static uint64_t rnd(struct blk *b)
{
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	return b->rng;
}

/* The content of `block` at generation `gen`: a self-describing header, then a pattern. */
static void fill(uint8_t *p, unsigned bs, uint64_t block, uint32_t gen)
{
	uint64_t *w = (uint64_t *)p;

	w[0] = MAGIC | (block & 0xffff);
	w[1] = block;
	w[2] = gen;
	for (unsigned i = 3; i < bs / 8; i++)
		w[i] = (block << 32 | gen) ^ (i * 0x9E3779B97F4A7C15ull);
}

static bool matches(const uint8_t *p, unsigned bs, uint64_t block, uint32_t gen)
{
	const uint64_t *w = (const uint64_t *)p;

	if (w[0] != (MAGIC | (block & 0xffff)) || w[1] != block || w[2] != gen)
		return false;
	for (unsigned i = 3; i < bs / 8; i++)
		if (w[i] != ((block << 32 | gen) ^ (i * 0x9E3779B97F4A7C15ull)))
			return false;
	return true;
}

/* Queues one request; data_len bytes of data (readable for OUT/DISCARD/WRITE_ZEROES,
 * writable for IN/GET_ID). */
static int submit(struct queue *q, struct req *r, uint32_t type, uint64_t sector, uint32_t data_len)
{
	bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	struct iovec iov[3];
	unsigned n = 0;

	r->hdr->type = type;
	r->hdr->ioprio = 0;
	r->hdr->sector = sector;
	*r->status = 0xff;
	r->type = type;
	r->in_len = in ? data_len : 0;
	r->t0 = fe_now();
	iov[n++] = (struct iovec){ r->hdr, sizeof(*r->hdr) };
	if (data_len && !in)
		iov[n++] = (struct iovec){ r->data, data_len };
	unsigned out = n;
	if (data_len && in)
		iov[n++] = (struct iovec){ r->data, data_len };
	iov[n++] = (struct iovec){ r->status, 1 };
	int ret = vhu_drvq_add(q->q, iov, out, n - out, r);
	if (ret == 0) {
		r->busy = true;
		q->inflight++;
	}
	return ret;
}

/* --log-check: what the back-end wrote for a completed request. */
static void log_wrote(struct blk *b, const struct req *r)
{
	fe_logcheck_wrote(&b->lc, r->status, 1);
	if (*r->status == VIRTIO_BLK_S_OK && r->in_len)
		fe_logcheck_wrote(&b->lc, r->data, r->in_len);
}

/* Waits for one specific request (set-up checks, not the timed run). */
static int wait_one(struct blk *b, struct queue *q, struct req *r)
{
	double until = fe_now() + 10;
	uint32_t len;

	vhu_drvq_kick(q->q);
	while (r->busy && fe_now() < until) {
		serve_chan();
		struct req *done = vhu_drvq_get(q->q, &len);
		if (done) {
			if (b->lc.on)
				log_wrote(b, done);
			done->busy = false;
			q->inflight--;
			unmap_req(done);
		}
		if (vhu_drvq_broken(q->q))
			return -EIO;
	}
	if (r->busy) {
		fprintf(stderr, "vhu-fe blk-bench: request type %u timed out\n", r->type);
		return -ETIMEDOUT;
	}
	return *r->status;
}

static bool pick_write(struct blk *b)
{
	switch (b->rw) {
	case RW_WRITE:
	case RW_RANDWRITE:
		return true;
	case RW_RANDRW:
		return rnd(b) % 100 >= b->rwmix;
	default:
		return false;
	}
}

/* Next block for a request, skipping blocks with I/O in flight. */
static bool pick_block(struct blk *b, struct queue *q, uint64_t *block)
{
	bool seq = b->rw == RW_READ || b->rw == RW_WRITE;
	uint64_t blk = seq ? q->seq_next : rnd(b) % b->nblocks;

	for (unsigned tries = 0; tries < 64; tries++) {
		if (!b->busy[blk]) {
			*block = blk;
			if (seq)
				q->seq_next = (blk + b->nq) % b->nblocks;
			return true;
		}
		blk = (blk + 1) % b->nblocks;
	}
	return false;
}

static void issue(struct blk *b, struct queue *q, struct req *r)
{
	uint64_t block;

	if (!pick_block(b, q, &block))
		return;
	bool write = pick_write(b);
	r->block = block;
	b->busy[block] = 1;
	if (write) {
		r->gen = ++b->next_gen;
		if (b->verify)
			fill(r->data, b->bs, block, r->gen);
	}
	if (submit(q, r, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, block * (b->bs / SECTOR),
		   b->bs))
		b->busy[block] = 0;
}

static void complete(struct blk *b, struct req *r)
{
	if (b->lc.on)
		log_wrote(b, r);
	unmap_req(r);
	b->busy[r->block] = 0;
	b->ios++;
	b->bytes += b->bs;
	fe_hist_add(&b->hist, (uint64_t)((fe_now() - r->t0) * 1e9));
	if (*r->status != VIRTIO_BLK_S_OK) {
		if (b->errors++ < 5)
			fprintf(stderr, "vhu-fe blk-bench: %s of block %llu: status %u\n",
				r->type == VIRTIO_BLK_T_OUT ? "write" : "read",
				(unsigned long long)r->block, *r->status);
		return;
	}
	if (r->type == VIRTIO_BLK_T_OUT) {
		b->gen[r->block] = r->gen;
	} else if (b->verify && b->gen[r->block]) {
		b->reads_checked++;
		if (!matches(r->data, b->bs, r->block, b->gen[r->block]) && b->verify_errors++ < 5)
			fprintf(stderr, "vhu-fe blk-bench: block %llu read back wrong (gen %u)\n",
				(unsigned long long)r->block, b->gen[r->block]);
	}
}

/* Every 50 ms: if the back-end hung up, wait for it to come back and carry on. */
static int keep_alive(struct blk *b)
{
	double now = fe_now();

	if (now < b->next_check)
		return 0;
	b->next_check = now + 0.05;
	if (vhu_frontend_alive(b->fe))
		return 0;
	if (!b->reconnect_ms) {
		fprintf(stderr, "vhu-fe blk-bench: the back-end went away\n");
		return -ECONNRESET;
	}
	fprintf(stderr, "vhu-fe blk-bench: the back-end went away; waiting for it to come back\n");
	if (b->lc.on) {
		/* What the dead back-end published is checked against the log now: the next
		 * one gets the log again and must mark its own writes. */
		for (unsigned k = 0; k < b->nq; k++) {
			struct req *r;
			uint32_t len;
			while ((r = vhu_drvq_get(b->qs[k].q, &len))) {
				r->busy = false;
				b->qs[k].inflight--;
				complete(b, r);
			}
		}
		fe_logcheck_check(&b->lc, b->nq, "vhu-fe blk-bench");
	}
	int ret = vhu_frontend_reconnect(b->fe, b->reconnect_ms);
	if (ret) {
		fprintf(stderr, "vhu-fe blk-bench: reconnect failed: %s\n", strerror(-ret));
		return ret;
	}
	b->reconnects++;
	fprintf(stderr, "vhu-fe blk-bench: back-end reconnected after %.2fs\n", fe_now() - now);
	return 0;
}

static bool broken_any(struct blk *b)
{
	for (unsigned k = 0; k < b->nq; k++)
		if (vhu_drvq_broken(b->qs[k].q))
			return true;
	return false;
}

/* Set-up checks of the other request types, on queue 0, before the timed run. */
static int check_ops(struct blk *b, uint64_t f)
{
	struct queue *q = &b->qs[0];
	struct req *r = &q->r[0];
	int st;

	memset(r->data, 0, 64);
	st = submit(q, r, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES);
	if (st || (st = wait_one(b, q, r)) < 0)
		return st;
	if (st == VIRTIO_BLK_S_OK)
		fprintf(stderr, "vhu-fe blk-bench: device id \"%.20s\"\n", (char *)r->data);
	else if (st != VIRTIO_BLK_S_UNSUPP)
		b->verify_errors++;
	if (f >> VIRTIO_BLK_F_FLUSH & 1) {
		if ((st = submit(q, r, VIRTIO_BLK_T_FLUSH, 0, 0)) || (st = wait_one(b, q, r)) < 0)
			return st;
		if (st != VIRTIO_BLK_S_OK) {
			fprintf(stderr, "vhu-fe blk-bench: FLUSH failed: status %d\n", st);
			b->verify_errors++;
		}
	}
	if (b->ro)
		return 0;
	unsigned nz = 8; /* blocks 0..7 */
	if (b->nblocks < nz)
		return 0;
	for (unsigned i = 0; i < nz; i++) {
		fill(r->data, b->bs, i, ++b->next_gen);
		if ((st = submit(q, r, VIRTIO_BLK_T_OUT, (uint64_t)i * (b->bs / SECTOR), b->bs)) ||
		    (st = wait_one(b, q, r)) < 0)
			return st;
		b->gen[i] = b->next_gen;
	}
	if (f >> VIRTIO_BLK_F_WRITE_ZEROES & 1) {
		struct virtio_blk_discard_write_zeroes *dz = (void *)r->data;
		dz->sector = 0;
		dz->num_sectors = nz * (b->bs / SECTOR);
		dz->flags = 0;
		if ((st = submit(q, r, VIRTIO_BLK_T_WRITE_ZEROES, 0, sizeof(*dz))) ||
		    (st = wait_one(b, q, r)) < 0)
			return st;
		if (st != VIRTIO_BLK_S_OK) {
			fprintf(stderr, "vhu-fe blk-bench: WRITE_ZEROES failed: status %d\n", st);
			b->verify_errors++;
		}
		for (unsigned i = 0; i < nz && st == VIRTIO_BLK_S_OK; i++) {
			memset(r->data, 0xaa, b->bs);
			int s2 = submit(q, r, VIRTIO_BLK_T_IN, (uint64_t)i * (b->bs / SECTOR),
					b->bs);
			if (s2 || (s2 = wait_one(b, q, r)) < 0)
				return s2;
			for (unsigned j = 0; j < b->bs; j++) {
				if (r->data[j]) {
					fprintf(stderr,
						"vhu-fe blk-bench: block %u not zero after "
						"WRITE_ZEROES\n",
						i);
					b->verify_errors++;
					break;
				}
			}
			b->gen[i] = 0;
		}
	}
	if (f >> VIRTIO_BLK_F_DISCARD & 1) {
		struct virtio_blk_discard_write_zeroes *dz = (void *)r->data;
		dz->sector = 0;
		dz->num_sectors = nz * (b->bs / SECTOR);
		dz->flags = 0;
		if ((st = submit(q, r, VIRTIO_BLK_T_DISCARD, 0, sizeof(*dz))) ||
		    (st = wait_one(b, q, r)) < 0)
			return st;
		if (st != VIRTIO_BLK_S_OK) {
			fprintf(stderr, "vhu-fe blk-bench: DISCARD failed: status %d\n", st);
			b->verify_errors++;
		}
		for (unsigned i = 0; i < nz; i++)
			b->gen[i] = 0; /* discarded content is unspecified */
	}
	return 0;
}

/* --verify with a read-only workload: write every block once first (not timed). */
static int prefill(struct blk *b)
{
	/* Completions counted by complete() (keep_alive() takes some too, with --log-check). */
	uint64_t next = 0, base = b->ios;
	uint32_t len;
	double until = fe_now() + 600;

	while (b->ios - base < b->nblocks && !stop_flag && fe_now() < until) {
		if (keep_alive(b))
			return -EIO;
		serve_chan();
		for (unsigned k = 0; k < b->nq; k++) {
			struct queue *q = &b->qs[k];
			struct req *r;
			while ((r = vhu_drvq_get(q->q, &len))) {
				r->busy = false;
				q->inflight--;
				complete(b, r);
			}
			for (unsigned i = 0; i < b->depth && next < b->nblocks; i++) {
				r = &q->r[i];
				if (r->busy)
					continue;
				r->block = next;
				r->gen = ++b->next_gen;
				fill(r->data, b->bs, next, r->gen);
				if (submit(q, r, VIRTIO_BLK_T_OUT, next * (b->bs / SECTOR), b->bs))
					break;
				b->busy[next++] = 1;
			}
			vhu_drvq_kick(q->q);
			if (vhu_drvq_broken(q->q))
				return -EIO;
		}
	}
	uint64_t done = b->ios - base;
	b->ios = b->bytes = 0;
	memset(&b->hist, 0, sizeof(b->hist));
	return b->errors || done < b->nblocks ? -EIO : 0;
}

/* --verify after a workload that wrote: read back every block written (not timed). */
static int verify_pass(struct blk *b)
{
	uint64_t next = 0, issued = 0, base = b->ios; /* done: b->ios - base, as in prefill() */
	uint32_t len;
	double until = fe_now() + 600;

	for (;;) {
		while (next < b->nblocks && !b->gen[next])
			next++;
		bool more = next < b->nblocks;
		if (!more && b->ios - base == issued)
			break;
		if (stop_flag || fe_now() > until)
			return -ETIMEDOUT;
		if (keep_alive(b))
			return -EIO;
		serve_chan();
		for (unsigned k = 0; k < b->nq; k++) {
			struct queue *q = &b->qs[k];
			struct req *r;
			while ((r = vhu_drvq_get(q->q, &len))) {
				r->busy = false;
				q->inflight--;
				complete(b, r);
			}
			for (unsigned i = 0; i < b->depth; i++) {
				while (next < b->nblocks && !b->gen[next])
					next++;
				r = &q->r[i];
				if (r->busy || next >= b->nblocks)
					continue;
				r->block = next;
				if (submit(q, r, VIRTIO_BLK_T_IN, next * (b->bs / SECTOR), b->bs))
					break;
				b->busy[next++] = 1;
				issued++;
			}
			vhu_drvq_kick(q->q);
			if (vhu_drvq_broken(q->q))
				return -EIO;
		}
	}
	return 0;
}

static struct blk b = { .bs = 4096,
			.depth = 1,
			.nq = 1,
			.rwmix = 50,
			.rng = 0x2545F4914F6CDD1Dull,
			.rw = RW_RANDREAD };

static struct {
	struct vhu_frontend_opts o;
	double duration, reconnect_s;
	uint64_t size;
	bool json, quiet, packed, verbose, log, log_check, iommu, iommu_strict;
	const char *dump;
} a = { .o = { .size = VHU_FRONTEND_OPTS_SIZE, .log = fe_log, .log_level = VHU_LOG_DEBUG },
	.duration = 5,
	.reconnect_s = 30 };

static int parse_rw(const struct opt *o, const char *arg)
{
	enum rw *rw = o->target;

	for (unsigned k = 0; k < sizeof(rw_names) / sizeof(rw_names[0]); k++)
		if (!strcmp(arg, rw_names[k])) {
			*rw = (enum rw)k;
			return 0;
		}
	return -EINVAL;
}

static int parse_bs(const struct opt *o, const char *arg)
{
	uint64_t v;

	if (!parse_size(arg, &v) || v < SECTOR || v % SECTOR || v > (1u << 20))
		return -EINVAL;
	*(unsigned *)o->target = (unsigned)v;
	return 0;
}

static const struct opt opts[] = {
	{ "path", 'p', "PATH", opt_str, &a.o.path,
	  "the back-end: a vhost-user socket, /dev/vhost-net (vhost-kernel)\n"
	  "or /dev/vhost-vdpa-N (vhost-vdpa); the kind follows from it" },
	{ "socket-path", 's', "PATH", opt_str, &a.o.path, "the same as --path" },
	{ "server", 0, NULL, opt_flag, &a.o.server,
	  "listen on PATH and wait for the back-end to connect" },
	{ "rw", 'r', "MODE", parse_rw, &b.rw,
	  "read, write, randread (default), randwrite or randrw" },
	{ "bs", 'b', "BYTES", parse_bs, &b.bs,
	  "block size, a multiple of 512 up to 1M (default 4096)" },
	{ "iodepth", 'i', "N", opt_uint, &b.depth, "requests in flight per queue (default 1)", 1,
	  MAX_DEPTH },
	{ "queues", 'q', "N", opt_uint, &b.nq, "queues (default 1)", 1, MAX_QUEUES },
	{ "duration", 'd', "S", opt_double, &a.duration, "seconds (default 5)" },
	{ "size", 'z', "BYTES", opt_size, &a.size,
	  "region of the device used (default min(capacity, 256M))" },
	{ "rwmixread", 0, "PCT", opt_uint, &b.rwmix, "reads in randrw (default 50)", 0, 100 },
	{ "verify", 0, NULL, opt_flag, &b.verify,
	  "check every read of a written block, and GET_ID, FLUSH,\n"
	  "WRITE_ZEROES and DISCARD once; read workloads prefill first" },
	{ "dump-state", 0, "FILE", opt_str, &a.dump,
	  "write \"block generation\" for every block written" },
	{ "packed", 0, NULL, opt_flag, &a.packed, "packed rings (default split)" },
	{ "iommu", 0, NULL, opt_flag, &a.iommu, FE_HELP_IOMMU },
	{ "iommu-strict", 0, NULL, opt_flag, &a.iommu_strict,
	  "ACCESS_PLATFORM: pages mapped on IOTLB misses, each request\ninvalidated when it "
	  "completed" },
	{ "reconnect-timeout", 0, "S", opt_double, &a.reconnect_s, FE_HELP_RECONNECT },
	{ "log", 0, NULL, opt_flag, &a.log, FE_HELP_LOG },
	{ "log-check", 0, NULL, opt_flag, &a.log_check, FE_HELP_LOG_CHECK },
	{ "json", 'j', NULL, opt_flag, &a.json,
	  "one JSON object at the end: ios, iops, mbps, lat_p50_us,\n"
	  "lat_p99_us, lat_p999_us, verify_errors" },
	{ "quiet", 0, NULL, opt_flag, &a.quiet, "no per-second rates" },
	{ "verbose", 'v', NULL, opt_flag, &a.verbose, "log every message" },
};

static const struct opt_cmd blk_bench_opts = {
	.prog = "vhu-fe blk-bench",
	.synopsis = "Usage: vhu-fe blk-bench [OPTIONS]",
	.summary = "fio-like virtio-blk load with optional verification",
	OPT_CMD_OPTS(opts),
	.epilog = "Exit status 0 only when I/O completed without errors or verify errors.\n",
};

/* Reads the config and sizes the run. 0, or 1 after saying why. */
static int check_device(uint64_t df)
{
	struct virtio_blk_config cfg;
	uint64_t size = a.size;
	int ret;

	memset(&cfg, 0, sizeof(cfg));
	ret = vhu_frontend_get_config(b.fe, 0, &cfg,
				      offsetof(struct virtio_blk_config, num_queues) + 2);
	if (ret) {
		fprintf(stderr, "vhu-fe blk-bench: GET_CONFIG: %s\n", strerror(-ret));
		return 1;
	}
	b.capacity = cfg.capacity * SECTOR;
	unsigned dev_q = (df >> VIRTIO_BLK_F_MQ & 1) ? cfg.num_queues : 1;
	if (b.nq > dev_q) {
		fprintf(stderr, "vhu-fe blk-bench: the device has %u queue(s), %u asked\n", dev_q,
			b.nq);
		return 1;
	}
	b.ro = df >> VIRTIO_BLK_F_RO & 1;
	if (b.ro && b.rw != RW_READ && b.rw != RW_RANDREAD) {
		fprintf(stderr, "vhu-fe blk-bench: the device is read-only\n");
		return 1;
	}
	if (!size)
		size = b.capacity < (256u << 20) ? b.capacity : (256u << 20);
	if (size > b.capacity)
		size = b.capacity;
	b.nblocks = size / b.bs;
	if (b.nblocks < 16) {
		fprintf(stderr, "vhu-fe blk-bench: device too small (%llu bytes)\n",
			(unsigned long long)b.capacity);
		return 1;
	}
	b.gen = calloc(b.nblocks, sizeof(*b.gen));
	b.busy = calloc(b.nblocks, 1);
	return b.gen && b.busy ? 0 : 1;
}

/* Negotiates, starts the queues and allocates the requests. 0, or -errno / 1. */
static int start_queues(unsigned qsz, uint64_t *features)
{
	uint64_t want = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_EVENT_IDX) |
			(1ULL << VIRTIO_RING_F_INDIRECT_DESC) | (1ULL << VIRTIO_BLK_F_FLUSH) |
			(1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
			(1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_DISCARD) |
			(1ULL << VIRTIO_BLK_F_WRITE_ZEROES) | (1ULL << VIRTIO_BLK_F_RO) |
			(1ULL << VIRTIO_BLK_F_TOPOLOGY) | (1ULL << VIRTIO_BLK_F_CONFIG_WCE);
	if (b.nq > 1)
		want |= 1ULL << VIRTIO_BLK_F_MQ;
	if (a.packed)
		want |= 1ULL << VIRTIO_F_RING_PACKED;
	struct vhu_frontend_start_opts so = { .size = VHU_FRONTEND_START_OPTS_SIZE,
					      .features = want,
					      .nvqs = b.nq,
					      .queue_size = qsz };
	int ret = vhu_frontend_start(b.fe, &so);
	if (ret) {
		fprintf(stderr, "vhu-fe blk-bench: start: %s\n", strerror(-ret));
		return ret;
	}
	*features = vhu_frontend_features(b.fe);
	if (a.packed && !(*features >> VIRTIO_F_RING_PACKED & 1)) {
		fprintf(stderr, "vhu-fe blk-bench: the back-end does not offer RING_PACKED\n");
		return -ENOTSUP;
	}
	if (a.log_check && fe_logcheck_start(&b.lc, b.fe, "vhu-fe blk-bench"))
		return 1;
	if (a.log && !a.log_check && (ret = vhu_frontend_log_start(b.fe))) {
		fprintf(stderr, "vhu-fe blk-bench: --log: %s\n", strerror(-ret));
		return 1;
	}
	for (unsigned k = 0; k < b.nq; k++) {
		struct queue *q = &b.qs[k];
		q->q = vhu_frontend_queue(b.fe, k);
		vhu_drvq_disable_cb(q->q);
		q->seq_next = k;
		for (unsigned i = 0; i < b.depth; i++) {
			struct req *r = &q->r[i];
			r->hdr = vhu_frontend_alloc(b.fe, sizeof(*r->hdr), 16);
			r->data = vhu_frontend_alloc(b.fe, b.bs, 4096);
			r->status = vhu_frontend_alloc(b.fe, 1, 1);
			if (!r->hdr || !r->data || !r->status) {
				fprintf(stderr, "vhu-fe blk-bench: out of shared memory\n");
				return 1;
			}
		}
	}
	return 0;
}

/* --verify: the other request types once, and a prefill for read workloads. 0 or 1. */
static int before_run(uint64_t f)
{
	int ret;

	if (b.verify && (ret = check_ops(&b, f)) < 0) {
		fprintf(stderr, "vhu-fe blk-bench: request checks: %s\n", strerror(-ret));
		return 1;
	}
	if (b.verify && (b.rw == RW_READ || b.rw == RW_RANDREAD)) {
		if (prefill(&b)) {
			fprintf(stderr, "vhu-fe blk-bench: prefill failed\n");
			return 1;
		}
		for (unsigned k = 0; k < b.nq; k++)
			b.qs[k].seq_next = k;
	}
	return 0;
}

/* One round over the queues: completions, new requests, kicks. Returns requests in flight. */
static unsigned round_queues(bool *draining)
{
	unsigned inflight = 0;
	uint32_t len;

	serve_chan();
	for (unsigned k = 0; k < b.nq; k++) {
		struct queue *q = &b.qs[k];
		struct req *r;
		while ((r = vhu_drvq_get(q->q, &len))) {
			r->busy = false;
			q->inflight--;
			complete(&b, r);
		}
		if (!*draining)
			for (unsigned i = 0; i < b.depth; i++)
				if (!q->r[i].busy)
					issue(&b, q, &q->r[i]);
		vhu_drvq_kick(q->q);
		if (vhu_drvq_broken(q->q))
			stop_flag = *draining = true;
		inflight += q->inflight;
	}
	return inflight;
}

/* --log-check, every LOG_ROUND_S: no new requests until every one in flight completed, then
 * what the back-end wrote since the last round is checked against the log. A back-end that
 * stops logging part-way fails, which one check at the end would miss (the same buffers are
 * written again and again). When it does not settle within two seconds, the round is left to
 * the next one. */
#define LOG_ROUND_S 0.1
static void log_round(void)
{
	double until = fe_now() + 2;
	bool draining = true;
	unsigned inflight;

	while ((inflight = round_queues(&draining)) && !stop_flag && fe_now() < until)
		;
	if (inflight == 0)
		fe_logcheck_check(&b.lc, b.nq, "vhu-fe blk-bench");
}

/* The timed run, then the drain. Returns the seconds it took. */
static double bench_loop(void)
{
	double t0 = fe_now(), tick = t0 + 1, end = t0 + a.duration, now;
	uint64_t last = 0, spins = 0;
	bool draining = false;
	double next_round = t0 + LOG_ROUND_S;

	for (;;) {
		unsigned inflight = round_queues(&draining);
		if (draining && (inflight == 0 || fe_now() > end + 10 + b.reconnect_ms / 1000.0))
			break;
		if (keep_alive(&b)) {
			stop_flag = draining = true;
			b.errors++;
			break;
		}
		if (++spins % 64)
			continue;
		now = fe_now();
		if ((now >= end || stop_flag) && !draining) {
			draining = true;
			end = now;
		}
		if (b.lc.on && !draining && now >= next_round) {
			log_round();
			next_round = fe_now() + LOG_ROUND_S;
		}
		if (now >= tick && !a.quiet && !draining) {
			fprintf(stderr, "  %5.1fs  %9.0f IOPS\n", now - t0,
				(double)(b.ios - last) / (now - tick + 1));
			last = b.ios;
			tick = now + 1;
		}
	}
	return end - t0;
}

static void dump_state(void)
{
	FILE *f = fopen(a.dump, "w");

	if (!f)
		return;
	fprintf(f, "# bs %u\n", b.bs);
	for (uint64_t i = 0; i < b.nblocks; i++)
		if (b.gen[i])
			fprintf(f, "%llu %u\n", (unsigned long long)i, b.gen[i]);
	fclose(f);
}

/* The read-back pass of write workloads, then the result. Returns the exit status. */
static int report(double elapsed)
{
	uint64_t ios = b.ios, bytes = b.bytes;
	struct fe_hist hist = b.hist;

	if (b.verify && b.rw != RW_READ && b.rw != RW_RANDREAD && !broken_any(&b)) {
		if (!a.quiet)
			fprintf(stderr, "vhu-fe blk-bench: reading back every block written\n");
		if (verify_pass(&b))
			b.errors++;
	}
	b.ios = ios;
	b.bytes = bytes;
	b.hist = hist;
	double iops = (double)b.ios / elapsed, mbps = (double)b.bytes / elapsed / 1e6;
	double p50 = (double)fe_hist_quantile(&b.hist, 0.5) / 1e3;
	double p99 = (double)fe_hist_quantile(&b.hist, 0.99) / 1e3;
	double p999 = (double)fe_hist_quantile(&b.hist, 0.999) / 1e3;
	bool broken = false;
	for (unsigned k = 0; k < b.nq; k++)
		broken |= vhu_drvq_broken(b.qs[k].q) || b.qs[k].inflight;
	if (fe_logcheck_finish(&b.lc, b.nq, "vhu-fe blk-bench"))
		b.errors++;
	if (a.json) {
		printf("{\"rw\": \"%s\", \"bs\": %u, \"iodepth\": %u, \"queues\": %u, \"seconds\": "
		       "%.3f, "
		       "\"ios\": %llu, \"iops\": %.1f, \"mbps\": %.2f, \"lat_p50_us\": %.2f, "
		       "\"lat_p99_us\": %.2f, \"lat_p999_us\": %.2f, \"errors\": %llu, "
		       "\"verify_errors\": %llu, \"reads_verified\": %llu, \"reconnects\": %u",
		       rw_names[b.rw], b.bs, b.depth, b.nq, elapsed, (unsigned long long)b.ios,
		       iops, mbps, p50, p99, p999, (unsigned long long)b.errors,
		       (unsigned long long)b.verify_errors, (unsigned long long)b.reads_checked,
		       b.reconnects);
		fe_logcheck_json(&b.lc, stdout);
		printf("}\n");
	} else {
		printf("%llu I/Os in %.2fs: %.0f IOPS, %.1f MB/s, latency p50 %.1f us p99 %.1f us "
		       "p99.9 %.1f us; errors %llu, verify errors %llu (%llu reads verified)\n",
		       (unsigned long long)b.ios, elapsed, iops, mbps, p50, p99, p999,
		       (unsigned long long)b.errors, (unsigned long long)b.verify_errors,
		       (unsigned long long)b.reads_checked);
		if (b.lc.on)
			printf("log: %llu pages marked, %llu written by the back-end, %llu of them "
			       "not marked\n",
			       (unsigned long long)b.lc.pages, (unsigned long long)b.lc.written,
			       (unsigned long long)b.lc.missing);
	}
	if (a.dump)
		dump_state();
	return (b.errors || b.verify_errors || broken || b.ios == 0 || fe_logcheck_failed(&b.lc))
		       ? 1
		       : 0;
}

/* Start to stop on an open front-end. Returns the exit status. */
static int bench(unsigned qsz)
{
	uint64_t f;
	int ret;

	if (check_device(vhu_frontend_device_features(b.fe)))
		return 1;
	ret = start_queues(qsz, &f);
	if (ret == 0) {
		signal(SIGINT, on_sig);
		signal(SIGTERM, on_sig);
		if (!a.quiet)
			fprintf(stderr,
				"vhu-fe blk-bench: %llu MiB device, %llu blocks of %u B, %u "
				"queue(s) x depth %u, %s rings, features 0x%llx\n",
				(unsigned long long)(b.capacity >> 20),
				(unsigned long long)b.nblocks, b.bs, b.nq, b.depth,
				a.packed ? "packed" : "split", (unsigned long long)f);
		ret = before_run(f);
		if (ret == 0)
			ret = report(bench_loop());
	} else if (ret < 0) {
		return 1; /* not started */
	}
	if (vhu_frontend_stop(b.fe))
		ret = 1;
	return ret;
}

static int run(int argc, char **argv)
{
	int ret = fe_parse(&cmd_blk_bench, argc, argv);

	if (ret >= 0)
		return ret;
	fe_verbose = a.verbose;
	b.reconnect_ms = (int)(a.reconnect_s * 1000);
	if (!a.o.path) {
		fprintf(stderr, "vhu-fe blk-bench: need --path\n");
		return 2;
	}
	unsigned qsz = 256;
	while (qsz < b.depth * 3 && qsz < 1024)
		qsz *= 2;
	struct vhu_frontend_opts o = a.o;
	o.mem_size = (size_t)b.nq * b.depth * (b.bs + 4096 + 64) + (size_t)b.nq * qsz * 1024 +
		     (8u << 20);
	ret = vhu_frontend_open(&b.fe, &o);
	if (ret) {
		fprintf(stderr, "vhu-fe blk-bench: %s: %s\n", o.path, strerror(-ret));
		return 1;
	}
	if (a.iommu || a.iommu_strict) {
		vhu_frontend_set_iommu(b.fe, a.iommu_strict ? VHU_FRONTEND_IOMMU_STRICT
							    : VHU_FRONTEND_IOMMU);
		iommu_fe = b.fe;
		iommu_strict = a.iommu_strict;
	}
	ret = bench(qsz);
	vhu_frontend_close(b.fe);
	free(b.gen);
	free(b.busy);
	fe_logcheck_free(&b.lc);
	return ret;
}

const struct cmd cmd_blk_bench = {
	"blk-bench",
	run,
	"fio-like virtio-blk load with optional verification",
	&blk_bench_opts,
};
