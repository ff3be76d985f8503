/*
 * cart_resolver.c: the shopping cart of the Dynamo paper (section 4.4) as a
 * server-side resolver (docs/resolvers.md). cart.c reconciles a cart's
 * siblings in the client; with this plugin the node that coordinates a read
 * does it, and writes the merged cart back, so every client reads one cart.
 *
 * A cart is one value, its items separated by commas: "apple,book,pen". The
 * merge is the paper's: the union of the items of every sibling, so an item
 * added to the cart is never lost (and, as in the paper, one removed
 * concurrently with another change may come back). A sibling that is a
 * delete adds no item; when every sibling is one, the cart stays deleted.
 * The items come out sorted, each once, so every coordinator that merges
 * the same siblings writes the same bytes.
 *
 *   dynamod ... --resolver cart/=/path/to/cart_resolver.so
 *
 * Build with an installed libdynamo-client-dev (only the header is needed):
 *   cc -std=c11 -shared -fPIC cart_resolver.c -o cart_resolver.so
 */
#include <dynamo/resolver_plugin.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *bytes;
  size_t len;
} item_t;

static int compare_items(const void *pa, const void *pb) {
  const item_t *a = pa, *b = pb;
  const size_t n = a->len < b->len ? a->len : b->len;
  const int c = n == 0 ? 0 : memcmp(a->bytes, b->bytes, n);
  if (c != 0) return c;
  return a->len < b->len ? -1 : a->len > b->len;
}

static char *copy_text(const char *text) {
  char *out = malloc(strlen(text) + 1);
  if (out != NULL) strcpy(out, text);
  return out;
}

static int resolve(const char *key, size_t key_len, const dynamo_resolver_sibling *siblings,
                   size_t count, char **value, size_t *value_len, int *tombstone,
                   char **errmsg) {
  (void)key;
  (void)key_len;
  *value = NULL;
  *value_len = 0;
  *tombstone = 1;
  size_t most = 0; /* items at most: each value's commas plus one */
  for (size_t i = 0; i < count; ++i) {
    if (siblings[i].tombstone) continue;
    *tombstone = 0;
    most += 1;
    for (size_t j = 0; j < siblings[i].value_len; ++j) most += siblings[i].value[j] == ',';
  }
  if (*tombstone) return DYNAMO_RESOLVER_OK;
  item_t *items = malloc(most * sizeof(item_t));
  if (items == NULL) {
    *errmsg = copy_text("cart: out of memory");
    return DYNAMO_RESOLVER_ERROR;
  }
  size_t n = 0, bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    if (siblings[i].tombstone) continue;
    const char *p = siblings[i].value, *end = p + siblings[i].value_len;
    while (p < end) {
      const char *comma = memchr(p, ',', (size_t)(end - p));
      const char *stop = comma != NULL ? comma : end;
      if (stop > p) {
        items[n].bytes = p;
        items[n].len = (size_t)(stop - p);
        bytes += items[n].len + 1;
        ++n;
      }
      p = comma != NULL ? comma + 1 : end;
    }
  }
  qsort(items, n, sizeof(item_t), compare_items);
  char *out = malloc(bytes > 0 ? bytes : 1);
  if (out == NULL) {
    free(items);
    *errmsg = copy_text("cart: out of memory");
    return DYNAMO_RESOLVER_ERROR;
  }
  size_t len = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && compare_items(&items[i - 1], &items[i]) == 0) continue;
    if (len > 0) out[len++] = ',';
    memcpy(out + len, items[i].bytes, items[i].len);
    len += items[i].len;
  }
  free(items);
  *value = out;
  *value_len = len;
  return DYNAMO_RESOLVER_OK;
}

static const struct dynamo_resolver_api api = {
    DYNAMO_RESOLVER_ABI_VERSION, sizeof(struct dynamo_resolver_api), "cart", "1.0", resolve, free,
};

DYNAMO_RESOLVER_EXPORT const struct dynamo_resolver_api *dynamo_resolver_entry(void) {
  return &api;
}
