/*
 * coil/process.h: subprocesses (asyncio.create_subprocess_exec and
 * asyncio.subprocess.Process).
 *
 * coil_process_spawn starts a program with its arguments, environment and
 * working directory; each of its standard streams is inherited, /dev/null,
 * a descriptor of the caller's, or a pipe that the program sees as a
 * coil_stream_t (coil/stream.h): write to the child's stdin, read its
 * stdout and stderr, with every stream call's timeouts, backpressure and
 * cancellation. coil_process_wait waits for the exit, coil_process_
 * communicate feeds the input and collects the output and the exit status
 * together, and terminate, kill and send_signal signal the child.
 *
 * Starting. posix_spawn (glibc's runs the child on a CLONE_VM|CLONE_VFORK
 * clone, safe in a threaded process and cheap however large the parent
 * is). Every descriptor coil opens is close-on-exec, and the child gets
 * only its standard streams: descriptors 3 and up are closed in it unless
 * `inherit_fds` is set (asyncio's close_fds). The child starts with no
 * signal blocked (coil's worker threads block them all) and with SIGPIPE
 * and SIGXFSZ at their default action, as Python's subprocess does.
 *
 * Failures are errors of the spawn, never a child exiting with status
 * 127: the program is looked up first, as execvp does (a name without a
 * '/' in each directory of PATH, the child's PATH when env is given,
 * else the caller's, as in Python's subprocess; a relative path from the
 * child's working directory), so that a missing program is -ENOENT and
 * one that may not be executed -EACCES, and a working directory that
 * cannot be entered is -ENOENT, -ENOTDIR or -EACCES. What can only fail
 * at the exec itself (a file that vanished meanwhile, a binary for
 * another machine: -ENOEXEC) glibc's posix_spawn reports as well, except
 * where its clone cannot share memory with the parent (under Valgrind),
 * where such a child exits with status 127.
 *
 * Waiting. Through a pidfd (pidfd_open): coil_poll waits in the ring until
 * the child has exited, then waitid(P_PIDFD) reaps it. Where pidfd_open is
 * missing (kernels before 5.3), or fails, the wait polls waitid(WNOHANG)
 * with sleeps growing from 1 ms to 20 ms instead. Either way no SIGCHLD
 * handler is involved. coil reaps only its own children, by their id; a
 * program that reaps every child (waitpid(-1), SIGCHLD set to SIG_IGN)
 * takes their exit status away, and the waits then return -ECHILD.
 *
 * No zombie: a process freed before its child was reaped hands the child
 * to a reaper thread, which reaps it whenever it exits (the child is not
 * killed: kill it first if it should not outlive the object). The reaper
 * thread blocks every signal, waits in poll() on the pidfds, and exits as
 * soon as it has no child left to wait for.
 *
 * Exit status (asyncio's returncode): the exit status (0..255), or -N for
 * a child ended by signal N. It comes back through an int pointer, since a
 * negative return value is an error code.
 *
 * SIGPIPE: a write to a pipe whose reader is gone raises SIGPIPE in the
 * writing thread, whose default action ends the program. Writing to a
 * child that exited without reading its input is ordinary, so the first
 * spawn with a stdin pipe sets SIGPIPE to be ignored when its action is
 * still the default (as Python, Rust and Node.js do when they start): such
 * a write then returns -EPIPE. A program that installed its own SIGPIPE
 * action keeps it. Children get the default action back.
 *
 * Threads: spawn, the signals, returncode and free from any thread; wait
 * and communicate from a task (any worker). A process object may be used
 * by several tasks at once as long as each stream has one reader and one
 * writer at a time (coil/stream.h); several tasks may wait at once.
 *
 * This header compiles as C11 and as C++.
 */
#ifndef COIL_PROCESS_H
#define COIL_PROCESS_H

#include <sys/types.h>

#include "common.h"
#include "stream.h"
#include "process_pool.h" /* coil_bytes_t */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coil_process coil_process_t;

/*
 * What a standard stream of the child is. A descriptor (>= 0) of the
 * caller's is duplicated onto it (the caller keeps its own); the named
 * modes are negative, with asyncio's numbers where asyncio has the mode.
 */
#define COIL_PROCESS_PIPE    (-1) /* a pipe, a coil_stream_t on this side */
#define COIL_PROCESS_STDOUT  (-2) /* stderr only: where stdout goes */
#define COIL_PROCESS_DEVNULL (-3) /* /dev/null */
#define COIL_PROCESS_INHERIT (-4) /* the caller's own (asyncio's None) */

/*
 * Options of a spawn. Initialise with coil_process_opts_init(), then set
 * what you need: fields are only ever appended, and `size` tells the
 * library which ones the caller knows.
 */
typedef struct coil_process_opts {
	uint32_t size;             /* set by coil_process_opts_init */
	const char *const *env;    /* "NAME=value" strings, NULL-terminated;
				    * NULL: the caller's environment */
	const char *cwd;           /* the child's working directory; NULL:
				    * the caller's */
	int stdin_fd;              /* a COIL_PROCESS_* mode or a descriptor;
				    * default COIL_PROCESS_INHERIT */
	int stdout_fd;             /* likewise */
	int stderr_fd;             /* likewise, or COIL_PROCESS_STDOUT */
	bool new_session;          /* setsid() in the child (asyncio's
				    * start_new_session) */
	bool inherit_fds;          /* keep the descriptors >= 3 that are not
				    * close-on-exec (asyncio's close_fds=False) */
	const coil_stream_opts_t *stream; /* options of the pipes' streams
				    * (copied); NULL: defaults */
} coil_process_opts_t;

/* Fills *opts with the defaults (every stream inherited). Any thread. */
COIL_API void coil_process_opts_init(coil_process_opts_t *opts);

