/* tests/test_coro.c: coroutines (coil/coro.h) on their own. */
#include <stdint.h>

#include "coil/coil.h"
#include "test.h"

static int count_to(void *arg, void **result)
{
	intptr_t n = (intptr_t)arg;
	for (intptr_t i = 0; i < n; i++) {
		void *sent = NULL;
		int rc = coil_coro_yield((void *)i, &sent);
		if (rc)
			return rc;
	}
	*result = (void *)(n * 100);
	return 0;
}

TEST(resume_yields_values_then_done)
{
	coil_coro_t *c;
	ASSERT_EQ(coil_coro_create(&c, count_to, (void *)3, NULL), 0);
	void *v = NULL;
	for (intptr_t i = 0; i < 3; i++) {
		ASSERT_EQ(coil_coro_resume(c, NULL, &v), 0);
		ASSERT_EQ((intptr_t)v, i);
	}
	ASSERT_EQ(coil_coro_resume(c, NULL, &v), COIL_EDONE);
	ASSERT_EQ((intptr_t)v, 300);
	ASSERT_EQ(coil_coro_resume(c, NULL, &v), COIL_EINVALSTATE);
	coil_coro_destroy(c);
}

static coil_coro_t *observed;
static coil_coro_state_t seen_inside;

static int observe(void *arg, void **result)
{
	(void)arg;
	(void)result;
	seen_inside = coil_coro_state(observed);
	ASSERT_PTR_EQ(coil_coro_current(), observed);
	return coil_coro_yield(NULL, NULL);
}

TEST(states_through_a_lifetime)
{
	ASSERT_EQ(coil_coro_create(&observed, observe, NULL, NULL), 0);
	ASSERT_EQ(coil_coro_state(observed), COIL_CORO_CREATED);
	ASSERT_STR_EQ(coil_coro_state_name(coil_coro_state(observed)), "CORO_CREATED");
	ASSERT_EQ(coil_coro_resume(observed, NULL, NULL), 0);
	ASSERT_EQ(seen_inside, COIL_CORO_RUNNING);
	ASSERT_EQ(coil_coro_state(observed), COIL_CORO_SUSPENDED);
	ASSERT_EQ(coil_coro_resume(observed, NULL, NULL), COIL_EDONE);
	ASSERT_EQ(coil_coro_state(observed), COIL_CORO_CLOSED);
	ASSERT_STR_EQ(coil_coro_state_name(COIL_CORO_CLOSED), "CORO_CLOSED");
	ASSERT(coil_coro_current() == NULL);
	coil_coro_destroy(observed);
}

/* The averager of the seed: values are sent in, running averages out. */
static int averager(void *arg, void **result)
{
	(void)arg;
	(void)result;
	double total = 0, avg = 0;
	long count = 0;
	static double out;
	for (;;) {
		void *sent;
		int rc = coil_coro_yield(count ? &out : NULL, &sent);
		if (rc)
			return rc == COIL_ECLOSED ? 0 : rc;
		total += *(double *)sent;
		avg = total / (double)++count;
		out = avg;
	}
}

TEST(send_values_in)
{
	coil_coro_t *c;
	ASSERT_EQ(coil_coro_create(&c, averager, NULL, NULL), 0);
	void *v;
	ASSERT_EQ(coil_coro_resume(c, NULL, &v), 0);
	ASSERT(v == NULL);
	for (int i = 0; i <= 10; i++) {
		double d = i;
		ASSERT_EQ(coil_coro_resume(c, &d, &v), 0);
		ASSERT_DBL_NEAR(*(double *)v, i / 2.0, 1e-12);
	}
	ASSERT_EQ(coil_coro_close(c), 0);
	ASSERT_EQ(coil_coro_state(c), COIL_CORO_CLOSED);
	coil_coro_destroy(c);
}

static int catches(void *arg, void **result)
{
	(void)arg;
	int rc = coil_coro_yield(NULL, NULL);
	*result = (void *)(intptr_t)rc;
	rc = coil_coro_yield((void *)1, NULL);
	return rc;
}

