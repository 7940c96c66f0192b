# The wolfSSL every program links, as the target sfmtls::wolfssl, chosen by
# -DSFMTLS_WOLFSSL:
#   system (default)  Debian's libwolfssl-dev, found with pkg-config.
#   fast              Debian's source package of that same version, with
#                     Debian's options plus SP math with x86_64 assembly,
#                     Intel assembly and AES-NI, linked statically. Built by
#                     scripts/build-wolfssl into a cache shared by every build
#                     directory (~/.cache/sfmtls, $SFMTLS_CACHE_DIR); a few
#                     minutes the first time, a stamp check afterwards.
# Sets SFMTLS_WOLFSSL_VERSION: the version of Debian's libwolfssl-dev, which
# both builds must report at run time (tests/unit/test_wolfssl_build.c).

set(SFMTLS_WOLFSSL "system" CACHE STRING
    "wolfSSL to link: system (Debian's libwolfssl) or fast (Debian's source with SP/x86_64 asm and AES-NI, static)")
set_property(CACHE SFMTLS_WOLFSSL PROPERTY STRINGS system fast)
if(NOT SFMTLS_WOLFSSL MATCHES "^(system|fast)$")
  message(FATAL_ERROR "SFMTLS_WOLFSSL is '${SFMTLS_WOLFSSL}'; it must be system or fast")
endif()
# Replaced by SFMTLS_WOLFSSL (server/CMakeLists.txt derives the name from it).
unset(SFMTLS_WOLFSSL_BUILD CACHE)

add_library(sfmtls::wolfssl INTERFACE IMPORTED)

if(SFMTLS_WOLFSSL STREQUAL "system")
  pkg_check_modules(WOLFSSL REQUIRED IMPORTED_TARGET wolfssl)
  target_link_libraries(sfmtls::wolfssl INTERFACE PkgConfig::WOLFSSL)
  set(SFMTLS_WOLFSSL_VERSION "${WOLFSSL_VERSION}")
  return()
endif()

# fast: Debian's version, which the fast build must have too.
pkg_check_modules(WOLFSSL REQUIRED wolfssl)
set(SFMTLS_WOLFSSL_VERSION "${WOLFSSL_VERSION}")

set(wolfssl_script "${CMAKE_SOURCE_DIR}/scripts/build-wolfssl")
execute_process(COMMAND "${wolfssl_script}"
                OUTPUT_VARIABLE wolfssl_prefix
                OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE wolfssl_status)
if(NOT wolfssl_status EQUAL 0 OR NOT EXISTS "${wolfssl_prefix}/lib/libwolfssl.a")
  message(FATAL_ERROR "scripts/build-wolfssl failed (${wolfssl_status}); its messages are above")
endif()
file(READ "${wolfssl_prefix}/.sfmtls-complete" wolfssl_debian_version)
string(STRIP "${wolfssl_debian_version}" wolfssl_debian_version)
message(STATUS "wolfSSL: fast build of Debian's ${wolfssl_debian_version} in ${wolfssl_prefix}")

# A static libwolfssl needs what its pkg-config file lists for --static
# (scripts/build-wolfssl writes libtool's dependency_libs there).
set(wolfssl_pc "${wolfssl_prefix}/lib/pkgconfig/wolfssl.pc")
execute_process(COMMAND "${PKG_CONFIG_EXECUTABLE}" --modversion "${wolfssl_pc}"
                OUTPUT_VARIABLE wolfssl_fast_version OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE wolfssl_status)
execute_process(COMMAND "${PKG_CONFIG_EXECUTABLE}" --static --libs "${wolfssl_pc}"
                OUTPUT_VARIABLE wolfssl_pc_libs OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE wolfssl_status2)
if(NOT wolfssl_status EQUAL 0 OR NOT wolfssl_status2 EQUAL 0)
  message(FATAL_ERROR "pkg-config cannot read ${wolfssl_pc}")
endif()
if(NOT wolfssl_fast_version STREQUAL SFMTLS_WOLFSSL_VERSION)
  message(FATAL_ERROR "the fast wolfSSL is ${wolfssl_fast_version}, Debian's libwolfssl-dev is "
                      "${SFMTLS_WOLFSSL_VERSION}: delete ${wolfssl_prefix} and configure again")
endif()
separate_arguments(wolfssl_pc_libs UNIX_COMMAND "${wolfssl_pc_libs}")
set(wolfssl_link_deps)
foreach(wolfssl_flag ${wolfssl_pc_libs})
  if(NOT wolfssl_flag MATCHES "^-L" AND NOT wolfssl_flag STREQUAL "-lwolfssl")
    list(APPEND wolfssl_link_deps "${wolfssl_flag}")
  endif()
endforeach()

add_library(sfmtls_wolfssl_fast STATIC IMPORTED)
set_target_properties(sfmtls_wolfssl_fast PROPERTIES
  IMPORTED_LOCATION "${wolfssl_prefix}/lib/libwolfssl.a"
  INTERFACE_INCLUDE_DIRECTORIES "${wolfssl_prefix}/include"
  INTERFACE_LINK_LIBRARIES "${wolfssl_link_deps}")
target_link_libraries(sfmtls::wolfssl INTERFACE sfmtls_wolfssl_fast)

# Configure again when the cached build goes away or the recipe changes.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             "${wolfssl_script}" "${wolfssl_prefix}/.sfmtls-complete")
