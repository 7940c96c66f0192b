/*
 * store: the SQLite database of runtime changes (SPEC section 7).
 *
 * One connection, serialised by st->mu (the connection is opened NOMUTEX:
 * the store's own mutex also guards the cached statements, the history row
 * count and the last error, so SQLite's would be a second lock for nothing).
 * Every statement is prepared once from a constant text and reused; values
 * are always bound, never pasted into SQL.
 *
 * Durability: WAL with synchronous=FULL fsyncs the WAL at every commit, so
 * a change is on disk when its transaction's COMMIT returns.
 */
#include "store.h"
#include "utf8.h"
#include "history.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long a statement waits for another process holding the file's lock. */
#define STORE_BUSY_TIMEOUT_MS 5000
/* GET /__admin/login-history: default and largest limit (SPEC section 6). */
#define STORE_QUERY_DEFAULT_LIMIT 100
#define STORE_QUERY_MAX_LIMIT     1000

/* The schema of version 1, created in one transaction on a new file. */
static const char schema_v1[] =
    "CREATE TABLE certs(fp TEXT PRIMARY KEY, label TEXT, pem BLOB,"
    " created_ms INTEGER NOT NULL, tombstone INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE users(username TEXT PRIMARY KEY, profile TEXT, permsets TEXT, active INTEGER);"
    "CREATE TABLE history(seq INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,"
    " listener TEXT NOT NULL, remote TEXT NOT NULL, username TEXT NOT NULL, endpoint TEXT NOT NULL,"
    " allowed INTEGER NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,"
    " cert_subject TEXT, cert_issuer TEXT, cert_fp TEXT);"
    /* seq is the rowid, which every index carries: a filtered query walks its
     * index backwards and needs no sort. */
    "CREATE INDEX history_by_username ON history(username COLLATE NOCASE);"
    "CREATE INDEX history_by_reason ON history(reason);"
    "CREATE INDEX history_by_allowed ON history(allowed);";

/* The query of login-history: one text per combination of filters (bit 0
 * outcome, bit 1 username, bit 2 reason). Parameters: ?1 allowed, ?2
 * username, ?3 reason, ?4 limit; an unused one is bound and ignored. */
#define HQ_HEAD                                                                                    \
    "SELECT time_ms, listener, remote, username, endpoint, allowed, reason, status, cert_subject," \
    " cert_issuer, cert_fp FROM history"
#define HQ_TAIL " ORDER BY seq DESC LIMIT ?4"
#define HQ_A    "allowed = ?1"
#define HQ_U    "username = ?2 COLLATE NOCASE"
#define HQ_R    "reason = ?3"

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_CERT_PUT,
    S_CERT_DELETE_UPLOAD,
    S_CERT_TOMBSTONE,
    S_CERTS_EACH,
    S_USER_PUT,
    S_USER_DELETE,
    S_USERS_EACH,
    S_HIST_INSERT,
    S_HIST_TRIM,
    S_HIST_COUNT,
    S_HIST_CLEAR,
    S_CERTS_CLEAR,
    S_USERS_CLEAR,
    S_HIST_QUERY, /* first of 8 */
    S_COUNT = S_HIST_QUERY + 8,
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_CERT_PUT] =
        "INSERT OR REPLACE INTO certs(fp, label, pem, created_ms, tombstone) VALUES(?1, ?2, ?3, ?4, 0)",
    [S_CERT_DELETE_UPLOAD] = "DELETE FROM certs WHERE fp = ?1 AND tombstone = 0",
    [S_CERT_TOMBSTONE] =
        "INSERT OR IGNORE INTO certs(fp, label, pem, created_ms, tombstone) VALUES(?1, NULL, NULL, "
        "?2, 1)",
    [S_CERTS_EACH] = "SELECT fp, label, pem, created_ms, tombstone FROM certs ORDER BY created_ms, rowid",
    [S_USER_PUT] = "INSERT OR REPLACE INTO users(username, profile, permsets, active) VALUES(?1, ?2, ?3, ?4)",
    [S_USER_DELETE] = "DELETE FROM users WHERE username = ?1",
    [S_USERS_EACH] = "SELECT username, profile, permsets, active FROM users ORDER BY username",
    [S_HIST_INSERT] =
        "INSERT INTO history(time_ms, listener, remote, username, endpoint, allowed, reason, status,"
        " cert_subject, cert_issuer, cert_fp) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [S_HIST_TRIM] = "DELETE FROM history WHERE seq IN (SELECT seq FROM history ORDER BY seq LIMIT ?1)",
    [S_HIST_COUNT] = "SELECT COUNT(*) FROM history",
    [S_HIST_CLEAR] = "DELETE FROM history",
    [S_CERTS_CLEAR] = "DELETE FROM certs",
    [S_USERS_CLEAR] = "DELETE FROM users",
    [S_HIST_QUERY + 0] = HQ_HEAD HQ_TAIL,
    [S_HIST_QUERY + 1] = HQ_HEAD " WHERE " HQ_A HQ_TAIL,
    [S_HIST_QUERY + 2] = HQ_HEAD " WHERE " HQ_U HQ_TAIL,
    [S_HIST_QUERY + 3] = HQ_HEAD " WHERE " HQ_A " AND " HQ_U HQ_TAIL,
    [S_HIST_QUERY + 4] = HQ_HEAD " WHERE " HQ_R HQ_TAIL,
    [S_HIST_QUERY + 5] = HQ_HEAD " WHERE " HQ_A " AND " HQ_R HQ_TAIL,
    [S_HIST_QUERY + 6] = HQ_HEAD " WHERE " HQ_U " AND " HQ_R HQ_TAIL,
    [S_HIST_QUERY + 7] = HQ_HEAD " WHERE " HQ_A " AND " HQ_U " AND " HQ_R HQ_TAIL,
};

