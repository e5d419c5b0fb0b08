#!/bin/sh
# config_errors.sh — a bad configuration stops start-up with FILE:LINE and
# what is wrong; -n only checks.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init config_errors
t_start_slapd || { t_fail "slapd starts"; t_done; }
daemon_config "$T_DIR/good.conf"
C=$T_DIR/bad.conf
t_match '^configuration OK$' "-n accepts the good config" "$LDAPDESKD" -n -c "$T_DIR/good.conf"
# No listen key: DESIGN's 127.0.0.1:8636, the client's default URL (TLS from tls_cert/tls_key).
sed '/^listen = /d' "$T_DIR/good.conf" >"$T_DIR/nolisten.conf"
t_match '^configuration OK$' "-n accepts a config without listen (127.0.0.1:8636)" \
    "$LDAPDESKD" -n -c "$T_DIR/nolisten.conf"
# -n checks the file, not the machine; a port held by something else is worth a warning
# (a running ldapdeskd, checked before a reload, holds its own: not an error).
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("held", flush=True); time.sleep(20)' \
    "$LDAPDESK_PORT" >"$T_DIR/held.out" &
held=$!
for _ in $(seq 150); do [ -s "$T_DIR/held.out" ] && break; sleep 0.1; done
t_match "warning: listen 127.0.0.1:$LDAPDESK_PORT is in use now" "-n warns of a listen port another socket holds" \
    "$LDAPDESKD" -n -c "$T_DIR/good.conf"
t_match '^configuration OK$' "... and still passes the file" printf '%s\n' "$T_OUT"
kill "$held" 2>/dev/null || :
wait "$held" 2>/dev/null || :
t_nomatch "in use" "with the port free, no warning" "$LDAPDESKD" -n -c "$T_DIR/good.conf"
bad() { # DESC REGEX then stdin edits via sed expression
    cp "$T_DIR/good.conf" "$C"
    sed -i "$3" "$C"
    t_exit 1 "$1 stops start-up" "$LDAPDESKD" -n -c "$C"
    t_match "$2" "$1 is named" "$LDAPDESKD" -n -c "$C"
}
line=$(grep -n '^pool_size' "$T_DIR/good.conf" | cut -d: -f1)
bad "an unknown key" "bad.conf:$line: unknown key \"pool_sise\" in \\[ldap\\]" 's/^pool_size/pool_sise/'
bad "a bad number" "bad.conf:$line: pool_size: expected a whole number" 's/^pool_size = .*/pool_size = many/'
bad "an inline comment after a value (libinih would cut the value there)" \
    "bad.conf:$line: a ';' after a blank ends the value there .*: put comments on lines of their own" \
    's/^pool_size = .*/pool_size = 64 ; was 4/'
bad "a missing certificate" "bad.conf:[0-9]+: \\[server\\] tls_cert: cannot read /nonexistent.pem" \
    's|^tls_cert = .*|tls_cert = /nonexistent.pem|'
bad "a line over 200 bytes" "bad.conf:[0-9]+: line is [0-9]+ bytes long" \
    "s|^groups = .*|groups = cn=$(printf '%0220d' 0),dc=example,dc=com|"
bad "a user that does not exist" "bad.conf:[0-9]+: \\[server\\] user: no such user \"nosuchuser\"" \
    's|^\[server\]|[server]\nuser = nosuchuser|'
bad "a database in a directory that does not exist" \
    "bad.conf:[0-9]+: \\[audit\\] database: the directory /nonexistent/dir does not exist" \
    's|^database = .*|database = /nonexistent/dir/a.db|'
bad "a backup_dir under a directory that does not exist" \
    "bad.conf:[0-9]+: \\[audit\\] backup_dir: the directory /nonexistent does not exist" \
    's|^backup_dir = .*|backup_dir = /nonexistent/backups|'
# What -n passed before and start-up (or the first connection, or the first create) refused.
: >"$T_DIR/a-file"
printf 'not a certificate\n' >"$T_DIR/garbage.pem"
bad "a backup_dir that is a file" "bad.conf:[0-9]+: \\[audit\\] backup_dir: $T_DIR/a-file is not a directory" \
    "s|^backup_dir = .*|backup_dir = $T_DIR/a-file|"
