# shellcheck shell=sh
# tests/lib/samba.sh — a throw-away Samba AD DC (Debian 12: Samba 4.17) standing in for Active
# Directory in the flavour tests and ./dev demo --flavor ad. POSIX sh (dash), safe under `set -eu`.
# Needs LDAPDESK_SRC (the repository root); sources proc.sh and certs.sh (not harness.sh).
#
#   samba_setup DIR   DIR/t = a provisioned domain EXAMPLE.COM (base DC=example,DC=com, DC LDTDC)
#                     seeded from conf/demo.ldif, copied from a stopped provisioned domain in the
#                     cache (created on first use: samba-tool domain provision + offline seeding,
#                     ~15 s; a copy takes well under 1 s). DIR/ca.pem = the CA of the LDAPS
#                     certificate (certs_make CA; the leaf has IP SANs 127.0.0.2-127.0.0.40),
#                     DIR/bind.pw (service password, 0600, no newline). Exports SAMBA_DIR and
#                     SAMBA_CREATE_SECS (seconds provisioning+seeding took; empty on a cache hit).
#   samba_start DIR [ADDR]
#                     samba -F -M single, server services = ldap only, bound to one loopback
#                     address ADDR (default: the first of 127.0.0.2..127.0.0.40 with nothing on
#                     389/636/3268/3269). LDAP ports cannot move (389, 636, GC 3268/3269);
#                     addresses can. Waits up to T_START_TIMEOUT s (default 20) for LDAPS.
#                     Exports SAMBA_PID AD_ADDR AD_URI (ldaps://ADDR) AD_STARTTLS_URI (ldap://ADDR,
#                     use with StartTLS) AD_CA SAMBA_DIR. Registers the pid with t_track when
#                     harness.sh is loaded. Log: DIR/samba.log.
#   samba_stop DIR    TERM, bounded wait, KILL.
#
# Cache: ${LDAPDESK_FLAVOR_CACHE:-/tmp/ldapdesk-flavor-cache}/samba-VERSION-SUM (VERSION = the
#   samba-ad-dc package version, SUM = cksum of this file and conf/demo.ldif).
#
# Constants (exported): AD_REALM AD_DOMAIN AD_BASE AD_PEOPLE AD_GROUPS AD_SVC_DN AD_SVC_PW
#   AD_ADMIN_DN AD_ADMIN_PW AD_USER_PW AD_OP_PW
# The domain (see doc/flavors.md): lockoutThreshold 3, lockoutDuration 60 min, observation window
#   10 min, complexity off, min age 0, history 0. Users CN=UID,OU=<department>,OU=people
#   (sAMAccountName = uid, displayName = Chinese name, department, mail, userPrincipalName);
#   groups CN=NAME,OU=groups (global security groups, member); the service account
#   CN=ldapdesk,OU=services (password never expires; PSO "ldapdesk-service" without lockout) holds
#   delegated rights only: Reset Password + write lockoutTime, pwdLastSet, userAccountControl on
#   user objects under OU=people, create/delete users there, write member on groups under OU=groups.
#
# Helpers (need samba_start; all over LDAPS with LDAPTLS_CACERT=AD_CA, LDIF unwrapped):
#   ad_admin_search ARGS / ad_admin_modify / ad_svc_search ARGS / ad_svc_modify
#   ad_user_dn UID / ad_attr UID ATTR / ad_unicodepwd PASSWORD (base64 of "PASSWORD" in UTF-16LE)

if [ -z "${LDAPDESK_SRC:-}" ] || [ ! -f "$LDAPDESK_SRC/tests/lib/samba.sh" ]; then
    echo "tests/lib/samba.sh: set LDAPDESK_SRC to the repository root (got '${LDAPDESK_SRC:-}')" >&2
    return 1 2>/dev/null || exit 1
fi
command -v proc_stop >/dev/null 2>&1 || . "$LDAPDESK_SRC/tests/lib/proc.sh"
command -v certs_make >/dev/null 2>&1 || . "$LDAPDESK_SRC/tests/lib/certs.sh"

