/*
 * log: one line per event on stderr, as text or JSON (--log-format). Only
 * main and the workers' event loops log; library callbacks never do.
 */
#ifndef SFM_LOG_H
#define SFM_LOG_H

#include "config.h"

enum sfm_log_level { SFM_LOG_INFO, SFM_LOG_WARN, SFM_LOG_ERROR };

/** Chosen once at start, before any thread runs. */
void sfm_log_init(enum sfm_log_format format);

/** Logs `event` (a short fixed word such as "handshake_failed") and a message. */
void sfm_log(enum sfm_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
