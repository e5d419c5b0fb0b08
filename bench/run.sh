#!/bin/sh
# bench/run.sh — ldapdesk against the directory's own limit, in one run (issue 5).
# POSIX sh. `./dev bench` calls it after building; by hand:
#   LDAPDESK_SRC=$PWD LDAPDESKD=build/daemon/ldapdeskd BENCH_BIN=build/bench sh bench/run.sh
#
# One fresh slapd (tests/lib harness) seeded with BENCH_USERS users, one ldapdeskd (audit on,
# synchronous=FULL, pool_size BENCH_POOL). For each op (reset, unlock, grant-revoke) and each
# concurrency in BENCH_CONC, four drivers run for BENCH_SECONDS against the same slapd:
#   ldapdesk  bench/loadgen: HTTPS keep-alive connections to ldapdeskd, token obtained once
#   floor     bench/floor: the same LDAP writes with async libldap over BENCH_POOL connections
#   script    ldappasswd/ldapmodify processes per request, CONC shell workers in parallel
#             (what teams script today)
#   relay     bench/loadgen against bench/relay, a server that turns the same
#             HTTPS requests into the floor's LDAP writes and does nothing else (no token check,
#             no audit): what HTTPS in front of slapd costs on this machine, whatever a broker
#             adds. Its rows show relay/floor in the ld/floor columns, and a line under the
#             table compares ldapdesk with it.
# Unlock runs are bounded to BENCH_USERS requests and every user is locked again (rootdn
# ldapmodify) before each driver, so every unlock really deletes a lock.
# Then one ldapdesk run with BENCH_RSS_CONNS connections for the peak-RSS figure.
# Prints a table on stdout (progress on stderr); BENCH_OUT=FILE also keeps the JSON lines.
# A run is flagged ('!' in the table; the bench then fails) when it had errors, or when it was
# an unlock run answered mostly "unchanged": it deleted (almost) no lock, so its ops/s is not
# that of unlocking (the accounts were not locked again before it, say).
# Besides ops/s and latencies the table shows, per run: "batch", the mean number of audit
# records per group commit (from GET /metrics), and "ld us" / "slapd us", the CPU time
# ldapdeskd and slapd spent per operation (/proc/PID/stat; for the floor, slapd's alone), and
# "slapd wait", the time slapd's threads were runnable but had no CPU, per operation
# (/proc/PID/task/*/schedstat): what the broker's presence on the same two CPUs costs slapd.
# Each JSON line also holds "driver_cpu_us", the driver's own CPU time per operation
# (getrusage): loadgen and floor both share the two CPUs with slapd.
# The header gives the disk's fdatasync latency before and after the runs (bench/syncprobe):
# slapd syncs twice per modify, so it sets the floor's pace, and it drifts on a shared VM.
# `run.sh profile` instead profiles ldapdeskd (perf, strace -c) for BENCH_PROFILE_OP (reset) at
# BENCH_PROFILE_CONC (16); BENCH_PERF_EVENT (e.g. syscalls:sys_enter_getpid),
# BENCH_PERF_SORT (dso,sym; comm,dso splits the loop from the audit writer) and
# BENCH_PERF_COMM (ldapdeskd or ldapdeskd-audit) steer perf; BENCH_PROFILE_DRIVER=relay profiles
# bench/relay the same way instead (what HTTPS alone costs, beside what ldapdeskd spends).
# `run.sh callgrind` counts ldapdeskd's instructions per operation instead (valgrind's callgrind:
# exact counts, where the timings of a shared VM drift by 15-30 % from run to run): the daemon
# runs under callgrind, instrumented only for BENCH_CG_COUNT (1000, at most BENCH_USERS)
# requests of BENCH_PROFILE_OP at BENCH_PROFILE_CONC and a run of a fifth as many; prints
# instructions per operation and the functions that executed the most (self and with
# callees). For A/B of small changes (LDAPDESKD=the build to count).
#
# Environment (defaults): BENCH_SECONDS=5 BENCH_USERS=2000 BENCH_CONC="1 16 64"
#   BENCH_OPS="reset unlock grant-revoke" BENCH_DRIVERS="ldapdesk floor relay script" BENCH_POOL=4
#   BENCH_RSS_CONNS=256 (0 skips) BENCH_SCRIPT_MAX=BENCH_USERS (script requests per run)
#   BENCH_REPEAT=5 (runs per cell, drivers taking turns; the table shows the median run, and
#   "pair range" the lowest and highest ldapdesk/floor ratio of runs made back to back)
#   BENCH_COMMIT_DELAY, BENCH_DB_DIR: override [audit] commit_delay_ms / the database's
#   directory (experiments only: a tmpfs database is not durable)
#   LOADGEN, FLOOR, RELAY, SYNCPROBE (default $BENCH_BIN/loadgen, ...), KEEP=1 keeps the temp dir.
# Only 127.0.0.1 is ever used: slapd and ldapdeskd are the ones started here.
set -eu

: "${LDAPDESK_SRC:?set LDAPDESK_SRC to the repository root}"
: "${LDAPDESKD:?set LDAPDESKD to the ldapdeskd binary}"
BENCH_BIN=${BENCH_BIN:-$LDAPDESK_SRC/build/bench}
LOADGEN=${LOADGEN:-$BENCH_BIN/loadgen}
FLOOR=${FLOOR:-$BENCH_BIN/floor}
RELAY=${RELAY:-$BENCH_BIN/relay}
SYNCPROBE=${SYNCPROBE:-$BENCH_BIN/syncprobe}
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_USERS=${BENCH_USERS:-2000}
BENCH_CONC=${BENCH_CONC:-1 16 64}
BENCH_OPS=${BENCH_OPS:-reset unlock grant-revoke}
BENCH_DRIVERS=${BENCH_DRIVERS:-ldapdesk floor relay script}
BENCH_POOL=${BENCH_POOL:-4}
BENCH_REPEAT=${BENCH_REPEAT:-5}
BENCH_RSS_CONNS=${BENCH_RSS_CONNS:-256}
BENCH_SCRIPT_MAX=${BENCH_SCRIPT_MAX:-$BENCH_USERS}
BENCH_PERMISSION=general
BENCH_OPERATOR=adm1

