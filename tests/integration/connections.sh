#!/bin/sh
# connections.sh — [limits] connections, connections_per_address and request_seconds:
# one client cannot hold every connection, nor hold one for ever by sending a request
# slowly (slow loris); clients within the limits are served as before.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init connections
t_start_slapd || { t_fail "slapd starts"; t_done; }
daemon_config "$T_DIR/d.conf"
printf '\n[limits]\nconnections = 20\nconnections_per_address = 3\nrequest_seconds = 2\n' \
    >>"$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
probe() { python3 "$LDAPDESK_SRC/tests/lib/conn_probe.py" "$1" "$LDAPDESK_URL" "$LDAPDESK_CA" ${2:+"$2"}; }
metric() { # NAME{LABELS}: its value in GET /metrics
    curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

# ---- per address ---------------------------------------------------------------------------
probe cap 3 >"$T_DIR/cap.out" 2>&1 || true
t_match '^held 3$' "3 connections from one address are served (connections_per_address = 3)" \
    cat "$T_DIR/cap.out"
t_match '^extra refused 503$' "... a 4th from the same address is answered 503 and closed" cat "$T_DIR/cap.out"
t_match '^other accepted$' "... while one from another address (127.0.0.2) is served" \
    cat "$T_DIR/cap.out"
t_match '^reopen accepted$' "... and once one of the 3 closes, the address is served again" \
    cat "$T_DIR/cap.out"
t_eq "$(metric 'ldapdesk_connections_refused_total{limit="connections_per_address"}')" 1 \
    "GET /metrics counts the refusal by its limit"
t_match 'refused a connection \(\[limits\] connections_per_address reached: raise it if clients share one address.*\), from 127\.0\.0\.1' \
    "the daemon log names the limit, what to do and the address" cat "$T_DIR/ldapdeskd.log"
python3 "$LDAPDESK_SRC/tests/lib/conn_probe.py" hold "$LDAPDESK_URL" "$LDAPDESK_CA" 3 8 >"$T_DIR/hold.out" 2>&1 &
holder=$!
for _ in $(seq 50); do grep -q held "$T_DIR/hold.out" 2>/dev/null && break; sleep 0.1; done
t_match 'connections_per_address' "the CLI, over the limit, says which limit (not a TLS or CA problem)" \
    "$LDAPDESK" health
t_match '"error": *"busy"' "... and --json gives the error busy" "$LDAPDESK" --json health
kill "$holder" 2>/dev/null || :
wait "$holder" 2>/dev/null || :

# ---- slow clients --------------------------------------------------------------------------
probe loris >"$T_DIR/loris.out" 2>&1 || true
t_match '^closed after [2-9]\.[0-9] s' \
    "a head sent one byte every 0.5 s is cut within seconds of request_seconds = 2" \
    cat "$T_DIR/loris.out"
probe slowbody >"$T_DIR/slowbody.out" 2>&1 || true
t_match '^closed after [2-9]\.[0-9] s' "... and so is a body sent one byte every 0.5 s" \
    cat "$T_DIR/slowbody.out"
probe idle >"$T_DIR/idle.out" 2>&1 || true
t_match '^closed after [2-9]\.[0-9] s' "... and a connection that sends nothing" \
    cat "$T_DIR/idle.out"
t_eq "$(metric ldapdesk_connections_cut_total)" 3 "GET /metrics counts the 3 cut connections"
t_match 'closed a connection that sent no whole request within \[limits\] request_seconds, from 127\.0\.0\.1' \
    "the daemon log says why" cat "$T_DIR/ldapdeskd.log"
held_line=
for _ in $(seq 150); do
    held_line=$(grep 'request_seconds: [0-9]* more in the last 10 s' "$T_DIR/ldapdeskd.log" || :)
    [ -n "$held_line" ] && break
    sleep 0.1
done
t_match 'request_seconds: [12] more in the last 10 s' \
    "... logging the first, then the others as a count when the 10 s are over" printf '%s\n' "$held_line"
t_match '^statuses 200 200 200$' \
    "a kept-alive client idle 3 s between requests (over request_seconds) is served each time" \
    probe keepalive 3
as_op hd1
t_ok "the CLI works beside all this (login, status)" sh -c '"$LDAPDESK" login >/dev/null && "$LDAPDESK" status alice >/dev/null'

# ---- a client that pipelines requests and reads no reply --------------------------------------
# evhttp answers one request at a time: while a reply waits for the client to read it, what the
# client sends next piles up in the connection's input. That input is bounded: past it the
# daemon stops reading and the client's sends stall, instead of the daemon holding all of it.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
rss0=$(rss_kb)
python3 "$LDAPDESK_SRC/tests/lib/conn_probe.py" flood "$LDAPDESK_URL" "$LDAPDESK_CA" 20 6 \
    >"$T_DIR/flood.out" 2>&1 &
flood=$!
for _ in $(seq 300); do grep -q '^sent' "$T_DIR/flood.out" && break; sleep 0.1; done
rss1=$(rss_kb)
sent=$(sed -n 's/^sent \([0-9]*\) .*/\1/p' "$T_DIR/flood.out")
t_match '^sent [0-9]+ stalled$' "a client pipelining requests it never reads the replies of stalls" \
    cat "$T_DIR/flood.out"
# What it got out: the kernel's buffers (a few MB on loopback) and the daemon's bound (~1 MB);
# a daemon that kept reading takes the probe's whole 64 MiB.
t_ok "... after ${sent:-?} bytes, under 32 MiB" test "${sent:-99999999999}" -lt 33554432
# AddressSanitizer's quarantine holds what each answered request freed: RSS tells nothing there
# (the sanitize build, however it is run).
if ! grep -q asan "/proc/$DAEMON_PID/maps" 2>/dev/null; then
    t_ok "... and the daemon's memory hardly grew (RSS ${rss0} -> ${rss1} kB)" \
        test $((rss1 - rss0)) -lt 16384
fi
wait "$flood" || true
t_match '^statuses 200 200 200$' "the daemon serves others after it" probe keepalive 0

# ---- the total, and a reload -----------------------------------------------------------------
sed -i 's/^connections = 20$/connections = 4/; s/^connections_per_address = 3$/connections_per_address = 10/' \
    "$T_DIR/d.conf"
daemon_reload "$T_DIR/d.conf" || t_fail "ldapdeskd reloads"
probe cap 4 >"$T_DIR/cap4.out" 2>&1 || true
t_match '^held 4$' "after a reload to connections = 4: 4 connections are served" cat "$T_DIR/cap4.out"
t_match '^extra refused 503$' "... a 5th is answered 503 and closed" cat "$T_DIR/cap4.out"
t_match '^other refused 503$' "... from any address" cat "$T_DIR/cap4.out"
t_match '^reopen accepted$' "... until one closes" cat "$T_DIR/cap4.out"
t_eq "$(metric 'ldapdesk_connections_refused_total{limit="connections"}')" 2 \
    "GET /metrics counts both refusals at [limits] connections"
t_match '^ldapdesk_connections_open 1$' "... and the 1 connection open (its own)" \
    sh -c "curl -s --cacert '$LDAPDESK_CA' '$LDAPDESK_URL/metrics'"

# ---- the config ---------------------------------------------------------------------------
printf '[limits]\nconnections = 0\n' >"$T_DIR/bad.conf"
t_match 'bad\.conf:2.*connections' "-n refuses connections = 0 with FILE:LINE" \
    sh -c "'$LDAPDESKD' -n -c '$T_DIR/bad.conf' 2>&1"
daemon_stop
t_done
