#!/bin/sh
# security.sh — issue 3: every attack in the README's security table, tried
# against the real daemon. Each check fails if its defence is removed.
set -eu
. "$LDAPDESK_SRC/tests/lib/harness.sh"
t_init security
t_start_slapd || { t_fail "slapd starts"; t_done; }
D=$LDAPDESK
G=$LDAP_GROUPS

# A helpdesk group per department (scopes), with hd2 in both.
ldap_root_modify -a >/dev/null <<EOF2
dn: cn=helpdesk-market,$G
objectClass: groupOfNames
cn: helpdesk-market
member: uid=hd2,ou=信息中心,$LDAP_PEOPLE

dn: cn=helpdesk-rnd,$G
objectClass: groupOfNames
cn: helpdesk-rnd
member: uid=hd2,ou=信息中心,$LDAP_PEOPLE
EOF2
daemon_config "$T_DIR/d.conf"
# 6 s: short enough to test an idle session's end and a role re-read, long enough that a
# restart under load (ASan, four suites at once) falls within it.
sed -i 's/^timezone = .*/&\nsession_idle = 6/' "$T_DIR/d.conf"
cat >>"$T_DIR/d.conf" <<EOF2

[limits]
login_failures = 3
login_failures_per_address = 8
login_window = 600
resets_per_hour = 2

[scope.market]
group = cn=helpdesk-market,$G
departments = 市场营销中心

[scope.rnd]
group = cn=helpdesk-rnd,$G
bases = ou=技术研发中心,$LDAP_PEOPLE

[grant.vip]
group = cn=protected,$G
label = VIP
approval = no
EOF2
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts"; t_done; }
DB=$T_DIR/audit.db
denied() { # ACTION TARGET: refused attempts recorded
    sqlite3 "$DB" "SELECT count(*) FROM records a JOIN records o ON o.attempt_id=a.id
        WHERE a.action='$1' AND a.target='$2' AND o.result='denied'"
}
login_token() { # UID [PASSWORD]
    curl -s --cacert "$LDAPDESK_CA" -d "{\"user\":\"$1\",\"password\":\"${2:-$LDAP_OP_PW}\"}" \
        "$LDAPDESK_URL/v1/login" | jq -r .token
}
get() { # TOKEN PATH -> body, then "CODE"
    curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $1" -w '\n%{http_code}\n' "$LDAPDESK_URL$2"
}

# ---- self-action, protection ----------------------------------------------------------
as_op adm1
t_exit 4 "self-grant is refused (403)" "$D" grant adm1 procurement
t_eq "$(denied grant adm1)" 1 "the self-grant is an audit row (denied)"
as_op hd1
t_exit 4 "helpdesk cannot reset an admin (protected)" "$D" reset adm2
t_exit 4 "helpdesk cannot reset a member of a [protect] group" "$D" reset ivan
t_exit 4 "helpdesk cannot reset itself" "$D" reset hd1
t_eq "$(denied reset ivan)" 1 "the protected reset is an audit row (denied)"
as_op adm1
t_ok "an admin may reset the protected account" "$D" reset ivan

# ---- the protected snapshot ([ldap] cache_seconds, default 5) -------------------------
# Membership of protected groups is read at most every 5 s, not per request. A member
# added by another tool is protected once that snapshot has expired; one added by the
# daemon itself is protected at once (its own group change invalidates the snapshot).
as_op hd1
t_ok "heidi is not protected: helpdesk unlocks her (snapshot taken)" "$D" unlock heidi
printf 'dn: cn=protected,%s\nchangetype: modify\nadd: member\nmember: %s\n' "$G" \
    "$(ldap_user_dn heidi)" | ldap_root_modify >/dev/null
sleep 6
t_exit 4 "a member added by another tool is protected once the 5 s snapshot expired" \
    "$D" unlock heidi
t_ok "erin is not protected: helpdesk unlocks her" "$D" unlock erin
as_op adm1
t_ok "an admin grants erin the protected group" "$D" grant erin vip
as_op hd1
t_exit 4 "at once, helpdesk may not unlock erin: the daemon's own grant is seen" "$D" unlock erin
as_op adm1
t_ok "the admin revokes it" "$D" revoke erin vip
as_op hd1
t_ok "at once, helpdesk may unlock erin again" "$D" unlock erin
# slapd folds Unicode case and width when it matches DNs: a member written with full-width
# letters or brackets is that user, for slapd and so for the daemon (the snapshot reads such
# values back from slapd).
erin_fw=$(ldap_user_dn erin | sed 's/(/（/; s/)/）/')
frank_fw=$(ldap_user_dn frank | sed 's/^uid=frank/uid=ｆｒａｎｋ/')
t_ok "(another tool adds erin and frank to cn=protected, in full-width spellings)" sh -c \
    "printf 'dn: cn=protected,%s\nchangetype: modify\nadd: member\nmember: %s\nmember: %s\n' \
    '$G' '$erin_fw' '$frank_fw' | ldapmodify -x -H '$LDAP_URI' -D '$LDAP_ROOT_DN' -w '$LDAP_ROOT_PW' >/dev/null"
t_ok "slapd itself counts erin and frank as members" sh -c '. "$LDAPDESK_SRC/tests/lib/slapd.sh" &&
    ldap_is_member protected erin && ldap_is_member protected frank'
sleep 6
t_exit 4 "helpdesk may not reset erin, a member by full-width brackets (403)" "$D" reset erin
t_exit 4 "... nor frank, a member by full-width letters (403)" "$D" reset frank
t_match "protected" "... and the refusal says she is protected" "$D" unlock erin
# ... and the other way round: an entry named in full-width letters, listed in plain ASCII.
printf 'dn: uid=ｇｉｎａ,%s\nobjectClass: inetOrgPerson\nuid: ｇｉｎａ\ncn: Gina\nsn: G\n' "$LDAP_PEOPLE" |
    ldapadd -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null
printf 'dn: cn=protected,%s\nchangetype: modify\nadd: member\nmember: uid=gina,%s\n' "$G" "$LDAP_PEOPLE" |
    ldap_root_modify >/dev/null
# A group within a protected group, two deep (as Active Directory's admin groups are built):
# its members are members for slapd's own matching and for AD, so they are protected too.
printf 'dn: cn=vip-team,%s\nobjectClass: groupOfNames\ncn: vip-team\nmember: cn=vip-inner,%s\n\ndn: cn=vip-inner,%s\nobjectClass: groupOfNames\ncn: vip-inner\nmember: %s\n' \
    "$G" "$G" "$G" "$(ldap_user_dn carol)" |
    ldapadd -c -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null 2>&1 || :
