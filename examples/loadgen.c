/*
 * examples/loadgen.c: a load generator for echo and HTTP servers, on coil.
 *
 *     loadgen --mode echo|http --port P [--host H] [--connections C]
 *             [--duration S] [--warmup S] [--size BYTES] [--pipeline D]
 *             [--workers N]
 *     loadgen --self-test
 *
 * Opens C connections (default 64) to H:P (default 127.0.0.1) and keeps
 * each one busy for S seconds (default 5) after a warm-up of W seconds
 * (default 0): every connection has at most D requests outstanding
 * (default 1) and sends the next one as soon as a response comes back.
 *
 *   echo  a request is a message of --size bytes (default 64), different
 *         for every request; the response is the same bytes back, checked
 *         byte for byte. A message ends with its only newline, so that
 *         line-based echo servers (examples/echo_server) serve it too.
 *   http  a request is "GET / HTTP/1.1" with keep-alive; a response is a
 *         header section and a body of Content-Length bytes (a response
 *         without Content-Length, or one that closes the connection, ends
 *         that connection with an error).
 *
 * Then it prints, in the "@ metric value unit" lines benchmark harnesses
 * read, the requests answered during the measured S seconds, their rate
 * and the percentiles of their latencies (from sending a request to
 * reading the whole of its response):
 *
 *     @ requests 1234567 count
 *     @ req_per_s 246913.4 req/s
 *     @ latency_p50_us 81.2 us
 *     @ latency_p90_us ... us    (then p99, p99.9 and max)
 *     @ errors 0 count
 *
 * and exits with status 1 when a connection failed, a reply did not match
 * or an HTTP status was not 2xx.
 *
 * How. Each connection is two tasks on one stream: a writer that sends
 * requests while the window of D allows (a semaphore of D permits), writing
 * all those it may send before one drain, and a reader that reads the
 * responses in order, records each latency and gives a permit back. Each
 * reader records into a histogram of its own, so recording takes no lock;
 * the histograms are added up at the end.
 *
 * --self-test (the showcase) starts an echo server in the same process,
 * runs 4 connections for 0.3 s against it, once with one request
 * outstanding and once with 4, and checks the results rather than
 * printing numbers that vary:
 *
 *     echo, pipeline 1: 4 connections, every reply matched
 *     echo, pipeline 4: 4 connections, every reply matched
 *     percentiles: p50 <= p90 <= p99 <= p99.9 <= max
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <coil/coil.h>

#define SEC COIL_NSEC_PER_SEC

/* How long to keep trying to connect while the server starts. */
#define CONNECT_WAIT (10 * SEC)
/* How long a response may take before the connection counts as failed. */
#define IO_TIMEOUT (10 * SEC)
/* The longest HTTP response header section read. */
#define HEAD_LIMIT 16384

/* --- latency histogram ----------------------------------------------------- */

/*
 * Latencies in nanoseconds, in buckets whose width is 1/64 of their
 * magnitude (so a percentile is within 1.6% of the true value): values
 * below 128 each have a bucket, and from there every power of two is cut
 * into 64 buckets. Values up to 2^40 ns (18 minutes) are kept apart; any
 * longer one goes to the last bucket (the exact maximum is kept aside).
 */
#define HIST_SUB 64
#define HIST_MAX_SHIFT 34 /* 2^(34 + 6) ns */
#define HIST_BUCKETS ((HIST_MAX_SHIFT + 2) * HIST_SUB)

typedef struct hist {
	uint64_t count[HIST_BUCKETS];
	uint64_t n, max;
} hist_t;

static unsigned bucket_of(uint64_t v)
{
	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - 6; /* v >> shift: 64..127 */
	if (shift > HIST_MAX_SHIFT)
		return HIST_BUCKETS - 1;
	return (shift + 1) * HIST_SUB + (unsigned)(v >> shift) - HIST_SUB;
}

/* The middle of bucket b, the value reported for it. */
static double bucket_value(unsigned b)
{
	if (b < 2 * HIST_SUB)
		return b;
	unsigned shift = b / HIST_SUB - 1;
	uint64_t low = (uint64_t)(b % HIST_SUB + HIST_SUB) << shift;
	return (double)low + (double)((uint64_t)1 << shift) / 2;
}

