#!/bin/sh
# core.sh — issue points 3, 5, 6, 7 end to end: the real ldapdesk against the
# real ldapdeskd against a real slapd (StartTLS, ppolicy, memberof).
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init core
t_start_slapd || { t_fail "slapd starts"; t_done; }
# Two users under password policies of their own (pwdPolicySubentry), read by the daemon at
# start beside the default one (lockout 3600 s): grace's lock lasts until an unlock, judy's
# 60 s. Grace was locked 2 hours ago, judy 10 minutes ago: the default duration would get
# both wrong.
ldap_add_policy until-unlocked 'pwdLockout: TRUE' 'pwdMaxFailure: 3' 'pwdLockoutDuration: 0'
ldap_add_policy one-minute 'pwdLockout: TRUE' 'pwdMaxFailure: 3' 'pwdLockoutDuration: 60'
for u in 'grace:until-unlocked:2 hours ago' 'judy:one-minute:10 minutes ago'; do
    ldap_set_policy "$(echo "$u" | cut -d: -f1)" "$(echo "$u" | cut -d: -f2)"
    ldap_set_lock_time "$(echo "$u" | cut -d: -f1)" "$(date -u -d "$(echo "$u" | cut -d: -f3)" +%Y%m%d%H%M%SZ)"
done
# pengbo is under a policy that does not force a change after a reset (pwdMustChange is FALSE
# by default): slapd ignores pwdReset there, so nobody may say "must change".
ldap_add_policy no-forced-change 'pwdLockout: TRUE' 'pwdMaxFailure: 3'
ldap_set_policy pengbo no-forced-change
# tianye's password is older than its policy's pwdMaxAge; chenjing's account validity ended
# (pwdEndTime): slapd refuses both logins, and status says why.
ldap_add_policy aged 'pwdMaxAge: 60' 'pwdGraceAuthNLimit: 0'
ldap_set_policy tianye aged
printf 'dn: %s\nchangetype: modify\nreplace: pwdChangedTime\npwdChangedTime: 20200101000000Z\n' \
    "$(ldap_user_dn tianye)" | ldap_root_modify -e relax >/dev/null
printf 'dn: %s\nchangetype: modify\nreplace: pwdEndTime\npwdEndTime: 20200101000000Z\n' \
    "$(ldap_user_dn chenjing)" | ldap_root_modify >/dev/null
daemon_config "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
D=$LDAPDESK
DB=$T_DIR/audit.db
q() { sqlite3 "$DB" "$1"; }

