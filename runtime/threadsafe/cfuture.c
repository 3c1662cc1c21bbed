/*
 * runtime/threadsafe/cfuture.c: concurrent futures (see coil/threadsafe.h),
 * Python's concurrent.futures.Future.
 *
 * Protocol: a mutex guards the outcome, the list of done-callbacks and the
 * count of blocked waiters; a condition variable on CLOCK_MONOTONIC (so that
 * a change of the wall clock cannot stretch or cut a timeout) wakes them.
 * The outcome is written once, by the one call that moves the state out of
 * PENDING (completion or cancellation), under the lock; whoever wins takes
 * the callback list with it, and runs the callbacks after unlocking, so that
 * a callback may use the future freely. Every other call only reads.
 *
 * References are counted with an atomic. The last release runs the result's
 * destructor on its own thread; the acq_rel decrement makes every write the
 * other holders made (their completion included) visible to it.
 *
 * Nothing here belongs to a loop: any thread may call anything at any time.
 * Futures with a task behind them (run_coroutine_threadsafe.c) embed this
 * struct and hook cancellation through ops. Today each loop has one thread;
 * the multi-core scheduler will complete these futures from any worker with
 * no change here.
 */
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "core.h"
#include "cfuture.h"

int coil__cfuture_init(coil_cfuture_t *f, const coil__cfuture_ops_t *ops,
		       coil_loop_t *loop, unsigned refs)
{
	pthread_condattr_t ca;
	int err = pthread_condattr_init(&ca);
	if (err)
		return -err;
	err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(&f->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (err)
		return -err;
	err = pthread_mutex_init(&f->lock, NULL);
	if (err) {
		pthread_cond_destroy(&f->cond);
		return -err;
	}
	f->state = COIL__CF_PENDING;
	f->code = 0;
	f->result = NULL;
	f->dtor = NULL;
	f->msg = NULL;
	coil__fifo_init(&f->cbs);
	f->waiters = 0;
	atomic_init(&f->refs, refs);
	f->ops = ops;
	f->loop = loop;
	return 0;
}

void coil__cfuture_fini(coil_cfuture_t *f)
{
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
}

int coil_cfuture_create(coil_cfuture_t **out)
{
	if (!out)
		return -EINVAL;
	coil_cfuture_t *f = coil__malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	int rc = coil__cfuture_init(f, NULL, NULL, 1);
	if (rc) {
		coil__free(f, sizeof(*f));
		return rc;
	}
	*out = f;
	return 0;
}

coil_cfuture_t *coil_cfuture_ref(coil_cfuture_t *f)
{
	/* Relaxed: the caller already holds a reference, so the count cannot
	 * reach zero meanwhile, and taking one publishes nothing. */
	if (f)
		atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	return f;
}

void coil_cfuture_release(coil_cfuture_t *f)
{
	if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (f->state == COIL__CF_RESULT && f->dtor && f->result)
		f->dtor(f->result);
	coil__strfree(f->msg);
	/* Only a future released while still pending has callbacks left: they
	 * will never run. */
	coil__fnode_t *n;
	while ((n = coil__fifo_pop(&f->cbs)))
		coil__free(coil__container_of(n, coil__cfuture_cb_t, node),
			   sizeof(coil__cfuture_cb_t));
	coil__cfuture_fini(f);
	if (f->ops)
		f->ops->free(f);
	else
		coil__free(f, sizeof(*f));
}

/* Runs and frees the callbacks taken from a future that just completed. */
static void run_callbacks(coil_cfuture_t *f, coil__fnode_t *n)
{
	while (n) {
		coil__cfuture_cb_t *cb = coil__container_of(n, coil__cfuture_cb_t, node);
		n = n->next;
		cb->fn(f, cb->arg);
		coil__free(cb, sizeof(*cb));
	}
}

/* With the lock held: takes the callbacks and wakes the waiters of a
 * future whose outcome was just written. Returns the callbacks. */
static coil__fnode_t *settle_locked(coil_cfuture_t *f)
{
	coil__fnode_t *n = f->cbs.head;
	coil__fifo_init(&f->cbs);
	if (f->waiters)
		pthread_cond_broadcast(&f->cond);
	return n;
}

bool coil__cfuture_complete(coil_cfuture_t *f, int ret, void *result,
			    coil_dtor dtor, char *msg)
{
	pthread_mutex_lock(&f->lock);
	if (f->state != COIL__CF_PENDING) {
		pthread_mutex_unlock(&f->lock);
		return false;
	}
	if (ret == 0) {
		f->state = COIL__CF_RESULT;
		f->result = result;
		f->dtor = dtor;
		coil__strfree(msg);
	} else if (ret == -ECANCELED) {
		f->state = COIL__CF_CANCELLED;
		coil__strfree(msg);
	} else {
		f->state = COIL__CF_ERROR;
		f->msg = msg;
	}
	f->code = ret;
	coil__fnode_t *cbs = settle_locked(f);
	pthread_mutex_unlock(&f->lock);
	run_callbacks(f, cbs);
	return true;
}

bool coil_cfuture_cancel(coil_cfuture_t *f)
{
	if (!f)
		return false;
	pthread_mutex_lock(&f->lock);
	if (f->state != COIL__CF_PENDING) {
		pthread_mutex_unlock(&f->lock);
		return false;
	}
	f->state = COIL__CF_CANCELLED;
	f->code = -ECANCELED;
	coil__fnode_t *cbs = settle_locked(f);
	if (f->ops && f->ops->cancelled)
		f->ops->cancelled(f);
	pthread_mutex_unlock(&f->lock);
	run_callbacks(f, cbs);
	return true;
}

int coil_cfuture_set_result(coil_cfuture_t *f, void *value, coil_dtor dtor)
{
	if (!f)
		return -EINVAL;
	if (f->ops || !coil__cfuture_complete(f, 0, value, dtor, NULL))
		return COIL_EINVALSTATE;
	return 0;
}

int coil_cfuture_set_exception(coil_cfuture_t *f, int err, const char *msg)
{
	if (!f || err >= 0)
		return -EINVAL;
	if (f->ops)
		return COIL_EINVALSTATE;
	char *m = NULL;
	if (msg && !(m = coil__strdup(msg)))
		return -ENOMEM;
	if (!coil__cfuture_complete(f, err, NULL, NULL, m)) {
		coil__strfree(m);
		return COIL_EINVALSTATE;
	}
	return 0;
}

int coil_cfuture_add_done_callback(coil_cfuture_t *f, coil_cfuture_cb cb,
				   void *arg)
{
	if (!f || !cb)
		return -EINVAL;
	coil__cfuture_cb_t *c = coil__malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fn = cb;
	c->arg = arg;
	pthread_mutex_lock(&f->lock);
	if (f->state == COIL__CF_PENDING) {
		coil__fifo_push(&f->cbs, &c->node);
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	pthread_mutex_unlock(&f->lock);
	/* Already done: at once, on this thread, as Python does. */
	c->node.next = NULL;
	run_callbacks(f, &c->node);
	return 0;
}

/* With the lock held: the outcome as coil_cfuture_wait returns it. */
static int outcome_locked(const coil_cfuture_t *f, void **result)
{
	switch (f->state) {
	case COIL__CF_PENDING:
		return -ETIMEDOUT;
	case COIL__CF_RESULT:
		if (result)
			*result = f->result;
		return 0;
	default:
		return f->code;
	}
}

/*
 * The absolute CLOCK_MONOTONIC deadline `timeout_ns` from now. Returns
 * false when it lies so far ahead (beyond a century) that waiting without a
 * deadline is the same, which also keeps the sum from overflowing.
 */
static bool deadline_in(int64_t timeout_ns, struct timespec *ts)
{
	const int64_t century = (int64_t)100 * 365 * 24 * 3600 * COIL_NSEC_PER_SEC;
	if (timeout_ns > century)
		return false;
	clock_gettime(CLOCK_MONOTONIC, ts);
	int64_t ns = ts->tv_nsec + timeout_ns % COIL_NSEC_PER_SEC;
	ts->tv_sec += (time_t)(timeout_ns / COIL_NSEC_PER_SEC + ns / COIL_NSEC_PER_SEC);
	ts->tv_nsec = (long)(ns % COIL_NSEC_PER_SEC);
	return true;
}

int coil_cfuture_wait(coil_cfuture_t *f, int64_t timeout_ns, void **result)
{
	if (!f || timeout_ns < COIL_FOREVER)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	if (f->state == COIL__CF_PENDING && timeout_ns != 0) {
		/* The loop that must complete f cannot while its own thread
		 * sleeps here: refuse instead of hanging. Handed to
		 * COIL_ANY_WORKER, any worker may run it, so only a runtime
		 * of one worker, waited on from that worker, is sure to
		 * hang. */
		coil_loop_t *cur = coil_get_running_loop();
		if (f->loop && cur &&
		    (cur == f->loop || (f->loop->any && cur->rt == f->loop->rt &&
					cur->rt->n == 1))) {
			pthread_mutex_unlock(&f->lock);
			return -EDEADLK;
		}
		struct timespec dl;
		bool bounded = timeout_ns > 0 && deadline_in(timeout_ns, &dl);
		f->waiters++;
		while (f->state == COIL__CF_PENDING) {
			if (!bounded)
				pthread_cond_wait(&f->cond, &f->lock);
			else if (pthread_cond_timedwait(&f->cond, &f->lock, &dl) == ETIMEDOUT)
				break;
		}
		f->waiters--;
	}
	int rc = outcome_locked(f, result);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

bool coil_cfuture_done(coil_cfuture_t *f)
{
	if (!f)
		return false;
	pthread_mutex_lock(&f->lock);
	bool done = f->state != COIL__CF_PENDING;
	pthread_mutex_unlock(&f->lock);
	return done;
}

bool coil_cfuture_cancelled(coil_cfuture_t *f)
{
	if (!f)
		return false;
	pthread_mutex_lock(&f->lock);
	bool c = f->state == COIL__CF_CANCELLED;
	pthread_mutex_unlock(&f->lock);
	return c;
}

const char *coil_cfuture_error_message(coil_cfuture_t *f)
{
	if (!f)
		return NULL;
	/* The message never changes once set, so the pointer stays good
	 * after the unlock for as long as the caller's reference. */
	pthread_mutex_lock(&f->lock);
	const char *m = f->state == COIL__CF_ERROR ? f->msg : NULL;
	pthread_mutex_unlock(&f->lock);
	return m;
}
