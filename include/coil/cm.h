/*
 * coil/cm.h: async context managers, Python's `async with`.
 *
 * A context manager is a coil_cm_t: an enter and an exit function over an
 * object, either of which may await. COIL_ASYNC_WITH runs a block between
 * them, and the exit runs however the block is left: at its end, by break
 * or goto out of it, or by return (through the compiler's cleanup attribute,
 * GCC and Clang), so it also runs on the error and cancellation paths, which
 * in C are returns. The macro is a loop that runs once: break or continue
 * inside the block leave the block, not a loop around it.
 *
 *     int rc;
 *     COIL_ASYNC_WITH(coil_lock_cm(lock), rc) {
 *         if ((rc = coil_sleep(1)) != 0) {
 *             coil_with.status = rc;   // exit learns why the block ended
 *             return rc;               // the lock is released on the way
 *         }
 *     }
 *     if (rc) ...                      // enter failed: the block never ran
 *
 * Inside the block, `coil_with` names the coil_cm_t; `coil_with.status`
 * (0 unless set) is handed to exit, as asyncio hands __aexit__ the exception.
 * The types that provide a manager document theirs (locks, semaphores,
 * timeout scopes, task groups).
 *
 * Threads: as the object's own operations (a task, normally).
 */
#ifndef COIL_CM_H
#define COIL_CM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coil_cm {
	/* Enters; returns 0, or an error and then the block does not run.
	 * May await. */
	int (*enter)(void *self);
	/* Leaves; status is coil_with.status. Its return value is what
	 * coil_cm_exit returns. May await. */
	int (*exit)(void *self, int status);
	void *self;
	int status;
	bool entered;
	bool done;
} coil_cm_t;

/* Makes a manager from its two functions and object. */
static inline coil_cm_t coil_cm_make(int (*enter)(void *), int (*exit)(void *, int),
				     void *self)
{
	coil_cm_t cm;
	cm.enter = enter;
	cm.exit = exit;
	cm.self = self;
	cm.status = 0;
	cm.entered = false;
	cm.done = false;
	return cm;
}

/* Enters cm (used by COIL_ASYNC_WITH). Returns enter's result. */
static inline int coil_cm_enter(coil_cm_t *cm)
{
	int rc = cm->enter ? cm->enter(cm->self) : 0;
	cm->entered = rc == 0;
	cm->done = rc != 0;
	return rc;
}

/* Exits cm if it was entered and not yet exited. Returns exit's result, or
 * 0 when there was nothing to do. */
static inline int coil_cm_exit(coil_cm_t *cm)
{
	cm->done = true;
	if (!cm->entered)
		return 0;
	cm->entered = false;
	return cm->exit ? cm->exit(cm->self, cm->status) : 0;
}

static inline void coil_cm_cleanup_(coil_cm_t *cm)
{
	(void)coil_cm_exit(cm);
}

/* Runs the following statement or block inside `cm` (a coil_cm_t value);
 * `rc` (an int lvalue) receives enter's result. */
#define COIL_ASYNC_WITH(cm, rc)                                              \
	for (coil_cm_t coil_with __attribute__((cleanup(coil_cm_cleanup_))) = \
		     ((rc) = 0, (cm));                                       \
	     !coil_with.done && ((rc) = coil_cm_enter(&coil_with)) == 0;     \
	     (void)coil_cm_exit(&coil_with))

#ifdef __cplusplus
}
#endif
#endif /* COIL_CM_H */
