/*
 * runtime/compose/wait.c: coil_wait, asyncio.wait.
 *
 * The calling task watches the futures through a future set (fset.h) and
 * sleeps until the return_when condition holds or the timeout passes.
 * Which futures are done is read from the futures themselves when it
 * returns, as asyncio builds its done and pending sets. Neither a timeout
 * nor the cancellation of the waiting task cancels any future; every
 * callback the set registered is removed before returning.
 *
 * Threads: the futures may complete on any worker of the runtime; their
 * done-callbacks run on their own loops. `struct waitc` is touched only by
 * wait_ready, which the set calls under its lock; the deadline timer is
 * armed on the worker the calling task runs on, and the task stays there
 * until the wait is over (fset.c).
 */
#include <limits.h>

#include "fset.h"

struct waitc {
	int mode;
	size_t scanned;
};

static bool wait_ready(coil__fset_t *s)
{
	struct waitc *c = s->ctx;
	if (s->nord == s->n)
		return true;
	switch (c->mode) {
	case COIL_FIRST_COMPLETED:
		return s->nord > 0;
	case COIL_FIRST_EXCEPTION:
		for (; c->scanned < s->nord; c->scanned++)
			if (coil__future_failed(s->slots[s->order[c->scanned]].f))
				return true;
		return false;
	default:
		return false;
	}
}

int coil_wait(coil_future_t *const *fs, size_t n, bool *done, int return_when,
	      int64_t timeout_ns)
{
	if (n == 0 || n > INT_MAX || !fs)
		return -EINVAL;
	if (return_when != COIL_ALL_COMPLETED &&
	    return_when != COIL_FIRST_COMPLETED &&
	    return_when != COIL_FIRST_EXCEPTION)
		return -EINVAL;
	if (timeout_ns < 0 && timeout_ns != COIL_FOREVER)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!fs[i])
			return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	struct waitc c = { .mode = return_when, .scanned = 0 };
	coil__fset_t *s;
	rc = coil__fset_create(&s, fs, n, wait_ready, &c);
	if (rc)
		return rc;
	rc = coil__fset_watch(s);
	if (rc == 0)
		rc = coil__fset_wait(s, t, coil__deadline(s->loop, timeout_ns));
	coil__fset_detach(s);
	if (rc && rc != -ETIMEDOUT)
		return rc;
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		bool d = coil_future_done(fs[i]);
		if (done)
			done[i] = d;
		count += d;
	}
	return count;
}