/*
 * asyncio.create_subprocess_exec: starts argv[0] with the arguments
 * argv[0], argv[1], ... (NULL-terminated). A program name without a '/'
 * is looked up in PATH (see above). opts may be NULL
 * (every stream inherited). On 0, *out gets the process, which the caller
 * owns and ends with coil_process_free. Returns 0; -EINVAL (out or argv
 * NULL, argv[0] NULL or empty, a bad mode or a negative descriptor other
 * than the modes, COIL_PROCESS_STDOUT for stdin or stdout); the error of
 * the exec or of entering cwd (-ENOENT, -EACCES, -ENOEXEC, -ENOTDIR, ...);
 * -ENAMETOOLONG; -EBADF (a descriptor given is not open); -EMFILE,
 * -ENFILE (the pipes), -EAGAIN (no process could be made), or -ENOMEM.
 * Nothing is left behind on failure. Any thread; it does not
 * await (the clone and exec take a few hundred microseconds on this
 * thread).
 */
COIL_API int coil_process_spawn(coil_process_t **out, const char *const argv[],
				const coil_process_opts_t *opts);

/* The child's process id. Any thread. */
COIL_API pid_t coil_process_pid(const coil_process_t *p);

/*
 * The streams of the pipes (NULL for a stream that is not a pipe). They
 * belong to the process: use them (one reader and one writer at a time,
 * coil/stream.h), close them (coil_stream_write_eof ends the child's
 * input), but do not free them; coil_process_free does. Any thread.
 */
COIL_API coil_stream_t *coil_process_stdin(coil_process_t *p);
COIL_API coil_stream_t *coil_process_stdout(coil_process_t *p);
COIL_API coil_stream_t *coil_process_stderr(coil_process_t *p);

/*
 * The exit status without waiting (asyncio's returncode, Popen.poll):
 * reaps the child if it has exited. Returns 0 and writes the status to
 * *returncode (if not NULL) once the child has exited; -EAGAIN while it
 * runs; -ECHILD if its status was taken by someone else (see above);
 * -EINVAL for p NULL. Any thread.
 */
COIL_API int coil_process_returncode(coil_process_t *p, int *returncode);

/*
 * Waits until the child exits and writes its status to *returncode (if
 * not NULL). Does not touch the pipes: a child blocked writing to a full
 * stdout pipe nobody reads never exits (read it, or use communicate).
 * Returns 0; -ETIMEDOUT (the child runs on; wait again, or kill it);
 * -ECANCELED; -ECHILD; COIL_EINVALSTATE outside a task; COIL_ECLOSED while
 * the task's coroutine is being closed; -EINVAL for a bad timeout or p
 * NULL; -ENOMEM or another error of the wait's coil_poll or coil_sleep
 * (see coil/io.h). Any number of tasks may wait at once. Task only.
 */
COIL_API int coil_process_wait(coil_process_t *p, int *returncode,
			       int64_t timeout_ns);

/*
 * asyncio's Process.communicate: writes len bytes of input to the child's
 * stdin and closes it, reads its stdout and stderr to their end, all at
 * once (writing never waits for the reading, so no amount of data either
 * way can deadlock), then waits for the exit. On 0, *out and *err get the
 * bytes read (data from malloc(), NULL when empty; free with
 * coil_bytes_free), empty for a stream that is not a pipe, and
 * *returncode the exit status; each of the three may be NULL (what is
 * read is then dropped, still to the end). The child's stdin is closed
 * even without input (len 0). An -EPIPE or -ECONNRESET writing the input
 * (the child exited without reading it all) is not an error, as in
 * asyncio.
 *
 * The timeout bounds the whole call. On -ETIMEDOUT or -ECANCELED nothing
 * is lost: the input not yet written is kept (copied) and what was read
 * is kept in the process, and the next call (with input NULL and len 0)
 * goes on from there and returns all of it (Popen.communicate's retry
 * after TimeoutExpired). The child is not killed.
 *
 * Returns 0; -ETIMEDOUT; -ECANCELED; -EINVAL (input without a stdin pipe,
 * input NULL with len > 0, len above SSIZE_MAX, input again after a first
 * call); the error of reading the output (-EIO, ...), which keeps the
 * bytes read; -ECHILD; -ENOMEM; COIL_EINVALSTATE outside a task.
 * Another task must not use the pipes meanwhile (-EBUSY). Task only.
 */
COIL_API int coil_process_communicate(coil_process_t *p, const void *input,
				      size_t len, coil_bytes_t *out,
				      coil_bytes_t *err, int *returncode,
				      int64_t timeout_ns);

/*
 * Sends signal sig to the child (pidfd_send_signal, which cannot hit
 * another process that reused the id). Returns 0; -ESRCH once the child
 * has been reaped (its exit status is known: it is gone); -EINVAL for a
 * bad signal or p NULL; or the errno of the kernel's refusal (-EPERM).
 * Any thread.
 */
COIL_API int coil_process_send_signal(coil_process_t *p, int sig);

/* coil_process_send_signal(p, SIGTERM) and (p, SIGKILL). Any thread. */
COIL_API int coil_process_terminate(coil_process_t *p);
COIL_API int coil_process_kill(coil_process_t *p);

/*
 * Frees the process: closes and frees its streams (the child then reads
 * the end of its input and gets EPIPE writing), frees what communicate
 * kept, and, if the child has not been reaped, hands it to the reaper
 * thread (it is not killed). No task may be using the process or its
 * streams. NULL is allowed. Any thread.
 */
COIL_API void coil_process_free(coil_process_t *p);

#ifdef __cplusplus
}
#endif
#endif /* COIL_PROCESS_H */
