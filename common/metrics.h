/*
 * metrics: counters, gauges and histograms, rendered in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * A registry holds metric families; a family has a name, help, a type and a
 * fixed list of label names; a series is one combination of label values,
 * found by a hash lookup (so a hot path bumping a counter does not scan).
 * Rendering adds service="<name>" to every series, so the supervisor can
 * concatenate several registries into one /metrics.
 */
#ifndef SW_METRICS_H
#define SW_METRICS_H

#include <stddef.h>

struct evbuffer;
struct sw_metrics;
struct sw_metric;

enum sw_metric_type {
	SW_COUNTER,
	SW_GAUGE,
	SW_HISTOGRAM,
};

struct sw_metrics *sw_metrics_new(const char *service);
void sw_metrics_free(struct sw_metrics *m);

/*
 * Register a family (idempotent: the same name returns the same family).
 * labels: NULL-terminated label names (or NULL).  buckets/nbuckets only for
 * histograms (NULL: default latency buckets in seconds, 0.0005 .. 10).
 */
struct sw_metric *sw_metric_new(struct sw_metrics *m, const char *name, const char *help,
    enum sw_metric_type type, const char *const *labels, const double *buckets,
    size_t nbuckets);

/* values: one per label name, in order (NULL when the family has no labels). */
void sw_metric_add(struct sw_metric *f, const char *const *values, double v);
void sw_metric_set(struct sw_metric *f, const char *const *values, double v);
void sw_metric_observe(struct sw_metric *f, const char *const *values, double v);

/* Convenience for label-less families. */
#define sw_metric_inc(f) sw_metric_add((f), NULL, 1)

/* Append the exposition text for every family of m. */
int sw_metrics_render(const struct sw_metrics *m, struct evbuffer *out);
/*
 * The same for several registries (the supervisor's /metrics): families of
 * one name are merged so HELP/TYPE appear once and a family's series stay
 * together, as the format requires.
 */
int sw_metrics_render_many(const struct sw_metrics *const *ms, size_t n, struct evbuffer *out);

#endif
