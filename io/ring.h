/*
 * io/ring.h: one io_uring per loop (worker).
 *
 * The ring is set up with the best flags the kernel accepts
 * (SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then none), and a loop
 * waits in it for completions, timer expiry (the wait's timeout) and
 * cross-thread wake-ups (an eventfd read kept armed in the ring), so one
 * kernel wait covers all three. Every submitted operation carries a
 * coil__ring_op whose handler runs when its completion is reaped.
 * Operations (io/) queue their SQEs through ring_int.h; the loop submits
 * them all at once in its next coil__ring_wait.
 *
 * Threads: everything but coil__ring_wake is for the owning thread only;
 * coil__ring_wake may be called from any thread.
 *
 * This file and io/ are the only places that include liburing.h; the ring
 * struct is kept opaque to the rest of the runtime.
 */
#ifndef COIL_IO_RING_H
#define COIL_IO_RING_H

#include <stdint.h>
#include <stdbool.h>

typedef struct coil__ring coil__ring_t;

typedef struct coil__ring_op {
	/* Runs on the owning thread when the completion is reaped. */
	void (*complete)(struct coil__ring_op *op, int res, unsigned flags);
} coil__ring_op_t;

/*
 * Creates a ring with `entries` SQ entries (0: 256; at least 4) and a CQ
 * eight times that. A portable ring may be driven by one thread and then
 * another while operations are in flight (a runtime's worker 0, which
 * block_on runs on the caller's thread): it keeps SINGLE_ISSUER and
 * DEFER_TASKRUN where the kernel can also cancel everything at once (what
 * is in flight then ends when the ring moves and is submitted again on
 * the next thread, coil__ring_quiesce), and does without them elsewhere. Returns 0 or a negative errno; when io_uring is
 * unavailable (-ENOSYS, -EPERM, -ENOMEM from the setup) it prints why and
 * what to do on stderr, once per process. With COIL_DEBUG=1 in the
 * environment, the first ring of the process prints the setup flags, kernel
 * features and opcodes it found.
 */
int coil__ring_create(coil__ring_t **out, unsigned entries, bool portable);

/*
 * Makes the calling thread the ring's submitter. With SINGLE_ISSUER only the
 * thread that set the ring up may enter it, so a loop made on one thread
 * and run on another (asyncio's run-a-loop-in-a-thread pattern) gets a
 * fresh ring with the same flags and the same wake-up eventfd. Operations
 * still in flight (coil__ring_quiesce could not end them) stay with the
 * old ring, which is kept open until coil__ring_destroy (the kernel may
 * still write into their memory): their tasks never resume, and a loop's
 * shutdown abandons them. Returns 0 or a negative errno.
 */
int coil__ring_rebind(coil__ring_t *r);

/*
 * Before the owning thread stops driving the ring (it may never enter it
 * again, and with SINGLE_ISSUER no other thread can): cancels every
 * operation in flight and reaps until none is left, so that no task waits
 * for a completion nobody could reap. The operations' handlers run here;
 * io/ operations woken this way are submitted again by their task on the
 * ring's next thread (coil__ring_rebind), transparently. Waits at most a
 * few seconds for operations the kernel cannot interrupt. Needs
 * IORING_ASYNC_CANCEL_ANY (5.19); a no-op without it, with nothing in
 * flight, or for a portable ring (whose operations carry on).
 */
void coil__ring_quiesce(coil__ring_t *r);

/* Closes the ring. Operations still in flight are abandoned: callers must
 * have drained their own operations. */
void coil__ring_destroy(coil__ring_t *r);

/*
 * Submits what is queued and reaps completions, waiting up to timeout_ns
 * (COIL_FOREVER: no limit; 0: do not block) for at least one completion or a
 * wake-up. Skips the kernel entirely when it must not block and nothing is
 * queued or in flight. Returns the number of completions dispatched, or a
 * negative errno.
 */
int coil__ring_wait(coil__ring_t *r, int64_t timeout_ns);

/* Wakes a thread waiting in coil__ring_wait. Any thread; async-signal-safe
 * (a write to an eventfd). */
void coil__ring_wake(coil__ring_t *r);

/* The ring's setup flags and features, for diagnostics. */
unsigned coil__ring_setup_flags(const coil__ring_t *r);
unsigned coil__ring_features(const coil__ring_t *r);

/* Returns the number of completions owed to operations in flight, queued
 * ones not yet submitted included, the wake-up read excluded: while it is
 * not 0 the loop must keep calling coil__ring_wait. */
unsigned coil__ring_inflight(const coil__ring_t *r);
/* Whether completions are waiting to be reaped: in the CQ, or, on a ring
 * that defers them to the next enter, announced by the kernel
 * (IORING_SETUP_TASKRUN_FLAG). No system call. The ring's thread only. */
bool coil__ring_has_events(coil__ring_t *r);
/* Where r keeps that count, for the loop's inline checks (runtime/core.h):
 * valid as long as r. */
const unsigned *coil__ring_inflight_ptr(const coil__ring_t *r);

#endif
