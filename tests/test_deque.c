/* tests/test_deque.c: the run queues of the scheduler: the Chase-Lev
 * work-stealing deque and the global injection queue. */
#include <pthread.h>
#include <stdatomic.h>

#include "sched/deque.h"
#include "sched/inject.h"
#include "test.h"

/* Items are non-NULL and never equal to COIL__DEQUE_ABORT. */
#define ITEM(i) ((void *)(((uintptr_t)(i) + 1) << 3))
#define INDEX(p) ((((uintptr_t)(p)) >> 3) - 1)

TEST(owner_pops_lifo_thieves_steal_fifo)
{
	coil__deque_t q;
	ASSERT_EQ(coil__deque_init(&q, 8), 0);
	ASSERT(coil__deque_pop(&q) == NULL);
	ASSERT(coil__deque_steal(&q) == NULL);
	for (int i = 0; i < 4; i++)
		ASSERT(coil__deque_push(&q, ITEM(i)));
	ASSERT_EQ(coil__deque_len(&q), 4);
	ASSERT_PTR_EQ(coil__deque_pop(&q), ITEM(3));
	ASSERT_PTR_EQ(coil__deque_steal(&q), ITEM(0));
	ASSERT_PTR_EQ(coil__deque_steal(&q), ITEM(1));
	ASSERT_PTR_EQ(coil__deque_pop(&q), ITEM(2));
	ASSERT(coil__deque_pop(&q) == NULL);
	ASSERT_EQ(coil__deque_len(&q), 0);
	coil__deque_fini(&q);
}

TEST(push_fails_when_full_and_indices_wrap)
{
	coil__deque_t q;
	ASSERT_EQ(coil__deque_init(&q, 5), 0);
	ASSERT_EQ(coil__deque_capacity(&q), 8);
	for (int round = 0; round < 1000; round++) {
		for (int i = 0; i < 8; i++)
			ASSERT(coil__deque_push(&q, ITEM(i)));
		ASSERT(!coil__deque_push(&q, ITEM(99)));
		ASSERT_PTR_EQ(coil__deque_steal(&q), ITEM(0));
		for (int i = 7; i >= 1; i--)
			ASSERT_PTR_EQ(coil__deque_pop(&q), ITEM(i));
		ASSERT(coil__deque_pop(&q) == NULL);
	}
	coil__deque_fini(&q);
}

TEST(steal_half_moves_half_rounded_up)
{
	coil__deque_t a, b;
	ASSERT_EQ(coil__deque_init(&a, 64), 0);
	ASSERT_EQ(coil__deque_init(&b, 4), 0);
	for (int i = 0; i < 9; i++)
		coil__deque_push(&a, ITEM(i));
	/* Half of 9 is 5, but b has room for 4. */
	ASSERT_EQ(coil__deque_steal_half(&a, &b, 100), 4);
	ASSERT_EQ(coil__deque_len(&a), 5);
	ASSERT_PTR_EQ(coil__deque_steal(&b), ITEM(0));
	ASSERT_PTR_EQ(coil__deque_pop(&b), ITEM(3));
	coil__deque_fini(&a);
	coil__deque_fini(&b);
}

/*
 * The stress test: one owner pushes every item once and pops some back (or
 * takes a few of the oldest), while thieves steal one at a time or half at a time into deques of their
 * own. Every item must be taken exactly once: a lost item leaves a count of
 * 0, a doubled one a count of 2.
 */
enum { THIEVES = 3 };
static size_t n_items;
static _Atomic unsigned char *taken;
static atomic_size_t taken_total;
static atomic_bool owner_done;
static coil__deque_t shared_q;

