/*
 * tests/test_server.c: servers (coil_start_server, coil_start_unix_server).
 *
 * Serving over IPv4, IPv6, every interface and Unix sockets; 1,000
 * concurrent connections on a 2-worker runtime exchanging checksummed
 * data (nothing lost, nothing reordered within a connection); running out
 * of descriptors on accept (reported once, no spinning, served again once
 * descriptors are free); graceful close (grace period, then cancellation,
 * then waiting for handlers that clean up); a handler that closes its own
 * server; serve_forever and its cancellation; errors.
 *
 * Waits for a condition poll it with 1 ms sleeps; the real clock (and the
 * process's CPU time) is asserted only where a time bound is under test.
 * The 1,000-connection test's size comes from COIL_TEST_CONNS and
 * COIL_TEST_CONN_BYTES, and is smaller by default under Valgrind.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif

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

static double cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static bool under_valgrind(void)
{
#ifdef RUNNING_ON_VALGRIND
	if (RUNNING_ON_VALGRIND)
		return true;
#endif
	return getenv("COIL_VALGRIND") != NULL;
}

static void run(coil_fn fn, void *arg)
{
	int rc = coil_run(fn, arg, NULL, NULL);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
}

static void await_task(coil_task_t *t)
{
	coil_await(coil_task_future(t), NULL);
	coil_task_detach(t);
}

static void close_stream(coil_stream_t *s)
{
	coil_stream_close(s);
	coil_stream_wait_closed(s, SEC);
	coil_stream_free(s);
}

static bool ipv6_loopback(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* Echoes lines until the end of the stream. */
static int line_echo(coil_stream_t *s, void *arg)
{
	(void)arg;
	char line[256];
	for (;;) {
		ssize_t n = coil_stream_readline(s, line, sizeof(line), 30 * SEC);
		if (n <= 0)
			return (int)n;
		int rc = coil_stream_write_all(s, line, (size_t)n, 30 * SEC);
		if (rc)
			return rc;
	}
}

/* Sends a few lines and reads them back, then half-closes and reads the
 * end the server's close gives. */
static void echo_lines(coil_stream_t *s)
{
	const char *lines[] = { "one\n", "two two\n", "three three three\n" };
	for (int i = 0; i < 3; i++) {
		size_t len = strlen(lines[i]);
		ASSERT_EQ(coil_stream_write_all(s, lines[i], len, 10 * SEC), 0);
		char buf[64];
		ASSERT_EQ(coil_stream_readline(s, buf, sizeof(buf), 10 * SEC), (ssize_t)len);
		ASSERT(!memcmp(buf, lines[i], len));
	}
	ASSERT_EQ(coil_stream_write_eof(s, 10 * SEC), 0);
	char c;
	ASSERT_EQ(coil_stream_read(s, &c, 1, 10 * SEC), 0);
}

static void echo_via(const char *host, int port)
{
	coil_stream_t *s = NULL;
	ASSERT_EQ(coil_open_connection(&s, host, port, NULL, 10 * SEC), 0);
	echo_lines(s);
	close_stream(s);
}

static void wait_until_int(atomic_int *v, int want)
{
	while (atomic_load(v) < want)
		coil_sleep(0.001);
}

/* --- serving -------------------------------------------------------------- */

/* Answers with the connection's TCP_NODELAY setting. */
static int nodelay_handler(coil_stream_t *s, void *arg)
{
	(void)arg;
	int v = -1;
	socklen_t len = sizeof(v);
	getsockopt(coil_stream_fd(s), IPPROTO_TCP, TCP_NODELAY, &v, &len);
	char c = v ? '1' : '0';
	return coil_stream_write_all(s, &c, 1, 10 * SEC);
}

/* Accepted connections inherit TCP_NODELAY from the listening socket. */
static void check_nodelay(void)
{
	coil_server_t *srv;
	ASSERT_EQ(coil_start_server(&srv, nodelay_handler, NULL, "127.0.0.1", 0, NULL, SEC), 0);
	coil_stream_t *s;
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", coil_server_port(srv), NULL, SEC), 0);
	char c = 0;
	ASSERT_EQ(coil_stream_readexactly(s, &c, 1, 10 * SEC), 1);
	ASSERT_EQ(c, '1');
	close_stream(s);
	ASSERT_EQ(coil_server_close(srv, SEC), 0);
	ASSERT_EQ(coil_server_free(srv), 0);
}

