/* org: the fixture's organization block and the release labels of versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "org.h"

static void test_org_version_labels_follow_three_releases_a_year(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"31.0", "Summer '14"}, {"32.0", "Winter '15"}, {"33.0", "Spring '15"},
        {"64.0", "Summer '25"}, {"65.0", "Winter '26"}, {"66.0", "Spring '26"},
        {"67.0", "Summer '26"}, {"68.0", "Winter '27"}, {"30.0", "Spring '14"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char label[24];
        assert_int_equal(sfm_org_version_label(cases[i][0], label, sizeof(label)), 0);
        assert_string_equal(label, cases[i][1]);
    }
    char label[24];
    assert_true(sfm_org_version_label("64.5", label, sizeof(label)) < 0);
    assert_true(sfm_org_version_label("v64.0", label, sizeof(label)) < 0);
    assert_true(sfm_org_version_label("64.0x", label, sizeof(label)) < 0);
}

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/sfmtls-org-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_org_loads_the_bundled_default(void **state)
{
    (void)state;
    sfm_org *org = NULL;
    char err[4096];
    assert_int_equal(sfm_org_load(&org, SFMTLS_SOURCE_DIR "/fixtures/default-org.json", err, sizeof(err)), 0);
    assert_string_equal(org->id, "00D000000000001EAA");
    assert_int_equal(org->n_versions, 37);
    assert_string_equal(org->versions[0].version, "31.0");
    assert_string_equal(org->versions[36].label, "Summer '26");
    sfm_org_unref(org);
}

static void test_org_reports_every_problem_with_its_path(void **state)
{
    (void)state;
    char *path = write_tmp("{\"organization\": {\"id\": \"001x\", \"name\": 7,"
                           " \"apiVersions\": [\"64.0\", \"sixty\"]}}");
    sfm_org *org = NULL;
    char err[4096];
    assert_true(sfm_org_load(&org, path, err, sizeof(err)) < 0);
    assert_null(org);
    assert_non_null(strstr(err, "$.organization.id"));
    assert_non_null(strstr(err, "$.organization.name"));
    assert_non_null(strstr(err, "$.organization.apiVersions[1]"));
    assert_non_null(strstr(err, path));
    unlink(path);
    free(path);
}

static void test_org_syntax_error_names_the_line(void **state)
{
    (void)state;
    char *path = write_tmp("{\n  \"organization\": {\n    \"id\": ,\n  }\n}\n");
    sfm_org *org = NULL;
    char err[4096];
    assert_true(sfm_org_load(&org, path, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "line 3"));
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_org_version_labels_follow_three_releases_a_year),
        cmocka_unit_test(test_org_loads_the_bundled_default),
        cmocka_unit_test(test_org_reports_every_problem_with_its_path),
        cmocka_unit_test(test_org_syntax_error_names_the_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
