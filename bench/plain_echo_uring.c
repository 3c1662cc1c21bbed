/*
 * bench/plain_echo_uring.c: the hand-written io_uring baseline of workload
 * W6 (WORKLOADS.md): a single-threaded TCP echo server on liburing with no
 * framework, using the kernel features coil's server uses.
 *
 * One thread, one ring, set up as coil sets up its rings
 * (SINGLE_ISSUER|DEFER_TASKRUN, else COOP_TASKRUN, else plain; a CQ eight
 * times the SQ). One multishot accept yields every connection (armed again
 * if the kernel ends it). Each connection has one buffer and exactly one
 * operation in flight: a recv into the buffer; when it completes, a send of
 * what came (a short send is continued from where it stopped); when the
 * send is complete, the next recv. So the peer's bytes go back in order,
 * and a peer that does not read stops being read from. Every SQE queued
 * while a batch of completions is handled goes to the kernel in the one
 * io_uring_enter that also waits for the next batch.
 *
 * Options that go beyond what coil does, to show what they would be worth
 * (off by default, so that the default is the like-for-like baseline):
 *   --poll-first   recv with IORING_RECVSEND_POLL_FIRST: the kernel arms
 *                  its poll at once instead of first trying a receive that,
 *                  right after the echo was sent, finds nothing;
 *   --multishot    one multishot recv per connection into a ring of
 *                  provided buffers (IORING_RECV_MULTISHOT, 6.0): no recv
 *                  SQE per message at all. Received buffers wait in a
 *                  per-connection FIFO while a send is in flight, and go
 *                  back to the buffer ring once sent.
 *
 * SIGINT and SIGTERM arrive through a signalfd polled in the ring: the
 * loop ends, every connection is closed and the process exits 0.
 *
 * usage: plain_echo_uring [--port 19000] [--poll-first] [--multishot]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif

#define SQ_ENTRIES 256
#define CONN_BUF (16 * 1024)
/* The provided-buffer ring of --multishot: count (a power of two) and size. */
#define PBUF_COUNT 1024
#define PBUF_SIZE 4096
#define PBUF_GROUP 0

/* What a completion is for: the low 3 bits of its user_data (the rest is
 * the connection's address, which is 8-byte aligned). */
enum { T_ACCEPT = 1, T_RECV, T_SEND, T_SIGNAL };

/* A received provided buffer waiting to be sent (--multishot). */
typedef struct pend {
	uint16_t bid;
	uint32_t len;
} pend_t;

typedef struct conn {
	struct conn *prev, *next; /* the list of open connections */
	int fd;
	/* Default mode: what the buffer holds and how much of it was sent. */
	uint32_t len, off;
	/* --multishot: the FIFO of received buffers, the first one being sent
	 * (from `off`) while `sending`; the recv is armed while `armed`. */
	pend_t *q;
	unsigned qhead, qlen, qcap;
	bool sending, armed, dead;
	bool eof;                 /* the peer is done; the queue still goes */
	bool starved;             /* the recv ended for want of buffers */
	char *buf;
} conn_t;

static struct io_uring ring;
static bool poll_first, multishot;
static conn_t conns = { .prev = &conns, .next = &conns };
static struct io_uring_buf_ring *pbr;
static char *pbufs;
/* Connections whose multishot recv ended with -ENOBUFS, and whether a
 * buffer went back to the ring since: then they are armed again. */
static unsigned nstarved;
static bool recycled;

static uint64_t tag(conn_t *c, unsigned type)
{
	return (uint64_t)(uintptr_t)c | type;
}

/* An SQE, flushing the SQ to the kernel first when it is full. */
static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	while (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	return sqe;
}

static void arm_accept(int lfd)
{
	struct io_uring_sqe *sqe = sqe_get();
	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, T_ACCEPT);
}

static void arm_signal(int sfd)
{
	struct io_uring_sqe *sqe = sqe_get();
	io_uring_prep_poll_add(sqe, sfd, POLLIN);
	io_uring_sqe_set_data64(sqe, T_SIGNAL);
}

static void arm_recv(conn_t *c)
{
	struct io_uring_sqe *sqe = sqe_get();
	if (multishot) {
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = PBUF_GROUP;
		c->armed = true;
	} else {
		io_uring_prep_recv(sqe, c->fd, c->buf, CONN_BUF, 0);
		if (poll_first)
			sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	}
	io_uring_sqe_set_data64(sqe, tag(c, T_RECV));
}

static void arm_send(conn_t *c, const char *p, uint32_t n)
{
	struct io_uring_sqe *sqe = sqe_get();
	io_uring_prep_send(sqe, c->fd, p, n, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, tag(c, T_SEND));
}

