/*
 * netaddr: numeric IP text from the network, bounded and checked (netaddr.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "netaddr.h"

int
sw_ip_valid(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (s == NULL || strlen(s) >= SW_IP_TEXT)
		return 0;
	return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

int
sw_ip_list_parse(const cJSON *arr, size_t max, char (*out)[SW_IP_TEXT], size_t *n,
    const char *what, char *err, size_t errlen)
{
	const cJSON *it;
	size_t i = 0;

	*n = 0;
	if (arr == NULL || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr)) {
		snprintf(err, errlen, "%s must be an array of strings", what);
		return 400;
	}
	if ((size_t)cJSON_GetArraySize(arr) > max) {
		snprintf(err, errlen, "%s holds more than %zu addresses", what, max);
		return 422;
	}
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it)) {
			snprintf(err, errlen, "%s must be an array of strings", what);
			return 400;
		}
		if (!sw_ip_valid(it->valuestring)) {
			snprintf(err, errlen, "%s holds something that is not an IP address", what);
			return 422;
		}
		memcpy(out[i], it->valuestring, strlen(it->valuestring) + 1);
		i++;
	}
	*n = i;
	return 0;
}

void
sw_hostport_format(char *out, size_t size, const char *ip, unsigned port)
{
	if (strchr(ip, ':') != NULL)
		snprintf(out, size, "[%s]:%u", ip, port);
	else
		snprintf(out, size, "%s:%u", ip, port);
}
