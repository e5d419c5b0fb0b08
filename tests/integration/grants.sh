#!/bin/sh
# grants.sh — issue 7 point 2: expiring grants. The daemon revokes a grant when
# its term ends (audited as done by ldapdeskd itself), and catches up at start
# on grants that ran out while it was down; status shows each grant's expiry
# and who granted it.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init grants
t_start_slapd || { t_fail "slapd starts"; t_done; }
daemon_config "$T_DIR/d.conf"
# A permission whose group is not in the directory (a typo in the configuration).
printf '\n[grant.ghost]\ngroup = cn=ghost,%s\nlabel = 幽灵系统\n' "$LDAP_GROUPS" >>"$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
D=$LDAPDESK
DB=$T_DIR/audit.db
as_op adm1
soon() { date -u -d "@$(($(date +%s) + $1))" +%Y-%m-%dT%H:%M:%SZ; }
wait_gone() { # GROUP UID SECONDS: 0 once UID is no member, 1 if still one, 2 if that cannot be told
    for _ in $(seq "$3"); do
        _wg=0
        ldap_is_member "$1" "$2" || _wg=$?
        case $_wg in
            0) sleep 1 ;;
            1) return 0 ;;
            *) echo "wait_gone: cannot tell whether $2 is in $1" >&2; return 2 ;;
        esac
    done
    return 1
}

for verb in grant revoke; do
    t_exit 1 "$verb of a permission whose group is missing is refused (exit 1), not 'no such user'" \
        "$D" --json "$verb" dave ghost
    t_match '"error": ?"directory_refused"' "... ($verb: directory_refused)" printf '%s\n' "$T_OUT"
    t_match "the group of permission ghost \(cn=ghost,.*\) is not in the directory: create it, or correct \[grant.ghost\] group" \
        "... naming the group and what to do ($verb)" printf '%s\n' "$T_OUT"
done
t_ok "grant 产研系统 to dave for a few seconds" "$D" grant dave rnd-system --until "$(soon 3)"
t_ok "dave is a member" ldap_is_member rnd-system dave
t_match "rnd-system.*产研系统.*20.*adm1" "status shows the grant with its expiry and granter" "$D" status dave
t_ok "the daemon revokes it within a minute of the end" wait_gone rnd-system dave 60
t_eq "$(sqlite3 "$DB" "SELECT a.operator||'|'||o.result FROM records a JOIN records o ON o.attempt_id=a.id WHERE a.action='expire' AND a.target='dave'")" \
    "ldapdeskd|ok" "the expiry is an audit row by ldapdeskd"
# bob is in procurement from the directory's own data: a term given now must not end that.
t_ok "bob is a member of procurement before any grant" ldap_is_member procurement bob
t_ok "a timed grant to bob is unchanged" "$D" grant bob procurement --until "$(soon 3)"
t_eq "$(sqlite3 "$DB" "SELECT o.detail FROM records a JOIN records o ON o.attempt_id=a.id
    WHERE a.action='grant' AND a.target='bob'")" "already a member, not through ldapdesk: no expiry set" \
    "and sets no expiry"
t_eq "$("$D" --json status bob | jq -c '.grants[] | select(.permission == "procurement") | [.expires, .granted_by]')" \
    '[null,null]' "status names no granter and no term for a membership made outside ldapdesk"
t_ok "a grant without a term stays" "$D" grant dave general
t_eq "$("$D" --json grant dave general | jq -r .result)" unchanged "granting it again without a term is unchanged"
end=$(date -d "+20 days" +%Y-%m-%d)
t_eq "$("$D" --json grant dave general --until "$end" | jq -r .result)" ok \
    "granting it again with a term is a change (ok), not 'unchanged'"
t_match "^already a member; term changed: expires ${end%-*}-[0-9]{2}T[0-9:]{8}Z \\(was no expiry\\)$" "its record says what changed" \
    sqlite3 "$DB" "SELECT o.detail FROM records a JOIN records o ON o.attempt_id=a.id
    WHERE a.action='grant' AND a.target='dave' AND a.permission='general' ORDER BY a.id DESC LIMIT 1"
