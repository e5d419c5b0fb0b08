#!/bin/sh
# lifecycle.sh — issue 7 point 1: create, move, disable, enable, delete by an
# admin, each an audit row, with the core's bad-input and permission rules.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init lifecycle
t_start_slapd || { t_fail "slapd starts"; t_done; }
daemon_config "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
D=$LDAPDESK
DB=$T_DIR/audit.db
row() { # ACTION TARGET: "ok" when an attempt of ACTION on TARGET ended ok
    [ "$(sqlite3 "$DB" "SELECT count(*) FROM records a JOIN records o ON o.attempt_id=a.id
        WHERE a.action='$1' AND a.target='$2' AND o.result='ok'")" -gt 0 ] && echo ok || echo none
}

as_op hd1
t_exit 4 "helpdesk may not create users" "$D" user create newbie --name 新人 --dept 信息中心
as_op adm1
out=$("$D" --json user create newbie --name 新人 --dept 信息中心 --mail newbie@example.com)
pw=$(printf '%s' "$out" | jq -r .password)
t_eq "$(printf '%s' "$out" | jq -r .result)" ok "an admin creates newbie"
t_eq "$(ldap_user_dn newbie)" "uid=newbie,ou=信息中心,$LDAP_PEOPLE" "the entry sits in its department's OU"
t_eq "$(ldap_attr newbie cn)" "新人" "with its Chinese name"
t_eq "$(ldap_attr newbie pwdReset)" TRUE "the one-time password must be changed"
t_match "must be changed|Password expired" "newbie's first bind says so" ldap_bind_as newbie "$pw"
t_exit 1 "creating it again is a conflict (409, exit 1)" "$D" user create newbie --name 新人 --dept 信息中心
t_match "exists already" "so is the same uid in another department (uids are unique)" \
    "$D" user create newbie --name 新人 --dept 财务管理部
t_eq "$(ldap_root_search -b "$LDAP_PEOPLE" "(uid=newbie)" 1.1 | grep -c '^dn:')" 1 "one newbie in the directory"
t_exit 2 "a uid with metacharacters is a bad request" "$D" user create 'a*b' --name x --dept 信息中心
t_exit 2 "a department with a space at its start is a bad request (the OU would match, the attribute not)" \
    "$D" user create padded --name x --dept ' 信息中心'
t_match 'department " 信息中心" starts or ends with a space' "... saying so" printf '%s\n' "$T_OUT"
t_exit 2 "... and so is a move to one with a space at its end" "$D" user move newbie --dept '财务管理部 '
t_exit 2 "'.' is no uid (a path segment): a bad request" "$D" user create . --name x --dept 信息中心
t_exit 5 "and revoking '..' is no such user, not another endpoint" "$D" revoke alice ..
t_exit 5 "a create into a department with no OU is 404 (exit 5)" "$D" user create ghost --name 幽灵 --dept 不存在的部门
t_match "no such department: 不存在的部门.*--dept" "its message names the department and what to check" \
    "$D" user create ghost --name 幽灵 --dept 不存在的部门
t_eq "$(ldap_root_search -b "$LDAP_PEOPLE" "(uid=ghost)" 1.1 | grep -c '^dn:')" 0 "and nothing was created"
# DESIGN's order: 404 before 409 and before the 403 of protection.
t_exit 5 "a create of an existing uid into a department with no OU is 404 first (not 409)" \
    "$D" user create newbie --name 新人 --dept 不存在的部门
t_match "no such department: 不存在的部门" "... naming the department" printf '%s\n' "$T_OUT"
adm1_dn=$(ldap_user_dn adm1)
t_exit 5 "an admin moving itself to a department with no OU is 404 first (not 403 self)" \
    "$D" user move adm1 --dept 不存在的部门
t_exit 4 "... and to one that exists, 403 self as before" "$D" user move adm1 --dept 财务管理部
t_eq "$(ldap_user_dn adm1)" "$adm1_dn" "adm1 stayed where it was"
# Two creates of one uid at once, in two departments: both would find it free.
for round in 1 2 3; do
    "$D" user create "twin$round" --name 双 --dept 信息中心 >/dev/null 2>&1 &
    p1=$!
    "$D" user create "TWIN$round" --name 双 --dept 财务管理部 >/dev/null 2>&1 &
    p2=$!
    r1=0 r2=0
    wait "$p1" || r1=$?
    wait "$p2" || r2=$?
    t_eq "$(ldap_root_search -b "$LDAP_PEOPLE" "(uid=twin$round)" 1.1 | grep -c '^dn:')" 1 \
        "round $round: two simultaneous creates of one uid make one entry (exits $r1, $r2)"
    t_eq "$(echo "$r1 $r2" | tr ' ' '\n' | sort | tr '\n' ' ')" "0 1 " \
        "round $round: one succeeds, the other is a conflict"
