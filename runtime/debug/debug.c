/*
 * runtime/debug/debug.c: debug mode (see coil/debug.h) and the table that
 * lets a debugger find and read the runtime's structures.
 *
 * Debug mode is a flag per loop (coil_loop_t.debug), set from the options
 * or the environment when the loop is made; the core tests it only where a
 * check happens (spawn, for the spawn time; the first step of a task
 * cancelled before it; the destruction of coroutines and generators). Every
 * warning goes through the exception handler of the loop concerned, so a
 * program that routes those (to its log, to a test) gets these too.
 *
 * The debugger table. tools/gdb/coil.py reads a process's tasks from
 * memory alone (a live process or a core file), with or without debug
 * information: coil__debug_table, a symbol of the library's symbol table,
 * holds a magic number, the offsets of every field the script reads, and
 * the registry of live loops (an array the script walks). The registry is
 * kept under reg_lock; the script reads it only while the process is
 * stopped, and tolerates a registry caught half-updated.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coil/debug.h"
#include "core.h"
#include "debug_int.h"

/* --- the debugger table -------------------------------------------------- */

#define DEBUG_MAGIC 0x314742444c494f43ull /* "COILDBG1", little-endian */
#define DEBUG_VERSION 1

/* The fields the gdb script reads, in the order it expects them (it
 * names them the same way). Append only; bump DEBUG_VERSION on any other
 * change. */
#define DEBUG_FIELDS(X)                                                       \
	X(loop_tasks, offsetof(coil_loop_t, tasks))                           \
	X(loop_rt, offsetof(coil_loop_t, rt))                                 \
	X(loop_index, offsetof(coil_loop_t, index))                           \
	X(loop_tid, offsetof(coil_loop_t, ring_tid))                          \
	X(loop_current, offsetof(coil_loop_t, current))                       \
	X(loop_closed, offsetof(coil_loop_t, closed))                         \
	X(list_next, offsetof(coil__list_t, next))                            \
	X(body_all, offsetof(coil__task_body_t, all))                         \
	X(body_task, offsetof(coil__task_body_t, task))                       \
	X(body_rstate, offsetof(coil__task_body_t, rstate))                   \
	X(body_started, offsetof(coil__task_body_t, started))                 \
	X(body_resume, offsetof(coil__task_body_t, resume))                   \
	X(body_waiting, offsetof(coil__task_body_t, waiting))                 \
	X(body_worker, offsetof(coil__task_body_t, worker))                   \
	X(body_coro, offsetof(coil__task_body_t, coro))                       \
	X(body_created, offsetof(coil__task_body_t, created))                 \
	X(task_id, offsetof(coil_task_t, id))                                 \
	X(task_name, offsetof(coil_task_t, name))                             \
	X(task_body, offsetof(coil_task_t, body))                             \
	X(future_is_task, offsetof(coil_future_t, is_task))                   \
	X(coro_sp, offsetof(coil_coro_t, ctx.sp))                             \
	X(coro_parent, offsetof(coil_coro_t, parent))                         \
	X(coro_stack, offsetof(coil_coro_t, stack))                           \
	X(coro_name, offsetof(coil_coro_t, name))                             \
	X(stack_lo, offsetof(coil__stack_t, lo))                              \
	X(stack_size, offsetof(coil__stack_t, size))                          \
	X(waiter_what, offsetof(coil__waiter_t, what))                        \
	X(waiter_source, offsetof(coil__waiter_t, source))                    \
	X(waiter_timer_when, offsetof(coil__waiter_t, timer.when))            \
	X(waiter_timer_loop, offsetof(coil__waiter_t, timer_loop))            \
	X(ts_queued, COIL__TS_QUEUED)                                         \
	X(ts_running, COIL__TS_RUNNING)                                       \
	X(ts_waiting, COIL__TS_WAITING)                                       \
	X(ts_notified, COIL__TS_NOTIFIED)                                     \
	X(saved_fp, COIL__SAVED_FP)                                           \
	X(saved_pc, COIL__SAVED_PC)                                           \
	X(saved_words, COIL__SAVED_WORDS)                                     \
	X(loop_own, offsetof(coil_loop_t, own))

#define DEBUG_COUNT_(name, value) +1
#define DEBUG_VALUE_(name, value) (uint64_t)(value),
enum { DEBUG_NFIELDS = 0 DEBUG_FIELDS(DEBUG_COUNT_) };

/* Every member a 64-bit word, so that the script needs no type
 * information to read it. */
struct coil__debug_table {
	uint64_t magic;
	uint64_t version;
	uint64_t nfields;
	uint64_t loops;           /* coil_loop_t *[nloops], or 0 */
	uint64_t nloops;
	uint64_t fields[DEBUG_NFIELDS];
};

