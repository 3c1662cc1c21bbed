/*
 * tests/test_stream.c: streams (coil/stream.h), open_connection and
 * coil_getaddrinfo, over loopback TCP (IPv4 and IPv6), Unix sockets and
 * pipes.
 *
 * Reads: read, readexactly, readline, readuntil, their limits, the end of
 * the stream, timeouts, and cancellation of a task suspended in a read
 * (the bytes it had received are still there afterwards). Writes: write,
 * drain, write_all, write_eof; backpressure against a peer that does not
 * read (drain waits, write refuses past the high-water mark, memory stays
 * bounded, and nothing is lost or sent twice once the peer reads). Faults:
 * a peer reset, closed streams, bad arguments. Name resolution: numeric,
 * through the resolver threads, and with a resolver held back by the test
 * (timeout and cancellation return at once and leak nothing).
 *
 * Everything runs on one loop (coil_run), so a test can look at a stream
 * another of its tasks is reading without a race. Waits for a condition
 * poll it with 1 ms sleeps; the real clock is asserted only where a
 * timeout itself is under test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "coil/coil.h"
#include "coil/io.h"
#include "stream_int.h"
#include "test.h"

#define SEC COIL_NSEC_PER_SEC
#define MS (COIL_NSEC_PER_SEC / 1000)

/* --- helpers ------------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static void run(coil_fn fn)
{
	int rc = coil_run(fn, NULL, NULL, NULL);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
}

/* A listening socket on the loopback address of `family`, port picked by
 * the kernel; sndbuf/rcvbuf > 0 shrink the buffers (accepted sockets
 * inherit them). Returns the fd, or -1 if the family is unavailable. */
static int listen_loopback(int family, int *port, int rcvbuf)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* A connected loopback TCP pair made with plain calls (a loopback connect
 * completes at once), with small kernel buffers when bufsize > 0. */
