"""Explicit membership changes (paper 4.8.1, 4.9): an administrator adds a
node (`join`), lets a node leave (`leave`: it hands its partitions to their
new owners first) or removes a dead one (`remove`: the new owners fill
themselves from the surviving replicas by anti-entropy). Each happens while a
client keeps writing; no write fails, every acknowledged write stays
readable, and every key ends up on every node of its new preference list.
Bad admin commands fail with one clear line and change nothing.

Contract (DESIGN.md 3.2): `dynamoctl --node X join SEED_ENDPOINT`,
`dynamoctl --node X leave`, `dynamoctl --node X remove NODE_ID`, each
printing {"ok": true} with --json; `status --json` has "transfers_pending"
and "keys_transferred"; a removed node disappears from "members".
"""

import os
import signal
import sys
import time
import unittest

from harness import (DynamoTestCase, EXIT_OTHER, EXIT_QUORUM, EXIT_USAGE, TIME_SCALE,
                     describe_mismatches, free_port, members_of, put_all, read_mismatches, replicas_of, ring_of, status_of,
                     wait_converged, wait_until, wire_local_holders)

ARGS = ["--failure-timeout-ms", "1500", "--handoff-interval-ms", "200",
        "--anti-entropy-interval-ms", "20"]

PRELOAD_KEYS = 600
WRITE_AFTER = 1.0   # seconds of writing before and after the change
MOVE_DEADLINE = 60.0 * TIME_SCALE    # the change converges and data moves
DOWN_DEADLINE = 6.0 * TIME_SCALE     # the others see a killed node down


def report(text):
    print("  [%s] %s" % (__name__, text), file=sys.stderr, flush=True)


class _MembershipCase(DynamoTestCase):

    def preload(self, node, prefix):
        items = [("%s-%05d" % (prefix, i), "preloaded %s %d" % (prefix, i))
                 for i in range(PRELOAD_KEYS)]
        acked, failed = put_all(node.endpoint, items, w=2)
        self.assertEqual(failed, {}, "%d preload writes failed; e.g. %r"
                         % (len(failed), sorted(failed.items())[:3]))
        return acked

    def admin_ok(self, node, *args):
        r = self.ctl(node, *args, json_output=True)
        self.assertEqual(r.returncode, 0, "%s failed: %s" % (" ".join(args), r.describe()))
        self.assertEqual(r.json(), {"ok": True}, r.describe())
        return r

    def finish_writer(self, writer, what):
        writer.stop()
        acked, failures, attempts = writer.snapshot()
        report("%s: %s" % (what, writer.summary()))
        self.assertGreater(len(acked), 0, "no write was acknowledged during %s" % what)
        # No node fails here (or the failed one is known down before the
        # writer starts), and two replicas of every key stay up: no write
        # may fail.
        self.assertEqual(failures[:5], [], "%d of %d writes failed during %s"
                         % (len(failures), attempts, what))
        return acked

    def assert_readable(self, readers, expected, what):
        for reader in readers:
            wrong = read_mismatches(reader.endpoint, expected)
            self.assertEqual(len(wrong), 0, "%s: %d of %d acknowledged writes lost or wrong "
                             "through %s; e.g. %s" % (what, len(wrong), len(expected),
                                                      reader.name,
                                                      describe_mismatches(wrong, expected)))

    def placed_then_readable(self, placed, ring, expected, readers, acked, what):
        """Waits until each node of placed holds every key of expected whose
        preference list includes it, before any coordinated read (a read
        repairs what it touches, and would hide a missing transfer); then
        checks every acknowledged write reads back through readers. A
        placement failure is reported after the read check."""
        placement_failure = None
        try:
            self.wait_placed(placed, ring, expected, what)
        except AssertionError as e:
            placement_failure = e
        self.assert_readable(readers, acked, "after " + what)
        if placement_failure is not None:
            raise placement_failure

    def wait_placed(self, nodes, ring, expected, what):
        """Waits until each of nodes that is on a key's preference list (in
        ring) holds the key in its own engine with its value."""
        by_id = {n.node_id: n for n in nodes}
        keys = sorted(expected)

        def check():
            holders = wire_local_holders(nodes, keys)
            missing = {}
            for key in keys:
                for node_id in replicas_of(key, ring):
                    if node_id in by_id and holders[key].get(node_id) != [expected[key]]:
                        missing.setdefault(node_id, []).append(key)
            if not missing:
                return None
            return {by_id[n].name if n in by_id else n:
                    "lacks %d of its keys, e.g. %s (holds %r)"
                    % (len(ks), ks[0], holders[ks[0]].get(n)) for n, ks in missing.items()}
        took = wait_until(check, MOVE_DEADLINE, what, interval=0.5)
        report("%s: %.1f s" % (what, took))
        return took


