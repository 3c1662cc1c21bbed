/*
 * runtime/sched/inject.h: the runtime's global injection queue.
 *
 * Work spawned from outside the runtime and the overflow of full worker
 * deques go here; every worker polls it at a fixed tick even when its own
 * deque is busy, so nothing in it starves. It is a FIFO under a lock (as
 * Tokio's inject queue): items move in batches, so the lock is taken once
 * per batch, and an atomic length lets a worker skip the lock entirely
 * when the queue is empty. The lock is a spinlock: a mutex here sent the
 * submitter and the workers into futex calls at every collision (W4
 * spawn).
 *
 * The queue holds pointers to the nodes in a ring that grows as needed,
 * not a list through the nodes: a pop then reads a few lines of
 * consecutive pointers under the lock, instead of following the nodes'
 * links, a cache miss after a cache miss (each node was written by the
 * pusher's CPU) while pushers spin on the lock. Should the ring fail to
 * grow, the nodes queue behind it on a list through themselves (`over`),
 * so that a push never fails but for a closed queue; the ring shrinks
 * back when the queue empties.
 *
 * Who touches what: ring, cap, head, n, over and closed under `lock`;
 * `len` (n plus over's length) written under the lock (release) and read
 * without it (acquire) as a hint.
 */
#ifndef COIL_SCHED_INJECT_H
#define COIL_SCHED_INJECT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "list.h"
#include "spin.h"

typedef struct coil__inject {
	coil__spin_t lock;
	coil__fnode_t **ring;     /* cap slots (a power of two, or 0) */
	size_t cap, head, n;      /* the oldest at ring[head], n of them */
	coil__fifo_t over;        /* behind the ring: it could not grow */
	size_t max_cap;           /* 0, or the most slots the ring may
				   * have (tests: over's path) */
	atomic_size_t len;
	bool closed;
} coil__inject_t;

void coil__inject_init(coil__inject_t *in);
/* Frees the ring; the queue must be empty (drained after close). */
void coil__inject_fini(coil__inject_t *in);

/* Any thread: appends every node of batch (emptied). Returns false, leaving
 * batch as it was, if the queue is closed. */
bool coil__inject_push_batch(coil__inject_t *in, coil__fifo_t *batch);

/* The same, and sets *was_empty (unless NULL) to whether the queue held
 * nothing just before the batch went in, as seen under the lock: only such
 * a push has to run the wake-up check of the parking protocol (see
 * coil__runtime_inject). */
bool coil__inject_push_batch_ex(coil__inject_t *in, coil__fifo_t *batch, bool *was_empty);

/* The same for an array of n nodes, which it does not touch while the
 * ring has room (their links are left as they are). */
bool coil__inject_push_nodes(coil__inject_t *in, coil__fnode_t *const *nodes, size_t n,
			     bool *was_empty);

/* Any thread: appends one node. Returns false if closed. */
bool coil__inject_push(coil__inject_t *in, coil__fnode_t *n);

/* The same, with coil__inject_push_batch_ex's *was_empty. */
bool coil__inject_push_ex(coil__inject_t *in, coil__fnode_t *n, bool *was_empty);

/* Any thread: moves up to max nodes, oldest first, to the tail of out, at
 * most COIL__INJECT_POP_MAX per call. Returns how many (0: empty). */
#define COIL__INJECT_POP_MAX 64
size_t coil__inject_pop_batch(coil__inject_t *in, coil__fifo_t *out, size_t max);

/* Any thread: the number of queued nodes, without the lock (a hint). */
static inline size_t coil__inject_len(const coil__inject_t *in)
{
	return atomic_load_explicit(&in->len, memory_order_acquire);
}

/* Closes the queue: later pushes fail. What is queued stays for the
 * caller to drain. */
void coil__inject_close(coil__inject_t *in);

#endif
