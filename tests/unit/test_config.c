/* config: flags, SFMTLS_* variables, and their errors (SPEC section 8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

/* Parses a NULL-terminated argv; *action (may be NULL) gets what to do. */
static int parse_action(sfm_config *c, char **argv, char **envp, enum sfm_config_action *action,
                        char err[SFM_CONFIG_ERR_LEN])
{
    int argc = 0;
    while (argv[argc])
        argc++;
    enum sfm_config_action ignored;
    return sfm_config_parse(c, argc, argv, envp, action ? action : &ignored, err);
}

static int parse(sfm_config *c, char **argv, char **envp, char err[SFM_CONFIG_ERR_LEN])
{
    return parse_action(c, argv, envp, NULL, err);
}

static void test_config_defaults_match_spec(void **state)
{
    (void)state;
    char *argv[] = {"sfmtls-server", NULL}, *envp[] = {NULL};
    sfm_config c;
    char err[SFM_CONFIG_ERR_LEN];
    enum sfm_config_action action = SFM_CONFIG_HELP;
    assert_int_equal(parse_action(&c, argv, envp, &action, err), 0);
    assert_int_equal(action, SFM_CONFIG_RUN);
    assert_int_equal(c.mtls_port, 8443);
    assert_int_equal(c.port, 8444);
    assert_string_equal(c.state_dir, ".sfmtls");
    assert_string_equal(c.fixtures, "fixtures/default-org.json");
    assert_int_equal(c.bind.n, 2);
    assert_string_equal(c.bind.v[0], "127.0.0.1");
    assert_string_equal(c.bind.v[1], "::1");
    assert_int_equal(c.cert_failure, SFM_CERT_FAILURE_PAGE);
    assert_int_equal(c.client_cert, SFM_CLIENT_CERT_OPTIONAL);
    assert_int_equal(c.handshake_timeout, 10);
    assert_int_equal(c.idle_timeout, 60);
    assert_int_equal(c.session_timeout, 7200);
    assert_int_equal(c.history_max, 100000);
    assert_int_equal(c.mutual_auth_failed_status, 401);
    assert_string_equal(c.public_host, "localhost");
    assert_int_equal(c.public_port, 0);
    assert_int_equal(c.server_key, SFM_SERVER_KEY_RSA);
    assert_int_equal(c.log_format, SFM_LOG_TEXT);
    assert_int_equal(c.allow_no_eku, 0);
    assert_int_equal(c.ephemeral, 0);
    assert_int_equal(c.reset, 0);
    assert_null(c.tls_cert);
    assert_null(c.tls_key);
    assert_null(c.admin_token);
    assert_int_equal(c.trust.n, 0);
    assert_int_equal(c.crl.n, 0);
    assert_true(c.workers >= 1); /* the number of cores */
    assert_int_equal(c.bind_is_default, 1);
    assert_int_equal(c.fixtures_is_default, 1);
    sfm_config_cleanup(&c);
}

static void test_config_help_and_version_are_actions_not_runs(void **state)
{
    (void)state;
    char *help[] = {"s", "--port=1", "--help", NULL}, *version[] = {"s", "--version", NULL}, *envp[] = {NULL};
    sfm_config c;
    char err[SFM_CONFIG_ERR_LEN];
    enum sfm_config_action action = SFM_CONFIG_RUN;
    assert_int_equal(parse_action(&c, help, envp, &action, err), 0);
    assert_int_equal(action, SFM_CONFIG_HELP);
    sfm_config_cleanup(&c);
    action = SFM_CONFIG_RUN;
    assert_int_equal(parse_action(&c, version, envp, &action, err), 0);
    assert_int_equal(action, SFM_CONFIG_VERSION);
    sfm_config_cleanup(&c);
}

