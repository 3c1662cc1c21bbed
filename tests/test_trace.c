/*
 * tests/test_trace.c: the trace recorder (coil/debug.h).
 *
 * A trace of a parallel fib on two workers (with a steal forced by a task
 * that holds its worker until a task it spawned has run) is parsed by a
 * small JSON parser here, strict about the grammar, and checked: one named
 * track per worker, a span per task step, spans on a track that never
 * overlap partly, the steal on the thief's track naming its victim, the
 * event count the trailer gives. Then: flushing while the trace runs,
 * the per-loop event limit, callbacks named by their function, a loop
 * freed during the trace, the recorder's errors, and that nothing is
 * recorded once it is stopped. A build made with COIL_METRICS=OFF has no
 * recorder and skips (77).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "coil/coil.h"
#include "test.h"

/* --- a small JSON parser ------------------------------------------------- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jv {
	int type;
	double num;
	char *str;                /* J_STR; key of an object member */
	struct jv **items;        /* J_ARR, J_OBJ (members carry a key) */
	size_t n;
	char *key;
} jv_t;

typedef struct {
	const char *p, *end;
} jp_t;

static void jv_free(jv_t *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++)
		jv_free(v->items[i]);
	free(v->items);
	free(v->str);
	free(v->key);
	free(v);
}

static void ws(jp_t *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
		j->p++;
}

static jv_t *parse_value(jp_t *j);

/* A string: returns it (\u escapes of ASCII only are decoded; others
 * become '?'), or NULL on bad syntax. */
static char *parse_string(jp_t *j)
{
	if (j->p >= j->end || *j->p != '"')
		return NULL;
	j->p++;
	size_t cap = 16, n = 0;
	char *s = malloc(cap);
	while (j->p < j->end && *j->p != '"') {
		char c = *j->p++;
		if ((unsigned char)c < 0x20)
			goto bad;
		if (c == '\\') {
			if (j->p >= j->end)
				goto bad;
			char e = *j->p++;
			if (e == 'u') {
				unsigned v = 0;
				for (int i = 0; i < 4; i++) {
					if (j->p >= j->end || !isxdigit((unsigned char)*j->p))
						goto bad;
					char h = *j->p++;
					v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
				}
				c = v < 0x80 ? (char)v : '?';
			} else if (strchr("\"\\/", e)) {
				c = e;
			} else if (e == 'n' || e == 't' || e == 'r' || e == 'b' || e == 'f') {
				c = ' ';
			} else {
				goto bad;
			}
		}
		if (n + 2 > cap)
			s = realloc(s, cap *= 2);
		s[n++] = c;
	}
	if (j->p >= j->end)
		goto bad;
	j->p++;
	s[n] = '\0';
	return s;
bad:
	free(s);
	return NULL;
}

static bool parse_number(jp_t *j, double *out)
{
	const char *s = j->p;
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p >= j->end || !isdigit((unsigned char)*j->p))
		return false;
	if (*j->p == '0')
		j->p++;
	else
		while (j->p < j->end && isdigit((unsigned char)*j->p))
			j->p++;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || !isdigit((unsigned char)*j->p))
			return false;
		while (j->p < j->end && isdigit((unsigned char)*j->p))
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (j->p >= j->end || !isdigit((unsigned char)*j->p))
			return false;
		while (j->p < j->end && isdigit((unsigned char)*j->p))
			j->p++;
	}
	char buf[64];
	size_t len = (size_t)(j->p - s);
	if (len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	*out = strtod(buf, NULL);
	return true;
}

static bool add_item(jv_t *v, jv_t *item)
{
	v->items = realloc(v->items, (v->n + 1) * sizeof(*v->items));
	v->items[v->n++] = item;
	return true;
}

