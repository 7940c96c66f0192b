#include "server.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

#define ORG_ERR_LEN 65536

void sfm_fuzz_server_new(sfm_fuzz_server *s, const char *fixture, const char *extra_pem, size_t extra_len,
                         const char *admin_token, int session_secs, long history_kept)
{
    static char org_err[ORG_ERR_LEN];
    char err[SFM_STATE_ERR_LEN] = "", path[SFM_FUZZ_PATH_MAX + 16];
    char pki_err[SFM_PKI_ERR_LEN] = "", store_err[SFM_STORE_ERR_LEN] = "";

    sfm_fuzz_ca_new(s->dir); /* also the state directory: clients/ goes there */
    if (sfm_org_load(&s->org, fixture, org_err, sizeof(org_err)) != 0)
        sfm_fuzz_die("sfm_org_load", org_err);
    sfm_pki_trust *trust = NULL;
    snprintf(path, sizeof(path), "%s/ca.pem", s->dir);
    if (sfm_pki_trust_new(&trust) != 0 || sfm_pki_trust_add_file(trust, path, NULL, pki_err) != 0 ||
        (extra_pem && sfm_pki_trust_add_pem(trust, extra_pem, extra_len, NULL, pki_err) != 0))
        sfm_fuzz_die("trust anchors", pki_err);
    if (sfm_store_open(&s->store, NULL, store_err) != 0)
        sfm_fuzz_die("sfm_store_open", store_err);
    if (sfm_sessions_new(&s->sessions, s->org->id, session_secs) != 0 ||
        sfm_records_new(&s->records, s->org) != 0)
        sfm_fuzz_die("sessions and records", NULL);
    if (sfm_state_new(&s->state, s->org, trust, s->store, s->dir, err) != 0)
        sfm_fuzz_die("sfm_state_new", err);
    if (sfm_history_new(&s->history, s->store, history_kept) != 0)
        sfm_fuzz_die("sfm_history_new", NULL);
    s->usage.max = 15000;
    s->app = (sfm_app){.state = s->state,
                       .history = s->history,
                       .admin_token = admin_token,
                       .mutual_auth_failed_status = 403,
                       .sessions = s->sessions,
                       .records = s->records,
                       .usage = &s->usage,
                       .session_timeout = session_secs};
    s->clean_generation = sfm_fuzz_server_snapshot(s)->generation;
}

const sfm_snapshot *sfm_fuzz_server_snapshot(sfm_fuzz_server *s)
{
    return sfm_state_refresh(s->state, &s->held);
}

void sfm_fuzz_server_clean(sfm_fuzz_server *s)
{
    sfm_state_error e = {0};
    if (sfm_fuzz_server_snapshot(s)->generation != s->clean_generation) {
        if (sfm_state_reset(s->state, &e) != 0)
            sfm_fuzz_die("sfm_state_reset", e.message);
        s->clean_generation = sfm_fuzz_server_snapshot(s)->generation;
    }
    if (sfm_history_clear(s->history) != 0)
        sfm_fuzz_die("sfm_history_clear", NULL);
    if (sfm_records_reset(s->records, s->org) != 0)
        sfm_fuzz_die("sfm_records_reset", NULL);
    sfm_sessions_clear(s->sessions);
    atomic_store(&s->usage.used, 0);
}

void sfm_fuzz_server_free(sfm_fuzz_server *s)
{
    sfm_snapshot_unref(s->held);
    sfm_records_free(s->records);
    sfm_sessions_free(s->sessions);
    sfm_history_free(s->history);
    sfm_state_free(s->state);
    sfm_store_close(s->store);
    sfm_org_unref(s->org);
    sfm_fuzz_ca_remove(s->dir);
}

/* Percent-decodes s in place as libmicrohttpd does ('+' a space when `plus`); a decoded NUL ends it. */
static void unescape(char *s, int plus)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '%' && sfm_hex_digit((unsigned char)p[1]) >= 0 && sfm_hex_digit((unsigned char)p[2]) >= 0) {
            *o++ = (char)(sfm_hex_digit((unsigned char)p[1]) * 16 + sfm_hex_digit((unsigned char)p[2]));
            p += 2;
            if (o[-1] == '\0')
                return;
        } else {
            *o++ = plus && *p == '+' ? ' ' : *p;
        }
    }
    *o = '\0';
}

static size_t parse_query(char *q, sfm_field *fields)
{
    size_t n = 0;
    while (q && *q && n < SFM_HTTP_MAX_FIELDS) {
        char *amp = strchr(q, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(q, '=');
        if (eq)
            *eq = '\0';
        unescape(q, 1);
        if (eq)
            unescape(eq + 1, 1);
        fields[n].name = q;
        fields[n].value = eq ? eq + 1 : "";
        n++;
        q = amp ? amp + 1 : NULL;
    }
    return n;
}

size_t sfm_fuzz_server_target(char *target, sfm_field *query)
{
    size_t n = 0;
    char *qmark = strchr(target, '?');
    if (qmark) {
        *qmark = '\0';
        n = parse_query(qmark + 1, query);
    }
    unescape(target, 0);
    return n;
}
