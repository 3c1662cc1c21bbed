/*
 * bench/plain_fileread.c: the hand-written io_uring baseline of workload W8
 * (WORKLOADS.md): random 4 KiB reads of a file in the page cache, 64 in
 * flight, from one thread, with no framework.
 *
 * The same reads and checks as w8_fileread: R = 200,000 reads of 4,096
 * bytes at offset block_k * 4096, block_k = (k-th splitmix64 value, seed 7)
 * mod 65,536; each must return 4,096 bytes whose first 8 are block_k. One
 * ring, set up as coil sets up its rings (SINGLE_ISSUER|DEFER_TASKRUN, else
 * COOP_TASKRUN, else plain), with 64 slots: the first 64 reads are queued,
 * and each completion's slot is refilled with the next read at once, so
 * one io_uring_enter submits every refill of a batch and waits for the
 * next completions. Buffered I/O, no registered files or buffers (coil
 * registers none either).
 *
 * Timed region: from before the first submission until the last completion
 * has been checked. Prints `# w8 block_sum=...`, `@ reads_per_s <v>
 * reads/s` and `@ cpu_ns_per_read <v> ns` (the process's CPU time in the
 * timed region per read); a failed check prints why and exits 2.
 *
 * usage: plain_fileread --file F [--reads 200000] [--depth 64]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h" /* ../shared/workloads: PRNG, clock, result lines */

/* CPU time of the whole process (every thread), ns. */
static uint64_t cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
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
#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif

#define NBLOCKS 65536u
#define SEED 7
#define DEFAULT_READS 200000u
#define DEFAULT_SUM 6566592905ull

static int ring_setup(struct io_uring *ring, unsigned entries)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		0,
	};
	int rc = -EINVAL;
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
		p.cq_entries = entries * 8;
		rc = io_uring_queue_init_params(entries, ring, &p);
		if (rc != -EINVAL)
			break;
	}
	return rc;
}

static void usage(void)
{
	fprintf(stderr, "usage: plain_fileread --file F [--reads R] [--depth D]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	uint64_t reads = DEFAULT_READS;
	unsigned depth = 64;
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			usage();
		const char *v = argv[i + 1];
		if (!strcmp(argv[i], "--file"))
			path = v;
		else if (!strcmp(argv[i], "--reads"))
			reads = strtoull(v, NULL, 10);
		else if (!strcmp(argv[i], "--depth"))
			depth = (unsigned)atoi(v);
		else
			usage();
	}
	if (!path || !reads || !depth || depth > 4096)
		usage();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		perror(path);
		return 2;
	}
	struct stat st;
	if (fstat(fd, &st) || (uint64_t)st.st_size < (uint64_t)NBLOCKS * W8_BLOCK)
		CHECK_FAIL("%s holds fewer than %u blocks of %u bytes (make it with mkdata)",
			   path, NBLOCKS, W8_BLOCK);

	uint32_t *blocks = malloc(reads * sizeof(*blocks));
	uint64_t *slot_k = calloc(depth, sizeof(*slot_k));
	char *bufs = aligned_alloc(4096, (size_t)depth * W8_BLOCK);
	if (!blocks || !slot_k || !bufs)
		CHECK_FAIL("out of memory");
	memset(bufs, 0, (size_t)depth * W8_BLOCK);
	uint64_t seed = SEED, expect = 0;
	for (uint64_t k = 0; k < reads; k++) {
		blocks[k] = (uint32_t)(splitmix64(&seed) % NBLOCKS);
		expect += blocks[k];
	}
	if (reads >= 3 && (blocks[0] != 3543 || blocks[1] != 26140 || blocks[2] != 10754))
		CHECK_FAIL("block_0..2 = %u, %u, %u, expected 3543, 26140, 10754", blocks[0],
			   blocks[1], blocks[2]);
	struct io_uring ring;
	int rc = ring_setup(&ring, depth < 4 ? 4 : depth);
	if (rc)
		CHECK_FAIL("io_uring_queue_init: %s", strerror(-rc));

	uint64_t c0 = cpu_ns();
	uint64_t t0 = now_ns();
	uint64_t next = 0, done = 0, sum = 0;
	/* Fills slot s with read `next`. The SQ has a slot for each: no
	 * io_uring_get_sqe can fail. */
	for (unsigned s = 0; s < depth && next < reads; s++, next++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		slot_k[s] = next;
		io_uring_prep_read(sqe, fd, bufs + (size_t)s * W8_BLOCK, W8_BLOCK,
				   (uint64_t)blocks[next] * W8_BLOCK);
		io_uring_sqe_set_data64(sqe, s);
	}
	while (done < reads) {
		rc = io_uring_submit_and_wait(&ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			CHECK_FAIL("io_uring_enter: %s", strerror(-rc));
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			n++;
			unsigned s = (unsigned)cqe->user_data;
			uint64_t k = slot_k[s];
			char *buf = bufs + (size_t)s * W8_BLOCK;
			uint64_t tag = cqe->res == W8_BLOCK ? w8_tag(buf) : 0;
			if (cqe->res != W8_BLOCK || tag != blocks[k])
				CHECK_FAIL("read %llu (block %u) returned %d, tag %llu",
					   (unsigned long long)k, blocks[k], cqe->res,
					   (unsigned long long)tag);
			sum += tag;
			done++;
			if (next < reads) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
				slot_k[s] = next;
				io_uring_prep_read(sqe, fd, buf, W8_BLOCK,
						   (uint64_t)blocks[next] * W8_BLOCK);
				io_uring_sqe_set_data64(sqe, s);
				next++;
			}
		}
		io_uring_cq_advance(&ring, n);
	}
	if (sum != expect)
		CHECK_FAIL("block sum %llu, expected %llu", (unsigned long long)sum,
			   (unsigned long long)expect);
	uint64_t ns = now_ns() - t0;
	uint64_t cpu = cpu_ns() - c0;
	if (reads == DEFAULT_READS && sum != DEFAULT_SUM)
		CHECK_FAIL("block sum %llu, expected %llu", (unsigned long long)sum, DEFAULT_SUM);

	printf("# w8 block_sum=%llu reads=%llu depth=%u ring_flags=0x%x\n",
	       (unsigned long long)sum, (unsigned long long)reads, depth, ring.flags);
	report("reads_per_s", (double)reads * 1e9 / (double)ns, "reads/s");
	report("cpu_ns_per_read", (double)cpu / (double)reads, "ns");
	io_uring_queue_exit(&ring);
	close(fd);
	free(bufs);
	free(slot_k);
	free(blocks);
	return 0;
}