# ---- login, sessions ---------------------------------------------------------
as_op hd1
t_ok "helpdesk operator logs in" "$D" login
t_match "logged in as hd1" "login says who" "$D" login
cache=$(find "$XDG_CACHE_HOME/ldapdesk" -type f | head -n 1)
t_eq "$(stat -c %a "$cache")" 600 "session cache file is mode 0600"
t_absent "Op-Pass-2026" "session cache holds no password" "$XDG_CACHE_HOME"/ldapdesk/*
LDAPDESK_PASSWORD=wrong-password
t_exit 3 "bad password is 401 (exit 3)" "$D" login
t_eq "$(q "SELECT count(*) FROM records r WHERE kind='attempt' AND action='login' AND operator='hd1'
          AND (SELECT result FROM records o WHERE o.attempt_id=r.id)='denied'")" 1 \
    "the refused login is an audit row (denied)"
as_op hd1

# ---- status, unlock ------------------------------------------------------------------
t_ok "status of alice" "$D" status alice
t_match "王丽" "status shows the Chinese name" "$D" status alice
t_eq "$("$D" --json status alice | jq -r .locked)" false "alice starts unlocked"
ldap_lock_user alice >/dev/null 2>&1 || true
t_eq "$("$D" status alice --json | jq -r .locked)" true "after 3 bad binds status says locked (global option after command)"
t_eq "$("$D" --json status alice | jq -r .failures)" 3 "status counts the failures"
t_match '"locked_since": "20' "locked_since is a time" "$D" --json status alice
t_match "3 failed logins" "status says why alice is locked" "$D" status alice
t_ok "unlock alice" "$D" unlock alice --ticket T-100 --requester 张三 --dept 市场营销中心 --channel hotline --note "called at 9"
t_empty "pwdAccountLockedTime is gone in the directory" ldap_attr alice pwdAccountLockedTime
t_eq "$("$D" --json status alice | jq -r '.history[0].action + "|" + .history[0].operator + "|" + .history[0].result')" \
    "unlock|hd1|ok" "status shows the latest audit rows about the user"
t_eq "$("$D" --json unlock ALICE | jq -r .result)" unchanged "unlock of an unlocked user is unchanged (asked as ALICE)"
t_eq "$(q "SELECT ticket||'|'||requester||'|'||department||'|'||channel FROM records WHERE action='unlock' ORDER BY id LIMIT 1")" \
    "T-100|张三|市场营销中心|hotline" "event options reach the audit row"
t_eq "$(q "SELECT department FROM records WHERE action='unlock' AND kind='attempt' ORDER BY id DESC LIMIT 1")" \
    "$("$D" --json status alice | jq -r .department)" \
    "without --dept, the submitting department is the user's own (not left empty for the report)"
# A lock older than pwdLockoutDuration (3600 s) no longer locks, though the entry still holds it.
ldap_set_lock_time frank "$(date -u -d '-2 hours' +%Y%m%d%H%M%SZ)"
t_eq "$("$D" --json status frank | jq -r '"\(.locked)|\(.locked_since)"')" "false|null" \
    "a lock past its duration: locked false, locked_since null"
t_match "lock that has expired" "status says an expired lock is still recorded" "$D" status frank
t_eq "$("$D" --json unlock frank | jq -r .result)" unchanged \
    "unlock of a lock past its duration is unchanged: frank was not locked (as status said)"
t_eq "$(q "SELECT detail FROM records WHERE kind='outcome' ORDER BY id DESC LIMIT 1")" \
    "was not locked (a lock not in effect, expired or dated ahead, was cleared from the entry)" "... its detail says the stale lock was cleared"
t_empty "pwdAccountLockedTime is gone" ldap_attr frank pwdAccountLockedTime
# A lock dated in the future is not in effect yet (2.5's ppolicy lets frank log in): not locked.
ldap_set_lock_time frank "$(date -u -d '+1 day' +%Y%m%d%H%M%SZ)"
t_eq "$("$D" --json status frank | jq -r .locked)" false "a lock dated tomorrow: locked false"
t_match "a lock dated in the future: not in effect yet" "... and status says why" "$D" status frank
t_eq "$("$D" --json unlock frank | jq -r .result)" unchanged "... so its unlock (by the cached DN) is unchanged"
t_empty "... and clears it from the entry" ldap_attr frank pwdAccountLockedTime
# A lock inside its duration, frank's DN now cached: the asserted unlock is ok.
ldap_lock_user frank >/dev/null 2>&1 || true
t_eq "$("$D" --json unlock frank | jq -r .result)" ok "a current lock on a cached user unlocks: ok"
t_empty "... and the lock is gone" ldap_attr frank pwdAccountLockedTime

# ---- reset -------------------------------------------------------------------------------
ldap_lock_user bob >/dev/null 2>&1 || true
out=$("$D" --json reset bob --unlock)
pw=$(printf '%s' "$out" | jq -r .password)
t_eq "$(printf '%s' "$out" | jq -r .result)" ok "reset answers ok"
t_eq "$(printf '%s' "$pw" | grep -cE '^.{14,}$')" 1 "one-time password has at least 14 characters"
t_eq "$(printf '%s' "$pw" | grep -c '[A-Z]' ; )" 1 "password has upper case"
t_eq "$(printf '%s' "$pw" | grep -c '[0-9]')" 1 "password has digits"
t_eq "$(ldap_attr bob pwdReset)" TRUE "pwdReset is TRUE after the reset"
t_empty "reset --unlock leaves bob unlocked" ldap_attr bob pwdAccountLockedTime
t_match "must be changed|Password expired|change after reset|changeAfterReset" \
    "bob's next bind says the password must be changed" ldap_bind_as bob "$pw"
t_absent "$pw" "the generated password is not in the audit database" "$DB" "$DB-wal"
t_absent "$pw" "the generated password is not in the daemon log" "$T_DIR/ldapdeskd.log"
t_absent "Op-Pass-2026" "operator passwords are not in the audit database" "$DB" "$DB-wal"
t_absent "Op-Pass-2026" "operator passwords are not in the daemon log" "$T_DIR/ldapdeskd.log"
t_match "One-time password for carol" "human reset output names the user" "$D" reset carol

# ---- grant, revoke ---------------------------------------------------------------------
t_exit 4 "helpdesk may not grant (403, exit 4)" "$D" grant alice procurement
t_match "hd1's roles do not allow grant" "the refusal names the operator it was for" "$D" grant alice procurement
as_op adm1
t_ok "admin grants 采管系统 for 30 days" "$D" grant alice procurement --days 30 --ticket T-7
t_ok "alice is now a member of cn=procurement" ldap_is_member procurement alice
exp30=$("$D" --json status alice | jq -r '.grants[] | select(.permission == "procurement") | .expires')
t_eq "$("$D" --json grant alice procurement | jq -r .result)" unchanged "granting again is unchanged"
t_eq "$("$D" --json status alice | jq -r '.grants[] | select(.permission == "procurement") | .expires')" "$exp30" \
    "and keeps the 30-day term (no term asked: not max_days' 90)"
t_eq "$("$D" --json status alice | jq -r '.grants[0].permission + "|" + .grants[0].label + "|" + .grants[0].granted_by')" \
    "procurement|采管系统|adm1" "status lists the grant with label and granter"
t_exit 2 "a grant over max_days is a bad request (exit 2)" "$D" grant alice procurement --days 365
t_exit 5 "an unknown permission is 404 (exit 5)" "$D" grant alice no-such-system
t_ok "admin revokes" "$D" revoke alice procurement
tomorrow=$(TZ=Asia/Shanghai date -d tomorrow +%Y-%m-%d)
t_match "^${tomorrow}T09:00:00" "--until takes ISO 8601 without seconds (server time zone)" \
    sh -c "'$D' --json grant alice procurement --until ${tomorrow}T09:00 | jq -r .expires"
t_ok "and revokes again" "$D" revoke alice procurement
t_match "^${tomorrow}T23:59:59" "--until with a date alone is that whole day (its last second)" \
    sh -c "'$D' --json grant alice procurement --until ${tomorrow} | jq -r .expires"
t_ok "and revokes once more" "$D" revoke alice procurement
t_exit 1 "alice is no longer a member" ldap_is_member procurement alice
t_eq "$("$D" --json revoke alice procurement | jq -r .result)" unchanged "revoking a non-member is unchanged"

# ---- protection -----------------------------------------------------------------------------
as_op hd1
t_exit 4 "helpdesk may not reset an admin (protected)" "$D" reset adm2
t_exit 4 "helpdesk may not unlock a protected VIP" "$D" unlock ivan
t_exit 4 "an operator may not reset themselves" "$D" reset hd1
t_exit 5 "unknown user is 404 (exit 5)" "$D" unlock nosuchuser
# Refused status reads are attempts too; successful ones are not recorded (DESIGN).
status_rows() { q "SELECT group_concat(a.operator || ' ' || a.target || ' ' || o.result, ', ')
    FROM records a JOIN records o ON o.attempt_id = a.id WHERE a.action = 'status'"; }
t_exit 5 "status of an unknown user is 404 (exit 5)" "$D" status nosuchuser
t_exit 4 "an auditor may not read a user's status (403)" env LDAPDESK_USER=aud1 "$D" status alice
t_eq "$(status_rows)" "hd1 nosuchuser failed, aud1 alice denied" \
    "refused status reads are audit rows; the successful ones above are not"

# ---- audit log -------------------------------------------------------------------------------
t_exit 4 "helpdesk may not read the log" "$D" log
t_eq "$("$D" --json log 2>/dev/null | jq -c 'keys')" '["error","message"]' \
    "a refused --json log writes only the error object to stdout (no half log)"
as_op aud1
t_ok "auditor reads the log" "$D" log
t_match '^id +requested_at +finished_at +operator +operator_dn +client_addr +action +target +target_dn +permission +category +ticket +requester +department +channel +description +note +result +detail +request_id +imported +hash$' \
    "the log table has DESIGN's 22 columns" "$D" log --limit 1
t_match "$(q "SELECT hash FROM records WHERE kind='attempt' AND action='unlock' AND ticket='T-100'")\$" \
    "a row shows its full hash (and ticket T-100, requester 张三, note)" sh -c "'$D' log --user alice --action unlock | grep T-100 | grep 张三 | grep 'called at 9'"
t_eq "$("$D" log --json --user alice --action unlock | jq -r '[.events[].target] | join(",")')" alice,alice \
    "log filters by user and action; the unlock asked as ALICE is recorded under the uid alice"
t_eq "$("$D" log --json --result unchanged | jq -r '[.events[].action] | unique | join(",")')" \
    "grant,revoke,unlock" "log filters by result"
t_eq "$("$D" log --json --operator adm1 --action grant | jq -r '.events[0].permission')" procurement "log filters by operator"
today=$(TZ=Asia/Shanghai date +%Y-%m-%d)
t_eq "$("$D" log --json --from "$today" --to "$today" --action reset --result ok | jq '.events | length')" 2 "log filters by day (two resets done today)"
t_eq "$("$D" log --json --from "${today}T00:00" --to "${today}T23:59:59.999" --action reset --result ok | jq '.events | length')" 2 \
    "log takes ISO 8601 times, seconds optional"
empty_rc=0
empty=$("$D" log --json --from 2020-01-01 --to 2020-01-02 2>"$T_DIR/empty.err") || empty_rc=$?
t_eq "$empty_rc $(printf '%s\n' "$empty" | jq -c '.events' 2>&1)" '0 []' \
    "an empty period is answered (exit 0) with an empty list of events ($(cat "$T_DIR/empty.err"))"
t_exit 2 "a period whose from is after its to is a bad request (exit 2), as for report" "$D" log --from 2026-12-01 --to 2026-11-01
t_exit 2 "an unknown action is a bad request, not an empty log" "$D" log --action unlcok
t_exit 2 "so is an unknown result" "$D" log --result okay
t_exit 2 "and an unknown category" "$D" log --category todo
t_eq "$("$D" log --json --user ALICE --action unlock | jq '.events | length')" 2 "--user ignores case (ALICE finds alice)"
t_match "from is after to" "report says which way round a range is wrong" "$D" report --from 2026-12-01 --to 2026-11-01
t_match "from '2026-13-01' is not a date that exists" "and which bound is no date" "$D" report --from 2026-13-01 --to 2026-12-01
t_match '^id,requested_at,finished_at,operator' "CSV export has the header" "$D" log --format csv
t_match '张三' "CSV keeps UTF-8" "$D" log --format csv --action unlock
t_eq "$("$D" log --json --limit 3 | jq '.events | length')" 3 "--limit bounds the rows"
total=$(q "SELECT count(*) FROM records WHERE kind='attempt'")
t_eq "$("$D" log --json | jq '.events | length')" "$total" "log without --limit returns every attempt"
t_eq "$(q "SELECT count(*) FROM records r WHERE kind='attempt' AND NOT EXISTS (SELECT 1 FROM records o WHERE o.attempt_id=r.id)")" 0 \
    "no attempt is left pending"
t_match '"ok": true' "the chain verifies" "$D" --json verify

# ---- metrics --------------------------------------------------------------------------------
t_match '^ldapdesk_actions_total\{action="unlock",code="2xx"\} 5$' "GET /metrics counts the unlocks" \
    curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/metrics"
t_match '^ldapdesk_directory_up 1$' "GET /metrics reports the directory up" \
    curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/metrics"
for k in log verify; do
    t_match "^ldapdesk_actions_total\\{action=\"$k\",code=\"2xx\"\\} [1-9]" "GET /metrics counts the $k reads answered 200" \
        curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/metrics"
done
# Each metric family: one HELP and one TYPE line, and each sample's name is a family's.
t_eq "$(curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/metrics" | awk '
    $1 == "#" && $2 == "TYPE" { t[$3]++; nt++; next }
    $1 == "#" && $2 == "HELP" { h[$3]++; nh++; next }
    /^[a-z]/ { n = $1; sub(/[{].*/, "", n); s[n]++; ns++ }
    END {
        if (!ns) print "no sample"
        if (!nt) print "no TYPE line"
        if (!nh) print "no HELP line"
        for (m in t) if (h[m] != 1 || t[m] != 1) print m ": " h[m] + 0 " HELP, " t[m] + 0 " TYPE lines"
        for (m in h) if (!(m in t)) print m ": HELP without TYPE"
        for (m in s) if (!(m in t)) print m ": samples without TYPE"
    }' | sort)" "" "every metric has its one HELP and one TYPE line, and every sample belongs to one"
