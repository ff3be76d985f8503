"""One node, driven with dynamoctl: the user-visible contract of DESIGN.md 3.2
and 3.3 (put/get/del, siblings and contexts, limits, exit codes, status),
against the memory and the file engines."""

import base64
import os
import time
import unittest

from harness import (DynamoTestCase, EXIT_NOT_FOUND, EXIT_QUORUM, EXIT_REJECTED,
                     EXIT_USAGE, KEY_LIMIT, VALUE_LIMIT, endpoint_of, free_port,
                     run_ctl, error_lines)


class _SingleNodeCases:
    """The cases; run once per engine by the classes at the bottom."""

    BACKEND = None

    def setUp(self):
        super().setUp()
        self.node = self.start_node(backend=self.BACKEND)

    # ---- put / get ---------------------------------------------------------------

    def test_put_get_text_roundtrip(self):
        ctx = self.put(self.node, "greeting", "hello world")
        r = self.ctl_ok(self.node, "get", "greeting")
        lines = r.stdout.split(b"\n")
        # "hello world\ncontext: CTX\n"
        self.assertEqual(len(lines), 3, r.describe())
        self.assertEqual(lines[0], b"hello world", r.describe())
        self.assertTrue(lines[1].startswith(b"context: "), r.describe())
        self.assertTrue(lines[1][len(b"context: "):].strip(), r.describe())
        self.assertEqual(lines[2], b"", r.describe())
        self.assertNotIn(b" ", ctx.encode(), "a context is one printable token")

    def test_put_get_json_roundtrip(self):
        r = self.ctl_ok(self.node, "put", "k-json", "v-json", json_output=True)
        doc = r.json()
        self.assertEqual(set(doc), {"context"}, r.describe())
        self.assertIsInstance(doc["context"], str)
        self.assertTrue(doc["context"])

        r = self.ctl_ok(self.node, "get", "k-json", json_output=True)
        doc = r.json()
        self.assertIs(doc["found"], True)
        self.assertEqual(doc["values_b64"], [base64.b64encode(b"v-json").decode()])
        self.assertIsInstance(doc["context"], str)
        self.assertTrue(doc["context"])

    def test_binary_value_through_stdin(self):
        value = bytes(range(256)) * 8 + b"\x00\n\r\n\xff"
        self.put(self.node, "bin", value)
        self.assertEqual(self.get_json(self.node, "bin")[0], [value])

    def test_empty_value_is_a_value(self):
        self.put(self.node, "empty", b"")
        self.assertEqual(self.get_json(self.node, "empty")[0], [b""])

    def test_get_missing_key_exits_3(self):
        r = self.ctl(self.node, "get", "never-written")
        self.assertExit(r, EXIT_NOT_FOUND)
        self.assertOneErrorLine(r)
        r = self.ctl(self.node, "get", "never-written", json_output=True)
        self.assertExit(r, EXIT_NOT_FOUND)

    def test_local_get_reads_the_engine(self):
        self.put(self.node, "local", "here")
        self.assertEqual(self.get_json(self.node, "local", extra=["--local"])[0], [b"here"])
        r = self.ctl(self.node, "get", "not-here", "--local")
        self.assertExit(r, EXIT_NOT_FOUND)

    # ---- siblings and contexts ---------------------------------------------------

    def test_puts_with_the_same_context_give_siblings_and_a_merge_collapses_them(self):
        ctx0 = self.put(self.node, "cart", "v0")
        self.put(self.node, "cart", "left", context=ctx0)
        self.put(self.node, "cart", "right", context=ctx0)
        values, merged = self.get_json(self.node, "cart")
        self.assertEqual(values, [b"left", b"right"])

        # Text mode prints each sibling on its own line, then the context.
        r = self.ctl_ok(self.node, "get", "cart")
        lines = r.stdout.split(b"\n")
        self.assertEqual(sorted(lines[:2]), [b"left", b"right"], r.describe())
        self.assertTrue(lines[2].startswith(b"context: "), r.describe())
        self.assertEqual(lines[3:], [b""], r.describe())

        self.put(self.node, "cart", "merged", context=merged)
        self.assertEqual(self.get_json(self.node, "cart")[0], [b"merged"])

    def test_a_put_with_an_old_context_is_kept_as_a_sibling(self):
        ctx0 = self.put(self.node, "k", "a")
        ctx1 = self.put(self.node, "k", "b", context=ctx0)
        self.assertEqual(self.get_json(self.node, "k")[0], [b"b"])
        self.put(self.node, "k", "c", context=ctx0)  # concurrent with b
        self.assertEqual(self.get_json(self.node, "k")[0], [b"b", b"c"])
        del ctx1

    def test_a_writers_next_put_keeps_siblings_it_never_read(self):
        # Regression: a put's context once covered concurrent siblings, so the
        # writer's next put silently dropped a value nobody had read.
        ctx_a = self.put(self.node, "lost", "A")
        self.put(self.node, "lost", "B")  # blind: a sibling of A
        ctx_c = self.put(self.node, "lost", "C", context=ctx_a)  # replaces A only
        self.assertEqual(self.get_json(self.node, "lost")[0], [b"B", b"C"])
        self.put(self.node, "lost", "D", context=ctx_c)  # replaces C only
        self.assertEqual(self.get_json(self.node, "lost")[0], [b"B", b"D"])

    def test_a_put_with_the_latest_context_overwrites(self):
        ctx = self.put(self.node, "seq", "1")
        for i in range(2, 6):
            ctx = self.put(self.node, "seq", str(i), context=ctx)
        self.assertEqual(self.get_json(self.node, "seq")[0], [b"5"])

    def test_puts_without_context_are_concurrent(self):
        self.put(self.node, "blind", "first")
        self.put(self.node, "blind", "second")
        values, ctx = self.get_json(self.node, "blind")
        self.assertEqual(values, [b"first", b"second"])
        self.put(self.node, "blind", "third", context=ctx)
        self.assertEqual(self.get_json(self.node, "blind")[0], [b"third"])

    def test_quorum_overrides_are_capped_on_a_lone_node(self):
        # One node: the preference list has one entry, so R and W are capped at 1
        # (DESIGN.md 3.1) and asking for 3 still succeeds.
        ctx = self.put(self.node, "q", "1", extra=["--w", "3"])
        self.put(self.node, "q", "2", context=ctx, extra=["--w", "1"])
        for r in ("1", "3"):
            self.assertEqual(self.get_json(self.node, "q", extra=["--r", r])[0], [b"2"])
        r = self.ctl(self.node, "put", "q", "3", "--w", "zero")
        self.assertExit(r, EXIT_USAGE)

    # ---- delete --------------------------------------------------------------------

    def test_del_then_get_is_not_found_and_a_put_revives_it(self):
        self.put(self.node, "doomed", "alive")
        _, ctx = self.get_json(self.node, "doomed")
        del_ctx = self.delete(self.node, "doomed", context=ctx)
        self.assertTrue(del_ctx)
        self.assertIsNone(self.get_json(self.node, "doomed"))
        r = self.ctl(self.node, "get", "doomed")
        self.assertExit(r, EXIT_NOT_FOUND)

        self.put(self.node, "doomed", "again", context=del_ctx)
        self.assertEqual(self.get_json(self.node, "doomed")[0], [b"again"])

    def test_del_prints_json_context(self):
        ctx = self.put(self.node, "jdel", "x")
        r = self.ctl_ok(self.node, "del", "jdel", "--context", ctx, json_output=True)
        doc = r.json()
        self.assertEqual(set(doc), {"context"}, r.describe())
        self.assertTrue(doc["context"])
        self.assertIsNone(self.get_json(self.node, "jdel"))

    # ---- rejected input ------------------------------------------------------------

    def test_bad_context_is_rejected_and_nothing_is_stored(self):
        bad_contexts = [
            "not a context!",                                   # not base64
            base64.b64encode(b"\xc1\xc1 garbage \xc1").decode(),  # base64, not a clock
        ]
        for i, bad in enumerate(bad_contexts):
            with self.subTest(context=bad):
                key = "badctx%d" % i
                r = self.ctl(self.node, "put", key, "value", "--context", bad)
                self.assertExit(r, EXIT_REJECTED)
                self.assertOneErrorLine(r)
                self.assertEqual(r.stdout, b"", r.describe())
                self.assertIsNone(self.get_json(self.node, key))

    def test_bad_context_on_del_is_rejected(self):
        self.put(self.node, "keep", "me")
        r = self.ctl(self.node, "del", "keep", "--context", "%%%")
        self.assertExit(r, EXIT_REJECTED)
        self.assertOneErrorLine(r)
        self.assertEqual(self.get_json(self.node, "keep")[0], [b"me"])

    def test_key_over_the_limit_is_rejected(self):
        key = "k" * (KEY_LIMIT + 1)
        r = self.ctl(self.node, "put", key, "v")
        self.assertExit(r, EXIT_REJECTED)
        self.assertOneErrorLine(r)
        # Never truncated and stored under a shorter key.
        self.assertIsNone(self.get_json(self.node, "k" * KEY_LIMIT))
        # Reading the oversized key is rejected input too (exit 5 on every command).
        r = self.ctl(self.node, "get", key)
        self.assertExit(r, EXIT_REJECTED)
        self.assertEqual(r.stdout, b"", r.describe())

    def test_value_over_the_limit_is_rejected(self):
        value = os.urandom(VALUE_LIMIT + 1)
        r = self.ctl(self.node, "put", "big", "-", input=value)
        self.assertExit(r, EXIT_REJECTED)
        self.assertOneErrorLine(r)
        self.assertIsNone(self.get_json(self.node, "big"))

    def test_key_and_value_at_the_limit_are_accepted(self):
        key = "K" * KEY_LIMIT
        self.put(self.node, key, "at-the-key-limit")
        self.assertEqual(self.get_json(self.node, key)[0], [b"at-the-key-limit"])

        value = os.urandom(VALUE_LIMIT)
        self.put(self.node, "max-value", value)
        self.assertEqual(self.get_json(self.node, "max-value")[0], [value])

    # ---- status --------------------------------------------------------------------

    def test_status_json(self):
        r = self.ctl_ok(self.node, "status", json_output=True)
        doc = r.json()
        for field in ("node_id", "endpoint", "backend", "members", "partitions_owned",
                      "hints_pending"):
            self.assertIn(field, doc, r.describe())
        self.assertEqual(doc["node_id"], self.node.node_id)
        self.assertEqual(doc["endpoint"], self.node.endpoint)
        self.assertEqual(doc["backend"], self.BACKEND)
        self.assertIsInstance(doc["members"], list, r.describe())
        self.assertEqual(len(doc["members"]), 1, r.describe())
        member = doc["members"][0]
        self.assertEqual(member["node_id"], self.node.node_id)
        self.assertEqual(member["endpoint"], self.node.endpoint)
        self.assertEqual(member["state"], "up")
        # One node owns every partition (Q defaults to 256) and holds no hints.
        self.assertEqual(doc["partitions_owned"], 256, r.describe())
        self.assertEqual(doc["hints_pending"], 0, r.describe())

    def test_timeout_ms_accepts_long_timeouts(self):
        for ms in (1, 5000, 60000):
            with self.subTest(timeout_ms=ms):
                r = self.ctl(self.node, "status", timeout_ms=ms)
                if ms == 1:  # may or may not make it in a millisecond
                    self.assertIn(r.returncode, (0, EXIT_QUORUM), r.describe())
                else:
                    self.assertExit(r, 0)

    def test_status_text(self):
        r = self.ctl_ok(self.node, "status")
        self.assertIn(self.node.node_id, r.out)
        self.assertEqual(r.stderr.strip(), "")


