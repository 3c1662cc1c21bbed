/*
 * tests/test_io_files.c: the file operations of coil/io.h, splice and poll.
 *
 * A file round trip through write, read, writev and readv at offsets and
 * at the descriptor's position, fsync, fdatasync and statx; open and
 * openat and their errors; many reads in flight at once from tasks on one
 * and two workers; a sendfile-style copy file -> pipe -> socket with
 * splice; poll on a pipe (ready, timed out, cancelled, hung up); pipe reads
 * and writes that time out or are cancelled. Files live in a fresh
 * directory under $TMPDIR (or /tmp), removed at the end of each test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coil/coil.h"
#include "core.h"
#include "test.h"

/* --- helpers --------------------------------------------------------------- */

static int run_cfg(coil_fn fn, void *arg, unsigned workers)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = workers;
	int rc = coil_run(fn, arg, NULL, &o);
	TEST_SKIP_UNLESS_RING(rc);
	return rc;
}

/* The test's directory; short enough that a name always fits after it. */
static char dir[PATH_MAX / 2];

static void make_dir(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/coil-io-XXXXXX", t && *t ? t : "/tmp");
	ASSERT(mkdtemp(dir) != NULL);
}

static void path_of(char *out, const char *name)
{
	size_t d = strlen(dir), n = strlen(name);
	ASSERT_LT(d + n + 2, PATH_MAX);
	memcpy(out, dir, d);
	out[d] = '/';
	memcpy(out + d + 1, name, n + 1);
}

static void remove_dir(const char *const *names, size_t n)
{
	char p[PATH_MAX];
	for (size_t i = 0; i < n; i++) {
		path_of(p, names[i]);
		unlink(p);
	}
	ASSERT_EQ(rmdir(dir), 0);
}

static unsigned inflight(void)
{
	return coil__ring_inflight(coil_get_running_loop()->ring);
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 31 + (i >> 9));
}

static int join(coil_task_t *t)
{
	int rc = coil_await(coil_task_future(t), NULL);
	coil_task_detach(t);
	return rc;
}

/* --- a file round trip --------------------------------------------------------- */

static int roundtrip_main(void *p, void **res)
{
	(void)p;
	(void)res;
	char path[PATH_MAX];
	path_of(path, "f");
	int fd = coil_open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600, COIL_FOREVER);
	ASSERT_GE(fd, 0);
	/* At offsets, leaving a hole. */
	ASSERT_EQ(coil_write(fd, "head", 4, 0, COIL_FOREVER), 4);
	ASSERT_EQ(coil_write(fd, "tail", 4, 8192, COIL_FOREVER), 4);
	char buf[16];
	ASSERT_EQ(coil_read(fd, buf, 4, 8192, COIL_FOREVER), 4);
	ASSERT(memcmp(buf, "tail", 4) == 0);
	ASSERT_EQ(coil_read(fd, buf, 4, 100, COIL_FOREVER), 4);
	ASSERT(memcmp(buf, "\0\0\0\0", 4) == 0);
	ASSERT_EQ(coil_read(fd, buf, sizeof(buf), 8196, COIL_FOREVER), 0);
	/* At the position (-1): reads and writes advance it. */
	ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
	ASSERT_EQ(coil_read(fd, buf, 2, -1, COIL_FOREVER), 2);
	ASSERT_EQ(coil_read(fd, buf + 2, 2, -1, COIL_FOREVER), 2);
	ASSERT(memcmp(buf, "head", 4) == 0);
	ASSERT_EQ(lseek(fd, 0, SEEK_CUR), 4);
	ASSERT_EQ(coil_write(fd, "-mid", 4, -1, COIL_FOREVER), 4);
	ASSERT_EQ(lseek(fd, 0, SEEK_CUR), 8);
	/* Gather out and scatter in at an offset. */
	struct iovec out[3] = { { "ab", 2 }, { "cde", 3 }, { "fghi", 4 } };
	ASSERT_EQ(coil_writev(fd, out, 3, 4000, COIL_FOREVER), 9);
	char a[4], b[5];
	struct iovec in[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
	ASSERT_EQ(coil_readv(fd, in, 2, 4000, COIL_FOREVER), 9);
	ASSERT(memcmp(a, "abcd", 4) == 0 && memcmp(b, "efghi", 5) == 0);
	ASSERT_EQ(coil_readv(fd, in, 0, 4000, COIL_FOREVER), 0);
	ASSERT_EQ(coil_fsync(fd, COIL_FOREVER), 0);
	ASSERT_EQ(coil_fdatasync(fd, COIL_FOREVER), 0);
	struct statx st;
	ASSERT_EQ(coil_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE | STATX_MODE, &st, COIL_FOREVER), 0);
	ASSERT_EQ(st.stx_size, 8196);
	ASSERT_EQ(st.stx_mode & 0777, 0600);
	ASSERT(S_ISREG(st.stx_mode));
	ASSERT_EQ(coil_close(fd, COIL_FOREVER), 0);
	ASSERT_EQ(coil_read(fd, buf, 1, 0, COIL_FOREVER), -EBADF);
	ASSERT_EQ(inflight(), 0);
	return 0;
}

