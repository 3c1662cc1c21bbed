/*
 * io/ring.c: the per-loop io_uring (see ring.h).
 *
 * Wake-up protocol: the ring keeps one read of an eventfd in flight. Another
 * thread wakes the loop by writing the eventfd (coil__ring_wake); the read
 * completes, the waiting io_uring_enter returns, and the read is re-armed
 * when its completion is reaped. A write while no one waits is not lost: the
 * eventfd counter stays set, so the next read completes at once.
 *
 * Waits use io_uring_submit_and_wait_timeout, which passes the timeout
 * through the EXT_ARG enter argument (no timeout SQE, no extra completion)
 * on every kernel this runtime supports (5.11+).
 */
#include "ring.h"

#include <errno.h>
#include <sched.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "coil/common.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define COIL_HAVE_VALGRIND 1
#endif
#endif

/*
 * Valgrind runs one thread at a time and does not let others run while a
 * thread sits in io_uring_enter, so a loop waiting there for another
 * thread's wake-up would wait forever. Under Valgrind waits are cut into
 * slices of this length, each followed by a yield.
 */
#define VALGRIND_WAIT_SLICE_NS (10 * 1000 * 1000)

static bool under_valgrind(void)
{
#ifdef COIL_HAVE_VALGRIND
	return RUNNING_ON_VALGRIND;
#else
	return false;
#endif
}

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif

struct coil__ring {
	struct io_uring ring;
	unsigned flags;         /* setup flags accepted by the kernel */
	unsigned entries;       /* SQ size asked for */
	unsigned inflight;      /* submitted operations, wake read excluded */
	unsigned queued;        /* SQEs prepared and not yet submitted, the
				 * wake-up read excluded */
	int efd;
	bool efd_armed;
	uint64_t efd_buf;
	coil__ring_op_t efd_op;
};

static void efd_complete(coil__ring_op_t *op, int res, unsigned flags);

static void efd_arm(coil__ring_t *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	if (!sqe) {
		/* The SQ is full: flush it and retry; one free slot is enough. */
		io_uring_submit(&r->ring);
		r->queued = 0;
		sqe = io_uring_get_sqe(&r->ring);
		if (!sqe)
			return;
	}
	io_uring_prep_read(sqe, r->efd, &r->efd_buf, sizeof(r->efd_buf), 0);
	io_uring_sqe_set_data(sqe, &r->efd_op);
	r->efd_armed = true;
}

static void efd_complete(coil__ring_op_t *op, int res, unsigned flags)
{
	(void)res;
	(void)flags;
	coil__ring_t *r = (coil__ring_t *)((char *)op - offsetof(coil__ring_t, efd_op));
	r->efd_armed = false;
	efd_arm(r);
}

static void explain_failure(int err)
{
	if (err == -ENOSYS || err == -EPERM || err == -EACCES) {
		fprintf(stderr,
			"coil: io_uring is not available (%s). coil needs it: check "
			"the sysctl kernel.io_uring_disabled (0 enables it), a "
			"container's seccomp profile (allow io_uring_setup, "
			"io_uring_enter, io_uring_register), and a kernel of 5.11 "
			"or later.\n", strerror(-err));
	}
}

int coil__ring_create(coil__ring_t **out, unsigned entries, bool portable)
{
	static const unsigned best[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		0,
	};
	/* A ring that may change threads with operations in flight: any
	 * thread may submit and reap, and completions are posted without
	 * waiting for the submitter to enter the kernel. */
	static const unsigned moving[] = { IORING_SETUP_SUBMIT_ALL, 0 };
	const unsigned *tries = portable ? moving : best;
	size_t ntries = portable ? 2 : 3;
	coil__ring_t *r = coil__calloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	if (!entries)
		entries = 256;
	int err = -EINVAL;
	for (size_t i = 0; i < ntries; i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		p.flags = tries[i];
		err = io_uring_queue_init_params(entries, &r->ring, &p);
		if (err == 0) {
			r->flags = tries[i];
			r->entries = entries;
			break;
		}
		/* Only an unknown flag is worth another try. */
		if (err != -EINVAL)
			break;
	}
	if (err) {
		explain_failure(err);
		coil__free(r, sizeof(*r));
		return err;
	}
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		err = -errno;
		io_uring_queue_exit(&r->ring);
		coil__free(r, sizeof(*r));
		return err;
	}
	r->efd_op.complete = efd_complete;
	efd_arm(r);
	*out = r;
	return 0;
}

