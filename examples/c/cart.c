/*
 * cart.c: the shopping cart of the Dynamo paper (section 4.4) against the C
 * API of libdynamo-client.
 *
 * A cart is a list of items, stored as one value: "apple,book,pen". Two
 * shoppers add an item each to the same cart, both starting from the same
 * version, so neither write supersedes the other and the cluster keeps both
 * as siblings. The next reader sees the siblings, reconciles them the way
 * the paper's cart does (the union of their items: an added item is never
 * lost), and writes the union back with the context of its read, which
 * supersedes both. A last read shows one version.
 *
 *   cart [--mode server|client] [--key KEY] [--timeout-ms MS]
 *        [--key-pair FILE --server-public-key KEY|FILE] ENDPOINT...
 *
 * With CURVE on the nodes (docs/security.md), --key-pair is this client's
 * key pair (dynamoctl keygen) and --server-public-key the node's public key,
 * or its .pub file.
 *
 * ENDPOINT is a node, tcp://HOST:PORT or ipc://PATH; give one or more.
 * Without --key the cart is cart-<pid>-<time>, a fresh key each run.
 *
 * Build with the installed library:  cc -std=c11 cart.c -ldynamo-client
 *
 * Exit status: 0 when the cart was reconciled, 1 when a call failed (one
 * line on stderr), 2 for a usage error.
 */
#define _POSIX_C_SOURCE 200809L /* getpid */

#include <dynamo/dynamo.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- carts: sets of items, kept sorted ---------------------------------- */

typedef struct {
  char** items;
  size_t count;
  size_t cap;
} cart_t;

static void cart_free(cart_t* cart) {
  for (size_t i = 0; i < cart->count; ++i) free(cart->items[i]);
  free(cart->items);
  cart->items = NULL;
  cart->count = cart->cap = 0;
}

static int compare_items(const void* a, const void* b) {
  return strcmp(*(const char* const*)a, *(const char* const*)b);
}

/* Adds one item (len bytes at item) unless the cart has it. 0, or -1 when
   out of memory. */
static int cart_add(cart_t* cart, const char* item, size_t len) {
  for (size_t i = 0; i < cart->count; ++i) {
    if (strlen(cart->items[i]) == len && memcmp(cart->items[i], item, len) == 0) return 0;
  }
  if (cart->count == cart->cap) {
    size_t cap = cart->cap ? cart->cap * 2 : 8;
    char** items = realloc(cart->items, cap * sizeof *items);
    if (items == NULL) return -1;
    cart->items = items;
    cart->cap = cap;
  }
  char* copy = malloc(len + 1);
  if (copy == NULL) return -1;
  memcpy(copy, item, len);
  copy[len] = '\0';
  cart->items[cart->count++] = copy;
  qsort(cart->items, cart->count, sizeof *cart->items, compare_items);
  return 0;
}

/* Adds every item of a stored cart value ("a,b,c"; empty items skipped). */
static int cart_add_value(cart_t* cart, const char* value, size_t len) {
  size_t start = 0;
  for (size_t i = 0; i <= len; ++i) {
    if (i == len || value[i] == ',') {
      if (i > start && cart_add(cart, value + start, i - start) != 0) return -1;
      start = i + 1;
    }
  }
  return 0;
}

/* The cart as a value: its items joined by commas, NUL-terminated; NULL
   when out of memory. Free with free(). */
static char* cart_join(const cart_t* cart) {
  size_t len = 0;
  for (size_t i = 0; i < cart->count; ++i) len += strlen(cart->items[i]) + 1;
  char* out = malloc(len + 1);
  if (out == NULL) return NULL;
  char* p = out;
  for (size_t i = 0; i < cart->count; ++i) {
    if (i > 0) *p++ = ',';
    size_t n = strlen(cart->items[i]);
    memcpy(p, cart->items[i], n);
    p += n;
  }
  *p = '\0';
  return out;
}

/* ---- reporting ----------------------------------------------------------- */

/* Prints "cart: WHAT: CODE NAME: MESSAGE" to stderr, frees the message and
   returns the exit status for a failed call. */
static int failed(const char* what, int code, char* err) {
  fflush(stdout);
  fprintf(stderr, "cart: %s: %s: %s\n", what, dynamo_code_name(code),
          err != NULL ? err : "(no message)");
  dynamo_free(err);
  return 1;
}

static int out_of_memory(void) {
  fflush(stdout);
  fprintf(stderr, "cart: out of memory\n");
  return 1;
}

/* Prints the usage line (to stderr after a problem, else to stdout) and
   returns the exit status for a usage error. */
