# shellcheck shell=sh
# tests/lib/ds389.sh — a throw-away 389 Directory Server (Debian 12: 389-ds-base 2.3) for the
# flavour tests and ./dev demo --flavor 389ds. POSIX sh (dash), safe under `set -eu`.
# Needs LDAPDESK_SRC (the repository root); sources proc.sh and certs.sh (not harness.sh).
#
#   ds389_setup DIR   DIR/prefix = a private 389 DS instance "ldt" (suffix dc=example,dc=com)
#                     copied from a provisioned, stopped instance in the cache (created on first
#                     use with `dscreate from-file`, ~10 s; a copy takes well under 1 s).
#                     DIR/ca.pem (the CA of the LDAPS/StartTLS certificate, from certs_make),
#                     DIR/bind.pw (service password, 0600, no newline). Exports DS_DIR and
#                     DS389_CREATE_SECS (seconds dscreate+seeding took; empty on a cache hit).
#   ds389_start DIR [PORT SPORT]
#                     ns-slapd -d 0 in the background on 127.0.0.1, LDAP on PORT and LDAPS on
#                     SPORT (free ports when omitted); waits up to T_START_TIMEOUT s (default 20).
#                     Exports DS_PID DS_PORT DS_LDAPS_PORT DS_URI DS_LDAPS_URI DS_CA DS_DIR.
#                     Registers the pid with t_track when harness.sh is loaded. Log: DIR/ns-slapd.log
#                     and DIR/prefix/var/log/dirsrv/slapd-ldt/{errors,access}.
#   ds389_stop DIR    TERM, bounded wait, KILL.
#
# Cache: ${LDAPDESK_FLAVOR_CACHE:-/tmp/ldapdesk-flavor-cache}/ds389-VERSION-SUM, VERSION = the
#   389-ds-base package version, SUM = cksum of this file and conf/demo.ldif (edit either and a
#   new cache is built). Remove the directory to force a rebuild.
#
# Constants (exported): DS_BASE DS_PEOPLE DS_GROUPS DS_ROOT_DN DS_ROOT_PW DS_SVC_DN DS_SVC_PW
#   DS_USER_PW DS_OP_PW DS_PLACEHOLDER_DN
# The instance (see doc/flavors.md): global password policy passwordLockout on,
#   passwordMaxFailure 3, passwordLockoutDuration 3600, passwordResetFailureCount 600,
#   passwordMustChange on, passwordTrackUpdateTime on (pwdUpdateTime: when the password last
#   changed, which ldapdeskd's start-up recovery reads), passwordAdminDN = DS_SVC_DN; a local (per-entry) policy without lockout
#   on DS_SVC_DN; ACIs: DS_SVC_DN may add/delete/write people and groups, including the
#   operational lockout attributes; authenticated users read (not userPassword); self may change
#   its userPassword; DS_SVC_DN may read objectClass, passwordMustChange, passwordExp,
#   passwordMaxAge, passwordMinLength, passwordLockoutDuration and passwordResetFailureCount
#   of cn=config (the global password policy: whether a reset forces a change, whether
#   passwordExpirationTime is in force, how long a one-time password must be, when a lock
#   began). Runs as root (nsslapd-localuser: root), so DIR
#   may sit in a 0700 T_DIR.
#
# Helpers (need ds389_start): ds_root_search ARGS / ds_root_modify / ds_svc_search ARGS /
#   ds_svc_modify / ds_user_dn UID / ds_attr UID ATTR — ldapsearch/ldapmodify over LDAPS
#   (LDAPTLS_CACERT=DS_CA), LDIF unwrapped.

if [ -z "${LDAPDESK_SRC:-}" ] || [ ! -f "$LDAPDESK_SRC/tests/lib/ds389.sh" ]; then
    echo "tests/lib/ds389.sh: set LDAPDESK_SRC to the repository root (got '${LDAPDESK_SRC:-}')" >&2
    return 1 2>/dev/null || exit 1
fi
command -v proc_stop >/dev/null 2>&1 || . "$LDAPDESK_SRC/tests/lib/proc.sh"
command -v certs_make >/dev/null 2>&1 || . "$LDAPDESK_SRC/tests/lib/certs.sh"

