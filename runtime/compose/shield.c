/*
 * runtime/compose/shield.c: coil_shield, asyncio.shield.
 *
 * coil_await never cancels the future it waits for, so shielding needs no
 * outer future here: the work is in what happens when the awaiting task is
 * cancelled. The await returns -ECANCELED, f keeps running, and a
 * done-callback marks an error f later ends with as retrieved, as asyncio's
 * shield does for an inner future whose outer one was cancelled. The
 * callback holds nothing, so a pending plain future released by its owner
 * simply frees it.
 *
 * Threads: f may complete on any worker; the callback runs on f's loop
 * and touches nothing but f. f may also complete between the cancellation
 * that ends our await and our look at it: then nothing waits for its error
 * any more, so it is marked retrieved at once. Two tasks shielding one
 * future at once may leave two callbacks, which only mark the same error
 * retrieved twice.
 */
#include "fset.h"

static void shield_retrieve(coil_future_t *f, void *arg)
{
	(void)arg;
	if (coil__future_failed(f))
		(void)coil_future_exception(f);
}

int coil_shield(coil_future_t *f, void **result)
{
	int rc = coil_await(f, result);
	if (rc != -ECANCELED || !f)
		return rc;
	if (coil_future_done(f)) {
		/* f ended after the cancellation took our wait (on another
		 * worker, or in the same round) and before we looked: its
		 * error went to nobody, as it would have if it had ended
		 * later. */
		shield_retrieve(f, NULL);
		return rc;
	}
	/* One callback is enough however often the awaiter is cancelled. */
	coil_future_remove_done_callback(f, shield_retrieve, NULL);
	(void)coil_future_add_done_callback(f, shield_retrieve, NULL);
	return rc;
}
