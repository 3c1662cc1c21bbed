/*
 * examples/http_server.c: an HTTP/1.1 "Hello, World!" server on coil's
 * streams, with keep-alive and pipelining.
 *
 * Each connection runs in a task of its own (coil_start_server), which
 * reads requests one after the other from the connection's stream:
 *
 *   - A request's header section (the request line and the header fields,
 *     up to the blank line) is read with one coil_stream_readuntil of
 *     "\r\n\r\n". The stream's limit is the longest header section the
 *     server accepts: a longer one is answered with 431 and the
 *     connection is closed.
 *   - A body announced by Content-Length is read and thrown away, so that
 *     the next request starts where it should. Transfer-Encoding (chunked
 *     bodies) is not implemented: 501, then close.
 *   - Every request gets "Hello, World!" (HEAD: the same header, no body).
 *     The connection stays open (keep-alive) unless the request says
 *     "Connection: close" or is HTTP/1.0 without "Connection: keep-alive".
 *   - A malformed request gets 400 and the connection is closed.
 *
 * Pipelining: a client may send several requests without waiting for the
 * responses. They are answered in order, and the responses of the requests
 * that arrived together are sent together: each response is only written
 * into the stream's write buffer, and the buffer is drained (sent) when no
 * complete request is left to answer, that is once per batch, before the
 * server waits for the client again.
 *
 *     http_server [--host H] [--port P] [--workers N]
 *                             serves until SIGINT or SIGTERM (defaults:
 *                             127.0.0.1, port 8080, 1 worker; port 0 lets
 *                             the kernel pick one, printed at start;
 *                             --host "" listens on every interface)
 *     http_server --self-test starts the server on a free port, talks to
 *                             it from a client task in the same process,
 *                             checks the answers and shuts it down:
 *
 *     GET / -> 200 Hello, World!
 *     3 pipelined requests (GET, POST with a body, HEAD) -> 3 responses in order
 *     Connection: close -> server closed the connection
 *     HTTP/1.0 without keep-alive -> 200, then the server closed the connection
 *     malformed request -> 400, then the server closed the connection
 *     header section over 8192 bytes -> 431, then the server closed the connection
 *     server closed gracefully: 6 requests answered, 2 refused
 *
 * Try it with curl (curl -v http://127.0.0.1:8080/) or with this
 * directory's load generator (loadgen --mode http --port 8080).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <coil/coil.h>

#define SEC COIL_NSEC_PER_SEC

/* The longest header section accepted, its closing blank line not counted
 * (the stream's limit). 8 KiB is what common servers accept too. */
#define HEADER_LIMIT 8192

/* How long a kept-alive connection may stay silent between requests. */
#define IDLE_TIMEOUT (30 * SEC)
/* How long a request's body or a response's sending may take. */
#define IO_TIMEOUT (30 * SEC)
/* How long a connection the server closes keeps reading what the client
 * still sends (see close_gently). */
#define LINGER_TIMEOUT (2 * SEC)

static const char HELLO[] = "Hello, World!";

/* Counters of a server, shared by the connection tasks of every worker. */
typedef struct stats {
	atomic_ulong answered;  /* requests answered with 200 */
	atomic_ulong refused;   /* requests answered with an error status */
} stats_t;

/* One connection, as its handler sees it. */
typedef struct conn {
	coil_stream_t *s;
	stats_t *stats;
	bool unsent;            /* responses wait in the write buffer */
} conn_t;

/* What the server needs to know of a request to answer it. */
typedef struct request {
	bool http10;            /* HTTP/1.0: keep-alive only when asked for */
	bool head;              /* HEAD: the response has no body */
	bool keep_alive;        /* the connection stays open afterwards */
	bool expect_continue;   /* the client waits for "100 Continue" */
	uint64_t body_len;      /* Content-Length, 0 without one */
} request_t;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* --- parsing (RFC 9112) ------------------------------------------------- */

/* A character of a token: a method or a header field's name. */
static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A character allowed in a field value: visible ASCII, space, tab, and
 * the bytes above 0x7f that old clients send (obs-text). A lone CR or LF
 * and the other control characters are not. */
static bool is_vchar(unsigned char c)
{
	return c == '\t' || (c >= ' ' && c != 0x7f);
}

