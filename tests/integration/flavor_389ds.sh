#!/bin/sh
# flavor_389ds.sh — issue 8: the core suite (flavor_suite.sh) against a real 389 Directory
# Server (tests/lib/ds389.sh: lockout at 3, passwordMustChange, StartTLS) with [ldap] flavor = 389ds.
# Skips when 389-ds-base is not installed (./dev installs it).
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init flavor_389ds
if ! dpkg-query -W -f '${Status}' 389-ds-base 2>/dev/null | grep -q 'install ok installed' ||
    [ ! -x /usr/sbin/ns-slapd ]; then
    t_skip "389 DS flavour suite" "389-ds-base is not installed (./dev installs it)"
    t_done
fi
. "$LDAPDESK_SRC/tests/lib/ds389.sh"
started=$(date +%s)
if ds389_setup "$T_DIR/ds" && ds389_start "$T_DIR/ds"; then t_pass "389 DS starts"; else
    t_fail "389 DS starts"
    t_done
fi
daemon_config_flavor "$T_DIR/d.conf" 389ds
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }

FLAVOR=389ds
FL_OP_PW=$DS_OP_PW
FL_USER_PW=$DS_USER_PW
FL_LOCKED_RE='Constraint violation \(19\)|Exceed password retry limit'
FL_MUST_CHANGE_RE='Password expired|must be changed|Password must be changed'
FL_OLD_PW_RC=49
FL_MUST_CHANGE=19700101000000Z
FL_DISABLED=TRUE
fl_bind() {
    LDAPTLS_CACERT=$DS_CA ldapwhoami -x -H "$DS_LDAPS_URI" -D "$(ds_user_dn "$1")" -w "$2" -e ppolicy 2>&1
}
fl_is_member() {
    _fm_dn=$(ds_user_dn "$2") || return 1
    ds_root_search -b "cn=$1,$DS_GROUPS" -s base "(member=$(ldap_filter_escape "$_fm_dn"))" 1.1 \
        | grep -q '^dn'
}
fl_must_change() { ds_attr "$1" passwordExpirationTime; }
fl_disabled() { ds_attr "$1" nsAccountLock; }
. "$LDAPDESK_SRC/tests/integration/flavor_suite.sh"
ds389_stop "$T_DIR/ds"
t_note "389 DS flavour suite: $(($(date +%s) - started)) s"
t_done
