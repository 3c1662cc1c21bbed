/*
 * Context switch for AArch64 (AAPCS64).
 *
 *   void *coil__ctx_switch(void **save_sp, void *to_sp, void *arg);
 *
 * Saves x19-x30 and d8-d15 (the callee-saved registers, with the frame
 * pointer x29 and the link register x30) on the current stack, stores sp to
 * *save_sp, loads to_sp, restores the registers saved there and branches to
 * the restored x30 with `arg` in x0. It leaves with br, not ret, for the same
 * return-predictor reason as the x86-64 version. FPCR is not switched.
 *
 * A new context holds coil__ctx_entry in its x30 slot and the C function in
 * its x19 slot.
 */
	.text
	.globl	coil__ctx_switch
	.hidden	coil__ctx_switch
	.type	coil__ctx_switch, %function
	.globl	coil__ctx_switch_int
	.hidden	coil__ctx_switch_int
	.type	coil__ctx_switch_int, %function
	.p2align 4
coil__ctx_switch:
coil__ctx_switch_int:
	.cfi_startproc
	sub	sp, sp, #176
	.cfi_adjust_cfa_offset 176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	.cfi_rel_offset x29, 80
	.cfi_rel_offset x30, 88
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	.cfi_adjust_cfa_offset -176
	mov	x0, x2
	br	x30
	.cfi_endproc
	.size	coil__ctx_switch, .-coil__ctx_switch
	.size	coil__ctx_switch_int, .-coil__ctx_switch_int

	.globl	coil__ctx_entry
	.hidden	coil__ctx_entry
	.type	coil__ctx_entry, %function
	.p2align 4
coil__ctx_entry:
	.cfi_startproc
	.cfi_undefined x30
	mov	x29, #0
	blr	x19
	brk	#0
	.cfi_endproc
	.size	coil__ctx_entry, .-coil__ctx_entry

	.section .note.GNU-stack,"",%progbits
