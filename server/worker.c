#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "log.h"
#include "peer.h"

/* One TLS record's worth of plaintext per read or write. */
#define SCRATCH_SIZE (16 * 1024)
/* Reads or writes per connection per wake-up, so one busy peer cannot
 * starve the others (libuv's count = 32 idea). */
#define MAX_ROUNDS  16
#define MAX_EVENTS  256
#define MAX_ACCEPTS 64
/* SIGTERM: what is in flight gets this long to finish. */
#define DRAIN_GRACE_MS 5000
/* While draining, a connection with no bytes moving for this long has no
 * request in flight and is closed. */
#define DRAIN_IDLE_MS 200
/* After a failed handshake, how long we read and drop what the client still
 * sends before closing: closing with unread data makes the kernel send a
 * reset, and the client loses the alert we just sent (TLS 1.3 clients send
 * CertificateVerify and Finished before they read the server's answer). */
#define LINGER_MS        1000
#define LINGER_MAX_BYTES (256 * 1024)
/* After a burst of connections (at least TRIM_MIN_PEAK) has shrunk to half,
 * give freed memory back to the system, at most once per TRIM_INTERVAL_MS:
 * glibc keeps it inside its arenas otherwise (a flood of 1,000 handshakes
 * leaves 50-100 MB resident; malloc_trim(0) returns to about 10-20 MB). */
#define TRIM_MIN_PEAK    64
#define TRIM_INTERVAL_MS 1000
/* Out of descriptors: stop accepting for this long. */
#define ACCEPT_PAUSE_MS 100

#define container_of(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

enum src_kind { SRC_LISTENER, SRC_TCP, SRC_PAIR, SRC_BRIDGE, SRC_STOP };

/* Every epoll registration points at one of these. */
struct src {
    enum src_kind kind;
    int fd;
    uint32_t mask; /* what epoll watches; 0 means not registered */
};

struct listener {
    struct src src;
    enum sfm_listener kind;
};

enum conn_state { CONN_HANDSHAKE, CONN_OPEN, CONN_LINGER, CONN_CLOSED };

struct conn;
struct conn_list {
    struct conn *head, *tail;
};

struct conn {
    struct src tcp, pair;
    sfm_worker *w;
    enum conn_state state;
    enum sfm_listener listener;
    sfm_tls_conn tls;
    int tls_wants_write;    /* the last TLS step asked for writability */
    unsigned char *to_pair; /* plaintext from TLS that the socketpair has not taken */
    size_t to_pair_len, to_pair_off;
    unsigned char *to_tls; /* plaintext wolfSSL_write must be given again, unchanged */
    size_t to_tls_len;
    int tls_eof, pair_eof, pair_shut, failed;
    int pair_ready; /* the bridge's side may have bytes: epoll said so, or a read has not drained it */
    int kicked;     /* on the worker's kicked list */
    struct conn *knext;
    size_t lingered; /* bytes dropped in CONN_LINGER */
    int64_t deadline;
    struct conn_list *timer; /* handshake or idle list; NULL once closed */
    struct conn *tprev, *tnext;
    struct conn *pnext; /* pending or zombie list */
    int pending;
    char addr[INET6_ADDRSTRLEN];
};

