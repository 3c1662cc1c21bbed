/*
 * examples/file_copy.c: copies a file with several reads and writes in
 * flight at once, on the worker's io_uring (coil_open, coil_statx,
 * coil_read and coil_write at offsets, coil_fsync, coil_close).
 *
 * The file is cut into chunks. K copier tasks each take the next chunk
 * nobody has taken yet, read it at its offset into a buffer of their own
 * and write it at the same offset of the copy, then take the next one,
 * until every chunk is copied. Each task waits for one operation at a
 * time, so K operations are in flight together: the kernel works on
 * several chunks at once (from the page cache, or as parallel requests to
 * the device) while the program stays one thread with no locks.
 *
 *     file_copy SRC DST [--inflight K] [--chunk BYTES]
 *                       copies SRC to DST (defaults: 8 in flight, chunks
 *                       of 131072 bytes), flushes DST to storage, and says
 *                       how long it took
 *     file_copy [--inflight K] [--chunk BYTES]
 *                       a demonstration: writes a temporary file of a few
 *                       MiB of pseudo-random bytes in $TMPDIR (default
 *                       /tmp), copies it, compares the two byte for byte
 *                       and removes them:
 *
 *     copied 4206649 bytes in 33 chunks, 8 in flight
 *     copy is identical
 *
 * DST gets SRC's permission bits when it is created. SRC must be a regular
 * file; copying a file onto itself is refused (opening the copy truncates
 * it). A file that grows while it is copied is copied up to the size it
 * had at the start; one that shrinks makes the copy fail.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* struct statx, asprintf */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <coil/coil.h>

#define DEFAULT_INFLIGHT 8
#define DEFAULT_CHUNK (128 * 1024)

/* The demonstration's file: 4 MiB and a bit, so that the last chunk is a
 * short one. */
#define DEMO_SIZE (4 * 1024 * 1024 + 12345)

/* One copy, shared by its copier tasks (which may run on different
 * workers: the counters are atomic). */
typedef struct copy {
	int src, dst;
	uint64_t size;
	size_t chunk;
	uint64_t nchunks;
	atomic_uint_fast64_t next;  /* the next chunk nobody has taken */
	atomic_int error;           /* the first error; the others stop */
} copy_t;

/* Reads exactly len bytes at off: a read may return fewer. */
static int read_full(int fd, char *buf, size_t len, uint64_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = coil_read(fd, buf + got, len - got, (int64_t)(off + got),
				      COIL_FOREVER);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return COIL_EINCOMPLETE; /* the file is shorter than it was */
		got += (size_t)n;
	}
	return 0;
}

/* Writes exactly len bytes at off: a write may take fewer. */
static int write_full(int fd, const char *buf, size_t len, uint64_t off)
{
	size_t put = 0;
	while (put < len) {
		ssize_t n = coil_write(fd, buf + put, len - put, (int64_t)(off + put),
				       COIL_FOREVER);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO; /* no progress: give up rather than spin */
		put += (size_t)n;
	}
	return 0;
}

static void fail(copy_t *c, int rc)
{
	int none = 0;
	atomic_compare_exchange_strong(&c->error, &none, rc);
}

/* A copier task: chunks until none is left or a copier failed. */
static int copier(void *arg, void **result)
{
	(void)result;
	copy_t *c = arg;
	char *buf = malloc(c->chunk);
	if (!buf) {
		fail(c, -ENOMEM);
		return -ENOMEM;
	}
	int rc = 0;
	while (atomic_load(&c->error) == 0) {
		uint64_t i = atomic_fetch_add(&c->next, 1);
		if (i >= c->nchunks)
			break;
		uint64_t off = i * c->chunk;
		size_t len = c->size - off < c->chunk ? (size_t)(c->size - off) : c->chunk;
		if ((rc = read_full(c->src, buf, len, off)) ||
		    (rc = write_full(c->dst, buf, len, off))) {
			fail(c, rc);
			break;
		}
	}
	free(buf);
	return rc;
}

/* Runs the copier tasks and waits for every one of them. Returns the
 * first error. */
static int run_copiers(copy_t *c, unsigned k)
{
	coil_task_t **tasks = calloc(k, sizeof(*tasks));
	if (!tasks)
		return -ENOMEM;
	unsigned started = 0;
	for (; started < k; started++) {
		int rc = coil_spawn(&tasks[started], copier, c, NULL);
		if (rc) {
			fail(c, rc); /* the ones started stop at their next chunk */
			break;
		}
	}
	for (unsigned i = 0; i < started; i++) {
		/* A copier's error is in c->error too. */
		(void)coil_await(coil_task_future(tasks[i]), NULL);
		coil_task_detach(tasks[i]);
	}
	free(tasks);
	return atomic_load(&c->error);
}

/* The result of a copy, for the caller's report. */
typedef struct copied {
	uint64_t bytes, chunks;
	unsigned inflight;
} copied_t;

