/*
 * io/stream.c: streams over connected descriptors (coil/stream.h), and
 * open_connection.
 *
 * A stream has a read side and a write side, each with a buffer of its own
 * and a busy flag; the reading task owns the read side's fields while its
 * flag is up, the writing task the write side's, so the two directions run
 * in different tasks (on different workers) without a lock. The flags are
 * taken with an atomic exchange whose acquire/release pairs also carry the
 * fields from one task to the next.
 *
 * Read buffer: bytes [rpos, rend) of rbuf (capacity rcap) are received and
 * not yet consumed. It is allocated on first use, compacted (memmove) when
 * the free room is at the end, and grown only for a readexactly or a
 * readuntil that needs more; a grown buffer is given back once it empties
 * if it is much larger than the limit needs, so memory follows what the
 * reader asks for, never what the peer sends. Reads of at least the
 * buffer's size that find it empty, and readexactly of more than the
 * buffer keeps, receive straight into the caller's memory (a failed
 * readexactly puts its bytes back). Nothing is consumed unless it is
 * returned: a timeout, a
 * cancellation, an error, COIL_ELIMIT or COIL_EINCOMPLETE leave the buffer
 * as it was plus what arrived.
 *
 * Write buffer: bytes [wpos, wend) of wbuf (capacity wcap) are written and
 * not yet sent. write appends (refusing once more than high_water bytes are
 * waiting), drain sends until it is empty, write_all sends the buffer and
 * the caller's bytes in one sendmsg. A send error other than a timeout or
 * a cancellation is kept (werr) and returned by every later write.
 *
 * Closing: close() raises `closing` and, if a reader is inside, shuts the
 * socket's read direction so that its receive completes. The busy flag and
 * `closing` are a store-then-load pair on each side (sequentially
 * consistent), so either the reader sees `closing` before it receives or
 * close() sees the reader and wakes it. wait_closed() flushes and closes
 * the descriptor (a plain close(2): it never blocks for a socket without
 * SO_LINGER, and unlike a ring operation it cannot be skipped by a
 * pending cancellation, which would leak the descriptor). write_eof on a
 * descriptor that is not a socket closes it, or leaves that to a reader
 * inside the stream (orphan_close()).
 */
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "alloc.h"
#include "core.h"
#include "coil/io.h"
#include "coil/stream.h"
#include "stream_int.h"

#define DEFAULT_LIMIT (64 * 1024)
#define DEFAULT_READ_BUFFER (16 * 1024)
#define DEFAULT_HIGH_WATER (64 * 1024)
#define WBUF_MIN 4096

struct coil_stream {
	atomic_int fd;           /* -1 once closed */
	atomic_int orphan;       /* ended by write_eof, not closed yet: a
				  * reader may hold its number (-1: none) */
	bool is_socket;
	size_t limit, chunk, high_water;
	atomic_bool closing;

	/* The read side: the reading task's while rbusy is up. */
	atomic_bool rbusy;
	bool eof;                /* the peer ended its direction */
	int rerr;                /* a kept connection error, or 0 */
	char *rbuf;
	size_t rcap, rpos, rend;

	/* Apart from the read side: the two run on different workers. */
	char pad[64];

	/* The write side: the writing task's while wbusy is up. */
	atomic_bool wbusy;
	bool wshut;              /* write_eof done */
	int werr;                /* a kept connection error, or 0 */
	char *wbuf;
	size_t wcap, wpos, wend;
};

/* --- options and creation ------------------------------------------------ */

void coil_stream_opts_init(coil_stream_opts_t *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
}

/* Sizes above this are refused: they could only overflow the arithmetic
 * on them, never be allocated. */
#define SIZE_SANE ((size_t)SSIZE_MAX / 4)

