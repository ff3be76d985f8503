"""Replica synchronization by anti-entropy (paper 4.7): replicas of a
partition compare Merkle trees in the background and exchange only the keys
that differ. A replica whose data was wiped gets every key back without a
single coordinated read (so read repair plays no part), after which the
trees agree and the repair counters stop moving; a replica that missed a
delete and a concurrent write while it was down ends up with the tombstone
(the old value does not come back) and with both siblings (neither is
dropped by the repair).

Contract (DESIGN.md 3.1/3.2): dynamod --anti-entropy-interval-ms (pause
between two partition exchanges) and --anti-entropy-rate; `status --json`
has "anti_entropy": {"exchanges", "keys_repaired", "partitions_differing",
"rounds", "yields"}, keys_repaired counting keys a node changed locally or
pushed to a peer because of anti-entropy, rounds counting full passes over
the node's partitions. Three nodes with N=3: every node replicates every key.
"""

import os
import shutil
import signal
import sys
import time
import unittest

from harness import (DynamoTestCase, TIME_SCALE, WireClient, describe_mismatches, put_all,
                     read_mismatches, status_of, wait_converged, wait_until)

# --rebuild-streams 0: a node that starts empty would otherwise pull its
# partitions whole (test_rebuild); here anti-entropy alone refills and
# repairs, and a node's first rebuild (of the empty partitions it started
# with) cannot resume after a restart and repair in its place.
ARGS = ["--failure-timeout-ms", "1500", "--handoff-interval-ms", "200",
        "--anti-entropy-interval-ms", "20", "--rebuild-streams", "0"]
COUNTERS = ("exchanges", "keys_repaired", "partitions_differing", "rounds", "yields")

REFILL_DEADLINE = 60.0 * TIME_SCALE   # a wiped replica holds every key again
QUIET_DEADLINE = 90.0 * TIME_SCALE    # the repair counters stop moving
ROUNDS_DEADLINE = 30.0 * TIME_SCALE   # every node completes two more passes


def report(text):
    print("  [%s] %s" % (__name__, text), file=sys.stderr, flush=True)


def anti_entropy_of(nodes):
    return {n.name: status_of(n)["anti_entropy"] for n in nodes}


def local_reply(node, key):
    """(found, sorted values) of node's own engine for key."""
    with WireClient(node.endpoint) as client:
        reply = client.get_many([key], local=True)[0]
    values = WireClient.values_of(reply)
    return values is not None, values


class _AntiEntropyCase(DynamoTestCase):

    def start_three(self):
        nodes = self.start_cluster(3, backend="file", extra_args=ARGS)
        for node in nodes:
            doc = status_of(node)
            ae = doc.get("anti_entropy")
            self.assertIsInstance(ae, dict, "%s's status has no anti_entropy object: %r"
                                  % (node.name, doc))
            for counter in COUNTERS:
                self.assertIsInstance(ae.get(counter), int, "%s's status lacks the counter "
                                      "anti_entropy.%s: %r" % (node.name, counter, ae))
        # The hand-offs of the cluster's formation are over, so whatever a
        # replica gets later is anti-entropy's doing.
        wait_converged(nodes)
        wait_until(lambda: None if all(status_of(n)["transfers_pending"] == 0 for n in nodes)
                   else {n.name: status_of(n)["transfers_pending"] for n in nodes},
                   30.0 * TIME_SCALE, "the formation's partition hand-offs finish")
        return nodes

    def wait_quiet(self, nodes):
        """Waits until, across two full anti-entropy passes of every node,
        no node repairs a key or finds a differing partition, while
        exchanges go on. Returns the seconds it took."""
        started = time.monotonic()
        end = started + QUIET_DEADLINE
        while True:
            before = anti_entropy_of(nodes)

            def passes_done():
                now = anti_entropy_of(nodes)
                behind = {n: (now[n]["rounds"], before[n]["rounds"] + 2) for n in now
                          if now[n]["rounds"] < before[n]["rounds"] + 2}
                return behind or None
            wait_until(passes_done, ROUNDS_DEADLINE,
                       "every node completes two anti-entropy passes (rounds: now, wanted)",
                       interval=0.25)
            after = anti_entropy_of(nodes)
            moved = {n: {c: (before[n][c], after[n][c])
                         for c in ("keys_repaired", "partitions_differing")
                         if after[n][c] != before[n][c]}
                     for n in after}
            moved = {n: m for n, m in moved.items() if m}
            if not moved:
                exchanged = sum(after[n]["exchanges"] - before[n]["exchanges"] for n in after)
                self.assertGreater(exchanged, 0, "anti-entropy stopped exchanging altogether "
                                   "(counters %r)" % after)
                return time.monotonic() - started
            if time.monotonic() > end:
                self.fail("replicas still repair keys or find differing partitions after "
                          "%.0f s, across two full passes (before, after): %r"
                          % (QUIET_DEADLINE, moved))


