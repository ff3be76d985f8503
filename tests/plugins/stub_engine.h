/* Operations shared by the deliberately broken test plugins: a valid but
 * useless engine. Only the table each plugin exports is wrong on purpose.
 * static inline so a plugin that does not use them gets no warning. */
#ifndef DYNAMO_TESTS_PLUGINS_STUB_ENGINE_H_
#define DYNAMO_TESTS_PLUGINS_STUB_ENGINE_H_

#include <stdlib.h>
#include <string.h>

#include "dynamo/backend_plugin.h"

struct dynamo_backend {
  int unused;
};

/* strdup is POSIX, not ISO C: keep the plugins strict C11. */
static inline char *stub_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *copy = (char *)malloc(n);
  if (copy != NULL) memcpy(copy, s, n);
  return copy;
}

static inline dynamo_backend_status stub_open(const dynamo_backend_option *options,
                                              size_t option_count, dynamo_backend **out,
                                              char **errmsg) {
  (void)options;
  (void)option_count;
  (void)errmsg;
  *out = (dynamo_backend *)calloc(1, sizeof(dynamo_backend));
  return *out ? DYNAMO_BACKEND_OK : DYNAMO_BACKEND_IO_ERROR;
}

static inline void stub_close(dynamo_backend *be) { free(be); }

static inline dynamo_backend_status stub_get(dynamo_backend *be, const char *key, size_t key_len,
                                             char **value, size_t *value_len, char **errmsg) {
  (void)be;
  (void)key;
  (void)key_len;
  (void)value;
  (void)value_len;
  (void)errmsg;
  return DYNAMO_BACKEND_NOT_FOUND;
}

static inline dynamo_backend_status stub_put(dynamo_backend *be, const char *key, size_t key_len,
                                             uint64_t key_hash, const char *value,
                                             size_t value_len, char **errmsg) {
  (void)be;
  (void)key;
  (void)key_len;
  (void)key_hash;
  (void)value;
  (void)value_len;
  (void)errmsg;
  return DYNAMO_BACKEND_UNSUPPORTED;
}

static inline dynamo_backend_status stub_remove(dynamo_backend *be, const char *key,
                                                size_t key_len, char **errmsg) {
  (void)be;
  (void)key;
  (void)key_len;
  (void)errmsg;
  return DYNAMO_BACKEND_NOT_FOUND;
}

static inline dynamo_backend_status stub_scan(dynamo_backend *be, uint64_t hash_lo,
                                              uint64_t hash_hi, dynamo_backend_scan_fn fn,
                                              void *ctx, char **errmsg) {
  (void)be;
  (void)hash_lo;
  (void)hash_hi;
  (void)fn;
  (void)ctx;
  (void)errmsg;
  return DYNAMO_BACKEND_OK;
}

static inline dynamo_backend_status stub_sync(dynamo_backend *be, char **errmsg) {
  (void)be;
  (void)errmsg;
  return DYNAMO_BACKEND_OK;
}

static inline dynamo_backend_status stub_stats(dynamo_backend *be, char **json, char **errmsg) {
  (void)be;
  (void)errmsg;
  *json = stub_strdup("{}");
  return *json ? DYNAMO_BACKEND_OK : DYNAMO_BACKEND_IO_ERROR;
}

static inline void stub_free_mem(void *p) { free(p); }

/* put_batch (ABI 1.1) that stores nothing and answers OK: a host that gets
 * OK from a batch of a stub whose put() is UNSUPPORTED called this. */
static inline dynamo_backend_status stub_put_batch(dynamo_backend *be,
                                                   const dynamo_backend_item *items,
                                                   size_t count, char **errmsg) {
  (void)be;
  (void)items;
  (void)count;
  (void)errmsg;
  return DYNAMO_BACKEND_OK;
}

/* Defines the exported table and entry point of a stub plugin; each broken
 * plugin differs from a sound one only in the arguments it passes. */
#define STUB_PLUGIN_TABLE(ABI_VERSION, STRUCT_SIZE, NAME, OPEN, GET, PUT_BATCH)          \
  static const struct dynamo_backend_api kApi = {                                       \
      .abi_version = (ABI_VERSION),                                                     \
      .struct_size = (STRUCT_SIZE),                                                     \
      .name = (NAME),                                                                   \
      .version = "0",                                                                   \
      .capabilities = 0,                                                                \
      .open = (OPEN),                                                                   \
      .close = stub_close,                                                              \
      .get = (GET),                                                                     \
      .put = stub_put,                                                                  \
      .remove = stub_remove,                                                            \
      .scan = stub_scan,                                                                \
      .sync = stub_sync,                                                                \
      .stats = stub_stats,                                                              \
      .free_mem = stub_free_mem,                                                        \
      .put_batch = (PUT_BATCH),                                                         \
  };                                                                                    \
  DYNAMO_PLUGIN_EXPORT const struct dynamo_backend_api *dynamo_backend_entry(void) {    \
    return &kApi;                                                                       \
  }

#define STUB_PLUGIN(ABI_VERSION, STRUCT_SIZE, NAME, OPEN, GET) \
  STUB_PLUGIN_TABLE(ABI_VERSION, STRUCT_SIZE, NAME, OPEN, GET, NULL)

/* As STUB_PLUGIN, with a put_batch in the table (whatever STRUCT_SIZE says). */
#define STUB_PLUGIN_WITH_BATCH(ABI_VERSION, STRUCT_SIZE, NAME) \
  STUB_PLUGIN_TABLE(ABI_VERSION, STRUCT_SIZE, NAME, stub_open, stub_get, stub_put_batch)

#endif /* DYNAMO_TESTS_PLUGINS_STUB_ENGINE_H_ */
