/*
 * io/dns.c: getaddrinfo off the loop (coil_getaddrinfo).
 *
 * getaddrinfo blocks (it reads files, talks to name servers), so a lookup
 * runs on one of a few resolver threads of a process-wide pool while only
 * the calling task waits. A numeric host needs no lookup and is resolved
 * inline. The pool is small and private to this file; the runtime's
 * default executor may take its place later.
 *
 * A lookup is a job with two owners, the waiting task and the completion,
 * counted in `refs`; whoever drops the last one frees the job and the
 * result nobody took (so a task that timed out or was cancelled leaks
 * nothing: the lookup finishes on its thread and its result is freed).
 *
 * The protocol (core.h, "the one way a task waits"). The task registers a
 * waiter in the job and suspends, with a timer if it has a timeout. The
 * resolver thread runs the lookup, stores the outcome, and hands the job
 * back to the loop the task submitted from (call_soon_threadsafe); there,
 * under the job's lock, the completion marks the job done and claims the
 * waiter if it is still registered, then wakes it. A canceller or the
 * timer may claim the waiter first: the cancel hook unregisters it, and
 * after a timer wake the task unregisters it itself, under the lock. The
 * resolver thread never touches the waiter or the task: on a loop with
 * one worker nothing but the loop's thread may (its locks are no-ops
 * there), which is why the completion runs on the loop.
 *
 * The threads start on demand, up to POOL_MAX, and stay for the life of
 * the process (as libuv's pool does): a thread that ended would take
 * glibc's per-thread resolver state with it, but one that is still alive
 * when the process exits leaves that state to the leak checkers, so
 * coil__dns_shutdown stops and joins them for tests.
 *
 * The job holds a future of that loop, which keeps the loop's memory alive
 * (coil__loop_unref) while the lookup runs, so handing the job back is
 * safe even if the loop closes meanwhile; the hand-back then fails and the
 * resolver thread finishes the job itself (every task is gone by then).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "stream_int.h"

#define POOL_MAX 4        /* resolver threads at most */

typedef struct job {
	struct job *next;          /* the pool's queue, under pool.mu */
	size_t size;               /* of this allocation */
	/* The loop's side, under `lock` (coil__lock). */
	coil__spin_t lock;
	unsigned refs;
	bool done;
	coil__waiter_t *waiter;
	/* Set before submission, read-only afterwards. */
	coil_loop_t *loop;
	coil_future_t *keep;       /* keeps `loop` alive */
	const char *host, *service; /* copies, in this allocation, or NULL */
	bool has_hints;
	struct addrinfo hints;
	/* Written by the resolver thread before the hand-back. */
	struct addrinfo *res;
	int gai, err;
	char names[];
} job_t;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job_t *head, *tail;
	unsigned nthreads, nidle;
	bool stopping;            /* coil__dns_shutdown: leave when idle */
	pthread_t threads[POOL_MAX];
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static atomic_size_t live_jobs;
static _Atomic(coil__dns_fn) resolver_fn;

void coil__dns_set_resolver(coil__dns_fn fn)
{
	atomic_store(&resolver_fn, fn);
}

size_t coil__dns_pending(void)
{
	return atomic_load(&live_jobs);
}

/* --- the job --------------------------------------------------------------- */

static void job_free(job_t *j)
{
	if (j->res)
		freeaddrinfo(j->res);
	coil_future_release(j->keep);
	coil__free(j, j->size);
	atomic_fetch_sub(&live_jobs, 1);
}

/* Drops one owner's reference; the caller holds j->lock. Returns whether
 * it was the last (the caller then frees j after unlocking). */
static bool job_unref_locked(job_t *j)
{
	return --j->refs == 0;
}

/* The completion, on the job's loop (or on the resolver thread once the
 * loop is closed and no task can be waiting). */
static void job_complete(void *arg)
{
	job_t *j = arg;
	coil__lock(&j->lock);
	j->done = true;
	coil__waiter_t *w = j->waiter;
	if (w && coil__waiter_claim(w))
		j->waiter = NULL;
	else
		w = NULL;
	bool last = job_unref_locked(j);
	coil__unlock(&j->lock);
	/* The task holds its reference until it runs, so j outlives the
	 * wake when it is not the last. */
	if (w)
		coil__waiter_wake(w, 0);
	if (last)
		job_free(j);
}

/* The cancel hook: a canceller claimed the waiter. */
static void job_cancel(coil__waiter_t *w)
{
	job_t *j = w->source;
	coil__lock(&j->lock);
	if (j->waiter == w)
		j->waiter = NULL;
	coil__unlock(&j->lock);
}

/* --- the resolver threads -------------------------------------------------- */