static void tcp_pair(int fds[2], int bufsize)
{
	int port;
	int l = listen_loopback(AF_INET, &port, bufsize);
	ASSERT(l >= 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT(c >= 0);
	if (bufsize > 0) {
		setsockopt(c, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
		setsockopt(c, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
	}
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ASSERT(s >= 0);
	close(l);
	fds[0] = c;
	fds[1] = s;
}

static void stream_pair(coil_stream_t **a, coil_stream_t **b,
			const coil_stream_opts_t *o, int bufsize)
{
	int fds[2];
	tcp_pair(fds, bufsize);
	ASSERT_EQ(coil_stream_from_fd(a, fds[0], o), 0);
	ASSERT_EQ(coil_stream_from_fd(b, fds[1], o), 0);
}

static void close_stream(coil_stream_t *s)
{
	coil_stream_close(s);
	coil_stream_wait_closed(s, SEC);
	coil_stream_free(s);
}

/* The byte at position i of the test streams. */
static uint8_t pat(size_t i)
{
	return (uint8_t)(i * 131 + (i >> 9) + 7);
}

static void fill_pat(uint8_t *p, size_t from, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(from + i);
}

/* Reads `want` bytes of the pattern from s in reads of odd sizes and
 * checks every byte; returns how many came before the end. */
typedef struct drainer {
	coil_stream_t *s;
	size_t want, got;
	int rc;
} drainer_t;

static int drainer_task(void *arg, void **res)
{
	(void)res;
	drainer_t *d = arg;
	uint8_t buf[7000];
	size_t sizes[] = { 1, 100, 4096, 7000, 333 };
	for (unsigned k = 0; d->got < d->want; k++) {
		ssize_t n = coil_stream_read(d->s, buf, sizes[k % 5], 10 * SEC);
		if (n <= 0) {
			d->rc = (int)n;
			return 0;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pat(d->got + (size_t)i)) {
				d->rc = -EILSEQ;
				return 0;
			}
		d->got += (size_t)n;
	}
	return 0;
}

static void await_task(coil_task_t *t)
{
	void *r;
	coil_await(coil_task_future(t), &r);
	coil_task_detach(t);
}

/* --- reads --------------------------------------------------------------- */

static int body_read_basic(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, NULL, 0);
	char buf[64];
	ASSERT_EQ(coil_stream_write_all(a, "hello", 5, SEC), 0);
	ASSERT_EQ(coil_stream_read(b, buf, sizeof(buf), SEC), 5);
	ASSERT(!memcmp(buf, "hello", 5));
	ASSERT_EQ(coil_stream_read(b, buf, 0, SEC), 0);
	/* A short read leaves the rest buffered, in order. */
	ASSERT_EQ(coil_stream_write_all(a, "abcdef", 6, SEC), 0);
	ASSERT_EQ(coil_stream_read(b, buf, 2, SEC), 2);
	ASSERT_EQ(coil_stream_buffered(b), 4);
	ASSERT_EQ(coil_stream_read(b, buf + 2, sizeof(buf), SEC), 4);
	ASSERT(!memcmp(buf, "abcdef", 6));
	ASSERT(!coil_stream_at_eof(b));
	ASSERT_EQ(coil_stream_write_eof(a, SEC), 0);
	ASSERT_EQ(coil_stream_read(b, buf, sizeof(buf), SEC), 0);
	ASSERT(coil_stream_at_eof(b));
	ASSERT_EQ(coil_stream_read(b, buf, sizeof(buf), SEC), 0);
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(read_basic) { run(body_read_basic); }

/* 1 MiB both ways through reads of odd sizes and big reads that skip the
 * buffer: every byte in order. */
static int body_read_bulk(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, NULL, 0);
	size_t total = 1 << 20;
	uint8_t *src = malloc(total);
	fill_pat(src, 0, total);
	drainer_t d = { .s = b, .want = total };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, drainer_task, &d, NULL), 0);
	for (size_t off = 0; off < total; off += 65536)
		ASSERT_EQ(coil_stream_write_all(a, src + off, 65536, 10 * SEC), 0);
	await_task(t);
	ASSERT_EQ(d.rc, 0);
	ASSERT_EQ(d.got, total);
	/* Big reads, straight into the caller's buffer. */
	ASSERT_EQ(coil_stream_write_all(b, src, total, 10 * SEC), 0);
	uint8_t *dst = malloc(total);
	size_t got = 0;
	while (got < total) {
		ssize_t n = coil_stream_read(a, dst + got, total - got, 10 * SEC);
		ASSERT_GT(n, 0);
		got += (size_t)n;
	}
	ASSERT(!memcmp(src, dst, total));
	free(src);
	free(dst);
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(read_bulk) { run(body_read_bulk); }

static int body_readexactly(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, NULL, 0);
	enum { BIG = 100000 };
	char *buf = malloc(BIG);
	ASSERT_EQ(coil_stream_write_all(a, "0123456789", 10, SEC), 0);
	ASSERT_EQ(coil_stream_readexactly(b, buf, 4, SEC), 4);
	ASSERT_EQ(coil_stream_readexactly(b, buf + 4, 6, SEC), 6);
	ASSERT(!memcmp(buf, "0123456789", 10));
	ASSERT_EQ(coil_stream_readexactly(b, buf, 0, SEC), 0);
	/* More than the read buffer holds: it grows. */
	uint8_t *big = malloc(BIG);
	fill_pat(big, 0, BIG);
	ASSERT_EQ(coil_stream_write_all(a, big, BIG, SEC), 0);
	ASSERT_EQ(coil_stream_readexactly(b, buf, BIG, SEC), BIG);
	ASSERT(!memcmp(buf, big, BIG));
	free(big);
	/* The end comes first: COIL_EINCOMPLETE, and the partial data stays. */
	ASSERT_EQ(coil_stream_write_all(a, "xyz", 3, SEC), 0);
	ASSERT_EQ(coil_stream_write_eof(a, SEC), 0);
	ASSERT_EQ(coil_stream_readexactly(b, buf, 5, SEC), COIL_EINCOMPLETE);
	ASSERT_EQ(coil_stream_buffered(b), 3);
	ASSERT_EQ(coil_stream_readexactly(b, buf, 5, SEC), COIL_EINCOMPLETE);
	ASSERT_EQ(coil_stream_read(b, buf, BIG, SEC), 3);
	ASSERT(!memcmp(buf, "xyz", 3));
	ASSERT(coil_stream_at_eof(b));
	free(buf);
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(readexactly) { run(body_readexactly); }

/* Counts larger than the buffer keeps go straight into the caller's
 * buffer; a failed call puts the bytes back. */
static int body_readexactly_large(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_opts_t o;
	coil_stream_opts_init(&o);
	o.limit = 1024;
	o.read_buffer = 1024;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, &o, 0);
	enum { N = 10000 };
	uint8_t src[N], *buf = malloc(N);
	fill_pat(src, 0, N);
	ASSERT_EQ(coil_stream_write_all(a, src, 4000, SEC), 0);
	ASSERT_EQ(coil_stream_readexactly(b, buf, N, 50 * MS), -ETIMEDOUT);
	ASSERT_EQ(coil_stream_buffered(b), 4000);
	ASSERT_EQ(coil_stream_write_all(a, src + 4000, N - 4000, SEC), 0);
	ASSERT_EQ(coil_stream_readexactly(b, buf, N, SEC), N);
	ASSERT(!memcmp(buf, src, N));
	/* Some bytes buffered first, then the end of the stream. */
	ASSERT_EQ(coil_stream_write_all(a, src, 100, SEC), 0);
	ASSERT_EQ(coil_stream_read(b, buf, 10, SEC), 10);
	ASSERT_EQ(coil_stream_write_all(a, src + 100, 5000, SEC), 0);
	ASSERT_EQ(coil_stream_write_eof(a, SEC), 0);
	ASSERT_EQ(coil_stream_readexactly(b, buf, N, SEC), COIL_EINCOMPLETE);
	ASSERT_EQ(coil_stream_buffered(b), 5090);
	ASSERT_EQ(coil_stream_readexactly(b, buf, 5090, SEC), 5090);
	ASSERT(!memcmp(buf, src + 10, 5090));
	ASSERT(coil_stream_at_eof(b));
	free(buf);
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(readexactly_large) { run(body_readexactly_large); }

static int body_readline(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, NULL, 0);
	char buf[256];
	const char *text = "one\ntwo\nthr";
	ASSERT_EQ(coil_stream_write_all(a, text, strlen(text), SEC), 0);
	ASSERT_EQ(coil_stream_readline(b, buf, sizeof(buf), SEC), 4);
	ASSERT(!memcmp(buf, "one\n", 4));
	ASSERT_EQ(coil_stream_readline(b, buf, sizeof(buf), SEC), 4);
	ASSERT(!memcmp(buf, "two\n", 4));
	/* A line split over two sends. */
	ASSERT_EQ(coil_stream_write_all(a, "ee\nfour", 7, SEC), 0);
	ASSERT_EQ(coil_stream_readline(b, buf, sizeof(buf), SEC), 6);
	ASSERT(!memcmp(buf, "three\n", 6));
	/* At the end the last piece comes without its newline, then 0. */
	ASSERT_EQ(coil_stream_write_eof(a, SEC), 0);
	ASSERT_EQ(coil_stream_readline(b, buf, sizeof(buf), SEC), 4);
	ASSERT(!memcmp(buf, "four", 4));
	ASSERT_EQ(coil_stream_readline(b, buf, sizeof(buf), SEC), 0);
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(readline) { run(body_readline); }

/* A separator of several bytes, split between sends; the end of the
 * stream before a separator is COIL_EINCOMPLETE and keeps the data. */
static int body_readuntil(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, NULL, 0);
	char buf[256];
	ASSERT_EQ(coil_stream_write_all(a, "GET / HTTP/1.1\r\nHost: x\r", 24, SEC), 0);
	ASSERT_EQ(coil_stream_readuntil(b, "\r\n\r\n", 4, buf, sizeof(buf), 30 * MS),
		  -ETIMEDOUT);
	ASSERT_EQ(coil_stream_buffered(b), 24);
	ASSERT_EQ(coil_stream_write_all(a, "\n\r\nbody", 7, SEC), 0);
	ASSERT_EQ(coil_stream_readuntil(b, "\r\n\r\n", 4, buf, sizeof(buf), SEC), 27);
	ASSERT(!memcmp(buf, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27));
	ASSERT_EQ(coil_stream_write_eof(a, SEC), 0);
	ASSERT_EQ(coil_stream_readuntil(b, "\r\n\r\n", 4, buf, sizeof(buf), SEC),
		  COIL_EINCOMPLETE);
	ASSERT_EQ(coil_stream_buffered(b), 4);
	ASSERT_EQ(coil_stream_read(b, buf, sizeof(buf), SEC), 4);
	ASSERT(!memcmp(buf, "body", 4));
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(readuntil) { run(body_readuntil); }

/* A line longer than the limit (or than the caller's buffer) is
 * COIL_ELIMIT and loses nothing: read() gets every byte afterwards. */
static int body_readline_limit(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_opts_t o;
	coil_stream_opts_init(&o);
	o.limit = 16;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, &o, 0);
	char buf[256];
	const char *text = "short\nthis line is longer than sixteen bytes\nend\n";
	size_t len = strlen(text);
	ASSERT_EQ(coil_stream_write_all(a, text, len, SEC), 0);
	ASSERT_EQ(coil_stream_readline(b, buf, sizeof(buf), SEC), 6);
	ASSERT_EQ(coil_stream_readline(b, buf, sizeof(buf), SEC), COIL_ELIMIT);
	ASSERT_EQ(coil_stream_readline(b, buf, sizeof(buf), SEC), COIL_ELIMIT);
	size_t got = 0;
	while (got < len - 6) {
		ssize_t n = coil_stream_read(b, buf + got, 10, SEC);
		ASSERT_GT(n, 0);
		got += (size_t)n;
	}
	ASSERT(!memcmp(buf, text + 6, len - 6));
	/* The caller's buffer is the other bound. */
	ASSERT_EQ(coil_stream_write_all(a, "0123456789\n", 11, SEC), 0);
	ASSERT_EQ(coil_stream_readline(b, buf, 8, SEC), COIL_ELIMIT);
	ASSERT_EQ(coil_stream_buffered(b), 11);
	ASSERT_EQ(coil_stream_readline(b, buf, 11, SEC), 11);
	/* Exactly the limit is fine. */
	ASSERT_EQ(coil_stream_write_all(a, "abcdefghijklmnop\n", 17, SEC), 0);
	ASSERT_EQ(coil_stream_readline(b, buf, sizeof(buf), SEC), 17);
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(readline_limit) { run(body_readline_limit); }

static int body_read_timeouts(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, NULL, 0);
	char buf[64];
	int64_t t0 = now_ns();
	ASSERT_EQ(coil_stream_read(b, buf, sizeof(buf), 30 * MS), -ETIMEDOUT);
	int64_t dt = now_ns() - t0;
	ASSERT_GE(dt, 25 * MS);
	ASSERT_LT(dt, 5 * SEC);
	ASSERT_EQ(coil_stream_read(b, buf, sizeof(buf), 0), -ETIMEDOUT);
	ASSERT_EQ(coil_stream_readexactly(b, buf, 10, 20 * MS), -ETIMEDOUT);
	ASSERT_EQ(coil_stream_readline(b, buf, sizeof(buf), 20 * MS), -ETIMEDOUT);
	/* A deadline bounds the whole call: bytes trickling in do not extend
	 * it, and what came stays buffered. */
	ASSERT_EQ(coil_stream_write_all(a, "abc", 3, SEC), 0);
	t0 = now_ns();
	ASSERT_EQ(coil_stream_readexactly(b, buf, 10, 40 * MS), -ETIMEDOUT);
	ASSERT_LT(now_ns() - t0, 5 * SEC);
	ASSERT_EQ(coil_stream_buffered(b), 3);
	/* Timeout 0 still takes what is there. */
	ASSERT_EQ(coil_stream_readexactly(b, buf, 3, 0), 3);
	ASSERT_EQ(coil_stream_drain(a, 0), 0);
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(read_timeouts) { run(body_read_timeouts); }

typedef struct reader {
	coil_stream_t *s;
	size_t n;
	char buf[64];
	ssize_t rc;
} reader_t;

static int exact_task(void *arg, void **res)
{
	(void)res;
	reader_t *r = arg;
	r->rc = coil_stream_readexactly(r->s, r->buf, r->n, COIL_FOREVER);
	return 0;
}

static int read_task(void *arg, void **res)
{
	(void)res;
	reader_t *r = arg;
	r->rc = coil_stream_read(r->s, r->buf, sizeof(r->buf), COIL_FOREVER);
	return 0;
}

/* A task cancelled in the middle of a readexactly: the call returns
 * -ECANCELED, and the bytes it had received are read afterwards. */
static int body_read_cancel(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, NULL, 0);
	reader_t r = { .s = b, .n = 10 };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, exact_task, &r, NULL), 0);
	ASSERT_EQ(coil_stream_write_all(a, "abcd", 4, SEC), 0);
	while (coil_stream_buffered(b) < 4)
		coil_sleep(0.001);
	ASSERT(coil_task_cancel(t, NULL));
	await_task(t);
	ASSERT_EQ(r.rc, -ECANCELED);
	ASSERT_EQ(coil_stream_buffered(b), 4);
	ASSERT_EQ(coil_stream_write_all(a, "efghij", 6, SEC), 0);
	char buf[16];
	ASSERT_EQ(coil_stream_readexactly(b, buf, 10, SEC), 10);
	ASSERT(!memcmp(buf, "abcdefghij", 10));
	/* A plain read cancelled with nothing in flight loses nothing either. */
	reader_t r2 = { .s = b };
	ASSERT_EQ(coil_spawn(&t, read_task, &r2, NULL), 0);
	coil_sleep(0.002);
	coil_task_cancel(t, NULL);
	await_task(t);
	ASSERT_EQ(r2.rc, -ECANCELED);
	ASSERT_EQ(coil_stream_write_all(a, "k", 1, SEC), 0);
	ASSERT_EQ(coil_stream_read(b, buf, sizeof(buf), SEC), 1);
	ASSERT_EQ(buf[0], 'k');
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(read_cancel_keeps_data) { run(body_read_cancel); }

