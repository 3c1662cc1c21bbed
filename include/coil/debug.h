/*
 * coil/debug.h: seeing inside a running program: task stacks and listings,
 * and debug mode.
 *
 * Stacks. A suspended task's stack is read from the context it saved when
 * it switched out: the frame pointer chain (every build of coil keeps frame
 * pointers) is walked from there, through the nested coroutines the task
 * was running (an async generator awaiting inside it, say), up to the
 * task's entry. Every address read is checked against the stack it belongs
 * to, so a corrupt chain ends the walk early, never in a fault. Frames of
 * code built without frame pointers (libc, mostly) may be skipped. The
 * running task's own stack is walked from the caller's frame. Frames come
 * innermost first, as backtrace(3) gives them; print functions symbolize
 * them (exported symbols, else the ELF symbol table of the module on disk,
 * else module+offset for addr2line).
 *
 * Listings. coil_dump_tasks() writes one line per live task of the calling
 * thread's loop, or of every worker of its runtime: id, name, state, the
 * worker it last ran on, what it waits for ("sleep", "task", "queue get",
 * "lock", an I/O operation such as "recv" or "accept", ...), its age and
 * how much of its stack it has touched.
 *
 * Threads and consistency. These calls read other workers' tasks while
 * those workers run: each task is examined under its own cancellation lock
 * and held (a task that ends meanwhile waits until the look is done before
 * its state is freed; holding costs a system call, membarrier), and a
 * suspended task's stack is read only while it is known to be switched
 * out; whatever may change under the reader (a task's state, its worker)
 * is read as it is at that moment. A listing is therefore a snapshot whose lines may be a few
 * microseconds apart, not one frozen instant. A task that is running on
 * another worker (or, with several workers, runnable there and about to
 * run) cannot have its stack read: those calls say so (-EBUSY) rather
 * than read a stack in motion. The debugger script tools/gdb/coil.py lists
 * the tasks of a stopped process or a core file without any of these
 * limits.
 *
 * Debug mode (asyncio's debug mode) is off by default and costs nothing
 * then. It is on for a loop or runtime made with opts->debug set, or
 * coil_loop_set_debug(), and for every loop when the environment variable
 * COIL_DEBUG is set (to anything but "", "0", "no", "false" or "off"). It
 * reports, through the loop's exception handler (coil/loop.h) and naming
 * the task or coroutine:
 *  - a task cancelled before it ever ran while nobody held a reference to
 *    it or watched it with a done-callback: work that silently never
 *    happened, typically a detached task spawned just before its loop
 *    closed (asyncio's "coroutine ... was never awaited");
 *  - a coroutine (coil/coro.h) destroyed without ever having been resumed
 *    or closed (again "was never awaited"), or destroyed while suspended
 *    without having been closed;
 *  - an async generator (coil/gen.h) destroyed while suspended at a yield
 *    without having been closed, or still open when its loop closes (it is
 *    then closed by the loop, as asyncio's shutdown_asyncgens() does);
 *  - a callback or task step that held its loop longer than the loop's
 *    slow-callback duration (0.1 s unless set with
 *    coil_loop_set_slow_callback_duration; asyncio's
 *    slow_callback_duration): "Executing task 'name' (id 7) took 0.152
 *    seconds", a callback named by its function's symbol ("Executing
 *    callback on_tick took ..."). The context carries the message alone:
 *    the step may have ended the task and freed its handle;
 *  - a descriptor coil handed to the program (a socket from coil_accept,
 *    a file from coil_open or coil_openat, a stream's socket or pipe, a
 *    server's listening socket) still open when its loop closes, or for a
 *    runtime's workers when the runtime shuts down: "unclosed fd 7 (a
 *    stream's socket) when its loop closed: close it before the loop
 *    closes" (asyncio's ResourceWarning for an unclosed transport). Only
 *    descriptors made while debug mode is on are watched; one the program
 *    closed itself with close(2) is recognised as closed (its number is
 *    free, or names another file), except when the same file was opened
 *    again under the same number with plain open(2).
 * Debug mode also reads the clock before and after each step and callback
 * (for the warning above), and runs a standalone loop's steps one by one
 * through the loop instead of switching from task to task directly, and
 * watches descriptors (an fstat(2) and a lock for each one handed out,
 * a lock for each one coil closes). It
 * also records each task's spawn time, which listings show as
 * its age (without it the age is unknown: the clock read would cost every
 * spawn). Errors nobody retrieved ("Task exception was never retrieved",
 * "Future exception was never retrieved") are reported whether or not
 * debug mode is on (coil/future.h).
 */
#ifndef COIL_DEBUG_H
#define COIL_DEBUG_H

#include <stdio.h>

