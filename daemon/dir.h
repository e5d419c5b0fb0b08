/*
 * dir.h — the directory: a pool of service connections driven asynchronously
 * from libevent, and operator bind checks on connections of their own. Only
 * dir.c includes ldap.h. Every callback runs on the event loop, exactly once
 * for each call that returned 0; a call returning -1 calls nothing.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct config;
struct dir;

enum dir_status {
	DIR_OK,
	DIR_UNCHANGED,   /* nothing needed doing (16 / 20 on modify) */
	DIR_NOT_FOUND,   /* no such entry */
	DIR_REFUSED,     /* the directory refused: constraint, object class, rights */
	DIR_UNAVAILABLE, /* down, timed out, connection lost */
	DIR_EXISTS,      /* an add found the entry already there */
	DIR_STALE,       /* an asserted modify found the entry not as cached (RFC 4528) */
	DIR_PARTIAL,     /* dir_set_password: the password is set, the must-change step failed;
	                    a subtree search (dir_find_groups_under, dir_find_members): the
	                    directory's size limit cut the list short (dns hold what came) */
	DIR_UNKNOWN,     /* a change was sent but not answered (timeout, connection lost):
	                    it may or may not have been made */
};

enum dir_bind_result {
	DIR_BIND_OK,
	DIR_BIND_BAD_CREDENTIALS,
	DIR_BIND_MUST_CHANGE, /* bind worked but the password must be changed first */
	DIR_BIND_LOCKED,
	DIR_BIND_DISABLED, /* disabled by an administrator (389 DS, AD) */
	DIR_BIND_UNAVAILABLE,
	/* The account's term has ended (AD accountExpires): not a disable that
	 * `user enable` lifts; err says who must do what. */
	DIR_BIND_EXPIRED,
};

/*
 * A user entry as read for status and actions. Strings are NULL when absent.
 * The account state is flavour-neutral: each directory flavour (dir.c)
 * computes it from its own attributes when the entry is read.
 */
struct dir_user {
	char *dn, *uid, *name, *department, *mail;
	bool locked;            /* locked out now by failed logins (or by an administrator) */
	bool admin_locked;      /* disabled by an administrator: only `user enable` lifts it */
	char *locked_since;     /* GeneralizedTime of a failure lock (may have expired), or NULL */
	char *password_changed; /* GeneralizedTime of the last password change, or NULL */
	int failures;           /* failed logins counted by the directory */
	bool must_change;       /* the password must be changed at the next login */
	/* The policy forces a change after an administrator's reset (ppolicy:
	 * the user's policy has pwdMustChange TRUE; 389 DS: passwordMustChange
	 * on; AD: the password may expire at all; unread counts as forced). */
	bool change_forced;
	/* Static words for why a reset forces no change, when change_forced is
	 * false ("pwdMustChange is not TRUE"); NULL when not read. */
	const char *no_change_why;
	bool password_expired; /* older than the policy's maximum age (OpenLDAP) */
	bool outside_validity; /* before pwdStartTime or after pwdEndTime (OpenLDAP), after
	                          accountExpires (AD) */
	/* Static words for status's reason when outside_validity is set: the
	 * flavour's attributes and who can lift it (AD: accountExpires); NULL:
	 * OpenLDAP's pwdStartTime / pwdEndTime. */
	const char *validity_why;
	/* The password policy's minimum length (pwdMinLength, passwordMinLength,
	 * AD's domain minPwdLength); 0 when none or not read. */
	int password_min;
	unsigned long account_control; /* AD userAccountControl (disable/enable keep other bits) */
	/* The user's password policy was read (false: locked and must_change
	 * are guesses that err towards a lock and a forced change). */
	bool policy_read;
	bool cached; /* from dir_cached_user: only dn, uid and department are known */
	/* The entry's own identity (entryUUID, 389 DS nsUniqueId, AD objectGUID in
	 * hex): an entry deleted and made again under the same uid and DN has
	 * another. NULL when the service account may not read it. */
	char *entry_id;
};

/* u is owned by the callee (free with dir_user_free); NULL unless DIR_OK.
 * err is a message for people (no secrets), valid during the call. */
typedef void (*dir_user_fn)(void *arg, enum dir_status st, struct dir_user *u, const char *err);
typedef void (*dir_done_fn)(void *arg, enum dir_status st, const char *err);
/* mask bit i is set when the entry is a member of groups[i]. */
typedef void (*dir_groups_fn)(void *arg, enum dir_status st, unsigned long mask, const char *err);
/* dns[0..n) are owned by the callee's caller: valid during the call only. */
typedef void (*dir_dns_fn)(void *arg, enum dir_status st, char **dns, size_t n, const char *err);
typedef void (*dir_bind_fn)(void *arg, enum dir_bind_result r, const char *err);

/* Creates the pool (dir_start opens it); connections then come up in the
 * background and reconnect on their own. conf must outlive the pool. Return: 0, or -1 with err
 * filled. */
int dir_new(struct event_base *base, const struct config *conf, struct dir **dp, char *err,
            size_t errlen);