done
t_eq "$(row create newbie)" ok "the create is an audit row"

"$D" grant newbie procurement --days 10 >/dev/null
t_ok "move to 财务管理部" "$D" user move newbie --dept 财务管理部
t_eq "$(ldap_user_dn newbie)" "uid=newbie,ou=财务管理部,$LDAP_PEOPLE" "the entry moved to the new OU"
t_eq "$(ldap_attr newbie ou)" "财务管理部" "the department attribute changed"
t_ok "its group membership followed the new DN" ldap_is_member procurement newbie
t_eq "$("$D" --json user move newbie --dept 财务管理部 | jq -r .result)" unchanged "moving to the same department is unchanged"
t_exit 5 "a move to a department with no OU is 404 (exit 5)" "$D" user move newbie --dept 不存在的部门
t_match "no such department: 不存在的部门" "which the message names" "$D" user move newbie --dept 不存在的部门
t_eq "$(ldap_attr newbie ou)" "财务管理部" "and changes nothing (the department attribute is set after the rename)"

t_exit 2 "disable needs a reason" "$D" user disable newbie
t_ok "disable newbie" "$D" user disable newbie --reason "left the company"
t_eq "$(ldap_attr newbie pwdAccountLockedTime)" 000001010000Z "disabled = ppolicy's administrator lock"
as_op hd1
t_exit 4 "helpdesk cannot unlock a disabled account (403, a protection)" "$D" unlock newbie
t_exit 4 "nor reset it (a reset would enable it)" "$D" reset newbie
t_eq "$("$D" --json status newbie | jq -r .admin_locked)" true "status says locked by an administrator"
t_match "^disabled by adm1 at [0-9-]{10}T[0-9:.]+\\+08:00: left the company \\(only 'user enable' lifts it\\)$" \
    "... who disabled it, when (the server's zone) and why (issue 7.4: lock state and why)" \
    sh -c "'$D' --json status newbie | jq -r .lock_reason"
as_op adm1
t_ok "enable newbie" "$D" user enable newbie
t_empty "enabled: the lock is gone" ldap_attr newbie pwdAccountLockedTime
t_eq "$("$D" --json user enable newbie | jq -r .result)" unchanged "enabling an enabled account is unchanged"
t_match "was not disabled \\(a lock from failed logins is lifted with 'ldapdesk unlock'\\)" \
    "... and says how a lock from failed logins is lifted" "$D" user enable newbie

group_lists() { # GROUPCN DN: 0 listed, 1 not, 2 when the group cannot be read
    _gl=$(ldap_group_members "$1") || return 2
    printf '%s\n' "$_gl" | grep -Fxiq -- "$2"
}
# A group the user is the last member of cannot drop it (objectClassViolation): the delete
# stops, as the group would otherwise give its access to the next account at that DN.
"$D" user create loner --name 独行 --dept 信息中心 >/dev/null
loner_dn=$(ldap_user_dn loner)
ldap_root_modify >/dev/null <<EOF2
dn: cn=solo,$LDAP_GROUPS
changetype: add
objectClass: groupOfNames
cn: solo
member: $loner_dn
EOF2
t_ok "loner is granted 采管系统 too" "$D" grant loner procurement
t_exit 1 "deleting the last member of a group is refused (exit 1)" "$D" user delete loner --yes
t_ok "... before any group was touched: loner is still in procurement" ldap_is_member procurement loner
t_eq "$("$D" --json status loner | jq -r '.grants[].permission')" procurement "... and status still shows the grant"
t_match "not deleted: 1 group\\(s\\) still name it \\(cn=solo.*only member" "saying which group and what to do" \
    "$D" user delete loner --yes
t_eq "$(ldap_user_dn loner)" "$loner_dn" "loner is still there"
t_eq "$(sqlite3 "$DB" "SELECT o.result FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'delete' AND a.target = 'loner' ORDER BY a.id LIMIT 1")" failed \
    "the refused delete is an audit row with result failed"
