/*
 * tests/test_race_proc.c: process pools and subprocesses raced across the
 * workers of a runtime.
 *
 * A driver task pinned on worker 0 does one side of each race, a helper
 * task pinned on worker 1 the other, after random spins (tests/race.h).
 * Process pool: a job's await cancelled from the other worker as its
 * result comes back, its future cancelled there, the pool shut down there
 * (waiting or killing, cancelling or not) while jobs are in flight, the
 * pool's pids read there while workers die and are replaced, and jobs
 * whose results come back after the runtime that submitted them ended.
 * Subprocesses: communicate on one worker while the other kills the child
 * or waits for it, communicate cancelled from the other worker (the next
 * call gets all of the output), and a process freed on one worker as soon
 * as another saw it exit.
 * Every outcome is one of those the API allows whatever the timing, every
 * output is freed once (ASan: a double free or a leak), and no child is
 * left behind, zombie or not. A sanitizer sees the unsynchronised access
 * or the use after free behind a failure.
 *
 * The test binary is also the pool's worker binary: TEST_MAIN_HOOK
 * registers the process functions and calls coil_process_pool_main, so a
 * worker started by a pool serves jobs and never reaches the tests.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coil/coil.h"
#include "coil/process.h"
#include "coil/process_pool.h"

static void pp_main_hook(int argc, char **argv);
#define TEST_MAIN_HOOK(argc, argv) pp_main_hook(argc, argv)
#include "test.h"
#include "race.h"

/* Internal (io/process.c): freed processes the reaper has not reaped. */
size_t coil__process_reaper_pending(void);
void coil__process_force_polling(bool on);

/* --- the process functions (they run in the workers) -------------------- */

static int pf_echo(const void *in, size_t len, coil_bytes_t *out)
{
	if (!len)
		return 0;
	out->data = malloc(len);
	if (!out->data)
		return -ENOMEM;
	memcpy(out->data, in, len);
	out->len = len;
	return 0;
}

/* Sleeps the number of milliseconds in the input (a uint32), then echoes
 * it: a job still running when the other side acts. */
static int pf_nap(const void *in, size_t len, coil_bytes_t *out)
{
	uint32_t ms = 0;
	if (len == sizeof(ms))
		memcpy(&ms, in, sizeof(ms));
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
	return pf_echo(in, len, out);
}

static int pf_exit3(const void *in, size_t len, coil_bytes_t *out)
{
	(void)in;
	(void)len;
	(void)out;
	_exit(3);
}

static void pp_main_hook(int argc, char **argv)
{
	if (coil_process_register("echo", pf_echo) || coil_process_register("nap", pf_nap) ||
	    coil_process_register("exit3", pf_exit3) || coil_process_pool_main(argc, argv)) {
		fprintf(stderr, "cannot set up the process pool's worker\n");
		exit(1);
	}
}

/* --- helpers ------------------------------------------------------------- */

static int rounds(int normal)
{
	if (under_valgrind())
		return 3;
	return TEST_TSAN ? normal / 4 : normal;
}

static coil_process_pool_t *pool_make(unsigned workers)
{
	coil_process_pool_opts_t o;
	coil_process_pool_opts_init(&o);
	o.workers = workers;
	coil_process_pool_t *p = NULL;
	ASSERT_EQ(coil_process_pool_create(&p, &o), 0);
	return p;
}

/* Counts this process's children in /proc, and among them the zombies. */
static int children(int *zombies)
{
	DIR *d = opendir("/proc");
	ASSERT(d != NULL);
	int n = 0, z = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[300], buf[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		/* "pid (comm) S ppid ...": comm may hold anything. */
		char *p = strrchr(buf, ')');
		char state;
		int ppid;
		if (p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid()) {
			n++;
			z += state == 'Z';
		}
	}
	closedir(d);
	if (zombies)
		*zombies = z;
	return n;
}

/* After the pools' shutdowns and the processes' waits: no child at all,
 * so none can be a zombie. The reaper's children go first. */
