/*
 * io/signal.c: signal handlers that run as loop callbacks (coil/signal.h).
 *
 * Each loop that handles signals has a sigloop: a signalfd whose mask is
 * the set of signals the loop handles, and a poll of it kept armed in the
 * loop's ring. When the poll reports the signalfd readable, its completion
 * handler (on the loop's thread) reads every signal pending there into the
 * sigloop's FIFO and schedules one dispatch callback (call_soon), which
 * runs the handlers' callbacks in the order the signals came.
 *
 * Why a poll and a read(2), not a read through the ring: a signalfd hands
 * out the signals pending for the thread that reads it (and for the
 * process). The signals forwarded to the loop's thread (below) are pending
 * for that thread only, so the read must run on it. A ring read that had to
 * wait is finished by the kernel in a context it chooses (on kernels before
 * signalfd supported non-blocking reads from the ring, a worker thread of
 * its own, which sees none of them); the poll's completion handler always
 * runs on the loop's thread, where the read sees them all. The signalfd is
 * non-blocking, so a read never waits.
 *
 * Blocking and forwarding. A signal the signalfd should take must never be
 * delivered to a thread: it is blocked in the loop's thread when its
 * handler is added, and its disposition becomes forwarder(), which runs
 * only when the signal lands on a thread that does not block it and sends
 * it on to the loop's thread (tgkill), where it waits, blocked, for the
 * signalfd. Removing the last handler of a signal restores the disposition
 * saved when it was added and unblocks it in the loop's thread if coil
 * blocked it there.
 *
 * State and threads. One mutex (g.mu) guards the process-wide table of
 * handlers (one per signal), the list of sigloops, each sigloop's mask,
 * descriptor number and FIFO. The ring side of a sigloop (the poll armed,
 * a cancel sent, the completions owed), the signalfd's own mask and the
 * signals it blocked belong to its loop's thread: a removal made on
 * another thread updates the table and the sigloop's mask at once (so the
 * callback is never started again), then hands the rest to the loop
 * (settle(), a call_soon_threadsafe callback), which gives the signalfd
 * its new mask, cancels the poll when nothing is left to handle and
 * closes the signalfd once the poll's last completion is in. forwarder()
 * touches only fwd_tid[] and fwd_busy[], lock-free.
 *
 * No signal lost when a handler moves or goes. A real-time signal sent is
 * queued once and must run the callback once, or meet the previous
 * disposition once the handler is gone. A loop the handler has left may
 * still hold some: read from its signalfd just before the mask changed,
 * read and not dispatched yet (its FIFO), or forwarded to its thread and
 * not read yet (pending there, where nothing else will ever take them: a
 * worker's thread blocks every signal). The FIFO's go to the new loop's
 * FIFO (a move) or are sent again to the process (a removal, after the
 * disposition is restored); the others are sent again (resend()) to
 * where the signal is handled now, by drain() for the first kind and by
 * settle() (reclaim(), with sigtimedwait on the loop's thread) for the
 * last. A send to the old thread under way while the handler moves
 * (forward(), fwd_busy[]) is waited for before reclaim() looks.
 *
 * A loop that stops running has its ring quiesced (io/ring.h): the poll
 * is cancelled then, and armed again (rearm(), a call_soon callback) when
 * the loop runs next, on whatever thread runs it then (a runtime's
 * shutdown moves its workers to fresh threads), to which the signals are
 * then forwarded. Meanwhile they wait, blocked, for the signalfd.
 *
 * A loop that closes removes what is left (coil__signal_loop_close, called
 * by coil_loop_close and when a runtime's worker loops close): no ring is
 * reaped after that, so a poll still in flight is abandoned with the ring,
 * and the sigloop is freed.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "coil/signal.h"
#include "op.h"

/* Signals read from the signalfd and not dispatched yet, per loop, beyond
 * which real-time signals are dropped (the kernel's own queue of them is
 * bounded the same way, by RLIMIT_SIGPENDING). */
