/*
 * tests/test_race_io.c: servers, streams and subprocesses used by tasks on
 * two workers at once.
 *
 * Each test runs rounds on a runtime of 2 workers: a driver task pinned on
 * worker 0 and a helper task pinned on worker 1, which runs one job per
 * round. Both sides start after a random spin, so either may come first.
 * What a test asserts holds whatever the timing; a sanitizer (ASan, TSan)
 * sees the use after free or the unsynchronised access behind a failure.
 *
 * Signal handlers moved between workers as signals come, and streams
 * shared by a reader and a writer: tests/test_race_sig.c.
 */
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <netdb.h>
#include <unistd.h>

#include "coil/coil.h"
#include "coil/process.h"
#include "coil/stream.h"
#include "stream_int.h"
#include "test.h"
#include "race.h"

/* ---- the helper on worker 1 ---- */

static void run_rounds(rounds_fn fn, int rounds)
{
	race_run_rounds(fn, rounds, 12345);
}

/* ---- a server freed by another worker as soon as its close finished ---- */

static int idle_handler(coil_stream_t *s, void *arg)
{
	(void)s;
	(void)arg;
	return 0;
}

static struct {
	coil_server_t *srv;
	int frees;                /* calls until coil_server_free said 0 */
} fr;

/* coil_server_free may be called from any thread, and refuses
 * (COIL_EINVALSTATE) until coil_server_close has finished: the helper
 * polls it, so that it frees the server the moment the close lets it. */
static void job_free_when_closed(void *arg)
{
	(void)arg;
	unsigned spins = 0;
	int rc;
	while ((rc = coil_server_free(fr.srv)) == COIL_EINVALSTATE) {
		fr.frees++;
		spin_pause(&spins);
	}
	ASSERT_EQ(rc, 0);
}

static void server_free_round(int i, uint64_t *rng)
{
	(void)i;
	ASSERT_EQ(coil_start_server(&fr.srv, idle_handler, NULL, "127.0.0.1", 0,
				    NULL, 5LL * 1000000000), 0);
	fr.frees = 0;
	helper_go(job_free_when_closed, NULL);
	jitter(rng);
	/* Nothing may touch the server once the close has let it be freed. */
	ASSERT_EQ(coil_server_close(fr.srv, 0), 0);
	helper_wait();
}

TEST(server_freed_by_another_worker_as_its_close_finishes)
{
	run_rounds(server_free_round, under_valgrind() ? 5 : TEST_TSAN ? 150 : 400);
}

/* ---- a second close on another worker, which then frees the server ---- */

/* "A second call (from any task) waits for the first one to finish and
 * returns 0": then the server may be freed. */
static void job_close_and_free(void *arg)
{
	(void)arg;
	ASSERT_EQ(coil_server_close(fr.srv, 0), 0);
	ASSERT_EQ(coil_server_free(fr.srv), 0);
}

static void server_close_twice_round(int i, uint64_t *rng)
{
	(void)i;
	ASSERT_EQ(coil_start_server(&fr.srv, idle_handler, NULL, "127.0.0.1", 0,
				    NULL, 5LL * 1000000000), 0);
	coil_server_t *srv = fr.srv;
	helper_go(job_close_and_free, NULL);
	jitter(rng);
	/* Either call may be the first; both return 0. The helper may free
	 * the server as soon as its own call returned, so it is not looked
	 * at after ours. */
	ASSERT_EQ(coil_server_close(srv, 0), 0);
	helper_wait();
}

TEST(server_closed_on_two_workers_and_freed_by_the_second)
{
	run_rounds(server_close_twice_round, under_valgrind() ? 5 : TEST_TSAN ? 150 : 400);
}

/* ---- a stream closed while a task on another worker reads it ---- */

static struct {
	coil_stream_t *s;
	atomic_bool reading;
	ssize_t rc;
} rd;

static void job_read(void *arg)
{
	(void)arg;
	char buf[16];
	atomic_store(&rd.reading, true);
	/* The peer never writes: only the close ends this read. */
	rd.rc = coil_stream_read(rd.s, buf, sizeof(buf), COIL_FOREVER);
}