class JoinTest(_MembershipCase):

    def test_join_under_writes_moves_keys_to_the_new_node_and_loses_none(self):
        nodes = self.start_cluster(3, extra_args=ARGS)
        n1 = nodes[0]
        preloaded = self.preload(n1, "before-join")
        d = self.start_cluster_node(seed=None, extra_args=ARGS)
        self.assertEqual(members_of(status_of(d)), {d.node_id: "up"},
                         "a node started without --seed is a cluster of its own")

        writer = self.start_writer(n1, w=2, prefix="during-join")
        time.sleep(WRITE_AFTER)
        self.admin_ok(d, "join", n1.endpoint)
        everyone = nodes + [d]
        started = time.monotonic()
        ring = wait_converged(everyone, MOVE_DEADLINE)
        report("4 nodes agree %.1f s after join" % (time.monotonic() - started))
        time.sleep(WRITE_AFTER)
        acked = dict(preloaded)
        acked.update(self.finish_writer(writer, "the join"))

        # The newcomer's engine holds every key whose preference list now
        # includes it (about N/S = 3/4 of them); every write reads back.
        mine = {k: v for k, v in acked.items() if d.node_id in replicas_of(k, ring)}
        self.assertGreater(len(mine), 0, "the new node is in no preference list")
        self.placed_then_readable([d], ring, mine, [n1, d], acked,
                                  "the join: the new node holds every key it now replicates")
        holders = wire_local_holders([d], sorted(acked))
        held = sum(1 for k in acked if d.node_id in holders[k])
        report("moved share: %s holds %d of %d keys (%.0f%%); its preference lists cover %d "
               "(%.0f%%)" % (d.node_id, held, len(acked), 100.0 * held / len(acked),
                             len(mine), 100.0 * len(mine) / len(acked)))
        share = len(mine) / len(acked)
        self.assertTrue(0.5 <= share <= 0.95, "a 4th node with N=3 should replicate about "
                        "3/4 of the keys, the ring gives it %.0f%%" % (100 * share))
        self.assertGreater(status_of(d).get("keys_transferred", 0)
                           + sum(status_of(n).get("keys_transferred", 0) for n in nodes), 0,
                           "no node counts a transferred key")


    def test_a_partition_larger_than_one_slice_moves_whole(self):
        # Two partitions of 6,000 keys each: a hand-off streams each in
        # batches (4,096 keys at most, two in flight). Anti-entropy is off,
        # and the new node does not pull (--rebuild-streams 0, test_rebuild),
        # so only the hand-off can move them.
        args = ["--partitions", "2", "--anti-entropy-interval-ms", "0"]
        first = self.start_cluster_node(extra_args=args)
        items = [("slice-%06d" % i, "v%d" % i) for i in range(12000)]
        acked, failed = put_all(first.endpoint, items, w=1)
        self.assertEqual(failed, {}, "writes to a one-node cluster failed")
        second = self.start_cluster_node(seed=first,
                                         extra_args=args + ["--rebuild-streams", "0"])
        wait_converged([first, second])
        # N=3 on two nodes: both replicate both partitions.
        def complete():
            wrong = read_mismatches(second.endpoint, acked, local=True)
            return "%d of %d keys missing" % (len(wrong), len(acked)) if wrong else None
        took = wait_until(complete, MOVE_DEADLINE, "the new node receives both partitions whole")
        self.assertEqual(status_of(first)["keys_transferred"], len(acked))
        report("12,000 keys in 2 partitions handed over in %.1f s" % took)