#define QUEUE_MAX 4096

typedef struct sigloop sigloop_t;

struct sigloop {
	coil__ring_op_t op;       /* the poll's completion */
	coil__ring_op_t cancel;   /* the completion of a cancel of it */
	sigloop_t *next;          /* g.loops (g.mu) */
	coil_loop_t *loop;
	pid_t tid;                /* the thread running the loop, where the
				   * signals are forwarded (g.mu) */
	/* g.mu. */
	int sfd;                  /* the signalfd, -1 when none is open; only
				   * the loop's thread opens and closes it */
	sigset_t mask;            /* the signals handled here */
	sigset_t gone;            /* signals taken out of mask since the
				   * last settle: those pending for the
				   * loop's thread are passed on then */
	int *q;                   /* the FIFO of signals read */
	unsigned qhead, qlen, qcap;
	uint64_t std_queued;      /* standard signals in q: they coalesce */
	bool settle_queued;       /* settle() handed to the loop */
	/* The loop's thread only. */
	pid_t btid;               /* the thread whose mask `blocked` is */
	sigset_t blocked;         /* signals coil blocked in btid */
	unsigned pending;         /* completions owed: the poll, a cancel */
	bool armed;               /* the poll is in the ring */
	bool cancelling;          /* a cancel of it is in the ring */
	bool broken;              /* the poll failed: not armed again */
	bool dispatch_queued;     /* dispatch() is scheduled */
	bool rearm_queued;        /* rearm() is scheduled */
};

typedef struct slot {
	sigloop_t *sl;            /* NULL: no handler */
	coil_cb cb;
	void *arg;
	struct sigaction old;     /* the disposition to restore */
} slot_t;

static struct {
	pthread_mutex_t mu;
	sigloop_t *loops;
	slot_t slot[_NSIG];
} g = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* The thread each handled signal is forwarded to (0: none), for
 * forwarder(), which may not take a lock. */
static atomic_int fwd_tid[_NSIG];

/* Sends under way to the thread fwd_tid[] named (forward()): a loop that
 * no longer handles a signal waits for them to end before it takes back
 * what was sent to its thread (reclaim()). */
static atomic_int fwd_busy[_NSIG];

static pid_t self_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/*
 * Sends sig to the thread of the loop that handles it, where it waits,
 * blocked, for that loop's signalfd; to the process when none does (it
 * then meets the disposition restored). The handler may leave that loop
 * while this runs: fwd_busy tells the loop left (reclaim()) to wait for
 * the send before it takes back what is pending for its thread. The count
 * goes up before fwd_tid is read, and the mover writes fwd_tid before the
 * loop left reads the count (all sequentially consistent): either this
 * sees the new thread, or reclaim() sees the send and waits for it.
 * Async-signal-safe.
 */
static void forward(int sig)
{
	atomic_fetch_add(&fwd_busy[sig], 1);
	pid_t tid = atomic_load(&fwd_tid[sig]);
	if (tid > 0)
		syscall(SYS_tgkill, getpid(), tid, sig);
	else
		kill(getpid(), sig);
	atomic_fetch_sub(&fwd_busy[sig], 1);
}

/*
 * The disposition of a handled signal. It runs only when the signal is
 * delivered to a thread that does not block it: the loop's thread blocks
 * it and takes it from the signalfd. Sending it on to that thread makes it
 * pending there. Should it land on the loop's thread itself (the program
 * unblocked it there), the mask the thread returns to gets the signal,
 * and the signal is sent again, to wait blocked for the signalfd.
 * Async-signal-safe: system calls and atomics.
 */
