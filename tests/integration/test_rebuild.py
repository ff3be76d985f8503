"""Fast rebuild (docs/design.md "Rebuild"): a node that starts with no data
while the ring gives it partitions pulls each partition whole from another
replica (PULL, answered once the partition's TRANSFER batches were merged and
synced), instead of waiting for anti-entropy to repair key by key. The
partitions still to fetch are kept in <data-dir>/rebuild, so a rebuild cut
short by a crash resumes with those; `status` shows its progress.

Contract: dynamod --rebuild-streams N (partitions pulled at a time; 0 leaves
the refill to anti-entropy); `status --json` has "rebuild": {"state",
"partitions_total", "partitions_done", "in_flight", "keys", "bytes",
"elapsed_s", "rate_bytes_per_s", "eta_s", "completed"} and
"transfer_sending" (null, or the partition being sent now). N=3 on three
nodes: every node replicates every key.
"""

import os
import shutil
import signal
import sys
import time
import unittest

from harness import (EXIT_USAGE, DynamoTestCase, TIME_SCALE, describe_mismatches, put_all,
                     read_mismatches, run_dynamod, status_of, wait_converged, wait_until)

ARGS = ["--failure-timeout-ms", "1500", "--handoff-interval-ms", "200",
        "--anti-entropy-interval-ms", "20"]
REBUILD_DEADLINE = 60.0 * TIME_SCALE
REBUILD_FIELDS = {"state", "partitions_total", "partitions_done", "in_flight", "keys", "bytes",
                  "elapsed_s", "rate_bytes_per_s", "eta_s", "completed"}


def report(text):
    print("  [%s] %s" % (__name__, text), file=sys.stderr, flush=True)


def marker_partitions(node):
    """The partitions <data-dir>/rebuild lists, or None without the file."""
    path = os.path.join(node.data_dir, "rebuild")
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return None
    assert lines[0] == "dynamo-rebuild 1", lines
    words = lines[1].split()
    assert words[0] == "partitions", lines
    return words[1:]


