/*
 * bench/w6_echo_server.c: workload W6 of WORKLOADS.md, the echo server on
 * coil.
 *
 * A TCP echo server on 127.0.0.1:PORT: every accepted connection gets
 * TCP_NODELAY, and every byte read on it is written back, in order, short
 * sends continued. It serves until SIGINT or SIGTERM, then stops accepting,
 * ends its connections and the runtime, and exits 0. Drive it with the
 * neutral load generator (WORKLOADS.md, "coil's programs"):
 *     w6_echo_server --port P & /tmp/loadgen -p P -c 64 -d 5 -P $!
 *
 * Two ways to write it with coil, chosen with --api:
 *   stream  (default) coil/stream.h's coil_start_server, with a handler
 *           that does coil_stream_read and coil_stream_write_all: asyncio's
 *           start_server echo;
 *   ops     coil/io.h's raw operations: one task per connection doing
 *           coil_recv into a buffer on its stack and coil_send of what
 *           came, the connections taken from a multishot accept
 *           (coil_acceptor_*) by an accepting task.
 * Both make one ring operation per receive and per send: a stream read of
 * a whole buffer's size receives straight into the caller's memory, and
 * write_all with nothing buffered is one send.
 *
 * Listeners. With one worker there is one listening socket. With N
 * workers (--workers N) there are N sockets bound to the same port with
 * SO_REUSEPORT, each served by a listener task pinned to its own worker
 * (started there with coil_run_coroutine_threadsafe_opts), as libuv and
 * epoll servers run one loop per thread; a connection's task starts on the
 * worker whose socket the kernel chose and may be stolen by another.
 * --accept one keeps a single listener on worker 0 instead: the other
 * workers then get connections only by stealing their tasks.
 *
 * Stopping: SIGINT and SIGTERM have handlers of coil's (coil/signal.h,
 * asyncio's add_signal_handler): a callback on worker 0's loop that sets
 * an event the main task waits on. The main task then cancels the
 * listener tasks and waits until each has closed its acceptor or server
 * (a server closes with no grace period: its handlers are cancelled); the
 * runtime's shutdown then cancels the ops connections still open, whose
 * tasks see -ECANCELED, close their sockets and end. The two signals are
 * blocked in every thread before the runtime starts, as signal.h asks, so
 * that only the loop's signalfd takes them.
 *
 * usage: w6_echo_server [--port 19000] [--workers 2] [--api stream|ops]
 *                       [--accept per-worker|one]
 */
#include <coil/coil.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connection's buffer: on its task's stack (64 KiB by default). */
#define BUF_SIZE (16 * 1024)
#define MAX_WORKERS 64

typedef struct server {
	int port;
	unsigned workers;
	bool ops;                  /* --api ops */
	bool accept_one;           /* --accept one */
	coil_event_t *stop;        /* set by the SIGINT and SIGTERM handlers */
	unsigned nlisten;          /* listener tasks: 1 or one per worker */
	coil_task_t *local;        /* the listener on worker 0 */
	coil_cfuture_t *remote[MAX_WORKERS]; /* those on the other workers */
	atomic_uint starting;      /* listeners not yet listening (or failed) */
	atomic_uint running;       /* listeners not yet ended */
	atomic_int error;          /* the first listener's setup error */
	coil_event_t *up;          /* set when `starting` reaches 0 */
	coil_event_t *done;        /* set when `running` reaches 0 */
	atomic_ulong accepted;
} server_t;

/* A loop callback (never in signal context): wakes the main task. */
static void on_signal(void *arg)
{
	coil_event_set(arg);
}

/* A listener is up (or failed to start, rc < 0). The main task cancels
 * the listeners only once they all run: one cancelled before it started
 * would never run, nor say that it ended. */
static void listener_started(server_t *s, int rc)
{
	if (rc < 0) {
		int none = 0;
		atomic_compare_exchange_strong(&s->error, &none, rc);
	}
	if (atomic_fetch_sub(&s->starting, 1) == 1)
		coil_event_set(s->up);
}

static void listener_ended(server_t *s)
{
	if (atomic_fetch_sub(&s->running, 1) == 1)
		coil_event_set(s->done);
}

/* --- ops: raw operations ------------------------------------------------- */

/* One connection: receive, send it all back, until the peer is done, the
 * connection fails or the task is cancelled (at shutdown). */
