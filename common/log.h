/*
 * log: one line per event on stderr.
 *
 * Text:  2026-11-26T07:05:02Z INFO dmsg-discovery entry stored pk=ab.. seq=3
 * JSON:  {"time":"…","level":"info","service":"dmsg-discovery","msg":"entry stored","pk":"ab..","seq":"3"}
 *
 * A call gives a fixed message and a printf format for the fields, written as
 * space-separated key=value pairs.  Values that may hold spaces or come from the
 * network go through sw_log_q(), which quotes and escapes them, so a peer cannot
 * forge a log line.  The JSON form is made by splitting those pairs again.
 */
#ifndef SW_LOG_H
#define SW_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum sw_log_level {
	SW_LOG_DEBUG = 0,
	SW_LOG_INFO,
	SW_LOG_WARN,
	SW_LOG_ERROR,
};

enum sw_log_format {
	SW_LOG_TEXT = 0,
	SW_LOG_JSON,
};

#define SW_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Returns -1 on an unknown name. */
int sw_log_parse_level(const char *name, enum sw_log_level *out);
int sw_log_parse_format(const char *name, enum sw_log_format *out);
void sw_log_set_level(enum sw_log_level level);
void sw_log_set_format(enum sw_log_format format);
enum sw_log_level sw_log_get_level(void);

/* Reopen stderr onto this file (SIGHUP); NULL keeps stderr. */
int sw_log_set_file(const char *path);
int sw_log_reopen(void);

/* fields may be NULL for none.  errno is preserved. */
void sw_log(enum sw_log_level level, const char *svc, const char *msg, const char *fields, ...)
    SW_PRINTF(4, 5);
void sw_logv(enum sw_log_level level, const char *svc, const char *msg, const char *fields,
    va_list ap);

/*
 * sw_log with err="<strerror(errno)>" after the fields, as OpenBSD's
 * log_warn does: a reason in words, never a bare errno number.
 */
void sw_log_errno(enum sw_log_level level, const char *svc, const char *msg, const char *fields,
    ...) SW_PRINTF(4, 5);

/*
 * sw_log for what an outage repeats (a 5xx per request): at most
 * SW_LOG_LIMIT_BURST such lines per SW_LOG_LIMIT_WINDOW_MS in a process;
 * the next line logged says how many were left out ("unlogged=N").
 */
#define SW_LOG_LIMIT_BURST     10
#define SW_LOG_LIMIT_WINDOW_MS 10000
void sw_log_limited(enum sw_log_level level, const char *svc, const char *msg,
    const char *fields, ...) SW_PRINTF(4, 5);

#define sw_log_debug(svc, ...) sw_log(SW_LOG_DEBUG, svc, __VA_ARGS__)
#define sw_log_info(svc, ...)  sw_log(SW_LOG_INFO, svc, __VA_ARGS__)
#define sw_log_warn(svc, ...)  sw_log(SW_LOG_WARN, svc, __VA_ARGS__)
#define sw_log_error(svc, ...) sw_log(SW_LOG_ERROR, svc, __VA_ARGS__)
#define sw_log_warn_errno(svc, ...)  sw_log_errno(SW_LOG_WARN, svc, __VA_ARGS__)
#define sw_log_error_errno(svc, ...) sw_log_errno(SW_LOG_ERROR, svc, __VA_ARGS__)

/*
 * Quote an untrusted string for a field value: "…" with \" \\ and \xNN for
 * anything outside printable ASCII, cut to fit buf.  Returns buf.
 */
const char *sw_log_q(char *buf, size_t size, const char *s);

#endif
