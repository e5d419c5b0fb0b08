#!/bin/sh
# conf/demo.sh — run by `./dev demo`: a demo slapd seeded from conf/demo.ldif
# (12 departments, 40-odd users with Chinese names), ldapdeskd against it, and
# a walk through the hotline's day. Everything started here is stopped at the end.
set -eu
: "${LDAPDESK_SRC:?}" "${LDAPDESKD:?}" "${LDAPDESK:?}"
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init demo >/dev/null
t_start_slapd >/dev/null
daemon_config "$T_DIR/ldapdeskd.conf"
daemon_start "$T_DIR/ldapdeskd.conf"
D=$LDAPDESK

step() {
	printf '\n\033[1m$ ldapdesk'
	for a in "$@"; do
		case $a in *' '*) printf " '%s'" "$a" ;; *) printf ' %s' "$a" ;; esac
	done
	printf '\033[0m\n'
	"$D" "$@" || printf '(exit %s)\n' "$?"
}
say() { printf '\n# %s\n' "$*"; }

echo "demo: slapd on $LDAP_URI, ldapdeskd on $LDAPDESK_URL (logs in $T_DIR)"
say "A hotline operator logs in with their directory account."
LDAPDESK_PASSWORD=$LDAP_OP_PW
export LDAPDESK_PASSWORD
step login --user hd1
say "王丽 (alice, 市场营销中心) typed her password wrong three times and is locked out."
ldap_lock_user alice >/dev/null 2>&1 || true
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
step grant carol procurement --days 30
LDAPDESK_USER=adm1
export LDAPDESK_USER
step login --user adm1
step grant carol procurement --days 30 --ticket REQ-17 --requester 张伟 --dept 物资采购中心 --channel request
step status carol
step revoke carol procurement --ticket REQ-18
say "The auditor reads the log."
LDAPDESK_USER=aud1
step login --user aud1
step log
step log --user alice --format csv
step verify
say "The period's service report, in the operations report's own form (also md, csv, json, html)."
today=$(TZ=Asia/Shanghai date +%Y-%m-%d)
step report --from "$today" --to "$today" --format text
say "Done: stopping ldapdeskd and slapd."
daemon_stop
t_cleanup >/dev/null 2>&1 || true
trap - EXIT INT TERM
