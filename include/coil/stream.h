/*
 * coil/stream.h: streams, servers and name resolution (asyncio's
 * StreamReader/StreamWriter, open_connection, start_server, getaddrinfo).
 *
 * A stream (coil_stream_t) is one object for both directions of a
 * connected descriptor: a TCP or Unix socket, or a pipe, FIFO or terminal.
 * It reads through a buffer of its own (so that readline, readuntil and
 * readexactly can look ahead) and writes through another one (so that
 * write never blocks). Reading uses coil_recv (coil_read for a descriptor
 * that is not a socket) and writing coil_send (coil_write), on the calling
 * task's worker ring; the buffers are reused, so a stream in steady use
 * allocates nothing and makes no system call beyond the ring operation.
 *
 * Who may call what. One task at a time reads (read, readexactly,
 * readuntil, readline) and one task at a time writes (write, write_all,
 * drain, write_eof, wait_closed); the two may be different tasks on
 * different workers, and a task may migrate between calls. A second
 * reader (or writer) entering while another one is suspended in the
 * stream gets -EBUSY. coil_stream_close may be called by any task at any
 * time while the stream is alive. The calls that do not await may be made
 * from any thread that owns the stream at that moment.
 *
 * Timeouts: every call that may wait takes a relative timeout in
 * nanoseconds as its last parameter (COIL_FOREVER: none; 0: do not wait
 * for the peer). It bounds the whole call, however many ring operations
 * it takes. A call that times out or is cancelled loses nothing: bytes
 * already received stay in the read buffer for the next read, bytes not
 * yet sent stay in the write buffer for the next drain.
 *
 * Backpressure: write copies into the write buffer and never blocks;
 * drain sends the whole buffer and returns once the kernel took it, so it
 * waits exactly as long as the peer does not read. There is no background
 * sender: bytes are sent only by drain, write_all, write_eof and
 * wait_closed, and drain is mandatory: once the buffer holds more than the
 * high-water mark, write refuses more (-ENOBUFS) until a drain. A slow or
 * stalled peer therefore costs at most the high-water mark plus one write
 * of memory. (asyncio's low-water mark has no counterpart: it exists to
 * restart a background sender, and drain here always empties the buffer.)
 *
 * Errors: negative errno values from the kernel (-ECONNRESET, -EPIPE,
 * -ETIMEDOUT, -ECANCELED, ...) or coil's codes: COIL_EINCOMPLETE (the
 * stream ended before readexactly or readuntil could finish),
 * COIL_ELIMIT (no separator within the limit), COIL_ECLOSED (the stream
 * was closed), COIL_ENONAME (name resolution found nothing). A connection
 * error (a reset) is kept: the reads after it return the bytes that were
 * already buffered, then the error; writes return it at once.
 * Outside a task the waiting calls return COIL_EINVALSTATE.
 *
 * This header compiles as C11 and as C++.
 */
#ifndef COIL_STREAM_H
#define COIL_STREAM_H

#include <sys/types.h>
#include <sys/socket.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo;

typedef struct coil_stream coil_stream_t;
typedef struct coil_server coil_server_t;

/*
 * Options of a stream. Initialise with coil_stream_opts_init(), then set
 * what you need: fields are only ever appended, and `size` tells the
 * library which ones the caller knows.
 */
typedef struct coil_stream_opts {
	uint32_t size;        /* set by coil_stream_opts_init */
	size_t limit;         /* longest line readuntil and readline return,
			       * separator not counted (asyncio's limit);
			       * 0: 64 KiB */
	size_t read_buffer;   /* the read buffer's size, and the read size
			       * from which read() receives straight into
			       * the caller's memory; 0: 16 KiB */
	size_t high_water;    /* write refuses more while the write buffer
			       * holds more than this; 0: 64 KiB */
} coil_stream_opts_t;

/* Fills *opts with the defaults. Any thread. */
COIL_API void coil_stream_opts_init(coil_stream_opts_t *opts);

