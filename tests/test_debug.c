/*
 * tests/test_debug.c: task stacks, task descriptions and listings, and debug
 * mode (coil/debug.h).
 *
 * Stacks are checked by name: coil_task_print_stack symbolizes the frames
 * (this program's static functions through its ELF symbol table), and the
 * helpers below are noinline and never tail-call, so each of them keeps a
 * frame of its own. A corrupt frame chain is made by hand (and undone before
 * the task runs again) to check that the walk stops instead of faulting.
 * Debug-mode warnings are caught by an exception handler that records their
 * messages; each check is made with debug mode on (the warning comes, naming
 * its task or coroutine) and off (nothing comes).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coil/coil.h"
#include "core.h"
#include "test.h"

#define NOINLINE __attribute__((noinline))
/* Keeps the call before it from being a tail call (which would drop the
 * caller's frame). */
#define KEEP_FRAME() __asm__ volatile("" ::: "memory")

/* --- helpers ------------------------------------------------------------- */

/* Debug mode is what each test says, whatever the environment of the run:
 * the one test of COIL_DEBUG sets it itself. */
__attribute__((constructor)) static void debug_env_clear(void)
{
	unsetenv("COIL_DEBUG");
}

/* Messages the exception handler received. */
static char seen[8][320];
static int nseen;

static void record(coil_loop_t *loop, const coil_exc_context_t *ctx, void *arg)
{
	(void)loop;
	(void)arg;
	/* Debug mode also reports steps slower than 100 ms, which a step
	 * that touches fresh memory or starts a ring can be under Valgrind;
	 * test_metrics checks those reports, these tests count the rest. */
	if (ctx->message && !strncmp(ctx->message, "Executing ", 10) &&
	    strstr(ctx->message, " took "))
		return;
	if (nseen < 8)
		snprintf(seen[nseen], sizeof(seen[0]), "%s", ctx->message);
	nseen++;
}

/* The number of recorded messages containing `what`. */
static int seen_with(const char *what)
{
	int n = 0;
	for (int i = 0; i < nseen && i < 8; i++)
		n += strstr(seen[i], what) != NULL;
	return n;
}

static coil_loop_t *loop_make(bool debug)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.debug = debug;
	coil_loop_t *loop = NULL;
	int rc = coil_new_event_loop_opts(&loop, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	coil_loop_set_exception_handler(loop, record, NULL);
	coil_set_event_loop(loop);
	nseen = 0;
	return loop;
}

static void loop_done(coil_loop_t *loop)
{
	coil_set_event_loop(NULL);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

/* Runs fn as a task of loop to its end; returns its code. */
static int run_task(coil_loop_t *loop, coil_fn fn, void *arg)
{
	coil_task_t *t;
	ASSERT_EQ(coil_loop_create_task(loop, &t, fn, arg, NULL), 0);
	int rc = coil_loop_run_until_complete(loop, coil_task_future(t), NULL);
	coil_task_detach(t);
	return rc;
}

/* t's printed stack, in a malloc'ed string; *n gets print_stack's code. */
NOINLINE static char *stack_text(coil_task_t *t, int *n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ASSERT(f != NULL);
	*n = coil_task_print_stack(t, f);
	fclose(f);
	return buf;
}

/* Where `a` appears in s, as an offset (-1: it does not). */
static long at(const char *s, const char *a)
{
	const char *p = strstr(s, a);
	return p ? p - s : -1;
}

static coil_task_t *spawn(coil_fn fn, void *arg, const char *name)
{
	coil_spawn_opts_t o = { .name = name };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, fn, arg, &o), 0);
	return t;
}

/* Cancels t and waits for it to end. */
static void finish(coil_task_t *t)
{
	coil_task_cancel(t, NULL);
	coil_await(coil_task_future(t), NULL);
	coil_task_detach(t);
}

/* --- stacks -------------------------------------------------------------- */

NOINLINE static int deep_wait(void)
{
	int rc = coil_sleep(100);
	KEEP_FRAME();
	return rc;
}

NOINLINE static int middle_frame(void)
{
	int rc = deep_wait();
	KEEP_FRAME();
	return rc;
}

NOINLINE static int sleeper_body(void *arg, void **res)
{
	(void)arg;
	(void)res;
	int rc = middle_frame();
	KEEP_FRAME();
	return rc;
}

