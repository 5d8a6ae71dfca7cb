/* SPDX-License-Identifier: MIT */
/*
 * One I/O thread per started queue: pops requests, submits them to its own io_uring (reads
 * and writes, fdatasync, fallocate for discard and write-zeroes), completes them as the CQEs
 * arrive. Kicks and the stop request arrive through the same ring (poll on the eventfds), so
 * a queue never waits behind another queue or behind a syscall of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "blk.h"

#define TAG_KICK 1ull
#define TAG_STOP 2ull
#define TAG_WAKE 3ull
/* A ring without a kick fd (VRING_NOFD) is polled: every 20 us at first, backing off to every
 * 1 ms while it stays idle. */
#define NOFD_NAP_MIN_NS 20000
#define NOFD_NAP_MAX_NS 1000000
#define TAG_SLOT	16ull /* + slot index */
#define MAX_SLOTS	256

struct bslot {
	struct vhu_elem e;
	struct vhu_blk_req r;
	int zero_mode; /* write-zeroes: the fallocate mode in flight */
};

struct bqueue {
	struct blkdev *d;
	struct vhu_virtq *vq;
	unsigned index;
	pthread_t th;
	int stop_fd;
	int wake_fd;	   /* written when the ring is enabled again */
	bool enabled;	   /* SET_VRING_ENABLE; set by the main thread, read with __atomic */
	unsigned gen;	   /* bumped by the main thread after each change of enabled */
	unsigned seen_gen; /* the gen the queue thread last acted on (atomic) */
	struct io_uring ring;
	struct bslot *slots;
	unsigned nslots;
	unsigned *free;
	unsigned nfree;
	unsigned inflight;
	bool broken; /* written by the queue thread only (atomic), read by the main thread */
	/* counters, read by the main thread for SIGUSR1 (approximate while running) */
	uint64_t reads, writes, flushes, discards, zeroes, ids, errors, bytes;
};

static void complete(struct bqueue *q, unsigned i, uint8_t st)
{
	struct bslot *s = &q->slots[i];

	if (st != VIRTIO_BLK_S_OK)
		q->errors++;
	vhu_blk_complete(q->vq, &s->e, &s->r, st);
	q->free[q->nfree++] = i;
}

static struct io_uring_sqe *get_sqe(struct bqueue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
	}
	return sqe;
}

static int fd_for(const struct blkdev *d, const struct vhu_blk_req *r)
{
	if (d->fd == d->fd_buffered)
		return d->fd;
	if (r->offset % d->dio_align)
		return d->fd_buffered;
	for (unsigned i = 0; i < r->niov; i++)
		if ((uintptr_t)r->iov[i].iov_base % d->dio_align ||
		    r->iov[i].iov_len % d->dio_align)
			return d->fd_buffered;
	return d->fd;
}

/* Starts request i: completes it at once or queues its SQE. */
static void start_req(struct bqueue *q, unsigned i)
{
	struct blkdev *d = q->d;
	struct bslot *s = &q->slots[i];
	struct vhu_blk_req *r = &s->r;
	struct io_uring_sqe *sqe;
	struct vhu_blk_limits lim = d->lim;
	int st;

	/* The size as of now: after a SIGHUP that found the image shrunk, requests past its new
	 * end fail (IOERR) without touching it. */
	lim.capacity = __atomic_load_n(&d->capacity, __ATOMIC_RELAXED);
	st = vhu_blk_parse(&s->e, &lim, r);

	if (st) {
		complete(q, i, (uint8_t)st);
		return;
	}
	switch (r->op) {
	case VHU_BLK_OP_READ:
		q->reads++;
		q->bytes += r->len;
		break;
	case VHU_BLK_OP_WRITE:
		q->writes++;
		q->bytes += r->len;
		break;
	case VHU_BLK_OP_FLUSH:
		q->flushes++;
		break;
	case VHU_BLK_OP_DISCARD:
		q->discards++;
		break;
	case VHU_BLK_OP_WRITE_ZEROES:
		q->zeroes++;
		break;
	case VHU_BLK_OP_GET_ID:
		q->ids++;
		break;
	default:
		break;
	}
	if (d->null || r->op == VHU_BLK_OP_GET_ID || (r->op == VHU_BLK_OP_FLUSH && d->ro)) {
		complete(q, i, VIRTIO_BLK_S_OK);
		return;
	}
	sqe = get_sqe(q);
	if (!sqe) {
		complete(q, i, VIRTIO_BLK_S_IOERR);
		return;
	}
	switch (r->op) {
	case VHU_BLK_OP_READ:
		io_uring_prep_readv(sqe, fd_for(d, r), r->iov, r->niov, r->offset);
		break;
	case VHU_BLK_OP_WRITE:
		io_uring_prep_writev(sqe, fd_for(d, r), r->iov, r->niov, r->offset);
		/* Writethrough: the write is stable when it completes. */
		if (!__atomic_load_n(&d->wce, __ATOMIC_RELAXED))
			sqe->rw_flags = RWF_DSYNC;
		break;
	case VHU_BLK_OP_FLUSH:
		io_uring_prep_fsync(sqe, d->fd, IORING_FSYNC_DATASYNC);
		break;
	case VHU_BLK_OP_DISCARD:
		io_uring_prep_fallocate(sqe, d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					r->offset, r->len);
		break;
	case VHU_BLK_OP_WRITE_ZEROES:
		s->zero_mode = r->unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
					: FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		io_uring_prep_fallocate(sqe, d->fd, s->zero_mode, r->offset, r->len);
		break;
	default:
		break;
	}
	io_uring_sqe_set_data64(sqe, TAG_SLOT + i);
	q->inflight++;
}

