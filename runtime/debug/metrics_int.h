/*
 * runtime/debug/metrics_int.h: the hooks through which the core counts
 * what each loop does (runtime/debug/metrics.c) and records the trace
 * (runtime/debug/trace.c).
 *
 * Counters. Each loop (a runtime's worker or a standalone loop) has one
 * coil__metrics_t, at the end of coil_loop_t. Its counters are written by
 * the thread that runs the loop and by nobody else, so a counter is bumped
 * with a relaxed load, an add and a relaxed store (COIL__M_ADD: three
 * plain instructions on x86-64 and AArch64, no locked read-modify-write),
 * and read by any thread with relaxed loads: a reader sees each counter
 * as it was at some recent moment, never a torn value.
 *
 * Observing. A task step or callback is timed only when someone looks:
 * the loop is in debug mode (the slow-callback warning) or a trace is
 * being recorded. COIL__OBSERVING() is the one predictable branch each
 * observation site costs otherwise (a byte of the loop and a global flag).
 *
 * Built with -DCOIL_METRICS=0 (CMake: COIL_METRICS=OFF) the counters and
 * the trace recorder compile to nothing; the structure keeps its layout,
 * so code built either way agrees on coil_loop_t. Debug mode's
 * slow-callback warning stays: it is part of debug mode, not of the
 * counters.
 */
#ifndef COIL_RUNTIME_DEBUG_METRICS_INT_H
#define COIL_RUNTIME_DEBUG_METRICS_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#ifndef COIL_METRICS
#define COIL_METRICS 1
#endif

struct coil_loop;
struct coil__runnable;
struct coil__tbuf;

/* Debug mode's default slow-callback threshold (asyncio's
 * slow_callback_duration, 0.1 s). */
#define COIL__SLOW_DEFAULT_NS (100 * (int64_t)1000000)

/* What a loop counts. Counters: written by the loop's thread only (see
 * COIL__M_ADD), read by any thread with relaxed loads. */
typedef struct coil__metrics {
	_Alignas(64) uint64_t steps;   /* task steps run */
	uint64_t callbacks;       /* handles and done-callbacks run */
	uint64_t steal_attempts;  /* searches of other workers' deques */
	uint64_t steals;          /* searches that took tasks */
	uint64_t stolen;          /* tasks taken by them */
	uint64_t parks;           /* ring waits that could block */
	uint64_t wakeups_sent;    /* wake-ups this loop's thread sent */
	uint64_t wakeups_received;/* wake-ups addressed to this loop */
	uint64_t inject_pops;     /* runnables taken from the injection queue */
	uint64_t lifo_hits;       /* steps taken from the LIFO slot */
	uint64_t io_submitted;    /* SQEs the ring submitted */
	uint64_t io_completed;    /* CQEs the ring reaped */
	uint64_t timers_fired;    /* timers that expired */
	int64_t idle_ns;          /* time in finished ring waits that could block */
	int64_t idle_since;       /* start of the wait in progress, 0: none */
	int64_t run_ns;           /* time run in finished runs of the loop */
	int64_t run_since;        /* start of the run in progress, 0: none */
	/* Debug mode's slow-callback threshold in ns (0: the default). Any
	 * thread may set it (relaxed atomics): it is read after a step. */
	int64_t slow_ns;
	/* The step or callback being observed (owner only). */
	struct {
		const void *fn;           /* a callback's function */
		uint64_t id;              /* a task's id */
		uint8_t kind;             /* COIL__RUN_* */
		char name[40];            /* a task's name, "" for Task-<id> */
	} obs;
	/* The trace recorder (trace.c): this loop's event buffer, set by the
	 * loop's thread and cleared by coil_trace_stop, both under the
	 * recorder's lock; `tbusy` is 1 while the loop's thread writes an
	 * event (the recorder waits for 0 before it frees the buffer). */
	struct coil__tbuf *tbuf;
	atomic_int tbusy;
} coil__metrics_t;

/* Nonzero while a trace is being recorded (trace.c). Hidden: the library's
 * own code reads it directly, not through the GOT. */
extern __attribute__((visibility("hidden"))) atomic_int coil__trace_flag;

#if COIL_METRICS
/* Adds n to the loop's counter f. From the loop's thread only. */
#define COIL__M_ADD(loop, f, n)                                               \
	__atomic_store_n(&(loop)->metrics.f,                                  \
			 __atomic_load_n(&(loop)->metrics.f, __ATOMIC_RELAXED) + \
				 (n), __ATOMIC_RELAXED)
#define COIL__TRACING()                                                       \
	__builtin_expect(atomic_load_explicit(&coil__trace_flag,               \
					      memory_order_relaxed) != 0, 0)
#else
#define COIL__M_ADD(loop, f, n) ((void)sizeof((loop)->metrics.f + (n)))
#define COIL__TRACING() 0
#endif
#define COIL__M_INC(loop, f) COIL__M_ADD(loop, f, 1)

/* Whether the loop's steps and callbacks are timed (debug mode, or a trace
 * is being recorded). */
#define COIL__OBSERVING(loop) __builtin_expect((loop)->debug | COIL__TRACING(), 0)

/* Around a runnable: begin returns the start time (never 0), end reports
 * a slow step in debug mode and records the span in a trace. */
int64_t coil__observe_begin(struct coil_loop *loop, struct coil__runnable *r);
void coil__observe_end(struct coil_loop *loop, int64_t t0);
#define COIL__OBSERVE_BEGIN(loop, r)                                          \
	(COIL__OBSERVING(loop) ? coil__observe_begin(loop, r) : 0)
