/*
 * config.h — the daemon's INI configuration (read with libinih). A config is
 * an immutable snapshot: reload builds a new one and swaps it whole.
 */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MAX_LIST 16
/* Role groups (3) and scope groups share one 64-bit membership mask
 * (dir_member_of): a scope past it would never be found, and its members
 * would act unscoped. */
#define CONFIG_MAX_SCOPES 61

enum config_flavor { FLAVOR_OPENLDAP, FLAVOR_389DS, FLAVOR_AD };

struct config_grant {
	char *name;  /* [grant.NAME] */
	char *group; /* group DN */
	char *label;
	int max_days; /* 0 = no limit */
	bool approval;
};

/* A delegation scope: members of group act only on users of these
 * departments (attribute ou) or under these bases (union). */
struct config_scope {
	char *name;
	char *group;
	char *departments[CONFIG_MAX_LIST];
	size_t n_departments;
	char *bases[CONFIG_MAX_LIST];
	size_t n_bases;
};

struct config_category {
	char *key;
	char *label;
	char *unit;
};

/* [server] listen when the file gives none (DESIGN's address). */
#define CONFIG_LISTEN_DEFAULT "127.0.0.1:8636"

struct config {
	char *path;
	/* [server] */
	char *listen[CONFIG_MAX_LIST];
	size_t n_listen;
	char *tls_cert, *tls_key, *user, *key_file, *timezone;
	int session_ttl;  /* seconds a login lasts */
	int session_idle; /* seconds a session may go unused; roles re-read as often */
	char *client_ca;  /* require client certificates signed by this CA (mTLS) */
	/* [ldap] */
	char *group_base; /* where group memberships are searched (moves, deletes) */
	char *user_dn;    /* [lifecycle] template of a new user's DN */
	char *uri, *ca_file, *bind_dn, *bind_password_file, *user_base, *user_attr, *policy_dn;
	char *bind_password; /* read from bind_password_file; wiped on free */
	bool password_kept;  /* config_reload: the running one, the file unreadable */
	bool starttls;
	enum config_flavor flavor;
	int pool_size, timeout_ms;
	int cache_seconds; /* protected-membership snapshot lifetime; 0: search per request */
	/* [audit] */
	char *database, *backup_dir, *backup_at;
	int backup_keep;
	int commit_delay_ms; /* group commit: longest wait for more records (0: none) */
	/* [roles] */
	char *role_helpdesk, *role_admin, *role_auditor;
	/* [protect] */
	char *protect[CONFIG_MAX_LIST];
	size_t n_protect;
	/* [limits] */
	int login_failures;          /* failed logins per operator per window */
	int login_failures_per_addr; /* failed logins per source address per window */
	int login_window;            /* seconds */
	int resets_per_hour;         /* resets of one user per hour by helpdesk */
	int request_ttl;             /* seconds a four-eyes request waits for approval */
	int connections;             /* TCP connections open at once */
	int connections_per_addr;    /* ... from one address */
	int request_seconds;         /* a request's head and body arrive within this */
	struct config_grant *grants;
	size_t n_grants;
	struct config_scope *scopes;
	size_t n_scopes;
	struct config_category *categories;
	size_t n_categories;
	/* where each key was set, for FILE:LINE in later checks */
	struct config_where *where;
	size_t n_where;
	/* 2 per config_ref holder, + 1 once retired: one word, so that the last
	 * release and the retirement cannot both free it. */
	atomic_uint refs;
};

/* Reads and checks path. Return: 0 and *cp (caller frees with config_free), or
 * -1 with err = "FILE:LINE: what is wrong" (or "FILE: ..." without a line). */
int config_load(const char *path, struct config **cp, char *err, size_t errlen);

/* config_load for a reload beside running (which the daemon keeps using for
 * its start-only keys): those files are not read again — after a drop to
 * [server] user they may be readable by root only — and a bind_password_file
 * at the same path that cannot be read any more (EACCES) keeps running's
 * password, with password_kept set for the caller to say so. */
int config_reload(const char *path, const struct config *running, struct config **cp, char *err,
                  size_t errlen);
void config_free(struct config *c);

/*
 * A reload replaces the configuration while requests, jobs and directory
 * threads that started under the old one still read it. Each of them holds a
 * reference (config_ref, returns c) and drops it when done (config_unref);
 * the daemon retires the one it replaces (config_retire). A configuration is
 * freed when it is retired and no one holds it any more, whichever comes last.
 * One never retired (tests, the one in force) is never freed by an unref.
 * Both may be called from any thread.
 */
const struct config *config_ref(const struct config *c);
void config_unref(const struct config *c);
void config_retire(struct config *c);

/* Line where [section] key was last set, 0 if it was not. */
int config_line(const struct config *c, const char *section, const char *key);

#define CONFIG_AT_MAX 4200

/* "FILE:LINE: [section] key: " for a message about that key, into buf (no
 * ":LINE" when the key was not set: its default is at fault). Return: buf. */
char *config_at(const struct config *c, const char *section, const char *key, char *buf,
                size_t len);

/* Line of the value nth (from 0) of a key that repeats (listen, groups,
 * bases: one value per line, in file order); config_line when there are
 * fewer. */
int config_nth_line(const struct config *c, const char *section, const char *key, size_t nth);

/* The [grant.NAME] entry, or NULL. */
const struct config_grant *config_grant(const struct config *c, const char *name);

/* Adds the built-in categories of DESIGN.md to c (config_load starts from
 * them; reports and tests built without a file call it). Return: 0, or -1 if
 * memory ran out (c keeps what was added). */
int config_default_categories(struct config *c);

/* The category KEY (built-in or configured), or NULL. */
const struct config_category *config_category(const struct config *c, const char *key);