ldap_root_modify >/dev/null <<EOF2
dn: cn=solo,$LDAP_GROUPS
changetype: modify
add: member
member: $LDAP_PLACEHOLDER_DN
EOF2
t_ok "with another member in the group, the delete goes through" "$D" user delete loner --yes
t_exit 1 "and the group no longer names loner" group_lists solo "$loner_dn"
t_exit 2 "delete without --yes is refused by the client" "$D" user delete newbie
t_exit 4 "an admin cannot delete themselves" "$D" user delete adm1 --yes
# The DN is read before the delete: afterwards ldap_is_member could not look it up and would
# fail (2, no such user) whatever the group holds.
newbie_dn=$(ldap_user_dn newbie)
t_ok "before the delete, procurement lists newbie's DN" group_lists procurement "$newbie_dn"
t_ok "delete newbie" "$D" user delete newbie --yes
t_exit 1 "the entry is gone" ldap_user_exists newbie
t_exit 1 "its group membership is gone too" group_lists procurement "$newbie_dn"
t_exit 5 "deleting again is no such user" "$D" user delete newbie --yes
for a in create move disable enable delete; do
    t_eq "$(row $a newbie)" ok "the $a is an audit row with result ok"
done
"$D" grant grace procurement >/dev/null
grace_dn=$(ldap_user_dn grace)
daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0"

# ---- lifecycle actions left pending by a crash ------------------------------------------
# As a SIGKILL between the directory change and the outcome record would leave them
# (written by hand, so the chain is not checked afterwards): each is resolved at the next
# start by reading the entry, whatever happened to it.
pend() { # ACTION TARGET [DEPARTMENT]
    _dept=NULL
    [ -z "${3:-}" ] || _dept="'$3'"
    sqlite3 "$DB" "INSERT INTO records (kind, at, operator, action, target, department, prev_hash,
        hash) SELECT 'attempt', at, 'adm1', '$1', '$2', $_dept, hash,
        '$(printf '%064d' 0)' FROM records ORDER BY id DESC LIMIT 1"
}
ldap_set_lock_time carol 000001010000Z
pend create newbie 信息中心
pend create alice "$(ldap_attr alice ou)"
# a create cut short between its entry and its password
printf 'dn: uid=nopass,ou=信息中心,%s\nobjectClass: inetOrgPerson\nuid: nopass\ncn: 无密码\nsn: 无密码\nou: 信息中心\n' \
    "$LDAP_PEOPLE" | ldapadd -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null