DS_BASE=dc=example,dc=com
DS_PEOPLE=ou=people,$DS_BASE
DS_GROUPS=ou=groups,$DS_BASE
DS_ROOT_DN='cn=Directory Manager'
DS_ROOT_PW=rootsecret-389
DS_SVC_DN=cn=ldapdesk,ou=services,$DS_BASE
DS_SVC_PW=svc-Secret-2026
DS_PLACEHOLDER_DN=cn=placeholder,ou=services,$DS_BASE
DS_USER_PW=User-Pass-2026
DS_OP_PW=Op-Pass-2026
export DS_BASE DS_PEOPLE DS_GROUPS DS_ROOT_DN DS_ROOT_PW DS_SVC_DN DS_SVC_PW DS_PLACEHOLDER_DN \
    DS_USER_PW DS_OP_PW

DS389_INST=ldt
DS389_NS_SLAPD=${DS389_NS_SLAPD:-/usr/sbin/ns-slapd}

_ds_absdir() { (cd "$1" && pwd -P); }
_ds_now() { date +%s.%N | cut -c1-14; }
_ds_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# _ds_unwrap FILE: join LDIF continuation lines in place (paths in dse.ldif may be wrapped)
_ds_unwrap() {
    awk 'NR > 1 && /^ / { buf = buf substr($0, 2); next }
         NR > 1 { print buf } { buf = $0 } END { if (NR) print buf }' "$1" >"$1.unwrapped" \
        && mv -f "$1.unwrapped" "$1"
}

_ds389_cache_dir() {
    _dc_ver=$(dpkg-query -W -f '${Version}' 389-ds-base 2>/dev/null || true)
    [ -n "$_dc_ver" ] || { echo "ds389: package 389-ds-base not installed (apt-get install 389-ds-base)" >&2; return 1; }
    _dc_ver=$(printf '%s' "$_dc_ver" | tr -c 'A-Za-z0-9.-' '_')
    _dc_sum=$(cat "$LDAPDESK_SRC/tests/lib/ds389.sh" "$LDAPDESK_SRC/conf/demo.ldif" | cksum | cut -d' ' -f1)
    printf '%s/ds389-%s-%s\n' "${LDAPDESK_FLAVOR_CACHE:-/tmp/ldapdesk-flavor-cache}" "$_dc_ver" "$_dc_sum"
}

# _ds389_prefix_tree P: the hand-built prefix dscreate installs into (PREFIX=P)
_ds389_prefix_tree() {
    _pt=$1
    mkdir -p "$_pt/share/dirsrv/inf" "$_pt/share/dirsrv/data" "$_pt/etc/dirsrv" "$_pt/etc/default" \
        "$_pt/etc/tmpfiles.d" "$_pt/var/lib/dirsrv" "$_pt/var/log/dirsrv" "$_pt/run/dirsrv" \
        "$_pt/run/lock/dirsrv" "$_pt/tmp" || return 1
    cp -a /usr/share/dirsrv/data/. "$_pt/share/dirsrv/data/" || return 1
    ln -s /usr/share/dirsrv/schema "$_pt/share/dirsrv/schema"
    cp -a /etc/dirsrv/config /etc/dirsrv/schema "$_pt/etc/dirsrv/" || return 1
    # listen on loopback only, from the very first start
    sed -i 's/^nsslapd-port: %ds_port%$/&\nnsslapd-listenhost: 127.0.0.1\nnsslapd-securelistenhost: 127.0.0.1/' \
        "$_pt/share/dirsrv/data/template-dse.ldif"
    grep -q '^nsslapd-listenhost: 127.0.0.1' "$_pt/share/dirsrv/data/template-dse.ldif" \
        || { echo "ds389: template-dse.ldif has no 'nsslapd-port: %ds_port%' line" >&2; return 1; }
    sed -e "s#^data_dir = .*#data_dir = $_pt/share#" \
        -e "s#^tmp_dir = .*#tmp_dir = $_pt/tmp#" \
        -e "s#^sysconf_dir = .*#sysconf_dir = $_pt/etc#" \
        -e "s#^initconfig_dir = .*#initconfig_dir = $_pt/etc/default#" \
        -e "s#^tmpfiles_d = .*#tmpfiles_d = $_pt/etc/tmpfiles.d#" \
        -e "s#^local_state_dir = .*#local_state_dir = $_pt/var#" \
        -e "s#^with_systemd = 1#with_systemd = 0#" \
        -e "s#^\(config_dir\|schema_dir\|cert_dir\) = /etc#\1 = $_pt/etc#" \
        -e "s#^\(run_dir\|ldapi\|pid_file\|lock_dir\) = /run#\1 = $_pt/run#" \
        -e "s#^\(log_dir\|access_log\|audit_log\|error_log\|security_log\) = /var#\1 = $_pt/var#" \
        -e "s#^\(db_dir\|backup_dir\|ldif_dir\) = /var#\1 = $_pt/var#" \
        -e "s#^db_home_dir = .*#db_home_dir = $_pt/var/lib/dirsrv/slapd-{instance_name}/db#" \
        /usr/share/dirsrv/inf/defaults.inf >"$_pt/share/dirsrv/inf/defaults.inf" || return 1
    chmod -R go+rX "$_pt"
}

