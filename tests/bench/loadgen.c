/*
 * loadgen: a load generator for sfmtls's listeners, HTTP/1.1 over TLS with a
 * wolfSSL client (no OpenSSL in this project's code). A benchmark tool, run
 * by hand or by api_throughput.py; not a test.
 *
 *   loadgen --host 127.0.0.1 --port P --ca CA.pem [--cert CHAIN.pem --key KEY.pem]
 *           [--tls 1.2|1.3] --connections C --threads T --duration S|--requests N
 *           --method GET|POST --path PATH [--header 'Name: value']...
 *           [--body-file F --content-type TYPE] [--keepalive 1|0] [--expect-status 200]
 *           [--server-name NAME] [--timeout S] [--show-first] [--ciphers LIST]
 *           [--rate R] [--resume 1|0]
 *
 * Design: T threads, each multiplexing its C/T connections with non-blocking
 * sockets and one edge-triggered epoll set (the model of wrk). The generator
 * shares the machine's cores with the server it measures, so it must cost
 * little CPU per request and add no scheduling noise of its own: 64 blocking
 * threads on 2 cores would put 64 runnable threads in competition with the
 * server's workers, and a latency would then include the time the generator's
 * own thread waited for a core. With epoll, one or two threads drive 64
 * connections.
 *
 * Each connection is a state machine (one `conn_step` performs all
 * transitions) that sends one request at a time. Without --rate the load is
 * a closed loop: the next request leaves when the previous response is
 * complete, so latencies under saturation understate what an open-loop
 * client would see. With --keepalive 1 every connection is opened and
 * handshaken before the clock starts; a connection the server closes
 * (Connection: close, EOF, reset) is reopened when its next request starts,
 * counted in "reconnects", and the new handshake is part of that request's
 * latency. With --keepalive 0 each request opens its own connection (a full
 * handshake unless --resume) and its latency runs from connect() to the end
 * of the response.
 *
 * --rate R (open loop, R requests per second in all): each thread gets the
 * share of R of its connections and gives every request an intended send
 * time on a fixed schedule (thread i's schedule is offset by i/T of an
 * interval, so the threads interleave). A request leaves on the first free
 * connection of its thread (free ones are taken in turn, so the load spreads
 * over them) when its time comes, or as soon as one frees up if all are busy,
 * and its latency runs from the intended time, not from when it left: a
 * stalled server shows in the latencies instead of silently slowing the
 * generator down (no coordinated omission). "lag" is how long after its
 * intended time a request actually left (the generator's own wake-up delay,
 * or a backlog); "service_*" the latencies from when requests actually left
 * (what the closed loop would see: the server without the generator's lag);
 * "late" counts the requests that left 1 ms or more late;
 * "scheduled" the intended times within the run; "unsent" those of them that
 * never left; "rate_achieved" the requests that left per second.
 *
 * --resume 1: each connection slot keeps the session of its last connection
 * (with its ticket: TLS 1.3 tickets arrive after the handshake, and are read
 * with the response) and offers it in the slot's next handshake. The client
 * asks for TLS 1.2 session tickets too. With --keepalive 0 every slot first
 * makes one uncounted request before the clock starts, so that each counted
 * handshake can offer a session. "handshakes_run" counts the handshakes
 * after the clock started, "resume_offered" those of them that offered a
 * session and "resumed" those that the server resumed
 * (wolfSSL_session_reused).
 *
 * Counters: "requests" counts complete responses (whatever their status);
 * "status_mismatch" those whose status is not --expect-status; "errors"
 * requests or connection attempts that got no complete response (refused,
 * TLS failure, closed or reset mid-request, malformed response, timeouts);
 * "timeouts" the errors that were a --timeout expiry (10 s). In --duration
 * mode requests still in flight at the end are dropped, not counted.
 * Latencies go into a fixed-size histogram (5 us buckets up to 50 ms, then
 * 1 ms buckets up to 20 s), so percentiles are exact to one bucket.
 *
 * Output: one JSON line on stdout; the first error and the first unexpected
 * response (status and the first 200 bytes of its body) on stderr.
 * Exit status: 0 clean run, 1 the run had errors or status mismatches,
 * 2 usage or setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#define LG_MAX_HEADERS       32                 /* --header flags */
#define LG_MAX_HEADER_LEN    4096               /* one --header value */
#define LG_MAX_BODY          (16 * 1024 * 1024) /* --body-file */
#define LG_MAX_CONNECTIONS   4096
#define LG_MAX_THREADS       256
#define LG_MAX_RESPONSE_HEAD (64 * 1024) /* status line and headers of one response */
#define LG_MAX_CHUNK_LINE    1024        /* a chunk-size line or a trailer line */
#define LG_READ_CHUNK        16384
#define LG_RBUF_SIZE         (LG_MAX_RESPONSE_HEAD + LG_READ_CHUNK)
#define LG_BODY_SNIPPET      200 /* body bytes kept for diagnostics */
#define LG_ERR_LEN           256
#define LG_DEFAULT_TIMEOUT_S 10
#define LG_BACKOFF_MS        100 /* after a failed connection attempt */
#define LG_TICK_MS           20  /* timeout and backoff scan period */
#define LG_MAX_STEPS         64  /* state transitions per conn_step call */
#define LG_MAX_EVENTS        256
#define LG_MAX_RATE          10000000.0 /* --rate, requests per second */
#define LG_LATE_NS           1000000LL  /* a request leaving this late counts in "late" */
#define LG_TIMER_TAG         UINT64_MAX /* epoll data of a thread's timerfd */

#define LG_HIST_FINE_US     5
#define LG_HIST_FINE_MAX_US 50000
#define LG_HIST_COARSE_US   1000
#define LG_HIST_MAX_US      20000000
#define LG_HIST_FINE_N      (LG_HIST_FINE_MAX_US / LG_HIST_FINE_US)
#define LG_HIST_N           (LG_HIST_FINE_N + (LG_HIST_MAX_US - LG_HIST_FINE_MAX_US) / LG_HIST_COARSE_US + 1)

#define NS_PER_MS 1000000LL
#define NS_PER_S  1000000000LL

/* ------------------------------------------------------------------------- */
/* Configuration                                                             */

struct lg_config {
    const char *host;
    int port;
    const char *ca;
    const char *cert;
    const char *key;
    const char *server_name; /* checked in the server's certificate (default: host) */
    int send_sni;            /* server_name is a DNS name */
    int tls;                 /* 0: 1.2 or 1.3 (negotiated), 12, 13 */
    const char *ciphers;     /* wolfSSL cipher list, or NULL for its default */
    int connections;
    int threads;
    double duration; /* seconds; 0 when --requests is used */
    long long requests;
    const char *method;
    const char *path;
    const char *headers[LG_MAX_HEADERS];
    int n_headers;
    const char *body_file;
    const char *content_type;
    int keepalive;
    int expect_status;
    int timeout_s;
    int show_first;
    double rate; /* requests per second in all; 0: closed loop */
    int resume;  /* offer the slot's previous session */
    /* built from the above */
    char *request; /* owned: the bytes sent for every request */
    size_t request_len;
    int head_request; /* HEAD: responses have no body */
    struct sockaddr_storage addr;
    socklen_t addr_len;
};

/** State shared by every thread of a run. */
struct lg_run {
    const struct lg_config *cfg;
    pthread_barrier_t barrier; /* warm-up done, then go */
    int64_t start_ns;          /* written by main between the two barrier waits */
    int64_t end_ns;            /* duration mode: no response after this counts */
    atomic_llong tickets;      /* requests mode: requests still to start */
    pthread_mutex_t lock;      /* guards the first_* diagnostics */
    int have_error;
    char first_error[LG_ERR_LEN];
    int have_mismatch;
    int shown_first;
    int first_status;
    char first_body[LG_BODY_SNIPPET];
    size_t first_body_len;
};

/* ------------------------------------------------------------------------- */
/* HTTP/1.1 response parser: a pure function of the bytes it is fed.          */

enum lg_http_state {
    LG_HTTP_HEAD,
    LG_HTTP_BODY,
    LG_HTTP_CHUNK_SIZE,
    LG_HTTP_CHUNK_DATA,
    LG_HTTP_CHUNK_CRLF,
    LG_HTTP_TRAILER,
    LG_HTTP_UNTIL_CLOSE,
    LG_HTTP_DONE
};

