/*
 * coil/process_pool.h: process pools (concurrent.futures.ProcessPoolExecutor
 * behind run_in_executor), for work that needs other cores without sharing
 * an address space, or that may crash.
 *
 * Functions by name. A process job is a coil_process_fn registered under a
 * name with coil_process_register(); jobs are submitted by that name with
 * an input byte buffer, and their output comes back as bytes. Worker
 * processes run the program's own binary again: the program registers its
 * functions, then calls coil_process_pool_main(argc, argv) first thing in
 * main(). In the program that call returns 0 at once; in a worker process
 * it serves jobs until the pool lets it go, then exits, and never returns.
 * Registrations made before that call are therefore the same in the
 * workers; functions registered later are unknown there.
 *
 *     static int hash(const void *in, size_t len, coil_bytes_t *out) { ... }
 *
 *     int main(int argc, char **argv)
 *     {
 *             coil_process_register("hash", hash);
 *             coil_process_pool_main(argc, argv);
 *             ...
 *     }
 *
 * Starting workers. A worker is started with posix_spawn (a vfork-style
 * clone followed at once by exec: no plain fork of the threaded parent,
 * whose locks and threads a forked child would inherit half-way) of the
 * binary /proc/self/exe named when coil_process_pool_main ran, with the
 * same argv, standard input on /dev/null, standard output and error
 * shared with the program, every other descriptor closed but its two
 * pipes, all signals at their defaults and unblocked, and the environment
 * variable COIL_PROCESS_POOL_WORKER set (the worker removes it at once).
 * A worker also ends when the program dies (it then reads end-of-file).
 *
 * Framing. Each worker has a pipe for jobs and one for results; a job is a
 * header (magic, the name's length, the input's length), the name and the
 * input; a result is a header (magic, code, length) and the output bytes,
 * or the error message. Inputs and outputs may be of any size, 0 bytes
 * included.
 *
 * The manager thread. Each pool has one thread of its own that starts the
 * workers, writes jobs and reads results without blocking (poll() on the
 * pipes and on each worker's pidfd), reaps the workers and completes the
 * futures (handing them to their loops in batches). It belongs to no loop:
 * a pool works the same from any runtime or thread.
 *
 * Crashes. A worker that dies while it holds a job (a segfault, abort(),
 * _exit(), SIGKILL from outside) fails that job's future with COIL_EBROKEN
 * and a message saying how it died ("worker process 1234 was killed by
 * signal 9 (SIGKILL)", "... exited with status 3"); the pool reaps it,
 * starts a new worker in its place and goes on with the next jobs (Python's
 * pool breaks for good there). A worker that dies before it starts serving
 * never ran the job it was given, which goes to the next worker; workers
 * that keep dying so (5 in a row: a binary that does not reach
 * coil_process_pool_main, say) break the pool: pending and later jobs then
 * fail with COIL_EBROKEN, saying how the last one died. No worker is ever left a zombie: each is reaped through
 * its pidfd (pidfd_open, waitid(P_PIDFD)). A program that reaps children
 * it did not start (waitpid(-1, ...), SIGCHLD ignored) steals the pool's
 * exit statuses: it must not.
 *
 * Cancellation. A job still queued can be cancelled by cancelling its
 * future: it never reaches a worker. A job being sent or run is not
 * interrupted; cancelling its future (or the awaiting task) makes the await
 * return -ECANCELED and its output is thrown away when it comes.
 *
 * Threads: every function here may be called from any thread unless it
 * says otherwise.
 */
#ifndef COIL_PROCESS_POOL_H
#define COIL_PROCESS_POOL_H

#include "common.h"
#include "threadsafe.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Bytes with their length. A process job's output: the job sets `data` to
 * memory from malloc() (or NULL when len is 0) and `len`, and the worker
 * frees it with free() once sent. A job's result in the program (the result
 * of its future): a coil_bytes_t owned by the future, data and struct freed
 * together when the future's last reference goes; coil_process_pool_run
 * instead hands the bytes to the caller, who frees `data` with free().
 */
typedef struct coil_bytes {
	void *data;
	size_t len;
} coil_bytes_t;

/*
 * A process job: reads in[0 .. in_len) (in is NULL when in_len is 0; the
 * input is read-only) and returns 0 after filling *out (which starts out
 * empty: {NULL, 0}), or a negative error code; coil_errorf() before
 * returning attaches a message to the error, which the job's future
 * carries. Runs in a worker process, on its main thread.
 */
typedef int (*coil_process_fn)(const void *in, size_t in_len,
			       coil_bytes_t *out);

/* Frees b->data with free() and empties *b. NULL is allowed. */
COIL_API void coil_bytes_free(coil_bytes_t *b);

/*
 * Registers fn under `name` (1 to 255 bytes, copied) for this process.
 * Call it before coil_process_pool_main, so that the workers (which run
 * main again up to that call) have it too. Returns 0, -EINVAL (bad name,
 * fn NULL), -EEXIST (the name is taken by another function) or -ENOMEM.
 */
COIL_API int coil_process_register(const char *name, coil_process_fn fn);

/*
 * The opt-in: call it first thing in main(), after the registrations, with
 * main's own argc and argv. In the program it remembers the binary and
 * argv for the workers it may start later and returns 0 (or -EINVAL for a
 * bad argv, -ENOMEM). In a worker process (started by a pool) it serves
 * jobs until the pool closes the worker's pipe, then exits the process
 * with status 0 (after fflush(NULL), without running atexit handlers): it
 * does not return. Main thread, before any other thread exists.
 */
