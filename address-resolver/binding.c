/*
 * A binding: parse what a visor declares (its port and local addresses),
 * and encode the stored form and the two answers to a resolve.  The remote
 * address is never taken from the visor: it is what the resolver saw.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address_resolver.h"
#include "json.h"

int
ar_binding_parse_req(const cJSON *o, struct ar_binding *b, char *err, size_t errlen)
{
	const cJSON *port;
	long long v;

	if (!cJSON_IsObject(o)) {
		snprintf(err, errlen, "a binding must be a JSON object");
		return 400;
	}
	port = cJSON_GetObjectItemCaseSensitive(o, "port");
	if (sw_json_int(port, -SW_JSON_INT_LIMIT, SW_JSON_INT_LIMIT, &v) == -1) {
		snprintf(err, errlen, "port must be an integer");
		return 400;
	}
	if (v < 1 || v > 65535) {
		snprintf(err, errlen, "port must be 1-65535");
		return 422;
	}
	b->port = (unsigned)v;
	return sw_ip_list_parse(cJSON_GetObjectItemCaseSensitive(o, "local_addresses"),
	    AR_MAX_LOCAL, b->local, &b->nlocal, "local_addresses", err, errlen);
}

char *
ar_binding_json(const struct ar_binding *b, enum ar_view view)
{
	cJSON *o = cJSON_CreateObject(), *arr;
	char addr[AR_ADDR_TEXT];
	char *out;

	if (o == NULL)
		return NULL;
	sw_hostport_format(addr, sizeof(addr), b->remote_ip, b->remote_port);
	cJSON_AddStringToObject(o, "pk", b->pk_hex);
	cJSON_AddStringToObject(o, "remote_addr", addr);
	cJSON_AddNumberToObject(o, "port", b->port);
	if (view != AR_VIEW_REMOTE) {
		arr = cJSON_AddArrayToObject(o, "local_addresses");
		for (size_t i = 0; arr != NULL && i < b->nlocal; i++)
			cJSON_AddItemToArray(arr, cJSON_CreateString(b->local[i]));
	}
	if (view != AR_VIEW_STORED)
		cJSON_AddBoolToObject(o, "is_local", view == AR_VIEW_LOCAL);
	out = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return out;
}

int
ar_hostport_parse(const char *s, char ip[SW_IP_TEXT], unsigned *port)
{
	const char *colon = strrchr(s, ':');
	const char *h = s;
	size_t hlen;
	char *end;
	unsigned long v;

	if (colon == NULL)
		return -1;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= SW_IP_TEXT || colon[1] == '\0')
		return -1;
	v = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || v > 65535)
		return -1;
	memcpy(ip, h, hlen);
	ip[hlen] = '\0';
	if (!sw_ip_valid(ip))
		return -1;
	*port = (unsigned)v;
	return 0;
}

int
ar_binding_from_stored(const char *json, size_t len, struct ar_binding *b)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	const cJSON *pk, *addr;
	char err[128];
	int ret = -1;

	memset(b, 0, sizeof(*b));
	if (o == NULL)
		return -1;
	pk = cJSON_GetObjectItemCaseSensitive(o, "pk");
	addr = cJSON_GetObjectItemCaseSensitive(o, "remote_addr");
	if (!cJSON_IsString(pk) || sw_pk_parse(b->pk, pk->valuestring) == -1 ||
	    !cJSON_IsString(addr) ||
	    ar_hostport_parse(addr->valuestring, b->remote_ip, &b->remote_port) == -1 ||
	    ar_binding_parse_req(o, b, err, sizeof(err)) != 0)
		goto out;
	sw_hex_encode(b->pk_hex, b->pk, SW_PK_LEN);
	ret = 0;
out:
	cJSON_Delete(o);
	return ret;
}
