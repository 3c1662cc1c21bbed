/*
 * runtime/debug/introspect.c: task stacks, task descriptions and task
 * listings (see coil/debug.h).
 *
 * Reading a task. A task is examined under its cancellation lock (t->clock,
 * core.h) and held (coil__task_hold: a mark and a process-wide barrier),
 * which keeps its body from being recycled: a task that ends and sees the
 * mark waits for the lock before its body goes (runtime/task.c,
 * task_finish). What is read depends on where the task is:
 *  - the caller's own task: its stack is walked from the caller's frame;
 *  - suspended in a wait (body->waiting set, a release store read here
 *    with acquire): everything the task wrote before it published the
 *    waiter is visible, and a task resumed meanwhile sees the mark and
 *    cannot get past its wait's end while we hold the lock, so its
 *    coroutines and the frames of coil__task_suspend and above stay put. Its saved context (the registers the switch pushed)
 *    is complete once its worker has marked it WAITING (after the switch)
 *    and stays so until a worker resumes it: the walk is made only in
 *    WAITING or QUEUED (woken, not resumed), and rstate is read again after
 *    it: a task resumed meanwhile has its walk thrown away (-EBUSY);
 *  - otherwise (created, yielded with coil_sleep(0), running): with one
 *    thread in the process (coil__mt() false) nothing moves while we look;
 *    with several workers such a task may start on another worker at any
 *    moment, and its stack is not read (-EBUSY).
 * Fields that other threads write without the lock (started, worker, the
 * stack pointer of a task that is not waiting) are read as they are, in
 * functions the sanitizers do not instrument: a listing is a snapshot
 * (coil/debug.h), and those reads are of aligned words.
 *
 * Walking. A saved context is the stack pointer of a coroutine whose stack
 * holds the callee-saved registers the switch pushed (runtime/arch/):
 * the frame pointer and the return address into the code that switched.
 * From there the frame pointer chain is followed: each frame holds the
 * caller's frame pointer and the return address. Every address is checked
 * to lie inside the coroutine's stack before it is read, and the chain must
 * climb strictly, so a corrupt chain ends the walk instead of faulting or
 * looping. A task's innermost coroutine (a generator awaiting inside it)
 * is walked first, then the coroutine that resumed it, up to the task's own.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "coil/debug.h"
#include "core.h"
#include "debug_int.h"

/* Bounds on a walk: nested coroutines of one task, frames of one stack. */
#define MAX_CHAIN 64
#define MAX_STEPS 100000

#if defined(__clang__)
#define NO_SAN __attribute__((no_sanitize("address", "thread", "undefined"), noinline))
#else
#define NO_SAN __attribute__((no_sanitize_address, no_sanitize_thread, \
			      no_sanitize_undefined, noinline))
#endif

/* A plain read of a word another thread may be writing (see the top). */
#define RACY(x) (*(const volatile __typeof__(x) *)&(x))

typedef struct walk {
	void **out;
	size_t max, n;
	bool end;                 /* reached a coroutine's entry */
} walk_t;

/* One word of a coroutine's stack, checked against its bounds by the
 * caller; the sanitizers would flag another fiber's frames (ASan's stack
 * redzones, TSan's view of memory written by another thread's switch). */
NO_SAN static uintptr_t peek(uintptr_t a)
{
	return *(const volatile uintptr_t *)a;
}

/* Whether pc returns into coil__ctx_entry: the bottom of every coroutine
 * stack, below the coroutine's own entry function (coro_main). */
static bool is_entry(uintptr_t pc)
{
	uintptr_t e = (uintptr_t)coil__ctx_entry;
	return pc > e && pc - e <= 16;
}

static void push(walk_t *w, uintptr_t pc)
{
	if (w->n < w->max)
		w->out[w->n] = (void *)pc;
	w->n++;
}

/* Follows the frame pointer chain from fp (pc: the return address of the
 * innermost frame, 0 if fp's frame holds it) inside [lo, hi). */
