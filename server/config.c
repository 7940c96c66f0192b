#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_kind { OPT_STR, OPT_INT, OPT_LONG, OPT_BOOL, OPT_LIST, OPT_ENUM, OPT_ACTION };

struct opt {
    const char *name; /* without the leading "--" */
    enum opt_kind kind;
    size_t offset;              /* into sfm_config */
    long min, max;              /* OPT_INT, OPT_LONG */
    const char *const *choices; /* OPT_ENUM: index is the stored value... */
    char list_sep;              /* OPT_LIST: separator in the environment variable */
    const int *values;          /* OPT_ENUM: ...or, when set, values[index] */
};

static const char *const client_cert_choices[] = {"optional", "required", NULL};
static const char *const cert_failure_choices[] = {"page", "alert", NULL};
static const char *const server_key_choices[] = {"rsa", "ec", NULL};
static const char *const log_format_choices[] = {"text", "json", NULL};
static const char *const status_choices[] = {"401", "403", NULL};
static const int status_values[] = {401, 403};

#define OFF(f) offsetof(sfm_config, f)

static const struct opt opts[] = {
    {.name = "fixtures", .kind = OPT_STR, .offset = OFF(fixtures)},
    {.name = "state-dir", .kind = OPT_STR, .offset = OFF(state_dir)},
    {.name = "ephemeral", .kind = OPT_BOOL, .offset = OFF(ephemeral)},
    {.name = "reset", .kind = OPT_BOOL, .offset = OFF(reset)},
    {.name = "bind", .kind = OPT_LIST, .offset = OFF(bind), .list_sep = ','},
    {.name = "mtls-port", .kind = OPT_INT, .offset = OFF(mtls_port), .min = 0, .max = 65535},
    {.name = "port", .kind = OPT_INT, .offset = OFF(port), .min = 0, .max = 65535},
    {.name = "public-host", .kind = OPT_STR, .offset = OFF(public_host)},
    {.name = "public-port", .kind = OPT_INT, .offset = OFF(public_port), .min = 1, .max = 65535},
    {.name = "tls-cert", .kind = OPT_STR, .offset = OFF(tls_cert)},
    {.name = "tls-key", .kind = OPT_STR, .offset = OFF(tls_key)},
    {.name = "server-key", .kind = OPT_ENUM, .offset = OFF(server_key), .choices = server_key_choices},
    {.name = "trust", .kind = OPT_LIST, .offset = OFF(trust), .list_sep = ':'},
    {.name = "crl", .kind = OPT_LIST, .offset = OFF(crl), .list_sep = ':'},
    {.name = "allow-no-eku", .kind = OPT_BOOL, .offset = OFF(allow_no_eku)},
    {.name = "client-cert", .kind = OPT_ENUM, .offset = OFF(client_cert), .choices = client_cert_choices},
    {.name = "cert-failure", .kind = OPT_ENUM, .offset = OFF(cert_failure), .choices = cert_failure_choices},
    {.name = "mutual-auth-failed-status",
     .kind = OPT_ENUM,
     .offset = OFF(mutual_auth_failed_status),
     .choices = status_choices,
     .values = status_values},
    {.name = "handshake-timeout", .kind = OPT_INT, .offset = OFF(handshake_timeout), .min = 1, .max = 3600},
    {.name = "idle-timeout", .kind = OPT_INT, .offset = OFF(idle_timeout), .min = 1, .max = 86400},
    {.name = "session-timeout", .kind = OPT_INT, .offset = OFF(session_timeout), .min = 1, .max = 86400 * 7},
    {.name = "admin-token", .kind = OPT_STR, .offset = OFF(admin_token)},
    {.name = "history-max", .kind = OPT_LONG, .offset = OFF(history_max), .min = 1, .max = 100000000L},
    {.name = "workers", .kind = OPT_INT, .offset = OFF(workers), .min = 1, .max = 256},
    {.name = "log-format", .kind = OPT_ENUM, .offset = OFF(log_format), .choices = log_format_choices},
    {.name = "help", .kind = OPT_ACTION},
    {.name = "version", .kind = OPT_ACTION},
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

const char *sfm_config_usage(void)
{
    return "Usage: sfmtls-server [OPTION]...\n"
           "An offline Salesforce My Domain endpoint with Mutual Authentication (mTLS).\n"
           "Every option also reads SFMTLS_<NAME> (--mtls-port: SFMTLS_MTLS_PORT); flags win.\n"
           "\n"
           "  --fixtures FILE            the org (default fixtures/default-org.json)\n"
           "  --state-dir DIR            dev CA, server certificate, state (default ./.sfmtls)\n"
           "  --ephemeral                keep the database in memory\n"
           "  --reset                    return to the fixture on start\n"
           "  --bind ADDR[,ADDR]         listen addresses (default 127.0.0.1,::1)\n"
           "  --mtls-port N              the mTLS listener, like My Domain's 8443 (default 8443; 0: any)\n"
           "  --port N                   the standard listener, like 443 (default 8444; 0: any)\n"
           "  --public-host HOST         host named in instance URLs (default localhost)\n"
           "  --public-port N            port named in instance URLs (default: the standard port)\n"
           "  --tls-cert FILE            server certificate chain (PEM; default: issued by the dev CA)\n"
           "  --tls-key FILE             its private key\n"
           "  --server-key rsa|ec        key of the issued server certificate (default rsa, 2048 bits)\n"
           "  --trust FILE[:FILE]        more trust anchors (PEM bundles; root CAs only)\n"
           "  --crl FILE[:FILE]          certificate revocation lists (PEM or DER)\n"
           "  --allow-no-eku             accept a client leaf without extended key usage\n"
           "  --client-cert optional|required   require a client certificate in the handshake\n"
           "  --cert-failure page|alert  a failed client chain gets the Certificate Error page\n"
           "                             (default) or aborts the handshake with a TLS alert\n"
           "  --mutual-auth-failed-status 401|403   REST status of MUTUAL_AUTHENTICATION_FAILED\n"
           "  --handshake-timeout SEC    cut off slow handshakes (default 10)\n"
           "  --idle-timeout SEC         close idle connections (default 60)\n"
           "  --session-timeout SEC      sessions end after SEC idle seconds (default 7200)\n"
           "  --admin-token TOKEN        admin API token (default: generated into the state dir)\n"
           "  --history-max N            login history entries kept (default 100000)\n"
           "  --workers N                worker threads (default: the number of cores)\n"
           "  --log-format text|json     stderr log format (default text)\n"
           "  --help, --version\n";
}

static void set_err(char err[SFM_CONFIG_ERR_LEN], const char *fmt, const char *a, const char *b)
{
    snprintf(err, SFM_CONFIG_ERR_LEN, fmt, a, b);
}

static const struct opt *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return &opts[i];
    }
    return NULL;
}

