/*
 * tests/test_process.c: subprocesses (coil_process_*).
 *
 * A round trip through `cat` over its pipes, and 4 MiB through
 * communicate both ways at once (no deadlock); exit statuses (an exit
 * code, a kill, a terminate); env and cwd; a missing program, a program
 * that is not executable, a missing working directory (errors of the
 * spawn, nothing left behind); wait and communicate with timeouts (the
 * retry after a timeout loses nothing); a child that does not read its
 * input; stderr to stdout, /dev/null, a descriptor of the caller's (a
 * pipeline); descriptors kept out of the child; no zombie left, also for
 * processes freed while their child runs; spawning from tasks on a
 * 2-worker runtime; the fallback without pidfd_open; bad arguments.
 *
 * Every wait is bounded by a timeout; the children are sh, cat, echo and
 * true, which every system has.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "coil/coil.h"
#include "test.h"

#define SEC COIL_NSEC_PER_SEC
#define MS (COIL_NSEC_PER_SEC / 1000)

/* Internal hooks of io/process.c. */
void coil__process_force_polling(bool on);
size_t coil__process_reaper_pending(void);

static void run(coil_fn fn, void *arg)
{
	int rc = coil_run(fn, arg, NULL, NULL);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* Children of this process that are zombies (exited, not reaped). */
static int zombies(void)
{
	DIR *d = opendir("/proc");
	ASSERT(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[300], buf[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = 0;
		/* pid (comm) state ppid ...: comm may hold anything, so
		 * parse from its closing parenthesis. */
		char *rp = strrchr(buf, ')');
		char state;
		int ppid;
		if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 &&
		    ppid == getpid() && state == 'Z')
			n++;
	}
	closedir(d);
	return n;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	ASSERT(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A process with the given streams (COIL_PROCESS_* or descriptors). */
static coil_process_t *spawn3(const char *const argv[], int in, int out, int err)
{
	coil_process_opts_t o;
	coil_process_opts_init(&o);
	o.stdin_fd = in;
	o.stdout_fd = out;
	o.stderr_fd = err;
	coil_process_t *p = NULL;
	ASSERT_EQ(coil_process_spawn(&p, argv, &o), 0);
	ASSERT(p);
	ASSERT_GT(coil_process_pid(p), 0);
	return p;
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (unsigned char)x;
	}
}

static const char *const cat_argv[] = { "cat", NULL };

/* --- a round trip through cat ------------------------------------------------ */

#define ROUND_KIB 512

typedef struct trip {
	coil_process_t *p;
	unsigned char *data;
	size_t len;
} trip_t;

static int trip_writer(void *arg, void **result)
{
	(void)result;
	trip_t *t = arg;
	coil_stream_t *in = coil_process_stdin(t->p);
	/* In pieces of odd sizes, each drained: the pipe's backpressure. */
	for (size_t off = 0; off < t->len;) {
		size_t n = t->len - off < 5000 ? t->len - off : 5000;
		ASSERT_EQ(coil_stream_write(in, t->data + off, n), 0);
		ASSERT_EQ(coil_stream_drain(in, 10 * SEC), 0);
		off += n;
	}
	return coil_stream_write_eof(in, 10 * SEC);
}

static int cat_round_trip_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	trip_t t = { .len = ROUND_KIB * 1024 };
	t.p = spawn3(cat_argv, COIL_PROCESS_PIPE, COIL_PROCESS_PIPE, COIL_PROCESS_INHERIT);
	ASSERT(coil_process_stdin(t.p) && coil_process_stdout(t.p));
	ASSERT(!coil_process_stderr(t.p));
	t.data = malloc(t.len);
	fill(t.data, t.len, 1);
	coil_task_t *w;
	ASSERT_EQ(coil_spawn(&w, trip_writer, &t, NULL), 0);
	unsigned char *back = malloc(t.len + 1);
	size_t got = 0;
	for (;;) {
		ssize_t n = coil_stream_read(coil_process_stdout(t.p), back + got,
					     t.len + 1 - got, 10 * SEC);
		ASSERT_GE(n, 0);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	ASSERT_EQ(coil_wait_for(coil_task_future(w), 10 * SEC, NULL), 0);
	coil_task_detach(w);
	ASSERT_EQ(got, t.len);
	ASSERT(!memcmp(back, t.data, t.len));
	int code = -1;
	ASSERT_EQ(coil_process_wait(t.p, &code, 10 * SEC), 0);
	ASSERT_EQ(code, 0);
	ASSERT_EQ(coil_process_returncode(t.p, &code), 0);
	ASSERT_EQ(code, 0);
	coil_process_free(t.p);
	free(back);
	free(t.data);
	return 0;
}

TEST(cat_round_trip)
{
	run(cat_round_trip_main, NULL);
	ASSERT_EQ(zombies(), 0);
}

/* 4 MiB in while 4 MiB come out: neither side waits for the other. */
static int communicate_big_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	size_t len = 4u << 20;
	unsigned char *data = malloc(len);
	fill(data, len, 7);
	coil_process_t *p = spawn3(cat_argv, COIL_PROCESS_PIPE, COIL_PROCESS_PIPE,
				   COIL_PROCESS_PIPE);
	coil_bytes_t out = { 0 }, err = { 0 };
	int code = -1;
	ASSERT_EQ(coil_process_communicate(p, data, len, &out, &err, &code, 60 * SEC), 0);
	ASSERT_EQ(code, 0);
	ASSERT_EQ(out.len, len);
	ASSERT(!memcmp(out.data, data, len));
	ASSERT_EQ(err.len, 0);
	ASSERT(err.data == NULL);
	/* Done: a second call has nothing more to give. */
	coil_bytes_t again = { 0 };
	ASSERT_EQ(coil_process_communicate(p, NULL, 0, &again, NULL, &code, SEC), 0);
	ASSERT_EQ(again.len, 0);
	ASSERT_EQ(code, 0);
	coil_bytes_free(&out);
	coil_bytes_free(&err);
	coil_process_free(p);
	free(data);
	return 0;
}

TEST(communicate_4mib_no_deadlock)
{
	run(communicate_big_main, NULL);
}

/* --- exit statuses --------------------------------------------------------------- */

static int statuses_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	const char *const exit3[] = { "sh", "-c", "exit 3", NULL };
	coil_process_t *p = spawn3(exit3, COIL_PROCESS_INHERIT, COIL_PROCESS_INHERIT,
				   COIL_PROCESS_INHERIT);
	int code = -1;
	ASSERT_EQ(coil_process_wait(p, &code, 10 * SEC), 0);
	ASSERT_EQ(code, 3);
	/* Reaped: gone for signals, the status stays. */
	ASSERT_EQ(coil_process_kill(p), -ESRCH);
	ASSERT_EQ(coil_process_wait(p, &code, 0), 0);
	ASSERT_EQ(code, 3);
	coil_process_free(p);

	/* cat waits for input that never comes: killed. */
	p = spawn3(cat_argv, COIL_PROCESS_PIPE, COIL_PROCESS_DEVNULL, COIL_PROCESS_INHERIT);
	ASSERT_EQ(coil_process_returncode(p, &code), -EAGAIN);
	ASSERT_EQ(coil_process_kill(p), 0);
	ASSERT_EQ(coil_process_wait(p, &code, 10 * SEC), 0);
	ASSERT_EQ(code, -SIGKILL);
	coil_process_free(p);

	p = spawn3(cat_argv, COIL_PROCESS_PIPE, COIL_PROCESS_DEVNULL, COIL_PROCESS_INHERIT);
	ASSERT_EQ(coil_process_terminate(p), 0);
	ASSERT_EQ(coil_process_wait(p, &code, 10 * SEC), 0);
	ASSERT_EQ(code, -SIGTERM);
	coil_process_free(p);

	p = spawn3(cat_argv, COIL_PROCESS_PIPE, COIL_PROCESS_DEVNULL, COIL_PROCESS_INHERIT);
	ASSERT_EQ(coil_process_send_signal(p, SIGUSR1), 0);
	ASSERT_EQ(coil_process_wait(p, &code, 10 * SEC), 0);
	ASSERT_EQ(code, -SIGUSR1);
	ASSERT_EQ(coil_process_send_signal(p, -1), -EINVAL);
	coil_process_free(p);
	return 0;
}

