/*
 * Context switch for x86-64 System V.
 *
 *   void *coil__ctx_switch(void **save_sp, void *to_sp, void *arg);
 *
 * Saves the callee-saved registers (rbp, rbx, r12-r15) on the current stack,
 * stores the stack pointer to *save_sp, loads to_sp, restores the registers
 * saved there and continues where that context left off, which sees `arg` as
 * the return value of its own coil__ctx_switch call.
 *
 * It leaves through an indirect jmp rather than ret: after a stack swap every
 * ret mispredicts the return-stack buffer (19 ns against 6.9 ns per round
 * trip measured on the target machine, DESIGN.md section 2). MXCSR and the
 * x87 control word are not switched; tasks restore them before awaiting.
 *
 * A new context is prepared by coil__ctx_make (runtime/ctx.h) so that the
 * first switch into it "returns" into coil__ctx_entry with r12 holding the C
 * function to call and rax the argument.
 */
	.text
	.globl	coil__ctx_switch
	.hidden	coil__ctx_switch
	.type	coil__ctx_switch, @function
	.globl	coil__ctx_switch_int
	.hidden	coil__ctx_switch_int
	.type	coil__ctx_switch_int, @function
	.p2align 4
coil__ctx_switch:
coil__ctx_switch_int:
	.cfi_startproc
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r15, 0
	movq	%rsp, (%rdi)
	/* The target stack holds the same layout, so the CFI stays right. */
	movq	%rsi, %rsp
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r12
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbx
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbp
	popq	%rcx
	.cfi_adjust_cfa_offset -8
	.cfi_register %rip, %rcx
	movq	%rdx, %rax
	jmpq	*%rcx
	.cfi_endproc
	.size	coil__ctx_switch, .-coil__ctx_switch
	.size	coil__ctx_switch_int, .-coil__ctx_switch_int

/*
 * First code run on a new stack: calls r12(rax). The C function never
 * returns (it switches away for good); ud2 catches it if it does. The
 * return address is marked undefined so that unwinders stop here.
 */
	.globl	coil__ctx_entry
	.hidden	coil__ctx_entry
	.type	coil__ctx_entry, @function
	.p2align 4
coil__ctx_entry:
	.cfi_startproc
	.cfi_undefined %rip
	movq	%rax, %rdi
	callq	*%r12
	ud2
	.cfi_endproc
	.size	coil__ctx_entry, .-coil__ctx_entry

	.section .note.GNU-stack,"",@progbits
