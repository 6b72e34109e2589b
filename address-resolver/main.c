/* address-resolver: the supervisor with one service in it. */
#include "address_resolver.h"

int
main(int argc, char **argv)
{
	return sw_main_single(&address_resolver_ops, argc, argv);
}
