/*
 * args.c — ldapdesk's command line: one table of options, one table of
 * commands saying which options and arguments each takes. Parsing first
 * collects everything (global options may come after the command), then
 * checks it against the command.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ldapdesk/wire.h"
#include "args.h"

enum opt_id {
	O_URL,
	O_CA,
	O_JSON,
	O_HELP,
	O_VERSION,
	O_TICKET,
	O_REQUESTER,
	O_DEPT,
	O_CHANNEL,
	O_NOTE,
	O_USER,
	O_PASSWORD_FILE,
	O_UNLOCK,
	O_DAYS,
	O_UNTIL,
	O_DESC,
	O_FROM,
	O_TO,
	O_OPERATOR,
	O_ACTION,
	O_CATEGORY,
	O_RESULT,
	O_LIMIT,
	O_FORMAT,
	O_BOM,
	O_OUTPUT,
	O_HEAD,
	O_SINCE_HEAD,
	O_NAME,
	O_MAIL,
	O_REASON,
	O_YES,
	O_CHECK,
	O_COUNT
};

struct opt {
	const char *name; /* long name, without "--" */
	char short_name;  /* 0 = none */
	bool takes_value;
	size_t off; /* of the const char * or bool in struct args */
};

#define FIELD(f) offsetof(struct args, f)

static const struct opt opts[O_COUNT] = {
    [O_URL] = {"url", 0, true, FIELD(url)},
    [O_CA] = {"ca", 0, true, FIELD(ca)},
    [O_JSON] = {"json", 0, false, FIELD(json)},
    [O_HELP] = {"help", 'h', false, FIELD(help)},
    [O_VERSION] = {"version", 0, false, FIELD(version)},
    [O_TICKET] = {"ticket", 0, true, FIELD(ticket)},
    [O_REQUESTER] = {"requester", 0, true, FIELD(requester)},
    [O_DEPT] = {"dept", 0, true, FIELD(dept)},
    [O_CHANNEL] = {"channel", 0, true, FIELD(channel)},
    [O_NOTE] = {"note", 0, true, FIELD(note)},
    [O_USER] = {"user", 0, true, FIELD(user)},
    [O_PASSWORD_FILE] = {"password-file", 0, true, FIELD(password_file)},
    [O_UNLOCK] = {"unlock", 0, false, FIELD(unlock)},
    [O_DAYS] = {"days", 0, true, FIELD(days_s)},
    [O_UNTIL] = {"until", 0, true, FIELD(until)},
    [O_DESC] = {"desc", 0, true, FIELD(desc)},
    [O_FROM] = {"from", 0, true, FIELD(from)},
    [O_TO] = {"to", 0, true, FIELD(to)},
    [O_OPERATOR] = {"operator", 0, true, FIELD(oper)},
    [O_ACTION] = {"action", 0, true, FIELD(action)},
    [O_CATEGORY] = {"category", 0, true, FIELD(category)},
    [O_RESULT] = {"result", 0, true, FIELD(result)},
    [O_LIMIT] = {"limit", 0, true, FIELD(limit_s)},
    [O_FORMAT] = {"format", 0, true, FIELD(format)},
    [O_BOM] = {"bom", 0, false, FIELD(bom)},
    [O_OUTPUT] = {"output", 'o', true, FIELD(output)},
    [O_HEAD] = {"head", 0, false, FIELD(head)},
    [O_SINCE_HEAD] = {"since-head", 0, true, FIELD(since_head)},
    [O_NAME] = {"name", 0, true, FIELD(name)},
    [O_MAIL] = {"mail", 0, true, FIELD(mail)},
    [O_REASON] = {"reason", 0, true, FIELD(reason)},
    [O_YES] = {"yes", 0, false, FIELD(yes)},
    [O_CHECK] = {"check", 0, false, FIELD(check)},
};

#define B(o)   (UINT64_C(1) << (o))
#define GLOBAL (B(O_URL) | B(O_CA) | B(O_JSON) | B(O_HELP) | B(O_VERSION))
#define EVENT  (B(O_TICKET) | B(O_REQUESTER) | B(O_DEPT) | B(O_CHANNEL) | B(O_NOTE))
#define LOG_FILTERS                                                                                \
	(B(O_FROM) | B(O_TO) | B(O_USER) | B(O_OPERATOR) | B(O_ACTION) | B(O_CATEGORY) |           \
	 B(O_DEPT) | B(O_RESULT) | B(O_LIMIT) | B(O_FORMAT) | B(O_BOM))