static void hist_record(hist_t *h, uint64_t v)
{
	h->count[bucket_of(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

static void hist_add(hist_t *into, const hist_t *h)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->count[i] += h->count[i];
	into->n += h->n;
	if (h->max > into->max)
		into->max = h->max;
}

/* The value below which a fraction q of the recorded values lie, never
 * above the maximum seen. */
static double hist_quantile(const hist_t *h, double q)
{
	if (h->n == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->n);
	if (rank >= h->n)
		rank = h->n - 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen > rank) {
			double v = bucket_value(i);
			return v < (double)h->max ? v : (double)h->max;
		}
	}
	return (double)h->max;
}

/* --- the run ----------------------------------------------------------------- */

enum mode { MODE_ECHO, MODE_HTTP };

typedef struct config {
	enum mode mode;
	const char *host;
	int port;
	unsigned connections;
	double duration, warmup;
	size_t size;
	unsigned pipeline;
	unsigned workers;
} config_t;

/* What every connection shares. The times are written by the main task
 * before it sets `go`, and read by the connections after. */
typedef struct run {
	const config_t *cfg;
	coil_barrier_t *connected;  /* every connection opened (or failed) */
	coil_event_t *go;
	int64_t count_from;         /* the measured window: [count_from, end) */
	int64_t end;
	char *http_request;         /* http mode: the request, the same each time */
	size_t http_request_len;
} run_t;

/* One connection. The reader task alone writes hist, requests, non_2xx and
 * reader_error; the writer alone writes sent and writer_error. */
typedef struct conn {
	run_t *run;
	unsigned id;
	coil_stream_t *s;
	coil_semaphore_t *window;   /* permits: requests that may be sent */
	_Atomic int64_t *sent_at;   /* send time of request i, in slot i % D */
	atomic_bool stop;           /* the reader failed: the writer stops */
	uint64_t sent;
	uint64_t requests;          /* responses in the measured window */
	uint64_t non_2xx;
	int reader_error, writer_error;
	hist_t hist;
} conn_t;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/*
 * Echo message number `seq` of connection `id`: bytes that differ from one
 * message to the next, never a newline but the last byte. A reply is
 * checked against a message made again from the same numbers, so the
 * reader needs no copy of what the writer sent.
 */
static void make_message(char *buf, size_t size, unsigned id, uint64_t seq)
{
	uint64_t x = ((uint64_t)id << 40) ^ seq ^ 0x9E3779B97F4A7C15ULL;
	for (size_t i = 0; i + 1 < size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (char)('!' + x % 94); /* printable, no newline */
	}
	buf[size - 1] = '\n';
}

/* --- the writer ---------------------------------------------------------------- */

/* Queues request number c->sent into the stream's write buffer. */
static int queue_request(conn_t *c, char *msg)
{
	const config_t *cfg = c->run->cfg;
	atomic_store_explicit(&c->sent_at[c->sent % cfg->pipeline], now_ns(),
			      memory_order_relaxed);
	int rc;
	if (cfg->mode == MODE_ECHO) {
		make_message(msg, cfg->size, c->id, c->sent);
		rc = coil_stream_write(c->s, msg, cfg->size);
	} else {
		rc = coil_stream_write(c->s, c->run->http_request, c->run->http_request_len);
	}
	if (rc == -ENOBUFS) {
		/* More than the high-water mark is buffered (big messages, a
		 * deep pipeline): send it, then queue. */
		if ((rc = coil_stream_drain(c->s, IO_TIMEOUT)) == 0)
			rc = queue_request(c, msg);
		return rc;
	}
	if (rc == 0)
		c->sent++;
	return rc;
}

/* Sends requests until the end of the run: each needs a permit, and all
 * those with a permit at hand go out in one drain. */
static int write_requests(conn_t *c)
{
	const config_t *cfg = c->run->cfg;
	char *msg = cfg->mode == MODE_ECHO ? malloc(cfg->size) : NULL;
	if (cfg->mode == MODE_ECHO && !msg)
		return -ENOMEM;
	int rc = 0;
	while (rc == 0 && now_ns() < c->run->end) {
		if ((rc = coil_semaphore_acquire(c->window)))
			break;
		if (atomic_load(&c->stop))
			break;
		rc = queue_request(c, msg);
		while (rc == 0 && coil_semaphore_acquire_nowait(c->window) == 0)
			rc = queue_request(c, msg);
		if (rc == 0)
			rc = coil_stream_drain(c->s, IO_TIMEOUT);
	}
	free(msg);
	if (rc)
		return rc;
	/* Wait for the responses still outstanding: all D permits back. */
	for (unsigned held = 0; held < cfg->pipeline && !atomic_load(&c->stop); held++)
		if ((rc = coil_semaphore_acquire(c->window)))
			return rc;
	return 0;
}