static int opts_read(coil_stream_opts_t *o, const coil_stream_opts_t *in)
{
	coil_stream_opts_init(o);
	if (in) {
		size_t n = in->size < sizeof(*o) ? in->size : sizeof(*o);
		if (n > sizeof(o->size))
			memcpy((char *)o + sizeof(o->size),
			       (const char *)in + sizeof(o->size),
			       n - sizeof(o->size));
		o->size = sizeof(*o);
	}
	if (o->limit > SIZE_SANE || o->read_buffer > SIZE_SANE ||
	    o->high_water > SIZE_SANE)
		return -EINVAL;
	if (!o->limit)
		o->limit = DEFAULT_LIMIT;
	if (!o->read_buffer)
		o->read_buffer = DEFAULT_READ_BUFFER;
	if (!o->high_water)
		o->high_water = DEFAULT_HIGH_WATER;
	return 0;
}

int coil__stream_opts_read(coil_stream_opts_t *o, const coil_stream_opts_t *in)
{
	return opts_read(o, in);
}

int coil__stream_new(coil_stream_t **out, int fd, bool is_socket,
		     const coil_stream_opts_t *opts)
{
	coil_stream_opts_t o;
	int rc = opts_read(&o, opts);
	coil_stream_t *s = rc ? NULL : coil__calloc(sizeof(*s));
	if (!s) {
		close(fd);
		return rc ? rc : -ENOMEM;
	}
	atomic_init(&s->fd, fd);
	atomic_init(&s->orphan, -1);
	s->is_socket = is_socket;
	s->limit = o.limit;
	s->chunk = o.read_buffer;
	s->high_water = o.high_water;
	atomic_init(&s->closing, false);
	atomic_init(&s->rbusy, false);
	atomic_init(&s->wbusy, false);
	COIL__DEBUG_FD_OPENED(fd, is_socket ? "a stream's socket" : "a stream's pipe or file");
	*out = s;
	return 0;
}

int coil_stream_from_fd(coil_stream_t **out, int fd,
			const coil_stream_opts_t *opts)
{
	if (fd < 0)
		return -EINVAL;
	if (!out) {
		close(fd);
		return -EINVAL;
	}
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -errno; /* EBADF: there is nothing to close */
	return coil__stream_new(out, fd, S_ISSOCK(st.st_mode), opts);
}

/* --- ring operations ------------------------------------------------------ */

/* Errors that say nothing about the connection: the call ends, the stream
 * stays usable. */
static bool transient(ssize_t r)
{
	return r == -ETIMEDOUT || r == -ECANCELED || r == COIL_ECLOSED ||
	       r == COIL_EINVALSTATE || r == -EINTR || r == -ENOMEM ||
	       r == -EINVAL || r == -EBUSY;
}

/*
 * A descriptor that is not a socket may be in non-blocking mode (a pipe
 * handed over by another library), where the ring's read and write return
 * -EAGAIN instead of waiting: wait for readiness, then try again. A socket
 * operation reports its own timeout 0 as -EAGAIN on some paths: that is a
 * timeout for the stream's caller.
 */
static ssize_t again(int fd, unsigned events, int64_t *deadline,
		     int64_t timeout_ns)
{
	if (*deadline == INT64_MIN)
		*deadline = coil__deadline(timeout_ns);
	int64_t left = coil__remaining(*deadline);
	if (left == 0)
		return -ETIMEDOUT;
	int p = coil_poll(fd, events, left);
	return p < 0 ? p : 0;
}

/*
 * One transfer between the stream's descriptor and the caller's memory:
 * the stream's reads, writes and gathered writes all go through xfer(),
 * so that the closed check and the waits for a non-blocking descriptor
 * are written once.
 */
typedef enum { XFER_READ, XFER_WRITE, XFER_WRITEV } xfer_kind_t;

typedef struct xfer {
	xfer_kind_t kind;
	void *buf;                /* XFER_READ, XFER_WRITE: the bytes */
	size_t n;
	struct iovec *iov;        /* XFER_WRITEV: the pieces */
	int cnt;
} xfer_t;

/* One try of the transfer, with the operation that suits the descriptor.
 * A socket's sends take MSG_NOSIGNAL: a peer that went away is -EPIPE,
 * not a SIGPIPE that kills the process. */