case " $BENCH_DRIVERS " in *" relay "*) BENCH_RELAY=1 ;; *) BENCH_RELAY= ;; esac
for _b in "$LOADGEN" "$FLOOR" "$SYNCPROBE" "$LDAPDESKD" ${BENCH_RELAY:+"$RELAY"}; do
    [ -x "$_b" ] || { echo "bench: $_b is not an executable (build first: ninja -C build)" >&2; exit 1; }
done
for _n in "$BENCH_SECONDS" "$BENCH_USERS" "$BENCH_POOL" "$BENCH_RSS_CONNS" "$BENCH_SCRIPT_MAX" "$BENCH_REPEAT" \
    $BENCH_CONC; do
    case $_n in '' | *[!0-9]*) echo "bench: BENCH_* numbers must be integers, got '$_n'" >&2; exit 2 ;; esac
done
if [ "$BENCH_USERS" -lt 256 ] || [ "$BENCH_USERS" -gt 9999 ]; then
    echo "bench: BENCH_USERS must be 256..9999 (4-digit uids, >= the widest run)" >&2
    exit 2
fi
if [ "${1:-}" = callgrind ]; then
    for _t in valgrind callgrind_control callgrind_annotate; do
        command -v "$_t" >/dev/null 2>&1 || { echo "bench: callgrind: $_t missing (apt-get install valgrind)" >&2; exit 1; }
    done
    case ${BENCH_CG_COUNT:-1000} in '' | *[!0-9]*) echo "bench: BENCH_CG_COUNT must be an integer" >&2; exit 2 ;; esac
    # Every request must act (an unlock of a user locked before the run): at most BENCH_USERS.
    if [ "${BENCH_CG_COUNT:-1000}" -lt 10 ] || [ "${BENCH_CG_COUNT:-1000}" -gt "$BENCH_USERS" ]; then
        echo "bench: BENCH_CG_COUNT must be 10..BENCH_USERS ($BENCH_USERS)" >&2
        exit 2
    fi
fi

# shellcheck source=SCRIPTDIR/../tests/lib/harness.sh
. "$LDAPDESK_SRC/tests/lib/harness.sh"

say() { echo "bench: $*" >&2; }

t_init bench >&2
t_start_slapd
# The disk's sync latency before and after the runs: it moves slapd's limit
# (two syncs per modify) and the audit's commit cost, and it drifts on this VM.
SYNC_BEFORE=$("$SYNCPROBE" "$T_DIR" 2>&1) || true
# 技术研发中心: an existing department OU without parentheses (no DN escaping needed).
BENCH_BASE="ou=技术研发中心,$LDAP_PEOPLE"
BENCH_GROUP="cn=$BENCH_PERMISSION,$LDAP_GROUPS"
RESULTS=$T_DIR/results.jsonl
: >"$RESULTS"
export LDAPTLS_CACERT="$SLAPD_DIR/ca.pem"

# ---------------------------------------------------------------- directory set-up

seed_users() {
    awk -v b="$BENCH_BASE" -v n="$BENCH_USERS" 'BEGIN {
        for (i = 0; i < n; i++)
            printf "dn: uid=bench%04d,%s\nobjectClass: inetOrgPerson\nuid: bench%04d\n" \
                   "cn: Bench %04d\nsn: Bench\nuserPassword: Bench-Pass-2026\n\n", i, b, i, i
    }' >"$T_DIR/users.ldif"
    ldapadd -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" -f "$T_DIR/users.ldif" \
        >/dev/null
}

# Sets pwdAccountLockedTime on every bench user as the rootdn (one connection, one process).
# shellcheck disable=SC2119 # ldap_root_modify takes its LDIF on stdin here, no arguments
lock_users() {
    _lk_now=$(date -u +%Y%m%d%H%M%SZ)
    awk -v b="$BENCH_BASE" -v n="$BENCH_USERS" -v t="$_lk_now" 'BEGIN {
        for (i = 0; i < n; i++)
            printf "dn: uid=bench%04d,%s\nchangetype: modify\nreplace: pwdAccountLockedTime\n" \
                   "pwdAccountLockedTime: %s\n\n", i, b, t
    }' | ldap_root_modify >/dev/null
}

# ---------------------------------------------------------------- drivers

# commit_counts: "COMMITS RECORDS", the group-commit counters of the daemon's GET /metrics.
commit_counts() {
    curl -s --cacert "$SLAPD_DIR/ca.pem" "$LDAPDESK_URL/metrics" | awk '
        $1 == "ldapdesk_audit_commits_total" { c = $2 }
        $1 == "ldapdesk_audit_records_total" { r = $2 }
        END { print c + 0, r + 0 }'
}

# cpu_fields SLAPD_TICKS SLAPD_WAIT_NS RESULT_LINE [DAEMON_TICKS]: the JSON fields
# "slapd_cpu_us" (and "daemon_cpu_us"), CPU time per operation ("ok" of RESULT_LINE) in that
# run, and "slapd_wait_us", the time slapd's threads spent runnable but waiting for a CPU, per
# operation: how much the rest of the machine held it up.
cpu_fields() {
    _cf_ok=$(printf '%s\n' "$3" | sed -n 's/.*"ok":\([0-9]*\).*/\1/p')
    awk -v s="$1" -v w="$2" -v d="${4:-}" -v ok="${_cf_ok:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        if (ok < 1) ok = 1
        if (d != "") printf "\"daemon_cpu_us\":%.0f,", d * 1e6 / hz / ok
        printf "\"slapd_cpu_us\":%.0f,\"slapd_wait_us\":%.0f", s * 1e6 / hz / ok, w / 1e3 / ok }'
}

