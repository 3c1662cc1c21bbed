/*
 * io/ops.c: the awaitable operations of coil/io.h.
 *
 * Each call fills an io_req_t on the calling task's stack and runs it
 * through io_await(): one SQE (two with a timeout) queued on the running
 * worker's ring, no allocation, no lock, no system call of its own: the
 * loop submits everything queued in its round with one io_uring_enter. A
 * table (io_defs) maps each kind of operation to its opcode, the function
 * that fills its SQE and the function that marks what the kernel wrote.
 *
 * The life of a request, all on the worker that submitted it (the task is
 * pinned there until the request's last completion has been reaped: with
 * SINGLE_ISSUER|DEFER_TASKRUN only that thread may submit, and only its
 * enters produce the completions):
 *   1. queue the operation's SQE, with a linked timeout SQE after it when
 *      the call has a timeout (IOSQE_IO_LINK + IORING_OP_LINK_TIMEOUT);
 *      each SQE carries a coil__ring_op_t of the request, so each of its
 *      completions is counted (`pending`);
 *   2. suspend the task on the request's waiter; the handler of the last
 *      completion owed wakes it (coil__waiter_try_wake_pinned: the task
 *      is pinned to the worker that reaps it);
 *   3. if something else woke it first (a cancellation, from any thread:
 *      the canceller claims the waiter, and its hook, which runs on the
 *      canceller's thread, touches nothing), the task itself, back on its
 *      worker, queues an IORING_OP_ASYNC_CANCEL for the operation and waits
 *      again, this time without letting a cancellation end the wait, until
 *      every completion owed has been reaped (io_drain). The caller's
 *      buffers are therefore never written after the call returns, and the
 *      request on the stack is never touched after it is gone.
 *
 * A splice waits in one of the kernel's worker threads, where a linked
 * timeout does not end it: its timeout is a timer of the loop's instead,
 * and when that fires the task cancels the operation as in step 3
 * (IO_F_TIMER). A cancelled operation the kernel's worker was running ends
 * with -EINTR or an internal restart code (-ERESTARTSYS) rather than
 * -ECANCELED; both count as cancelled.
 *
 * Force-close at loop shutdown (COIL_ECLOSED from coil__task_suspend) takes
 * the same path as a cancellation: the operation is cancelled and every
 * completion reaped before the call returns COIL_ECLOSED, so the kernel
 * never writes into a stack that is about to be freed. An operation the
 * kernel cannot end keeps its task waiting; the loop then abandons the
 * task, and its stack with it, rather than freeing memory still in use.
 *
 * A worker whose thread stops driving it cancels what is in flight on its
 * ring (coil__ring_quiesce, ring.h) and bumps the ring's generation: a
 * request that finds the generation changed since its submission was not
 * cancelled by its caller, and is submitted again (IO_F_NORETRY: connect,
 * which returns -EINTR instead).
 *
 * The common case, a call without a timeout that its completion ends, is
 * io_await, inlined into each call so that the kind's functions are
 * called directly; everything else goes through io_await_slow.
 *
 * Results: the kernel's result, with these exceptions. An operation ended
 * by its linked timeout (the operation's CQE -ECANCELED, the timeout's
 * -ETIME) returns -ETIMEDOUT. An operation ended by the task's cancellation
 * returns -ECANCELED (or COIL_ECLOSED when the task is being force-closed at
 * loop shutdown). An operation that completed before the cancellation took
 * effect returns its result, and the cancellation is made pending again so
 * the task's next await delivers it.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coil/io.h"
#include "op.h"

/* The kinds of operations, indexes of io_defs. */
enum {
	IO_ACCEPT,
	IO_CONNECT,
	IO_RECV,
	IO_SEND,
	IO_SENDTO,
	IO_RECVMSG,
	IO_SENDMSG,
	IO_SHUTDOWN,
	IO_CLOSE,
	IO_SPLICE,
	IO_POLL,
	IO_OPENAT,
	IO_READ,
	IO_WRITE,
	IO_READV,
	IO_WRITEV,
	IO_FSYNC,
	IO_STATX,
	IO__COUNT
};

typedef struct io_req {
	/* What every request touches comes first, together: the request
	 * lives on the calling task's stack, and with many tasks waiting at
	 * once each line it spans is a cache miss when the task resumes. */
	coil__waiter_t w;
	/* Right after the waiter, whose task, result and claim the last
	 * completion's handler touches with these: two lines. */
	coil__ring_op_t op;      /* the operation's completion */
	int res;                 /* the operation's result */
	unsigned gen;            /* the ring's generation at submission */
	uint8_t pending;         /* completions still owed */
	bool op_done;            /* the operation's own completion is in */
	/* Arguments, as the kind's prep function reads them. */
	int fd;
	uint32_t len;            /* bytes, iovec count, address length */
	int flags;               /* MSG_*, open flags, accept4 flags, ... */
	void *ptr;               /* buffer, msghdr, iovec array, path */
	uint64_t off;
	coil__ring_t *ring;
	/* Only some kinds, or only with a timeout or a cancellation. */
	int fd2;
	unsigned uflags;         /* poll events, splice flags, statx mask, ... */
	void *ptr2;              /* address, address length, statx buffer */
	uint64_t off2;
	socklen_t addrlen_in;    /* accept: the caller's address room */
	int tmo_res;             /* the linked timeout's result */
	coil__ring_op_t tmo;     /* its linked timeout's */
	coil__ring_op_t cancel;  /* the async cancel's, when one was sent */
	struct __kernel_timespec ts;
} io_req_t;

