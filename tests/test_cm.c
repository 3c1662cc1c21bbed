/* tests/test_cm.c: async context managers (coil/cm.h). */
#include "coil/coil.h"
#include "test.h"

struct res {
	int enters, exits, last_status, fail_enter;
};

static int res_enter(void *p)
{
	struct res *r = p;
	if (r->fail_enter)
		return -EBUSY;
	r->enters++;
	return 0;
}

static int res_exit(void *p, int status)
{
	struct res *r = p;
	r->exits++;
	r->last_status = status;
	/* An exit may await. */
	return coil_sleep(0);
}

static int leave_by_return(struct res *r)
{
	int rc;
	COIL_ASYNC_WITH(coil_cm_make(res_enter, res_exit, r), rc) {
		coil_with.status = -EIO;
		return -EIO;
	}
	return rc;
}

static int body(void *arg, void **result)
{
	(void)result;
	struct res *r = arg;
	int rc, ran = 0;
	COIL_ASYNC_WITH(coil_cm_make(res_enter, res_exit, r), rc) {
		ran++;
		ASSERT_EQ(r->exits, 0);
	}
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(ran, 1);
	ASSERT_EQ(r->exits, 1);
	ASSERT_EQ(leave_by_return(r), -EIO);
	ASSERT_EQ(r->exits, 2);
	ASSERT_EQ(r->last_status, -EIO);
	/* break leaves the with-block (the macro is a loop of its own), not
	 * the enclosing loop. */
	for (int i = 0; i < 3; i++) {
		COIL_ASYNC_WITH(coil_cm_make(res_enter, res_exit, r), rc) {
			if (i == 1)
				break;
			ran++;
		}
	}
	ASSERT_EQ(ran, 3);
	ASSERT_EQ(r->exits, 5);
	r->fail_enter = 1;
	ran = 0;
	COIL_ASYNC_WITH(coil_cm_make(res_enter, res_exit, r), rc)
		ran++;
	ASSERT_EQ(rc, -EBUSY);
	ASSERT_EQ(ran, 0);
	ASSERT_EQ(r->exits, 5);
	return 0;
}

TEST(exit_runs_on_every_way_out_of_the_block)
{
	struct res r = { 0 };
	int rc = coil_run(body, &r, NULL, NULL);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(r.enters, 5);
}

TEST_LIST(TEST_ENTRY(exit_runs_on_every_way_out_of_the_block))
