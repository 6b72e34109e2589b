/* service-discovery: the supervisor with one service in it. */
#include "service_discovery.h"

int
main(int argc, char **argv)
{
	return sw_main_single(&service_discovery_ops, argc, argv);
}