/* io_def_t.flags */
enum {
	/* Never cancelled: the call waits for the kernel's result however it
	 * was woken (a close must happen exactly once, whatever comes). */
	IO_F_NOCANCEL = 1,
	/* The timeout is a timer of the loop's instead of a linked timeout:
	 * the kernel runs the operation in a worker thread of its own where
	 * it may block, and a linked timeout does not end it there (a splice
	 * from an empty pipe, on 6.18). When the timer fires the task
	 * cancels the operation itself, as for a cancellation. */
	IO_F_TIMER = 2,
	/* Not submitted again after coil__ring_quiesce cancelled it. */
	IO_F_NORETRY = 4,
};

typedef struct io_def {
	uint8_t opcode;
	uint8_t flags;
	/* Fills the SQE from the request's arguments. */
	void (*prep)(struct io_uring_sqe *sqe, const io_req_t *q);
	/* After a successful result: marks for Valgrind what the kernel
	 * wrote into the caller's memory (NULL: nothing). */
	void (*done)(io_req_t *q, int res);
	/* What a task waiting for it awaits, in coil_dump_tasks and in a
	 * trace's I/O waits. */
	const char *name;
} io_def_t;

#ifdef COIL_HAVE_MEMCHECK
_Atomic unsigned char coil__io_memcheck;

bool coil__io_memcheck_find(void)
{
	bool on = RUNNING_ON_VALGRIND;
	atomic_store_explicit(&coil__io_memcheck, on ? 2 : 1, memory_order_relaxed);
	return on;
}
#endif

/* --- prep and done functions ----------------------------------------------- */

static void prep_accept(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_accept(s, q->fd, q->ptr2, (socklen_t *)q->ptr, q->flags);
}

static void done_accept(io_req_t *q, int res)
{
	(void)res;
	socklen_t *lenp = q->ptr;
	if (!lenp)
		return;
	COIL__MARK_DEFINED(lenp, sizeof(*lenp));
	socklen_t n = *lenp < q->addrlen_in ? *lenp : q->addrlen_in;
	if (q->ptr2)
		COIL__MARK_DEFINED(q->ptr2, n);
}

static void prep_connect(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_connect(s, q->fd, q->ptr2, q->len);
}

static void prep_recv(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_recv(s, q->fd, q->ptr, q->len, q->flags);
}

static void done_buf(io_req_t *q, int res)
{
	if (res > 0)
		COIL__MARK_DEFINED(q->ptr, (size_t)res);
}

static void prep_send(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_send(s, q->fd, q->ptr, q->len, q->flags);
}

static void prep_sendto(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_send(s, q->fd, q->ptr, q->len, q->flags);
	io_uring_prep_send_set_addr(s, q->ptr2, (uint16_t)q->off);
}

static void prep_recvmsg(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_recvmsg(s, q->fd, q->ptr, (unsigned)q->flags);
}

/* Marks the first n bytes spread over an iovec array. */
static void mark_iov(const struct iovec *iov, size_t cnt, size_t n)
{
	for (size_t i = 0; i < cnt && n; i++) {
		size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
		if (k)
			COIL__MARK_DEFINED(iov[i].iov_base, k);
		n -= k;
	}
}

static void done_recvmsg(io_req_t *q, int res)
{
	struct msghdr *m = q->ptr;
	COIL__MARK_DEFINED(&m->msg_namelen, sizeof(m->msg_namelen));
	COIL__MARK_DEFINED(&m->msg_controllen, sizeof(m->msg_controllen));
	COIL__MARK_DEFINED(&m->msg_flags, sizeof(m->msg_flags));
	if (m->msg_name && m->msg_namelen)
		COIL__MARK_DEFINED(m->msg_name, m->msg_namelen);
	if (m->msg_control && m->msg_controllen)
		COIL__MARK_DEFINED(m->msg_control, m->msg_controllen);
	mark_iov(m->msg_iov, m->msg_iovlen, (size_t)res);
}

static void prep_sendmsg(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_sendmsg(s, q->fd, q->ptr, (unsigned)q->flags);
}

static void prep_shutdown(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_shutdown(s, q->fd, q->flags);
}

static void prep_close(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_close(s, q->fd);
}

