/*
 * io/ring.c: the per-loop io_uring (see ring.h and ring_int.h).
 *
 * Setup: the best flags the kernel accepts (SINGLE_ISSUER|DEFER_TASKRUN,
 * then COOP_TASKRUN, then none; SUBMIT_ALL where known), a completion queue
 * eight times the submission queue (CQSIZE|CLAMP) so that a loop with many
 * operations in flight rarely overflows it, and a probe of the opcodes the
 * kernel supports. With COIL_DEBUG=1 in the environment the first ring of
 * the process prints what it found on stderr.
 *
 * Batching: operations queue SQEs; coil__ring_wait, called by the loop
 * once per round, submits them all and reaps in one io_uring_enter. A full
 * SQ is flushed at once (coil__ring_reserve_slow).
 *
 * Overflow: with IORING_FEAT_NODROP the kernel keeps completions that do not
 * fit in the CQ on a list of its own and raises IORING_SQ_CQ_OVERFLOW; reap()
 * drains the CQ, then asks the kernel to move the overflowed ones in
 * (io_uring_get_events) and drains again, so no completion is lost. An
 * enter that fails with -EBUSY or -EAGAIN (the CQ is full, or the kernel is
 * short of memory) is answered by reaping, which frees room, and retrying.
 * -EINTR (a signal) and -ETIME (the wait's timeout) end a wait normally.
 *
 * Wake-up protocol: the ring keeps one read of an eventfd in flight while
 * the loop waits. Another thread wakes the loop by writing the eventfd
 * (coil__ring_wake); the read completes, the waiting io_uring_enter
 * returns, and the read is armed again before the next wait. A write while
 * no one waits is not lost: the eventfd counter stays set, so the next read
 * completes at once.
 *
 * Threads: with SINGLE_ISSUER|DEFER_TASKRUN only the thread that set the
 * ring up may enter it, and an operation it submitted completes only when
 * that thread enters. A loop that moves to another thread therefore ends
 * what it has in flight before the old thread leaves (coil__ring_quiesce:
 * cancel everything, reap until nothing is owed; the operations of io/
 * submit themselves again on the new thread), and the new thread gets a
 * fresh ring (coil__ring_rebind). A portable ring (a runtime's worker 0,
 * which block_on runs on the caller's thread) moves the same way; only on
 * a kernel that cannot cancel everything at once is it set up without
 * those two flags instead, so that its operations carry on across threads.
 *
 * Waits use io_uring_submit_and_wait_timeout, which passes the timeout
 * through the EXT_ARG enter argument (no timeout SQE, no extra completion)
 * on every kernel this runtime supports (5.11+).
 */
#include "ring_int.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "coil/common.h"
#include "debug/metrics_int.h"

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

/*
 * ThreadSanitizer runs a signal's handler only when the thread that took
 * the signal next calls a function it intercepts. io_uring_enter is not
 * one, and a wait interrupted by a signal whose disposition has SA_RESTART
 * (coil's signal forwarder's) is restarted by the kernel: a worker parked
 * with nothing to do would hold the forwarder back until its next wake-up,
 * perhaps forever. In TSan builds waits are therefore cut into slices of
 * this length, each followed by such a call (a query of the signal mask),
 * which runs what is pending. Other builds are not affected.
 */
#if defined(__SANITIZE_THREAD__)
#define COIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define COIL_TSAN 1
#endif
#endif
#define TSAN_WAIT_SLICE_NS (100 * 1000 * 1000)
#ifdef COIL_TSAN
#include <sanitizer/tsan_interface.h>
#endif

