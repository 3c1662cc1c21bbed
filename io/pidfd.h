/*
 * io/pidfd.h: the pidfd system calls, for the subprocesses (io/process.c)
 * and the process pool's manager (runtime/executor/process_pool.c; the
 * executors are a layer above io/ and may use it).
 *
 * They are made through syscall(2), so that the build needs no C library
 * wrappers for them. Where the headers do not know a call, it fails with
 * ENOSYS, as on a kernel without it, and the callers take their paths
 * without a pidfd. Like the C library's calls, these return -1 and set
 * errno.
 */
#ifndef COIL_IO_PIDFD_H
#define COIL_IO_PIDFD_H

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* waitid's id type for a pidfd, for C libraries whose headers lack it.
 * <sys/wait.h> comes first: glibc declares P_PIDFD there as an enumerator,
 * which a macro of that name defined before it would break. */
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Returns a pidfd (close-on-exec) for child pid, or -1 with errno. */
static inline int coil__pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* Sends sig to the process of pidfd. Returns 0, or -1 with errno. */
static inline int coil__pidfd_send_signal(int pidfd, int sig)
{
#ifdef SYS_pidfd_send_signal
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
#else
	(void)pidfd;
	(void)sig;
	errno = ENOSYS;
	return -1;
#endif
}

#endif
