/*
 * dir.c — the directory pool. Service connections are set up (connect,
 * StartTLS, bind) in a short-lived thread, because libldap blocks there; once
 * up, every operation is sent with the asynchronous API and its reply read
 * from a libevent read event on the connection's socket. Operations wait in
 * a bounded queue while no connection has room, each under its own timer.
 */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <lber.h>
#include <ldap.h>
#include <openssl/crypto.h>

#include "clock.h"
#include "config.h"
#include "dir.h"
#include "fds.h"
#include "passgen.h"
#include "ucache.h"
#include "ldapdesk/ascii.h"
#include "log.h"
#include "ldapdesk/wire.h"

#define DIR_QUEUE_MAX     4096   /* operations waiting for a connection */
#define DIR_VALUES_MAX    100000 /* OP_VALUES: values read at once */
#define DIR_DNS_MAX       1000   /* OP_SEARCH_DNS: entries (its size limit, kept by us too) */
#define DIR_INFLIGHT_MAX  32     /* per connection; slapd runs 8 at once, queues 1000 */
#define DIR_READ_BURST    256    /* passes of one conn_read_cb call */
#define DIR_BIND_THREADS  16     /* operator bind checks at once */
#define DIR_BACKOFF_MAX_S 30
#define DIR_POLICY_EVERY  300
#define DIR_ASSERTS       8 /* assertion filters kept encoded (assert_value) */

enum op_type {
	OP_DISABLE,
	OP_ENABLE,
	OP_SET_OU,
	OP_RENAME,
	OP_DELETE_ENTRY,
	OP_ADD_ENTRY,
	OP_SEARCH_DNS,
	OP_VALUES,
	OP_SEARCH_USER,
	OP_MEMBER,
	OP_UNLOCK,
	OP_PASSWD,
	OP_PWDRESET,
	OP_ADD,
	OP_DEL,
	OP_GROUP_CLASS,
	OP_POLICY
};

/* OP_VALUES's value for dir_read_members (not an attribute name). */
#define VALUES_MEMBERS "+members"

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_UP };

struct dir_conn {
	struct dir *d;
	const struct config *conf; /* held (config_ref) while the set-up thread runs */
	int idx;
	enum conn_state state;
	LDAP *ld;
	struct event *rev;
	struct event *done_ev; /* activated by the set-up thread */
	struct event *retry_ev;
	pthread_t thread;
	LDAP *new_ld; /* set-up result, handed over by the thread */
	char setup_err[256];
	int backoff;
	int inflight;
	unsigned long link_gen; /* d->link_gen when it connected: older = to be renewed */
	bool corked;            /* TCP_CORK set for this dispatch round */
	int round_sent;         /* requests sent in this dispatch round */
};

struct dir_op {
	TAILQ_ENTRY(dir_op) entry;
	struct dir *d;
	unsigned long gen;     /* d->gen when made: a reload since makes its finds stale */
	struct dir_conn *conn; /* NULL while queued */
	enum op_type type;
	int msgid;
	struct event *timer;
	char *dn, *value, *value2, *secret;
	char **pairs;    /* OP_ADD_ENTRY: attr, value, ..., NULL (owned) */
	char **dns;      /* OP_SEARCH_DNS: entries found; OP_VALUES: values (freed by op_free) */
	char *assertion; /* modify: RFC 4528 filter the entry must match, or NULL */
	bool too_many;   /* more than DIR_VALUES_MAX values, or DIR_DNS_MAX entries */
	bool lost;       /* OP_SEARCH_DNS: an entry could not be kept (memory) */
	size_t n_dns;
	struct dir_user *user;
	int entries;
	bool was_set;          /* OP_UNLOCK: the user was locked when last read */
	unsigned long account; /* OP_DISABLE, OP_ENABLE: AD userAccountControl as read */
	enum op_type change;   /* OP_GROUP_CLASS: the OP_ADD or OP_DEL it follows */
	int scope;             /* OP_POLICY: LDAP_SCOPE_BASE or _SUBTREE */
	union {
		dir_user_fn user;
		dir_done_fn done;
		dir_dns_fn dns;
	} fn;
	void *arg;
};
TAILQ_HEAD(op_list, dir_op);

/* Password policies kept beside the default one; more are ignored (a user
 * under one of those counts as locked until unlocked). */
#define DIR_MAX_POLICIES      32
#define DIR_POLICY_SEARCH_MAX 256 /* entries read per refresh (size limit) */

/* What the daemon reads of a password policy: a pwdPolicy entry (OpenLDAP),
 * or 389 DS's global one (cn=config) and its local passwordPolicy entries. */
struct dir_policy {
	char *dn;         /* NULL for the default one */
	long duration;    /* pwdLockoutDuration; 389 DS: passwordLockoutDuration */
	long reset_after; /* 389 DS: passwordResetFailureCount (others: unused) */
	long max_age;     /* pwdMaxAge; 389 DS: passwordMaxAge when passwordExp is on (0: none) */
	bool must_change; /* pwdMustChange, passwordMustChange (both default to off) */
	bool read;        /* read from the directory (false: assumed, see user_policy) */
	int min_length;   /* pwdMinLength, passwordMinLength, AD minPwdLength (0: none) */
};

/* 389 DS keeps its global password policy in this entry; the service
 * account needs read access to it (README, Directory flavours). */
#define DS389_CONFIG_DN "cn=config"

struct dir {
	struct event_base *base;
	const struct config *conf;
	struct dir_conn *conns;
	int n_conns;
	struct op_list queue;  /* waiting for a connection */
	struct op_list flight; /* sent, waiting for a reply */
	int queued;
	int bind_threads;
	time_t last_answer;     /* when slapd last answered anything (dir_last_answer) */
	bool unanswered;        /* an operation timed out, and nothing answered since */
	bool pinging;           /* dir_answering's read is in flight: one at a time */
	unsigned long gen;      /* configurations set (dir_set_config) */
	unsigned long link_gen; /* reloads that changed how connections are made */
	/* The default policy (policy_dn; 389 DS: cn=config); def.duration -1 =
	 * not read yet. */
	struct dir_policy def;
	/* Every other policy (OpenLDAP: pwdPolicy beside policy_dn; 389 DS: the
	 * local ones under user_base), for users whose pwdPolicySubentry names
	 * one; a refresh fills next and swaps it in. */
	struct dir_policy policies[DIR_MAX_POLICIES], next[DIR_MAX_POLICIES];
	size_t n_policies, n_next;
	int policy_pending; /* searches of the refresh under way not answered yet */
	bool policy_default_seen;
	bool policy_warned;        /* 389 DS: said once that cn=config cannot be read */
	enum dir_status policy_st; /* the refresh's first failure, with policy_err */
	char policy_err[256];
	struct event *policy_ev;
	struct event *dispatch_ev;
	struct event *renew_ev; /* conn_renew_cb, activated when a stale connection idles */
	TAILQ_HEAD(, bind_job) binds;
	struct ucache *users; /* uid -> DN, for asserted unlocks */
	unsigned long long cache_hits, cache_misses;
	/* Assertion controls' values by filter (assert_value), replaced in turn. */
	struct assert_entry {
		char *filter;
		struct berval value; /* BER, libldap's memory */
	} asserts[DIR_ASSERTS];
	unsigned assert_next;
	/* lock_clause's last answer: the same for every unlock of one second. */
	struct {
		time_t at;
		long duration;
		const char *attr;
		char clause[192];
	} lock_clause;
};

static void conn_connect(struct dir_conn *c);
static void dir_dispatch(struct dir *d);
static void dispatch_queue(struct dir *d, bool cork);
static void op_finish(struct dir_op *op, enum dir_status st, const char *err);
static const char *partial_message(const struct dir_op *op, enum dir_status st, const char *err,
                                   char *buf, size_t len);

bool dir_valid_uid(const char *s)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++, n++) {
		if (*p >= 0x80 || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_' || *p == '@')
			continue;
		return false;
	}
	/* "." and ".." are path segments, not names: a URL holding them is
	 * rewritten by clients (RFC 3986 dot segments) into another endpoint. */
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	return n > 0 && n <= LDAPDESK_MAX_UID;
}

/* The names RFC 4519 gives the attributes DNs are made of, and their OIDs:
 * slapd takes "commonName=x" or "2.5.4.3=x" for "cn=x" and names entries
 * by the short name, so a DN in the configuration spelled either way must
 * compare equal to the one the directory returns. */
static const char *const attr_alias[][3] = {
    {"cn", "commonname", "2.5.4.3"},
    {"sn", "surname", "2.5.4.4"},
    {"c", "countryname", "2.5.4.6"},
    {"l", "localityname", "2.5.4.7"},
    {"st", "stateorprovincename", "2.5.4.8"},
    {"street", "streetaddress", "2.5.4.9"},
    {"o", "organizationname", "2.5.4.10"},
    {"ou", "organizationalunitname", "2.5.4.11"},
    {"dc", "domaincomponent", "0.9.2342.19200300.100.1.25"},
    {"uid", "userid", "0.9.2342.19200300.100.1.1"},
};

/* An AVA's attribute named by its short name when it has one. The name
 * libldap allocated apart (LDAP_AVA_FREE_ATTR) is freed; the short name is
 * static, which ldap_dnfree then leaves alone. */
static void ava_short_name(LDAPAVA *ava)
{
	for (size_t i = 0; i < sizeof(attr_alias) / sizeof(attr_alias[0]); i++) {
		const char *short_name = attr_alias[i][0];

		if ((ava->la_attr.bv_len != strlen(attr_alias[i][1]) ||
		     strncasecmp(ava->la_attr.bv_val, attr_alias[i][1], ava->la_attr.bv_len) !=
		         0) &&
		    (ava->la_attr.bv_len != strlen(attr_alias[i][2]) ||
		     strncmp(ava->la_attr.bv_val, attr_alias[i][2], ava->la_attr.bv_len) != 0))
			continue;
		if (ava->la_flags & LDAP_AVA_FREE_ATTR)
			ber_memfree(ava->la_attr.bv_val);
		ava->la_flags &= ~LDAP_AVA_FREE_ATTR;
		ava->la_attr.bv_val = (char *)short_name;
		ava->la_attr.bv_len = strlen(short_name);
		return;
	}
}

char *dir_dn_canon(const char *dn)
{
	LDAPDN parsed = NULL;
	char *ndn = NULL, *out = NULL;

	if (ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
		return NULL;
	for (size_t i = 0; parsed != NULL && parsed[i] != NULL; i++)
		for (size_t j = 0; parsed[i][j] != NULL; j++)
			ava_short_name(parsed[i][j]);
	if (ldap_dn2str(parsed, &ndn, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS && ndn != NULL)
		out = ascii_lower(strdup(ndn));
	ldap_memfree(ndn);
	ldap_dnfree(parsed);
	return out;
}

/* A DN (RFC 4514) with at least one RDN. */
static bool dn_ok(const char *dn)
{
	LDAPDN parsed = NULL;
	bool ok = dn[0] != '\0' &&
	          ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS && parsed != NULL;

	ldap_dnfree(parsed);
	return ok;
}

/* An attribute description: a name (letter, then letters, digits, -) or an OID. */
static bool attr_ok(const char *a)
{
	size_t n = strlen(a);

	if (n == 0)
		return false;
	if (isdigit((unsigned char)a[0]))
		return strspn(a, "0123456789.") == n;
	return isalpha((unsigned char)a[0]) &&
	       strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == n;
}

/* Drops the whitespace a server ends its diagnostic message with (389 DS
 * ends each with "\n", which would land in replies, audit details and the
 * client's output). s may be NULL. Return: s. */
static char *diag_trim(char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* nth: the value's place among a repeated key's (0 for a single key). */
static int dn_fail(const struct config *c, const char *section, const char *key, size_t nth,
                   const char *value, char *err, size_t errlen)
{
	snprintf(err, errlen,
	         "%s:%d: [%s] %s: \"%s\" is not a DN (e.g. cn=admins,ou=groups,dc=example,dc=com)",
	         c->path, config_nth_line(c, section, key, nth), section, key, value);
	return -1;
}

/* Each URL of [ldap] uri (libldap takes a list, blank- or comma-separated)
 * as libldap will read it: one that does not parse would only be retried,
 * forever, at every connection. */
static int uri_check(const struct config *c, char *err, size_t errlen)
{
	char *list = c->uri != NULL ? strdup(c->uri) : NULL, *save = NULL;
	int bad = 0;

	if (c->uri == NULL)
		return 0;
	for (char *u = list != NULL ? strtok_r(list, " \t,", &save) : NULL; u != NULL && !bad;
	     u = strtok_r(NULL, " \t,", &save)) {
		LDAPURLDesc *lud = NULL;

		bad = ldap_url_parse(u, &lud) != LDAP_URL_SUCCESS || lud->lud_port < 0 ||
		      lud->lud_port > 65535;
		if (bad)
			snprintf(err, errlen,
			         "%s:%d: [ldap] uri: \"%s\" is not an LDAP URL (e.g. "
			         "ldap://ldap.example.com:389 or ldaps://ldap.example.com)",
			         c->path, config_line(c, "ldap", "uri"), u);
		/* 389 DS answers a Password Modify without TLS with 13, AD a
		 * unicodePwd change with 53 (and Samba refuses simple binds): the
		 * daemon would start, and fail every reset. */
		else if ((bad = c->flavor != FLAVOR_OPENLDAP && !c->starttls &&
		                strcasecmp(lud->lud_scheme, "ldap") == 0))
			snprintf(
			    err, errlen,
			    "%s:%d: [ldap] uri: \"%s\" is plain LDAP and starttls is off, but %s "
			    "refuses password resets without TLS: set starttls = yes, or use "
			    "ldaps://",
			    c->path, config_line(c, "ldap", "uri"), u,
			    c->flavor == FLAVOR_AD ? "Active Directory" : "389 DS");
		/* Issue 3: the directory is reached with StartTLS or ldaps, as a TCP
		 * listener without TLS is refused. */
		else if ((bad = !c->starttls && strcasecmp(lud->lud_scheme, "ldap") == 0))
			snprintf(
			    err, errlen,
			    "%s:%d: [ldap] uri: \"%s\" is plain LDAP and starttls is off: the "
			    "service account's, operators' and one-time passwords would cross the "
			    "network readable: set starttls = yes, or use ldaps://",
			    c->path, config_line(c, "ldap", "uri"), u);
		ldap_free_urldesc(lud);
	}
	free(list);
	return list == NULL ? (snprintf(err, errlen, "out of memory"), -1) : bad ? -1 : 0;
}

int dir_config_check(const struct config *c, char *err, size_t errlen)
{
	const struct {
		const char *section, *key, *value;
	} one[] = {
	    {"ldap", "bind_dn", c->bind_dn},         {"ldap", "user_base", c->user_base},
	    {"ldap", "policy_dn", c->policy_dn},     {"ldap", "group_base", c->group_base},
	    {"roles", "helpdesk", c->role_helpdesk}, {"roles", "admin", c->role_admin},
	    {"roles", "auditor", c->role_auditor},
	};
	char section[128];

	for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++)
		if (one[i].value != NULL && !dn_ok(one[i].value))
			return dn_fail(c, one[i].section, one[i].key, 0, one[i].value, err, errlen);
	for (size_t i = 0; i < c->n_protect; i++)
		if (!dn_ok(c->protect[i]))
			return dn_fail(c, "protect", "groups", i, c->protect[i], err, errlen);
	for (size_t i = 0; i < c->n_grants; i++) {
		snprintf(section, sizeof(section), "grant.%s", c->grants[i].name);
		if (c->grants[i].group != NULL && !dn_ok(c->grants[i].group))
			return dn_fail(c, section, "group", 0, c->grants[i].group, err, errlen);
	}
	for (size_t i = 0; i < c->n_scopes; i++) {
		snprintf(section, sizeof(section), "scope.%s", c->scopes[i].name);
		if (c->scopes[i].group != NULL && !dn_ok(c->scopes[i].group))
			return dn_fail(c, section, "group", 0, c->scopes[i].group, err, errlen);
		for (size_t k = 0; k < c->scopes[i].n_bases; k++)
			if (!dn_ok(c->scopes[i].bases[k]))
				return dn_fail(c, section, "bases", k, c->scopes[i].bases[k], err,
				               errlen);
	}
	if (c->user_attr != NULL && !attr_ok(c->user_attr)) {
		snprintf(err, errlen,
		         "%s:%d: [ldap] user_attr: \"%s\" is not an attribute name (e.g. uid)",
		         c->path, config_line(c, "ldap", "user_attr"), c->user_attr);
		return -1;
	}
	return uri_check(c, err, errlen);
}

bool dir_dn_under(const char *dn, const char *base)
{
	char *ndn = dir_dn_canon(dn), *nbase = dir_dn_canon(base);
	bool under = false;
	size_t ld, lb;

	if (ndn != NULL && nbase != NULL) {
		ld = strlen(ndn);
		lb = strlen(nbase);
		/* Equal, or a whole RDN boundary before the base: "x,BASE". */
		under = ld >= lb && strcmp(ndn + ld - lb, nbase) == 0 &&
		        (ld == lb || ndn[ld - lb - 1] == ',');
	}
	free(ndn);
	free(nbase);
	return under;
}

char *dir_dn_ancestor(const char *a, const char *b)
{
	char *na = dir_dn_canon(a), *out = NULL;

	/* Each RDN boundary of a, longest suffix first: after a ',' that is
	 * not escaped (dir_dn_canon writes a value's ',' as "\,"). */
	for (size_t i = 0; na != NULL && na[i] != '\0' && out == NULL; i++) {
		if (i > 0 && (na[i - 1] != ',' || (i >= 2 && na[i - 2] == '\\')))
			continue;
		if (dir_dn_under(b, na + i) && (out = strdup(na + i)) == NULL)
			break;
	}
	free(na);
	return out;
}

const char *dir_user_base(const struct dir *d)
{
	return d->conf->user_base;
}

void dir_user_free(struct dir_user *u)
{
	if (u == NULL)
		return;
	free(u->dn);
	free(u->uid);
	free(u->name);
	free(u->department);
	free(u->mail);
	free(u->locked_since);
	free(u->password_changed);
	free(u->entry_id);
	free(u);
}

time_t dir_last_answer(const struct dir *d)
{
	return d->last_answer;
}

bool dir_available(const struct dir *d)
{
	for (int i = 0; i < d->n_conns; i++)
		if (d->conns[i].state == CONN_UP)
			return true;
	return false;
}

static void ping_answered(void *arg, enum dir_status st, char **values, size_t n, const char *err)
{
	struct dir *d = arg;

	/* Any answer moves last_answer; a timeout leaves unanswered set. */
	d->pinging = false;
	(void)st;
	(void)values;
	(void)n;
	(void)err;
}

/* A hung slapd keeps its TCP connections up: "up" alone would hide it. The
 * last word is an operation's timeout with no answer after it; a ping then
 * lets the next look see slapd answer again once it does. */
bool dir_answering(struct dir *d)
{
	if (!dir_available(d))
		return false;
	if (!d->unanswered)
		return true;
	/* Health is open to anyone: its calls must not fill the pool with reads
	 * that each wait timeout_ms for a hung slapd. */
	if (!d->pinging &&
	    dir_read_values(d, d->conf->user_base, "objectClass", ping_answered, d) == 0)
		d->pinging = true;
	return false;
}

/* ---- connection set-up (runs in threads) ------------------------------- */

/*
 * Puts liblber's read-ahead buffer under TLS: GnuTLS reads each record as a
 * 5-byte header and then its body, two read(2)s per reply; with the buffer
 * one read takes in everything the socket holds. Needs a connected ld.
 * Without it, reads are only slower.
 */
static void read_ahead(LDAP *ld)
{
	Sockbuf *sb = NULL;

	if (ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) == 0 && sb != NULL)
		ber_sockbuf_add_io(sb, &ber_sockbuf_io_readahead, LBER_SBIOD_LEVEL_PROVIDER, NULL);
}

/* Does a plain TCP connection to an ldaps:// URI's host and port succeed?
 * Then what failed was the TLS handshake. */
static bool tcp_answers(const char *ldaps_uri, const struct timeval *tv)
{
	char plain[512];
	LDAPURLDesc *lud = NULL;
	LDAP *ld = NULL;
	bool ok;

	/* The same host and port (636 when the URI names none), spoken plain. */
	if (ldap_url_parse(ldaps_uri, &lud) != LDAP_URL_SUCCESS || lud->lud_host == NULL) {
		ldap_free_urldesc(lud);
		return false;
	}
	if (strchr(lud->lud_host, ':') != NULL) /* IPv6 */
		snprintf(plain, sizeof(plain), "ldap://[%s]:%d", lud->lud_host,
		         lud->lud_port > 0 ? lud->lud_port : 636);
	else
		snprintf(plain, sizeof(plain), "ldap://%s:%d", lud->lud_host,
		         lud->lud_port > 0 ? lud->lud_port : 636);
	ldap_free_urldesc(lud);
	if (ldap_initialize(&ld, plain) != LDAP_SUCCESS)
		return false;
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, tv);
	ok = ldap_connect(ld) == LDAP_SUCCESS;
	ldap_unbind_ext(ld, NULL, NULL);
	return ok;
}