/* --- writes -------------------------------------------------------------- */

/* A peer that does not read: write refuses past the high-water mark,
 * drain waits (here until its timeout), the buffer stays bounded; once the
 * peer reads, every byte arrives once, in order. */
static int body_backpressure(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_opts_t o;
	coil_stream_opts_init(&o);
	o.high_water = 16384;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, &o, 4096);
	uint8_t chunk[8192];
	size_t written = 0;
	int drc = 0;
	for (int round = 0; round < 10000 && drc != -ETIMEDOUT; round++) {
		int rc;
		while (fill_pat(chunk, written, sizeof(chunk)),
		       (rc = coil_stream_write(a, chunk, sizeof(chunk))) == 0)
			written += sizeof(chunk);
		ASSERT_EQ(rc, -ENOBUFS);
		ASSERT_LE(coil_stream_write_buffered(a), o.high_water + sizeof(chunk));
		drc = coil_stream_drain(a, 20 * MS);
		ASSERT(drc == 0 || drc == -ETIMEDOUT);
	}
	ASSERT_EQ(drc, -ETIMEDOUT);
	ASSERT_GT(coil_stream_write_buffered(a), 0);
	ASSERT_LE(coil_stream_write_buffered(a), o.high_water + sizeof(chunk));
	drainer_t d = { .s = b, .want = written };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, drainer_task, &d, NULL), 0);
	ASSERT_EQ(coil_stream_drain(a, 10 * SEC), 0);
	ASSERT_EQ(coil_stream_write_buffered(a), 0);
	await_task(t);
	ASSERT_EQ(d.rc, 0);
	ASSERT_EQ(d.got, written);
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(drain_backpressure) { run(body_backpressure); }