struct sfm_worker {
    int id;
    int epfd;
    struct src stop_src;   /* eventfd: sfm_worker_stop */
    struct src bridge_src; /* the bridge's epoll fd, nested in ours */
    struct listener listeners[SFM_WORKER_MAX_LISTEN];
    size_t n_listen;
    int64_t accept_paused_until;
    sfm_tls_ctx *tls[2];
    _Atomic(sfm_tls_shared *) next_tls; /* sfm_worker_set_tls: contexts to build */
    sfm_bridge *bridge;
    const sfm_app *app;
    int handshake_ms, idle_ms;
    struct conn_list hs, idle; /* FIFO by deadline: the timeout is fixed per list */
    struct conn *pending;      /* connections with work left after their budget */
    struct conn *zombies;      /* closed this iteration; freed at its end */
    struct conn *kicked;       /* gave the bridge a request this iteration */
    int bridge_dirty;          /* the bridge has input to act on */
    size_t nconns;
    size_t peak; /* most connections since the last trim */
    int64_t last_trim;
    int draining;
    int64_t drain_deadline;
    pthread_t thread;
    int started;
    unsigned char scratch[SCRATCH_SIZE];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Registers, changes or removes an fd so that epoll watches exactly `mask`. */
static int watch(sfm_worker *w, struct src *s, uint32_t mask)
{
    if (mask == s->mask)
        return 0;
    struct epoll_event ev = {.events = mask, .data.ptr = s};
    int op = s->mask == 0 ? EPOLL_CTL_ADD : mask == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (epoll_ctl(w->epfd, op, s->fd, &ev) < 0)
        return -errno;
    s->mask = mask;
    return 0;
}

static void timer_unlink(struct conn *c)
{
    struct conn_list *l = c->timer;
    if (!l)
        return;
    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else
        l->head = c->tnext;
    if (c->tnext)
        c->tnext->tprev = c->tprev;
    else
        l->tail = c->tprev;
    c->tprev = c->tnext = NULL;
    c->timer = NULL;
}

static void timer_set(struct conn *c, struct conn_list *l, int64_t deadline)
{
    timer_unlink(c);
    c->deadline = deadline;
    c->timer = l;
    c->tprev = l->tail;
    if (l->tail)
        l->tail->tnext = c;
    else
        l->head = c;
    l->tail = c;
}

/* An answer moved: push the idle deadline back (in steps of a sixteenth of
 * the timeout, at most a second, to spare the list operations).
 * Only bytes sent to the client count, so a peer that trickles a request
 * byte by byte, or never reads its answers, is still cut off. */
static void touch(struct conn *c)
{
    sfm_worker *w = c->w;
    if (c->timer != &w->idle)
        return;
    int64_t deadline = now_ms() + w->idle_ms;
    int64_t step = w->idle_ms / 16 < 1000 ? w->idle_ms / 16 : 1000;
    if (deadline - c->deadline >= (w->draining ? 1 : step))
        timer_set(c, &w->idle, deadline);
}

static void schedule(struct conn *c)
{
    if (c->pending || c->state == CONN_CLOSED)
        return;
    c->pending = 1;
    c->pnext = c->w->pending;
    c->w->pending = c;
}

/*
 * The connection handed the bridge something to act on. The bridge runs once
 * at the end of the iteration, and then the kicked connections read its
 * answers at once, instead of waiting one more epoll round for them.
 */
static void kick(struct conn *c)
{
    sfm_worker *w = c->w;
    w->bridge_dirty = 1;
    if (c->kicked)
        return;
    c->kicked = 1;
    c->knext = w->kicked;
    w->kicked = c;
}

static void conn_close(struct conn *c)
{
    sfm_worker *w = c->w;
    if (c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_OPEN && !c->failed)
        sfm_tls_close_notify(&c->tls);
    /* Closing an fd takes it out of the epoll set (none is ever
     * duplicated), so no EPOLL_CTL_DEL first. */
    close(c->tcp.fd);
    if (c->pair.fd >= 0)
        close(c->pair.fd);
    timer_unlink(c);
    sfm_tls_conn_cleanup(&c->tls);
    free(c->to_pair);
    free(c->to_tls);
    c->to_pair = c->to_tls = NULL;
    c->state = CONN_CLOSED;
    w->nconns--;
    if (!c->pending) {
        /* Events for it may still be in this iteration's batch: free later. */
        c->pnext = w->zombies;
        w->zombies = c;
    }
}

static void conn_watch(struct conn *c);

/* Sends nothing more, drops what the peer still sends, closes at EOF or
 * after LINGER_MS: the alert already written then reaches the client. */
static void conn_linger(struct conn *c)
{
    sfm_worker *w = c->w;
    sfm_tls_conn_cleanup(&c->tls);
    if (shutdown(c->tcp.fd, SHUT_WR) < 0) {
        conn_close(c);
        return;
    }
    c->state = CONN_LINGER;
    timer_set(c, &w->hs, now_ms() + LINGER_MS);
    conn_watch(c);
}

static void linger_step(struct conn *c)
{
    for (int i = 0; i < MAX_ROUNDS; i++) {
        ssize_t n = recv(c->tcp.fd, c->w->scratch, sizeof(c->w->scratch), 0);
        if (n > 0) {
            c->lingered += (size_t)n;
            if (c->lingered > LINGER_MAX_BYTES)
                break;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        break; /* EOF or error */
    }
    conn_close(c);
}

static void conn_log(const struct conn *c, const char *event)
{
    const char *why = c->tls.error[0] ? c->tls.error : "connection closed";
    sfm_log(SFM_LOG_INFO, event, "%s listener=%s peer=%s", why, sfm_listener_name(c->listener), c->addr);
}

/* Ends a connection that went wrong. `event` names the log line; NULL logs
 * nothing (a peer that resets an established connection is not news). */
static void conn_fail(struct conn *c, const char *event)
{
    if (event)
        conn_log(c, event);
    c->failed = 1;
    if (c->state == CONN_HANDSHAKE && !c->w->draining)
        conn_linger(c);
    else
        conn_close(c);
}

/* Work out what each fd should wait for, from the connection's state. */
static void conn_watch(struct conn *c)
{
    sfm_worker *w = c->w;
    uint32_t tcp = 0, pair = 0;
    if (c->state == CONN_HANDSHAKE) {
        tcp = c->tls_wants_write ? EPOLLOUT : EPOLLIN;
    } else if (c->state == CONN_LINGER) {
        tcp = EPOLLIN;
    } else if (c->state == CONN_OPEN) {
        if (c->tls_wants_write)
            tcp |= EPOLLOUT;
        else if ((!c->to_pair_len && !c->tls_eof) || c->to_tls_len)
            tcp |= EPOLLIN;
        if (!c->to_tls_len && !c->pair_eof)
            pair |= EPOLLIN;
        if (c->to_pair_len)
            pair |= EPOLLOUT;
    }
    if (watch(w, &c->tcp, tcp) < 0 || (c->pair.fd >= 0 && watch(w, &c->pair, pair) < 0)) {
        snprintf(c->tls.error, sizeof(c->tls.error), "epoll: %s", strerror(errno));
        conn_fail(c, "connection_error");
    }
}

/* Writes plaintext towards the bridge; keeps what the socketpair refuses.
 * Returns 0 (all taken), 1 (blocked: stop reading TLS) or -1 (closed). */
static int to_pair_write(struct conn *c, const unsigned char *buf, size_t len)
{
    ssize_t n = send(c->pair.fd, buf, len, MSG_NOSIGNAL);
    if (n == (ssize_t)len)
        return 0;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        snprintf(c->tls.error, sizeof(c->tls.error), "socketpair: %s", strerror(errno));
        conn_fail(c, "connection_error");
        return -1;
    }
    size_t done = n < 0 ? 0 : (size_t)n;
    c->to_pair = malloc(len - done);
    if (!c->to_pair) {
        snprintf(c->tls.error, sizeof(c->tls.error), "out of memory");
        conn_fail(c, "connection_error");
        return -1;
    }
    memcpy(c->to_pair, buf + done, len - done);
    c->to_pair_len = len - done;
    c->to_pair_off = 0;
    return 1;
}

static int to_pair_flush(struct conn *c)
{
    size_t left = c->to_pair_len - c->to_pair_off;
    ssize_t n = send(c->pair.fd, c->to_pair + c->to_pair_off, left, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 1;
        snprintf(c->tls.error, sizeof(c->tls.error), "socketpair: %s", strerror(errno));
        conn_fail(c, "connection_error");
        return -1;
    }
    c->to_pair_off += (size_t)n;
    if (c->to_pair_off < c->to_pair_len)
        return 1;
    free(c->to_pair);
    c->to_pair = NULL;
    c->to_pair_len = c->to_pair_off = 0;
    return 0;
}

/* TLS -> bridge. wolfSSL may hold decrypted records already (the request that
 * came with the client's Finished): read until it wants the socket again. */
static void pump_in(struct conn *c)
{
    sfm_worker *w = c->w;
    for (int i = 0; i < MAX_ROUNDS; i++) {
        if (c->to_pair_len) {
            int rc = to_pair_flush(c);
            if (rc < 0)
                return;
            kick(c);
            if (rc > 0)
                return;
        }
        if (c->tls_eof) {
            if (!c->pair_shut) {
                shutdown(c->pair.fd, SHUT_WR);
                c->pair_shut = 1;
                kick(c);
            }
            return;
        }
        /* Level-triggered epoll tells when more comes: a read that would
         * only say EAGAIN is one system call per request for nothing. */
        if (!sfm_tls_may_read(&c->tls))
            return;
        size_t n = 0;
        switch (sfm_tls_read(&c->tls, w->scratch, sizeof(w->scratch), &n)) {
        case SFM_IO_OK:
            kick(c);
            if (to_pair_write(c, w->scratch, n) != 0)
                return;
            break;
        case SFM_IO_WANT_READ: c->tls_wants_write = 0; return;
        case SFM_IO_WANT_WRITE: c->tls_wants_write = 1; return;
        case SFM_IO_CLOSED: c->tls_eof = 1; break;
        case SFM_IO_ERROR: conn_fail(c, NULL); return;
        }
    }
    schedule(c);
}

static int tls_write_or_keep(struct conn *c, const unsigned char *buf, size_t len, int keep)
{
    switch (sfm_tls_write(&c->tls, buf, len)) {
    case SFM_IO_OK:
        touch(c);
        c->tls_wants_write = 0;
        return 0;
    case SFM_IO_WANT_READ:
    case SFM_IO_WANT_WRITE:
        c->tls_wants_write = 1;
        if (keep) {
            c->to_tls = malloc(len);
            if (!c->to_tls) {
                snprintf(c->tls.error, sizeof(c->tls.error), "out of memory");
                conn_fail(c, "connection_error");
                return -1;
            }
            memcpy(c->to_tls, buf, len);
            c->to_tls_len = len;
        }
        return 1;
    case SFM_IO_CLOSED:
    case SFM_IO_ERROR: conn_fail(c, NULL); return -1;
    }
    return -1;
}

/* Bridge -> TLS. */
static void pump_out(struct conn *c)
{
    sfm_worker *w = c->w;
    for (int i = 0; i < MAX_ROUNDS; i++) {
        if (c->to_tls_len) {
            int rc = tls_write_or_keep(c, c->to_tls, c->to_tls_len, 0);
            if (rc != 0)
                return;
            free(c->to_tls);
            c->to_tls = NULL;
            c->to_tls_len = 0;
        }
        if (c->pair_eof) {
            /* The bridge is done with this connection (Connection: close,
             * or the client went away). */
            conn_close(c);
            return;
        }
        if (!c->pair_ready)
            return;
        ssize_t n = recv(c->pair.fd, w->scratch, sizeof(w->scratch), 0);
        if (n > 0) {
            if (tls_write_or_keep(c, w->scratch, (size_t)n, 1) != 0)
                return;
            /* A short read drained the pair (the bridge writes only while
             * it runs, on this thread); epoll says when it has more. */
            if ((size_t)n < sizeof(w->scratch)) {
                c->pair_ready = 0;
                return;
            }
        } else if (n == 0) {
            c->pair_eof = 1;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->pair_ready = 0;
            return;
        } else {
            snprintf(c->tls.error, sizeof(c->tls.error), "socketpair: %s", strerror(errno));
            conn_fail(c, "connection_error");
            return;
        }
    }
    schedule(c);
}

static int conn_open(struct conn *c)
{
    sfm_worker *w = c->w;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(c->tls.error, sizeof(c->tls.error), "socketpair: %s", strerror(errno));
        return -1;
    }
    c->pair.fd = sv[0];
    sfm_peer *peer = sfm_peer_new(c->listener, c->addr, sfm_tls_version(&c->tls), sfm_tls_cipher(&c->tls),
                                  sfm_tls_resumed(&c->tls), c->tls.cert);
    if (!peer) {
        close(sv[1]);
        snprintf(c->tls.error, sizeof(c->tls.error), "out of memory");
        return -1;
    }
    int rc = sfm_bridge_add(w->bridge, sv[1], peer);
    if (rc < 0) {
        snprintf(c->tls.error, sizeof(c->tls.error), "bridge: %s", strerror(-rc));
        return -1;
    }
    c->state = CONN_OPEN;
    c->tls_wants_write = 0;
    w->bridge_dirty = 1;
    timer_set(c, &w->idle, now_ms() + w->idle_ms);
    if (c->tls.cert && c->tls.cert->reason != SFM_L1_OK)
        sfm_log(SFM_LOG_INFO, "certificate_failed", "%s listener=%s peer=%s fingerprint=%s",
                sfm_l1_code(c->tls.cert->reason), sfm_listener_name(c->listener), c->addr,
                c->tls.cert->sha256);
    return 0;
}