static inline void tsan_signal_point(void)
{
#ifdef COIL_TSAN
	sigset_t cur;
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
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
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_SQ_TASKRUN
#define IORING_SQ_TASKRUN (1U << 2)
#endif
#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif

/* The CQ holds this many times the SQ's entries. */
#define CQ_FACTOR 8
/* Completions copied out of the CQ at a time before they are dispatched. */
#define REAP_BATCH 64
/* Attempts at an enter the kernel keeps refusing with -EBUSY or -EAGAIN
 * before the error goes to the caller. */
#define BUSY_TRIES 16
/* coil__ring_quiesce waits this long at a time, this many times at most. */
#define QUIESCE_WAIT_NS (10 * 1000 * 1000)
#define QUIESCE_ROUNDS 500

static void efd_complete(coil__ring_op_t *op, int res, unsigned flags);

/* Arms the wake-up read. Only called right before the ring is entered, so
 * the SQE it takes is submitted at once. */
static void efd_arm(coil__ring_t *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	if (!sqe) {
		/* The SQ is full: flush it and retry; one free slot is enough. */
		io_uring_submit(&r->ring);
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
	/* Armed again by the next wait that may block. */
	r->efd_armed = false;
}

/*
 * Says once per process why io_uring cannot be used and what to do about
 * it. The sysctl is read to tell it apart from a seccomp filter, which
 * gives the same -EPERM.
 */
static void explain_failure(int err)
{
	static atomic_flag told = ATOMIC_FLAG_INIT;
	const char *why = NULL;
	char sysctl[64] = "";
	if (err == -ENOSYS) {
		why = "the kernel has no io_uring (built without CONFIG_IO_URING, "
		      "or older than 5.1), or a seccomp filter answers ENOSYS. coil "
		      "needs Linux 5.11 or later with io_uring enabled";
	} else if (err == -EPERM || err == -EACCES) {
		FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
		int v = 0;
		if (f) {
			if (fscanf(f, "%d", &v) != 1)
				v = 0;
			fclose(f);
		}
		if (v != 0) {
			snprintf(sysctl, sizeof(sysctl), "%d", v);
			why = v == 1 ? "the sysctl kernel.io_uring_disabled is 1, which "
				       "allows io_uring only to processes in the group "
				       "kernel.io_uring_group (or with CAP_SYS_ADMIN): set "
				       "it to 0 (sysctl -w kernel.io_uring_disabled=0) or "
				       "run in that group"
				     : "the sysctl kernel.io_uring_disabled is 2, which "
				       "disables io_uring: set it to 0 (sysctl -w "
				       "kernel.io_uring_disabled=0)";
		} else {
			why = "the system call io_uring_setup was refused, most likely "
			      "by a seccomp filter (container runtimes block io_uring by "
			      "default): allow io_uring_setup, io_uring_enter and "
			      "io_uring_register in the container's seccomp profile "
			      "(docker: --security-opt seccomp=<profile>)";
		}
	} else if (err == -ENOMEM) {
		why = "the kernel could not allocate the ring; on kernels before "
		      "5.12 rings count against the locked-memory limit: raise "
		      "ulimit -l, or use fewer or smaller rings (ring_entries)";
	} else if (err == -EMFILE || err == -ENFILE) {
		why = "no file descriptor is left for the ring: raise ulimit -n";
	}
	if (!why || atomic_flag_test_and_set(&told))
		return;
	fprintf(stderr, "coil: io_uring is not available (%s): %s.\n",
		strerror(-err), why);
}

/* Fills the opcode bitmap and the capabilities from the kernel's probe. */
static void probe(coil__ring_t *r)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(&r->ring);
	memset(r->ops, 0, sizeof(r->ops));
	if (p) {
		for (unsigned i = 0; i < p->ops_len && i < 256; i++)
			if (p->ops[i].flags & IO_URING_OP_SUPPORTED)
				r->ops[i / 64] |= (uint64_t)1 << (i % 64);
		io_uring_free_probe(p);
	} else {
		/* Kernels before 5.6 have no probe: assume what 5.11 has. */
		for (unsigned i = 0; i <= IORING_OP_SHUTDOWN; i++)
			r->ops[i / 64] |= (uint64_t)1 << (i % 64);
	}
	r->caps = 0;
	if (coil__ring_has_op(r, IORING_OP_SOCKET))
		r->caps |= COIL__RING_CAP_MULTISHOT_ACCEPT | COIL__RING_CAP_CANCEL_ANY;
	if (coil__ring_has_op(r, IORING_OP_SEND_ZC))
		r->caps |= COIL__RING_CAP_SEND_ADDR;
}

static void print_names(const char *what, unsigned v, const char *const *names,
			unsigned n)
{
	fprintf(stderr, "coil: io_uring %s:", what);
	for (unsigned i = 0; i < n; i++)
		if ((v >> i & 1) && names[i])
			fprintf(stderr, " %s", names[i]);
	fprintf(stderr, " (0x%x)\n", v);
}

/* With COIL_DEBUG=1: the first ring of the process says what it found. */
static void debug_report(const coil__ring_t *r)
{
	static atomic_flag told = ATOMIC_FLAG_INIT;
	/* Setup flag sets already shown: a portable ring's differ. */
	static _Atomic unsigned shown[4];
	const char *e = getenv("COIL_DEBUG");
	if (!e || strcmp(e, "1") != 0)
		return;
	static const char *const setup[] = {
		"IOPOLL", "SQPOLL", "SQ_AFF", "CQSIZE", "CLAMP", "ATTACH_WQ",
		"R_DISABLED", "SUBMIT_ALL", "COOP_TASKRUN", "TASKRUN_FLAG",
		"SQE128", "CQE32", "SINGLE_ISSUER", "DEFER_TASKRUN",
	};
	unsigned key = r->flags | 1u << 31;
	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
		unsigned cur = 0;
		if (atomic_compare_exchange_strong(&shown[i], &cur, key)) {
			print_names("setup flags", r->flags, setup,
				    sizeof(setup) / sizeof(setup[0]));
			break;
		}
		if (cur == key)
			break;
	}
	if (atomic_flag_test_and_set(&told))
		return;
	static const char *const feat[] = {
		"SINGLE_MMAP", "NODROP", "SUBMIT_STABLE", "RW_CUR_POS",
		"CUR_PERSONALITY", "FAST_POLL", "POLL_32BITS", "SQPOLL_NONFIXED",
		"EXT_ARG", "NATIVE_WORKERS", "RSRC_TAGS", "CQE_SKIP", "LINKED_FILE",
		"REG_REG_RING", "RECVSEND_BUNDLE", "MIN_TIMEOUT", "RW_ATTR",
		"NO_IOWAIT",
	};
	print_names("features", r->ring.features, feat, sizeof(feat) / sizeof(feat[0]));
	unsigned n = 0, last = 0;
	for (unsigned i = 0; i < 256; i++)
		if (coil__ring_has_op(r, i)) {
			n++;
			last = i;
		}
	fprintf(stderr, "coil: io_uring: %u opcodes supported (highest %u), "
		"SQ %u entries, CQ %u entries; multishot accept: %s; send with "
		"address: %s\n", n, last, r->ring.sq.ring_entries,
		r->ring.cq.ring_entries,
		r->caps & COIL__RING_CAP_MULTISHOT_ACCEPT ? "yes" : "no",
		r->caps & COIL__RING_CAP_SEND_ADDR ? "yes" : "no");
}

