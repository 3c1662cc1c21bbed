/*
 * tests/test_race_net.c: name lookups and servers across two workers.
 *
 * As tests/test_race_io.c: a driver task pinned on worker 0 and a helper
 * task pinned on worker 1 (tests/race.h) act at once after random spins,
 * round after round, so that either may come first. Here: a lookup with a
 * deadline that its result, its timer and a canceller on the other worker
 * all try to end; lookups still in flight when their runtime shuts down or
 * their loop closes; lookups handed to the resolver pool as it is stopped
 * and joined; a handler that closes its own server, alone or among others,
 * while another worker frees it; a server closed from the other worker as
 * connections arrive; and an acceptor backing off from EMFILE while
 * another worker closes its server. ASan and TSan see the use after free
 * or the unsynchronised access behind a failure; the leak checkers see a
 * job left behind, and the tests count the threads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coil/coil.h"
#include "coil/stream.h"
#include "stream_int.h"
#include "test.h"
#include "race.h"

static void run_rounds(rounds_fn fn, int rounds)
{
	race_run_rounds(fn, rounds, 424242);
}

/* Answers at once with 127.0.0.1 (the race is with the hand-back). */
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

/* ---- a lookup whose result, timer and canceller all race ---- */

static struct {
	coil_task_t *victim;
	atomic_bool armed;
	atomic_bool cancel_sent;
	int64_t timeout;
	int rc, later;
	int results, timeouts, cancels;
} lt;

static int timed_lookup_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct addrinfo *res = NULL;
	atomic_store(&lt.armed, true);
	/* The deadline pins the task to this worker until the wait ends,
	 * whoever ends it. */
	lt.rc = coil_getaddrinfo("race.invalid", "80", NULL, &res, lt.timeout);
	if (lt.rc == 0)
		coil_freeaddrinfo(res);
	else
		ASSERT(res == NULL);
	unsigned spins = 0;
	while (!atomic_load(&lt.cancel_sent))
		spin_pause(&spins);
	lt.later = coil_sleep(0);
	return 0;
}

static void job_cancel_timed(void *arg)
{
	(void)arg;
	ASSERT(coil_task_cancel(lt.victim, NULL));
	atomic_store(&lt.cancel_sent, true);
}

static void timed_lookup_round(int i, uint64_t *rng)
{
	coil_spawn_opts_t pinned = { .pinned = true };
	atomic_store(&lt.armed, false);
	atomic_store(&lt.cancel_sent, false);
	lt.rc = lt.later = 1;
	/* From 1 us to about 250 us: the timer fires before, with or after
	 * the result. */
	lt.timeout = 1000 + (int64_t)(rnd(rng) % (i % 2 ? 250000 : 20000));
	ASSERT_EQ(coil_spawn(&lt.victim, timed_lookup_main, NULL, &pinned), 0);
	while (!atomic_load(&lt.armed))
		ASSERT_EQ(coil_sleep(0), 0);
	helper_go(job_cancel_timed, NULL);
	ASSERT_EQ(coil_await(coil_task_future(lt.victim), NULL), 0);
	helper_wait();
	/* One cancellation, delivered once: by the lookup or the next await. */
	if (lt.rc == -ECANCELED) {
		ASSERT_EQ(lt.later, 0);
		lt.cancels++;
	} else {
		ASSERT(lt.rc == 0 || lt.rc == -ETIMEDOUT);
		ASSERT_EQ(lt.later, -ECANCELED);
		if (lt.rc == 0)
			lt.results++;
		else
			lt.timeouts++;
	}
	coil_task_detach(lt.victim);
	lt.victim = NULL;
}

TEST(lookup_with_a_deadline_cancelled_from_another_worker)
{
	coil__dns_set_resolver(quick_resolver);
	int n = under_valgrind() ? 10 : TEST_TSAN ? 300 : 2000;
	run_rounds(timed_lookup_round, n);
	if (getenv("COIL_TEST_VERBOSE"))
		fprintf(stderr, "  %d rounds: %d results, %d timeouts, %d cancelled\n",
			n, lt.results, lt.timeouts, lt.cancels);
	coil__dns_shutdown();
	ASSERT_EQ(coil__dns_pending(), 0u);
	coil__dns_set_resolver(NULL);
}

/* ---- lookups in flight when their runtime shuts down ---- */

#define LOOKUPS 4

static atomic_bool gate_open;

