# shellcheck shell=sh
# tests/lib/certs.sh — throw-away TLS material for tests and the demo.
#
#   certs_make DIR
#     DIR/ca.pem, DIR/ca.key            test CA ("ldapdesk test CA")
#     DIR/server.pem, DIR/server.key    CN=localhost, SAN DNS:localhost, IP:127.0.0.1,
#                                       signed by ca.pem (server.pem holds the leaf only)
#     DIR/other-ca.pem, DIR/other-ca.key  an unrelated CA, for negative TLS tests
#   Keys are EC P-256, mode 0600. Existing complete sets are reused (idempotent).
#   Quiet on success; on failure prints openssl's messages to stderr and returns 1.
#
# POSIX sh (dash), safe under `set -eu`.

certs_make() {
    _cm_dir=${1:?certs_make: DIR missing}
    if [ -s "$_cm_dir/ca.pem" ] && [ -s "$_cm_dir/ca.key" ] \
        && [ -s "$_cm_dir/server.pem" ] && [ -s "$_cm_dir/server.key" ] \
        && [ -s "$_cm_dir/other-ca.pem" ]; then
        return 0
    fi
    command -v openssl >/dev/null 2>&1 || { echo "certs_make: openssl not found" >&2; return 1; }
    mkdir -p "$_cm_dir" || return 1
    _cm_log=$_cm_dir/openssl.log
    _cm_cnf=$_cm_dir/openssl.cnf
    cat >"$_cm_cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    (
        umask 077
        _serial() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | sed 's/^./1/'; }
        openssl req -config "$_cm_cnf" -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -nodes -keyout "$_cm_dir/ca.key" -out "$_cm_dir/ca.pem" -days 3650 \
            -subj "/O=ldapdesk tests/CN=ldapdesk test CA" -extensions v3_ca \
            -set_serial "0x$(_serial)" &&
        openssl req -config "$_cm_cnf" -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -nodes -keyout "$_cm_dir/other-ca.key" -out "$_cm_dir/other-ca.pem" -days 3650 \
            -subj "/O=somebody else/CN=unrelated test CA" -extensions v3_ca \
            -set_serial "0x$(_serial)" &&
        openssl req -config "$_cm_cnf" -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -nodes -keyout "$_cm_dir/server.key" -out "$_cm_dir/server.csr" -subj "/CN=localhost" &&
        openssl x509 -req -in "$_cm_dir/server.csr" -CA "$_cm_dir/ca.pem" -CAkey "$_cm_dir/ca.key" \
            -set_serial "0x$(_serial)" -days 825 -sha256 \
            -extfile "$_cm_cnf" -extensions v3_server -out "$_cm_dir/server.pem" &&
        rm -f "$_cm_dir/server.csr"
    ) >"$_cm_log" 2>&1 || {
        echo "certs_make: openssl failed in $_cm_dir:" >&2
        cat "$_cm_log" >&2
        return 1
    }
    chmod 0600 "$_cm_dir/ca.key" "$_cm_dir/other-ca.key" "$_cm_dir/server.key"
    chmod 0644 "$_cm_dir/ca.pem" "$_cm_dir/other-ca.pem" "$_cm_dir/server.pem"
    rm -f "$_cm_log" "$_cm_cnf"
    return 0
}
