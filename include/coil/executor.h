/*
 * coil/executor.h: run_in_executor and thread pools (asyncio's
 * loop.run_in_executor, concurrent.futures.ThreadPoolExecutor).
 *
 * A task that must call blocking code (a blocking system call, a library
 * without an asynchronous interface, a long computation) hands it to an
 * executor instead of blocking its worker: coil_run_in_executor() runs a
 * coil_fn on a pool thread and suspends only the calling task until it is
 * done. coil_executor_submit() does the same without waiting and returns a
 * future; coil_executor_submit_threadsafe() is the form for plain threads
 * and returns a concurrent future (coil/threadsafe.h).
 *
 * Jobs. A job is a coil_fn (DESIGN.md section 6): fn(arg, &result) returns
 * 0 after writing its result, or a negative error code (coil_errorf() before
 * returning attaches a message, which the job's future then carries). A
 * positive return counts as 0. The job runs on a pool thread, not in a
 * task: it must not await. Its `arg` must stay valid until the job has
 * ended, which can be later than the moment a cancelled caller stops
 * waiting for it (see cancellation below): pass memory that outlives the
 * job, not the stack of a task that may be cancelled.
 *
 * Thread pools. A pool starts its threads on demand, up to a maximum: a job
 * submitted while no pool thread is free starts a new one (as Python's
 * ThreadPoolExecutor), so that jobs that block run side by side. Submitting
 * costs one compare-and-swap; a pool thread moves every job submitted so
 * far into the pool's queue at once and takes them one at a time (a job
 * that blocks never holds others in a private batch). A thread that runs
 * out of work looks for more for about 20 us, then sleeps; one idle longer
 * than the pool's idle timeout (10 s by default) exits. Pool threads block
 * every asynchronous signal, so that signals go to the program's threads.
 *
 * Waking. The pool measures its jobs. While they take long (over 50 us on
 * average: they block, or compute), a job submitted with no thread free
 * wakes or starts one at once. While they are short, the thread at work
 * takes the next ones itself and nobody is woken (a system call per job
 * would cost more than the job); one idle thread then watches the queue
 * every millisecond and joins in (and another takes over the watch) when
 * the job at its head has waited that long, so that a job that blocks
 * unexpectedly holds the others up for about a millisecond at most, and a
 * stream of short jobs gets more threads when one is not enough.
 *
 * Completions. A pool thread completes the futures of the jobs it ran in
 * batches: one cross-thread hand-over to a future's loop (as
 * coil_loop_call_soon_threadsafe does it, with at most one wake-up of the
 * loop) for up to 64 jobs or 20 us of them, whichever comes first. The
 * futures are completed on their loop's thread, where their done-callbacks
 * run and their waiting tasks resume. A job that ends after its future's
 * loop was closed has its result destroyed on the pool thread: close a
 * loop after the jobs submitted from it have ended (the default executor's
 * shutdown sees to that for its own jobs).
 *
 * Cancellation. A job still queued can be cancelled by cancelling its
 * future: the future ends cancelled and the job never runs. A running job
 * cannot be interrupted (nothing can stop a thread safely in the middle of
 * arbitrary code): cancelling its future, or the task awaiting it, makes
 * the await return -ECANCELED at once; the job runs to its end and its
 * result, when it comes, is destroyed with the destructor given at submit
 * (coil_run_in_executor_ex, coil_executor_submit).
 *
 * The default executor. coil_run_in_executor(NULL, ...) and
 * coil_executor_submit(..., NULL, ...) use the default executor of the
 * calling task's runtime (of its loop, for a loop made with
 * coil_new_event_loop or coil_run): a thread pool made on first use, of
 * min(32, CPUs + 4) threads at most (CPUs: those of the process's affinity
 * mask; Python's size) with a 10 s idle timeout, unless
 * coil_set_default_executor_opts() says otherwise. The runtime (or loop)
 * owns it and shuts it down when it closes (coil_runtime_shutdown,
 * coil_loop_close, the end of coil_run), after its tasks have ended and
 * before its loops are freed: the shutdown waits for the jobs still
 * running, so that no thread outlives the runtime. From then on (say, in
 * a done-callback of one of those jobs) using the default executor, or
 * setting one, returns COIL_ECLOSED rather than making one that would
 * outlive the runtime. coil_set_default_executor replaces it.
 *
 * Ownership. Executors are reference counted: coil_thread_pool_create
 * gives the caller one reference, coil_executor_ref adds one, and
 * coil_executor_shutdown or coil_executor_release drop one. The pool's
 * memory goes when the last reference is gone and its last thread has
 * exited.
 *
 * Threads: every function here may be called from any thread unless it
 * says otherwise.
 */
