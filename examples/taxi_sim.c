/*
 * taxi_sim.c: a discrete-event simulation of a taxi fleet.
 *
 * Ports the taxi simulation of the asyncio tutorial (seed, "任务式": a
 * simple discrete event simulation, itself after Fluent Python's
 * taxi_sim.py):
 *
 *     Event = namedtuple('Event', ['time', 'proc', 'action'])
 *
 *     async def taxi_process(ident, trips, start_time=0):
 *         time = yield Event(start_time, ident, 'leave garage')
 *         for i in range(trips):
 *             time = yield Event(time, ident, 'pick up passenger')
 *             time = yield Event(time, ident, 'drop off passenger')
 *         yield Event(time, ident, 'going home')
 *
 *     class Simulator:
 *         async def run(self, end_time):
 *             for _, proc in sorted(self.procs.items()):
 *                 first_event = await proc.__anext__()
 *                 self.events.put(first_event)
 *             sim_time = 0
 *             while sim_time < end_time:
 *                 if self.events.empty():
 *                     print('*** end of events ***')
 *                     break
 *                 current_event = self.events.get()
 *                 sim_time, proc_id, previous_action = current_event
 *                 print('taxi:', proc_id, proc_id * ' ', current_event)
 *                 active_proc = self.procs[proc_id]
 *                 next_time = sim_time + compute_duration(previous_action)
 *                 try:
 *                     next_event = await active_proc.asend(next_time)
 *                 except StopAsyncIteration:
 *                     del self.procs[proc_id]
 *                 else:
 *                     self.events.put(next_event)
 *             else:
 *                 msg = '*** end of simulation time: {} events pending ***'
 *                 print(msg.format(self.events.qsize()))
 *
 *     taxis = {i: taxi_process(i, (i + 1) * 2, i * DEPARTURE_INTERVAL)
 *              for i in range(DEFAULT_NUMBER_OF_TAXIS)}
 *     loop.run_until_complete(Simulator(taxis).run(DEFAULT_END_TIME))
 *
 * Each taxi is a coil coroutine (coil_coro_t): coil_coro_resume with the
 * event time is asend(time), and the body returning is StopAsyncIteration
 * (COIL_EDONE). The events wait in a coil priority queue (coil_queue_t,
 * COIL_QUEUE_PRIORITY) ordered as Python orders the Event tuples: by time,
 * then taxi, then action. The simulation runs as the main task of coil_run.
 *
 * Durations: compute_duration draws int(random.expovariate(1/interval)) + 1.
 * Here the random numbers come from splitmix64 seeded with SEED, so every
 * run prints the same timeline (the tutorial's Python was unseeded, so its
 * timeline differs from this one in the times, not in the shape: 3 taxis
 * making 2, 4 and 6 trips, leaving at 0, 5 and 10). int() of an
 * exponential variate is a geometric variate, drawn exactly, without libm:
 * P(k >= m) = q^m with q = exp(-1/interval).
 */
#include <coil/coil.h>
#include <coil/sync.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_NUMBER_OF_TAXIS 3
#define DEFAULT_END_TIME 180
#define SEARCH_DURATION 5
#define TRIP_DURATION 20
#define DEPARTURE_INTERVAL 5
#define SEED 3

struct event {
	int time;
	int proc;
	const char *action;
};

