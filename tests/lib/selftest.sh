#!/bin/sh
# shellcheck disable=SC2317 # helpers run indirectly, through t_ok and co
# tests/lib/selftest.sh — checks the test harness and the directory facts ldapdeskd relies on,
# with ldap-utils only (no ldapdesk binaries needed; if LDAPDESKD is set, also starts it).
#
#   LDAPDESK_SRC=/path/to/repo sh tests/lib/selftest.sh       (KEEP=1 keeps the temp dir)
set -eu
: "${LDAPDESK_SRC:?set LDAPDESK_SRC to the repository root}"
. "$LDAPDESK_SRC/tests/lib/harness.sh"

t_init "tests/lib selftest: harness, demo directory, ACLs, ppolicy facts"

# ------------------------------------------------------------------ the harness itself
t_exit 3 "t_exit sees the exit code" sh -c 'exit 3'
t_match '^hello wor' "t_match sees stdout" echo "hello world"
t_match 'to stderr' "t_match sees stderr" sh -c 'echo to stderr >&2; exit 1'
t_eq "$T_RC" 1 "T_RC holds the last exit code"
t_nomatch 'secret' "t_nomatch" echo "nothing here"
printf 'x\0Ab3+x^Y.\n' >"$T_DIR/absent.bin"
t_absent 'Zq9+x^Y' "t_absent passes when the string is not there" "$T_DIR/absent.bin"
# The same call on a file that holds the string, and on one that does not exist, must fail:
# as a regular expression "Ab3+x^Y" would match nothing and pass.
absent_inner() {
    # shellcheck disable=SC2016
    KEEP=0 sh -c '
        set -eu
        . "$LDAPDESK_SRC/tests/lib/harness.sh"
        t_init absent
        printf "x\0Ab3+x^Y.\n" >"$T_DIR/f"
        t_absent "Ab3+x^Y" "holds it" "$T_DIR/f"
        t_absent "Ab3+x^Y" "missing file" "$T_DIR/none"
        t_done'
}
t_exit 1 "t_absent fails on a file that holds the string" absent_inner
t_eq "$(printf '%s\n' "$T_OUT" | tail -n 1)" "0 passed, 2 failed, 0 skipped" "... and on a file it cannot read"
t_eq "$(echo a b)" "a b" "t_eq passes on equal strings"
t_empty "t_empty passes on a command that succeeds and prints nothing" true
# Every checker must also be able to fail: each call below is wrong on purpose, in a nested run
# whose summary must count them all as failed.
checks_fail_inner() {
    # shellcheck disable=SC2016
    KEEP=0 sh -c '
        set -eu
        . "$LDAPDESK_SRC/tests/lib/harness.sh"
        t_init checks
        t_eq "a" "b" "t_eq, different strings"
        t_eq "" "b" "t_eq, empty against a value"
        t_match "^xyz" "t_match, no such line" echo "abc"
        t_nomatch "^abc" "t_nomatch, such a line" echo "abc"
        t_exit 3 "t_exit, another status" true
        t_ok "t_ok, a failing command" false
        t_empty "t_empty, some output" echo x
        t_empty "t_empty, a failing command without output" false
        t_done'
}
t_exit 1 "a run of wrong checks exits 1" checks_fail_inner
t_eq "$(printf '%s\n' "$T_OUT" | tail -n 1)" "0 passed, 8 failed, 0 skipped" \
    "t_eq, t_match, t_nomatch, t_exit, t_ok and t_empty each fail when they should"

# A run of skips only is meson's SKIP (77), not a pass: a flavour suite whose server is missing.
skips_inner() {
    # shellcheck disable=SC2016
    KEEP=0 sh -c '
        set -eu
        . "$LDAPDESK_SRC/tests/lib/harness.sh"
        t_init skips
        t_skip "skipped on purpose" "no server"
        t_done'
}
t_exit 77 "a run that only skipped exits 77 (meson: SKIP)" skips_inner

# a nested harness run: failure report, summary line, exit status, cleanup of processes and dir
inner() {
    # shellcheck disable=SC2016
    KEEP=0 sh -c '
        set -eu
        . "$LDAPDESK_SRC/tests/lib/harness.sh"
        t_init inner
        sleep 300 &
        t_track $!
        echo "# pid $! dir $T_DIR"
        t_ok "passes" true
        t_ok "fails on purpose" sh -c "echo some output; exit 7"
        t_skip "skipped on purpose" "the reason"
        t_done'
}
t_exit 1 "a failing inner test run exits 1" inner
inner_out=$T_OUT
t_eq "$(printf '%s\n' "$inner_out" | tail -n 1)" "1 passed, 1 failed, 1 skipped" \
    "inner run ends with the summary, a skip counted apart from the passed"
