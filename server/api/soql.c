/*
 * soql: see soql.h. One pass over the text: a hand-written lexer hands tokens
 * to a recursive-descent parser that fills flat arrays (field references,
 * conditions, literals, decoded strings). Running a query walks the records
 * once, sorts the matching rows' positions when there is an ORDER BY, and
 * copies only the selected values into the answer.
 *
 * Where the subset meets Salesforce, these are the choices:
 * - AND and OR are not mixed at one level without parentheses. Salesforce
 *   requires them ("Client applications must specify parentheses when nesting
 *   operators") and answers "unexpected token: 'OR'" at the first operator of
 *   the other kind, so this parser does the same instead of applying SQL's
 *   precedence.
 * - Text compares case-insensitively for ASCII letters only (=, !=, IN, LIKE,
 *   ORDER BY); Salesforce folds all of Unicode.
 * - A value equals only a literal of its JSON type (a number is never equal
 *   to '5'), and != is the negation of =, so it includes nulls, as in
 *   Salesforce. = null and != null test absence (a missing key or JSON null).
 * - Two strings of 15 or 18 letters and digits in a field whose name ends in
 *   "Id" are equal when their first 15 characters are (case-sensitively): a
 *   15-character id equals its 18-character form.
 * - Messages: Row and Column count lines and characters from 1; <EOF> takes
 *   the column of the last character of its line, as Salesforce shows it.
 *   Every token is quoted ("unexpected token: 'OR'"), as Salesforce's parser
 *   does since Winter '25. Echoed text is valid UTF-8 (invalid bytes become
 *   U+FFFD) because it ends up in JSON.
 */
#include "soql.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/** The longest query parsed: Salesforce's limit on a SOQL statement. */
#define SOQL_MAX_LEN 100000
/** The deepest nesting of parentheses in WHERE. */
#define SOQL_MAX_DEPTH 32
/** Bytes of the query's line echoed in a message (a window around the column when longer). */
#define SOQL_ECHO_MAX 240
/** Bytes of a token, field or type name quoted in a message. */
#define SOQL_QUOTE_MAX 80

#define NO_NODE SIZE_MAX

enum tok_kind {
    T_EOF,
    T_IDENT,
    T_STRING,
    T_NUMBER,
    T_COMMA,
    T_LPAREN,
    T_RPAREN,
    T_EQ,
    T_NE,          /* != or <> */
    T_OTHER,       /* anything else: '.', '<', '$', a malformed number...; never valid */
    T_UNTERMINATED /* a string without its closing quote; runs to the end */
};

typedef struct token {
    enum tok_kind kind;
    size_t start, end; /* bytes of the text */
} token;

enum lit_kind { L_STR, L_NUM, L_BOOL, L_NULL };

typedef struct soql_lit {
    enum lit_kind kind;
    size_t off, len; /* L_STR: the decoded bytes in pool (LIKE patterns keep \%, \_ and \\ escaped) */
    double num;      /* L_NUM */
    long long inum;  /* L_NUM when is_int */
    int is_int;
    int boolean; /* L_BOOL */
} soql_lit;

enum node_kind { N_CMP, N_AND, N_OR };
enum cmp_op { OP_EQ, OP_NE, OP_LIKE, OP_IN };

typedef struct soql_node {
    enum node_kind kind;
    enum cmp_op op;   /* N_CMP */
    size_t ref;       /* N_CMP: the field */
    size_t lit, nlit; /* N_CMP: its literals, consecutive in lits */
    size_t first;     /* N_AND, N_OR: the first operand */
    size_t next;      /* the next operand of the parent, or NO_NODE */
} soql_node;

/** A field name as written, by its bytes in text (so messages can point at it). */
typedef struct soql_ref {
    size_t off, len;
} soql_ref;

typedef struct soql_order {
    size_t ref;
    int desc;
    int nulls_first;
} soql_order;

struct sfm_soql {
    char *text; /* owned copy of the query */
    size_t len;
    char *pool; /* decoded string literals; never more bytes than the text */
    size_t pool_len;
    char *type; /* FROM, as written */
    size_t type_off;
    int count; /* SELECT COUNT() */
    soql_ref *refs;
    size_t nrefs, cap_refs;
    size_t *select; /* refs, in SELECT order */
    size_t nselect, cap_select;
    soql_order *order;
    size_t norder, cap_order;
    soql_node *nodes;
    size_t nnodes, cap_nodes;
    soql_lit *lits;
    size_t nlits, cap_lits;
    size_t where;    /* root node, or NO_NODE */
    long long limit; /* -1: none */
    long long offset;
};

typedef struct parser {
    sfm_soql *q;
    const char *s; /* q->text */
    size_t len;
    token tok; /* the current token */
    int depth;
    sfm_data_error *e;
} parser;

/* ---- messages ---------------------------------------------------------- */

/** A bounded message being written into sfm_data_error.message; always NUL-terminated, valid UTF-8. */
typedef struct msgbuf {
    char *buf;
    size_t cap, len;
} msgbuf;

static void mb_init(msgbuf *m, char *buf, size_t cap)
{
    m->buf = buf;
    m->cap = cap;
    m->len = 0;
    buf[0] = '\0';
}

/* Appends ASCII bytes, as many as fit. */
static void mb_raw(msgbuf *m, const char *s, size_t n)
{
    size_t room = m->cap - 1 - m->len;
    if (n > room)
        n = room;
    memcpy(m->buf + m->len, s, n);
    m->len += n;
    m->buf[m->len] = '\0';
}

static void mb_str(msgbuf *m, const char *s)
{
    mb_raw(m, s, strlen(s));
}

static void mb_num(msgbuf *m, size_t v)
{
    char b[32];
    int n = snprintf(b, sizeof(b), "%zu", v);
    if (n > 0)
        mb_raw(m, b, (size_t)n);
}