#include "common.h"
#include "task.h"
#include "loop.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Writes up to `max` return addresses of t's stack to frames[], innermost
 * first, and returns how many it wrote: 0 for a task that has not started
 * or is done. Returns -EINVAL if t is NULL (or frames is NULL with max >
 * 0), -EBUSY if t is running on another thread (or, on a runtime of
 * several workers, is runnable and may start on another worker at any
 * moment: try again). Called by the running task on itself, it walks from
 * its caller's frame. From the thread running t's loop, or any worker of
 * its runtime.
 */
COIL_API int coil_task_get_stack(coil_task_t *t, void **frames, size_t max);

/*
 * Prints t's stack to f (NULL: stderr), symbolized, one frame a line under
 * a line naming the task and its state (asyncio's Task.print_stack).
 * Returns the number of frames printed, or a negative code as
 * coil_task_get_stack (the reason is printed too). Same threads as
 * coil_task_get_stack.
 */
COIL_API int coil_task_print_stack(coil_task_t *t, FILE *f);

/* A task's state in listings. */
typedef enum coil_task_state {
	COIL_TASK_CREATED = 0, /* spawned; its body has not run yet */
	COIL_TASK_READY = 1,   /* runnable: in a run queue, or woken */
	COIL_TASK_RUNNING = 2, /* a worker runs it now */
	COIL_TASK_WAITING = 3, /* suspended in an await */
	COIL_TASK_DONE = 4     /* finished: result, error or cancelled */
} coil_task_state_t;

/* Returns a static name for a state: "created", "ready", ... Any thread. */
COIL_API const char *coil_task_state_name(coil_task_state_t s);

/* What coil_task_get_info reports about one task. */
typedef struct coil_task_info {
	uint64_t id;             /* coil_task_id */
	char name[64];           /* its name, truncated to fit */
	coil_task_state_t state;
	int worker;              /* runtime worker it last ran on (or runs
				  * on), -1 on a standalone loop or before
				  * its first step */
	/* What it waits for while WAITING (or woken, not yet run): a static
	 * string ("sleep", "future", "task", "queue get", "queue put", "lock",
	 * "event", ...), NULL when it is not suspended in a wait. */
	const char *awaits;
	uint64_t awaits_task;    /* the awaited task's id when awaits is
				  * "task", else 0 */
	int64_t timeout_ns;      /* time left before the wait's deadline
				  * (a sleep, a timed wait), -1 if none */
	int64_t age_ns;          /* since it was spawned; -1 when unknown
				  * (spawned outside debug mode) */
	size_t stack_size;       /* its stack, 0 before the first step */
	/* The stack's high-water mark: bytes from the top of its stack down
	 * to the deepest page in memory (mincore). Stacks are reused, and
	 * pooled ones are given back to the kernel only when idle memory
	 * piles up, so this is the deepest any user of this stack reached
	 * since its pages were last given back: an upper bound of this
	 * task's own use, page-grained, and the right number to size stacks
	 * by. 0 before the first step. */
	size_t stack_touched;
} coil_task_info_t;

/*
 * Fills *info (of `size` bytes: pass sizeof(coil_task_info_t); a caller
 * built against an older, shorter struct gets only the fields it knows).
 * Returns 0, or -EINVAL (NULL argument, size too small for the id and
 * name). Same threads as coil_task_get_stack; a task running elsewhere is
 * described all the same (only its stack cannot be read).
 */
COIL_API int coil_task_get_info(coil_task_t *t, coil_task_info_t *info,
				size_t size);

/* Flags of coil_loop_dump_tasks. */
#define COIL_DUMP_STACKS 1u      /* each task's stack below its line */

/*
 * Writes a listing of the live tasks of `loop` to f (NULL: stderr): of all
 * the workers of its runtime if it is a runtime's worker, else of that
 * loop. loop NULL: the calling thread's running loop, else its current one
 * (coil_get_event_loop). One line per task (id, name, state, worker, what
 * it waits for, age, stack high-water mark), with its stack below it if
 * flags has COIL_DUMP_STACKS. Returns the number of tasks listed, or
 * -EINVAL when there is no loop (or flags has unknown bits), -ENOMEM.
 * From the loop's thread or, for a runtime, from any of its workers (a
 * runtime of one worker: that worker's thread only); see the top of this
 * file for what a snapshot means.
 */
COIL_API int coil_loop_dump_tasks(coil_loop_t *loop, FILE *f, unsigned flags);

/* coil_loop_dump_tasks(NULL, f, 0). */
COIL_API int coil_dump_tasks(FILE *f);

/*
 * Turns debug mode on or off for the loop (asyncio's loop.set_debug): the
 * checks listed at the top of this file that concern its tasks, and the
 * coroutines and generators destroyed on its thread. For a runtime, set
 * opts->debug when making it (or call this on each worker's loop). NULL and
 * a runtime's COIL_ANY_WORKER stand-in are ignored. From the loop's thread.
 */