static int suspended_main(void *arg, void **res)
{
	(void)arg;
	(void)res;
	coil_task_t *t = spawn(sleeper_body, NULL, "sleeper");
	ASSERT_EQ(coil_sleep(0), 0); /* it runs up to its sleep */
	void *frames[64];
	int n = coil_task_get_stack(t, frames, 64);
	ASSERT_GE(n, 3);
	char *s = stack_text(t, &n);
	ASSERT_GE(n, 3);
	/* Innermost first, each helper in its own frame. */
	ASSERT(at(s, "sleeper") >= 0 && at(s, "waiting") >= 0);
	ASSERT_GE(at(s, "deep_wait"), 0);
	ASSERT_GT(at(s, "middle_frame"), at(s, "deep_wait"));
	ASSERT_GT(at(s, "sleeper_body"), at(s, "middle_frame"));
	free(s);
	/* A short buffer gets the innermost frames. */
	void *two[2];
	ASSERT_EQ(coil_task_get_stack(t, two, 2), 2);
	ASSERT_PTR_EQ(two[0], frames[0]);
	finish(t);
	return 0;
}

TEST(stack_of_suspended_task)
{
	coil_loop_t *loop = loop_make(false);
	ASSERT_EQ(run_task(loop, suspended_main, NULL), 0);
	loop_done(loop);
}

NOINLINE static int self_inner(coil_task_t *me, char **out)
{
	int n;
	*out = stack_text(me, &n);
	KEEP_FRAME();
	return n;
}

NOINLINE static int self_body(void *arg, void **res)
{
	(void)arg;
	(void)res;
	char *s;
	int n = self_inner(coil_current_task(), &s);
	KEEP_FRAME();
	ASSERT_GE(n, 2);
	ASSERT(at(s, "running") >= 0);
	/* The first frame is the caller of print_stack. */
	long first = at(s, "#0 ");
	ASSERT_GE(first, 0);
	ASSERT_EQ(at(s + first, "stack_text"), at(s + first, " in ") + 4);
	ASSERT_GT(at(s, "self_inner"), first);
	ASSERT_GT(at(s, "self_body"), at(s, "self_inner"));
	free(s);
	void *frames[8];
	ASSERT_GE(coil_task_get_stack(coil_current_task(), frames, 8), 2);
	return 0;
}

TEST(stack_of_running_task_itself)
{
	coil_loop_t *loop = loop_make(false);
	ASSERT_EQ(run_task(loop, self_body, NULL), 0);
	loop_done(loop);
}

NOINLINE static int gen_inner(void)
{
	int rc = coil_sleep(200); /* not deep_wait's twin, which gcc would fold */
	KEEP_FRAME();
	return rc;
}

static int gen_body(void *arg, void **res)
{
	(void)arg;
	(void)res;
	int rc = gen_inner();
	KEEP_FRAME();
	return rc;
}

NOINLINE static int consumer_body(void *arg, void **res)
{
	(void)arg;
	(void)res;
	coil_gen_t *g;
	ASSERT_EQ(coil_gen_create(&g, gen_body, NULL, NULL), 0);
	int rc = coil_gen_next(g, NULL); /* suspends in the body's sleep */
	KEEP_FRAME();
	coil_gen_destroy(g);
	return rc;
}

static int through_gen_main(void *arg, void **res)
{
	(void)arg;
	(void)res;
	coil_task_t *t = spawn(consumer_body, NULL, "consumer");
	ASSERT_EQ(coil_sleep(0), 0);
	int n;
	char *s = stack_text(t, &n);
	/* The generator's stack first, then the task's, which resumed it. */
	ASSERT_GE(at(s, "gen_inner"), 0);
	ASSERT_GT(at(s, "gen_body"), at(s, "gen_inner"));
	ASSERT_GT(at(s, "consumer_body"), at(s, "gen_body"));
	free(s);
	finish(t);
	return 0;
}

TEST(stack_through_generator)
{
	coil_loop_t *loop = loop_make(false);
	ASSERT_EQ(run_task(loop, through_gen_main, NULL), 0);
	loop_done(loop);
}

static int nothing_body(void *arg, void **res)
{
	(void)arg;
	(void)res;
	return 0;
}

static int created_done_main(void *arg, void **res)
{
	(void)arg;
	(void)res;
	void *frames[4];
	coil_task_t *t = spawn(nothing_body, NULL, NULL);
	ASSERT_EQ(coil_task_get_stack(t, frames, 4), 0); /* not started */
	int n;
	char *s = stack_text(t, &n);
	ASSERT_EQ(n, 0);
	ASSERT(at(s, "not started") >= 0);
	free(s);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	ASSERT_EQ(coil_task_get_stack(t, frames, 4), 0); /* done */
	ASSERT_EQ(coil_task_get_stack(NULL, frames, 4), -EINVAL);
	ASSERT_EQ(coil_task_get_stack(t, NULL, 4), -EINVAL);
	ASSERT_EQ(coil_task_get_stack(t, NULL, 0), 0);
	ASSERT_EQ(coil_task_print_stack(NULL, NULL), -EINVAL);
	coil_task_detach(t);
	return 0;
}

