#!/bin/sh
# audit_bench.sh — issue 4 point 7: fills an audit database with realistic
# events and measures the one-user six-month query, the six-month report,
# CSV import throughput and the database size per million rows.
#   BENCH_ROWS=N (default 1000000)  BENCH_10M=1 also runs the query on 10M
#   BENCH_IMPORT=N (default 100000) KEEP=1 keeps the temp dir
#   BENCH_BIN=DIR where audit_fill is (default build/bench, rebuilt first)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
rows=${BENCH_ROWS:-1000000}
imp=${BENCH_IMPORT:-100000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/audit-bench.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$dir"' EXIT
export TZ=Asia/Shanghai

# Built with the tree (bench/meson.build: ./dev build), linked against the daemon's core as
# ldapdeskd is; BENCH_BIN is the directory holding it, as for bench/run.sh.
bin=${BENCH_BIN:-$src/build/bench}/audit_fill
if [ -z "${BENCH_BIN:-}" ] && [ -f "$src/build/build.ninja" ]; then
    ninja -C "$src/build" bench/audit_fill >&2 # brought up to date with the sources
fi
[ -x "$bin" ] || {
    echo "audit_bench: $bin is not built: run ./dev build (or set BENCH_BIN)" >&2
    exit 1
}

# Six months = 2026-01-01 .. 2026-06-30 local (+08:00), as stored UTC bounds.
from=2025-12-31T16:00:00.000Z
to=2026-06-30T15:59:59.999Z

size_per_m() { # DB ROWS
    bytes=$(stat -c %s "$1")
    echo "db_size $bytes bytes ($(awk -v b="$bytes" -v n="$2" 'BEGIN{printf "%.0f", b/n*1e6/1048576}') MiB per million events)"
}

run() { # DB ROWS
    echo "# $2 events"
    "$bin" fill "$1" "$2"
    size_per_m "$1" "$2"
    "$bin" query "$1" u00042 "$from" "$to"
    "$bin" query "$1" u00042 "$from" "$to" # warm cache
}

run "$dir/a.db" "$rows"
echo "# six-month report over the $rows-event database"
for f in json csv html; do "$bin" report "$dir/a.db" "$from" "$to" "$f"; done
echo "# import of a $imp-row CSV"
"$bin" csv "$dir/in.csv" "$imp"
"$bin" import "$dir/i.db" "$dir/in.csv"
if [ "${BENCH_10M:-0}" = 1 ]; then
    rm -f "$dir/a.db"*
    run "$dir/b.db" 10000000
fi