class LeaveTest(_MembershipCase):

    def test_leave_under_writes_hands_everything_off_and_loses_none(self):
        nodes = self.start_cluster(4, extra_args=ARGS)
        n1, d, rest = nodes[0], nodes[3], nodes[:3]
        preloaded = self.preload(n1, "before-leave")
        writer = self.start_writer(n1, w=2, prefix="during-leave")
        time.sleep(WRITE_AFTER)
        self.admin_ok(d, "leave")
        started = time.monotonic()

        def left():
            rings = {n.name: ring_of(n) for n in rest}
            still = [name for name, r in rings.items()
                     if any(d.node_id in entry for entry in r["owners"])]
            if still:
                return "%s still in the ring of %s" % (d.node_id, still)
            if any(r != rings[rest[0].name] for r in rings.values()):
                return "the remaining nodes' rings differ: versions %r" % {
                    name: r.get("version") for name, r in rings.items()}
            pending = status_of(d).get("transfers_pending")
            if pending != 0:
                return "%s has transfers_pending %r" % (d.name, pending)
            return None
        wait_until(left, MOVE_DEADLINE, "%s leaves the ring and hands off every partition"
                   % d.node_id, interval=0.25)
        report("%s out of the ring, transfers done, %.1f s after leave"
               % (d.node_id, time.monotonic() - started))
        time.sleep(WRITE_AFTER)
        acked = dict(preloaded)
        acked.update(self.finish_writer(writer, "the leave"))

        # The node that left keeps running, empty, until stopped.
        def emptied():
            holders = wire_local_holders([d], sorted(acked))
            kept = [k for k in acked if holders[k]]
            return "%s still holds %d keys, e.g. %s" % (d.name, len(kept), kept[0]) \
                if kept else None
        wait_until(emptied, MOVE_DEADLINE, "the node that left drops what it handed off",
                   interval=0.5)
        self.assertEqual(d.stop(signal.SIGTERM), 0, d.log()[-2000:])
        ring = wait_converged(rest, MOVE_DEADLINE)

        self.placed_then_readable(rest, ring, acked, rest, acked, "the leave: each key on "
                                  "every node of its new preference list")

    def test_a_node_that_left_joins_again_on_request(self):
        nodes = self.start_cluster(4, extra_args=ARGS)
        n1, d, rest = nodes[0], nodes[3], nodes[:3]
        self.admin_ok(d, "leave")

        def gone():
            members = {n.name: sorted(members_of(status_of(n))) for n in rest}
            return None if all(d.node_id not in m for m in members.values()) else members
        wait_until(gone, MOVE_DEADLINE, "%s is gone from the others' members" % d.node_id)
        # Out of the cluster, it refuses to leave again, and can join again.
        r = self.ctl(d, "leave")
        self.assertExit(r, 1)
        self.assertOneErrorLine(r, "not in the ring")
        self.admin_ok(d, "join", n1.endpoint)
        ring = wait_converged(nodes, MOVE_DEADLINE)
        self.assertTrue(any(d.node_id in entry for entry in ring["owners"]),
                        "%s rejoined but owns no partition" % d.node_id)
        key_of_d = next(k for k in ("rejoin-%d" % i for i in range(10000))
                        if d.node_id in replicas_of(k, ring))
        self.put(n1, key_of_d, "back", extra=["--w", "3"])
        self.assertEqual(self.get_json(d, key_of_d, extra=["--local"])[0], [b"back"])


class CrashDuringHandOffTest(_MembershipCase):
    """A hand-off survives a crash of either side: the sender (the leaving
    node) is killed while a receiver is stalled, the receiver is killed
    too, both restart, and every key still reaches its new replicas.
    Anti-entropy is off, so only the hand-off can move the keys."""

    KEYS = 1500

    def test_a_leave_cut_short_by_kill_9_of_sender_and_receiver_completes(self):
        args = ["--failure-timeout-ms", "1500", "--anti-entropy-interval-ms", "0"]
        nodes = self.start_cluster(4, backend="file", extra_args=args)
        n1, n2, receiver, leaver = nodes
        items = [("handoff-crash-%05d" % i, "value %d" % i) for i in range(self.KEYS)]
        acked, failed = put_all(n1.endpoint, items, w=3)
        self.assertEqual(failed, {}, "writes at W=3 failed before the leave")

        os.kill(receiver.proc.pid, signal.SIGSTOP)  # its batches stall
        self.addCleanup(lambda: receiver.alive() and os.kill(receiver.proc.pid, signal.SIGCONT))
        self.admin_ok(leaver, "leave")

        def out_of_ring():
            return None if all(leaver.node_id not in sum(ring_of(n)["owners"], [])
                               for n in (n1, n2)) else "still in the ring"
        wait_until(out_of_ring, MOVE_DEADLINE, "the claimant takes the leaver out of the ring")
        time.sleep(1.0)  # batches to the others go; those to the stalled receiver wait
        pending = status_of(leaver)["transfers_pending"]
        report("leaver killed with %d partition hand-offs pending" % pending)
        self.assertGreater(pending, 0, "the hand-off finished before the crash: the test "
                           "shows nothing")
        leaver.kill9()
        receiver.kill9()
        receiver.start()
        leaver.start()

        rest = [n1, n2, receiver]
        ring = wait_converged(rest, MOVE_DEADLINE)
        self.wait_placed(rest, ring, acked, "after both sides crashed mid-hand-off, each key "
                         "on every node of its new preference list")

        def emptied():
            holders = wire_local_holders([leaver], sorted(acked))
            kept = [k for k in acked if holders[k]]
            return "the leaver still holds %d keys" % len(kept) if kept else None
        wait_until(emptied, MOVE_DEADLINE, "the restarted leaver finishes its hand-off and "
                   "drops what it handed off", interval=0.5)
        self.assert_readable(rest, acked, "after the crashed hand-off")


