/*
 * dynamo.h: the C API of dynamo's client library (libdynamo-client).
 *
 * Link with -ldynamo-client. Every call is declared here; docs/client-api.md
 * has a walk-through and examples/ has programs in C and Python.
 *
 * Conventions
 *   - Keys, values and contexts are bytes: a pointer and a length. They may
 *     hold any byte, NUL included. A NULL pointer is accepted only with a
 *     length of 0.
 *   - Every call that can fail returns a dynamo_code and takes `char
 *     **errptr` last. On failure, when errptr is not NULL, *errptr receives
 *     one line of text saying what went wrong, allocated by the library (free
 *     it with dynamo_free); a message already in *errptr is freed first, so
 *     initialise it to NULL. On success *errptr is left alone.
 *     DYNAMO_NOT_FOUND from dynamo_get is an answer, not a failure: it comes
 *     with a result and no message.
 *   - Memory the library returns is freed by dynamo_free (strings, contexts)
 *     or by the destroy function of its handle. Destroy functions and
 *     dynamo_free accept NULL.
 *
 * Threads
 *   - dynamo_options_t: plain data; do not change one from two threads at a
 *     time. dynamo_client_create copies it, so it may be destroyed or reused
 *     at once.
 *   - dynamo_client_t: may be shared between threads; its calls are
 *     serialised (one request at a time per client). For parallel requests,
 *     use one client per thread.
 *   - dynamo_result_t: immutable; may be read from any thread, destroyed once.
 *
 * Coordination (paper section 6.4; DYNAMO_MODE_SERVER is the default)
 *   - DYNAMO_MODE_SERVER: each request goes to one configured node (the
 *     first that can be reached, and the same one while it answers), which
 *     coordinates it, forwarding a write to a replica of the key when it is
 *     none.
 *   - DYNAMO_MODE_CLIENT: the client pulls the ring from a random known node
 *     every ring refresh period (and after a failure) and sends each key's
 *     request straight to the first reachable node of the key's preference
 *     list, which saves the forwarding hop. With no ring yet, or one more
 *     than three refresh periods old, it routes as in server mode.
 *
 * A request is sent to one node only: if that node took it but did not
 * answer in time, the call returns DYNAMO_TIMEOUT and the write may or may
 * not have been applied. A node that cannot be reached (no connection
 * within the connect timeout) was sent nothing, and the next node is tried.
 */
#ifndef DYNAMO_DYNAMO_H_
#define DYNAMO_DYNAMO_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DYNAMO_EXPORT __attribute__((visibility("default")))
#else
#define DYNAMO_EXPORT
#endif

/* The version of this header. dynamo_version() gives the library's. */
#define DYNAMO_VERSION_MAJOR 0
#define DYNAMO_VERSION_MINOR 1
#define DYNAMO_VERSION_PATCH 0
#define DYNAMO_VERSION_NUMBER \
  (DYNAMO_VERSION_MAJOR * 10000 + DYNAMO_VERSION_MINOR * 100 + DYNAMO_VERSION_PATCH)

/* What a call returned: branch on this, show the message. */
typedef enum dynamo_code {
  DYNAMO_OK = 0,
  DYNAMO_NOT_FOUND = 1,        /* dynamo_get: the key has no live version */
  DYNAMO_UNAVAILABLE = 2,      /* quorum not reached, or no node could be reached:
                                  retrying later may succeed. A write short of
                                  its quorum may still be on the replicas that
                                  took it, and reach the others later */
  DYNAMO_TIMEOUT = 3,          /* a node took the request and did not answer in
                                  time; a write may or may not have been applied */
  DYNAMO_INVALID_ARGUMENT = 4, /* rejected input: key or value too large, bad
                                  context, bad option or quorum */
  DYNAMO_ERROR = 5,            /* anything else (a corrupt reply, an engine failure) */
  DYNAMO_NOT_AUTHORIZED = 6    /* the node refused this client's CURVE key, the CURVE
                                  settings do not match the node's, or the key's role
                                  may not do this (DESIGN.md 3.7) */
} dynamo_code;

typedef enum dynamo_mode {
  DYNAMO_MODE_SERVER = 0, /* a node coordinates (default) */
  DYNAMO_MODE_CLIENT = 1  /* the client routes to the key's preference list */
} dynamo_mode;

typedef struct dynamo_options_t dynamo_options_t;
typedef struct dynamo_client_t dynamo_client_t;
typedef struct dynamo_result_t dynamo_result_t;

/* ---- version and codes */

/* The library's version, e.g. "0.1.0". Static storage. */
DYNAMO_EXPORT const char *dynamo_version(void);
/* major * 10000 + minor * 100 + patch; compare with DYNAMO_VERSION_NUMBER. */
DYNAMO_EXPORT int dynamo_version_number(void);
/* A short name for a code ("ok", "not found", "unavailable", "timeout",
   "invalid argument", "error", "not authorized"; "unknown" for anything
   else). Static storage. */
DYNAMO_EXPORT const char *dynamo_code_name(int code);

/* Frees memory the library returned (a message, a context, JSON). */
DYNAMO_EXPORT void dynamo_free(void *ptr);

/* ---- options
 * Defaults: node tcp://127.0.0.1:7101 (when none is added), timeout 5000 ms,
 * connect timeout 1000 ms, DYNAMO_MODE_SERVER, ring refresh 10000 ms,
 * R and W 0 (the coordinating node's defaults). */

