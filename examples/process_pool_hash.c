/*
 * process_pool_hash.c: a CPU-heavy hash split over a process pool.
 *
 *     usage: process_pool_hash [workers]   (default: the CPUs we may use)
 *
 * The asyncio tutorial (seed) points to ProcessPoolExecutor for work that
 * needs the CPU. Here 8 chunks of 4 MiB are hashed (FNV-1a, 8 passes over
 * each chunk, each pass seeded with the last one's hash): first one after
 * the other in this process, then as jobs of a process pool, all submitted
 * at once from a task (handing the chunks over rather than copying them)
 * and awaited in order. The job is registered under a
 * name before coil_process_pool_main, the one call a program makes at the
 * top of main to let the pool run its own binary as worker processes.
 * The hashes must agree; the speedup is the sequential time over the
 * pool's (with 2 cores, at best 2; the copies of the chunks through the
 * pipes and the workers' page faults cost a little):
 *
 *     chunk 0: 5b0c8d5fb1e6fa14
 *     ...
 *     chunk 7: 2d1a5f0c6e8b9a37
 *     hashes agree
 *     sequential 0.61 s, 2 worker processes 0.33 s: speedup 1.85
 *
 * (the hashes are always the same; the times vary).
 */
#define PROG "process_pool_hash"

#include <coil/coil.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNKS 8
#define CHUNK_BYTES ((size_t)4 << 20)
#define PASSES 8

static void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", PROG, what, coil_strerror(err));
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* FNV-1a 64 over the data, PASSES times. */
static uint64_t hash_chunk(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (int pass = 0; pass < PASSES; pass++) {
		for (size_t i = 0; i < n; i++) {
			h ^= p[i];
			h *= 0x100000001b3ull;
		}
	}
	return h;
}

/* The process job: the chunk in, its 8-byte hash out. */
static int hash_job(const void *in, size_t len, coil_bytes_t *out)
{
	uint64_t h = hash_chunk(in, len);
	out->data = malloc(sizeof(h));
	if (!out->data)
		return -ENOMEM;
	memcpy(out->data, &h, sizeof(h));
	out->len = sizeof(h);
	return 0;
}

struct work {
	unsigned char *chunks[CHUNKS];
	uint64_t seq[CHUNKS];
	uint64_t par[CHUNKS];
	unsigned workers;         /* asked for (0: the default) */
	unsigned started;         /* what the pool runs */
	double t_pool;
};

static int main_task(void *arg, void **result)
{
	struct work *w = arg;
	(void)result;
	coil_process_pool_opts_t o;
	coil_process_pool_opts_init(&o);
	o.workers = w->workers;
	coil_process_pool_t *pool;
	int rc = coil_process_pool_create(&pool, &o);
	if (rc < 0)
		die("coil_process_pool_create", rc);
	w->started = (unsigned)coil_process_pool_pids(pool, NULL, 0);
	/* The workers are up: time the jobs, not the process starts. */
	double t0 = now();
	coil_future_t *f[CHUNKS];
	for (int i = 0; i < CHUNKS; i++) {
		/* The chunk is handed over, not copied: the pool frees it
		 * once it has been written to a worker. */
		coil_bytes_t chunk = { w->chunks[i], CHUNK_BYTES };
		rc = coil_process_pool_submit_owned(&f[i], pool, "hash", &chunk);
		if (rc < 0)
			die("coil_process_pool_submit_owned", rc);
		w->chunks[i] = NULL;
	}
	for (int i = 0; i < CHUNKS; i++) {
		void *r;
		rc = coil_await(f[i], &r);
		if (rc < 0) {
			const char *msg = coil_future_error_message(f[i]);
			fprintf(stderr, "%s: chunk %d: %s%s%s\n", PROG, i, coil_strerror(rc),
				msg ? ": " : "", msg ? msg : "");
			exit(1);
		}
		const coil_bytes_t *b = r;
		if (b->len != sizeof(uint64_t))
			die("hash job", -EPROTO);
		memcpy(&w->par[i], b->data, sizeof(uint64_t));
		coil_future_release(f[i]);
	}
	w->t_pool = now() - t0;
	return coil_process_pool_shutdown(pool, true, false);
}

int main(int argc, char **argv)
{
	/* Workers run this binary again: register, then opt in, first. */
	int rc = coil_process_register("hash", hash_job);
	if (rc == 0)
		rc = coil_process_pool_main(argc, argv);
	if (rc < 0)
		die("process pool set-up", rc);

	setvbuf(stdout, NULL, _IOLBF, 0);
	struct work *w = calloc(1, sizeof(*w));
	if (!w)
		die("calloc", -ENOMEM);
	w->workers = argc > 1 ? (unsigned)atoi(argv[1]) : 0;
	uint64_t x = 42;
	for (int i = 0; i < CHUNKS; i++) {
		if (!(w->chunks[i] = malloc(CHUNK_BYTES)))
			die("malloc", -ENOMEM);
		for (size_t k = 0; k < CHUNK_BYTES; k += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(w->chunks[i] + k, &x, 8);
		}
	}

	double t0 = now();
	for (int i = 0; i < CHUNKS; i++)
		w->seq[i] = hash_chunk(w->chunks[i], CHUNK_BYTES);
	double t_seq = now() - t0;

	rc = coil_run(main_task, w, NULL, NULL);
	if (rc < 0)
		die("coil_run", rc);

	bool agree = true;
	for (int i = 0; i < CHUNKS; i++) {
		printf("chunk %d: %016" PRIx64 "\n", i, w->par[i]);
		agree &= w->par[i] == w->seq[i];
	}
	if (!agree) {
		printf("hashes DIFFER\n");
		return 1;
	}
	printf("hashes agree\n");
	unsigned n = w->started;
	printf("sequential %.2f s, %u worker process%s %.2f s: speedup %.2f\n", t_seq, n,
	       n == 1 ? "" : "es", w->t_pool, t_seq / w->t_pool);
	free(w);
	return 0;
}