struct lg_http {
    enum lg_http_state state;
    int status;
    int close_after;         /* the server will close after this response */
    unsigned long long left; /* body or chunk bytes still to come */
    char body[LG_BODY_SNIPPET];
    size_t body_len;
};

enum lg_feed { LG_FEED_MORE, LG_FEED_DONE, LG_FEED_ERROR };

static void http_reset(struct lg_http *h)
{
    memset(h, 0, sizeof(*h));
    h->state = LG_HTTP_HEAD;
}

static void http_keep_body(struct lg_http *h, const char *p, size_t n)
{
    size_t room = sizeof(h->body) - h->body_len;
    size_t take = n < room ? n : room;
    memcpy(h->body + h->body_len, p, take);
    h->body_len += take;
}

/* Does [s, s+n) contain `word` (lowercase), case-insensitively? */
static int contains_ci(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++) {
        if (strncasecmp(s + i, word, w) == 0)
            return 1;
    }
    return 0;
}

static int name_is(const char *name, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(name, want, n) == 0;
}

/* Parses a decimal (base 10) or hex (base 16) number of at most 19 digits. */
static int parse_number(const char *s, size_t n, int base, unsigned long long *out)
{
    char tmp[24];
    char *end = NULL;
    unsigned long long v;

    if (n == 0 || n >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (tmp[0] == '-' || tmp[0] == '+' || tmp[0] == ' ')
        return -EINVAL;
    errno = 0;
    v = strtoull(tmp, &end, base);
    if (errno != 0 || end == tmp || *end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

/*
 * Parses a complete head (status line and headers, without the blank line)
 * and decides how the body is framed. Returns 0 or -EPROTO.
 */
static int http_parse_head(struct lg_http *h, int head_request, const char *p, size_t n)
{
    const char *line_end = memmem(p, n, "\r\n", 2);
    size_t line_len = line_end ? (size_t)(line_end - p) : n;
    int minor;
    int keep_alive = 0;
    int chunked = 0;
    int have_length = 0;
    unsigned long long length = 0;

    /* "HTTP/1.x NNN reason" */
    if (line_len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return -EPROTO;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EPROTO;
    }
    minor = p[7] - '0';
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');

    while (line_end) {
        const char *line = line_end + 2;
        const char *rest_end = p + n;
        const char *colon;
        const char *v;
        const char *v_end;
        size_t name_len;

        line_end = memmem(line, (size_t)(rest_end - line), "\r\n", 2);
        v_end = line_end ? line_end : rest_end;
        if (v_end == line)
            continue;
        colon = memchr(line, ':', (size_t)(v_end - line));
        if (!colon || colon == line)
            return -EPROTO;
        name_len = (size_t)(colon - line);
        v = colon + 1;
        while (v < v_end && (*v == ' ' || *v == '\t'))
            v++;
        while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
            v_end--;
        if (name_is(line, name_len, "content-length")) {
            unsigned long long cl;
            if (parse_number(v, (size_t)(v_end - v), 10, &cl) < 0)
                return -EPROTO;
            if (have_length && cl != length)
                return -EPROTO;
            have_length = 1;
            length = cl;
        } else if (name_is(line, name_len, "transfer-encoding")) {
            if (contains_ci(v, (size_t)(v_end - v), "chunked"))
                chunked = 1;
        } else if (name_is(line, name_len, "connection")) {
            if (contains_ci(v, (size_t)(v_end - v), "close"))
                h->close_after = 1;
            if (contains_ci(v, (size_t)(v_end - v), "keep-alive"))
                keep_alive = 1;
        }
    }
    if (minor == 0 && !keep_alive)
        h->close_after = 1;

    if (head_request || h->status == 204 || h->status == 304) {
        h->state = LG_HTTP_DONE;
    } else if (chunked) {
        h->state = LG_HTTP_CHUNK_SIZE;
    } else if (have_length) {
        h->left = length;
        h->state = length ? LG_HTTP_BODY : LG_HTTP_DONE;
    } else {
        h->close_after = 1;
        h->state = LG_HTTP_UNTIL_CLOSE;
    }
    return 0;
}

/*
 * Feeds response bytes. *used is how many were consumed (the caller drops
 * them); bytes after a complete response are left unconsumed.
 */
static enum lg_feed http_feed(struct lg_http *h, int head_request, const char *buf, size_t len, size_t *used)
{
    size_t pos = 0;
    enum lg_feed result = LG_FEED_MORE;

    while (result == LG_FEED_MORE) {
        const char *p = buf + pos;
        size_t avail = len - pos;
        const char *end;
        size_t take;

        switch (h->state) {
        case LG_HTTP_HEAD:
            end = memmem(p, avail, "\r\n\r\n", 4);
            if (!end) {
                if (avail >= LG_MAX_RESPONSE_HEAD)
                    result = LG_FEED_ERROR;
                goto out;
            }
            if (http_parse_head(h, head_request, p, (size_t)(end - p)) < 0) {
                result = LG_FEED_ERROR;
                goto out;
            }
            pos += (size_t)(end - p) + 4;
            if (h->status >= 100 && h->status < 200) {
                /* an interim response (100 Continue): the real one follows */
                http_reset(h);
            }
            break;
        case LG_HTTP_BODY:
        case LG_HTTP_CHUNK_DATA:
            if (avail == 0)
                goto out;
            take = avail < h->left ? avail : (size_t)h->left;
            http_keep_body(h, p, take);
            pos += take;
            h->left -= take;
            if (h->left == 0)
                h->state = h->state == LG_HTTP_BODY ? LG_HTTP_DONE : LG_HTTP_CHUNK_CRLF;
            break;
        case LG_HTTP_CHUNK_SIZE: {
            unsigned long long size;
            size_t digits = 0;

            end = memmem(p, avail, "\r\n", 2);
            if (!end) {
                if (avail >= LG_MAX_CHUNK_LINE)
                    result = LG_FEED_ERROR;
                goto out;
            }
            while (p + digits < end && p[digits] != ';' && p[digits] != ' ' && p[digits] != '\t')
                digits++;
            if (parse_number(p, digits, 16, &size) < 0) {
                result = LG_FEED_ERROR;
                goto out;
            }
            pos += (size_t)(end - p) + 2;
            h->left = size;
            h->state = size ? LG_HTTP_CHUNK_DATA : LG_HTTP_TRAILER;
            break;
        }
        case LG_HTTP_CHUNK_CRLF:
            if (avail < 2)
                goto out;
            if (p[0] != '\r' || p[1] != '\n') {
                result = LG_FEED_ERROR;
                goto out;
            }
            pos += 2;
            h->state = LG_HTTP_CHUNK_SIZE;
            break;
        case LG_HTTP_TRAILER:
            end = memmem(p, avail, "\r\n", 2);
            if (!end) {
                if (avail >= LG_MAX_CHUNK_LINE)
                    result = LG_FEED_ERROR;
                goto out;
            }
            pos += (size_t)(end - p) + 2;
            if (end == p)
                h->state = LG_HTTP_DONE;
            break;
        case LG_HTTP_UNTIL_CLOSE:
            http_keep_body(h, p, avail);
            pos += avail;
            goto out;
        case LG_HTTP_DONE: result = LG_FEED_DONE; break;
        }
    }
out:
    *used = pos;
    return result;
}

/* ------------------------------------------------------------------------- */
/* Latency histogram                                                         */

static size_t hist_bucket(uint64_t us)
{
    if (us < LG_HIST_FINE_MAX_US)
        return (size_t)(us / LG_HIST_FINE_US);
    if (us < LG_HIST_MAX_US)
        return LG_HIST_FINE_N + (size_t)((us - LG_HIST_FINE_MAX_US) / LG_HIST_COARSE_US);
    return LG_HIST_N - 1;
}

/* The upper edge of a bucket, in microseconds. */
static uint64_t hist_upper_us(size_t b)
{
    if (b < LG_HIST_FINE_N)
        return (uint64_t)(b + 1) * LG_HIST_FINE_US;
    return LG_HIST_FINE_MAX_US + (uint64_t)(b - LG_HIST_FINE_N + 1) * LG_HIST_COARSE_US;
}

/* Nearest-rank percentile (q in (0, 1]) in milliseconds; 0 when empty. */
static double hist_percentile_ms(const uint64_t *hist, uint64_t total, double q)
{
    uint64_t rank;
    uint64_t seen = 0;

    if (total == 0)
        return 0.0;
    rank = (uint64_t)(q * (double)total + 0.999999);
    if (rank < 1)
        rank = 1;
    for (size_t b = 0; b < LG_HIST_N; b++) {
        seen += hist[b];
        if (seen >= rank)
            return (double)hist_upper_us(b) / 1000.0;
    }
    return (double)hist_upper_us(LG_HIST_N - 1) / 1000.0;
}

/* ------------------------------------------------------------------------- */
/* Connections and threads                                                   */

enum lg_conn_state {
    LG_CONN_DOWN,       /* no socket; may be waiting out a backoff */
    LG_CONN_CONNECTING, /* TCP connect in progress */
    LG_CONN_HANDSHAKE,
    LG_CONN_IDLE, /* established, no request attached */
    LG_CONN_SENDING,
    LG_CONN_RECEIVING,
    LG_CONN_DONE /* no more work for this slot */
};

struct lg_conn {
    enum lg_conn_state state;
    int fd;
    uint32_t index;
    uint32_t gen; /* bumped per socket, so stale epoll events are recognised */
    WOLFSSL *ssl;
    int in_request;        /* a request is attached (it counts as a result) */
    int ever_up;           /* a handshake completed on this slot before */
    int starved;           /* conn_step ran out of steps: the scan resumes it */
    int hs_done;           /* the current socket's handshake completed */
    int offered;           /* the current handshake offers a saved session */
    int parked;            /* --rate: in the thread's queue of free connections */
    int warm_done;         /* --resume with --keepalive 0: the warm-up request is over */
    WOLFSSL_SESSION *sess; /* --resume: owned, the slot's last session */
    int64_t t_start;       /* when the request started: with --rate, its intended time */
    int64_t t_sent;        /* when it actually started */
    int64_t deadline;
    int64_t not_before; /* backoff: no connection attempt before this */
    size_t wpos;        /* request bytes written */
    struct lg_http http;
    char *rbuf; /* owned, LG_RBUF_SIZE */
    size_t rlen;
};

struct lg_thread {
    struct lg_run *run;
    const struct lg_config *cfg;
    pthread_t tid;
    int id;           /* 0 .. threads-1 */
    WOLFSSL_CTX *ctx; /* owned: one per thread, nothing shared across threads */
    int epfd;
    struct lg_conn *conns; /* owned */
    int n_conns;
    int warmup;        /* 1 while connections are opened before the clock starts */
    int warm_requests; /* the warm-up makes one request per slot (--resume, --keepalive 0) */
    int done;          /* connections in LG_CONN_DONE */
    /* --rate: the schedule and the queue of free connections */
    double rate;         /* this thread's share, requests per second */
    int64_t sched_start; /* intended time of request 0 */
    uint64_t sched_k;    /* requests taken so far: the next one's index */
    int64_t due;         /* intended time of request sched_k */
    uint32_t *parked;    /* owned, a ring of n_conns connection indexes */
    int park_head, n_parked;
    int tfd;          /* timerfd, wakes the thread at `due` */
    int64_t armed_at; /* what tfd is set to; 0 when disarmed */
    /* results */
    uint64_t requests, errors, timeouts, mismatches, handshakes, reconnects;
    uint64_t handshakes_run, resume_offered, resumed;
    uint64_t sent, late;
    uint64_t *lag_hist; /* owned (--rate), LG_HIST_N buckets */
    uint64_t *svc_hist; /* owned (--rate), LG_HIST_N buckets: latency from the actual start */
    uint64_t lag_max_us;
    uint64_t *hist; /* owned, LG_HIST_N buckets */
    uint64_t max_us;
    double sum_us;
    int64_t last_ns; /* when the last request finished (requests mode) */
};

/* wolfSSL's fixed-point ECC cache (FP_ECC, on in Debian's build) is per
 * thread: each thread that verified or signed frees its own before it ends. */
static void ecc_thread_cleanup(void)
{
#ifdef FP_ECC
    wc_ecc_fp_free();
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* --rate: the intended send time of this thread's request k. */
static int64_t sched_time(const struct lg_thread *t, uint64_t k)
{
    return t->sched_start + (int64_t)((double)k * (double)NS_PER_S / t->rate);
}

/* --rate: queues a free connection for the next intended time (once). */
static void park(struct lg_thread *t, struct lg_conn *c)
{
    if (c->parked)
        return;
    c->parked = 1;
    t->parked[(t->park_head + t->n_parked) % t->n_conns] = c->index;
    t->n_parked++;
}

/* --rate: the connection that has waited longest in the queue. */
static struct lg_conn *unpark(struct lg_thread *t)
{
    struct lg_conn *c = &t->conns[t->parked[t->park_head]];

    t->park_head = (t->park_head + 1) % t->n_conns;
    t->n_parked--;
    c->parked = 0;
    return c;
}

/*
 * --resume: keeps the session of a connection whose handshake completed, for
 * the slot's next handshake. A TLS 1.3 session is only worth keeping with a
 * ticket; a TLS 1.2 one may still resume by its session id.
 */
static void keep_session(struct lg_conn *c)
{
    WOLFSSL_SESSION *s = wolfSSL_get1_session(c->ssl);

    if (!s)
        return;
    if (wolfSSL_SESSION_has_ticket(s) != WOLFSSL_SUCCESS && wolfSSL_version(c->ssl) == TLS1_3_VERSION) {
        wolfSSL_SESSION_free(s);
        return;
    }
    if (c->sess)
        wolfSSL_SESSION_free(c->sess);
    c->sess = s;
}

static void note_error(struct lg_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keeps the first error's description for stderr. */
static void note_error(struct lg_run *run, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&run->lock);
    if (!run->have_error) {
        va_start(ap, fmt);
        vsnprintf(run->first_error, sizeof(run->first_error), fmt, ap);
        va_end(ap);
        run->have_error = 1;
    }
    pthread_mutex_unlock(&run->lock);
}

static void note_response(struct lg_run *run, const struct lg_http *h, int mismatch)
{
    const struct lg_config *cfg = run->cfg;

    pthread_mutex_lock(&run->lock);
    if (cfg->show_first && !run->shown_first) {
        run->shown_first = 1;
        fprintf(stderr, "loadgen: first response: status %d, body: %.*s\n", h->status, (int)h->body_len,
                h->body);
    }
    if (mismatch && !run->have_mismatch) {
        run->have_mismatch = 1;
        run->first_status = h->status;
        memcpy(run->first_body, h->body, h->body_len);
        run->first_body_len = h->body_len;
    }
    pthread_mutex_unlock(&run->lock);
}

enum lg_io { LG_IO_WANT_READ, LG_IO_WANT_WRITE, LG_IO_CLOSED, LG_IO_ERROR };

/*
 * What a wolfSSL call's result (rc <= 0) asks for. `err` gets wolfSSL's
 * error code for messages.
 */
static enum lg_io tls_intent(WOLFSSL *ssl, int rc, int *err)
{
    int e = wolfSSL_get_error(ssl, rc);

    *err = e;
    switch (e) {
    case WOLFSSL_ERROR_WANT_READ: return LG_IO_WANT_READ;
    case WOLFSSL_ERROR_WANT_WRITE: return LG_IO_WANT_WRITE;
    case WOLFSSL_ERROR_ZERO_RETURN: return LG_IO_CLOSED; /* close_notify */
    case SOCKET_PEER_CLOSED_E: return LG_IO_CLOSED;      /* EOF without close_notify */
    }
    return LG_IO_ERROR;
}

static const char *tls_error_string(int err, char *buf, size_t len)
{
    wolfSSL_ERR_error_string_n((unsigned long)err, buf, len);
    return buf;
}

/* Frees the connection's TLS object and socket; sends close_notify once if asked. */
static void conn_close(struct lg_thread *t, struct lg_conn *c, int graceful)
{
    if (c->ssl) {
        if (t->cfg->resume && c->hs_done)
            keep_session(c);
        if (graceful) {
            /* one attempt, no waiting for the peer's close_notify */
            wolfSSL_ERR_clear_error();
            (void)wolfSSL_shutdown(c->ssl);
        }
        wolfSSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        (void)epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->rlen = 0;
    c->hs_done = 0;
    c->state = LG_CONN_DOWN;
}

/*
 * A request or connection attempt failed: counts it, keeps the first
 * message, closes the connection. A failure before the handshake completed
 * delays the next attempt on this slot by LG_BACKOFF_MS.
 */
static void conn_fail(struct lg_thread *t, struct lg_conn *c, int timeout, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void conn_fail(struct lg_thread *t, struct lg_conn *c, int timeout, const char *fmt, ...)
{
    int64_t now = now_ns();
    int connecting = c->state == LG_CONN_CONNECTING || c->state == LG_CONN_HANDSHAKE;
    char msg[LG_ERR_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    /* in duration mode, a request that fails after the end is simply dropped */
    if (c->in_request || connecting) {
        if (t->cfg->requests > 0 || now <= t->run->end_ns || t->warmup) {
            t->errors++;
            if (timeout)
                t->timeouts++;
            note_error(t->run, "connection %u: %s", c->index, msg);
        }
        t->last_ns = now;
    }
    if (connecting)
        c->not_before = now + LG_BACKOFF_MS * NS_PER_MS;
    if (t->warmup)
        c->warm_done = 1; /* no second try before the clock starts */
    c->in_request = 0;
    conn_close(t, c, 0);
}

/* Starts a TCP connect; the handshake follows in conn_step. */
static void conn_connect(struct lg_thread *t, struct lg_conn *c, int64_t deadline)
{
    const struct lg_config *cfg = t->cfg;
    struct epoll_event ev;
    int one = 1;
    int rc;

    c->gen++;
    c->rlen = 0;
    c->deadline = deadline;
    c->state = LG_CONN_CONNECTING;
    c->fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_fail(t, c, 0, "socket: %s", strerror(errno));
        return;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = ((uint64_t)c->index << 32) | c->gen;
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        conn_fail(t, c, 0, "epoll_ctl: %s", strerror(errno));
        return;
    }
    rc = connect(c->fd, (const struct sockaddr *)&cfg->addr, cfg->addr_len);
    if (rc < 0 && errno != EINPROGRESS) {
        conn_fail(t, c, 0, "connect: %s", strerror(errno));
        return;
    }
}

/*
 * An idle or closed slot: attaches the next request if there is one (and no
 * backoff or warm-up holds it back). Returns 1 when the slot has something
 * to do now, 0 when it waits.
 */
static int conn_next(struct lg_thread *t, struct lg_conn *c)
{
    const struct lg_config *cfg = t->cfg;
    int64_t now = now_ns();

    if (t->warmup) {
        /* only the warm-up request of --resume with --keepalive 0 */
        if (!t->warm_requests || c->warm_done)
            return 0;
    } else if (cfg->requests == 0 && now >= t->run->end_ns) {
        return 0;
    }
    if (c->state == LG_CONN_DOWN && now < c->not_before)
        return 0;
    if (!t->warmup && cfg->rate > 0 && now < t->due) {
        park(t, c);
        return 0;
    }
    if (!t->warmup && cfg->requests > 0 && atomic_fetch_sub(&t->run->tickets, 1) <= 0) {
        conn_close(t, c, 1);
        c->state = LG_CONN_DONE;
        t->done++;
        return 0;
    }
    c->in_request = 1;
    c->t_start = now;
    c->t_sent = now;
    if (!t->warmup) {
        t->sent++;
        if (cfg->rate > 0) {
            /* the latency runs from the intended time */
            int64_t lag = now - t->due;
            uint64_t lag_us = lag > 0 ? (uint64_t)lag / 1000 : 0;

            c->t_start = t->due;
            t->lag_hist[hist_bucket(lag_us)]++;
            if (lag_us > t->lag_max_us)
                t->lag_max_us = lag_us;
            if (lag >= LG_LATE_NS)
                t->late++;
            t->sched_k++;
            t->due = sched_time(t, t->sched_k);
        }
    }
    c->wpos = 0;
    http_reset(&c->http);
    if (c->state == LG_CONN_DOWN) {
        if (c->ever_up && cfg->keepalive)
            t->reconnects++;
        conn_connect(t, c, now + cfg->timeout_s * NS_PER_S);
    } else {
        c->deadline = now + cfg->timeout_s * NS_PER_S;
        c->state = LG_CONN_SENDING;
    }
    return 1;
}

/* A complete response: records it, then keeps or closes the connection. */
static void conn_complete(struct lg_thread *t, struct lg_conn *c)
{
    const struct lg_config *cfg = t->cfg;
    int64_t now = now_ns();
    int counted = !t->warmup && (cfg->requests > 0 || now <= t->run->end_ns);

    if (t->warmup)
        c->warm_done = 1;
    if (counted) {
        uint64_t us = (uint64_t)(now - c->t_start) / 1000;
        int mismatch = c->http.status != cfg->expect_status;

        t->requests++;
        t->hist[hist_bucket(us)]++;
        if (t->svc_hist)
            t->svc_hist[hist_bucket((uint64_t)(now - c->t_sent) / 1000)]++;
        t->sum_us += (double)us;
        if (us > t->max_us)
            t->max_us = us;
        if (mismatch)
            t->mismatches++;
        if (mismatch || cfg->show_first)
            note_response(t->run, &c->http, mismatch);
    }
    if (!t->warmup)
        t->last_ns = now;
    c->in_request = 0;
    if (c->rlen > 0) {
        t->errors++;
        note_error(t->run, "connection %u: %zu unexpected bytes after a response", c->index, c->rlen);
        conn_close(t, c, 0);
    } else if (c->http.close_after || !cfg->keepalive) {
        conn_close(t, c, !c->http.close_after);
    } else {
        c->state = LG_CONN_IDLE;
    }
}

/* Reads and parses response bytes; returns 1 to keep stepping, 0 to wait. */
static int conn_receive(struct lg_thread *t, struct lg_conn *c)
{
    char ebuf[80];
    enum lg_feed fed;
    size_t used = 0;
    int err;
    int rc;

    wolfSSL_ERR_clear_error();
    rc = wolfSSL_read(c->ssl, c->rbuf + c->rlen, (int)(LG_RBUF_SIZE - c->rlen));
    if (rc <= 0) {
        switch (tls_intent(c->ssl, rc, &err)) {
        case LG_IO_WANT_READ:
        case LG_IO_WANT_WRITE: return 0;
        case LG_IO_CLOSED:
            if (c->http.state == LG_HTTP_UNTIL_CLOSE) {
                c->http.state = LG_HTTP_DONE;
                conn_complete(t, c);
            } else if (c->http.state == LG_HTTP_HEAD && c->rlen == 0) {
                conn_fail(t, c, 0, "closed by the server before any response byte");
            } else {
                conn_fail(t, c, 0, "closed by the server in the middle of a response");
            }
            return 1;
        case LG_IO_ERROR: conn_fail(t, c, 0, "read: %s", tls_error_string(err, ebuf, sizeof(ebuf))); return 1;
        }
    }
    c->rlen += (size_t)rc;
    fed = http_feed(&c->http, t->cfg->head_request, c->rbuf, c->rlen, &used);
    memmove(c->rbuf, c->rbuf + used, c->rlen - used);
    c->rlen -= used;
    switch (fed) {
    case LG_FEED_MORE: break;
    case LG_FEED_DONE: conn_complete(t, c); break;
    case LG_FEED_ERROR: conn_fail(t, c, 0, "malformed response (status %d)", c->http.status); break;
    }
    return 1;
}

/* Runs the slot's state machine until it has to wait for I/O or time. */
static void conn_step(struct lg_thread *t, struct lg_conn *c, uint32_t events)
{
    const struct lg_config *cfg = t->cfg;
    char ebuf[80];
    int err;
    int rc;

    c->starved = 0;
    for (int steps = 0; steps < LG_MAX_STEPS; steps++) {
        switch (c->state) {
        case LG_CONN_DONE: return;
        case LG_CONN_DOWN:
        case LG_CONN_IDLE:
            if (!conn_next(t, c))
                return;
            events = 0; /* what epoll said was about the previous socket */
            break;
        case LG_CONN_CONNECTING: {
            int soerr = 0;
            socklen_t len = sizeof(soerr);

            if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                return;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
                soerr = errno;
            if (soerr != 0) {
                conn_fail(t, c, 0, "connect: %s", strerror(soerr));
                break;
            }
            c->ssl = wolfSSL_new(t->ctx);
            if (!c->ssl || wolfSSL_set_fd(c->ssl, c->fd) != WOLFSSL_SUCCESS) {
                conn_fail(t, c, 0, "wolfSSL_new failed");
                break;
            }
            if ((cfg->send_sni &&
                 wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, cfg->server_name,
                                (unsigned short)strlen(cfg->server_name)) != WOLFSSL_SUCCESS) ||
                wolfSSL_check_domain_name(c->ssl, cfg->server_name) != WOLFSSL_SUCCESS) {
                conn_fail(t, c, 0, "cannot set the server name");
                break;
            }
            c->offered = cfg->resume && c->sess && wolfSSL_set_session(c->ssl, c->sess) == WOLFSSL_SUCCESS;
            c->state = LG_CONN_HANDSHAKE;
            break;
        }
        case LG_CONN_HANDSHAKE:
            wolfSSL_ERR_clear_error();
            rc = wolfSSL_connect(c->ssl);
            if (rc == WOLFSSL_SUCCESS) {
                t->handshakes++;
                if (!t->warmup) {
                    t->handshakes_run++;
                    if (c->offered) {
                        t->resume_offered++;
                        if (wolfSSL_session_reused(c->ssl))
                            t->resumed++;
                    }
                }
                c->hs_done = 1;
                c->ever_up = 1;
                c->state = c->in_request ? LG_CONN_SENDING : LG_CONN_IDLE;
                break;
            }
            switch (tls_intent(c->ssl, rc, &err)) {
            case LG_IO_WANT_READ:
            case LG_IO_WANT_WRITE: return;
            case LG_IO_CLOSED: conn_fail(t, c, 0, "handshake: closed by the server"); break;
            case LG_IO_ERROR:
                conn_fail(t, c, 0, "handshake: %s", tls_error_string(err, ebuf, sizeof(ebuf)));
                break;
            }
            break;
        case LG_CONN_SENDING:
            /* on WANT_WRITE wolfSSL must be called again with the same buffer */
            wolfSSL_ERR_clear_error();
            rc = wolfSSL_write(c->ssl, cfg->request + c->wpos, (int)(cfg->request_len - c->wpos));
            if (rc > 0) {
                c->wpos += (size_t)rc;
                if (c->wpos == cfg->request_len)
                    c->state = LG_CONN_RECEIVING;
                break;
            }
            switch (tls_intent(c->ssl, rc, &err)) {
            case LG_IO_WANT_READ:
            case LG_IO_WANT_WRITE: return;
            case LG_IO_CLOSED: conn_fail(t, c, 0, "closed by the server while sending"); break;
            case LG_IO_ERROR:
                conn_fail(t, c, 0, "write: %s", tls_error_string(err, ebuf, sizeof(ebuf)));
                break;
            }
            break;
        case LG_CONN_RECEIVING:
            if (!conn_receive(t, c))
                return;
            break;
        }
    }
    /* out of steps with input perhaps still queued: edge-triggered epoll will
     * not report it again, so the next scan resumes this slot */
    c->starved = 1;
}

/* Expires deadlines and restarts slots whose backoff is over. */
static void scan(struct lg_thread *t)
{
    int64_t now = now_ns();

    for (int i = 0; i < t->n_conns; i++) {
        struct lg_conn *c = &t->conns[i];

        switch (c->state) {
        case LG_CONN_CONNECTING:
        case LG_CONN_HANDSHAKE:
        case LG_CONN_SENDING:
        case LG_CONN_RECEIVING:
            if (now >= c->deadline) {
                conn_fail(t, c, 1, "timeout after %d s", t->cfg->timeout_s);
                conn_step(t, c, 0);
            } else if (c->starved) {
                conn_step(t, c, 0); /* events only matter while connecting */
            }
            break;
        case LG_CONN_DOWN:
        case LG_CONN_IDLE: conn_step(t, c, 0); break;
        case LG_CONN_DONE: break;
        }
    }
}

static int connecting_count(const struct lg_thread *t)
{
    int n = 0;
    for (int i = 0; i < t->n_conns; i++) {
        if (t->conns[i].state == LG_CONN_CONNECTING || t->conns[i].state == LG_CONN_HANDSHAKE)
            n++;
    }
    return n;
}

/* Slots whose warm-up request (--resume, --keepalive 0) is not over. */
static int warm_pending(const struct lg_thread *t)
{
    int n = 0;
    for (int i = 0; i < t->n_conns; i++)
        n += !t->conns[i].warm_done;
    return n;
}

/* --rate: hands the requests that are due to the queued connections, in turn. */
static void dispatch(struct lg_thread *t)
{
    for (int n = t->n_parked; n > 0 && t->n_parked > 0 && now_ns() >= t->due; n--) {
        struct lg_conn *c = unpark(t);

        /* a queued slot that took a request meanwhile just leaves the queue */
        if (c->state == LG_CONN_DOWN || c->state == LG_CONN_IDLE)
            conn_step(t, c, 0);
    }
}

/* --rate: sets the thread's timer to the next intended time while connections wait for it. */
static void arm_timer(struct lg_thread *t)
{
    struct itimerspec its;
    int64_t at = t->n_parked > 0 ? t->due : 0;

    if (at == t->armed_at)
        return;
    memset(&its, 0, sizeof(its)); /* all zero disarms */
    its.it_value.tv_sec = (time_t)(at / NS_PER_S);
    its.it_value.tv_nsec = (long)(at % NS_PER_S);
    if (timerfd_settime(t->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        t->armed_at = at;
}

/*
 * One round of the event loop: waits up to `wait_ms`, steps the connections
 * that have events, and runs the scan every LG_TICK_MS.
 */
static void poll_once(struct lg_thread *t, int wait_ms, int64_t *next_scan)
{
    struct epoll_event evs[LG_MAX_EVENTS];
    int n = epoll_wait(t->epfd, evs, LG_MAX_EVENTS, wait_ms);

    for (int i = 0; i < n; i++) {
        uint32_t index = (uint32_t)(evs[i].data.u64 >> 32);
        uint32_t gen = (uint32_t)evs[i].data.u64;
        struct lg_conn *c;

        if (evs[i].data.u64 == LG_TIMER_TAG) {
            uint64_t expirations;
            /* level-triggered: read it empty; the dispatch follows in the loop */
            if (read(t->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
                note_error(t->run, "timerfd: %s", strerror(errno));
            t->armed_at = 0;
            continue;
        }
        c = &t->conns[index];
        if (c->gen != gen || c->fd < 0)
            continue; /* an event of a socket already closed */
        conn_step(t, c, evs[i].events);
    }
    if (now_ns() >= *next_scan) {
        scan(t);
        *next_scan = now_ns() + LG_TICK_MS * NS_PER_MS;
    }
}

static void *thread_main(void *arg)
{
    struct lg_thread *t = arg;
    const struct lg_config *cfg = t->cfg;
    int64_t next_scan = 0;

    /* the timer sleeps with a microsecond's slack, not the default 50 us */
    if (cfg->rate > 0)
        (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    /* warm-up: keep-alive connections are opened before the clock starts;
     * with --resume and --keepalive 0 each slot makes one request, which
     * leaves it a session to offer */
    if (t->warm_requests) {
        for (int i = 0; i < t->n_conns; i++)
            conn_step(t, &t->conns[i], 0);
        while (warm_pending(t) > 0)
            poll_once(t, LG_TICK_MS, &next_scan);
    } else if (cfg->keepalive) {
        int64_t deadline = now_ns() + cfg->timeout_s * NS_PER_S;
        for (int i = 0; i < t->n_conns; i++) {
            conn_connect(t, &t->conns[i], deadline);
            conn_step(t, &t->conns[i], 0);
        }
        while (connecting_count(t) > 0)
            poll_once(t, LG_TICK_MS, &next_scan);
    }
    pthread_barrier_wait(&t->run->barrier); /* warm-up done */
    pthread_barrier_wait(&t->run->barrier); /* main set start_ns and end_ns */
    t->warmup = 0;
    if (cfg->rate > 0) {
        /* thread i starts i/T of an interval late, so the threads interleave */
        t->sched_start =
            t->run->start_ns + (int64_t)((double)NS_PER_S / t->rate * (double)t->id / cfg->threads);
        t->due = t->sched_start;
    }
    for (int i = 0; i < t->n_conns; i++)
        conn_step(t, &t->conns[i], 0);
    for (;;) {
        int64_t now = now_ns();
        int wait_ms = LG_TICK_MS;

        if (cfg->requests > 0) {
            if (t->done == t->n_conns)
                break;
        } else {
            if (now >= t->run->end_ns)
                break;
            if ((t->run->end_ns - now) / NS_PER_MS < wait_ms)
                wait_ms = (int)((t->run->end_ns - now) / NS_PER_MS) + 1;
        }
        if (cfg->rate > 0) {
            dispatch(t);
            arm_timer(t);
        }
        poll_once(t, wait_ms, &next_scan);
    }
    for (int i = 0; i < t->n_conns; i++)
        conn_close(t, &t->conns[i], t->conns[i].state == LG_CONN_IDLE);
    ecc_thread_cleanup();
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* Setup                                                                     */

static void usage(FILE *f)
{
    fprintf(f, "usage: loadgen --host HOST --port P --ca CA.pem [--cert CHAIN.pem --key KEY.pem]\n"
               "               [--tls 1.2|1.3] [--connections C] [--threads T]\n"
               "               (--duration SECONDS | --requests N) [--method GET|POST] --path PATH\n"
               "               [--header 'Name: value']... [--body-file F --content-type TYPE]\n"
               "               [--keepalive 1|0] [--expect-status 200] [--server-name NAME]\n"
               "               [--timeout SECONDS] [--show-first] [--ciphers WOLFSSL-CIPHER-LIST]\n"
               "               [--rate REQUESTS-PER-SECOND] [--resume 1|0]\n"
               "--rate: open loop at that total rate, latency from each request's intended time.\n"
               "--resume 1: each connection slot offers its previous session (ticket).\n"
               "Prints one JSON line: requests, errors, seconds, rps, p50_ms, p90_ms, p99_ms, ...,\n"
               "rate_target, rate_achieved, sent, scheduled, unsent, late, lag_*_ms, service_*_ms,\n"
               "resume, handshakes_run, resume_offered, resumed\n");
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v > 0.0) || v > 86400.0)
        return -EINVAL;
    *out = v;
    return 0;
}

static int read_file(const char *path, char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    struct stat st;
    int rc = 0;

    if (!f)
        return -errno;
    if (fstat(fileno(f), &st) < 0) {
        rc = -errno;
        goto done;
    }
    if (st.st_size > LG_MAX_BODY) {
        rc = -EFBIG;
        goto done;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto done;
    }
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        rc = -EIO;
        goto done;
    }
    *out = buf;
    *out_len = (size_t)st.st_size;
    buf = NULL;
done:
    free(buf);
    fclose(f);
    return rc;
}

/* Appends to a buffer of fixed capacity; -ENOSPC when it does not fit. */
static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len)
        return -ENOSPC;
    *len += (size_t)n;
    return 0;
}

/* Builds the request sent on every connection. */
static int build_request(struct lg_config *cfg)
{
    char *body = NULL;
    size_t body_len = 0;
    size_t head_cap = 2048 + strlen(cfg->path) + (size_t)cfg->n_headers * (LG_MAX_HEADER_LEN + 2);
    size_t len = 0;
    int has_body_method = strcmp(cfg->method, "GET") != 0 && strcmp(cfg->method, "HEAD") != 0;
    int rc;

    if (cfg->body_file) {
        rc = read_file(cfg->body_file, &body, &body_len);
        if (rc < 0) {
            fprintf(stderr, "loadgen: --body-file %s: %s\n", cfg->body_file, strerror(-rc));
            return rc;
        }
    }
    cfg->request = malloc(head_cap + body_len);
    if (!cfg->request) {
        free(body);
        return -ENOMEM;
    }
    rc = append(cfg->request, head_cap, &len,
                "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: sfmtls-loadgen\r\n", cfg->method, cfg->path,
                cfg->host, cfg->port);
    for (int i = 0; rc == 0 && i < cfg->n_headers; i++)
        rc = append(cfg->request, head_cap, &len, "%s\r\n", cfg->headers[i]);
    if (rc == 0 && cfg->content_type)
        rc = append(cfg->request, head_cap, &len, "Content-Type: %s\r\n", cfg->content_type);
    if (rc == 0 && (body || has_body_method))
        rc = append(cfg->request, head_cap, &len, "Content-Length: %zu\r\n", body_len);
    if (rc == 0 && !cfg->keepalive)
        rc = append(cfg->request, head_cap, &len, "Connection: close\r\n");
    if (rc == 0)
        rc = append(cfg->request, head_cap, &len, "\r\n");
    if (rc == 0 && body_len > 0) {
        memcpy(cfg->request + len, body, body_len);
        len += body_len;
    }
    free(body);
    cfg->request_len = len;
    cfg->head_request = strcmp(cfg->method, "HEAD") == 0;
    return rc;
}

static int resolve(struct lg_config *cfg)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char port[16];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", cfg->port);
    rc = getaddrinfo(cfg->host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "loadgen: %s: %s\n", cfg->host, gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(&cfg->addr, res->ai_addr, res->ai_addrlen);
    cfg->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* RFC 6066 section 3: an IP address is never sent as SNI (it is still
 * checked against the certificate's IP SANs). */
static int is_ip_literal(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;
    return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

static WOLFSSL_CTX *make_ctx(const struct lg_config *cfg)
{
    WOLFSSL_METHOD *method;
    WOLFSSL_CTX *ctx = NULL;

    switch (cfg->tls) {
    case 12: method = wolfTLSv1_2_client_method(); break;
    case 13: method = wolfTLSv1_3_client_method(); break;
    default: method = wolfSSLv23_client_method(); break;
    }
    if (!method)
        goto fail;
    ctx = wolfSSL_CTX_new(method);
    if (!ctx)
        goto fail;
    if (cfg->tls == 0 && wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS)
        goto fail;
    if (cfg->ciphers && wolfSSL_CTX_set_cipher_list(ctx, cfg->ciphers) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "loadgen: wolfSSL refuses --ciphers %s\n", cfg->ciphers);
        goto fail;
    }
    if (wolfSSL_CTX_load_verify_locations(ctx, cfg->ca, NULL) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "loadgen: cannot load --ca %s\n", cfg->ca);
        goto fail;
    }
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
    /* the empty SessionTicket extension: TLS 1.2 servers send tickets only when asked */
    if (cfg->resume && wolfSSL_CTX_UseSessionTicket(ctx) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "loadgen: cannot ask for session tickets\n");
        goto fail;
    }
    if (cfg->cert && wolfSSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "loadgen: cannot load --cert %s\n", cfg->cert);
        goto fail;
    }
    if (cfg->key && wolfSSL_CTX_use_PrivateKey_file(ctx, cfg->key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "loadgen: cannot load --key %s\n", cfg->key);
        goto fail;
    }
    return ctx;
fail:
    if (ctx)
        wolfSSL_CTX_free(ctx);
    else
        fprintf(stderr, "loadgen: cannot create the TLS context\n");
    return NULL;
}

enum lg_opt {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_CA,
    OPT_CERT,
    OPT_KEY,
    OPT_TLS,
    OPT_CONNECTIONS,
    OPT_THREADS,
    OPT_DURATION,
    OPT_REQUESTS,
    OPT_METHOD,
    OPT_PATH,
    OPT_HEADER,
    OPT_BODY_FILE,
    OPT_CONTENT_TYPE,
    OPT_KEEPALIVE,
    OPT_EXPECT_STATUS,
    OPT_SERVER_NAME,
    OPT_TIMEOUT,
    OPT_SHOW_FIRST,
    OPT_CIPHERS,
    OPT_RATE,
    OPT_RESUME,
    OPT_HELP
};

static const struct option options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"ca", required_argument, NULL, OPT_CA},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"tls", required_argument, NULL, OPT_TLS},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"requests", required_argument, NULL, OPT_REQUESTS},
    {"method", required_argument, NULL, OPT_METHOD},
    {"path", required_argument, NULL, OPT_PATH},
    {"header", required_argument, NULL, OPT_HEADER},
    {"body-file", required_argument, NULL, OPT_BODY_FILE},
    {"content-type", required_argument, NULL, OPT_CONTENT_TYPE},
    {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
    {"expect-status", required_argument, NULL, OPT_EXPECT_STATUS},
    {"server-name", required_argument, NULL, OPT_SERVER_NAME},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"show-first", no_argument, NULL, OPT_SHOW_FIRST},
    {"ciphers", required_argument, NULL, OPT_CIPHERS},
    {"rate", required_argument, NULL, OPT_RATE},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int valid_token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s <= ' ' || *s >= 127)
            return 0;
    }
    return 1;
}

