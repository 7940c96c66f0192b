#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *sfm_api_escape(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += strchr("&<>\"'", *p) ? 6 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = text; *p; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break; /* XML's, and HTML5's */
        default: *o++ = *p; continue;
        }
        size_t l = strlen(rep);
        memcpy(o, rep, l);
        o += l;
    }
    *o = '\0';
    return out;
}

void sfm_api_certificate_error(sfm_response *resp, const char *reason_code, const char *sentence)
{
    /* The markup Salesforce served for a request without a client certificate
     * on port 8443 [obs], without its remote logo image (we are offline). */
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "<html><head><title>Certificate Error</title></head>"
                     "<body bgcolor=#ffffff text=#3198d8><center>"
                     "<p><h3>Client certificate error:<i>%s</i></h3></center></body></html>",
                     sentence);
    sfm_response_set(resp, 400, "text/html", body, (size_t)n);
    sfm_response_header(resp, "X-Sfmtls-Reason", reason_code);
    resp->denied = reason_code;
}

void sfm_api_insufficient_privileges(sfm_response *resp, const char *reason_code)
{
    /* Salesforce's text for a page the user may not see [SF]; the status is ours. */
    static const char body[] =
        "<!DOCTYPE html>\n<html><head><meta charset=\"UTF-8\"><title>Insufficient Privileges</title></head>"
        "<body><h1>Insufficient Privileges</h1>"
        "<p>You do not have the level of access necessary to perform the operation you requested. "
        "Please contact the owner of the record or your administrator if access is necessary.</p>"
        "</body></html>\n";
    sfm_response_set(resp, 403, "text/html;charset=UTF-8", body, sizeof(body) - 1);
    sfm_response_header(resp, "X-Sfmtls-Reason", reason_code);
    resp->denied = reason_code;
}

/* Appends to a growing buffer; on failure the buffer is freed and stays NULL. */
static void append(char **buf, size_t *len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char **buf, size_t *len, const char *fmt, ...)
{
    if (!*buf)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *piece = NULL;
    int n = vasprintf(&piece, fmt, ap);
    va_end(ap);
    char *grown = n < 0 ? NULL : realloc(*buf, *len + (size_t)n + 1);
    if (!grown) {
        free(piece);
        free(*buf);
        *buf = NULL;
        return;
    }
    memcpy(grown + *len, piece, (size_t)n + 1);
    free(piece);
    *buf = grown;
    *len += (size_t)n;
}

void sfm_api_cacerts(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        sfm_response_set(resp, 405, "text/plain", "Method Not Allowed\n", 19);
        sfm_response_header(resp, "Allow", "GET, HEAD");
        return;
    }
    sfm_pki_facts *roots = NULL;
    size_t n = 0, len = 0;
    if (sfm_state_roots(app->state, &roots, &n) < 0) {
        sfm_response_set(resp, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    /* Salesforce's page lists the roots it trusts for client certificates [SF]: one row each. */
    char *html = malloc(1);
    if (html)
        *html = '\0';
    append(
        &html, &len,
        "<!DOCTYPE html>\n<html><head><meta charset=\"UTF-8\"><title>Trusted Certificate Authorities</title>"
        "</head><body><h1>Trusted Certificate Authorities</h1>\n<table border=\"1\">\n"
        "<tr><th>Subject</th><th>Issuer</th><th>Serial Number</th><th>Expiration</th>"
        "<th>SHA-256 Fingerprint</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        char *subject = sfm_api_escape(roots[i].subject), *issuer = sfm_api_escape(roots[i].issuer);
        char expires[32] = "";
        struct tm tm;
        if (gmtime_r(&roots[i].not_after, &tm))
            strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (subject && issuer)
            append(&html, &len, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", subject,
                   issuer, roots[i].serial, expires, roots[i].sha256);
        else {
            free(html);
            html = NULL;
        }
        free(subject);
        free(issuer);
    }
    append(&html, &len, "</table></body></html>\n");
    free(roots);
    if (!html) {
        sfm_response_set(resp, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    free(resp->body);
    resp->status = 200;
    resp->content_type = "text/html;charset=UTF-8";
    resp->body = html;
    resp->body_len = len;
}