static int body_tcp(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_server_t *srv;
	ASSERT_EQ(coil_start_server(&srv, line_echo, NULL, "127.0.0.1", 0, NULL, SEC), 0);
	ASSERT_EQ(coil_server_nsockets(srv), 1);
	int port = coil_server_port(srv);
	ASSERT_GT(port, 0);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	ASSERT_EQ(coil_server_sockname(srv, 0, (struct sockaddr *)&ss, &len), 0);
	ASSERT_EQ(ss.ss_family, AF_INET);
	ASSERT_EQ(coil_server_sockname(srv, 1, (struct sockaddr *)&ss, &len), -EINVAL);
	ASSERT(coil_server_is_serving(srv));
	echo_via("127.0.0.1", port);
	echo_via("localhost", port);
	check_nodelay();
	ASSERT_EQ(coil_server_close(srv, SEC), 0);
	ASSERT(!coil_server_is_serving(srv));
	ASSERT_EQ(coil_server_connections(srv), 0);
	ASSERT_EQ(coil_server_free(srv), 0);
	coil_stream_t *s = NULL;
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", port, NULL, SEC), -ECONNREFUSED);
	if (!ipv6_loopback()) {
		fprintf(stderr, "  no IPv6 loopback: ::1 not tested\n");
		return 0;
	}
	ASSERT_EQ(coil_start_server(&srv, line_echo, NULL, "::1", 0, NULL, SEC), 0);
	len = sizeof(ss);
	ASSERT_EQ(coil_server_sockname(srv, 0, (struct sockaddr *)&ss, &len), 0);
	ASSERT_EQ(ss.ss_family, AF_INET6);
	echo_via("::1", coil_server_port(srv));
	ASSERT_EQ(coil_server_close(srv, SEC), 0);
	ASSERT_EQ(coil_server_free(srv), 0);
	return 0;
}

TEST(serve_ipv4_ipv6)
{
	run(body_tcp, NULL);
	coil__dns_shutdown(); /* "localhost" started a resolver thread */
}

/* No host: every interface, IPv4 and IPv6, on one port. */
static int body_all(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_server_t *srv;
	ASSERT_EQ(coil_start_server(&srv, line_echo, NULL, NULL, 0, NULL, SEC), 0);
	int port = coil_server_port(srv);
	ASSERT_GT(port, 0);
	bool v6 = ipv6_loopback();
	ASSERT_EQ(coil_server_nsockets(srv), v6 ? 2 : 1);
	for (unsigned i = 0; i < coil_server_nsockets(srv); i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		ASSERT_EQ(coil_server_sockname(srv, i, (struct sockaddr *)&ss, &len), 0);
		int p = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						      : ((struct sockaddr_in6 *)&ss)->sin6_port);
		ASSERT_EQ(p, port);
	}
	echo_via("127.0.0.1", port);
	if (v6)
		echo_via("::1", port);
	ASSERT_EQ(coil_server_close(srv, SEC), 0);
	ASSERT_EQ(coil_server_free(srv), 0);
	return 0;
}

TEST(serve_all_interfaces) { run(body_all, NULL); }

