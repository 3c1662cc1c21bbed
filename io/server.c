/*
 * io/server.c: servers (coil_start_server, coil_start_unix_server).
 *
 * A server is a set of listening sockets, one acceptor task per socket,
 * and the connections being handled. An acceptor is pinned to the worker
 * that started the server (its multishot accept lives in that worker's
 * ring); for each connection it spawns a handler task, not pinned, which
 * the scheduler may move to any worker.
 *
 * Connections. Each has a record (conn_t) linked in srv->conns and counted
 * in nconns from before its task is spawned until the task has finished
 * with it, so a close can wait for the count to fall. The record has two
 * owners, the acceptor (until it has stored the task handle) and the task
 * (until it ends); the second to let go frees it and drops the task
 * handle. A record belongs to no one else: a closer that needs a task
 * takes its own reference to it under the lock.
 *
 * Closing (coil_server_close) goes through the states SERVING, CLOSING
 * (the acceptors are cancelled and awaited, the listening sockets closed,
 * the handlers get the grace period), CANCELLING (every handler that has
 * started is cancelled; one spawned but not started sees the state when it
 * starts and closes its connection without running the handler) and
 * CLOSED. The closer waits through a waiter (core.h's protocol) that the
 * connection which brings the count down to its target claims and wakes;
 * a timer ends the grace period. A handler may close its own server: it
 * is left out of the count the closer waits for, and the server's memory
 * then lives until that handler ends (coil_server_free defers to it).
 *
 * Descriptors running out: accept fails with EMFILE or ENFILE for as long
 * as the process (or system) has no descriptor free, and a re-armed
 * accept fails again at once while connections wait in the backlog. The
 * acceptor reports the first failure of a run through the loop's
 * exception handler, then sleeps 1 ms, 2 ms, ... up to 100 ms between
 * tries, so a starved server costs a few wake-ups a second, and the first
 * success ends the run.
 */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core.h"
#include "coil/io.h"
#include "coil/stream.h"
#include "stream_int.h"

#define BACKOFF_MIN_NS 1000000LL     /* 1 ms */
#define BACKOFF_MAX_NS 100000000LL   /* 100 ms */

enum { SRV_SERVING, SRV_CLOSING, SRV_CANCELLING, SRV_CLOSED };

typedef struct listener {
	coil_server_t *srv;
	int fd;
	coil_task_t *task;           /* the acceptor, until it has ended */
	struct sockaddr_storage addr;
	socklen_t addrlen;
} listener_t;

typedef struct conn {
	coil__list_t link;           /* srv->conns or srv->parked */
	coil_server_t *srv;
	coil_task_t *task;           /* stored by the acceptor after the spawn */
	int fd;
	unsigned refs;               /* the acceptor's and the task's */
	bool started;                /* the task has run (or refused to) */
} conn_t;

struct coil_server {
	coil_stream_handler handler;
	void *arg;
	coil_stream_opts_t sopts;
	size_t stack_size;
	coil_future_t *closed;       /* done once the close has finished */
	char *unix_path;             /* to remove at close, or NULL */
	dev_t unix_dev;
	ino_t unix_ino;
	/* Under lock (coil__lock); state and nconns are also read without
	 * it by the getters. */
	coil__spin_t lock;
	_Atomic uint8_t state;
	atomic_size_t nconns;
	coil__list_t conns;          /* connections not yet dealt with */
	coil__list_t parked;         /* those the closer has dealt with */
	coil__waiter_t *closer;      /* waiting for nconns <= close_target */
	size_t close_target;
	bool free_pending;           /* freed by the last connection to end */
	unsigned n;
	listener_t ls[];
};

void coil_server_opts_init(coil_server_opts_t *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
}

static void opts_read(coil_server_opts_t *o, const coil_server_opts_t *in)
{
	coil_server_opts_init(o);
	if (!in)
		return;
	size_t n = in->size < sizeof(*o) ? in->size : sizeof(*o);
	if (n > sizeof(o->size))
		memcpy((char *)o + sizeof(o->size), (const char *)in + sizeof(o->size),
		       n - sizeof(o->size));
	o->size = sizeof(*o);
}

