#include "policy.h"

#include "org.h"

static sfm_decision deny(int row, enum sfm_reason reason)
{
    return (sfm_decision){.allowed = 0, .reason = reason, .l1 = SFM_L1_OK, .row = row};
}

sfm_decision sfm_policy_decide(const sfm_policy_input *in)
{
    const int mtls = in->listener == SFM_LISTENER_MTLS;
    const int login = in->kind == SFM_KIND_LOGIN;
    const int uses_session = in->kind == SFM_KIND_API || in->kind == SFM_KIND_UI;

    /* 1: a certificate that failed layer 1 stops everything on the mTLS listener. */
    if (mtls && in->has_cert && in->l1 != SFM_L1_OK)
        return (sfm_decision){.allowed = 0, .reason = SFM_REASON_LAYER1, .l1 = in->l1, .row = 1};
    if (in->kind == SFM_KIND_PUBLIC)
        return (sfm_decision){.allowed = 1, .reason = SFM_REASON_ALLOWED, .row = 12};
    /* 2: an API or login path naming a version the org does not serve. */
    if ((in->kind == SFM_KIND_API || login) && !in->version_known)
        return deny(2, SFM_REASON_NOT_FOUND);
    /* 3: a session that is unknown, revoked or expired. */
    if (uses_session && !in->session_valid)
        return deny(3, SFM_REASON_INVALID_SESSION);
    /* 4 and 5: credentials (an OAuth or SOAP login, or the UI's login form). */
    if (login || in->kind == SFM_KIND_UI) {
        switch (in->login) {
        case SFM_LOGIN_OK: break;
        case SFM_LOGIN_UNKNOWN_USER:
        case SFM_LOGIN_BAD_PASSWORD:
        case SFM_LOGIN_INACTIVE: return deny(4, SFM_REASON_INVALID_LOGIN);
        case SFM_LOGIN_TOKEN_MISSING: return deny(5, SFM_REASON_SECURITY_TOKEN_REQUIRED);
        }
    }
    /* 6: API calls need ApiEnabled; logins succeed without it. */
    if (in->kind == SFM_KIND_API && !(in->perms & SFM_PERM_API_ENABLED))
        return deny(6, SFM_REASON_API_DISABLED);
    /* 7-9: layer 2, for users with Enforce while the org has the feature. */
    if (in->org_mutual_auth && (in->perms & SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION)) {
        if (!mtls) {
            /* A login on the standard listener succeeds; its session fails on use. */
            if (!login)
                return deny(7, SFM_REASON_STANDARD_PORT);
        } else if (!in->has_cert) {
            return deny(8, SFM_REASON_NO_CLIENT_CERTIFICATE);
        } else if (!in->cert_uploaded) {
            return deny(9, SFM_REASON_CERTIFICATE_NOT_UPLOADED);
        }
    }
    /* 10: API-only users have no UI. */
    if (in->kind == SFM_KIND_UI && (in->perms & SFM_PERM_API_USER_ONLY))
        return deny(10, SFM_REASON_API_ONLY_USER);
    /* 11: limits needs "View Setup and Configuration". */
    if (in->kind == SFM_KIND_API && in->needs_view_setup && !(in->perms & SFM_PERM_VIEW_SETUP))
        return deny(11, SFM_REASON_INSUFFICIENT_ACCESS);
    return (sfm_decision){.allowed = 1, .reason = SFM_REASON_ALLOWED, .row = 12};
}

const char *sfm_decision_code(const sfm_decision *d)
{
    switch (d->reason) {
    case SFM_REASON_ALLOWED: return "ALLOWED";
    case SFM_REASON_LAYER1: return d->l1 == SFM_L1_OK ? "ALLOWED" : sfm_l1_code(d->l1);
    case SFM_REASON_NOT_FOUND: return "NOT_FOUND";
    case SFM_REASON_INVALID_SESSION: return "INVALID_SESSION";
    case SFM_REASON_INVALID_LOGIN: return "INVALID_LOGIN";
    case SFM_REASON_SECURITY_TOKEN_REQUIRED: return "SECURITY_TOKEN_REQUIRED";
    case SFM_REASON_API_DISABLED: return "API_DISABLED";
    case SFM_REASON_STANDARD_PORT: return "STANDARD_PORT";
    case SFM_REASON_NO_CLIENT_CERTIFICATE: return "NO_CLIENT_CERTIFICATE";
    case SFM_REASON_CERTIFICATE_NOT_UPLOADED: return "CERTIFICATE_NOT_UPLOADED";
    case SFM_REASON_API_ONLY_USER: return "API_ONLY_USER";
    case SFM_REASON_INSUFFICIENT_ACCESS: return "INSUFFICIENT_ACCESS";
    }
    return "UNKNOWN";
}

const char *sfm_decision_status(const sfm_decision *d, enum sfm_login_check login)
{
    switch (d->reason) {
    case SFM_REASON_ALLOWED: return "Success";
    case SFM_REASON_LAYER1:
    case SFM_REASON_STANDARD_PORT:
    case SFM_REASON_NO_CLIENT_CERTIFICATE:
    case SFM_REASON_CERTIFICATE_NOT_UPLOADED: return "Mutual authentication failed";
    case SFM_REASON_INVALID_LOGIN:
        switch (login) {
        case SFM_LOGIN_BAD_PASSWORD: return "Invalid password";
        case SFM_LOGIN_INACTIVE: return "User is inactive";
        case SFM_LOGIN_OK:
        case SFM_LOGIN_UNKNOWN_USER:
        case SFM_LOGIN_TOKEN_MISSING: break;
        }
        return "Invalid login";
    case SFM_REASON_SECURITY_TOKEN_REQUIRED: return "Failed: API security token required";
    case SFM_REASON_API_ONLY_USER: return "Failed: API-only user";
    /* Not logins, so Salesforce's Login History has no text for them: ours. */
    case SFM_REASON_NOT_FOUND: return "Not found";
    case SFM_REASON_INVALID_SESSION: return "Session expired or invalid";
    case SFM_REASON_API_DISABLED: return "Failed: API disabled";
    case SFM_REASON_INSUFFICIENT_ACCESS: return "Insufficient access";
    }
    return "Unknown";
}
