/*
 * runtime/debug/metrics.c: per-loop counters (see coil/debug.h), and the
 * observation of steps and callbacks: debug mode's slow-callback warning
 * and the spans of the trace recorder (trace.c).
 *
 * Who writes what. A loop's counters (coil__metrics_t, debug/metrics_int.h)
 * are written only by the thread running the loop, each with a relaxed
 * load, an add and a relaxed store; any thread reads them with relaxed
 * loads. A counter is a 64-bit word on its own, so a reader never sees it
 * torn, and one that is a little stale is what a snapshot of a running
 * system means anyway. Nothing here takes a lock or stops a loop.
 *
 * Times. Busy and idle time come from two pairs of clock reads, both off
 * the hot paths: around each run of the loop (coil__loop_enter/leave) and
 * around each ring wait that may block (a park, which is a system call
 * anyway). A run or park in progress is counted up to the moment of the
 * snapshot, through its start time (0 when none is in progress).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coil/debug.h"
#include "core.h"
#include "debug_int.h"

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* --- the slow-callback duration ----------------------------------------- */

int coil_loop_set_slow_callback_duration(coil_loop_t *loop, int64_t ns)
{
	if (!loop || loop->any || ns < 0)
		return -EINVAL;
	STORE(loop->metrics.slow_ns, ns);
	return 0;
}

int64_t coil_loop_get_slow_callback_duration(const coil_loop_t *loop)
{
	if (!loop)
		return -EINVAL;
	int64_t ns = LOAD(loop->metrics.slow_ns);
	return ns > 0 ? ns : COIL__SLOW_DEFAULT_NS;
}

/* --- observing steps and callbacks -------------------------------------- */

int64_t coil__observe_begin(coil_loop_t *loop, coil__runnable_t *r)
{
	coil__metrics_t *m = &loop->metrics;
	m->obs.kind = r->kind;
	m->obs.fn = NULL;
	m->obs.id = 0;
	m->obs.name[0] = '\0';
	if (r->kind == COIL__RUN_TASK) {
		coil_task_t *t = coil__container_of(r, coil__task_body_t, run)->task;
		m->obs.id = t->id;
		/* Copied: the step may end the task and free its handle.
		 * (No reference is taken to keep it: debug mode's check of a
		 * task that never ran counts the references.) Under the
		 * cancellation lock: any thread may rename the task meanwhile,
		 * which frees the old name (task.c, coil_task_set_name). */
		coil__lock(&t->clock);
		if (t->name) {
			size_t n = strnlen(t->name, sizeof(m->obs.name) - 1);
			memcpy(m->obs.name, t->name, n);
			m->obs.name[n] = '\0';
		}
		coil__unlock(&t->clock);
	} else if (r->kind == COIL__RUN_HANDLE) {
		m->obs.fn = (const void *)(uintptr_t)coil__container_of(r, coil_handle_t, run)->cb;
	} else if (r->kind == COIL__RUN_DONE_CB) {
		m->obs.fn = (const void *)(uintptr_t)coil__container_of(r, coil__donecb_t, run)->fn;
	}
	int64_t now = coil__clock_ns();
	return now ? now : 1;
}

/* Names a function for a message: its symbol, without a "+0x0". */
static void fn_name(const void *fn, char *buf, size_t cap)
{
	coil__symbolizer_t *s = coil__sym_new();
	coil__sym_name(s, fn, false, buf, cap, NULL);
	coil__sym_free(s);
	size_t n = strlen(buf);
	if (n > 4 && !strcmp(buf + n - 4, "+0x0"))
		buf[n - 4] = '\0';
}

static void warn_slow(coil_loop_t *loop, int64_t took)
{
	coil__metrics_t *m = &loop->metrics;
	char what[200], msg[320];
	if (m->obs.kind == COIL__RUN_TASK) {
		if (m->obs.name[0])
			snprintf(what, sizeof(what), "task '%s' (id %llu)", m->obs.name,
				 (unsigned long long)m->obs.id);
		else
			snprintf(what, sizeof(what), "task 'Task-%llu' (id %llu)",
				 (unsigned long long)m->obs.id, (unsigned long long)m->obs.id);
	} else {
		char sym[160];
		fn_name(m->obs.fn, sym, sizeof(sym));
		snprintf(what, sizeof(what), "%s %s",
			 m->obs.kind == COIL__RUN_DONE_CB ? "done-callback" : "callback", sym);
	}
	snprintf(msg, sizeof(msg), "Executing %s took %.3f seconds", what,
		 (double)took / 1e9);
	/* The message names the task; the context cannot hand it over, as
	 * the step may have ended it and its handle may be gone. */
	coil_exc_context_t ctx = { .message = msg };
	coil_loop_call_exception_handler(loop, &ctx);
}