/* Holds every lookup until the test opens the gate. */
static int gated_resolver(const char *host, const char *service,
			  const struct addrinfo *hints, struct addrinfo **res)
{
	while (!atomic_load(&gate_open)) {
		struct timespec ts = { 0, 20000 };
		nanosleep(&ts, NULL);
	}
	return quick_resolver(host, service, hints, res);
}

static atomic_int lookups_waiting;

static int held_lookup_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct addrinfo *res = NULL;
	atomic_fetch_add(&lookups_waiting, 1);
	int rc = coil_getaddrinfo("held.invalid", "80", NULL, &res, COIL_FOREVER);
	/* The gate may open before the shutdown cancels us. */
	ASSERT(rc == -ECANCELED || rc == 0);
	coil_freeaddrinfo(res);
	return 0;
}

static int wait_lookups_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	while (atomic_load(&lookups_waiting) < LOOKUPS || coil__dns_pending() < LOOKUPS)
		ASSERT_EQ(coil_sleep(0), 0);
	return 0;
}

/* A plain thread: opens the gate after a random spin, as the runtime's
 * shutdown cancels the lookups and closes their loops. */
static void *gate_opener(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg;
	jitter(&rng);
	atomic_store(&gate_open, true);
	return NULL;
}

static void shutdown_round(int i)
{
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	atomic_store(&gate_open, false);
	atomic_store(&lookups_waiting, 0);
	coil_cfuture_t *f[LOOKUPS];
	for (int k = 0; k < LOOKUPS; k++)
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&f[k], coil_runtime_loop(rt, k % 2),
							     held_lookup_main, NULL, NULL), 0);
	unsigned spins = 0;
	while (atomic_load(&lookups_waiting) < LOOKUPS || coil__dns_pending() < LOOKUPS)
		spin_pause(&spins);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, gate_opener, (void *)(uintptr_t)(i + 1)), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	pthread_join(th, NULL);
	for (int k = 0; k < LOOKUPS; k++)
		coil_cfuture_release(f[k]);
	/* Every job finishes, on its loop or, once that is closed, on its
	 * resolver thread, which lets go of the loop last. */
	while (coil__dns_pending())
		spin_pause(&spins);
}

TEST(lookups_in_flight_as_their_runtime_shuts_down)
{
	coil__dns_set_resolver(gated_resolver);
	int n = under_valgrind() ? 3 : TEST_TSAN ? 30 : 100;
	for (int i = 0; i < n; i++)
		shutdown_round(i);
	/* No resolver thread left behind either. */
	coil__dns_shutdown();
	ASSERT_EQ(coil__dns_pending(), 0u);
	coil__dns_set_resolver(NULL);
}

/* ---- lookups in flight when their standalone loop closes ---- */

/* A plain thread runs the loop: the lookups start, then the loop closes
 * (which cancels them) as the gate opens, so that each result comes back
 * to a loop that is open, closing or closed. */
static void loop_close_round(int i)
{
	coil_loop_t *loop = NULL;
	ASSERT_EQ(coil_new_event_loop(&loop), 0);
	atomic_store(&gate_open, false);
	atomic_store(&lookups_waiting, 0);
	coil_task_t *t[LOOKUPS];
	for (int k = 0; k < LOOKUPS; k++)
		ASSERT_EQ(coil_loop_create_task(loop, &t[k], held_lookup_main, NULL, NULL), 0);
	/* One more task that ends once every lookup waits. */
	coil_task_t *w = NULL;
	ASSERT_EQ(coil_loop_create_task(loop, &w, wait_lookups_main, NULL, NULL), 0);
	ASSERT_EQ(coil_loop_run_until_complete(loop, coil_task_future(w), NULL), 0);
	coil_task_detach(w);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, gate_opener, (void *)(uintptr_t)(i + 1)), 0);
	ASSERT_EQ(coil_loop_close(loop), 0);
	pthread_join(th, NULL);
	for (int k = 0; k < LOOKUPS; k++)
		coil_task_detach(t[k]);
	unsigned spins = 0;
	while (coil__dns_pending())
		spin_pause(&spins);
}

TEST(lookups_in_flight_as_their_loop_closes)
{
	coil__dns_set_resolver(gated_resolver);
	int n = under_valgrind() ? 3 : TEST_TSAN ? 30 : 100;
	for (int i = 0; i < n; i++)
		loop_close_round(i);
	coil__dns_shutdown();
	ASSERT_EQ(coil__dns_pending(), 0u);
	coil__dns_set_resolver(NULL);
}