static void prep_splice(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_splice(s, q->fd, (int64_t)q->off, q->fd2, (int64_t)q->off2,
			     q->len, q->uflags);
}

static void prep_poll(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_poll_add(s, q->fd, q->uflags);
}

static void prep_openat(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_openat(s, q->fd, q->ptr, q->flags, (mode_t)q->uflags);
}

static void prep_read(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_read(s, q->fd, q->ptr, q->len, q->off);
}

static void prep_write(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_write(s, q->fd, q->ptr, q->len, q->off);
}

static void prep_readv(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_readv(s, q->fd, q->ptr, q->len, q->off);
}

static void done_readv(io_req_t *q, int res)
{
	mark_iov(q->ptr, q->len, (size_t)res);
}

static void prep_writev(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_writev(s, q->fd, q->ptr, q->len, q->off);
}

static void prep_fsync(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_fsync(s, q->fd, q->uflags);
}

static void prep_statx(struct io_uring_sqe *s, const io_req_t *q)
{
	io_uring_prep_statx(s, q->fd, q->ptr, q->flags, q->uflags, q->ptr2);
}

static void done_statx(io_req_t *q, int res)
{
	(void)res;
	COIL__MARK_DEFINED(q->ptr2, sizeof(struct statx));
}

static const io_def_t io_defs[] = {
	[IO_ACCEPT] = { IORING_OP_ACCEPT, 0, prep_accept, done_accept, "accept" },
	[IO_CONNECT] = { IORING_OP_CONNECT, IO_F_NORETRY, prep_connect, NULL, "connect" },
	[IO_RECV] = { IORING_OP_RECV, 0, prep_recv, done_buf, "recv" },
	[IO_SEND] = { IORING_OP_SEND, 0, prep_send, NULL, "send" },
	[IO_SENDTO] = { IORING_OP_SEND, 0, prep_sendto, NULL, "sendto" },
	[IO_RECVMSG] = { IORING_OP_RECVMSG, 0, prep_recvmsg, done_recvmsg, "recvmsg" },
	[IO_SENDMSG] = { IORING_OP_SENDMSG, 0, prep_sendmsg, NULL, "sendmsg" },
	[IO_SHUTDOWN] = { IORING_OP_SHUTDOWN, 0, prep_shutdown, NULL, "shutdown" },
	[IO_CLOSE] = { IORING_OP_CLOSE, IO_F_NOCANCEL, prep_close, NULL, "close" },
	[IO_SPLICE] = { IORING_OP_SPLICE, IO_F_TIMER, prep_splice, NULL, "splice" },
	[IO_POLL] = { IORING_OP_POLL_ADD, 0, prep_poll, NULL, "poll" },
	[IO_OPENAT] = { IORING_OP_OPENAT, 0, prep_openat, NULL, "openat" },
	[IO_READ] = { IORING_OP_READ, 0, prep_read, done_buf, "read" },
	[IO_WRITE] = { IORING_OP_WRITE, 0, prep_write, NULL, "write" },
	[IO_READV] = { IORING_OP_READV, 0, prep_readv, done_readv, "readv" },
	[IO_WRITEV] = { IORING_OP_WRITEV, 0, prep_writev, NULL, "writev" },
	[IO_FSYNC] = { IORING_OP_FSYNC, 0, prep_fsync, NULL, "fsync" },
	[IO_STATX] = { IORING_OP_STATX, 0, prep_statx, done_statx, "statx" },
};
_Static_assert(sizeof(io_defs) / sizeof(io_defs[0]) == IO__COUNT,
	       "io_defs has one entry per kind of operation");

/* --- the request's life ------------------------------------------------------ */

#define REQ_OF(p, field) ((io_req_t *)((char *)(p) - offsetof(io_req_t, field)))

/* The code the last completion wakes the task with (a timer wakes it
 * with 0, a canceller with -ECANCELED or COIL_ECLOSED). */
#define REQ_DONE 1

/* The handlers run on the request's worker, in its ring's reap; the one
 * that takes `pending` to 0 wakes the task, which is pinned to this worker
 * until the request ends. A canceller that claimed the waiter first has
 * woken it already: then the task finds pending at 0 when it runs, or
 * waits for it (io_drain). */
static inline __attribute__((always_inline)) void req_step(io_req_t *q)
{
	if (--q->pending == 0)
		coil__waiter_try_wake_pinned(&q->w, REQ_DONE);
}

static void op_complete(coil__ring_op_t *op, int res, unsigned flags)
{
	(void)flags;
	io_req_t *q = REQ_OF(op, op);
	q->res = res;
	q->op_done = true;
	req_step(q);
}

static void tmo_complete(coil__ring_op_t *op, int res, unsigned flags)
{
	(void)flags;
	io_req_t *q = REQ_OF(op, tmo);
	q->tmo_res = res;
	req_step(q);
}