t_match '^ok 3 - skipped on purpose # SKIP the reason$' "a skip is an ok line marked SKIP, with its reason" \
    printf '%s\n' "$inner_out"
t_match '^not ok 2 - fails on purpose' "inner run reports 'not ok'" printf '%s\n' "$inner_out"
t_match '^#   exit: +7' "the failure shows the exit code" printf '%s\n' "$inner_out"
t_match '^#     some output' "the failure shows the output" printf '%s\n' "$inner_out"
inner_pid=$(printf '%s\n' "$inner_out" | sed -n 's/^# pid \([0-9]*\) dir .*/\1/p')
inner_dir=$(printf '%s\n' "$inner_out" | sed -n 's/^# pid [0-9]* dir //p')
t_exit 1 "the tracked process is gone after the inner run" proc_alive "$inner_pid"
t_exit 1 "the inner T_DIR is removed" test -e "$inner_dir"

# ------------------------------------------------------------------ slapd
# (functions that export variables must not run under t_ok: its CMD runs in a subshell)
if t_start_slapd; then t_pass "slapd starts with the demo directory"; else
    t_fail "slapd starts with the demo directory"
    t_done
fi
t_note "LDAP_URI=$LDAP_URI SLAPD_PID=$SLAPD_PID SLAPD_DIR=$SLAPD_DIR"
set -- $(cat /proc/sys/net/ipv4/ip_local_port_range)
t_ok "LDAP_PORT ($LDAP_PORT) is outside the ephemeral range $1-$2" \
    test "$LDAP_PORT" -lt "$1" -o "$LDAP_PORT" -gt "$2"
t_ok "slapd is tracked" grep -qx "$SLAPD_PID" "$T_DIR/.pids"
t_eq "$(stat -c %a "$SLAPD_DIR/bind.pw")" 600 "bind.pw is mode 0600"
t_eq "$(od -An -c "$SLAPD_DIR/bind.pw" | tr -d ' \n')" "$(printf '%s' "$LDAP_SVC_PW" | od -An -c | tr -d ' \n')" \
    "bind.pw holds the password without a newline"
t_eq "$(stat -c %a "$SLAPD_DIR/server.key")" 600 "server.key is mode 0600"

SVC_PWF=$SLAPD_DIR/bind.pw
svc_whoami() { ldapwhoami -x -H "$LDAP_URI" -D "$LDAP_SVC_DN" -y "$SVC_PWF"; }
svc_ldif() { printf '%s\n' "$@" | ldap_svc_modify; }
svc_add() { printf '%s\n' "$@" | ldap_svc_modify -a; }
# as_user UID PASSWORD LDIF-LINES...: ldapmodify as that user
as_user_ldif() {
    _u_dn=$(ldap_user_dn "$1") && _u_pw=$2 && shift 2 &&
        printf '%s\n' "$@" | ldapmodify -x -H "$LDAP_URI" -D "$_u_dn" -w "$_u_pw"
}
as_user_search() {
    _u_dn=$(ldap_user_dn "$1") && _u_pw=$2 && shift 2 &&
        ldapsearch -x -LLL -o ldif-wrap=no -H "$LDAP_URI" -D "$_u_dn" -w "$_u_pw" "$@"
}
anon_search() { ldapsearch -x -LLL -o ldif-wrap=no -H "$LDAP_URI" "$@"; }
count_dn() { grep -c '^dn' || true; }

ALICE=$(ldap_user_dn alice)
BOB=$(ldap_user_dn bob)
ERIN=$(ldap_user_dn erin)
PROC=cn=procurement,$LDAP_GROUPS

# ------------------------------------------------------------------ demo data
t_eq "$(ldap_svc_search -b "$LDAP_PEOPLE" '(objectClass=inetOrgPerson)' 1.1 | count_dn)" 41 \
    "41 users (36 plain + 5 operators)"
t_eq "$(ldap_svc_search -b "$LDAP_PEOPLE" -s one '(objectClass=organizationalUnit)' 1.1 | count_dn)" 12 \
    "12 department OUs"
