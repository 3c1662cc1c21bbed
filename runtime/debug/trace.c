/*
 * runtime/debug/trace.c: the trace recorder (see coil/debug.h), writing
 * Chrome's Trace Event Format (the JSON that Perfetto and chrome://tracing
 * open).
 *
 * Recording. Each loop writes its events into a buffer of its own
 * (coil__tbuf_t), a chain of fixed chunks: the loop's thread is its only
 * writer, it takes no lock, and it publishes each event by a release store
 * of its chunk's count. A full chunk is followed by a new one, linked with
 * a release store of `next`; the writer never touches a chunk again once
 * it has linked the next. The buffer is made (and listed in the recorder's
 * list, under `lock`) by the loop's thread at its first event.
 *
 * Flushing (coil_trace_flush, under `lock`) reads each buffer from the
 * oldest chunk it has not finished: the events up to the chunk's published
 * count, then, if the chunk has a successor, the rest of it, which it
 * frees. So a flush writes what was recorded so far and gives its memory
 * back while the loops go on recording.
 *
 * Stopping. coil_trace_stop must free the buffers, which their loops may
 * be writing into. A writer raises its loop's `tbusy` (seq_cst) and then
 * reads the global flag (seq_cst); stop clears the flag (seq_cst) and then
 * reads every loop's `tbusy`: one of the two sees the other's store (the
 * Dekker pattern), so either the writer backs off or stop waits until its
 * event is written (a few instructions). A writer never holds `tbusy`
 * while it waits for `lock`, so stop may wait for it under the lock.
 * After that no loop writes until the next trace, whose start stop's
 * unlock happens before; stop can then write the rest, free every buffer
 * and clear each loop's pointer to its own.
 *
 * A loop freed while a trace runs leaves its buffer to the recorder
 * (coil__trace_loop_free): its events are written with the rest.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coil/debug.h"
#include "core.h"
#include "debug_int.h"

atomic_int coil__trace_flag;

#if COIL_METRICS

/* Events per chunk: 64 KiB chunks. */
#define CHUNK_EVENTS 1024
/* Runtimes told apart in one trace (later ones share the last's tids). */
#define MAX_RUNTIMES 64
/* Track ids (tid) of a runtime's workers: runtime k (from 0) gets
 * k * RT_TIDS + worker index; standalone loops LOOP_TIDS + n. */
#define RT_TIDS 10000
#define LOOP_TIDS 1000000

typedef struct tev {
	int64_t t0, t1;
	uint64_t id;              /* task id, or a steal's victim */
	uint64_t n;               /* a steal's task count */
	const void *fn;           /* a callback's function */
	uint8_t kind;             /* COIL__TEV_* */
	char name[sizeof(((coil__metrics_t *)0)->obs.name)];
} tev_t;

typedef struct tchunk {
	struct tchunk *_Atomic next;
	atomic_size_t n;          /* published events */
	tev_t ev[CHUNK_EVENTS];
} tchunk_t;

typedef struct coil__tbuf {
	/* Under lock. */
	struct coil__tbuf *next;
	coil_loop_t *loop;        /* NULL once the loop is freed */
	long tid;
	char track[48];
	bool named;               /* its thread_name metadata is written */
	tchunk_t *head;           /* the oldest chunk not yet written out */
	size_t head_done;         /* events of head written out */
	/* The loop's thread only. */
	tchunk_t *tail;           /* the chunk being written */
	uint64_t recorded;        /* events recorded */
	size_t max;               /* opts->max_events, 0: none */
	/* Written by one side, read by the other (relaxed). */
	atomic_uint_fast64_t flushed;  /* events written out (flusher) */
	atomic_uint_fast64_t dropped;  /* events not recorded (writer) */
} coil__tbuf_t;

/* The recorder: everything below is under `lock`. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	bool active;
	FILE *f;
	bool own;                 /* opened by coil_trace_start */
	bool io_error;
	int64_t t0;               /* coil__clock_ns at start */
	int pid;
	size_t max_events;
	coil__tbuf_t *bufs;
	uint64_t written;         /* events written, metadata excluded */
	uint64_t dropped;         /* of buffers already freed */
	const coil_runtime_t *rts[MAX_RUNTIMES];
	unsigned nrts;
	unsigned nloops;
	uint64_t io_seq;          /* ids of I/O waits' async events */
} T;