static void job_run(job_t *j)
{
	coil__dns_fn fn = atomic_load(&resolver_fn);
	struct addrinfo *res = NULL;
	const struct addrinfo *hints = j->has_hints ? &j->hints : NULL;
	errno = 0;
	int gai = fn ? fn(j->host, j->service, hints, &res)
		     : getaddrinfo(j->host, j->service, hints, &res);
	j->err = gai == EAI_SYSTEM ? errno : 0;
	j->gai = gai;
	j->res = gai == 0 ? res : NULL;
	/* Hand the job back to its loop; only memory can be short for a
	 * while, so retry that, and finish here once the loop is closed. */
	for (;;) {
		int rc = coil__loop_call_soon_threadsafe_ex(j->loop, job_complete,
							    job_complete, j);
		if (rc == 0)
			return;
		if (rc != -ENOMEM)
			break;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	job_complete(j);
}

static void *resolver_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pool.mu);
	for (;;) {
		while (!pool.head) {
			if (pool.stopping) {
				pthread_mutex_unlock(&pool.mu);
				return NULL;
			}
			pool.nidle++;
			pthread_cond_wait(&pool.cv, &pool.mu);
			pool.nidle--;
		}
		job_t *j = pool.head;
		pool.head = j->next;
		if (!pool.head)
			pool.tail = NULL;
		pthread_mutex_unlock(&pool.mu);
		job_run(j);
		pthread_mutex_lock(&pool.mu);
	}
}

/* A forked child has none of its parent's threads: start from scratch
 * (jobs queued in the parent belong to the parent's loops). */
static void pool_atfork_child(void)
{
	pthread_mutex_init(&pool.mu, NULL);
	pthread_cond_init(&pool.cv, NULL);
	pool.head = pool.tail = NULL;
	pool.nthreads = pool.nidle = 0;
	pool.stopping = false;
}

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_init(void)
{
	pthread_atfork(NULL, NULL, pool_atfork_child);
}