/* write_all that times out keeps exactly the unsent rest; drain sends it. */
static int body_write_all_timeout(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, NULL, 4096);
	size_t total = 4 << 20;
	uint8_t *big = malloc(total);
	fill_pat(big, 0, 10);
	ASSERT_EQ(coil_stream_write(a, big, 10), 0);
	fill_pat(big, 10, total - 10);
	ASSERT_EQ(coil_stream_write_all(a, big, total - 10, 30 * MS), -ETIMEDOUT);
	size_t left = coil_stream_write_buffered(a);
	ASSERT_GT(left, 0);
	ASSERT_LT(left, total);
	free(big); /* the stream kept its own copy of the rest */
	drainer_t d = { .s = b, .want = total };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, drainer_task, &d, NULL), 0);
	ASSERT_EQ(coil_stream_drain(a, 30 * SEC), 0);
	ASSERT_EQ(coil_stream_write_eof(a, SEC), 0);
	await_task(t);
	ASSERT_EQ(d.rc, 0);
	ASSERT_EQ(d.got, total);
	char c;
	ASSERT_EQ(coil_stream_read(b, &c, 1, SEC), 0);
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(write_all_timeout_keeps_rest) { run(body_write_all_timeout); }

/* Half-close: after write_eof the peer reads the end and can still answer. */
static int body_write_eof(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, NULL, 0);
	char buf[64];
	ASSERT_EQ(coil_stream_write(a, "request", 7), 0);
	ASSERT_EQ(coil_stream_write_eof(a, SEC), 0);
	ASSERT_EQ(coil_stream_write_eof(a, SEC), 0);
	ASSERT_EQ(coil_stream_write(a, "x", 1), -EPIPE);
	ASSERT_EQ(coil_stream_write_all(a, "x", 1, SEC), -EPIPE);
	ASSERT_EQ(coil_stream_readexactly(b, buf, 7, SEC), 7);
	ASSERT_EQ(coil_stream_read(b, buf, sizeof(buf), SEC), 0);
	ASSERT_EQ(coil_stream_write_all(b, "reply", 5, SEC), 0);
	ASSERT_EQ(coil_stream_readexactly(a, buf, 5, SEC), 5);
	ASSERT(!memcmp(buf, "reply", 5));
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(write_eof_half_close) { run(body_write_eof); }