static jv_t *parse_container(jp_t *j, jv_t *v, char close)
{
	j->p++;
	ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		if (close == '}') {
			ws(j);
			if (!(key = parse_string(j)))
				goto bad;
			ws(j);
			if (j->p >= j->end || *j->p != ':') {
				free(key);
				goto bad;
			}
			j->p++;
		}
		jv_t *item = parse_value(j);
		if (!item) {
			free(key);
			goto bad;
		}
		item->key = key;
		add_item(v, item);
		ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			return v;
		}
		goto bad;
	}
bad:
	jv_free(v);
	return NULL;
}

static jv_t *parse_value(jp_t *j)
{
	ws(j);
	if (j->p >= j->end)
		return NULL;
	jv_t *v = calloc(1, sizeof(*v));
	char c = *j->p;
	if (c == '{') {
		v->type = J_OBJ;
		return parse_container(j, v, '}');
	}
	if (c == '[') {
		v->type = J_ARR;
		return parse_container(j, v, ']');
	}
	if (c == '"') {
		v->type = J_STR;
		if ((v->str = parse_string(j)))
			return v;
	} else if (!strncmp(j->p, "true", 4) || !strncmp(j->p, "null", 4)) {
		v->type = c == 't' ? J_BOOL : J_NULL;
		v->num = c == 't';
		j->p += 4;
		return v;
	} else if (!strncmp(j->p, "false", 5)) {
		v->type = J_BOOL;
		j->p += 5;
		return v;
	} else {
		v->type = J_NUM;
		if (parse_number(j, &v->num))
			return v;
	}
	jv_free(v);
	return NULL;
}

/* Parses a whole document (nothing but white space after the value). */
static jv_t *json_parse(const char *s, size_t len)
{
	jp_t j = { s, s + len };
	jv_t *v = parse_value(&j);
	ws(&j);
	if (v && j.p != j.end) {
		jv_free(v);
		return NULL;
	}
	return v;
}

static const jv_t *get(const jv_t *o, const char *key)
{
	if (!o || o->type != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->items[i]->key, key))
			return o->items[i];
	return NULL;
}

static const char *get_str(const jv_t *o, const char *key)
{
	const jv_t *v = get(o, key);
	return v && v->type == J_STR ? v->str : NULL;
}

static double get_num(const jv_t *o, const char *key)
{
	const jv_t *v = get(o, key);
	ASSERT(v != NULL && v->type == J_NUM);
	return v->num;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	ASSERT(f != NULL);
	char *buf = NULL;
	size_t cap = 0;
	*len = 0;
	for (;;) {
		if (*len + 4096 > cap)
			buf = realloc(buf, cap = 2 * cap + 4096);
		size_t r = fread(buf + *len, 1, cap - *len - 1, f);
		if (!r)
			break;
		*len += r;
	}
	fclose(f);
	buf[*len] = '\0';
	return buf;
}

/* Parses a trace file and checks what every trace must be: an object
 * whose traceEvents are well-formed events. */
static jv_t *load_trace(const char *path)
{
	size_t len;
	char *s = read_file(path, &len);
	jv_t *doc = json_parse(s, len);
	if (!doc)
		fprintf(stderr, "not JSON: %.300s\n", s);
	free(s);
	ASSERT(doc != NULL && doc->type == J_OBJ);
	const jv_t *evs = get(doc, "traceEvents");
	ASSERT(evs && evs->type == J_ARR);
	for (size_t i = 0; i < evs->n; i++) {
		const jv_t *e = evs->items[i];
		ASSERT(e->type == J_OBJ);
		const char *ph = get_str(e, "ph");
		ASSERT(get_str(e, "name") && ph);
		ASSERT(!strcmp(ph, "X") || !strcmp(ph, "i") || !strcmp(ph, "M") ||
		       !strcmp(ph, "b") || !strcmp(ph, "e"));
		if (!strcmp(ph, "b") || !strcmp(ph, "e"))
			ASSERT(get_str(e, "id") != NULL);
		get_num(e, "pid");
		get_num(e, "tid");
		if (strcmp(ph, "M"))
			ASSERT_GE(get_num(e, "ts"), 0);
		if (!strcmp(ph, "X"))
			ASSERT_GE(get_num(e, "dur"), 0);
	}
	return doc;
}

