/*
 * tests/test_race_sig.c: signal handlers and streams used by tasks on two
 * workers at once.
 *
 * Each test runs rounds on a runtime of 2 workers: a driver task pinned on
 * worker 0 and a helper task pinned on worker 1, which runs one job per
 * round (tests/race.h). Both sides start after a random spin, so either
 * may come first.
 *
 * Signals: real-time signals queue, so each one sent must be handled
 * exactly once, by the callback wherever its handler is when it comes, or
 * by the previous disposition once the handler is gone. One side sends
 * while the other moves the handler to its worker, or removes it and adds
 * it again; then the round waits until every signal sent was counted
 * (failing after 10 s: a lost signal is never counted). The signals go
 * through the main thread, which forwards them, or (main blocking them)
 * stay pending for the process until a signalfd reads them.
 *
 * Streams: what coil/stream.h allows at once, a reader and a writer on
 * two workers, a close while the other side reads or drains, two writers
 * (one meets -EBUSY), write_eof while the other side reads: every byte a
 * call said it took reaches the peer, in order, and a reader reads only
 * what its stream holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coil/coil.h"
#include "coil/stream.h"
#include "test.h"
#include "race.h"

#define SEC COIL_NSEC_PER_SEC

static void run_rounds(rounds_fn fn, int rounds)
{
	race_run_rounds(fn, rounds, 4242);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* ---- signals ------------------------------------------------------------ */

#define SENDS 3                   /* signals sent per round */

static struct {
	int sig;
	atomic_int hits;          /* runs of the callback */
	atomic_int old_hits;      /* runs of the previous disposition */
	int sent;
} sg;

static void count_cb(void *arg)
{
	(void)arg;
	atomic_fetch_add(&sg.hits, 1);
}

static void old_action(int sig)
{
	(void)sig;
	atomic_fetch_add(&sg.old_hits, 1);
}

static void sig_setup(bool main_blocks)
{
	memset(&sg, 0, sizeof(sg));
	sg.sig = SIGRTMIN + 4;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = old_action;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(sg.sig, &sa, NULL), 0);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sg.sig);
	pthread_sigmask(main_blocks ? SIG_BLOCK : SIG_UNBLOCK, &one, NULL);
}

static void job_send(void *arg)
{
	(void)arg;
	for (int k = 0; k < SENDS; k++) {
		union sigval v = { .sival_int = k };
		ASSERT_EQ(sigqueue(getpid(), sg.sig, v), 0);
	}
}

static void job_add(void *arg)
{
	(void)arg;
	ASSERT_EQ(coil_add_signal_handler(sg.sig, count_cb, NULL), 0);
}

static void job_remove_add(void *arg)
{
	(void)arg;
	ASSERT_EQ(coil_remove_signal_handler(sg.sig), 1);
	ASSERT_EQ(coil_add_signal_handler(sg.sig, count_cb, NULL), 0);
}

static void job_remove(void *arg)
{
	(void)arg;
	ASSERT_EQ(coil_remove_signal_handler(sg.sig), 1);
}

/* The end of a round: every signal sent was handled once. */
static void wait_all_handled(void)
{
	sg.sent += SENDS;
	int64_t until = now_ns() + 10 * SEC;
	while (atomic_load(&sg.hits) + atomic_load(&sg.old_hits) < sg.sent &&
	       now_ns() < until)
		ASSERT_EQ(coil_sleep(0.0002), 0);
	ASSERT_EQ(atomic_load(&sg.hits) + atomic_load(&sg.old_hits), sg.sent);
}

/* Both sides act at once: the helper runs `helper`, the driver `mine`. */
static void at_once(job_fn helper, job_fn mine, uint64_t *rng)
{
	helper_go(helper, NULL);
	jitter(rng);
	mine(NULL);
	helper_wait();
}

/* One side sends while the other takes the handler to its worker: the
 * handler goes back and forth, and never stops existing. */
static void move_round(int i, uint64_t *rng)
{
	if (i == 0)
		job_add(NULL);
	if (i % 2)
		at_once(job_send, job_add, rng);
	else
		at_once(job_add, job_send, rng);
	wait_all_handled();
	ASSERT_EQ(atomic_load(&sg.old_hits), 0);
	if (i == race_nrounds - 1)
		ASSERT_EQ(coil_remove_signal_handler(sg.sig), 1);
}