/* ---- lookups submitted as the resolver pool shuts down ---- */

#define LOOKERS 6

static atomic_int lookers_done;
static int lookups_each;

/* Not pinned: the task may resume on either worker. */
static int looker_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	for (int k = 0; k < lookups_each; k++) {
		struct addrinfo *res = NULL;
		/* A lookup left in the queue with no thread to run it would
		 * end here, after seconds, instead of in microseconds. */
		ASSERT_EQ(coil_getaddrinfo("pool.invalid", "80", NULL, &res,
					   5LL * 1000000000), 0);
		coil_freeaddrinfo(res);
	}
	atomic_fetch_add(&lookers_done, 1);
	return 0;
}

TEST(lookups_submitted_as_the_resolver_pool_shuts_down)
{
	coil__dns_set_resolver(quick_resolver);
	lookups_each = under_valgrind() ? 20 : TEST_TSAN ? 300 : 1500;
	atomic_store(&lookers_done, 0);
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	coil_cfuture_t *f[LOOKERS];
	for (int k = 0; k < LOOKERS; k++)
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&f[k], coil_runtime_loop(rt, k % 2),
							     looker_main, NULL, NULL), 0);
	/* Stops and joins the pool again and again while the tasks keep
	 * handing it lookups: each must still be run, and every thread
	 * started meanwhile joined. */
	uint64_t rng = 99;
	while (atomic_load(&lookers_done) < LOOKERS) {
		coil__dns_shutdown();
		jitter(&rng);
	}
	for (int k = 0; k < LOOKERS; k++) {
		ASSERT_EQ(coil_cfuture_wait(f[k], COIL_FOREVER, NULL), 0);
		coil_cfuture_release(f[k]);
	}
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	coil__dns_shutdown();
	ASSERT_EQ(coil__dns_pending(), 0u);
	/* Resolver threads take the name of the thread that started them:
	 * the workers' are gone, and so must they be. */
	ASSERT_EQ(test_threads_named("coil-"), 0);
	coil__dns_set_resolver(NULL);
}

/* ---- a handler that closes its own server as another worker frees it ---- */

static struct {
	coil_server_t *srv;
	atomic_int closed_rc;
} hc;

/* "A handler that calls this is neither waited for nor cancelled." */
static int closing_handler(coil_stream_t *s, void *arg)
{
	(void)s;
	(void)arg;
	atomic_store(&hc.closed_rc, coil_server_close(hc.srv, 0));
	return 0;
}

/* coil_server_free refuses until the close has finished, then frees the
 * server at once or leaves it to the handler's end. */
static void job_free_server(void *arg)
{
	(void)arg;
	unsigned spins = 0;
	int rc;
	while ((rc = coil_server_free(hc.srv)) == COIL_EINVALSTATE)
		spin_pause(&spins);
	ASSERT_EQ(rc, 0);
}

static int connect_loopback(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ASSERT(fd >= 0);
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	ASSERT(rc == 0 || errno == EINPROGRESS);
	return fd;
}

/* As connect_loopback, but the listening socket may be closed already. */
static int connect_loopback_any(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ASSERT(fd >= 0);
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	(void)connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	return fd;
}

static void handler_close_round(int i, uint64_t *rng)
{
	(void)i;
	ASSERT_EQ(coil_start_server(&hc.srv, closing_handler, NULL, "127.0.0.1", 0,
				    NULL, 5LL * 1000000000), 0);
	atomic_store(&hc.closed_rc, 1);
	int fd = connect_loopback(coil_server_port(hc.srv));
	jitter(rng);
	helper_go(job_free_server, NULL);
	/* The handler runs here (worker 1 spins in the job) and may end as
	 * the helper frees the server. */
	helper_wait();
	while (atomic_load(&hc.closed_rc) == 1)
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(atomic_load(&hc.closed_rc), 0);
	close(fd);
}

TEST(handler_closes_its_server_as_another_worker_frees_it)
{
	run_rounds(handler_close_round, under_valgrind() ? 5 : TEST_TSAN ? 150 : 400);
}

/* ---- a server closed from another worker as connections arrive ---- */

#define CONNS 4

static struct {
	coil_server_t *srv;
	int64_t grace;
	int rc;
	atomic_int handled;
} ca;

/* Waits for a byte (or the end): the close meets handlers in every state,
 * on either worker (they are not pinned; worker 1 runs them while its
 * helper waits in the close). */
