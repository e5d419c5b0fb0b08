# shellcheck shell=sh
# tests/lib/harness.sh — tiny framework for integration tests that drive the real binaries.
# POSIX sh (dash), safe under `set -eu`. Source it after setting LDAPDESK_SRC (repo root);
# it also sources proc.sh, certs.sh and slapd.sh. Binaries: $LDAPDESKD and $LDAPDESK.
#
#   t_init NAME             T_DIR = fresh temp dir under ${TMPDIR:-/tmp}; traps EXIT/INT/TERM to
#                           kill tracked processes and remove T_DIR (kept when KEEP=1); "# NAME"
#   t_track PID / t_untrack PID   processes to kill at exit (slapd_start/daemon_start do it)
#   t_ok DESC CMD...        passes if CMD exits 0
#   t_exit N DESC CMD...    passes if CMD exits N
#   t_match RE DESC CMD...  passes if CMD's stdout+stderr has a line matching grep -E RE (any exit)
#   t_nomatch RE DESC CMD.. passes if no line matches
#   t_eq A B DESC           passes if A = B (strings)
#   t_empty DESC CMD...     passes if CMD exits 0 and prints nothing (a failed lookup fails it)
#   t_pass DESC / t_fail DESC [WHY] / t_skip DESC WHY / t_note TEXT
#   t_done                  "1..N" then, last, "N passed, M failed, K skipped" (a skip is an
#                           "ok ... # SKIP" line, counted apart: not among the passed); exit 1
#                           if M > 0, 77 (meson's SKIP) if only skips ran, else 0
# After every CMD runner: T_OUT = its output (stdout+stderr), T_RC = its exit status.
# External commands run under `timeout ${T_TIMEOUT:-60}` (exit 124 = timed out); shell functions
# run as they are. Stdin is inherited: `printf x | t_ok DESC cmd` works. CMD runs in a subshell
# ($(...)): variables it sets are lost — call t_start_slapd, daemon_start, slapd_restart... directly:
#   if daemon_start "$conf"; then t_pass "daemon starts"; else t_fail "daemon starts"; t_done; fi
#
#   t_start_slapd           slapd_setup + slapd_start in $T_DIR/slapd (see slapd.sh for exports)
#   daemon_config FILE      ldapdeskd config for the running slapd; exports LDAPDESK_PORT and
#                           LDAPDESK_SOCK. DAEMON_APPROVAL="name ..." sets approval = yes for
#                           those [grant.NAME] sections. Append further sections with cat >>.
#   daemon_config_flavor FILE 389ds|ad (DAEMON_APPROVAL as for daemon_config)
#                           the same for the running 389 DS (ds389_start: StartTLS) or Samba AD DC
#                           (samba_start: LDAPS, user_attr = sAMAccountName); the daemon's own
#                           certificate comes from certs_make $T_DIR/dcerts (DAEMON_CA = its CA).
#   daemon_start CONF       "$LDAPDESKD" -c CONF -f, log $T_DIR/ldapdeskd.log, waits (up to
#                           T_START_TIMEOUT s, default 10) for /v1/health (https on the first
#                           127.0.0.1 listener, else the unix socket); 1 if it exits or stays mute.
#                           Exports DAEMON_PID LDAPDESK_URL LDAPDESK_CA XDG_CACHE_HOME
#   daemon_stop             TERM, bounded wait, KILL; DAEMON_RC = exit status (if known)
#   as_op UID [PASSWORD]    exports LDAPDESK_USER, LDAPDESK_PASSWORD (default Op-Pass-2026)
#   audit_settle            waits until the outcomes of the changes the daemon answered are
#                           stored (it answers first); sqlite3 is a function that calls it
#   audit_pend DB ACTION TARGET AT [OPERATOR]
#                           appends an attempt without outcome to the stopped daemon's audit
#                           database, chained and sealed as ldapdeskd does (with the
#                           session.key beside DB; verify and backups still pass): what a
#                           SIGKILL before its outcome would leave (AUDIT_PEND_SEAL=no: not
#                           sealed, as anyone without the key file would add it)