class SingleNodeMemoryTest(_SingleNodeCases, DynamoTestCase):
    BACKEND = "memory"


class SingleNodeFileTest(_SingleNodeCases, DynamoTestCase):
    BACKEND = "file"


class NodeDefaultsTest(DynamoTestCase):
    """Things that need no running node, or one started differently."""

    def test_default_node_id_is_host_port(self):
        node = self.start_node(backend="memory", node_id=None)
        r = self.ctl_ok(node, "status", json_output=True)
        self.assertEqual(r.json()["node_id"], "127.0.0.1:%d" % node.port, r.describe())

    def test_unreachable_node_times_out_with_exit_4(self):
        endpoint = endpoint_of(free_port())  # nothing listens there
        for args in (["get", "k"], ["put", "k", "v"], ["status"]):
            with self.subTest(command=args[0]):
                started = time.monotonic()
                r = run_ctl(endpoint, *args, timeout_ms=500)
                elapsed = time.monotonic() - started
                self.assertExit(r, EXIT_QUORUM)
                self.assertOneErrorLine(r)
                self.assertEqual(r.stdout, b"", r.describe())
                self.assertLess(elapsed, 10.0, "--timeout-ms 500 took %.1f s" % elapsed)

    def test_usage_errors_exit_2(self):
        # A node that does not exist: a usage error must not need one.
        endpoint = endpoint_of(free_port())
        cases = {
            "no command": [],
            "unknown command": ["frobnicate"],
            "get without KEY": ["get"],
            "put without VALUE": ["put", "onlykey"],
            "put without KEY": ["put"],
            "del without KEY": ["del"],
            "unknown option": ["get", "k", "--no-such-option"],
            "bad --timeout-ms": ["--timeout-ms", "soon", "get", "k"],
        }
        for name, args in cases.items():
            with self.subTest(case=name):
                r = run_ctl(endpoint, *args, timeout_ms=None)
                self.assertExit(r, EXIT_USAGE)
                lines = error_lines(r.stderr)
                self.assertEqual(len(lines), 1, r.describe())
        for bad in ("nonsense", "tcp://127.0.0.1:notaport", "tcp://127.0.0.1:0",
                    "tcp://:7101", "http://127.0.0.1:7101"):
            with self.subTest(node=bad):
                r = run_ctl(bad, "get", "k")
                self.assertExit(r, EXIT_USAGE)
                lines = error_lines(r.stderr)
                self.assertEqual(len(lines), 1, r.describe())
                self.assertIn("--node", lines[0])


if __name__ == "__main__":
    unittest.main()