# no_result DRIVER OP CONC: a run that printed nothing still counts, as a flagged run with no
# operations, so its cell cannot pass a target on the runs that did print and the bench fails.
no_result() {
    say "$1 $2 c=$3 printed no result"
    printf '{"driver":"%s","op":"%s","concurrency":%s,"ok":0,"errors":1,"unchanged":0,"seconds":0,"ops_per_s":0,"p50_us":0,"p99_us":0,"p999_us":0,"max_us":0,"flagged":true}\n' \
        "$1" "$2" "$3" >>"$RESULTS"
}

# run_ldapdesk OP CONC [COUNT]: one loadgen run; appends its JSON line (with "rss_kb", the
# mean group-commit batch "records_per_commit" and the CPU fields) to RESULTS.
run_ldapdesk() {
    _rl_m0=$(commit_counts)
    _rl_d0=$(cpu_ticks "$DAEMON_PID")
    _rl_s0=$(cpu_ticks "$SLAPD_PID")
    _rl_w0=$(run_queue_ns "$SLAPD_PID")
    # Writing 5 to clear_refs resets VmHWM, so the peak is this run's, not the daemon's life's.
    echo 5 >"/proc/$DAEMON_PID/clear_refs" 2>/dev/null || true
    _rl_line=$("$LOADGEN" --port "$LDAPDESK_PORT" --ca "$SLAPD_DIR/ca.pem" \
        --user "$BENCH_OPERATOR" --password-file "$T_DIR/op.pw" --op "$1" --concurrency "$2" \
        --seconds "$BENCH_SECONDS" ${3:+--count "$3"} --users "$BENCH_USERS" \
        --permission "$BENCH_PERMISSION") || true
    _rl_rss=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$DAEMON_PID/status")
    _rl_d1=$(cpu_ticks "$DAEMON_PID")
    _rl_s1=$(cpu_ticks "$SLAPD_PID")
    _rl_w1=$(run_queue_ns "$SLAPD_PID")
    [ -n "$_rl_line" ] || { no_result ldapdesk "$1" "$2"; return 0; }
    _rl_batch=$(echo "$_rl_m0 $(commit_counts)" | awk '
        { printf "%.2f", ($3 > $1 ? ($4 - $2) / ($3 - $1) : 0) }')
    printf '%s\n' "$_rl_line" | sed "s/}\$/,\"rss_kb\":${_rl_rss:-0},\"records_per_commit\":$_rl_batch,$(
        cpu_fields $((_rl_s1 - _rl_s0)) $((_rl_w1 - _rl_w0)) "$_rl_line" $((_rl_d1 - _rl_d0)))}/" \
        >>"$RESULTS"
}

# run_relay OP CONC [COUNT]: one loadgen run against the relay; its CPU per operation goes in
# "daemon_cpu_us" (the "ld us" column), as ldapdeskd's does.
run_relay() {
    _rr_d0=$(cpu_ticks "$RELAY_PID")
    _rr_s0=$(cpu_ticks "$SLAPD_PID")
    _rr_w0=$(run_queue_ns "$SLAPD_PID")
    _rr_line=$("$LOADGEN" --port "$RELAY_PORT" --ca "$SLAPD_DIR/ca.pem" \
        --user "$BENCH_OPERATOR" --password-file "$T_DIR/op.pw" --op "$1" --concurrency "$2" \
        --seconds "$BENCH_SECONDS" ${3:+--count "$3"} --users "$BENCH_USERS" \
        --permission "$BENCH_PERMISSION" --driver relay) || true
    _rr_d1=$(cpu_ticks "$RELAY_PID")
    _rr_s1=$(cpu_ticks "$SLAPD_PID")
    _rr_w1=$(run_queue_ns "$SLAPD_PID")
    [ -n "$_rr_line" ] || { no_result relay "$1" "$2"; return 0; }
    printf '%s\n' "$_rr_line" | sed "s/}\$/,$(cpu_fields $((_rr_s1 - _rr_s0)) $((_rr_w1 - _rr_w0)) \
        "$_rr_line" $((_rr_d1 - _rr_d0)))}/" >>"$RESULTS"
}

# relay_start: the relay on a free port, bound to the pool like the daemon; waits until it
# answers GET /v1/health (10 s at most).
relay_start() {
    RELAY_PORT=$(random_port) || return 1
    "$RELAY" --port "$RELAY_PORT" --cert "$SLAPD_DIR/server.pem" --key "$SLAPD_DIR/server.key" \
        --uri "$LDAP_URI" --ca "$SLAPD_DIR/ca.pem" --bind-dn "$LDAP_SVC_DN" \
        --bind-pw-file "$SLAPD_DIR/bind.pw" --base "$BENCH_BASE" --group "$BENCH_GROUP" \
        --pool "$BENCH_POOL" 2>>"$T_DIR/relay.log" &
    RELAY_PID=$!
    t_track "$RELAY_PID"
    _rs_i=0
    while [ "$_rs_i" -lt 100 ]; do
        curl -s -o /dev/null --cacert "$SLAPD_DIR/ca.pem" "https://127.0.0.1:$RELAY_PORT/v1/health" &&
            return 0
        kill -0 "$RELAY_PID" 2>/dev/null || break
        sleep 0.1
        _rs_i=$((_rs_i + 1))
    done
    say "the relay did not start: $(tail -n 3 "$T_DIR/relay.log")"
    return 1
}

