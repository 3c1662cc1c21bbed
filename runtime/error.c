/*
 * runtime/error.c: error names and messages, coil_errorf.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "core.h"

const char *coil_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case COIL_EINVALSTATE: return "invalid state";
	case COIL_EDONE: return "end of iteration";
	case COIL_ECLOSED: return "closed";
	case COIL_EBROKEN: return "worker process died running the job";
	case COIL_EINCOMPLETE: return "end of stream before the read was complete";
	case COIL_ELIMIT: return "separator not found within the limit";
	case COIL_ENONAME: return "name or service not known";
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}

const char *coil_err_name(int err)
{
	switch (err) {
	case 0: return "OK";
	case COIL_EINVALSTATE: return "COIL_EINVALSTATE";
	case COIL_EDONE: return "COIL_EDONE";
	case COIL_ECLOSED: return "COIL_ECLOSED";
	case COIL_EBROKEN: return "COIL_EBROKEN";
	case COIL_EINCOMPLETE: return "COIL_EINCOMPLETE";
	case COIL_ELIMIT: return "COIL_ELIMIT";
	case COIL_ENONAME: return "COIL_ENONAME";
	case -ECANCELED: return "ECANCELED";
	case -ETIMEDOUT: return "ETIMEDOUT";
	case -EINVAL: return "EINVAL";
	case -ENOMEM: return "ENOMEM";
	case -EAGAIN: return "EAGAIN";
	case -EBUSY: return "EBUSY";
	case -EDEADLK: return "EDEADLK";
	case -EINTR: return "EINTR";
	case -EPERM: return "EPERM";
	case -ENOENT: return "ENOENT";
	case -EIO: return "EIO";
	case -EPIPE: return "EPIPE";
	case -ECONNRESET: return "ECONNRESET";
	case -ENOSYS: return "ENOSYS";
	}
	if (err < 0 && err > -4096) {
		const char *n = strerrorname_np(-err);
		if (n)
			return n;
	}
	return "unknown";
}

int coil_version(void)
{
	return COIL_VERSION_MAJOR * 10000 + COIL_VERSION_MINOR * 100 +
	       COIL_VERSION_PATCH;
}

/* The message of a thread outside any task. */
static __thread char *thread_errmsg;

int coil_errorf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	char *m = coil__malloc((size_t)n + 1);
	if (!m)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(m, (size_t)n + 1, fmt, ap);
	va_end(ap);
	coil_coro_t *c = coil__cur;
	char **slot = &thread_errmsg;
	if (c && c->task && c->task->body)
		slot = &c->task->body->errmsg;
	coil__strfree(*slot);
	*slot = m;
	return 0;
}

char *coil__take_errmsg(void)
{
	coil_coro_t *c = coil__cur;
	char **slot = &thread_errmsg;
	if (c && c->task && c->task->body)
		slot = &c->task->body->errmsg;
	char *m = *slot;
	*slot = NULL;
	return m;
}