static ssize_t xfer_once(const coil_stream_t *s, int fd, const xfer_t *x,
			 int64_t timeout_ns)
{
	switch (x->kind) {
	case XFER_READ:
		return s->is_socket ? coil_recv(fd, x->buf, x->n, 0, timeout_ns)
				    : coil_read(fd, x->buf, x->n, -1, timeout_ns);
	case XFER_WRITE:
		return s->is_socket ? coil_send(fd, x->buf, x->n, MSG_NOSIGNAL, timeout_ns)
				    : coil_write(fd, x->buf, x->n, -1, timeout_ns);
	case XFER_WRITEV:
		if (s->is_socket) {
			struct msghdr m;
			memset(&m, 0, sizeof(m));
			m.msg_iov = x->iov;
			m.msg_iovlen = (size_t)x->cnt;
			return coil_sendmsg(fd, &m, MSG_NOSIGNAL, timeout_ns);
		}
		return coil_writev(fd, x->iov, x->cnt, -1, timeout_ns);
	}
	return -EINVAL; /* not reached: every kind returns above */
}

static ssize_t xfer(coil_stream_t *s, const xfer_t *x, int64_t timeout_ns)
{
	/* Sequentially consistent: see orphan_close(). */
	int fd = atomic_load(&s->fd);
	if (fd < 0)
		return COIL_ECLOSED;
	int64_t deadline = INT64_MIN;
	for (;;) {
		ssize_t r = xfer_once(s, fd, x,
				      deadline == INT64_MIN ? timeout_ns
							    : coil__remaining(deadline));
		if (r != -EAGAIN)
			return r;
		if (s->is_socket)
			return -ETIMEDOUT;
		if ((r = again(fd, x->kind == XFER_READ ? POLLIN : POLLOUT, &deadline,
			       timeout_ns)))
			return r;
	}
}

static ssize_t io_read(coil_stream_t *s, void *buf, size_t n, int64_t timeout_ns)
{
	xfer_t x = { .kind = XFER_READ, .buf = buf, .n = n };
	return xfer(s, &x, timeout_ns);
}

static ssize_t io_write(coil_stream_t *s, const void *buf, size_t n,
			int64_t timeout_ns)
{
	xfer_t x = { .kind = XFER_WRITE, .buf = (void *)buf, .n = n };
	return xfer(s, &x, timeout_ns);
}

static ssize_t io_writev(coil_stream_t *s, struct iovec *iov, int cnt,
			 int64_t timeout_ns)
{
	xfer_t x = { .kind = XFER_WRITEV, .iov = iov, .cnt = cnt };
	return xfer(s, &x, timeout_ns);
}

/* --- the read side -------------------------------------------------------- */

/*
 * Closes the descriptor write_eof left to the reader, if it did and no
 * reader is inside any more. A descriptor that is not a socket has no
 * half-close: write_eof closes it, while the reading task (a FIFO or a
 * terminal is read and written) may hold its number between loading it
 * and the kernel's taking it (a ring operation's submission). Closed then,
 * the number could name another file by the time the read is submitted,
 * and the read would take that file's bytes. So write_eof sets fd to -1,
 * then hands the descriptor over (orphan), then looks at rbusy; a reader
 * takes rbusy, then loads fd (xfer), and on leaving drops rbusy, then
 * looks at orphan (all sequentially consistent). Either write_eof sees no
 * reader, and any later one loads -1, or the reader sees the descriptor
 * handed over as it leaves; whichever takes it closes it.
 */
static void orphan_close(coil_stream_t *s)
{
	if (atomic_load(&s->orphan) < 0)
		return;
	int fd = atomic_exchange(&s->orphan, -1);
	if (fd >= 0) {
		COIL__DEBUG_FD_CLOSED(fd);
		close(fd);
	}
}

static void rdone(coil_stream_t *s)
{
	/* Sequentially consistent: see orphan_close(). */
	atomic_store(&s->rbusy, false);
	orphan_close(s);
}

static int rbegin(coil_stream_t *s)
{
	/* Sequentially consistent, paired with coil_stream_close: see the
	 * top of the file. */
	if (atomic_exchange(&s->rbusy, true))
		return -EBUSY;
	if (atomic_load(&s->closing)) {
		rdone(s);
		return COIL_ECLOSED;
	}
	return 0;
}

/* The arguments of a call that takes the caller's buffer of n bytes: a
 * stream, the buffer unless n is 0, and a count the result can say. */