# _ds389_seed_ldif: conf/demo.ldif without the OpenLDAP ppolicy entries and attributes
_ds389_seed_ldif() {
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         /(^|\n)dn: [^\n]*ou=policies,dc=example,dc=com(\n|$)/ { next }
         { gsub(/\npwdPolicySubentry: [^\n]*/, ""); print }' "$LDAPDESK_SRC/conf/demo.ldif"
}

# _ds389_create CACHE: build the provisioned, stopped instance in CACHE (a fresh directory)
_ds389_create() {
    _cr=$1
    _cr_p=$_cr/prefix
    _cr_cfg=$_cr_p/etc/dirsrv/slapd-$DS389_INST
    _ds389_prefix_tree "$_cr_p" || return 1
    certs_make "$_cr" || return 1
    _cr_port=$(random_port) || return 1
    _cr_sport=$(random_port) || return 1
    cat >"$_cr/ds.inf" <<EOF
[general]
full_machine_name = localhost
strict_host_checking = False
selinux = False
systemd = False
start = True
[slapd]
instance_name = $DS389_INST
prefix = $_cr_p
port = $_cr_port
ldapi = /tmp/.ldt389-$$.socket
secure_port = $_cr_sport
root_dn = $DS_ROOT_DN
root_password = $DS_ROOT_PW
self_sign_cert = False
user = root
group = root
[backend-userroot]
sample_entries = no
suffix = $DS_BASE
create_suffix_entry = False
EOF
    if ! (cd "$_cr" && PREFIX=$_cr_p timeout -k 5 180 dscreate -v from-file "$_cr/ds.inf") \
        >"$_cr/dscreate.log" 2>&1; then
        echo "ds389_setup: dscreate from-file failed ($_cr/dscreate.log):" >&2
        tail -n 25 "$_cr/dscreate.log" >&2
        _ds389_kill_pidfile "$_cr_p/run/dirsrv/slapd-$DS389_INST.pid"
        rm -f "/tmp/.ldt389-$$.socket"
        return 1
    fi
    _cr_uri=ldap://127.0.0.1:$_cr_port
    _cr_log=$_cr/seed.log
    {
        # TLS: our certs_make certificate (SAN localhost, 127.0.0.1) into the instance's NSS db
        openssl pkcs12 -export -in "$_cr/server.pem" -inkey "$_cr/server.key" -certfile "$_cr/ca.pem" \
            -name Server-Cert -out "$_cr/server.p12" -passout pass:p12-ldt &&
        pk12util -i "$_cr/server.p12" -d "sql:$_cr_cfg" -k "$_cr_cfg/pwdfile.txt" -W p12-ldt &&
        certutil -M -d "sql:$_cr_cfg" -f "$_cr_cfg/pwdfile.txt" -n "ldapdesk test CA - ldapdesk tests" \
            -t "CT,," &&
        rm -f "$_cr/server.p12" &&
        ldapmodify -x -H "$_cr_uri" -D "$DS_ROOT_DN" -w "$DS_ROOT_PW" <<EOF &&
dn: cn=config
changetype: modify
replace: nsslapd-security
nsslapd-security: on
-
replace: passwordLockout
passwordLockout: on
-
replace: passwordMaxFailure
passwordMaxFailure: 3
-
replace: passwordLockoutDuration
passwordLockoutDuration: 3600
-
replace: passwordUnlock
passwordUnlock: on
-
replace: passwordResetFailureCount
passwordResetFailureCount: 600
-
replace: passwordTrackUpdateTime
passwordTrackUpdateTime: on
-
replace: passwordCheckSyntax
passwordCheckSyntax: off
-
replace: passwordAdminDN
passwordAdminDN: $DS_SVC_DN
-
replace: nsslapd-pwpolicy-local
nsslapd-pwpolicy-local: on

dn: cn=RSA,cn=encryption,cn=config
changetype: modify
replace: nsSSLPersonalitySSL
nsSSLPersonalitySSL: Server-Cert
-
replace: nsSSLActivation
nsSSLActivation: on
EOF
        # dscreate adds a bare suffix entry even with create_suffix_entry = False: replace it
        { ldapdelete -x -H "$_cr_uri" -D "$DS_ROOT_DN" -w "$DS_ROOT_PW" "$DS_BASE" || true; } &&
        _ds389_seed_ldif | ldapadd -x -H "$_cr_uri" -D "$DS_ROOT_DN" -w "$DS_ROOT_PW" &&
        # only now: with passwordMustChange on, an add by the root DN stamps every imported user
        # passwordExpirationTime 19700101000000Z (must change at first bind)
        ldapmodify -x -H "$_cr_uri" -D "$DS_ROOT_DN" -w "$DS_ROOT_PW" <<EOF &&
dn: cn=config
changetype: modify
replace: passwordMustChange
passwordMustChange: on

dn: $DS_BASE
changetype: modify
add: aci
aci: (targetattr != "userPassword")(version 3.0; acl "ldapdesk: authenticated users read"; allow (read, search, compare) userdn = "ldap:///all";)
aci: (targetattr = "userPassword")(version 3.0; acl "ldapdesk: users change their own password"; allow (write) userdn = "ldap:///self";)
aci: (target = "ldap:///$DS_PEOPLE")(targetattr = "*")(version 3.0; acl "ldapdesk: service account manages people"; allow (all) userdn = "ldap:///$DS_SVC_DN";)
aci: (target = "ldap:///$DS_PEOPLE")(targetattr = "userPassword || passwordRetryCount || accountUnlockTime || retryCountResetTime || passwordExpirationTime || passwordExpWarned || passwordGraceUserTime || passwordHistory || passwordAllowChangeTime || pwdUpdateTime || pwdReset || nsAccountLock || nsRoleDN")(version 3.0; acl "ldapdesk: service account resets, unlocks, disables"; allow (read, search, compare, write) userdn = "ldap:///$DS_SVC_DN";)
aci: (target = "ldap:///$DS_GROUPS")(targetattr = "*")(version 3.0; acl "ldapdesk: service account manages groups"; allow (all) userdn = "ldap:///$DS_SVC_DN";)

dn: cn=config
changetype: modify
add: aci
aci: (targetattr = "objectClass || passwordMustChange || passwordExp || passwordMaxAge || passwordMinLength || passwordLockoutDuration || passwordResetFailureCount")(version 3.0; acl "ldapdesk: service account reads the global password policy"; allow (read, search, compare) userdn = "ldap:///$DS_SVC_DN";)
EOF
        timeout -k 5 60 dsconf -D "$DS_ROOT_DN" -w "$DS_ROOT_PW" "$_cr_uri" localpwp adduser \
            "$DS_SVC_DN" --pwdlockout off --pwdmustchange off
    } >"$_cr_log" 2>&1 || {
        echo "ds389_setup: seeding the new instance failed ($_cr_log):" >&2
        tail -n 25 "$_cr_log" >&2
        _ds389_kill_pidfile "$_cr_p/run/dirsrv/slapd-$DS389_INST.pid"
        rm -f "/tmp/.ldt389-$$.socket"
        return 1
    }
    _ds389_kill_pidfile "$_cr_p/run/dirsrv/slapd-$DS389_INST.pid"
    rm -f "/tmp/.ldt389-$$.socket"
    # offline edits: no ldapi socket (ns-slapd wants its path < 104 bytes, and it must not be
    # shared between copies); ports are set at start
    sed -i 's/^nsslapd-ldapilisten: on$/nsslapd-ldapilisten: off/' "$_cr_cfg/dse.ldif"
    rm -f "$_cr_cfg/dse.ldif.bak" "$_cr_cfg/dse.ldif.startOK" "$_cr_cfg/dse.ldif.tmp"
    rm -rf "$_cr_p/var/log/dirsrv/slapd-$DS389_INST"/* "$_cr_p/run/dirsrv"/*
    return 0
}

_ds389_kill_pidfile() {
    [ -s "$1" ] || return 0
    proc_stop "$(cat "$1")" 20
    rm -f "$1"
}

ds389_setup() {
    _ss_dir=${1:?ds389_setup: DIR missing}
    for _ss_b in "$DS389_NS_SLAPD" /usr/sbin/dscreate /usr/sbin/dsconf /usr/bin/pk12util /usr/bin/certutil; do
        [ -x "$_ss_b" ] || { echo "ds389_setup: $_ss_b missing (apt-get install 389-ds-base)" >&2; return 1; }
    done
    command -v ldapsearch >/dev/null 2>&1 \
        || { echo "ds389_setup: ldapsearch missing (apt-get install ldap-utils)" >&2; return 1; }
    mkdir -p "$_ss_dir" || return 1
    _ss_dir=$(_ds_absdir "$_ss_dir") || return 1
    if [ -s "$_ss_dir/ds.pid" ] && proc_alive "$(cat "$_ss_dir/ds.pid")"; then
        echo "ds389_setup: ns-slapd still runs in $_ss_dir" >&2
        return 1
    fi
    _ss_cache=$(_ds389_cache_dir) || return 1
    DS389_CREATE_SECS=
    if [ ! -f "$_ss_cache/ready" ]; then
        mkdir -p "${_ss_cache%/*}" && chmod 0755 "${_ss_cache%/*}" || return 1
        _ss_new=$_ss_cache.new.$$
        rm -rf "$_ss_new"
        mkdir -m 0755 "$_ss_new" || return 1
        _ss_t0=$(_ds_now)
        if ! _ds389_create "$_ss_new"; then
            echo "ds389_setup: kept the failed attempt in $_ss_new" >&2
            return 1
        fi
        DS389_CREATE_SECS=$(_ds_secs "$_ss_t0" "$(_ds_now)")
        echo "$DS389_CREATE_SECS" >"$_ss_new/create-secs"
        echo "$_ss_new/prefix" >"$_ss_new/built-at"
        : >"$_ss_new/ready"
        # another process may have won the race: keep theirs
        mv -T "$_ss_new" "$_ss_cache" 2>/dev/null || rm -rf "$_ss_new"
    fi
    export DS389_CREATE_SECS
    # the copy: every path inside dse.ldif names the prefix, so rewrite them
    rm -rf "$_ss_dir/prefix"
    cp -a "$_ss_cache/prefix" "$_ss_dir/prefix" || return 1
    cp -f "$_ss_cache/ca.pem" "$_ss_cache/other-ca.pem" "$_ss_cache/server.pem" "$_ss_dir/" || return 1
    (umask 077 && cp -f "$_ss_cache/server.key" "$_ss_dir/") || return 1
    _ss_cfg=$_ss_dir/prefix/etc/dirsrv/slapd-$DS389_INST
    for _ss_f in "$_ss_cfg/dse.ldif" "$_ss_dir/prefix/share/dirsrv/inf/defaults.inf"; do
        _ds_unwrap "$_ss_f" || return 1
        sed -i "s#$(cat "$_ss_cache/built-at")#$_ss_dir/prefix#g" "$_ss_f" || return 1
    done
    (umask 077 && printf '%s' "$DS_SVC_PW" >"$_ss_dir/bind.pw") || return 1
    chmod 0600 "$_ss_dir/bind.pw"
    DS_DIR=$_ss_dir
    export DS_DIR
    return 0
}

# _ds389_launch DIR PORT SPORT: 0 started, 2 port taken, 1 other failure
_ds389_launch() {
    _sl_dir=$1
    _sl_cfg=$_sl_dir/prefix/etc/dirsrv/slapd-$DS389_INST
    sed -i -e "s/^nsslapd-port: .*/nsslapd-port: $2/" -e "s/^nsslapd-securePort: .*/nsslapd-securePort: $3/" \
        "$_sl_cfg/dse.ldif" || return 1
    _sl_err=$_sl_dir/prefix/var/log/dirsrv/slapd-$DS389_INST/errors
    [ ! -f "$_sl_err" ] || mv -f "$_sl_err" "$_sl_err.1"
    [ ! -f "$_sl_dir/ns-slapd.log" ] || mv -f "$_sl_dir/ns-slapd.log" "$_sl_dir/ns-slapd.log.1"
    rm -f "$_sl_dir/ds.pid"
    "$DS389_NS_SLAPD" -D "$_sl_cfg" -i "$_sl_dir/ds.pid" -d 0 </dev/null >"$_sl_dir/ns-slapd.log" 2>&1 &
    _sl_pid=$!
    _sl_end=$(($(date +%s) + ${T_START_TIMEOUT:-20}))
    while :; do
        if ! proc_alive "$_sl_pid"; then
            proc_stop "$_sl_pid" 1
            if grep -qiE "Address already in use|can't bind|Could not bind|PR_Bind" "$_sl_err" "$_sl_dir/ns-slapd.log" 2>/dev/null; then
                return 2
            fi
            echo "ds389_start: ns-slapd exited (status ${PROC_RC:-?}); $_sl_err:" >&2
            tail -n 20 "$_sl_err" "$_sl_dir/ns-slapd.log" >&2 2>/dev/null
            return 1
        fi
        if ldapsearch -x -H "ldap://127.0.0.1:$2" -o nettimeout=2 -b '' -s base \
            '(objectClass=*)' 1.1 >/dev/null 2>&1; then
            break
        fi
        if [ "$(date +%s)" -ge "$_sl_end" ]; then
            echo "ds389_start: no answer on ldap://127.0.0.1:$2 within ${T_START_TIMEOUT:-20} s; $_sl_err:" >&2
            tail -n 20 "$_sl_err" >&2 2>/dev/null
            proc_stop "$_sl_pid" 5
            return 1
        fi
        sleep 0.1
    done
    echo "$_sl_pid" >"$_sl_dir/ds.pid"
    echo "$2 $3" >"$_sl_dir/ports"
    DS_PID=$_sl_pid
    DS_DIR=$_sl_dir
    DS_PORT=$2
    DS_LDAPS_PORT=$3
    DS_URI=ldap://127.0.0.1:$2
    DS_LDAPS_URI=ldaps://127.0.0.1:$3
    DS_CA=$_sl_dir/ca.pem
    export DS_PID DS_DIR DS_PORT DS_LDAPS_PORT DS_URI DS_LDAPS_URI DS_CA
    if command -v t_track >/dev/null 2>&1; then t_track "$_sl_pid"; fi
    return 0
}

