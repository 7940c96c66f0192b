/*
 * sfmtls-ca: the dev CA of sfmtls (SPEC section 9), a thin command line over pki.h.
 *
 *   sfmtls-ca init  --dir DIR [--key ec|rsa2048|rsa3072|rsa4096]
 *   sfmtls-ca issue client|server --dir DIR --cn NAME [...]
 *   sfmtls-ca check FILE [--trust BUNDLE]... [--dir DIR]
 *
 * Flags take "--name value" or "--name=value"; an unknown flag is an error naming it.
 * Exit codes: 0 success (check: acceptable), 1 failure (check: not acceptable),
 * 2 usage or I/O error.
 */
#include "pki.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef SFMTLS_VERSION
#define SFMTLS_VERSION "unknown"
#endif

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/** Longest path the command builds. */
#define CA_PATH_MAX 4096
/** Most --trust flags of one check. */
#define CA_MAX_TRUST 64
/** Largest file `check` reads (an upload over 1 MB is already CERTIFICATE_TOO_LARGE). */
#define CA_CHECK_FILE_MAX (16 * 1024 * 1024)
/** Room for check's problem lines. */
#define CA_DETAIL_MAX 8192
/** Longest issued validity accepted on the command line, in days. */
#define CA_MAX_DAYS 36500

static const char k_usage_top[] =
    "usage: sfmtls-ca COMMAND [FLAGS]\n"
    "\n"
    "The dev CA of sfmtls: make a root and an intermediate, issue client and server\n"
    "certificates (good ones and deliberately bad ones), and tell whether Salesforce\n"
    "would accept a PEM file as a Mutual Authentication Certificate.\n"
    "\n"
    "commands:\n"
    "  init    create a root CA and an intermediate in a directory\n"
    "  issue   issue a client or server certificate\n"
    "  check   judge a PEM file as a Mutual Authentication Certificate upload\n"
    "\n"
    "  sfmtls-ca COMMAND --help   details of one command\n"
    "  sfmtls-ca --version        print the version\n"
    "\n"
    "Flags take --name value or --name=value. Exit codes: 0 success, 1 failure\n"
    "(check: not acceptable), 2 usage or I/O error.\n";

static const char k_usage_init[] =
    "usage: sfmtls-ca init --dir DIR [--key ec|rsa2048|rsa3072|rsa4096]\n"
    "\n"
    "Creates DIR (mode 0700) holding a root CA and an intermediate that signs leaves:\n"
    "  DIR/ca.pem, DIR/ca.key                       the root: give ca.pem to clients to trust\n"
    "  DIR/intermediate.pem, DIR/intermediate.key   the issuing CA\n"
    "Keys are unencrypted PKCS#8 PEM, mode 0600. Fails if DIR already holds a CA.\n"
    "\n"
    "  --dir DIR   the CA directory (a server's --state-dir works: the server uses the same files)\n"
    "  --key KIND  key of both CA certificates: ec (P-256, default), rsa2048, rsa3072, rsa4096\n"
    "\n"
    "Exit: 0 created, 1 failed (DIR already holds a CA, cannot write), 2 usage error.\n";

static const char k_usage_issue[] =
    "usage: sfmtls-ca issue client|server --dir DIR --cn NAME [FLAGS]\n"
    "\n"
    "Issues a certificate from the intermediate of DIR and writes:\n"
    "  PREFIX.crt        the certificate\n"
    "  PREFIX.key        its private key (unencrypted PKCS#8 PEM, mode 0600)\n"
    "  PREFIX.chain.pem  the certificate followed by its issuer (what a client sends)\n"
    "  PREFIX.p12        with --p12: key, certificate and issuer in PKCS#12\n"
    "A client certificate has EKU clientAuth; a server certificate has EKU serverAuth\n"
    "and its --san names (the CN as DNS name when none is given).\n"
    "\n"
    "  --dir DIR          the CA directory (see init)\n"
    "  --cn NAME          the subject common name (at most 63 bytes); subject is CN=NAME,O=sfmtls\n"
    "  --san NAME         a subjectAltName, DNS name or IP address; repeat for more (at most 32)\n"
    "  --days N           validity in days (default 365)\n"
    "  --key KIND         ec (P-256, default), rsa2048, rsa3072, rsa4096\n"
    "  --out PREFIX       where to write (default DIR/clients/NAME for client,\n"
    "                     DIR/servers/NAME for server; NAME with characters other than\n"
    "                     letters, digits, '.', '-' and '_' replaced by '_')\n"
    "  --p12 PASSWORD     also write PREFIX.p12 (printable ASCII password; encrypted with\n"
    "                     PBE-SHA1-3DES and a SHA-256 MAC: OpenSSL 3, Java and .NET read it)\n"
    "\n"
    "Negative kinds (at most one), for rehearsing rejections:\n"
    "  --self-signed      self-signed leaf; PREFIX.chain.pem holds the leaf alone\n"
    "  --expired          validity ended a day ago (lasting --days before that)\n"
    "  --not-yet-valid    validity starts in 30 days\n"
    "  --untrusted        issued by DIR/untrusted-ca.pem, a second root that nothing trusts\n"
    "                     (made on first use); PREFIX.chain.pem holds the leaf and that root\n"
    "  --eku server       EKU serverAuth only (a client certificate Salesforce rejects)\n"
    "\n"
    "Exit: 0 issued, 1 failed, 2 usage error.\n";