static void finish_req(struct bqueue *q, unsigned i, int res)
{
	struct bslot *s = &q->slots[i];
	uint64_t want = (s->r.op == VHU_BLK_OP_READ || s->r.op == VHU_BLK_OP_WRITE) ? s->r.len : 0;

	/* A file system without ZERO_RANGE (tmpfs): a punched hole reads as zeroes too. */
	if (s->r.op == VHU_BLK_OP_WRITE_ZEROES && res == -EOPNOTSUPP &&
	    s->zero_mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		struct io_uring_sqe *sqe = get_sqe(q);
		if (sqe) {
			s->zero_mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
			io_uring_prep_fallocate(sqe, q->d->fd, s->zero_mode, s->r.offset, s->r.len);
			io_uring_sqe_set_data64(sqe, TAG_SLOT + i);
			return;
		}
	}
	q->inflight--;
	if (res < 0 || (uint64_t)res != want) {
		char msg[160];
		snprintf(msg, sizeof(msg), "queue %u: I/O at offset %llu length %llu: %s", q->index,
			 (unsigned long long)s->r.offset, (unsigned long long)s->r.len,
			 res < 0 ? strerror(-res) : "short transfer");
		blk_log(q->d, VHU_LOG_ERR, msg);
		complete(q, i, VIRTIO_BLK_S_IOERR);
		return;
	}
	complete(q, i, VIRTIO_BLK_S_OK);
}

/* Pops and starts requests while slots are free; notifications stay off. Returns how many. */
static unsigned pop_some(struct bqueue *q)
{
	unsigned n = 0;

	while (q->nfree && !q->broken) {
		unsigned i = q->free[q->nfree - 1];
		int r = vhu_virtq_pop(q->vq, &q->slots[i].e);
		if (r == 0)
			break;
		if (r == -EIO)
			break;
		q->nfree--;
		n++;
		if (r < 0) { /* too many segments: fails without touching the image */
			q->slots[i].r.status = NULL;
			complete(q, i, VIRTIO_BLK_S_IOERR);
			continue;
		}
		start_req(q, i);
	}
	return n;
}

static void arm_poll(struct bqueue *q, int fd, uint64_t tag)
{
	struct io_uring_sqe *sqe = get_sqe(q);

	if (!sqe)
		return;
	io_uring_prep_poll_add(sqe, fd, POLLIN);
	io_uring_sqe_set_data64(sqe, tag);
}

