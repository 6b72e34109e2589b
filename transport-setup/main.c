/* transport-setup: the supervisor with one service in it. */
#include "transport_setup.h"

int
main(int argc, char **argv)
{
	return sw_main_single(&transport_setup_ops, argc, argv);
}
