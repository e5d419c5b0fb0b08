#!/bin/sh
# outage.sh — the pool survives a slapd restart: requests during the outage
# fail within timeout_ms as 503, the next one after it succeeds; no restart.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init outage
t_start_slapd || { t_fail "slapd starts"; t_done; }
daemon_config "$T_DIR/d.conf"
sed -i 's/^timeout_ms = .*/timeout_ms = 2000/' "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
D=$LDAPDESK
as_op hd1
t_ok "status works before the outage" "$D" status alice
slapd_stop "$SLAPD_DIR"
start=$(date +%s)
t_exit 1 "during the outage unlock fails (503, exit 1)" "$D" unlock alice
t_ok "it failed within 3 x timeout_ms" test $(($(date +%s) - start)) -le 6
t_exit 1 "an unlock of bob (not cached: a lookup first) fails too" "$D" unlock bob
t_ok "... and its attempt is stored at the request's time, not when the lookup gave up (2 s later)" \
    test "$(sqlite3 "$T_DIR/audit.db" "SELECT CAST((julianday(o.at) - julianday(a.at)) * 86400000 AS INTEGER)
        FROM records a JOIN records o ON o.attempt_id = a.id WHERE a.action = 'unlock' AND a.target = 'bob'")" -ge 1500
t_match '"directory": "down"|"directory":"down"' "health says the directory is down" \
    curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/v1/health"
t_match '^ldapdesk_directory_up 0$' "GET /metrics says so too (ldapdesk_directory_up 0)" \
    curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/metrics"
t_ok "the daemon is still running" proc_alive "$DAEMON_PID"
# Ending a session needs no role: after a reload (every session's roles must be re-read) a
# logout goes through while the directory cannot re-read them.
t_ok "a reload with the directory down is taken" daemon_reload
t_ok "a logout after a reload, with the directory down, is done" "$D" logout
t_match "^not logged in at" "... and the CLI's session is gone (a second logout finds none)" "$D" logout
# Logged out, a command logs in by itself (LDAPDESK_USER and LDAPDESK_PASSWORD are set): the
# directory is down, which the settings cannot mend, so nothing says to correct them.
t_exit 1 "an automatic login while the directory is down fails (503, exit 1)" "$D" status alice
t_match "directory unavailable" "... saying the directory is unavailable" printf '%s\n' "$T_OUT"
t_nomatch "correct them" "... not that the login settings are wrong" printf '%s\n' "$T_OUT"
slapd_restart "$SLAPD_DIR"
ok=1
for _ in 1 2 3 4 5 6 7 8 9 10; do
    if "$D" status alice >/dev/null 2>&1; then ok=0; break; fi
    sleep 1
done
t_eq "$ok" 0 "after slapd is back a request succeeds without restarting the daemon"
t_match '^ldapdesk_directory_up 1$' "GET /metrics says the directory is up again (ldapdesk_directory_up 1)" \
    curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/metrics"
t_ok "unlock works again" "$D" unlock alice
t_eq "$(sqlite3 "$T_DIR/audit.db" "SELECT group_concat(a.action || ' ' || COALESCE(a.target, '-'), ',') FROM records a
    JOIN records o ON o.attempt_id = a.id WHERE o.result = 'failed' AND o.detail LIKE '%directory%'
    ORDER BY a.id")" "unlock alice,unlock bob,login -" \
    "the failed unlocks (alice, bob) and the automatic login are failed audit rows"

# ---- a change slapd got but did not answer ------------------------------------------------
# "failed" would be wrong if slapd made it: the attempt stays pending, the operator is told
# the outcome is not known yet, and the daemon reads it back and records what it finds.
DB=$T_DIR/audit.db
t_ok "erin is locked" ldap_lock_user erin
t_ok "status erin (caches her DN: the unlock needs no search before its attempt)" "$D" status erin
kill -STOP "$SLAPD_PID"
t_match "not known yet" "an unlock slapd does not answer in timeout_ms is 'not known yet'" \
    "$D" unlock erin
att=$(sqlite3 "$DB" "SELECT max(id) FROM records WHERE kind='attempt' AND action='unlock' AND target='erin'")
t_eq "$(sqlite3 "$DB" "SELECT count(*) FROM records WHERE kind='outcome' AND attempt_id=$att")" 0 \
    "its attempt is left pending, not recorded as failed"
t_match '"directory": *"not answering"' "health says so while slapd hangs (its connections stay up)" \
    sh -c "curl -s --cacert '$LDAPDESK_CA' '$LDAPDESK_URL/v1/health'"
