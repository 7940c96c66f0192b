/*
 * policy: who gets in (SPEC section 4). One pure function from plain values
 * to an outcome and a reason code: no I/O, no clock, no globals. The rows of
 * SPEC's table are tried in order and the first that matches wins; the
 * callers turn the answer into the Salesforce-shaped response.
 */
#ifndef SFM_POLICY_H
#define SFM_POLICY_H

#include "layer1.h"
#include "tls.h"

/** What the request is, as the policy sees it. */
enum sfm_request_kind {
    SFM_KIND_PUBLIC, /* needs no user: GET /services/data/, unknown paths */
    SFM_KIND_LOGIN,  /* OAuth token request, SOAP login */
    SFM_KIND_API,    /* a REST or SOAP call with a session */
    SFM_KIND_UI,     /* UI login, /secur/frontdoor.jsp, OAuth authorize */
};

/** How a login's credentials compared (SFM_KIND_LOGIN only). */
enum sfm_login_check {
    SFM_LOGIN_OK,
    SFM_LOGIN_UNKNOWN_USER,
    SFM_LOGIN_BAD_PASSWORD,
    SFM_LOGIN_INACTIVE,
    SFM_LOGIN_TOKEN_MISSING, /* right password, security token missing */
};

/** The reasons the policy gives (SPEC section 4's codes; the layer-1 codes come from layer1.h). */
enum sfm_reason {
    SFM_REASON_ALLOWED,
    SFM_REASON_LAYER1, /* the certificate failed layer 1: see sfm_decision.l1 */
    SFM_REASON_NOT_FOUND,
    SFM_REASON_INVALID_SESSION,
    SFM_REASON_INVALID_LOGIN,
    SFM_REASON_SECURITY_TOKEN_REQUIRED,
    SFM_REASON_API_DISABLED,
    SFM_REASON_STANDARD_PORT,
    SFM_REASON_NO_CLIENT_CERTIFICATE,
    SFM_REASON_CERTIFICATE_NOT_UPLOADED,
    SFM_REASON_API_ONLY_USER,
    SFM_REASON_INSUFFICIENT_ACCESS,
};

/** Everything the decision depends on. */
typedef struct sfm_policy_input {
    enum sfm_listener listener;
    int has_cert;          /* the client presented a certificate */
    enum sfm_l1_reason l1; /* its layer-1 outcome (has_cert only) */
    int cert_uploaded;     /* its leaf is one of the org's Mutual Authentication Certificates */
    int org_mutual_auth;   /* organization.mutualAuthentication */
    enum sfm_request_kind kind;
    int version_known; /* API and login paths: the version in the path is served (or none is named) */
    int session_valid; /* SFM_KIND_API and SFM_KIND_UI with a session: it is known and unexpired */
    enum sfm_login_check login; /* SFM_KIND_LOGIN, and SFM_KIND_UI for the login form; else SFM_LOGIN_OK */
    unsigned perms;             /* the user's effective SFM_PERM_* bits */
    int needs_view_setup;       /* the resource needs "View Setup and Configuration" (limits) */
} sfm_policy_input;

typedef struct sfm_decision {
    int allowed;
    enum sfm_reason reason;
    enum sfm_l1_reason l1; /* SFM_REASON_LAYER1 only */
    int row;               /* the row of SPEC section 4's table that matched (1-12) */
} sfm_decision;

/** The decision for `in`. */
sfm_decision sfm_policy_decide(const sfm_policy_input *in);

/** The reason code of a decision ("ALLOWED", "STANDARD_PORT", "CERTIFICATE_EXPIRED", ...). */
const char *sfm_decision_code(const sfm_decision *d);

/**
 * The login history's "status" text for a decision (SPEC section 6: the
 * Login History text Salesforce shows). `login` tells "Invalid password",
 * "Invalid login" and "User is inactive" apart.
 */
const char *sfm_decision_status(const sfm_decision *d, enum sfm_login_check login);

#endif
