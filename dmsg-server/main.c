/* dmsg-server: the supervisor with one service in it. */
#include "dmsg_server.h"

int
main(int argc, char **argv)
{
	return sw_main_single(&dmsg_server_ops, argc, argv);
}
