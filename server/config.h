/*
 * config: the server's settings, from flags and SFMTLS_* variables (SPEC
 * section 8). A plain value struct: fields are read-only once parsed.
 */
#ifndef SFM_CONFIG_H
#define SFM_CONFIG_H

#include <stddef.h>

#define SFM_NODISCARD      __attribute__((warn_unused_result))
#define SFM_CONFIG_ERR_LEN 256
/** Most values a repeatable flag takes. */
#define SFM_CONFIG_LIST_MAX 32

enum sfm_client_cert { SFM_CLIENT_CERT_OPTIONAL, SFM_CLIENT_CERT_REQUIRED };
enum sfm_cert_failure { SFM_CERT_FAILURE_PAGE, SFM_CERT_FAILURE_ALERT };
enum sfm_server_key { SFM_SERVER_KEY_RSA, SFM_SERVER_KEY_EC };
enum sfm_log_format { SFM_LOG_TEXT, SFM_LOG_JSON };

typedef struct sfm_str_list {
    char *v[SFM_CONFIG_LIST_MAX]; /* owned */
    size_t n;
} sfm_str_list;

typedef struct sfm_config {
    /* read-only after sfm_config_parse; strings are owned by the struct */
    char *fixtures;
    int fixtures_is_default; /* --fixtures not given */
    char *state_dir;
    int ephemeral;
    int reset;
    sfm_str_list bind;
    int bind_is_default; /* --bind not given: ::1 is skipped without IPv6 */
    int mtls_port;
    int port;
    char *public_host;
    int public_port; /* 0: the standard listener's real port */
    char *tls_cert;
    char *tls_key;
    enum sfm_server_key server_key;
    sfm_str_list trust;
    sfm_str_list crl;
    int allow_no_eku;
    enum sfm_client_cert client_cert;
    enum sfm_cert_failure cert_failure;
    int mutual_auth_failed_status;
    int handshake_timeout; /* seconds */
    int idle_timeout;      /* seconds */
    int session_timeout;   /* seconds */
    char *admin_token;
    long history_max;
    int workers; /* 0 before parsing: the number of cores */
    enum sfm_log_format log_format;
} sfm_config;

enum sfm_config_action { SFM_CONFIG_RUN, SFM_CONFIG_HELP, SFM_CONFIG_VERSION };

/**
 * Fills `c` from `environ` (SFMTLS_*) and then argv (flags win). On success
 * *action says whether to run or to print help/version. On failure returns a
 * negative code, `err` names the flag or variable and the problem, and `c`
 * needs no cleanup.
 */
SFM_NODISCARD int sfm_config_parse(sfm_config *c, int argc, char **argv, char **envp,
                                   enum sfm_config_action *action, char err[SFM_CONFIG_ERR_LEN]);

/** Frees what sfm_config_parse allocated; safe on a zeroed struct. */
void sfm_config_cleanup(sfm_config *c);

/** The --help text. */
const char *sfm_config_usage(void);

#endif