static int sig_rounds(void)
{
	return under_valgrind() ? 30 : 2000;
}

TEST(signals_sent_as_the_handler_moves_are_each_handled_once)
{
	sig_setup(false);
	run_rounds(move_round, sig_rounds());
}

TEST(pending_signals_are_each_handled_once_as_the_handler_moves)
{
	sig_setup(true);
	run_rounds(move_round, sig_rounds());
}

/* One side sends while the other removes the handler (the helper from
 * another worker's thread, the driver on the handler's own loop), or
 * removes it and adds it on its own worker: each signal runs the callback
 * or meets the previous disposition. */
static void remove_round(int i, uint64_t *rng)
{
	job_add(NULL);
	switch (i % 3) {
	case 0:
		at_once(job_remove, job_send, rng);
		break;
	case 1:
		at_once(job_send, job_remove, rng);
		break;
	default:
		at_once(job_remove_add, job_send, rng);
		ASSERT_EQ(coil_remove_signal_handler(sg.sig), 1);
		break;
	}
	wait_all_handled();
}

TEST(signals_sent_as_the_handler_goes_are_each_handled_once)
{
	sig_setup(false);
	run_rounds(remove_round, sig_rounds());
}

/*
 * A handler removed from another worker while more signals than one read
 * takes wait for its loop, every thread blocking them: its loop, which
 * reads them after the removal (its signalfd learns of the removal
 * later), sends each on to the process, where they all stay pending.
 */
#define MANY 40

static void many_pending_round(int i, uint64_t *rng)
{
	(void)i;
	(void)rng;
	job_add(NULL);
	for (int k = 0; k < MANY; k++) {
		union sigval v = { .sival_int = k };
		ASSERT_EQ(sigqueue(getpid(), sg.sig, v), 0);
	}
	/* Not yielding until the removal is done: worker 0's loop reads
	 * nothing before. */
	helper_go(job_remove, NULL);
	unsigned spins = 0;
	while (atomic_load(&helper.done) != atomic_load(&helper.seq))
		spin_pause(&spins);
	ASSERT_EQ(coil_sleep(0.001), 0);
	/* Wherever they are pending, this thread's sigtimedwait sees them:
	 * the loop that sends them on runs on this thread. */
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sg.sig);
	static const struct timespec zero;
	int n = 0;
	while (sigtimedwait(&one, NULL, &zero) == sg.sig)
		n++;
	ASSERT_EQ(n, MANY);
	ASSERT_EQ(atomic_load(&sg.hits), 0);
}

TEST(many_signals_pending_as_the_handler_goes_all_stay)
{
	sig_setup(true);
	run_rounds(many_pending_round, under_valgrind() ? 5 : 50);
}

/* ---- streams ------------------------------------------------------------ */

/* The k-th byte of what a test's writer sends. */
static char byte_at(size_t k)
{
	return (char)('a' + k % 23);
}

static struct {
	coil_stream_t *s;
	int peer;                 /* the other end, a plain socket */
	int lines;                /* lines the peer sent before the round */
	int got;                  /* lines the reader read */
	ssize_t end;              /* the reader's last result */
	atomic_size_t accepted;   /* bytes the writer's calls took */
	atomic_bool done;         /* the writer left */
} st;

static void stream_setup(size_t sndbuf)
{
	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	if (sndbuf) {
		int v = (int)sndbuf;
		ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
	}
	ASSERT_EQ(coil_stream_from_fd(&st.s, sv[0], NULL), 0);
	st.peer = sv[1];
	st.lines = st.got = 0;
	st.end = 1;
	atomic_store(&st.accepted, 0);
	atomic_store(&st.done, false);
}

/* Everything the peer holds is what the writer's calls took, in order,
 * then the end of the stream (the stream was wait_closed). Frees the
 * round's stream and socket. */