/* Returns 0, 1 for --help, or -EINVAL (message printed). */
static int parse_args(struct lg_config *cfg, int argc, char **argv)
{
    long v;
    int opt;

    memset(cfg, 0, sizeof(*cfg));
    cfg->connections = 1;
    cfg->threads = 1;
    cfg->method = "GET";
    cfg->keepalive = 1;
    cfg->expect_status = 200;
    cfg->timeout_s = LG_DEFAULT_TIMEOUT_S;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_HOST: cfg->host = optarg; break;
        case OPT_PORT:
            if (parse_long(optarg, 1, 65535, &v) < 0)
                goto bad;
            cfg->port = (int)v;
            break;
        case OPT_CA: cfg->ca = optarg; break;
        case OPT_CERT: cfg->cert = optarg; break;
        case OPT_KEY: cfg->key = optarg; break;
        case OPT_TLS:
            if (strcmp(optarg, "1.2") == 0)
                cfg->tls = 12;
            else if (strcmp(optarg, "1.3") == 0)
                cfg->tls = 13;
            else
                goto bad;
            break;
        case OPT_CONNECTIONS:
            if (parse_long(optarg, 1, LG_MAX_CONNECTIONS, &v) < 0)
                goto bad;
            cfg->connections = (int)v;
            break;
        case OPT_THREADS:
            if (parse_long(optarg, 1, LG_MAX_THREADS, &v) < 0)
                goto bad;
            cfg->threads = (int)v;
            break;
        case OPT_DURATION:
            if (parse_seconds(optarg, &cfg->duration) < 0)
                goto bad;
            break;
        case OPT_REQUESTS:
            if (parse_long(optarg, 1, LONG_MAX, &v) < 0)
                goto bad;
            cfg->requests = v;
            break;
        case OPT_METHOD:
            if (!valid_token(optarg))
                goto bad;
            cfg->method = optarg;
            break;
        case OPT_PATH:
            if (optarg[0] != '/' || !valid_token(optarg))
                goto bad;
            cfg->path = optarg;
            break;
        case OPT_HEADER:
            if (cfg->n_headers == LG_MAX_HEADERS || strlen(optarg) > LG_MAX_HEADER_LEN ||
                !strchr(optarg, ':') || strpbrk(optarg, "\r\n")) {
                goto bad;
            }
            cfg->headers[cfg->n_headers++] = optarg;
            break;
        case OPT_BODY_FILE: cfg->body_file = optarg; break;
        case OPT_CONTENT_TYPE:
            if (strpbrk(optarg, "\r\n"))
                goto bad;
            cfg->content_type = optarg;
            break;
        case OPT_KEEPALIVE:
            if (parse_long(optarg, 0, 1, &v) < 0)
                goto bad;
            cfg->keepalive = (int)v;
            break;
        case OPT_EXPECT_STATUS:
            if (parse_long(optarg, 100, 599, &v) < 0)
                goto bad;
            cfg->expect_status = (int)v;
            break;
        case OPT_SERVER_NAME:
            if (!valid_token(optarg))
                goto bad;
            cfg->server_name = optarg;
            break;
        case OPT_TIMEOUT:
            if (parse_long(optarg, 1, 3600, &v) < 0)
                goto bad;
            cfg->timeout_s = (int)v;
            break;
        case OPT_SHOW_FIRST: cfg->show_first = 1; break;
        case OPT_CIPHERS: cfg->ciphers = optarg; break;
        case OPT_RATE: {
            char *end = NULL;
            errno = 0;
            cfg->rate = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !(cfg->rate > 0.0) || cfg->rate > LG_MAX_RATE)
                goto bad;
            break;
        }
        case OPT_RESUME:
            if (parse_long(optarg, 0, 1, &v) < 0)
                goto bad;
            cfg->resume = (int)v;
            break;
        case OPT_HELP: usage(stdout); return 1;
        default: usage(stderr); return -EINVAL;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "loadgen: unexpected argument %s\n", argv[optind]);
        return -EINVAL;
    }
    if (!cfg->host || !cfg->port || !cfg->ca || !cfg->path) {
        fprintf(stderr, "loadgen: --host, --port, --ca and --path are required\n");
        return -EINVAL;
    }
    if ((cfg->duration > 0) == (cfg->requests > 0)) {
        fprintf(stderr, "loadgen: give one of --duration and --requests\n");
        return -EINVAL;
    }
    if (!cfg->cert != !cfg->key) {
        fprintf(stderr, "loadgen: --cert and --key go together\n");
        return -EINVAL;
    }
    if (cfg->threads > cfg->connections)
        cfg->threads = cfg->connections;
    if (!cfg->server_name)
        cfg->server_name = cfg->host;
    cfg->send_sni = !is_ip_literal(cfg->server_name);
    return 0;