static void take(void *x)
{
	size_t i = INDEX(x);
	ASSERT_LT(i, n_items);
	atomic_fetch_add_explicit(&taken[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&taken_total, 1, memory_order_relaxed);
}

static void *owner(void *arg)
{
	(void)arg;
	uint64_t rng = 88172645463325252ull;
	for (size_t i = 0; i < n_items; i++) {
		while (!coil__deque_push(&shared_q, ITEM(i))) {
			void *x = coil__deque_pop(&shared_q);
			if (x)
				take(x);
		}
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		/* Popping most of the time keeps the deque short, so that owner and
		 * thieves often race for the last item. Now and then the owner
		 * takes a chunk of the oldest, racing the thieves at the top. */
		if (rng % 16 == 0) {
			void *xs[8];
			size_t k = coil__deque_take_oldest(&shared_q, xs, 1 + rng % 8);
			for (size_t j = 0; j < k; j++)
				take(xs[j]);
		} else if (rng % 4 != 0) {
			void *x = coil__deque_pop(&shared_q);
			if (x)
				take(x);
		}
	}
	void *x;
	while ((x = coil__deque_pop(&shared_q)))
		take(x);
	atomic_store(&owner_done, true);
	return NULL;
}

static void *thief(void *arg)
{
	intptr_t id = (intptr_t)arg;
	coil__deque_t mine;
	ASSERT_EQ(coil__deque_init(&mine, 32), 0);
	for (;;) {
		bool done = atomic_load(&owner_done);
		if (id % 2) {
			void *x = coil__deque_steal(&shared_q);
			if (x && x != COIL__DEQUE_ABORT)
				take(x);
			else if (!x && done)
				break;
		} else {
			size_t n = coil__deque_steal_half(&shared_q, &mine, 32);
			void *x;
			while ((x = coil__deque_pop(&mine)))
				take(x);
			if (!n && done && coil__deque_len(&shared_q) == 0)
				break;
		}
	}
	coil__deque_fini(&mine);
	return NULL;
}

TEST(stress_every_item_taken_exactly_once)
{
	n_items = test_heavy_tools() ? 200000 : 3000000;
	taken = calloc(n_items, 1);
	ASSERT_EQ(coil__deque_init(&shared_q, 256), 0);
	pthread_t th[THIEVES + 1];
	for (intptr_t i = 0; i < THIEVES; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, thief, (void *)i), 0);
	ASSERT_EQ(pthread_create(&th[THIEVES], NULL, owner, NULL), 0);
	for (int i = 0; i <= THIEVES; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(atomic_load(&taken_total), n_items);
	for (size_t i = 0; i < n_items; i++)
		if (taken[i] != 1)
			TEST_FAIL_("item %zu taken %d times", i, (int)taken[i]);
	coil__deque_fini(&shared_q);
	free((void *)taken);
}

struct node {
	coil__fnode_t link;
	size_t id;
};

TEST(inject_queue_is_fifo_and_refuses_after_close)
{
	coil__inject_t in;
	coil__inject_init(&in);
	struct node ns[10];
	for (size_t i = 0; i < 10; i++) {
		ns[i].id = i;
		ASSERT(coil__inject_push(&in, &ns[i].link));
	}
	ASSERT_EQ(coil__inject_len(&in), 10);
	coil__fifo_t out;
	coil__fifo_init(&out);
	ASSERT_EQ(coil__inject_pop_batch(&in, &out, 4), 4);
	ASSERT_EQ(coil__inject_pop_batch(&in, &out, 100), 6);
	ASSERT_EQ(coil__inject_pop_batch(&in, &out, 100), 0);
	for (size_t i = 0; i < 10; i++) {
		struct node *n = coil__container_of(coil__fifo_pop(&out), struct node, link);
		ASSERT_EQ(n->id, i);
	}
	coil__inject_close(&in);
	ASSERT(!coil__inject_push(&in, &ns[0].link));
	coil__inject_fini(&in);
}

/* Producers push batches and single nodes, consumers pop batches: every
 * node comes out exactly once and each producer's nodes in its order. */
enum { PRODUCERS = 3, CONSUMERS = 2 };
static coil__inject_t shared_in;
static struct node *in_nodes;
static size_t in_per_producer;
static atomic_size_t in_popped;
static _Atomic unsigned char *in_seen;

static void *in_producer(void *arg)
{
	size_t p = (size_t)(uintptr_t)arg;
	struct node *base = in_nodes + p * in_per_producer;
	for (size_t i = 0; i < in_per_producer;) {
		coil__fifo_t batch;
		coil__fifo_init(&batch);
		size_t k = 1 + i % 7;
		for (size_t j = 0; j < k && i < in_per_producer; j++, i++)
			coil__fifo_push(&batch, &base[i].link);
		ASSERT(coil__inject_push_batch(&shared_in, &batch));
	}
	return NULL;
}

static void *in_consumer(void *arg)
{
	(void)arg;
	size_t total = PRODUCERS * in_per_producer;
	size_t last[PRODUCERS];
	for (int p = 0; p < PRODUCERS; p++)
		last[p] = SIZE_MAX;
	while (atomic_load(&in_popped) < total) {
		coil__fifo_t out;
		coil__fifo_init(&out);
		size_t n = coil__inject_pop_batch(&shared_in, &out, 16);
		coil__fnode_t *f;
		while ((f = coil__fifo_pop(&out))) {
			struct node *nd = coil__container_of(f, struct node, link);
			size_t p = nd->id / in_per_producer, i = nd->id % in_per_producer;
			/* FIFO per producer as seen by one consumer. */
			ASSERT(last[p] == SIZE_MAX || i > last[p]);
			last[p] = i;
			atomic_fetch_add(&in_seen[nd->id], 1);
		}
		atomic_fetch_add(&in_popped, n);
	}
	return NULL;
}

/* Pops everything, n at a time, checking that ids come out as 0, 1, ... */
static void drain_in_order(coil__inject_t *in, size_t total, size_t n)
{
	size_t next = 0;
	for (;;) {
		coil__fifo_t out;
		coil__fifo_init(&out);
		size_t k = coil__inject_pop_batch(in, &out, n);
		ASSERT(k <= n && k <= COIL__INJECT_POP_MAX);
		ASSERT_EQ(out.len, k);
		if (!k)
			break;
		coil__fnode_t *f;
		while ((f = coil__fifo_pop(&out)))
			ASSERT_EQ(coil__container_of(f, struct node, link)->id, next++);
	}
	ASSERT_EQ(next, total);
	ASSERT_EQ(coil__inject_len(in), 0);
}

TEST(inject_queue_grows_shrinks_and_queues_behind_a_full_ring)
{
	enum { N = 20000 };
	struct node *ns = calloc(N, sizeof(*ns));
	for (size_t i = 0; i < N; i++)
		ns[i].id = i;
	/* Singles and batches, through several doublings of the ring. */
	coil__inject_t in;
	coil__inject_init(&in);
	bool empty = false;
	ASSERT(coil__inject_push_ex(&in, &ns[0].link, &empty));
	ASSERT(empty);
	for (size_t i = 1; i < N;) {
		coil__fifo_t batch;
		coil__fifo_init(&batch);
		for (size_t k = 0; k < 1 + i % 37 && i < N; k++, i++)
			coil__fifo_push(&batch, &ns[i].link);
		ASSERT(coil__inject_push_batch_ex(&in, &batch, &empty));
		ASSERT(!empty);
		ASSERT_EQ(batch.len, 0);
	}
	ASSERT_EQ(coil__inject_len(&in), N);
	ASSERT(in.cap >= N);
	drain_in_order(&in, N, 1000);
	ASSERT_EQ(in.cap, 0); /* a big ring is given back once empty */
	/* A ring that may not grow: the rest waits behind it, in order,
	 * and pushes go behind that until it is gone. */
	in.max_cap = 256;
	for (size_t i = 0; i < 1000; i++)
		ASSERT(coil__inject_push(&in, &ns[i].link));
	ASSERT_EQ(in.n, 256);
	ASSERT_EQ(in.over.len, 1000 - 256);
	coil__fifo_t out;
	coil__fifo_init(&out);
	ASSERT_EQ(coil__inject_pop_batch(&in, &out, 64), 64);
	for (size_t i = 1000; i < 1100; i++)
		ASSERT(coil__inject_push(&in, &ns[i].link));
	ASSERT_EQ(coil__inject_len(&in), 1100 - 64);
	for (size_t i = 0; i < 64; i++)
		ASSERT_EQ(coil__container_of(coil__fifo_pop(&out), struct node, link)->id, i);
	size_t next = 64;
	size_t k;
	while ((k = coil__inject_pop_batch(&in, &out, 50))) {
		coil__fnode_t *f;
		while ((f = coil__fifo_pop(&out)))
			ASSERT_EQ(coil__container_of(f, struct node, link)->id, next++);
	}
	ASSERT_EQ(next, 1100);
	/* Arrays of nodes, into the ring and behind it. */
	coil__fnode_t *arr[300];
	for (size_t i = 0; i < 300; i++)
		arr[i] = &ns[i].link;
	ASSERT(coil__inject_push_nodes(&in, arr, 200, &empty));
	ASSERT(empty);
	ASSERT(coil__inject_push_nodes(&in, arr + 200, 100, &empty)); /* all behind */
	ASSERT(!empty);
	ASSERT_EQ(in.n, 200);
	ASSERT_EQ(in.over.len, 100);
	drain_in_order(&in, 300, 64);
	coil__inject_close(&in);
	ASSERT(!coil__inject_push_nodes(&in, arr, 1, NULL));
	ASSERT(!coil__inject_push(&in, &ns[0].link));
	coil__inject_fini(&in);
	free(ns);
}

/* Producers and consumers at once; with max_cap, part of the time behind
 * a ring that may not grow. */
static void inject_stress(size_t max_cap)
{
	in_per_producer = test_heavy_tools() ? 20000 : 300000;
	size_t total = PRODUCERS * in_per_producer;
	in_nodes = calloc(total, sizeof(*in_nodes));
	in_seen = calloc(total, 1);
	atomic_store(&in_popped, 0);
	for (size_t i = 0; i < total; i++)
		in_nodes[i].id = i;
	coil__inject_init(&shared_in);
	shared_in.max_cap = max_cap;
	pthread_t th[PRODUCERS + CONSUMERS];
	for (int i = 0; i < CONSUMERS; i++)
		pthread_create(&th[i], NULL, in_consumer, NULL);
	for (int i = 0; i < PRODUCERS; i++)
		pthread_create(&th[CONSUMERS + i], NULL, in_producer, (void *)(uintptr_t)i);
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(atomic_load(&in_popped), total);
	for (size_t i = 0; i < total; i++)
		if (in_seen[i] != 1)
			TEST_FAIL_("node %zu seen %d times", i, (int)in_seen[i]);
	coil__inject_fini(&shared_in);
	free(in_nodes);
	free((void *)in_seen);
}

TEST(inject_queue_stress_loses_and_doubles_nothing)
{
	inject_stress(0);
}

TEST(inject_queue_stress_behind_a_ring_that_may_not_grow)
{
	inject_stress(256);
}

TEST_LIST(
	TEST_ENTRY(owner_pops_lifo_thieves_steal_fifo),
	TEST_ENTRY(push_fails_when_full_and_indices_wrap),
	TEST_ENTRY(steal_half_moves_half_rounded_up),
	TEST_ENTRY(stress_every_item_taken_exactly_once),
	TEST_ENTRY(inject_queue_is_fifo_and_refuses_after_close),
	TEST_ENTRY(inject_queue_grows_shrinks_and_queues_behind_a_full_ring),
	TEST_ENTRY(inject_queue_stress_loses_and_doubles_nothing),
	TEST_ENTRY(inject_queue_stress_behind_a_ring_that_may_not_grow))