/* --- the reader ------------------------------------------------------------------- */

/* Reads one echo reply and checks it. */
static int read_echo(conn_t *c, uint64_t seq, char *expect, char *got)
{
	size_t size = c->run->cfg->size;
	ssize_t n = coil_stream_readexactly(c->s, got, size, IO_TIMEOUT);
	if (n < 0)
		return (int)n;
	make_message(expect, size, c->id, seq);
	return memcmp(expect, got, size) == 0 ? 0 : -EBADMSG;
}

/* Reads one HTTP response: its header section, then its body (skipped). */
static int read_http(conn_t *c, char *head)
{
	ssize_t n = coil_stream_readuntil(c->s, "\r\n\r\n", 4, head, HEAD_LIMIT + 4,
					  IO_TIMEOUT);
	if (n < 0)
		return (int)n;
	head[n] = '\0';
	int status;
	if (n < 12 || strncmp(head, "HTTP/1.", 7) != 0 ||
	    sscanf(head + 9, "%3d", &status) != 1)
		return -EPROTO;
	if (status < 200 || status > 299)
		c->non_2xx++;
	uint64_t len = 0;
	bool have_length = false, closes = false;
	for (char *line = strstr(head, "\r\n") + 2; *line && line[0] != '\r';) {
		char *eol = strstr(line, "\r\n");
		*eol = '\0';
		if (strncasecmp(line, "Content-Length:", 15) == 0) {
			char *end;
			errno = 0;
			const char *v = line + 15 + strspn(line + 15, " \t");
			len = strtoull(v, &end, 10);
			have_length = errno == 0 && end != v && *v != '-';
		} else if (strncasecmp(line, "Connection:", 11) == 0 &&
			   strstr(line + 11, "close")) {
			closes = true;
		}
		line = eol + 2;
	}
	if (!have_length)
		return -EPROTO; /* chunked bodies are not read */
	char scratch[4096];
	while (len > 0) {
		size_t want = len < sizeof(scratch) ? (size_t)len : sizeof(scratch);
		ssize_t got = coil_stream_read(c->s, scratch, want, IO_TIMEOUT);
		if (got == 0)
			return COIL_EINCOMPLETE;
		if (got < 0)
			return (int)got;
		len -= (uint64_t)got;
	}
	/* The response counts, but no other will come on this connection. */
	return closes ? COIL_ECLOSED : 0;
}

/* The reader task: responses in order until the writer cancels it (all
 * answered) or something fails. */
static int reader(void *arg, void **result)
{
	(void)result;
	conn_t *c = arg;
	const config_t *cfg = c->run->cfg;
	char *a = malloc(cfg->mode == MODE_ECHO ? cfg->size : HEAD_LIMIT + 5);
	char *b = cfg->mode == MODE_ECHO ? malloc(cfg->size) : NULL;
	int rc = a && (b || cfg->mode != MODE_ECHO) ? 0 : -ENOMEM;
	for (uint64_t seq = 0; rc == 0; seq++) {
		int r = cfg->mode == MODE_ECHO ? read_echo(c, seq, a, b) : read_http(c, a);
		if (r && r != COIL_ECLOSED) {
			rc = r;
			break;
		}
		int64_t t = now_ns();
		int64_t sent = atomic_load_explicit(&c->sent_at[seq % cfg->pipeline],
						    memory_order_relaxed);
		if (sent >= c->run->count_from && t < c->run->end) {
			hist_record(&c->hist, (uint64_t)(t - sent));
			c->requests++;
		}
		rc = r; /* COIL_ECLOSED: the server closes the connection */
		if (rc == 0)
			rc = coil_semaphore_release(c->window);
	}
	free(a);
	free(b);
	/* Cancelled by the writer once every response came: no error. */
	if (rc != -ECANCELED) {
		c->reader_error = rc;
		/* Unblock the writer if it waits for a permit. */
		atomic_store(&c->stop, true);
		coil_semaphore_release(c->window);
	}
	return 0;
}

