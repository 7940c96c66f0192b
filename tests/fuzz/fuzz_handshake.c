/*
 * fuzz_handshake: the server side of a listener (server/tls.c) reading
 * attacker bytes: record layer, ClientHello and its extensions, session
 * tickets (ticket_cb), and under TLS 1.2 the client's Certificate message,
 * which is plaintext and goes through the layer-1 verify callback before the
 * key exchange fails.
 *
 * Input: one mode byte, then the bytes a client sends. Mode bits:
 *   bit 0  --cert-failure=alert (else page)
 *   bit 1  --client-cert=required (else optional)
 *   bit 2  the standard listener (bits 0 and 1 ignored)
 */
#include "fuzz.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "tls.h"

#define MODE_ALERT    0x1u
#define MODE_REQUIRED 0x2u
#define MODE_STANDARD 0x4u
#define N_MTLS        4

/* A handshake needs a handful of steps; more means a loop that does not end. */
#define MAX_HANDSHAKE_STEPS 64
#define MAX_READ_STEPS      64

struct harness {
    sfm_tls_shared *mtls_sh[N_MTLS];
    sfm_tls_ctx *mtls[N_MTLS];
    sfm_tls_shared *std_sh;
    sfm_tls_ctx *std;
};

/* Built once per process (libFuzzer calls us thousands of times). */
static struct harness *harness;

static void harness_free(void)
{
    struct harness *h = harness;
    if (!h)
        return;
    harness = NULL;
    for (int i = 0; i < N_MTLS; i++) {
        sfm_tls_ctx_unref(h->mtls[i]);
        sfm_tls_shared_unref(h->mtls_sh[i]);
    }
    sfm_tls_ctx_unref(h->std);
    sfm_tls_shared_unref(h->std_sh);
    free(h);
    /* wolfCrypt's fixed-point ECC cache, else LeakSanitizer reports it. */
    sfm_tls_thread_cleanup();
    wolfSSL_Cleanup();
}

static void new_listener(sfm_tls_shared **sh, sfm_tls_ctx **ctx, const sfm_tls_settings *base, int alert,
                         int required, enum sfm_listener l)
{
    sfm_tls_settings s = *base;
    char err[SFM_TLS_ERR_LEN] = "";
    s.cert_failure_alert = alert;
    s.client_cert_required = required;
    if (sfm_tls_shared_new(sh, &s, err) < 0)
        sfm_fuzz_die("sfm_tls_shared_new", err);
    if (sfm_tls_ctx_new(ctx, *sh, l, err) < 0)
        sfm_fuzz_die("sfm_tls_ctx_new", err);
}

static void harness_new(void)
{
    /* The peer end may be closed while wolfSSL writes an alert. */
    signal(SIGPIPE, SIG_IGN);
    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        sfm_fuzz_die("wolfSSL_Init", NULL);

    char dir[SFM_FUZZ_PATH_MAX], prefix[SFM_FUZZ_PATH_MAX + 16];
    char err[SFM_PKI_ERR_LEN] = "";
    sfm_fuzz_ca_new(dir);
    snprintf(prefix, sizeof(prefix), "%s/server", dir);
    const char *sans[] = {"localhost", "127.0.0.1"};
    sfm_pki_issue_opts o = {
        .kind = SFM_PKI_SERVER,
        .cn = "localhost",
        .sans = sans,
        .n_sans = 2,
        .days = 30,
        .key = SFM_PKI_KEY_EC_P256,
        .out_prefix = prefix,
    };
    if (sfm_pki_issue(dir, &o, err) < 0)
        sfm_fuzz_die("sfm_pki_issue", err);

    size_t chain_len, key_len, root_len;
    char *chain = sfm_fuzz_read(dir, "server.chain.pem", &chain_len);
    char *key = sfm_fuzz_read(dir, "server.key", &key_len);
    char *root = sfm_fuzz_read(dir, "ca.pem", &root_len);
    sfm_fuzz_ca_remove(dir);

    /* Anchors: our own root, and the root of the recorded seeds. */
    sfm_der anchors[2];
    size_t n = 0;
    if (sfm_pki_pem_certs(root, root_len, &anchors[0], 1, &n, NULL, err) < 0 || n != 1)
        sfm_fuzz_die("ca.pem", err);
    if (sfm_pki_pem_certs(sfm_fuzz_seed_root_pem, strlen(sfm_fuzz_seed_root_pem), &anchors[1], 1, &n, NULL,
                          err) < 0 ||
        n != 1)
        sfm_fuzz_die("seed root", err);

    struct harness *h = calloc(1, sizeof(*h));
    if (!h)
        sfm_fuzz_die("calloc", NULL);
    sfm_tls_settings base = {
        .cert_chain_pem = chain,
        .cert_chain_len = chain_len,
        .key_pem = key,
        .key_len = key_len,
        .anchors = anchors,
        .n_anchors = 2,
    };
    for (unsigned m = 0; m < N_MTLS; m++)
        new_listener(&h->mtls_sh[m], &h->mtls[m], &base, (m & MODE_ALERT) != 0, (m & MODE_REQUIRED) != 0,
                     SFM_LISTENER_MTLS);
    new_listener(&h->std_sh, &h->std, &base, 0, 0, SFM_LISTENER_STANDARD);
    sfm_pki_ders_free(anchors, 2);
    free(chain);
    free(key);
    free(root);
    harness = h;
    atexit(harness_free);
}

