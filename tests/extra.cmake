# Tests beyond the tests/test_*.c executables, included by tests/CMakeLists.txt.

# install: installs this build into a scratch prefix and builds and runs a
# program against it through pkg-config and find_package(coil), checking the
# exported symbols and SONAME on the way (tests/install/run.sh). It needs the
# whole build done, and skips (77) in sanitizer builds.
add_test(NAME install
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/install/run.sh
          ${CMAKE_BINARY_DIR} ${CMAKE_CURRENT_BINARY_DIR}/install-scratch)
set_tests_properties(install PROPERTIES
  SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS "install;packaging")

# aarch64: the coroutine tests built for AArch64 and run under qemu-user, so
# that the AArch64 context switch is exercised on this x86-64 machine
# (tests/cross/aarch64.sh). Skips (77) without the cross tools; not run in
# sanitizer builds, which would only repeat it.
if(NOT COIL_SANITIZE)
  add_test(NAME aarch64
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cross/aarch64.sh
            ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/aarch64)
  set_tests_properties(aarch64 PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS "cross")
endif()

# gdb_unwind: gdb unwinds through the context switch (its CFI directives),
# from inside a task and from inside the switch (tests/gdb_unwind.sh).
# Release builds only: the sanitizers' runtimes get in gdb's way.
if(NOT COIL_SANITIZE)
  add_executable(unwind_target ${CMAKE_CURRENT_SOURCE_DIR}/unwind_target.c)
  target_compile_options(unwind_target PRIVATE -g -O1)
  target_link_libraries(unwind_target PRIVATE coil)
  add_test(NAME gdb_unwind COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/gdb_unwind.sh $<TARGET_FILE:unwind_target>)
  set_tests_properties(gdb_unwind PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()

# cxx_headers: the public headers compile as C++ and coil runs from C++.
add_executable(cxx_headers ${CMAKE_CURRENT_SOURCE_DIR}/cxx_headers.cc)
target_link_libraries(cxx_headers PRIVATE coil)
add_test(NAME cxx_headers COMMAND cxx_headers)
set_tests_properties(cxx_headers PROPERTIES SKIP_RETURN_CODE 77)

# gdb_tasks: tools/gdb/coil.py lists the tasks of a stopped program and of a
# core file of it, with what they wait for, and prints their stacks
# (tests/gdb_tasks.sh). Release builds only, as gdb_unwind.
if(NOT COIL_SANITIZE)
  add_executable(gdb_tasks_target ${CMAKE_CURRENT_SOURCE_DIR}/gdb_tasks_target.c)
  target_compile_options(gdb_tasks_target PRIVATE -g -O1)
  target_link_libraries(gdb_tasks_target PRIVATE coil)
  add_test(NAME gdb_tasks
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/gdb_tasks.sh $<TARGET_FILE:gdb_tasks_target>
            ${CMAKE_SOURCE_DIR}/tools/gdb/coil.py)
  set_tests_properties(gdb_tasks PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()
