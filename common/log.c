/*
 * log: levelled one-line logging to stderr, text or JSON.  See log.h.
 * There is one process-wide log (one stderr), so its settings are the only
 * globals in common/.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "log.h"

static enum sw_log_level log_level = SW_LOG_INFO;
static enum sw_log_format log_format = SW_LOG_TEXT;
static char log_path[512];

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_upper[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int
sw_log_parse_level(const char *name, enum sw_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum sw_log_level)i;
			return 0;
		}
	if (strcmp(name, "warning") == 0) {
		*out = SW_LOG_WARN;
		return 0;
	}
	return -1;
}

int
sw_log_parse_format(const char *name, enum sw_log_format *out)
{
	if (strcmp(name, "text") == 0)
		*out = SW_LOG_TEXT;
	else if (strcmp(name, "json") == 0)
		*out = SW_LOG_JSON;
	else
		return -1;
	return 0;
}

void
sw_log_set_level(enum sw_log_level level)
{
	log_level = level;
}

void
sw_log_set_format(enum sw_log_format format)
{
	log_format = format;
}

enum sw_log_level
sw_log_get_level(void)
{
	return log_level;
}

int
sw_log_set_file(const char *path)
{
	if (path == NULL) {
		log_path[0] = '\0';
		return 0;
	}
	if (strlen(path) >= sizeof(log_path))
		return -1;
	memcpy(log_path, path, strlen(path) + 1);
	return sw_log_reopen();
}

int
sw_log_reopen(void)
{
	int fd;

	if (log_path[0] == '\0')
		return 0;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	if (dup2(fd, STDERR_FILENO) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

const char *
sw_log_q(char *buf, size_t size, const char *s)
{
	size_t o = 0;

	if (size < 3) {
		if (size > 0)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char tmp[5];
		size_t n;

		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			n = 2;
		} else if (c < 0x20 || c >= 0x7f) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", c);
			n = 4;
		} else {
			tmp[0] = (char)c;
			n = 1;
		}
		if (o + n + 2 > size)
			break;
		memcpy(buf + o, tmp, n);
		o += n;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* Append s as a JSON string (without quotes) to out; keep within size. */
static size_t
json_esc(char *out, size_t o, size_t size, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[8];
		size_t n;

		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			n = 2;
		} else if (c < 0x20) {
			snprintf(tmp, sizeof(tmp), "\\u%04x", c);
			n = 6;
		} else {
			tmp[0] = (char)c;
			n = 1;
		}
		if (o + n >= size)
			break;
		memcpy(out + o, tmp, n);
		o += n;
	}
	return o;
}

static size_t
json_lit(char *out, size_t o, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (o + n >= size)
		return o;
	memcpy(out + o, s, n);
	return o + n;
}

/*
 * Split "k=v k2=\"quoted v\"" into JSON members.  Quoted values were escaped
 * by sw_log_q, so a closing quote is one not preceded by a backslash.
 */
static size_t
json_fields(char *out, size_t o, size_t size, const char *f)
{
	while (*f != '\0') {
		const char *k, *eq, *v, *end;
		int quoted;

		while (*f == ' ')
			f++;
		if (*f == '\0')
			break;
		k = f;
		eq = strchr(k, '=');
		if (eq == NULL || memchr(k, ' ', (size_t)(eq - k)) != NULL) {
			/* Not a pair: keep it as text. */
			o = json_lit(out, o, size, ",\"extra\":\"");
			o = json_esc(out, o, size, f, strlen(f));
			o = json_lit(out, o, size, "\"");
			break;
		}
		v = eq + 1;
		quoted = (*v == '"');
		if (quoted) {
			v++;
			end = v;
			while (*end != '\0' && !(*end == '"' && end[-1] != '\\'))
				end++;
		} else {
			end = strchr(v, ' ');
			if (end == NULL)
				end = v + strlen(v);
		}
		o = json_lit(out, o, size, ",\"");
		o = json_esc(out, o, size, k, (size_t)(eq - k));
		o = json_lit(out, o, size, "\":\"");
		o = json_esc(out, o, size, v, (size_t)(end - v));
		o = json_lit(out, o, size, "\"");
		f = (quoted && *end == '"') ? end + 1 : end;
	}
	return o;
}

