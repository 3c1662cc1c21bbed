/*
 * runtime/threadsafe/cfuture.h: the concurrent future's internals, shared by
 * cfuture.c (the future itself) and run_coroutine_threadsafe.c (the bridge
 * from a loop's task to it).
 *
 * A coil_cfuture_t is a lock, a condition variable and an outcome. Whatever
 * has a task behind it embeds the struct in a bigger one and gives ops: a
 * hook that forwards a cancellation to the task and the function that frees
 * the container.
 *
 * Threads: every field is behind `lock` except refs (atomic) and those set
 * once before the future is shared (ops, loop), which are read-only after.
 */
#ifndef COIL_RUNTIME_THREADSAFE_CFUTURE_H
#define COIL_RUNTIME_THREADSAFE_CFUTURE_H

#include <pthread.h>
#include <stdatomic.h>

#include "coil/coil.h"
#include "coil/threadsafe.h"
#include "list.h"

enum {
	COIL__CF_PENDING = 0,
	COIL__CF_RESULT,
	COIL__CF_ERROR,
	COIL__CF_CANCELLED
};

typedef struct coil__cfuture_ops {
	/*
	 * Called by coil_cfuture_cancel on the cancelling thread, with f's lock
	 * held, right after f went from pending to cancelled. Holding the lock
	 * is the point: the side that completes f takes it too, so it cannot
	 * finish (and let its loop be freed) while the cancellation is being
	 * handed over. It must not take f's lock or call back into f.
	 */
	void (*cancelled)(coil_cfuture_t *f);
	/* Frees the container once the last reference went and the outcome
	 * was destroyed. */
	void (*free)(coil_cfuture_t *f);
} coil__cfuture_ops_t;

/* A done-callback, in the future's FIFO until it runs. */
typedef struct coil__cfuture_cb {
	coil__fnode_t node;
	coil_cfuture_cb fn;
	void *arg;
} coil__cfuture_cb_t;

struct coil_cfuture {
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* signalled (broadcast) on completion */
	/* Behind lock. The outcome is written once, when state leaves
	 * PENDING, and never changes afterwards. */
	uint8_t state;
	int code;
	void *result;
	coil_dtor dtor;
	char *msg;                /* coil__strdup'ed, or NULL */
	coil__fifo_t cbs;         /* done-callbacks not yet run */
	unsigned waiters;         /* threads blocked in coil_cfuture_wait */
	/* Atomic: acq_rel decrements, so that the thread freeing the future
	 * sees every write made by the others before they let go. */
	atomic_uint refs;
	/* Read-only once shared. */
	const coil__cfuture_ops_t *ops; /* NULL for coil_cfuture_create's */
	coil_loop_t *loop;        /* the loop that completes it, or NULL */
};

/* Initialises f with `refs` references. Returns 0 or a negative errno. */
int coil__cfuture_init(coil_cfuture_t *f, const coil__cfuture_ops_t *ops,
		       coil_loop_t *loop, unsigned refs);

/* Destroys what coil__cfuture_init made, for a future never shared. */
void coil__cfuture_fini(coil_cfuture_t *f);

/*
 * Completes f with a body's outcome: ret 0 takes result (and its dtor),
 * -ECANCELED cancels, any other value is an error with msg (a coil__strdup
 * string or NULL), which f then owns. Wakes the waiters and runs the
 * done-callbacks on the calling thread, which must hold a reference.
 * Returns false, taking nothing, if f was already done (cancelled): the
 * caller then disposes of result and msg.
 */
bool coil__cfuture_complete(coil_cfuture_t *f, int ret, void *result,
			    coil_dtor dtor, char *msg);

#endif