/* Starts a resolver thread; the caller holds pool.mu. */
static int start_thread(void)
{
	/* Resolver threads take no signals: the program's handlers (and a
	 * signalfd) expect them on its own threads. The new thread inherits
	 * the mask in force while it is created. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&pool.threads[pool.nthreads], NULL, resolver_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		pool.nthreads++;
	return -rc;
}

/*
 * Lookups may be submitted while this runs (a runtime's tasks need not
 * have ended). So the threads are taken off the list one at a time, under
 * the lock, and joined until none is left: a lookup submitted meanwhile
 * finds a free slot and starts a thread, which the list then holds and
 * this joins too. One submitted after the last threads left but before
 * the list ran empty found the pool full and started none: it is in the
 * queue with no thread to run it, so one is started for it at the end.
 */
void coil__dns_shutdown(void)
{
	pthread_mutex_lock(&pool.mu);
	pool.stopping = true;
	pthread_cond_broadcast(&pool.cv);
	while (pool.nthreads) {
		pthread_t th = pool.threads[--pool.nthreads];
		pthread_mutex_unlock(&pool.mu);
		pthread_join(th, NULL);
		pthread_mutex_lock(&pool.mu);
	}
	pool.stopping = false;
	if (pool.head && start_thread()) {
		/* No thread to be had: run them here rather than never. */
		while (pool.head) {
			job_t *j = pool.head;
			pool.head = j->next;
			if (!pool.head)
				pool.tail = NULL;
			pthread_mutex_unlock(&pool.mu);
			job_run(j);
			pthread_mutex_lock(&pool.mu);
		}
	}
	pthread_mutex_unlock(&pool.mu);
}

/* Queues j for a resolver thread, starting one if none is idle. */
static int pool_submit(job_t *j)
{
	pthread_once(&pool_once, pool_init);
	pthread_mutex_lock(&pool.mu);
	j->next = NULL;
	if (pool.tail)
		pool.tail->next = j;
	else
		pool.head = j;
	pool.tail = j;
	int rc = 0;
	if (pool.nidle) {
		pthread_cond_signal(&pool.cv);
	} else if (pool.nthreads < POOL_MAX) {
		rc = start_thread();
		if (rc == 0) {
			/* started */
		} else if (pool.nthreads) {
			rc = 0; /* the running threads will get to it */
		} else {
			/* Nobody would ever run it: take it back out. */
			job_t **p = &pool.head;
			job_t *prev = NULL;
			while (*p != j) {
				prev = *p;
				p = &(*p)->next;
			}
			*p = j->next;
			if (pool.tail == j)
				pool.tail = prev;
		}
	}
	pthread_mutex_unlock(&pool.mu);
	return rc;
}

/* --- coil_getaddrinfo ------------------------------------------------------ */

static int map_gai(int gai, int err)
{
	switch (gai) {
	case 0:
		return 0;
	case EAI_NONAME:
	case EAI_SERVICE:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY:
#endif
		return COIL_ENONAME;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_FAIL:
		return -EIO;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_FAMILY:
		return -EAFNOSUPPORT;
	case EAI_SOCKTYPE:
		return -ESOCKTNOSUPPORT;
	case EAI_BADFLAGS:
		return -EINVAL;
#ifdef EAI_OVERFLOW
	case EAI_OVERFLOW:
		return -EOVERFLOW;
#endif
	case EAI_SYSTEM:
		return err > 0 ? -err : -EIO;
	default:
		return -EIO;
	}
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Whether getaddrinfo can answer without reading a file or asking a name
 * server: a numeric (or no) host and a numeric (or no) service. */
static bool numeric(const char *host, const char *service,
		    const struct addrinfo *hints)
{
	int flags = hints ? hints->ai_flags : 0;
	if (flags & AI_ADDRCONFIG)
		return false;
	if (service && !(flags & AI_NUMERICSERV) && !all_digits(service))
		return false;
	if (!host || (flags & AI_NUMERICHOST))
		return true;
	unsigned char a[16];
	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static job_t *job_new(const char *host, const char *service,
		      const struct addrinfo *hints)
{
	size_t hl = host ? strlen(host) + 1 : 0;
	size_t sl = service ? strlen(service) + 1 : 0;
	size_t size = sizeof(job_t) + hl + sl;
	job_t *j = coil__calloc(size);
	if (!j)
		return NULL;
	j->size = size;
	if (host) {
		memcpy(j->names, host, hl);
		j->host = j->names;
	}
	if (service) {
		memcpy(j->names + hl, service, sl);
		j->service = j->names + hl;
	}
	if (hints) {
		/* Only the fields getaddrinfo reads from hints. */
		j->has_hints = true;
		j->hints.ai_flags = hints->ai_flags;
		j->hints.ai_family = hints->ai_family;
		j->hints.ai_socktype = hints->ai_socktype;
		j->hints.ai_protocol = hints->ai_protocol;
	}
	atomic_init(&j->lock.v, 0);
	j->refs = 2;
	atomic_fetch_add(&live_jobs, 1);
	return j;
}

int coil_getaddrinfo(const char *host, const char *service,
		     const struct addrinfo *hints, struct addrinfo **res,
		     int64_t timeout_ns)
{
	if (!res || (!host && !service) || !coil__timeout_ok(timeout_ns))
		return -EINVAL;
	*res = NULL;
	if (numeric(host, service, hints)) {
		struct addrinfo h;
		memset(&h, 0, sizeof(h));
		if (hints) {
			h.ai_flags = hints->ai_flags;
			h.ai_family = hints->ai_family;
			h.ai_socktype = hints->ai_socktype;
			h.ai_protocol = hints->ai_protocol;
		}
		if (host)
			h.ai_flags |= AI_NUMERICHOST;
		if (service)
			h.ai_flags |= AI_NUMERICSERV;
		errno = 0;
		int gai = getaddrinfo(host, service, &h, res);
		if (gai)
			*res = NULL;
		return map_gai(gai, errno);
	}
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	if (timeout_ns == 0)
		return -ETIMEDOUT; /* a lookup on a thread always waits */
	coil_loop_t *loop = coil__running_loop;
	job_t *j = job_new(host, service, hints);
	if (!j)
		return -ENOMEM;
	j->loop = loop;
	if ((rc = coil_future_create(&j->keep, loop))) {
		coil__free(j, j->size);
		atomic_fetch_sub(&live_jobs, 1);
		return rc;
	}
	coil__waiter_t w;
	coil__waiter_init(&w, t, job_cancel, j);
	if (timeout_ns != COIL_FOREVER) {
		int64_t now = coil__loop_now(loop);
		int64_t when = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
		if ((rc = coil__waiter_timer_arm(&w, when))) {
			job_free(j);
			return rc;
		}
	}
	/* Registered before the job is visible: its completion runs on this
	 * loop's thread, so not before this task has switched out. */
	j->waiter = &w;
	if ((rc = pool_submit(j))) {
		coil__waiter_timer_done(&w);
		job_free(j);
		return rc;
	}
	rc = coil__task_suspend(&w);
	coil__waiter_timer_done(&w);
	coil__lock(&j->lock);
	j->waiter = NULL; /* after a timer's wake it is still registered */
	if (rc == 0) {
		if (j->done) {
			rc = map_gai(j->gai, j->err);
			*res = j->res;
			j->res = NULL;
		} else {
			rc = -ETIMEDOUT;
		}
	}
	bool last = job_unref_locked(j);
	coil__unlock(&j->lock);
	if (last)
		job_free(j);
	return rc;
}

void coil_freeaddrinfo(struct addrinfo *res)
{
	if (res)
		freeaddrinfo(res);
}
