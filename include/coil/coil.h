/*
 * coil/coil.h: the whole public API of coil in one include.
 *
 * coil is a C runtime for asynchronous programs: stackful coroutine tasks run
 * by event loops on io_uring, with the programming model of Python's asyncio.
 * See README.md for the overview and DESIGN.md for the architecture.
 */
#ifndef COIL_COIL_H
#define COIL_COIL_H

#include "common.h"
#include "coro.h"
#include "future.h"
#include "task.h"
#include "loop.h"
#include "runtime.h"
#include "cm.h"
#include "compose.h"
#include "sync.h"
#include "threadsafe.h"
#include "gen.h"
#include "aiter.h"
#include "executor.h"
#include "process_pool.h"
#include "debug.h"
#include "io.h"
#include "stream.h"
#include "process.h"
#include "signal.h"

#endif /* COIL_COIL_H */
