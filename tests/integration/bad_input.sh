#!/bin/sh
# bad_input.sh — issue point 8: hostile names, bodies and tokens get a clear
# JSON error and change nothing.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init bad_input
t_start_slapd || { t_fail "slapd starts"; t_done; }
daemon_config "$T_DIR/d.conf"
# Sessions end after 5 s here (an expiry is tested below); under load a request can take over
# a second, so each request logs in afresh (api, fresh_token).
sed -i 's/^timezone = .*/&\nsession_ttl = 5/' "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
D=$LDAPDESK
as_op hd1
"$D" login >/dev/null
TOKEN=$(curl -s --cacert "$LDAPDESK_CA" -d '{"user":"hd1","password":"Op-Pass-2026"}' \
    "$LDAPDESK_URL/v1/login" | jq -r .token)
fresh_token() {
    curl -s --cacert "$LDAPDESK_CA" -d '{"user":"hd1","password":"Op-Pass-2026"}' \
        "$LDAPDESK_URL/v1/login" | jq -r .token
}
api() { # METHOD PATH [BODY] -> prints BODY then "CODE CONTENT-TYPE"; sessions last 5 s here
    [ "$TOKEN" = garbage ] || [ "$TOKEN" = keep ] || TOKEN=$(fresh_token)
    curl -s --cacert "$LDAPDESK_CA" -X "$1" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
        -w '\n%{http_code} %{content_type}\n' "$LDAPDESK_URL$2"
}
# ---- refused before any action ran: recorded too -------------------------------------------
# DESIGN: refused requests are attempts. Without a session (401) the caller is nobody known,
# so per address the first of a period is recorded in full and the rest counted into one
# summary per expiry tick (10 s); with a session, a body that cannot be read (400) is recorded.
q() { sqlite3 "$T_DIR/audit.db" "$1"; }
refused() { # ACTION TARGET: "operator|result|detail" of its refused attempts, newest last
    q "SELECT coalesce(a.operator, '-') || '|' || o.result || '|' || o.detail FROM records a
       JOIN records o ON o.attempt_id = a.id WHERE a.action = '$1' AND a.target = '$2' ORDER BY a.id"
}
t_match '^401$' "a reset without a token is 401" \
    curl -s --cacert "$LDAPDESK_CA" -X POST -w '\n%{http_code}\n' "$LDAPDESK_URL/v1/users/carol/reset"
t_match '^-\|denied\|missing, unknown, expired, idle or ended token' \
    "... recorded as a denied reset of carol by nobody known" refused reset carol
t_match '^401$' "a forged token right after is 401 too" \
    curl -s --cacert "$LDAPDESK_CA" -X POST -H 'Authorization: Bearer Zm9yZ2Vk.c2ln' \
    -w '\n%{http_code}\n' "$LDAPDESK_URL/v1/users/carol/unlock"
