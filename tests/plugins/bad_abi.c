/* A plugin built for a future ABI (version 999): the host must refuse it,
 * naming both versions, before calling anything in the table. */
#include "stub_engine.h"

static const struct dynamo_backend_api kApi = {
    .abi_version = 999,
    .struct_size = sizeof(struct dynamo_backend_api),
    .name = "bad_abi",
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