bad "a socket in a directory that does not exist" \
    "bad.conf:[0-9]+: \\[server\\] listen: the directory of the socket /nonexistent/x.sock does not exist" \
    "s|^listen = unix:.*|listen = unix:/nonexistent/x.sock|"
bad "an LDAP URI with a port out of range" \
    "bad.conf:[0-9]+: \\[ldap\\] uri: \"ldap://127.0.0.1:99999\" is not an LDAP URL" \
    "s|^uri = .*|uri = ldap://127.0.0.1:99999|"
bad "an LDAP URI with blanks in it (a list of three, two not URLs)" \
    "bad.conf:[0-9]+: \\[ldap\\] uri: \"b\" is not an LDAP URL" \
    "s|^uri = .*|uri = ldap://a b c|"
printf 'precious\n' >"$T_DIR/precious.txt"
bad "a socket path where a file is (the audit database, by a typo)" \
    "bad.conf:[0-9]+: \\[server\\] listen: .*precious.txt exists and is not a socket: choose a path of its own" \
    "s|^listen = unix:.*|listen = unix:$T_DIR/precious.txt|"
t_exit 1 "... and start-up refuses it too" "$LDAPDESKD" -c "$C" -f
t_eq "$(cat "$T_DIR/precious.txt")" precious "... leaving the file as it was (it was replaced by a socket)"
# [server] user while not started as root: only root can become another user. The files are
# copied where nobody (uid 65534) can read them, so -n gets as far as the user.
if command -v setpriv >/dev/null 2>&1; then
    mkdir -p "$T_DIR/pub"
    cp "$SLAPD_DIR/server.pem" "$SLAPD_DIR/server.key" "$SLAPD_DIR/ca.pem" "$SLAPD_DIR/bind.pw" "$T_DIR/pub/"
    sed -e "s|$SLAPD_DIR/|$T_DIR/pub/|g" -e "s|^database = .*|database = $T_DIR/pub/audit.db|" \
        -e "s|^backup_dir = .*|backup_dir = $T_DIR/pub/backups|" -e '/^key_file/d' \
        -e '/^listen = unix:/d' -e 's|^\[server\]|[server]\nuser = root|' "$T_DIR/good.conf" >"$T_DIR/pub/c.conf"
    chown -R 65534:65534 "$T_DIR/pub"
    chmod o+x "$T_DIR"
    t_exit 1 "[server] user = root for a daemon started as nobody is refused by -n" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$LDAPDESKD" -n -c "$T_DIR/pub/c.conf"
    t_match "c.conf:[0-9]+: \\[server\\] user: ldapdeskd runs as uid 65534, not root, so it cannot become root: remove the key" \
        "... saying only root can change user and what to do" printf '%s\n' "$T_OUT"
    sed -i '/^user = root/d' "$T_DIR/pub/c.conf"
    t_match '^configuration OK$' "... and without the key the same file is fine" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$LDAPDESKD" -n -c "$T_DIR/pub/c.conf"
    # The database file is the daemon's user's, its directory root's: SQLite cannot make its
    # -wal file beside it. Start-up said only SQLite's words, with no config line or fix.
    mkdir -p "$T_DIR/rodb"
    touch "$T_DIR/rodb/audit.db" "$T_DIR/rodb/audit.db-ids"
    chown 65534:65534 "$T_DIR/rodb/audit.db" "$T_DIR/rodb/audit.db-ids"
    chmod 755 "$T_DIR/rodb"
    sed -e "s|^database = .*|database = $T_DIR/rodb/audit.db|" \
        -e "s|^\[server\]|[server]\nkey_file = $T_DIR/pub/key|" "$T_DIR/pub/c.conf" >"$T_DIR/pub/ro.conf"
    chown 65534:65534 "$T_DIR/pub/ro.conf"
    t_exit 1 "-n run as the daemon's user refuses a database directory it cannot write" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$LDAPDESKD" -n -c "$T_DIR/pub/ro.conf"
    t_match "ro.conf:[0-9]+: \\[audit\\] database: uid 65534 cannot write .*rodb/audit.db or its directory .*rodb, where the daemon makes files after start-up" \
        "... naming the config line, the directory and what to do" printf '%s\n' "$T_OUT"
    t_exit 1 "a database in a directory the daemon's user cannot write stops start-up" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$LDAPDESKD" -c "$T_DIR/pub/ro.conf" -f
    t_match "ro.conf:[0-9]+: \\[audit\\] database: .*rodb/audit.db: .*the daemon's user must be able to write the file and its directory" \
        "... naming the config line and the directory, where SQLite keeps its -wal file" printf '%s\n' "$T_OUT"
    # ... and the same for the session key, which the daemon makes (or replaces) after start-up.
    mkdir -p "$T_DIR/rwdb" "$T_DIR/rokey"
    chown 65534:65534 "$T_DIR/rwdb"
    chmod 755 "$T_DIR/rokey"
    sed -e "s|^database = .*|database = $T_DIR/rwdb/audit.db|" \
        -e "s|^key_file = .*|key_file = $T_DIR/rokey/key|" "$T_DIR/pub/ro.conf" >"$T_DIR/pub/rokey.conf"
    chown 65534:65534 "$T_DIR/pub/rokey.conf"
    t_exit 1 "-n run as the daemon's user refuses a key_file directory it cannot write" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$LDAPDESKD" -n -c "$T_DIR/pub/rokey.conf"
    t_match "rokey.conf:[0-9]+: \\[server\\] key_file: uid 65534 cannot write .*rokey/key or its directory .*rokey, where the daemon makes files after start-up" \
        "... naming the key_file line, the directory and what to do" printf '%s\n' "$T_OUT"
    chmod o-x "$T_DIR"
