/* route-finder: the supervisor with one service in it. */
#include "route_finder.h"

int
main(int argc, char **argv)
{
	return sw_main_single(&route_finder_ops, argc, argv);
}
