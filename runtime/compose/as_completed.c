/*
 * runtime/compose/as_completed.c: the as_completed iterator
 * (asyncio.as_completed).
 *
 * The iterator watches its futures through a future set (fset.h) from the
 * moment it is made, so that completions are recorded in order whether or
 * not a task is waiting in next; next yields them in that order. The total
 * timeout runs from creation: a completion recorded at or after the
 * deadline is not (asyncio's timeout callback runs first and stops
 * watching), and once the deadline has passed, next yields what completed
 * before it and then returns -ETIMEDOUT.
 *
 * Invariants: yielded <= set->nord <= n; the iterator holds a reference to
 * each future until it is destroyed, so the futures it yields stay valid.
 * A task cancelled in next loses nothing: the completion stays recorded.
 *
 * Threads: the futures may complete on any worker of the runtime, and
 * their callbacks run on their own loops; the task calling next may run on
 * any worker. `yielded` is read by ac_ready under the set's lock, so next
 * reads and advances it under that lock too; `expired` and `deadline`
 * belong to the tasks calling next, one at a time (a second one waiting
 * gets -EBUSY). Destroying the iterator while another task is inside next
 * is defined only while that task is suspended in it, or woken and not
 * yet past its wait: another worker cannot tell the two apart, so next
 * keeps a reference to the set across its wait and destroy clears s->ctx
 * under the set's lock first; next then returns COIL_ECLOSED.
 */
#include "alloc.h"
#include "fset.h"

struct coil_as_completed {
	coil__fset_t *set;
	size_t yielded;
	int64_t deadline;
	bool expired;
};

static bool ac_ready(coil__fset_t *s)
{
	coil_as_completed_t *it = s->ctx;
	return s->nord > it->yielded;
}

int coil_as_completed_create(coil_as_completed_t **out,
			     coil_future_t *const *fs, size_t n,
			     int64_t timeout_ns)
{
	if (!out || (timeout_ns < 0 && timeout_ns != COIL_FOREVER))
		return -EINVAL;
	coil_as_completed_t *it = coil__malloc(sizeof(*it));
	if (!it)
		return -ENOMEM;
	int rc = coil__fset_create(&it->set, fs, n, ac_ready, it);
	if (rc) {
		coil__free(it, sizeof(*it));
		return rc;
	}
	it->yielded = 0;
	it->expired = false;
	it->deadline = coil__deadline(it->set->loop, timeout_ns);
	it->set->until = it->deadline;
	for (size_t i = 0; i < n; i++)
		coil_future_ref(fs[i]);
	rc = coil__fset_watch(it->set);
	if (rc) {
		coil_as_completed_destroy(it);
		return rc;
	}
	*out = it;
	return 0;
}

static void expire(coil_as_completed_t *it)
{
	it->expired = true;
	coil__fset_stop(it->set);
}

int coil_as_completed_next(coil_as_completed_t *it, coil_future_t **f)
{
	if (!it || !f)
		return -EINVAL;
	coil__fset_t *s = it->set;
	coil__lock(&s->lock);
	bool all = it->yielded == s->n;
	coil__unlock(&s->lock);
	if (all)
		return COIL_EDONE;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	if (!it->expired && it->deadline != COIL_FOREVER &&
	    coil__loop_now(s->loop) >= it->deadline)
		expire(it);
	bool waited = !it->expired;
	if (waited) {
		/* Once woken, by a completion on another worker say, we may
		 * run while another worker destroys the iterator: from there
		 * it cannot tell that we are no longer waiting. Our reference
		 * keeps the set, and destroy clears s->ctx under its lock
		 * before it frees `it`, which we touch from then on only
		 * under that lock while s->ctx is still set. */
		coil__fset_ref(s);
		rc = coil__fset_wait(s, t, it->deadline);
		if (rc && rc != -ETIMEDOUT) {
			coil__fset_unref(s);
			return rc; /* on COIL_ECLOSED, it may be gone */
		}
	}
	bool timed_out = rc == -ETIMEDOUT;
	coil__lock(&s->lock);
	if (!s->ctx) {
		coil__unlock(&s->lock);
		if (waited)
			coil__fset_unref(s);
		return COIL_ECLOSED;
	}
	if (timed_out)
		it->expired = true;
	rc = -ETIMEDOUT;
	if (s->nord > it->yielded) {
		*f = s->slots[s->order[it->yielded++]].f;
		rc = 0;
	}
	coil__unlock(&s->lock);
	if (timed_out) {
		/* Stop watching (expire), outside the lock; completions from
		 * the deadline on are not recorded anyway (s->until). */
		coil__fset_stop(s);
	}
	if (waited)
		coil__fset_unref(s);
	return rc;
}

void coil_as_completed_destroy(coil_as_completed_t *it)
{
	if (!it)
		return;
	coil__fset_t *s = it->set;
	/* A task in next woken meanwhile finds it gone (see there). */
	coil__lock(&s->lock);
	s->ctx = NULL;
	s->detached = true; /* so that no callback calls ac_ready any more */
	coil__unlock(&s->lock);
	/* Stop watching before dropping the references: a pending future
	 * whose last reference goes frees its callbacks without running them,
	 * and the set would wait for them forever. */
	coil__fset_stop(s);
	for (size_t i = 0; i < s->n; i++)
		coil_future_release(s->slots[i].f);
	coil__free(it, sizeof(*it));
	coil__fset_detach(s);
}
