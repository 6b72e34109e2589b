/*
 * test_metrics: the exposition text is compared byte for byte, because
 * Prometheus parsers reject small deviations (a second TYPE line, a bad escape).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "metrics.h"

static char *
render(const struct sw_metrics *const *ms, size_t n)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *s;

	assert_non_null(b);
	assert_int_equal(sw_metrics_render_many(ms, n, b), 0);
	len = evbuffer_get_length(b);
	s = malloc(len + 1);
	assert_non_null(s);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

static void
test_counter_gauge_labels(void **state)
{
	static const char *const lab[] = {"route", "code", NULL};
	struct sw_metrics *m = sw_metrics_new("svc-a");
	struct sw_metric *c, *g, *plain;
	char *out;

	(void)state;
	c = sw_metric_new(m, "req_total", "Requests.", SW_COUNTER, lab, NULL, 0);
	assert_non_null(c);
	/* Idempotent registration. */
	assert_ptr_equal(sw_metric_new(m, "req_total", "x", SW_COUNTER, lab, NULL, 0), c);
	/* Same name, other shape: refused. */
	assert_null(sw_metric_new(m, "req_total", "x", SW_GAUGE, lab, NULL, 0));
	g = sw_metric_new(m, "temp", "Line one\nback\\slash", SW_GAUGE, NULL, NULL, 0);
	plain = sw_metric_new(m, "untouched_total", "Never bumped.", SW_COUNTER, NULL, NULL, 0);
	assert_non_null(g);
	assert_non_null(plain);

	sw_metric_add(c, (const char *const[]){"/a", "200"}, 1);
	sw_metric_add(c, (const char *const[]){"/b", "404"}, 2);
	sw_metric_add(c, (const char *const[]){"/a", "200"}, 1);
	sw_metric_add(c, (const char *const[]){"/a", "200"}, -5); /* ignored */
	sw_metric_add(c, (const char *const[]){"q\"u\\o\nte", "500"}, 0.5);
	sw_metric_set(g, NULL, -1.25);
	sw_metric_set(g, NULL, 3);
	sw_metric_add(g, NULL, 0.1);
	sw_metric_observe(c, NULL, 1); /* wrong type: ignored */
	sw_metric_add(NULL, NULL, 1);  /* NULL family: ignored */

	out = render((const struct sw_metrics *const[]){m}, 1);
	assert_string_equal(out,
	    "# HELP req_total Requests.\n"
	    "# TYPE req_total counter\n"
	    "req_total{service=\"svc-a\",route=\"/a\",code=\"200\"} 2\n"
	    "req_total{service=\"svc-a\",route=\"/b\",code=\"404\"} 2\n"
	    "req_total{service=\"svc-a\",route=\"q\\\"u\\\\o\\nte\",code=\"500\"} 0.5\n"
	    "# HELP temp Line one\\nback\\\\slash\n"
	    "# TYPE temp gauge\n"
	    "temp{service=\"svc-a\"} 3.1\n"
	    "# HELP untouched_total Never bumped.\n"
	    "# TYPE untouched_total counter\n"
	    "untouched_total{service=\"svc-a\"} 0\n");
	free(out);
	sw_metrics_free(m);
}

static void
test_invalid_names(void **state)
{
	struct sw_metrics *m = sw_metrics_new("s");

	(void)state;
	assert_null(sw_metric_new(m, "1bad", "", SW_COUNTER, NULL, NULL, 0));
	assert_null(sw_metric_new(m, "bad-name", "", SW_COUNTER, NULL, NULL, 0));
	assert_null(sw_metric_new(m, "x", "", SW_COUNTER, (const char *const[]){"service", NULL},
	    NULL, 0));
	assert_null(sw_metric_new(m, "h", "", SW_HISTOGRAM, (const char *const[]){"le", NULL},
	    NULL, 0));
	assert_null(sw_metric_new(m, "h2", "", SW_HISTOGRAM, NULL, (const double[]){1, 0.5}, 2));
	sw_metrics_free(m);
	sw_metrics_free(NULL);
}

