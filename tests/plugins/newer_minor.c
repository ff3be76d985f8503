/* A plugin built against a newer minor ABI than this host knows: its table
 * is longer than the host's. The host must load it and use the fields it
 * knows, put_batch included. */
#include "stub_engine.h"

STUB_PLUGIN_WITH_BATCH(DYNAMO_BACKEND_ABI_VERSION, sizeof(struct dynamo_backend_api) + 64,
                       "newer_minor")