static int replace_str(char **slot, const char *v)
{
    char *copy = strdup(v);
    if (!copy)
        return -ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

static void list_clear(sfm_str_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

static int list_push(sfm_str_list *l, const char *v, size_t len)
{
    if (l->n == SFM_CONFIG_LIST_MAX)
        return -E2BIG;
    char *copy = strndup(v, len);
    if (!copy)
        return -ENOMEM;
    l->v[l->n++] = copy;
    return 0;
}

/* `from_env`: the value came from a variable, so a list is split on its
 * separator and replaces what was there; from flags, each occurrence adds
 * one entry (after the first flag occurrence replaced the variable's list). */
static int apply(sfm_config *c, const struct opt *o, const char *v, const char *who, int from_env,
                 unsigned char *seen_flag, char err[SFM_CONFIG_ERR_LEN])
{
    void *field = (char *)c + o->offset;
    switch (o->kind) {
    case OPT_STR:
        if (*v == '\0') {
            set_err(err, "%s: empty value%s", who, "");
            return -EINVAL;
        }
        return replace_str(field, v);
    case OPT_INT:
    case OPT_LONG: {
        char *end = NULL;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end != '\0' || n < o->min || n > o->max) {
            char range[64];
            snprintf(range, sizeof(range), "%ld to %ld", o->min, o->max);
            set_err(err, "%s: expected a number from %s", who, range);
            return -EINVAL;
        }
        if (o->kind == OPT_INT)
            *(int *)field = (int)n;
        else
            *(long *)field = n;
        return 0;
    }
    case OPT_BOOL:
        if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
            *(int *)field = 1;
        } else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || *v == '\0') {
            *(int *)field = 0;
        } else {
            set_err(err, "%s: expected 1, true, 0 or false, got '%s'", who, v);
            return -EINVAL;
        }
        return 0;
    case OPT_ENUM:
        for (int i = 0; o->choices[i]; i++) {
            if (strcmp(v, o->choices[i]) == 0) {
                *(int *)field = o->values ? o->values[i] : i;
                return 0;
            }
        }
        char allowed[128] = "";
        for (int i = 0; o->choices[i]; i++)
            snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s%s", i ? "|" : "",
                     o->choices[i]);
        snprintf(err, SFM_CONFIG_ERR_LEN, "%s: expected %s, got '%s'", who, allowed, v);
        return -EINVAL;
    case OPT_LIST: {
        sfm_str_list *l = field;
        if (from_env || !*seen_flag) {
            list_clear(l);
            *seen_flag = !from_env;
        }
        const char *p = v;
        for (;;) {
            const char *sep = from_env ? strchr(p, o->list_sep) : NULL;
            size_t len = sep ? (size_t)(sep - p) : strlen(p);
            if (len == 0) {
                set_err(err, "%s: empty entry in '%s'", who, v);
                return -EINVAL;
            }
            int rc = list_push(l, p, len);
            if (rc < 0) {
                set_err(err, "%s: too many entries%s", who, "");
                return rc;
            }
            if (!sep)
                break;
            p = sep + 1;
        }
        return 0;
    }
    case OPT_ACTION: return 0;
    }
    return -EINVAL;
}