/* Whether the comma-separated list `v` (n bytes) holds `token`, in any
 * case, as Connection's list does "close". */
static bool list_has(const char *v, size_t n, const char *token)
{
	size_t tn = strlen(token);
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < n && v[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == tn && strncasecmp(v + start, token, tn) == 0)
			return true;
	}
	return false;
}

/* Content-Length: digits only, without overflow. */
static bool parse_length(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		unsigned d = (unsigned)(v[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*out = x;
	return true;
}

/* The request line: METHOD SP TARGET SP HTTP/1.x, nothing else. */
static bool parse_request_line(const char *p, size_t n, request_t *req)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ' ')
		return false;
	req->head = i == 4 && memcmp(p, "HEAD", 4) == 0;
	size_t t = ++i;
	while (i < n && p[i] > ' ' && p[i] < 0x7f)
		i++;
	if (i == t || i == n || p[i] != ' ')
		return false;
	i++;
	if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 ||
	    (p[i + 7] != '0' && p[i + 7] != '1'))
		return false;
	req->http10 = p[i + 7] == '0';
	return true;
}

/* What to do with a header section. */
enum { REQ_OK = 200, REQ_EMPTY = 0 };

/*
 * Parses a header section of n bytes (it ends with "\r\n\r\n") into *req.
 * Returns REQ_OK, REQ_EMPTY for nothing but blank lines (which a client may
 * send between requests, and which are skipped), or the error status to
 * answer: 400 or 501.
 */
static int parse_request(const char *head, size_t n, request_t *req)
{
	*req = (request_t){ 0 };
	/* Skip the blank lines a client may send before a request. */
	while (n >= 2 && head[0] == '\r' && head[1] == '\n') {
		head += 2;
		n -= 2;
	}
	if (n < 2)
		return REQ_EMPTY;
	const char *end = head + n - 2; /* after the last line's CRLF */
	const char *line = head;
	bool first = true, have_length = false;
	unsigned hosts = 0;
	bool conn_close = false, conn_keep_alive = false;
	while (line < end) {
		const char *eol = memchr(line, '\r', (size_t)(end - line));
		if (!eol || eol[1] != '\n')
			return 400; /* a lone CR */
		size_t len = (size_t)(eol - line);
		for (size_t i = 0; i < len; i++)
			if (!is_vchar((unsigned char)line[i]))
				return 400;
		if (first) {
			if (!parse_request_line(line, len, req))
				return 400;
			first = false;
			line = eol + 2;
			continue;
		}
		/* name ":" OWS value OWS; no space before the colon, no line
		 * folding (a line that starts with a space). */
		size_t i = 0;
		while (i < len && is_tchar((unsigned char)line[i]))
			i++;
		if (i == 0 || i == len || line[i] != ':')
			return 400;
		size_t name_len = i++;
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		size_t vend = len;
		while (vend > i && (line[vend - 1] == ' ' || line[vend - 1] == '\t'))
			vend--;
		const char *v = line + i;
		size_t vn = vend - i;
#define NAME_IS(s) (name_len == sizeof(s) - 1 && strncasecmp(line, s, name_len) == 0)
		if (NAME_IS("Content-Length")) {
			uint64_t x;
			if (!parse_length(v, vn, &x) || (have_length && x != req->body_len))
				return 400;
			req->body_len = x;
			have_length = true;
		} else if (NAME_IS("Transfer-Encoding")) {
			return 501; /* chunked bodies are not implemented */
		} else if (NAME_IS("Connection")) {
			conn_close |= list_has(v, vn, "close");
			conn_keep_alive |= list_has(v, vn, "keep-alive");
		} else if (NAME_IS("Expect")) {
			req->expect_continue = vn == 12 && strncasecmp(v, "100-continue", 12) == 0;
		} else if (NAME_IS("Host")) {
			hosts++;
		}
#undef NAME_IS
		line = eol + 2;
	}
	/* An HTTP/1.1 request names exactly one Host (RFC 9112, 3.2). */
	if (!req->http10 && hosts != 1)
		return 400;
	req->keep_alive = !conn_close && (!req->http10 || conn_keep_alive);
	return REQ_OK;
}

/* --- answering ---------------------------------------------------------- */

/* A connection error the client caused (it went away, reset, fell
 * silent) ends the connection quietly: the handler returns 0, since an
 * error would be reported through the loop's exception handler.
 * Cancellation (the server shutting down) and anything unexpected are
 * passed on. */
