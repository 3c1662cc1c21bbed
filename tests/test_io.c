/*
 * tests/test_io.c: the ring and the socket operations of coil/io.h.
 *
 * Over loopback and socket pairs: each operation's result, its timeout
 * (and that the descriptor is still usable afterwards, with nothing left
 * in flight), its cancellation from the same worker and from another one
 * (the buffer is never written after the call returned; when data and the
 * cancellation race, every byte is either returned or left in the socket),
 * bad arguments, a peer reset, EMFILE, the multishot acceptor with many
 * connections (multishot and single accepts), a ring small enough that its
 * SQ fills and its CQ overflows, force-close at loop shutdown, operations in
 * flight while a loop or a runtime's worker moves to another thread, the
 * COIL_DEBUG report, and a process in which a seccomp filter refuses
 * io_uring. Tests run on one loop (coil_run with the default
 * options) and on a two-worker runtime where the behaviour should not
 * change. Tasks synchronise on events and on the loop's own order, never on
 * sleeps; the real clock appears only where a timeout itself is under test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "coil/coil.h"
#include "core.h"
#include "ring_int.h"
#include "test.h"

/* --- helpers --------------------------------------------------------------- */

/* Runs fn(arg) as the main task on `workers` workers (1: one loop) with a
 * ring of `entries` SQ entries (0: the default); returns its code. */
static int run_cfg(coil_fn fn, void *arg, unsigned workers, unsigned entries)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = workers;
	o.ring_entries = entries;
	int rc = coil_run(fn, arg, NULL, &o);
	TEST_SKIP_UNLESS_RING(rc);
	return rc;
}

static void pair(int sv[2])
{
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* A TCP listener on 127.0.0.1 with a port the kernel picks. */
static int listener(struct sockaddr_in *addr, int backlog)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT(l >= 0);
	int one = 1;
	ASSERT_EQ(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(l, (struct sockaddr *)addr, sizeof(*addr)), 0);
	socklen_t len = sizeof(*addr);
	ASSERT_EQ(getsockname(l, (struct sockaddr *)addr, &len), 0);
	ASSERT_EQ(listen(l, backlog), 0);
	return l;
}

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT(fd >= 0);
	return fd;
}

/* Completions owed on the running worker's ring: 0 once every operation
 * of a task that is alone on its worker has returned. */
static unsigned inflight(void)
{
	return coil__ring_inflight(coil_get_running_loop()->ring);
}

/* Spawns fn(arg) on worker w of the current runtime, pinned there, or on
 * the current loop when there is no runtime. */
static coil_task_t *spawn_on(int w, coil_fn fn, void *arg)
{
	coil_task_t *t = NULL;
	coil_runtime_t *rt = coil_current_runtime();
	if (rt && coil_runtime_workers(rt) > 1) {
		coil_spawn_opts_t so = { .pinned = true };
		ASSERT_EQ(coil_loop_create_task(coil_runtime_loop(rt, w), &t, fn, arg, &so), 0);
	} else {
		ASSERT_EQ(coil_spawn(&t, fn, arg, NULL), 0);
	}
	return t;
}

/* Awaits t, releases it and returns its code. */
static int join(coil_task_t *t)
{
	int rc = coil_await(coil_task_future(t), NULL);
	coil_task_detach(t);
	return rc;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * COIL_NSEC_PER_SEC + ts.tv_nsec;
}

/* Receives exactly len bytes. */
static void recv_all(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = coil_recv(fd, (char *)buf + got, len - got, 0, COIL_FOREVER);
		ASSERT_GT(n, 0);
		got += (size_t)n;
	}
}

static void send_all(int fd, const void *buf, size_t len)
{
	for (size_t put = 0; put < len;) {
		ssize_t n = coil_send(fd, (const char *)buf + put, len - put, 0, COIL_FOREVER);
		ASSERT_GT(n, 0);
		put += (size_t)n;
	}
}

static const unsigned configs[] = { 1, 2 };
#define FOR_CONFIGS(w) for (size_t ci_ = 0; ci_ < 2 && ((w) = configs[ci_], 1); ci_++)

/* --- send and receive ----------------------------------------------------- */

typedef struct stream_arg {
	int fd;
	size_t len;
	uint32_t sum;
} stream_arg_t;

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 131 + (i >> 8));
}

static int sender(void *p, void **res)
{
	(void)res;
	stream_arg_t *a = p;
	uint8_t buf[3000];
	for (size_t off = 0; off < a->len;) {
		size_t n = 1 + (off * 7) % sizeof(buf);
		if (n > a->len - off)
			n = a->len - off;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + i);
		send_all(a->fd, buf, n);
		off += n;
	}
	return 0;
}

static int receiver(void *p, void **res)
{
	(void)res;
	stream_arg_t *a = p;
	uint8_t buf[1000];
	size_t off = 0;
	while (off < a->len) {
		ssize_t n = coil_recv(a->fd, buf, sizeof(buf), 0, COIL_FOREVER);
		ASSERT_GT(n, 0);
		for (ssize_t i = 0; i < n; i++)
			ASSERT_EQ(buf[i], pattern(off + (size_t)i));
		off += (size_t)n;
	}
	return 0;
}