/* --- the writer's side --------------------------------------------------- */

static tchunk_t *chunk_new(void)
{
	tchunk_t *c = coil__libc_malloc(sizeof(*c));
	if (c) {
		atomic_init(&c->next, NULL);
		atomic_init(&c->n, 0);
	}
	return c;
}

/* Under lock: the track of a loop's buffer. */
static void track_name(coil__tbuf_t *b, const coil_loop_t *loop)
{
	if (loop->rt) {
		unsigned k = 0;
		while (k < T.nrts && T.rts[k] != loop->rt)
			k++;
		if (k == T.nrts && T.nrts < MAX_RUNTIMES)
			T.rts[T.nrts++] = loop->rt;
		if (k >= MAX_RUNTIMES)
			k = MAX_RUNTIMES - 1;
		b->tid = (long)k * RT_TIDS + (long)loop->index;
		if (k == 0)
			snprintf(b->track, sizeof(b->track), "worker %u", loop->index);
		else
			snprintf(b->track, sizeof(b->track), "runtime %u worker %u",
				 k + 1, loop->index);
	} else {
		b->tid = LOOP_TIDS + (long)T.nloops;
		snprintf(b->track, sizeof(b->track), "loop %u", T.nloops);
		T.nloops++;
	}
}

/* The loop's thread, not busy: makes and lists the loop's buffer. Returns
 * false when no trace is recorded (or memory is short). */
static bool buf_register(coil_loop_t *loop)
{
	bool ok = false;
	pthread_mutex_lock(&lock);
	if (loop->metrics.tbuf) {
		ok = true;
	} else if (T.active) {
		coil__tbuf_t *b = coil__libc_calloc(1, sizeof(*b));
		tchunk_t *c = b ? chunk_new() : NULL;
		if (c) {
			b->loop = loop;
			b->head = b->tail = c;
			b->max = T.max_events;
			track_name(b, loop);
			b->next = T.bufs;
			T.bufs = b;
			loop->metrics.tbuf = b;
			ok = true;
		} else {
			free(b);
		}
	}
	pthread_mutex_unlock(&lock);
	return ok;
}

/* The loop's thread, busy: appends one event. */
static void buf_append(coil__tbuf_t *b, int kind, int64_t t0, int64_t t1,
		       uint64_t id, uint64_t n, const void *fn, const char *name)
{
	if (b->max && b->recorded - atomic_load_explicit(&b->flushed, memory_order_relaxed) >= b->max) {
		atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed);
		return;
	}
	tchunk_t *c = b->tail;
	size_t i = atomic_load_explicit(&c->n, memory_order_relaxed);
	if (i == CHUNK_EVENTS) {
		tchunk_t *nc = chunk_new();
		if (!nc) {
			atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed);
			return;
		}
		/* Release: a flusher that sees the link sees c complete. */
		atomic_store_explicit(&c->next, nc, memory_order_release);
		b->tail = c = nc;
		i = 0;
	}
	tev_t *e = &c->ev[i];
	e->t0 = t0;
	e->t1 = t1;
	e->id = id;
	e->n = n;
	e->fn = fn;
	e->kind = (uint8_t)kind;
	/* name is the loop's obs.name (NUL-terminated, of this size) or
	 * NULL: copied whole, no scan. */
	if (name)
		memcpy(e->name, name, sizeof(e->name));
	else
		e->name[0] = '\0';
	b->recorded++;
	/* Release: the flusher reads the event only after this count. */
	atomic_store_explicit(&c->n, i + 1, memory_order_release);
}

void coil__trace_event(coil_loop_t *loop, int kind, int64_t t0, int64_t t1,
		       uint64_t id, uint64_t n, const void *fn, const char *name)
{
	coil__metrics_t *m = &loop->metrics;
	if (loop->any)
		return;
	for (;;) {
		/* seq_cst store then seq_cst load, against stop's seq_cst
		 * store of the flag then load of tbusy (see the top). */
		atomic_store_explicit(&m->tbusy, 1, memory_order_seq_cst);
		if (!atomic_load_explicit(&coil__trace_flag, memory_order_seq_cst))
			break;
		if (m->tbuf) {
			buf_append(m->tbuf, kind, t0, t1, id, n, fn, name);
			break;
		}
		/* No buffer yet: make one without holding tbusy (stop may be
		 * waiting for it under the lock). */
		atomic_store_explicit(&m->tbusy, 0, memory_order_release);
		if (!buf_register(loop))
			return;
	}
	atomic_store_explicit(&m->tbusy, 0, memory_order_release);
}

