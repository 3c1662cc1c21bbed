/*
 * producer_consumer.c: a producer and a consumer joined by a queue.
 *
 * Ports the producer/consumer example of the asyncio tutorial (seed,
 * "例子: 生产者消费者模型"):
 *
 *     async def produce(queue, n):
 *         for x in range(1, n + 1):
 *             print('producing {}/{}'.format(x, n))
 *             await asyncio.sleep(random.random())
 *             item = str(x)
 *             await queue.put(item)
 *         await queue.put(None)
 *
 *     async def consume(queue):
 *         while True:
 *             item = await queue.get()
 *             if item is None:
 *                 break
 *             print('consuming item {}...'.format(item))
 *             await asyncio.sleep(random.random())
 *
 *     queue = asyncio.Queue(loop=loop)
 *     loop.run_until_complete(asyncio.gather(produce(queue, 10),
 *                                            consume(queue)))
 *
 * The Python sleeps random.random() seconds, so its interleaving changes from
 * run to run. This port replays fixed delays, chosen so that it prints
 * exactly the interleaving the tutorial shows (producing 1/10, producing
 * 2/10, consuming item 1..., ..., consuming item 10...). The delays are in
 * units of 0.5 ms, so the run takes about half a second of waiting at most;
 * `--fast` runs it on the virtual clock, where the sleeps take no time and
 * the order is exactly the same.
 *
 * The queue is coil's unbounded FIFO (coil_queue_t); items are the strings
 * "1" to "10", owned by the producer's array, and NULL ends the stream as
 * None does in the Python. The main task spawns both tasks and awaits them,
 * which here does what gather does.
 */
#include <coil/coil.h>
#include <coil/sync.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 10
#define UNIT 0.0005 /* seconds per delay unit */

/* The producer's and the consumer's sleeps, in units, in order. */
static const int produce_delay[N] = { 100, 100, 100, 100, 50, 100, 50, 100, 100, 100 };
static const int consume_delay[N] = { 150, 100, 150, 70, 50, 30, 100, 100, 30, 50 };

static void die(const char *what, int err)
{
	fprintf(stderr, "producer_consumer: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

static int produce(void *arg, void **result)
{
	coil_queue_t *queue = arg;
	static char items[N][4];
	int rc;
	(void)result;

	for (int x = 1; x <= N; x++) {
		printf("producing %d/%d\n", x, N);
		if ((rc = coil_sleep(produce_delay[x - 1] * UNIT)) < 0)
			return rc;
		snprintf(items[x - 1], sizeof(items[x - 1]), "%d", x);
		if ((rc = coil_queue_put(queue, items[x - 1])) < 0)
			return rc;
	}
	/* Tell the consumer we are done. */
	return coil_queue_put(queue, NULL);
}

static int consume(void *arg, void **result)
{
	coil_queue_t *queue = arg;
	int rc;
	(void)result;

	for (int i = 0;; i++) {
		void *item;
		if ((rc = coil_queue_get(queue, &item)) < 0)
			return rc;
		if (!item)
			break;
		printf("consuming item %s...\n", (const char *)item);
		if ((rc = coil_sleep(consume_delay[i % N] * UNIT)) < 0)
			return rc;
	}
	return 0;
}

static int main_task(void *arg, void **result)
{
	coil_queue_t *queue;
	coil_task_t *producer, *consumer;
	int rc;
	(void)arg;
	(void)result;

	if ((rc = coil_queue_create(&queue, COIL_QUEUE_FIFO, 0)) < 0)
		die("coil_queue_create", rc);
	if ((rc = coil_spawn(&producer, produce, queue, NULL)) < 0)
		die("coil_spawn", rc);
	if ((rc = coil_spawn(&consumer, consume, queue, NULL)) < 0)
		die("coil_spawn", rc);
	if ((rc = coil_await(coil_task_future(producer), NULL)) < 0)
		die("produce", rc);
	if ((rc = coil_await(coil_task_future(consumer), NULL)) < 0)
		die("consume", rc);
	coil_task_detach(producer);
	coil_task_detach(consumer);
	return coil_queue_destroy(queue);
}

int main(int argc, char **argv)
{
	coil_runtime_opts_t opts;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	coil_runtime_opts_init(&opts);
	opts.virtual_clock = argc > 1 && strcmp(argv[1], "--fast") == 0;

	rc = coil_run(main_task, NULL, NULL, &opts);
	if (rc < 0)
		die("coil_run", rc);
	return 0;
}
