# shellcheck shell=sh
# tests/lib/slapd.sh — a throw-away OpenLDAP 2.5 server for tests and ./dev demo.
# POSIX sh (dash), safe under `set -eu`. Needs LDAPDESK_SRC (the repository root).
#
#   slapd_setup DIR    DIR/slapd.conf (slapd.conf format), DIR/db seeded from conf/demo.ldif,
#                      TLS files from certs_make DIR, DIR/bind.pw (service password, 0600, no
#                      newline). Exports SLAPD_DIR. Wipes an existing DIR/db.
#                      SLAPD_EXTRA_ACL (slapd.conf lines) goes before the ACLs below, so a
#                      test can refuse the service account one thing.
#   slapd_start DIR    starts slapd in the foreground-in-background on a free 127.0.0.1 port,
#                      waits until it answers. Exports LDAP_PORT, LDAP_URI, SLAPD_PID, SLAPD_DIR.
#                      Registers the pid with t_track when harness.sh is loaded.
#                      SLAPD_DEBUG (default 0) is passed to -d; the log is DIR/slapd.log.
#                      Waits up to T_START_TIMEOUT seconds (default 10).
#   slapd_stop DIR     TERM, bounded wait, KILL.
#   slapd_restart DIR  stop and start again on the same port.
#
# Constants (exported): LDAP_BASE LDAP_PEOPLE LDAP_GROUPS LDAP_POLICY_DN LDAP_ROOT_DN LDAP_ROOT_PW
#   LDAP_SVC_DN LDAP_SVC_PW LDAP_USER_PW LDAP_OP_PW LDAP_PLACEHOLDER_DN
#
# Helpers (need a running slapd, i.e. LDAP_URI):
#   ldap_root_search ARGS...    ldapsearch -LLL as rootdn, unwrapped LDIF
#   ldap_root_modify [ARGS...]  ldapmodify as rootdn, LDIF on stdin
#   ldap_svc_search ARGS... / ldap_svc_modify [ARGS...]   the same as the service account
#   ldif_values ATTR            (filter) values of ATTR from LDIF on stdin, base64 decoded
#   ldap_filter_escape STRING   RFC 4515 escaping of \ * ( ) for a filter value
#   ldap_user_dn UID            DN of uid=UID under LDAP_PEOPLE (1 if none)
#   ldap_attr UID ATTR          values of ATTR (operational ones too) of uid=UID, via rootdn;
#                               1 when there is no such user or the search failed
#   ldap_user_exists UID        0 if uid=UID is there, 1 if not, 2 if the search failed
#   ldap_lock_user UID          pwdMaxFailure failed binds; 1 unless pwdAccountLockedTime appears
#   ldap_bind_as UID PASSWORD   ldapwhoami -e ppolicy as the user; prints its output, returns its rc
#   ldap_is_member GROUPCN UID  0 if uid's DN is a member of cn=GROUPCN,LDAP_GROUPS, 1 if it
#                               is not, 2 if that cannot be told (no such user or group, the
#                               search failed): an error never reads as "not a member"
#   ldap_group_members GROUPCN  member DNs, one a line; 1 when the search failed

if [ -z "${LDAPDESK_SRC:-}" ] || [ ! -f "$LDAPDESK_SRC/tests/lib/slapd.sh" ]; then
    echo "tests/lib/slapd.sh: set LDAPDESK_SRC to the repository root (got '${LDAPDESK_SRC:-}')" >&2
    return 1 2>/dev/null || exit 1
fi
. "$LDAPDESK_SRC/tests/lib/proc.sh"
. "$LDAPDESK_SRC/tests/lib/certs.sh"

LDAP_BASE=dc=example,dc=com
LDAP_PEOPLE=ou=people,$LDAP_BASE
LDAP_GROUPS=ou=groups,$LDAP_BASE
LDAP_POLICY_DN=cn=default,ou=policies,$LDAP_BASE
LDAP_ROOT_DN=cn=admin,$LDAP_BASE
LDAP_ROOT_PW=rootsecret
LDAP_SVC_DN=cn=ldapdesk,ou=services,$LDAP_BASE
LDAP_SVC_PW=svc-Secret-2026
LDAP_PLACEHOLDER_DN=cn=placeholder,ou=services,$LDAP_BASE
LDAP_USER_PW=User-Pass-2026
LDAP_OP_PW=Op-Pass-2026
export LDAP_BASE LDAP_PEOPLE LDAP_GROUPS LDAP_POLICY_DN LDAP_ROOT_DN LDAP_ROOT_PW \
    LDAP_SVC_DN LDAP_SVC_PW LDAP_PLACEHOLDER_DN LDAP_USER_PW LDAP_OP_PW