struct sfm_store {
    pthread_mutex_t mu; /* everything below */
    sqlite3 *db;
    sqlite3_stmt *stmts[S_COUNT]; /* prepared on first use */
    int64_t history_rows;         /* cached COUNT(*) of history */
    char err[SFM_STORE_ERR_LEN];  /* the last failure */
};

/* Records a failure (st->mu held); returns -EIO, or -ENOMEM when SQLite ran out. */
__attribute__((format(printf, 3, 4))) static int store_fail(sfm_store *st, int sqlite_rc, const char *fmt,
                                                            ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(st->err, sizeof(st->err), "%s: %s", what, sqlite3_errmsg(st->db));
    return sqlite_rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

/* The cached statement `id`, reset and unbound, or NULL (st->err says why). */
static sqlite3_stmt *stmt(sfm_store *st, enum stmt_id id)
{
    sqlite3_stmt *s = st->stmts[id];
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
    }
    int rc = sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        (void)store_fail(st, rc, "prepare");
        sqlite3_finalize(s);
        return NULL;
    }
    st->stmts[id] = s;
    return s;
}

/* Runs a statement that returns no rows; 0 or a negative code. */
static int run(sfm_store *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    int out = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        out = store_fail(st, rc, "%s", what);
    sqlite3_reset(s);
    return out;
}

/* Runs the cached statement `id`, which takes no parameters. */
static int run_id(sfm_store *st, enum stmt_id id)
{
    sqlite3_stmt *s = stmt(st, id);
    if (!s)
        return -EIO;
    return run(st, s, stmt_sql[id]);
}

static int tx_begin(sfm_store *st)
{
    return run_id(st, S_BEGIN);
}

/* Commits; on failure rolls back, so the connection is never left inside a transaction. */
static int tx_commit(sfm_store *st)
{
    int rc = run_id(st, S_COMMIT);
    if (rc < 0 && !sqlite3_get_autocommit(st->db))
        (void)run_id(st, S_ROLLBACK);
    return rc;
}

/* Ends a failed transaction, keeping the first error's message. */
static void tx_rollback(sfm_store *st)
{
    if (sqlite3_get_autocommit(st->db))
        return;
    char keep[SFM_STORE_ERR_LEN];
    memcpy(keep, st->err, sizeof(keep));
    (void)run_id(st, S_ROLLBACK);
    memcpy(st->err, keep, sizeof(keep));
}

