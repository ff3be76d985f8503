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

STUB_PLUGIN(DYNAMO_BACKEND_ABI_VERSION, sizeof(struct dynamo_backend_api), "open_fails",
            failing_open, stub_get)