/*
 * liburing maps and unmaps a ring's memory with system calls of its own,
 * which ThreadSanitizer does not see: a ring mapped where an earlier one
 * was inherits that one's access history, and the first write of its new
 * worker looked like a race with the last write of a thread long gone
 * (test_oom, one run in twenty-odd). The ring's teardown, which comes after
 * its users (their threads joined or parked), releases the addresses and
 * the next ring mapped there acquires them.
 */
static void tsan_ring_sync(struct io_uring *ring, bool release)
{
#ifdef COIL_TSAN
	void *mem[3] = { ring->sq.ring_ptr, ring->cq.ring_ptr, ring->sq.sqes };
	for (int i = 0; i < 3; i++) {
		if (release)
			__tsan_release(mem[i]);
		else
			__tsan_acquire(mem[i]);
	}
#else
	(void)ring;
	(void)release;
#endif
}

static int ring_init(struct io_uring *ring, unsigned entries, unsigned flags)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
	/* Saturated rather than wrapped: CLAMP cuts both sizes to the
	 * kernel's maximum, but a CQ size that wrapped to 0, or below the
	 * SQ's, is refused with -EINVAL. */
	p.cq_entries = entries > UINT_MAX / CQ_FACTOR ? UINT_MAX : entries * CQ_FACTOR;
	int rc = io_uring_queue_init_params(entries, ring, &p);
	if (rc == 0)
		tsan_ring_sync(ring, false);
	return rc;
}