ds389_start() {
    _st_dir=$(_ds_absdir "${1:?ds389_start: DIR missing}") || return 1
    [ -d "$_st_dir/prefix" ] || { echo "ds389_start: run ds389_setup $_st_dir first" >&2; return 1; }
    if [ -s "$_st_dir/ds.pid" ] && proc_alive "$(cat "$_st_dir/ds.pid")"; then
        echo "ds389_start: ns-slapd already runs in $_st_dir (pid $(cat "$_st_dir/ds.pid"))" >&2
        return 1
    fi
    if [ -n "${2:-}" ]; then
        _ds389_launch "$_st_dir" "$2" "${3:?ds389_start: SPORT missing}" && return 0
        echo "ds389_start: cannot listen on ports $2/$3" >&2
        return 1
    fi
    _st_try=0
    while [ "$_st_try" -lt 20 ]; do
        _st_port=$(random_port) || return 1
        _st_sport=$(random_port) || return 1
        [ "$_st_port" != "$_st_sport" ] || continue
        if _ds389_launch "$_st_dir" "$_st_port" "$_st_sport"; then return 0; else _st_rc=$?; fi
        [ "$_st_rc" = 2 ] || return 1
        _st_try=$((_st_try + 1))
    done
    echo "ds389_start: no free ports after 20 tries" >&2
    return 1
}

