/*
 * dynamo storage engine plugin ABI.
 *
 * A storage engine is a shared object that exports exactly one symbol,
 *
 *     const struct dynamo_backend_api *dynamo_backend_entry(void);
 *
 * returning a table of function pointers that lives as long as the object is
 * loaded. The host (dynamod) refuses the plugin, naming both versions, unless
 * abi_version equals DYNAMO_BACKEND_ABI_VERSION (the major version).
 *
 * Within a major version the table only grows: each minor version appends a
 * block of fields, and struct_size tells the host which blocks a plugin has.
 * A plugin built against an older minor version (a shorter table) loads, and
 * the host treats the fields past its struct_size as absent (NULL); a plugin
 * built against a newer minor version loads too, and the host uses only the
 * fields it knows. The table must hold at least the 1.0 block
 * (DYNAMO_BACKEND_API_SIZE_1_0 bytes). Optional operations may also be NULL
 * in a table that has them.
 *
 * Rules of the ABI (after sqlite3_vfs and MySQL's plugin.h):
 *  - fields are only ever appended; each block says which version added it;
 *  - every call that can fail returns a dynamo_backend_status and, on failure,
 *    may set *errmsg to a NUL-terminated string allocated by the plugin, which
 *    the host releases with the plugin's free_mem();
 *  - bytes are (pointer, length) pairs and may contain NUL;
 *  - the engine stores values as opaque bytes: the host encodes the versions
 *    (vector clocks, siblings) itself and only asks the engine to keep them;
 *  - every key is stored with a 64-bit key hash computed by the host (the top
 *    64 bits of MD5(key)); scans select keys by an inclusive range of that
 *    hash, which is how the host walks one partition for anti-entropy,
 *    hinted handoff and state transfer;
 *  - the host calls the engine from several worker threads at once, never
 *    from its network loop, unless the engine declares
 *    DYNAMO_BACKEND_CAP_NONBLOCKING (every call may run on the loop) or
 *    DYNAMO_BACKEND_CAP_SINGLE_KEY_INLINE (put, remove and try_get may run on
 *    the loop; get, scan, sync and put_batch stay on workers). Engines must
 *    be thread-safe.
 */
#ifndef DYNAMO_BACKEND_PLUGIN_H_
#define DYNAMO_BACKEND_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DYNAMO_BACKEND_ABI_VERSION 1u /* the major version: a change here breaks plugins */
#define DYNAMO_BACKEND_ABI_MINOR 2u   /* the newest block this header declares */
#define DYNAMO_BACKEND_ENTRY_SYMBOL "dynamo_backend_entry"

#if defined(__GNUC__)
#define DYNAMO_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define DYNAMO_PLUGIN_EXPORT
#endif

typedef enum dynamo_backend_status {
  DYNAMO_BACKEND_OK = 0,
  DYNAMO_BACKEND_NOT_FOUND = 1,   /* get/remove of a key the engine does not hold */
  DYNAMO_BACKEND_INVALID = 2,     /* bad option or argument */
  DYNAMO_BACKEND_IO_ERROR = 3,    /* the operating system or the server refused */
  DYNAMO_BACKEND_CORRUPTION = 4,  /* stored bytes fail their checksum */
  DYNAMO_BACKEND_UNAVAILABLE = 5, /* temporarily unusable (e.g. server down): retry */
  DYNAMO_BACKEND_UNSUPPORTED = 6, /* operation not provided by this engine */
  DYNAMO_BACKEND_WOULD_BLOCK = 7  /* try_get only: the value is not in memory (ABI 1.2) */
} dynamo_backend_status;

/* Capability bits (dynamo_backend_api.capabilities). */
#define DYNAMO_BACKEND_CAP_NONBLOCKING 0x1u /* calls never block: may run on the loop */
#define DYNAMO_BACKEND_CAP_DURABLE 0x2u     /* data survives close/open and a crash */
/* put and remove return without waiting for a device (data reaches the page
 * cache; a background thread makes it durable), and try_get answers
 * DYNAMO_BACKEND_WOULD_BLOCK rather than wait: the host may make these calls
 * on its network loop. An engine declares it per open handle, through
 * handle_capabilities(), since it may depend on options. (ABI 1.2) */
#define DYNAMO_BACKEND_CAP_SINGLE_KEY_INLINE 0x4u

/* Opaque engine handle, created by open(). */
typedef struct dynamo_backend dynamo_backend;