static bool buf_ok(const coil_stream_t *s, const void *buf, size_t n)
{
	return s && (buf || !n) && n <= SSIZE_MAX;
}

/* The start of every read: its arguments checked, then the read side
 * taken. Returns 0, -EINVAL, or what rbegin returns. */
static int rstart(coil_stream_t *s, const void *buf, size_t n,
		  int64_t timeout_ns)
{
	if (!buf_ok(s, buf, n) || !coil__timeout_ok(timeout_ns))
		return -EINVAL;
	return rbegin(s);
}

/* The capacity a buffer may keep once empty: what the longest line the
 * limit allows needs, with room to spare. */
static size_t rkeep(const coil_stream_t *s)
{
	size_t k = s->chunk > s->limit + 64 ? s->chunk : s->limit + 64;
	return 2 * k;
}

static void consume(coil_stream_t *s, size_t n)
{
	s->rpos += n;
	if (s->rpos != s->rend)
		return;
	s->rpos = s->rend = 0;
	if (s->rcap > rkeep(s)) {
		coil__free(s->rbuf, s->rcap);
		s->rbuf = NULL;
		s->rcap = 0;
	}
}

/*
 * Makes room for at least `want` bytes from rpos on (want > what is
 * buffered, so at least one more byte fits), by compacting or growing.
 * Returns 0 or -ENOMEM (the buffer unchanged).
 */
static int rreserve(coil_stream_t *s, size_t want)
{
	if (want < s->chunk)
		want = s->chunk;
	if (s->rcap - s->rpos >= want)
		return 0;
	size_t have = s->rend - s->rpos;
	if (s->rcap >= want) {
		memmove(s->rbuf, s->rbuf + s->rpos, have);
		s->rpos = 0;
		s->rend = have;
		return 0;
	}
	size_t ncap = s->rcap * 2 > want ? s->rcap * 2 : want;
	char *nb = coil__malloc(ncap);
	if (!nb)
		return -ENOMEM;
	if (have)
		memcpy(nb, s->rbuf + s->rpos, have);
	coil__free(s->rbuf, s->rcap);
	s->rbuf = nb;
	s->rcap = ncap;
	s->rpos = 0;
	s->rend = have;
	return 0;
}

/* Takes a receive's result: counts the bytes (added to the buffer when
 * into_buf), notes the end of the stream, keeps a connection error. */
static ssize_t absorb(coil_stream_t *s, ssize_t r, bool into_buf)
{
	if (r > 0) {
		if (into_buf)
			s->rend += (size_t)r;
		return r;
	}
	/* After close() a receive ends because the read direction was shut
	 * (0) or for any other reason: either way the stream is closed. */
	if (atomic_load(&s->closing))
		return COIL_ECLOSED;
	if (r == 0)
		s->eof = true;
	else if (!transient(r))
		s->rerr = (int)r;
	return r;
}

/* One receive into the free room at the end of the buffer. */
static ssize_t fill(coil_stream_t *s, int64_t deadline)
{
	ssize_t r = io_read(s, s->rbuf + s->rend, s->rcap - s->rend,
			    coil__remaining(deadline));
	return absorb(s, r, true);
}

ssize_t coil_stream_read(coil_stream_t *s, void *buf, size_t n,
			 int64_t timeout_ns)
{
	int rc = rstart(s, buf, n, timeout_ns);
	if (rc)
		return rc;
	ssize_t r;
	size_t have = s->rend - s->rpos;
	if (have) {
		size_t k = n < have ? n : have;
		if (k)
			memcpy(buf, s->rbuf + s->rpos, k);
		consume(s, k);
		r = (ssize_t)k;
	} else if (s->rerr) {
		r = s->rerr;
	} else if (s->eof || n == 0) {
		r = 0;
	} else if (n >= s->chunk) {
		/* Big reads skip the buffer: no copy. */
		r = absorb(s, io_read(s, buf, n, timeout_ns), false);
	} else if ((r = rreserve(s, 1)) == 0) {
		r = absorb(s, io_read(s, s->rbuf + s->rend, s->rcap - s->rend,
				      timeout_ns), true);
		if (r > 0) {
			size_t k = n < (size_t)r ? n : (size_t)r;
			memcpy(buf, s->rbuf + s->rpos, k);
			consume(s, k);
			r = (ssize_t)k;
		}
	}
	rdone(s);
	return r;
}

