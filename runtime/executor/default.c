/*
 * runtime/executor/default.c: the default executors (asyncio's
 * loop.set_default_executor and the executor behind
 * run_in_executor(None, ...)).
 *
 * Each owner, a runtime or a loop made with coil_new_event_loop, has at
 * most one current default executor, made on first use or set by the
 * program. The table below maps owners to them, under one mutex. A
 * default that gets replaced stays referenced by the table until its owner
 * closes, so that a pointer read from the table stays valid for as long as
 * a task of that owner can hold it; that is what lets each thread cache
 * its last lookup (owner, executor) without a reference: the cache is
 * trusted only while the table's generation, bumped by every change,
 * is the one it was filled under.
 *
 * When the owner closes (coil__executor_owner_close, called by
 * coil_runtime_shutdown and coil_loop_close once the tasks have ended), its
 * current default is shut down and waited for, as asyncio.run does with
 * shutdown_default_executor; replaced defaults that coil made are waited
 * for too, and those the program set are only released.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "core.h"
#include "executor_int.h"

typedef struct owner owner_t;
struct owner {
	owner_t *next;
	void *key;                /* the runtime, or the standalone loop */
	coil_executor_t *cur;     /* a reference, or NULL */
	coil_executor_t **old;    /* replaced defaults (references) */
	size_t nold;
	bool closed;              /* the owner is closing: no new default */
};

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static owner_t *owners;                    /* under table_mu */
static coil_thread_pool_opts_t dflt_opts;  /* under table_mu */
static char dflt_name[16];                 /* under table_mu */
static bool dflt_set;                      /* under table_mu */
/* Bumped (release) under table_mu at every change of the table. */
static _Atomic uint64_t table_gen = 1;

/* The calling thread's last lookup. */
static __thread struct {
	void *key;
	coil_executor_t *ex;
	uint64_t gen;
} cache;

static void *owner_key(coil_loop_t *loop)
{
	return loop->rt ? (void *)loop->rt : (void *)loop;
}

static owner_t *find_locked(void *key)
{
	for (owner_t *o = owners; o; o = o->next)
		if (o->key == key)
			return o;
	return NULL;
}

static owner_t *get_locked(void *key)
{
	owner_t *o = find_locked(key);
	if (o)
		return o;
	o = coil__calloc(sizeof(*o));
	if (!o)
		return NULL;
	o->key = key;
	o->next = owners;
	owners = o;
	return o;
}

static void bump_locked(void)
{
	atomic_fetch_add_explicit(&table_gen, 1, memory_order_release);
}

coil_executor_t *coil__executor_default(coil_loop_t *loop, int *err)
{
	void *key = owner_key(loop);
	uint64_t gen = atomic_load_explicit(&table_gen, memory_order_acquire);
	/* A cached default found closed was replaced meanwhile (the
	 * generation this thread sees may lag): look in the table. */
	if (cache.key == key && cache.gen == gen && cache.ex &&
	    !coil__executor_closed(cache.ex))
		return cache.ex;
	pthread_mutex_lock(&table_mu);
	gen = atomic_load_explicit(&table_gen, memory_order_relaxed);
	owner_t *o = get_locked(key);
	coil_executor_t *ex = NULL;
	*err = -ENOMEM;
	if (o && o->closed) {
		/* A loop callback run while the runtime shuts its default
		 * down (a done-callback of its last jobs): a new default
		 * would outlive the runtime. */
		*err = COIL_ECLOSED;
	} else if (o && !(ex = o->cur)) {
		coil_thread_pool_opts_t opts;
		coil_thread_pool_opts_init(&opts);
		if (dflt_set)
			opts = dflt_opts;
		*err = coil_thread_pool_create(&ex, &opts);
		if (*err == 0) {
			coil__executor_set_internal(ex);
			o->cur = ex;
			bump_locked();
			gen++;
		}
	}
	pthread_mutex_unlock(&table_mu);
	if (ex) {
		cache.key = key;
		cache.ex = ex;
		cache.gen = gen;
	}
	return ex;
}

static coil_loop_t *pick_loop(coil_loop_t *loop)
{
	if (!loop)
		loop = coil_get_event_loop();
	return loop;
}