void
sw_logv(enum sw_log_level level, const char *svc, const char *msg, const char *fields,
    va_list ap)
{
	char fbuf[2048], line[4096], ts[96];
	struct timespec now;
	struct tm tm;
	int saved = errno;
	size_t o;

	if (level < log_level || level > SW_LOG_ERROR)
		goto out;
	fbuf[0] = '\0';
	if (fields != NULL)
		vsnprintf(fbuf, sizeof(fbuf), fields, ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    now.tv_nsec / 1000000);
	if (svc == NULL)
		svc = "-";
	if (log_format == SW_LOG_JSON) {
		o = 0;
		o = json_lit(line, o, sizeof(line), "{\"time\":\"");
		o = json_lit(line, o, sizeof(line), ts);
		o = json_lit(line, o, sizeof(line), "\",\"level\":\"");
		o = json_lit(line, o, sizeof(line), level_names[level]);
		o = json_lit(line, o, sizeof(line), "\",\"service\":\"");
		o = json_esc(line, o, sizeof(line), svc, strlen(svc));
		o = json_lit(line, o, sizeof(line), "\",\"msg\":\"");
		o = json_esc(line, o, sizeof(line), msg, strlen(msg));
		o = json_lit(line, o, sizeof(line), "\"");
		o = json_fields(line, o, sizeof(line) - 2, fbuf);
		line[o++] = '}';
		line[o++] = '\n';
		line[o] = '\0';
	} else {
		int n = snprintf(line, sizeof(line) - 1, "%s %s %s %s%s%s", ts, level_upper[level],
		    svc, msg, fbuf[0] ? " " : "", fbuf);
		if (n < 0)
			goto out;
		o = (size_t)n < sizeof(line) - 2 ? (size_t)n : sizeof(line) - 2;
		/* Messages and fields are ours, but never let one break the line. */
		for (size_t i = 0; i < o; i++)
			if (line[i] == '\n' || line[i] == '\r')
				line[i] = ' ';
		line[o++] = '\n';
		line[o] = '\0';
	}
	(void)!write(STDERR_FILENO, line, o);
out:
	errno = saved;
}

void
sw_log(enum sw_log_level level, const char *svc, const char *msg, const char *fields, ...)
{
	va_list ap;

	va_start(ap, fields);
	sw_logv(level, svc, msg, fields, ap);
	va_end(ap);
}

void
sw_log_errno(enum sw_log_level level, const char *svc, const char *msg, const char *fields,
    ...)
{
	char fbuf[2048], q[160];
	int saved = errno;
	va_list ap;

	fbuf[0] = '\0';
	if (fields != NULL) {
		va_start(ap, fields);
		vsnprintf(fbuf, sizeof(fbuf), fields, ap);
		va_end(ap);
	}
	sw_log(level, svc, msg, "%s%serr=%s", fbuf, fbuf[0] ? " " : "",
	    sw_log_q(q, sizeof(q), strerror(saved)));
	errno = saved;
}

/* One process, one event loop: the budget is plain statics. */
static long long limited_window_ms;
static unsigned limited_lines;
static unsigned long long limited_dropped;

void
sw_log_limited(enum sw_log_level level, const char *svc, const char *msg, const char *fields,
    ...)
{
	char fbuf[2048];
	struct timespec ts;
	long long now;
	va_list ap;

	if (level < log_level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (limited_window_ms == 0 || now - limited_window_ms >= SW_LOG_LIMIT_WINDOW_MS) {
		limited_window_ms = now;
		limited_lines = 0;
	}
	if (limited_lines >= SW_LOG_LIMIT_BURST) {
		limited_dropped++;
		return;
	}
	limited_lines++;
	fbuf[0] = '\0';
	if (fields != NULL) {
		va_start(ap, fields);
		vsnprintf(fbuf, sizeof(fbuf), fields, ap);
		va_end(ap);
	}
	if (limited_dropped > 0)
		sw_log(level, svc, msg, "%s%sunlogged=%llu", fbuf, fbuf[0] ? " " : "",
		    limited_dropped);
	else
		sw_log(level, svc, msg, fbuf[0] ? "%s" : NULL, fbuf);
	limited_dropped = 0;
}