static const jv_t *events(const jv_t *doc)
{
	return get(doc, "traceEvents");
}

/* The track named `name`'s tid, -1 if none; fails if it is named twice. */
static long track(const jv_t *doc, const char *name)
{
	long tid = -1;
	const jv_t *evs = events(doc);
	for (size_t i = 0; i < evs->n; i++) {
		const jv_t *e = evs->items[i];
		if (strcmp(get_str(e, "ph"), "M") || strcmp(get_str(e, "name"), "thread_name"))
			continue;
		const char *n = get_str(get(e, "args"), "name");
		if (n && !strcmp(n, name)) {
			ASSERT_EQ(tid, -1);
			tid = (long)get_num(e, "tid");
		}
	}
	return tid;
}

static size_t count(const jv_t *doc, const char *ph, const char *cat, long tid)
{
	size_t n = 0;
	const jv_t *evs = events(doc);
	for (size_t i = 0; i < evs->n; i++) {
		const jv_t *e = evs->items[i];
		const char *c = get_str(e, "cat");
		if (!strcmp(get_str(e, "ph"), ph) && (!cat || (c && !strcmp(c, cat))) &&
		    (tid < 0 || (long)get_num(e, "tid") == tid))
			n++;
	}
	return n;
}

typedef struct span {
	double ts, end;
} span_t;

static int span_cmp(const void *a, const void *b)
{
	const span_t *x = a, *y = b;
	return x->ts < y->ts ? -1 : x->ts > y->ts ? 1 : (x->end > y->end ? -1 : x->end < y->end);
}

/* The spans of track tid never overlap partly: each either ends before
 * the next begins or holds it whole. Returns how many there are. */
static size_t check_nesting(const jv_t *doc, long tid)
{
	const jv_t *evs = events(doc);
	span_t *s = calloc(evs->n + 1, sizeof(*s));
	size_t n = 0;
	for (size_t i = 0; i < evs->n; i++) {
		const jv_t *e = evs->items[i];
		if (strcmp(get_str(e, "ph"), "X") || (long)get_num(e, "tid") != tid)
			continue;
		s[n].ts = get_num(e, "ts");
		s[n].end = s[n].ts + get_num(e, "dur");
		n++;
	}
	qsort(s, n, sizeof(*s), span_cmp);
	/* A stack of the spans open at each start. */
	span_t *open = calloc(n + 1, sizeof(*open));
	size_t depth = 0;
	for (size_t i = 0; i < n; i++) {
		while (depth && open[depth - 1].end <= s[i].ts + 1e-9)
			depth--;
		if (depth)
			ASSERT(s[i].end <= open[depth - 1].end + 1e-9);
		open[depth++] = s[i];
	}
	free(open);
	free(s);
	return n;
}

/* --- workloads ----------------------------------------------------------- */

static char trace_path[64];

static void temp_path(void)
{
	snprintf(trace_path, sizeof(trace_path), "/tmp/coil-trace-XXXXXX");
	int fd = mkstemp(trace_path);
	ASSERT(fd >= 0);
	close(fd);
}

static void start_or_skip(const char *path, const coil_trace_opts_t *o)
{
	int rc = coil_trace_start(path, o);
	if (rc == -ENOTSUP)
		TEST_SKIP("built with COIL_METRICS=OFF");
	ASSERT_EQ(rc, 0);
}

static long fib(long k);

static int fib_task(void *arg, void **result)
{
	*result = (void *)(intptr_t)fib((long)(intptr_t)arg);
	return 0;
}

static long fib(long k)
{
	if (k < 2)
		return k;
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, fib_task, (void *)(intptr_t)(k - 1), NULL), 0);
	long b = fib(k - 2);
	void *a;
	ASSERT_EQ(coil_await(coil_task_future(t), &a), 0);
	coil_task_detach(t);
	return (long)(intptr_t)a + b;
}