static void forwarder(int sig, siginfo_t *si, void *ucv)
{
	(void)si;
	int saved = errno;
	if (atomic_load_explicit(&fwd_tid[sig], memory_order_relaxed) == self_tid() &&
	    ucv)
		sigaddset(&((ucontext_t *)ucv)->uc_sigmask, sig);
	/* With no thread to go to (the handler is being removed, and the
	 * previous disposition is restored first), the signal goes to the
	 * process, to meet that disposition. */
	forward(sig);
	errno = saved;
}

/* Sends again, n times, a signal that a loop took but no longer handles
 * (see forward()). Not with g.mu held: the signal may be delivered at
 * once, to the calling thread, under a handler of the program's. */
static void resend(int sig, unsigned n)
{
	while (n--)
		forward(sig);
}

/*
 * Whether set holds no signal. Not sigisemptyset(): glibc's (2.36 among
 * others) reads each word of the set into an int, and so misses the
 * signals 33 to 64 (every real-time one) when no other signal is in the
 * set: a loop whose only handlers were for real-time signals never armed
 * its poll, and their signals waited forever.
 */
static bool set_empty(const sigset_t *set)
{
	for (int s = 1; s < _NSIG; s++)
		if (sigismember(set, s) == 1)
			return false;
	return true;
}

/* Whether sig may have a handler (see coil/signal.h). */
static bool sig_ok(int sig)
{
	if (sig < 1 || sig >= _NSIG)
		return false;
	switch (sig) {
	case SIGKILL: case SIGSTOP:
	case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP:
	case SIGSYS:
		return false;
	}
	/* Between the standard signals and SIGRTMIN: glibc's own. */
	return sig < 32 || (sig >= SIGRTMIN && sig <= SIGRTMAX);
}

/* --- the FIFO of signals read (g.mu) ------------------------------------- */

static void q_push(sigloop_t *sl, int sig)
{
	bool std = sig < 32;
	if (std && (sl->std_queued >> sig & 1))
		return; /* pending already: standard signals coalesce */
	if (sl->qlen == sl->qcap) {
		if (sl->qcap >= QUEUE_MAX)
			return;
		unsigned ncap = sl->qcap ? sl->qcap * 2 : 16;
		int *nq = coil__malloc(ncap * sizeof(int));
		if (!nq)
			return;
		for (unsigned i = 0; i < sl->qlen; i++)
			nq[i] = sl->q[(sl->qhead + i) % sl->qcap];
		coil__free(sl->q, sl->qcap * sizeof(int));
		sl->q = nq;
		sl->qcap = ncap;
		sl->qhead = 0;
	}
	sl->q[(sl->qhead + sl->qlen) % sl->qcap] = sig;
	sl->qlen++;
	if (std)
		sl->std_queued |= (uint64_t)1 << sig;
}

static int q_pop(sigloop_t *sl)
{
	int sig = sl->q[sl->qhead];
	sl->qhead = (sl->qhead + 1) % sl->qcap;
	sl->qlen--;
	if (sig < 32)
		sl->std_queued &= ~((uint64_t)1 << sig);
	return sig;
}

/* Takes the entries of sig out (its handler went) and returns how many
 * there were. */
static unsigned q_purge(sigloop_t *sl, int sig)
{
	unsigned k = 0;
	for (unsigned i = 0; i < sl->qlen; i++) {
		int s = sl->q[(sl->qhead + i) % sl->qcap];
		if (s != sig)
			sl->q[(sl->qhead + k++) % sl->qcap] = s;
	}
	unsigned n = sl->qlen - k;
	sl->qlen = k;
	if (sig < 32)
		sl->std_queued &= ~((uint64_t)1 << sig);
	return n;
}

/* --- the ring side (the loop's thread) ------------------------------------- */

static void poll_complete(coil__ring_op_t *op, int res, unsigned flags);
static void cancel_complete(coil__ring_op_t *op, int res, unsigned flags);

static sigloop_t *find_locked(coil_loop_t *loop)
{
	for (sigloop_t *sl = g.loops; sl; sl = sl->next)
		if (sl->loop == loop)
			return sl;
	return NULL;
}