/* Appends arbitrary bytes as valid UTF-8: whole sequences only, an invalid byte as U+FFFD. */
static void mb_text(msgbuf *m, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = sfm_utf8_seq((const unsigned char *)s + i, n - i);
        const char *piece = s + i;
        size_t plen = k;
        if (k == 0) {
            piece = "\xEF\xBF\xBD";
            plen = 3;
            k = 1;
        }
        if (plen > m->cap - 1 - m->len)
            return;
        memcpy(m->buf + m->len, piece, plen);
        m->len += plen;
        m->buf[m->len] = '\0';
        i += k;
    }
}

static int is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Like mb_text, at most `max` bytes of s, cut at a character boundary. */
static void mb_clip(msgbuf *m, const char *s, size_t n, size_t max)
{
    if (n > max) {
        n = max;
        while (n > 0 && is_cont((unsigned char)s[n]))
            n--;
    }
    mb_text(m, s, n);
}

/* Characters in s[0..n): a valid sequence or an invalid byte counts one. */
static size_t count_chars(const char *s, size_t n)
{
    size_t c = 0, i = 0;
    while (i < n) {
        size_t k = sfm_utf8_seq((const unsigned char *)s + i, n - i);
        i += k ? k : 1;
        c++;
    }
    return c;
}

/*
 * Writes Salesforce's framing for a problem at byte `off` of s: "\n", the
 * line, "\n", a caret under the column, "\nERROR at Row:R:Column:C\n". The
 * problem text follows. `at_eof`: the column is that of the line's last
 * character. Row and column go out for messages that repeat them.
 */
static void frame(msgbuf *m, const char *s, size_t len, size_t off, int at_eof, size_t *row_out,
                  size_t *col_out)
{
    size_t row = 1, ls = 0;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            row++;
            ls = i + 1;
        }
    }
    size_t le = ls;
    while (le < len && s[le] != '\n')
        le++;
    if (le > ls && s[le - 1] == '\r')
        le--;
    size_t col = count_chars(s + ls, off - ls) + (at_eof ? 0 : 1);
    if (col == 0)
        col = 1;

    /* A long line is shown as a window that holds the column. */
    size_t ws = ls, we = le;
    if (we - ws > SOQL_ECHO_MAX) {
        if (off > ls + SOQL_ECHO_MAX / 2) {
            ws = off - SOQL_ECHO_MAX / 2;
            while (ws < off && is_cont((unsigned char)s[ws]))
                ws++;
        }
        if (we - ws > SOQL_ECHO_MAX) {
            we = ws + SOQL_ECHO_MAX;
            while (we > ws && is_cont((unsigned char)s[we]))
                we--;
        }
    }
    size_t spaces = off > ws ? count_chars(s + ws, off - ws) : 0;
    if (at_eof && spaces > 0)
        spaces--;

    mb_raw(m, "\n", 1);
    mb_text(m, s + ws, we - ws);
    mb_raw(m, "\n", 1);
    for (size_t i = 0; i < spaces; i++)
        mb_raw(m, " ", 1);
    mb_str(m, "^\nERROR at Row:");
    mb_num(m, row);
    mb_str(m, ":Column:");
    mb_num(m, col);
    mb_raw(m, "\n", 1);
    if (row_out)
        *row_out = row;
    if (col_out)
        *col_out = col;
}

static int fail_nomem(sfm_data_error *e)
{
    e->status = 500;
    e->code = "UNKNOWN_EXCEPTION";
    snprintf(e->message, sizeof(e->message), "out of memory");
    return -ENOMEM;
}

/* MALFORMED_QUERY at the current token: what Salesforce says about it. */
static int unexpected(parser *p)
{
    const token *t = &p->tok;
    msgbuf m;
    p->e->status = 400;
    p->e->code = "MALFORMED_QUERY";
    mb_init(&m, p->e->message, sizeof(p->e->message));
    switch (t->kind) {
    case T_EOF:
        frame(&m, p->s, p->len, t->start, 1, NULL, NULL);
        mb_str(&m, "unexpected token: <EOF>");
        break;
    case T_UNTERMINATED: {
        /* The lexer's own words (Salesforce's ANTLR lexer): line R:C, C from 0. */
        size_t row, col;
        frame(&m, p->s, p->len, p->len, 1, &row, &col);
        mb_str(&m, "line ");
        mb_num(&m, row);
        mb_str(&m, ":");
        mb_num(&m, col);
        mb_str(&m, " mismatched character '<EOF>' expecting '''");
        break;
    }
    case T_IDENT:
    case T_STRING:
    case T_NUMBER:
    case T_COMMA:
    case T_LPAREN:
    case T_RPAREN:
    case T_EQ:
    case T_NE:
    case T_OTHER:
        frame(&m, p->s, p->len, t->start, 0, NULL, NULL);
        mb_str(&m, "unexpected token: '");
        mb_clip(&m, p->s + t->start, t->end - t->start, SOQL_QUOTE_MAX);
        mb_str(&m, "'");
        break;
    }
    return -EINVAL;
}

/* ---- lexer ------------------------------------------------------------- */

static int is_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

static unsigned char fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* ASCII case-insensitive equality of a[0..n) and b[0..n). */
static int ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fold((unsigned char)a[i]) != fold((unsigned char)b[i]))
            return 0;
    }
    return 1;
}