static void peer_check(void)
{
	size_t want = atomic_load(&st.accepted), k = 0;
	char buf[4096];
	ssize_t n;
	while ((n = recv(st.peer, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		for (ssize_t j = 0; j < n; j++, k++)
			ASSERT_EQ(buf[j], byte_at(k));
	/* A Unix socket closed with input left unread resets the peer
	 * once the peer has read what was sent. */
	if (n < 0 && st.got < st.lines)
		ASSERT_EQ(errno, ECONNRESET);
	else
		ASSERT_EQ(n, 0);
	ASSERT_EQ(k, want);
	close(st.peer);
	coil_stream_free(st.s);
}

/* The reader: the lines the peer sent, in order, until the stream is
 * closed. */
static void job_readlines(void *arg)
{
	(void)arg;
	char buf[64], want[64];
	while (st.got < st.lines) {
		ssize_t n = coil_stream_readline(st.s, buf, sizeof(buf), COIL_FOREVER);
		st.end = n;
		if (n == COIL_ECLOSED)
			return;
		int len = snprintf(want, sizeof(want), "line %d\n", st.got);
		ASSERT_EQ(n, len);
		ASSERT(!memcmp(buf, want, (size_t)len));
		st.got++;
	}
}

#define WRITES 32

/* The writer, on worker 0, while the reader reads on worker 1: small
 * writes, each drained, and in most rounds a close at a random point. */
static void rw_round(int i, uint64_t *rng)
{
	stream_setup(0);
	st.lines = 8 + (int)(rnd(rng) % 8);
	char line[64];
	for (int k = 0; k < st.lines; k++) {
		int len = snprintf(line, sizeof(line), "line %d\n", k);
		ASSERT_EQ(write(st.peer, line, (size_t)len), len);
	}
	int close_at = i % 4 ? (int)(rnd(rng) % WRITES) : WRITES;
	helper_go(job_readlines, NULL);
	jitter(rng);
	size_t off = 0;
	for (int k = 0; k < WRITES; k++) {
		if (k == close_at)
			coil_stream_close(st.s);
		char chunk[100];
		size_t n = 1 + rnd(rng) % sizeof(chunk);
		for (size_t j = 0; j < n; j++)
			chunk[j] = byte_at(off + j);
		int rc = coil_stream_write(st.s, chunk, n);
		ASSERT_EQ(rc, k < close_at ? 0 : COIL_ECLOSED);
		if (rc == 0)
			atomic_store(&st.accepted, off += n);
		ASSERT_EQ(coil_stream_drain(st.s, COIL_FOREVER), 0);
	}
	helper_wait();
	/* Every line was read unless the close came first. */
	if (st.got < st.lines) {
		ASSERT_LT(close_at, WRITES);
		ASSERT_EQ(st.end, COIL_ECLOSED);
	}
	ASSERT_EQ(coil_stream_wait_closed(st.s, COIL_FOREVER), 0);
	peer_check();
}

TEST(a_stream_read_on_one_worker_written_on_the_other_and_closed)
{
	run_rounds(rw_round, under_valgrind() ? 20 : 1000);
}

/* The writer, on worker 1: more than the socket holds, each write drained,
 * so that drains wait for the peer; it stops at the close. */
static void job_write_drain(void *arg)
{
	uint64_t *rng = arg;
	char chunk[2048];
	size_t off = 0;
	for (int k = 0; k < WRITES; k++) {
		size_t n = 1 + rnd(rng) % sizeof(chunk);
		for (size_t j = 0; j < n; j++)
			chunk[j] = byte_at(off + j);
		int rc = coil_stream_write(st.s, chunk, n);
		if (rc == COIL_ECLOSED)
			break;
		ASSERT_EQ(rc, 0);
		atomic_store(&st.accepted, off += n);
		/* A close does not stop a drain: the bytes written go out. */
		ASSERT_EQ(coil_stream_drain(st.s, COIL_FOREVER), 0);
	}
	atomic_store(&st.done, true);
}

/* The peer's reader and the closer, on worker 0, while worker 1 drains:
 * the close comes at a random point of the reading. */
static void drain_close_round(int i, uint64_t *rng)
{
	(void)i;
	stream_setup(4096);
	static uint64_t wrng = 99;
	size_t got = 0;
	int close_at = (int)(rnd(rng) % 16);
	helper_go(job_write_drain, &wrng);
	for (int k = 0;; k++) {
		if (k == close_at)
			coil_stream_close(st.s);
		if (atomic_load(&st.done) && got == atomic_load(&st.accepted))
			break;
		char buf[1024];
		ssize_t n = recv(st.peer, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			ASSERT_EQ(errno, EAGAIN);
			ASSERT_EQ(coil_sleep(0), 0);
			continue;
		}
		ASSERT_GT(n, 0);
		for (ssize_t j = 0; j < n; j++, got++)
			ASSERT_EQ(buf[j], byte_at(got));
	}
	helper_wait();
	ASSERT_EQ(coil_stream_wait_closed(st.s, COIL_FOREVER), 0);
	atomic_store(&st.accepted, 0); /* all checked: the peer holds nothing */
	peer_check();
}

TEST(a_stream_drained_on_one_worker_while_the_other_closes_it)
{
	run_rounds(drain_close_round, under_valgrind() ? 20 : 1000);
}

/*
 * Two writers on two workers at once: each call either takes the write
 * side or returns -EBUSY, and the peer gets every chunk a write took,
 * whole, each writer's in its order.
 */
typedef struct writer {
	int id;
	int seq;                  /* chunks taken */
	size_t bytes;             /* bytes taken */
	uint64_t rng;
} writer_t;

static writer_t wr[2];

static uint8_t chunk_byte(int id, int seq, size_t j)
{
	return (uint8_t)(id * 31 + seq * 7 + (int)j);
}

/* Writes chunks of [length, writer, sequence, bytes], each drained. */
static void job_write_chunks(void *arg)
{
	writer_t *w = arg;
	uint8_t c[3 + 64];
	for (int k = 0; k < WRITES; k++) {
		size_t n = 1 + rnd(&w->rng) % 64;
		c[0] = (uint8_t)n;
		c[1] = (uint8_t)w->id;
		c[2] = (uint8_t)w->seq;
		for (size_t j = 0; j < n; j++)
			c[3 + j] = chunk_byte(w->id, w->seq, j);
		int rc = coil_stream_write(st.s, c, 3 + n);
		if (rc == 0) {
			w->seq++;
			w->bytes += 3 + n;
		} else {
			ASSERT_EQ(rc, -EBUSY);
		}
		rc = coil_stream_drain(st.s, COIL_FOREVER);
		ASSERT(rc == 0 || rc == -EBUSY);
	}
}

static struct {
	uint8_t buf[2 * WRITES * (3 + 64) + 1];
	size_t len;
	ssize_t end;
} pr;

/* The peer reads slowly, on a thread of its own, so that drains wait for
 * it and hold the write side meanwhile. */
static void *peer_reader(void *arg)
{
	(void)arg;
	ssize_t n = 0;
	size_t room;
	while ((room = sizeof(pr.buf) - pr.len) &&
	       (n = recv(st.peer, pr.buf + pr.len, room < 256 ? room : 256, 0)) > 0) {
		pr.len += (size_t)n;
		sched_yield();
	}
	pr.end = room ? n : -1; /* more than the writers took: fails */
	return NULL;
}

static void two_writers_round(int i, uint64_t *rng)
{
	stream_setup(4096);
	for (int k = 0; k < 2; k++)
		wr[k] = (writer_t){ .id = k, .rng = (uint64_t)(i * 2 + k) };
	pr.len = 0;
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, peer_reader, NULL), 0);
	helper_go(job_write_chunks, &wr[1]);
	jitter(rng);
	job_write_chunks(&wr[0]);
	helper_wait();
	/* What a drain refused (-EBUSY) and no other drain sent goes now. */
	ASSERT_EQ(coil_stream_wait_closed(st.s, COIL_FOREVER), 0);
	pthread_join(th, NULL);
	ASSERT_EQ(pr.end, 0);
	uint8_t *buf = pr.buf;
	size_t len = pr.len;
	ASSERT_EQ(len, wr[0].bytes + wr[1].bytes);
	int next[2] = { 0, 0 };
	for (size_t pos = 0; pos < len;) {
		size_t cn = buf[pos];
		int id = buf[pos + 1];
		ASSERT_LT(id, 2);
		ASSERT_EQ(buf[pos + 2], (uint8_t)next[id]);
		for (size_t j = 0; j < cn; j++)
			ASSERT_EQ(buf[pos + 3 + j], chunk_byte(id, next[id], j));
		next[id]++;
		pos += 3 + cn;
	}
	ASSERT_EQ(next[0], wr[0].seq);
	ASSERT_EQ(next[1], wr[1].seq);
	close(st.peer);
	coil_stream_free(st.s);
}

TEST(a_stream_written_by_two_workers_at_once)
{
	run_rounds(two_writers_round, under_valgrind() ? 20 : 1000);
}

/*
 * A stream over a descriptor that is not a socket, read and written (a
 * FIFO opened for both, as a terminal is): write_eof closes the
 * descriptor while the reader, on the other worker, goes on reading. The
 * descriptor's number is taken at once by a new pipe full of 'Z': the
 * reader must never read from it, and ends with COIL_ECLOSED.
 */
static struct {
	char path[64];
	int keep;                 /* holds the FIFO open: its name is gone */
	ssize_t end;
	atomic_size_t bytes;
	atomic_bool bad;          /* read something the FIFO never held */
} ff;

static void job_read_bytes(void *arg)
{
	(void)arg;
	char c;
	ssize_t n;
	while ((n = coil_stream_read(st.s, &c, 1, COIL_FOREVER)) == 1) {
		if (c != 'a')
			atomic_store(&ff.bad, true);
		atomic_fetch_add(&ff.bytes, 1);
	}
	ff.end = n;
}

static void eof_round(int i, uint64_t *rng)
{
	(void)i;
	int fd = open(ff.path, O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	int w = open(ff.path, O_RDWR | O_CLOEXEC); /* for the end */
	ASSERT_GE(w, 0);
	char fill[512];
	memset(fill, 'a', sizeof(fill));
	ASSERT_EQ(write(fd, fill, sizeof(fill)), (ssize_t)sizeof(fill));
	coil_stream_opts_t o;
	coil_stream_opts_init(&o);
	o.read_buffer = 8; /* a receive every 8 bytes */
	ASSERT_EQ(coil_stream_from_fd(&st.s, fd, &o), 0);
	atomic_store(&ff.bytes, 0);
	ff.end = 1;
	helper_go(job_read_bytes, NULL);
	jitter(rng);
	ASSERT_EQ(coil_stream_write_eof(st.s, COIL_FOREVER), 0);
	int p[2];
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	ASSERT_EQ(write(p[1], "ZZZZ", 4), 4);
	/* A reader that took every byte waits in the ring for more: one
	 * more byte through another descriptor of the FIFO wakes it. */
	ASSERT_EQ(write(w, "a", 1), 1);
	helper_wait();
	ASSERT(!atomic_load(&ff.bad));
	ASSERT_EQ(ff.end, COIL_ECLOSED);
	ASSERT_EQ(coil_stream_wait_closed(st.s, COIL_FOREVER), 0);
	coil_stream_free(st.s);
	close(w);
	close(p[0]);
	close(p[1]);
	/* The FIFO outlives the round through ff.keep: empty it, as closing
	 * its last descriptor would. */
	char junk[512];
	while (read(ff.keep, junk, sizeof(junk)) > 0)
		;
}

TEST(a_stream_read_on_one_worker_as_the_other_ends_its_writing)
{
	/* The FIFO's name goes at once, so that a failing round leaves no
	 * file behind: the rounds open it again through a descriptor kept
	 * open for the test. */
	char name[64];
	snprintf(name, sizeof(name), "/tmp/coil-race-fifo-%d", (int)getpid());
	unlink(name);
	ASSERT_EQ(mkfifo(name, 0600), 0);
	ff.keep = open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* no writer */
	unlink(name);
	ASSERT(ff.keep >= 0);
	snprintf(ff.path, sizeof(ff.path), "/proc/self/fd/%d", ff.keep);
	run_rounds(eof_round, under_valgrind() ? 20 : 2000);
	close(ff.keep);
}

TEST_LIST(TEST_ENTRY(signals_sent_as_the_handler_moves_are_each_handled_once),
	  TEST_ENTRY(pending_signals_are_each_handled_once_as_the_handler_moves),
	  TEST_ENTRY(signals_sent_as_the_handler_goes_are_each_handled_once),
	  TEST_ENTRY(many_signals_pending_as_the_handler_goes_all_stay),
	  TEST_ENTRY(a_stream_read_on_one_worker_written_on_the_other_and_closed),
	  TEST_ENTRY(a_stream_drained_on_one_worker_while_the_other_closes_it),
	  TEST_ENTRY(a_stream_written_by_two_workers_at_once),
	  TEST_ENTRY(a_stream_read_on_one_worker_as_the_other_ends_its_writing))