/* One option, passed through from --backend-opt KEY=VALUE. The host also
 * passes "data_dir" (the node's --data-dir) to every engine. */
typedef struct dynamo_backend_option {
  const char *key;
  const char *value;
} dynamo_backend_option;

/* One key and value of put_batch(); key_hash as for put(). (ABI 1.1) */
typedef struct dynamo_backend_item {
  const char *key;
  size_t key_len;
  uint64_t key_hash;
  const char *value;
  size_t value_len;
} dynamo_backend_item;

/* Called by scan() once per key; return non-zero to stop the scan early.
 * The bytes are only valid during the call. */
typedef int (*dynamo_backend_scan_fn)(void *ctx, const char *key, size_t key_len,
                                      uint64_t key_hash, const char *value, size_t value_len);

struct dynamo_backend_api {
  /* ---- version 1 ---- */
  uint32_t abi_version; /* DYNAMO_BACKEND_ABI_VERSION the plugin was built with */
  uint32_t struct_size; /* sizeof(struct dynamo_backend_api) in the plugin */
  const char *name;     /* short engine name, e.g. "file" */
  const char *version;  /* the engine's own version string */
  uint64_t capabilities;

  /* Opens an engine. On success sets *out. */
  dynamo_backend_status (*open)(const dynamo_backend_option *options, size_t option_count,
                                dynamo_backend **out, char **errmsg);
  /* Flushes and releases everything; the handle is invalid afterwards. */
  void (*close)(dynamo_backend *be);

  /* On OK sets *value (allocated by the plugin, released with free_mem) and
   * *value_len. NOT_FOUND when the key is absent. */
  dynamo_backend_status (*get)(dynamo_backend *be, const char *key, size_t key_len,
                               char **value, size_t *value_len, char **errmsg);
  /* Stores value under key, replacing any previous value. */
  dynamo_backend_status (*put)(dynamo_backend *be, const char *key, size_t key_len,
                               uint64_t key_hash, const char *value, size_t value_len,
                               char **errmsg);
  /* Removes key. NOT_FOUND when the key is absent. */
  dynamo_backend_status (*remove)(dynamo_backend *be, const char *key, size_t key_len,
                                  char **errmsg);
  /* Calls fn for every key whose key_hash lies in [hash_lo, hash_hi], in no
   * particular order. Keys written during the scan may or may not be seen. */
  dynamo_backend_status (*scan)(dynamo_backend *be, uint64_t hash_lo, uint64_t hash_hi,
                                dynamo_backend_scan_fn fn, void *ctx, char **errmsg);
  /* Makes every completed put/remove durable. */
  dynamo_backend_status (*sync)(dynamo_backend *be, char **errmsg);
  /* Sets *json to a JSON object of engine statistics (allocated by the plugin). */
  dynamo_backend_status (*stats)(dynamo_backend *be, char **json, char **errmsg);
  /* Releases memory the plugin returned (values, JSON, error messages). */
  void (*free_mem)(void *p);

  /* ---- version 1.1 (optional: may be NULL) ---- */
  /* Stores count (key, value) pairs, as put() would one by one, and returns
   * OK only when all were stored; on failure some may have been. The host
   * falls back to put() when this is absent. */
  dynamo_backend_status (*put_batch)(dynamo_backend *be, const dynamo_backend_item *items,
                                     size_t count, char **errmsg);

  /* ---- version 1.2 (optional: may be NULL) ---- */
  /* The capabilities of this open engine, which may depend on its options;
   * the table's capabilities are used when this is absent. */
  uint64_t (*handle_capabilities)(dynamo_backend *be);
  /* As get(), but never waits for a device: DYNAMO_BACKEND_WOULD_BLOCK when
   * the value cannot be had from memory (the page cache) at once; the host
   * then calls get() from a worker. Required with
   * DYNAMO_BACKEND_CAP_SINGLE_KEY_INLINE. */
  dynamo_backend_status (*try_get)(dynamo_backend *be, const char *key, size_t key_len,
                                   char **value, size_t *value_len, char **errmsg);
};

/* The size of a table with the version 1.0 block only: the least a plugin
 * may declare in struct_size. */
#define DYNAMO_BACKEND_API_SIZE_1_0 offsetof(struct dynamo_backend_api, put_batch)

/* The one exported entry point. */
typedef const struct dynamo_backend_api *(*dynamo_backend_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* DYNAMO_BACKEND_PLUGIN_H_ */