TEST(exit_status_kill_terminate)
{
	run(statuses_main, NULL);
	ASSERT_EQ(zombies(), 0);
}

/* --- environment and working directory ------------------------------------------ */

static int env_cwd_main(void *arg, void **result)
{
	(void)result;
	const char *dir = arg;
	const char *const argv[] = { "sh", "-c", "echo \"$X\"; pwd", NULL };
	const char *const env[] = { "X=hello from env", "PATH=/usr/bin:/bin", NULL };
	coil_process_opts_t o;
	coil_process_opts_init(&o);
	o.env = env;
	o.cwd = dir;
	o.stdout_fd = COIL_PROCESS_PIPE;
	coil_process_t *p;
	ASSERT_EQ(coil_process_spawn(&p, argv, &o), 0);
	coil_bytes_t out = { 0 };
	int code = -1;
	ASSERT_EQ(coil_process_communicate(p, NULL, 0, &out, NULL, &code, 10 * SEC), 0);
	ASSERT_EQ(code, 0);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "hello from env\n%s\n", dir);
	ASSERT_EQ(out.len, strlen(want));
	ASSERT(!memcmp(out.data, want, out.len));
	coil_bytes_free(&out);
	coil_process_free(p);

	/* env NULL: the caller's environment. */
	setenv("COIL_TEST_X", "inherited", 1);
	const char *const argv2[] = { "sh", "-c", "echo \"$COIL_TEST_X\"", NULL };
	p = spawn3(argv2, COIL_PROCESS_DEVNULL, COIL_PROCESS_PIPE, COIL_PROCESS_INHERIT);
	ASSERT_EQ(coil_process_communicate(p, NULL, 0, &out, NULL, &code, 10 * SEC), 0);
	ASSERT_EQ(out.len, 10);
	ASSERT(!memcmp(out.data, "inherited\n", 10));
	coil_bytes_free(&out);
	coil_process_free(p);

	/* A relative program path is found from cwd, as the child sees it. */
	const char *const rel[] = { "./prog", "arg", NULL };
	coil_process_opts_init(&o);
	o.cwd = dir;
	o.stdout_fd = COIL_PROCESS_PIPE;
	ASSERT_EQ(coil_process_spawn(&p, rel, &o), 0);
	ASSERT_EQ(coil_process_communicate(p, NULL, 0, &out, NULL, &code, 10 * SEC), 0);
	ASSERT_EQ(code, 0);
	ASSERT_EQ(out.len, 8);
	ASSERT(!memcmp(out.data, "ran arg\n", 8));
	coil_bytes_free(&out);
	coil_process_free(p);
	return 0;
}