static int body_unix(void *arg, void **res)
{
	(void)arg; (void)res;
	char path[64];
	snprintf(path, sizeof(path), "/tmp/coil-test-server-%d.sock", (int)getpid());
	/* A socket file left behind by an earlier run. */
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	strcpy(sun.sun_path, path);
	unlink(path);
	int old = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(bind(old, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(old);
	coil_server_t *srv;
	ASSERT_EQ(coil_start_unix_server(&srv, line_echo, NULL, path, NULL), 0);
	ASSERT_EQ(coil_server_port(srv), -EINVAL);
	for (int i = 0; i < 2; i++) {
		coil_stream_t *s;
		ASSERT_EQ(coil_open_unix_connection(&s, path, NULL, 10 * SEC), 0);
		echo_lines(s);
		close_stream(s);
	}
	ASSERT_EQ(coil_server_close(srv, SEC), 0);
	ASSERT_EQ(coil_server_free(srv), 0);
	struct stat st;
	ASSERT_EQ(stat(path, &st), -1); /* removed at close */
	/* The abstract namespace has no file. */
	snprintf(path, sizeof(path), "@coil-test-server-%d", (int)getpid());
	ASSERT_EQ(coil_start_unix_server(&srv, line_echo, NULL, path, NULL), 0);
	coil_stream_t *s;
	ASSERT_EQ(coil_open_unix_connection(&s, path, NULL, 10 * SEC), 0);
	echo_lines(s);
	close_stream(s);
	ASSERT_EQ(coil_server_close(srv, SEC), 0);
	ASSERT_EQ(coil_server_free(srv), 0);
	return 0;
}

TEST(serve_unix) { run(body_unix, NULL); }

/* --- 1,000 connections on two workers ------------------------------------- */

typedef struct big {
	int port;
	size_t bytes;
	atomic_int moved;      /* handlers that resumed on another worker */
	atomic_int on[2];      /* handlers started on worker 0 and 1 */
} big_t;

typedef struct client {
	big_t *b;
	unsigned id;
	coil_stream_t *s;
	int wrc;
} client_t;

/* The byte at position pos of connection id: a function of both, so a
 * byte lost, repeated or swapped with another connection's shows. */
static uint8_t byte_at(unsigned id, size_t pos)
{
	uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)id * 0xC2B2AE3D27D4EB4Full;
	x ^= x >> 29;
	return (uint8_t)(x ^ (x >> 17));
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* The server side: echoes everything; counts a handler that moved. */
static int byte_echo(coil_stream_t *s, void *arg)
{
	big_t *b = arg;
	int w0 = coil_current_worker();
	if (w0 >= 0 && w0 < 2)
		atomic_fetch_add(&b->on[w0], 1);
	char buf[16384];
	for (;;) {
		ssize_t n = coil_stream_read(s, buf, sizeof(buf), 60 * SEC);
		if (n <= 0) {
			if (coil_current_worker() != w0)
				atomic_fetch_add(&b->moved, 1);
			return (int)n;
		}
		int rc = coil_stream_write_all(s, buf, (size_t)n, 60 * SEC);
		if (rc)
			return rc;
	}
}

/* Sends the connection's bytes in chunks of random sizes, by write_all or
 * by write and drain, then half-closes. */
static int client_writer(void *arg, void **res)
{
	(void)res;
	client_t *c = arg;
	uint64_t rng = 0x1234567ull + c->id * 7919ull;
	uint8_t buf[8192];
	size_t sent = 0, total = c->b->bytes;
	while (sent < total && !c->wrc) {
		size_t n = 1 + (size_t)(rng_next(&rng) % sizeof(buf));
		if (n > total - sent)
			n = total - sent;
		for (size_t i = 0; i < n; i++)
			buf[i] = byte_at(c->id, sent + i);
		if (rng & 0x100) {
			c->wrc = coil_stream_write_all(c->s, buf, n, 60 * SEC);
		} else if (!(c->wrc = coil_stream_write(c->s, buf, n))) {
			c->wrc = coil_stream_drain(c->s, 60 * SEC);
		}
		sent += n;
	}
	if (!c->wrc)
		c->wrc = coil_stream_write_eof(c->s, 60 * SEC);
	return 0;
}

/* Connects, writes from a second task while it reads here in chunks of
 * random sizes, checking every byte of the echo, up to the end. */
static int client_main(void *arg, void **res)
{
	(void)res;
	client_t *c = arg;
	int rc = coil_open_connection(&c->s, "127.0.0.1", c->b->port, NULL, 60 * SEC);
	if (rc)
		return rc;
	coil_task_t *w;
	if ((rc = coil_spawn(&w, client_writer, c, NULL))) {
		close_stream(c->s);
		return rc;
	}
	uint64_t rng = 0xABCDEFull + c->id * 104729ull;
	uint8_t buf[8192];
	size_t got = 0;
	for (;;) {
		size_t want = 1 + (size_t)(rng_next(&rng) % sizeof(buf));
		ssize_t n = coil_stream_read(c->s, buf, want, 60 * SEC);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n && !rc; i++)
			if (buf[i] != byte_at(c->id, got + (size_t)i))
				rc = -EILSEQ;
		got += (size_t)n;
		if (rc)
			break;
	}
	await_task(w);
	if (!rc && got != c->b->bytes)
		rc = COIL_EINCOMPLETE;
	if (!rc)
		rc = c->wrc;
	close_stream(c->s);
	return rc;
}

typedef struct big_run {
	big_t b;
	size_t conns;
} big_run_t;

static int big_main(void *arg, void **res)
{
	(void)res;
	big_run_t *r = arg;
	coil_server_t *srv;
	ASSERT_EQ(coil_start_server(&srv, byte_echo, &r->b, "127.0.0.1", 0, NULL, SEC), 0);
	r->b.port = coil_server_port(srv);
	client_t *cs = calloc(r->conns, sizeof(*cs));
	coil_task_t **ts = calloc(r->conns, sizeof(*ts));
	for (size_t i = 0; i < r->conns; i++) {
		cs[i] = (client_t){ .b = &r->b, .id = (unsigned)i };
		ASSERT_EQ(coil_spawn(&ts[i], client_main, &cs[i], NULL), 0);
	}
	size_t failed = 0;
	for (size_t i = 0; i < r->conns; i++) {
		int rc = coil_await(coil_task_future(ts[i]), NULL);
		if (rc) {
			if (failed++ < 5)
				fprintf(stderr, "  connection %zu: %s\n", i, coil_err_name(rc));
		}
		coil_task_detach(ts[i]);
	}
	ASSERT_EQ(failed, 0);
	ASSERT_EQ(coil_server_close(srv, 10 * SEC), 0);
	ASSERT_EQ(coil_server_connections(srv), 0);
	ASSERT_EQ(coil_server_free(srv), 0);
	free(cs);
	free(ts);
	return 0;
}

static size_t env_size(const char *name, size_t dflt)
{
	const char *e = getenv(name);
	return e && atol(e) > 0 ? (size_t)atol(e) : dflt;
}

TEST(thousand_connections_two_workers)
{
	big_run_t r;
	memset(&r, 0, sizeof(r));
	bool vg = under_valgrind();
	r.conns = env_size("COIL_TEST_CONNS", vg ? 100 : 1000);
	r.b.bytes = env_size("COIL_TEST_CONN_BYTES", vg ? 16384 : 65536);
	/* Two descriptors per connection (client and server side), plus the
	 * runtime's own. */
	struct rlimit rl;
	ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rlim_t need = 2 * r.conns + 100;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
		TEST_SKIP("RLIMIT_NOFILE's hard limit is too low for the connections");
	if (rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max;
		ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = (unsigned)env_size("COIL_TEST_WORKERS", 2);
	coil_runtime_t *rt = NULL;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	int64_t t0 = now_ns();
	rc = coil_runtime_block_on(rt, big_main, &r, NULL);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, SEC), 0);
	/* Where handlers run is the scheduler's choice: printed, not
	 * asserted. */
	fprintf(stderr, "  %zu connections x %zu bytes echoed in %.0f ms; handlers "
		"started on workers 0/1: %d/%d, %d resumed on another worker\n",
		r.conns, r.b.bytes, (double)(now_ns() - t0) / 1e6,
		atomic_load(&r.b.on[0]), atomic_load(&r.b.on[1]),
		atomic_load(&r.b.moved));
}

