"""Live engine migration (DESIGN.md 3.10): `dynamoctl migrate` moves a
running node's data into another engine while a writer keeps writing, and
the switch is recorded. Every acknowledged write must stay readable: after
each migration, and after a kill -9 while copying or at the switch.
"""

import os
import time
import unittest

from harness import (DynamoTestCase, EXIT_OK, EXIT_OTHER, MySQLTestCase, TIME_SCALE, free_port,
                     put_all, run_dynamod, status_of, wait_until, wire_local_holders)

MIGRATE_DEADLINE_MS = int(120000 * TIME_SCALE)


def acked(writer):
    """{key: value} of the writes the writer saw acknowledged."""
    return dict(writer.acked)


def unreadable(node, expected):
    """The acknowledged writes (key, value) this node's engine does not
    hold: the key missing, or the value not among its siblings."""
    holders = wire_local_holders([node], list(expected))
    return [(k, v) for k, v in expected.items()
            if v not in holders[k].get(node.node_id, [])]


class MigrationTestMixin:

    def migrate(self, node, backend, options=(), wait=True, timeout_ms=MIGRATE_DEADLINE_MS):
        args = ["migrate", "--backend", backend]
        for kv in options:
            args += ["--backend-opt", kv]
        if not wait:
            args.append("--no-wait")
        return self.ctl(node, *args, timeout_ms=timeout_ms, deadline=timeout_ms / 1000.0 + 30)

    def migration(self, node):
        return status_of(node)["migration"]

    def assert_all_readable(self, node, expected):
        missing = unreadable(node, expected)
        self.assertEqual(missing[:5], [], "%d of %d acknowledged writes not readable"
                         % (len(missing), len(expected)))

    def start_single(self, backend="file", extra=()):
        return self.start_node(backend=backend, extra_args=["--replicas", "1",
                                                            "--write-quorum", "1",
                                                            "--read-quorum", "1"] + list(extra))

    def put_many(self, node, items):
        ok, failed = put_all(node.endpoint, list(items.items()))
        self.assertEqual(failed, {})
        return ok