/* --- writing JSON -------------------------------------------------------- */

/* A small cache of symbolized callback names, for one flush. */
#define SYM_CACHE 256
typedef struct symcache {
	coil__symbolizer_t *s;
	const void *fn[SYM_CACHE];
	char name[SYM_CACHE][128];
} symcache_t;

static const char *sym_lookup(symcache_t *sc, const void *fn)
{
	size_t h = ((uintptr_t)fn >> 4) % SYM_CACHE;
	if (sc->fn[h] == fn && fn)
		return sc->name[h];
	if (!sc->s)
		sc->s = coil__sym_new();
	char *buf = sc->name[h];
	coil__sym_name(sc->s, fn, false, buf, sizeof(sc->name[h]), NULL);
	size_t len = strlen(buf);
	if (len > 4 && !strcmp(buf + len - 4, "+0x0"))
		buf[len - 4] = '\0';
	sc->fn[h] = fn;
	return buf;
}

/* The length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n;
	if (p[0] < 0x80)
		return 1;
	else if ((p[0] & 0xE0) == 0xC0 && p[0] >= 0xC2)
		n = 2;
	else if ((p[0] & 0xF0) == 0xE0)
		n = 3;
	else if ((p[0] & 0xF8) == 0xF0 && p[0] <= 0xF4)
		n = 4;
	else
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

/* Writes s as a JSON string; bytes that are not UTF-8 become '?'. */
static void json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	fputc('"', f);
	while (*p) {
		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p++, f);
		} else if (*p < 0x20) {
			fprintf(f, "\\u%04x", *p++);
		} else {
			size_t n = utf8_len(p);
			if (!n) {
				fputc('?', f);
				p++;
			} else {
				fwrite(p, 1, n, f);
				p += n;
			}
		}
	}
	fputc('"', f);
}

/* Writes ns as microseconds, exactly (three decimals). */
static void json_us(FILE *f, int64_t ns)
{
	if (ns < 0)
		ns = 0;
	fprintf(f, "%lld.%03lld", (long long)(ns / 1000), (long long)(ns % 1000));
}

static void json_sep(FILE *f)
{
	/* The document starts with the process_name event: every later
	 * one follows a comma. */
	fputs(",\n", f);
}

static void write_metadata(coil__tbuf_t *b)
{
	FILE *f = T.f;
	json_sep(f);
	fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%ld,"
		"\"args\":{\"name\":", T.pid, b->tid);
	json_str(f, b->track);
	fputs("}}", f);
	json_sep(f);
	fprintf(f, "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":%d,\"tid\":%ld,"
		"\"args\":{\"sort_index\":%ld}}", T.pid, b->tid, b->tid);
}

/* An I/O wait: a pair of async events ("b" and "e", one id), which
 * Perfetto draws on tracks of their own under the process, one group per
 * operation, overlapping waits on separate lanes. A worker's own track
 * cannot hold them: they overlap each other and the steps run meanwhile,
 * and slices on one thread's track must nest. The name of the one begun
 * first is already written. */
static void write_io(const coil__tbuf_t *b, const tev_t *e, int64_t s, int64_t d)
{
	FILE *f = T.f;
	unsigned long long id = ++T.io_seq;
	int fd = (int)(uint32_t)(e->n >> 32);
	int res = (int)(uint32_t)e->n;
	json_str(f, (const char *)e->fn);
	fprintf(f, ",\"cat\":\"io\",\"ph\":\"b\",\"id\":\"0x%llx\",\"ts\":", id);
	json_us(f, s - T.t0);
	fprintf(f, ",\"pid\":%d,\"tid\":%ld,\"args\":{\"worker\":", T.pid, b->tid);
	json_str(f, b->track);
	fprintf(f, ",\"task\":%llu,\"fd\":%d,\"result\":%d}}",
		(unsigned long long)e->id, fd, res);
	json_sep(f);
	fputs("{\"name\":", f);
	json_str(f, (const char *)e->fn);
	fprintf(f, ",\"cat\":\"io\",\"ph\":\"e\",\"id\":\"0x%llx\",\"ts\":", id);
	json_us(f, s - T.t0 + d);
	fprintf(f, ",\"pid\":%d,\"tid\":%ld}", T.pid, b->tid);
}

