/* dmsg-discovery: the supervisor with one service in it. */
#include "dmsg_discovery.h"

int
main(int argc, char **argv)
{
	return sw_main_single(&dmsg_discovery_ops, argc, argv);
}