static void env_name(const struct opt *o, char out[64])
{
    size_t j = snprintf(out, 64, "SFMTLS_");
    for (const char *p = o->name; *p && j + 1 < 64; p++)
        out[j++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[j] = '\0';
}

static int set_defaults(sfm_config *c)
{
    memset(c, 0, sizeof(*c));
    c->mtls_port = 8443;
    c->port = 8444;
    c->mutual_auth_failed_status = 401;
    c->handshake_timeout = 10;
    c->idle_timeout = 60;
    c->session_timeout = 7200;
    c->history_max = 100000;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = cores > 0 ? (int)(cores > 256 ? 256 : cores) : 1;
    c->bind_is_default = 1;
    c->fixtures_is_default = 1;
    if (replace_str(&c->fixtures, "fixtures/default-org.json") < 0 ||
        replace_str(&c->state_dir, ".sfmtls") < 0 || replace_str(&c->public_host, "localhost") < 0 ||
        list_push(&c->bind, "127.0.0.1", 9) < 0 || list_push(&c->bind, "::1", 3) < 0)
        return -ENOMEM;
    return 0;
}

int sfm_config_parse(sfm_config *c, int argc, char **argv, char **envp, enum sfm_config_action *action,
                     char err[SFM_CONFIG_ERR_LEN])
{
    unsigned char seen_flag[N_OPTS] = {0};
    int rc = set_defaults(c);
    if (rc < 0) {
        set_err(err, "out of memory%s%s", "", "");
        goto fail;
    }
    *action = SFM_CONFIG_RUN;

    for (char **e = envp; e && *e; e++) {
        if (strncmp(*e, "SFMTLS_", 7) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        for (size_t i = 0; i < N_OPTS; i++) {
            char name[64];
            if (opts[i].kind == OPT_ACTION)
                continue;
            env_name(&opts[i], name);
            if (strlen(name) != (size_t)(eq - *e) || strncmp(*e, name, eq - *e) != 0)
                continue;
            if (opts[i].kind == OPT_LIST && eq[1] == '\0')
                break; /* an empty list variable leaves the default */
            rc = apply(c, &opts[i], eq + 1, name, 1, &seen_flag[i], err);
            if (rc < 0)
                goto fail;
            if (strcmp(opts[i].name, "bind") == 0)
                c->bind_is_default = 0;
            if (strcmp(opts[i].name, "fixtures") == 0)
                c->fixtures_is_default = 0;
            break;
        }
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            set_err(err, "unexpected argument '%s'%s", a, "");
            rc = -EINVAL;
            goto fail;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = find_opt(name, len);
        if (!o) {
            snprintf(err, SFM_CONFIG_ERR_LEN, "unknown option '--%.*s'", (int)len, name);
            rc = -EINVAL;
            goto fail;
        }
        const char *v;
        if (o->kind == OPT_ACTION) {
            *action = strcmp(o->name, "help") == 0 ? SFM_CONFIG_HELP : SFM_CONFIG_VERSION;
            continue;
        } else if (eq) {
            v = eq + 1;
        } else if (o->kind == OPT_BOOL) {
            v = "true";
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            set_err(err, "option '%s' needs a value%s", a, "");
            rc = -EINVAL;
            goto fail;
        }
        char who[80];
        snprintf(who, sizeof(who), "--%s", o->name);
        rc = apply(c, o, v, who, 0, &seen_flag[o - opts], err);
        if (rc < 0)
            goto fail;
        if (strcmp(o->name, "bind") == 0)
            c->bind_is_default = 0;
        if (strcmp(o->name, "fixtures") == 0)
            c->fixtures_is_default = 0;
    }

    if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
        set_err(err, "--tls-cert and --tls-key go together%s%s", "", "");
        rc = -EINVAL;
        goto fail;
    }
    return 0;

fail:
    sfm_config_cleanup(c);
    return rc;
}

void sfm_config_cleanup(sfm_config *c)
{
    free(c->fixtures);
    free(c->state_dir);
    free(c->public_host);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->admin_token);
    list_clear(&c->bind);
    list_clear(&c->trust);
    list_clear(&c->crl);
    memset(c, 0, sizeof(*c));
}
