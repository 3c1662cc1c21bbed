/*
 * bench/w8_fileread.c: workload W8 of WORKLOADS.md, random 4 KiB reads of
 * a file in the page cache through coil_read.
 *
 * The data file (made by ../shared/workloads/mkdata.c: 256 MiB, block b
 * starts with b as a little-endian u64) is read R = 200,000 times, 4,096
 * bytes at offset block_k * 4096, block_k = (k-th splitmix64 value, seed 7)
 * mod 65,536. 64 tasks keep 64 reads in flight: task w reads k = w, w + 64,
 * w + 128, ... one after another with coil_read (one io_uring read each,
 * buffered I/O), into a 4 KiB buffer of its own. Each read must return
 * 4,096 bytes whose first 8 are block_k; each task sums the block numbers
 * it read, and the spawner, a task on the runtime, joins the 64 in order
 * and checks the total against the sum of the block_k.
 *
 * Timed region: from before the first spawn until the last task is joined
 * and the sum checked. The offsets and the buffers are made (and the
 * buffers touched) before it. Prints `# w8 block_sum=...` (6,566,592,905
 * for the defaults), `@ reads_per_s <v> reads/s` and `@ cpu_ns_per_read
 * <v> ns` (the process's CPU time in the timed region, every thread, per
 * read: on a shared machine it varies less than the wall time); a failed
 * check prints why on stderr and exits 2.
 *
 * usage: w8_fileread --file F [--workers 2] [--reads 200000] [--tasks 64]
 */
#include <coil/coil.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h" /* ../shared/workloads: PRNG, clock, result lines */
#include "bench_util.h"

/* CPU time of the whole process (every thread), ns. */
static uint64_t cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

#define NBLOCKS 65536u
#define SEED 7
#define DEFAULT_READS 200000u
#define DEFAULT_SUM 6566592905ull
#define USAGE "w8_fileread --file F [--workers N] [--reads R] [--tasks T]"

struct w8;

/* One reading task: reads k = w, w + ntasks, ... */
typedef struct reader {
	struct w8 *w;
	unsigned idx;
	char *buf;
	uint64_t sum;          /* of the block numbers read */
	uint64_t bad_k;        /* the read that failed its check */
	ssize_t bad_res;
	uint64_t bad_tag;
} reader_t;

struct w8 {
	int fd;
	uint64_t reads;
	unsigned ntasks;
	uint32_t *blocks;      /* block_k, k = 0 .. reads-1 */
	reader_t *readers;
	coil_task_t **tasks;
	uint64_t sum;
	uint64_t ns;
	uint64_t cpu;          /* process CPU time in the timed region */
};

static int reader_main(void *arg, void **result)
{
	(void)result;
	reader_t *r = arg;
	struct w8 *w = r->w;
	uint64_t sum = 0;
	for (uint64_t k = r->idx; k < w->reads; k += w->ntasks) {
		uint64_t b = w->blocks[k];
		ssize_t n = coil_read(w->fd, r->buf, W8_BLOCK, (int64_t)(b * W8_BLOCK),
				      COIL_FOREVER);
		uint64_t tag = n == W8_BLOCK ? w8_tag(r->buf) : 0;
		if (n != W8_BLOCK || tag != b) {
			r->bad_k = k;
			r->bad_res = n;
			r->bad_tag = tag;
			return -EIO;
		}
		sum += tag;
	}
	r->sum = sum;
	return 0;
}

