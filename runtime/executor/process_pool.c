/*
 * runtime/executor/process_pool.c: the process pool's program side
 * (coil/process_pool.h): submitting jobs, and the manager thread that runs
 * the workers.
 *
 * Submitters push jobs onto a lock-free stack (as the thread pool does) and
 * write the manager's eventfd only when it sleeps in poll(): the manager
 * sets `sleeping` (seq_cst) before its last look at the stack, a submitter
 * reads it (seq_cst) after its push, so one of the two sees the other.
 *
 * Everything else belongs to the manager thread: the FIFO of jobs not yet
 * sent, the workers and their pipes (non-blocking on this side), the batch
 * of completions. Each round it takes the new jobs, gives one job to each
 * idle worker (dropping those whose future was cancelled meanwhile),
 * writes what the pipes take, reads what the workers wrote, reaps the
 * workers whose pidfd became readable (after reading what they wrote before
 * dying, so that a result sent just before an exit is not lost), starts
 * replacements, hands the completions to their loops, and sleeps in poll().
 *
 * A worker is IDLE (no job), SENDING (its job is being written), RUNNING
 * (its job was written; its result is being waited for or read) or DEAD
 * (reaped; a replacement may take the slot). Workers are started and
 * reaped only here, so PR_SET_PDEATHSIG in the worker (which fires when the
 * thread that started it ends) ties it to this thread, which ends last.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "core.h"
#include "executor_int.h"
#include "pidfd.h"
#include "process_proto.h"

/* Workers that die before they could say hello, in a row, that break the
 * pool. */
#define MAX_START_FAILURES 5
#define CLOSED_MARK ((coil__xdone_t *)(uintptr_t)1)

extern char **environ;

enum { W_DEAD, W_IDLE, W_SENDING, W_RUNNING };
enum { STOP_NONE, STOP_WAIT, STOP_KILL };

typedef struct pjob {
	coil__xdone_t done;
	void *in;                 /* malloc'ed input, freed once sent */
	size_t in_len;
	uint32_t name_len;
	char name[COIL__PP_NAME_MAX + 1];
} pjob_t;

typedef struct pworker {
	pid_t pid;                /* 0 when DEAD (written under the pool's mu) */
	int pidfd;                /* -1 where pidfd_open is missing */
	int job_fd;               /* the job pipe's write end */
	int res_fd;               /* the result pipe's read end */
	int state;                /* W_* */
	bool hello;               /* it said it serves */
	bool eof;                 /* its result pipe reached end-of-file */
	bool broken_pipe;         /* writing to it failed: it is dying */
	bool killed;              /* killed by a kill shutdown */
	pjob_t *job;
	/* Sending: the header, then the name, then the input. */
	coil__pp_job_hdr_t hdr;
	size_t sent, total;
	/* Receiving: the header, then `rh.len` bytes into rbuf. */
	coil__pp_res_hdr_t rh;
	size_t rh_got;
	char *rbuf;
	size_t rgot;
	/* What was read but not yet taken: one read() usually brings a
	 * whole small result. */
	size_t ioff, ilen;
	char inbuf[16 * 1024];
} pworker_t;

struct coil_process_pool {
	/* Any thread. */
	_Atomic(coil__xdone_t *) incoming;
	atomic_bool sleeping;     /* the manager is in (or entering) poll */
	atomic_int stop;          /* STOP_* requested by shutdown */
	atomic_bool cancel;       /* shutdown's cancel_futures */
	atomic_bool broken;
	int wake_fd;              /* eventfd */
	pthread_t thread;

	pthread_mutex_t mu;       /* pids, and the start handshake */
	pthread_cond_t cond;
	bool started;             /* the manager reported how the start went */
	int start_err;

	/* The manager's. */
	unsigned n;
	pworker_t *w;
	coil__xdone_t *qhead, **qtailp;
	unsigned start_failures;
	char last_death[160];     /* how the last worker that failed died */
	bool closed;
	coil__xbatch_t batch;
};

/* --- jobs ------------------------------------------------------------------- */

void coil__process_job_free(coil__xdone_t *d)
{
	pjob_t *j = coil__container_of(d, pjob_t, done);
	free(j->in);
	coil__free(j, sizeof(*j));
}

static void bytes_dtor(void *p)
{
	coil_bytes_t *b = p;
	free(b->data);
	free(b);
}

