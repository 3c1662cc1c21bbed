/*
 * runtime/executor/process_worker.c: the registry of process functions, the
 * opt-in coil_process_pool_main, and what a worker process does.
 *
 * A worker is the program's own binary started again by a pool with
 * COIL__PP_ENV set. main() registers the functions and calls
 * coil_process_pool_main, which recognises the variable and never returns:
 * it reads jobs from fd 3, runs them one at a time on this (main) thread,
 * writes each result to fd 4, and exits with status 0 at end-of-file. The
 * registry is a plain array behind a mutex: registrations happen at
 * start-up, lookups once per job.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "alloc.h"
#include "core.h"
#include "process_proto.h"

typedef struct entry {
	char *name;
	size_t len;
	coil_process_fn fn;
} entry_t;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static entry_t *reg;           /* under reg_mu */
static size_t nreg, capreg;    /* under reg_mu */

/* Set once by coil_process_pool_main, read-only afterwards (published by
 * the release store of `opted_in`). */
static char *saved_exe;
static char **saved_argv;
static atomic_bool opted_in;

void coil_bytes_free(coil_bytes_t *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

int coil_process_register(const char *name, coil_process_fn fn)
{
	if (!name || !fn)
		return -EINVAL;
	size_t len = strlen(name);
	if (!len || len > COIL__PP_NAME_MAX)
		return -EINVAL;
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < nreg; i++) {
		if (reg[i].len == len && !memcmp(reg[i].name, name, len)) {
			int rc = reg[i].fn == fn ? 0 : -EEXIST;
			pthread_mutex_unlock(&reg_mu);
			return rc;
		}
	}
	if (nreg == capreg) {
		size_t cap = capreg ? capreg * 2 : 16;
		entry_t *n = realloc(reg, cap * sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&reg_mu);
			return -ENOMEM;
		}
		reg = n;
		capreg = cap;
	}
	char *copy = strdup(name);
	if (!copy) {
		pthread_mutex_unlock(&reg_mu);
		return -ENOMEM;
	}
	reg[nreg++] = (entry_t){ copy, len, fn };
	pthread_mutex_unlock(&reg_mu);
	return 0;
}

coil_process_fn coil__process_lookup(const char *name, size_t len)
{
	coil_process_fn fn = NULL;
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < nreg; i++) {
		if (reg[i].len == len && !memcmp(reg[i].name, name, len)) {
			fn = reg[i].fn;
			break;
		}
	}
	pthread_mutex_unlock(&reg_mu);
	return fn;
}

const char *coil__process_exe(void)
{
	return atomic_load_explicit(&opted_in, memory_order_acquire) ? saved_exe : NULL;
}

char *const *coil__process_argv(void)
{
	return atomic_load_explicit(&opted_in, memory_order_acquire) ? saved_argv : NULL;
}

/* --- the worker ------------------------------------------------------------ */

/*
 * The job pipe, read through a buffer: a small job (header, name, input)
 * usually arrives whole, and one read() then takes it all.
 */
static struct {
	int fd;
	size_t off, len;
	char buf[64 * 1024];
} rd;

/* Reads exactly n bytes. Returns n, 0 at end-of-file before the first byte,
 * or -1 (an error, or end-of-file in the middle). */