static int read_one_handler(coil_stream_t *s, void *arg)
{
	(void)arg;
	atomic_fetch_add(&ca.handled, 1);
	char c;
	ssize_t r = coil_stream_read(s, &c, 1, COIL_FOREVER);
	return r < 0 && r != -ECANCELED && r != COIL_ECLOSED ? (int)r : 0;
}

static void job_close_with_grace(void *arg)
{
	(void)arg;
	ca.rc = coil_server_close(ca.srv, ca.grace);
}

static void close_as_accepting_round(int i, uint64_t *rng)
{
	ASSERT_EQ(coil_start_server(&ca.srv, read_one_handler, NULL, "127.0.0.1", 0,
				    NULL, 5LL * 1000000000), 0);
	int port = coil_server_port(ca.srv);
	ca.grace = i % 3 == 0 ? 0 : i % 3 == 1 ? 100000 : COIL_FOREVER;
	int fds[CONNS];
	helper_go(job_close_with_grace, NULL);
	for (int k = 0; k < CONNS; k++) {
		fds[k] = connect_loopback_any(port);
		/* Let the acceptor, on this worker, take what came. */
		if (rnd(rng) % 2)
			ASSERT_EQ(coil_sleep(0), 0);
	}
	/* The peers end, so that handlers in their grace period return. */
	for (int k = 0; k < CONNS; k++)
		close(fds[k]);
	helper_wait();
	ASSERT(ca.rc == 0 || ca.rc == -ETIMEDOUT);
	ASSERT_EQ(coil_server_connections(ca.srv), 0u);
	ASSERT(!coil_server_is_serving(ca.srv));
	ASSERT_EQ(coil_server_free(ca.srv), 0);
}

TEST(server_closed_from_another_worker_as_connections_arrive)
{
	run_rounds(close_as_accepting_round, under_valgrind() ? 6 : TEST_TSAN ? 150 : 600);
	if (getenv("COIL_TEST_VERBOSE"))
		fprintf(stderr, "  %d handlers ran\n", atomic_load(&ca.handled));
}

/* ---- one handler closes the server as the others run ---- */

static struct {
	coil_server_t *srv;
	atomic_bool taken;
	atomic_int rc;
	int64_t grace;
} hm;

/* The first handler closes the server; the others wait for a byte that
 * never comes, so that the close cancels them, on either worker. */
static int first_closes_handler(coil_stream_t *s, void *arg)
{
	(void)arg;
	if (!atomic_exchange(&hm.taken, true)) {
		atomic_store(&hm.rc, coil_server_close(hm.srv, hm.grace));
		return 0;
	}
	char c;
	ssize_t r = coil_stream_read(s, &c, 1, COIL_FOREVER);
	return r < 0 && r != -ECANCELED && r != COIL_ECLOSED ? (int)r : 0;
}

static void job_free_server_hm(void *arg)
{
	(void)arg;
	unsigned spins = 0;
	int rc;
	while ((rc = coil_server_free(hm.srv)) == COIL_EINVALSTATE) {
		/* Let this worker run the handlers it took meanwhile. */
		ASSERT_EQ(coil_sleep(0), 0);
		spin_pause(&spins);
	}
	ASSERT_EQ(rc, 0);
}

static void handler_closes_among_others_round(int i, uint64_t *rng)
{
	ASSERT_EQ(coil_start_server(&hm.srv, first_closes_handler, NULL, "127.0.0.1", 0,
				    NULL, 5LL * 1000000000), 0);
	atomic_store(&hm.taken, false);
	atomic_store(&hm.rc, 1);
	hm.grace = i % 2 ? 0 : 50000;
	int port = coil_server_port(hm.srv);
	int fds[CONNS];
	for (int k = 0; k < CONNS; k++) {
		fds[k] = connect_loopback_any(port);
		if (rnd(rng) % 2)
			ASSERT_EQ(coil_sleep(0), 0);
	}
	helper_go(job_free_server_hm, NULL);
	helper_wait();
	/* Freed: the server is not looked at again. */
	while (atomic_load(&hm.rc) == 1)
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT(atomic_load(&hm.rc) == 0 || atomic_load(&hm.rc) == -ETIMEDOUT);
	for (int k = 0; k < CONNS; k++)
		close(fds[k]);
}

TEST(handler_closes_its_server_as_other_handlers_run)
{
	run_rounds(handler_closes_among_others_round,
		   under_valgrind() ? 5 : TEST_TSAN ? 150 : 400);
}

/* ---- an acceptor backing off from EMFILE as another worker closes ---- */

