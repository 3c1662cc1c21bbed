/*
 * tests/test_race_iter.c: async iterators (coil/aiter.h) whose step is
 * suspended in one task while a task on another worker destroys the
 * iterator, as the step resumes and ends (woken, or cancelled inside a
 * tool's source step): the destroy is deferred to the end of the step or
 * runs after it, exactly once, and never while the step's frames still
 * read the iterator.
 *
 * Each test drives one cross-thread interleaving many times over; what it
 * asserts holds whatever the timing, and a sanitizer (TSan, ASan) sees the
 * unsynchronised access or the use after free behind a failure.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "coil/coil.h"
#include "test.h"
#include "race.h"

#define ITER_ROUNDS (under_valgrind() ? 20 : TEST_TSAN ? 1000 : 3000)

/* An iterator whose step waits for an event; its destroy counts. */
typedef struct slow_iter {
	coil_aiter_t it;
	coil_event_t *ev;
	atomic_int *destroyed;
} slow_iter_t;

static int slow_next(coil_aiter_t *it, void **value)
{
	slow_iter_t *s = (slow_iter_t *)it;
	int rc = coil_event_wait(s->ev);
	if (rc)
		return rc;
	*value = (void *)(intptr_t)1;
	return 0;
}

static void slow_destroy(coil_aiter_t *it)
{
	slow_iter_t *s = (slow_iter_t *)it;
	atomic_fetch_add(s->destroyed, 1);
	free(s);
}

typedef struct close_race {
	slow_iter_t *s;
	coil_event_t *ev;
	atomic_int destroyed;
	atomic_int parked;       /* the consumer's step waits */
	atomic_int rc;           /* its step's */
	uint64_t rng;            /* the helper's jitter between wake and close */
} close_race_t;

/* The consumer, on worker 0: one step, suspended until the helper wakes
 * it. */
static int close_consumer(void *arg, void **result)
{
	(void)result;
	close_race_t *c = arg;
	atomic_store(&c->parked, 1);
	int rc = coil_aiter_next(&c->s->it, NULL);
	atomic_store(&c->rc, rc);
	return 0;
}

/* On worker 1: wakes the step, then destroys the iterator as the step
 * ends on worker 0. */
static void close_wake_and_destroy(void *arg)
{
	close_race_t *c = arg;
	ASSERT_EQ(coil_event_set(c->ev), 0);
	jitter(&c->rng);
	coil_aiter_destroy(&c->s->it);
}

static int close_rounds(void *arg, void **result)
{
	(void)result;
	close_race_t *c = arg;
	coil_spawn_opts_t pinned = { .pinned = true };
	c->rng = 5;
	for (int i = 0; i < ITER_ROUNDS; i++) {
		coil_task_t *t;
		ASSERT_EQ(coil_event_create(&c->ev), 0);
		c->s = calloc(1, sizeof(*c->s));
		ASSERT(c->s != NULL);
		coil_aiter_init(&c->s->it, slow_next, slow_destroy);
		c->s->ev = c->ev;
		c->s->destroyed = &c->destroyed;
		atomic_store(&c->destroyed, 0);
		atomic_store(&c->parked, 0);
		atomic_store(&c->rc, 1);
		ASSERT_EQ(coil_loop_create_task(coil_get_running_loop(), &t,
						close_consumer, c, &pinned), 0);
		while (!atomic_load(&c->parked))
			ASSERT_EQ(coil_sleep(0), 0);
		/* The step has begun: it waits on the event, or is about
		 * to. */
		ASSERT_EQ(coil_sleep(0), 0);
		helper_go(close_wake_and_destroy, c);
		helper_wait();
		ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
		coil_task_detach(t);
		int rc = atomic_load(&c->rc);
		/* Destroyed after the step returned its value, or during the
		 * step, which then reports the close. */
		ASSERT(rc == 0 || rc == COIL_ECLOSED);
		ASSERT_EQ(atomic_load(&c->destroyed), 1);
		ASSERT_EQ(coil_event_destroy(c->ev), 0);
	}
	return 0;
}