COIL_API int coil_process_pool_main(int argc, char **argv);

typedef struct coil_process_pool coil_process_pool_t;

/*
 * Options of a process pool. Initialise with coil_process_pool_opts_init();
 * new fields are only appended and `size` says which ones the caller knows.
 */
typedef struct coil_process_pool_opts {
	uint32_t size;            /* set by coil_process_pool_opts_init */
	unsigned workers;         /* 0: the CPUs of the affinity mask;
				   * at most 1024 (-EINVAL beyond) */
} coil_process_pool_opts_t;

/* Fills *opts with the defaults. */
COIL_API void coil_process_pool_opts_init(coil_process_pool_opts_t *opts);

/*
 * Creates a process pool and starts its manager thread and its workers
 * (all of them, now). opts may be NULL. *out gets the pool, which the
 * caller ends with coil_process_pool_shutdown. Returns 0; COIL_EINVALSTATE
 * if coil_process_pool_main was not called in this process (without it a
 * worker would run the whole program again); -EINVAL; -ENOMEM; or the
 * error of starting the thread or the first worker.
 */
COIL_API int coil_process_pool_create(coil_process_pool_t **out,
				      const coil_process_pool_opts_t *opts);

/*
 * Submits the job registered as `name` with a copy of in[0 .. in_len)
 * without waiting, and gives a new future of its outcome through *out. On
 * success the future's result is a coil_bytes_t * (the job's output,
 * owned by the future: borrow it, or copy it out); on failure its code is
 * the job's error (with its message), COIL_EBROKEN if the worker died
 * running it, or COIL_ECLOSED if the pool was shut down before it ran. The
 * future belongs to the running loop. Jobs are sent to workers in
 * submission order.
 *
 * Returns 0; -EINVAL (out or name NULL, in NULL with in_len > 0, no running
 * loop); -ENOENT (no function of that name is registered in this
 * process); -ENOMEM; COIL_ECLOSED (the pool is shut down); COIL_EBROKEN
 * (the pool is broken). From a task or a loop callback.
 */
COIL_API int coil_process_pool_submit(coil_future_t **out,
				      coil_process_pool_t *pool,
				      const char *name, const void *in,
				      size_t in_len);

/*
 * As coil_process_pool_submit, taking the input over instead of copying
 * it: in->data must come from malloc() (or be NULL when in->len is 0); the
 * pool frees it with free() once it was sent (or dropped), and *in is
 * emptied. On failure *in is left to the caller. For large inputs.
 */
COIL_API int coil_process_pool_submit_owned(coil_future_t **out,
					    coil_process_pool_t *pool,
					    const char *name,
					    coil_bytes_t *in);

/*
 * As coil_process_pool_submit from any thread, with a concurrent future
 * (out NULL: nobody looks at the outcome). The result is a coil_bytes_t *
 * owned by the concurrent future. Any thread.
 */
COIL_API int coil_process_pool_submit_threadsafe(coil_cfuture_t **out,
						 coil_process_pool_t *pool,
						 const char *name,
						 const void *in,
						 size_t in_len);

/*
 * From inside a task: runs the job `name` on a copy of in[0 .. in_len) and
 * suspends the calling task until it is done. On 0, *out gets the output,
 * which the caller then owns (free out->data with free(), or
 * coil_bytes_free). Returns the job's code, or the errors of
 * coil_process_pool_submit, -ECANCELED when the task is cancelled
 * meanwhile (the output is then thrown away when it comes), or
 * COIL_EINVALSTATE outside a task. Task thread.
 */
COIL_API int coil_process_pool_run(coil_process_pool_t *pool,
				   const char *name, const void *in,
				   size_t in_len, coil_bytes_t *out);

/*
 * Ends the pool and frees it (the pointer is invalid afterwards). No other
 * call on the pool may be under way or still to come, from any thread:
 * every submit and coil_process_pool_pids must have returned before this
 * is called (join the threads, await the tasks that make them). A submit
 * still returning when its job has already run (the job's effects seen
 * from another thread) is still using the pool. With
 * cancel_futures, jobs not yet sent to a worker are cancelled; without it
 * they still run when `wait` is set, and fail with COIL_ECLOSED when it is
 * not. With `wait`, the jobs being run are waited for; without it the
 * workers are killed (SIGKILL) at once and their jobs fail with
 * COIL_ECLOSED. Either way, every worker has been reaped and the manager
 * thread joined when this returns. Returns 0, or -EINVAL for NULL.
 * Blocks the calling thread (from a task: its worker) until then; the
 * futures it completes are handed to their loops, which need not run
 * meanwhile.
 */
COIL_API int coil_process_pool_shutdown(coil_process_pool_t *pool, bool wait,
					bool cancel_futures);

/*
 * Writes the process ids of the pool's live workers to pids[0 .. cap) and
 * returns how many workers there are (which may exceed cap), for tests and
 * diagnostics. 0 for NULL. Any thread, also while the pool replaces dead
 * workers (every id given is a worker's, never 0).
 */
COIL_API size_t coil_process_pool_pids(coil_process_pool_t *pool, int *pids,
				       size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* COIL_PROCESS_POOL_H */