/* --- a connection ------------------------------------------------------------------- */

static int open_connection(conn_t *c)
{
	const config_t *cfg = c->run->cfg;
	int64_t give_up = now_ns() + CONNECT_WAIT;
	for (;;) {
		int rc = coil_open_connection(&c->s, cfg->host, cfg->port, NULL, CONNECT_WAIT);
		if (rc)
			c->s = NULL;
		/* A server that is still starting refuses: try again a little
		 * later. */
		if (rc != -ECONNREFUSED || now_ns() >= give_up)
			return rc;
		if ((rc = coil_sleep(0.05)))
			return rc;
	}
}

/* The connection's task: connect, wait for the start, run the reader and
 * write requests until the end. */
static int connection(void *arg, void **result)
{
	(void)result;
	conn_t *c = arg;
	run_t *run = c->run;
	int rc = open_connection(c);
	/* Every connection arrives at the barrier, opened or not, so that the
	 * main task knows when all are ready. */
	int brc = coil_barrier_wait(run->connected);
	if (rc == 0 && brc < 0)
		rc = brc;
	if (rc == 0)
		rc = coil_event_wait(run->go);
	coil_task_t *rd = NULL;
	if (rc == 0)
		rc = coil_spawn(&rd, reader, c, NULL);
	if (rc == 0)
		rc = write_requests(c);
	c->writer_error = rc;
	if (rd) {
		/* Every response has come (or the reader has ended): the reader
		 * is waiting for one that will not; stop it. */
		coil_task_cancel(rd, NULL);
		(void)coil_await(coil_task_future(rd), NULL);
		coil_task_detach(rd);
	}
	if (c->s) {
		coil_stream_close(c->s);
		(void)coil_stream_wait_closed(c->s, SEC);
		coil_stream_free(c->s);
		c->s = NULL;
	}
	return 0;
}

/* The totals of a run. */
typedef struct totals {
	uint64_t requests, non_2xx;
	unsigned failed;            /* connections that ended with an error */
	hist_t hist;
} totals_t;

static int conn_init(conn_t *c, run_t *run, unsigned id)
{
	unsigned d = run->cfg->pipeline;
	*c = (conn_t){ .run = run, .id = id };
	c->sent_at = calloc(d, sizeof(*c->sent_at));
	if (!c->sent_at)
		return -ENOMEM;
	int rc = coil_semaphore_create(&c->window, (int)d);
	if (rc) {
		free(c->sent_at);
		return rc;
	}
	return 0;
}

static void conn_fini(conn_t *c)
{
	coil_semaphore_destroy(c->window);
	free(c->sent_at);
}

/*
 * Runs the load: every connection opened first, then the clock starts.
 * Fills *t. Returns 0 or an error of the run itself (connections that
 * fail are counted in t->failed).
 */
static int run_load(const config_t *cfg, totals_t *t)
{
	run_t run = { .cfg = cfg };
	conn_t *conns = calloc(cfg->connections, sizeof(*conns));
	coil_task_t **tasks = calloc(cfg->connections, sizeof(*tasks));
	int rc = conns && tasks ? 0 : -ENOMEM;
	if (rc == 0 && cfg->mode == MODE_HTTP) {
		/* An IPv6 address goes in brackets (RFC 3986). */
		bool v6 = strchr(cfg->host, ':') != NULL;
		int n = asprintf(&run.http_request, "GET / HTTP/1.1\r\nHost: %s%s%s:%d\r\n\r\n",
				 v6 ? "[" : "", cfg->host, v6 ? "]" : "", cfg->port);
		if (n < 0) {
			run.http_request = NULL;
			rc = -ENOMEM;
		} else {
			run.http_request_len = (size_t)n;
		}
	}
	if (rc == 0 && cfg->connections >= INT_MAX)
		rc = -EINVAL;
	if (rc == 0)
		rc = coil_barrier_create(&run.connected, (int)cfg->connections + 1);
	if (rc == 0 && (rc = coil_event_create(&run.go)))
		coil_barrier_destroy(run.connected);
	unsigned ready = 0, started = 0;
	for (; rc == 0 && ready < cfg->connections; ready++)
		rc = conn_init(&conns[ready], &run, ready);
	for (; rc == 0 && started < cfg->connections; started++)
		rc = coil_spawn(&tasks[started], connection, &conns[started], NULL);
	if (rc == 0 && (rc = coil_barrier_wait(run.connected)) >= 0) {
		rc = 0;
		/* Every connection is open: the clock starts now. */
		run.count_from = now_ns() + (int64_t)(cfg->warmup * SEC);
		run.end = run.count_from + (int64_t)(cfg->duration * SEC);
		coil_event_set(run.go);
	} else if (started) {
		/* A setup failure: the connections started wait at the barrier
		 * or for `go`. */
		for (unsigned i = 0; i < started; i++)
			coil_task_cancel(tasks[i], NULL);
	}
	*t = (totals_t){ 0 };
	for (unsigned i = 0; i < started; i++) {
		(void)coil_await(coil_task_future(tasks[i]), NULL);
		coil_task_detach(tasks[i]);
		conn_t *c = &conns[i];
		int err = c->reader_error ? c->reader_error : c->writer_error;
		if (err && rc == 0) {
			if (t->failed == 0)
				fprintf(stderr, "loadgen: connection %u: %s\n", i,
					err == -EBADMSG ? "a reply differs from the request"
							: coil_strerror(err));
			t->failed++;
		}
		t->requests += c->requests;
		t->non_2xx += c->non_2xx;
		hist_add(&t->hist, &c->hist);
	}
	for (unsigned i = 0; i < ready; i++)
		conn_fini(&conns[i]);
	if (run.go) {
		coil_event_destroy(run.go);
		coil_barrier_destroy(run.connected);
	}
	free(run.http_request);
	free(tasks);
	free(conns);
	return rc;
}

