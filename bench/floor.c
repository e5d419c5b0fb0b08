/*
 * floor.c — the directory's own limit for ldapdesk's operations: the same
 * LDAP writes the daemon makes, sent with asynchronous libldap over a pool of
 * StartTLS connections bound as the service account, C operations
 * outstanding, no HTTP and no audit. Known DNs, no searches: this is the
 * floor a broker is measured against. Prints the same JSON line as loadgen.
 *
 *   floor --uri ldap://127.0.0.1:PORT --ca FILE --bind-dn DN --bind-pw-file F
 *         --base PARENT_DN --group GROUP_DN --pool P --op OP --concurrency C
 *         [--seconds S] [--count N] --users N [--prefix bench] [--no-starttls]
 *
 * reset = password modify extended op + replace pwdReset TRUE (what the daemon
 * does); unlock = delete pwdAccountLockedTime; grant-revoke = add member, then
 * delete it, on the same slot.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lber.h>
#include <ldap.h>

#include "common.h"
#include "ldapconn.h"

#define FL_POOL_MAX   64
#define FL_DN_MAX     512
#define FL_POLL_MS    100
#define FL_PW_MAX     256
#define FL_ERRS_SHOWN 3
#define FL_URI_PREFIX "ldap://127.0.0.1:"

struct fl_conn {
	LDAP *ld;
	int fd;
};

struct fl_slot {
	struct bench_slot seq;
	int conn;
	int msgid;
	bool second; /* reset: the pwdReset replace is out, the password is set */
};

struct fl {
	const char *uri, *ca, *bind_dn, *pwfile, *base, *group;
	bool starttls;
	int pool;
	struct bench_opts o;
	struct bench_run run;
	struct fl_conn conns[FL_POOL_MAX];
	struct fl_slot *slots;
	unsigned pw_serial;
	int errs_shown;
};

static void usage(void)
{
	fprintf(stderr, "usage: floor --uri ldap://127.0.0.1:PORT --ca FILE --bind-dn DN "
	                "--bind-pw-file F --base PARENT_DN --group GROUP_DN --pool P "
	                "--op reset|unlock|grant-revoke --concurrency C [--seconds S] "
	                "[--count N] --users N [--prefix P] [--no-starttls]\n");
}

static void user_dn(const struct fl *f, unsigned idx, char *buf, size_t len)
{
	char uid[BENCH_UID_MAX];

	bench_uid(&f->o, idx, uid, sizeof(uid));
	snprintf(buf, len, "uid=%s,%s", uid, f->base);
}

/* ---- connections --------------------------------------------------------------- */

/* Connect, StartTLS, bind: blocking is fine, it happens before the clock starts. */
static int conn_open(const struct fl *f, struct fl_conn *c, const char *pw)
{
	return bench_ldap_open("floor", f->uri, f->starttls ? f->ca : NULL, f->bind_dn, pw, &c->ld,
	                       &c->fd);
}

/* ---- operations ----------------------------------------------------------------- */

static int send_modify(LDAP *ld, const char *dn, int modop, const char *attr, const char *value,
                       int *msgid)
{
	char *vals[2] = {(char *)(uintptr_t)value, NULL};
	LDAPMod mod = {modop, (char *)(uintptr_t)attr, {value != NULL ? vals : NULL}};
	LDAPMod *mods[2] = {&mod, NULL};

	return ldap_modify_ext(ld, dn, mods, NULL, NULL, msgid);
}