class WipedReplicaTest(_AntiEntropyCase):

    KEYS = 2000

    def test_a_wiped_replica_gets_every_key_back_without_reads_and_trees_agree(self):
        nodes = self.start_three()
        wait_converged(nodes)
        n1, n2, n3 = nodes
        values = {"ae-%05d" % i: ("anti-entropy value %05d " % i).encode() + b"." * (i % 40)
                  for i in range(self.KEYS)}
        acked, failed = put_all(n1.endpoint, sorted(values.items()), w=3)
        self.assertEqual(failed, {}, "%d of %d writes at W=3 failed; e.g. %r"
                         % (len(failed), len(values), sorted(failed.items())[:3]))
        for node in nodes:
            wrong = read_mismatches(node.endpoint, acked, local=True)
            self.assertEqual(wrong, {}, "after W=3 writes %s lacks %d keys" % (node.name,
                                                                            len(wrong)))

        # Wipe node3's engine; its membership state stays, so it comes back
        # as the same member with nothing stored.
        self.assertEqual(n3.stop(signal.SIGTERM), 0, n3.log()[-2000:])
        shutil.rmtree(n3.file_engine_dir)
        self.assertTrue(os.path.exists(os.path.join(n3.data_dir, "cluster.state")),
                        os.listdir(n3.data_dir))
        n3.start()  # with --rebuild-streams 0 (ARGS): anti-entropy refills it
        started = time.monotonic()
        report("node3 restarted empty; it lacks %d of %d keys at first"
               % (len(read_mismatches(n3.endpoint, acked, local=True)), len(acked)))

        # No coordinated read from here on: only anti-entropy can refill it.
        def refilled():
            wrong = read_mismatches(n3.endpoint, acked, local=True)
            if not wrong:
                return None
            return "node3 lacks or misreads %d of %d keys (e.g. %s); its anti_entropy: %r" % (
                len(wrong), len(acked), describe_mismatches(wrong, acked, limit=1),
                status_of(n3).get("anti_entropy"))
        wait_until(refilled, REFILL_DEADLINE,
                   "anti-entropy gives the wiped replica every key back", interval=1.0)
        counters = anti_entropy_of(nodes)
        report("node3 held all %d keys again %.1f s after its restart; anti_entropy: %r"
               % (len(acked), time.monotonic() - started, counters))
        repaired = sum(c["keys_repaired"] for c in counters.values())
        self.assertGreaterEqual(repaired, len(acked),
                                "keys_repaired over all nodes is %d, yet %d keys were "
                                "restored: %r" % (repaired, len(acked), counters))
        self.assertGreater(sum(c["partitions_differing"] for c in counters.values()), 0,
                           counters)

        quiet = self.wait_quiet(nodes)
        report("trees agree: no repair across two passes (%.1f s)" % quiet)
        for node in nodes:
            wrong = read_mismatches(node.endpoint, acked, local=True)
            self.assertEqual(len(wrong), 0, "%s's engine lost %d keys once the trees agreed; "
                             "e.g. %s" % (node.name, len(wrong),
                                          describe_mismatches(wrong, acked)))


class LostDataFolderTest(_AntiEntropyCase):

    def test_a_node_whose_whole_data_folder_was_lost_rejoins_and_is_refilled(self):
        nodes = self.start_three()
        n1, n2, n3 = nodes
        values = {"lost-%04d" % i: "value %d" % i for i in range(300)}
        acked, failed = put_all(n1.endpoint, sorted(values.items()), w=3)
        self.assertEqual(failed, {})
        self.assertEqual(n3.stop(signal.SIGTERM), 0, n3.log()[-2000:])
        # Membership, hints and engine all gone: it starts as a new node of
        # the same name, through its --seed.
        shutil.rmtree(n3.data_dir)
        n3.start()  # refilled by anti-entropy, not a rebuild (ARGS)
        ring = wait_converged(nodes)
        self.assertTrue(any(n3.node_id in entry for entry in ring["owners"]))

        def refilled():
            wrong = read_mismatches(n3.endpoint, acked, local=True)
            return "%d of %d keys missing" % (len(wrong), len(acked)) if wrong else None
        took = wait_until(refilled, REFILL_DEADLINE, "the node that lost its data folder "
                          "gets every key back by anti-entropy", interval=0.5)
        report("node3 refilled %.1f s after it came back without a data folder" % took)