struct forced {
	atomic_int ran;
	int worker, main_worker;
};

static int mark_worker(void *arg, void **result)
{
	struct forced *s = arg;
	(void)result;
	s->worker = coil_current_worker();
	atomic_store(&s->ran, 1);
	return 0;
}

/* Holds its worker until a task it spawned has run: only a steal runs it. */
static void force_steal(struct forced *s)
{
	s->main_worker = coil_current_worker();
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, mark_worker, s, NULL), 0);
	while (!atomic_load(&s->ran))
		;
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	coil_task_detach(t);
}

struct fib_run {
	struct forced steal;
	long result;
};

static int fib_main(void *arg, void **result)
{
	struct fib_run *r = arg;
	(void)result;
	force_steal(&r->steal);
	r->result = fib(12);
	return 0;
}

static void run_fib_on_two_workers(struct fib_run *r)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_runtime_block_on(rt, fib_main, r, NULL), 0);
	ASSERT_EQ(r->result, 144);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- tests --------------------------------------------------------------- */

TEST(trace_of_parallel_fib_is_valid_with_a_track_per_worker)
{
	temp_path();
	start_or_skip(trace_path, NULL);
	ASSERT(coil_trace_active());
	struct fib_run r = { .steal = { .worker = -1 } };
	run_fib_on_two_workers(&r);
	int written = coil_trace_stop();
	ASSERT_GT(written, 0);
	ASSERT(!coil_trace_active());

	jv_t *doc = load_trace(trace_path);
	long w0 = track(doc, "worker 0"), w1 = track(doc, "worker 1");
	ASSERT_EQ(w0, 0);
	ASSERT_EQ(w1, 1);
	/* fib(12) spawns 232 tasks; with main and the forced steal's task,
	 * 234 tasks of at least one step each. */
	ASSERT_GE(count(doc, "X", "task", -1), 234);
	ASSERT_EQ(count(doc, "X", "task", -1) + count(doc, "X", "callback", -1) +
		  count(doc, "X", "done-callback", -1) + count(doc, "X", "idle", -1) +
		  count(doc, "i", "sched", -1) + count(doc, "b", "io", -1),
		  (size_t)written);
	ASSERT_EQ(get_num(get(doc, "otherData"), "events"), written);
	ASSERT_EQ(get_num(get(doc, "otherData"), "dropped"), 0);
	ASSERT_GE(check_nesting(doc, 0), 1);
	ASSERT_GE(check_nesting(doc, 1), 1);
	/* The forced steal: on the thief's track, naming the victim. */
	long thief = r.steal.worker, victim = r.steal.main_worker;
	ASSERT_EQ(thief + victim, 1);
	bool seen = false;
	const jv_t *evs = events(doc);
	for (size_t i = 0; i < evs->n; i++) {
		const jv_t *e = evs->items[i];
		if (strcmp(get_str(e, "name"), "steal"))
			continue;
		ASSERT_STR_EQ(get_str(e, "ph"), "i");
		ASSERT_GE(get_num(get(e, "args"), "tasks"), 1);
		long tid = (long)get_num(e, "tid");
		ASSERT_NE(tid, (long)get_num(get(e, "args"), "victim"));
		if (tid == thief && (long)get_num(get(e, "args"), "victim") == victim)
			seen = true;
	}
	ASSERT(seen);
	jv_free(doc);
	unlink(trace_path);
}

