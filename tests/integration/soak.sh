#!/bin/sh
# soak.sh — issue 6 point 4: 256 concurrent HTTPS clients resetting passwords
# for a bounded time (SOAK_SECONDS, default 20): no request that should
# succeed fails, descriptors and memory do not grow, latency stays bounded.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init soak
t_start_slapd || { t_fail "slapd starts"; t_done; }
SECS=${SOAK_SECONDS:-20}
# Users round robin: enough that no user comes round again while a reset of it is still
# under way (a second change of one user at once is refused, 409 user_busy).
N=2000
awk -v b="ou=技术研发中心,$LDAP_PEOPLE" -v n=$N 'BEGIN {
    for (i = 0; i < n; i++)
        printf "dn: uid=bench%04d,%s\nobjectClass: inetOrgPerson\nuid: bench%04d\ncn: Bench %04d\nsn: Bench\n\n", i, b, i, i
}' >"$T_DIR/users.ldif"
ldapadd -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" -f "$T_DIR/users.ldif" >/dev/null
daemon_config "$T_DIR/d.conf"
sed -i 's/^pool_size = .*/pool_size = 8/; s/^timeout_ms = .*/timeout_ms = 30000/' "$T_DIR/d.conf"
# Under AddressSanitizer freed memory waits in a quarantine (256 MB by default) before reuse,
# so RSS grows with the work done, leak or not: a small one keeps the growth bound meaningful.
[ -z "${ASAN_OPTIONS:-}" ] || export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=8"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
printf '%s' "$LDAP_OP_PW" >"$T_DIR/op.pw"
run() { # CONC SECONDS -> loadgen's JSON line
    "$LOADGEN" --port "$LDAPDESK_PORT" --ca "$LDAPDESK_CA" --user adm1 --password-file "$T_DIR/op.pw" \
        --op reset --concurrency "$1" --seconds "$2" --users $N --prefix bench
}
fds() { find "/proc/$DAEMON_PID/fd" -mindepth 1 | wc -l; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }

# Warm-up at full width: the allocator keeps what 256 TLS connections needed
# once, so growth is measured from there (a leak keeps growing).
run 256 5 >/dev/null 2>&1 || true
sleep 1
fd0=$(fds)
rss0=$(rss)
rc=0
out=$(run 256 "$SECS" 2>"$T_DIR/loadgen.err") || rc=$?
t_note "soak: $out"
t_eq "$rc" 0 "every request of the soak succeeded (loadgen exit 0)"
t_eq "$(printf '%s' "$out" | jq -r '.errors')" 0 "no error answers"
ops=$(printf '%s' "$out" | jq -r '.ok')
t_ok "the soak did work ($ops requests)" test "${ops:-0}" -gt 100
p99=$(printf '%s' "$out" | jq -r '.p99_us / 1000 | floor')
t_ok "p99 latency stays bounded (${p99} ms < 20000 ms)" test "${p99:-99999}" -lt 20000
sleep 2 # connections close, the pool settles
fd1=$(fds)
rss1=$(rss)
t_note "descriptors before/after: $fd0/$fd1; RSS before/after: ${rss0}/${rss1} kB"
t_ok "no descriptor growth ($fd0 -> $fd1)" test "$fd1" -le $((fd0 + 4))
# Under AddressSanitizer its 8 MB quarantine and shadow memory add to the growth; LeakSanitizer
# at exit is the leak check there.
bound=8192
[ -z "${ASAN_OPTIONS:-}" ] || bound=65536
t_ok "memory growth bounded (${rss0} -> ${rss1} kB, < $((bound / 1024)) MB)" test $((rss1 - rss0)) -lt "$bound"
t_eq "$(sqlite3 "$T_DIR/audit.db" "SELECT count(*) FROM records r WHERE kind='attempt' AND NOT EXISTS (SELECT 1 FROM records o WHERE o.kind='outcome' AND o.attempt_id=r.id)")" 0 \
    "every attempt of the soak has its outcome"
daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0 (sanitizers clean)"
t_done
