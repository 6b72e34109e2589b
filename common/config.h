/*
 * config: JSON configuration with environment and flag overrides, in the
 * order file < SKYWIRE_<KEY> env < --key flag (framework.md).
 *
 * Each service type declares its keys in a table; the table is the whole
 * truth about a service's configuration: it drives validation (an unknown
 * key is an error naming the key and the file), defaults, env and flag
 * names, and --help.  A config is kept as a cJSON object so services read it
 * with the small typed getters below.
 */
#ifndef SW_CONFIG_H
#define SW_CONFIG_H

#include <stddef.h>
#include <cjson/cJSON.h>

enum sw_cfg_type {
	SW_CFG_STR,
	SW_CFG_INT,  /* integer in [0, 2^53) */
	SW_CFG_BOOL,
	SW_CFG_LIST, /* array of strings; "a,b,c" in env and flags */
	SW_CFG_OBJ,  /* any JSON value; JSON text in env and flags */
};

struct sw_cfg_key {
	const char *name; /* "entry_timeout_s" -> --entry-timeout-s, SKYWIRE_ENTRY_TIMEOUT_S */
	enum sw_cfg_type type;
	const char *def;  /* default as it would be written in a flag, or NULL */
	const char *help;
};

/* Parse a JSON file into an object. NULL with err filled. */
cJSON *sw_cfg_load_file(const char *path, char *err, size_t errlen);

/*
 * Check every member of obj is a known key of the right type, not counting
 * the names in extra (NULL-terminated, may be NULL).  where names the file
 * and instance in the error ("deployment.json, service dmsg-discovery").
 */
int sw_cfg_check(const cJSON *obj, const struct sw_cfg_key *keys, const char *const *extra,
    const char *where, char *err, size_t errlen);

/* Set key from a text value (env or flag), converted by its declared type. */
int sw_cfg_set_text(cJSON *obj, const struct sw_cfg_key *key, const char *text, char *err,
    size_t errlen);

/* Apply SKYWIRE_<KEY> for every key of the table that is set in the environment. */
int sw_cfg_apply_env(cJSON *obj, const struct sw_cfg_key *keys, char *err, size_t errlen);

/* Fill absent keys from their defaults. */
int sw_cfg_apply_defaults(cJSON *obj, const struct sw_cfg_key *keys, char *err, size_t errlen);

/* The key for a flag ("--entry-timeout-s" or "entry-timeout-s"); NULL if none. */
const struct sw_cfg_key *sw_cfg_key_for_flag(const struct sw_cfg_key *keys, const char *flag);
void sw_cfg_env_name(char *out, size_t size, const char *key);

/* Getters: NULL / def when absent or of another type.  sw_cfg_str treats "" as absent. */
const char *sw_cfg_str(const cJSON *obj, const char *key);
long long sw_cfg_int(const cJSON *obj, const char *key, long long def);
int sw_cfg_bool(const cJSON *obj, const char *key, int def);

/* Print a key table as --help lines. */
void sw_cfg_usage(const struct sw_cfg_key *keys, void *fp);

#endif
