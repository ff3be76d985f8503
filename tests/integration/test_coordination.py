"""Who coordinates a write (paper 6.4): the node that answered the read before
it fastest, carried in the context, and the client library's own routing.

Four nodes with N=3, so each key has a node that is not one of its replicas
and a write sent there is forwarded. A context returned by a get names the
replica that answered first; one returned by a put names the replica that
coordinated it (docs/client-api.md, docs/protocol.md)."""

import base64
import ctypes
import os
import unittest

import msgpack

import harness
from harness import DynamoTestCase, replicas_of, ring_of, run_ctl, status_of

KEYS = ["coord-%d" % i for i in range(40)]


def hint_of(context_b64):
    """The coordinator named by a context token, or None."""
    items = msgpack.unpackb(base64.b64decode(context_b64), raw=False)
    return items[2] if len(items) > 2 else None


def ctl_json(node, *args):
    r = run_ctl(node.endpoint, *args, json_output=True)
    if r.returncode != harness.EXIT_OK:
        raise AssertionError(r.describe())
    return r.json()


def load_client_library():
    path = os.path.join(harness.LIB_DIR, "libdynamo-client.so")
    if not os.path.isfile(path):
        raise AssertionError("%s is not built (set DYNAMO_LIB_DIR)" % path)
    lib = ctypes.CDLL(path)
    P = ctypes.c_void_p
    lib.dynamo_options_create.restype = P
    lib.dynamo_options_add_node.argtypes = [P, ctypes.c_char_p, ctypes.POINTER(P)]
    lib.dynamo_options_set_mode.argtypes = [P, ctypes.c_int, ctypes.POINTER(P)]
    lib.dynamo_options_destroy.argtypes = [P]
    lib.dynamo_client_create.restype = P
    lib.dynamo_client_create.argtypes = [P, ctypes.POINTER(P)]
    lib.dynamo_client_destroy.argtypes = [P]
    lib.dynamo_put.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                               ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
                               ctypes.POINTER(P), ctypes.POINTER(ctypes.c_size_t),
                               ctypes.POINTER(P)]
    lib.dynamo_free.argtypes = [P]
    return lib


class ReadYourWritesTest(DynamoTestCase):

    def setUp(self):
        super().setUp()
        self.nodes = self.start_cluster(4)
        self.ring = ring_of(self.nodes[0])
        self.by_id = {n.name: n for n in self.nodes}

    def outsider(self, key):
        """A node that does not replicate key."""
        replicas = replicas_of(key, self.ring)
        return next(n for n in self.nodes if n.name not in replicas)

    def test_get_names_an_answering_replica_and_a_forwarded_write_goes_there(self):
        moved = 0
        self.addCleanup(lambda: print("fastest replica was not the first for %d of %d keys"
                                      % (moved, len(KEYS))))
        for key in KEYS:
            outsider = self.outsider(key)
            replicas = replicas_of(key, self.ring)
            ctl_json(outsider, "put", key, "v0")
            got = ctl_json(outsider, "get", key)
            fastest = hint_of(got["context"])
            self.assertIn(fastest, replicas, "get context of %s names %r" % (key, fastest))
            # The write carries that context through a node that is no
            # replica: it is forwarded to the named replica, which says so
            # in the context it returns.
            put = ctl_json(outsider, "put", key, "v1", "--context", got["context"])
            self.assertEqual(hint_of(put["context"]), fastest, key)
            moved += fastest != replicas[0]
            # And the write superseded what was read: one version.
            self.assertEqual(ctl_json(outsider, "get", key)["values_b64"],
                             [base64.b64encode(b"v1").decode()])
        # Without a hint every forwarded write would go to the first replica;
        # make sure the check above saw some that did not.
        self.assertGreater(moved, 0, "every fastest replica was the first one")

    def test_without_a_context_a_forwarded_write_goes_to_the_first_replica(self):
        for key in KEYS[:10]:
            put = ctl_json(self.outsider(key), "put", key, "v")
            self.assertEqual(hint_of(put["context"]), replicas_of(key, self.ring)[0], key)

    def test_client_mode_sends_a_write_to_the_replica_its_context_names(self):
        lib = load_client_library()
        err = ctypes.c_void_p()
        opt = lib.dynamo_options_create()
        self.addCleanup(lib.dynamo_options_destroy, opt)
        self.assertEqual(lib.dynamo_options_add_node(opt, self.nodes[0].endpoint.encode(),
                                                     ctypes.byref(err)), 0)
        self.assertEqual(lib.dynamo_options_set_mode(opt, 1, ctypes.byref(err)), 0)
        client = lib.dynamo_client_create(opt, ctypes.byref(err))
        self.assertTrue(client)
        self.addCleanup(lib.dynamo_client_destroy, client)

        def put(key, context):
            out, outlen = ctypes.c_void_p(), ctypes.c_size_t()
            k = key.encode()
            rc = lib.dynamo_put(client, k, len(k), b"w", 1, context, len(context),
                                ctypes.byref(out), ctypes.byref(outlen), ctypes.byref(err))
            self.assertEqual(rc, 0, ctypes.string_at(err.value) if err.value else rc)
            token = base64.b64encode(ctypes.string_at(out.value, outlen.value)).decode()
            lib.dynamo_free(out)
            return hint_of(token)

        for key in KEYS[:10]:
            replicas = replicas_of(key, self.ring)
            # A blind write goes to the first replica.
            self.assertEqual(put(key, b""), replicas[0], key)
            # A write whose context names another replica goes there: the
            # last replica coordinates a write sent to it, and says so.
            last = self.by_id[replicas[-1]]
            named = ctl_json(last, "put", key, "x")["context"]
            self.assertEqual(hint_of(named), replicas[-1])
            self.assertEqual(put(key, base64.b64decode(named)), replicas[-1], key)

    def test_bad_hint_is_refused_like_any_bad_context(self):
        key = KEYS[0]
        clock = [[], []]
        for hint in (7, ["x"]):
            token = base64.b64encode(msgpack.packb(clock + [hint])).decode()
            r = run_ctl(self.outsider(key).endpoint, "put", key, "v", "--context", token)
            self.assertEqual(r.returncode, harness.EXIT_REJECTED, r.describe())
        # The node still serves.
        self.assertIn("node_id", status_of(self.nodes[0]))


if __name__ == "__main__":
    unittest.main()