static void assert_no_children(void)
{
	int64_t until = coil_loop_time_ns(NULL) + 20 * COIL_NSEC_PER_SEC;
	while (coil__process_reaper_pending() && coil_loop_time_ns(NULL) < until)
		ASSERT_EQ(coil_sleep(0.001), 0);
	ASSERT_EQ(coil__process_reaper_pending(), 0);
	int z = 0;
	ASSERT_EQ(children(&z), 0);
	ASSERT_EQ(z, 0);
}

/* Checks a job's output: the 4 bytes of the input. */
static void check_output(coil_bytes_t *b, uint32_t want)
{
	uint32_t got = 0;
	ASSERT_EQ(b->len, sizeof(got));
	memcpy(&got, b->data, sizeof(got));
	ASSERT_EQ(got, want);
}

/* --- coil_process_pool_run cancelled from another worker ---------------- */

typedef struct prun {
	coil_process_pool_t *pool;
	coil_task_t *victim;
	atomic_bool started;
	uint32_t in;
	int rc;
} prun_t;

static int prun_victim(void *arg, void **result)
{
	(void)result;
	prun_t *r = arg;
	atomic_store(&r->started, true);
	coil_bytes_t out = { NULL, 0 };
	r->rc = coil_process_pool_run(r->pool, "echo", &r->in, sizeof(r->in), &out);
	if (r->rc == 0) {
		check_output(&out, r->in);
		coil_bytes_free(&out);
	} else {
		ASSERT_EQ(r->rc, -ECANCELED);
		ASSERT(out.data == NULL);
	}
	return 0;
}

static void job_cancel_victim(void *arg)
{
	prun_t *r = arg;
	coil_task_cancel(r->victim, NULL);
}

/*
 * The victim (pinned on worker 0, or free to move in odd rounds) runs a
 * job in the pool; the helper on worker 1 cancels it while the result
 * comes back. The victim gets the output (and frees it) or -ECANCELED
 * (and the output, if it came, is freed with the future): once either way.
 */
static int prun_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_process_pool_t *pool = pool_make(2);
	uint64_t rng = 17;
	int n = rounds(400), got = 0;
	for (int i = 0; i < n; i++) {
		prun_t r = { .pool = pool, .in = (uint32_t)i };
		coil_spawn_opts_t o = { .pinned = i % 2 == 0 };
		ASSERT_EQ(coil_spawn(&r.victim, prun_victim, &r, &o), 0);
		while (!atomic_load(&r.started))
			ASSERT_EQ(coil_sleep(0), 0);
		helper_go(job_cancel_victim, &r);
		jitter(&rng);
		ASSERT_EQ(coil_await(coil_task_future(r.victim), NULL), 0);
		helper_wait();
		got += r.rc == 0;
		coil_task_detach(r.victim);
	}
	ASSERT_EQ(coil_process_pool_shutdown(pool, true, false), 0);
	assert_no_children();
	if (getenv("COIL_TEST_VERBOSE"))
		fprintf(stderr, "  %d rounds: %d got the output\n", n, got);
	return 0;
}

TEST(pool_run_cancelled_from_another_worker_as_its_result_comes)
{
	race_drive(prun_body, NULL);
}

/* --- a submitted future cancelled from another worker ------------------- */

/*
 * The driver submits a job (its future belongs to worker 0's loop) and
 * awaits it while the helper on worker 1 cancels the future, before the
 * job is sent, while it runs or as its result comes back. The await gives
 * the output or -ECANCELED, the done-callback runs once, and the pool
 * goes on serving (a later job on the same workers gets its output).
 */