/* The token that starts at or after `pos`. Reads nothing at or past s[len]. */
static void lex(const char *s, size_t len, size_t pos, token *t)
{
    while (pos < len && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r' ||
                         s[pos] == '\f' || s[pos] == '\v'))
        pos++;
    t->start = pos;
    if (pos >= len) {
        t->kind = T_EOF;
        t->end = pos;
        return;
    }
    unsigned char c = (unsigned char)s[pos];
    size_t p = pos + 1;
    if (is_alpha(c)) {
        while (p < len && is_alnum((unsigned char)s[p]))
            p++;
        t->kind = T_IDENT;
    } else if (is_digit(c) || ((c == '-' || c == '+') && p < len && is_digit((unsigned char)s[p]))) {
        while (p < len && is_digit((unsigned char)s[p]))
            p++;
        if (p + 1 < len && s[p] == '.' && is_digit((unsigned char)s[p + 1])) {
            p += 2;
            while (p < len && is_digit((unsigned char)s[p]))
                p++;
        }
        t->kind = T_NUMBER;
        /* "12abc", "1.2.3", "1.": one malformed token. */
        if (p < len && (is_alnum((unsigned char)s[p]) || s[p] == '.')) {
            while (p < len && (is_alnum((unsigned char)s[p]) || s[p] == '.'))
                p++;
            t->kind = T_OTHER;
        }
    } else if (c == '\'') {
        int closed = 0;
        while (p < len) {
            if (s[p] == '\\') {
                p += 2; /* the escaped byte is checked when the literal is decoded */
                continue;
            }
            if (s[p] == '\'') {
                closed = 1;
                break;
            }
            p++;
        }
        if (closed) {
            t->kind = T_STRING;
            p++;
        } else {
            t->kind = T_UNTERMINATED;
            p = len;
        }
    } else {
        t->kind = T_OTHER;
        switch (c) {
        case ',': t->kind = T_COMMA; break;
        case '(': t->kind = T_LPAREN; break;
        case ')': t->kind = T_RPAREN; break;
        case '=': t->kind = T_EQ; break;
        case '!':
            if (p < len && s[p] == '=') {
                t->kind = T_NE;
                p++;
            }
            break;
        case '<':
            if (p < len && s[p] == '>') {
                t->kind = T_NE;
                p++;
            } else if (p < len && s[p] == '=') {
                p++;
            }
            break;
        case '>':
            if (p < len && s[p] == '=')
                p++;
            break;
        default: {
            size_t k = sfm_utf8_seq((const unsigned char *)s + pos, len - pos);
            p = pos + (k ? k : 1);
            break;
        }
        }
    }
    t->end = p;
}

/* ---- parser ------------------------------------------------------------ */

static void advance(parser *p)
{
    lex(p->s, p->len, p->tok.end, &p->tok);
}

static int is_kw(const parser *p, const token *t, const char *kw)
{
    size_t n = strlen(kw);
    return t->kind == T_IDENT && t->end - t->start == n && ieq(p->s + t->start, kw, n);
}

/* SOQL's reserved words, plus true and false: never a field or type name. */
static int is_reserved(const parser *p, const token *t)
{
    static const char *const words[] = {"AND",   "ASC",    "DESC", "EXCLUDES", "FIRST", "FROM",
                                        "GROUP", "HAVING", "IN",   "INCLUDES", "LAST",  "LIKE",
                                        "LIMIT", "NOT",    "NULL", "NULLS",    "OR",    "SELECT",
                                        "WHERE", "WITH",   "TRUE", "FALSE"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (is_kw(p, t, words[i]))
            return 1;
    }
    return 0;
}

/* Makes room for `need` items of `size` bytes in *items. 0 or -ENOMEM. */
static int grow(void **items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    if (ncap > SIZE_MAX / size)
        return -ENOMEM;
    void *n = realloc(*items, ncap * size);
    if (!n)
        return -ENOMEM;
    *items = n;
    *cap = ncap;
    return 0;
}

/* The current token as a field name: a new reference in *ref. */
static int parse_field(parser *p, size_t *ref)
{
    sfm_soql *q = p->q;
    if (p->tok.kind != T_IDENT || is_reserved(p, &p->tok))
        return unexpected(p);
    if (grow((void **)&q->refs, &q->cap_refs, q->nrefs + 1, sizeof(*q->refs)) < 0)
        return fail_nomem(p->e);
    q->refs[q->nrefs].off = p->tok.start;
    q->refs[q->nrefs].len = p->tok.end - p->tok.start;
    *ref = q->nrefs++;
    advance(p);
    return 0;
}

static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

static int bad_escape(parser *p, size_t at, size_t n)
{
    msgbuf m;
    p->e->status = 400;
    p->e->code = "MALFORMED_QUERY";
    mb_init(&m, p->e->message, sizeof(p->e->message));
    frame(&m, p->s, p->len, p->tok.start, 0, NULL, NULL);
    mb_str(&m, "Invalid string literal ");
    mb_clip(&m, p->s + p->tok.start, p->tok.end - p->tok.start, SOQL_QUOTE_MAX);
    mb_str(&m, ". Illegal character sequence '");
    mb_text(&m, p->s + at, n);
    mb_str(&m, "' in string literal.");
    return -EINVAL;
}

/*
 * Decodes the current string token into the pool. In a LIKE pattern \%, \_
 * and \\ stay escaped, for the matcher; elsewhere they are the character.
 * Decoded text is never longer than its token, so the pool (as long as the
 * text) always has room.
 */
static int decode_string(parser *p, int like, soql_lit *l)
{
    sfm_soql *q = p->q;
    const char *s = p->s;
    size_t i = p->tok.start + 1, end = p->tok.end - 1; /* between the quotes */
    char *out = q->pool + q->pool_len;
    size_t n = 0;
    while (i < end) {
        if (s[i] != '\\') {
            out[n++] = s[i++];
            continue;
        }
        /* The lexer never ends a literal right after a lone backslash: i + 1 < end. */
        char x = s[i + 1];
        switch (x) {
        case 'n':
        case 'N': out[n++] = '\n'; break;
        case 'r':
        case 'R': out[n++] = '\r'; break;
        case 't':
        case 'T': out[n++] = '\t'; break;
        case 'b':
        case 'B': out[n++] = '\b'; break;
        case 'f':
        case 'F': out[n++] = '\f'; break;
        case '"': out[n++] = '"'; break;
        case '\'': out[n++] = '\''; break;
        case '\\':
        case '%':
        case '_':
            if (like)
                out[n++] = '\\';
            out[n++] = x;
            break;
        case 'u': {
            unsigned long cp = 0;
            size_t k = 0;
            while (k < 4 && i + 2 + k < end && sfm_hex_digit((unsigned char)s[i + 2 + k]) >= 0) {
                cp = cp * 16 + (unsigned long)sfm_hex_digit((unsigned char)s[i + 2 + k]);
                k++;
            }
            if (k < 4)
                return bad_escape(p, i, 2 + k);
            /* At most 3 bytes, plus a backslash, from 6 bytes of text. */
            if (like && (cp == '\\' || cp == '%' || cp == '_'))
                out[n++] = '\\';
            n += put_utf8(out + n, cp);
            i += 4;
            break;
        }
        default: {
            size_t k = sfm_utf8_seq((const unsigned char *)s + i + 1, end - i - 1);
            return bad_escape(p, i, 1 + (k ? k : 1));
        }
        }
        i += 2;
    }
    l->kind = L_STR;
    l->off = q->pool_len;
    l->len = n;
    q->pool_len += n;
    return 0;
}