TEST(stack_of_created_and_done_tasks)
{
	coil_loop_t *loop = loop_make(false);
	ASSERT_EQ(run_task(loop, created_done_main, NULL), 0);
	loop_done(loop);
}

/* Corrupts the saved frame pointer of a suspended task in each way below,
 * walks, and restores it: every walk ends, none faults. */
static int corrupt_main(void *arg, void **res)
{
	(void)arg;
	(void)res;
	coil_task_t *t = spawn(sleeper_body, NULL, "victim");
	ASSERT_EQ(coil_sleep(0), 0);
	coil_coro_t *c = t->body->resume;
	uintptr_t lo = (uintptr_t)c->stack->lo, hi = lo + c->stack->size;
	uintptr_t *fp_slot = (uintptr_t *)c->ctx.sp + COIL__SAVED_FP;
	uintptr_t saved = *fp_slot, *frame = (uintptr_t *)saved;
	uintptr_t saved_link = frame[0];
	void *frames[64];
	int good = coil_task_get_stack(t, frames, 64);
	ASSERT_GE(good, 3);
	const uintptr_t bad[] = { 0, 8, lo - 64, hi, hi - 8, saved + 3,
				  (uintptr_t)-16, UINTPTR_MAX };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		*fp_slot = bad[i];
		int n = coil_task_get_stack(t, frames, 64);
		ASSERT(n >= 0 && n <= 2);
	}
	*fp_slot = saved;
	/* A frame that points at itself, or back down the stack: a loop. */
	frame[0] = saved;
	ASSERT_LE(coil_task_get_stack(t, frames, 64), 3);
	frame[0] = saved - 64;
	ASSERT_LE(coil_task_get_stack(t, frames, 64), 3);
	frame[0] = saved_link;
	ASSERT_EQ(coil_task_get_stack(t, frames, 64), good);
	finish(t);
	return 0;
}

TEST(corrupt_frame_chain_ends_the_walk)
{
	coil_loop_t *loop = loop_make(false);
	ASSERT_EQ(run_task(loop, corrupt_main, NULL), 0);
	loop_done(loop);
}

/* --- descriptions and listings -------------------------------------------- */

struct waits {
	coil_queue_t *q;
	coil_lock_t *lock;
	coil_event_t *ev;
	coil_task_t *sleeper;
};

static int queue_body(void *arg, void **res)
{
	struct waits *w = arg;
	(void)res;
	void *item;
	return coil_queue_get(w->q, &item);
}

static int lock_body(void *arg, void **res)
{
	struct waits *w = arg;
	(void)res;
	int rc = coil_lock_acquire(w->lock);
	if (rc == 0)
		coil_lock_release(w->lock);
	return rc;
}

static int event_body(void *arg, void **res)
{
	struct waits *w = arg;
	(void)res;
	return coil_event_wait(w->ev);
}

static int awaiter_body(void *arg, void **res)
{
	struct waits *w = arg;
	(void)res;
	return coil_await(coil_task_future(w->sleeper), NULL);
}

static coil_task_info_t info_of(coil_task_t *t)
{
	coil_task_info_t in;
	memset(&in, 0x55, sizeof(in));
	ASSERT_EQ(coil_task_get_info(t, &in, sizeof(in)), 0);
	ASSERT_EQ(in.id, coil_task_id(t));
	return in;
}

/* Makes the primitives and one task waiting on each; the caller finishes
 * them with waits_end. */
static void waits_begin(struct waits *w, coil_task_t **ts)
{
	ASSERT_EQ(coil_queue_create(&w->q, COIL_QUEUE_FIFO, 0), 0);
	ASSERT_EQ(coil_lock_create(&w->lock), 0);
	ASSERT_EQ(coil_event_create(&w->ev), 0);
	ASSERT_EQ(coil_lock_acquire(w->lock), 0);
	w->sleeper = ts[0] = spawn(sleeper_body, NULL, "sleeper");
	ts[1] = spawn(queue_body, w, "getter");
	ts[2] = spawn(lock_body, w, "locker");
	ts[3] = spawn(event_body, w, "eventer");
	ts[4] = spawn(awaiter_body, w, "awaiter");
	ASSERT_EQ(coil_sleep(0), 0);
}

static void waits_end(struct waits *w, coil_task_t **ts)
{
	for (int i = 4; i >= 0; i--)
		finish(ts[i]);
	coil_lock_release(w->lock);
	ASSERT_EQ(coil_queue_destroy(w->q), 0);
	ASSERT_EQ(coil_lock_destroy(w->lock), 0);
	ASSERT_EQ(coil_event_destroy(w->ev), 0);
}