static void cancel_complete(coil__ring_op_t *op, int res, unsigned flags)
{
	(void)res;
	(void)flags;
	req_step(REQ_OF(op, cancel));
}

/* The waiter's cancel hook runs on the canceller's thread, which must not
 * touch the ring (nor the request, which the worker's handlers own): the
 * woken task does the cancelling itself. */
static void req_cancel_hook(coil__waiter_t *w)
{
	(void)w;
}

void coil__io_cancel_later(coil_task_t *t)
{
	coil__lock(&t->clock);
	atomic_fetch_or_explicit(&t->cancel, COIL__CANCEL_PENDING, memory_order_relaxed);
	coil__unlock(&t->clock);
}

/*
 * The task was woken before the request's completions were all in (by a
 * cancellation, a close, or the timer of an IO_F_TIMER operation): cancel
 * the operation in the kernel (unless its own completion is in already and
 * only the timeout's is owed) and wait, on this worker, until nothing is
 * owed any more. A cancellation or a close that arrives meanwhile cannot
 * end this wait (the request's memory must outlive the kernel's use of
 * it); it is remembered and reported. Returns the reason the call should
 * give if the operation did not complete: `why`, or COIL_ECLOSED if the
 * task is being closed now; *again tells whether another cancellation came.
 */
static int io_drain(io_req_t *q, const io_def_t *d, coil_task_t *t, int why,
		    bool *again)
{
	if (!q->op_done && !(d->flags & IO_F_NOCANCEL) &&
	    coil__ring_reserve(q->ring, 1) == 0) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring->ring);
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&q->op, 0);
		io_uring_sqe_set_data(sqe, &q->cancel);
		q->cancel.complete = cancel_complete;
		q->pending++;
		coil__ring_expect(q->ring, 1);
	}
	/* Without a cancel SQE (a ring that refuses submissions) the wait
	 * still ends: the operation's timeout, its descriptor's close or the
	 * ring's own teardown completes it. */
	while (q->pending) {
		coil__waiter_init(&q->w, t, req_cancel_hook, q);
		int rc = coil__task_suspend(&q->w);
		/* REQ_DONE ends the loop; a cancellation or a close does
		 * not. */
		if (rc == -ECANCELED)
			*again = true;
		else if (rc == COIL_ECLOSED)
			why = COIL_ECLOSED;
	}
	return why;
}

/* The outcome of one submission of a request. */
typedef struct io_end {
	int why;      /* 0, or -ECANCELED / COIL_ECLOSED: what woke the task */
	bool expired; /* the timeout ended the wait */
	bool again;   /* another cancellation came while draining */
} io_end_t;

/*
 * Fills request q's SQE (and its linked timeout's when `linked`) on ring r,
 * which has room for them (coil__ring_reserve), counts the completions
 * owed and pins the task t to this worker until the request ends. The
 * waiter is initialised already.
 */
static inline __attribute__((always_inline)) void
io_queue(io_req_t *q, const io_def_t *d, coil_task_t *t, coil__ring_t *r,
	 bool linked, int64_t timeout_ns)
{
	q->ring = r;
	q->gen = r->gen;
	q->res = 0;
	q->op_done = false;
	q->op.complete = op_complete;
	struct io_uring_sqe *sqe = coil__ring_sqe(r);
	d->prep(sqe, q);
	io_uring_sqe_set_data(sqe, &q->op);
	q->pending = 1;
	if (linked) {
		q->tmo_res = 0; /* read only when linked */
		sqe->flags |= IOSQE_IO_LINK;
		q->ts.tv_sec = timeout_ns / COIL_NSEC_PER_SEC;
		q->ts.tv_nsec = timeout_ns % COIL_NSEC_PER_SEC;
		q->tmo.complete = tmo_complete;
		sqe = coil__ring_sqe(r);
		io_uring_prep_link_timeout(sqe, &q->ts, 0);
		io_uring_sqe_set_data(sqe, &q->tmo);
		q->pending = 2;
	}
	coil__ring_expect(r, q->pending);
	/* The same as coil__task_pin_cur, without the call: t is the running
	 * task, so its body is there. */
	t->body->pins++;
}

/*
 * After the wait of one submission, whatever woke the task (`why`, from
 * coil__task_suspend): disarms the timer of an IO_F_TIMER wait, waits for
 * the completions still owed (io_drain), ends the trace and unpins. Fills
 * e.
 */
static void io_wait_end(io_req_t *q, const io_def_t *d, coil_task_t *t,
			coil_loop_t *loop, int why, int64_t timeout_ns,
			int64_t traced, io_end_t *e)
{
	bool timed = timeout_ns != COIL_FOREVER;
	bool linked = timed && !(d->flags & IO_F_TIMER);
	e->expired = false;
	if (timed && !linked) {
		coil__waiter_timer_done(&q->w);
		e->expired = why == 0;
	}
	if (why == REQ_DONE || e->expired)
		why = 0;
	e->again = false;
	if (q->pending)
		why = io_drain(q, d, t, why, &e->again);
	/* The task is pinned: it ends the wait on the loop it began it on. */
	COIL__TRACE_IO_END(loop, traced, t->id, d->name, q->fd, q->res);
	t->body->pins--;
	e->why = why;
	e->expired |= linked && q->tmo_res == -ETIME;
}

