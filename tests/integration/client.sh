#!/bin/sh
# client.sh — the CLI's own choices end to end: whose password $LDAPDESK_PASSWORD is, where and
# under which name a session is cached, which --url it takes, which command lines are usage
# errors (exit 2) before anything is sent.
set -eu
# The CLI keeps its leak check under the sanitizers here (harness.sh, _t_client_leaks).
T_CLIENT_LEAKS=1
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init client
t_start_slapd || { t_fail "slapd starts"; t_done; }
daemon_config "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
D=$LDAPDESK
DB=$T_DIR/audit.db
q() { sqlite3 "$DB" "$1"; }
logins() { q "SELECT count(*) FROM records WHERE kind = 'attempt' AND action = 'login' AND operator = '$1'"; }
sessions() { find "$XDG_CACHE_HOME/ldapdesk" -name '*.session' | sort; }

# ---- $LDAPDESK_PASSWORD is $LDAPDESK_USER's ------------------------------------------------------
# Sent as another operator's, it would be a failed login toward that operator's lockout.
as_op hd1
t_exit 2 "login --user adm1 with hd1's LDAPDESK_PASSWORD and no terminal is a usage error" \
    setsid -w "$D" login --user adm1
t_match "only for LDAPDESK_USER=hd1, not for --user adm1: use --password-file" \
    "... saying whose password it is and to use --password-file or the prompt" printf '%s\n' "$T_OUT"
t_eq "$(logins adm1)" 0 "... and nothing was sent: no login attempt of adm1"
# With LDAPDESK_USER unset, LDAPDESK_PASSWORD is the password of whoever logs in (DESIGN), as
# ./dev demo uses it: login --user hd1.
t_match "^logged in as hd2 " "with LDAPDESK_USER unset, login --user hd2 takes LDAPDESK_PASSWORD" \
    env -u LDAPDESK_USER setsid -w "$D" login --user hd2
printf '%s\n' "$LDAP_OP_PW" >"$T_DIR/adm1.pw"
t_match "^logged in as adm1 " "--password-file logs adm1 in beside hd1's environment" \
    "$D" login --user adm1 --password-file "$T_DIR/adm1.pw"
printf '%s\nsecond line\n' "$LDAP_OP_PW" >"$T_DIR/two.pw"
fails=$(q "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'login' AND a.operator = 'adm1' AND o.result = 'denied'")
t_exit 2 "a password file of two lines is refused before anything is sent (exit 2)" \
    "$D" login --user adm1 --password-file "$T_DIR/two.pw"
t_match "holds no usable password \(1 to 1024 bytes, one line\)" "... saying it must be one line" \
    printf '%s\n' "$T_OUT"
t_eq "$(q "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'login' AND a.operator = 'adm1' AND o.result = 'denied'")" "$fails" \
    "... so it is no failed login of adm1"
if command -v script >/dev/null 2>&1; then
    # The pause lets the prompt flush the terminal's input (TCSAFLUSH) before the answer comes.
    t_match "^logged in as adm1 " "on a terminal, login --user adm1 asks for adm1's password" \
        sh -c "(sleep 1; printf '%s\n' '$LDAP_OP_PW') | script -qec \"'$D' login --user adm1\" /dev/null"
    t_match "Password for adm1" "... with a prompt naming adm1" printf '%s\n' "$T_OUT"
else
    t_skip "on a terminal, login --user adm1 asks for adm1's password" "no script(1)"
fi
t_match "^logged in as hd1 " "LDAPDESK_PASSWORD still logs in LDAPDESK_USER" "$D" login
t_match "^logged in as HD1 " "... also when --user names it in another case" "$D" login --user HD1
t_eq "$(logins adm1)" "$(q "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'login' AND a.operator = 'adm1' AND o.result = 'ok'")" "every login of adm1 succeeded"

# ---- the cache directory -------------------------------------------------------------------------
deep=$T_DIR/x/a/b
t_ok "login with XDG_CACHE_HOME under directories that do not exist" env XDG_CACHE_HOME="$deep" "$D" login
t_nomatch "not cached" "... warns of nothing" printf '%s\n' "$T_OUT"
t_eq "$(find "$deep/ldapdesk" -name '*.session' 2>/dev/null | wc -l)" 1 \
    "... and caches the session there (missing parents created)"
