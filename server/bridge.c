#include "bridge.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

/* libmicrohttpd's per-connection pool, malloc'd whole and resident: the
 * request line and headers, then the response header. Salesforce requests
 * carry small headers (a session id is about 112 bytes); 8 KiB takes a
 * header block of about 7 KiB (431 beyond; a test proves both) at a quarter
 * of the default's memory. */
#define SFM_BRIDGE_CONN_MEMORY (8 * 1024)

struct sfm_bridge {
    struct MHD_Daemon *mhd;
    const sfm_app *app;
    sfm_peer *adding;   /* handed to the connection MHD_add_connection creates */
    int draining;       /* answers close their connection */
    sfm_snapshot *snap; /* this worker's reference to the org, refreshed per request */
};

/* Per request: the body collected so far. */
struct req_state {
    char *body;
    size_t len, cap;
    int too_large;
};

/*
 * libmicrohttpd 0.9.75 sets TCP_NODELAY and TCP_CORK around every answer on
 * a connection it did not accept itself, and gives up on a socket only when
 * the call fails with EINVAL, ENOPROTOOPT or ENOTSOCK. Linux answers
 * EOPNOTSUPP on the socketpair, so that was two failed system calls per
 * request. This definition takes the place of the C library's for the whole
 * process and reports the same failure as ENOPROTOOPT ("no such option at
 * this level", which it is), after which libmicrohttpd marks the socket as
 * not TCP/IP and stops trying. Every other call behaves as before.
 */
int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    long rc = syscall(SYS_setsockopt, fd, level, name, value, len);
    if (rc < 0 && errno == EOPNOTSUPP && level == IPPROTO_TCP)
        errno = ENOPROTOOPT;
    return (int)rc;
}

static void quiet_logger(void *cls, const char *fmt, va_list ap)
{
    /* libmicrohttpd reports its TCP option calls failing on the socketpair,
     * and clients that vanish; neither is news. (The logger must be the
     * first option to silence it from the start.) */
    (void)cls;
    (void)fmt;
    (void)ap;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    sfm_bridge *b = cls;
    (void)c;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = b->adding;
        b->adding = NULL;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        sfm_peer_unref(*socket_context);
        *socket_context = NULL;
    }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req_state *rs = *req_cls;
    if (rs) {
        free(rs->body);
        free(rs);
    }
    *req_cls = NULL;
}

struct fields {
    sfm_field *v;
    size_t n;
};

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct fields *f = cls;
    if (f->n == SFM_HTTP_MAX_FIELDS)
        return MHD_NO;
    f->v[f->n].name = key;
    f->v[f->n].value = value ? value : "";
    f->n++;
    return MHD_YES;
}

static int append_body(struct req_state *rs, const char *data, size_t len)
{
    if (rs->too_large || len > SFM_HTTP_MAX_BODY - rs->len) {
        rs->too_large = 1;
        return 0;
    }
    if (rs->len + len > rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 4096;
        while (cap < rs->len + len)
            cap *= 2;
        if (cap > SFM_HTTP_MAX_BODY)
            cap = SFM_HTTP_MAX_BODY;
        char *nb = realloc(rs->body, cap);
        if (!nb)
            return -ENOMEM;
        rs->body = nb;
        rs->cap = cap;
    }
    memcpy(rs->body + rs->len, data, len);
    rs->len += len;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    sfm_bridge *b = cls;
    (void)version;
    struct req_state *rs = *req_cls;
    if (!rs) {
        rs = calloc(1, sizeof(*rs));
        if (!rs)
            return MHD_NO;
        *req_cls = rs;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!rs->cap && !rs->too_large) {
            /* Room for the announced body at once, not doublings from 4 KiB
             * (each one a copy, and for large bodies a heap that grows and
             * shrinks again per request). */
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            char *end = NULL;
            unsigned long long n = cl ? strtoull(cl, &end, 10) : 0;
            if (cl && end != cl && *end == '\0' && n > 0 && n <= SFM_HTTP_MAX_BODY) {
                rs->body = malloc((size_t)n);
                if (!rs->body)
                    return MHD_NO;
                rs->cap = (size_t)n;
            }
        }
        if (append_body(rs, upload_data, *upload_data_size) < 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }

    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const sfm_peer *peer = ci ? ci->socket_context : NULL;
    if (!peer)
        return MHD_NO; /* never happens: every connection is added with its peer */

    sfm_field headers[SFM_HTTP_MAX_FIELDS], query[SFM_HTTP_MAX_FIELDS];
    struct fields hf = {headers, 0}, qf = {query, 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect, &hf);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect, &qf);
    sfm_request req = {
        .peer = peer,
        .snap = sfm_state_refresh(b->app->state, &b->snap),
        .method = method,
        .path = url,
        .headers = headers,
        .n_headers = hf.n,
        .query = query,
        .n_query = qf.n,
        .body = rs->body ? rs->body : "",
        .body_len = rs->len,
        .body_too_large = rs->too_large,
    };
    sfm_response resp;
    sfm_http_handle(b->app, &req, &resp);
    if (resp.denied)
        sfm_log(SFM_LOG_INFO, "request_denied", "%s %s %s listener=%s peer=%s", resp.denied, method, url,
                sfm_listener_name(peer->listener), peer->remote_addr);

    struct MHD_Response *r = MHD_create_response_from_buffer(resp.body_len, resp.body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        sfm_response_cleanup(&resp);
        return MHD_NO;
    }
    resp.body = NULL; /* now the response's */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp.content_type);
    for (size_t i = 0; i < resp.n_headers; i++)
        MHD_add_response_header(r, resp.headers[i].name, resp.headers[i].value);
    if (b->draining)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp.status, r);
    MHD_destroy_response(r);
    return ret;
}