static int info_main(void *arg, void **res)
{
	(void)res;
	bool debug = arg != NULL;
	struct waits w;
	coil_task_t *ts[5];
	waits_begin(&w, ts);
	coil_task_info_t in = info_of(ts[0]);
	ASSERT_STR_EQ(in.name, "sleeper");
	ASSERT_EQ(in.state, COIL_TASK_WAITING);
	ASSERT_STR_EQ(in.awaits, "sleep");
	ASSERT(in.timeout_ns > 90 * COIL_NSEC_PER_SEC && in.timeout_ns <= 100 * COIL_NSEC_PER_SEC);
	ASSERT_EQ(in.worker, -1);
	ASSERT_EQ(in.stack_size, coil_stack_default_size());
	ASSERT(in.stack_touched >= 4096 && in.stack_touched <= in.stack_size);
	ASSERT(debug ? in.age_ns >= 0 && in.age_ns < 60 * COIL_NSEC_PER_SEC : in.age_ns == -1);
	ASSERT_STR_EQ(info_of(ts[1]).awaits, "queue get");
	ASSERT_STR_EQ(info_of(ts[2]).awaits, "lock");
	ASSERT_STR_EQ(info_of(ts[3]).awaits, "event");
	in = info_of(ts[4]);
	ASSERT_STR_EQ(in.awaits, "task");
	ASSERT_EQ(in.awaits_task, coil_task_id(ts[0]));
	ASSERT_EQ(in.timeout_ns, -1);
	in = info_of(coil_current_task());
	ASSERT_EQ(in.state, COIL_TASK_RUNNING);
	ASSERT(in.awaits == NULL);
	coil_task_t *fresh = spawn(nothing_body, NULL, NULL);
	in = info_of(fresh);
	ASSERT_EQ(in.state, COIL_TASK_CREATED);
	ASSERT_EQ(in.stack_size, 0);
	ASSERT_EQ(coil_await(coil_task_future(fresh), NULL), 0);
	ASSERT_EQ(info_of(fresh).state, COIL_TASK_DONE);
	ASSERT_EQ(coil_task_get_info(fresh, &in, 4), -EINVAL);
	coil_task_detach(fresh);
	waits_end(&w, ts);
	return 0;
}

TEST(info_says_what_each_task_awaits)
{
	for (int debug = 0; debug < 2; debug++) {
		coil_loop_t *loop = loop_make(debug);
		ASSERT_EQ(run_task(loop, info_main, debug ? (void *)1 : NULL), 0);
		loop_done(loop);
	}
}

static int recv_body(void *arg, void **res)
{
	(void)res;
	char c;
	return (int)coil_recv(*(int *)arg, &c, 1, 0, COIL_FOREVER);
}

/* A task waiting for an I/O operation awaits it by name. */
static int io_info_main(void *arg, void **res)
{
	(void)arg;
	(void)res;
	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	coil_task_t *t = spawn(recv_body, &sv[0], "reader");
	ASSERT_EQ(coil_sleep(0), 0);
	coil_task_info_t in = info_of(t);
	ASSERT_EQ(in.state, COIL_TASK_WAITING);
	ASSERT_STR_EQ(in.awaits, "recv");
	ASSERT_EQ(in.timeout_ns, -1);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ASSERT_EQ(coil_loop_dump_tasks(NULL, f, 0), 2);
	fclose(f);
	ASSERT(at(buf, "'reader': waiting for recv;") > 0);
	free(buf);
	ASSERT_EQ(write(sv[1], "x", 1), 1);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 1);
	coil_task_detach(t);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

TEST(info_names_the_io_operation_a_task_awaits)
{
	coil_loop_t *loop = loop_make(false);
	ASSERT_EQ(run_task(loop, io_info_main, NULL), 0);
	loop_done(loop);
}