/* Whether two statx results name the same file. */
static bool same_file(const struct statx *a, const struct statx *b)
{
	return a->stx_ino == b->stx_ino && a->stx_dev_major == b->stx_dev_major &&
	       a->stx_dev_minor == b->stx_dev_minor;
}

/* Copies src_path to dst_path with k chunks of `chunk` bytes in flight. */
static int copy_file(const char *src_path, const char *dst_path, unsigned k,
		     size_t chunk, copied_t *out)
{
	copy_t c = { .src = -1, .dst = -1, .chunk = chunk };
	struct statx st, dst_st;
	int rc = coil_open(src_path, O_RDONLY | O_CLOEXEC, 0, COIL_FOREVER);
	if (rc < 0) {
		fprintf(stderr, "file_copy: %s: %s\n", src_path, coil_strerror(rc));
		return rc;
	}
	c.src = rc;
	rc = coil_statx(c.src, "", AT_EMPTY_PATH, STATX_SIZE | STATX_MODE | STATX_INO,
			&st, COIL_FOREVER);
	if (rc == 0 && !S_ISREG(st.stx_mode))
		rc = -EINVAL;
	if (rc) {
		fprintf(stderr, "file_copy: %s: %s\n", src_path,
			rc == -EINVAL ? "not a regular file" : coil_strerror(rc));
		goto out;
	}
	/* Opening the copy truncates it: make sure it is not the source. */
	rc = coil_statx(AT_FDCWD, dst_path, 0, STATX_INO, &dst_st, COIL_FOREVER);
	if (rc == 0 && same_file(&st, &dst_st)) {
		fprintf(stderr, "file_copy: %s and %s are the same file\n", src_path,
			dst_path);
		rc = -EINVAL;
		goto out;
	}
	rc = coil_open(dst_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		       st.stx_mode & 07777, COIL_FOREVER);
	if (rc < 0) {
		fprintf(stderr, "file_copy: %s: %s\n", dst_path, coil_strerror(rc));
		goto out;
	}
	c.dst = rc;
	c.size = st.stx_size;
	c.nchunks = c.size / chunk + (c.size % chunk != 0);
	/* No more copiers than chunks: the others would find nothing to do. */
	unsigned inflight = c.nchunks < k ? (unsigned)c.nchunks : k;
	if ((rc = run_copiers(&c, inflight))) {
		fprintf(stderr, "file_copy: copying %s to %s: %s\n", src_path, dst_path,
			coil_strerror(rc));
		goto out;
	}
	/* The copy is only done once it is on storage. */
	if ((rc = coil_fsync(c.dst, COIL_FOREVER))) {
		fprintf(stderr, "file_copy: fsync %s: %s\n", dst_path, coil_strerror(rc));
		goto out;
	}
	*out = (copied_t){ c.size, c.nchunks, inflight };
out:
	/* A close can report a write error the kernel kept for it. */
	if (c.dst >= 0) {
		int crc = coil_close(c.dst, COIL_FOREVER);
		if (crc && !rc) {
			fprintf(stderr, "file_copy: close %s: %s\n", dst_path, coil_strerror(crc));
			rc = crc;
		}
	}
	(void)coil_close(c.src, COIL_FOREVER); /* read only: nothing to lose */
	return rc;
}

/* --- copying a file given on the command line --------------------------- */

typedef struct args {
	const char *src, *dst;
	unsigned inflight;
	size_t chunk;
} args_t;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int copy_main(void *arg, void **result)
{
	(void)result;
	args_t *a = arg;
	copied_t done;
	double t0 = now_s();
	int rc = copy_file(a->src, a->dst, a->inflight, a->chunk, &done);
	if (rc)
		return rc;
	double t = now_s() - t0;
	printf("copied %llu bytes in %llu chunks, %u in flight\n",
	       (unsigned long long)done.bytes, (unsigned long long)done.chunks,
	       done.inflight);
	printf("%.3f s, %.1f MiB/s (fsync included)\n", t,
	       t > 0 ? done.bytes / t / (1024 * 1024) : 0.0);
	return 0;
}

/* --- the demonstration -------------------------------------------------- */

