/*
 * tests/test_aiter.c: the async iterator interface and the aitertools
 * (coil/aiter.h). The expected sequences are the examples of Python's
 * itertools documentation.
 */
#include <stdint.h>

#include "coil/coil.h"
#include "coil/aiter.h"
#include "coil/gen.h"
#include "test.h"

#define I(x) ((void *)(intptr_t)(x))
#define V(p) ((intptr_t)(p))

/* Runs fn as the main task on the virtual clock; skips without io_uring. */
static void run_main(coil_fn fn)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.virtual_clock = true;
	int rc = coil_run(fn, NULL, NULL, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
}

/* Declares a test whose body runs inside the main task. */
#define TASK_TEST(name)                                                 \
	static int name##_body(void);                                   \
	static int name##_main(void *arg, void **result)                \
	{                                                               \
		(void)arg;                                              \
		(void)result;                                           \
		return name##_body();                                   \
	}                                                               \
	TEST(name) { run_main(name##_main); }                           \
	static int name##_body(void)

/*
 * An iterator over the characters of a string, implemented the way a user
 * implements the interface; it counts the steps it was asked for, to check
 * how far the tools read.
 */
typedef struct {
	coil_aiter_t it;
	const char *s;
	int calls;
	int fail_at;  /* index at which to return -EIO once, or -1 */
} str_iter_t;

static int str_next(coil_aiter_t *it, void **value)
{
	str_iter_t *s = (str_iter_t *)it;
	s->calls++;
	if (s->fail_at == 0) {
		s->fail_at = -1;
		return -EIO;
	}
	if (s->fail_at > 0)
		s->fail_at--;
	if (!*s->s)
		return COIL_EDONE;
	*value = I(*s->s++);
	return 0;
}

static void str_destroy(coil_aiter_t *it)
{
	free(it);
}

static coil_aiter_t *chars(const char *s)
{
	str_iter_t *it = calloc(1, sizeof(*it));
	ASSERT(it);
	coil_aiter_init(&it->it, str_next, str_destroy);
	it->s = s;
	it->fail_at = -1;
	return &it->it;
}

/* Reads it to the end into a string of its characters. */
static void expect_str(coil_aiter_t *it, const char *want)
{
	char buf[128];
	size_t n = 0;
	void *v;
	int rc;
	COIL_AITER_FOR(v, it, rc) {
		ASSERT_LT(n, sizeof(buf) - 1);
		buf[n++] = (char)V(v);
	}
	buf[n] = 0;
	ASSERT_EQ(rc, COIL_EDONE);
	ASSERT_STR_EQ(buf, want);
}

/* Reads it to the end as integers. */
static void expect_ints(coil_aiter_t *it, const intptr_t *want, size_t n)
{
	void **items;
	size_t len;
	ASSERT_EQ(coil_alist(it, &items, &len), 0);
	ASSERT_EQ(len, n);
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(V(items[i]), want[i]);
	coil_alist_free(items);
}

#define EXPECT_INTS(it, ...)                                            \
	expect_ints((it), (const intptr_t[]){ __VA_ARGS__ },            \
		    sizeof((const intptr_t[]){ __VA_ARGS__ }) / sizeof(intptr_t))

/* Reads tuples of characters into "Ax By ...". */
static void expect_tuples(coil_aiter_t *it, const char *want)
{
	char buf[128];
	size_t n = 0;
	coil_atuple_t *t;
	int rc;
	COIL_AITER_FOR(t, it, rc) {
		if (n)
			buf[n++] = ' ';
		for (size_t i = 0; i < t->n; i++)
			buf[n++] = (char)V(t->v[i]);
		ASSERT_LT(n, sizeof(buf) - 8);
	}
	buf[n] = 0;
	ASSERT_EQ(rc, COIL_EDONE);
	ASSERT_STR_EQ(buf, want);
}

static intptr_t nums[] = { 1, 2, 3, 4, 5 };

static coil_aiter_t *ints(const intptr_t *a, size_t n)
{
	static void *store[8][16];
	static int next;
	void **items = store[next++ % 8];
	coil_aiter_t *it;
	ASSERT_LE(n, 16);
	for (size_t i = 0; i < n; i++)
		items[i] = I(a[i]);
	ASSERT_EQ(coil_aiter_from_array(&it, items, n), 0);
	return it;
}

#define INTS(...)                                                       \
	ints((const intptr_t[]){ __VA_ARGS__ },                         \
	     sizeof((const intptr_t[]){ __VA_ARGS__ }) / sizeof(intptr_t))

/* --- the interface and the adapters ----------------------------------- */

TASK_TEST(array_and_alist)
{
	coil_aiter_t *it = ints(nums, 5);
	EXPECT_INTS(it, 1, 2, 3, 4, 5);
	void *v = I(1);
	ASSERT_EQ(coil_aiter_next(it, &v), COIL_EDONE);
	ASSERT_PTR_EQ(v, NULL);
	coil_aiter_destroy(it);

	void **items;
	size_t len = 9;
	ASSERT_EQ(coil_aiter_from_array(&it, NULL, 0), 0);
	ASSERT_EQ(coil_alist(it, &items, &len), 0);
	ASSERT(items != NULL);
	ASSERT_EQ(len, 0);
	coil_alist_free(items);
	coil_aiter_destroy(it);

	/* More than the first allocation of alist holds. */
	coil_aiter_t *c, *s;
	ASSERT_EQ(coil_aiter_count(&c, 0, 1), 0);
	ASSERT_EQ(coil_aiter_islice(&s, c, 0, 100, 1), 0);
	ASSERT_EQ(coil_alist(s, &items, &len), 0);
	ASSERT_EQ(len, 100);
	ASSERT_EQ(V(items[99]), 99);
	coil_alist_free(items);
	coil_aiter_destroy(s);
	coil_aiter_destroy(c);
	return 0;
}

static int countdown(void *arg, void **value)
{
	int *n = arg;
	if (*n == 0)
		return COIL_EDONE;
	*value = I((*n)--);
	return 0;
}

TASK_TEST(plain_iterator_callback)
{
	int n = 3;
	coil_aiter_t *it;
	ASSERT_EQ(coil_aiter_from_fn(&it, countdown, &n), 0);
	EXPECT_INTS(it, 3, 2, 1);
	coil_aiter_destroy(it);
	return 0;
}

TASK_TEST(exhausted_stays_exhausted)
{
	coil_aiter_t *it = chars("A");
	str_iter_t *s = (str_iter_t *)it;
	expect_str(it, "A");
	ASSERT_EQ(s->calls, 2);
	ASSERT_EQ(coil_aiter_next(it, NULL), COIL_EDONE);
	ASSERT_EQ(s->calls, 2); /* not asked again */
	coil_aiter_destroy(it);
	return 0;
}

/* --- infinite iterators ----------------------------------------------- */

TASK_TEST(count_and_cycle)
{
	coil_aiter_t *c, *s, *src;
	ASSERT_EQ(coil_aiter_count(&c, 10, 5), 0);
	ASSERT_EQ(coil_aiter_islice(&s, c, 0, 3, 1), 0);
	EXPECT_INTS(s, 10, 15, 20);
	coil_aiter_destroy(s);
	coil_aiter_destroy(c);

	/* cycle('ABCD') --> A B C D A B C D ... */
	src = chars("ABCD");
	ASSERT_EQ(coil_aiter_cycle(&c, src), 0);
	ASSERT_EQ(coil_aiter_islice(&s, c, 0, 10, 1), 0);
	expect_str(s, "ABCDABCDAB");
	coil_aiter_destroy(s);
	coil_aiter_destroy(c);
	coil_aiter_destroy(src);
	src = chars("");
	ASSERT_EQ(coil_aiter_cycle(&c, src), 0);
	expect_str(c, "");
	coil_aiter_destroy(c);
	coil_aiter_destroy(src);
	return 0;
}

TASK_TEST(repeat)
{
	coil_aiter_t *r, *s;
	/* repeat(10, 3) --> 10 10 10 */
	ASSERT_EQ(coil_aiter_repeat(&r, I(10), 3), 0);
	EXPECT_INTS(r, 10, 10, 10);
	coil_aiter_destroy(r);
	ASSERT_EQ(coil_aiter_repeat(&r, I(7), COIL_AITER_NONE), 0);
	ASSERT_EQ(coil_aiter_islice(&s, r, 0, 4, 1), 0);
	EXPECT_INTS(s, 7, 7, 7, 7);
	coil_aiter_destroy(s);
	coil_aiter_destroy(r);
	ASSERT_EQ(coil_aiter_repeat(&r, I(7), -2), -EINVAL);
	return 0;
}

/* --- accumulate, chain, compress -------------------------------------- */

static int max_fn(void *arg, void *acc, void *v, void **out)
{
	(void)arg;
	/* A callback may await: it runs in the calling task. */
	int rc = coil_sleep(0);
	*out = V(acc) > V(v) ? acc : v;
	return rc;
}

TASK_TEST(accumulate)
{
	coil_aiter_t *src = ints(nums, 5), *a;
	/* accumulate([1,2,3,4,5]) --> 1 3 6 10 15 */
	ASSERT_EQ(coil_aiter_accumulate(&a, src, NULL, NULL), 0);
	EXPECT_INTS(a, 1, 3, 6, 10, 15);
	coil_aiter_destroy(a);
	coil_aiter_destroy(src);
	/* accumulate(data, max) --> 3 4 6 6 6 9 9 9 9 9 */
	src = INTS(3, 4, 6, 2, 1, 9, 0, 7, 5, 8);
	ASSERT_EQ(coil_aiter_accumulate(&a, src, max_fn, NULL), 0);
	EXPECT_INTS(a, 3, 4, 6, 6, 6, 9, 9, 9, 9, 9);
	coil_aiter_destroy(a);
	coil_aiter_destroy(src);
	return 0;
}

TASK_TEST(chain_and_compress)
{
	coil_aiter_t *srcs[2] = { chars("ABC"), chars("DEF") }, *c;
	/* chain('ABC', 'DEF') --> A B C D E F */
	ASSERT_EQ(coil_aiter_chain(&c, srcs, 2), 0);
	expect_str(c, "ABCDEF");
	coil_aiter_destroy(c);
	ASSERT_EQ(coil_aiter_chain(&c, NULL, 0), 0);
	expect_str(c, "");
	coil_aiter_destroy(c);
	coil_aiter_destroy(srcs[0]);
	coil_aiter_destroy(srcs[1]);

	/* compress('ABCDEF', [1,0,1,0,1,1]) --> A C E F */
	coil_aiter_t *data = chars("ABCDEF"), *sel = INTS(1, 0, 1, 0, 1, 1);
	ASSERT_EQ(coil_aiter_compress(&c, data, sel), 0);
	expect_str(c, "ACEF");
	coil_aiter_destroy(c);
	coil_aiter_destroy(data);
	coil_aiter_destroy(sel);
	return 0;
}

/* --- predicates ------------------------------------------------------- */

static int less_than(void *arg, void *v)
{
	return V(v) < V(arg);
}

static int is_odd(void *arg, void *v)
{
	(void)arg;
	return V(v) % 2 != 0;
}

TASK_TEST(dropwhile_takewhile_filter_filterfalse)
{
	coil_aiter_t *src, *t;
	/* dropwhile(lambda x: x<5, [1,4,6,3,8]) --> 6 3 8 */
	src = INTS(1, 4, 6, 3, 8);
	ASSERT_EQ(coil_aiter_dropwhile(&t, src, less_than, I(5)), 0);
	EXPECT_INTS(t, 6, 3, 8);
	coil_aiter_destroy(t);
	coil_aiter_destroy(src);
	/* takewhile(lambda x: x<5, [1,4,6,3,8]) --> 1 4 */
	src = INTS(1, 4, 6, 3, 8);
	ASSERT_EQ(coil_aiter_takewhile(&t, src, less_than, I(5)), 0);
	EXPECT_INTS(t, 1, 4);
	coil_aiter_destroy(t);
	coil_aiter_destroy(src);
	/* filter(odd, range(10)) --> 1 3 5 7 9; filter(None, ...) */
	src = INTS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
	ASSERT_EQ(coil_aiter_filter(&t, src, is_odd, NULL), 0);
	EXPECT_INTS(t, 1, 3, 5, 7, 9);
	coil_aiter_destroy(t);
	coil_aiter_destroy(src);
	src = INTS(0, 1, 0, 2);
	ASSERT_EQ(coil_aiter_filter(&t, src, NULL, NULL), 0);
	EXPECT_INTS(t, 1, 2);
	coil_aiter_destroy(t);
	coil_aiter_destroy(src);
	/* filterfalse(lambda x: x<5, [1,4,6,3,8]) --> 6 8 */
	src = INTS(1, 4, 6, 3, 8);
	ASSERT_EQ(coil_aiter_filterfalse(&t, src, less_than, I(5)), 0);
	EXPECT_INTS(t, 6, 8);
	coil_aiter_destroy(t);
	coil_aiter_destroy(src);
	return 0;
}

/* --- map, starmap ----------------------------------------------------- */

static int square_slowly(void *arg, void *v, void **out)
{
	(void)arg;
	int rc = coil_sleep(1);
	*out = I(V(v) * V(v));
	return rc;
}

static int ipow(void *arg, void *const *args, size_t n, void **out)
{
	(void)arg;
	if (n != 2)
		return -EINVAL;
	intptr_t r = 1;
	for (intptr_t i = 0; i < V(args[1]); i++)
		r *= V(args[0]);
	*out = I(r);
	return 0;
}

TASK_TEST(map_and_starmap)
{
	coil_aiter_t *src = INTS(1, 2, 3), *m;
	double t0 = coil_loop_time(NULL);
	ASSERT_EQ(coil_aiter_map(&m, src, square_slowly, NULL), 0);
	EXPECT_INTS(m, 1, 4, 9);
	ASSERT_DBL_NEAR(coil_loop_time(NULL) - t0, 3.0, 1e-6);
	coil_aiter_destroy(m);
	coil_aiter_destroy(src);

	/* starmap(pow, [(2,5), (3,2), (10,3)]) --> 32 9 1000 */
	void *a[] = { I(2), I(5) }, *b[] = { I(3), I(2) }, *c[] = { I(10), I(3) };
	coil_atuple_t tuples[] = { { 2, a }, { 2, b }, { 2, c } };
	void *items[] = { &tuples[0], &tuples[1], &tuples[2] };
	ASSERT_EQ(coil_aiter_from_array(&src, items, 3), 0);
	ASSERT_EQ(coil_aiter_starmap(&m, src, ipow, NULL), 0);
	EXPECT_INTS(m, 32, 9, 1000);
	coil_aiter_destroy(m);
	coil_aiter_destroy(src);
	return 0;
}

/* --- groupby ---------------------------------------------------------- */

static int lower(void *arg, void *v, void **out)
{
	(void)arg;
	intptr_t c = V(v);
	*out = I(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	return 0;
}

/* Writes "key:values " for each group, reading at most `max` of each. */
static void expect_groups(coil_aiter_t *gb, size_t max, const char *want)
{
	char buf[128];
	size_t n = 0;
	coil_agroup_t *g;
	int rc;
	COIL_AITER_FOR(g, gb, rc) {
		buf[n++] = (char)V(g->key);
		buf[n++] = ':';
		void *v;
		for (size_t i = 0; i < max && coil_aiter_next(g->group, &v) == 0; i++)
			buf[n++] = (char)V(v);
		buf[n++] = ' ';
		ASSERT_LT(n, sizeof(buf) - 32);
	}
	buf[n] = 0;
	ASSERT_EQ(rc, COIL_EDONE);
	ASSERT_STR_EQ(buf, want);
}

TASK_TEST(groupby)
{
	coil_aiter_t *src, *gb;
	/* [k for k, g in groupby('AAAABBBCCDAABBB')] --> A B C D A B */
	src = chars("AAAABBBCCDAABBB");
	ASSERT_EQ(coil_aiter_groupby(&gb, src, NULL, NULL, NULL), 0);
	expect_groups(gb, 0, "A: B: C: D: A: B: ");
	coil_aiter_destroy(gb);
	coil_aiter_destroy(src);
	/* [list(g) for k, g in groupby('AAAABBBCCD')] --> AAAA BBB CC D */
	src = chars("AAAABBBCCD");
	ASSERT_EQ(coil_aiter_groupby(&gb, src, NULL, NULL, NULL), 0);
	expect_groups(gb, 100, "A:AAAA B:BBB C:CC D:D ");
	coil_aiter_destroy(gb);
	coil_aiter_destroy(src);
	/* A key function; groups read only in part are skipped. */
	src = chars("aAbBBcC");
	ASSERT_EQ(coil_aiter_groupby(&gb, src, lower, NULL, NULL), 0);
	expect_groups(gb, 1, "a:a b:b c:c ");
	coil_aiter_destroy(gb);
	coil_aiter_destroy(src);
	return 0;
}

/* --- islice ----------------------------------------------------------- */

static void expect_slice(int64_t start, int64_t stop, int64_t step,
			 const char *want)
{
	coil_aiter_t *src = chars("ABCDEFG"), *s;
	ASSERT_EQ(coil_aiter_islice(&s, src, start, stop, step), 0);
	expect_str(s, want);
	coil_aiter_destroy(s);
	coil_aiter_destroy(src);
}

TASK_TEST(islice)
{
	expect_slice(0, 2, 1, "AB");                  /* islice('ABCDEFG', 2) */
	expect_slice(2, 4, 1, "CD");                  /* (2, 4) */
	expect_slice(2, COIL_AITER_NONE, 1, "CDEFG"); /* (2, None) */
	expect_slice(0, COIL_AITER_NONE, 2, "ACEG");  /* (0, None, 2) */
	/* It reads nothing past stop - 1. */
	coil_aiter_t *src = chars("ABCDEFG"), *s;
	ASSERT_EQ(coil_aiter_islice(&s, src, 0, 2, 1), 0);
	expect_str(s, "AB");
	ASSERT_EQ(((str_iter_t *)src)->calls, 2);
	coil_aiter_destroy(s);
	ASSERT_EQ(coil_aiter_islice(&s, src, -1, 2, 1), -EINVAL);
	ASSERT_PTR_EQ(s, NULL);
	ASSERT_EQ(coil_aiter_islice(&s, src, 0, -5, 1), -EINVAL);
	ASSERT_EQ(coil_aiter_islice(&s, src, 0, 2, 0), -EINVAL);
	coil_aiter_destroy(src);
	return 0;
}

/* --- tee -------------------------------------------------------------- */

TASK_TEST(tee)
{
	coil_aiter_t *src = chars("ABC"), *t[3];
	void *v;
	ASSERT_EQ(coil_aiter_tee(t, 3, src), 0);
	/* One runs ahead (buffering), one follows, one is dropped midway. */
	expect_str(t[0], "ABC");
	ASSERT_EQ(coil_aiter_next(t[2], &v), 0);
	ASSERT_EQ(V(v), 'A');
	coil_aiter_destroy(t[2]);
	ASSERT_EQ(coil_aiter_next(t[1], &v), 0);
	ASSERT_EQ(V(v), 'A');
	expect_str(t[1], "BC");
	ASSERT_EQ(((str_iter_t *)src)->calls, 4); /* each value read once */
	coil_aiter_destroy(t[0]);
	coil_aiter_destroy(t[1]);
	coil_aiter_destroy(src);

	/* Interleaved, and destroyed before reading everything. */
	src = chars("XYZ");
	ASSERT_EQ(coil_aiter_tee(t, 2, src), 0);
	ASSERT_EQ(coil_aiter_next(t[0], &v), 0);
	ASSERT_EQ(coil_aiter_next(t[1], &v), 0);
	ASSERT_EQ(coil_aiter_next(t[1], &v), 0);
	ASSERT_EQ(V(v), 'Y');
	coil_aiter_destroy(t[1]);
	coil_aiter_destroy(t[0]);
	ASSERT_EQ(coil_aiter_tee(t, 0, src), 0);
	ASSERT_EQ(coil_aiter_tee(NULL, 2, src), -EINVAL);
	coil_aiter_destroy(src);
	return 0;
}

/* --- zip, zip_longest, product, enumerate ----------------------------- */

TASK_TEST(zip_and_zip_longest)
{
	coil_aiter_t *s[2] = { chars("ABCD"), chars("xy") }, *z;
	/* zip('ABCD', 'xy') --> Ax By */
	ASSERT_EQ(coil_aiter_zip(&z, s, 2), 0);
	expect_tuples(z, "Ax By");
	coil_aiter_destroy(z);
	coil_aiter_destroy(s[0]);
	coil_aiter_destroy(s[1]);
	ASSERT_EQ(coil_aiter_zip(&z, NULL, 0), 0);
	expect_tuples(z, "");
	coil_aiter_destroy(z);

	/* zip_longest('ABCD', 'xy', fillvalue='-') --> Ax By C- D- */
	s[0] = chars("ABCD");
	s[1] = chars("xy");
	ASSERT_EQ(coil_aiter_zip_longest(&z, s, 2, I('-')), 0);
	expect_tuples(z, "Ax By C- D-");
	coil_aiter_destroy(z);
	coil_aiter_destroy(s[0]);
	coil_aiter_destroy(s[1]);
	return 0;
}

TASK_TEST(product)
{
	coil_aiter_t *s[2] = { chars("ABCD"), chars("xy") }, *p;
	/* product('ABCD', 'xy') --> Ax Ay Bx By Cx Cy Dx Dy */
	ASSERT_EQ(coil_aiter_product(&p, s, 2), 0);
	expect_tuples(p, "Ax Ay Bx By Cx Cy Dx Dy");
	coil_aiter_destroy(p);
	coil_aiter_destroy(s[0]);
	coil_aiter_destroy(s[1]);
	/* An empty factor empties the product; product() is one (). */
	s[0] = chars("AB");
	s[1] = chars("");
	ASSERT_EQ(coil_aiter_product(&p, s, 2), 0);
	expect_tuples(p, "");
	coil_aiter_destroy(p);
	coil_aiter_destroy(s[0]);
	coil_aiter_destroy(s[1]);
	void *v;
	ASSERT_EQ(coil_aiter_product(&p, NULL, 0), 0);
	ASSERT_EQ(coil_aiter_next(p, &v), 0);
	ASSERT_EQ(((coil_atuple_t *)v)->n, 0);
	ASSERT_EQ(coil_aiter_next(p, &v), COIL_EDONE);
	coil_aiter_destroy(p);
	return 0;
}

TASK_TEST(enumerate)
{
	/* enumerate('abc', 1) --> (1, 'a') (2, 'b') (3, 'c') */
	coil_aiter_t *src = chars("abc"), *e;
	coil_atuple_t *t;
	int rc;
	intptr_t i = 1;
	ASSERT_EQ(coil_aiter_enumerate(&e, src, 1), 0);
	COIL_AITER_FOR(t, e, rc) {
		ASSERT_EQ(t->n, 2);
		ASSERT_EQ(V(t->v[0]), i);
		ASSERT_EQ(V(t->v[1]), 'a' + i - 1);
		i++;
	}
	ASSERT_EQ(rc, COIL_EDONE);
	ASSERT_EQ(i, 4);
	coil_aiter_destroy(e);
	coil_aiter_destroy(src);
	return 0;
}

/* --- generators, errors, concurrency, cancellation -------------------- */

/* The seed's ticker(delay, to) as a generator. */
static int ticker(void *arg, void **result)
{
	(void)result;
	for (intptr_t i = 0; i < V(arg); i++) {
		int rc = coil_gen_yield(I(i), NULL);
		if (rc)
			return rc;
		if ((rc = coil_sleep(1)) != 0)
			return rc;
	}
	return 0;
}

TASK_TEST(async_comprehension_over_a_generator)
{
	/* [i async for i in ticker(1, 5) if i % 2] --> [1, 3] */
	coil_gen_t *g;
	coil_aiter_t *odd;
	double t0 = coil_loop_time(NULL);
	ASSERT_EQ(coil_gen_create(&g, ticker, I(5), NULL), 0);
	ASSERT_EQ(coil_aiter_filter(&odd, coil_gen_aiter(g), is_odd, NULL), 0);
	EXPECT_INTS(odd, 1, 3);
	ASSERT_DBL_NEAR(coil_loop_time(NULL) - t0, 5.0, 1e-6);
	coil_aiter_destroy(odd);
	coil_aiter_destroy(coil_gen_aiter(g)); /* does nothing */
	coil_gen_destroy(g);
	return 0;
}

TASK_TEST(an_error_passes_through_and_the_tool_goes_on)
{
	coil_aiter_t *src = chars("AB"), *m, *sl;
	void *v;
	((str_iter_t *)src)->fail_at = 1;
	ASSERT_EQ(coil_aiter_islice(&sl, src, 0, COIL_AITER_NONE, 1), 0);
	ASSERT_EQ(coil_aiter_map(&m, sl, lower, NULL), 0);
	ASSERT_EQ(coil_aiter_next(m, &v), 0);
	ASSERT_EQ(V(v), 'a');
	ASSERT_EQ(coil_aiter_next(m, &v), -EIO);
	ASSERT_PTR_EQ(v, NULL);
	ASSERT_EQ(coil_aiter_next(m, &v), 0);
	ASSERT_EQ(V(v), 'b');
	ASSERT_EQ(coil_aiter_next(m, &v), COIL_EDONE);
	coil_aiter_destroy(m);
	coil_aiter_destroy(sl);
	coil_aiter_destroy(src);
	return 0;
}

static int step_tool(void *arg, void **result)
{
	return coil_aiter_next(arg, result);
}

TASK_TEST(one_step_at_a_time_and_deferred_destroy)
{
	coil_aiter_t *src = INTS(1, 2, 3), *m;
	coil_task_t *t;
	ASSERT_EQ(coil_aiter_map(&m, src, square_slowly, NULL), 0);
	ASSERT_EQ(coil_spawn(&t, step_tool, m, NULL), 0);
	ASSERT_EQ(coil_sleep(0.5), 0);
	/* The task is suspended in the map's callback. */
	ASSERT_EQ(coil_aiter_next(m, NULL), COIL_EINVALSTATE);
	coil_aiter_destroy(m);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), COIL_ECLOSED);
	coil_task_detach(t);
	coil_aiter_destroy(src);
	return 0;
}

static int slow_pred(void *arg, void *v)
{
	(void)v;
	int *rc = arg;
	*rc = coil_sleep(10);
	return *rc ? *rc : 1;
}

static int drain(void *arg, void **result)
{
	(void)result;
	void **items;
	size_t len;
	return coil_alist(arg, &items, &len);
}

TASK_TEST(cancellation_inside_a_callback)
{
	coil_aiter_t *src = INTS(1, 2), *f;
	coil_task_t *t;
	int pred_rc = 0;
	ASSERT_EQ(coil_aiter_filter(&f, src, slow_pred, &pred_rc), 0);
	ASSERT_EQ(coil_spawn(&t, drain, f, NULL), 0);
	ASSERT_EQ(coil_sleep(1), 0);
	coil_task_cancel(t, NULL);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), -ECANCELED);
	coil_task_detach(t);
	ASSERT_EQ(pred_rc, -ECANCELED);
	ASSERT_EQ(coil_loop_timer_count(coil_get_running_loop()), 0);
	coil_aiter_destroy(f);
	coil_aiter_destroy(src);
	return 0;
}