/*
 * readexactly of more than the buffer keeps: the bytes go straight into
 * the caller's memory, without growing the buffer or copying them. If the
 * call fails they are put back into the (then empty) read buffer, so that
 * nothing is consumed; only when memory for that cannot be had are they
 * lost, and the stream says so for good (-ENOMEM from every later read).
 */
static ssize_t exact_direct(coil_stream_t *s, char *buf, size_t n,
			    int64_t deadline)
{
	size_t got = s->rend - s->rpos;
	if (got)
		memcpy(buf, s->rbuf + s->rpos, got);
	s->rpos = s->rend = 0;
	ssize_t r = 0;
	while (got < n) {
		r = absorb(s, io_read(s, buf + got, n - got, coil__remaining(deadline)),
			   false);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got == n)
		return (ssize_t)n;
	if (got > s->rcap) {
		char *nb = coil__malloc(got);
		if (!nb)
			return s->rerr = -ENOMEM;
		coil__free(s->rbuf, s->rcap);
		s->rbuf = nb;
		s->rcap = got;
	}
	if (got)
		memcpy(s->rbuf, buf, got);
	s->rend = got;
	return r == 0 ? COIL_EINCOMPLETE : r;
}

ssize_t coil_stream_readexactly(coil_stream_t *s, void *buf, size_t n,
				int64_t timeout_ns)
{
	int rc = rstart(s, buf, n, timeout_ns);
	if (rc)
		return rc;
	int64_t deadline = coil__deadline(timeout_ns);
	ssize_t r;
	for (;;) {
		size_t have = s->rend - s->rpos;
		if (have >= n) {
			if (n)
				memcpy(buf, s->rbuf + s->rpos, n);
			consume(s, n);
			r = (ssize_t)n;
			break;
		}
		if (s->rerr) {
			r = s->rerr;
			break;
		}
		if (s->eof) {
			r = COIL_EINCOMPLETE;
			break;
		}
		if (n - have > rkeep(s)) {
			r = exact_direct(s, buf, n, deadline);
			break;
		}
		if ((r = rreserve(s, n)) || (r = fill(s, deadline)) < 0)
			break;
	}
	rdone(s);
	return r;
}

static ssize_t readuntil(coil_stream_t *s, const void *sep, size_t seplen,
			 void *buf, size_t cap, int64_t timeout_ns,
			 bool line)
{
	/* cap >= seplen > 0: rstart refuses a NULL buf. */
	if (!sep || !seplen || cap < seplen)
		return -EINVAL;
	int rc = rstart(s, buf, cap, timeout_ns);
	if (rc)
		return rc;
	/* The longest return: the limit plus the separator, and what fits. */
	size_t maxline = s->limit + seplen < cap ? s->limit + seplen : cap;
	int64_t deadline = coil__deadline(timeout_ns);
	size_t scan = 0; /* bytes from rpos already searched */
	ssize_t r;
	for (;;) {
		size_t have = s->rend - s->rpos;
		/* No arithmetic on a buffer not allocated yet. */
		const char *base = s->rbuf ? s->rbuf + s->rpos : NULL;
		if (have >= seplen) {
			const char *p = memmem(base + scan, have - scan, sep, seplen);
			if (p) {
				size_t len = (size_t)(p - base) + seplen;
				if (len > maxline) {
					r = COIL_ELIMIT;
					break;
				}
				memcpy(buf, base, len);
				consume(s, len);
				r = (ssize_t)len;
				break;
			}
			/* A separator may still start in the last seplen-1
			 * bytes and end in bytes to come. */
			scan = have - seplen + 1;
		}
		if (have >= maxline) {
			r = COIL_ELIMIT;
			break;
		}
		if (s->rerr) {
			r = s->rerr;
			break;
		}
		if (s->eof) {
			if (line) { /* asyncio's readline: the last piece */
				if (have)
					memcpy(buf, base, have);
				consume(s, have);
				r = (ssize_t)have;
			} else {
				r = COIL_EINCOMPLETE;
			}
			break;
		}
		size_t want = have + s->chunk < maxline ? have + s->chunk : maxline;
		if ((r = rreserve(s, want)) || (r = fill(s, deadline)) < 0)
			break;
	}
	rdone(s);
	return r;
}