if [ -z "${LDAPDESK_SRC:-}" ] || [ ! -f "$LDAPDESK_SRC/tests/lib/harness.sh" ]; then
    echo "tests/lib/harness.sh: set LDAPDESK_SRC to the repository root (got '${LDAPDESK_SRC:-}')" >&2
    return 1 2>/dev/null || exit 1
fi
. "$LDAPDESK_SRC/tests/lib/slapd.sh"

T_N=0
T_PASS=0
T_FAIL=0
T_SKIP=0
T_OUT=
T_RC=0

t_init() {
    T_NAME=${1:?t_init: NAME missing}
    _ti_safe=$(printf '%s' "$T_NAME" | tr -c 'A-Za-z0-9_-' '_' | cut -c1-20)
    T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ldt-$_ti_safe.XXXXXX") || {
        echo "t_init: cannot create a temp dir under ${TMPDIR:-/tmp}" >&2
        exit 1
    }
    T_DIR=$(cd "$T_DIR" && pwd -P)
    export T_DIR
    : >"$T_DIR/.pids"
    T_N=0 T_PASS=0 T_FAIL=0 T_SKIP=0 T_DONE='' T_CLEANED=''
    _t_client_leaks
    trap 't_cleanup' EXIT
    trap 't_cleanup 130; trap - EXIT; exit 130' INT
    trap 't_cleanup 143; trap - EXIT; exit 143' TERM
    echo "# $T_NAME"
}

# Under the sanitizers LeakSanitizer's scan at exit is more than half of each CLI run's CPU
# time (55 of 95 ms), and the suites run the CLI about a thousand times. $LDAPDESK then runs
# it without the leak check, except in the suites that set T_CLIENT_LEAKS=1 (client.sh,
# auditor.sh: every command and option of the CLI); the daemon keeps it everywhere.
_t_client_leaks() {
    case ${ASAN_OPTIONS:-} in *detect_leaks=1*) ;; *) return 0 ;; esac
    [ -z "${T_CLIENT_LEAKS:-}" ] || return 0
    printf '#!/bin/sh\nASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" exec "%s" "$@"\n' \
        "$LDAPDESK" >"$T_DIR/ldapdesk"
    chmod 755 "$T_DIR/ldapdesk"
    LDAPDESK=$T_DIR/ldapdesk
    export LDAPDESK
}

# t_mount_tmpfs DIR SIZE: a small tmpfs at DIR, unmounted at cleanup
t_mount_tmpfs() {
    mkdir -p "$1" && mount -t tmpfs -o "size=$2" tmpfs "$1" && echo "$1" >>"$T_DIR/.mounts"
}

t_track() {
    [ -n "${1:-}" ] || return 0
    if [ -n "${T_DIR:-}" ] && [ -d "$T_DIR" ]; then echo "$1" >>"$T_DIR/.pids"; fi
}

t_untrack() {
    [ -n "${1:-}" ] && [ -n "${T_DIR:-}" ] && [ -f "$T_DIR/.pids" ] || return 0
    grep -vx -- "$1" "$T_DIR/.pids" >"$T_DIR/.pids.new" || true
    mv -f "$T_DIR/.pids.new" "$T_DIR/.pids"
}

# print the tail of the logs that explain a failure
_t_logs() {
    for _tl_f in "$T_DIR/ldapdeskd.log" "$T_DIR/slapd/slapd.log"; do
        [ -s "$_tl_f" ] || continue
        echo "# --- last lines of $_tl_f"
        tail -n 30 "$_tl_f" | cut -c1-300 | sed 's/^/#   /'
    done
}