TEST(throw_delivers_error_at_yield)
{
	coil_coro_t *c;
	ASSERT_EQ(coil_coro_create(&c, catches, NULL, NULL), 0);
	ASSERT_EQ(coil_coro_resume(c, NULL, NULL), 0);
	void *v = NULL;
	ASSERT_EQ(coil_coro_throw(c, -EIO, &v), 0);
	ASSERT_EQ((intptr_t)v, 1);
	/* The second throw is not caught: the coroutine ends with it. */
	ASSERT_EQ(coil_coro_throw(c, -EPIPE, &v), -EPIPE);
	ASSERT_EQ(coil_coro_state(c), COIL_CORO_CLOSED);
	ASSERT_EQ(coil_coro_throw(c, -EPIPE, &v), COIL_EINVALSTATE);
	ASSERT_EQ(coil_coro_throw(c, 5, &v), -EINVAL);
	coil_coro_destroy(c);
}

static int ran;

static int never(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ran = 1;
	return 0;
}

TEST(throw_or_close_before_start_never_runs)
{
	coil_coro_t *c;
	ASSERT_EQ(coil_coro_create(&c, never, NULL, NULL), 0);
	ASSERT_EQ(coil_coro_throw(c, -EIO, NULL), -EIO);
	ASSERT_EQ(coil_coro_state(c), COIL_CORO_CLOSED);
	coil_coro_destroy(c);
	ASSERT_EQ(coil_coro_create(&c, never, NULL, NULL), 0);
	ASSERT_EQ(coil_coro_close(c), 0);
	ASSERT_EQ(coil_coro_resume(c, NULL, NULL), COIL_EINVALSTATE);
	coil_coro_destroy(c);
	ASSERT_EQ(ran, 0);
}

static int cleanup_steps;

static int with_cleanup(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int rc = coil_coro_yield(NULL, NULL);
	if (rc == COIL_ECLOSED) {
		cleanup_steps++;
		/* Every further yield fails at once while closing. */
		if (coil_coro_yield(NULL, NULL) == COIL_ECLOSED)
			cleanup_steps++;
	}
	return rc;
}

TEST(close_runs_cleanup_and_reports_ignored_close)
{
	coil_coro_t *c;
	ASSERT_EQ(coil_coro_create(&c, with_cleanup, NULL, NULL), 0);
	ASSERT_EQ(coil_coro_resume(c, NULL, NULL), 0);
	/* It tried to yield while closing: Python's "ignored GeneratorExit". */
	ASSERT_EQ(coil_coro_close(c), COIL_EINVALSTATE);
	ASSERT_EQ(cleanup_steps, 2);
	ASSERT_EQ(coil_coro_state(c), COIL_CORO_CLOSED);
	ASSERT_EQ(coil_coro_close(c), 0);
	coil_coro_destroy(c);
}

static int dtor_calls;
static void count_dtor(void *p)
{
	(void)p;
	dtor_calls++;
}

static int returns_box(void *arg, void **result)
{
	*result = arg;
	return 0;
}

TEST(result_destructor_runs_unless_taken)
{
	static int box;
	coil_coro_opts_t o = { .result_dtor = count_dtor, .name = "boxer" };
	coil_coro_t *c;
	ASSERT_EQ(coil_coro_create(&c, returns_box, &box, &o), 0);
	ASSERT_STR_EQ(coil_coro_name(c), "boxer");
	ASSERT_EQ(coil_coro_resume(c, NULL, NULL), COIL_EDONE);
	coil_coro_destroy(c);
	ASSERT_EQ(dtor_calls, 1);
	ASSERT_EQ(coil_coro_create(&c, returns_box, &box, &o), 0);
	ASSERT_EQ(coil_coro_resume(c, NULL, NULL), COIL_EDONE);
	void *v = NULL;
	ASSERT_EQ(coil_coro_take_result(c, &v), 0);
	ASSERT_PTR_EQ(v, &box);
	coil_coro_destroy(c);
	ASSERT_EQ(dtor_calls, 1);
}

static int inner_gen(void *arg, void **result)
{
	(void)result;
	for (intptr_t i = 0; i < 3; i++)
		coil_coro_yield((void *)(i + (intptr_t)arg), NULL);
	return 0;
}

/* Delegation: re-yields every value of a nested coroutine. */
static int outer_gen(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_coro_t *in;
	if (coil_coro_create(&in, inner_gen, (void *)10, NULL))
		return -ENOMEM;
	void *v;
	int rc;
	while ((rc = coil_coro_resume(in, NULL, &v)) == 0)
		coil_coro_yield(v, NULL);
	coil_coro_destroy(in);
	return rc == COIL_EDONE ? 0 : rc;
}