TEST(file_roundtrip)
{
	make_dir();
	ASSERT_EQ(run_cfg(roundtrip_main, NULL, 1), 0);
	static const char *const names[] = { "f" };
	remove_dir(names, 1);
}

static int open_errors_main(void *p, void **res)
{
	(void)p;
	(void)res;
	int dfd = coil_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, COIL_FOREVER);
	ASSERT_GE(dfd, 0);
	ASSERT_EQ(coil_openat(dfd, "missing", O_RDONLY, 0, COIL_FOREVER), -ENOENT);
	int fd = coil_openat(dfd, "g", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644, COIL_FOREVER);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(coil_openat(dfd, "g", O_CREAT | O_EXCL | O_WRONLY, 0644, COIL_FOREVER), -EEXIST);
	ASSERT_EQ(coil_openat(dfd, NULL, O_RDONLY, 0, COIL_FOREVER), -EINVAL);
	struct statx st;
	ASSERT_EQ(coil_statx(dfd, "missing", 0, STATX_BASIC_STATS, &st, COIL_FOREVER), -ENOENT);
	ASSERT_EQ(coil_statx(dfd, "g", 0, STATX_BASIC_STATS, &st, COIL_FOREVER), 0);
	ASSERT_EQ(st.stx_size, 0);
	/* A write to a descriptor opened read-only, a read of a directory. */
	ASSERT_EQ(coil_read(fd, &st, 1, 0, COIL_FOREVER), -EBADF);
	char c;
	ASSERT_EQ(coil_read(dfd, &c, 1, 0, COIL_FOREVER), -EISDIR);
	ASSERT_EQ(coil_close(fd, COIL_FOREVER), 0);
	ASSERT_EQ(coil_close(dfd, COIL_FOREVER), 0);
	return 0;
}

TEST(open_openat_statx_errors)
{
	make_dir();
	ASSERT_EQ(run_cfg(open_errors_main, NULL, 1), 0);
	static const char *const names[] = { "g" };
	remove_dir(names, 1);
}

/* --- many reads in flight -------------------------------------------------------- */

enum { BLOCK = 4096, BLOCKS = 256, READERS = 16 };

typedef struct reader_arg {
	int fd, first, stride;
	atomic_int *moves;
} reader_arg_t;

static int block_reader(void *p, void **res)
{
	(void)res;
	reader_arg_t *a = p;
	uint8_t buf[BLOCK];
	int last = coil_current_worker();
	for (int blk = a->first; blk < BLOCKS; blk += a->stride) {
		ssize_t n = coil_read(a->fd, buf, BLOCK, (int64_t)blk * BLOCK, COIL_FOREVER);
		ASSERT_EQ(n, BLOCK);
		for (size_t i = 0; i < BLOCK; i++)
			ASSERT_EQ(buf[i], pattern((size_t)blk * BLOCK + i));
		ASSERT_EQ(coil_sleep_ns(0), 0);
		if (coil_current_worker() != last)
			atomic_fetch_add(a->moves, 1);
		last = coil_current_worker();
	}
	return 0;
}

static int parallel_reads_main(void *p, void **res)
{
	(void)p;
	(void)res;
	char path[PATH_MAX];
	path_of(path, "big");
	int fd = coil_open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600, COIL_FOREVER);
	ASSERT_GE(fd, 0);
	uint8_t *data = malloc(BLOCK * BLOCKS);
	ASSERT(data);
	for (size_t i = 0; i < BLOCK * BLOCKS; i++)
		data[i] = pattern(i);
	/* Written in 64 KiB pieces, as a copy would. */
	for (size_t off = 0; off < BLOCK * BLOCKS; off += 65536)
		ASSERT_EQ(coil_write(fd, data + off, 65536, (int64_t)off, COIL_FOREVER), 65536);
	free(data);
	atomic_int moves = 0;
	reader_arg_t a[READERS];
	coil_task_t *t[READERS];
	for (int i = 0; i < READERS; i++) {
		a[i] = (reader_arg_t){ fd, i, READERS, &moves };
		ASSERT_EQ(coil_spawn(&t[i], block_reader, &a[i], NULL), 0);
	}
	for (int i = 0; i < READERS; i++)
		ASSERT_EQ(join(t[i]), 0);
	printf("  %d worker changes between reads\n", atomic_load(&moves));
	ASSERT_EQ(coil_close(fd, COIL_FOREVER), 0);
	return 0;
}