static void report(const char *metric, double value, const char *unit)
{
	printf("@ %s %.1f %s\n", metric, value, unit);
}

static void report_count(const char *metric, uint64_t n)
{
	printf("@ %s %llu count\n", metric, (unsigned long long)n);
}

static const double QUANTILES[] = { 0.5, 0.9, 0.99, 0.999 };
static const char *const QUANTILE_NAMES[] = { "p50", "p90", "p99", "p99_9" };

static int load_main(void *arg, void **result)
{
	(void)result;
	const config_t *cfg = arg;
	totals_t *t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	printf("loadgen: %s on %s port %d, %u connections, pipeline %u, %.1f s",
	       cfg->mode == MODE_ECHO ? "echo" : "http", cfg->host, cfg->port,
	       cfg->connections, cfg->pipeline, cfg->duration);
	if (cfg->mode == MODE_ECHO)
		printf(", %zu-byte messages", cfg->size);
	printf("\n");
	int rc = run_load(cfg, t);
	if (rc) {
		fprintf(stderr, "loadgen: %s\n", coil_strerror(rc));
		free(t);
		return rc;
	}
	report_count("requests", t->requests);
	report("req_per_s", (double)t->requests / cfg->duration, "req/s");
	for (size_t i = 0; i < sizeof(QUANTILES) / sizeof(QUANTILES[0]); i++) {
		char name[32];
		snprintf(name, sizeof(name), "latency_%s_us", QUANTILE_NAMES[i]);
		report(name, hist_quantile(&t->hist, QUANTILES[i]) / 1e3, "us");
	}
	report("latency_max_us", (double)t->hist.max / 1e3, "us");
	if (cfg->mode == MODE_HTTP)
		report_count("non_2xx", t->non_2xx);
	report_count("errors", t->failed);
	fflush(stdout);
	rc = t->failed || t->non_2xx ? -EPROTO : 0;
	free(t);
	return rc;
}

/* --- the self-test ------------------------------------------------------------ */

/* The in-process server: writes back every byte it reads. */
static int echo_handler(coil_stream_t *s, void *arg)
{
	(void)arg;
	char buf[16384];
	for (;;) {
		ssize_t n = coil_stream_read(s, buf, sizeof(buf), 30 * SEC);
		if (n <= 0)
			return n == 0 || n == -ECONNRESET ? 0 : (int)n;
		int rc = coil_stream_write_all(s, buf, (size_t)n, 30 * SEC);
		if (rc)
			return rc == -ECONNRESET || rc == -EPIPE ? 0 : rc;
	}
}

