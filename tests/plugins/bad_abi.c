/* A plugin built for a future ABI (version 999): the host must refuse it,
 * naming both versions, before calling anything in the table. */
#include "stub_engine.h"

STUB_PLUGIN(999, sizeof(struct dynamo_backend_api), "bad_abi", stub_open, stub_get)