/* Ends a job with an error and a formatted message. */
static void job_fail(coil_process_pool_t *p, pjob_t *j, int err, const char *msg)
{
	coil__xdone_set(&j->done, err, NULL,
			msg && err != -ECANCELED ? coil__strdup(msg) : NULL);
	coil__xbatch_add(&p->batch, &j->done);
}

/* --- starting and stopping workers ------------------------------------------ */

/* Moves fd to a number >= 5, so that the child's dup2 onto 3 and 4 cannot
 * clobber the other pipe end. Returns the new fd or -1. */
static int fd_high(int fd)
{
	if (fd >= 5)
		return fd;
	int n = fcntl(fd, F_DUPFD_CLOEXEC, 5);
	close(fd);
	return n;
}

/* A freshly made environment: the program's, with the worker mark. */
static char **worker_env(const char *mark)
{
	size_t n = 0;
	for (char **e = environ; e && *e; e++)
		n++;
	char **env = coil__libc_malloc((n + 2) * sizeof(*env));
	if (!env)
		return NULL;
	size_t k = 0;
	size_t ml = strlen(COIL__PP_ENV);
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, COIL__PP_ENV, ml) || (*e)[ml] != '=')
			env[k++] = *e;
	env[k++] = (char *)mark;
	env[k] = NULL;
	return env;
}

static void set_pid(coil_process_pool_t *p, pworker_t *w, pid_t pid)
{
	pthread_mutex_lock(&p->mu);
	w->pid = pid;
	pthread_mutex_unlock(&p->mu);
}

/* Starts a worker in slot w. Returns 0 or a negative errno. */
static int spawn_worker(coil_process_pool_t *p, pworker_t *w)
{
	const char *exe = coil__process_exe();
	char *const *argv = coil__process_argv();
	int jp[2] = { -1, -1 }, rp[2] = { -1, -1 };
	int err = 0;
	if (pipe2(jp, O_CLOEXEC) || pipe2(rp, O_CLOEXEC)) {
		err = -errno;
		goto fail;
	}
	/* Larger pipes: fewer rounds for big inputs and outputs (the call
	 * may be refused above /proc/sys/fs/pipe-max-size: harmless). */
	fcntl(jp[1], F_SETPIPE_SZ, 1 << 20);
	fcntl(rp[1], F_SETPIPE_SZ, 1 << 20);
	if ((jp[0] = fd_high(jp[0])) < 0 || (rp[1] = fd_high(rp[1])) < 0) {
		err = -errno;
		goto fail;
	}
	char mark[64];
	snprintf(mark, sizeof(mark), "%s=%d,%d,%ld", COIL__PP_ENV, COIL__PP_JOB_FD,
		 COIL__PP_RES_FD, (long)getpid());
	char **env = worker_env(mark);
	if (!env) {
		err = -ENOMEM;
		goto fail;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_adddup2(&fa, jp[0], COIL__PP_JOB_FD);
	posix_spawn_file_actions_adddup2(&fa, rp[1], COIL__PP_RES_FD);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	/* The program's descriptors without close-on-exec stay out of it. */
	posix_spawn_file_actions_addclosefrom_np(&fa, COIL__PP_RES_FD + 1);
#endif
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int rc = posix_spawn(&pid, exe, &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(env);
	if (rc) {
		err = -rc;
		goto fail;
	}
	close(jp[0]);
	close(rp[1]);
	fcntl(jp[1], F_SETFL, O_NONBLOCK);
	fcntl(rp[0], F_SETFL, O_NONBLOCK);
	int pidfd = coil__pidfd_open(pid);
	/* The slot is cleared under the mutex, pid included: other threads
	 * read pid in coil_process_pool_pids at any time, and a memset over
	 * it is a write like any other. The input buffer needs no clearing
	 * (ioff and ilen say what it holds). */
	pthread_mutex_lock(&p->mu);
	memset(w, 0, offsetof(pworker_t, inbuf));
	w->pid = pid;
	pthread_mutex_unlock(&p->mu);
	w->pidfd = pidfd;
	w->job_fd = jp[1];
	w->res_fd = rp[0];
	w->state = W_IDLE;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (jp[i] >= 0)
			close(jp[i]);
		if (rp[i] >= 0)
			close(rp[i]);
	}
	return err;
}

static void kill_worker(pworker_t *w)
{
	if (w->pidfd < 0 || coil__pidfd_send_signal(w->pidfd, SIGKILL) != 0)
		kill(w->pid, SIGKILL);
}

/* "exited with status 3", "was killed by signal 9 (SIGKILL)". */
static void describe(const siginfo_t *si, char *buf, size_t n)
{
	if (si->si_code == CLD_EXITED) {
		snprintf(buf, n, "exited with status %d", si->si_status);
	} else {
		const char *abbrev = sigabbrev_np(si->si_status);
		snprintf(buf, n, "was killed by signal %d (SIG%s)%s", si->si_status,
			 abbrev ? abbrev : "?", si->si_code == CLD_DUMPED ? ", core dumped" : "");
	}
}

static void read_results(coil_process_pool_t *p, pworker_t *w);

/* The worker in slot w is gone or going: reaps it, fails its job, frees the
 * slot. */
static void reap_worker(coil_process_pool_t *p, pworker_t *w)
{
	read_results(p, w);
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	int rc;
	do {
		rc = w->pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)w->pidfd, &si, WEXITED)
				   : waitid(P_PID, (id_t)w->pid, &si, WEXITED);
	} while (rc < 0 && errno == EINTR);
	char how[96];
	if (rc < 0)
		snprintf(how, sizeof(how), "could not be waited for (%s)", strerror(errno));
	else
		describe(&si, how, sizeof(how));
	pid_t pid = w->pid;
	if (!w->hello) {
		p->start_failures++;
		snprintf(p->last_death, sizeof(p->last_death),
			 "worker process %d %s before it served", (int)pid, how);
	}
	if (w->job && !w->hello && !w->killed) {
		/* It died before it served: the job never ran. Back to the
		 * head of the queue (its input is kept until a worker says
		 * hello), for the next worker. */
		pjob_t *j = w->job;
		w->job = NULL;
		j->done.next = p->qhead;
		p->qhead = &j->done;
		if (!j->done.next)
			p->qtailp = &j->done.next;
	}
	if (w->job) {
		pjob_t *j = w->job;
		w->job = NULL;
		char msg[COIL__PP_NAME_MAX + 200];
		if (w->killed) {
			job_fail(p, j, COIL_ECLOSED, "the process pool was shut down");
		} else {
			snprintf(msg, sizeof(msg), "worker process %d %s while running \"%s\"",
				 (int)pid, how, j->name);
			job_fail(p, j, COIL_EBROKEN, msg);
		}
	}
	free(w->rbuf);
	w->rbuf = NULL;
	if (w->pidfd >= 0)
		close(w->pidfd);
	if (w->job_fd >= 0)
		close(w->job_fd);
	close(w->res_fd);
	w->state = W_DEAD;
	set_pid(p, w, 0);
}