pend create nopass 信息中心
pend delete newbie
pend delete bob
pend disable carol
pend enable dave
pend move erin "$(ldap_attr erin ou)"
pend move frank 财务管理部
# a move cut short after its rename: the entry is in the new OU, its attribute and the
# groups still name the old department and DN
ldap_root_modify >/dev/null <<EOF2
dn: $grace_dn
changetype: modrdn
newrdn: uid=grace
deleteoldrdn: 1
newsuperior: ou=财务管理部,$LDAP_PEOPLE
EOF2
pend move grace 财务管理部
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts"; t_done; }
left() { sqlite3 "$DB" "SELECT count(*) FROM records a WHERE a.kind = 'attempt' AND NOT EXISTS
    (SELECT 1 FROM records o WHERE o.kind = 'outcome' AND o.attempt_id = a.id)"; }
for _ in $(seq 300); do [ "$(left)" = 0 ] && break; sleep 0.1; done
t_eq "$(sqlite3 "$DB" "SELECT group_concat(line, ', ') FROM (SELECT a.action || ' ' || a.target
    || ' ' || o.result AS line FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE o.detail LIKE 'recovered at start-up%' ORDER BY a.id)")" \
    "create newbie failed, create alice ok, create nopass failed, delete newbie ok, delete bob failed, disable carol ok, enable dave ok, move erin ok, move frank failed, move grace failed" \
    "pending lifecycle actions are resolved by what the directory holds"
t_match "the user exists, but it has no password.*set one with 'ldapdesk reset'" \
    "a create cut short before its password is failed, saying to set one" sqlite3 "$DB" "SELECT o.detail
        FROM records a JOIN records o ON o.attempt_id = a.id WHERE a.action = 'create' AND a.target = 'nopass'"
t_match "the user still exists, but the delete may have taken it out of its groups already" \
    "a delete cut short says the user may have lost its groups" sqlite3 "$DB" "SELECT o.detail
        FROM records a JOIN records o ON o.attempt_id = a.id WHERE a.action = 'delete' AND a.target = 'bob'"
t_match "one-time password was lost unless its answer went out just before the stop: unless the operator has it, reset it" \
    "one that got there says its password was lost, unless its answer went out" \
    sqlite3 "$DB" "SELECT o.detail FROM records a JOIN records o ON o.attempt_id = a.id
        WHERE a.action = 'create' AND a.target = 'alice'"
t_match "moved in the tree, but its department attribute was not changed" \
    "the move cut short is recovered as such" sqlite3 "$DB" "SELECT o.detail FROM records a
        JOIN records o ON o.attempt_id = a.id WHERE a.action = 'move' AND a.target = 'grace'"
t_exit 1 "procurement does not name grace's entry (the move was cut short before the groups)" \
    ldap_is_member procurement grace
t_ok "... but still her old DN" group_lists procurement "$grace_dn"
"$D" login >/dev/null # sessions live in memory: the restart ended the old one
t_ok "moving her again finishes the move" "$D" user move grace --dept 财务管理部
t_match "carried over" "its outcome says the groups were carried over" sqlite3 "$DB" "SELECT o.detail
    FROM records a JOIN records o ON o.attempt_id = a.id WHERE a.action = 'move'
    AND a.target = 'grace' ORDER BY a.id DESC LIMIT 1"
t_eq "$(ldap_attr grace ou)" 财务管理部 "her department attribute is set"
t_ok "and procurement names her entry" ldap_is_member procurement grace
t_exit 1 "and no longer the old DN" group_lists procurement "$grace_dn"
# Cut short the same way, then moved to a third department, or deleted: the groups naming the
# DN the department attribute still gives follow (or drop) it too. They used to keep naming it:
# a later account at that DN would get their access.
cut_move() { # UID: granted procurement, then renamed into 财务管理部 behind the daemon's back
    "$D" grant "$1" procurement >/dev/null
    _cm_dn=$(ldap_user_dn "$1")
    printf 'dn: %s\nchangetype: modrdn\nnewrdn: uid=%s\ndeleteoldrdn: 1\nnewsuperior: ou=财务管理部,%s\n' \
        "$_cm_dn" "$1" "$LDAP_PEOPLE" | ldap_root_modify >/dev/null
    echo "$_cm_dn"
}
liu_old=$(cut_move liuyang)
t_ok "liuyang's move cut short, then moved to 信息中心" "$D" user move liuyang --dept 信息中心
t_ok "procurement names liuyang's new entry" ldap_is_member procurement liuyang
t_exit 1 "... and no longer the DN the cut-short move left it naming" group_lists procurement "$liu_old"
pb_old=$(cut_move pengbo)
t_ok "pengbo's move cut short, then deleted" "$D" user delete pengbo --yes
t_exit 1 "procurement no longer names the DN the cut-short move left it naming" group_lists procurement "$pb_old"
daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0 after the recovery"
# Without [ldap] group_base a delete could not find the user's groups: refused, since they
# would give their access to the next account made at that DN.
grep -v '^group_base' "$T_DIR/d.conf" >"$T_DIR/nogroups.conf"
daemon_start "$T_DIR/nogroups.conf" || { t_fail "ldapdeskd starts without group_base"; t_done; }
t_ok "grace is in procurement" ldap_is_member procurement grace
t_exit 1 "without group_base a delete is refused (exit 1)" "$D" user delete grace --yes
t_match "not deleted: \\[ldap\\] group_base is not set.*set group_base and reload" "... saying why and what to do" \
    printf '%s\n' "$T_OUT"
t_ok "... and grace is still there, in procurement" ldap_is_member procurement grace

# ---- one change per user at a time ----------------------------------------------------------
# Two changes of one user at once would reach slapd in either order (a grant after the user's
# delete, a reset after the disable). xuqiang's DN is cached, so an unlock goes to slapd with
# no read first; slapd stopped holds it there.
as_op adm1
"$D" login >/dev/null 2>&1 || true
env LDAPDESK_USER=adm2 "$D" login >/dev/null 2>&1 || true # no login needs slapd while it stops
t_ok "status xuqiang (his DN is cached from here)" "$D" status xuqiang
ldap_lock_user xuqiang >/dev/null 2>&1 || true
# The protected members are a snapshot of at most 5 s: taken now, the unlocks below need no
# read of slapd before their change.
t_ok "an unlock of hanxue (its protection check refreshes the snapshot)" "$D" unlock hanxue
inflight() { curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/metrics" | awk '$1 == "ldapdesk_requests_in_flight" { print $2 }'; }
kill -STOP "$SLAPD_PID"
"$D" --json unlock xuqiang >"$T_DIR/un.out" 2>&1 &
un=$!
for _ in $(seq 300); do [ "$(inflight)" -ge 1 ] 2>/dev/null && break; sleep 0.1; done
t_exit 1 "a second unlock of xuqiang while the first is at the directory is refused (409, exit 1)" \
    env LDAPDESK_USER=adm2 "$D" --json unlock xuqiang
t_match '"error": ?"user_busy".*another change to xuqiang is under way' "... as user_busy, saying why" \
    sh -c "printf '%s' '$T_OUT' | tr -d '\n'"
kill -CONT "$SLAPD_PID"
rc=0
wait "$un" || rc=$?
t_eq "$rc $(jq -r .result "$T_DIR/un.out" 2>/dev/null)" "0 ok" "the first unlock, once slapd goes on, is done"
t_empty "... and xuqiang is unlocked" ldap_attr xuqiang pwdAccountLockedTime
first=$(sqlite3 "$DB" "SELECT min(id) FROM records WHERE kind = 'attempt' AND action = 'unlock' AND target = 'xuqiang'")
t_eq "$(sqlite3 "$DB" "SELECT group_concat(o.result, ',') FROM records a JOIN records o
    ON o.attempt_id = a.id WHERE a.target = 'xuqiang' AND a.id >= ${first:-0} ORDER BY a.id")" "ok,failed" \
    "the refused change is an attempt too (failed)"
t_ok "then the next change goes through" env LDAPDESK_USER=adm2 "$D" user disable xuqiang --reason left

# ---- an operator disabled loses its sessions at once -----------------------------------------
tokd=$(curl -s --cacert "$LDAPDESK_CA" -d "{\"user\":\"hd2\",\"password\":\"$LDAP_OP_PW\"}" \
    "$LDAPDESK_URL/v1/login" | jq -r .token)
hd2_code() { curl -s -o /dev/null -w '%{http_code}' --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tokd" "$LDAPDESK_URL/v1/users/alice"; }
t_eq "$(hd2_code)" 200 "hd2's session works"
t_ok "adm2 disables hd2 (who left)" env LDAPDESK_USER=adm2 "$D" user disable hd2 --reason left
t_eq "$(hd2_code)" 401 "hd2's session ended with the disable, not at its next role re-read"
t_match "disable hd2: 1 of its sessions ended" "the daemon's log says so" cat "$T_DIR/ldapdeskd.log"
# ppolicy answers "account locked" for a disable too; an unlock would not lift it.
t_match '"error": *"disabled".*your account is disabled: ask an administrator to enable it.* 403$' \
    "hd2 logging in now hears it is disabled (403 disabled), not locked" \
    curl -s -w ' %{http_code}' --cacert "$LDAPDESK_CA" \
    -d "{\"user\":\"hd2\",\"password\":\"$LDAP_OP_PW\"}" "$LDAPDESK_URL/v1/login"
t_ok "enabling hd2 again" env LDAPDESK_USER=adm2 "$D" user enable hd2
t_eq "$(hd2_code)" 401 "... does not bring the old session back"

# ---- an operator moved loses its sessions at the rename -------------------------------------
# Its DN changes: a session's role re-read would go by a DN that names nothing.
hd2_dept=$(ldap_attr hd2 ou)
new_dept=财务管理部
[ "$hd2_dept" != "$new_dept" ] || new_dept=人力资源部
# Groups name their members by DN: without group_base they could not follow the move.
t_exit 1 "without group_base a move is refused (exit 1)" \
    env LDAPDESK_USER=adm2 "$D" user move hd2 --dept "$new_dept"
t_match "not moved: \\[ldap\\] group_base is not set.*lose its roles, grants and protection.*set group_base" \
    "... saying why and what to do" env LDAPDESK_USER=adm2 "$D" user move hd2 --dept "$new_dept"
t_eq "$(ldap_attr hd2 ou)" "$hd2_dept" "... and hd2 stays where it was"
daemon_stop
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts again with group_base"; t_done; }
env LDAPDESK_USER=adm2 "$D" login >/dev/null 2>&1 || true # sessions survive a stop; this one only if not
tokd=$(curl -s --cacert "$LDAPDESK_CA" -d "{\"user\":\"hd2\",\"password\":\"$LDAP_OP_PW\"}" \
    "$LDAPDESK_URL/v1/login" | jq -r .token)
t_eq "$(hd2_code)" 200 "hd2, enabled again, logs in anew and its session works"
t_ok "with group_base, adm2 moves hd2 to $new_dept" env LDAPDESK_USER=adm2 "$D" user move hd2 --dept "$new_dept"
t_eq "$(hd2_code)" 401 "hd2's session ended with the move"
t_match "move hd2: 1 of its sessions ended" "the daemon's log says so" cat "$T_DIR/ldapdeskd.log"
tokd=$(curl -s --cacert "$LDAPDESK_CA" -d "{\"user\":\"hd2\",\"password\":\"$LDAP_OP_PW\"}" \
    "$LDAPDESK_URL/v1/login" | jq -r .token)
t_eq "$(hd2_code)" 200 "hd2 logs in again under its new DN, still helpdesk (its groups followed the move)"
daemon_stop
t_done