SLAPD_BIN=${SLAPD_BIN:-$(command -v slapd 2>/dev/null || echo /usr/sbin/slapd)}
SLAPADD_BIN=${SLAPADD_BIN:-$(command -v slapadd 2>/dev/null || echo /usr/sbin/slapadd)}
SLAPPASSWD_BIN=${SLAPPASSWD_BIN:-$(command -v slappasswd 2>/dev/null || echo /usr/sbin/slappasswd)}

# _slapd_absdir DIR: absolute path of an existing directory
_slapd_absdir() { (cd "$1" && pwd -P); }

slapd_setup() {
    _ss_dir=${1:?slapd_setup: DIR missing}
    _ss_ldif=$LDAPDESK_SRC/conf/demo.ldif
    [ -f "$_ss_ldif" ] || { echo "slapd_setup: $_ss_ldif not found" >&2; return 1; }
    for _ss_b in "$SLAPD_BIN" "$SLAPADD_BIN" "$SLAPPASSWD_BIN"; do
        [ -x "$_ss_b" ] || { echo "slapd_setup: $_ss_b missing (apt-get install slapd)" >&2; return 1; }
    done
    command -v ldapsearch >/dev/null 2>&1 \
        || { echo "slapd_setup: ldapsearch missing (apt-get install ldap-utils)" >&2; return 1; }
    mkdir -p "$_ss_dir" || return 1
    _ss_dir=$(_slapd_absdir "$_ss_dir") || return 1
    if [ -s "$_ss_dir/slapd.pid" ] && proc_alive "$(cat "$_ss_dir/slapd.pid")"; then
        echo "slapd_setup: a slapd still runs in $_ss_dir" >&2
        return 1
    fi
    certs_make "$_ss_dir" || return 1
    (umask 077 && printf '%s' "$LDAP_SVC_PW" >"$_ss_dir/bind.pw") || return 1
    chmod 0600 "$_ss_dir/bind.pw"
    _ss_rootpw=$("$SLAPPASSWD_BIN" -h '{SSHA}' -s "$LDAP_ROOT_PW") || return 1

    cat >"$_ss_dir/slapd.conf" <<EOF
# slapd.conf written by tests/lib/slapd.sh — OpenLDAP 2.5, test directory for ldapdesk
include         /etc/ldap/schema/core.schema
include         /etc/ldap/schema/cosine.schema
include         /etc/ldap/schema/inetorgperson.schema
include         /etc/ldap/schema/nis.schema

modulepath      /usr/lib/ldap
moduleload      back_mdb
# ppolicy carries its own schema in 2.5 (no ppolicy.schema include)
moduleload      ppolicy
moduleload      memberof

pidfile         $_ss_dir/slapd.pid
argsfile        $_ss_dir/slapd.args
loglevel        none

TLSCACertificateFile    $_ss_dir/ca.pem
TLSCertificateFile      $_ss_dir/server.pem
TLSCertificateKeyFile   $_ss_dir/server.key
TLSVerifyClient         never

# frontend: root DSE and schema readable by anyone (clients look up controls/extensions)
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read

database        mdb
suffix          "$LDAP_BASE"
rootdn          "$LDAP_ROOT_DN"
rootpw          $_ss_rootpw
directory       $_ss_dir/db
maxsize         67108864

index   objectClass     eq
index   uid,cn,ou,mail  eq
index   member          eq

limits dn.exact="$LDAP_SVC_DN" size=unlimited time=unlimited

# ACLs: first match wins, order matters.
${SLAPD_EXTRA_ACL:-}
# 1. passwords: the service account is a password administrator (manage => slapd sets pwdReset
#    itself on a reset, skips quality/age/history checks); users may change their own.
access to attrs=userPassword
    by dn.exact="$LDAP_SVC_DN" manage
    by self write
    by anonymous auth
    by * none
# 2. ppolicy state of people: the service account unlocks (deletes pwdAccountLockedTime).
access to dn.subtree="$LDAP_PEOPLE"
        attrs=pwdAccountLockedTime,pwdAccountTmpLockoutEnd,pwdChangedTime,pwdFailureTime,pwdGraceUseTime,pwdHistory,pwdLastSuccess,pwdPolicySubentry,pwdReset,pwdStartTime,pwdEndTime
    by dn.exact="$LDAP_SVC_DN" manage
    by users read
    by * none
# 3. people and groups: the service account creates, moves, deletes, grants, revokes.
access to dn.subtree="$LDAP_PEOPLE"
    by dn.exact="$LDAP_SVC_DN" write
    by users read
    by * none
access to dn.subtree="$LDAP_GROUPS"
    by dn.exact="$LDAP_SVC_DN" write
    by users read
    by * none
# 4. everything else (services, policies, the suffix entry)
access to *
    by users read
    by anonymous auth

# overlays come last: directives after "overlay" belong to that overlay
overlay         memberof
overlay         ppolicy
ppolicy_default "$LDAP_POLICY_DN"
ppolicy_use_lockout
ppolicy_hash_cleartext
EOF

    rm -rf "$_ss_dir/db"
    mkdir -p "$_ss_dir/db" || return 1
    if ! "$SLAPADD_BIN" -q -f "$_ss_dir/slapd.conf" -l "$_ss_ldif" >"$_ss_dir/slapadd.log" 2>&1; then
        echo "slapd_setup: slapadd failed:" >&2
        cat "$_ss_dir/slapadd.log" >&2
        return 1
    fi
    SLAPD_DIR=$_ss_dir
    export SLAPD_DIR
    return 0
}