AD_REALM=EXAMPLE.COM
AD_DOMAIN=EXAMPLE
AD_BASE=DC=example,DC=com
AD_PEOPLE=OU=people,$AD_BASE
AD_GROUPS=OU=groups,$AD_BASE
AD_SVC_DN=CN=ldapdesk,OU=services,$AD_BASE
AD_SVC_PW=svc-Secret-2026
AD_ADMIN_DN=CN=Administrator,CN=Users,$AD_BASE
AD_ADMIN_PW=Admin-Pass-2026
AD_USER_PW=User-Pass-2026
AD_OP_PW=Op-Pass-2026
export AD_REALM AD_DOMAIN AD_BASE AD_PEOPLE AD_GROUPS AD_SVC_DN AD_SVC_PW AD_ADMIN_DN AD_ADMIN_PW \
    AD_USER_PW AD_OP_PW

SAMBA_BIN=${SAMBA_BIN:-/usr/sbin/samba}
SAMBA_TOOL=${SAMBA_TOOL:-/usr/bin/samba-tool}
# Samba's python modules live in Debian's python3, not in whatever python3 PATH finds first
SAMBA_PYTHON=${SAMBA_PYTHON:-/usr/bin/python3}

_sb_absdir() { (cd "$1" && pwd -P); }
_sb_now() { date +%s.%N | cut -c1-14; }
_sb_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

_samba_cache_dir() {
    _sc_ver=$(dpkg-query -W -f '${Version}' samba-ad-dc 2>/dev/null || true)
    [ -n "$_sc_ver" ] || { echo "samba: package samba-ad-dc not installed (apt-get install samba-ad-dc)" >&2; return 1; }
    _sc_ver=$(printf '%s' "$_sc_ver" | tr -c 'A-Za-z0-9.-' '_')
    _sc_sum=$(cat "$LDAPDESK_SRC/tests/lib/samba.sh" "$LDAPDESK_SRC/conf/demo.ldif" | cksum | cut -d' ' -f1)
    printf '%s/samba-%s-%s\n' "${LDAPDESK_FLAVOR_CACHE:-/tmp/ldapdesk-flavor-cache}" "$_sc_ver" "$_sc_sum"
}