void coil__observe_end(coil_loop_t *loop, int64_t t0)
{
	coil__metrics_t *m = &loop->metrics;
	int64_t t1 = coil__clock_ns();
#if COIL_METRICS
	if (COIL__TRACING()) {
		int kind = m->obs.kind == COIL__RUN_TASK ? COIL__TEV_TASK :
			   m->obs.kind == COIL__RUN_HANDLE ? COIL__TEV_CALLBACK :
							     COIL__TEV_DONECB;
		coil__trace_event(loop, kind, t0, t1, m->obs.id, 0, m->obs.fn, m->obs.name);
	}
#endif
	if (loop->debug) {
		int64_t lim = LOAD(m->slow_ns);
		if (lim <= 0)
			lim = COIL__SLOW_DEFAULT_NS;
		if (t1 - t0 > lim)
			warn_slow(loop, t1 - t0);
	}
}

#if COIL_METRICS

/* --- the core's hooks ---------------------------------------------------- */

void coil__metrics_enter(coil_loop_t *loop)
{
	STORE(loop->metrics.run_since, coil__clock_ns());
}

void coil__metrics_leave(coil_loop_t *loop)
{
	coil__metrics_t *m = &loop->metrics;
	int64_t since = m->run_since;
	if (!since)
		return;
	/* The start is cleared first: a reader in between undercounts
	 * this run for a moment rather than counting it twice. */
	STORE(m->run_since, 0);
	STORE(m->run_ns, m->run_ns + (coil__clock_ns() - since));
}

void coil__metrics_wait_begin(coil_loop_t *loop)
{
	COIL__M_INC(loop, parks);
	STORE(loop->metrics.idle_since, coil__clock_ns());
}

void coil__metrics_wait_end(coil_loop_t *loop)
{
	coil__metrics_t *m = &loop->metrics;
	int64_t since = m->idle_since;
	if (!since)
		return;
	int64_t now = coil__clock_ns();
	STORE(m->idle_since, 0);
	STORE(m->idle_ns, m->idle_ns + (now - since));
	/* The loop set `sleeping` before it waited; only a kicker that
	 * wrote its eventfd clears it (loop_kick in loop.c). */
	if (!atomic_load_explicit(&loop->sleeping, memory_order_relaxed))
		COIL__M_INC(loop, wakeups_received);
	if (COIL__TRACING())
		coil__trace_event(loop, COIL__TEV_PARK, since, now, 0, 0, NULL, NULL);
}

void coil__metrics_wake_sent(void)
{
	coil_loop_t *me = coil__running_loop;
	if (me && !me->any)
		COIL__M_INC(me, wakeups_sent);
}

void coil__metrics_ring_submitted(const void *r, int n)
{
	coil_loop_t *me = coil__running_loop;
	if (me && (const void *)me->ring == r)
		COIL__M_ADD(me, io_submitted, (uint64_t)n);
}

void coil__metrics_ring_reaped(const void *r, int n)
{
	coil_loop_t *me = coil__running_loop;
	if (me && (const void *)me->ring == r)
		COIL__M_ADD(me, io_completed, (uint64_t)n);
}

void coil__trace_steal(coil_loop_t *loop, unsigned victim, uint64_t tasks)
{
	int64_t now = coil__clock_ns();
	coil__trace_event(loop, COIL__TEV_STEAL, now, now, victim, tasks, NULL, NULL);
}

void coil__trace_io(coil_loop_t *loop, int64_t t0, uint64_t task, const char *op,
		    int fd, int res)
{
	uint64_t n = (uint64_t)(uint32_t)fd << 32 | (uint32_t)res;
	coil__trace_event(loop, COIL__TEV_IO, t0, coil__clock_ns(), task, n, op, NULL);
}

/* --- reading ------------------------------------------------------------- */

/* The smallest caller struct we accept: size and worker. */
#define METRICS_MIN_SIZE (offsetof(coil_worker_metrics_t, worker) + sizeof(int))

static void snapshot(const coil_loop_t *loop, coil_worker_metrics_t *o)
{
	const coil__metrics_t *m = &loop->metrics;
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->worker = loop->rt ? (int)loop->index : -1;
	o->steps = LOAD(m->steps);
	o->callbacks = LOAD(m->callbacks);
	o->steal_attempts = LOAD(m->steal_attempts);
	o->steals = LOAD(m->steals);
	o->stolen = LOAD(m->stolen);
	o->parks = LOAD(m->parks);
	o->wakeups_sent = LOAD(m->wakeups_sent);
	o->wakeups_received = LOAD(m->wakeups_received);
	o->inject_pops = LOAD(m->inject_pops);
	o->lifo_hits = LOAD(m->lifo_hits);
	o->io_submitted = LOAD(m->io_submitted);
	o->io_completed = LOAD(m->io_completed);
	o->timers_fired = LOAD(m->timers_fired);
	/* Thieves read the deque's length from any thread the same way. */
	if (loop->multi)
		o->deque_depth = coil__deque_len((coil__deque_t *)&loop->deque);
	int64_t now = coil__clock_ns();
	int64_t run_since = LOAD(m->run_since), idle_since = LOAD(m->idle_since);
	int64_t run = LOAD(m->run_ns), idle = LOAD(m->idle_ns);
	if (run_since && now > run_since)
		run += now - run_since;
	if (idle_since && now > idle_since)
		idle += now - idle_since;
	o->running = run_since != 0;
	o->parked = idle_since != 0;
	/* The four were read a moment apart: keep the pair consistent. */
	if (idle > run)
		idle = run;
	o->idle_ns = idle;
	o->busy_ns = run - idle;
}