TEST(env_and_cwd)
{
	char tmpl[] = "/tmp/coil-proc-XXXXXX";
	ASSERT(mkdtemp(tmpl));
	char real[PATH_MAX], prog[PATH_MAX + 8];
	ASSERT(realpath(tmpl, real));
	snprintf(prog, sizeof(prog), "%s/prog", real);
	FILE *f = fopen(prog, "w");
	ASSERT(f);
	fputs("#!/bin/sh\necho ran \"$1\"\n", f);
	fclose(f);
	ASSERT_EQ(chmod(prog, 0755), 0);
	run(env_cwd_main, real);
	unlink(prog);
	rmdir(real);
}

/* --- failures of the spawn ---------------------------------------------------------- */

TEST(spawn_errors)
{
	int fds = open_fds();
	coil_process_t *p = (coil_process_t *)1;
	coil_process_opts_t o;
	coil_process_opts_init(&o);
	o.stdin_fd = COIL_PROCESS_PIPE;
	o.stdout_fd = COIL_PROCESS_PIPE;
	o.stderr_fd = COIL_PROCESS_PIPE;
	const char *const missing[] = { "coil-no-such-program", NULL };
	ASSERT_EQ(coil_process_spawn(&p, missing, &o), -ENOENT);
	const char *const missing_path[] = { "/nonexistent/coil/prog", NULL };
	ASSERT_EQ(coil_process_spawn(&p, missing_path, &o), -ENOENT);
	const char *const not_exec[] = { "/etc/passwd", NULL };
	ASSERT_EQ(coil_process_spawn(&p, not_exec, &o), -EACCES);
	const char *const dir[] = { "/tmp", NULL };
	ASSERT_EQ(coil_process_spawn(&p, dir, &o), -EACCES);
	/* The child's PATH (env) is the one searched. */
	const char *const env[] = { "PATH=/nonexistent/coil", NULL };
	o.env = env;
	ASSERT_EQ(coil_process_spawn(&p, cat_argv, &o), -ENOENT);
	o.env = NULL;
	o.cwd = "/nonexistent/coil/dir";
	ASSERT_EQ(coil_process_spawn(&p, cat_argv, &o), -ENOENT);
	o.cwd = "/etc/passwd";
	ASSERT_EQ(coil_process_spawn(&p, cat_argv, &o), -ENOTDIR);
	ASSERT(p == (coil_process_t *)1);
	/* Nothing left: no descriptor, no child. */
	ASSERT_EQ(open_fds(), fds);
	ASSERT_EQ(zombies(), 0);
}