static const char k_usage_check[] =
    "usage: sfmtls-ca check FILE [--trust BUNDLE]... [--dir DIR]\n"
    "\n"
    "Would Salesforce accept FILE (PEM: the leaf, optionally followed by its chain) as a\n"
    "Mutual Authentication Certificate? Prints every problem as \"CODE: explanation\",\n"
    "with the codes of the upload checks (in this order): PRIVATE_KEY_NOT_ALLOWED,\n"
    "MALFORMED_CERTIFICATE, CERTIFICATE_TOO_LARGE (over 1 MB or over 10 certificates),\n"
    "SELF_SIGNED_CERTIFICATE, UNTRUSTED_CERTIFICATE, CERTIFICATE_EXPIRED,\n"
    "CERTIFICATE_NOT_YET_VALID. The chain is built from FILE's certificates and the trust\n"
    "anchors only; like Salesforce, only self-signed CA certificates become anchors.\n"
    "\n"
    "  --trust BUNDLE  a PEM bundle of trusted roots; repeat for more (intermediates in it\n"
    "                  are ignored with a warning)\n"
    "  --dir DIR       also trust DIR/ca.pem (the dev CA)\n"
    "\n"
    "Exit: 0 acceptable, 1 not acceptable, 2 usage or I/O error.\n";

/* One flag a command accepts. */
typedef struct flag_def {
    const char *name; /* without the leading "--" */
    int id;
    int has_value;
} flag_def;

/*
 * Reads argv[*i]. Returns 1 for a flag (*id, *value set), 0 for a positional argument
 * (*value set), or -1 after printing a usage error. Handles "--name value",
 * "--name=value" and "--" (everything after it is positional).
 */
static int next_arg(int argc, char **argv, int *i, int *dashdash, const flag_def *defs, size_t n_defs,
                    int *id, const char **value)
{
    const char *a = argv[*i];

    if (*dashdash || strncmp(a, "--", 2) != 0 || a[2] == '\0') {
        if (!*dashdash && strcmp(a, "--") == 0) {
            *dashdash = 1;
            *value = NULL;
            return 0;
        }
        if (!*dashdash && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "sfmtls-ca: unknown flag %s\n", a);
            return -1;
        }
        *value = a;
        return 0;
    }
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    for (size_t k = 0; k < n_defs; k++) {
        if (strlen(defs[k].name) != name_len || strncmp(defs[k].name, name, name_len) != 0)
            continue;
        *id = defs[k].id;
        if (!defs[k].has_value) {
            if (eq != NULL) {
                fprintf(stderr, "sfmtls-ca: --%s takes no value\n", defs[k].name);
                return -1;
            }
            *value = NULL;
            return 1;
        }
        if (eq != NULL) {
            *value = eq + 1;
        } else if (*i + 1 < argc) {
            *i += 1;
            *value = argv[*i];
        } else {
            fprintf(stderr, "sfmtls-ca: --%s needs a value\n", defs[k].name);
            return -1;
        }
        return 1;
    }
    fprintf(stderr, "sfmtls-ca: unknown flag --%.*s\n", (int)name_len, name);
    return -1;
}

static int parse_days(const char *s, int *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > CA_MAX_DAYS)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_key(const char *s, enum sfm_pki_key *out)
{
    if (sfm_pki_key_parse(s, out) != 0) {
        fprintf(stderr, "sfmtls-ca: --key must be ec, rsa2048, rsa3072 or rsa4096, not \"%s\"\n", s);
        return -1;
    }
    return 0;
}

/* ---- init ------------------------------------------------------------------------------ */

enum {
    F_HELP,
    F_DIR,
    F_KEY,
    F_CN,
    F_SAN,
    F_DAYS,
    F_OUT,
    F_P12,
    F_SELF_SIGNED,
    F_EXPIRED,
    F_NOT_YET_VALID,
    F_UNTRUSTED,
    F_EKU,
    F_TRUST
};

