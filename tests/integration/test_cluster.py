"""Clusters of real dynamod processes on loopback (paper 4.2-4.5, 4.8): a ring
formed from seeds alone, preference lists of N distinct nodes, any node taking
any request, exact-N placement, siblings through two coordinators, read
repair, strict quorums with replicas down, a join that moves about 1/(S+1) of
the partitions while every key stays readable, and membership that survives
restarts.

Contract (DESIGN.md 3.1/3.2 and the cluster issue): `dynamoctl ring --json` is
{"partitions": Q, "replicas": N, "version": V, "owners": [[node_id, ...]]},
entry p being partition p's preference list, owner first; a key's partition
is the top log2(Q) bits of MD5(key). Convergence = every node returns the
identical ring document and sees every member "up" (harness.wait_converged).
Nodes run the memory engine unless a case needs durability.
"""

import base64
import random
import re
import signal
import threading
import time
import unittest

from harness import (DynamoTestCase, EXIT_NOT_FOUND, EXIT_QUORUM,
                     EXIT_REJECTED, EXIT_USAGE, TIME_SCALE, WireClient, endpoint_of,
                     free_port, local_holders, partition_of, replicas_of,
                     run_dynamod, status_of, wait_converged, wire_local_holders)

Q = 256          # dynamod's default partition count
N = 3            # dynamod's default replica count
R = W = 2        # dynamod's default quorums

REPAIR_DEADLINE = 10.0 * TIME_SCALE   # a read repair reaches the stale replica
PLACEMENT_DEADLINE = 10.0 * TIME_SCALE  # the last of N replicas acknowledges a put
MOVE_DEADLINE = 60.0 * TIME_SCALE     # a join converges and its partitions move
DROP_DEADLINE = 20.0 * TIME_SCALE     # then the old replicas drop what moved away

_COUNTS = re.compile(r"\b(\d+)\s+of\s+(\d+)\b")


def decode_context(ctx):
    """The events of a context token: base64 of msgpack [clock, dots] (and
    optionally the coordinator hint, a third item), clock and dots each a
    list of [actor, counter, ts_ms], an actor being "<node_id>~<suffix>"
    (docs/protocol.md)."""
    import msgpack
    items = msgpack.unpackb(base64.b64decode(ctx), raw=False)
    return items[0] + items[1]


def context_hint(ctx):
    """The replica a context token names as the next write's coordinator, or None."""
    import msgpack
    items = msgpack.unpackb(base64.b64decode(ctx), raw=False)
    return items[2] if len(items) > 2 else None


def owner_counts(ring):
    counts = {}
    for entry in ring["owners"]:
        counts[entry[0]] = counts.get(entry[0], 0) + 1
    return counts


class _ClusterAsserts:
    """Checks shared by the cases (mixed into DynamoTestCase subclasses)."""

    def assert_well_formed(self, nodes, ring, spread=1):
        """ring (the converged one) has Q partitions, preference lists of
        min(N, S) distinct members built clockwise from the owners, each node
        owning Q/S partitions within one (and max - min <= spread); every
        node's status agrees with it."""
        ids = {n.node_id for n in nodes}
        self.assertEqual(ring.get("partitions"), Q, ring.get("partitions"))
        self.assertEqual(ring.get("replicas"), N)
        self.assertIn("version", ring)
        owners = ring["owners"]
        self.assertEqual(len(owners), Q)
        want = min(N, len(nodes))
        for p, entry in enumerate(owners):
            self.assertEqual(len(entry), want, "partition %d: %r" % (p, entry))
            self.assertEqual(len(set(entry)), want, "partition %d repeats a node: %r" % (p, entry))
            self.assertLessEqual(set(entry), ids, "partition %d: %r" % (p, entry))
            # The owner, then the next distinct physical nodes clockwise.
            expected = []
            for step in range(Q):
                node_id = owners[(p + step) % Q][0]
                if node_id not in expected:
                    expected.append(node_id)
                if len(expected) == want:
                    break
            self.assertEqual(entry, expected, "partition %d's preference list is not its owner "
                             "then the next distinct owners clockwise" % p)

        counts = owner_counts(ring)
        self.assertEqual(set(counts), ids, counts)
        self.assertEqual(sum(counts.values()), Q)
        for node_id, count in counts.items():
            self.assertLessEqual(abs(count - Q / len(nodes)), 1,
                                 "%s owns %d partitions, Q/S = %.1f: %r"
                                 % (node_id, count, Q / len(nodes), counts))
        self.assertLessEqual(max(counts.values()) - min(counts.values()), spread,
                             "ownership not balanced: %r" % counts)

        for node in nodes:
            status = status_of(node)
            with self.subTest(node=node.name):
                self.assertEqual(status.get("node_id"), node.node_id, status)
                self.assertEqual(status.get("endpoint"), node.endpoint, status)
                self.assertEqual(status.get("partitions"), Q, status)
                self.assertEqual(status.get("partitions_owned"), counts[node.node_id], status)
                self.assertEqual(status.get("replicas"), N, status)
                self.assertEqual(status.get("read_quorum"), R, status)
                self.assertEqual(status.get("write_quorum"), W, status)
                self.assertEqual(status.get("hints_pending"), 0, status)
                self.assertEqual(status.get("ring_version"), ring["version"], status)
                members = {m["node_id"]: (m["endpoint"], m["state"]) for m in status["members"]}
                self.assertEqual(members, {n.node_id: (n.endpoint, "up") for n in nodes}, status)

    def assert_counts(self, result, answered, needed):
        """One stderr line saying `answered of needed`."""
        line = self.assertOneErrorLine(result)
        m = _COUNTS.search(line)
        self.assertIsNotNone(m, "stderr should say how many answered of how many needed: "
                             + result.describe())
        self.assertEqual((int(m.group(1)), int(m.group(2))), (answered, needed),
                         result.describe())