/*
 * Debian's libldap (GnuTLS) says only "Connect error" or "Can't contact LDAP
 * server" when the server's certificate does not verify: the message says
 * what to check.
 */
static void tls_failed(const struct config *conf, const char *how, int rc, char *err, size_t errlen)
{
	snprintf(err, errlen,
	         "%s with %s failed (%s): check that ca_file (%s) holds the CA that signed the "
	         "directory's certificate and that the host in uri is a name in that certificate",
	         how, conf->uri, ldap_err2string(rc),
	         conf->ca_file != NULL ? conf->ca_file : "not set: the system's CAs");
}

/* Connects ld (blocking, like the StartTLS after it) and says why not. */
static int ldap_connect_or_say(const struct config *conf, LDAP *ld, const struct timeval *tv,
                               char *err, size_t errlen)
{
	int rc = ldap_connect(ld);

	if (rc == LDAP_SUCCESS)
		return 0;
	if (strncasecmp(conf->uri, "ldaps://", 8) == 0 && strchr(conf->uri, ' ') == NULL &&
	    tcp_answers(conf->uri, tv))
		tls_failed(conf, "the TLS handshake", rc, err, errlen);
	else
		snprintf(err, errlen,
		         "cannot connect to %s (%s): check that the directory runs and "
		         "listens there%s",
		         conf->uri, ldap_err2string(rc), fds_hint());
	return -1;
}

/*
 * Opens a connection with the options every connection needs, and StartTLS
 * when configured. Blocking: called only from set-up threads.
 */
static int ldap_open(const struct config *conf, LDAP **ldp, char *err, size_t errlen)
{
	LDAP *ld = NULL;
	int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0, rc;
	struct timeval tv = {conf->timeout_ms / 1000, (conf->timeout_ms % 1000) * 1000};

	rc = ldap_initialize(&ld, conf->uri);
	if (rc != LDAP_SUCCESS) {
		snprintf(err, errlen, "%s: %s", conf->uri, ldap_err2string(rc));
		return -1;
	}
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	if (conf->ca_file != NULL)
		ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, conf->ca_file);
	ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
	ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	if (ldap_connect_or_say(conf, ld, &tv, err, errlen) != 0) {
		ldap_unbind_ext(ld, NULL, NULL);
		return -1;
	}
	read_ahead(ld);
	if (conf->starttls && (rc = ldap_start_tls_s(ld, NULL, NULL)) == LDAP_CONNECT_ERROR) {
		tls_failed(conf, "StartTLS", rc, err, errlen);
		ldap_unbind_ext(ld, NULL, NULL);
		return -1;
	}
	if (conf->starttls && rc != LDAP_SUCCESS) {
		char *diag = NULL;

		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
		diag_trim(diag);
		snprintf(err, errlen, "StartTLS with %s: %s%s%s", conf->uri, ldap_err2string(rc),
		         diag != NULL && diag[0] != '\0' ? ": " : "", diag != NULL ? diag : "");
		ldap_memfree(diag);
		ldap_unbind_ext(ld, NULL, NULL);
		return -1;
	}
	*ldp = ld;
	return 0;
}

static void *conn_thread(void *arg)
{
	struct dir_conn *c = arg;
	const struct config *conf = c->conf;
	struct berval cred;
	LDAP *ld = NULL;
	int rc;

	c->new_ld = NULL;
	if (ldap_open(conf, &ld, c->setup_err, sizeof(c->setup_err)) == 0) {
		cred.bv_val = conf->bind_password;
		cred.bv_len = strlen(conf->bind_password);
		rc = ldap_sasl_bind_s(ld, conf->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
		if (rc == LDAP_SUCCESS) {
			c->new_ld = ld;
		} else {
			snprintf(c->setup_err, sizeof(c->setup_err), "bind as %s: %s%s%s%s",
			         conf->bind_dn, ldap_err2string(rc),
			         rc == LDAP_INVALID_CREDENTIALS
			             ? " (check [ldap] bind_dn, and the password in "
			             : "",
			         rc == LDAP_INVALID_CREDENTIALS ? conf->bind_password_file : "",
			         rc == LDAP_INVALID_CREDENTIALS ? ")" : "");
			ldap_unbind_ext(ld, NULL, NULL);
		}
	}
	/* Hands the result to the loop; libevent's locks order these writes. */
	event_active(c->done_ev, EV_READ, 0);
	return NULL;
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg);

static void conn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_connect(arg);
}

static void conn_schedule_retry(struct dir_conn *c)
{
	struct timeval tv = {c->backoff, 0};

	c->state = CONN_DOWN;
	evtimer_add(c->retry_ev, &tv);
	c->backoff = c->backoff == 0 ? 1 : c->backoff * 2;
	if (c->backoff > DIR_BACKOFF_MAX_S)
		c->backoff = DIR_BACKOFF_MAX_S;
}

static void dir_policy_refresh(struct dir *d);

static void conn_setup_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dir_conn *c = arg;
	int sock = -1;
	bool first = !dir_available(c->d);

	(void)fd;
	(void)what;
	pthread_join(c->thread, NULL);
	config_unref(c->conf);
	c->conf = NULL;
	if (c->new_ld == NULL) {
		log_warnx("directory connection %d: %s; retrying in %d s", c->idx, c->setup_err,
		          c->backoff);
		conn_schedule_retry(c);
		return;
	}
	c->ld = c->new_ld;
	c->new_ld = NULL;
	ldap_get_option(c->ld, LDAP_OPT_DESC, &sock);
	/* The loop must never wait on slapd: a reply cut inside a TLS record
	 * is then kept by libldap for the next read (outage.sh), a write the
	 * socket cannot take fails as LDAP_BUSY. libldap's TLS start-up left
	 * it non-blocking so far; that is not its promise, so it is made so. */
	if (evutil_make_socket_nonblocking(sock) == -1) {
		log_warn("directory connection %d: cannot make its socket non-blocking", c->idx);
		ldap_unbind_ext(c->ld, NULL, NULL);
		c->ld = NULL;
		conn_schedule_retry(c);
		return;
	}
	c->rev = event_new(c->d->base, sock, EV_READ | EV_PERSIST, conn_read_cb, c);
	event_add(c->rev, NULL);
	c->state = CONN_UP;
	c->backoff = 0;
	log_info("directory connection %d up (%s)", c->idx, c->d->conf->uri);
	/* Set up under settings a reload changed meanwhile: made again. */
	if (c->link_gen != c->d->link_gen)
		event_active(c->d->renew_ev, EV_TIMEOUT, 0);
	if (first)
		dir_policy_refresh(c->d);
	dir_dispatch(c->d);
}

static void conn_connect(struct dir_conn *c)
{
	c->state = CONN_CONNECTING;
	c->link_gen = c->d->link_gen;
	c->conf = config_ref(c->d->conf);
	if (pthread_create(&c->thread, NULL, conn_thread, c) != 0) {
		config_unref(c->conf);
		c->conf = NULL;
		log_warn("directory connection %d: cannot start set-up thread", c->idx);
		conn_schedule_retry(c);
	}
}

/* A change already handed to slapd: without its answer, whether it was
 * made is not known (a search or a queued change simply failed). */
static enum dir_status unanswered(const struct dir_op *op)
{
	bool change = op->type != OP_SEARCH_DNS && op->type != OP_VALUES &&
	              op->type != OP_SEARCH_USER && op->type != OP_MEMBER &&
	              op->type != OP_POLICY &&
	              op->type != OP_GROUP_CLASS; /* follows an answered, refused change */

	return op->conn != NULL && change ? DIR_UNKNOWN : DIR_UNAVAILABLE;
}

/* Fails what was in flight on c and starts over: the replies are lost. */
static void conn_down(struct dir_conn *c, const char *why)
{
	struct dir_op *op, *next;

	log_warnx("directory connection %d lost: %s", c->idx, why);
	for (op = TAILQ_FIRST(&c->d->flight); op != NULL; op = next) {
		next = TAILQ_NEXT(op, entry);
		if (op->conn == c)
			op_finish(op, unanswered(op),
			          "the connection to the directory was lost before it answered");
	}
	event_free(c->rev);
	c->rev = NULL;
	ldap_unbind_ext(c->ld, NULL, NULL);
	c->ld = NULL;
	c->inflight = 0;
	conn_schedule_retry(c);
}

/* A connection made under settings a reload has changed (uri, starttls,
 * ca_file, bind_dn, the password) takes no new work (conn_pick) and is made
 * again once its last answer is in: until then it could send a one-time
 * password in the clear after starttls was turned on. */
static void conn_renew(struct dir_conn *c)
{
	if (c->state != CONN_UP || c->link_gen == c->d->link_gen || c->inflight > 0)
		return;
	log_info("directory connection %d: made again under the reloaded [ldap] settings", c->idx);
	event_free(c->rev);
	c->rev = NULL;
	ldap_unbind_ext(c->ld, NULL, NULL);
	c->ld = NULL;
	c->backoff = 0;
	conn_connect(c);
}

/* Deferred from where a connection idles (op_finish runs inside that
 * connection's read loop): renews every stale idle connection. */
static void conn_renew_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dir *d = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < d->n_conns; i++)
		conn_renew(&d->conns[i]);
}

/* ---- operations ---------------------------------------------------------- */

static void op_free(struct dir_op *op)
{
	if (op->timer != NULL)
		event_free(op->timer);
	if (op->secret != NULL) {
		OPENSSL_cleanse(op->secret, strlen(op->secret));
		free(op->secret);
	}
	free(op->dn);
	free(op->value);
	free(op->value2);
	free(op->assertion);
	for (size_t i = 0; op->pairs != NULL && op->pairs[i] != NULL; i++)
		free(op->pairs[i]);
	free(op->pairs);
	for (size_t i = 0; i < op->n_dns; i++)
		free(op->dns[i]);
	free(op->dns);
	dir_user_free(op->user);
	free(op);
}