TEST(bad_input_is_refused)
{
	coil_aiter_t *it = NULL, *src = chars("A");
	void **items = NULL;
	size_t len;
	ASSERT_EQ(coil_aiter_next(NULL, NULL), -EINVAL);
	coil_aiter_destroy(NULL);
	ASSERT_EQ(coil_aiter_from_array(NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_aiter_from_array(&it, NULL, 3), -EINVAL);
	ASSERT_EQ(coil_aiter_from_fn(&it, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_alist(NULL, &items, &len), -EINVAL);
	ASSERT_EQ(coil_alist(src, NULL, &len), -EINVAL);
	coil_alist_free(NULL);
	ASSERT_EQ(coil_aiter_count(NULL, 0, 1), -EINVAL);
	ASSERT_EQ(coil_aiter_cycle(&it, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_accumulate(&it, NULL, NULL, NULL), -EINVAL);
	coil_aiter_t *bad[2] = { src, NULL };
	ASSERT_EQ(coil_aiter_chain(&it, bad, 2), -EINVAL);
	ASSERT_EQ(coil_aiter_chain(&it, NULL, 1), -EINVAL);
	ASSERT_EQ(coil_aiter_compress(&it, src, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_filter(&it, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_map(&it, src, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_starmap(&it, src, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_groupby(&it, NULL, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_zip(&it, bad, 2), -EINVAL);
	ASSERT_EQ(coil_aiter_zip_longest(&it, bad, 2, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_product(&it, bad, 2), -EINVAL);
	ASSERT_EQ(coil_aiter_enumerate(&it, NULL, 0), -EINVAL);
	ASSERT_PTR_EQ(it, NULL);
	coil_aiter_destroy(src);
}

TEST_LIST(
	TEST_ENTRY(array_and_alist),
	TEST_ENTRY(plain_iterator_callback),
	TEST_ENTRY(exhausted_stays_exhausted),
	TEST_ENTRY(count_and_cycle),
	TEST_ENTRY(repeat),
	TEST_ENTRY(accumulate),
	TEST_ENTRY(chain_and_compress),
	TEST_ENTRY(dropwhile_takewhile_filter_filterfalse),
	TEST_ENTRY(map_and_starmap),
	TEST_ENTRY(groupby),
	TEST_ENTRY(islice),
	TEST_ENTRY(tee),
	TEST_ENTRY(zip_and_zip_longest),
	TEST_ENTRY(product),
	TEST_ENTRY(enumerate),
	TEST_ENTRY(async_comprehension_over_a_generator),
	TEST_ENTRY(an_error_passes_through_and_the_tool_goes_on),
	TEST_ENTRY(one_step_at_a_time_and_deferred_destroy),
	TEST_ENTRY(cancellation_inside_a_callback),
	TEST_ENTRY(bad_input_is_refused)
)