t_eq "$ERIN" "uid=erin,ou=办公室(外事办公室董事会办公室),ou=people,dc=example,dc=com" \
    "erin's DN has the parenthesised Chinese department"
t_eq "$(ldap_attr erin ou)" "办公室(外事办公室董事会办公室)" "ou attribute = department name"
t_eq "$(ldap_attr grace cn)" "高雅" "cn is the Chinese name"
t_eq "$(ldap_attr aud1 sn)" "欧阳" "compound surname kept"
t_match '^dn:' "ou=people has the 审计部(审计派驻办) department" \
    ldap_root_search -b "ou=审计部(审计派驻办),$LDAP_PEOPLE" -s base 1.1
t_ok "alice binds with User-Pass-2026" ldap_bind_as alice "$LDAP_USER_PW"
t_ok "hd1 binds with Op-Pass-2026" ldap_bind_as hd1 "$LDAP_OP_PW"
t_ok "bob is in cn=procurement" ldap_is_member procurement bob
t_ok "ivan is in cn=protected" ldap_is_member protected ivan
t_exit 1 "alice is in no system group" ldap_is_member procurement alice
t_exit 2 "ldap_is_member of no such user is an error (2), not 'not a member'" \
    ldap_is_member procurement nosuchuser
t_exit 2 "... and so is one of no such group" ldap_is_member nosuchgroup alice
t_eq "$(ldap_group_members admins | wc -l)" 2 "cn=admins has adm1 and adm2"
t_exit 1 "ldap_group_members of no such group fails (not an empty list)" \
    ldap_group_members nosuchgroup
t_ok "ldap_user_exists: bob is there" ldap_user_exists bob
t_exit 1 "ldap_user_exists: nosuchuser is not" ldap_user_exists nosuchuser
t_exit 1 "ldap_attr of no such user fails (not an absent attribute)" ldap_attr nosuchuser cn
t_exit 2 "ldap_user_exists without a directory is an error (2), not 'gone'" \
    env LDAP_URI=ldap://127.0.0.1:1 sh -c '. "$LDAPDESK_SRC/tests/lib/harness.sh"; ldap_user_exists bob'
t_eq "$(ldap_svc_search -b "cn=finance-docs,$LDAP_GROUPS" -s base description | ldif_values description)" \
    "财务知识文档" "system groups carry the Chinese label in description"
t_match '^pwdMaxFailure: 3$' "cn=default policy: pwdMaxFailure 3" \
    ldap_svc_search -b "$LDAP_POLICY_DN" -s base pwdMaxFailure
t_empty "memberOf is empty for slapadd-loaded members (search the groups)" ldap_attr bob memberOf

# ------------------------------------------------------------------ TLS
t_ok "StartTLS with ca.pem to 127.0.0.1 (IP SAN)" \
    env LDAPTLS_CACERT="$SLAPD_DIR/ca.pem" ldapwhoami -x -ZZ -H "ldap://127.0.0.1:$LDAP_PORT" \
    -D "$LDAP_SVC_DN" -y "$SVC_PWF"
# (no test against ldap://localhost: libldap checks the certificate against the machine's hostname
#  when the URI host is "localhost" — ldapdeskd's config uses ldap://127.0.0.1:PORT)
t_exit 1 "StartTLS refused with other-ca.pem" \
    env LDAPTLS_CACERT="$SLAPD_DIR/other-ca.pem" ldapwhoami -x -ZZ -H "ldap://127.0.0.1:$LDAP_PORT" \
    -D "$LDAP_SVC_DN" -y "$SVC_PWF"
t_match 'Connect error|certificate' "... with a certificate error" printf '%s\n' "$T_OUT"

# ------------------------------------------------------------------ ACLs
t_match '^dn:cn=ldapdesk,ou=services' "service account binds" svc_whoami
svc_fail5() {
    for _i in 1 2 3 4 5; do
        ldapwhoami -x -H "$LDAP_URI" -D "$LDAP_SVC_DN" -w wrong >/dev/null 2>&1 || true
    done
}
svc_fail5
t_match '^dn:cn=ldapdesk,ou=services' "5 failed binds do not lock the service account (own policy)" svc_whoami
t_match '1\.3\.6\.1\.4\.1\.42\.2\.27\.8\.5\.1' "root DSE (anonymous) lists the ppolicy control" \
    anon_search -b '' -s base supportedControl
