/*
 * showcase.c: runs every ported asyncio example in turn (`make run`).
 *
 * Each example is the executable of the same name beside this one (found
 * through /proc/self/exe). The showcase runs it in a child process, shows
 * what it prints, and checks that against what the Python original prints
 * in the asyncio tutorial the examples come from. Examples that sleep get
 * `--fast` (the virtual clock) where waiting would only make the showcase
 * slow; ticker runs for real (it ticks every 0.1 s). The I/O examples
 * that have no asyncio original (http_server, file_copy, loadgen) run
 * their self-tests, which print only what does not depend on timing. An
 * example that fails, prints something else, or runs past its time limit
 * makes the showcase exit with status 1.
 *
 * The showcase itself uses no coil: it is a plain process runner.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIME_LIMIT_MS 10000 /* per example: a hang is a failure */

/* What every factorial variant prints (current Python's order). */
#define FACTORIAL_LINES \
	"Task A: Compute factorial(2)...\n" \
	"Task B: Compute factorial(2)...\n" \
	"Task C: Compute factorial(2)...\n" \
	"Task A: factorial(2) = 2\n" \
	"Task B: Compute factorial(3)...\n" \
	"Task C: Compute factorial(3)...\n" \
	"Task B: factorial(3) = 6\n" \
	"Task C: Compute factorial(4)...\n" \
	"Task C: factorial(4) = 24\n"

static bool date_lines(const char *out);
static bool background_loop_lines(const char *out);
static bool threadsafe_coroutines_lines(const char *out);
static bool parallel_fib_lines(const char *out);
static bool fib_trace_lines(const char *out);
static bool cpu_fanout_lines(const char *out);
static bool executor_factorial_lines(const char *out);
static bool process_pool_hash_lines(const char *out);

struct example {
	const char *name;   /* executable */
	const char *what;   /* the header line */
	const char *flag;   /* extra argument, or NULL */
	const char *expect; /* the exact output expected, or NULL ... */
	bool (*check)(const char *out); /* ... and a checker instead */
};

