/*
 * svc_api: the handler shapes the discovery services share.
 *
 * Each piece brackets the request (sw_svc_req_begin/end) and answers from
 * the stored JSON without parsing it; the service keeps its meaning (which
 * key, which index, what "not found" says, what a record must match) and
 * issues its own store calls with the callbacks below.
 */
#ifndef SW_SVC_API_H
#define SW_SVC_API_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "crypto.h"
#include "store.h"

struct evbuffer;
struct sw_svc;
struct sw_dict;
struct sw_http_req;

/*
 * Answer {"error":msg} with status.  A 5xx also logs one warn line with the
 * service, the route and cause (msg when NULL), through sw_log_limited, so
 * a store outage cannot flood the log.
 */
void sw_api_error(struct sw_http_req *req, int status, const char *msg, const char *cause);

/*
 * Answer a failed store reply and return 1, or return 0 when the reply is
 * usable: 503 "store unavailable" when the store cannot serve now (down,
 * loading, read-only: sw_store_unavailable), else 500 "store error"; the
 * store's own error text is the logged cause.
 */
int sw_svc_store_failed(struct sw_http_req *req, const struct sw_reply *r);
/* A store call could not be made (out of memory, a bad call) or its reply is out of shape: 500. */
void sw_api_store_error(struct sw_http_req *req);
/*
 * Parse the {name} capture as a public key (lowercase hex, not null) into pk
 * and hex (either may be NULL); answers 400 and returns -1 otherwise.
 */
int sw_svc_pk_param(struct sw_http_req *req, const char *name, uint8_t *pk, char *hex);

/* The request body as JSON; NULL when answered (400 malformed JSON).  The caller deletes it. */
cJSON *sw_api_body_json(struct sw_http_req *req);

/*
 * GET one record: begin, then the service's GET with sw_api_get_done as its
 * callback (sw_api_get_fail when it could not be sent).  The answer is the
 * stored string, or 404 notfound when there is none or accept (when not
 * NULL) refuses it.  NULL when answered already.
 */
typedef int sw_api_accept(const char *json, size_t len, const void *arg);
struct sw_api_get;
struct sw_api_get *sw_api_get_begin(struct sw_svc *svc, struct sw_http_req *req,
    const char *notfound, sw_api_accept *accept, const void *accept_arg);
void sw_api_get_done(const struct sw_reply *r, void *arg);
void sw_api_get_fail(struct sw_api_get *g);

/*
 * A list read: the service reads an index (members at reply element 0, see
 * sw_store_index_members) with sw_api_list_index_done as its callback, which
 * MGETs prefix+member on st and answers the records as a JSON array through
 * records (sw_api_list_records_done unless the service sets its own).
 */
struct sw_api_list {
	struct sw_svc *svc;
	struct sw_http_req *req;
	struct sw_store *st;
	const char *prefix;  /* static: records are prefix+member */
	sw_store_cb *records;
	void *data;          /* the service's own; freed with the list */
};

/* NULL when answered already. */
struct sw_api_list *sw_api_list_begin(struct sw_svc *svc, struct sw_http_req *req,
    struct sw_store *st, const char *prefix);
/* Free the list and end its request. */
void sw_api_list_end(struct sw_api_list *l);
/* The index read could not be sent: 500, and end. */
void sw_api_list_fail(struct sw_api_list *l);
void sw_api_list_index_done(const struct sw_reply *r, void *arg);
/*
 * Lists read an index set as ZRANGEBYSCORE key (now +inf (live scores
 * only) and do not trim it: the writes to key do, in their own transaction,
 * which keeps the set bounded by the live members plus one TTL of expired
 * ones.
 */
int sw_api_index_trim(struct sw_store_txn *t, const char *key, long long now);
/* The members of such a read's reply, or NULL when not shaped so. */
const struct sw_reply *sw_api_index_members(const struct sw_reply *r);
/*
 * The members' strings copied and NUL-terminated (a store's reply strings
 * need not be, past their length): one block, free()d whole; NULL on OOM.
 */
char **sw_api_members_copy(const struct sw_reply *m);
void sw_api_list_records_done(const struct sw_reply *r, void *arg);

/*
 * Answer 200 with a JSON array of an MGET reply's strings (nil elements,
 * expired between the index read and the MGET, left out), in order, or of
 * the elements pick[0..npick) when pick is not NULL; 500 when r failed or
 * is not an array.
 */
void sw_api_reply_records(struct sw_http_req *req, const struct sw_reply *r, const size_t *pick,
    size_t npick);

/* Add the members of an index read (sw_store_index_members) to b as a JSON array of strings. */
void sw_api_add_members(struct evbuffer *b, const struct sw_reply *members);

/*
 * The guarded write every discovery service's POST and DELETE is made of:
 *
 *   [lock the key] [check the signature, then authed()] read() the old
 *   record(s) -> decide() -> txn() -> committed()
 *
 * Each step may refuse by answering and returning -1; a store failure at
 * any step is answered by sw_svc_store_failed.  committed() is the one
 * place a service tells its feed what the store now holds, counts, and
 * answers.  w is the service's state of the write; ops->free(w) runs at
 * the end, whatever happened.  read NULL: no read, no decide.
 */
struct sw_api_write_ops {
	const char *auth_prefix; /* httpauth nonce prefix; NULL: the request is not signed */
	int (*authed)(void *w, struct sw_http_req *req, const uint8_t pk[SW_PK_LEN]);
	int (*read)(void *w, sw_store_cb *cb, void *arg);
	int (*decide)(void *w, struct sw_http_req *req, const struct sw_reply *old);
	int (*txn)(void *w, sw_store_cb *cb, void *arg);
	void (*committed)(void *w, struct sw_http_req *req, const struct sw_reply *r);
	void (*free)(void *w);
};

/*
 * Run the write of req.  writing and key (klen bytes) lock one record at a
 * time (409 busy while another write of it runs); writing NULL: no lock.
 */
void sw_api_write(struct sw_svc *svc, struct sw_store *st, struct sw_http_req *req,
    const struct sw_api_write_ops *ops, void *w, struct sw_dict *writing, const char *key,
    size_t klen, const char *busy);

/*
 * One write per key at a time: reading the old record and writing the new
 * one are two store calls, and a second write between them could be lost.
 * Take key in writing and begin the request: 0, or -1 when answered (409
 * busy, 500, or the drain's refusal) and nothing is held.
 */
int sw_api_write_begin(struct sw_svc *svc, struct sw_dict *writing, struct sw_http_req *req,
    const char *key, size_t klen, const char *busy);
/* Release key and end the request. */
void sw_api_write_end(struct sw_svc *svc, struct sw_dict *writing, const char *key, size_t klen);

#endif
