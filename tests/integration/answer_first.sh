#!/bin/sh
# answer_first.sh — a change is answered once the directory has answered; its outcome record
# joins the next group commit (daemon/commit.c). With commit_delay_ms 100 a lone outcome waits
# 100 ms for an attempt to share its fsync, so every check below falls inside that window:
#  * the reply does not wait for it (GET /metrics counts the change answered first);
#  * a status, a log query and a verify that come right after still show the outcome (a
#    status the grant's term and granter too);
#  * a SIGKILL right after the reply leaves the attempt pending and the next start resolves it
#    from the directory, agreeing with it;
#  * the outcome of a lone operator's change shares the next request's commit.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init answer_first
t_start_slapd || { t_fail "slapd starts"; t_done; }
daemon_config "$T_DIR/d.conf"
sed -i 's/^\[audit\]$/[audit]\ncommit_delay_ms = 100/' "$T_DIR/d.conf"
t_ok "the test's config sets commit_delay_ms 100" grep -q '^commit_delay_ms = 100$' "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
DB=$T_DIR/audit.db
metric() { curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
# adm1: an admin may unlock and read the log.
tok=$(curl -s --cacert "$LDAPDESK_CA" -d "{\"user\":\"adm1\",\"password\":\"$LDAP_OP_PW\"}" \
    "$LDAPDESK_URL/v1/login" | jq -r .token)
t_match '^[A-Za-z0-9_.-]{20,}$' "adm1 logs in over HTTPS" echo "$tok"
# The outcome of unlock UID as the database holds it now (no wait: command sqlite3 bypasses the
# harness's audit_settle), "" while it is not stored.
stored_outcome() {
    command sqlite3 "$DB" "SELECT o.result FROM records a JOIN records o ON o.attempt_id = a.id
        WHERE a.kind = 'attempt' AND a.action = 'unlock' AND a.target = '$1' ORDER BY a.id DESC LIMIT 1"
}
# One curl, one keep-alive connection: the unlock, then right after its reply a status, a log
# query and a verify (a file per reply).
t_ok "alice is locked" ldap_lock_user alice
first0=$(metric ldapdesk_audit_answered_first_total)
curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d '{"ticket":"T-1"}' -o "$T_DIR/u.json" "$LDAPDESK_URL/v1/users/alice/unlock" \
    --next --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" -o "$T_DIR/s.json" \
    "$LDAPDESK_URL/v1/users/alice" \
    --next --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" -o "$T_DIR/l.json" \
    "$LDAPDESK_URL/v1/audit?user=alice&action=unlock" \
    --next --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" -o "$T_DIR/v.json" \
    "$LDAPDESK_URL/v1/verify" || true
t_eq "$(jq -r .result "$T_DIR/u.json" 2>&1)" ok "the unlock is answered ok"
t_eq "$(metric ldapdesk_audit_answered_first_total)" "$((first0 + 1))" \
    "... before its outcome was stored (answered first: the counter rose by one)"
t_eq "$(jq -r '.locked, .history[0].action, .history[0].result' "$T_DIR/s.json" 2>&1 | paste -sd ' ')" \
    "false unlock ok" "a status right after the reply shows the unlock's outcome in its history"
t_eq "$(jq -r '.events[0].result' "$T_DIR/l.json" 2>&1)" ok \
    "a log query right after the reply shows the outcome, not 'pending'"
t_eq "$(jq -r .ok "$T_DIR/v.json" 2>&1)" true "a verify right after it passes"
t_eq "$(metric ldapdesk_audit_answered_first_settled_total)" "$((first0 + 1))" \
    "... and by then its commit has ended (settled counter)"
t_eq "$(stored_outcome alice)" ok "the outcome is in the database"

# A grant answered first, then a status on the same connection: the status reads the grant's
# term and who granted it from the audit, once the outcome is stored.
curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d '{"permission":"rnd-system","days":30}' -o "$T_DIR/g.json" "$LDAPDESK_URL/v1/users/alice/grants" \
    --next --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" -o "$T_DIR/gs.json" \
    "$LDAPDESK_URL/v1/users/alice" || true
t_eq "$(jq -r .result "$T_DIR/g.json" 2>&1)" ok "alice is granted rnd-system for 30 days"
t_eq "$(jq -r '.grants[] | select(.permission == "rnd-system") | [.granted_by, (.expires != null)] | join(" ")' \
    "$T_DIR/gs.json" 2>&1)" "adm1 true" \
    "a status right after the grant's reply shows who granted it and until when"

# A lone operator's next request shares the outcome's commit: two unlocks back to back make
# three commits (attempt; outcome + next attempt; outcome), not four.
t_ok "carol is locked" ldap_lock_user carol
t_ok "dave is locked" ldap_lock_user dave
audit_settle
c0=$(metric ldapdesk_audit_commits_total)
curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d '{}' -o /dev/null "$LDAPDESK_URL/v1/users/carol/unlock" \
    --next --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d '{}' -o /dev/null "$LDAPDESK_URL/v1/users/dave/unlock" || true
audit_settle
t_eq "$(($(metric ldapdesk_audit_commits_total) - c0))" 3 \
    "two unlocks back to back take three commits: the first outcome rides with the second attempt"
t_eq "$(stored_outcome carol) $(stored_outcome dave)" "ok ok" "... and both outcomes are stored"

# SIGKILL right after the reply: the outcome waits its 100 ms, so the kill comes first.
t_ok "bob is locked" ldap_lock_user bob
curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d '{}' -o "$T_DIR/k.json" "$LDAPDESK_URL/v1/users/bob/unlock" || true
kill -KILL "$DAEMON_PID"
_proc_wait_dead "$DAEMON_PID" 100 || :
t_untrack "$DAEMON_PID"
DAEMON_PID=
t_eq "$(jq -r .result "$T_DIR/k.json" 2>&1)" ok "bob's unlock is answered ok before the kill"
before=$(stored_outcome bob)
t_empty "bob is unlocked in the directory" ldap_attr bob pwdAccountLockedTime
sleep 1 # the audit database's lock released
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts after SIGKILL"; t_done; }
for _ in $(seq 100); do [ -n "$(stored_outcome bob)" ] && break; sleep 0.1; done
if [ -z "$before" ]; then
    t_eq "$(command sqlite3 "$DB" "SELECT o.result || '|' || (o.detail LIKE 'recovered at start-up%')
        FROM records a JOIN records o ON o.attempt_id = a.id WHERE a.action = 'unlock'
        AND a.target = 'bob'")" "ok|1" \
        "an outcome lost with the kill is recovered at the next start, agreeing with the directory (ok)"
else
    t_skip "an outcome lost with the kill is recovered" "its commit came before the kill ($before)"
fi
t_eq "$(command sqlite3 "$DB" "SELECT count(*) FROM records a WHERE a.kind = 'attempt' AND NOT EXISTS
    (SELECT 1 FROM records o WHERE o.attempt_id = a.id)")" 0 "no attempt is left pending"
as_op aud1
t_match '"ok": true' "the chain verifies after the recovery" "$LDAPDESK" --json verify
t_done
