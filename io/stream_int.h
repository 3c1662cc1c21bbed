/*
 * io/stream_int.h: what stream.c, server.c and dns.c share, and the hooks
 * their tests use.
 */
#ifndef COIL_IO_STREAM_INT_H
#define COIL_IO_STREAM_INT_H

#include <stdatomic.h>
#include <time.h>

#include "coil/stream.h"

struct addrinfo;

/* Makes a stream over fd, whose kind the caller knows (no fstat). The
 * stream owns fd from then on, also on failure. */
int coil__stream_new(coil_stream_t **out, int fd, bool is_socket,
		     const coil_stream_opts_t *opts);

/* Reads a caller's stream options field by field (an older caller passes a
 * smaller struct) and fills in the defaults of the fields left 0. Returns
 * 0, or -EINVAL for an absurd size. */
int coil__stream_opts_read(coil_stream_opts_t *o, const coil_stream_opts_t *in);

/* Fills a sockaddr_un from a path ('@' first: the abstract namespace).
 * Returns the address length, or -EINVAL / -ENAMETOOLONG. */
struct sockaddr_un;
int coil__unix_addr(struct sockaddr_un *sun, const char *path);

/* The monotonic clock, in nanoseconds (the clock of the ring's timeouts). */
static inline int64_t coil__mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Deadlines of the calls that take several ring operations: a timeout
 * becomes an absolute time once, and each operation gets what is left.
 * COIL_FOREVER stays COIL_FOREVER.
 */
static inline int64_t coil__deadline(int64_t timeout_ns)
{
	if (timeout_ns == COIL_FOREVER)
		return COIL_FOREVER;
	int64_t now = coil__mono_ns();
	return timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
}

static inline int64_t coil__remaining(int64_t deadline)
{
	if (deadline == COIL_FOREVER)
		return COIL_FOREVER;
	int64_t left = deadline - coil__mono_ns();
	return left > 0 ? left : 0;
}

/* Whether a timeout argument is valid: >= 0 or COIL_FOREVER. */
static inline bool coil__timeout_ok(int64_t timeout_ns)
{
	return timeout_ns >= 0 || timeout_ns == COIL_FOREVER;
}

/*
 * Tests: replaces the blocking lookup the resolver threads run (NULL
 * restores getaddrinfo), so that a test can hold a lookup for as long as
 * it likes. Set it before the first lookup. Its results are freed with
 * freeaddrinfo.
 */
typedef int (*coil__dns_fn)(const char *host, const char *service,
			    const struct addrinfo *hints,
			    struct addrinfo **res);
void coil__dns_set_resolver(coil__dns_fn fn);

/* Stops the resolver threads once the lookups queued are done, and joins
 * them (a later lookup starts new ones). For tests, whose leak checkers
 * would otherwise see the per-thread state glibc keeps for live resolver
 * threads at exit. Any thread but a resolver thread, while lookups are
 * being submitted too: those are run all the same, and every thread
 * started meanwhile is joined. */
void coil__dns_shutdown(void);

/* Tests: the number of lookups handed to the resolver threads whose
 * memory is not freed yet. */
size_t coil__dns_pending(void);

#endif