t_eq "$(stat -c %a "$deep/ldapdesk" 2>/dev/null)" 700 "the ldapdesk directory is mode 0700"
t_eq "$(stat -c %a "$T_DIR/x" 2>/dev/null)" 700 "so are the parents it made"
t_ok "a command without the password uses that session" \
    env -u LDAPDESK_PASSWORD XDG_CACHE_HOME="$deep" "$D" status alice
: >"$T_DIR/not-a-dir"
t_exit 1 "login whose session cannot be cached (XDG_CACHE_HOME is a file) exits 1" \
    env XDG_CACHE_HOME="$T_DIR/not-a-dir" "$D" login
t_match "logged in, but the session could not be cached, so the next command will not find it" \
    "... saying the next command would not find it" printf '%s\n' "$T_OUT"
t_eq "$(sqlite3 "$T_DIR/audit.db" "SELECT action || ' ' || result FROM (SELECT a.action, o.result, a.id
    FROM records a JOIN records o ON o.attempt_id = a.id WHERE a.kind = 'attempt' ORDER BY a.id DESC LIMIT 2)
    ORDER BY id")" "$(printf 'login ok\nlogout ok')" "... and ends the session it could not keep (a logout follows the login)"
t_ok "a command that logs in by itself goes on without the cache (a warning only)" \
    env XDG_CACHE_HOME="$T_DIR/not-a-dir" "$D" status alice
t_eq "$(sqlite3 "$T_DIR/audit.db" "SELECT group_concat(action || ' ' || result, ', ') FROM (SELECT a.action,
    o.result, a.id FROM records a JOIN records o ON o.attempt_id = a.id WHERE a.kind = 'attempt'
    ORDER BY a.id DESC LIMIT 2)")" "logout ok, login ok" \
    "... and ends that session after the command (a script's every command left one open)"

# ---- one session file per operator, whatever the case of the uid --------------------------------
XDG_CACHE_HOME=$T_DIR/fold
export XDG_CACHE_HOME
t_ok "login as hd1" "$D" login
t_ok "LDAPDESK_USER=HD1 finds hd1's session (no password given)" \
    env -u LDAPDESK_PASSWORD LDAPDESK_USER=HD1 "$D" status alice
t_ok "login --user HD1" "$D" login --user HD1
t_eq "$(sessions | wc -l)" 1 "HD1 and hd1 share one session file"
t_match "@hd1\.[0-9a-f]{16}\.session$" "... named with the uid in lower case" sessions
t_ok "logout" "$D" logout
t_eq "$(sessions | wc -l)" 0 "logout leaves no session file"
t_exit 3 "... so without the password a command is not logged in" env -u LDAPDESK_PASSWORD "$D" status alice
t_match "not logged in as LDAPDESK_USER=hd1.*or set LDAPDESK_PASSWORD too" "... saying as whom, and what to set" \
    printf '%s\n' "$T_OUT"
t_exit 3 "a command whose automatic login fails exits 3" env LDAPDESK_PASSWORD=wrong-pass "$D" status alice
t_match "automatic login as LDAPDESK_USER=hd1 with LDAPDESK_PASSWORD" "... naming the settings it logged in with" \
    printf '%s\n' "$T_OUT"

# ---- a script's LDAPDESK_USER does not change whom a bare command acts as ------------------------
# hd1 logs in; a script with adm1's credentials logs in by itself and later logs out: hd1's
# next command without LDAPDESK_USER still acts as hd1 (recorded so), never as adm1.
t_ok "login as hd1 (the operator at the terminal)" "$D" login
t_ok "a script's command logs adm1 in by itself" env LDAPDESK_USER=adm1 "$D" status bob
t_ok "a bare command afterwards" env -u LDAPDESK_USER -u LDAPDESK_PASSWORD "$D" --json unlock alice
ev=$(printf '%s' "$T_OUT" | jq -r .event)
t_eq "$(q "SELECT operator FROM records WHERE id = ${ev:-0}")" hd1 "... acts as hd1, not as the script's adm1"
t_ok "the script logs adm1 out" env LDAPDESK_USER=adm1 "$D" logout
t_ok "hd1's bare commands go on with hd1's session" \
    env -u LDAPDESK_USER -u LDAPDESK_PASSWORD "$D" status alice

# ---- --url ---------------------------------------------------------------------------------------
t_exit 2 "--url with a path is a usage error (it went to /v1/v1/...)" "$D" --url "$LDAPDESK_URL/v1" health
t_match "use https://HOST:PORT or unix:/PATH" "... naming the forms to use" printf '%s\n' "$T_OUT"
t_exit 2 "so is LDAPDESK_URL with a query" env LDAPDESK_URL="$LDAPDESK_URL?x=1" "$D" health
t_exit 2 "and --url with a fragment" "$D" --url "$LDAPDESK_URL#top" health
t_ok "a trailing slash is no path" "$D" --url "$LDAPDESK_URL/" health
t_exit 2 "--url with a port above 65535 is a usage error (it read as unreachable, exit 6)" \
    "$D" --url https://127.0.0.1:99999 health
