/*
 * args.h — the ldapdesk command line parsed into one struct. Global options
 * (--url, --ca, --json, --help, --version) may stand anywhere; every other
 * option is checked against what the command takes.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define ARGS_MAX_POS 2

/* Everything the command line said. Strings point into argv; NULL, false or
 * 0 when absent. */
struct args {
	/* global */
	const char *url;
	const char *ca;
	bool json;
	bool help;
	bool version;
	/* words */
	const char *command; /* "status", "user", ... */
	const char *sub;     /* "create", ... after "user" */
	const char *pos[ARGS_MAX_POS];
	size_t npos; /* words after the command; may exceed ARGS_MAX_POS on error */
	/* event options */
	const char *ticket;
	const char *requester;
	const char *dept; /* also log's filter and user create/move's department */
	const char *channel;
	const char *note;
	/* command options */
	const char *user; /* login's operator, log's target filter */
	const char *password_file;
	const char *until;
	const char *desc;
	const char *from;
	const char *to;
	const char *oper;
	const char *action;
	const char *category;
	const char *result;
	const char *format;
	const char *output;
	const char *since_head;
	const char *name;
	const char *mail;
	const char *reason;
	const char *days_s;
	const char *limit_s;
	long days;  /* from days_s */
	long limit; /* from limit_s */
	bool unlock;
	bool bom;
	bool head;
	bool yes;
	bool check;    /* import --check: only check the file */
	uint64_t seen; /* one bit per option given; args.c's business */
};

/* Parses argv into *a and checks it against the command's options,
 * arguments, value sets (--channel, --format) and length limits. --version
 * anywhere makes it succeed without the checks; --help too, as long as its
 * options exist and the command it names is one.
 * Return: 0, or -1 with err set to what is wrong and how to get help. */
int args_parse(int argc, char **argv, struct args *a, char *err, size_t errlen);

/* Adds the event options given (ticket, requester, department, channel,
 * note) to the JSON object obj. Return: 0, or -1 on ENOMEM or bad UTF-8. */
int args_event_json(const struct args *a, json_t *obj);
