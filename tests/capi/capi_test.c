/* capi_test: the C API (dynamo/dynamo.h) exercised from C against a running
 * cluster, every function and its error paths.
 *
 * Usage:
 *   dynamo_capi_test [OPTIONS] ENDPOINT...
 *       The whole suite against a cluster of at least three nodes with N=3
 *       (the endpoints of its nodes; DYNAMO_CAPI_ENDPOINTS, space-separated,
 *       when none is given). Options:
 *         --max-value-bytes N  the nodes' --max-value-bytes (default 1048576)
 *         --time-scale N       multiplies the test's own deadlines (default 1;
 *                              e.g. 5 under valgrind)
 *   dynamo_capi_test --routing server|client COUNT ENDPOINT [KEY_PREFIX]
 *       COUNT puts through a client configured with ENDPOINT only, in that
 *       coordination mode, of the keys KEY_PREFIX "route-" MODE "-" I for I
 *       in [0, COUNT) (tests/integration counts the writes the nodes
 *       forwarded).
 *
 * Each failed check prints one line naming it; the exit status is 0 only when
 * every check passed, and the last line is "capi_test: N checks passed".
 *
 * Besides the cluster the test makes two endpoints of its own on 127.0.0.1: a
 * TCP port that is bound but not listening (every connection is refused: an
 * unreachable node) and a ZeroMQ ROUTER socket that takes requests and never
 * answers (a node that times out).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "dynamo/dynamo.h"

/* ---- checks */

static int g_passed;
static int g_failed;

static void Report(int ok, const char* file, int line, const char* fmt, ...) {
  if (ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  fprintf(stderr, "%s:%d: FAILED: ", file, line);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

#define CHECK(cond) Report(!!(cond), __FILE__, __LINE__, "%s", #cond)

/* A call returned `got`, expected `want`; err is the call's message (may be NULL). */
#define CHECK_CODE(got, want, err) CheckCode((got), (want), (err), #got, __FILE__, __LINE__)

static void CheckCode(int got, int want, const char* err, const char* expr, const char* file,
                      int line) {
  Report(got == want, file, line, "%s returned %d (%s), expected %d (%s); message: %s", expr, got,
         dynamo_code_name(got), want, dynamo_code_name(want), err ? err : "(none)");
}

/* text is not NULL and contains needle. */
#define CHECK_CONTAINS(text, needle) CheckContains((text), (needle), #text, __FILE__, __LINE__)

static void CheckContains(const char* text, const char* needle, const char* expr, const char* file,
                          int line) {
  Report(text != NULL && strstr(text, needle) != NULL, file, line,
         "%s = \"%s\" does not contain \"%s\"", expr, text ? text : "(NULL)", needle);
}

/* Frees the message of the last failure, if any, so the next call starts clean. */
static void ClearError(char** err) {
  dynamo_free(*err);
  *err = NULL;
}

/* ---- settings */

#define MAX_NODES 16

static const char* g_endpoints[MAX_NODES];
static int g_node_count;
static size_t g_max_value_bytes = 1048576;
static uint32_t g_time_scale = 1;
static char g_key_prefix[64];        /* distinct per run: a cluster may be reused */
static const char* g_key_scope = ""; /* distinct per part of the run */

/* "<prefix><scope><name>" in buf. */
static const char* Key(char* buf, size_t size, const char* name) {
  int n = snprintf(buf, size, "%s%s%s", g_key_prefix, g_key_scope, name);
  if (n < 0 || (size_t)n >= size) {
    fprintf(stderr, "capi_test: key for '%s' does not fit %zu bytes\n", name, size);
    exit(2);
  }
  return buf;
}

/* Options for endpoints[0..count) with the given mode, a generous timeout, R
 * and W left to the nodes. Aborts the run if the library refuses them (every
 * later check would be meaningless). */
static dynamo_options_t* MakeOptions(const char* const* endpoints, int count, int mode) {
  char* err = NULL;
  dynamo_options_t* options = dynamo_options_create();
  if (options == NULL) {
    fprintf(stderr, "capi_test: dynamo_options_create returned NULL\n");
    exit(2);
  }
  int rc = DYNAMO_OK;
  for (int i = 0; i < count && rc == DYNAMO_OK; ++i) {
    rc = dynamo_options_add_node(options, endpoints[i], &err);
  }
  if (rc == DYNAMO_OK) rc = dynamo_options_set_mode(options, mode, &err);
  if (rc == DYNAMO_OK) rc = dynamo_options_set_timeout_ms(options, 10000 * g_time_scale, &err);
  if (rc != DYNAMO_OK) {
    fprintf(stderr, "capi_test: cannot set up options: %s\n", err ? err : "(no message)");
    exit(2);
  }
  return options;
}

static dynamo_client_t* MakeClient(const char* const* endpoints, int count, int mode) {
  char* err = NULL;
  dynamo_options_t* options = MakeOptions(endpoints, count, mode);
  dynamo_client_t* client = dynamo_client_create(options, &err);
  dynamo_options_destroy(options);
  if (client == NULL) {
    fprintf(stderr, "capi_test: dynamo_client_create failed: %s\n", err ? err : "(no message)");
    exit(2);
  }
  return client;
}

/* ---- endpoints of the test's own */

/* A TCP port on 127.0.0.1 bound but not listening: connections to it are
 * refused, and no other process can take the port while fd is open. */
static int BindRefusingPort(char* endpoint, size_t size) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, (struct sockaddr*)&addr, sizeof(addr)) != 0 ||
      getsockname(fd, (struct sockaddr*)&addr, &len) != 0) {
    perror("capi_test: cannot bind a loopback port");
    exit(2);
  }
  snprintf(endpoint, size, "tcp://127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
  return fd;
}

/* A ZeroMQ ROUTER socket on a free port of 127.0.0.1 that is never read from:
 * a node that accepts requests and never answers. */
typedef struct {
  void* context;
  void* socket;
  char endpoint[64];
} SilentNode;