ssize_t coil_stream_readuntil(coil_stream_t *s, const void *sep, size_t seplen,
			      void *buf, size_t cap, int64_t timeout_ns)
{
	return readuntil(s, sep, seplen, buf, cap, timeout_ns, false);
}

ssize_t coil_stream_readline(coil_stream_t *s, void *buf, size_t cap,
			     int64_t timeout_ns)
{
	return readuntil(s, "\n", 1, buf, cap, timeout_ns, true);
}

bool coil_stream_at_eof(const coil_stream_t *s)
{
	return s->eof && s->rpos == s->rend;
}

size_t coil_stream_buffered(const coil_stream_t *s)
{
	return s->rend - s->rpos;
}

/* --- the write side ------------------------------------------------------- */

static int wbegin(coil_stream_t *s)
{
	if (atomic_exchange_explicit(&s->wbusy, true, memory_order_acq_rel))
		return -EBUSY;
	return 0;
}

static void wdone(coil_stream_t *s)
{
	atomic_store_explicit(&s->wbusy, false, memory_order_release);
}

/* Why the write side refuses new bytes, or 0. */
static int wstate(const coil_stream_t *s)
{
	if (atomic_load_explicit(&s->closing, memory_order_relaxed) ||
	    atomic_load_explicit(&s->fd, memory_order_relaxed) < 0)
		return COIL_ECLOSED;
	if (s->wshut)
		return -EPIPE;
	return s->werr;
}

static int wfail(coil_stream_t *s, ssize_t r)
{
	if (r == 0)
		r = -EIO; /* a send that took nothing would loop forever */
	if (!transient(r))
		s->werr = (int)r;
	return (int)r;
}

static int wappend(coil_stream_t *s, const void *buf, size_t n)
{
	size_t have = s->wend - s->wpos;
	if (s->wcap - s->wend < n) {
		if (s->wcap - have >= n) {
			memmove(s->wbuf, s->wbuf + s->wpos, have);
		} else {
			size_t ncap = have + n;
			if (ncap < s->wcap * 2)
				ncap = s->wcap * 2;
			if (ncap < WBUF_MIN)
				ncap = WBUF_MIN;
			char *nb = coil__malloc(ncap);
			if (!nb)
				return -ENOMEM;
			if (have)
				memcpy(nb, s->wbuf + s->wpos, have);
			coil__free(s->wbuf, s->wcap);
			s->wbuf = nb;
			s->wcap = ncap;
		}
		s->wpos = 0;
		s->wend = have;
	}
	memcpy(s->wbuf + s->wend, buf, n);
	s->wend += n;
	return 0;
}

/* The buffer is empty: start again at its front, and give back one that a
 * big write grew far past the high-water mark. */
static void wreset(coil_stream_t *s)
{
	s->wpos = s->wend = 0;
	if (s->wcap > 2 * s->high_water && s->wcap > WBUF_MIN) {
		coil__free(s->wbuf, s->wcap);
		s->wbuf = NULL;
		s->wcap = 0;
	}
}

static int flush(coil_stream_t *s, int64_t deadline)
{
	while (s->wpos < s->wend) {
		ssize_t r = io_write(s, s->wbuf + s->wpos, s->wend - s->wpos,
				     coil__remaining(deadline));
		if (r <= 0)
			return wfail(s, r);
		s->wpos += (size_t)r;
	}
	wreset(s);
	return 0;
}

int coil_stream_write(coil_stream_t *s, const void *buf, size_t n)
{
	if (!buf_ok(s, buf, n))
		return -EINVAL;
	int rc = wbegin(s);
	if (rc)
		return rc;
	if (!(rc = wstate(s)) && n) {
		if (s->wend - s->wpos > s->high_water)
			rc = -ENOBUFS;
		else
			rc = wappend(s, buf, n);
	}
	wdone(s);
	return rc;
}

