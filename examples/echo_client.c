/*
 * echo_client.c: a client for a line echo server (asyncio's
 * open_connection example), with a half-close.
 *
 * The asyncio version:
 *
 *     async def tcp_echo_client(lines):
 *         reader, writer = await asyncio.open_connection('127.0.0.1', 8888)
 *         for line in lines:
 *             writer.write(line)
 *         await writer.drain()
 *         writer.write_eof()              # no more lines: the server's
 *         while echo := await reader.readline():   # loop ends, and with
 *             print(f'Received: {echo.decode()!r}') # it the connection
 *         writer.close()
 *         await writer.wait_closed()
 *
 * Writing everything before reading works because the server echoes as it
 * reads; write only buffers, and drain is where the client waits for the
 * kernel to take the bytes (backpressure).
 *
 *     echo_client               a demonstration: starts an echo server of
 *                               its own on a Unix socket and talks to it
 *     echo_client HOST PORT     sends the lines of standard input to the
 *                               echo server at HOST:PORT (try:
 *                               echo_server 127.0.0.1 8888), reading them
 *                               through a stream too
 */
#include <coil/coil.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEC COIL_NSEC_PER_SEC

/* Writes the lines, half-closes, and prints every echo up to the end. */
static int talk(coil_stream_t *s, const char *const *lines, int n)
{
	for (int i = 0; i < n; i++) {
		int rc = coil_stream_write(s, lines[i], strlen(lines[i]));
		/* Past the high-water mark write refuses: drain, then write. */
		if (rc == -ENOBUFS && (rc = coil_stream_drain(s, 10 * SEC)) == 0)
			rc = coil_stream_write(s, lines[i], strlen(lines[i]));
		if (rc)
			return rc;
	}
	int rc = coil_stream_write_eof(s, 10 * SEC); /* drains, then ends our side */
	if (rc)
		return rc;
	char echo[1024];
	ssize_t len;
	while ((len = coil_stream_readline(s, echo, sizeof(echo), 10 * SEC)) > 0)
		printf("Received: %.*s", (int)len, echo);
	return (int)len;
}

/* The demonstration's server: echoes lines until the client is done. */
static int echo_handler(coil_stream_t *s, void *arg)
{
	(void)arg;
	char line[1024];
	ssize_t n;
	while ((n = coil_stream_readline(s, line, sizeof(line), 10 * SEC)) > 0) {
		int rc = coil_stream_write_all(s, line, (size_t)n, 10 * SEC);
		if (rc)
			return rc;
	}
	return (int)n;
}

static int demo(void *arg, void **result)
{
	(void)arg;
	(void)result;
	/* Linux's abstract namespace: no file to clean up. */
	char path[64];
	snprintf(path, sizeof(path), "@coil-echo-client-%d", (int)getpid());
	coil_server_t *srv;
	int rc = coil_start_unix_server(&srv, echo_handler, NULL, path, NULL);
	if (rc) {
		fprintf(stderr, "start_unix_server: %s\n", coil_strerror(rc));
		return rc;
	}
	printf("echo server on a Unix socket\n");
	coil_stream_t *s;
	rc = coil_open_unix_connection(&s, path, NULL, 5 * SEC);
	if (rc == 0) {
		const char *lines[] = { "Hello World!\n", "half-closed after this one\n" };
		rc = talk(s, lines, 2);
		coil_stream_close(s);
		coil_stream_wait_closed(s, 5 * SEC);
		coil_stream_free(s);
	}
	coil_server_close(srv, SEC);
	coil_server_free(srv);
	printf("done: %s\n", rc ? coil_strerror(rc) : "every line came back");
	return rc;
}

typedef struct target {
	const char *host;
	int port;
} target_t;

/* Reads standard input through a stream (a pipe, a file or a terminal),
 * then sends it all. */
static int from_stdin(void *arg, void **result)
{
	(void)result;
	target_t *t = arg;
	coil_stream_t *in;
	int rc = coil_stream_from_fd(&in, dup(0), NULL);
	if (rc)
		return rc;
	enum { MAX = 256 };
	static char buf[MAX][1024];
	const char *lines[MAX];
	int n = 0;
	ssize_t len;
	while (n < MAX && (len = coil_stream_readline(in, buf[n], sizeof(buf[n]) - 1,
						      COIL_FOREVER)) > 0) {
		buf[n][len] = 0;
		lines[n] = buf[n];
		n++;
	}
	coil_stream_free(in);
	coil_stream_t *s;
	if ((rc = coil_open_connection(&s, t->host, t->port, NULL, 10 * SEC))) {
		fprintf(stderr, "open_connection %s:%d: %s\n", t->host, t->port,
			coil_strerror(rc));
		return rc;
	}
	rc = talk(s, lines, n);
	coil_stream_close(s);
	coil_stream_wait_closed(s, 5 * SEC);
	coil_stream_free(s);
	if (rc)
		fprintf(stderr, "echo: %s\n", coil_strerror(rc));
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
	target_t t = { argv[1], atoi(argv[2]) };
	return coil_run(from_stdin, &t, NULL, NULL) ? 1 : 0;
}
