/*
 * soap: the partner SOAP API, POST /services/Soap/u/{version}[/{orgId}]
 * (SPEC section 5): login, getUserInfo, query (and queryAll, logout).
 *
 * The body is read by one streaming expat pass with namespace processing:
 * the operation is the first element child of the SOAP 1.1 Body, matched by
 * namespace (urn:partner.soap.sforce.com) and local name, whatever prefix
 * the client chose (jsforce: a default namespace; SoapUI: "urn:"); SOAPAction
 * is ignored (jsforce sends it empty). Only the few texts an operation needs
 * are kept, each under a named cap. A DOCTYPE stops the parser at once, so no
 * entity is ever declared or expanded (no "billion laughs", no external
 * entities).
 *
 * Answers are shaped as the partner API's [obs: captured responses quoted in
 * client libraries' tests]: results unprefixed in the default namespace
 * (jsforce reads them with plain patterns such as /<sessionId>([^<]+)/),
 * faults HTTP 500 in urn:fault.partner.soap.sforce.com. Every text echoed is
 * XML-escaped, and every answer is built in one growing buffer.
 */
#include "api.h"

#include <expat.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../utf8.h"

#define NS_ENV     "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_PARTNER "urn:partner.soap.sforce.com"
#define NS_XSI     "http://www.w3.org/2001/XMLSchema-instance"
#define NS_FAULT   "urn:fault.partner.soap.sforce.com"
#define NS_SOBJECT "urn:sobject.partner.soap.sforce.com"

/* expat reports a namespaced name as "<uri><sep><local>". A local name never
 * holds a space, so the last space splits it whatever the URI holds. */
#define NS_SEP ' '

/** Elements nested deeper than this end the parse (a partner request needs 5). */
#define SOAP_MAX_DEPTH 32
/** Caps of the texts kept (bytes, before the terminator). Salesforce usernames are at most 80 characters. */
#define SOAP_MAX_USERNAME 255
#define SOAP_MAX_PASSWORD 1024
/** SOQL statements are limited to 100,000 characters [SF]; counted here in bytes. */
#define SOAP_MAX_QUERY 100000
/** The operation's namespace and name as kept for a fault message. */
#define SOAP_MAX_OP_NS   256
#define SOAP_MAX_OP_NAME 128
/** An answer larger than this is a 500 (the fixture's records stay far below it). */
#define SOAP_MAX_RESPONSE (64 * 1024 * 1024)
/** How deep nested sObjects (relationship fields) are rendered. */
#define SOAP_MAX_SOBJECT_DEPTH 4

#define SOAP_CONTENT_TYPE "text/xml; charset=utf-8"
/* What Salesforce's SOAP answers carry [obs: jsforce test recordings]. */
#define SOAP_CACHE_CONTROL "no-cache,must-revalidate,max-age=0,no-store,private"

#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"

/* ---- the answer buffer -------------------------------------------------------------------- */

/* One growing buffer (doubling, so appending is amortised O(1)); a failure
 * sticks and is reported once, when the answer is handed over. */
typedef struct soap_out {
    char *p;
    size_t len, cap;
    int failed;
} soap_out;

static void out_mem(soap_out *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (n > SOAP_MAX_RESPONSE - o->len) {
        o->failed = 1;
        return;
    }
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *np = realloc(o->p, cap);
        if (!np) {
            o->failed = 1;
            return;
        }
        o->p = np;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void out_str(soap_out *o, const char *s)
{
    out_mem(o, s, strlen(s));
}

static void out_long(soap_out *o, long long v)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%lld", v);
    out_mem(o, num, (size_t)n);
}

/*
 * `s` as XML character data (valid in attributes too). Salesforce writes
 * &apos; and &quot; [obs]. A carriage return is kept as &#13; (a parser would
 * turn a raw one into a line feed); the other C0 controls, U+FFFE and U+FFFF,
 * which XML 1.0 cannot carry at all, become U+FFFD.
 */
