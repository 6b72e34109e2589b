/*
 * metrics: counters, gauges and histograms in the Prometheus text format.
 *
 * The one idea: a family owns a small chained hash table of its series, keyed
 * by the label values, so bumping a series costs one hash over a few short
 * strings and a compare, never a scan or an allocation once the series
 * exists.  Series also sit on a list in creation order, which is the order
 * they are rendered in, so the output is deterministic.
 *
 * Histograms keep per-bucket (not cumulative) counts; rendering accumulates
 * them, so an observation touches one slot.  A family caps its number of
 * series (SW_METRIC_MAX_SERIES): label values are sometimes derived from
 * requests, and a peer must not be able to grow our memory without bound.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "log.h"
#include "metrics.h"

#define SW_METRIC_MAX_LABELS 8
#define SW_METRIC_MAX_SERIES 10000
#define SW_METRIC_INIT_SLOTS 16

static const double default_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1, 2.5, 5, 10};

struct series {
	struct series *hnext; /* hash chain */
	struct series *next;  /* creation order */
	uint64_t hash;
	double value;         /* counter, gauge; histogram sum */
	uint64_t count;       /* histogram observations */
	uint64_t *buckets;    /* histogram: nbuckets slots (not cumulative) */
	char *values[];       /* nlabels strings */
};

struct sw_metric {
	struct sw_metrics *reg;
	struct sw_metric *next; /* registration order */
	char *name;
	char *help;
	enum sw_metric_type type;
	size_t nlabels;
	char *labels[SW_METRIC_MAX_LABELS];
	double *bounds;
	size_t nbounds;
	struct series **slots;
	size_t nslots;
	size_t nseries;
	struct series *first, *last;
	int capped; /* cap reached and logged */
};

struct sw_metrics {
	char *service;
	struct sw_metric *first, *last;
};

struct sw_metrics *
sw_metrics_new(const char *service)
{
	struct sw_metrics *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	if ((m->service = strdup(service != NULL ? service : "")) == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

static void
series_free(struct sw_metric *f, struct series *s)
{
	for (size_t i = 0; i < f->nlabels; i++)
		free(s->values[i]);
	free(s->buckets);
	free(s);
}

static void
family_free(struct sw_metric *f)
{
	struct series *s, *next;

	for (s = f->first; s != NULL; s = next) {
		next = s->next;
		series_free(f, s);
	}
	for (size_t i = 0; i < f->nlabels; i++)
		free(f->labels[i]);
	free(f->slots);
	free(f->bounds);
	free(f->name);
	free(f->help);
	free(f);
}

void
sw_metrics_free(struct sw_metrics *m)
{
	struct sw_metric *f, *next;

	if (m == NULL)
		return;
	for (f = m->first; f != NULL; f = next) {
		next = f->next;
		family_free(f);
	}
	free(m->service);
	free(m);
}

static int
valid_name(const char *s, int colon)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (size_t i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		    (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return 0;
	}
	return 1;
}

static struct sw_metric *
family_find(const struct sw_metrics *m, const char *name)
{
	for (struct sw_metric *f = m->first; f != NULL; f = f->next)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

/* Does an existing family match a repeated registration? */
static int
family_same(const struct sw_metric *f, enum sw_metric_type type, const char *const *labels)
{
	size_t n = 0;

	if (f->type != type)
		return 0;
	for (; labels != NULL && labels[n] != NULL; n++)
		if (n >= f->nlabels || strcmp(f->labels[n], labels[n]) != 0)
			return 0;
	return n == f->nlabels;
}

static struct series *series_get(struct sw_metric *f, const char *const *values);

struct sw_metric *
sw_metric_new(struct sw_metrics *m, const char *name, const char *help,
    enum sw_metric_type type, const char *const *labels, const double *buckets,
    size_t nbuckets)
{
	struct sw_metric *f;

	if (m == NULL || !valid_name(name, 1))
		return NULL;
	if ((f = family_find(m, name)) != NULL) {
		if (family_same(f, type, labels))
			return f;
		sw_log_error(m->service, "metric registered twice with another shape",
		    "name=%s", name);
		return NULL;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->reg = m;
	f->type = type;
	if ((f->name = strdup(name)) == NULL || (f->help = strdup(help ? help : "")) == NULL)
		goto fail;
	for (; labels != NULL && labels[f->nlabels] != NULL; f->nlabels++) {
		const char *l = labels[f->nlabels];

		/* service is ours to add; le belongs to histogram buckets. */
		if (f->nlabels == SW_METRIC_MAX_LABELS || !valid_name(l, 0) ||
		    strcmp(l, "service") == 0 || (type == SW_HISTOGRAM && strcmp(l, "le") == 0) ||
		    strncmp(l, "__", 2) == 0)
			goto fail;
		if ((f->labels[f->nlabels] = strdup(l)) == NULL)
			goto fail;
	}
	if (type == SW_HISTOGRAM) {
		if (buckets == NULL || nbuckets == 0) {
			buckets = default_buckets;
			nbuckets = sizeof(default_buckets) / sizeof(default_buckets[0]);
		}
		for (size_t i = 0; i < nbuckets; i++)
			if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
				goto fail;
		if ((f->bounds = malloc(nbuckets * sizeof(double))) == NULL)
			goto fail;
		memcpy(f->bounds, buckets, nbuckets * sizeof(double));
		f->nbounds = nbuckets;
	}
	f->nslots = SW_METRIC_INIT_SLOTS;
	if ((f->slots = calloc(f->nslots, sizeof(*f->slots))) == NULL)
		goto fail;
	/* A label-less family has exactly one series: show it from the start. */
	if (f->nlabels == 0 && series_get(f, NULL) == NULL)
		goto fail;
	if (m->last != NULL)
		m->last->next = f;
	else
		m->first = f;
	m->last = f;
	return f;
fail:
	sw_log_error(m->service, "metric registration failed", "name=%s", name);
	family_free(f);
	return NULL;
}

/* FNV-1a over the values, with a separator no label value can fake. */
static uint64_t
values_hash(const struct sw_metric *f, const char *const *values)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < f->nlabels; i++) {
		for (const unsigned char *p = (const unsigned char *)values[i]; *p != '\0'; p++)
			h = (h ^ *p) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL;
	}
	return h;
}

static int
series_grow(struct sw_metric *f)
{
	size_t n = f->nslots * 2;
	struct series **slots;

	if ((slots = calloc(n, sizeof(*slots))) == NULL)
		return -1;
	for (struct series *s = f->first; s != NULL; s = s->next) {
		size_t i = (size_t)(s->hash & (n - 1));

		s->hnext = slots[i];
		slots[i] = s;
	}
	free(f->slots);
	f->slots = slots;
	f->nslots = n;
	return 0;
}

static struct series *
series_new(struct sw_metric *f, const char *const *values, uint64_t h)
{
	struct series *s;
	size_t i;

	if (f->nseries >= SW_METRIC_MAX_SERIES) {
		if (!f->capped)
			sw_log_warn(f->reg->service, "metric series limit reached, dropping",
			    "name=%s limit=%d", f->name, SW_METRIC_MAX_SERIES);
		f->capped = 1;
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s) + f->nlabels * sizeof(char *))) == NULL)
		return NULL;
	s->hash = h;
	for (i = 0; i < f->nlabels; i++)
		if ((s->values[i] = strdup(values[i])) == NULL)
			goto fail;
	if (f->type == SW_HISTOGRAM &&
	    (s->buckets = calloc(f->nbounds, sizeof(*s->buckets))) == NULL)
		goto fail;
	if (f->nseries >= f->nslots && series_grow(f) == -1)
		goto fail;
	i = (size_t)(h & (f->nslots - 1));
	s->hnext = f->slots[i];
	f->slots[i] = s;
	if (f->last != NULL)
		f->last->next = s;
	else
		f->first = s;
	f->last = s;
	f->nseries++;
	return s;