t_match "the port must be a number from 1 to 65535" "... saying so" printf '%s\n' "$T_OUT"
t_exit 2 "and port 0" "$D" --url https://127.0.0.1:0 health
t_exit 2 "--url with a user and password in it is refused (they would name the session's cache file)" \
    "$D" --url "https://hd1:s3cret@${LDAPDESK_URL#https://}" health
t_nomatch s3cret "... and the password is not echoed" printf '%s\n' "$T_OUT"

# ---- usage errors --------------------------------------------------------------------------------
t_exit 2 "an unknown command is a usage error, --help or not" "$D" bogus --help
t_match "unknown command 'bogus'" "... naming it" printf '%s\n' "$T_OUT"
t_ok "a known command's --help is fine" "$D" status --help
t_exit 2 "log --json --format table is a contradiction (exit 2)" "$D" log --json --format table
t_match "give --json or --format table, not both" "... saying so" printf '%s\n' "$T_OUT"
t_exit 2 "so is report --json --format csv" "$D" report --json --format csv --from 2026-01-01 --to 2026-01-02

# With --json a script reads stdout: a refusal's JSON error is there too (message on stderr).
as_op hd1
json_out() { "$D" --json "$@" 2>/dev/null; }
t_exit 5 "--json status of nobody exits 5" json_out status nosuchuser
t_eq "$(printf '%s' "$T_OUT" | jq -r .error)" no_such_user "... with the daemon's error object on stdout"
t_exit 4 "--json grant by a helpdesk operator exits 4" json_out grant carol general
t_eq "$(printf '%s' "$T_OUT" | jq -r .error)" forbidden "... with its error object on stdout"
# ... and when the client fails on its own (no daemon answer), an error object of its own.
t_exit 2 "--json with a usage error exits 2" json_out status
t_eq "$(printf '%s' "$T_OUT" | jq -r .error)" usage "... with an error object on stdout"
t_exit 2 "... also when --json stands after what failed to parse" \
    sh -c "'$D' record notice --desc x --channel phone --json 2>/dev/null"
t_eq "$(printf '%s' "$T_OUT" | jq -r .error)" usage "... (usage)"
t_exit 2 "... and when it is --json=1 (it takes no value)" sh -c "'$D' --json=1 status bob 2>/dev/null"
t_eq "$(printf '%s' "$T_OUT" | jq -r .error)" usage "... still an error object on stdout"
t_match "unknown option '-w'; see 'ldapdesk login --help'" \
    "a password glued to an unknown short option (-wSECRET) is not echoed" \
    "$D" login --user hd1 -wGlued-Secret-7
t_nomatch "Glued-Secret-7" "... anywhere in the message" printf '%s\n' "$T_OUT"
# Messages for what a hotline operator types wrong, and what to do.
as_op hd1
t_match "no such user: 王丽 \(give the account's uid, not the person's name\)" \
    "status of a display name says to give the uid" "$D" status 王丽
t_match "no such user: not a uid \(a uid holds letters, digits" "status 'a b' says why it is no uid" \
    "$D" status 'a b'
t_exit 2 "an option given twice is a usage error (only the last was recorded)" \
    "$D" unlock alice --ticket T-1 --ticket T-2
t_match "option --ticket is given twice: give it once" "... saying so" printf '%s\n' "$T_OUT"
as_op aud1
t_exit 2 "report -o into a directory that does not exist is refused before the report is made" \
    "$D" report --from 2026-01-01 --to 2026-01-02 -o "$T_DIR/no-such-dir/r.html"
t_match "cannot write $T_DIR/no-such-dir/r.html: No such file or directory \(give -o a file" \
    "... saying what to give" printf '%s\n' "$T_OUT"
t_exit 2 "so is report -o naming a directory" "$D" report --from 2026-01-01 --to 2026-01-02 -o "$T_DIR"
t_match "cannot write $T_DIR: it is a directory \(give -o a file name\)" "... saying so" printf '%s\n' "$T_OUT"
# A date that does not exist is named with its bound and value, in log as in report.
as_op aud1
t_exit 2 "log --to 2026-02-30 is a bad request (exit 2)" "$D" log --to 2026-02-30
t_match "to '2026-02-30' is not a date that exists \(YYYY-MM-DD\) nor an ISO 8601 time" \
    "... naming the bound and the value" printf '%s\n' "$T_OUT"