NO_SAN static void walk_chain(walk_t *w, uintptr_t lo, uintptr_t hi,
			      uintptr_t fp, uintptr_t pc)
{
	const uintptr_t word = sizeof(uintptr_t);
	if (pc) {
		if (is_entry(pc)) {
			w->end = true;
			return;
		}
		push(w, pc);
	}
	for (unsigned i = 0; i < MAX_STEPS && w->n < w->max; i++) {
		if (fp < lo || hi - lo < 2 * word || fp > hi - 2 * word ||
		    (fp & (word - 1)))
			return;
		uintptr_t next = peek(fp), ret = peek(fp + word);
		if (!ret)
			return;
		if (is_entry(ret)) {
			w->end = true;
			return;
		}
		push(w, ret);
		if (next <= fp)
			return;
		fp = next;
	}
}

/* Walks a suspended coroutine from its saved context. */
NO_SAN static void walk_saved(walk_t *w, const coil_coro_t *c)
{
	const coil__stack_t *s = RACY(c->stack);
	if (!s)
		return;
	uintptr_t lo = (uintptr_t)s->lo, hi = lo + s->size;
	uintptr_t sp = (uintptr_t)RACY(c->ctx.sp);
	const uintptr_t word = sizeof(uintptr_t);
	if (sp < lo || sp > hi - COIL__SAVED_WORDS * word || (sp & (word - 1)))
		return;
	walk_chain(w, lo, hi, peek(sp + COIL__SAVED_FP * word), peek(sp + COIL__SAVED_PC * word));
}

/*
 * Walks a task from its innermost coroutine c up to its own coroutine
 * `top`. here: the frame to start from when c is running on the calling
 * thread (the caller's frame), else 0.
 */
NO_SAN static void walk_task(walk_t *w, coil_coro_t *c, const coil_coro_t *top,
			     uintptr_t here)
{
	for (unsigned depth = 0; c && depth < MAX_CHAIN && w->n < w->max; depth++) {
		w->end = false;
		const coil__stack_t *s = RACY(c->stack);
		if (depth == 0 && here && s)
			walk_chain(w, (uintptr_t)s->lo, (uintptr_t)s->lo + s->size, here, 0);
		else
			walk_saved(w, c);
		if (c == top)
			break;
		c = RACY(c->parent);
	}
}

/* What one look at a task under its lock gathers. */
typedef struct look {
	coil_task_state_t state;
	int worker;
	const char *awaits;
	uint64_t awaits_task;
	int64_t timeout;
	int64_t created;
	const void *stack_lo;
	size_t stack_size;
	size_t stack_span;        /* the whole stack, its colour pad included */
	int nframes;              /* frames walked (if asked), or -EBUSY */
} look_t;

static int worker_of(const coil_loop_t *l)
{
	return l && l->rt ? (int)l->index : -1;
}

/* Describes the wait w (under the task's lock, w published). */
NO_SAN static void look_waiter(look_t *lk, const coil__waiter_t *w)
{
	lk->awaits = w->what;
	if (w->what && !strcmp(w->what, "future")) {
		const coil_future_t *f = w->source;
		if (f && f->is_task) {
			lk->awaits = "task";
			lk->awaits_task = ((const coil_task_t *)f)->id;
		}
	}
	coil_loop_t *tl = w->timer_loop;
	if (tl) {
		int64_t left = w->timer.when - coil__loop_now(tl);
		lk->timeout = left > 0 ? left : 0;
	}
}

/*
 * Looks at t: its state and wait, and (frames not NULL) its stack. here:
 * the caller's frame, used when t is the caller's own task.
 */
