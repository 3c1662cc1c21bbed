/*
 * runtime/compose/gather.c: coil_gather, asyncio.gather.
 *
 * The calling task watches its children through a future set (fset.h) and
 * sleeps until all are done or, without COIL_GATHER_RETURN_EXCEPTIONS, one
 * has failed. Failures are looked for in completion order, so "the first
 * error" is the first to happen, as in asyncio, where the first failing
 * child's done-callback completes the outer future.
 *
 * Invariants: when coil_gather returns, no callback of the set is left on a
 * plain future; callbacks stay on children that are tasks and still run,
 * only to mark an error they end with as retrieved (asyncio's gather does
 * this too, so an abandoned child's failure is not reported as "never
 * retrieved"). Cancelling the gathering task cancels the children that are
 * not done, as cancelling asyncio's gather future does.
 *
 * Threads: the children may run, and complete, on any worker of the
 * runtime; their done-callbacks run on their own loops. `struct gather`
 * is read and written only by gather_ready, which the set always calls
 * under its lock, and by coil_gather after coil__fset_detach, whose lock
 * orders it after every callback that looked at it.
 */
#include "fset.h"

struct gather {
	unsigned flags;
	size_t scanned;           /* completions already looked at */
	size_t fail;              /* index of the first failure, or SIZE_MAX */
};

static bool failed_or_cancelled(const coil_future_t *f)
{
	return coil__future_failed(f) || coil_future_cancelled(f);
}

static bool gather_ready(coil__fset_t *s)
{
	struct gather *g = s->ctx;
	if (g->fail != SIZE_MAX)
		return true;
	if (!(g->flags & COIL_GATHER_RETURN_EXCEPTIONS)) {
		for (; g->scanned < s->nord; g->scanned++) {
			size_t i = s->order[g->scanned];
			if (failed_or_cancelled(s->slots[i].f)) {
				g->fail = i;
				return true;
			}
		}
	}
	return s->nord == s->n;
}

static void cancel_children(coil_future_t *const *fs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!coil_future_done(fs[i]))
			coil_future_cancel(fs[i], NULL);
}

/* Writes each future's outcome in argument order; marks errors retrieved. */
static void fill(coil_future_t *const *fs, size_t n, void **results,
		 int *errors)
{
	if (!results && !errors)
		return;
	for (size_t i = 0; i < n; i++) {
		void *r = NULL;
		int code = coil_future_result(fs[i], &r);
		if (results)
			results[i] = code ? NULL : r;
		if (errors)
			errors[i] = code;
	}
}

int coil_gather(coil_future_t *const *fs, size_t n, void **results,
		int *errors, unsigned flags)
{
	if (flags & ~COIL_GATHER_RETURN_EXCEPTIONS)
		return -EINVAL;
	if (n == 0)
		return 0;
	if (!fs)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!fs[i])
			return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc == -ECANCELED || rc == COIL_ECLOSED) {
		cancel_children(fs, n);
		fill(fs, n, results, errors);
		return rc;
	}
	if (rc)
		return rc;
	struct gather g = { .flags = flags, .scanned = 0, .fail = SIZE_MAX };
	coil__fset_t *s;
	rc = coil__fset_create(&s, fs, n, gather_ready, &g);
	if (rc)
		return rc;
	s->keep_tasks = true;
	rc = coil__fset_watch(s);
	if (rc == 0)
		rc = coil__fset_wait(s, t, COIL_FOREVER);
	coil__fset_detach(s);
	if (rc == -ECANCELED || rc == COIL_ECLOSED)
		cancel_children(fs, n);
	fill(fs, n, results, errors);
	if (rc)
		return rc;
	if (g.fail != SIZE_MAX)
		return coil_future_exception(fs[g.fail]);
	return 0;
}