/* --- writing jobs and reading results ------------------------------------------ */

static void send_more(coil_process_pool_t *p, pworker_t *w)
{
	(void)p;
	pjob_t *j = w->job;
	while (w->sent < w->total) {
		struct iovec iov[3];
		int n = 0;
		size_t off = w->sent;
		size_t seg[3] = { sizeof(w->hdr), j->name_len, j->in_len };
		const char *base[3] = { (const char *)&w->hdr, j->name, j->in };
		for (int i = 0; i < 3; i++) {
			if (off >= seg[i]) {
				off -= seg[i];
				continue;
			}
			iov[n].iov_base = (void *)(base[i] + off);
			iov[n].iov_len = seg[i] - off;
			n++;
			off = 0;
		}
		ssize_t r = writev(w->job_fd, iov, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				w->broken_pipe = true; /* dying: its pidfd says how */
			return;
		}
		w->sent += (size_t)r;
	}
	/* All sent: the input is not needed any more, once the worker is
	 * known to serve (one that dies before its hello never ran the job,
	 * which then goes to another worker). */
	if (w->hello) {
		free(j->in);
		j->in = NULL;
	}
	w->state = W_RUNNING;
}

static void start_job(coil_process_pool_t *p, pworker_t *w, pjob_t *j)
{
	w->job = j;
	w->hdr = (coil__pp_job_hdr_t){ COIL__PP_JOB_MAGIC, j->name_len, j->in_len };
	w->sent = 0;
	w->total = sizeof(w->hdr) + j->name_len + j->in_len;
	w->state = W_SENDING;
	send_more(p, w);
}