ds389_stop() {
    _sp_dir=$(_ds_absdir "${1:?ds389_stop: DIR missing}") || return 1
    _sp_pid=
    [ ! -s "$_sp_dir/ds.pid" ] || _sp_pid=$(cat "$_sp_dir/ds.pid")
    if [ -z "$_sp_pid" ] && [ "${DS_DIR:-}" = "$_sp_dir" ]; then _sp_pid=${DS_PID:-}; fi
    [ -n "$_sp_pid" ] || return 0
    proc_stop "$_sp_pid" 20
    if command -v t_untrack >/dev/null 2>&1; then t_untrack "$_sp_pid"; fi
    rm -f "$_sp_dir/ds.pid"
    return 0
}

# ---------------------------------------------------------------- directory helpers (LDAPS)

_ds_need() {
    [ -n "${DS_LDAPS_URI:-}" ] || { echo "ds389 helpers: DS_LDAPS_URI not set (ds389_start first)" >&2; return 1; }
}

ds_root_search() {
    _ds_need || return 1
    LDAPTLS_CACERT=$DS_CA ldapsearch -x -LLL -o ldif-wrap=no -H "$DS_LDAPS_URI" -D "$DS_ROOT_DN" \
        -w "$DS_ROOT_PW" "$@"
}

ds_root_modify() {
    _ds_need || return 1
    LDAPTLS_CACERT=$DS_CA ldapmodify -x -H "$DS_LDAPS_URI" -D "$DS_ROOT_DN" -w "$DS_ROOT_PW" "$@"
}

