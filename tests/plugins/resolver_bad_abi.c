/* A resolver built for a future resolver ABI (version 999): refused, naming
 * both versions, before anything in its table is called. */
#include <dynamo/resolver_plugin.h>
#include <stdlib.h>

static int resolve(const char *key, size_t key_len, const dynamo_resolver_sibling *siblings,
                   size_t count, char **value, size_t *value_len, int *tombstone,
                   char **errmsg) {
  (void)key, (void)key_len, (void)siblings, (void)count, (void)value, (void)value_len;
  (void)tombstone, (void)errmsg;
  abort(); /* never called */
}

static const struct dynamo_resolver_api kApi = {999, sizeof(struct dynamo_resolver_api),
                                                "resolver_bad_abi", "1", resolve, free};

DYNAMO_RESOLVER_EXPORT const struct dynamo_resolver_api *dynamo_resolver_entry(void) {
  return &kApi;
}