#define COIL__OBSERVE_END(loop, t0)                                           \
	do {                                                                  \
		if (__builtin_expect((t0) != 0, 0))                           \
			coil__observe_end(loop, t0);                          \
	} while (0)

#if COIL_METRICS
/* The loop is entered / left by its thread (busy time). */
void coil__metrics_enter(struct coil_loop *loop);
void coil__metrics_leave(struct coil_loop *loop);
/* Around a ring wait that may block (a park): idle time, the park's span
 * in a trace, wake-ups received through the loop's `sleeping` flag. */
void coil__metrics_wait_begin(struct coil_loop *loop);
void coil__metrics_wait_end(struct coil_loop *loop);
/* The calling thread sent a wake-up (counted on its running loop). */
void coil__metrics_wake_sent(void);
/* The ring r submitted / reaped n entries (counted on the running loop
 * when r is its ring). */
void coil__metrics_ring_submitted(const void *r, int n);
void coil__metrics_ring_reaped(const void *r, int n);
/* A successful steal of `tasks` tasks from worker `victim` (trace). */
void coil__trace_steal(struct coil_loop *loop, unsigned victim, uint64_t tasks);
/* The loop's memory is about to be freed: its trace events stay with the
 * recorder until the trace stops. Any thread. */
void coil__trace_loop_free(struct coil_loop *loop);

#define COIL__METRICS_ENTER(loop) coil__metrics_enter(loop)
#define COIL__METRICS_LEAVE(loop) coil__metrics_leave(loop)
#define COIL__METRICS_WAIT_BEGIN(loop) coil__metrics_wait_begin(loop)
#define COIL__METRICS_WAIT_END(loop) coil__metrics_wait_end(loop)
#define COIL__METRICS_WAKE_SENT() coil__metrics_wake_sent()
#define COIL__METRICS_RING_SUBMITTED(r, n)                                    \
	do {                                                                  \
		int n_ = (n);                                                 \
		if (n_ > 0)                                                   \
			coil__metrics_ring_submitted(r, n_);                  \
	} while (0)
#define COIL__METRICS_RING_REAPED(r, n) coil__metrics_ring_reaped(r, n)
#define COIL__TRACE_STEAL(loop, victim, tasks)                                \
	do {                                                                  \
		if (COIL__TRACING())                                          \
			coil__trace_steal(loop, victim, tasks);               \
	} while (0)
#define COIL__TRACE_LOOP_FREE(loop) coil__trace_loop_free(loop)
/* A task of the loop waited for I/O operation `op` (a static string) on fd
 * from t0 to now, with result res (trace). From the loop's thread. */
void coil__trace_io(struct coil_loop *loop, int64_t t0, uint64_t task,
		    const char *op, int fd, int res);
/* The start of an I/O wait: the clock while a trace is recorded, else 0. */
#define COIL__TRACE_IO_BEGIN() (COIL__TRACING() ? coil__clock_ns() : 0)
#define COIL__TRACE_IO_END(loop, t0, task, op, fd, res)                       \
	do {                                                                  \
		if (__builtin_expect((t0) != 0, 0))                           \
			coil__trace_io(loop, t0, task, op, fd, res);          \
	} while (0)
#else
#define COIL__METRICS_ENTER(loop) ((void)(loop))
#define COIL__METRICS_LEAVE(loop) ((void)(loop))
#define COIL__METRICS_WAIT_BEGIN(loop) ((void)(loop))
#define COIL__METRICS_WAIT_END(loop) ((void)(loop))
#define COIL__METRICS_WAKE_SENT() ((void)0)
#define COIL__METRICS_RING_SUBMITTED(r, n) ((void)0)
#define COIL__METRICS_RING_REAPED(r, n) ((void)0)
#define COIL__TRACE_STEAL(loop, victim, tasks) ((void)(loop), (void)(victim), (void)(tasks))
#define COIL__TRACE_LOOP_FREE(loop) ((void)(loop))
#define COIL__TRACE_IO_BEGIN() ((int64_t)0)
#define COIL__TRACE_IO_END(loop, t0, task, op, fd, res)                       \
	((void)(loop), (void)(t0), (void)(task), (void)(op), (void)(fd), (void)(res))
#endif

/* --- shared between metrics.c and trace.c -------------------------------- */

#if COIL_METRICS
/* Trace event kinds. */
enum {
	COIL__TEV_TASK = 1,  /* a task step: X, name/id */
	COIL__TEV_CALLBACK,  /* a handle's callback: X, fn */
	COIL__TEV_DONECB,    /* a done-callback: X, fn */
	COIL__TEV_PARK,      /* a park: X */
	COIL__TEV_STEAL,     /* a steal: instant, victim, tasks */
	COIL__TEV_IO         /* an I/O wait: async span, task id, fn = the
			      * operation's name, n = fd << 32 | result */
};

/* Records a span [t0, t1) or (kind STEAL) an instant at t0 on the loop's
 * track: id is a task's id or a steal's victim, n the tasks stolen, fn a
 * callback's function, name a task's name ("" or NULL: Task-<id>; a
 * buffer of sizeof(obs.name) bytes, the loop's obs.name). From
 * the loop's thread; a no-op when no trace is being recorded. */
void coil__trace_event(struct coil_loop *loop, int kind, int64_t t0, int64_t t1,
		       uint64_t id, uint64_t n, const void *fn, const char *name);
#endif

#endif
