/*
 * tests/install/hello.c: a program built against an installed coil, by
 * tests/install/run.sh, with pkg-config (shared and static) and with
 * find_package(coil) (coil::coil and coil::coil_static).
 *
 * It includes only <coil/coil.h>, runs a task that yields once and returns
 * a result, and checks that the library and the headers agree on the
 * version. Exits 0 on success, 77 when io_uring cannot be set up here.
 */
#include <coil/coil.h>

#include <stdint.h>
#include <stdio.h>

static int hello_task(void *arg, void **result)
{
	int rc = coil_sleep(0);

	if (rc < 0)
		return rc;
	*result = (void *)((intptr_t)arg + 1);
	return 0;
}

int main(void)
{
	const int want = COIL_VERSION_MAJOR * 10000 + COIL_VERSION_MINOR * 100 +
			 COIL_VERSION_PATCH;
	void *result = NULL;
	int rc;

	if (coil_version() != want) {
		fprintf(stderr, "hello: coil_version() is %d, the headers say %d\n",
			coil_version(), want);
		return 1;
	}
	rc = coil_run(hello_task, (void *)(intptr_t)41, &result, NULL);
	if (rc == -ENOSYS || rc == -EPERM) {
		fprintf(stderr, "hello: io_uring unavailable (%s): skipped\n",
			coil_strerror(rc));
		return 77;
	}
	if (rc != 0) {
		fprintf(stderr, "hello: coil_run failed: %s\n", coil_strerror(rc));
		return 1;
	}
	if ((intptr_t)result != 42) {
		fprintf(stderr, "hello: result %ld, expected 42\n",
			(long)(intptr_t)result);
		return 1;
	}
	printf("hello from coil %d: result %ld\n", coil_version(),
	       (long)(intptr_t)result);
	return 0;
}
