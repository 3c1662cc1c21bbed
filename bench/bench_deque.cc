// bench/bench_deque.cc: micro-benchmarks of the work-stealing deque
// (runtime/sched/deque.h). One iteration is a batch of 64 operations of
// each kind named; divide the time by 64 for one operation.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>

struct coil__deque;
extern "C" {
coil__deque *shim_deque_new(void);
void shim_deque_free(coil__deque *q);
uintptr_t shim_push_pop(coil__deque *q);
uintptr_t shim_push_steal(coil__deque *q);
unsigned shim_owner_round(coil__deque *q);
unsigned shim_thief_round(coil__deque *q);
}

namespace {

void BM_DequePushPop(benchmark::State &state)
{
	coil__deque *q = shim_deque_new();
	for (auto _ : state)
		benchmark::DoNotOptimize(shim_push_pop(q));
	state.SetItemsProcessed(state.iterations() * 64);
	shim_deque_free(q);
}
BENCHMARK(BM_DequePushPop);

void BM_DequeSteal(benchmark::State &state)
{
	coil__deque *q = shim_deque_new();
	for (auto _ : state)
		benchmark::DoNotOptimize(shim_push_steal(q));
	state.SetItemsProcessed(state.iterations() * 64);
	shim_deque_free(q);
}
BENCHMARK(BM_DequeSteal);

// The owner (thread 0) pushes and pops while thread 1 steals from it.
coil__deque *contended_q;

void BM_DequeContended(benchmark::State &state)
{
	if (state.thread_index() == 0)
		contended_q = shim_deque_new();
	for (auto _ : state) {
		if (state.thread_index() == 0)
			benchmark::DoNotOptimize(shim_owner_round(contended_q));
		else
			benchmark::DoNotOptimize(shim_thief_round(contended_q));
	}
	state.SetItemsProcessed(state.iterations() * 64);
	// The timing loop ends with a barrier of all threads: nobody uses the
	// deque any more.
	if (state.thread_index() == 0)
		shim_deque_free(contended_q);
}
BENCHMARK(BM_DequeContended)->Threads(2)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
