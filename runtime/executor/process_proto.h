/*
 * runtime/executor/process_proto.h: what the process pool's two sides share:
 * the framing on the worker's pipes, the registry of functions, and what
 * coil_process_pool_main remembered for starting workers.
 *
 * Framing (native byte order: both sides are the same binary).
 *   pool -> worker, on the worker's fd 3:  job_hdr, name, input
 *   worker -> pool, on the worker's fd 4:  res_hdr, then `len` bytes: the
 *     output when code is 0, else the error message (not NUL-terminated)
 * A worker first sends a res_hdr with HELLO_MAGIC (code 0, len 0) to say it
 * is up and serving; the pool counts a worker that dies before that as one
 * that failed to start.
 */
#ifndef COIL_RUNTIME_EXECUTOR_PROCESS_PROTO_H
#define COIL_RUNTIME_EXECUTOR_PROCESS_PROTO_H

#include <stdint.h>

#include "coil/process_pool.h"

#define COIL__PP_JOB_MAGIC 0x4a4c4f43u   /* "COLJ" */
#define COIL__PP_RES_MAGIC 0x524c4f43u   /* "COLR" */
#define COIL__PP_HELLO_MAGIC 0x484c4f43u /* "COLH" */
#define COIL__PP_NAME_MAX 255

/* The worker's descriptors, and the variable that marks a worker:
 * "<job fd>,<result fd>,<parent pid>". */
#define COIL__PP_JOB_FD 3
#define COIL__PP_RES_FD 4
#define COIL__PP_ENV "COIL_PROCESS_POOL_WORKER"

typedef struct coil__pp_job_hdr {
	uint32_t magic;
	uint32_t name_len;
	uint64_t in_len;
} coil__pp_job_hdr_t;

typedef struct coil__pp_res_hdr {
	uint32_t magic;
	int32_t code;
	uint64_t len;
} coil__pp_res_hdr_t;

/* The function registered as name[0 .. len), or NULL. Any thread. */
coil_process_fn coil__process_lookup(const char *name, size_t len);

/* What coil_process_pool_main remembered: the binary to run and its argv
 * (NULL-terminated), or NULL if it was not called. Read-only once set. */
const char *coil__process_exe(void);
char *const *coil__process_argv(void);

#endif
