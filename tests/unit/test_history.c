/* history: entries queued by requests are stored in order, trimmed, counted and flushed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "history.h"
#include "store.h"
#include "support.h"

static sfm_history *new_history(sfm_store *st, long max)
{
    sfm_history *h = NULL;
    assert_int_equal(sfm_history_new(&h, st, max), 0);
    assert_non_null(h);
    return h;
}

static void fill(sfm_history_entry *e, const char *username, const char *endpoint)
{
    memset(e, 0, sizeof(*e));
    e->time_ms = 1795772467123;
    snprintf(e->listener, sizeof(e->listener), "mtls");
    snprintf(e->remote_addr, sizeof(e->remote_addr), "::1");
    snprintf(e->username, sizeof(e->username), "%s", username);
    snprintf(e->endpoint, sizeof(e->endpoint), "%s", endpoint);
    e->allowed = 1;
    snprintf(e->reason, sizeof(e->reason), "ALLOWED");
    snprintf(e->status, sizeof(e->status), "Success");
}

static void add(sfm_history *h, const char *endpoint)
{
    sfm_history_entry e;
    fill(&e, "u@acme.test", endpoint);
    sfm_history_add(h, &e);
}

static json_t *query(sfm_history *h, size_t limit)
{
    sfm_history_filter f = {.limit = limit};
    char *text = NULL;
    assert_int_equal(sfm_history_query_json(h, &f, &text), 0);
    json_t *a = json_loads(text, 0, NULL);
    free(text);
    assert_true(json_is_array(a));
    return a;
}

static const char *endpoint_at(json_t *a, size_t i)
{
    return json_string_value(json_object_get(json_array_get(a, i), "endpoint"));
}

/* Rows in the database file, read by a second connection (as another process would). */
static long stored_rows(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM history", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    long n = (long)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

static void test_history_entry_is_visible_at_once_newest_first(void **state)
{
    (void)state;
    sfm_store *st = t_store_open(NULL);
    sfm_history *h = new_history(st, 1000);
    add(h, "GET /first");
    json_t *a = query(h, 100); /* no wait: the query writes the queue first */
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(endpoint_at(a, 0), "GET /first");
    json_decref(a);

    add(h, "GET /second");
    add(h, "GET /third");
    a = query(h, 100);
    assert_int_equal(json_array_size(a), 3);
    assert_string_equal(endpoint_at(a, 0), "GET /third");
    assert_string_equal(endpoint_at(a, 1), "GET /second");
    assert_string_equal(endpoint_at(a, 2), "GET /first");
    json_decref(a);
    assert_int_equal(sfm_history_dropped(h), 0);
    sfm_history_free(h);
    sfm_store_close(st);
}

static void test_history_writer_stores_without_a_query(void **state)
{
    t_tmpdb *t = *state;
    sfm_store *st = t_store_open(t->path);
    sfm_history *h = new_history(st, 1000);
    add(h, "GET /tick");
    /* The writer's tick is 100 ms; allow a slow (sanitizer) build ample time. */
    long n = 0;
    for (int i = 0; i < 100 && n == 0; i++) {
        usleep(20 * 1000);
        n = stored_rows(t->path);
    }
    assert_int_equal(n, 1);
    sfm_history_free(h);
    sfm_store_close(st);
}

#define THREADS         4
#define ADDS_PER_THREAD 2500
#define PACE_EVERY      50
#define PACE_SLEEP_US   2000

typedef struct adder {
    sfm_history *h;
    int id;
} adder;

static void *adder_main(void *arg)
{
    adder *a = arg;
    sfm_history_entry e;
    char endpoint[64];
    for (int i = 0; i < ADDS_PER_THREAD; i++) {
        snprintf(endpoint, sizeof(endpoint), "GET /t%d/%05d", a->id, i);
        fill(&e, "u@acme.test", endpoint);
        sfm_history_add(a->h, &e);
        /* Requests arrive at a rate (a worker spends tens of microseconds on each), not in
         * one burst bigger than the queue: 4 threads here add about 100,000 entries a second. */
        if (i % PACE_EVERY == PACE_EVERY - 1)
            usleep(PACE_SLEEP_US);
    }
    return NULL;
}

static void test_history_concurrent_adds_are_all_stored_in_order(void **state)
{
    t_tmpdb *t = *state;
    sfm_store *st = t_store_open(t->path);
    sfm_history *h = new_history(st, 100000);
    pthread_t th[THREADS];
    adder args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (adder){.h = h, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, adder_main, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    json_t *a = query(h, 1000); /* flushes */
    json_decref(a);
    assert_int_equal(sfm_history_dropped(h), 0);
    assert_int_equal(stored_rows(t->path), THREADS * ADDS_PER_THREAD);

    /* Each thread's entries are stored in the order it added them. */
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(t->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT endpoint FROM history ORDER BY seq", -1, &s, NULL),
                     SQLITE_OK);
    int next[THREADS] = {0};
    while (sqlite3_step(s) == SQLITE_ROW) {
        int id = -1, seq = -1;
        assert_int_equal(sscanf((const char *)sqlite3_column_text(s, 0), "GET /t%d/%d", &id, &seq), 2);
        assert_true(id >= 0 && id < THREADS);
        assert_int_equal(seq, next[id]);
        next[id]++;
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(next[i], ADDS_PER_THREAD);
    sqlite3_finalize(s);
    sqlite3_close(db);
    sfm_history_free(h);
    sfm_store_close(st);
}

static void test_history_past_max_keeps_the_newest_and_counts_the_rest(void **state)
{
    (void)state;
    sfm_store *st = t_store_open(NULL);
    sfm_history *h = new_history(st, 100);
    char endpoint[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(endpoint, sizeof(endpoint), "GET /%d", i);
        add(h, endpoint);
    }
    json_t *a = query(h, 1000);
    assert_int_equal(json_array_size(a), 100);
    assert_string_equal(endpoint_at(a, 0), "GET /999");
    assert_string_equal(endpoint_at(a, 99), "GET /900");
    json_decref(a);
    assert_int_equal(sfm_history_dropped(h), 900);
    sfm_history_free(h);
    sfm_store_close(st);
}

static void test_history_burst_past_the_queue_drops_the_oldest_and_counts_them(void **state)
{
    t_tmpdb *t = *state;
    sfm_store *st = t_store_open(t->path);
    sfm_history *h = new_history(st, 1000000);
    const int n = 3 * SFM_HISTORY_QUEUE;
    char endpoint[32];
    for (int i = 0; i < n; i++) { /* faster than any disk: the queue overflows */
        snprintf(endpoint, sizeof(endpoint), "GET /%06d", i);
        add(h, endpoint);
    }
    json_t *a = query(h, 1);
    snprintf(endpoint, sizeof(endpoint), "GET /%06d", n - 1);
    assert_string_equal(endpoint_at(a, 0), endpoint); /* the newest is never the one dropped */
    json_decref(a);
    long stored = stored_rows(t->path);
    print_message("burst of %d: stored %ld, dropped %llu\n", n, stored,
                  (unsigned long long)sfm_history_dropped(h));
    assert_true(sfm_history_dropped(h) > 0);
    assert_int_equal((uint64_t)stored + sfm_history_dropped(h), (uint64_t)n);

    /* What was kept is in the order it was added. */
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(t->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT endpoint FROM history ORDER BY seq", -1, &s, NULL),
                     SQLITE_OK);
    int prev = -1;
    while (sqlite3_step(s) == SQLITE_ROW) {
        int i = -1;
        assert_int_equal(sscanf((const char *)sqlite3_column_text(s, 0), "GET /%d", &i), 1);
        assert_true(i > prev);
        prev = i;
    }
    assert_int_equal(prev, n - 1);
    sqlite3_finalize(s);
    sqlite3_close(db);
    sfm_history_free(h);
    sfm_store_close(st);
}

static void test_history_clear_forgets_entries_and_drops(void **state)
{
    (void)state;
    sfm_store *st = t_store_open(NULL);
    sfm_history *h = new_history(st, 2);
    add(h, "GET /1");
    add(h, "GET /2");
    add(h, "GET /3");
    json_t *a = query(h, 10);
    assert_int_equal(json_array_size(a), 2);
    json_decref(a);
    assert_int_equal(sfm_history_dropped(h), 1);
    add(h, "GET /queued"); /* possibly still queued: clear drops it too */
    assert_int_equal(sfm_history_clear(h), 0);
    assert_int_equal(sfm_history_dropped(h), 0);
    a = query(h, 10);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    add(h, "GET /after");
    a = query(h, 10);
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(endpoint_at(a, 0), "GET /after");
    json_decref(a);
    sfm_history_free(h);
    sfm_store_close(st);
}

static void test_history_free_writes_the_queue(void **state)
{
    t_tmpdb *t = *state;
    sfm_store *st = t_store_open(t->path);
    sfm_history *h = new_history(st, 1000);
    add(h, "GET /a");
    add(h, "GET /b");
    add(h, "GET /c");
    sfm_history_free(h); /* no query before: free must write them */
    sfm_store_close(st);

    st = t_store_open(t->path);
    h = new_history(st, 1000);
    json_t *a = query(h, 10);
    assert_int_equal(json_array_size(a), 3);
    assert_string_equal(endpoint_at(a, 0), "GET /c");
    assert_string_equal(endpoint_at(a, 2), "GET /a");
    json_decref(a);
    sfm_history_free(h);
    sfm_store_close(st);
    sfm_history_free(NULL);
}

static void test_history_rejects_a_max_below_one(void **state)
{
    (void)state;
    sfm_store *st = t_store_open(NULL);
    sfm_history *h = NULL;
    assert_int_equal(sfm_history_new(&h, st, 0), -EINVAL);
    assert_null(h);
    sfm_store_close(st);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The cost of sfm_history_add on the request path is printed for the record (timings are not
 * asserted); what is asserted is that a flood of adds loses nothing uncounted. */
static void test_history_add_flood_is_stored_or_counted(void **state)
{
    t_tmpdb *t = *state;
    sfm_store *st = t_store_open(t->path);
    sfm_history *h = new_history(st, 1000000);
    sfm_history_entry e;
    fill(&e, "mtls@acme.test", "GET /services/data/v64.0/limits");
    e.has_cert = 1;
    snprintf(e.cert_subject, sizeof(e.cert_subject), "CN=client,O=Acme");
    snprintf(e.cert_issuer, sizeof(e.cert_issuer), "CN=Dev CA");
    const int n = 100000;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        e.time_ms++;
        sfm_history_add(h, &e);
    }
    double t1 = now_s();
    json_t *a = query(h, 1);
    double t2 = now_s();
    long stored = stored_rows(t->path);
    print_message("history: %d adds in %.1f ms (%.0f ns per add); the writer then needed %.1f ms more; "
                  "dropped (queue full) %llu, stored %ld\n",
                  n, (t1 - t0) * 1e3, (t1 - t0) * 1e9 / n, (t2 - t1) * 1e3,
                  (unsigned long long)sfm_history_dropped(h), stored);
    /* Every add is either stored or counted as dropped (max is far above n), and the last is stored. */
    assert_int_equal((uint64_t)stored + sfm_history_dropped(h), (uint64_t)n);
    assert_int_equal(json_array_size(a), 1);
    /* 1795772467123 + n ms */
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "time")),
                        "2026-11-27T09:42:47.123Z");
    json_decref(a);
    sfm_history_free(h);
    sfm_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_entry_is_visible_at_once_newest_first),
        cmocka_unit_test_setup_teardown(test_history_writer_stores_without_a_query, t_tmpdb_setup,
                                        t_tmpdb_teardown),
        cmocka_unit_test_setup_teardown(test_history_concurrent_adds_are_all_stored_in_order, t_tmpdb_setup,
                                        t_tmpdb_teardown),
        cmocka_unit_test(test_history_past_max_keeps_the_newest_and_counts_the_rest),
        cmocka_unit_test_setup_teardown(test_history_burst_past_the_queue_drops_the_oldest_and_counts_them,
                                        t_tmpdb_setup, t_tmpdb_teardown),
        cmocka_unit_test(test_history_clear_forgets_entries_and_drops),
        cmocka_unit_test_setup_teardown(test_history_free_writes_the_queue, t_tmpdb_setup, t_tmpdb_teardown),
        cmocka_unit_test(test_history_rejects_a_max_below_one),
        cmocka_unit_test_setup_teardown(test_history_add_flood_is_stored_or_counted, t_tmpdb_setup,
                                        t_tmpdb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
