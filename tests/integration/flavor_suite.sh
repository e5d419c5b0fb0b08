# shellcheck shell=sh
# flavor_suite.sh — the core suite against a 389 DS or Samba AD DC, sourced by flavor_389ds.sh
# and flavor_ad.sh once the server and ldapdeskd run. Those define FLAVOR and the directory hooks:
#   fl_bind UID PASSWORD   a simple bind as the user over TLS; prints the answer, returns its rc
#   fl_is_member GROUP UID 0 when UID is a member of group GROUP (cn under the groups OU), 1 when
#                          not, 2 when that cannot be told (the search failed)
#   fl_must_change UID     prints the directory's must-change mark (FL_MUST_CHANGE when set)
#   fl_disabled UID        prints the directory's disable mark (FL_DISABLED when disabled);
#                          fails when the user cannot be read
# and FL_LOCKED_RE / FL_MUST_CHANGE_RE: what a bind says in those states; FL_OLD_PW_RC: a bind's
# exit status with a replaced password; FL_MUST_CHANGE / FL_DISABLED: the marks' values;
# FL_LOCKED_SINCE=1 when the directory tells when a lock began; FL_OP_PW, FL_USER_PW: passwords.
D=$LDAPDESK
DB=$T_DIR/audit.db
q() { sqlite3 "$DB" "$1"; }
fl_lock() { # three wrong passwords (the test servers lock at 3)
    for _fl_i in 1 2 3; do fl_bind "$1" "wrong-password-$_fl_i" >/dev/null 2>&1 || true; done
}
st() { "$D" --json status "$1" | jq -r "$2"; }

# ---- login of operators -------------------------------------------------------------
as_op hd1 "$FL_OP_PW"
t_match "logged in as hd1 \(roles: helpdesk" "helpdesk operator logs in (role from the group)" "$D" login
LDAPDESK_PASSWORD=wrong-password
t_exit 3 "a wrong operator password is 401 (exit 3)" "$D" login
t_eq "$(q "SELECT count(*) FROM records r WHERE kind='attempt' AND action='login' AND operator='hd1'
          AND (SELECT result FROM records o WHERE o.attempt_id=r.id)='denied'")" 1 \
    "the refused login is an audit row (denied)"
as_op adm1 "$FL_OP_PW"
t_match "logged in as adm1 \(roles: .*admin" "admin operator logs in (role from the group)" "$D" login
as_op hd1 "$FL_OP_PW"

# ---- status, unlock ------------------------------------------------------------------
t_match "王丽" "status shows the name" "$D" status alice
t_eq "$(st alice .locked),$(st alice .failures),$(st alice .must_change)" "false,0,false" \
    "alice starts unlocked, no failures, no must-change"
fl_lock alice
t_match "$FL_LOCKED_RE" "the directory locked alice after 3 bad binds" fl_bind alice "$FL_USER_PW"
t_eq "$(st alice .locked)" true "status says locked"
t_eq "$(st alice .failures)" 3 "status counts 3 failures"
t_match "3 failed logins" "status says why alice is locked" "$D" status alice
t_eq "$(st alice .department)" 市场营销中心 "status shows the department"
[ -z "${FL_LOCKED_SINCE:-}" ] ||
    t_match '"locked_since": "20' "locked_since is a time" "$D" --json status alice
t_ok "unlock alice" "$D" unlock alice --ticket T-100 --requester 张三 --channel hotline
t_ok "alice can bind again" fl_bind alice "$FL_USER_PW"
t_eq "$(st alice .locked)" false "status says unlocked"
t_eq "$("$D" --json unlock alice | jq -r .result)" unchanged "unlock of an unlocked user is unchanged"

# ---- reset ---------------------------------------------------------------------------
fl_lock bob
out=$("$D" --json reset bob)
pw=$(printf '%s' "$out" | jq -r .password)
t_eq "$(printf '%s' "$out" | jq -r .result)" ok "reset answers ok"
t_eq "${#pw}" "${FL_PW_LEN:-16}" "the one-time password is as long as the policy asks (${FL_PW_LEN:-16})"
t_eq "$(q "SELECT o.detail FROM records a JOIN records o ON o.attempt_id=a.id
    WHERE a.action='reset' AND a.target='bob'")" "password reset; must change at next login; unlocked" \
    "the reset of a locked user is recorded as an unlock too"
t_eq "$(fl_must_change bob)" "$FL_MUST_CHANGE" "the directory marks bob must-change"
t_match "$FL_MUST_CHANGE_RE" "bob's bind with the new password says it must be changed" fl_bind bob "$pw"
t_exit "$FL_OLD_PW_RC" "bob's old password no longer works" fl_bind bob "$FL_USER_PW"
t_eq "$(st bob .must_change),$(st bob .locked)" "true,false" "status: must change, not locked"
t_absent "$pw" "the generated password is not in the audit database" "$DB" "$DB-wal"
t_absent "$pw" "the generated password is not in the daemon log" "$T_DIR/ldapdeskd.log"

# ---- grant, revoke ---------------------------------------------------------------------
t_exit 4 "helpdesk may not grant (403, exit 4)" "$D" grant alice procurement
as_op adm1 "$FL_OP_PW"
t_ok "admin grants 采管系统 for 30 days" "$D" grant alice procurement --days 30 --ticket T-7
t_ok "alice is a member in the directory" fl_is_member procurement alice
t_eq "$("$D" --json grant alice procurement | jq -r .result)" unchanged "granting again is unchanged"
t_eq "$(st alice '.grants[0].permission + "|" + .grants[0].granted_by')" "procurement|adm1" \
    "status lists the grant"