static int quiet(int rc)
{
	if (rc == COIL_EINCOMPLETE || rc == -ECONNRESET || rc == -EPIPE ||
	    rc == -ETIMEDOUT)
		return 0;
	return rc;
}

/* Sends every response written so far. */
static int flush(conn_t *c)
{
	c->unsent = false;
	return coil_stream_drain(c->s, IO_TIMEOUT);
}

/* Queues n bytes for the next drain. The write buffer refuses more once
 * it holds more than its high-water mark (-ENOBUFS), which a long enough
 * pipeline of requests reaches: the responses so far are sent first. */
static int queue(conn_t *c, const char *p, size_t n)
{
	int rc = coil_stream_write(c->s, p, n);
	if (rc == -ENOBUFS && (rc = flush(c)) == 0)
		rc = coil_stream_write(c->s, p, n);
	if (rc == 0)
		c->unsent = true;
	return rc;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 431: return "Request Header Fields Too Large";
	default:  return "Not Implemented"; /* 501 */
	}
}

/* Writes one response into the write buffer. The body is "Hello, World!"
 * for 200, the reason phrase for an error. */
static int respond(conn_t *c, int status, const request_t *req)
{
	const char *body = status == 200 ? HELLO : reason(status);
	const char *connection = "";
	if (!req->keep_alive)
		connection = "Connection: close\r\n";
	else if (req->http10)
		connection = "Connection: keep-alive\r\n";
	/* The header, and the body unless this answers a HEAD: a few hundred
	 * bytes at most, all of them fixed here. */
	char out[256];
	int n = snprintf(out, sizeof(out),
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: text/plain\r\n"
			 "Content-Length: %zu\r\n"
			 "%s"
			 "\r\n"
			 "%s",
			 status, reason(status), strlen(body), connection,
			 req->head ? "" : body);
	if (n < 0 || (size_t)n >= sizeof(out))
		return -EOVERFLOW;
	return queue(c, out, (size_t)n);
}

/*
 * Ends a connection the server decided to close: sends what is buffered,
 * ends the sending direction (the client reads the end of the stream after
 * the last response), then reads and throws away what the client still
 * sends, until it closes too or LINGER_TIMEOUT has passed. Closing at once
 * while unread bytes wait in the socket would make the kernel send a
 * reset, which can destroy the last response before the client has read
 * it.
 */
static int close_gently(conn_t *c)
{
	c->unsent = false;
	int rc = coil_stream_write_eof(c->s, IO_TIMEOUT);
	if (rc)
		return quiet(rc);
	int64_t deadline = now_ns() + LINGER_TIMEOUT;
	char scratch[4096];
	for (;;) {
		int64_t left = deadline - now_ns();
		if (left <= 0)
			return 0;
		ssize_t n = coil_stream_read(c->s, scratch, sizeof(scratch), left);
		if (n == 0)
			return 0;    /* the client closed its side */
		if (n < 0)
			return quiet((int)n);
	}
}

/* Answers a request the server will not serve with `status`, then closes. */
static int refuse(conn_t *c, int status)
{
	atomic_fetch_add(&c->stats->refused, 1);
	request_t req = { .keep_alive = false };
	int rc = respond(c, status, &req);
	return rc ? quiet(rc) : close_gently(c);
}

/*
 * Reads the next request's header section into buf. When responses are
 * waiting to be sent, a request that is already complete in the read
 * buffer is taken without waiting, so that its response joins the batch;
 * otherwise the batch is sent first, since the client may be waiting for
 * it before it sends anything more.
 */
static ssize_t read_head(conn_t *c, char *buf, size_t cap)
{
	if (c->unsent && coil_stream_buffered(c->s) > 0) {
		/* Timeout 0: only what is here already (or arrives at once). */
		ssize_t n = coil_stream_readuntil(c->s, "\r\n\r\n", 4, buf, cap, 0);
		if (n != -ETIMEDOUT)
			return n;
	}
	if (c->unsent) {
		int rc = flush(c);
		if (rc)
			return rc;
	}
	return coil_stream_readuntil(c->s, "\r\n\r\n", 4, buf, cap, IDLE_TIMEOUT);
}

