/*
 * dmsg_entry: parse, check and sign dmsg discovery entries.  The signature is
 * checked over the canonical form of what was parsed (jcs.h), never over the
 * client's bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmsg_entry.h"
#include "jcs.h"

#define JSON_INT_MAX 9007199254740991.0

static int
get_uint(const cJSON *o, const char *key, unsigned long long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	double d;

	if (!cJSON_IsNumber(v))
		return -1;
	d = v->valuedouble;
	if (!(d >= 0 && d <= JSON_INT_MAX) || d != (double)(unsigned long long)d)
		return -1;
	*out = (unsigned long long)d;
	return 0;
}

int
dmsg_entry_addr_ok(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	char *end;
	unsigned long port;

	if (colon == NULL || colon == addr || (size_t)(colon - addr) > 255)
		return 0;
	if (colon[1] < '0' || colon[1] > '9' || strlen(colon + 1) > 5)
		return 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return 0;
	for (const char *p = addr; p < colon; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return 0;
	return 1;
}

int
dmsg_entry_read(const cJSON *obj, struct dmsg_entry *e, char *err, size_t errlen)
{
	const cJSON *v, *client, *server, *list, *s;

	memset(e, 0, sizeof(*e));
	if (!cJSON_IsObject(obj)) {
		snprintf(err, errlen, "entry is not a JSON object");
		return 400;
	}
	v = cJSON_GetObjectItemCaseSensitive(obj, "version");
	if (!cJSON_IsString(v)) {
		snprintf(err, errlen, "entry has no \"version\" string");
		return 400;
	}
	if (strcmp(v->valuestring, DMSG_ENTRY_VERSION) != 0) {
		snprintf(err, errlen, "unsupported entry version");
		return 422;
	}
	if (get_uint(obj, "sequence", &e->sequence) == -1 ||
	    get_uint(obj, "timestamp", &e->timestamp) == -1) {
		snprintf(err, errlen, "\"sequence\" and \"timestamp\" must be integers in [0, 2^53)");
		return 400;
	}
	v = cJSON_GetObjectItemCaseSensitive(obj, "static");
	if (!cJSON_IsString(v) || sw_pk_parse(e->pk, v->valuestring) == -1) {
		snprintf(err, errlen, "\"static\" is not a valid public key");
		return 400;
	}
	client = cJSON_GetObjectItemCaseSensitive(obj, "client");
	server = cJSON_GetObjectItemCaseSensitive(obj, "server");
	if (client != NULL && !cJSON_IsNull(client)) {
		if (!cJSON_IsObject(client)) {
			snprintf(err, errlen, "\"client\" must be an object");
			return 400;
		}
		e->has_client = 1;
		list = cJSON_GetObjectItemCaseSensitive(client, "delegated_servers");
		if (list != NULL && !cJSON_IsNull(list)) {
			if (!cJSON_IsArray(list)) {
				snprintf(err, errlen, "\"delegated_servers\" must be an array");
				return 400;
			}
			if (cJSON_GetArraySize(list) > DMSG_ENTRY_MAX_DELEGATED) {
				snprintf(err, errlen, "more than %d delegated servers",
				    DMSG_ENTRY_MAX_DELEGATED);
				return 422;
			}
			cJSON_ArrayForEach(s, list)
			{
				uint8_t *pk = e->delegated[e->ndelegated];

				if (!cJSON_IsString(s) || sw_pk_parse(pk, s->valuestring) == -1) {
					snprintf(err, errlen,
					    "a delegated server is not a valid public key");
					return 400;
				}
				/* A repeated server is one server. */
				int dup = 0;
				for (size_t k = 0; k < e->ndelegated; k++)
					dup |= memcmp(e->delegated[k], pk, SW_PK_LEN) == 0;
				if (!dup)
					e->ndelegated++;
			}
		}
	}
	if (server != NULL && !cJSON_IsNull(server)) {
		if (!cJSON_IsObject(server)) {
			snprintf(err, errlen, "\"server\" must be an object");
			return 400;
		}
		e->has_server = 1;
		v = cJSON_GetObjectItemCaseSensitive(server, "address");
		if (!cJSON_IsString(v)) {
			snprintf(err, errlen, "server entry has no \"address\" string");
			return 400;
		}
		if (strlen(v->valuestring) > DMSG_ENTRY_MAX_ADDR ||
		    !dmsg_entry_addr_ok(v->valuestring)) {
			snprintf(err, errlen, "server address must be host:port, port 1-65535");
			return 422;
		}
		memcpy(e->address, v->valuestring, strlen(v->valuestring) + 1);
		if (get_uint(server, "availableSessions", &e->available_sessions) == -1) {
			snprintf(err, errlen, "\"availableSessions\" must be a non-negative integer");
			return 400;
		}
	}
	if (!e->has_client && !e->has_server) {
		snprintf(err, errlen, "entry has neither \"client\" nor \"server\"");
		return 422;
	}
	return 0;
}

int
dmsg_entry_parse(const cJSON *obj, struct dmsg_entry *e, char *err, size_t errlen)
{
	const cJSON *v;
	int rc = dmsg_entry_read(obj, e, err, errlen);

	if (rc != 0)
		return rc;
	v = cJSON_GetObjectItemCaseSensitive(obj, "signature");
	if (!cJSON_IsString(v)) {
		snprintf(err, errlen, "entry is not signed");
		return 401;
	}
	if (sw_signed_verify(obj, e->pk) == -1) {
		snprintf(err, errlen, "bad entry signature");
		return 401;
	}
	return 0;
}

cJSON *
dmsg_entry_to_json(const struct dmsg_entry *e, const struct sw_keypair *kp)
{
	cJSON *o = cJSON_CreateObject(), *sub, *list;
	char hex[SW_PK_HEX];

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "version", DMSG_ENTRY_VERSION);
	cJSON_AddNumberToObject(o, "sequence", (double)e->sequence);
	cJSON_AddNumberToObject(o, "timestamp", (double)e->timestamp);
	sw_hex_encode(hex, e->pk, SW_PK_LEN);
	cJSON_AddStringToObject(o, "static", hex);
	if (e->has_client) {
		sub = cJSON_AddObjectToObject(o, "client");
		list = cJSON_AddArrayToObject(sub, "delegated_servers");
		for (size_t i = 0; i < e->ndelegated; i++) {
			sw_hex_encode(hex, e->delegated[i], SW_PK_LEN);
			cJSON_AddItemToArray(list, cJSON_CreateString(hex));
		}
	}
	if (e->has_server) {
		sub = cJSON_AddObjectToObject(o, "server");
		cJSON_AddStringToObject(sub, "address", e->address);
		cJSON_AddNumberToObject(sub, "availableSessions", (double)e->available_sessions);
	}
	if (sw_signed_sign(o, kp) == -1) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}
