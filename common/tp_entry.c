/*
 * tp_entry: transport entries, their derived ids and their stored JSON
 * (tp_entry.h).  Everything here is pure: no store, no clock.
 */
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "json.h"
#include "tp_entry.h"

static const char *const tp_types[] = {"dmsg", "stcpr", "sudph", NULL};
static const char *const tp_labels[] = {"user", "automatic", "skycoin", NULL};

static int
in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

int
tp_type_valid(const char *type)
{
	return in_list(tp_types, type);
}

int
tp_label_valid(const char *label)
{
	return in_list(tp_labels, label);
}

void
tp_id_derive(uint8_t out[TP_ID_LEN], const uint8_t a[SW_PK_LEN], const uint8_t b[SW_PK_LEN],
    const char *type)
{
	uint8_t msg[2 * SW_PK_LEN + TP_TYPE_MAX], h[SW_HASH_LEN];
	size_t tlen = strnlen(type, TP_TYPE_MAX - 1);
	int swap = memcmp(a, b, SW_PK_LEN) > 0;

	memcpy(msg, swap ? b : a, SW_PK_LEN);
	memcpy(msg + SW_PK_LEN, swap ? a : b, SW_PK_LEN);
	memcpy(msg + 2 * SW_PK_LEN, type, tlen);
	sw_hash(h, msg, 2 * SW_PK_LEN + tlen);
	memcpy(out, h, TP_ID_LEN);
	/* RFC 9562 custom UUID: version 8, variant 10. */
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x80);
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

void
tp_id_format(char out[TP_ID_TEXT], const uint8_t id[TP_ID_LEN])
{
	static const size_t groups[5] = {4, 2, 2, 2, 6};
	size_t o = 0, i = 0;

	for (size_t g = 0; g < 5; g++) {
		if (g > 0)
			out[o++] = '-';
		sw_hex_encode(out + o, id + i, groups[g]);
		o += 2 * groups[g];
		i += groups[g];
	}
	out[o] = '\0';
}

int
tp_id_parse(uint8_t id[TP_ID_LEN], const char *text)
{
	char hex[2 * TP_ID_LEN + 1];
	uint8_t tmp[TP_ID_LEN];
	size_t h = 0;

	if (strnlen(text, TP_ID_TEXT) != TP_ID_TEXT - 1)
		return -1;
	for (size_t i = 0; i < TP_ID_TEXT - 1; i++) {
		char c = text[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return -1;
			continue;
		}
		/* One spelling per id, as for keys: lowercase only. */
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
		hex[h++] = c;
	}
	hex[h] = '\0';
	if (sw_hex_decode(tmp, TP_ID_LEN, hex) == -1)
		return -1;
	memcpy(id, tmp, TP_ID_LEN);
	return 0;
}

static int
fail(char *err, size_t errlen, int status, const char *msg)
{
	snprintf(err, errlen, "%s", msg);
	return status;
}

/* A string member no longer than max-1 bytes; 400 when absent or not a string. */
static int
str_member(const cJSON *o, const char *name, char *out, size_t max, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		snprintf(err, errlen, "%s must be a string", name);
		return 400;
	}
	if (strlen(v->valuestring) >= max) {
		snprintf(err, errlen, "unknown %s", name);
		return 422;
	}
	memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
	return 0;
}