fail:
	series_free(f, s);
	return NULL;
}

static struct series *
series_get(struct sw_metric *f, const char *const *values)
{
	/* Missing values read as empty strings, as Prometheus treats them. */
	static const char *const empty[SW_METRIC_MAX_LABELS] = {"", "", "", "", "", "", "", ""};
	uint64_t h;
	struct series *s;

	if (values == NULL)
		values = empty;
	for (size_t i = 0; i < f->nlabels; i++)
		if (values[i] == NULL)
			return NULL;
	h = values_hash(f, values);
	for (s = f->slots[h & (f->nslots - 1)]; s != NULL; s = s->hnext) {
		size_t i;

		if (s->hash != h)
			continue;
		for (i = 0; i < f->nlabels; i++)
			if (strcmp(s->values[i], values[i]) != 0)
				break;
		if (i == f->nlabels)
			return s;
	}
	return series_new(f, values, h);
}

void
sw_metric_add(struct sw_metric *f, const char *const *values, double v)
{
	struct series *s;

	/* Counters only go up; a negative add is a caller bug, not data. */
	if (f == NULL || f->type == SW_HISTOGRAM || (f->type == SW_COUNTER && !(v >= 0)))
		return;
	if ((s = series_get(f, values)) != NULL)
		s->value += v;
}

void
sw_metric_set(struct sw_metric *f, const char *const *values, double v)
{
	struct series *s;

	if (f == NULL || f->type != SW_GAUGE)
		return;
	if ((s = series_get(f, values)) != NULL)
		s->value = v;
}