static int op_send(struct fl *f, struct fl_slot *s)
{
	LDAP *ld = f->conns[s->conn].ld;
	char dn[FL_DN_MAX], pw[64];
	struct berval user, newpw;

	user_dn(f, s->seq.user, dn, sizeof(dn));
	switch (f->o.op) {
	case BENCH_RESET:
		if (s->second)
			return send_modify(ld, dn, LDAP_MOD_REPLACE, "pwdReset", "TRUE", &s->msgid);
		/* A fresh one-time password each time, as the daemon generates. */
		snprintf(pw, sizeof(pw), "Bench-%08x-%04u", ++f->pw_serial, s->seq.user);
		ber_str2bv(dn, 0, 0, &user);
		ber_str2bv(pw, 0, 0, &newpw);
		return ldap_passwd(ld, &user, NULL, &newpw, NULL, NULL, &s->msgid);
	case BENCH_UNLOCK:
		return send_modify(ld, dn, LDAP_MOD_DELETE, "pwdAccountLockedTime", NULL,
		                   &s->msgid);
	case BENCH_GRANT_REVOKE:
		return send_modify(ld, f->group, s->seq.revoke ? LDAP_MOD_DELETE : LDAP_MOD_ADD,
		                   "member", dn, &s->msgid);
	}
	return LDAP_PARAM_ERROR;
}

/* Same reading of "nothing to do" as the daemon's modify_status(). */
static bool rc_unchanged(const struct fl *f, const struct fl_slot *s, int rc)
{
	if (f->o.op == BENCH_UNLOCK)
		return rc == LDAP_NO_SUCH_ATTRIBUTE;
	if (f->o.op == BENCH_GRANT_REVOKE)
		return s->seq.revoke ? rc == LDAP_NO_SUCH_ATTRIBUTE
		                     : rc == LDAP_TYPE_OR_VALUE_EXISTS;
	return false;
}

static void slot_next(struct fl *f, struct fl_slot *s)
{
	int rc;

	s->second = false;
	if (bench_next(&f->run, &s->seq)) {
		if ((rc = op_send(f, s)) == LDAP_SUCCESS)
			return;
		fprintf(stderr, "floor: send: %s\n", ldap_err2string(rc));
		bench_done(&f->run, &s->seq, false, false);
	}
	f->run.active--;
}

static void slot_result(struct fl *f, struct fl_slot *s, int rc, const char *diag)
{
	bool unchanged = rc_unchanged(f, s, rc), ok = rc == LDAP_SUCCESS || unchanged;

	if (ok && f->o.op == BENCH_RESET && !s->second) {
		s->second = true;
		if (op_send(f, s) == LDAP_SUCCESS)
			return;
		ok = false;
	}
	if (!ok && f->errs_shown++ < FL_ERRS_SHOWN)
		fprintf(stderr, "floor: %s: %s\n", ldap_err2string(rc), diag);
	bench_done(&f->run, &s->seq, ok, unchanged);
	slot_next(f, s);
}

static struct fl_slot *slot_find(struct fl *f, int conn, int msgid)
{
	for (int i = 0; i < f->o.concurrency; i++) {
		struct fl_slot *s = &f->slots[i];

		if (s->conn == conn && s->msgid == msgid)
			return s;
	}
	return NULL;
}

/* Reads every reply that has arrived on a connection; false if it broke. With
 * TLS, libldap may hold decrypted replies while the socket looks idle. */
static bool conn_drain(struct fl *f, int ci)
{
	LDAP *ld = f->conns[ci].ld;
	struct timeval zero = {0, 0};
	LDAPMessage *msg;
	struct fl_slot *s;
	char *diag;
	int rc, err;

	while ((rc = ldap_result(ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &msg)) > 0) {
		s = slot_find(f, ci, ldap_msgid(msg));
		diag = NULL;
		if (ldap_parse_result(ld, msg, &err, NULL, &diag, NULL, NULL, 0) != LDAP_SUCCESS)
			err = LDAP_OTHER;
		ldap_msgfree(msg);
		if (s != NULL)
			slot_result(f, s, err, diag != NULL ? diag : "");
		ldap_memfree(diag);
	}
	return rc == 0;
}

/* ---- run ------------------------------------------------------------------------- */

