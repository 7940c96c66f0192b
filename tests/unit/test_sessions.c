/*
 * sessions: token shape and randomness, each kind's lifetime (access tokens
 * expire after inactivity and each use resets the timer; codes are good once
 * and for 15 minutes; refresh tokens last), revocation (a refresh token takes
 * its access tokens along), and many threads issuing and using at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>

#include "sessions.h"

#define ORG  "00D000000000001EAA"
#define T0   1700000000000LL
#define HOUR (3600 * 1000LL)

static sfm_session user(const char *id, const char *name)
{
    sfm_session s = {0};
    snprintf(s.user_id, sizeof(s.user_id), "%s", id);
    snprintf(s.username, sizeof(s.username), "%s", name);
    return s;
}

static void test_token_shape(void **state)
{
    (void)state;
    sfm_sessions *s = NULL;
    assert_int_equal(sfm_sessions_new(&s, ORG, 7200), 0);
    sfm_session u = user("005000000000001AAA", "a@b.c");
    char a[SFM_TOKEN_MAX], b[SFM_TOKEN_MAX];
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &u, NULL, T0, a), 0);
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &u, NULL, T0, b), 0);
    /* "<orgId15>!" and 86 characters of [A-Za-z0-9._], as Salesforce's look. */
    assert_int_equal(strlen(a), 15 + 1 + 86);
    assert_memory_equal(a, "00D000000000001!", 16);
    assert_int_equal(strspn(a + 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"), 86);
    assert_string_not_equal(a, b);
    /* Randomness: 64 tokens use (nearly) the whole alphabet in each position class. */
    int seen[128] = {0};
    for (int i = 0; i < 64; i++) {
        assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &u, NULL, T0, a), 0);
        for (const char *p = a + 16; *p; p++)
            seen[(unsigned char)*p] = 1;
    }
    int distinct = 0;
    for (int i = 0; i < 128; i++)
        distinct += seen[i];
    assert_int_equal(distinct, 64);
    assert_int_equal(sfm_sessions_count(s), 66);
    sfm_sessions_free(s);
}

static void test_access_expires_after_inactivity(void **state)
{
    (void)state;
    sfm_sessions *s = NULL;
    assert_int_equal(sfm_sessions_new(&s, ORG, 7200), 0);
    sfm_session u = user("005000000000001AAA", "a@b.c"), out;
    char t[SFM_TOKEN_MAX];
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &u, NULL, T0, t), 0);
    /* Used after 1h59m: alive, and the timer starts again [SF]. */
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, t, T0 + 2 * HOUR - 60000, &out), 0);
    assert_string_equal(out.user_id, "005000000000001AAA");
    assert_string_equal(out.username, "a@b.c");
    assert_int_equal(out.issued_ms, T0);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, t, T0 + 4 * HOUR - 120000, &out), 0);
    /* Two idle hours: gone, and gone for good. */
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, t, T0 + 6 * HOUR, &out), -ENOENT);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, t, T0 + 4 * HOUR, &out), -ENOENT);
    /* A token is only good as its own kind. */
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &u, NULL, T0, t), 0);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_REFRESH, t, T0, &out), -ENOENT);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_CODE, t, T0, &out), -ENOENT);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, t, T0, &out), 0);
    /* Junk: unknown, never a crash. */
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, "", T0, &out), -ENOENT);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, NULL, T0, &out), -ENOENT);
    char longer[400];
    memset(longer, 'A', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, longer, T0, &out), -ENOENT);
    sfm_sessions_free(s);
}

static void test_code_is_good_once_for_15_minutes(void **state)
{
    (void)state;
    sfm_sessions *s = NULL;
    assert_int_equal(sfm_sessions_new(&s, ORG, 7200), 0);
    sfm_session u = user("005000000000001AAA", "a@b.c"), out;
    snprintf(u.client_id, sizeof(u.client_id), "ck");
    snprintf(u.redirect_uri, sizeof(u.redirect_uri), "http://localhost/cb");
    char c[SFM_TOKEN_MAX];
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_CODE, &u, NULL, T0, c), 0);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_CODE, c, T0 + 60000, &out), 0);
    assert_string_equal(out.client_id, "ck");
    assert_string_equal(out.redirect_uri, "http://localhost/cb");
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_CODE, c, T0 + 60000, &out), -ENOENT);
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_CODE, &u, NULL, T0, c), 0);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_CODE, c, T0 + 15 * 60000, &out), -ENOENT);
    sfm_sessions_free(s);
}