TEST(many_reads_in_flight)
{
	static const unsigned w[] = { 1, 2 };
	for (size_t i = 0; i < 2; i++) {
		make_dir();
		ASSERT_EQ(run_cfg(parallel_reads_main, NULL, w[i]), 0);
		static const char *const names[] = { "big" };
		remove_dir(names, 1);
	}
}

/* --- splice: file -> pipe -> socket ------------------------------------------------ */

typedef struct splice_wait {
	int in, out;
	ssize_t rc;
} splice_wait_t;

static int splice_waiter(void *p, void **res)
{
	(void)res;
	splice_wait_t *a = p;
	a->rc = coil_splice(a->in, -1, a->out, -1, 100, 0, COIL_FOREVER);
	return 0;
}

static int splice_main(void *p, void **res)
{
	(void)p;
	(void)res;
	enum { LEN = 200000 };
	char path[PATH_MAX];
	path_of(path, "src");
	int fd = coil_open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600, COIL_FOREVER);
	ASSERT_GE(fd, 0);
	uint8_t *data = malloc(LEN);
	ASSERT(data);
	for (size_t i = 0; i < LEN; i++)
		data[i] = pattern(i);
	ASSERT_EQ(coil_write(fd, data, LEN, 0, COIL_FOREVER), LEN);
	int pp[2], sv[2];
	ASSERT_EQ(pipe2(pp, O_CLOEXEC), 0);
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* An empty pipe: nothing to move within the timeout. */
	ASSERT_EQ(coil_splice(pp[0], -1, sv[0], -1, 100, 0, 5 * 1000000), -ETIMEDOUT);
	/* Cancelled while the kernel's worker thread waits in it. */
	splice_wait_t sw = { pp[0], sv[0], 0 };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, splice_waiter, &sw, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(2 * 1000000), 0);
	ASSERT(coil_task_cancel(t, NULL));
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	ASSERT_EQ(sw.rc, -ECANCELED);
	int64_t off = 0;
	size_t got = 0;
	uint8_t *back = malloc(LEN);
	ASSERT(back);
	while (off < LEN) {
		ssize_t n = coil_splice(fd, off, pp[1], -1, 65536, 0, COIL_FOREVER);
		ASSERT_GT(n, 0);
		off += n;
		for (ssize_t left = n; left > 0;) {
			ssize_t m = coil_splice(pp[0], -1, sv[0], -1, (size_t)left, 0, COIL_FOREVER);
			ASSERT_GT(m, 0);
			left -= m;
			/* Drain the socket as we go (its buffer is smaller
			 * than the file). */
			while (got < (size_t)off) {
				ssize_t k = coil_recv(sv[1], back + got, LEN - got, MSG_DONTWAIT, COIL_FOREVER);
				if (k == -EAGAIN)
					break;
				ASSERT_GT(k, 0);
				got += (size_t)k;
			}
		}
	}
	ASSERT_EQ(coil_splice(fd, off, pp[1], -1, 100, 0, COIL_FOREVER), 0); /* end of file */
	while (got < LEN) {
		ssize_t k = coil_recv(sv[1], back + got, LEN - got, 0, COIL_FOREVER);
		ASSERT_GT(k, 0);
		got += (size_t)k;
	}
	ASSERT(memcmp(back, data, LEN) == 0);
	ASSERT_EQ(coil_splice(fd, -2, pp[1], -1, 1, 0, 0), -EINVAL);
	free(data);
	free(back);
	close(pp[0]);
	close(pp[1]);
	close(sv[0]);
	close(sv[1]);
	ASSERT_EQ(coil_close(fd, COIL_FOREVER), 0);
	return 0;
}

TEST(splice_file_pipe_socket)
{
	make_dir();
	ASSERT_EQ(run_cfg(splice_main, NULL, 1), 0);
	static const char *const names[] = { "src" };
	remove_dir(names, 1);
}

/* --- poll, and pipe reads and writes --------------------------------------------- */

typedef struct poll_arg {
	int fd;
	int rc;
	coil_event_t *ready;
} poll_arg_t;

static int poller(void *p, void **res)
{
	(void)res;
	poll_arg_t *a = p;
	ASSERT_EQ(coil_event_set(a->ready), 0);
	a->rc = coil_poll(a->fd, POLLIN, COIL_FOREVER);
	return 0;
}