# The floor's own CPU is not counted: it stands in for the broker, which it is not.
run_floor() {
    _rf_s0=$(cpu_ticks "$SLAPD_PID")
    _rf_w0=$(run_queue_ns "$SLAPD_PID")
    _rf_line=$("$FLOOR" --uri "$LDAP_URI" --ca "$SLAPD_DIR/ca.pem" --bind-dn "$LDAP_SVC_DN" \
        --bind-pw-file "$SLAPD_DIR/bind.pw" --base "$BENCH_BASE" --group "$BENCH_GROUP" \
        --pool "$BENCH_POOL" --op "$1" --concurrency "$2" --seconds "$BENCH_SECONDS" \
        ${3:+--count "$3"} --users "$BENCH_USERS") || true
    _rf_s1=$(cpu_ticks "$SLAPD_PID")
    _rf_w1=$(run_queue_ns "$SLAPD_PID")
    [ -n "$_rf_line" ] || { no_result floor "$1" "$2"; return 0; }
    printf '%s\n' "$_rf_line" \
        | sed "s/}\$/,$(cpu_fields $((_rf_s1 - _rf_s0)) $((_rf_w1 - _rf_w0)) "$_rf_line")}/" \
            >>"$RESULTS"
}

# One script worker: sh WORKER OP FIRST STEP LIMIT runs requests FIRST, FIRST+STEP, ... below
# LIMIT, one after the other, until the stop file appears; each request is the ldappasswd /
# ldapmodify processes a team's script would run. Prints "ok|unchanged|err MICROSECONDS" per
# request (unchanged: an unlock of an account that was not locked, answered ok).
# Times with date +%s%N: two extra forks per request (about 1 ms), small next to the tools.
write_worker() {
    cat >"$T_DIR/worker.sh" <<'EOF'
ldm() { ldapmodify -x -ZZ -H "$LDAP_URI" -D "$LDAP_SVC_DN" -y "$BENCH_PW" >/dev/null 2>&1; }
request() { # OP DN: sets rc
    rc=0
    case $1 in
    reset)
        ldappasswd -x -ZZ -H "$LDAP_URI" -D "$LDAP_SVC_DN" -y "$BENCH_PW" -s "Bench-$$-$i" \
            "$2" >/dev/null 2>&1 || rc=$?
        [ "$rc" != 0 ] || printf 'dn: %s\nchangetype: modify\nreplace: pwdReset\npwdReset: TRUE\n' \
            "$2" | ldm || rc=$?
        ;;
    unlock)
        printf 'dn: %s\nchangetype: modify\ndelete: pwdAccountLockedTime\n' "$2" | ldm || rc=$?
        [ "$rc" != 16 ] || rc=unchanged # no such attribute: the account was not locked
        ;;
    grant | revoke)
        [ "$1" = grant ] && m=add || m=delete
        printf 'dn: %s\nchangetype: modify\n%s: member\nmember: %s\n' "$BENCH_GROUP" "$m" "$2" \
            | ldm || rc=$?
        ;;
    esac
}
one() { # OP DN: one timed request
    s=$(date +%s%N)
    request "$1" "$2"
    e=$(date +%s%N)
    case $rc in 0) r=ok ;; unchanged) r=unchanged ;; *) r=err ;; esac
    echo "$r $(((e - s) / 1000))"
}
i=$2
while [ "$i" -lt "$4" ] && [ ! -e "$BENCH_STOP" ]; do
    dn=$(printf 'uid=bench%04d,%s' $((i % BENCH_USERS)) "$BENCH_BASE")
    if [ "$1" = grant-revoke ]; then
        one grant "$dn"
        one revoke "$dn"
    else
        one "$1" "$dn"
    fi
    i=$((i + $3))
done
EOF
}

# run_script OP CONC: CONC background workers, BENCH_SCRIPT_MAX requests in all (grant-revoke:
# pairs) at most, stopped after BENCH_SECONDS by a flag file; requests already started finish.
run_script() {
    _rs_stop=$T_DIR/script.stop
    rm -f "$_rs_stop" "$T_DIR/script.out"
    _rs_n=$BENCH_SCRIPT_MAX
    [ "$1" != grant-revoke ] || _rs_n=$((_rs_n / 2))
    (sleep "$BENCH_SECONDS" && : >"$_rs_stop") &
    _rs_timer=$!
    _rs_pids=
    _rs_t0=$(date +%s%N)
    _rs_w=0
    while [ "$_rs_w" -lt "$2" ]; do
        BENCH_STOP=$_rs_stop BENCH_BASE=$BENCH_BASE BENCH_GROUP=$BENCH_GROUP \
            BENCH_USERS=$BENCH_USERS BENCH_PW=$SLAPD_DIR/bind.pw \
            sh "$T_DIR/worker.sh" "$1" "$_rs_w" "$2" "$_rs_n" >>"$T_DIR/script.out" 2>/dev/null &
        _rs_pids="$_rs_pids $!"
        _rs_w=$((_rs_w + 1))
    done
    for _rs_p in $_rs_pids; do wait "$_rs_p" || true; done
    _rs_t1=$(date +%s%N)
    kill "$_rs_timer" 2>/dev/null || true
    wait "$_rs_timer" 2>/dev/null || true
    sort -k2,2n "$T_DIR/script.out" | awk -v op="$1" -v c="$2" -v ns=$((_rs_t1 - _rs_t0)) '
        $1 == "ok" || $1 == "unchanged" { lat[ok++] = $2 } $1 == "unchanged" { unch++ } $1 == "err" { err++ }
        function pct(p,  k) { k = int(p / 100 * ok + 0.999999); if (k < 1) k = 1; return ok ? lat[k - 1] : 0 }
        END {
            s = ns / 1e9
            printf "{\"driver\":\"script\",\"op\":\"%s\",\"concurrency\":%d,\"ok\":%d,\"errors\":%d,", op, c, ok, err
            printf "\"unchanged\":%d,\"seconds\":%.3f,\"ops_per_s\":%.1f,\"p50_us\":%d,\"p99_us\":%d,", unch, s, ok / s, pct(50), pct(99)
            printf "\"p999_us\":%d,\"max_us\":%d,\"flagged\":%s}\n", pct(99.9), ok ? lat[ok - 1] : 0, err ? "true" : "false"
        }' >>"$RESULTS"
}

