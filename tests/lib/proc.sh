# shellcheck shell=sh
# tests/lib/proc.sh — process and port helpers shared by slapd.sh and harness.sh.
# POSIX sh (dash), safe under `set -eu`.
#
#   proc_alive PID            0 if PID runs (a zombie counts as dead)
#   proc_stop PID [SECONDS]   TERM, wait up to SECONDS (default 10), then KILL; reaps PID if it is
#                             our child and sets PROC_RC to its exit status (empty if unknown)
#   port_in_use PORT          0 if a TCP socket (v4 or v6, any state) uses local port PORT
#   random_port               prints a port outside the kernel's ephemeral range that is not
#                             in use right now

proc_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    # a zombie still answers kill -0; its state letter follows the ") " closing comm
    _pa_state=$(sed -n 's/^.*) \([A-Za-z]\).*$/\1/p' "/proc/$1/stat" 2>/dev/null || true)
    [ "$_pa_state" != Z ] && [ "$_pa_state" != X ]
}

# _proc_wait_dead PID TENTHS: poll until dead; 0 if dead in time
_proc_wait_dead() {
    _pw_n=0
    while proc_alive "$1"; do
        [ "$_pw_n" -lt "$2" ] || return 1
        sleep 0.1
        _pw_n=$((_pw_n + 1))
    done
    return 0
}

proc_stop() {
    _ps_pid=$1
    _ps_secs=${2:-10}
    PROC_RC=
    [ -n "$_ps_pid" ] || return 0
    if proc_alive "$_ps_pid"; then
        kill -TERM "$_ps_pid" 2>/dev/null || true
        if ! _proc_wait_dead "$_ps_pid" $((_ps_secs * 10)); then
            echo "# pid $_ps_pid ignored SIGTERM for ${_ps_secs}s: SIGKILL" >&2
            kill -KILL "$_ps_pid" 2>/dev/null || true
            _proc_wait_dead "$_ps_pid" 50 || true
        fi
    fi
    # reap it if it is our child (wait on a non-child returns 127 at once)
    if wait "$_ps_pid" 2>/dev/null; then PROC_RC=0; else PROC_RC=$?; fi
    [ "$PROC_RC" != 127 ] || PROC_RC=
    return 0
}

port_in_use() {
    _pu_hex=$(printf '%04X' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p="$_pu_hex" '
        { n = split($2, a, ":"); if (n == 2 && toupper(a[2]) == p) found = 1 }
        END { exit found ? 0 : 1 }'
}

# random_port: a free port outside the kernel's ephemeral range. A port inside
# it can be taken at any moment as the local end of some outgoing connection
# (another suite's client, or ldapdeskd itself reconnecting to a stopped slapd:
# Linux lets a connect to 127.0.0.1:P bind local port P and connect to itself),
# and then a server restarted on its old port cannot listen.
random_port() {
    _rp_lo=32768
    _rp_hi=60999
    # cat, not read: dash reads a file byte by byte, and a sysctl file
    # answers a read at a non-zero offset with end-of-file
    _rp_range=$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null) || _rp_range=
    if [ -n "$_rp_range" ]; then
        set -- $_rp_range
        _rp_lo=$1
        _rp_hi=$2
    fi
    if [ "$_rp_lo" -gt 12000 ]; then
        _rp_base=10000
        _rp_span=$((_rp_lo - 10000))
    else
        _rp_base=$((_rp_hi + 1))
        _rp_span=$((65536 - _rp_base))
    fi
    [ "$_rp_span" -gt 100 ] || { echo "random_port: no port range outside $_rp_lo-$_rp_hi" >&2; return 1; }
    _rp_try=0
    while [ "$_rp_try" -lt 200 ]; do
        _rp_n=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
        _rp_port=$((_rp_base + _rp_n % _rp_span))
        if ! port_in_use "$_rp_port"; then
            echo "$_rp_port"
            return 0
        fi
        _rp_try=$((_rp_try + 1))
    done
    echo "random_port: no free port found" >&2
    return 1
}