/* What a command takes: options beyond the global ones, options it needs,
 * and its positional arguments (all required). "USER"/"UID" are uids, "ID"
 * a number. */
struct spec {
	const char *name;
	const char *sub;
	uint64_t allowed;
	uint64_t required;
	const char *args[ARGS_MAX_POS];
};

static const struct spec specs[] = {
    {"login", NULL, B(O_USER) | B(O_PASSWORD_FILE), 0, {NULL, NULL}},
    {"logout", NULL, 0, 0, {NULL, NULL}},
    {"status", NULL, 0, 0, {"USER", NULL}},
    {"unlock", NULL, EVENT, 0, {"USER", NULL}},
    {"reset", NULL, EVENT | B(O_UNLOCK), 0, {"USER", NULL}},
    {"grant", NULL, EVENT | B(O_DAYS) | B(O_UNTIL), 0, {"USER", "PERMISSION"}},
    {"revoke", NULL, EVENT, 0, {"USER", "PERMISSION"}},
    {"record", NULL, EVENT | B(O_DESC), B(O_DESC), {"CATEGORY", NULL}},
    {"log", NULL, LOG_FILTERS, 0, {NULL, NULL}},
    {"report",
     NULL,
     B(O_FROM) | B(O_TO) | B(O_FORMAT) | B(O_BOM) | B(O_OUTPUT),
     B(O_FROM) | B(O_TO),
     {NULL, NULL}},
    {"import", NULL, B(O_CHECK), 0, {"FILE", NULL}},
    {"verify", NULL, B(O_HEAD) | B(O_SINCE_HEAD), 0, {NULL, NULL}},
    {"backup", NULL, 0, 0, {NULL, NULL}},
    {"health", NULL, 0, 0, {NULL, NULL}},
    {"pending", NULL, 0, 0, {NULL, NULL}},
    {"approve", NULL, 0, 0, {"ID", NULL}},
    {"reject", NULL, B(O_REASON), B(O_REASON), {"ID", NULL}},
    {"user", "create", EVENT | B(O_NAME) | B(O_MAIL), B(O_NAME) | B(O_DEPT), {"UID", NULL}},
    {"user", "move", EVENT, B(O_DEPT), {"UID", NULL}},
    {"user", "disable", EVENT | B(O_REASON), B(O_REASON), {"UID", NULL}},
    {"user", "enable", EVENT, 0, {"UID", NULL}},
    {"user", "delete", EVENT | B(O_YES), B(O_YES), {"UID", NULL}},
};

/* Keeps the first error only: later ones are usually its consequences. */
static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* "unlock" or "user create", for messages. */
static const char *cmd_name(const struct args *a, char *buf, size_t len)
{
	if (a->sub != NULL)
		snprintf(buf, len, "%s %s", a->command, a->sub);
	else
		snprintf(buf, len, "%s", a->command != NULL ? a->command : "");
	return buf;
}

/* Index of the option s names ("--name", "--name=v", "-x"), or -1. *valp
 * gets the text after '=' if any. */
static int find_opt(const char *s, const char **valp)
{
	*valp = NULL;
	if (s[1] != '-') {
		for (int i = 0; i < O_COUNT && s[2] == '\0'; i++)
			if (opts[i].short_name == s[1])
				return i;
		return -1;
	}
	const char *name = s + 2, *eq = strchr(name, '=');
	size_t n = eq != NULL ? (size_t)(eq - name) : strlen(name);
	for (int i = 0; i < O_COUNT; i++) {
		if (strlen(opts[i].name) == n && strncmp(opts[i].name, name, n) == 0) {
			*valp = eq != NULL ? eq + 1 : NULL;
			return i;
		}
	}
	return -1;
}

static const struct spec *find_spec(const struct args *a);

/* An unknown option, named without any value it may carry ("--password=X",
 * or "-wX" as ldapsearch takes a password), with the help to read: the
 * command's once it is known. */