static int dump_main(void *arg, void **res)
{
	(void)arg;
	(void)res;
	struct waits w;
	coil_task_t *ts[5];
	waits_begin(&w, ts);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int n = coil_loop_dump_tasks(NULL, f, COIL_DUMP_STACKS);
	fclose(f);
	ASSERT_EQ(n, 6); /* the five and this one */
	ASSERT(at(buf, "coil: 6 task(s)") == 0);
	ASSERT(at(buf, "'sleeper': waiting for sleep (") > 0);
	ASSERT(at(buf, "'getter': waiting for queue get;") > 0);
	ASSERT(at(buf, "'locker': waiting for lock;") > 0);
	ASSERT(at(buf, "'eventer': waiting for event;") > 0);
	char want[64];
	snprintf(want, sizeof(want), "'awaiter': waiting for task %llu;",
		 (unsigned long long)coil_task_id(ts[0]));
	ASSERT(at(buf, want) > 0);
	ASSERT(at(buf, "': running; age ?") > 0);
	/* Stacks: the sleeper's helpers, and this task's own caller. */
	ASSERT_GT(at(buf, "middle_frame"), at(buf, "deep_wait"));
	ASSERT_GT(at(buf, "dump_main"), 0);
	free(buf);
	ASSERT_EQ(coil_loop_dump_tasks(NULL, NULL, 0x80), -EINVAL);
	f = fopen("/dev/null", "w");
	ASSERT_EQ(coil_dump_tasks(f), 6);
	fclose(f);
	waits_end(&w, ts);
	return 0;
}

TEST(dump_lists_every_task)
{
	coil_loop_t *loop = loop_make(false);
	ASSERT_EQ(run_task(loop, dump_main, NULL), 0);
	loop_done(loop);
	ASSERT_EQ(coil_dump_tasks(NULL), -EINVAL); /* no loop any more */
}

/* --- a runtime: dumps while other workers run ------------------------------ */

struct mt {
	coil_event_t *ev;
	coil_queue_t *q[2];       /* the pingers' two directions */
	atomic_int started;
};

static int mt_waiter(void *arg, void **res)
{
	struct mt *m = arg;
	(void)res;
	atomic_fetch_add(&m->started, 1);
	return coil_event_wait(m->ev);
}

/* Two of them bat an item between two queues until cancelled, so that
 * they keep suspending and being woken and resumed on either worker while
 * the main task reads them. */
static int mt_pinger(void *arg, void **res)
{
	struct mt *m = arg;
	(void)res;
	int me = atomic_fetch_add(&m->started, 1) & 1;
	for (;;) {
		void *item;
		int rc = coil_queue_get(m->q[me], &item);
		if (rc == 0)
			rc = coil_queue_put(m->q[!me], item);
		if (rc)
			return rc;
	}
}

static int mt_main(void *arg, void **res)
{
	struct mt *m = arg;
	(void)res;
	enum { WAITERS = 6, PINGERS = 2, ALL = WAITERS + PINGERS };
	coil_task_t *ts[ALL];
	for (int i = 0; i < WAITERS; i++)
		ts[i] = spawn(mt_waiter, m, "waiter");
	while (atomic_load(&m->started) < WAITERS)
		ASSERT_EQ(coil_sleep(0.001), 0);
	/* Pinned to the worker this task is not on: they run while it reads. */
	coil_spawn_opts_t po = { .name = "pinger", .pinned = true };
	coil_loop_t *other = coil_runtime_loop(coil_current_runtime(), !coil_current_worker());
	for (int i = 0; i < PINGERS; i++)
		ASSERT_EQ(coil_loop_create_task(other, &ts[WAITERS + i], mt_pinger, m, &po), 0);
	ASSERT_EQ(coil_queue_put(m->q[0], m), 0);
	FILE *f = fopen("/dev/null", "w");
	int read = 0, busy = 0;
	for (int round = 0; round < 50; round++) {
		ASSERT_EQ(coil_loop_dump_tasks(NULL, f, COIL_DUMP_STACKS), ALL + 1);
		for (int i = 0; i < ALL; i++) {
			void *frames[32];
			int n = coil_task_get_stack(ts[i], frames, 32);
			ASSERT(n == -EBUSY || (n >= 0 && n <= 32));
			if (i >= WAITERS)
				n < 0 ? busy++ : read++;
			coil_task_info_t in = info_of(ts[i]);
			ASSERT(in.state != COIL_TASK_DONE && in.worker < 2);
		}
	}
	fclose(f);
	/* Which way each look at a pinger went is the scheduler's doing:
	 * printed, not asserted. */
	fprintf(stderr, "  pingers' stacks: %d read, %d busy\n", read, busy);
	/* The waiters are switched out for good by now: readable. */
	for (int i = 0; i < WAITERS; i++) {
		void *frames[32];
		ASSERT_GE(coil_task_get_stack(ts[i], frames, 32), 1);
		ASSERT_STR_EQ(info_of(ts[i]).awaits, "event");
	}
	coil_event_set(m->ev);
	for (int i = 0; i < ALL; i++) {
		if (i >= WAITERS)
			coil_task_cancel(ts[i], NULL);
		int rc = coil_await(coil_task_future(ts[i]), NULL);
		ASSERT_EQ(rc, i < WAITERS ? 0 : -ECANCELED);
		coil_task_detach(ts[i]);
	}
	return 0;
}

