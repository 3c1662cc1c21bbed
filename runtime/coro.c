/*
 * runtime/coro.c: stackful coroutines on top of the raw context switch.
 *
 * A coroutine switches to its ret_ctx (whoever resumed it) when it yields or
 * returns. A task's coroutine awaiting a future does not yield: it switches
 * to its loop directly (task.c), from whatever nested coroutine the task is
 * running at that moment, and the loop later switches back into that same
 * coroutine.
 *
 * Sanitizers and debuggers: every switch tells ASan which stack it goes to
 * (__sanitizer_start/finish_switch_fiber) and TSan which fiber
 * (__tsan_switch_to_fiber); Valgrind learns the stacks in stack.c. A SIGSEGV
 * in a guard page is reported as an overflow of the running coroutine's
 * stack, from an alternate signal stack, and aborts.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "core.h"
#include "ctx.h"


__thread coil_coro_t *coil__cur;

size_t coil__default_stack_size = 64 * 1024;

size_t coil_stack_default_size(void)
{
	return coil__default_stack_size;
}

int coil_stack_set_default_size(size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (size < 16 * 1024 || size > ((size_t)1 << 40))
		return -EINVAL;
	coil__default_stack_size = (size + page - 1) & ~(page - 1);
	return 0;
}

/* --- contexts and the switch ------------------------------------------ */

static __thread coil__ctx_t thread_ctx;
static __thread bool thread_ctx_ready;

static coil__ctx_t *thread_context(void)
{
	if (!thread_ctx_ready) {
		coil__ctx_here(&thread_ctx);
		thread_ctx_ready = true;
	}
	return &thread_ctx;
}

void coil__ctx_here(coil__ctx_t *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	if (coil__cur) {
		*ctx = coil__cur->ctx;
		ctx->sp = NULL;
#ifdef COIL_ASAN
		ctx->asan_fake = NULL;
#endif
		return;
	}
#ifdef COIL_ASAN
	pthread_attr_t attr;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		void *lo;
		size_t size;
		pthread_attr_getstack(&attr, &lo, &size);
		ctx->stack_lo = lo;
		ctx->stack_size = size;
		pthread_attr_destroy(&attr);
	}
#endif
#ifdef COIL_TSAN
	ctx->tsan_fiber = __tsan_get_current_fiber();
#endif
}

/* --- stack overflow reporting ----------------------------------------- */

static pthread_once_t segv_once = PTHREAD_ONCE_INIT;
static struct sigaction segv_prev;
static __thread bool altstack_ready;

static void put_str(char *buf, size_t cap, size_t *len, const char *s)
{
	while (*s && *len + 1 < cap)
		buf[(*len)++] = *s++;
}

static void put_u64(char *buf, size_t cap, size_t *len, unsigned long long v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n && *len + 1 < cap)
		buf[(*len)++] = tmp[--n];
}

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	coil_coro_t *c = coil__cur;
	if (c && c->stack &&
	    coil__stack_is_overflow(c->stack, si->si_addr, 256 * 1024)) {
		/* Only async-signal-safe calls from here: build the line by
		 * hand and write it. */
		char buf[256];
		size_t len = 0;
		put_str(buf, sizeof(buf), &len, "coil: task ");
		if (c->name) {
			put_str(buf, sizeof(buf), &len, c->name);
		} else if (c->task && c->task->name) {
			put_str(buf, sizeof(buf), &len, c->task->name);
		} else if (c->task) {
			put_str(buf, sizeof(buf), &len, "Task-");
			put_u64(buf, sizeof(buf), &len, c->task->id);
		} else {
			put_str(buf, sizeof(buf), &len, "(coroutine)");
		}
		put_str(buf, sizeof(buf), &len, " overflowed its ");
		put_u64(buf, sizeof(buf), &len, (c->stack->size - COIL__STACK_PAD) / 1024);
		put_str(buf, sizeof(buf), &len, " KiB stack\n");
		ssize_t w = write(STDERR_FILENO, buf, len);
		(void)w;
		signal(SIGABRT, SIG_DFL);
		abort();
	}
	/* Not ours: hand it to whoever was there before, or crash as
	 * usual by returning with the default action restored. */
	if (segv_prev.sa_flags & SA_SIGINFO) {
		if (segv_prev.sa_sigaction) {
			segv_prev.sa_sigaction(sig, si, uc);
			return;
		}
	} else if (segv_prev.sa_handler != SIG_DFL &&
		   segv_prev.sa_handler != SIG_IGN) {
		segv_prev.sa_handler(sig);
		return;
	}
	signal(SIGSEGV, SIG_DFL);
}

static void segv_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &segv_prev);
}

/* An overflow cannot be handled on the stack that overflowed: each thread
 * that runs coroutines gets an alternate signal stack (freed with the thread
 * by a key destructor). */