static int spawner(void *arg, void **result)
{
	(void)result;
	struct w8 *w = arg;
	uint64_t expect = 0;
	for (uint64_t k = 0; k < w->reads; k++)
		expect += w->blocks[k];
	uint64_t c0 = cpu_ns();
	uint64_t t0 = now_ns();
	for (unsigned i = 0; i < w->ntasks; i++) {
		int rc = coil_spawn(&w->tasks[i], reader_main, &w->readers[i], NULL);
		if (rc)
			CHECK_FAIL("spawn %u: %s", i, coil_strerror(rc));
	}
	uint64_t sum = 0;
	for (unsigned i = 0; i < w->ntasks; i++) {
		int rc = coil_await(coil_task_future(w->tasks[i]), NULL);
		reader_t *r = &w->readers[i];
		if (rc == -EIO)
			CHECK_FAIL("read %llu (block %u) returned %zd, tag %llu",
				   (unsigned long long)r->bad_k, w->blocks[r->bad_k],
				   r->bad_res, (unsigned long long)r->bad_tag);
		if (rc)
			CHECK_FAIL("reader %u: %s", i, coil_strerror(rc));
		sum += r->sum;
		coil_task_detach(w->tasks[i]);
	}
	if (sum != expect)
		CHECK_FAIL("block sum %llu, expected %llu", (unsigned long long)sum,
			   (unsigned long long)expect);
	w->ns = now_ns() - t0;
	w->cpu = cpu_ns() - c0;
	w->sum = sum;
	return 0;
}

int main(int argc, char **argv)
{
	struct w8 w = { .reads = DEFAULT_READS, .ntasks = 64 };
	const char *path = NULL;
	unsigned workers = 2;
	const bench_opt_t opts[] = {
		{ "--file", BENCH_OPT_STR, &path },
		{ "--workers", BENCH_OPT_UINT, &workers },
		{ "--reads", BENCH_OPT_U64, &w.reads },
		{ "--tasks", BENCH_OPT_UINT, &w.ntasks },
	};
	bench_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), USAGE);
	if (!path || !workers || !w.reads || !w.ntasks || w.ntasks > 65536)
		bench_usage(USAGE);
	w.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (w.fd < 0) {
		perror(path);
		return 2;
	}
	struct stat st;
	if (fstat(w.fd, &st) || (uint64_t)st.st_size < (uint64_t)NBLOCKS * W8_BLOCK)
		CHECK_FAIL("%s holds fewer than %u blocks of %u bytes (make it with mkdata)",
			   path, NBLOCKS, W8_BLOCK);

	/* The inputs, the buffers (touched, so no page fault is timed) and
	 * the task handles are made before the clock starts. */
	w.blocks = malloc(w.reads * sizeof(*w.blocks));
	w.readers = calloc(w.ntasks, sizeof(*w.readers));
	w.tasks = calloc(w.ntasks, sizeof(*w.tasks));
	char *bufs = aligned_alloc(4096, (size_t)w.ntasks * W8_BLOCK);
	if (!w.blocks || !w.readers || !w.tasks || !bufs)
		CHECK_FAIL("out of memory");
	memset(bufs, 0, (size_t)w.ntasks * W8_BLOCK);
	uint64_t seed = SEED;
	for (uint64_t k = 0; k < w.reads; k++)
		w.blocks[k] = (uint32_t)(splitmix64(&seed) % NBLOCKS);
	if (w.reads >= 3 && (w.blocks[0] != 3543 || w.blocks[1] != 26140 || w.blocks[2] != 10754))
		CHECK_FAIL("block_0..2 = %u, %u, %u, expected 3543, 26140, 10754", w.blocks[0],
			   w.blocks[1], w.blocks[2]);
	for (unsigned i = 0; i < w.ntasks; i++)
		w.readers[i] = (reader_t){ .w = &w, .idx = i, .buf = bufs + (size_t)i * W8_BLOCK };

	bench_block_on(workers, 0, spawner, &w, "spawner");
	if (w.reads == DEFAULT_READS && w.sum != DEFAULT_SUM)
		CHECK_FAIL("block sum %llu, expected %llu", (unsigned long long)w.sum, DEFAULT_SUM);

	printf("# w8 block_sum=%llu reads=%llu tasks=%u workers=%u\n",
	       (unsigned long long)w.sum, (unsigned long long)w.reads, w.ntasks, workers);
	report("reads_per_s", (double)w.reads * 1e9 / (double)w.ns, "reads/s");
	/* Not a metric of WORKLOADS.md: what the reads cost in CPU. */
	report("cpu_ns_per_read", (double)w.cpu / (double)w.reads, "ns");
	close(w.fd);
	free(bufs);
	free(w.tasks);
	free(w.readers);
	free(w.blocks);
	return 0;
}
