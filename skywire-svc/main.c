/* skywire-svc: every service type in one binary, run by one supervisor. */
#include <string.h>

#include "probe.h"
#include "service.h"

/* The types are listed once, in services.def. */
#define SW_SERVICE(name) extern const struct sw_service_ops name##_ops;
#include "services.def"
#undef SW_SERVICE

static const struct sw_service_ops *const types[] = {
#define SW_SERVICE(name) &name##_ops,
#include "services.def"
#undef SW_SERVICE
	NULL,
};

int
main(int argc, char **argv)
{
	const struct sw_registry reg = {types};

	/* The containers' health check: before any set-up, so it costs only an exec. */
	if (argc == 3 && strcmp(argv[1], "probe") == 0)
		return svc_probe(argv[2]);
	return sw_main_svc(&reg, argc, argv);
}