# ---------------------------------------------------------------- report

# flag_unchanged: an unlock run whose ok answers were mostly (over half) "unchanged" deleted
# (almost) no lock, so its ops/s is not that of unlocking: flagged in RESULTS like a run with
# errors, and marked "mostly_unchanged". The table marks its cell '!' and the bench fails.
flag_unchanged() {
    awk '
        function num(k,  r) { r = $0; if (!match(r, "\"" k "\":[^,}]*")) return ""; r = substr(r, RSTART, RLENGTH); sub(/^[^:]*:/, "", r); gsub(/"/, "", r); return r }
        num("op") == "unlock" && num("ok") + 0 > 0 && num("unchanged") * 2 > num("ok") + 0 {
            sub(/"flagged":(true|false)/, "\"flagged\":true")
            sub(/}$/, ",\"mostly_unchanged\":true}")
        }
        { print }' "$RESULTS" >"$RESULTS.new" && mv -f "$RESULTS.new" "$RESULTS"
}

# JSON lines -> table. Each cell ran BENCH_REPEAT times, the drivers taking turns, so slow
# minutes of a shared machine hit both sides; the row shows the run with the median ops/s
# (its latencies too) and how many runs there were. A cell with a flagged run (errors, or an
# unlock run answered mostly "unchanged") is marked '!'.
report() {
    awk '
        function num(k,  r) { r = $0; if (!match(r, "\"" k "\":[^,}]*")) return ""; r = substr(r, RSTART, RLENGTH); sub(/^[^:]*:/, "", r); gsub(/"/, "", r); return r }
        {
            key = num("op") " " num("concurrency") " " num("driver")
            if (!(key in n)) order[nk++] = key
            i = n[key]++
            ops[key, i] = num("ops_per_s"); p50[key, i] = num("p50_us"); p99[key, i] = num("p99_us")
            p999[key, i] = num("p999_us"); err[key] += num("errors"); rss[key, i] = num("rss_kb")
            flg[key] += (num("flagged") == "true")
            rpc[key, i] = num("records_per_commit"); dcpu[key, i] = num("daemon_cpu_us"); scpu[key, i] = num("slapd_cpu_us"); swait[key, i] = num("slapd_wait_us")
        }
        # The index of the run with the median ops/s (lower median for an even count).
        function median(k,  i, j, t, idx) {
            for (i = 0; i < n[k]; i++) idx[i] = i
            for (i = 1; i < n[k]; i++)
                for (j = i; j > 0 && ops[k, idx[j - 1]] + 0 > ops[k, idx[j]] + 0; j--) { t = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = t }
            return idx[int((n[k] - 1) / 2)]
        }
        function ms(us) { return sprintf("%.1f", us / 1000) }
        # The lowest and highest ratio of run i of ldapdesk to run i of the floor: the two ran
        # back to back in the same round, so the machine was the same for both.
        function pairs(k, fl,  i, r, lo, hi) {
            for (i = 0; i < n[k] && i < n[fl]; i++) {
                if (ops[fl, i] <= 0) continue
                r = ops[k, i] / ops[fl, i]
                if (lo == "" || r < lo) lo = r
                if (hi == "" || r > hi) hi = r
            }
            return lo == "" ? "-" : sprintf("%.2f-%.2f", lo, hi)
        }
        END {
            for (i = 0; i < nk; i++) med[order[i]] = median(order[i])
            printf "%-13s %5s %-9s %4s %9s %8s %8s %8s %7s %8s %6s %7s %8s %10s %9s %10s %11s\n", "op", "conc", "driver", "runs", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "RSS MB", "batch", "ld us", "slapd us", "slapd wait", "ld/floor", "ld/script", "pair range"
            for (i = 0; i < nk; i++) {
                k = order[i]; m = med[k]; split(k, f, " ")
                r1 = r2 = mb = b = pr = "-"
                if (f[3] == "ldapdesk" || f[3] == "relay") {
                    fl = f[1] " " f[2] " floor"; sc = f[1] " " f[2] " script"
                    if ((fl in med) && ops[fl, med[fl]] > 0) r1 = sprintf("%.2f", ops[k, m] / ops[fl, med[fl]])
                    if (fl in med) pr = pairs(k, fl)
                    if ((sc in med) && ops[sc, med[sc]] > 0) r2 = sprintf("%.1f", ops[k, m] / ops[sc, med[sc]])
                }
                if (f[3] == "ldapdesk") {
                    if (rss[k, m] != "") mb = sprintf("%.1f", rss[k, m] / 1024)
                    if (rpc[k, m] != "") b = rpc[k, m]
                }
                dc = (dcpu[k, m] != "" ? dcpu[k, m] : "-"); sc2 = (scpu[k, m] != "" ? scpu[k, m] : "-")
                sw = (swait[k, m] != "" ? swait[k, m] : "-")
                printf "%-13s %5s %-9s %4d %8.1f%s %8s %8s %8s %7s %8s %6s %7s %8s %10s %9s %10s %11s\n", f[1], f[2], f[3], n[k], ops[k, m], (flg[k] > 0 ? "!" : " "), ms(p50[k, m]), ms(p99[k, m]), ms(p999[k, m]), err[k], mb, b, dc, sc2, sw, r1, r2, pr
            }
            targets()
            relayed()
        }
        # The relay is no target: it bounds what any HTTPS broker could reach here. One line:
        # its ratio to the floor, and the ratio of ldapdesk to it, per cell (median runs).
        function relayed(  i, k, f, rl, fl, line) {
            line = ""
            for (i = 0; i < nk; i++) {
                k = order[i]; split(k, f, " "); rl = f[1] " " f[2] " relay"; fl = f[1] " " f[2] " floor"
                if (f[3] != "ldapdesk" || !(rl in med) || !(fl in med) || ops[fl, med[fl]] <= 0 || ops[rl, med[rl]] <= 0) continue
                line = line sprintf("%s %s c%s %.2f (ldapdesk/relay %.2f)", (line != "" ? "," : ""), f[1], f[2], ops[rl, med[rl]] / ops[fl, med[fl]], ops[k, med[k]] / ops[rl, med[rl]])
            }
            if (line != "") printf "# relay (HTTPS to LDAP, nothing else) / floor:%s\n", line
        }
        # Issue 5, judged on the median runs of the table: one line per target with the cells
        # that miss it, so the verdict is read off the same figures, not written by hand.
        function verdict(name, met, cells, misses) {
            if (cells == 0) printf "# target %s: not measured in this run\n", name
            else printf "# target %s: %s (%d of %d cells)%s\n", name, (met == cells ? "met" : "NOT met"), met, cells, (misses != "" ? "; misses:" misses : "")
        }
        function targets(  i, k, f, m, fl, sc, mf, ms2, r, met, cells, miss, best, peak) {
            met = cells = 0; miss = ""
            for (i = 0; i < nk; i++) {
                k = order[i]; split(k, f, " "); fl = f[1] " " f[2] " floor"
                if (f[3] != "ldapdesk" || !(fl in med) || (f[1] != "reset" && f[1] != "unlock") || (f[2] != 16 && f[2] != 64)) continue
                cells++
                # A floor run that gave no figure proves nothing: a miss, not a pass.
                if (ops[fl, med[fl]] <= 0) { miss = miss sprintf("%s %s c%s (no floor figure)", (miss != "" ? "," : ""), f[1], f[2]); continue }
                r = ops[k, med[k]] / ops[fl, med[fl]]
                if (r >= 0.9) met++; else miss = miss sprintf("%s %s c%s %.3f", (miss != "" ? "," : ""), f[1], f[2], r)
            }
            verdict("ldapdesk >= 0.9 x floor ops/s (reset, unlock at 16 and 64)", met, cells, miss)
            met = cells = 0; miss = ""
            for (i = 0; i < nk; i++) {
                k = order[i]; split(k, f, " "); fl = f[1] " " f[2] " floor"
                if (f[3] != "ldapdesk" || !(fl in med)) continue
                cells++
                if (p99[fl, med[fl]] <= 0 || ops[k, med[k]] <= 0) { miss = miss sprintf("%s %s c%s (no figure)", (miss != "" ? "," : ""), f[1], f[2]); continue }
                r = p99[k, med[k]] / p99[fl, med[fl]]
                if (r <= 2) met++; else miss = miss sprintf("%s %s c%s %.1fx", (miss != "" ? "," : ""), f[1], f[2], r)
            }
            verdict("ldapdesk p99 <= 2 x floor p99", met, cells, miss)
            met = cells = 0; miss = ""; best = ""
            for (i = 0; i < nk; i++) {
                k = order[i]; split(k, f, " "); sc = f[1] " " f[2] " script"; fl = f[1] " " f[2] " floor"
                if (f[3] != "ldapdesk" || !(sc in med)) continue
                cells++
                if (ops[sc, med[sc]] <= 0) { miss = miss sprintf("%s %s c%s (no script figure)", (miss != "" ? "," : ""), f[1], f[2]); continue }
                r = ops[k, med[k]] / ops[sc, med[sc]]
                mf = (fl in med) ? sprintf(" (floor %.1fx)", ops[fl, med[fl]] / ops[sc, med[sc]]) : ""
                if (r >= 20) met++; else miss = miss sprintf("%s %s c%s %.1fx%s", (miss != "" ? "," : ""), f[1], f[2], r, mf)
            }
            verdict("ldapdesk >= 20 x script ops/s", met, cells, miss)
            peak = ""
            for (i = 0; i < nk; i++) {
                k = order[i]; split(k, f, " ")
                if (f[3] != "ldapdesk") continue
                for (m = 0; m < n[k]; m++) if (rss[k, m] != "" && (peak == "" || rss[k, m] + 0 > peak + 0)) { peak = rss[k, m]; ms2 = f[2] }
            }
            if (peak != "")
                printf "# target peak RSS <= 32 MB: %s (%.1f MB, highest of all ldapdesk runs, at %s connections)\n", (peak / 1024 <= 32 ? "met" : "NOT met"), peak / 1024, ms2
        }' "$RESULTS"
}

# ---------------------------------------------------------------- profile (sh run.sh profile)

# run_queue_ns PID: nanoseconds PID's threads spent runnable, waiting for a CPU (schedstat's
# second field; 0 where the kernel does not keep it).
run_queue_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ w += $2 } END { printf "%.0f", w }'
}

cpu_ticks() { # PID: utime+stime in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# Where ldapdeskd's time goes for BENCH_PROFILE_OP at BENCH_PROFILE_CONC: the CPU split between
# the daemon and slapd, perf's hottest symbols in the daemon, and its system calls.
profile() {
    _pf_op=${BENCH_PROFILE_OP:-reset}
    _pf_c=${BENCH_PROFILE_CONC:-16}
    command -v perf >/dev/null 2>&1 || { say "profile: perf missing (apt-get install linux-perf)"; return 1; }
    _pf_pid=$DAEMON_PID _pf_name=ldapdeskd
    if [ "${BENCH_PROFILE_DRIVER:-ldapdesk}" = relay ]; then
        [ -n "$BENCH_RELAY" ] || { say "profile: the relay is not started (BENCH_DRIVERS has no relay)"; return 1; }
        _pf_pid=$RELAY_PID _pf_name=relay
    fi
    [ "$_pf_op" != unlock ] || lock_users
    _pf_d0=$(cpu_ticks "$_pf_pid")
    _pf_s0=$(cpu_ticks "$SLAPD_PID")
    perf record -q ${BENCH_PERF_EVENT:+-e $BENCH_PERF_EVENT} -F 999 --call-graph dwarf,16384 -o "$T_DIR/perf.data" -p "$_pf_pid" \
        -- sleep "$BENCH_SECONDS" >/dev/null 2>&1 &
    _pf_perf=$!
    if [ "$_pf_name" = relay ]; then run_relay "$_pf_op" "$_pf_c"; else run_ldapdesk "$_pf_op" "$_pf_c"; fi
    wait "$_pf_perf" || true
    _pf_d1=$(cpu_ticks "$_pf_pid")
    _pf_s1=$(cpu_ticks "$SLAPD_PID")
    echo "# $_pf_op c=$_pf_c through $_pf_name, ${BENCH_SECONDS}s:"
    sed 's/^/#   /' "$RESULTS"
    echo "# CPU ticks (1/$(getconf CLK_TCK) s) in the run: $_pf_name $((_pf_d1 - _pf_d0)), slapd $((_pf_s1 - _pf_s0))"
    echo "# $_pf_name, self time by symbol (perf, on-CPU only):"
    perf report -i "$T_DIR/perf.data" --no-children --sort ${BENCH_PERF_SORT:-dso,sym} --stdio -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -n 25
    echo "# $_pf_name, time including callees:"
    perf report -i "$T_DIR/perf.data" ${BENCH_PERF_COMM:+--comm $BENCH_PERF_COMM} --children --sort sym --stdio -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -n 40
    [ "$_pf_op" != unlock ] || lock_users
    _pf_s0=$(cpu_ticks "$SLAPD_PID")
    run_floor "$_pf_op" "$_pf_c"
    _pf_s1=$(cpu_ticks "$SLAPD_PID")
    tail -n 1 "$RESULTS" | sed 's/^/#   floor: /'
    echo "# slapd CPU ticks during the floor run: $((_pf_s1 - _pf_s0)) (per op: see ok above)"
    if command -v strace >/dev/null 2>&1; then
        echo "# $_pf_name system calls (strace -c, second run; strace slows it):"
        [ "$_pf_op" != unlock ] || lock_users
        strace -c -f -p "$_pf_pid" -o "$T_DIR/strace.txt" &
        _pf_st=$!
        sleep 0.5
        if [ "$_pf_name" = relay ]; then run_relay "$_pf_op" "$_pf_c"; else run_ldapdesk "$_pf_op" "$_pf_c"; fi
        kill -INT "$_pf_st" 2>/dev/null || true
        wait "$_pf_st" 2>/dev/null || true
        head -n 20 "$T_DIR/strace.txt"
        tail -n 1 "$RESULTS" | sed 's/^/#   under strace: /'
    fi
}

# cg_dump N: N requests of $_cg_op at $_cg_c instrumented, then callgrind's dump (numbered
# callgrind.out.1, .2, ...); sets CG_IR (instructions in the dump) and CG_OK (requests done).
cg_dump() {
    [ "$_cg_op" != unlock ] || lock_users
    callgrind_control -i on "$DAEMON_PID" >/dev/null
    BENCH_SECONDS=600 run_ldapdesk "$_cg_op" "$_cg_c" "$1"
    callgrind_control -d "$DAEMON_PID" >/dev/null
    callgrind_control -i off "$DAEMON_PID" >/dev/null
    _cg_dumps=$((_cg_dumps + 1))
    CG_OUT=$T_DIR/callgrind.out.$_cg_dumps
    CG_OK=$(tail -n 1 "$RESULTS" | sed -n 's/.*"ok":\([0-9]*\).*/\1/p')
    CG_IR=$(awk '/^(summary|totals):/ { t = $2 } END { print t + 0 }' "$CG_OUT" 2>/dev/null || echo 0)
}

# Instructions ldapdeskd executes per operation (run.sh callgrind). Each run of the load
# generator also opens its connections (TLS handshakes) and logs in: two runs, of N/5 and N
# requests, and the difference divided by the difference in requests leaves that out.
callgrind_run() {
    _cg_op=${BENCH_PROFILE_OP:-reset}
    _cg_c=${BENCH_PROFILE_CONC:-16}
    _cg_n=${BENCH_CG_COUNT:-1000}
    _cg_dumps=0
    # Uninstrumented first, as many: the directory's answers cached (user DNs, policies), as
    # in the timed runs, where each user is acted on many times.
    [ "$_cg_op" != unlock ] || lock_users
    BENCH_SECONDS=600 run_ldapdesk "$_cg_op" "$_cg_c" "$_cg_n"
    cg_dump $((_cg_n / 5))
    _cg_ir1=$CG_IR _cg_ok1=$CG_OK
    cg_dump "$_cg_n"
    if [ "${_cg_ok1:-0}" -le 0 ] || [ "$_cg_ir1" -le 0 ] || [ "$CG_IR" -le 0 ] ||
        [ "${CG_OK:-0}" -le "${_cg_ok1:-0}" ]; then
        say "callgrind: a dump is missing, or a run did no request (or the longer one no more)"
        return 1
    fi
    echo "# $_cg_op c=$_cg_c through ldapdeskd under callgrind ($_cg_ok1 then $CG_OK requests):"
    tail -n 1 "$RESULTS" | sed 's/^/#   /'
    awk -v a="$_cg_ir1" -v b="$CG_IR" -v n="$_cg_ok1" -v m="$CG_OK" 'BEGIN {
        per = (b - a) / (m - n)
        printf "# instructions per operation: %.0f (and %.0f per run of the load generator)\n",
            per, a - n * per }'
    echo "# functions, self ($CG_OK requests):"
    callgrind_annotate --threshold=90 "$CG_OUT" 2>/dev/null | sed -n '/^ *Ir/,$p' | sed -n '5,32p'
    echo "# functions, with callees:"
    callgrind_annotate --inclusive=yes --threshold=99 "$CG_OUT" 2>/dev/null | sed -n '/^ *Ir/,$p' \
        | sed -n '5,44p'
}

# ---------------------------------------------------------------- run

_start=$(date +%s)
say "seeding $BENCH_USERS users under $BENCH_BASE"
seed_users
daemon_config "$T_DIR/ldapdeskd.conf"
sed -i "s/^pool_size = .*/pool_size = $BENCH_POOL/" "$T_DIR/ldapdeskd.conf"
# Absolute: the daemon refuses relative file names.
[ -z "${BENCH_DB_DIR:-}" ] || BENCH_DB_DIR=$(cd "$BENCH_DB_DIR" && pwd)
[ -z "${BENCH_DB_DIR:-}" ] || sed -i "s|^database = .*|database = $BENCH_DB_DIR/audit.db|" "$T_DIR/ldapdeskd.conf"
[ -z "${BENCH_COMMIT_DELAY:-}" ] || sed -i "s|^\[audit\]|[audit]\ncommit_delay_ms = $BENCH_COMMIT_DELAY|" "$T_DIR/ldapdeskd.conf"
# Every load generator connection comes from 127.0.0.1: the per-address default (256) would
# refuse the RSS run's 256 beside the harness's own.
printf '\n[limits]\nconnections_per_address = 1024\n' >>"$T_DIR/ldapdeskd.conf"
if [ "${1:-}" = callgrind ]; then
    # The harness starts $LDAPDESKD; exec keeps the pid it tracks. Instrumented only while
    # counted: callgrind runs code ~50 times slower, start-up would take minutes.
    cat >"$T_DIR/ldapdeskd-cg" <<EOF
#!/bin/sh
exec valgrind -q --tool=callgrind --instr-atstart=no "--callgrind-out-file=$T_DIR/callgrind.out" \\
    "$LDAPDESKD" "\$@"
EOF
    chmod +x "$T_DIR/ldapdeskd-cg"
    LDAPDESKD=$T_DIR/ldapdeskd-cg T_START_TIMEOUT=120 daemon_start "$T_DIR/ldapdeskd.conf" || exit 1
else
    daemon_start "$T_DIR/ldapdeskd.conf" || exit 1
fi
(umask 077 && printf '%s' "$LDAP_OP_PW" >"$T_DIR/op.pw")
[ -z "$BENCH_RELAY" ] || relay_start || exit 1
write_worker
say "slapd $LDAP_URI, ldapdeskd pid $DAEMON_PID (pool_size $BENCH_POOL), ${BENCH_SECONDS}s per run"

# Warm both paths (TLS session set-up, slapd caches, SQLite pages) outside the table.
"$LOADGEN" --port "$LDAPDESK_PORT" --ca "$SLAPD_DIR/ca.pem" --user "$BENCH_OPERATOR" \
    --password-file "$T_DIR/op.pw" --op reset --concurrency 16 --count 200 \
    --users "$BENCH_USERS" --driver warmup >/dev/null || true
run_floor reset 16 200
[ -z "$BENCH_RELAY" ] || run_relay reset 16 200
: >"$RESULTS"

if [ "${1:-}" = callgrind ]; then
    callgrind_run
    daemon_stop 60
    T_DONE=1
    exit 0
fi
if [ "${1:-}" = profile ]; then
    profile
    daemon_stop
    T_DONE=1
    exit 0
fi

for op in $BENCH_OPS; do
    for c in $BENCH_CONC; do
        rep=1
        while [ "$rep" -le "$BENCH_REPEAT" ]; do
            for drv in $BENCH_DRIVERS; do
                # The script driver is an order of magnitude off: one run says enough.
                [ "$drv" != script ] || [ "$rep" = 1 ] || continue
                count=
                if [ "$op" = unlock ]; then
                    lock_users
                    count=$BENCH_USERS
                fi
                say "$op c=$c $drv (run $rep of $BENCH_REPEAT)"
                case $drv in
                    ldapdesk) run_ldapdesk "$op" "$c" "$count" ;;
                    floor) run_floor "$op" "$c" "$count" ;;
                    script) run_script "$op" "$c" ;;
                    relay) run_relay "$op" "$c" "$count" ;;
                    *) say "unknown driver $drv" ;;
                esac
            done
            rep=$((rep + 1))
        done
    done
