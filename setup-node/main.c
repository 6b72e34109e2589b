/* setup-node: the supervisor with one service in it. */
#include "setup_node.h"

int
main(int argc, char **argv)
{
	return sw_main_single(&setup_node_ops, argc, argv);
}