/* Counts history rows (st->mu held). */
static int count_history(sfm_store *st)
{
    sqlite3_stmt *s = stmt(st, S_HIST_COUNT);
    if (!s)
        return -EIO;
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        int out = store_fail(st, rc, "count history");
        sqlite3_reset(s);
        return out;
    }
    st->history_rows = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return 0;
}

/* Runs one PRAGMA (no bound values) and copies its first column as text, if any. */
static int pragma(sqlite3 *db, const char *sql, char *val, size_t val_len)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW && val) {
            const unsigned char *t = sqlite3_column_text(s, 0);
            snprintf(val, val_len, "%s", t ? (const char *)t : "");
        }
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

/* Describes an SQLite failure of opening `path` in err. */
static void open_error(char err[SFM_STORE_ERR_LEN], const char *path, sqlite3 *db, int rc, const char *what)
{
    if (rc == SQLITE_NOTADB)
        snprintf(err, SFM_STORE_ERR_LEN, "%s: file is not a database (not an sfmtls state file)", path);
    else
        snprintf(err, SFM_STORE_ERR_LEN, "%s: %s: %s", path, what,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/*
 * Reads the schema version of an existing file through a read-only
 * connection, so that a database we must refuse (newer, or no database) is
 * left exactly as it was: no journal rollback, no checkpoint on close.
 */
static int probe_version(const char *path, int *version, char err[SFM_STORE_ERR_LEN])
{
    sqlite3 *db = NULL;
    char val[32] = "";
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
        rc = pragma(db, "PRAGMA user_version", val, sizeof(val));
    }
    if (rc != SQLITE_OK) {
        open_error(err, path, db, rc, "cannot read the database");
        sqlite3_close(db);
        return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
    }
    sqlite3_close(db);
    *version = (int)strtol(val, NULL, 10);
    return 0;
}

/* Describes a schema version this build must not open; 0 when it may. */
static int version_refused(char err[SFM_STORE_ERR_LEN], const char *name, int version)
{
    if (version > SFM_STORE_SCHEMA)
        snprintf(
            err, SFM_STORE_ERR_LEN,
            "%s: the database was written by a newer sfmtls (schema %d; this build knows up to %d); use a "
            "newer sfmtls or another --state-dir",
            name, version, SFM_STORE_SCHEMA);
    else if (version < 0)
        snprintf(err, SFM_STORE_ERR_LEN, "%s: unknown schema version %d (not an sfmtls state file)", name,
                 version);
    else
        return 0;
    return 1;
}

/* Creates the schema of a new database in one transaction (st->mu not needed: not shared yet). */
static int create_schema(sfm_store *st, const char *name, char err[SFM_STORE_ERR_LEN])
{
    char val[32] = "";
    char set_version[64];
    snprintf(set_version, sizeof(set_version), "PRAGMA user_version = %d", SFM_STORE_SCHEMA);
    int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    /* Another process may have created it since the probe. */
    rc = pragma(st->db, "PRAGMA user_version", val, sizeof(val));
    if (rc != SQLITE_OK)
        goto fail;
    long version = strtol(val, NULL, 10);
    if (version == 0) {
        rc = sqlite3_exec(st->db, schema_v1, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(st->db, set_version, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            goto fail;
    } else if (version != SFM_STORE_SCHEMA) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        snprintf(err, SFM_STORE_ERR_LEN, "%s: schema version changed to %ld while opening", name, version);
        return -EIO;
    }
    rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    return 0;
fail:
    open_error(err, name, st->db, rc, "cannot create the schema");
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

int sfm_store_open(sfm_store **out, const char *path, char err[SFM_STORE_ERR_LEN])
{
    const char *name = path ? path : ":memory:";
    sfm_store *st = NULL;
    int created = 0;
    int version = 0;
    int rc;
    err[0] = '\0';

    if (path) {
        if (path[0] == '\0') {
            snprintf(err, SFM_STORE_ERR_LEN, "the database path is empty");
            return -EINVAL;
        }
        /* A new file is made here, mode 0600, so the database is never readable by others;
         * SQLite gives the -wal and -shm files the database's mode. An empty file is a new database. */
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            created = 1;
        } else if (errno != EEXIST) {
            rc = -errno;
            snprintf(err, SFM_STORE_ERR_LEN, "%s: cannot create the database: %s", path, strerror(errno));
            return rc;
        } else {
            struct stat sb;
            if (stat(path, &sb) == 0 && sb.st_size > 0) {
                rc = probe_version(path, &version, err);
                if (rc < 0)
                    return rc;
                if (version_refused(err, path, version))
                    return -EPROTO;
            }
        }
    }

    st = calloc(1, sizeof(*st));
    if (!st) {
        rc = -ENOMEM;
        snprintf(err, SFM_STORE_ERR_LEN, "%s: out of memory", name);
        goto fail;
    }
    pthread_mutex_init(&st->mu, NULL);
    /* No SQLITE_OPEN_URI: the path is a plain file name. */
    rc = sqlite3_open_v2(path ? path : ":memory:", &st->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        open_error(err, name, st->db, rc, "cannot open the database");
        rc = rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
        goto fail;
    }
    sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    /* Until the version is known to be ours, closing must not checkpoint a WAL into the file. */
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);

    char val[32] = "";
    /* Read first: the checks above must fail before anything is written. */
    rc = pragma(st->db, "PRAGMA user_version", val, sizeof(val));
    if (rc != SQLITE_OK) {
        open_error(err, name, st->db, rc, "cannot read the database");
        rc = -EIO;
        goto fail;
    }
    version = (int)strtol(val, NULL, 10);
    if (version_refused(err, name, version)) { /* it changed since the probe */
        rc = -EPROTO;
        goto fail;
    }
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
    /* SQLite falls back to read-only on a write-protected file; every change would then fail. */
    if (sqlite3_db_readonly(st->db, "main") == 1) {
        snprintf(err, SFM_STORE_ERR_LEN, "%s: the database is read-only (check its owner and mode)", name);
        rc = -EROFS;
        goto fail;
    }
    if (path) {
        rc = pragma(st->db, "PRAGMA journal_mode = WAL", val, sizeof(val));
        if (rc != SQLITE_OK || strcmp(val, "wal") != 0) {
            if (rc == SQLITE_OK)
                snprintf(err, SFM_STORE_ERR_LEN, "%s: cannot switch to WAL mode (journal mode is %s)", name,
                         val);
            else
                open_error(err, name, st->db, rc, "cannot switch to WAL mode");
            rc = -EIO;
            goto fail;
        }
    }
    rc = pragma(st->db, "PRAGMA synchronous = FULL", NULL, 0);
    if (rc != SQLITE_OK) {
        open_error(err, name, st->db, rc, "cannot set synchronous=FULL");
        rc = -EIO;
        goto fail;
    }
    if (version == 0) {
        rc = create_schema(st, name, err);
        if (rc < 0)
            goto fail;
    }
    rc = count_history(st);
    if (rc < 0) {
        open_error(err, name, st->db, SQLITE_ERROR, "cannot count the history");
        goto fail;
    }
    *out = st;
    return 0;

fail:
    sfm_store_close(st);
    if (created)
        unlink(path);
    return rc;
}

void sfm_store_close(sfm_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->stmts[i]);
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

void sfm_store_last_error(sfm_store *st, char err[SFM_STORE_ERR_LEN])
{
    pthread_mutex_lock(&st->mu);
    memcpy(err, st->err, SFM_STORE_ERR_LEN);
    pthread_mutex_unlock(&st->mu);
}

int sfm_store_reset(sfm_store *st)
{
    pthread_mutex_lock(&st->mu);
    int rc = tx_begin(st);
    if (rc == 0)
        rc = run_id(st, S_CERTS_CLEAR);
    if (rc == 0)
        rc = run_id(st, S_USERS_CLEAR);
    if (rc == 0)
        rc = run_id(st, S_HIST_CLEAR);
    if (rc == 0)
        rc = tx_commit(st);
    else
        tx_rollback(st);
    if (rc == 0)
        st->history_rows = 0;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- certificates ---- */

int sfm_store_cert_put(sfm_store *st, const char *fp_hex, const char *label, const char *pem, size_t pem_len,
                       int64_t created_ms)
{
    if (!fp_hex || !label || !pem)
        return -EINVAL;
    pthread_mutex_lock(&st->mu);
    int rc = -EIO;
    sqlite3_stmt *s = stmt(st, S_CERT_PUT);
    if (s) {
        /* A single statement in autocommit mode is its own transaction. */
        sqlite3_bind_text(s, 1, fp_hex, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, label, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(s, 3, pem, pem_len, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, created_ms);
        rc = run(st, s, "store certificate");
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int sfm_store_cert_delete(sfm_store *st, const char *fp_hex, int tombstone)
{
    if (!fp_hex)
        return -EINVAL;
    pthread_mutex_lock(&st->mu);
    int rc = tx_begin(st);
    sqlite3_stmt *s = NULL;
    if (rc == 0) {
        s = stmt(st, S_CERT_DELETE_UPLOAD);
        rc = s ? 0 : -EIO;
    }
    if (rc == 0) {
        sqlite3_bind_text(s, 1, fp_hex, -1, SQLITE_STATIC);
        rc = run(st, s, "delete certificate");
    }
    if (rc == 0 && tombstone) {
        s = stmt(st, S_CERT_TOMBSTONE);
        rc = s ? 0 : -EIO;
        if (rc == 0) {
            sqlite3_bind_text(s, 1, fp_hex, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, 0);
            rc = run(st, s, "record certificate deletion");
        }
    }
    if (rc == 0)
        rc = tx_commit(st);
    else
        tx_rollback(st);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* A malloc'd copy of a column (text or blob) with a terminating NUL; *len gets its length. */
static char *column_dup(sqlite3_stmt *s, int col, size_t *len, int *oom)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL) {
        if (len)
            *len = 0;
        return NULL;
    }
    const void *p = sqlite3_column_blob(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    char *c = malloc(n + 1);
    if (!c) {
        *oom = 1;
        return NULL;
    }
    if (n)
        memcpy(c, p, n);
    c[n] = '\0';
    if (len)
        *len = n;
    return c;
}

typedef struct cert_row {
    char *fp;
    char *label;
    char *pem;
    size_t pem_len;
    int64_t created_ms;
} cert_row;

/*
 * Runs statement `id` and copies each of its rows out with `copy` into a
 * growing array of `size`-byte rows (*rows, *n; the caller frees them, also
 * on failure), all under the store's mutex. Callers then walk their copy
 * without the mutex, so that their callback may call the store (delete a
 * row, say). `copy` returns 0 or -ENOMEM.
 */
static int collect_rows(sfm_store *st, enum stmt_id id, const char *what, size_t size,
                        int (*copy)(sqlite3_stmt *s, void *row), void **rows, size_t *n)
{
    size_t cap = 0;
    int rc = 0;
    *rows = NULL;
    *n = 0;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = stmt(st, id);
    if (!s)
        rc = -EIO;
    while (rc == 0) {
        int step = sqlite3_step(s);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = store_fail(st, step, "%s", what);
            break;
        }
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            void *nr = realloc(*rows, ncap * size);
            if (!nr) {
                rc = -ENOMEM;
                break;
            }
            *rows = nr;
            cap = ncap;
        }
        void *row = (char *)*rows + *n * size;
        memset(row, 0, size);
        (*n)++;
        rc = copy(s, row);
    }
    if (s)
        sqlite3_reset(s);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int cert_copy(sqlite3_stmt *s, void *row)
{
    cert_row *r = row;
    int oom = 0;
    r->fp = column_dup(s, 0, NULL, &oom);
    if (!sqlite3_column_int(s, 4)) { /* not a tombstone */
        r->label = column_dup(s, 1, NULL, &oom);
        r->pem = column_dup(s, 2, &r->pem_len, &oom);
    }
    r->created_ms = sqlite3_column_int64(s, 3);
    return oom || !r->fp ? -ENOMEM : 0;
}

int sfm_store_certs_each(sfm_store *st, int (*fn)(void *arg, const sfm_store_cert *c), void *arg)
{
    void *all = NULL;
    size_t n = 0;
    int rc = collect_rows(st, S_CERTS_EACH, "read certificates", sizeof(cert_row), cert_copy, &all, &n);
    cert_row *rows = all;
    for (size_t i = 0; i < n && rc == 0; i++) {
        sfm_store_cert c = {.fp_hex = rows[i].fp,
                            .label = rows[i].label,
                            .pem = rows[i].pem,
                            .pem_len = rows[i].pem_len,
                            .created_ms = rows[i].created_ms};
        rc = fn(arg, &c);
    }
    for (size_t i = 0; i < n; i++) {
        free(rows[i].fp);
        free(rows[i].label);
        free(rows[i].pem);
    }
    free(rows);
    return rc;
}

/* ---- users ---- */

/* The lowercase copy of a username (malloc'd), or NULL. */
static char *lower_dup(const char *s)
{
    size_t n = strlen(s);
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++)
        c[i] = (char)tolower((unsigned char)s[i]);
    c[n] = '\0';
    return c;
}

int sfm_store_user_put(sfm_store *st, const sfm_store_user *u)
{
    if (!u || !u->username || (u->n_permsets && !u->permsets) || u->active < -1 || u->active > 1)
        return -EINVAL;
    int rc = 0;
    char *name = lower_dup(u->username);
    char *permsets = NULL;
    if (!name) {
        rc = -ENOMEM;
        goto out;
    }
    if (u->has_permsets) {
        json_t *a = json_array();
        if (!a) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < u->n_permsets; i++) {
            json_t *v = u->permsets[i] ? json_string(u->permsets[i]) : NULL;
            if (!v || json_array_append_new(a, v) != 0) {
                json_decref(a);
                rc = u->permsets[i] ? -ENOMEM : -EINVAL;
                goto out;
            }
        }
        permsets = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        if (!permsets) {
            rc = -ENOMEM;
            goto out;
        }
    }

    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = stmt(st, S_USER_PUT);
    if (!s) {
        rc = -EIO;
    } else {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        if (u->profile)
            sqlite3_bind_text(s, 2, u->profile, -1, SQLITE_STATIC);
        if (permsets)
            sqlite3_bind_text(s, 3, permsets, -1, SQLITE_STATIC);
        if (u->active >= 0)
            sqlite3_bind_int(s, 4, u->active);
        rc = run(st, s, "store user change");
    }
    pthread_mutex_unlock(&st->mu);
out:
    free(permsets);
    free(name);
    return rc;
}

int sfm_store_user_delete(sfm_store *st, const char *username)
{
    if (!username)
        return -EINVAL;
    char *name = lower_dup(username);
    if (!name)
        return -ENOMEM;
    pthread_mutex_lock(&st->mu);
    int rc = -EIO;
    sqlite3_stmt *s = stmt(st, S_USER_DELETE);
    if (s) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        rc = run(st, s, "delete user change");
    }
    pthread_mutex_unlock(&st->mu);
    free(name);
    return rc;
}

typedef struct user_row {
    char *username;
    char *profile;
    char *permsets; /* JSON text or NULL */
    int active;
} user_row;

/* Calls fn for one user row, parsing its permission sets. */
static int user_call(int (*fn)(void *arg, const sfm_store_user *u), void *arg, const user_row *r)
{
    sfm_store_user u = {.username = r->username, .profile = r->profile, .active = r->active};
    json_t *a = NULL;
    const char **names = NULL;
    int rc;
    if (r->permsets) {
        a = json_loads(r->permsets, 0, NULL);
        if (!json_is_array(a)) {
            rc = -EIO; /* not what this module wrote */
            goto out;
        }
        size_t n = json_array_size(a);
        names = calloc(n ? n : 1, sizeof(*names));
        if (!names) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            names[i] = json_string_value(json_array_get(a, i));
            if (!names[i]) {
                rc = -EIO;
                goto out;
            }
        }
        u.permsets = names;
        u.n_permsets = n;
        u.has_permsets = 1;
    }
    rc = fn(arg, &u);
out:
    free(names);
    json_decref(a);
    return rc;
}

