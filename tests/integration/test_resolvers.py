"""Server-side resolvers (DESIGN.md 3.8, docs/resolvers.md).

Real siblings are made the way applications make them: two writes of one key
through two coordinators, neither having read the other (no context). Then
a read through dynamoctl, the Redis protocol, and the C API must answer one
value, the resolver's, and the value must be written back so that every
replica's engine ends up holding that one version. A resolver that fails
leaves the siblings to the client; one of a wrong ABI stops dynamod at start.
"""

import importlib.util
import os
import time
import unittest

import redis

from harness import (DynamoTestCase, EXIT_NOT_FOUND, LIB_DIR, TEST_PLUGIN_DIR, free_port,
                     local_holders, replicas_of, ring_of, run_dynamod, start_with_redis,
                     status_of)

EXAMPLES_DIR = os.environ.get("DYNAMO_EXAMPLES_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")
CART_RESOLVER = os.path.join(LIB_DIR, "dynamo", "examples", "cart_resolver.so")
FAILING = os.path.join(TEST_PLUGIN_DIR, "resolver_fails.so")
CONVERGE_S = 15.0


MAX_VALUE = 64  # --max-value-bytes: a union can outgrow it


def resolver_args():
    return ["--resolver", "lww", "--resolver", "set/=union",
            "--resolver", "cart/=" + CART_RESOLVER, "--resolver", "raw/=" + FAILING,
            "--max-value-bytes", str(MAX_VALUE)]


