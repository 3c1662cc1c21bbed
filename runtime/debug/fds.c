/*
 * runtime/debug/fds.c: debug mode's watch on the descriptors coil hands to
 * the program, so that one still open when its loop closes is reported
 * (asyncio's "unclosed transport" ResourceWarning).
 *
 * Watched: a socket from coil_accept, a file from coil_open/coil_openat,
 * the descriptor of every stream (connections, servers' connections,
 * subprocess pipes) and a server's listening sockets, each made while a
 * loop in debug mode runs on the calling thread. The entry remembers the
 * file's identity (device and inode) and its home: the loop, or the
 * runtime of a worker loop. coil's own closes forget the entry; when the
 * home closes (coil_loop_close, a runtime's shutdown), each entry still
 * naming the same open file is reported through the loop's exception
 * handler, and the home's entries are forgotten.
 *
 * A descriptor the program closed itself with close(2) is no longer open,
 * or its number now names another file: the identity check keeps both
 * silent. The one case it cannot tell apart is the same file opened again
 * under the same number with plain open(2) after a close(2): that is
 * reported, wrongly, as still open.
 *
 * The table is indexed by descriptor number, under one mutex; it costs
 * nothing outside debug mode but one relaxed load per close (`watched`).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core.h"
#include "debug_int.h"

typedef struct fd_entry {
	const void *home;         /* NULL: not watched */
	const char *what;
	dev_t dev;
	ino_t ino;
} fd_entry_t;

static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static fd_entry_t *fd_tab;
static size_t fd_cap;
atomic_size_t coil__debug_fds_watched;

const void *coil__debug_fd_home(const coil_loop_t *loop)
{
	return loop->rt ? (const void *)loop->rt : (const void *)loop;
}

void coil__debug_fd_opened_slow(coil_loop_t *loop, int fd, const char *what)
{
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		return;
	pthread_mutex_lock(&fd_lock);
	if ((size_t)fd >= fd_cap) {
		size_t cap = fd_cap ? fd_cap : 64;
		while (cap <= (size_t)fd)
			cap *= 2;
		fd_entry_t *t = coil__libc_realloc(fd_tab, cap * sizeof(*t));
		if (!t) {
			/* Short of memory: this one goes unwatched. */
			pthread_mutex_unlock(&fd_lock);
			return;
		}
		memset(t + fd_cap, 0, (cap - fd_cap) * sizeof(*t));
		fd_tab = t;
		fd_cap = cap;
	}
	fd_entry_t *e = &fd_tab[fd];
	/* An entry already here was closed behind coil's back and its number
	 * reused: it is replaced. */
	if (!e->home)
		atomic_fetch_add_explicit(&coil__debug_fds_watched, 1, memory_order_relaxed);
	e->home = coil__debug_fd_home(loop);
	e->what = what;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	pthread_mutex_unlock(&fd_lock);
}

void coil__debug_fd_closed_slow(int fd)
{
	pthread_mutex_lock(&fd_lock);
	if (fd >= 0 && (size_t)fd < fd_cap && fd_tab[fd].home) {
		fd_tab[fd].home = NULL;
		atomic_fetch_sub_explicit(&coil__debug_fds_watched, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&fd_lock);
}

/* Whether fd still names the file of entry e. */
static bool still_open(int fd, const fd_entry_t *e)
{
	struct stat st;
	return fcntl(fd, F_GETFD) >= 0 && fstat(fd, &st) == 0 &&
	       st.st_dev == e->dev && st.st_ino == e->ino;
}

void coil__debug_fds_check(const void *home, coil_loop_t *loop)
{
	if (!atomic_load_explicit(&coil__debug_fds_watched, memory_order_relaxed))
		return;
	/* The messages are made under the lock and reported after it: an
	 * exception handler may close descriptors. */
	char **msgs = NULL;
	size_t n = 0, cap = 0;
	pthread_mutex_lock(&fd_lock);
	for (size_t fd = 0; fd < fd_cap; fd++) {
		fd_entry_t *e = &fd_tab[fd];
		if (e->home != home)
			continue;
		if (still_open((int)fd, e)) {
			char buf[200];
			int len = snprintf(buf, sizeof(buf),
					   "unclosed fd %zu (%s) when its %s closed: "
					   "close it before the %s closes",
					   fd, e->what, loop->rt ? "runtime" : "loop",
					   loop->rt ? "runtime" : "loop");
			if (n == cap) {
				size_t c = cap ? 2 * cap : 8;
				char **m = coil__libc_realloc(msgs, c * sizeof(*m));
				if (m) {
					msgs = m;
					cap = c;
				}
			}
			char *s = n < cap ? coil__libc_malloc((size_t)len + 1) : NULL;
			if (s) {
				memcpy(s, buf, (size_t)len + 1);
				msgs[n++] = s;
			}
		}
		e->home = NULL;
		atomic_fetch_sub_explicit(&coil__debug_fds_watched, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&fd_lock);
	for (size_t i = 0; i < n; i++) {
		coil_exc_context_t ctx = { .message = msgs[i] };
		coil_loop_call_exception_handler(loop, &ctx);
		free(msgs[i]);
	}
	free(msgs);
}
