/* A valid plugin whose open always fails with an I/O error and a message
 * (allocated here, released by the host through free_mem). */
#include "stub_engine.h"

static dynamo_backend_status failing_open(const dynamo_backend_option *options,
                                          size_t option_count, dynamo_backend **out,
                                          char **errmsg) {
  (void)options;
  (void)option_count;
  *out = NULL;
  if (errmsg != NULL) *errmsg = stub_strdup("deliberate open failure");
  return DYNAMO_BACKEND_IO_ERROR;
}

static const struct dynamo_backend_api kApi = {
    .abi_version = DYNAMO_BACKEND_ABI_VERSION,
    .struct_size = sizeof(struct dynamo_backend_api),
    .name = "open_fails",
    .version = "0",
    .capabilities = 0,
    .open = failing_open,
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