/* A whole result arrived. */
static void result_done(coil_process_pool_t *p, pworker_t *w)
{
	pjob_t *j = w->job;
	w->job = NULL;
	w->state = W_IDLE;
	char *data = w->rbuf;
	size_t len = w->rh.len;
	w->rbuf = NULL;
	w->rh_got = 0;
	w->rgot = 0;
	if (!j) {
		free(data);
		return;
	}
	if (w->rh.code == 0) {
		coil_bytes_t *b = coil__libc_malloc(sizeof(*b));
		if (!b) {
			free(data);
			job_fail(p, j, -ENOMEM, "out of memory for a process job's output");
			return;
		}
		b->data = data;
		b->len = len;
		coil__xdone_set(&j->done, 0, b, NULL);
		j->done.dtor = bytes_dtor;
		coil__xbatch_add(&p->batch, &j->done);
		return;
	}
	char *msg = NULL;
	if (len && (msg = coil__malloc(len + 1))) {
		memcpy(msg, data, len);
		msg[len] = '\0';
	}
	free(data);
	int code = w->rh.code < 0 ? w->rh.code : -EIO;
	if (code == -ECANCELED) {
		coil__strfree(msg);
		msg = NULL;
	}
	coil__xdone_set(&j->done, code, NULL, msg);
	coil__xbatch_add(&p->batch, &j->done);
}

/* A worker broke the protocol: it cannot be followed any more. */
static void protocol_error(pworker_t *w)
{
	w->eof = true;
	kill_worker(w);
}

/* Takes the buffered bytes: header, then body, result after result.
 * Returns false on a protocol error (the worker is then being killed). */
static bool consume(coil_process_pool_t *p, pworker_t *w)
{
	while (w->ioff < w->ilen) {
		size_t avail = w->ilen - w->ioff;
		const char *src = w->inbuf + w->ioff;
		if (w->rh_got < sizeof(w->rh)) {
			size_t k = sizeof(w->rh) - w->rh_got;
			if (k > avail)
				k = avail;
			memcpy((char *)&w->rh + w->rh_got, src, k);
			w->rh_got += k;
			w->ioff += k;
			if (w->rh_got < sizeof(w->rh))
				return true;
			if (w->rh.magic == COIL__PP_HELLO_MAGIC) {
				w->hello = true;
				p->start_failures = 0;
				w->rh_got = 0;
				if (w->job && w->state == W_RUNNING) {
					free(w->job->in);
					w->job->in = NULL;
				}
				continue;
			}
			if (w->rh.magic != COIL__PP_RES_MAGIC || !w->job ||
			    w->state != W_RUNNING || w->rh.len > (uint64_t)SIZE_MAX) {
				protocol_error(w);
				return false;
			}
			w->rgot = 0;
			if (w->rh.len && !(w->rbuf = coil__libc_malloc((size_t)w->rh.len))) {
				/* The stream cannot be skipped: give up on
				 * this worker; its job fails as broken. */
				protocol_error(w);
				return false;
			}
			if (!w->rh.len)
				result_done(p, w);
			continue;
		}
		size_t k = (size_t)w->rh.len - w->rgot;
		if (k > avail)
			k = avail;
		memcpy(w->rbuf + w->rgot, src, k);
		w->rgot += k;
		w->ioff += k;
		if (w->rgot == w->rh.len)
			result_done(p, w);
	}
	return true;
}

/* Reads what the worker wrote, without blocking. A read that returns less
 * than it asked for drained the pipe: poll() says when there is more, so
 * no read is spent on learning EAGAIN. */
static void read_results(coil_process_pool_t *p, pworker_t *w)
{
	while (!w->eof) {
		if (!consume(p, w))
			return;
		/* A large rest of a body goes straight to its buffer. */
		bool direct = w->rh_got == sizeof(w->rh) && w->rbuf &&
			      w->rh.len - w->rgot >= sizeof(w->inbuf);
		char *dst = direct ? w->rbuf + w->rgot : w->inbuf;
		size_t want = direct ? (size_t)w->rh.len - w->rgot : sizeof(w->inbuf);
		ssize_t r = read(w->res_fd, dst, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0 || errno != EAGAIN)
				w->eof = true;
			return;
		}
		if (direct) {
			w->rgot += (size_t)r;
			if (w->rgot == w->rh.len)
				result_done(p, w);
		} else {
			w->ioff = 0;
			w->ilen = (size_t)r;
		}
		if ((size_t)r < want) {
			consume(p, w);
			return;
		}
	}
}

/* --- the manager ------------------------------------------------------------ */

static void fifo_push(coil_process_pool_t *p, coil__xdone_t *d)
{
	d->next = NULL;
	*p->qtailp = d;
	p->qtailp = &d->next;
}

static coil__xdone_t *fifo_pop(coil_process_pool_t *p)
{
	coil__xdone_t *d = p->qhead;
	if (d) {
		p->qhead = d->next;
		if (!p->qhead)
			p->qtailp = &p->qhead;
		d->next = NULL;
	}
	return d;
}

