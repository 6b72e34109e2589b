/* transport-discovery: the supervisor with one service in it. */
#include "transport_discovery.h"

int
main(int argc, char **argv)
{
	return sw_main_single(&transport_discovery_ops, argc, argv);
}