static void SilentNodeStart(SilentNode* node) {
  node->context = zmq_ctx_new();
  node->socket = node->context ? zmq_socket(node->context, ZMQ_ROUTER) : NULL;
  int linger = 0;
  size_t size = sizeof(node->endpoint);
  if (node->socket == NULL ||
      zmq_setsockopt(node->socket, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
      zmq_bind(node->socket, "tcp://127.0.0.1:*") != 0 ||
      zmq_getsockopt(node->socket, ZMQ_LAST_ENDPOINT, node->endpoint, &size) != 0) {
    fprintf(stderr, "capi_test: cannot start a ZeroMQ ROUTER: %s\n", zmq_strerror(zmq_errno()));
    exit(2);
  }
}

/* Whether a request reached the node (identity frame + request frame); takes
 * it off the queue. */
static int SilentNodeReceived(SilentNode* node) {
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  int got = zmq_msg_recv(&msg, node->socket, ZMQ_DONTWAIT) >= 0;
  while (got && zmq_msg_more(&msg)) {
    zmq_msg_close(&msg);
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, node->socket, ZMQ_DONTWAIT) < 0) break;
  }
  zmq_msg_close(&msg);
  return got;
}

static void SilentNodeStop(SilentNode* node) {
  zmq_close(node->socket);
  zmq_ctx_term(node->context);
}

/* ---- version, codes, NULL handling */

static void TestVersion(void) {
  char expected[32];
  snprintf(expected, sizeof(expected), "%d.%d.%d", DYNAMO_VERSION_MAJOR, DYNAMO_VERSION_MINOR,
           DYNAMO_VERSION_PATCH);
  CHECK(dynamo_version() != NULL);
  CHECK(strcmp(dynamo_version(), expected) == 0);
  CHECK(dynamo_version_number() == DYNAMO_VERSION_NUMBER);
  CHECK(DYNAMO_VERSION_NUMBER ==
        DYNAMO_VERSION_MAJOR * 10000 + DYNAMO_VERSION_MINOR * 100 + DYNAMO_VERSION_PATCH);
}

static void TestCodeNames(void) {
  CHECK(strcmp(dynamo_code_name(DYNAMO_OK), "ok") == 0);
  CHECK(strcmp(dynamo_code_name(DYNAMO_NOT_FOUND), "not found") == 0);
  CHECK(strcmp(dynamo_code_name(DYNAMO_UNAVAILABLE), "unavailable") == 0);
  CHECK(strcmp(dynamo_code_name(DYNAMO_TIMEOUT), "timeout") == 0);
  CHECK(strcmp(dynamo_code_name(DYNAMO_INVALID_ARGUMENT), "invalid argument") == 0);
  CHECK(strcmp(dynamo_code_name(DYNAMO_ERROR), "error") == 0);
  CHECK(strcmp(dynamo_code_name(-1), "unknown") == 0);
  CHECK(strcmp(dynamo_code_name(DYNAMO_NOT_AUTHORIZED), "not authorized") == 0);
  CHECK(strcmp(dynamo_code_name(7), "unknown") == 0);
  CHECK(strcmp(dynamo_code_name(1000), "unknown") == 0);
  /* The codes' numbers are part of the ABI. */
  CHECK(DYNAMO_OK == 0 && DYNAMO_NOT_FOUND == 1 && DYNAMO_UNAVAILABLE == 2 && DYNAMO_TIMEOUT == 3 &&
        DYNAMO_INVALID_ARGUMENT == 4 && DYNAMO_ERROR == 5 && DYNAMO_NOT_AUTHORIZED == 6);
  CHECK(DYNAMO_MODE_SERVER == 0 && DYNAMO_MODE_CLIENT == 1);
}