static const struct example examples[] = {
	{ "ticker",
	  "async iterator Ticker(0.1, 5) and an async comprehension over it "
	  "(async for in the seed)",
	  NULL, "0\n1\n2\n3\n4\n[1, 3]\n", NULL },
	{ "averager",
	  "running average fed by asend into a generator coroutine "
	  "(push style in the seed)",
	  NULL,
	  "0.0\n0.5\n1.0\n1.5\n2.0\n2.5\n3.0\n3.5\n4.0\n4.5\n5.0\n", NULL },
	{ "call_soon",
	  "four call_soon callbacks, each calling stop: all four run "
	  "(loop.call_soon in the seed)",
	  NULL, "Hello World\nHello World\nHello World\nHello World\n", NULL },
	{ "display_date",
	  "a task printing the date each second for 5 s, on the virtual clock "
	  "(run_until_complete in the seed)",
	  "--fast", NULL, date_lines },
	{ "factorial",
	  "three tasks computing factorials concurrently, on the virtual clock "
	  "(asyncio.gather in the seed)",
	  "--fast",
	  FACTORIAL_LINES,
	  NULL },
	{ "factorial_gather",
	  "the factorial tasks under coil_gather, on the virtual clock "
	  "(asyncio.gather in the seed)",
	  "--fast", FACTORIAL_LINES, NULL },
	{ "factorial_wait",
	  "the factorial tasks under coil_wait (asyncio.wait in the seed)",
	  "--fast", FACTORIAL_LINES, NULL },
	{ "factorial_as_completed",
	  "the factorial tasks through coil_as_completed "
	  "(asyncio.as_completed in the seed)",
	  "--fast", FACTORIAL_LINES, NULL },
	{ "producer_consumer",
	  "a producer and a consumer over a coil_queue, on the virtual clock "
	  "(the producer/consumer example of the seed)",
	  "--fast",
	  "producing 1/10\n"
	  "producing 2/10\n"
	  "consuming item 1...\n"
	  "producing 3/10\n"
	  "consuming item 2...\n"
	  "producing 4/10\n"
	  "consuming item 3...\n"
	  "producing 5/10\n"
	  "producing 6/10\n"
	  "consuming item 4...\n"
	  "producing 7/10\n"
	  "consuming item 5...\n"
	  "producing 8/10\n"
	  "consuming item 6...\n"
	  "consuming item 7...\n"
	  "producing 9/10\n"
	  "consuming item 8...\n"
	  "producing 10/10\n"
	  "consuming item 9...\n"
	  "consuming item 10...\n",
	  NULL },
	{ "taxi_sim",
	  "taxi fleet discrete-event simulation: 3 taxi coroutines resumed "
	  "with asend, events in a priority queue (the seed's taxi example)",
	  NULL,
	  "taxi: 0  Event(time=0, proc=0, action='leave garage')\n"
	  "taxi: 0  Event(time=1, proc=0, action='pick up passenger')\n"
	  "taxi: 1   Event(time=5, proc=1, action='leave garage')\n"
	  "taxi: 1   Event(time=10, proc=1, action='pick up passenger')\n"
	  "taxi: 2    Event(time=10, proc=2, action='leave garage')\n"
	  "taxi: 1   Event(time=12, proc=1, action='drop off passenger')\n"
	  "taxi: 2    Event(time=12, proc=2, action='pick up passenger')\n"
	  "taxi: 2    Event(time=15, proc=2, action='drop off passenger')\n"
	  "taxi: 1   Event(time=18, proc=1, action='pick up passenger')\n"
	  "taxi: 0  Event(time=26, proc=0, action='drop off passenger')\n"
	  "taxi: 2    Event(time=26, proc=2, action='pick up passenger')\n"
	  "taxi: 1   Event(time=32, proc=1, action='drop off passenger')\n"
	  "taxi: 0  Event(time=37, proc=0, action='pick up passenger')\n"
	  "taxi: 1   Event(time=39, proc=1, action='pick up passenger')\n"
	  "taxi: 1   Event(time=48, proc=1, action='drop off passenger')\n"
	  "taxi: 2    Event(time=50, proc=2, action='drop off passenger')\n"
	  "taxi: 0  Event(time=51, proc=0, action='drop off passenger')\n"
	  "taxi: 0  Event(time=53, proc=0, action='going home')\n"
	  "taxi: 1   Event(time=55, proc=1, action='pick up passenger')\n"
	  "taxi: 1   Event(time=59, proc=1, action='drop off passenger')\n"
	  "taxi: 2    Event(time=59, proc=2, action='pick up passenger')\n"
	  "taxi: 1   Event(time=64, proc=1, action='going home')\n"
	  "taxi: 2    Event(time=94, proc=2, action='drop off passenger')\n"
	  "taxi: 2    Event(time=100, proc=2, action='pick up passenger')\n"
	  "taxi: 2    Event(time=105, proc=2, action='drop off passenger')\n"
	  "taxi: 2    Event(time=110, proc=2, action='pick up passenger')\n"
	  "taxi: 2    Event(time=155, proc=2, action='drop off passenger')\n"
	  "taxi: 2    Event(time=157, proc=2, action='pick up passenger')\n"
	  "taxi: 2    Event(time=160, proc=2, action='drop off passenger')\n"
	  "taxi: 2    Event(time=166, proc=2, action='going home')\n"
	  "*** end of events ***\n",
	  NULL },
	{ "background_loop",
	  "a loop run_forever in its own thread, fed with call_soon_threadsafe "
	  "(call_soon_threadsafe in the seed)",
	  NULL, NULL, background_loop_lines },
	{ "threadsafe_coroutines",
	  "coroutines handed to a background loop with run_coroutine_threadsafe, "
	  "waited on through concurrent futures (run_coroutine_threadsafe in the seed)",
	  NULL, NULL, threadsafe_coroutines_lines },
	{ "async_comprehension",
	  "[i async for i in ticker if i % 2] with the iterator tools "
	  "(filter + collect over an async generator)",
	  "--fast", "[1, 3]\n", NULL },
	{ "ticker_context",
	  "an async context manager around a ticker (async with in the seed)",
	  "--fast", "entering context\n0\n1\n2\n3\n4\nexit context\n", NULL },
	{ "delegation",
	  "a generator re-yielding another one's values (yield from)",
	  "--fast", "0\n1\n2\n3\n4\n", NULL },
	{ "parallel_fib",
	  "fib(30) spawning a task per call, on one worker and on all of a "
	  "runtime's workers (work stealing)",
	  NULL, NULL, parallel_fib_lines },
	{ "fib_trace",
	  "a Perfetto trace of the parallel fib: one track per worker, each "
	  "task step a span, the steals marked; then each worker's counters",
	  "16", NULL, fib_trace_lines },
	{ "cpu_fanout",
	  "CPU-bound tasks fanned out over a runtime's workers: CPU time against "
	  "wall time shows the cores busy",
	  NULL, NULL, cpu_fanout_lines },
	{ "executor_factorial",
	  "the factorial tasks sleeping in the default executor's threads, for "
	  "real: the time of the longest chain, not of all sleeps "
	  "(run_in_executor in the seed)",
	  NULL, NULL, executor_factorial_lines },
	{ "process_pool_hash",
	  "a CPU-heavy hash split over a process pool running this binary "
	  "again as workers (ProcessPoolExecutor in the seed)",
	  NULL, NULL, process_pool_hash_lines },
	{ "echo_server",
	  "an echo server and a client on streams over TCP, closed gracefully "
	  "(asyncio.start_server / open_connection)",
	  NULL,
	  "echo server on 127.0.0.1, a port the kernel chose\n"
	  "client sent: Hello World!\n"
	  "client got:  Hello World!\n"
	  "client sent: coil speaks asyncio\n"
	  "client got:  coil speaks asyncio\n"
	  "client sent: bye\n"
	  "client got:  bye\n"
	  "server closed (every handler done): 3 lines echoed\n", NULL },
	{ "echo_client",
	  "the same over a Unix socket, with a half-close (open_unix_connection)",
	  NULL,
	  "echo server on a Unix socket\n"
	  "Received: Hello World!\n"
	  "Received: half-closed after this one\n"
	  "done: every line came back\n", NULL },
	{ "subprocess_cat",
	  "child processes with pipes as streams: echo, cat, sort through "
	  "communicate, a pipeline, exit codes (create_subprocess_exec)",
	  NULL,
	  "echo said: hello from a child process\n"
	  "cat echoed: one\n"
	  "cat echoed: two\n"
	  "cat echoed: three\n"
	  "cat exited with status 0\n"
	  "sort gave: apple banana cherry (status 0)\n"
	  "echo | tr gave: SHOUTED THROUGH A PIPELINE\n"
	  "sh -c 'exit 3' exited with status 3\n"
	  "cat killed: status -9\n", NULL },
	{ "signal_shutdown",
	  "a server that shuts down gracefully on SIGTERM, handled as a loop "
	  "callback (loop.add_signal_handler)",
	  NULL,
	  "serving on 127.0.0.1\n"
	  "client got: hello\n"
	  "client got: graceful\n"
	  "client got: world\n"
	  "received SIGTERM: shutting down\n"
	  "server closed: connections still open after the grace period were cancelled\n"
	  "client: the server closed the connection\n", NULL },
	{ "http_server",
	  "an HTTP/1.1 hello-world server on streams: keep-alive, pipelined "
	  "requests answered in order, Connection: close, 400 and 431",
	  "--self-test",
	  "GET / -> 200 Hello, World!\n"
	  "3 pipelined requests (GET, POST with a body, HEAD) -> 3 responses in order\n"
	  "Connection: close -> server closed the connection\n"
	  "HTTP/1.0 without keep-alive -> 200, then the server closed the connection\n"
	  "malformed request -> 400, then the server closed the connection\n"
	  "header section over 8192 bytes -> 431, then the server closed the connection\n"
	  "server closed gracefully: 6 requests answered, 2 refused\n", NULL },
	{ "file_copy",
	  "a file copied with 8 chunk reads and writes in flight (coil_read and "
	  "coil_write at offsets, statx, fsync), then compared",
	  NULL,
	  "copied 4206649 bytes in 33 chunks, 8 in flight\n"
	  "copy is identical\n", NULL },
	{ "loadgen",
	  "a load generator: 4 connections against an in-process echo server for "
	  "0.3 s, replies checked, latency percentiles from per-task histograms",
	  "--self-test",
	  "echo, pipeline 1: 4 connections, every reply matched\n"
	  "echo, pipeline 4: 4 connections, every reply matched\n"
	  "percentiles: p50 <= p90 <= p99 <= p99.9 <= max\n", NULL },
};