/* Copies the first `size` bytes of a snapshot into the caller's struct,
 * whose size field keeps the caller's value. */
static void copy_out(coil_worker_metrics_t *dst, size_t size,
		     const coil_worker_metrics_t *src)
{
	memcpy(dst, src, size < sizeof(*src) ? size : sizeof(*src));
	dst->size = size;
}

int coil_loop_metrics(const coil_loop_t *loop, coil_worker_metrics_t *out)
{
	if (!loop || loop->any || !out || out->size < METRICS_MIN_SIZE)
		return -EINVAL;
	coil_worker_metrics_t s;
	snapshot(loop, &s);
	copy_out(out, out->size, &s);
	return 0;
}

int coil_runtime_metrics(coil_runtime_t *rt, coil_worker_metrics_t *out, size_t n)
{
	if (!rt || (n && !out))
		return -EINVAL;
	size_t stride = n ? out->size : 0;
	if (n && stride < METRICS_MIN_SIZE)
		return -EINVAL;
	for (size_t i = 0; i < n && i < rt->n; i++) {
		coil_worker_metrics_t s;
		snapshot(rt->loops[i], &s);
		copy_out((coil_worker_metrics_t *)((char *)out + i * stride), stride, &s);
	}
	return (int)rt->n;
}

static void dump_line(FILE *f, const coil_worker_metrics_t *s)
{
	if (s->worker >= 0)
		fprintf(f, "worker %d:", s->worker);
	else
		fprintf(f, "loop:");
	fprintf(f, " steps=%llu callbacks=%llu steals=%llu/%llu stolen=%llu"
		" parks=%llu wakeups=%llu/%llu inject=%llu lifo=%llu deque=%llu"
		" io=%llu/%llu timers=%llu busy=%.3fs idle=%.3fs\n",
		(unsigned long long)s->steps, (unsigned long long)s->callbacks,
		(unsigned long long)s->steals, (unsigned long long)s->steal_attempts,
		(unsigned long long)s->stolen, (unsigned long long)s->parks,
		(unsigned long long)s->wakeups_sent, (unsigned long long)s->wakeups_received,
		(unsigned long long)s->inject_pops, (unsigned long long)s->lifo_hits,
		(unsigned long long)s->deque_depth, (unsigned long long)s->io_submitted,
		(unsigned long long)s->io_completed, (unsigned long long)s->timers_fired,
		(double)s->busy_ns / 1e9, (double)s->idle_ns / 1e9);
}

int coil_runtime_dump_metrics(coil_runtime_t *rt, FILE *f)
{
	if (!rt)
		return -EINVAL;
	if (!f)
		f = stderr;
	/* Every worker read first, printed after: the lines are as close to
	 * one moment as the reads allow. */
	coil_worker_metrics_t *all = coil__libc_calloc(rt->n, sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (unsigned i = 0; i < rt->n; i++)
		snapshot(rt->loops[i], &all[i]);
	for (unsigned i = 0; i < rt->n; i++)
		dump_line(f, &all[i]);
	free(all);
	return (int)rt->n;
}

int coil_loop_dump_metrics(const coil_loop_t *loop, FILE *f)
{
	if (!loop || loop->any)
		return -EINVAL;
	coil_worker_metrics_t s;
	snapshot(loop, &s);
	dump_line(f ? f : stderr, &s);
	return 1;
}

#else /* !COIL_METRICS: built without counters */

int coil_loop_metrics(const coil_loop_t *loop, coil_worker_metrics_t *out)
{
	(void)loop;
	(void)out;
	return -ENOTSUP;
}

int coil_runtime_metrics(coil_runtime_t *rt, coil_worker_metrics_t *out, size_t n)
{
	(void)rt;
	(void)out;
	(void)n;
	return -ENOTSUP;
}

int coil_runtime_dump_metrics(coil_runtime_t *rt, FILE *f)
{
	(void)rt;
	(void)f;
	return -ENOTSUP;
}

int coil_loop_dump_metrics(const coil_loop_t *loop, FILE *f)
{
	(void)loop;
	(void)f;
	return -ENOTSUP;
}

#endif