t_match "from '2026-13-01' is not a date that exists" "... as report does" \
    "$D" report --from 2026-13-01 --to 2026-12-01
as_op hd1
# --format json is --json (README): its errors are JSON on stdout as well.
t_exit 4 "log --format json by a helpdesk operator exits 4" sh -c "'$D' log --format json 2>/dev/null"
t_eq "$(printf '%s' "$T_OUT" | jq -r .error)" forbidden "... with the daemon's error object on stdout"
t_exit 2 "report --format json with a bad range exits 2" \
    sh -c "'$D' report --from 2026-02-01 --to 2026-01-01 --format json 2>/dev/null"
t_eq "$(printf '%s' "$T_OUT" | jq -r .error)" bad_request "... with the daemon's error object on stdout"
t_exit 2 "... also when --format json stands after what failed to parse" \
    sh -c "'$D' log --no-such-option --format json 2>/dev/null"
t_eq "$(printf '%s' "$T_OUT" | jq -r .error)" usage "... (usage)"
t_exit 6 "--json against a port nobody listens on exits 6" json_out --url https://127.0.0.1:1 health
t_eq "$(printf '%s' "$T_OUT" | jq -r '.error + " " + (.message | length > 0 | tostring)')" "unreachable true" \
    "... with an error object that says why"
t_exit 3 "--json with no session and no credentials exits 3" \
    sh -c "XDG_CACHE_HOME='$T_DIR/no-cache' LDAPDESK_USER= LDAPDESK_PASSWORD= '$D' --json status alice 2>/dev/null"
t_eq "$(printf '%s' "$T_OUT" | jq -r .error)" unauthenticated "... with an error object on stdout"
t_eq "$(json_out status alice | jq -s length)" 1 "a --json answer is one JSON document (no error object added)"
# Messages that say what to do.
as_op hd1
t_match "hd1's roles do not allow grant: it takes the admin role \(log in as an operator who has it" \
    "a role refusal says which role it takes" "$D" grant carol general
t_match "hd1's roles do not allow requests: it takes the admin or auditor role" \
    "... also for pending (admin or auditor)" "$D" pending
as_op aud1
t_match "no such action: use one of login, status, unlock, .*expire.*backup, log, report, verify, requests" \
    "log --action with a typo lists every action" "$D" log --action unlok
as_op hd1
if [ -w /dev/full ]; then
    t_exit 1 "reset with its output on a full disk exits 1" sh -c "'$D' reset carol >/dev/full"
    t_match "carol's password was reset, but the one-time password could not be written out .*run 'ldapdesk reset carol' again" \
        "... saying the password was reset and to reset again" printf '%s\n' "$T_OUT"
    t_match "cannot write the output: No space left on device" "a log to a full disk names the errno" \
        sh -c "LDAPDESK_USER=aud1 '$D' log >/dev/full"
fi
t_match "cannot connect to ldapdeskd's socket $T_DIR/nobody.sock: check --url" \
    "a unix socket nobody listens on is named as such" "$D" --url "unix:$T_DIR/nobody.sock" status carol
t_match "^event options \(--dept is the user's department here" "user create --help says what --dept is there" \
    "$D" user create --help
for sub in create move disable enable delete; do
    t_match "^  ldapdesk user $sub UID" "user --help lists user $sub first" "$D" user --help
done
t_eq "$("$D" user --help | grep -c '^event options')" 1 "... and the event options once"
# A request sent and not answered in time is not "daemon unreachable": it may still be working.
# The unix socket takes the request while the daemon is stopped (no TLS handshake to wait on).
as_op aud1
"$D" --url "unix:$LDAPDESK_SOCK" verify >/dev/null
kill -STOP "$DAEMON_PID"
t_exit 1 "verify not answered within LDAPDESK_TIMEOUT (2 s) exits 1, not 6" \
    env LDAPDESK_TIMEOUT=2 "$D" --url "unix:$LDAPDESK_SOCK" verify
kill -CONT "$DAEMON_PID"
t_match "took the request but sent nothing for 2 s: it may still be working on it" \
    "... saying the daemon may still be working on it" printf '%s\n' "$T_OUT"