t_cleanup() {
    _tc_rc=$?
    [ -z "${1:-}" ] || _tc_rc=$1
    [ -z "${T_CLEANED:-}" ] || return 0
    T_CLEANED=1
    [ -n "${T_DIR:-}" ] || return 0
    if [ -z "${T_DONE:-}" ]; then
        echo "# aborted with status $_tc_rc after $T_N test(s) ($T_PASS passed, $T_FAIL failed, $T_SKIP skipped)"
        [ -d "$T_DIR" ] && _t_logs
    fi
    if [ -f "$T_DIR/.pids" ]; then
        # newest first: the daemon goes before the slapd it talks to
        for _tc_pid in $(sed -n '1!G;h;$p' "$T_DIR/.pids"); do
            proc_stop "$_tc_pid" 5
        done
    fi
    # mounts a test made under T_DIR (tmpfs for disk-full tests), innermost first
    if [ -f "$T_DIR/.mounts" ]; then
        for _tc_m in $(sed -n '1!G;h;$p' "$T_DIR/.mounts"); do umount "$_tc_m" 2>/dev/null || true; done
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "# KEEP=1: kept $T_DIR" >&2
    else
        rm -rf "$T_DIR"
    fi
    return 0
}

# quote a command line for display
_t_cmdline() {
    _tq_s=
    for _tq_a in "$@"; do
        case $_tq_a in
            '' | *[!A-Za-z0-9_./:=@%+,-]*)
                _tq_a="'$(printf '%s' "$_tq_a" | sed "s/'/'\\\\''/g")'" ;;
        esac
        _tq_s="$_tq_s${_tq_s:+ }$_tq_a"
    done
    printf '%s' "$_tq_s"
}