class RebuildTest(DynamoTestCase):

    def write(self, nodes, count, prefix="rb"):
        values = {"%s-%06d" % (prefix, i): ("rebuild value %06d " % i).encode() + b"." * 80
                  for i in range(count)}
        acked, failed = put_all(nodes[0].endpoint, sorted(values.items()), w=3)
        self.assertEqual(failed, {}, "%d of %d writes at W=3 failed; e.g. %r"
                         % (len(failed), len(values), sorted(failed.items())[:3]))
        return acked

    def rebuild_of(self, node):
        doc = status_of(node)
        self.assertIn("rebuild", doc)
        self.assertEqual(set(doc["rebuild"]), REBUILD_FIELDS, doc["rebuild"])
        self.assertIn("transfer_sending", doc)
        return doc["rebuild"]

    def wait_rebuilt(self, node, completed=1):
        def done():
            r = self.rebuild_of(node)
            return None if r["completed"] >= completed and r["state"] == "idle" else r
        return wait_until(done, REBUILD_DEADLINE, "%s finishes its rebuild" % node.name,
                          interval=0.2)

    def assert_holds(self, node, acked):
        wrong = read_mismatches(node.endpoint, acked, local=True)
        self.assertEqual(wrong, {}, "%s's engine lacks or misreads %d of %d keys: %s"
                         % (node.name, len(wrong), len(acked),
                            describe_mismatches(wrong, acked)))

    def test_a_wiped_replica_rebuilds_by_streaming_and_ends_with_every_key(self):
        nodes = self.start_cluster(3, backend="file", extra_args=ARGS)
        wait_converged(nodes)
        n1, n2, n3 = nodes
        # node2 and node3 started empty with a --seed: each pulled its
        # partitions (all empty then) once the ring placed it.
        for node in nodes[1:]:
            self.wait_rebuilt(node)
        self.assertEqual(self.rebuild_of(n1)["completed"], 1)  # a ring of one: nothing to pull
        self.assertEqual(self.rebuild_of(n1)["partitions_total"], 0)
        acked = self.write(nodes, 3000)

        self.assertEqual(n3.stop(signal.SIGTERM), 0, n3.log()[-2000:])
        shutil.rmtree(n3.file_engine_dir)
        n3.start()
        took = self.wait_rebuilt(n3)
        self.assertIsNone(marker_partitions(n3), "the marker is removed once done")
        r = self.rebuild_of(n3)
        report("node3 rebuilt in %.1f s: %r" % (took, r))
        # Every partition is replicated on node3 (N=3 of 3), and each came
        # whole from a replica.
        self.assertGreater(r["partitions_total"], 0)
        self.assertEqual(r["partitions_done"], r["partitions_total"], r)
        self.assertGreaterEqual(r["keys"], len(acked), r)
        self.assertGreater(r["bytes"], sum(len(v) for v in acked.values()), r)
        self.assertGreater(r["rate_bytes_per_s"], 0, r)
        self.assertEqual(r["in_flight"], [])
        self.assert_holds(n3, acked)
        # Streamed, not repaired: anti-entropy left the partitions alone
        # while they were on their way, and found nothing to do after.
        repaired = {n.name: status_of(n)["anti_entropy"]["keys_repaired"] for n in nodes}
        self.assertEqual(sum(repaired.values()), 0, repaired)

    def test_a_memory_node_restarted_empty_gets_every_key_back(self):
        nodes = self.start_cluster(3, backend="memory", extra_args=ARGS)
        wait_converged(nodes)
        n3 = nodes[2]
        acked = self.write(nodes, 2000, prefix="mem")
        n3.kill9()
        n3.restart()
        self.wait_rebuilt(n3)
        self.assert_holds(n3, acked)

    def test_a_rebuild_killed_midway_resumes_with_the_partitions_left(self):
        nodes = self.start_cluster(3, backend="file", extra_args=ARGS)
        wait_converged(nodes)
        n1, n2, n3 = nodes
        acked = self.write(nodes, 3000, prefix="resume")
        self.assertEqual(n3.stop(signal.SIGTERM), 0, n3.log()[-2000:])
        shutil.rmtree(n3.file_engine_dir)

        # node2 paused: the pulls node3 sends it go unanswered, those to
        # node1 finish, so the rebuild stops partway.
        n2.proc.send_signal(signal.SIGSTOP)
        self.addCleanup(lambda: n2.proc.poll() is None and n2.proc.send_signal(signal.SIGCONT))
        n3.start()

        def partway():
            r = self.rebuild_of(n3)
            on_disk = marker_partitions(n3)
            if r["state"] == "running" and on_disk is not None and \
                    0 < len(on_disk) < r["partitions_total"]:
                return None  # the marker (written after each partition) shows progress
            return "rebuild %r, marker %r" % (r, on_disk and len(on_disk))
        wait_until(partway, REBUILD_DEADLINE, "node3 finishes some partitions from node1")
        total = self.rebuild_of(n3)["partitions_total"]
        n3.kill9()
        left = marker_partitions(n3)
        self.assertIsNotNone(left, "a rebuild cut short leaves its marker")
        self.assertGreater(len(left), 0)
        self.assertLess(len(left), total, "finished partitions are off the marker")
        report("node3 killed with %d of %d partitions left" % (len(left), total))

        n2.proc.send_signal(signal.SIGCONT)
        n3.restart()
        self.wait_rebuilt(n3)
        r = self.rebuild_of(n3)
        self.assertEqual(r["partitions_total"], len(left), "resumed, not started over: %r" % r)
        self.assertEqual(r["partitions_done"], len(left), r)
        self.assertIsNone(marker_partitions(n3))
        # What the partitions finished before the kill brought is still
        # there (synced before each batch was acknowledged).
        self.assert_holds(n3, acked)

    def test_a_node_with_rebuild_streams_0_leaves_the_refill_to_anti_entropy(self):
        nodes = self.start_cluster(3, backend="file", extra_args=ARGS)
        wait_converged(nodes)
        n3 = nodes[2]
        acked = self.write(nodes, 500, prefix="ae")
        self.assertEqual(n3.stop(signal.SIGTERM), 0, n3.log()[-2000:])
        shutil.rmtree(n3.file_engine_dir)
        n3.extra_args += ["--rebuild-streams", "0"]
        n3.start()
        wait_until(lambda: (lambda w: None if not w else "%d keys missing" % len(w))(
            read_mismatches(n3.endpoint, acked, local=True)), REBUILD_DEADLINE,
            "anti-entropy refills node3", interval=0.5)
        r = self.rebuild_of(n3)
        self.assertEqual((r["state"], r["completed"], r["partitions_total"]), ("idle", 0, 0), r)
        self.assertIsNone(marker_partitions(n3))
        self.assertGreaterEqual(status_of(n3)["anti_entropy"]["keys_repaired"]
                                + sum(status_of(n)["anti_entropy"]["keys_repaired"]
                                      for n in nodes[:2]), len(acked))

    def test_bad_rebuild_streams_exit_2_with_one_line(self):
        for bad in ("65", "-1", "many"):
            r = run_dynamod(["--rebuild-streams", bad, "--data-dir", self.make_temp_dir()])
            self.assertEqual(r.returncode, EXIT_USAGE, r.describe())
            self.assertEqual(len([l for l in r.stderr.splitlines() if l.strip()]), 1,
                             r.describe())
            self.assertIn("rebuild-streams", r.stderr, r.describe())


if __name__ == "__main__":
    unittest.main()