metric() { curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
commits=$(metric ldapdesk_audit_commits_total)
records=$(metric ldapdesk_audit_records_total)
t_ok "group commits are counted ($commits commits, $records records)" \
    test "${commits:-0}" -ge 1 -a "${records:-0}" -ge "${commits:-1}"
t_eq "$(metric 'ldapdesk_user_cache_total{result="hit"}')" 5 \
    "alice's two unlocks and frank's three went by the DN their status read cached (five hits)"
pairs=$(metric ldapdesk_audit_pairs_total)
t_ok "refusals and logins are counted as pairs ($pairs)" test "${pairs:-0}" -ge 1
# A pair (refusal, login, event) is two records in one commit; anything else one per commit.
t_eq "$((commits + pairs))" "$records" \
    "one request at a time: every commit held one request's records (no delay)"

# ---- roles through nested groups --------------------------------------------------------------
# An operator in a team listed in a role group (two deep, as AD's role groups are built) has
# the role, and is protected as role members are; once the team is taken out, no role.
printf 'dn: uid=nestop,%s\nobjectClass: inetOrgPerson\nuid: nestop\ncn: Nest Op\nsn: Op\nuserPassword: %s\n\n' \
    "$LDAP_PEOPLE" "$LDAP_OP_PW" >"$T_DIR/nest.ldif"
printf 'dn: cn=tier1-night,%s\nobjectClass: groupOfNames\ncn: tier1-night\nmember: uid=nestop,%s\n\n' \
    "$LDAP_GROUPS" "$LDAP_PEOPLE" >>"$T_DIR/nest.ldif"
printf 'dn: cn=tier1,%s\nobjectClass: groupOfNames\ncn: tier1\nmember: cn=tier1-night,%s\n' \
    "$LDAP_GROUPS" "$LDAP_GROUPS" >>"$T_DIR/nest.ldif"
ldapadd -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" -f "$T_DIR/nest.ldif" >/dev/null
nest_helpdesk() { # add|delete: cn=tier1 as a member of cn=helpdesk
    printf 'dn: cn=helpdesk,%s\nchangetype: modify\n%s: member\nmember: cn=tier1,%s\n' \
        "$LDAP_GROUPS" "$1" "$LDAP_GROUPS" | ldap_root_modify >/dev/null
}
nestop() { env LDAPDESK_USER=nestop XDG_CACHE_HOME="$T_DIR/cache-nest" "$D" "$@"; }
t_exit 4 "nestop, in no role group, cannot log in (403)" nestop login
nest_helpdesk add
t_match 'roles: helpdesk' "in tier1-night, within tier1, within cn=helpdesk: nestop logs in as helpdesk" \
    nestop login
t_ok "... and unlocks a user" nestop unlock alice
sleep 6
t_exit 4 "... and, as a role member, is protected from hd1 (403)" "$D" reset nestop
nest_helpdesk delete
t_exit 4 "tier1 taken out of cn=helpdesk: nestop's next login has no role (403)" \
    env LDAPDESK_USER=nestop XDG_CACHE_HOME="$T_DIR/cache-nest2" "$D" login
# An operator in 700 groups, with the role groups outside group_base (each then asked about
# per group): its login walks them a few searches at a time, not all at once (which filled the
# directory queue: 503 for it and for everyone else meanwhile).
{
    printf 'dn: uid=manyop,%s\nobjectClass: inetOrgPerson\nuid: manyop\ncn: Many\nsn: Op\nuserPassword: %s\n\n' \
        "$LDAP_PEOPLE" "$LDAP_OP_PW"
    printf 'dn: ou=teams,%s\nobjectClass: organizationalUnit\nou: teams\n\n' "$LDAP_GROUPS"
    i=1
    while [ "$i" -le 700 ]; do
        printf 'dn: cn=t%d,ou=teams,%s\nobjectClass: groupOfNames\ncn: t%d\nmember: uid=manyop,%s\n\n' \
            "$i" "$LDAP_GROUPS" "$i" "$LDAP_PEOPLE"
        i=$((i + 1))
    done
} | ldapadd -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null
printf 'dn: cn=helpdesk,%s\nchangetype: modify\nadd: member\nmember: uid=manyop,%s\n' \
    "$LDAP_GROUPS" "$LDAP_PEOPLE" | ldap_root_modify >/dev/null
cp "$T_DIR/d.conf" "$T_DIR/d.conf.nest"
sed -i "s|^group_base = .*|group_base = ou=teams,$LDAP_GROUPS|" "$T_DIR/d.conf"
t_ok "a reload with group_base below the role groups is taken" daemon_reload
t_match 'roles: helpdesk' "manyop, in 700 groups, logs in as helpdesk" \
    env LDAPDESK_USER=manyop XDG_CACHE_HOME="$T_DIR/cache-many" "$D" login
t_ok "... and so do two more at once, beside an unlock by hd1" sh -c '
    env LDAPDESK_USER=manyop XDG_CACHE_HOME="$1/cache-many2" "$2" login >/dev/null & a=$!
    env LDAPDESK_USER=manyop XDG_CACHE_HOME="$1/cache-many3" "$2" login >/dev/null & b=$!
    env LDAPDESK_USER=hd1 XDG_CACHE_HOME="$1/cache-many-hd1" "$2" unlock alice >/dev/null && wait $a && wait $b' sh "$T_DIR" "$D"
# 40 scope groups outside group_base are asked about once per 16 of manyop's groups, in one
# search each: eight logins at once, beside an unlock, all get through (asked per group, they
# were 32 x 43 searches out per login: the directory queue filled, 503).
cp "$T_DIR/d.conf" "$T_DIR/d.conf.teams"
awk -v g="$LDAP_GROUPS" 'BEGIN { for (i = 1; i <= 40; i++)
    printf "dn: cn=scope%d,%s\nobjectClass: groupOfNames\ncn: scope%d\nmember: cn=nobody\n\n", i, g, i }' |
    ldapadd -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null
