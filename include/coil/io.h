/*
 * coil/io.h: awaitable socket and file operations on the worker's io_uring.
 *
 * Every operation here is called from inside a task (any worker); it
 * queues one io_uring operation on the calling worker's ring and suspends
 * only the calling task until the operation's completion has been reaped.
 * Operations cost no allocation and no system call of their own: the loop
 * submits everything its tasks queued in one io_uring_enter per round. The
 * task stays on its worker while the operation is in flight and may migrate
 * afterwards.
 *
 * Results: a count or descriptor (>= 0), or a negative errno value, exactly
 * what the kernel returned for the operation (for instance -EBADF for a bad
 * or closed descriptor, -ECONNRESET or -EPIPE when the peer reset the
 * connection, -EMFILE from an accept when the process is out of
 * descriptors). Outside a task every call returns COIL_EINVALSTATE (except
 * coil_close, see there); in a coroutine being closed, COIL_ECLOSED; with a
 * cancellation pending, -ECANCELED before anything is submitted. Bad
 * arguments are refused with -EINVAL (-EBADF for a negative descriptor)
 * before the kernel is involved: a length above SSIZE_MAX, an iovec count
 * below 0 or above IOV_MAX, an offset below -1, a NULL message, path or
 * output struct. Lengths above Linux's MAX_RW_COUNT (0x7ffff000) are cut to
 * it, as read(2) and write(2) do: the result is then a short count.
 * An opcode the kernel lacks gives -EOPNOTSUPP. An operation that finds
 * no room in the ring's submission queue, even after submitting and
 * reaping to make some, returns -EAGAIN (or io_uring_enter's error) without
 * having started; coil_splice, whose timeout is a timer of the loop, may
 * return -ENOMEM when that timer cannot be queued.
 *
 * Timeouts: the last parameter of every operation is a relative timeout in
 * nanoseconds. COIL_FOREVER waits without limit. A positive timeout is a
 * linked timeout in the ring (IORING_OP_LINK_TIMEOUT); an operation it ends
 * returns -ETIMEDOUT, and nothing of it is left in flight. 0 means do not
 * wait: the operation is tried once, and returns -ETIMEDOUT unless it
 * completes at once (data already there, a connection already queued). A
 * negative timeout other than COIL_FOREVER is -EINVAL. After a timeout the
 * descriptor is as usable as before, except after a connect (close the
 * socket: its connection attempt was abandoned).
 *
 * Cancellation (DESIGN.md section 6): when the awaiting task is cancelled,
 * from any thread, the operation is cancelled in the kernel (async-cancel)
 * and the call returns only after the operation's own completion has been
 * reaped, so a buffer passed in is never written after the call returns.
 * If the operation completed first, its result is returned (the bytes read
 * are in the buffer, the accepted descriptor is the caller's) and the
 * cancellation is delivered at the task's next await; otherwise the call
 * returns -ECANCELED and the operation did nothing (no byte consumed or
 * sent). A loop shutting down force-closes tasks that ignore cancellation:
 * an operation in flight then returns COIL_ECLOSED, also only once its
 * completion has been reaped.
 *
 * Threads of a loop: a worker's ring belongs to the thread that drives it.
 * When that thread stops driving the loop with operations in flight (the
 * loop's run_until_complete returns and another thread runs it next, a
 * runtime moves its workers to new threads at shutdown), they are ended
 * and submitted again, transparently, once the loop runs again; only their
 * timeouts start afresh, and a connect, which cannot simply be repeated,
 * returns -EINTR.
 *
 * Ownership: buffers, addresses, messages, iovecs and paths belong to the
 * caller and must stay valid until the call returns (they live on the
 * task's stack in the common case). No operation takes ownership of a
 * descriptor, except coil_close which closes it. Descriptors may be in
 * blocking or non-blocking mode: the ring waits for readiness either way.
 *
 * Signals: sends never raise SIGPIPE (MSG_NOSIGNAL is added); a write to a
 * pipe whose reader is gone may, as write(2) does.
 *
 * socket(), bind() and listen() never block: plain system calls are right
 * for them.
 *
 * Threads: any task, on any worker; never from a plain thread or a
 * callback (COIL_EINVALSTATE).
 */
#ifndef COIL_IO_H
#define COIL_IO_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct statx;

/* --- sockets --------------------------------------------------------------- */

