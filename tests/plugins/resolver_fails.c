/* A resolver that fails every call with a message: the node must answer
 * the read with the siblings, log the message and count the failure. */
#include <dynamo/resolver_plugin.h>
#include <stdlib.h>
#include <string.h>

static int resolve(const char *key, size_t key_len, const dynamo_resolver_sibling *siblings,
                   size_t count, char **value, size_t *value_len, int *tombstone,
                   char **errmsg) {
  (void)key, (void)key_len, (void)siblings, (void)count, (void)value, (void)value_len;
  (void)tombstone;
  *errmsg = strdup("these siblings cannot be reconciled (resolver_fails)");
  return DYNAMO_RESOLVER_ERROR;
}

static const struct dynamo_resolver_api kApi = {
    DYNAMO_RESOLVER_ABI_VERSION, sizeof(struct dynamo_resolver_api), "resolver_fails", "1",
    resolve, free};

DYNAMO_RESOLVER_EXPORT const struct dynamo_resolver_api *dynamo_resolver_entry(void) {
  return &kApi;
}