class FormationTest(_ClusterAsserts, DynamoTestCase):
    """A cluster forms from --seed alone and every node reports the same ring."""

    def test_three_nodes_form_from_seeds_alone(self):
        # dynamod's own gossip interval (1 s), as a user would start it.
        nodes = self.start_cluster(3, gossip_interval_ms=0)
        ring = wait_converged(nodes)
        self.assert_well_formed(nodes, ring)
        for node in nodes[1:]:
            self.assertIn("--seed", node.argv())
        self.assertNotIn("--seed", nodes[0].argv())

    def test_five_nodes_on_five_loopback_addresses_form_from_seeds_alone(self):
        hosts = ["127.0.0.%d" % i for i in range(1, 6)]
        nodes = self.start_cluster(5, hosts=hosts)
        ring = wait_converged(nodes)
        self.assert_well_formed(nodes, ring)
        self.assertEqual([n.host for n in nodes], hosts)


class PlacementTest(_ClusterAsserts, DynamoTestCase):

    def test_each_key_lives_on_exactly_its_preference_list_and_reads_anywhere(self):
        nodes = self.start_cluster(5)
        ring = wait_converged(nodes)
        by_id = {n.node_id: n for n in nodes}
        rng = random.Random(5)
        keys = {"placed-%02d" % i: "value-%02d" % i for i in range(50)}
        forwarded = 0
        for key, value in keys.items():
            writer, reader = rng.sample(nodes, 2)
            ctx = self.put(writer, key, value)
            self.assert_values(reader, key, [value.encode()])
            # The context names the coordinator for the next write: a node
            # of the key's preference list (a node outside it forwards the
            # put), the writer itself when it is one.
            coordinator = context_hint(ctx)
            is_replica = writer.node_id in replicas_of(key, ring)
            self.assertIn(coordinator, replicas_of(key, ring),
                          "put of %s through %s was coordinated outside its preference list"
                          % (key, writer.name))
            if is_replica:
                self.assertEqual(coordinator, writer.node_id)
            # A fresh key's first version carries one clock entry, made by
            # the node the put came through: as coordinator, or as the
            # forwarder that fixed the dot ("<actor>+f<epoch>", docs/design.md
            # "Forwarded writes").
            actors = [entry[0] for entry in decode_context(ctx)]
            self.assertEqual(len(actors), 1, actors)
            self.assertEqual(actors[0].split("~")[0], writer.node_id, actors)
            self.assertEqual(re.search(r"\+f[0-9]+$", actors[0]) is not None, not is_replica,
                             actors)
            forwarded += not is_replica
        self.assertGreater(forwarded, 0, "no put went through a node outside the list")

        # Coordinators answer after W acks; the last replica may lag a moment.
        pending = dict(keys)
        end = time.monotonic() + PLACEMENT_DEADLINE
        while pending:
            wrong = {}
            for key, value in pending.items():
                want = {node_id: [value.encode()] for node_id in replicas_of(key, ring)}
                holders = local_holders(nodes, key)
                if holders != want:
                    wrong[key] = (holders, sorted(want))
            pending = {k: keys[k] for k in wrong}
            if pending and time.monotonic() > end:
                key, (holders, want) = next(iter(wrong.items()))
                self.fail("%d of %d keys are not on exactly their preference lists; e.g. %s "
                          "(partition %d): engines holding it %r, preference list %r"
                          % (len(wrong), len(keys), key, partition_of(key, Q), holders, want))
            if pending:
                time.sleep(0.2)
        # Every key is on N distinct nodes, and the holders are real members.
        for key in keys:
            self.assertEqual(len(set(replicas_of(key, ring))), N)
            self.assertLessEqual(set(replicas_of(key, ring)), set(by_id))


