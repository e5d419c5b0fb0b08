#!/bin/sh
# nested_outside.sh — groups nested in protected and scope groups in another naming context
# (o=partners, a second database of the same slapd): the snapshot reads down to them, and
# when the groups are too big to read, a check that would ask upward (blind there) is refused
# rather than answered "not a member" (judy, listed through cn=vip-partners, was unlocked and
# reset; hd1, scoped only through cn=hd-partners, was unlimited). From the eighth review.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init nested_outside
slapd_setup "$T_DIR/slapd" || { t_fail "slapd is set up"; t_done; }
mkdir -p "$T_DIR/slapd/db2"
cat >>"$T_DIR/slapd/slapd.conf" <<EOF2

database        mdb
suffix          "o=partners"
rootdn          "cn=admin,o=partners"
rootpw          $LDAP_ROOT_PW
directory       $T_DIR/slapd/db2
maxsize         16777216
index   member  eq
access to * by * read
EOF2
slapd_start "$T_DIR/slapd" || { t_fail "slapd starts with a second database"; t_done; }
D=$LDAPDESK
G=$LDAP_GROUPS
partners() { ldapmodify -x -H "$LDAP_URI" -D cn=admin,o=partners -w "$LDAP_ROOT_PW" "$@" >/dev/null; }
partners -a <<EOF2
dn: o=partners
objectClass: organization
o: partners

dn: cn=hd-partners,o=partners
objectClass: groupOfNames
cn: hd-partners
member: $(ldap_user_dn hd1)

dn: cn=vip-partners,o=partners
objectClass: groupOfNames
cn: vip-partners
member: $(ldap_user_dn judy)
EOF2
ldap_root_modify -a >/dev/null <<EOF2
dn: cn=helpdesk-market,$G
objectClass: groupOfNames
cn: helpdesk-market
member: cn=hd-partners,o=partners
EOF2
vip_partners() { # add|delete: cn=vip-partners,o=partners as a member of cn=protected
    printf 'dn: cn=protected,%s\nchangetype: modify\n%s: member\nmember: cn=vip-partners,o=partners\n' \
        "$G" "$1" | ldap_root_modify >/dev/null
}
vip_partners add
conf_edit() { # SED_EXPR: d.conf edited by SED_EXPR; conf_restore puts the one before back
    cp "$T_DIR/d.conf" "$T_DIR/d-before.conf"
    sed "$1" "$T_DIR/d-before.conf" >"$T_DIR/d.conf"
}
conf_restore() { cp "$T_DIR/d-before.conf" "$T_DIR/d.conf"; }
ghosts() { # GROUP_DN add|delete [FROM [TO]]: member values FROM..TO (1..1,100: more than a
    # snapshot reads) naming no entry
    printf 'dn: %s\nchangetype: modify\n%s: member\n' "$1" "$2"
    i=${3:-1}
    while [ "$i" -le "${4:-1100}" ]; do
        printf 'member: uid=ghost%04d,%s\n' "$i" "$LDAP_PEOPLE"
        i=$((i + 1))
    done
}
# 1,000 values: a reply of 55 KB, over four TLS records, which libldap's read-ahead can pull
# from the socket whole. Only one record was decrypted per read after the first, so the rest
# waited, unread, for timeout_ms (5 s), and the check was refused ("the directory did not
# answer"): about one check in ten read cn=protected so.
ghosts "cn=protected,$G" add 1 1000 | ldap_root_modify >/dev/null
daemon_config "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
as_op hd1

# ---- protection -------------------------------------------------------------------------
t_exit 4 "judy, in cn=vip-partners,o=partners nested in cn=protected (1,001 values), is protected (403)" \
    "$D" unlock judy
t_ok "... while erin, in no protected group, is unlocked" "$D" unlock erin
conf_edit 's/^\[ldap\]$/[ldap]\ncache_seconds = 0/'
t_ok "the reload to cache_seconds 0 is taken" daemon_reload
n=0
: >"$T_DIR/erin.out"
while [ "$n" -lt 40 ]; do
    "$D" unlock erin >>"$T_DIR/erin.out" 2>&1 || echo "refused: unlock $n" >>"$T_DIR/erin.out"
    n=$((n + 1))