/* The value of a T_NUMBER token ([+-]digits[.digits]). */
static void number_value(const char *s, size_t n, soql_lit *l)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t i = 0;
    int neg = 0, dot = 0, overflow = 0, frac = 0;
    unsigned long long iv = 0;
    double mant = 0;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i = 1;
    }
    for (; i < n; i++) {
        if (s[i] == '.') {
            dot = 1;
            continue;
        }
        unsigned d = (unsigned)(s[i] - '0');
        mant = mant * 10 + d;
        if (dot)
            frac++;
        else if (iv > (ULLONG_MAX - d) / 10)
            overflow = 1;
        else
            iv = iv * 10 + d;
    }
    while (frac > 22) {
        mant /= 1e22;
        frac -= 22;
    }
    mant /= pow10[frac];
    l->kind = L_NUM;
    l->num = neg ? -mant : mant;
    l->is_int = 0;
    if (!dot && !overflow) {
        if (!neg && iv <= (unsigned long long)LLONG_MAX) {
            l->is_int = 1;
            l->inum = (long long)iv;
        } else if (neg && iv >= 1 && iv - 1 <= (unsigned long long)LLONG_MAX) {
            l->is_int = 1;
            l->inum = -(long long)(iv - 1) - 1;
        } else if (neg && iv == 0) {
            l->is_int = 1;
            l->inum = 0;
        }
    }
}

/* A literal: 'string', number, true, false, null (only a string when `like`). */
static int parse_literal(parser *p, int like)
{
    sfm_soql *q = p->q;
    soql_lit l;
    memset(&l, 0, sizeof(l));
    if (p->tok.kind == T_STRING) {
        int rc = decode_string(p, like, &l);
        if (rc < 0)
            return rc;
    } else if (like) {
        return unexpected(p);
    } else if (p->tok.kind == T_NUMBER) {
        number_value(p->s + p->tok.start, p->tok.end - p->tok.start, &l);
    } else if (is_kw(p, &p->tok, "true") || is_kw(p, &p->tok, "false")) {
        l.kind = L_BOOL;
        l.boolean = is_kw(p, &p->tok, "true");
    } else if (is_kw(p, &p->tok, "null")) {
        l.kind = L_NULL;
    } else {
        return unexpected(p);
    }
    if (grow((void **)&q->lits, &q->cap_lits, q->nlits + 1, sizeof(*q->lits)) < 0)
        return fail_nomem(p->e);
    q->lits[q->nlits++] = l;
    advance(p);
    return 0;
}

static int add_node(parser *p, enum node_kind kind, size_t *out)
{
    sfm_soql *q = p->q;
    if (grow((void **)&q->nodes, &q->cap_nodes, q->nnodes + 1, sizeof(*q->nodes)) < 0)
        return fail_nomem(p->e);
    soql_node *n = &q->nodes[q->nnodes];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->first = NO_NODE;
    n->next = NO_NODE;
    *out = q->nnodes++;
    return 0;
}

static int parse_cond(parser *p, size_t *out);

/* '(' condition ')' or field op value. */
static int parse_term(parser *p, size_t *out)
{
    int rc;
    if (p->tok.kind == T_LPAREN) {
        if (p->depth >= SOQL_MAX_DEPTH)
            return unexpected(p);
        p->depth++;
        advance(p);
        rc = parse_cond(p, out);
        if (rc < 0)
            return rc;
        if (p->tok.kind != T_RPAREN)
            return unexpected(p);
        p->depth--;
        advance(p);
        return 0;
    }
    size_t ref;
    rc = parse_field(p, &ref);
    if (rc < 0)
        return rc;
    enum cmp_op op;
    if (p->tok.kind == T_EQ)
        op = OP_EQ;
    else if (p->tok.kind == T_NE)
        op = OP_NE;
    else if (is_kw(p, &p->tok, "LIKE"))
        op = OP_LIKE;
    else if (is_kw(p, &p->tok, "IN"))
        op = OP_IN;
    else
        return unexpected(p);
    advance(p);
    size_t first_lit = p->q->nlits;
    if (op == OP_IN) {
        if (p->tok.kind != T_LPAREN)
            return unexpected(p);
        advance(p);
        for (;;) {
            rc = parse_literal(p, 0);
            if (rc < 0)
                return rc;
            if (p->tok.kind == T_RPAREN)
                break;
            if (p->tok.kind != T_COMMA)
                return unexpected(p);
            advance(p);
        }
        advance(p);
    } else {
        rc = parse_literal(p, op == OP_LIKE);
        if (rc < 0)
            return rc;
    }
    size_t n;
    rc = add_node(p, N_CMP, &n);
    if (rc < 0)
        return rc;
    p->q->nodes[n].op = op;
    p->q->nodes[n].ref = ref;
    p->q->nodes[n].lit = first_lit;
    p->q->nodes[n].nlit = p->q->nlits - first_lit;
    *out = n;
    return 0;
}