t_empty "... counted, not recorded one by one (same address, same period)" refused unlock carol
summary() { # LIKE: the detail of the throttle's summary matching LIKE, once the tick (10 s) wrote it
    for _ in $(seq 180); do
        _su=$(q "SELECT o.detail FROM records a JOIN records o ON o.attempt_id = a.id
            WHERE a.action = 'login' AND o.detail LIKE '$1'")
        [ -n "$_su" ] && break
        sleep 0.5
    done
    printf '%s\n' "$_su"
}
t_match '^1 more requests from this address without a valid session \(401\)' \
    "... and summed up in one denied record at the next tick" summary '%without a valid session%'
# The summing table holds 1,024 sources; past it, anonymous refusals are summed by kind (they
# were recorded one by one: 1,024 addresses holding the table let any other add a pair a request).
anon_from() { # FIRST COUNT: one GET without a token from each of COUNT loopback addresses
    python3 - "$LDAPDESK_PORT" "$LDAPDESK_CA" "$1" "$2" <<'PY'
import socket, ssl, sys
port, ca, first, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
codes = {}
for i in range(first, first + count):
    src = "127.1.%d.%d" % (i // 250, i % 250 + 1)
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0)) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(b"GET /v1/users/alice HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            code = s.recv(64).split(b" ")[1].decode()
            codes[code] = codes.get(code, 0) + 1
print(" ".join("%s:%d" % kv for kv in sorted(codes.items())))
PY
}
n0=$(q "SELECT count(*) FROM records")
t_eq "$(anon_from 0 1024)" "401:1024" "1,024 addresses without a token are 401"
n1=$(q "SELECT count(*) FROM records")
t_eq "$(anon_from 1024 100)" "401:100" "... and 100 more addresses past the table's 1,024"
n2=$(q "SELECT count(*) FROM records")
t_match '^[0-9]+$' "the records were counted" printf '%s\n' "$n2"
t_ok "... the 100 past the table add at most 8 records (a pair each before: 200)" \
    test $((n2 - n1)) -le 8
t_ok "... while the first 1,024 were recorded, at most a pair each" test $((n1 - n0)) -le 2048
t_match '^[0-9]+ more refused \(401 or 400\) from addresses without a valid session past the 1024' \
    "... summed in one denied record at the next tick" summary '%past the 1024 followed one by one%'
TOKEN=$(fresh_token)
t_match '"error":"bad_json"' "hd1's reset with a body that is not JSON is 400 bad_json" \
    api POST /v1/users/carol/reset 'not json'
t_match '^hd1\|failed\|the body must be a JSON object' "... recorded as hd1's failed reset of carol" \
    refused reset carol
t_match '"error":"bad_request"' "hd1's unlock with a number for ticket is 400" \
    api POST /v1/users/carol/unlock '{"ticket":5}'
t_match '^hd1\|failed\|a field has the wrong type' "... recorded as hd1's failed unlock" \
    refused unlock carol
login_code() { # BODY -> HTTP code
    curl -s --cacert "$LDAPDESK_CA" -o /dev/null -w '%{http_code}' -d "$1" "$LDAPDESK_URL/v1/login"
}
logins_by() { q "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'login' AND a.operator = '$1' AND o.result = 'denied'"; }
n=$(logins_by hd2)
t_eq "$(login_code '{"user":"hd2","password":""}')" 401 "a login with an empty password is 401"
t_eq "$(login_code '{"user":"hd2"}')" 401 "... and one with no password"
t_eq "$(logins_by hd2)" $((n + 2)) "... both recorded as denied logins of hd2 (the operator is named)"
ADM=$(curl -s --cacert "$LDAPDESK_CA" -d '{"user":"adm1","password":"Op-Pass-2026"}' \
    "$LDAPDESK_URL/v1/login" | jq -r .token)
decide() { # TOKEN ID -> body, then code
    curl -s --cacert "$LDAPDESK_CA" -X POST -H "Authorization: Bearer $1" -d '{}' \
        -w '\n%{http_code}\n' "$LDAPDESK_URL/v1/requests/$2/approve"
}
t_match '^404$' "approving request 'abc' is 404 (no such request), as a name that is no uid" \
    decide "$ADM" abc
t_match '"error":"no_such_request"' "... no_such_request" printf '%s\n' "$T_OUT"
t_eq "$(q "SELECT coalesce(a.request_id, 'null') || '|' || o.result FROM records a
    JOIN records o ON o.attempt_id = a.id WHERE a.action = 'approve' ORDER BY a.id DESC LIMIT 1")" \
    'null|failed' "... recorded without a request id (was -1)"
t_match '^403$' "... and 403 to a helpdesk operator (the role first)" decide "$(fresh_token)" -1
# alice is locked first, so an unlock that a hostile name let through would show.
t_ok "alice is locked before the hostile requests" ldap_lock_user alice
alice_lock=$(ldap_attr alice pwdAccountLockedTime)
before=$(sqlite3 "$T_DIR/audit.db" "SELECT coalesce(max(id), 0) FROM records")

for name in '*' 'a*' 'al*ce' '(uid=*)' 'alice)(uid=*' 'alice\' 'alice,ou=x' 'uid=alice' 'alice+cn=x' '.' '..'; do
    t_exit 5 "status '$name' is no such user (exit 5)" "$D" status "$name"
    t_exit 5 "unlock '$name' is no such user (exit 5)" "$D" unlock "$name"
done
t_match '^404 application/json' "a NUL in the name is 404 JSON" api GET /v1/users/alice%00x
t_match '^404 application/json' "an encoded star is 404" api POST /v1/users/%2A/unlock '{}'
t_match '^404 application/json' "a name that is not UTF-8 (%FF) is 404 (was 500 'out of memory')" \
    api POST /v1/users/%FF/unlock '{}'
t_match '"error":"no_such_user"' "... no_such_user" printf '%s\n' "$T_OUT"
t_eq "$(q "SELECT a.target || '|' || o.result FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'unlock' ORDER BY a.id DESC LIMIT 1")" '%ff|failed' "... recorded, the name as it was sent (in lower case, as uids are)"
t_match '^404 application/json' "... and so is one with a bad sequence inside (a%D0ice)" api GET /v1/users/a%D0ice
long=$(head -c 2000 /dev/zero | tr '\0' a)
t_match '^404 application/json' "a name too long to be a uid (2,000 bytes) is 404, not 400" api GET "/v1/users/$long"
t_match '"error":"no_such_user"' "... no_such_user" printf '%s\n' "$T_OUT"
t_match '^404 ' "... also on an unlock" api POST "/v1/users/$long/unlock" '{}'
t_eq "$(q "SELECT a.target FROM records a WHERE a.action = 'unlock' AND a.kind = 'attempt' ORDER BY a.id DESC LIMIT 1")" \
    "$(head -c 64 /dev/zero | tr '\0' a)…" "... recorded with the name cut to 64 bytes and marked …"
t_match '^400 application/json' "an audit filter holding a NUL (user=%00) is 400, not the whole log" \
    api GET "/v1/audit?user=%00"
t_match '^400 application/json' "a misspelt audit filter (operater=) is 400, not the whole log" \
    api GET "/v1/audit?operater=adm1"
t_match 'unknown query parameter \\"operater\\": use from, to, user, operator' "... naming it and the keys there are" \
    printf '%s\n' "$T_OUT"
t_match '^400 ' "an audit filter given twice (user=a&user=b) is 400, not the first one only" \
    api GET "/v1/audit?user=alice&user=bob"
t_match 'query parameter \\"user\\" is given twice' "... saying so" printf '%s\n' "$T_OUT"
t_match '^400 ' "an empty audit filter (operator=, a script's unset variable) is 400, not the whole log" \
    api GET "/v1/audit?operator=&limit=3"
t_match 'query parameter \\"operator\\" is empty: give it a value, or leave it out' "... saying so" \
    printf '%s\n' "$T_OUT"
t_match '^400 ' "... of a report too (department=)" \
    api GET "/v1/report?from=2026-01-01&to=2026-01-31&department="
t_exit 2 "the client's log --operator '' is a bad request (exit 2), not every event" \
    env LDAPDESK_USER=aud1 "$LDAPDESK" log --operator ''
t_match 'is empty: give it a value' "... saying the filter is empty" printf '%s\n' "$T_OUT"
t_match '^400 ' "so is an unknown key of a report" api GET "/v1/report?from=2026-01-01&to=2026-01-31&fmt=csv"
t_match '^400 ' "... and of verify" api GET "/v1/verify?head=1"
aud_tok=$(curl -s --cacert "$LDAPDESK_CA" -d '{"user":"aud1","password":"Op-Pass-2026"}' "$LDAPDESK_URL/v1/login" | jq -r .token)
t_match '^400$' "a key without '=' is 400 for an auditor's verify (libevent drops the whole query: it verified all)" \
    curl -s -o /dev/null -w '%{http_code}\n' --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $aud_tok" \
    "$LDAPDESK_URL/v1/verify?since=1:$(printf '%064d' 0)&x"
t_match '^400 ' "... and for a report (it said 'from and to are required')" \
    api GET "/v1/report?from=2026-01-01&to=2026-01-31&x"
t_match 'malformed query string' "... saying so" printf '%s\n' "$T_OUT"
t_match '^403 ' "the keys DESIGN gives pass the query check (then 403: hd1 is helpdesk)" api GET "/v1/audit?from=2026-01-01&to=2026-01-02&user=alice&operator=adm1&action=unlock&category=unlock-reset&department=x&result=ok&limit=5&after=0&format=json"
for id in '+1' '%201' '1%20' '99999999999999999999'; do
    adm_tok=$(curl -s --cacert "$LDAPDESK_CA" -d '{"user":"adm1","password":"Op-Pass-2026"}' "$LDAPDESK_URL/v1/login" | jq -r .token)
    t_match '"error":"no_such_request".*whole numbers from 1' "request id '$id' is no request id (404), not read as another" \
        curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $adm_tok" -d '{}' "$LDAPDESK_URL/v1/requests/$id/approve"
done
t_match '"error":"bad_json"' "malformed JSON is 400 bad_json" api POST /v1/users/alice/unlock '{"ticket":'
t_match '^400 application/json' "malformed JSON answers 400" api POST /v1/users/alice/unlock '{"ticket":'
t_match '^400 ' "a JSON array body is 400" api POST /v1/users/alice/unlock '[1,2]'
t_match '^400 ' "a number where text belongs is 400" api POST /v1/users/alice/unlock '{"ticket":5}'
t_match '^400 ' "a bad channel is 400" api POST /v1/users/alice/unlock '{"channel":"fax"}'
big=$(head -c 70000 /dev/zero | tr '\0' 'x')
t_match '^413 application/json' "a body over 64 KiB is 413 JSON" api POST /v1/users/alice/unlock "{\"note\":\"$big\"}"
t_match '"error":"too_large"' "the 413 body names the error" api POST /v1/users/alice/unlock "{\"note\":\"$big\"}"
t_nomatch '<HTML|<html' "no HTML error page" api POST /v1/users/alice/unlock "{\"note\":\"$big\"}"
# The front refuses such bodies before the API reads them; with a good session the refusal is
# still hd1's refused attempt of the action, recorded (an action refused is an action logged).
t_eq "$(refused unlock alice | grep -c '^hd1|failed|the request body is over 64 KiB')" 3 \
    "... and each of the 3 is recorded as hd1's failed unlock of alice, saying why"
chunked() { # TOKEN: a chunked reset of alice; prints the status line and the body
    curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $1" -H 'Transfer-Encoding: chunked' \
        -H 'Content-Type: application/json' --data-binary '{}' -w '\n%{http_code}\n' \
        "$LDAPDESK_URL/v1/users/alice/reset"
}
t_match '^411$' "a chunked reset with hd1's token is 411" chunked "$(fresh_token)"
t_match '"error":"length_required"' "... naming the error" printf '%s\n' "$T_OUT"
t_match '^hd1\|failed\|send the body with Content-Length, not chunked' "... recorded as hd1's failed reset" \
    sh -c "sqlite3 '$T_DIR/audit.db' \"SELECT a.operator || '|' || o.result || '|' || o.detail FROM records a
        JOIN records o ON o.attempt_id = a.id WHERE a.action = 'reset' AND a.target = 'alice' ORDER BY a.id DESC LIMIT 1\""
nonlogin() { sqlite3 "$T_DIR/audit.db" "SELECT count(*) FROM records WHERE action <> 'login'"; }
before=$(nonlogin)
t_match '^411$' "without a good token it is 411 as well" chunked garbage
t_match '^413 ' "... and an oversized body 413" sh -c 'TOKEN=garbage; curl -s --cacert "$LDAPDESK_CA" \
    -H "Authorization: Bearer garbage" --data-binary "{\"note\":\"$0\"}" -w "\n%{http_code} \n" \
    "$LDAPDESK_URL/v1/users/alice/unlock"' "$big"
sleep 1
t_eq "$(nonlogin)" "$before" "... neither recorded: no session, no operator to record (as before)"
t_match '"message":"' "a failed login never echoes the body" \
    curl -s --cacert "$LDAPDESK_CA" --data-binary '{"user":"hd1","password":"SECRET-123' "$LDAPDESK_URL/v1/login"
t_nomatch 'SECRET-123' "the parser's text (with the password) is not echoed" \
    curl -s --cacert "$LDAPDESK_CA" --data-binary '{"user":"hd1","password":"SECRET-123' "$LDAPDESK_URL/v1/login"
long=$(head -c 2000 /dev/zero | tr '\0' 'q')
t_match '^400 application/json' "a 2,000-byte permission is 400" \
    api POST /v1/users/alice/grants "{\"permission\":\"$long\",\"days\":1}"
t_match '"message":"permission is longer than 1024 bytes' "the 400 names the field" \
    api POST /v1/users/alice/grants "{\"permission\":\"$long\",\"days\":1}"
t_match '"message":"user is longer than 1024 bytes' "a 2,000-byte login name is 400, naming the body's field (user, not target)" \
    curl -s --cacert "$LDAPDESK_CA" -d "{\"user\":\"$long\",\"password\":\"x\"}" "$LDAPDESK_URL/v1/login"
t_match '^400 application/json' "a 2,000-byte category is 400" \
    api POST /v1/events "{\"category\":\"$long\",\"description\":\"x\"}"
t_absent "$(printf '%s' "$long" | head -c 1025)" "no over-long field reached the audit database" \
    "$T_DIR/audit.db" "$T_DIR/audit.db-wal"
# A head sent in two pieces (the Content-Length after the request line) and a large request
# pipelined behind a small one: both are refused at once (413 JSON) instead of evhttp reading
# up to 32 MiB of body before anyone checked the request.
tls_raw() { # feeds stdin to the daemon over TLS for at most 5 s; prints what comes back
    timeout 5 openssl s_client -quiet -connect "127.0.0.1:$LDAPDESK_PORT" -CAfile "$LDAPDESK_CA" \
        2>/dev/null || true
}
split_head() {
    {
        printf 'POST /v1/users/alice/unlock HTTP/1.1\r\nHost: x\r\n'
        sleep 1
        printf 'Content-Type: application/json\r\nContent-Length: 30000000\r\n\r\n'
        sleep 1.5
    } | tls_raw
}
pipelined() {
    {
        printf 'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n'
        printf 'POST /v1/users/alice/unlock HTTP/1.1\r\nHost: x\r\nContent-Length: 30000000\r\n\r\n'
        sleep 1.5
    } | tls_raw
}
head_then_get() { # a HEAD and a GET on one kept-alive connection
    {
        printf 'HEAD /v1/health HTTP/1.1\r\nHost: x\r\n\r\n'
        printf 'GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
        sleep 1
    } | tls_raw | tr -d '\r'
}
folded_head() { # the length arrives as a folded continuation of an empty Content-Length
    {
        printf 'POST /v1/users/alice/unlock HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n'
        sleep 1
        printf ' 30000000\r\n\r\n'
        sleep 1.5
    } | tls_raw
}
padded_head() { # the length hidden behind 17 KiB of header in the second piece
    {
        printf 'POST /v1/users/alice/unlock HTTP/1.1\r\nHost: x\r\n'
        sleep 1
        printf 'X-Pad: %s\r\nContent-Length: 30000000\r\n\r\n' "$(head -c 17000 /dev/zero | tr '\0' a)"
        sleep 1.5
    } | tls_raw
}
t_match '^HTTP/1.1 4[0-9][0-9]' "a length folded onto an empty Content-Length is refused at once" folded_head
t_match '"error":"headers_too_large"' "a length behind 17 KiB of header in a second piece is refused at once" padded_head
# Head lines that arrive after the request line (a client writing its head in pieces) get the
# same checks as those arriving with it: JSON, never evhttp's HTML page.
refused_in_json() { # SENDER PLACE CASE: CASE is REQUEST|CODE|ERROR|WHAT, sent by SENDER; the
    # status, the JSON error and no HTML page are checked, titled "WHAT PLACE is CODE"
    _req=${3%%|*} _rest=${3#*|}
    _code=${_rest%%|*} _rest=${_rest#*|}
    _err=${_rest%%|*} _what=${_rest#*|}
    t_match "^HTTP/1.1 $_code " "$_what$2 is $_code" "$1" "$_req"
    t_match "\"error\":\"$_err\"" "... with the JSON error $_err" printf '%s\n' "$T_OUT"
    t_nomatch '(text/html|<HTML>)' "... and no HTML" printf '%s\n' "$T_OUT"
}
late_line() { # PRINTF-FORMAT: head lines sent 0.4 s after the request line
    {
        printf 'POST /v1/login HTTP/1.1\r\nHost: x\r\n'
        sleep 0.4
        printf "$1"
        sleep 1
    } | tls_raw | tr -d '\r'
}
for case in 'NoColonHere\r\n\r\n|400|bad_request|a header line without a colon' \
    'Content-Length: abc\r\n\r\n|400|bad_request|Content-Length abc' \
    ' folded\r\n\r\n|400|bad_request|a folded line' \
    'Expect: magic\r\nContent-Length: 2\r\n\r\n{}|417|expectation_failed|Expect: magic' \
    'Transfer-Encoding: chunked\r\n\r\n|411|length_required|Transfer-Encoding'; do
    refused_in_json late_line " in a later piece of the head" "$case"
done
t_match '"error":"bad_json"' "a header name with a blank in a later piece is a header (the login's body is what is wrong)" \
    late_line 'Bad Name: x\r\nContent-Length: 2\r\n\r\n{]'
t_nomatch '(text/html|<HTML>)' "... and no HTML" printf '%s\n' "$T_OUT"
two_pieces() { # PRINTF-FORMAT PRINTF-FORMAT: a head's first piece, then (0.4 s later) the rest
    {
        printf "$1"
        sleep 0.4
        printf "$2"
        sleep 1
    } | tls_raw | tr -d '\r'
}
t_match '"error":"too_large"' "a later piece whose first line looks like a request line is still checked (413)" \
    two_pieces 'POST /v1/import HTTP/1.1\r\nHost: x\r\n' 'GET http://a:1/ HTTP/1.1\r\nContent-Length: 5000000\r\n\r\n'
t_match '^HTTP/1.1 400 .*' "a request line in a later piece of a head is a bad header line (400)" \
    two_pieces 'GET /v1/health HTTP/1.1\r\nHost: x\r\n' 'GET / HTTP/1.1\r\n\r\n'
t_nomatch '(text/html|<HTML>)' "... in JSON" printf '%s\n' "$T_OUT"
t_match '^HTTP/1.1 417 ' "a head cut after an earlier piece gave Content-Length is answered at once (417)" \
    two_pieces 'POST /v1/login HTTP/1.1\r\nContent-Length: 5\r\n' 'Expect: magic\r\n\r\nhello'
big_split() { # TOKEN PATH LENGTH: a head in two pieces announcing LENGTH, then the body
    {
        printf 'POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %s\r\n' "$2" "$1" "$3"
        sleep 0.4
        printf 'X-A: b\r\n\r\n'
        head -c "$3" /dev/zero | tr '\0' a
        sleep 1
    } | tls_raw | tr -d '\r'
}
t_match '"error":"too_large"' "a 100 KB login whose head came in two pieces is refused 413 in JSON" \
    big_split none /v1/login 100000
t_nomatch '(text/html|<HTML>)' "... never evhttp's HTML" printf '%s\n' "$T_OUT"
adm_token=$(curl -s --cacert "$LDAPDESK_CA" -d '{"user":"adm1","password":"Op-Pass-2026"}' \
    "$LDAPDESK_URL/v1/login" | jq -r .token)
t_match '"error":"bad_request"' "an admin's 200 KB import whose head came in two pieces reaches the import (not CSV: 400)" \
    big_split "$adm_token" /v1/import 200000
cut_then_more() { # a head cut short in its second piece, and a request sent after the answer
    {
        printf 'POST /v1/login HTTP/1.1\r\nConnection: keep-alive\r\n'
        sleep 0.4
        printf 'Transfer-Encoding: chunked\r\n\r\n'
        sleep 0.4
        printf 'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n'
        sleep 1
    } | tls_raw | tr -d '\r'
}
t_eq "$(cut_then_more | grep -c '^HTTP/1.1 ')" 1 \
    "a head cut short is closed after its answer, keep-alive asked or not (nothing after it is run)"
many_pieces() { # COUNT: a health check whose head comes in COUNT pieces of a 10,000-byte line
    {
        printf 'GET /v1/health HTTP/1.1\r\nHost: x\r\n'
        i=0
        while [ "$i" -lt "$1" ]; do
            printf 'X-Pad-%d: %s\r\n' "$i" "$(head -c 10000 /dev/zero | tr '\0' a)"
            sleep 0.2
            i=$((i + 1))
        done
        printf 'Connection: close\r\n\r\n'
        sleep 1
    } | tls_raw | tr -d '\r'
}
t_match '^HTTP/1.1 431 ' "a head over 64 KiB sent in 10 KB pieces is refused 431" many_pieces 8
t_match '"error":"headers_too_large"' "... in JSON (evhttp's own refusal is HTML)" printf '%s\n' "$T_OUT"
t_match '^HTTP/1.1 200 ' "a 50 KB head in 10 KB pieces is answered" many_pieces 5
small_pieces() { # a head of 40 short lines, each in its own piece
    {
        printf 'GET /v1/health HTTP/1.1\r\n'
        i=0
        while [ "$i" -lt 40 ]; do
            printf 'X-Line-%d: %d\r\n' "$i" "$i"
            sleep 0.05
            i=$((i + 1))
        done
        printf 'Connection: close\r\n\r\n'
        sleep 1
    } | tls_raw | tr -d '\r'
}
t_match '^HTTP/1.1 200 ' "a head of 40 lines sent one line at a time is answered" small_pieces
# Many tiny header lines: evhttp makes three allocations a line, so 64 KiB of "a:" lines held
# ~27 times their size; at most 100 lines (Apache's LimitRequestFields) are taken.
tiny_lines() { # COUNT [PIECES]: a health check of COUNT header lines, most "a:", in 1 or 2 pieces
    {
        printf 'GET /v1/health HTTP/1.1\r\nHost: x\r\n'
        i=3
        while [ "$i" -le "$1" ]; do
            printf 'a:\r\n'
            [ "${2:-1}" = 1 ] || [ "$i" != $(($1 / 2)) ] || sleep 0.4
            i=$((i + 1))
        done
        printf 'Connection: close\r\n\r\n'
        sleep 1
    } | tls_raw | tr -d '\r'
}
t_match '^HTTP/1.1 200 ' "a head of 100 header lines is answered" tiny_lines 100
t_match '^HTTP/1.1 431 ' "a head of 101 header lines is refused 431" tiny_lines 101
t_match '"error":"headers_too_large"' "... in JSON" printf '%s\n' "$T_OUT"
t_match '^HTTP/1.1 431 ' "... also when its lines come in two pieces" tiny_lines 101 2
t_match '^HTTP/1.1 200 ' "... and 100 in two pieces are answered" tiny_lines 100 2
t_match '^HTTP/1.1 413' "a head in two pieces announcing 30 MB is refused 413 at once" split_head
t_match '"error":"too_large"' "... with the JSON error" printf '%s\n' "$T_OUT"
t_match 'HTTP/1.1 413.*' "a 30 MB request pipelined behind a small one is refused 413 at once" pipelined
t_eq "$(printf '%s\n' "$T_OUT" | grep -o '^HTTP/1.1 200\|HTTP/1.1 413\|"error":"too_large"' | tr '\n' ' ')" \
    'HTTP/1.1 200 HTTP/1.1 413 "error":"too_large" ' "... after the small one was answered, with the JSON error"
# A body on a method that takes none: evhttp read it too (up to 32 MiB, no token asked, held in
# memory), and answered a larger one with its HTML page.
announce() { # METHOD LENGTH: a head announcing a body of LENGTH bytes, none of it sent
    { printf '%s /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n' "$1" "$2"; sleep 1; } |
        tls_raw | tr -d '\r'
}
t_match '^HTTP/1.1 413' "a GET announcing a 30 MB body is refused 413 at once" announce GET 30000000
t_match '"error":"too_large"' "... in JSON" printf '%s\n' "$T_OUT"
t_match '^HTTP/1.1 413' "so is a DELETE announcing 2 MB" announce DELETE 2000000
t_match '"error":"too_large"' "an OPTIONS announcing 40 MB gets the JSON error (evhttp's was HTML)" \
    announce OPTIONS 40000000
head_then_get >"$T_DIR/head.out"
t_eq "$(grep -c '^HTTP/1.1 200 ' "$T_DIR/head.out")" 2 "a HEAD and the GET behind it on one connection are answered 200 each"
t_eq "$(grep -c '"status"' "$T_DIR/head.out")" 1 \
    "HEAD sends no body (only the GET behind it on the same connection has one)"
reply_len() { # N: the Content-Length of the Nth reply in head.out
    awk -v want="$1" '/^HTTP\/1\.1 / { n++ } n == want && tolower($1) == "content-length:" { print $2 }' \
        "$T_DIR/head.out"
}
# (the body ends without a newline: lines are joined back with one between them)
t_eq "$(awk '/^HTTP\/1\.1 / { n++; head = 1; next } n == 2 && head && $0 == "" { head = 0; next }
    n == 2 && !head { printf "%s%s", sep, $0; sep = "\n" }' "$T_DIR/head.out" | wc -c)" "$(reply_len 2)" \
    "the GET's Content-Length is its body's length"
t_eq "$(reply_len 1)" "$(reply_len 2)" "HEAD says the length GET has"
# What evhttp 2.1 would answer with its own HTML page (DESIGN: never) is answered in JSON:
# an unknown method, a request line or header it cannot parse, a length that is no number.
raw_req() { printf "$1" | tls_raw | tr -d '\r'; } # PRINTF-FORMAT: one raw request
for case in 'FOO /v1/health HTTP/1.1\r\nHost: x\r\n\r\n|405|method_not_allowed|an unknown method' \
    'get /v1/health HTTP/1.1\r\nHost: x\r\n\r\n|405|method_not_allowed|a method in lower case' \
    'CONNECT x:1 HTTP/1.1\r\nHost: x\r\n\r\n|405|method_not_allowed|CONNECT' \
    'GARBAGE\r\n\r\n|400|bad_request|a request line without target and version' \
    'GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n|400|bad_request|HTTP/9.9' \
    'GET /v1/health HTTP/1.199999999999999999\r\nHost: x\r\n\r\n|400|bad_request|a minor version of 18 digits (was answered HTTP/1.-1)' \
    'GET /v1/health HTTP/1.1\r\nNoColonHere\r\n\r\n|400|bad_request|a header line without a colon' \
    'GET /v1/health HTTP/1.1\r\n Folded: x\r\n\r\n|400|bad_request|a folded first header line' \
    'POST /v1/login HTTP/1.1\r\nContent-Length: abc\r\n\r\n|400|bad_request|Content-Length abc' \
    'POST /v1/login HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}|400|bad_request|two Content-Lengths that differ' \
    'GET /v1/health HTTP/1.1\r\nX-Ldapdesk-Refused: /.ldapdesk/zzz\r\n\r\n|400|bad_request|the header marking cut heads, sent by a client' \
    'POST /v1/login HTTP/1.1\r\nExpect: magic\r\nContent-Length: 2\r\n\r\n{}|417|expectation_failed|Expect: magic'; do
    refused_in_json raw_req "" "$case"
done
t_match '^HTTP/1.1 413 ' "a 100 KB body announced with Expect: 100-continue is refused 413 at once" \
    raw_req 'POST /v1/users/alice/unlock HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n'
t_nomatch '100 Continue' "... without first inviting the upload (no 100 Continue)" printf '%s\n' "$T_OUT"
t_match 'HTTP/1.1 400 ' "a request line with no target between two blanks is 400 JSON" \
    raw_req 'GET  HTTP/1.10\r\nHost: x\r\n\r\n'
t_eq "$(raw_req 'HEAD /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 35\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n' |
    grep -c '^HTTP/1.1 ')" 1 "a body sent with HEAD is never run as a request (one reply, then closed)"
body_in_pieces() { # a small request, then a login whose body comes later, in pieces
    {
        printf 'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n'
        sleep 0.5
        printf 'POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 43\r\n\r\n'
        sleep 0.5
        printf 'FOO / HTTP/1.1\r\nNoColonHere\r\n\r\n'
        sleep 0.5
        printf '{"user":"x"}'
        sleep 1
    } | tls_raw | tr -d '\r'
}
t_match '"error":"bad_json"' "body bytes that look like a bad request line are read as the body" body_in_pieces
t_eq "$(printf '%s\n' "$T_OUT" | grep -o 'HTTP/1.1 [0-9][0-9]*' | tr '\n' ' ')" 'HTTP/1.1 200 HTTP/1.1 400 ' \
    "... of the second request on a kept-alive connection (200, then 400 bad_json)"
t_match 'HTTP/1.1 405 ' "an unknown method pipelined behind a request is 405" \
    raw_req 'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\nFOO / HTTP/1.1\r\nHost: x\r\n\r\n'
t_eq "$(printf '%s\n' "$T_OUT" | grep -o 'HTTP/1.1 [0-9][0-9]*\|"error":"[a-z_]*"' | tr '\n' ' ')" \
    'HTTP/1.1 200 HTTP/1.1 405 "error":"method_not_allowed" ' "... after the first is answered, in JSON"
# An import's body (up to 32 MiB) is read only for an administrator: the head is refused
# before the body is sent, so nobody else can make the daemon buffer it.
import_head() { # [TOKEN]: the head of a 10 MB import, no body
    {
        printf 'POST /v1/import HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n'
        [ -z "${1:-}" ] || printf 'Authorization: Bearer %s\r\n' "$1"
        printf 'Content-Length: 10000000\r\n\r\n'
        sleep 1.5
    } | tls_raw
}
t_match '"error":"unauthenticated"' "a 10 MB import without a session is refused 401 before its body" import_head
imports_denied() {
    sqlite3 "$T_DIR/audit.db" "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
        WHERE a.action = 'import' AND a.operator = 'hd1' AND o.result = 'denied'"
}
denied_before=$(imports_denied)
t_match '"error":"forbidden"' "... and with a helpdesk session 403" import_head "$(fresh_token)"
t_eq "$(imports_denied)" $((denied_before + 1)) \
    "... recorded as a denied import by hd1, as a small one is (its body never read)"
# An import the front refuses for its body (chunked, over 32 MiB) is recorded as well.
imports_failed() {
    sqlite3 "$T_DIR/audit.db" "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
        WHERE a.action = 'import' AND a.operator = 'adm1' AND o.result = 'failed'
        AND o.detail LIKE 'send the body with Content-Length%'"
}
adm_token=$(curl -s --cacert "$LDAPDESK_CA" -d "{\"user\":\"adm1\",\"password\":\"$LDAP_OP_PW\"}" \
    "$LDAPDESK_URL/v1/login" | jq -r .token)
failed_before=$(imports_failed)
t_match '^411$' "a chunked import with adm1's token is 411" curl -s --cacert "$LDAPDESK_CA" -o /dev/null \
    -w '%{http_code}\n' -H "Authorization: Bearer $adm_token" -H 'Transfer-Encoding: chunked' \
    -H 'Content-Type: text/csv' --data-binary 'a,b' "$LDAPDESK_URL/v1/import"
t_eq "$(imports_failed)" $((failed_before + 1)) "... recorded as adm1's failed import, saying why"
t_match '^401$' "a missing token is 401" curl -s --cacert "$LDAPDESK_CA" -w '\n%{http_code}\n' "$LDAPDESK_URL/v1/users/alice"
TOKEN=garbage
t_match '^401 application/json' "a garbage token is 401" api GET /v1/users/alice
TOKEN=$(fresh_token)
saved=$TOKEN
t_match '^200 ' "a fresh token works" curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $saved" \
    -w '\n%{http_code} %{content_type}\n' "$LDAPDESK_URL/v1/users/alice"
sleep 6
t_match '^401 application/json' "an expired token is 401 (session_ttl = 5 s)" curl -s --cacert "$LDAPDESK_CA" \
    -H "Authorization: Bearer $saved" -w '\n%{http_code} %{content_type}\n' "$LDAPDESK_URL/v1/users/alice"
TOKEN=
t_exit 5 "an unknown permission is 404" env LDAPDESK_USER=adm1 "$D" grant alice nope
t_match '^404 application/json' "an unknown route is 404 JSON" api GET /v1/nothing
t_eq "$(ldap_attr alice pwdAccountLockedTime)" "$alice_lock" "alice is still locked: nothing changed in the directory"
# Hostile names are stored as typed ('alice)(uid=*'), not as 'alice': every unlock or reset
# attempt made here, whatever its target, must have a refusal for its outcome.
since="FROM records a WHERE a.kind = 'attempt' AND a.id > $before AND a.action IN ('unlock', 'reset')"
t_ok "the hostile unlocks are in the audit as attempts" \
    test "$(sqlite3 "$T_DIR/audit.db" "SELECT count(*) $since")" -ge 9
t_eq "$(sqlite3 "$T_DIR/audit.db" "SELECT count(*) $since AND NOT EXISTS (SELECT 1 FROM records o
    WHERE o.kind = 'outcome' AND o.attempt_id = a.id AND o.result IN ('failed', 'denied'))")" 0 \
    "every one of them was refused (failed or denied)"
# Raw bytes that are not UTF-8 in a path or query (not percent-encoded): the same answers as
# their encoded form, in JSON, and each refusal is recorded (a record is UTF-8: such a name is
# kept percent-encoded).
raw_as_adm() { # METHOD TARGET(printf format): one request as adm1 (logged in afresh)
    adm_tok=$(curl -s --cacert "$LDAPDESK_CA" -d '{"user":"adm1","password":"Op-Pass-2026"}' "$LDAPDESK_URL/v1/login" | jq -r .token)
    raw_req "$1 $2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $adm_tok\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
}
t_match '^HTTP/1.1 404 ' "GET /v1/users/al<FF>ice (a raw byte) is 404" raw_as_adm GET '/v1/users/al\377ice'
t_match '"error":"no_such_user"' "... no_such_user, in JSON" printf '%s\n' "$T_OUT"
t_match '^HTTP/1.1 404 .*' "a reset of ivan<FF> is 404" raw_as_adm POST '/v1/users/ivan\377/reset'
t_eq "$(q "SELECT a.target || ' ' || o.result FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action IN ('status', 'reset') AND a.target IN ('al%ffice', 'ivan%ff') ORDER BY a.id")" \
    "$(printf 'al%%ffice failed\nivan%%ff failed')" "... both recorded, the names percent-encoded"
t_match '^HTTP/1.1 400 ' "a log filter operator=<FF> is 400" raw_as_adm GET '/v1/audit?operator=\377'
t_match '"error":"bad_request","message":"the query string is not valid UTF-8' "... saying so, in JSON" \
    printf '%s\n' "$T_OUT"
t_match '^HTTP/1.1 400 ' "... and so is a key with such a byte" raw_as_adm GET '/v1/audit?oper\377ator=x'
t_nomatch 'cannot record' "no refusal went unrecorded" cat "$T_DIR/ldapdeskd.log"
daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0 on SIGTERM"
t_done