/* Moves the submitted jobs to the FIFO, oldest first. */
static void take_incoming(coil_process_pool_t *p, bool close)
{
	coil__xdone_t *s = close ? atomic_exchange_explicit(&p->incoming, CLOSED_MARK,
							   memory_order_seq_cst)
				 : atomic_exchange_explicit(&p->incoming, NULL,
							   memory_order_seq_cst);
	if (s == CLOSED_MARK) {
		/* Already closed: put the mark back (take_incoming with
		 * close=false must never clear it). */
		atomic_store_explicit(&p->incoming, CLOSED_MARK, memory_order_seq_cst);
		return;
	}
	coil__xdone_t *prev = NULL;
	while (s) {
		coil__xdone_t *next = s->next;
		s->next = prev;
		prev = s;
		s = next;
	}
	while (prev) {
		coil__xdone_t *next = prev->next;
		fifo_push(p, prev);
		prev = next;
	}
}

/* Fails every job not yet sent. */
static void fail_fifo(coil_process_pool_t *p, int err, const char *msg)
{
	coil__xdone_t *d;
	while ((d = fifo_pop(p)))
		job_fail(p, coil__container_of(d, pjob_t, done), err, msg);
}

static void break_pool(coil_process_pool_t *p)
{
	atomic_store_explicit(&p->broken, true, memory_order_release);
	char msg[sizeof(p->last_death) + 80];
	snprintf(msg, sizeof(msg), "the process pool is broken: its workers keep dying "
		 "at start (%s)", p->last_death);
	fail_fifo(p, COIL_EBROKEN, msg);
}

/* Gives queued jobs to idle workers. */
static void dispatch(coil_process_pool_t *p)
{
	for (unsigned i = 0; i < p->n && p->qhead; i++) {
		pworker_t *w = &p->w[i];
		/* Not one that is dying, nor one let go by release_idle. */
		while (w->state == W_IDLE && !w->eof && !w->broken_pipe && w->job_fd >= 0 &&
		       p->qhead) {
			pjob_t *j = coil__container_of(fifo_pop(p), pjob_t, done);
			if (coil__xdone_abandoned(&j->done)) {
				/* Cancelled while queued: it never runs. */
				job_fail(p, j, -ECANCELED, NULL);
				continue;
			}
			start_job(p, w, j);
		}
	}
}

static bool any_alive(coil_process_pool_t *p)
{
	for (unsigned i = 0; i < p->n; i++)
		if (p->w[i].state != W_DEAD)
			return true;
	return false;
}

/* Acts on a shutdown request, once. */
static void begin_stop(coil_process_pool_t *p, int stop)
{
	p->closed = true;
	take_incoming(p, true);
	if (atomic_load_explicit(&p->cancel, memory_order_acquire))
		fail_fifo(p, -ECANCELED, NULL);
	if (stop == STOP_KILL) {
		fail_fifo(p, COIL_ECLOSED, "the process pool was shut down");
		for (unsigned i = 0; i < p->n; i++) {
			pworker_t *w = &p->w[i];
			if (w->state != W_DEAD) {
				w->killed = true;
				kill_worker(w);
			}
		}
	}
}

/* Under STOP_WAIT with nothing left to send: lets idle workers go (they
 * read end-of-file and exit). */
static void release_idle(coil_process_pool_t *p)
{
	for (unsigned i = 0; i < p->n; i++) {
		pworker_t *w = &p->w[i];
		if (w->state == W_IDLE && w->job_fd >= 0) {
			close(w->job_fd);
			w->job_fd = -1;
		}
	}
}

static void wake_manager(coil_process_pool_t *p)
{
	uint64_t one = 1;
	ssize_t r;
	do {
		r = write(p->wake_fd, &one, sizeof(one));
	} while (r < 0 && errno == EINTR);
}

/* Replaces dead workers while they are needed. */
static void respawn(coil_process_pool_t *p, int stop)
{
	if (atomic_load_explicit(&p->broken, memory_order_relaxed))
		return;
	if (stop == STOP_KILL || (stop == STOP_WAIT && !p->qhead))
		return;
	for (unsigned i = 0; i < p->n; i++) {
		pworker_t *w = &p->w[i];
		if (w->state != W_DEAD)
			continue;
		if (p->start_failures >= MAX_START_FAILURES) {
			break_pool(p);
			return;
		}
		int err = spawn_worker(p, w);
		if (err) {
			p->start_failures++;
			snprintf(p->last_death, sizeof(p->last_death),
				 "starting a worker failed: %s", strerror(-err));
		}
	}
}