/* "TIME: <seconds>\n" first (the number varies), then exactly `rest`. */
static bool time_then(const char *out, const char *rest)
{
	double t;
	int n = -1;
	if (sscanf(out, "TIME: %lf%n", &t, &n) != 1 || n < 0 || out[n] != '\n')
		return false;
	return strcmp(out + n + 1, rest) == 0;
}

static bool background_loop_lines(const char *out)
{
	return time_then(out, "More work 6\nFinished more work 6\n"
			      "More work 3\nFinished more work 3\n");
}

static bool threadsafe_coroutines_lines(const char *out)
{
	return time_then(out, "Waiting 6\nWaiting 4\nDone after 4s\nDone after 6s\n");
}

/* The result, then the two timings (they vary). */
static bool parallel_fib_lines(const char *out)
{
	const char *first = "fib(30) = 832040\n";
	if (strncmp(out, first, strlen(first)) != 0)
		return false;
	out += strlen(first);
	double t1, tn, x;
	unsigned w;
	int n = -1;
	if (sscanf(out, "1 worker: %lf s\n%n", &t1, &n) != 1 || n < 0)
		return false;
	out += n;
	n = -1;
	if (sscanf(out, "%u workers: %lf s (%lfx)\n%n", &w, &tn, &x, &n) != 3 || n < 0)
		return false;
	return out[n] == '\0' && t1 > 0 && tn > 0 && w >= 1;
}