NO_SAN static void task_look(coil_task_t *t, look_t *lk, void **frames,
			     size_t max, uintptr_t here)
{
	memset(lk, 0, sizeof(*lk));
	lk->worker = -1;
	lk->timeout = -1;
	walk_t w = { frames, frames ? max : 0, 0, false };
	coil_coro_t *cur = coil__cur;
	coil__lock(&t->clock);
	/* Held (coil__task_hold): the body and its waiter stay valid while
	 * we look. */
	bool held = coil__task_hold(t);
	coil__task_body_t *b = coil__task_body_held(t);
	if (!b) {
		coil__task_unhold(t, held);
		coil__unlock(&t->clock);
		lk->state = COIL_TASK_DONE;
		return;
	}
	bool mt = coil__mt();
	coil__waiter_t *wt = atomic_load_explicit(&b->waiting, memory_order_acquire);
	uint8_t rs = atomic_load_explicit(&b->rstate, memory_order_acquire);
	lk->created = RACY(b->created);
	lk->worker = worker_of(RACY(b->worker));
	const coil__stack_t *st = RACY(b->coro.stack);
	if (st) {
		lk->stack_lo = st->lo;
		lk->stack_span = st->size;
		lk->stack_size = st->size - COIL__STACK_PAD; /* as asked (core.h) */
	}
	if (cur && cur->task == t) {
		lk->state = COIL_TASK_RUNNING;
		lk->worker = worker_of(coil__running_loop);
		if (frames)
			walk_task(&w, cur, &b->coro, here);
	} else if (wt) {
		look_waiter(lk, wt);
		lk->state = rs == COIL__TS_WAITING ? COIL_TASK_WAITING :
			    rs == COIL__TS_RUNNING ? COIL_TASK_RUNNING : COIL_TASK_READY;
		if (rs != COIL__TS_WAITING && rs != COIL__TS_QUEUED && mt) {
			lk->nframes = -EBUSY;
		} else if (frames) {
			walk_task(&w, b->resume, &b->coro, 0);
			/* Resumed while we read (see the top): the walk may
			 * have met frames being rewritten. The fence keeps the
			 * stack reads before this second look (a load-load
			 * order no single atomic's ordering gives; TSan need
			 * not see it: the reads it orders are not
			 * instrumented). */
			atomic_thread_fence(memory_order_acquire);
			uint8_t again = atomic_load_explicit(&b->rstate, memory_order_relaxed);
			if (mt && again != rs && again != COIL__TS_QUEUED)
				lk->nframes = -EBUSY;
		}
	} else if (!RACY(b->started)) {
		lk->state = COIL_TASK_CREATED;
		lk->worker = -1;
	} else if (rs == COIL__TS_RUNNING) {
		lk->state = COIL_TASK_RUNNING;
		lk->nframes = -EBUSY;
	} else {
		lk->state = COIL_TASK_READY;
		if (mt)
			lk->nframes = -EBUSY;
		else if (frames)
			walk_task(&w, b->resume, &b->coro, 0);
	}
	coil__task_unhold(t, held);
	coil__unlock(&t->clock);
	if (lk->nframes == 0)
		lk->nframes = (int)(w.n < w.max ? w.n : w.max);
}

const char *coil_task_state_name(coil_task_state_t s)
{
	switch (s) {
	case COIL_TASK_CREATED: return "created";
	case COIL_TASK_READY: return "ready";
	case COIL_TASK_RUNNING: return "running";
	case COIL_TASK_WAITING: return "waiting";
	case COIL_TASK_DONE: return "done";
	}
	return "unknown";
}

int coil_task_get_stack(coil_task_t *t, void **frames, size_t max)
{
	if (!t || (!frames && max))
		return -EINVAL;
	look_t lk;
	void *none[1];
	task_look(t, &lk, frames ? frames : none, frames ? max : 0,
		  (uintptr_t)__builtin_frame_address(0));
	return lk.nframes;
}

/* --- printing ------------------------------------------------------------ */

/* The stack's high-water mark: from its top down to its lowest resident
 * page (see coil_task_info_t). */
