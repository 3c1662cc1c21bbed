/*
 * call_soon.c: callbacks run in FIFO order, and stop() lets the current
 * iteration finish.
 *
 * Ports hello_world of the asyncio tutorial (seed, "call_soon"):
 *
 *     def hello_world(loop):
 *         print('Hello World')
 *         loop.stop()
 *
 *     loop = asyncio.new_event_loop()
 *     loop.call_soon(hello_world, loop)      # four times
 *     loop.run_forever()                     # blocking call interrupted by loop.stop()
 *     loop.close()
 *
 * It prints "Hello World" four times, not once: the four callbacks were all
 * scheduled before the loop ran, so they all belong to its first iteration,
 * and stop() only ends the loop once that iteration is over.
 */
#include <coil/coil.h>

#include <stdio.h>
#include <stdlib.h>

static void die(const char *what, int err)
{
	fprintf(stderr, "call_soon: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

static void hello_world(void *arg)
{
	coil_loop_t *loop = arg;

	printf("Hello World\n");
	coil_loop_stop(loop);
}

int main(void)
{
	coil_loop_t *loop;
	int rc;

	rc = coil_new_event_loop(&loop);
	if (rc < 0)
		die("coil_new_event_loop", rc);

	/* Schedule four calls to hello_world(). */
	for (int i = 0; i < 4; i++) {
		rc = coil_loop_call_soon(loop, hello_world, loop, NULL);
		if (rc < 0)
			die("coil_loop_call_soon", rc);
	}

	/* Blocking call interrupted by coil_loop_stop(). */
	rc = coil_loop_run_forever(loop);
	if (rc < 0)
		die("coil_loop_run_forever", rc);

	rc = coil_loop_close(loop);
	if (rc < 0)
		die("coil_loop_close", rc);
	return 0;
}