/* --- closing and faults ---------------------------------------------------- */

static int body_close(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, NULL, 0);
	reader_t r = { .s = b };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, read_task, &r, NULL), 0);
	coil_sleep(0.002); /* the reader is suspended in its receive */
	char buf[8];
	ASSERT_EQ(coil_stream_read(b, buf, sizeof(buf), SEC), -EBUSY);
	ASSERT(!coil_stream_is_closing(b));
	coil_stream_close(b);
	coil_stream_close(b);
	ASSERT(coil_stream_is_closing(b));
	await_task(t);
	ASSERT_EQ(r.rc, COIL_ECLOSED);
	ASSERT_EQ(coil_stream_read(b, buf, sizeof(buf), SEC), COIL_ECLOSED);
	ASSERT_EQ(coil_stream_write(b, "x", 1), COIL_ECLOSED);
	ASSERT_EQ(coil_stream_wait_closed(b, SEC), 0);
	ASSERT_EQ(coil_stream_fd(b), -1);
	ASSERT_EQ(coil_stream_wait_closed(b, SEC), 0);
	ASSERT_EQ(coil_stream_drain(b, SEC), 0);
	coil_stream_free(b);
	/* Bytes written before close are sent by wait_closed. */
	coil_stream_t *c, *d;
	stream_pair(&c, &d, NULL, 0);
	ASSERT_EQ(coil_stream_write(c, "bye", 3), 0);
	coil_stream_close(c);
	ASSERT_EQ(coil_stream_wait_closed(c, SEC), 0);
	coil_stream_free(c);
	ASSERT_EQ(coil_stream_readexactly(d, buf, 3, SEC), 3);
	ASSERT_EQ(coil_stream_read(d, buf, sizeof(buf), SEC), 0);
	close_stream(d);
	close_stream(a);
	return 0;
}

TEST(close_wakes_reader_and_flushes) { run(body_close); }

/* A peer reset in the middle of a line: the error comes after the bytes
 * already buffered, and stays; writes get it too. */
