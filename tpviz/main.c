/* tpviz: the supervisor with one service in it. */
#include "tpviz.h"

int
main(int argc, char **argv)
{
	return sw_main_single(&tpviz_ops, argc, argv);
}