static void out_esc(soap_out *o, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0; /* s[i - run, i) is copied as is */
    while (u[i] != '\0') {
        const char *rep = NULL;
        size_t skip = 1;
        switch (u[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        case '\r': rep = "&#13;"; break;
        default:
            if (u[i] < 0x20 && u[i] != '\t' && u[i] != '\n') {
                rep = "\xEF\xBF\xBD";
            } else if (u[i] == 0xEF && u[i + 1] == 0xBF && (u[i + 2] == 0xBE || u[i + 2] == 0xBF)) {
                rep = "\xEF\xBF\xBD";
                skip = 3;
            }
            break;
        }
        if (!rep) {
            i++;
            run++;
            continue;
        }
        out_mem(o, s + i - run, run);
        out_str(o, rep);
        i += skip;
        run = 0;
    }
    out_mem(o, s + i - run, run);
}

/* <name>text</name>, text escaped. */
static void out_elem(soap_out *o, const char *name, const char *text)
{
    out_str(o, "<");
    out_str(o, name);
    out_str(o, ">");
    out_esc(o, text);
    out_str(o, "</");
    out_str(o, name);
    out_str(o, ">");
}

/* Hands the buffer to `resp` (or a 500 when building it failed). */
static void out_respond(soap_out *o, int status, sfm_response *resp)
{
    if (o->failed || !o->p) {
        free(o->p);
        sfm_response_set(resp, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    free(resp->body);
    resp->body = o->p;
    resp->body_len = o->len;
    resp->status = status;
    resp->content_type = SOAP_CONTENT_TYPE;
    sfm_response_header(resp, "Cache-Control", SOAP_CACHE_CONTROL);
    o->p = NULL;
}

/* ---- faults ------------------------------------------------------------------------------- */

/*
 * A fault of the SOAP layer itself: faultcode soapenv:Client and a
 * faultstring, no detail, as Salesforce answers an empty request ("Premature
 * end of file.") [obs: WWW::Salesforce's test server].
 */
static void client_fault(sfm_response *resp, int status, const char *message)
{
    soap_out o = {0};
    out_str(&o, XML_DECL "<soapenv:Envelope xmlns:soapenv=\"" NS_ENV "\"><soapenv:Body><soapenv:Fault>"
                         "<faultcode>soapenv:Client</faultcode><faultstring>");
    out_esc(&o, message);
    out_str(&o, "</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>");
    out_respond(&o, status, resp);
}

/*
 * An API fault (HTTP 500): faultcode `faultcode`, faultstring
 * "<code>: <message>", and a detail `detail` (an ApiFault: exceptionCode,
 * exceptionMessage). With `pos`, the detail is an ApiQueryFault and carries
 * row and column after them, as MalformedQueryFault, InvalidFieldFault and
 * InvalidSObjectFault do [obs: an INVALID_FIELD fault quoted in
 * WWW::Salesforce's tests; the partner WSDL's ApiQueryFault].
 */
static void api_fault(sfm_response *resp, const char *faultcode, const char *code, const char *message,
                      const char *detail, const int *pos)
{
    soap_out o = {0};
    out_str(&o, XML_DECL "<soapenv:Envelope xmlns:soapenv=\"" NS_ENV "\" xmlns:sf=\"" NS_FAULT
                         "\" xmlns:xsi=\"" NS_XSI "\"><soapenv:Body><soapenv:Fault><faultcode>");
    out_esc(&o, faultcode);
    out_str(&o, "</faultcode><faultstring>");
    out_esc(&o, code);
    out_str(&o, ": ");
    out_esc(&o, message);
    out_str(&o, "</faultstring><detail><sf:");
    out_str(&o, detail);
    out_str(&o, " xsi:type=\"sf:");
    out_str(&o, detail);
    out_str(&o, "\"><sf:exceptionCode>");
    out_esc(&o, code);
    out_str(&o, "</sf:exceptionCode><sf:exceptionMessage>");
    out_esc(&o, message);
    out_str(&o, "</sf:exceptionMessage>");
    if (pos) {
        out_str(&o, "<sf:row>");
        out_long(&o, pos[0]);
        out_str(&o, "</sf:row><sf:column>");
        out_long(&o, pos[1]);
        out_str(&o, "</sf:column>");
    }
    out_str(&o, "</sf:");
    out_str(&o, detail);
    out_str(&o, "></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>");
    out_respond(&o, 500, resp);
}

/*
 * A request that is not well-formed XML: Salesforce answers with the
 * unprefixed faultcode UNKNOWN_EXCEPTION and its parser's message [obs:
 * forcedotcom/postman-salesforce-apis#26]. Our message is expat's, with the
 * line and column.
 */
static void unknown_exception(sfm_response *resp, const char *message)
{
    api_fault(resp, "UNKNOWN_EXCEPTION", "UNKNOWN_EXCEPTION", message, "UnexpectedErrorFault", NULL);
}

/*
 * Row and column of a query error from Salesforce's "ERROR at Row:R:Column:C"
 * line; -1 and -1 when the message names none [emu].
 */
static void query_position(const char *message, int pos[2])
{
    pos[0] = pos[1] = -1;
    const char *p = strstr(message, "ERROR at Row:");
    if (!p)
        return;
    char *end;
    long row = strtol(p + 13, &end, 10);
    if (end == p + 13 || strncmp(end, ":Column:", 8) != 0)
        return;
    const char *c = end + 8;
    long col = strtol(c, &end, 10);
    if (end == c || row < 0 || row > INT_MAX || col < 0 || col > INT_MAX)
        return;
    pos[0] = (int)row;
    pos[1] = (int)col;
}

/* A query or data error as the partner API faults it: sf:<code> and the fault type of the code. */
static void data_fault(sfm_response *resp, const sfm_data_error *e)
{
    const char *code = e->code ? e->code : "UNKNOWN_EXCEPTION";
    const char *detail = "UnexpectedErrorFault";
    int pos[2], *with_pos = NULL;
    if (strcmp(code, "MALFORMED_QUERY") == 0)
        detail = "MalformedQueryFault";
    else if (strcmp(code, "INVALID_FIELD") == 0)
        detail = "InvalidFieldFault";
    else if (strcmp(code, "INVALID_TYPE") == 0)
        detail = "InvalidSObjectFault";
    if (strcmp(detail, "UnexpectedErrorFault") != 0) {
        query_position(e->message, pos);
        with_pos = pos;
    }
    char faultcode[64];
    snprintf(faultcode, sizeof(faultcode), "sf:%s", code);
    api_fault(resp, faultcode, code, e->message, detail, with_pos);
}

/* ---- the request: path and body ----------------------------------------------------------- */

/*
 * "/services/Soap/u/<version>[/<orgId>][/]" with an orgId, when given, of
 * this org (15 or 18 characters). Copies the version (at most 15 bytes) and
 * returns 1 when the path has that shape; 0 otherwise.
 */
static int parse_path(const sfm_request *req, char version[16])
{
    static const char prefix[] = "/services/Soap/u/";
    version[0] = '\0';
    if (strncmp(req->path, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    const char *v = req->path + sizeof(prefix) - 1;
    size_t vn = strcspn(v, "/");
    if (vn == 0 || vn >= 16)
        return 0;
    memcpy(version, v, vn);
    version[vn] = '\0';
    const char *rest = v + vn;
    if (*rest == '/')
        rest++;
    if (*rest == '\0')
        return 1;
    size_t on = strcspn(rest, "/");
    if (rest[on] == '/' && rest[on + 1] != '\0')
        return 0;
    char org[SFM_SFID_LEN + 1];
    if (on != 15 && on != 18)
        return 0;
    memcpy(org, rest, on);
    org[on] = '\0';
    return sfm_sfid_equal(org, req->snap->org->id);
}

static int version_served(const sfm_org *org, const char *version)
{
    for (size_t i = 0; i < org->n_versions; i++) {
        if (strcmp(org->versions[i].version, version) == 0)
            return 1;
    }
    return 0;
}

/** One text the parse keeps: the first occurrence of its element, up to `max` bytes. */
typedef struct soap_text {
    char *buf; /* NUL-terminated once seen; NULL before */
    size_t len, cap, max;
    int seen, overflow;
} soap_text;

enum soap_problem {
    SOAP_OK,
    SOAP_EMPTY,           /* no element at all */
    SOAP_NOT_WELL_FORMED, /* expat's error */
    SOAP_DOCTYPE,         /* a DOCTYPE: refused before any declaration is read */
    SOAP_TOO_DEEP,
    SOAP_NOT_ENVELOPE, /* the root is not soapenv:Envelope */
    SOAP_NO_BODY,
    SOAP_NO_OPERATION, /* an empty Body */
    SOAP_NOMEM,
};

typedef struct soap_parse {
    XML_Parser xp;
    enum soap_problem problem;
    char message[256]; /* SOAP_NOT_WELL_FORMED, SOAP_NOT_ENVELOPE */
    int depth;
    int in_header, in_body, in_session_header, in_op; /* the element open at depth 2, 3 */
    int seen_body;
    int has_op;
    char op_ns[SOAP_MAX_OP_NS];
    char op_name[SOAP_MAX_OP_NAME];
    int password_first; /* login's password came before its username */
    soap_text session_id, username, password, query;
    soap_text *capture; /* the text being read, at depth capture_depth */
    int capture_depth;
} soap_parse;

static void parse_stop(soap_parse *p, enum soap_problem problem)
{
    if (p->problem == SOAP_OK)
        p->problem = problem;
    XML_StopParser(p->xp, XML_FALSE);
}

/* Drops a character that snprintf cut in two at the end of `s` (expat's text is UTF-8, and a
 * fault that echoes half a character is not well-formed XML). */
static void trim_cut_char(char *s)
{
    size_t n = strlen(s), i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i > 0 && (unsigned char)s[i - 1] >= 0xC0 &&
        sfm_utf8_seq((const unsigned char *)s + i - 1, n - i + 1) == 0)
        s[i - 1] = '\0';
}

/* Splits an expat name into its namespace (ns_len bytes; 0: none) and local name. */
static const char *split_name(const char *name, size_t *ns_len)
{
    const char *sep = strrchr(name, NS_SEP);
    *ns_len = sep ? (size_t)(sep - name) : 0;
    return sep ? sep + 1 : name;
}

static int ns_is(const char *name, size_t ns_len, const char *ns)
{
    return ns_len == strlen(ns) && memcmp(name, ns, ns_len) == 0;
}

/* Children of partner elements: qualified, or unqualified as SoapUI-made requests send them and
 * Salesforce takes them [obs: salesforce.stackexchange question 7680]. */
static int partner_child(const char *name, size_t ns_len)
{
    return ns_len == 0 || ns_is(name, ns_len, NS_PARTNER);
}

static void text_begin(soap_parse *p, soap_text *t)
{
    if (t->seen)
        return; /* the first occurrence counts */
    t->seen = 1;
    t->buf = calloc(1, 64);
    if (!t->buf) {
        parse_stop(p, SOAP_NOMEM);
        return;
    }
    t->cap = 64;
    p->capture = t;
    p->capture_depth = p->depth;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    soap_parse *p = ud;
    (void)atts;
    if (++p->depth > SOAP_MAX_DEPTH) {
        parse_stop(p, SOAP_TOO_DEEP);
        return;
    }
    size_t ns_len;
    const char *local = split_name(name, &ns_len);
    switch (p->depth) {
    case 1:
        if (!ns_is(name, ns_len, NS_ENV) || strcmp(local, "Envelope") != 0) {
            snprintf(p->message, sizeof(p->message), "Element {%.*s}%s invalid at this location", (int)ns_len,
                     name, local);
            trim_cut_char(p->message);
            parse_stop(p, SOAP_NOT_ENVELOPE);
        }
        return;
    case 2:
        /* SOAP 1.1: an optional Header, then the Body; anything else is ignored. */
        if (ns_is(name, ns_len, NS_ENV) && !p->seen_body) {
            if (strcmp(local, "Header") == 0) {
                p->in_header = 1;
            } else if (strcmp(local, "Body") == 0) {
                p->in_body = 1;
                p->seen_body = 1;
            }
        }
        return;
    case 3:
        if (p->in_header && partner_child(name, ns_len) && strcmp(local, "SessionHeader") == 0) {
            p->in_session_header = 1;
        } else if (p->in_body && !p->has_op) {
            p->has_op = 1;
            p->in_op = 1;
            snprintf(p->op_ns, sizeof(p->op_ns), "%.*s", (int)ns_len, name);
            snprintf(p->op_name, sizeof(p->op_name), "%s", local);
            trim_cut_char(p->op_ns);
            trim_cut_char(p->op_name);
        }
        return;
    case 4:
        if (p->in_session_header && partner_child(name, ns_len) && strcmp(local, "sessionId") == 0) {
            text_begin(p, &p->session_id);
        } else if (p->in_op && partner_child(name, ns_len)) {
            if (strcmp(local, "username") == 0) {
                /* login's parameters are an xsd:sequence: a username after
                 * the password is not taken [obs: salesforce.stackexchange
                 * question 7680, INVALID_LOGIN]. */
                if (p->password.seen)
                    p->password_first = 1;
                else
                    text_begin(p, &p->username);
            } else if (strcmp(local, "password") == 0) {
                text_begin(p, &p->password);
            } else if (strcmp(local, "queryString") == 0) {
                text_begin(p, &p->query);
            }
        }
        return;
    default: return;
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    soap_parse *p = ud;
    (void)name;
    if (p->capture && p->depth == p->capture_depth)
        p->capture = NULL;
    if (p->depth == 2)
        p->in_header = p->in_body = 0;
    else if (p->depth == 3)
        p->in_session_header = p->in_op = 0;
    p->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    soap_parse *p = ud;
    soap_text *t = p->capture;
    if (!t || p->depth != p->capture_depth || t->overflow || len <= 0)
        return;
    size_t n = (size_t)len;
    if (n > t->max - t->len) {
        t->overflow = 1; /* the text is dropped: the operation answers as for a wrong value */
        return;
    }
    if (t->len + n + 1 > t->cap) {
        /* expat hands text over in pieces (one per entity reference): grow by doubling. */
        size_t cap = t->cap;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) {
            parse_stop(p, SOAP_NOMEM);
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

/* A DOCTYPE ends the parse before its declarations are read: no entity is ever defined. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    parse_stop(ud, SOAP_DOCTYPE);
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                              int value_len, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
    (void)name;
    (void)is_param;
    (void)value;
    (void)value_len;
    (void)base;
    (void)sysid;
    (void)pubid;
    (void)notation;
    parse_stop(ud, SOAP_DOCTYPE); /* unreachable once DOCTYPE stops the parse; kept as a second lock */
}

static void parse_init(soap_parse *p)
{
    memset(p, 0, sizeof(*p));
    p->session_id.max = SFM_TOKEN_MAX - 1;
    p->username.max = SOAP_MAX_USERNAME;
    p->password.max = SOAP_MAX_PASSWORD;
    p->query.max = SOAP_MAX_QUERY;
}

static void parse_cleanup(soap_parse *p)
{
    free(p->session_id.buf);
    free(p->username.buf);
    free(p->password.buf);
    free(p->query.buf);
}

/* Reads the body into `p`; p->problem says what, if anything, went wrong. */
static void parse_body(soap_parse *p, const char *body, size_t len)
{
    if (len > INT_MAX) {
        p->problem = SOAP_NOMEM;
        return;
    }
    p->xp = XML_ParserCreateNS(NULL, NS_SEP);
    if (!p->xp) {
        p->problem = SOAP_NOMEM;
        return;
    }
    XML_SetUserData(p->xp, p);
    XML_SetElementHandler(p->xp, on_start, on_end);
    XML_SetCharacterDataHandler(p->xp, on_text);
    XML_SetStartDoctypeDeclHandler(p->xp, on_doctype);
    XML_SetEntityDeclHandler(p->xp, on_entity);
    XML_SetParamEntityParsing(p->xp, XML_PARAM_ENTITY_PARSING_NEVER);
    if (XML_Parse(p->xp, body ? body : "", (int)len, XML_TRUE) == XML_STATUS_ERROR && p->problem == SOAP_OK) {
        enum XML_Error code = XML_GetErrorCode(p->xp);
        if (code == XML_ERROR_NO_ELEMENTS) {
            p->problem = SOAP_EMPTY;
        } else {
            p->problem = SOAP_NOT_WELL_FORMED;
            snprintf(p->message, sizeof(p->message), "%s at line %lu, column %lu", XML_ErrorString(code),
                     (unsigned long)XML_GetCurrentLineNumber(p->xp),
                     (unsigned long)XML_GetCurrentColumnNumber(p->xp) + 1);
        }
    }
    XML_ParserFree(p->xp);
    p->xp = NULL;
    if (p->problem == SOAP_OK && !p->seen_body)
        p->problem = SOAP_NO_BODY;
    else if (p->problem == SOAP_OK && !p->has_op)
        p->problem = SOAP_NO_OPERATION;
}

/* The fault for a request the parse refused. The messages are ours [emu] where no capture shows Salesforce's.
 */
static void parse_fault(const soap_parse *p, sfm_response *resp)
{
    switch (p->problem) {
    case SOAP_OK: return;
    case SOAP_EMPTY: client_fault(resp, 500, "Premature end of file."); return;
    case SOAP_NOT_WELL_FORMED: unknown_exception(resp, p->message); return;
    case SOAP_DOCTYPE:
        /* The wording of a Java parser told to refuse DOCTYPE, as Salesforce's is [inf]. */
        unknown_exception(resp, "DOCTYPE is disallowed when the feature "
                                "\"http://apache.org/xml/features/disallow-doctype-decl\" set to true.");
        return;
    case SOAP_TOO_DEEP: client_fault(resp, 500, "The request nests elements too deeply."); return;
    case SOAP_NOT_ENVELOPE: client_fault(resp, 500, p->message); return;
    case SOAP_NO_BODY:
        client_fault(resp, 500, "Element {" NS_ENV "}Body is missing from the request.");
        return;
    case SOAP_NO_OPERATION: client_fault(resp, 500, "The SOAP Body holds no operation."); return;
    case SOAP_NOMEM: sfm_response_set(resp, 500, "text/plain", "out of memory\n", 14); return;
    }
}

/* The session of the SessionHeader, NULL when there is none usable (too long: no session we issued). */
static const char *session_of(soap_parse *p)
{
    soap_text *t = &p->session_id;
    if (!t->buf || t->overflow)
        return NULL;
    /* Pretty-printed requests put blanks around it [emu: they are dropped]. */
    char *s = t->buf;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* ---- answers ------------------------------------------------------------------------------ */

/* The envelope of results: the partner namespace as the default one [obs]. */
static void out_envelope_start(soap_out *o, int sobjects)
{
    out_str(o, XML_DECL "<soapenv:Envelope xmlns:soapenv=\"" NS_ENV "\" xmlns=\"" NS_PARTNER
                        "\" xmlns:xsi=\"" NS_XSI "\"");
    if (sobjects)
        out_str(o, " xmlns:sf=\"" NS_SOBJECT "\"");
    out_str(o, ">");
}

/* The LimitInfoHeader Salesforce puts on session calls [obs: query responses in client libraries' tests]. */
static void out_limit_info(soap_out *o, const sfm_app *app)
{
    long used, max;
    sfm_auth_usage(app, &used, &max);
    out_str(o, "<soapenv:Header><LimitInfoHeader><limitInfo><current>");
    out_long(o, used);
    out_str(o, "</current><limit>");
    out_long(o, max);
    out_str(o, "</limit><type>API REQUESTS</type></limitInfo></LimitInfoHeader></soapenv:Header>");
}

/*
 * A full name from the username: the words of its local part, capitalised
 * ("jane.doe@acme.test" -> "Jane Doe") [emu: the fixture has no names].
 */
static void full_name(const char *username, char *out, size_t len)
{
    size_t n = 0;
    int word_start = 1;
    for (const char *c = username; *c && *c != '@' && n + 1 < len; c++) {
        if (*c == '.' || *c == '_' || *c == '-' || *c == '+') {
            if (n > 0 && out[n - 1] != ' ')
                out[n++] = ' ';
            word_start = 1;
            continue;
        }
        out[n++] = (word_start && *c >= 'a' && *c <= 'z') ? (char)(*c - 'a' + 'A') : *c;
        word_start = 0;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    if (n == 0)
        snprintf(out, len, "%s", username);
}

/*
 * The GetUserInfoResult fields, in the order real responses list them [obs:
 * login and getUserInfo responses recorded from real orgs]. The org's
 * locale, currency and time zone are fixed values [emu].
 */
static void out_user_info(soap_out *o, const sfm_app *app, const sfm_snapshot *snap, long user)
{
    const sfm_org *org = snap->org;
    const sfm_fx_user *u = &org->users[user];
    const sfm_user_view *v = &snap->users[user];
    char name[256];
    full_name(u->username, name, sizeof(name));
    out_str(
        o,
        "<accessibilityMode>false</accessibilityMode><chatterExternal>false</chatterExternal>"
        "<currencySymbol>$</currencySymbol><orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>"
        "<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>"
        "<orgDefaultCurrencyLocale>en_US</orgDefaultCurrencyLocale>"
        "<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>"
        "<orgHasPersonAccounts>false</orgHasPersonAccounts>");
    out_elem(o, "organizationId", org->id);
    out_str(o, "<organizationMultiCurrency>false</organizationMultiCurrency>");
    out_elem(o, "organizationName", org->name);
    out_elem(o, "profileId", org->profiles[v->profile].id);
    out_str(o, "<roleId xsi:nil=\"true\"/><sessionSecondsValid>");
    out_long(o, app->session_timeout);
    out_str(o, "</sessionSecondsValid><userDefaultCurrencyIsoCode xsi:nil=\"true\"/>");
    out_elem(o, "userEmail", u->username);
    out_elem(o, "userFullName", name);
    out_elem(o, "userId", u->id);
    out_str(o, "<userLanguage>en_US</userLanguage><userLocale>en_US</userLocale>");
    out_elem(o, "userName", u->username);
    out_str(o,
            "<userTimeZone>GMT</userTimeZone><userType>Standard</userType><userUiSkin>Theme3</userUiSkin>");
}

static void do_login(const sfm_app *app, const sfm_request *req, soap_parse *p, const char *version,
                     int flags, sfm_response *resp)
{
    const sfm_snapshot *snap = req->snap;
    const char *username =
        p->username.buf && !p->username.overflow && !p->password_first ? p->username.buf : "";
    const char *password = p->password.buf && !p->password.overflow ? p->password.buf : "";
    long user = -1;
    enum sfm_login_check check = sfm_auth_password(snap, username, password, 0, &user);
    if (!sfm_auth_login(app, req, SFM_KIND_LOGIN, SFM_SHAPE_SOAP, username, user, check, flags, resp))
        return;

    const sfm_org *org = snap->org;
    const sfm_fx_user *u = &org->users[user];
    sfm_session info;
    memset(&info, 0, sizeof(info));
    snprintf(info.user_id, sizeof(info.user_id), "%s", u->id);
    snprintf(info.username, sizeof(info.username), "%s", u->username);
    info.issued_ms = sfm_auth_now_ms();
    char token[SFM_TOKEN_MAX];
    if (sfm_sessions_issue(app->sessions, SFM_TOKEN_ACCESS, &info, NULL, info.issued_ms, token) != 0) {
        api_fault(resp, "sf:UNKNOWN_EXCEPTION", "UNKNOWN_EXCEPTION", "The session could not be issued.",
                  "UnexpectedErrorFault", NULL);
        return;
    }

    char org15[16];
    snprintf(org15, sizeof(org15), "%.15s", org->id);
    soap_out o = {0};
    out_envelope_start(&o, 0);
    out_str(&o, "<soapenv:Body><loginResponse><result><metadataServerUrl>");
    out_esc(&o, app->instance_url);
    out_str(&o, "/services/Soap/m/");
    out_esc(&o, version);
    out_str(&o, "/");
    out_esc(&o, org15);
    out_str(&o, "</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>");
    out_str(&o, org->is_sandbox ? "true" : "false");
    out_str(&o, "</sandbox><serverUrl>");
    out_esc(&o, app->instance_url);
    out_str(&o, "/services/Soap/u/");
    out_esc(&o, version);
    out_str(&o, "/");
    out_esc(&o, org15);
    out_str(&o, "</serverUrl>");
    out_elem(&o, "sessionId", token);
    out_elem(&o, "userId", u->id);
    out_str(&o, "<userInfo>");
    out_user_info(&o, app, snap, user);
    out_str(&o, "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>");
    out_respond(&o, 200, resp);
}

static void do_get_user_info(const sfm_app *app, const sfm_request *req, soap_parse *p, sfm_response *resp)
{
    sfm_caller c;
    if (!sfm_auth_call(app, req, SFM_KIND_API, SFM_SHAPE_SOAP, session_of(p), 0, &c, resp))
        return;
    soap_out o = {0};
    out_envelope_start(&o, 0);
    out_limit_info(&o, app);
    out_str(&o, "<soapenv:Body><getUserInfoResponse><result>");
    out_user_info(&o, app, req->snap, c.user);
    out_str(&o, "</result></getUserInfoResponse></soapenv:Body></soapenv:Envelope>");
    out_respond(&o, 200, resp);
}

static void do_logout(const sfm_app *app, const sfm_request *req, soap_parse *p, sfm_response *resp)
{
    sfm_caller c;
    if (!sfm_auth_call(app, req, SFM_KIND_API, SFM_SHAPE_SOAP, session_of(p), 0, &c, resp))
        return;
    (void)sfm_sessions_revoke(app->sessions,
                              c.token); /* known a moment ago; a race with expiry is harmless */
    soap_out o = {0};
    out_envelope_start(&o, 0);
    out_limit_info(&o, app);
    out_str(&o, "<soapenv:Body><logoutResponse/></soapenv:Body></soapenv:Envelope>");
    out_respond(&o, 200, resp);
}

/* An element name from a field name: Salesforce's names are [A-Za-z0-9_]; anything else becomes '_' [emu]. */
static void out_name(soap_out *o, const char *name)
{
    char buf[256];
    size_t n = 0;
    if (!(*name >= 'A' && *name <= 'Z') && !(*name >= 'a' && *name <= 'z') && *name != '_')
        buf[n++] = '_';
    for (const char *c = name; *c && n + 1 < sizeof(buf); c++) {
        int ok =
            (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
        buf[n++] = ok ? *c : '_';
    }
    buf[n] = '\0';
    out_str(o, buf);
}

static void out_sobject(soap_out *o, json_t *rec, int depth);

/* One field of a record as <sf:Name>value</sf:Name>; null as xsi:nil [obs]. */
static void out_field(soap_out *o, const char *name, json_t *v, int depth)
{
    char num[64];
    const char *text = NULL;
    char *real = NULL;
    switch (json_typeof(v)) {
    case JSON_NULL:
        out_str(o, "<sf:");
        out_name(o, name);
        out_str(o, " xsi:nil=\"true\"/>");
        return;
    case JSON_OBJECT:
        /* A parent record (a relationship field) nests as an sObject [obs]. */
        if (depth >= SOAP_MAX_SOBJECT_DEPTH)
            return;
        out_str(o, "<sf:");
        out_name(o, name);
        out_str(o, " xsi:type=\"sf:sObject\">");
        out_sobject(o, v, depth + 1);
        out_str(o, "</sf:");
        out_name(o, name);
        out_str(o, ">");
        return;
    case JSON_ARRAY: return; /* child subqueries are outside the SOQL subset */
    case JSON_STRING: text = json_string_value(v); break;
    case JSON_TRUE: text = "true"; break;
    case JSON_FALSE: text = "false"; break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        text = num;
        break;
    case JSON_REAL:
        real = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
        if (!real) {
            o->failed = 1;
            return;
        }
        text = real;
        break;
    }
    out_str(o, "<sf:");
    out_name(o, name);
    out_str(o, ">");
    out_esc(o, text);
    out_str(o, "</sf:");
    out_name(o, name);
    out_str(o, ">");
    free(real);
}

/*
 * A record as the partner API's sObject: sf:type, the sObject's own sf:Id
 * (nil when the query did not select Id), then the selected fields in order,
 * so that a selected Id appears twice, as Salesforce writes it [obs: query
 * and queryAll responses from real orgs quoted in WWW::Salesforce's tests
 * and other clients' fixtures].
 */
static void out_sobject(soap_out *o, json_t *rec, int depth)
{
    json_t *attrs = json_object_get(rec, "attributes");
    const char *type = json_string_value(json_object_get(attrs, "type"));
    const char *id = json_string_value(json_object_get(rec, "Id"));
    out_elem(o, "sf:type", type ? type : "");
    if (id)
        out_elem(o, "sf:Id", id);
    else
        out_str(o, "<sf:Id xsi:nil=\"true\"/>");
    const char *key;
    json_t *v;
    json_object_foreach(rec, key, v)
    {
        if (strcmp(key, "attributes") != 0)
            out_field(o, key, v, depth);
    }
}

static void do_query(const sfm_app *app, const sfm_request *req, soap_parse *p, const char *version, int all,
                     sfm_response *resp)
{
    sfm_caller c;
    if (!sfm_auth_call(app, req, SFM_KIND_API, SFM_SHAPE_SOAP, session_of(p), 0, &c, resp))
        return;
    sfm_data_error e;
    memset(&e, 0, sizeof(e));
    if (p->query.overflow) {
        e.code = "MALFORMED_QUERY";
        snprintf(e.message, sizeof(e.message), "Query string is longer than the %d characters allowed",
                 SOAP_MAX_QUERY);
        data_fault(resp, &e);
        return;
    }
    sfm_soql *q = NULL;
    json_t *result = NULL;
    if (sfm_soql_parse(p->query.buf ? p->query.buf : "", &q, &e) != 0 ||
        sfm_records_query(app->records, q, version, &result, &e) != 0) {
        sfm_soql_free(q);
        data_fault(resp, &e);
        return;
    }
    sfm_soql_free(q);

    const char *op = all ? "queryAllResponse" : "queryResponse";
    json_t *records = json_object_get(result, "records");
    json_t *done = json_object_get(result, "done");
    soap_out o = {0};
    out_envelope_start(&o, 1);
    out_limit_info(&o, app);
    out_str(&o, "<soapenv:Body><");
    out_str(&o, op);
    out_str(&o, "><result xsi:type=\"QueryResult\"><done>");
    out_str(&o, done && json_is_false(done) ? "false" : "true");
    out_str(&o, "</done><queryLocator xsi:nil=\"true\"/>");
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        if (!json_is_object(rec))
            continue;
        out_str(&o, "<records xsi:type=\"sf:sObject\">");
        out_sobject(&o, rec, 0);
        out_str(&o, "</records>");
    }
    out_str(&o, "<size>");
    out_long(&o, json_integer_value(json_object_get(result, "totalSize")));
    out_str(&o, "</size></result></");
    out_str(&o, op);
    out_str(&o, "></soapenv:Body></soapenv:Envelope>");
    json_decref(result);
    out_respond(&o, 200, resp);
}

/* ---- the handler -------------------------------------------------------------------------- */

void sfm_api_soap(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    if (strcmp(req->method, "POST") != 0) {
        /* [emu] Salesforce publishes nothing for other methods here. */
        client_fault(resp, 405, "HTTP method not allowed: the partner SOAP API takes POST");
        sfm_response_header(resp, "Allow", "POST");
        return;
    }
    if (req->body_too_large) {
        client_fault(resp, 413, "The request body is larger than 2 MiB.");
        return;
    }

    char version[16];
    int version_known = parse_path(req, version) && version_served(req->snap->org, version);
    int flags = version_known ? 0 : SFM_AUTH_VERSION_UNKNOWN;

    soap_parse p;
    parse_init(&p);
    parse_body(&p, req->body, req->body_len);
    int is_partner = p.problem == SOAP_OK && strcmp(p.op_ns, NS_PARTNER) == 0;

    if (!version_known) {
        /* Row 2 answers UNSUPPORTED_API_VERSION whatever the body holds; a
         * login is recorded with the username it named. */
        if (is_partner && strcmp(p.op_name, "login") == 0) {
            do_login(app, req, &p, version, flags, resp);
        } else {
            sfm_caller c;
            if (sfm_auth_call(app, req, SFM_KIND_API, SFM_SHAPE_SOAP,
                              p.problem == SOAP_OK ? session_of(&p) : NULL, flags, &c, resp))
                sfm_api_soap_fault(resp, "UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL",
                                   "UnexpectedErrorFault"); /* not reached: row 2 denies; fail closed */
        }
        goto out;
    }
    if (p.problem != SOAP_OK) {
        parse_fault(&p, resp);
        goto out;
    }
    if (is_partner && strcmp(p.op_name, "login") == 0) {
        do_login(app, req, &p, version, 0, resp);
    } else if (is_partner && strcmp(p.op_name, "getUserInfo") == 0) {
        do_get_user_info(app, req, &p, resp);
    } else if (is_partner && strcmp(p.op_name, "query") == 0) {
        do_query(app, req, &p, version, 0, resp);
    } else if (is_partner && strcmp(p.op_name, "queryAll") == 0) {
        do_query(app, req, &p, version, 1, resp);
    } else if (is_partner && strcmp(p.op_name, "logout") == 0) {
        do_logout(app, req, &p, resp);
    } else {
        /* Salesforce's words for an operation its endpoint does not have [obs]. */
        char msg[SOAP_MAX_OP_NS + SOAP_MAX_OP_NAME + 64];
        snprintf(msg, sizeof(msg), "No operation available for request {%s}%s", p.op_ns, p.op_name);
        client_fault(resp, 500, msg);
    }
out:
    parse_cleanup(&p);
}
