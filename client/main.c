/*
 * main.c — ldapdesk, the helpdesk client of ldapdeskd. Everything happens
 * in cli_main; this only fixes the locale so CJK text gets its width.
 */
#include <locale.h>

#include "commands.h"

int main(int argc, char **argv)
{
	setlocale(LC_ALL, "C.UTF-8");
	return cli_main(argc, argv);
}