ds_svc_search() {
    _ds_need || return 1
    LDAPTLS_CACERT=$DS_CA ldapsearch -x -LLL -o ldif-wrap=no -H "$DS_LDAPS_URI" -D "$DS_SVC_DN" \
        -w "$DS_SVC_PW" "$@"
}

ds_svc_modify() {
    _ds_need || return 1
    LDAPTLS_CACERT=$DS_CA ldapmodify -x -H "$DS_LDAPS_URI" -D "$DS_SVC_DN" -w "$DS_SVC_PW" "$@"
}

# ds_user_dn UID: the DN of uid=UID under DS_PEOPLE (as printed by ldapsearch, maybe base64)
ds_user_dn() {
    case ${1:-} in '' | *[!A-Za-z0-9._-]*) echo "ds_user_dn: bad uid '${1:-}'" >&2; return 1 ;; esac
    _du_out=$(ds_root_search -b "$DS_PEOPLE" "(uid=$1)" 1.1) || return 1
    _du_dn=$(printf '%s\n' "$_du_out" | awk '
        /^dn:: / { print "b64 " substr($0, 6); exit } /^dn: / { print "txt " substr($0, 5); exit }')
    case $_du_dn in
        "b64 "*) printf '%s' "${_du_dn#b64 }" | base64 -d && echo ;;
        "txt "*) printf '%s\n' "${_du_dn#txt }" ;;
        *) echo "ds_user_dn: no user uid=$1 under $DS_PEOPLE" >&2; return 1 ;;
    esac
}

# ds_attr UID ATTR: values of ATTR (plain text values only) of uid=UID, as the root DN; 1 when
# there is no such user or the search failed
ds_attr() {
    case ${1:-} in '' | *[!A-Za-z0-9._-]*) echo "ds_attr: bad uid '${1:-}'" >&2; return 1 ;; esac
    # The search's status is kept: an empty answer must not stand for "attribute absent".
    _da_out=$(ds_root_search -b "$DS_PEOPLE" "(uid=$1)" "${2:?ds_attr: ATTR missing}") || return 1
    printf '%s\n' "$_da_out" | grep -q '^dn:' || { echo "ds_attr: no user uid=$1" >&2; return 1; }
    printf '%s\n' "$_da_out" | awk -v want="$2" 'BEGIN { want = tolower(want) }
            { i = index($0, ": "); if (i && tolower(substr($0, 1, i - 1)) == want) print substr($0, i + 2) }'
}