static void
test_histogram(void **state)
{
	static const char *const lab[] = {"route", NULL};
	static const double b[] = {0.1, 0.5, 1};
	struct sw_metrics *m = sw_metrics_new("h");
	struct sw_metric *h;
	char *out;

	(void)state;
	h = sw_metric_new(m, "lat_seconds", "Latency.", SW_HISTOGRAM, lab, b, 3);
	assert_non_null(h);
	sw_metric_observe(h, (const char *const[]){"/x"}, 0.05);
	sw_metric_observe(h, (const char *const[]){"/x"}, 0.1); /* le is inclusive */
	sw_metric_observe(h, (const char *const[]){"/x"}, 0.7);
	sw_metric_observe(h, (const char *const[]){"/x"}, 3);
	out = render((const struct sw_metrics *const[]){m}, 1);
	assert_string_equal(out,
	    "# HELP lat_seconds Latency.\n"
	    "# TYPE lat_seconds histogram\n"
	    "lat_seconds_bucket{service=\"h\",route=\"/x\",le=\"0.1\"} 2\n"
	    "lat_seconds_bucket{service=\"h\",route=\"/x\",le=\"0.5\"} 2\n"
	    "lat_seconds_bucket{service=\"h\",route=\"/x\",le=\"1\"} 3\n"
	    "lat_seconds_bucket{service=\"h\",route=\"/x\",le=\"+Inf\"} 4\n"
	    "lat_seconds_sum{service=\"h\",route=\"/x\"} 3.85\n"
	    "lat_seconds_count{service=\"h\",route=\"/x\"} 4\n");
	free(out);
	sw_metrics_free(m);
}

static void
test_default_buckets(void **state)
{
	struct sw_metrics *m = sw_metrics_new("d");
	struct sw_metric *h;
	char *out;

	(void)state;
	h = sw_metric_new(m, "d_seconds", "D.", SW_HISTOGRAM, NULL, NULL, 0);
	sw_metric_observe(h, NULL, 0.002);
	out = render((const struct sw_metrics *const[]){m}, 1);
	assert_non_null(strstr(out, "d_seconds_bucket{service=\"d\",le=\"0.0005\"} 0\n"
				    "d_seconds_bucket{service=\"d\",le=\"0.001\"} 0\n"
				    "d_seconds_bucket{service=\"d\",le=\"0.0025\"} 1\n"));
	assert_non_null(strstr(out, "d_seconds_bucket{service=\"d\",le=\"10\"} 1\n"
				    "d_seconds_bucket{service=\"d\",le=\"+Inf\"} 1\n"
				    "d_seconds_sum{service=\"d\"} 0.002\n"
				    "d_seconds_count{service=\"d\"} 1\n"));
	free(out);
	sw_metrics_free(m);
}

static void
test_render_many_merges(void **state)
{
	static const char *const lab[] = {"code", NULL};
	struct sw_metrics *a = sw_metrics_new("a"), *b = sw_metrics_new("b");
	struct sw_metric *ra, *rb, *oa, *ob, *mis;
	char *out;

	(void)state;
	ra = sw_metric_new(a, "req_total", "Requests.", SW_COUNTER, lab, NULL, 0);
	oa = sw_metric_new(a, "only_a", "A.", SW_GAUGE, NULL, NULL, 0);
	ob = sw_metric_new(b, "only_b", "B.", SW_GAUGE, NULL, NULL, 0);
	rb = sw_metric_new(b, "req_total", "Requests.", SW_COUNTER, lab, NULL, 0);
	mis = sw_metric_new(b, "only_a", "Other type.", SW_COUNTER, NULL, NULL, 0);
	assert_non_null(mis);
	sw_metric_add(ra, (const char *const[]){"200"}, 1);
	sw_metric_add(rb, (const char *const[]){"200"}, 7);
	sw_metric_set(oa, NULL, 1);
	sw_metric_set(ob, NULL, 2);
	out = render((const struct sw_metrics *const[]){a, NULL, b}, 3);
	assert_string_equal(out,
	    "# HELP req_total Requests.\n"
	    "# TYPE req_total counter\n"
	    "req_total{service=\"a\",code=\"200\"} 1\n"
	    "req_total{service=\"b\",code=\"200\"} 7\n"
	    "# HELP only_a A.\n"
	    "# TYPE only_a gauge\n"
	    "only_a{service=\"a\"} 1\n"
	    "# HELP only_b B.\n"
	    "# TYPE only_b gauge\n"
	    "only_b{service=\"b\"} 2\n");
	free(out);
	sw_metrics_free(a);
	sw_metrics_free(b);
}

/* Enough series to force several table growths; every one must be found again. */
static void
test_many_series(void **state)
{
	static const char *const lab[] = {"k", NULL};
	struct sw_metrics *m = sw_metrics_new("s");
	struct sw_metric *c;
	char key[16], *out, want[64];

	(void)state;
	c = sw_metric_new(m, "n_total", "N.", SW_COUNTER, lab, NULL, 0);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 500; i++) {
			snprintf(key, sizeof(key), "k%d", i);
			sw_metric_add(c, (const char *const[]){key}, 1);
		}
	out = render((const struct sw_metrics *const[]){m}, 1);
	for (int i = 0; i < 500; i += 37) {
		snprintf(want, sizeof(want), "n_total{service=\"s\",k=\"k%d\"} 2\n", i);
		assert_non_null(strstr(out, want));
	}
	free(out);
	sw_metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_gauge_labels),
		cmocka_unit_test(test_invalid_names),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_default_buckets),
		cmocka_unit_test(test_render_many_merges),
		cmocka_unit_test(test_many_series),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