class ReadWriteTest(_ClusterAsserts, DynamoTestCase):
    """Requests on a converged 3-node cluster (every node is in every
    preference list, so any node can coordinate any put)."""

    def setUp(self):
        super().setUp()
        self.nodes = self.start_cluster(3)
        self.ring = wait_converged(self.nodes)

    def test_put_through_any_node_get_through_every_other_node(self):
        for i, writer in enumerate(self.nodes):
            key, value = "any-%d" % i, "written through %s" % writer.name
            self.put(writer, key, value)
            for reader in self.nodes:
                if reader is not writer:
                    self.assert_values(reader, key, [value.encode()])

    def test_same_stale_context_through_two_coordinators_gives_siblings_merge_collapses(self):
        n1, n2, n3 = self.nodes
        ctx0 = self.put(n1, "cart", "v0")
        self.put(n2, "cart", "left", context=ctx0)
        self.put(n3, "cart", "right", context=ctx0)
        # R + W > N: every read quorum meets both write quorums.
        merged = None
        for reader in self.nodes:
            merged = self.assert_values(reader, "cart", [b"left", b"right"])
        self.put(n2, "cart", "merged", context=merged)
        for reader in self.nodes:
            self.assert_values(reader, "cart", [b"merged"])
        # A merged context also supersedes the siblings on every replica's engine.
        end = time.monotonic() + PLACEMENT_DEADLINE
        while True:
            holders = local_holders(self.nodes, "cart")
            if holders == {n.node_id: [b"merged"] for n in self.nodes}:
                break
            if time.monotonic() > end:
                self.fail("engines still hold %r after the merged put" % holders)
            time.sleep(0.1)

    def test_read_repair_gives_a_wiped_replica_the_key_back(self):
        n1, n2, n3 = self.nodes
        self.put(n1, "repair-me", "precious")
        self.wait_local(n3, "repair-me", [b"precious"], PLACEMENT_DEADLINE)
        # kill -9 and restart: the memory engine comes back empty, membership
        # comes back from --data-dir. (--rebuild-streams 0: not refilled by a
        # rebuild, test_rebuild's subject.)
        n3.kill9()
        n3.extra_args += ["--rebuild-streams", "0"]
        n3.start()
        wait_converged(self.nodes)
        r = self.ctl(n3, "get", "repair-me", "--local")
        self.assertExit(r, EXIT_NOT_FOUND)
        self.assertEqual(local_holders([n1, n2], "repair-me"),
                         {n1.node_id: [b"precious"], n2.node_id: [b"precious"]})
        # One get through another node (default R) repairs n3 asynchronously.
        self.assert_values(n1, "repair-me", [b"precious"])
        self.wait_local(n3, "repair-me", [b"precious"], REPAIR_DEADLINE)

    def test_with_two_of_three_replicas_down_w2_fails_with_exit_4_and_w1_succeeds(self):
        n1, n2, n3 = self.nodes
        self.assertEqual(n2.stop(signal.SIGTERM), 0, n2.log()[-2000:])
        n3.kill9()
        started = time.monotonic()
        r = self.ctl(n1, "put", "strict", "w2", "--w", "2")
        elapsed = time.monotonic() - started
        self.assertExit(r, EXIT_QUORUM)
        self.assertEqual(r.stdout, b"", r.describe())
        self.assert_counts(r, 1, 2)
        self.assertLess(elapsed, 4.5 * TIME_SCALE,
                        "a quorum failure comes after the 1 s request timeout, not %.1f s"
                        % elapsed)

        self.put(n1, "lone-write", "w1", extra=["--w", "1"])
        self.assert_values(n1, "lone-write", [b"w1"], extra=["--r", "1"])
        # The default R=2 cannot be met by one live replica.
        r = self.ctl(n1, "get", "lone-write")
        self.assertExit(r, EXIT_QUORUM)
        self.assert_counts(r, 1, 2)

    def test_r_and_w_above_n_are_refused(self):
        n1 = self.nodes[0]
        for args in (["put", "toomany", "v", "--w", "4"],
                     ["del", "toomany", "--w", "4"],
                     ["get", "toomany", "--r", "4"]):
            with self.subTest(command=" ".join(args)):
                r = self.ctl(n1, *args)
                self.assertExit(r, EXIT_REJECTED)
                self.assertOneErrorLine(r)
                self.assertEqual(r.stdout, b"", r.describe())
        r = self.ctl(n1, "get", "toomany")
        self.assertExit(r, EXIT_NOT_FOUND)
        # N itself is fine.
        self.put(n1, "exactly-n", "v", extra=["--w", str(N)])
        self.assert_values(self.nodes[1], "exactly-n", [b"v"], extra=["--r", str(N)])