static void manager_loop(coil_process_pool_t *p)
{
	struct pollfd *pfd = coil__libc_malloc((1 + 3 * (size_t)p->n) * sizeof(*pfd));
	int *who = coil__libc_malloc((1 + 3 * (size_t)p->n) * sizeof(*who));
	if (!pfd || !who) {
		/* Without these the pool cannot run: close it at once (later
		 * submits get COIL_ECLOSED) and reap the workers. */
		free(pfd);
		free(who);
		begin_stop(p, STOP_KILL);
		for (unsigned i = 0; i < p->n; i++)
			if (p->w[i].state != W_DEAD)
				reap_worker(p, &p->w[i]);
		coil__xbatch_flush(&p->batch);
		return;
	}
	for (;;) {
		int stop = atomic_load_explicit(&p->stop, memory_order_acquire);
		if (stop && !p->closed)
			begin_stop(p, stop);
		else
			take_incoming(p, false);
		if (atomic_load_explicit(&p->broken, memory_order_relaxed))
			break_pool(p);
		respawn(p, stop);
		dispatch(p);
		if (stop == STOP_WAIT && !p->qhead)
			release_idle(p);
		coil__xbatch_flush(&p->batch);
		if (stop && !p->qhead && !any_alive(p))
			break;

		nfds_t n = 0;
		pfd[n] = (struct pollfd){ .fd = p->wake_fd, .events = POLLIN };
		who[n++] = -1;
		for (unsigned i = 0; i < p->n; i++) {
			pworker_t *w = &p->w[i];
			if (w->state == W_DEAD)
				continue;
			if (!w->eof) {
				pfd[n] = (struct pollfd){ .fd = w->res_fd, .events = POLLIN };
				who[n++] = (int)i;
			}
			if (w->state == W_SENDING && !w->broken_pipe) {
				pfd[n] = (struct pollfd){ .fd = w->job_fd, .events = POLLOUT };
				who[n++] = (int)i;
			}
			if (w->pidfd >= 0) {
				pfd[n] = (struct pollfd){ .fd = w->pidfd, .events = POLLIN };
				who[n++] = (int)i;
			}
		}
		atomic_store_explicit(&p->sleeping, true, memory_order_seq_cst);
		coil__xdone_t *in = atomic_load_explicit(&p->incoming, memory_order_seq_cst);
		int timeout = (in && in != CLOSED_MARK) ||
			      atomic_load_explicit(&p->stop, memory_order_seq_cst) != stop ? 0 : -1;
		int rc = poll(pfd, n, timeout);
		atomic_store_explicit(&p->sleeping, false, memory_order_relaxed);
		if (rc < 0)
			continue; /* EINTR: go round */
		for (nfds_t k = 0; k < n; k++) {
			if (!pfd[k].revents)
				continue;
			if (who[k] < 0) {
				uint64_t v;
				if (read(p->wake_fd, &v, sizeof(v)) < 0) {
					/* EAGAIN: a racing read took it. */
				}
				continue;
			}
			pworker_t *w = &p->w[who[k]];
			if (w->state == W_DEAD)
				continue;
			if (pfd[k].fd == w->res_fd)
				read_results(p, w);
			else if (pfd[k].fd == w->job_fd && w->state == W_SENDING)
				send_more(p, w);
			else if (pfd[k].fd == w->pidfd)
				reap_worker(p, w);
		}
		/* Without pidfds, end-of-file on the result pipe is the sign
		 * of death (the worker's copy closes only when it exits). */
		for (unsigned i = 0; i < p->n; i++) {
			pworker_t *w = &p->w[i];
			if (w->state != W_DEAD && w->pidfd < 0 && w->eof)
				reap_worker(p, w);
		}
	}
	free(pfd);
	free(who);
}

static void *manager_main(void *arg)
{
	coil_process_pool_t *p = arg;
	pthread_setname_np(pthread_self(), "coil-procpool");
	int err = 0;
	unsigned i;
	for (i = 0; i < p->n; i++) {
		p->w[i].state = W_DEAD;
		p->w[i].job_fd = p->w[i].res_fd = p->w[i].pidfd = -1;
	}
	for (i = 0; i < p->n && !err; i++)
		err = spawn_worker(p, &p->w[i]);
	pthread_mutex_lock(&p->mu);
	p->started = true;
	p->start_err = err;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mu);
	if (err) {
		/* The pool is not made: take down what did start. */
		atomic_store_explicit(&p->stop, STOP_KILL, memory_order_release);
	}
	manager_loop(p);
	return NULL;
}