#ifndef COIL_EXECUTOR_H
#define COIL_EXECUTOR_H

#include "common.h"
#include "threadsafe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coil_executor coil_executor_t;

/*
 * Options of a thread pool. Initialise with coil_thread_pool_opts_init(),
 * then set what you need; new fields are only appended and `size` tells the
 * library which ones the caller knows.
 */
typedef struct coil_thread_pool_opts {
	uint32_t size;            /* set by coil_thread_pool_opts_init */
	unsigned max_threads;     /* 0: min(32, CPUs + 4) */
	int64_t idle_timeout_ns;  /* a thread idle this long exits;
				   * 0: 10 s; COIL_FOREVER: never */
	const char *thread_name;  /* threads are "<name>-<i>"; NULL:
				   * "coil-pool" (at most 10 characters used) */
} coil_thread_pool_opts_t;

/* Fills *opts with the defaults. */
COIL_API void coil_thread_pool_opts_init(coil_thread_pool_opts_t *opts);

/*
 * Creates a thread pool executor (no thread is started until the first
 * job). opts may be NULL; its thread name is copied. *out gets a
 * reference. Returns 0, -EINVAL (out NULL, a negative idle timeout other
 * than COIL_FOREVER), -ENOMEM, or the error of initialising the pool's
 * mutex or condition variable (-EAGAIN).
 *
 * A job is failed, not left waiting, when no pool thread runs and none can
 * be started: its future ends with the error of starting the thread
 * (pthread_create's, -EAGAIN typically, or -ENOMEM), and so do the jobs
 * queued with it.
 */
COIL_API int coil_thread_pool_create(coil_executor_t **out,
				     const coil_thread_pool_opts_t *opts);

/* Adds a reference. Returns ex (NULL for NULL). */
COIL_API coil_executor_t *coil_executor_ref(coil_executor_t *ex);

/*
 * Drops a reference. The last one shuts the pool down as
 * coil_executor_shutdown(ex, true, false) would (and blocks the same way).
 * NULL is allowed.
 */
COIL_API void coil_executor_release(coil_executor_t *ex);

/*
 * Shuts the executor down (Python's Executor.shutdown) and drops the
 * caller's reference. From then on every submit to it returns COIL_ECLOSED.
 * With cancel_futures, the jobs still queued are cancelled (their futures
 * end cancelled, the jobs never run); without it they still run. With
 * `wait`, returns once every job has ended and every pool thread has
 * exited (joined); without it returns at once, and the threads finish the
 * remaining jobs and exit by themselves. A second shutdown of an executor
 * someone else still holds only drops the reference.
 *
 * Returns 0; -EINVAL for NULL; -EDEADLK when called with `wait` from one
 * of the pool's own threads (the pool is shut down but not waited for).
 * Blocks the calling thread while it waits: from a task, it blocks that
 * task's worker (the jobs' completions do not need it).
 */
COIL_API int coil_executor_shutdown(coil_executor_t *ex, bool wait,
				    bool cancel_futures);

/*
 * Returns the number of the pool's threads alive now (started and not yet
 * exited), for tests and diagnostics. 0 for NULL.
 */
COIL_API unsigned coil_executor_threads(coil_executor_t *ex);

/*
 * From inside a task: runs fn(arg, &result) on `ex` (NULL: the default
 * executor, made on first use) and suspends the calling task, only it,
 * until the job is done. Returns the job's code; on 0 writes its result to
 * *result (if result is not NULL), which the caller then owns (if result
 * is NULL the result is dropped; nothing frees it: use the _ex form with a
 * destructor for results that own memory).
 *
 * Returns -ECANCELED when the task is cancelled while it waits: a job still
 * queued then never runs, a running one runs to its end (see the header's
 * comment). COIL_ECLOSED if the executor was shut down (or, for the
 * default, its runtime or loop is closing) or the task's coroutine is
 * being closed; -EINVAL (fn NULL); -ENOMEM; the error of starting a pool
 * thread when none can be (see coil_thread_pool_create); COIL_EINVALSTATE
 * outside a task. arg stays the caller's, borrowed by the job until it
 * ends. Task thread.
 */
