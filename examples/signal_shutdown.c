/*
 * examples/signal_shutdown.c: a server that shuts down gracefully on
 * SIGINT or SIGTERM (asyncio's loop.add_signal_handler).
 *
 * An echo server runs with handlers for SIGINT and SIGTERM. The handlers
 * are plain loop callbacks, not signal handlers: they may do anything a
 * callback may, and here they set an event. The main task waits for that
 * event, then closes the server with a grace period (handlers still busy
 * after it are cancelled), removes the signal handlers and returns.
 *
 * Without arguments the program plays both sides: a client exchanges a few
 * lines with the server, then the program sends itself SIGTERM, as a
 * service manager would:
 *
 *     $ ./signal_shutdown
 *     serving on 127.0.0.1
 *     client got: hello
 *     client got: graceful
 *     client got: world
 *     received SIGTERM: shutting down
 *     server closed: connections still open after the grace period were cancelled
 *     client: the server closed the connection
 *
 * With --wait it serves until you press Ctrl-C (or kill it with SIGTERM):
 *
 *     $ ./signal_shutdown --wait
 *     serving on 127.0.0.1 port 40211; Ctrl-C to stop
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <coil/coil.h>

#define SEC COIL_NSEC_PER_SEC
#define MS (COIL_NSEC_PER_SEC / 1000)

typedef struct app {
	coil_event_t *stop;
	int signal;               /* the signal that stopped us */
	int port;
	bool wait_for_user;
	bool client_saw_close;    /* the demo's client read the end */
} app_t;

typedef struct stop_arg {
	app_t *app;
	int signal;
} stop_arg_t;

/* Runs as a loop callback when the signal arrives. */
static void on_signal(void *arg)
{
	stop_arg_t *s = arg;
	if (!s->app->signal) {
		s->app->signal = s->signal;
		printf("received %s: shutting down\n",
		       s->signal == SIGINT ? "SIGINT" : "SIGTERM");
		fflush(stdout);
	}
	coil_event_set(s->app->stop);
}

/* One connection: echo lines until the client or the shutdown ends it. */
static int echo_handler(coil_stream_t *s, void *arg)
{
	(void)arg;
	char line[1024];
	ssize_t n;
	while ((n = coil_stream_readline(s, line, sizeof(line), COIL_FOREVER)) > 0) {
		int rc = coil_stream_write_all(s, line, (size_t)n, 5 * SEC);
		if (rc)
			return rc;
	}
	return (int)n;
}

/* The demo's client: a few lines, then SIGTERM to this very process, then
 * it waits for the server to close the connection. */
static int client(void *arg, void **result)
{
	(void)result;
	app_t *app = arg;
	coil_stream_t *s;
	int rc = coil_open_connection(&s, "127.0.0.1", app->port, NULL, 5 * SEC);
	if (rc)
		return rc;
	const char *words[] = { "hello\n", "graceful\n", "world\n" };
	char line[64];
	for (int i = 0; i < 3 && rc == 0; i++) {
		rc = coil_stream_write_all(s, words[i], strlen(words[i]), 5 * SEC);
		ssize_t n = rc ? rc : coil_stream_readline(s, line, sizeof(line), 5 * SEC);
		if (n > 0)
			printf("client got: %.*s", (int)n, line);
		else
			rc = n ? (int)n : COIL_EINCOMPLETE;
	}
	fflush(stdout);
	if (rc == 0) {
		kill(getpid(), SIGTERM);
		/* The server's close ends the stream: 0 bytes. */
		ssize_t n = coil_stream_readline(s, line, sizeof(line), 10 * SEC);
		app->client_saw_close = n == 0;
		rc = n < 0 ? (int)n : 0;
	}
	coil_stream_close(s);
	coil_stream_wait_closed(s, SEC);
	coil_stream_free(s);
	return rc;
}

static stop_arg_t on_int, on_term;

static int main_task(void *arg, void **result)
{
	(void)result;
	app_t *app = arg;
	int rc = coil_event_create(&app->stop);
	if (rc)
		return rc;
	coil_server_t *srv;
	rc = coil_start_server(&srv, echo_handler, NULL, "127.0.0.1", 0, NULL, 5 * SEC);
	if (rc) {
		coil_event_destroy(app->stop);
		return rc;
	}
	app->port = coil_server_port(srv);
	on_int = (stop_arg_t){ app, SIGINT };
	on_term = (stop_arg_t){ app, SIGTERM };
	coil_add_signal_handler(SIGINT, on_signal, &on_int);
	coil_add_signal_handler(SIGTERM, on_signal, &on_term);
	coil_task_t *c = NULL;
	if (app->wait_for_user) {
		printf("serving on 127.0.0.1 port %d; Ctrl-C to stop\n", app->port);
	} else {
		printf("serving on 127.0.0.1\n");
		coil_spawn(&c, client, app, NULL);
	}
	fflush(stdout);

	/* Serve until a signal says stop. */
	coil_event_wait(app->stop);

	/* Stop accepting, give the connections 200 ms to finish, then cancel
	 * what is left. */
	if (coil_server_close(srv, 200 * MS) == -ETIMEDOUT)
		printf("server closed: connections still open after the grace "
		       "period were cancelled\n");
	else
		printf("server closed: every connection had ended\n");
	coil_server_free(srv);
	coil_remove_signal_handler(SIGINT);
	coil_remove_signal_handler(SIGTERM);
	if (c) {
		int crc = coil_await(coil_task_future(c), NULL);
		if (crc == 0 && app->client_saw_close)
			printf("client: the server closed the connection\n");
		else
			printf("client: %s\n", crc ? coil_strerror(crc) : "no close seen");
		coil_task_detach(c);
	}
	coil_event_destroy(app->stop);
	return 0;
}

int main(int argc, char **argv)
{
	app_t app = { .wait_for_user = argc > 1 && !strcmp(argv[1], "--wait") };
	int rc = coil_run(main_task, &app, NULL, NULL);
	if (rc) {
		fprintf(stderr, "signal_shutdown: %s\n", coil_strerror(rc));
		return 1;
	}
	return 0;
}