/* term, then either only ANDs or only ORs between terms (Salesforce's rule, see the top). */
static int parse_cond(parser *p, size_t *out)
{
    size_t first;
    int rc = parse_term(p, &first);
    if (rc < 0)
        return rc;
    int is_and = is_kw(p, &p->tok, "AND");
    if (!is_and && !is_kw(p, &p->tok, "OR")) {
        *out = first;
        return 0;
    }
    const char *same = is_and ? "AND" : "OR", *other = is_and ? "OR" : "AND";
    size_t group;
    rc = add_node(p, is_and ? N_AND : N_OR, &group);
    if (rc < 0)
        return rc;
    p->q->nodes[group].first = first;
    size_t last = first;
    while (is_kw(p, &p->tok, same)) {
        advance(p);
        size_t term;
        rc = parse_term(p, &term);
        if (rc < 0)
            return rc;
        p->q->nodes[last].next = term;
        last = term;
    }
    if (is_kw(p, &p->tok, other))
        return unexpected(p);
    *out = group;
    return 0;
}

/* A LIMIT or OFFSET count: digits only. */
static int parse_count(parser *p, long long *out)
{
    soql_lit l;
    if (p->tok.kind != T_NUMBER || !is_digit((unsigned char)p->s[p->tok.start]))
        return unexpected(p);
    number_value(p->s + p->tok.start, p->tok.end - p->tok.start, &l);
    if (!l.is_int)
        return unexpected(p);
    *out = l.inum;
    advance(p);
    return 0;
}

static int parse_query(parser *p)
{
    sfm_soql *q = p->q;
    int rc;
    if (!is_kw(p, &p->tok, "SELECT"))
        return unexpected(p);
    advance(p);
    token peek;
    lex(p->s, p->len, p->tok.end, &peek);
    if (is_kw(p, &p->tok, "COUNT") && peek.kind == T_LPAREN) {
        q->count = 1;
        p->tok = peek;
        advance(p);
        if (p->tok.kind != T_RPAREN)
            return unexpected(p);
        advance(p);
    } else {
        for (;;) {
            size_t ref;
            rc = parse_field(p, &ref);
            if (rc < 0)
                return rc;
            if (grow((void **)&q->select, &q->cap_select, q->nselect + 1, sizeof(*q->select)) < 0)
                return fail_nomem(p->e);
            q->select[q->nselect++] = ref;
            if (p->tok.kind != T_COMMA)
                break;
            advance(p);
        }
    }
    if (!is_kw(p, &p->tok, "FROM"))
        return unexpected(p);
    advance(p);
    if (p->tok.kind != T_IDENT || is_reserved(p, &p->tok))
        return unexpected(p);
    q->type_off = p->tok.start;
    q->type = malloc(p->tok.end - p->tok.start + 1);
    if (!q->type)
        return fail_nomem(p->e);
    memcpy(q->type, p->s + p->tok.start, p->tok.end - p->tok.start);
    q->type[p->tok.end - p->tok.start] = '\0';
    advance(p);

    if (is_kw(p, &p->tok, "WHERE")) {
        advance(p);
        rc = parse_cond(p, &q->where);
        if (rc < 0)
            return rc;
    }
    if (is_kw(p, &p->tok, "ORDER")) {
        advance(p);
        if (!is_kw(p, &p->tok, "BY"))
            return unexpected(p);
        advance(p);
        for (;;) {
            soql_order o = {0, 0, 1};
            rc = parse_field(p, &o.ref);
            if (rc < 0)
                return rc;
            if (is_kw(p, &p->tok, "ASC")) {
                advance(p);
            } else if (is_kw(p, &p->tok, "DESC")) {
                o.desc = 1;
                o.nulls_first = 0;
                advance(p);
            }
            if (is_kw(p, &p->tok, "NULLS")) {
                advance(p);
                if (is_kw(p, &p->tok, "FIRST"))
                    o.nulls_first = 1;
                else if (is_kw(p, &p->tok, "LAST"))
                    o.nulls_first = 0;
                else
                    return unexpected(p);
                advance(p);
            }
            if (grow((void **)&q->order, &q->cap_order, q->norder + 1, sizeof(*q->order)) < 0)
                return fail_nomem(p->e);
            q->order[q->norder++] = o;
            if (p->tok.kind != T_COMMA)
                break;
            advance(p);
        }
    }
    if (is_kw(p, &p->tok, "LIMIT")) {
        advance(p);
        rc = parse_count(p, &q->limit);
        if (rc < 0)
            return rc;
    }
    if (is_kw(p, &p->tok, "OFFSET")) {
        advance(p);
        rc = parse_count(p, &q->offset);
        if (rc < 0)
            return rc;
    }
    if (p->tok.kind != T_EOF)
        return unexpected(p);
    return 0;
}

typedef struct sel_name {
    const char *name;
    size_t len;
    size_t pos; /* in SELECT order */
} sel_name;

static int cmp_sel_name(const void *a, const void *b)
{
    const sel_name *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    for (size_t i = 0; i < n; i++) {
        int d = (int)fold((unsigned char)x->name[i]) - (int)fold((unsigned char)y->name[i]);
        if (d)
            return d;
    }
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->pos < y->pos ? -1 : (x->pos > y->pos);
}

/* "duplicate field selected: X" at the first field that repeats an earlier one. O(n log n). */
static int check_duplicates(parser *p)
{
    sfm_soql *q = p->q;
    if (q->nselect < 2)
        return 0;
    sel_name *v = malloc(q->nselect * sizeof(*v));
    if (!v)
        return fail_nomem(p->e);
    for (size_t i = 0; i < q->nselect; i++) {
        v[i].name = q->text + q->refs[q->select[i]].off;
        v[i].len = q->refs[q->select[i]].len;
        v[i].pos = i;
    }
    qsort(v, q->nselect, sizeof(*v), cmp_sel_name);
    size_t dup = SIZE_MAX;
    for (size_t i = 1; i < q->nselect; i++) {
        if (v[i].len == v[i - 1].len && ieq(v[i].name, v[i - 1].name, v[i].len) && v[i].pos < dup)
            dup = v[i].pos;
    }
    free(v);
    if (dup == SIZE_MAX)
        return 0;
    const soql_ref *r = &q->refs[q->select[dup]];
    msgbuf m;
    p->e->status = 400;
    p->e->code = "MALFORMED_QUERY";
    mb_init(&m, p->e->message, sizeof(p->e->message));
    frame(&m, q->text, q->len, r->off, 0, NULL, NULL);
    mb_str(&m, "duplicate field selected: ");
    mb_clip(&m, q->text + r->off, r->len, SOQL_QUOTE_MAX);
    return -EINVAL;
}