t_nomatch '^dn' "anonymous sees no people" anon_search -b "$LDAP_PEOPLE" '(uid=alice)' 1.1
t_nomatch '^dn' "anonymous sees no groups" anon_search -b "$LDAP_GROUPS" '(cn=*)' 1.1
t_match '^cn:: ' "a user reads another user's entry" as_user_search alice "$LDAP_USER_PW" -b "$BOB" -s base cn
t_nomatch '^userPassword' "a user cannot read another's userPassword" \
    as_user_search alice "$LDAP_USER_PW" -b "$BOB" -s base userPassword
t_match '^userPassword' "the service account reads userPassword (manage)" \
    ldap_svc_search -b "$BOB" -s base userPassword
t_exit 50 "a user cannot modify another user" as_user_ldif alice "$LDAP_USER_PW" \
    "dn: $BOB" "changetype: modify" "replace: mail" "mail: x@example.com"
t_exit 50 "a user cannot add herself to a group" as_user_ldif alice "$LDAP_USER_PW" \
    "dn: $PROC" "changetype: modify" "add: member" "member: $ALICE"
t_exit 50 "a user cannot write ppolicy state" as_user_ldif alice "$LDAP_USER_PW" \
    "dn: $BOB" "changetype: modify" "replace: pwdAccountLockedTime" "pwdAccountLockedTime: 000001010000Z"
t_exit 50 "the service account cannot modify the password policy" svc_ldif \
    "dn: $LDAP_POLICY_DN" "changetype: modify" "replace: pwdMaxFailure" "pwdMaxFailure: 100"
t_exit 50 "the service account cannot modify ou=services entries" svc_ldif \
    "dn: $LDAP_PLACEHOLDER_DN" "changetype: modify" "replace: description" "description: x"

# ------------------------------------------------------------------ lock and unlock
t_ok "ldap_lock_user judy locks her (pwdAccountLockedTime appears)" ldap_lock_user judy
t_match '^[0-9]{14}Z$' "pwdAccountLockedTime is a GeneralizedTime" ldap_attr judy pwdAccountLockedTime
t_match '^pwdAccountLockedTime: ' "the service account reads pwdAccountLockedTime" \
    ldap_svc_search -b "$(ldap_user_dn judy)" -s base pwdAccountLockedTime
t_match '^pwdAccountLockedTime: ' "a user reads another user's pwdAccountLockedTime" \
    as_user_search alice "$LDAP_USER_PW" -b "$(ldap_user_dn judy)" -s base pwdAccountLockedTime
t_match 'Account locked' "judy's right password fails: Account locked" ldap_bind_as judy "$LDAP_USER_PW"
t_eq "$T_RC" 49 "... with invalidCredentials (49)"
t_exit 19 "deleting pwdFailureTime is refused (no user modification)" svc_ldif \
    "dn: $(ldap_user_dn judy)" "changetype: modify" "delete: pwdFailureTime"
t_ok "the service account deletes pwdAccountLockedTime" svc_ldif \
    "dn: $(ldap_user_dn judy)" "changetype: modify" "delete: pwdAccountLockedTime"
t_empty "pwdAccountLockedTime is gone" ldap_attr judy pwdAccountLockedTime
t_empty "... and slapd removed pwdFailureTime with it" ldap_attr judy pwdFailureTime
t_ok "judy binds again" ldap_bind_as judy "$LDAP_USER_PW"
t_exit 16 "unlocking an unlocked user: noSuchAttribute (16)" svc_ldif \
    "dn: $(ldap_user_dn judy)" "changetype: modify" "delete: pwdAccountLockedTime"

# ------------------------------------------------------------------ reset
CAROL=$(ldap_user_dn carol)
t_ok "service account resets carol (Password Modify exop)" \
    ldappasswd -x -H "$LDAP_URI" -D "$LDAP_SVC_DN" -y "$SVC_PWF" -s "Fresh-Pass-7x" "$CAROL"
t_eq "$(ldap_attr carol pwdReset)" TRUE "pwdReset: TRUE set by slapd (manage on userPassword)"
t_match '^\{SSHA\}' "slapd hashed the new password" ldap_attr carol userPassword
t_match 'Password must be changed' "carol's bind with the ppolicy control: must change" \
    ldap_bind_as carol "Fresh-Pass-7x"