# the seeding program: reads conf/demo.ldif, writes the domain offline through samba's own modules
_samba_seed_py() {
    cat <<'PYEOF'
import base64, sys
from samba.param import LoadParm
from samba.samdb import SamDB
from samba.auth import system_session
from samba.sd_utils import SDUtils
from samba.dcerpc import security
from samba.ndr import ndr_unpack

smbconf, demo, base, svc_pw, user_pw = sys.argv[1:6]
lp = LoadParm()
lp.load(smbconf)
db = SamDB(url=lp.private_path("sam.ldb"), session_info=system_session(), lp=lp)

# --- conf/demo.ldif: records as lists of (attr, str value)
recs = []
for block in open(demo, encoding="utf-8").read().split("\n\n"):
    rec = []
    for line in block.split("\n"):
        if not line or line.startswith("#"):
            continue
        a, _, v = line.partition(":")
        if v.startswith(":"):
            v = base64.b64decode(v[1:].strip()).decode("utf-8")
        else:
            v = v.strip()
        rec.append((a.lower(), v))
    if rec and rec[0][0] == "dn":
        recs.append(rec)

def get(rec, a):
    return [v for k, v in rec if k == a]

def pwd(p):
    return base64.b64encode(('"%s"' % p).encode("utf-16-le")).decode()

def add(ldif):
    db.add_ldif(ldif)

people, groups, services = "OU=people," + base, "OU=groups," + base, "OU=services," + base

# --- domain password/lockout policy (times in 100 ns units, negative = interval)
db.modify_ldif("""dn: %s
changetype: modify
replace: lockoutThreshold
lockoutThreshold: 3
-
replace: lockoutDuration
lockoutDuration: -36000000000
-
replace: lockOutObservationWindow
lockOutObservationWindow: -6000000000
-
replace: pwdProperties
pwdProperties: 0
-
replace: minPwdAge
minPwdAge: 0
-
replace: pwdHistoryLength
pwdHistoryLength: 0
-
replace: minPwdLength
minPwdLength: 7
""" % base)

for ou in (people, groups, services):
    add("dn: %s\nobjectClass: organizationalUnit\n" % ou)

# --- the service account and its fine-grained policy (no lockout for ldapdeskd)
svc_dn = "CN=ldapdesk," + services
add("""dn: %s
objectClass: user
cn: ldapdesk
sAMAccountName: ldapdesk
userPrincipalName: ldapdesk@example.com
description: ldapdeskd service account (delegated rights, not a domain admin)
unicodePwd:: %s
userAccountControl: 66048
""" % (svc_dn, pwd(svc_pw)))
add("""dn: CN=ldapdesk-service,CN=Password Settings Container,CN=System,%s
objectClass: msDS-PasswordSettings
msDS-PasswordSettingsPrecedence: 1
msDS-PasswordReversibleEncryptionEnabled: FALSE
msDS-PasswordHistoryLength: 0
msDS-PasswordComplexityEnabled: FALSE
msDS-MinimumPasswordLength: 7
msDS-MinimumPasswordAge: 0
msDS-MaximumPasswordAge: -9223372036854775808
msDS-LockoutThreshold: 0
msDS-LockoutObservationWindow: -6000000000
msDS-LockoutDuration: -6000000000
msDS-PSOAppliesTo: %s
""" % (base, svc_dn))
res = db.search(base=svc_dn, scope=0, attrs=["objectSid"])
sid = str(ndr_unpack(security.dom_sid, res[0]["objectSid"][0]))

USER = "bf967aba-0de6-11d0-a285-00aa003049e2"
GROUP = "bf967a9c-0de6-11d0-a285-00aa003049e2"
RESET_PASSWORD = "00299570-246d-11d0-a768-00aa006e0529"
LOCKOUT_TIME = "28630ebf-41d5-11d1-a9c1-0000f80367c1"
PWD_LAST_SET = "bf967a0a-0de6-11d0-a285-00aa003049e2"
UAC = "bf967a68-0de6-11d0-a285-00aa003049e2"
MEMBER = "bf9679c0-0de6-11d0-a285-00aa003049e2"
sd = SDUtils(db)
sd.dacl_add_ace(people,
    "(OA;CIIO;CR;%s;%s;%s)" % (RESET_PASSWORD, USER, sid) +
    "(OA;CIIO;WP;%s;%s;%s)" % (LOCKOUT_TIME, USER, sid) +
    "(OA;CIIO;WP;%s;%s;%s)" % (PWD_LAST_SET, USER, sid) +
    "(OA;CIIO;WP;%s;%s;%s)" % (UAC, USER, sid) +
    "(OA;CI;CCDC;%s;;%s)" % (USER, sid))
sd.dacl_add_ace(groups, "(OA;CIIO;WP;%s;%s;%s)" % (MEMBER, GROUP, sid))

# --- departments and people (operators are people too; their groups grant the roles)
dn_of = {}
for rec in recs:
    dn = get(rec, "dn")[0]
    ocs = [o.lower() for o in get(rec, "objectclass")]
    if "organizationalunit" in ocs and dn.endswith(",ou=people,dc=example,dc=com"):
        add("dn: OU=%s,%s\nobjectClass: organizationalUnit\n" % (get(rec, "ou")[0], people))
for rec in recs:
    ocs = [o.lower() for o in get(rec, "objectclass")]
    if "inetorgperson" not in ocs:
        continue
    uid, cn, sn, dept = get(rec, "uid")[0], get(rec, "cn")[0], get(rec, "sn")[0], get(rec, "ou")[0]
    dn = "CN=%s,OU=%s,%s" % (uid, dept, people)
    dn_of[get(rec, "dn")[0].lower()] = dn
    given = cn[len(sn):] if cn.startswith(sn) and len(cn) > len(sn) else cn
    op = uid in ("hd1", "hd2", "adm1", "adm2", "aud1")
    mail = get(rec, "mail")
    add("""dn: %s
objectClass: user
cn: %s
sAMAccountName: %s
userPrincipalName: %s@example.com
displayName: %s
sn: %s
givenName: %s
department: %s
%sunicodePwd:: %s
userAccountControl: 512
""" % (dn, uid, uid, uid, cn, sn, given, dept, ("mail: %s\n" % mail[0]) if mail else "",
       pwd(sys.argv[6] if op else user_pw)))

# --- groups (no placeholder member: AD groups may be empty)
for rec in recs:
    ocs = [o.lower() for o in get(rec, "objectclass")]
    if "groupofnames" not in ocs:
        continue
    cn = get(rec, "cn")[0]
    members = [dn_of[m.lower()] for m in get(rec, "member") if m.lower() in dn_of]
    desc = get(rec, "description")
    add("dn: CN=%s,%s\nobjectClass: group\nsAMAccountName: %s\n%s%s" % (
        cn, groups, cn, ("description: %s\n" % desc[0]) if desc else "",
        "".join("member: %s\n" % m for m in members)))
print("seeded: %d users, svc sid %s" % (len(dn_of), sid))
PYEOF
}

