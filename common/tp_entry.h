/*
 * tp_entry: transport entries (services.md, transport-discovery), shared by
 * transport-discovery (which stores them), route-finder (which reads them
 * back from the same store) and the visor (which registers them).
 *
 * The one idea: a transport's identity is derived, not chosen.  t_id is the
 * UUID made of the first 16 bytes of BLAKE2b-256(edge_lo ‖ edge_hi ‖ type)
 * with version nibble 8 and variant 10, so two parties that agree on the
 * edges and the type agree on the id, and a server can refuse a forged one.
 *
 * The store layout of transport-discovery is declared here as well, because
 * route-finder reads it: it is a contract between the two services, like a
 * wire format.
 */
#ifndef SW_TP_ENTRY_H
#define SW_TP_ENTRY_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "crypto.h"

#define TP_ID_LEN     16
#define TP_ID_TEXT    37  /* 8-4-4-4-12 and NUL */
#define TP_TYPE_MAX   8   /* longest type name and NUL */
#define TP_LABEL_MAX  10
/* The stored JSON of one entry is always shorter than this. */
#define TP_JSON_MAX   320

/* transport-discovery's keys, read by route-finder too. */
#include "transport-discovery/td_schema.h"

struct tp_entry {
	uint8_t t_id[TP_ID_LEN];
	uint8_t edges[2][SW_PK_LEN]; /* edges[0] < edges[1] bytewise */
	char type[TP_TYPE_MAX];      /* "dmsg", "stcpr", "sudph" */
	char label[TP_LABEL_MAX];    /* "user", "automatic", "skycoin" */
	long long registered;        /* Unix s; 0 when not (yet) registered */
};

/* The t_id of a transport; lo and hi in either order (they are sorted first). */
void tp_id_derive(uint8_t out[TP_ID_LEN], const uint8_t a[SW_PK_LEN],
    const uint8_t b[SW_PK_LEN], const char *type);
void tp_id_format(char out[TP_ID_TEXT], const uint8_t id[TP_ID_LEN]);
/* Exactly the lowercase 8-4-4-4-12 form; -1 otherwise (id untouched). */
int tp_id_parse(uint8_t id[TP_ID_LEN], const char *text);

/* 1 if known ("dmsg", "stcpr", "sudph"; labels "user", "automatic", "skycoin"). */
int tp_type_valid(const char *type);
int tp_label_valid(const char *label);

/*
 * Parse and check one posted or stored entry.  Returns 0, or the HTTP status
 * with err filled: 400 when malformed (not an object, a member missing or of
 * the wrong type, a key that is not lowercase hex), 422 when well-formed but
 * invalid (unknown type or label, both edges the same key, a t_id that does
 * not match the one derived).  Edges may come in either order; e has them
 * sorted.  "registered" is read when present (a stored entry), other members
 * are ignored.
 */
int tp_entry_parse(const cJSON *o, struct tp_entry *e, char *err, size_t errlen);
/*
 * A stored record (JSON text): the same checks, except that t_id is read as
 * written (a lowercase UUID) rather than derived, so a reader can see a
 * record that disagrees with what it would derive.  0 or -1.
 */
int tp_entry_parse_stored(const char *json, size_t len, struct tp_entry *e);

/*
 * The stored and served form, members in the spec's order:
 * {"t_id":…,"edges":[lo,hi],"type":…,"label":…,"registered":N}.
 * Returns the length written (always < TP_JSON_MAX).
 */
size_t tp_entry_json(const struct tp_entry *e, char out[TP_JSON_MAX]);

/* 1 if a and b are the same transport (id, edges and type). */
int tp_entry_same(const struct tp_entry *a, const struct tp_entry *b);
/* 1 if pk is one of e's edges. */
int tp_entry_has_edge(const struct tp_entry *e, const uint8_t pk[SW_PK_LEN]);

#endif