TEST(bad_arguments)
{
	coil_process_t *p = NULL;
	const char *const empty[] = { "", NULL };
	const char *const none[] = { NULL };
	ASSERT_EQ(coil_process_spawn(NULL, cat_argv, NULL), -EINVAL);
	ASSERT_EQ(coil_process_spawn(&p, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_process_spawn(&p, none, NULL), -EINVAL);
	ASSERT_EQ(coil_process_spawn(&p, empty, NULL), -EINVAL);
	coil_process_opts_t o;
	coil_process_opts_init(&o);
	o.stdout_fd = COIL_PROCESS_STDOUT;
	ASSERT_EQ(coil_process_spawn(&p, cat_argv, &o), -EINVAL);
	coil_process_opts_init(&o);
	o.stdin_fd = -7;
	ASSERT_EQ(coil_process_spawn(&p, cat_argv, &o), -EINVAL);
	coil_process_opts_init(&o);
	o.stdin_fd = 1000; /* not open */
	ASSERT_EQ(coil_process_spawn(&p, cat_argv, &o), -EBADF);
	ASSERT(p == NULL);

	/* Outside a task the waiting calls refuse; the others work. */
	const char *const t[] = { "true", NULL };
	ASSERT_EQ(coil_process_spawn(&p, t, NULL), 0);
	int code;
	ASSERT_EQ(coil_process_wait(p, &code, SEC), COIL_EINVALSTATE);
	ASSERT_EQ(coil_process_communicate(p, NULL, 0, NULL, NULL, &code, SEC),
		  COIL_EINVALSTATE);
	ASSERT_EQ(coil_process_wait(NULL, &code, SEC), -EINVAL);
	ASSERT_EQ(coil_process_returncode(NULL, &code), -EINVAL);
	coil_process_free(p);
	coil_process_free(NULL);
}

static int bad_communicate_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	const char *const t[] = { "true", NULL };
	coil_process_t *p = spawn3(t, COIL_PROCESS_INHERIT, COIL_PROCESS_DEVNULL,
				   COIL_PROCESS_INHERIT);
	int code;
	/* Input without a stdin pipe, NULL input with a length, a bad
	 * timeout. */
	ASSERT_EQ(coil_process_communicate(p, "x", 1, NULL, NULL, &code, SEC), -EINVAL);
	ASSERT_EQ(coil_process_communicate(p, NULL, 1, NULL, NULL, &code, SEC), -EINVAL);
	ASSERT_EQ(coil_process_communicate(p, NULL, 0, NULL, NULL, &code, -5), -EINVAL);
	ASSERT_EQ(coil_process_wait(p, &code, -5), -EINVAL);
	ASSERT_EQ(coil_process_communicate(p, "x", (size_t)SSIZE_MAX + 1, NULL, NULL,
					   &code, SEC), -EINVAL);
	ASSERT_EQ(coil_process_send_signal(p, _NSIG), -EINVAL);
	ASSERT_EQ(coil_process_communicate(p, NULL, 0, NULL, NULL, &code, 10 * SEC), 0);
	ASSERT_EQ(code, 0);
	coil_process_free(p);
	return 0;
}

TEST(bad_communicate_arguments)
{
	run(bad_communicate_main, NULL);
}

/* --- timeouts --------------------------------------------------------------------- */