/* The result, each worker's counters and where the trace went (the counts
 * vary); a build without metrics says so instead. */
static bool fib_trace_lines(const char *out)
{
	if (strncmp(out, "fib(16) = 987", strlen("fib(16) = 987")) != 0)
		return strstr(out, "COIL_METRICS=OFF") != NULL &&
		       strstr(out, "\nfib(16) = 987") != NULL;
	return strstr(out, "\nworker 0: steps=") != NULL &&
	       strstr(out, "\ntrace: ") != NULL;
}

/* A header, one line per task (each ran), then CPU against wall time. */
static bool cpu_fanout_lines(const char *out)
{
	unsigned w;
	int tasks, n = -1;
	if (sscanf(out, "%u worker%*[s], %d tasks of 200 ms each\n%n", &w, &tasks, &n) != 2 &&
	    sscanf(out, "%u worker, %d tasks of 200 ms each\n%n", &w, &tasks, &n) != 2)
		return false;
	if (n < 0 || tasks < 1)
		return false;
	out += n;
	for (int i = 0; i < tasks; i++) {
		int id = -1;
		if (sscanf(out, "task %d: hash", &id) != 1 || id != i)
			return false;
		const char *nl = strchr(out, '\n');
		if (!nl)
			return false;
		out = nl + 1;
	}
	return strncmp(out, "wall ", 5) == 0 && strstr(out, "CPU/wall = ") != NULL;
}

/* The seed's lines, then the time: C's three sleeps (3.3 s), well below
 * the nine sleeps' sum (9.45 s) even on a busy machine. */
static bool executor_factorial_lines(const char *out)
{
	size_t n = strlen(FACTORIAL_LINES);
	int secs, end = -1;
	if (strncmp(out, FACTORIAL_LINES, n) != 0)
		return false;
	out += n;
	if (sscanf(out, "elapsed: %d s for 9 sleeps of 1 s\n%n", &secs, &end) != 1 ||
	    end < 0 || out[end] != '\0')
		return false;
	return secs >= 3 && secs <= 4;
}

/* Eight chunk hashes, their agreement, and a speedup that is a number (it
 * depends on the machine and its load). */
static bool process_pool_hash_lines(const char *out)
{
	for (int i = 0; i < 8; i++) {
		int k = -1, n = -1;
		char hex[17];
		if (sscanf(out, "chunk %d: %16[0-9a-f]\n%n", &k, hex, &n) != 2 || k != i ||
		    n < 0 || strlen(hex) != 16)
			return false;
		out += n;
	}
	const char *agree = "hashes agree\n";
	if (strncmp(out, agree, strlen(agree)) != 0)
		return false;
	out += strlen(agree);
	double seq, pool, speedup;
	unsigned w;
	int n = -1;
	if (sscanf(out, "sequential %lf s, %u worker process%*[es] %lf s: speedup %lf\n%n",
		   &seq, &w, &pool, &speedup, &n) != 4 &&
	    sscanf(out, "sequential %lf s, %u worker process %lf s: speedup %lf\n%n",
		   &seq, &w, &pool, &speedup, &n) != 4)
		return false;
	return n > 0 && out[n] == '\0' && w >= 1 && seq > 0 && pool > 0 && speedup > 0;
}