class MigrationTest(MigrationTestMixin, DynamoTestCase):
    """One file-engine node (N=1, W=1): the only copy of each key is in its
    engine, so nothing could come back from another replica."""

    def test_file_to_file_under_a_writer_then_the_old_backend_is_refused(self):
        node = self.start_single()
        self.put_many(node, {"pre%d" % i: b"v%d" % i for i in range(20)})
        writer = self.start_writer(node, prefix="mig")
        time.sleep(0.5)
        r = self.migrate(node, "file", ["path=" + os.path.join(self.work_dir, "file2")])
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        time.sleep(0.3)
        writer.stop()
        m = self.migration(node)
        self.assertEqual(m["state"], "done", m)
        self.assertGreaterEqual(m["keys_copied"], 20)
        self.assertEqual(m["keys_mended"], 0, m)
        # The text status says so too.
        r = self.ctl(node, "status", json_output=False)
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        self.assertIn(b"migration done to file: %d/%d partitions copied"
                      % (m["partitions_total"], m["partitions_total"]), r.stdout)
        self.assertEqual(status_of(node)["backend"], "file")
        expected = acked(writer)
        self.assertGreater(len(expected), 0)
        expected.update({"pre%d" % i: b"v%d" % i for i in range(20)})
        self.assert_all_readable(node, expected)
        # The switch is recorded: restarted, the node opens the new engine.
        node.stop()
        node.start()
        self.assert_all_readable(node, expected)
        record = os.path.join(node.data_dir, "engine")
        self.assertTrue(os.path.isfile(record))
        # Its options may hold a password: readable by the node's user alone.
        self.assertEqual(os.stat(record).st_mode & 0o777, 0o600)

    def test_after_a_switch_to_memory_the_old_file_backend_is_refused(self):
        node = self.start_single(backend="file")
        self.put(node, "k", "v")
        r = self.migrate(node, "memory")
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        node.stop()
        node.backend = "file"  # the old engine: the record says memory now
        node.start(wait=False)
        code = node.proc.wait(timeout=15 * TIME_SCALE)
        self.assertEqual(code, 1)
        lines = [l for l in node.log().splitlines() if "records that a migration" in l]
        self.assertEqual(len(lines), 1, node.log()[-2000:])
        self.assertIn("--backend memory", lines[0])
        r = run_dynamod(["--check-config", "--backend", "file", "--data-dir", node.data_dir])
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertOneErrorLine(r, "records that a migration moved this node to the 'memory'")
        node.backend = "memory"
        node.start()
        self.assertEqual(status_of(node)["backend"], "memory")

    def test_a_node_moved_off_the_memory_engine_gets_its_workers(self):
        node = self.start_single(backend="memory", extra=["--workers", "3"])
        expected = self.put_many(node, {"m%d" % i: b"v%d" % i for i in range(200)})
        calls = status_of(node)["engine_calls"]
        self.assertEqual((calls["on"], calls["worker_threads"]), ("loop", 1))
        r = self.migrate(node, "file", ["path=" + os.path.join(self.work_dir, "to-file")])
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        calls = status_of(node)["engine_calls"]
        self.assertNotEqual(calls["on"], "loop")
        self.assertEqual(calls["worker_threads"], 3)
        expected.update(self.put_many(node, {"after%d" % i: b"a%d" % i for i in range(50)}))
        self.assert_all_readable(node, expected)

    def test_kill_at_each_step_loses_no_acknowledged_write(self):
        # Killed before the switch is recorded, the node restarts on its old
        # engine; killed after, on the new one. Either way with every write
        # a writer saw acknowledged meanwhile.
        for step, switched in (("mirror", False), ("copy", False), ("check", False),
                               ("switch", True), ("done", True)):
            with self.subTest(step=step):
                node = self.start_single()
                expected = self.put_many(node, {"%s%04d" % (step, i): b"v%d" % i
                                                for i in range(2000)})
                node.stop()
                node.env = {"DYNAMO_TEST_MIGRATION_KILL_AT": step}
                node.start()
                writer = self.start_writer(node, prefix=step + "-w", pause=0.002)
                time.sleep(0.2)
                target = os.path.join(self.work_dir, step + "-target")
                # (At "mirror" the node dies before it answers.)
                r = self.migrate(node, "file", ["path=" + target], wait=step == "done",
                                 timeout_ms=MIGRATE_DEADLINE_MS if step == "done" else 5000)
                if step == "done":
                    self.assertEqual(r.returncode, EXIT_OK, r.describe())
                    node.kill9()
                else:
                    wait_until(lambda: None if not node.alive() else "running",
                               30 * TIME_SCALE, "the node killing itself at " + step)
                writer.stop()
                expected.update(acked(writer))
                node.env = {}
                node.start()
                self.assertEqual(os.path.exists(os.path.join(node.data_dir, "engine")),
                                 switched)
                self.assert_all_readable(node, expected)
                # An abandoned target holds keys: a migration into it is
                # refused; into a fresh one it completes.
                if not switched and step != "mirror":
                    r = self.migrate(node, "file", ["path=" + target])
                    self.assertNotEqual(r.returncode, EXIT_OK, r.describe())
                    self.assertIn("already holds keys", r.stderr)
                r = self.migrate(node, "file", ["path=" + target + "-again"])
                self.assertEqual(r.returncode, EXIT_OK, r.describe())
                self.assert_all_readable(node, expected)
                node.stop()

    def test_bad_requests_are_refused_and_change_nothing(self):
        node = self.start_single()
        r = self.migrate(node, "nosuch")
        self.assertNotEqual(r.returncode, EXIT_OK)
        self.assertOneErrorLine(r, "unknown backend 'nosuch'")
        self.assertEqual(self.migration(node)["state"], "idle")
        r = self.ctl(node, "migrate")
        self.assertEqual(r.returncode, 2, r.describe())
        # An engine that cannot open: refused (exit 1, not 4: the node
        # answered), and the node keeps its engine.
        blocker = os.path.join(self.work_dir, "a-file")
        with open(blocker, "w") as f:
            f.write("not a folder")
        r = self.migrate(node, "file", ["path=" + os.path.join(blocker, "data")])
        self.assertEqual(r.returncode, EXIT_OTHER, r.describe())
        self.assertOneErrorLine(r)
        self.assertEqual(self.migration(node)["state"], "failed")
        r = self.ctl(node, "status")
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        self.assertRegex(r.stdout, rb"migration failed to file: .*; ")
        r = self.ctl(node, "get", "k", "--backend", "file")
        self.assertEqual(r.returncode, 2, r.describe())
        self.assertEqual(status_of(node)["backend"], "file")
        self.put(node, "still", "serving")