/* --- public API ------------------------------------------------------------------ */

void coil_process_pool_opts_init(coil_process_pool_opts_t *opts)
{
	if (!opts)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
}

static void pool_free(coil_process_pool_t *p)
{
	close(p->wake_fd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cond);
	free(p->w);
	coil__free(p, sizeof(*p));
}

int coil_process_pool_create(coil_process_pool_t **out,
			     const coil_process_pool_opts_t *opts)
{
	if (!out)
		return -EINVAL;
	if (!coil__process_exe())
		return COIL_EINVALSTATE;
	coil_process_pool_opts_t o;
	coil_process_pool_opts_init(&o);
	if (opts)
		memcpy(&o, opts, opts->size && opts->size < sizeof(o) ? opts->size : sizeof(o));
	unsigned n = o.workers ? o.workers : coil__executor_cpus();
	if (n > 1024)
		return -EINVAL;
	coil_process_pool_t *p = coil__calloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->n = n;
	p->w = coil__libc_calloc(n, sizeof(*p->w));
	p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!p->w || p->wake_fd < 0) {
		int err = p->w ? -errno : -ENOMEM;
		if (p->wake_fd >= 0)
			close(p->wake_fd);
		free(p->w);
		coil__free(p, sizeof(*p));
		return err;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cond, NULL);
	atomic_init(&p->incoming, NULL);
	atomic_init(&p->sleeping, false);
	atomic_init(&p->stop, STOP_NONE);
	atomic_init(&p->cancel, false);
	atomic_init(&p->broken, false);
	p->qtailp = &p->qhead;
	coil__xbatch_init(&p->batch);

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	/* The manager takes no signal: a write to a dead worker's pipe must
	 * not raise SIGPIPE in the program, and the program's signals are
	 * for its own threads. */
	sigset_t all;
	sigfillset(&all);
	pthread_attr_setsigmask_np(&attr, &all);
	int err = pthread_create(&p->thread, &attr, manager_main, p);
	pthread_attr_destroy(&attr);
	if (err) {
		pool_free(p);
		return -err;
	}
	pthread_mutex_lock(&p->mu);
	while (!p->started)
		pthread_cond_wait(&p->cond, &p->mu);
	err = p->start_err;
	pthread_mutex_unlock(&p->mu);
	if (err) {
		pthread_join(p->thread, NULL);
		pool_free(p);
		return err;
	}
	*out = p;
	return 0;
}

/* Makes a job for `name`; the input is set by the caller. */
static int pjob_new(pjob_t **out, const char *name)
{
	if (!name)
		return -EINVAL;
	size_t len = strlen(name);
	if (!len || len > COIL__PP_NAME_MAX)
		return -EINVAL;
	if (!coil__process_lookup(name, len))
		return -ENOENT;
	pjob_t *j = coil__calloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	memcpy(j->name, name, len + 1);
	j->name_len = (uint32_t)len;
	j->done.type = COIL__XJOB_PROCESS;
	*out = j;
	return 0;
}

static int pool_push(coil_process_pool_t *p, coil__xdone_t *d)
{
	if (atomic_load_explicit(&p->broken, memory_order_acquire))
		return COIL_EBROKEN;
	coil__xdone_t *h = atomic_load_explicit(&p->incoming, memory_order_relaxed);
	do {
		if (h == CLOSED_MARK)
			return COIL_ECLOSED;
		d->next = h;
	} while (!atomic_compare_exchange_weak_explicit(&p->incoming, &h, d,
							memory_order_seq_cst,
							memory_order_relaxed));
	if (atomic_load_explicit(&p->sleeping, memory_order_seq_cst) &&
	    atomic_exchange_explicit(&p->sleeping, false, memory_order_seq_cst))
		wake_manager(p);
	return 0;
}

/* Submits job j (input set) with a loop future. On failure j is freed
 * with its input detached (the caller decides what happens to it). */
static int submit_job(coil_future_t **out, coil_process_pool_t *p, pjob_t *j)
{
	coil_loop_t *loop = coil__running_loop;
	int rc = loop ? 0 : -EINVAL;
	coil_future_t *f = NULL;
	if (!rc)
		rc = coil_future_create(&f, loop);
	if (!rc) {
		j->done.fut = coil_future_ref(f);
		rc = pool_push(p, &j->done);
		if (rc) {
			coil_future_release(f);
			coil_future_release(f);
		}
	}
	if (rc) {
		j->in = NULL;
		coil__free(j, sizeof(*j));
		return rc;
	}
	*out = f;
	return 0;
}