/* --- running out of descriptors -------------------------------------------- */

static atomic_int emfile_reports, other_reports;

static void counting_handler(coil_loop_t *loop, const coil_exc_context_t *ctx,
			     void *arg)
{
	(void)arg;
	if (ctx->error == -EMFILE) {
		atomic_fetch_add(&emfile_reports, 1);
	} else {
		atomic_fetch_add(&other_reports, 1);
		coil_loop_default_exception_handler(loop, ctx);
	}
}

typedef struct pinger {
	int fd, port;
	int rc;
} pinger_t;

/* Connects an already made socket (no descriptor needed) and asks for an
 * echo. */
static int pinger_task(void *arg, void **res)
{
	(void)res;
	pinger_t *p = arg;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p->port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->rc = coil_connect(p->fd, (struct sockaddr *)&a, sizeof(a), 10 * SEC);
	if (p->rc)
		return 0;
	coil_stream_t *s;
	ASSERT_EQ(coil_stream_from_fd(&s, p->fd, NULL), 0);
	char buf[16];
	if (!(p->rc = coil_stream_write_all(s, "ping\n", 5, 10 * SEC))) {
		ssize_t n = coil_stream_readline(s, buf, sizeof(buf), 30 * SEC);
		p->rc = n == 5 && !memcmp(buf, "ping\n", 5) ? 0 : n < 0 ? (int)n : -EILSEQ;
	}
	close_stream(s);
	return 0;
}