static int psub_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_process_pool_t *pool = pool_make(1);
	uint64_t rng = 23;
	int n = rounds(400);
	for (int i = 0; i < n; i++) {
		race_fut_t s = { 0 };
		atomic_init(&s.callbacks, 0);
		uint32_t in = (uint32_t)i;
		ASSERT_EQ(coil_process_pool_submit(&s.f, pool, "echo", &in, sizeof(in)), 0);
		ASSERT_EQ(coil_future_add_done_callback(s.f, race_counted_done, &s), 0);
		helper_go(race_cancel_job, &s);
		jitter(&rng);
		void *res = NULL;
		int rc = coil_await(s.f, &res);
		if (rc == 0)
			check_output(res, in);
		else
			ASSERT_EQ(rc, -ECANCELED);
		helper_wait();
		while (atomic_load(&s.callbacks) == 0)
			ASSERT_EQ(coil_sleep(0), 0);
		coil_future_release(s.f);
		ASSERT_EQ(coil_sleep(0), 0);
		ASSERT_EQ(atomic_load(&s.callbacks), 1);
	}
	coil_bytes_t out = { NULL, 0 };
	ASSERT_EQ(coil_process_pool_run(pool, "echo", "ok", 2, &out), 0);
	ASSERT_EQ(out.len, 2);
	coil_bytes_free(&out);
	ASSERT_EQ(coil_process_pool_shutdown(pool, true, false), 0);
	assert_no_children();
	return 0;
}

TEST(pool_future_cancelled_from_another_worker)
{
	race_drive(psub_body, NULL);
}

/* --- the pool shut down from another worker with jobs in flight --------- */

#define SH_JOBS 6

typedef struct psh {
	coil_process_pool_t *pool;
	bool wait, cancel;
} psh_t;

static void job_shutdown(void *arg)
{
	psh_t *s = arg;
	ASSERT_EQ(coil_process_pool_shutdown(s->pool, s->wait, s->cancel), 0);
}

/* coil_process_pool_run as the pool is shut down: its job was submitted
 * before the shutdown began (the driver waits for that). */
typedef struct pshrun {
	psh_t *s;
	atomic_bool submitted;
} pshrun_t;

static int psh_runner(void *arg, void **result)
{
	(void)result;
	pshrun_t *r = arg;
	uint32_t ms = 1;
	coil_future_t *f = NULL;
	ASSERT_EQ(coil_process_pool_submit(&f, r->s->pool, "nap", &ms, sizeof(ms)), 0);
	atomic_store(&r->submitted, true);
	void *res = NULL;
	int rc = coil_await(f, &res);
	if (rc == 0)
		check_output(res, ms);
	else if (rc == COIL_ECLOSED)
		ASSERT(!r->s->wait);
	else
		ASSERT(rc == -ECANCELED && r->s->cancel);
	coil_future_release(f);
	return 0;
}

/*
 * Each round: a new pool of 2 workers; the driver submits jobs (some
 * running for a while, some queued behind them, one of them cancelled by
 * the driver itself), a task free to move submits one more, and both
 * await them while the helper on worker 1 shuts the pool down, waiting
 * or killing, cancelling the queued jobs or not.
 * Every future completes, with the output or an outcome that shutdown
 * allows: COIL_ECLOSED only when it killed, -ECANCELED only when it
 * cancelled (or for the job the driver cancelled). No worker is left.
 */
