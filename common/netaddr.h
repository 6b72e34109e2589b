/*
 * netaddr: IP address text as it arrives in JSON bodies (a visor's local
 * addresses, a service's local IPs), checked with inet_pton so only numeric
 * IPv4 or IPv6 addresses pass; nothing here resolves names.
 */
#ifndef SW_NETADDR_H
#define SW_NETADDR_H

#include <stddef.h>
#include <cjson/cJSON.h>

#define SW_IP_TEXT 46 /* INET6_ADDRSTRLEN: the longest IP text with its NUL */

/* 1 if s is a numeric IPv4 or IPv6 address, else 0. */
int sw_ip_valid(const char *s);

/*
 * A JSON array of at most max IP strings into out[max] (NULL or absent: none).
 * Returns 0 with *n set, 400 when it is not an array of strings, 422 when it
 * is too long or an element is not an IP address; err says which.
 */
int sw_ip_list_parse(const cJSON *arr, size_t max, char (*out)[SW_IP_TEXT], size_t *n,
    const char *what, char *err, size_t errlen);

/* "ip:port", or "[ip]:port" for IPv6 (out: at least SW_IP_TEXT + 8). */
void sw_hostport_format(char *out, size_t size, const char *ip, unsigned port);

#endif
