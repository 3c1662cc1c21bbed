/* tests/unwind_target.c: a program for tests/gdb_unwind.sh to stop in: a
 * task calls leaf() after one trip through the loop. */
#include <coil/coil.h>

__attribute__((noinline)) int unwind_leaf(int x)
{
	__asm__ volatile("" ::: "memory");
	return x + 1;
}

__attribute__((noinline)) static int unwind_task(void *arg, void **res)
{
	(void)arg;
	(void)res;
	coil_sleep(0);
	return unwind_leaf(1) - 2;
}

int main(void)
{
	return coil_run(unwind_task, NULL, NULL, NULL) ? 1 : 0;
}
