/* stun-server: the supervisor with one service in it. */
#include "stun_server.h"

int
main(int argc, char **argv)
{
	return sw_main_single(&stun_server_ops, argc, argv);
}