TEST(dump_runtime_while_workers_run)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	struct mt m = { .started = 0 };
	ASSERT_EQ(coil_event_create(&m.ev), 0);
	ASSERT_EQ(coil_queue_create(&m.q[0], COIL_QUEUE_FIFO, 0), 0);
	ASSERT_EQ(coil_queue_create(&m.q[1], COIL_QUEUE_FIFO, 0), 0);
	int rc = coil_run(mt_main, &m, NULL, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	coil_event_destroy(m.ev);
	coil_queue_destroy(m.q[0]);
	coil_queue_destroy(m.q[1]);
}

/* --- debug mode ------------------------------------------------------------ */

TEST(debug_mode_from_options)
{
	coil_loop_t *loop = loop_make(false);
	ASSERT(!coil_loop_get_debug(loop));
	coil_loop_set_debug(loop, true);
	ASSERT(coil_loop_get_debug(loop));
	loop_done(loop);
	loop = loop_make(true);
	ASSERT(coil_loop_get_debug(loop));
	loop_done(loop);
}

/* Descriptors a task leaves open: two kept (a file, a stream), one closed
 * through coil, one with close(2). */
struct fds {
	int kept, sv[2];
	coil_stream_t *stream;
};

static int fds_main(void *arg, void **res)
{
	struct fds *d = arg;
	(void)res;
	d->kept = coil_open("/dev/null", O_RDONLY | O_CLOEXEC, 0, COIL_FOREVER);
	ASSERT_GE(d->kept, 0);
	int fd = coil_open("/dev/null", O_RDONLY | O_CLOEXEC, 0, COIL_FOREVER);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(coil_close(fd, COIL_FOREVER), 0);
	fd = coil_open("/dev/null", O_RDONLY | O_CLOEXEC, 0, COIL_FOREVER);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(close(fd), 0);
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, d->sv), 0);
	ASSERT_EQ(coil_stream_from_fd(&d->stream, d->sv[0], NULL), 0);
	coil_stream_t *closed;
	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ASSERT_EQ(coil_stream_from_fd(&closed, sv[0], NULL), 0);
	ASSERT_EQ(coil_stream_wait_closed(closed, COIL_FOREVER), 0);
	coil_stream_free(closed);
	close(sv[1]);
	return 0;
}

static void fds_end(struct fds *d)
{
	close(d->kept);
	coil_stream_free(d->stream);
	close(d->sv[1]);
}

TEST(debug_reports_fds_left_open_when_the_loop_closes)
{
	for (int debug = 0; debug < 2; debug++) {
		struct fds d;
		coil_loop_t *loop = loop_make(debug);
		ASSERT_EQ(run_task(loop, fds_main, &d), 0);
		coil_set_event_loop(NULL);
		ASSERT_EQ(coil_loop_close(loop), 0);
		if (!debug) {
			ASSERT_EQ(nseen, 0);
		} else {
			char want[96];
			ASSERT_EQ(nseen, 2);
			snprintf(want, sizeof(want), "unclosed fd %d (a file from coil_open) "
				 "when its loop closed", d.kept);
			ASSERT_EQ(seen_with(want), 1);
			snprintf(want, sizeof(want), "unclosed fd %d (a stream's socket)", d.sv[0]);
			ASSERT_EQ(seen_with(want), 1);
		}
		fds_end(&d);
	}
}

static int runtime_fds_main(void *arg, void **res)
{
	(void)res;
	int *fd = arg;
	*fd = coil_open("/dev/null", O_RDONLY | O_CLOEXEC, 0, COIL_FOREVER);
	ASSERT_GE(*fd, 0);
	return 0;
}

TEST(debug_reports_fds_left_open_when_the_runtime_shuts_down)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	o.debug = true;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	coil_loop_set_exception_handler(coil_runtime_loop(rt, 0), record, NULL);
	nseen = 0;
	int fd = -1;
	ASSERT_EQ(coil_runtime_block_on(rt, runtime_fds_main, &fd, NULL), 0);
	ASSERT_EQ(nseen, 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	ASSERT_EQ(nseen, 1);
	char want[96];
	snprintf(want, sizeof(want), "unclosed fd %d (a file from coil_open) when its "
		 "runtime closed", fd);
	ASSERT_EQ(seen_with(want), 1);
	close(fd);
}

/* The environment is read when a loop is made (and where a coroutine is
 * destroyed without a loop). */
TEST(debug_mode_from_environment)
{
	setenv("COIL_DEBUG", "1", 1);
	coil_loop_t *loop = loop_make(false);
	ASSERT(coil_loop_get_debug(loop));
	loop_done(loop);
	unsetenv("COIL_DEBUG");
}

