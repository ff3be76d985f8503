"""A network partition (paper 4.6-4.8, 6.1): one node is cut off from the
other two by dropping packets between their loopback addresses. Each side
sees the other down and keeps taking writes at the quorum it can meet: W=2
on the two-node side, W=1 on the isolated node. After the partition heals,
every acknowledged write is readable, a key written on both sides carries
both values as siblings (neither side's write silently wins), and every
replica's own engine comes to hold every version (hinted handoff and
anti-entropy converge without reads).

The cut is made with iptables in a chain of this test's own (removed at
cleanup, whatever happens), as root or through password-less sudo; the test
fails, naming the reason, when it cannot run iptables (neither, not
installed, or refused). Nodes listen on 127.0.0.11-13 and
their peer connections leave from those addresses (DESIGN.md 3.2); the test
talks to every node from 127.0.0.1, which no rule touches.
"""

import signal
import subprocess
import sys
import time
import unittest

from harness import (DynamoTestCase, EXIT_OK, EXIT_QUORUM, IptablesPartition, TIME_SCALE,
                     describe_mismatches, members_of, put_all, read_mismatches, status_of,
                     wait_converged, wait_until)

HOSTS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
FAILURE_TIMEOUT_MS = 1500
CUT_ARGS = ["--failure-timeout-ms", str(FAILURE_TIMEOUT_MS)]
CONVERGE_ARGS = CUT_ARGS + ["--handoff-interval-ms", "200",
                            "--anti-entropy-interval-ms", "20"]

CUT_DEADLINE = 4 * FAILURE_TIMEOUT_MS / 1000.0 * TIME_SCALE   # both sides see the cut
HEAL_DEADLINE = 30.0 * TIME_SCALE       # all up again (TCP retransmission backs off)
CONVERGE_DEADLINE = 60.0 * TIME_SCALE   # every engine holds every version

ONE_SIDE_KEYS = 200   # written on one side only, per side
SHARED_KEYS = 20      # written on both sides


def report(text):
    print("  [%s] %s" % (__name__, text), file=sys.stderr, flush=True)


