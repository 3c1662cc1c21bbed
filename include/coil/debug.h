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
 * "lock", ...), its age and how much of its stack it has touched.
 *
 * Threads and consistency. These calls read other workers' tasks while
 * those workers run: each task is examined under its own cancellation lock,
 * which keeps it from ending meanwhile, and a suspended task's stack is
 * read only while it is known to be switched out; whatever may change
 * under the reader (a task's state, its worker) is read as it is at that
 * moment. A listing is therefore a snapshot whose lines may be a few
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
 *    then closed by the loop, as asyncio's shutdown_asyncgens() does).
 * Debug mode also records each task's spawn time, which listings show as
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

/* Returns a static name for a state: "created", "ready", ... */
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
 * opts->debug when making it (or call this on each worker's loop). From the
 * loop's thread.
 */
COIL_API void coil_loop_set_debug(coil_loop_t *loop, bool enabled);

/* Returns whether debug mode is on for the loop (asyncio's get_debug). */
COIL_API bool coil_loop_get_debug(const coil_loop_t *loop);

#ifdef __cplusplus
}
#endif
#endif /* COIL_DEBUG_H */
