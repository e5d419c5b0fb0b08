/*
 * ucache.c — uid -> DN cache (see ucache.h). Direct-mapped: one slot per
 * hash, no lists to walk or evict, memory fixed at slots entries.
 */
#include <stdlib.h>
#include <string.h>

#include "dir.h"
#include "ucache.h"

struct slot {
	char *uid, *dn, *department;
	time_t at;
};

struct ucache {
	struct slot *slots;
	unsigned n;
	int ttl;
};

struct ucache *ucache_new(unsigned slots, int ttl)
{
	struct ucache *c = calloc(1, sizeof(*c));

	if (c == NULL || slots == 0 || (c->slots = calloc(slots, sizeof(*c->slots))) == NULL) {
		free(c);
		return NULL;
	}
	c->n = slots;
	c->ttl = ttl;
	return c;
}

static void slot_clear(struct slot *s)
{
	free(s->uid);
	free(s->dn);
	free(s->department);
	memset(s, 0, sizeof(*s));
}

void ucache_free(struct ucache *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < c->n; i++)
		slot_clear(&c->slots[i]);
	free(c->slots);
	free(c);
}

/* ASCII case-folded copy (uids compare case-insensitively in the schema). */
static char *fold(const char *s)
{
	char *out = strdup(s);

	for (char *p = out; p != NULL && *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return out;
}

/* FNV-1a over the folded uid. */
static struct slot *slot_of(struct ucache *c, const char *folded)
{
	unsigned long h = 2166136261UL;

	for (const unsigned char *p = (const unsigned char *)folded; *p != '\0'; p++)
		h = (h ^ *p) * 16777619UL;
	return &c->slots[h % c->n];
}

void ucache_put(struct ucache *c, const char *uid, const char *dn, const char *department,
                time_t now)
{
	char *k = fold(uid);
	struct slot *s;

	if (k == NULL)
		return;
	s = slot_of(c, k);
	slot_clear(s);
	s->uid = k;
	s->dn = strdup(dn);
	s->department = department != NULL ? strdup(department) : NULL;
	s->at = now;
	if (s->dn == NULL || (department != NULL && s->department == NULL))
		slot_clear(s);
}

bool ucache_get(struct ucache *c, const char *uid, time_t now, char **dn, char **department)
{
	char *k = fold(uid);
	struct slot *s = k != NULL ? slot_of(c, k) : NULL;
	bool hit = s != NULL && s->uid != NULL && strcmp(s->uid, k) == 0 && now - s->at < c->ttl &&
	           now >= s->at;

	free(k);
	if (!hit)
		return false;
	*dn = strdup(s->dn);
	*department = s->department != NULL ? strdup(s->department) : NULL;
	if (*dn == NULL || (s->department != NULL && *department == NULL)) {
		free(*dn);
		free(*department);
		return false;
	}
	return true;
}

void ucache_drop(struct ucache *c, const char *dn)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->slots[i].dn != NULL && (dn == NULL || dir_dn_under(c->slots[i].dn, dn)))
			slot_clear(&c->slots[i]);
}
