// tests/cxx_headers.cc: the public headers compile as C++ (coil/coil.h
// includes them all) and the library is usable from C++.
#include <coil/coil.h>

#include <cstdio>

int main()
{
	void *res = nullptr;
	int rc = coil_run(
		[](void *, void **result) -> int {
			int err = coil_sleep(0);
			*result = reinterpret_cast<void *>(static_cast<intptr_t>(42));
			return err;
		},
		nullptr, &res, nullptr);
	if (rc == -ENOSYS || rc == -EPERM)
		return 77;
	if (rc != 0 || reinterpret_cast<intptr_t>(res) != 42) {
		std::fprintf(stderr, "coil_run from C++: %s\n", coil_strerror(rc));
		return 1;
	}
	return 0;
}
