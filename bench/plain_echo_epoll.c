/*
 * bench/plain_echo_epoll.c: the hand-written epoll baseline of workload W6
 * (WORKLOADS.md): a single-threaded TCP echo server with no framework.
 *
 * One thread, one epoll set, level-triggered. A readable connection gets
 * exactly one read(2) per event (into a 64 KiB buffer shared by all
 * connections) and the bytes go straight back with one write(2): with one
 * message outstanding per connection that is the fewest system calls an
 * epoll server can make, read + write per request plus one epoll_wait per
 * batch of ready connections. (Edge-triggered mode would need a read until
 * EAGAIN, one more system call per request.) A short write keeps the rest
 * in a buffer of the connection's own and switches the connection from
 * EPOLLIN to EPOLLOUT until it is sent, so the peer's bytes are echoed in
 * order and a peer that does not read stops being read from.
 *
 * The listening socket is non-blocking; each readiness accepts until
 * EAGAIN. Accepted sockets get TCP_NODELAY. SIGINT and SIGTERM arrive
 * through a signalfd in the same epoll set: the loop ends, every
 * connection is closed and the process exits 0.
 *
 * usage: plain_echo_epoll [--port 19000]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)
#define MAX_EVENTS 256

/* A connection that could not send everything it read keeps the rest
 * here until EPOLLOUT lets it go on; NULL while it is in EPOLLIN mode. */
typedef struct conn {
	struct conn *prev, *next; /* the list of open connections */
	int fd;
	char *pend;
	size_t pend_off, pend_len;
} conn_t;

/* Tags of the epoll data for the two descriptors that are not
 * connections; connections carry their conn_t pointer. */
static char listen_tag, signal_tag;

/* Every open connection, so that shutdown closes and frees them all. */
static conn_t conns = { .prev = &conns, .next = &conns };

static int listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, SOMAXCONN)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void conn_close(int ep, conn_t *c)
{
	c->prev->next = c->next;
	c->next->prev = c->prev;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->pend);
	free(c);
}

static int conn_mode(int ep, conn_t *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/*
 * Sends what is pending (EPOLLOUT). Returns false when the connection
 * failed and must be closed.
 */
static bool conn_flush(int ep, conn_t *c)
{
	while (c->pend_off < c->pend_len) {
		ssize_t n = write(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN;
		}
		c->pend_off += (size_t)n;
	}
	free(c->pend);
	c->pend = NULL;
	return conn_mode(ep, c, EPOLLIN) == 0;
}

/*
 * Echoes one read's worth (EPOLLIN). Returns false when the peer is done
 * or the connection failed.
 */
static bool conn_echo(int ep, conn_t *c, char *buf)
{
	ssize_t n = read(c->fd, buf, BUF_SIZE);
	if (n <= 0)
		return n < 0 && (errno == EAGAIN || errno == EINTR);
	size_t off = 0;
	while (off < (size_t)n) {
		ssize_t w = write(c->fd, buf + off, (size_t)n - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return false;
			/* The socket's send buffer is full: keep the rest and
			 * wait for room, reading nothing more meanwhile. */
			c->pend_len = (size_t)n - off;
			c->pend_off = 0;
			if (!(c->pend = malloc(c->pend_len)))
				return false;
			memcpy(c->pend, buf + off, c->pend_len);
			return conn_mode(ep, c, EPOLLOUT) == 0;
		}
		off += (size_t)w;
	}
	return true;
}

static void accept_all(int ep, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				perror("plain_echo_epoll: accept4");
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conn_t *c = calloc(1, sizeof(*c));
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
			continue;
		}
		c->fd = fd;
		c->next = &conns;
		c->prev = conns.prev;
		conns.prev->next = c;
		conns.prev = c;
	}
}

int main(int argc, char **argv)
{
	int port = 19000;
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 < argc && !strcmp(argv[i], "--port")) {
			port = atoi(argv[i + 1]);
		} else {
			fprintf(stderr, "usage: plain_echo_epoll [--port P]\n");
			return 2;
		}
	}
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "plain_echo_epoll: bad port %d\n", port);
		return 2;
	}

	/* The signals come through a descriptor: block them first. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	int lfd = listen_on(port);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	static char buf[BUF_SIZE];
	if (sfd < 0 || lfd < 0 || ep < 0) {
		perror("plain_echo_epoll: setup");
		return 1;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &listen_tag };
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.ptr = &signal_tag;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	printf("# plain_echo_epoll port=%d\n", port);
	fflush(stdout);

	bool stop = false;
	struct epoll_event evs[MAX_EVENTS];
	while (!stop) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("plain_echo_epoll: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &listen_tag) {
				accept_all(ep, lfd);
			} else if (p == &signal_tag) {
				stop = true;
			} else {
				conn_t *c = p;
				bool ok = c->pend ? conn_flush(ep, c) : conn_echo(ep, c, buf);
				if (!ok)
					conn_close(ep, c);
			}
		}
	}

	while (conns.next != &conns)
		conn_close(ep, conns.next);
	close(ep);
	close(lfd);
	close(sfd);
	return 0;
}