/* Handles every CQE ready. Returns how many. */
static unsigned reap(struct bqueue *q, int kick, bool *stopping)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&q->ring, head, cqe)
	{
		uint64_t tag = io_uring_cqe_get_data64(cqe);
		n++;
		if (tag == TAG_KICK) {
			vhu_virtq_kick_drain(q->vq);
			arm_poll(q, kick, TAG_KICK);
		} else if (tag == TAG_STOP) {
			*stopping = true;
		} else if (tag == TAG_WAKE) {
			eventfd_t v;
			eventfd_read(q->wake_fd, &v);
			arm_poll(q, q->wake_fd, TAG_WAKE);
		} else if (tag >= TAG_SLOT) {
			finish_req(q, (unsigned)(tag - TAG_SLOT), cqe->res);
		}
	}
	io_uring_cq_advance(&q->ring, n);
	return n;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The queue thread. Busy: pop, submit, reap, flush, with the driver's kicks off. Idle for
 * poll_ns (adaptive polling, as QEMU's AioContext does): keep looking at the ring and the
 * completion queue without a syscall. Idle longer: turn kicks back on, re-check the ring
 * (a buffer may have come meanwhile), and sleep in io_uring until a kick, a completion or
 * the stop request.
 *
 * A disabled ring ("Ring states": started and disabled, processed "without causing any side
 * effects") pops nothing: executing a write is a side effect, and completing it unexecuted
 * would lose data, so requests wait in the ring. I/O already started finishes. The thread
 * sleeps with kicks off until the ring is enabled again (wake_fd), or stopped.
 */
static void *qthread(void *arg)
{
	struct bqueue *q = arg;
	int kick = vhu_virtq_kick_fd(q->vq);
	bool stopping = false;
	uint64_t poll_ns = q->d->poll_us * 1000ull, idle_since = now_ns();
	struct __kernel_timespec nofd_ts = { .tv_nsec = NOFD_NAP_MIN_NS };

	if (kick >= 0)
		arm_poll(q, kick, TAG_KICK);
	arm_poll(q, q->stop_fd, TAG_STOP);
	arm_poll(q, q->wake_fd, TAG_WAKE);
	vhu_virtq_disable_notify(q->vq);
	for (;;) {
		/* Pairs with the release increment of gen in bqueue_enable(), after its store of
		 * enabled: a thread that sees the new gen sees the new state. Acting on it is
		 * acknowledged before any pop, so once bqueue_enable() saw the acknowledgement
		 * of a disable, nothing more is popped. */
		unsigned gen = __atomic_load_n(&q->gen, __ATOMIC_ACQUIRE);
		bool enabled = __atomic_load_n(&q->enabled, __ATOMIC_RELAXED);
		__atomic_store_n(&q->seen_gen, gen, __ATOMIC_RELEASE);
		unsigned work = stopping || !enabled ? 0 : pop_some(q);
		if (io_uring_sq_ready(&q->ring))
			io_uring_submit(&q->ring);
		work += reap(q, kick, &stopping);
		vhu_virtq_flush(q->vq);
		/* Broken by a pop, a push or the SIGBUS guard (the front-end shrank its memory):
		 * stop taking requests, finish those in flight, and have the main thread drop
		 * the connection. */
		if (!q->broken && vhu_virtq_broken(q->vq)) {
			__atomic_store_n(&q->broken, true, __ATOMIC_RELAXED);
			if (q->d->broken_fd >= 0)
				eventfd_write(q->d->broken_fd, 1);
		}
		if (stopping && q->inflight == 0)
			break;
		if (work) {
			idle_since = 0;
			nofd_ts.tv_nsec = NOFD_NAP_MIN_NS;
			continue;
		}
		uint64_t t = now_ns();
		if (!idle_since)
			idle_since = t;
		if (t - idle_since < poll_ns && !stopping && enabled) {
			cpu_relax();
			continue;
		}
		/* Going to sleep: ask for kicks, and look once more. */
		if (kick >= 0 && !stopping && !q->broken && enabled &&
		    vhu_virtq_enable_notify(q->vq)) {
			vhu_virtq_disable_notify(q->vq);
			continue;
		}
		struct io_uring_cqe *cqe;
		int ret = io_uring_submit_and_wait_timeout(
			&q->ring, &cqe, 1, kick < 0 && enabled ? &nofd_ts : NULL, NULL);
		if (ret < 0 && ret != -ETIME && ret != -EINTR)
			break;
		/* A NOFD ring with nothing to do is looked at less and less often, down to once
		 * a millisecond: an idle front-end cannot hold this thread at 100 % CPU. */
		if (ret == -ETIME && nofd_ts.tv_nsec < NOFD_NAP_MAX_NS)
			nofd_ts.tv_nsec = nofd_ts.tv_nsec * 2 < NOFD_NAP_MAX_NS
						  ? nofd_ts.tv_nsec * 2
						  : NOFD_NAP_MAX_NS;
		vhu_virtq_disable_notify(q->vq);
		idle_since = 0;
	}
	vhu_virtq_flush(q->vq);
	return NULL;
}

int bqueue_start(struct blkdev *d, struct vhu_virtq *vq)
{
	unsigned idx = vhu_virtq_index(vq);
	struct bqueue *q = calloc(1, sizeof(*q));
	int ret;

	if (!q || idx >= BLK_MAX_QUEUES)
		goto err_free;
	q->d = d;
	q->vq = vq;
	q->index = idx;
	q->nslots = vhu_virtq_size(vq) < MAX_SLOTS ? vhu_virtq_size(vq) : MAX_SLOTS;
	q->slots = calloc(q->nslots, sizeof(*q->slots));
	q->free = calloc(q->nslots, sizeof(*q->free));
	q->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->enabled = vhu_virtq_enabled(vq);
	if (!q->slots || !q->free || q->stop_fd < 0 || q->wake_fd < 0)
		goto err_free;
	for (unsigned i = 0; i < q->nslots; i++)
		q->free[q->nfree++] = q->nslots - 1 - i;
	ret = io_uring_queue_init(2 * q->nslots + 8, &q->ring, 0);
	if (ret) {
		blk_log(d, VHU_LOG_ERR, "io_uring_queue_init failed");
		goto err_free;
	}
	if (pthread_create(&q->th, NULL, qthread, q)) {
		io_uring_queue_exit(&q->ring);
		goto err_free;
	}
	d->q[idx] = q;
	return 0;
err_free:
	if (q) {
		if (q->stop_fd > 0)
			close(q->stop_fd);
		if (q->wake_fd > 0)
			close(q->wake_fd);
		free(q->slots);
		free(q->free);
		free(q);
	}
	return -ENOMEM;
}

/* "queue_stop() must not return while the thread still uses the queue": the thread finishes
 * the I/O it started, returns every request, and exits before we return. */
void bqueue_stop(struct blkdev *d, struct vhu_virtq *vq)
{
	unsigned idx = vhu_virtq_index(vq);
	struct bqueue *q = idx < BLK_MAX_QUEUES ? d->q[idx] : NULL;

	if (!q)
		return;
	eventfd_write(q->stop_fd, 1);
	pthread_join(q->th, NULL);
	io_uring_queue_exit(&q->ring);
	close(q->stop_fd);
	close(q->wake_fd);
	free(q->slots);
	free(q->free);
	d->q[idx] = NULL;
	free(q);
}

/* SET_VRING_ENABLE (main thread, like start and stop): a started queue's thread holds its
 * requests while disabled and takes them again once woken. A stopped queue reads the state
 * at its next start. */
void bqueue_enable(struct blkdev *d, struct vhu_virtq *vq, bool enabled)
{
	unsigned idx = vhu_virtq_index(vq);
	struct bqueue *q = idx < BLK_MAX_QUEUES ? d->q[idx] : NULL;

	if (!q)
		return;
	__atomic_store_n(&q->enabled, enabled, __ATOMIC_RELAXED);
	unsigned gen = __atomic_add_fetch(&q->gen, 1, __ATOMIC_RELEASE);
	eventfd_write(q->wake_fd, 1);
	if (enabled)
		return;
	/* The front-end takes our reply to SET_VRING_ENABLE 0 as "no request of this ring is
	 * taken any more": wait until the queue thread has acted on it (it is woken, and a pop
	 * batch in progress is at most a ring's worth). Bounded, in case the thread is gone. */
	for (int i = 0; i < 2000 && __atomic_load_n(&q->seen_gen, __ATOMIC_ACQUIRE) != gen; i++)
		nanosleep(&(struct timespec){ .tv_nsec = 500000 }, NULL);
	if (__atomic_load_n(&q->seen_gen, __ATOMIC_ACQUIRE) != gen)
		blk_log(d, VHU_LOG_WARN, "a queue thread did not see its ring disabled within 1 s");
}

void bqueue_print_stats(struct blkdev *d)
{
	for (unsigned i = 0; i < d->nqueues; i++) {
		struct bqueue *q = d->q[i];
		if (!q)
			continue;
		printf("  queue %u: reads %llu writes %llu flushes %llu discards %llu write-zeroes "
		       "%llu "
		       "get-id %llu bytes %llu errors %llu\n",
		       i, (unsigned long long)q->reads, (unsigned long long)q->writes,
		       (unsigned long long)q->flushes, (unsigned long long)q->discards,
		       (unsigned long long)q->zeroes, (unsigned long long)q->ids,
		       (unsigned long long)q->bytes, (unsigned long long)q->errors);
	}
	fflush(stdout);
}

bool bqueue_any_broken(struct blkdev *d)
{
	for (unsigned i = 0; i < BLK_MAX_QUEUES; i++)
		if (d->q[i] && __atomic_load_n(&d->q[i]->broken, __ATOMIC_RELAXED))
			return true;
	return false;
}