/* Unlinks op, calls its callback once, frees it. */
static void op_finish(struct dir_op *op, enum dir_status st, const char *err)
{
	struct dir *d = op->d;
	char partial[600];

	/* The password is set and only the must-change step failed (refused,
	 * timed out, connection lost): the caller must not throw the password
	 * away, so this is not an ordinary failure. */
	if (op->type == OP_PWDRESET && st != DIR_OK && st != DIR_UNCHANGED) {
		err = partial_message(op, st, err, partial, sizeof(partial));
		st = DIR_PARTIAL;
	}

	/* Entries that moved, went or changed department leave the cache; so does
	 * one an asserted modify found not as cached. */
	if (op->type == OP_RENAME || op->type == OP_DELETE_ENTRY || op->type == OP_SET_OU ||
	    op->type == OP_ADD_ENTRY ||
	    (op->assertion != NULL && (st == DIR_STALE || st == DIR_NOT_FOUND)))
		ucache_drop(d->users, op->dn);

	if (op->conn != NULL) {
		TAILQ_REMOVE(&d->flight, op, entry);
		if (--op->conn->inflight == 0 && op->conn->link_gen != d->link_gen)
			event_active(d->renew_ev, EV_TIMEOUT, 0);
	} else {
		TAILQ_REMOVE(&d->queue, op, entry);
		d->queued--;
	}
	if (op->type == OP_SEARCH_DNS || op->type == OP_VALUES) {
		op->fn.dns(op->arg, st, op->dns, op->n_dns, err);
	} else if (op->type == OP_SEARCH_USER) {
		struct dir_user *u = st == DIR_OK ? op->user : NULL;

		/* Not a search sent under the configuration before a reload: it
		 * would put back what the reload emptied (dir_set_config). */
		if (u != NULL && u->dn != NULL && u->uid != NULL && op->gen == d->gen)
			ucache_put(d->users, u->uid, u->dn, u->department, time(NULL));
		if (u != NULL)
			op->user = NULL;
		op->fn.user(op->arg, st, u, err);
	} else {
		op->fn.done(op->arg, st, err);
	}
	op_free(op);
}

static void op_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dir_op *op = arg;
	struct dir *d = op->d;
	char msg[96];

	(void)fd;
	(void)what;
	if (op->conn != NULL && op->conn->ld != NULL)
		ldap_abandon_ext(op->conn->ld, op->msgid, NULL, NULL);
	/* Never sent because no connection was up: slapd did not hang, and
	 * why it is unreachable is in the log (not told to the caller, who may
	 * not be logged in). */
	if (op->conn == NULL && !dir_available(d))
		snprintf(
		    msg, sizeof(msg),
		    "no connection to the directory is up (for %d ms): ldapdeskd's log says why",
		    d->conf->timeout_ms);
	else {
		d->unanswered = true;
		snprintf(msg, sizeof(msg), "the directory did not answer within %d ms",
		         d->conf->timeout_ms);
	}
	op_finish(op, unanswered(op), msg);
	dir_dispatch(d);
}

static struct dir_op *op_new(struct dir *d, enum op_type type, void *arg)
{
	struct dir_op *op;

	if (d->queued >= DIR_QUEUE_MAX)
		return NULL;
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return NULL;
	op->d = d;
	op->gen = d->gen;
	op->type = type;
	op->arg = arg;
	op->timer = evtimer_new(d->base, op_timeout_cb, op);
	if (op->timer == NULL) {
		free(op);
		return NULL;
	}
	return op;
}

/* Queues op under its timer and sends it if a connection has room. */
static int op_submit(struct dir_op *op)
{
	const struct config *conf = op->d->conf;
	struct timeval tv = {conf->timeout_ms / 1000, (conf->timeout_ms % 1000) * 1000};

	evtimer_add(op->timer, &tv);
	TAILQ_INSERT_TAIL(&op->d->queue, op, entry);
	op->d->queued++;
	/* Sent from the loop, never from here: callers can rely on their callback
	 * not running before this call returns. */
	event_active(op->d->dispatch_ev, EV_TIMEOUT, 0);
	return 0;
}

/* One modification of a modify; value NULL = no values (delete all, or a
 * replace that removes the attribute and never fails when it is absent). */
struct mod_spec {
	int op;
	const char *attr, *value;
};

#define MODS_MAX 4

/*
 * The encoded value of op's assertion filter, from d->asserts or encoded
 * there. Parsing and encoding a filter was ~5 % of the loop's time per
 * unlock; the unlocks of one department within one second assert the same
 * string (the filter holds the time, so an entry is soon of no more use and
 * is replaced in turn). Return: the value (d's memory, valid until the next
 * call), or NULL with *rc set.
 */
static const struct berval *assert_value(struct dir *d, LDAP *ld, const char *filter, int *rc)
{
	struct assert_entry *a;

	for (size_t i = 0; i < DIR_ASSERTS; i++)
		if (d->asserts[i].filter != NULL && strcmp(d->asserts[i].filter, filter) == 0)
			return &d->asserts[i].value;
	a = &d->asserts[d->assert_next++ % DIR_ASSERTS];
	free(a->filter);
	ber_memfree(a->value.bv_val);
	*a = (struct assert_entry){NULL, {0, NULL}};
	*rc = ldap_create_assertion_control_value(ld, (char *)(uintptr_t)filter, &a->value);
	if (*rc != LDAP_SUCCESS)
		return NULL;
	if ((a->filter = strdup(filter)) == NULL) {
		ber_memfree(a->value.bv_val);
		a->value = (struct berval){0, NULL};
		*rc = LDAP_NO_MEMORY;
		return NULL;
	}
	return &a->value;
}

/* Sends the modify, with op's assertion as a critical control when it has
 * one: the server then applies it only if the entry matches (else 122).
 * Return: an LDAP result code; on LDAP_SUCCESS op->msgid is set. */
static int modify_asserted(struct dir_op *op, LDAP *ld, LDAPMod **mp)
{
	const struct berval *value;
	LDAPControl ctrl = {LDAP_CONTROL_ASSERT, {0, NULL}, 1}, *ctrls[2] = {&ctrl, NULL};
	int rc = LDAP_SUCCESS;

	if (op->assertion == NULL)
		return ldap_modify_ext(ld, op->dn, mp, NULL, NULL, &op->msgid);
	if ((value = assert_value(op->d, ld, op->assertion, &rc)) == NULL)
		return rc;
	ctrl.ldctl_value = *value;
	return ldap_modify_ext(ld, op->dn, mp, ctrls, NULL, &op->msgid);
}

static int send_mods(struct dir_op *op, LDAP *ld, const struct mod_spec *ms, size_t n)
{
	char *vals[MODS_MAX][2];
	LDAPMod mods[MODS_MAX], *mp[MODS_MAX + 1];

	for (size_t i = 0; i < n && i < MODS_MAX; i++) {
		vals[i][0] = (char *)(uintptr_t)ms[i].value;
		vals[i][1] = NULL;
		mods[i] = (LDAPMod){ms[i].op,
		                    (char *)(uintptr_t)ms[i].attr,
		                    {ms[i].value != NULL ? vals[i] : NULL}};
		mp[i] = &mods[i];
	}
	mp[n < MODS_MAX ? n : MODS_MAX] = NULL;
	return modify_asserted(op, ld, mp);
}

static int send_modify(struct dir_op *op, LDAP *ld, int modop, const char *attr, const char *value)
{
	struct mod_spec m = {modop, attr, value};

	return send_mods(op, ld, &m, 1);
}

/* An add from attr/value pairs; values of one attribute are gathered. */
static int send_add(struct dir_op *op, LDAP *ld)
{
	LDAPMod mods[16], *modp[17];
	char *vals[16][9];
	size_t n = 0, nv[16] = {0};
	int rc;

	for (size_t i = 0; op->pairs[i] != NULL && op->pairs[i + 1] != NULL; i += 2) {
		size_t m = 0;

		while (m < n && strcmp(mods[m].mod_type, op->pairs[i]) != 0)
			m++;
		if (m == n) {
			if (n == 16)
				return LDAP_PARAM_ERROR;
			mods[n] = (LDAPMod){LDAP_MOD_ADD, op->pairs[i], {vals[n]}};
			n++;
		}
		if (nv[m] < 8)
			vals[m][nv[m]++] = op->pairs[i + 1];
		vals[m][nv[m]] = NULL;
	}
	for (size_t m = 0; m < n; m++)
		modp[m] = &mods[m];
	modp[n] = NULL;
	rc = ldap_add_ext(ld, op->dn, modp, NULL, NULL, &op->msgid);
	return rc;
}

/* ---- directory flavours ------------------------------------------------------ */

/*
 * What differs between OpenLDAP (ppolicy), 389 Directory Server and Active
 * Directory, as measured in doc/flavors.md: the attributes that carry the
 * account state and how to read them, the modifications that unlock, disable,
 * enable and set a password, the answers that mean "unchanged", and what an
 * operator's failed bind says. Everything else is shared.
 */
struct flavor {
	const char *user_filter; /* "(&...": wraps (user_attr=uid), or NULL */
	const char *name_attr, *dept_attr;
	/* dir_user.entry_id: the attribute, and whether its value is binary
	 * (shown in hex). */
	const char *id_attr;
	bool id_binary;
	const char *state_attrs[8];
	void (*read_state)(const struct dir *d, LDAP *ld, LDAPMessage *e, struct dir_user *u);
	int (*unlock)(struct dir_op *op, LDAP *ld);
	int (*disable)(struct dir_op *op, LDAP *ld);
	int (*enable)(struct dir_op *op, LDAP *ld);
	int (*set_password)(struct dir_op *op, LDAP *ld);
	int (*must_change)(struct dir_op *op, LDAP *ld); /* NULL: set_password did it */
	const char *must_change_what;                    /* for the error message */
	/* Filter that an unlock of a cached user asserts: "not disabled" (NULL:
	 * the server has no assertion control, cached unlocks are off). */
	const char *unlock_assert;
	/* Its lock time, asserted as not expired by the default policy's lockout
	 * duration (NULL: no such clause): an expired lock is no lock. */
	const char *lock_time_attr;
	/* The unlock modify cannot tell "was not locked": decide from the state
	 * read just before. */
	bool unlock_from_state;
	int member_present_rc, member_absent_rc; /* add / delete answers meaning "unchanged" */
	/* Matches a group whose members are `member` values. An add refused
	 * with 65, or a delete answered member_absent_rc, is checked against it:
	 * in a groupOfUniqueNames (members in uniqueMember) the delete of an
	 * absent `member` says nothing of the membership. NULL: no check. */
	const char *member_group_filter;
	enum dir_bind_result (*bind_decode)(LDAP *ld, int rc, const char *diag,
	                                    LDAPControl **ctrls);
	const char *expired_words; /* the operator's error for DIR_BIND_EXPIRED */
};

#define ADMIN_LOCK    "000001010000Z"   /* ppolicy: locked by an administrator */
#define EPOCH_TIME    "19700101000000Z" /* 389 DS: expired (must change) / locked until unlocked */
#define AD_DISABLED   0x2UL             /* userAccountControl ACCOUNTDISABLE */
#define AD_LOCKOUT    0x10UL            /* msDS-User-Account-Control-Computed UF_LOCKOUT */
#define AD_PW_EXPIRED 0x800000UL        /* ... UF_PASSWORD_EXPIRED (pwdLastSet 0) */
/* userAccountControl DONT_EXPIRE_PASSWORD, SMARTCARD_REQUIRED: AD then
 * ignores pwdLastSet 0 (no change is asked for) */
#define AD_NO_EXPIRY (0x10000UL | 0x40000UL)

/* groupOfNames, RFC 2307bis's groupOfMembers, or any entry that holds member values. */
#define MEMBER_GROUP_FILTER "(|(objectClass=groupOfNames)(objectClass=groupOfMembers)(member=*))"

static char *first_value(LDAP *ld, LDAPMessage *e, const char *attr)
{
	struct berval **vals = ldap_get_values_len(ld, e, attr);
	char *s = NULL;

	if (vals != NULL && vals[0] != NULL)
		s = strndup(vals[0]->bv_val, vals[0]->bv_len);
	ldap_value_free_len(vals);
	return s;
}

/* A binary value (AD's objectGUID) as lowercase hex; NULL when absent. */
static char *hex_value(LDAP *ld, LDAPMessage *e, const char *attr)
{
	struct berval **vals = ldap_get_values_len(ld, e, attr);
	char *s = NULL;

	/* 32 bytes (64 hex) at most: what a request keeps (audit_req). */
	if (vals != NULL && vals[0] != NULL && vals[0]->bv_len <= 32 &&
	    (s = malloc(vals[0]->bv_len * 2 + 1)) != NULL)
		ascii_hex((const unsigned char *)vals[0]->bv_val, vals[0]->bv_len, s);
	ldap_value_free_len(vals);
	return s;
}

static int count_values(LDAP *ld, LDAPMessage *e, const char *attr)
{
	struct berval **vals = ldap_get_values_len(ld, e, attr);
	int n = ldap_count_values_len(vals);

	ldap_value_free_len(vals);
	return n < 0 ? 0 : n;
}

/* The attribute as a number; 0 when absent or not a number. */
static long long num_value(LDAP *ld, LDAPMessage *e, const char *attr)
{
	char *v = first_value(ld, e, attr);
	long long n = v != NULL ? strtoll(v, NULL, 10) : 0;

	free(v);
	return n;
}

static bool value_is(LDAP *ld, LDAPMessage *e, const char *attr, const char *want)
{
	char *v = first_value(ld, e, attr);
	bool is = v != NULL && strcasecmp(v, want) == 0;

	free(v);
	return is;
}

/* A GeneralizedTime at or before now (unparseable counts as past). */
static bool gentime_past(const char *gt)
{
	time_t t;

	return clock_parse_gentime(gt, &t) == -1 || t <= time(NULL);
}

/* The policy a user is under: the default one unless pwdPolicySubentry
 * names another (389 DS: names a local policy, which takes nothing from the
 * global one). One that was not read gives lockout 0 ("until unlocked":
 * the lock then shows and can be cleared, where a guess from the default
 * could hide a lock that holds), must-change, and no maximum age. */
static struct dir_policy user_policy(const struct dir *d, LDAP *ld, LDAPMessage *e)
{
	static const struct dir_policy unread = {.must_change = true};
	char *sub = first_value(ld, e, "pwdPolicySubentry");
	struct dir_policy p = d->def;
	bool other =
	    sub != NULL && (d->conf->flavor == FLAVOR_389DS ||
	                    (d->conf->policy_dn != NULL && !dir_dn_equal(sub, d->conf->policy_dn)));

	if (other) {
		p = unread;
		for (size_t i = 0; i < d->n_policies; i++)
			if (dir_dn_equal(sub, d->policies[i].dn)) {
				p = d->policies[i];
				break;
			}
	}
	free(sub);
	return p;
}

/* What else makes slapd refuse a bind, for status to say: a password older
 * than the policy's pwdMaxAge, and an account outside pwdStartTime ..
 * pwdEndTime (ppolicy answers "account locked" to that too). */
static void openldap_validity(LDAP *ld, LDAPMessage *e, struct dir_user *u, long max_age)
{
	char *start = first_value(ld, e, "pwdStartTime"), *end = first_value(ld, e, "pwdEndTime");
	time_t t, now = time(NULL);

	u->password_expired = max_age > 0 && u->password_changed != NULL &&
	                      clock_parse_gentime(u->password_changed, &t) == 0 &&
	                      t + max_age <= now;
	u->outside_validity = (start != NULL && clock_parse_gentime(start, &t) == 0 && t > now) ||
	                      (end != NULL && clock_parse_gentime(end, &t) == 0 && t <= now);
	free(start);
	free(end);
}

/* ppolicy: pwdAccountLockedTime in effect (not dated in the future: 2.5's
 * ppolicy applies it only from then) and not yet expired by
 * pwdLockoutDuration. One that cannot be read counts as a lock. */
