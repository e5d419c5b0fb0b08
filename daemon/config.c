/*
 * config.c — parses the INI file with libinih into struct config, checks it,
 * and records FILE:LINE for every key. Known keys live in one table; anything
 * else is an error with its line number.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <grp.h>
#include <pwd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ini.h>
#include <event2/util.h>
#include <openssl/crypto.h>

#include "config.h"

/* Debian's libinih reads at most INI_MAX_LINE (200) bytes per line. */
#define CONFIG_SECRET_MAX 512

struct config_where {
	char *section;
	char *key;
	int line;
};

enum key_type { K_STR, K_LIST, K_BOOL, K_INT, K_FLAVOR };

struct key_def {
	const char *section;
	const char *key;
	enum key_type type;
	size_t off;       /* offset of the field in struct config */
	size_t count_off; /* K_LIST: offset of the counter */
	int min, max;     /* K_INT range */
};

#define S(f) offsetof(struct config, f)
#define STR(s, k, f)                                                                               \
	{                                                                                          \
		s, k, K_STR, S(f), 0, 0, 0                                                         \
	}
#define INT(s, k, f, lo, hi)                                                                       \
	{                                                                                          \
		s, k, K_INT, S(f), 0, lo, hi                                                       \
	}

static const struct key_def keys[] = {
    {"server", "listen", K_LIST, S(listen), S(n_listen), 0, 0},
    STR("server", "tls_cert", tls_cert),
    STR("server", "tls_key", tls_key),
    STR("server", "user", user),
    STR("server", "key_file", key_file),
    STR("server", "timezone", timezone),
    INT("server", "session_ttl", session_ttl, 1, 7 * 86400),
    INT("server", "session_idle", session_idle, 1, 86400),
    STR("server", "client_ca", client_ca),
    INT("limits", "login_failures", login_failures, 1, 100000),
    INT("limits", "login_failures_per_address", login_failures_per_addr, 1, 1000000),
    INT("limits", "login_window", login_window, 1, 86400),
    INT("limits", "resets_per_hour", resets_per_hour, 1, 100000),
    INT("limits", "request_ttl", request_ttl, 1, 30 * 86400),
    INT("limits", "connections", connections, 1, 1000000),
    INT("limits", "connections_per_address", connections_per_addr, 1, 1000000),
    INT("limits", "request_seconds", request_seconds, 1, 3600),
    STR("ldap", "uri", uri),
    {"ldap", "starttls", K_BOOL, S(starttls), 0, 0, 0},
    STR("ldap", "ca_file", ca_file),
    STR("ldap", "bind_dn", bind_dn),
    STR("ldap", "bind_password_file", bind_password_file),
    STR("ldap", "user_base", user_base),
    STR("ldap", "user_attr", user_attr),
    STR("ldap", "policy_dn", policy_dn),
    STR("ldap", "group_base", group_base),
    STR("lifecycle", "user_dn", user_dn),
    {"ldap", "flavor", K_FLAVOR, S(flavor), 0, 0, 0},
    INT("ldap", "pool_size", pool_size, 1, 64),
    INT("ldap", "cache_seconds", cache_seconds, 0, 3600),
    INT("ldap", "timeout_ms", timeout_ms, 100, 600000),
    STR("audit", "database", database),
    STR("audit", "backup_dir", backup_dir),
    INT("audit", "backup_keep", backup_keep, 1, 3650),
    INT("audit", "commit_delay_ms", commit_delay_ms, 0, 100),
    STR("audit", "backup_at", backup_at),
    STR("roles", "helpdesk", role_helpdesk),
    STR("roles", "admin", role_admin),
    STR("roles", "auditor", role_auditor),
    {"protect", "groups", K_LIST, S(protect), S(n_protect), 0, 0},
};

/* The categories of DESIGN.md; [category.KEY] may relabel them or add more. */
static const struct {
	const char *key, *label, *unit;
} default_categories[] = {
    {"app-request", "应用需求单", "项"},
    {"unlock-reset", "解锁重置密码", "次"},
    {"todo-mail", "删除待办与邮件", "次"},
    {"grant", "授权系统权限", "次"},
    {"mobile-app", "安装手机APP", "次"},
    {"notice", "修改通知公告", "次"},
    {"login-issue", "邮件附件及门户登录异常", "次"},
    {"knowledge-doc", "更新知识文档", "次"},
    {"vuln-fix", "漏洞修复", "次"},
};

struct parse {
	struct config *c;
	FILE *fp;
	int line;     /* line the reader handed to inih last */
	int err_line; /* first error, 0 if none */
	char err[256];
};

static void parse_error(struct parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void parse_error(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err_line != 0)
		return;
	p->err_line = p->line;
	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is just above
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
}

/*
 * inih calls this for each line. Reading the whole line ourselves lets us
 * count lines (Debian's inih has no line numbers in the handler) and refuse a
 * line longer than inih's buffer instead of letting it be split in two.
 */
static bool indented_value(const char *line)
{
	size_t lead = strspn(line, " \t");

	return lead > 0 && line[lead] != '\0' && strchr(";#\r\n", line[lead]) == NULL;
}

/* Debian's libinih ends a value at whitespace and ';' (an inline comment):
 * "label = 采购 ;旧" would silently become "采购". README says comments are
 * whole lines: refused, so nothing is cut unseen. */
static bool inline_comment(const char *line)
{
	size_t lead = strspn(line, " \t");
	const char *eq = strchr(line, '=');

	if (strchr(";#[\r\n", line[lead]) != NULL || line[lead] == '\0' || eq == NULL)
		return false;
	for (const char *q = eq + 1; *q != '\0'; q++)
		if (*q == ';' && (q[-1] == ' ' || q[-1] == '\t'))
			return true;
	return false;
}

