#!/bin/sh
# tests/lib/flavors-selftest.sh — checks the directory semantics of each flavour (doc/flavors.md)
# against real servers with ldap-utils: 389 DS (tests/lib/ds389.sh) and Samba AD DC
# (tests/lib/samba.sh). Prints TAP-like lines via tests/lib/harness.sh; exit 1 on a failure.
#
#   LDAPDESK_SRC=$PWD sh tests/lib/flavors-selftest.sh [389ds|ad ...]
#
# FLAVORS_FRESH=1 builds both provisioned copies in T_DIR (measures the creation time) instead of
# using the shared cache; KEEP=1 keeps T_DIR.
set -eu
: "${LDAPDESK_SRC:=$(cd "$(dirname "$0")/../.." && pwd -P)}"
export LDAPDESK_SRC
. "$LDAPDESK_SRC/tests/lib/harness.sh"
. "$LDAPDESK_SRC/tests/lib/ds389.sh"
. "$LDAPDESK_SRC/tests/lib/samba.sh"

WANT=${*:-389ds ad}
T_TIMEOUT=${T_TIMEOUT:-60}
t_init "flavors-selftest"
L=$T_DIR/mod.ldif # LDIF for the next modify (t_* piped into would run in a subshell and lose its count)
[ "${FLAVORS_FRESH:-0}" != 1 ] || { LDAPDESK_FLAVOR_CACHE=$T_DIR/cache; export LDAPDESK_FLAVOR_CACHE; }