static pthread_key_t altstack_key;
static pthread_once_t altstack_key_once = PTHREAD_ONCE_INIT;

static void altstack_free(void *p)
{
	stack_t ss;
	memset(&ss, 0, sizeof(ss));
	ss.ss_flags = SS_DISABLE;
	sigaltstack(&ss, NULL);
	munmap(p, 64 * 1024);
}

static void altstack_key_make(void)
{
	pthread_key_create(&altstack_key, altstack_free);
}

static void overflow_guard_thread_init(void)
{
	if (altstack_ready)
		return;
	altstack_ready = true;
	pthread_once(&segv_once, segv_install);
	stack_t old;
	if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
		return; /* the program has one already */
	size_t size = 64 * 1024;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	stack_t ss = { .ss_sp = p, .ss_size = size, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL) != 0) {
		munmap(p, size);
		return;
	}
	pthread_once(&altstack_key_once, altstack_key_make);
	pthread_setspecific(altstack_key, p);
}

/* --- coroutine lifecycle ---------------------------------------------- */

static void coro_main(void *arg)
{
#ifdef COIL_ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
	coil_coro_t *c = coil__cur;
	/* The first switch in hands over the error thrown in, if any. */
	int ret = (int)(intptr_t)arg;
	if (!ret)
		ret = c->fn(c->arg, &c->result);
	c->ret = ret;
	c->state = COIL_CORO_CLOSED;
	if (ret != 0 && c->result && c->result_dtor) {
		/* A failing body's result is nobody's: free it now. */
		c->result_dtor(c->result);
		c->result = NULL;
	}
	if (c->out_ptr)
		*c->out_ptr = ret == 0 ? c->result : NULL;
	coil__cur = c->parent;
	/* The stack stays with the coroutine until it is destroyed (or the
	 * task ends): we are still running on it. */
	coil__ctx_jump(&c->ctx, c->ret_ctx, ret == 0 ? COIL_EDONE : ret, true);
	__builtin_unreachable();
}

int coil__coro_prepare(coil_coro_t *c, coil__stack_t *stack)
{
	c->stack = stack ? stack : coil__stack_alloc(coil__coro_stack_request(c));
	if (!c->stack)
		return -ENOMEM;
	overflow_guard_thread_init();
	/* The stack's colour (core.h, coil__coro_stack_request), the same
	 * whenever the stack is reused; the wait slot (core.h) sits above
	 * the first frame. */
	uintptr_t page = (uintptr_t)c->stack->lo >> 12;
	size_t color = (size_t)(((uint32_t)page * 2654435761u) >> 27) % COIL__STACK_COLORS * 64;
	c->ctx.stack_lo = c->stack->lo;
	c->ctx.stack_size = c->stack->size - color;
	c->ctx.sp = coil__ctx_make(c->stack->lo, c->ctx.stack_size - COIL__WAIT_SLOT, coro_main);
#ifdef COIL_TSAN
	c->ctx.tsan_fiber = __tsan_create_fiber(0);
#endif
	return 0;
}

coil__stack_t *coil__coro_take_stack(coil_coro_t *c)
{
	coil__stack_t *s = c->stack;
#ifdef COIL_TSAN
	if (c->ctx.tsan_fiber) {
		__tsan_destroy_fiber(c->ctx.tsan_fiber);
		c->ctx.tsan_fiber = NULL;
	}
#endif
	c->stack = NULL;
	return s;
}

void coil__coro_release_stack(coil_coro_t *c)
{
	if (c->stack)
		coil__stack_free(coil__coro_take_stack(c));
}

void coil__coro_switch_out(coil_coro_t *c, coil__ctx_t *to)
{
	coil__ctx_jump(&c->ctx, to, 0, false);
}