void sfm_soql_free(sfm_soql *q)
{
    if (!q)
        return;
    free(q->lits);
    free(q->nodes);
    free(q->order);
    free(q->select);
    free(q->refs);
    free(q->type);
    free(q->pool);
    free(q->text);
    free(q);
}

int sfm_soql_parse(const char *text, sfm_soql **out, sfm_data_error *e)
{
    int rc = -ENOMEM;
    if (!text)
        text = "";
    size_t len = strnlen(text, SOQL_MAX_LEN + 1);
    if (len > SOQL_MAX_LEN) {
        e->status = 400;
        e->code = "MALFORMED_QUERY";
        snprintf(e->message, sizeof(e->message), "SOQL statements cannot exceed %d characters", SOQL_MAX_LEN);
        return -EINVAL;
    }
    sfm_soql *q = calloc(1, sizeof(*q));
    if (!q)
        return fail_nomem(e);
    q->len = len;
    q->where = NO_NODE;
    q->limit = -1;
    q->text = malloc(len + 1);
    q->pool = malloc(len + 1);
    if (!q->text || !q->pool) {
        rc = fail_nomem(e);
        goto fail;
    }
    memcpy(q->text, text, len);
    q->text[len] = '\0';

    parser p = {.q = q, .s = q->text, .len = len, .e = e};
    lex(p.s, p.len, 0, &p.tok);
    rc = parse_query(&p);
    if (rc == 0)
        rc = check_duplicates(&p);
    if (rc < 0)
        goto fail;
    *out = q;
    return 0;
fail:
    sfm_soql_free(q);
    return rc;
}

const char *sfm_soql_type(const sfm_soql *q)
{
    return q->type;
}

void sfm_soql_invalid_type(const sfm_soql *q, sfm_data_error *e)
{
    msgbuf m;
    e->status = 400;
    e->code = "INVALID_TYPE";
    mb_init(&m, e->message, sizeof(e->message));
    frame(&m, q->text, q->len, q->type_off, 0, NULL, NULL);
    mb_str(&m, "sObject type '");
    mb_clip(&m, q->type, strlen(q->type), SOQL_QUOTE_MAX);
    mb_str(&m, "' is not supported. If you are attempting to use a custom object, be sure to append the "
               "'__c' after the entity name. Please reference your WSDL or the describe call for the "
               "appropriate names.");
}

/* ---- running ----------------------------------------------------------- */

/** What a run knows beyond the query: each reference's canonical name (borrowed from `fields`). */
typedef struct run_ctx {
    const sfm_soql *q;
    const char **canon;
    unsigned char *idlike; /* the canonical name ends in "Id" */
} run_ctx;

static int is_id(const char *s, size_t n)
{
    if (n != 15 && n != 18)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum((unsigned char)s[i]) || s[i] == '_')
            return 0;
    }
    return 1;
}

static int lit_eq(const run_ctx *c, size_t ref, const json_t *v, const soql_lit *l)
{
    switch (l->kind) {
    case L_NULL: return v == NULL || json_is_null(v);
    case L_STR: {
        if (!json_is_string(v))
            return 0;
        const char *a = json_string_value(v), *b = c->q->pool + l->off;
        size_t an = json_string_length(v);
        if (c->idlike[ref] && is_id(a, an) && is_id(b, l->len))
            return memcmp(a, b, 15) == 0;
        return an == l->len && ieq(a, b, an);
    }
    case L_NUM:
        if (!json_is_number(v))
            return 0;
        if (json_is_integer(v) && l->is_int)
            return json_integer_value(v) == l->inum;
        return json_number_value(v) == l->num;
    case L_BOOL: return json_is_boolean(v) && json_is_true(v) == (l->boolean != 0);
    }
    return 0;
}

static size_t seq_len(const char *s, size_t n)
{
    size_t k = sfm_utf8_seq((const unsigned char *)s, n);
    return k ? k : 1;
}

/*
 * SQL LIKE: '%' any run, '_' one character, "\x" the character x; ASCII
 * letters case-insensitive. Iterative, backtracking only to the last '%':
 * O(len(str) * len(pat)) at worst.
 */
static int like_match(const char *str, size_t sn, const char *pat, size_t pn)
{
    size_t s = 0, p = 0, star_p = SIZE_MAX, star_s = 0;
    while (s < sn) {
        if (p < pn && pat[p] == '%') {
            star_p = ++p;
            star_s = s;
            continue;
        }
        if (p < pn) {
            if (pat[p] == '_') {
                p++;
                s += seq_len(str + s, sn - s);
                continue;
            }
            size_t pc = p, pl;
            if (pat[p] == '\\' && p + 1 < pn) {
                pc = p + 1;
                pl = 1;
            } else {
                pl = seq_len(pat + p, pn - p);
            }
            if (pl == 1 && fold((unsigned char)pat[pc]) == fold((unsigned char)str[s])) {
                p = pc + 1;
                s++;
                continue;
            }
            if (pl > 1 && s + pl <= sn && memcmp(pat + pc, str + s, pl) == 0) {
                p = pc + pl;
                s += pl;
                continue;
            }
        }
        if (star_p == SIZE_MAX)
            return 0;
        star_s += seq_len(str + star_s, sn - star_s);
        s = star_s;
        p = star_p;
    }
    while (p < pn && pat[p] == '%')
        p++;
    return p == pn;
}

