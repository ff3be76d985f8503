/* A shared object that is not a dynamo engine: it exports a function, but not
 * dynamo_backend_entry. */
#include "dynamo/backend_plugin.h"

DYNAMO_PLUGIN_EXPORT int not_a_dynamo_engine(void) { return 42; }