static int user_copy(sqlite3_stmt *s, void *row)
{
    user_row *r = row;
    int oom = 0;
    r->username = column_dup(s, 0, NULL, &oom);
    r->profile = column_dup(s, 1, NULL, &oom);
    r->permsets = column_dup(s, 2, NULL, &oom);
    r->active = sqlite3_column_type(s, 3) == SQLITE_NULL ? -1 : (sqlite3_column_int(s, 3) != 0);
    return oom || !r->username ? -ENOMEM : 0;
}

int sfm_store_users_each(sfm_store *st, int (*fn)(void *arg, const sfm_store_user *u), void *arg)
{
    void *all = NULL;
    size_t n = 0;
    int rc = collect_rows(st, S_USERS_EACH, "read user changes", sizeof(user_row), user_copy, &all, &n);
    user_row *rows = all;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = user_call(fn, arg, &rows[i]);
    for (size_t i = 0; i < n; i++) {
        free(rows[i].username);
        free(rows[i].profile);
        free(rows[i].permsets);
    }
    free(rows);
    return rc;
}

/* ---- history ---- */

/* Binds a fixed-size entry field as text (it may lack its NUL when full). */
static void bind_field(sqlite3_stmt *s, int col, const char *field, size_t size)
{
    sqlite3_bind_text(s, col, field, (int)strnlen(field, size), SQLITE_STATIC);
}

