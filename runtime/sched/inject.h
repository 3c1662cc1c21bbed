/*
 * runtime/sched/inject.h: the runtime's global injection queue.
 *
 * Work spawned from outside the runtime and the overflow of full worker
 * deques go here; every worker polls it at a fixed tick even when its own
 * deque is busy, so nothing in it starves. It is a mutex-protected
 * intrusive FIFO (as Tokio's inject queue): items move in batches, so the
 * lock is taken once per batch (twice for a pop, which cuts its batch out
 * of the whole list between the two, see coil__inject_pop_batch_ex), and
 * an atomic length lets a worker skip the lock entirely when the queue is
 * empty. The lock is a spinlock: a mutex here sent the submitter and the
 * workers into futex calls at every collision (W4 spawn).
 *
 * Who touches what: head/tail under `lock`; `len` written under the lock
 * (release) and read without it (acquire) as a hint; `closed` under the lock.
 */
#ifndef COIL_SCHED_INJECT_H
#define COIL_SCHED_INJECT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "list.h"
#include "spin.h"

typedef struct coil__inject {
	coil__spin_t lock;
	coil__fifo_t q;
	atomic_size_t len;
	bool closed;
} coil__inject_t;

void coil__inject_init(coil__inject_t *in);
void coil__inject_fini(coil__inject_t *in);

/* Any thread: appends every node of batch (emptied). Returns false, leaving
 * batch as it was, if the queue is closed. */
bool coil__inject_push_batch(coil__inject_t *in, coil__fifo_t *batch);

/* The same, and sets *was_empty (unless NULL) to whether the queue held
 * nothing just before the batch went in, as seen under the lock: only such
 * a push has to run the wake-up check of the parking protocol (see
 * coil__runtime_inject). */
bool coil__inject_push_batch_ex(coil__inject_t *in, coil__fifo_t *batch, bool *was_empty);

/* Any thread: appends one node. Returns false if closed. */
bool coil__inject_push(coil__inject_t *in, coil__fnode_t *n);

/* The same, with coil__inject_push_batch_ex's *was_empty. */
bool coil__inject_push_ex(coil__inject_t *in, coil__fnode_t *n, bool *was_empty);

/* Any thread: moves up to max nodes, oldest first, to the tail of out.
 * Returns how many. */
size_t coil__inject_pop_batch(coil__inject_t *in, coil__fifo_t *out, size_t max);

/* The same, and sets *returned (unless NULL) to whether nodes beyond max
 * went back to the queue. While a pop cuts its batch (outside the lock)
 * the queue looks empty to other poppers, and one of them may set `len`
 * to 0 meanwhile: a popper that put nodes back runs the wake-up check of
 * the parking protocol, as a push onto an empty queue does. */
size_t coil__inject_pop_batch_ex(coil__inject_t *in, coil__fifo_t *out, size_t max,
				 bool *returned);

/* Any thread: the number of queued nodes, without the lock (a hint). */
static inline size_t coil__inject_len(const coil__inject_t *in)
{
	return atomic_load_explicit(&in->len, memory_order_acquire);
}

/* Closes the queue: later pushes fail. What is queued stays for the
 * caller to drain. */
void coil__inject_close(coil__inject_t *in);

#endif
