/* A plugin whose table claims to end before free_mem, as a build against an
 * older, shorter version-1 table would: the host must refuse it on size. */
#include <stddef.h>

#include "stub_engine.h"

static const struct dynamo_backend_api kApi = {
    .abi_version = DYNAMO_BACKEND_ABI_VERSION,
    .struct_size = offsetof(struct dynamo_backend_api, free_mem),
    .name = "small_table",
    .version = "0",
    .capabilities = 0,
    .open = stub_open,
    .close = stub_close,
    .get = stub_get,
    .put = stub_put,
    .remove = stub_remove,
    .scan = stub_scan,
    .sync = stub_sync,
    .stats = stub_stats,
    .free_mem = stub_free_mem,
};

DYNAMO_PLUGIN_EXPORT const struct dynamo_backend_api *dynamo_backend_entry(void) { return &kApi; }
