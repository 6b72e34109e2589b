/* skywire-svc: every service type in one binary, run by one supervisor. */
#include "service.h"

extern const struct sw_service_ops dmsg_discovery_ops;
extern const struct sw_service_ops address_resolver_ops;
extern const struct sw_service_ops dmsg_server_ops;
extern const struct sw_service_ops service_discovery_ops;
extern const struct sw_service_ops visor_ops;
extern const struct sw_service_ops transport_discovery_ops;
extern const struct sw_service_ops route_finder_ops;
extern const struct sw_service_ops stun_server_ops;
extern const struct sw_service_ops tpviz_ops;

static const struct sw_service_ops *const types[] = {
	&dmsg_discovery_ops,
	&address_resolver_ops,
	&dmsg_server_ops,
	&service_discovery_ops,
	&visor_ops,
	&transport_discovery_ops,
	&route_finder_ops,
	&stun_server_ops,
	&tpviz_ops,
	NULL,
};

int
main(int argc, char **argv)
{
	const struct sw_registry reg = {types};

	return sw_main_svc(&reg, argc, argv);
}