t_match "^${end}T" "status shows the changed term (not null)" sh -c "'$D' --json status dave | jq -r '.grants[] | select(.permission == \"general\") | .expires'"
t_eq "$("$D" --json grant dave general --until "$end" | jq -r .result)" unchanged "the same term again is unchanged"
t_match "^${end}T" "and status shows the term in force" sh -c "'$D' --json status dave | jq -r '.grants[] | select(.permission == \"general\") | .expires'"
t_ok "a 30-day grant" "$D" grant erin procurement --days 30
# Four grants of one user ending together: one change per user at a time, so they go one by
# one, a second apart, not one per 10-second tick (the last used to end 30 s late).
end4=$(soon 3)
for p in procurement brand-insight rnd-system general; do "$D" grant xuqiang "$p" --until "$end4" >/dev/null; done
xq_left() { n=0; for p in procurement brand-insight rnd-system general; do
    ldap_is_member "$p" xuqiang && n=$((n + 1)); done; echo "$n"; }
for _ in $(seq 120); do [ "$(xq_left)" = 0 ] && break; sleep 0.5; done
t_eq "$(xq_left)" 0 "all four are gone"
late=$(($(date +%s) - $(date -u -d "$end4" +%s)))
t_ok "... the last within 20 s of their end (took $late s; one per 10-s tick took 30 s or more)" test "$late" -le 20

t_ok "grant 品牌洞察 to frank for a few seconds" "$D" grant frank brand-insight --until "$(soon 3)"
daemon_stop
sleep 5
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts"; t_done; }
# An expiry the directory refuses every time: heidi's grant group is deleted under it.
t_ok "grant 财务知识文档 to heidi for a few seconds" "$D" grant heidi finance-docs --until "$(soon 2)"
t_ok "its group is deleted behind the daemon's back" \
    ldapdelete -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" "cn=finance-docs,$LDAP_GROUPS"
t_ok "a grant that ran out while the daemon was down is revoked after the start" \
    wait_gone brand-insight frank 30
heidi_fails() {
    sqlite3 "$DB" "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
        WHERE a.action = 'expire' AND a.target = 'heidi' AND o.result = 'failed'"
}
for _ in $(seq 120); do [ "$(heidi_fails)" -ge 1 ] && break; sleep 0.5; done
t_eq "$(heidi_fails)" 1 "the expiry of heidi's grant fails (its group is gone)"
first_fail=$(date +%s)
sleep 12
t_ok "the grant without a term is still there" ldap_is_member general dave
t_ok "the 30-day grant is still there" ldap_is_member procurement erin
t_ok "bob's membership from elsewhere outlived the term given to it" ldap_is_member procurement bob
t_eq "$(sqlite3 "$DB" "SELECT count(*) FROM records WHERE kind='attempt' AND action='expire' AND target NOT IN ('heidi', 'xuqiang')")" 2 \
    "exactly the two ended grants were expired, once each"
t_eq "$(sqlite3 "$DB" "SELECT count(*) FROM records WHERE kind='attempt' AND action='expire' AND category IS NOT NULL")" 0 \
    "expiries are not counted as events handled (no category)"
# A user deleted outside ldapdesk while its grant runs: the expiry takes the DN it granted to
# out of the group (it used to record "unchanged: no such user" and leave it, and the next
# account made at that DN inherited the access).
t_ok "a user for a timed grant" "$D" user create tmpgrant --name 临时 --dept 信息中心
t_ok "... granted 产研系统 for a few seconds" "$D" grant tmpgrant rnd-system --until "$(soon 3)"
printf 'dn: %s\nchangetype: delete\n' "$(ldap_user_dn tmpgrant)" | ldap_root_modify >/dev/null
gone=no
for _ in $(seq 120); do
    # A search that failed is not "gone": only the group read without that DN is.
    if members=$(ldap_group_members rnd-system) &&
        ! printf '%s\n' "$members" | grep -qi '^uid=tmpgrant,'; then
        gone=yes
        break
    fi
    sleep 0.5