class MembershipTest(_ClusterAsserts, DynamoTestCase):

    def test_membership_survives_restarts(self):
        # The file engine, so the keys outlive kill -9 too and any two
        # replicas can answer a read.
        nodes = self.start_cluster(3, backend="file")
        first_ring = wait_converged(nodes)
        n1, n2, n3 = nodes
        keys = {"kept-%02d" % i: "v%02d" % i for i in range(12)}
        for i, (key, value) in enumerate(keys.items()):
            self.put(nodes[i % 3], key, value)

        # A joined node restarted without --seed comes back into its cluster.
        n3.kill9()
        n3.seeds = []
        self.assertNotIn("--seed", n3.argv())
        n3.start()
        ring = wait_converged(nodes)
        self.assertEqual(ring["owners"], first_ring["owners"])
        # So does the first node (no --seed ever): saved state, not a new cluster.
        n1.kill9()
        n1.start()
        ring = wait_converged(nodes)
        self.assertEqual(ring["owners"], first_ring["owners"])
        self.assertEqual(status_of(n1)["partitions_owned"],
                         owner_counts(ring)[n1.node_id])
        for key, value in keys.items():
            for reader in (n3, n1):
                self.assert_values(reader, key, [value.encode()])


class StaleReplicaTest(_ClusterAsserts, DynamoTestCase):

    def test_read_repair_updates_a_stale_replica(self):
        # The file engine keeps the old version across the restart. Only
        # read repair may bring n3 up to date here: anti-entropy is off,
        # hints wait an hour, and no rebuild runs (n3's first one, of the
        # empty partitions it started with, could still be under way when it
        # is stopped, and resume after the restart); any of them could win
        # the race with the check that n3 came back stale.
        nodes = self.start_cluster(3, backend="file",
                                   extra_args=["--anti-entropy-interval-ms", "0",
                                               "--handoff-interval-ms", "3600000",
                                               "--rebuild-streams", "0"])
        n1, n2, n3 = nodes
        ctx = self.put(n1, "stale", "old")
        self.wait_local(n3, "stale", [b"old"], PLACEMENT_DEADLINE)
        self.assertEqual(n3.stop(signal.SIGTERM), 0, n3.log()[-2000:])
        self.put(n2, "stale", "new", context=ctx, extra=["--w", "2"])
        # The coordinator's message to n3 may still sit in its ZeroMQ queue
        # and arrive when n3 is back; stopping the coordinator drops it, so n3
        # really comes back stale.
        self.assertEqual(n2.stop(signal.SIGTERM), 0, n2.log()[-2000:])
        n3.start()
        n2.start()
        wait_converged(nodes)
        self.assertEqual(local_holders(nodes, "stale"),
                         {n1.node_id: [b"new"], n2.node_id: [b"new"], n3.node_id: [b"old"]})
        self.assert_values(n1, "stale", [b"new"])
        self.wait_local(n3, "stale", [b"new"], REPAIR_DEADLINE)