int coil_set_default_executor(coil_loop_t *loop, coil_executor_t *ex)
{
	loop = pick_loop(loop);
	if (!loop)
		return -EINVAL;
	if (loop->closed)
		return COIL_ECLOSED;
	if (ex && coil__executor_closed(ex))
		return COIL_ECLOSED;
	pthread_mutex_lock(&table_mu);
	owner_t *o = get_locked(owner_key(loop));
	if (!o || o->closed) {
		pthread_mutex_unlock(&table_mu);
		return o ? COIL_ECLOSED : -ENOMEM;
	}
	coil_executor_t *prev = o->cur;
	if (prev) {
		coil_executor_t **old = coil__libc_realloc(o->old, (o->nold + 1) * sizeof(*old));
		if (!old) {
			pthread_mutex_unlock(&table_mu);
			return -ENOMEM;
		}
		o->old = old;
		o->old[o->nold++] = prev;
	}
	o->cur = coil_executor_ref(ex);
	bump_locked();
	pthread_mutex_unlock(&table_mu);
	/* A default coil made and nobody else knows of: let its threads
	 * finish and go. It stays in the table until the owner closes. */
	if (prev && coil__executor_internal(prev)) {
		coil_executor_ref(prev);
		coil_executor_shutdown(prev, false, false);
	}
	return 0;
}

coil_executor_t *coil_get_default_executor(coil_loop_t *loop)
{
	loop = pick_loop(loop);
	if (!loop)
		return NULL;
	pthread_mutex_lock(&table_mu);
	owner_t *o = find_locked(owner_key(loop));
	coil_executor_t *ex = o ? o->cur : NULL;
	pthread_mutex_unlock(&table_mu);
	return ex;
}

int coil_set_default_executor_opts(const coil_thread_pool_opts_t *opts)
{
	coil_thread_pool_opts_t o;
	coil_thread_pool_opts_init(&o);
	if (opts)
		memcpy(&o, opts, opts->size && opts->size < sizeof(o) ? opts->size : sizeof(o));
	if (o.idle_timeout_ns < 0 && o.idle_timeout_ns != COIL_FOREVER)
		return -EINVAL;
	pthread_mutex_lock(&table_mu);
	dflt_set = opts != NULL;
	if (o.thread_name) {
		size_t n = strlen(o.thread_name);
		if (n >= sizeof(dflt_name))
			n = sizeof(dflt_name) - 1;
		memcpy(dflt_name, o.thread_name, n);
		dflt_name[n] = '\0';
		o.thread_name = dflt_name;
	}
	dflt_opts = o;
	pthread_mutex_unlock(&table_mu);
	return 0;
}

void coil__executor_owner_close(void *key)
{
	/* The entry stays, marked closed, until coil__executor_owner_forget:
	 * the loops of a runtime still run callbacks after this (those of
	 * the jobs waited for here), and one that used the default must not
	 * make a new one. */
	pthread_mutex_lock(&table_mu);
	owner_t *o = get_locked(key);
	coil_executor_t *cur = NULL, **old = NULL;
	size_t nold = 0;
	if (o && !o->closed) {
		o->closed = true;
		cur = o->cur;
		old = o->old;
		nold = o->nold;
		o->cur = NULL;
		o->old = NULL;
		o->nold = 0;
		bump_locked();
	}
	pthread_mutex_unlock(&table_mu);
	if (cur)
		coil_executor_shutdown(cur, true, false);
	for (size_t i = 0; i < nold; i++) {
		coil_executor_t *ex = old[i];
		if (coil__executor_internal(ex))
			coil_executor_shutdown(ex, true, false);
		else
			coil_executor_release(ex);
	}
	free(old);
}

void coil__executor_owner_forget(void *key)
{
	pthread_mutex_lock(&table_mu);
	owner_t **p = &owners;
	while (*p && (*p)->key != key)
		p = &(*p)->next;
	owner_t *o = *p;
	if (o) {
		*p = o->next;
		bump_locked();
	}
	pthread_mutex_unlock(&table_mu);
	if (!o)
		return;
	/* Closed already: it holds no executor any more. */
	coil__free(o, sizeof(*o));
}