static int usage(const char* problem) {
  FILE* out = problem != NULL ? stderr : stdout;
  if (problem != NULL) fprintf(stderr, "cart: %s\n", problem);
  fputs(
      "usage: cart [--mode server|client] [--key KEY] [--timeout-ms MS]\n"
      "            [--key-pair FILE --server-public-key KEY|FILE] ENDPOINT...\n",
      out);
  return 2;
}

/* Writes value with context (NULL/0: none); the new context goes to
 *new_context when that is not NULL. */
static int put_cart(dynamo_client_t* client, const char* key, const char* value,
                    const char* context, size_t contextlen, char** new_context,
                    size_t* new_contextlen) {
  char* err = NULL;
  int rc = dynamo_put(client, key, strlen(key), value, strlen(value), context, contextlen,
                      new_context, new_contextlen, &err);
  if (rc != DYNAMO_OK) {
    char what[256];
    snprintf(what, sizeof what, "put %s", key);
    return failed(what, rc, err);
  }
  return 0;
}

/* Reads key into *result: 0 (found or not), else the exit status. */
static int get_cart(dynamo_client_t* client, const char* key, dynamo_result_t** result) {
  char* err = NULL;
  int rc = dynamo_get(client, key, strlen(key), result, &err);
  if (rc != DYNAMO_OK && rc != DYNAMO_NOT_FOUND) {
    char what[256];
    snprintf(what, sizeof what, "get %s", key);
    return failed(what, rc, err);
  }
  return 0;
}

/* The siblings of result as one sorted line each, after a label. */
static int print_siblings(const dynamo_result_t* result) {
  size_t n = dynamo_result_count(result);
  const char** lines = calloc(n ? n : 1, sizeof *lines);
  if (lines == NULL) return -1;
  for (size_t i = 0; i < n; ++i) lines[i] = dynamo_result_value(result, i, NULL);
  qsort(lines, n, sizeof *lines, compare_items);
  for (size_t i = 0; i < n; ++i) printf("  sibling: %s\n", lines[i]);
  free(lines);
  return 0;
}

/* ---- the cart ------------------------------------------------------------- */

static int run(dynamo_client_t* client, const char* key) {
  int status = 1;
  dynamo_result_t* result = NULL;
  char* context = NULL;
  size_t contextlen = 0;
  char* merged_value = NULL;
  cart_t merged = {0};

  /* 1. Read the cart (a new key is not found, yet has a context to write
     with) and store a first version: one item. */
  if ((status = get_cart(client, key, &result)) != 0) goto done;
  if (dynamo_result_count(result) == 0) {
    printf("empty cart (key not found)\n");
  } else {
    printf("existing cart: %zu version(s), replaced\n", dynamo_result_count(result));
  }
  size_t readlen = 0;
  const char* read_context = dynamo_result_context(result, &readlen);
  if ((status = put_cart(client, key, "apple", read_context, readlen, &context, &contextlen)) !=
      0) {
    goto done;
  }
  printf("put: apple\n");
  dynamo_result_destroy(result);
  result = NULL;

  /* 2. Two shoppers add an item each, both from the context of that first
     version: neither has seen the other's write, so both are kept. */
  if ((status = put_cart(client, key, "apple,book", context, contextlen, NULL, NULL)) != 0) {
    goto done;
  }
  printf("concurrent put 1: apple,book\n");
  if ((status = put_cart(client, key, "apple,pen", context, contextlen, NULL, NULL)) != 0) {
    goto done;
  }
  printf("concurrent put 2: apple,pen\n");

  /* 3. Read: the siblings. Reconcile them (the union of their items) and
     write the union back with this read's context, superseding them all. */
  if ((status = get_cart(client, key, &result)) != 0) goto done;
  size_t siblings = dynamo_result_count(result);
  printf("siblings: %zu\n", siblings);
  if (print_siblings(result) != 0) {
    status = out_of_memory();
    goto done;
  }
  for (size_t i = 0; i < siblings; ++i) {
    size_t len = 0;
    const char* value = dynamo_result_value(result, i, &len);
    if (cart_add_value(&merged, value, len) != 0) {
      status = out_of_memory();
      goto done;
    }
  }
  merged_value = cart_join(&merged);
  if (merged_value == NULL) {
    status = out_of_memory();
    goto done;
  }
  printf("merged cart: %s\n", merged_value);
  read_context = dynamo_result_context(result, &readlen);
  if ((status = put_cart(client, key, merged_value, read_context, readlen, NULL, NULL)) != 0) {
    goto done;
  }
  dynamo_result_destroy(result);
  result = NULL;

  /* 4. Read again: one version, the union. */
  if ((status = get_cart(client, key, &result)) != 0) goto done;
  size_t versions = dynamo_result_count(result);
  printf("after write-back: %zu version%s\n", versions, versions == 1 ? "" : "s");
  if (versions != 1) {
    fflush(stdout);
    fprintf(stderr, "cart: get %s: expected one version after the write-back, read %zu\n", key,
            versions);
    status = 1;
    goto done;
  }
  const char* final_value = dynamo_result_value(result, 0, NULL);
  printf("final cart: %s\n", final_value);
  if (strcmp(final_value, merged_value) != 0) {
    fflush(stdout);
    fprintf(stderr, "cart: get %s: read '%s', wrote '%s'\n", key, final_value, merged_value);
    status = 1;
    goto done;
  }
  status = 0;

done:
  dynamo_result_destroy(result);
  dynamo_free(context);
  free(merged_value);
  cart_free(&merged);
  return status;
}