else
    t_skip "[server] user for a daemon not started as root" "no setpriv"
fi
sed "s|^database = .*|database = /proc/audit.db|" "$T_DIR/good.conf" >"$C"
t_exit 1 "a database where no file can be made (/proc) stops start-up" "$LDAPDESKD" -c "$C" -f
t_match "bad.conf:[0-9]+: \\[audit\\] database: /proc/audit.db: cannot create or open it \\(the daemon's user must be able to write" \
    "... naming the config line and what to do" printf '%s\n' "$T_OUT"
bad "an address not of this machine" "bad.conf:[0-9]+: \\[server\\] listen: 192.0.2.1:8636 is not an address of this machine" \
    "0,/^listen = /s|^listen = .*|listen = 192.0.2.1:8636|"
bad "a ca_file that holds no certificate" "bad.conf:[0-9]+: \\[ldap\\] ca_file: .*garbage.pem holds no PEM certificate" \
    "s|^ca_file = .*|ca_file = $T_DIR/garbage.pem|"
bad "a ca_file that is a directory" "bad.conf:[0-9]+: \\[ldap\\] ca_file: $T_DIR is not a file" \
    "s|^ca_file = .*|ca_file = $T_DIR|"
t_exit 1 "-c naming a directory stops" "$LDAPDESKD" -n -c "$T_DIR"
t_match "$T_DIR: a directory, not a file: give the configuration file" "... saying so" printf '%s\n' "$T_OUT"
mkdir -p "$T_DIR/pwdir"
bad "a bind_password_file that is a directory" "bad.conf:[0-9]+: \\[ldap\\] bind_password_file: $T_DIR/pwdir is not a file" \
    "s|^bind_password_file = .*|bind_password_file = $T_DIR/pwdir|"
bad "a user_dn template with a placeholder that does not exist" \
    "bad.conf:[0-9]+: \\[lifecycle\\] user_dn: unknown placeholder \\{dept\\}: use \\{uid\\}, \\{department\\}" \
    's|^\[audit\]|[lifecycle]\nuser_dn = uid={uid},ou={dept},{user_base}\n[audit]|'
bad "a user_dn template without {uid}" "bad.conf:[0-9]+: \\[lifecycle\\] user_dn: \"cn=x,\\{user_base\\}\" must name \\{uid\\}" \
    's|^\[audit\]|[lifecycle]\nuser_dn = cn=x,{user_base}\n[audit]|'
# A repeated key's bad value is named at its own line, not at the key's last one.
line=$(grep -n '^listen = ' "$T_DIR/good.conf" | head -1 | cut -d: -f1)
bad "a bad first of two listen lines" "bad.conf:$line: \\[server\\] listen: \"localhost\" is neither" \
    "${line}s|^listen = .*|listen = localhost\\nlisten = unix:$T_DIR/second.sock|"