int coil_process_pool_submit(coil_future_t **out, coil_process_pool_t *pool,
			     const char *name, const void *in, size_t in_len)
{
	if (!out || !pool || (!in && in_len))
		return -EINVAL;
	pjob_t *j;
	int rc = pjob_new(&j, name);
	if (rc)
		return rc;
	void *copy = NULL;
	if (in_len) {
		if (!(copy = coil__libc_malloc(in_len))) {
			coil__free(j, sizeof(*j));
			return -ENOMEM;
		}
		memcpy(copy, in, in_len);
	}
	j->in = copy;
	j->in_len = in_len;
	rc = submit_job(out, pool, j);
	if (rc)
		free(copy);
	return rc;
}

int coil_process_pool_submit_owned(coil_future_t **out, coil_process_pool_t *pool,
				   const char *name, coil_bytes_t *in)
{
	if (!out || !pool || !in || (!in->data && in->len))
		return -EINVAL;
	pjob_t *j;
	int rc = pjob_new(&j, name);
	if (rc)
		return rc;
	j->in = in->data;
	j->in_len = in->len;
	rc = submit_job(out, pool, j);
	if (!rc) {
		in->data = NULL;
		in->len = 0;
	}
	return rc;
}

int coil_process_pool_submit_threadsafe(coil_cfuture_t **out,
					coil_process_pool_t *pool, const char *name,
					const void *in, size_t in_len)
{
	if (!pool || (!in && in_len))
		return -EINVAL;
	pjob_t *j;
	int rc = pjob_new(&j, name);
	if (rc)
		return rc;
	if (in_len) {
		if (!(j->in = coil__libc_malloc(in_len))) {
			coil__free(j, sizeof(*j));
			return -ENOMEM;
		}
		memcpy(j->in, in, in_len);
	}
	j->in_len = in_len;
	coil_cfuture_t *f;
	if ((rc = coil_cfuture_create(&f))) {
		coil__process_job_free(&j->done);
		return rc;
	}
	j->done.cfut = f;
	j->done.is_cfut = true;
	if (out)
		coil_cfuture_ref(f);
	if ((rc = pool_push(pool, &j->done))) {
		if (out)
			coil_cfuture_release(f);
		coil_cfuture_release(f);
		coil__process_job_free(&j->done);
		return rc;
	}
	if (out)
		*out = f;
	return 0;
}

int coil_process_pool_run(coil_process_pool_t *pool, const char *name,
			  const void *in, size_t in_len, coil_bytes_t *out)
{
	if (!out)
		return -EINVAL;
	if (!coil_current_task())
		return COIL_EINVALSTATE;
	coil_future_t *f;
	int rc = coil_process_pool_submit(&f, pool, name, in, in_len);
	if (rc)
		return rc;
	void *r = NULL;
	rc = coil_await(f, &r);
	if (rc == 0) {
		/* The caller takes the bytes; the future keeps (and frees)
		 * only the empty holder. Nobody else holds the future now. */
		coil_bytes_t *b = r;
		*out = *b;
		b->data = NULL;
		b->len = 0;
	} else if (!coil_future_done(f)) {
		coil_future_cancel(f, NULL);
	}
	coil_future_release(f);
	return rc;
}

int coil_process_pool_shutdown(coil_process_pool_t *pool, bool wait,
			       bool cancel_futures)
{
	if (!pool)
		return -EINVAL;
	atomic_store_explicit(&pool->cancel, cancel_futures, memory_order_release);
	atomic_store_explicit(&pool->stop, wait ? STOP_WAIT : STOP_KILL, memory_order_seq_cst);
	wake_manager(pool);
	pthread_join(pool->thread, NULL);
	pool_free(pool);
	return 0;
}

size_t coil_process_pool_pids(coil_process_pool_t *pool, int *pids, size_t cap)
{
	if (!pool)
		return 0;
	size_t k = 0;
	pthread_mutex_lock(&pool->mu);
	for (unsigned i = 0; i < pool->n; i++) {
		if (!pool->w[i].pid)
			continue;
		if (pids && k < cap)
			pids[k] = (int)pool->w[i].pid;
		k++;
	}
	pthread_mutex_unlock(&pool->mu);
	return k;
}
