/*
 * io/process.c: subprocesses (coil/process.h).
 *
 * Spawning is posix_spawn with file actions: pipes (both ends close-on-
 * exec; the child's end is duplicated onto 0, 1 or 2, which clears the
 * flag there), /dev/null opened in the child, descriptors of the caller's
 * duplicated. Every source descriptor is first copied to a number >= 3, so
 * that no dup2 onto 0..2 can clobber the source of a later one (a child's
 * stdout that is the parent's descriptor 0 while stdin is a pipe, say).
 *
 * The exit. A process has a pidfd (pidfd_open right after the spawn: the
 * child cannot be reaped meanwhile by anyone but a program that reaps every
 * child, so the id still names it). Waiting is coil_poll(pidfd, POLLIN) in
 * the ring, then waitid(P_PIDFD, WNOHANG). The reaping is done under the
 * process's mutex, by whichever task or thread gets there first, and it is
 * the only place that ends the child's id: a signal sent under the same
 * mutex before the child was reaped (kill(2) in the fallback without a
 * pidfd) therefore cannot reach a process that reused the id.
 *
 * communicate runs its readers (stdout, stderr) in tasks of their own while
 * the calling task writes the input, so neither direction waits for the
 * other: a child that writes a lot before it reads, or reads a lot before
 * it writes, cannot deadlock it. The bytes read are kept in the process
 * (memory from malloc, handed over as coil_bytes_t), and so is the unsent
 * input (in the stdin stream's write buffer), so that a call that timed
 * out or was cancelled loses nothing and the next one goes on. The
 * calling task always waits for its reader tasks before it returns.
 *
 * The reaper. A process freed before its child was reaped becomes a node
 * of the reaper's list (the object is kept, its streams and buffers
 * freed). One detached thread, started on demand, blocks every signal,
 * waits in poll() on the list's pidfds and an eventfd that announces new
 * nodes, reaps what exited and frees those nodes, and exits when the list
 * is empty.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coil/process.h"
#include "coil/io.h"
#include "op.h"
#include "pidfd.h"
#include "stream_int.h"

extern char **environ;

/* The smallest room a reader gives each read of the output. */
#define READ_MIN (64 * 1024)
/* The fallback without a pidfd polls the child this often, at most. */
#define POLL_MAX_NS (20 * 1000 * 1000)

typedef struct obuf {
	char *data;               /* from malloc: handed out as coil_bytes_t */
	size_t len, cap;
	bool done;                /* read to the end */
} obuf_t;

typedef struct reader {
	coil_process_t *p;
	unsigned i;               /* 1: stdout, 2: stderr */
	int64_t deadline;
} reader_t;

struct coil_process {
	pid_t pid;
	int pidfd;                /* -1: no pidfd, the waits poll */
	coil_stream_t *io[3];     /* the pipes' streams, or NULL */
	pthread_mutex_t mu;       /* reaped, lost, returncode; the reaping */
	bool reaped;              /* the child's id is gone */
	bool lost;                /* reaped by someone else: -ECHILD */
	int returncode;
	/* communicate: one calling task at a time. */
	bool in_taken;            /* the input went to the stdin stream */
	bool in_done;             /* stdin was written and closed */
	obuf_t ob[2];             /* stdout, stderr */
	reader_t rd[2];
	/* The reaper's list, once freed (rp.mu). */
	coil_process_t *rnext;
};

/* Tests: take the path of kernels without pidfd_open. */
static atomic_bool force_polling;

void coil__process_force_polling(bool on)
{
	atomic_store_explicit(&force_polling, on, memory_order_relaxed);
}

/* Set once pidfd_open said ENOSYS: it is not asked again. */
static atomic_bool no_pidfd;

/* A pidfd for the child, or -1 with ENOSYS where the tests force the path
 * without one or the kernel lacks pidfd_open. */
static int open_pidfd(pid_t pid)
{
	if (atomic_load_explicit(&force_polling, memory_order_relaxed) ||
	    atomic_load_explicit(&no_pidfd, memory_order_relaxed)) {
		errno = ENOSYS;
		return -1;
	}
	int fd = coil__pidfd_open(pid);
	if (fd < 0 && errno == ENOSYS)
		atomic_store_explicit(&no_pidfd, true, memory_order_relaxed);
	return fd;
}