/* The client side of the socketpair: what is left to send. */
struct feed {
    int fd;
    const uint8_t *data;
    size_t len, off;
    int shut;
};

/* Writes what fits, then ends the stream so that wolfSSL sees EOF. */
static void feed_more(struct feed *f)
{
    while (f->off < f->len) {
        ssize_t w = send(f->fd, f->data + f->off, f->len - f->off, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* EAGAIN: the server reads some first */
        f->off += (size_t)w;
    }
    if (!f->shut) {
        (void)shutdown(f->fd, SHUT_WR);
        f->shut = 1;
    }
}

/* Throws away what the server wrote, so its writes never block. */
static void drain(int fd)
{
    char buf[16384];
    for (int i = 0; i < 64; i++) {
        if (recv(fd, buf, sizeof(buf), 0) <= 0)
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!harness)
        harness_new();
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    sfm_tls_ctx *ctx = (mode & MODE_STANDARD) ? harness->std : harness->mtls[mode & (N_MTLS - 1)];
    int alert = !(mode & MODE_STANDARD) && (mode & MODE_ALERT);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        perror("socketpair");
        abort();
    }
    struct feed f = {.fd = sv[1], .data = data + 1, .len = size - 1};
    sfm_tls_conn t;
    if (sfm_tls_conn_init(&t, ctx, sv[0]) < 0)
        goto out;

    enum sfm_io io = SFM_IO_WANT_READ;
    for (int i = 0; i < MAX_HANDSHAKE_STEPS && (io == SFM_IO_WANT_READ || io == SFM_IO_WANT_WRITE); i++) {
        feed_more(&f);
        sfm_tls_readable(&t); /* what the worker does on an epoll event */
        io = sfm_tls_handshake(&t);
        drain(sv[1]);
    }
    if ((io == SFM_IO_WANT_READ || io == SFM_IO_WANT_WRITE) && f.shut) {
        /* The whole input and then EOF were delivered: the handshake must have ended. */
        fprintf(stderr, "handshake still wants %s after %d steps and EOF\n",
                io == SFM_IO_WANT_READ ? "read" : "write", MAX_HANDSHAKE_STEPS);
        abort();
    }
    if (io == SFM_IO_OK) {
        /* Alert mode never completes a handshake with a failed chain. */
        if (alert && t.cert && t.cert->reason != SFM_L1_OK) {
            fprintf(stderr, "alert mode completed a handshake with layer-1 reason %d\n", t.cert->reason);
            abort();
        }
        (void)sfm_tls_version(&t);
        (void)sfm_tls_cipher(&t);
        (void)sfm_tls_resumed(&t);
        char buf[4096];
        for (int i = 0; i < MAX_READ_STEPS; i++) {
            size_t n = 0;
            feed_more(&f);
            sfm_tls_readable(&t);
            io = sfm_tls_read(&t, buf, sizeof(buf), &n);
            drain(sv[1]);
            if (io != SFM_IO_OK && io != SFM_IO_WANT_READ && io != SFM_IO_WANT_WRITE)
                break;
            if (io == SFM_IO_WANT_READ && f.shut && !sfm_tls_may_read(&t))
                break;
        }
        static const char reply[] = "HTTP/1.1 204 No Content\r\n\r\n";
        (void)sfm_tls_write(&t, reply, sizeof(reply) - 1);
        sfm_tls_close_notify(&t);
        drain(sv[1]);
    }
    sfm_tls_conn_cleanup(&t);
out:
    close(sv[0]);
    close(sv[1]);
    return 0;
}
