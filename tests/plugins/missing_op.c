/* A plugin with a correct header but no get operation: the host must refuse
 * it at load time, naming the operation, rather than crash on the first get. */
#include "stub_engine.h"

static const struct dynamo_backend_api kApi = {
    .abi_version = DYNAMO_BACKEND_ABI_VERSION,
    .struct_size = sizeof(struct dynamo_backend_api),
    .name = "missing_op",
    .version = "0",
    .capabilities = 0,
    .open = stub_open,
    .close = stub_close,
    .get = NULL,
    .put = stub_put,
    .remove = stub_remove,
    .scan = stub_scan,
    .sync = stub_sync,
    .stats = stub_stats,
    .free_mem = stub_free_mem,
};

DYNAMO_PLUGIN_EXPORT const struct dynamo_backend_api *dynamo_backend_entry(void) { return &kApi; }
