/*
 * dynamo resolver plugin ABI (DESIGN.md 3.8).
 *
 * A resolver turns the siblings of one key (causally unrelated versions that
 * concurrent writes left) into one version. The coordinator of a read calls
 * it when the versions it gathered are two or more, answers the read with
 * the result, and writes the result back with the read's context, so that
 * the replicas converge on it.
 *
 * A resolver is a shared object exporting one symbol:
 *
 *   DYNAMO_RESOLVER_EXPORT const struct dynamo_resolver_api *dynamo_resolver_entry(void);
 *
 * The table's first fields are the ABI version and the table's size, as with
 * storage engines (dynamo/backend_plugin.h): a plugin built for another
 * version, or whose table is too small, is refused with a message naming
 * both versions.
 *
 * Rules a resolver must keep (docs/resolvers.md):
 *  - pure: the result depends on the key and the siblings alone (no clock,
 *    no randomness, no state between calls, no I/O);
 *  - deterministic and commutative: the same siblings in any order give the
 *    same bytes, so that two coordinators resolving the same siblings write
 *    back the same value;
 *  - thread-safe and quick: it runs on the node's network loop.
 * A resolver that cannot resolve returns DYNAMO_RESOLVER_ERROR with a
 * message; the read then returns the siblings unresolved, and the error is
 * logged and counted.
 */
#ifndef DYNAMO_RESOLVER_PLUGIN_H_
#define DYNAMO_RESOLVER_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DYNAMO_RESOLVER_ABI_VERSION 1
#define DYNAMO_RESOLVER_ENTRY_SYMBOL "dynamo_resolver_entry"

#if defined(__GNUC__)
#define DYNAMO_RESOLVER_EXPORT __attribute__((visibility("default")))
#else
#define DYNAMO_RESOLVER_EXPORT
#endif

#define DYNAMO_RESOLVER_OK 0
#define DYNAMO_RESOLVER_ERROR 1

/* One sibling. A tombstone (a delete) has no value (value_len 0). node and
 * timestamp_ms are those of the newest event of the version's clock: the
 * write that created it (the id of the node that took the write, and that
 * node's wall clock in milliseconds since the epoch). The bytes are valid
 * during the call. */
typedef struct dynamo_resolver_sibling {
  const char *value;
  size_t value_len;
  int tombstone;
  uint64_t timestamp_ms;
  const char *node;
  size_t node_len;
} dynamo_resolver_sibling;

struct dynamo_resolver_api {
  uint32_t abi_version; /* DYNAMO_RESOLVER_ABI_VERSION the plugin was built with */
  uint32_t struct_size; /* sizeof(struct dynamo_resolver_api) in the plugin */
  const char *name;     /* short name, e.g. "lww" */
  const char *version;  /* the resolver's own version string */

  /* Resolves count (>= 2) siblings of key. On DYNAMO_RESOLVER_OK sets
   * *tombstone (non-zero: the key is deleted, *value is ignored) or *value
   * (allocated by the plugin, released with free_mem; may be NULL when
   * *value_len is 0) and *value_len. On DYNAMO_RESOLVER_ERROR may set
   * *errmsg (released with free_mem). */
  int (*resolve)(const char *key, size_t key_len, const dynamo_resolver_sibling *siblings,
                 size_t count, char **value, size_t *value_len, int *tombstone, char **errmsg);
  /* Releases memory the plugin returned (values, error messages). */
  void (*free_mem)(void *p);
};

/* The one exported entry point. */
typedef const struct dynamo_resolver_api *(*dynamo_resolver_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* DYNAMO_RESOLVER_PLUGIN_H_ */
