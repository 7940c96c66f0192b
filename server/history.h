/*
 * history: the login history (SPEC section 6). Every decision the policy
 * makes is one entry. Appending is cheap and never waits for the disk: an
 * entry is copied into a bounded in-memory queue, and a writer thread stores
 * queued entries in SQLite in batches. A query first writes what is queued,
 * so an entry is visible as soon as its request has been answered. Past
 * `max` stored entries the oldest are deleted; entries deleted that way, or
 * dropped because the queue was full, are counted (health's
 * "historyDropped").
 */
#ifndef SFM_HISTORY_H
#define SFM_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#define SFM_NODISCARD __attribute__((warn_unused_result))

/** Queue capacity: entries waiting for the writer beyond this are dropped (and counted). */
#define SFM_HISTORY_QUEUE 8192

/** One entry. Strings are copied in (truncated to these sizes). */
typedef struct sfm_history_entry {
    int64_t time_ms;      /* epoch milliseconds */
    char listener[12];    /* "mtls" or "standard" */
    char remote_addr[48]; /* IP literal */
    char username[128];   /* "" for none (null in JSON) */
    char endpoint[256];   /* "GET /services/data/v64.0/limits"; "" for none (a refused handshake) */
    int allowed;          /* outcome "allowed" (1) or "denied" (0) */
    char reason[40];      /* "ALLOWED", "STANDARD_PORT", "CERTIFICATE_EXPIRED", ... */
    char status[48];      /* "Success", "Mutual authentication failed", ... */
    int has_cert;         /* 0: "certificate": null */
    char cert_subject[512];
    char cert_issuer[512];
    char cert_fp[65]; /* lowercase hex */
} sfm_history_entry;

/** The filters of GET /__admin/login-history; empty strings and 0 mean "any". */
typedef struct sfm_history_filter {
    size_t limit;         /* 1..1000 */
    int outcome;          /* 0 any, 1 allowed, 2 denied */
    const char *username; /* exact, case-insensitive; NULL: any */
    const char *reason;   /* exact; NULL: any */
} sfm_history_filter;

struct sfm_store;
typedef struct sfm_history sfm_history;

/**
 * Starts the history on `store` (borrowed for its life) with its writer
 * thread. `max`: how many entries are kept (>= 1). Returns 0 or a negative errno.
 */
SFM_NODISCARD int sfm_history_new(sfm_history **out, struct sfm_store *store, long max);
/** Writes what is queued, stops the writer, frees. NULL-safe. */
void sfm_history_free(sfm_history *h);

/** Queues one entry (copied). Thread-safe; never blocks on I/O. */
void sfm_history_add(sfm_history *h, const sfm_history_entry *e);

/**
 * The stored entries that match `f`, newest first, as a JSON array text in
 * SPEC section 6's shape (malloc'd, *out). Writes the queue first.
 * Returns 0 or a negative code.
 */
SFM_NODISCARD int sfm_history_query_json(sfm_history *h, const sfm_history_filter *f, char **out);

/** Entries dropped so far (past `max`, or from a full queue). Thread-safe. */
uint64_t sfm_history_dropped(const sfm_history *h);

/** Forgets every entry, queued or stored, and the drop count (POST /__admin/reset). */
SFM_NODISCARD int sfm_history_clear(sfm_history *h);

#endif