/* The one place where a connection makes progress (STYLE 15). */
static void conn_step(struct conn *c)
{
    if (c->state == CONN_LINGER) {
        linger_step(c);
        return;
    }
    if (c->state == CONN_HANDSHAKE) {
        switch (sfm_tls_handshake(&c->tls)) {
        case SFM_IO_OK:
            if (conn_open(c) < 0) {
                conn_fail(c, "connection_error");
                return;
            }
            break;
        case SFM_IO_WANT_READ:
            c->tls_wants_write = 0;
            conn_watch(c);
            return;
        case SFM_IO_WANT_WRITE:
            c->tls_wants_write = 1;
            conn_watch(c);
            return;
        case SFM_IO_CLOSED:
        case SFM_IO_ERROR:
            if (c->tls.refused_l1 != SFM_L1_OK || c->tls.refused_no_cert)
                sfm_http_handshake_refused(c->w->app, c->listener, c->addr, c->tls.cert, c->tls.refused_l1,
                                           c->tls.refused_no_cert);
            conn_fail(c, "handshake_failed");
            return;
        }
    }
    if (c->state != CONN_OPEN)
        return;
    pump_in(c);
    if (c->state != CONN_OPEN)
        return;
    pump_out(c);
    if (c->state != CONN_OPEN)
        return;
    conn_watch(c);
}