int coil_coro_create(coil_coro_t **out, coil_fn fn, void *arg,
		     const coil_coro_opts_t *opts)
{
	if (!out || !fn)
		return -EINVAL;
	coil_coro_t *c = coil__malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	coil__coro_init(c, fn, arg, opts ? opts->stack_size : 0,
			opts ? opts->result_dtor : NULL, 0);
	if (opts && opts->name && !(c->name = coil__strdup(opts->name))) {
		coil__free(c, sizeof(*c));
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

/*
 * Resumes c from the current context; returns as coil_coro_resume. The
 * result crosses the switch: c's yield (or end) hands over the return code
 * and writes the value through c->out_ptr, so nothing is left to do here
 * after the switch and it can be a tail jump.
 */
static inline __attribute__((always_inline)) int
resume(coil_coro_t *c, void *value, int err, void **out)
{
	if (__builtin_expect(c->state == COIL_CORO_SUSPENDED && !c->awaiting, 1)) {
		if (!err && c->sent_ptr)
			*c->sent_ptr = value;
	} else if (c->state == COIL_CORO_CREATED) {
		if (err && !c->closing) {
			/* Python: throw() into a fresh generator raises
			 * there without running it. */
			c->state = COIL_CORO_CLOSED;
			c->ret = err;
			return err;
		}
		int rc = coil__coro_prepare(c, NULL);
		if (rc)
			return rc;
	} else {
		return COIL_EINVALSTATE;
	}
	coil_coro_t *parent = coil__cur;
	c->parent = parent;
	c->task = parent ? parent->task : NULL;
	c->ret_ctx = parent ? &parent->ctx : thread_context();
	c->out_ptr = out;
	c->state = COIL_CORO_RUNNING;
	coil__cur = c;
	return coil__ctx_jump(c->ret_ctx, &c->ctx, err, false);
}

int coil_coro_resume(coil_coro_t *c, void *value, void **out)
{
	if (!c)
		return -EINVAL;
	if (c->flags & COIL__CORO_F_TASK)
		return COIL_EINVALSTATE;
	return resume(c, value, 0, out);
}

int coil_coro_throw(coil_coro_t *c, int err, void **out)
{
	if (!c || err >= 0)
		return -EINVAL;
	if (c->flags & COIL__CORO_F_TASK)
		return COIL_EINVALSTATE;
	return resume(c, NULL, err, out);
}

int coil_coro_close(coil_coro_t *c)
{
	if (!c)
		return -EINVAL;
	switch (c->state) {
	case COIL_CORO_CLOSED:
		return 0;
	case COIL_CORO_CREATED:
		c->state = COIL_CORO_CLOSED;
		c->ret = COIL_ECLOSED;
		return 0;
	case COIL_CORO_RUNNING:
		return COIL_EINVALSTATE;
	default:
		break;
	}
	if (c->awaiting || (c->flags & COIL__CORO_F_TASK))
		return COIL_EINVALSTATE;
	c->closing = true;
	resume(c, NULL, COIL_ECLOSED, NULL);
	return c->ignored_close ? COIL_EINVALSTATE : 0;
}

/* Debug mode's check (runtime/debug/debug.c). Weak, so that this file
 * links without the rest of the runtime (tests/cross/aarch64.sh). */
void coil__debug_coro_destroy(coil_coro_t *c) __attribute__((weak));

void coil_coro_destroy(coil_coro_t *c)
{
	if (!c)
		return;
	if (coil__debug_coro_destroy)
		coil__debug_coro_destroy(c);
	/* Freed now, its stack would be pulled from under whoever runs it,
	 * or will resume it at the end of the await (its task, or its
	 * loop): left alone instead, for a later destroy. */
	if (c->state == COIL_CORO_RUNNING || (c->flags & COIL__CORO_F_TASK) ||
	    (c->state == COIL_CORO_SUSPENDED && c->awaiting))
		return;
	if (c->state == COIL_CORO_SUSPENDED && !c->awaiting)
		coil_coro_close(c);
	if (c->state == COIL_CORO_CLOSED && c->ret == 0 && !c->result_taken &&
	    c->result && c->result_dtor)
		c->result_dtor(c->result);
	coil__coro_fini(c);
	coil__free(c, sizeof(*c));
}

coil_coro_state_t coil_coro_state(const coil_coro_t *c)
{
	return (coil_coro_state_t)c->state;
}

const char *coil_coro_state_name(coil_coro_state_t s)
{
	switch (s) {
	case COIL_CORO_CREATED: return "CORO_CREATED";
	case COIL_CORO_RUNNING: return "CORO_RUNNING";
	case COIL_CORO_SUSPENDED: return "CORO_SUSPENDED";
	case COIL_CORO_CLOSED: return "CORO_CLOSED";
	}
	return "CORO_UNKNOWN";
}

int coil_coro_take_result(coil_coro_t *c, void **result)
{
	if (!c || c->state != COIL_CORO_CLOSED || c->ret != 0 || c->result_taken)
		return COIL_EINVALSTATE;
	c->result_taken = true;
	if (result)
		*result = c->result;
	return 0;
}

int coil_coro_yield(void *value, void **sent)
{
	coil_coro_t *c = coil__cur;
	if (!c || (c->flags & COIL__CORO_F_TASK))
		return COIL_EINVALSTATE;
	if (c->closing) {
		c->ignored_close = true;
		return COIL_ECLOSED;
	}
	if (c->out_ptr)
		*c->out_ptr = value;
	c->sent_ptr = sent;
	c->state = COIL_CORO_SUSPENDED;
	coil__cur = c->parent;
	/* Returns what the next resume hands over: 0 (the value went through
	 * sent_ptr), a thrown error, or COIL_ECLOSED. */
	return coil__ctx_jump(&c->ctx, c->ret_ctx, 0, false);
}

coil_coro_t *coil_coro_current(void)
{
	return coil__cur;
}

const char *coil_coro_name(const coil_coro_t *c)
{
	return c && c->name ? c->name : "";
}
