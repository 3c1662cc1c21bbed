/*
 * runtime/ctx.h: the raw context switch (runtime/arch/switch_*.S).
 *
 * A context is nothing but a saved stack pointer: the callee-saved registers
 * sit on the stack it points into. coil__ctx_make prepares a fresh stack so
 * that the first switch into it calls fn(arg), where arg is the value passed
 * to that switch. fn must never return.
 */
#ifndef COIL_RUNTIME_CTX_H
#define COIL_RUNTIME_CTX_H

#include <stdint.h>
#include <stddef.h>

void *coil__ctx_switch(void **save_sp, void *to_sp, void *arg);
/* The same code, typed for passing an int across: a function that ends with
 * `return coil__ctx_switch_int(...)` compiles to a tail jump, so the
 * resumed side continues straight in its caller without a ret the return
 * predictor cannot know (each such ret costs about 7 ns here). */
int coil__ctx_switch_int(void **save_sp, void *to_sp, intptr_t arg);
void coil__ctx_entry(void);

typedef void (*coil__ctx_fn)(void *arg);

/* Prepares the top of the stack [lo, lo + size) and returns the initial
 * stack pointer to switch to. */
static inline void *coil__ctx_make(void *lo, size_t size, coil__ctx_fn fn)
{
	uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
#if defined(__x86_64__)
	/* r15 r14 r13 r12 rbx rbp ret pad pad: after the 7 pops rsp is
	 * 16-aligned, as coil__ctx_entry's call needs. */
	void **sp = (void **)(top - 72);
	for (int i = 0; i < 9; i++)
		sp[i] = NULL;
	sp[3] = (void *)fn;
	sp[6] = (void *)coil__ctx_entry;
#elif defined(__aarch64__)
	void **sp = (void **)(top - 176);
	for (int i = 0; i < 22; i++)
		sp[i] = NULL;
	sp[0] = (void *)fn;                /* x19 */
	sp[11] = (void *)coil__ctx_entry;  /* x30 */
#else
#error "unsupported architecture"
#endif
	return sp;
}

#endif