#define BIND_FIELD(s, col, e, f) bind_field((s), (col), (e)->f, sizeof((e)->f))

int sfm_store_history_append(sfm_store *st, const sfm_history_entry *e, size_t n, long max, uint64_t *deleted)
{
    if (max < 1 || (n && !e))
        return -EINVAL;
    uint64_t gone = 0;
    pthread_mutex_lock(&st->mu);
    if (n == 0 && st->history_rows <= max) {
        pthread_mutex_unlock(&st->mu);
        if (deleted)
            *deleted = 0;
        return 0;
    }
    int rc = tx_begin(st);
    sqlite3_stmt *s = rc == 0 ? stmt(st, S_HIST_INSERT) : NULL;
    if (rc == 0 && !s)
        rc = -EIO;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const sfm_history_entry *x = &e[i];
        sqlite3_bind_int64(s, 1, x->time_ms);
        BIND_FIELD(s, 2, x, listener);
        BIND_FIELD(s, 3, x, remote_addr);
        BIND_FIELD(s, 4, x, username);
        BIND_FIELD(s, 5, x, endpoint);
        sqlite3_bind_int(s, 6, x->allowed ? 1 : 0);
        BIND_FIELD(s, 7, x, reason);
        BIND_FIELD(s, 8, x, status);
        if (x->has_cert) {
            BIND_FIELD(s, 9, x, cert_subject);
            BIND_FIELD(s, 10, x, cert_issuer);
            BIND_FIELD(s, 11, x, cert_fp);
        } else {
            sqlite3_bind_null(s, 9);
            sqlite3_bind_null(s, 10);
            sqlite3_bind_null(s, 11);
        }
        rc = run(st, s, "append history");
    }
    int64_t rows = st->history_rows + (int64_t)n;
    if (rc == 0 && rows > max) {
        sqlite3_stmt *t = stmt(st, S_HIST_TRIM);
        rc = t ? 0 : -EIO;
        if (rc == 0) {
            sqlite3_bind_int64(t, 1, rows - max);
            rc = run(st, t, "trim history");
        }
        if (rc == 0) {
            gone = (uint64_t)sqlite3_changes64(st->db);
            rows -= (int64_t)gone;
        }
    }
    if (rc == 0)
        rc = tx_commit(st);
    else
        tx_rollback(st);
    if (rc == 0) {
        st->history_rows = rows;
    } else if (count_history(st) < 0) {
        st->history_rows = 0; /* unknown; the next trim corrects it with a larger DELETE at worst */
    }
    pthread_mutex_unlock(&st->mu);
    if (rc == 0 && deleted)
        *deleted = gone;
    return rc;
}