bad:
    fprintf(stderr, "loadgen: bad value for --%s: %s\n", options[opt - OPT_HOST].name, optarg);
    return -EINVAL;
}

static void threads_free(struct lg_thread *threads, int n)
{
    for (int i = 0; threads && i < n; i++) {
        struct lg_thread *t = &threads[i];
        for (int j = 0; t->conns && j < t->n_conns; j++) {
            free(t->conns[j].rbuf);
            if (t->conns[j].sess)
                wolfSSL_SESSION_free(t->conns[j].sess);
        }
        free(t->conns);
        free(t->hist);
        free(t->lag_hist);
        free(t->svc_hist);
        free(t->parked);
        if (t->epfd >= 0)
            close(t->epfd);
        if (t->tfd >= 0)
            close(t->tfd);
        if (t->ctx)
            wolfSSL_CTX_free(t->ctx);
    }
    free(threads);
}

static int threads_new(struct lg_thread **out, struct lg_run *run, const struct lg_config *cfg)
{
    struct lg_thread *threads = calloc((size_t)cfg->threads, sizeof(*threads));
    int rc = 0;

    if (!threads)
        return -ENOMEM;
    for (int i = 0; i < cfg->threads; i++) {
        threads[i].epfd = -1;
        threads[i].tfd = -1;
    }
    for (int i = 0; i < cfg->threads; i++) {
        struct lg_thread *t = &threads[i];

        t->run = run;
        t->cfg = cfg;
        t->id = i;
        t->n_conns = cfg->connections / cfg->threads + (i < cfg->connections % cfg->threads);
        t->warmup = 1;
        t->warm_requests = cfg->resume && !cfg->keepalive;
        t->ctx = make_ctx(cfg);
        t->epfd = epoll_create1(EPOLL_CLOEXEC);
        t->conns = calloc((size_t)t->n_conns, sizeof(*t->conns));
        t->hist = calloc(LG_HIST_N, sizeof(*t->hist));
        if (!t->ctx || t->epfd < 0 || !t->conns || !t->hist) {
            rc = -ENOMEM;
            goto fail;
        }
        if (cfg->rate > 0) {
            struct epoll_event ev;

            t->rate = cfg->rate * (double)t->n_conns / (double)cfg->connections;
            t->parked = calloc((size_t)t->n_conns, sizeof(*t->parked));
            t->lag_hist = calloc(LG_HIST_N, sizeof(*t->lag_hist));
            t->svc_hist = calloc(LG_HIST_N, sizeof(*t->svc_hist));
            t->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
            if (!t->parked || !t->lag_hist || !t->svc_hist || t->tfd < 0) {
                rc = -ENOMEM;
                goto fail;
            }
            memset(&ev, 0, sizeof(ev));
            ev.events = EPOLLIN;
            ev.data.u64 = LG_TIMER_TAG;
            if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->tfd, &ev) < 0) {
                rc = -errno;
                goto fail;
            }
        }
        for (int j = 0; j < t->n_conns; j++) {
            struct lg_conn *c = &t->conns[j];
            c->fd = -1;
            c->index = (uint32_t)j;
            c->state = LG_CONN_DOWN;
            c->rbuf = malloc(LG_RBUF_SIZE);
            if (!c->rbuf) {
                rc = -ENOMEM;
                goto fail;
            }
        }
    }
    *out = threads;
    return 0;