static int cmd_init(int argc, char **argv)
{
    static const flag_def defs[] = {
        {"help", F_HELP, 0},
        {"dir", F_DIR, 1},
        {"key", F_KEY, 1},
    };
    const char *dir = NULL, *value = NULL;
    enum sfm_pki_key key = SFM_PKI_KEY_EC_P256;
    char err[SFM_PKI_ERR_LEN] = "";
    int dashdash = 0, id = 0;

    for (int i = 0; i < argc; i++) {
        int r = next_arg(argc, argv, &i, &dashdash, defs, sizeof defs / sizeof defs[0], &id, &value);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0) {
            if (value == NULL)
                continue;
            fprintf(stderr, "sfmtls-ca init: unexpected argument \"%s\"\n", value);
            return EXIT_USAGE;
        }
        if (id == F_HELP) {
            fputs(k_usage_init, stdout);
            return EXIT_OK;
        } else if (id == F_DIR) {
            dir = value;
        } else if (id == F_KEY && parse_key(value, &key) != 0) {
            return EXIT_USAGE;
        }
    }
    if (dir == NULL || *dir == '\0') {
        fprintf(stderr, "sfmtls-ca init: --dir is required\n%s", k_usage_init);
        return EXIT_USAGE;
    }
    if (sfm_pki_ca_init(dir, key, err) != 0) {
        fprintf(stderr, "sfmtls-ca init: %s\n", err);
        return EXIT_FAIL;
    }
    printf(
        "created the dev CA in %s:\n  %s/ca.pem (root: trust this)\n  %s/intermediate.pem (signs leaves)\n",
        dir, dir, dir);
    return EXIT_OK;
}

/* ---- issue ----------------------------------------------------------------------------- */