/*
 * Accepts a connection on a listening socket (accept4). addr/addrlen as for
 * accept4 (both NULL: the peer's address is not wanted; *addrlen in: the
 * room at addr, out: the address's size); flags: SOCK_NONBLOCK and
 * SOCK_CLOEXEC. Returns the new descriptor, which the caller owns.
 * A server that accepts in a loop should use coil_acceptor_* below.
 */
COIL_API int coil_accept(int fd, struct sockaddr *addr, socklen_t *addrlen,
			 int flags, int64_t timeout_ns);

/* Connects a socket (connect). Returns 0. */
COIL_API int coil_connect(int fd, const struct sockaddr *addr,
			  socklen_t addrlen, int64_t timeout_ns);

/* Receives up to len bytes (recv; flags: MSG_*). Returns the count, 0 at
 * the end of the stream. */
COIL_API ssize_t coil_recv(int fd, void *buf, size_t len, int flags,
			   int64_t timeout_ns);

/* Sends up to len bytes (send; flags: MSG_*, MSG_NOSIGNAL is always added).
 * Returns the count sent, which may be short. */
COIL_API ssize_t coil_send(int fd, const void *buf, size_t len, int flags,
			   int64_t timeout_ns);

/* recvmsg: scatter input, the sender's address and ancillary data; the
 * kernel updates msg_namelen, msg_controllen and msg_flags. */
COIL_API ssize_t coil_recvmsg(int fd, struct msghdr *msg, int flags,
			      int64_t timeout_ns);

/* sendmsg: gather output, a destination address, ancillary data (such as
 * SCM_RIGHTS). MSG_NOSIGNAL is always added. */
COIL_API ssize_t coil_sendmsg(int fd, const struct msghdr *msg, int flags,
			      int64_t timeout_ns);

/* recvfrom, for datagram sockets: addr NULL is coil_recv; else *addrlen in:
 * the room at addr, out: the sender address's size. */
COIL_API ssize_t coil_recvfrom(int fd, void *buf, size_t len, int flags,
			       struct sockaddr *addr, socklen_t *addrlen,
			       int64_t timeout_ns);

/* sendto, for datagram sockets: addr NULL is coil_send. Uses IORING_OP_SEND
 * with a destination on kernels that have it (6.0), sendmsg before. */
COIL_API ssize_t coil_sendto(int fd, const void *buf, size_t len, int flags,
			     const struct sockaddr *addr, socklen_t addrlen,
			     int64_t timeout_ns);

/* shutdown: how is SHUT_RD, SHUT_WR or SHUT_RDWR. Returns 0. */
COIL_API int coil_shutdown(int fd, int how, int64_t timeout_ns);

/* --- any descriptor ---------------------------------------------------------- */

/*
 * Closes fd through the ring. A close happens exactly once: it is never
 * cut short by a cancellation (one that arrives meanwhile is delivered at
 * the next await) nor by its timeout, which is checked for validity and
 * otherwise ignored (a close does not wait for a peer). Called outside a
 * task, in a coroutine being closed, or with a cancellation pending, it is
 * a plain close(2) instead. Returns 0 or a negative errno (-EBADF).
 */
COIL_API int coil_close(int fd, int64_t timeout_ns);

/*
 * Moves up to len bytes from fd_in to fd_out, one of which is a pipe,
 * without copying them through user memory (splice; flags: SPLICE_F_*, not
 * SPLICE_F_FD_IN_FIXED). An offset of -1 uses (and advances) the
 * descriptor's position; a pipe's must be -1. Returns the count moved, 0 at
 * the end of the input. Two splices through a pipe make a sendfile.
 */
COIL_API ssize_t coil_splice(int fd_in, int64_t off_in, int fd_out,
			     int64_t off_out, size_t len, unsigned flags,
			     int64_t timeout_ns);

/* Waits until fd is ready for `events` (POLLIN, POLLOUT, ...), for a
 * descriptor that another library reads or writes itself. Returns the
 * ready events (POLLHUP and POLLERR included when they hold). */
COIL_API int coil_poll(int fd, unsigned events, int64_t timeout_ns);

/* --- files ----------------------------------------------------------------------- */

/* open(2) / openat(2): returns the new descriptor, which the caller owns. */
COIL_API int coil_open(const char *path, int flags, mode_t mode,
		       int64_t timeout_ns);
