#!/bin/sh
# flavor_ad.sh — issue 8: the core suite (flavor_suite.sh) against a real Samba AD DC standing in
# for Active Directory (tests/lib/samba.sh: LDAPS, lockout threshold 3, delegated service account)
# with [ldap] flavor = ad and user_attr = sAMAccountName. Skips when samba-ad-dc is not installed.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init flavor_ad
if ! dpkg-query -W -f '${Status}' samba-ad-dc 2>/dev/null | grep -q 'install ok installed' ||
    [ ! -x /usr/sbin/samba ]; then
    t_skip "Active Directory flavour suite" "samba-ad-dc is not installed (./dev installs it)"
    t_done
fi
. "$LDAPDESK_SRC/tests/lib/samba.sh"
started=$(date +%s)
if samba_setup "$T_DIR/ad" && samba_start "$T_DIR/ad"; then t_pass "Samba AD DC starts"; else
    t_fail "Samba AD DC starts"
    t_done
fi
# A domain asking 20 characters (minPwdLength): one-time passwords are made that long.
printf 'dn: %s\nchangetype: modify\nreplace: minPwdLength\nminPwdLength: 20\n' "$AD_BASE" |
    ad_admin_modify >/dev/null
FL_ENTRY_RE='^[0-9a-f]{32}$'
DAEMON_APPROVAL=finance-docs daemon_config_flavor "$T_DIR/d.conf" ad
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }

FLAVOR=ad
FL_OP_PW=$AD_OP_PW
FL_USER_PW=$AD_USER_PW
FL_LOCKED_RE='data 775'
FL_MUST_CHANGE_RE='data 773'
FL_OLD_PW_RC=49
FL_MUST_CHANGE=0
FL_DISABLED=TRUE
FL_PW_LEN=20
FL_LOCKED_SINCE=1 # lockoutTime
# AD answers binds with 49 and the reason in "data XXX"; WhoAmI is unsupported: read the root DSE.
fl_bind() {
    LDAPTLS_CACERT=$AD_CA ldapsearch -x -LLL -H "$AD_URI" -D "$(ad_user_dn "$1")" -w "$2" \
        -b '' -s base 1.1 2>&1
}
fl_is_member() { # 2 when it cannot be told (no such user or group, the search failed)
    _fm_dn=$(ad_user_dn "$2") || return 2
    _fm_out=$(ad_admin_search -b "CN=$1,$AD_GROUPS" -s base \
        "(member=$(ldap_filter_escape "$_fm_dn"))" 1.1) || return 2
    printf '%s\n' "$_fm_out" | grep -q '^dn'
}
fl_must_change() { ad_attr "$1" pwdLastSet; }
fl_disabled() { # userAccountControl bit 0x2
    _fd_uac=$(ad_attr "$1" userAccountControl) && [ -n "$_fd_uac" ] || return 1
    [ $((_fd_uac & 2)) -eq 0 ] || echo TRUE
}
. "$LDAPDESK_SRC/tests/integration/flavor_suite.sh"

# ---- AD specifics: the shared suite stopped the daemon; each part restarts it -----------------
# Plain LDAP without StartTLS: AD refuses unicodePwd changes (and Samba simple binds) there,
# so such a configuration is refused up front, by -n as at start-up.
sed -e "s#^uri = .*#uri = $AD_STARTTLS_URI#" -e 's/^starttls = .*/starttls = no/' \
    "$T_DIR/d.conf" >"$T_DIR/plain.conf"
t_exit 1 "-n refuses flavor = ad over ldap:// without starttls" \
    "$LDAPDESKD" -n -c "$T_DIR/plain.conf"
t_match 'plain\.conf:[0-9]+: \[ldap\] uri: .*Active Directory refuses password resets without TLS: set starttls = yes' \
    "... naming the line and what to do" "$LDAPDESKD" -n -c "$T_DIR/plain.conf"
sed -i 's/^starttls = .*/starttls = yes/' "$T_DIR/plain.conf"
t_ok "... and accepts ldap:// with starttls = yes" "$LDAPDESKD" -n -c "$T_DIR/plain.conf"

# "Must change" only where AD enforces it: for an account whose password never expires
# (userAccountControl DONT_EXPIRE_PASSWORD 0x10000) the DC ignores pwdLastSet 0 and
# msDS-User-Account-Control-Computed has no PASSWORD_EXPIRED bit. erin gets that bit before her
# reset; frank has it with pwdLastSet 0.
ad_admin_modify >/dev/null <<EOF
dn: $(ad_user_dn erin)
changetype: modify
replace: userAccountControl
userAccountControl: 66048

dn: $(ad_user_dn frank)
changetype: modify
replace: userAccountControl
userAccountControl: 66048
-
replace: pwdLastSet
pwdLastSet: 0
EOF
daemon_start "$T_DIR/d.conf" || t_fail "ldapdeskd starts again"
as_op hd1 "$FL_OP_PW"
out=$("$D" --json reset erin)
pw=$(printf '%s' "$out" | jq -r .password)
t_eq "$(printf '%s' "$out" | jq -r '.result + " " + (.must_change | tostring)')" "ok false" \
    "DONT_EXPIRE_PASSWORD: the reset answers must_change false"
t_ok "... and erin binds with the one-time password (no data 773)" fl_bind erin "$pw"
t_eq "$(st erin .must_change)" false "... status says no change is forced"
t_nomatch "must change at next login" "... nor does the audit detail" \
    q "SELECT o.detail FROM records a JOIN records o ON o.attempt_id = a.id
       WHERE a.action = 'reset' AND a.target = 'erin'"
t_match "does not force a change \\(the account's password never expires" "... which says why" \
    printf '%s\n' "$T_OUT"
t_ok "frank (pwdLastSet 0, DONT_EXPIRE_PASSWORD) binds with his password" fl_bind frank "$FL_USER_PW"
t_eq "$(st frank .must_change)" false "... and status says no change is forced"

# An account past its accountExpires (FILETIME; here 2009): the DC refuses its logins ("data
# 701"). Status must say so, and an operator's login must say who can lift it: not
# 'user enable' (there is nothing to enable).
ad_admin_modify >/dev/null <<EOF
dn: $(ad_user_dn carol)
changetype: modify
replace: accountExpires
accountExpires: 129000000000000000

dn: $(ad_user_dn hd2)
changetype: modify
replace: accountExpires
accountExpires: 129000000000000000
EOF
t_match "data 701" "carol's account has expired: the DC refuses her" fl_bind carol "$FL_USER_PW"
t_eq "$(st carol '.locked, (.lock_reason != null)' | tr '\n' ' ')" "false true " \
    "status gives the expired account a reason, though it is not locked"
as_op hd2 "$FL_OP_PW"
t_match "expired.*accountExpires" "the expired operator's login says the account expired" "$D" login
t_nomatch "enable it|user enable'\\)" "... and does not send anyone to 'user enable'" \
    printf '%s\n' "$T_OUT"
t_exit 3 "... refused 401 (exit 3)" "$D" login
t_match '"error": "account_ended"' "... with code account_ended" "$D" --json login
as_op hd1 "$FL_OP_PW"
t_match "why: .*accountExpires" "status's reason names accountExpires" "$D" status carol
daemon_stop

samba_stop "$T_DIR/ad"
t_note "AD flavour suite: $(($(date +%s) - started)) s"
t_done