int coil_stream_drain(coil_stream_t *s, int64_t timeout_ns)
{
	if (!s || !coil__timeout_ok(timeout_ns))
		return -EINVAL;
	int rc = wbegin(s);
	if (rc)
		return rc;
	if (atomic_load_explicit(&s->fd, memory_order_relaxed) < 0)
		rc = s->wpos < s->wend ? COIL_ECLOSED : 0;
	else if (s->werr)
		rc = s->werr;
	else if (s->wpos < s->wend)
		rc = flush(s, coil__deadline(timeout_ns));
	wdone(s);
	return rc;
}

int coil_stream_write_all(coil_stream_t *s, const void *buf, size_t n,
			  int64_t timeout_ns)
{
	if (!buf_ok(s, buf, n) || !coil__timeout_ok(timeout_ns))
		return -EINVAL;
	int rc = wbegin(s);
	if (rc)
		return rc;
	if ((rc = wstate(s))) {
		wdone(s);
		return rc;
	}
	const char *p = buf;
	size_t sent = 0;
	int64_t deadline = coil__deadline(timeout_ns);
	for (;;) {
		size_t pending = s->wend - s->wpos;
		ssize_t r;
		if (pending) {
			struct iovec iov[2] = {
				{ s->wbuf + s->wpos, pending },
				{ (void *)(p + sent), n - sent },
			};
			r = io_writev(s, iov, sent < n ? 2 : 1,
				      coil__remaining(deadline));
			if (r > 0 && (size_t)r >= pending) {
				wreset(s);
				sent += (size_t)r - pending;
			} else if (r > 0) {
				s->wpos += (size_t)r;
			}
		} else if (sent < n) {
			r = io_write(s, p + sent, n - sent, coil__remaining(deadline));
			if (r > 0)
				sent += (size_t)r;
		} else {
			break;
		}
		if (r <= 0) {
			rc = wfail(s, r);
			/* As if write() had copied buf and drain() failed:
			 * the rest stays, in order, for the next drain. */
			if (sent < n && wappend(s, p + sent, n - sent)) {
				s->werr = rc = -ENOMEM;
			}
			break;
		}
	}
	wdone(s);
	return rc;
}

size_t coil_stream_write_buffered(const coil_stream_t *s)
{
	return s->wend - s->wpos;
}

int coil_stream_write_eof(coil_stream_t *s, int64_t timeout_ns)
{
	if (!s || !coil__timeout_ok(timeout_ns))
		return -EINVAL;
	int rc = wbegin(s);
	if (rc)
		return rc;
	if (s->wshut) {
		wdone(s);
		return 0;
	}
	if ((rc = wstate(s))) {
		wdone(s);
		return rc;
	}
	int64_t deadline = coil__deadline(timeout_ns);
	if ((rc = flush(s, deadline))) {
		wdone(s);
		return rc;
	}
	int fd = atomic_load_explicit(&s->fd, memory_order_relaxed);
	if (s->is_socket) {
		rc = coil_shutdown(fd, SHUT_WR, coil__remaining(deadline));
		if (rc == 0)
			s->wshut = true;
	} else {
		/* A pipe has no half-close: its write end is closed, by the
		 * reader as it leaves if one is inside (orphan_close()). */
		atomic_store(&s->fd, -1);
		atomic_store(&s->orphan, fd);
		if (!atomic_load(&s->rbusy))
			orphan_close(s);
		s->wshut = true;
	}
	wdone(s);
	return rc;
}

/* --- closing --------------------------------------------------------------- */

void coil_stream_close(coil_stream_t *s)
{
	if (!s || atomic_exchange(&s->closing, true))
		return;
	/* A reader suspended in a receive: end it (see the top of the file). */
	if (s->is_socket && atomic_load(&s->rbusy)) {
		int fd = atomic_load_explicit(&s->fd, memory_order_relaxed);
		if (fd >= 0)
			shutdown(fd, SHUT_RD);
	}
}

bool coil_stream_is_closing(const coil_stream_t *s)
{
	return atomic_load_explicit(&((coil_stream_t *)s)->closing,
				    memory_order_relaxed);
}