# _samba_create CACHE: provision + seed a stopped domain in CACHE/t
_samba_create() {
    _cr=$1
    certs_make "$_cr" || return 1
    # an LDAPS leaf for the addresses samba_start may pick, signed by the certs_make CA
    _cr_san="DNS:localhost"
    _cr_i=2
    while [ "$_cr_i" -le 40 ]; do _cr_san="$_cr_san, IP:127.0.0.$_cr_i"; _cr_i=$((_cr_i + 1)); done
    (
        umask 077
        printf '[v3]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\nsubjectAltName = %s\n' \
            "$_cr_san" >"$_cr/ad.cnf" &&
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$_cr/ad.key" \
            -out "$_cr/ad.csr" -subj "/CN=ldtdc.example.com" &&
        openssl x509 -req -in "$_cr/ad.csr" -CA "$_cr/ca.pem" -CAkey "$_cr/ca.key" \
            -set_serial "0x1$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" -days 825 -sha256 \
            -extfile "$_cr/ad.cnf" -extensions v3 -out "$_cr/ad.pem" && rm -f "$_cr/ad.csr" "$_cr/ad.cnf"
    ) >"$_cr/openssl.log" 2>&1 || { echo "samba_setup: openssl failed:" >&2; cat "$_cr/openssl.log" >&2; return 1; }
    : >"$_cr/empty.conf"
    if ! (cd "$_cr" && timeout -k 5 300 "$SAMBA_TOOL" domain provision --configfile="$_cr/empty.conf" \
        --server-role=dc --dns-backend=NONE --targetdir="$_cr/t" --realm="$AD_REALM" \
        --domain="$AD_DOMAIN" --host-name=ldtdc --adminpass="$AD_ADMIN_PW" \
        --option="interfaces = 127.0.0.2/8" --option="bind interfaces only = yes" \
        --option="server services = ldap" --option="pid directory = $_cr/t/run" \
        --option="ncalrpc dir = $_cr/t/run/ncalrpc" --option="tls enabled = yes" \
        --option="tls keyfile = $_cr/t/tls/ad.key" --option="tls certfile = $_cr/t/tls/ad.pem" \
        --option="tls cafile = $_cr/t/tls/ca.pem" --option="tls crlfile = ") >"$_cr/provision.log" 2>&1; then
        echo "samba_setup: samba-tool domain provision failed ($_cr/provision.log):" >&2
        tail -n 25 "$_cr/provision.log" >&2
        return 1
    fi
    mkdir -p "$_cr/t/run/ncalrpc" "$_cr/t/tls" || return 1
    cp "$_cr/ca.pem" "$_cr/ad.pem" "$_cr/t/tls/" && cp "$_cr/ad.key" "$_cr/t/tls/" && chmod 0600 "$_cr/t/tls/ad.key" \
        || return 1
    _samba_seed_py >"$_cr/seed.py" || return 1
    if ! timeout -k 5 120 "$SAMBA_PYTHON" "$_cr/seed.py" "$_cr/t/etc/smb.conf" "$LDAPDESK_SRC/conf/demo.ldif" \
        "$AD_BASE" "$AD_SVC_PW" "$AD_USER_PW" "$AD_OP_PW" >"$_cr/seed.log" 2>&1; then
        echo "samba_setup: seeding failed ($_cr/seed.log):" >&2
        tail -n 25 "$_cr/seed.log" >&2
        return 1
    fi
    return 0
}