static void unknown_option(const struct args *a, const char *s, char *err, size_t errlen)
{
	int shown = s[1] == '-' ? (int)strcspn(s, "=") : 2;
	char cmd[64];
	bool known = a->command != NULL && find_spec(a) != NULL;

	fail(err, errlen, "unknown option '%.*s'; see 'ldapdesk %s%s--help'", shown, s,
	     known ? cmd_name(a, cmd, sizeof(cmd)) : "", known ? " " : "");
}

/* The option at argv[*ip]; advances *ip past its value. */
static void take_option(struct args *a, int argc, char **argv, int *ip, char *err, size_t errlen)
{
	const char *s = argv[*ip], *val;
	int id = find_opt(s, &val);
	/* Never echo a value: "--password=..." must not reach the terminal. */
	int shown = (int)strcspn(s, "=");

	if (id < 0) {
		unknown_option(a, s, err, errlen);
		return;
	}
	/* A second value would silently replace the first (two tickets given,
	 * one recorded). A flag given twice means the same. */
	if (opts[id].takes_value && (a->seen & B(id)) != 0) {
		fail(err, errlen, "option --%s is given twice: give it once", opts[id].name);
		return;
	}
	a->seen |= B(id);
	if (!opts[id].takes_value) {
		if (val != NULL)
			fail(err, errlen, "option --%s takes no value", opts[id].name);
		*(bool *)((char *)a + opts[id].off) = true;
		return;
	}
	if (val == NULL && *ip + 1 >= argc) {
		fail(err, errlen, "option '%.*s' needs a value", shown, s);
		return;
	}
	if (val == NULL)
		val = argv[++*ip];
	*(const char **)((char *)a + opts[id].off) = val;
}

static void take_word(struct args *a, const char *w)
{
	if (a->command == NULL)
		a->command = w;
	else if (a->sub == NULL && strcmp(a->command, "user") == 0)
		a->sub = w;
	else if (a->npos < ARGS_MAX_POS)
		a->pos[a->npos++] = w;
	else
		a->npos++;
}

static const struct spec *find_spec(const struct args *a)
{
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		const struct spec *s = &specs[i];
		if (strcmp(s->name, a->command) != 0)
			continue;
		if (s->sub == NULL || (a->sub != NULL && strcmp(s->sub, a->sub) == 0))
			return s;
	}
	return NULL;
}

static int check_command(const struct args *a, const struct spec **specp, char *err, size_t errlen)
{
	if (a->command == NULL) {
		fail(err, errlen, "no command given; see 'ldapdesk --help'");
		return -1;
	}
	if (strcmp(a->command, "user") == 0 && a->sub == NULL) {
		fail(err, errlen,
		     "'user' needs create, move, disable, enable or delete; see 'ldapdesk user "
		     "--help'");
		return -1;
	}
	if ((*specp = find_spec(a)) == NULL) {
		char name[128];
		fail(err, errlen, "unknown command '%s'; see 'ldapdesk --help'",
		     cmd_name(a, name, sizeof name));
		return -1;
	}
	return 0;
}

/* Options given that the command doesn't take, and options it needs. */
static int check_options(const struct args *a, const struct spec *s, char *err, size_t errlen)
{
	char name[128];
	uint64_t extra = a->seen & ~(s->allowed | GLOBAL);
	uint64_t missing = s->required & ~a->seen;

	char needs[256] = "";
	size_t n = 0, len = 0;

	cmd_name(a, name, sizeof name);
	for (int i = 0; i < O_COUNT; i++)
		if (extra & B(i))
			fail(err, errlen, "'%s' takes no option --%s; see 'ldapdesk %s --help'",
			     name, opts[i].name, name);
	/* Everything missing at once, in the order of the usage line: the words,
	 * then the options ("needs UID, --name and --dept"). */
	const char *what[ARGS_MAX_POS + O_COUNT];
	for (size_t w = a->npos; w < ARGS_MAX_POS && s->args[w] != NULL; w++)
		what[n++] = s->args[w];
	size_t words = n;
	for (int i = 0; i < O_COUNT; i++)
		if (missing & B(i))
			what[n++] = opts[i].name;
	for (size_t i = 0; i < n && len < sizeof needs; i++)
		len += (size_t)snprintf(needs + len, sizeof needs - len, "%s%s%s",
		                        i == 0       ? ""
		                        : i + 1 == n ? " and "
		                                     : ", ",
		                        i < words ? "" : "--", what[i]);
	if (n > 0)
		fail(err, errlen, "'%s' needs %s; see 'ldapdesk %s --help'", name, needs, name);
	return err[0] != '\0' ? -1 : 0;
}