static int psh_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	uint64_t rng = 31;
	int n = rounds(60), outcomes[3] = { 0, 0, 0 };
	for (int i = 0; i < n; i++) {
		psh_t s = { .pool = pool_make(2), .wait = rnd(&rng) & 1,
			    .cancel = rnd(&rng) & 1 };
		coil_future_t *f[SH_JOBS];
		uint32_t in[SH_JOBS];
		for (int k = 0; k < SH_JOBS; k++) {
			in[k] = (uint32_t)(rnd(&rng) % 3);
			ASSERT_EQ(coil_process_pool_submit(&f[k], s.pool, "nap", &in[k],
							   sizeof(in[k])), 0);
		}
		int mine = (int)(rnd(&rng) % SH_JOBS);
		/* A task free to move submits one more and awaits it. */
		pshrun_t r = { .s = &s };
		atomic_init(&r.submitted, false);
		coil_task_t *runner = NULL;
		ASSERT_EQ(coil_spawn(&runner, psh_runner, &r, NULL), 0);
		while (!atomic_load(&r.submitted))
			ASSERT_EQ(coil_sleep(0), 0);
		helper_go(job_shutdown, &s);
		jitter(&rng);
		coil_future_cancel(f[mine], NULL);
		for (int k = 0; k < SH_JOBS; k++) {
			void *res = NULL;
			int rc = coil_await(f[k], &res);
			if (rc == 0) {
				check_output(res, in[k]);
				outcomes[0]++;
			} else if (rc == COIL_ECLOSED) {
				ASSERT(!s.wait);
				outcomes[1]++;
			} else {
				ASSERT_EQ(rc, -ECANCELED);
				ASSERT(s.cancel || k == mine);
				outcomes[2]++;
			}
			coil_future_release(f[k]);
		}
		ASSERT_EQ(coil_await(coil_task_future(runner), NULL), 0);
		coil_task_detach(runner);
		helper_wait();
		assert_no_children();
	}
	if (getenv("COIL_TEST_VERBOSE"))
		fprintf(stderr, "  %d ran, %d closed, %d cancelled\n", outcomes[0],
			outcomes[1], outcomes[2]);
	return 0;
}

TEST(pool_shut_down_from_another_worker_with_jobs_in_flight)
{
	race_drive(psh_body, NULL);
}

/* --- the pool's pids read while its workers die and are replaced -------- */

typedef struct ppid {
	coil_process_pool_t *pool;
	atomic_bool stop;
	long reads;
} ppid_t;

static void job_read_pids(void *arg)
{
	ppid_t *s = arg;
	unsigned spins = 0;
	while (!atomic_load(&s->stop)) {
		int pids[2];
		size_t k = coil_process_pool_pids(s->pool, pids, 2);
		ASSERT(k <= 2);
		for (size_t j = 0; j < k; j++)
			ASSERT(pids[j] > 0);
		s->reads++;
		spin_pause(&spins);
	}
}

/*
 * The driver runs jobs that kill their worker (each is then reaped and
 * replaced by the pool's manager) while the helper on worker 1 reads the
 * pool's pids over and over: coil_process_pool_pids may be called from
 * any thread, and every id it gives is a live worker's (never 0).
 */
static int ppid_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ppid_t s = { .pool = pool_make(1) };
	atomic_init(&s.stop, false);
	helper_go(job_read_pids, &s);
	int n = under_valgrind() ? 2 : 24;
	for (int i = 0; i < n; i++) {
		coil_bytes_t out = { NULL, 0 };
		ASSERT_EQ(coil_process_pool_run(s.pool, "exit3", NULL, 0, &out), COIL_EBROKEN);
		uint32_t in = (uint32_t)i;
		ASSERT_EQ(coil_process_pool_run(s.pool, "echo", &in, sizeof(in), &out), 0);
		check_output(&out, in);
		coil_bytes_free(&out);
	}
	atomic_store(&s.stop, true);
	helper_wait();
	ASSERT_EQ(coil_process_pool_shutdown(s.pool, true, false), 0);
	assert_no_children();
	ASSERT(s.reads > 0);
	return 0;
}

TEST(pool_pids_read_while_workers_are_replaced)
{
	race_drive(ppid_body, NULL);
}

/* --- jobs that outlive the runtime whose tasks submitted them ------------ */

typedef struct orun {
	coil_process_pool_t *pool;
	uint32_t ms;
	atomic_int started;
} orun_t;