done
t_eq "$gone" yes "the expiry takes the deleted user's DN out of the group"
t_match "^ok\|expired: the grant's term ended; the user is no longer in the directory, and the DN it was granted to was taken out of the group$" \
    "... recorded ok, saying so" sqlite3 "$DB" "SELECT o.result || '|' || o.detail FROM records a
    JOIN records o ON o.attempt_id = a.id WHERE a.action = 'expire' AND a.target = 'tmpgrant'"
t_exit 2 "a term longer than max_days is refused" "$D" grant erin procurement --days 91
t_exit 2 "a past --until is refused" "$D" grant erin procurement --until 2020-01-01
t_exit 2 "an --until whose end would show a five-digit year (+08:00) is refused" \
    "$D" grant erin general --until 9999-12-31T23:59:59Z
t_match "before 9999-12-30" "... saying the latest term" printf '%s\n' "$T_OUT"
# A grant whose [grant.NAME] section a reload dropped: its group is not known, so the membership
# stays — recorded failed, not unchanged (which ended the grant for good: the access stayed
# and, the section put back, status showed it with no term).
# Two of frank's, ending together: the second is recorded too (the first's expiry held frank).
frank_end=$(soon 2)
t_ok "grant 产研系统 to frank for a few seconds" "$D" grant frank rnd-system --until "$frank_end"
t_ok "grant 综合系统 to frank, ending at the same time" "$D" grant frank general --until "$frank_end"
cp "$T_DIR/d.conf" "$T_DIR/d.conf.full"
sed -i '/^\[grant\.rnd-system\]/,/^approval = /d; /^\[grant\.general\]/,/^approval = /d' "$T_DIR/d.conf"
rc=0
daemon_reload || rc=$?
t_eq "$rc" 0 "a reload dropping [grant.rnd-system] and [grant.general] is taken"
# Ticks come every 10 s: 21 s after the first failure, two more ticks found the grant due.
left=$((first_fail + 21 - $(date +%s)))
[ "$left" -le 0 ] || sleep "$left"
t_eq "$(heidi_fails)" 1 "a failing expiry is not tried again on every tick (two ticks later)"
frank_rnd() { # RESULT [PERMISSION]: frank's rnd-system (or PERMISSION) expiries with that result
    sqlite3 "$DB" "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
        WHERE a.action = 'expire' AND a.target = 'frank' AND a.permission = '${2:-rnd-system}'
        AND o.result = '$1'"
}
for _ in $(seq 180); do
    [ "$(frank_rnd failed)" -ge 1 ] && [ "$(frank_rnd failed general)" -ge 1 ] && break
    sleep 0.5
done
t_eq "$(frank_rnd failed)" 1 "the expiry of a grant whose permission is no longer configured is failed"
t_eq "$(frank_rnd failed general)" 1 "... and so is the other one ending with it (not lost behind the first)"
t_eq "$(frank_rnd unchanged)" 0 "... not unchanged"
t_match "permission rnd-system is no longer configured, so its group is not known: the membership was left in place; put \[grant.rnd-system\] back" \
    "... saying what to do" sqlite3 "$DB" "SELECT o.detail FROM records a JOIN records o ON o.attempt_id = a.id
        WHERE a.action = 'expire' AND a.target = 'frank' AND a.permission = 'rnd-system'"
t_match "expiry: frank's grant of rnd-system has ended, but \[grant.rnd-system\] is no longer configured" \
    "... and the daemon's log says so" cat "$T_DIR/ldapdeskd.log"
t_ok "frank is still a member" ldap_is_member rnd-system frank
cp "$T_DIR/d.conf.full" "$T_DIR/d.conf"
rc=0
daemon_reload || rc=$?
t_eq "$rc" 0 "a reload putting [grant.rnd-system] back is taken"
t_ok "... and the expiry goes on at the next tick" wait_gone rnd-system frank 30
t_ok "... for both" wait_gone general frank 30
t_eq "$(frank_rnd failed) $(frank_rnd ok)" "1 1" "one failed expiry while unconfigured, then one ok"

