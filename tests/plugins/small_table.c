/* A plugin whose table claims to end before free_mem, as a build against an
 * older, shorter version-1 table would: the host must refuse it on size. */
#include <stddef.h>

#include "stub_engine.h"

STUB_PLUGIN(DYNAMO_BACKEND_ABI_VERSION, offsetof(struct dynamo_backend_api, free_mem),
            "small_table", stub_open, stub_get)