#define NPING 4

static int body_emfile(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_loop_set_exception_handler(coil_get_running_loop(), counting_handler, NULL);
	coil_server_t *srv;
	ASSERT_EQ(coil_start_server(&srv, line_echo, NULL, "127.0.0.1", 0, NULL, SEC), 0);
	pinger_t ps[NPING];
	for (int i = 0; i < NPING; i++) {
		ps[i] = (pinger_t){ .port = coil_server_port(srv), .rc = 1 };
		ps[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT(ps[i].fd >= 0);
	}
	/* Take every descriptor below a lowered limit. */
	struct rlimit old, low;
	ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = old.rlim_cur < 256 ? old.rlim_cur : 256;
	ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
	static int fill[256];
	int nfill = 0, fd;
	while ((fd = dup(ps[0].fd)) >= 0)
		fill[nfill++] = fd;
	ASSERT_EQ(errno, EMFILE);
	coil_task_t *ts[NPING];
	for (int i = 0; i < NPING; i++)
		ASSERT_EQ(coil_spawn(&ts[i], pinger_task, &ps[i], NULL), 0);
	wait_until_int(&emfile_reports, 1);
	/* Starved: it must neither spin nor report again. */
	double c0 = cpu_ms();
	coil_sleep(0.5);
	double used = cpu_ms() - c0;
	fprintf(stderr, "  %.1f ms of CPU in 500 ms without descriptors\n", used);
	ASSERT_LT(used, 200);
	ASSERT_EQ(atomic_load(&emfile_reports), 1);
	ASSERT_EQ(coil_server_connections(srv), 0);
	/* Descriptors again: every waiting connection is served. */
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
	for (int i = 0; i < NPING; i++) {
		await_task(ts[i]);
		ASSERT_EQ(ps[i].rc, 0);
	}
	ASSERT_EQ(atomic_load(&emfile_reports), 1);
	ASSERT_EQ(atomic_load(&other_reports), 0);
	ASSERT_EQ(coil_server_close(srv, SEC), 0);
	ASSERT_EQ(coil_server_free(srv), 0);
	return 0;
}

TEST(accept_emfile_backoff)
{
	/* Valgrind keeps a limit of its own for the calls it sees (dup) and
	 * leaves the kernel's, which the ring's accept obeys, as it was. */
	if (under_valgrind())
		TEST_SKIP("Valgrind does not pass RLIMIT_NOFILE on to the kernel");
	run(body_emfile, NULL);
}

/* --- closing ---------------------------------------------------------------- */

typedef struct gstate {
	atomic_int started, cancelled, cleaned, finished;
} gstate_t;

/* Waits for a line that never comes, past any grace period; on
 * cancellation it cleans up with an await of its own. */
static int stubborn(coil_stream_t *s, void *arg)
{
	gstate_t *g = arg;
	atomic_fetch_add(&g->started, 1);
	char buf[64];
	ssize_t n = coil_stream_readline(s, buf, sizeof(buf), COIL_FOREVER);
	if (n == -ECANCELED) {
		atomic_fetch_add(&g->cancelled, 1);
		coil_sleep(0.02);
		atomic_fetch_add(&g->cleaned, 1);
		return -ECANCELED;
	}
	atomic_fetch_add(&g->finished, 1);
	return 0;
}

/* Takes a moment, then returns by itself. */
static int quick(coil_stream_t *s, void *arg)
{
	(void)s;
	gstate_t *g = arg;
	atomic_fetch_add(&g->started, 1);
	coil_sleep(0.03);
	atomic_fetch_add(&g->finished, 1);
	return 0;
}

static int body_graceful(void *arg, void **res)
{
	(void)arg; (void)res;
	gstate_t g = { 0 };
	coil_server_t *srv;
	ASSERT_EQ(coil_start_server(&srv, stubborn, &g, "127.0.0.1", 0, NULL, SEC), 0);
	int port = coil_server_port(srv);
	coil_stream_t *cl[3];
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_open_connection(&cl[i], "127.0.0.1", port, NULL, SEC), 0);
	wait_until_int(&g.started, 3);
	ASSERT_EQ(coil_server_connections(srv), 3);
	int64_t t0 = now_ns();
	ASSERT_EQ(coil_server_close(srv, 50 * MS), -ETIMEDOUT);
	int64_t dt = now_ns() - t0;
	ASSERT_GE(dt, 45 * MS);
	ASSERT_LT(dt, 10 * SEC);
	/* Every handler was cancelled and had finished its cleanup. */
	ASSERT_EQ(atomic_load(&g.cancelled), 3);
	ASSERT_EQ(atomic_load(&g.cleaned), 3);
	ASSERT_EQ(atomic_load(&g.finished), 0);
	ASSERT_EQ(coil_server_connections(srv), 0);
	ASSERT_EQ(coil_server_close(srv, SEC), 0); /* closed already */
	ASSERT_EQ(coil_server_free(srv), 0);
	for (int i = 0; i < 3; i++) {
		char c;
		ssize_t n = coil_stream_read(cl[i], &c, 1, 10 * SEC);
		ASSERT(n == 0 || n == -ECONNRESET);
		close_stream(cl[i]);
	}
	/* Handlers that end within the grace period: 0, without waiting it out. */
	gstate_t q = { 0 };
	ASSERT_EQ(coil_start_server(&srv, quick, &q, "127.0.0.1", 0, NULL, SEC), 0);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_open_connection(&cl[i], "127.0.0.1", coil_server_port(srv),
					       NULL, SEC), 0);
	wait_until_int(&q.started, 3);
	t0 = now_ns();
	ASSERT_EQ(coil_server_close(srv, 30 * SEC), 0);
	ASSERT_LT(now_ns() - t0, 10 * SEC);
	ASSERT_EQ(atomic_load(&q.finished), 3);
	ASSERT_EQ(coil_server_free(srv), 0);
	for (int i = 0; i < 3; i++)
		close_stream(cl[i]);
	return 0;
}