static int
parse(const cJSON *o, struct tp_entry *e, int trusted, char *err, size_t errlen)
{
	const cJSON *edges, *tid, *reg;
	uint8_t derived[TP_ID_LEN];
	char want[TP_ID_TEXT];
	int rc, cmp;

	memset(e, 0, sizeof(*e));
	if (!cJSON_IsObject(o))
		return fail(err, errlen, 400, "an entry must be an object");
	tid = cJSON_GetObjectItemCaseSensitive(o, "t_id");
	if (!cJSON_IsString(tid) || tid->valuestring == NULL)
		return fail(err, errlen, 400, "t_id must be a string");
	edges = cJSON_GetObjectItemCaseSensitive(o, "edges");
	if (!cJSON_IsArray(edges) || cJSON_GetArraySize(edges) != 2)
		return fail(err, errlen, 400, "edges must be an array of two public keys");
	for (int i = 0; i < 2; i++) {
		const cJSON *pk = cJSON_GetArrayItem(edges, i);

		if (!cJSON_IsString(pk) || pk->valuestring == NULL ||
		    sw_pk_parse(e->edges[i], pk->valuestring) == -1)
			return fail(err, errlen, 400, "edges must be lowercase hex public keys");
	}
	if ((rc = str_member(o, "type", e->type, sizeof(e->type), err, errlen)) != 0)
		return rc;
	if ((rc = str_member(o, "label", e->label, sizeof(e->label), err, errlen)) != 0)
		return rc;
	if (!tp_type_valid(e->type))
		return fail(err, errlen, 422, "type must be dmsg, stcpr or sudph");
	if (!tp_label_valid(e->label))
		return fail(err, errlen, 422, "label must be user, automatic or skycoin");
	cmp = memcmp(e->edges[0], e->edges[1], SW_PK_LEN);
	if (cmp == 0)
		return fail(err, errlen, 422, "a transport needs two different edges");
	if (cmp > 0) {
		uint8_t t[SW_PK_LEN];

		memcpy(t, e->edges[0], SW_PK_LEN);
		memcpy(e->edges[0], e->edges[1], SW_PK_LEN);
		memcpy(e->edges[1], t, SW_PK_LEN);
	}
	if (trusted) {
		if (tp_id_parse(e->t_id, tid->valuestring) == -1)
			return fail(err, errlen, 400, "t_id is not a lowercase UUID");
	} else {
		tp_id_derive(derived, e->edges[0], e->edges[1], e->type);
		tp_id_format(want, derived);
		if (strcmp(want, tid->valuestring) != 0) {
			snprintf(err, errlen, "t_id does not match its edges and type (want %s)",
			    want);
			return 422;
		}
		memcpy(e->t_id, derived, TP_ID_LEN);
	}
	reg = cJSON_GetObjectItemCaseSensitive(o, "registered");
	(void)sw_json_int(reg, 0, SW_JSON_INT_LIMIT, &e->registered);
	return 0;
}

int
tp_entry_parse(const cJSON *o, struct tp_entry *e, char *err, size_t errlen)
{
	return parse(o, e, 0, err, errlen);
}

int
tp_entry_parse_stored(const char *json, size_t len, struct tp_entry *e)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	char err[128];
	int rc;

	if (o == NULL)
		return -1;
	rc = parse(o, e, 1, err, sizeof(err));
	cJSON_Delete(o);
	return rc == 0 ? 0 : -1;
}

size_t
tp_entry_json(const struct tp_entry *e, char out[TP_JSON_MAX])
{
	char id[TP_ID_TEXT], lo[SW_PK_HEX], hi[SW_PK_HEX];
	int n;

	tp_id_format(id, e->t_id);
	sw_hex_encode(lo, e->edges[0], SW_PK_LEN);
	sw_hex_encode(hi, e->edges[1], SW_PK_LEN);
	n = snprintf(out, TP_JSON_MAX,
	    "{\"t_id\":\"%s\",\"edges\":[\"%s\",\"%s\"],\"type\":\"%s\",\"label\":\"%s\","
	    "\"registered\":%lld}",
	    id, lo, hi, e->type, e->label, e->registered);
	return n < 0 ? 0 : (size_t)n;
}

int
tp_entry_same(const struct tp_entry *a, const struct tp_entry *b)
{
	return memcmp(a->t_id, b->t_id, TP_ID_LEN) == 0 &&
	    memcmp(a->edges, b->edges, sizeof(a->edges)) == 0 && strcmp(a->type, b->type) == 0;
}

int
tp_entry_has_edge(const struct tp_entry *e, const uint8_t pk[SW_PK_LEN])
{
	return memcmp(e->edges[0], pk, SW_PK_LEN) == 0 || memcmp(e->edges[1], pk, SW_PK_LEN) == 0;
}