/*
 * Makes a stream over a connected descriptor, which the stream owns from
 * then on (coil_stream_wait_closed or coil_stream_free closes it, also
 * when this call fails). The descriptor's type is looked up once
 * (fstat): a socket is read with coil_recv and written with coil_send,
 * anything else (a pipe, a FIFO, a terminal) with coil_read and
 * coil_write at the file position. opts may be NULL. Returns 0, -EINVAL
 * (out NULL, fd negative), -EBADF, or -ENOMEM. Any thread.
 */
COIL_API int coil_stream_from_fd(coil_stream_t **out, int fd,
				 const coil_stream_opts_t *opts);

/*
 * asyncio.open_connection: resolves host and port (coil_getaddrinfo, a
 * numeric address without a lookup) and connects to the addresses found,
 * one after the other, until one accepts; the socket gets TCP_NODELAY.
 * *out gets a stream the caller owns (end it with coil_stream_close,
 * coil_stream_wait_closed and coil_stream_free). The timeout covers the
 * lookup and every attempt. Returns 0, -EINVAL (out NULL, host NULL, port
 * outside 0..65535), COIL_ENONAME, the error of the last attempt
 * (-ECONNREFUSED, ...), -ETIMEDOUT, -ECANCELED, or -ENOMEM. Task only.
 */
COIL_API int coil_open_connection(coil_stream_t **out, const char *host,
				  int port, const coil_stream_opts_t *opts,
				  int64_t timeout_ns);

/*
 * asyncio.open_unix_connection: connects a Unix stream socket to `path`
 * (a leading '@' names Linux's abstract namespace). As
 * coil_open_connection otherwise; -ENAMETOOLONG if the path does not fit
 * a sockaddr_un. Task only.
 */
COIL_API int coil_open_unix_connection(coil_stream_t **out, const char *path,
				       const coil_stream_opts_t *opts,
				       int64_t timeout_ns);

/*
 * Reads up to n bytes into buf: what is buffered if anything is, else what
 * one receive brings (straight into buf when n is at least the read
 * buffer's size). Returns the count (> 0), 0 at the end of the stream
 * (and for n == 0), or an error: the kept connection error, -ETIMEDOUT,
 * -ECANCELED, COIL_ECLOSED, -EBUSY, -EINVAL (n above SSIZE_MAX, buf NULL).
 * Task only (the reading task).
 */
COIL_API ssize_t coil_stream_read(coil_stream_t *s, void *buf, size_t n,
				  int64_t timeout_ns);

/*
 * Reads exactly n bytes into buf and returns n. If the stream ends first
 * it returns COIL_EINCOMPLETE and consumes nothing: the partial data stays
 * buffered (coil_stream_buffered() says how much) and the following reads
 * return it. The same holds for a timeout, a cancellation or a connection
 * error: nothing is consumed unless the whole count is returned. Counts up
 * to about twice the limit go through the read buffer, which grows to n
 * bytes if needed (-ENOMEM, before anything is read, if it cannot); larger
 * ones are received straight into buf, and a failed call copies what it
 * got back into the read buffer (should even that memory be missing, the
 * bytes are lost and every later read returns -ENOMEM). -EINVAL for n
 * above SSIZE_MAX or buf NULL. Task only.
 */
COIL_API ssize_t coil_stream_readexactly(coil_stream_t *s, void *buf,
					 size_t n, int64_t timeout_ns);

/*
 * Reads up to and including the first occurrence of the separator `sep`
 * (seplen bytes) into buf and returns the count, separator included. A
 * line whose data before the separator is longer than the stream's limit,
 * or that does not fit in cap bytes, is COIL_ELIMIT and consumes nothing:
 * the data stays buffered for coil_stream_read (asyncio's
 * LimitOverrunError). If the stream ends before a separator it returns
 * COIL_EINCOMPLETE and the data stays buffered as well. Timeouts,
 * cancellation and errors consume nothing. -EINVAL for seplen 0, a NULL
 * pointer, cap below seplen or above SSIZE_MAX. Task only.
 */
COIL_API ssize_t coil_stream_readuntil(coil_stream_t *s, const void *sep,
				       size_t seplen, void *buf, size_t cap,
				       int64_t timeout_ns);

/*
 * Reads one line, up to and including "\n", as coil_stream_readuntil, with
 * asyncio's readline difference at the end of the stream: the last bytes
 * are returned without a newline (0 once nothing is left) instead of
 * COIL_EINCOMPLETE. Task only.
 */
