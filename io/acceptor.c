/*
 * io/acceptor.c: multishot accept for servers (coil_acceptor_*, coil/io.h).
 *
 * One accept is kept armed on the ring of the worker that opened the
 * acceptor: IORING_ACCEPT_MULTISHOT where the kernel has it (5.19), which
 * yields every incoming connection from one SQE, else one plain accept at a
 * time. Completions are reaped by that worker (the opening task is pinned
 * there until it closes the acceptor) and go to a FIFO of results: accepted
 * descriptors and errors, in the order the kernel reported them.
 * coil_acceptor_next() takes the oldest; when there is none it waits, and
 * the completion handler hands the result over by waking it.
 *
 * Arming: next() arms an accept whenever none is armed (so after an error,
 * such as -EMFILE, the error is returned first and the accept is tried again
 * only at the following call: the server decides how long to back off). A
 * multishot accept the kernel ended (a completion without IORING_CQE_F_MORE)
 * is armed again the same way. The kernel's -EINVAL to the first multishot
 * accept means it does not know the flag: the acceptor falls back to single
 * accepts for good.
 *
 * Flow control: while HIGH_WATER results wait in the FIFO the armed
 * multishot accept is cancelled, so that a server that stops calling next()
 * leaves further connections in the kernel's listen backlog instead of
 * making the FIFO grow; next() arms it again.
 *
 * Waking: the task in next() waits on a waiter with a cancel hook that does
 * nothing (a canceller on another thread must not touch the acceptor); the
 * handler claims the waiter to wake it (code 1), a timer or a canceller may
 * claim it first, and then what the handler brings stays in the FIFO for
 * the next call. Nothing accepted is lost.
 *
 * Closing: close() closes the descriptors still queued, cancels the armed
 * accept and, called from a task on the acceptor's worker, waits until the
 * kernel has reported the accept's end, so that the listening socket is
 * free when it returns. Called from a callback on that worker, it leaves
 * the end to the completion handler, which then frees the acceptor; from
 * another thread, it hands the close to the worker.
 */
#include <stdlib.h>
#include <unistd.h>

#include "coil/io.h"
#include "op.h"

/* Results waiting in the FIFO that make the acceptor stop accepting. */
#define HIGH_WATER 128
#define QUEUE_MIN 64

struct coil_acceptor {
	coil__ring_op_t op;        /* the armed accept's completions */
	coil__ring_op_t cancel;    /* the completion of a cancel we sent */
	coil_loop_t *loop;         /* the worker whose ring it uses */
	coil_task_t *owner;        /* the task open() pinned */
	coil__waiter_t *waiter;    /* a task waiting in next(), or NULL */
	coil__waiter_t *closer;    /* a task waiting in close(), or NULL */
	int fd;
	unsigned pending;          /* completions owed: accept, cancel */
	unsigned users;            /* tasks inside next() */
	bool armed;                /* an accept is in the kernel */
	bool multishot;            /* arm multishot accepts */
	bool multishot_ok;         /* a multishot accept has succeeded */
	bool cancelling;           /* a cancel of the accept is in the kernel */
	bool closing;
	bool orphan;               /* closed: the last completion frees it */
	/* The FIFO of results, a ring buffer of qcap entries. */
	int *q;
	unsigned qcap, qhead, qlen;
};

static void acc_complete(coil__ring_op_t *op, int res, unsigned flags);
static void acc_cancel_complete(coil__ring_op_t *op, int res, unsigned flags);

static void acc_free(coil_acceptor_t *a)
{
	coil__free(a->q, a->qcap * sizeof(int));
	coil__free(a, sizeof(*a));
}

static bool q_push(coil_acceptor_t *a, int v)
{
	if (a->qlen == a->qcap) {
		unsigned ncap = a->qcap * 2;
		int *nq = coil__malloc(ncap * sizeof(int));
		if (!nq)
			return false;
		for (unsigned i = 0; i < a->qlen; i++)
			nq[i] = a->q[(a->qhead + i) % a->qcap];
		coil__free(a->q, a->qcap * sizeof(int));
		a->q = nq;
		a->qcap = ncap;
		a->qhead = 0;
	}
	a->q[(a->qhead + a->qlen) % a->qcap] = v;
	a->qlen++;
	return true;
}

static int q_pop(coil_acceptor_t *a)
{
	int v = a->q[a->qhead];
	a->qhead = (a->qhead + 1) % a->qcap;
	a->qlen--;
	return v;
}