class QuorumOptionTest(DynamoTestCase):

    def test_dynamod_refuses_quorums_above_replicas(self):
        for option in ("--read-quorum", "--write-quorum"):
            with self.subTest(option=option):
                r = run_dynamod(["--listen", endpoint_of(free_port()), "--backend", "memory",
                                 "--data-dir", self.make_temp_dir(), "--replicas", "3",
                                 option, "4"])
                self.assertExit(r, EXIT_USAGE)
                self.assertOneErrorLine(r, option.lstrip("-"))


class _Reader(threading.Thread):
    """Reads random loaded keys through some nodes until stopped; every read
    must find exactly its value. Records failures instead of raising."""

    def __init__(self, endpoints, values):
        super().__init__(daemon=True)
        self.endpoints = endpoints
        self.values = values
        self.keys = sorted(values)
        self.stopping = threading.Event()
        self.reads = 0
        self.failures = []

    def run(self):
        rng = random.Random(42)
        clients = [WireClient(ep) for ep in self.endpoints]
        try:
            while not self.stopping.is_set():
                client = rng.choice(clients)
                batch = rng.sample(self.keys, 8)
                try:
                    replies = client.get_many(batch)
                except Exception as e:  # noqa: BLE001 - recorded, asserted by the test
                    self.failures.append("%s: %s" % (client.endpoint, e))
                    continue
                for key, reply in zip(batch, replies):
                    self.reads += 1
                    try:
                        got = WireClient.values_of(reply)
                    except AssertionError:
                        got = reply
                    if got != [self.values[key]]:
                        self.failures.append("%s via %s: %r" % (key, client.endpoint,
                                                                repr(got)[:200]))
                self.stopping.wait(0.01)
        finally:
            for client in clients:
                client.close()


class JoinTest(_ClusterAsserts, DynamoTestCase):

    KEYS = 2000

    def assert_readable_everywhere(self, nodes, values):
        keys = sorted(values)
        for node in nodes:
            with WireClient(node.endpoint) as client:
                replies = client.get_many(keys)
            bad = [(k, r) for k, r in zip(keys, replies)
                   if (WireClient.values_of(r) if r and r[1] == WireClient.GET_REPLY else r)
                   != [values[k]]]
            self.assertEqual(bad[:5], [], "%d of %d keys unreadable through %s"
                             % (len(bad), len(keys), node.name))

    def wait_placement(self, nodes, values, want_of, what, deadline=MOVE_DEADLINE):
        """Polls every engine until want_of(key) -> {node_id: [value]} holds for
        every key."""
        keys = sorted(values)
        end = time.monotonic() + deadline
        while True:
            holders = wire_local_holders(nodes, keys)
            wrong = {k: (holders[k], want_of(k)) for k in keys if holders[k] != want_of(k)}
            if not wrong:
                return
            if time.monotonic() > end:
                key = next(iter(wrong))
                extra = sum(1 for k, (got, want) in wrong.items() if set(got) - set(want))
                logs = "".join("\n---- %s:\n%s" % (n.name, n.log()[-1200:]) for n in nodes)
                self.fail("%s: %d of %d keys misplaced after %.0f s (%d of them on an engine "
                          "outside their preference list); e.g. %s (partition %d): engines "
                          "hold %r, expected %r\nlog tails:%s"
                          % (what, len(wrong), len(keys), deadline, extra, key,
                             partition_of(key, Q), wrong[key][0], wrong[key][1], logs))
            time.sleep(0.5)

    def test_a_fourth_node_takes_a_quarter_of_the_partitions_and_keys_stay_readable(self):
        nodes = self.start_cluster(3)
        before = wait_converged(nodes)
        values = {"load-%04d" % i: ("value-%04d-" % i).encode() + b"x" * (i % 50)
                  for i in range(self.KEYS)}
        items = sorted(values.items())
        for i, node in enumerate(nodes):
            with WireClient(node.endpoint) as client:
                part = items[i::3]
                for (key, _), reply in zip(part, client.put_many(part)):
                    self.assertEqual(reply[1], WireClient.PUT_REPLY, (key, reply))
        ids = [n.node_id for n in nodes]
        self.wait_placement(nodes, values, lambda k: {i: [values[k]] for i in ids},
                            "loading 3 nodes")

        reader = _Reader([n.endpoint for n in nodes], values)
        reader.start()
        try:
            n4 = self.start_cluster_node(seed=nodes[0])
            everyone = nodes + [n4]
            after = wait_converged(everyone, MOVE_DEADLINE)
            self.assert_well_formed(everyone, after, spread=2)

            counts = owner_counts(after)
            self.assertTrue(63 <= counts[n4.node_id] <= 65, counts)
            moved = [p for p in range(Q) if before["owners"][p][0] != after["owners"][p][0]]
            self.assertEqual(sorted({after["owners"][p][0] for p in moved}), [n4.node_id],
                             "partitions that changed owner must all go to the new node")
            self.assertEqual(len(moved), counts[n4.node_id])

            # The new node's engine receives every key whose preference list
            # now includes it, while reads go on.
            self.wait_newcomer_holds(values, after, n4)
        finally:
            reader.stopping.set()
            reader.join(30)
        self.assertGreater(reader.reads, 0)
        self.assertEqual(reader.failures[:10], [], "%d of %d reads during the join failed"
                         % (len(reader.failures), reader.reads))
        self.assert_readable_everywhere(everyone, values)
        # The old replicas drop what moved away: each key is again on exactly
        # the N engines of its preference list.
        self.wait_placement(everyone, values,
                            lambda k: {i: [values[k]] for i in replicas_of(k, after)},
                            "after the join, each key on exactly its preference list",
                            deadline=DROP_DEADLINE)

    def wait_newcomer_holds(self, values, ring, newcomer):
        mine = sorted(k for k in values if newcomer.node_id in replicas_of(k, ring))
        self.assertTrue(mine)
        end = time.monotonic() + MOVE_DEADLINE
        while True:
            holders = wire_local_holders([newcomer], mine)
            missing = [k for k in mine if holders[k].get(newcomer.node_id) != [values[k]]]
            if not missing:
                return
            if time.monotonic() > end:
                self.fail("after %.0f s %s's engine lacks %d of the %d keys whose preference "
                          "list includes it (e.g. %s, partition %d, holds %r); log tail:\n%s"
                          % (MOVE_DEADLINE, newcomer.name, len(missing), len(mine), missing[0],
                             partition_of(missing[0], Q), holders[missing[0]],
                             newcomer.log()[-2000:]))
            time.sleep(0.5)


