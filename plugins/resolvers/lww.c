/*
 * lww: last writer wins (DESIGN.md 3.8). Of the siblings, the one whose
 * newest clock entry (the write that made it) has the latest timestamp; on
 * equal timestamps the greater node name, then the greater value, so that
 * every coordinator picks the same sibling whatever the order. A tombstone
 * that wins deletes the key.
 */
#include <dynamo/resolver_plugin.h>
#include <stdlib.h>
#include <string.h>

static int compare_bytes(const char *a, size_t an, const char *b, size_t bn) {
  const size_t n = an < bn ? an : bn;
  const int c = n == 0 ? 0 : memcmp(a, b, n);
  if (c != 0) return c;
  return an < bn ? -1 : an > bn;
}

/* > 0 when a is later than b. */
static int later(const dynamo_resolver_sibling *a, const dynamo_resolver_sibling *b) {
  if (a->timestamp_ms != b->timestamp_ms) return a->timestamp_ms > b->timestamp_ms ? 1 : -1;
  const int c = compare_bytes(a->node, a->node_len, b->node, b->node_len);
  if (c != 0) return c;
  if (a->tombstone != b->tombstone) return a->tombstone ? 1 : -1; /* a delete wins a tie */
  return compare_bytes(a->value, a->value_len, b->value, b->value_len);
}

static int resolve(const char *key, size_t key_len, const dynamo_resolver_sibling *siblings,
                   size_t count, char **value, size_t *value_len, int *tombstone,
                   char **errmsg) {
  (void)key;
  (void)key_len;
  if (count == 0) {
    *errmsg = strdup("no siblings to resolve");
    return DYNAMO_RESOLVER_ERROR;
  }
  const dynamo_resolver_sibling *best = &siblings[0];
  for (size_t i = 1; i < count; ++i) {
    if (later(&siblings[i], best) > 0) best = &siblings[i];
  }
  *tombstone = best->tombstone;
  *value = NULL;
  *value_len = 0;
  if (best->tombstone || best->value_len == 0) return DYNAMO_RESOLVER_OK;
  *value = malloc(best->value_len);
  if (*value == NULL) {
    *errmsg = strdup("out of memory");
    return DYNAMO_RESOLVER_ERROR;
  }
  memcpy(*value, best->value, best->value_len);
  *value_len = best->value_len;
  return DYNAMO_RESOLVER_OK;
}

static const struct dynamo_resolver_api kApi = {
    DYNAMO_RESOLVER_ABI_VERSION, sizeof(struct dynamo_resolver_api), "lww", "1.0", resolve, free,
};

DYNAMO_RESOLVER_EXPORT const struct dynamo_resolver_api *dynamo_resolver_entry(void) { return &kApi; }