/* Queues an accept on the running worker's ring. Returns 0 or an error. */
static int acc_arm(coil_acceptor_t *a)
{
	coil__ring_t *r = a->loop->ring;
	int rc = coil__ring_reserve(r, 1);
	if (rc)
		return rc;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	if (a->multishot)
		io_uring_prep_multishot_accept(sqe, a->fd, NULL, NULL, SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, a->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, &a->op);
	coil__ring_expect(r, 1);
	a->armed = true;
	a->pending++;
	return 0;
}

/* Asks the kernel to end the armed accept. */
static void acc_cancel(coil_acceptor_t *a)
{
	if (!a->armed || a->cancelling)
		return;
	coil__ring_t *r = a->loop->ring;
	if (coil__ring_reserve(r, 1))
		return;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&a->op, 0);
	io_uring_sqe_set_data(sqe, &a->cancel);
	coil__ring_expect(r, 1);
	a->cancelling = true;
	a->pending++;
}

/* After a completion of a closing acceptor: the end, once nothing is owed. */
static void acc_settle(coil_acceptor_t *a)
{
	if (a->pending || a->users)
		return;
	if (a->orphan) {
		acc_free(a);
	} else if (a->closer && coil__waiter_try_wake(a->closer, 1)) {
		a->closer = NULL;
	}
}

/* Hands the oldest result to a task waiting in next(), if one waits. */
static void acc_wake(coil_acceptor_t *a)
{
	if (a->waiter && coil__waiter_try_wake(a->waiter, 1))
		a->waiter = NULL;
}

/*
 * After an accept ended without a result to hand over (the end of a
 * cancelled multishot accept): a task already waiting in next() would wait
 * for nothing, so arm the next accept for it here, or hand it the error of
 * trying.
 */
static void acc_keep_going(coil_acceptor_t *a)
{
	if (!a->waiter || a->armed || a->cancelling || a->qlen)
		return;
	if (a->loop->ring->quiescing) {
		/* The worker's thread is stopping: the waiter arms the next
		 * accept itself, on the worker's next thread. */
		acc_wake(a);
		return;
	}
	int rc = acc_arm(a);
	if (rc && q_push(a, rc))
		acc_wake(a);
}

static void acc_complete(coil__ring_op_t *op, int res, unsigned flags)
{
	coil_acceptor_t *a = (coil_acceptor_t *)((char *)op - offsetof(coil_acceptor_t, op));
	if (!(flags & IORING_CQE_F_MORE)) {
		a->armed = false;
		a->pending--;
	}
	if (a->closing) {
		if (res >= 0)
			close(res);
		acc_settle(a);
		return;
	}
	if (res >= 0 && a->multishot)
		a->multishot_ok = true;
	if (res == -EINVAL && a->multishot && !a->multishot_ok && !a->armed) {
		/* The kernel does not know IORING_ACCEPT_MULTISHOT. */
		a->multishot = false;
		acc_keep_going(a);
		return;
	}
	/* The end of an accept that was cancelled (flow control, or its
	 * worker's thread stopping): next() arms another. */
	if (res == -ECANCELED && !(flags & IORING_CQE_F_MORE)) {
		acc_keep_going(a);
		return;
	}
	if (!q_push(a, res)) {
		/* No memory to keep it (the FIFO is full, so a waiter has
		 * plenty to take): a connection we cannot hand over is
		 * refused rather than leaked. */
		if (res >= 0)
			close(res);
	}
	if (a->qlen >= HIGH_WATER && a->armed)
		acc_cancel(a);
	acc_wake(a);
}

static void acc_cancel_complete(coil__ring_op_t *op, int res, unsigned flags)
{
	(void)res;
	(void)flags;
	coil_acceptor_t *a = (coil_acceptor_t *)((char *)op - offsetof(coil_acceptor_t, cancel));
	a->cancelling = false;
	a->pending--;
	if (a->closing)
		acc_settle(a);
	else
		acc_keep_going(a);
}

/* Nothing to unlink: the handler only wakes a waiter it can claim, and the
 * woken task clears a->waiter itself, on the acceptor's worker. */
static void acc_waiter_cancel(coil__waiter_t *w)
{
	(void)w;
}

int coil_acceptor_open(coil_acceptor_t **out, int listen_fd)
{
	if (!out)
		return -EINVAL;
	if (listen_fd < 0)
		return -EBADF;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	coil_acceptor_t *a = coil__calloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->q = coil__malloc(QUEUE_MIN * sizeof(int));
	if (!a->q) {
		coil__free(a, sizeof(*a));
		return -ENOMEM;
	}
	a->qcap = QUEUE_MIN;
	a->op.complete = acc_complete;
	a->cancel.complete = acc_cancel_complete;
	a->loop = coil__running_loop;
	a->owner = t;
	a->fd = listen_fd;
	a->multishot = (a->loop->ring->caps & COIL__RING_CAP_MULTISHOT_ACCEPT) != 0;
	rc = acc_arm(a);
	if (rc) {
		acc_free(a);
		return rc;
	}
	coil__task_pin_cur();
	*out = a;
	return 0;
}