COIL_API int coil_run_in_executor(coil_executor_t *ex, coil_fn fn, void *arg,
				  void **result);

/*
 * As coil_run_in_executor, with a destructor for the job's result: it runs
 * (on the thread of the loop the task was on when it submitted) on a result
 * that nobody takes: the result of a job whose caller was cancelled, or of a
 * call with result NULL. Task thread.
 */
COIL_API int coil_run_in_executor_ex(coil_executor_t *ex, coil_fn fn,
				     void *arg, coil_dtor result_dtor,
				     void **result);

/*
 * Submits fn(arg, &result) to `ex` (NULL: the default executor of the
 * running loop's runtime, made on first use) without waiting, and gives a
 * new future of the job's outcome through *out: its result (owned by the
 * future, destroyed with result_dtor, which may be NULL, when the last
 * reference goes), or the job's error code and message. The future belongs
 * to the running loop: await it from a task, or add done-callbacks (they
 * run on that loop). Cancelling the future cancels the job if it has not
 * started. Jobs start in submission order (FIFO), several at a time.
 *
 * Returns 0; -EINVAL (out or fn NULL, or no running loop on the calling
 * thread: use coil_executor_submit_threadsafe there); -ENOMEM;
 * COIL_ECLOSED if the executor was shut down or the loop is closed. From a
 * task or a loop callback.
 */
COIL_API int coil_executor_submit(coil_future_t **out, coil_executor_t *ex,
				  coil_fn fn, void *arg,
				  coil_dtor result_dtor);

/*
 * Submits fn(arg, &result) to `ex` from any thread (a plain thread, a task
 * or a callback) and gives a new concurrent future of its outcome through
 * *out (NULL: nobody looks at the outcome; the result is then destroyed
 * with result_dtor). The concurrent future owns the result and destroys it
 * with result_dtor, which must therefore be callable from any thread.
 * Cancelling the concurrent future (coil_cfuture_cancel) cancels the job if
 * it has not started. `ex` must not be NULL: a plain thread has no default
 * executor.
 *
 * Returns 0; -EINVAL (ex or fn NULL); -ENOMEM; COIL_ECLOSED if the
 * executor was shut down. Any thread.
 */
COIL_API int coil_executor_submit_threadsafe(coil_cfuture_t **out,
					     coil_executor_t *ex, coil_fn fn,
					     void *arg,
					     coil_dtor result_dtor);

/*
 * Sets the default executor of `loop`'s runtime (of the loop itself, for a
 * loop not part of a runtime; loop NULL: the running loop, else the
 * calling thread's current loop), asyncio's loop.set_default_executor. The
 * runtime takes a reference of its own and shuts the executor down when it
 * closes; the caller keeps its reference. ex NULL forgets the current
 * default, so that the next use makes a new one. A default that coil made
 * itself and that is replaced here is shut down without waiting; an
 * executor the program set stays as it is. A submission to the default
 * (ex NULL) that races the replacement on another worker goes to the old
 * default or the new one, and is not refused because the old one was shut
 * down. Returns 0, -EINVAL (no loop), COIL_ECLOSED (ex was shut down, or
 * the loop is closed) or -ENOMEM.
 */
COIL_API int coil_set_default_executor(coil_loop_t *loop, coil_executor_t *ex);

/*
 * Returns the default executor of `loop`'s runtime (loop NULL as above),
 * borrowed, or NULL when none was set or made yet. It stays valid while
 * the runtime (or loop) is open.
 */
COIL_API coil_executor_t *coil_get_default_executor(coil_loop_t *loop);

/*
 * Sets the options of the default executors that coil makes from now on
 * (opts NULL: back to the defaults above). Those already made keep theirs.
 * The thread name is copied. Returns 0, -EINVAL (a negative idle timeout
 * other than COIL_FOREVER) or -ENOMEM.
 */
COIL_API int coil_set_default_executor_opts(const coil_thread_pool_opts_t *opts);

#ifdef __cplusplus
}
#endif
#endif /* COIL_EXECUTOR_H */
