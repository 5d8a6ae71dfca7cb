/* SPDX-License-Identifier: MIT */
/*
 * Inflight I/O tracking, step by step as vhost-user.rst describes it, with one change of
 * method that the spec leaves to the back-end: the region is read once, at ring start, into a
 * private snapshot that is validated as a whole, and the ring's tracking state lives in
 * private memory from then on. The region is a write-only log for the next back-end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include "inflight.h"
#include "ring.h"
#include "util.h"
#include "vring.h"

size_t inflight_region_size(unsigned queue_size)
{
	/* Split: 16-byte header + 16 bytes per entry; packed: 32 + 32. Either fits. */
	size_t n = 32 + 32 * (size_t)queue_size;
	return (n + 63) & ~(size_t)63;
}

/* The region is a log the next back-end reads after we die: its stores must reach memory in
 * the order the spec's recovery steps assume. Only the compiler can reorder them here (a dead
 * process's stores are not reordered against each other by the CPU as another process sees
 * them after its death), so a compiler barrier is what is needed. */
static inline void log_order(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static void state_free(struct inflight *s)
{
	if (!s)
		return;
	free(s->next);
	free(s->busy);
	free(s->head_of);
	free(s->last);
	free(s->resub);
	free(s->copies);
	free(s);
}

static struct inflight *state_new(unsigned num, bool packed)
{
	struct inflight *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->num = (uint16_t)num;
	s->counter = 1;
	s->next = calloc(num, sizeof(*s->next));
	s->resub = calloc(num, sizeof(*s->resub));
	if (packed) {
		s->head_of = malloc(num * sizeof(*s->head_of));
		s->last = calloc(num, sizeof(*s->last));
		s->copies = calloc(num, sizeof(*s->copies));
		if (s->head_of)
			for (unsigned i = 0; i < num; i++)
				s->head_of[i] = INFLIGHT_NONE;
	} else {
		s->busy = calloc(num, sizeof(*s->busy));
	}
	if (!s->next || !s->resub || (packed && (!s->head_of || !s->last || !s->copies)) ||
	    (!packed && !s->busy)) {
		state_free(s);
		return NULL;
	}
	return s;
}

void inflight_reset(struct vhu_virtq *vq)
{
	state_free(vq->infs);
	vq->infs = NULL;
}

unsigned inflight_pending(const struct vhu_virtq *vq)
{
	return vq->infs ? vq->infs->nresub - vq->infs->pos : 0;
}

/* Resubmission order: the order the previous back-end took the requests in. */
static int by_counter(const void *a, const void *b)
{
	const struct inflight_resub *x = a, *y = b;

	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return x->head < y->head ? -1 : x->head > y->head;
}

static int region_invalid(struct vhu_virtq *vq, struct inflight *s, const char *what, unsigned a,
			  unsigned b)
{
	log_err(vq->lg, "vring %u: inflight region refused: %s (%u, %u); ring not started",
		vq->index, what, a, b);
	state_free(s);
	return -EINVAL;
}

/* ==== split rings ==== */

int inflight_split_start(struct vhu_virtq *vq)
{
	struct inflight_split *r = vq->inf, hdr;
	struct inflight_desc_split *snap;
	unsigned num = vq->num, n = 0;
	uint16_t used = le16toh(load_acquire16(&vq->split.used->idx));
	uint64_t max = 0;
	struct inflight *s;

	inflight_reset(vq);
	s = state_new(num, false);
	if (!s)
		return -ENOMEM;
	memcpy(&hdr, r, sizeof(hdr));
	if (hdr.version == 0) {
		/* A fresh buffer from GET_INFLIGHT_FD: nothing in flight. */
		memset(r->desc, 0, sizeof(r->desc[0]) * num);
		r->features = 0;
		r->desc_num = (uint16_t)num;
		r->last_batch_head = 0;
		r->used_idx = used;
		log_order();
		r->version = 1;
		vq->infs = s;
		return 0;
	}
	if (hdr.version != 1 || hdr.desc_num != num)
		return region_invalid(vq, s, "version and entries do not match the ring",
				      hdr.version, hdr.desc_num);
	snap = malloc(num * sizeof(*snap));
	if (!snap) {
		state_free(s);
		return -ENOMEM;
	}
	memcpy(snap, r->desc, num * sizeof(*snap));
	/* "If the value of used_idx does not match the idx value of used ring": the last batch
	 * was published but its inflight flags not yet cleared. */
	if (hdr.used_idx != used) {
		uint16_t batch = (uint16_t)(used - hdr.used_idx), h = hdr.last_batch_head;
		for (unsigned i = 0; i < batch && i < num && h < num; i++) {
			snap[h].inflight = 0;
			h = snap[h].next;
		}
	}
	for (unsigned i = 0; i < num; i++) {
		if (snap[i].inflight != 1)
			continue;
		s->resub[n++] =
			(struct inflight_resub){ .counter = snap[i].counter, .head = (uint16_t)i };
		s->busy[i] = 1;
		if (snap[i].counter > max)
			max = snap[i].counter;
	}
	free(snap);
	qsort(s->resub, n, sizeof(*s->resub), by_counter);
	s->nresub = n;
	s->counter = max + 1;
	/* The region as the next back-end must find it: exactly our in-flight set. */
	for (unsigned i = 0; i < num; i++)
		r->desc[i].inflight = s->busy[i];
	log_order();
	r->used_idx = used;
	/* Every buffer taken so far is either used or in flight: that is where to go on. */
	uint16_t avail = (uint16_t)(used + n);
	if (n || avail != vq->last_avail_idx)
		log_info(vq->lg, "vring %u: resubmitting %u requests in flight; avail %u (base %u)",
			 vq->index, n, avail, vq->last_avail_idx);
	vq->last_avail_idx = vq->shadow_avail_idx = avail;
	vq->used_idx = used;
	vq->infs = s;
	return 0;
}

int inflight_split_pop(struct vhu_virtq *vq, uint16_t head)
{
	struct inflight_split *r = vq->inf;
	struct inflight *s = vq->infs;

	/* A head can be in flight once: the driver may not offer it again before it is used. */
	if (s->busy[head])
		return ring_broken(vq, "avail ring offers head %u again while it is in flight",
				   head);
	s->busy[head] = 1;
	r->desc[head].counter = s->counter++;
	log_order();
	r->desc[head].inflight = 1;
	return 0;
}

void inflight_split_push(struct vhu_virtq *vq, uint16_t head)
{
	struct inflight_split *r = vq->inf;
	struct inflight *s = vq->infs;

	if (head >= s->num)
		return;
	s->next[head] = s->last_batch_head;
	r->desc[head].next = s->last_batch_head;
	s->last_batch_head = head;
	r->last_batch_head = head;
	s->batch++;
}

void inflight_split_flushed(struct vhu_virtq *vq)
{
	struct inflight_split *r = vq->inf;
	struct inflight *s = vq->infs;
	uint16_t h = s->last_batch_head;

	/* used->idx is published: clear the batch, then record the index we cleared up to. */
	for (unsigned i = 0; i < s->batch; i++) {
		r->desc[h].inflight = 0;
		s->busy[h] = 0;
		h = s->next[h];
	}
	log_order();
	r->used_idx = vq->used_idx;
	s->batch = 0;
}

/* ==== packed rings ==== */

/* Writes a fresh region: every entry free, in one list ending in num. */
static void packed_fresh(struct vhu_virtq *vq, struct inflight *s)
{
	struct inflight_packed *r = vq->inf;
	unsigned num = vq->num;

	memset(r->desc, 0, sizeof(r->desc[0]) * num);
	for (unsigned i = 0; i < num; i++)
		r->desc[i].next = s->next[i] = (uint16_t)(i + 1);
	r->features = 0;
	r->desc_num = (uint16_t)num;
	r->free_head = r->old_free_head = 0;
	r->used_idx = r->old_used_idx = vq->used_idx;
	r->used_wrap_counter = r->old_used_wrap_counter = vq->used_wrap;
	log_order();
	r->version = 1;
}

/* Entry owners while a snapshot is checked. */
enum { OWN_NONE, OWN_FREE, OWN_CHAIN };

#define BAD(w, x, y)                                                                               \
	do {                                                                                       \
		why = (w);                                                                         \
		bad_a = (x);                                                                       \
		bad_b = (y);                                                                       \
		goto bad;                                                                          \
	} while (0)

int inflight_packed_start(struct vhu_virtq *vq)
{
	struct inflight_packed *r = vq->inf, hdr;
	struct inflight_desc_packed *snap = NULL;
	unsigned num = vq->num, n = 0, total = 0;
	uint8_t *own = NULL;
	uint64_t max = 0;
	struct inflight *s;
	const char *why;
	unsigned bad_a, bad_b;

	inflight_reset(vq);
	s = state_new(num, true);
	if (!s)
		return -ENOMEM;
	memcpy(&hdr, r, sizeof(hdr));
	if (hdr.version == 0) {
		packed_fresh(vq, s);
		vq->infs = s;
		return 0;
	}
	if (hdr.version != 1 || hdr.desc_num != num)
		return region_invalid(vq, s, "version and entries do not match the ring",
				      hdr.version, hdr.desc_num);
	if (hdr.used_idx >= num || hdr.old_used_idx >= num)
		return region_invalid(vq, s, "used indices outside the ring", hdr.used_idx,
				      hdr.old_used_idx);
	/* "If used_idx does not match old_used_idx": a push was under way. If its used
	 * descriptor reached the ring, commit it, else roll it back. */
	uint16_t free_head = hdr.old_free_head, used_idx = hdr.old_used_idx;
	bool used_wrap = hdr.old_used_wrap_counter;
	if (hdr.used_idx != hdr.old_used_idx) {
		uint16_t f = le16toh(load_acquire16(&vq->pk.desc[hdr.old_used_idx].flags));
		if (!vring_packed_is_avail(f, hdr.old_used_wrap_counter)) {
			free_head = hdr.free_head;
			used_idx = hdr.used_idx;
			used_wrap = hdr.used_wrap_counter;
		}
	}
	snap = malloc(num * sizeof(*snap));
	own = calloc(num, 1);
	if (!snap || !own) {
		free(snap);
		free(own);
		state_free(s);
		return -ENOMEM;
	}
	memcpy(snap, r->desc, num * sizeof(*snap));
	/* Entries on the free list are not in flight, whatever their flag says (a pop or a push
	 * that was rolled back or committed above). A list that loops ends where it loops. */
	for (uint16_t h = free_head; h < num && own[h] == OWN_NONE; h = snap[h].next)
		own[h] = OWN_FREE;
	/* The requests in flight: each head's chain must be whole and its own. */
	for (unsigned i = 0; i < num; i++) {
		const struct inflight_desc_packed *hd = &snap[i];
		if (hd->inflight != 1 || own[i] == OWN_FREE)
			continue;
		if (own[i] == OWN_CHAIN)
			BAD("head entry inside another chain", i, 0);
		if (hd->num == 0 || hd->num > num - total)
			BAD("descriptor count of head entry", i, hd->num);
		uint16_t cur = (uint16_t)i, cnt = hd->num;
		struct inflight_resub *q = &s->resub[n];
		*q = (struct inflight_resub){ .counter = hd->counter,
					      .head = (uint16_t)i,
					      .first = (uint16_t)total,
					      .ndescs = cnt };
		for (unsigned k = 0; k < cnt; k++) {
			if (cur >= num || own[cur] != OWN_NONE)
				BAD("chain of head entry leaves the region", i, cur);
			own[cur] = OWN_CHAIN;
			s->copies[total + k] = (struct inflight_copy){
				.addr = snap[cur].addr,
				.len = snap[cur].len,
				.flags = snap[cur].flags,
			};
			if ((snap[cur].flags & VRING_DESC_F_INDIRECT) && cnt != 1)
				BAD("indirect descriptor inside a chain", i, cnt);
			q->id = snap[cur].id;
			if (k + 1 < cnt)
				cur = snap[cur].next;
		}
		if (hd->last != cur)
			BAD("last entry of head entry", i, hd->last);
		if (q->id >= num || s->head_of[q->id] != INFLIGHT_NONE)
			BAD("buffer id out of range or in flight twice", i, q->id);
		s->head_of[q->id] = (uint16_t)i;
		s->last[i] = cur;
		total += cnt;
		n++;
		if (hd->counter > max)
			max = hd->counter;
	}
	/* Everything not in a chain is free: one list, rebuilt by construction, written back so
	 * the next back-end finds the same. Chains keep their links. */
	uint16_t head = (uint16_t)num, *link = &head;
	for (unsigned i = 0; i < num; i++) {
		if (own[i] == OWN_CHAIN)
			continue;
		*link = (uint16_t)i;
		link = &s->next[i];
		r->desc[i].inflight = 0;
	}
	*link = (uint16_t)num;
	for (unsigned i = 0; i < num; i++) {
		if (own[i] == OWN_CHAIN)
			s->next[i] = snap[i].next;
		else
			r->desc[i].next = s->next[i];
	}
	free(snap);
	free(own);
	log_order();
	r->free_head = r->old_free_head = s->free_head = s->old_free_head = head;
	r->used_idx = r->old_used_idx = used_idx;
	r->used_wrap_counter = r->old_used_wrap_counter = used_wrap;
	qsort(s->resub, n, sizeof(*s->resub), by_counter);
	s->nresub = n;
	s->counter = max + 1;
	/* Taken so far = used + in flight: the ring position after them is where to go on. A
	 * full ring (total == num) ends on the used position, one wrap later. */
	unsigned pos = used_idx + total;
	bool wrap = used_wrap;
	if (pos >= num) {
		pos -= num;
		wrap = !wrap;
	}
	if (n || pos != vq->last_avail_idx)
		log_info(vq->lg, "vring %u: resubmitting %u requests in flight; avail %u (base %u)",
			 vq->index, n, pos, vq->last_avail_idx);
	vq->last_avail_idx = (uint16_t)pos;
	vq->avail_wrap = wrap;
	vq->used_idx = used_idx;
	vq->used_wrap = used_wrap;
	vq->infs = s;
	return 0;

bad:
	free(snap);
	free(own);
	return region_invalid(vq, s, why, bad_a, bad_b);
}

#undef BAD

int inflight_packed_desc(struct vhu_virtq *vq, unsigned k, uint64_t addr, uint32_t len,
			 uint16_t flags, uint16_t id)
{
	struct inflight_packed *r = vq->inf;
	struct inflight *s = vq->infs;

	/* "Set desc[free_head].addr, .len, .flags, .id to d.addr, d.len, d.flags, d.id": entries
	 * of the free list, taken in order; the head entry is old_free_head. */
	if (k == 0) {
		s->cursor = s->old_free_head;
		s->taken = 0;
	}
	uint16_t x = s->cursor;
	if (x >= s->num)
		return ring_broken(vq, "more descriptors in flight than the ring's %u entries",
				   s->num);
	r->desc[x].addr = addr;
	r->desc[x].len = len;
	r->desc[x].flags = flags;
	r->desc[x].id = id;
	s->last[s->old_free_head] = x;
	s->cursor = s->next[x];
	s->taken++;
	return 0;
}

int inflight_packed_pop(struct vhu_virtq *vq, uint16_t ndescs, uint16_t id)
{
	struct inflight_packed *r = vq->inf;
	struct inflight *s = vq->infs;
	uint16_t head = s->old_free_head;

	if (s->head_of[id] != INFLIGHT_NONE)
		return ring_broken(vq, "buffer id %u made available again while in flight", id);
	if (ndescs != s->taken || head >= s->num)
		return ring_broken(vq, "buffer id %u: %u descriptors, %u recorded", id, ndescs,
				   s->taken);
	/* "If d is head descriptor": a new entry, ordered by the global counter. */
	r->desc[head].num = ndescs;
	r->desc[head].last = s->last[head];
	r->desc[head].counter = s->counter++;
	log_order();
	r->desc[head].inflight = 1;
	log_order();
	/* "If d is last descriptor, set old_free_head to free_head". */
	s->free_head = s->old_free_head = s->cursor;
	r->free_head = s->cursor;
	log_order();
	r->old_free_head = s->cursor;
	s->head_of[id] = head;
	return 0;
}

void inflight_packed_push_begin(struct vhu_virtq *vq, uint16_t id, uint16_t used_idx,
				bool used_wrap)
{
	struct inflight_packed *r = vq->inf;
	struct inflight *s = vq->infs;
	uint16_t h = id < s->num ? s->head_of[id] : INFLIGHT_NONE;

	if (h == INFLIGHT_NONE)
		return;
	/* "Set desc[e.last].next to free_head; set free_head to the index of e". */
	uint16_t l = s->last[h];
	s->next[l] = s->free_head;
	r->desc[l].next = s->free_head;
	s->free_head = h;
	r->free_head = h;
	r->used_idx = used_idx;
	r->used_wrap_counter = used_wrap;
}

void inflight_packed_push_end(struct vhu_virtq *vq, uint16_t id, uint16_t used_idx, bool used_wrap)
{
	struct inflight_packed *r = vq->inf;
	struct inflight *s = vq->infs;
	uint16_t h = id < s->num ? s->head_of[id] : INFLIGHT_NONE;

	if (h == INFLIGHT_NONE)
		return;
	r->desc[h].inflight = 0;
	s->head_of[id] = INFLIGHT_NONE;
	log_order();
	s->old_free_head = s->free_head;
	r->old_free_head = s->free_head;
	r->old_used_idx = used_idx;
	r->old_used_wrap_counter = used_wrap;
}