done
if [ "$BENCH_RSS_CONNS" -gt 0 ]; then
    say "reset c=$BENCH_RSS_CONNS ldapdesk (peak RSS)"
    run_ldapdesk reset "$BENCH_RSS_CONNS"
fi

flag_unchanged
[ -z "${BENCH_OUT:-}" ] || cp "$RESULTS" "$BENCH_OUT"
echo "# disk before the runs: $SYNC_BEFORE"
echo "# disk after the runs:  $("$SYNCPROBE" "$T_DIR" 2>&1 || true)"
echo "# ldapdesk bench: $(nproc) CPU, $(uname -sr), slapd $(slapd -VV 2>&1 | sed -n 's/.*slapd \([0-9.]*\).*/\1/p' | head -n 1), ${BENCH_SECONDS}s per run, $BENCH_USERS users, pool_size $BENCH_POOL, $BENCH_REPEAT runs per cell, commit_delay_ms ${BENCH_COMMIT_DELAY:-default}"
report
_bad=$(grep -c '"flagged":true' "$RESULTS" || true)
_err=$(grep -c '"errors":[1-9]' "$RESULTS" || true)
_unch=$(grep -c '"mostly_unchanged":true' "$RESULTS" || true)
echo "# $(wc -l <"$RESULTS") runs in $(($(date +%s) - _start)) s; runs flagged '!': $_bad (with errors: $_err; unlock runs answered mostly 'unchanged': $_unch)"
daemon_stop
# shellcheck disable=SC2034 # read by harness.sh's EXIT trap: a finished run, not an abort
T_DONE=1
[ "$_bad" = 0 ]