/* Operations submitted from now on use conf for timeouts and names. When
 * conf reaches the directory differently (dir_link_changed), the service
 * connections take no new work and are made again as each goes idle. */
void dir_set_config(struct dir *d, const struct config *conf);

/* True if connections made under conf would differ from those made under
 * old: uri, starttls, ca_file, bind_dn, the bind password or flavor. */
bool dir_link_changed(const struct config *old, const struct config *conf);

/* Opens the service connections (in the background). Separate from dir_new
 * so that the daemon reaches the network only after dropping privileges. */
void dir_start(struct dir *d);

/* Fails every pending operation (DIR_UNAVAILABLE) and frees the pool. */
void dir_free(struct dir *d);

/* The default password policy's minimum length (OpenLDAP's policy_dn,
 * 389 DS's global policy, AD's domain): 0 when none or not read. */
int dir_password_min(const struct dir *d);

/* true when at least one service connection is up. */
bool dir_available(const struct dir *d);

/* true when a connection is up and slapd answered since an operation last
 * went unanswered; when not, a cheap read is sent so that a later call sees
 * it answer again (health and /metrics). */
bool dir_answering(struct dir *d);
/* When slapd last answered any operation (0: never). */
time_t dir_last_answer(const struct dir *d);

/* Looks up the user whose user_attr equals uid (escaped; exactly one match). */
int dir_find_user(struct dir *d, const char *uid, dir_user_fn fn, void *arg);
/* Which of groups[0..n) (n <= 64) list dn as a member. DIR_PARTIAL (all
 * under group_base, asked in one search cut short by a size limit): mask
 * holds those found, the others are unknown. */
int dir_member_of(struct dir *d, const char *dn, const char *const *groups, size_t n,
                  dir_groups_fn fn, void *arg);
/* Which of groups[0..n) (n <= 64) list at least one of dns[0..k) (k <=
 * DIR_MEMBER_ANY_MAX): one base search per group, whatever k (a nested
 * walk asks about a level of groups at once). Return: as dir_member_of. */
#define DIR_MEMBER_ANY_MAX 16
int dir_member_of_any(struct dir *d, const char *const *dns, size_t k, const char *const *groups,
                      size_t n, dir_groups_fn fn, void *arg);
/* Clears the failure lock of u (as read by dir_find_user); DIR_UNCHANGED
 * when it was not locked. For a u from dir_cached_user the modify asserts
 * that the account is not disabled and the department is still the cached
 * one: DIR_STALE or DIR_NOT_FOUND then mean the cache was wrong (the entry is
 * forgotten): read the user again and decide anew. */
int dir_unlock(struct dir *d, const struct dir_user *u, dir_done_fn fn, void *arg);
/* Sets the password and marks it must-change (and lifts a failure lock) in the
 * flavour's way: Password Modify extended operation then pwdReset: TRUE
 * (OpenLDAP) / passwordExpirationTime 1970 (389 DS); unicodePwd, pwdLastSet 0
 * and lockoutTime 0 in one modify (AD). pw is copied and wiped after use. */
int dir_set_password(struct dir *d, const char *dn, const char *pw, dir_done_fn fn, void *arg);
/* Adds / deletes dn as member of group; DIR_UNCHANGED when already so. */
int dir_add_member(struct dir *d, const char *group, const char *dn, dir_done_fn fn, void *arg);
int dir_del_member(struct dir *d, const char *group, const char *dn, dir_done_fn fn, void *arg);

/* Administrator lock: pwdAccountLockedTime 000001010000Z (ppolicy's
 * "disabled"), nsAccountLock TRUE (389 DS), userAccountControl bit 0x2 (AD). */
int dir_disable(struct dir *d, const struct dir_user *u, dir_done_fn fn, void *arg);
/* Undoes dir_disable; DIR_UNCHANGED when there was nothing to undo. */
int dir_enable(struct dir *d, const struct dir_user *u, dir_done_fn fn, void *arg);
/* Replaces the department attribute (ou; department on AD). */
int dir_set_department(struct dir *d, const char *dn, const char *dept, dir_done_fn fn, void *arg);
/* Moves dn to newrdn under newparent (old RDN value deleted). */
int dir_rename(struct dir *d, const char *dn, const char *newrdn, const char *newparent,
               dir_done_fn fn, void *arg);
/* Deletes the entry dn. */
int dir_delete(struct dir *d, const char *dn, dir_done_fn fn, void *arg);
/* Adds dn with attributes from pairs (attr, value, ..., NULL; repeat an
 * attr for several values; at most 16 attributes of 8 values). DIR_EXISTS
 * when the entry is there already. */
int dir_add_entry(struct dir *d, const char *dn, const char *const *pairs, dir_done_fn fn,
                  void *arg);
/* What a search cut short by the directory's size limit says (DIR_PARTIAL). */
#define DIR_SIZE_LIMIT_MSG                                                                         \
	"the directory's size limit cut the list of groups short: give the service account "       \
	"(bind_dn) a larger one (slapd: limits dn.exact=\"<bind_dn>\" size=unlimited; 389 DS: "    \
	"nsSizeLimit: -1; AD: MaxPageSize)"

