/*
 * history: the login history's queue and writer thread (SPEC section 6).
 *
 * Adders copy an entry into a ring (h->q) under h->mu and return; that is
 * the only cost on the request path. Draining swaps the ring with a second,
 * empty one under h->mu (O(1), so adders never wait for SQLite) and writes
 * the swapped-out entries with h->mu released. h->flush_mu serialises
 * drains (writer thread, query, clear, free), so batches reach the store in
 * the order they were added and the spare ring has one user at a time.
 *
 * Lock order: flush_mu, then mu.
 */
#include "history.h"
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Queued entries that wake the writer before its tick. */
#define HISTORY_BATCH 256
/* The writer stores what is queued at least this often. */
#define HISTORY_TICK_NS (100 * 1000 * 1000L)

struct sfm_history {
    sfm_store *store; /* borrowed */
    long max;

    pthread_mutex_t mu; /* q, head, len, stop */
    pthread_cond_t wake;
    sfm_history_entry *q; /* ring of SFM_HISTORY_QUEUE entries */
    size_t head;          /* oldest queued entry */
    size_t len;
    int stop;

    pthread_mutex_t flush_mu; /* drains; spare */
    sfm_history_entry *spare; /* the other ring, empty between drains */

    atomic_uint_fast64_t dropped;
    pthread_t writer;
    int writer_started;
};

/*
 * Stores everything queued so far, oldest first (flush_mu held, mu not).
 * Entries the store could not take are counted as dropped: the history is
 * best effort, and retrying would let a broken disk grow the queue.
 */
static int drain(sfm_history *h)
{
    pthread_mutex_lock(&h->mu);
    sfm_history_entry *batch = h->q;
    size_t head = h->head;
    size_t len = h->len;
    h->q = h->spare;
    h->head = 0;
    h->len = 0;
    pthread_mutex_unlock(&h->mu);
    h->spare = batch;

    /* The ring wraps only after it overflowed: then it is two runs. */
    size_t first = len < SFM_HISTORY_QUEUE - head ? len : SFM_HISTORY_QUEUE - head;
    const struct {
        const sfm_history_entry *e;
        size_t n;
    } runs[2] = {{batch + head, first}, {batch, len - first}};
    int rc = 0;
    for (size_t i = 0; i < 2; i++) {
        if (!runs[i].n)
            continue;
        uint64_t deleted = 0;
        int r = sfm_store_history_append(h->store, runs[i].e, runs[i].n, h->max, &deleted);
        if (r < 0) {
            deleted = runs[i].n;
            rc = r;
        }
        atomic_fetch_add_explicit(&h->dropped, deleted, memory_order_relaxed);
    }
    return rc;
}

static int flush(sfm_history *h)
{
    pthread_mutex_lock(&h->flush_mu);
    int rc = drain(h);
    pthread_mutex_unlock(&h->flush_mu);
    return rc;
}

static void *writer_main(void *arg)
{
    sfm_history *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        if (h->len < HISTORY_BATCH) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += HISTORY_TICK_NS;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_nsec -= 1000000000L;
                until.tv_sec += 1;
            }
            pthread_cond_timedwait(&h->wake, &h->mu, &until);
        }
        if (h->stop || h->len == 0)
            continue;
        pthread_mutex_unlock(&h->mu);
        /* A failure is counted in dropped; the writer keeps going. */
        (void)flush(h);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int sfm_history_new(sfm_history **out, struct sfm_store *store, long max)
{
    if (!out || !store || max < 1)
        return -EINVAL;
    int rc = 0;
    sfm_history *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->store = store;
    h->max = max;
    atomic_init(&h->dropped, 0);
    /* Untouched pages of these rings are never made resident. */
    h->q = calloc(SFM_HISTORY_QUEUE, sizeof(*h->q));
    h->spare = calloc(SFM_HISTORY_QUEUE, sizeof(*h->spare));
    if (!h->q || !h->spare) {
        rc = -ENOMEM;
        goto fail;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->flush_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->wake, &ca);
    pthread_condattr_destroy(&ca);

    /* The writer takes no signals: they belong to the threads that handle them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&h->writer, NULL, writer_main, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        rc = -err;
        goto fail_sync;
    }
    h->writer_started = 1;
    *out = h;
    return 0;

fail_sync:
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->flush_mu);
    pthread_mutex_destroy(&h->mu);
fail:
    free(h->spare);
    free(h->q);
    free(h);
    return rc;
}

void sfm_history_free(sfm_history *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
    if (h->writer_started)
        pthread_join(h->writer, NULL);
    (void)flush(h);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->flush_mu);
    pthread_mutex_destroy(&h->mu);
    free(h->spare);
    free(h->q);
    free(h);
}

void sfm_history_add(sfm_history *h, const sfm_history_entry *e)
{
    pthread_mutex_lock(&h->mu);
    if (h->len == SFM_HISTORY_QUEUE) {
        /* The writer is behind: the oldest queued entry makes room. */
        h->head = (h->head + 1) % SFM_HISTORY_QUEUE;
        h->len--;
        atomic_fetch_add_explicit(&h->dropped, 1, memory_order_relaxed);
    }
    memcpy(&h->q[(h->head + h->len) % SFM_HISTORY_QUEUE], e, sizeof(*e));
    h->len++;
    if (h->len == HISTORY_BATCH)
        pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
}

int sfm_history_query_json(sfm_history *h, const sfm_history_filter *f, char **out)
{
    if (!f || !out)
        return -EINVAL;
    /* Failed appends are already counted as dropped; the query still shows what is stored. */
    (void)flush(h);
    return sfm_store_history_query_json(h->store, f, out);
}

uint64_t sfm_history_dropped(const sfm_history *h)
{
    return atomic_load_explicit(&h->dropped, memory_order_relaxed);
}

int sfm_history_clear(sfm_history *h)
{
    pthread_mutex_lock(&h->flush_mu);
    pthread_mutex_lock(&h->mu);
    h->head = 0;
    h->len = 0;
    pthread_mutex_unlock(&h->mu);
    int rc = sfm_store_history_clear(h->store);
    if (rc == 0)
        atomic_store_explicit(&h->dropped, 0, memory_order_relaxed);
    pthread_mutex_unlock(&h->flush_mu);
    return rc;
}