static ssize_t read_full(void *dst, size_t n)
{
	size_t got = 0;
	while (got < n) {
		if (rd.off < rd.len) {
			size_t k = rd.len - rd.off;
			if (k > n - got)
				k = n - got;
			memcpy((char *)dst + got, rd.buf + rd.off, k);
			rd.off += k;
			got += k;
			continue;
		}
		/* Large remainders go straight to their place. */
		bool direct = n - got >= sizeof(rd.buf);
		ssize_t r = direct ? read(rd.fd, (char *)dst + got, n - got)
				   : read(rd.fd, rd.buf, sizeof(rd.buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 && got == 0 ? 0 : -1;
		if (direct) {
			got += (size_t)r;
		} else {
			rd.off = 0;
			rd.len = (size_t)r;
		}
	}
	return (ssize_t)n;
}

/* Writes the header and the data with as few system calls as the pipe
 * allows (one, for anything that fits in it). */
static int send_result(int fd, uint32_t magic, int code, const void *data, size_t len)
{
	coil__pp_res_hdr_t h = { magic, code, len };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, len } };
	int n = len ? 2 : 1;
	struct iovec *v = iov;
	while (n) {
		ssize_t r = writev(fd, v, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		while (n && (size_t)r >= v->iov_len) {
			r -= (ssize_t)v->iov_len;
			v++;
			n--;
		}
		if (n) {
			v->iov_base = (char *)v->iov_base + r;
			v->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static void worker_exit(int status)
{
	fflush(NULL);
	_exit(status);
}

/* Runs one job that was read; sends its result. Returns -1 if the pipe
 * to the pool broke. */
static int run_job(int out_fd, const char *name, size_t name_len, void *in,
		   size_t in_len)
{
	coil_process_fn fn = coil__process_lookup(name, name_len);
	coil_bytes_t out = { NULL, 0 };
	char *msg = NULL;
	int rc;
	if (!fn) {
		rc = -ENOENT;
		coil_errorf("no process function named \"%.*s\" is registered in the "
			    "worker (register it before coil_process_pool_main)",
			    (int)name_len, name);
	} else {
		rc = fn(in, in_len, &out);
		if (rc > 0)
			rc = 0;
		if (rc == 0 && out.len && !out.data) {
			rc = -EINVAL;
			coil_errorf("process function \"%.*s\" returned %zu bytes of "
				    "output without data", (int)name_len, name, out.len);
		}
	}
	msg = coil__take_errmsg();
	int sent;
	if (rc < 0)
		sent = send_result(out_fd, COIL__PP_RES_MAGIC, rc, msg, msg ? strlen(msg) : 0);
	else
		sent = send_result(out_fd, COIL__PP_RES_MAGIC, 0, out.data, out.len);
	coil__strfree(msg);
	coil_bytes_free(&out);
	return sent;
}

/* Inputs up to this size keep their buffer for the next job: a fresh
 * buffer costs a page fault per page (12 us each on some machines), more
 * than many jobs compute. Bigger ones are given back at once. */
#define KEEP_INPUT_MAX ((size_t)16 << 20)

/* Serves jobs until end-of-file on in_fd. */
static void serve(int in_fd, int out_fd)
{
	rd.fd = in_fd;
	if (send_result(out_fd, COIL__PP_HELLO_MAGIC, 0, NULL, 0))
		worker_exit(1);
	char name[COIL__PP_NAME_MAX + 1];
	void *kept = NULL;
	size_t kept_cap = 0;
	for (;;) {
		coil__pp_job_hdr_t h;
		ssize_t r = read_full(&h, sizeof(h));
		if (r == 0)
			worker_exit(0);
		if (r < 0 || h.magic != COIL__PP_JOB_MAGIC || !h.name_len ||
		    h.name_len > COIL__PP_NAME_MAX || h.in_len > (uint64_t)SIZE_MAX)
			worker_exit(2); /* the pool sees it die and says so */
		if (read_full(name, h.name_len) <= 0)
			worker_exit(2);
		void *in = NULL;
		if (h.in_len && h.in_len <= kept_cap) {
			in = kept;
		} else if (h.in_len) {
			if (h.in_len <= KEEP_INPUT_MAX) {
				free(kept);
				kept = NULL;
				kept_cap = 0;
			}
			in = malloc((size_t)h.in_len);
			if (in && h.in_len <= KEEP_INPUT_MAX) {
				kept = in;
				kept_cap = (size_t)h.in_len;
			}
			if (!in) {
				/* Without the input the stream cannot be
				 * followed further: report and leave. */
				coil_errorf("the worker could not allocate %llu bytes of input",
					    (unsigned long long)h.in_len);
				char *m = coil__take_errmsg();
				send_result(out_fd, COIL__PP_RES_MAGIC, -ENOMEM, m, m ? strlen(m) : 0);
				coil__strfree(m);
				worker_exit(3);
			}
		}
		if (h.in_len && read_full(in, (size_t)h.in_len) <= 0)
			worker_exit(2);
		int sent = run_job(out_fd, name, h.name_len, in, (size_t)h.in_len);
		if (in != kept)
			free(in);
		if (sent)
			worker_exit(0); /* the pool is gone */
	}
}

/* Parses "<job fd>,<result fd>,<parent pid>". */
static bool parse_env(const char *v, int *in_fd, int *out_fd, long *ppid)
{
	char *end;
	long a = strtol(v, &end, 10);
	if (*end != ',')
		return false;
	long b = strtol(end + 1, &end, 10);
	if (*end != ',')
		return false;
	long c = strtol(end + 1, &end, 10);
	if (*end || a < 0 || b < 0 || a > INT_MAX || b > INT_MAX || c <= 0)
		return false;
	*in_fd = (int)a;
	*out_fd = (int)b;
	*ppid = c;
	return true;
}

int coil_process_pool_main(int argc, char **argv)
{
	const char *v = getenv(COIL__PP_ENV);
	if (v) {
		int in_fd, out_fd;
		long ppid;
		if (!parse_env(v, &in_fd, &out_fd, &ppid)) {
			fprintf(stderr, "coil: %s=\"%s\" is malformed\n", COIL__PP_ENV, v);
			worker_exit(2);
		}
		unsetenv(COIL__PP_ENV);
		/* Die with the pool's manager thread (its pipes would tell us
		 * too, but not while a job runs); and if it is already gone,
		 * do not start. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((long)getppid() != ppid)
			worker_exit(0);
		/* Processes a job starts must not hold the pool's pipes open. */
		fcntl(in_fd, F_SETFD, FD_CLOEXEC);
		fcntl(out_fd, F_SETFD, FD_CLOEXEC);
		serve(in_fd, out_fd);
	}
	if (argc < 1 || !argv || !argv[0])
		return -EINVAL;
	if (atomic_load_explicit(&opted_in, memory_order_acquire))
		return 0;
	char **copy = calloc((size_t)argc + 1, sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	for (int i = 0; i < argc; i++) {
		if (!argv[i] || !(copy[i] = strdup(argv[i]))) {
			for (int j = 0; j < i; j++)
				free(copy[j]);
			free(copy);
			return argv[i] ? -ENOMEM : -EINVAL;
		}
	}
	/* The binary by its path (Valgrind shows the program there, where
	 * /proc/self/exe itself is Valgrind's); /proc/self/exe when the file
	 * is gone (replaced by a rebuild: the magic link still reaches it). */
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	const char *deleted = " (deleted)";
	if (n > 0) {
		path[n] = '\0';
		size_t dl = strlen(deleted);
		if ((size_t)n > dl && !strcmp(path + n - dl, deleted))
			n = -1;
	}
	saved_exe = strdup(n > 0 ? path : "/proc/self/exe");
	if (!saved_exe) {
		for (int i = 0; i < argc; i++)
			free(copy[i]);
		free(copy);
		return -ENOMEM;
	}
	saved_argv = copy;
	atomic_store_explicit(&opted_in, true, memory_order_release);
	return 0;
}