static uint8_t state_of(const coil_server_t *srv)
{
	return atomic_load_explicit(&((coil_server_t *)srv)->state,
				    memory_order_relaxed);
}

static void report(const char *message, int err)
{
	coil_exc_context_t ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.message = message;
	ctx.error = err;
	coil_loop_call_exception_handler(coil_get_running_loop(), &ctx);
}

static void server_free_now(coil_server_t *srv)
{
	coil_future_release(srv->closed);
	if (srv->unix_path)
		coil__strfree(srv->unix_path);
	coil__free(srv, sizeof(*srv) + srv->n * sizeof(listener_t));
}

/* --- connections ----------------------------------------------------------- */

/* The end of a connection's task: unlink, count down, wake the closer if
 * the count reached its target. Touches neither c nor srv afterwards. */
static void conn_finish(conn_t *c)
{
	coil_server_t *srv = c->srv;
	coil__lock(&srv->lock);
	coil__list_del(&c->link);
	size_t left = atomic_load_explicit(&srv->nconns, memory_order_relaxed) - 1;
	atomic_store_explicit(&srv->nconns, left, memory_order_relaxed);
	coil__waiter_t *w = srv->closer;
	if (w && left <= srv->close_target && coil__waiter_claim(w))
		srv->closer = NULL;
	else
		w = NULL;
	bool last = --c->refs == 0;
	coil_task_t *t = c->task;
	bool free_srv = left == 0 && srv->free_pending;
	coil__unlock(&srv->lock);
	if (last) {
		coil_task_detach(t);
		coil__free(c, sizeof(*c));
	}
	if (free_srv)
		server_free_now(srv);
	/* Last: the closer may free the server as soon as it runs. */
	if (w)
		coil__waiter_wake(w, 0);
}

static int conn_main(void *arg, void **result)
{
	(void)result;
	conn_t *c = arg;
	coil_server_t *srv = c->srv;
	coil__lock(&srv->lock);
	c->started = true;
	bool go = state_of(srv) < SRV_CANCELLING;
	coil__unlock(&srv->lock);
	int rc = 0;
	if (!go) {
		close(c->fd);
	} else {
		coil_stream_t *s = NULL;
		rc = coil__stream_new(&s, c->fd, true, &srv->sopts);
		if (rc == 0) {
			rc = srv->handler(s, srv->arg);
			/* A cancelled handler's connection is dropped: sending
			 * what it left buffered could wait on a peer that does
			 * not read, and nobody would end that wait. */
			if (rc != -ECANCELED)
				coil_stream_wait_closed(s, COIL_FOREVER);
			coil_stream_free(s);
		} else {
			/* The stream closed the descriptor. Reported as launch
			 * reports it: an error this task returned would only
			 * show up as one nobody retrieved. */
			report("coil server: no memory for a connection; it was closed", rc);
			rc = 0;
		}
	}
	conn_finish(c);
	return rc;
}