/* Five lines shaped like Python's str(datetime.now()). */
static bool date_lines(const char *out)
{
	static const char shape[] = "dddd-dd-dd dd:dd:dd.dddddd\n";
	int lines = 0;

	while (*out) {
		for (const char *s = shape; *s; s++, out++) {
			if (*s == 'd' ? (*out < '0' || *out > '9') : *out != *s)
				return false;
		}
		lines++;
	}
	return lines == 5;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Appends what fd has to *buf until EOF or the deadline. Returns false on
 * timeout. */
static bool read_all(int fd, char **buf, size_t *len, long deadline)
{
	size_t cap = 4096;

	*buf = malloc(cap);
	*len = 0;
	if (!*buf)
		return false;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long left = deadline - now_ms();

		if (left <= 0)
			return false;
		int n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		if (cap - *len < 1024) {
			char *nb = realloc(*buf, cap * 2);
			if (!nb)
				return false;
			*buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, *buf + *len, cap - *len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		*len += (size_t)r;
	}
	(*buf)[*len] = '\0';
	return true;
}

/* Runs one example; returns true if it passed. */
static bool run_example(const char *dir, const struct example *ex)
{
	char path[PATH_MAX + 64];
	char *out = NULL;
	size_t len = 0;
	int fds[2], status;
	bool in_time, ok;
	pid_t pid;

	printf("== %s: %s ==\n", ex->name, ex->what);
	fflush(stdout);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, ex->name) >=
	    sizeof(path)) {
		printf("!! %s: path too long\n", ex->name);
		return false;
	}

	if (pipe(fds) < 0) {
		perror("showcase: pipe");
		return false;
	}
	pid = fork();
	if (pid < 0) {
		perror("showcase: fork");
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0) {
		char *argv[] = { (char *)ex->name, (char *)ex->flag, NULL };

		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execv(path, argv);
		fprintf(stderr, "showcase: cannot run %s: %s\n", path,
			strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	in_time = read_all(fds[0], &out, &len, now_ms() + TIME_LIMIT_MS);
	close(fds[0]);
	if (!in_time)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;

	if (out) {
		fwrite(out, 1, len, stdout);
		if (len && out[len - 1] != '\n')
			putchar('\n');
	}
	ok = in_time && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!in_time)
		printf("!! %s: still running after %d ms: killed\n", ex->name,
		       TIME_LIMIT_MS);
	else if (WIFSIGNALED(status))
		printf("!! %s: killed by signal %d (%s)\n", ex->name,
		       WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (!ok)
		printf("!! %s: exited with status %d\n", ex->name,
		       WEXITSTATUS(status));
	else if (ex->expect && (!out || strcmp(out, ex->expect) != 0)) {
		printf("!! %s: the output differs from the seed's; expected:\n%s",
		       ex->name, ex->expect);
		ok = false;
	} else if (ex->check && (!out || !ex->check(out))) {
		printf("!! %s: the output is not what the seed prints\n",
		       ex->name);
		ok = false;
	}
	free(out);
	fflush(stdout);
	return ok;
}

int main(void)
{
	char dir[PATH_MAX];
	size_t n = sizeof(examples) / sizeof(examples[0]);
	size_t failed = 0;
	ssize_t len;

	len = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	if (len < 0) {
		perror("showcase: readlink /proc/self/exe");
		return 1;
	}
	dir[len] = '\0';
	*strrchr(dir, '/') = '\0';

	for (size_t i = 0; i < n; i++) {
		if (!run_example(dir, &examples[i]))
			failed++;
		printf("\n");
	}
	if (failed) {
		printf("showcase: %zu of %zu examples FAILED\n", failed, n);
		return 1;
	}
	printf("showcase: all %zu examples passed\n", n);
	return 0;
}