static void format_addr(const struct sockaddr_storage *ss, char out[INET6_ADDRSTRLEN])
{
    out[0] = '\0';
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, INET6_ADDRSTRLEN);
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], out, INET6_ADDRSTRLEN);
        else
            inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN);
    }
}

/*
 * Puts the contexts of a new TLS state (a reload) in force for connections
 * accepted from now on. Connections in flight keep the contexts they were
 * accepted with: each holds a reference, so the old ones go with the last
 * of them. If the new contexts cannot be built the old ones stay.
 */
static void switch_tls(sfm_worker *w)
{
    sfm_tls_shared *sh = atomic_exchange(&w->next_tls, NULL);
    if (!sh)
        return;
    sfm_tls_ctx *next[2] = {NULL, NULL};
    char err[SFM_TLS_ERR_LEN];
    for (int l = 0; l < 2; l++) {
        if (sfm_tls_ctx_new(&next[l], sh, (enum sfm_listener)l, err) < 0) {
            sfm_log(SFM_LOG_ERROR, "reload_failed", "worker %d keeps its TLS contexts: %s", w->id, err);
            sfm_tls_ctx_unref(next[0]);
            sfm_tls_shared_unref(sh);
            return;
        }
    }
    for (int l = 0; l < 2; l++) {
        sfm_tls_ctx_unref(w->tls[l]);
        w->tls[l] = next[l];
    }
    sfm_tls_shared_unref(sh);
}