COIL_API ssize_t coil_stream_readline(coil_stream_t *s, void *buf, size_t cap,
				      int64_t timeout_ns);

/* True when the end of the stream was reached and nothing is left in the
 * read buffer (asyncio's at_eof). The reading task. */
COIL_API bool coil_stream_at_eof(const coil_stream_t *s);

/* The number of bytes in the read buffer: what the next read returns
 * without waiting. The reading task. */
COIL_API size_t coil_stream_buffered(const coil_stream_t *s);

/*
 * Appends n bytes to the write buffer (copied: buf is free again when this
 * returns). Never blocks and sends nothing: coil_stream_drain does. Returns
 * 0; -ENOBUFS when the buffer already holds more than the high-water mark
 * (drain first; nothing was appended); COIL_ECLOSED after
 * coil_stream_close; -EPIPE after coil_stream_write_eof; the kept
 * connection error; -EBUSY while another task drains; -EINVAL for n above
 * SSIZE_MAX or buf NULL; -ENOMEM. The writing task (or any thread that
 * owns the stream).
 */
COIL_API int coil_stream_write(coil_stream_t *s, const void *buf, size_t n);

/*
 * Sends everything in the write buffer and returns 0 once the kernel has
 * taken it all (short sends are continued), waiting while the peer does
 * not read: this is the backpressure. On a timeout or cancellation the
 * bytes not sent stay buffered (call drain again); a connection error
 * (-EPIPE, -ECONNRESET) is kept and returned by every later write. Returns
 * 0, -ETIMEDOUT, -ECANCELED, the connection error (kept, or met now),
 * COIL_ECLOSED (the descriptor is closed and bytes are left), -EBUSY
 * (another task is writing), -EINVAL (s NULL, a bad timeout), or, with
 * bytes to send, COIL_EINVALSTATE outside a task. Task only (the writing
 * task).
 */
COIL_API int coil_stream_drain(coil_stream_t *s, int64_t timeout_ns);

/*
 * coil_stream_write(buf) followed by coil_stream_drain(), without copying
 * buf: the buffered bytes and buf go out together (one sendmsg), and only
 * what is left unsent when the call fails is copied into the write buffer
 * (even past the high-water mark), exactly as if write and drain had been
 * called. After a failure call drain to go on, not write_all again (that
 * would send the rest twice). Returns 0 or an error as write and drain.
 * Task only (the writing task).
 */
COIL_API int coil_stream_write_all(coil_stream_t *s, const void *buf,
				   size_t n, int64_t timeout_ns);

/* The number of bytes in the write buffer, not yet sent (asyncio's
 * get_write_buffer_size). The writing task. */
COIL_API size_t coil_stream_write_buffered(const coil_stream_t *s);

/*
 * Half-close: drains the write buffer, then ends the sending direction
 * (shutdown(SHUT_WR) on a socket: the peer reads the end of the stream
 * while this side can still read). On a descriptor that is not a socket
 * (a pipe's write end) the descriptor is closed instead, and later reads
 * return COIL_ECLOSED; a read under way in another task (a FIFO or a
 * terminal, read and written) goes on with the descriptor, which is
 * closed when that read returns. Later writes return -EPIPE. Returns 0 or
 * the error of the drain or the shutdown. Task only (the writing task).
 */
COIL_API int coil_stream_write_eof(coil_stream_t *s, int64_t timeout_ns);

/*
 * Starts closing the stream (asyncio's StreamWriter.close): later reads
 * and writes return COIL_ECLOSED, and a read suspended in another task is
 * woken (on a socket) and returns COIL_ECLOSED. Bytes already written are
 * still sent by coil_stream_wait_closed. Does not wait and frees nothing;
 * idempotent. Any task or thread, while the stream is alive and not in
 * coil_stream_wait_closed or coil_stream_free.
 */
COIL_API void coil_stream_close(coil_stream_t *s);

/* True once coil_stream_close (or wait_closed) was called. Any thread. */
COIL_API bool coil_stream_is_closing(const coil_stream_t *s);

