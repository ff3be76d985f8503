/* A sound plugin whose sync and stats fail with an I/O error and a message
 * (allocated here, released by the host through free_mem): the host must
 * pass each message on, and free it. */
#include "stub_engine.h"

static dynamo_backend_status failing_sync(dynamo_backend *be, char **errmsg) {
  (void)be;
  if (errmsg != NULL) *errmsg = stub_strdup("deliberate sync failure");
  return DYNAMO_BACKEND_IO_ERROR;
}

static dynamo_backend_status failing_stats(dynamo_backend *be, char **json, char **errmsg) {
  (void)be;
  (void)json;
  if (errmsg != NULL) *errmsg = stub_strdup("deliberate stats failure");
  return DYNAMO_BACKEND_IO_ERROR;
}

static const struct dynamo_backend_api kApi = {
    .abi_version = DYNAMO_BACKEND_ABI_VERSION,
    .struct_size = sizeof(struct dynamo_backend_api),
    .name = "calls_fail",
    .version = "0",
    .capabilities = 0,
    .open = stub_open,
    .close = stub_close,
    .get = stub_get,
    .put = stub_put,
    .remove = stub_remove,
    .scan = stub_scan,
    .sync = failing_sync,
    .stats = failing_stats,
    .free_mem = stub_free_mem,
    .put_batch = NULL,
};

DYNAMO_PLUGIN_EXPORT const struct dynamo_backend_api *dynamo_backend_entry(void) { return &kApi; }