/* --- options ------------------------------------------------------------------ */

void coil_process_opts_init(coil_process_opts_t *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
	opts->stdin_fd = COIL_PROCESS_INHERIT;
	opts->stdout_fd = COIL_PROCESS_INHERIT;
	opts->stderr_fd = COIL_PROCESS_INHERIT;
}

static void opts_read(coil_process_opts_t *o, const coil_process_opts_t *in)
{
	coil_process_opts_init(o);
	if (!in)
		return;
	size_t n = in->size < sizeof(*o) ? in->size : sizeof(*o);
	if (n > sizeof(o->size))
		memcpy((char *)o + sizeof(o->size), (const char *)in + sizeof(o->size),
		       n - sizeof(o->size));
	o->size = sizeof(*o);
}

static bool mode_ok(int v, unsigned i)
{
	return v >= 0 || v == COIL_PROCESS_PIPE || v == COIL_PROCESS_DEVNULL ||
	       v == COIL_PROCESS_INHERIT || (v == COIL_PROCESS_STDOUT && i == 2);
}

/* --- reaping --------------------------------------------------------------- */

/*
 * Reaps the child if it has exited. Returns 0 (reaped, now or before),
 * -EAGAIN (it runs), or -ECHILD (someone else reaped it). Any thread.
 */
static int try_reap(coil_process_t *p)
{
	pthread_mutex_lock(&p->mu);
	if (p->reaped) {
		int rc = p->lost ? -ECHILD : 0;
		pthread_mutex_unlock(&p->mu);
		return rc;
	}
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	int r;
	do {
		if (p->pidfd >= 0)
			r = waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG);
		else
			r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG);
		/* 5.3 has pidfds but not P_PIDFD: the id is as good, the
		 * child being ours and not reaped. */
		if (r < 0 && errno == EINVAL && p->pidfd >= 0)
			r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG);
	} while (r < 0 && errno == EINTR);
	int rc;
	if (r < 0) {
		rc = -errno;
		if (rc == -ECHILD) {
			p->reaped = true;
			p->lost = true;
		}
	} else if (si.si_pid == 0) {
		rc = -EAGAIN;
	} else {
		p->returncode = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
		p->reaped = true;
		rc = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* --- the reaper thread ------------------------------------------------------ */

static struct {
	pthread_mutex_t mu;
	coil_process_t *list;     /* freed processes not reaped yet */
	size_t n;
	int efd;                  /* wakes the thread; -1 when none runs */
	bool running;
} rp = { .mu = PTHREAD_MUTEX_INITIALIZER, .efd = -1 };

static void node_free(coil_process_t *p)
{
	if (p->pidfd >= 0)
		close(p->pidfd);
	pthread_mutex_destroy(&p->mu);
	coil__free(p, sizeof(*p));
}

static void *reaper_main(void *arg)
{
	(void)arg;
	struct pollfd *fds = NULL;
	size_t fcap = 0;
	for (;;) {
		pthread_mutex_lock(&rp.mu);
		coil_process_t **pp = &rp.list, *p;
		while ((p = *pp)) {
			if (try_reap(p) != -EAGAIN) {
				*pp = p->rnext;
				rp.n--;
				node_free(p);
			} else {
				pp = &p->rnext;
			}
		}
		if (!rp.list) {
			rp.running = false;
			close(rp.efd);
			rp.efd = -1;
			pthread_mutex_unlock(&rp.mu);
			free(fds);
			return NULL;
		}
		if (fcap < rp.n + 1) {
			struct pollfd *nf = coil__libc_realloc(fds, (rp.n + 1) * sizeof(*nf));
			if (nf) {
				fds = nf;
				fcap = rp.n + 1;
			}
		}
		/* Without room for every pidfd (or with a child that has
		 * none), poll on a timer as well. */
		int timeout = fcap < rp.n + 1 ? POLL_MAX_NS / 1000000 : -1;
		nfds_t k = 0;
		if (fds) {
			fds[k++] = (struct pollfd){ .fd = rp.efd, .events = POLLIN };
			for (p = rp.list; p && k < fcap; p = p->rnext) {
				if (p->pidfd >= 0)
					fds[k++] = (struct pollfd){ .fd = p->pidfd, .events = POLLIN };
				else
					timeout = POLL_MAX_NS / 1000000;
			}
		}
		int efd = rp.efd;
		pthread_mutex_unlock(&rp.mu);
		if (k)
			poll(fds, k, timeout);
		else
			usleep(POLL_MAX_NS / 1000);
		uint64_t v;
		ssize_t r = read(efd, &v, sizeof(v));
		(void)r;
	}
}

/*
 * fork() copies the list but not the thread, and the children in the list
 * are the parent's, not the new process's: the child of a fork starts
 * with an empty list and no reaper (rp.mu is held across the fork so that
 * the child's copy is consistent).
 */
static void rp_prepare(void)
{
	pthread_mutex_lock(&rp.mu);
}

static void rp_parent(void)
{
	pthread_mutex_unlock(&rp.mu);
}

static void rp_child(void)
{
	coil_process_t *p = rp.list;
	while (p) {
		coil_process_t *next = p->rnext;
		node_free(p);
		p = next;
	}
	rp.list = NULL;
	rp.n = 0;
	if (rp.efd >= 0)
		close(rp.efd);
	rp.efd = -1;
	rp.running = false;
	pthread_mutex_unlock(&rp.mu);
}

static void rp_init(void)
{
	pthread_atfork(rp_prepare, rp_parent, rp_child);
}

/* Hands a freed process whose child runs to the reaper thread. */
static void reaper_add(coil_process_t *p)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, rp_init);
	pthread_mutex_lock(&rp.mu);
	p->rnext = rp.list;
	rp.list = p;
	rp.n++;
	if (rp.running) {
		uint64_t one = 1;
		ssize_t r = write(rp.efd, &one, sizeof(one));
		(void)r;
		pthread_mutex_unlock(&rp.mu);
		return;
	}
	if (rp.efd < 0)
		rp.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rp.efd >= 0) {
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&at, 64 * 1024);
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		pthread_t th;
		rp.running = pthread_create(&th, &at, reaper_main, NULL) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&at);
	}
	/* Without a thread the node waits in the list: the next process
	 * freed tries to start one again. */
	pthread_mutex_unlock(&rp.mu);
}