COIL_API void coil_loop_set_debug(coil_loop_t *loop, bool enabled);

/* Returns whether debug mode is on for the loop (asyncio's get_debug);
 * false for NULL and the COIL_ANY_WORKER stand-in. Any thread. */
COIL_API bool coil_loop_get_debug(const coil_loop_t *loop);

/*
 * Sets how long a callback or task step may hold the loop, in debug mode,
 * before it is reported (asyncio's loop.slow_callback_duration): ns > 0,
 * or 0 for the default, 100 ms. Returns 0, or -EINVAL (loop NULL or the
 * runtime's COIL_ANY_WORKER stand-in, ns < 0). For a runtime, set it on
 * each worker's loop (coil_runtime_loop). Any thread: it applies from the
 * next step on.
 */
COIL_API int coil_loop_set_slow_callback_duration(coil_loop_t *loop, int64_t ns);

/* Returns the loop's slow-callback duration in ns (the default, 100 ms,
 * unless set), or -EINVAL for a NULL loop. Any thread. */
COIL_API int64_t coil_loop_get_slow_callback_duration(const coil_loop_t *loop);

/*
 * Counters. Every loop (each worker of a runtime, and a standalone loop)
 * counts what it does. Each counter is written by the thread running that
 * loop alone, with plain loads and stores (a few instructions, no locked
 * instruction), and can be read from any thread at any time without
 * stopping anything: a snapshot gives each counter as it was a moment ago,
 * the counters of one snapshot being read microseconds apart, not at one
 * frozen instant. Counters only grow (deque_depth and the times aside);
 * subtract two snapshots to get rates. A build made with COIL_METRICS=OFF
 * (CMake) has no counters: these calls return -ENOTSUP there.
 */
typedef struct coil_worker_metrics {
	/* Set by the caller to sizeof(coil_worker_metrics_t) as it knows it:
	 * the library fills only the fields that fit (a caller built against
	 * an older, shorter struct gets the fields it knows). */
	size_t size;
	int worker;               /* worker index, -1 for a standalone loop */
	bool running;             /* its loop is being run at the snapshot */
	uint64_t steps;           /* task steps run: from a task's (re)start
				   * to its next suspension or its end */
	uint64_t callbacks;       /* callbacks run: call_soon/call_later
				   * handles and done-callbacks */
	uint64_t steal_attempts;  /* searches of other workers' deques */
	uint64_t steals;          /* searches that took tasks */
	uint64_t stolen;          /* tasks taken by those searches */
	uint64_t parks;           /* waits in the ring that could block:
				   * nothing was left to do */
	uint64_t wakeups_sent;    /* wake-ups of parked loops sent by this
				   * loop's thread (those sent by threads
				   * outside the runtime count nowhere) */
	uint64_t wakeups_received;/* wake-ups addressed to this loop while it
				   * was parked or about to park */
	uint64_t inject_pops;     /* runnables taken from the runtime's
				   * injection queue (spawns from outside,
				   * yields, overflow) */
	uint64_t lifo_hits;       /* steps taken from the LIFO slot (a task
				   * woken by the task before it) */
	uint64_t deque_depth;     /* tasks in its deque at the snapshot */
	uint64_t io_submitted;    /* io_uring SQEs submitted to the kernel */
	uint64_t io_completed;    /* io_uring CQEs reaped (both include the
				   * loop's own wake-up read, one per wait
				   * that could block) */
	uint64_t timers_fired;    /* timers expired: call_later/call_at,
				   * sleeps, timeouts */
	int64_t busy_ns;          /* time the loop ran, parks excluded */
	int64_t idle_ns;          /* time parked (in the ring's wait) */
	bool parked;              /* parked at the snapshot: in a wait that
				   * could block, with nothing to do */
} coil_worker_metrics_t;

/*
 * Fills *out (out->size set by the caller, see above) with the counters of
 * `loop`: a runtime's worker or a standalone loop. Returns 0, or -EINVAL
 * (NULL, COIL_ANY_WORKER's stand-in, out->size too small for `worker`),
 * -ENOTSUP (built without counters). Any thread, while the loop exists.
 */
COIL_API int coil_loop_metrics(const coil_loop_t *loop, coil_worker_metrics_t *out);

/*
 * Fills out[0..n-1] with the counters of rt's workers 0..n-1 (fewer if rt
 * has fewer). out[0].size, set by the caller, is the size of every element
 * (and the stride of the array). Returns the number of workers of rt (so
 * n = 0, out NULL asks how many there are), or -EINVAL, -ENOTSUP. Any
 * thread, from coil_runtime_new until coil_runtime_shutdown.
 */
COIL_API int coil_runtime_metrics(coil_runtime_t *rt, coil_worker_metrics_t *out,
				  size_t n);