# ... a cycle (loop-a lists loop-b, which lists loop-a and dave), and a team of 600 (one read
# each: two each made 1,200 reads, past the 1,024 a refresh makes, and nobody nested was protected).
bulk_uid() { # N: sets _uid to bulk001 .. bulk600, then bulk0601 .. (the names checked below)
    _uid=000$1
    if [ "$1" -le 600 ]; then _uid=bulk${_uid#"${_uid%???}"}; else _uid=bulk${_uid#"${_uid%????}"}; fi
}
bulk_users() { # FROM TO: their entries, LDIF
    i=$1
    while [ "$i" -le "$2" ]; do
        bulk_uid "$i"
        printf 'dn: uid=%s,ou=bulk,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: B\nsn: B\n\n' \
            "$_uid" "$LDAP_PEOPLE" "$_uid"
        i=$((i + 1))
    done
}
bulk_member_lines() { # FROM TO: "member: DN" lines
    i=$1
    while [ "$i" -le "$2" ]; do
        bulk_uid "$i"
        printf 'member: uid=%s,ou=bulk,%s\n' "$_uid" "$LDAP_PEOPLE"
        i=$((i + 1))
    done
}
{
    printf 'dn: ou=bulk,%s\nobjectClass: organizationalUnit\nou: bulk\n\n' "$LDAP_PEOPLE"
    bulk_users 1 600
    printf 'dn: cn=bigteam,%s\nobjectClass: groupOfNames\ncn: bigteam\n' "$G"
    bulk_member_lines 1 600
    printf '\ndn: cn=loop-a,%s\nobjectClass: groupOfNames\ncn: loop-a\nmember: cn=loop-b,%s\n\n' "$G" "$G"
    printf 'dn: cn=loop-b,%s\nobjectClass: groupOfNames\ncn: loop-b\nmember: cn=loop-a,%s\nmember: %s\n' \
        "$G" "$G" "$(ldap_user_dn dave)"
} | ldapadd -c -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null 2>&1 || :
printf 'dn: cn=protected,%s\nchangetype: modify\nadd: member\nmember: cn=vip-team,%s\nmember: cn=loop-a,%s\nmember: cn=bigteam,%s\n' \
    "$G" "$G" "$G" "$G" | ldap_root_modify >/dev/null
sleep 6
t_exit 4 "helpdesk may not reset gina (entry uid=ｇｉｎａ), listed as uid=gina (403)" "$D" reset gina
t_match "protected" "... saying she is protected" printf '%s\n' "$T_OUT"
t_exit 4 "helpdesk may not reset carol, in a group nested two deep in cn=protected (403)" "$D" reset carol
t_match "protected" "... saying she is protected" printf '%s\n' "$T_OUT"
t_exit 4 "... nor dave, in a cycle of groups within it (403)" "$D" reset dave
t_exit 4 "... nor bulk007, one of a nested team of 600 (403)" "$D" unlock bulk007
# cache_seconds 0 without group_base: a search per check would see direct members only; each
# check takes a snapshot of its own instead, which follows the nesting.
cp "$T_DIR/d.conf" "$T_DIR/d.conf.cache"
sed -i '/^group_base = /d; s/^\[ldap\]$/[ldap]\ncache_seconds = 0/' "$T_DIR/d.conf"
daemon_reload || t_fail "a reload with cache_seconds = 0 and no group_base is taken"
t_exit 4 "with cache_seconds = 0 and no group_base, carol, nested two deep, is still protected (403)" \
    "$D" reset carol
t_match "carol is a protected account" "... saying she is protected" printf '%s\n' "$T_OUT"
# ... and with group_base: a search upward through group_base cannot see a group nested in
# cn=protected outside it (cn=vip-outside,ou=teams): each check's own snapshot reads down to it.
printf 'dn: ou=teams,%s\nobjectClass: organizationalUnit\nou: teams\n\ndn: cn=vip-outside,ou=teams,%s\nobjectClass: groupOfNames\ncn: vip-outside\nmember: %s\n' \
    "$LDAP_BASE" "$LDAP_BASE" "$(ldap_user_dn judy)" |
    ldapadd -c -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null 2>&1 || :
outside() { # add|delete: cn=vip-outside,ou=teams as a member of cn=protected
    printf 'dn: cn=protected,%s\nchangetype: modify\n%s: member\nmember: cn=vip-outside,ou=teams,%s\n' \
        "$G" "$1" "$LDAP_BASE" | ldap_root_modify >/dev/null
}
outside add
cp "$T_DIR/d.conf.cache" "$T_DIR/d.conf"
sed -i 's/^\[ldap\]$/[ldap]\ncache_seconds = 0/' "$T_DIR/d.conf"
daemon_reload || t_fail "a reload with cache_seconds = 0 and group_base is taken"
t_exit 4 "with cache_seconds = 0 and group_base, judy, in cn=vip-outside,ou=teams nested in cn=protected, is protected (403)" \
    "$D" unlock judy
t_match "judy is a protected account" "... saying she is protected" printf '%s\n' "$T_OUT"
outside delete
t_ok "... and, her group taken out, helpdesk unlocks judy at once" "$D" unlock judy
cp "$T_DIR/d.conf.cache" "$T_DIR/d.conf"
daemon_reload || t_fail "the reload back is taken"
# Nested more than 8 levels deep (cn=protected lists pdeep8, ..., pdeep1 lists liuyang: 9 levels
# up): the snapshot does not read that deep, so each check asks upward, which refuses liuyang
# (it cannot tell) and answers for the others. 8 levels deep, liuyang is protected.
pchain() {
    i=1
    while [ "$i" -le 8 ]; do
        printf 'dn: cn=pdeep%d,%s\nobjectClass: groupOfNames\ncn: pdeep%d\nmember: %s\n\n' "$i" "$G" "$i" \
            "$([ "$i" -eq 1 ] && ldap_user_dn liuyang || printf 'cn=pdeep%d,%s' $((i - 1)) "$G")"
        i=$((i + 1))
    done
}
pchain | ldapadd -c -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null 2>&1 || :
pdeep() { # add|delete N: cn=pdeepN as a member of cn=protected
    printf 'dn: cn=protected,%s\nchangetype: modify\n%s: member\nmember: cn=pdeep%d,%s\n' "$G" "$1" "$2" "$G" |
        ldap_root_modify >/dev/null
}
pdeep add 8
cp "$T_DIR/d.conf" "$T_DIR/d.conf.deep"
sed -i "s|^groups = cn=protected,.*|&\ngroups = cn=loop-a,$G|" "$T_DIR/d.conf"
daemon_reload || t_fail "a reload adding cn=loop-a to [protect] is taken (a snapshot at once)"
t_exit 1 "with cn=protected 9 levels above liuyang, helpdesk may not unlock liuyang (cannot tell)" \
    "$D" unlock liuyang
t_match "nest more than 8 levels deep" "... saying the groups nest too deep" printf '%s\n' "$T_OUT"
t_ok "... while sunmin, in no protected group, is unlocked" "$D" unlock sunmin
t_match "protection: the groups nest more than 8 levels deep: each check asks the directory" \
    "... and the log says how checks are made meanwhile" cat "$T_DIR/ldapdeskd.log"
pdeep delete 8
pdeep add 7
cp "$T_DIR/d.conf.deep" "$T_DIR/d.conf"
daemon_reload || t_fail "the reload back is taken (a snapshot at once)"
t_exit 4 "with cn=protected 8 levels above liuyang, liuyang is protected (403)" "$D" unlock liuyang
pdeep delete 7
printf 'dn: cn=protected,%s\nchangetype: modify\ndelete: member\nmember: %s\nmember: %s\nmember: uid=gina,%s\nmember: cn=vip-team,%s\nmember: cn=loop-a,%s\nmember: cn=bigteam,%s\n' \
    "$G" "$erin_fw" "$frank_fw" "$LDAP_PEOPLE" "$G" "$G" "$G" | ldap_root_modify >/dev/null
sleep 6
t_ok "taken out again, erin may be unlocked by helpdesk" "$D" unlock erin
t_ok "... and carol, her group no longer nested in cn=protected" "$D" unlock carol
# Too many to read in one refresh (1,100 direct members, then a nested group listed last): each
# check then asks the directory, upward through the groups that list the user (under
# group_base), so a member of the nested group is still found (a direct search missed it).
{
    bulk_users 601 1100
    printf 'dn: cn=lateteam,%s\nobjectClass: groupOfNames\ncn: lateteam\nmember: %s\n' "$G" "$(ldap_user_dn carol)"
} | ldapadd -c -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null 2>&1 || :
bulk_members() { # add|delete
    printf 'dn: cn=protected,%s\nchangetype: modify\n%s: member\n' "$G" "$1"
    bulk_member_lines 1 1100
    printf 'member: cn=lateteam,%s\n' "$G"
}
bulk_members add | ldap_root_modify >/dev/null
sleep 6
t_exit 4 "with 1,101 protected members (more than a refresh reads), carol, in a group listed last, is protected (403)" \
    "$D" reset carol
t_exit 4 "... and bulk1100, a direct member (403)" "$D" unlock bulk1100
t_ok "... while erin, in no protected group, is unlocked" "$D" unlock erin
t_match "protection: too many members to read back: each check asks the directory" \
    "... and the daemon's log says how checks are made meanwhile" cat "$T_DIR/ldapdeskd.log"
# Without group_base the checks still ask upward: through the groups under the entry user_base
# and the protected groups share (dc=example,dc=com), wherever the nested ones lie.
cp "$T_DIR/d.conf" "$T_DIR/d.conf.gb"
sed -i '/^group_base = /d' "$T_DIR/d.conf"
daemon_reload || t_fail "a reload without group_base is taken"
t_exit 4 "... without group_base, helpdesk still may not reset carol, in the group listed last (403)" \
    "$D" reset carol
t_match "carol is a protected account" "... saying she is protected" printf '%s\n' "$T_OUT"
t_ok "... while erin, in no protected group, is unlocked" "$D" unlock erin
t_eq "$(sqlite3 "$T_DIR/audit.db" "SELECT o.result FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'reset' AND a.target = 'carol' AND a.operator = 'hd1' ORDER BY a.id DESC LIMIT 1")" \
    denied "... and the refusal is recorded"
t_ok "... and an admin resets carol (a protected account: admins may)" env LDAPDESK_USER=adm1 "$D" reset carol
cp "$T_DIR/d.conf.gb" "$T_DIR/d.conf"
daemon_reload || t_fail "the reload back to group_base is taken"
bulk_members delete | ldap_root_modify >/dev/null
t_ok "taken out again, carol may be unlocked by helpdesk (asked upward, no snapshot needed)" "$D" unlock carol
# A group nested in them outside group_base (here it holds the 1,100, too many to read): the
# checks ask upward from the suffix, not from group_base, so its members are found. (Another
# list of groups starts a snapshot at once.)
{
    printf 'dn: cn=vip-outside,ou=teams,%s\nchangetype: modify\nadd: member\n' "$LDAP_BASE"
    bulk_member_lines 1 1100
} | ldap_root_modify >/dev/null
outside add
cp "$T_DIR/d.conf" "$T_DIR/d.conf.big"
sed -i "s|^groups = cn=protected,.*|&\ngroups = cn=loop-a,$G|" "$T_DIR/d.conf"
daemon_reload || t_fail "a reload adding cn=loop-a to [protect] is taken"
t_exit 4 "with cn=vip-outside,ou=teams (1,100 members) nested in cn=protected, too many to read, judy in it is protected (403)" \
    "$D" unlock judy
t_exit 4 "... and bulk011, one of its 1,100 (403)" "$D" unlock bulk011
t_ok "... while erin, in no protected group, is unlocked" "$D" unlock erin
# A [protect] group missing meanwhile refuses; once made, the next check sees it (the refusal is
# not kept for the 5 minutes a snapshot too big to take waits before the next).
sed -i "s|^groups = cn=loop-a,.*|&\ngroups = cn=typo-grp,$G|" "$T_DIR/d.conf"
daemon_reload || t_fail "a reload adding cn=typo-grp (no such group) to [protect] is taken"
t_exit 1 "... with [protect] also naming cn=typo-grp (no such group), helpdesk may not unlock erin" \
    "$D" unlock erin
t_match "the \\[protect\\] group cn=typo-grp,.* does not exist" "... naming the group" printf '%s\n' "$T_OUT"
printf 'dn: cn=typo-grp,%s\nobjectClass: groupOfNames\ncn: typo-grp\nmember: cn=nobody,%s\n' "$G" "$G" |
    ldapadd -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null
t_ok "... and once it is made, at once, erin is unlocked" "$D" unlock erin
t_exit 4 "... and judy still is not (403)" "$D" unlock judy
outside delete
cp "$T_DIR/d.conf.big" "$T_DIR/d.conf"
daemon_reload || t_fail "the reload back is taken"
t_ok "... and with it taken out, judy is unlocked" "$D" unlock judy
# A [protect] group that does not exist (mistyped, or deleted) would protect nobody: refused.
cp "$T_DIR/d.conf" "$T_DIR/d.conf.prot"
sed -i "s|^groups = cn=protected,.*|groups = cn=protectd,$G|" "$T_DIR/d.conf"
daemon_reload || t_fail "a reload naming [protect] groups = cn=protectd,... is taken"
t_exit 1 "with [protect] naming cn=protectd (no such group), helpdesk may not unlock erin" "$D" unlock erin
t_match "the \\[protect\\] group cn=protectd,.* does not exist in the directory.*create the group, or correct \\[protect\\] groups" \
    "... saying which group and what to do" printf '%s\n' "$T_OUT"
t_ok "... while an admin unlocks erin" env LDAPDESK_USER=adm1 "$D" unlock erin
t_match "protection: the \\[protect\\] group cn=protectd" "... and the daemon's log names it" \
    cat "$T_DIR/ldapdeskd.log"
cp "$T_DIR/d.conf.prot" "$T_DIR/d.conf"
daemon_reload || t_fail "the reload back is taken"
t_ok "with the group named right again, helpdesk unlocks erin" "$D" unlock erin

# ---- delegation scopes -----------------------------------------------------------------
as_op hd2
t_ok "scoped helpdesk unlocks inside its department (市场营销中心)" "$D" unlock alice
t_ok "scoped helpdesk unlocks under its base (ou=技术研发中心)" "$D" unlock dave
t_exit 4 "scoped helpdesk cannot unlock outside its scopes (bob, 物资采购中心)" "$D" unlock bob
t_match "outside the departments" "the refusal says why" "$D" unlock bob
t_eq "$(denied unlock bob)" 2 "out-of-scope unlocks are audit rows (denied)"
as_op hd1
t_ok "unscoped helpdesk may unlock bob" "$D" unlock bob
# A session's scopes number the [scope.*] sections: a reload that inserts one before hd2's
# must make hd2's session re-read them, not read its old numbers against the new list.
ldap_root_modify -a >/dev/null <<EOF2
dn: cn=helpdesk-fin,$G
objectClass: groupOfNames
cn: helpdesk-fin
member: cn=nobody,$G
EOF2
cp "$T_DIR/d.conf" "$T_DIR/d.conf.scopes"
sed -i "s|^\[scope.market\]|[scope.fin]\ngroup = cn=helpdesk-fin,$G\ndepartments = 物资采购中心\n\n[scope.market]|" \
    "$T_DIR/d.conf"
t_ok "the reload that puts [scope.fin] first is taken" daemon_reload
as_op hd2
t_exit 4 "after a reload puts a scope before hd2's, hd2's session still cannot unlock bob" "$D" unlock bob
t_ok "... and still unlocks alice (its own department)" "$D" unlock alice
# The scope groups spelled with the attribute's long name: slapd names them cn=..., and a
# parent found under group_base must still count as that group (hd2 would be in no scope:
# unlimited).
sed -i "s|^group = cn=helpdesk-|group = commonName=helpdesk-|" "$T_DIR/d.conf"
t_ok "the reload naming the scope groups commonName=helpdesk-...,... is taken" daemon_reload
t_exit 4 "... and hd2, freshly logged in, still cannot unlock bob outside its scope (403)" \
    env LDAPDESK_USER=hd2 XDG_CACHE_HOME="$T_DIR/cache-longname" "$D" unlock bob
t_match "outside the departments" "... saying why" printf '%s\n' "$T_OUT"
# ... or in full-width letters, which slapd folds (cn=ｈｅｌｐｄｅｓｋ-market is cn=helpdesk-market).
sed -i "s|^group = commonName=helpdesk-|group = cn=ｈｅｌｐｄｅｓｋ-|" "$T_DIR/d.conf"
t_ok "the reload naming the scope groups cn=ｈｅｌｐｄｅｓｋ-...,... (full width) is taken" daemon_reload
t_exit 4 "... and hd2, freshly logged in, still cannot unlock bob outside its scope (403)" \
    env LDAPDESK_USER=hd2 XDG_CACHE_HOME="$T_DIR/cache-fullwidth" "$D" unlock bob
t_ok "... while it unlocks alice in its department" \
    env LDAPDESK_USER=hd2 XDG_CACHE_HOME="$T_DIR/cache-fullwidth" "$D" unlock alice
# ... or with a multi-valued RDN's values in another order, or a run of spaces, which slapd
# matches as the entry (its RDN sorted, spaces folded): the groups are asked directly.
ldap_root_modify -a >/dev/null <<EOF2
dn: cn=hdm+ou=s1,$G
objectClass: groupOfNames
cn: hdm
ou: s1
member: uid=hd2,ou=信息中心,$LDAP_PEOPLE

dn: cn=hd rnd,$G
objectClass: groupOfNames
cn: hd rnd
member: uid=hd2,ou=信息中心,$LDAP_PEOPLE
EOF2
sed -i "s|^group = cn=ｈｅｌｐｄｅｓｋ-market,|group = ou=s1+cn=hdm,|; s|^group = cn=ｈｅｌｐｄｅｓｋ-rnd,|group = cn=hd  rnd,|" \
    "$T_DIR/d.conf"
t_ok "the reload naming the scope groups ou=s1+cn=hdm,... and cn=hd  rnd,... is taken" daemon_reload
t_exit 4 "... and hd2, freshly logged in, still cannot unlock bob outside its scope (403)" \
    env LDAPDESK_USER=hd2 XDG_CACHE_HOME="$T_DIR/cache-rdnorder" "$D" unlock bob
t_match "outside the departments" "... saying why" printf '%s\n' "$T_OUT"
# ... or full-width letters written as \XX escapes (\EF\BD\88 is ｈ).
sed -i 's|^group = ou=s1+cn=hdm,|group = cn=\\EF\\BD\\88elpdesk-market,|; s|^group = cn=hd  rnd,|group = cn=\\EF\\BD\\88elpdesk-rnd,|' \
    "$T_DIR/d.conf"
t_match '^group = cn=\\EF\\BD\\88elpdesk-market,' "(the scope groups are written with escapes)" \
    cat "$T_DIR/d.conf"
t_ok "the reload naming the scope groups cn=\\EF\\BD\\88elpdesk-...,... is taken" daemon_reload
t_exit 4 "... and hd2, freshly logged in, still cannot unlock bob outside its scope (403)" \
    env LDAPDESK_USER=hd2 XDG_CACHE_HOME="$T_DIR/cache-escaped" "$D" unlock bob
t_ok "... while it unlocks alice in its department" \
    env LDAPDESK_USER=hd2 XDG_CACHE_HOME="$T_DIR/cache-escaped" "$D" unlock alice
cp "$T_DIR/d.conf.scopes" "$T_DIR/d.conf"
t_ok "the reload back to the old scopes is taken" daemon_reload
as_op hd1
# Scopes through nested groups: hd1, put in a team nested in cn=helpdesk-market, is scoped; a
# chain deeper than 8 levels is refused (fail closed: an operator in no scope is unlimited).
hd1_dn=$(ldap_user_dn hd1)
chain() { # N: groups deep1 .. deepN, deep1 listing hd1, each next one listing the one before
    i=1
    while [ "$i" -le "$1" ]; do
        printf 'dn: cn=deep%d,%s\nobjectClass: groupOfNames\ncn: deep%d\nmember: %s\n\n' "$i" "$G" "$i" \
            "$([ "$i" -eq 1 ] && printf '%s' "$hd1_dn" || printf 'cn=deep%d,%s' $((i - 1)) "$G")"
        i=$((i + 1))
    done
}
market() { # add|delete DN: a member of cn=helpdesk-market
    printf 'dn: cn=helpdesk-market,%s\nchangetype: modify\n%s: member\nmember: %s\n' "$G" "$1" "$2" |
        ldap_root_modify >/dev/null
}
hd1_fresh() { env LDAPDESK_USER=hd1 XDG_CACHE_HOME="$T_DIR/cache-scope-$1" "$D" unlock bob; }
chain 9 | ldapadd -c -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null 2>&1 || :
market add "cn=deep2,$G"
t_exit 4 "hd1, two groups deep in cn=helpdesk-market, is scoped: bob is outside (403)" hd1_fresh 2
t_match "outside the departments" "... saying why" printf '%s\n' "$T_OUT"
# A group_base that does not exist (mistyped, or its OU renamed) finds no parents: read as "in
# no group", hd1 would be in no scope, so unlimited. Refused instead.
cp "$T_DIR/d.conf" "$T_DIR/d.conf.gb"
sed -i "s|^group_base = .*|group_base = ou=nosuch,$G|" "$T_DIR/d.conf"
t_ok "the reload to a group_base that does not exist is taken" daemon_reload
t_exit 1 "... then hd1's login is refused, not unlimited (bob outside its scope)" hd1_fresh nobase
t_match "\\(\\[ldap\\] group_base; .*\\) does not exist in the directory \\(or the service account, bind_dn, may not read it\\), so nested groups cannot be read: correct group_base" \
    "... saying so and what to do" printf '%s\n' "$T_OUT"
cp "$T_DIR/d.conf.gb" "$T_DIR/d.conf"
t_ok "the reload back is taken" daemon_reload
market delete "cn=deep2,$G"
market add "cn=deep9,$G"
t_exit 1 "with the scope group nine levels up, hd1's login is refused (fail closed, not unlimited)" hd1_fresh 9
t_match "nest more than 8 levels deep.*flatten the groups" "... saying the groups nest too deep" printf '%s\n' "$T_OUT"
market delete "cn=deep9,$G"
t_exit 1 "... and while groups above hd1 still nest nine deep, so is any login of hd1 (they could hold a scope)" \
    hd1_fresh 9b
admins() { # add|delete: hd1 as a direct member of cn=admins
    printf 'dn: cn=admins,%s\nchangetype: modify\n%s: member\nmember: %s\n' "$G" "$1" "$hd1_dn" |
        ldap_root_modify >/dev/null
}
admins add
t_ok "... but not once hd1 is an admin: admins are never scoped, so no scope can be missed" hd1_fresh 9a
tok9=$(login_token hd1)
admins delete
# Its admin session, re-read once an idle period with the groups still nine deep, cannot be
# read whole now: it ends (it kept the admin role until session_ttl).
codes9=
for _ in 1 2 3 4 5 6 7 8; do
    codes9="$codes9 $(get "$tok9" /v1/users/alice | tail -n 1)"
    sleep 1
done
t_match '^ 200( 200)* 401( 401)*$' \
    "... and once hd1 is no admin, its admin session (200 at first) ends at the next role re-read ($codes9)" \
    echo "$codes9"
ldapdelete -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" "cn=deep9,$G"
t_ok "with the chain exactly 8 deep (none above it), hd1 in no scope unlocks bob" hd1_fresh 8
# ... and with cn=helpdesk (which lists hd1 directly) also listing deep8, 9 levels up: a group
# found already adds nothing there, so the walk is not cut (nor the login refused).
printf 'dn: cn=helpdesk,%s\nchangetype: modify\nadd: member\nmember: cn=deep8,%s\n' "$G" "$G" |
    ldap_root_modify >/dev/null
t_ok "with cn=helpdesk also 9 levels above hd1 through the chain, hd1 in no scope still unlocks bob" \
    hd1_fresh 8h
printf 'dn: cn=helpdesk,%s\nchangetype: modify\ndelete: member\nmember: cn=deep8,%s\n' "$G" "$G" |
    ldap_root_modify >/dev/null
market add "cn=deep7,$G"
t_exit 4 "with cn=helpdesk-market 8 levels up, hd1 is scoped: bob is outside (403)" hd1_fresh 8s
market delete "cn=deep7,$G"
for i in 8 7 6 5 4 3; do ldapdelete -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" "cn=deep$i,$G"; done
t_ok "with the chain two deep, hd1 (in no scope) unlocks bob" hd1_fresh 0
# A team outside group_base nested in a scope group: the walk up from hd1 cannot see it, and hd1,
# in no scope found, would be unlimited. The scope groups read down find hd1 in one: refused.
printf 'dn: cn=hd-team-out,ou=teams,%s\nobjectClass: groupOfNames\ncn: hd-team-out\nmember: %s\n' \
    "$LDAP_BASE" "$hd1_dn" | ldapadd -x -H "$LDAP_URI" -D "$LDAP_ROOT_DN" -w "$LDAP_ROOT_PW" >/dev/null
tok_out=$(login_token hd1)
market add "cn=hd-team-out,ou=teams,$LDAP_BASE"
# hd1's session, in use every second: its roles are re-read each idle period (6 s), once the
# scope groups' 5 s snapshot (taken at its login) has expired: another tool's change is seen.
codes_out=
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do
    codes_out="$codes_out $(get "$tok_out" /v1/users/alice | tail -n 1)"
    sleep 1
done
t_match '^ 200( 200)* 401( 401)*$' \
    "hd1's session (in no scope found), once a team outside group_base that lists hd1 is nested in cn=helpdesk-market, ends at a role re-read ($codes_out)" \
    echo "$codes_out"
t_match "the scope of hd1 cannot be told" "... which the daemon's log says" cat "$T_DIR/ldapdeskd.log"
t_exit 4 "... and hd1's login is refused, not unlimited (403)" hd1_fresh out
t_match "only through a group nested in it that ldapdesk does not follow.*list the operator in the scope group directly" \
    "... saying why and what to do" printf '%s\n' "$T_OUT"
market delete "cn=hd-team-out,ou=teams,$LDAP_BASE"
sleep 6
t_ok "with the team taken out (and the 5 s snapshot expired), hd1 in no scope unlocks bob" hd1_fresh out2

# ---- cached unlocks: the modify asserts what a search would have checked ----------------
# alice's DN and department are cached by now (unlocks above). Changes made behind the
# daemon's back must still decide the answer: the asserted modify fails, the daemon reads
# alice again and checks anew, under the same attempt.
adn=$(ldap_user_dn alice)
ldap_set_lock_time alice 000001010000Z
t_exit 4 "an administrator's disable made after caching is refused (403)" "$D" unlock alice
t_match "only 'ldapdesk user enable'" "the refusal says why" "$D" unlock alice
t_eq "$(ldap_attr alice pwdAccountLockedTime)" 000001010000Z "alice stays disabled"
t_eq "$(sqlite3 "$DB" "SELECT count(*) FROM records a WHERE a.action='unlock' AND a.target='alice'
    AND NOT EXISTS (SELECT 1 FROM records o WHERE o.attempt_id=a.id)")" 0 \
    "every unlock attempt of alice has its outcome"
printf 'dn: %s\nchangetype: modify\ndelete: pwdAccountLockedTime\n' "$adn" | ldap_root_modify >/dev/null
printf 'dn: %s\nchangetype: modify\nreplace: ou\nou: 财务管理部\n' "$adn" | ldap_root_modify >/dev/null
as_op hd2
before=$(denied unlock alice)
t_exit 4 "a department changed after caching takes alice out of hd2's scope (403)" "$D" unlock alice
t_eq "$(denied unlock alice)" $((before + 1)) "that refusal is an audit row (denied)"
printf 'dn: %s\nchangetype: modify\nreplace: ou\nou: 市场营销中心\n' "$adn" | ldap_root_modify >/dev/null
as_op hd1
t_ok "unlock alice (cached again)" "$D" unlock alice
ldap_root_modify >/dev/null <<EOF2
dn: $adn
changetype: modrdn
newrdn: uid=alice
deleteoldrdn: 1
newsuperior: ou=财务管理部,$LDAP_PEOPLE
EOF2
ldap_lock_user alice >/dev/null 2>&1 || true
t_match "unlocked" "after a move behind the daemon's back, unlock finds alice at her new DN" \
    "$D" unlock alice
t_empty "alice is unlocked" ldap_attr alice pwdAccountLockedTime
last=$(sqlite3 "$DB" "SELECT max(id) FROM records WHERE action='unlock' AND target='alice'")
t_eq "$(sqlite3 "$DB" "SELECT group_concat(result) FROM records WHERE attempt_id=$last")" ok \
    "that unlock has one outcome, ok"
ldap_root_modify >/dev/null <<EOF2
dn: uid=alice,ou=财务管理部,$LDAP_PEOPLE
changetype: modrdn
newrdn: uid=alice
deleteoldrdn: 1
newsuperior: ou=市场营销中心,$LDAP_PEOPLE
EOF2

# ---- tokens ----------------------------------------------------------------------------
tok=$(login_token hd1)
t_match '^200$' "a fresh token works" get "$tok" /v1/users/alice
payload=${tok%%.*}
sig=${tok#*.}
forged=$(printf '%s' "$payload" | tr -d '\n' | sed 's/-/+/g; s/_/\//g' | base64 -d 2>/dev/null |
    sed 's/^1$/7/' | base64 -w0 | tr '+/' '-_' | tr -d '=').$sig
t_match '^401$' "a token whose payload was edited is refused" get "$forged" /v1/users/alice
t_match '^401$' "a token with a forged signature is refused" get "${payload}.AAAA${sig#????}" /v1/users/alice
curl -s --cacert "$LDAPDESK_CA" -X POST -H "Authorization: Bearer $tok" "$LDAPDESK_URL/v1/logout" >/dev/null
t_match '^401$' "replay after logout is refused" get "$tok" /v1/users/alice
tok2=$(login_token hd1)
daemon_stop
nonce_of() { # TOKEN -> the nonce in its payload (last line)
    _p=$(printf '%s' "${1%%.*}" | tr '_-' '/+')
    while [ $((${#_p} % 4)) -ne 0 ]; do _p="$_p="; done
    printf '%s' "$_p" | base64 -d 2>/dev/null | tail -n 1
}
t_ok "the stop saved the live session" grep -q "^$(nonce_of "$tok2") " "$T_DIR/session.key.sessions"
t_nomatch "^$(nonce_of "$tok") " "... and not the one logged out" cat "$T_DIR/session.key.sessions"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts"; t_done; }
t_match '^200$' "a live token survives a restart (saved at the stop)" get "$tok2" /v1/users/alice
t_match '^401$' "replay after logout is refused after a restart too" get "$tok" /v1/users/alice
t_eq "$(stat -c %a "$T_DIR/session.key") $(stat -c %a "$T_DIR/session.key.sessions")" "600 600" \
    "the session key and the saved sessions are mode 0600"
t_eq "$(wc -c <"$T_DIR/session.key.sessions" | tr -d ' ')" 0 "the start emptied the saved sessions"
sleep 7
t_match '^401$' "a token unused for longer than session_idle is refused" get "$tok2" /v1/users/alice
daemon_stop
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts"; t_done; }
t_match '^401$' "... and still after a restart (its idle time went on)" get "$tok2" /v1/users/alice
tok3=$(login_token hd1)
t_match '^200$' "a fresh token works" get "$tok3" /v1/users/alice
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
t_untrack "$DAEMON_PID"
DAEMON_PID=
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts after SIGKILL"; t_done; }
t_match '^401$' "a token from before a crash is refused (nothing saved: log in again)" get "$tok3" /v1/users/alice
t_ok "the CLI logs in again by itself (LDAPDESK_USER/PASSWORD)" "$D" status alice
# One operator logging in again and again ends its own oldest sessions (at most 32 each; the
# unit test test_one_operator_holds_a_bounded_number_of_sessions checks which), not others'.
toka=$(login_token adm1)
for i in $(seq 1 40); do
    login_token hd2 >/dev/null
    [ $((i % 5)) -ne 0 ] || get "$toka" /v1/users/alice >/dev/null # kept in use (session_idle is 6 s here)
done
t_match '^200$' "adm1's session is untouched" get "$toka" /v1/users/alice
t_ok "hd1's too" "$D" status alice
tokb=$(login_token adm1)
t_ok "and adm1 can still log in" test "${#tokb}" -gt 20

# ---- DESIGN's order: 400 (bad query) before 403 (role) --------------------------------
code() { curl -s -o /dev/null -w '%{http_code}' --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $1" "$LDAPDESK_URL$2"; }
tokh=$(login_token hd1)
t_match '^400$' "a helpdesk report with a bad range is 400 first" code "$tokh" "/v1/report?from=2026-06-31&to=2026-07-01"
t_match '^403$' "a good range is then 403 for helpdesk" code "$tokh" "/v1/report?from=2026-06-01&to=2026-06-30"
t_match '^403$' "and the audit log is 403 for helpdesk" code "$tokh" "/v1/audit?limit=1"
t_match '^400$' "a helpdesk report in an unknown format is 400 first" code "$tokh" "/v1/report?from=2026-06-01&to=2026-06-30&format=xml"
t_match '^400$' "a helpdesk verify with a malformed since is 400 first" code "$tokh" "/v1/verify?since=garbage"
t_match '^400$' "a helpdesk backup with a body that is not JSON is 400 first (before the role)" \
    curl -s -o /dev/null -w '%{http_code}' --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tokh" \
    -d '{x' "$LDAPDESK_URL/v1/backup"
t_match '^403$' "and the pending requests are 403 for helpdesk" code "$tokh" "/v1/requests"
t_eq "$(sqlite3 "$DB" "SELECT group_concat(a.action || ':' || o.result, ',') FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.operator = 'hd1' AND a.action IN ('log', 'report', 'verify', 'requests')")" \
    "report:failed,report:denied,log:denied,report:failed,verify:failed,requests:denied" \
    "refused reads of the audit are attempts too, with who asked: denied for the role, failed for a bad query"
t_match '^200$' "the auth scheme is case-insensitive: 'bearer TOKEN' works" \
    curl -s -o /dev/null -w '%{http_code}\n' --cacert "$LDAPDESK_CA" -H "Authorization: bearer $tokh" "$LDAPDESK_URL/v1/users/alice"
t_match '^200$' "... and more than one space may follow it (RFC 9110: 1*SP)" \
    curl -s -o /dev/null -w '%{http_code}\n' --cacert "$LDAPDESK_CA" -H "Authorization: Bearer   $tokh" "$LDAPDESK_URL/v1/users/alice"
t_match '^400 application/json' "a grant without a permission is 400, before the role check" \
    curl -s -o /dev/null --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $tokh" -d '{"days":3}' \
    -w '%{http_code} %{content_type}\n' "$LDAPDESK_URL/v1/users/bob/grants"

# ---- role removal takes effect within one idle period --------------------------------
tok3=$(login_token hd2)
ldap_root_modify >/dev/null <<EOF2
dn: cn=helpdesk,$G
changetype: modify
delete: member
member: uid=hd2,ou=信息中心,$LDAP_PEOPLE
EOF2
codes_over() { # TOKEN: the status codes of a read once a second for 8 s (a role re-read is due)
    _co=
    for _ in 1 2 3 4 5 6 7 8; do
        _co="$_co $(get "$1" /v1/users/alice | tail -n 1)"
        sleep 1
    done
    echo "$_co"
}
codes=$(codes_over "$tok3")
t_match ' 401' "removing hd2 from the helpdesk group ends its session while in use ($codes)" echo "$codes"
t_eq "$(sqlite3 "$DB" "SELECT a.operator || ' ' || a.action || ' ' || o.result FROM records a JOIN records o
    ON o.attempt_id = a.id WHERE o.detail LIKE '%no longer have an ldapdesk role%'")" "hd2 status denied" \
    "that refusal is hd2's denied attempt in the audit log"

# ---- an operator disabled by another tool loses its session at the next role re-read -------
tokd=$(login_token adm2)
t_match '^200$' "adm2's session works" get "$tokd" /v1/users/alice
ldap_set_lock_time adm2 000001010000Z # an administrator's lock, set by another tool
codes=$(codes_over "$tokd")
t_match ' 401' "disabling adm2 outside ldapdesk ends its session within one idle period ($codes)" echo "$codes"
t_eq "$(sqlite3 "$DB" "SELECT o.result FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.operator = 'adm2' AND o.detail LIKE 'your account is disabled: the session ended%'")" denied \
    "... recorded as adm2's denied attempt, saying why"
ldap_unlock_user adm2
# ... and so does an account whose validity ended (ppolicy's pwdEndTime; AD's accountExpires)
tokd=$(login_token adm2)
t_match '^200$' "adm2's new session works" get "$tokd" /v1/users/alice
printf 'dn: %s\nchangetype: modify\nreplace: pwdEndTime\npwdEndTime: 20200101000000Z\n' \
    "$(ldap_user_dn adm2)" | ldap_root_modify >/dev/null
codes=$(codes_over "$tokd")
t_match ' 401' "an operator whose account ended (pwdEndTime, set by another tool) loses its session ($codes)" \
    echo "$codes"
t_eq "$(sqlite3 "$DB" "SELECT o.result FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.operator = 'adm2' AND o.detail LIKE 'your account is outside its validity%: the session ended%'")" denied \
    "... recorded as adm2's denied attempt, saying why"
printf 'dn: %s\nchangetype: modify\ndelete: pwdEndTime\n' "$(ldap_user_dn adm2)" | ldap_root_modify >/dev/null

# ---- an operator's password reset, or a lock by failed logins, ends its sessions -----------
# An admin resets an operator whose password leaked: the sessions made with it end at once.
toka=$(login_token aud1)
t_match '^403$' "aud1's session works (403: an auditor may not read a status)" get "$toka" /v1/users/alice
as_op adm1
t_ok "adm1 resets aud1's password through ldapdesk" "$D" reset aud1 --note "password leaked"
t_match '^401$' "... and aud1's session ends at once" get "$toka" /v1/users/alice
aud1_back() { # aud1's own password again, nothing to change (ppolicy marks a password set
    # by another than its owner pwdReset: taken off in a second modify)
    printf 'dn: %s\nchangetype: modify\nreplace: userPassword\nuserPassword: %s\n\n' \
        "$(ldap_user_dn aud1)" "$LDAP_OP_PW" | ldap_root_modify >/dev/null
    printf 'dn: %s\nchangetype: modify\ndelete: pwdReset\n' "$(ldap_user_dn aud1)" |
        ldap_root_modify >/dev/null
}
aud1_back
# Another tool resets it (pwdReset set) or failed binds lock it: within one idle period.
toka=$(login_token aud1)
t_match '^403$' "aud1 logs in again (its password set back)" get "$toka" /v1/users/alice
printf 'dn: %s\nchangetype: modify\nreplace: pwdReset\npwdReset: TRUE\n' "$(ldap_user_dn aud1)" |
    ldap_root_modify >/dev/null
codes=$(codes_over "$toka")
t_match ' 401' "an operator reset by another tool (must change) loses its session ($codes)" echo "$codes"
t_eq "$(sqlite3 "$DB" "SELECT o.result FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.operator = 'aud1' AND o.detail LIKE 'your password was reset and must be changed first: the session ended%'")" \
    denied "... recorded as aud1's denied attempt, saying why"
aud1_back
toka=$(login_token aud1)
t_match '^403$' "aud1 logs in again" get "$toka" /v1/users/alice
for _ in 1 2 3; do ldap_bind_as aud1 wrong-password >/dev/null 2>&1 || true; done
codes=$(codes_over "$toka")
t_match ' 401' "an operator locked by failed logins loses its session ($codes)" echo "$codes"
t_eq "$(sqlite3 "$DB" "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.operator = 'aud1' AND o.detail LIKE 'your account is locked (failed logins): the session ended%'")" \
    1 "... recorded as aud1's denied attempt, saying why"
ldap_unlock_user aud1

# ---- a password typed into the user field -------------------------------------------------
# The log keeps forever what it is given: a login name the directory does not know is not stored.
mark=$(sqlite3 "$DB" "SELECT max(id) FROM records")
curl -s -o /dev/null --cacert "$LDAPDESK_CA" -d '{"user":"Typed-Secret-4711","password":"x"}' \
    "$LDAPDESK_URL/v1/login"
curl -s -o /dev/null --cacert "$LDAPDESK_CA" -d '{"user":"Typed Secret(4711)!","password":"x"}' \
    "$LDAPDESK_URL/v1/login"
t_eq "$(sqlite3 "$DB" "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.id > $mark AND a.action = 'login' AND a.operator IS NULL AND o.result = 'denied'
    AND o.detail NOT LIKE '%without a valid session%'")" 2 \
    "both refused logins are recorded, without the name typed"
t_eq "$(sqlite3 "$DB" .dump | grep -c 'Typed')" 0 "the typed name is nowhere in the audit database"
t_absent "Typed" "nor in the daemon's log" "$T_DIR/ldapdeskd.log"

# ---- brute force -------------------------------------------------------------------------
# Spelled three ways: uids ignore case, so the three failures are one operator's.
for u in hd1 HD1 Hd1; do curl -s -o /dev/null --cacert "$LDAPDESK_CA" -d "{\"user\":\"$u\",\"password\":\"guess\"}" "$LDAPDESK_URL/v1/login"; done
t_match '^429$' "after 3 failures (hd1, HD1, Hd1) the operator is throttled (new connection)" \
    curl -s -o /dev/null -w '%{http_code}\n' --cacert "$LDAPDESK_CA" -d "{\"user\":\"hd1\",\"password\":\"$LDAP_OP_PW\"}" "$LDAPDESK_URL/v1/login"
t_match '^429$' "... and so is a full-width spelling (ｈｄ１), which slapd matches to hd1" \
    curl -s -o /dev/null -w '%{http_code}\n' --cacert "$LDAPDESK_CA" -d "{\"user\":\"ｈｄ１\",\"password\":\"$LDAP_OP_PW\"}" "$LDAPDESK_URL/v1/login"
t_match '^429$' "keep-alive does not reset the count" \
    sh -c "curl -s -o /dev/null -o /dev/null -w '%{http_code}\n' --cacert '$LDAPDESK_CA' \
        -H 'Content-Type: application/json' -d '{\"user\":\"hd1\",\"password\":\"x\"}' \
        '$LDAPDESK_URL/v1/login' '$LDAPDESK_URL/v1/login' | tail -n 1"
t_match '^Retry-After: [0-9]+' "429 carries Retry-After" \
    sh -c "curl -s -D - -o /dev/null --cacert '$LDAPDESK_CA' -d '{\"user\":\"hd1\",\"password\":\"x\"}' '$LDAPDESK_URL/v1/login' | tr -d '\r'"
for u in aud1 adm2 hd2 aud1 adm2; do curl -s -o /dev/null --cacert "$LDAPDESK_CA" -d "{\"user\":\"$u\",\"password\":\"guess\"}" "$LDAPDESK_URL/v1/login"; done
t_match '^429$' "failures across operators throttle the source address" \
    curl -s -o /dev/null -w '%{http_code}\n' --cacert "$LDAPDESK_CA" -d "{\"user\":\"adm1\",\"password\":\"$LDAP_OP_PW\"}" "$LDAPDESK_URL/v1/login"
t_ok "the first throttled login of the operator and of the address are audit rows" test "$(sqlite3 "$DB" "SELECT count(*) FROM records WHERE kind='outcome' AND detail LIKE 'too many failed logins%'")" -ge 2
# A source that keeps knocking after its 429 adds no record per request: the first refusal of a
# period is recorded, the others are counted and recorded as one summary every 10 s, and at stop.
more_sum() { # FROM_ID: throttled logins counted in summaries after record FROM_ID
    sqlite3 "$DB" "SELECT detail FROM records WHERE kind = 'outcome' AND id > $1
        AND detail LIKE '%more refused (429)%'" |
        sed -n 's/.*: \([0-9]*\) more refused.*/\1/p' | awk '{ s += $1 } END { print s + 0 }'
}
knock() { # N: N logins of hd1 with a wrong password; prints the status codes
    for _ in $(seq "$1"); do
        curl -s -o /dev/null -w '%{http_code} ' --cacert "$LDAPDESK_CA" \
            -d '{"user":"hd1","password":"guess"}' "$LDAPDESK_URL/v1/login"
    done
}
mark=$(sqlite3 "$DB" "SELECT max(id) FROM records")
t_eq "$(knock 20)" "$(printf '429 %.0s' $(seq 20))" "20 more logins of the throttled operator are 429"
# Summaries are left out of this count: a slow machine (ASan, four suites at once) may take
# more than a 10-s tick over the 20 logins and write one summary per tick.
t_ok "they add at most 2 refusals to the log, not 20" \
    test "$(sqlite3 "$DB" "SELECT count(*) FROM records WHERE kind = 'outcome' AND id > $mark
        AND detail NOT LIKE '%more refused (429)%'")" -le 2
for _ in $(seq 120); do [ "$(more_sum "$mark")" -ge 20 ] && break; sleep 0.5; done
t_ok "within a tick a summary counts them ($(more_sum "$mark"), with the few 429s before them)" \
    test "$(more_sum "$mark")" -ge 20 -a "$(more_sum "$mark")" -le 30
t_eq "$(sqlite3 "$DB" "SELECT count(*) FROM records o JOIN records a ON a.id = o.attempt_id
    WHERE o.detail LIKE '%from this operator: % more refused%' AND (a.client_addr IS NOT NULL
    OR a.operator IS NOT NULL)")" 0 "an operator's summary names no address and no name typed"
# A tick may have fallen among the 20 (the sum above then counted some 429s from before them):
# the rest are summed at the next one, which must pass before the count at the stop begins.
sleep 11
mark=$(sqlite3 "$DB" "SELECT max(id) FROM records")
knock 5 >/dev/null
daemon_stop
t_eq "$(more_sum "$mark")" 5 "throttled logins counted when the daemon stops are recorded at the stop"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts"; t_done; }

# ---- refusals for the account's state count towards the throttle --------------------------
# Only wrong passwords did: logins of a locked (or disabled, must-change, role-less) account were
# each a bind and a record pair, never 429 — 848 in 5 s from one address.
login_codes() { # USER PASSWORD N: the status codes of N logins
    for _ in $(seq "$3"); do
        curl -s -o /dev/null -w '%{http_code} ' --cacert "$LDAPDESK_CA" \
            -d "{\"user\":\"$1\",\"password\":\"$2\"}" "$LDAPDESK_URL/v1/login"
    done
}
ldap_lock_user hd2
t_eq "$(login_codes hd2 "$LDAP_OP_PW" 6)" "403 403 403 429 429 429 " \
    "logins of a locked operator, right password, are 429 after login_failures (3 here)"
ldap_unlock_user hd2
t_eq "$(login_codes bob "$LDAP_USER_PW" 5)" "403 403 403 429 429 " \
    "logins of a user without a role are 429 after 3 too"

# ---- reset limit --------------------------------------------------------------------------
daemon_stop
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd restarts"; t_done; }
# A burst of wrong-password logins sent at once (fresh counters after the restart): each used
# to find the count under the limit while the others were still at slapd, and 16 of 60 binds
# got through. A login in flight counts as failed until it is known not to be.
DB=$(sed -n 's/^database = //p' "$T_DIR/d.conf" | head -n 1)
mark=$(sqlite3 "$DB" "SELECT max(id) FROM records")
seq 20 | xargs -P 20 -I{} curl -s -o /dev/null -w '%{http_code}\n' --cacert "$LDAPDESK_CA" \
    -d '{"user":"hd2","password":"burst-guess-{}"}' "$LDAPDESK_URL/v1/login" >"$T_DIR/burst.codes"
n401=$(grep -c '^401$' "$T_DIR/burst.codes" || true)
nother=$(grep -vc '^\(401\|429\|503\)$' "$T_DIR/burst.codes" || true)
t_ok "20 wrong-password logins at once reach slapd at most login_failures (3) times ($n401 x 401, the rest 429 or 503)" \
    test "$n401" -le 3 -a "$n401" -ge 1 -a "$nother" = 0
t_ok "... and the audit holds at most 3 of them as wrong passwords" \
    test "$(sqlite3 "$DB" "SELECT count(*) FROM records a JOIN records o ON o.attempt_id = a.id
        WHERE a.action = 'login' AND a.operator = 'hd2' AND o.detail = 'wrong user name or password'
        AND a.id > $mark")" -le 3
ldap_unlock_user hd2
# The guesses above locked hd1 in slapd (its policy's pwdMaxFailure); its cached session went
# idle meanwhile, so its next command logs in again.
ldap_unlock_user hd1
as_op hd1
t_ok "first reset of carol" "$D" reset carol
t_ok "second reset of carol" "$D" reset carol
t_exit 1 "a third reset within the hour is 429 (exit 1)" "$D" reset carol
as_op adm1
t_ok "admins are not limited" "$D" reset carol

# ---- injection, oversize input --------------------------------------------------------------
as_op hd1
t_exit 5 "filter injection in a user name finds nobody" "$D" status '*)(uid=*'
t_exit 5 "DN injection in a user name finds nobody" "$D" status 'alice,ou=x'
big=$(head -c 20000 /dev/zero | tr '\0' 'x')
t_match '^431 application/json' "headers over 16 KiB are refused in JSON" \
    curl -s --cacert "$LDAPDESK_CA" -H "X-Big: $big" -w '\n%{http_code} %{content_type}\n' "$LDAPDESK_URL/v1/health"
for m in DELETE PUT OPTIONS PATCH; do
    t_match '^405 application/json' "$m is 405 in JSON, not an HTML page" \
        curl -s --cacert "$LDAPDESK_CA" -X "$m" -w '\n%{http_code} %{content_type}\n' "$LDAPDESK_URL/v1/users/alice"
done
t_match '"error": *"method_not_allowed"' "with the error code method_not_allowed" \
    curl -s --cacert "$LDAPDESK_CA" -X DELETE "$LDAPDESK_URL/v1/health"
t_match '^Connection: close' "and closes the connection (a body libevent does not read is no next request)" \
    sh -c "curl -s -D - -o /dev/null --cacert '$LDAPDESK_CA' -X DELETE -d 'GET /v1/health HTTP/1.1' '$LDAPDESK_URL/v1/health' | tr -d '\r'"
t_match '^Allow: GET, HEAD$' "and an Allow header naming the methods this path takes (PUT /v1/health)" \
    sh -c "curl -s -D - -o /dev/null --cacert '$LDAPDESK_CA' -X PUT '$LDAPDESK_URL/v1/health' | tr -d '\r'"
t_match '^Allow: POST$' "... POST for an action (DELETE /v1/users/alice/unlock)" \
    sh -c "curl -s -D - -o /dev/null --cacert '$LDAPDESK_CA' -X DELETE '$LDAPDESK_URL/v1/users/alice/unlock' | tr -d '\r'"
t_match '^Allow: GET, POST, HEAD$' "... and every method the API uses for a path it does not have" \
    sh -c "curl -s -D - -o /dev/null --cacert '$LDAPDESK_CA' -X PUT '$LDAPDESK_URL/v1/nothing' | tr -d '\r'"
t_match '^HTTP/[0-9.]+ 200' "HEAD /v1/health is 200 without a token (health needs none)" \
    sh -c "curl -s -I --cacert '$LDAPDESK_CA' '$LDAPDESK_URL/v1/health' | tr -d '\r'"
t_match '^405 application/json' "GET /v1/login is 405, not 401" \
    curl -s --cacert "$LDAPDESK_CA" -w '\n%{http_code} %{content_type}\n' "$LDAPDESK_URL/v1/login"
t_match '^Allow: POST' "with Allow: POST" \
    sh -c "curl -s -D - -o /dev/null --cacert '$LDAPDESK_CA' '$LDAPDESK_URL/v1/login' | tr -d '\r'"
t_match '^405$' "POST to a read endpoint is 405 (POST /v1/audit)" \
    curl -s --cacert "$LDAPDESK_CA" -d '{}' -w '\n%{http_code}\n' "$LDAPDESK_URL/v1/audit"
t_match '^413 application/json' "a body over 64 KiB is refused in JSON" \
    curl -s --cacert "$LDAPDESK_CA" --data-binary "{\"note\":\"$(head -c 70000 /dev/zero | tr '\0' x)\"}" \
    -w '\n%{http_code} %{content_type}\n' "$LDAPDESK_URL/v1/users/alice/unlock"
head -c 70000 /dev/zero | tr '\0' x >"$T_DIR/big-import.csv"
for path in /v1/import /v1/import/; do
    t_match '^400 application/json' "an admin's 70 KB import to $path is read (400: not a report's CSV), not 413" \
        curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $(login_token adm1)" -H 'Content-Type: text/csv' \
        --data-binary @"$T_DIR/big-import.csv" -w '\n%{http_code} %{content_type}\n' "$LDAPDESK_URL$path"
done

# ---- transport --------------------------------------------------------------------------------
# curl's status, not only its output: a daemon that is down answers nothing either.
plain_http() {
    curl -s --max-time 3 "http://127.0.0.1:$LDAPDESK_PORT/v1/health" && echo "curl 0" || echo "curl $?"
}
t_match '^curl (52|56)$' "plaintext HTTP to the TLS port: the connection closes unanswered (curl 52/56)" \
    plain_http
t_nomatch '"status"' "... no status in it" printf '%s\n' "$T_OUT"
t_match '"status"' "... while HTTPS on that port answers" \
    curl -s --cacert "$LDAPDESK_CA" "https://127.0.0.1:$LDAPDESK_PORT/v1/health"
t_exit 6 "the client refuses a certificate from another CA (exit 6)" env LDAPDESK_CA="$SLAPD_DIR/other-ca.pem" "$D" health
t_exit 6 "the client checks the host name (exit 6)" env LDAPDESK_URL="https://127.0.0.2:$LDAPDESK_PORT" "$D" health
t_match "Cipher is \\(NONE\\)|handshake failure|protocol version" "TLS 1.1 is refused by the daemon" \
    sh -c "openssl s_client -connect 127.0.0.1:$LDAPDESK_PORT -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1"
t_match "Cipher is ECDHE|Cipher is TLS_" "TLS 1.2 is accepted (control)" \
    sh -c "openssl s_client -connect 127.0.0.1:$LDAPDESK_PORT -tls1_2 </dev/null 2>&1"
t_eq "$(stat -c %a "$LDAPDESK_SOCK")" 660 "the unix socket is created 0660"
t_match "no-store" "answers carrying a password are not cached" \
    sh -c "curl -s -D - -o /dev/null --cacert '$LDAPDESK_CA' -H 'Authorization: Bearer $(login_token adm1)' -d '{}' '$LDAPDESK_URL/v1/users/erin/reset' | tr -d '\r'"

# ---- mTLS ------------------------------------------------------------------------------------
M=$T_DIR/mtls
mkdir -p "$M"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=ops CA" \
    -keyout "$M/ca.key" -out "$M/ca.pem" 2>/dev/null
for u in adm1 hd2; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$u" \
        -keyout "$M/$u.key" -out "$M/$u.csr" 2>/dev/null
    openssl x509 -req -in "$M/$u.csr" -CA "$M/ca.pem" -CAkey "$M/ca.key" -CAcreateserial -days 2 \
        -out "$M/$u.pem" 2>/dev/null
done
daemon_stop
sed -i "s|^timezone = .*|&\nclient_ca = $M/ca.pem|" "$T_DIR/d.conf"
daemon_start "$T_DIR/d.conf" || { t_fail "ldapdeskd starts with client_ca"; t_done; }
unset LDAPDESK_USER LDAPDESK_PASSWORD
t_exit 6 "without a client certificate the TLS handshake fails (exit 6)" \
    env LDAPDESK_USER=hd1 LDAPDESK_PASSWORD="$LDAP_OP_PW" "$D" health
t_match "LDAPDESK_CERT and LDAPDESK_KEY" \
    "... and the message names the client certificate settings" printf '%s\n' "$T_OUT"
t_exit 6 "a client certificate that cannot be read fails (exit 6)" \
    env LDAPDESK_CERT="$M/missing.pem" LDAPDESK_KEY="$M/adm1.key" "$D" health
t_match "LDAPDESK_CERT and LDAPDESK_KEY" "... naming the settings to fix" printf '%s\n' "$T_OUT"
# (hd1 is locked in the directory by now: the brute force above tripped ppolicy too)
t_ok "with adm1's certificate adm1 logs in" env LDAPDESK_CERT="$M/adm1.pem" LDAPDESK_KEY="$M/adm1.key" \
    "$D" login --user adm1 --password-file /dev/stdin <<EOF2
$LDAP_OP_PW
EOF2
t_exit 3 "with hd2's certificate adm1 cannot log in (401)" env LDAPDESK_CERT="$M/hd2.pem" LDAPDESK_KEY="$M/hd2.key" \
    LDAPDESK_USER=adm1 LDAPDESK_PASSWORD="$LDAP_OP_PW" XDG_CACHE_HOME="$T_DIR/cache2" "$D" status alice
# A command that logs in first makes two requests on two connections, the second resuming
# the first's TLS session: resumption must work under client_ca too (it was alert 80).
t_ok "with adm1's certificate and no session yet, an unlock logs in and runs (two TLS connections)" \
    env LDAPDESK_CERT="$M/adm1.pem" LDAPDESK_KEY="$M/adm1.key" LDAPDESK_USER=adm1 \
    LDAPDESK_PASSWORD="$LDAP_OP_PW" XDG_CACHE_HOME="$T_DIR/cache-mtls" "$D" unlock bob
t_eq "$(sqlite3 "$DB" "SELECT o.result || '|' || a.note FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE a.action = 'login' AND a.note LIKE 'client certificate%'")" "denied|client certificate CN=hd2" \
    "the login refused for hd2's certificate is recorded (denied), naming the certificate, not the name typed"
# The session is the certificate's too: adm1's token with hd2's certificate is refused.
t_ok "with its own certificate adm1's session goes on" env LDAPDESK_CERT="$M/adm1.pem" \
    LDAPDESK_KEY="$M/adm1.key" LDAPDESK_USER=adm1 XDG_CACHE_HOME="$T_DIR/cache-mtls" "$D" status alice
t_exit 3 "adm1's session used with hd2's certificate is refused (401)" env LDAPDESK_CERT="$M/hd2.pem" \
    LDAPDESK_KEY="$M/hd2.key" LDAPDESK_USER=adm1 XDG_CACHE_HOME="$T_DIR/cache-mtls" "$D" status alice
t_match "certificate_mismatch|another operator than the client certificate" "... saying why" printf '%s\n' "$T_OUT"
t_eq "$(sqlite3 "$DB" "SELECT o.result || '|' || a.operator || '|' || a.action || '|' || a.note FROM records a
    JOIN records o ON o.attempt_id = a.id WHERE a.note LIKE '%, not adm1''s: refused'")" \
    "denied|adm1|status|client certificate CN=hd2, not adm1's: refused" \
    "... recorded under adm1's name, naming the certificate"

# ---- least privilege ----------------------------------------------------------------------------
daemon_stop
P=$T_DIR/priv
mkdir -p "$P"
chmod 755 "$T_DIR" "$P" # root's directory: what the daemon writes later must exist before the drop
sed -e "s|^client_ca = .*||; s|^database = .*|database = $P/audit.db|; s|^key_file = .*|key_file = $P/session.key|" \
    -e "s|^backup_dir = .*|backup_dir = $P/backups|" \
    -e "s|^listen = unix:.*|listen = unix:$P/ldapdesk.sock|; s|^\[server\]|[server]\nuser = nobody|" \
    "$T_DIR/d.conf" >"$T_DIR/priv.conf"
# A link planted where root creates and hands over a file is never followed.
ln -s "$T_DIR/victim" "$P/audit.db-ids"
t_exit 1 "a symbolic link planted as the id mark stops start-up as root" timeout 20 "$LDAPDESKD" -c "$T_DIR/priv.conf"
t_exit 1 "and its target was neither made nor handed over" test -e "$T_DIR/victim"
rm -f "$P/audit.db-ids"
daemon_start "$T_DIR/priv.conf" || { t_fail "ldapdeskd starts and drops to nobody"; t_done; }
t_eq "$(awk '/^Uid:/ { print $2 $3 $4 $5 }' "/proc/$DAEMON_PID/status")" \
    "$(id -u nobody)$(id -u nobody)$(id -u nobody)$(id -u nobody)" "ldapdeskd runs as nobody after binding"
t_ok "as nobody it still writes the audit log" env LDAPDESK_USER=adm1 LDAPDESK_PASSWORD="$LDAP_OP_PW" \
    XDG_CACHE_HOME="$T_DIR/cache3" "$D" --url "unix:$P/ldapdesk.sock" unlock frank
t_ok "as nobody it still writes backups (backup_dir created as root, then handed over)" \
    env LDAPDESK_USER=adm1 LDAPDESK_PASSWORD="$LDAP_OP_PW" XDG_CACHE_HOME="$T_DIR/cache3" \
    "$D" --url "unix:$P/ldapdesk.sock" backup
t_eq "$(stat -c %U "$P/audit.db-ids" "$P/session.key.sessions" "$P/ldapdesk.sock" | sort -u)" nobody \
    "the id mark, the saved sessions and the socket were made or handed over before the drop"
t_absent "cannot keep" "so the daemon keeps its id mark (no warning)" "$T_DIR/ldapdeskd.log"
t_ok "as nobody a logout works" \
    env LDAPDESK_USER=adm1 LDAPDESK_PASSWORD="$LDAP_OP_PW" XDG_CACHE_HOME="$T_DIR/cache3" \
    "$D" --url "unix:$P/ldapdesk.sock" logout
# A reload as nobody: the TLS key and the service password file, root's and mode 0600, keep
# what was read at start instead of failing the reload.
priv() { env LDAPDESK_USER=adm1 LDAPDESK_PASSWORD="$LDAP_OP_PW" XDG_CACHE_HOME="$T_DIR/cache3" \
    "$D" --url "unix:$P/ldapdesk.sock" "$@"; }
printf '\n[grant.privsys]\ngroup = cn=general,%s\nlabel = 提权后系统\n' "$LDAP_GROUPS" >>"$T_DIR/priv.conf"
t_exit 5 "before the reload the permission privsys it adds is unknown" priv grant songtao privsys
rc=0
daemon_reload || rc=$?
t_eq "$rc" 0 "a reload as nobody is taken (configuration reloaded), the root-only key and password file notwithstanding"
t_absent "reload failed" "... not refused" "$T_DIR/ldapdeskd.log"
t_match "bind_password_file .* cannot be read as the user ldapdeskd runs as: the password read at start stays" \
    "... saying the password read at start stays" printf '%s\n' "$DAEMON_RELOAD_LOG"
t_match "server.(key|pem) cannot be read as the user ldapdeskd runs as: the running TLS certificate, key and client CA stay" \
    "... saying the running TLS certificate and key stay" printf '%s\n' "$DAEMON_RELOAD_LOG"
t_ok "... which still serves" curl -sf --cacert "$LDAPDESK_CA" "https://127.0.0.1:$LDAPDESK_PORT/v1/health"
t_ok "... and the file it read is live: privsys is granted" priv grant songtao privsys
t_ok "songtao is in the group of privsys" ldap_is_member general songtao
ldap_lock_user frank >/dev/null 2>&1 || true
t_ok "... and the service account still works after it" env LDAPDESK_USER=adm1 LDAPDESK_PASSWORD="$LDAP_OP_PW" \
    XDG_CACHE_HOME="$T_DIR/cache3" "$D" --url "unix:$P/ldapdesk.sock" unlock frank

# ---- the daemon verifies the directory's certificate --------------------------------------
daemon_stop
sed -e "s|^ca_file = .*|ca_file = $SLAPD_DIR/other-ca.pem|" "$T_DIR/d.conf" | grep -v '^client_ca' >"$T_DIR/badca.conf"
daemon_start "$T_DIR/badca.conf" || { t_fail "ldapdeskd starts with the wrong ca_file"; t_done; }
sleep 1
t_match '"directory":"down"' "a directory certificate from another CA is refused (StartTLS)" \
    curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/v1/health"
t_match "StartTLS with ldap://.*" "the log says why" cat "$T_DIR/ldapdeskd.log"

# -v: one line per request answered, with nothing secret in it.
daemon_stop
grep -v '^client_ca' "$T_DIR/d.conf" >"$T_DIR/v.conf"
DAEMON_ARGS=-v daemon_start "$T_DIR/v.conf" || { t_fail "ldapdeskd -v starts"; t_done; }
t_ok "a login and a status read with -v" env LDAPDESK_USER=adm1 LDAPDESK_PASSWORD="$LDAP_OP_PW" \
    XDG_CACHE_HOME="$T_DIR/cache-v" "$D" status alice
t_match "debug: POST /v1/login 200 [0-9.]+ ms \\(127\\.0\\.0\\.1\\)" "-v logs the login request" cat "$T_DIR/ldapdeskd.log"
t_match "debug: GET /v1/users/alice 200 " "... and the status read" cat "$T_DIR/ldapdeskd.log"
# Out of descriptors: accept fails (EMFILE) while the listener stays readable. The daemon
# backs off a second at a time; it spun at 100 % CPU logging millions of lines, and read past
# its listener table (the error callback's argument is libevent's evhttp, not ours).
if command -v prlimit >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; then
    soft=$(prlimit --pid "$DAEMON_PID" --nofile --output SOFT --noheadings | tr -d ' ')
    prlimit --pid "$DAEMON_PID" --nofile=64: # the soft limit only: raising it back needs no privilege
    python3 - "$LDAPDESK_PORT" <<'EOF2' &
import socket, sys, time
held = []
for _ in range(150):
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2))
    except OSError:
        pass
time.sleep(4)
EOF2
    hold=$!
    sleep 1
    ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$DAEMON_PID/stat"; }
    t0=$(ticks)
    sleep 2
    t1=$(ticks)
    t_ok "out of descriptors, the daemon does not spin ($((t1 - t0)) of $((2 * $(getconf CLK_TCK))) ticks in 2 s)" \
        test "$((t1 - t0))" -le "$(getconf CLK_TCK)"
    wait "$hold" || :
    prlimit --pid "$DAEMON_PID" --nofile="$soft":
    n=$(grep -c 'accept (accepting again in 1 s)' "$T_DIR/ldapdeskd.log" || :)
    t_ok "... it says so about once a second ($n lines), not in a flood" test "${n:-0}" -ge 1 -a "${n:-0}" -le 20
    sleep 1.5
    t_match '"status": *"ok"' "... and accepts again once descriptors are free" \
        curl -s --cacert "$LDAPDESK_CA" "$LDAPDESK_URL/v1/health"
else
    t_skip "out of descriptors" "no prlimit or python3"
fi

# ---- a logged-in operator's flood of refused requests ----------------------------------------
# Each refusal is a record for good; past 120 a minute they are throttled as failed logins are.
toka=$(login_token aud1)
DB=$(sed -n 's/^database = //p' "$T_DIR/d.conf" | head -n 1)
mark=$(sqlite3 "$DB" "SELECT max(id) FROM records")
urls=$(for _ in $(seq 150); do printf -- '-o /dev/null %s ' "$LDAPDESK_URL/v1/users/alice"; done)
# shellcheck disable=SC2086 # one option or URL per word
curl -s --cacert "$LDAPDESK_CA" -H "Authorization: Bearer $toka" -w '%{http_code}\n' $urls >"$T_DIR/flood.codes"
n403=$(grep -c '^403$' "$T_DIR/flood.codes" || true)
n429=$(grep -c '^429$' "$T_DIR/flood.codes" || true)
t_ok "aud1 (no helpdesk role) gets 403 for at most 120 status reads in a minute ($n403), 429 for the rest ($n429)" \
    test "$n403" -le 120 -a "$n429" -ge 30 -a "$((n403 + n429))" -eq 150
t_ok "they add at most 121 refusals to the log, not 150" \
    test "$(sqlite3 "$DB" "SELECT count(*) FROM records WHERE kind = 'outcome' AND id > $mark")" -le 121
for _ in $(seq 90); do
    n=$(sqlite3 "$DB" "SELECT detail FROM records WHERE id > $mark AND detail LIKE 'too many refused requests from this operator: %'" |
        sed -n 's/.*: \([0-9]*\) more refused.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
    [ "$n" -ge "$((n429 - 1))" ] && break
    sleep 0.5
done
t_eq "$n" "$((n429 - 1))" "within a tick the summary counts the 429s after the first (recorded on its own)"
t_eq "$(sqlite3 "$DB" "SELECT DISTINCT a.operator FROM records a JOIN records o ON o.attempt_id = a.id
    WHERE o.id > $mark AND o.detail LIKE 'too many refused requests from this operator: %'")" \
    aud1 "... recorded under aud1's name"
daemon_stop
t_eq "${DAEMON_RC:-none}" 0 "ldapdeskd exits 0"
t_absent "$LDAP_OP_PW" "no operator password in the daemon log" "$T_DIR/ldapdeskd.log"
t_done