static void stream_close_round(int i, uint64_t *rng)
{
	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ASSERT_EQ(coil_stream_from_fd(&rd.s, sv[0], NULL), 0);
	atomic_store(&rd.reading, false);
	rd.rc = 1;
	helper_go(job_read, NULL);
	/* Half the rounds close as the read starts, half once it waits. */
	if (i % 2) {
		unsigned spins = 0;
		while (!atomic_load(&rd.reading))
			spin_pause(&spins);
	}
	jitter(rng);
	coil_stream_close(rd.s);
	helper_wait();
	ASSERT_EQ(rd.rc, COIL_ECLOSED);
	ASSERT_EQ(coil_stream_wait_closed(rd.s, COIL_FOREVER), 0);
	coil_stream_free(rd.s);
	close(sv[1]);
}

TEST(stream_closed_while_another_worker_reads_it)
{
	run_rounds(stream_close_round, under_valgrind() ? 10 : TEST_TSAN ? 300 : 2000);
}

/* ---- a process waited for on two workers while one kills it ---- */

static struct {
	coil_process_t *p;
	int rc, code;
} pw;

static void job_wait(void *arg)
{
	(void)arg;
	pw.code = 0;
	pw.rc = coil_process_wait(pw.p, &pw.code, COIL_FOREVER);
}

static void process_wait_round(int i, uint64_t *rng)
{
	static const char *const argv[] = { "sleep", "30", NULL };
	ASSERT_EQ(coil_process_spawn(&pw.p, argv, NULL), 0);
	pw.rc = 1;
	helper_go(job_wait, NULL);
	jitter(rng);
	if (i % 2)
		ASSERT_EQ(coil_process_kill(pw.p), 0);
	else
		ASSERT_EQ(coil_process_terminate(pw.p), 0);
	int code = 0;
	ASSERT_EQ(coil_process_wait(pw.p, &code, COIL_FOREVER), 0);
	ASSERT_EQ(code, i % 2 ? -SIGKILL : -SIGTERM);
	helper_wait();
	ASSERT_EQ(pw.rc, 0);
	ASSERT_EQ(pw.code, code);
	/* Reaped: a signal now is refused, never sent to a reused id. */
	ASSERT_EQ(coil_process_kill(pw.p), -ESRCH);
	coil_process_free(pw.p);
}

TEST(process_waited_on_two_workers_while_one_kills_it)
{
	run_rounds(process_wait_round, under_valgrind() ? 3 : TEST_TSAN ? 40 : 100);
}

/* ---- a lookup cancelled from another worker as its result comes back ---- */

/* Answers at once (the race is with the hand-back, not the lookup). */
static int quick_resolver(const char *host, const char *service,
			  const struct addrinfo *hints, struct addrinfo **res)
{
	(void)host;
	(void)hints;
	struct addrinfo h;
	memset(&h, 0, sizeof(h));
	h.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	h.ai_socktype = SOCK_STREAM;
	return getaddrinfo("127.0.0.1", service, &h, res);
}

static struct {
	coil_task_t *victim;
	atomic_bool armed;
	atomic_bool cancel_sent;
	int rc, later;
	int results;               /* rounds whose lookup returned its result */
} lk;

static int lookup_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct addrinfo *res = NULL;
	atomic_store(&lk.armed, true);
	lk.rc = coil_getaddrinfo("race.invalid", "80", NULL, &res, COIL_FOREVER);
	if (lk.rc == 0) {
		ASSERT(res != NULL);
		coil_freeaddrinfo(res);
	} else {
		ASSERT(res == NULL);
	}
	/* Without a yield, which would consume a cancellation still to come:
	 * the next await must find it requested. */
	unsigned spins = 0;
	while (!atomic_load(&lk.cancel_sent))
		spin_pause(&spins);
	lk.later = coil_sleep(0);
	return 0;
}

static void job_cancel_lookup(void *arg)
{
	(void)arg;
	ASSERT(coil_task_cancel(lk.victim, NULL));
	atomic_store(&lk.cancel_sent, true);
}

static void lookup_cancel_round(int i, uint64_t *rng)
{
	(void)i;
	(void)rng;
	coil_spawn_opts_t pinned = { .pinned = true };
	atomic_store(&lk.armed, false);
	atomic_store(&lk.cancel_sent, false);
	lk.rc = lk.later = 1;
	ASSERT_EQ(coil_spawn(&lk.victim, lookup_main, NULL, &pinned), 0);
	/* The victim runs on this worker: once it is armed and we run again,
	 * it waits for its lookup. */
	while (!atomic_load(&lk.armed))
		ASSERT_EQ(coil_sleep(0), 0);
	helper_go(job_cancel_lookup, NULL);
	ASSERT_EQ(coil_await(coil_task_future(lk.victim), NULL), 0);
	helper_wait();
	/* Exactly one delivery of the one cancellation; no result lost. */
	if (lk.rc == -ECANCELED) {
		ASSERT_EQ(lk.later, 0);
	} else {
		ASSERT_EQ(lk.rc, 0);
		ASSERT_EQ(lk.later, -ECANCELED);
		lk.results++;
	}
	coil_task_detach(lk.victim);
	lk.victim = NULL;
}

