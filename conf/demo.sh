#!/bin/sh
# conf/demo.sh — run by `./dev demo [--flavor openldap|389ds|ad]`: a demo directory seeded
# from conf/demo.ldif (12 departments, 40-odd users with Chinese names) — slapd by default,
# a 389 Directory Server or a Samba AD DC with --flavor — ldapdeskd against it, and a walk
# through the hotline's day. Everything started here is stopped at the end.
set -eu
: "${LDAPDESK_SRC:?}" "${LDAPDESKD:?}" "${LDAPDESK:?}"
FLAVOR=openldap
while [ $# -gt 0 ]; do
	case $1 in
	--flavor) FLAVOR=${2:?demo: --flavor needs openldap, 389ds or ad}; shift 2 ;;
	--flavor=*) FLAVOR=${1#--flavor=}; shift ;;
	*) echo "demo: unknown option '$1' (use --flavor openldap|389ds|ad)" >&2; exit 2 ;;
	esac
done
case $FLAVOR in
openldap | 389ds | ad) ;;
*)
	echo "demo: unknown flavour '$FLAVOR' (openldap, 389ds or ad)" >&2
	exit 2
	;;
esac
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init demo >/dev/null
case $FLAVOR in
openldap)
	t_start_slapd >/dev/null
	daemon_config "$T_DIR/ldapdeskd.conf"
	DIR_URI=$LDAP_URI
	;;
389ds)
	. "$LDAPDESK_SRC/tests/lib/ds389.sh"
	ds389_setup "$T_DIR/ds" && ds389_start "$T_DIR/ds" >/dev/null
	daemon_config_flavor "$T_DIR/ldapdeskd.conf" 389ds
	DIR_URI="$DS_URI (389 Directory Server)"
	;;
ad)
	. "$LDAPDESK_SRC/tests/lib/samba.sh"
	samba_setup "$T_DIR/ad" && samba_start "$T_DIR/ad" >/dev/null
	daemon_config_flavor "$T_DIR/ldapdeskd.conf" ad
	DIR_URI="$AD_URI (Samba AD DC)"
	;;
esac
daemon_start "$T_DIR/ldapdeskd.conf"
D=$LDAPDESK

# Three wrong passwords, as a user would type them (every test directory locks at 3).
lock_user() {
	case $FLAVOR in
	openldap) ldap_lock_user "$1" ;;
	389ds)
		for i in 1 2 3; do
			LDAPTLS_CACERT=$DS_CA ldapwhoami -x -H "$DS_LDAPS_URI" -D "$(ds_user_dn "$1")" \
				-w "wrong-$i" || true
		done ;;
	ad)
		for i in 1 2 3; do
			LDAPTLS_CACERT=$AD_CA ldapsearch -x -H "$AD_URI" -D "$(ad_user_dn "$1")" \
				-w "wrong-$i" -b '' -s base 1.1 || true
		done ;;
	esac
}

# step ARGS: a command of the walk-through, which must succeed; refused CODE ARGS: one that
# must be refused with exit CODE. A step that ends otherwise fails the demo (exit 1 at the end).
BROKEN=0
BOLD='' PLAIN=''
if [ -t 1 ]; then BOLD=$(printf '\033[1m') PLAIN=$(printf '\033[0m'); fi
run_step() {
	want=$1
	shift
	printf '\n%s$ ldapdesk' "$BOLD"
	for a in "$@"; do
		case $a in *' '*) printf " '%s'" "$a" ;; *) printf ' %s' "$a" ;; esac
	done
	printf '%s\n' "$PLAIN"
	got=0
	"$D" "$@" || got=$?
	[ "$got" = 0 ] || printf '(exit %s)\n' "$got"
	if [ "$got" != "$want" ]; then
		printf 'demo: expected exit %s here, got %s\n' "$want" "$got" >&2
		BROKEN=$((BROKEN + 1))
	fi
}
step() { run_step 0 "$@"; }
refused() { run_step "$@"; }
say() { printf '\n# %s\n' "$*"; }

if [ "${KEEP:-0}" = 1 ]; then
	echo "demo: $FLAVOR directory on $DIR_URI, ldapdeskd on $LDAPDESK_URL (working directory $T_DIR, kept: logs, configuration, audit.db)"
else
	echo "demo: $FLAVOR directory on $DIR_URI, ldapdeskd on $LDAPDESK_URL (working directory $T_DIR, removed at the end: KEEP=1 ./dev demo keeps its logs, configuration and audit.db)"
fi
say "A hotline operator logs in with their directory account."
LDAPDESK_PASSWORD=$LDAP_OP_PW
export LDAPDESK_PASSWORD
step login --user hd1
say "王丽 (alice, 市场营销中心) typed her password wrong three times and is locked out."
lock_user alice >/dev/null 2>&1 || true
step status alice
step unlock alice --ticket HD-2026-0001 --requester 王丽 --dept 市场营销中心 --channel hotline
say "A second unlock has nothing to do."
step unlock alice
say "李博 (bob) forgot his password: reset it to a one-time password he must change."
step reset bob --unlock --ticket HD-2026-0002 --requester 李博 --channel hotline
step status bob
say "Work done outside the directory is recorded too, so the half-year report is complete."
step record todo-mail --desc "删除过期待办 12 条" --requester 张伟 --dept 财务管理部 --channel request
say "The helpdesk may not grant permissions; an administrator may."
refused 4 grant carol procurement --days 30
LDAPDESK_USER=adm1
export LDAPDESK_USER
step login --user adm1
step grant carol procurement --days 30 --ticket REQ-17 --requester 张伟 --dept 物资采购中心 --channel request
step status carol
step revoke carol procurement --ticket REQ-18
say "The auditor reads the log."
LDAPDESK_USER=aud1
step login --user aud1
step log --user alice
step log --user alice --format csv
step verify
say "The period's service report, in the operations report's own form (also md, csv, json, html)."
today=$(TZ=Asia/Shanghai date +%Y-%m-%d)
step report --from "$today" --to "$today" --format text
say "Done: stopping ldapdeskd and the directory."
daemon_stop
t_cleanup >/dev/null 2>&1 || true
trap - EXIT INT TERM
if [ "$BROKEN" -gt 0 ]; then
	echo "demo: $BROKEN step(s) did not end as they should (see above)" >&2
	exit 1
fi