__attribute__((used)) struct coil__debug_table coil__debug_table = {
	DEBUG_MAGIC, DEBUG_VERSION, DEBUG_NFIELDS, 0, 0,
	{ DEBUG_FIELDS(DEBUG_VALUE_) }
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static coil_loop_t **reg_loops;
static size_t reg_n, reg_cap;

void coil__debug_loop_register(coil_loop_t *loop)
{
	pthread_mutex_lock(&reg_lock);
	if (reg_n == reg_cap) {
		size_t cap = reg_cap ? 2 * reg_cap : 16;
		coil_loop_t **v = coil__libc_malloc(cap * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&reg_lock);
			return;
		}
		if (reg_n)
			memcpy(v, reg_loops, reg_n * sizeof(*v));
		/* The table points at the new array before the old one goes,
		 * so that a process stopped in between reads either. */
		coil__debug_table.loops = (uint64_t)(uintptr_t)v;
		free(reg_loops);
		reg_loops = v;
		reg_cap = cap;
	}
	reg_loops[reg_n++] = loop;
	coil__debug_table.nloops = reg_n;
	pthread_mutex_unlock(&reg_lock);
}

void coil__debug_loop_unregister(coil_loop_t *loop)
{
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < reg_n; i++) {
		if (reg_loops[i] != loop)
			continue;
		reg_loops[i] = reg_loops[--reg_n];
		coil__debug_table.nloops = reg_n;
		break;
	}
	if (reg_n == 0) {
		/* Nothing left to find: give the array back, so that a
		 * program that ends its loops ends with no memory of ours. */
		coil__debug_table.loops = 0;
		free(reg_loops);
		reg_loops = NULL;
		reg_cap = 0;
	}
	pthread_mutex_unlock(&reg_lock);
}

/* --- the switch ---------------------------------------------------------- */

bool coil__debug_env(void)
{
	/* Read each time (at loop creation, and where a coroutine or
	 * generator is destroyed in a bad state): never on a hot path. */
	const char *e = getenv("COIL_DEBUG");
	return e && *e && strcmp(e, "0") && strcasecmp(e, "no") &&
	       strcasecmp(e, "false") && strcasecmp(e, "off");
}

bool coil__debug_active(void)
{
	if (coil__debug_env())
		return true;
	coil_loop_t *loop = coil_get_event_loop();
	return loop && !loop->any && loop->debug;
}

void coil_loop_set_debug(coil_loop_t *loop, bool enabled)
{
	if (loop && !loop->any)
		loop->debug = enabled;
}

bool coil_loop_get_debug(const coil_loop_t *loop)
{
	return loop && !loop->any && loop->debug;
}

/* --- warnings ------------------------------------------------------------ */

static void warn(coil_loop_t *loop, const char *msg, coil_task_t *t)
{
	coil_exc_context_t ctx = { .message = msg, .task = t,
				   .future = t ? coil_task_future(t) : NULL };
	if (!loop)
		loop = coil_get_event_loop();
	coil_loop_call_exception_handler(loop && !loop->any ? loop : NULL, &ctx);
}

void coil__debug_task_never_ran(coil_task_t *t)
{
	coil_future_t *f = &t->fut;
	/* The loop's reference is the only one, and no done-callback watches
	 * it: nobody will ever learn that it was cancelled. */
	if (atomic_load_explicit(&f->refs, memory_order_acquire) != 1)
		return;
	coil__lock(&f->lock);
	bool watched = !coil__list_empty(&f->cbs);
	coil__unlock(&f->lock);
	if (watched)
		return;
	char name[96], msg[224];
	if (t->name)
		snprintf(name, sizeof(name), "%s", t->name);
	else
		snprintf(name, sizeof(name), "Task-%llu", (unsigned long long)t->id);
	snprintf(msg, sizeof(msg),
		 "task '%s' was never run: it was cancelled before its first "
		 "step and nobody awaits it (coroutine was never awaited)", name);
	warn(f->loop, msg, t);
}

/* Names a coroutine or generator: its given name, else its function's. */
static void code_name(char *buf, size_t cap, const char *name, void *fn)
{
	if (name && *name) {
		snprintf(buf, cap, "%s", name);
		return;
	}
	coil__symbolizer_t *s = coil__sym_new();
	char sym[160];
	coil__sym_name(s, fn, false, sym, sizeof(sym), NULL);
	coil__sym_free(s);
	/* An exact function start needs no "+0x0". */
	size_t n = strlen(sym);
	if (n > 4 && !strcmp(sym + n - 4, "+0x0"))
		sym[n - 4] = '\0';
	snprintf(buf, cap, "%s", sym);
}

void coil__debug_coro_destroy(coil_coro_t *c)
{
	const char *why;
	if (c->state == COIL_CORO_CREATED)
		why = "was never resumed (coroutine was never awaited)";
	else if (c->state == COIL_CORO_SUSPENDED && c->awaiting)
		why = "was destroyed while suspended in an await (left alone)";
	else if (c->state == COIL_CORO_SUSPENDED)
		why = "was destroyed while suspended at a yield without being "
		      "closed (closed now)";
	else
		return;
	if (!coil__debug_active())
		return;
	char name[128], msg[288];
	code_name(name, sizeof(name), c->name, (void *)c->fn);
	snprintf(msg, sizeof(msg), "coroutine '%s' %s", name, why);
	warn(NULL, msg, NULL);
}

void coil__debug_gen_unclosed(coil_loop_t *loop, const char *name, void *fn,
			      const char *why)
{
	if (!coil__debug_env() && !(loop ? loop->debug : coil__debug_active()))
		return;
	char n[128], msg[288];
	code_name(n, sizeof(n), name, fn);
	snprintf(msg, sizeof(msg), "asynchronous generator '%s' %s", n, why);
	warn(loop, msg, NULL);
}
