/*
 * echo_server.c: a TCP echo server with coil's streams (asyncio's
 * start_server example).
 *
 * The asyncio version:
 *
 *     async def handle_echo(reader, writer):
 *         while line := await reader.readline():
 *             writer.write(line)
 *             await writer.drain()
 *         writer.close()
 *         await writer.wait_closed()
 *
 *     server = await asyncio.start_server(handle_echo, '127.0.0.1', 8888)
 *     async with server:
 *         await server.serve_forever()
 *
 * Each connection runs handle_echo in a task of its own; with several
 * workers those tasks spread over the workers. The server owns each
 * connection's stream and closes it when the handler returns.
 *
 *     echo_server               a demonstration: serves on a free port of
 *                               127.0.0.1, sends it a few lines from a
 *                               client task, prints what comes back and
 *                               closes the server gracefully
 *     echo_server HOST PORT     serves on HOST:PORT until killed
 *                               (try: echo_client HOST PORT)
 */
#include <coil/coil.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC COIL_NSEC_PER_SEC

/* Echoes lines until the client ends its side. */
static int handle_echo(coil_stream_t *s, void *arg)
{
	atomic_long *lines = arg;
	char line[1024];
	for (;;) {
		ssize_t n = coil_stream_readline(s, line, sizeof(line), 60 * SEC);
		if (n <= 0)
			return n == 0 ? 0 : (int)n;  /* 0: the client is done */
		if (coil_stream_write(s, line, (size_t)n) == 0)
			n = coil_stream_drain(s, 60 * SEC);
		else
			n = -1;
		if (n)
			return (int)n;
		atomic_fetch_add(lines, 1);
	}
}

typedef struct demo {
	int port;
	int rc;
} demo_t;

/* The client side of the demonstration: one connection, a few lines. */
static int client(void *arg, void **result)
{
	(void)result;
	demo_t *d = arg;
	coil_stream_t *s;
	int rc = coil_open_connection(&s, "127.0.0.1", d->port, NULL, 5 * SEC);
	if (rc)
		return d->rc = rc;
	const char *lines[] = { "Hello World!\n", "coil speaks asyncio\n", "bye\n" };
	for (int i = 0; i < 3 && !rc; i++) {
		char buf[128];
		printf("client sent: %s", lines[i]);
		rc = coil_stream_write_all(s, lines[i], strlen(lines[i]), 5 * SEC);
		ssize_t n = rc ? rc : coil_stream_readline(s, buf, sizeof(buf), 5 * SEC);
		if (n > 0)
			printf("client got:  %.*s", (int)n, buf);
		else
			rc = n ? (int)n : COIL_EINCOMPLETE;
	}
	coil_stream_close(s);
	coil_stream_wait_closed(s, 5 * SEC);
	coil_stream_free(s);
	return d->rc = rc;
}

static int demo(void *arg, void **result)
{
	(void)arg;
	(void)result;
	static atomic_long lines;
	coil_server_t *srv;
	int rc = coil_start_server(&srv, handle_echo, &lines, "127.0.0.1", 0, NULL, 5 * SEC);
	if (rc) {
		fprintf(stderr, "start_server: %s\n", coil_strerror(rc));
		return rc;
	}
	printf("echo server on 127.0.0.1, a port the kernel chose\n");
	demo_t d = { .port = coil_server_port(srv) };
	coil_task_t *t;
	if ((rc = coil_spawn(&t, client, &d, NULL)) == 0) {
		coil_await(coil_task_future(t), NULL);
		coil_task_detach(t);
		rc = d.rc;
	}
	/* Stop accepting; give handlers a second to finish, then cancel. */
	int closed = coil_server_close(srv, SEC);
	printf("server closed (%s): %ld lines echoed\n",
	       closed == 0 ? "every handler done" : coil_strerror(closed),
	       atomic_load(&lines));
	coil_server_free(srv);
	if (rc)
		fprintf(stderr, "client: %s\n", coil_strerror(rc));
	return rc;
}

typedef struct serve_args {
	const char *host;
	int port;
} serve_args_t;

static int serve(void *arg, void **result)
{
	(void)result;
	serve_args_t *a = arg;
	static atomic_long lines;
	coil_server_t *srv;
	int rc = coil_start_server(&srv, handle_echo, &lines, a->host, a->port, NULL,
				   10 * SEC);
	if (rc) {
		fprintf(stderr, "start_server %s:%d: %s\n", a->host, a->port, coil_strerror(rc));
		return rc;
	}
	printf("serving on %s port %d\n", a->host, coil_server_port(srv));
	fflush(stdout);
	rc = coil_server_serve_forever(srv);
	coil_server_close(srv, 5 * SEC);
	coil_server_free(srv);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 1)
		return coil_run(demo, NULL, NULL, NULL) ? 1 : 0;
	if (argc != 3) {
		fprintf(stderr, "usage: %s [HOST PORT]\n", argv[0]);
		return 2;
	}
	serve_args_t a = { argv[1], atoi(argv[2]) };
	/* Two workers: connections are handled on both. */
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	return coil_run(serve, &a, NULL, &o) ? 1 : 0;
}