now() { date +%s.%N | cut -c1-14; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# dn_line DN: an LDIF dn line (base64, the DNs hold Chinese department names)
dn_line() { printf 'dn:: %s\n' "$(printf '%s' "$1" | base64 -w0)"; }
b64() { printf '%s' "$1" | base64 -w0; }

# ================================================================ 389 Directory Server
ds_bind() { # DN PASSWORD [URI]: ldapwhoami with the ppolicy control; output and rc
    ldapwhoami -x -H "${3:-$DS_LDAPS_URI}" -D "$1" -w "$2" -e ppolicy 2>&1
}
ds_as_search() { # DN PASSWORD ARGS...: a search as that user over LDAPS
    _dn=$1 _pw=$2
    shift 2
    ldapsearch -x -LLL -H "$DS_LDAPS_URI" -D "$_dn" -w "$_pw" -e ppolicy "$@" 2>&1
}

flavor_389ds() {
    t_note "=== 389 Directory Server ($(dpkg-query -W -f '${Version}' 389-ds-base))"
    _t0=$(now)
    if ds389_setup "$T_DIR/ds389"; then t_pass "389ds: ds389_setup"; else
        t_fail "389ds: ds389_setup"
        return 0
    fi
    _setup=$(secs "$_t0" "$(now)")
    _t0=$(now)
    if ds389_start "$T_DIR/ds389"; then t_pass "389ds: ds389_start"; else
        t_fail "389ds: ds389_start"
        return 0
    fi
    _start=$(secs "$_t0" "$(now)")
    _cache=$(_ds389_cache_dir)
    if [ -n "$DS389_CREATE_SECS" ]; then
        t_note "389ds TIME create (dscreate + seeding, this run): $DS389_CREATE_SECS s"
    else
        t_note "389ds TIME create (when the cache was built): $(cat "$_cache/create-secs" 2>/dev/null || echo '?') s"
    fi
    t_note "389ds TIME ds389_setup (copy from the cache, + create when it had to): $_setup s; start from the copy: $_start s ($DS_URI, $DS_LDAPS_URI)"
    LDAPTLS_CACERT=$DS_CA
    export LDAPTLS_CACERT

    _alice=$(ds_user_dn alice)
    _bob=$(ds_user_dn bob)
    _carol=$(ds_user_dn carol)
    _dave=$(ds_user_dn dave)
    _frank=$(ds_user_dn frank)
    _judy=$(ds_user_dn judy)
    _pw=$DS_USER_PW

    # --- transport
    t_match 'dn: cn=ldapdesk' "389ds: service account binds over LDAPS" ds_bind "$DS_SVC_DN" "$DS_SVC_PW"
    t_ok "389ds: StartTLS on the LDAP port" ldapwhoami -x -ZZ -H "$DS_URI" -D "$DS_SVC_DN" -w "$DS_SVC_PW"
    t_ok "389ds: plain simple bind allowed (nsslapd-require-secure-binds off)" \
        ldapwhoami -x -H "$DS_URI" -D "$DS_SVC_DN" -w "$DS_SVC_PW"
    t_match 'Invalid credentials \(49\)' "389ds: wrong password answers 49" ds_bind "$_judy" wrong-pass
    # --- lookup
    t_match '^uid: alice' "389ds: lookup (&(objectClass=inetOrgPerson)(uid=alice)) as the service account" \
        ldapsearch -x -LLL -H "$DS_LDAPS_URI" -D "$DS_SVC_DN" -w "$DS_SVC_PW" -b "$DS_PEOPLE" \
        '(&(objectClass=inetOrgPerson)(uid=alice))' uid cn ou mail

    # --- lock by failed binds
    _i=1
    while [ "$_i" -le 3 ]; do
        t_match 'Invalid credentials \(49\)' "389ds: failed bind $_i of 3 answers 49" ds_bind "$_alice" "wrong-$_i"
        _i=$((_i + 1))
    done
    t_eq "$(ds_attr alice passwordRetryCount)" 3 "389ds: passwordRetryCount = 3 after 3 failures"
    _aut=$(ds_attr alice accountUnlockTime)
    t_match '^[0-9]{14}Z$' "389ds: accountUnlockTime set when locked ($_aut)" echo "$_aut"
    t_match '^retryCountResetTime: [0-9]{14}Z$' "389ds: retryCountResetTime set" ds_root_search -b "$_alice" -s base \
        '(objectClass=*)' retryCountResetTime
    t_match 'Constraint violation \(19\)' "389ds: locked: bind with the right password answers 19" ds_bind "$_alice" "$_pw"
    t_match 'Exceed password retry limit' "389ds: locked: diagnostic 'Exceed password retry limit'" \
        ds_bind "$_alice" "$_pw"
    t_match 'Exceed password retry limit' "389ds: locked: a wrong password answers the same" ds_bind "$_alice" wrong-x
    t_match '^accountUnlockTime: ' "389ds: the service account reads the lock attributes" \
        ldapsearch -x -LLL -H "$DS_LDAPS_URI" -D "$DS_SVC_DN" -w "$DS_SVC_PW" -b "$_alice" -s base \
        '(objectClass=*)' passwordRetryCount accountUnlockTime retryCountResetTime
    # --- unlock
    { dn_line "$_alice"; printf 'changetype: modify\nreplace: passwordRetryCount\npasswordRetryCount: 0\n-\ndelete: accountUnlockTime\n-\ndelete: retryCountResetTime\n-\n'; } >"$L"
    t_ok "389ds: unlock = replace passwordRetryCount 0, delete accountUnlockTime + retryCountResetTime (service account)" \
            ds_svc_modify <"$L"
    t_match 'dn:' "389ds: unlocked: bind succeeds" ds_bind "$_alice" "$_pw"
    t_empty "389ds: accountUnlockTime gone" ds_attr alice accountUnlockTime
    { dn_line "$_alice"; printf 'changetype: modify\ndelete: accountUnlockTime\n-\n'; } >"$L"
    t_match 'No such attribute \(16\)' "389ds: unlocking an unlocked user: delete answers 16 (unchanged)" \
            ds_svc_modify <"$L"
    { dn_line "$_alice"; printf 'changetype: modify\nreplace: passwordRetryCount\npasswordRetryCount: 0\n-\nreplace: accountUnlockTime\n-\nreplace: retryCountResetTime\n-\n'; } >"$L"
    t_ok "389ds: idempotent unlock: replace with no values never fails" ds_svc_modify <"$L"
    t_eq "$(ds_attr alice passwordRetryCount)" 0 "389ds: a successful bind leaves passwordRetryCount 0"
    ds_bind "$_alice" wrong-y >/dev/null 2>&1 || true
    t_eq "$(ds_attr alice passwordRetryCount)" 1 "389ds: one failure: passwordRetryCount 1, not locked"
    t_match 'dn:' "389ds: a success after one failure binds" ds_bind "$_alice" "$_pw"
    T_OUT_A=$(ds_attr alice passwordRetryCount)
    t_note "389ds: passwordRetryCount after that success: '$T_OUT_A'"

    # --- reset (Password Modify extended operation)
    t_match 'Confidentiality required \(13\)' "389ds: reset over plain LDAP answers confidentialityRequired (13)" \
        ldappasswd -x -H "$DS_URI" -D "$DS_SVC_DN" -w "$DS_SVC_PW" -s New-Pass-2026a "$_carol"
    t_ok "389ds: reset = ldappasswd (RFC 3062) over LDAPS as the service account" \
        ldappasswd -x -H "$DS_LDAPS_URI" -D "$DS_SVC_DN" -w "$DS_SVC_PW" -s New-Pass-2026a "$_carol"
    t_ok "389ds: reset = ldappasswd over StartTLS" \
        ldappasswd -x -ZZ -H "$DS_URI" -D "$DS_SVC_DN" -w "$DS_SVC_PW" -s New-Pass-2026a "$_carol"
    t_eq "$(ds_attr carol passwordExpirationTime)" 19700101000000Z \
        "389ds: a reset by the passwordAdminDN sets passwordExpirationTime 19700101000000Z itself"
    t_match 'Password expired|[Pp]assword.*(must|reset|change)' "389ds: must-change: bind answers with the expired/must-change notice" \
        ds_bind "$_carol" New-Pass-2026a
    T_OUT_CAROL=$(ds_bind "$_carol" New-Pass-2026a || true)
    t_note "389ds: bind after reset says: $(printf '%s' "$T_OUT_CAROL" | tr '\n' ' ')"
    T_OUT_CAROL=$(ds_as_search "$_carol" New-Pass-2026a -b "$_carol" -s base uid || true)
    t_note "389ds: search after that bind says: $(printf '%s' "$T_OUT_CAROL" | tr '\n' ' ')"
    t_ok "389ds: the user sets a new password of their own (ldappasswd -a old -s new, as themselves)" \
        ldappasswd -x -H "$DS_LDAPS_URI" -D "$_carol" -w New-Pass-2026a -a New-Pass-2026a -s Own-Pass-2026b
    t_match 'dn:' "389ds: then binds normally" ds_bind "$_carol" Own-Pass-2026b
    t_nomatch '^19700101000000Z$' "389ds: passwordExpirationTime no longer 19700101000000Z" ds_attr carol passwordExpirationTime
    # a reset by the root DN does not force must-change
    t_ok "389ds: reset by the root DN" ldappasswd -x -H "$DS_LDAPS_URI" -D "$DS_ROOT_DN" -w "$DS_ROOT_PW" \
        -s Root-Pass-2026c "$_carol"
    t_eq "$(ds_attr carol passwordExpirationTime)" 19700101000000Z \
        "389ds: a root DN reset also sets passwordExpirationTime 19700101000000Z (passwordMustChange on)"
    { dn_line "$_carol"; printf 'changetype: modify\ndelete: passwordExpirationTime\n-\n'; } >"$L"
    t_ok "389ds: clear must-change = delete passwordExpirationTime (service account)" ds_svc_modify <"$L"
    t_match 'dn:' "389ds: then the bind succeeds without notice" ds_bind "$_carol" Root-Pass-2026c
    # a reset unlocks?
    for _i in 1 2 3; do ds_bind "$_bob" "wrong-$_i" >/dev/null 2>&1 || true; done
    t_match 'Exceed password retry limit' "389ds: bob locked" ds_bind "$_bob" "$_pw"
    t_ok "389ds: reset bob while locked" \
        ldappasswd -x -H "$DS_LDAPS_URI" -D "$DS_SVC_DN" -w "$DS_SVC_PW" -s Bob-Pass-2026d "$_bob"
    t_match 'ldap_bind: Success \(0\); Password must be changed' \
        "389ds: a reset unlocks: the bind succeeds (must change)" ds_bind "$_bob" Bob-Pass-2026d
    t_eq "$(ds_attr bob passwordRetryCount)" 0 "389ds: the reset set passwordRetryCount 0"
    t_note "389ds: bob's lock attributes after the reset: $(ds_root_search -b "$_bob" -s base '(objectClass=*)' passwordRetryCount accountUnlockTime | grep -v '^dn' | tr '\n' ' ')"

    # --- must-change set explicitly (no reset)
    { dn_line "$_frank"; printf 'changetype: modify\nreplace: passwordExpirationTime\npasswordExpirationTime: 19700101000000Z\n-\n'; } >"$L"
    t_ok "389ds: must-change = replace passwordExpirationTime 19700101000000Z (service account)" ds_svc_modify <"$L"
    t_match 'Password expired|[Pp]assword.*(must|reset|change)' "389ds: frank's bind reports the password must change" \
        ds_bind "$_frank" "$_pw"

    # --- administrator disable / enable
    { dn_line "$_dave"; printf 'changetype: modify\nreplace: nsAccountLock\nnsAccountLock: TRUE\n-\n'; } >"$L"
    t_ok "389ds: disable = replace nsAccountLock TRUE (service account)" ds_svc_modify <"$L"
    t_match 'Server is unwilling to perform \(53\)' "389ds: disabled: bind answers 53" ds_bind "$_dave" "$_pw"
    t_match '[Aa]ccount inactivated' "389ds: disabled: diagnostic 'Account inactivated. Contact system administrator.'" \
        ds_bind "$_dave" "$_pw"
    t_match 'Server is unwilling to perform \(53\)|Invalid credentials \(49\)' "389ds: disabled + wrong password" ds_bind "$_dave" wrong
    T_OUT_DAVE=$(ds_bind "$_dave" wrong || true)
    t_note "389ds: disabled + wrong password says: $(printf '%s' "$T_OUT_DAVE" | tr '\n' ' ')"
    { dn_line "$_dave"; printf 'changetype: modify\ndelete: nsAccountLock\n-\n'; } >"$L"
    t_ok "389ds: enable = delete nsAccountLock" ds_svc_modify <"$L"
    t_match 'dn:' "389ds: enabled: bind succeeds" ds_bind "$_dave" "$_pw"

    # --- groups
    _g=cn=procurement,$DS_GROUPS
    { printf 'dn: %s\nchangetype: modify\nadd: member\n' "$_g"; printf 'member:: %s\n-\n' "$(b64 "$_judy")"; } >"$L"
    t_ok "389ds: grant = add member (service account)" ds_svc_modify <"$L"
    { printf 'dn: %s\nchangetype: modify\nadd: member\n' "$_g"; printf 'member:: %s\n-\n' "$(b64 "$_judy")"; } >"$L"
    t_match 'Type or value exists \(20\)' "389ds: re-adding a member answers 20" ds_svc_modify <"$L"
    { printf 'dn: %s\nchangetype: modify\ndelete: member\n' "$_g"; printf 'member:: %s\n-\n' "$(b64 "$_judy")"; } >"$L"
    t_ok "389ds: revoke = delete member" ds_svc_modify <"$L"
    { printf 'dn: %s\nchangetype: modify\ndelete: member\n' "$_g"; printf 'member:: %s\n-\n' "$(b64 "$_judy")"; } >"$L"
    t_match 'No such attribute \(16\)' "389ds: removing a non-member answers 16" ds_svc_modify <"$L"
    t_match '^dn: cn=helpdesk' "389ds: role lookup (&(objectClass=groupOfNames)(member=DN)) for hd1" \
        ldapsearch -x -LLL -H "$DS_LDAPS_URI" -D "$DS_SVC_DN" -w "$DS_SVC_PW" -b "$DS_GROUPS" \
        "(&(objectClass=groupOfNames)(member=$(ldap_filter_escape "$(ds_user_dn hd1)")))" 1.1
    # the service account may not change the configuration
    printf 'dn: cn=config\nchangetype: modify\nreplace: passwordMaxFailure\npasswordMaxFailure: 9\n-\n' >"$L"
    t_match 'Insufficient access \(50\)' "389ds: the service account cannot change cn=config" ds_svc_modify <"$L"

    _t0=$(now)
    ds389_stop "$T_DIR/ds389"
    t_note "389ds TIME stop: $(secs "$_t0" "$(now)") s"
    unset LDAPTLS_CACERT
}

# ================================================================ Samba AD DC
ad_bind() { # DN-or-UPN PASSWORD [URI]: a simple bind + root DSE read; output and rc
    ldapsearch -x -LLL -H "${3:-$AD_URI}" -D "$1" -w "$2" -b '' -s base 1.1 2>&1
}
ad_uacc() { # UID: msDS-User-Account-Control-Computed, as the service account
    ad_svc_search -b "$AD_PEOPLE" "(sAMAccountName=$1)" msDS-User-Account-Control-Computed \
        | sed -n 's/^msDS-User-Account-Control-Computed: //p'
}
ad_svc_attr() { # UID ATTR: as the service account
    ad_svc_search -b "$AD_PEOPLE" "(sAMAccountName=$1)" "$2" | sed -n "s/^$2: //p"
}

flavor_ad() {
    t_note "=== Samba AD DC ($(dpkg-query -W -f '${Version}' samba-ad-dc))"
    _t0=$(now)
    if samba_setup "$T_DIR/samba"; then t_pass "ad: samba_setup"; else
        t_fail "ad: samba_setup"
        return 0
    fi
    _setup=$(secs "$_t0" "$(now)")
    _t0=$(now)
    if samba_start "$T_DIR/samba"; then t_pass "ad: samba_start"; else
        t_fail "ad: samba_start"
        return 0
    fi
    _start=$(secs "$_t0" "$(now)")
    _cache=$(_samba_cache_dir)
    if [ -n "$SAMBA_CREATE_SECS" ]; then
        t_note "ad TIME create (provision + seeding, this run): $SAMBA_CREATE_SECS s"
    else
        t_note "ad TIME create (when the cache was built): $(cat "$_cache/create-secs" 2>/dev/null || echo '?') s"
    fi
    t_note "ad TIME samba_setup (copy from the cache, + create when it had to): $_setup s; start from the copy: $_start s ($AD_URI)"
    LDAPTLS_CACERT=$AD_CA
    export LDAPTLS_CACERT

    _alice=$(ad_user_dn alice)
    _bob=$(ad_user_dn bob)
    _carol=$(ad_user_dn carol)
    _dave=$(ad_user_dn dave)
    _frank=$(ad_user_dn frank)
    _judy=$(ad_user_dn judy)
    _pw=$AD_USER_PW

    # --- transport
    t_ok "ad: service account binds over LDAPS" ad_bind "$AD_SVC_DN" "$AD_SVC_PW"
    t_ok "ad: service account binds with StartTLS" ldapsearch -x -LLL -ZZ -H "$AD_STARTTLS_URI" \
        -D "$AD_SVC_DN" -w "$AD_SVC_PW" -b '' -s base 1.1
    t_match 'Strong\(er\) authentication required \(8\)' "ad: simple bind without TLS answers 8 (strongerAuthRequired)" \
        ad_bind "$AD_SVC_DN" "$AD_SVC_PW" "$AD_STARTTLS_URI"
    t_ok "ad: a user binds by userPrincipalName (alice@example.com) too" ad_bind alice@example.com "$_pw"
    t_match 'Invalid credentials \(49\)' "ad: wrong password answers 49" ad_bind "$_judy" wrong-pass
    t_match 'data 52e' "ad: wrong password: diagnostic has 'data 52e'" ad_bind "$_judy" wrong-pass
    T_OUT_J=$(ad_bind "$_judy" wrong-pass || true)
    t_note "ad: wrong password says: $(printf '%s' "$T_OUT_J" | tr '\n' ' ')"
    t_match 'data 52e' "ad: unknown user: also 'data 52e'" ad_bind "CN=nobody,$AD_PEOPLE" wrong-pass

    # --- lookup
    t_match '^sAMAccountName: alice' "ad: lookup (&(objectCategory=person)(objectClass=user)(sAMAccountName=alice))" \
        ad_svc_search -b "$AD_PEOPLE" '(&(objectCategory=person)(objectClass=user)(sAMAccountName=alice))' \
        sAMAccountName displayName department mail userAccountControl
    t_eq "$(ad_svc_search -b "$AD_PEOPLE" '(sAMAccountName=alice)' displayName | ldif_values displayName)" "王丽" \
        "ad: displayName is the Chinese name"

    # --- lock
    t_eq "$(ad_uacc alice)" 0 "ad: msDS-User-Account-Control-Computed 0 before"
    _i=1
    while [ "$_i" -le 3 ]; do
        t_match 'data 52e' "ad: failed bind $_i of 3 (data 52e)" ad_bind "$_alice" "wrong-$_i"
        _i=$((_i + 1))
    done
    _c=$(ad_uacc alice)
    t_eq "$((${_c:-0} & 16))" 16 "ad: locked: msDS-User-Account-Control-Computed has bit 0x10 ($_c)"
    _lt=$(ad_svc_attr alice lockoutTime)
    t_match '^[1-9][0-9]*$' "ad: locked: lockoutTime > 0 ($_lt)" echo "$_lt"
    t_eq "$(ad_svc_attr alice badPwdCount)" 3 "ad: badPwdCount 3"
    t_match 'data 775' "ad: locked: the right password answers 49 'data 775'" ad_bind "$_alice" "$_pw"
    t_match 'data 775' "ad: locked: a wrong password also 'data 775'" ad_bind "$_alice" wrong-x
    T_OUT_A=$(ad_bind "$_alice" "$_pw" || true)
    t_note "ad: locked says: $(printf '%s' "$T_OUT_A" | tr '\n' ' ')"
    # --- unlock
    { dn_line "$_alice"; printf 'changetype: modify\nreplace: lockoutTime\nlockoutTime: 0\n-\n'; } >"$L"
    t_ok "ad: unlock = replace lockoutTime 0 (service account)" ad_svc_modify <"$L"
    t_eq "$(ad_uacc alice)" 0 "ad: unlocked: computed bit 0x10 clear"
    t_eq "$(ad_svc_attr alice badPwdCount)" 0 "ad: unlocked: badPwdCount reset to 0"
    t_ok "ad: unlocked: bind succeeds" ad_bind "$_alice" "$_pw"
    { dn_line "$_alice"; printf 'changetype: modify\nreplace: lockoutTime\nlockoutTime: 0\n-\n'; } >"$L"
    t_ok "ad: unlocking an unlocked user: replace lockoutTime 0 succeeds again (no 'unchanged' signal)" ad_svc_modify <"$L"
    { dn_line "$_alice"; printf 'changetype: modify\nreplace: lockoutTime\nlockoutTime: 5\n-\n'; } >"$L"
    t_ok "ad: Samba also accepts a non-zero lockoutTime (5)" ad_svc_modify <"$L"
    t_eq "$(ad_uacc alice)" 0 "ad: ... which does not lock (a 1601 lockout has long expired): write only 0"
    { dn_line "$_alice"; printf 'changetype: modify\nreplace: lockoutTime\nlockoutTime: 0\n-\n'; } >"$L"
    ad_svc_modify <"$L" >/dev/null 2>&1 || true

    # --- reset
    { dn_line "$_carol"; printf 'changetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n-\n' "$(ad_unicodepwd New-Pass-2026a)"; } >"$L"
    t_ok "ad: reset = replace unicodePwd (quoted UTF-16LE, base64) over LDAPS (service account)" ad_svc_modify <"$L"
    t_ok "ad: the new password works" ad_bind "$_carol" New-Pass-2026a
    { dn_line "$_carol"; printf 'changetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n-\n' "$(ad_unicodepwd New-Pass-2026b)"; } >"$L"
    t_ok "ad: reset over StartTLS" ldapmodify -x -ZZ -H "$AD_STARTTLS_URI" -D "$AD_SVC_DN" -w "$AD_SVC_PW" <"$L"
    { dn_line "$_carol"; printf 'changetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n-\n' "$(ad_unicodepwd x)"; } >"$L"
    t_match 'Constraint violation \(19\)' "ad: a too short password answers 19" ad_svc_modify <"$L"
    t_note "ad: too short says: $(printf '%s' "$T_OUT" | tr '\n' ' ')"
    # reset + must-change in one modify
    { dn_line "$_carol"; printf 'changetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n-\nreplace: pwdLastSet\npwdLastSet: 0\n-\n' "$(ad_unicodepwd New-Pass-2026c)"; } >"$L"
    t_ok "ad: reset + must-change in one modify (unicodePwd, then pwdLastSet 0)" ad_svc_modify <"$L"
    t_eq "$(ad_svc_attr carol pwdLastSet)" 0 "ad: pwdLastSet 0"
    t_match 'data 773' "ad: must-change: bind answers 49 'data 773'" ad_bind "$_carol" New-Pass-2026c
    T_OUT_C=$(ad_bind "$_carol" New-Pass-2026c || true)
    t_note "ad: must change says: $(printf '%s' "$T_OUT_C" | tr '\n' ' ')"
    t_match 'data 52e' "ad: must-change + wrong password: 'data 52e'" ad_bind "$_carol" wrong
    { dn_line "$_carol"; printf 'changetype: modify\nreplace: pwdLastSet\npwdLastSet: -1\n-\n'; } >"$L"
    t_ok "ad: clear must-change = replace pwdLastSet -1" ad_svc_modify <"$L"
    t_ok "ad: then the bind succeeds" ad_bind "$_carol" New-Pass-2026c
    # a reset while locked
    for _i in 1 2 3; do ad_bind "$_bob" "wrong-$_i" >/dev/null 2>&1 || true; done
    t_match 'data 775' "ad: bob locked" ad_bind "$_bob" "$_pw"
    { dn_line "$_bob"; printf 'changetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n-\n' "$(ad_unicodepwd Bob-Pass-2026d)"; } >"$L"
    t_ok "ad: reset bob while locked" ad_svc_modify <"$L"
    T_OUT_B=$(ad_bind "$_bob" Bob-Pass-2026d || true)
    t_match 'data 775' "ad: a reset does NOT unlock (bind still 'data 775')" echo "$T_OUT_B"
    t_note "ad: bob after the reset: uacc=$(ad_uacc bob) lockoutTime=$(ad_svc_attr bob lockoutTime)"
    { dn_line "$_bob"; printf 'changetype: modify\nreplace: lockoutTime\nlockoutTime: 0\n-\n'; } | ad_svc_modify >/dev/null 2>&1 || true

    # --- must-change alone
    { dn_line "$_frank"; printf 'changetype: modify\nreplace: pwdLastSet\npwdLastSet: 0\n-\n'; } >"$L"
    t_ok "ad: must-change = replace pwdLastSet 0 (service account)" ad_svc_modify <"$L"
    t_match 'data 773' "ad: frank's bind answers 'data 773'" ad_bind "$_frank" "$_pw"
    _uac=$(ad_svc_attr frank msDS-User-Account-Control-Computed)
    t_note "ad: frank's msDS-User-Account-Control-Computed with pwdLastSet 0: $_uac (0x800000 = PASSWORD_EXPIRED)"

    # --- disable / enable
    _uac=$(ad_svc_attr dave userAccountControl)
    t_eq "$_uac" 512 "ad: dave's userAccountControl 512 (NORMAL_ACCOUNT)"
    { dn_line "$_dave"; printf 'changetype: modify\nreplace: userAccountControl\nuserAccountControl: %s\n-\n' $((_uac | 2)); } >"$L"
    t_ok "ad: disable = replace userAccountControl with bit 0x2 set (514)" ad_svc_modify <"$L"
    t_match 'data 533' "ad: disabled: bind answers 49 'data 533'" ad_bind "$_dave" "$_pw"
    T_OUT_D=$(ad_bind "$_dave" wrong || true)
    t_note "ad: disabled + wrong password says: $(printf '%s' "$T_OUT_D" | tr '\n' ' ')"
    { dn_line "$_dave"; printf 'changetype: modify\nreplace: userAccountControl\nuserAccountControl: %s\n-\n' $((_uac & ~2)); } >"$L"
    t_ok "ad: enable = clear bit 0x2 (512)" ad_svc_modify <"$L"
    t_ok "ad: enabled: bind succeeds" ad_bind "$_dave" "$_pw"

    # --- groups
    _g=CN=procurement,$AD_GROUPS
    { printf 'dn: %s\nchangetype: modify\nadd: member\nmember:: %s\n-\n' "$_g" "$(b64 "$_judy")"; } >"$L"
    t_ok "ad: grant = add member on the group (service account)" ad_svc_modify <"$L"
    { printf 'dn: %s\nchangetype: modify\nadd: member\nmember:: %s\n-\n' "$_g" "$(b64 "$_judy")"; } >"$L"
    t_match '\([0-9]+\)' "ad: re-adding a member fails" ad_svc_modify <"$L"
    t_note "ad: re-adding a member says: $(printf '%s' "$T_OUT" | tr '\n' ' ')"
    t_match '^memberOf: CN=procurement' "ad: memberOf on the user follows (back link)" \
        ad_svc_search -b "$AD_PEOPLE" '(sAMAccountName=judy)' memberOf
    { printf 'dn: %s\nchangetype: modify\ndelete: member\nmember:: %s\n-\n' "$_g" "$(b64 "$_judy")"; } >"$L"
    t_ok "ad: revoke = delete member" ad_svc_modify <"$L"
    { printf 'dn: %s\nchangetype: modify\ndelete: member\nmember:: %s\n-\n' "$_g" "$(b64 "$_judy")"; } >"$L"
    t_match '\([0-9]+\)' "ad: removing a non-member fails" ad_svc_modify <"$L"
    t_note "ad: removing a non-member says: $(printf '%s' "$T_OUT" | tr '\n' ' ')"
    { printf 'dn: %s\nchangetype: modify\ndelete: member\nmember:: %s\n-\n' "$_g" "$(b64 "$_bob")"; } >"$L"
    t_ok "ad: removing the last member is fine (groups may be empty)" ad_svc_modify <"$L"
    t_match '^dn: CN=helpdesk' "ad: role lookup (&(objectClass=group)(member=DN)) for hd1" \
        ad_svc_search -b "$AD_GROUPS" "(&(objectClass=group)(member=$(ldap_filter_escape "$(ad_user_dn hd1)")))" 1.1

    # --- delegation stops where it should
    { dn_line "$AD_ADMIN_DN"; printf 'changetype: modify\nreplace: lockoutTime\nlockoutTime: 0\n-\n'; } >"$L"
    t_match 'Insufficient access \(50\)' "ad: the service account cannot touch CN=Administrator" ad_svc_modify <"$L"
    { dn_line "$_judy"; printf 'changetype: modify\nreplace: department\ndepartment: x\n-\n'; } >"$L"
    t_match 'Insufficient access \(50\)' "ad: nor write other attributes of people (department)" ad_svc_modify <"$L"

    _t0=$(now)
    samba_stop "$T_DIR/samba"
    t_note "ad TIME stop: $(secs "$_t0" "$(now)") s"
    unset LDAPTLS_CACERT
}

for _f in $WANT; do
    case $_f in
        389ds) flavor_389ds ;;
        ad) flavor_ad ;;
        *) t_fail "unknown flavour $_f" ;;
    esac
done
t_done
