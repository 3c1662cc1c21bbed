/*
 * io/ring_int.h: the ring's insides, for the operations in io/ only.
 *
 * ring.h is what the rest of the runtime sees (it never includes
 * liburing.h); this header gives io/'s operations the ring itself, so that
 * taking an SQE is a few inline instructions, and the kernel features the
 * probe found at setup.
 *
 * Submission protocol for an operation (all on the ring's own thread):
 *   1. coil__ring_reserve(r, n) makes room for the n SQEs it is about to
 *      fill (its operation and a linked timeout must go to the kernel in
 *      the same submission), flushing the SQ to the kernel when it is full;
 *   2. coil__ring_sqe() (or io_uring_get_sqe(), which cannot fail after
 *      1) n times, filling each with a user_data that points to a
 *      coil__ring_op_t;
 *   3. coil__ring_expect(r, n): n completions are now owed, so the loop
 *      keeps entering the kernel for them. The SQEs themselves go to the
 *      kernel at the loop's next coil__ring_wait, one io_uring_enter for
 *      everything queued in the round.
 * Every completion is dispatched to its coil__ring_op_t handler on this
 * thread; a multishot operation's completions flagged IORING_CQE_F_MORE are
 * not counted against what is owed (more will come).
 */
#ifndef COIL_IO_RING_INT_H
#define COIL_IO_RING_INT_H

#include <liburing.h>

#include "ring.h"

/* Capabilities beyond the opcode list, found by the probe. */
enum {
	/* IORING_ACCEPT_MULTISHOT (5.19: detected through IORING_OP_SOCKET,
	 * which came with it); the acceptor also falls back at run time. */
	COIL__RING_CAP_MULTISHOT_ACCEPT = 1u << 0,
	/* IORING_OP_SEND with a destination address (6.0: detected through
	 * IORING_OP_SEND_ZC, which came with it). */
	COIL__RING_CAP_SEND_ADDR = 1u << 1,
	/* IORING_ASYNC_CANCEL_ANY (5.19, detected like multishot accept):
	 * what coil__ring_quiesce needs. */
	COIL__RING_CAP_CANCEL_ANY = 1u << 2,
};

/* A ring left behind by coil__ring_rebind with operations that could not
 * be ended: kept open (the kernel may still write into their memory)
 * until the ring is destroyed. */
typedef struct coil__ring_retired {
	struct coil__ring_retired *next;
	struct io_uring ring;
} coil__ring_retired_t;

struct coil__ring {
	struct io_uring ring;
	unsigned flags;         /* setup flags accepted by the kernel */
	unsigned entries;       /* SQ size asked for */
	unsigned caps;          /* COIL__RING_CAP_* */
	/* Completions owed by operations prepared (submitted or still in the
	 * SQ) and not yet reaped, the wake-up read excluded. */
	unsigned inflight;
	uint64_t ops[4];        /* opcodes the kernel supports, a bitmap */
	unsigned overflows;     /* times overflowed completions were brought
				 * in (a statistic, for tests) */
	/* Bumped by coil__ring_quiesce: an operation that finds it changed
	 * since its submission was cancelled by it, not by its caller, and
	 * is submitted again. */
	unsigned gen;
	bool quiescing;         /* inside coil__ring_quiesce: arm nothing */
	coil__ring_op_t quiesce_op;
	coil__ring_retired_t *retired;
	int efd;
	bool efd_armed;
	uint64_t efd_buf;
	coil__ring_op_t efd_op;
};

/* Whether the kernel knows `opcode` (the probe at setup). */
static inline bool coil__ring_has_op(const coil__ring_t *r, unsigned opcode)
{
	return opcode < 256 && (r->ops[opcode / 64] >> (opcode % 64) & 1);
}

int coil__ring_reserve_slow(coil__ring_t *r, unsigned n);

/*
 * Makes sure n SQEs can be taken with io_uring_get_sqe(). When the SQ is
 * full this submits what it holds first (one io_uring_enter). Returns 0, or
 * a negative errno if the kernel refuses the submission for good (n larger
 * than the SQ, a broken ring).
 */
static inline int coil__ring_reserve(coil__ring_t *r, unsigned n)
{
	const struct io_uring_sq *sq = &r->ring.sq;
	/* io_uring_sq_space_left without its SQPOLL case: these rings have
	 * no poller thread, so the kernel moves the head only inside this
	 * thread's own io_uring_enter. */
	unsigned used = sq->sqe_tail - IO_URING_READ_ONCE(*sq->khead);
	if (__builtin_expect(sq->ring_entries - used >= n, 1))
		return 0;
	return coil__ring_reserve_slow(r, n);
}

/*
 * Takes one of the SQEs coil__ring_reserve made room for: io_uring_get_sqe
 * without its checks, which the reservation did (the rings are never set
 * up with SQE128, so an SQE is one slot of the array).
 */
static inline struct io_uring_sqe *coil__ring_sqe(coil__ring_t *r)
{
	struct io_uring_sq *sq = &r->ring.sq;
	return &sq->sqes[sq->sqe_tail++ & sq->ring_mask];
}

/* Records that n more completions are owed (see the protocol above). */
static inline void coil__ring_expect(coil__ring_t *r, unsigned n)
{
	r->inflight += n;
}

#endif