t_eq "$T_RC" 0 "... yet the bind itself succeeds"
t_match 'result: 50|Insufficient access' "any search on that connection fails with 50" \
    ldapsearch -x -H "$LDAP_URI" -D "$CAROL" -w "Fresh-Pass-7x" -b "$CAROL" -s base 1.1
t_ok "carol changes her own password" \
    ldappasswd -x -H "$LDAP_URI" -D "$CAROL" -w "Fresh-Pass-7x" -a "Fresh-Pass-7x" -s "Own-Pass-8y"
t_empty "pwdReset is gone after her own change" ldap_attr carol pwdReset
t_nomatch 'must be changed' "carol's next bind is clean" ldap_bind_as carol "Own-Pass-8y"

t_ok "lock frank" ldap_lock_user frank
t_ok "reset frank" ldappasswd -x -H "$LDAP_URI" -D "$LDAP_SVC_DN" -y "$SVC_PWF" -s "Fresh-Pass-9z" \
    "$(ldap_user_dn frank)"
t_empty "a reset always unlocks" ldap_attr frank pwdAccountLockedTime
t_ok "admin-lock frank (000001010000Z)" svc_ldif "dn: $(ldap_user_dn frank)" "changetype: modify" \
    "replace: pwdAccountLockedTime" "pwdAccountLockedTime: 000001010000Z"
t_match 'Account locked' "an administrator-locked account cannot bind" ldap_bind_as frank "Fresh-Pass-9z"
t_ok "reset frank again" ldappasswd -x -H "$LDAP_URI" -D "$LDAP_SVC_DN" -y "$SVC_PWF" -s "Fresh-Pass-0w" \
    "$(ldap_user_dn frank)"
t_empty "a reset also clears an administrator lock" ldap_attr frank pwdAccountLockedTime

# ------------------------------------------------------------------ groups
t_ok "service account adds alice to cn=procurement" svc_ldif \
    "dn: $PROC" "changetype: modify" "add: member" "member: $ALICE"
t_ok "alice is a member" ldap_is_member procurement alice
t_exit 20 "adding her again: typeOrValueExists (20)" svc_ldif \
    "dn: $PROC" "changetype: modify" "add: member" "member: $ALICE"
t_match "^memberOf: cn=procurement,$LDAP_GROUPS\$" "memberOf is maintained for changes through slapd" \
    ldap_svc_search -b "$ALICE" -s base memberOf
t_ok "service account removes alice" svc_ldif \
    "dn: $PROC" "changetype: modify" "delete: member" "member: $ALICE"
t_exit 16 "removing a non-member: noSuchAttribute (16)" svc_ldif \
    "dn: $PROC" "changetype: modify" "delete: member" "member: $ALICE"
t_ok "erin (parentheses, Chinese) added to cn=brand-insight" svc_ldif \
    "dn: cn=brand-insight,$LDAP_GROUPS" "changetype: modify" "add: member" "member: $ERIN"
ERIN_F="(member=$(ldap_filter_escape "$ERIN"))"
t_eq "$ERIN_F" '(member=uid=erin,ou=办公室\28外事办公室董事会办公室\29,ou=people,dc=example,dc=com)' \
    "ldap_filter_escape escapes the parentheses"
t_match '^dn: cn=brand-insight,' "group search (member=DN) with the escaped DN finds the group" \
    ldap_svc_search -b "$LDAP_GROUPS" "$ERIN_F" 1.1
t_match 'Bad search filter' "the unescaped filter is a bad filter" ldap_svc_search -b "$LDAP_GROUPS" "(member=$ERIN)" 1.1
t_match '^dn: cn=helpdesk,' "role search: hd1 is found in cn=helpdesk" \
    ldap_svc_search -b "$LDAP_GROUPS" "(member=$(ldap_filter_escape "$(ldap_user_dn hd1)"))" 1.1
t_exit 65 "removing the last member of a groupOfNames: objectClassViolation (65)" svc_ldif \
    "dn: cn=auditors,$LDAP_GROUPS" "changetype: modify" "delete: member" "member: $(ldap_user_dn aud1)"
t_ok "the service account may write role groups too (adds hd1 to cn=admins)" svc_ldif \
    "dn: cn=admins,$LDAP_GROUPS" "changetype: modify" "add: member" "member: $(ldap_user_dn hd1)"
t_ok "... and removes it again" svc_ldif \
    "dn: cn=admins,$LDAP_GROUPS" "changetype: modify" "delete: member" "member: $(ldap_user_dn hd1)"

