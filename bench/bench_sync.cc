// bench/bench_sync.cc: micro-benchmarks of the synchronisation primitives
// (coil/sync.h) and of coil_gather, on one worker and across two.
//
// As in bench_core.cc, the timing loop runs inside a coil task, because
// queue and lock awaits are task operations. Each benchmark call makes its
// own loop or runtime (coil_run) before its timing loop starts and ends it
// after the loop, so neither is timed. On two workers the benchmark's State
// is driven by a task that may run on a worker thread other than the one
// that called the benchmark; only that task touches it until it is done.
// Run: build/bench/bench_sync.
#include <benchmark/benchmark.h>

#include <coil/coil.h>

#include <atomic>
#include <cstdint>

namespace {

// Runs fn(state) as the main task of a fresh one-worker loop.
void run_in_task(benchmark::State &state, void (*fn)(benchmark::State &))
{
	struct Ctx {
		benchmark::State *state;
		void (*fn)(benchmark::State &);
	} ctx{&state, fn};
	int rc = coil_run(
		[](void *arg, void **) -> int {
			auto *c = static_cast<Ctx *>(arg);
			c->fn(*c->state);
			return 0;
		},
		&ctx, nullptr, nullptr);
	if (rc != 0)
		state.SkipWithError(coil_strerror(rc));
}

// Runs fn(arg) as the main task of a fresh runtime of `workers` workers
// (worker 0 on this thread) and reports its error, if it returns one, on the
// state. fn returns 0 after a failure it has reported itself.
void run_on_workers(benchmark::State &state, unsigned workers, coil_fn fn, void *arg)
{
	coil_runtime_opts_t opts;
	coil_runtime_opts_init(&opts);
	opts.workers = workers;
	int rc = coil_run(fn, arg, nullptr, &opts);
	if (rc != 0)
		state.SkipWithError(coil_strerror(rc));
}

// Pins the calling task to the worker it runs on, which must be `worker`.
int pin_here(int worker)
{
	if (coil_current_worker() != worker)
		return COIL_EINVALSTATE;
	return coil_task_pin();
}

// Waits, without blocking the worker, until the concurrent future is done,
// then returns its outcome and drops the reference. Used after timing only.
int finish(coil_cfuture_t *cf)
{
	while (!coil_cfuture_done(cf))
		coil_sleep_ns(20 * 1000);
	int rc = coil_cfuture_wait(cf, 0, nullptr);
	coil_cfuture_release(cf);
	return rc;
}

/* --- Queue ---------------------------------------------------------------- */

// A producer and a consumer task passing items 1, 2, 3, ... through a bounded
// FIFO queue. The consumer runs the timing loop and checks that the items
// arrive in order; when it is done it shuts the queue down, which ends the
// producer's put loop with COIL_ECLOSED.
struct QueuePair {
	benchmark::State *state;
	coil_queue_t *q = nullptr;
	int consumer_worker = -1; // the worker the consumer must run on, or -1
	const char *error = nullptr;
};

int queue_consumer(void *arg, void **)
{
	auto *p = static_cast<QueuePair *>(arg);
	benchmark::State &st = *p->state;
	if (p->consumer_worker >= 0 && pin_here(p->consumer_worker) != 0) {
		st.SkipWithError("consumer is not on its worker");
	} else {
		uintptr_t expected = 1;
		for (auto _ : st) {
			void *item;
			if (coil_queue_get(p->q, &item) != 0 ||
			    item != reinterpret_cast<void *>(expected++)) {
				st.SkipWithError("queue get failed or out of order");
				break;
			}
		}
		st.SetItemsProcessed(st.iterations());
	}
	// Wakes the producer, blocked in put or about to call it. The items
	// left are integers, so dropping them frees nothing.
	coil_queue_shutdown(p->q, true);
	return 0;
}

// Puts items until the queue is shut down. Returns 0 when that is how it
// ended.
int queue_produce(coil_queue_t *q)
{
	uintptr_t next = 1;
	int rc;
	while ((rc = coil_queue_put(q, reinterpret_cast<void *>(next))) == 0)
		next++;
	return rc == COIL_ECLOSED ? 0 : rc;
}

// One iteration: one item put by the producer task and taken by the consumer
// task (coil_queue_put + coil_queue_get and the task switches between them),
// on a one-worker loop. Arg: the queue's capacity. With 64 the producer
// fills the queue, then each get that frees a slot moves the blocked
// producer's item in, so the two switch about once per 64 items; with 1 they
// switch on every item.
void BM_QueuePutGetSameWorker(benchmark::State &state)
{
	QueuePair p;
	p.state = &state;
	if (coil_queue_create(&p.q, COIL_QUEUE_FIFO, (size_t)state.range(0)) != 0) {
		state.SkipWithError("coil_queue_create");
		return;
	}
	run_on_workers(state, 1, [](void *arg, void **) -> int {
		auto *pp = static_cast<QueuePair *>(arg);
		coil_task_t *consumer;
		int rc = coil_spawn(&consumer, queue_consumer, pp, nullptr);
		if (rc != 0) {
			coil_queue_destroy(pp->q);
			return rc;
		}
		rc = queue_produce(pp->q);
		int crc = coil_await(coil_task_future(consumer), nullptr);
		coil_task_detach(consumer);
		int drc = coil_queue_destroy(pp->q);
		return rc != 0 ? rc : crc != 0 ? crc : drc;
	}, &p);
}
BENCHMARK(BM_QueuePutGetSameWorker)->Arg(64)->Arg(1);

// One iteration: one item put by the producer task, pinned to worker 0, and
// taken by the consumer task, pinned to worker 1, on a two-worker runtime
// (wall-clock time). Arg: the queue's capacity. Every hand-over between the
// two is a cross-thread wake-up of a worker that may be asleep in the kernel.
// The producer is the runtime's main task (which starts on worker 0); the
// consumer is handed to worker 1's loop with coil_run_coroutine_threadsafe
// and a pin.
void BM_QueuePutGetCrossWorker(benchmark::State &state)
{
	QueuePair p;
	p.state = &state;
	p.consumer_worker = 1;
	if (coil_queue_create(&p.q, COIL_QUEUE_FIFO, (size_t)state.range(0)) != 0) {
		state.SkipWithError("coil_queue_create");
		return;
	}
	run_on_workers(state, 2, [](void *arg, void **) -> int {
		auto *pp = static_cast<QueuePair *>(arg);
		int rc = pin_here(0);
		if (rc != 0) {
			pp->state->SkipWithError("main task is not on worker 0");
			coil_queue_destroy(pp->q);
			return 0;
		}
		coil_spawn_opts_t pinned = {};
		pinned.pinned = true;
		coil_cfuture_t *consumer;
		rc = coil_run_coroutine_threadsafe_opts(
			&consumer, coil_runtime_loop(coil_current_runtime(), 1),
			queue_consumer, pp, &pinned);
		if (rc == 0) {
			rc = queue_produce(pp->q);
			int crc = finish(consumer);
			if (rc == 0)
				rc = crc;
		}
		int drc = coil_queue_destroy(pp->q);
		return rc != 0 ? rc : drc;
	}, &p);
}
BENCHMARK(BM_QueuePutGetCrossWorker)->Arg(64)->Arg(1)->UseRealTime();

/* --- Lock ----------------------------------------------------------------- */

// One iteration: coil_lock_acquire + coil_lock_release of a free lock by the
// one task that uses it (no waiter, no switch), on a one-worker loop.
void BM_LockUncontended(benchmark::State &state)
{
	run_in_task(state, [](benchmark::State &st) {
		coil_lock_t *l;
		if (coil_lock_create(&l) != 0) {
			st.SkipWithError("coil_lock_create");
			return;
		}
		for (auto _ : st) {
			if (coil_lock_acquire(l) != 0 || coil_lock_release(l) != 0) {
				st.SkipWithError("acquire or release failed");
				break;
			}
		}
		coil_lock_destroy(l);
	});
}
BENCHMARK(BM_LockUncontended);

// Four contender tasks share one lock, a budget of pairs and a counter, all
// touched only under the lock. Each counts its own pairs too, so a broken
// mutual exclusion shows as a counter that disagrees with their sum.
constexpr int kContenders = 4;

struct LockContention {
	benchmark::State *state;
	bool pinned;
	coil_lock_t *lock = nullptr;
	coil_event_t *done = nullptr; // set by the last contender to finish
	std::atomic<int> ready{0};    // contenders about to acquire
	std::atomic<int> running{kContenders};
	std::atomic<bool> misplaced{false};
	int64_t remaining = 0;        // pairs left to do (under the lock)
	int64_t counter = 0;          // pairs done (under the lock)
	int64_t on_worker1 = 0;       // of which on worker 1 (under the lock)
	int64_t mine[kContenders] = {};
};

struct Contender {
	LockContention *c;
	int index;
};

int contender(void *arg, void **)
{
	auto *me = static_cast<Contender *>(arg);
	LockContention *c = me->c;
	if (c->pinned && coil_current_worker() != me->index % 2)
		c->misplaced = true;
	c->ready.fetch_add(1);
	int rc;
	int64_t n = 0;
	while ((rc = coil_lock_acquire(c->lock)) == 0) {
		bool more = c->remaining > 0;
		if (more) {
			c->remaining--;
			c->counter++;
			c->on_worker1 += coil_current_worker() == 1;
			n++;
		}
		rc = coil_lock_release(c->lock);
		if (!more)
			break;
	}
	c->mine[me->index] = n;
	if (c->running.fetch_sub(1) == 1)
		coil_event_set(c->done);
	return rc;
}

int lock_contention_main(void *arg, void **)
{
	auto *c = static_cast<LockContention *>(arg);
	benchmark::State &st = *c->state;
	coil_runtime_t *rt = coil_current_runtime();
	// Both calls to KeepRunningBatch are then made on one thread.
	int rc = pin_here(0);
	if (rc == 0)
		rc = coil_lock_create(&c->lock);
	if (rc == 0)
		rc = coil_event_create(&c->done);
	// The contenders start blocked behind this task, which releases the lock
	// once timing has started: from the first timed pair on, all four are in
	// the lock's queue. Started on a free lock, the first contender would do
	// thousands of uncontended pairs before another task tried to acquire.
	if (rc == 0)
		rc = coil_lock_acquire(c->lock);
	if (rc != 0)
		return rc;
	// The contenders go through the runtime's injection queue (Arg 0: the
	// scheduler places them) or straight to worker i % 2, pinned (Arg 1).
	Contender who[kContenders];
	coil_cfuture_t *cf[kContenders];
	coil_spawn_opts_t opts = {};
	opts.pinned = c->pinned;
	for (int i = 0; i < kContenders; i++) {
		who[i] = {c, i};
		coil_loop_t *loop = coil_runtime_loop(rt, c->pinned ? i % 2 : COIL_ANY_WORKER);
		rc = coil_run_coroutine_threadsafe_opts(&cf[i], loop, contender, &who[i], &opts);
		if (rc != 0)
			return rc; // coil_run cancels those already started
	}
	// Each contender calls acquire right after counting itself ready, with
	// no await between: a millisecond more finds all four waiting.
	while (c->ready.load() < kContenders)
		coil_sleep_ns(20 * 1000);
	coil_sleep_ns(1000 * 1000);
	// One batch of exactly max_iterations pairs, shared by the contenders:
	// the timer runs from the first KeepRunningBatch to the second.
	int64_t n = st.max_iterations;
	c->remaining = n;
	while (st.KeepRunningBatch(n)) {
		coil_lock_release(c->lock);
		coil_event_wait(c->done);
	}
	for (int i = 0; i < kContenders; i++) {
		int crc = finish(cf[i]);
		if (rc == 0)
			rc = crc;
	}
	int64_t sum = 0;
	for (int i = 0; i < kContenders; i++)
		sum += c->mine[i];
	if (rc != 0)
		st.SkipWithError(coil_strerror(rc));
	else if (c->misplaced)
		st.SkipWithError("a pinned contender is not on its worker");
	else if (c->counter != n || sum != n || c->remaining != 0)
		st.SkipWithError("counter wrong: the lock let two holders in");
	st.SetItemsProcessed(c->counter);
	st.counters["w1_share"] = n ? (double)c->on_worker1 / (double)n : 0.0;
	coil_event_destroy(c->done);
	coil_lock_destroy(c->lock);
	return 0;
}

// One iteration: one coil_lock_acquire + shared-counter increment +
// coil_lock_release by any of 4 tasks contending for the lock on a
// two-worker runtime (wall-clock time). Arg 0: the tasks are placed by the
// scheduler; Arg 1: two are pinned to each worker. Releases hand the lock to
// the longest waiter, so nearly every pair includes waking another task,
// often on the other worker. The w1_share counter is the fraction of pairs
// done on worker 1.
void BM_LockContended(benchmark::State &state)
{
	LockContention c;
	c.state = &state;
	c.pinned = state.range(0) != 0;
	run_on_workers(state, 2, lock_contention_main, &c);
}
BENCHMARK(BM_LockContended)->Arg(0)->Arg(1)->UseRealTime();

/* --- gather --------------------------------------------------------------- */

constexpr size_t kGathered = 1000;

int empty_task(void *, void **)
{
	return 0;
}

// One iteration: spawn 1,000 empty tasks (each with a handle), coil_gather
// their 1,000 futures until all are done, and drop the handles, on a
// one-worker loop. items_per_second counts tasks.
void BM_Gather1000(benchmark::State &state)
{
	run_in_task(state, [](benchmark::State &st) {
		static coil_task_t *tasks[kGathered];
		static coil_future_t *futures[kGathered];
		for (auto _ : st) {
			size_t n = 0;
			int rc = 0;
			while (n < kGathered &&
			       (rc = coil_spawn(&tasks[n], empty_task, nullptr, nullptr)) == 0) {
				futures[n] = coil_task_future(tasks[n]);
				n++;
			}
			if (rc == 0)
				rc = coil_gather(futures, n, nullptr, nullptr, 0);
			for (size_t i = 0; i < n; i++)
				coil_task_detach(tasks[i]);
			if (rc != 0) {
				st.SkipWithError(coil_strerror(rc));
				break;
			}
		}
		st.SetItemsProcessed(st.iterations() * (int64_t)kGathered);
	});
}
BENCHMARK(BM_Gather1000);

} // namespace

BENCHMARK_MAIN();
