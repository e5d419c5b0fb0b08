#!/bin/sh
# client.sh — the CLI's own choices end to end: whose password $LDAPDESK_PASSWORD is, where and
# under which name a session is cached, which --url it takes, which command lines are usage
# errors (exit 2) before anything is sent.
set -eu
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

# ---- --url ---------------------------------------------------------------------------------------
t_exit 2 "--url with a path is a usage error (it went to /v1/v1/...)" "$D" --url "$LDAPDESK_URL/v1" health
t_match "use https://HOST:PORT or unix:/PATH" "... naming the forms to use" printf '%s\n' "$T_OUT"
t_exit 2 "so is LDAPDESK_URL with a query" env LDAPDESK_URL="$LDAPDESK_URL?x=1" "$D" health
t_exit 2 "and --url with a fragment" "$D" --url "$LDAPDESK_URL#top" health
t_ok "a trailing slash is no path" "$D" --url "$LDAPDESK_URL/" health

# ---- usage errors --------------------------------------------------------------------------------
t_exit 2 "an unknown command is a usage error, --help or not" "$D" bogus --help
t_match "unknown command 'bogus'" "... naming it" printf '%s\n' "$T_OUT"
t_ok "a known command's --help is fine" "$D" status --help
t_exit 2 "log --json --format table is a contradiction (exit 2)" "$D" log --json --format table
t_match "give --json or --format table, not both" "... saying so" printf '%s\n' "$T_OUT"
t_exit 2 "so is report --json --format csv" "$D" report --json --format csv --from 2026-01-01 --to 2026-01-02

daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0 on SIGTERM"
t_done