done
t_eq "$(grep -B1 '^refused' "$T_DIR/erin.out")" "" \
    "40 unlocks of erin in a row, each reading cn=protected's 1,001 values anew: none refused"
conf_restore
t_ok "the reload back to cache_seconds 5 is taken" daemon_reload
ghosts "cn=protected,$G" add 1001 1100 | ldap_root_modify >/dev/null
sleep 6 # another tool's change: seen once the 5 s snapshot has expired
t_exit 1 "with cn=protected too big to read, helpdesk may not unlock judy (refused, not asked upward from dc=example,dc=com)" \
    "$D" unlock judy
t_match "a group nested in them lies outside the entry they and \\[ldap\\] user_base share" \
    "... saying why and what to do" printf '%s\n' "$T_OUT"
t_exit 1 "... nor reset her" "$D" reset judy
printf '%s\n' "$T_OUT" >"$T_DIR/reset-judy.out"
t_absent "One-time password" "... and no password is made" "$T_DIR/reset-judy.out"
t_exit 1 "... nor unlock erin: who is protected cannot be told" "$D" unlock erin
t_ok "... while an admin unlocks judy" env LDAPDESK_USER=adm1 "$D" unlock judy
ghosts "cn=protected,$G" delete | ldap_root_modify >/dev/null

# ---- a protected group that shares no entry with [ldap] user_base -----------------------------
# cn=vip-direct,o=partners named in [protect] itself (nested in no other group), too big to read:
# a check could only ask upward from an entry that user_base and every protected group lie
# under, and there is none. (cn=vip-partners is out of cn=protected meanwhile: a refresh that
# meets a nested group outside refuses the same way, for that other reason.)
vip_partners delete
printf 'dn: cn=vip-direct,o=partners\nobjectClass: groupOfNames\ncn: vip-direct\nmember: %s\n' \
    "$(ldap_user_dn frank)" | partners -a
ghosts "cn=vip-direct,o=partners" add | partners
conf_edit 's/^groups = cn=protected,.*/&\ngroups = cn=vip-direct,o=partners/'
t_ok "the reload naming cn=vip-direct,o=partners in [protect] is taken" daemon_reload
t_exit 1 "with it too big to read, helpdesk may not unlock erin: who is protected cannot be told" \
    "$D" unlock erin
t_match "lies outside the entry they and \\[ldap\\] user_base share \\(or they share none\\)" \
    "... saying why and what to do" printf '%s\n' "$T_OUT"
t_ok "... while an admin unlocks erin" env LDAPDESK_USER=adm1 "$D" unlock erin
conf_restore
vip_partners add
t_ok "the reload back to one [protect] group is taken" daemon_reload

# ---- the scope guard ----------------------------------------------------------------------
cat >>"$T_DIR/d.conf" <<EOF2

[scope.market]
group = cn=helpdesk-market,$G
departments = 市场营销中心
EOF2
t_ok "the reload adding [scope.market] is taken" daemon_reload
fresh() { env XDG_CACHE_HOME="$T_DIR/cache-$1-$(date +%s%N)" LDAPDESK_USER=hd1 "$D" unlock bob; }
t_exit 4 "hd1, in cn=helpdesk-market only through cn=hd-partners,o=partners, is refused, not unlimited (403)" \
    fresh small
t_match "only through a group nested in it that ldapdesk does not follow" "... saying why" \
    printf '%s\n' "$T_OUT"
ghosts "cn=helpdesk-market,$G" add | ldap_root_modify >/dev/null
sleep 6
t_exit 1 "... and with cn=helpdesk-market too big to read, hd1 is refused too (bob outside its scope)" \
    fresh big
t_match "cannot tell who is in a scope" "... saying why" printf '%s\n' "$T_OUT"
t_exit 1 "... and so is its next login" fresh big2
t_match "cannot tell who is in a scope" "... saying why" printf '%s\n' "$T_OUT"
daemon_stop
t_done