static struct {
	coil_server_t *srv;
	int rc;
	atomic_int reports;
} em;

static void count_reports(coil_loop_t *loop, const coil_exc_context_t *ctx, void *arg)
{
	(void)loop;
	(void)arg;
	ASSERT(ctx->error == -EMFILE || ctx->error == -ENFILE);
	atomic_fetch_add(&em.reports, 1);
}

static int idle_handler_for_emfile(coil_stream_t *s, void *arg)
{
	(void)s;
	(void)arg;
	return 0;
}

static void job_close_server(void *arg)
{
	(void)arg;
	em.rc = coil_server_close(em.srv, 0);
}

/* The highest descriptor open in the process. */
static int max_open_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	ASSERT(d != NULL);
	int top = -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd > top)
			top = fd;
	}
	closedir(d);
	return top;
}

/* Takes every free descriptor number below the limit, so that the next
 * accept fails with EMFILE. Returns how many it took. */
static int fill_descriptors(int *fds, int max)
{
	int n = 0;
	while (n < max) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			ASSERT_EQ(errno, EMFILE);
			break;
		}
		fds[n++] = fd;
	}
	return n;
}

static void job_nothing(void *arg)
{
	(void)arg;
}

static void emfile_round(int i, uint64_t *rng)
{
	/* Worker 1 runs its loop before the limit falls: a worker's first
	 * entry gives its loop a ring of its own, which takes a descriptor
	 * (and, refused one, leaves it a ring it cannot enter). */
	helper_go(job_nothing, NULL);
	helper_wait();
	ASSERT_EQ(coil_start_server(&em.srv, idle_handler_for_emfile, NULL, "127.0.0.1", 0,
				    NULL, 5LL * 1000000000), 0);
	int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ASSERT(client >= 0);
	struct rlimit old, low;
	ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
	int *fds;
	/* The limit just above the descriptors open now, and the holes
	 * below it taken: the server cannot accept. */
	low = old;
	low.rlim_cur = (rlim_t)max_open_fd() + 1;
	ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
	fds = malloc(low.rlim_cur * sizeof(int));
	ASSERT(fds != NULL);
	int nf = fill_descriptors(fds, (int)low.rlim_cur);
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)coil_server_port(em.srv));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int rc = connect(client, (struct sockaddr *)&sin, sizeof(sin));
	ASSERT(rc == 0 || errno == EINPROGRESS);
	/* Half the rounds let the acceptor reach its pause first. */
	if (i % 2) {
		while (!atomic_load(&em.reports))
			ASSERT_EQ(coil_sleep(0), 0);
	}
	jitter(rng);
	helper_go(job_close_server, NULL);
	helper_wait();
	ASSERT_EQ(em.rc, 0);
	for (int k = 0; k < nf; k++)
		close(fds[k]);
	free(fds);
	ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
	ASSERT_EQ(coil_server_connections(em.srv), 0u);
	ASSERT_EQ(coil_server_free(em.srv), 0);
	close(client);
}

static int emfile_main(void *arg, void **result)
{
	/* The acceptor reports its first failure here, on worker 0. */
	coil_loop_set_exception_handler(coil_get_running_loop(), count_reports, NULL);
	return race_rounds_main(arg, result);
}

TEST(acceptor_backing_off_from_emfile_as_another_worker_closes)
{
	/* Valgrind keeps descriptors of its own above any limit we could
	 * set, and refuses the setrlimit. */
	if (under_valgrind())
		TEST_SKIP("no descriptor limit under Valgrind");
	race_round = emfile_round;
	race_nrounds = TEST_TSAN ? 60 : 200;
	race_seed = 424242;
	race_drive(emfile_main, NULL);
	ASSERT_GT(atomic_load(&em.reports), 0);
}

TEST_LIST(TEST_ENTRY(lookup_with_a_deadline_cancelled_from_another_worker),
	  TEST_ENTRY(lookups_in_flight_as_their_runtime_shuts_down),
	  TEST_ENTRY(lookups_in_flight_as_their_loop_closes),
	  TEST_ENTRY(lookups_submitted_as_the_resolver_pool_shuts_down),
	  TEST_ENTRY(handler_closes_its_server_as_another_worker_frees_it),
	  TEST_ENTRY(server_closed_from_another_worker_as_connections_arrive),
	  TEST_ENTRY(handler_closes_its_server_as_other_handlers_run),
	  TEST_ENTRY(acceptor_backing_off_from_emfile_as_another_worker_closes))