t_ok "admin revokes" "$D" revoke alice procurement
t_exit 1 "alice is no longer a member" fl_is_member procurement alice
t_eq "$("$D" --json revoke alice procurement | jq -r .result)" unchanged "revoking a non-member is unchanged"
# Four-eyes (finance-docs has approval = yes here): the request keeps the entry it was made for
# (FL_ENTRY_RE: the flavour's entryUUID, nsUniqueId or objectGUID), which approve compares.
req=$("$D" --json grant heidi finance-docs --days 5 | jq -r .request)
t_match "$FL_ENTRY_RE" "a request keeps its user's entry identity" \
    q "SELECT target_entry FROM requests WHERE id = $req"
as_op adm2 "$FL_OP_PW"
t_ok "another admin approves it (the same entry)" "$D" approve "$req"
t_ok "heidi is a member of finance-docs" fl_is_member finance-docs heidi
as_op adm1 "$FL_OP_PW"

# ---- locked and disabled operators ----------------------------------------------------
fl_lock hd2
as_op hd2 "$FL_OP_PW"
t_exit 4 "a locked operator is refused (403, exit 4)" "$D" login
t_match "locked" "... and told the account is locked" "$D" login
as_op adm1 "$FL_OP_PW"
t_ok "admin unlocks the operator" "$D" unlock hd2
t_ok "admin disables the operator" "$D" user disable hd2 --reason "on leave"
t_eq "$(fl_disabled hd2)" "$FL_DISABLED" "the directory marks hd2 disabled"
t_eq "$(st hd2 .admin_locked)" true "status says disabled by an administrator"
t_eq "$("$D" --json user disable hd2 --reason again | jq -r .result)" unchanged "disabling again is unchanged"
t_exit 4 "a disabled account is not unlocked (403, a protection)" "$D" unlock hd2
as_op hd2 "$FL_OP_PW"
t_exit 4 "a disabled operator is refused (403, exit 4)" "$D" login
t_match "disabled" "... and told the account is disabled" "$D" login
as_op adm1 "$FL_OP_PW"
t_ok "admin enables the operator" "$D" user enable hd2
t_empty "the directory no longer marks hd2 disabled" fl_disabled hd2
as_op hd2 "$FL_OP_PW"
t_ok "the enabled operator logs in" "$D" login

# ---- bad input ----------------------------------------------------------------------------
for name in '*' 'al*ce' '(uid=*)' 'alice)(uid=*' 'alice\' 'alice,ou=x' 'uid=alice'; do
    t_exit 5 "status '$name' is no such user (exit 5)" "$D" status "$name"
    t_exit 5 "unlock '$name' is no such user (exit 5)" "$D" unlock "$name"
done
t_exit 5 "an unknown user is 404 (exit 5)" "$D" unlock nosuchuser

# ---- user lifecycle: create where the flavour supports it ------------------------------
as_op adm1 "$FL_OP_PW"
if [ "$FLAVOR" = ad ]; then
    t_match "not supported with flavor = ad" "user create is refused on AD (501), with what to do" \
        "$D" user create newbie --name 新人 --dept 信息中心
else
    t_ok "user create works on $FLAVOR" "$D" user create newbie --name 新人 --dept 信息中心
    t_match "^One-time password for newbie: [^ ]{8,}$" "... and shows newbie's one-time password" \
        printf '%s\n' "$T_OUT"
    t_eq "$(st newbie .department)" 信息中心 "the new user is in its department"
fi

# ---- audit rows -----------------------------------------------------------------------------
outcome() { q "SELECT group_concat(r, ',') FROM (SELECT o.result AS r FROM records a
    JOIN records o ON o.attempt_id=a.id WHERE a.action='$1' AND a.target='$2' ORDER BY o.id)"; }
t_eq "$(outcome unlock alice)" "ok,unchanged" "audit: unlock alice ok then unchanged"
t_eq "$(outcome reset bob)" "ok" "audit: reset bob ok"
t_eq "$(outcome grant alice)" "denied,ok,unchanged" "audit: grant denied (helpdesk), ok, then unchanged"
t_eq "$(outcome revoke alice)" "ok,unchanged" "audit: revoke ok then unchanged"
t_eq "$(outcome disable hd2)" "ok,unchanged" "audit: disable ok then unchanged"
t_eq "$(q "SELECT ticket||'|'||requester||'|'||channel FROM records WHERE action='unlock' ORDER BY id LIMIT 1")" \
    "T-100|张三|hotline" "event options reach the audit row"
t_eq "$(q "SELECT count(*) FROM records r WHERE kind='attempt' AND NOT EXISTS
    (SELECT 1 FROM records o WHERE o.attempt_id=r.id)")" 0 "no attempt is left pending"
t_match '"ok": true' "the chain verifies" env LDAPDESK_USER=aud1 LDAPDESK_PASSWORD="$FL_OP_PW" "$D" --json verify

daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0 on SIGTERM"
t_nomatch "runtime error|AddressSanitizer|LeakSanitizer" "no sanitizer report in the daemon log" \
    cat "$T_DIR/ldapdeskd.log"
