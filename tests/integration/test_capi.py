"""The C API (dynamo/dynamo.h, libdynamo-client.so) from C.

dynamo_capi_test (tests/capi/capi_test.c) calls every function of the API,
error paths included, against a real three-node cluster; it is run here once
plainly and once under valgrind as a leak check. A second case counts the
writes the nodes forward to see client-driven coordination (paper 6.4) skip
the forwarding hop that server-driven coordination takes.
"""

import os
import re
import shutil
import unittest
import uuid

from harness import (BIN_DIR, LIB_DIR, TIME_SCALE, DynamoTestCase, forwarded_total,
                     partition_of, run_program)

CAPI_TEST = os.path.join(BIN_DIR, "dynamo_capi_test")

# The nodes' --max-value-bytes: small, so the test's oversized value is small too.
VALUE_LIMIT = 4096
# The suite makes a few hundred checks; far fewer means a part of it did not run.
MIN_CHECKS = 300
SUMMARY = re.compile(r"^capi_test: (\d+) checks passed$", re.M)

CAPI_DEADLINE = 180.0 * TIME_SCALE
# valgrind runs the program some 20 to 50 times slower; the program's own
# deadlines (a node that never answers) are stretched as much.
VALGRIND_TIME_SCALE = 5
VALGRIND_DEADLINE = 600.0 * TIME_SCALE

ROUTING_PUTS = 100


def run_capi_test(args, prefix=(), deadline=CAPI_DEADLINE, env=None):
    """Runs [prefix...] dynamo_capi_test args... with the library of
    DYNAMO_LIB_DIR; returns a Result."""
    argv = list(prefix) + [CAPI_TEST] + list(args)
    env = dict(env if env is not None else os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (LIB_DIR, env.get("LD_LIBRARY_PATH")) if p)
    return run_program(argv, deadline, env=env)


def built_with_address_sanitizer(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


class CApiTest(DynamoTestCase):

    def setUp(self):
        super().setUp()
        if not os.path.isfile(CAPI_TEST):
            self.fail("%s is not built (target dynamo_capi_test; DYNAMO_BIN_DIR=%s)"
                      % (CAPI_TEST, BIN_DIR))

    def start_capi_cluster(self):
        """Three memory-engine nodes (N=3, so every node holds every key)
        with the small value limit; returns their endpoints."""
        nodes = self.start_cluster(3, extra_args=["--max-value-bytes", str(VALUE_LIMIT)])
        return [n.endpoint for n in nodes]

    def assertAllChecksPassed(self, result):
        self.assertEqual(result.returncode, 0, result.describe())
        m = SUMMARY.search(result.out)
        self.assertIsNotNone(m, "no summary line: " + result.describe())
        self.assertGreaterEqual(int(m.group(1)), MIN_CHECKS, result.describe())
        self.assertNotIn("FAILED", result.out + result.stderr, result.describe())

    def test_every_call_against_a_cluster(self):
        endpoints = self.start_capi_cluster()
        result = run_capi_test(["--max-value-bytes", str(VALUE_LIMIT)] + endpoints)
        self.assertAllChecksPassed(result)

    def test_no_leaks_under_valgrind(self):
        if built_with_address_sanitizer(CAPI_TEST):
            # A -DDYNAMO_SANITIZE=address build cannot run under valgrind;
            # LeakSanitizer does the same check and fails the run on a leak.
            endpoints = self.start_capi_cluster()
            result = run_capi_test(["--max-value-bytes", str(VALUE_LIMIT)] + endpoints,
                                   env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))
            self.assertAllChecksPassed(result)
            self.assertNotIn("LeakSanitizer", result.stderr, result.describe())
            return
        valgrind = shutil.which("valgrind")
        if valgrind is None:
            self.fail("valgrind is not installed, and the C API's leak check needs it: "
                      "install the Debian package valgrind (packaging/bootstrap.sh does)")
        endpoints = self.start_capi_cluster()
        result = run_capi_test(
            ["--time-scale", str(VALGRIND_TIME_SCALE), "--max-value-bytes", str(VALUE_LIMIT)]
            + endpoints,
            prefix=[valgrind, "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                    "--error-exitcode=99", "--trace-children=no"],
            deadline=VALGRIND_DEADLINE)
        self.assertNotEqual(result.returncode, 99,
                            "valgrind found memory errors or leaks: " + result.describe())
        self.assertAllChecksPassed(result)
        self.assertRegex(result.stderr, r"ERROR SUMMARY: 0 errors", result.describe())
        # Either nothing was left at exit, or what was left is still reachable
        # (ZeroMQ's globals), never lost.
        if "no leaks are possible" not in result.stderr:
            self.assertRegex(result.stderr, r"definitely lost: 0 bytes in 0 blocks",
                             result.describe())
            self.assertRegex(result.stderr, r"indirectly lost: 0 bytes in 0 blocks",
                             result.describe())

    def test_client_mode_puts_are_not_forwarded(self):
        # Four nodes with N=3: each node is a replica of three partitions in
        # four, so a node coordinating in server mode forwards the writes of
        # keys it does not replicate.
        nodes = self.start_cluster(4)
        ring = self.wait_converged(nodes)
        self.assertEqual(ring["replicas"], 3, ring)
        prefix = "capi-routing-%s-" % uuid.uuid4().hex
        first = nodes[0]

        def keys(mode):
            return ["%sroute-%s-%d" % (prefix, mode, i) for i in range(ROUTING_PUTS)]

        def not_replicated_by_first(mode):
            return sum(1 for key in keys(mode)
                       if first.node_id not in ring["owners"][partition_of(key,
                                                                           ring["partitions"])])

        expected_forwards = not_replicated_by_first("server")
        self.assertGreater(expected_forwards, 0,
                           "every key replicated by %s: pick other keys" % first.name)
        self.assertGreater(not_replicated_by_first("client"), 0,
                           "every key replicated by %s: pick other keys" % first.name)

        # Server mode: every put goes to the configured node, which forwards
        # those it is no replica of.
        before = forwarded_total(nodes)
        r = run_capi_test(["--routing", "server", str(ROUTING_PUTS), first.endpoint, prefix])
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertIn("routing: %d of %d puts ok in server mode" % (ROUTING_PUTS, ROUTING_PUTS),
                      r.out)
        after_server = forwarded_total(nodes)
        self.assertGreaterEqual(after_server - before, expected_forwards,
                                "forwarded writes in server mode")

        # Client mode, with the ring fresh: each put goes straight to a
        # replica of its key, and no node forwards anything.
        r = run_capi_test(["--routing", "client", str(ROUTING_PUTS), first.endpoint, prefix])
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertIn("routing: %d of %d puts ok in client mode" % (ROUTING_PUTS, ROUTING_PUTS),
                      r.out)
        self.assertEqual(forwarded_total(nodes), after_server, "forwarded writes in client mode")

        # Both modes wrote every key.
        for mode in ("server", "client"):
            for key in keys(mode)[:10]:
                values, _ = self.get_json(nodes[-1], key)
                self.assertEqual(values, [b"v"], key)


if __name__ == "__main__":
    unittest.main()