class MigrationMySQLTest(MigrationTestMixin, MySQLTestCase):

    def test_an_unreachable_mysql_server_is_refused_with_exit_1(self):
        node = self.start_single()
        self.put(node, "k", "v")
        r = self.migrate(node, "mysql", ["host=127.0.0.1", "port=%d" % free_port(),
                                         "user=nobody", "database=dynamo", "table=t"])
        self.assertEqual(r.returncode, EXIT_OTHER, r.describe())
        self.assertOneErrorLine(r)
        m = self.migration(node)
        self.assertEqual(m["state"], "failed", m)
        self.assertEqual(status_of(node)["backend"], "file")
        self.assert_values(node, "k", [b"v"])

    def test_file_to_mysql_and_back_killed_at_each_step(self):
        # The same kills across engines, one node (N=1): into MySQL, killed
        # mid-copy and after the switch; back to a file engine, killed at
        # the check and at the switch. The node restarts on whichever engine
        # its record names, with every acknowledged write.
        node = self.start_single()
        expected = self.put_many(node, {"x%04d" % i: b"v%d" % i for i in range(2000)})
        steps = [("mysql", "copy", False), ("mysql", "switch", True),
                 ("file", "check", False), ("file", "switch", True)]
        for n, (backend, step, switched) in enumerate(steps):
            with self.subTest(backend=backend, step=step):
                was = status_of(node)["backend"]
                node.stop()
                node.env = {"DYNAMO_TEST_MIGRATION_KILL_AT": step}
                node.start()
                writer = self.start_writer(node, prefix="%d-%s-w" % (n, step), pause=0.002)
                time.sleep(0.2)
                if backend == "mysql":
                    options = self.mysql_node_args()[1][1::2]
                else:
                    options = ["path=" + os.path.join(self.work_dir, "target-%d" % n)]
                self.migrate(node, backend, options, wait=False, timeout_ms=5000)
                wait_until(lambda: None if not node.alive() else "running",
                           30 * TIME_SCALE, "the node killing itself at " + step)
                writer.stop()
                expected.update(acked(writer))
                node.env = {}
                if switched:
                    node.backend = backend  # a start naming the old one is refused
                node.start()
                self.assertEqual(status_of(node)["backend"], backend if switched else was)
                self.assert_all_readable(node, expected)
                self.put(node, "after-%d" % n, "written")
                expected["after-%d" % n] = b"written"
        node.stop()
        node.start()
        self.assertEqual(status_of(node)["backend"], "file")
        self.assert_all_readable(node, expected)

    def test_memory_to_file_to_mysql_to_file_in_a_cluster_under_a_writer(self):
        nodes = self.start_cluster(3, backend="memory")
        writer = self.start_writer(nodes[0], prefix="chain")
        time.sleep(0.5)
        node = nodes[2]
        table, args = self.mysql_node_args()
        mysql_opts = [args[i + 1] for i in range(0, len(args), 2)]
        steps = [("file", ["path=" + os.path.join(self.work_dir, "f1")]),
                 ("mysql", mysql_opts),
                 ("file", ["path=" + os.path.join(self.work_dir, "f2")])]
        for backend, options in steps:
            r = self.migrate(node, backend, options)
            self.assertEqual(r.returncode, EXIT_OK, r.describe())
            self.assertEqual(status_of(node)["backend"], backend)
        writer.stop()
        expected = acked(writer)
        self.assertGreater(len(expected), 0)
        # Every acknowledged write is in the migrated node's engine (N=3:
        # each node holds every key), once the writes in flight settled.
        wait_until(lambda: unreadable(node, expected) or None, 30 * TIME_SCALE,
                   "every acknowledged write in the migrated engine")
        # Restarted on its last engine (file), it still holds them.
        node.stop()
        node.backend = "file"
        node.start()
        self.assert_all_readable(node, expected)


if __name__ == "__main__":
    unittest.main()