static int self_test(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_server_t *srv;
	int rc = coil_start_server(&srv, echo_handler, NULL, "127.0.0.1", 0, NULL, 5 * SEC);
	if (rc) {
		fprintf(stderr, "loadgen: start_server: %s\n", coil_strerror(rc));
		return rc;
	}
	config_t cfg = { .mode = MODE_ECHO, .host = "127.0.0.1",
			 .port = coil_server_port(srv), .connections = 4,
			 .duration = 0.3, .size = 64 };
	totals_t *t = malloc(sizeof(*t));
	rc = t ? 0 : -ENOMEM;
	hist_t *all = calloc(1, sizeof(*all));
	if (!all)
		rc = -ENOMEM;
	static const unsigned depths[] = { 1, 4 };
	for (int i = 0; i < 2 && rc == 0; i++) {
		cfg.pipeline = depths[i];
		if ((rc = run_load(&cfg, t)))
			break;
		/* Every connection sends its first requests before it looks
		 * at the clock, so a slow machine still answers some. */
		if (t->failed || t->requests == 0) {
			fprintf(stderr, "loadgen: %u connections failed, %llu requests\n",
				t->failed, (unsigned long long)t->requests);
			rc = -EPROTO;
			break;
		}
		printf("echo, pipeline %u: %u connections, every reply matched\n",
		       cfg.pipeline, cfg.connections);
		hist_add(all, &t->hist);
	}
	if (rc == 0) {
		double prev = 0;
		for (size_t i = 0; i < sizeof(QUANTILES) / sizeof(QUANTILES[0]); i++) {
			double q = hist_quantile(all, QUANTILES[i]);
			if (q < prev)
				rc = -EPROTO;
			prev = q;
		}
		if (rc == 0 && prev <= (double)all->max && all->max > 0)
			printf("percentiles: p50 <= p90 <= p99 <= p99.9 <= max\n");
		else
			rc = -EPROTO;
	}
	free(all);
	free(t);
	int closed = coil_server_close(srv, 5 * SEC);
	coil_server_free(srv);
	if (rc == 0 && closed)
		rc = closed;
	if (rc)
		fprintf(stderr, "loadgen: self-test failed: %s\n", coil_strerror(rc));
	return rc;
}

/* --- options ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen --mode echo|http --port P [--host H] [--connections C]\n"
		"               [--duration S] [--warmup S] [--size BYTES] [--pipeline D]\n"
		"               [--workers N]\n"
		"       loadgen --self-test\n");
	exit(2);
}

static unsigned long long number(const char *s, unsigned long long min,
				 unsigned long long max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		usage();
	return v;
}

static double seconds(const char *s, double min)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	/* Also refuses NaN (v >= min is false) and durations whose
	 * nanoseconds would overflow. */
	if (errno || end == s || *end || !(v >= min) || v > 1e6)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	config_t cfg = { .mode = MODE_ECHO, .host = "127.0.0.1", .port = -1,
			 .connections = 64, .duration = 5, .size = 64, .pipeline = 1,
			 .workers = 1 };
	bool test = false, have_mode = false;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--self-test")) {
			test = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(o, "--mode") && (!strcmp(v, "echo") || !strcmp(v, "http"))) {
			cfg.mode = !strcmp(v, "echo") ? MODE_ECHO : MODE_HTTP;
			have_mode = true;
		} else if (!strcmp(o, "--host"))
			cfg.host = v;
		else if (!strcmp(o, "--port"))
			cfg.port = (int)number(v, 1, 65535);
		else if (!strcmp(o, "--connections"))
			cfg.connections = (unsigned)number(v, 1, INT_MAX - 1);
		else if (!strcmp(o, "--duration"))
			cfg.duration = seconds(v, 0.001);
		else if (!strcmp(o, "--warmup"))
			cfg.warmup = seconds(v, 0);
		else if (!strcmp(o, "--size"))
			cfg.size = (size_t)number(v, 1, SSIZE_MAX);
		else if (!strcmp(o, "--pipeline"))
			cfg.pipeline = (unsigned)number(v, 1, INT_MAX);
		else if (!strcmp(o, "--workers"))
			cfg.workers = (unsigned)number(v, 1, UINT_MAX);
		else
			usage();
	}
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	if (test) {
		/* Two workers: the connections' tasks spread over both. */
		o.workers = 2;
		return coil_run(self_test, NULL, NULL, &o) ? 1 : 0;
	}
	if (!have_mode || cfg.port < 0)
		usage();
	o.workers = cfg.workers;
	return coil_run(load_main, &cfg, NULL, &o) ? 1 : 0;
}