int sfm_store_history_clear(sfm_store *st)
{
    pthread_mutex_lock(&st->mu);
    int rc = run_id(st, S_HIST_CLEAR);
    if (rc == 0)
        st->history_rows = 0;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/*
 * A JSON string of a stored text. Entries hold fixed-size fields that a
 * caller may have cut in the middle of a UTF-8 sequence, and jansson takes
 * only valid UTF-8: invalid bytes become U+FFFD.
 */
static json_t *text_json(const unsigned char *t, size_t n)
{
    json_t *j = json_stringn((const char *)t, n);
    if (j)
        return j;
    char *buf = malloc(n * 3 + 1);
    if (!buf)
        return NULL;
    j = json_stringn(buf, sfm_utf8_repair((const char *)t, n, buf));
    free(buf);
    return j;
}

/* The text of column `col` as a JSON string, or null when it is NULL (or "" and empty_is_null). */
static json_t *column_json(sqlite3_stmt *s, int col, int empty_is_null)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    if (!t || (empty_is_null && n == 0))
        return json_null();
    return text_json(t, n);
}

/* ISO 8601 UTC with milliseconds, "2026-11-27T09:41:07.123Z". */
static void format_time(int64_t ms, char *out, size_t len)
{
    int64_t sec = ms / 1000;
    int64_t rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, len, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)rem);
}