def load_cart_example():
    """examples/python/cart.py as a module: its Client drives the C API."""
    spec = importlib.util.spec_from_file_location(
        "cart_example", os.path.join(EXAMPLES_DIR, "python", "cart.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ResolverTest(DynamoTestCase):

    def setUp(self):
        super().setUp()
        for path in (CART_RESOLVER, FAILING):
            self.assertTrue(os.path.isfile(path), "not built: " + path)
        nodes, ports = [], []
        for _ in range(3):
            node, port = start_with_redis(lambda args: self.start_cluster_node(
                seed=nodes[0] if nodes else None, extra_args=list(args) + resolver_args()))
            nodes.append(node)
            ports.append(port)
        self.wait_converged(nodes)
        self.nodes, self.ports = nodes, ports

    def siblings(self, key, first, second):
        """Writes first through node 1 and second through node 2, both
        without a context, and waits until every engine holds both."""
        self.put(self.nodes[0], key, first)
        time.sleep(0.01)  # a later timestamp for second (lww), though a tie is ordered too
        self.put(self.nodes[1], key, second)
        for node in self.nodes:
            self.wait_local(node, key, [first, second], CONVERGE_S)

    def wait_converged_on(self, key, expected):
        """Every engine holds exactly expected (a list of bytes; [] for a
        tombstone or nothing)."""
        end = time.monotonic() + CONVERGE_S
        while True:
            holders = local_holders(self.nodes, key)
            got = {n.node_id: holders.get(n.node_id, []) for n in self.nodes}
            if all(v == sorted(expected) for v in got.values()):
                return
            if time.monotonic() > end:
                self.fail("%s: engines hold %r, expected %r everywhere" % (key, got, expected))
            time.sleep(0.1)

    def resolved(self, node):
        return status_of(node)["resolver"]

    def test_lww_answers_the_latest_and_writes_it_back(self):
        key = "user/1"
        self.siblings(key, b"first", b"second")
        before = self.resolved(self.nodes[2])
        self.assertEqual(before["errors"], 0)
        self.assertIn("lww", before["configured"])
        values, context = self.get_json(self.nodes[2], key)
        self.assertEqual(values, [b"second"])
        self.assertEqual(self.resolved(self.nodes[2])["resolved"], before["resolved"] + 1)
        # Written back: every engine holds the one version, and reads no
        # longer resolve anything.
        self.wait_converged_on(key, [b"second"])
        self.assert_values(self.nodes[0], key, [b"second"])
        self.assertEqual(self.resolved(self.nodes[0])["resolved"], 0)
        # The read's context is the write-back's: a put with it supersedes it.
        self.put(self.nodes[0], key, "third", context=context)
        self.assert_values(self.nodes[1], key, [b"third"])
        self.wait_converged_on(key, [b"third"])

    def test_lww_with_a_newer_tombstone_deletes_and_an_older_one_loses(self):
        # Both writes from one read (base's context): a delete with it and a
        # put with it are siblings. (A delete without a context deletes
        # whatever its coordinator holds: docs/design.md.)
        base = self.put(self.nodes[0], "user/gone", "base")
        self.put(self.nodes[0], "user/gone", "v", context=base)
        time.sleep(0.01)
        self.delete(self.nodes[1], "user/gone", context=base)
        self.wait_local(self.nodes[2], "user/gone", [b"v"], CONVERGE_S)
        before = self.resolved(self.nodes[2])["resolved"]
        r = self.ctl(self.nodes[2], "get", "user/gone")
        self.assertEqual(r.returncode, EXIT_NOT_FOUND, r.describe())
        self.assertEqual(self.resolved(self.nodes[2])["resolved"], before + 1)
        self.wait_converged_on("user/gone", [])
        r = self.ctl(self.nodes[0], "get", "user/gone")
        self.assertEqual(r.returncode, EXIT_NOT_FOUND, r.describe())

        base = self.put(self.nodes[0], "user/back", "base")
        self.delete(self.nodes[0], "user/back", context=base)
        time.sleep(0.01)
        self.put(self.nodes[1], "user/back", "alive", context=base)
        self.wait_local(self.nodes[2], "user/back", [b"alive"], CONVERGE_S)
        before = self.resolved(self.nodes[2])["resolved"]
        self.assert_values(self.nodes[2], "user/back", [b"alive"])
        # Without a resolver the read would answer the same; it resolved.
        self.assertEqual(self.resolved(self.nodes[2])["resolved"], before + 1)
        self.wait_converged_on("user/back", [b"alive"])

    def test_union_merges_binary_members_through_the_redis_protocol(self):
        a, b = b"a\x00\nshared", b"\xffb\nshared"
        self.siblings("set/1", a, b)
        client = redis.Redis(host="127.0.0.1", port=self.ports[2], socket_timeout=10)
        self.addCleanup(client.close)
        # Without a resolver GET answers -CONFLICT; with one, the union.
        self.assertEqual(client.get("set/1"), b"a\x00\nshared\n\xffb")
        self.wait_converged_on("set/1", [b"a\x00\nshared\n\xffb"])
        # MGET reads through the resolver too. Its two reads of set/2 find
        # the same siblings at once: the second waits for the first's
        # write-back instead of writing the same value again (which would
        # leave two versions of it, siblings once more).
        self.siblings("set/2", b"y\nx", b"z")
        before = self.resolved(self.nodes[2])["resolved"]
        self.assertEqual(client.mget(["set/2", "set/2", "set/none"]),
                         [b"x\ny\nz", b"x\ny\nz", None])
        self.assertEqual(self.resolved(self.nodes[2])["resolved"], before + 1)
        self.wait_converged_on("set/2", [b"x\ny\nz"])
        for node in self.nodes:
            values, _ = self.get_json(node, "set/2", extra=["--local"])
            self.assertEqual(values, [b"x\ny\nz"], node.name)

    def test_dyn_get_and_exists_read_through_the_resolver(self):
        client = redis.Redis(host="127.0.0.1", port=self.ports[2], socket_timeout=10)
        self.addCleanup(client.close)
        # DYN.GET: the write-back's context, then the one resolved value.
        self.siblings("set/3", b"b", b"a")
        reply = client.execute_command("DYN.GET", "set/3")
        self.assertEqual(len(reply), 2, reply)
        context, value = reply
        self.assertEqual(value, b"a\nb")
        self.assertTrue(context)
        # That context covers the written-back version: a put with it
        # supersedes it (a put without it would be a sibling of "a\nb", and
        # union would answer both).
        client.execute_command("DYN.PUT", "set/3", "c", context)
        self.wait_converged_on("set/3", [b"c"])
        self.assertEqual(client.get("set/3"), b"c")

        # EXISTS: a live version beside a newer tombstone resolves (lww) to
        # a delete, so the key does not exist; without a resolver it would.
        base = self.put(self.nodes[0], "user/e", "base")
        self.put(self.nodes[0], "user/e", "v", context=base)
        time.sleep(0.01)
        self.delete(self.nodes[1], "user/e", context=base)
        self.wait_local(self.nodes[2], "user/e", [b"v"], CONVERGE_S)
        self.siblings("user/f", b"one", b"two")
        before = self.resolved(self.nodes[2])["resolved"]
        self.assertEqual(client.exists("user/e"), 0)
        self.assertEqual(client.exists("user/f"), 1)
        self.assertEqual(self.resolved(self.nodes[2])["resolved"], before + 2)
        self.wait_converged_on("user/e", [])
        self.wait_converged_on("user/f", [b"two"])

    def test_the_c_api_get_is_resolved_by_the_example_cart_resolver(self):
        cart = load_cart_example()
        lib = cart.load_library()
        with cart.Client(lib, [self.nodes[2].endpoint]) as client:
            _, empty = client.get(b"cart/42")
            first = client.put(b"cart/42", b"apple", empty)
            client.put(b"cart/42", b"apple,book", first)  # two shoppers, one old cart
            client.put(b"cart/42", b"apple,pen", first)
            values, _ = client.get(b"cart/42")
            self.assertEqual(values, [b"apple,book,pen"])
        self.wait_converged_on("cart/42", [b"apple,book,pen"])

    def test_a_resolved_value_over_the_limit_leaves_the_siblings(self):
        a, b = b"a" * 40, b"b" * 40  # their union is 81 bytes, over MAX_VALUE
        self.siblings("set/big", a, b)
        before = self.resolved(self.nodes[2])
        values, _ = self.get_json(self.nodes[2], "set/big")
        self.assertEqual(values, [a, b])
        after = self.resolved(self.nodes[2])
        self.assertEqual(after["errors"], before["errors"] + 1)
        self.assertEqual(after["resolved"], before["resolved"])
        self.assertIn("exceeds --max-value-bytes %d" % MAX_VALUE, self.nodes[2].log())
        self.wait_converged_on("set/big", [a, b])

    def test_a_failing_resolver_returns_the_siblings_logs_and_counts(self):
        self.siblings("raw/1", b"x", b"y")
        before = self.resolved(self.nodes[2])
        values, _ = self.get_json(self.nodes[2], "raw/1")
        self.assertEqual(values, [b"x", b"y"])
        after = self.resolved(self.nodes[2])
        self.assertEqual(after["errors"], before["errors"] + 1)
        self.assertEqual(after["resolved"], before["resolved"])
        self.assertIn("cannot be reconciled (resolver_fails)", self.nodes[2].log())
        # Nothing was written: the siblings stay.
        self.wait_converged_on("raw/1", [b"x", b"y"])
        # The node keeps serving, and other prefixes still resolve.
        self.siblings("user/after", b"1", b"2")
        self.assert_values(self.nodes[2], "user/after", [b"2"])


class ResolverForwardTest(DynamoTestCase):
    """N=2 on three nodes: a read coordinated by the node that holds no
    replica of the key forwards its write-back to a replica."""

    def test_a_node_that_is_no_replica_writes_back_through_a_replica(self):
        nodes = self.start_cluster(3, extra_args=["--replicas", "2", "--resolver", "lww"])
        ring = ring_of(nodes[0])
        key = next("k%d" % i for i in range(1000)
                   if nodes[2].node_id not in replicas_of("k%d" % i, ring))
        owners = [n for n in nodes if n.node_id in replicas_of(key, ring)]
        self.put(owners[0], key, "first")
        time.sleep(0.01)
        self.put(owners[1], key, "second")
        for node in owners:
            self.wait_local(node, key, [b"first", b"second"], CONVERGE_S)
        self.assert_values(nodes[2], key, [b"second"])
        self.assertEqual(status_of(nodes[2])["resolver"]["resolved"], 1)
        self.assertGreaterEqual(status_of(nodes[2])["forwarded"], 1)
        for node in owners:
            self.wait_local(node, key, [b"second"], CONVERGE_S)
        self.assertEqual(local_holders([nodes[2]], key), {})


class ResolverStartTest(DynamoTestCase):

    def test_a_resolver_of_a_wrong_abi_stops_dynamod_with_one_line(self):
        bad = os.path.join(TEST_PLUGIN_DIR, "resolver_bad_abi.so")
        r = run_dynamod(["--listen", "tcp://127.0.0.1:%d" % free_port(), "--resolver", "x/=" + bad,
                         "--data-dir", os.path.join(self.work_dir, "d")])
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertOneErrorLine(r, bad, "resolver ABI version 999", "speaks resolver ABI version 1")

    def test_an_unknown_resolver_and_a_bad_spec_are_refused_by_check_config(self):
        d = os.path.join(self.work_dir, "d")
        r = run_dynamod(["--check-config", "--data-dir", d, "--resolver", "nosuch"])
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertOneErrorLine(r, "unknown resolver 'nosuch'")
        r = run_dynamod(["--check-config", "--data-dir", d, "--resolver", "=lww"])
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertOneErrorLine(r, "prefix before '=' is empty")
        r = run_dynamod(["--check-config", "--data-dir", d, "--resolver", "lww",
                         "--resolver", "set/=union"])
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertIn("resolvers lww, set/=union", r.out)


if __name__ == "__main__":
    unittest.main()