static int eval(const run_ctx *c, size_t node, const json_t *rec)
{
    const soql_node *n = &c->q->nodes[node];
    switch (n->kind) {
    case N_AND:
        for (size_t k = n->first; k != NO_NODE; k = c->q->nodes[k].next) {
            if (!eval(c, k, rec))
                return 0;
        }
        return 1;
    case N_OR:
        for (size_t k = n->first; k != NO_NODE; k = c->q->nodes[k].next) {
            if (eval(c, k, rec))
                return 1;
        }
        return 0;
    case N_CMP: break;
    }
    const json_t *v = json_object_get(rec, c->canon[n->ref]);
    const soql_lit *l = &c->q->lits[n->lit];
    switch (n->op) {
    case OP_EQ: return lit_eq(c, n->ref, v, l);
    case OP_NE: return !lit_eq(c, n->ref, v, l);
    case OP_LIKE:
        return json_is_string(v) &&
               like_match(json_string_value(v), json_string_length(v), c->q->pool + l->off, l->len);
    case OP_IN:
        for (size_t i = 0; i < n->nlit; i++) {
            if (lit_eq(c, n->ref, v, &l[i]))
                return 1;
        }
        return 0;
    }
    return 0;
}

/* Orders booleans, then numbers, then text, then anything else. */
static int type_rank(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_TRUE:
    case JSON_FALSE: return 0;
    case JSON_INTEGER:
    case JSON_REAL: return 1;
    case JSON_STRING: return 2;
    case JSON_OBJECT:
    case JSON_ARRAY:
    case JSON_NULL: return 3;
    }
    return 3;
}

/* Two non-null values, ascending. */
static int cmp_values(const json_t *a, const json_t *b)
{
    int ra = type_rank(a), rb = type_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (ra == 0)
        return (int)json_is_true(a) - (int)json_is_true(b);
    if (ra == 1) {
        if (json_is_integer(a) && json_is_integer(b)) {
            json_int_t x = json_integer_value(a), y = json_integer_value(b);
            return x < y ? -1 : (x > y);
        }
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : (x > y);
    }
    if (ra == 2) {
        const char *x = json_string_value(a), *y = json_string_value(b);
        size_t xn = json_string_length(a), yn = json_string_length(b), n = xn < yn ? xn : yn;
        for (size_t i = 0; i < n; i++) {
            int d = (int)fold((unsigned char)x[i]) - (int)fold((unsigned char)y[i]);
            if (d)
                return d < 0 ? -1 : 1;
        }
        return xn < yn ? -1 : (xn > yn);
    }
    return 0;
}

typedef struct sort_ctx {
    const sfm_soql *q;
    const json_t **keys; /* nkeys per matching row */
} sort_ctx;

static int cmp_rows(const sort_ctx *c, size_t a, size_t b)
{
    size_t nk = c->q->norder;
    for (size_t k = 0; k < nk; k++) {
        const json_t *x = c->keys[a * nk + k], *y = c->keys[b * nk + k];
        int xnull = x == NULL || json_is_null(x), ynull = y == NULL || json_is_null(y);
        const soql_order *o = &c->q->order[k];
        int d;
        if (xnull || ynull) {
            if (xnull && ynull)
                continue;
            d = xnull ? -1 : 1;
            if (!o->nulls_first)
                d = -d;
            return d;
        }
        d = cmp_values(x, y);
        if (d)
            return o->desc ? -d : d;
    }
    return 0;
}

/* Stable bottom-up merge sort of a[0..n) with the scratch tmp[0..n). */
static void sort_rows(const sort_ctx *c, size_t *a, size_t *tmp, size_t n)
{
    size_t *src = a, *dst = tmp;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = cmp_rows(c, src[j], src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        size_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof(*a));
}

static int invalid_field(const sfm_soql *q, size_t ref, const char *type, sfm_data_error *e)
{
    const soql_ref *r = &q->refs[ref];
    msgbuf m;
    e->status = 400;
    e->code = "INVALID_FIELD";
    mb_init(&m, e->message, sizeof(e->message));
    frame(&m, q->text, q->len, r->off, 0, NULL, NULL);
    mb_str(&m, "No such column '");
    mb_clip(&m, q->text + r->off, r->len, SOQL_QUOTE_MAX);
    mb_str(&m, "' on entity '");
    mb_clip(&m, type, strlen(type), SOQL_QUOTE_MAX);
    mb_str(&m, "'. If you are attempting to use a custom field, be sure to append the '__c' after the custom "
               "field name. Please reference your WSDL or the describe call for the appropriate names.");
    return -EINVAL;
}

/* Resolves every field reference against `fields`; INVALID_FIELD at the first unknown one. */
static int resolve(run_ctx *c, const char *type, const json_t *fields, sfm_data_error *e)
{
    const sfm_soql *q = c->q;
    size_t nf = json_array_size(fields);
    for (size_t r = 0; r < q->nrefs; r++) {
        const char *name = q->text + q->refs[r].off;
        size_t len = q->refs[r].len;
        c->canon[r] = NULL;
        for (size_t i = 0; i < nf; i++) {
            const json_t *f = json_array_get(fields, i);
            if (json_is_string(f) && json_string_length(f) == len && ieq(json_string_value(f), name, len)) {
                c->canon[r] = json_string_value(f);
                break;
            }
        }
        if (!c->canon[r])
            return invalid_field(q, r, type, e);
        c->idlike[r] = len >= 2 && memcmp(c->canon[r] + len - 2, "Id", 2) == 0;
    }
    return 0;
}

/** The reusable parts of every answered record. */
typedef struct emitter {
    json_t *type; /* the type's name, shared by every record's attributes */
    char *url;    /* "/services/data/v<version>/sobjects/<type>/" then room for the id */
    size_t prefix, cap;
} emitter;