/*
 * Submits request q once and waits until the kernel is done with it (see
 * the file comment). Returns 0, or an error from before the submission.
 */
static int io_once(io_req_t *q, const io_def_t *d, coil_task_t *t,
		   int64_t timeout_ns, io_end_t *e)
{
	coil_loop_t *loop = coil__running_loop;
	coil__ring_t *r = loop->ring;
	bool timed = timeout_ns != COIL_FOREVER;
	bool linked = timed && !(d->flags & IO_F_TIMER);
	int rc = coil__ring_reserve(r, linked ? 2 : 1);
	if (rc)
		return rc;
	coil__waiter_init(&q->w, t, req_cancel_hook, q);
	q->w.what = d->name;
	if (timed && !linked) {
		int64_t now = coil__loop_now(loop);
		rc = coil__waiter_timer_arm(&q->w, timeout_ns > INT64_MAX - now ? INT64_MAX
									  : now + timeout_ns);
		if (rc)
			return rc;
	}
	io_queue(q, d, t, r, linked, timeout_ns);
	int64_t traced = COIL__TRACE_IO_BEGIN();
	int why = coil__task_suspend(&q->w);
	io_wait_end(q, d, t, loop, why, timeout_ns, traced, e);
	return 0;
}

/* How an operation ends when it is cancelled: -ECANCELED, or for one that
 * a worker thread of the kernel was running, -EINTR or one of the kernel's
 * internal restart codes, which never reach the caller. */
static inline bool io_res_cancelled(int res)
{
	return res == -ECANCELED || res == -EINTR || (res <= -512 && res >= -516);
}

/* What a request that ran to its end with result `res` returns. */
static inline __attribute__((always_inline)) int
io_result(io_req_t *q, unsigned kind, int res)
{
	const io_def_t *d = &io_defs[kind];
	if (res <= -512 && res >= -516)
		res = -EINTR;
	if (res >= 0 && d->done)
		d->done(q, res);
	if (res >= 0 && (kind == IO_ACCEPT || kind == IO_OPENAT))
		COIL__DEBUG_FD_OPENED(res, kind == IO_ACCEPT ? "a socket from coil_accept"
							      : "a file from coil_open");
	return res;
}

/*
 * Runs request q of kind `kind` to its end and gives the call's result:
 * the general case. The arguments are in q; the caller's input is
 * validated. When `first` is not NULL, io_await has submitted the request
 * once already and `first` is how that ended: the result is judged from
 * there.
 */
static __attribute__((noinline)) int io_await_slow(io_req_t *q, unsigned kind,
						   int64_t timeout_ns,
						   const io_end_t *first)
{
	const io_def_t *d = &io_defs[kind];
	coil_task_t *t;
	io_end_t e;
	int rc, res;
	if (first) {
		t = coil__cur->task;
		e = *first;
	} else {
		if (!coil__io_timeout_ok(timeout_ns))
			return -EINVAL;
		if ((rc = coil__suspend_check(&t)))
			return rc;
		if (__builtin_expect(!coil__ring_has_op(coil__running_loop->ring, d->opcode), 0))
			return -EOPNOTSUPP;
	}
	for (;;) {
		if (!first && (rc = io_once(q, d, t, timeout_ns, &e)))
			return rc;
		first = NULL;
		res = q->res;
		if (!io_res_cancelled(res))
			break;
		if (e.why || e.expired) {
			/* A cancellation that came while draining is a
			 * request of its own: the next await delivers it. */
			if (e.again)
				coil__io_cancel_later(t);
			return e.why ? e.why : -ETIMEDOUT;
		}
		if (q->gen == q->ring->gen)
			break; /* ended by someone else's cancel: the result */
		/* Ended by coil__ring_quiesce: the worker's thread stopped
		 * while it was in flight. The kernel did nothing; do it again
		 * on the worker's new thread (a connect, which cannot simply
		 * be repeated, reports -EINTR). The timeout starts again. */
		if (d->flags & IO_F_NORETRY)
			return -EINTR;
		if ((rc = coil__suspend_check(&t)))
			return rc;
	}
	res = io_result(q, kind, res);
	/* Completed before the cancellation took effect: the result is the
	 * caller's, the cancellation comes at the next await. */
	if (e.why == -ECANCELED || e.again)
		coil__io_cancel_later(t);
	return res;
}