static void TestNullSafety(void) {
  /* Destroy functions and dynamo_free take NULL. */
  dynamo_free(NULL);
  dynamo_options_destroy(NULL);
  dynamo_client_destroy(NULL);
  dynamo_result_destroy(NULL);
  /* Result accessors on NULL: nothing, length 0. */
  size_t len = 99;
  CHECK(dynamo_result_count(NULL) == 0);
  CHECK(dynamo_result_value(NULL, 0, &len) == NULL);
  CHECK(len == 0);
  len = 99;
  CHECK(dynamo_result_context(NULL, &len) == NULL);
  CHECK(len == 0);
  CHECK(dynamo_result_value(NULL, 0, NULL) == NULL);
  CHECK(dynamo_result_context(NULL, NULL) == NULL);
  /* Quorum setters ignore a NULL options. */
  dynamo_options_set_read_quorum(NULL, 1);
  dynamo_options_set_write_quorum(NULL, 1);
  /* Setters refuse NULL options with a message. */
  char* err = NULL;
  CHECK_CODE(dynamo_options_add_node(NULL, "tcp://127.0.0.1:1", &err), DYNAMO_INVALID_ARGUMENT,
             err);
  CHECK_CONTAINS(err, "options");
  CHECK_CODE(dynamo_options_set_timeout_ms(NULL, 100, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CODE(dynamo_options_set_connect_timeout_ms(NULL, 100, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CODE(dynamo_options_set_mode(NULL, DYNAMO_MODE_SERVER, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CODE(dynamo_options_set_ring_refresh_ms(NULL, 100, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "options is NULL");
  ClearError(&err);
  /* A failure with errptr NULL is reported by the code alone. */
  CHECK_CODE(dynamo_options_set_mode(NULL, 7, NULL), DYNAMO_INVALID_ARGUMENT, NULL);
}

/* ---- options */

/* Writes a CURVE key-pair file (as dynamoctl keygen does) with the given
 * mode; the public key goes to public_key (41 bytes). Returns 0 on success. */
static int WriteKeyPairFile(const char* path, mode_t mode, char* public_key) {
  char secret_key[41];
  if (zmq_curve_keypair(public_key, secret_key) != 0) return -1;
  unlink(path);
  FILE* f = fopen(path, "w");
  if (f == NULL) return -1;
  fprintf(f, "public-key = %s\nsecret-key = %s\n", public_key, secret_key);
  if (fclose(f) != 0) return -1;
  return chmod(path, mode);
}

/* dynamo_options_set_curve: what it refuses, each with a message, and a
 * pair it takes. */
static void TestCurveOptions(dynamo_options_t* o) {
  char* err = NULL;
  CHECK_CODE(dynamo_options_set_curve(NULL, "x", "y", &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "options is NULL");
  CHECK_CODE(dynamo_options_set_curve(o, NULL, "y", &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "NULL");
  CHECK_CODE(dynamo_options_set_curve(o, "/nonexistent/dynamo.key", "y", &err),
             DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "/nonexistent/dynamo.key");
  char path[64], public_key[41], other[41];
  snprintf(path, sizeof path, "/tmp/dynamo-capi-test-%ld.key", (long)getpid());
  if (WriteKeyPairFile(path, 0644, public_key) != 0) {
    CHECK(!"cannot write a key-pair file in /tmp");
    return;
  }
  /* A secret others may read is refused. */
  CHECK_CODE(dynamo_options_set_curve(o, path, public_key, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "600");
  CHECK(chmod(path, 0600) == 0);
  /* A server key that is not one. */
  CHECK_CODE(dynamo_options_set_curve(o, path, "not-a-key", &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK(err != NULL);
  ClearError(&err);
  /* A good pair and a server key, given as a key. */
  CHECK(WriteKeyPairFile(path, 0600, other) == 0);
  CHECK_CODE(dynamo_options_set_curve(o, path, public_key, &err), DYNAMO_OK, err);
  CHECK(err == NULL);
  unlink(path);
}

static void TestOptions(void) {
  char* err = NULL;
  dynamo_options_t* o = dynamo_options_create();
  CHECK(o != NULL);
  if (o == NULL) return;

  /* Time limits: 1 ms to a day. */
  CHECK_CODE(dynamo_options_set_timeout_ms(o, 0, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "timeout");
  CHECK_CODE(dynamo_options_set_timeout_ms(o, 86400001u, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CODE(dynamo_options_set_timeout_ms(o, UINT32_MAX, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CODE(dynamo_options_set_connect_timeout_ms(o, 0, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "connect timeout");
  CHECK_CODE(dynamo_options_set_ring_refresh_ms(o, 0, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "ring refresh");
  CHECK_CODE(dynamo_options_set_ring_refresh_ms(o, 86400001u, &err), DYNAMO_INVALID_ARGUMENT, err);
  ClearError(&err);
  CHECK_CODE(dynamo_options_set_timeout_ms(o, 1, &err), DYNAMO_OK, err);
  CHECK_CODE(dynamo_options_set_timeout_ms(o, 86400000u, &err), DYNAMO_OK, err);
  CHECK_CODE(dynamo_options_set_connect_timeout_ms(o, 1, &err), DYNAMO_OK, err);
  CHECK_CODE(dynamo_options_set_connect_timeout_ms(o, 86400000u, &err), DYNAMO_OK, err);
  CHECK_CODE(dynamo_options_set_ring_refresh_ms(o, 1, &err), DYNAMO_OK, err);
  CHECK_CODE(dynamo_options_set_ring_refresh_ms(o, 86400000u, &err), DYNAMO_OK, err);
  CHECK(err == NULL);

  /* Modes: 0 and 1 only. */
  CHECK_CODE(dynamo_options_set_mode(o, 7, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "mode");
  CHECK_CONTAINS(err, "7");
  CHECK_CODE(dynamo_options_set_mode(o, -1, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CODE(dynamo_options_set_mode(o, 2, &err), DYNAMO_INVALID_ARGUMENT, err);
  ClearError(&err);
  CHECK_CODE(dynamo_options_set_mode(o, DYNAMO_MODE_CLIENT, &err), DYNAMO_OK, err);
  CHECK_CODE(dynamo_options_set_mode(o, DYNAMO_MODE_SERVER, &err), DYNAMO_OK, err);

  /* Endpoints: tcp://HOST:PORT or ipc://PATH. */
  static const char* const kBad[] = {"",          "127.0.0.1:7101",  "http://127.0.0.1:80",
                                     "tcp://",    "tcp://127.0.0.1", "ipc://",
                                     "TCP://h:1", "tcp:/h:1", "tcp://127.0.0.1:",
                                     "tcp://127.0.0.1:abc", "tcp://:", "tcp://:7101",
                                     "tcp://127.0.0.1:0", "tcp://127.0.0.1:99999",
                                     "tcp://127.0.0.1:123456"};
  for (size_t i = 0; i < sizeof(kBad) / sizeof(kBad[0]); ++i) {
    int rc = dynamo_options_add_node(o, kBad[i], &err);
    Report(rc == DYNAMO_INVALID_ARGUMENT, __FILE__, __LINE__,
           "dynamo_options_add_node(\"%s\") returned %s, expected invalid argument", kBad[i],
           dynamo_code_name(rc));
    CHECK_CONTAINS(err, "endpoint");
  }
  CHECK_CODE(dynamo_options_add_node(o, NULL, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "endpoint is NULL");
  ClearError(&err);
  CHECK_CODE(dynamo_options_add_node(o, "tcp://127.0.0.1:7101", &err), DYNAMO_OK, err);
  CHECK_CODE(dynamo_options_add_node(o, "tcp://localhost:7102", &err), DYNAMO_OK, err);
  CHECK_CODE(dynamo_options_add_node(o, "ipc:///tmp/dynamo-node.sock", &err), DYNAMO_OK, err);
  CHECK(err == NULL);

  /* Quorums: any value is accepted here; the node judges it. */
  dynamo_options_set_read_quorum(o, 0);
  dynamo_options_set_write_quorum(o, 0);
  dynamo_options_set_read_quorum(o, 1000);
  dynamo_options_set_write_quorum(o, 1000);

  TestCurveOptions(o);

  /* Client creation does no I/O, so any endpoints will do. */
  dynamo_client_t* c = dynamo_client_create(o, &err);
  CHECK(c != NULL);
  CHECK(err == NULL);
  dynamo_client_destroy(c);
  c = dynamo_client_create(NULL, &err); /* all defaults */
  CHECK(c != NULL);
  CHECK(err == NULL);
  dynamo_client_destroy(c);
  dynamo_options_destroy(o);
}

/* errptr: a message already there is freed and replaced on failure, left
 * alone on success. (Under valgrind, a message not freed is a leak.) */
static void TestErrptrSemantics(void) {
  char* err = NULL;
  dynamo_options_t* o = dynamo_options_create();
  CHECK_CODE(dynamo_options_set_mode(o, 7, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "mode");
  CHECK_CODE(dynamo_options_set_timeout_ms(o, 0, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "timeout");
  CHECK(err != NULL && strstr(err, "mode") == NULL); /* replaced, not appended */
  const char* before = err;
  CHECK_CODE(dynamo_options_set_timeout_ms(o, 500, &err), DYNAMO_OK, err);
  CHECK(err == before); /* success leaves the message alone */
  CHECK_CONTAINS(err, "timeout");
  CHECK_CODE(dynamo_options_add_node(o, "nonsense", &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "nonsense");
  ClearError(&err);
  dynamo_options_destroy(o);
}

/* Bad arguments to the calls: refused before any I/O. */
static void TestCallArguments(dynamo_client_t* client) {
  char* err = NULL;
  dynamo_result_t* result = (dynamo_result_t*)&err; /* any non-NULL: must be reset */
  char* ctx = (char*)&err;
  char* json = (char*)&err;

  CHECK_CODE(dynamo_get(NULL, "k", 1, &result, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK(result == NULL);
  CHECK_CONTAINS(err, "client is NULL");
  CHECK_CODE(dynamo_get(client, "k", 1, NULL, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "result is NULL");
  result = (dynamo_result_t*)&err;
  CHECK_CODE(dynamo_get(client, NULL, 3, &result, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK(result == NULL);
  CHECK_CONTAINS(err, "key is NULL");

  CHECK_CODE(dynamo_put(NULL, "k", 1, "v", 1, NULL, 0, &ctx, NULL, &err), DYNAMO_INVALID_ARGUMENT,
             err);
  CHECK(ctx == NULL);
  CHECK_CONTAINS(err, "client is NULL");
  ctx = (char*)&err;
  CHECK_CODE(dynamo_put(client, NULL, 1, "v", 1, NULL, 0, &ctx, NULL, &err),
             DYNAMO_INVALID_ARGUMENT, err);
  CHECK(ctx == NULL);
  CHECK_CONTAINS(err, "key is NULL");
  CHECK_CODE(dynamo_put(client, "k", 1, NULL, 5, NULL, 0, NULL, NULL, &err),
             DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "value is NULL");
  CHECK_CODE(dynamo_put(client, "k", 1, "v", 1, NULL, 4, NULL, NULL, &err), DYNAMO_INVALID_ARGUMENT,
             err);
  CHECK_CONTAINS(err, "context is NULL");

  ctx = (char*)&err;
  CHECK_CODE(dynamo_del(NULL, "k", 1, NULL, 0, &ctx, NULL, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK(ctx == NULL);
  CHECK_CODE(dynamo_del(client, NULL, 2, NULL, 0, NULL, NULL, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "key is NULL");
  CHECK_CODE(dynamo_del(client, "k", 1, NULL, 9, NULL, NULL, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "context is NULL");

  CHECK_CODE(dynamo_status_json(NULL, &json, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK(json == NULL);
  CHECK_CONTAINS(err, "client is NULL");
  CHECK_CODE(dynamo_status_json(client, NULL, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "json is NULL");
  ClearError(&err);

  /* NULL with length 0 is an empty key: the API passes it, the node refuses it. */
  CHECK_CODE(dynamo_put(client, NULL, 0, "v", 1, NULL, 0, NULL, NULL, &err),
             DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "key");
  CHECK_CODE(dynamo_get(client, NULL, 0, &result, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK(result == NULL);
  ClearError(&err);
}

/* ---- errors from the network */

static void TestUnreachable(void) {
  char refusing[64], refusing2[64];
  int fd = BindRefusingPort(refusing, sizeof(refusing));
  int fd2 = BindRefusingPort(refusing2, sizeof(refusing2));
  char* err = NULL;

  dynamo_options_t* o = MakeOptions((const char* const[]){refusing}, 1, DYNAMO_MODE_SERVER);
  CHECK_CODE(dynamo_options_set_connect_timeout_ms(o, 200, &err), DYNAMO_OK, err);
  dynamo_client_t* c = dynamo_client_create(o, &err);
  dynamo_options_destroy(o);
  CHECK(c != NULL);

  dynamo_result_t* result = (dynamo_result_t*)&err;
  CHECK_CODE(dynamo_get(c, "k", 1, &result, &err), DYNAMO_UNAVAILABLE, err);
  CHECK(result == NULL);
  CHECK_CONTAINS(err, refusing); /* names the endpoint */
  ClearError(&err);
  char* ctx = (char*)&err;
  size_t ctxlen = 77;
  CHECK_CODE(dynamo_put(c, "k", 1, "v", 1, NULL, 0, &ctx, &ctxlen, &err), DYNAMO_UNAVAILABLE, err);
  CHECK(ctx == NULL);
  CHECK_CONTAINS(err, refusing);
  ClearError(&err);
  CHECK_CODE(dynamo_del(c, "k", 1, NULL, 0, &ctx, NULL, &err), DYNAMO_UNAVAILABLE, err);
  CHECK(ctx == NULL);
  CHECK_CONTAINS(err, refusing);
  ClearError(&err);
  char* json = (char*)&err;
  CHECK_CODE(dynamo_status_json(c, &json, &err), DYNAMO_UNAVAILABLE, err);
  CHECK(json == NULL);
  CHECK_CONTAINS(err, refusing);
  ClearError(&err);
  dynamo_client_destroy(c);

  /* Several nodes, none reachable: each is tried, the message says so. */
  o = MakeOptions((const char* const[]){refusing, refusing2}, 2, DYNAMO_MODE_SERVER);
  CHECK_CODE(dynamo_options_set_connect_timeout_ms(o, 200, &err), DYNAMO_OK, err);
  c = dynamo_client_create(o, &err);
  dynamo_options_destroy(o);
  CHECK_CODE(dynamo_put(c, "k", 1, "v", 1, NULL, 0, NULL, NULL, &err), DYNAMO_UNAVAILABLE, err);
  CHECK_CONTAINS(err, "cannot reach");
  CHECK_CONTAINS(err, "2 nodes");
  ClearError(&err);
  dynamo_client_destroy(c);

  /* Client mode with no node reachable: no ring, the same answer. */
  o = MakeOptions((const char* const[]){refusing}, 1, DYNAMO_MODE_CLIENT);
  CHECK_CODE(dynamo_options_set_connect_timeout_ms(o, 200, &err), DYNAMO_OK, err);
  c = dynamo_client_create(o, &err);
  dynamo_options_destroy(o);
  CHECK_CODE(dynamo_get(c, "k", 1, &result, &err), DYNAMO_UNAVAILABLE, err);
  CHECK(result == NULL);
  CHECK_CONTAINS(err, refusing);
  ClearError(&err);
  dynamo_client_destroy(c);

  /* An unreachable node was sent nothing: the next one takes the request. */
  const char* eps[] = {refusing, g_endpoints[0]};
  o = MakeOptions(eps, 2, DYNAMO_MODE_SERVER);
  CHECK_CODE(dynamo_options_set_connect_timeout_ms(o, 200, &err), DYNAMO_OK, err);
  c = dynamo_client_create(o, &err);
  dynamo_options_destroy(o);
  char key[128];
  Key(key, sizeof(key), "failover");
  CHECK_CODE(dynamo_put(c, key, strlen(key), "after", 5, NULL, 0, NULL, NULL, &err), DYNAMO_OK,
             err);
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_OK, err);
  CHECK(dynamo_result_count(result) == 1);
  dynamo_result_destroy(result);
  ClearError(&err);
  dynamo_client_destroy(c);

  close(fd);
  close(fd2);
}

static void TestTimeout(void) {
  SilentNode silent;
  SilentNodeStart(&silent);
  char* err = NULL;
  const uint32_t timeout_ms = 1000 * g_time_scale;

  dynamo_options_t* o = MakeOptions((const char* const[]){silent.endpoint}, 1, DYNAMO_MODE_SERVER);
  CHECK_CODE(dynamo_options_set_timeout_ms(o, timeout_ms, &err), DYNAMO_OK, err);
  dynamo_client_t* c = dynamo_client_create(o, &err);
  dynamo_options_destroy(o);

  dynamo_result_t* result = (dynamo_result_t*)&err;
  CHECK_CODE(dynamo_get(c, "k", 1, &result, &err), DYNAMO_TIMEOUT, err);
  CHECK(result == NULL);
  CHECK_CONTAINS(err, silent.endpoint);
  CHECK(SilentNodeReceived(&silent)); /* it was sent: a timeout, not unreachable */
  ClearError(&err);
  char* ctx = (char*)&err;
  CHECK_CODE(dynamo_put(c, "k", 1, "v", 1, NULL, 0, &ctx, NULL, &err), DYNAMO_TIMEOUT, err);
  CHECK(ctx == NULL);
  CHECK(SilentNodeReceived(&silent));
  ClearError(&err);
  dynamo_client_destroy(c);

  /* Client mode: the ring pull is part of the call and takes part of its
   * time; the get goes out with the rest (routed as in server mode, with no
   * ring) and times out in turn. Both reached the silent node. */
  o = MakeOptions((const char* const[]){silent.endpoint}, 1, DYNAMO_MODE_CLIENT);
  CHECK_CODE(dynamo_options_set_timeout_ms(o, timeout_ms, &err), DYNAMO_OK, err);
  c = dynamo_client_create(o, &err);
  dynamo_options_destroy(o);
  CHECK_CODE(dynamo_get(c, "k", 1, &result, &err), DYNAMO_TIMEOUT, err);
  CHECK_CONTAINS(err, silent.endpoint);
  CHECK(SilentNodeReceived(&silent)); /* the RING request */
  CHECK(SilentNodeReceived(&silent)); /* the GET */
  CHECK(!SilentNodeReceived(&silent));
  ClearError(&err);
  dynamo_client_destroy(c);

  /* A request that was sent is never sent to a second node: the write may
   * have been applied, so it is the caller's to retry. */
  const char* eps[] = {silent.endpoint, g_endpoints[0]};
  o = MakeOptions(eps, 2, DYNAMO_MODE_SERVER);
  CHECK_CODE(dynamo_options_set_timeout_ms(o, timeout_ms, &err), DYNAMO_OK, err);
  c = dynamo_client_create(o, &err);
  dynamo_options_destroy(o);
  char key[128];
  Key(key, sizeof(key), "timed-out");
  CHECK_CODE(dynamo_put(c, key, strlen(key), "v", 1, NULL, 0, NULL, NULL, &err), DYNAMO_TIMEOUT,
             err);
  CHECK(SilentNodeReceived(&silent));
  ClearError(&err);
  dynamo_client_destroy(c);
  c = MakeClient(g_endpoints, 1, DYNAMO_MODE_SERVER);
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_NOT_FOUND, err);
  dynamo_result_destroy(result);
  ClearError(&err);
  dynamo_client_destroy(c);

  SilentNodeStop(&silent);
}

/* ---- reads and writes */

/* Whether result holds exactly the given values (in any order). */
static int HasValues(const dynamo_result_t* result, const char* const* values, size_t count) {
  if (dynamo_result_count(result) != count) return 0;
  for (size_t i = 0; i < count; ++i) {
    int seen = 0;
    for (size_t j = 0; j < count; ++j) {
      size_t len = 0;
      const char* v = dynamo_result_value(result, j, &len);
      if (v != NULL && len == strlen(values[i]) && memcmp(v, values[i], len) == 0) seen = 1;
    }
    if (!seen) return 0;
  }
  return 1;
}

static void TestBinaryRoundTrip(dynamo_client_t* c) {
  char* err = NULL;
  /* A key and a value holding every byte, NUL included. */
  char key[128];
  int prefix = snprintf(key, sizeof(key), "%s%sbin", g_key_prefix, g_key_scope);
  memcpy(key + prefix, "\0k\xff\x01", 4);
  const size_t keylen = (size_t)prefix + 4;
  char value[512];
  for (size_t i = 0; i < sizeof(value); ++i) value[i] = (char)(i % 256);

  char* ctx = NULL;
  size_t ctxlen = 0;
  CHECK_CODE(dynamo_put(c, key, keylen, value, sizeof(value), NULL, 0, &ctx, &ctxlen, &err),
             DYNAMO_OK, err);
  CHECK(ctx != NULL);
  CHECK(ctxlen > 0);
  dynamo_free(ctx);

  dynamo_result_t* result = NULL;
  CHECK_CODE(dynamo_get(c, key, keylen, &result, &err), DYNAMO_OK, err);
  CHECK(err == NULL);
  CHECK(dynamo_result_count(result) == 1);
  size_t len = 0;
  const char* got = dynamo_result_value(result, 0, &len);
  CHECK(got != NULL && len == sizeof(value) && memcmp(got, value, len) == 0);
  CHECK(got != NULL && got[len] == '\0'); /* a NUL follows, not counted */
  CHECK(dynamo_result_value(result, 0, NULL) == got);
  len = 99;
  CHECK(dynamo_result_value(result, 1, &len) == NULL); /* out of range */
  CHECK(len == 0);
  CHECK(dynamo_result_value(result, (size_t)-1, &len) == NULL);
  size_t rctxlen = 0;
  const char* rctx = dynamo_result_context(result, &rctxlen);
  CHECK(rctx != NULL && rctxlen > 0);
  CHECK(dynamo_result_context(result, NULL) == rctx);
  dynamo_result_destroy(result);

  /* The key differs from its prefix: a key is its bytes, not a C string. */
  CHECK_CODE(dynamo_get(c, key, (size_t)prefix + 1, &result, &err), DYNAMO_NOT_FOUND, err);
  dynamo_result_destroy(result);

  /* The out-parameters are optional. */
  CHECK_CODE(dynamo_put(c, key, keylen, "", 0, NULL, 0, NULL, NULL, &err), DYNAMO_OK, err);
  ctx = NULL;
  CHECK_CODE(dynamo_put(c, key, keylen, NULL, 0, NULL, 0, &ctx, NULL, &err), DYNAMO_OK, err);
  CHECK(ctx != NULL);
  dynamo_free(ctx);
  ctxlen = 0;
  CHECK_CODE(dynamo_put(c, key, keylen, "x", 1, NULL, 0, NULL, &ctxlen, &err), DYNAMO_OK, err);
  CHECK(ctxlen > 0);
  ClearError(&err);
}

static void TestNotFound(dynamo_client_t* c) {
  char key[128];
  Key(key, sizeof(key), "never-written");
  char* err = NULL;
  dynamo_result_t* result = NULL;
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_NOT_FOUND, err);
  CHECK(err == NULL); /* an answer, not a failure */
  CHECK(result != NULL);
  CHECK(dynamo_result_count(result) == 0);
  size_t len = 99;
  CHECK(dynamo_result_value(result, 0, &len) == NULL);
  CHECK(len == 0);
  len = 99;
  (void)dynamo_result_context(result, &len);
  CHECK(len == 0); /* never written: no context */
  dynamo_result_destroy(result);

  /* A message from an earlier failure stays as it was. */
  dynamo_options_t* o = dynamo_options_create();
  CHECK_CODE(dynamo_options_set_mode(o, 9, &err), DYNAMO_INVALID_ARGUMENT, err);
  dynamo_options_destroy(o);
  const char* before = err;
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_NOT_FOUND, err);
  CHECK(err == before);
  dynamo_result_destroy(result);
  ClearError(&err);
}

static void TestSiblings(dynamo_client_t* c) {
  char key[128];
  Key(key, sizeof(key), "siblings");
  char* err = NULL;
  /* Two blind writes are concurrent: both are kept. */
  CHECK_CODE(dynamo_put(c, key, strlen(key), "red", 3, NULL, 0, NULL, NULL, &err), DYNAMO_OK, err);
  CHECK_CODE(dynamo_put(c, key, strlen(key), "blue", 4, NULL, 0, NULL, NULL, &err), DYNAMO_OK, err);
  dynamo_result_t* result = NULL;
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_OK, err);
  CHECK(dynamo_result_count(result) == 2);
  CHECK(HasValues(result, (const char* const[]){"red", "blue"}, 2));

  /* A write with the read's context supersedes both. */
  size_t ctxlen = 0;
  const char* rctx = dynamo_result_context(result, &ctxlen);
  CHECK(ctxlen > 0);
  char* newctx = NULL;
  size_t newlen = 0;
  CHECK_CODE(dynamo_put(c, key, strlen(key), "purple", 6, rctx, ctxlen, &newctx, &newlen, &err),
             DYNAMO_OK, err);
  dynamo_result_destroy(result);
  CHECK(newctx != NULL && newlen > 0);
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_OK, err);
  CHECK(dynamo_result_count(result) == 1);
  CHECK(HasValues(result, (const char* const[]){"purple"}, 1));
  dynamo_result_destroy(result);

  /* The context a put returned works as well as a get's. */
  CHECK_CODE(dynamo_put(c, key, strlen(key), "green", 5, newctx, newlen, NULL, NULL, &err),
             DYNAMO_OK, err);
  dynamo_free(newctx);
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_OK, err);
  CHECK(HasValues(result, (const char* const[]){"green"}, 1));
  dynamo_result_destroy(result);
  ClearError(&err);
}

static void TestDelete(dynamo_client_t* c) {
  char key[128];
  Key(key, sizeof(key), "deleted");
  char* err = NULL;
  CHECK_CODE(dynamo_put(c, key, strlen(key), "doomed", 6, NULL, 0, NULL, NULL, &err), DYNAMO_OK,
             err);
  dynamo_result_t* result = NULL;
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_OK, err);
  size_t ctxlen = 0;
  const char* rctx = dynamo_result_context(result, &ctxlen);
  char* delctx = NULL;
  size_t dellen = 0;
  CHECK_CODE(dynamo_del(c, key, strlen(key), rctx, ctxlen, &delctx, &dellen, &err), DYNAMO_OK, err);
  dynamo_result_destroy(result);
  CHECK(delctx != NULL && dellen > 0);
  dynamo_free(delctx);

  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_NOT_FOUND, err);
  CHECK(err == NULL);
  CHECK(dynamo_result_count(result) == 0);
  /* Tombstones only: there is a context, and a write with it revives the key. */
  rctx = dynamo_result_context(result, &ctxlen);
  CHECK(ctxlen > 0);
  CHECK_CODE(dynamo_put(c, key, strlen(key), "back", 4, rctx, ctxlen, NULL, NULL, &err), DYNAMO_OK,
             err);
  dynamo_result_destroy(result);
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_OK, err);
  CHECK(HasValues(result, (const char* const[]){"back"}, 1));
  dynamo_result_destroy(result);

  /* Without a context a delete removes what the key holds now. */
  CHECK_CODE(dynamo_del(c, key, strlen(key), NULL, 0, NULL, NULL, &err), DYNAMO_OK, err);
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_NOT_FOUND, err);
  CHECK(dynamo_result_count(result) == 0);
  dynamo_result_destroy(result);
  ClearError(&err);
}

static void TestRejectedInput(dynamo_client_t* c) {
  char key[128];
  Key(key, sizeof(key), "rejected");
  char* err = NULL;

  /* Garbage as a context. */
  static const char kGarbage[] = "not a context \x01\x02\xfe";
  char* ctx = (char*)&err;
  CHECK_CODE(dynamo_put(c, key, strlen(key), "v", 1, kGarbage, sizeof(kGarbage), &ctx, NULL, &err),
             DYNAMO_INVALID_ARGUMENT, err);
  CHECK(ctx == NULL);
  CHECK_CONTAINS(err, "context");
  ClearError(&err);
  CHECK_CODE(dynamo_del(c, key, strlen(key), kGarbage, sizeof(kGarbage), NULL, NULL, &err),
             DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "context");
  ClearError(&err);

  /* A value one byte over the nodes' limit; at the limit it is taken. */
  char* big = malloc(g_max_value_bytes + 1);
  if (big == NULL) {
    CHECK(big != NULL);
    return;
  }
  memset(big, 'v', g_max_value_bytes + 1);
  CHECK_CODE(dynamo_put(c, key, strlen(key), big, g_max_value_bytes + 1, NULL, 0, NULL, NULL, &err),
             DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "exceeds");
  ClearError(&err);
  CHECK_CODE(dynamo_put(c, key, strlen(key), big, g_max_value_bytes, NULL, 0, NULL, NULL, &err),
             DYNAMO_OK, err);
  dynamo_result_t* result = NULL;
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_OK, err);
  size_t len = 0;
  CHECK(dynamo_result_value(result, 0, &len) != NULL && len == g_max_value_bytes);
  dynamo_result_destroy(result);
  free(big);

  /* A key over the default limit of 64 KiB. */
  const size_t keylen = 64 * 1024 + 1;
  char* bigkey = malloc(keylen);
  if (bigkey != NULL) {
    memset(bigkey, 'k', keylen);
    CHECK_CODE(dynamo_put(c, bigkey, keylen, "v", 1, NULL, 0, NULL, NULL, &err),
               DYNAMO_INVALID_ARGUMENT, err);
    CHECK_CONTAINS(err, "key");
    CHECK_CODE(dynamo_get(c, bigkey, keylen, &result, &err), DYNAMO_INVALID_ARGUMENT, err);
    CHECK(result == NULL);
    free(bigkey);
  }
  ClearError(&err);
}

static void TestStatusJson(dynamo_client_t* c) {
  char* err = NULL;
  char* json = NULL;
  CHECK_CODE(dynamo_status_json(c, &json, &err), DYNAMO_OK, err);
  CHECK(json != NULL && json[0] == '{' && json[strlen(json) - 1] == '}');
  CHECK_CONTAINS(json, "\"node_id\"");
  CHECK_CONTAINS(json, "\"forwarded\"");
  dynamo_free(json);
  ClearError(&err);
}

/* R and W from the options: refused by the node above N, honoured up to it. */
static void TestQuorums(void) {
  char key[128];
  Key(key, sizeof(key), "quorum");
  char* err = NULL;
  dynamo_result_t* result = NULL;

  dynamo_options_t* o = MakeOptions(g_endpoints, 1, DYNAMO_MODE_SERVER);
  dynamo_options_set_write_quorum(o, 4);
  dynamo_options_set_read_quorum(o, 4);
  dynamo_client_t* c = dynamo_client_create(o, &err);
  CHECK_CODE(dynamo_put(c, key, strlen(key), "v", 1, NULL, 0, NULL, NULL, &err),
             DYNAMO_INVALID_ARGUMENT, err);
  CHECK_CONTAINS(err, "w=4");
  CHECK_CODE(dynamo_del(c, key, strlen(key), NULL, 0, NULL, NULL, &err), DYNAMO_INVALID_ARGUMENT,
             err);
  CHECK_CONTAINS(err, "w=4");
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_INVALID_ARGUMENT, err);
  CHECK(result == NULL);
  CHECK_CONTAINS(err, "r=4");
  ClearError(&err);
  dynamo_client_destroy(c);

  /* R = W = N = 3: every replica answers. The options were copied by the
   * first client, so changing them now does not change it. */
  dynamo_options_set_write_quorum(o, 3);
  dynamo_options_set_read_quorum(o, 3);
  c = dynamo_client_create(o, &err);
  dynamo_options_destroy(o); /* the client keeps its own copy */
  CHECK_CODE(dynamo_put(c, key, strlen(key), "all3", 4, NULL, 0, NULL, NULL, &err), DYNAMO_OK, err);
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_OK, err);
  CHECK(HasValues(result, (const char* const[]){"all3"}, 1));
  dynamo_result_destroy(result);
  dynamo_client_destroy(c);

  /* R = W = 1. */
  o = MakeOptions(g_endpoints, 1, DYNAMO_MODE_SERVER);
  dynamo_options_set_write_quorum(o, 1);
  dynamo_options_set_read_quorum(o, 1);
  c = dynamo_client_create(o, &err);
  dynamo_options_destroy(o);
  CHECK_CODE(dynamo_put(c, key, strlen(key), "one", 3, NULL, 0, NULL, NULL, &err), DYNAMO_OK, err);
  CHECK_CODE(dynamo_get(c, key, strlen(key), &result, &err), DYNAMO_OK, err);
  CHECK(dynamo_result_count(result) >= 1);
  dynamo_result_destroy(result);
  dynamo_client_destroy(c);
  ClearError(&err);
}

/* The reads and writes every mode must get right. */
static void TestReadsAndWrites(dynamo_client_t* c) {
  TestBinaryRoundTrip(c);
  TestNotFound(c);
  TestSiblings(c);
  TestDelete(c);
  TestRejectedInput(c);
  TestStatusJson(c);
}

/* ---- one client, several threads */

enum { kThreads = 4, kOpsPerThread = 40 };

typedef struct {
  dynamo_client_t* client;
  int index;
  int failures;
  char first_failure[256];
} Worker;

static void WorkerFailed(Worker* w, const char* what, int rc, const char* err) {
  if (w->failures++ == 0) {
    snprintf(w->first_failure, sizeof(w->first_failure), "%s: %s (%s)", what, dynamo_code_name(rc),
             err ? err : "no message");
  }
}

static void* WorkerMain(void* arg) {
  Worker* w = arg;
  char* err = NULL;
  for (int i = 0; i < kOpsPerThread; ++i) {
    char key[128], value[64];
    snprintf(key, sizeof(key), "%sthread-%d-%d", g_key_prefix, w->index, i);
    snprintf(value, sizeof(value), "value-%d-%d", w->index, i);
    int rc =
        dynamo_put(w->client, key, strlen(key), value, strlen(value), NULL, 0, NULL, NULL, &err);
    if (rc != DYNAMO_OK) {
      WorkerFailed(w, "put", rc, err);
      continue;
    }
    dynamo_result_t* result = NULL;
    rc = dynamo_get(w->client, key, strlen(key), &result, &err);
    if (rc != DYNAMO_OK) {
      WorkerFailed(w, "get", rc, err);
    } else if (!HasValues(result, (const char* const[]){value}, 1)) {
      WorkerFailed(w, "get returned other values", rc, NULL);
    }
    dynamo_result_destroy(result);
  }
  dynamo_free(err);
  return NULL;
}

static void TestSharedClient(int mode) {
  dynamo_client_t* c = MakeClient(g_endpoints, g_node_count, mode);
  Worker workers[kThreads];
  pthread_t threads[kThreads];
  for (int i = 0; i < kThreads; ++i) {
    workers[i] = (Worker){.client = c, .index = i + kThreads * mode};
    CHECK(pthread_create(&threads[i], NULL, WorkerMain, &workers[i]) == 0);
  }
  for (int i = 0; i < kThreads; ++i) {
    pthread_join(threads[i], NULL);
    Report(workers[i].failures == 0, __FILE__, __LINE__,
           "thread %d (mode %d): %d of %d operations failed; first: %s", i, mode,
           workers[i].failures, kOpsPerThread, workers[i].first_failure);
  }
  dynamo_client_destroy(c);
}

/* ---- modes */

static void TestServerMode(void) {
  dynamo_client_t* c = MakeClient(g_endpoints, 1, DYNAMO_MODE_SERVER);
  TestCallArguments(c);
  TestReadsAndWrites(c);
  dynamo_client_destroy(c);
}

static void TestClientMode(void) {
  char* err = NULL;
  dynamo_options_t* o = MakeOptions(g_endpoints, 1, DYNAMO_MODE_CLIENT);
  CHECK_CODE(dynamo_options_set_ring_refresh_ms(o, 60000, &err), DYNAMO_OK, err);
  dynamo_client_t* c = dynamo_client_create(o, &err);
  dynamo_options_destroy(o);
  CHECK(c != NULL);
  /* Keys of their own, so nothing the server-mode run wrote is read here. */
  g_key_scope = "client-";
  TestReadsAndWrites(c);
  g_key_scope = "";

  /* What the client mode wrote, a server-mode client reads, and back. */
  char key[128];
  Key(key, sizeof(key), "across-modes");
  CHECK_CODE(dynamo_put(c, key, strlen(key), "from-client-mode", 16, NULL, 0, NULL, NULL, &err),
             DYNAMO_OK, err);
  dynamo_client_t* s = MakeClient(g_endpoints + g_node_count - 1, 1, DYNAMO_MODE_SERVER);
  dynamo_result_t* result = NULL;
  CHECK_CODE(dynamo_get(s, key, strlen(key), &result, &err), DYNAMO_OK, err);
  CHECK(HasValues(result, (const char* const[]){"from-client-mode"}, 1));
  dynamo_result_destroy(result);
  dynamo_client_destroy(s);
  dynamo_client_destroy(c);
  ClearError(&err);
}

/* ---- the routing mode (tests/integration/test_capi.py) */

static int RunRouting(const char* mode_name, int count, const char* endpoint,
                      const char* key_prefix) {
  int mode;
  if (strcmp(mode_name, "server") == 0) {
    mode = DYNAMO_MODE_SERVER;
  } else if (strcmp(mode_name, "client") == 0) {
    mode = DYNAMO_MODE_CLIENT;
  } else {
    fprintf(stderr, "capi_test: --routing takes server or client, not %s\n", mode_name);
    return 2;
  }
  dynamo_client_t* c = MakeClient(&endpoint, 1, mode);
  char* err = NULL;
  int ok = 0;
  for (int i = 0; i < count; ++i) {
    char key[128];
    snprintf(key, sizeof(key), "%sroute-%s-%d", key_prefix, mode_name, i);
    int rc = dynamo_put(c, key, strlen(key), "v", 1, NULL, 0, NULL, NULL, &err);
    if (rc == DYNAMO_OK) {
      ++ok;
    } else {
      fprintf(stderr, "capi_test: put %s: %s: %s\n", key, dynamo_code_name(rc), err);
    }
  }
  dynamo_free(err);
  dynamo_client_destroy(c);
  printf("routing: %d of %d puts ok in %s mode\n", ok, count, mode_name);
  return ok == count ? 0 : 1;
}

/* ---- main */

static void Usage(void) {
  fprintf(stderr,
          "usage: dynamo_capi_test [--max-value-bytes N] [--time-scale N] ENDPOINT...\n"
          "       dynamo_capi_test --routing server|client COUNT ENDPOINT [KEY_PREFIX]\n");
  exit(2);
}

/* Splits DYNAMO_CAPI_ENDPOINTS into g_endpoints (the string is kept). */
static void EndpointsFromEnvironment(void) {
  const char* env = getenv("DYNAMO_CAPI_ENDPOINTS");
  if (env == NULL) return;
  static char copy[4096];
  snprintf(copy, sizeof(copy), "%s", env);
  for (char* tok = strtok(copy, " ,"); tok != NULL && g_node_count < MAX_NODES;
       tok = strtok(NULL, " ,")) {
    g_endpoints[g_node_count++] = tok;
  }
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  snprintf(g_key_prefix, sizeof(g_key_prefix), "capi-%ld-%ld-", (long)getpid(), (long)time(NULL));

  if ((argc == 5 || argc == 6) && strcmp(argv[1], "--routing") == 0) {
    return RunRouting(argv[2], atoi(argv[3]), argv[4], argc == 6 ? argv[5] : g_key_prefix);
  }
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--max-value-bytes") == 0 && i + 1 < argc) {
      g_max_value_bytes = (size_t)strtoull(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--time-scale") == 0 && i + 1 < argc) {
      g_time_scale = (uint32_t)strtoul(argv[++i], NULL, 10);
      if (g_time_scale == 0) Usage();
    } else if (argv[i][0] == '-') {
      Usage();
    } else if (g_node_count < MAX_NODES) {
      g_endpoints[g_node_count++] = argv[i];
    }
  }
  if (g_node_count == 0) EndpointsFromEnvironment();
  if (g_node_count < 3 || g_max_value_bytes == 0) Usage();

  TestVersion();
  TestCodeNames();
  TestNullSafety();
  TestOptions();
  TestErrptrSemantics();
  TestUnreachable();
  TestTimeout();
  TestServerMode();
  TestClientMode();
  TestQuorums();
  TestSharedClient(DYNAMO_MODE_SERVER);
  TestSharedClient(DYNAMO_MODE_CLIENT);

  if (g_failed > 0) {
    printf("capi_test: %d checks passed, %d FAILED\n", g_passed, g_failed);
    return 1;
  }
  printf("capi_test: %d checks passed\n", g_passed);
  return 0;
}