static int wait_timeout_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_process_t *p = spawn3(cat_argv, COIL_PROCESS_PIPE, COIL_PROCESS_DEVNULL,
				   COIL_PROCESS_INHERIT);
	int code = 99;
	ASSERT_EQ(coil_process_wait(p, &code, 0), -ETIMEDOUT);
	int64_t t0 = now_ns();
	ASSERT_EQ(coil_process_wait(p, &code, 50 * MS), -ETIMEDOUT);
	ASSERT_GE(now_ns() - t0, 50 * MS);
	ASSERT_EQ(code, 99);
	/* The end of its input ends cat. */
	ASSERT_EQ(coil_stream_write_eof(coil_process_stdin(p), SEC), 0);
	ASSERT_EQ(coil_process_wait(p, &code, 10 * SEC), 0);
	ASSERT_EQ(code, 0);
	coil_process_free(p);
	return 0;
}

TEST(wait_with_timeout)
{
	run(wait_timeout_main, NULL);
}

static int communicate_timeout_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	/* Writes a line, then reads its input (ours), then lingers. */
	const char *const argv[] = {
		"sh", "-c", "echo partial; cat; echo err >&2; exec sleep 30", NULL
	};
	coil_process_t *p = spawn3(argv, COIL_PROCESS_PIPE, COIL_PROCESS_PIPE,
				   COIL_PROCESS_PIPE);
	size_t len = 300 * 1024;
	unsigned char *in = malloc(len);
	fill(in, len, 3);
	coil_bytes_t out = { 0 }, err = { 0 };
	int code = 99;
	ASSERT_EQ(coil_process_communicate(p, in, len, &out, &err, &code, 200 * MS),
		  -ETIMEDOUT);
	ASSERT_EQ(code, 99);
	ASSERT(out.data == NULL && err.data == NULL);
	/* The input was taken: passing it again is refused. */
	ASSERT_EQ(coil_process_communicate(p, in, len, &out, &err, &code, SEC), -EINVAL);
	free(in); /* kept by the process where not yet written */
	ASSERT_EQ(coil_process_kill(p), 0);
	ASSERT_EQ(coil_process_communicate(p, NULL, 0, &out, &err, &code, 10 * SEC), 0);
	ASSERT_EQ(code, -SIGKILL);
	/* Everything, from both calls. */
	unsigned char *want = malloc(len);
	fill(want, len, 3);
	ASSERT_EQ(out.len, 8 + len);
	ASSERT(!memcmp(out.data, "partial\n", 8));
	ASSERT(!memcmp((char *)out.data + 8, want, len));
	ASSERT_EQ(err.len, 4);
	ASSERT(!memcmp(err.data, "err\n", 4));
	free(want);
	coil_bytes_free(&out);
	coil_bytes_free(&err);
	coil_process_free(p);
	return 0;
}

TEST(communicate_with_timeout)
{
	run(communicate_timeout_main, NULL);
	ASSERT_EQ(zombies(), 0);
}

/* --- a child that does not read its input --------------------------------------- */

static int no_reader_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	const char *const t[] = { "true", NULL };
	coil_process_t *p = spawn3(t, COIL_PROCESS_PIPE, COIL_PROCESS_PIPE,
				   COIL_PROCESS_INHERIT);
	size_t len = 1u << 20;
	char *in = calloc(1, len);
	coil_bytes_t out = { 0 };
	int code = -1;
	/* EPIPE writing: the child is gone, not an error (and no SIGPIPE). */
	ASSERT_EQ(coil_process_communicate(p, in, len, &out, NULL, &code, 10 * SEC), 0);
	ASSERT_EQ(code, 0);
	ASSERT_EQ(out.len, 0);
	free(in);
	coil_process_free(p);
	/* The program ignores SIGPIPE now; its children do not. */
	struct sigaction cur;
	ASSERT_EQ(sigaction(SIGPIPE, NULL, &cur), 0);
	ASSERT(cur.sa_handler == SIG_IGN);
	const char *const sh[] = { "sh", "-c", "kill -PIPE $$; echo survived", NULL };
	p = spawn3(sh, COIL_PROCESS_PIPE, COIL_PROCESS_PIPE, COIL_PROCESS_INHERIT);
	ASSERT_EQ(coil_process_communicate(p, NULL, 0, &out, NULL, &code, 10 * SEC), 0);
	ASSERT_EQ(code, -SIGPIPE);
	ASSERT_EQ(out.len, 0);
	coil_process_free(p);
	return 0;
}