static bool mask_empty_locked(const sigloop_t *sl)
{
	return set_empty(&sl->mask);
}

static int arm(sigloop_t *sl)
{
	coil__ring_t *r = sl->loop->ring;
	int rc = coil__ring_reserve(r, 1);
	if (rc)
		return rc;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	io_uring_prep_poll_add(sqe, sl->sfd, POLLIN);
	io_uring_sqe_set_data(sqe, &sl->op);
	coil__ring_expect(r, 1);
	sl->armed = true;
	sl->pending++;
	return 0;
}

static void send_cancel(sigloop_t *sl)
{
	coil__ring_t *r = sl->loop->ring;
	if (coil__ring_reserve(r, 1))
		return; /* the poll then ends with the ring */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&sl->op, 0);
	io_uring_sqe_set_data(sqe, &sl->cancel);
	coil__ring_expect(r, 1);
	sl->cancelling = true;
	sl->pending++;
}

static void report(sigloop_t *sl, const char *what, int err)
{
	coil_exc_context_t ctx = { .message = what, .error = err };
	coil_loop_call_exception_handler(sl->loop, &ctx);
}

static void rearm(void *arg);

/*
 * Brings the ring side in line with the mask: the poll armed while there
 * is something to handle, cancelled once there is not, and the signalfd
 * closed once the poll's last completion is in. Returns 0 or the error of
 * arming the poll. The loop's thread.
 */
static int converge(sigloop_t *sl)
{
	pthread_mutex_lock(&g.mu);
	bool empty = mask_empty_locked(sl);
	pthread_mutex_unlock(&g.mu);
	if (!empty && !sl->armed && !sl->cancelling && !sl->broken) {
		if (!sl->loop->ring->quiescing)
			return arm(sl);
		/* The loop's thread is letting go of the ring (the loop stops
		 * running, and may run next on another thread): arm the poll
		 * again when the loop runs next, wherever that is. Meanwhile
		 * the signals wait, blocked, for the signalfd. */
		if (!sl->rearm_queued &&
		    coil_loop_call_soon(sl->loop, rearm, sl, NULL) == 0)
			sl->rearm_queued = true;
		return 0;
	}
	if (empty && sl->armed && !sl->cancelling)
		send_cancel(sl);
	if (empty && !sl->pending && sl->sfd >= 0) {
		pthread_mutex_lock(&g.mu);
		int fd = sl->sfd;
		sl->sfd = -1;
		pthread_mutex_unlock(&g.mu);
		close(fd);
	}
	return 0;
}

/* Forwards sl's signals to the calling thread, which runs the loop now.
 * g.mu held. */
static void retarget_locked(sigloop_t *sl, pid_t tid)
{
	sl->tid = tid;
	for (int s = 1; s < _NSIG; s++)
		if (sigismember(&sl->mask, s))
			atomic_store_explicit(&fwd_tid[s], tid, memory_order_relaxed);
}

/* converge(), from a callback or a completion: an error can only be
 * reported. */
static void converge_report(sigloop_t *sl)
{
	int rc = converge(sl);
	if (rc) {
		sl->broken = true;
		report(sl, "signal handlers: arming the signalfd's poll failed; "
		       "signals are no longer read", rc);
	}
}

/* The poll's first round on the loop's next run (see converge). */
static void rearm(void *arg)
{
	sigloop_t *sl = arg;
	sl->rearm_queued = false;
	pid_t me = self_tid();
	pthread_mutex_lock(&g.mu);
	if (sl->tid != me)
		retarget_locked(sl, me);
	pthread_mutex_unlock(&g.mu);
	converge_report(sl);
}

/* Unblocks, in the thread where coil blocked them, the signals that are
 * no longer handled. The loop's thread. */