/* Awaits a job: the runtime's shutdown may cancel it meanwhile. */
static int orun_await(void *arg, void **result)
{
	(void)result;
	orun_t *o = arg;
	atomic_fetch_add(&o->started, 1);
	coil_bytes_t out = { NULL, 0 };
	int rc = coil_process_pool_run(o->pool, "nap", &o->ms, sizeof(o->ms), &out);
	if (rc == 0) {
		check_output(&out, o->ms);
		coil_bytes_free(&out);
	} else {
		ASSERT(rc == -ECANCELED || rc == COIL_ECLOSED);
	}
	return 0;
}

/* Leaves jobs behind, their futures let go. */
static int orun_leave(void *arg, void **result)
{
	(void)result;
	orun_t *o = arg;
	for (int k = 0; k < 3; k++) {
		coil_future_t *f = NULL;
		ASSERT_EQ(coil_process_pool_submit(&f, o->pool, "nap", &o->ms, sizeof(o->ms)), 0);
		coil_future_release(f);
	}
	atomic_fetch_add(&o->started, 1);
	return 0;
}

/*
 * A pool made outside any runtime serves a runtime of 2 workers: a task on
 * worker 0 awaits a job, one on worker 1 leaves jobs behind, and the
 * runtime is shut down (cancelling the awaiting task, or not) while the
 * jobs run. Their results then reach closed loops, from the pool's
 * manager thread, as the pool is shut down (waiting or killing): each is
 * destroyed once, and no loop, runtime or worker process outlives its end.
 */
TEST(pool_jobs_outlive_the_runtime_that_submitted_them)
{
	uint64_t rng = 61;
	int n = rounds(40);
	coil_spawn_opts_t pinned = { .pinned = true };
	for (int i = 0; i < n; i++) {
		orun_t o = { .pool = pool_make(2), .ms = (uint32_t)(rnd(&rng) % 4) };
		atomic_init(&o.started, 0);
		coil_runtime_t *rt = test_runtime_new(2);
		ASSERT_EQ(coil_runtime_start(rt), 0);
		coil_cfuture_t *a = NULL, *b = NULL;
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&a, coil_runtime_loop(rt, 0),
							     orun_await, &o, &pinned), 0);
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&b, coil_runtime_loop(rt, 1),
							     orun_leave, &o, &pinned), 0);
		while (atomic_load(&o.started) < 2)
			sched_yield();
		coil_cfuture_release(a);
		coil_cfuture_release(b);
		jitter(&rng);
		int rc = coil_runtime_shutdown(rt, rnd(&rng) & 1 ? 0 : COIL_FOREVER);
		ASSERT(rc == 0 || rc == -ETIMEDOUT);
		ASSERT_EQ(coil_process_pool_shutdown(o.pool, rnd(&rng) & 1, false), 0);
		int z = 0;
		ASSERT_EQ(children(&z), 0);
	}
}

/* --- subprocesses ---------------------------------------------------------- */

static coil_process_t *spawn_cat(void)
{
	static const char *const argv[] = { "cat", NULL };
	coil_process_opts_t o;
	coil_process_opts_init(&o);
	o.stdin_fd = COIL_PROCESS_PIPE;
	o.stdout_fd = COIL_PROCESS_PIPE;
	o.stderr_fd = COIL_PROCESS_DEVNULL;
	coil_process_t *p = NULL;
	ASSERT_EQ(coil_process_spawn(&p, argv, &o), 0);
	return p;
}

#define COMM_LEN (64 * 1024)

typedef struct comm {
	coil_process_t *p;
	const char *input;
	coil_bytes_t out;
	int rc, code;
} comm_t;

static void job_communicate(void *arg)
{
	comm_t *c = arg;
	c->code = 1;
	c->rc = coil_process_communicate(c->p, c->input, COMM_LEN, &c->out, NULL, &c->code,
					 COIL_FOREVER);
}

/*
 * The helper on worker 1 feeds `cat` its input and reads its output with
 * communicate, while the driver on worker 0 kills the child (odd rounds)
 * or waits for it (even rounds). Both see the same exit status; a child
 * killed midway gave a prefix of its input (or all of it), one left alone
 * all of it; the pipes and the output are freed once.
 */