/*
 * Finishes closing (asyncio's wait_closed): closes the stream if that was
 * not done, sends what the write buffer holds (bounded by the timeout),
 * then closes the descriptor, whatever the sending gave. Returns 0, or the
 * error that kept the buffered bytes from being sent (they are dropped).
 * A second call returns 0 at once. Must not run while another task reads
 * or writes the stream: against a writer it returns -EBUSY without closing
 * the descriptor (call it again). -EINVAL for s NULL or a bad timeout.
 * Task only.
 */
COIL_API int coil_stream_wait_closed(coil_stream_t *s, int64_t timeout_ns);

/*
 * Frees the stream, closing its descriptor first if wait_closed did not
 * (unsent bytes are dropped then). No task may be using the stream. NULL is
 * allowed. Any thread. Streams handed to a server's handler belong to the
 * server, which frees them: a handler must not.
 */
COIL_API void coil_stream_free(coil_stream_t *s);

/* The stream's descriptor (for getpeername, setsockopt, ...), or -1 once
 * it is closed. The descriptor stays the stream's. Any thread. */
COIL_API int coil_stream_fd(const coil_stream_t *s);

/* --- servers ------------------------------------------------------------ */

/*
 * A connection handler: runs as a task of its own for each accepted
 * connection, and may migrate between workers. The stream belongs to the
 * server: when the handler returns, the server closes it (sending what is
 * still buffered) and frees it. The handler returns 0 or an error; an
 * error other than -ECANCELED is reported through the loop's exception
 * handler (as an unretrieved task error), as asyncio logs an exception
 * escaping client_connected_cb.
 */
typedef int (*coil_stream_handler)(coil_stream_t *stream, void *arg);

/* Options of a server: coil_server_opts_init(), then set what you need. */
typedef struct coil_server_opts {
	uint32_t size;              /* set by coil_server_opts_init */
	int backlog;                /* listen() backlog; 0: SOMAXCONN */
	bool reuse_port;            /* SO_REUSEPORT, for several servers on
				     * one port */
	size_t stack_size;          /* stack of the handler tasks; 0: the
				     * default */
	const coil_stream_opts_t *stream; /* options of every connection's
				     * stream (copied); NULL: defaults */
} coil_server_opts_t;

/* Fills *opts with the defaults. Any thread. */
COIL_API void coil_server_opts_init(coil_server_opts_t *opts);

/*
 * asyncio.start_server: listens on host and port and serves every
 * connection by running handler(stream, arg) in a task of its own.
 * host NULL or "" listens on every interface, IPv4 and IPv6; a name is
 * resolved and every address found is listened on (IPv6 sockets then
 * with IPV6_V6ONLY). Port 0 lets the kernel pick one, the same for every
 * address where it is free (coil_server_port tells which). Sockets get
 * SO_REUSEADDR and TCP_NODELAY (which accepted connections inherit).
 * Accepting runs in one task per listening socket (multishot accept),
 * kept on the worker that called this; when descriptors run out (EMFILE,
 * ENFILE) it reports that once through the loop's exception handler and
 * retries after a pause that doubles from 1 ms to 100 ms, so it never
 * spins, and it serves again as soon as descriptors are free. opts may be
 * NULL. The timeout bounds the name lookup. Returns 0, -EINVAL (out or
 * handler NULL, a port outside 0..65535), the error of socket, bind or
 * listen (-EADDRINUSE, ...), COIL_ENONAME, -ETIMEDOUT, -ECANCELED or
 * -ENOMEM. The caller owns the server: end it with coil_server_close,
 * then coil_server_free, before its runtime shuts down. Task only.
 */
COIL_API int coil_start_server(coil_server_t **out,
			       coil_stream_handler handler, void *arg,
			       const char *host, int port,
			       const coil_server_opts_t *opts,
			       int64_t timeout_ns);

/*
 * asyncio.start_unix_server: as coil_start_server on a Unix stream socket
 * bound to `path` (a leading '@' names the abstract namespace). A stale
 * socket file at path is removed first, as asyncio does; the file is
 * removed again when the server closes, if it is still this server's.
 * Returns 0, -EINVAL, -ENAMETOOLONG, the error of socket, bind or listen,
 * or -ENOMEM. Task only.
 */
COIL_API int coil_start_unix_server(coil_server_t **out,
				    coil_stream_handler handler, void *arg,
				    const char *path,
				    const coil_server_opts_t *opts);

