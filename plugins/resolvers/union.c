/*
 * union: a value is a set of members, one per line (separated by '\n'); the
 * result is the union of the live siblings' members, sorted bytewise, each
 * once, joined by '\n' (DESIGN.md 3.8). Empty members are dropped. A member
 * is never lost to a concurrent write; as with the paper's shopping cart, a
 * member removed concurrently with another change comes back. Tombstones
 * hold no members: when every sibling is one, the key stays deleted.
 */
#include <dynamo/resolver_plugin.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *bytes;
  size_t len;
} member;

static int compare_members(const void *pa, const void *pb) {
  const member *a = pa, *b = pb;
  const size_t n = a->len < b->len ? a->len : b->len;
  const int c = n == 0 ? 0 : memcmp(a->bytes, b->bytes, n);
  if (c != 0) return c;
  return a->len < b->len ? -1 : a->len > b->len;
}

static int fail(char **errmsg, const char *why, member *members) {
  free(members);
  *errmsg = strdup(why);
  return DYNAMO_RESOLVER_ERROR;
}

static int resolve(const char *key, size_t key_len, const dynamo_resolver_sibling *siblings,
                   size_t count, char **value, size_t *value_len, int *tombstone,
                   char **errmsg) {
  (void)key;
  (void)key_len;
  *value = NULL;
  *value_len = 0;
  *tombstone = 0;
  size_t total = 0, live = 0;
  for (size_t i = 0; i < count; ++i) {
    if (siblings[i].tombstone) continue;
    ++live;
    total += 1; /* members in a value: at most its newlines plus one */
    for (size_t j = 0; j < siblings[i].value_len; ++j) total += siblings[i].value[j] == '\n';
  }
  if (live == 0) {
    *tombstone = 1;
    return DYNAMO_RESOLVER_OK;
  }
  member *members = malloc(total * sizeof(member));
  if (members == NULL) return fail(errmsg, "out of memory", NULL);
  size_t n = 0;
  for (size_t i = 0; i < count; ++i) {
    if (siblings[i].tombstone) continue;
    const char *p = siblings[i].value, *end = p + siblings[i].value_len;
    while (p < end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      const char *stop = nl ? nl : end;
      if (stop > p) members[n++] = (member){p, (size_t)(stop - p)};
      p = nl ? nl + 1 : end;
    }
  }
  qsort(members, n, sizeof(member), compare_members);
  size_t out_len = 0, kept = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && compare_members(&members[i - 1], &members[i]) == 0) continue;
    out_len += members[i].len + (kept > 0);
    ++kept;
  }
  if (out_len > 0) {
    char *out = malloc(out_len);
    if (out == NULL) return fail(errmsg, "out of memory", members);
    char *w = out;
    kept = 0;
    for (size_t i = 0; i < n; ++i) {
      if (i > 0 && compare_members(&members[i - 1], &members[i]) == 0) continue;
      if (kept++ > 0) *w++ = '\n';
      memcpy(w, members[i].bytes, members[i].len);
      w += members[i].len;
    }
    *value = out;
    *value_len = out_len;
  }
  free(members);
  return DYNAMO_RESOLVER_OK;
}

static const struct dynamo_resolver_api kApi = {
    DYNAMO_RESOLVER_ABI_VERSION, sizeof(struct dynamo_resolver_api), "union", "1.0", resolve,
    free,
};

DYNAMO_RESOLVER_EXPORT const struct dynamo_resolver_api *dynamo_resolver_entry(void) { return &kApi; }
