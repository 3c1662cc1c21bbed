/*
 * runtime/executor/xdone.c: handing ended jobs to their futures in batches
 * (see executor_int.h for the protocol).
 *
 * A batch is a singly linked list of coil__xdone_t whose futures all belong
 * to one loop. Flushing it queues one callback on that loop with
 * coil__loop_call_soon_threadsafe_ex; the callback completes every future
 * of the list on the loop's thread, in the order the jobs ended. If the
 * loop closes before the callback ran, the loop runs the `dropped` half
 * instead, which destroys the outcomes: exactly one of the two runs.
 */
#include <time.h>

#include "alloc.h"
#include "core.h"
#include "executor_int.h"
#include "threadsafe/cfuture.h"

bool coil__xdone_abandoned(coil__xdone_t *d)
{
	if (d->is_cfut)
		return coil_cfuture_done(d->cfut);
	return d->fut && coil_future_done(d->fut);
}

void coil__xdone_dispose(coil__xdone_t *d)
{
	if (d->result && d->dtor)
		d->dtor(d->result);
	d->result = NULL;
	coil__strfree(d->msg);
	d->msg = NULL;
	if (d->is_cfut)
		coil_cfuture_release(d->cfut);
	else if (d->fut)
		coil_future_release(d->fut);
	if (d->type == COIL__XJOB_PROCESS)
		coil__process_job_free(d);
	else
		coil__thread_job_free(d);
}

/* On the future's loop: completes each future of the batch. */
static void batch_run(void *arg)
{
	coil__xdone_t *d = arg;
	while (d) {
		coil__xdone_t *next = d->next;
		coil_future_t *f = d->fut;
		/* The loop's own thread: complete in place (what
		 * coil_future_set_result does there, without its checks). A
		 * future cancelled meanwhile refuses, and dispose destroys
		 * what it refused. */
		if (d->rc == 0) {
			if (coil__future_finish(f, COIL__F_RESULT, 0, d->result, d->dtor, NULL))
				d->result = NULL;
		} else if (coil__future_finish(f, d->rc == -ECANCELED ? COIL__F_CANCELLED
								      : COIL__F_ERROR,
					       d->rc, NULL, NULL, d->msg)) {
			d->msg = NULL;
		}
		coil__xdone_dispose(d);
		d = next;
	}
}

/* The loop closed before batch_run could run: nobody will ever look. */
static void batch_dropped(void *arg)
{
	coil__xdone_t *d = arg;
	while (d) {
		coil__xdone_t *next = d->next;
		coil__xdone_dispose(d);
		d = next;
	}
}

void coil__xbatch_flush(coil__xbatch_t *b)
{
	if (!b->head)
		return;
	*b->tailp = NULL;
	for (;;) {
		int rc = coil__loop_call_soon_threadsafe_ex(b->loop, batch_run, batch_dropped,
							    b->head);
		if (rc == 0)
			break;
		if (rc == -ENOMEM) {
			/* The outcomes must not be lost: wait for memory
			 * (the hand-over needs one small allocation). */
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
			continue;
		}
		/* The loop is closed: its futures can no longer be awaited.
		 * Their references go on this thread, while the program may
		 * drop its own on the loop's: a closed loop's counts are
		 * atomic (refs_plain in runtime/future.c). */
		batch_dropped(b->head);
		break;
	}
	coil__xbatch_init(b);
}

void coil__xbatch_add(coil__xbatch_t *b, coil__xdone_t *d)
{
	if (d->is_cfut) {
		/* Any thread may complete a concurrent future. */
		if (coil__cfuture_complete(d->cfut, d->rc, d->result, d->dtor, d->msg)) {
			d->result = NULL;
			d->msg = NULL;
		}
		coil__xdone_dispose(d);
		return;
	}
	if (!d->fut) {
		coil__xdone_dispose(d);
		return;
	}
	coil_loop_t *loop = d->fut->loop;
	if (b->loop != loop) {
		coil__xbatch_flush(b);
		b->loop = loop;
	}
	d->next = NULL;
	*b->tailp = d;
	b->tailp = &d->next;
	b->n++;
}