/* On two workers: handlers, the closer and the acceptor may all be on
 * different threads. */
TEST(graceful_close)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	int rc = coil_run(body_graceful, NULL, NULL, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
}

/* A handler closes its own server ("quit"); the task in serve_forever
 * returns; the server is freed once that handler has ended. */
static int quitter(coil_stream_t *s, void *arg)
{
	coil_server_t **srv = arg;
	char line[64];
	ssize_t n = coil_stream_readline(s, line, sizeof(line), 10 * SEC);
	if (n != 5 || memcmp(line, "quit\n", 5))
		return -EPROTO;
	int rc = coil_server_close(*srv, SEC);
	char reply[32];
	int len = snprintf(reply, sizeof(reply), "bye %d\n", rc);
	return coil_stream_write_all(s, reply, (size_t)len, 10 * SEC);
}

typedef struct quit_client {
	int port;
	char reply[32];
	ssize_t n;
} quit_client_t;

static int quit_client_task(void *arg, void **res)
{
	(void)res;
	quit_client_t *q = arg;
	coil_stream_t *s;
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", q->port, NULL, 10 * SEC), 0);
	ASSERT_EQ(coil_stream_write_all(s, "quit\n", 5, 10 * SEC), 0);
	q->n = coil_stream_readline(s, q->reply, sizeof(q->reply), 10 * SEC);
	close_stream(s);
	return 0;
}

static int body_quit(void *arg, void **res)
{
	(void)arg; (void)res;
	static coil_server_t *srv;
	ASSERT_EQ(coil_start_server(&srv, quitter, &srv, "127.0.0.1", 0, NULL, SEC), 0);
	quit_client_t q = { .port = coil_server_port(srv) };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, quit_client_task, &q, NULL), 0);
	ASSERT_EQ(coil_server_serve_forever(srv), 0);
	ASSERT(!coil_server_is_serving(srv));
	ASSERT_EQ(coil_server_free(srv), 0); /* deferred to the handler's end */
	await_task(t);
	ASSERT_EQ(q.n, 6);
	ASSERT(!memcmp(q.reply, "bye 0\n", 6));
	return 0;
}

TEST(close_from_handler) { run(body_quit, NULL); }

static int serve_task(void *arg, void **res)
{
	(void)res;
	coil_server_t *srv = arg;
	return coil_server_serve_forever(srv);
}