int sfm_bridge_new(sfm_bridge **out, const sfm_app *app)
{
    sfm_bridge *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->app = app;
    /* The logger must be the first option to silence libmicrohttpd from the
     * start (it logs while parsing the options that follow). */
    b->mhd = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG, 0,
                              NULL, NULL, on_request, b, MHD_OPTION_EXTERNAL_LOGGER, quiet_logger, b,
                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, b, MHD_OPTION_NOTIFY_COMPLETED,
                              on_completed, b, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000000,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                              (size_t)SFM_BRIDGE_CONN_MEMORY, MHD_OPTION_END);
    if (!b->mhd) {
        free(b);
        return -EIO;
    }
    *out = b;
    return 0;
}

void sfm_bridge_free(sfm_bridge *b)
{
    if (!b)
        return;
    if (b->mhd)
        MHD_stop_daemon(b->mhd);
    sfm_peer_unref(b->adding);
    sfm_snapshot_unref(b->snap);
    free(b);
}

int sfm_bridge_fd(const sfm_bridge *b)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(b->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    return di ? di->epoll_fd : -1;
}

int sfm_bridge_add(sfm_bridge *b, int fd, sfm_peer *peer)
{
    /* The client's real address travels in `peer`; libmicrohttpd gets the
     * socketpair's own kind of address (and see setsockopt above). */
    struct sockaddr sa = {.sa_family = AF_UNIX};
    b->adding = peer;
    if (MHD_add_connection(b->mhd, fd, &sa, sizeof(sa)) != MHD_YES) {
        /* libmicrohttpd closed fd. */
        int err = errno ? errno : EIO;
        sfm_peer_unref(b->adding);
        b->adding = NULL;
        return -err;
    }
    if (b->adding) {
        /* The daemon did not announce the connection; it cannot serve it
         * with a peer, so requests on it fail closed (on_request). */
        sfm_peer_unref(b->adding);
        b->adding = NULL;
    }
    return 0;
}

void sfm_bridge_drain(sfm_bridge *b)
{
    b->draining = 1;
}

/* libmicrohttpd reads a request body in chunks of what its connection pool
 * has room for (about 4 KiB), one chunk per connection per run, and reports
 * a timeout of 0 while a chunk is waiting. Running it again at once saves a
 * trip through the worker's epoll per chunk; the bound keeps the other
 * connections of the worker served. */
#define RUN_ROUNDS 16

void sfm_bridge_run(sfm_bridge *b)
{
    MHD_UNSIGNED_LONG_LONG t = 0;
    for (int i = 0; i < RUN_ROUNDS; i++) {
        (void)MHD_run(b->mhd);
        if (MHD_get_timeout(b->mhd, &t) != MHD_YES || t != 0)
            break;
    }
}

int64_t sfm_bridge_timeout_ms(sfm_bridge *b)
{
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(b->mhd, &t) != MHD_YES)
        return -1;
    return t > INT64_MAX ? INT64_MAX : (int64_t)t;
}

const char *sfm_bridge_version(void)
{
    return MHD_get_version();
}
