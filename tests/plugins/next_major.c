/* A plugin built for the next major ABI version: refused, naming both. */
#include "stub_engine.h"

STUB_PLUGIN(DYNAMO_BACKEND_ABI_VERSION + 1, sizeof(struct dynamo_backend_api), "next_major",
            stub_open, stub_get)
