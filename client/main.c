/*
 * main.c — ldapdesk, the helpdesk client of ldapdeskd. Everything happens
 * in cli_main; this only fixes the locale so CJK text gets its width.
 */
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"

int main(int argc, char **argv)
{
	/* Without a UTF-8 locale every CJK character would print as '?'. */
	if (setlocale(LC_ALL, "C.UTF-8") == NULL &&
	    (setlocale(LC_ALL, "") == NULL || strcmp(nl_langinfo(CODESET), "UTF-8") != 0))
		fputs("ldapdesk: warning: no UTF-8 locale (C.UTF-8): Chinese text shows as '?'\n",
		      stderr);
	return cli_main(argc, argv);
}
