/*
 * router_json.c: rules and descriptors as routing.md's JSON, both ways.
 * Everything parsed here came from the network: every field is checked.
 */
#include <stdio.h>
#include <string.h>

#include "router.h"

const char *
vrt_type_str(uint8_t type)
{
	switch (type) {
	case VRT_FORWARD:
		return "forward";
	case VRT_INTERMEDIARY:
		return "intermediary";
	case VRT_CONSUME:
		return "consume";
	default:
		return "reserved";
	}
}

cJSON *
vrt_desc_json(const struct vrt_desc *d)
{
	cJSON *o = cJSON_CreateObject();
	char hex[SW_PK_HEX];

	if (o == NULL)
		return NULL;
	sw_hex_encode(hex, d->src_pk, SW_PK_LEN);
	cJSON_AddStringToObject(o, "src_pk", hex);
	cJSON_AddNumberToObject(o, "src_port", d->src_port);
	sw_hex_encode(hex, d->dst_pk, SW_PK_LEN);
	cJSON_AddStringToObject(o, "dst_pk", hex);
	cJSON_AddNumberToObject(o, "dst_port", d->dst_port);
	return o;
}

static int
json_u32(const cJSON *o, const char *name, uint32_t min, uint32_t max, uint32_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsNumber(v) || v->valuedouble < min || v->valuedouble > max ||
	    v->valuedouble != (double)(uint32_t)v->valuedouble)
		return -1;
	*out = (uint32_t)v->valuedouble;
	return 0;
}

int
vrt_desc_parse(const cJSON *j, struct vrt_desc *d)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "src_pk");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "dst_pk");
	uint32_t sp, dp;

	if (!cJSON_IsObject(j) || !cJSON_IsString(s) || !cJSON_IsString(t) ||
	    sw_pk_parse(d->src_pk, s->valuestring) == -1 ||
	    sw_pk_parse(d->dst_pk, t->valuestring) == -1 ||
	    json_u32(j, "src_port", 0, 65535, &sp) == -1 ||
	    json_u32(j, "dst_port", 0, 65535, &dp) == -1)
		return -1;
	d->src_port = (uint16_t)sp;
	d->dst_port = (uint16_t)dp;
	return 0;
}

cJSON *
vrt_rule_json(const struct vrt_rule *r)
{
	cJSON *o = cJSON_CreateObject();
	char id[TP_ID_TEXT];

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "type", vrt_type_str(r->type));
	cJSON_AddNumberToObject(o, "route_id", r->route_id);
	if (r->type == VRT_INTERMEDIARY || r->type == VRT_CONSUME) {
		tp_id_format(id, r->t_id);
		cJSON_AddStringToObject(o, "t_id", id);
	}
	if (r->type == VRT_FORWARD || r->type == VRT_INTERMEDIARY) {
		cJSON_AddNumberToObject(o, "next_route_id", r->next_route_id);
		tp_id_format(id, r->next_tp);
		cJSON_AddStringToObject(o, "next_tp_id", id);
	}
	if (r->desc != NULL)
		cJSON_AddItemToObject(o, "desc", vrt_desc_json(r->desc));
	cJSON_AddNumberToObject(o, "keep_alive_s", r->keep_alive_s);
	return o;
}

static int
json_tp(const cJSON *o, const char *name, uint8_t out[TP_ID_LEN])
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? tp_id_parse(out, v->valuestring) : -1;
}

int
vrt_rule_parse(const cJSON *j, struct vrt_rule *r, struct vrt_desc *desc, char *err,
    size_t errlen)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "desc");
	uint32_t ka = VRT_KEEPALIVE_DEF;

	memset(r, 0, sizeof(*r));
	if (!cJSON_IsObject(j) || !cJSON_IsString(type))
		goto fail;
	if (strcmp(type->valuestring, "forward") == 0)
		r->type = VRT_FORWARD;
	else if (strcmp(type->valuestring, "intermediary") == 0)
		r->type = VRT_INTERMEDIARY;
	else if (strcmp(type->valuestring, "consume") == 0)
		r->type = VRT_CONSUME;
	else
		goto fail;
	if (json_u32(j, "route_id", 1, UINT32_MAX, &r->route_id) == -1)
		goto fail;
	if (cJSON_GetObjectItemCaseSensitive(j, "keep_alive_s") != NULL &&
	    json_u32(j, "keep_alive_s", 1, VRT_KEEPALIVE_MAX, &ka) == -1)
		goto fail;
	r->keep_alive_s = (uint16_t)ka;
	if (r->type != VRT_FORWARD && json_tp(j, "t_id", r->t_id) == -1)
		goto fail;
	if (r->type != VRT_CONSUME &&
	    (json_u32(j, "next_route_id", 1, UINT32_MAX, &r->next_route_id) == -1 ||
	    json_tp(j, "next_tp_id", r->next_tp) == -1))
		goto fail;
	if (r->type == VRT_INTERMEDIARY) {
		if (d != NULL)
			goto fail; /* an intermediary learns no endpoint */
	} else {
		if (vrt_desc_parse(d, desc) == -1)
			goto fail;
		r->desc = desc;
	}
	return 0;
fail:
	snprintf(err, errlen, "malformed rule");
	return -1;
}