/* Runs a new connection: records it, then spawns its task. */
static void launch(coil_server_t *srv, int fd)
{
	conn_t *c = coil__calloc(sizeof(*c));
	if (!c) {
		close(fd);
		report("coil server: no memory for a connection; it was closed", -ENOMEM);
		return;
	}
	c->srv = srv;
	c->fd = fd;
	c->refs = 2;
	coil__lock(&srv->lock);
	if (state_of(srv) != SRV_SERVING) {
		coil__unlock(&srv->lock);
		close(fd);
		coil__free(c, sizeof(*c));
		return;
	}
	coil__list_push(&srv->conns, &c->link);
	atomic_store_explicit(&srv->nconns,
			      atomic_load_explicit(&srv->nconns, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	coil__unlock(&srv->lock);
	coil_spawn_opts_t so;
	memset(&so, 0, sizeof(so));
	so.stack_size = srv->stack_size;
	coil_task_t *t = NULL;
	int rc = coil_spawn(&t, conn_main, c, &so);
	if (rc) {
		/* As if the task had run and ended at once. */
		c->refs = 1;
		close(fd);
		conn_finish(c);
		report("coil server: cannot start a connection's task; it was closed", rc);
		return;
	}
	coil__lock(&srv->lock);
	c->task = t;
	bool last = --c->refs == 0;
	coil__unlock(&srv->lock);
	if (last) {
		coil_task_detach(t);
		coil__free(c, sizeof(*c));
	}
}

/* --- acceptors ------------------------------------------------------------- */

/* Descriptors or memory ran out: retry later. */
static bool accept_starved(int e)
{
	return e == -EMFILE || e == -ENFILE || e == -ENOBUFS || e == -ENOMEM;
}

/* Errors of one connection, not of the listening socket (accept(2): Linux
 * passes pending network errors of the new connection on). */
static bool accept_skip(int e)
{
	switch (-e) {
	case ECONNABORTED: case EPROTO: case EPERM: case EINTR: case EAGAIN:
	case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN: case ENONET:
	case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH: case ETIMEDOUT:
	case ECONNRESET:
		return true;
	default:
		return false;
	}
}

/* Pauses an acceptor that ran out of descriptors or memory, for a time
 * that doubles at each failure in a row (*backoff, 0 at the first).
 * Returns nonzero when the acceptor must end instead (it was cancelled). */
static int starved_pause(int64_t *backoff, int e)
{
	if (!*backoff) {
		report("coil server: accept failed (out of descriptors "
		       "or memory); retrying with a growing pause", e);
		*backoff = BACKOFF_MIN_NS;
	} else if ((*backoff *= 2) > BACKOFF_MAX_NS) {
		*backoff = BACKOFF_MAX_NS;
	}
	int rc = coil_sleep_ns(*backoff);
	/* Out of memory for the timer too: yield (which allocates
	 * nothing) rather than stop accepting for good. */
	if (rc == -ENOMEM)
		rc = coil_sleep_ns(0);
	return rc;
}

static int acceptor_main(void *arg, void **result)
{
	(void)result;
	listener_t *l = arg;
	coil_acceptor_t *a = NULL;
	int64_t backoff = 0;
	int rc;
	/* Memory may run out here as at any accept: a server that reports
	 * it is serving must not leave a socket that nobody accepts on. */
	while ((rc = coil_acceptor_open(&a, l->fd)) != 0) {
		if (rc == -ECANCELED)
			return 0;
		if (!accept_starved(rc)) {
			report("coil server: cannot accept on a listening socket", rc);
			return rc;
		}
		if (starved_pause(&backoff, rc))
			return 0;
	}
	backoff = 0;
	for (;;) {
		int fd = coil_acceptor_next(a, COIL_FOREVER);
		if (fd >= 0) {
			backoff = 0;
			launch(l->srv, fd);
			continue;
		}
		if (fd == -ECANCELED || fd == COIL_ECLOSED)
			break;
		if (accept_starved(fd)) {
			if (starved_pause(&backoff, fd))
				break;
			continue;
		}
		if (accept_skip(fd))
			continue;
		report("coil server: accept failed; this socket accepts no more", fd);
		rc = fd;
		break;
	}
	coil_acceptor_close(a);
	return 0;
}

/* --- starting -------------------------------------------------------------- */

static coil_server_t *server_new(unsigned n, coil_stream_handler handler,
				 void *arg, const coil_server_opts_t *o,
				 const coil_stream_opts_t *sopts)
{
	coil_server_t *srv = coil__calloc(sizeof(*srv) + n * sizeof(listener_t));
	if (!srv)
		return NULL;
	srv->handler = handler;
	srv->arg = arg;
	srv->sopts = *sopts;
	srv->stack_size = o->stack_size;
	srv->n = n;
	atomic_init(&srv->lock.v, 0);
	atomic_init(&srv->state, SRV_SERVING);
	atomic_init(&srv->nconns, 0);
	coil__list_init(&srv->conns);
	coil__list_init(&srv->parked);
	for (unsigned i = 0; i < n; i++) {
		srv->ls[i].srv = srv;
		srv->ls[i].fd = -1;
	}
	return srv;
}

static void close_listeners(coil_server_t *srv)
{
	for (unsigned i = 0; i < srv->n; i++) {
		if (srv->ls[i].fd >= 0) {
			COIL__DEBUG_FD_CLOSED(srv->ls[i].fd);
			close(srv->ls[i].fd);
		}
		srv->ls[i].fd = -1;
	}
	if (srv->unix_path) {
		/* Only if the file is still the socket this server made. */
		struct stat st;
		if (stat(srv->unix_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    st.st_dev == srv->unix_dev && st.st_ino == srv->unix_ino)
			unlink(srv->unix_path);
	}
}

/* Waits for f to be done, through cancellations of the calling task
 * (noted in *cancelled). */
static void await_done(coil_future_t *f, bool *cancelled)
{
	while (!coil_future_done(f)) {
		int rc = coil_await(f, NULL);
		if (rc == -ECANCELED && !coil_future_done(f))
			*cancelled = true;
		else if (rc == COIL_ECLOSED || rc == COIL_EINVALSTATE)
			return; /* the caller is being closed: it cannot wait */
	}
}

/* Cancels the acceptors and waits for them to end. */
static void stop_acceptors(coil_server_t *srv, bool *cancelled)
{
	for (unsigned i = 0; i < srv->n; i++)
		if (srv->ls[i].task)
			coil_task_cancel(srv->ls[i].task, NULL);
	for (unsigned i = 0; i < srv->n; i++) {
		coil_task_t *t = srv->ls[i].task;
		if (!t)
			continue;
		await_done(coil_task_future(t), cancelled);
		coil_task_detach(t);
		srv->ls[i].task = NULL;
	}
}

/* Spawns the acceptors; on failure stops those already running. */
static int start_acceptors(coil_server_t *srv)
{
	coil_spawn_opts_t so;
	memset(&so, 0, sizeof(so));
	so.pinned = true;
	so.name = "coil-acceptor";
	for (unsigned i = 0; i < srv->n; i++) {
		int rc = coil_spawn(&srv->ls[i].task, acceptor_main, &srv->ls[i], &so);
		if (rc) {
			srv->ls[i].task = NULL;
			bool cancelled = false;
			stop_acceptors(srv, &cancelled);
			return rc;
		}
	}
	return 0;
}

/* Makes, binds and starts listening on one socket. Returns 0 or -errno. */
static int listen_on(listener_t *l, const struct sockaddr *addr, socklen_t len,
		     int socktype, int proto, const coil_server_opts_t *o)
{
	int fd = socket(addr->sa_family, socktype | SOCK_CLOEXEC, proto);
	if (fd < 0)
		return -errno;
	int one = 1;
	int rc = 0;
	if (addr->sa_family != AF_UNIX &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		rc = -errno;
	if (!rc && o->reuse_port &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		rc = -errno;
	/* As asyncio: an IPv6 socket serves IPv6 only, so that "::" and
	 * "0.0.0.0" can both be listened on. */
	if (!rc && addr->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
		rc = -errno;
	/* Accepted sockets inherit TCP_NODELAY: no call per connection. */
	if (!rc && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6))
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!rc && bind(fd, addr, len))
		rc = -errno;
	if (!rc && listen(fd, o->backlog > 0 ? o->backlog : SOMAXCONN))
		rc = -errno;
	l->addrlen = sizeof(l->addr);
	if (!rc && getsockname(fd, (struct sockaddr *)&l->addr, &l->addrlen))
		rc = -errno;
	if (rc) {
		close(fd);
		return rc;
	}
	l->fd = fd;
	COIL__DEBUG_FD_OPENED(fd, "a server's listening socket");
	return 0;
}

static int port_of(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)a)->sin_port);
	if (a->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	return -EINVAL;
}

static void set_port(struct sockaddr_storage *a, int port)
{
	if (a->ss_family == AF_INET)
		((struct sockaddr_in *)a)->sin_port = htons((uint16_t)port);
	else if (a->ss_family == AF_INET6)
		((struct sockaddr_in6 *)a)->sin6_port = htons((uint16_t)port);
}

/* Whether the first i entries before ai have ai's address already. */
static bool seen_before(const struct addrinfo *res, const struct addrinfo *ai)
{
	for (const struct addrinfo *p = res; p != ai; p = p->ai_next)
		if (p->ai_family == ai->ai_family && p->ai_addrlen == ai->ai_addrlen &&
		    !memcmp(p->ai_addr, ai->ai_addr, ai->ai_addrlen))
			return true;
	return false;
}

static int server_finish_start(coil_server_t *srv, coil_server_t **out)
{
	int rc = coil_future_create(&srv->closed, NULL);
	if (!rc)
		rc = start_acceptors(srv);
	if (rc) {
		close_listeners(srv);
		server_free_now(srv);
		return rc;
	}
	*out = srv;
	return 0;
}

int coil_start_server(coil_server_t **out, coil_stream_handler handler,
		      void *arg, const char *host, int port,
		      const coil_server_opts_t *opts, int64_t timeout_ns)
{
	if (!out || !handler || port < 0 || port > 65535 ||
	    !coil__timeout_ok(timeout_ns))
		return -EINVAL;
	*out = NULL;
	if (!coil_current_task())
		return COIL_EINVALSTATE;
	coil_server_opts_t o;
	opts_read(&o, opts);
	coil_stream_opts_t so;
	int rc = coil__stream_opts_read(&so, o.stream);
	if (rc)
		return rc;
	if (host && !*host)
		host = NULL;
	char service[8];
	snprintf(service, sizeof(service), "%d", port);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = coil_getaddrinfo(host, service, &hints, &res, timeout_ns)))
		return rc;
	unsigned n = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
		n += !seen_before(res, ai);
	coil_server_t *srv = n ? server_new(n, handler, arg, &o, &so) : NULL;
	if (!srv) {
		coil_freeaddrinfo(res);
		return n ? -ENOMEM : COIL_ENONAME;
	}
	unsigned i = 0;
	int bound = port;
	for (struct addrinfo *ai = res; ai && !rc; ai = ai->ai_next) {
		if (seen_before(res, ai))
			continue;
		struct sockaddr_storage a;
		memcpy(&a, ai->ai_addr, ai->ai_addrlen);
		/* Port 0: the port the kernel picked for the first socket,
		 * on the others too, if it is free there. */
		bool same = port == 0 && bound != 0;
		if (same)
			set_port(&a, bound);
		rc = listen_on(&srv->ls[i], (struct sockaddr *)&a, ai->ai_addrlen,
			       ai->ai_socktype, ai->ai_protocol, &o);
		if (rc == -EADDRINUSE && same) {
			set_port(&a, 0);
			rc = listen_on(&srv->ls[i], (struct sockaddr *)&a,
				       ai->ai_addrlen, ai->ai_socktype,
				       ai->ai_protocol, &o);
		}
		if (!rc && bound == 0)
			bound = port_of(&srv->ls[i].addr);
		i++;
	}
	coil_freeaddrinfo(res);
	if (rc) {
		close_listeners(srv);
		server_free_now(srv);
		return rc;
	}
	return server_finish_start(srv, out);
}

