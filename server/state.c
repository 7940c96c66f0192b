#include "state.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "utf8.h"

#define PATH_LEN        4096
#define LABEL_MAX_CHARS 64
/* Upload limits (SPEC section 6): 1 MB of PEM, 10 certificates. */
#define UPLOAD_MAX_BYTES (1024 * 1024)

/* A user's runtime change, by username; names are resolved against each
 * fixture the state is given, so that a reload can drop what no longer
 * applies. */
struct user_change {
    char *username; /* lowercase */
    char *profile;  /* NULL: unchanged */
    char **permsets;
    size_t n_permsets;
    int has_permsets;
    int active; /* -1: unchanged */
};

/* The user views of a snapshot, shared by the snapshots that differ only in
 * their certificates. */
struct views {
    atomic_int refs;
    sfm_user_view *v;
    size_t *pool; /* every view's permsets */
};

struct sfm_state {
    pthread_mutex_t lock; /* serialises writers and guards `current` */
    sfm_snapshot *current;
    atomic_uint_fast64_t generation;

    /* what the next snapshot is built from; guarded by `lock` */
    sfm_org *org;
    sfm_pki_trust *trust;
    sfm_store *store;
    char *state_dir;
    sfm_certs *preloads; /* the fixture's certificates */
    sfm_certs *uploads;  /* uploaded at runtime */
    char (*tombstones)[65];
    size_t n_tombstones;
    struct user_change *changes;
    size_t n_changes;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_error(sfm_state_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(sfm_state_error *e, int status, const char *code, const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

/* ---- snapshots ---------------------------------------------------------------------------- */

static void views_unref(struct views *v)
{
    if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
        return;
    free(v->v);
    free(v->pool);
    free(v);
}

/* The snapshot owns a reference to its views through this header, found
 * from the users pointer's owner. */
struct snapshot_full {
    sfm_snapshot s;
    struct views *views;
};

sfm_snapshot *sfm_snapshot_ref(sfm_snapshot *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void sfm_snapshot_unref(sfm_snapshot *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    struct snapshot_full *f = (struct snapshot_full *)s;
    views_unref(f->views);
    sfm_certs_unref(s->certs);
    sfm_org_unref(s->org);
    free(f);
}

static const struct user_change *change_of(const struct user_change *changes, size_t n, const char *username)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(changes[i].username, username) == 0)
            return &changes[i];
    return NULL;
}

/* Why a change no longer applies to `org`; NULL when it does. */
static const char *change_stale(const sfm_org *org, const struct user_change *c, char why[256])
{
    if (sfm_org_find_user(org, c->username) < 0)
        snprintf(why, 256, "user %s is not in the fixture", c->username);
    else if (c->profile && sfm_org_find_profile(org, c->profile) < 0)
        snprintf(why, 256, "profile \"%s\" is not in the fixture", c->profile);
    else {
        for (size_t i = 0; i < c->n_permsets; i++)
            if (sfm_org_find_permset(org, c->permsets[i]) < 0) {
                snprintf(why, 256, "permission set \"%s\" is not in the fixture", c->permsets[i]);
                return why;
            }
        return NULL;
    }
    return why;
}

/*
 * The user views of `org` with `changes` applied in order, then `extra`
 * (may be NULL). A change that names something `org` lacks is left out.
 */
static struct views *views_build(const sfm_org *org, const struct user_change *changes, size_t n_changes,
                                 const struct user_change *extra)
{
    struct views *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    atomic_init(&v->refs, 1);
    size_t pool_len = 0;
    for (size_t i = 0; i < org->n_users; i++)
        pool_len += org->users[i].n_permsets;
    for (size_t i = 0; i < n_changes; i++)
        pool_len += changes[i].n_permsets;
    if (extra)
        pool_len += extra->n_permsets;
    v->v = calloc(org->n_users ? org->n_users : 1, sizeof(*v->v));
    v->pool = calloc(pool_len ? pool_len : 1, sizeof(*v->pool));
    if (!v->v || !v->pool) {
        views_unref(v);
        return NULL;
    }
    size_t used = 0;
    for (size_t i = 0; i < org->n_users; i++) {
        const sfm_fx_user *u = &org->users[i];
        sfm_user_view *uv = &v->v[i];
        uv->profile = u->profile;
        uv->active = u->active;
        uv->permsets = v->pool + used;
        uv->n_permsets = u->n_permsets;
        if (u->n_permsets) /* u->permsets may be NULL then */
            memcpy(uv->permsets, u->permsets, u->n_permsets * sizeof(size_t));
        used += u->n_permsets;
    }
    for (size_t c = 0; c < n_changes + (extra != NULL); c++) {
        const struct user_change *ch = c < n_changes ? &changes[c] : extra;
        char why[256];
        if (change_stale(org, ch, why))
            continue;
        long ui = sfm_org_find_user(org, ch->username);
        sfm_user_view *uv = &v->v[ui];
        if (ch->profile)
            uv->profile = (size_t)sfm_org_find_profile(org, ch->profile);
        if (ch->active >= 0)
            uv->active = ch->active;
        if (ch->has_permsets) {
            uv->permsets = v->pool + used;
            uv->n_permsets = 0;
            for (size_t k = 0; k < ch->n_permsets; k++)
                uv->permsets[uv->n_permsets++] = (size_t)sfm_org_find_permset(org, ch->permsets[k]);
            used += uv->n_permsets;
        }
    }
    for (size_t i = 0; i < org->n_users; i++) {
        sfm_user_view *uv = &v->v[i];
        uv->perms = org->profiles[uv->profile].bits;
        for (size_t k = 0; k < uv->n_permsets; k++)
            uv->perms |= org->permsets[uv->permsets[k]].bits;
    }
    return v;
}

/* A snapshot of `org`, `views` and `certs` (each gets a reference of its own). */
static sfm_snapshot *snapshot_new(sfm_org *org, struct views *views, sfm_certs *certs)
{
    struct snapshot_full *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    atomic_init(&f->s.refs, 1);
    f->s.org = sfm_org_ref(org);
    f->s.users = views->v;
    atomic_fetch_add(&views->refs, 1);
    f->views = views;
    f->s.certs = sfm_certs_ref(certs);
    return &f->s;
}

/* Puts `next` in force (the state takes over its reference). Caller holds the lock. */
static void publish(sfm_state *st, sfm_snapshot *next)
{
    sfm_snapshot *old = st->current;
    next->generation = (old ? old->generation : 0) + 1;
    st->current = next;
    atomic_store(&st->generation, next->generation);
    sfm_snapshot_unref(old);
}

static struct views *current_views(const sfm_state *st)
{
    return ((struct snapshot_full *)st->current)->views;
}

sfm_snapshot *sfm_state_acquire(sfm_state *st)
{
    pthread_mutex_lock(&st->lock);
    sfm_snapshot *s = sfm_snapshot_ref(st->current);
    pthread_mutex_unlock(&st->lock);
    return s;
}

const sfm_snapshot *sfm_state_refresh(sfm_state *st, sfm_snapshot **held)
{
    if (*held && (*held)->generation == atomic_load(&st->generation))
        return *held;
    sfm_snapshot *s = sfm_state_acquire(st);
    sfm_snapshot_unref(*held);
    *held = s;
    return s;
}

/* ---- certificates ------------------------------------------------------------------------- */

/* An entry for the first certificate of `pem`. *chain gets the count. */
static int entry_of_pem(const char *label, const char *pem, size_t len, int preloaded, int64_t created_ms,
                        sfm_cert_entry **out, char err[SFM_PKI_ERR_LEN])
{
    sfm_der ders[SFM_PKI_MAX_CHAIN];
    size_t n = 0;
    int rc = sfm_pki_pem_certs(pem, len, ders, SFM_PKI_MAX_CHAIN, &n, NULL, err);
    if (rc < 0)
        return rc;
    if (n == 0) {
        snprintf(err, SFM_PKI_ERR_LEN, "no certificate in the PEM");
        return -EINVAL;
    }
    sfm_pki_facts f;
    rc = sfm_pki_facts_of(ders[0].der, ders[0].len, &f);
    if (rc < 0) {
        sfm_pki_ders_free(ders, n);
        snprintf(err, SFM_PKI_ERR_LEN, "the first certificate does not parse as X.509");
        return -EINVAL;
    }
    *out = sfm_cert_entry_new(label, f.subject, f.issuer, f.serial, f.not_before, f.not_after, f.fp, (int)n,
                              preloaded, created_ms);
    sfm_pki_ders_free(ders, n);
    if (!*out) {
        snprintf(err, SFM_PKI_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* Replaces *set by *set + e (dropping the old reference). */
static int set_add(sfm_certs **set, sfm_cert_entry *e)
{
    sfm_certs *next = NULL;
    int rc = sfm_certs_with(*set, e, &next);
    if (rc < 0)
        return rc;
    sfm_certs_unref(*set);
    *set = next;
    return 0;
}

static int set_remove(sfm_certs **set, const char *id)
{
    sfm_certs *next = NULL;
    int rc = sfm_certs_without(*set, id, &next);
    if (rc < 0)
        return rc;
    sfm_certs_unref(*set);
    *set = next;
    return 0;
}

static int tombstoned(const sfm_state *st, const char *fp_hex)
{
    for (size_t i = 0; i < st->n_tombstones; i++)
        if (strcmp(st->tombstones[i], fp_hex) == 0)
            return 1;
    return 0;
}

/*
 * The certificates in force: the uploads, then the preloads that were not
 * deleted. Built in one pass, where the first entry with a key stays: an
 * upload of a preload's certificate (after the preload was deleted, or
 * before the fixture preloaded it) replaces the preload, as a runtime change
 * applies on top of the fixture, label and all.
 */
static int certs_combine(const sfm_state *st, const sfm_certs *preloads, const sfm_certs *uploads,
                         sfm_certs **out)
{
    const sfm_cert_entry **up = NULL, **pre = NULL;
    size_t n_up = 0, n_pre = 0;
    sfm_cert_entry **all = NULL;
    int rc = sfm_certs_list(uploads, &up, &n_up);
    if (rc == 0)
        rc = sfm_certs_list(preloads, &pre, &n_pre);
    if (rc == 0 && !(all = calloc(n_up + n_pre + 1, sizeof(*all))))
        rc = -ENOMEM;
    if (rc == 0) {
        size_t n = 0;
        for (size_t i = 0; i < n_up; i++)
            all[n++] = (sfm_cert_entry *)up[i];
        for (size_t i = 0; i < n_pre; i++)
            if (!tombstoned(st, pre[i]->fp_hex))
                all[n++] = (sfm_cert_entry *)pre[i];
        rc = sfm_certs_build(all, n, out);
    }
    free(all);
    free(up);
    free(pre);
    return rc;
}

static int ensure_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

/*
 * The fixture's certificates: files as they are, "issue" entries issued by
 * the dev CA into <state_dir>/clients/ the first time. A preload that would
 * fail an upload check is loaded anyway, with a warning (an uploaded
 * certificate that later expires stays uploaded too).
 */
static int preloads_build(const sfm_org *org, const sfm_pki_trust *trust, const char *state_dir,
                          sfm_certs **out, char err[SFM_STATE_ERR_LEN])
{
    sfm_certs *set = sfm_certs_new();
    if (!set) {
        snprintf(err, SFM_STATE_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    char clients[PATH_LEN];
    snprintf(clients, sizeof(clients), "%s/clients", state_dir);
    for (size_t i = 0; i < org->n_certs; i++) {
        const sfm_fx_cert *c = &org->certs[i];
        char pki_err[SFM_PKI_ERR_LEN] = "";
        char *pem = c->pem;
        size_t pem_len = c->pem_len;
        char *issued = NULL;
        int rc = 0;
        if (c->issue_cn) {
            char prefix[PATH_LEN + 80], chain[PATH_LEN + 96];
            snprintf(prefix, sizeof(prefix), "%s/%s", clients, c->issue_cn);
            snprintf(chain, sizeof(chain), "%s.chain.pem", prefix);
            if (access(chain, R_OK) != 0) {
                sfm_pki_issue_opts o = {.kind = SFM_PKI_CLIENT,
                                        .cn = c->issue_cn,
                                        .days = 397,
                                        .key = SFM_PKI_KEY_EC_P256,
                                        .out_prefix = prefix};
                rc = ensure_dir(clients);
                if (rc == 0)
                    rc = sfm_pki_issue(state_dir, &o, pki_err);
                else
                    snprintf(pki_err, sizeof(pki_err), "%.160s: %s", clients, strerror(-rc));
                if (rc == 0)
                    sfm_log(SFM_LOG_INFO, "client_certificate_issued", "%s.crt, .key and .chain.pem (%s)",
                            prefix, c->label);
            }
            if (rc == 0)
                rc = sfm_pki_read_file(chain, UPLOAD_MAX_BYTES * 16, &issued, &pem_len, pki_err);
            pem = issued;
        }
        sfm_cert_entry *e = NULL;
        if (rc == 0)
            rc = entry_of_pem(c->label, pem, pem_len, 1, 0, &e, pki_err);
        if (rc < 0) {
            free(issued);
            snprintf(err, SFM_STATE_ERR_LEN, "%s: $.mutualAuthCertificates[%zu] (\"%s\"): %s", org->path, i,
                     c->label, pki_err);
            sfm_certs_unref(set);
            return rc;
        }
        unsigned problems = 0;
        char detail[1024] = "";
        if (sfm_pki_check_pem(trust, pem, pem_len, time(NULL), &problems, detail, sizeof(detail)) == 0 &&
            problems) {
            char *nl = strchr(detail, '\n');
            if (nl)
                *nl = '\0';
            sfm_log(SFM_LOG_WARN, "preload_check_failed",
                    "%s: certificate \"%s\" would fail an upload (%s); loaded anyway", org->path, c->label,
                    detail);
        }
        free(issued);
        rc = set_add(&set, e);
        if (rc == -EEXIST)
            sfm_log(SFM_LOG_WARN, "preload_duplicate", "%s: certificate \"%s\" is already preloaded; skipped",
                    org->path, c->label);
        sfm_cert_entry_unref(e);
        if (rc < 0 && rc != -EEXIST) {
            snprintf(err, SFM_STATE_ERR_LEN, "out of memory");
            sfm_certs_unref(set);
            return rc;
        }
    }
    *out = set;
    return 0;
}

/* ---- user changes ------------------------------------------------------------------------- */

static void change_cleanup(struct user_change *c)
{
    free(c->username);
    free(c->profile);
    for (size_t i = 0; i < c->n_permsets; i++)
        free(c->permsets[i]);
    free(c->permsets);
    memset(c, 0, sizeof(*c));
}

static void changes_free(struct user_change *changes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        change_cleanup(&changes[i]);
    free(changes);
}

static int change_copy(struct user_change *dst, const sfm_store_user *u)
{
    memset(dst, 0, sizeof(*dst));
    dst->active = u->active;
    dst->has_permsets = u->has_permsets;
    dst->username = strdup(u->username);
    if (!dst->username)
        return -ENOMEM;
    for (char *p = dst->username; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (u->profile && !(dst->profile = strdup(u->profile)))
        return -ENOMEM;
    if (u->n_permsets) {
        dst->permsets = calloc(u->n_permsets, sizeof(char *));
        if (!dst->permsets)
            return -ENOMEM;
        for (size_t i = 0; i < u->n_permsets; i++) {
            /* A set named twice is assigned once, as in the fixture. */
            size_t k = 0;
            while (k < dst->n_permsets && strcmp(dst->permsets[k], u->permsets[i]) != 0)
                k++;
            if (k < dst->n_permsets)
                continue;
            if (!(dst->permsets[dst->n_permsets] = strdup(u->permsets[i])))
                return -ENOMEM;
            dst->n_permsets++;
        }
    }
    return 0;
}

/* ---- loading from the store --------------------------------------------------------------- */

/* What a walk of the stored certificates collects. */
struct loaded_certs {
    sfm_state *st;
    sfm_cert_entry **v; /* the uploads, one reference each */
    size_t n, cap;
};

static int load_cert_row(void *arg, const sfm_store_cert *c)
{
    struct loaded_certs *lc = arg;
    sfm_state *st = lc->st;
    if (!c->pem) {
        char(*t)[65] = realloc(st->tombstones, (st->n_tombstones + 1) * sizeof(*t));
        if (!t)
            return -ENOMEM;
        st->tombstones = t;
        snprintf(t[st->n_tombstones++], 65, "%s", c->fp_hex);
        return 0;
    }
    if (lc->n == lc->cap) {
        size_t cap = lc->cap ? 2 * lc->cap : 64;
        sfm_cert_entry **v = realloc(lc->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        lc->v = v;
        lc->cap = cap;
    }
    char pki_err[SFM_PKI_ERR_LEN];
    int rc = entry_of_pem(c->label, c->pem, c->pem_len, 0, c->created_ms, &lc->v[lc->n], pki_err);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        sfm_log(SFM_LOG_WARN, "stored_certificate_skipped", "stored certificate %s: %s", c->fp_hex, pki_err);
        return 0;
    }
    lc->n++;
    return 0;
}

/* The uploads and tombstones of the store, into st->uploads and st->tombstones. */
static int load_certs(sfm_state *st)
{
    struct loaded_certs lc = {.st = st};
    int rc = sfm_store_certs_each(st->store, load_cert_row, &lc);
    if (rc == 0)
        rc = sfm_certs_build(lc.v, lc.n, &st->uploads);
    for (size_t i = 0; i < lc.n; i++)
        sfm_cert_entry_unref(lc.v[i]);
    free(lc.v);
    return rc;
}

static int load_user_row(void *arg, const sfm_store_user *u)
{
    sfm_state *st = arg;
    struct user_change *c = realloc(st->changes, (st->n_changes + 1) * sizeof(*c));
    if (!c)
        return -ENOMEM;
    st->changes = c;
    int rc = change_copy(&c[st->n_changes], u);
    st->n_changes++;
    return rc;
}

/* Drops (with a warning, and from the store) the changes that `org` cannot apply. */
static void drop_stale_changes(sfm_state *st, const sfm_org *org)
{
    size_t kept = 0;
    for (size_t i = 0; i < st->n_changes; i++) {
        char why[256];
        if (change_stale(org, &st->changes[i], why)) {
            sfm_log(SFM_LOG_WARN, "user_change_dropped", "the change to %s no longer applies: %s",
                    st->changes[i].username, why);
            (void)!sfm_store_user_delete(st->store, st->changes[i].username);
            change_cleanup(&st->changes[i]);
            continue;
        }
        st->changes[kept++] = st->changes[i];
    }
    st->n_changes = kept;
}

static int rebuild(sfm_state *st, char err[SFM_STATE_ERR_LEN])
{
    sfm_certs *certs = NULL;
    struct views *views = views_build(st->org, st->changes, st->n_changes, NULL);
    if (!views || certs_combine(st, st->preloads, st->uploads, &certs) < 0) {
        views_unref(views);
        snprintf(err, SFM_STATE_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    sfm_snapshot *snap = snapshot_new(st->org, views, certs);
    views_unref(views);
    sfm_certs_unref(certs);
    if (!snap) {
        snprintf(err, SFM_STATE_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    publish(st, snap);
    return 0;
}

int sfm_state_new(sfm_state **out, sfm_org *org, sfm_pki_trust *trust, sfm_store *store,
                  const char *state_dir, char err[SFM_STATE_ERR_LEN])
{
    sfm_state *st = calloc(1, sizeof(*st));
    if (!st) {
        sfm_pki_trust_free(trust);
        snprintf(err, SFM_STATE_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&st->lock, NULL);
    atomic_init(&st->generation, 0);
    st->org = sfm_org_ref(org);
    st->trust = trust;
    st->store = store;
    st->state_dir = strdup(state_dir);
    int rc = -ENOMEM;
    if (!st->state_dir) {
        snprintf(err, SFM_STATE_ERR_LEN, "out of memory");
        goto fail;
    }
    rc = preloads_build(org, trust, state_dir, &st->preloads, err);
    if (rc < 0)
        goto fail;
    rc = load_certs(st);
    if (rc == 0)
        rc = sfm_store_users_each(store, load_user_row, st);
    if (rc < 0) {
        snprintf(err, SFM_STATE_ERR_LEN, "cannot read the saved state: %s", strerror(-rc));
        goto fail;
    }
    drop_stale_changes(st, org);
    rc = rebuild(st, err);
    if (rc < 0)
        goto fail;
    *out = st;
    return 0;
fail:
    sfm_state_free(st);
    return rc;
}

void sfm_state_free(sfm_state *st)
{
    if (!st)
        return;
    sfm_snapshot_unref(st->current);
    sfm_certs_unref(st->preloads);
    sfm_certs_unref(st->uploads);
    free(st->tombstones);
    changes_free(st->changes, st->n_changes);
    sfm_org_unref(st->org);
    sfm_pki_trust_free(st->trust);
    free(st->state_dir);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* ---- admin changes ------------------------------------------------------------------------ */

/* Characters in a label: valid UTF-8 without control characters, else -1. */
static long label_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return -1;
    return sfm_utf8_count(s, len);
}

/* The upload checks after the label and the size, in SPEC section 6's order. */
static const struct {
    unsigned bit;
    int status;
} upload_checks[] = {
    {SFM_PKI_P_CERTIFICATE_TOO_LARGE, 413},     {SFM_PKI_P_PRIVATE_KEY_NOT_ALLOWED, 400},
    {SFM_PKI_P_MALFORMED_CERTIFICATE, 400},     {SFM_PKI_P_SELF_SIGNED_CERTIFICATE, 400},
    {SFM_PKI_P_UNTRUSTED_CERTIFICATE, 400},     {SFM_PKI_P_CERTIFICATE_EXPIRED, 400},
    {SFM_PKI_P_CERTIFICATE_NOT_YET_VALID, 400},
};

/* The explanation sfm_pki_check_pem gave for `code`, from its "CODE: text" lines. */
static void detail_for(const char *detail, const char *code, char *out, size_t len)
{
    size_t cl = strlen(code);
    for (const char *line = detail; *line;) {
        const char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        if (ll > cl + 2 && strncmp(line, code, cl) == 0 && line[cl] == ':') {
            snprintf(out, len, "%.*s", (int)(ll - cl - 2), line + cl + 2);
            return;
        }
        line += ll + (end ? 1 : 0);
    }
    snprintf(out, len, "%s", code);
}

int sfm_state_upload(sfm_state *st, const char *label, size_t label_len, const char *pem, size_t pem_len,
                     sfm_cert_entry **entry, sfm_state_error *e)
{
    pthread_mutex_lock(&st->lock);
    int rc = -1;
    sfm_cert_entry *ent = NULL;
    sfm_certs *certs = NULL, *uploads = NULL;
    long chars = label_chars(label, label_len);
    if (!st->current->org->mutual_authentication) {
        set_error(e, 400, "MUTUAL_AUTHENTICATION_NOT_ENABLED",
                  "Mutual authentication is not enabled for this organization.");
        goto out;
    }
    if (chars < 1 || chars > LABEL_MAX_CHARS) {
        set_error(e, 400, "INVALID_LABEL", "The label must be 1 to %d characters of text.", LABEL_MAX_CHARS);
        goto out;
    }
    if (pem_len > UPLOAD_MAX_BYTES) {
        set_error(e, 413, "CERTIFICATE_TOO_LARGE", "The certificate is %zu bytes; the limit is %d bytes.",
                  pem_len, UPLOAD_MAX_BYTES);
        goto out;
    }
    unsigned problems = 0;
    char detail[2048] = "";
    if (sfm_pki_check_pem(st->trust, pem, pem_len, time(NULL), &problems, detail, sizeof(detail)) < 0) {
        set_error(e, 500, "UNKNOWN_EXCEPTION", "The certificate could not be checked.");
        goto out;
    }
    for (size_t i = 0; i < sizeof(upload_checks) / sizeof(upload_checks[0]); i++) {
        if (!(problems & upload_checks[i].bit))
            continue;
        const char *code = sfm_pki_problem_code(upload_checks[i].bit);
        char why[512];
        detail_for(detail, code, why, sizeof(why));
        set_error(e, upload_checks[i].status, code, "%s", why);
        goto out;
    }
    char pki_err[SFM_PKI_ERR_LEN];
    char lbl[LABEL_MAX_CHARS * 4 + 1];
    snprintf(lbl, sizeof(lbl), "%.*s", (int)label_len, label);
    if (entry_of_pem(lbl, pem, pem_len, 0, now_ms(), &ent, pki_err) < 0) {
        set_error(e, 400, "MALFORMED_CERTIFICATE", "%s", pki_err);
        goto out;
    }
    const sfm_cert_entry *dup = sfm_certs_find_fp(st->current->certs, ent->fp);
    if (dup) {
        set_error(e, 409, "DUPLICATE_CERTIFICATE", "This certificate is already uploaded as %s (\"%s\").",
                  dup->id, dup->label);
        goto out;
    }
    certs = sfm_certs_ref(st->current->certs);
    uploads = sfm_certs_ref(st->uploads);
    int added = set_add(&certs, ent);
    if (added == 0)
        added = set_add(&uploads, ent);
    if (added == -EEXIST) {
        /* Another certificate whose fingerprint starts with the same 8
         * bytes: it would share the id. */
        set_error(e, 409, "DUPLICATE_CERTIFICATE", "A certificate with the id %s is already uploaded.",
                  ent->id);
        goto out;
    }
    if (added < 0) {
        set_error(e, 500, "UNKNOWN_EXCEPTION", "Out of memory.");
        goto out;
    }
    sfm_snapshot *next = snapshot_new(st->org, current_views(st), certs);
    if (!next) {
        set_error(e, 500, "UNKNOWN_EXCEPTION", "Out of memory.");
        goto out;
    }
    /* Durable before it is acknowledged or seen. */
    if (sfm_store_cert_put(st->store, ent->fp_hex, ent->label, pem, pem_len, ent->created_ms) < 0) {
        sfm_snapshot_unref(next);
        set_error(e, 500, "UNKNOWN_EXCEPTION", "The certificate could not be saved.");
        goto out;
    }
    for (size_t i = 0; i < st->n_tombstones; i++) {
        if (strcmp(st->tombstones[i], ent->fp_hex) == 0) {
            memmove(&st->tombstones[i], &st->tombstones[i + 1], (st->n_tombstones - i - 1) * 65);
            st->n_tombstones--;
            break;
        }
    }
    sfm_certs_unref(st->uploads);
    st->uploads = uploads;
    uploads = NULL;
    publish(st, next);
    *entry = sfm_cert_entry_ref(ent);
    rc = 0;
out:
    pthread_mutex_unlock(&st->lock);
    sfm_certs_unref(certs);
    sfm_certs_unref(uploads);
    sfm_cert_entry_unref(ent);
    return rc;
}

int sfm_state_delete_cert(sfm_state *st, const char *id, sfm_state_error *e)
{
    pthread_mutex_lock(&st->lock);
    int rc = -1;
    sfm_certs *certs = NULL, *uploads = NULL;
    sfm_snapshot *next = NULL;
    const sfm_cert_entry *ent = sfm_certs_find_id(st->current->certs, id);
    if (!ent) {
        set_error(e, 404, "NOT_FOUND", "The requested resource does not exist");
        goto out;
    }
    /* The fixture's certificate stays deleted across restarts: a tombstone,
     * also when what is deleted is an upload of the same certificate. */
    int tombstone = ent->preloaded || sfm_certs_find_fp(st->preloads, ent->fp) != NULL;
    char(*tomb)[65] = NULL;
    if (tombstone) {
        tomb = realloc(st->tombstones, (st->n_tombstones + 1) * sizeof(*tomb));
        if (!tomb) {
            set_error(e, 500, "UNKNOWN_EXCEPTION", "Out of memory.");
            goto out;
        }
        st->tombstones = tomb;
    }
    certs = sfm_certs_ref(st->current->certs);
    uploads = sfm_certs_ref(st->uploads);
    if (set_remove(&certs, ent->id) < 0 ||
        (!ent->preloaded && sfm_certs_find_id(uploads, ent->id) && set_remove(&uploads, ent->id) < 0) ||
        !(next = snapshot_new(st->org, current_views(st), certs))) {
        set_error(e, 500, "UNKNOWN_EXCEPTION", "Out of memory.");
        goto out;
    }
    if (sfm_store_cert_delete(st->store, ent->fp_hex, tombstone) < 0) {
        set_error(e, 500, "UNKNOWN_EXCEPTION", "The deletion could not be saved.");
        goto out;
    }
    if (tombstone)
        snprintf(st->tombstones[st->n_tombstones++], 65, "%s", ent->fp_hex);
    sfm_certs_unref(st->uploads);
    st->uploads = uploads;
    uploads = NULL;
    publish(st, next); /* `ent` may be freed from here on */
    next = NULL;
    rc = 0;
out:
    pthread_mutex_unlock(&st->lock);
    sfm_snapshot_unref(next);
    sfm_certs_unref(certs);
    sfm_certs_unref(uploads);
    return rc;
}

int sfm_state_patch_user(sfm_state *st, const char *username, const sfm_user_patch *p, sfm_state_error *e)
{
    pthread_mutex_lock(&st->lock);
    int rc = -1;
    struct user_change merged = {0};
    struct views *views = NULL;
    const sfm_org *org = st->org;
    long ui = sfm_org_find_user(org, username);
    if (ui < 0) {
        set_error(e, 404, "NOT_FOUND", "No user named %s.", username);
        goto out;
    }
    if (p->profile && sfm_org_find_profile(org, p->profile) < 0) {
        set_error(e, 400, "INVALID_CROSS_REFERENCE_KEY", "Unknown profile \"%s\".", p->profile);
        goto out;
    }
    for (size_t i = 0; i < p->n_permsets; i++) {
        if (sfm_org_find_permset(org, p->permsets[i]) < 0) {
            set_error(e, 400, "INVALID_CROSS_REFERENCE_KEY", "Unknown permission set \"%s\".",
                      p->permsets[i]);
            goto out;
        }
    }
    /* The new change: the previous one with the patch on top. */
    const struct user_change *prev = change_of(st->changes, st->n_changes, org->users[ui].username);
    size_t slot = prev ? (size_t)(prev - st->changes) : st->n_changes;
    sfm_store_user su = {
        .username = org->users[ui].username,
        .profile = p->profile ? p->profile
                   : prev     ? prev->profile
                              : NULL,
        .permsets = p->has_permsets ? p->permsets
                    : prev          ? (const char *const *)prev->permsets
                                    : NULL,
        .n_permsets = p->has_permsets ? p->n_permsets
                      : prev          ? prev->n_permsets
                                      : 0,
        .has_permsets = p->has_permsets || (prev && prev->has_permsets),
        .active = p->active >= 0 ? p->active
                  : prev         ? prev->active
                                 : -1,
    };
    /* Room for one more change first, so that nothing can fail once it is stored. */
    struct user_change *grown = realloc(st->changes, (st->n_changes + 1) * sizeof(*grown));
    if (grown)
        st->changes = grown;
    if (!grown || change_copy(&merged, &su) < 0) {
        set_error(e, 500, "UNKNOWN_EXCEPTION", "Out of memory.");
        goto out;
    }
    prev = slot < st->n_changes ? &st->changes[slot] : NULL; /* moved by realloc */
    su.permsets = (const char *const *)merged.permsets;      /* without repeats */
    su.n_permsets = merged.n_permsets;
    /* `merged` holds the previous change's fields too, so applying it last is enough. */
    views = views_build(org, st->changes, st->n_changes, &merged);
    sfm_snapshot *next = views ? snapshot_new(st->org, views, st->current->certs) : NULL;
    if (!next) {
        set_error(e, 500, "UNKNOWN_EXCEPTION", "Out of memory.");
        goto out;
    }
    if (sfm_store_user_put(st->store, &su) < 0) {
        sfm_snapshot_unref(next);
        set_error(e, 500, "UNKNOWN_EXCEPTION", "The change could not be saved.");
        goto out;
    }
    if (prev)
        change_cleanup(&st->changes[slot]);
    else
        st->n_changes++;
    st->changes[slot] = merged;
    merged = (struct user_change){0};
    publish(st, next);
    rc = 0;
out:
    pthread_mutex_unlock(&st->lock);
    views_unref(views);
    change_cleanup(&merged);
    return rc;
}

int sfm_state_reset(sfm_state *st, sfm_state_error *e)
{
    pthread_mutex_lock(&st->lock);
    int rc = -1;
    char err[SFM_STATE_ERR_LEN];
    sfm_certs *empty = sfm_certs_new();
    if (!empty) {
        set_error(e, 500, "UNKNOWN_EXCEPTION", "Out of memory.");
        goto out;
    }
    if (sfm_store_reset(st->store) < 0) {
        set_error(e, 500, "UNKNOWN_EXCEPTION", "The reset could not be saved.");
        goto out;
    }
    sfm_certs_unref(st->uploads);
    st->uploads = empty;
    empty = NULL;
    free(st->tombstones);
    st->tombstones = NULL;
    st->n_tombstones = 0;
    changes_free(st->changes, st->n_changes);
    st->changes = NULL;
    st->n_changes = 0;
    if (rebuild(st, err) < 0) {
        set_error(e, 500, "UNKNOWN_EXCEPTION", "%s", err);
        goto out;
    }
    rc = 0;
out:
    pthread_mutex_unlock(&st->lock);
    sfm_certs_unref(empty);
    return rc;
}

int sfm_state_reload(sfm_state *st, sfm_org *org, sfm_pki_trust *trust, char err[SFM_STATE_ERR_LEN])
{
    sfm_certs *preloads = NULL, *certs = NULL;
    /* Issuing new preloads happens outside the lock: requests go on meanwhile. */
    int rc = preloads_build(org, trust, st->state_dir, &preloads, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&st->lock);
    /* Everything is built before anything changes; stale user changes are
     * left out of the views, and dropped once the reload has succeeded. */
    struct views *views = views_build(org, st->changes, st->n_changes, NULL);
    sfm_snapshot *next = NULL;
    if (views && certs_combine(st, preloads, st->uploads, &certs) == 0)
        next = snapshot_new(org, views, certs);
    views_unref(views);
    sfm_certs_unref(certs);
    if (!next) {
        pthread_mutex_unlock(&st->lock);
        sfm_certs_unref(preloads);
        snprintf(err, SFM_STATE_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    sfm_org *old_org = st->org;
    sfm_certs *old_preloads = st->preloads;
    st->org = sfm_org_ref(org);
    st->preloads = preloads;
    drop_stale_changes(st, org);
    sfm_pki_trust_free(st->trust);
    st->trust = trust;
    publish(st, next);
    pthread_mutex_unlock(&st->lock);
    sfm_org_unref(old_org);
    sfm_certs_unref(old_preloads);
    return 0;
}

int sfm_state_roots(sfm_state *st, sfm_pki_facts **out, size_t *n)
{
    pthread_mutex_lock(&st->lock);
    size_t count = sfm_pki_trust_count(st->trust);
    sfm_pki_facts *facts = count ? malloc(count * sizeof(*facts)) : NULL;
    if (count && !facts) {
        pthread_mutex_unlock(&st->lock);
        return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++)
        facts[i] = *sfm_pki_trust_facts_at(st->trust, i);
    pthread_mutex_unlock(&st->lock);
    *out = facts;
    *n = count;
    return 0;
}