samba_setup() {
    _ss_dir=${1:?samba_setup: DIR missing}
    for _ss_b in "$SAMBA_BIN" "$SAMBA_TOOL" "$SAMBA_PYTHON"; do
        [ -x "$_ss_b" ] || { echo "samba_setup: $_ss_b missing (apt-get install samba-ad-dc)" >&2; return 1; }
    done
    command -v ldapsearch >/dev/null 2>&1 \
        || { echo "samba_setup: ldapsearch missing (apt-get install ldap-utils)" >&2; return 1; }
    mkdir -p "$_ss_dir" || return 1
    _ss_dir=$(_sb_absdir "$_ss_dir") || return 1
    if [ -s "$_ss_dir/samba.pid" ] && proc_alive "$(cat "$_ss_dir/samba.pid")"; then
        echo "samba_setup: samba still runs in $_ss_dir" >&2
        return 1
    fi
    _ss_cache=$(_samba_cache_dir) || return 1
    SAMBA_CREATE_SECS=
    if [ ! -f "$_ss_cache/ready" ]; then
        mkdir -p "${_ss_cache%/*}" && chmod 0755 "${_ss_cache%/*}" || return 1
        _ss_new=$_ss_cache.new.$$
        rm -rf "$_ss_new"
        mkdir -m 0755 "$_ss_new" || return 1
        _ss_t0=$(_sb_now)
        if ! _samba_create "$_ss_new"; then
            echo "samba_setup: kept the failed attempt in $_ss_new" >&2
            return 1
        fi
        SAMBA_CREATE_SECS=$(_sb_secs "$_ss_t0" "$(_sb_now)")
        echo "$SAMBA_CREATE_SECS" >"$_ss_new/create-secs"
        echo "$_ss_new/t" >"$_ss_new/built-at"
        : >"$_ss_new/ready"
        mv -T "$_ss_new" "$_ss_cache" 2>/dev/null || rm -rf "$_ss_new"
    fi
    export SAMBA_CREATE_SECS
    rm -rf "$_ss_dir/t"
    cp -a "$_ss_cache/t" "$_ss_dir/t" || return 1
    cp -f "$_ss_cache/ca.pem" "$_ss_dir/ca.pem" || return 1
    # smb.conf names the directory with absolute paths (the databases do not)
    sed -i "s#$(cat "$_ss_cache/built-at")#$_ss_dir/t#g" "$_ss_dir/t/etc/smb.conf" || return 1
    rm -f "$_ss_dir/t/private/ldapi"
    (umask 077 && printf '%s' "$AD_SVC_PW" >"$_ss_dir/bind.pw") || return 1
    chmod 0600 "$_ss_dir/bind.pw"
    SAMBA_DIR=$_ss_dir
    export SAMBA_DIR
    return 0
}

# _samba_addr_busy ADDR: 0 if a TCP socket listens on ADDR (or 0.0.0.0) port 389/636/3268/3269
_samba_addr_busy() {
    _ab_hex=$(printf '%s' "$1" | awk -F. '{ printf "%02X%02X%02X%02X", $4, $3, $2, $1 }')
    awk -v a="$_ab_hex" 'NR > 1 && $4 == "0A" { split($2, p, ":")
            if ((p[1] == a || p[1] == "00000000") && (p[2] == "0185" || p[2] == "027C" || p[2] == "0CC4" || p[2] == "0CC5")) f = 1 }
         END { exit f ? 0 : 1 }' /proc/net/tcp
}