class RemoveTest(_MembershipCase):

    def test_remove_of_a_dead_node_refills_the_new_owners_and_loses_none(self):
        nodes = self.start_cluster(4, extra_args=ARGS)
        n1, d, rest = nodes[0], nodes[3], nodes[:3]
        preloaded = self.preload(n1, "before-remove")
        d.kill9()

        def seen_down():
            views = {n.name: members_of(status_of(n)).get(d.node_id) for n in rest}
            return None if all(v == "down" for v in views.values()) else views
        wait_until(seen_down, DOWN_DEADLINE, "every live node sees the killed node down")
        holders = wire_local_holders(rest, sorted(preloaded))
        short = sum(1 for k in preloaded if len(holders[k]) < len(rest))
        report("before remove: %d of %d keys are on fewer than all %d survivors"
               % (short, len(preloaded), len(rest)))
        self.assertGreater(short, 0, "every survivor already holds every key: nothing to fill")

        writer = self.start_writer(n1, w=2, prefix="during-remove")
        time.sleep(WRITE_AFTER)
        self.admin_ok(n1, "remove", d.node_id)
        started = time.monotonic()
        ring = wait_converged(rest, MOVE_DEADLINE)
        report("3 nodes agree on a ring without %s %.1f s after remove"
               % (d.node_id, time.monotonic() - started))
        for entry in ring["owners"]:
            self.assertNotIn(d.node_id, entry, "a removed node is still in a preference list")
        time.sleep(WRITE_AFTER)
        acked = dict(preloaded)
        acked.update(self.finish_writer(writer, "the remove"))

        self.placed_then_readable(rest, ring, acked, rest, acked,
                                  "the remove: anti-entropy fills every new owner")


class AdminErrorTest(_MembershipCase):

    def test_bad_admin_commands_fail_with_one_line_and_change_nothing(self):
        pair = self.start_cluster(2, extra_args=ARGS)
        before = ring_of(pair[0])

        for json_output in (False, True):
            r = self.ctl(pair[0], "remove", "no-such-node", json_output=json_output)
            self.assertNotEqual(r.returncode, 0, "removing an unknown node succeeded: "
                                + r.describe())
            self.assertOneErrorLine(r)
            self.assertEqual(r.stdout, b"", r.describe())

        r = self.ctl(pair[0], "join", "not-an-endpoint")
        self.assertIn(r.returncode, (EXIT_OTHER, EXIT_USAGE), r.describe())
        self.assertOneErrorLine(r)

        for args in (["remove"], ["join"], ["leave", "extra-argument"]):
            r = self.ctl(pair[0], *args)
            self.assertEqual(r.returncode, EXIT_USAGE, r.describe())
            self.assertOneErrorLine(r)

        lone = self.start_cluster_node(seed=None, extra_args=ARGS)
        r = self.ctl(lone, "leave")
        self.assertEqual(r.returncode, EXIT_OTHER, "leave on a one-node cluster: "
                         + r.describe())
        # Exit 1 says "refused", not "invalid argument" (that goes with 5).
        self.assertOneErrorLine(r, "dynamoctl: refused: the last node of a cluster cannot leave")

        # A seed nobody listens on (a mistyped port): refused once it did
        # not answer, and the node stays in its own cluster, serving.
        self.put(lone, "before-join", "kept")
        dead_seed = "tcp://127.0.0.1:%d" % free_port()
        r = self.ctl(lone, "join", dead_seed)
        self.assertEqual(r.returncode, EXIT_QUORUM, r.describe())
        self.assertOneErrorLine(r, "seed %s did not answer" % dead_seed)

        # Nothing changed: both clusters as they were, and serving.
        self.assertEqual(wait_converged(pair), before)
        self.assertEqual(members_of(status_of(lone)), {lone.node_id: "up"})
        self.put(lone, "still-serving", "yes")
        self.assertEqual(self.get_json(lone, "still-serving")[0], [b"yes"])
        self.assertEqual(self.get_json(lone, "before-join")[0], [b"kept"])
        self.assertEqual(ring_of(lone)["owners"][0], [lone.node_id])


if __name__ == "__main__":
    unittest.main()