/*
 * Writes one line per worker of rt to f (NULL: stderr):
 *
 *   worker 0: steps=1204 callbacks=3 steals=2/57 stolen=9 parks=4
 *     wakeups=3/2 inject=1 lifo=300 deque=0 io=12/12 timers=1
 *     busy=0.104s idle=0.981s
 *
 * (one line; steals=successes/attempts, wakeups=sent/received,
 * io=submitted/completed). Returns the number of lines, or -EINVAL,
 * -ENOTSUP. Any thread, as coil_runtime_metrics.
 */
COIL_API int coil_runtime_dump_metrics(coil_runtime_t *rt, FILE *f);

/* The same line for one loop ("loop:" for a standalone loop). Returns 1,
 * or -EINVAL, -ENOTSUP. Any thread, while the loop exists. */
COIL_API int coil_loop_dump_metrics(const coil_loop_t *loop, FILE *f);

/*
 * The trace recorder. While a trace is recorded, every loop of the
 * process writes what it does into a buffer of its own (no lock: chunks
 * of events, added as needed): each task step (a span named after the
 * task, its id in args.task), each callback (a span named after its
 * function), each park (a span named "park") and each steal (an instant
 * event on the thief's track, args.victim naming the worker robbed and
 * args.tasks how many tasks it took), and each wait of a task for an I/O
 * operation (coil/io.h, and the streams, servers and subprocesses built on
 * it): from the submission to the completion, named after the operation
 * ("recv", "accept", "read", ...), with args.worker (the track of the
 * worker that waited), args.task, args.fd and args.result. I/O waits
 * overlap each other and the steps run meanwhile, and the spans of one
 * track must nest, so each is a pair of async events ("b" and "e", one
 * id), which Perfetto draws on tracks of their own under the process, one
 * per operation name. The file is Chrome's Trace Event
 * Format (JSON), which https://ui.perfetto.dev and chrome://tracing open:
 * one track per worker, tid = worker index, named "worker N" (the
 * workers of a second runtime get tids 10000, 10001, ... and names
 * "runtime 2 worker N", a third's 20000, ...; standalone loops get tids
 * from 1000000 and names "loop N"); times in microseconds from the start
 * of the trace.
 *
 * When no trace is recorded each place that could record costs one
 * predictable branch on a global flag. While one is, steps and callbacks
 * are timed (two clock reads each) and a standalone loop runs its steps
 * one by one through the loop (so that each is seen). Events go to the
 * file when coil_trace_flush or coil_trace_stop is called; until then
 * they stay in memory (opts->max_events bounds it).
 *
 * One trace at a time per process. Built with COIL_METRICS=OFF there is
 * no recorder: these calls return -ENOTSUP.
 */
typedef struct coil_trace_opts {
	size_t size;              /* sizeof(coil_trace_opts_t) */
	/* The most events kept per loop between two flushes; later ones
	 * are dropped (and counted in the trace's otherData.dropped).
	 * 0: no limit but memory. */
	size_t max_events;
} coil_trace_opts_t;

/*
 * Starts recording a trace that will be written to the file at `path`
 * (created or truncated now). opts may be NULL (defaults). Returns 0, or
 * -EINVAL (path NULL or empty), -EBUSY (a trace is being recorded), a
 * negative errno from opening the file, -ENOTSUP. Any thread.
 */
COIL_API int coil_trace_start(const char *path, const coil_trace_opts_t *opts);

/* As coil_trace_start, writing to f, which stays the caller's: it is
 * flushed, not closed, by coil_trace_stop, and must stay open until then.
 * Returns 0, -EINVAL (f NULL), -EBUSY or -ENOTSUP. Any thread. */
COIL_API int coil_trace_start_file(FILE *f, const coil_trace_opts_t *opts);

/*
 * Writes the events recorded since the last flush to the trace's file and
 * frees the memory they took; the trace goes on. Returns the number of
 * events written (at most INT_MAX), or -EINVAL (no trace is being
 * recorded), -EIO (a write failed). Any thread; it does not stop the loops, which go on recording
 * meanwhile.
 */
COIL_API int coil_trace_flush(void);

/*
 * Stops recording, writes what is left and ends the JSON document, and
 * closes the file coil_trace_start opened. A step or callback still
 * running is not recorded. Returns the number of events written over the
 * whole trace (at most INT_MAX), or -EINVAL (none is being recorded), -EIO (a write, or
 * closing the file, failed: the file is incomplete). Any thread, a task
 * included.
 */
COIL_API int coil_trace_stop(void);

/* Returns whether a trace is being recorded. Any thread. */
COIL_API bool coil_trace_active(void);

#ifdef __cplusplus
}
#endif
#endif /* COIL_DEBUG_H */
