/*
 * commands.h — ldapdesk's entry point: parse the command line, run the
 * command against ldapdeskd, print the answer.
 */
#pragma once

/* Runs ldapdesk with main's arguments; expects LC_CTYPE set to UTF-8.
 * Return: the process exit code (enum ldapdesk_exit in ldapdesk/wire.h);
 * messages have gone to stderr, results to stdout. */
int cli_main(int argc, char **argv);
