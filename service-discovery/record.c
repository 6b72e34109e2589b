/*
 * A service record: parse and check what a visor posts, and encode the form
 * we store and serve.  The stored form is rebuilt from the parsed fields
 * (unknown members dropped, "proxy" written as "skysocks", the country upper
 * case), so every reader sees one spelling and the indexes agree with it.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "service_discovery.h"

static const char *const type_names[SD_NTYPES] = {"visor", "vpn", "skysocks"};

int
sd_type_parse(const char *s, enum sd_type *t)
{
	if (s == NULL)
		return -1;
	for (int i = 0; i < SD_NTYPES; i++)
		if (strcmp(s, type_names[i]) == 0) {
			*t = (enum sd_type)i;
			return 0;
		}
	if (strcmp(s, "proxy") == 0) {
		*t = SD_SKYSOCKS;
		return 0;
	}
	return -1;
}

const char *
sd_type_name(enum sd_type t)
{
	return type_names[t];
}

int
sd_addr_parse(const char *s, uint8_t pk[SW_PK_LEN], unsigned *port)
{
	char hex[SW_PK_HEX];
	const char *p;
	unsigned long v = 0;
	size_t n;

	if (s == NULL || strlen(s) < 2 * SW_PK_LEN + 2 || s[2 * SW_PK_LEN] != ':')
		return 400;
	memcpy(hex, s, 2 * SW_PK_LEN);
	hex[2 * SW_PK_LEN] = '\0';
	if (sw_pk_parse(pk, hex) == -1)
		return 400;
	p = s + 2 * SW_PK_LEN + 1;
	n = strlen(p);
	/* Plain decimal, no sign, no leading zeros: one address, one spelling. */
	if (n == 0 || strspn(p, "0123456789") != n || (p[0] == '0' && n > 1))
		return 400;
	if (n > 5)
		return 422;
	for (; *p != '\0'; p++)
		v = v * 10 + (unsigned long)(*p - '0');
	if (v > 65535)
		return 422;
	*port = (unsigned)v;
	return 0;
}

int
sd_version_valid(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > SD_MAX_VERSION)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr(".+_-", s[i]) == NULL)
			return 0;
	return 1;
}

int
sd_country_parse(const char *s, char out[3])
{
	if (s == NULL || strlen(s) != 2 || !isalpha((unsigned char)s[0]) ||
	    !isalpha((unsigned char)s[1]) || (unsigned char)s[0] > 127 ||
	    (unsigned char)s[1] > 127)
		return -1;
	out[0] = (char)toupper((unsigned char)s[0]);
	out[1] = (char)toupper((unsigned char)s[1]);
	out[2] = '\0';
	return 0;
}

/* Fill err and return the status, so a check reads "return fail(…)". */
static int SW_PRINTF(4, 5)
fail(char *err, size_t errlen, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return status;
}

static int
parse_geo(const cJSON *geo, struct sd_service *s, char *err, size_t errlen)
{
	const cJSON *cc, *region;

	if (geo == NULL || cJSON_IsNull(geo))
		return 0;
	if (!cJSON_IsObject(geo))
		return fail(err, errlen, 400, "geo must be an object");
	s->has_geo = 1;
	cc = cJSON_GetObjectItemCaseSensitive(geo, "country");
	region = cJSON_GetObjectItemCaseSensitive(geo, "region");
	if (cc != NULL && !cJSON_IsNull(cc)) {
		if (!cJSON_IsString(cc))
			return fail(err, errlen, 400,
			    "geo.country must be a string");
		if (cc->valuestring[0] != '\0' && sd_country_parse(cc->valuestring, s->country) == -1)
			return fail(err, errlen, 422,
			    "geo.country must be a two-letter country code");
	}
	if (region != NULL && !cJSON_IsNull(region)) {
		if (!cJSON_IsString(region))
			return fail(err, errlen, 400, "geo.region must be a string");
		if (strlen(region->valuestring) > SD_MAX_REGION)
			return fail(err, errlen, 422, "geo.region is longer than %d bytes",
			    SD_MAX_REGION);
		memcpy(s->region, region->valuestring, strlen(region->valuestring) + 1);
	}
	return 0;
}