awk -v g="$LDAP_GROUPS" 'BEGIN { for (i = 1; i <= 40; i++)
    printf "\n[scope.s%d]\ngroup = cn=scope%d,%s\ndepartments = nowhere\n", i, i, g }' >>"$T_DIR/d.conf"
t_ok "a reload with 40 scope groups outside group_base is taken" daemon_reload
t_ok "... then eight logins of manyop at once, beside an unlock by hd1, all get through" sh -c '
    pids=
    for i in 1 2 3 4 5 6 7 8; do
        env LDAPDESK_USER=manyop XDG_CACHE_HOME="$1/cache-eight$i" "$2" login >/dev/null & pids="$pids $!"
    done
    env LDAPDESK_USER=hd1 XDG_CACHE_HOME="$1/cache-eight-hd1" "$2" unlock alice >/dev/null || exit 1
    for p in $pids; do wait "$p" || exit 1; done' sh "$T_DIR" "$D"
cp "$T_DIR/d.conf.teams" "$T_DIR/d.conf"
t_ok "the reload back is taken" daemon_reload
# A directory whose size limit cuts the list of manyop's 700 groups short (slapd's default is
# 500): those that came are followed, the role is found (no scope is set, so nothing missed
# could widen it); the whole login failed on it ("Size limit exceeded", 502).
limits_set() { # SIZE: the service account's size limit in slapd, which is restarted
    sed -i "s|^limits dn.exact=.*|limits dn.exact=\"$LDAP_SVC_DN\" size=$1 time=unlimited|" \
        "$SLAPD_DIR/slapd.conf"
    slapd_restart "$SLAPD_DIR"
}
limits_set 500 || t_fail "slapd restarts with the service account's size limit at 500"
t_match 'roles: helpdesk' "with its 700 groups cut to 500, manyop still logs in as helpdesk" \
    env LDAPDESK_USER=manyop XDG_CACHE_HOME="$T_DIR/cache-many4" "$D" login