static int conn_main(void *arg, void **result)
{
	(void)result;
	int fd = (int)(intptr_t)arg;
	char buf[BUF_SIZE];
	for (;;) {
		ssize_t n = coil_recv(fd, buf, sizeof(buf), 0, COIL_FOREVER);
		if (n <= 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = coil_send(fd, buf + off, (size_t)(n - off), 0, COIL_FOREVER);
			if (w <= 0)
				goto done;
			off += w;
		}
	}
done:
	/* A plain close: it never blocks for a socket, and unlike a ring
	 * close it is not skipped when the task is being cancelled. */
	close(fd);
	return 0;
}

static int listen_on(int port, bool reuse_port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, SOMAXCONN)) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* Accepts on a socket of its own until cancelled; each connection gets a
 * task. */
static void listen_ops(server_t *s)
{
	int lfd = listen_on(s->port, s->nlisten > 1);
	coil_acceptor_t *a = NULL;
	int rc = lfd < 0 ? lfd : coil_acceptor_open(&a, lfd);
	if (rc < 0)
		fprintf(stderr, "w6_echo_server: listen on port %d: %s\n", s->port,
			coil_strerror(rc));
	listener_started(s, rc);
	while (rc == 0) {
		int fd = coil_acceptor_next(a, COIL_FOREVER);
		if (fd == -ECANCELED || fd == COIL_ECLOSED)
			break;
		if (fd < 0) {
			/* A connection's own error, or descriptors ran out: say
			 * so and go on after a pause. */
			fprintf(stderr, "w6_echo_server: accept: %s\n", coil_strerror(fd));
			if (coil_sleep_ns(10 * 1000 * 1000) == -ECANCELED)
				break;
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (coil_spawn(NULL, conn_main, (void *)(intptr_t)fd, NULL)) {
			close(fd);
			continue;
		}
		atomic_fetch_add_explicit(&s->accepted, 1, memory_order_relaxed);
	}
	coil_acceptor_close(a);
	if (lfd >= 0)
		close(lfd);
}

/* --- stream: coil_start_server -------------------------------------------- */

static int handle_echo(coil_stream_t *st, void *arg)
{
	server_t *s = arg;
	atomic_fetch_add_explicit(&s->accepted, 1, memory_order_relaxed);
	char buf[BUF_SIZE];
	for (;;) {
		ssize_t n = coil_stream_read(st, buf, sizeof(buf), COIL_FOREVER);
		if (n <= 0)
			return n == 0 || n == -ECONNRESET ? 0 : (int)n;
		int rc = coil_stream_write_all(st, buf, (size_t)n, COIL_FOREVER);
		if (rc)
			return rc == -ECONNRESET || rc == -EPIPE ? 0 : rc;
	}
}

/* Runs a server of its own until cancelled. */
static void listen_stream(server_t *s)
{
	coil_stream_opts_t sto;
	coil_stream_opts_init(&sto);
	/* Reads of the whole buffer go straight into the handler's buffer. */
	sto.read_buffer = BUF_SIZE;
	coil_server_opts_t o;
	coil_server_opts_init(&o);
	o.stream = &sto;
	o.reuse_port = s->nlisten > 1;
	coil_server_t *srv;
	int rc = coil_start_server(&srv, handle_echo, s, "127.0.0.1", s->port, &o,
				   10 * COIL_NSEC_PER_SEC);
	if (rc)
		fprintf(stderr, "w6_echo_server: start_server on port %d: %s\n", s->port,
			coil_strerror(rc));
	listener_started(s, rc);
	if (rc)
		return;
	/* Returns when the task is cancelled; the server is ours to close,
	 * with no grace period: its handlers are cancelled. */
	coil_server_serve_forever(srv);
	coil_server_close(srv, 0);
	coil_server_free(srv);
}

/* --- the main task ---------------------------------------------------------- */

static int listener_main(void *arg, void **result)
{
	(void)result;
	server_t *s = arg;
	if (s->ops)
		listen_ops(s);
	else
		listen_stream(s);
	listener_ended(s);
	return 0;
}

/* Starts the listeners, waits for a signal, stops them. */
static int serve(server_t *s)
{
	int rc;
	if ((rc = coil_event_create(&s->up)))
		return rc;
	if ((rc = coil_event_create(&s->done))) {
		coil_event_destroy(s->up);
		return rc;
	}
	s->nlisten = s->accept_one ? 1 : s->workers;
	atomic_store(&s->starting, s->nlisten);
	atomic_store(&s->running, s->nlisten);
	/* This task runs on worker 0 (block_on); the listeners of the other
	 * workers are handed to their loops, pinned there. */
	coil_spawn_opts_t so;
	memset(&so, 0, sizeof(so));
	so.pinned = true;
	so.name = "w6-listener";
	coil_runtime_t *rt = coil_current_runtime();
	for (unsigned i = 1; i < s->nlisten; i++) {
		rc = coil_run_coroutine_threadsafe_opts(&s->remote[i], coil_runtime_loop(rt, (int)i),
							listener_main, s, &so);
		if (rc) {
			listener_started(s, rc);
			listener_ended(s);
		}
	}
	if ((rc = coil_spawn(&s->local, listener_main, s, &so))) {
		listener_started(s, rc);
		listener_ended(s);
	}
	if (atomic_load(&s->starting))
		coil_event_wait(s->up);
	rc = atomic_load(&s->error);
	if (rc == 0) {
		printf("# w6_echo_server port=%d workers=%u api=%s listeners=%u\n", s->port,
		       s->workers, s->ops ? "ops" : "stream", s->nlisten);
		fflush(stdout);
		rc = coil_event_wait(s->stop);
	}
	/* Stop: cancel every listener and wait until the last one has
	 * closed its acceptor or server. */
	if (s->local)
		coil_task_cancel(s->local, NULL);
	for (unsigned i = 1; i < s->nlisten; i++)
		if (s->remote[i])
			coil_cfuture_cancel(s->remote[i]);
	if (atomic_load(&s->running))
		coil_event_wait(s->done);
	if (s->local) {
		coil_await(coil_task_future(s->local), NULL);
		coil_task_detach(s->local);
	}
	for (unsigned i = 1; i < s->nlisten; i++)
		coil_cfuture_release(s->remote[i]);
	coil_event_destroy(s->done);
	coil_event_destroy(s->up);
	return rc;
}

static int main_task(void *arg, void **result)
{
	(void)result;
	server_t *s = arg;
	int rc = coil_event_create(&s->stop);
	if (rc)
		return rc;
	if ((rc = coil_add_signal_handler(SIGINT, on_signal, s->stop)) == 0 &&
	    (rc = coil_add_signal_handler(SIGTERM, on_signal, s->stop)) == 0)
		rc = serve(s);
	else
		fprintf(stderr, "w6_echo_server: coil_add_signal_handler: %s\n", coil_strerror(rc));
	coil_remove_signal_handler(SIGINT);
	coil_remove_signal_handler(SIGTERM);
	coil_event_destroy(s->stop);
	return rc;
}

static void usage(void)
{
	fprintf(stderr, "usage: w6_echo_server [--port P] [--workers N] [--api stream|ops] "
			"[--accept per-worker|one]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static server_t s = { .port = 19000, .workers = 2 };
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			usage();
		const char *v = argv[i + 1];
		if (!strcmp(argv[i], "--port"))
			s.port = atoi(v);
		else if (!strcmp(argv[i], "--workers"))
			s.workers = (unsigned)atoi(v);
		else if (!strcmp(argv[i], "--api") && (!strcmp(v, "ops") || !strcmp(v, "stream")))
			s.ops = !strcmp(v, "ops");
		else if (!strcmp(argv[i], "--accept") &&
			 (!strcmp(v, "one") || !strcmp(v, "per-worker")))
			s.accept_one = !strcmp(v, "one");
		else
			usage();
	}
	if (s.port <= 0 || s.port > 65535 || s.workers == 0 || s.workers > MAX_WORKERS)
		usage();

	/* Blocked here, before any thread exists, so in every thread: the
	 * signals reach the process only through the handlers' signalfd. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = s.workers;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &o);
	if (rc) {
		fprintf(stderr, "w6_echo_server: coil_runtime_new: %s\n", coil_strerror(rc));
		return 1;
	}
	rc = coil_runtime_block_on(rt, main_task, &s, NULL);
	/* Connections still open are cancelled now: their tasks close their
	 * sockets and end. */
	int src = coil_runtime_shutdown(rt, 0);
	if (src && src != -ETIMEDOUT)
		fprintf(stderr, "w6_echo_server: coil_runtime_shutdown: %s\n", coil_strerror(src));
	printf("# w6_echo_server stopped: %lu connections accepted\n",
	       (unsigned long)atomic_load(&s.accepted));
	if (rc) {
		fprintf(stderr, "w6_echo_server: %s\n", coil_strerror(rc));
		return 1;
	}
	return 0;
}
