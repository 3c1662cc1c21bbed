/*
 * examples/subprocess_cat.c: child processes through pipes (asyncio's
 * create_subprocess_exec, Process.communicate and Process.wait).
 *
 * Reads what `echo` prints; talks to `cat` one line at a time over its
 * stdin and stdout; hands `sort` its whole input and takes its whole
 * output with communicate; joins `echo` and `tr` into a pipeline with a
 * pipe of our own; and shows exit statuses: a code, and a kill.
 *
 *     $ ./subprocess_cat
 *     echo said: hello from a child process
 *     cat echoed: one
 *     cat echoed: two
 *     cat echoed: three
 *     cat exited with status 0
 *     sort gave: apple banana cherry (status 0)
 *     echo | tr gave: SHOUTED THROUGH A PIPELINE
 *     sh -c 'exit 3' exited with status 3
 *     cat killed: status -9
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <coil/coil.h>

#define SEC COIL_NSEC_PER_SEC

static coil_process_t *spawn(const char *const argv[], int in, int out)
{
	coil_process_opts_t o;
	coil_process_opts_init(&o);
	o.stdin_fd = in;
	o.stdout_fd = out;
	coil_process_t *p;
	int rc = coil_process_spawn(&p, argv, &o);
	if (rc) {
		fprintf(stderr, "cannot start %s: %s\n", argv[0], coil_strerror(rc));
		return NULL;
	}
	return p;
}

/* One line from a child's stdout, without its newline. */
static int read_line(coil_process_t *p, char *buf, size_t cap)
{
	ssize_t n = coil_stream_readline(coil_process_stdout(p), buf, cap - 1, 5 * SEC);
	if (n < 0)
		return (int)n;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = 0;
	return 0;
}

static int echo_demo(void)
{
	const char *const argv[] = { "echo", "hello from a child process", NULL };
	coil_process_t *p = spawn(argv, COIL_PROCESS_DEVNULL, COIL_PROCESS_PIPE);
	if (!p)
		return -1;
	char line[128];
	int rc = read_line(p, line, sizeof(line));
	if (rc == 0)
		printf("echo said: %s\n", line);
	int status;
	if (rc == 0)
		rc = coil_process_wait(p, &status, 5 * SEC);
	coil_process_free(p);
	return rc;
}

/* A conversation: each line written is read back before the next. */
static int cat_demo(void)
{
	const char *const argv[] = { "cat", NULL };
	coil_process_t *p = spawn(argv, COIL_PROCESS_PIPE, COIL_PROCESS_PIPE);
	if (!p)
		return -1;
	const char *words[] = { "one\n", "two\n", "three\n" };
	int rc = 0;
	for (int i = 0; i < 3 && rc == 0; i++) {
		rc = coil_stream_write_all(coil_process_stdin(p), words[i],
					   strlen(words[i]), 5 * SEC);
		char line[64];
		if (rc == 0 && (rc = read_line(p, line, sizeof(line))) == 0)
			printf("cat echoed: %s\n", line);
	}
	/* The end of its input ends cat. */
	if (rc == 0)
		rc = coil_stream_write_eof(coil_process_stdin(p), 5 * SEC);
	int status;
	if (rc == 0 && (rc = coil_process_wait(p, &status, 5 * SEC)) == 0)
		printf("cat exited with status %d\n", status);
	coil_process_free(p);
	return rc;
}

/* All input in, all output out, and the status: communicate. */
static int sort_demo(void)
{
	const char *const argv[] = { "sort", NULL };
	coil_process_t *p = spawn(argv, COIL_PROCESS_PIPE, COIL_PROCESS_PIPE);
	if (!p)
		return -1;
	const char *in = "cherry\napple\nbanana\n";
	coil_bytes_t out = { 0 };
	int status;
	int rc = coil_process_communicate(p, in, strlen(in), &out, NULL, &status, 5 * SEC);
	if (rc == 0) {
		char *s = out.data;
		for (size_t i = 0; i + 1 < out.len; i++)
			if (s[i] == '\n')
				s[i] = ' ';
		printf("sort gave: %.*s (status %d)\n", (int)out.len - 1, s, status);
	}
	coil_bytes_free(&out);
	coil_process_free(p);
	return rc;
}

/* echo | tr: the first child's stdout is the second one's stdin. */
static int pipeline_demo(void)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return -errno;
	const char *const echo[] = { "echo", "shouted through a pipeline", NULL };
	const char *const tr[] = { "tr", "a-z", "A-Z", NULL };
	coil_process_t *a = spawn(echo, COIL_PROCESS_DEVNULL, pfd[1]);
	coil_process_t *b = spawn(tr, pfd[0], COIL_PROCESS_PIPE);
	/* The children have their copies: ours would keep tr's input open. */
	close(pfd[0]);
	close(pfd[1]);
	int rc = a && b ? 0 : -1;
	coil_bytes_t out = { 0 };
	int status;
	if (rc == 0)
		rc = coil_process_communicate(b, NULL, 0, &out, NULL, &status, 5 * SEC);
	if (rc == 0)
		rc = coil_process_wait(a, &status, 5 * SEC);
	if (rc == 0)
		printf("echo | tr gave: %.*s", (int)out.len, (char *)out.data);
	coil_bytes_free(&out);
	coil_process_free(a);
	coil_process_free(b);
	return rc;
}

static int status_demo(void)
{
	const char *const sh[] = { "sh", "-c", "exit 3", NULL };
	coil_process_t *p = spawn(sh, COIL_PROCESS_DEVNULL, COIL_PROCESS_DEVNULL);
	if (!p)
		return -1;
	int status;
	int rc = coil_process_wait(p, &status, 5 * SEC);
	if (rc == 0)
		printf("sh -c 'exit 3' exited with status %d\n", status);
	coil_process_free(p);
	if (rc)
		return rc;

	/* cat waits for input forever: kill it (asyncio's -N for signal N). */
	const char *const cat[] = { "cat", NULL };
	p = spawn(cat, COIL_PROCESS_PIPE, COIL_PROCESS_DEVNULL);
	if (!p)
		return -1;
	rc = coil_process_kill(p);
	if (rc == 0 && (rc = coil_process_wait(p, &status, 5 * SEC)) == 0)
		printf("cat killed: status %d\n", status);
	coil_process_free(p);
	return rc;
}

static int main_task(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int rc;
	if ((rc = echo_demo()) || (rc = cat_demo()) || (rc = sort_demo()) ||
	    (rc = pipeline_demo()) || (rc = status_demo()))
		return rc;
	return 0;
}

int main(void)
{
	int rc = coil_run(main_task, NULL, NULL, NULL);
	if (rc) {
		fprintf(stderr, "subprocess_cat: %s\n", coil_strerror(rc));
		return 1;
	}
	return 0;
}