line=$(grep -n '^groups = ' "$T_DIR/good.conf" | head -1 | cut -d: -f1)
bad "a bad first of two protected groups" "bad.conf:$line: \\[protect\\] groups: \"garbage\" is not a DN" \
    "${line}s|^groups = .*|groups = garbage\\ngroups = cn=other,dc=example,dc=com|"
# Values that would fail every request far from their line: a DN that is no DN, an empty
# attribute, a listener given twice.
line=$(grep -n '^admin = ' "$T_DIR/good.conf" | cut -d: -f1)
bad "a role group that is no DN" "bad.conf:$line: \\[roles\\] admin: \"not a dn\" is not a DN" \
    's|^admin = .*|admin = not a dn|'
bad "a protected group that is no DN" "bad.conf:[0-9]+: \\[protect\\] groups: \"garbage\" is not a DN" \
    's|^groups = .*|groups = garbage|'
bad "a user_base that is no DN" "bad.conf:[0-9]+: \\[ldap\\] user_base: \"people\" is not a DN" \
    's|^user_base = .*|user_base = people|'
bad "a grant group that is no DN" "bad.conf:[0-9]+: \\[grant\\.[a-z-]+\\] group: \"general\" is not a DN" \
    '0,/^group = .*/s||group = general|'
bad "an empty user_attr" "bad.conf:[0-9]+: \\[ldap\\] user_attr has no value" \
    's|^\[ldap\]|[ldap]\nuser_attr =|'
bad "an empty category label" "bad.conf:[0-9]+: \\[category.z\\] label has no value" \
    '$a [category.z]\nlabel =\nunit = 次'
bad "a listener given twice" "bad.conf:[0-9]+: listen = 127.0.0.1:[0-9]+ is given twice" \
    's|^\(listen = 127.*\)$|\1\n\1|'
head -c 32 /dev/urandom >"$T_DIR/open.key" && chmod 644 "$T_DIR/open.key"
bad "a session key readable by others" \
    "bad.conf:[0-9]+: \\[server\\] key_file: the session key .*open.key must be 32 bytes and mode 0600" \
    "s|^key_file = .*|key_file = $T_DIR/open.key|"
printf 'not a database\n' >"$T_DIR/text.db"
bad "a database that is no SQLite file" \
    "bad.conf:[0-9]+: \\[audit\\] database: .*text.db is not an SQLite database" \
    "s|^database = .*|database = $T_DIR/text.db|"
cp "$SLAPD_DIR/ca.pem" "$T_DIR/ca600.pem" && chmod 600 "$T_DIR/ca600.pem"
bad "a ca_file the [server] user cannot read" \
    "bad.conf:[0-9]+: \\[ldap\\] ca_file: .*ca600.pem cannot be read by nobody, the \\[server\\] user" \
    "s|^ca_file = .*|ca_file = $T_DIR/ca600.pem|; s|^\\[server\\]|[server]\\nuser = nobody|"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T_DIR/other.key" 2>/dev/null
chmod 600 "$T_DIR/other.key"
bad "a key that does not match the certificate" "bad.conf:[0-9]+: \\[server\\] tls_key: .*other.key does not match tls_cert" \
    "s|^tls_key = .*|tls_key = $T_DIR/other.key|"
cp "$SLAPD_DIR/server.key" "$T_DIR/open.key" && chmod 644 "$T_DIR/open.key"
bad "a private key anyone may read" \
    "bad.conf:[0-9]+: \\[server\\] tls_key: the private key .*open.key is readable by anyone: chmod o-r" \
    "s|^tls_key = .*|tls_key = $T_DIR/open.key|"
chmod 640 "$T_DIR/open.key"
cp "$T_DIR/good.conf" "$C"
sed -i "s|^tls_key = .*|tls_key = $T_DIR/open.key|" "$C"
t_match '^configuration OK$' "... while one its group may read (root:ssl-cert 0640, Debian's way) is fine" \
    "$LDAPDESKD" -n -c "$C"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-128-cbc -pass pass:x \
    -out "$T_DIR/locked.key" 2>/dev/null
bad "an encrypted key (no pass phrase is asked for)" "bad.conf:[0-9]+: \\[server\\] tls_key: .*without a pass phrase" \
    "s|^tls_key = .*|tls_key = $T_DIR/locked.key|"
