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
# A global policy asking 20 characters: one-time passwords are made that long.
printf 'dn: cn=config\nchangetype: modify\nreplace: passwordMinLength\npasswordMinLength: 20\n' |
    ds_root_modify >/dev/null
FL_ENTRY_RE='^[0-9a-fA-F]{8}(-[0-9a-fA-F]{8}){3}$'
DAEMON_APPROVAL=finance-docs daemon_config_flavor "$T_DIR/d.conf" 389ds
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }

FLAVOR=389ds
FL_OP_PW=$DS_OP_PW
FL_USER_PW=$DS_USER_PW
FL_LOCKED_RE='Constraint violation \(19\)|Exceed password retry limit'
FL_MUST_CHANGE_RE='Password expired|must be changed|Password must be changed'
FL_OLD_PW_RC=49
FL_MUST_CHANGE=19700101000000Z
FL_DISABLED=TRUE
FL_LOCKED_SINCE=1 # accountUnlockTime - passwordLockoutDuration, or retryCountResetTime - passwordResetFailureCount
FL_PW_LEN=20
fl_bind() {
    LDAPTLS_CACERT=$DS_CA ldapwhoami -x -H "$DS_LDAPS_URI" -D "$(ds_user_dn "$1")" -w "$2" -e ppolicy 2>&1
}
fl_is_member() { # 2 when it cannot be told (no such user or group, the search failed)
    _fm_dn=$(ds_user_dn "$2") || return 2
    _fm_out=$(ds_root_search -b "cn=$1,$DS_GROUPS" -s base \
        "(member=$(ldap_filter_escape "$_fm_dn"))" 1.1) || return 2
    printf '%s\n' "$_fm_out" | grep -q '^dn'
}
fl_must_change() { ds_attr "$1" passwordExpirationTime; }
fl_disabled() { ds_attr "$1" nsAccountLock; }
. "$LDAPDESK_SRC/tests/integration/flavor_suite.sh"

# ---- 389 DS specifics: the shared suite stopped the daemon; each part restarts it -------------
# Two more permissions: a group the service account may not write (its ACIs cover ou=groups
# only), and a groupOfUniqueNames (members in uniqueMember, which ldapdesk does not manage).
ds_root_modify -a >/dev/null <<EOF
dn: cn=nowrite,ou=services,$DS_BASE
objectClass: groupOfNames
cn: nowrite
member: $DS_PLACEHOLDER_DN

dn: cn=uniq,$DS_GROUPS
objectClass: groupOfUniqueNames
cn: uniq
uniqueMember: $(ds_user_dn carol)
EOF
printf '\n[grant.%s]\ngroup = %s\nlabel = %s\napproval = no\n' \
    nowrite "cn=nowrite,ou=services,$DS_BASE" 只读 uniq "cn=uniq,$DS_GROUPS" 唯一 >>"$T_DIR/d.conf"
fl_unique_member() {
    ds_root_search -b "cn=$1,$DS_GROUPS" -s base \
        "(uniqueMember=$(ldap_filter_escape "$(ds_user_dn "$2")"))" 1.1 | grep -q '^dn'
}
daemon_start "$T_DIR/d.conf" || t_fail "ldapdeskd starts again"
as_op adm1 "$FL_OP_PW"

# 389 DS ends its diagnostic messages with "\n": none may reach a reply or the audit detail.
out=$("$D" --json grant alice nowrite 2>/dev/null || true)
t_match "Insufficient 'write' privilege" "a grant 389 DS refuses says why" printf '%s\n' "$out"
t_match "the service account \\(\\[ldap\\] bind_dn\\) may not make this change: give it the rights" \
    "... and what to do about it" printf '%s\n' "$out"
t_eq "$(printf '%s' "$out" | jq -r '.message | test("\\s$")')" false \
    "... without the server's trailing newline in the message"
t_eq "$(q "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.permission = 'nowrite' AND o.detail LIKE '%Insufficient%'
    AND substr(o.detail, -1) NOT IN (char(10), char(13), ' ')")" 1 "... nor in the audit detail"

# A groupOfUniqueNames: a revoke must not answer "unchanged" while the user stays a member, and
# a grant must say what is wrong rather than "attribute member not allowed".
t_exit 1 "revoking a uniqueMember of a groupOfUniqueNames fails (exit 1), never unchanged" \
    "$D" revoke carol uniq
t_match "is not a groupOfNames.*nothing was removed.*make the permission's group a groupOfNames" \
    "... and says why and what to do" printf '%s\n' "$T_OUT"
t_ok "carol is still a uniqueMember" fl_unique_member uniq carol
t_exit 1 "granting through a groupOfUniqueNames fails (exit 1)" "$D" grant alice uniq
t_match "is not a groupOfNames.*nothing was added" "... and says why" printf '%s\n' "$T_OUT"
t_eq "$(q "SELECT group_concat(o.result, ',') FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.permission = 'uniq'")" "failed,failed" "audit: both failed"
t_eq "$("$D" --json revoke erin procurement | jq -r .result)" unchanged \
    "revoking a non-member of a groupOfNames is still unchanged"
daemon_stop
# A groupOfUniqueNames as a [protect] group: its uniqueMembers are protected (only member was
# read, so it protected nobody).
cp "$T_DIR/d.conf" "$T_DIR/d.conf.orig"
sed -i "/^\[protect\]/a groups = cn=uniq,$DS_GROUPS" "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || t_fail "ldapdeskd starts with cn=uniq protected"
as_op hd1 "$FL_OP_PW"
t_exit 4 "helpdesk may not reset carol, a uniqueMember of a protected groupOfUniqueNames (403)" \
    "$D" reset carol