static bool all_digits(const char *s, size_t maxlen)
{
	size_t n = strlen(s);

	if (n == 0 || n > maxlen)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static bool valid_utf8(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

static int check_word(const char *what, const char *w, char *err, size_t errlen)
{
	bool uid = strcmp(what, "USER") == 0 || strcmp(what, "UID") == 0;
	size_t max = uid ? LDAPDESK_MAX_UID : LDAPDESK_MAX_FIELD;

	if (w[0] == '\0' || strlen(w) > max)
		fail(err, errlen, "%s must be 1 to %zu bytes long", what, max);
	else if (strcmp(what, "ID") == 0 && !all_digits(w, 18))
		fail(err, errlen, "ID must be a request number, not '%s'", w);
	else if (!valid_utf8(w))
		fail(err, errlen, "%s is not valid UTF-8", what);
	return err[0] != '\0' ? -1 : 0;
}

static int check_words(const struct args *a, const struct spec *s, char *err, size_t errlen)
{
	char name[128];
	size_t want = 0;

	while (want < ARGS_MAX_POS && s->args[want] != NULL)
		want++;
	cmd_name(a, name, sizeof name);
	if (a->npos < want) {
		fail(err, errlen, "'%s' needs %s; see 'ldapdesk %s --help'", name, s->args[a->npos],
		     name);
		return -1;
	}
	if (a->npos > want) {
		fail(err, errlen, "too many arguments for '%s'; see 'ldapdesk %s --help'", name,
		     name);
		return -1;
	}
	for (size_t i = 0; i < want; i++)
		if (check_word(s->args[i], a->pos[i], err, errlen) != 0)
			return -1;
	return 0;
}

/* Every text option: length and UTF-8. */
static int check_lengths(const struct args *a, char *err, size_t errlen)
{
	for (int i = 0; i < O_COUNT; i++) {
		if (!opts[i].takes_value || !(a->seen & B(i)))
			continue;
		const char *v = *(const char *const *)((const char *)a + opts[i].off);
		if (strlen(v) > LDAPDESK_MAX_FIELD)
			fail(err, errlen, "--%s is longer than %d bytes", opts[i].name,
			     LDAPDESK_MAX_FIELD);
		else if (!valid_utf8(v))
			fail(err, errlen, "--%s is not valid UTF-8", opts[i].name);
	}
	if (a->user != NULL && strlen(a->user) > LDAPDESK_MAX_UID)
		fail(err, errlen, "--user is longer than %d bytes", LDAPDESK_MAX_UID);
	return err[0] != '\0' ? -1 : 0;
}

static bool one_of(const char *v, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(v, *set) == 0)
			return true;
	return false;
}

static int check_format(const struct args *a, char *err, size_t errlen)
{
	static const char *const log_fmt[] = {"table", "csv", "json", NULL};
	static const char *const report_fmt[] = {"text", "md", "csv", "json", "html", NULL};
	bool log = strcmp(a->command, "log") == 0;

	if (a->format == NULL || one_of(a->format, log ? log_fmt : report_fmt))
		return 0;
	fail(err, errlen, "--format must be %s, not '%s'",
	     log ? "table, csv or json" : "text, md, csv, json or html", a->format);
	return -1;
}

/* A whole number in 1..max, for --days and --limit. */
static int parse_count(const char *name, const char *s, long max, long *out, char *err,
                       size_t errlen)
{
	char *end;

	errno = 0;
	long v = all_digits(s, 12) ? strtol(s, &end, 10) : -1;
	if (v < 1 || v > max || errno != 0) {
		fail(err, errlen, "--%s must be a whole number from 1 to %ld, not '%s'", name, max,
		     s);
		return -1;
	}
	*out = v;
	return 0;
}

static bool is_head(const char *s)
{
	const char *colon = strchr(s, ':');

	if (colon == NULL || colon == s || colon - s > 19 || strlen(colon + 1) != 64)
		return false;
	for (const char *p = s; p < colon; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	for (const char *p = colon + 1; *p != '\0'; p++) /* lower-case, as verify prints it */
		if (!isdigit((unsigned char)*p) && (*p < 'a' || *p > 'f'))
			return false;
	return true;
}

static int check_values(struct args *a, char *err, size_t errlen)
{
	static const char *const channels[] = {"hotline", "request", NULL};

	if (a->channel != NULL && !one_of(a->channel, channels))
		fail(err, errlen, "--channel must be hotline or request, not '%s'", a->channel);
	/* A format that does not exist is named as such first. */
	check_format(a, err, errlen);
	/* --json is --format json: another format would be silently dropped. */
	if (a->json && a->format != NULL && strcmp(a->format, "json") != 0)
		fail(err, errlen, "give --json or --format %s, not both", a->format);
	if (a->days_s != NULL && a->until != NULL)
		fail(err, errlen, "give --days or --until, not both");
	if (a->head && a->since_head != NULL)
		fail(err, errlen, "give --head or --since-head, not both");
	if (a->since_head != NULL && !is_head(a->since_head))
		fail(err, errlen,
		     "--since-head must be ID:HASH as printed by 'ldapdesk verify --head'");
	if (a->days_s != NULL)
		parse_count("days", a->days_s, 36500, &a->days, err, errlen);
	if (a->limit_s != NULL)
		parse_count("limit", a->limit_s, 1000000000L, &a->limit, err, errlen);
	/* And --format json is --json: errors too come as JSON on stdout. */
	if (a->format != NULL && strcmp(a->format, "json") == 0)
		a->json = true;
	/* A BOM is for Excel's CSV; it would make JSON unparseable. */
	if (err[0] == '\0' && a->bom && (a->format == NULL || strcmp(a->format, "csv") != 0))
		fail(err, errlen, "--bom is for CSV: add --format csv");
	return err[0] != '\0' ? -1 : 0;
}

/* --help still needs its options to exist and the command it names to be
 * one: "ldapdesk bogus --help" is no request for the overview. "user" alone
 * asks for all its subcommands. */
static int check_help(const struct args *a, char *err, size_t errlen)
{
	const struct spec *s;

	if (err[0] != '\0')
		return -1;
	if (a->command == NULL || (strcmp(a->command, "user") == 0 && a->sub == NULL))
		return 0;
	return check_command(a, &s, err, errlen);
}

int args_parse(int argc, char **argv, struct args *a, char *err, size_t errlen)
{
	const struct spec *s = NULL;
	bool words_only = false;

	memset(a, 0, sizeof *a);
	err[0] = '\0';
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];
		if (!words_only && strcmp(w, "--") == 0)
			words_only = true;
		else if (!words_only && w[0] == '-' && w[1] != '\0')
			take_option(a, argc, argv, &i, err, errlen);
		else
			take_word(a, w);
	}
	if (a->version) {
		err[0] = '\0';
		return 0;
	}
	if (a->help)
		return check_help(a, err, errlen);
	if (err[0] != '\0' || check_command(a, &s, err, errlen) != 0 ||
	    check_options(a, s, err, errlen) != 0 || check_words(a, s, err, errlen) != 0 ||
	    check_lengths(a, err, errlen) != 0)
		return -1;
	return check_values(a, err, errlen);
}

static int set_text(json_t *obj, const char *key, const char *v)
{
	if (v == NULL)
		return 0;
	return json_object_set_new(obj, key, json_string(v));
}

int args_event_json(const struct args *a, json_t *obj)
{
	if (set_text(obj, "ticket", a->ticket) != 0 ||
	    set_text(obj, "requester", a->requester) != 0 ||
	    set_text(obj, "department", a->dept) != 0 ||
	    set_text(obj, "channel", a->channel) != 0 || set_text(obj, "note", a->note) != 0)
		return -1;
	return 0;
}