/* NULL only when out of memory. */
DYNAMO_EXPORT dynamo_options_t *dynamo_options_create(void);
DYNAMO_EXPORT void dynamo_options_destroy(dynamo_options_t *options);

/* Adds a node to talk to ("tcp://HOST:PORT" or "ipc://PATH"); in client
   mode, where the ring is first pulled from. Call once per node. */
DYNAMO_EXPORT int dynamo_options_add_node(dynamo_options_t *options, const char *endpoint,
                                          char **errptr);
/* Longest a call waits for its answer, retries on other nodes and a ring
   pull included: 1 ms to 86400000 ms (a day). */
DYNAMO_EXPORT int dynamo_options_set_timeout_ms(dynamo_options_t *options, uint32_t ms,
                                                char **errptr);
/* Longest a call waits for a connection to one node before trying the next
   (capped by the timeout): 1 ms to 86400000 ms. */
DYNAMO_EXPORT int dynamo_options_set_connect_timeout_ms(dynamo_options_t *options, uint32_t ms,
                                                        char **errptr);
/* DYNAMO_MODE_SERVER or DYNAMO_MODE_CLIENT. */
DYNAMO_EXPORT int dynamo_options_set_mode(dynamo_options_t *options, int mode, char **errptr);
/* Client mode: how often the ring is pulled again: 1 ms to 86400000 ms. */
DYNAMO_EXPORT int dynamo_options_set_ring_refresh_ms(dynamo_options_t *options, uint32_t ms,
                                                     char **errptr);
/* Replies a get waits for (R) and acknowledgements a put or delete waits for
   (W); 0 = the coordinating node's default. A value above the cluster's N
   is refused by the node, with DYNAMO_INVALID_ARGUMENT. */
DYNAMO_EXPORT void dynamo_options_set_read_quorum(dynamo_options_t *options, uint32_t r);
DYNAMO_EXPORT void dynamo_options_set_write_quorum(dynamo_options_t *options, uint32_t w);
/* CURVE (DESIGN.md 3.7): the client's key pair, from a key-pair file as
   `dynamoctl keygen` writes it (readable by its owner only), and the node's
   public key: 40 characters of Z85, or a file holding it. In client mode
   each member's own key comes with the ring. */
DYNAMO_EXPORT int dynamo_options_set_curve(dynamo_options_t *options, const char *key_pair_file,
                                           const char *server_public_key, char **errptr);

/* ---- client */

/* Makes a client from options (NULL: all defaults). Does no network I/O:
   connections are made on first use. NULL on failure. */
DYNAMO_EXPORT dynamo_client_t *dynamo_client_create(const dynamo_options_t *options,
                                                    char **errptr);
/* Closes the client's connections; requests in flight are abandoned. */
DYNAMO_EXPORT void dynamo_client_destroy(dynamo_client_t *client);

/* Reads a key. On DYNAMO_OK or DYNAMO_NOT_FOUND, *result receives a result
   to destroy with dynamo_result_destroy: its siblings (none when not found)
   and the context to pass to the next put or delete of the key (a key whose
   versions are all tombstones has a context too). On any other code
   *result is set to NULL. */
DYNAMO_EXPORT int dynamo_get(dynamo_client_t *client, const char *key, size_t keylen,
                             dynamo_result_t **result, char **errptr);

/* Writes a new version of a key. context: what a get of the key returned
   (NULL/0 for a blind write, which is concurrent with every version stored).
   On success, when new_context is not NULL, *new_context receives the new
   version's context (free with dynamo_free) and *new_contextlen its length
   (new_contextlen may be NULL). */
DYNAMO_EXPORT int dynamo_put(dynamo_client_t *client, const char *key, size_t keylen,
                             const char *value, size_t valuelen, const char *context,
                             size_t contextlen, char **new_context, size_t *new_contextlen,
                             char **errptr);

/* Deletes a key: writes a tombstone superseding what the context covers
   (NULL/0: what the key holds now). new_context as for dynamo_put. */
DYNAMO_EXPORT int dynamo_del(dynamo_client_t *client, const char *key, size_t keylen,
                             const char *context, size_t contextlen, char **new_context,
                             size_t *new_contextlen, char **errptr);

/* The status of the node the client talks to (in client mode, a configured
   node) as a NUL-terminated JSON object (the document of `dynamoctl status
   --json`); free *json with dynamo_free. */
DYNAMO_EXPORT int dynamo_status_json(dynamo_client_t *client, char **json, char **errptr);

/* ---- results */

/* The number of live siblings: 0 when not found, more than 1 when
   concurrent writes left versions the application must reconcile. */
DYNAMO_EXPORT size_t dynamo_result_count(const dynamo_result_t *result);
/* Sibling i (0-based): its bytes, and their length in *len (len may be
   NULL). The bytes are followed by a NUL that is not counted. NULL when i is
   out of range. Valid until the result is destroyed. */
DYNAMO_EXPORT const char *dynamo_result_value(const dynamo_result_t *result, size_t i,
                                              size_t *len);
/* The context: opaque bytes to pass back with the next put or delete.
   Length 0 when the key was never written. Valid until the result is
   destroyed. */
DYNAMO_EXPORT const char *dynamo_result_context(const dynamo_result_t *result, size_t *len);
DYNAMO_EXPORT void dynamo_result_destroy(dynamo_result_t *result);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DYNAMO_DYNAMO_H_ */