static void openldap_state(const struct dir *d, LDAP *ld, LDAPMessage *e, struct dir_user *u)
{
	char *lt = first_value(ld, e, "pwdAccountLockedTime");
	struct dir_policy pol = user_policy(d, ld, e);
	long duration = pol.duration;
	time_t t, now;

	u->password_changed = first_value(ld, e, "pwdChangedTime");
	u->failures = count_values(ld, e, "pwdFailureTime");
	u->change_forced = pol.must_change;
	u->policy_read = pol.read;
	u->no_change_why = "pwdMustChange is not TRUE";
	u->password_min = pol.min_length;
	openldap_validity(ld, e, u, pol.max_age);
	/* slapd acts on pwdReset only under a policy with pwdMustChange TRUE. */
	u->must_change = value_is(ld, e, "pwdReset", "TRUE") && u->change_forced;
	if (lt == NULL)
		return;
	if (strcmp(lt, ADMIN_LOCK) == 0) {
		u->admin_locked = u->locked = true;
		free(lt);
		return;
	}
	now = time(NULL);
	u->locked = clock_parse_gentime(lt, &t) == -1 ||
	            (t <= now && (duration <= 0 || t + duration > now));
	u->locked_since = lt;
}

/* 389 DS keeps no lock time: a timed lock began passwordLockoutDuration
 * before accountUnlockTime; one until an administrator unlocks
 * (19700101000000Z) at the last failure, passwordResetFailureCount before
 * retryCountResetTime. NULL when the policy does not say (not read). */
static bool gentime(time_t t, char *buf, size_t len);

static char *ds389_locked_since(LDAP *ld, LDAPMessage *e, const char *until,
                                const struct dir_policy *pol)
{
	char *reset = NULL, buf[32];
	const char *from = NULL;
	long back = 0;
	time_t t;

	if (until != NULL && strcmp(until, EPOCH_TIME) != 0 && pol->duration > 0) {
		from = until;
		back = pol->duration;
	} else if (pol->reset_after > 0 &&
	           (reset = first_value(ld, e, "retryCountResetTime")) != NULL) {
		from = reset;
		back = pol->reset_after;
	}
	if (from == NULL || clock_parse_gentime(from, &t) == -1 ||
	    !gentime(t - back, buf, sizeof(buf))) {
		free(reset);
		return NULL;
	}
	free(reset);
	return strdup(buf);
}

/*
 * 389 DS: locked while accountUnlockTime lies ahead (19700101000000Z: until
 * an administrator unlocks) after failures; a reset leaves a stale
 * accountUnlockTime behind with passwordRetryCount 0, which is no lock.
 */
static void ds389_state(const struct dir *d, LDAP *ld, LDAPMessage *e, struct dir_user *u)
{
	char *until = first_value(ld, e, "accountUnlockTime");
	char *exp = first_value(ld, e, "passwordExpirationTime");
	struct dir_policy pol = user_policy(d, ld, e);

	u->failures = (int)num_value(ld, e, "passwordRetryCount");
	u->admin_locked = value_is(ld, e, "nsAccountLock", "TRUE");
	u->locked = u->admin_locked || (until != NULL && u->failures > 0 &&
	                                (strcmp(until, EPOCH_TIME) == 0 || !gentime_past(until)));
	/* As 389 DS's bind decides: 19700101000000Z (a reset) asks for a change
	 * only under passwordMustChange on (the server stamps it then, and
	 * ignores it otherwise); any other time past is an expired password
	 * only under passwordExp on. */
	u->change_forced = pol.must_change;
	u->policy_read = pol.read;
	u->no_change_why = "passwordMustChange is off in the user's password policy";
	u->password_min = pol.min_length;
	if (exp != NULL && strcmp(exp, EPOCH_TIME) == 0)
		u->must_change = pol.must_change;
	else /* a policy not read may have passwordExp on */
		u->must_change = exp != NULL && (pol.max_age > 0 || !pol.read) && gentime_past(exp);
	u->password_changed = first_value(ld, e, "pwdUpdateTime");
	if (u->locked && !u->admin_locked)
		u->locked_since = ds389_locked_since(ld, e, until, &pol);
	free(until);
	free(exp);
}

/* AD times are FILETIME: 100 ns since 1601-01-01 UTC. NULL for 0 and below. */
/* t as LDAP GeneralizedTime ("YYYYMMDDHHMMSSZ") into buf. */
static bool gentime(time_t t, char *buf, size_t len)
{
	struct tm tm;

	return gmtime_r(&t, &tm) != NULL && strftime(buf, len, "%Y%m%d%H%M%SZ", &tm) != 0;
}

static char *filetime_gentime(long long ft)
{
	time_t t = (time_t)(ft / 10000000LL - 11644473600LL);
	char buf[32];

	if (ft <= 0 || !gentime(t, buf, sizeof(buf)))
		return NULL;
	return strdup(buf);
}

/* accountExpires: a FILETIME at which the account stops working; 0 and
 * 0x7FFFFFFFFFFFFFFF (what AD writes for "never") never come. */
static bool ad_expired(long long ft)
{
	long long now = ((long long)time(NULL) + 11644473600LL) * 10000000LL;

	return ft > 0 && ft != 0x7FFFFFFFFFFFFFFFLL && ft <= now;
}

/* AD: the constructed msDS-User-Account-Control-Computed says locked (lockoutTime
 * stays > 0 after the lockout duration) and expired; bit 0x2 is the disable. */
static void ad_state(const struct dir *d, LDAP *ld, LDAPMessage *e, struct dir_user *u)
{
	unsigned long computed =
	    (unsigned long)num_value(ld, e, "msDS-User-Account-Control-Computed");
	char *last = first_value(ld, e, "pwdLastSet");

	u->password_min = d->def.min_length; /* the domain's (fine-grained policies unread) */
	u->policy_read = true;               /* the DC computes lock and expiry itself (above) */
	u->account_control = (unsigned long)num_value(ld, e, "userAccountControl");
	u->admin_locked = (u->account_control & AD_DISABLED) != 0;
	u->locked = u->admin_locked || (computed & AD_LOCKOUT) != 0;
	u->locked_since = filetime_gentime(num_value(ld, e, "lockoutTime"));
	u->failures = (int)num_value(ld, e, "badPwdCount");
	/* The computed bit is what the DC's bind applies: pwdLastSet 0 alone is
	 * no must-change for an account whose password never expires. */
	u->must_change = (computed & AD_PW_EXPIRED) != 0;
	u->password_changed = last != NULL ? filetime_gentime(strtoll(last, NULL, 10)) : NULL;
	u->change_forced = (u->account_control & AD_NO_EXPIRY) == 0; /* a reset sets pwdLastSet 0 */
	u->no_change_why = "the account's password never expires (userAccountControl "
	                   "DONT_EXPIRE_PASSWORD)";
	u->outside_validity = ad_expired(num_value(ld, e, "accountExpires"));
	u->validity_why = "the account has expired (its accountExpires date has passed): the "
	                  "directory refuses its logins, and neither an unlock nor 'user enable' "
	                  "changes that; an Active Directory administrator must extend "
	                  "accountExpires";
	free(last);
}

static int send_passwd_exop(struct dir_op *op, LDAP *ld)
{
	struct berval user, pw;

	ber_str2bv(op->dn, 0, 0, &user);
	ber_str2bv(op->secret, 0, 0, &pw);
	return ldap_passwd(ld, &user, NULL, &pw, NULL, NULL, &op->msgid);
}

static int openldap_unlock(struct dir_op *op, LDAP *ld)
{
	return send_modify(op, ld, LDAP_MOD_DELETE, "pwdAccountLockedTime", NULL);
}

static int openldap_disable(struct dir_op *op, LDAP *ld)
{
	return send_modify(op, ld, LDAP_MOD_REPLACE, "pwdAccountLockedTime", ADMIN_LOCK);
}

static int openldap_must_change(struct dir_op *op, LDAP *ld)
{
	return send_modify(op, ld, LDAP_MOD_REPLACE, "pwdReset", "TRUE");
}

/* Replaces without values never fail on absent attributes: idempotent. */
static int ds389_unlock(struct dir_op *op, LDAP *ld)
{
	const struct mod_spec m[] = {{LDAP_MOD_REPLACE, "passwordRetryCount", "0"},
	                             {LDAP_MOD_REPLACE, "accountUnlockTime", NULL},
	                             {LDAP_MOD_REPLACE, "retryCountResetTime", NULL}};

	return send_mods(op, ld, m, 3);
}

static int ds389_disable(struct dir_op *op, LDAP *ld)
{
	return send_modify(op, ld, LDAP_MOD_REPLACE, "nsAccountLock", "TRUE");
}

static int ds389_enable(struct dir_op *op, LDAP *ld)
{
	return send_modify(op, ld, LDAP_MOD_REPLACE, "nsAccountLock", NULL);
}

/* slapd stamps passwordExpirationTime itself only when passwordMustChange is
 * on; setting it here works either way. The stale lock times go too, so the
 * state reads clean after a reset (which already zeroed passwordRetryCount). */
static int ds389_must_change(struct dir_op *op, LDAP *ld)
{
	const struct mod_spec m[] = {{LDAP_MOD_REPLACE, "passwordExpirationTime", EPOCH_TIME},
	                             {LDAP_MOD_REPLACE, "accountUnlockTime", NULL},
	                             {LDAP_MOD_REPLACE, "retryCountResetTime", NULL}};

	return send_mods(op, ld, m, 3);
}

static int ad_unlock(struct dir_op *op, LDAP *ld)
{
	return send_modify(op, ld, LDAP_MOD_REPLACE, "lockoutTime", "0");
}

/* userAccountControl is a bit set: keep every other bit as read. */
static int ad_account_control(struct dir_op *op, LDAP *ld, unsigned long value)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lu", value);
	return send_modify(op, ld, LDAP_MOD_REPLACE, "userAccountControl", buf);
}

static int ad_disable(struct dir_op *op, LDAP *ld)
{
	return ad_account_control(op, ld, op->account | AD_DISABLED);
}

static int ad_enable(struct dir_op *op, LDAP *ld)
{
	return ad_account_control(op, ld, op->account & ~AD_DISABLED);
}

/* Appends code point cp as UTF-16LE at out[*n]. */
static void put_utf16le(unsigned char *out, size_t *n, unsigned long cp)
{
	if (cp >= 0x10000) {
		cp -= 0x10000;
		put_utf16le(out, n, 0xD800 + (cp >> 10));
		cp = 0xDC00 + (cp & 0x3FF);
	}
	out[(*n)++] = (unsigned char)(cp & 0xFF);
	out[(*n)++] = (unsigned char)(cp >> 8);
}

/* unicodePwd takes the password in double quotes, UTF-16LE. Return: the
 * length written to out (room for 2 * strlen(pw) + 4 bytes), or 0 when pw is
 * not UTF-8. */
