/* tests/gdb_tasks_target.c: a program for tests/gdb_tasks.sh to stop in.
 * Its main task makes three tasks wait (a sleep, a queue get, an await of
 * the sleeper), each a few named frames deep, waits until all three are
 * suspended, and calls gdbt_stop_here(), where the script stops it.
 * argv[1]: the number of workers (default 1); argv[2] "abort": abort
 * there instead, for a core dump. */
#include <stdlib.h>
#include <string.h>

#include <coil/coil.h>

#define NOINLINE __attribute__((noinline))
/* After a call: keeps it from being a tail call, so its caller's frame
 * stays on the stack for the debugger to see. */
#define KEEP_FRAME() __asm__ volatile("" ::: "memory")

static coil_queue_t *queue;
static bool crash;

NOINLINE void gdbt_stop_here(void)
{
	if (crash)
		abort();
	__asm__ volatile("" ::: "memory");
}

NOINLINE static int gdbt_nap(void)
{
	int rc = coil_sleep(100);
	KEEP_FRAME();
	return rc;
}

NOINLINE static int gdbt_sleeper(void *arg, void **res)
{
	(void)arg;
	(void)res;
	int rc = gdbt_nap();
	KEEP_FRAME();
	return rc;
}

NOINLINE static int gdbt_getter(void *arg, void **res)
{
	(void)arg;
	(void)res;
	void *item;
	int rc = coil_queue_get(queue, &item);
	KEEP_FRAME();
	return rc;
}

NOINLINE static int gdbt_awaiter(void *arg, void **res)
{
	(void)res;
	int rc = coil_await(coil_task_future(arg), NULL);
	KEEP_FRAME();
	return rc;
}

static bool all_waiting(coil_task_t **ts, int n)
{
	for (int i = 0; i < n; i++) {
		coil_task_info_t in;
		if (coil_task_get_info(ts[i], &in, sizeof(in)) || in.state != COIL_TASK_WAITING)
			return false;
	}
	return true;
}

static int gdbt_main(void *arg, void **res)
{
	(void)arg;
	(void)res;
	if (coil_queue_create(&queue, COIL_QUEUE_FIFO, 0))
		return -1;
	coil_task_t *ts[3];
	coil_spawn_opts_t o = { .name = "sleeper" };
	coil_spawn(&ts[0], gdbt_sleeper, NULL, &o);
	o.name = "getter";
	coil_spawn(&ts[1], gdbt_getter, NULL, &o);
	o.name = "awaiter";
	coil_spawn(&ts[2], gdbt_awaiter, ts[0], &o);
	while (!all_waiting(ts, 3))
		coil_sleep(0.001);
	gdbt_stop_here();
	for (int i = 2; i >= 0; i--) {
		coil_task_cancel(ts[i], NULL);
		coil_await(coil_task_future(ts[i]), NULL);
		coil_task_detach(ts[i]);
	}
	coil_queue_destroy(queue);
	return 0;
}

int main(int argc, char **argv)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = argc > 1 ? (unsigned)atoi(argv[1]) : 1;
	crash = argc > 2 && !strcmp(argv[2], "abort");
	return coil_run(gdbt_main, NULL, NULL, &o) ? 1 : 0;
}
