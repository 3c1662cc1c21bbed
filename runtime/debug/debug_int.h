/*
 * runtime/debug/debug_int.h: the hooks through which the core reaches the
 * observability layer (runtime/debug/), and what that layer shares between
 * its own files.
 *
 * Every hook the core calls is off its hot paths: loop creation and
 * destruction, a task's first step when it was cancelled before it, the
 * destruction of a coroutine or generator. Debug mode costs the core one
 * predictable branch on a loop field at spawn, and one per runnable run
 * (COIL__OBSERVING in metrics_int.h, shared with the trace recorder); while
 * it is on, each step also reads the clock twice (the slow-callback check)
 * and a standalone loop runs its tasks one by one instead of handing off
 * between them, so that each step is timed.
 */
#ifndef COIL_RUNTIME_DEBUG_INT_H
#define COIL_RUNTIME_DEBUG_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coil/common.h"

/* Whether the environment asks for debug mode (COIL_DEBUG set to anything
 * but "", "0", "no", "false" or "off"). Any thread; not for hot paths (it
 * reads the environment). */
bool coil__debug_env(void);

/* Whether debug mode applies to the calling thread's code: the environment
 * asks for it, or the running (else current) loop of the thread has it on.
 * For the checks that belong to no loop (coroutines, generators). */
bool coil__debug_active(void);

/* The registry of live loops, for debuggers (tools/gdb/coil.py): a loop
 * is registered when it is made and unregistered when its memory is
 * freed. A loop that cannot be registered (no memory) works all the same,
 * unseen by the debugger. Any thread. */
void coil__debug_loop_register(coil_loop_t *loop);
void coil__debug_loop_unregister(coil_loop_t *loop);

/* Debug mode, a task cancelled before its first step (called before it is
 * finished): reports it if nobody holds a reference to it or watches it
 * with a done-callback, i.e. nobody will ever see that it never ran. */
void coil__debug_task_never_ran(coil_task_t *t);

/* Called by coil_coro_destroy before it closes and frees c: in debug mode,
 * reports a coroutine never resumed, or destroyed while suspended without
 * having been closed. */
void coil__debug_coro_destroy(coil_coro_t *c);

/* Debug mode: reports an async generator (named `name`, body `fn`) that was
 * never closed; `why` ends the sentence ("was destroyed without being
 * closed"). loop NULL: the thread's loop. */
void coil__debug_gen_unclosed(coil_loop_t *loop, const char *name, void *fn,
			      const char *why);

/* Debug mode's watch on the descriptors coil hands out (fds.c): a socket
 * or file still open when its loop (or runtime) closes is reported.
 * COIL__DEBUG_FD_OPENED(fd, what) records fd with a description ("a socket
 * from coil_accept") when the calling thread's running loop is in debug
 * mode, and costs one branch otherwise; COIL__DEBUG_FD_CLOSED(fd) forgets
 * it, before coil closes it (one relaxed load when nothing is watched).
 * coil__debug_fds_check reports the descriptors of `home` (a standalone
 * loop, or a runtime) still open, through loop's exception handler, and
 * forgets them. Any thread; `what` is a static string. */
struct coil_loop;
extern atomic_size_t coil__debug_fds_watched;
void coil__debug_fd_opened_slow(struct coil_loop *loop, int fd, const char *what);
void coil__debug_fd_closed_slow(int fd);
const void *coil__debug_fd_home(const struct coil_loop *loop);
void coil__debug_fds_check(const void *home, struct coil_loop *loop);
#define COIL__DEBUG_FD_OPENED(fd, what)                                       \
	do {                                                                  \
		struct coil_loop *l_ = coil__running_loop;                    \
		if (__builtin_expect(l_ && l_->debug, 0))                     \
			coil__debug_fd_opened_slow(l_, fd, what);             \
	} while (0)
#define COIL__DEBUG_FD_CLOSED(fd)                                             \
	do {                                                                  \
		if (__builtin_expect(atomic_load_explicit(&coil__debug_fds_watched, \
							  memory_order_relaxed) != 0, 0)) \
			coil__debug_fd_closed_slow(fd);                       \
	} while (0)

/* --- shared inside runtime/debug/ ---------------------------------------- */

/* Where a suspended coroutine's saved context (the words at its ctx.sp,
 * runtime/arch/switch_*.S) holds its frame pointer and the return address
 * into the code that switched, and how many words it spans. */
#if defined(__x86_64__)
enum { COIL__SAVED_FP = 5, COIL__SAVED_PC = 6, COIL__SAVED_WORDS = 7 };    /* r15..rbx, rbp, ret */
#elif defined(__aarch64__)
enum { COIL__SAVED_FP = 10, COIL__SAVED_PC = 11, COIL__SAVED_WORDS = 22 }; /* x19..x28, x29, x30, d8..d15 */
#else
#error "unsupported architecture"
#endif

/* Writes a name for the code at pc: "symbol+0xoff" when the symbol is
 * known (the dynamic symbols, else the ELF symbol table of the module on
 * disk), else "module+0xoff", else the bare address. Returns buf. Any
 * thread; reads the module files, so not async-signal-safe. */
typedef struct coil__symbolizer coil__symbolizer_t;
coil__symbolizer_t *coil__sym_new(void);
void coil__sym_free(coil__symbolizer_t *s);
const char *coil__sym_name(coil__symbolizer_t *s, const void *pc, bool ret_addr,
			   char *buf, size_t cap, const char **module);

#endif