/* One answered record: attributes, then the selected fields in SELECT order. NULL when out of memory. */
static json_t *emit(const run_ctx *c, emitter *em, const json_t *rec)
{
    const sfm_soql *q = c->q;
    const char *id = json_string_value(json_object_get(rec, "Id"));
    size_t idlen = id ? strlen(id) : 0;
    if (em->prefix + idlen + 1 > em->cap) {
        char *n = realloc(em->url, em->prefix + idlen + 1);
        if (!n)
            return NULL;
        em->url = n;
        em->cap = em->prefix + idlen + 1;
    }
    if (idlen)
        memcpy(em->url + em->prefix, id, idlen);
    json_t *o = json_object(), *attr = json_object();
    if (!o || !attr || json_object_set(attr, "type", em->type) < 0 ||
        json_object_set_new(attr, "url", json_stringn(em->url, em->prefix + idlen)) < 0)
        goto fail;
    /* json_object_set_new takes the value even when it fails. */
    if (json_object_set_new(o, "attributes", attr) < 0) {
        attr = NULL;
        goto fail;
    }
    attr = NULL;
    for (size_t i = 0; i < q->nselect; i++) {
        const char *key = c->canon[q->select[i]];
        json_t *v = json_object_get(rec, key);
        json_t *copy = v ? json_copy(v) : json_null();
        if (!copy || json_object_set_new(o, key, copy) < 0)
            goto fail;
    }
    return o;
fail:
    json_decref(attr);
    json_decref(o);
    return NULL;
}

/* Matching records in record order: answered from OFFSET until LIMIT, or counted. */
static int run_unordered(const run_ctx *c, emitter *em, const json_t *records, json_t *list, size_t *total)
{
    const sfm_soql *q = c->q;
    size_t n = json_array_size(records), matched = 0, emitted = 0;
    size_t offset = (size_t)q->offset; /* parsed from digits: never negative */
    size_t limit = q->limit < 0 ? SIZE_MAX : (size_t)q->limit;
    for (size_t i = 0; i < n && (q->count || emitted < limit); i++) {
        const json_t *rec = json_array_get(records, i);
        if (!json_is_object(rec) || (q->where != NO_NODE && !eval(c, q->where, rec)))
            continue;
        if (matched++ < offset || q->count)
            continue;
        if (json_array_append_new(list, emit(c, em, rec)) < 0)
            return -ENOMEM;
        emitted++;
    }
    if (q->count) {
        emitted = matched > offset ? matched - offset : 0;
        if (emitted > limit)
            emitted = limit;
    }
    *total = emitted;
    return 0;
}

/* Matching records sorted by ORDER BY (stable), then answered from OFFSET until LIMIT. */
static int run_ordered(const run_ctx *c, emitter *em, const json_t *records, json_t *list, size_t *total)
{
    const sfm_soql *q = c->q;
    int rc = -ENOMEM;
    size_t n = json_array_size(records), nk = q->norder, cnt = 0, emitted = 0;
    size_t offset = (size_t)q->offset;
    size_t limit = q->limit < 0 ? SIZE_MAX : (size_t)q->limit;
    size_t *recidx = NULL, *rows = NULL, *tmp = NULL;
    const json_t **keys = NULL;
    size_t alloc = n ? n : 1;

    if (alloc > SIZE_MAX / sizeof(*keys) / nk)
        goto done;
    recidx = malloc(alloc * sizeof(*recidx));
    rows = malloc(alloc * sizeof(*rows));
    tmp = malloc(alloc * sizeof(*tmp));
    keys = malloc(alloc * nk * sizeof(*keys));
    if (!recidx || !rows || !tmp || !keys)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const json_t *rec = json_array_get(records, i);
        if (!json_is_object(rec) || (q->where != NO_NODE && !eval(c, q->where, rec)))
            continue;
        for (size_t k = 0; k < nk; k++)
            keys[cnt * nk + k] = json_object_get(rec, c->canon[q->order[k].ref]);
        recidx[cnt] = i;
        rows[cnt] = cnt;
        cnt++;
    }
    sort_ctx sc = {.q = q, .keys = keys};
    sort_rows(&sc, rows, tmp, cnt);
    for (size_t r = offset; r < cnt && emitted < limit; r++) {
        if (json_array_append_new(list, emit(c, em, json_array_get(records, recidx[rows[r]]))) < 0)
            goto done;
        emitted++;
    }
    *total = emitted;
    rc = 0;
done:
    free(keys);
    free(tmp);
    free(rows);
    free(recidx);
    return rc;
}

int sfm_soql_run(const sfm_soql *q, const char *type, const json_t *fields, const json_t *records,
                 const char *version, json_t **out, sfm_data_error *e)
{
    int rc;
    run_ctx c = {.q = q};
    emitter em = {0};
    json_t *list = NULL, *result = NULL;
    size_t nrefs = q->nrefs ? q->nrefs : 1, total = 0;

    c.canon = malloc(nrefs * sizeof(*c.canon));
    c.idlike = malloc(nrefs);
    if (!c.canon || !c.idlike)
        goto nomem;
    rc = resolve(&c, type, fields, e);
    if (rc < 0)
        goto done;

    list = json_array();
    if (!list)
        goto nomem;
    if (!q->count) {
        int plen = snprintf(NULL, 0, "/services/data/v%s/sobjects/%s/", version, type);
        em.type = json_string(type);
        if (!em.type || plen < 0)
            goto nomem;
        em.prefix = (size_t)plen;
        em.cap = em.prefix + 19; /* an 18-character id and the terminator */
        em.url = malloc(em.cap);
        if (!em.url)
            goto nomem;
        snprintf(em.url, em.cap, "/services/data/v%s/sobjects/%s/", version, type);
    }
    if (q->count || q->norder == 0)
        rc = run_unordered(&c, &em, records, list, &total);
    else
        rc = run_ordered(&c, &em, records, list, &total);
    if (rc < 0)
        goto nomem;

    result = json_object();
    if (!result || json_object_set_new(result, "totalSize", json_integer((json_int_t)total)) < 0 ||
        json_object_set_new(result, "done", json_true()) < 0)
        goto nomem;
    rc = json_object_set_new(result, "records", list);
    list = NULL; /* taken, even on failure */
    if (rc < 0)
        goto nomem;
    *out = result;
    result = NULL;
    rc = 0;
    goto done;
nomem:
    rc = fail_nomem(e);
done:
    json_decref(result);
    json_decref(list);
    json_decref(em.type);
    free(em.url);
    free(c.idlike);
    free(c.canon);
    return rc;
}