/*
 * Runs request q of kind `kind` (a constant where it is inlined, so that
 * the kind's functions are called directly) to its end and gives the
 * call's result. The common case, a call without a timeout that the
 * kernel completes and nothing interrupts, is handled here: one SQE, one
 * suspension, the result. Everything else (a timeout, a cancellation, a
 * full SQ, a quiesced ring) goes to io_await_slow, which does the same in
 * general.
 */
static inline __attribute__((always_inline)) int
io_await(io_req_t *q, unsigned kind, int64_t timeout_ns)
{
	const io_def_t *d = &io_defs[kind];
	if (timeout_ns != COIL_FOREVER)
		return io_await_slow(q, kind, timeout_ns, NULL);
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	coil_loop_t *loop = coil__running_loop;
	coil__ring_t *r = loop->ring;
	if (__builtin_expect(!coil__ring_has_op(r, d->opcode), 0))
		return -EOPNOTSUPP;
	if ((rc = coil__ring_reserve(r, 1)))
		return rc;
	coil__waiter_init(&q->w, t, req_cancel_hook, q);
	q->w.what = d->name;
	io_queue(q, d, t, r, false, timeout_ns);
	int64_t traced = COIL__TRACE_IO_BEGIN();
	/* On a loop alone (a standalone loop, a one-worker runtime) the
	 * one-thread wait, inlined: no call frames between this one and the
	 * switch, whose returns the resumed task would take with the return
	 * predictor primed by another task (a misprediction each) and whose
	 * stack lines are cold again by then (W8). */
	int why = !coil__mt() || loop->alone
			  ? coil__task_suspend_in(&q->w, t->body, coil__cur, false)
			  : coil__task_suspend_mt(&q->w);
	io_end_t e = { 0, false, false };
	if (__builtin_expect(why != REQ_DONE, 0)) {
		/* Cancelled or closed while in flight. */
		io_wait_end(q, d, t, loop, why, timeout_ns, traced, &e);
		return io_await_slow(q, kind, timeout_ns, &e);
	}
	/* Woken by the last completion: nothing is owed. */
	COIL__TRACE_IO_END(loop, traced, t->id, d->name, q->fd, q->res);
	t->body->pins--;
	int res = q->res;
	if (__builtin_expect(res < 0 && io_res_cancelled(res), 0))
		return io_await_slow(q, kind, timeout_ns, &e);
	return io_result(q, kind, res);
}

/* --- argument checks ---------------------------------------------------------- */

/*
 * Each check returns 0 or the error the call returns, and is written once
 * here; CHECK returns that error from the calling wrapper. A wrapper checks
 * the descriptor first (-EBADF), then its other arguments (-EINVAL).
 */
#define CHECK(expr)                                                           \
	do {                                                                  \
		int check_rc_ = (expr);                                       \
		if (check_rc_)                                                \
			return check_rc_;                                     \
	} while (0)

static int check_fd(int fd)
{
	return fd < 0 ? -EBADF : 0;
}

/* A byte count the result can say: at most SSIZE_MAX. */
static int check_size(size_t len)
{
	return len > (size_t)SSIZE_MAX ? -EINVAL : 0;
}

/* A byte count: negative as ssize_t is refused, beyond MAX_RW is cut. */
static int check_len(size_t len, uint32_t *out)
{
	CHECK(check_size(len));
	*out = (uint32_t)(len > COIL__IO_MAX_RW ? COIL__IO_MAX_RW : len);
	return 0;
}

/* A file offset: >= 0, or -1 for the descriptor's position. */
static int check_off(int64_t off, uint64_t *out)
{
	if (off < -1)
		return -EINVAL;
	*out = (uint64_t)off; /* -1 becomes (u64)-1, the kernel's "current" */
	return 0;
}

static int check_iov(const struct iovec *iov, int iovcnt)
{
	if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt && !iov))
		return -EINVAL;
	return 0;
}

static int check_msg(const struct msghdr *msg)
{
	if (!msg || msg->msg_iovlen > IOV_MAX || (msg->msg_iovlen && !msg->msg_iov))
		return -EINVAL;
	return 0;
}

/*
 * The calls that come in pairs (receive and send, read and write, ...)
 * differ only in the kind of request (and a send's MSG_NOSIGNAL, which the
 * caller adds to the flags): each pair shares one of these.
 */

/* recv and send. */
static inline __attribute__((always_inline)) int
sock_buf(unsigned kind, int fd, const void *buf, size_t len, int flags,
	 int64_t timeout_ns)
{
	io_req_t q;
	CHECK(check_fd(fd));
	CHECK(check_len(len, &q.len));
	q.fd = fd;
	q.ptr = (void *)buf;
	q.flags = flags;
	return io_await(&q, kind, timeout_ns);
}

/* recvmsg and sendmsg. */
static inline __attribute__((always_inline)) int
sock_msg(unsigned kind, int fd, const struct msghdr *msg, int flags,
	 int64_t timeout_ns)
{
	io_req_t q;
	CHECK(check_fd(fd));
	CHECK(check_msg(msg));
	q.fd = fd;
	q.ptr = (void *)msg;
	q.flags = flags;
	return io_await(&q, kind, timeout_ns);
}