static void test_revocation(void **state)
{
    (void)state;
    sfm_sessions *s = NULL;
    assert_int_equal(sfm_sessions_new(&s, ORG, 7200), 0);
    sfm_session u = user("005000000000001AAA", "a@b.c"), v = user("005000000000002AAA", "d@e.f"), out;
    char r[SFM_TOKEN_MAX], a1[SFM_TOKEN_MAX], a2[SFM_TOKEN_MAX], other[SFM_TOKEN_MAX];
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_REFRESH, &u, NULL, T0, r), 0);
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &u, r, T0, a1), 0);
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &u, r, T0, a2), 0);
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &v, NULL, T0, other), 0);
    /* A refresh token lasts: a year later it still works. */
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_REFRESH, r, T0 + 365 * 24 * HOUR, &out), 0);
    /* Revoking one access token ends that one only. */
    assert_int_equal(sfm_sessions_revoke(s, a1), 0);
    assert_int_equal(sfm_sessions_revoke(s, a1), -ENOENT);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, a1, T0, &out), -ENOENT);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, a2, T0, &out), 0);
    /* Revoking the refresh token ends the access tokens issued from it. */
    assert_int_equal(sfm_sessions_revoke(s, r), 0);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_REFRESH, r, T0, &out), -ENOENT);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, a2, T0, &out), -ENOENT);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, other, T0, &out), 0);
    /* By user; then everything. */
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &u, NULL, T0, a1), 0);
    sfm_sessions_revoke_user(s, "005000000000002AAA");
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, other, T0, &out), -ENOENT);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, a1, T0, &out), 0);
    sfm_sessions_clear(s);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, a1, T0, &out), -ENOENT);
    assert_int_equal(sfm_sessions_count(s), 0);
    sfm_sessions_free(s);
}

static void test_many_tokens_grow_and_stay_findable(void **state)
{
    (void)state;
    sfm_sessions *s = NULL;
    assert_int_equal(sfm_sessions_new(&s, ORG, 7200), 0);
    enum { N = 20000 };
    static char tokens[N][SFM_TOKEN_MAX];
    sfm_session u = user("005000000000001AAA", "a@b.c"), out;
    for (int i = 0; i < N; i++)
        assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &u, NULL, T0, tokens[i]), 0);
    assert_int_equal(sfm_sessions_count(s), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, tokens[i], T0 + 1, &out), 0);
    sfm_sessions_free(s);
}

static void test_table_is_bounded_and_drops_the_least_recently_used(void **state)
{
    (void)state;
    sfm_sessions *s = NULL;
    assert_int_equal(sfm_sessions_new(&s, ORG, 7200), 0);
    sfm_session u = user("005000000000001AAA", "a@b.c"), out;
    char first[SFM_TOKEN_MAX], kept[SFM_TOKEN_MAX], t[SFM_TOKEN_MAX];
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &u, NULL, T0, first), 0);
    assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &u, NULL, T0, kept), 0);
    /* A client stuck in a login loop: 150,000 logins, one a millisecond,
     * while another keeps using its session. */
    for (int i = 1; i <= 150000; i++) {
        assert_int_equal(sfm_sessions_issue(s, SFM_TOKEN_ACCESS, &u, NULL, T0 + i, t), 0);
        if (i % 1000 == 0)
            assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, kept, T0 + i, &out), 0);
    }
    assert_true(sfm_sessions_count(s) <= 131072);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, first, T0 + 150001, &out), -ENOENT);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, kept, T0 + 150001, &out), 0);
    assert_int_equal(sfm_sessions_use(s, SFM_TOKEN_ACCESS, t, T0 + 150001, &out), 0);
    sfm_sessions_free(s);
}

struct worker {
    sfm_sessions *s;
    int failures;
};

static void *churn(void *arg)
{
    struct worker *w = arg;
    sfm_session u = user("005000000000001AAA", "a@b.c"), out;
    char t[SFM_TOKEN_MAX];
    for (int i = 0; i < 3000; i++) {
        if (sfm_sessions_issue(w->s, SFM_TOKEN_ACCESS, &u, NULL, T0, t) != 0 ||
            sfm_sessions_use(w->s, SFM_TOKEN_ACCESS, t, T0, &out) != 0 ||
            (i % 3 == 0 && sfm_sessions_revoke(w->s, t)))
            w->failures++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    sfm_sessions *s = NULL;
    assert_int_equal(sfm_sessions_new(&s, ORG, 7200), 0);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){s, 0};
        assert_int_equal(pthread_create(&th[i], NULL, churn, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(sfm_sessions_count(s), 4 * 2000);
    sfm_sessions_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_shape),
        cmocka_unit_test(test_access_expires_after_inactivity),
        cmocka_unit_test(test_code_is_good_once_for_15_minutes),
        cmocka_unit_test(test_revocation),
        cmocka_unit_test(test_many_tokens_grow_and_stay_findable),
        cmocka_unit_test(test_table_is_bounded_and_drops_the_least_recently_used),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