class PartitionTest(DynamoTestCase):

    def partitioned_cluster(self, extra_args, backend="memory"):
        """(partition helper, nodes, isolated node, majority nodes); the cut
        is not made yet. Fails before starting anything when iptables is
        unusable."""
        part = self.iptables_partition()
        nodes = self.start_cluster(3, hosts=HOSTS, extra_args=extra_args, backend=backend)
        return part, nodes, nodes[2], nodes[:2]

    def cut(self, part, isolated, majority):
        part.isolate(isolated.host, [n.host for n in majority])
        started = time.monotonic()

        def check():
            views = {}
            for observer in majority:
                views["%s sees %s" % (observer.name, isolated.node_id)] = \
                    members_of(status_of(observer)).get(isolated.node_id)
            seen = members_of(status_of(isolated))
            for other in majority:
                views["%s sees %s" % (isolated.name, other.node_id)] = seen.get(other.node_id)
            return None if all(v == "down" for v in views.values()) else views
        wait_until(check, CUT_DEADLINE, "both sides of the partition see each other down")
        report("cut seen from both sides after %.1f s" % (time.monotonic() - started))

    def heal(self, part, nodes):
        part.heal()
        started = time.monotonic()
        wait_converged(nodes, HEAL_DEADLINE)
        took = time.monotonic() - started
        report("healed: all up again after %.1f s" % took)
        return took

    def test_the_cut_is_seen_from_both_sides_and_heals(self):
        part, nodes, isolated, majority = self.partitioned_cluster(CUT_ARGS)
        self.cut(part, isolated, majority)
        self.assertIn(isolated.host, part.rules())

        # Clients still reach both sides; only the isolated side is short of
        # replicas: a default-quorum write fails there (1 of 2 answered) and
        # succeeds on the majority.
        r = self.ctl(isolated, "put", "cut-probe-isolated", "v")
        self.assertExit(r, EXIT_QUORUM)
        self.assertOneErrorLine(r)
        self.put(majority[0], "cut-probe-majority", "v")

        self.heal(part, nodes)
        self.assertEqual(self.get_json(isolated, "cut-probe-majority", extra=["--r", "3"])[0],
                         [b"v"], "a write of the majority side is not readable through "
                         "the healed node at R=3")

        # Cleanup leaves nothing behind in iptables.
        chain = part.chain
        self.assertEqual(part.close(), [])
        listing = subprocess.run([IptablesPartition.iptables(), "-w", "5", "-S"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 timeout=30).stdout.decode()
        self.assertNotIn(chain, listing, "the partition chain or its jump is still there")

    def write_both_sides(self, isolated, majority):
        """Writes while partitioned; returns {key: sorted acknowledged values}.
        Keys of one side only go pipelined over the wire; keys of both sides
        through dynamoctl with explicit quorums (W=2 on the majority side,
        W=1 on the isolated node)."""
        expected = {}
        acked_majority, failed = put_all(
            majority[0].endpoint,
            [("majority-%04d" % i, "majority value %d" % i) for i in range(ONE_SIDE_KEYS)],
            w=2)
        self.assertEqual(failed, {}, "writes at W=2 on the majority side failed: %r"
                         % sorted(failed.items())[:3])
        acked_isolated, failed = put_all(
            isolated.endpoint,
            [("isolated-%04d" % i, "isolated value %d" % i) for i in range(ONE_SIDE_KEYS)],
            w=1)
        self.assertEqual(failed, {}, "writes at W=1 on the isolated node failed: %r"
                         % sorted(failed.items())[:3])
        expected.update(acked_majority)
        expected.update(acked_isolated)
        shared = {}
        for i in range(SHARED_KEYS):
            key = "both-%04d" % i
            values = []
            for side, node, w in (("majority", majority[i % 2], "2"),
                                  ("isolated", isolated, "1")):
                value = "%s side's %s" % (side, key)
                r = self.ctl(node, "put", key, value, "--w", w)
                self.assertEqual(r.returncode, EXIT_OK, "a write at W=%s on the %s side "
                                 "failed: %s" % (w, side, r.describe()))
                values.append(value.encode())
            shared[key] = sorted(values)
        expected.update(shared)
        report("acknowledged while partitioned: %d on the majority side, %d on the isolated "
               "node, %d keys on both" % (len(acked_majority), len(acked_isolated),
                                          len(shared)))
        return expected

    def check_after_heal(self, nodes, isolated, majority, expected):
        # First, without any coordinated read (a read would repair what it
        # touches): every engine must come to hold every version by itself.
        started = time.monotonic()

        def engines_converged():
            lacking = {}
            for node in nodes:
                wrong = read_mismatches(node.endpoint, expected, local=True)
                if wrong:
                    lacking[node.name] = "lacks or misreads %d of %d keys, e.g. %s" % (
                        len(wrong), len(expected), describe_mismatches(wrong, expected, limit=1))
            return lacking or None
        convergence_failure = None
        try:
            wait_until(engines_converged, CONVERGE_DEADLINE,
                       "every node's own engine holds every version written on either side",
                       interval=0.5)
            report("engines converged %.1f s after the heal" % (time.monotonic() - started))
        except AssertionError as e:
            convergence_failure = e

        # Every acknowledged write is readable, and the keys written on both
        # sides carry both values: read at R=3 so the answer cannot depend on
        # which replicas have been repaired yet.
        for reader in (majority[0], isolated):
            wrong = read_mismatches(reader.endpoint, expected, r=3)
            self.assertEqual(len(wrong), 0, "after the heal, %d of %d acknowledged writes "
                             "are lost, wrong or missing a sibling through %s at R=3; e.g. %s"
                             % (len(wrong), len(expected), reader.name,
                                describe_mismatches(wrong, expected)))
        if convergence_failure is not None:
            raise convergence_failure

    def test_both_sides_take_writes_and_every_version_survives_the_heal(self):
        part, nodes, isolated, majority = self.partitioned_cluster(CONVERGE_ARGS)
        self.cut(part, isolated, majority)
        expected = self.write_both_sides(isolated, majority)
        self.heal(part, nodes)
        self.check_after_heal(nodes, isolated, majority, expected)

    def test_versions_cross_the_healed_cut_with_nothing_left_in_flight(self):
        # Packets dropped by the cut are retransmitted by TCP after the heal,
        # so replica writes sent across it during the partition may still
        # arrive late. Restarting every node while the cut holds discards
        # them: after the heal, only hinted handoff and anti-entropy can
        # carry a version from one side to the other.
        part, nodes, isolated, majority = self.partitioned_cluster(
            CONVERGE_ARGS, backend="file")
        self.cut(part, isolated, majority)
        expected = self.write_both_sides(isolated, majority)
        for node in nodes:
            self.assertEqual(node.stop(signal.SIGTERM), 0, node.log()[-2000:])
        for node in nodes:
            node.start()
        lacking = {n.name: len(read_mismatches(n.endpoint, expected, local=True))
                   for n in nodes}
        report("after restarting every node behind the cut, keys each engine lacks or "
               "misreads: %r" % lacking)
        self.assertTrue(all(lacking.values()), "a node already holds every version while "
                        "still cut off: %r" % lacking)
        self.heal(part, nodes)
        self.check_after_heal(nodes, isolated, majority, expected)


if __name__ == "__main__":
    unittest.main()