static void unblock_unhandled(sigloop_t *sl)
{
	if (self_tid() != sl->btid)
		return;
	sigset_t un;
	sigemptyset(&un);
	pthread_mutex_lock(&g.mu);
	for (int s = 1; s < _NSIG; s++)
		if (sigismember(&sl->blocked, s) && !sigismember(&sl->mask, s)) {
			sigaddset(&un, s);
			sigdelset(&sl->blocked, s);
		}
	pthread_mutex_unlock(&g.mu);
	if (!set_empty(&un))
		pthread_sigmask(SIG_UNBLOCK, &un, NULL);
}

/*
 * Passes on the signals that were sent to the loop's thread for a handler
 * that has left this loop since (forwarded to it, or sent again by
 * resend(), just before the handler moved or went): nothing else would
 * ever take them there, where they stay blocked (a worker's thread blocks
 * every signal). They go where the signal is handled now, or to the
 * process. The loop's thread.
 */
static void reclaim(sigloop_t *sl)
{
	sigset_t gone, cur;
	pthread_mutex_lock(&g.mu);
	gone = sl->gone;
	sigemptyset(&sl->gone);
	for (int s = 1; s < _NSIG; s++)
		if (sigismember(&sl->mask, s))
			sigdelset(&gone, s); /* added here again meanwhile */
	pthread_mutex_unlock(&g.mu);
	if (set_empty(&gone))
		return;
	/* One that is not blocked here any more was delivered already. */
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	sigandset(&gone, &gone, &cur);
	for (int s = 1; s < _NSIG; s++)
		if (sigismember(&gone, s))
			while (atomic_load(&fwd_busy[s]))
				sched_yield();
	/* Every one taken first, then sent: one sent to the process may
	 * stay pending there, where sigtimedwait would take it again. */
	static const struct timespec zero;
	unsigned n[_NSIG] = { 0 };
	int sig;
	while ((sig = sigtimedwait(&gone, NULL, &zero)) > 0)
		if (sig < _NSIG)
			n[sig]++;
	for (int s = 1; s < _NSIG; s++)
		if (n[s])
			resend(s, n[s]);
}

/* After a removal: the poll is cancelled when nothing is left, and its end
 * reaped at once where the kernel allows, so that the loop is left with
 * nothing in flight; what was sent to this thread for the signals that
 * left goes on. The loop's thread. */
static void settle_here(sigloop_t *sl)
{
	/* Only the loop's thread changes the signalfd's mask: the kernel
	 * would allow it while the loop's thread reads the descriptor, but
	 * TSan's signalfd interceptor takes the change for a close and
	 * reports a race on the descriptor. */
	pthread_mutex_lock(&g.mu);
	if (sl->sfd >= 0)
		signalfd(sl->sfd, &sl->mask, 0);
	pthread_mutex_unlock(&g.mu);
	unblock_unhandled(sl);
	reclaim(sl);
	converge(sl);
	for (int i = 0; i < 4 && sl->pending && sl->cancelling; i++)
		coil__ring_wait(sl->loop->ring, 0);
}

/* A removal made on another thread, handed to the loop. */
static void settle(void *arg)
{
	sigloop_t *sl = arg;
	pthread_mutex_lock(&g.mu);
	sl->settle_queued = false;
	pthread_mutex_unlock(&g.mu);
	settle_here(sl);
}

/* Runs the callbacks of the signals read, in their order. A loop callback. */
static void dispatch(void *arg)
{
	sigloop_t *sl = arg;
	sl->dispatch_queued = false;
	pthread_mutex_lock(&g.mu);
	unsigned n = sl->qlen;
	pthread_mutex_unlock(&g.mu);
	/* Those read until now; later ones get a round of their own. */
	while (n--) {
		pthread_mutex_lock(&g.mu);
		if (!sl->qlen) {
			pthread_mutex_unlock(&g.mu);
			break;
		}
		int sig = q_pop(sl);
		slot_t *s = &g.slot[sig];
		coil_cb cb = s->sl == sl ? s->cb : NULL;
		void *cbarg = s->arg;
		pthread_mutex_unlock(&g.mu);
		if (cb)
			cb(cbarg);
	}
	pthread_mutex_lock(&g.mu);
	bool more = sl->qlen != 0;
	pthread_mutex_unlock(&g.mu);
	if (more && !sl->dispatch_queued &&
	    coil_loop_call_soon(sl->loop, dispatch, sl, NULL) == 0)
		sl->dispatch_queued = true;
}