/* The DNs of entries under base that list member in `member` (groups);
 * DIR_PARTIAL when the directory's size limit cut the list short. */
int dir_find_members(struct dir *d, const char *base, const char *member, dir_dns_fn fn, void *arg);

/* The DNs of the groups under base that list member (member, or
 * uniqueMember under 389 DS): a step up through nested groups; at most
 * 1,000, and DIR_PARTIAL with those found when the directory's size limit
 * (or that one) cut the list short. base is [ldap] group_base as a walk
 * kept it from its start: a reload moving group_base must not change where
 * it looks half-way. Return: as dir_read_values. */
int dir_find_groups_under(struct dir *d, const char *base, const char *member, dir_dns_fn fn,
                          void *arg);
/* [ldap] group_base as now configured (NULL: not set); valid until the
 * next reload: copy it to keep it. */
const char *dir_group_base(const struct dir *d);

/* True when groups may list members in uniqueMember too (389 DS's
 * groupOfUniqueNames): roles and protection read both. */
bool dir_unique_members(const struct dir *d);

/* Every value of attr on the entry dn (one base search), handed to fn as
 * dns; more than 100,000 values is DIR_REFUSED. Return: 0 (fn called later,
 * once), or -1 (queue full or ENOMEM; fn not called). */
int dir_read_values(struct dir *d, const char *dn, const char *attr, dir_dns_fn fn, void *arg);
/* The entry dn names, in one base search: fn gets its DN as the directory
 * holds it (dns[0], as dir_read_dn) and then its member values (dns[1..n);
 * uniqueMember's too under 389 DS): a user has none, a group its members.
 * More than 100,000 values is DIR_REFUSED; no such entry DIR_NOT_FOUND.
 * Return: as dir_read_values. */
int dir_read_members(struct dir *d, const char *dn, dir_dns_fn fn, void *arg);
/* The DN of the entry dn names, as the directory holds it (one base search):
 * the directory matches DNs by its own rules (Unicode case and width
 * folding, which dir_dn_canon does not do), so two spellings of one entry
 * come back as one. fn gets it as dns[0] (n = 1), or DIR_NOT_FOUND. Return:
 * as dir_read_values. */
int dir_read_dn(struct dir *d, const char *dn, dir_dns_fn fn, void *arg);
/* Whether the entry dn has a password: fn gets it as dns[0] (n = 1), or
 * n = 0. Needs search access to userPassword, which the write access a
 * reset needs includes. Return: as dir_read_values. */
int dir_has_password(struct dir *d, const char *dn, dir_dns_fn fn, void *arg);

/* Where uid was last found (a search within the last 10 minutes), if the
 * flavour can assert on a modify (OpenLDAP): a user with cached set, dn, uid
 * and department filled, the account state unknown. Return NULL otherwise
 * (search with dir_find_user). */
struct dir_user *dir_cached_user(struct dir *d, const char *uid);

/* dir_cached_user calls that found the user, and that did not (GET /metrics). */
void dir_cache_stats(const struct dir *d, unsigned long long *hits, unsigned long long *misses);

/* dn normalized (RFC 4514 form) with ASCII letters lowered, so two spellings
 * of one DN compare equal with strcmp. Return: a malloc'd string, or NULL if
 * dn is not a DN (or ENOMEM). */
char *dir_dn_canon(const char *dn);

/* The DNs and the attribute name conf gives the directory, checked for
 * syntax: a typo in one would otherwise fail every request far from its
 * line. Return: 0, or -1 with err "FILE:LINE: [section] key: ..." */
int dir_config_check(const struct config *conf, char *err, size_t errlen);

/* Verifies dn/pw with a bind (and the ppolicy control) on a new connection
 * of its own, off the event loop. Return -1 when too many checks are running. */
int dir_bind_check(struct dir *d, const char *dn, const char *pw, dir_bind_fn fn, void *arg);

void dir_user_free(struct dir_user *u);

/* true when dn is base or lies under it (both normalized; false if either
 * is not a DN). */
bool dir_dn_under(const char *dn, const char *base);
/* The deepest entry both a and b lie under (or are), normalized: for
 * ou=people,dc=example,dc=com and cn=x,ou=groups,dc=example,dc=com,
 * dc=example,dc=com. Return: a malloc'd DN, or NULL (none in common, not
 * DNs, or ENOMEM). */
char *dir_dn_ancestor(const char *a, const char *b);
/* [ldap] user_base as now configured; valid until the next reload. */
const char *dir_user_base(const struct dir *d);
/* a and b name the same entry (normalized, case-insensitive). */
bool dir_dn_equal(const char *a, const char *b);

/* true when s could be a value of user_attr: no filter or DN metacharacters,
 * no control characters, at most LDAPDESK_MAX_UID bytes. */
bool dir_valid_uid(const char *s);
