#!/bin/sh
# store_failure.sh — fail closed: when the attempt cannot be written (disk
# full: the audit database on a tiny tmpfs), the directory is not touched,
# the request answers 503, and health says why; once space is back, the next
# request goes through.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init store_failure
t_start_slapd || { t_fail "slapd starts"; t_done; }
t_mount_tmpfs "$T_DIR/store" 1m || { t_skip "disk-full test" "cannot mount a tmpfs here"; t_done; }
DAEMON_APPROVAL=finance-docs daemon_config "$T_DIR/d.conf"
sed -i "s|^database = .*|database = $T_DIR/store/audit.db|" "$T_DIR/d.conf"
# The protected snapshot kept 10 minutes: with slapd frozen below, a change must need nothing
# from it before its attempt is stored, however slowly the steps before run under load.
sed -i 's/^\[ldap\]$/[ldap]\ncache_seconds = 600/' "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
D=$LDAPDESK
as_op hd1
t_ok "status works" "$D" status alice
ldap_lock_user alice >/dev/null 2>&1 || true
locked=$(ldap_attr alice pwdAccountLockedTime)
t_ok "alice is locked" test -n "$locked"
# hd2 logged in before the disk fills: its logout comes later.
tok=$(curl -s --cacert "$LDAPDESK_CA" -d "{\"user\":\"hd2\",\"password\":\"$LDAP_OP_PW\"}" \
    "$LDAPDESK_URL/v1/login" | jq -r .token)
dd if=/dev/zero of="$T_DIR/store/filler" bs=4k 2>/dev/null || true
t_exit 1 "with the audit disk full, unlock is refused (503, exit 1)" "$D" unlock alice
t_match "audit store cannot record" "the refusal says the audit store is at fault" "$D" unlock alice
# A refusal is recorded too (DESIGN: every action, refused or done): one the store cannot take
# is 503, naming the refusal, not answered as if it were on record.
t_match '"error": ?"audit_unavailable"' "with the disk full, hd1's unlock of itself is 503 audit_unavailable" \
    "$D" --json unlock hd1
t_match 'cannot record this request, refused \(self: operators may not unlock their own account\)' \
    "... naming the refusal it stands for" printf '%s\n' "$T_OUT"
t_eq "$(ldap_attr alice pwdAccountLockedTime)" "$locked" "the directory was not touched: alice is still locked"
t_match '"database":"failing: ' "health says the database is failing" \
    curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/v1/health"
t_match '"status":"degraded"' "health is degraded" curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/v1/health"
t_match '^ldapdesk_audit_failing 1$' "GET /metrics says the audit store is failing (ldapdesk_audit_failing 1)" \
    curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/metrics"
as_op adm1
t_exit 1 "with the audit disk full, a grant needing approval is refused (503)" \
    "$D" grant carol finance-docs --days 5
t_eq "$(sqlite3 "$T_DIR/store/audit.db" "SELECT count(*) FROM requests")" 0 \
    "no request is left without its record"
t_match '^503$' "with the audit disk full, a login is refused (503): it could not be recorded" \
    curl -s -o /dev/null -w '%{http_code}' --cacert "$LDAPDESK_CA" \
    -d "{\"user\":\"hd2\",\"password\":\"$LDAP_OP_PW\"}" "$LDAPDESK_URL/v1/login"
t_match '^200$' "with the audit disk full, logout still answers 200" curl -s -o /dev/null -w '%{http_code}' \
    --cacert "$LDAPDESK_CA" -X POST -H "Authorization: Bearer $tok" "$LDAPDESK_URL/v1/logout"
t_match '^503$' "and the ended token is refused: 503, its refusal cannot be recorded with the disk full" \
    curl -s -o /dev/null -w '%{http_code}' \
    --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" "$LDAPDESK_URL/v1/users/alice"
t_match '"error":"unauthenticated"' \
    "... the next one from that address in the period is counted for its summary, as throttled ones are (401)" \
    curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" "$LDAPDESK_URL/v1/users/bob"