/* Reads every signal the signalfd holds into the FIFO. */
static void drain(sigloop_t *sl)
{
	struct signalfd_siginfo buf[16];
	unsigned away[_NSIG] = { 0 };
	bool any_away = false;
	for (;;) {
		ssize_t n = read(sl->sfd, buf, sizeof(buf));
		if (n <= 0)
			break; /* EAGAIN: nothing more */
		size_t k = (size_t)n / sizeof(buf[0]);
		pthread_mutex_lock(&g.mu);
		for (size_t i = 0; i < k; i++) {
			int sig = (int)buf[i].ssi_signo;
			if (sig <= 0 || sig >= _NSIG)
				continue;
			if (g.slot[sig].sl == sl) {
				q_push(sl, sig);
			} else {
				away[sig]++;
				any_away = true;
			}
		}
		bool queue = sl->qlen && !sl->dispatch_queued;
		pthread_mutex_unlock(&g.mu);
		if (queue && coil_loop_call_soon(sl->loop, dispatch, sl, NULL) == 0)
			sl->dispatch_queued = true;
		if (k < sizeof(buf) / sizeof(buf[0]))
			break;
	}
	/* Read just as its handler moved to another loop, or went (the
	 * signalfd's mask follows at settle()): the read took it from the
	 * kernel, so it is sent again, to the loop that handles it now, or
	 * to the process, where it meets the disposition restored. Dropped,
	 * a real-time signal would be lost. After the reading: one sent to
	 * the process may be pending there, for this signalfd to read again
	 * until settle() gives it its new mask. */
	for (int s = 1; any_away && s < _NSIG; s++)
		if (away[s])
			resend(s, away[s]);
}

static void poll_complete(coil__ring_op_t *op, int res, unsigned flags)
{
	(void)flags;
	sigloop_t *sl = coil__container_of(op, sigloop_t, op);
	sl->armed = false;
	sl->pending--;
	if (res > 0 && (res & POLLIN)) {
		drain(sl);
	} else if (res < 0 && res != -ECANCELED) {
		/* Arming it again would fail the same way, at every round. */
		sl->broken = true;
		report(sl, "signal handlers: polling the signalfd failed; "
		       "signals are no longer read", res);
	}
	converge_report(sl);
}

static void cancel_complete(coil__ring_op_t *op, int res, unsigned flags)
{
	(void)res;
	(void)flags;
	sigloop_t *sl = coil__container_of(op, sigloop_t, cancel);
	sl->cancelling = false;
	sl->pending--;
	converge(sl);
}

/* --- adding and removing ----------------------------------------------------- */

/* The calling loop's sigloop, made if needed, with a signalfd open. g.mu
 * held. Returns 0, or -ENOMEM, -EMFILE, ... */