t_exit 1 "and ldapdesk health exits 1 (degraded)" "$D" health
kill -CONT "$SLAPD_PID"
ok_again=no
for _ in $(seq 180); do
    if "$D" health >/dev/null 2>&1; then ok_again=yes; break; fi
    sleep 0.5
done
t_eq "$ok_again" yes "once slapd answers again, health is ok again (its own ping sees it)"
# Until it is read back, slapd may still apply it: another change of erin waits.
if [ -z "$(sqlite3 "$DB" "SELECT 1 FROM records WHERE kind='outcome' AND attempt_id=$att")" ]; then
    t_exit 1 "until then another change of erin is refused (409, exit 1)" "$D" reset erin
    t_match "a change of erin the directory did not answer \\(event $att\\) is still to be read back" \
        "... naming the event to wait for" printf '%s\n' "$T_OUT"
    # slapd matches a full-width ｅｒｉｎ to erin: the claim goes by the entry's own uid.
    t_exit 1 "... also when erin is typed in full-width letters (ｅｒｉｎ)" "$D" reset ｅｒｉｎ
    t_match "a change of erin the directory did not answer \\(event $att\\)" \
        "... naming erin and the event" printf '%s\n' "$T_OUT"
else
    t_skip "another change of erin before the read-back" "it was read back already"
fi
got=
# Read back at an expiry tick (10 s) once slapd has answered again: within ~30 s; 90 s allowed.
for _ in $(seq 180); do
    got=$(sqlite3 "$DB" "SELECT result || '|' || detail FROM records WHERE kind='outcome' AND attempt_id=$att")
    [ -n "$got" ] && break
    sleep 0.5
done
if [ -z "$(ldap_attr erin pwdAccountLockedTime)" ]; then
    want='ok|read back after the directory did not answer: the account is not locked'
else want='failed|read back after the directory did not answer: the account is still locked'; fi
t_eq "$got" "$want" "the daemon reads it back and records what the directory holds"
t_ok "once it is read back, the next change of erin goes through" "$D" unlock erin

# ---- a change slapd never made -------------------------------------------------------------
# slapd is killed while frank's unlock waits unread in its socket, and started again: the
# read-back finds frank still locked and records the unlock as failed, not as done.
t_ok "frank is locked" ldap_lock_user frank
t_ok "status frank (caches his DN)" "$D" status frank
kill -STOP "$SLAPD_PID"
t_match "not known yet" "an unlock of frank slapd does not answer is 'not known yet'" "$D" unlock frank
att2=$(sqlite3 "$DB" "SELECT max(id) FROM records WHERE kind='attempt' AND action='unlock' AND target='frank'")
kill -KILL "$SLAPD_PID"
wait "$SLAPD_PID" 2>/dev/null || :
t_untrack "$SLAPD_PID"
slapd_start "$SLAPD_DIR" "$(cat "$SLAPD_DIR/port")" || { t_fail "slapd starts again after SIGKILL"; t_done; }
t_ok "frank is still locked: slapd never made the unlock" test -n "$(ldap_attr frank pwdAccountLockedTime)"
got=
for _ in $(seq 180); do
    got=$(sqlite3 "$DB" "SELECT result || '|' || detail FROM records WHERE kind='outcome' AND attempt_id=${att2:-0}")
    [ -n "$got" ] && break
    sleep 0.5
done
t_eq "$got" 'failed|read back after the directory did not answer: the account is still locked' \
    "the daemon reads it back as failed: the account is still locked"
t_ok "... and frank stays locked (the read-back changed nothing)" test -n "$(ldap_attr frank pwdAccountLockedTime)"

# ---- too many changes left unanswered --------------------------------------------------------
# The daemon keeps the changes slapd did not answer, to read back later; while 64 wait it takes
# no change at all (503 busy). Each change under way holds a place in that list, so one more
# than 64 sent at once is parked too, and none is left unanswered with its user free.
awk -v b="$LDAP_PEOPLE" 'BEGIN { for (i = 0; i < 70; i++)
    printf "dn: uid=fill%02d,%s\nobjectClass: inetOrgPerson\nuid: fill%02d\ncn: Fill %02d\nsn: Fill\n\n", i, b, i, i }' \
    >"$T_DIR/fill.ldif"