cp "$T_DIR/good.conf" "$C"
printf 'not a certificate\n' >"$T_DIR/garbage.pem"
sed -i "s|^tls_cert = .*|tls_cert = $T_DIR/garbage.pem|" "$C"
t_match "bad.conf:[0-9]+: \\[server\\] tls_cert: .*garbage.pem" "an unreadable certificate is named at start-up" "$LDAPDESKD" -c "$C"
pwf=$(sed -n 's/^bind_password_file = //p' "$T_DIR/good.conf")
cp "$pwf" "$T_DIR/open.pw"
chmod 644 "$T_DIR/open.pw"
cp "$T_DIR/good.conf" "$C"
sed -i "s|^bind_password_file = .*|bind_password_file = $T_DIR/open.pw|" "$C"
t_match "$T_DIR/open.pw is readable by group or others" "a world-readable password file is refused by name" "$LDAPDESKD" -n -c "$C"
t_exit 1 "a missing config file is an error" "$LDAPDESKD" -n -c "$T_DIR/absent.conf"
t_exit 2 "no -c is a usage error" "$LDAPDESKD"
cp "$T_DIR/good.conf" "$C"
sed -i 's|^listen = unix:.*||; s|^tls_cert = .*||; s|^tls_key = .*||' "$C"
t_match "plaintext is allowed only on unix: sockets" "a TCP listener without TLS is refused" "$LDAPDESKD" -n -c "$C"
# What the daemon writes later (the id mark here) must be writable at start, or start-up says so.
# (An earlier start made the mark: its first record declared the seal key.)
rm -f "$T_DIR/audit.db-ids"
mkdir -p "$T_DIR/audit.db-ids"
t_exit 1 "a database whose id mark cannot be written stops start-up" timeout 20 "$LDAPDESKD" -c "$T_DIR/good.conf"
t_match "audit.db-ids: the daemon's user must be able to write it" "naming the file" printf '%s\n' "$T_OUT"
rmdir "$T_DIR/audit.db-ids"
t_match '^usage: ldapdeskd -c FILE' "ldapdeskd --help prints the usage" "$LDAPDESKD" --help
t_exit 0 "... and exits 0" "$LDAPDESKD" --help
t_match '^ldapdeskd [0-9]+\.[0-9]+' "ldapdeskd --version prints the version" "$LDAPDESKD" --version
t_match '^configuration OK$' "--check --config is -n -c" "$LDAPDESKD" --check --config "$T_DIR/good.conf"
t_exit 2 "an unknown option is a usage error (exit 2)" "$LDAPDESKD" --bogus
sed -e 's|^uri = .*|uri = ldap://192.0.2.10:389|' -e 's|^starttls = .*|starttls = no|' "$T_DIR/good.conf" >"$T_DIR/plain.conf"
t_exit 1 "plain LDAP without starttls is refused at start-up (issue 3: StartTLS or ldaps)" \
    "$LDAPDESKD" -n -c "$T_DIR/plain.conf"
t_match "plain.conf:[0-9]+: \\[ldap\\] uri: \"ldap://192.0.2.10:389\" is plain LDAP and starttls is off: .*set starttls = yes, or use ldaps://" \
    "... naming the line and what to set" printf '%s\n' "$T_OUT"
sed -i '/^starttls = /d' "$T_DIR/plain.conf"
t_exit 1 "... also when starttls is left out (it defaults to off)" "$LDAPDESKD" -n -c "$T_DIR/plain.conf"
# A wrong service password passes -n (it cannot be checked without the directory): the log
# names the file to look at.
printf 'wrong-password\n' >"$T_DIR/wrong.pw" && chmod 600 "$T_DIR/wrong.pw"
sed "s|^bind_password_file = .*|bind_password_file = $T_DIR/wrong.pw|" "$T_DIR/good.conf" >"$T_DIR/wrongpw.conf"
daemon_start "$T_DIR/wrongpw.conf" || { t_fail "ldapdeskd starts with a wrong service password"; t_done; }
for _ in $(seq 150); do grep -q "Invalid credentials" "$T_DIR/ldapdeskd.log" && break; sleep 0.1; done
t_match "bind as .*: Invalid credentials \\(check \\[ldap\\] bind_dn, and the password in $T_DIR/wrong.pw\\)" \
    "a wrong service password is logged naming bind_dn and the password file" cat "$T_DIR/ldapdeskd.log"
daemon_stop
t_done