fail:
    threads_free(threads, cfg->threads);
    return rc;
}

static void print_diagnostics(const struct lg_run *run)
{
    if (run->have_error)
        fprintf(stderr, "loadgen: first error: %s\n", run->first_error);
    if (run->have_mismatch) {
        fprintf(stderr, "loadgen: first unexpected response: status %d (expected %d), body: %.*s\n",
                run->first_status, run->cfg->expect_status, (int)run->first_body_len, run->first_body);
    }
}

static void report(const struct lg_run *run, const struct lg_thread *threads, int64_t finish_ns)
{
    const struct lg_config *cfg = run->cfg;
    uint64_t *hist = calloc(LG_HIST_N, sizeof(*hist));
    uint64_t *lag = calloc(LG_HIST_N, sizeof(*lag));
    uint64_t *svc = calloc(LG_HIST_N, sizeof(*svc));
    uint64_t requests = 0, errors = 0, timeouts = 0, mismatches = 0, handshakes = 0, reconnects = 0;
    uint64_t handshakes_run = 0, resume_offered = 0, resumed = 0, sent = 0, late = 0, scheduled = 0;
    uint64_t max_us = 0, lag_max_us = 0;
    double sum_us = 0.0;
    int64_t last = run->start_ns;
    double seconds;

    for (int i = 0; i < cfg->threads; i++) {
        const struct lg_thread *t = &threads[i];
        requests += t->requests;
        errors += t->errors;
        timeouts += t->timeouts;
        mismatches += t->mismatches;
        handshakes += t->handshakes;
        reconnects += t->reconnects;
        handshakes_run += t->handshakes_run;
        resume_offered += t->resume_offered;
        resumed += t->resumed;
        sent += t->sent;
        late += t->late;
        if (t->lag_max_us > lag_max_us)
            lag_max_us = t->lag_max_us;
        for (size_t b = 0; lag && t->lag_hist && b < LG_HIST_N; b++)
            lag[b] += t->lag_hist[b];
        for (size_t b = 0; svc && t->svc_hist && b < LG_HIST_N; b++)
            svc[b] += t->svc_hist[b];
        if (cfg->rate > 0) {
            /* the intended times within the run: those taken, and the ones
             * still due before the end that never left */
            uint64_t k = t->sched_k;
            if (cfg->requests == 0) {
                while (sched_time(t, k) < run->end_ns)
                    k++;
            }
            scheduled += k;
        }
        sum_us += t->sum_us;
        if (t->max_us > max_us)
            max_us = t->max_us;
        if (t->last_ns > last)
            last = t->last_ns;
        for (size_t b = 0; hist && b < LG_HIST_N; b++)
            hist[b] += t->hist[b];
    }
    if (cfg->requests > 0)
        seconds = (double)(last - run->start_ns) / 1e9;
    else
        seconds = (double)((finish_ns < run->end_ns ? finish_ns : run->end_ns) - run->start_ns) / 1e9;
    if (seconds <= 0.0)
        seconds = 1e-9;
    printf("{\"requests\":%llu,\"errors\":%llu,\"seconds\":%.3f,\"rps\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f,\"handshakes\":%llu,\"status_mismatch\":%llu,"
           "\"timeouts\":%llu,\"reconnects\":%llu,\"connections\":%d,\"threads\":%d,",
           (unsigned long long)requests, (unsigned long long)errors, seconds, (double)requests / seconds,
           hist ? hist_percentile_ms(hist, requests, 0.50) : 0.0,
           hist ? hist_percentile_ms(hist, requests, 0.90) : 0.0,
           hist ? hist_percentile_ms(hist, requests, 0.99) : 0.0, (double)max_us / 1000.0,
           requests ? sum_us / (double)requests / 1000.0 : 0.0, (unsigned long long)handshakes,
           (unsigned long long)mismatches, (unsigned long long)timeouts, (unsigned long long)reconnects,
           cfg->connections, cfg->threads);
    if (cfg->requests > 0 && cfg->rate > 0)
        scheduled = (uint64_t)cfg->requests;
    printf(
        "\"rate_target\":%.1f,\"rate_achieved\":%.1f,\"sent\":%llu,\"scheduled\":%llu,\"unsent\":%llu,"
        "\"late\":%llu,\"lag_p50_ms\":%.3f,\"lag_p99_ms\":%.3f,\"lag_max_ms\":%.3f,\"service_p50_ms\":%.3f,"
        "\"service_p99_ms\":%.3f,",
        cfg->rate, (double)sent / seconds, (unsigned long long)sent, (unsigned long long)scheduled,
        (unsigned long long)(scheduled > sent ? scheduled - sent : 0), (unsigned long long)late,
        lag && cfg->rate > 0 ? hist_percentile_ms(lag, sent, 0.50) : 0.0,
        lag && cfg->rate > 0 ? hist_percentile_ms(lag, sent, 0.99) : 0.0, (double)lag_max_us / 1000.0,
        svc && cfg->rate > 0 ? hist_percentile_ms(svc, requests, 0.50) : 0.0,
        svc && cfg->rate > 0 ? hist_percentile_ms(svc, requests, 0.99) : 0.0);
    printf("\"resume\":%d,\"handshakes_run\":%llu,\"resume_offered\":%llu,\"resumed\":%llu}\n", cfg->resume,
           (unsigned long long)handshakes_run, (unsigned long long)resume_offered,
           (unsigned long long)resumed);
    fflush(stdout);
    free(lag);
    free(svc);
    free(hist);
}