# With a scope set, a walk cut short that found none is refused, saying what to raise.
cat >>"$T_DIR/d.conf" <<EOF2

[scope.nobody]
group = cn=noscope,ou=teams,$LDAP_GROUPS
departments = nowhere
EOF2
printf 'dn: cn=noscope,ou=teams,%s\nobjectClass: groupOfNames\ncn: noscope\nmember: cn=nobody\n' \
    "$LDAP_GROUPS" | ldapadd -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null
t_ok "a reload with a scope manyop is not in is taken" daemon_reload
t_exit 1 "... then manyop's login, its groups cut short, is refused (a scope could be among the rest)" \
    env LDAPDESK_USER=manyop XDG_CACHE_HOME="$T_DIR/cache-many5" "$D" login
t_match "size limit cut short.*size=unlimited" "... saying to raise the service account's size limit" \
    printf '%s\n' "$T_OUT"
# A delete must take the user out of every group: with the list cut short it does nothing.
t_exit 1 "a delete of manyop, its groups cut to 500 of 700, fails" \
    env LDAPDESK_USER=adm1 XDG_CACHE_HOME="$T_DIR/cache-many-del" "$D" user delete manyop --yes
t_match "size limit cut the list of groups short" "... saying which limit to raise" printf '%s\n' "$T_OUT"
t_ok "... and manyop is still there" test -n "$(ldap_attr manyop uid)"
limits_set unlimited || t_fail "slapd restarts with no size limit for the service account"
cp "$T_DIR/d.conf.nest" "$T_DIR/d.conf"
t_ok "the reload back is taken" daemon_reload

