/* A plugin built against ABI 1.0: its table ends at free_mem, before the 1.1
 * block. The host must load it and never read past its struct_size: the
 * put_batch this table happens to carry must not be called. */
#include "stub_engine.h"

STUB_PLUGIN_WITH_BATCH(DYNAMO_BACKEND_ABI_VERSION, DYNAMO_BACKEND_API_SIZE_1_0, "old_minor")