# _slapd_launch DIR PORT: 0 started, 2 port taken, 1 other failure
_slapd_launch() {
    _sl_dir=$1
    _sl_port=$2
    _sl_uri=ldap://127.0.0.1:$_sl_port/
    rm -f "$_sl_dir/slapd.pid"
    [ ! -f "$_sl_dir/slapd.log" ] || mv -f "$_sl_dir/slapd.log" "$_sl_dir/slapd.log.1"
    # SLAPD_EXTRA_URLS: more listeners (e.g. ldaps://127.0.0.1:PORT/), for this start only
    "$SLAPD_BIN" -f "$_sl_dir/slapd.conf" -h "$_sl_uri${SLAPD_EXTRA_URLS:+ $SLAPD_EXTRA_URLS}" \
        -d "${SLAPD_DEBUG:-0}" \
        </dev/null >"$_sl_dir/slapd.log" 2>&1 &
    _sl_pid=$!
    _sl_end=$(($(date +%s) + ${T_START_TIMEOUT:-10}))
    while :; do
        if ! proc_alive "$_sl_pid"; then
            proc_stop "$_sl_pid" 1
            if grep -q 'errno=98' "$_sl_dir/slapd.log" 2>/dev/null; then
                return 2
            fi
            echo "slapd_start: slapd exited (status ${PROC_RC:-?}); $_sl_dir/slapd.log:" >&2
            tail -n 20 "$_sl_dir/slapd.log" >&2
            return 1
        fi
        if ldapsearch -x -H "$_sl_uri" -o nettimeout=2 -b '' -s base \
            '(objectClass=*)' 1.1 >/dev/null 2>&1; then
            break
        fi
        if [ "$(date +%s)" -ge "$_sl_end" ]; then
            echo "slapd_start: no answer on $_sl_uri within ${T_START_TIMEOUT:-10} s; $_sl_dir/slapd.log:" >&2
            tail -n 20 "$_sl_dir/slapd.log" >&2
            proc_stop "$_sl_pid" 2
            return 1
        fi
        sleep 0.1
    done
    echo "$_sl_pid" >"$_sl_dir/slapd.pid"
    echo "$_sl_port" >"$_sl_dir/port"
    SLAPD_PID=$_sl_pid
    SLAPD_DIR=$_sl_dir
    LDAP_PORT=$_sl_port
    LDAP_URI=ldap://127.0.0.1:$_sl_port
    export SLAPD_PID SLAPD_DIR LDAP_PORT LDAP_URI
    if command -v t_track >/dev/null 2>&1; then t_track "$_sl_pid"; fi
    return 0
}

# slapd_start DIR [PORT]
slapd_start() {
    _st_dir=$(_slapd_absdir "${1:?slapd_start: DIR missing}") || return 1
    [ -f "$_st_dir/slapd.conf" ] || { echo "slapd_start: run slapd_setup $_st_dir first" >&2; return 1; }
    if [ -s "$_st_dir/slapd.pid" ] && proc_alive "$(cat "$_st_dir/slapd.pid")"; then
        echo "slapd_start: slapd already runs in $_st_dir (pid $(cat "$_st_dir/slapd.pid"))" >&2
        return 1
    fi
    if [ -n "${2:-}" ]; then
        # a restart on the old port: wait up to ~10 s for whoever holds it
        _st_try=0
        while [ "$_st_try" -lt 50 ]; do
            if _slapd_launch "$_st_dir" "$2"; then return 0; else _st_rc=$?; fi
            [ "$_st_rc" = 2 ] || return 1
            _st_try=$((_st_try + 1))
            sleep 0.2
        done
        echo "slapd_start: cannot listen on port $2 (taken for 10 s)" >&2
        return 1
    fi
    _st_try=0
    while [ "$_st_try" -lt 20 ]; do
        _st_port=$(random_port) || return 1
        if _slapd_launch "$_st_dir" "$_st_port"; then return 0; else _st_rc=$?; fi
        [ "$_st_rc" = 2 ] || return 1
        _st_try=$((_st_try + 1))
    done
    echo "slapd_start: no free port after 20 tries" >&2
    return 1
}