static char *config_reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, p->fp);

	if (n < 0) {
		free(line);
		return NULL;
	}
	p->line++;
	if (n > num - 1) {
		/* libinih's buffer holds the line break and the string's end too. */
		ssize_t text = n - (line[n - 1] == '\n') - (n > 1 && line[n - 2] == '\r');

		/* The limit counts the line break: a CRLF one takes a byte more. */
		parse_error(p, "line is %zd bytes long; the limit is %d%s: shorten it", text,
		            num - 1 - (int)(n - text),
		            n - text == 2 ? " with a CRLF line break" : "");
		str[0] = '\n';
		str[1] = '\0';
	} else if (inline_comment(line)) {
		parse_error(p, "a ';' after a blank ends the value there (the rest would be "
		               "dropped as a comment): put comments on lines of their own");
		str[0] = '\n';
		str[1] = '\0';
	} else if (indented_value(line)) {
		/* libinih would join it to the previous key's value (or add a
		 * value to a list): never what a long line split in two meant. */
		parse_error(p,
		            "an indented line continues the previous value: put every key at the "
		            "start of its own line");
		str[0] = '\n';
		str[1] = '\0';
	} else {
		memcpy(str, line, (size_t)n + 1);
	}
	free(line);
	return str;
}

static int where_add(struct config *c, const char *section, const char *key, int line)
{
	struct config_where *w = realloc(c->where, (c->n_where + 1) * sizeof(*w));

	if (w == NULL)
		return -1;
	c->where = w;
	w[c->n_where].section = strdup(section);
	w[c->n_where].key = strdup(key);
	w[c->n_where].line = line;
	c->n_where++;
	return 0;
}

static bool parse_bool(const char *v, bool *out)
{
	static const char *yes[] = {"yes", "true", "on", "1"};
	static const char *no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return (*out = true);
		if (strcasecmp(v, no[i]) == 0)
			return !(*out = false);
	}
	return false;
}

static bool parse_int(const char *v, int lo, int hi, int *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi)
		return false;
	*out = (int)n;
	return true;
}

static void set_string(char **field, const char *v)
{
	free(*field);
	*field = strdup(v);
}

static void list_add(struct parse *p, char **list, size_t *n, const char *key, const char *v)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(list[i], v) == 0) {
			parse_error(p, "%s = %s is given twice: keep one", key, v);
			return;
		}
	if (*n == CONFIG_MAX_LIST)
		parse_error(p, "%s: at most %d values", key, CONFIG_MAX_LIST);
	else
		list[(*n)++] = strdup(v);
}

static void set_key(struct parse *p, const struct key_def *k, const char *v)
{
	char *base = (char *)p->c;
	bool b;

	switch (k->type) {
	case K_STR:
		set_string((char **)(void *)(base + k->off), v);
		break;
	case K_LIST: {
		char **list = (char **)(void *)(base + k->off);
		size_t *n = (size_t *)(void *)(base + k->count_off);

		list_add(p, list, n, k->key, v);
		break;
	}
	case K_BOOL:
		if (parse_bool(v, &b))
			*(bool *)(void *)(base + k->off) = b;
		else
			parse_error(p, "%s: expected yes or no, not \"%s\"", k->key, v);
		break;
	case K_INT:
		if (!parse_int(v, k->min, k->max, (int *)(void *)(base + k->off)))
			parse_error(p, "%s: expected a whole number from %d to %d, not \"%s\"",
			            k->key, k->min, k->max, v);
		break;
	case K_FLAVOR:
		if (strcmp(v, "openldap") == 0)
			p->c->flavor = FLAVOR_OPENLDAP;
		else if (strcmp(v, "389ds") == 0)
			p->c->flavor = FLAVOR_389DS;
		else if (strcmp(v, "ad") == 0)
			p->c->flavor = FLAVOR_AD;
		else
			parse_error(p, "flavor: expected openldap, 389ds or ad, not \"%s\"", v);
		break;
	}
}

static struct config_grant *grant_get(struct config *c, const char *name)
{
	struct config_grant *g;

	for (size_t i = 0; i < c->n_grants; i++)
		if (strcmp(c->grants[i].name, name) == 0)
			return &c->grants[i];
	g = realloc(c->grants, (c->n_grants + 1) * sizeof(*g));
	if (g == NULL)
		return NULL;
	c->grants = g;
	g = &c->grants[c->n_grants++];
	memset(g, 0, sizeof(*g));
	g->name = strdup(name);
	return g;
}

static struct config_category *category_get(struct config *c, const char *key)
{
	struct config_category *k;

	for (size_t i = 0; i < c->n_categories; i++)
		if (strcmp(c->categories[i].key, key) == 0)
			return &c->categories[i];
	k = realloc(c->categories, (c->n_categories + 1) * sizeof(*k));
	if (k == NULL)
		return NULL;
	c->categories = k;
	k = &c->categories[c->n_categories++];
	k->key = strdup(key);
	k->label = strdup(key);
	k->unit = strdup("次");
	return k;
}

/* A permission or category name: what may appear in a URL path segment. */
static bool valid_name(const char *s)
{
	if (*s == '\0' || strlen(s) > 64)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_' || (*s >= 'A' && *s <= 'Z')))
			return false;
	return true;
}