static void conn_new(sfm_worker *w, int fd, enum sfm_listener kind, const struct sockaddr_storage *ss)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->w = w;
    c->listener = kind;
    c->tcp = (struct src){SRC_TCP, fd, 0};
    c->pair = (struct src){SRC_PAIR, -1, 0};
    format_addr(ss, c->addr); /* TCP_NODELAY comes from the listener */
    /* After a reload the worker's connections use the new contexts from
     * the first one accepted afterwards. */
    if (atomic_load(&w->next_tls))
        switch_tls(w);
    if (sfm_tls_conn_init(&c->tls, w->tls[kind], fd) < 0) {
        close(fd);
        free(c);
        return;
    }
    c->state = CONN_HANDSHAKE;
    if (++w->nconns > w->peak)
        w->peak = w->nconns;
    timer_set(c, &w->hs, now_ms() + w->handshake_ms);
    conn_watch(c);
}

static void accept_some(sfm_worker *w, struct listener *l)
{
    for (int i = 0; i < MAX_ACCEPTS; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(l->src.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            conn_new(w, fd, l->kind, &ss);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Level-triggered accept would spin: pause every listener. */
            sfm_log(SFM_LOG_WARN, "accept_paused", "worker %d: %s", w->id, strerror(errno));
            for (size_t j = 0; j < w->n_listen; j++)
                (void)watch(w, &w->listeners[j].src, 0);
            w->accept_paused_until = now_ms() + ACCEPT_PAUSE_MS;
        }
        return;
    }
}