static size_t stack_touched(const void *lo, size_t size)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	unsigned char vec[256];
	if (!lo || ((uintptr_t)lo & (page - 1)))
		return 0;
	for (size_t off = 0; off < size; off += sizeof(vec) * page) {
		size_t len = size - off < sizeof(vec) * page ? size - off : sizeof(vec) * page;
		if (mincore((char *)lo + off, len, vec) != 0)
			return 0;
		for (size_t i = 0; i < (len + page - 1) / page; i++)
			if (vec[i] & 1)
				return size - off - i * page;
	}
	return 0;
}

/* Copies t's name into buf; never allocates (coil_task_get_name would, to
 * name the task). Under the cancellation lock: the task may be renamed
 * meanwhile on another worker, which frees the old name (task.c,
 * coil_task_set_name). */
static void task_name(coil_task_t *t, char *buf, size_t cap)
{
	coil__lock(&t->clock);
	if (t->name)
		snprintf(buf, cap, "%s", t->name);
	else
		snprintf(buf, cap, "Task-%llu", (unsigned long long)t->id);
	coil__unlock(&t->clock);
}

static void info_fill(coil_task_t *t, const look_t *lk, coil_task_info_t *in)
{
	memset(in, 0, sizeof(*in));
	in->id = t->id;
	task_name(t, in->name, sizeof(in->name));
	in->state = lk->state;
	in->worker = lk->worker;
	in->awaits = lk->awaits;
	in->awaits_task = lk->awaits_task;
	in->timeout_ns = lk->timeout;
	in->age_ns = lk->created ? coil__clock_ns() - lk->created : -1;
	if (in->age_ns < -1)
		in->age_ns = 0;
	in->stack_size = lk->stack_size;
	in->stack_touched = stack_touched(lk->stack_lo, lk->stack_span);
}

int coil_task_get_info(coil_task_t *t, coil_task_info_t *info, size_t size)
{
	if (!t || !info || size < offsetof(coil_task_info_t, state))
		return -EINVAL;
	look_t lk;
	task_look(t, &lk, NULL, 0, 0);
	coil_task_info_t in;
	info_fill(t, &lk, &in);
	memcpy(info, &in, size < sizeof(in) ? size : sizeof(in));
	return 0;
}

static void print_frames(FILE *f, coil__symbolizer_t *sym, void **frames, int n,
			 const char *indent)
{
	for (int i = 0; i < n; i++) {
		char buf[320];
		const char *mod = NULL;
		coil__sym_name(sym, frames[i], true, buf, sizeof(buf), &mod);
		fprintf(f, "%s#%-2d %p in %s%s%s%s\n", indent, i, frames[i], buf,
			mod ? " (" : "", mod ? mod : "", mod ? ")" : "");
	}
}

static const char *busy_reason(coil_task_state_t s)
{
	return s == COIL_TASK_RUNNING ? "running on another thread"
				      : "runnable on another worker";
}

#define PRINT_MAX 128

int coil_task_print_stack(coil_task_t *t, FILE *f)
{
	if (!f)
		f = stderr;
	if (!t)
		return -EINVAL;
	void *frames[PRINT_MAX];
	look_t lk;
	task_look(t, &lk, frames, PRINT_MAX, (uintptr_t)__builtin_frame_address(0));
	char name[64];
	task_name(t, name, sizeof(name));
	fprintf(f, "Stack for task %s (id %llu, %s), innermost first:\n", name,
		(unsigned long long)t->id, coil_task_state_name(lk.state));
	if (lk.nframes < 0) {
		fprintf(f, "  (not available: %s)\n", busy_reason(lk.state));
		return lk.nframes;
	}
	if (lk.nframes == 0)
		fprintf(f, "  (no frames: %s)\n",
			lk.state == COIL_TASK_DONE ? "done" : "not started");
	coil__symbolizer_t *sym = coil__sym_new();
	print_frames(f, sym, frames, lk.nframes, "  ");
	coil__sym_free(sym);
	return lk.nframes;
}

/* --- listings ------------------------------------------------------------ */

/* Takes a reference to each live task of loop into *out. Returns how
 * many, or -ENOMEM. */
static int collect(coil_loop_t *loop, coil_task_t ***out)
{
	return coil__loop_collect(loop, out);
}

