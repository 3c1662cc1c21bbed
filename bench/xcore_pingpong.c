/*
 * bench/xcore_pingpong.c: what one cache line costs to move between two
 * CPUs of this machine, without coil.
 *
 * Two threads, pinned to CPUs 0 and 1, bounce one atomic counter: each
 * waits (spinning) for the other's value and answers with the next one.
 * A round trip is two transfers of the line. Every cross-thread wake-up,
 * steal and lock handed between workers pays at least one such transfer,
 * so the figure bounds what multi-worker workloads (W1, W2 on two
 * workers, W4) can reach on this machine at the time of the run. Prints
 * `@ ns_per_roundtrip <v> ns`.
 * usage: xcore_pingpong [--n 2000000]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Alignas(64) _Atomic uint64_t line;
static uint64_t rounds = 2000000;

static void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	/* Without the second CPU the threads share one: still correct,
	 * but then the figure is a scheduler's, not the cache's. */
	if (pthread_setaffinity_np(pthread_self(), sizeof(s), &s))
		fprintf(stderr, "# cannot pin to CPU %d\n", cpu);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *answer(void *arg)
{
	(void)arg;
	pin(1);
	for (uint64_t i = 0; i < rounds; i++) {
		while (atomic_load_explicit(&line, memory_order_acquire) != 2 * i + 1)
			;
		atomic_store_explicit(&line, 2 * i + 2, memory_order_release);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--n") && i + 1 < argc) {
			rounds = strtoull(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: xcore_pingpong [--n 2000000]\n");
			return 2;
		}
	}
	if (!rounds)
		rounds = 1;
	pin(0);
	pthread_t t;
	if (pthread_create(&t, NULL, answer, NULL)) {
		perror("pthread_create");
		return 1;
	}
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < rounds; i++) {
		atomic_store_explicit(&line, 2 * i + 1, memory_order_release);
		while (atomic_load_explicit(&line, memory_order_acquire) != 2 * i + 2)
			;
	}
	uint64_t t1 = now_ns();
	pthread_join(t, NULL);
	printf("@ ns_per_roundtrip %.1f ns\n", (double)(t1 - t0) / (double)rounds);
	return 0;
}