static void write_event(const coil__tbuf_t *b, const tev_t *e, symcache_t *sc)
{
	FILE *f = T.f;
	/* A span that began before the trace is cut at its start. */
	int64_t s = e->t0 > T.t0 ? e->t0 : T.t0;
	int64_t d = e->t1 > s ? e->t1 - s : 0;
	json_sep(f);
	fputs("{\"name\":", f);
	switch (e->kind) {
	case COIL__TEV_TASK:
		if (e->name[0]) {
			json_str(f, e->name);
		} else {
			char n[32];
			snprintf(n, sizeof(n), "Task-%llu", (unsigned long long)e->id);
			json_str(f, n);
		}
		fputs(",\"cat\":\"task\",\"ph\":\"X\"", f);
		break;
	case COIL__TEV_CALLBACK:
	case COIL__TEV_DONECB:
		json_str(f, sym_lookup(sc, e->fn));
		fprintf(f, ",\"cat\":\"%s\",\"ph\":\"X\"",
			e->kind == COIL__TEV_CALLBACK ? "callback" : "done-callback");
		break;
	case COIL__TEV_PARK:
		fputs("\"park\",\"cat\":\"idle\",\"ph\":\"X\"", f);
		break;
	case COIL__TEV_IO:
		write_io(b, e, s, d);
		return;
	default: /* COIL__TEV_STEAL */
		fputs("\"steal\",\"cat\":\"sched\",\"ph\":\"i\",\"s\":\"t\"", f);
		break;
	}
	fputs(",\"ts\":", f);
	json_us(f, s - T.t0);
	if (e->kind != COIL__TEV_STEAL) {
		fputs(",\"dur\":", f);
		json_us(f, d);
	}
	fprintf(f, ",\"pid\":%d,\"tid\":%ld", T.pid, b->tid);
	if (e->kind == COIL__TEV_TASK)
		fprintf(f, ",\"args\":{\"task\":%llu}", (unsigned long long)e->id);
	else if (e->kind == COIL__TEV_STEAL)
		fprintf(f, ",\"args\":{\"victim\":%llu,\"tasks\":%llu}",
			(unsigned long long)e->id, (unsigned long long)e->n);
	fputc('}', f);
}

/* Under lock: writes out what every buffer has published since the last
 * flush and frees the chunks it finished. Returns the events written. */
static uint64_t flush_locked(void)
{
	/* Under lock, so one cache serves every flush; the names it holds
	 * are good for one flush only (a module may be unloaded after). */
	static symcache_t cache;
	symcache_t *sc = &cache;
	memset(sc->fn, 0, sizeof(sc->fn));
	uint64_t total = 0;
	for (coil__tbuf_t *b = T.bufs; b; b = b->next) {
		if (!b->named) {
			write_metadata(b);
			b->named = true;
		}
		uint64_t done = 0;
		for (;;) {
			tchunk_t *c = b->head;
			/* next before n: a chunk with a successor is complete. */
			tchunk_t *next = atomic_load_explicit(&c->next, memory_order_acquire);
			size_t n = atomic_load_explicit(&c->n, memory_order_acquire);
			for (size_t i = b->head_done; i < n; i++) {
				write_event(b, &c->ev[i], sc);
				done++;
			}
			b->head_done = n;
			if (!next)
				break;
			free(c);
			b->head = next;
			b->head_done = 0;
		}
		atomic_fetch_add_explicit(&b->flushed, done, memory_order_relaxed);
		total += done;
	}
	coil__sym_free(sc->s);
	sc->s = NULL;
	T.written += total;
	fflush(T.f);
	if (ferror(T.f))
		T.io_error = true;
	return total;
}

/* --- the API ------------------------------------------------------------- */