int coil__ring_rebind(coil__ring_t *r)
{
	if (!(r->flags & IORING_SETUP_SINGLE_ISSUER))
		return 0;
	if (r->inflight || r->queued)
		return -EBUSY;
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = r->flags;
	struct io_uring nr;
	int err = io_uring_queue_init_params(r->entries, &nr, &p);
	if (err)
		return err;
	/* Tearing the old ring down cancels its pending wake-up read; the
	 * eventfd (and any count a writer left in it) carries over. */
	io_uring_queue_exit(&r->ring);
	r->ring = nr;
	r->efd_armed = false;
	efd_arm(r);
	return 0;
}

void coil__ring_destroy(coil__ring_t *r)
{
	if (!r)
		return;
	io_uring_queue_exit(&r->ring);
	close(r->efd);
	coil__free(r, sizeof(*r));
}

static int reap(coil__ring_t *r)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&r->ring, head, cqe) {
		coil__ring_op_t *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		unsigned flags = cqe->flags;
		/* Advance before dispatching: a handler may submit and wait. */
		io_uring_cq_advance(&r->ring, 1);
		n++;
		if (op != &r->efd_op && r->inflight)
			r->inflight--;
		if (op)
			op->complete(op, res, flags);
	}
	return (int)n;
}

int coil__ring_wait(coil__ring_t *r, int64_t timeout_ns)
{
	if (!r->efd_armed)
		efd_arm(r);
	/* Nothing in flight and no need to block: skip the kernel and the CQ.
	 * A pending wake-up is seen through the loop's inbox counter instead,
	 * and its read's completion is reaped at the next wait. */
	if (timeout_ns == 0 && r->queued == 0 && r->inflight == 0)
		return 0;
	if (under_valgrind() &&
	    (timeout_ns < 0 || timeout_ns > VALGRIND_WAIT_SLICE_NS))
		timeout_ns = VALGRIND_WAIT_SLICE_NS;
	int ret;
	struct io_uring_cqe *cqe = NULL;
	for (;;) {
		if (timeout_ns == 0) {
			ret = io_uring_submit_and_get_events(&r->ring);
		} else if (timeout_ns < 0) {
			ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, NULL, NULL);
		} else {
			struct __kernel_timespec ts = {
				.tv_sec = timeout_ns / COIL_NSEC_PER_SEC,
				.tv_nsec = timeout_ns % COIL_NSEC_PER_SEC,
			};
			ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
		}
		if (ret >= 0 || ret == -ETIME || ret == -EINTR) {
			/* Valgrind switches threads at a yield, not at the end
			 * of our slice: let the others run. */
			if (under_valgrind())
				sched_yield();
			break;
		}
		if (ret == -EAGAIN || ret == -EBUSY) {
			/* The CQ is full or the kernel is short of memory: reap
			 * what is there, which frees room, and try again. */
			if (reap(r) > 0)
				return 1;
			continue;
		}
		return ret;
	}
	/* SUBMIT_ALL (or a plain success) took every SQE. */
	r->inflight += r->queued;
	r->queued = 0;
	return reap(r);
}

void coil__ring_wake(coil__ring_t *r)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is saturated: the loop is woken anyway. */
	ssize_t n = write(r->efd, &one, sizeof(one));
	(void)n;
}

unsigned coil__ring_setup_flags(const coil__ring_t *r)
{
	return r->flags;
}

unsigned coil__ring_features(const coil__ring_t *r)
{
	return r->ring.features;
}

unsigned coil__ring_inflight(const coil__ring_t *r)
{
	return r->inflight;
}