# ------------------------------------------------------------------ user life cycle (user create/move/delete)
NEWBIE="uid=newbie,ou=市场营销中心,$LDAP_PEOPLE"
NEWBIE2="uid=newbie,ou=财务管理部,$LDAP_PEOPLE"
t_ok "service account creates a user in a Chinese department" svc_add "dn: $NEWBIE" \
    "objectClass: inetOrgPerson" "uid: newbie" "cn: 新人" "sn: 新" "ou: 市场营销中心" "mail: newbie@example.com"
t_ok "... sets a first password" ldappasswd -x -H "$LDAP_URI" -D "$LDAP_SVC_DN" -y "$SVC_PWF" \
    -s "First-Pass-1q" "$NEWBIE"
t_eq "$(ldap_attr newbie pwdReset)" TRUE "... which must be changed"
t_ok "... moves it to another department" \
    ldapmodrdn -x -H "$LDAP_URI" -D "$LDAP_SVC_DN" -y "$SVC_PWF" -s "ou=财务管理部,$LDAP_PEOPLE" "$NEWBIE" uid=newbie
t_eq "$(ldap_user_dn newbie)" "$NEWBIE2" "... the DN changed"
t_ok "... deletes it" ldapdelete -x -H "$LDAP_URI" -D "$LDAP_SVC_DN" -y "$SVC_PWF" "$NEWBIE2"

# ------------------------------------------------------------------ restart
old_port=$LDAP_PORT
old_pid=$SLAPD_PID
if slapd_restart "$SLAPD_DIR"; then t_pass "slapd_restart"; else t_fail "slapd_restart"; t_done; fi
t_eq "$LDAP_PORT" "$old_port" "restart keeps the port"
t_exit 1 "the old slapd is gone" proc_alive "$old_pid"
t_ok "data survives a restart (erin still in cn=brand-insight)" ldap_is_member brand-insight erin
t_exit 1 "only the new slapd is tracked" grep -qx "$old_pid" "$T_DIR/.pids"

# ------------------------------------------------------------------ daemon config
if daemon_config "$T_DIR/ldapdeskd.conf"; then t_pass "daemon_config writes a config"; else
    t_fail "daemon_config writes a config"
fi
t_eq "$(awk 'length($0) >= 200' "$T_DIR/ldapdeskd.conf" | wc -l)" 0 "every config line is < 200 bytes"
t_eq "$(grep -c '^\[grant\.' "$T_DIR/ldapdeskd.conf")" 5 "five [grant.*] sections"
t_match "^uri = $LDAP_URI\$" "config points at the running slapd" cat "$T_DIR/ldapdeskd.conf"
t_match '^listen = 127\.0\.0\.1:[0-9]+$' "config listens on a loopback port" cat "$T_DIR/ldapdeskd.conf"
t_exit 1 "LDAPDESK_PORT is free" port_in_use "$LDAPDESK_PORT"
as_op hd1
t_eq "$LDAPDESK_USER/$LDAPDESK_PASSWORD" "hd1/Op-Pass-2026" "as_op sets the operator's credentials"
if [ -n "${LDAPDESKD:-}" ] && [ -x "$LDAPDESKD" ]; then
    t_ok "ldapdeskd -n accepts the config" "$LDAPDESKD" -n -c "$T_DIR/ldapdeskd.conf"
    if daemon_start "$T_DIR/ldapdeskd.conf"; then
        t_pass "daemon_start: ldapdeskd answers /v1/health"
        t_match '"status"' "health answers JSON" curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/v1/health"
        # daemon_reload tells a reload taken (0) from one refused (2)
        t_ok "daemon_reload returns 0 for a reload taken" daemon_reload
        cp "$T_DIR/ldapdeskd.conf" "$T_DIR/ldapdeskd.conf.good"
        printf '[ldap]\nnot_a_key = 1\n' >>"$T_DIR/ldapdeskd.conf"
        t_exit 2 "daemon_reload returns 2 for a reload refused (reload failed)" daemon_reload
        cp "$T_DIR/ldapdeskd.conf.good" "$T_DIR/ldapdeskd.conf"
        daemon_stop
        t_eq "${DAEMON_RC:-}" 0 "ldapdeskd exits 0 on SIGTERM"
    else
        t_fail "daemon_start: ldapdeskd answers /v1/health"
    fi
else
    t_skip "ldapdeskd start" "LDAPDESKD not set"
fi

t_done