static int poll_main(void *p, void **res)
{
	(void)p;
	(void)res;
	int pp[2];
	ASSERT_EQ(pipe2(pp, O_CLOEXEC), 0);
	ASSERT_EQ(coil_poll(pp[0], POLLIN, 5 * 1000000), -ETIMEDOUT);
	ASSERT_EQ(coil_poll(pp[0], POLLIN, 0), -ETIMEDOUT);
	ASSERT_EQ(coil_poll(pp[1], POLLOUT, COIL_FOREVER) & POLLOUT, POLLOUT);
	/* Cancelled while waiting. */
	poll_arg_t a = { .fd = pp[0] };
	ASSERT_EQ(coil_event_create(&a.ready), 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, poller, &a, NULL), 0);
	ASSERT_EQ(coil_event_wait(a.ready), 0);
	ASSERT_EQ(coil_sleep_ns(0), 0);
	ASSERT(coil_task_cancel(t, NULL));
	ASSERT_EQ(join(t), 0);
	ASSERT_EQ(a.rc, -ECANCELED);
	/* Woken by data, then by the writer going away. */
	ASSERT_EQ(coil_event_clear(a.ready), 0);
	ASSERT_EQ(coil_spawn(&t, poller, &a, NULL), 0);
	ASSERT_EQ(coil_event_wait(a.ready), 0);
	ASSERT_EQ(write(pp[1], "!", 1), 1);
	ASSERT_EQ(join(t), 0);
	ASSERT_EQ(a.rc & POLLIN, POLLIN);
	char c;
	ASSERT_EQ(coil_read(pp[0], &c, 1, -1, COIL_FOREVER), 1);
	ASSERT_EQ(coil_close(pp[1], COIL_FOREVER), 0);
	ASSERT_EQ(coil_poll(pp[0], POLLIN, COIL_FOREVER) & POLLHUP, POLLHUP);
	ASSERT_EQ(coil_read(pp[0], &c, 1, -1, COIL_FOREVER), 0);
	ASSERT_EQ(inflight(), 0);
	coil_event_destroy(a.ready);
	close(pp[0]);
	return 0;
}

TEST(poll_pipe)
{
	ASSERT_EQ(run_cfg(poll_main, NULL, 1), 0);
}

typedef struct pipe_reader {
	int fd;
	char buf[8];
	ssize_t rc;
} pipe_reader_t;

static int pipe_read_task(void *p, void **res)
{
	(void)res;
	pipe_reader_t *a = p;
	memset(a->buf, 0xEE, sizeof(a->buf));
	a->rc = coil_read(a->fd, a->buf, sizeof(a->buf), -1, COIL_FOREVER);
	return 0;
}

static int pipe_main(void *p, void **res)
{
	(void)p;
	(void)res;
	int pp[2];
	ASSERT_EQ(pipe2(pp, O_CLOEXEC), 0);
	char buf[8];
	ASSERT_EQ(coil_read(pp[0], buf, sizeof(buf), -1, 5 * 1000000), -ETIMEDOUT);
	/* Cancelled: nothing consumed, the buffer untouched. */
	pipe_reader_t r = { .fd = pp[0] };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, pipe_read_task, &r, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(0), 0);
	ASSERT_EQ(coil_sleep_ns(0), 0);
	ASSERT(coil_task_cancel(t, NULL));
	ASSERT_EQ(join(t), 0);
	ASSERT_EQ(r.rc, -ECANCELED);
	ASSERT_EQ(write(pp[1], "pipe", 4), 4);
	ASSERT_EQ(coil_sleep_ns(1000000), 0);
	for (size_t i = 0; i < sizeof(r.buf); i++)
		ASSERT_EQ((uint8_t)r.buf[i], 0xEE);
	ASSERT_EQ(coil_read(pp[0], buf, sizeof(buf), -1, COIL_FOREVER), 4);
	ASSERT(memcmp(buf, "pipe", 4) == 0);
	/* A full pipe: the write times out, the pipe still works. */
	ASSERT_EQ(fcntl(pp[1], F_SETFL, O_NONBLOCK), 0);
	static char junk[65536];
	while (write(pp[1], junk, sizeof(junk)) > 0)
		;
	ASSERT_EQ(fcntl(pp[1], F_SETFL, 0), 0);
	ASSERT_EQ(coil_write(pp[1], "x", 1, -1, 5 * 1000000), -ETIMEDOUT);
	ASSERT_GT(coil_read(pp[0], junk, sizeof(junk), -1, COIL_FOREVER), 0);
	ASSERT_EQ(coil_write(pp[1], "x", 1, -1, COIL_FOREVER), 1);
	ASSERT_EQ(inflight(), 0);
	close(pp[0]);
	close(pp[1]);
	return 0;
}

TEST(pipe_read_write_timeout_cancel)
{
	ASSERT_EQ(run_cfg(pipe_main, NULL, 1), 0);
}

TEST_LIST(
	TEST_ENTRY(file_roundtrip),
	TEST_ENTRY(open_openat_statx_errors),
	TEST_ENTRY(many_reads_in_flight),
	TEST_ENTRY(splice_file_pipe_socket),
	TEST_ENTRY(poll_pipe),
	TEST_ENTRY(pipe_read_write_timeout_cancel),
)