static void conn_free(conn_t *c)
{
	c->prev->next = c->next;
	c->next->prev = c->prev;
	close(c->fd);
	free(c->q);
	free(c->buf);
	free(c);
}

/* --- provided buffers (--multishot) --------------------------------------- */

static char *pbuf(uint16_t bid)
{
	return pbufs + (size_t)bid * PBUF_SIZE;
}

static void pbuf_recycle(uint16_t bid)
{
	io_uring_buf_ring_add(pbr, pbuf(bid), PBUF_SIZE, bid,
			      io_uring_buf_ring_mask(PBUF_COUNT), 0);
	io_uring_buf_ring_advance(pbr, 1);
	recycled = true;
}

/* Arms the recv of every starved connection again (after a batch of
 * completions gave buffers back). */
static void rearm_starved(void)
{
	for (conn_t *c = conns.next; c != &conns && nstarved; c = c->next) {
		if (!c->starved)
			continue;
		c->starved = false;
		nstarved--;
		if (!c->dead && !c->armed)
			arm_recv(c);
	}
	recycled = false;
}

static int pbuf_setup(void)
{
	size_t sz = PBUF_COUNT * sizeof(struct io_uring_buf);
	if (posix_memalign((void **)&pbr, 4096, sz) ||
	    posix_memalign((void **)&pbufs, 4096, (size_t)PBUF_COUNT * PBUF_SIZE))
		return -ENOMEM;
	io_uring_buf_ring_init(pbr);
	struct io_uring_buf_reg reg = {
		.ring_addr = (uint64_t)(uintptr_t)pbr,
		.ring_entries = PBUF_COUNT,
		.bgid = PBUF_GROUP,
	};
	int rc = io_uring_register_buf_ring(&ring, &reg, 0);
	if (rc)
		return rc;
	for (uint16_t i = 0; i < PBUF_COUNT; i++)
		io_uring_buf_ring_add(pbr, pbuf(i), PBUF_SIZE, i,
				      io_uring_buf_ring_mask(PBUF_COUNT), i);
	io_uring_buf_ring_advance(pbr, PBUF_COUNT);
	return 0;
}

/* Frees a connection once nothing of it is in flight; its queued buffers
 * go back to the ring. */
static void ms_maybe_free(conn_t *c)
{
	if (!c->dead || c->armed || c->sending)
		return;
	if (c->starved)
		nstarved--;
	for (unsigned i = 0; i < c->qlen; i++)
		pbuf_recycle(c->q[(c->qhead + i) % c->qcap].bid);
	conn_free(c);
}

static void ms_send_head(conn_t *c)
{
	pend_t *p = &c->q[c->qhead];
	c->sending = true;
	arm_send(c, pbuf(p->bid) + c->off, p->len - c->off);
}

static void ms_on_recv(conn_t *c, int res, unsigned flags)
{
	if (!(flags & IORING_CQE_F_MORE))
		c->armed = false;
	if (res > 0 && (flags & IORING_CQE_F_BUFFER) && !c->dead) {
		if (c->qlen == c->qcap) {
			unsigned ncap = c->qcap ? 2 * c->qcap : 8;
			pend_t *nq = malloc(ncap * sizeof(*nq));
			if (!nq) {
				fprintf(stderr, "plain_echo_uring: out of memory\n");
				exit(1);
			}
			for (unsigned i = 0; i < c->qlen; i++)
				nq[i] = c->q[(c->qhead + i) % c->qcap];
			free(c->q);
			c->q = nq;
			c->qcap = ncap;
			c->qhead = 0;
		}
		c->q[(c->qhead + c->qlen++) % c->qcap] = (pend_t){
			.bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT),
			.len = (uint32_t)res,
		};
		if (!c->sending) {
			c->off = 0;
			ms_send_head(c);
		}
	} else if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
		pbuf_recycle((uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT));
	} else if (res == -ENOBUFS && !c->dead) {
		/* Every provided buffer is queued somewhere: armed again once
		 * a send gives one back (rearm_starved). */
		if (!c->armed && !c->starved) {
			c->starved = true;
			nstarved++;
		}
	} else if (res == 0 && c->sending) {
		/* The peer ended its side: what it sent is still echoed. */
		c->eof = true;
	} else {
		c->dead = true; /* the end of the stream, or an error */
	}
	if (!c->armed && !c->dead && !c->eof && res != -ENOBUFS)
		arm_recv(c);
	ms_maybe_free(c);
}