TEST(child_that_does_not_read)
{
	run(no_reader_main, NULL);
}

/* --- where the standard streams go ---------------------------------------------- */

static int redirect_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	const char *const both[] = { "sh", "-c", "echo out; echo err >&2", NULL };
	coil_bytes_t out = { 0 }, err = { 0 };
	int code;
	coil_process_t *p = spawn3(both, COIL_PROCESS_DEVNULL, COIL_PROCESS_PIPE,
				   COIL_PROCESS_STDOUT);
	ASSERT(!coil_process_stderr(p));
	ASSERT_EQ(coil_process_communicate(p, NULL, 0, &out, &err, &code, 10 * SEC), 0);
	ASSERT_EQ(out.len, 8);
	ASSERT(!memcmp(out.data, "out\nerr\n", 8));
	ASSERT_EQ(err.len, 0);
	coil_bytes_free(&out);
	coil_process_free(p);

	p = spawn3(both, COIL_PROCESS_DEVNULL, COIL_PROCESS_DEVNULL, COIL_PROCESS_PIPE);
	ASSERT_EQ(coil_process_communicate(p, NULL, 0, &out, &err, &code, 10 * SEC), 0);
	ASSERT_EQ(out.len, 0);
	ASSERT_EQ(err.len, 4);
	ASSERT(!memcmp(err.data, "err\n", 4));
	coil_bytes_free(&err);
	coil_process_free(p);

	/* A pipeline through a pipe of the caller's: echo | cat. */
	int pfd[2];
	ASSERT_EQ(pipe2(pfd, O_CLOEXEC), 0);
	const char *const echo[] = { "echo", "through", "a", "pipeline", NULL };
	coil_process_t *a = spawn3(echo, COIL_PROCESS_DEVNULL, pfd[1], COIL_PROCESS_INHERIT);
	coil_process_t *b = spawn3(cat_argv, pfd[0], COIL_PROCESS_PIPE, COIL_PROCESS_INHERIT);
	close(pfd[0]);
	close(pfd[1]);
	ASSERT_EQ(coil_process_communicate(b, NULL, 0, &out, NULL, &code, 10 * SEC), 0);
	ASSERT_EQ(code, 0);
	ASSERT_EQ(out.len, 19);
	ASSERT(!memcmp(out.data, "through a pipeline\n", out.len));
	coil_bytes_free(&out);
	ASSERT_EQ(coil_process_wait(a, &code, 10 * SEC), 0);
	ASSERT_EQ(code, 0);
	coil_process_free(a);
	coil_process_free(b);
	return 0;
}

TEST(stderr_to_stdout_devnull_and_descriptors)
{
	run(redirect_main, NULL);
}

/* A descriptor the program opened without close-on-exec stays out of the
 * child, unless inherit_fds says otherwise. */
static int fds_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int fd = open("/dev/null", O_RDONLY); /* no O_CLOEXEC */
	ASSERT_GE(fd, 3);
	char script[96];
	snprintf(script, sizeof(script),
		 "if [ -e /proc/self/fd/%d ]; then echo kept; else echo closed; fi", fd);
	const char *const argv[] = { "sh", "-c", script, NULL };
	for (int keep = 0; keep < 2; keep++) {
		coil_process_opts_t o;
		coil_process_opts_init(&o);
		o.stdout_fd = COIL_PROCESS_PIPE;
		o.inherit_fds = keep;
		coil_process_t *p;
		ASSERT_EQ(coil_process_spawn(&p, argv, &o), 0);
		coil_bytes_t out = { 0 };
		int code;
		ASSERT_EQ(coil_process_communicate(p, NULL, 0, &out, NULL, &code, 10 * SEC), 0);
		const char *want = keep ? "kept\n" : "closed\n";
		ASSERT_EQ(out.len, strlen(want));
		ASSERT(!memcmp(out.data, want, out.len));
		coil_bytes_free(&out);
		coil_process_free(p);
	}
	close(fd);
	return 0;
}

TEST(descriptors_stay_out_of_the_child)
{
	run(fds_main, NULL);
}

/* --- no zombie ------------------------------------------------------------------ */