static void ring_exit(struct io_uring *ring)
{
	tsan_ring_sync(ring, true);
	io_uring_queue_exit(ring);
}

int coil__ring_create(coil__ring_t **out, unsigned entries, bool portable)
{
	/* TASKRUN_FLAG makes the kernel raise IORING_SQ_TASKRUN when
	 * completions wait for the next enter, so that a spinning worker sees
	 * them without a system call (coil__ring_has_events). */
	static const unsigned best[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_SUBMIT_ALL | IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL |
			IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		0,
	};
	/* A ring that may change threads with operations in flight: with
	 * SINGLE_ISSUER|DEFER_TASKRUN when the kernel can also cancel
	 * everything at once, which coil__ring_quiesce needs to end what is
	 * in flight before the ring moves (then coil__ring_rebind gives the
	 * next thread a fresh ring; without DEFER_TASKRUN a busy server pays
	 * about twice the CPU per request, measured with W6); else set up so
	 * that any thread may submit and reap, and completions are posted
	 * without waiting for the submitter to enter the kernel (never
	 * COOP_TASKRUN: its completions wait for the submitting thread's next
	 * system call). */
	static const unsigned moving[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_SUBMIT_ALL | IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_SUBMIT_ALL,
		0,
	};
	const unsigned *tries = portable ? moving : best;
	size_t ntries = portable ? sizeof(moving) / sizeof(moving[0])
				 : sizeof(best) / sizeof(best[0]);
	coil__ring_t *r = coil__calloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	if (!entries)
		entries = 256;
	/* An operation with a timeout takes two SQEs that must be submitted
	 * together. */
	if (entries < 4)
		entries = 4;
	int err = -EINVAL;
	for (size_t i = 0; i < ntries; i++) {
		err = ring_init(&r->ring, entries, tries[i]);
		if (err == 0 && portable && (tries[i] & IORING_SETUP_SINGLE_ISSUER)) {
			probe(r);
			if (!(r->caps & COIL__RING_CAP_CANCEL_ANY)) {
				/* It could not be quiesced: not this one. */
				ring_exit(&r->ring);
				err = -EINVAL;
				continue;
			}
		}
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
		ring_exit(&r->ring);
		coil__free(r, sizeof(*r));
		return err;
	}
	r->efd_op.complete = efd_complete;
	probe(r);
	debug_report(r);
	*out = r;
	return 0;
}

int coil__ring_rebind(coil__ring_t *r)
{
	if (!(r->flags & IORING_SETUP_SINGLE_ISSUER))
		return 0;
	coil__ring_retired_t *old = NULL;
	if (r->inflight && !(old = coil__malloc(sizeof(*old))))
		return -ENOMEM;
	struct io_uring nr;
	int err = ring_init(&nr, r->entries, r->flags);
	if (err) {
		coil__free(old, sizeof(*old));
		return err;
	}
	if (old) {
		/* Operations the last thread could not end: nobody can reap
		 * them now, but their memory may still be written to, so the
		 * ring stays open until the end. */
		old->ring = r->ring;
		old->next = r->retired;
		r->retired = old;
		r->inflight = 0;
	} else {
		/* Tearing the old ring down cancels its pending wake-up read;
		 * the eventfd (and any count a writer left in it) carries
		 * over. */
		ring_exit(&r->ring);
	}
	r->ring = nr;
	r->efd_armed = false;
	return 0;
}

