"""The example programs of examples/ (the shopping cart of the Dynamo paper,
section 4.4, in C and in Python over libdynamo-client) against a real
3-node cluster, in both coordination modes: their output says they saw the
siblings of two concurrent writes, merged them into the union of the items
and read back one version; dynamoctl then confirms, on every node, that the
key holds exactly that one version. And their failures: a node with nothing
listening, bad arguments, a library that is not there.

Where things are comes from the environment (ctest sets it):
  DYNAMO_BIN_DIR       dynamo-example-cart (the C example), dynamod, dynamoctl
  DYNAMO_LIB_DIR       libdynamo-client.so, for the Python example
  DYNAMO_EXAMPLES_DIR  the examples/ folder of the source tree
"""

import base64
import os
import sys
import unittest

from harness import (BIN_DIR, EXIT_OK, LIB_DIR, TIME_SCALE, DynamoTestCase, endpoint_of,
                     error_lines, free_port, python_env, run_ctl, run_program)

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))

EXAMPLES_DIR = os.environ.get("DYNAMO_EXAMPLES_DIR") or os.path.join(_REPO, "examples")
C_CART = os.path.join(BIN_DIR, "dynamo-example-cart")
PY_CART = os.path.join(EXAMPLES_DIR, "python", "cart.py")

EXAMPLE_DEADLINE = 60.0 * TIME_SCALE  # seconds for one run of an example

MERGED = "apple,book,pen"
SIBLINGS = ["apple,book", "apple,pen"]


def field(run, name):
    """The text after "NAME: " on the first line of run's output that starts
    with it, or None."""
    for line in run.out.splitlines():
        if line.startswith(name + ": "):
            return line[len(name) + 2:]
    return None