int coil_acceptor_next(coil_acceptor_t *a, int64_t timeout_ns)
{
	if (!a)
		return -EINVAL;
	if (!coil__io_timeout_ok(timeout_ns))
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	if (coil__running_loop != a->loop)
		return -EXDEV;
	if (a->closing || a->waiter)
		return COIL_EINVALSTATE;
	int64_t deadline = 0;
	if (timeout_ns > 0) {
		int64_t now = coil__loop_now(a->loop);
		deadline = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
	}
	for (;;) {
		/* What is queued first; an accept is armed only when nothing
		 * is, so that after an error the following call is the one
		 * that tries again. */
		if (a->qlen)
			return q_pop(a);
		if (!a->armed && !a->cancelling && (rc = acc_arm(a)))
			return rc;
		if (timeout_ns == 0) {
			/* Do not block: one look at what the kernel has now. */
			coil__ring_wait(a->loop->ring, 0);
			return a->qlen ? q_pop(a) : -ETIMEDOUT;
		}
		coil__waiter_t w;
		coil__waiter_init(&w, t, acc_waiter_cancel, a);
		if (timeout_ns > 0 && (rc = coil__waiter_timer_arm(&w, deadline)))
			return rc;
		/* On this worker until the wait is over: the handler and
		 * close() touch a->waiter from here. */
		coil__task_pin_cur();
		a->waiter = &w;
		a->users++;
		rc = coil__task_suspend(&w);
		coil__waiter_timer_done(&w);
		coil__task_unpin_cur();
		a->waiter = NULL;
		a->users--;
		if (a->closing) {
			/* Closed under us (its queue is closed with it): close()
			 * waits for us to leave before it frees the acceptor. */
			acc_settle(a);
			return rc == -ECANCELED ? rc : COIL_ECLOSED;
		}
		/* Woken by the handler (1), or by the timer (0) with something
		 * that arrived since: hand it over. A cancellation or a close
		 * wins over a result that came after it, which stays queued.
		 * Woken by the handler with nothing: the accept ended (its
		 * worker's thread stopped), arm another. */
		if ((rc == 1 || rc == 0) && a->qlen)
			return q_pop(a);
		if (rc != 1)
			return rc == 0 ? -ETIMEDOUT : rc;
		if ((rc = coil__suspend_check(&t)))
			return rc;
	}
}

/* The close of an acceptor whose worker is not the caller's: run there. */
static void acc_close_cb(void *arg)
{
	coil_acceptor_close(arg);
}

void coil_acceptor_close(coil_acceptor_t *a)
{
	if (!a)
		return;
	if (coil__running_loop != a->loop) {
		if (coil_loop_call_soon_threadsafe(a->loop, acc_close_cb, a) == 0)
			return;
		/* The loop is closed: its ring, and the accept in it, are gone
		 * with it. */
		while (a->qlen) {
			int v = q_pop(a);
			if (v >= 0)
				close(v);
		}
		acc_free(a);
		return;
	}
	coil_coro_t *c = coil__cur;
	coil_task_t *t = c ? c->task : NULL;
	if (t && t == a->owner)
		coil__task_unpin_cur();
	a->closing = true;
	while (a->qlen) {
		int v = q_pop(a);
		if (v >= 0)
			close(v);
	}
	acc_cancel(a);
	/* A task waiting in next() leaves with COIL_ECLOSED. */
	if (a->waiter && coil__waiter_try_wake(a->waiter, COIL_ECLOSED))
		a->waiter = NULL;
	if (!a->pending && !a->users) {
		acc_free(a);
		return;
	}
	if (!t) {
		a->orphan = true;
		return;
	}
	/* Wait for the kernel's last word, on this worker, whatever comes:
	 * a cancellation that arrives meanwhile is delivered at the next
	 * await. */
	bool cancelled = false;
	coil__task_pin_cur();
	while (a->pending || a->users) {
		coil__waiter_t w;
		coil__waiter_init(&w, t, acc_waiter_cancel, a);
		a->closer = &w;
		int rc = coil__task_suspend(&w);
		a->closer = NULL;
		if (rc == -ECANCELED)
			cancelled = true;
	}
	coil__task_unpin_cur();
	if (cancelled)
		coil__io_cancel_later(t);
	acc_free(a);
}