# _samba_launch DIR ADDR: 0 started, 2 address taken, 1 other failure
_samba_launch() {
    _sl_dir=$1
    _sl_addr=$2
    _sl_conf=$_sl_dir/t/etc/smb.conf
    sed -i "s#^\([[:space:]]*interfaces = \).*#\1$_sl_addr/8#" "$_sl_conf" || return 1
    [ ! -f "$_sl_dir/samba.log" ] || mv -f "$_sl_dir/samba.log" "$_sl_dir/samba.log.1"
    rm -f "$_sl_dir/samba.pid"
    "$SAMBA_BIN" -F -M single -s "$_sl_conf" --debug-stdout -d "${SAMBA_DEBUG:-1}" \
        </dev/null >"$_sl_dir/samba.log" 2>&1 &
    _sl_pid=$!
    _sl_end=$(($(date +%s) + ${T_START_TIMEOUT:-20}))
    while :; do
        if ! proc_alive "$_sl_pid"; then
            proc_stop "$_sl_pid" 1
            if grep -qiE 'Address already in use|Failed to bind|NT_STATUS_ADDRESS_ALREADY_ASSOCIATED' \
                "$_sl_dir/samba.log" 2>/dev/null; then
                return 2
            fi
            echo "samba_start: samba exited (status ${PROC_RC:-?}); $_sl_dir/samba.log:" >&2
            tail -n 20 "$_sl_dir/samba.log" >&2
            return 1
        fi
        if LDAPTLS_CACERT=$_sl_dir/ca.pem ldapsearch -x -H "ldaps://$_sl_addr" -o nettimeout=2 -b '' -s base \
            '(objectClass=*)' 1.1 >/dev/null 2>&1; then
            break
        fi
        if [ "$(date +%s)" -ge "$_sl_end" ]; then
            echo "samba_start: no answer on ldaps://$_sl_addr within ${T_START_TIMEOUT:-20} s; $_sl_dir/samba.log:" >&2
            tail -n 20 "$_sl_dir/samba.log" >&2
            proc_stop "$_sl_pid" 5
            return 1
        fi
        sleep 0.1
    done
    echo "$_sl_pid" >"$_sl_dir/samba.pid"
    echo "$_sl_addr" >"$_sl_dir/addr"
    SAMBA_PID=$_sl_pid
    SAMBA_DIR=$_sl_dir
    AD_ADDR=$_sl_addr
    AD_URI=ldaps://$_sl_addr
    AD_STARTTLS_URI=ldap://$_sl_addr
    AD_CA=$_sl_dir/ca.pem
    export SAMBA_PID SAMBA_DIR AD_ADDR AD_URI AD_STARTTLS_URI AD_CA
    if command -v t_track >/dev/null 2>&1; then t_track "$_sl_pid"; fi
    return 0
}

samba_start() {
    _st_dir=$(_sb_absdir "${1:?samba_start: DIR missing}") || return 1
    [ -f "$_st_dir/t/etc/smb.conf" ] || { echo "samba_start: run samba_setup $_st_dir first" >&2; return 1; }
    if [ -s "$_st_dir/samba.pid" ] && proc_alive "$(cat "$_st_dir/samba.pid")"; then
        echo "samba_start: samba already runs in $_st_dir (pid $(cat "$_st_dir/samba.pid"))" >&2
        return 1
    fi
    if [ -n "${2:-}" ]; then
        _samba_launch "$_st_dir" "$2" && return 0
        echo "samba_start: cannot listen on $2" >&2
        return 1
    fi
    _st_i=2
    while [ "$_st_i" -le 40 ]; do
        if ! _samba_addr_busy "127.0.0.$_st_i"; then
            if _samba_launch "$_st_dir" "127.0.0.$_st_i"; then return 0; else _st_rc=$?; fi
            [ "$_st_rc" = 2 ] || return 1
        fi
        _st_i=$((_st_i + 1))
    done
    echo "samba_start: no free loopback address in 127.0.0.2..127.0.0.40" >&2
    return 1
}

