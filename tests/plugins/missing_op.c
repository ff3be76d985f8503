/* A plugin with a correct header but no get operation: the host must refuse
 * it at load time, naming the operation, rather than crash on the first get. */
#include "stub_engine.h"

STUB_PLUGIN(DYNAMO_BACKEND_ABI_VERSION, sizeof(struct dynamo_backend_api), "missing_op",
            stub_open, NULL)