static void ms_on_send(conn_t *c, int res)
{
	c->sending = false;
	if (res <= 0 || c->dead) {
		c->dead = true;
		ms_maybe_free(c);
		return;
	}
	pend_t *p = &c->q[c->qhead];
	c->off += (uint32_t)res;
	if (c->off < p->len) {
		ms_send_head(c);
		return;
	}
	pbuf_recycle(p->bid);
	c->qhead = (c->qhead + 1) % c->qcap;
	c->qlen--;
	c->off = 0;
	if (c->qlen) {
		ms_send_head(c);
	} else if (c->eof) {
		c->dead = true;
		ms_maybe_free(c);
	}
}

/* --- one buffer per connection (default) ---------------------------------- */

static void on_recv(conn_t *c, int res)
{
	if (res <= 0) {
		conn_free(c); /* the end of the stream, or an error */
		return;
	}
	c->len = (uint32_t)res;
	c->off = 0;
	arm_send(c, c->buf, c->len);
}

static void on_send(conn_t *c, int res)
{
	if (res <= 0) {
		conn_free(c);
		return;
	}
	c->off += (uint32_t)res;
	if (c->off < c->len)
		arm_send(c, c->buf + c->off, c->len - c->off);
	else
		arm_recv(c);
}

/* --- accepting and the loop ----------------------------------------------- */

static void on_accept(int lfd, int res, unsigned flags)
{
	if (!(flags & IORING_CQE_F_MORE))
		arm_accept(lfd);
	if (res < 0) {
		if (res != -ECONNABORTED && res != -EINTR)
			fprintf(stderr, "plain_echo_uring: accept: %s\n", strerror(-res));
		return;
	}
	int one = 1;
	setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn_t *c = calloc(1, sizeof(*c));
	if (c && !multishot && !(c->buf = malloc(CONN_BUF))) {
		free(c);
		c = NULL;
	}
	if (!c) {
		close(res);
		return;
	}
	c->fd = res;
	c->next = &conns;
	c->prev = conns.prev;
	conns.prev->next = c;
	conns.prev = c;
	arm_recv(c);
}

static int ring_setup(void)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		0,
	};
	int rc = -EINVAL;
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
		p.cq_entries = SQ_ENTRIES * 8;
		rc = io_uring_queue_init_params(SQ_ENTRIES, &ring, &p);
		if (rc != -EINVAL)
			break;
	}
	return rc;
}

static int listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

static void usage(void)
{
	fprintf(stderr, "usage: plain_echo_uring [--port P] [--poll-first] [--multishot]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int port = 19000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--poll-first"))
			poll_first = true;
		else if (!strcmp(argv[i], "--multishot"))
			multishot = true;
		else
			usage();
	}
	if (port <= 0 || port > 65535)
		usage();

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	int lfd = listen_on(port);
	if (sfd < 0 || lfd < 0) {
		perror("plain_echo_uring: setup");
		return 1;
	}
	int rc = ring_setup();
	if (rc) {
		fprintf(stderr, "plain_echo_uring: io_uring_queue_init: %s\n", strerror(-rc));
		return 1;
	}
	if (multishot && (rc = pbuf_setup())) {
		fprintf(stderr, "plain_echo_uring: provided buffers: %s\n", strerror(-rc));
		return 1;
	}
	arm_accept(lfd);
	arm_signal(sfd);
	printf("# plain_echo_uring port=%d ring_flags=0x%x%s%s\n", port, ring.flags,
	       poll_first ? " poll_first" : "", multishot ? " multishot" : "");
	fflush(stdout);

	bool stop = false;
	while (!stop) {
		rc = io_uring_submit_and_wait(&ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EAGAIN && rc != -EBUSY) {
			fprintf(stderr, "plain_echo_uring: io_uring_enter: %s\n", strerror(-rc));
			return 1;
		}
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			n++;
			uint64_t ud = cqe->user_data;
			conn_t *c = (conn_t *)(uintptr_t)(ud & ~(uint64_t)7);
			switch (ud & 7) {
			case T_ACCEPT:
				on_accept(lfd, cqe->res, cqe->flags);
				break;
			case T_RECV:
				if (multishot)
					ms_on_recv(c, cqe->res, cqe->flags);
				else
					on_recv(c, cqe->res);
				break;
			case T_SEND:
				if (multishot)
					ms_on_send(c, cqe->res);
				else
					on_send(c, cqe->res);
				break;
			case T_SIGNAL:
				stop = true;
				break;
			}
		}
		io_uring_cq_advance(&ring, n);
		if (nstarved && recycled)
			rearm_starved();
	}

	/* Tearing the ring down cancels every operation still in flight; the
	 * connections are closed after that, so that no operation runs on a
	 * closed (or reused) descriptor. */
	io_uring_queue_exit(&ring);
	while (conns.next != &conns)
		conn_free(conns.next);
	free(pbr);
	free(pbufs);
	close(lfd);
	close(sfd);
	return 0;
}