COIL_API int coil_openat(int dirfd, const char *path, int flags, mode_t mode,
			 int64_t timeout_ns);

/* pread/pwrite, or read/write at the descriptor's position (advancing it)
 * when offset is -1. Return the count, which may be short; 0 at the end of
 * a file for a read. */
COIL_API ssize_t coil_read(int fd, void *buf, size_t len, int64_t offset,
			   int64_t timeout_ns);
COIL_API ssize_t coil_write(int fd, const void *buf, size_t len,
			    int64_t offset, int64_t timeout_ns);

/* preadv/pwritev, offsets as above; 0 <= iovcnt <= IOV_MAX. */
COIL_API ssize_t coil_readv(int fd, const struct iovec *iov, int iovcnt,
			    int64_t offset, int64_t timeout_ns);
COIL_API ssize_t coil_writev(int fd, const struct iovec *iov, int iovcnt,
			     int64_t offset, int64_t timeout_ns);

/* fsync(2) and fdatasync(2). Return 0. */
COIL_API int coil_fsync(int fd, int64_t timeout_ns);
COIL_API int coil_fdatasync(int fd, int64_t timeout_ns);

/* statx(2) into *out (flags: AT_*, e.g. AT_EMPTY_PATH with path "" for
 * dirfd itself; mask: STATX_*). Returns 0. */
COIL_API int coil_statx(int dirfd, const char *path, int flags,
			unsigned mask, struct statx *out, int64_t timeout_ns);

/* --- servers ------------------------------------------------------------------------ */

/*
 * Multishot accept for servers: one armed operation yields every incoming
 * connection (IORING_ACCEPT_MULTISHOT; single accepts on kernels before
 * 5.19). Connections that arrive while no task waits are queued in the
 * acceptor, up to 128 (beyond that the acceptor stops accepting and they
 * wait in the listen backlog); accepted descriptors are SOCK_CLOEXEC.
 *
 * open: from a task; arms the accept on the calling worker's ring and pins
 * the calling task to that worker until it closes the acceptor. listen_fd
 * stays the caller's; *out gets the acceptor, the caller's to close.
 * Returns 0, -EINVAL (out NULL), -EBADF (a negative descriptor), -ENOMEM,
 * COIL_EINVALSTATE (not in a task), COIL_ECLOSED (the task's coroutine is
 * being closed), -ECANCELED (a cancellation was pending), or -EAGAIN when
 * the ring has no room (see above). A descriptor that is not open, or not
 * a listening socket, is
 * the kernel's to refuse: next returns its error (-EBADF, -EINVAL, ...),
 * at each call, and close ends the acceptor as usual.
 *
 * next: from a task on the acceptor's worker (-EXDEV elsewhere). Returns
 * the next connection's descriptor, which the caller owns, or a negative
 * errno the accept reported (-EMFILE, -ENFILE, ...): after an error the
 * accept is armed again only at the following call, so the server decides
 * how long to back off. Timeout as for the operations above (the wait, not
 * a linked timeout). A cancellation returns -ECANCELED and leaves any
 * connection that arrives meanwhile queued for the next call.
 * COIL_EINVALSTATE if another task is already waiting in next() or the
 * acceptor is being closed; COIL_ECLOSED when it is closed while this
 * call waits; -EINVAL for a NULL acceptor or a bad timeout; outside a
 * task, or with the task's coroutine being closed, as the operations
 * above.
 *
 * close: cancels the armed accept, closes the queued connections, and
 * frees the acceptor (NULL is a no-op). From a task on the acceptor's
 * worker it returns once the kernel has ended the accept (the listening
 * socket may be closed or reused right away); a task waiting in next()
 * meanwhile gets COIL_ECLOSED. From a callback on that worker the acceptor
 * is freed when the kernel's last completion for it is reaped; from
 * another thread the close is handed to the worker. The task that opened
 * the acceptor should close it: that is what unpins it. Close every
 * acceptor before its loop or runtime shuts down.
 */
typedef struct coil_acceptor coil_acceptor_t;
COIL_API int coil_acceptor_open(coil_acceptor_t **out, int listen_fd);
COIL_API int coil_acceptor_next(coil_acceptor_t *a, int64_t timeout_ns);
COIL_API void coil_acceptor_close(coil_acceptor_t *a);

#ifdef __cplusplus
}
#endif

#endif /* COIL_IO_H */