class ExamplesTest(DynamoTestCase):

    def setUp(self):
        super().setUp()
        if not os.path.isfile(C_CART):
            self.fail("the C example is not built: %s does not exist (target "
                      "dynamo_example_cart)" % C_CART)
        if not os.path.isfile(PY_CART):
            self.fail("the Python example is missing: %s (DYNAMO_EXAMPLES_DIR=%s)"
                      % (PY_CART, EXAMPLES_DIR))
        if not os.path.isfile(os.path.join(LIB_DIR, "libdynamo-client.so")):
            self.fail("libdynamo-client.so is not built in %s (DYNAMO_LIB_DIR)" % LIB_DIR)

    def run_example(self, lang, args, env=None):
        argv = [C_CART] if lang == "c" else [sys.executable, PY_CART]
        argv += list(args)
        full_env = dict(os.environ) if lang == "c" else python_env()
        full_env["DYNAMO_LIB_DIR"] = LIB_DIR
        full_env.pop("DYNAMO_LIB", None)
        full_env.update(env or {})
        return run_program(argv, EXAMPLE_DEADLINE, env=full_env)

    def assertCartReconciled(self, run, key, mode, nodes, existing=False):
        """The output of a successful run: siblings seen, their union merged
        and written back, one version read. existing: the key held one
        version already (an earlier run's cart), which the first put replaced."""
        self.assertEqual(run.returncode, 0, run.describe())
        self.assertEqual(run.stderr, "", run.describe())
        self.assertEqual(field(run, "cart key"), key, run.describe())
        self.assertRegex(run.out.splitlines()[0], r"^dynamo \d+\.\d+\.\d+, %s mode, %d node%s$"
                         % (mode, nodes, "" if nodes == 1 else "s"), run.describe())
        self.assertIn("existing cart: 1 version(s), replaced" if existing
                      else "empty cart (key not found)", run.out.splitlines(), run.describe())
        self.assertEqual(field(run, "put"), "apple", run.describe())
        self.assertEqual(field(run, "concurrent put 1"), "apple,book", run.describe())
        self.assertEqual(field(run, "concurrent put 2"), "apple,pen", run.describe())
        siblings = field(run, "siblings")
        self.assertIsNotNone(siblings, run.describe())
        self.assertRegex(siblings, r"^\d+$", run.describe())
        self.assertGreaterEqual(int(siblings), 2, run.describe())
        shown = [line[len("  sibling: "):] for line in run.out.splitlines()
                 if line.startswith("  sibling: ")]
        self.assertEqual(len(shown), int(siblings), run.describe())
        self.assertEqual(shown, sorted(shown), "siblings are listed sorted: " + run.describe())
        self.assertEqual(sorted(set(shown)), SIBLINGS, run.describe())
        self.assertEqual(field(run, "merged cart"), MERGED, run.describe())
        self.assertEqual(field(run, "after write-back"), "1 version", run.describe())
        self.assertEqual(field(run, "final cart"), MERGED, run.describe())
        # The steps come in order.
        order = ["cart key", "put", "concurrent put 1", "concurrent put 2", "siblings",
                 "merged cart", "after write-back", "final cart"]
        lines = run.out.splitlines()
        positions = [next(i for i, line in enumerate(lines) if line.startswith(f + ": "))
                     for f in order]
        self.assertEqual(positions, sorted(positions), run.describe())

    def assertOneVersionEverywhere(self, nodes, key):
        """dynamoctl get KEY --json through every node: found, exactly one
        version, the merged cart."""
        for node in nodes:
            r = run_ctl(node.endpoint, "get", key, json_output=True)
            self.assertEqual(r.returncode, EXIT_OK, r.describe())
            doc = r.json()
            self.assertIs(doc.get("found"), True, r.describe())
            values = [base64.b64decode(v, validate=True) for v in doc.get("values_b64", [])]
            self.assertEqual(values, [MERGED.encode()],
                             "%s through %s: %s" % (key, node.name, r.describe()))
            self.assertTrue(doc.get("context"), r.describe())

    def unique_key(self, label):
        return "cart-%s-%d-%s" % (label, os.getpid(), os.urandom(4).hex())

    # ---- against a cluster ---------------------------------------------------------

    def test_cart_examples_reconcile_siblings_on_a_cluster(self):
        nodes = self.start_cluster(3, backend="memory")
        # Server mode through one node (it coordinates, forwarding as needed);
        # client mode seeded with one node and routing by the ring it pulls.
        runs = {
            "server": [nodes[1].endpoint],
            "client": [nodes[2].endpoint],
        }
        outputs = {}
        for lang in ("c", "python"):
            for mode, endpoints in runs.items():
                with self.subTest(lang=lang, mode=mode):
                    key = self.unique_key("%s-%s" % (lang, mode))
                    run = self.run_example(lang, ["--mode", mode, "--key", key] + endpoints)
                    self.assertCartReconciled(run, key, mode, len(endpoints))
                    self.assertOneVersionEverywhere(nodes, key)
                    outputs[(lang, mode)] = [line for line in run.out.splitlines()
                                             if not line.startswith("cart key: ")]
        # A second run with an earlier run's key starts from that cart and
        # ends the same way.
        for lang in ("c", "python"):
            with self.subTest(lang=lang, rerun=True):
                key = self.unique_key("rerun-" + lang)
                first = self.run_example(lang, ["--key", key, nodes[0].endpoint])
                self.assertCartReconciled(first, key, "server", 1)
                again = self.run_example(lang, ["--key", key, nodes[0].endpoint])
                self.assertCartReconciled(again, key, "server", 1, existing=True)
                self.assertOneVersionEverywhere(nodes, key)
        # C and Python print the same thing, line for line.
        for mode in runs:
            if ("c", mode) in outputs and ("python", mode) in outputs:
                self.assertEqual(outputs[("c", mode)], outputs[("python", mode)],
                                 "C and Python outputs differ in %s mode" % mode)

    def test_cart_examples_with_every_node_and_default_key(self):
        nodes = self.start_cluster(3, backend="memory")
        endpoints = [n.endpoint for n in nodes]
        keys = []
        for lang in ("c", "python"):
            for mode in ("server", "client"):
                with self.subTest(lang=lang, mode=mode):
                    run = self.run_example(lang, ["--mode", mode] + endpoints)
                    key = field(run, "cart key")
                    self.assertIsNotNone(key, run.describe())
                    self.assertRegex(key, r"^cart-\d+-\d+$", run.describe())
                    self.assertCartReconciled(run, key, mode, len(endpoints))
                    self.assertOneVersionEverywhere(nodes, key)
                    keys.append(key)
        self.assertEqual(len(set(keys)), len(keys), "default keys repeat: %r" % keys)

    # ---- failures --------------------------------------------------------------------

    def test_nothing_listening_fails_with_one_line_naming_the_endpoint(self):
        endpoint = endpoint_of(free_port())
        for lang in ("c", "python"):
            for mode in ("server", "client"):
                with self.subTest(lang=lang, mode=mode):
                    run = self.run_example(lang, ["--mode", mode, "--key", "cart-unreachable",
                                                  endpoint])
                    self.assertEqual(run.returncode, 1, run.describe())
                    lines = error_lines(run.stderr)
                    self.assertEqual(len(lines), 1, "one line on stderr: " + run.describe())
                    self.assertIn(endpoint, lines[0], run.describe())
                    self.assertTrue(
                        lines[0].startswith("cart: get cart-unreachable: unavailable: "),
                        run.describe())
                    self.assertIsNone(field(run, "merged cart"), run.describe())

    def test_usage_errors_exit_2(self):
        for lang in ("c", "python"):
            for args in ([], ["--mode", "sideways", "tcp://127.0.0.1:1"],
                         ["--key"], ["--bogus", "tcp://127.0.0.1:1"]):
                with self.subTest(lang=lang, args=args):
                    run = self.run_example(lang, args)
                    self.assertEqual(run.returncode, 2, run.describe())
                    self.assertEqual(run.out, "", run.describe())
                    self.assertIn("usage:", run.stderr, run.describe())

    def test_bad_endpoint_is_rejected_before_any_request(self):
        for lang in ("c", "python"):
            with self.subTest(lang=lang):
                run = self.run_example(lang, ["--key", "cart-bad", "http://127.0.0.1:1"])
                self.assertEqual(run.returncode, 1, run.describe())
                lines = error_lines(run.stderr)
                self.assertEqual(len(lines), 1, run.describe())
                self.assertTrue(lines[0].startswith("cart: options: invalid argument: "),
                                run.describe())
                self.assertIn("http://127.0.0.1:1", lines[0], run.describe())
                self.assertEqual(run.out, "", run.describe())

    def test_python_example_without_the_library_says_so(self):
        missing = os.path.join(self.work_dir, "no-such-folder")
        run = self.run_example("python", ["--key", "cart-nolib", "tcp://127.0.0.1:1"],
                               env={"DYNAMO_LIB_DIR": missing})
        self.assertEqual(run.returncode, 1, run.describe())
        lines = error_lines(run.stderr)
        self.assertEqual(len(lines), 1, run.describe())
        self.assertIn(missing, lines[0], run.describe())
        self.assertIn("libdynamo-client", lines[0], run.describe())


if __name__ == "__main__":
    unittest.main()
