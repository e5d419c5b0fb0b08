/*
 * ldapconn.h — one LDAP connection for the bench drivers that talk to slapd
 * themselves (floor, relay): connect, StartTLS, simple bind, blocking, before
 * the clock starts.
 */
#ifndef LDAPDESK_BENCH_LDAPCONN_H
#define LDAPDESK_BENCH_LDAPCONN_H

#include <ldap.h>

/* Opens uri, StartTLS against ca (NULL: plain LDAP), binds as bind_dn with pw.
 * Return: 0 with *ld (the caller unbinds it) and its descriptor *fd, or -1
 * after printing "who: uri: error" on stderr (*ld may then be set: unbind it). */
int bench_ldap_open(const char *who, const char *uri, const char *ca, const char *bind_dn,
                    const char *pw, LDAP **ld, int *fd);

#endif