TEST(recorder_refuses_bad_calls)
{
	temp_path();
	int rc = coil_trace_stop();
	if (rc == -ENOTSUP)
		TEST_SKIP("built with COIL_METRICS=OFF");
	ASSERT_EQ(rc, -EINVAL);
	ASSERT_EQ(coil_trace_flush(), -EINVAL);
	ASSERT_EQ(coil_trace_start(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_trace_start("", NULL), -EINVAL);
	ASSERT_EQ(coil_trace_start_file(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_trace_start("/nonexistent-dir/trace.json", NULL), -ENOENT);
	ASSERT(!coil_trace_active());
	start_or_skip(trace_path, NULL);
	ASSERT_EQ(coil_trace_start(trace_path, NULL), -EBUSY);
	ASSERT_EQ(coil_trace_start_file(stderr, NULL), -EBUSY);
	ASSERT_EQ(coil_trace_stop(), 0); /* nothing ran: no events */
	ASSERT_EQ(coil_trace_stop(), -EINVAL);
	jv_t *doc = load_trace(trace_path);
	ASSERT_EQ(events(doc)->n, 1); /* the process's name */
	jv_free(doc);
	unlink(trace_path);
}

static int small_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	for (int i = 0; i < 20; i++) {
		coil_task_t *t;
		ASSERT_EQ(coil_spawn(&t, fib_task, (void *)(intptr_t)3, NULL), 0);
		ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
		coil_task_detach(t);
	}
	return 0;
}

static void run_small(void)
{
	int rc = coil_run(small_main, NULL, NULL, NULL);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
}

TEST(stopped_recorder_records_nothing)
{
	temp_path();
	/* Never started: running writes nothing anywhere. */
	run_small();
	struct stat st;
	ASSERT_EQ(stat(trace_path, &st), 0);
	ASSERT_EQ(st.st_size, 0);
	start_or_skip(trace_path, NULL);
	run_small();
	ASSERT_GT(coil_trace_stop(), 0);
	ASSERT_EQ(stat(trace_path, &st), 0);
	off_t size = st.st_size;
	run_small();
	ASSERT_EQ(stat(trace_path, &st), 0);
	ASSERT_EQ(st.st_size, size);
	ASSERT(!coil_trace_active());
	unlink(trace_path);
}

TEST(flush_writes_while_the_trace_goes_on)
{
	temp_path();
	FILE *f = fopen(trace_path, "w");
	ASSERT(f != NULL);
	int rc = coil_trace_start_file(f, NULL);
	if (rc == -ENOTSUP)
		TEST_SKIP("built with COIL_METRICS=OFF");
	ASSERT_EQ(rc, 0);
	run_small();
	int first = coil_trace_flush();
	ASSERT_GT(first, 0);
	ASSERT_EQ(coil_trace_flush(), 0); /* nothing new since */
	run_small();
	int total = coil_trace_stop();
	ASSERT_GT(total, first);
	ASSERT_EQ(fclose(f), 0); /* still ours: stop did not close it */
	jv_t *doc = load_trace(trace_path);
	ASSERT_EQ(get_num(get(doc, "otherData"), "events"), total);
	/* Two loops (coil_run makes one each time), each its own track. */
	ASSERT_EQ(track(doc, "loop 0"), 1000000);
	ASSERT_EQ(track(doc, "loop 1"), 1000001);
	ASSERT_GE(check_nesting(doc, 1000000), 41);
	jv_free(doc);
	unlink(trace_path);
}

TEST(event_limit_drops_and_counts)
{
	temp_path();
	coil_trace_opts_t o = { .size = sizeof(o), .max_events = 10 };
	start_or_skip(trace_path, &o);
	run_small();
	ASSERT_EQ(coil_trace_stop(), 10);
	jv_t *doc = load_trace(trace_path);
	ASSERT_EQ(get_num(get(doc, "otherData"), "events"), 10);
	ASSERT_GT(get_num(get(doc, "otherData"), "dropped"), 0);
	jv_free(doc);
	unlink(trace_path);
}

static void named_callback(void *arg)
{
	(*(int *)arg)++;
}

static int callbacks_main(void *arg, void **result)
{
	(void)result;
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_loop_call_soon(coil_get_running_loop(), named_callback, arg, NULL), 0);
	return coil_sleep(0);
}

