# cmake/install.cmake: the install step, included by the top-level
# CMakeLists.txt once the targets coil and coil_static exist.
#
# It installs the public headers, both libraries (with the libcoil.so ->
# libcoil.so.0 -> libcoil.so.0.1.0 links), a pkg-config file and a CMake
# package, so that consumers may use either
#
#   cc app.c $(pkg-config --cflags --libs coil)
#   cc app.c $(pkg-config --static --cflags --libs coil)    (with libcoil.a)
#   find_package(coil) + coil::coil or coil::coil_static
#
# tests/install/run.sh checks all of them against an installed tree.

include(CMakePackageConfigHelpers)

set(COIL_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/coil)
set(_coil_pkg_dir ${PROJECT_BINARY_DIR}/package)

# Headers: the whole directory, so that a new header needs no edit here.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/coil/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/coil
        FILES_MATCHING PATTERN "*.h")

install(TARGETS coil coil_static EXPORT coilTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# --- pkg-config ------------------------------------------------------------

set(COIL_PC_REQUIRES_PRIVATE "liburing")
if(COIL_JEMALLOC)
  string(APPEND COIL_PC_REQUIRES_PRIVATE " jemalloc")
endif()
set(COIL_PC_LIBS_PRIVATE "-lpthread")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(COIL_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(COIL_PC_LIBDIR "\${exec_prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(COIL_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(COIL_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# The prefix is only known at install time (`cmake --install --prefix`
# overrides the configured one), so the file is made in two passes: now,
# everything but the prefix, whose placeholder is written back unchanged;
# at install time, the prefix.
set(COIL_PC_PREFIX "@COIL_PC_PREFIX@")
configure_file(${CMAKE_CURRENT_LIST_DIR}/coil.pc.in ${_coil_pkg_dir}/coil.pc.tmpl @ONLY)
install(CODE "
  set(COIL_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${_coil_pkg_dir}/coil.pc.tmpl\" \"${_coil_pkg_dir}/coil.pc\" @ONLY)
")
install(FILES ${_coil_pkg_dir}/coil.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# --- CMake package ---------------------------------------------------------

# coil::coil_static names the imported targets PkgConfig::URING,
# Threads::Threads and, with jemalloc, PkgConfig::JEMALLOC in its link
# interface. Imported targets are not exported, so the config file makes
# them again before it loads the targets file. The pkg-config look-ups run in
# a function to keep their URING_* variables out of the consumer's scope; the
# imported targets they create are visible all the same.
if(COIL_JEMALLOC)
  set(COIL_CONFIG_JEMALLOC "_coil_find_pc(JEMALLOC jemalloc)")
else()
  set(COIL_CONFIG_JEMALLOC "# built without jemalloc")
endif()
file(CONFIGURE OUTPUT ${_coil_pkg_dir}/coilConfig.cmake @ONLY CONTENT [=[
# The CMake package of coil @PROJECT_VERSION@: find_package(coil) gives
# coil::coil (libcoil.so) and coil::coil_static (libcoil.a).

include(CMakeFindDependencyMacro)
find_dependency(Threads)
find_dependency(PkgConfig)

# libcoil.a links liburing (and jemalloc when built with it): make the
# PkgConfig:: targets its link interface names, unless they exist already.
set(_coil_missing "")
function(_coil_find_pc prefix module)
  if(NOT TARGET PkgConfig::${prefix})
    pkg_check_modules(${prefix} QUIET IMPORTED_TARGET ${module})
    if(NOT TARGET PkgConfig::${prefix})
      set(_coil_missing "${_coil_missing} ${module}" PARENT_SCOPE)
    endif()
  endif()
endfunction()
_coil_find_pc(URING liburing)
@COIL_CONFIG_JEMALLOC@
if(_coil_missing)
  set(coil_FOUND FALSE)
  set(coil_NOT_FOUND_MESSAGE
      "coil needs these pkg-config modules, not found:${_coil_missing}")
  unset(_coil_missing)
  return()
endif()
unset(_coil_missing)

include("${CMAKE_CURRENT_LIST_DIR}/coilTargets.cmake")
]=])

write_basic_package_version_file(${_coil_pkg_dir}/coilConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)

install(EXPORT coilTargets NAMESPACE coil:: FILE coilTargets.cmake
        DESTINATION ${COIL_INSTALL_CMAKEDIR})
install(FILES ${_coil_pkg_dir}/coilConfig.cmake ${_coil_pkg_dir}/coilConfigVersion.cmake
        DESTINATION ${COIL_INSTALL_CMAKEDIR})