int coil_stream_wait_closed(coil_stream_t *s, int64_t timeout_ns)
{
	if (!s || !coil__timeout_ok(timeout_ns))
		return -EINVAL;
	coil_stream_close(s);
	if (atomic_load_explicit(&s->fd, memory_order_relaxed) < 0)
		return 0;
	int rc = wbegin(s);
	if (rc)
		return rc;
	if (s->wpos < s->wend)
		rc = s->werr ? s->werr : flush(s, coil__deadline(timeout_ns));
	s->wpos = s->wend = 0;
	int fd = atomic_exchange_explicit(&s->fd, -1, memory_order_relaxed);
	if (fd >= 0) {
		COIL__DEBUG_FD_CLOSED(fd);
		close(fd);
	}
	wdone(s);
	return rc;
}

void coil_stream_free(coil_stream_t *s)
{
	if (!s)
		return;
	int fd = atomic_exchange_explicit(&s->fd, -1, memory_order_relaxed);
	if (fd >= 0) {
		COIL__DEBUG_FD_CLOSED(fd);
		close(fd);
	}
	orphan_close(s); /* no reader is inside: none will */
	coil__free(s->rbuf, s->rcap);
	coil__free(s->wbuf, s->wcap);
	coil__free(s, sizeof(*s));
}

int coil_stream_fd(const coil_stream_t *s)
{
	return atomic_load_explicit(&((coil_stream_t *)s)->fd, memory_order_relaxed);
}

/* --- connecting ------------------------------------------------------------ */

int coil__unix_addr(struct sockaddr_un *sun, const char *path)
{
	if (!path || !*path)
		return -EINVAL;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	size_t len = strlen(path);
	if (path[0] == '@') {
		/* The abstract namespace: a leading NUL, no terminator. */
		if (len > sizeof(sun->sun_path))
			return -ENAMETOOLONG;
		memcpy(sun->sun_path + 1, path + 1, len - 1);
		return (int)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	if (len >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, len + 1);
	return (int)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

/* Errors after which trying the next address is pointless. */
static bool stop_trying(int rc)
{
	return rc == -ETIMEDOUT || rc == -ECANCELED || rc == COIL_ECLOSED ||
	       rc == COIL_EINVALSTATE || rc == -ENOMEM;
}

int coil_open_connection(coil_stream_t **out, const char *host, int port,
			 const coil_stream_opts_t *opts, int64_t timeout_ns)
{
	if (!out || !host || port < 0 || port > 65535 ||
	    !coil__timeout_ok(timeout_ns))
		return -EINVAL;
	*out = NULL;
	coil_stream_opts_t o;
	int rc = opts_read(&o, opts);
	if (rc)
		return rc;
	int64_t deadline = coil__deadline(timeout_ns);
	char service[8];
	snprintf(service, sizeof(service), "%d", port);
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	struct addrinfo *res = NULL;
	rc = coil_getaddrinfo(host, service, &hints, &res, timeout_ns);
	if (rc)
		return rc;
	rc = COIL_ENONAME;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		rc = coil_connect(fd, ai->ai_addr, ai->ai_addrlen,
				  coil__remaining(deadline));
		if (rc == 0) {
			coil_freeaddrinfo(res);
			return coil__stream_new(out, fd, true, &o);
		}
		close(fd);
		if (stop_trying(rc))
			break;
	}
	coil_freeaddrinfo(res);
	return rc;
}

int coil_open_unix_connection(coil_stream_t **out, const char *path,
			      const coil_stream_opts_t *opts,
			      int64_t timeout_ns)
{
	if (!out || !coil__timeout_ok(timeout_ns))
		return -EINVAL;
	*out = NULL;
	coil_stream_opts_t o;
	int rc = opts_read(&o, opts);
	if (rc)
		return rc;
	struct sockaddr_un sun;
	int len = coil__unix_addr(&sun, path);
	if (len < 0)
		return len;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = coil_connect(fd, (struct sockaddr *)&sun, (socklen_t)len, timeout_ns);
	if (rc) {
		close(fd);
		return rc;
	}
	return coil__stream_new(out, fd, true, &o);
}