int main(int argc, char** argv) {
  int mode = DYNAMO_MODE_SERVER;
  const char* key = NULL;
  unsigned long timeout_ms = 0;
  const char* key_pair_file = NULL;
  const char* server_public_key = NULL;
  int first_endpoint = argc;

  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(NULL);
      return 0;
    }
    if (strcmp(arg, "--mode") == 0 || strcmp(arg, "--key") == 0 ||
        strcmp(arg, "--timeout-ms") == 0 || strcmp(arg, "--key-pair") == 0 ||
        strcmp(arg, "--server-public-key") == 0) {
      if (i + 1 >= argc) {
        char problem[64];
        snprintf(problem, sizeof problem, "%s needs a value", arg);
        return usage(problem);
      }
      const char* value = argv[++i];
      if (strcmp(arg, "--key") == 0) {
        if (value[0] == '\0') return usage("--key needs a non-empty key");
        key = value;
      } else if (strcmp(arg, "--key-pair") == 0) {
        key_pair_file = value;
      } else if (strcmp(arg, "--server-public-key") == 0) {
        server_public_key = value;
      } else if (strcmp(arg, "--mode") == 0) {
        if (strcmp(value, "server") == 0) {
          mode = DYNAMO_MODE_SERVER;
        } else if (strcmp(value, "client") == 0) {
          mode = DYNAMO_MODE_CLIENT;
        } else {
          return usage("--mode is server or client");
        }
      } else {
        char* end = NULL;
        errno = 0;
        timeout_ms = strtoul(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || timeout_ms == 0 ||
            timeout_ms > 86400000UL) {
          return usage("--timeout-ms is a number of milliseconds, 1 to 86400000");
        }
      }
      continue;
    }
    if (strncmp(arg, "--", 2) == 0) {
      char problem[128];
      snprintf(problem, sizeof problem, "unknown option %.80s", arg);
      return usage(problem);
    }
    first_endpoint = i;
    break;
  }
  if (first_endpoint >= argc) return usage("give at least one node endpoint");
  if ((key_pair_file == NULL) != (server_public_key == NULL)) {
    return usage("--key-pair and --server-public-key go together");
  }

  char default_key[64];
  if (key == NULL) {
    snprintf(default_key, sizeof default_key, "cart-%ld-%lld", (long)getpid(),
             (long long)time(NULL));
    key = default_key;
  }

  int status = 1;
  char* err = NULL;
  int rc;
  dynamo_client_t* client = NULL;
  dynamo_options_t* options = dynamo_options_create();
  if (options == NULL) return out_of_memory();
  for (int i = first_endpoint; i < argc; ++i) {
    if ((rc = dynamo_options_add_node(options, argv[i], &err)) != DYNAMO_OK) {
      status = failed("options", rc, err);
      goto done;
    }
  }
  if ((rc = dynamo_options_set_mode(options, mode, &err)) != DYNAMO_OK) {
    status = failed("options", rc, err);
    goto done;
  }
  if (key_pair_file != NULL &&
      (rc = dynamo_options_set_curve(options, key_pair_file, server_public_key, &err)) !=
          DYNAMO_OK) {
    status = failed("options", rc, err);
    goto done;
  }
  if (timeout_ms != 0 &&
      (rc = dynamo_options_set_timeout_ms(options, (uint32_t)timeout_ms, &err)) != DYNAMO_OK) {
    status = failed("options", rc, err);
    goto done;
  }
  client = dynamo_client_create(options, &err);
  if (client == NULL) {
    status = failed("client", DYNAMO_ERROR, err);
    goto done;
  }

  printf("dynamo %s, %s mode, %d node%s\n", dynamo_version(),
         mode == DYNAMO_MODE_CLIENT ? "client" : "server", argc - first_endpoint,
         argc - first_endpoint == 1 ? "" : "s");
  printf("cart key: %s\n", key);
  status = run(client, key);

done:
  dynamo_client_destroy(client);
  dynamo_options_destroy(options);
  return status;
}