/*
 * SIGTERM: stop accepting and cut off handshakes; let every request in flight
 * finish. Answers from now on close their connection, and a connection whose
 * bytes stopped moving has nothing in flight (the handlers answer at once).
 */
static void begin_drain(sfm_worker *w)
{
    if (w->draining)
        return;
    w->draining = 1;
    int64_t now = now_ms();
    w->drain_deadline = now + DRAIN_GRACE_MS;
    for (size_t i = 0; i < w->n_listen; i++) {
        (void)watch(w, &w->listeners[i].src, 0);
        close(w->listeners[i].src.fd);
        w->listeners[i].src.fd = -1;
    }
    while (w->hs.head)
        conn_close(w->hs.head);
    sfm_bridge_drain(w->bridge);
    w->idle_ms = DRAIN_IDLE_MS;
    for (struct conn *c = w->idle.head; c; c = c->tnext)
        if (c->deadline > now + DRAIN_IDLE_MS)
            c->deadline = now + DRAIN_IDLE_MS;
}

static int trim_due(const sfm_worker *w)
{
    return w->peak >= TRIM_MIN_PEAK && w->nconns <= w->peak / 2;
}

static void maybe_trim(sfm_worker *w, int64_t now)
{
    if (!trim_due(w) || now < w->last_trim + TRIM_INTERVAL_MS)
        return;
    malloc_trim(0);
    w->last_trim = now;
    w->peak = w->nconns;
}

static int next_timeout(sfm_worker *w, int64_t now)
{
    if (w->pending)
        return 0;
    int64_t t = INT64_MAX;
    if (trim_due(w))
        t = w->last_trim + TRIM_INTERVAL_MS;
    if (w->hs.head && w->hs.head->deadline < t)
        t = w->hs.head->deadline;
    if (w->idle.head && w->idle.head->deadline < t)
        t = w->idle.head->deadline;
    if (w->accept_paused_until && w->accept_paused_until < t)
        t = w->accept_paused_until;
    if (w->draining && w->drain_deadline < t)
        t = w->drain_deadline;
    int64_t b = sfm_bridge_timeout_ms(w->bridge);
    if (b >= 0 && now + b < t)
        t = now + b;
    if (t == INT64_MAX)
        return -1;
    return t <= now ? 0 : (int)(t - now > 60000 ? 60000 : t - now);
}

