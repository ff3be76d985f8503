/* A plugin whose entry point returns no table at all. */
#include <stddef.h>

#include "dynamo/backend_plugin.h"

DYNAMO_PLUGIN_EXPORT const struct dynamo_backend_api *dynamo_backend_entry(void) { return NULL; }