class StaleReplicaTest(_AntiEntropyCase):

    def test_a_missed_delete_and_concurrent_siblings_are_repaired_as_such(self):
        nodes = self.start_three()
        wait_converged(nodes)
        n1, n2, n3 = nodes
        doomed_ctx = self.put(n1, "doomed", "old", extra=["--w", "3"])
        cart_ctx = self.put(n1, "cart", "v0", extra=["--w", "3"])
        self.put(n1, "steady", "unchanged", extra=["--w", "3"])

        # While node3 is down: the delete, two writes from the same stale
        # context through two coordinators (siblings), a new key, and a key
        # that is born and deleted.
        self.assertEqual(n3.stop(signal.SIGTERM), 0, n3.log()[-2000:])
        self.delete(n1, "doomed", context=doomed_ctx)
        self.put(n1, "cart", "left", context=cart_ctx)
        self.put(n2, "cart", "right", context=cart_ctx)
        self.put(n2, "born-while-down", "new")
        self.delete(n1, "short-lived", context=self.put(n1, "short-lived", "gone"))
        # Replica writes to node3 may still sit in the other nodes' queues;
        # restarting them drops those, so node3 really comes back stale.
        for node in (n1, n2):
            self.assertEqual(node.stop(signal.SIGTERM), 0, node.log()[-2000:])
        n3.start()
        self.assertEqual(local_reply(n3, "doomed"), (True, [b"old"]))
        self.assertEqual(local_reply(n3, "cart"), (True, [b"v0"]))
        self.assertEqual(local_reply(n3, "born-while-down"), (False, None))
        before = anti_entropy_of([n3])
        n1.start()
        n2.start()
        # Restarted, their counters start from zero: that is their baseline
        # (anti-entropy may repair before they even agree on the ring).
        before.update({n.name: {c: 0 for c in COUNTERS} for n in (n1, n2)})
        wait_converged(nodes)

        # No coordinated read until node3's own engine is repaired.
        want = {"doomed": (False, None), "cart": (True, [b"left", b"right"]),
                "steady": (True, [b"unchanged"]), "born-while-down": (True, [b"new"]),
                "short-lived": (False, None)}

        def repaired():
            got = {key: local_reply(n3, key) for key in want}
            wrong = {k: v for k, v in got.items() if v != want[k]}
            return wrong or None
        took = wait_until(repaired, REFILL_DEADLINE,
                          "node3's engine holds the tombstone instead of the old value and "
                          "both siblings (key: (found, values))", interval=0.5)
        report("node3 repaired %.1f s after the cluster was back" % took)
        after = anti_entropy_of(nodes)
        delta = sum(after[n]["keys_repaired"] - before[n]["keys_repaired"] for n in after)
        self.assertGreaterEqual(delta, 3, "node3 missed 3 live updates, yet keys_repaired "
                                "rose by %d: before %r, after %r" % (delta, before, after))

        # Every node, at R=3: the deleted key stays deleted (node3's old
        # value is not resurrected) and the siblings are both there.
        for reader in nodes:
            self.assertIsNone(self.get_json(reader, "doomed", extra=["--r", "3"]),
                              "the deleted key came back through %s" % reader.name)
            self.assertEqual(self.get_json(reader, "cart", extra=["--r", "3"])[0],
                             [b"left", b"right"], "a sibling was lost through %s"
                             % reader.name)
        for node in (n1, n2):
            self.assertEqual(local_reply(node, "cart"), (True, [b"left", b"right"]),
                             "%s's engine lost a sibling" % node.name)
            self.assertEqual(local_reply(node, "doomed"), (False, None),
                             "the old value came back into %s's engine" % node.name)


class YieldTest(DynamoTestCase):
    """Background work yields to clients (paper 6.5): with
    --anti-entropy-yield-ms 0 a node holds its exchanges back whenever
    clients were served since its last one, and resumes once they stop."""

    def test_exchanges_wait_while_clients_are_served_and_resume_after(self):
        args = ["--anti-entropy-interval-ms", "20", "--anti-entropy-yield-ms", "0"]
        nodes = self.start_cluster(3, extra_args=args)
        busy = nodes[0]
        # Idle: exchanges run.
        before = status_of(busy)["anti_entropy"]
        wait_until(lambda: None if status_of(busy)["anti_entropy"]["exchanges"]
                   >= before["exchanges"] + 10 else status_of(busy)["anti_entropy"],
                   10.0 * TIME_SCALE, "an idle node runs anti-entropy exchanges")

        writer = self.start_writer(busy, w=2, prefix="busy", pause=0.0)
        time.sleep(0.5)  # the writer is up to speed
        start = status_of(busy)["anti_entropy"]
        time.sleep(2.0)
        end = status_of(busy)["anti_entropy"]
        writer.stop()
        acked, failures, _ = writer.snapshot()
        ran = end["exchanges"] - start["exchanges"]
        yielded = end["yields"] - start["yields"]
        report("under load: %d exchanges, %d yields, %d writes acknowledged"
               % (ran, yielded, len(acked)))
        self.assertEqual(failures, [], "writes failed: " + writer.summary())
        self.assertGreater(len(acked), 0, "the writer wrote nothing")
        self.assertGreater(yielded, 0, "anti-entropy never yielded to the client load")
        # Nearly every look found clients served since the last: almost all
        # of them yielded (a writer pause of a scheduling slice may let one
        # through).
        self.assertGreater(yielded, 3 * ran,
                           "anti-entropy kept running under client load: %d exchanges "
                           "against %d yields" % (ran, yielded))

        # Load gone: exchanges resume.
        after = status_of(busy)["anti_entropy"]
        wait_until(lambda: None if status_of(busy)["anti_entropy"]["exchanges"]
                   >= after["exchanges"] + 10 else status_of(busy)["anti_entropy"],
                   10.0 * TIME_SCALE, "anti-entropy resumes once the clients stop")


if __name__ == "__main__":
    unittest.main()