# A start with a new key file must declare the new seal key in the log: on a full disk it
# cannot, and the daemon starts all the same (the next start declares it).
daemon_stop
mv "$T_DIR/session.key" "$T_DIR/session.key.old"
if daemon_start "$T_DIR/d.conf"; then t_pass "with the disk full, a start with a new key file goes on"
else t_fail "with the disk full, a start with a new key file goes on"; t_done; fi
t_match "cannot declare the seal key yet" "... saying the seal key is not declared yet" \
    cat "$T_DIR/ldapdeskd.log"
as_op hd1
rm -f "$T_DIR/store/filler"
t_ok "with space back, unlock goes through" "$D" unlock alice
t_empty "alice is unlocked" ldap_attr alice pwdAccountLockedTime
t_match '"database":"ok"' "health is ok again" curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/v1/health"
t_match '^ldapdesk_audit_failing 0$' "GET /metrics says the audit store records again (ldapdesk_audit_failing 0)" \
    curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/metrics"
as_op adm1
t_match "pending-approval" "with space back, the grant becomes a request" "$D" --json grant carol finance-docs --days 5
t_eq "$(sqlite3 "$T_DIR/store/audit.db" "SELECT count(*) FROM requests r JOIN records a ON a.request_id = r.id
    AND a.kind = 'attempt' AND a.action = 'grant'")" 1 "the request is stored with its record"