ldapadd -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" -f "$T_DIR/fill.ldif" >/dev/null
tok=$(curl -s --cacert "$LDAPDESK_CA" -d "{\"user\":\"hd1\",\"password\":\"$LDAP_OP_PW\"}" "$LDAPDESK_URL/v1/login" | jq -r .token)
fill() { # METHOD PATH: HTTP status of one request as hd1
    curl -s -o /dev/null -w '%{http_code}\n' --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" \
        ${2:+-X "$1"} ${2:+-d '{}'} "$LDAPDESK_URL${2:-$1}"
}
# A change first reads the protected groups again when its snapshot is older than
# cache_seconds: one change now, so that the ones below need nothing from slapd before it
# (cache_seconds raised: 66 curls under load take more than the default 5 s to start).
sed -i 's/^\[ldap\]$/[ldap]\ncache_seconds = 600/' "$T_DIR/d.conf"
daemon_reload || t_fail "a reload with cache_seconds = 600 is taken"
for i in $(seq -w 0 69); do fill "/v1/users/fill$i" >/dev/null; done # their DNs cached
fill POST /v1/users/fill69/unlock >/dev/null
kill -STOP "$SLAPD_PID"
pids=
for i in $(seq -w 0 65); do
    curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" -d '{}' \
        "$LDAPDESK_URL/v1/users/fill$i/unlock" >"$T_DIR/fill$i.out" &
    pids="$pids $!"
done
# shellcheck disable=SC2086
wait $pids
t_eq "$(cat "$T_DIR"/fill*.out | jq -r .error | sort | uniq -c | awk '{ print $1 " " $2 }')" \
    "66 directory_no_answer" "66 unlocks at once slapd does not answer are 503 directory_no_answer"
t_eq "$(grep -l 'reads it back shortly' "$T_DIR"/fill*.out | wc -l)" 66 \
    "... and all 66 are read back shortly (each held a place in the list), none at the next start"
t_match '^503$' "with 66 of them still to be read back, a change of another user is refused (503)" \
    fill POST /v1/users/fill67/unlock
t_match '"error": *"busy".*66 changes wait to be read back from the directory.*none is taken while 64 or more wait' "... busy, saying why and how many wait" \
    curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" -d '{}' "$LDAPDESK_URL/v1/users/fill66/unlock"
t_eq "$(sqlite3 "$DB" "SELECT o.result FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'unlock' AND a.target = 'fill66'")" failed "... and recorded, failed"
kill -CONT "$SLAPD_PID"
fill_done() { # number of the 66 unlocks with an outcome
    sqlite3 "$DB" "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
        WHERE a.action = 'unlock' AND a.target GLOB 'fill[0-6][0-9]' AND a.target < 'fill66'
        AND a.id > (SELECT max(id) FROM records WHERE action = 'unlock' AND target = 'fill69')"
}
for _ in $(seq 240); do [ "$(fill_done)" = 66 ] && break; sleep 0.5; done
t_eq "$(fill_done)" 66 "once slapd answers again, all 66 are read back and recorded before any restart"

daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0 on SIGTERM"

# ---- a directory certificate that does not verify -----------------------------------------
# libldap (GnuTLS) says only "Connect error" or "Can't contact LDAP server": the log says what
# to check, and a request says no connection is up rather than that slapd did not answer.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T_DIR/other-ca.key" -out "$T_DIR/other-ca.pem" \
    -subj /CN=other-ca -days 2 2>/dev/null
sed -i "s#^ca_file = .*#ca_file = $T_DIR/other-ca.pem#" "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts with a CA that did not sign slapd's"; t_done; }
log_says() { # RE: waits up to 10 s for the daemon's log to match
    for _ in $(seq 150); do grep -qE "$1" "$T_DIR/ldapdeskd.log" && return 0; sleep 0.2; done
    return 1
}
t_ok "StartTLS that does not verify: the log names ca_file and the certificate check" \
    log_says "StartTLS with ldap://127\.0\.0\.1:[0-9]+ failed \(Connect error\): check that ca_file \($T_DIR/other-ca.pem\) holds the CA that signed"
t_match '"message":"directory unavailable: no connection to the directory is up' \
    "a login then says no connection is up (not that slapd did not answer)" \
    curl -s --cacert "$LDAPDESK_CA" -d '{"user":"hd1","password":"Op-Pass-2026"}' "$LDAPDESK_URL/v1/login"
t_nomatch 'other-ca|ldap://' "... without naming the CA file or the directory to a caller" \
    printf '%s\n' "$T_OUT"
daemon_stop
LDAPS_PORT=$(random_port)
SLAPD_EXTRA_URLS="ldaps://127.0.0.1:$LDAPS_PORT/" slapd_restart "$SLAPD_DIR" \
    || { t_fail "slapd restarts with an ldaps:// listener"; t_done; }