static int close_task(void *arg, void **res)
{
	(void)res;
	return coil_server_close(arg, 0);
}

/* A cancelled serve_forever leaves the server serving; a second close
 * waits for the first; free refuses a server that is not closed. */
static int body_serve_forever(void *arg, void **res)
{
	(void)arg; (void)res;
	gstate_t q = { 0 };
	coil_server_t *srv;
	ASSERT_EQ(coil_start_server(&srv, quick, &q, "127.0.0.1", 0, NULL, SEC), 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, serve_task, srv, NULL), 0);
	coil_sleep(0.002);
	coil_task_cancel(t, NULL);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), -ECANCELED);
	coil_task_detach(t);
	ASSERT(coil_server_is_serving(srv));
	ASSERT_EQ(coil_server_free(srv), COIL_EINVALSTATE);
	coil_stream_t *s;
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", coil_server_port(srv), NULL, SEC), 0);
	wait_until_int(&q.started, 1);
	coil_task_t *waiter, *second;
	ASSERT_EQ(coil_spawn(&waiter, serve_task, srv, NULL), 0);
	coil_sleep(0.002);
	/* The first close waits for the handler (30 ms); the second waits for
	 * the first and sees everything finished. */
	ASSERT_EQ(coil_spawn(&second, close_task, srv, NULL), 0);
	ASSERT_EQ(coil_server_close(srv, 10 * SEC), 0);
	ASSERT_EQ(coil_await(coil_task_future(second), NULL), 0);
	ASSERT_EQ(coil_await(coil_task_future(waiter), NULL), 0);
	coil_task_detach(second);
	coil_task_detach(waiter);
	ASSERT_EQ(atomic_load(&q.finished), 1);
	ASSERT_EQ(coil_server_free(srv), 0);
	close_stream(s);
	return 0;
}

TEST(serve_forever_and_second_close) { run(body_serve_forever, NULL); }

/* --- errors ------------------------------------------------------------------ */

static atomic_int handler_errors;

static void error_counter(coil_loop_t *loop, const coil_exc_context_t *ctx, void *arg)
{
	(void)loop; (void)arg;
	if (ctx->error == -EPROTO)
		atomic_fetch_add(&handler_errors, 1);
}

static int failing(coil_stream_t *s, void *arg)
{
	(void)s; (void)arg;
	return -EPROTO;
}

static int body_errors(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_server_t *srv, *other = NULL;
	ASSERT_EQ(coil_start_server(&srv, line_echo, NULL, "127.0.0.1", 0, NULL, SEC), 0);
	int port = coil_server_port(srv);
	ASSERT_EQ(coil_start_server(&other, line_echo, NULL, "127.0.0.1", port, NULL, SEC),
		  -EADDRINUSE);
	ASSERT(other == NULL);
	ASSERT_EQ(coil_start_server(&other, NULL, NULL, "127.0.0.1", 0, NULL, SEC), -EINVAL);
	ASSERT_EQ(coil_start_server(&other, line_echo, NULL, "127.0.0.1", 65536, NULL, SEC),
		  -EINVAL);
	ASSERT_EQ(coil_start_server(NULL, line_echo, NULL, "127.0.0.1", 0, NULL, SEC), -EINVAL);
	ASSERT_EQ(coil_start_server(&other, line_echo, NULL, "127.0.0.1", 0, NULL, -4), -EINVAL);
	ASSERT_EQ(coil_start_unix_server(&other, line_echo, NULL, "", NULL), -EINVAL);
	ASSERT_EQ(coil_server_close(srv, -9), -EINVAL);
	ASSERT(coil_server_is_serving(srv));
	ASSERT_EQ(coil_server_close(srv, 0), 0);
	ASSERT_EQ(coil_server_free(srv), 0);
	/* A handler's error reaches the loop's exception handler. */
	coil_loop_set_exception_handler(coil_get_running_loop(), error_counter, NULL);
	ASSERT_EQ(coil_start_server(&srv, failing, NULL, "127.0.0.1", 0, NULL, SEC), 0);
	coil_stream_t *s;
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", coil_server_port(srv), NULL, SEC), 0);
	wait_until_int(&handler_errors, 1);
	char c;
	ASSERT_EQ(coil_stream_read(s, &c, 1, 10 * SEC), 0);
	close_stream(s);
	ASSERT_EQ(coil_server_close(srv, SEC), 0);
	ASSERT_EQ(coil_server_free(srv), 0);
	ASSERT_EQ(coil_server_free(NULL), 0);
	return 0;
}