/*
 * A task on worker 1 wakes the step of an iterator suspended on worker 0
 * and destroys the iterator while the step ends: the destroy must either
 * be deferred to the end of the step or find the step over, never both
 * and never neither.
 */
TEST(aiter_destroyed_from_another_worker_as_its_step_ends)
{
	close_race_t c = { .rng = 5 };
	race_drive(close_rounds, &c);
}

/* --- a consumer cancelled while a tool's source step is in flight --- */

typedef struct zip_race {
	slow_iter_t *src[2];
	coil_aiter_t *zip;
	coil_event_t *never;
	coil_task_t *t;
	atomic_int destroyed;
	atomic_int parked;
	atomic_int rc;
	uint64_t rng;
} zip_race_t;

static slow_iter_t *slow_new(coil_event_t *ev, atomic_int *destroyed)
{
	slow_iter_t *s = calloc(1, sizeof(*s));
	ASSERT(s != NULL);
	coil_aiter_init(&s->it, slow_next, slow_destroy);
	s->ev = ev;
	s->destroyed = destroyed;
	return s;
}

/* The consumer, on worker 0: one step of the zip, suspended in its first
 * source's step until cancelled; then frees the sources, which are its
 * own. */
static int zip_consumer(void *arg, void **result)
{
	(void)result;
	zip_race_t *z = arg;
	atomic_store(&z->parked, 1);
	int rc = coil_aiter_next(z->zip, NULL);
	atomic_store(&z->rc, rc);
	coil_aiter_destroy(&z->src[0]->it);
	coil_aiter_destroy(&z->src[1]->it);
	return 0;
}

/* On worker 1: cancels the consumer, then destroys the zip as the
 * cancellation unwinds through its source's step on worker 0. */
static void zip_cancel_and_destroy(void *arg)
{
	zip_race_t *z = arg;
	ASSERT(coil_task_cancel(z->t, NULL));
	jitter(&z->rng);
	coil_aiter_destroy(z->zip);
}

static int zip_rounds(void *arg, void **result)
{
	(void)result;
	zip_race_t *z = arg;
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_event_create(&z->never), 0);
	for (int i = 0; i < ITER_ROUNDS; i++) {
		atomic_store(&z->destroyed, 0);
		for (int j = 0; j < 2; j++)
			z->src[j] = slow_new(z->never, &z->destroyed);
		coil_aiter_t *srcs[2] = { &z->src[0]->it, &z->src[1]->it };
		ASSERT_EQ(coil_aiter_zip(&z->zip, srcs, 2), 0);
		atomic_store(&z->parked, 0);
		atomic_store(&z->rc, 1);
		ASSERT_EQ(coil_loop_create_task(coil_get_running_loop(), &z->t,
						zip_consumer, z, &pinned), 0);
		while (!atomic_load(&z->parked))
			ASSERT_EQ(coil_sleep(0), 0);
		ASSERT_EQ(coil_sleep(0), 0);
		helper_go(zip_cancel_and_destroy, z);
		helper_wait();
		/* The task caught nothing: it ends cancelled or returns. */
		(void)coil_await(coil_task_future(z->t), NULL);
		coil_task_detach(z->t);
		int rc = atomic_load(&z->rc);
		/* Cancelled in the source's step, or closed by the destroy
		 * that came while the step ran. */
		ASSERT(rc == -ECANCELED || rc == COIL_ECLOSED);
		ASSERT_EQ(atomic_load(&z->destroyed), 2);
	}
	ASSERT_EQ(coil_event_destroy(z->never), 0);
	return 0;
}

/*
 * A task on worker 1 cancels the consumer of a zip whose first source's
 * step is suspended on worker 0, and destroys the zip as the cancellation
 * unwinds: the zip is freed once (by its step or by the destroy), its
 * sources stay the consumer's.
 */
TEST(aiter_tool_destroyed_as_its_cancelled_consumer_unwinds)
{
	zip_race_t z = { .rng = 9 };
	race_drive(zip_rounds, &z);
}

TEST_LIST(
	TEST_ENTRY(aiter_destroyed_from_another_worker_as_its_step_ends),
	TEST_ENTRY(aiter_tool_destroyed_as_its_cancelled_consumer_unwinds))