static void set_grant_key(struct parse *p, const char *name, const char *key, const char *v)
{
	struct config_grant *g;

	if (!valid_name(name)) {
		parse_error(p, "[grant.%s]: a permission name is letters, digits, - and _", name);
		return;
	}
	g = grant_get(p->c, name);
	if (g == NULL)
		parse_error(p, "out of memory");
	else if (strcmp(key, "group") == 0)
		set_string(&g->group, v);
	else if (strcmp(key, "label") == 0)
		set_string(&g->label, v);
	else if (strcmp(key, "max_days") == 0) {
		if (!parse_int(v, 0, 36500, &g->max_days))
			parse_error(p, "max_days: expected days from 0 to 36500, not \"%s\"", v);
	} else if (strcmp(key, "approval") == 0) {
		if (!parse_bool(v, &g->approval))
			parse_error(p, "approval: expected yes or no, not \"%s\"", v);
	} else
		parse_error(p,
		            "unknown key \"%s\" in [grant.%s] (known: group, label, max_days, "
		            "approval)",
		            key, name);
}

static void set_category_key(struct parse *p, const char *name, const char *key, const char *v)
{
	struct config_category *k;

	if (!valid_name(name)) {
		parse_error(p, "[category.%s]: a category key is letters, digits, - and _", name);
		return;
	}
	k = category_get(p->c, name);
	if (k == NULL)
		parse_error(p, "out of memory");
	else if (strcmp(key, "label") == 0)
		set_string(&k->label, v);
	else if (strcmp(key, "unit") == 0)
		set_string(&k->unit, v);
	else
		parse_error(p, "unknown key \"%s\" in [category.%s] (known: label, unit)", key,
		            name);
}

static struct config_scope *scope_get(struct config *c, const char *name)
{
	struct config_scope *k;

	for (size_t i = 0; i < c->n_scopes; i++)
		if (strcmp(c->scopes[i].name, name) == 0)
			return &c->scopes[i];
	if (c->n_scopes == CONFIG_MAX_SCOPES)
		return NULL;
	k = realloc(c->scopes, (c->n_scopes + 1) * sizeof(*k));
	if (k == NULL)
		return NULL;
	c->scopes = k;
	k = &c->scopes[c->n_scopes++];
	memset(k, 0, sizeof(*k));
	k->name = strdup(name);
	return k;
}

static void set_scope_key(struct parse *p, const char *name, const char *key, const char *v)
{
	struct config_scope *k;

	if (!valid_name(name)) {
		parse_error(p, "[scope.%s]: a scope name is letters, digits, - and _", name);
		return;
	}
	k = scope_get(p->c, name);
	if (k == NULL)
		parse_error(p,
		            "too many [scope.*] sections: at most %d (with the three role groups, "
		            "the 64 groups one membership search at login can answer)",
		            CONFIG_MAX_SCOPES);
	else if (strcmp(key, "group") == 0)
		set_string(&k->group, v);
	else if (strcmp(key, "departments") == 0)
		list_add(p, k->departments, &k->n_departments, key, v);
	else if (strcmp(key, "bases") == 0)
		list_add(p, k->bases, &k->n_bases, key, v);
	else
		parse_error(p,
		            "unknown key \"%s\" in [scope.%s] (known: group, departments, bases)",
		            key, name);
}

/* Keys that take several values, one line each. */
static bool list_key(const char *section, const char *name)
{
	return (strcmp(section, "server") == 0 && strcmp(name, "listen") == 0) ||
	       (strcmp(section, "protect") == 0 && strcmp(name, "groups") == 0) ||
	       (strncmp(section, "scope.", 6) == 0 &&
	        (strcmp(name, "departments") == 0 || strcmp(name, "bases") == 0));
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	int first = config_line(p->c, section, name);

	if (first > 0 && !list_key(section, name)) {
		parse_error(p, "%s is given twice in [%s] (first at line %d): keep one", name,
		            section, first);
		return 1;
	}
	if (where_add(p->c, section, name, p->line) == -1) {
		parse_error(p, "out of memory");
		return 0;
	}
	/* "key =" would set an empty DN, attribute or label: every request
	 * would then fail, far from the line that caused it. */
	if (value[0] == '\0') {
		parse_error(p, "[%s] %s has no value: give one, or remove the line for the default",
		            section, name);
		return 1;
	}
	if (strncmp(section, "grant.", 6) == 0) {
		set_grant_key(p, section + 6, name, value);
		return 1;
	}
	if (strncmp(section, "scope.", 6) == 0) {
		set_scope_key(p, section + 6, name, value);
		return 1;
	}
	if (strncmp(section, "category.", 9) == 0) {
		set_category_key(p, section + 9, name, value);
		return 1;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].key, name) == 0) {
			set_key(p, &keys[i], value);
			return 1;
		}
	}
	parse_error(p, "unknown key \"%s\" in [%s]", name, section);
	return 1;
}

int config_default_categories(struct config *c)
{
	int rc = 0;

	for (size_t i = 0; i < sizeof(default_categories) / sizeof(default_categories[0]); i++) {
		struct config_category *k = category_get(c, default_categories[i].key);

		if (k == NULL) {
			rc = -1;
			continue;
		}
		set_string(&k->label, default_categories[i].label);
		set_string(&k->unit, default_categories[i].unit);
	}
	return rc;
}

/* No listen key: DESIGN's address, which the client's default URL names too
 * (https://127.0.0.1:8636). Not set with the other defaults: a listen key in
 * the file replaces it rather than adding to it. */
static void listen_default(struct config *c)
{
	if (c->n_listen == 0 && (c->listen[0] = strdup(CONFIG_LISTEN_DEFAULT)) != NULL)
		c->n_listen = 1;
}

