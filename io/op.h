/*
 * io/op.h: what the awaitable operations of io/ share (ops.c, acceptor.c).
 */
#ifndef COIL_IO_OP_H
#define COIL_IO_OP_H

#include "core.h"
#include "ring_int.h"

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define COIL_HAVE_MEMCHECK 1
#endif
#endif

/*
 * Memory the kernel filled through the ring is invisible to Valgrind, which
 * would call it uninitialised: the operations mark it defined once its
 * completion is reaped. Outside Valgrind a load and a branch.
 * ASan and TSan need nothing: they do not track initialisation, and the
 * kernel's writes reach the task on the thread that reaped them, before the
 * task can migrate.
 */
#ifdef COIL_HAVE_MEMCHECK
/* Whether the process runs under Valgrind: 0 not known yet, 1 no, 2 yes.
 * Found once (coil__io_memcheck_find, in ops.c), so that a read outside
 * Valgrind pays a load and a branch instead of a client request. */
extern _Atomic unsigned char coil__io_memcheck;
bool coil__io_memcheck_find(void);
static inline bool coil__io_on_memcheck(void)
{
	unsigned char v = atomic_load_explicit(&coil__io_memcheck, memory_order_relaxed);
	if (__builtin_expect(v == 1, 1))
		return false;
	return v == 2 || coil__io_memcheck_find();
}
#define COIL__MARK_DEFINED(p, n)                                              \
	(coil__io_on_memcheck() ? (void)VALGRIND_MAKE_MEM_DEFINED((p), (n)) : (void)0)
#else
#define COIL__MARK_DEFINED(p, n) ((void)(p), (void)(n))
#endif

/* The largest count one read or write moves (Linux's MAX_RW_COUNT): longer
 * requests are cut to it, as read(2) and write(2) do. */
#define COIL__IO_MAX_RW ((size_t)0x7ffff000)

/* Whether a timeout argument is valid: >= 0 or COIL_FOREVER. */
static inline bool coil__io_timeout_ok(int64_t timeout_ns)
{
	return timeout_ns >= 0 || timeout_ns == COIL_FOREVER;
}

/*
 * Makes the cancellation the running task `t` was woken by (and that an
 * operation's completion then overtook) pending again, so that its next
 * await delivers it (DESIGN.md section 6, cancel against completion).
 */
void coil__io_cancel_later(coil_task_t *t);

#endif