slapd_stop() {
    _sp_dir=$(_slapd_absdir "${1:?slapd_stop: DIR missing}") || return 1
    _sp_pid=
    [ ! -s "$_sp_dir/slapd.pid" ] || _sp_pid=$(cat "$_sp_dir/slapd.pid")
    if [ -z "$_sp_pid" ] && [ "${SLAPD_DIR:-}" = "$_sp_dir" ]; then _sp_pid=${SLAPD_PID:-}; fi
    [ -n "$_sp_pid" ] || return 0
    proc_stop "$_sp_pid" 10
    if command -v t_untrack >/dev/null 2>&1; then t_untrack "$_sp_pid"; fi
    rm -f "$_sp_dir/slapd.pid"
    return 0
}

slapd_restart() {
    _sr_dir=$(_slapd_absdir "${1:?slapd_restart: DIR missing}") || return 1
    _sr_port=
    [ ! -s "$_sr_dir/port" ] || _sr_port=$(cat "$_sr_dir/port")
    [ -n "$_sr_port" ] || { echo "slapd_restart: $_sr_dir was never started" >&2; return 1; }
    slapd_stop "$_sr_dir" || return 1
    slapd_start "$_sr_dir" "$_sr_port"
}

# ---------------------------------------------------------------- directory helpers

_ldap_need_uri() {
    [ -n "${LDAP_URI:-}" ] || { echo "ldap helpers: LDAP_URI not set (slapd_start first)" >&2; return 1; }
}

ldap_root_search() {
    _ldap_need_uri || return 1
    ldapsearch -x -LLL -o ldif-wrap=no -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" "$@"
}

ldap_root_modify() {
    _ldap_need_uri || return 1
    ldapmodify -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" "$@"
}

ldap_svc_search() {
    _ldap_need_uri || return 1
    ldapsearch -x -LLL -o ldif-wrap=no -H "$LDAP_URI" -D "$LDAP_SVC_DN" -w "$LDAP_SVC_PW" "$@"
}

ldap_svc_modify() {
    _ldap_need_uri || return 1
    ldapmodify -x -H "$LDAP_URI" -D "$LDAP_SVC_DN" -w "$LDAP_SVC_PW" "$@"
}

# ldif_values ATTR: values of ATTR (case-insensitive name, also "dn") from unwrapped LDIF on stdin
ldif_values() {
    awk -v want="$1" '
        BEGIN { want = tolower(want) }
        /^#/ { next }
        {
            i = index($0, ":"); if (i == 0) next
            if (tolower(substr($0, 1, i - 1)) != want) next
            rest = substr($0, i + 1)
            if (substr(rest, 1, 1) == ":") {
                v = substr(rest, 2); sub(/^ +/, "", v)
                if (v !~ /^[A-Za-z0-9+\/=]*$/) next
                cmd = "printf %s \047" v "\047 | base64 -d"
                out = ""; n = 0
                while ((cmd | getline l) > 0) { out = (n++ ? out "\n" : "") l }
                close(cmd)
                print out
            } else {
                sub(/^ /, "", rest); print rest
            }
        }'
}

ldap_filter_escape() {
    printf '%s\n' "$1" | sed -e 's/\\/\\5c/g' -e 's/\*/\\2a/g' -e 's/(/\\28/g' -e 's/)/\\29/g'
}

_ldap_check_uid() {
    case $1 in
        '' | *[!A-Za-z0-9._-]*) echo "ldap helpers: bad uid '$1'" >&2; return 1 ;;
    esac
}

ldap_user_dn() {
    _ldap_check_uid "${1:-}" || return 1
    _ud_out=$(ldap_root_search -b "$LDAP_PEOPLE" "(uid=$1)" 1.1) || return 1
    _ud_dn=$(printf '%s\n' "$_ud_out" | ldif_values dn | head -n 1)
    [ -n "$_ud_dn" ] || { echo "ldap_user_dn: no user uid=$1 under $LDAP_PEOPLE" >&2; return 1; }
    printf '%s\n' "$_ud_dn"
}

