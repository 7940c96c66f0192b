/*
 * The wolfSSL this build compiled against and links is the one configured with
 * -DSFMTLS_WOLFSSL (tests/unit/CMakeLists.txt passes SFMTLS_WOLFSSL_BUILD, "system"
 * or "fast", and SFMTLS_WOLFSSL_VERSION, the version of Debian's libwolfssl-dev):
 *
 * - system: Debian's headers (no SP assembly, no AES-NI) and Debian's shared library.
 * - fast (scripts/build-wolfssl): headers with SP x86_64 assembly, Intel assembly and
 *   AES-NI, and the library linked into the program, not libwolfssl.so.
 *
 * Both must keep the features the server relies on (Debian's --enable-distro) and
 * report Debian's version at run time. Each case is named test_wolfssl_build_<claim>.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdbool.h>
#include <string.h>

/** One preprocessor symbol of wolfssl/options.h and whether the headers define it. */
typedef struct {
    const char *name; /**< The symbol. */
    bool defined;     /**< Whether the headers the tests compiled against define it. */
} t_option;

/** A t_option for the symbol x, defined or not (d, one of the T_ values below). */
#define T_OPTION(x, d) \
    {                  \
#x, d          \
    }

/* Whether the headers define each speed option of the fast build. */
#ifdef WOLFSSL_SP_X86_64_ASM
#define T_SP_ASM true
#else
#define T_SP_ASM false
#endif
#ifdef WOLFSSL_AESNI
#define T_AESNI true
#else
#define T_AESNI false
#endif
#ifdef USE_INTEL_SPEEDUP
#define T_INTEL true
#else
#define T_INTEL false
#endif
#ifdef WOLFSSL_HAVE_SP_ECC
#define T_SP_ECC true
#else
#define T_SP_ECC false
#endif

/** True when this is the fast build. */
static bool is_fast(void)
{
    return strcmp(SFMTLS_WOLFSSL_BUILD, "fast") == 0;
}

/** The speed options are in the headers exactly when the build is fast. */
static void test_wolfssl_build_speed_options_match_the_build(void **state)
{
    (void)state;
    const t_option options[] = {
        T_OPTION(WOLFSSL_SP_X86_64_ASM, T_SP_ASM),
        T_OPTION(WOLFSSL_AESNI, T_AESNI),
        T_OPTION(USE_INTEL_SPEEDUP, T_INTEL),
        T_OPTION(WOLFSSL_HAVE_SP_ECC, T_SP_ECC),
    };
    assert_true(strcmp(SFMTLS_WOLFSSL_BUILD, "system") == 0 || is_fast());
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        if (options[i].defined != is_fast())
            fail_msg("%s is %s in the headers of a %s build", options[i].name,
                     options[i].defined ? "defined" : "not defined", SFMTLS_WOLFSSL_BUILD);
    }
}

/** Both builds have the features of Debian's build that the server uses. */
static void test_wolfssl_build_keeps_debian_features(void **state)
{
    (void)state;
#if !defined(OPENSSL_ALL) || !defined(OPENSSL_EXTRA) || !defined(SESSION_CERTS) ||                       \
    !defined(WOLFSSL_ALWAYS_VERIFY_CB) || !defined(WOLFSSL_VERIFY_CB_ALL_CERTS) || !defined(HAVE_CRL) || \
    !defined(HAVE_SESSION_TICKET) || !defined(HAVE_EX_DATA) || !defined(WOLFSSL_TLS13) ||                \
    !defined(KEEP_PEER_CERT) || !defined(WOLFSSL_CERT_GEN) || !defined(HAVE_PKCS11)
    fail_msg("a feature of Debian's wolfSSL build is missing from the headers");
#endif
    assert_true(wolfSSL_Init() == WOLFSSL_SUCCESS);
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLS_server_method());
    assert_non_null(ctx);
    wolfSSL_CTX_free(ctx);
    wolfSSL_Cleanup();
}

/** The library reports Debian's version, the one its headers name too. */
static void test_wolfssl_build_library_is_debians_version(void **state)
{
    (void)state;
    assert_string_equal(wolfSSL_lib_version(), SFMTLS_WOLFSSL_VERSION);
    assert_string_equal(LIBWOLFSSL_VERSION_STRING, SFMTLS_WOLFSSL_VERSION);
}

/** The fast build is linked into the program; the system build is Debian's libwolfssl.so. */
static void test_wolfssl_build_links_the_configured_library(void **state)
{
    (void)state;
    Dl_info info;
    const char *(*fn)(void) = wolfSSL_lib_version;
    void *addr;
    memcpy(&addr, &fn, sizeof(addr));
    assert_int_not_equal(dladdr(addr, &info), 0);
    assert_non_null(info.dli_fname);
    bool shared = strstr(info.dli_fname, "libwolfssl.so") != NULL;
    if (shared == is_fast())
        fail_msg("wolfSSL_lib_version comes from %s in a %s build", info.dli_fname, SFMTLS_WOLFSSL_BUILD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wolfssl_build_speed_options_match_the_build),
        cmocka_unit_test(test_wolfssl_build_keeps_debian_features),
        cmocka_unit_test(test_wolfssl_build_library_is_debians_version),
        cmocka_unit_test(test_wolfssl_build_links_the_configured_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