TEST(callbacks_are_named_by_their_function)
{
	temp_path();
	start_or_skip(trace_path, NULL);
	int calls = 0;
	coil_spawn_opts_t so = { .name = "with \"quotes\" \\ and\ta tab" };
	coil_loop_t *loop;
	int rc = coil_new_event_loop(&loop);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	coil_task_t *t;
	ASSERT_EQ(coil_loop_create_task(loop, &t, callbacks_main, &calls, &so), 0);
	ASSERT_EQ(coil_loop_run_until_complete(loop, coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	ASSERT_EQ(coil_loop_close(loop), 0); /* freed before the trace ends */
	ASSERT_EQ(calls, 3);
	ASSERT_GT(coil_trace_stop(), 0);
	jv_t *doc = load_trace(trace_path);
	long tid = track(doc, "loop 0");
	ASSERT_EQ(tid, 1000000);
	size_t named = 0, task_steps = 0;
	const jv_t *evs = events(doc);
	for (size_t i = 0; i < evs->n; i++) {
		const jv_t *e = evs->items[i];
		const char *cat = get_str(e, "cat");
		if (cat && !strcmp(cat, "callback") && !strcmp(get_str(e, "name"), "named_callback"))
			named++;
		if (cat && !strcmp(cat, "task") &&
		    !strcmp(get_str(e, "name"), "with \"quotes\" \\ and\ta tab"))
			task_steps++;
	}
	ASSERT_EQ(named, 3);
	ASSERT_EQ(task_steps, 2);
	jv_free(doc);
	unlink(trace_path);
}

/* A task waits in recv() until another sends, 20 ms later. */
struct io_wait {
	int sv[2];
	ssize_t got;
};

static int sender_task(void *arg, void **result)
{
	struct io_wait *w = arg;
	(void)result;
	ASSERT_EQ(coil_sleep(0.02), 0);
	ASSERT_EQ(coil_send(w->sv[1], "hello", 5, 0, COIL_FOREVER), 5);
	return 0;
}

static int receiver_main(void *arg, void **result)
{
	struct io_wait *w = arg;
	(void)result;
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, sender_task, w, NULL), 0);
	char buf[16];
	w->got = coil_recv(w->sv[0], buf, sizeof(buf), 0, COIL_FOREVER);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	return 0;
}

TEST(io_waits_are_async_spans_naming_operation_fd_and_result)
{
	temp_path();
	start_or_skip(trace_path, NULL);
	struct io_wait w = { .got = -1 };
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, w.sv), 0);
	coil_runtime_opts_t opts;
	coil_runtime_opts_init(&opts);
	opts.workers = 2;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &opts);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_runtime_block_on(rt, receiver_main, &w, NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	ASSERT_EQ(w.got, 5);
	ASSERT_GT(coil_trace_stop(), 0);
	close(w.sv[0]);
	close(w.sv[1]);

	jv_t *doc = load_trace(trace_path);
	const jv_t *evs = events(doc);
	const jv_t *b = NULL, *e = NULL;
	for (size_t i = 0; i < evs->n; i++) {
		const jv_t *x = evs->items[i];
		const char *cat = get_str(x, "cat");
		if (!cat || strcmp(cat, "io") || strcmp(get_str(x, "name"), "recv"))
			continue;
		if (!strcmp(get_str(x, "ph"), "b")) {
			ASSERT(b == NULL); /* one recv waited */
			b = x;
		} else {
			ASSERT(e == NULL);
			e = x;
		}
	}
	ASSERT(b != NULL && e != NULL);
	ASSERT_STR_EQ(get_str(b, "id"), get_str(e, "id"));
	const jv_t *args = get(b, "args");
	ASSERT_EQ((int)get_num(args, "fd"), w.sv[0]);
	ASSERT_EQ((int)get_num(args, "result"), 5);
	ASSERT_GT(get_num(args, "task"), 0);
	const char *worker = get_str(args, "worker");
	ASSERT(worker && !strncmp(worker, "worker ", 7));
	/* On the track of the worker that waited, for the sender's 20 ms. */
	ASSERT_EQ((long)get_num(b, "tid"), (long)get_num(e, "tid"));
	ASSERT_EQ(track(doc, worker), (long)get_num(b, "tid"));
	ASSERT_GE(get_num(e, "ts") - get_num(b, "ts"), 15000);
	jv_free(doc);
	unlink(trace_path);
}