TEST(debug_reports_detached_task_that_never_ran)
{
	for (int debug = 0; debug < 2; debug++) {
		coil_loop_t *loop = loop_make(debug);
		coil_spawn_opts_t o = { .name = "forgotten" };
		/* Detached, and the loop closes before its first step. */
		ASSERT_EQ(coil_loop_create_task(loop, NULL, nothing_body, NULL, &o), 0);
		loop_done(loop);
		ASSERT_EQ(nseen, debug);
		ASSERT_EQ(seen_with("task 'forgotten' was never run"), debug);
	}
}

static void on_done(coil_future_t *f, void *arg)
{
	(void)f;
	(*(int *)arg)++;
}

static int cancelled_but_seen_main(void *arg, void **res)
{
	(void)arg;
	(void)res;
	/* Awaited after its cancellation: its holder sees -ECANCELED. */
	coil_task_t *t = spawn(nothing_body, NULL, "awaited");
	coil_task_cancel(t, NULL);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), -ECANCELED);
	coil_task_detach(t);
	/* Watched by a done-callback, then detached. */
	int calls = 0;
	t = spawn(nothing_body, NULL, "watched");
	ASSERT_EQ(coil_future_add_done_callback(coil_task_future(t), on_done, &calls), 0);
	coil_task_cancel(t, NULL);
	coil_task_detach(t);
	while (!calls)
		ASSERT_EQ(coil_sleep(0), 0);
	return 0;
}

TEST(debug_is_silent_when_a_cancelled_task_is_seen)
{
	coil_loop_t *loop = loop_make(true);
	ASSERT_EQ(run_task(loop, cancelled_but_seen_main, NULL), 0);
	loop_done(loop);
	ASSERT_EQ(nseen, 0);
}

static int yield_twice(void *arg, void **res)
{
	(void)arg;
	(void)res;
	int rc = coil_coro_yield(NULL, NULL);
	if (rc == 0)
		rc = coil_coro_yield(NULL, NULL);
	return rc == COIL_ECLOSED ? 0 : rc;
}

TEST(debug_reports_coroutines_never_resumed_or_closed)
{
	for (int debug = 0; debug < 2; debug++) {
		coil_loop_t *loop = loop_make(debug);
		coil_coro_opts_t o = { .name = "lazy" };
		coil_coro_t *c;
		/* Created and destroyed: never resumed. */
		ASSERT_EQ(coil_coro_create(&c, yield_twice, NULL, &o), 0);
		coil_coro_destroy(c);
		ASSERT_EQ(seen_with("coroutine 'lazy' was never resumed"), debug);
		/* No name: its function's. */
		ASSERT_EQ(coil_coro_create(&c, yield_twice, NULL, NULL), 0);
		coil_coro_destroy(c);
		ASSERT_EQ(seen_with("coroutine 'yield_twice' was never resumed"), debug);
		/* Left at a yield. */
		ASSERT_EQ(coil_coro_create(&c, yield_twice, NULL, &o), 0);
		ASSERT_EQ(coil_coro_resume(c, NULL, NULL), 0);
		coil_coro_destroy(c);
		ASSERT_EQ(seen_with("'lazy' was destroyed while suspended at a yield"), debug);
		/* Closed, finished, or closed before it ran: nothing to say. */
		int before = nseen;
		ASSERT_EQ(coil_coro_create(&c, yield_twice, NULL, &o), 0);
		ASSERT_EQ(coil_coro_resume(c, NULL, NULL), 0);
		ASSERT_EQ(coil_coro_close(c), 0);
		coil_coro_destroy(c);
		ASSERT_EQ(coil_coro_create(&c, yield_twice, NULL, &o), 0);
		ASSERT_EQ(coil_coro_close(c), 0);
		coil_coro_destroy(c);
		ASSERT_EQ(coil_coro_create(&c, yield_twice, NULL, &o), 0);
		while (coil_coro_resume(c, NULL, NULL) == 0)
			;
		coil_coro_destroy(c);
		ASSERT_EQ(nseen, before);
		loop_done(loop);
	}
}

static int ticker(void *arg, void **res)
{
	(void)arg;
	(void)res;
	for (intptr_t i = 0;; i++) {
		int rc = coil_gen_yield((void *)i, NULL);
		if (rc)
			return rc;
	}
}

/* Leaves one generator open at a yield, destroys another while open, and
 * closes a third properly. */
