/*
 * str: the two string helpers C leaves out.  sw_strlcpy is a bounded copy
 * that says when it cut (the checked strlcpy of OpenBSD, in place of the
 * "strlen >= sizeof, then memcpy" idiom); sw_xstrdup a strdup that is part
 * of C11 code (strdup is POSIX).
 */
#ifndef SW_STR_H
#define SW_STR_H

#include <stddef.h>

/*
 * Copy src into dst (size bytes, always NUL-terminated when size > 0).
 * Returns 0, or -1 when src did not fit (dst then holds the cut copy).
 */
int sw_strlcpy(char *dst, const char *src, size_t size);
/* NULL on out of memory. */
char *sw_xstrdup(const char *s);

#endif