int main(int argc, char **argv)
{
    struct lg_config cfg;
    struct lg_run run;
    struct lg_thread *threads = NULL;
    int started = 0;
    int rc;
    int status = 2;

    rc = parse_args(&cfg, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (build_request(&cfg) < 0) {
        fprintf(stderr, "loadgen: cannot build the request (too long?)\n");
        free(cfg.request);
        return 2;
    }
    if (resolve(&cfg) < 0) {
        free(cfg.request);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
        free(cfg.request);
        return 2;
    }

    memset(&run, 0, sizeof(run));
    run.cfg = &cfg;
    atomic_init(&run.tickets, cfg.requests);
    pthread_mutex_init(&run.lock, NULL);
    pthread_barrier_init(&run.barrier, NULL, (unsigned)cfg.threads + 1);

    if (threads_new(&threads, &run, &cfg) < 0)
        goto done;
    for (started = 0; started < cfg.threads; started++) {
        if (pthread_create(&threads[started].tid, NULL, thread_main, &threads[started]) != 0) {
            fprintf(stderr, "loadgen: cannot start thread %d\n", started);
            /* the barrier counts every thread: nothing can start now */
            abort();
        }
    }
    pthread_barrier_wait(&run.barrier); /* every thread has opened its connections */
    run.start_ns = now_ns();
    run.end_ns = cfg.requests > 0 ? INT64_MAX : run.start_ns + (int64_t)(cfg.duration * (double)NS_PER_S);
    pthread_barrier_wait(&run.barrier); /* go */
    for (int i = 0; i < started; i++)
        pthread_join(threads[i].tid, NULL);
    report(&run, threads, now_ns());
    print_diagnostics(&run);
    status = run.have_error || run.have_mismatch ? 1 : 0;
done:
    threads_free(threads, cfg.threads);
    pthread_barrier_destroy(&run.barrier);
    pthread_mutex_destroy(&run.lock);
    ecc_thread_cleanup();
    wolfSSL_Cleanup();
    free(cfg.request);
    return status;
}