struct flusher {
	atomic_bool stop;
	long flushed;
};

static void *flusher_main(void *arg)
{
	struct flusher *fl = arg;
	while (!atomic_load(&fl->stop)) {
		int n = coil_trace_flush();
		ASSERT_GE(n, 0);
		fl->flushed += n;
	}
	return NULL;
}

TEST(flush_from_a_plain_thread_while_workers_record)
{
	temp_path();
	start_or_skip(trace_path, NULL);
	struct flusher fl = { .flushed = 0 };
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, flusher_main, &fl), 0);
	struct fib_run r = { .steal = { .worker = -1 } };
	run_fib_on_two_workers(&r);
	atomic_store(&fl.stop, true);
	pthread_join(th, NULL);
	int total = coil_trace_stop();
	ASSERT_GE(total, fl.flushed);
	jv_t *doc = load_trace(trace_path);
	ASSERT_EQ(get_num(get(doc, "otherData"), "events"), total);
	ASSERT_GE(count(doc, "X", "task", -1), 234);
	ASSERT_GE(check_nesting(doc, 0), 1);
	ASSERT_GE(check_nesting(doc, 1), 1);
	jv_free(doc);
	unlink(trace_path);
}

/* Spawns tasks that keep the other worker busy, then stops the trace from
 * inside this task while they run. */
static int stop_inside_main(void *arg, void **result)
{
	int *stopped = arg;
	(void)result;
	coil_task_t *t[8];
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(coil_spawn(&t[i], fib_task, (void *)(intptr_t)10, NULL), 0);
	/* At least one step has ended (and been recorded) once the first
	 * task is done; a yield is not enough: with the other worker holding
	 * the rest, it may not switch at all. */
	ASSERT_EQ(coil_await(coil_task_future(t[0]), NULL), 0);
	*stopped = coil_trace_stop();
	for (int i = 0; i < 8; i++) {
		ASSERT_EQ(coil_await(coil_task_future(t[i]), NULL), 0);
		coil_task_detach(t[i]);
	}
	return 0;
}

TEST(stop_from_a_task_while_other_workers_record)
{
	temp_path();
	start_or_skip(trace_path, NULL);
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	int stopped = -1;
	ASSERT_EQ(coil_runtime_block_on(rt, stop_inside_main, &stopped, NULL), 0);
	ASSERT_GT(stopped, 0);
	ASSERT(!coil_trace_active());
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	jv_t *doc = load_trace(trace_path);
	ASSERT_EQ(get_num(get(doc, "otherData"), "events"), stopped);
	ASSERT(track(doc, "worker 0") == 0 || track(doc, "worker 1") == 1);
	jv_free(doc);
	unlink(trace_path);
}

TEST_LIST(
	TEST_ENTRY(trace_of_parallel_fib_is_valid_with_a_track_per_worker),
	TEST_ENTRY(recorder_refuses_bad_calls),
	TEST_ENTRY(stopped_recorder_records_nothing),
	TEST_ENTRY(flush_writes_while_the_trace_goes_on),
	TEST_ENTRY(event_limit_drops_and_counts),
	TEST_ENTRY(callbacks_are_named_by_their_function),
	TEST_ENTRY(flush_from_a_plain_thread_while_workers_record),
	TEST_ENTRY(stop_from_a_task_while_other_workers_record),
	TEST_ENTRY(io_waits_are_async_spans_naming_operation_fd_and_result),
)