static int body_reset(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, NULL, 0);
	char buf[64];
	ASSERT_EQ(coil_stream_write_all(a, "abc", 3, SEC), 0);
	ASSERT_EQ(coil_stream_readline(b, buf, sizeof(buf), 20 * MS), -ETIMEDOUT);
	ASSERT_EQ(coil_stream_buffered(b), 3);
	struct linger lg = { 1, 0 }; /* close with a reset */
	ASSERT_EQ(setsockopt(coil_stream_fd(a), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	coil_stream_free(a);
	ASSERT_EQ(coil_stream_readline(b, buf, sizeof(buf), SEC), -ECONNRESET);
	ASSERT_EQ(coil_stream_read(b, buf, sizeof(buf), SEC), 3);
	ASSERT(!memcmp(buf, "abc", 3));
	ASSERT_EQ(coil_stream_read(b, buf, sizeof(buf), SEC), -ECONNRESET);
	ASSERT_EQ(coil_stream_readexactly(b, buf, 1, SEC), -ECONNRESET);
	int rc = coil_stream_write_all(b, "x", 1, SEC);
	ASSERT(rc == -EPIPE || rc == -ECONNRESET);
	ASSERT_EQ(coil_stream_write(b, "y", 1), rc);
	ASSERT_EQ(coil_stream_drain(b, SEC), rc);
	ASSERT_EQ(coil_stream_wait_closed(b, SEC), rc); /* "x" was never sent */
	coil_stream_free(b);
	return 0;
}

TEST(peer_reset) { run(body_reset); }

static int body_bad_args(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_stream_t *a, *b;
	stream_pair(&a, &b, NULL, 0);
	char buf[8];
	size_t huge = (size_t)SSIZE_MAX + 1;
	ASSERT_EQ(coil_stream_read(b, buf, huge, SEC), -EINVAL);
	ASSERT_EQ(coil_stream_read(b, NULL, 4, SEC), -EINVAL);
	ASSERT_EQ(coil_stream_read(b, buf, 4, -5), -EINVAL);
	ASSERT_EQ(coil_stream_readexactly(b, buf, huge, SEC), -EINVAL);
	ASSERT_EQ(coil_stream_readuntil(b, "", 0, buf, 8, SEC), -EINVAL);
	ASSERT_EQ(coil_stream_readuntil(b, "abc", 3, buf, 2, SEC), -EINVAL);
	ASSERT_EQ(coil_stream_readuntil(b, "a", 1, buf, huge, SEC), -EINVAL);
	ASSERT_EQ(coil_stream_readline(b, NULL, 8, SEC), -EINVAL);
	ASSERT_EQ(coil_stream_write(a, buf, huge), -EINVAL);
	ASSERT_EQ(coil_stream_write(a, NULL, 1), -EINVAL);
	ASSERT_EQ(coil_stream_write_all(a, buf, huge, SEC), -EINVAL);
	ASSERT_EQ(coil_stream_drain(a, -2), -EINVAL);
	ASSERT_EQ(coil_stream_write_eof(a, -2), -EINVAL);
	ASSERT_EQ(coil_stream_wait_closed(a, -2), -EINVAL);
	/* Nothing above touched the streams. */
	ASSERT_EQ(coil_stream_write_all(a, "ok", 2, SEC), 0);
	ASSERT_EQ(coil_stream_readexactly(b, buf, 2, SEC), 2);
	coil_stream_t *s = NULL;
	ASSERT_EQ(coil_stream_from_fd(&s, -1, NULL), -EINVAL);
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	close(fd);
	ASSERT_EQ(coil_stream_from_fd(&s, fd, NULL), -EBADF);
	coil_stream_opts_t o;
	coil_stream_opts_init(&o);
	o.limit = (size_t)-1;
	ASSERT_EQ(coil_stream_from_fd(&s, open("/dev/null", O_RDWR | O_CLOEXEC), &o),
		  -EINVAL);
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", 70000, NULL, SEC), -EINVAL);
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", -1, NULL, SEC), -EINVAL);
	ASSERT_EQ(coil_open_connection(&s, NULL, 80, NULL, SEC), -EINVAL);
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", 80, NULL, -3), -EINVAL);
	ASSERT_EQ(coil_open_unix_connection(&s, "", NULL, SEC), -EINVAL);
	char longpath[200];
	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	ASSERT_EQ(coil_open_unix_connection(&s, longpath, NULL, SEC), -ENAMETOOLONG);
	close_stream(a);
	close_stream(b);
	return 0;
}

TEST(bad_arguments) { run(body_bad_args); }

/* Pipes are not sockets: read and write at the file position, in blocking
 * and non-blocking mode; write_eof closes the write end. */
static int body_pipe(void *arg, void **res)
{
	(void)arg; (void)res;
	for (int nb = 0; nb < 2; nb++) {
		int p[2];
		ASSERT_EQ(pipe2(p, O_CLOEXEC | (nb ? O_NONBLOCK : 0)), 0);
		coil_stream_t *r, *w;
		ASSERT_EQ(coil_stream_from_fd(&r, p[0], NULL), 0);
		ASSERT_EQ(coil_stream_from_fd(&w, p[1], NULL), 0);
		reader_t rd = { .s = r, .n = 12 };
		coil_task_t *t;
		ASSERT_EQ(coil_spawn(&t, exact_task, &rd, NULL), 0);
		coil_sleep(0.002); /* the reader waits on an empty pipe */
		ASSERT_EQ(coil_stream_write_all(w, "line1\nline2\n", 12, SEC), 0);
		await_task(t);
		ASSERT_EQ(rd.rc, 12);
		ASSERT(!memcmp(rd.buf, "line1\nline2\n", 12));
		ASSERT_EQ(coil_stream_write(w, "tail\n", 5), 0);
		ASSERT_EQ(coil_stream_write_eof(w, SEC), 0);
		ASSERT_EQ(coil_stream_fd(w), -1);
		char buf[16];
		ASSERT_EQ(coil_stream_readline(r, buf, sizeof(buf), SEC), 5);
		ASSERT_EQ(coil_stream_readline(r, buf, sizeof(buf), SEC), 0);
		ASSERT(coil_stream_at_eof(r));
		close_stream(w);
		close_stream(r);
	}
	return 0;
}

TEST(pipe_stream) { run(body_pipe); }

/* --- connecting ------------------------------------------------------------ */

typedef struct echo_once {
	int lfd;
	int rc;
} echo_once_t;

/* Accepts one connection and echoes one line back. */
static int echo_once_task(void *arg, void **res)
{
	(void)res;
	echo_once_t *e = arg;
	int fd = coil_accept(e->lfd, NULL, NULL, 0, 10 * SEC);
	if (fd < 0) {
		e->rc = fd;
		return 0;
	}
	coil_stream_t *s;
	ASSERT_EQ(coil_stream_from_fd(&s, fd, NULL), 0);
	char line[128];
	ssize_t n = coil_stream_readline(s, line, sizeof(line), 10 * SEC);
	e->rc = n > 0 ? coil_stream_write_all(s, line, (size_t)n, 10 * SEC) : (int)n;
	close_stream(s);
	return 0;
}

/* Connects to host:port (served by an echo_once task on lfd) and checks a
 * line's round trip and TCP_NODELAY. */
static void connect_echo(int lfd, const char *host, int port)
{
	echo_once_t e = { .lfd = lfd };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, echo_once_task, &e, NULL), 0);
	coil_stream_t *s = NULL;
	ASSERT_EQ(coil_open_connection(&s, host, port, NULL, 10 * SEC), 0);
	int one = 0;
	socklen_t len = sizeof(one);
	ASSERT_EQ(getsockopt(coil_stream_fd(s), IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
	ASSERT_EQ(one, 1);
	ASSERT_EQ(coil_stream_write_all(s, "ping\n", 5, SEC), 0);
	char buf[16];
	ASSERT_EQ(coil_stream_readline(s, buf, sizeof(buf), 10 * SEC), 5);
	ASSERT(!memcmp(buf, "ping\n", 5));
	close_stream(s);
	await_task(t);
	ASSERT_EQ(e.rc, 0);
}

static int body_open_connection(void *arg, void **res)
{
	(void)arg; (void)res;
	int port;
	int l4 = listen_loopback(AF_INET, &port, 0);
	ASSERT(l4 >= 0);
	connect_echo(l4, "127.0.0.1", port);
	connect_echo(l4, "localhost", port); /* through a resolver thread */
	close(l4);
	/* Nobody listens there any more. */
	coil_stream_t *s = NULL;
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", port, NULL, 10 * SEC),
		  -ECONNREFUSED);
	ASSERT(s == NULL);
	int l6 = listen_loopback(AF_INET6, &port, 0);
	if (l6 < 0) {
		fprintf(stderr, "  no IPv6 loopback: ::1 not tested\n");
		return 0;
	}
	connect_echo(l6, "::1", port);
	close(l6);
	return 0;
}