/* One history row as SPEC section 6's object (new reference), or NULL when out of memory. */
static json_t *row_json(sqlite3_stmt *s)
{
    char when[80];
    format_time(sqlite3_column_int64(s, 0), when, sizeof(when));
    json_t *cert = json_null();
    if (sqlite3_column_type(s, 8) != SQLITE_NULL) {
        cert = json_object();
        if (cert) {
            json_object_set_new(cert, "subject", column_json(s, 8, 0));
            json_object_set_new(cert, "issuer", column_json(s, 9, 0));
            json_object_set_new(cert, "fingerprintSha256", column_json(s, 10, 0));
            if (json_object_size(cert) != 3) {
                json_decref(cert);
                return NULL;
            }
        }
    }
    json_t *o = json_object();
    if (!o || !cert) {
        json_decref(o);
        json_decref(cert);
        return NULL;
    }
    json_object_set_new(o, "time", json_string(when));
    json_object_set_new(o, "listener", column_json(s, 1, 0));
    json_object_set_new(o, "remoteAddress", column_json(s, 2, 0));
    json_object_set_new(o, "username", column_json(s, 3, 1));
    json_object_set_new(o, "endpoint", column_json(s, 4, 1));
    json_object_set_new(o, "outcome", json_string(sqlite3_column_int(s, 5) ? "allowed" : "denied"));
    json_object_set_new(o, "reason", column_json(s, 6, 0));
    json_object_set_new(o, "status", column_json(s, 7, 0));
    json_object_set_new(o, "certificate", cert);
    if (json_object_size(o) != 9) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int sfm_store_history_query_json(sfm_store *st, const sfm_history_filter *f, char **out)
{
    if (!f || !out || f->outcome < 0 || f->outcome > 2)
        return -EINVAL;
    size_t limit = f->limit ? f->limit : STORE_QUERY_DEFAULT_LIMIT;
    if (limit > STORE_QUERY_MAX_LIMIT)
        limit = STORE_QUERY_MAX_LIMIT;
    const char *user = f->username && f->username[0] ? f->username : NULL;
    const char *reason = f->reason && f->reason[0] ? f->reason : NULL;
    unsigned which = (f->outcome ? 1u : 0u) | (user ? 2u : 0u) | (reason ? 4u : 0u);

    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = stmt(st, (enum stmt_id)(S_HIST_QUERY + which));
    if (!s) {
        rc = -EIO;
    } else {
        sqlite3_bind_int(s, 1, f->outcome == 1 ? 1 : 0);
        if (user)
            sqlite3_bind_text(s, 2, user, -1, SQLITE_STATIC);
        if (reason)
            sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)limit);
        for (;;) {
            int step = sqlite3_step(s);
            if (step == SQLITE_DONE)
                break;
            if (step != SQLITE_ROW) {
                rc = store_fail(st, step, "query history");
                break;
            }
            json_t *o = row_json(s);
            if (!o || json_array_append_new(arr, o) != 0) {
                rc = -ENOMEM;
                break;
            }
        }
        sqlite3_reset(s);
    }
    pthread_mutex_unlock(&st->mu);
    if (rc == 0) {
        char *text = json_dumps(arr, JSON_COMPACT);
        if (text)
            *out = text;
        else
            rc = -ENOMEM;
    }
    json_decref(arr);
    return rc;
}