sed -i -e "s#^uri = .*#uri = ldaps://127.0.0.1:$LDAPS_PORT#" -e 's/^starttls = .*/starttls = no/' \
    "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts (ldaps://, wrong CA)"; t_done; }
t_ok "ldaps:// that does not verify: the log says the TLS handshake failed and names ca_file" \
    log_says "the TLS handshake with ldaps://127\.0\.0\.1:$LDAPS_PORT failed .*check that ca_file \($T_DIR/other-ca.pem\)"
daemon_stop
sed -i "s#^ca_file = .*#ca_file = $SLAPD_DIR/ca.pem#" "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts (ldaps://, right CA)"; t_done; }
t_ok "with the right CA, ldaps:// works (status alice)" "$D" status alice
# A stop waits for requests whose roles are being re-read (after a reload), and answers them.
tok=$(curl -s --cacert "$LDAPDESK_CA" -d "{\"user\":\"hd1\",\"password\":\"$LDAP_OP_PW\"}" "$LDAPDESK_URL/v1/login" | jq -r .token)
t_ok "a reload is taken (the session's roles must now be re-read)" daemon_reload
kill -STOP "$SLAPD_PID"
curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tok" -w '\n%{http_code}\n' \
    "$LDAPDESK_URL/v1/users/alice" >"$T_DIR/reread.out" 2>&1 &
reread=$!
sleep 0.5
kill -TERM "$DAEMON_PID"
wait "$reread" || true
kill -CONT "$SLAPD_PID"
t_match '^503$' "a request waiting on its roles' re-read when SIGTERM came is answered (503), not cut off" \
    tail -n 1 "$T_DIR/reread.out"
daemon_stop
sed -i "s#^uri = .*#uri = ldaps://127.0.0.1:$(random_port)#" "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts (ldaps://, nobody listening)"; t_done; }
t_ok "nobody listening: the log says so, not a certificate problem" \
    log_says "cannot connect to ldaps://127\.0\.0\.1:[0-9]+ \(Can't contact LDAP server\): check that the directory runs"
daemon_stop

# ---- a reply cut inside a TLS record ----------------------------------------------------------
# The loop never waits on the directory's socket: while a reply's last byte is held back for
# 4 s (tests/lib/split_proxy.py relays between ldapdeskd and slapd), other requests are
# answered, and the cut reply is taken when its byte comes. A loop blocked in a read of the
# rest of the TLS record would answer nothing for those 4 s.
PROXY_PORT=$(random_port)
python3 "$LDAPDESK_SRC/tests/lib/split_proxy.py" "$PROXY_PORT" "$LDAP_PORT" "$T_DIR/split" \
    >"$T_DIR/proxy.out" 2>&1 &
t_track $!
for _ in $(seq 50); do grep -q ready "$T_DIR/proxy.out" 2>/dev/null && break; sleep 0.1; done
daemon_config "$T_DIR/p.conf"
# timeout_ms well above the hold: the cut reply must come in time on a slow machine too.
sed -i -e "s#^uri = .*#uri = ldap://127.0.0.1:$PROXY_PORT#" -e 's/^timeout_ms = .*/timeout_ms = 15000/' \
    "$T_DIR/p.conf"
daemon_start "$T_DIR/p.conf" || { t_fail "ldapdeskd starts, its directory behind the relay"; t_done; }
t_ok "status alice through the relay" "$D" status alice
t_ok "grace is locked" ldap_lock_user grace
echo "hold 4" >"$T_DIR/split"
"$D" unlock grace >"$T_DIR/held.out" 2>&1 &
held=$!
# The relay removes its control file when the hold begins: from then on, 4 s.
for _ in $(seq 100); do [ -e "$T_DIR/split" ] || break; sleep 0.05; done
t_ok "a directory reply is being held (the relay took the hold)" test ! -e "$T_DIR/split"
t0=$(date +%s%N)
t_match '"status"' "meanwhile GET /v1/health is answered" \
    curl -s --max-time 3 --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/v1/health"
t_ok "... within 2 s, before the held byte comes ($((($(date +%s%N) - t0) / 1000000)) ms)" \
    test $((($(date +%s%N) - t0) / 1000000)) -lt 2000
if wait "$held"; then t_pass "the unlock whose reply was cut completes when the byte comes"; else
    t_fail "the unlock whose reply was cut completes when the byte comes" "$(cat "$T_DIR/held.out")"
fi
t_empty "grace is unlocked in the directory" ldap_attr grace pwdAccountLockedTime
daemon_stop
t_done