class DotsAfterRestartTest(DynamoTestCase):
    """A node names its events <node_id>~<suffix> and takes a new suffix when
    it may have lost events it made (docs/design.md, "A node's dots")."""

    def actor(self, ctx):
        events = decode_context(ctx)
        self.assertEqual(len(events), 1, events)
        return events[0][0]

    def test_a_restarted_memory_node_does_not_reuse_its_events(self):
        nodes = self.start_cluster(3)  # N=3: node 1 coordinates what it is sent
        first = self.actor(self.put(nodes[0], "cart", "before"))
        self.assert_values(nodes[1], "cart", [b"before"])
        nodes[0].kill9()
        nodes[0].restart()  # its memory engine comes back empty
        wait_converged(nodes)
        # A write that saw nothing: concurrent with "before". Had node 1
        # counted from 1 again, the replicas holding "before" would take it
        # for that event and drop it.
        second = self.actor(self.put(nodes[0], "cart", "after"))
        self.assertNotEqual(first, second)
        self.assertEqual(first.split("~")[0], nodes[0].node_id)
        self.assertEqual(second.split("~")[0], nodes[0].node_id)
        for reader in nodes[1:]:
            self.assert_values(reader, "cart", [b"after", b"before"], extra=("--r", "3"))

    def test_a_clean_restart_of_a_file_node_keeps_its_name_a_crash_does_not(self):
        node = self.start_node(backend="file")
        first = self.actor(self.put(node, "k1", "v"))
        node.stop()  # SIGTERM: the engine syncs, the run ends clean
        node.restart()
        self.assertEqual(self.actor(self.put(node, "k2", "v")), first)
        node.kill9()
        node.restart()
        after_crash = self.actor(self.put(node, "k3", "v"))
        self.assertNotEqual(after_crash, first)
        self.assertEqual(after_crash.split("~")[0], node.node_id)


if __name__ == "__main__":
    unittest.main()