/* A file-name-safe copy of a common name. */
static void safe_name(const char *cn, char *out, size_t cap)
{
    size_t n = 0;

    for (; cn[n] != '\0' && n + 1 < cap; n++) {
        char c = cn[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                 c == '_' || (c == '.' && n > 0);
        out[n] = ok ? c : '_';
    }
    out[n] = '\0';
}

/* Prints what was written, with the facts of the new certificate. */
static void print_issued(const char *prefix, int with_p12)
{
    char path[CA_PATH_MAX], err[SFM_PKI_ERR_LEN], nb[32], na[32];
    char *text = NULL;
    size_t len = 0, n = 0;
    sfm_der der[1];
    sfm_pki_facts f;

    snprintf(path, sizeof path, "%s.crt", prefix);
    if (sfm_pki_read_file(path, 1024 * 1024, &text, &len, err) == 0 &&
        sfm_pki_pem_certs(text, len, der, 1, &n, NULL, err) == 0 && n == 1) {
        if (sfm_pki_facts_of(der[0].der, der[0].len, &f) == 0) {
            sfm_pki_iso8601(f.not_before, nb);
            sfm_pki_iso8601(f.not_after, na);
            printf("subject:  %s\nissuer:   %s\nserial:   %s\nsha256:   %s\nvalid:    %s to %s\n", f.subject,
                   f.issuer, f.serial, f.sha256, nb, na);
        }
        sfm_pki_ders_free(der, n);
    }
    free(text);
    printf("wrote:\n  %s.crt\n  %s.key\n  %s.chain.pem\n", prefix, prefix, prefix);
    if (with_p12)
        printf("  %s.p12\n", prefix);
}

static int cmd_issue(int argc, char **argv)
{
    static const flag_def defs[] = {
        {"help", F_HELP, 0},
        {"dir", F_DIR, 1},
        {"cn", F_CN, 1},
        {"san", F_SAN, 1},
        {"days", F_DAYS, 1},
        {"key", F_KEY, 1},
        {"out", F_OUT, 1},
        {"p12", F_P12, 1},
        {"self-signed", F_SELF_SIGNED, 0},
        {"expired", F_EXPIRED, 0},
        {"not-yet-valid", F_NOT_YET_VALID, 0},
        {"untrusted", F_UNTRUSTED, 0},
        {"eku", F_EKU, 1},
    };
    const char *sans[SFM_PKI_MAX_SANS];
    const char *dir = NULL, *kind = NULL, *value = NULL;
    char prefix[CA_PATH_MAX], name[CA_PATH_MAX], err[SFM_PKI_ERR_LEN] = "";
    sfm_pki_issue_opts o;
    int dashdash = 0, id = 0;

    memset(&o, 0, sizeof o);
    o.key = SFM_PKI_KEY_EC_P256;
    o.sans = sans;
    for (int i = 0; i < argc; i++) {
        int r = next_arg(argc, argv, &i, &dashdash, defs, sizeof defs / sizeof defs[0], &id, &value);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0) {
            if (value == NULL)
                continue;
            if (kind != NULL) {
                fprintf(stderr, "sfmtls-ca issue: unexpected argument \"%s\"\n", value);
                return EXIT_USAGE;
            }
            kind = value;
            continue;
        }
        switch (id) {
        case F_HELP: fputs(k_usage_issue, stdout); return EXIT_OK;
        case F_DIR: dir = value; break;
        case F_CN: o.cn = value; break;
        case F_SAN:
            if (o.n_sans == SFM_PKI_MAX_SANS) {
                fprintf(stderr, "sfmtls-ca issue: at most %d --san\n", SFM_PKI_MAX_SANS);
                return EXIT_USAGE;
            }
            sans[o.n_sans++] = value;
            break;
        case F_DAYS:
            if (parse_days(value, &o.days) != 0) {
                fprintf(stderr, "sfmtls-ca issue: --days must be a number from 1 to %d\n", CA_MAX_DAYS);
                return EXIT_USAGE;
            }
            break;
        case F_KEY:
            if (parse_key(value, &o.key) != 0)
                return EXIT_USAGE;
            break;
        case F_OUT: o.out_prefix = value; break;
        case F_P12: o.p12_password = value; break;
        case F_SELF_SIGNED: o.self_signed = 1; break;
        case F_EXPIRED: o.expired = 1; break;
        case F_NOT_YET_VALID: o.not_yet_valid = 1; break;
        case F_UNTRUSTED: o.untrusted = 1; break;
        case F_EKU:
            if (strcmp(value, "server") != 0) {
                fprintf(stderr, "sfmtls-ca issue: --eku takes \"server\" only, not \"%s\"\n", value);
                return EXIT_USAGE;
            }
            o.eku_server = 1;
            break;
        default: fprintf(stderr, "sfmtls-ca issue: flag not handled\n"); return EXIT_USAGE;
        }
    }
    if (kind == NULL || (strcmp(kind, "client") != 0 && strcmp(kind, "server") != 0)) {
        fprintf(stderr, "sfmtls-ca issue: say client or server\n%s", k_usage_issue);
        return EXIT_USAGE;
    }
    o.kind = strcmp(kind, "client") == 0 ? SFM_PKI_CLIENT : SFM_PKI_SERVER;
    if (dir == NULL || *dir == '\0' || o.cn == NULL || *o.cn == '\0') {
        fprintf(stderr, "sfmtls-ca issue: --dir and --cn are required\n%s", k_usage_issue);
        return EXIT_USAGE;
    }
    if (o.self_signed + o.expired + o.not_yet_valid + o.untrusted + o.eku_server > 1) {
        fprintf(stderr, "sfmtls-ca issue: --self-signed, --expired, --not-yet-valid, --untrusted and "
                        "--eku are exclusive\n");
        return EXIT_USAGE;
    }
    if (o.out_prefix == NULL) {
        safe_name(o.cn, name, sizeof name);
        int n = snprintf(prefix, sizeof prefix, "%s/%s/%s", dir,
                         o.kind == SFM_PKI_CLIENT ? "clients" : "servers", name);
        if (n < 0 || (size_t)n >= sizeof prefix) {
            fprintf(stderr, "sfmtls-ca issue: path too long\n");
            return EXIT_USAGE;
        }
        o.out_prefix = prefix;
    }
    if (sfm_pki_issue(dir, &o, err) != 0) {
        fprintf(stderr, "sfmtls-ca issue: %s\n", err);
        return EXIT_FAIL;
    }
    print_issued(o.out_prefix, o.p12_password != NULL);
    return EXIT_OK;
}

/* ---- check ----------------------------------------------------------------------------- */

static int trust_file(sfm_pki_trust *t, const char *path)
{
    char err[SFM_PKI_ERR_LEN] = "";
    size_t skipped = 0;

    if (sfm_pki_trust_add_file(t, path, &skipped, err) != 0) {
        fprintf(stderr, "sfmtls-ca check: %s\n", err);
        return -1;
    }
    if (skipped > 0)
        fprintf(stderr,
                "sfmtls-ca check: warning: %s: ignored %zu certificate(s) that are not self-signed CA "
                "certificates (Salesforce trusts only roots)\n",
                path, skipped);
    return 0;
}