/* read and write. */
static inline __attribute__((always_inline)) int
file_buf(unsigned kind, int fd, const void *buf, size_t len, int64_t offset,
	 int64_t timeout_ns)
{
	io_req_t q;
	CHECK(check_fd(fd));
	CHECK(check_len(len, &q.len));
	CHECK(check_off(offset, &q.off));
	q.fd = fd;
	q.ptr = (void *)buf;
	return io_await(&q, kind, timeout_ns);
}

/* readv and writev. */
static inline __attribute__((always_inline)) int
file_iov(unsigned kind, int fd, const struct iovec *iov, int iovcnt,
	 int64_t offset, int64_t timeout_ns)
{
	io_req_t q;
	CHECK(check_fd(fd));
	CHECK(check_iov(iov, iovcnt));
	CHECK(check_off(offset, &q.off));
	q.fd = fd;
	q.ptr = (void *)iov;
	q.len = (uint32_t)iovcnt;
	return io_await(&q, kind, timeout_ns);
}

/* --- sockets -------------------------------------------------------------------- */

int coil_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
		int64_t timeout_ns)
{
	CHECK(check_fd(fd));
	if (addr && !addrlen)
		return -EINVAL;
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return -EINVAL;
	io_req_t q;
	q.fd = fd;
	q.ptr = addr ? addrlen : NULL;
	q.ptr2 = addr;
	q.addrlen_in = addr ? *addrlen : 0;
	q.flags = flags;
	return io_await(&q, IO_ACCEPT, timeout_ns);
}

int coil_connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
		 int64_t timeout_ns)
{
	CHECK(check_fd(fd));
	if (!addr)
		return -EINVAL;
	io_req_t q;
	q.fd = fd;
	q.ptr2 = (void *)addr;
	q.len = addrlen;
	return io_await(&q, IO_CONNECT, timeout_ns);
}

ssize_t coil_recv(int fd, void *buf, size_t len, int flags, int64_t timeout_ns)
{
	return sock_buf(IO_RECV, fd, buf, len, flags, timeout_ns);
}

ssize_t coil_send(int fd, const void *buf, size_t len, int flags,
		  int64_t timeout_ns)
{
	return sock_buf(IO_SEND, fd, buf, len, flags | MSG_NOSIGNAL, timeout_ns);
}

ssize_t coil_recvmsg(int fd, struct msghdr *msg, int flags, int64_t timeout_ns)
{
	return sock_msg(IO_RECVMSG, fd, msg, flags, timeout_ns);
}

ssize_t coil_sendmsg(int fd, const struct msghdr *msg, int flags,
		     int64_t timeout_ns)
{
	return sock_msg(IO_SENDMSG, fd, msg, flags | MSG_NOSIGNAL, timeout_ns);
}