static int get_sigloop_locked(coil_loop_t *loop, pid_t tid, sigloop_t **out)
{
	sigloop_t *sl = find_locked(loop);
	bool fresh = false;
	if (!sl) {
		sl = coil__calloc(sizeof(*sl));
		if (!sl)
			return -ENOMEM;
		sl->op.complete = poll_complete;
		sl->cancel.complete = cancel_complete;
		sl->loop = loop;
		sl->tid = tid;
		sl->btid = tid;
		sl->sfd = -1;
		sigemptyset(&sl->mask);
		sigemptyset(&sl->blocked);
		fresh = true;
	} else if (sl->tid != tid) {
		/* The loop runs on another thread now (a runtime's workers
		 * move to fresh threads when it shuts down). */
		retarget_locked(sl, tid);
		if (set_empty(&sl->blocked))
			sl->btid = tid;
	}
	if (sl->sfd < 0) {
		sigset_t none;
		sigemptyset(&none);
		int fd = signalfd(-1, &none, SFD_NONBLOCK | SFD_CLOEXEC);
		if (fd < 0) {
			int err = -errno;
			if (fresh)
				coil__free(sl, sizeof(*sl));
			return err;
		}
		sl->sfd = fd;
	}
	if (fresh) {
		sl->next = g.loops;
		g.loops = sl;
	}
	*out = sl;
	return 0;
}

/*
 * Takes sig out of sl's mask (g.mu held); the caller settles the rest
 * (settle_here(), which also gives the signalfd the new mask, on the
 * loop's thread: until then what the signalfd reads of sig is sent on by
 * drain()), and passes on the entries of sig taken out of sl's FIFO,
 * whose count this returns.
 */
static unsigned unmask_locked(sigloop_t *sl, int sig)
{
	sigdelset(&sl->mask, sig);
	sigaddset(&sl->gone, sig);
	return q_purge(sl, sig);
}

/* Hands settle() to sl's loop unless it is there already. g.mu held. */
static void settle_later_locked(sigloop_t *sl)
{
	if (sl->settle_queued)
		return;
	/* If the loop is closed, its close takes the sigloop down instead. */
	if (coil_loop_call_soon_threadsafe(sl->loop, settle, sl) == 0)
		sl->settle_queued = true;
}

int coil_add_signal_handler(int signum, coil_cb cb, void *arg)
{
	if (!sig_ok(signum) || !cb)
		return -EINVAL;
	coil_loop_t *loop = coil__running_loop;
	if (!loop)
		return COIL_EINVALSTATE;
	pid_t tid = self_tid();
	pthread_mutex_lock(&g.mu);
	slot_t *s = &g.slot[signum];
	sigloop_t *prev = s->sl;
	if (prev && prev->loop != loop && !(loop->rt && prev->loop->rt == loop->rt)) {
		pthread_mutex_unlock(&g.mu);
		return -EBUSY;
	}
	sigloop_t *sl = NULL;
	int rc = get_sigloop_locked(loop, tid, &sl);
	if (rc) {
		pthread_mutex_unlock(&g.mu);
		return rc;
	}
	if (prev == sl) {
		/* asyncio: a second add replaces the callback. */
		s->cb = cb;
		s->arg = arg;
		pthread_mutex_unlock(&g.mu);
		return 0;
	}
	/* Blocked here first, then taken by the signalfd, then forwarded
	 * here, then caught: a signal that comes in between meets the
	 * previous disposition, as if it came before the call. */
	sigset_t one, cur;
	sigemptyset(&one);
	sigaddset(&one, signum);
	pthread_sigmask(SIG_BLOCK, &one, &cur);
	bool blocked_here = !sigismember(&cur, signum);
	sigaddset(&sl->mask, signum);
	if (signalfd(sl->sfd, &sl->mask, 0) < 0) {
		rc = -errno;
		goto undo;
	}
	if (!prev) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = forwarder;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		sigemptyset(&sa.sa_mask);
		atomic_store_explicit(&fwd_tid[signum], tid, memory_order_relaxed);
		if (sigaction(signum, &sa, &s->old) != 0) {
			rc = -errno;
			atomic_store_explicit(&fwd_tid[signum], 0, memory_order_relaxed);
			sigdelset(&sl->mask, signum);
			signalfd(sl->sfd, &sl->mask, 0);
			goto undo;
		}
	} else {
		/* Moving from another worker of this runtime: that one lets go
		 * of it (its thread, a worker's, blocks it anyway). What it
		 * read and did not dispatch yet is dispatched here; what was
		 * sent to its thread it passes on (reclaim()). fwd_tid is
		 * written first: see forward(). */
		atomic_store(&fwd_tid[signum], tid);
		for (unsigned n = unmask_locked(prev, signum); n; n--)
			q_push(sl, signum);
		settle_later_locked(prev);
	}
	/* (A thread other than btid keeps it blocked: a standalone loop
	 * run by a thread other than the one that added its first handlers,
	 * see coil/signal.h.) */
	if (blocked_here && sl->btid == tid)
		sigaddset(&sl->blocked, signum);
	s->sl = sl;
	s->cb = cb;
	s->arg = arg;
	bool queue = sl->qlen && !sl->dispatch_queued;
	pthread_mutex_unlock(&g.mu);
	if (queue && coil_loop_call_soon(sl->loop, dispatch, sl, NULL) == 0)
		sl->dispatch_queued = true;
	rc = converge(sl);
	if (rc) {
		coil_remove_signal_handler(signum);
		return rc;
	}
	return 0;