int coil_start_unix_server(coil_server_t **out, coil_stream_handler handler,
			   void *arg, const char *path,
			   const coil_server_opts_t *opts)
{
	if (!out || !handler)
		return -EINVAL;
	*out = NULL;
	if (!coil_current_task())
		return COIL_EINVALSTATE;
	coil_server_opts_t o;
	opts_read(&o, opts);
	coil_stream_opts_t so;
	int rc = coil__stream_opts_read(&so, o.stream);
	if (rc)
		return rc;
	struct sockaddr_un sun;
	int len = coil__unix_addr(&sun, path);
	if (len < 0)
		return len;
	bool file = path[0] != '@';
	struct stat st;
	/* As asyncio: a socket file left by an earlier run is removed. */
	if (file && stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	coil_server_t *srv = server_new(1, handler, arg, &o, &so);
	if (!srv)
		return -ENOMEM;
	rc = listen_on(&srv->ls[0], (struct sockaddr *)&sun, (socklen_t)len,
		       SOCK_STREAM, 0, &o);
	if (!rc && file) {
		if (!(srv->unix_path = coil__strdup(path)))
			rc = -ENOMEM;
		else if (stat(path, &st) == 0) {
			srv->unix_dev = st.st_dev;
			srv->unix_ino = st.st_ino;
		}
	}
	if (rc) {
		close_listeners(srv);
		server_free_now(srv);
		return rc;
	}
	return server_finish_start(srv, out);
}

/* --- getters --------------------------------------------------------------- */

int coil_server_port(const coil_server_t *srv)
{
	if (!srv || !srv->n)
		return -EINVAL;
	return port_of(&srv->ls[0].addr);
}

unsigned coil_server_nsockets(const coil_server_t *srv)
{
	return srv ? srv->n : 0;
}

int coil_server_sockname(const coil_server_t *srv, unsigned i,
			 struct sockaddr *addr, socklen_t *addrlen)
{
	if (!srv || i >= srv->n || !addrlen || (!addr && *addrlen))
		return -EINVAL;
	const listener_t *l = &srv->ls[i];
	socklen_t n = *addrlen < l->addrlen ? *addrlen : l->addrlen;
	if (n)
		memcpy(addr, &l->addr, n);
	*addrlen = l->addrlen;
	return 0;
}

bool coil_server_is_serving(const coil_server_t *srv)
{
	return srv && state_of(srv) == SRV_SERVING;
}

size_t coil_server_connections(const coil_server_t *srv)
{
	return srv ? atomic_load_explicit(&((coil_server_t *)srv)->nconns,
					  memory_order_relaxed) : 0;
}

/* --- closing --------------------------------------------------------------- */

static void closer_cancel(coil__waiter_t *w)
{
	coil_server_t *srv = w->source;
	coil__lock(&srv->lock);
	if (srv->closer == w)
		srv->closer = NULL;
	coil__unlock(&srv->lock);
}

/*
 * Waits until at most `target` connections are left, or loop time
 * `deadline` (COIL_FOREVER: none). Returns 0, -ETIMEDOUT, -ECANCELED or
 * COIL_ECLOSED.
 */
static int wait_conns(coil_server_t *srv, size_t target, int64_t deadline)
{
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	coil__lock(&srv->lock);
	while (atomic_load_explicit(&srv->nconns, memory_order_relaxed) > target) {
		if (deadline != COIL_FOREVER &&
		    coil__loop_now(coil__running_loop) >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		coil__waiter_t w;
		coil__waiter_init(&w, t, closer_cancel, srv);
		/* The timer is this worker's and cannot fire before the task
		 * has switched out; arming it under the lock keeps the
		 * registration below ours meanwhile. */
		if (deadline != COIL_FOREVER && (rc = coil__waiter_timer_arm(&w, deadline)))
			break;
		srv->closer = &w;
		srv->close_target = target;
		coil__unlock(&srv->lock);
		rc = coil__task_suspend(&w);
		coil__waiter_timer_done(&w);
		coil__lock(&srv->lock);
		/* Whoever woke us unregistered w, except the timer. */
		if (srv->closer == &w)
			srv->closer = NULL;
		if (rc)
			break;
	}
	coil__unlock(&srv->lock);
	return rc;
}

/* Whether the calling task is one of the server's handlers. */
static bool is_handler(coil_server_t *srv, coil_task_t *self)
{
	bool found = false;
	coil__lock(&srv->lock);
	for (coil__list_t *p = srv->conns.next; p != &srv->conns && !found; p = p->next)
		found = coil__container_of(p, conn_t, link)->task == self;
	coil__unlock(&srv->lock);
	return found;
}

/* Cancels every started handler but the caller, one at a time: each is
 * moved to `parked` under the lock, with a reference to its task, and
 * cancelled after the lock is dropped. */
static void cancel_handlers(coil_server_t *srv, coil_task_t *self)
{
	for (;;) {
		coil__lock(&srv->lock);
		if (coil__list_empty(&srv->conns)) {
			coil__unlock(&srv->lock);
			return;
		}
		conn_t *c = coil__container_of(srv->conns.next, conn_t, link);
		coil__list_del(&c->link);
		coil__list_push(&srv->parked, &c->link);
		coil_task_t *t = c->started && c->task && c->task != self ? c->task : NULL;
		if (t)
			coil_future_ref(coil_task_future(t));
		coil__unlock(&srv->lock);
		if (t) {
			coil_task_cancel(t, "server closed");
			coil_future_release(coil_task_future(t));
		}
	}
}

int coil_server_close(coil_server_t *srv, int64_t grace_ns)
{
	if (!srv || !coil__timeout_ok(grace_ns))
		return -EINVAL;
	coil_task_t *self = coil_current_task();
	if (!self)
		return COIL_EINVALSTATE;
	bool cancelled = false;
	coil__lock(&srv->lock);
	if (state_of(srv) != SRV_SERVING) {
		/* Another task closes it: wait for that to finish. The
		 * reference is taken under the lock: once the first close
		 * has finished, any thread may free the server. */
		coil_future_t *f = coil_future_ref(srv->closed);
		coil__unlock(&srv->lock);
		int rc = coil_await(f, NULL);
		coil_future_release(f);
		return rc;
	}
	atomic_store_explicit(&srv->state, SRV_CLOSING, memory_order_relaxed);
	coil__unlock(&srv->lock);

	/* 1. Stop accepting. */
	stop_acceptors(srv, &cancelled);
	close_listeners(srv);

	/* 2. The grace period; a cancellation of the caller ends it. */
	size_t target = is_handler(srv, self) ? 1 : 0;
	if (grace_ns != 0 && !cancelled) {
		int64_t now = coil__loop_now(coil__running_loop);
		int64_t deadline = grace_ns == COIL_FOREVER ? COIL_FOREVER
				 : grace_ns > INT64_MAX - now ? INT64_MAX : now + grace_ns;
		if (wait_conns(srv, target, deadline) == -ECANCELED)
			cancelled = true;
	}

	/* 3. Cancel those left, and wait for them to end. */
	coil__lock(&srv->lock);
	atomic_store_explicit(&srv->state, SRV_CANCELLING, memory_order_relaxed);
	bool late = atomic_load_explicit(&srv->nconns, memory_order_relaxed) > target;
	coil__unlock(&srv->lock);
	cancel_handlers(srv, self);
	for (;;) {
		int rc = wait_conns(srv, target, COIL_FOREVER);
		if (rc == -ECANCELED) {
			cancelled = true;
			continue;
		}
		break; /* done, or the caller is being closed */
	}

	/* Once the state says CLOSED, coil_server_free (any thread) may free
	 * the server and drop its reference to `closed`: resolve the future
	 * through a reference of our own, without touching srv again. */
	coil_future_t *closed = coil_future_ref(srv->closed);
	coil__lock(&srv->lock);
	atomic_store_explicit(&srv->state, SRV_CLOSED, memory_order_relaxed);
	coil__unlock(&srv->lock);
	coil_future_set_result(closed, NULL, NULL);
	coil_future_release(closed);
	return cancelled ? -ECANCELED : late ? -ETIMEDOUT : 0;
}

int coil_server_serve_forever(coil_server_t *srv)
{
	if (!srv)
		return -EINVAL;
	coil_future_t *f = coil_future_ref(srv->closed);
	int rc = coil_await(f, NULL);
	coil_future_release(f);
	return rc;
}

int coil_server_free(coil_server_t *srv)
{
	if (!srv)
		return 0;
	coil__lock(&srv->lock);
	if (state_of(srv) != SRV_CLOSED) {
		coil__unlock(&srv->lock);
		return COIL_EINVALSTATE;
	}
	/* A handler that closed its own server may still run: the last
	 * connection to end frees the server then. */
	bool now = atomic_load_explicit(&srv->nconns, memory_order_relaxed) == 0;
	if (!now)
		srv->free_pending = true;
	coil__unlock(&srv->lock);
	if (now)
		server_free_now(srv);
	return 0;
}
