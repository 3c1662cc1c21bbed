// bench/bench_core.cc: micro-benchmarks of coil's single-loop core.
//
// Each benchmark that needs a running loop runs its timing loop inside a
// coil task (coil_run), because spawning, awaiting and sleeping are task
// operations. Run: build/bench/bench_core (see bench/RESULTS.md).
#include <benchmark/benchmark.h>

#include <coil/coil.h>

#include <cstdio>
#include <cstdlib>

namespace {

// Runs fn(state) as the main task of a fresh loop.
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

int yielder(void *, void **)
{
	for (;;) {
		if (coil_coro_yield(nullptr, nullptr) != 0)
			return 0;
	}
}

// One resume plus one yield back: two context switches.
void BM_ContextSwitch(benchmark::State &state)
{
	coil_coro_t *c;
	if (coil_coro_create(&c, yielder, nullptr, nullptr) != 0) {
		state.SkipWithError("coil_coro_create");
		return;
	}
	coil_coro_resume(c, nullptr, nullptr);
	for (auto _ : state)
		coil_coro_resume(c, nullptr, nullptr);
	coil_coro_destroy(c);
}
BENCHMARK(BM_ContextSwitch);

int empty_task(void *, void **)
{
	return 0;
}

// Spawn, run and complete an empty detached task with a pooled stack. The
// spawner yields to the loop every 256 spawns, so each task's first and
// only step runs in a batch, as a server's accept loop would see it.
void BM_SpawnEmpty(benchmark::State &state)
{
	run_in_task(state, [](benchmark::State &st) {
		unsigned n = 0;
		for (auto _ : st) {
			coil_spawn(nullptr, empty_task, nullptr, nullptr);
			if (++n % 256 == 0)
				coil_sleep(0);
		}
		coil_sleep(0);
		st.SetItemsProcessed(st.iterations());
	});
}
BENCHMARK(BM_SpawnEmpty);

// Create a future, resolve it, await it, release it.
void BM_FutureResolve(benchmark::State &state)
{
	run_in_task(state, [](benchmark::State &st) {
		static int value;
		for (auto _ : st) {
			coil_future_t *f;
			coil_future_create(&f, nullptr);
			coil_future_set_result(f, &value, nullptr);
			void *r;
			coil_await(f, &r);
			benchmark::DoNotOptimize(r);
			coil_future_release(f);
		}
	});
}
BENCHMARK(BM_FutureResolve);

void count_cb(void *arg)
{
	++*static_cast<unsigned long *>(arg);
}

// Schedule a callback with call_soon and run it (batches of 256).
void BM_CallSoon(benchmark::State &state)
{
	run_in_task(state, [](benchmark::State &st) {
		coil_loop_t *loop = coil_get_running_loop();
		unsigned long ran = 0;
		unsigned n = 0;
		for (auto _ : st) {
			coil_loop_call_soon(loop, count_cb, &ran, nullptr);
			if (++n % 256 == 0)
				coil_sleep(0);
		}
		coil_sleep(0);
		if (ran != (unsigned long)st.iterations())
			st.SkipWithError("callbacks lost");
	});
}
BENCHMARK(BM_CallSoon);

// Insert a timer and cancel it, with 10,000 other timers pending.
void BM_TimerInsertCancel(benchmark::State &state)
{
	coil_loop_t *loop;
	if (coil_new_event_loop(&loop) != 0) {
		state.SkipWithError("coil_new_event_loop");
		return;
	}
	unsigned long ran = 0;
	for (int i = 0; i < 10000; i++)
		coil_loop_call_later(loop, (int64_t)(i + 1) * 1000000000, count_cb, &ran, nullptr);
	int64_t d = 0;
	for (auto _ : state) {
		coil_handle_t *h;
		coil_loop_call_later(loop, 5000000000 + (d++ % 1000) * 1000, count_cb, &ran, &h);
		coil_handle_cancel(h);
		coil_handle_release(h);
	}
	coil_loop_close(loop);
}
BENCHMARK(BM_TimerInsertCancel);

// Two tasks on one loop waking each other through futures: one iteration is
// a round trip (A resolves B's future and awaits its own; B wakes, resolves
// A's and awaits the next). Each wake makes a fresh future, as one-shot
// futures are.
struct PingPong {
	coil_future_t *to_a = nullptr, *to_b = nullptr;
	bool stop = false;
};

int pong_task(void *arg, void **)
{
	auto *pp = static_cast<PingPong *>(arg);
	for (;;) {
		coil_future_t *mine = pp->to_b;
		coil_await(mine, nullptr);
		coil_future_release(mine);
		if (pp->stop)
			return 0;
		coil_future_create(&pp->to_b, nullptr);
		coil_future_set_result(pp->to_a, nullptr, nullptr);
	}
}

void BM_WakePingPong(benchmark::State &state)
{
	run_in_task(state, [](benchmark::State &st) {
		PingPong pp;
		coil_future_create(&pp.to_b, nullptr);
		coil_task_t *b;
		coil_spawn(&b, pong_task, &pp, nullptr);
		for (auto _ : st) {
			coil_future_create(&pp.to_a, nullptr);
			coil_future_set_result(pp.to_b, nullptr, nullptr);
			coil_await(pp.to_a, nullptr);
			coil_future_release(pp.to_a);
		}
		pp.stop = true;
		coil_future_set_result(pp.to_b, nullptr, nullptr);
		coil_await(coil_task_future(b), nullptr);
		coil_task_detach(b);
	});
}
BENCHMARK(BM_WakePingPong);

} // namespace

BENCHMARK_MAIN();