static void config_defaults(struct config *c)
{
	c->session_ttl = 8 * 3600;
	c->session_idle = 1800;
	c->login_failures = 5;
	c->login_failures_per_addr = 20;
	c->login_window = 900;
	c->resets_per_hour = 3;
	c->request_ttl = 72 * 3600;
	c->connections = 1024;
	c->connections_per_addr = 256;
	c->request_seconds = 60;
	c->pool_size = 4;
	c->cache_seconds = 5;
	c->timeout_ms = 5000;
	c->backup_keep = 7;
	c->commit_delay_ms = 4;
	c->user_attr = strdup("uid");
	c->backup_at = strdup("03:00");
	c->flavor = FLAVOR_OPENLDAP;
	(void)config_default_categories(c); /* ENOMEM: caught when a category is used */
}

int config_line(const struct config *c, const char *section, const char *key)
{
	int line = 0;

	for (size_t i = 0; i < c->n_where; i++)
		if (strcmp(c->where[i].section, section) == 0 && strcmp(c->where[i].key, key) == 0)
			line = c->where[i].line;
	return line;
}

char *config_at(const struct config *c, const char *section, const char *key, char *buf, size_t len)
{
	int line = config_line(c, section, key);

	if (line > 0)
		snprintf(buf, len, "%s:%d: [%s] %s: ", c->path, line, section, key);
	else
		snprintf(buf, len, "%s: [%s] %s: ", c->path, section, key);
	return buf;
}

int config_nth_line(const struct config *c, const char *section, const char *key, size_t nth)
{
	for (size_t i = 0; i < c->n_where; i++)
		if (strcmp(c->where[i].section, section) == 0 &&
		    strcmp(c->where[i].key, key) == 0 && nth-- == 0)
			return c->where[i].line;
	return config_line(c, section, key);
}

static int vcheck_fail(const struct config *c, int line, char *err, size_t errlen,
                       const char *section, const char *key, const char *fmt, va_list ap)
    __attribute__((format(printf, 7, 0)));

/* Formats "FILE:LINE: [section] key: reason" and returns -1. */
static int vcheck_fail(const struct config *c, int line, char *err, size_t errlen,
                       const char *section, const char *key, const char *fmt, va_list ap)
{
	char why[320];

	/* clang-analyzer loses track of ap across the callers' va_start. */
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	vsnprintf(why, sizeof(why), fmt, ap);
	if (line > 0)
		snprintf(err, errlen, "%s:%d: [%s] %s: %s", c->path, line, section, key, why);
	else
		snprintf(err, errlen, "%s: [%s] %s: %s", c->path, section, key, why);
	return -1;
}

static int check_fail_nth(const struct config *c, char *err, size_t errlen, const char *section,
                          const char *key, size_t nth, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* As check_fail, naming the line of value nth of a repeated key. */
static int check_fail_nth(const struct config *c, char *err, size_t errlen, const char *section,
                          const char *key, size_t nth, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is just above
	rc = vcheck_fail(c, config_nth_line(c, section, key, nth), err, errlen, section, key, fmt,
	                 ap);
	va_end(ap);
	return rc;
}

static int check_fail(const struct config *c, char *err, size_t errlen, const char *section,
                      const char *key, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int check_fail(const struct config *c, char *err, size_t errlen, const char *section,
                      const char *key, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is just above
	rc = vcheck_fail(c, config_line(c, section, key), err, errlen, section, key, fmt, ap);
	va_end(ap);
	return rc;
}

static int check_required(const struct config *c, char *err, size_t errlen)
{
	static const struct {
		const char *section, *key;
		size_t off;
	} req[] = {
	    {"ldap", "uri", S(uri)},
	    {"ldap", "bind_dn", S(bind_dn)},
	    {"ldap", "bind_password_file", S(bind_password_file)},
	    {"ldap", "user_base", S(user_base)},
	    {"audit", "database", S(database)},
	};

	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++)
		if (*(char *const *)(const void *)((const char *)c + req[i].off) == NULL)
			return check_fail(c, err, errlen, req[i].section, req[i].key,
			                  "missing: this key is required");
	if (c->n_listen == 0) /* only if listen_default ran out of memory */
		return check_fail(c, err, errlen, "server", "listen",
		                  "missing: give host:port or unix:/path");
	return 0;
}

/* Is the address of ss one of this machine's? (A bind to its port 0 says,
 * without taking the port, which a running daemon may hold.) */
static bool address_local(struct sockaddr_storage *ss, int sslen)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool local;

	if (fd == -1)
		return true; /* cannot tell: start-up will */
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)(void *)ss)->sin_port = 0;
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)(void *)ss)->sin6_port = 0;
	local = bind(fd, (struct sockaddr *)ss, (socklen_t)sslen) == 0 || errno != EADDRNOTAVAIL;
	close(fd);
	return local;
}