struct taxi {
	int ident;
	int trips;
	int start_time;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "taxi_sim: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

/* ---- the taxis ---- */

/* yield Event(time, ident, action); returns the time sent back, or < 0
 * when the coroutine is being closed. The event goes to the simulator. */
static int emit(const struct taxi *tx, int time, const char *action)
{
	struct event *ev = malloc(sizeof(*ev));
	void *sent = NULL;
	int rc;

	if (!ev)
		die("malloc", -ENOMEM);
	ev->time = time;
	ev->proc = tx->ident;
	ev->action = action;
	rc = coil_coro_yield(ev, &sent);
	return rc < 0 ? rc : (int)(intptr_t)sent;
}

static int taxi_process(void *arg, void **result)
{
	const struct taxi *tx = arg;
	int time;
	(void)result;

	if ((time = emit(tx, tx->start_time, "leave garage")) < 0)
		return time;
	for (int i = 0; i < tx->trips; i++) {
		if ((time = emit(tx, time, "pick up passenger")) < 0 ||
		    (time = emit(tx, time, "drop off passenger")) < 0)
			return time;
	}
	time = emit(tx, time, "going home");
	return time < 0 ? time : 0;
}

/* ---- durations ---- */

static uint64_t rng_state = SEED;

/* splitmix64 (Steele, Lea and Flood), as a double in [0, 1). */
static double random_double(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (double)(z >> 11) * 0x1p-53;
}

/* int(random.expovariate(1 / interval)), where q = exp(-1 / interval). */
static int int_expovariate(double q)
{
	double u = 1.0 - random_double(); /* (0, 1], as Python's */
	double p = q;
	int k = 0;

	while (u <= p) {
		k++;
		p *= q;
	}
	return k;
}

static int compute_duration(const char *previous_action)
{
	/* exp(-1/5), exp(-1/20), exp(-1/1) */
	static const double q_search = 0.8187307530779818;
	static const double q_trip = 0.9512294245007140;
	static const double q_home = 0.36787944117144233;

	if (!strcmp(previous_action, "leave garage") ||
	    !strcmp(previous_action, "drop off passenger"))
		return int_expovariate(q_search) + 1; /* SEARCH_DURATION */
	if (!strcmp(previous_action, "pick up passenger"))
		return int_expovariate(q_trip) + 1;   /* TRIP_DURATION */
	if (!strcmp(previous_action, "going home"))
		return int_expovariate(q_home) + 1;
	fprintf(stderr, "taxi_sim: unknown previous_action: %s\n", previous_action);
	exit(1);
}

/* ---- the simulator ---- */

/* Orders events as Python orders the tuples (time, proc, action). */
static int event_cmp(const void *a, const void *b, void *arg)
{
	const struct event *x = a, *y = b;
	(void)arg;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->proc != y->proc)
		return x->proc < y->proc ? -1 : 1;
	return strcmp(x->action, y->action);
}

static void put_event(coil_queue_t *events, struct event *ev)
{
	int rc = coil_queue_put_nowait(events, ev);

	if (rc < 0)
		die("coil_queue_put_nowait", rc);
}

static int simulate(void *arg, void **result)
{
	int end_time = (int)(intptr_t)arg;
	struct taxi taxis[DEFAULT_NUMBER_OF_TAXIS];
	coil_coro_t *procs[DEFAULT_NUMBER_OF_TAXIS];
	coil_queue_t *events;
	int sim_time = 0, rc;
	(void)result;

	if ((rc = coil_queue_create(&events, COIL_QUEUE_PRIORITY, 0)) < 0 ||
	    (rc = coil_queue_set_compare(events, event_cmp, NULL)) < 0 ||
	    (rc = coil_queue_set_item_dtor(events, free)) < 0)
		die("coil_queue_create", rc);

	for (int i = 0; i < DEFAULT_NUMBER_OF_TAXIS; i++) {
		coil_coro_opts_t opts = { .name = "taxi" };
		void *first;

		taxis[i] = (struct taxi){ i, (i + 1) * 2, i * DEPARTURE_INTERVAL };
		if ((rc = coil_coro_create(&procs[i], taxi_process, &taxis[i], &opts)) < 0)
			die("coil_coro_create", rc);
		/* first_event = await proc.__anext__() */
		if ((rc = coil_coro_resume(procs[i], NULL, &first)) < 0)
			die("coil_coro_resume", rc);
		put_event(events, first);
	}

	while (sim_time < end_time) {
		struct event *ev;
		void *next;

		if (coil_queue_empty(events)) {
			printf("*** end of events ***\n");
			break;
		}
		if ((rc = coil_queue_get_nowait(events, (void **)&ev)) < 0)
			die("coil_queue_get_nowait", rc);
		sim_time = ev->time;
		printf("taxi: %d %*s Event(time=%d, proc=%d, action='%s')\n",
		       ev->proc, ev->proc, "", ev->time, ev->proc, ev->action);
		int next_time = sim_time + compute_duration(ev->action);
		int id = ev->proc;
		free(ev);
		/* next_event = await active_proc.asend(next_time) */
		rc = coil_coro_resume(procs[id], (void *)(intptr_t)next_time, &next);
		if (rc == COIL_EDONE) {
			coil_coro_destroy(procs[id]);
			procs[id] = NULL;
		} else if (rc < 0) {
			die("coil_coro_resume", rc);
		} else {
			put_event(events, next);
		}
	}
	if (sim_time >= end_time)
		printf("*** end of simulation time: %zu events pending ***\n",
		       coil_queue_qsize(events));

	for (int i = 0; i < DEFAULT_NUMBER_OF_TAXIS; i++)
		coil_coro_destroy(procs[i]);
	return coil_queue_destroy(events);
}

int main(void)
{
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = coil_run(simulate, (void *)(intptr_t)DEFAULT_END_TIME, NULL, NULL);
	if (rc < 0)
		die("coil_run", rc);
	return 0;
}