static int cmd_check(int argc, char **argv)
{
    static const flag_def defs[] = {
        {"help", F_HELP, 0},
        {"trust", F_TRUST, 1},
        {"dir", F_DIR, 1},
    };
    const char *trusts[CA_MAX_TRUST];
    size_t n_trust = 0;
    const char *file = NULL, *dir = NULL, *value = NULL;
    char path[CA_PATH_MAX], err[SFM_PKI_ERR_LEN] = "", detail[CA_DETAIL_MAX];
    char *text = NULL;
    size_t len = 0;
    sfm_pki_trust *trust = NULL;
    unsigned problems = 0;
    int dashdash = 0, id = 0, rc = EXIT_USAGE;

    for (int i = 0; i < argc; i++) {
        int r = next_arg(argc, argv, &i, &dashdash, defs, sizeof defs / sizeof defs[0], &id, &value);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0) {
            if (value == NULL)
                continue;
            if (file != NULL) {
                fprintf(stderr, "sfmtls-ca check: one FILE only (unexpected \"%s\")\n", value);
                return EXIT_USAGE;
            }
            file = value;
        } else if (id == F_HELP) {
            fputs(k_usage_check, stdout);
            return EXIT_OK;
        } else if (id == F_DIR) {
            dir = value;
        } else if (id == F_TRUST) {
            if (n_trust == CA_MAX_TRUST) {
                fprintf(stderr, "sfmtls-ca check: at most %d --trust\n", CA_MAX_TRUST);
                return EXIT_USAGE;
            }
            trusts[n_trust++] = value;
        }
    }
    if (file == NULL) {
        fprintf(stderr, "sfmtls-ca check: FILE is required\n%s", k_usage_check);
        return EXIT_USAGE;
    }
    if (sfm_pki_trust_new(&trust) != 0) {
        fprintf(stderr, "sfmtls-ca check: out of memory\n");
        goto out;
    }
    if (dir != NULL) {
        int n = snprintf(path, sizeof path, "%s/ca.pem", dir);
        if (n < 0 || (size_t)n >= sizeof path || trust_file(trust, path) != 0)
            goto out;
    }
    for (size_t i = 0; i < n_trust; i++) {
        if (trust_file(trust, trusts[i]) != 0)
            goto out;
    }
    if (sfm_pki_trust_count(trust) == 0)
        fprintf(stderr, "sfmtls-ca check: warning: no trust anchors (--trust, --dir): every chain is "
                        "untrusted\n");
    int r = sfm_pki_read_file(file, CA_CHECK_FILE_MAX, &text, &len, err);
    if (r == SFM_PKI_EARG) {
        /* too big to read is too big to upload */
        printf("%s: not acceptable\n%s: larger than %d bytes\n", file,
               sfm_pki_problem_code(SFM_PKI_P_CERTIFICATE_TOO_LARGE), CA_CHECK_FILE_MAX);
        rc = EXIT_FAIL;
        goto out;
    }
    if (r != 0) {
        fprintf(stderr, "sfmtls-ca check: %s\n", err);
        goto out;
    }
    if (sfm_pki_check_pem(trust, text, len, time(NULL), &problems, detail, sizeof detail) != 0) {
        fprintf(stderr, "sfmtls-ca check: out of memory\n");
        goto out;
    }
    if (problems == 0) {
        sfm_der der[1];
        size_t n = 0;
        sfm_pki_facts f;
        printf("%s: acceptable\n", file);
        if (sfm_pki_pem_certs(text, len, der, 1, &n, NULL, err) == 0 && n == 1) {
            if (sfm_pki_facts_of(der[0].der, der[0].len, &f) == 0)
                printf("subject:  %s\nissuer:   %s\nserial:   %s\nsha256:   %s\n", f.subject, f.issuer,
                       f.serial, f.sha256);
            sfm_pki_ders_free(der, n);
        }
        rc = EXIT_OK;
    } else {
        printf("%s: not acceptable\n%s", file, detail);
        rc = EXIT_FAIL;
    }
out:
    free(text);
    sfm_pki_trust_free(trust);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(k_usage_top, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(k_usage_top, stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("sfmtls-ca %s\n", SFMTLS_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "init") == 0)
        return cmd_init(argc - 2, argv + 2);
    if (strcmp(cmd, "issue") == 0)
        return cmd_issue(argc - 2, argv + 2);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strncmp(cmd, "--", 2) == 0)
        fprintf(stderr, "sfmtls-ca: unknown flag %s\n", cmd);
    else
        fprintf(stderr, "sfmtls-ca: unknown command \"%s\"\n", cmd);
    fputs(k_usage_top, stderr);
    return EXIT_USAGE;
}
