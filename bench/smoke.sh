#!/bin/sh
# bench/smoke.sh — every bench driver once, briefly, against a real slapd and ldapdeskd, so that
# a broken driver, relay or run.sh fails the tests rather than the day someone wants numbers.
# Figures are printed, never checked: only that each driver ran each operation without an
# error and that the table shows them (meson test 'bench_smoke'; ~10 s).
set -eu
: "${LDAPDESK_SRC:?}" "${LDAPDESKD:?}" "${BENCH_BIN:?}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
BENCH_SECONDS=1 BENCH_USERS=256 BENCH_DRIVERS="ldapdesk floor relay script" \
    BENCH_OPS="unlock reset grant-revoke" BENCH_CONC=2 BENCH_REPEAT=1 BENCH_RSS_CONNS=0 \
    BENCH_SCRIPT_MAX=20 sh "$LDAPDESK_SRC/bench/run.sh" >"$out" || rc=$?
cat "$out"
[ "$rc" = 0 ] || { echo "bench smoke: run.sh exited $rc"; exit 1; }
for op in unlock reset grant-revoke; do
    for drv in ldapdesk floor relay script; do
        # One row per cell: op, concurrency, driver, 1 run, ops/s above zero, no errors; and
        # but for the script's, slapd's CPU in the run (column "slapd us") above zero: a
        # driver that answered without asking the directory would show none.
        awk -v op="$op" -v d="$drv" '$1 == op && $2 == 2 && $3 == d && $4 == 1 && $5 + 0 > 0 && $9 == 0 &&
            (d == "script" || $13 + 0 > 0) { f = 1 } END { exit !f }' "$out" ||
            { echo "bench smoke: no clean $drv row for $op"; exit 1; }
    done
done
grep -q '^# relay (HTTPS to LDAP, nothing else) / floor: unlock c2 ' "$out" ||
    { echo "bench smoke: the relay line is missing"; exit 1; }
grep -q '^# 12 runs in .*flagged .!.: 0 ' "$out" || { echo "bench smoke: not 12 clean runs"; exit 1; }
echo "bench smoke: 12 runs, 4 drivers x 3 operations, no errors"
