/*
 * ldapconn.c — one bench LDAP connection (see ldapconn.h).
 */
#include "ldapconn.h"

#include <stdio.h>

int bench_ldap_open(const char *who, const char *uri, const char *ca, const char *bind_dn,
                    const char *pw, LDAP **ld, int *fd)
{
	int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0, rc;
	struct berval cred;

	*fd = -1;
	if ((rc = ldap_initialize(ld, uri)) != LDAP_SUCCESS)
		goto fail;
	ldap_set_option(*ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	ldap_set_option(*ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	if (ca != NULL) {
		ldap_set_option(*ld, LDAP_OPT_X_TLS_CACERTFILE, ca);
		ldap_set_option(*ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
		ldap_set_option(*ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
		if ((rc = ldap_start_tls_s(*ld, NULL, NULL)) != LDAP_SUCCESS)
			goto fail;
	}
	ber_str2bv(pw, 0, 0, &cred);
	rc = ldap_sasl_bind_s(*ld, bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS)
		goto fail;
	if (ldap_get_option(*ld, LDAP_OPT_DESC, fd) != LDAP_OPT_SUCCESS || *fd < 0) {
		rc = LDAP_OTHER;
		goto fail;
	}
	return 0;
fail:
	fprintf(stderr, "%s: %s: %s\n", who, uri, ldap_err2string(rc));
	return -1;
}