TEST(open_connection_ipv4_ipv6)
{
	run(body_open_connection);
	coil__dns_shutdown(); /* no resolver thread left for the leak checkers */
}

/* A listener whose accept queue is full drops new SYNs, so a connect
 * hangs until its timeout. */
static int body_connect_timeout(void *arg, void **res)
{
	(void)arg; (void)res;
	int port;
	int l = listen_loopback(AF_INET, &port, 0);
	ASSERT(l >= 0);
	ASSERT_EQ(listen(l, 0), 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fill[4];
	for (int i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		connect(fill[i], (struct sockaddr *)&a, sizeof(a));
	}
	coil_stream_t *s = NULL;
	int64_t t0 = now_ns();
	int rc = coil_open_connection(&s, "127.0.0.1", port, NULL, 50 * MS);
	int64_t dt = now_ns() - t0;
	ASSERT_EQ(rc, -ETIMEDOUT);
	ASSERT_GE(dt, 40 * MS);
	ASSERT_LT(dt, 5 * SEC);
	for (int i = 0; i < 4; i++)
		close(fill[i]);
	close(l);
	return 0;
}

TEST(connect_timeout) { run(body_connect_timeout); }

static int unix_listener(struct sockaddr_un *sun, const char *path)
{
	int len = coil__unix_addr(sun, path);
	ASSERT_GT(len, 0);
	if (path[0] != '@')
		unlink(path);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT(l >= 0);
	ASSERT_EQ(bind(l, (struct sockaddr *)sun, (socklen_t)len), 0);
	ASSERT_EQ(listen(l, 16), 0);
	return l;
}

static void unix_echo(const char *path)
{
	struct sockaddr_un sun;
	int l = unix_listener(&sun, path);
	echo_once_t e = { .lfd = l };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, echo_once_task, &e, NULL), 0);
	coil_stream_t *s = NULL;
	ASSERT_EQ(coil_open_unix_connection(&s, path, NULL, 10 * SEC), 0);
	ASSERT_EQ(coil_stream_write_all(s, "hi unix\n", 8, SEC), 0);
	char buf[16];
	ASSERT_EQ(coil_stream_readline(s, buf, sizeof(buf), 10 * SEC), 8);
	ASSERT(!memcmp(buf, "hi unix\n", 8));
	close_stream(s);
	await_task(t);
	ASSERT_EQ(e.rc, 0);
	close(l);
	if (path[0] != '@')
		unlink(path);
}

static int body_unix(void *arg, void **res)
{
	(void)arg; (void)res;
	char path[64];
	snprintf(path, sizeof(path), "/tmp/coil-test-stream-%d.sock", (int)getpid());
	unix_echo(path);
	snprintf(path, sizeof(path), "@coil-test-stream-%d", (int)getpid());
	unix_echo(path);
	coil_stream_t *s = NULL;
	snprintf(path, sizeof(path), "/tmp/coil-test-none-%d.sock", (int)getpid());
	ASSERT_EQ(coil_open_unix_connection(&s, path, NULL, SEC), -ENOENT);
	return 0;
}

TEST(unix_connection) { run(body_unix); }

/* --- name resolution ------------------------------------------------------- */

static int port_of(const struct addrinfo *ai)
{
	if (ai->ai_family == AF_INET)
		return ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port);
	return ntohs(((struct sockaddr_in6 *)ai->ai_addr)->sin6_port);
}

static int body_gai(void *arg, void **res)
{
	(void)arg; (void)res;
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	ASSERT_EQ(coil_getaddrinfo("127.0.0.1", "8080", &hints, &ai, SEC), 0);
	ASSERT_EQ(ai->ai_family, AF_INET);
	ASSERT_EQ(port_of(ai), 8080);
	coil_freeaddrinfo(ai);
	ASSERT_EQ(coil_getaddrinfo("::1", "80", &hints, &ai, 0), 0);
	ASSERT_EQ(ai->ai_family, AF_INET6);
	ASSERT(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr));
	coil_freeaddrinfo(ai);
	hints.ai_flags = AI_PASSIVE;
	ASSERT_EQ(coil_getaddrinfo(NULL, "0", &hints, &ai, SEC), 0);
	coil_freeaddrinfo(ai);
	/* A name: the resolver threads, several lookups at once. */
	hints.ai_flags = 0;
	hints.ai_family = AF_INET;
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(coil_getaddrinfo("localhost", "443", &hints, &ai, 10 * SEC), 0);
		ASSERT_EQ(ai->ai_family, AF_INET);
		ASSERT_EQ(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr,
			  htonl(INADDR_LOOPBACK));
		ASSERT_EQ(port_of(ai), 443);
		coil_freeaddrinfo(ai);
	}
	ASSERT_EQ(coil_getaddrinfo("localhost", "1", &hints, &ai, 0), -ETIMEDOUT);
	ASSERT_EQ(coil_getaddrinfo(NULL, NULL, &hints, &ai, SEC), -EINVAL);
	ASSERT_EQ(coil_getaddrinfo("localhost", "1", &hints, NULL, SEC), -EINVAL);
	ASSERT_EQ(coil_getaddrinfo("localhost", "1", &hints, &ai, -7), -EINVAL);
	coil_freeaddrinfo(NULL);
	return 0;
}