void
sw_metric_observe(struct sw_metric *f, const char *const *values, double v)
{
	struct series *s;
	size_t lo = 0, hi;

	if (f == NULL || f->type != SW_HISTOGRAM || isnan(v))
		return;
	if ((s = series_get(f, values)) == NULL)
		return;
	/* First bound >= v; past the last one only +Inf (count) holds it. */
	hi = f->nbounds;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (f->bounds[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < f->nbounds)
		s->buckets[lo]++;
	s->count++;
	s->value += v;
}

/* Shortest text that reads back as the same double; Prometheus spellings for the rest. */
static void
fmt_double(char *buf, size_t size, double v)
{
	if (isnan(v)) {
		snprintf(buf, size, "NaN");
	} else if (isinf(v)) {
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
	} else {
		for (int prec = 6; prec <= 17; prec++) {
			snprintf(buf, size, "%.*g", prec, v);
			if (strtod(buf, NULL) == v)
				break;
		}
	}
}

/* Label values: backslash, double quote and newline are escaped. */
static int
add_escaped(struct evbuffer *out, const char *s, int quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *rep = NULL;

		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '\n')
			rep = "\\n";
		else if (*s == '"' && quote)
			rep = "\\\"";
		if (rep == NULL)
			continue;
		if (evbuffer_add(out, run, (size_t)(s - run)) == -1 ||
		    evbuffer_add(out, rep, 2) == -1)
			return -1;
		run = s + 1;
	}
	return evbuffer_add(out, run, (size_t)(s - run));
}

static int
render_header(const struct sw_metric *f, struct evbuffer *out)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};

	if (evbuffer_add_printf(out, "# HELP %s ", f->name) == -1 ||
	    add_escaped(out, f->help, 0) == -1 ||
	    evbuffer_add_printf(out, "\n# TYPE %s %s\n", f->name, types[f->type]) == -1)
		return -1;
	return 0;
}

/* name{service="…",l1="…",…[,le="…"]} value */
static int
render_sample(const struct sw_metric *f, const struct series *s, const char *suffix,
    const char *le, const char *value, struct evbuffer *out)
{
	if (evbuffer_add_printf(out, "%s%s{service=\"", f->name, suffix) == -1 ||
	    add_escaped(out, f->reg->service, 1) == -1)
		return -1;
	for (size_t i = 0; i < f->nlabels; i++) {
		if (evbuffer_add_printf(out, "\",%s=\"", f->labels[i]) == -1 ||
		    add_escaped(out, s->values[i], 1) == -1)
			return -1;
	}
	if (le != NULL && evbuffer_add_printf(out, "\",le=\"%s", le) == -1)
		return -1;
	return evbuffer_add_printf(out, "\"} %s\n", value) == -1 ? -1 : 0;
}

static int
render_series(const struct sw_metric *f, struct evbuffer *out)
{
	char v[64], le[64];

	for (const struct series *s = f->first; s != NULL; s = s->next) {
		uint64_t cum = 0;

		if (f->type != SW_HISTOGRAM) {
			fmt_double(v, sizeof(v), s->value);
			if (render_sample(f, s, "", NULL, v, out) == -1)
				return -1;
			continue;
		}
		for (size_t i = 0; i < f->nbounds; i++) {
			cum += s->buckets[i];
			fmt_double(le, sizeof(le), f->bounds[i]);
			snprintf(v, sizeof(v), "%llu", (unsigned long long)cum);
			if (render_sample(f, s, "_bucket", le, v, out) == -1)
				return -1;
		}
		snprintf(v, sizeof(v), "%llu", (unsigned long long)s->count);
		if (render_sample(f, s, "_bucket", "+Inf", v, out) == -1)
			return -1;
		fmt_double(v, sizeof(v), s->value);
		if (render_sample(f, s, "_sum", NULL, v, out) == -1)
			return -1;
		snprintf(v, sizeof(v), "%llu", (unsigned long long)s->count);
		if (render_sample(f, s, "_count", NULL, v, out) == -1)
			return -1;
	}
	return 0;
}

int
sw_metrics_render(const struct sw_metrics *m, struct evbuffer *out)
{
	return sw_metrics_render_many(&m, 1, out);
}

/*
 * A family is printed when first met; the same name in later registries is
 * pulled in right then and skipped when its own registry comes up.  A family
 * whose type disagrees with the first one of that name is left out: mixing
 * would make the whole page unparseable.
 */
int
sw_metrics_render_many(const struct sw_metrics *const *ms, size_t n, struct evbuffer *out)
{
	for (size_t i = 0; i < n; i++) {
		if (ms[i] == NULL)
			continue;
		for (const struct sw_metric *f = ms[i]->first; f != NULL; f = f->next) {
			size_t j;

			for (j = 0; j < i; j++)
				if (ms[j] != NULL && family_find(ms[j], f->name) != NULL)
					break;
			if (j < i)
				continue;
			if (render_header(f, out) == -1 || render_series(f, out) == -1)
				return -1;
			for (j = i + 1; j < n; j++) {
				const struct sw_metric *g;

				if (ms[j] == NULL || (g = family_find(ms[j], f->name)) == NULL)
					continue;
				if (g->type != f->type)
					continue;
				if (render_series(g, out) == -1)
					return -1;
			}
		}
	}
	return 0;
}