# ---- per-user password policies ---------------------------------------------------------------
# A lock's end comes from the user's own policy (set up before the start), not the default one.
as_op hd1
t_exit 49 "slapd holds grace's lock after 2 hours (her policy: until unlocked)" \
    ldapwhoami -x -H "$LDAP_URI" -D "$(ldap_user_dn grace)" -w User-Pass-2026
t_eq "$("$D" --json status grace | jq -r .locked)" true "status says grace is locked"
t_eq "$("$D" --json unlock grace | jq -r .result)" ok "unlock grace clears the lock"
t_ok "grace binds again" ldap_bind_as grace User-Pass-2026
t_eq "$("$D" --json status judy | jq -r .locked)" false \
    "judy's 60 s lock from 10 minutes ago has ended (status says not locked)"
t_ok "and slapd agrees: judy binds" ldap_bind_as judy User-Pass-2026
as_op aud1

# ---- logout -----------------------------------------------------------------------------------
aud_tok=$(cat "$XDG_CACHE_HOME"/ldapdesk/*@aud1.*.session | jq -r .token | head -n 1)
t_ok "logout" "$D" logout
t_eq "$("$D" --json logout | jq -c .)" '{"logged_out":false}' "--json logout without a session is JSON too"
t_eq "$(sqlite3 "$DB" "SELECT a.operator || '|' || o.result FROM records a JOIN records o
    ON o.attempt_id = a.id WHERE a.action = 'logout'")" "aud1|ok" "the logout is recorded, with its outcome"
t_match '^401$' "the ended token is refused" curl -s -o /dev/null -w '%{http_code}' --cacert "$LDAPDESK_CA" \
    -H "Authorization: Bearer $aud_tok" "$LDAPDESK_URL/v1/audit?limit=1"
t_eq "$(metric 'ldapdesk_actions_total{action="logout",code="2xx"}')" 1 "the logout is counted"
unset LDAPDESK_USER LDAPDESK_PASSWORD
# aud1 logged in by itself (LDAPDESK_USER): the operator of the last 'login', hd1, is still in.
t_match "^logged out hd1 " "a bare logout then ends the session of the last 'login' (hd1)" "$D" logout
t_exit 3 "after logout without credentials a command is 401 (exit 3)" "$D" log

# ---- operators whose password must be changed -------------------------------------------------
# hd2's password reset by an administrator: the bind succeeds, only the ppolicy control says
# changeAfterReset; and hd2 under a policy whose passwords last 60 s, last changed in 2020, no
# grace logins left: slapd answers 49 with passwordExpired, for the right password only.
as_op adm1
pw2=$("$D" --json reset hd2 | jq -r .password)
t_ok "adm1 resets the operator hd2" test -n "$pw2"
t_exit 4 "hd2's login with the one-time password is refused (403, exit 4)" \
    env LDAPDESK_USER=hd2 LDAPDESK_PASSWORD="$pw2" XDG_CACHE_HOME="$T_DIR/hd2-cache" "$D" --json login
t_match '"error": ?"must_change"' "... as must_change" printf '%s\n' "$T_OUT"
ldap_add_policy short-lived 'pwdMaxAge: 60' 'pwdGraceAuthNLimit: 0'
ldap_set_policy hd2 short-lived
printf 'dn: %s\nchangetype: modify\nreplace: userPassword\nuserPassword: %s\n' \
    "$(ldap_user_dn hd2)" "$LDAP_OP_PW" | ldap_root_modify >/dev/null
printf 'dn: %s\nchangetype: modify\nreplace: pwdChangedTime\npwdChangedTime: 20200101000000Z\n-\nreplace: pwdReset\n' \
    "$(ldap_user_dn hd2)" | ldap_root_modify -e relax >/dev/null
t_match "Password expired|passwordExpired" "hd2's own bind now says the password expired" ldap_bind_as hd2 "$LDAP_OP_PW"
t_exit 4 "hd2's login with the right but expired password is refused (403, exit 4)" \
    env LDAPDESK_USER=hd2 XDG_CACHE_HOME="$T_DIR/hd2-cache" "$D" --json login
t_match '"error": ?"must_change"' "... as must_change, not bad credentials" printf '%s\n' "$T_OUT"
t_match "expired" "... saying it may have expired" printf '%s\n' "$T_OUT"
t_exit 3 "a wrong password for hd2 is still bad credentials (exit 3)" \
    env LDAPDESK_USER=hd2 LDAPDESK_PASSWORD=Wrong-Pass-1 XDG_CACHE_HOME="$T_DIR/hd2-cache" "$D" login

as_op hd1
t_match "The directory.s password policy does not force a change: ask the user to change it" \
    "a reset under a policy without pwdMustChange says no change is forced" "$D" reset pengbo
pw_pb=$(printf '%s\n' "$T_OUT" | sed -n 's/^One-time password for pengbo: //p')
t_match "^dn:" "... and indeed pengbo binds and searches with it, not made to change it" \
    ldapsearch -x -LLL -H "$LDAP_URI" -D "$(ldap_user_dn pengbo)" -w "$pw_pb" -e ppolicy -b "$(ldap_user_dn pengbo)" -s base 1.1
t_eq "$("$D" --json status pengbo | jq -r .must_change)" false "status does not claim must_change"
t_eq "$(sqlite3 "$T_DIR/audit.db" "SELECT o.detail FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'reset' AND a.target = 'pengbo'")" \
    "password reset; the password policy does not force a change (pwdMustChange is not TRUE)" \
    "... nor does the audit record"
t_match "must change it at the next login" "under the default policy (pwdMustChange TRUE) a reset still says so" \
    "$D" reset liuyang
t_eq "$("$D" --json status liuyang | jq -r .must_change)" true "... and status shows must_change"
t_match "Password expired|passwordExpired" "(tianye's own bind is refused: password expired)" \
    ldap_bind_as tianye "$LDAP_USER_PW"
t_match "the password has expired \\(older than the policy's pwdMaxAge" "status says tianye's password has expired" \
    sh -c "'$D' --json status tianye | jq -r .lock_reason"
t_match "Account locked|accountLocked" "(chenjing's own bind is refused: outside its validity)" \
    ldap_bind_as chenjing "$LDAP_USER_PW"
t_match "outside the account's validity \\(pwdStartTime / pwdEndTime\\)" "status says chenjing is outside its validity" \
    sh -c "'$D' --json status chenjing | jq -r .lock_reason"
ldap_set_lock_time zhaolei "$(date -u -d '2 hours ago' +%Y%m%d%H%M%SZ)" # expired (3600 s)
t_ok "a reset of zhaolei, whose lock had expired" "$D" reset zhaolei
t_eq "$(sqlite3 "$T_DIR/audit.db" "SELECT o.detail FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'reset' AND a.target = 'zhaolei' ORDER BY a.id DESC LIMIT 1")" \
    "password reset; must change at next login; an expired lock cleared" \
    "... is not recorded as an unlock (nobody was locked out)"

# ---- reloads while requests run ---------------------------------------------------------------
# Each request, job and login holds the configuration it started under; a reload retires the old
# one, freed when the last of them ends. The sanitize build's use-after-free and leak checks (the
# two checks below) are the proof; a fixed limit of 4,095 reloads is gone. A request whose role
# re-read crossed a reload may be 503 "reloaded" (try again); nothing else may fail.
: >"$T_DIR/traffic.out"
(for i in $(seq 25); do
    LDAPDESK_USER=hd1 "$D" status alice >/dev/null 2>>"$T_DIR/traffic.err" || echo "status $i"
done) >>"$T_DIR/traffic.out" &
t1=$!
(for i in $(seq 8); do
    LDAPDESK_USER=aud1 XDG_CACHE_HOME="$T_DIR/reload-cache-$i" "$D" log --limit 3 >/dev/null \
        2>>"$T_DIR/traffic.err" || echo "login and log $i"
done) >>"$T_DIR/traffic.out" &
t2=$!
n0=$(grep -c "configuration reloaded" "$T_DIR/ldapdeskd.log" || true)
for i in $(seq 40); do
    sed -i "s/^timeout_ms = .*/timeout_ms = $((5000 + i))/" "$T_DIR/d.conf"
    daemon_reload || :
done
wait "$t1" "$t2" || :
t_eq "$(($(grep -c "configuration reloaded" "$T_DIR/ldapdeskd.log") - n0))" 40 \
    "40 reloads while statuses, logins and log jobs run are all taken"
t_ok "at least 20 of the 33 requests made meanwhile succeeded" test "$(wc -l <"$T_DIR/traffic.out")" -le 13
t_nomatch . "a failed one failed only because its roles were read across a reload" \
    grep -v "reloaded while your roles were read" "$T_DIR/traffic.err"
t_ok "the daemon answers after them" "$D" status alice

# A reload to plain LDAP is refused like such a start: the running settings stay.
sed -i 's/^starttls = yes/starttls = no/' "$T_DIR/d.conf"
rc=0
daemon_reload || rc=$?
t_eq "$rc" 2 "a reload turning starttls off is refused (reload failed)"
t_match "is plain LDAP and starttls is off" "... saying why" printf '%s\n' "$DAEMON_RELOAD_LOG"
t_ok "... and statuses are still read" "$D" status alice
sed -i 's/^starttls = no/starttls = yes/' "$T_DIR/d.conf"
# A reload that changes how the daemon reaches the directory (uri, starttls, ca_file, bind_dn,
# password) makes the service connections again: they kept the old settings until slapd
# dropped them, so a reload turning starttls on could still send one-time passwords in the clear.
cp "$SLAPD_DIR/ca.pem" "$T_DIR/ca-copy.pem"
sed -i "s#^ca_file = .*#ca_file = $T_DIR/ca-copy.pem#" "$T_DIR/d.conf"
made=$(grep -c "made again under the reloaded" "$T_DIR/ldapdeskd.log" || true)
rc=0
daemon_reload || rc=$?
t_eq "$rc" 0 "a reload changing ca_file is taken"
t_match "the \[ldap\] connection settings changed" "... and says the connections are made again" \
    printf '%s\n' "$DAEMON_RELOAD_LOG"
for _ in $(seq 150); do
    [ "$(grep -c "made again under the reloaded" "$T_DIR/ldapdeskd.log")" -ge $((made + 4)) ] && break
    sleep 0.1
done
t_eq "$(($(grep -c "made again under the reloaded" "$T_DIR/ldapdeskd.log") - made))" 4 \
    "each of the 4 service connections is made again"
t_ok "statuses are read over the new connections" "$D" status alice
sed -i "s#^uri = .*#uri = ldap://127.0.0.1:1#" "$T_DIR/d.conf"
t_ok "a reload to a uri where nothing listens is taken" daemon_reload
t_exit 1 "... and from then on the directory is not reached (the old connections are gone)" \
    "$D" status alice
t_match "the directory cannot be asked now|no connection to the directory is up" \
    "... saying the directory cannot be asked" printf '%s\n' "$T_OUT"
sed -i "s#^uri = .*#uri = $LDAP_URI#" "$T_DIR/d.conf"
t_ok "a reload back to slapd is taken" daemon_reload
ok=no
for _ in $(seq 60); do "$D" status alice >/dev/null 2>&1 && { ok=yes; break; }; sleep 0.5; done
t_eq "$ok" yes "statuses are read again"
# The TLS certificate and key are read again at each reload (a renewal needs no restart);
# a wrong one refuses the reload whole, and the running one stays.
cp "$T_DIR/d.conf" "$T_DIR/d.conf.keep"
sed -i "s|^tls_cert = .*|tls_cert = $T_DIR/renewed.pem|" "$T_DIR/d.conf"
rc=0
daemon_reload || rc=$?
t_eq "$rc" 2 "a reload naming a tls_cert that does not exist fails"
t_match "reload failed, keeping the running configuration: .*d.conf:[0-9]+: \\[server\\] tls_cert: .*renewed.pem" \
    "... naming FILE:LINE and the file" printf '%s\n' "$DAEMON_RELOAD_LOG"
t_ok "... and the running certificate still serves" "$D" status alice
. "$LDAPDESK_SRC/tests/lib/certs.sh"
certs_make "$T_DIR/renew" || t_fail "a second certificate is made"
sed -i "s|^tls_cert = .*|tls_cert = $T_DIR/renew/server.pem|; s|^tls_key = .*|tls_key = $T_DIR/renew/server.key|" \
    "$T_DIR/d.conf"
python3 "$LDAPDESK_SRC/tests/lib/conn_probe.py" keepalive "$LDAPDESK_URL" "$LDAPDESK_CA" 3 \
    >"$T_DIR/kept.out" 2>&1 &
kept=$!
# The reload comes once the probe's connection is made (python under load takes seconds).
for _ in $(seq 100); do grep -q connected "$T_DIR/kept.out" && break; sleep 0.2; done
rc=0
daemon_reload || rc=$?
t_eq "$rc" 0 "a reload to a renewed certificate and key is taken"
t_match "the TLS certificate changed \\(.*renew/server.pem\\)" "... and the log says the certificate changed" \
    printf '%s\n' "$DAEMON_RELOAD_LOG"
t_ok "a new connection gets the new certificate (verified against its CA)" \
    curl -sf --cacert "$T_DIR/renew/ca.pem" "$LDAPDESK_URL/v1/health"
t_exit 60 "... and no longer the old one" curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/v1/health"
wait "$kept" || :
t_match '^statuses 200 200 200$' "a connection open across the reload goes on with the old one" \
    cat "$T_DIR/kept.out"
cp "$T_DIR/d.conf.keep" "$T_DIR/d.conf"
t_ok "a reload back to the first certificate is taken" daemon_reload
t_ok "... and the CLI verifies it again" "$D" status alice

t_match '^Max core file size +0 +0 ' "ldapdeskd writes no core file (it would hold secrets)" \
    cat "/proc/$DAEMON_PID/limits"
daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0 on SIGTERM (sanitizers clean)"
t_nomatch "runtime error|AddressSanitizer|LeakSanitizer" "no sanitizer report in the daemon log" cat "$T_DIR/ldapdeskd.log"
t_done
