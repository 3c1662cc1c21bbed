/*
 * runtime/executor/executor_int.h: what the thread pool, the process pool
 * and the default-executor table share.
 *
 * Completions. A job of either pool ends with an outcome that must reach
 * its future. A concurrent future (coil_cfuture_t) may be completed from any
 * thread, and is completed right where the job ended. A loop future
 * (coil_future_t) belongs to its loop: the pool thread (or the process
 * pool's manager thread) collects the outcomes of the jobs it ended into a
 * batch and hands the whole batch to the future's loop with one
 * coil__loop_call_soon_threadsafe_ex, whose callback resolves them all on
 * the loop's thread. One hand-over (one inbox push, at most one eventfd
 * write when the loop sleeps) per batch instead of one per job is what
 * makes small jobs cheap, and resolving on the loop's own thread keeps the
 * futures' single-thread fast paths valid on a one-worker loop, where
 * futures take no locks.
 *
 * Threads: a coil__xdone_t belongs to whoever holds it (the pool while the
 * job is queued or running, the batch while it is being handed over, the
 * loop's callback once it runs). A coil__xbatch_t belongs to one thread.
 */
#ifndef COIL_RUNTIME_EXECUTOR_INT_H
#define COIL_RUNTIME_EXECUTOR_INT_H

#include "coil/coil.h"
#include "coil/executor.h"

/* How a job's memory is freed (the pool that made it). */
enum { COIL__XJOB_THREAD = 1, COIL__XJOB_PROCESS };

/*
 * A job of either pool, from its submission until its outcome reached its
 * future. 48 bytes for a thread-pool job: W7 keeps 100,000 of them alive
 * at once, and on a machine where a first-touch page fault costs 12 us
 * their memory is a good part of the cost. The job's input (fn, arg) and
 * its outcome (result, msg) share their place: the one is read before the
 * other is written.
 */
typedef struct coil__xdone coil__xdone_t;
struct coil__xdone {
	coil__xdone_t *next;      /* queue link, then batch link */
	union {
		coil_future_t *fut;   /* a reference (is_cfut false) */
		coil_cfuture_t *cfut; /* a reference (is_cfut true) */
	};
	coil_dtor dtor;           /* the result's destructor, or NULL */
	union {
		struct {              /* a thread-pool job before it runs */
			coil_fn fn;
			void *arg;
		};
		struct {              /* the outcome, owned until handed on */
			void *result;
			char *msg;    /* coil__strdup'ed message, or NULL */
		};
	};
	int32_t rc;               /* 0, an error, or -ECANCELED (cancelled) */
	bool is_cfut;             /* which future the job has */
	uint8_t type;             /* COIL__XJOB_*: how to free it */
};

/* Records an outcome (over the job's input). */
static inline void coil__xdone_set(coil__xdone_t *d, int rc, void *result, char *msg)
{
	d->rc = rc;
	d->result = result;
	d->msg = msg;
}

/* Frees a job of each pool (their files). */
void coil__thread_job_free(coil__xdone_t *d);
void coil__process_job_free(coil__xdone_t *d);

/* Whether the job's future was cancelled (or otherwise completed) before
 * the job ran: then it must not run. Any thread. */
bool coil__xdone_abandoned(coil__xdone_t *d);

/* Gives up on d's outcome: destroys its result and message, drops its
 * future and frees d. Used when nothing will ever look at the outcome. */
void coil__xdone_dispose(coil__xdone_t *d);

/* A batch of ended jobs whose loop futures go to one loop. */
typedef struct coil__xbatch {
	coil__xdone_t *head;
	coil__xdone_t **tailp;
	coil_loop_t *loop;
	size_t n;
} coil__xbatch_t;

static inline void coil__xbatch_init(coil__xbatch_t *b)
{
	b->head = NULL;
	b->tailp = &b->head;
	b->loop = NULL;
	b->n = 0;
}

/*
 * Adds an ended job to the batch. A concurrent future is completed at once
 * (and d freed); a loop future joins the batch, which is first flushed if
 * it holds jobs of another loop.
 */
void coil__xbatch_add(coil__xbatch_t *b, coil__xdone_t *d);

/* Hands the batch to its loop (one cross-thread call) and empties it. */
void coil__xbatch_flush(coil__xbatch_t *b);

/* The number of CPUs in the process's affinity mask (at least 1). */
unsigned coil__executor_cpus(void);

/* Whether ex is still accepting jobs (for the default table). */
bool coil__executor_closed(coil_executor_t *ex);

/* Marks ex as made by coil (a default executor). */
void coil__executor_set_internal(coil_executor_t *ex);
bool coil__executor_internal(coil_executor_t *ex);

/*
 * The default executor of the running loop's owner (its runtime, or the
 * loop itself), made on first use. Returns it borrowed (valid while the
 * owner is open) or NULL with *err set. Loop thread.
 */
coil_executor_t *coil__executor_default(coil_loop_t *loop, int *err);

#endif