TEST(server_errors) { run(body_errors, NULL); }

/* A resolver that never answers until the test lets it. */
static atomic_int gate_open;

static int held_resolver(const char *host, const char *service,
			 const struct addrinfo *hints, struct addrinfo **res)
{
	(void)host;
	while (!atomic_load(&gate_open)) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return getaddrinfo("127.0.0.1", service, hints, res);
}

/* The timeout of start_server bounds its name lookup. */
static int body_lookup_timeout(void *arg, void **res)
{
	(void)arg; (void)res;
	coil_server_t *srv = NULL;
	int64_t t0 = now_ns();
	ASSERT_EQ(coil_start_server(&srv, line_echo, NULL, "slow.example", 0, NULL, 30 * MS),
		  -ETIMEDOUT);
	ASSERT_LT(now_ns() - t0, 5 * SEC);
	ASSERT(srv == NULL);
	atomic_store(&gate_open, 1);
	ASSERT_EQ(coil_start_server(&srv, line_echo, NULL, "slow.example", 0, NULL, 10 * SEC), 0);
	echo_via("127.0.0.1", coil_server_port(srv));
	ASSERT_EQ(coil_server_close(srv, SEC), 0);
	ASSERT_EQ(coil_server_free(srv), 0);
	return 0;
}

TEST(start_server_lookup_timeout)
{
	coil__dns_set_resolver(held_resolver);
	run(body_lookup_timeout, NULL);
	coil__dns_shutdown();
}

typedef struct closer {
	coil_server_t *srv;
	int rc;
} closer_t;

static int closer_task(void *arg, void **res)
{
	(void)res;
	closer_t *c = arg;
	c->rc = coil_server_close(c->srv, COIL_FOREVER);
	return 0;
}

/* A closer cancelled during an endless grace period still completes the
 * close (the handlers are cancelled and waited for) and says -ECANCELED. */
static int body_closer_cancelled(void *arg, void **res)
{
	(void)arg; (void)res;
	gstate_t g = { 0 };
	closer_t c = { 0 };
	ASSERT_EQ(coil_start_server(&c.srv, stubborn, &g, "127.0.0.1", 0, NULL, SEC), 0);
	coil_stream_t *cl;
	ASSERT_EQ(coil_open_connection(&cl, "127.0.0.1", coil_server_port(c.srv), NULL, SEC), 0);
	wait_until_int(&g.started, 1);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, closer_task, &c, NULL), 0);
	coil_sleep(0.01);
	ASSERT(!coil_server_is_serving(c.srv));
	ASSERT_EQ(atomic_load(&g.cancelled), 0);
	coil_task_cancel(t, NULL);
	await_task(t);
	ASSERT_EQ(c.rc, -ECANCELED);
	ASSERT_EQ(atomic_load(&g.cleaned), 1);
	ASSERT_EQ(coil_server_connections(c.srv), 0);
	ASSERT_EQ(coil_server_free(c.srv), 0);
	close_stream(cl);
	return 0;
}

TEST(close_cancelled_closer) { run(body_closer_cancelled, NULL); }

TEST(server_outside_task)
{
	coil_server_t *srv = NULL;
	ASSERT_EQ(coil_start_server(&srv, line_echo, NULL, "127.0.0.1", 0, NULL, SEC),
		  COIL_EINVALSTATE);
	ASSERT(srv == NULL);
}

TEST_LIST(
	TEST_ENTRY(serve_ipv4_ipv6),
	TEST_ENTRY(serve_all_interfaces),
	TEST_ENTRY(serve_unix),
	TEST_ENTRY(thousand_connections_two_workers),
	TEST_ENTRY(accept_emfile_backoff),
	TEST_ENTRY(graceful_close),
	TEST_ENTRY(close_from_handler),
	TEST_ENTRY(serve_forever_and_second_close),
	TEST_ENTRY(server_errors),
	TEST_ENTRY(start_server_lookup_timeout),
	TEST_ENTRY(close_cancelled_closer),
	TEST_ENTRY(server_outside_task)
)