samba_stop() {
    _sp_dir=$(_sb_absdir "${1:?samba_stop: DIR missing}") || return 1
    _sp_pid=
    [ ! -s "$_sp_dir/samba.pid" ] || _sp_pid=$(cat "$_sp_dir/samba.pid")
    if [ -z "$_sp_pid" ] && [ "${SAMBA_DIR:-}" = "$_sp_dir" ]; then _sp_pid=${SAMBA_PID:-}; fi
    [ -n "$_sp_pid" ] || return 0
    proc_stop "$_sp_pid" 10
    if command -v t_untrack >/dev/null 2>&1; then t_untrack "$_sp_pid"; fi
    rm -f "$_sp_dir/samba.pid"
    return 0
}

# ---------------------------------------------------------------- directory helpers (LDAPS)

_ad_need() {
    [ -n "${AD_URI:-}" ] || { echo "samba helpers: AD_URI not set (samba_start first)" >&2; return 1; }
}

ad_admin_search() {
    _ad_need || return 1
    LDAPTLS_CACERT=$AD_CA ldapsearch -x -LLL -o ldif-wrap=no -H "$AD_URI" -D "$AD_ADMIN_DN" \
        -w "$AD_ADMIN_PW" "$@"
}

ad_admin_modify() {
    _ad_need || return 1
    LDAPTLS_CACERT=$AD_CA ldapmodify -x -H "$AD_URI" -D "$AD_ADMIN_DN" -w "$AD_ADMIN_PW" "$@"
}

ad_svc_search() {
    _ad_need || return 1
    LDAPTLS_CACERT=$AD_CA ldapsearch -x -LLL -o ldif-wrap=no -H "$AD_URI" -D "$AD_SVC_DN" \
        -w "$AD_SVC_PW" "$@"
}

ad_svc_modify() {
    _ad_need || return 1
    LDAPTLS_CACERT=$AD_CA ldapmodify -x -H "$AD_URI" -D "$AD_SVC_DN" -w "$AD_SVC_PW" "$@"
}

# ad_user_dn UID: DN of sAMAccountName=UID under AD_PEOPLE (decoded if ldapsearch printed base64)
ad_user_dn() {
    case ${1:-} in '' | *[!A-Za-z0-9._-]*) echo "ad_user_dn: bad uid '${1:-}'" >&2; return 1 ;; esac
    _au_out=$(ad_admin_search -b "$AD_PEOPLE" "(&(objectClass=user)(sAMAccountName=$1))" 1.1) || return 1
    _au_dn=$(printf '%s\n' "$_au_out" | awk '
        /^dn:: / { print "b64 " substr($0, 6); exit } /^dn: / { print "txt " substr($0, 5); exit }')
    case $_au_dn in
        "b64 "*) printf '%s' "${_au_dn#b64 }" | base64 -d && echo ;;
        "txt "*) printf '%s\n' "${_au_dn#txt }" ;;
        *) echo "ad_user_dn: no user sAMAccountName=$1 under $AD_PEOPLE" >&2; return 1 ;;
    esac
}

# ad_attr UID ATTR: values of ATTR (plain text values only) of sAMAccountName=UID, as Administrator;
# 1 when there is no such user or the search failed
ad_attr() {
    case ${1:-} in '' | *[!A-Za-z0-9._-]*) echo "ad_attr: bad uid '${1:-}'" >&2; return 1 ;; esac
    # The search's status is kept: an empty answer must not stand for "attribute absent".
    _aa_out=$(ad_admin_search -b "$AD_PEOPLE" "(&(objectClass=user)(sAMAccountName=$1))" \
        "${2:?ad_attr: ATTR missing}") || return 1
    printf '%s\n' "$_aa_out" | grep -q '^dn:' || { echo "ad_attr: no user sAMAccountName=$1" >&2; return 1; }
    printf '%s\n' "$_aa_out" | awk -v want="$2" 'BEGIN { want = tolower(want) }
            { i = index($0, ": "); if (i && tolower(substr($0, 1, i - 1)) == want) print substr($0, i + 2) }'
}

# ad_unicodepwd PASSWORD: the unicodePwd value for LDIF (unicodePwd:: VALUE)
ad_unicodepwd() {
    printf '"%s"' "${1?ad_unicodepwd: PASSWORD missing}" | iconv -f UTF-8 -t UTF-16LE | base64 -w0
    echo
}