t_match "protected" "... saying she is protected" printf '%s\n' "$T_OUT"
daemon_stop
cp "$T_DIR/d.conf.orig" "$T_DIR/d.conf"

# Plain LDAP without StartTLS: 389 DS answers every Password Modify with 13 (Confidentiality
# required), so such a configuration is refused up front, by -n as at start-up.
sed 's/^starttls = .*/starttls = no/' "$T_DIR/d.conf" >"$T_DIR/plain.conf"
t_exit 1 "-n refuses flavor = 389ds over ldap:// without starttls" \
    "$LDAPDESKD" -n -c "$T_DIR/plain.conf"
t_match 'plain\.conf:[0-9]+: \[ldap\] uri: .*389 DS refuses password resets without TLS: set starttls = yes, or use ldaps://' \
    "... naming the line and what to do" "$LDAPDESKD" -n -c "$T_DIR/plain.conf"
t_ok "... and accepts it with starttls = yes" "$LDAPDESKD" -n -c "$T_DIR/d.conf"

# "Must change" only where 389 DS enforces it: its bind asks for a change after a reset
# (passwordExpirationTime 19700101000000Z) only under passwordMustChange on, and treats a past
# passwordExpirationTime as expired only under passwordExp on; a local policy (dsconf localpwp)
# takes nothing from cn=config. Globally both off now, with dave under a local policy that
# forces the change; frank's password expired in 2020. ldapdeskd reads the policies as it
# connects.
ds_root_modify >/dev/null <<EOF
dn: cn=config
changetype: modify
replace: passwordMustChange
passwordMustChange: off
-
replace: passwordExp
passwordExp: off

dn: $(ds_user_dn frank)
changetype: modify
replace: passwordExpirationTime
passwordExpirationTime: 20200101000000Z
EOF
timeout -k 5 60 dsconf -D "$DS_ROOT_DN" -w "$DS_ROOT_PW" "$DS_URI" localpwp adduser \
    "$(ds_user_dn dave)" --pwdmustchange on >"$T_DIR/dsconf.log" 2>&1 ||
    t_fail "dsconf localpwp adduser dave" "$(cat "$T_DIR/dsconf.log")"
daemon_start "$T_DIR/d.conf" || t_fail "ldapdeskd starts again"
as_op hd1 "$FL_OP_PW"
out=$("$D" --json reset erin)
pw=$(printf '%s' "$out" | jq -r .password)
t_eq "$(printf '%s' "$out" | jq -r '.result + " " + (.must_change | tostring)')" "ok false" \
    "passwordMustChange off: the reset answers must_change false"
t_ok "... and erin binds with the one-time password" fl_bind erin "$pw"
t_nomatch "$FL_MUST_CHANGE_RE" "... without being asked to change it" printf '%s\n' "$T_OUT"
t_eq "$(st erin .must_change)" false "... status says no change is forced"
t_nomatch "must change at next login" "... nor does the audit detail" \
    q "SELECT o.detail FROM records a JOIN records o ON o.attempt_id = a.id
       WHERE a.action = 'reset' AND a.target = 'erin'"
t_match "does not force a change \\(passwordMustChange is off" "... which says why" \
    printf '%s\n' "$T_OUT"
t_ok "frank (passwordExpirationTime 2020, passwordExp off) binds" fl_bind frank "$FL_USER_PW"
t_nomatch "$FL_MUST_CHANGE_RE" "... without being asked to change it" printf '%s\n' "$T_OUT"
t_eq "$(st frank .must_change)" false "... and status says no change is forced"
out=$("$D" --json reset dave)
pw=$(printf '%s' "$out" | jq -r .password)
t_eq "$(printf '%s' "$out" | jq -r .must_change)" true \
    "dave's local policy forces a change: the reset says so"
t_match "$FL_MUST_CHANGE_RE" "... and so does dave's bind" fl_bind dave "$pw"
t_eq "$(st dave .must_change)" true "... and status"

# A disable that comes from a 389 DS role (nsRoleDN, through CoS): taking the entry's own
# nsAccountLock away leaves it, so `user enable` says so and records failed (it answered
# "enabled" with the account still disabled).
dsidm_root() {
    timeout -k 5 60 dsidm -b "$DS_BASE" -D "$DS_ROOT_DN" -w "$DS_ROOT_PW" "$DS_URI" "$@" \
        >>"$T_DIR/dsidm.log" 2>&1
}
if dsidm_root role create-managed --cn disrole && dsidm_root role lock "cn=disrole,$DS_BASE"; then
    printf 'dn: %s\nchangetype: modify\nadd: nsRoleDN\nnsRoleDN: cn=disrole,%s\n' \
        "$(ds_user_dn carol)" "$DS_BASE" | ds_root_modify >/dev/null
    as_op adm1 "$FL_OP_PW"
    t_eq "$(st carol .admin_locked)" true "a user in a locked 389 DS role shows as disabled"
    t_exit 1 "user enable cannot lift a role's lock: exit 1" "$D" user enable carol
    t_match "still disabled: its nsAccountLock comes from a 389 DS role it is in" \
        "... saying where the lock comes from and what to do" printf '%s\n' "$T_OUT"
    t_eq "$(q "SELECT o.result FROM records a JOIN records o ON o.attempt_id = a.id
        WHERE a.action = 'enable' AND a.target = 'carol' ORDER BY a.id DESC LIMIT 1")" failed \
        "... and the audit records it failed, not ok"
    t_eq "$(st carol .admin_locked)" true "... the account is still disabled"
else
    t_fail "dsidm role create-managed / role lock" "$(cat "$T_DIR/dsidm.log")"
fi
daemon_stop

ds389_stop "$T_DIR/ds"
t_note "389 DS flavour suite: $(($(date +%s) - started)) s"
t_done
