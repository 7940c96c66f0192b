/*
 * sfmtls-server: start-up, the ready line, signals. Everything else lives in
 * the modules; main only wires them together and reports what went wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/random.h>

#include "bridge.h"
#include "config.h"
#include "history.h"
#include "http.h"
#include "log.h"
#include "org.h"
#include "pki.h"
#include "state.h"
#include "store.h"
#include "tls.h"
#include "worker.h"

#define MAX_WORKERS 256
#define PATH_LEN    4096
/* PEM files we read at start (certificates, keys, CRLs, trust bundles). */
#define MAX_PEM_FILE (16 * 1024 * 1024)

extern char **environ;

struct files {
    char *chain, *key;
    size_t chain_len, key_len;
};

static void path_join(char out[PATH_LEN], const char *dir, const char *name)
{
    snprintf(out, PATH_LEN, "%s/%s", dir, name);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The server certificate issued by the dev CA is kept while it is valid for
 * another day and matches --public-host and --server-key; else it is issued
 * again. A marker file records what it was issued for. */
static int ensure_server_cert(const sfm_config *cfg, char err[SFM_PKI_ERR_LEN])
{
    char crt[PATH_LEN], key[PATH_LEN], marker[PATH_LEN], want[512];
    path_join(crt, cfg->state_dir, "server.crt");
    path_join(key, cfg->state_dir, "server.key");
    path_join(marker, cfg->state_dir, "server.issued-for");
    snprintf(want, sizeof(want), "%s %s\n", cfg->public_host,
             cfg->server_key == SFM_SERVER_KEY_EC ? "ec" : "rsa2048");

    char *have = NULL;
    size_t have_len = 0;
    int fresh = 0;
    if (file_exists(crt) && file_exists(key) && sfm_pki_read_file(marker, 4096, &have, &have_len, err) == 0 &&
        strcmp(have, want) == 0) {
        char *pem = NULL;
        size_t pem_len = 0;
        sfm_der der[1];
        size_t n = 0;
        if (sfm_pki_read_file(crt, MAX_PEM_FILE, &pem, &pem_len, err) == 0 &&
            sfm_pki_pem_certs(pem, pem_len, der, 1, &n, NULL, err) == 0 && n == 1) {
            sfm_pki_facts f;
            if (sfm_pki_facts_of(der[0].der, der[0].len, &f) == 0 && f.not_after > time(NULL) + 86400)
                fresh = 1;
            sfm_pki_ders_free(der, n);
        }
        free(pem);
    }
    free(have);
    if (fresh)
        return 0;

    char prefix[PATH_LEN];
    path_join(prefix, cfg->state_dir, "server");
    const char *sans[] = {"localhost", "127.0.0.1", "::1", cfg->public_host};
    size_t n_sans = strcmp(cfg->public_host, "localhost") == 0 ? 3 : 4;
    sfm_pki_issue_opts o = {
        .kind = SFM_PKI_SERVER,
        .cn = cfg->public_host,
        .sans = sans,
        .n_sans = n_sans,
        .days = 397,
        .key = cfg->server_key == SFM_SERVER_KEY_EC ? SFM_PKI_KEY_EC_P256 : SFM_PKI_KEY_RSA2048,
        .out_prefix = prefix,
    };
    int rc = sfm_pki_issue(cfg->state_dir, &o, err);
    if (rc < 0)
        return rc;
    FILE *f = fopen(marker, "w");
    if (f) {
        fputs(want, f);
        fclose(f);
    }
    sfm_log(SFM_LOG_INFO, "server_certificate_issued", "%s.crt for %s", prefix, cfg->public_host);
    return 0;
}

static int load_server_files(const sfm_config *cfg, struct files *f, char err[SFM_PKI_ERR_LEN])
{
    char crt[PATH_LEN], key[PATH_LEN];
    if (cfg->tls_cert) {
        snprintf(crt, sizeof(crt), "%s", cfg->tls_cert);
        snprintf(key, sizeof(key), "%s", cfg->tls_key);
    } else {
        path_join(crt, cfg->state_dir, "server.chain.pem");
        path_join(key, cfg->state_dir, "server.key");
    }
    int rc = sfm_pki_read_file(crt, MAX_PEM_FILE, &f->chain, &f->chain_len, err);
    if (rc == 0)
        rc = sfm_pki_read_file(key, MAX_PEM_FILE, &f->key, &f->key_len, err);
    if (rc < 0)
        return rc;
    return 0;
}

/* Trust anchors and CRLs. */
struct trust_files {
    sfm_pki_trust *anchors;
    sfm_der crls[SFM_CONFIG_LIST_MAX];
    size_t n_crls;
};

static void trust_files_cleanup(struct trust_files *t)
{
    sfm_pki_trust_free(t->anchors);
    sfm_pki_ders_free(t->crls, t->n_crls);
}

static int load_trust(const sfm_config *cfg, struct trust_files *t, char err[SFM_PKI_ERR_LEN])
{
    char path[PATH_LEN];
    int rc = sfm_pki_trust_new(&t->anchors);
    if (rc < 0)
        return rc;
    size_t skipped = 0;
    path_join(path, cfg->state_dir, "ca.pem");
    rc = sfm_pki_trust_add_file(t->anchors, path, &skipped, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < cfg->trust.n; i++) {
        skipped = 0;
        size_t before = sfm_pki_trust_count(t->anchors);
        rc = sfm_pki_trust_add_file(t->anchors, cfg->trust.v[i], &skipped, err);
        if (rc < 0) {
            char msg[SFM_PKI_ERR_LEN];
            snprintf(msg, sizeof(msg), "--trust %s: %s", cfg->trust.v[i], err);
            snprintf(err, SFM_PKI_ERR_LEN, "%s", msg);
            return rc;
        }
        if (skipped && sfm_pki_trust_count(t->anchors) == before) {
            /* Nothing but intermediates, leaves or unparsable blocks: surely
             * not what the user meant. */
            snprintf(err, SFM_PKI_ERR_LEN,
                     "--trust %s: no self-signed CA certificate in it (%zu certificate(s) that are "
                     "intermediates, leaves or not valid X.509); Salesforce trusts only root CAs",
                     cfg->trust.v[i], skipped);
            return -EINVAL;
        }
        if (skipped)
            sfm_log(SFM_LOG_WARN, "trust_skipped",
                    "--trust %s: %zu certificate(s) ignored: intermediates, leaves or not valid "
                    "X.509; only self-signed CA certificates become anchors (Salesforce trusts "
                    "only root CAs)",
                    cfg->trust.v[i], skipped);
    }
    char *pem = NULL;
    size_t len = 0;
    for (size_t i = 0; i < cfg->crl.n; i++) {
        rc = sfm_pki_read_file(cfg->crl.v[i], MAX_PEM_FILE, &pem, &len, err);
        if (rc < 0) {
            char msg[SFM_PKI_ERR_LEN];
            snprintf(msg, sizeof(msg), "--crl %s: %s", cfg->crl.v[i], err);
            snprintf(err, SFM_PKI_ERR_LEN, "%s", msg);
            return rc;
        }
        /* Whether it holds a CRL at all is checked where it is loaded (tls.c). */
        t->crls[t->n_crls].der = (unsigned char *)pem;
        t->crls[t->n_crls].len = len;
        t->n_crls++;
    }
    return 0;
}

struct iso_time {
    char s[32];
};

static struct iso_time iso_time_of(time_t t)
{
    struct iso_time out;
    sfm_pki_iso8601(t, out.s);
    return out;
}

/*
 * The anchors layer 1 uses: every root of the trust set that is within its
 * dates now. A root outside them anchors nothing (Salesforce checks the dates
 * of every certificate), and wolfSSL refuses to load it anyway. *out borrows
 * the DER from `trust`; the caller frees the array.
 */
static int select_anchors(const sfm_pki_trust *trust, sfm_der **out, size_t *n)
{
    size_t count = sfm_pki_trust_count(trust);
    sfm_der *anchors = calloc(count + 1, sizeof(*anchors));
    if (!anchors)
        return -ENOMEM;
    time_t now = time(NULL);
    *n = 0;
    for (size_t i = 0; i < count; i++) {
        const sfm_pki_facts *f = sfm_pki_trust_facts_at(trust, i);
        if (f->not_after < now || f->not_before > now) {
            sfm_log(SFM_LOG_WARN, "trust_skipped", "root %s is valid from %s to %s only: not a trust anchor",
                    f->subject, iso_time_of(f->not_before).s, iso_time_of(f->not_after).s);
            continue;
        }
        anchors[(*n)++] = *sfm_pki_trust_at(trust, i);
    }
    *out = anchors;
    return 0;
}

/* The server-wide TLS state for the server certificate in `files` and the anchors and CRLs of `trust`. */
static int make_tls(const sfm_config *cfg, const struct files *files, const struct trust_files *trust,
                    sfm_tls_shared **out, char err[SFM_TLS_ERR_LEN])
{
    sfm_der *anchors = NULL; /* borrowed from trust->anchors */
    size_t n_anchors = 0;
    if (select_anchors(trust->anchors, &anchors, &n_anchors) < 0) {
        snprintf(err, SFM_TLS_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    sfm_tls_settings ts = {
        .cert_chain_pem = files->chain,
        .cert_chain_len = files->chain_len,
        .key_pem = files->key,
        .key_len = files->key_len,
        .anchors = anchors,
        .n_anchors = n_anchors,
        .crls = trust->crls,
        .crl_names = cfg->crl.v,
        .n_crls = trust->n_crls,
        .client_cert_required = cfg->client_cert == SFM_CLIENT_CERT_REQUIRED,
        .cert_failure_alert = cfg->cert_failure == SFM_CERT_FAILURE_ALERT,
        .allow_no_eku = cfg->allow_no_eku,
    };
    int rc = sfm_tls_shared_new(out, &ts, err);
    free(anchors);
    return rc;
}

/*
 * The admin token: --admin-token, else <state-dir>/admin-token, made once
 * (24 random bytes as hex, mode 0600) when it does not exist.
 */
static int admin_token(const sfm_config *cfg, char **out, char err[SFM_PKI_ERR_LEN])
{
    if (cfg->admin_token && *cfg->admin_token) {
        *out = strdup(cfg->admin_token);
        return *out ? 0 : -ENOMEM;
    }
    char path[PATH_LEN];
    path_join(path, cfg->state_dir, "admin-token");
    if (file_exists(path)) {
        size_t len = 0;
        int rc = sfm_pki_read_file(path, 4096, out, &len, err);
        if (rc < 0)
            return rc;
        while (len && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r' || (*out)[len - 1] == ' '))
            (*out)[--len] = '\0';
        if (len == 0) {
            snprintf(err, SFM_PKI_ERR_LEN, "%.160s is empty: delete it to have a new token made", path);
            free(*out);
            *out = NULL;
            return -EINVAL;
        }
        return 0;
    }
    WC_RNG rng;
    unsigned char raw[24];
    if (wc_InitRng(&rng) != 0) {
        snprintf(err, SFM_PKI_ERR_LEN, "no random numbers");
        return -EIO;
    }
    int ok = wc_RNG_GenerateBlock(&rng, raw, sizeof(raw)) == 0;
    wc_FreeRng(&rng);
    char *tok = malloc(2 * sizeof(raw) + 2);
    if (!ok || !tok) {
        free(tok);
        snprintf(err, SFM_PKI_ERR_LEN, "cannot make a token");
        return -EIO;
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(tok + 2 * i, 3, "%02x", raw[i]);
    /* Written aside and renamed into place, so that a crash never leaves a
     * partial token behind. */
    char tmp[PATH_LEN + 8];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = 2 * sizeof(raw);
    tok[len] = '\n';
    int ok_write = fd >= 0 && write(fd, tok, len + 1) == (ssize_t)(len + 1) && fsync(fd) == 0;
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && ok_write) {
        ok_write = 0;
        e = errno;
    }
    if (ok_write && rename(tmp, path) != 0) {
        ok_write = 0;
        e = errno;
    }
    if (!ok_write) {
        snprintf(err, SFM_PKI_ERR_LEN, "%.200s: %s", path, strerror(e));
        (void)unlink(tmp);
        free(tok);
        return -EIO;
    }
    tok[len] = '\0';
    sfm_log(SFM_LOG_INFO, "admin_token_created",
            "%s (mode 0600): send it as \"Authorization: Bearer <token>\"", path);
    *out = tok;
    return 0;
}

static void log_org_warnings(const sfm_org *org)
{
    for (size_t i = 0; i < org->n_warnings; i++)
        sfm_log(SFM_LOG_WARN, "fixture_warning", "%s", org->warnings[i]);
}

/* What SIGHUP reloads, and what it needs to do so. */
struct server {
    const sfm_config *cfg;
    const struct files *files;
    sfm_state *state;
    sfm_records *records;
    sfm_tls_shared **tls;
    sfm_worker **workers;
    int n_workers;
};

/*
 * Builds, and frees, both listeners' contexts on `sh`: what the workers will
 * do with it. A CRL or anchor that wolfSSL refuses shows here, while the
 * reload can still be called off; in a worker it could only be logged.
 */
static int probe_tls(sfm_tls_shared *sh, char err[SFM_TLS_ERR_LEN])
{
    for (int l = 0; l < 2; l++) {
        sfm_tls_ctx *ctx = NULL;
        int rc = sfm_tls_ctx_new(&ctx, sh, (enum sfm_listener)l, err);
        sfm_tls_ctx_unref(ctx);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * SIGHUP: the fixture and the trust store (anchors and CRLs), all or
 * nothing. Everything new is built while the old is still in force; then the
 * org snapshot is swapped and the workers are handed the new TLS state, which
 * each puts in force for the connections it accepts next. Client
 * authentication never lapses: until a worker switches, the old contexts
 * verify as before.
 */
static void reload(struct server *srv)
{
    static char err[16384];
    char pki_err[SFM_PKI_ERR_LEN] = "", tls_err[SFM_TLS_ERR_LEN] = "";
    const sfm_config *cfg = srv->cfg;
    sfm_org *org = NULL;
    struct trust_files trust = {0};
    sfm_tls_shared *tls = NULL;
    if (sfm_org_load(&org, cfg->fixtures, err, sizeof(err)) < 0) {
        sfm_log(SFM_LOG_ERROR, "reload_failed", "the fixture cannot be loaded; nothing changed:\n%s", err);
        return;
    }
    if (load_trust(cfg, &trust, pki_err) < 0) {
        sfm_log(SFM_LOG_ERROR, "reload_failed", "trust store: %s; nothing changed", pki_err);
        goto out;
    }
    if (make_tls(cfg, srv->files, &trust, &tls, tls_err) < 0 || probe_tls(tls, tls_err) < 0) {
        sfm_log(SFM_LOG_ERROR, "reload_failed", "TLS: %s; nothing changed", tls_err);
        goto out;
    }
    size_t n_anchors = sfm_pki_trust_count(trust.anchors);
    if (sfm_state_reload(srv->state, org, trust.anchors, err) < 0) {
        sfm_log(SFM_LOG_ERROR, "reload_failed", "%s; nothing changed", err);
        goto out;
    }
    trust.anchors = NULL; /* the state's now */
    /* Records changed through the API go back to the (new) fixture's. */
    if (sfm_records_reset(srv->records, org) < 0)
        sfm_log(SFM_LOG_ERROR, "reload", "out of memory: the records keep the API's changes");
    for (int i = 0; i < srv->n_workers; i++)
        sfm_worker_set_tls(srv->workers[i], tls);
    sfm_tls_shared_unref(*srv->tls);
    *srv->tls = tls;
    tls = NULL;
    log_org_warnings(org);
    sfm_log(SFM_LOG_INFO, "reloaded",
            "fixture %s (%zu users, %zu certificates preloaded), %zu trust anchor(s), %zu CRL(s)",
            cfg->fixtures, org->n_users, org->n_certs, n_anchors, trust.n_crls);
out:
    sfm_tls_shared_unref(tls);
    trust_files_cleanup(&trust);
    sfm_org_unref(org);
}

/* "https://host[:port]": port 443 is left out, an IPv6 literal bracketed (SPEC section 4). */
static void public_url(char *out, size_t len, const char *host, int port)
{
    const char *lb = strchr(host, ':') ? "[" : "", *rb = *lb ? "]" : "";
    if (port == 443)
        snprintf(out, len, "https://%s%s%s", lb, host, rb);
    else
        snprintf(out, len, "https://%s%s%s:%d", lb, host, rb, port);
}

static int parse_numeric_host(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(addr, portstr, &hints, &res);
    if (rc != 0)
        return -EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/*
 * Binds a TCP socket to addr:port; with `group` it joins the SO_REUSEPORT
 * group every worker binds for that port, and listens. Returns the socket or
 * a negative errno; *real_port is the bound port.
 */
static int bind_socket(const char *addr, int port, int group, int *real_port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_numeric_host(addr, port, &ss, &len) < 0)
        return -EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (group)
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    /* Accepted connections inherit it (Linux): every write is a whole TLS
     * record or flight, which Nagle would only hold back. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (group && listen(fd, 4096) < 0)) {
        int e = errno;
        close(fd);
        return -e;
    }
    struct sockaddr_storage got;
    socklen_t got_len = sizeof(got);
    if (getsockname(fd, (struct sockaddr *)&got, &got_len) == 0)
        *real_port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                                    : ((struct sockaddr_in6 *)&got)->sin6_port);
    return fd;
}

/*
 * The first worker's socket for an address. Another process's SO_REUSEPORT
 * group on the port (a second sfmtls started by mistake) would let us join
 * it and share its clients; a plain bind first fails with EADDRINUSE then.
 * It also picks the port when asked for port 0.
 */
static int open_first_listener(const char *addr, int port, int *real_port)
{
    int probe = bind_socket(addr, port, 0, real_port);
    if (probe < 0)
        return probe;
    close(probe);
    return bind_socket(addr, *real_port, 1, real_port);
}

/* Every worker's listening sockets: one per listener and bind address. */
struct listeners {
    int fds[MAX_WORKERS][SFM_WORKER_MAX_LISTEN];
    enum sfm_listener kinds[SFM_WORKER_MAX_LISTEN];
    size_t n;
    int ports[2];           /* the real port of each listener, by enum sfm_listener */
    const char *first_addr; /* named in the ready line */
};

/* Closes the sockets of workers [from, to). */
static void close_listeners(struct listeners *ls, int from, int to)
{
    for (int wi = from; wi < to; wi++)
        for (size_t j = 0; j < ls->n; j++)
            close(ls->fds[wi][j]);
}

/*
 * Opens, for each worker, a socket per listener and --bind address, all
 * sharing one port per listener (port 0: the first socket picks it). The
 * default ::1 is skipped with a warning on a host without IPv6. On failure
 * says why on stderr, closes what it opened and returns -1.
 */
static int open_listeners(const sfm_config *cfg, int n_workers, struct listeners *ls)
{
    static const enum sfm_listener order[] = {SFM_LISTENER_MTLS, SFM_LISTENER_STANDARD};
    ls->ports[SFM_LISTENER_MTLS] = cfg->mtls_port;
    ls->ports[SFM_LISTENER_STANDARD] = cfg->port;
    for (size_t l = 0; l < 2; l++) {
        enum sfm_listener kind = order[l];
        for (size_t b = 0; b < cfg->bind.n && ls->n < SFM_WORKER_MAX_LISTEN; b++) {
            const char *addr = cfg->bind.v[b];
            int wi;
            for (wi = 0; wi < n_workers; wi++) {
                int real = ls->ports[kind];
                int fd = wi == 0 ? open_first_listener(addr, ls->ports[kind], &real)
                                 : bind_socket(addr, ls->ports[kind], 1, &real);
                if (fd >= 0) {
                    ls->fds[wi][ls->n] = fd;
                    ls->ports[kind] = real;
                    continue;
                }
                if (wi == 0 && cfg->bind_is_default && strchr(addr, ':') &&
                    (fd == -EADDRNOTAVAIL || fd == -EAFNOSUPPORT)) {
                    if (kind == SFM_LISTENER_MTLS)
                        sfm_log(SFM_LOG_WARN, "bind_skipped", "%s: no IPv6 on this host", addr);
                    break;
                }
                fprintf(stderr, "sfmtls-server: cannot listen on %s port %d (%s): %s\n", addr,
                        ls->ports[kind], kind == SFM_LISTENER_MTLS ? "--mtls-port" : "--port", strerror(-fd));
                for (int k = 0; k < wi; k++)
                    close(ls->fds[k][ls->n]);
                close_listeners(ls, 0, n_workers);
                return -1;
            }
            if (wi == n_workers) {
                ls->kinds[ls->n++] = kind;
                if (!ls->first_addr)
                    ls->first_addr = addr;
            }
        }
    }
    if (ls->n == 0) {
        fprintf(stderr, "sfmtls-server: no address to listen on\n");
        return -1;
    }
    return 0;
}

/* Waits for SIGTERM or SIGINT (blocked in every thread: only sigwait sees
 * them); SIGHUP reloads meanwhile. */
static void wait_for_stop(const sigset_t *sigs, struct server *srv)
{
    for (;;) {
        int sig = 0;
        if (sigwait(sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload(srv);
            continue;
        }
        sfm_log(SFM_LOG_INFO, "stopping", "%s: finishing requests in flight",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
        return;
    }
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int ensure_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

int main(int argc, char **argv)
{
    sfm_config cfg;
    enum sfm_config_action action;
    char err[SFM_CONFIG_ERR_LEN];
    if (sfm_config_parse(&cfg, argc, argv, environ, &action, err) < 0) {
        fprintf(stderr, "sfmtls-server: %s\nTry 'sfmtls-server --help'.\n", err);
        return 2;
    }
    if (action == SFM_CONFIG_HELP) {
        fputs(sfm_config_usage(), stdout);
        sfm_config_cleanup(&cfg);
        return 0;
    }
    if (action == SFM_CONFIG_VERSION) {
        printf("sfmtls-server %s (wolfSSL %s, %s build; libmicrohttpd %s)\n", SFMTLS_VERSION,
               wolfSSL_lib_version(), SFMTLS_WOLFSSL_BUILD, sfm_bridge_version());
        sfm_config_cleanup(&cfg);
        return 0;
    }
    sfm_log_init(cfg.log_format);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    int status = 1;
    sfm_org *org = NULL;
    sfm_tls_shared *tls = NULL;
    struct files files = {0};
    struct trust_files trust = {0};
    sfm_worker *workers[MAX_WORKERS] = {0};
    int n_workers = 0;
    static struct listeners ls;
    char pki_err[SFM_PKI_ERR_LEN] = "";
    static char org_err[16384];
    sfm_store *store = NULL;
    sfm_history *history = NULL;
    sfm_state *state = NULL;
    sfm_sessions *sessions = NULL;
    sfm_records *records = NULL;
    /* DailyApiRequests' maximum: a Developer Edition org's 15,000 [emu]. */
    sfm_api_usage usage = {.max = 15000};
    char *token = NULL;

    if (cfg.fixtures_is_default && !file_exists(cfg.fixtures) && file_exists(SFMTLS_DEFAULT_FIXTURES)) {
        /* Started outside the source tree: use the bundled org. */
        free(cfg.fixtures);
        cfg.fixtures = strdup(SFMTLS_DEFAULT_FIXTURES);
        if (!cfg.fixtures) {
            fprintf(stderr, "sfmtls-server: out of memory\n");
            goto out;
        }
    }
    if (sfm_org_load(&org, cfg.fixtures, org_err, sizeof(org_err)) < 0) {
        fprintf(stderr, "sfmtls-server: the fixture cannot be loaded:\n%s\n", org_err);
        goto out;
    }
    log_org_warnings(org);
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
        fprintf(stderr, "sfmtls-server: wolfSSL_Init failed\n");
        goto out;
    }
    int rc = ensure_dir(cfg.state_dir);
    if (rc < 0) {
        fprintf(stderr, "sfmtls-server: --state-dir %s: %s\n", cfg.state_dir, strerror(-rc));
        goto out;
    }
    if (!sfm_pki_ca_exists(cfg.state_dir)) {
        if (sfm_pki_ca_init(cfg.state_dir, SFM_PKI_KEY_EC_P256, pki_err) < 0) {
            fprintf(stderr, "sfmtls-server: cannot create the dev CA in %s: %s\n", cfg.state_dir, pki_err);
            goto out;
        }
        sfm_log(SFM_LOG_INFO, "dev_ca_created", "%s/ca.pem: clients trust this root", cfg.state_dir);
    }
    if (!cfg.tls_cert && ensure_server_cert(&cfg, pki_err) < 0) {
        fprintf(stderr, "sfmtls-server: cannot issue the server certificate: %s\n", pki_err);
        goto out;
    }
    if (load_server_files(&cfg, &files, pki_err) < 0) {
        fprintf(stderr, "sfmtls-server: server certificate: %s\n", pki_err);
        goto out;
    }
    if (load_trust(&cfg, &trust, pki_err) < 0) {
        fprintf(stderr, "sfmtls-server: %s\n", pki_err);
        goto out;
    }

    char tls_err[SFM_TLS_ERR_LEN];
    /* Contexts are built once here, as a reload does, so that a server
     * certificate or CRL wolfSSL refuses stops the start with its file named,
     * before any state is written. */
    if (make_tls(&cfg, &files, &trust, &tls, tls_err) < 0 || probe_tls(tls, tls_err) < 0) {
        if (cfg.tls_cert)
            fprintf(stderr, "sfmtls-server: --tls-cert %s / --tls-key %s: %s\n", cfg.tls_cert, cfg.tls_key,
                    tls_err);
        else
            fprintf(stderr, "sfmtls-server: TLS: %s\n", tls_err);
        goto out;
    }
    if (admin_token(&cfg, &token, pki_err) < 0) {
        fprintf(stderr, "sfmtls-server: admin token: %s\n", pki_err);
        goto out;
    }

    char store_err[SFM_STORE_ERR_LEN], db[PATH_LEN];
    path_join(db, cfg.state_dir, "state.db");
    if (sfm_store_open(&store, cfg.ephemeral ? NULL : db, store_err) < 0) {
        fprintf(stderr, "sfmtls-server: %s\n", store_err);
        goto out;
    }
    if (cfg.reset) {
        if (sfm_store_reset(store) < 0) {
            fprintf(stderr, "sfmtls-server: --reset: cannot empty %s\n", db);
            goto out;
        }
        sfm_log(SFM_LOG_INFO, "reset", "runtime changes and login history forgotten: back to the fixture");
    }
    rc = sfm_history_new(&history, store, cfg.history_max);
    if (rc < 0) {
        fprintf(stderr, "sfmtls-server: login history: %s\n", strerror(-rc));
        goto out;
    }
    /* The state takes the anchors: uploads are checked against them. */
    rc = sfm_state_new(&state, org, trust.anchors, store, cfg.state_dir, org_err);
    trust.anchors = NULL;
    if (rc < 0) {
        fprintf(stderr, "sfmtls-server: %s\n", org_err);
        goto out;
    }

    if (sfm_sessions_new(&sessions, org->id, cfg.session_timeout) < 0 || sfm_records_new(&records, org) < 0) {
        fprintf(stderr, "sfmtls-server: out of memory\n");
        goto out;
    }

    n_workers = cfg.workers > MAX_WORKERS ? MAX_WORKERS : cfg.workers;
    if (open_listeners(&cfg, n_workers, &ls) < 0)
        goto out;

    sfm_app app = {
        .state = state,
        .history = history,
        .admin_token = token,
        .mutual_auth_failed_status = cfg.mutual_auth_failed_status,
        .sessions = sessions,
        .records = records,
        .usage = &usage,
        .session_timeout = cfg.session_timeout,
    };
    public_url(app.instance_url, sizeof(app.instance_url), cfg.public_host,
               cfg.public_port ? cfg.public_port : ls.ports[SFM_LISTENER_STANDARD]);
    public_url(app.mtls_url, sizeof(app.mtls_url), cfg.public_host, ls.ports[SFM_LISTENER_MTLS]);
    for (int wi = 0; wi < n_workers; wi++) {
        sfm_worker_opts o = {
            .id = wi,
            .n_listen = ls.n,
            .tls = tls,
            .app = &app,
            .handshake_timeout_ms = cfg.handshake_timeout * 1000,
            .idle_timeout_ms = cfg.idle_timeout * 1000,
        };
        memcpy(o.listen_fds, ls.fds[wi], ls.n * sizeof(int));
        memcpy(o.listen_kinds, ls.kinds, ls.n * sizeof(ls.kinds[0]));
        char werr[SFM_WORKER_ERR_LEN];
        /* The worker owns its descriptors from here, even when it fails. */
        if (sfm_worker_new(&workers[wi], &o, werr) < 0) {
            fprintf(stderr, "sfmtls-server: worker %d: %s\n", wi, werr);
            close_listeners(&ls, wi + 1, n_workers);
            goto stop_workers;
        }
    }

    /* Signals go to this thread only: block them before the workers start. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    for (int wi = 0; wi < n_workers; wi++) {
        if (sfm_worker_start(workers[wi]) < 0) {
            fprintf(stderr, "sfmtls-server: cannot start worker %d\n", wi);
            goto stop_workers;
        }
    }

    const char *host = ls.first_addr, *lb = strchr(host, ':') ? "[" : "", *rb = *lb ? "]" : "";
    printf("sfmtls ready mtls=https://%s%s%s:%d standard=https://%s%s%s:%d\n", lb, host, rb,
           ls.ports[SFM_LISTENER_MTLS], lb, host, rb, ls.ports[SFM_LISTENER_STANDARD]);
    fflush(stdout);
    sfm_log(SFM_LOG_INFO, "ready", "%d worker(s), org %s (%s), state %s", n_workers, org->name, org->id,
            cfg.state_dir);
    struct server srv = {&cfg, &files, state, records, &tls, workers, n_workers};
    wait_for_stop(&sigs, &srv);
    status = 0;

stop_workers:
    for (int wi = 0; wi < n_workers; wi++)
        if (workers[wi])
            sfm_worker_stop(workers[wi]);
    for (int wi = 0; wi < n_workers; wi++)
        sfm_worker_free(workers[wi]);

out:
    sfm_history_free(history); /* writes what is queued */
    sfm_records_free(records);
    sfm_sessions_free(sessions);
    sfm_state_free(state);
    sfm_store_close(store);
    if (token)
        memset(token, 0, strlen(token));
    free(token);
    sfm_tls_shared_unref(tls);
    trust_files_cleanup(&trust);
    free(files.chain);
    if (files.key)
        memset(files.key, 0, files.key_len);
    free(files.key);
    sfm_org_unref(org);
    sfm_config_cleanup(&cfg);
    sfm_tls_thread_cleanup();
    wolfSSL_Cleanup();
    return status;
}