static void fmt_secs(char *buf, size_t cap, int64_t ns)
{
	if (ns < 0)
		snprintf(buf, cap, "?");
	else
		snprintf(buf, cap, "%.3f s", (double)ns / 1e9);
}

static void dump_one(FILE *f, coil_task_t *t, unsigned flags,
		     coil__symbolizer_t *sym, uintptr_t here)
{
	void *frames[PRINT_MAX];
	look_t lk;
	task_look(t, &lk, flags & COIL_DUMP_STACKS ? frames : NULL, PRINT_MAX, here);
	coil_task_info_t in;
	info_fill(t, &lk, &in);
	char age[32], wait[160] = "";
	fmt_secs(age, sizeof(age), in.age_ns);
	if (in.awaits && in.awaits_task) {
		snprintf(wait, sizeof(wait), " for task %llu",
			 (unsigned long long)in.awaits_task);
	} else if (in.awaits) {
		snprintf(wait, sizeof(wait), " for %s", in.awaits);
	}
	if (in.timeout_ns >= 0) {
		char left[32];
		fmt_secs(left, sizeof(left), in.timeout_ns);
		size_t l = strlen(wait);
		snprintf(wait + l, sizeof(wait) - l, " (%s left)", left);
	}
	char where[32] = "";
	if (in.worker >= 0)
		snprintf(where, sizeof(where), " on worker %d", in.worker);
	fprintf(f, "  task %llu '%s': %s%s%s; age %s; stack %zu of %zu KiB touched\n",
		(unsigned long long)in.id, in.name, coil_task_state_name(in.state),
		where, wait, age, in.stack_touched / 1024, in.stack_size / 1024);
	if (!(flags & COIL_DUMP_STACKS))
		return;
	if (lk.nframes < 0)
		fprintf(f, "    (stack not available: %s)\n", busy_reason(lk.state));
	else
		print_frames(f, sym, frames, lk.nframes, "    ");
}

int coil_loop_dump_tasks(coil_loop_t *loop, FILE *f, unsigned flags)
{
	if (!loop)
		loop = coil_get_event_loop();
	if (!loop || loop->any || (flags & ~COIL_DUMP_STACKS))
		return -EINVAL;
	if (!f)
		f = stderr;
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	coil_runtime_t *rt = loop->rt;
	unsigned nloops = rt ? rt->n : 1;
	/* On the heap: this may run on a task's small stack, and a runtime
	 * may have thousands of workers. */
	coil_task_t ***all = coil__libc_calloc(nloops, sizeof(*all));
	int *counts = coil__libc_calloc(nloops, sizeof(*counts));
	int total = 0, rc = 0;
	if (!all || !counts) {
		free(all);
		free(counts);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < nloops && !rc; i++) {
		counts[i] = collect(rt ? rt->loops[i] : loop, &all[i]);
		if (counts[i] < 0) {
			rc = counts[i];
			counts[i] = 0;
		}
		total += counts[i];
	}
	if (rc == 0) {
		coil__symbolizer_t *sym = flags & COIL_DUMP_STACKS ? coil__sym_new() : NULL;
		if (rt)
			fprintf(f, "coil: %d task(s) on %u worker(s)\n", total, nloops);
		else
			fprintf(f, "coil: %d task(s) on loop %p\n", total, (void *)loop);
		for (unsigned i = 0; i < nloops; i++)
			for (int j = 0; j < counts[i]; j++)
				dump_one(f, all[i][j], flags, sym, here);
		coil__sym_free(sym);
		fflush(f);
	}
	for (unsigned i = 0; i < nloops; i++) {
		for (int j = 0; j < counts[i]; j++)
			coil_future_release(coil_task_future(all[i][j]));
		free(all[i]);
	}
	free(all);
	free(counts);
	return rc ? rc : total;
}

int coil_dump_tasks(FILE *f)
{
	return coil_loop_dump_tasks(NULL, f, 0);
}