/* The port the first listening socket is bound to, or -EINVAL for a Unix
 * server. Any thread. */
COIL_API int coil_server_port(const coil_server_t *srv);

/* The number of listening sockets. Any thread. */
COIL_API unsigned coil_server_nsockets(const coil_server_t *srv);

/*
 * Copies the address listening socket i is bound to into addr (at most
 * *addrlen bytes; *addrlen gets the full length, as getsockname). Returns
 * 0 or -EINVAL (i out of range). Any thread.
 */
COIL_API int coil_server_sockname(const coil_server_t *srv, unsigned i,
				  struct sockaddr *addr, socklen_t *addrlen);

/* True until coil_server_close starts. Any thread. */
COIL_API bool coil_server_is_serving(const coil_server_t *srv);

/* The number of connections being handled now. Any thread. */
COIL_API size_t coil_server_connections(const coil_server_t *srv);

/*
 * Closes the server gracefully: stops accepting (the listening sockets are
 * closed), waits up to grace_ns (COIL_FOREVER: no limit; 0: not at all) for
 * the running handlers to return, then cancels those left and waits for
 * them to end, however long they take to handle the cancellation. A
 * handler that calls this is neither waited for nor cancelled. Returns 0
 * if every handler returned within the grace period, -ETIMEDOUT if some
 * had to be cancelled, -ECANCELED if the calling task was cancelled meanwhile
 * (the close still completes: the grace period ends at once), -EINVAL for
 * srv NULL or a negative grace other than COIL_FOREVER, COIL_EINVALSTATE
 * outside a task (nothing is done then). A second call (from any task)
 * waits for the first one to finish and returns 0 (or -ECANCELED if it is
 * cancelled while it waits). Task only.
 */
COIL_API int coil_server_close(coil_server_t *srv, int64_t grace_ns);

/*
 * asyncio's serve_forever: suspends the calling task until the server is
 * closed (by coil_server_close from another task), then returns 0.
 * Returns -ECANCELED if the calling task is cancelled first; unlike
 * asyncio, the server is not closed then: the caller closes it with the
 * grace period of its choice. -EINVAL for srv NULL, COIL_EINVALSTATE
 * outside a task, COIL_ECLOSED while the task's coroutine is being closed.
 * Any number of tasks may wait. Task only.
 */
COIL_API int coil_server_serve_forever(coil_server_t *srv);

/*
 * Frees a closed server. Returns 0, or COIL_EINVALSTATE (and frees
 * nothing) when coil_server_close has not finished. NULL is allowed. Any
 * thread.
 */
COIL_API int coil_server_free(coil_server_t *srv);

/* --- name resolution ------------------------------------------------------ */

/*
 * getaddrinfo without blocking the loop: the lookup runs on a small pool
 * of resolver threads while only the calling task waits. A numeric host
 * ("127.0.0.1", "::1") or a NULL host with a numeric service is resolved
 * at once, without a thread. On 0, *res gets the list (free it with
 * coil_freeaddrinfo). A timeout or cancellation returns at once
 * (-ETIMEDOUT, -ECANCELED); the lookup then finishes on its thread and
 * its result is freed there. Timeout 0 returns -ETIMEDOUT for a lookup
 * that needs a thread. Errors: COIL_ENONAME (EAI_NONAME, EAI_NODATA,
 * EAI_SERVICE), -EAGAIN (temporary failure), -EIO (EAI_FAIL), -ENOMEM,
 * -EAFNOSUPPORT, -ESOCKTNOSUPPORT, -EINVAL (bad flags, res NULL, both
 * names NULL), or the errno of EAI_SYSTEM. Task only (COIL_EINVALSTATE
 * elsewhere, except for the numeric case, which any thread may use).
 */
COIL_API int coil_getaddrinfo(const char *host, const char *service,
			      const struct addrinfo *hints,
			      struct addrinfo **res, int64_t timeout_ns);

/* Frees a list from coil_getaddrinfo. NULL is allowed. Any thread. */
COIL_API void coil_freeaddrinfo(struct addrinfo *res);

#ifdef __cplusplus
}
#endif
#endif /* COIL_STREAM_H */