static void test_config_flags_win_over_variables(void **state)
{
    (void)state;
    char *argv[] = {"s", "--mtls-port=9443", "--cert-failure", "alert", "--allow-no-eku", NULL};
    char *envp[] = {"SFMTLS_MTLS_PORT=1",
                    "SFMTLS_PORT=9444",
                    "SFMTLS_TRUST=/a.pem:/b.pem",
                    "SFMTLS_BIND=10.0.0.1,::",
                    "SFMTLS_EPHEMERAL=true",
                    "OTHER=x",
                    NULL};
    sfm_config c;
    char err[SFM_CONFIG_ERR_LEN];
    assert_int_equal(parse(&c, argv, envp, err), 0);
    assert_int_equal(c.mtls_port, 9443);
    assert_int_equal(c.port, 9444);
    assert_int_equal(c.cert_failure, SFM_CERT_FAILURE_ALERT);
    assert_int_equal(c.allow_no_eku, 1);
    assert_int_equal(c.ephemeral, 1);
    assert_int_equal(c.trust.n, 2);
    assert_string_equal(c.trust.v[0], "/a.pem");
    assert_string_equal(c.trust.v[1], "/b.pem");
    assert_int_equal(c.bind.n, 2);
    assert_string_equal(c.bind.v[0], "10.0.0.1");
    assert_string_equal(c.bind.v[1], "::");
    assert_int_equal(c.bind_is_default, 0);
    sfm_config_cleanup(&c);
}

static void test_config_repeated_flag_replaces_the_variables_list(void **state)
{
    (void)state;
    char *argv[] = {"s", "--trust", "/x.pem", "--trust=/y.pem", NULL};
    char *envp[] = {"SFMTLS_TRUST=/a.pem:/b.pem", NULL};
    sfm_config c;
    char err[SFM_CONFIG_ERR_LEN];
    assert_int_equal(parse(&c, argv, envp, err), 0);
    assert_int_equal(c.trust.n, 2);
    assert_string_equal(c.trust.v[0], "/x.pem");
    assert_string_equal(c.trust.v[1], "/y.pem");
    sfm_config_cleanup(&c);
}

struct bad {
    char *arg;
    char *env;
    const char *names;
};

static void test_config_bad_input_names_the_flag(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {"--nope", NULL, "--nope"},
        {"--mtls-port=70000", NULL, "--mtls-port"},
        {"--cert-failure=maybe", NULL, "--cert-failure"},
        {"--mutual-auth-failed-status=402", NULL, "--mutual-auth-failed-status"},
        {"--ephemeral=yes", NULL, "--ephemeral"},
        {"--workers=0", NULL, "--workers"},
        {NULL, "SFMTLS_IDLE_TIMEOUT=soon", "SFMTLS_IDLE_TIMEOUT"},
        {"stray", NULL, "stray"},
        {"--port", NULL, "--port"}, /* no value */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[] = {"s", cases[i].arg, NULL}, *envp[] = {cases[i].env, NULL};
        sfm_config c;
        char err[SFM_CONFIG_ERR_LEN] = "";
        assert_true(parse(&c, argv, envp, err) < 0);
        if (!strstr(err, cases[i].names))
            fail_msg("case %zu: error '%s' does not name '%s'", i, err, cases[i].names);
    }
}

static void test_config_tls_cert_needs_its_key(void **state)
{
    (void)state;
    char *argv[] = {"s", "--tls-cert", "/c.pem", NULL}, *envp[] = {NULL};
    sfm_config c;
    char err[SFM_CONFIG_ERR_LEN];
    assert_true(parse(&c, argv, envp, err) < 0);
    assert_non_null(strstr(err, "--tls-key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults_match_spec),
        cmocka_unit_test(test_config_help_and_version_are_actions_not_runs),
        cmocka_unit_test(test_config_flags_win_over_variables),
        cmocka_unit_test(test_config_repeated_flag_replaces_the_variables_list),
        cmocka_unit_test(test_config_bad_input_names_the_flag),
        cmocka_unit_test(test_config_tls_cert_needs_its_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