static void comm_round(int i, uint64_t *rng)
{
	static char input[COMM_LEN];
	for (size_t k = 0; k < sizeof(input); k++)
		input[k] = (char)('a' + k % 26);
	comm_t c = { .p = spawn_cat(), .input = input };
	bool kill = i % 2;
	helper_go(job_communicate, &c);
	jitter(rng);
	if (kill) {
		/* -ESRCH: the child ended and communicate reaped it first. */
		int rc = coil_process_kill(c.p);
		ASSERT(rc == 0 || rc == -ESRCH);
	}
	int code = 7;
	ASSERT_EQ(coil_process_wait(c.p, &code, COIL_FOREVER), 0);
	helper_wait();
	ASSERT_EQ(c.rc, 0);
	ASSERT_EQ(c.code, code);
	if (code == 0) {
		ASSERT_EQ(c.out.len, COMM_LEN);
	} else {
		ASSERT(kill);
		ASSERT_EQ(code, -SIGKILL);
		ASSERT(c.out.len <= COMM_LEN);
	}
	ASSERT(!c.out.len || !memcmp(c.out.data, input, c.out.len));
	coil_bytes_free(&c.out);
	ASSERT_EQ(coil_process_kill(c.p), -ESRCH);
	coil_process_free(c.p);
}

static int comm_body(void *arg, void **result)
{
	(void)result;
	bool polling = arg != NULL;
	coil__process_force_polling(polling);
	uint64_t rng = polling ? 41 : 43;
	int n = rounds(polling ? 40 : 120);
	for (int i = 0; i < n; i++)
		comm_round(i, &rng);
	coil__process_force_polling(false);
	assert_no_children();
	return 0;
}

TEST(process_communicate_on_one_worker_killed_or_waited_on_the_other)
{
	race_drive(comm_body, NULL);
	race_drive(comm_body, (void *)1);
}

/* --- communicate cancelled from another worker, then resumed ------------- */

typedef struct ccan {
	coil_task_t *victim;
	coil_process_t *p;
	const char *input;
	atomic_bool started;
	int first;
} ccan_t;

static int ccan_victim(void *arg, void **result)
{
	(void)result;
	ccan_t *c = arg;
	atomic_store(&c->started, true);
	coil_bytes_t out = { NULL, 0 };
	int code = 1;
	c->first = coil_process_communicate(c->p, c->input, COMM_LEN, &out, NULL, &code,
					    COIL_FOREVER);
	if (c->first == -ECANCELED) {
		/* Nothing was lost: the input not yet written and the output
		 * read so far were kept for the next call. */
		ASSERT(out.data == NULL);
		ASSERT_EQ(coil_process_communicate(c->p, NULL, 0, &out, NULL, &code,
						   COIL_FOREVER), 0);
	} else {
		ASSERT_EQ(c->first, 0);
	}
	ASSERT_EQ(code, 0);
	ASSERT_EQ(out.len, COMM_LEN);
	ASSERT(!memcmp(out.data, c->input, COMM_LEN));
	coil_bytes_free(&out);
	return 0;
}

static void job_cancel_communicate(void *arg)
{
	ccan_t *c = arg;
	coil_task_cancel(c->victim, NULL);
}

/*
 * A task (pinned on worker 0, or free to move in odd rounds) feeds `cat`
 * and reads it back with communicate; the helper on worker 1 cancels the
 * task while it writes, reads or waits, with its reader tasks on either
 * worker. A cancelled call keeps what it had: the next one returns the
 * whole output. The driver frees the process as soon as the task ended.
 */
