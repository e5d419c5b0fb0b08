#!/bin/sh
# recovery.sh — nothing lost on a crash, a graceful stop, and reload:
#  * ldapdeskd is killed (SIGKILL) while an unlock and a reset wait on a
#    stopped slapd; after the restart the attempts left pending are resolved
#    by reading the directory, and agree with it;
#  * SIGTERM lets an in-flight request finish and its outcome be recorded;
#  * SIGHUP with a broken file keeps the running configuration and logs
#    FILE:LINE; with a good file the change takes effect.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init recovery
t_start_slapd || { t_fail "slapd starts"; t_done; }
daemon_config "$T_DIR/d.conf"
sed -i 's/^timeout_ms = .*/timeout_ms = 8000/' "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
D=$LDAPDESK
DB=$T_DIR/audit.db
as_op hd1
"$D" login >/dev/null
pending() { sqlite3 "$DB" "SELECT count(*) FROM records r WHERE kind='attempt' AND action='$1'
    AND NOT EXISTS (SELECT 1 FROM records o WHERE o.kind='outcome' AND o.attempt_id=r.id)"; }

# ---- SIGKILL under a load of resets, at several moments ----------------------------
users="alice bob carol dave erin frank grace heidi judy liuyang chenjing zhaolei sunmin zhoujie wuhao xuqiang"
load() { # reset one user over and over until told to stop
    while [ ! -e "$T_DIR/stop" ]; do "$D" reset "$1" >/dev/null 2>&1 || true; done
}
recovered_total=0
for round in 1 2 3; do
    rm -f "$T_DIR/stop"
    pids=
    for u in $users; do load "$u" & pids="$pids $!"; done
    sleep "$(awk -v r="$round" 'BEGIN { srand(r * 7919); printf "%.2f", 1 + rand() * 1.5 }')"
    kill -KILL "$DAEMON_PID"
    t_untrack "$DAEMON_PID"
    touch "$T_DIR/stop"
    # shellcheck disable=SC2086
    wait $pids 2>/dev/null || true
    left=$(pending reset)
    t_note "round $round: $left reset attempts pending at the kill"
    daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts after SIGKILL (round $round)"; t_done; }
    for _ in $(seq 150); do [ "$(pending reset)" = 0 ] && break; sleep 0.1; done
    t_eq "$(pending reset)" 0 "round $round: no attempt stays pending after the restart"
    recovered_total=$((recovered_total + left))
done
t_eq "$(sqlite3 "$DB" "SELECT count(*) FROM records WHERE kind='outcome' AND detail LIKE 'recovered at start-up%'")" \
    "$recovered_total" "every attempt pending at a kill got a recovered outcome ($recovered_total)"
missing=
for u in $users; do
    [ "$(ldap_attr "$u" pwdReset)" = TRUE ] || continue
    ok=$(sqlite3 "$DB" "SELECT count(*) FROM records a JOIN records o ON o.attempt_id=a.id
        WHERE a.action='reset' AND a.target='$u' AND o.result='ok'")
    [ "$ok" -gt 0 ] || missing="$missing $u"
done
t_eq "$missing" "" "every user whose password changed has an ok reset row"
t_match '"ok": true' "the chain still verifies" env LDAPDESK_USER=aud1 "$D" --json verify

# ---- graceful stop ----------------------------------------------------------------------
ldap_lock_user carol >/dev/null 2>&1 || true
"$D" login >/dev/null # sessions live in memory: the restarts above ended the old one
kill -STOP "$SLAPD_PID"
"$D" unlock carol >"$T_DIR/unlock.out" 2>&1 &
c3=$!
sleep 1
kill -TERM "$DAEMON_PID"
sleep 0.5
t_ok "SIGTERM waits for the request in flight" proc_alive "$DAEMON_PID"
kill -CONT "$SLAPD_PID"
rc=0
wait "$c3" || rc=$?
t_eq "$rc" 0 "the in-flight unlock is answered ok ($(cat "$T_DIR/unlock.out"))"
daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0 after draining"
t_eq "$(pending unlock)" 0 "its outcome was recorded before exit"
t_eq "$(ldap_attr carol pwdAccountLockedTime)" "" "carol is unlocked in the directory"

# ---- reload ------------------------------------------------------------------------------
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts again"; t_done; }
cp "$T_DIR/d.conf" "$T_DIR/good.conf"
printf '[ldap]\nnot_a_key = 1\n' >>"$T_DIR/d.conf"
bad_line=$(wc -l <"$T_DIR/d.conf")
kill -HUP "$DAEMON_PID"
sleep 0.5
t_match "reload failed, keeping the running configuration: .*d.conf:$bad_line: unknown key" \
    "a broken file is refused with FILE:LINE" cat "$T_DIR/ldapdeskd.log"
t_ok "the daemon still serves after a failed reload" "$D" status alice
cp "$T_DIR/good.conf" "$T_DIR/d.conf"
sed -i 's/^\[grant.general\]/[grant.general]\n/; $a [grant.newsys]\ngroup = cn=general,ou=groups,dc=example,dc=com\nlabel = 新系统' "$T_DIR/d.conf"
t_exit 5 "before reload the new permission is unknown" env LDAPDESK_USER=adm1 "$D" grant dave newsys
kill -HUP "$DAEMON_PID"
sleep 0.5
t_match "configuration reloaded" "a good file is reloaded" cat "$T_DIR/ldapdeskd.log"
t_ok "after reload the new permission works" env LDAPDESK_USER=adm1 "$D" grant dave newsys
daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0"
t_done