/* Reads and throws away a body of len bytes. */
static int skip_body(conn_t *c, uint64_t len)
{
	char scratch[4096];
	while (len > 0) {
		/* As in read_head: never wait for the client with responses
		 * unsent. */
		if (c->unsent && coil_stream_buffered(c->s) == 0) {
			int rc = flush(c);
			if (rc)
				return rc;
		}
		size_t want = len < sizeof(scratch) ? (size_t)len : sizeof(scratch);
		ssize_t n = coil_stream_read(c->s, scratch, want, IO_TIMEOUT);
		if (n == 0)
			return COIL_EINCOMPLETE; /* the client left mid-body */
		if (n < 0)
			return (int)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* One connection: requests until either side closes it. The server owns
 * the stream and closes it when this returns. */
static int handle_http(coil_stream_t *s, void *arg)
{
	conn_t c = { .s = s, .stats = arg };
	char head[HEADER_LIMIT + 4]; /* the limit plus "\r\n\r\n" */
	for (;;) {
		ssize_t n = read_head(&c, head, sizeof(head));
		if (n == COIL_ELIMIT)
			return refuse(&c, 431);
		if (n < 0) {
			/* The client closed (COIL_EINCOMPLETE) or went silent:
			 * send what is left, then end. */
			if (c.unsent && n == COIL_EINCOMPLETE)
				(void)flush(&c); /* best effort: it may be gone */
			return quiet((int)n);
		}
		request_t req;
		int status = parse_request(head, (size_t)n, &req);
		if (status == REQ_EMPTY)
			continue;
		if (status != REQ_OK)
			return refuse(&c, status);

		/* A client that sent "Expect: 100-continue" waits for this
		 * before it sends the body. */
		if (req.expect_continue && req.body_len > 0 &&
		    coil_stream_buffered(s) == 0) {
			static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
			int rc = queue(&c, go_on, sizeof(go_on) - 1);
			if (rc || (rc = flush(&c)))
				return quiet(rc);
		}
		int rc = skip_body(&c, req.body_len);
		if (rc)
			return quiet(rc);
		if ((rc = respond(&c, 200, &req)))
			return quiet(rc);
		atomic_fetch_add(&c.stats->answered, 1);
		if (!req.keep_alive)
			return close_gently(&c);
	}
}

/* Starts the server. Every connection's stream gets HEADER_LIMIT as its
 * limit, which bounds what read_head accepts. */
static int start(coil_server_t **srv, stats_t *stats, const char *host, int port)
{
	coil_stream_opts_t so;
	coil_stream_opts_init(&so);
	so.limit = HEADER_LIMIT;
	coil_server_opts_t o;
	coil_server_opts_init(&o);
	o.stream = &so;
	return coil_start_server(srv, handle_http, stats, host, port, &o, 10 * SEC);
}

/* --- serving until a signal ----------------------------------------------- */

typedef struct serve_args {
	const char *host;
	int port;
	unsigned workers;
} serve_args_t;

/* A loop callback (not a signal handler): wakes the main task. */
static void on_signal(void *arg)
{
	coil_event_set(arg);
}

static int serve(void *arg, void **result)
{
	(void)result;
	serve_args_t *a = arg;
	static stats_t stats;
	coil_event_t *stop;
	int rc = coil_event_create(&stop);
	if (rc)
		return rc;
	coil_server_t *srv;
	if ((rc = start(&srv, &stats, a->host, a->port))) {
		fprintf(stderr, "http_server: cannot serve on %s port %d: %s\n", a->host,
			a->port, coil_strerror(rc));
		coil_event_destroy(stop);
		return rc;
	}
	if ((rc = coil_add_signal_handler(SIGINT, on_signal, stop)) == 0 &&
	    (rc = coil_add_signal_handler(SIGTERM, on_signal, stop)) == 0) {
		printf("serving HTTP on %s, port %d, with %u worker%s; Ctrl-C to stop\n",
		       *a->host ? a->host : "every interface", coil_server_port(srv),
		       a->workers, a->workers == 1 ? "" : "s");
		fflush(stdout);
		rc = coil_event_wait(stop);
	} else {
		fprintf(stderr, "http_server: coil_add_signal_handler: %s\n", coil_strerror(rc));
	}
	/* Stop accepting; give the connections a second to finish (the idle
	 * ones never do), then cancel them. */
	coil_server_close(srv, SEC);
	coil_server_free(srv);
	coil_remove_signal_handler(SIGINT);
	coil_remove_signal_handler(SIGTERM);
	coil_event_destroy(stop);
	printf("stopped: %lu requests answered, %lu refused\n",
	       atomic_load(&stats.answered), atomic_load(&stats.refused));
	return rc;
}

/* --- the self-test's client ------------------------------------------------- */

/* What the client reads of a response. */
typedef struct response {
	int status;
	bool close;             /* "Connection: close" */
	size_t body_len;
	char body[64];
} response_t;

/* Reads one response; head: it answers a HEAD (no body follows). */
static int read_response(coil_stream_t *s, bool head, response_t *r)
{
	char buf[1024];
	ssize_t n = coil_stream_readuntil(s, "\r\n\r\n", 4, buf, sizeof(buf) - 1, 5 * SEC);
	if (n < 0)
		return (int)n;
	buf[n] = '\0'; /* for the string functions below */
	*r = (response_t){ 0 };
	if (n < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0 ||
	    sscanf(buf + 9, "%3d", &r->status) != 1)
		return -EPROTO;
	bool have_length = false;
	for (char *line = strstr(buf, "\r\n") + 2; line < buf + n - 2;) {
		char *eol = strstr(line, "\r\n");
		*eol = '\0';
		if (strncasecmp(line, "Content-Length:", 15) == 0) {
			r->body_len = strtoul(line + 15, NULL, 10);
			have_length = true;
		} else if (strncasecmp(line, "Connection:", 11) == 0) {
			r->close = strstr(line + 11, "close") != NULL;
		}
		line = eol + 2;
	}
	if (!have_length || r->body_len >= sizeof(r->body))
		return -EPROTO;
	if (head)
		return 0;
	n = coil_stream_readexactly(s, r->body, r->body_len, 5 * SEC);
	return n < 0 ? (int)n : 0;
}

/* Sends text and reads one response to it. */
static int exchange(coil_stream_t *s, const char *text, bool head, response_t *r)
{
	int rc = coil_stream_write_all(s, text, strlen(text), 5 * SEC);
	return rc ? rc : read_response(s, head, r);
}

/* The server closed the connection: the next read finds the end. */
static bool closed_by_server(coil_stream_t *s)
{
	char c;
	return coil_stream_read(s, &c, 1, 5 * SEC) == 0;
}

static bool is_hello(const response_t *r)
{
	return r->status == 200 && r->body_len == strlen(HELLO) &&
	       memcmp(r->body, HELLO, r->body_len) == 0;
}

static int connect_to(coil_stream_t **s, int port)
{
	return coil_open_connection(s, "127.0.0.1", port, NULL, 5 * SEC);
}

static void disconnect(coil_stream_t *s)
{
	coil_stream_close(s);
	coil_stream_wait_closed(s, SEC);
	coil_stream_free(s);
}

/* Keep-alive and pipelining on one connection. */
static int keep_alive_checks(int port)
{
	coil_stream_t *s;
	int rc = connect_to(&s, port);
	if (rc)
		return rc;
	response_t r[3];
	rc = exchange(s, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", false, &r[0]);
	if (rc == 0 && (!is_hello(&r[0]) || r[0].close))
		rc = -EPROTO;
	if (rc == 0)
		printf("GET / -> %d %.*s\n", r[0].status, (int)r[0].body_len, r[0].body);

	/* Three requests in one write. The HEAD's response has no body: were
	 * the responses out of order, the client would read one response's
	 * header as another's body, and the checks would fail. */
	static const char three[] =
		"GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n"
		"POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 9\r\n\r\nname=coil"
		"HEAD /last HTTP/1.1\r\nHost: localhost\r\n\r\n";
	if (rc == 0)
		rc = coil_stream_write_all(s, three, sizeof(three) - 1, 5 * SEC);
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = read_response(s, i == 2, &r[i]);
	if (rc == 0 && (!is_hello(&r[0]) || !is_hello(&r[1]) || r[2].status != 200 ||
			r[2].body_len != strlen(HELLO)))
		rc = -EPROTO;
	if (rc == 0)
		printf("3 pipelined requests (GET, POST with a body, HEAD) -> "
		       "3 responses in order\n");

	if (rc == 0)
		rc = exchange(s, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
			      false, &r[0]);
	if (rc == 0 && (!is_hello(&r[0]) || !r[0].close || !closed_by_server(s)))
		rc = -EPROTO;
	if (rc == 0)
		printf("Connection: close -> server closed the connection\n");
	disconnect(s);
	return rc;
}

/* One request on a fresh connection: the response's status must be
 * `status`, and the server must close the connection afterwards. */
static int closing_check(int port, const char *text, size_t len, int status,
			 const char *what)
{
	coil_stream_t *s;
	int rc = connect_to(&s, port);
	if (rc)
		return rc;
	response_t r;
	rc = coil_stream_write_all(s, text, len, 5 * SEC);
	if (rc == 0)
		rc = read_response(s, false, &r);
	if (rc == 0 && (r.status != status || !r.close || !closed_by_server(s)))
		rc = -EPROTO;
	if (rc == 0)
		printf("%s -> %d, then the server closed the connection\n", what, status);
	disconnect(s);
	return rc;
}

static int closing_checks(int port)
{
	static const char http10[] = "GET / HTTP/1.0\r\n\r\n";
	static const char bad[] = "this is not HTTP\r\n\r\n";
	int rc = closing_check(port, http10, sizeof(http10) - 1, 200,
			       "HTTP/1.0 without keep-alive");
	if (rc == 0)
		rc = closing_check(port, bad, sizeof(bad) - 1, 400, "malformed request");
	if (rc)
		return rc;

	/* A header field twice as long as the whole section may be. */
	static const char start[] = "GET / HTTP/1.1\r\nHost: localhost\r\nX-Filler: ";
	size_t fill = 2 * HEADER_LIMIT;
	size_t len = sizeof(start) - 1 + fill + 4;
	char *big = malloc(len);
	if (!big)
		return -ENOMEM;
	memcpy(big, start, sizeof(start) - 1);
	memset(big + sizeof(start) - 1, 'x', fill);
	memcpy(big + len - 4, "\r\n\r\n", 4);
	char what[64];
	snprintf(what, sizeof(what), "header section over %d bytes", HEADER_LIMIT);
	rc = closing_check(port, big, len, 431, what);
	free(big);
	return rc;
}

static int self_test(void *arg, void **result)
{
	(void)arg;
	(void)result;
	static stats_t stats;
	coil_server_t *srv;
	int rc = start(&srv, &stats, "127.0.0.1", 0);
	if (rc) {
		fprintf(stderr, "http_server: start_server: %s\n", coil_strerror(rc));
		return rc;
	}
	int port = coil_server_port(srv);
	rc = keep_alive_checks(port);
	if (rc == 0)
		rc = closing_checks(port);
	/* Every client has closed its connection: each handler returns at
	 * once, well within the grace period. */
	int closed = coil_server_close(srv, 5 * SEC);
	coil_server_free(srv);
	if (rc) {
		fprintf(stderr, "http_server: self-test failed: %s\n", coil_strerror(rc));
		return rc;
	}
	if (closed) {
		fprintf(stderr, "http_server: close: %s\n", coil_strerror(closed));
		return closed;
	}
	printf("server closed gracefully: %lu requests answered, %lu refused\n",
	       atomic_load(&stats.answered), atomic_load(&stats.refused));
	return 0;
}

/* --- options ---------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: http_server [--host H] [--port P] [--workers N]\n"
			"       http_server --self-test\n");
	exit(2);
}

/* A whole decimal number within [min, max], or usage(). */
static long number(const char *s, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	serve_args_t a = { .host = "127.0.0.1", .port = 8080, .workers = 1 };
	bool test = false;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--self-test"))
			test = true;
		else if (!strcmp(argv[i], "--host") && v)
			a.host = argv[++i];
		else if (!strcmp(argv[i], "--port") && v)
			a.port = (int)number(argv[++i], 0, 65535);
		else if (!strcmp(argv[i], "--workers") && v)
			a.workers = (unsigned)number(argv[++i], 1, UINT_MAX);
		else
			usage();
	}
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	/* The self-test runs on two workers too: its connections' tasks may
	 * move between them. */
	o.workers = test ? 2 : a.workers;
	int rc = coil_run(test ? self_test : serve, &a, NULL, &o);
	return rc ? 1 : 0;
}
