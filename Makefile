# The README's two commands. Everything else is CMake (CMakeLists.txt).
#   make run    builds and runs the showcase (the ported asyncio examples)
#   make test   builds and runs every test: Release (gcc), ASan+UBSan and
#               TSan (clang), and the core tests under Valgrind
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build run test test-release build-clang test-asan test-tsan test-valgrind bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	@$(BUILD)/examples/showcase

test: deps
	@$(MAKE) --no-print-directory test-release build-clang test-asan test-tsan test-valgrind

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# Warnings are errors with clang too, in a build with the Release one's
# allocation caches (the sanitizer builds have none; no LTO: clang's
# bitcode archives need its own linker).
build-clang: deps
	@CC=clang CXX=clang++ cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCOIL_LTO=OFF -DCOIL_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-clang -j$(JOBS)

test-asan: deps
	@CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCOIL_SANITIZE=address,undefined -DCOIL_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(JOBS)

test-tsan: deps
	@CC=clang CXX=clang++ cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCOIL_SANITIZE=thread -DCOIL_BUILD_BENCH=OFF -DCOIL_BUILD_EXAMPLES=OFF >/dev/null
	@cmake --build build-tsan -j$(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j$(JOBS) -E install

# The core tests under Valgrind, from a build whose runtime allocates with
# libc malloc (Valgrind cannot see into jemalloc's arenas).
VALGRIND_TESTS ?= test_bad_input test_coro test_future test_task test_loop test_cm test_queue test_sync test_compose test_compose_timeout test_compose_taskgroup test_gen test_aiter test_threadsafe test_runtime test_sync_mt test_debug test_executor test_process_pool test_io test_io_files test_stream test_server test_process test_signal test_metrics test_trace test_race_future test_race_sync test_race_io test_race_exec test_race_proc test_race_sig test_race_gen test_race_timer test_race_net test_race_life test_race_iter test_race_task test_join test_oom
test-valgrind: deps
	@cmake -S . -B build-vg -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOIL_JEMALLOC=OFF \
		-DCOIL_BUILD_BENCH=OFF -DCOIL_BUILD_EXAMPLES=OFF >/dev/null
	@cmake --build build-vg -j$(JOBS)
	@scripts/valgrind-tests.sh build-vg $(JOBS) $(VALGRIND_TESTS)

bench: build
	@$(BUILD)/bench/bench_core
	@$(BUILD)/bench/bench_deque
	@$(BUILD)/bench/bench_sync
	@[ -x $(BUILD)/bench/w3_pingpong ] && $(BUILD)/bench/w3_pingpong --workers 1 || true

clean:
	rm -rf $(BUILD) build-clang build-asan build-tsan build-vg build-install