static void expire(sfm_worker *w, int64_t now)
{
    while (w->hs.head && w->hs.head->deadline <= now) {
        struct conn *c = w->hs.head;
        if (c->state == CONN_LINGER) {
            conn_close(c);
            continue;
        }
        /* Not conn_fail: a peer that sent nothing in time gets no linger. */
        snprintf(c->tls.error, sizeof(c->tls.error), "handshake timeout");
        conn_log(c, "handshake_failed");
        conn_close(c);
    }
    while (w->idle.head && w->idle.head->deadline <= now) {
        struct conn *c = w->idle.head;
        conn_close(c);
    }
    if (w->accept_paused_until && w->accept_paused_until <= now) {
        w->accept_paused_until = 0;
        for (size_t j = 0; j < w->n_listen; j++)
            if (w->listeners[j].src.fd >= 0)
                (void)watch(w, &w->listeners[j].src, EPOLLIN);
    }
}

static void free_zombies(sfm_worker *w)
{
    while (w->zombies) {
        struct conn *c = w->zombies;
        w->zombies = c->pnext;
        free(c);
    }
}

static void run_pending(sfm_worker *w)
{
    struct conn *list = w->pending;
    w->pending = NULL;
    while (list) {
        struct conn *c = list;
        list = c->pnext;
        c->pending = 0;
        if (c->state == CONN_CLOSED) {
            c->pnext = w->zombies;
            w->zombies = c;
            continue;
        }
        conn_step(c);
    }
}

/* Reads the answers the bridge just wrote for the connections that sent it
 * requests in this iteration. */
static void run_kicked(sfm_worker *w)
{
    struct conn *list = w->kicked;
    w->kicked = NULL;
    while (list) {
        struct conn *c = list;
        list = c->knext;
        c->kicked = 0;
        if (c->state != CONN_OPEN)
            continue;
        c->pair_ready = 1;
        pump_out(c);
        if (c->state == CONN_OPEN)
            conn_watch(c);
    }
}

static void *worker_main(void *arg)
{
    sfm_worker *w = arg;
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int64_t now = now_ms();
        if (w->draining && (w->nconns == 0 || now >= w->drain_deadline))
            break;
        int n = epoll_wait(w->epfd, evs, MAX_EVENTS, next_timeout(w, now));
        if (n < 0 && errno != EINTR) {
            sfm_log(SFM_LOG_ERROR, "worker_failed", "worker %d: epoll_wait: %s", w->id, strerror(errno));
            break;
        }
        int run_bridge = 0;
        for (int i = 0; i < n; i++) {
            struct src *s = evs[i].data.ptr;
            switch (s->kind) {
            case SRC_LISTENER: accept_some(w, container_of(s, struct listener, src)); break;
            case SRC_TCP: {
                struct conn *c = container_of(s, struct conn, tcp);
                if (c->state == CONN_CLOSED)
                    break;
                sfm_tls_readable(&c->tls);
                if ((evs[i].events & EPOLLERR) && c->state == CONN_OPEN) {
                    conn_fail(c, NULL);
                    break;
                }
                conn_step(c);
                break;
            }
            case SRC_PAIR: {
                struct conn *c = container_of(s, struct conn, pair);
                if (c->state == CONN_CLOSED)
                    break;
                c->pair_ready = 1;
                conn_step(c);
                break;
            }
            case SRC_BRIDGE: run_bridge = 1; break;
            case SRC_STOP: {
                uint64_t v;
                (void)read(w->stop_src.fd, &v, sizeof(v));
                begin_drain(w);
                break;
            }
            }
        }
        run_pending(w);
        if (run_bridge || w->bridge_dirty || sfm_bridge_timeout_ms(w->bridge) == 0) {
            w->bridge_dirty = 0;
            sfm_bridge_run(w->bridge);
        }
        run_kicked(w);
        now = now_ms();
        expire(w, now);
        free_zombies(w);
        maybe_trim(w, now);
    }
    /* Past the grace period: close what is left. */
    while (w->hs.head)
        conn_close(w->hs.head);
    while (w->idle.head)
        conn_close(w->idle.head);
    run_pending(w);
    run_kicked(w);
    free_zombies(w);
    sfm_tls_thread_cleanup();
    return NULL;
}