TEST(lookup_cancelled_from_another_worker_as_its_result_comes_back)
{
	coil__dns_set_resolver(quick_resolver);
	int n = under_valgrind() ? 10 : TEST_TSAN ? 300 : 2000;
	lk.results = 0;
	run_rounds(lookup_cancel_round, n);
	if (getenv("COIL_TEST_VERBOSE"))
		fprintf(stderr, "  %d rounds: %d returned the result, %d cancelled\n",
			n, lk.results, n - lk.results);
	/* Every job freed, whoever let go of it last. */
	coil__dns_shutdown();
	ASSERT_EQ(coil__dns_pending(), 0u);
	coil__dns_set_resolver(NULL);
}

/* ---- a server closed while another worker connects to it ---- */

/* The sockets open in the process (other descriptors, which the runtime
 * and the other tests may open and close lazily, are not counted). */
static int open_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	ASSERT(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[300], target[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(path, target, sizeof(target) - 1);
		if (k > 0) {
			target[k] = '\0';
			if (strncmp(target, "socket:", 7) == 0)
				n++;
		}
	}
	closedir(d);
	return n;
}

/* Waits for a byte (or the end) from the client: some handlers still run
 * when the close comes, and are cancelled. */
static int read_one_handler(coil_stream_t *s, void *arg)
{
	(void)arg;
	char c;
	ssize_t r = coil_stream_read(s, &c, 1, COIL_FOREVER);
	return r < 0 && r != -ECANCELED && r != COIL_ECLOSED ? (int)r : 0;
}

#define CONNS 4

static struct {
	int port;
} cc;

/* Plain non-blocking connects, closed at once: the server's side sees
 * them in any state. (A blocking one could wait a second for the SYN to
 * be sent again, should the listening socket drop it as it closes.) */
static void job_connect(void *arg)
{
	(void)arg;
	int fds[CONNS];
	for (int k = 0; k < CONNS; k++) {
		fds[k] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		ASSERT(fds[k] >= 0);
		struct sockaddr_in sin;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)cc.port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		/* Done, under way, or refused once the listening socket
		 * is closed. */
		(void)connect(fds[k], (struct sockaddr *)&sin, sizeof(sin));
	}
	for (int k = 0; k < CONNS; k++)
		close(fds[k]);
}

static void server_connect_round(int i, uint64_t *rng)
{
	int base = open_sockets();
	coil_server_t *srv = NULL;
	ASSERT_EQ(coil_start_server(&srv, read_one_handler, NULL, "127.0.0.1", 0,
				    NULL, 5LL * 1000000000), 0);
	cc.port = coil_server_port(srv);
	helper_go(job_connect, NULL);
	jitter(rng);
	int rc = coil_server_close(srv, i % 2 ? 0 : COIL_FOREVER);
	ASSERT(rc == 0 || (i % 2 && rc == -ETIMEDOUT));
	helper_wait();
	ASSERT_EQ(coil_server_connections(srv), 0u);
	ASSERT_EQ(coil_server_free(srv), 0);
	/* Every connection the server accepted was closed, whatever the
	 * close met it doing. */
	ASSERT_EQ(open_sockets(), base);
}

TEST(server_closed_while_another_worker_connects)
{
	run_rounds(server_connect_round, under_valgrind() ? 5 : TEST_TSAN ? 150 : 400);
}

TEST_LIST(TEST_ENTRY(server_freed_by_another_worker_as_its_close_finishes),
	  TEST_ENTRY(server_closed_on_two_workers_and_freed_by_the_second),
	  TEST_ENTRY(stream_closed_while_another_worker_reads_it),
	  TEST_ENTRY(process_waited_on_two_workers_while_one_kills_it),
	  TEST_ENTRY(lookup_cancelled_from_another_worker_as_its_result_comes_back),
	  TEST_ENTRY(server_closed_while_another_worker_connects))