# ---- a timed grant caught by a crash keeps its term ---------------------------------------
# The attempt itself stores the term asked for ("expires ..." in its detail), so a grant that
# reached the directory before a SIGKILL, with no outcome record, is recovered at the next
# start with its end, and the expiry still takes it away.
t_eq "$(sqlite3 "$DB" "SELECT a.detail = o.detail FROM records a JOIN records o
    ON o.attempt_id = a.id WHERE a.action = 'grant' AND a.target = 'erin' AND o.result = 'ok'")" 1 \
    "a timed grant's attempt records the term its outcome gives"
t_eq "$(sqlite3 "$DB" "SELECT count(*) FROM records WHERE kind = 'attempt' AND action = 'grant'
    AND target = 'dave' AND permission = 'general' AND detail IS NULL")" 2 \
    "a grant without a term has no detail in its attempt (the first and its repeat)"
t_eq "$(sqlite3 "$DB" "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'grant' AND o.result NOT IN ('ok', 'unchanged') AND a.detail IS NOT NULL")" 0 \
    "a refused grant's attempt records no term (nothing was given)"
daemon_stop
end=$(soon 4)
ldap_root_modify >/dev/null <<EOF2
dn: cn=brand-insight,$LDAP_GROUPS
changetype: modify
add: member
member: $(ldap_user_dn grace)
EOF2
sqlite3 "$DB" "INSERT INTO records (kind, at, operator, action, target, permission, detail,
    prev_hash, hash) SELECT 'attempt', at, 'adm1', 'grant', 'grace', 'brand-insight',
    'expires $end', hash, '$(printf '%064d' 0)' FROM records ORDER BY id DESC LIMIT 1"
# A grant to a member that asked no term (so max_days' default, marked so in its attempt),
# left pending: dave's general grant in force (the 20-day term above) keeps its term.
dave_term=$(sqlite3 "$DB" "SELECT substr(o.detail, instr(o.detail, 'expires ') + 8, 20) FROM records a
    JOIN records o ON o.attempt_id = a.id WHERE a.action = 'grant' AND a.target = 'dave'
    AND a.permission = 'general' AND o.result IN ('ok', 'unchanged') ORDER BY a.id DESC LIMIT 1")
sqlite3 "$DB" "INSERT INTO records (kind, at, operator, action, target, permission, detail,
    prev_hash, hash) SELECT 'attempt', at, 'adm1', 'grant', 'dave', 'general',
    'expires $(soon 4) (default)', hash, '$(printf '%064d' 0)' FROM records ORDER BY id DESC LIMIT 1"
# The same with no term at all in the attempt (a permission without max_days, none asked).
sqlite3 "$DB" "INSERT INTO records (kind, at, operator, action, target, permission,
    prev_hash, hash) SELECT 'attempt', at, 'adm1', 'grant', 'dave', 'general',
    hash, '$(printf '%064d' 0)' FROM records ORDER BY id DESC LIMIT 1"
noterm=$(sqlite3 "$DB" "SELECT max(id) FROM records")
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts"; t_done; }
recovered() { sqlite3 "$DB" "SELECT o.detail FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'grant' AND a.target = 'grace'"; }
for _ in $(seq 300); do [ -n "$(recovered)" ] && break; sleep 0.1; done
t_eq "$(recovered)" "recovered at start-up: the user is a member of the group; expires $end" \
    "the grant is recovered as made, with its term"
dave_rec() { sqlite3 "$DB" "SELECT o.detail FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'grant' AND a.target = 'dave' AND a.detail LIKE '%(default)'"; }
for _ in $(seq 300); do [ -n "$(dave_rec)" ] && break; sleep 0.1; done
t_eq "$(dave_rec)" "recovered at start-up: the user is a member of the group; expires $dave_term" \
    "a recovered grant that asked no term keeps the member's term in force ($dave_term), not max_days'"
noterm_rec() { sqlite3 "$DB" "SELECT detail FROM records WHERE kind = 'outcome' AND attempt_id = $noterm"; }
for _ in $(seq 300); do [ -n "$(noterm_rec)" ] && break; sleep 0.1; done
t_eq "$(noterm_rec)" "recovered at start-up: the user is a member of the group; expires $dave_term" \
    "one whose attempt names no term at all keeps the term in force too (it did not become permanent)"
t_ok "and the expiry ends it" wait_gone brand-insight grace 40
daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0"
t_done