static int ccan_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	static char input[COMM_LEN];
	for (size_t k = 0; k < sizeof(input); k++)
		input[k] = (char)('A' + k % 26);
	uint64_t rng = 47;
	int n = rounds(120), cancelled = 0;
	for (int i = 0; i < n; i++) {
		ccan_t c = { .p = spawn_cat(), .input = input };
		atomic_init(&c.started, false);
		coil_spawn_opts_t o = { .pinned = i % 2 == 0 };
		ASSERT_EQ(coil_spawn(&c.victim, ccan_victim, &c, &o), 0);
		while (!atomic_load(&c.started))
			ASSERT_EQ(coil_sleep(0), 0);
		helper_go(job_cancel_communicate, &c);
		jitter(&rng);
		ASSERT_EQ(coil_await(coil_task_future(c.victim), NULL), 0);
		helper_wait();
		cancelled += c.first == -ECANCELED;
		coil_task_detach(c.victim);
		coil_process_free(c.p);
	}
	assert_no_children();
	if (getenv("COIL_TEST_VERBOSE"))
		fprintf(stderr, "  %d rounds: %d communicates cancelled\n", n, cancelled);
	return 0;
}

TEST(process_communicate_cancelled_from_another_worker_then_resumed)
{
	race_drive(ccan_body, NULL);
}

/* --- a process freed on one worker as soon as another saw it exit -------- */

typedef struct pfree {
	coil_process_t *p;
	atomic_bool exited;
	bool by_wait;
	int code;
} pfree_t;

/* Sees the exit, by waiting or by polling the status, and says so. */
static void job_see_exit(void *arg)
{
	pfree_t *f = arg;
	int code = -1, rc;
	if (f->by_wait) {
		rc = coil_process_wait(f->p, &code, COIL_FOREVER);
	} else {
		while ((rc = coil_process_returncode(f->p, &code)) == -EAGAIN)
			ASSERT_EQ(coil_sleep(0), 0);
	}
	ASSERT_EQ(rc, 0);
	f->code = code;
	atomic_store_explicit(&f->exited, true, memory_order_release);
}

/*
 * A short-lived child is killed by the driver (or left to exit) while the
 * helper on worker 1 waits for it or polls its status; the driver frees
 * the process the moment the helper says it exited, while the helper's
 * wait or poll is still returning. The status is the child's, nothing
 * touches the freed process, and no zombie is left.
 */
static void free_round(int i, uint64_t *rng)
{
	static const char *const argv[] = { "sh", "-c", "exit 5", NULL };
	pfree_t f = { .by_wait = i % 2 == 0 };
	atomic_init(&f.exited, false);
	ASSERT_EQ(coil_process_spawn(&f.p, argv, NULL), 0);
	bool kill = (i / 2) % 2;
	helper_go(job_see_exit, &f);
	jitter(rng);
	if (kill) {
		int rc = coil_process_kill(f.p);
		ASSERT(rc == 0 || rc == -ESRCH);
	}
	unsigned spins = 0;
	while (!atomic_load_explicit(&f.exited, memory_order_acquire))
		spin_pause(&spins);
	coil_process_free(f.p);
	helper_wait();
	ASSERT(f.code == 5 || (kill && f.code == -SIGKILL));
}

static int free_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	uint64_t rng = 53;
	int n = rounds(120);
	for (int i = 0; i < n; i++)
		free_round(i, &rng);
	assert_no_children();
	return 0;
}

TEST(process_freed_as_soon_as_another_worker_saw_it_exit)
{
	race_drive(free_body, NULL);
}

TEST_LIST(
	TEST_ENTRY(pool_run_cancelled_from_another_worker_as_its_result_comes),
	TEST_ENTRY(pool_future_cancelled_from_another_worker),
	TEST_ENTRY(pool_shut_down_from_another_worker_with_jobs_in_flight),
	TEST_ENTRY(pool_pids_read_while_workers_are_replaced),
	TEST_ENTRY(pool_jobs_outlive_the_runtime_that_submitted_them),
	TEST_ENTRY(process_communicate_on_one_worker_killed_or_waited_on_the_other),
	TEST_ENTRY(process_communicate_cancelled_from_another_worker_then_resumed),
	TEST_ENTRY(process_freed_as_soon_as_another_worker_saw_it_exit))