undo:
	sigdelset(&sl->mask, signum);
	if (blocked_here)
		pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	pthread_mutex_unlock(&g.mu);
	return rc;
}

int coil_remove_signal_handler(int signum)
{
	if (!sig_ok(signum))
		return -EINVAL;
	pthread_mutex_lock(&g.mu);
	slot_t *s = &g.slot[signum];
	sigloop_t *sl = s->sl;
	if (!sl) {
		pthread_mutex_unlock(&g.mu);
		return 0;
	}
	/* The callback is not started again (dispatch() checks the slot),
	 * the signalfd takes no more of the signal, and the disposition is
	 * the previous one again; a signal pending meanwhile is delivered
	 * under it once the loop's thread unblocks the signal. */
	s->sl = NULL;
	s->cb = NULL;
	s->arg = NULL;
	unsigned unrun = unmask_locked(sl, signum);
	/* The disposition first: a forwarder() that finds no thread sends
	 * the signal to the process, which must not meet forwarder() again
	 * (on this thread, it would come back before the next line). */
	sigaction(signum, &s->old, NULL);
	atomic_store(&fwd_tid[signum], 0);
	bool here = coil__running_loop == sl->loop;
	if (!here)
		settle_later_locked(sl);
	pthread_mutex_unlock(&g.mu);
	/* Those read and not dispatched meet the previous disposition, as
	 * those not read yet do. */
	resend(signum, unrun);
	if (here)
		settle_here(sl);
	return 1;
}

void coil__signal_loop_close(coil_loop_t *loop)
{
	pthread_mutex_lock(&g.mu);
	sigloop_t **pp = &g.loops, *sl;
	while ((sl = *pp) && sl->loop != loop)
		pp = &sl->next;
	if (!sl) {
		pthread_mutex_unlock(&g.mu);
		return;
	}
	*pp = sl->next;
	for (int sig = 1; sig < _NSIG; sig++) {
		slot_t *s = &g.slot[sig];
		if (s->sl != sl)
			continue;
		s->sl = NULL;
		s->cb = NULL;
		s->arg = NULL;
		sigaction(sig, &s->old, NULL); /* first: see the removal */
		atomic_store(&fwd_tid[sig], 0);
	}
	sigemptyset(&sl->mask);
	if (sl->sfd >= 0) {
		/* The poll still in flight holds the file: make sure it takes
		 * nothing, whatever becomes of it. */
		signalfd(sl->sfd, &sl->mask, 0);
		close(sl->sfd);
		sl->sfd = -1;
	}
	pthread_mutex_unlock(&g.mu);
	if (self_tid() == sl->btid && !set_empty(&sl->blocked))
		pthread_sigmask(SIG_UNBLOCK, &sl->blocked, NULL);
	coil__free(sl->q, sl->qcap * sizeof(int));
	coil__free(sl, sizeof(*sl));
}