static size_t ad_unicode_pwd(const char *pw, unsigned char *out)
{
	const unsigned char *p = (const unsigned char *)pw;
	size_t n = 0;

	put_utf16le(out, &n, '"');
	while (*p != '\0') {
		unsigned long cp = *p;
		int more = cp < 0x80 ? 0 : cp >= 0xF0 ? 3 : cp >= 0xE0 ? 2 : cp >= 0xC0 ? 1 : -1;

		if (more < 0 || cp > 0xF4)
			return 0;
		cp &= more == 0 ? 0x7F : 0x3F >> more;
		for (p++; more-- > 0; p++) {
			if ((*p & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (*p & 0x3F);
		}
		put_utf16le(out, &n, cp);
	}
	put_utf16le(out, &n, '"');
	return n;
}

/* One modify, so no crash leaves a password without must-change: the new
 * password, pwdLastSet 0 (must change), lockoutTime 0 (an AD reset does not
 * unlock by itself; the other flavours do). */
static int ad_set_password(struct dir_op *op, LDAP *ld)
{
	size_t cap = 2 * strlen(op->secret) + 4;
	unsigned char *buf = malloc(cap);
	struct berval pw = {0, (char *)buf}, *pwv[2] = {&pw, NULL};
	char *zero[2] = {"0", NULL};
	LDAPMod m_pw = {LDAP_MOD_REPLACE | LDAP_MOD_BVALUES, "unicodePwd", {NULL}};
	LDAPMod m_last = {LDAP_MOD_REPLACE, "pwdLastSet", {zero}};
	LDAPMod m_lock = {LDAP_MOD_REPLACE, "lockoutTime", {zero}};
	LDAPMod *mods[4] = {&m_pw, &m_last, &m_lock, NULL};
	int rc;

	if (buf == NULL || (pw.bv_len = ad_unicode_pwd(op->secret, buf)) == 0) {
		free(buf);
		return LDAP_PARAM_ERROR;
	}
	m_pw.mod_bvalues = pwv;
	rc = ldap_modify_ext(ld, op->dn, mods, NULL, NULL, &op->msgid);
	OPENSSL_cleanse(buf, cap);
	free(buf);
	return rc;
}

/* ppolicy response control: the state behind a refused or successful bind. */
static LDAPPasswordPolicyError ppolicy_error(LDAP *ld, LDAPControl **ctrls)
{
	LDAPControl *c = ldap_control_find(LDAP_CONTROL_PASSWORDPOLICYRESPONSE, ctrls, NULL);
	LDAPPasswordPolicyError pperr = PP_noError;
	ber_int_t expire = -1, grace = -1;

	if (c != NULL)
		ldap_parse_passwordpolicy_control(ld, c, &expire, &grace, &pperr);
	return pperr;
}

static enum dir_bind_result openldap_bind(LDAP *ld, int rc, const char *diag, LDAPControl **ctrls)
{
	LDAPPasswordPolicyError pperr = ppolicy_error(ld, ctrls);

	(void)diag;
	if (rc == LDAP_SUCCESS)
		return pperr == PP_changeAfterReset || pperr == PP_passwordExpired
		           ? DIR_BIND_MUST_CHANGE
		           : DIR_BIND_OK;
	/* passwordExpired with 49 comes only after the password was checked
	 * good (no grace logins left): the operator must change it. */
	if (rc == LDAP_INVALID_CREDENTIALS && pperr == PP_passwordExpired)
		return DIR_BIND_MUST_CHANGE;
	if (rc == LDAP_INVALID_CREDENTIALS)
		return pperr == PP_accountLocked ? DIR_BIND_LOCKED : DIR_BIND_BAD_CREDENTIALS;
	return DIR_BIND_UNAVAILABLE;
}

/* 389 DS: locked = 19 "Exceed password retry limit", disabled = 53 "Account
 * inactivated"; a must-change bind succeeds with the Netscape PasswordExpired
 * control (or ppolicy's changeAfterReset). */
static enum dir_bind_result ds389_bind(LDAP *ld, int rc, const char *diag, LDAPControl **ctrls)
{
	if (rc == LDAP_CONSTRAINT_VIOLATION)
		return DIR_BIND_LOCKED;
	if (rc == LDAP_UNWILLING_TO_PERFORM)
		return DIR_BIND_DISABLED;
	if (rc == LDAP_SUCCESS &&
	    ldap_control_find(LDAP_CONTROL_X_PASSWORD_EXPIRED, ctrls, NULL) != NULL)
		return DIR_BIND_MUST_CHANGE;
	return openldap_bind(ld, rc, diag, ctrls);
}

/* AD answers 49 to all of them; the reason is "data XXX" in the diagnostic. */
static enum dir_bind_result ad_bind(LDAP *ld, int rc, const char *diag, LDAPControl **ctrls)
{
	const char *data = diag != NULL ? strstr(diag, "data ") : NULL;
	unsigned long code = data != NULL ? strtoul(data + 5, NULL, 16) : 0;

	(void)ld;
	(void)ctrls;
	if (rc == LDAP_SUCCESS)
		return DIR_BIND_OK;
	if (rc != LDAP_INVALID_CREDENTIALS)
		return DIR_BIND_UNAVAILABLE;
	if (code == 0x775)
		return DIR_BIND_LOCKED;
	if (code == 0x773 || code == 0x532)
		return DIR_BIND_MUST_CHANGE;
	if (code == 0x533)
		return DIR_BIND_DISABLED;
	if (code == 0x701) /* ACCOUNT_EXPIRED */
		return DIR_BIND_EXPIRED;
	return DIR_BIND_BAD_CREDENTIALS;
}

static const struct flavor flavors[] = {
    [FLAVOR_OPENLDAP] =
        {
            .name_attr = "cn",
            .dept_attr = "ou",
            .id_attr = "entryUUID",
            .state_attrs = {"pwdAccountLockedTime", "pwdFailureTime", "pwdReset", "pwdChangedTime",
                            "pwdPolicySubentry", "pwdStartTime", "pwdEndTime"},
            .read_state = openldap_state,
            .unlock = openldap_unlock,
            .disable = openldap_disable,
            .enable = openldap_unlock,
            .set_password = send_passwd_exop,
            .must_change = openldap_must_change,
            .must_change_what = "pwdReset",
            .unlock_assert = "(!(pwdAccountLockedTime=" ADMIN_LOCK "))",
            .lock_time_attr = "pwdAccountLockedTime",
            /* An expired lock still in the entry is cleared, but it was no
             * lock (DESIGN: locked as ppolicy computes it): "unchanged". */
            .unlock_from_state = true,
            .member_present_rc = LDAP_TYPE_OR_VALUE_EXISTS,
            .member_absent_rc = LDAP_NO_SUCH_ATTRIBUTE,
            .member_group_filter = MEMBER_GROUP_FILTER,
            .bind_decode = openldap_bind,
        },
    [FLAVOR_389DS] =
        {
            /* Operational attributes come only when asked for by name. */
            .name_attr = "cn",
            .dept_attr = "ou",
            .id_attr = "nsUniqueId",
            .state_attrs = {"passwordRetryCount", "accountUnlockTime", "passwordExpirationTime",
                            "nsAccountLock", "pwdUpdateTime", "pwdPolicySubentry",
                            "retryCountResetTime"},
            .read_state = ds389_state,
            .unlock = ds389_unlock,
            .disable = ds389_disable,
            .enable = ds389_enable,
            .set_password = send_passwd_exop, /* needs TLS: 13 otherwise */
            .must_change = ds389_must_change,
            .must_change_what = "passwordExpirationTime",
            .unlock_from_state = true,
            .member_present_rc = LDAP_TYPE_OR_VALUE_EXISTS,
            .member_absent_rc = LDAP_NO_SUCH_ATTRIBUTE,
            .member_group_filter = MEMBER_GROUP_FILTER,
            .bind_decode = ds389_bind,
        },
    [FLAVOR_AD] =
        {
            .user_filter = "(&(objectCategory=person)(objectClass=user)",
            .name_attr = "displayName",
            .dept_attr = "department",
            .id_attr = "objectGUID",
            .id_binary = true,
            .state_attrs = {"userAccountControl", "msDS-User-Account-Control-Computed",
                            "lockoutTime", "badPwdCount", "pwdLastSet", "accountExpires"},
            .read_state = ad_state,
            .unlock = ad_unlock,
            .disable = ad_disable,
            .enable = ad_enable,
            .set_password = ad_set_password,
            .unlock_from_state = true,
            .member_present_rc = LDAP_ALREADY_EXISTS,
            .member_absent_rc = LDAP_UNWILLING_TO_PERFORM,
            .bind_decode = ad_bind,
            .expired_words = "your account has expired (its accountExpires date has passed): "
                             "an Active Directory administrator must extend accountExpires; "
                             "neither an unlock nor enabling the account lifts it",
        },
};

static const struct flavor *flavor_of(const struct config *conf)
{
	return &flavors[conf->flavor];
}

/* name, department, mail, the flavour's state and user_attr. */
static void user_attrs(const struct config *conf, const char **attrs, size_t cap)
{
	const struct flavor *f = flavor_of(conf);
	size_t n = 0;

	attrs[n++] = f->name_attr;
	attrs[n++] = f->dept_attr;
	attrs[n++] = "mail";
	attrs[n++] = f->id_attr;
	for (size_t i = 0; i < 8 && f->state_attrs[i] != NULL && n + 2 < cap; i++)
		attrs[n++] = f->state_attrs[i];
	attrs[n++] = conf->user_attr;
	attrs[n] = NULL;
}

static int op_send(struct dir_op *op, LDAP *ld)
{
	const struct config *conf = op->d->conf;
	const struct flavor *f = flavor_of(conf);
	const char *attrs[16];

	switch (op->type) {
	case OP_SEARCH_USER:
		user_attrs(conf, attrs, 16);
		return ldap_search_ext(ld, conf->user_base, LDAP_SCOPE_SUBTREE, op->value,
		                       (char **)(uintptr_t)attrs, 0, NULL, NULL, NULL, 2,
		                       &op->msgid);
	case OP_MEMBER: {
		static const char *none[] = {"1.1", NULL};

		return ldap_search_ext(ld, op->dn, LDAP_SCOPE_BASE, op->value,
		                       (char **)(uintptr_t)none, 0, NULL, NULL, NULL, 1,
		                       &op->msgid);
	}
	case OP_POLICY: { /* dir_policy_refresh */
		/* 389 DS names passwordMustChange and passwordMaxAge pwdMustChange and
		 * pwdMaxAge too, and answers with the name asked for first. */
		static const char *pw[] = {"pwdLockoutDuration", "pwdMustChange", "pwdMaxAge",
		                           "pwdMinLength", NULL};
		static const char *ds[] = {"passwordMustChange",
		                           "passwordExp",
		                           "passwordMaxAge",
		                           "passwordMinLength",
		                           "passwordLockoutDuration",
		                           "passwordResetFailureCount",
		                           NULL};
		static const char *ad[] = {"minPwdLength", NULL};
		const char **pol = conf->flavor == FLAVOR_389DS ? ds
		                   : conf->flavor == FLAVOR_AD  ? ad
		                                                : pw;

		return ldap_search_ext(ld, op->dn, op->scope, op->value, (char **)(uintptr_t)pol, 0,
		                       NULL, NULL, NULL, DIR_POLICY_SEARCH_MAX, &op->msgid);
	}
	case OP_UNLOCK:
		return f->unlock(op, ld);
	case OP_PASSWD:
		return f->set_password(op, ld);
	case OP_PWDRESET:
		return f->must_change(op, ld);
	case OP_ADD:
		return send_modify(op, ld, LDAP_MOD_ADD, "member", op->value);
	case OP_DEL:
		return send_modify(op, ld, LDAP_MOD_DELETE, "member", op->value);
	case OP_GROUP_CLASS: {
		static const char *none[] = {"1.1", NULL};

		return ldap_search_ext(ld, op->dn, LDAP_SCOPE_BASE, f->member_group_filter,
		                       (char **)(uintptr_t)none, 0, NULL, NULL, NULL, 1,
		                       &op->msgid);
	}
	case OP_DISABLE:
		return f->disable(op, ld);
	case OP_ENABLE:
		return f->enable(op, ld);
	case OP_SET_OU:
		return send_modify(op, ld, LDAP_MOD_REPLACE, f->dept_attr, op->value);
	case OP_RENAME:
		return ldap_rename(ld, op->dn, op->value, op->value2, 1, NULL, NULL, &op->msgid);
	case OP_DELETE_ENTRY:
		return ldap_delete_ext(ld, op->dn, NULL, NULL, &op->msgid);
	case OP_ADD_ENTRY:
		return send_add(op, ld);
	case OP_VALUES: {
		const char *attrs[] = {op->value, NULL, NULL};

		/* dir_read_members: the entry's DN and its members, in one read. */
		if (strcmp(op->value, VALUES_MEMBERS) == 0) {
			attrs[0] = "member";
			attrs[1] = dir_unique_members(op->d) ? "uniqueMember" : NULL;
		}

		return ldap_search_ext(ld, op->dn, LDAP_SCOPE_BASE, "(objectClass=*)",
		                       (char **)(uintptr_t)attrs, 0, NULL, NULL, NULL, 1,
		                       &op->msgid);
	}
	case OP_SEARCH_DNS: {
		static const char *none[] = {"1.1", NULL};

		return ldap_search_ext(ld, op->dn, LDAP_SCOPE_SUBTREE, op->value,
		                       (char **)(uintptr_t)none, 0, NULL, NULL, NULL, DIR_DNS_MAX,
		                       &op->msgid);
	}
	}
	return LDAP_PARAM_ERROR;
}

static struct dir_conn *conn_pick(struct dir *d)
{
	struct dir_conn *best = NULL;

	for (int i = 0; i < d->n_conns; i++) {
		struct dir_conn *c = &d->conns[i];

		if (c->state == CONN_UP && c->link_gen == d->link_gen &&
		    c->inflight < DIR_INFLIGHT_MAX &&
		    (best == NULL || c->inflight < best->inflight))
			best = c;
	}
	return best;
}

/* Connections waiting out a back-off are woken when work arrives, so the
 * first request after the directory comes back does not wait for a timer. */
static void conn_wake(struct dir *d)
{
	for (int i = 0; i < d->n_conns; i++) {
		struct dir_conn *c = &d->conns[i];

		if (c->state == CONN_DOWN) {
			evtimer_del(c->retry_ev);
			conn_connect(c);
		}
	}
}

/* Holds back (on) or lets go (off) the connection's partial segments. */
static void conn_cork(struct dir_conn *c, int on)
{
	int fd = -1;

	c->corked = on != 0;
	if (c->ld != NULL && ldap_get_option(c->ld, LDAP_OPT_DESC, &fd) == 0 && fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

static void uncork_all(struct dir *d)
{
	for (int i = 0; i < d->n_conns; i++) {
		if (d->conns[i].corked)
			conn_cork(&d->conns[i], 0);
		d->conns[i].round_sent = 0;
	}
}

/*
 * Sends what is queued. Requests released together (a group commit frees a
 * whole batch) go out corked from a connection's second one on: each is
 * still its own write(2) and TLS record, but the rest of a connection's
 * share leaves as one segment when uncorked, so the network stack runs once
 * for it (and slapd reads it at once), not once per request. A connection
 * that gets one request is never corked (two more system calls for nothing).
 */
static void dir_dispatch(struct dir *d)
{
	bool cork = d->queued >= 2;

	dispatch_queue(d, cork);
	uncork_all(d);
}

static void dispatch_queue(struct dir *d, bool cork)
{
	struct dir_op *op;
	struct dir_conn *c;
	int rc;

	while ((op = TAILQ_FIRST(&d->queue)) != NULL) {
		c = conn_pick(d);
		if (c == NULL) {
			conn_wake(d);
			return;
		}
		if (cork && !c->corked && c->round_sent > 0)
			conn_cork(c, 1);
		c->round_sent++;
		rc = op_send(op, c->ld);
		if (rc != LDAP_SUCCESS) {
			op_finish(op, DIR_UNAVAILABLE, ldap_err2string(rc));
			if (rc == LDAP_SERVER_DOWN)
				conn_down(c, ldap_err2string(rc));
			continue;
		}
		TAILQ_REMOVE(&d->queue, op, entry);
		d->queued--;
		op->conn = c;
		c->inflight++;
		TAILQ_INSERT_TAIL(&d->flight, op, entry);
	}
}

/* ---- replies --------------------------------------------------------------- */

/* OP_VALUES of "1.1" (dir_read_dn): the entry's DN as the directory holds it. */
static void dn_entry(struct dir_op *op, LDAP *ld, LDAPMessage *e)
{
	char *dn = ldap_get_dn(ld, e);

	if (dn != NULL && op->dns == NULL && (op->dns = calloc(1, sizeof(*op->dns))) != NULL &&
	    (op->dns[0] = strdup(dn)) != NULL)
		op->n_dns = 1;
	ldap_memfree(dn);
}

/* Appends the values of attr to op->dns (at most DIR_VALUES_MAX in all). */
static void values_add(struct dir_op *op, LDAP *ld, LDAPMessage *e, const char *attr)
{
	struct berval **vals = ldap_get_values_len(ld, e, attr);
	size_t n = (size_t)ldap_count_values_len(vals);
	char **grown;

	if (vals == NULL || n == 0) {
		ldap_value_free_len(vals);
		return;
	}
	if (op->n_dns + n > DIR_VALUES_MAX ||
	    (grown = realloc(op->dns, (op->n_dns + n) * sizeof(*grown))) == NULL)
		op->too_many = true;
	else
		op->dns = grown;
	for (size_t i = 0; !op->too_many && i < n; i++) {
		if ((op->dns[op->n_dns] = strndup(vals[i]->bv_val, vals[i]->bv_len)) == NULL)
			op->too_many = true;
		else
			op->n_dns++;
	}
	ldap_value_free_len(vals);
}

/* OP_VALUES: every value of the attribute, up to DIR_VALUES_MAX (more is an
 * error: the caller wanted them all); the DN alone; or both (members). */
static void values_entry(struct dir_op *op, LDAP *ld, LDAPMessage *e)
{
	if (strcmp(op->value, LDAP_NO_ATTRS) == 0) {
		dn_entry(op, ld, e);
		return;
	}
	if (strcmp(op->value, VALUES_MEMBERS) == 0) {
		dn_entry(op, ld, e);
		if (op->n_dns == 1) {
			values_add(op, ld, e, "member");
			if (dir_unique_members(op->d))
				values_add(op, ld, e, "uniqueMember");
		}
		return;
	}
	values_add(op, ld, e, op->value);
}

/* 389 DS's passwordPolicy switches: "on" (or "true"); absent is off, in a
 * local policy as in cn=config. */
static bool ds389_on(LDAP *ld, LDAPMessage *e, const char *attr)
{
	return value_is(ld, e, attr, "on") || value_is(ld, e, attr, "true");
}

/* One policy entry of a refresh: the default one is used at once, the
 * others wait in d->next for the refresh to end (policy_done). */
static void policy_entry(struct dir *d, LDAP *ld, LDAPMessage *e)
{
	char *dn = ldap_get_dn(ld, e);
	bool ds = d->conf->flavor == FLAVOR_389DS;
	long ds_max = (long)num_value(ld, e, "passwordMaxAge");
	struct dir_policy p = {.duration = (long)num_value(ld, e, "pwdLockoutDuration"),
	                       .max_age = (long)num_value(ld, e, "pwdMaxAge"),
	                       .must_change = value_is(ld, e, "pwdMustChange", "TRUE"),
	                       .min_length = (int)num_value(ld, e, "pwdMinLength")};
	bool ad = d->conf->flavor == FLAVOR_AD;

	if (dn == NULL)
		return;
	if (ds)
		p = (struct dir_policy){
		    .duration = (long)num_value(ld, e, "passwordLockoutDuration"),
		    .reset_after = (long)num_value(ld, e, "passwordResetFailureCount"),
		    .max_age = ds389_on(ld, e, "passwordExp") ? (ds_max > 0 ? ds_max : 1) : 0,
		    .must_change = ds389_on(ld, e, "passwordMustChange"),
		    .min_length = (int)num_value(ld, e, "passwordMinLength")};
	if (ad) /* the domain entry: only its minimum length is used */
		p = (struct dir_policy){.duration = -1,
		                        .must_change = true,
		                        .min_length = (int)num_value(ld, e, "minPwdLength")};
	p.read = true;
	/* A reload may have dropped policy_dn while this refresh ran. */
	if (ad || (ds ? dir_dn_equal(dn, DS389_CONFIG_DN)
	              : d->conf->policy_dn != NULL && dir_dn_equal(dn, d->conf->policy_dn))) {
		d->def = p;
		d->policy_default_seen = true;
	} else if (d->n_next < DIR_MAX_POLICIES && (p.dn = strdup(dn)) != NULL) {
		d->next[d->n_next++] = p;
	}
	ldap_memfree(dn);
}

static void op_entry(struct dir_op *op, LDAP *ld, LDAPMessage *e)
{
	const struct flavor *f = flavor_of(op->d->conf);
	char *dn;

	op->entries++;
	if (op->type == OP_VALUES) {
		values_entry(op, ld, e);
		return;
	}
	if (op->type == OP_SEARCH_DNS) {
		char *dn, *copy, **grown;

		/* The size limit asked for is the server's to keep: one that
		 * streams more is cut here, and the answer is partial. */
		if (op->n_dns >= DIR_DNS_MAX) {
			op->too_many = true;
			return;
		}
		dn = ldap_get_dn(ld, e);
		copy = dn != NULL ? strdup(dn) : NULL;

		/* An entry dropped would read as "not a member" (a protected
		 * group missed): the search fails instead (search_result). */
		grown = copy != NULL ? realloc(op->dns, (op->n_dns + 1) * sizeof(*grown)) : NULL;
		if (grown == NULL) {
			free(copy);
			op->lost = true;
		} else {
			op->dns = grown;
			op->dns[op->n_dns++] = copy;
		}
		ldap_memfree(dn);
		return;
	}
	if (op->type == OP_POLICY) {
		policy_entry(op->d, ld, e);
		return;
	}
	if (op->type != OP_SEARCH_USER || op->entries > 1)
		return;
	op->user = calloc(1, sizeof(*op->user));
	if (op->user == NULL)
		return;
	dn = ldap_get_dn(ld, e);
	op->user->dn = dn != NULL ? strdup(dn) : NULL;
	ldap_memfree(dn);
	op->user->uid = first_value(ld, e, op->d->conf->user_attr);
	op->user->name = first_value(ld, e, f->name_attr);
	op->user->department = first_value(ld, e, f->dept_attr);
	op->user->mail = first_value(ld, e, "mail");
	op->user->entry_id =
	    f->id_binary ? hex_value(ld, e, f->id_attr) : first_value(ld, e, f->id_attr);
	f->read_state(op->d, ld, e, op->user);
}

static bool rc_unavailable(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY ||
	       rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMELIMIT_EXCEEDED;
}

/* The status a modify-like reply means for op; DIR_REFUSED for the rest. */
static enum dir_status modify_status(const struct dir_op *op, int rc)
{
	const struct flavor *f = flavor_of(op->d->conf);

	if (rc == LDAP_SUCCESS)
		return op->type == OP_UNLOCK && f->unlock_from_state && !op->was_set ? DIR_UNCHANGED
		                                                                     : DIR_OK;
	if (rc == LDAP_NO_SUCH_OBJECT)
		return DIR_NOT_FOUND;
	if (rc == LDAP_ASSERTION_FAILED)
		return DIR_STALE;
	if (rc_unavailable(rc))
		return DIR_UNAVAILABLE;
	/* Adding a present member / deleting an absent one: nothing to do (each
	 * flavour has its own answer for it). */
	if (op->type == OP_ADD && rc == f->member_present_rc)
		return DIR_UNCHANGED;
	if (op->type == OP_DEL && rc == f->member_absent_rc)
		return DIR_UNCHANGED;
	/* Deleting an absent lock attribute: it was not locked. */
	if (rc == LDAP_NO_SUCH_ATTRIBUTE && (op->type == OP_UNLOCK || op->type == OP_ENABLE))
		return DIR_UNCHANGED;
	if (rc == LDAP_ALREADY_EXISTS)
		return DIR_EXISTS;
	return DIR_REFUSED;
}

/* op_finish's text for a failed must-change step; refused_message has
 * written it already for a refusal. */
static const char *partial_message(const struct dir_op *op, enum dir_status st, const char *err,
                                   char *buf, size_t len)
{
	if (st == DIR_REFUSED)
		return err;
	snprintf(buf, len, "the password was set but %s could not be set: %s",
	         flavor_of(op->d->conf)->must_change_what, err != NULL ? err : "");
	return buf;
}

static void refused_message(const struct dir_op *op, int rc, const char *diag, char *buf,
                            size_t len)
{
	if (op->type == OP_DEL && rc == LDAP_OBJECT_CLASS_VIOLATION)
		snprintf(buf, len,
		         "the directory refused: %s is the last member of the group "
		         "and a group needs at least one; add another member first",
		         op->value);
	else if (op->type == OP_PASSWD && op->d->conf->flavor == FLAVOR_OPENLDAP &&
	         (rc == LDAP_CONSTRAINT_VIOLATION || rc == LDAP_INSUFFICIENT_ACCESS))
		/* With only `write` on userPassword, slapd applies the password
		 * policy (quality, length, age, history, safe modify) to the
		 * one-time password too. */
		snprintf(buf, len,
		         "the directory refused the one-time password: %s%s%s (give the service "
		         "account `manage` on userPassword, which makes it a password "
		         "administrator exempt from the policy's checks; or relax the policy)",
		         ldap_err2string(rc), diag[0] ? ": " : "", diag);
	else if (op->type == OP_PASSWD && rc == LDAP_CONFIDENTIALITY_REQUIRED)
		/* 389 DS takes a Password Modify only over TLS. */
		snprintf(buf, len,
		         "the directory refused to set a password over an unencrypted connection "
		         "(%s%s%s): set [ldap] starttls = yes, or use an ldaps:// uri",
		         ldap_err2string(rc), diag[0] ? ": " : "", diag);
	else if (op->type == OP_PWDRESET)
		snprintf(buf, len, "the password was set but %s could not be set: %s%s%s",
		         flavor_of(op->d->conf)->must_change_what, ldap_err2string(rc),
		         diag[0] ? ": " : "", diag);
	else if (rc == LDAP_INSUFFICIENT_ACCESS)
		snprintf(
		    buf, len,
		    "the directory refused: %s%s%s: the service account ([ldap] bind_dn) may not "
		    "make this change: give it the rights ldapdesk needs on these users and "
		    "groups (an OpenLDAP ACL, a 389 DS ACI, or AD delegation: Reset Password, "
		    "lockoutTime, userAccountControl, group members), or leave this entry to "
		    "someone who may",
		    ldap_err2string(rc), diag[0] ? ": " : "", diag);
	else
		snprintf(buf, len, "the directory refused: %s%s%s", ldap_err2string(rc),
		         diag[0] ? ": " : "", diag);
}

static void search_result(struct dir_op *op, int rc, const char *msg)
{
	enum dir_status st;

	if (rc_unavailable(rc))
		st = DIR_UNAVAILABLE;
	else if (op->type == OP_SEARCH_DNS && op->lost)
		st = DIR_UNAVAILABLE, msg = "out of memory reading the directory's answer";
	else if (op->type == OP_SEARCH_DNS && (rc == LDAP_SIZELIMIT_EXCEEDED || op->too_many))
		st = DIR_PARTIAL, msg = DIR_SIZE_LIMIT_MSG;
	else if (op->type == OP_SEARCH_USER && (op->entries > 1 || rc == LDAP_SIZELIMIT_EXCEEDED))
		st = DIR_REFUSED, msg = "more than one entry has this user name";
	else if (rc != LDAP_SUCCESS && rc != LDAP_NO_SUCH_OBJECT &&
	         !(op->type == OP_POLICY && rc == LDAP_SIZELIMIT_EXCEEDED))
		st = DIR_REFUSED; /* policies: the first DIR_POLICY_SEARCH_MAX are enough */
	else if (op->type == OP_VALUES && op->too_many)
		st = DIR_REFUSED, msg = "too many values to read at once";
	else if (op->type == OP_SEARCH_DNS)
		st = rc == LDAP_SUCCESS ? DIR_OK : DIR_NOT_FOUND;
	else
		st = op->entries > 0 ? DIR_OK : DIR_NOT_FOUND;
	op_finish(op, st, msg);
}

/* An add refused with 65, or a delete of an absent member: does the group
 * list its members in `member` at all? OP_GROUP_CLASS then asks. */
static bool member_attr_doubt(const struct dir_op *op, int rc)
{
	const struct flavor *f = flavor_of(op->d->conf);

	return f->member_group_filter != NULL &&
	       ((op->type == OP_ADD && rc == LDAP_OBJECT_CLASS_VIOLATION) ||
	        (op->type == OP_DEL && rc == f->member_absent_rc));
}

/* The answer to OP_GROUP_CLASS. A group that keeps its members elsewhere
 * (a groupOfUniqueNames: uniqueMember) is a refusal that says so, never an
 * "unchanged" revoke that left the user a member; in a member group the
 * change's own answer (kept in value2) stands. */
static void group_class_result(struct dir_op *op, int rc, const char *msg)
{
	enum dir_status st;
	char buf[700];

	if (rc_unavailable(rc)) {
		st = DIR_UNAVAILABLE;
	} else if (rc == LDAP_NO_SUCH_OBJECT) {
		st = DIR_NOT_FOUND;
	} else if (rc != LDAP_SUCCESS) {
		st = DIR_REFUSED;
		snprintf(buf, sizeof(buf), "the directory refused: %s", msg);
		msg = buf;
	} else if (op->entries > 0) {
		st = op->change == OP_DEL ? DIR_UNCHANGED : DIR_REFUSED;
		msg = op->value2;
	} else {
		st = DIR_REFUSED;
		snprintf(buf, sizeof(buf),
		         "the group %s is not a groupOfNames: ldapdesk grants and revokes through "
		         "its member attribute, and this group lists its members otherwise (a "
		         "groupOfUniqueNames uses uniqueMember), so nothing was %s; make the "
		         "permission's group a groupOfNames, or change this membership with the "
		         "directory's own tools",
		         op->dn, op->change == OP_ADD ? "added" : "removed");
		msg = buf;
	}
	op_finish(op, st, msg);
}

static void op_result(struct dir_op *op, int rc, const char *diag)
{
	char msg[512];
	enum dir_status st;

	snprintf(msg, sizeof(msg), "%s%s%s", ldap_err2string(rc), diag[0] ? ": " : "", diag);
	if (op->type == OP_SEARCH_USER || op->type == OP_MEMBER || op->type == OP_POLICY ||
	    op->type == OP_SEARCH_DNS || op->type == OP_VALUES) {
		search_result(op, rc, msg);
		return;
	}
	if (op->type == OP_GROUP_CLASS) {
		group_class_result(op, rc, msg);
		return;
	}
	st = modify_status(op, rc);
	if (member_attr_doubt(op, rc)) {
		refused_message(op, rc, diag, msg, sizeof(msg));
		op->change = op->type;
		op->type = OP_GROUP_CLASS;
		if ((op->value2 = strdup(msg)) != NULL && op_send(op, op->conn->ld) == LDAP_SUCCESS)
			return;
		snprintf(msg, sizeof(msg), "cannot read the group's object classes");
		st = DIR_UNAVAILABLE;
	}
	if (st == DIR_OK && op->type == OP_PASSWD && flavor_of(op->d->conf)->must_change != NULL) {
		/* Second step: a service account with only `write` gets no pwdReset from
		 * slapd; with `manage` this replace is harmless. */
		op->type = OP_PWDRESET;
		if (op_send(op, op->conn->ld) == LDAP_SUCCESS)
			return;
		st = DIR_UNAVAILABLE;
	}
	if (st == DIR_REFUSED)
		refused_message(op, rc, diag, msg, sizeof(msg));
	op_finish(op, st, msg);
}

static struct dir_op *flight_find(struct dir *d, struct dir_conn *c, int msgid)
{
	struct dir_op *op;

	TAILQ_FOREACH(op, &d->flight, entry)
	if (op->conn == c && op->msgid == msgid)
		return op;
	return NULL;
}

static void conn_handle(struct dir_conn *c, LDAPMessage *msg)
{
	struct dir_op *op = flight_find(c->d, c, ldap_msgid(msg));
	int type = ldap_msgtype(msg), rc = LDAP_OTHER;
	char *diag = NULL;

	if (op == NULL)
		return; /* abandoned after a timeout */
	if (type == LDAP_RES_SEARCH_ENTRY) {
		op_entry(op, c->ld, msg);
		return;
	}
	if (type == LDAP_RES_SEARCH_REFERENCE || type == LDAP_RES_INTERMEDIATE)
		return;
	if (ldap_parse_result(c->ld, msg, &rc, NULL, &diag, NULL, NULL, 0) != LDAP_SUCCESS)
		rc = LDAP_OTHER;
	op_result(op, rc, diag != NULL ? diag_trim(diag) : "");
	ldap_memfree(diag);
}

/*
 * Whether libldap holds reply bytes the socket will not signal again: its
 * read-ahead layer pulls up to 16 KB at a time from the socket, below TLS.
 */
static bool conn_buffered(struct dir_conn *c)
{
	Sockbuf *sb = NULL;

	return c->ld != NULL && ldap_get_option(c->ld, LDAP_OPT_SOCKBUF, &sb) == 0 && sb != NULL &&
	       ber_sockbuf_ctrl(sb, LBER_SB_OPT_DATA_READY, NULL);
}

/*
 * Reads every reply that has arrived, including what libldap already holds
 * (conn_buffered). Each ldap_result decrypts at most one TLS record, so a
 * reply over several (a group of 600 members is 33 KB) returns 0 until its
 * last. Stopping at the first 0 left the rest in libldap's buffer, with
 * nothing more to come on the socket, until the operation's timeout. Each
 * pass takes buffered bytes, so the loop ends. After DIR_READ_BURST passes
 * the event is made active again and the callback returns; libevent 2.1
 * runs it again before it next polls, so this bounds one call's work, not
 * the turn's: what libldap holds is at most one reply being read plus those
 * already received (each bounded), and it is read before other events.
 */
static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dir_conn *c = arg;
	struct timeval zero = {0, 0};
	LDAPMessage *msg;
	int rc;

	(void)fd;
	(void)what;
	for (int pass = 1;; pass++) {
		rc = ldap_result(c->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &msg);
		if (rc == -1) {
			int err = LDAP_SERVER_DOWN;

			ldap_get_option(c->ld, LDAP_OPT_RESULT_CODE, &err);
			conn_down(c, ldap_err2string(err));
			break;
		}
		if (rc > 0) {
			c->d->last_answer = time(NULL);
			c->d->unanswered = false;
			conn_handle(c, msg);
			ldap_msgfree(msg);
		}
		/* Nothing buffered: the socket's next readiness brings us back. */
		if (!conn_buffered(c))
			break;
		if (pass >= DIR_READ_BURST) {
			event_active(c->rev, EV_READ, 0);
			break;
		}
	}
	dir_dispatch(c->d);
}

/* ---- public operations ----------------------------------------------------- */

static char *escaped_filter(const char *attr, const char *value)
{
	struct berval in, out = {0, NULL};
	char *f = NULL;

	ber_str2bv(value, 0, 0, &in);
	if (ldap_bv2escaped_filter_value(&in, &out) != 0)
		return NULL;
	if (asprintf(&f, "(%s=%s)", attr, out.bv_val) == -1)
		f = NULL;
	ber_memfree(out.bv_val);
	return f;
}

int dir_find_user(struct dir *d, const char *uid, dir_user_fn fn, void *arg)
{
	struct dir_op *op;

	if (!dir_valid_uid(uid) || (op = op_new(d, OP_SEARCH_USER, arg)) == NULL)
		return -1;
	op->fn.user = fn;
	op->value = escaped_filter(d->conf->user_attr, uid);
	if (op->value != NULL && flavor_of(d->conf)->user_filter != NULL) {
		char *plain = op->value;

		if (asprintf(&op->value, "%s%s)", flavor_of(d->conf)->user_filter, plain) == -1)
			op->value = NULL;
		free(plain);
	}
	if (op->value == NULL) {
		op_free(op);
		return -1;
	}
	return op_submit(op);
}

static int submit_done(struct dir *d, enum op_type type, const char *dn, const char *value,
                       dir_done_fn fn, void *arg)
{
	struct dir_op *op = op_new(d, type, arg);

	if (op == NULL)
		return -1;
	op->fn.done = fn;
	op->dn = strdup(dn);
	op->value = value != NULL ? strdup(value) : NULL;
	if (op->dn == NULL || (value != NULL && op->value == NULL)) {
		op_free(op);
		return -1;
	}
	return op_submit(op);
}

/* Unlock, disable and enable carry the state read before: some flavours
 * decide "unchanged" from it, AD's disable keeps the other account bits. */
/* assertion (taken over, may be NULL) goes on the modify as RFC 4528 control. */
static int submit_state(struct dir *d, enum op_type type, const struct dir_user *u, bool was_set,
                        char *assertion, dir_done_fn fn, void *arg)
{
	struct dir_op *op = op_new(d, type, arg);

	if (op == NULL) {
		free(assertion);
		return -1;
	}
	op->fn.done = fn;
	op->was_set = was_set;
	op->account = u->account_control;
	op->assertion = assertion;
	if ((op->dn = strdup(u->dn)) == NULL) {
		op_free(op);
		return -1;
	}
	return op_submit(op);
}

/* "(|(!(ATTR=*))(&(ATTR<=NOW)(ATTR>=CUTOFF)))": no lock, or one in effect
 * (not dated in the future) and not yet expired by the default policy's
 * lockout duration (no CUTOFF when locks never expire), into buf; "" when
 * the policy is not read yet. A user under another policy whose lock this
 * calls expired is read again (assertion failed), and decided by its own;
 * one under a shorter policy whose lock has expired by it but not by the
 * default passes, and is answered "unlocked" where status says not locked
 * (the cache holds no policy; the lock was real a moment before). */
static void lock_clause(struct dir *d, const struct flavor *f, char *buf, size_t len)
{
	const char *a = f->lock_time_attr;
	time_t now = time(NULL);
	long duration = d->def.duration;
	char at[32], from[32], cut[80] = "", *clause = d->lock_clause.clause;

	/* Two gmtime_r, strftime and snprintf calls (~7,000 instructions) once
	 * a second, not for every unlock: the clause names only the second. */
	if (now != d->lock_clause.at || duration != d->lock_clause.duration ||
	    a != d->lock_clause.attr) {
		d->lock_clause.at = now;
		d->lock_clause.duration = duration;
		d->lock_clause.attr = a;
		clause[0] = '\0';
		if (a != NULL && duration >= 0 && gentime(now, at, sizeof(at)) &&
		    (duration == 0 || gentime(now - duration, from, sizeof(from)))) {
			if (duration > 0)
				snprintf(cut, sizeof(cut), "(%s>=%s)", a, from);
			snprintf(clause, sizeof(d->lock_clause.clause), "(|(!(%s=*))(&(%s<=%s)%s))",
			         a, a, at, cut);
		}
	}
	snprintf(buf, len, "%s", clause);
}

/* For a user whose state was just read, the lock as read: none
 * ("!(ATTR=*)"), or the value read (in effect or not). Locked or unlocked
 * since, by failed logins or anyone else, the entry no longer matches: it
 * is read again (assertion failed), so the "ok" or "unchanged" recorded is
 * what the modify did. A value that is no plain time asserts nothing. */
static void read_lock_clause(const struct flavor *f, const struct dir_user *u, char *buf,
                             size_t len)
{
	const char *a = f->lock_time_attr, *v = u->locked_since;

	buf[0] = '\0';
	if (a == NULL)
		return;
	if (v == NULL && !u->locked)
		snprintf(buf, len, "(!(%s=*))", a);
	else if (v != NULL && strlen(v) <= 32 && strspn(v, "0123456789.Z") == strlen(v))
		snprintf(buf, len, "(%s=%s)", a, v); /* no filter specials */
}

/* What an unlock asserts: not disabled, the department the cache holds (or
 * none), and, for a cached user whose state was not read, a lock that has
 * not expired. NULL on ENOMEM. */
static char *unlock_assertion(struct dir *d, const struct flavor *f, const struct dir_user *u)
{
	const char *department = u->department;
	char *dept = department != NULL ? escaped_filter(f->dept_attr, department) : NULL,
	     *a = NULL, lock[192] = "";
	int rc;

	if (u->cached)
		lock_clause(d, f, lock, sizeof(lock));
	else
		read_lock_clause(f, u, lock, sizeof(lock));
	if (department == NULL)
		rc = asprintf(&a, "(&%s%s(!(%s=*)))", f->unlock_assert, lock, f->dept_attr);
	else
		rc = dept != NULL ? asprintf(&a, "(&%s%s%s)", f->unlock_assert, lock, dept) : -1;
	free(dept);
	return rc == -1 ? NULL : a;
}

int dir_unlock(struct dir *d, const struct dir_user *u, dir_done_fn fn, void *arg)
{
	const struct flavor *f = flavor_of(d->conf);
	char *assertion = NULL;

	/* Asserted for a searched user too: an administrator's disable between
	 * the search and the modify must not be undone by the unlock. */
	if (f->unlock_assert != NULL && (assertion = unlock_assertion(d, f, u)) == NULL)
		return -1;
	if (u->cached && assertion == NULL)
		return -1;
	/* A cached user's state was not read: the assertion stands for it (a
	 * lock that is there has not expired; none makes the delete fail). */
	return submit_state(d, OP_UNLOCK, u, u->cached || u->locked, assertion, fn, arg);
}

struct dir_user *dir_cached_user(struct dir *d, const char *uid)
{
	struct dir_user *u;

	if (flavor_of(d->conf)->unlock_assert == NULL || (u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	/* The cached spelling, not the one typed: the audit's target is the
	 * directory's uid ("CAROL" asked is recorded as carol). */
	if (!ucache_get(d->users, uid, time(NULL), &u->uid, &u->dn, &u->department)) {
		dir_user_free(u);
		d->cache_misses++;
		return NULL;
	}
	u->cached = true;
	d->cache_hits++;
	return u;
}

void dir_cache_stats(const struct dir *d, unsigned long long *hits, unsigned long long *misses)
{
	*hits = d->cache_hits;
	*misses = d->cache_misses;
}

int dir_enable(struct dir *d, const struct dir_user *u, dir_done_fn fn, void *arg)
{
	return submit_state(d, OP_ENABLE, u, u->admin_locked, NULL, fn, arg);
}

int dir_add_member(struct dir *d, const char *group, const char *dn, dir_done_fn fn, void *arg)
{
	return submit_done(d, OP_ADD, group, dn, fn, arg);
}

int dir_del_member(struct dir *d, const char *group, const char *dn, dir_done_fn fn, void *arg)
{
	return submit_done(d, OP_DEL, group, dn, fn, arg);
}

int dir_disable(struct dir *d, const struct dir_user *u, dir_done_fn fn, void *arg)
{
	return submit_state(d, OP_DISABLE, u, u->admin_locked, NULL, fn, arg);
}

int dir_set_department(struct dir *d, const char *dn, const char *dept, dir_done_fn fn, void *arg)
{
	return submit_done(d, OP_SET_OU, dn, dept, fn, arg);
}

int dir_delete(struct dir *d, const char *dn, dir_done_fn fn, void *arg)
{
	return submit_done(d, OP_DELETE_ENTRY, dn, NULL, fn, arg);
}

int dir_rename(struct dir *d, const char *dn, const char *newrdn, const char *newparent,
               dir_done_fn fn, void *arg)
{
	struct dir_op *op = op_new(d, OP_RENAME, arg);

	if (op == NULL)
		return -1;
	op->fn.done = fn;
	op->dn = strdup(dn);
	op->value = strdup(newrdn);
	op->value2 = strdup(newparent);
	if (op->dn == NULL || op->value == NULL || op->value2 == NULL) {
		op_free(op);
		return -1;
	}
	return op_submit(op);
}

int dir_add_entry(struct dir *d, const char *dn, const char *const *pairs, dir_done_fn fn,
                  void *arg)
{
	struct dir_op *op = op_new(d, OP_ADD_ENTRY, arg);
	size_t n = 0;

	if (op == NULL)
		return -1;
	while (pairs[n] != NULL)
		n++;
	op->fn.done = fn;
	op->dn = strdup(dn);
	op->pairs = calloc(n + 1, sizeof(*op->pairs));
	for (size_t i = 0; op->pairs != NULL && i < n; i++)
		op->pairs[i] = strdup(pairs[i]);
	if (op->dn == NULL || op->pairs == NULL) {
		op_free(op);
		return -1;
	}
	return op_submit(op);
}

/* A search whose entries (or values) go to fn as strings; value, the filter
 * or attribute, is taken over. */
static int submit_dns(struct dir *d, enum op_type type, const char *dn, char *value, dir_dns_fn fn,
                      void *arg)
{
	struct dir_op *op = op_new(d, type, arg);

	if (op == NULL) {
		free(value);
		return -1;
	}
	op->fn.dns = fn;
	op->dn = strdup(dn);
	op->value = value;
	if (op->dn == NULL || op->value == NULL) {
		op_free(op);
		return -1;
	}
	return op_submit(op);
}

int dir_read_values(struct dir *d, const char *dn, const char *attr, dir_dns_fn fn, void *arg)
{
	return submit_dns(d, OP_VALUES, dn, strdup(attr), fn, arg);
}

int dir_has_password(struct dir *d, const char *dn, dir_dns_fn fn, void *arg)
{
	return submit_dns(d, OP_SEARCH_DNS, dn, strdup("(userPassword=*)"), fn, arg);
}

int dir_read_dn(struct dir *d, const char *dn, dir_dns_fn fn, void *arg)
{
	return submit_dns(d, OP_VALUES, dn, strdup(LDAP_NO_ATTRS), fn, arg);
}

int dir_read_members(struct dir *d, const char *dn, dir_dns_fn fn, void *arg)
{
	return submit_dns(d, OP_VALUES, dn, strdup(VALUES_MEMBERS), fn, arg);
}

int dir_find_members(struct dir *d, const char *base, const char *member, dir_dns_fn fn, void *arg)
{
	return submit_dns(d, OP_SEARCH_DNS, base, escaped_filter("member", member), fn, arg);
}

bool dir_unique_members(const struct dir *d)
{
	return d->conf->flavor == FLAVOR_389DS;
}

/* "Is dn a member?" for roles and protection. 389 DS groups are often
 * groupOfUniqueNames, whose members are in uniqueMember: a protected or role
 * group of that class must not protect, or empower, nobody. */
static char *member_filter(const struct dir *d, const char *dn)
{
	char *m = escaped_filter("member", dn), *u, *f = NULL;

	if (m == NULL || !dir_unique_members(d))
		return m;
	if ((u = escaped_filter("uniqueMember", dn)) != NULL && asprintf(&f, "(|%s%s)", m, u) == -1)
		f = NULL;
	free(m);
	free(u);
	return f;
}

int dir_set_password(struct dir *d, const char *dn, const char *pw, dir_done_fn fn, void *arg)
{
	struct dir_op *op = op_new(d, OP_PASSWD, arg);

	if (op == NULL)
		return -1;
	op->fn.done = fn;
	op->dn = strdup(dn);
	op->secret = strdup(pw);
	if (op->dn == NULL || op->secret == NULL) {
		op_free(op);
		return -1;
	}
	return op_submit(op);
}

/* Group checks: one base search per group, gathered by a small job. */
struct member_job;
struct member_sub {
	struct member_job *job;
	unsigned idx;
};
struct member_job {
	dir_groups_fn fn;
	void *arg;
	unsigned long mask;
	size_t pending;
	enum dir_status worst;
	char err[256];
	struct member_sub subs[64];
};

static void member_sub_done(void *arg, enum dir_status st, const char *err)
{
	struct member_sub *sub = arg;
	struct member_job *job = sub->job;

	if (st == DIR_OK)
		job->mask |= 1UL << sub->idx;
	else if (st != DIR_NOT_FOUND && job->worst == DIR_OK) {
		job->worst = st;
		snprintf(job->err, sizeof(job->err), "%s", err);
	}
	if (--job->pending == 0) {
		job->fn(job->arg, job->worst, job->mask, job->worst == DIR_OK ? NULL : job->err);
		free(job);
	}
}

bool dir_dn_equal(const char *a, const char *b)
{
	return dir_dn_under(a, b) && dir_dn_under(b, a);
}

int dir_find_groups_under(struct dir *d, const char *base, const char *member, dir_dns_fn fn,
                          void *arg)
{
	return submit_dns(d, OP_SEARCH_DNS, base, member_filter(d, member), fn, arg);
}

const char *dir_group_base(const struct dir *d)
{
	return d->conf->group_base;
}

/* One base search per group with filter (the member test), gathered by a
 * job. Return: 0 (fn called later, once), -1 (nothing sent). */
static int member_job_submit(struct dir *d, const char *filter, const char *const *groups, size_t n,
                             dir_groups_fn fn, void *arg)
{
	struct member_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return -1;
	job->fn = fn;
	job->arg = arg;
	job->worst = DIR_OK;
	for (size_t i = 0; i < n; i++) {
		struct dir_op *op = op_new(d, OP_MEMBER, &job->subs[i]);

		if (op == NULL) {
			job->worst = DIR_UNAVAILABLE;
			snprintf(job->err, sizeof(job->err),
			         "too many directory operations queued");
			break;
		}
		job->subs[i].job = job;
		job->subs[i].idx = (unsigned)i;
		op->fn.done = member_sub_done;
		op->dn = strdup(groups[i]);
		op->value = strdup(filter);
		if (op->dn == NULL || op->value == NULL) {
			/* The groups not searched must not read as "not a member": a
			 * protected or role group would be missed (fail closed). */
			op_free(op);
			job->worst = DIR_UNAVAILABLE;
			snprintf(job->err, sizeof(job->err), "out of memory");
			break;
		}
		job->pending++;
		op_submit(op);
	}
	if (job->pending == 0) {
		free(job);
		return -1;
	}
	return 0;
}

int dir_member_of(struct dir *d, const char *dn, const char *const *groups, size_t n,
                  dir_groups_fn fn, void *arg)
{
	char *filter;
	int rc;

	if (n == 0 || n > 64)
		return -1;
	if ((filter = member_filter(d, dn)) == NULL)
		return -1;
	rc = member_job_submit(d, filter, groups, n, fn, arg);
	free(filter);
	return rc;
}

int dir_member_of_any(struct dir *d, const char *const *dns, size_t k, const char *const *groups,
                      size_t n, dir_groups_fn fn, void *arg)
{
	char *parts[DIR_MEMBER_ANY_MAX] = {0}, *filter = NULL;
	size_t len = sizeof("(|)"), i;
	int rc = -1;

	if (n == 0 || n > 64 || k == 0 || k > DIR_MEMBER_ANY_MAX)
		return -1;
	for (i = 0; i < k && (parts[i] = member_filter(d, dns[i])) != NULL; i++)
		len += strlen(parts[i]);
	/* (|f1 f2 ...): a group listing any of the entries matches. */
	if (i == k && (filter = malloc(len)) != NULL) {
		char *end = stpcpy(filter, "(|");

		for (size_t j = 0; j < k; j++)
			end = stpcpy(end, parts[j]);
		memcpy(end, ")", 2);
		rc = member_job_submit(d, filter, groups, n, fn, arg);
	}
	for (size_t j = 0; j < k; j++)
		free(parts[j]);
	free(filter);
	return rc;
}

/* ---- password policy ------------------------------------------------------- */

static void policies_clear(struct dir_policy *p, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free(p[i].dn);
	*n = 0;
}

/* 389 DS's cn=config hidden by its ACIs: said once (every refresh would
 * repeat it), and again if it was read since. */
static void ds389_policy_warn(struct dir *d)
{
	if (d->policy_default_seen || d->policy_warned) {
		d->policy_warned = !d->policy_default_seen;
		return;
	}
	d->policy_warned = true;
	log_warnx("cannot read 389 DS's global password policy (%s: passwordMustChange, "
	          "passwordExp): for users without a local policy, status and resets say a "
	          "change is forced; give the service account read access to objectClass, "
	          "passwordMustChange, passwordExp and passwordMaxAge of %s (README, Directory "
	          "flavours)",
	          DS389_CONFIG_DN, DS389_CONFIG_DN);
}

/* One search of a refresh answered: the first failure is kept (no entry is
 * none: whether the default policy was seen is checked at the end), and the
 * last answer ends the refresh. */
static void policy_done(void *arg, enum dir_status st, const char *err)
{
	struct dir *d = arg;

	if (st != DIR_OK && st != DIR_NOT_FOUND && d->policy_st == DIR_OK) {
		d->policy_st = st;
		snprintf(d->policy_err, sizeof(d->policy_err), "%s", err != NULL ? err : "");
	}
	if (--d->policy_pending > 0)
		return;
	st = d->policy_st;
	err = st == DIR_OK ? NULL : d->policy_err;
	if (st == DIR_OK && !d->policy_default_seen && d->conf->flavor == FLAVOR_OPENLDAP)
		st = DIR_NOT_FOUND;
	if (st != DIR_OK) {
		if (d->conf->flavor == FLAVOR_389DS)
			log_warnx("cannot read 389 DS's local password policies under %s: %s",
			          d->conf->user_base, err);
		else
			log_warnx("cannot read the password policy %s: %s",
			          d->conf->policy_dn != NULL ? d->conf->policy_dn
			                                     : "(policy_dn removed)",
			          err != NULL ? err : "not found (no pwdPolicy entry by that DN)");
		policies_clear(d->next, &d->n_next);
		return;
	}
	if (d->conf->flavor == FLAVOR_389DS)
		ds389_policy_warn(d);
	/* Swapped whole: a user read meanwhile saw the old table. */
	policies_clear(d->policies, &d->n_policies);
	memcpy(d->policies, d->next, d->n_next * sizeof(d->next[0]));
	d->n_policies = d->n_next;
	d->n_next = 0;
}

/* The search base: the default policy's parent, where policies are kept
 * together (ou=policies); a DN of one RDN is searched itself. Return:
 * malloc'd, or NULL if dn does not parse or memory ran out. */
static char *policy_base(const char *dn)
{
	LDAPDN parsed = NULL;
	char *parent = NULL, *out = NULL;

	if (ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAP) != LDAP_SUCCESS || parsed == NULL)
		return NULL;
	if (parsed[0] == NULL || parsed[1] == NULL)
		out = strdup(dn);
	else if (ldap_dn2str(parsed + 1, &parent, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS &&
	         parent != NULL)
		out = strdup(parent);
	ldap_memfree(parent);
	ldap_dnfree(parsed);
	return out;
}

/* 389 DS's cn=config: a refusal to read it (its ACIs may hide it) is "not
 * seen", which the end of the refresh says; the local policies still count. */
static void policy_config_done(void *arg, enum dir_status st, const char *err)
{
	bool down = st == DIR_UNAVAILABLE;

	policy_done(arg, down ? st : DIR_NOT_FOUND, down ? err : NULL);
}

/* One search of a refresh; base is taken over. Return: 0, or -1 (not sent). */
static int policy_search(struct dir *d, char *base, int scope, const char *filter, dir_done_fn fn)
{
	struct dir_op *op = op_new(d, OP_POLICY, d);

	if (op == NULL) {
		free(base);
		return -1;
	}
	op->fn.done = fn;
	op->dn = base;
	op->scope = scope;
	op->value = strdup(filter);
	if (op->dn == NULL || op->value == NULL) {
		op_free(op);
		return -1;
	}
	d->policy_pending++;
	return op_submit(op);
}

/* AD: the domain entry, the DC= part of user_base ("CN=Users,DC=example,
 * DC=com": "DC=example,DC=com"). Return: malloc'd, or NULL (none, no memory). */
static char *ad_domain(const char *base)
{
	LDAPDN parsed = NULL;
	char *dn = NULL, *out = NULL;
	size_t i = 0, first = 0;

	if (ldap_str2dn(base, &parsed, LDAP_DN_FORMAT_LDAP) != LDAP_SUCCESS || parsed == NULL)
		return NULL;
	for (; parsed[i] != NULL; i++)
		if (parsed[i][1] != NULL || parsed[i][0]->la_attr.bv_len != 2 ||
		    strncasecmp(parsed[i][0]->la_attr.bv_val, "dc", 2) != 0)
			first = i + 1;
	if (parsed[first] != NULL &&
	    ldap_dn2str(parsed + first, &dn, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS && dn != NULL)
		out = strdup(dn);
	ldap_memfree(dn);
	ldap_dnfree(parsed);
	return out;
}

/* AD's refresh ends: a domain entry not read leaves one-time passwords at
 * their own length, which the log says once per failure. */
static void policy_ad_done(void *arg, enum dir_status st, const char *err)
{
	struct dir *d = arg;

	d->policy_pending--;
	if (st != DIR_OK)
		log_warnx("cannot read minPwdLength from the domain above %s: %s (one-time "
		          "passwords are %d characters)",
		          d->conf->user_base, err != NULL ? err : "not found", PASSGEN_LEN);
}

int dir_password_min(const struct dir *d)
{
	return d->def.min_length;
}

static void dir_policy_refresh(struct dir *d)
{
	/* One refresh at a time: entries go into d->next until its end. AD
	 * keeps the rest in the entry (and computes it): only the domain's
	 * minimum password length is read. */
	if (d->policy_pending > 0)
		return;
	if (d->conf->flavor == FLAVOR_AD) {
		char *domain = ad_domain(d->conf->user_base);

		if (domain != NULL)
			(void)policy_search(d, domain, LDAP_SCOPE_BASE, "(objectClass=*)",
			                    policy_ad_done);
		return;
	}
	d->policy_default_seen = false;
	d->policy_st = DIR_OK;
	if (d->conf->flavor == FLAVOR_OPENLDAP && d->conf->policy_dn != NULL)
		(void)policy_search(d, policy_base(d->conf->policy_dn), LDAP_SCOPE_SUBTREE,
		                    "(objectClass=pwdPolicy)", policy_done);
	/* 389 DS: the global policy, and the local ones (ldapSubEntry entries in
	 * nsPwPolicyContainer entries, found only when asked for by class) under
	 * user_base; a local policy above user_base counts as unread. */
	if (d->conf->flavor == FLAVOR_389DS &&
	    policy_search(d, strdup(DS389_CONFIG_DN), LDAP_SCOPE_BASE, "(objectClass=*)",
	                  policy_config_done) == 0)
		(void)policy_search(d, strdup(d->conf->user_base), LDAP_SCOPE_SUBTREE,
		                    "(&(objectClass=ldapSubEntry)(objectClass=passwordPolicy))",
		                    policy_done);
}

static void policy_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dir_policy_refresh(arg);
}

/* ---- operator bind checks ---------------------------------------------------- */

struct bind_job {
	TAILQ_ENTRY(bind_job) entry;
	struct dir *d;
	const struct config *conf; /* held (config_ref) until the job is freed */
	struct event *ev;
	pthread_t thread;
	char *dn, *pw;
	enum dir_bind_result result;
	char err[256];
	dir_bind_fn fn;
	void *arg;
};

static void bind_run(struct bind_job *j, LDAP *ld)
{
	const struct config *conf = j->conf;
	LDAPControl *req = NULL, *ctrls[2] = {NULL, NULL}, **res = NULL;
	struct timeval tv = {conf->timeout_ms / 1000, (conf->timeout_ms % 1000) * 1000};
	struct berval cred;
	LDAPMessage *msg = NULL;
	char *diag = NULL;
	int msgid, rc = LDAP_OTHER;

	ber_str2bv(j->pw, 0, 0, &cred);
	ldap_create_passwordpolicy_control(ld, &req);
	ctrls[0] = req;
	if (ldap_sasl_bind(ld, j->dn, LDAP_SASL_SIMPLE, &cred, ctrls, NULL, &msgid) ==
	        LDAP_SUCCESS &&
	    ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, &msg) > 0)
		ldap_parse_result(ld, msg, &rc, NULL, &diag, NULL, &res, 0);
	else
		rc = LDAP_TIMEOUT;
	/* The diagnostic (AD's "data 775") is decoded, never logged: no secrets in it,
	 * but no need either. */
	j->result = flavor_of(conf)->bind_decode(ld, rc, diag, res);
	ldap_memfree(diag);
	if (j->result == DIR_BIND_UNAVAILABLE)
		snprintf(j->err, sizeof(j->err), "the directory could not check the password: %s",
		         ldap_err2string(rc));
	if (j->result == DIR_BIND_EXPIRED)
		snprintf(j->err, sizeof(j->err), "%s", flavor_of(conf)->expired_words);
	ldap_controls_free(res);
	ldap_control_free(req);
	ldap_msgfree(msg);
}

static void *bind_thread(void *arg)
{
	struct bind_job *j = arg;
	LDAP *ld = NULL;

	j->result = DIR_BIND_UNAVAILABLE;
	if (ldap_open(j->conf, &ld, j->err, sizeof(j->err)) == 0) {
		bind_run(j, ld);
		ldap_unbind_ext(ld, NULL, NULL);
	}
	event_active(j->ev, EV_READ, 0);
	return NULL;
}

static void bind_job_free(struct bind_job *j)
{
	if (j->pw != NULL)
		OPENSSL_cleanse(j->pw, strlen(j->pw));
	free(j->pw);
	free(j->dn);
	if (j->ev != NULL)
		event_free(j->ev);
	config_unref(j->conf);
	free(j);
}

static void bind_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bind_job *j = arg;

	(void)fd;
	(void)what;
	pthread_join(j->thread, NULL);
	TAILQ_REMOVE(&j->d->binds, j, entry);
	j->d->bind_threads--;
	j->fn(j->arg, j->result, j->err[0] ? j->err : NULL);
	bind_job_free(j);
}

int dir_bind_check(struct dir *d, const char *dn, const char *pw, dir_bind_fn fn, void *arg)
{
	struct bind_job *j;

	if (d->bind_threads >= DIR_BIND_THREADS || (j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->d = d;
	j->conf = config_ref(d->conf);
	j->fn = fn;
	j->arg = arg;
	j->dn = strdup(dn);
	j->pw = strdup(pw);
	j->ev = event_new(d->base, -1, 0, bind_done_cb, j);
	if (j->dn == NULL || j->pw == NULL || j->ev == NULL ||
	    pthread_create(&j->thread, NULL, bind_thread, j) != 0) {
		bind_job_free(j);
		return -1;
	}
	TAILQ_INSERT_TAIL(&d->binds, j, entry);
	d->bind_threads++;
	return 0;
}

/* ---- pool ------------------------------------------------------------------ */

static void dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dir_dispatch(arg);
}

int dir_new(struct event_base *base, const struct config *conf, struct dir **dp, char *err,
            size_t errlen)
{
	struct dir *d = calloc(1, sizeof(*d));
	struct timeval every = {DIR_POLICY_EVERY, 0};

	if (d == NULL || (d->conns = calloc((size_t)conf->pool_size, sizeof(*d->conns))) == NULL) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->base = base;
	d->conf = conf;
	d->n_conns = conf->pool_size;
	d->def = (struct dir_policy){.duration = -1, .must_change = true};
	TAILQ_INIT(&d->queue);
	TAILQ_INIT(&d->flight);
	TAILQ_INIT(&d->binds);
	/* 10 minutes is safe: every use is checked by the server (ucache.h). */
	if ((d->users = ucache_new(8192, 600)) == NULL) {
		free(d->conns);
		free(d);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->dispatch_ev = event_new(base, -1, 0, dispatch_cb, d);
	d->renew_ev = event_new(base, -1, 0, conn_renew_cb, d);
	d->policy_ev = event_new(base, -1, EV_PERSIST, policy_timer_cb, d);
	event_add(d->policy_ev, &every);
	for (int i = 0; i < d->n_conns; i++) {
		struct dir_conn *c = &d->conns[i];

		c->d = d;
		c->idx = i;
		c->done_ev = event_new(base, -1, 0, conn_setup_done_cb, c);
		c->retry_ev = evtimer_new(base, conn_retry_cb, c);
	}
	*dp = d;
	return 0;
}

void dir_start(struct dir *d)
{
	for (int i = 0; i < d->n_conns; i++)
		if (d->conns[i].state == CONN_DOWN && !evtimer_pending(d->conns[i].retry_ev, NULL))
			conn_connect(&d->conns[i]);
}

/* Whether connections made under a and b differ: the same server, reached
 * the same way, bound as the same account. */
static bool same_link(const struct config *a, const struct config *b)
{
	const char *ta[] = {a->uri, a->ca_file, a->bind_dn, a->bind_password};
	const char *tb[] = {b->uri, b->ca_file, b->bind_dn, b->bind_password};

	for (size_t i = 0; i < sizeof ta / sizeof ta[0]; i++)
		if ((ta[i] == NULL) != (tb[i] == NULL) ||
		    (ta[i] != NULL && strcmp(ta[i], tb[i]) != 0))
			return false;
	return a->starttls == b->starttls && a->flavor == b->flavor;
}

bool dir_link_changed(const struct config *old, const struct config *conf)
{
	return !same_link(old, conf);
}

void dir_set_config(struct dir *d, const struct config *conf)
{
	if (!same_link(d->conf, conf)) {
		d->link_gen++;
		event_active(d->renew_ev, EV_TIMEOUT, 0);
	}
	d->conf = conf;
	/* The cache was filled under the old user_base, user_attr and flavour:
	 * a user outside the new base must not be found through it. */
	ucache_drop(d->users, NULL);
	d->gen++;
}

void dir_free(struct dir *d)
{
	struct dir_op *op;
	struct bind_job *j;

	if (d == NULL)
		return;
	/* op_finish unlinks op before it frees it (the analyzer loses the
	 * TAILQ_REMOVE), so each pass takes a new head. */
	// NOLINTBEGIN(clang-analyzer-unix.Malloc)
	while ((op = TAILQ_FIRST(&d->flight)) != NULL || (op = TAILQ_FIRST(&d->queue)) != NULL)
		op_finish(op, unanswered(op), "the daemon is stopping");
	while ((j = TAILQ_FIRST(&d->binds)) != NULL) {
		pthread_join(j->thread, NULL);
		TAILQ_REMOVE(&d->binds, j, entry);
		j->fn(j->arg, DIR_BIND_UNAVAILABLE, "the daemon is stopping");
		bind_job_free(j);
	}
	// NOLINTEND(clang-analyzer-unix.Malloc)
	for (int i = 0; i < d->n_conns; i++) {
		struct dir_conn *c = &d->conns[i];

		if (c->state == CONN_CONNECTING) {
			pthread_join(c->thread, NULL);
			config_unref(c->conf);
			if (c->new_ld != NULL)
				ldap_unbind_ext(c->new_ld, NULL, NULL);
		}
		if (c->rev != NULL)
			event_free(c->rev);
		if (c->ld != NULL)
			ldap_unbind_ext(c->ld, NULL, NULL);
		event_free(c->done_ev);
		event_free(c->retry_ev);
	}
	for (size_t i = 0; i < DIR_ASSERTS; i++) {
		free(d->asserts[i].filter);
		ber_memfree(d->asserts[i].value.bv_val);
	}
	event_free(d->dispatch_ev);
	event_free(d->renew_ev);
	event_free(d->policy_ev);
	policies_clear(d->policies, &d->n_policies);
	policies_clear(d->next, &d->n_next);
	ucache_free(d->users);
	free(d->conns);
	free(d);
}