t_exit 2 "an LDAPDESK_TIMEOUT that is no number of seconds is a usage error" env LDAPDESK_TIMEOUT=abc "$D" health
t_match "LDAPDESK_TIMEOUT must be 1 to 86400 seconds, not \"abc\"" "... saying so" printf '%s\n' "$T_OUT"
t_exit 6 "a daemon that is not there is still exit 6" env LDAPDESK_TIMEOUT=2 \
    "$D" --url "unix:$T_DIR/nobody.sock" verify

# Sessions are lost with a crash: the next import logs in again. The daemon refuses an import
# with a bad session before its body; the client waits for "100 Continue" (it used to send
# the body all the same and meet a broken pipe: exit 6, "cannot reach ldapdeskd").
as_op adm1
t_ok "adm1 logs in" "$D" login
awk 'BEGIN { print "序号,事件提交单位,提交人,提交时间,事件描述,解决办法,问题处理,解决时间,解决情况,备注"
    for (i = 1; i <= 8000; i++) printf "%d,信息中心,用户%d,2019-04-04 09:10,删除待办与邮件 第%d条,后台删除,张工,,已解决,\n", i, i, i }' \
    >"$T_DIR/big-import.csv"
t_ok "the file is larger than a request body (64 KiB): the daemon checks its session first" \
    test "$(wc -c <"$T_DIR/big-import.csv")" -gt 65536
kill -KILL "$DAEMON_PID"
_proc_wait_dead "$DAEMON_PID" 100 || : # gone before the restart
sleep 1 # and its audit database lock released (slow under the sanitize build)
t_untrack "$DAEMON_PID"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts after SIGKILL"; t_done; }
t_match '^imported 8000 events' "after a crash an import with the lost session logs in again and imports" \
    "$D" import "$T_DIR/big-import.csv"
as_op hd1

# The daemon does not answer a command's own login: nothing was changed, so --json says
# failed, not outcome_unknown (a change sent whose answer was lost).
kill -STOP "$DAEMON_PID"
t_exit 1 "an unlock whose login gets no answer exits 1" env XDG_CACHE_HOME="$T_DIR/fresh-cache" LDAPDESK_URL="unix:$LDAPDESK_SOCK" \
    LDAPDESK_TIMEOUT=2 "$D" --json unlock alice
t_eq "$(printf '%s\n' "$T_OUT" | sed -n '/^{/,/^}/p' | jq -r .error)" failed \
    "... and --json says failed: only its login was sent, no change"
kill -CONT "$DAEMON_PID"
t_ok "login before the daemon stops" "$D" login
sess=$(sessions)
daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0 on SIGTERM"
t_exit 6 "logout with the daemon gone exits 6" env -u LDAPDESK_PASSWORD "$D" --json logout
t_match "session .* may still be valid and stays cached; run 'ldapdesk logout' again once the daemon answers" \
    "... saying the session stays cached and to log out again later" printf '%s\n' "$T_OUT"
t_eq "$(sessions)" "$sess" "... and the session file is kept"

# A change goes on a connection of its own: on the login's kept-alive connection, a daemon
# dying under it made libcurl send the change again on a new connection (twice; or exit 6,
# "cannot reach", when that one failed, for a change the daemon had taken).
DYING_PORT=$(random_port)
python3 "$LDAPDESK_SRC/tests/lib/dying_daemon.py" "$DYING_PORT" "$SLAPD_DIR/server.pem" \
    "$SLAPD_DIR/server.key" "$T_DIR/dying.log" >"$T_DIR/dying.out" 2>&1 &
dying=$!
for _ in $(seq 150); do [ -s "$T_DIR/dying.out" ] && break; sleep 0.1; done
t_exit 1 "an unlock whose daemon dies under it exits 1 (not 6)" env XDG_CACHE_HOME="$T_DIR/dying-cache" \
    LDAPDESK_URL="https://127.0.0.1:$DYING_PORT" LDAPDESK_USER=hd1 LDAPDESK_PASSWORD="$LDAP_OP_PW" \
    "$D" --json unlock alice
t_eq "$(printf '%s\n' "$T_OUT" | sed -n '/^{/,/^}/p' | jq -r .error)" outcome_unknown \
    "... and --json says outcome_unknown: it may have been done"
t_eq "$(grep -c '^POST /v1/users/alice/unlock ' "$T_DIR/dying.log")" 1 "... the unlock was sent once"
t_eq "$(grep -c '^POST /v1/login ' "$T_DIR/dying.log")" 1 "... after one login"
kill "$dying" 2>/dev/null || :
wait "$dying" 2>/dev/null || :
t_done