static int gens_main(void *arg, void **res)
{
	coil_gen_t **left = arg;
	(void)res;
	coil_gen_opts_t o = { .name = "dropped" };
	coil_gen_t *g;
	ASSERT_EQ(coil_gen_create(&g, ticker, NULL, &o), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	coil_gen_destroy(g);
	ASSERT_EQ(coil_gen_create(&g, ticker, NULL, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	ASSERT_EQ(coil_gen_aclose(g), 0);
	coil_gen_destroy(g);
	o.name = "left_open";
	ASSERT_EQ(coil_gen_create(left, ticker, NULL, &o), 0);
	ASSERT_EQ(coil_gen_next(*left, NULL), 0);
	return 0;
}

TEST(debug_reports_generators_never_closed)
{
	for (int debug = 0; debug < 2; debug++) {
		coil_loop_t *loop = loop_make(debug);
		coil_gen_t *left = NULL;
		ASSERT_EQ(run_task(loop, gens_main, &left), 0);
		ASSERT_EQ(seen_with("generator 'dropped' was destroyed without being closed"),
			  debug);
		ASSERT_EQ(nseen, debug);
		loop_done(loop);
		ASSERT_EQ(seen_with("generator 'left_open' was still open when its loop closed"),
			  debug);
		ASSERT_EQ(nseen, 2 * debug);
		ASSERT_EQ(coil_gen_state(left), COIL_CORO_CLOSED);
		coil_gen_destroy(left);
	}
}

static int failing_body(void *arg, void **res)
{
	(void)arg;
	(void)res;
	coil_errorf("it went wrong");
	return -EIO;
}

static int unretrieved_main(void *arg, void **res)
{
	(void)arg;
	(void)res;
	/* A detached task that fails, a future whose error nobody reads, and
	 * one whose error is read. */
	coil_task_t *t = spawn(failing_body, NULL, "doomed");
	coil_task_detach(t);
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, NULL), 0);
	ASSERT_EQ(coil_future_set_exception(f, -EPIPE, NULL), 0);
	coil_future_release(f);
	ASSERT_EQ(coil_future_create(&f, NULL), 0);
	ASSERT_EQ(coil_future_set_exception(f, -EPIPE, NULL), 0);
	ASSERT_EQ(coil_future_exception(f), -EPIPE);
	coil_future_release(f);
	ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_sleep(0), 0);
	return 0;
}

static coil_task_t *reported_task;
static int reported_error;

static void record_task(coil_loop_t *loop, const coil_exc_context_t *ctx, void *arg)
{
	if (ctx->task) {
		reported_task = ctx->task;
		reported_error = ctx->error;
		ASSERT_STR_EQ(coil_task_get_name(ctx->task), "doomed");
		ASSERT_STR_EQ(ctx->error_message, "it went wrong");
	}
	record(loop, ctx, arg);
}

TEST(errors_never_retrieved_are_reported)
{
	for (int debug = 0; debug < 2; debug++) {
		coil_loop_t *loop = loop_make(debug);
		coil_loop_set_exception_handler(loop, record_task, NULL);
		ASSERT_EQ(run_task(loop, unretrieved_main, NULL), 0);
		ASSERT_EQ(seen_with("Task exception was never retrieved"), 1);
		ASSERT_EQ(seen_with("Future exception was never retrieved"), 1);
		ASSERT_EQ(nseen, 2);
		ASSERT(reported_task != NULL);
		ASSERT_EQ(reported_error, -EIO);
		loop_done(loop);
	}
}

TEST_LIST(
	TEST_ENTRY(stack_of_suspended_task),
	TEST_ENTRY(stack_of_running_task_itself),
	TEST_ENTRY(stack_through_generator),
	TEST_ENTRY(stack_of_created_and_done_tasks),
	TEST_ENTRY(corrupt_frame_chain_ends_the_walk),
	TEST_ENTRY(info_says_what_each_task_awaits),
	TEST_ENTRY(info_names_the_io_operation_a_task_awaits),
	TEST_ENTRY(debug_reports_fds_left_open_when_the_loop_closes),
	TEST_ENTRY(debug_reports_fds_left_open_when_the_runtime_shuts_down),
	TEST_ENTRY(dump_lists_every_task),
	TEST_ENTRY(dump_runtime_while_workers_run),
	TEST_ENTRY(debug_mode_from_options),
	TEST_ENTRY(debug_mode_from_environment),
	TEST_ENTRY(debug_reports_detached_task_that_never_ran),
	TEST_ENTRY(debug_is_silent_when_a_cancelled_task_is_seen),
	TEST_ENTRY(debug_reports_coroutines_never_resumed_or_closed),
	TEST_ENTRY(debug_reports_generators_never_closed),
	TEST_ENTRY(errors_never_retrieved_are_reported),
)