/* splitmix64: a small generator whose bytes do not compress or repeat. */
static uint64_t next_random(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Fills path with DEMO_SIZE pseudo-random bytes, a MiB per write. */
static int make_source(const char *path)
{
	int fd = coil_open(path, O_WRONLY | O_TRUNC | O_CLOEXEC, 0, COIL_FOREVER);
	if (fd < 0)
		return fd;
	size_t piece = 1024 * 1024;
	uint64_t *buf = malloc(piece);
	int rc = buf ? 0 : -ENOMEM;
	uint64_t seed = 42;
	for (uint64_t off = 0; rc == 0 && off < DEMO_SIZE; off += piece) {
		for (size_t i = 0; i < piece / sizeof(*buf); i++)
			buf[i] = next_random(&seed);
		size_t len = DEMO_SIZE - off < piece ? (size_t)(DEMO_SIZE - off) : piece;
		rc = write_full(fd, (const char *)buf, len, off);
	}
	free(buf);
	int crc = coil_close(fd, COIL_FOREVER);
	return rc ? rc : crc;
}

/* Compares two files byte for byte. Returns 0 when they are identical,
 * 1 when they differ, or an error. */
static int compare(const char *a_path, const char *b_path)
{
	int fds[2] = { -1, -1 };
	size_t piece = 1024 * 1024;
	char *a = malloc(piece), *b = malloc(piece);
	struct statx sa = { 0 }, sb = { 0 };
	int rc = a && b ? 0 : -ENOMEM;
	if (rc == 0 && (rc = coil_open(a_path, O_RDONLY | O_CLOEXEC, 0, COIL_FOREVER)) >= 0)
		fds[0] = rc;
	if (rc >= 0 && (rc = coil_open(b_path, O_RDONLY | O_CLOEXEC, 0, COIL_FOREVER)) >= 0)
		fds[1] = rc;
	if (rc >= 0 &&
	    (rc = coil_statx(fds[0], "", AT_EMPTY_PATH, STATX_SIZE, &sa, COIL_FOREVER)) == 0 &&
	    (rc = coil_statx(fds[1], "", AT_EMPTY_PATH, STATX_SIZE, &sb, COIL_FOREVER)) == 0 &&
	    sa.stx_size != sb.stx_size)
		rc = 1;
	for (uint64_t off = 0; rc == 0 && off < sa.stx_size; off += piece) {
		size_t len = sa.stx_size - off < piece ? (size_t)(sa.stx_size - off) : piece;
		if ((rc = read_full(fds[0], a, len, off)) == 0 &&
		    (rc = read_full(fds[1], b, len, off)) == 0 && memcmp(a, b, len) != 0)
			rc = 1;
	}
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			(void)coil_close(fds[i], COIL_FOREVER);
	free(a);
	free(b);
	return rc;
}

/* The demonstration's task: the two temporary files exist (empty). */
static int demo_main(void *arg, void **result)
{
	(void)result;
	args_t *a = arg;
	int rc = make_source(a->src);
	if (rc) {
		fprintf(stderr, "file_copy: writing %s: %s\n", a->src, coil_strerror(rc));
		return rc;
	}
	copied_t done;
	if ((rc = copy_file(a->src, a->dst, a->inflight, a->chunk, &done)))
		return rc;
	printf("copied %llu bytes in %llu chunks, %u in flight\n",
	       (unsigned long long)done.bytes, (unsigned long long)done.chunks,
	       done.inflight);
	rc = compare(a->src, a->dst);
	if (rc < 0) {
		fprintf(stderr, "file_copy: comparing: %s\n", coil_strerror(rc));
		return rc;
	}
	if (rc > 0) {
		printf("the copy DIFFERS from the original\n");
		return -EIO;
	}
	printf("copy is identical\n");
	return 0;
}

/* A temporary file in dir, created empty; *path gets its name (free it). */
static int temp_file(const char *dir, const char *what, char **path)
{
	if (asprintf(path, "%s/file_copy-%s-XXXXXX", dir, what) < 0) {
		*path = NULL;
		return -ENOMEM;
	}
	/* mkstemp is a plain system call: this runs before the loop. */
	int fd = mkstemp(*path);
	if (fd < 0) {
		int err = -errno;
		fprintf(stderr, "file_copy: cannot create a file in %s: %s\n", dir,
			strerror(errno));
		free(*path);
		*path = NULL;
		return err;
	}
	close(fd);
	return 0;
}

static int demo(args_t *a)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	char *src = NULL, *dst = NULL;
	int rc = temp_file(dir, "src", &src);
	if (rc == 0)
		rc = temp_file(dir, "dst", &dst);
	if (rc == 0) {
		a->src = src;
		a->dst = dst;
		rc = coil_run(demo_main, a, NULL, NULL);
	}
	/* The temporary files go, whatever happened. */
	if (src)
		unlink(src);
	if (dst)
		unlink(dst);
	free(src);
	free(dst);
	return rc;
}

/* --- options ------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: file_copy SRC DST [--inflight K] [--chunk BYTES]\n"
			"       file_copy [--inflight K] [--chunk BYTES]   (a demonstration)\n");
	exit(2);
}

/* A whole decimal number within [min, max], or usage(). */
static unsigned long long number(const char *s, unsigned long long min,
				 unsigned long long max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	args_t a = { .inflight = DEFAULT_INFLIGHT, .chunk = DEFAULT_CHUNK };
	const char *paths[2];
	int npaths = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--inflight") && i + 1 < argc)
			a.inflight = (unsigned)number(argv[++i], 1, UINT_MAX);
		else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
			a.chunk = (size_t)number(argv[++i], 1, SSIZE_MAX);
		else if (argv[i][0] != '-' && npaths < 2)
			paths[npaths++] = argv[i];
		else
			usage();
	}
	if (npaths == 1)
		usage();
	if (npaths == 0)
		return demo(&a) ? 1 : 0;
	a.src = paths[0];
	a.dst = paths[1];
	return coil_run(copy_main, &a, NULL, NULL) ? 1 : 0;
}