static int start_locked(FILE *f, bool own, const coil_trace_opts_t *opts)
{
	coil_trace_opts_t o = { .size = sizeof(o) };
	if (opts) {
		size_t n = opts->size < sizeof(o) ? opts->size : sizeof(o);
		if (n > sizeof(o.size))
			memcpy((char *)&o + sizeof(o.size), (const char *)opts + sizeof(o.size),
			       n - sizeof(o.size));
	}
	memset(&T, 0, sizeof(T));
	T.f = f;
	T.own = own;
	T.pid = (int)getpid();
	T.max_events = o.max_events;
	T.t0 = coil__clock_ns();
	fprintf(f, "{\"traceEvents\":[\n{\"name\":\"process_name\",\"ph\":\"M\","
		"\"pid\":%d,\"tid\":0,\"args\":{\"name\":\"coil\"}}", T.pid);
	T.active = true;
	atomic_store_explicit(&coil__trace_flag, 1, memory_order_seq_cst);
	return 0;
}

int coil_trace_start(const char *path, const coil_trace_opts_t *opts)
{
	if (!path || !*path)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	int rc = -EBUSY;
	if (!T.active) {
		FILE *f = fopen(path, "we");
		rc = f ? start_locked(f, true, opts) : -errno;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int coil_trace_start_file(FILE *f, const coil_trace_opts_t *opts)
{
	if (!f)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	int rc = T.active ? -EBUSY : start_locked(f, false, opts);
	pthread_mutex_unlock(&lock);
	return rc;
}

int coil_trace_flush(void)
{
	pthread_mutex_lock(&lock);
	int rc = -EINVAL;
	if (T.active) {
		uint64_t n = flush_locked();
		rc = T.io_error ? -EIO : (int)(n > INT32_MAX ? INT32_MAX : n);
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int coil_trace_stop(void)
{
	pthread_mutex_lock(&lock);
	if (!T.active) {
		pthread_mutex_unlock(&lock);
		return -EINVAL;
	}
	atomic_store_explicit(&coil__trace_flag, 0, memory_order_seq_cst);
	/* Wait for the events being written (see the top). */
	for (coil__tbuf_t *b = T.bufs; b; b = b->next)
		if (b->loop)
			while (atomic_load_explicit(&b->loop->metrics.tbusy, memory_order_seq_cst))
				sched_yield();
	flush_locked();
	uint64_t dropped = T.dropped;
	while (T.bufs) {
		coil__tbuf_t *b = T.bufs;
		T.bufs = b->next;
		dropped += atomic_load_explicit(&b->dropped, memory_order_relaxed);
		if (b->loop)
			b->loop->metrics.tbuf = NULL;
		free(b->head); /* the last chunk: flush freed the others */
		free(b);
	}
	fprintf(T.f, "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{\"recorder\":\"coil\","
		"\"events\":%llu,\"dropped\":%llu}}\n",
		(unsigned long long)T.written, (unsigned long long)dropped);
	if (fflush(T.f) != 0 || ferror(T.f))
		T.io_error = true;
	if (T.own && fclose(T.f) != 0)
		T.io_error = true;
	T.f = NULL;
	T.active = false;
	uint64_t written = T.written;
	bool err = T.io_error;
	pthread_mutex_unlock(&lock);
	if (err)
		return -EIO;
	return written > INT32_MAX ? INT32_MAX : (int)written;
}

bool coil_trace_active(void)
{
	return atomic_load_explicit(&coil__trace_flag, memory_order_relaxed) != 0;
}

void coil__trace_loop_free(coil_loop_t *loop)
{
	pthread_mutex_lock(&lock);
	for (coil__tbuf_t *b = T.bufs; b; b = b->next)
		if (b->loop == loop)
			b->loop = NULL;
	loop->metrics.tbuf = NULL;
	pthread_mutex_unlock(&lock);
}

#else /* !COIL_METRICS: no recorder */

int coil_trace_start(const char *path, const coil_trace_opts_t *opts)
{
	(void)path;
	(void)opts;
	return -ENOTSUP;
}

int coil_trace_start_file(FILE *f, const coil_trace_opts_t *opts)
{
	(void)f;
	(void)opts;
	return -ENOTSUP;
}

int coil_trace_flush(void)
{
	return -ENOTSUP;
}

int coil_trace_stop(void)
{
	return -ENOTSUP;
}

bool coil_trace_active(void)
{
	return false;
}

#endif
