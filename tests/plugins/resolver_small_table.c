/* A resolver whose table claims fewer bytes than ABI version 1 needs. */
#include <dynamo/resolver_plugin.h>
#include <stddef.h>
#include <stdlib.h>

static const struct dynamo_resolver_api kApi = {
    DYNAMO_RESOLVER_ABI_VERSION, offsetof(struct dynamo_resolver_api, resolve),
    "resolver_small_table", "1", NULL, free};

DYNAMO_RESOLVER_EXPORT const struct dynamo_resolver_api *dynamo_resolver_entry(void) {
  return &kApi;
}