void coil__ring_destroy(coil__ring_t *r)
{
	if (!r)
		return;
	while (r->retired) {
		coil__ring_retired_t *o = r->retired;
		r->retired = o->next;
		ring_exit(&o->ring);
		coil__free(o, sizeof(*o));
	}
	ring_exit(&r->ring);
	close(r->efd);
	coil__free(r, sizeof(*r));
}

typedef struct reaped {
	uint64_t user_data;
	int32_t res;
	uint32_t flags;
} reaped_t;

/*
 * Dispatches every completion in the CQ, and those the kernel kept aside
 * on overflow. Completions are copied out a batch at a time and the CQ head
 * advanced before any handler runs: a handler may take SQEs, and a full SQ
 * then submits and may reap again from inside it (each pass takes only
 * what the one before left).
 */
static int reap(coil__ring_t *r)
{
	struct io_uring_cq *cq = &r->ring.cq;
	const unsigned mask = cq->ring_mask;
	const unsigned shift = io_uring_cqe_shift(&r->ring);
	int total = 0;
	unsigned flushes = 0;
	for (;;) {
		reaped_t b[REAP_BATCH];
		unsigned head = *cq->khead;
		/* The acquire orders the reads of the CQEs after the tail's. */
		unsigned n = io_uring_smp_load_acquire(cq->ktail) - head;
		if (n == 0) {
			/* Drained: bring in what overflowed, if anything did. The
			 * bound keeps a kernel that keeps the flag up for another
			 * reason from spinning us. */
			if (io_uring_cq_has_overflow(&r->ring) && flushes++ < BUSY_TRIES) {
				r->overflows++;
				io_uring_get_events(&r->ring);
				continue;
			}
			break;
		}
		if (n > REAP_BATCH)
			n = REAP_BATCH;
		/* Completions owed: not the wake-up read's, not those of a
		 * multishot operation that will post more, not those without
		 * an operation. */
		unsigned owed = 0;
		for (unsigned i = 0; i < n; i++) {
			const struct io_uring_cqe *cqe = &cq->cqes[((head + i) & mask) << shift];
			b[i].user_data = cqe->user_data;
			b[i].res = cqe->res;
			b[i].flags = cqe->flags;
			bool op = cqe->user_data &&
				  cqe->user_data != (uint64_t)(uintptr_t)&r->efd_op;
			/* An operation's handler runs below: its request (on a
			 * waiting task's stack, often out of the cache after the
			 * kernel's copies) is on its way meanwhile. */
			if (op)
				__builtin_prefetch((const void *)(uintptr_t)cqe->user_data, 1, 3);
			owed += op && !(cqe->flags & IORING_CQE_F_MORE);
		}
		io_uring_cq_advance(&r->ring, n);
		COIL__METRICS_RING_REAPED(r, (int)n);
		r->inflight = owed < r->inflight ? r->inflight - owed : 0;
		for (unsigned i = 0; i < n; i++) {
			coil__ring_op_t *op = (coil__ring_op_t *)(uintptr_t)b[i].user_data;
			if (op)
				op->complete(op, b[i].res, b[i].flags);
		}
		total += (int)n;
	}
	return total;
}

int coil__ring_reserve_slow(coil__ring_t *r, unsigned n)
{
	if (n > r->ring.sq.ring_entries)
		return -EINVAL;
	for (unsigned tries = 0; tries < BUSY_TRIES; tries++) {
		int ret = io_uring_submit(&r->ring);
		COIL__METRICS_RING_SUBMITTED(r, ret);
		if (io_uring_sq_space_left(&r->ring) >= n)
			return 0;
		if (ret < 0 && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR)
			return ret;
		/* The kernel took nothing: the CQ is full (old kernels refuse
		 * submissions while completions overflow) or it is short of
		 * memory. Reaping makes room. */
		io_uring_get_events(&r->ring);
		reap(r);
		if (tries)
			sched_yield();
	}
	return -EAGAIN;
}