static int stream_main(void *p, void **res)
{
	(void)p;
	(void)res;
	int sv[2];
	pair(sv);
	stream_arg_t s = { sv[0], 1 << 20, 0 }, r = { sv[1], 1 << 20, 0 };
	coil_task_t *ts = spawn_on(1, sender, &s);
	coil_task_t *tr = spawn_on(0, receiver, &r);
	ASSERT_EQ(join(ts), 0);
	ASSERT_EQ(join(tr), 0);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

TEST(send_recv_stream)
{
	unsigned w;
	FOR_CONFIGS(w)
		ASSERT_EQ(run_cfg(stream_main, NULL, w, 0), 0);
}

/* --- accept and connect ----------------------------------------------------- */

static int client_hello(void *p, void **res)
{
	(void)res;
	struct sockaddr_in *addr = p;
	int fd = tcp_socket();
	ASSERT_EQ(coil_connect(fd, (struct sockaddr *)addr, sizeof(*addr), COIL_FOREVER), 0);
	send_all(fd, "hello", 5);
	char buf[5];
	recv_all(fd, buf, 5);
	ASSERT(memcmp(buf, "world", 5) == 0);
	ASSERT_EQ(coil_close(fd, COIL_FOREVER), 0);
	return 0;
}

static int accept_main(void *p, void **res)
{
	(void)p;
	(void)res;
	struct sockaddr_in addr;
	int l = listener(&addr, 16);
	coil_task_t *c = spawn_on(1, client_hello, &addr);
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	memset(&peer, 0, sizeof(peer));
	int fd = coil_accept(l, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC, COIL_FOREVER);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(plen, sizeof(peer));
	ASSERT_EQ(peer.sin_family, AF_INET);
	ASSERT_EQ(ntohl(peer.sin_addr.s_addr), INADDR_LOOPBACK);
	ASSERT_NE(peer.sin_port, 0);
	ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	char buf[5];
	recv_all(fd, buf, 5);
	ASSERT(memcmp(buf, "hello", 5) == 0);
	send_all(fd, "world", 5);
	ASSERT_EQ(join(c), 0);
	ASSERT_EQ(coil_recv(fd, buf, 5, 0, COIL_FOREVER), 0); /* the client closed */
	ASSERT_EQ(coil_close(fd, COIL_FOREVER), 0);
	close(l);
	return 0;
}

TEST(accept_connect)
{
	unsigned w;
	FOR_CONFIGS(w)
		ASSERT_EQ(run_cfg(accept_main, NULL, w, 0), 0);
}

/* --- timeouts ---------------------------------------------------------------- */

static int recv_timeout_main(void *p, void **res)
{
	(void)p;
	(void)res;
	int sv[2];
	pair(sv);
	char buf[16];
	memset(buf, 0xEE, sizeof(buf));
	int64_t t0 = now_ns();
	ASSERT_EQ(coil_recv(sv[0], buf, sizeof(buf), 0, 20 * 1000000), -ETIMEDOUT);
	ASSERT_GE(now_ns() - t0, 20 * 1000000);
	ASSERT_EQ(inflight(), 0);
	/* Data that arrives now is not taken by a stray operation: it stays
	 * in the socket for the next receive, and buf stays as it was. */
	ASSERT_EQ(write(sv[1], "x", 1), 1);
	ASSERT_EQ(coil_sleep_ns(2 * 1000000), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		ASSERT_EQ((uint8_t)buf[i], 0xEE);
	ASSERT_EQ(coil_recv(sv[0], buf, sizeof(buf), 0, 20 * 1000000), 1);
	ASSERT_EQ(buf[0], 'x');
	/* Timeout 0: only what is there already. */
	ASSERT_EQ(coil_recv(sv[0], buf, sizeof(buf), 0, 0), -ETIMEDOUT);
	ASSERT_EQ(write(sv[1], "yz", 2), 2);
	ASSERT_EQ(coil_recv(sv[0], buf, sizeof(buf), 0, 0), 2);
	ASSERT(memcmp(buf, "yz", 2) == 0);
	/* The longest timeout there is. */
	ASSERT_EQ(write(sv[1], "w", 1), 1);
	ASSERT_EQ(coil_recv(sv[0], buf, sizeof(buf), 0, INT64_MAX), 1);
	ASSERT_EQ(inflight(), 0);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

TEST(recv_timeout_leaves_socket_usable)
{
	unsigned w;
	FOR_CONFIGS(w)
		ASSERT_EQ(run_cfg(recv_timeout_main, NULL, w, 0), 0);
}

/* Fills fd's send buffer so that the next send blocks. */
static void fill_sndbuf(int fd)
{
	int small = 4096;
	ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	char junk[4096];
	memset(junk, 'j', sizeof(junk));
	while (send(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
}

static int op_timeouts_main(void *p, void **res)
{
	(void)p;
	(void)res;
	const int64_t T = 10 * 1000000;
	int sv[2];
	pair(sv);
	char buf[64];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ASSERT_EQ(coil_recvmsg(sv[0], &m, 0, T), -ETIMEDOUT);
	ASSERT_EQ(coil_poll(sv[0], POLLIN, T), -ETIMEDOUT);
	fill_sndbuf(sv[1]);
	ASSERT_EQ(coil_send(sv[1], buf, sizeof(buf), 0, T), -ETIMEDOUT);
	ASSERT_EQ(coil_sendmsg(sv[1], &m, 0, T), -ETIMEDOUT);
	/* accept with nobody connecting; connect to a listener whose queue is
	 * full (the kernel drops the SYN, the connect waits). */
	struct sockaddr_in addr;
	int l = listener(&addr, 0);
	ASSERT_EQ(coil_accept(l, NULL, NULL, 0, T), -ETIMEDOUT);
	int c[8], n = 0, rc = 0;
	for (; n < 8; n++) {
		c[n] = tcp_socket();
		rc = coil_connect(c[n], (struct sockaddr *)&addr, sizeof(addr), T);
		if (rc != 0)
			break;
	}
	ASSERT_EQ(rc, -ETIMEDOUT);
	ASSERT_EQ(inflight(), 0);
	for (int i = 0; i <= n && i < 8; i++)
		close(c[i]);
	close(l);
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(bind(u, (struct sockaddr *)&addr, sizeof(addr)), 0);
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	ASSERT_EQ(coil_recvfrom(u, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen, T),
		  -ETIMEDOUT);
	ASSERT_EQ(inflight(), 0);
	close(u);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

TEST(each_op_times_out)
{
	ASSERT_EQ(run_cfg(op_timeouts_main, NULL, 1, 0), 0);
}

/* --- bad input and faults --------------------------------------------------- */

static int bad_args_main(void *p, void **res)
{
	(void)p;
	(void)res;
	int sv[2];
	pair(sv);
	char buf[8];
	ASSERT_EQ(coil_recv(sv[0], buf, sizeof(buf), 0, -2), -EINVAL);
	ASSERT_EQ(coil_recv(sv[0], buf, (size_t)SSIZE_MAX + 1, 0, 0), -EINVAL);
	ASSERT_EQ(coil_send(sv[0], buf, SIZE_MAX, 0, 0), -EINVAL);
	ASSERT_EQ(coil_recv(-1, buf, sizeof(buf), 0, 0), -EBADF);
	struct iovec iov = { buf, sizeof(buf) };
	ASSERT_EQ(coil_readv(sv[0], &iov, -1, -1, 0), -EINVAL);
	ASSERT_EQ(coil_writev(sv[0], &iov, IOV_MAX + 1, -1, 0), -EINVAL);
	ASSERT_EQ(coil_read(sv[0], buf, 1, -2, 0), -EINVAL);
	ASSERT_EQ(coil_recvmsg(sv[0], NULL, 0, 0), -EINVAL);
	ASSERT_EQ(coil_shutdown(sv[0], 42, 0), -EINVAL);
	ASSERT_EQ(coil_accept(sv[0], (struct sockaddr *)buf, NULL, 0, 0), -EINVAL);
	ASSERT_EQ(coil_statx(AT_FDCWD, "/", 0, 0, NULL, 0), -EINVAL);
	/* A closed descriptor: the kernel's -EBADF, nothing left in flight. */
	int fd = dup(sv[0]);
	close(fd);
	ASSERT_EQ(coil_recv(fd, buf, sizeof(buf), 0, COIL_FOREVER), -EBADF);
	ASSERT_EQ(coil_send(fd, buf, sizeof(buf), 0, COIL_FOREVER), -EBADF);
	ASSERT_EQ(coil_close(fd, COIL_FOREVER), -EBADF);
	/* Not a socket. */
	int pp[2];
	ASSERT_EQ(pipe(pp), 0);
	ASSERT_EQ(coil_recv(pp[0], buf, sizeof(buf), 0, 0), -ENOTSOCK);
	ASSERT_EQ(inflight(), 0);
	close(pp[0]);
	close(pp[1]);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

TEST(bad_arguments)
{
	ASSERT_EQ(run_cfg(bad_args_main, NULL, 1, 0), 0);
}

TEST(outside_a_task)
{
	int sv[2];
	pair(sv);
	char buf[4];
	ASSERT_EQ(coil_recv(sv[0], buf, sizeof(buf), 0, COIL_FOREVER), COIL_EINVALSTATE);
	ASSERT_EQ(coil_accept(sv[0], NULL, NULL, 0, 0), COIL_EINVALSTATE);
	coil_acceptor_t *a = NULL;
	ASSERT_EQ(coil_acceptor_open(&a, sv[0]), COIL_EINVALSTATE);
	/* A close is never skipped: outside a task it is close(2). */
	ASSERT_EQ(coil_close(sv[0], COIL_FOREVER), 0);
	ASSERT_EQ(fcntl(sv[0], F_GETFD), -1);
	ASSERT_EQ(coil_close(sv[0], COIL_FOREVER), -EBADF);
	close(sv[1]);
}

static int reset_main(void *p, void **res)
{
	(void)p;
	(void)res;
	struct sockaddr_in addr;
	int l = listener(&addr, 4);
	int c = tcp_socket();
	ASSERT_EQ(coil_connect(c, (struct sockaddr *)&addr, sizeof(addr), COIL_FOREVER), 0);
	int s = coil_accept(l, NULL, NULL, 0, COIL_FOREVER);
	ASSERT_GE(s, 0);
	/* Linger 0: the close sends a reset. */
	struct linger lg = { 1, 0 };
	ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	ASSERT_EQ(coil_close(s, COIL_FOREVER), 0);
	char buf[8];
	ASSERT_EQ(coil_recv(c, buf, sizeof(buf), 0, COIL_FOREVER), -ECONNRESET);
	/* Sending to a reset connection fails with -EPIPE and no SIGPIPE
	 * (the default action would kill the process). */
	ssize_t n = coil_send(c, "x", 1, 0, COIL_FOREVER);
	ASSERT(n == -EPIPE || n == -ECONNRESET);
	ASSERT_EQ(coil_send(c, "x", 1, 0, COIL_FOREVER), -EPIPE);
	close(c);
	close(l);
	return 0;
}

TEST(peer_reset)
{
	signal(SIGPIPE, SIG_DFL);
	ASSERT_EQ(run_cfg(reset_main, NULL, 1, 0), 0);
}

/* Takes every free descriptor (dups of 0) below the soft limit; returns
 * how many, their numbers in fds. */
static int exhaust_fds(int *fds, int cap)
{
	int n = 0;
	while (n < cap) {
		int fd = dup(0);
		if (fd < 0) {
			ASSERT_EQ(errno, EMFILE);
			break;
		}
		fds[n++] = fd;
	}
	ASSERT_LT(n, cap);
	return n;
}

static int emfile_main(void *p, void **res)
{
	(void)p;
	(void)res;
	struct sockaddr_in addr;
	int l = listener(&addr, 8);
	coil_acceptor_t *a;
	ASSERT_EQ(coil_acceptor_open(&a, l), 0);
	int c1 = tcp_socket(), c2 = tcp_socket();
	int fds[256];
	int n = exhaust_fds(fds, 256);
	ASSERT_EQ(connect(c1, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ASSERT_EQ(connect(c2, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ASSERT_EQ(coil_accept(l, NULL, NULL, 0, COIL_FOREVER), -EMFILE);
	ASSERT_EQ(coil_acceptor_next(a, COIL_FOREVER), -EMFILE);
	/* The connections wait in the backlog; with descriptors free again
	 * both calls serve them. */
	close(fds[--n]);
	close(fds[--n]);
	int s1 = coil_accept(l, NULL, NULL, 0, COIL_FOREVER);
	ASSERT_GE(s1, 0);
	int s2 = coil_acceptor_next(a, COIL_FOREVER);
	ASSERT_GE(s2, 0);
	coil_acceptor_close(a);
	close(s1);
	close(s2);
	while (n)
		close(fds[--n]);
	close(c1);
	close(c2);
	close(l);
	return 0;
}

TEST(accept_emfile)
{
	/* Valgrind keeps a lowered RLIMIT_NOFILE to itself: the kernel, which
	 * accepts through the ring, never sees it. */
	if (RUNNING_ON_VALGRIND)
		TEST_SKIP("the descriptor limit is virtual under Valgrind");
	struct rlimit rl;
	ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = 64;
	ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ASSERT_EQ(run_cfg(emfile_main, NULL, 1, 0), 0);
}

/* --- cancellation ---------------------------------------------------------------- */

typedef struct cancel_arg {
	int fd;
	coil_task_t *reader;
	coil_event_t *ready;     /* the reader is about to receive */
	coil_event_t *returned;  /* its receive returned */
	coil_event_t *written;   /* data is in the socket now */
	ssize_t rc;
	char buf[64];
} cancel_arg_t;

static int cancel_reader(void *p, void **res)
{
	(void)res;
	cancel_arg_t *a = p;
	memset(a->buf, 0xEE, sizeof(a->buf));
	ASSERT_EQ(coil_event_set(a->ready), 0);
	a->rc = coil_recv(a->fd, a->buf, sizeof(a->buf), 0, COIL_FOREVER);
	ASSERT_EQ(a->rc, -ECANCELED);
	ASSERT_EQ(inflight(), 0);
	ASSERT_EQ(coil_event_set(a->returned), 0);
	/* Catch the cancellation and carry on: the buffer stays untouched
	 * while data arrives and loop rounds pass, and the socket works. */
	ASSERT_EQ(coil_event_wait(a->written), 0);
	ASSERT_EQ(coil_sleep_ns(2 * 1000000), 0);
	for (size_t i = 0; i < sizeof(a->buf); i++)
		ASSERT_EQ((uint8_t)a->buf[i], 0xEE);
	ASSERT_EQ(coil_recv(a->fd, a->buf, sizeof(a->buf), 0, COIL_FOREVER), 4);
	ASSERT(memcmp(a->buf, "data", 4) == 0);
	return 0;
}

static int canceller(void *p, void **res)
{
	(void)res;
	cancel_arg_t *a = p;
	ASSERT_EQ(coil_event_wait(a->ready), 0);
	/* Let the reader reach its receive on a one-worker loop (on two
	 * workers the cancellation may come before or after the submission:
	 * both must give -ECANCELED). */
	ASSERT_EQ(coil_sleep_ns(0), 0);
	ASSERT(coil_task_cancel(a->reader, NULL));
	return 0;
}

static int cancel_main(void *p, void **res)
{
	(void)p;
	(void)res;
	int sv[2];
	pair(sv);
	cancel_arg_t a = { .fd = sv[0] };
	ASSERT_EQ(coil_event_create(&a.ready), 0);
	ASSERT_EQ(coil_event_create(&a.returned), 0);
	ASSERT_EQ(coil_event_create(&a.written), 0);
	a.reader = spawn_on(0, cancel_reader, &a);
	coil_task_t *c = spawn_on(1, canceller, &a);
	ASSERT_EQ(coil_event_wait(a.returned), 0);
	ASSERT_EQ(write(sv[1], "data", 4), 4);
	ASSERT_EQ(coil_event_set(a.written), 0);
	ASSERT_EQ(join(c), 0);
	ASSERT_EQ(join(a.reader), 0);
	coil_event_destroy(a.ready);
	coil_event_destroy(a.returned);
	coil_event_destroy(a.written);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

TEST(cancel_recv_same_worker)
{
	ASSERT_EQ(run_cfg(cancel_main, NULL, 1, 0), 0);
}

TEST(cancel_recv_from_other_worker)
{
	ASSERT_EQ(run_cfg(cancel_main, NULL, 2, 0), 0);
}

/* The operation completes first (its completion is reaped and wakes the
 * task), the cancellation comes before the task runs: the data is
 * returned, the next await delivers the cancellation. */
static int late_cancel_reader(void *p, void **res)
{
	(void)res;
	cancel_arg_t *a = p;
	ASSERT_EQ(coil_recv(a->fd, a->buf, sizeof(a->buf), 0, COIL_FOREVER), 4);
	ASSERT(memcmp(a->buf, "late", 4) == 0);
	ASSERT_EQ(coil_sleep_ns(0), -ECANCELED);
	ASSERT_EQ(coil_sleep_ns(0), 0);
	return 0;
}

static int late_cancel_main(void *p, void **res)
{
	(void)p;
	(void)res;
	int sv[2];
	pair(sv);
	cancel_arg_t a = { .fd = sv[0] };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, late_cancel_reader, &a, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(0), 0); /* the reader is in its receive */
	ASSERT_EQ(write(sv[1], "late", 4), 4);
	/* Next round: the loop reaps the receive (the reader is woken and
	 * queued behind us), then we cancel it before it runs. */
	ASSERT_EQ(coil_sleep_ns(0), 0);
	ASSERT(coil_task_cancel(t, NULL));
	ASSERT_EQ(join(t), 0);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

TEST(completion_beats_cancel)
{
	ASSERT_EQ(run_cfg(late_cancel_main, NULL, 1, 0), 0);
}

/* A cancellation pending before the call: nothing is submitted. */
static int pending_cancel_main(void *p, void **res)
{
	(void)p;
	(void)res;
	int sv[2];
	pair(sv);
	ASSERT_EQ(write(sv[1], "abc", 3), 3);
	ASSERT(coil_task_cancel(coil_current_task(), NULL));
	char buf[8];
	ASSERT_EQ(coil_recv(sv[0], buf, sizeof(buf), 0, COIL_FOREVER), -ECANCELED);
	ASSERT_EQ(inflight(), 0);
	ASSERT_EQ(coil_task_uncancel(coil_current_task()), 0);
	ASSERT_EQ(coil_recv(sv[0], buf, sizeof(buf), 0, COIL_FOREVER), 3);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

TEST(cancel_pending_before_submit)
{
	ASSERT_EQ(run_cfg(pending_cancel_main, NULL, 1, 0), 0);
}

/*
 * Data arrives as the cancellation lands, many times over: each receive
 * either returns its byte (the cancellation then comes at the next await)
 * or -ECANCELED with nothing consumed. Every byte is received exactly
 * once, in order, and no buffer of a cancelled receive is ever written.
 */
typedef struct race_arg {
	int fd, wfd, n;
	coil_task_t *reader;
	atomic_int waiting;   /* the byte the reader waits for, -1 before */
	uint8_t *bufs;        /* one per receive the reader makes */
	int nbufs, ncancelled;
	int cancel_won, data_won;
	int *cancelled_at;
} race_arg_t;

static int race_reader(void *p, void **res)
{
	(void)res;
	race_arg_t *a = p;
	int got = 0;
	while (got < a->n) {
		ASSERT_LT(a->nbufs, 4 * a->n);
		uint8_t *b = &a->bufs[a->nbufs++];
		*b = 0xEE;
		atomic_store(&a->waiting, got);
		ssize_t r = coil_recv(a->fd, b, 1, 0, COIL_FOREVER);
		if (r == 1) {
			ASSERT_EQ(*b, (uint8_t)got);
			got++;
		} else {
			ASSERT_EQ(r, -ECANCELED);
			/* The byte still in the socket: the cancellation won.
			 * None: it is one the data had beaten, delivered now. */
			uint8_t c;
			if (recv(a->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
				a->cancel_won++;
			else
				a->data_won++;
			a->cancelled_at[a->ncancelled++] = (int)(b - a->bufs);
		}
	}
	return 0;
}

static int race_writer(void *p, void **res)
{
	(void)res;
	race_arg_t *a = p;
	for (int i = 0; i < a->n; i++) {
		while (atomic_load(&a->waiting) != i)
			ASSERT_EQ(coil_sleep_ns(0), 0);
		/* One more round: the receive is in the kernel, waiting. */
		ASSERT_EQ(coil_sleep_ns(0), 0);
		uint8_t b = (uint8_t)i;
		/* Two orders, each deterministic on one worker. The data is
		 * there first and its completion reaped before the
		 * cancellation comes: the data wins, it is returned and the
		 * cancellation comes at the next await. Or the cancellation
		 * is taken by the kernel and the data arrives right after:
		 * the cancellation wins, and the byte stays in the socket.
		 * On two workers the same steps interleave at random. */
		if (i % 2) {
			ASSERT_EQ(write(a->wfd, &b, 1), 1);
			ASSERT_EQ(coil_sleep_ns(0), 0);
			coil_task_cancel(a->reader, NULL);
		} else {
			coil_task_cancel(a->reader, NULL);
			ASSERT_EQ(coil_sleep_ns(0), 0);
			ASSERT_EQ(coil_sleep_ns(0), 0);
			ASSERT_EQ(write(a->wfd, &b, 1), 1);
		}
	}
	return 0;
}

static int race_main(void *p, void **res)
{
	(void)res;
	race_arg_t *a = p;
	int sv[2];
	pair(sv);
	a->fd = sv[0];
	a->wfd = sv[1];
	atomic_init(&a->waiting, -1);
	a->reader = spawn_on(0, race_reader, a);
	coil_task_t *w = spawn_on(1, race_writer, a);
	ASSERT_EQ(join(w), 0);
	int rc = join(a->reader);
	ASSERT(rc == 0 || rc == -ECANCELED);
	/* Nothing left unread, and no cancelled receive wrote later. */
	uint8_t b;
	ASSERT_EQ(recv(sv[0], &b, 1, MSG_DONTWAIT), -1);
	for (int i = 0; i < a->ncancelled; i++)
		ASSERT_EQ(a->bufs[a->cancelled_at[i]], 0xEE);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

TEST(cancel_races_data_no_loss)
{
	unsigned w;
	int n = test_heavy_tools() ? 300 : 3000;
	FOR_CONFIGS(w) {
		race_arg_t a = { .n = n };
		a.bufs = calloc(4 * (size_t)n, 1);
		a.cancelled_at = calloc(4 * (size_t)n, sizeof(int));
		ASSERT(a.bufs && a.cancelled_at);
		ASSERT_EQ(run_cfg(race_main, &a, w, 0), 0);
		printf("  %u worker(s): %d bytes; the cancellation won %d times, "
		       "the data %d times\n", w, n, a.cancel_won, a.data_won);
		if (w == 1) {
			ASSERT_GT(a.cancel_won, 0);
			ASSERT_GT(a.data_won, 0);
		}
		free(a.bufs);
		free(a.cancelled_at);
	}
}

/* A task that ignores cancellation and keeps receiving: the loop's
 * shutdown force-closes it, and its receive returns COIL_ECLOSED only once
 * the kernel is done with the buffer on its stack. */
static int stubborn_reader(void *p, void **res)
{
	(void)res;
	int *fd = p;
	char buf[16];
	ssize_t r;
	int cancels = 0;
	while ((r = coil_recv(*fd, buf, sizeof(buf), 0, COIL_FOREVER)) == -ECANCELED)
		cancels++;
	ASSERT_EQ(r, COIL_ECLOSED);
	ASSERT_GT(cancels, 0);
	ASSERT_EQ(inflight(), 0);
	fd[1] = 1;
	return 0;
}

static int stubborn_main(void *p, void **res)
{
	(void)res;
	int *fd = p;
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, stubborn_reader, fd, NULL), 0);
	coil_task_detach(t);
	ASSERT_EQ(coil_sleep_ns(0), 0);
	return 0; /* the loop closes with the reader in its receive */
}

TEST(force_close_at_shutdown)
{
	int sv[2];
	pair(sv);
	int arg[2] = { sv[0], 0 };
	ASSERT_EQ(run_cfg(stubborn_main, arg, 1, 0), 0);
	ASSERT_EQ(arg[1], 1);
	close(sv[0]);
	close(sv[1]);
}

/* A runtime's workers run on new threads at shutdown (and block_on's
 * worker 0 runs on whichever thread calls it): operations in flight then
 * move with their worker, transparently, and shutdown can cancel them. */
typedef struct bg_arg {
	int fd;
	ssize_t rc;
	char buf[16];
	coil_task_t *task;
} bg_arg_t;

static int bg_reader(void *p, void **res)
{
	(void)res;
	bg_arg_t *a = p;
	a->rc = coil_recv(a->fd, a->buf, sizeof(a->buf), 0, COIL_FOREVER);
	return 0;
}

static int start_bg(void *p, void **res)
{
	(void)res;
	bg_arg_t *a = p;
	for (int w = 0; w < 2; w++)
		a[w].task = spawn_on(w, bg_reader, &a[w]);
	/* Both are in their receive once their workers have had a round. */
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_sleep_ns(1000000), 0);
	return 0;
}

typedef struct second_call {
	coil_runtime_t *rt;
	bg_arg_t *a;
	int peer;
} second_call_t;

static int finish_bg(void *p, void **res)
{
	(void)res;
	second_call_t *c = p;
	ASSERT_EQ(write(c->peer, "late", 4), 4);
	ASSERT_EQ(coil_await(coil_task_future(c->a[0].task), NULL), 0);
	return 0;
}

static void *second_block_on(void *p)
{
	second_call_t *c = p;
	ASSERT_EQ(coil_runtime_block_on(c->rt, finish_bg, c, NULL), 0);
	return NULL;
}

TEST(io_moves_with_its_worker_to_a_new_thread)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	coil_runtime_t *rt = NULL;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	int sv[2][2];
	pair(sv[0]);
	pair(sv[1]);
	bg_arg_t a[2] = { { .fd = sv[0][0] }, { .fd = sv[1][0] } };
	ASSERT_EQ(coil_runtime_block_on(rt, start_bg, a, NULL), 0);
	/* Worker 0 now runs on another thread: the receive left on it is
	 * submitted again there and gets the data written then. */
	second_call_t c = { rt, a, sv[0][1] };
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, second_block_on, &c), 0);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	ASSERT_EQ(a[0].rc, 4);
	ASSERT(memcmp(a[0].buf, "late", 4) == 0);
	/* Worker 1's receive never gets data: shutdown, which moves every
	 * worker to a new thread, cancels it there. */
	ASSERT_EQ(coil_runtime_shutdown(rt, 0), -ETIMEDOUT);
	ASSERT_EQ(a[1].rc, -ECANCELED);
	coil_task_detach(a[0].task);
	coil_task_detach(a[1].task);
	for (int i = 0; i < 2; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
}

static int short_sleep(void *p, void **res)
{
	(void)p;
	(void)res;
	return coil_sleep_ns(1000000);
}

typedef struct loop_move {
	coil_loop_t *loop;
	coil_task_t *reader;
	int peer;
} loop_move_t;

static void *run_elsewhere(void *p)
{
	loop_move_t *m = p;
	ASSERT_EQ(write(m->peer, "late", 4), 4);
	ASSERT_EQ(coil_loop_run_until_complete(m->loop, coil_task_future(m->reader), NULL), 0);
	return NULL;
}

/* asyncio's loop run by one thread, then by another, with a receive in
 * flight in between: it moves with the loop. */
TEST(loop_moves_to_another_thread_with_io_in_flight)
{
	coil_loop_t *loop = NULL;
	int rc = coil_new_event_loop(&loop);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	int sv[2];
	pair(sv);
	bg_arg_t a = { .fd = sv[0] };
	coil_task_t *s;
	ASSERT_EQ(coil_loop_create_task(loop, &a.task, bg_reader, &a, NULL), 0);
	ASSERT_EQ(coil_loop_create_task(loop, &s, short_sleep, NULL, NULL), 0);
	ASSERT_EQ(coil_loop_run_until_complete(loop, coil_task_future(s), NULL), 0);
	coil_task_detach(s);
	/* The loop stopped with the receive in flight, and ended it. */
	ASSERT_EQ(a.rc, 0);
	ASSERT_EQ(coil__ring_inflight(loop->ring), 0);
	loop_move_t m = { loop, a.task, sv[1] };
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, run_elsewhere, &m), 0);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	ASSERT_EQ(a.rc, 4);
	ASSERT(memcmp(a.buf, "late", 4) == 0);
	coil_task_detach(a.task);
	ASSERT_EQ(coil_loop_close(loop), 0);
	close(sv[0]);
	close(sv[1]);
}

/* --- tasks moving between workers between operations ----------------------- */

typedef struct pingpong {
	int fd;
	int rounds;
	bool first;
	atomic_int *moves;
} pingpong_t;

static int pinger(void *p, void **res)
{
	(void)res;
	pingpong_t *a = p;
	int last = coil_current_worker();
	for (uint32_t i = 0; i < (uint32_t)a->rounds; i++) {
		/* A sends 2i and expects 2i+1; B the other way round. */
		uint32_t v = 2 * i + (a->first ? 0 : 1), got;
		if (a->first)
			send_all(a->fd, &v, sizeof(v));
		recv_all(a->fd, &got, sizeof(got));
		ASSERT_EQ(got, a->first ? v + 1 : v - 1);
		if (!a->first)
			send_all(a->fd, &v, sizeof(v));
		ASSERT_EQ(coil_sleep_ns(0), 0);
		int now = coil_current_worker();
		if (now != last)
			atomic_fetch_add(a->moves, 1);
		last = now;
	}
	return 0;
}

static int migrate_main(void *p, void **res)
{
	(void)p;
	(void)res;
	enum { PAIRS = 8 };
	int rounds = test_heavy_tools() ? 50 : 400;
	atomic_int moves = 0;
	int sv[PAIRS][2];
	pingpong_t a[PAIRS][2];
	coil_task_t *t[PAIRS][2];
	for (int i = 0; i < PAIRS; i++) {
		pair(sv[i]);
		for (int j = 0; j < 2; j++) {
			a[i][j] = (pingpong_t){ sv[i][j], rounds, j == 0, &moves };
			ASSERT_EQ(coil_spawn(&t[i][j], pinger, &a[i][j], NULL), 0);
		}
	}
	for (int i = 0; i < PAIRS; i++) {
		ASSERT_EQ(join(t[i][0]), 0);
		ASSERT_EQ(join(t[i][1]), 0);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	printf("  %d worker changes between operations\n", atomic_load(&moves));
	return 0;
}

TEST(tasks_migrate_between_ops)
{
	ASSERT_EQ(run_cfg(migrate_main, NULL, 2, 0), 0);
}

/* --- the acceptor ------------------------------------------------------------ */

typedef struct server {
	struct sockaddr_in addr;
	int n;
	bool single;
	atomic_int served;
	uint8_t *seen;
} server_t;

static int conn_handler(void *p, void **res)
{
	(void)res;
	intptr_t fd = (intptr_t)p;
	uint32_t id;
	recv_all((int)fd, &id, sizeof(id));
	send_all((int)fd, &id, sizeof(id));
	ASSERT_EQ(coil_close((int)fd, COIL_FOREVER), 0);
	return (int)id;
}

static int client(void *p, void **res)
{
	(void)res;
	server_t *s = p;
	uint32_t id = (uint32_t)atomic_fetch_add(&s->served, 1);
	int fd = tcp_socket();
	ASSERT_EQ(coil_connect(fd, (struct sockaddr *)&s->addr, sizeof(s->addr), COIL_FOREVER), 0);
	send_all(fd, &id, sizeof(id));
	uint32_t back;
	recv_all(fd, &back, sizeof(back));
	ASSERT_EQ(back, id);
	ASSERT_EQ(coil_close(fd, COIL_FOREVER), 0);
	return 0;
}

static int acceptor_main(void *p, void **res)
{
	(void)res;
	server_t *s = p;
	/* As on a kernel before 5.19: one accept at a time. */
	if (s->single)
		coil_get_running_loop()->ring->caps &= ~COIL__RING_CAP_MULTISHOT_ACCEPT;
	int l = listener(&s->addr, 1024);
	coil_acceptor_t *a;
	ASSERT_EQ(coil_acceptor_open(&a, l), 0);
	coil_task_t **clients = calloc((size_t)s->n, sizeof(*clients));
	coil_task_t **handlers = calloc((size_t)s->n, sizeof(*handlers));
	ASSERT(clients && handlers);
	for (int i = 0; i < s->n; i++)
		ASSERT_EQ(coil_spawn(&clients[i], client, s, NULL), 0);
	for (int i = 0; i < s->n; i++) {
		int fd = coil_acceptor_next(a, COIL_FOREVER);
		ASSERT_GE(fd, 0);
		ASSERT_EQ(coil_spawn(&handlers[i], conn_handler, (void *)(intptr_t)fd, NULL), 0);
	}
	for (int i = 0; i < s->n; i++) {
		ASSERT_EQ(join(clients[i]), 0);
		int id = join(handlers[i]);
		ASSERT(id >= 0 && id < s->n);
		ASSERT_EQ(s->seen[id]++, 0);
	}
	ASSERT_EQ(coil_acceptor_next(a, 0), -ETIMEDOUT);
	coil_acceptor_close(a);
	close(l);
	free(clients);
	free(handlers);
	return 0;
}

TEST(acceptor_many_connections)
{
	/* Multishot on one and two workers, then single accepts. */
	static const struct { unsigned workers; bool single; } cfg[] = {
		{ 1, false }, { 2, false }, { 1, true },
	};
	for (size_t i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++) {
		server_t s = { .n = test_heavy_tools() ? 60 : 400, .single = cfg[i].single };
		s.seen = calloc((size_t)s.n, 1);
		ASSERT(s.seen);
		ASSERT_EQ(run_cfg(acceptor_main, &s, cfg[i].workers, 0), 0);
		free(s.seen);
	}
}

typedef struct acc_wait {
	coil_acceptor_t *a;
	int rc;
} acc_wait_t;

static int acc_waiter(void *p, void **res)
{
	(void)res;
	acc_wait_t *w = p;
	w->rc = coil_acceptor_next(w->a, COIL_FOREVER);
	return 0;
}

static int acceptor_cancel_main(void *p, void **res)
{
	(void)p;
	(void)res;
	struct sockaddr_in addr;
	int l = listener(&addr, 16);
	coil_acceptor_t *a;
	ASSERT_EQ(coil_acceptor_open(&a, l), 0);
	ASSERT_EQ(coil_acceptor_next(a, 10 * 1000000), -ETIMEDOUT);
	/* A waiter in next() cancelled, then one that close() ends. */
	acc_wait_t w = { a, 0 };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, acc_waiter, &w, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(0), 0);
	ASSERT(coil_task_cancel(t, NULL));
	ASSERT_EQ(join(t), 0);
	ASSERT_EQ(w.rc, -ECANCELED);
	/* A connection that arrived is still handed over. */
	int c = tcp_socket();
	ASSERT_EQ(connect(c, (struct sockaddr *)&addr, sizeof(addr)), 0);
	int s = coil_acceptor_next(a, COIL_FOREVER);
	ASSERT_GE(s, 0);
	close(s);
	ASSERT_EQ(coil_spawn(&t, acc_waiter, &w, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(0), 0);
	coil_acceptor_close(a);
	ASSERT_EQ(join(t), 0);
	ASSERT_EQ(w.rc, COIL_ECLOSED);
	ASSERT_EQ(inflight(), 0);
	/* The kernel let go of the listening socket: its port is free. */
	close(l);
	close(c);
	int l2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	ASSERT_EQ(setsockopt(l2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	ASSERT_EQ(bind(l2, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ASSERT_EQ(listen(l2, 1), 0);
	close(l2);
	return 0;
}

TEST(acceptor_timeout_cancel_close)
{
	ASSERT_EQ(run_cfg(acceptor_cancel_main, NULL, 1, 0), 0);
}

/* --- a small ring: SQ full, CQ overflow --------------------------------------- */

typedef struct small_arg {
	int fd;
	char c;
} small_arg_t;

static int small_reader(void *p, void **res)
{
	(void)res;
	small_arg_t *a = p;
	char b = 0;
	ASSERT_EQ(coil_recv(a->fd, &b, 1, 0, COIL_NSEC_PER_SEC), 1);
	ASSERT_EQ(b, a->c);
	return 0;
}

static int small_ring_main(void *p, void **res)
{
	(void)p;
	(void)res;
	enum { N = 96 };
	int sv[N][2];
	small_arg_t a[N];
	coil_task_t *t[N];
	/* Every receive finds its byte: all of them complete at submission,
	 * 2 SQEs and 2 CQEs each, in a ring of 4 SQ and 32 CQ entries. */
	for (int i = 0; i < N; i++) {
		pair(sv[i]);
		a[i] = (small_arg_t){ sv[i][0], (char)('A' + i % 26) };
		ASSERT_EQ(write(sv[i][1], &a[i].c, 1), 1);
		ASSERT_EQ(coil_spawn(&t[i], small_reader, &a[i], NULL), 0);
	}
	for (int i = 0; i < N; i++) {
		ASSERT_EQ(join(t[i]), 0);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	coil__ring_t *r = coil_get_running_loop()->ring;
	ASSERT_EQ(r->ring.sq.ring_entries, 4);
	ASSERT_GT(r->overflows, 0);
	ASSERT_EQ(inflight(), 0);
	return 0;
}

TEST(small_ring_sq_full_cq_overflow)
{
	ASSERT_EQ(run_cfg(small_ring_main, NULL, 1, 4), 0);
}

/* --- datagrams, messages, shutdown, close ---------------------------------------- */

static int udp_main(void *p, void **res)
{
	(void)p;
	(void)res;
	struct sockaddr_in a1 = { .sin_family = AF_INET }, a2 = { .sin_family = AF_INET };
	a1.sin_addr.s_addr = a2.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int u1 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int u2 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t len = sizeof(a1);
	ASSERT_EQ(bind(u1, (struct sockaddr *)&a1, len), 0);
	ASSERT_EQ(bind(u2, (struct sockaddr *)&a2, len), 0);
	ASSERT_EQ(getsockname(u1, (struct sockaddr *)&a1, &len), 0);
	ASSERT_EQ(getsockname(u2, (struct sockaddr *)&a2, &len), 0);
	ASSERT_EQ(coil_sendto(u1, "ping", 4, 0, (struct sockaddr *)&a2, sizeof(a2), COIL_FOREVER), 4);
	char buf[16];
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	ASSERT_EQ(coil_recvfrom(u2, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen,
				COIL_FOREVER), 4);
	ASSERT(memcmp(buf, "ping", 4) == 0);
	ASSERT_EQ(flen, sizeof(from));
	ASSERT_EQ(from.sin_port, a1.sin_port);
	/* Gather out, scatter in, with the sender's address. */
	struct iovec out[2] = { { "po", 2 }, { "ng!", 3 } };
	struct msghdr mo = { .msg_name = &a1, .msg_namelen = sizeof(a1), .msg_iov = out, .msg_iovlen = 2 };
	ASSERT_EQ(coil_sendmsg(u2, &mo, 0, COIL_FOREVER), 5);
	char b1[3], b2[8];
	struct iovec in[2] = { { b1, sizeof(b1) }, { b2, sizeof(b2) } };
	struct msghdr mi = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = in, .msg_iovlen = 2 };
	ASSERT_EQ(coil_recvmsg(u1, &mi, 0, COIL_FOREVER), 5);
	ASSERT(memcmp(b1, "pon", 3) == 0 && memcmp(b2, "g!", 2) == 0);
	ASSERT_EQ(from.sin_port, a2.sin_port);
	/* sendto as on a kernel before 6.0: through sendmsg. */
	coil_get_running_loop()->ring->caps &= ~COIL__RING_CAP_SEND_ADDR;
	ASSERT_EQ(coil_sendto(u1, "old", 3, 0, (struct sockaddr *)&a2, sizeof(a2), COIL_FOREVER), 3);
	flen = sizeof(from);
	ASSERT_EQ(coil_recvfrom(u2, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen,
				COIL_FOREVER), 3);
	ASSERT(memcmp(buf, "old", 3) == 0);
	ASSERT_EQ(from.sin_port, a1.sin_port);
	ASSERT_EQ(coil_close(u1, COIL_FOREVER), 0);
	ASSERT_EQ(coil_close(u2, COIL_FOREVER), 0);
	return 0;
}

TEST(udp_sendto_recvfrom_msg)
{
	unsigned w;
	FOR_CONFIGS(w)
		ASSERT_EQ(run_cfg(udp_main, NULL, w, 0), 0);
}

/* Passes a descriptor with SCM_RIGHTS: control data through the ring. */
static int rights_main(void *p, void **res)
{
	(void)p;
	(void)res;
	int sv[2], pp[2];
	pair(sv);
	ASSERT_EQ(pipe(pp), 0);
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } cu, ci;
	memset(&cu, 0, sizeof(cu));
	struct iovec iov = { "f", 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cu.buf,
			    .msg_controllen = sizeof(cu.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &pp[1], sizeof(int));
	ASSERT_EQ(coil_sendmsg(sv[0], &m, 0, COIL_FOREVER), 1);
	char c;
	struct iovec iin = { &c, 1 };
	struct msghdr mi = { .msg_iov = &iin, .msg_iovlen = 1, .msg_control = ci.buf,
			     .msg_controllen = sizeof(ci.buf) };
	ASSERT_EQ(coil_recvmsg(sv[1], &mi, MSG_CMSG_CLOEXEC, COIL_FOREVER), 1);
	struct cmsghdr *got = CMSG_FIRSTHDR(&mi);
	ASSERT(got != NULL);
	ASSERT_EQ(got->cmsg_type, SCM_RIGHTS);
	int wfd;
	memcpy(&wfd, CMSG_DATA(got), sizeof(int));
	ASSERT_EQ(write(wfd, "z", 1), 1);
	ASSERT_EQ(read(pp[0], &c, 1), 1);
	ASSERT_EQ(c, 'z');
	close(wfd);
	close(pp[0]);
	close(pp[1]);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

TEST(sendmsg_recvmsg_rights)
{
	ASSERT_EQ(run_cfg(rights_main, NULL, 1, 0), 0);
}

static int shutdown_main(void *p, void **res)
{
	(void)p;
	(void)res;
	int sv[2];
	pair(sv);
	ASSERT_EQ(coil_send(sv[0], "bye", 3, 0, COIL_FOREVER), 3);
	ASSERT_EQ(coil_shutdown(sv[0], SHUT_WR, COIL_FOREVER), 0);
	char buf[8];
	ASSERT_EQ(coil_recv(sv[1], buf, sizeof(buf), 0, COIL_FOREVER), 3);
	ASSERT_EQ(coil_recv(sv[1], buf, sizeof(buf), 0, COIL_FOREVER), 0);
	ASSERT_EQ(coil_close(sv[0], COIL_FOREVER), 0);
	ASSERT_EQ(coil_recv(sv[0], buf, sizeof(buf), 0, COIL_FOREVER), -EBADF);
	ASSERT_EQ(coil_close(sv[0], COIL_FOREVER), -EBADF);
	ASSERT_EQ(coil_close(sv[1], COIL_FOREVER), 0);
	return 0;
}

TEST(shutdown_and_close)
{
	ASSERT_EQ(run_cfg(shutdown_main, NULL, 1, 0), 0);
}

/* --- without io_uring ------------------------------------------------------------ */

/* Installs a seccomp filter that answers io_uring_setup with EPERM, as a
 * container's default profile does. Returns false if the kernel (or a
 * tool running the test) refuses filters. */
static bool deny_io_uring(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return false;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *q = hay; (q = strstr(q, needle)); q += strlen(needle))
		n++;
	return n;
}

static int never_runs(void *p, void **res)
{
	(void)p;
	(void)res;
	abort();
}

TEST(no_io_uring_explains_why)
{
	/* Valgrind does not know the seccomp system call. */
	if (RUNNING_ON_VALGRIND || !deny_io_uring())
		TEST_SKIP("seccomp filters are not available");
	/* Catch stderr in a file. */
	FILE *f = tmpfile();
	ASSERT(f != NULL);
	fflush(stderr);
	int saved = dup(2);
	ASSERT_EQ(dup2(fileno(f), 2), 2);
	int rc1 = coil_run(never_runs, NULL, NULL, NULL);
	coil_loop_t *loop = NULL;
	int rc2 = coil_new_event_loop(&loop);
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	coil_runtime_t *rt = NULL;
	int rc3 = coil_runtime_new(&rt, &o);
	fflush(stderr);
	ASSERT_EQ(dup2(saved, 2), 2);
	close(saved);
	ASSERT_EQ(rc1, -EPERM);
	ASSERT_EQ(rc2, -EPERM);
	ASSERT_EQ(rc3, -EPERM);
	ASSERT(loop == NULL && rt == NULL);
	char msg[4096] = "";
	rewind(f);
	size_t n = fread(msg, 1, sizeof(msg) - 1, f);
	msg[n] = 0;
	fclose(f);
	fprintf(stderr, "  (message: %s)\n", msg);
	ASSERT(strstr(msg, "io_uring is not available") != NULL);
	ASSERT(strstr(msg, "seccomp") != NULL || strstr(msg, "io_uring_disabled") != NULL);
	/* Said once, not once per attempt. */
	ASSERT_EQ(count(msg, "io_uring is not available"), 1);
}

TEST(debug_reports_ring_features)
{
	ASSERT_EQ(setenv("COIL_DEBUG", "1", 1), 0);
	FILE *f = tmpfile();
	ASSERT(f != NULL);
	fflush(stderr);
	int saved = dup(2);
	ASSERT_EQ(dup2(fileno(f), 2), 2);
	int rc = run_cfg(pending_cancel_main, NULL, 2, 0);
	fflush(stderr);
	ASSERT_EQ(dup2(saved, 2), 2);
	close(saved);
	ASSERT_EQ(rc, 0);
	char msg[4096] = "";
	rewind(f);
	size_t n = fread(msg, 1, sizeof(msg) - 1, f);
	msg[n] = 0;
	fclose(f);
	fprintf(stderr, "%s", msg);
	/* Once for the process, not once per worker's ring; the setup flags
	 * once for each set in use (every worker's ring has the same here:
	 * worker 0's, which may move between threads, differs only on a
	 * kernel that cannot cancel everything at once). */
	ASSERT_EQ(count(msg, "io_uring setup flags:"), 1);
	ASSERT(strstr(msg, "SINGLE_ISSUER DEFER_TASKRUN") != NULL);
	ASSERT_EQ(count(msg, "io_uring features:"), 1);
	ASSERT(strstr(msg, "opcodes supported") != NULL);
}

TEST_LIST(
	TEST_ENTRY(send_recv_stream),
	TEST_ENTRY(accept_connect),
	TEST_ENTRY(recv_timeout_leaves_socket_usable),
	TEST_ENTRY(each_op_times_out),
	TEST_ENTRY(bad_arguments),
	TEST_ENTRY(outside_a_task),
	TEST_ENTRY(peer_reset),
	TEST_ENTRY(accept_emfile),
	TEST_ENTRY(cancel_recv_same_worker),
	TEST_ENTRY(cancel_recv_from_other_worker),
	TEST_ENTRY(completion_beats_cancel),
	TEST_ENTRY(cancel_pending_before_submit),
	TEST_ENTRY(cancel_races_data_no_loss),
	TEST_ENTRY(force_close_at_shutdown),
	TEST_ENTRY(io_moves_with_its_worker_to_a_new_thread),
	TEST_ENTRY(loop_moves_to_another_thread_with_io_in_flight),
	TEST_ENTRY(tasks_migrate_between_ops),
	TEST_ENTRY(acceptor_many_connections),
	TEST_ENTRY(acceptor_timeout_cancel_close),
	TEST_ENTRY(small_ring_sq_full_cq_overflow),
	TEST_ENTRY(udp_sendto_recvfrom_msg),
	TEST_ENTRY(sendmsg_recvmsg_rights),
	TEST_ENTRY(shutdown_and_close),
	TEST_ENTRY(no_io_uring_explains_why),
	TEST_ENTRY(debug_reports_ring_features),
)