TEST(getaddrinfo_basic)
{
	run(body_gai);
	coil__dns_shutdown(); /* no resolver thread left for the leak checkers */
}

static void *plain_thread_lookup(void *arg)
{
	int *rc = arg;
	struct addrinfo *ai = NULL;
	rc[0] = coil_getaddrinfo("10.1.2.3", "7", NULL, &ai, SEC);
	coil_freeaddrinfo(ai);
	rc[1] = coil_getaddrinfo("localhost", "7", NULL, &ai, SEC);
	return NULL;
}

/* Outside a task only the numeric case works. */
TEST(getaddrinfo_outside_task)
{
	int rc[2] = { 1, 1 };
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, plain_thread_lookup, rc), 0);
	pthread_join(th, NULL);
	ASSERT_EQ(rc[0], 0);
	ASSERT_EQ(rc[1], COIL_EINVALSTATE);
}

/* A resolver the test holds back: each lookup waits for a token. */
static sem_t gate;
static atomic_int gate_mode; /* 0: resolve 127.0.0.1, 1: EAI_NONAME */

static int held_resolver(const char *host, const char *service,
			 const struct addrinfo *hints, struct addrinfo **res)
{
	(void)host;
	while (sem_wait(&gate) != 0)
		;
	if (atomic_load(&gate_mode))
		return EAI_NONAME;
	return getaddrinfo("127.0.0.1", service, hints, res);
}

typedef struct lookup {
	const char *host;
	int rc;
	struct addrinfo *ai;
} lookup_t;

static int lookup_task(void *arg, void **res)
{
	(void)res;
	lookup_t *l = arg;
	l->rc = coil_getaddrinfo(l->host, "80", NULL, &l->ai, COIL_FOREVER);
	return 0;
}

static void wait_no_lookups(void)
{
	while (coil__dns_pending())
		coil_sleep(0.001);
}

static int body_gai_held(void *arg, void **res)
{
	(void)arg; (void)res;
	struct addrinfo *ai = (struct addrinfo *)1;
	/* A timeout returns at once; the lookup's result is freed later. */
	int64_t t0 = now_ns();
	ASSERT_EQ(coil_getaddrinfo("slow.example", "80", NULL, &ai, 30 * MS), -ETIMEDOUT);
	ASSERT_LT(now_ns() - t0, 5 * SEC);
	ASSERT(ai == NULL);
	ASSERT_EQ(coil__dns_pending(), 1);
	sem_post(&gate);
	wait_no_lookups();
	/* Cancellation returns at once too. */
	lookup_t l = { .host = "slow.example" };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, lookup_task, &l, NULL), 0);
	coil_sleep(0.002);
	coil_task_cancel(t, NULL);
	await_task(t);
	ASSERT_EQ(l.rc, -ECANCELED);
	ASSERT(l.ai == NULL);
	sem_post(&gate);
	wait_no_lookups();
	/* Eight at once through at most four threads, then an error. */
	lookup_t ls[8];
	coil_task_t *ts[8];
	for (int i = 0; i < 8; i++) {
		ls[i] = (lookup_t){ .host = "many.example" };
		ASSERT_EQ(coil_spawn(&ts[i], lookup_task, &ls[i], NULL), 0);
	}
	for (int i = 0; i < 8; i++)
		sem_post(&gate);
	for (int i = 0; i < 8; i++) {
		await_task(ts[i]);
		ASSERT_EQ(ls[i].rc, 0);
		ASSERT_EQ(port_of(ls[i].ai), 80);
		coil_freeaddrinfo(ls[i].ai);
	}
	atomic_store(&gate_mode, 1);
	sem_post(&gate);
	ASSERT_EQ(coil_getaddrinfo("none.example", "80", NULL, &ai, SEC), COIL_ENONAME);
	wait_no_lookups();
	return 0;
}

TEST(getaddrinfo_timeout_cancel)
{
	sem_init(&gate, 0, 0);
	coil__dns_set_resolver(held_resolver);
	run(body_gai_held);
	coil__dns_shutdown();
}

TEST_LIST(
	TEST_ENTRY(read_basic),
	TEST_ENTRY(read_bulk),
	TEST_ENTRY(readexactly),
	TEST_ENTRY(readexactly_large),
	TEST_ENTRY(readline),
	TEST_ENTRY(readuntil),
	TEST_ENTRY(readline_limit),
	TEST_ENTRY(read_timeouts),
	TEST_ENTRY(read_cancel_keeps_data),
	TEST_ENTRY(drain_backpressure),
	TEST_ENTRY(write_all_timeout_keeps_rest),
	TEST_ENTRY(write_eof_half_close),
	TEST_ENTRY(close_wakes_reader_and_flushes),
	TEST_ENTRY(peer_reset),
	TEST_ENTRY(bad_arguments),
	TEST_ENTRY(pipe_stream),
	TEST_ENTRY(open_connection_ipv4_ipv6),
	TEST_ENTRY(connect_timeout),
	TEST_ENTRY(unix_connection),
	TEST_ENTRY(getaddrinfo_basic),
	TEST_ENTRY(getaddrinfo_outside_task),
	TEST_ENTRY(getaddrinfo_timeout_cancel)
)