int coil__ring_wait(coil__ring_t *r, int64_t timeout_ns)
{
	/* Nothing owed, nothing queued and no need to block: skip the kernel
	 * and the CQ. A pending wake-up is seen through the loop's inbox
	 * counter instead, and its read's completion is reaped at the next
	 * wait that enters. */
	if (timeout_ns == 0 && r->inflight == 0 && io_uring_sq_ready(&r->ring) == 0)
		return 0;
	if (!r->efd_armed)
		efd_arm(r);
	if (under_valgrind() &&
	    (timeout_ns < 0 || timeout_ns > VALGRIND_WAIT_SLICE_NS))
		timeout_ns = VALGRIND_WAIT_SLICE_NS;
#ifdef COIL_TSAN
	if (timeout_ns < 0 || timeout_ns > TSAN_WAIT_SLICE_NS)
		timeout_ns = TSAN_WAIT_SLICE_NS;
#endif
	struct io_uring_cqe *cqe = NULL;
	int ret;
	COIL__METRICS_RING_SUBMITTED(r, (int)io_uring_sq_ready(&r->ring));
	for (unsigned tries = 0;; tries++) {
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
			if (timeout_ns != 0)
				tsan_signal_point();
			break;
		}
		if (ret != -EAGAIN && ret != -EBUSY)
			return ret;
		/* The CQ is full or the kernel is short of memory: reap what
		 * is there, which frees room, and try again; the SQEs stay in
		 * the SQ meanwhile. Whatever was reaped is progress enough for
		 * the loop's round. */
		int n = reap(r);
		if (n > 0)
			return n;
		if (tries >= BUSY_TRIES)
			return ret;
		sched_yield();
	}
	return reap(r);
}

/* The cancel-all's own completion: nothing to do but be reaped. */
static void quiesce_complete(coil__ring_op_t *op, int res, unsigned flags)
{
	(void)op;
	(void)res;
	(void)flags;
}

void coil__ring_quiesce(coil__ring_t *r)
{
	/* Without SINGLE_ISSUER (a portable ring) any thread may enter the
	 * ring and reap, and completions do not wait for the submitter:
	 * what is in flight simply carries on. */
	if (!r->inflight || !(r->flags & IORING_SETUP_SINGLE_ISSUER) ||
	    !(r->caps & COIL__RING_CAP_CANCEL_ANY))
		return;
	r->gen++;
	r->quiescing = true;
	r->quiesce_op.complete = quiesce_complete;
	/* Operations in the kernel's worker threads end when the signal the
	 * cancellation sends them is seen; fsync and other uninterruptible
	 * ones only when they are done: wait for those, within reason. */
	for (unsigned round = 0; r->inflight && round < QUIESCE_ROUNDS; round++) {
		if (round % 10 == 0 && coil__ring_reserve(r, 1) == 0) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
			io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY |
						   IORING_ASYNC_CANCEL_ALL);
			io_uring_sqe_set_data(sqe, &r->quiesce_op);
			coil__ring_expect(r, 1);
		}
		if (coil__ring_wait(r, QUIESCE_WAIT_NS) < 0)
			break;
	}
	if (r->inflight)
		fprintf(stderr, "coil: %u io_uring operation(s) did not end when "
			"their worker stopped; their tasks cannot resume\n", r->inflight);
	r->quiescing = false;
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

bool coil__ring_has_events(coil__ring_t *r)
{
	if (io_uring_cq_ready(&r->ring))
		return true;
	return (r->flags & IORING_SETUP_TASKRUN_FLAG) &&
	       (IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_TASKRUN);
}

const unsigned *coil__ring_inflight_ptr(const coil__ring_t *r)
{
	return &r->inflight;
}