# ---- the store fails between the attempt and its outcome ----------------------------------
# carol's DN is cached by a first unlock, so the second needs nothing from the directory before
# its attempt; slapd is frozen while the disk fills, so the attempt is stored and the outcome
# is not. The unlock is done and answered; its outcome is kept and recorded once space is back,
# with no restart.
as_op hd1
ldap_lock_user carol >/dev/null 2>&1 || true
"$D" unlock carol >/dev/null
ldap_lock_user carol >/dev/null 2>&1 || true
t_ok "carol is locked" test -n "$(ldap_attr carol pwdAccountLockedTime)"
attempts() { sqlite3 "$T_DIR/store/audit.db" "SELECT count(*) FROM records WHERE kind = 'attempt'
    AND action = 'unlock' AND target = 'carol'"; }
n0=$(attempts)
kill -STOP "$SLAPD_PID"
"$D" --json unlock carol >"$T_DIR/u.out" 2>&1 &
un=$!
# The disk fills once the attempt is stored (under load the CLI takes seconds to get there).
for _ in $(seq 150); do [ "$(attempts)" -gt "$n0" ] && break; sleep 0.2; done
dd if=/dev/zero of="$T_DIR/store/filler" bs=4k 2>/dev/null || true
kill -CONT "$SLAPD_PID"
rc=0
wait "$un" || rc=$?
t_eq "$rc $(jq -r .result "$T_DIR/u.out" 2>/dev/null)" "0 ok" "the unlock is done and answered ok"
t_empty "carol is unlocked" ldap_attr carol pwdAccountLockedTime
ev=$(jq -r .event "$T_DIR/u.out")
outcome() { sqlite3 "$T_DIR/store/audit.db" "SELECT result || '|' || detail FROM records
    WHERE kind = 'outcome' AND attempt_id = ${ev:-0}"; }
t_empty "with the disk full its outcome is not stored yet" outcome
# Until it is, carol is held: a change now would be stored before it (a revoke's outcome
# written after the next grant's would read as revoking that grant).
ldap_lock_user carol >/dev/null 2>&1 || true
t_match "refused \(user_busy: the outcome of a change of carol \(event $ev\) is still to be stored" \
    "another change of carol meanwhile is refused as user_busy, not stored before it" \
    "$D" --json unlock carol
t_match '"error": ?"audit_unavailable"' "... answered 503: with the disk full its refusal is not recorded" \
    printf '%s\n' "$T_OUT"
rm -f "$T_DIR/store/filler"
for _ in $(seq 120); do [ -n "$(outcome)" ] && break; sleep 0.5; done
t_match '^ok\|recorded late \(the audit store had failed\): ' \
    "once space is back the outcome is recorded as it was, without a restart" outcome
t_ok "once it is recorded, carol can be changed again" "$D" unlock carol
t_match '"ok": true' "the chain verifies after the failure" env LDAPDESK_USER=aud1 "$D" --json verify
daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0"
# The store's files removed while the daemon runs: SQLite would write on into the removed
# files, where nobody finds the records, and lose them at the next start, for actions done.
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts"; t_done; }
as_op hd1
t_ok "hd1 logs in" "$D" login
ldap_lock_user alice >/dev/null 2>&1 || true
locked=$(ldap_attr alice pwdAccountLockedTime)
t_ok "alice is locked" test -n "$locked"
rm -f "$T_DIR/store/audit.db-wal"
t_exit 1 "with the audit WAL removed under the daemon, unlock is refused (503, exit 1)" "$D" unlock alice
t_match "audit.db \(or its -wal or -shm file\) was removed or replaced while ldapdeskd ran.*restart ldapdeskd" \
    "... saying the store was removed and what to do" printf '%s\n' "$T_OUT"
t_eq "$(ldap_attr alice pwdAccountLockedTime)" "$locked" "the directory was not touched: alice is still locked"
t_match '"database":"failing: .*removed or replaced' "health says the database is failing, and why" \
    curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/v1/health"
t_match '^503 .*"error": ?"audit_unavailable".*cannot record the login, so it is refused' \
    "a login that cannot be recorded is refused (503), not let in unrecorded" \
    sh -c "curl -s -w '%{http_code} ' --cacert '$LDAPDESK_CA' -d '{\"user\":\"adm1\",\"password\":\"$LDAP_OP_PW\"}' \
        '$LDAPDESK_URL/v1/login' | tr -d '\n' | sed 's/^\\(.*\\)\\([0-9][0-9][0-9]\\) $/\\2 \\1/'"
t_nomatch '"token"' "... and hands out no token" printf '%s\n' "$T_OUT"
rm -f "$T_DIR/store/audit.db" "$T_DIR/store/audit.db-wal" "$T_DIR/store/audit.db-shm"
t_exit 1 "verify of a database removed under the daemon fails (exit 1)" env LDAPDESK_USER=aud1 "$D" verify
t_match "audit.db: No such file or directory \(removed while ldapdeskd ran" "... naming the file" printf '%s\n' "$T_OUT"
t_ok "... and makes no new, empty one in its place" test ! -e "$T_DIR/store/audit.db"
daemon_stop
# The -shm file alone removed, then the database replaced by a copy moved over it (what a
# careless restore does): each is caught before the next commit, the directory untouched.
for how in shm mv; do
    daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts ($how)"; t_done; }
    t_ok "hd1 logs in ($how)" "$D" login
    ldap_lock_user alice >/dev/null 2>&1 || true
    locked=$(ldap_attr alice pwdAccountLockedTime)
    t_ok "alice is locked ($how)" test -n "$locked"
    if [ "$how" = shm ]; then
        rm -f "$T_DIR/store/audit.db-shm"
    else
        cp "$T_DIR/store/audit.db" "$T_DIR/store/copy.db" && mv "$T_DIR/store/copy.db" "$T_DIR/store/audit.db"
    fi
    t_exit 1 "store's file changed under the daemon ($how): unlock is refused (exit 1)" "$D" unlock alice
    t_match "removed or replaced while ldapdeskd ran" "... saying so ($how)" printf '%s\n' "$T_OUT"
    t_eq "$(ldap_attr alice pwdAccountLockedTime)" "$locked" "... and alice is still locked ($how)"
    daemon_stop
done
# Start-up on a full disk: a new database cannot be made; the message says what to do.
t_mount_tmpfs "$T_DIR/full" 256k || { t_skip "start-up on a full disk" "no second tmpfs"; t_done; }
dd if=/dev/zero of="$T_DIR/full/filler" bs=4k 2>/dev/null || true
sed "s|^database = .*|database = $T_DIR/full/audit.db|" "$T_DIR/d.conf" >"$T_DIR/full.conf"
t_exit 1 "ldapdeskd with its new database on a full disk stops at start-up" \
    "$LDAPDESKD" -c "$T_DIR/full.conf" -f
t_match "$T_DIR/full/audit.db: .*disk is full \(free space on the file system that holds it" \
    "... naming the database and saying to free space" printf '%s\n' "$T_OUT"
t_done