static int run(struct fl *f)
{
	struct pollfd pfd[FL_POOL_MAX];
	uint64_t hard_end;
	int c = f->o.concurrency;

	f->slots = calloc((size_t)c, sizeof(*f->slots));
	if (f->slots == NULL)
		return -1;
	f->run.st.t_start_us = f->run.st.t_end_us = bench_now_us();
	hard_end = f->run.st.t_start_us + (uint64_t)(f->o.seconds + 2 * BENCH_GRACE_S) * 1000000u;
	if (f->o.seconds <= 0)
		hard_end = f->run.st.t_start_us + 3600u * 1000000u;
	f->run.active = c;
	for (int i = 0; i < c; i++) {
		f->slots[i].conn = i % f->pool; /* spread like the daemon's least-loaded pick */
		f->slots[i].msgid = -1;
		slot_next(f, &f->slots[i]);
	}
	for (int i = 0; i < f->pool; i++)
		pfd[i] = (struct pollfd){.fd = f->conns[i].fd, .events = POLLIN};
	while (f->run.active > 0) {
		if (bench_now_us() > hard_end) {
			fprintf(stderr, "floor: %d operation(s) still out after the grace period\n",
			        f->run.active);
			f->run.st.errors += (uint64_t)f->run.active;
			break;
		}
		if (poll(pfd, (nfds_t)f->pool, FL_POLL_MS) < 0)
			continue;
		for (int i = 0; i < f->pool; i++) {
			if (pfd[i].fd >= 0 && pfd[i].revents != 0 && !conn_drain(f, i)) {
				fprintf(stderr, "floor: connection %d lost\n", i);
				pfd[i].fd = -1;
			}
		}
	}
	return 0;
}

static int parse_args(struct fl *f, int argc, char **argv)
{
	long n;

	for (int i = 1; i < argc; i++) {
		int r = bench_opt(&f->o, argc, argv, &i);
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (r == -1)
			return -1;
		if (r == 1)
			continue;
		if (strcmp(a, "--no-starttls") == 0) {
			f->starttls = false;
			continue;
		}
		if (v == NULL) {
			usage();
			return -1;
		}
		if (strcmp(a, "--uri") == 0)
			f->uri = v;
		else if (strcmp(a, "--ca") == 0)
			f->ca = v;
		else if (strcmp(a, "--bind-dn") == 0)
			f->bind_dn = v;
		else if (strcmp(a, "--bind-pw-file") == 0)
			f->pwfile = v;
		else if (strcmp(a, "--base") == 0)
			f->base = v;
		else if (strcmp(a, "--group") == 0)
			f->group = v;
		else if (strcmp(a, "--pool") == 0 && bench_num(v, 1, FL_POOL_MAX, &n) == 0)
			f->pool = (int)n;
		else {
			usage();
			return -1;
		}
		i++;
	}
	if (f->uri == NULL || strncmp(f->uri, FL_URI_PREFIX, strlen(FL_URI_PREFIX)) != 0) {
		fprintf(stderr, "floor: --uri must be " FL_URI_PREFIX "PORT\n");
		return -1;
	}
	if ((f->starttls && f->ca == NULL) || f->bind_dn == NULL || f->pwfile == NULL ||
	    f->base == NULL || (f->o.op == BENCH_GRANT_REVOKE && f->group == NULL)) {
		usage();
		return -1;
	}
	return bench_opts_check(&f->o);
}

int main(int argc, char **argv)
{
	static struct fl f = {.starttls = true,
	                      .pool = 4,
	                      .o = {.concurrency = 1, .prefix = "bench", .driver = "floor"}};
	char pw[FL_PW_MAX];
	int rc = 0;

	if (parse_args(&f, argc, argv) == -1 || bench_read_secret(f.pwfile, pw, sizeof(pw)) == -1)
		return 2;
	f.run.o = &f.o;
	for (int i = 0; i < f.pool && rc == 0; i++)
		rc = conn_open(&f, &f.conns[i], pw);
	memset(pw, 0, sizeof(pw));
	if (rc != 0 || bench_stats_init(&f.run.st, &f.o) == -1 || run(&f) == -1)
		return 1;
	bench_stats_print(&f.run.st, &f.o);
	for (int i = 0; i < f.pool; i++)
		ldap_unbind_ext_s(f.conns[i].ld, NULL, NULL);
	bench_stats_free(&f.run.st);
	return f.run.st.errors != 0 ? 3 : 0;
}