ssize_t coil_recvfrom(int fd, void *buf, size_t len, int flags,
		      struct sockaddr *addr, socklen_t *addrlen,
		      int64_t timeout_ns)
{
	if (!addr)
		return coil_recv(fd, buf, len, flags, timeout_ns);
	CHECK(check_fd(fd));
	if (!addrlen)
		return -EINVAL;
	CHECK(check_size(len));
	struct iovec iov = { buf, len };
	struct msghdr m = {
		.msg_name = addr,
		.msg_namelen = *addrlen,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t n = coil_recvmsg(fd, &m, flags, timeout_ns);
	if (n >= 0)
		*addrlen = m.msg_namelen;
	return n;
}

ssize_t coil_sendto(int fd, const void *buf, size_t len, int flags,
		    const struct sockaddr *addr, socklen_t addrlen,
		    int64_t timeout_ns)
{
	if (!addr)
		return coil_send(fd, buf, len, flags, timeout_ns);
	CHECK(check_fd(fd));
	coil_loop_t *loop = coil__running_loop;
	if (loop && (loop->ring->caps & COIL__RING_CAP_SEND_ADDR) &&
	    addrlen <= UINT16_MAX) {
		io_req_t q;
		CHECK(check_len(len, &q.len));
		q.fd = fd;
		q.ptr = (void *)buf;
		q.ptr2 = (void *)addr;
		q.off = addrlen;
		q.flags = flags | MSG_NOSIGNAL;
		return io_await(&q, IO_SENDTO, timeout_ns);
	}
	/* Kernels before 6.0 take a destination only through sendmsg. */
	CHECK(check_size(len));
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = {
		.msg_name = (void *)addr,
		.msg_namelen = addrlen,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	return coil_sendmsg(fd, &m, flags, timeout_ns);
}

int coil_shutdown(int fd, int how, int64_t timeout_ns)
{
	CHECK(check_fd(fd));
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	io_req_t q;
	q.fd = fd;
	q.flags = how;
	return io_await(&q, IO_SHUTDOWN, timeout_ns);
}

/* --- any descriptor ------------------------------------------------------------ */

int coil_close(int fd, int64_t timeout_ns)
{
	CHECK(check_fd(fd));
	if (!coil__io_timeout_ok(timeout_ns))
		return -EINVAL;
	/* A close must happen exactly once, never be skipped (that would leak
	 * the descriptor) nor repeated (the number may belong to another
	 * file by then). Where the task could not await (outside a task, a
	 * pending cancellation, a closing coroutine) it is a plain close(2),
	 * which does not block for sockets, pipes and local files, and the
	 * cancellation stays pending for the next await. Through the ring it
	 * is not cancellable and takes no timeout: the kernel runs it at
	 * once. */
	COIL__DEBUG_FD_CLOSED(fd);
	coil_coro_t *c = coil__cur;
	if (!c || !c->task || c->closing ||
	    (atomic_load_explicit(&c->task->cancel, memory_order_relaxed) &
	     COIL__CANCEL_PENDING))
		return close(fd) == 0 ? 0 : -errno;
	io_req_t q;
	q.fd = fd;
	return io_await(&q, IO_CLOSE, COIL_FOREVER);
}

ssize_t coil_splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out,
		    size_t len, unsigned flags, int64_t timeout_ns)
{
	CHECK(check_fd(fd_in));
	CHECK(check_fd(fd_out));
	io_req_t q;
	CHECK(check_len(len, &q.len));
	CHECK(check_off(off_in, &q.off));
	CHECK(check_off(off_out, &q.off2));
	/* SPLICE_F_FD_IN_FIXED would make fd_in an index into a table this
	 * API does not have. */
	if (flags & SPLICE_F_FD_IN_FIXED)
		return -EINVAL;
	q.fd = fd_in;
	q.fd2 = fd_out;
	q.uflags = flags;
	return io_await(&q, IO_SPLICE, timeout_ns);
}

int coil_poll(int fd, unsigned events, int64_t timeout_ns)
{
	CHECK(check_fd(fd));
	io_req_t q;
	q.fd = fd;
	q.uflags = events;
	return io_await(&q, IO_POLL, timeout_ns);
}

/* --- files --------------------------------------------------------------------- */

int coil_open(const char *path, int flags, mode_t mode, int64_t timeout_ns)
{
	return coil_openat(AT_FDCWD, path, flags, mode, timeout_ns);
}

int coil_openat(int dirfd, const char *path, int flags, mode_t mode,
		int64_t timeout_ns)
{
	if (!path)
		return -EINVAL;
	io_req_t q;
	q.fd = dirfd;
	q.ptr = (void *)path;
	q.flags = flags;
	q.uflags = mode;
	return io_await(&q, IO_OPENAT, timeout_ns);
}

ssize_t coil_read(int fd, void *buf, size_t len, int64_t offset,
		  int64_t timeout_ns)
{
	return file_buf(IO_READ, fd, buf, len, offset, timeout_ns);
}

ssize_t coil_write(int fd, const void *buf, size_t len, int64_t offset,
		   int64_t timeout_ns)
{
	return file_buf(IO_WRITE, fd, buf, len, offset, timeout_ns);
}

ssize_t coil_readv(int fd, const struct iovec *iov, int iovcnt, int64_t offset,
		   int64_t timeout_ns)
{
	return file_iov(IO_READV, fd, iov, iovcnt, offset, timeout_ns);
}

ssize_t coil_writev(int fd, const struct iovec *iov, int iovcnt,
		    int64_t offset, int64_t timeout_ns)
{
	return file_iov(IO_WRITEV, fd, iov, iovcnt, offset, timeout_ns);
}

/* fsync and fdatasync: IORING_FSYNC_DATASYNC in uflags or not. */
static int fsync_flags(int fd, unsigned uflags, int64_t timeout_ns)
{
	CHECK(check_fd(fd));
	io_req_t q;
	q.fd = fd;
	q.uflags = uflags;
	return io_await(&q, IO_FSYNC, timeout_ns);
}

int coil_fsync(int fd, int64_t timeout_ns)
{
	return fsync_flags(fd, 0, timeout_ns);
}

int coil_fdatasync(int fd, int64_t timeout_ns)
{
	return fsync_flags(fd, IORING_FSYNC_DATASYNC, timeout_ns);
}

int coil_statx(int dirfd, const char *path, int flags, unsigned mask,
	       struct statx *out, int64_t timeout_ns)
{
	if (!path || !out)
		return -EINVAL;
	io_req_t q;
	q.fd = dirfd;
	q.ptr = (void *)path;
	q.ptr2 = out;
	q.flags = flags;
	q.uflags = mask;
	return io_await(&q, IO_STATX, timeout_ns);
}
