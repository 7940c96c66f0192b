/*
 * policy: SPEC section 4 as a table. One case per row of SPEC's table and
 * the combinations around each row (the other listener, with and without a
 * certificate, the feature off, a neighbouring permission), so that any
 * change of behaviour shows as a failing case that names its row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "org.h"
#include "policy.h"

#define MTLS SFM_LISTENER_MTLS
#define STD  SFM_LISTENER_STANDARD

#define API_USER (SFM_PERM_API_ENABLED)
#define ENFORCE  (SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY | SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION)
#define ENF_UI   (SFM_PERM_API_ENABLED | SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION)
#define ADMIN    (SFM_PERM_API_ENABLED | SFM_PERM_VIEW_SETUP)
#define API_ONLY (SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY)

/* A good request: every check passes unless the case says otherwise. A case
 * overrides a field of OK_IN by naming it after it, hence: */
#pragma GCC diagnostic ignored "-Woverride-init"
#define OK_IN .version_known = 1, .session_valid = 1, .login = SFM_LOGIN_OK, .org_mutual_auth = 1

struct policy_case {
    const char *what;
    sfm_policy_input in;
    int row;
    const char *code;
    const char *status;
};

static const struct policy_case cases[] = {
    /* Row 1: a certificate that failed layer 1, on the mTLS listener. */
    {"1 expired cert, API",
     {MTLS, 1, SFM_L1_EXPIRED, 0, .kind = SFM_KIND_API, .perms = ADMIN, OK_IN},
     1,
     "CERTIFICATE_EXPIRED",
     "Mutual authentication failed"},
    {"1 self-signed cert, public path",
     {MTLS, 1, SFM_L1_SELF_SIGNED, 0, .kind = SFM_KIND_PUBLIC, OK_IN},
     1,
     "CERTIFICATE_SELF_SIGNED",
     "Mutual authentication failed"},
    {"1 untrusted cert, login by an Enforce user",
     {MTLS, 1, SFM_L1_UNTRUSTED, 1, .kind = SFM_KIND_LOGIN, .perms = ENFORCE, OK_IN},
     1,
     "CERTIFICATE_UNTRUSTED",
     "Mutual authentication failed"},
    {"1 wins over a bad session",
     {MTLS, 1, SFM_L1_REVOKED, 0, .kind = SFM_KIND_API, OK_IN, .session_valid = 0},
     1,
     "CERTIFICATE_REVOKED",
     "Mutual authentication failed"},
    {"1 wins over an unknown version",
     {MTLS, 1, SFM_L1_INVALID, 0, .kind = SFM_KIND_API, OK_IN, .version_known = 0},
     1,
     "CERTIFICATE_INVALID",
     "Mutual authentication failed"},
    {"1 not on the standard listener (no certificate reaches it)",
     {STD, 1, SFM_L1_EXPIRED, 0, .kind = SFM_KIND_API, .perms = ADMIN, OK_IN},
     12,
     "ALLOWED",
     "Success"},
    {"1 even with the feature off",
     {MTLS, 1, SFM_L1_NOT_YET_VALID, 0, .kind = SFM_KIND_API, .perms = ADMIN, OK_IN, .org_mutual_auth = 0},
     1,
     "CERTIFICATE_NOT_YET_VALID",
     "Mutual authentication failed"},
    {"public path, no certificate",
     {MTLS, 0, SFM_L1_OK, 0, .kind = SFM_KIND_PUBLIC, OK_IN},
     12,
     "ALLOWED",
     "Success"},

    /* Row 2: unknown API version. */
    {"2 unknown version, API",
     {STD, .kind = SFM_KIND_API, .perms = ADMIN, OK_IN, .version_known = 0},
     2,
     "NOT_FOUND",
     "Not found"},
    {"2 unknown version, login",
     {MTLS, 1, SFM_L1_OK, 1, .kind = SFM_KIND_LOGIN, OK_IN, .version_known = 0},
     2,
     "NOT_FOUND",
     "Not found"},
    {"2 wins over a bad session",
     {STD, .kind = SFM_KIND_API, OK_IN, .version_known = 0, .session_valid = 0},
     2,
     "NOT_FOUND",
     "Not found"},
    {"2 does not apply to the UI",
     {STD, .kind = SFM_KIND_UI, .perms = ADMIN, OK_IN, .version_known = 0},
     12,
     "ALLOWED",
     "Success"},

    /* Row 3: bad session. */
    {"3 bad session, API",
     {STD, .kind = SFM_KIND_API, .perms = ADMIN, OK_IN, .session_valid = 0},
     3,
     "INVALID_SESSION",
     "Session expired or invalid"},
    {"3 bad session, UI (frontdoor)",
     {MTLS, .kind = SFM_KIND_UI, OK_IN, .session_valid = 0},
     3,
     "INVALID_SESSION",
     "Session expired or invalid"},
    {"3 wins over Enforce on the standard listener",
     {STD, .kind = SFM_KIND_API, .perms = ENFORCE, OK_IN, .session_valid = 0},
     3,
     "INVALID_SESSION",
     "Session expired or invalid"},
    {"3 does not apply to a login",
     {STD, .kind = SFM_KIND_LOGIN, .perms = ADMIN, OK_IN, .session_valid = 0},
     12,
     "ALLOWED",
     "Success"},

    /* Row 4: bad credentials. */
    {"4 unknown user",
     {STD, .kind = SFM_KIND_LOGIN, OK_IN, .login = SFM_LOGIN_UNKNOWN_USER},
     4,
     "INVALID_LOGIN",
     "Invalid login"},
    {"4 wrong password",
     {MTLS, 1, SFM_L1_OK, 1, .kind = SFM_KIND_LOGIN, .perms = ADMIN, OK_IN, .login = SFM_LOGIN_BAD_PASSWORD},
     4,
     "INVALID_LOGIN",
     "Invalid password"},
    {"4 inactive user",
     {STD, .kind = SFM_KIND_LOGIN, .perms = ADMIN, OK_IN, .login = SFM_LOGIN_INACTIVE},
     4,
     "INVALID_LOGIN",
     "User is inactive"},
    {"4 wrong password in the UI login form",
     {STD, .kind = SFM_KIND_UI, .perms = ADMIN, OK_IN, .login = SFM_LOGIN_BAD_PASSWORD},
     4,
     "INVALID_LOGIN",
     "Invalid password"},
    {"4 in the UI wins over API-only (row 10)",
     {STD, .kind = SFM_KIND_UI, .perms = API_ONLY, OK_IN, .login = SFM_LOGIN_UNKNOWN_USER},
     4,
     "INVALID_LOGIN",
     "Invalid login"},
    {"4 wins over Enforce without certificate",
     {MTLS, .kind = SFM_KIND_LOGIN, .perms = ENFORCE, OK_IN, .login = SFM_LOGIN_BAD_PASSWORD},
     4,
     "INVALID_LOGIN",
     "Invalid password"},

    /* Row 5: security token missing. */
    {"5 token missing",
     {STD, .kind = SFM_KIND_LOGIN, .perms = ADMIN, OK_IN, .login = SFM_LOGIN_TOKEN_MISSING},
     5,
     "SECURITY_TOKEN_REQUIRED",
     "Failed: API security token required"},
    {"5 wins over Enforce on mTLS without certificate",
     {MTLS, .kind = SFM_KIND_LOGIN, .perms = ENFORCE, OK_IN, .login = SFM_LOGIN_TOKEN_MISSING},
     5,
     "SECURITY_TOKEN_REQUIRED",
     "Failed: API security token required"},

    /* Row 6: API not enabled for the user. */
    {"6 API call without ApiEnabled",
     {STD, .kind = SFM_KIND_API, .perms = SFM_PERM_VIEW_SETUP, OK_IN},
     6,
     "API_DISABLED",
     "Failed: API disabled"},
    {"6 login without ApiEnabled succeeds",
     {STD, .kind = SFM_KIND_LOGIN, .perms = 0, OK_IN},
     12,
     "ALLOWED",
     "Success"},
    {"6 UI without ApiEnabled is fine",
     {STD, .kind = SFM_KIND_UI, .perms = 0, OK_IN},
     12,
     "ALLOWED",
     "Success"},
    {"6 wins over Enforce on the standard listener",
     {STD, .kind = SFM_KIND_API, .perms = SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION, OK_IN},
     6,
     "API_DISABLED",
     "Failed: API disabled"},

    /* Row 7: Enforce user on the standard listener. */
    {"7 Enforce, API on standard",
     {STD, .kind = SFM_KIND_API, .perms = ENFORCE, OK_IN},
     7,
     "STANDARD_PORT",
     "Mutual authentication failed"},
    {"7 Enforce, UI on standard",
     {STD, .kind = SFM_KIND_UI, .perms = ENF_UI, OK_IN},
     7,
     "STANDARD_PORT",
     "Mutual authentication failed"},
    {"7 Enforce + API only, UI on standard: 7 before 10",
     {STD, .kind = SFM_KIND_UI, .perms = ENFORCE, OK_IN},
     7,
     "STANDARD_PORT",
     "Mutual authentication failed"},
    {"7 Enforce, login on standard succeeds",
     {STD, .kind = SFM_KIND_LOGIN, .perms = ENFORCE, OK_IN},
     12,
     "ALLOWED",
     "Success"},
    {"7 Enforce with the feature off",
     {STD, .kind = SFM_KIND_API, .perms = ENFORCE, OK_IN, .org_mutual_auth = 0},
     12,
     "ALLOWED",
     "Success"},
    {"7 without Enforce, API on standard",
     {STD, .kind = SFM_KIND_API, .perms = API_ONLY, OK_IN},
     12,
     "ALLOWED",
     "Success"},

    /* Row 8: Enforce user on mTLS without a certificate. */
    {"8 Enforce, API on mTLS, no cert",
     {MTLS, 0, SFM_L1_OK, 0, .kind = SFM_KIND_API, .perms = ENFORCE, OK_IN},
     8,
     "NO_CLIENT_CERTIFICATE",
     "Mutual authentication failed"},
    {"8 Enforce, login on mTLS, no cert",
     {MTLS, 0, SFM_L1_OK, 0, .kind = SFM_KIND_LOGIN, .perms = ENFORCE, OK_IN},
     8,
     "NO_CLIENT_CERTIFICATE",
     "Mutual authentication failed"},
    {"8 Enforce, UI on mTLS, no cert",
     {MTLS, 0, SFM_L1_OK, 0, .kind = SFM_KIND_UI, .perms = ENF_UI, OK_IN},
     8,
     "NO_CLIENT_CERTIFICATE",
     "Mutual authentication failed"},
    {"8 feature off",
     {MTLS, 0, SFM_L1_OK, 0, .kind = SFM_KIND_API, .perms = ENFORCE, OK_IN, .org_mutual_auth = 0},
     12,
     "ALLOWED",
     "Success"},
    {"8 without Enforce, no cert on mTLS",
     {MTLS, 0, SFM_L1_OK, 0, .kind = SFM_KIND_API, .perms = ADMIN, OK_IN},
     12,
     "ALLOWED",
     "Success"},

    /* Row 9: Enforce user on mTLS with a certificate that is not uploaded. */
    {"9 Enforce, API, cert not uploaded",
     {MTLS, 1, SFM_L1_OK, 0, .kind = SFM_KIND_API, .perms = ENFORCE, OK_IN},
     9,
     "CERTIFICATE_NOT_UPLOADED",
     "Mutual authentication failed"},
    {"9 Enforce, login, cert not uploaded",
     {MTLS, 1, SFM_L1_OK, 0, .kind = SFM_KIND_LOGIN, .perms = ENFORCE, OK_IN},
     9,
     "CERTIFICATE_NOT_UPLOADED",
     "Mutual authentication failed"},
    {"9 Enforce, API, cert uploaded",
     {MTLS, 1, SFM_L1_OK, 1, .kind = SFM_KIND_API, .perms = ENFORCE, OK_IN},
     12,
     "ALLOWED",
     "Success"},
    {"9 Enforce, login, cert uploaded",
     {MTLS, 1, SFM_L1_OK, 1, .kind = SFM_KIND_LOGIN, .perms = ENFORCE, OK_IN},
     12,
     "ALLOWED",
     "Success"},
    {"9 without Enforce, cert not uploaded",
     {MTLS, 1, SFM_L1_OK, 0, .kind = SFM_KIND_API, .perms = ADMIN, OK_IN},
     12,
     "ALLOWED",
     "Success"},
    {"9 feature off",
     {MTLS, 1, SFM_L1_OK, 0, .kind = SFM_KIND_API, .perms = ENFORCE, OK_IN, .org_mutual_auth = 0},
     12,
     "ALLOWED",
     "Success"},

    /* Row 10: API-only user in the UI. */
    {"10 API only, UI on standard",
     {STD, .kind = SFM_KIND_UI, .perms = API_ONLY, OK_IN},
     10,
     "API_ONLY_USER",
     "Failed: API-only user"},
    {"10 Enforce + API only, UI on mTLS with uploaded cert",
     {MTLS, 1, SFM_L1_OK, 1, .kind = SFM_KIND_UI, .perms = ENFORCE, OK_IN},
     10,
     "API_ONLY_USER",
     "Failed: API-only user"},
    {"10 API only, API call",
     {STD, .kind = SFM_KIND_API, .perms = API_ONLY, OK_IN},
     12,
     "ALLOWED",
     "Success"},
    {"10 API only, login", {STD, .kind = SFM_KIND_LOGIN, .perms = API_ONLY, OK_IN}, 12, "ALLOWED", "Success"},

    /* Row 11: limits needs ViewSetup. */
    {"11 limits without ViewSetup",
     {STD, .kind = SFM_KIND_API, .perms = API_USER, OK_IN, .needs_view_setup = 1},
     11,
     "INSUFFICIENT_ACCESS",
     "Insufficient access"},
    {"11 limits with ViewSetup",
     {STD, .kind = SFM_KIND_API, .perms = ADMIN, OK_IN, .needs_view_setup = 1},
     12,
     "ALLOWED",
     "Success"},
    {"11 Enforce on standard: 7 before 11",
     {STD, .kind = SFM_KIND_API, .perms = ENFORCE, OK_IN, .needs_view_setup = 1},
     7,
     "STANDARD_PORT",
     "Mutual authentication failed"},
    {"11 no ApiEnabled: 6 before 11",
     {STD, .kind = SFM_KIND_API, .perms = SFM_PERM_VIEW_SETUP, OK_IN, .needs_view_setup = 1},
     6,
     "API_DISABLED",
     "Failed: API disabled"},

    /* Row 12. */
    {"12 admin API call on mTLS with a good cert",
     {MTLS, 1, SFM_L1_OK, 0, .kind = SFM_KIND_API, .perms = ADMIN, OK_IN},
     12,
     "ALLOWED",
     "Success"},
    {"12 standard user in the UI",
     {STD, .kind = SFM_KIND_UI, .perms = API_USER, OK_IN},
     12,
     "ALLOWED",
     "Success"},
};

static void test_policy_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct policy_case *c = &cases[i];
        sfm_decision d = sfm_policy_decide(&c->in);
        const char *code = sfm_decision_code(&d);
        const char *status = sfm_decision_status(&d, c->in.login);
        if (d.row != c->row || strcmp(code, c->code) != 0 || strcmp(status, c->status) != 0 ||
            d.allowed != (c->row == 12)) {
            print_error("case \"%s\": want row %d %s \"%s\", got row %d %s \"%s\" (allowed %d)\n", c->what,
                        c->row, c->code, c->status, d.row, code, status, d.allowed);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* Every row of SPEC's table is reached by at least one case. */
static void test_policy_table_covers_every_row(void **state)
{
    (void)state;
    int seen[13] = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int row = sfm_policy_decide(&cases[i].in).row;
        assert_in_range(row, 1, 12);
        seen[row] = 1;
    }
    for (int row = 1; row <= 12; row++) {
        if (!seen[row])
            print_error("row %d has no case\n", row);
        assert_true(seen[row]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_table),
        cmocka_unit_test(test_policy_table_covers_every_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