int sfm_worker_new(sfm_worker **out, const sfm_worker_opts *o, char err[SFM_WORKER_ERR_LEN])
{
    int rc;
    sfm_worker *w = calloc(1, sizeof(*w));
    if (!w) {
        for (size_t i = 0; i < o->n_listen; i++)
            close(o->listen_fds[i]);
        snprintf(err, SFM_WORKER_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    w->id = o->id;
    w->app = o->app;
    w->handshake_ms = o->handshake_timeout_ms;
    w->idle_ms = o->idle_timeout_ms;
    w->stop_src = (struct src){SRC_STOP, -1, 0};
    w->bridge_src = (struct src){SRC_BRIDGE, -1, 0};
    w->n_listen = o->n_listen;
    for (size_t i = 0; i < o->n_listen; i++) {
        w->listeners[i].src = (struct src){SRC_LISTENER, o->listen_fds[i], 0};
        w->listeners[i].kind = o->listen_kinds[i];
    }
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->stop_src.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epfd < 0 || w->stop_src.fd < 0) {
        rc = -errno;
        snprintf(err, SFM_WORKER_ERR_LEN, "epoll/eventfd: %s", strerror(errno));
        goto fail;
    }
    char tls_err[SFM_TLS_ERR_LEN];
    for (int l = 0; l < 2; l++) {
        rc = sfm_tls_ctx_new(&w->tls[l], o->tls, (enum sfm_listener)l, tls_err);
        if (rc < 0) {
            snprintf(err, SFM_WORKER_ERR_LEN, "TLS (%s listener): %s",
                     sfm_listener_name((enum sfm_listener)l), tls_err);
            goto fail;
        }
    }
    rc = sfm_bridge_new(&w->bridge, o->app);
    if (rc < 0) {
        snprintf(err, SFM_WORKER_ERR_LEN, "cannot start libmicrohttpd");
        goto fail;
    }
    w->bridge_src.fd = sfm_bridge_fd(w->bridge);
    if ((rc = watch(w, &w->stop_src, EPOLLIN)) < 0 || (rc = watch(w, &w->bridge_src, EPOLLIN)) < 0) {
        snprintf(err, SFM_WORKER_ERR_LEN, "epoll_ctl: %s", strerror(-rc));
        goto fail;
    }
    for (size_t i = 0; i < w->n_listen; i++) {
        rc = watch(w, &w->listeners[i].src, EPOLLIN);
        if (rc < 0) {
            snprintf(err, SFM_WORKER_ERR_LEN, "epoll_ctl: %s", strerror(-rc));
            goto fail;
        }
    }
    *out = w;
    return 0;

fail:
    sfm_worker_free(w);
    return rc;
}

int sfm_worker_start(sfm_worker *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0)
        return -rc;
    w->started = 1;
    return 0;
}

void sfm_worker_stop(sfm_worker *w)
{
    uint64_t one = 1;
    (void)!write(w->stop_src.fd, &one, sizeof(one));
}

void sfm_worker_set_tls(sfm_worker *w, sfm_tls_shared *sh)
{
    sfm_tls_shared_unref(atomic_exchange(&w->next_tls, sfm_tls_shared_ref(sh)));
}

void sfm_worker_join(sfm_worker *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = 0;
}

void sfm_worker_free(sfm_worker *w)
{
    if (!w)
        return;
    sfm_worker_join(w);
    for (size_t i = 0; i < w->n_listen; i++)
        if (w->listeners[i].src.fd >= 0)
            close(w->listeners[i].src.fd);
    sfm_bridge_free(w->bridge);
    sfm_tls_shared_unref(atomic_exchange(&w->next_tls, NULL));
    sfm_tls_ctx_unref(w->tls[0]);
    sfm_tls_ctx_unref(w->tls[1]);
    if (w->stop_src.fd >= 0)
        close(w->stop_src.fd);
    if (w->epfd >= 0)
        close(w->epfd);
    free(w);
}
