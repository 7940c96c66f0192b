#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static enum sfm_log_format log_format = SFM_LOG_TEXT;

void sfm_log_init(enum sfm_log_format format)
{
    log_format = format;
}

static const char *level_name(enum sfm_log_level l)
{
    switch (l) {
    case SFM_LOG_INFO: return "info";
    case SFM_LOG_WARN: return "warn";
    case SFM_LOG_ERROR: return "error";
    }
    return "info";
}

void sfm_log(enum sfm_log_level level, const char *event, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[96];
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000));

    if (log_format == SFM_LOG_JSON) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "time", ts, "level", level_name(level), "event", event,
                              "message", msg);
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (line)
            fprintf(stderr, "%s\n", line);
        free(line);
        json_decref(o);
    } else {
        fprintf(stderr, "%s %s %s: %s\n", ts, level_name(level), event, msg);
    }
}