# "The entry is gone" must not pass on a directory that did not answer: 2 then, not 1.
ldap_user_exists() {
    _ldap_check_uid "${1:-}" || return 2
    _ue_out=$(ldap_root_search -b "$LDAP_PEOPLE" "(uid=$1)" 1.1) || return 2
    case $_ue_out in
        dn:*) return 0 ;;
        *) return 1 ;;
    esac
}

ldap_attr() {
    _ldap_check_uid "${1:-}" || return 1
    _la_attr=${2:?ldap_attr: ATTR missing}
    _la_out=$(ldap_root_search -b "$LDAP_PEOPLE" "(uid=$1)" "$_la_attr") || return 1
    case $_la_out in
        dn:*) ;;
        *) echo "ldap_attr: no user uid=$1" >&2; return 1 ;;
    esac
    printf '%s\n' "$_la_out" | ldif_values "$_la_attr"
}

# ldap_set_lock_time UID TIME: pwdAccountLockedTime of UID set to TIME (GeneralizedTime, e.g.
# 000001010000Z for an administrator's lock), as rootdn.
ldap_set_lock_time() {
    printf 'dn: %s\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: %s\n' \
        "$(ldap_user_dn "${1:-}")" "${2:?ldap_set_lock_time: TIME missing}" | ldap_root_modify >/dev/null
}

# ldap_add_policy NAME LINE...: a password policy cn=NAME,ou=policies (on userPassword) with
# the attribute lines given ("pwdMaxAge: 60"); ldap_set_policy UID NAME puts UID under it.
ldap_add_policy() {
    _ap_name=${1:?ldap_add_policy: NAME missing}
    shift
    {
        printf 'dn: cn=%s,ou=policies,%s\nobjectClass: organizationalRole\nobjectClass: pwdPolicy\n' \
            "$_ap_name" "$LDAP_BASE"
        printf 'cn: %s\npwdAttribute: userPassword\n' "$_ap_name"
        printf '%s\n' "$@"
    } | ldap_root_modify -a >/dev/null
}

ldap_set_policy() {
    printf 'dn: %s\nchangetype: modify\nreplace: pwdPolicySubentry\npwdPolicySubentry: cn=%s,ou=policies,%s\n' \
        "$(ldap_user_dn "${1:-}")" "${2:?ldap_set_policy: NAME missing}" "$LDAP_BASE" | ldap_root_modify >/dev/null
}

# ldap_unlock_user UID: slapd's failure lock of UID lifted, as rootdn (since 2.5 this also
# clears pwdFailureTime).
ldap_unlock_user() {
    printf 'dn: %s\nchangetype: modify\ndelete: pwdAccountLockedTime\n' "$(ldap_user_dn "${1:-}")" |
        ldap_root_modify >/dev/null
}

ldap_lock_user() {
    _lu_dn=$(ldap_user_dn "${1:-}") || return 1
    _lu_max=$(ldap_root_search -b "$LDAP_POLICY_DN" -s base '(objectClass=*)' pwdMaxFailure \
        | ldif_values pwdMaxFailure)
    _lu_max=${_lu_max:-3}
    _lu_i=0
    while [ "$_lu_i" -lt "$_lu_max" ]; do
        ldapwhoami -x -H "$LDAP_URI" -D "$_lu_dn" -w "wrong-password-$_lu_i" >/dev/null 2>&1 || true
        _lu_i=$((_lu_i + 1))
    done
    _lu_t=$(ldap_attr "$1" pwdAccountLockedTime) || return 1
    [ -n "$_lu_t" ] || {
        echo "ldap_lock_user: $1 not locked after $_lu_max failed binds" >&2
        return 1
    }
    return 0
}

ldap_bind_as() {
    _ba_dn=$(ldap_user_dn "${1:-}") || return 1
    _ldap_need_uri || return 1
    ldapwhoami -x -H "$LDAP_URI" -D "$_ba_dn" -w "${2-}" -e ppolicy 2>&1
}

ldap_is_member() {
    _im_dn=$(ldap_user_dn "${2:-}") || return 2
    _im_f="(member=$(ldap_filter_escape "$_im_dn"))"
    _im_out=$(ldap_root_search -b "cn=${1:?ldap_is_member: GROUPCN missing},$LDAP_GROUPS" -s base \
        "$_im_f" 1.1) || return 2
    case $_im_out in
        dn:*) return 0 ;;
        *) return 1 ;;
    esac
}

ldap_group_members() {
    _gm_out=$(ldap_root_search -b "cn=${1:?ldap_group_members: GROUPCN missing},$LDAP_GROUPS" \
        -s base '(objectClass=*)' member) || return 1
    printf '%s\n' "$_gm_out" | ldif_values member
}
