/*
 * coil/signal.h: Unix signal handlers that run as loop callbacks
 * (asyncio's loop.add_signal_handler and remove_signal_handler).
 *
 * A handler added here is a plain callback of the loop that added it: when
 * the signal arrives, cb(arg) is scheduled on that loop as call_soon would
 * schedule it, and runs there like any other callback, never in signal
 * context. It may therefore do anything a callback may: set an event, wake
 * or cancel tasks, spawn a task, close a server.
 *
 * How. The signal is blocked in the loop's thread and read from a signalfd
 * whose readiness the loop waits for in its io_uring, with its other I/O:
 * no thread of its own, no self-pipe. The signal's disposition is set to a
 * small handler of coil's that only matters when the signal is delivered
 * to a thread that does not block it: it sends the signal on to the loop's
 * thread (tgkill), where the signalfd takes it. Other threads should block
 * the signal too (coil's own threads, the workers of a runtime and the
 * resolver threads, block every signal), because a signal delivered to a
 * thread interrupts the system call it is in (EINTR where SA_RESTART does
 * not restart it). Blocking the signals in the main thread before any
 * thread is created, and creating threads after that, does it for all.
 *
 * One handler per signal in the process (asyncio likewise handles signals
 * in one loop, the main thread's). Adding a handler for a signal that has
 * one replaces the callback if the handler is on the calling loop (or on
 * another worker of the calling loop's runtime: it then moves to the
 * calling worker), and fails with -EBUSY if it is on an unrelated loop.
 * Different signals may have handlers on different loops.
 *
 * Removing the last handler of a signal gives the signal its previous
 * disposition back, and unblocks it in the loop's thread if coil blocked it
 * there; a loop that closes (coil_loop_close, the end of coil_run, a
 * runtime's shutdown) removes the handlers still on it first, as asyncio's
 * close does. A signal that arrives while its handler is being removed
 * runs the callback if the callback was already started, else meets the
 * previous disposition (one read from the signalfd and not dispatched yet
 * is sent again, to the process, once the disposition is restored); once
 * coil_remove_signal_handler has returned the callback is never started
 * again. A handler that moves to another worker loses nothing on the way:
 * the signals that came for it before the move run the callback, on the
 * worker it left or on the one it moved to.
 *
 * What a handler costs its loop: one poll in flight in the loop's ring, so
 * that a round of the loop always enters the kernel (about a microsecond)
 * instead of skipping it when nothing else is in flight.
 *
 * Between runs of a loop (a standalone loop between two
 * run_until_complete calls, say) its signals wait, blocked, and their
 * callbacks run once it runs again. A loop run by another thread than the
 * one that added its handlers (a runtime's shutdown moves its workers to
 * fresh threads) gets its signals there: they are forwarded to it; the
 * thread that added them keeps them blocked until they are removed.
 *
 * Not for: SIGKILL and SIGSTOP (which cannot be caught), the signals of
 * faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS: raised by the
 * instruction that faults, they cannot wait for a loop), and the two
 * real-time signals glibc keeps for itself (32 and 33): -EINVAL.
 * Real-time signals (SIGRTMIN..SIGRTMAX) are queued by the kernel: each
 * one sent runs the callback once. Standard signals coalesce while
 * pending, as they do everywhere: several sent before the loop reads them
 * may run the callback once.
 *
 * This header compiles as C11 and as C++.
 */
#ifndef COIL_SIGNAL_H
#define COIL_SIGNAL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Makes cb(arg) run on the calling thread's running loop each time signal
 * `signum` arrives (asyncio's loop.add_signal_handler). The callback runs
 * as a call_soon callback of that loop; arg is the caller's and must stay
 * valid until the handler is removed. Blocks the signal in the calling
 * thread. A handler moved here from another worker takes with it the
 * signals that came for it there and did not run its callback yet.
 * Returns 0; -EINVAL for a signal that cannot be handled (see
 * above) or cb NULL; -EBUSY if the signal has a handler on an unrelated
 * loop; COIL_EINVALSTATE when no loop runs on the calling thread;
 * -ENOMEM, -EMFILE (the signalfd), or the error of queuing the poll in the
 * loop's ring. The thread of a running loop: a task (on any worker of a
 * runtime: the handler belongs to the worker the task runs on) or a
 * callback.
 */
COIL_API int coil_add_signal_handler(int signum, coil_cb cb, void *arg);

/*
 * Removes the handler of signal `signum`, wherever it is (asyncio's
 * loop.remove_signal_handler): its callback is not started again after
 * this returns (on another thread than the loop's, a callback already
 * running may still be finishing), and the signal has its previous
 * disposition back; the signals that came for it and did not run the
 * callback meet that disposition (they are sent again to the process:
 * a real-time signal each time it came). The signal is unblocked in the
 * loop's thread, if coil blocked it there, at once when called on that
 * thread, else at the loop's next round (a signal that comes meanwhile
 * waits, and meets the previous disposition then). Returns 1 if a handler
 * was removed, 0 if the signal had none, -EINVAL for a signal that cannot
 * be handled. Any thread.
 */
COIL_API int coil_remove_signal_handler(int signum);

#ifdef __cplusplus
}
#endif
#endif /* COIL_SIGNAL_H */