int
sd_service_parse(const cJSON *o, struct sd_service *s, char *err, size_t errlen)
{
	const cJSON *addr, *type, *ver, *ips, *disp, *reg;
	int rc;

	memset(s, 0, sizeof(*s));
	if (!cJSON_IsObject(o))
		return fail(err, errlen, 400, "a service must be a JSON object");
	addr = cJSON_GetObjectItemCaseSensitive(o, "address");
	type = cJSON_GetObjectItemCaseSensitive(o, "type");
	ver = cJSON_GetObjectItemCaseSensitive(o, "version");
	ips = cJSON_GetObjectItemCaseSensitive(o, "local_ips");
	disp = cJSON_GetObjectItemCaseSensitive(o, "display_node_ip");
	reg = cJSON_GetObjectItemCaseSensitive(o, "registered");
	if (!cJSON_IsString(addr))
		return fail(err, errlen, 400, "address must be a string \"<pk>:<port>\"");
	rc = sd_addr_parse(addr->valuestring, s->pk, &s->port);
	if (rc != 0)
		return fail(err, errlen, rc, "%s", rc == 400 ?
		    "address must be \"<pk>:<port>\" with a lowercase hex key" :
		    "address port must be 0-65535");
	sw_hex_encode(s->pk_hex, s->pk, SW_PK_LEN);
	if (!cJSON_IsString(type))
		return fail(err, errlen, 400, "type must be a string");
	if (sd_type_parse(type->valuestring, &s->type) == -1)
		return fail(err, errlen, 422, "type must be visor, vpn, skysocks or proxy");
	if (ver != NULL && !cJSON_IsNull(ver)) {
		if (!cJSON_IsString(ver))
			return fail(err, errlen, 400, "version must be a string");
		if (ver->valuestring[0] != '\0' && !sd_version_valid(ver->valuestring))
			return fail(err, errlen, 422,
			    "version must be at most %d bytes of [0-9A-Za-z.+_-]",
			    SD_MAX_VERSION);
		memcpy(s->version, ver->valuestring, strlen(ver->valuestring) + 1);
	}
	rc = parse_geo(cJSON_GetObjectItemCaseSensitive(o, "geo"), s, err, errlen);
	if (rc != 0)
		return rc;
	rc = sw_ip_list_parse(ips, SD_MAX_LOCAL_IPS, s->local_ips, &s->nlocal, "local_ips", err,
	    errlen);
	if (rc != 0)
		return rc;
	if (disp != NULL && !cJSON_IsNull(disp)) {
		if (!cJSON_IsBool(disp))
			return fail(err, errlen, 400, "display_node_ip must be a boolean");
		s->display_node_ip = cJSON_IsTrue(disp);
	}
	/* Only read back from our own records; a poster's value is replaced. */
	(void)sw_json_int(reg, 0, SW_JSON_INT_LIMIT, &s->registered);
	return 0;
}

char *
sd_service_json(const struct sd_service *s)
{
	cJSON *o = cJSON_CreateObject(), *geo, *ips;
	char addr[SD_ADDR_TEXT];
	char *out = NULL;

	if (o == NULL)
		return NULL;
	snprintf(addr, sizeof(addr), "%s:%u", s->pk_hex, s->port);
	cJSON_AddStringToObject(o, "address", addr);
	cJSON_AddStringToObject(o, "type", sd_type_name(s->type));
	cJSON_AddStringToObject(o, "version", s->version);
	if (s->has_geo) {
		geo = cJSON_AddObjectToObject(o, "geo");
		if (geo != NULL) {
			cJSON_AddStringToObject(geo, "country", s->country);
			cJSON_AddStringToObject(geo, "region", s->region);
		}
	}
	ips = cJSON_AddArrayToObject(o, "local_ips");
	for (size_t i = 0; ips != NULL && i < s->nlocal; i++)
		cJSON_AddItemToArray(ips, cJSON_CreateString(s->local_ips[i]));
	cJSON_AddBoolToObject(o, "display_node_ip", s->display_node_ip);
	cJSON_AddNumberToObject(o, "registered", (double)s->registered);
	out = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return out;
}

int
sd_service_from_stored(const char *json, size_t len, struct sd_service *s)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	char err[128];
	int rc;

	if (o == NULL)
		return -1;
	rc = sd_service_parse(o, s, err, sizeof(err));
	cJSON_Delete(o);
	return rc == 0 ? 0 : -1;
}

/* Whether a stored record is the service at addr ("<pk>:<port>", canonical). */
int
sd_stored_has_addr(const char *json, size_t len, const char *addr)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "address");
	int same = cJSON_IsString(a) && strcmp(a->valuestring, addr) == 0;

	cJSON_Delete(o);
	return same;
}