# run CMD: T_OUT, T_RC
_t_run() {
    _tr_kind=$(command -v "$1" 2>/dev/null || true)
    case $_tr_kind in
        /*)
            if T_OUT=$(timeout -k 5 "${T_TIMEOUT:-60}" "$@" 2>&1); then T_RC=0; else T_RC=$?; fi ;;
        *)
            if T_OUT=$("$@" 2>&1); then T_RC=0; else T_RC=$?; fi ;;
    esac
    return 0
}

_t_result() { # PASSED(0/1) DESC [diagnostics via _t_diag_cmd]
    T_N=$((T_N + 1))
    if [ "$1" = 1 ]; then
        T_PASS=$((T_PASS + 1))
        echo "ok $T_N - $2"
    else
        T_FAIL=$((T_FAIL + 1))
        echo "not ok $T_N - $2"
    fi
}

# diagnostics for a failed CMD runner: WHAT-EXPECTED CMD...
_t_diag() {
    _td_exp=$1
    shift
    echo "#   expected: $_td_exp"
    echo "#   command:  $(_t_cmdline "$@")"
    if [ "$T_RC" = 124 ]; then
        echo "#   exit:     124 (timed out after ${T_TIMEOUT:-60} s?)"
    else
        echo "#   exit:     $T_RC"
    fi
    if [ -n "$T_OUT" ]; then
        _td_lines=$(printf '%s\n' "$T_OUT" | wc -l)
        echo "#   output:"
        printf '%s\n' "$T_OUT" | head -n 40 | cut -c1-300 | sed 's/^/#     /'
        [ "$_td_lines" -le 40 ] || echo "#     ... ($_td_lines lines in all)"
    else
        echo "#   output:   (none)"
    fi
}

t_ok() {
    t_exit 0 "$@"
}

t_exit() {
    _te_want=${1:?t_exit: N missing}
    _te_desc=${2:?t_exit: DESC missing}
    shift 2
    _t_run "$@"
    if [ "$T_RC" = "$_te_want" ]; then _t_result 1 "$_te_desc"; else
        _t_result 0 "$_te_desc"
        _t_diag "exit $_te_want" "$@"
    fi
}

t_match() {
    _tm_re=${1:?t_match: REGEX missing}
    _tm_desc=${2:?t_match: DESC missing}
    shift 2
    _t_run "$@"
    if printf '%s\n' "$T_OUT" | grep -Eq -- "$_tm_re"; then _t_result 1 "$_tm_desc"; else
        _t_result 0 "$_tm_desc"
        _t_diag "output matching /$_tm_re/" "$@"
    fi
}

t_nomatch() {
    _tn_re=${1:?t_nomatch: REGEX missing}
    _tn_desc=${2:?t_nomatch: DESC missing}
    shift 2
    _t_run "$@"
    if printf '%s\n' "$T_OUT" | grep -Eq -- "$_tn_re"; then
        _t_result 0 "$_tn_desc"
        _t_diag "no output matching /$_tn_re/" "$@"
    else _t_result 1 "$_tn_desc"; fi
}

# t_absent STRING DESC FILE...: passes when no FILE holds STRING, compared as fixed bytes (a
# secret such as "Ab3+x^Y" is not a regular expression); binary files are read as text. A
# FILE that cannot be read fails the check: an absent file proves nothing.
t_absent() {
    _ta_s=${1:?t_absent: STRING missing}
    _ta_desc=${2:?t_absent: DESC missing}
    shift 2
    [ "$#" -gt 0 ] || { t_fail "$_ta_desc" "t_absent: no FILE given"; return 0; }
    for _ta_f in "$@"; do
        [ -r "$_ta_f" ] || { t_fail "$_ta_desc" "cannot read $_ta_f"; return 0; }
    done
    if grep -aqF -- "$_ta_s" "$@"; then
        t_fail "$_ta_desc" "found in: $(grep -alF -- "$_ta_s" "$@" | tr '\n' ' ')"
    else t_pass "$_ta_desc"; fi
}

t_eq() {
    _tq_desc=${3:?t_eq: DESC missing}
    if [ "$1" = "$2" ]; then _t_result 1 "$_tq_desc"; else
        _t_result 0 "$_tq_desc"
        printf '%s\n' "$1" | head -n 20 | cut -c1-300 | sed '1s/^/#   got:      /; 1!s/^/#             /'
        printf '%s\n' "$2" | head -n 20 | cut -c1-300 | sed '1s/^/#   expected: /; 1!s/^/#             /'
    fi
}

# t_empty DESC CMD...: passes when CMD succeeds and prints nothing ("the attribute is gone"). A
# CMD that fails (the search did not run, the user is missing) fails the check: an empty answer
# from a lookup that failed proves nothing.
t_empty() {
    _tz_desc=${1:?t_empty: DESC missing}
    shift
    _t_run "$@"
    if [ "$T_RC" = 0 ] && [ -z "$T_OUT" ]; then _t_result 1 "$_tz_desc"; else
        _t_result 0 "$_tz_desc"
        _t_diag "exit 0 and no output" "$@"
    fi
}

t_pass() { _t_result 1 "${1:?t_pass: DESC missing}"; }

t_fail() {
    _t_result 0 "${1:?t_fail: DESC missing}"
    [ -z "${2:-}" ] || printf '%s\n' "$2" | head -n 40 | cut -c1-300 | sed 's/^/#   /'
}

t_skip() {
    T_N=$((T_N + 1))
    T_SKIP=$((T_SKIP + 1))
    echo "ok $T_N - ${1:?t_skip: DESC missing} # SKIP ${2:-}"
}

t_note() { printf '%s\n' "$*" | sed 's/^/# /'; }

t_done() {
    T_DONE=1
    [ "$T_FAIL" = 0 ] || _t_logs
    echo "1..$T_N"
    echo "$T_PASS passed, $T_FAIL failed, $T_SKIP skipped"
    [ "$T_FAIL" = 0 ] || exit 1
    # Nothing ran but skips (a flavour's server is not installed): meson's SKIP, not a PASS.
    [ "$T_PASS" != 0 ] || [ "$T_SKIP" = 0 ] || exit 77
    exit 0
}

# ---------------------------------------------------------------- slapd and ldapdeskd

t_start_slapd() {
    [ -n "${T_DIR:-}" ] || { echo "t_start_slapd: call t_init first" >&2; return 1; }
    slapd_setup "$T_DIR/slapd" && slapd_start "$T_DIR/slapd"
}

daemon_config() {
    _dc_file=${1:?daemon_config: FILE missing}
    [ -n "${T_DIR:-}" ] || { echo "daemon_config: call t_init first" >&2; return 1; }
    [ -n "${LDAP_URI:-}" ] && [ -n "${SLAPD_DIR:-}" ] \
        || { echo "daemon_config: start slapd first (t_start_slapd)" >&2; return 1; }
    LDAPDESK_PORT=$(random_port) || return 1
    LDAPDESK_SOCK=$T_DIR/ldapdesk.sock
    [ "${#LDAPDESK_SOCK}" -lt 100 ] \
        || { echo "daemon_config: socket path too long: $LDAPDESK_SOCK (set TMPDIR shorter)" >&2; return 1; }
    export LDAPDESK_PORT LDAPDESK_SOCK
    mkdir -p "$T_DIR/backups"
    {
        cat <<EOF
# ldapdeskd config written by tests/lib/harness.sh daemon_config
[server]
listen = 127.0.0.1:$LDAPDESK_PORT
listen = unix:$LDAPDESK_SOCK
tls_cert = $SLAPD_DIR/server.pem
tls_key = $SLAPD_DIR/server.key
key_file = $T_DIR/session.key
timezone = Asia/Shanghai

[ldap]
uri = $LDAP_URI
starttls = yes
ca_file = $SLAPD_DIR/ca.pem
bind_dn = $LDAP_SVC_DN
bind_password_file = $SLAPD_DIR/bind.pw
user_base = $LDAP_PEOPLE
user_attr = uid
flavor = openldap
pool_size = 4
timeout_ms = 5000
policy_dn = $LDAP_POLICY_DN
group_base = $LDAP_GROUPS

[audit]
database = $T_DIR/audit.db
backup_dir = $T_DIR/backups
backup_keep = 7
backup_at = 03:00

[roles]
helpdesk = cn=helpdesk,$LDAP_GROUPS
admin = cn=admins,$LDAP_GROUPS
auditor = cn=auditors,$LDAP_GROUPS

[protect]
groups = cn=protected,$LDAP_GROUPS
EOF
        for _dc_g in 'procurement|采管系统|90' 'brand-insight|品牌洞察|90' 'rnd-system|产研系统|90' \
            'general|综合系统|' 'finance-docs|财务知识文档|90'; do
            _dc_name=${_dc_g%%|*}
            _dc_rest=${_dc_g#*|}
            _dc_label=${_dc_rest%%|*}
            _dc_days=${_dc_rest#*|}
            _dc_appr=no
            case " ${DAEMON_APPROVAL:-} " in *" $_dc_name "*) _dc_appr=yes ;; esac
            echo
            echo "[grant.$_dc_name]"
            echo "group = cn=$_dc_name,$LDAP_GROUPS"
            echo "label = $_dc_label"
            [ -z "$_dc_days" ] || echo "max_days = $_dc_days"
            echo "approval = $_dc_appr"
        done
    } >"$_dc_file" || return 1
    _dc_long=$(awk 'length($0) >= 200 { print FILENAME ":" NR; exit }' "$_dc_file")
    [ -z "$_dc_long" ] || { echo "daemon_config: line too long at $_dc_long" >&2; return 1; }
    return 0
}

# daemon_config_flavor FILE 389ds|ad: like daemon_config, for ds389.sh / samba.sh servers
daemon_config_flavor() {
    _df_file=${1:?daemon_config_flavor: FILE missing}
    _df_flavor=${2:?daemon_config_flavor: 389ds or ad missing}
    [ -n "${T_DIR:-}" ] || { echo "daemon_config_flavor: call t_init first" >&2; return 1; }
    case $_df_flavor in
        389ds)
            [ -n "${DS_URI:-}" ] || { echo "daemon_config_flavor: ds389_start first" >&2; return 1; }
            _df_uri=$DS_URI _df_tls=yes _df_ca=$DS_CA _df_svc=$DS_SVC_DN _df_pw=$DS_DIR/bind.pw
            _df_people=$DS_PEOPLE _df_groups=$DS_GROUPS _df_attr=uid _df_cn=cn ;;
        ad)
            [ -n "${AD_URI:-}" ] || { echo "daemon_config_flavor: samba_start first" >&2; return 1; }
            _df_uri=$AD_URI _df_tls=no _df_ca=$AD_CA _df_svc=$AD_SVC_DN _df_pw=$SAMBA_DIR/bind.pw
            _df_people=$AD_PEOPLE _df_groups=$AD_GROUPS _df_attr=sAMAccountName _df_cn=CN ;;
        *) echo "daemon_config_flavor: unknown flavour '$_df_flavor'" >&2; return 1 ;;
    esac
    certs_make "$T_DIR/dcerts" || return 1
    DAEMON_CA=$T_DIR/dcerts/ca.pem
    LDAPDESK_PORT=$(random_port) || return 1
    LDAPDESK_SOCK=$T_DIR/ldapdesk.sock
    export LDAPDESK_PORT LDAPDESK_SOCK DAEMON_CA
    mkdir -p "$T_DIR/backups"
    {
        cat <<EOF
# ldapdeskd config written by tests/lib/harness.sh daemon_config_flavor ($_df_flavor)
[server]
listen = 127.0.0.1:$LDAPDESK_PORT
listen = unix:$LDAPDESK_SOCK
tls_cert = $T_DIR/dcerts/server.pem
tls_key = $T_DIR/dcerts/server.key
key_file = $T_DIR/session.key
timezone = Asia/Shanghai

[ldap]
uri = $_df_uri
starttls = $_df_tls
ca_file = $_df_ca
bind_dn = $_df_svc
bind_password_file = $_df_pw
user_base = $_df_people
user_attr = $_df_attr
flavor = $_df_flavor
pool_size = 4
timeout_ms = 5000
group_base = $_df_groups

[audit]
database = $T_DIR/audit.db
backup_dir = $T_DIR/backups
backup_keep = 7
backup_at = 03:00

[roles]
helpdesk = $_df_cn=helpdesk,$_df_groups
admin = $_df_cn=admins,$_df_groups
auditor = $_df_cn=auditors,$_df_groups

[protect]
groups = $_df_cn=protected,$_df_groups
EOF
        for _df_g in 'procurement|采管系统|90' 'brand-insight|品牌洞察|90' 'rnd-system|产研系统|90' \
            'general|综合系统|' 'finance-docs|财务知识文档|90'; do
            _df_name=${_df_g%%|*}
            _df_rest=${_df_g#*|}
            echo
            echo "[grant.$_df_name]"
            echo "group = $_df_cn=$_df_name,$_df_groups"
            echo "label = ${_df_rest%%|*}"
            [ -z "${_df_rest#*|}" ] || echo "max_days = ${_df_rest#*|}"
            _df_appr=no
            case " ${DAEMON_APPROVAL:-} " in *" $_df_name "*) _df_appr=yes ;; esac
            echo "approval = $_df_appr"
        done
    } >"$_df_file"
}

daemon_start() {
    _ds_conf=${1:?daemon_start: CONF missing}
    [ -n "${T_DIR:-}" ] || { echo "daemon_start: call t_init first" >&2; return 1; }
    [ -n "${LDAPDESKD:-}" ] && [ -x "$LDAPDESKD" ] \
        || { echo "daemon_start: LDAPDESKD='${LDAPDESKD:-}' is not an executable" >&2; return 1; }
    command -v curl >/dev/null 2>&1 || { echo "daemon_start: curl missing" >&2; return 1; }
    if [ -n "${DAEMON_PID:-}" ] && proc_alive "$DAEMON_PID"; then
        echo "daemon_start: ldapdeskd already runs (pid $DAEMON_PID)" >&2
        return 1
    fi
    _ds_port=$(sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*127\.0\.0\.1:\([0-9][0-9]*\).*$/\1/p' \
        "$_ds_conf" | head -n 1)
    _ds_sock=$(sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*unix:\([^[:space:]]*\).*$/\1/p' \
        "$_ds_conf" | head -n 1)
    _ds_ca=${DAEMON_CA:-${SLAPD_DIR:+$SLAPD_DIR/ca.pem}}
    XDG_CACHE_HOME=$T_DIR/cache
    mkdir -p "$XDG_CACHE_HOME"
    export XDG_CACHE_HOME
    echo "=== daemon_start $(date '+%H:%M:%S') $_ds_conf" >>"$T_DIR/ldapdeskd.log"
    # shellcheck disable=SC2086 # DAEMON_ARGS: extra options, e.g. -v
    "$LDAPDESKD" -c "$_ds_conf" -f ${DAEMON_ARGS:-} </dev/null >>"$T_DIR/ldapdeskd.log" 2>&1 &
    DAEMON_PID=$!
    t_track "$DAEMON_PID"
    _ds_end=$(($(date +%s) + ${T_START_TIMEOUT:-10}))
    while :; do
        if ! proc_alive "$DAEMON_PID"; then
            proc_stop "$DAEMON_PID" 1
            t_untrack "$DAEMON_PID"
            echo "daemon_start: ldapdeskd exited (status ${PROC_RC:-?}); $T_DIR/ldapdeskd.log:" >&2
            tail -n 20 "$T_DIR/ldapdeskd.log" >&2
            DAEMON_RC=$PROC_RC
            DAEMON_PID=
            return 1
        fi
        # The unix socket answers even when TCP clients need certificates (mTLS).
        if [ -n "$_ds_sock" ]; then
            curl -s --max-time 2 -o /dev/null --unix-socket "$_ds_sock" http://localhost/v1/health \
                && break
        elif [ -n "$_ds_port" ]; then
            curl -sk --max-time 2 -o /dev/null "https://127.0.0.1:$_ds_port/v1/health" && break
        fi
        if [ "$(date +%s)" -ge "$_ds_end" ]; then
            echo "daemon_start: no answer on /v1/health within ${T_START_TIMEOUT:-10} s; $T_DIR/ldapdeskd.log:" >&2
            tail -n 20 "$T_DIR/ldapdeskd.log" >&2
            daemon_stop
            return 1
        fi
        sleep 0.1
    done
    if [ -n "$_ds_port" ]; then
        LDAPDESK_PORT=$_ds_port
        LDAPDESK_URL=https://127.0.0.1:$_ds_port
    else
        LDAPDESK_URL=unix:$_ds_sock
    fi
    [ -z "$_ds_sock" ] || LDAPDESK_SOCK=$_ds_sock
    LDAPDESK_CA=$_ds_ca
    export DAEMON_PID LDAPDESK_URL LDAPDESK_CA LDAPDESK_PORT LDAPDESK_SOCK XDG_CACHE_HOME
    return 0
}

# daemon_reload: SIGHUP to the daemon, then waits (up to 5 s) for its answer in the log.
# Returns 0 when it logged "configuration reloaded", 2 when it logged "reload failed" (the
# running configuration stays), 1 when neither came. DAEMON_RELOAD_LOG holds what the daemon
# logged from the SIGHUP on (e.g. "reload: ... changed: it takes effect at the next restart").
daemon_reload() {
    _dr_log=$T_DIR/ldapdeskd.log
    _dr_from=$(($(wc -c <"$_dr_log") + 1))
    DAEMON_RELOAD_LOG=
    kill -HUP "$DAEMON_PID" || return 1
    for _ in $(seq 300); do
        DAEMON_RELOAD_LOG=$(tail -c "+$_dr_from" "$_dr_log")
        case $DAEMON_RELOAD_LOG in
            *"reload failed"*) return 2 ;;
            *"configuration reloaded"*) return 0 ;;
        esac
        sleep 0.1
    done
    return 1
}

daemon_stop() { # [SECONDS to wait before SIGKILL, 10]
    DAEMON_RC=
    [ -n "${DAEMON_PID:-}" ] || return 0
    proc_stop "$DAEMON_PID" "${1:-10}"
    DAEMON_RC=$PROC_RC
    export DAEMON_RC
    t_untrack "$DAEMON_PID"
    DAEMON_PID=
    return 0
}

# audit_settle: waits (up to 5 s) until every change ldapdeskd has answered has had its outcome's
# commit. ldapdeskd answers a change once the directory has, and stores the outcome in its next
# group commit, milliseconds later (daemon/commit.c): a test reading the database right after a
# reply could see the attempt still pending. Compares GET /metrics'
# ldapdesk_audit_answered_first_total (as first read) with ..._settled_total, over the unix
# socket or else HTTPS. No running daemon: no wait; no answer from it: a note on stderr, no
# wait. The sqlite3 function below calls it before every query.
audit_settle() {
    [ -n "${DAEMON_PID:-}" ] && proc_alive "$DAEMON_PID" || return 0
    _as_target=
    _as_end=$(($(date +%s) + 5))
    while :; do
        # The unix socket if it answers (no client certificate needed), else HTTPS.
        _as_m=
        [ -z "${LDAPDESK_SOCK:-}" ] ||
            _as_m=$(curl -s --max-time 2 --unix-socket "$LDAPDESK_SOCK" http://localhost/metrics) || _as_m=
        [ -n "$_as_m" ] || [ -z "${LDAPDESK_PORT:-}" ] ||
            _as_m=$(curl -sk --max-time 2 "https://127.0.0.1:$LDAPDESK_PORT/metrics") || _as_m=
        _as_a=$(printf '%s\n' "$_as_m" | awk '$1 == "ldapdesk_audit_answered_first_total" { print $2 }')
        _as_s=$(printf '%s\n' "$_as_m" | awk '$1 == "ldapdesk_audit_answered_first_settled_total" { print $2 }')
        if [ -z "$_as_a" ] || [ -z "$_as_s" ]; then
            echo "audit_settle: no counters from ldapdeskd's /metrics: not waiting" >&2
            return 0
        fi
        [ -n "$_as_target" ] || _as_target=$_as_a
        [ "$_as_s" -lt "$_as_target" ] || return 0
        if [ "$(date +%s)" -ge "$_as_end" ]; then
            echo "audit_settle: outcomes answered up to $_as_target still not stored after 5 s" >&2
            return 0
        fi
        sleep 0.01
    done
}

# Tests read the audit database with sqlite3: it first waits for answered outcomes (above).
sqlite3() {
    audit_settle
    command sqlite3 "$@"
}

as_op() {
    LDAPDESK_USER=${1:?as_op: UID missing}
    LDAPDESK_PASSWORD=${2:-$LDAP_OP_PW}
    export LDAPDESK_USER LDAPDESK_PASSWORD
}

# audit_pend DB ACTION TARGET AT [OPERATOR]: an attempt (AT: YYYY-MM-DDTHH:MM:SS.mmmZ, operator
# default hd1) appended with the id and hash ldapdeskd would give it: the hash is SHA-256 of
# the previous record's hash followed by the canonical JSON of every other column (sorted
# keys, compact; daemon/audit.c). Only while ldapdeskd is stopped.
audit_pend() {
    python3 - "$@" <<'EOF'
import hashlib, json, sqlite3, sys
db, action, target, at = sys.argv[1:5]
con = sqlite3.connect(db)
cols = [r[1] for r in con.execute("PRAGMA table_info(records)")]
top, prev = con.execute("SELECT id, hash FROM records ORDER BY id DESC LIMIT 1").fetchone() or (0, "0" * 64)
seq = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
rec = dict.fromkeys(c for c in cols if c != "hash")
rec.update(id=max(top, seq[0] if seq else 0) + 1, kind="attempt", at=at, action=action, target=target,
           operator=sys.argv[5] if len(sys.argv) > 5 else "hd1", imported=0, prev_hash=prev)
canon = json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
rec["hash"] = hashlib.sha256((prev + canon).encode()).hexdigest()
con.execute("INSERT INTO records (%s) VALUES (%s)" % (", ".join(rec), ", ".join("?" * len(rec))),
            list(rec.values()))
# Sealed as ldapdeskd seals a transaction (daemon/seal.h), with the key derived from the
# daemon's session key, so that verify takes it for the daemon's own.
import hmac, os
keyf = os.path.join(os.path.dirname(os.path.abspath(db)), "session.key")
if os.path.exists(keyf) and os.environ.get("AUDIT_PEND_SEAL", "yes") != "no":
    sk = hmac.new(open(keyf, "rb").read()[:32], b"ldapdesk audit seal v1", "sha256").digest()
    kid = hmac.new(sk, b"key id", "sha256").hexdigest()[:16]
    msg = "%d:%d:%s" % (rec["id"], rec["id"], rec["hash"])
    con.execute("INSERT INTO seals (last_id, first_id, key_id, mac) VALUES (?, ?, ?, ?)",
                (rec["id"], rec["id"], kid, hmac.new(sk, msg.encode(), "sha256").hexdigest()))
con.commit()
EOF
}