static int free_early_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_process_t *p[6];
	for (int i = 0; i < 6; i++)
		p[i] = spawn3(cat_argv, COIL_PROCESS_PIPE, COIL_PROCESS_DEVNULL,
			      COIL_PROCESS_INHERIT);
	/* Freed while cat runs: the close of its stdin ends it later, and
	 * the reaper reaps it. One is killed instead. */
	coil_process_kill(p[5]);
	for (int i = 0; i < 6; i++)
		coil_process_free(p[i]);
	return 0;
}

static void wait_reaper_idle(void)
{
	int64_t until = now_ns() + 20 * SEC;
	while (coil__process_reaper_pending() && now_ns() < until)
		usleep(1000);
	ASSERT_EQ(coil__process_reaper_pending(), 0);
}

TEST(no_zombie_after_free)
{
	run(free_early_main, NULL);
	wait_reaper_idle();
	ASSERT_EQ(zombies(), 0);
}

/* --- the fallback without pidfd_open --------------------------------------------- */

TEST(polling_fallback)
{
	coil__process_force_polling(true);
	run(statuses_main, NULL);
	run(communicate_big_main, NULL);
	run(wait_timeout_main, NULL);
	run(free_early_main, NULL);
	wait_reaper_idle();
	ASSERT_EQ(zombies(), 0);
}

/* --- a 2-worker runtime ------------------------------------------------------------ */

typedef struct job {
	int i;
	int worker;
} job_t;

static int spawn_job(void *arg, void **result)
{
	(void)result;
	job_t *j = arg;
	char num[16];
	snprintf(num, sizeof(num), "%d", j->i);
	const char *const argv[] = { "sh", "-c", "echo job $0; exit $(($0 % 7))", num, NULL };
	coil_process_t *p = spawn3(argv, COIL_PROCESS_PIPE, COIL_PROCESS_PIPE,
				   COIL_PROCESS_INHERIT);
	j->worker = coil_current_worker();
	coil_bytes_t out = { 0 };
	int code = -1;
	ASSERT_EQ(coil_process_communicate(p, "ignored", 7, &out, NULL, &code, 30 * SEC), 0);
	char want[32];
	snprintf(want, sizeof(want), "job %d\n", j->i);
	ASSERT_EQ(out.len, strlen(want));
	ASSERT(!memcmp(out.data, want, out.len));
	ASSERT_EQ(code, j->i % 7);
	coil_bytes_free(&out);
	coil_process_free(p);
	return 0;
}

#define NJOBS 16

static int runtime_main(void *arg, void **result)
{
	(void)result;
	job_t *jobs = arg;
	coil_task_t *t[NJOBS];
	for (int i = 0; i < NJOBS; i++) {
		jobs[i].i = i;
		ASSERT_EQ(coil_spawn(&t[i], spawn_job, &jobs[i], NULL), 0);
	}
	for (int i = 0; i < NJOBS; i++) {
		ASSERT_EQ(coil_wait_for(coil_task_future(t[i]), 60 * SEC, NULL), 0);
		coil_task_detach(t[i]);
	}
	return 0;
}

TEST(spawn_from_tasks_on_two_workers)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	job_t jobs[NJOBS];
	memset(jobs, 0, sizeof(jobs));
	ASSERT_EQ(coil_runtime_block_on(rt, runtime_main, jobs, NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, 10 * SEC), 0);
	ASSERT_EQ(zombies(), 0);
}

TEST_LIST(
	TEST_ENTRY(cat_round_trip),
	TEST_ENTRY(communicate_4mib_no_deadlock),
	TEST_ENTRY(exit_status_kill_terminate),
	TEST_ENTRY(env_and_cwd),
	TEST_ENTRY(spawn_errors),
	TEST_ENTRY(bad_arguments),
	TEST_ENTRY(bad_communicate_arguments),
	TEST_ENTRY(wait_with_timeout),
	TEST_ENTRY(communicate_with_timeout),
	TEST_ENTRY(child_that_does_not_read),
	TEST_ENTRY(stderr_to_stdout_devnull_and_descriptors),
	TEST_ENTRY(descriptors_stay_out_of_the_child),
	TEST_ENTRY(no_zombie_after_free),
	TEST_ENTRY(polling_fallback),
	TEST_ENTRY(spawn_from_tasks_on_two_workers),
)
