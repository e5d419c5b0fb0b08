#!/bin/sh
# demo.sh — the README's front door: `./dev demo` (conf/demo.sh) walks through status, unlock,
# reset, grant, log and report against its own slapd and daemon; every step must end as it
# should (the walk-through exits 1 otherwise) and the report must count the day's events.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init demo
rc=0
sh "$LDAPDESK_SRC/conf/demo.sh" >"$T_DIR/demo.out" 2>&1 || rc=$?
t_eq "$rc" 0 "the demo's walk-through runs to its end, every step as it should ($(grep -c '^demo: expected' "$T_DIR/demo.out" || true) off)"
t_match '^logged in as hd1 ' "the hotline operator logs in" cat "$T_DIR/demo.out"
t_match '^unlocked alice \(event [0-9]+\)' "alice is unlocked" cat "$T_DIR/demo.out"
t_match '^One-time password for bob: ' "bob's password is reset" cat "$T_DIR/demo.out"
t_match "^ldapdesk: hd1's roles do not allow grant" "the helpdesk may not grant" cat "$T_DIR/demo.out"
t_match '^granted procurement to carol ' "the administrator grants" cat "$T_DIR/demo.out"
t_match '^audit chain ok' "the auditor's verify is ok" cat "$T_DIR/demo.out"
t_match '解锁重置密码 3 次.*删除待办与邮件 1 次.*授权系统权限 2 次.*运维事件共 6 次' \
    "the report counts the day: 3 unlock/reset, 1 to-do, 2 grants" cat "$T_DIR/demo.out"
demo_dir=$(sed -n 's/.*(working directory \(\/[^ ,]*\), removed at the end.*/\1/p' "$T_DIR/demo.out" | head -n 1)
t_match '^/tmp/' "the demo names its own directory ($demo_dir)" echo "$demo_dir"
t_eq "$(pgrep -f "${demo_dir:-/nonexistent}" | wc -l)" 0 "nothing the demo started is left running"
t_ok "... and its directory is gone (KEEP=1 keeps it)" test ! -e "${demo_dir:-/nonexistent}"
t_done