/* Tests: the freed processes the reaper has not reaped yet. */
size_t coil__process_reaper_pending(void)
{
	pthread_mutex_lock(&rp.mu);
	size_t n = rp.n;
	pthread_mutex_unlock(&rp.mu);
	return n;
}

/* --- spawning ------------------------------------------------------------------ */

/*
 * A write to a pipe with no reader raises SIGPIPE in the writing thread;
 * with the default action that ends the program. See coil/process.h.
 */
static void ignore_default_sigpipe(void)
{
	struct sigaction cur;
	if (sigaction(SIGPIPE, NULL, &cur) != 0)
		return;
	if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) {
		struct sigaction ign;
		memset(&ign, 0, sizeof(ign));
		ign.sa_handler = SIG_IGN;
		sigemptyset(&ign.sa_mask);
		sigaction(SIGPIPE, &ign, NULL);
	}
}

/* A close-on-exec copy of fd numbered 3 or more. Returns it or -errno. */
static int dup_high(int fd)
{
	int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	return n < 0 ? -errno : n;
}

/* Joins a and b with a '/' into out. Returns 0 or -ENAMETOOLONG. */
static int join_path(char *out, size_t cap, const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	bool slash = alen && a[alen - 1] != '/';
	if (alen + slash + blen + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(out, a, alen);
	if (slash)
		out[alen] = '/';
	memcpy(out + alen + slash, b, blen + 1);
	return 0;
}

/* Whether path (relative ones from cwd, where the child will look) is a
 * file this process may execute. Returns 0, -ENOENT, -EACCES, ... */
static int check_exec(const char *path, const char *cwd)
{
	char buf[PATH_MAX];
	if (cwd && path[0] != '/') {
		int rc = join_path(buf, sizeof(buf), cwd, strlen(cwd), path);
		if (rc)
			return rc;
		path = buf;
	}
	struct stat st;
	if (stat(path, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EACCES; /* what execve says of a directory */
	if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) != 0)
		return -errno;
	return 0;
}

/*
 * Finds the program as execvp would: a name with a '/' is the path; else
 * each directory of PATH is tried in turn (an empty entry is the working
 * directory), PATH being the child's (env) or, without env, the caller's,
 * as in Python's subprocess. The first executable file wins; if none,
 * -EACCES when one was found that may not be executed, else -ENOENT. The
 * path found goes to out.
 *
 * Why here: glibc's posix_spawn reports a failed exec itself, through
 * memory the vfork'd child shares with its parent, but where the clone
 * cannot share it (under Valgrind, which makes it a fork) the failure is
 * only the child's exit status 127. Looking first makes the common
 * failures (no such program, not executable) errors of the spawn
 * everywhere; what remains (the file vanishes in between, a bad binary)
 * glibc reports.
 */
static int find_program(const char *file, const char *const *env, const char *cwd,
			char *out, size_t cap)
{
	if (strchr(file, '/')) {
		if (strlen(file) + 1 > cap)
			return -ENAMETOOLONG;
		strcpy(out, file);
		return check_exec(file, cwd);
	}
	const char *path = NULL;
	if (env) {
		for (const char *const *e = env; *e; e++)
			if (!strncmp(*e, "PATH=", 5)) {
				path = *e + 5;
				break;
			}
	} else {
		path = getenv("PATH");
	}
	if (!path)
		path = "/bin:/usr/bin"; /* glibc's default, confstr(_CS_PATH) */
	int err = -ENOENT;
	for (const char *p = path;; ) {
		const char *end = strchrnul(p, ':');
		/* An empty entry: the working directory. */
		const char *dir = end > p ? p : ".";
		size_t dlen = end > p ? (size_t)(end - p) : 1;
		if (join_path(out, cap, dir, dlen, file) == 0) {
			int rc = check_exec(out, cwd);
			if (rc == 0)
				return 0;
			if (rc == -EACCES || rc == -EPERM)
				err = -EACCES;
		}
		if (!*end)
			break;
		p = end + 1;
	}
	return err;
}

/* The working directory must be one the child can enter. */
static int check_cwd(const char *cwd)
{
	struct stat st;
	if (stat(cwd, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (faccessat(AT_FDCWD, cwd, X_OK, AT_EACCESS) != 0)
		return -errno;
	return 0;
}

/* Kills and reaps a child we cannot hand out (a failure after the spawn):
 * nothing is left behind. */
static void abandon_child(pid_t pid, int pidfd)
{
	if (pidfd < 0 || coil__pidfd_send_signal(pidfd, SIGKILL) != 0)
		kill(pid, SIGKILL);
	siginfo_t si;
	while (waitid(P_PID, (id_t)pid, &si, WEXITED) < 0 && errno == EINTR)
		;
	if (pidfd >= 0)
		close(pidfd);
}

int coil_process_spawn(coil_process_t **out, const char *const argv[],
		       const coil_process_opts_t *opts)
{
	if (!out || !argv || !argv[0] || !argv[0][0])
		return -EINVAL;
	coil_process_opts_t o;
	opts_read(&o, opts);
	int mode[3] = { o.stdin_fd, o.stdout_fd, o.stderr_fd };
	for (unsigned i = 0; i < 3; i++)
		if (!mode_ok(mode[i], i))
			return -EINVAL;
	/* Checked now: a bad option found once the child runs would leave
	 * the child to kill. */
	coil_stream_opts_t so;
	int rc = coil__stream_opts_read(&so, o.stream);
	if (rc)
		return rc;
	if (o.cwd && (rc = check_cwd(o.cwd)))
		return rc;
	char prog[PATH_MAX];
	if ((rc = find_program(argv[0], o.env, o.cwd, prog, sizeof(prog))))
		return rc;
	coil_process_t *p = coil__calloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	p->pidfd = -1;

	int mine[3] = { -1, -1, -1 };  /* this side of each pipe */
	int src[3] = { -1, -1, -1 };   /* what the child's 0, 1, 2 come from */
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	bool fa_ok = false, at_ok = false;
	if (mode[0] == COIL_PROCESS_PIPE)
		ignore_default_sigpipe();
	for (unsigned i = 0; i < 3; i++) {
		int fd = -1;
		if (mode[i] == COIL_PROCESS_PIPE) {
			int pfd[2];
			if (pipe2(pfd, O_CLOEXEC) != 0) {
				rc = -errno;
				goto fail;
			}
			mine[i] = i == 0 ? pfd[1] : pfd[0];
			fd = i == 0 ? pfd[0] : pfd[1];
			if (fd < 3) {
				int h = dup_high(fd);
				close(fd);
				if (h < 0) {
					rc = h;
					goto fail;
				}
				fd = h;
			}
		} else if (mode[i] >= 0) {
			if ((fd = dup_high(mode[i])) < 0) {
				rc = fd;
				goto fail;
			}
		}
		src[i] = fd;
	}
	if ((rc = -posix_spawn_file_actions_init(&fa)))
		goto fail;
	fa_ok = true;
	if ((rc = -posix_spawnattr_init(&at)))
		goto fail;
	at_ok = true;
	static const char *const devnull = "/dev/null";
	for (int i = 0; i < 3; i++) {
		if (src[i] >= 0)
			rc = -posix_spawn_file_actions_adddup2(&fa, src[i], i);
		else if (mode[i] == COIL_PROCESS_DEVNULL)
			rc = -posix_spawn_file_actions_addopen(&fa, i, devnull,
							       i == 0 ? O_RDONLY : O_WRONLY, 0);
		else if (mode[i] == COIL_PROCESS_STDOUT)
			rc = -posix_spawn_file_actions_adddup2(&fa, 1, 2);
		if (rc)
			goto fail;
	}
	if (o.cwd && (rc = -posix_spawn_file_actions_addchdir_np(&fa, o.cwd)))
		goto fail;
	if (!o.inherit_fds && (rc = -posix_spawn_file_actions_addclosefrom_np(&fa, 3)))
		goto fail;
	sigset_t none, def;
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGXFSZ);
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	if (o.new_session)
		flags |= POSIX_SPAWN_SETSID;
	if ((rc = -posix_spawnattr_setsigmask(&at, &none)) ||
	    (rc = -posix_spawnattr_setsigdefault(&at, &def)) ||
	    (rc = -posix_spawnattr_setflags(&at, flags)))
		goto fail;
	char *const *envp = o.env ? (char *const *)o.env : environ;
	pid_t pid;
	rc = -posix_spawn(&pid, prog, &fa, &at, (char *const *)argv, envp);
	if (rc)
		goto fail;
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	fa_ok = at_ok = false;
	for (unsigned i = 0; i < 3; i++)
		if (src[i] >= 0) {
			close(src[i]);
			src[i] = -1;
		}
	p->pid = pid;
	p->pidfd = open_pidfd(pid);
	for (unsigned i = 0; i < 3; i++) {
		if (mine[i] < 0)
			continue;
		int fd = mine[i];
		mine[i] = -1;
		/* The stream owns fd from here on, also if this fails. */
		if ((rc = coil_stream_from_fd(&p->io[i], fd, &so))) {
			abandon_child(pid, p->pidfd);
			p->pidfd = -1;
			goto fail;
		}
	}
	*out = p;
	return 0;
fail:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (at_ok)
		posix_spawnattr_destroy(&at);
	for (unsigned i = 0; i < 3; i++) {
		if (mine[i] >= 0)
			close(mine[i]);
		if (src[i] >= 0)
			close(src[i]);
		coil_stream_free(p->io[i]);
	}
	if (p->pidfd >= 0)
		close(p->pidfd);
	pthread_mutex_destroy(&p->mu);
	coil__free(p, sizeof(*p));
	return rc;
}

pid_t coil_process_pid(const coil_process_t *p)
{
	return p->pid;
}

coil_stream_t *coil_process_stdin(coil_process_t *p)
{
	return p->io[0];
}

coil_stream_t *coil_process_stdout(coil_process_t *p)
{
	return p->io[1];
}

coil_stream_t *coil_process_stderr(coil_process_t *p)
{
	return p->io[2];
}

/* --- exit status and signals ------------------------------------------------- */

int coil_process_returncode(coil_process_t *p, int *returncode)
{
	if (!p)
		return -EINVAL;
	int rc = try_reap(p);
	if (rc == 0 && returncode)
		*returncode = p->returncode;
	return rc;
}

int coil_process_wait(coil_process_t *p, int *returncode, int64_t timeout_ns)
{
	if (!p || !coil__timeout_ok(timeout_ns))
		return -EINVAL;
	if (!coil_current_task())
		return COIL_EINVALSTATE;
	int64_t deadline = coil__deadline(timeout_ns);
	int64_t nap = 1000000;
	bool ready = false;
	for (;;) {
		int rc = try_reap(p);
		if (rc == 0 && returncode)
			*returncode = p->returncode;
		if (rc != -EAGAIN)
			return rc;
		int64_t left = coil__remaining(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		if (p->pidfd >= 0 && !ready) {
			rc = coil_poll(p->pidfd, POLLIN, left);
			if (rc < 0)
				return rc;
			/* Readable: the child has exited, and the waitid above
			 * reaps it. Should it not (a kernel that reports the
			 * exit before the child can be reaped), nap instead of
			 * polling a descriptor that stays readable. */
			ready = true;
			continue;
		}
		rc = coil_sleep_ns(left == COIL_FOREVER || left > nap ? nap : left);
		if (rc)
			return rc;
		if (nap < POLL_MAX_NS)
			nap *= 2;
	}
}

int coil_process_send_signal(coil_process_t *p, int sig)
{
	if (!p || sig < 0 || sig >= _NSIG)
		return -EINVAL;
	int rc = 0;
	/* Under the mutex: the child cannot be reaped meanwhile, so its id
	 * (in the fallback without a pidfd) still names it. */
	pthread_mutex_lock(&p->mu);
	if (p->reaped)
		rc = -ESRCH;
	else if (p->pidfd >= 0 ? coil__pidfd_send_signal(p->pidfd, sig) != 0
			       : kill(p->pid, sig) != 0)
		rc = -errno;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

int coil_process_terminate(coil_process_t *p)
{
	return coil_process_send_signal(p, SIGTERM);
}

int coil_process_kill(coil_process_t *p)
{
	return coil_process_send_signal(p, SIGKILL);
}

/* --- communicate ---------------------------------------------------------------- */

/* Reads stream i to its end into ob[i - 1]. Returns 0 or the error that
 * stopped it (the bytes read stay). */
static int read_all(coil_process_t *p, unsigned i, int64_t deadline)
{
	obuf_t *b = &p->ob[i - 1];
	coil_stream_t *s = p->io[i];
	while (!b->done) {
		if (b->cap - b->len < READ_MIN) {
			size_t ncap = b->cap * 2 > b->len + READ_MIN ? b->cap * 2
								      : b->len + READ_MIN;
			char *nd = coil__libc_realloc(b->data, ncap);
			if (!nd)
				return -ENOMEM;
			b->data = nd;
			b->cap = ncap;
		}
		ssize_t n = coil_stream_read(s, b->data + b->len, b->cap - b->len,
					     coil__remaining(deadline));
		if (n < 0)
			return (int)n;
		if (n == 0)
			b->done = true;
		b->len += (size_t)n;
	}
	return 0;
}

static int reader_main(void *arg, void **result)
{
	(void)result;
	reader_t *r = arg;
	return read_all(r->p, r->i, r->deadline);
}

/*
 * Waits for a reader task to end, whatever comes: it writes into the
 * process and reads r, so it must be gone before communicate returns.
 * Returns the task's code; *cancelled tells whether the calling task was
 * cancelled meanwhile. A task force-closed by its loop's shutdown cannot
 * wait any more: it gives up (COIL_ECLOSED) after cancelling the reader.
 */
static int join_reader(coil_task_t *t, bool *cancelled)
{
	coil_future_t *f = coil_task_future(t);
	for (;;) {
		int rc = coil_await(f, NULL);
		if (coil_future_done(f))
			return rc;
		if (rc == COIL_ECLOSED) {
			coil_task_cancel(t, NULL);
			return rc;
		}
		/* The caller was cancelled: so is the reader, which ends
		 * soon, keeping what it read. */
		*cancelled = true;
		coil_task_cancel(t, NULL);
	}
}

/* Hands the bytes of ob over to *out (or drops them). */
static void give(obuf_t *b, coil_bytes_t *out)
{
	if (out && b->len) {
		out->data = b->data;
		out->len = b->len;
	} else {
		free(b->data);
		if (out) {
			out->data = NULL;
			out->len = 0;
		}
	}
	b->data = NULL;
	b->len = b->cap = 0;
}

/* Writes the input (or what a former call left of it) and closes stdin.
 * EPIPE and ECONNRESET mean the child is gone: not an error here. */
static int feed(coil_process_t *p, const void *input, size_t len, int64_t deadline)
{
	coil_stream_t *s = p->io[0];
	int rc = 0;
	if (!p->in_taken && len) {
		rc = coil_stream_write_all(s, input, len, coil__remaining(deadline));
		/* Refused before taking anything: the next call brings it. */
		p->in_taken = rc != -EBUSY && rc != -EINVAL;
	} else {
		p->in_taken = true;
		rc = coil_stream_drain(s, coil__remaining(deadline));
	}
	if (rc == 0)
		rc = coil_stream_write_eof(s, coil__remaining(deadline));
	if (rc == -EPIPE || rc == -ECONNRESET)
		rc = 0;
	if (rc == 0)
		p->in_done = true;
	return rc;
}

int coil_process_communicate(coil_process_t *p, const void *input, size_t len,
			     coil_bytes_t *out, coil_bytes_t *err,
			     int *returncode, int64_t timeout_ns)
{
	if (!p || (!input && len) || len > (size_t)SSIZE_MAX ||
	    !coil__timeout_ok(timeout_ns))
		return -EINVAL;
	if (len && (!p->io[0] || p->in_taken))
		return -EINVAL;
	if (!coil_current_task())
		return COIL_EINVALSTATE;
	int64_t deadline = coil__deadline(timeout_ns);
	coil_task_t *rt[2] = { NULL, NULL };
	int rc = 0;
	for (unsigned k = 0; k < 2; k++) {
		if (!p->io[k + 1] || p->ob[k].done)
			continue;
		p->rd[k] = (reader_t){ p, k + 1, deadline };
		coil_spawn_opts_t so = { .name = k ? "communicate-stderr"
						  : "communicate-stdout" };
		if ((rc = coil_spawn(&rt[k], reader_main, &p->rd[k], &so)))
			break;
	}
	if (rc == 0 && p->io[0] && !p->in_done)
		rc = feed(p, input, len, deadline);
	bool cancelled = rc == -ECANCELED;
	if (rc && rc != -ETIMEDOUT) {
		/* The readers would only wait for the timeout: stop them. */
		for (unsigned k = 0; k < 2; k++)
			if (rt[k])
				coil_task_cancel(rt[k], NULL);
	}
	int rrc[2] = { 0, 0 };
	for (unsigned k = 0; k < 2; k++) {
		if (!rt[k])
			continue;
		rrc[k] = join_reader(rt[k], &cancelled);
		coil_task_detach(rt[k]);
	}
	if (cancelled)
		return -ECANCELED;
	if (rc)
		return rc;
	for (unsigned k = 0; k < 2; k++)
		if (rrc[k])
			return rrc[k];
	int code = 0;
	if ((rc = coil_process_wait(p, &code, coil__remaining(deadline))))
		return rc;
	give(&p->ob[0], out);
	give(&p->ob[1], err);
	if (returncode)
		*returncode = code;
	return 0;
}

/* --- freeing ------------------------------------------------------------------ */

void coil_process_free(coil_process_t *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < 3; i++) {
		coil_stream_free(p->io[i]);
		p->io[i] = NULL;
	}
	for (unsigned k = 0; k < 2; k++)
		give(&p->ob[k], NULL);
	if (try_reap(p) == -EAGAIN) {
		reaper_add(p);
		return;
	}
	node_free(p);
}