/* The directory a unix: socket path is made in must exist. */
static bool socket_dir_exists(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		return true;
	*(slash == dir ? slash + 1 : slash) = '\0';
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* TCP listeners must use TLS; a unix socket may be plaintext (DESIGN.md). */
static int check_listen(const struct config *c, const struct config *running, char *err,
                        size_t errlen)
{
	bool same = running != NULL && running->n_listen == c->n_listen;

	/* A reload keeps the bound listeners whatever the file says: a kept
	 * list is not checked again (an address gone since is no reason to
	 * refuse the rest of a reload). */
	for (size_t i = 0; same && i < c->n_listen; i++)
		same = strcmp(running->listen[i], c->listen[i]) == 0;
	if (same)
		return 0;
	for (size_t i = 0; i < c->n_listen; i++) {
		const char *l = c->listen[i], *colon = strrchr(l, ':');
		int port;

		struct sockaddr_storage ss;
		int sslen = sizeof(ss);
		struct stat st;

		/* As http.c will: a socket path fits sun_path, an address is an IP
		 * (names are resolved by the admin), so -n catches what start-up would. */
		if (strncmp(l, "unix:/", 6) == 0) {
			if (strlen(l + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path))
				return check_fail_nth(
				    c, err, errlen, "server", "listen", i,
				    "the socket path %s is longer than %zu bytes", l + 5,
				    sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
			if (!socket_dir_exists(l + 5))
				return check_fail_nth(
				    c, err, errlen, "server", "listen", i,
				    "the directory of the socket %s does not exist", l + 5);
			/* Start-up replaces a stale socket there; anything else
			 * (the audit database, a key) it must never remove. */
			if (lstat(l + 5, &st) == 0 && !S_ISSOCK(st.st_mode))
				return check_fail_nth(c, err, errlen, "server", "listen", i,
				                      "%s exists and is not a socket: choose a "
				                      "path of its own for the "
				                      "socket (e.g. /run/ldapdesk/ldapdeskd.sock)",
				                      l + 5);
			continue;
		}
		if (colon == NULL || colon == l || !parse_int(colon + 1, 1, 65535, &port))
			return check_fail_nth(c, err, errlen, "server", "listen", i,
			                      "\"%s\" is neither IP:PORT nor unix:/PATH", l);
		if (evutil_parse_sockaddr_port(l, (struct sockaddr *)&ss, &sslen) == -1)
			return check_fail_nth(
			    c, err, errlen, "server", "listen", i,
			    "\"%s\" is not IP:PORT (use 127.0.0.1:8636 or [::1]:8636; "
			    "host names are not resolved)",
			    l);
		if (!address_local(&ss, sslen))
			return check_fail_nth(c, err, errlen, "server", "listen", i,
			                      "%s is not an address of this machine", l);
		if (c->tls_cert == NULL || c->tls_key == NULL)
			return check_fail_nth(c, err, errlen, "server", "listen", i,
			                      "%s is a TCP listener: set tls_cert and tls_key "
			                      "(plaintext is allowed only on unix: sockets)",
			                      l);
	}
	return 0;
}

static int check_readable(const struct config *c, char *err, size_t errlen, const char *section,
                          const char *key, const char *path)
{
	struct stat st;
	FILE *fp;

	if (path == NULL)
		return 0;
	/* Asked first: opening a FIFO would block (a reload on the loop). */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return check_fail(c, err, errlen, section, key, "%s is not a file", path);
	fp = fopen(path, "r");
	if (fp == NULL)
		return check_fail(c, err, errlen, section, key, "cannot read %s: %s", path,
		                  strerror(errno));
	fclose(fp);
	return 0;
}

/* The directory's CA file (read by libldap when a connection is made: a
 * bad one would show only as every connection failing): PEM certificates. */
static int check_pem(const struct config *c, char *err, size_t errlen)
{
	char buf[65536];
	size_t n;
	FILE *fp;

	if (c->ca_file == NULL || (fp = fopen(c->ca_file, "r")) == NULL)
		return 0; /* check_readable says why */
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	if (strstr(buf, "-----BEGIN CERTIFICATE-----") != NULL)
		return 0;
	return check_fail(c, err, errlen, "ldap", "ca_file",
	                  "%s holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the "
	                  "CA that signed the directory's certificate",
	                  c->ca_file);
}

/* A backup_dir that exists must be a directory (one that does not is made
 * at start-up). */
static int check_backup_dir(const struct config *c, char *err, size_t errlen)
{
	struct stat st;

	if (c->backup_dir == NULL || stat(c->backup_dir, &st) == -1 || S_ISDIR(st.st_mode))
		return 0;
	return check_fail(c, err, errlen, "audit", "backup_dir",
	                  "%s is not a directory: name a directory (it is made if missing)",
	                  c->backup_dir);
}

/* The service password: from a file only the daemon's user can read. */
static int read_secret(struct config *c, const struct config *running, char *err, size_t errlen)
{
	const char *f = c->bind_password_file;
	char buf[CONFIG_SECRET_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd = open(f, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */

	if (fd == -1 && errno == EACCES && running != NULL && running->bind_password != NULL &&
	    running->bind_password_file != NULL && strcmp(running->bind_password_file, f) == 0) {
		c->password_kept = true;
		c->bind_password = strdup(running->bind_password);
		return c->bind_password != NULL ? 0 : -1;
	}
	if (fd == -1)
		return check_fail(c, err, errlen, "ldap", "bind_password_file",
		                  "cannot open %s: %s", f, strerror(errno));
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		return check_fail(c, err, errlen, "ldap", "bind_password_file", "%s is not a file",
		                  f);
	}
	if (fstat(fd, &st) == -1 || (st.st_mode & 077) != 0) {
		close(fd);
		return check_fail(c, err, errlen, "ldap", "bind_password_file",
		                  "%s is %s by group or others: chmod 600 %s", f,
		                  (st.st_mode & 044) != 0 ? "readable" : "writable or executable",
		                  f);
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n <= 0 || n > CONFIG_SECRET_MAX) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return check_fail(c, err, errlen, "ldap", "bind_password_file",
		                  "%s must hold the password (1 to %d bytes)", f,
		                  CONFIG_SECRET_MAX);
	}
	c->bind_password = strndup(buf, (size_t)n);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

static bool tzif_file(const char *path)
{
	char magic[4];
	FILE *fp = fopen(path, "rb");
	bool ok = fp != NULL && fread(magic, 1, 4, fp) == 4 && memcmp(magic, "TZif", 4) == 0;

	if (fp != NULL)
		fclose(fp);
	return ok;
}

/* The first line of [section] that holds a key, or 0 if none was read. */
static int section_line(const struct config *c, const char *section)
{
	int line = 0;

	for (size_t i = 0; i < c->n_where; i++)
		if (strcmp(c->where[i].section, section) == 0 &&
		    (line == 0 || c->where[i].line < line))
			line = c->where[i].line;
	return line;
}

/* "FILE:LINE: [section] what" for a section that lacks a key, and -1. */
static int section_fail(const struct config *c, char *err, size_t errlen, const char *kind,
                        const char *name, const char *what)
{
	char section[256];
	int line;

	snprintf(section, sizeof(section), "%s.%s", kind, name);
	line = section_line(c, section);
	if (line > 0)
		snprintf(err, errlen, "%s:%d: [%s] %s", c->path, line, section, what);
	else
		snprintf(err, errlen, "%s: [%s] %s", c->path, section, what);
	return -1;
}

static int check_misc(const struct config *c, char *err, size_t errlen)
{
	int hh, mm;
	char tzpath[300];

	if (strncmp(c->uri, "ldap://", 7) != 0 && strncmp(c->uri, "ldaps://", 8) != 0)
		return check_fail(c, err, errlen, "ldap", "uri",
		                  "\"%s\" is not an ldap:// or ldaps:// URI", c->uri);
	/* Exactly HH:MM: sscanf alone took "3:00 pm" as 03:00. */
	if (strlen(c->backup_at) != 5 || !isdigit((unsigned char)c->backup_at[0]) ||
	    !isdigit((unsigned char)c->backup_at[1]) || c->backup_at[2] != ':' ||
	    !isdigit((unsigned char)c->backup_at[3]) || !isdigit((unsigned char)c->backup_at[4]) ||
	    sscanf(c->backup_at, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
		return check_fail(c, err, errlen, "audit", "backup_at",
		                  "expected HH:MM (00:00 to 23:59), not \"%s\"", c->backup_at);
	if (c->timezone != NULL) {
		snprintf(tzpath, sizeof(tzpath), "/usr/share/zoneinfo/%s", c->timezone);
		/* A zone file, not a directory (Asia) or a table (zone.tab): glibc
		 * would fall back to UTC without a word. */
		if (c->timezone[0] == '\0' || c->timezone[0] == '/' ||
		    strstr(c->timezone, "..") != NULL || !tzif_file(tzpath))
			return check_fail(c, err, errlen, "server", "timezone",
			                  "unknown time zone \"%s\" (e.g. Asia/Shanghai)",
			                  c->timezone);
	}
	for (size_t i = 0; i < c->n_scopes; i++)
		if (c->scopes[i].group == NULL ||
		    c->scopes[i].n_departments + c->scopes[i].n_bases == 0)
			return section_fail(
			    c, err, errlen, "scope", c->scopes[i].name,
			    "needs group = GROUP_DN and at least one of departments = "
			    "NAME or bases = DN");
	for (size_t i = 0; i < c->n_grants; i++)
		if (c->grants[i].group == NULL)
			return section_fail(c, err, errlen, "grant", c->grants[i].name,
			                    "has no group: set group = GROUP_DN");
	if (c->role_helpdesk == NULL && c->role_admin == NULL && c->role_auditor == NULL)
		return check_fail(c, err, errlen, "roles", "admin",
		                  "no role groups: set helpdesk, admin and auditor");
	return 0;
}

/* Files are named absolutely: under systemd a relative name resolves
 * against /, and an empty database name is a throw-away SQLite store. */
static int check_paths(const struct config *c, char *err, size_t errlen)
{
	const struct {
		const char *section, *key, *path;
	} p[] = {
	    {"server", "tls_cert", c->tls_cert},
	    {"server", "tls_key", c->tls_key},
	    {"server", "key_file", c->key_file},
	    {"server", "client_ca", c->client_ca},
	    {"ldap", "ca_file", c->ca_file},
	    {"ldap", "bind_password_file", c->bind_password_file},
	    {"audit", "database", c->database},
	    {"audit", "backup_dir", c->backup_dir},
	};

	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		if (p[i].path != NULL && p[i].path[0] != '/')
			return check_fail(c, err, errlen, p[i].section, p[i].key,
			                  "\"%s\" is not an absolute path (start it with /)",
			                  p[i].path);
	return 0;
}

/* The directory path is in (or, for backup_dir, would be made in) exists:
 * found missing only when the daemon first writes there, it would stop
 * with a bare "unable to open database file". */
static int check_dir_of(const struct config *c, char *err, size_t errlen, const char *section,
                        const char *key, const char *path)
{
	char dir[4096];
	char *slash;
	struct stat st;

	if (path == NULL)
		return 0;
	snprintf(dir, sizeof(dir), "%s", path);
	/* "/var/lib/ldapdesk/backups/" names backups, not the directory it is in. */
	for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
		dir[n - 1] = '\0';
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return 0;
	*(slash == dir ? slash + 1 : slash) = '\0';
	if (stat(dir, &st) == -1)
		return check_fail(c, err, errlen, section, key, "the directory %s does not exist%s",
		                  dir, errno == EACCES ? " or cannot be read" : "");
	if (!S_ISDIR(st.st_mode))
		return check_fail(c, err, errlen, section, key, "%s is not a directory", dir);
	return 0;
}

/* May uid (in groups) do what mode bits u, g, o grant on st? */
static bool may(const struct stat *st, uid_t uid, const gid_t *groups, int n, mode_t u, mode_t g,
                mode_t o)
{
	if (st->st_uid == uid)
		return (st->st_mode & u) != 0;
	for (int i = 0; i < n; i++)
		if (st->st_gid == groups[i])
			return (st->st_mode & g) != 0;
	return (st->st_mode & o) != 0;
}

/* Can pw's user read path (search every directory above it, read it)? By
 * the mode bits: checked as root before the drop (ACLs are not read). */
static bool user_can_read(const char *path, const struct passwd *pw)
{
	gid_t *groups = NULL;
	int n = 64;
	char dir[4096];
	struct stat st;
	bool ok = true;

	/* getgrouplist says how many there are when the array is too small. */
	for (int tries = 0; tries < 2; tries++) {
		free(groups);
		if ((groups = calloc((size_t)n, sizeof(*groups))) == NULL)
			return true; /* not known: start-up will say */
		if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) != -1)
			break;
		if (tries == 1)
			n = 0;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *slash = strchr(dir + 1, '/'); ok && slash != NULL;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (stat(dir, &st) == 0 &&
		    !may(&st, pw->pw_uid, groups, n, S_IXUSR, S_IXGRP, S_IXOTH))
			ok = false;
		*slash = '/';
	}
	ok = ok && stat(path, &st) == 0 &&
	     may(&st, pw->pw_uid, groups, n, S_IRUSR, S_IRGRP, S_IROTH);
	free(groups);
	return ok;
}

static int check_user(const struct config *c, const struct config *running, char *err,
                      size_t errlen)
{
	const struct passwd *pw = c->user != NULL ? getpwnam(c->user) : NULL;

	if (c->user != NULL && pw == NULL)
		return check_fail(c, err, errlen, "server", "user", "no such user \"%s\"", c->user);
	/* Only root can become another user (start-up would fail at the first
	 * file it hands over, saying "Operation not permitted"). */
	/* (On a reload the user is a start-only key: the one running stays.) */
	if (running == NULL && pw != NULL && geteuid() != 0 && pw->pw_uid != geteuid())
		return check_fail(
		    c, err, errlen, "server", "user",
		    "ldapdeskd runs as uid %u, not root, so it cannot become %s: remove "
		    "the key (a service manager's User= already sets the user) or start "
		    "it as root",
		    (unsigned)geteuid(), c->user);
	/* libldap reads ca_file for each new connection, after the drop to
	 * the user: unreadable then, every connection would fail as if the
	 * directory's certificate did not verify. */
	if (pw != NULL && pw->pw_uid != 0 && geteuid() == 0 && c->ca_file != NULL &&
	    !user_can_read(c->ca_file, pw))
		return check_fail(c, err, errlen, "ldap", "ca_file",
		                  "%s cannot be read by %s, the [server] user the daemon runs as: "
		                  "make it (and the directories above it) readable to that user",
		                  c->ca_file, c->user);
	return 0;
}

/* A session key start-up would refuse (readable by others, wrong size),
 * found by -n too. (Only stat: the key is the session store's to read.) */
static int check_existing(const struct config *c, char *err, size_t errlen)
{
	struct stat st;

	if (c->key_file != NULL && stat(c->key_file, &st) == 0 &&
	    ((st.st_mode & 077) != 0 || st.st_size != 32))
		return check_fail(
		    c, err, errlen, "server", "key_file",
		    "the session key %s must be 32 bytes and mode 0600 (chmod 0600 it, "
		    "or delete it to make a new one; open sessions then end)",
		    c->key_file);
	return 0;
}

/* A start-only file a reload leaves as it is running (reload_keep keeps
 * its value): not read again. */
static bool start_only(const struct config *running, const char *now, size_t off)
{
	const char *was =
	    running != NULL ? *(char *const *)(const void *)((const char *)running + off) : NULL;

	return running != NULL && now != NULL && was != NULL && strcmp(now, was) == 0;
}

/* The TLS key is a secret like the bind password, but Debian's own keys
 * are often root:ssl-cert 0640: group may read it, others may not. */
static int check_key_mode(const struct config *c, char *err, size_t errlen)
{
	struct stat st;

	if (c->tls_key == NULL || stat(c->tls_key, &st) == -1 || (st.st_mode & S_IROTH) == 0)
		return 0;
	return check_fail(c, err, errlen, "server", "tls_key",
	                  "the private key %s is readable by anyone: chmod o-r %s (or 600)",
	                  c->tls_key, c->tls_key);
}

/* A TLS file. On a reload one the user ldapdeskd dropped to cannot read
 * (EACCES) passes: the running files then stay, with a warning (main.c,
 * reload_tls); root reads it at the next start. */
static int check_tls_file(const struct config *c, const struct config *running, char *err,
                          size_t errlen, const char *key, const char *path)
{
	if (running != NULL && path != NULL && access(path, R_OK) == -1 && errno == EACCES)
		return 0;
	return check_readable(c, err, errlen, "server", key, path);
}

static int check_started(const struct config *c, const struct config *running, char *err,
                         size_t errlen)
{
	return check_tls_file(c, running, err, errlen, "tls_cert", c->tls_cert) == -1 ||
	               check_tls_file(c, running, err, errlen, "tls_key", c->tls_key) == -1 ||
	               check_key_mode(c, err, errlen) == -1 ||
	               check_tls_file(c, running, err, errlen, "client_ca", c->client_ca) == -1
	           ? -1
	           : 0;
}

static int config_check(struct config *c, const struct config *running, char *err, size_t errlen)
{
	if (check_required(c, err, errlen) == -1 || check_paths(c, err, errlen) == -1 ||
	    check_listen(c, running, err, errlen) == -1 || check_misc(c, err, errlen) == -1 ||
	    check_started(c, running, err, errlen) == -1 ||
	    check_readable(c, err, errlen, "ldap", "ca_file", c->ca_file) == -1 ||
	    check_pem(c, err, errlen) == -1)
		return -1;
	if (check_user(c, running, err, errlen) == -1 || check_backup_dir(c, err, errlen) == -1 ||
	    check_dir_of(c, err, errlen, "audit", "database", c->database) == -1 ||
	    check_dir_of(c, err, errlen, "server", "key_file", c->key_file) == -1 ||
	    check_dir_of(c, err, errlen, "audit", "backup_dir", c->backup_dir) == -1)
		return -1;
	if (c->key_file == NULL && asprintf(&c->key_file, "%s.key", c->database) == -1)
		return -1;
	if (!start_only(running, c->key_file, offsetof(struct config, key_file)) &&
	    check_existing(c, err, errlen) == -1)
		return -1;
	return read_secret(c, running, err, errlen);
}

/* Defaults that depend on the flavour, for keys the file leaves out: AD
 * names its accounts by sAMAccountName, which has no uid (with "uid", every
 * login was a wrong password and every user "no such user"). */
static int flavor_defaults(struct config *c, char *err, size_t errlen)
{
	if (c->flavor != FLAVOR_AD || config_line(c, "ldap", "user_attr") != 0)
		return 0;
	free(c->user_attr);
	if ((c->user_attr = strdup("sAMAccountName")) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int load(const char *path, const struct config *running, struct config **cp, char *err,
                size_t errlen)
{
	struct stat st;
	struct parse p = {0};
	int rc;

	/* A directory opens for reading, and reads as an empty file. (A pipe,
	 * -c /dev/stdin, is fine.) */
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: a directory, not a file: give the configuration file",
		         path);
		return -1;
	}
	p.c = calloc(1, sizeof(*p.c));
	p.fp = fopen(path, "r");
	if (p.c == NULL || p.fp == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		free(p.c);
		if (p.fp != NULL)
			fclose(p.fp);
		return -1;
	}
	p.c->path = strdup(path);
	config_defaults(p.c);
	rc = ini_parse_stream(config_reader, &p, config_handler, &p);
	fclose(p.fp);
	/* inih's own first error (a "[section" without "]") comes before any
	 * of the handler's that it causes (keys then read in the wrong section). */
	if (rc > 0 && (p.err_line == 0 || rc < p.err_line))
		snprintf(p.err, sizeof(p.err), "syntax error: expected [section] or key = value"),
		    p.err_line = rc;
	if (p.err_line != 0) {
		snprintf(err, errlen, "%s:%d: %s", path, p.err_line, p.err);
		config_free(p.c);
		return -1;
	}
	listen_default(p.c);
	if (flavor_defaults(p.c, err, errlen) == -1 ||
	    config_check(p.c, running, err, errlen) == -1) {
		config_free(p.c);
		return -1;
	}
	*cp = p.c;
	return 0;
}

/* The object is never const itself (calloc'ed by load): holders get a const
 * pointer only so that they cannot change what they read. */
const struct config *config_ref(const struct config *c)
{
	atomic_fetch_add(&((struct config *)(uintptr_t)c)->refs, 2);
	return c;
}

void config_unref(const struct config *c)
{
	struct config *m = (struct config *)(uintptr_t)c;

	if (m != NULL && atomic_fetch_sub(&m->refs, 2) == 3)
		config_free(m);
}

void config_retire(struct config *c)
{
	if (c != NULL && atomic_fetch_or(&c->refs, 1) == 0)
		config_free(c);
}

int config_load(const char *path, struct config **cp, char *err, size_t errlen)
{
	return load(path, NULL, cp, err, errlen);
}

int config_reload(const char *path, const struct config *running, struct config **cp, char *err,
                  size_t errlen)
{
	return load(path, running, cp, err, errlen);
}

void config_free(struct config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *base = (char *)c;

		if (keys[i].type == K_STR)
			free(*(char **)(void *)(base + keys[i].off));
	}
	for (size_t i = 0; i < c->n_listen; i++)
		free(c->listen[i]);
	for (size_t i = 0; i < c->n_protect; i++)
		free(c->protect[i]);
	for (size_t i = 0; i < c->n_grants; i++) {
		free(c->grants[i].name);
		free(c->grants[i].group);
		free(c->grants[i].label);
	}
	for (size_t i = 0; i < c->n_categories; i++) {
		free(c->categories[i].key);
		free(c->categories[i].label);
		free(c->categories[i].unit);
	}
	for (size_t i = 0; i < c->n_where; i++) {
		free(c->where[i].section);
		free(c->where[i].key);
	}
	if (c->bind_password != NULL) {
		OPENSSL_cleanse(c->bind_password, strlen(c->bind_password));
		free(c->bind_password);
	}
	for (size_t i = 0; i < c->n_scopes; i++) {
		struct config_scope *k = &c->scopes[i];

		for (size_t j = 0; j < k->n_departments; j++)
			free(k->departments[j]);
		for (size_t j = 0; j < k->n_bases; j++)
			free(k->bases[j]);
		free(k->name);
		free(k->group);
	}
	free(c->scopes);
	free(c->grants);
	free(c->categories);
	free(c->where);
	free(c->path);
	free(c);
}

const struct config_grant *config_grant(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_grants; i++)
		if (strcmp(c->grants[i].name, name) == 0)
			return &c->grants[i];
	return NULL;
}

const struct config_category *config_category(const struct config *c, const char *key)
{
	for (size_t i = 0; i < c->n_categories; i++)
		if (strcmp(c->categories[i].key, key) == 0)
			return &c->categories[i];
	return NULL;
}