TEST(nested_coroutines_delegate)
{
	coil_coro_t *c;
	ASSERT_EQ(coil_coro_create(&c, outer_gen, NULL, NULL), 0);
	void *v;
	for (intptr_t i = 0; i < 3; i++) {
		ASSERT_EQ(coil_coro_resume(c, NULL, &v), 0);
		ASSERT_EQ((intptr_t)v, 10 + i);
	}
	ASSERT_EQ(coil_coro_resume(c, NULL, &v), COIL_EDONE);
	coil_coro_destroy(c);
}

/* Tries to destroy itself while it runs, then yields. */
static int destroys_itself(void *arg, void **result)
{
	(void)result;
	coil_coro_t **self = arg;
	coil_coro_destroy(*self);
	return coil_coro_yield((void *)7, NULL);
}

TEST(destroy_of_a_running_coroutine_is_refused)
{
	coil_coro_t *c;
	void *v = NULL;
	ASSERT_EQ(coil_coro_create(&c, destroys_itself, &c, NULL), 0);
	ASSERT_EQ(coil_coro_resume(c, NULL, &v), 0);
	ASSERT_EQ((intptr_t)v, 7);
	ASSERT_EQ(coil_coro_state(c), COIL_CORO_SUSPENDED);
	coil_coro_destroy(c);
}

TEST(yield_outside_a_coroutine_is_refused)
{
	ASSERT_EQ(coil_coro_yield(NULL, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_coro_create(NULL, never, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_coro_resume(NULL, NULL, NULL), -EINVAL);
}

static int churn(void *arg, void **result)
{
	(void)result;
	volatile char buf[1024];
	buf[0] = (char)(intptr_t)arg;
	coil_coro_yield(NULL, NULL);
	return buf[0] == (char)(intptr_t)arg ? 0 : -EIO;
}

TEST(many_coroutines_reuse_stacks)
{
	enum { N = 2000 };
	static coil_coro_t *cs[N];
	for (int round = 0; round < 3; round++) {
		for (intptr_t i = 0; i < N; i++) {
			ASSERT_EQ(coil_coro_create(&cs[i], churn, (void *)i, NULL), 0);
			ASSERT_EQ(coil_coro_resume(cs[i], NULL, NULL), 0);
		}
		for (int i = 0; i < N; i++) {
			ASSERT_EQ(coil_coro_resume(cs[i], NULL, NULL), COIL_EDONE);
			coil_coro_destroy(cs[i]);
		}
	}
}

static int deep(int n)
{
	volatile char pad[512];
	pad[0] = (char)n;
	return n ? deep(n - 1) + pad[0] : 0;
}

static int overflows(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return deep(1 << 20);
}

TEST(stack_overflow_is_reported)
{
	if (getenv("COIL_VALGRIND"))
		TEST_SKIP("valgrind reports the overflow itself");
	int fds[2];
	ASSERT_EQ(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		coil_coro_opts_t o = { .name = "deep-diver", .stack_size = 32 * 1024 };
		coil_coro_t *c;
		coil_coro_create(&c, overflows, NULL, &o);
		coil_coro_resume(c, NULL, NULL);
		_exit(0);
	}
	close(fds[1]);
	char buf[512] = { 0 };
	size_t len = 0;
	ssize_t n;
	while ((n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fds[0]);
	int st;
	waitpid(pid, &st, 0);
	ASSERT(WIFSIGNALED(st));
	ASSERT_EQ(WTERMSIG(st), SIGABRT);
	ASSERT(strstr(buf, "coil: task deep-diver overflowed its 32 KiB stack") != NULL);
}

TEST_LIST(
	TEST_ENTRY(resume_yields_values_then_done),
	TEST_ENTRY(states_through_a_lifetime),
	TEST_ENTRY(send_values_in),
	TEST_ENTRY(throw_delivers_error_at_yield),
	TEST_ENTRY(throw_or_close_before_start_never_runs),
	TEST_ENTRY(close_runs_cleanup_and_reports_ignored_close),
	TEST_ENTRY(result_destructor_runs_unless_taken),
	TEST_ENTRY(destroy_of_a_running_coroutine_is_refused),
	TEST_ENTRY(nested_coroutines_delegate),
	TEST_ENTRY(yield_outside_a_coroutine_is_refused),
	TEST_ENTRY(many_coroutines_reuse_stacks),
	TEST_ENTRY(stack_overflow_is_reported))
