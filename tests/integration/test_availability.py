"""Availability under one fault at a time (paper 4.6, 4.8): five file-engine
nodes, N=3 R=2 W=2, the default failure timeout (3 s) and request timeout
(1 s). Writers keep a shopping cart per key: each put carries the context
its previous put returned and the whole list of items so far, and a get of
the key follows every put. Every call goes to a random node that the fault
does not touch ("live"), and waits at most 2 s.

Faults, one per test, each past the failure timeout so that it is hit both
before and after the failure detector notices: SIGSTOP of one node, kill -9
of one node (restarted), an iptables cut of one node, an iptables cut of
two nodes of five. Checked for each:

- no put and no get through a live node fails:
  a replica that has not answered within its adaptive deadline is replaced
  by a stand-in with a hint, and a forwarded write goes on to the next
  replica (docs/design.md, "Sloppy quorum and hinted handoff");
- after healing, every key read at R=3 holds exactly the writer's last
  acknowledged list: nothing acknowledged is lost, and one write never
  became two siblings (a slow replica's late copy and its stand-in's are
  one version).

In the two-node cut, a key whose preference list has two replicas on the
cut side reaches one replica; its get meets R=2 with a stand-in's hinted
copy of the put just before it (sloppy reads, docs/design.md), so no get
fails there either.

CtlFailoverTest: dynamoctl with several --node goes on to the next node
only when the one before could not be reached, and never sends a request
twice.

The iptables tests run as root or through password-less sudo, in a chain of
their own removed at cleanup; nodes listen on 127.0.0.31-35 and the writers
talk to them from 127.0.0.1, which no rule touches.
"""

import os
import random
import signal
import sys
import threading
import time
import unittest

from harness import (DynamoTestCase, EXIT_NOT_FOUND, EXIT_OK, EXIT_QUORUM, EXIT_USAGE,
                     TIME_SCALE, WireClient, endpoint_of, free_port, reply_error, run_ctl,
                     status_of, wait_converged)

HOSTS = ["127.0.0.31", "127.0.0.32", "127.0.0.33", "127.0.0.34", "127.0.0.35"]
NODE_ARGS = ["--handoff-interval-ms", "200", "--anti-entropy-interval-ms", "50"]
WRITERS = 4
KEYS_PER_WRITER = 8
CALL_WAIT_MS = int(2000 * TIME_SCALE)  # a client's patience per call
CALM_S = 2.0
FAULT_S = 6.0                          # past the 3 s failure timeout
AFTER_HEAL_S = 2.0
HEAL_DEADLINE = 30.0 * TIME_SCALE      # all up again (TCP retransmission backs off)
CONVERGE_DEADLINE = 60.0 * TIME_SCALE  # hints delivered


def report(text):
    print("  [%s] %s" % (__name__, text), file=sys.stderr, flush=True)


def percentile(samples, p):
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100.0 * len(ordered)))]


class CartWriter(threading.Thread):
    """Puts and gets its own keys through random live nodes until stopped.

    calls: (time started, "put" or "get", seconds taken, endpoint, error or
    None). last: {key: the value of its last acknowledged put}.
    uncertain: keys whose last put got no answer (the outcome is unknown).
    """

    def __init__(self, index, live):
        super().__init__(daemon=True, name="cart-writer-%d" % index)
        self.keys = ["cart-%d-%d" % (index, k) for k in range(KEYS_PER_WRITER)]
        self.live = live          # a callable: the endpoints calls may go to
        self.rng = random.Random(index)
        self.items = {k: [] for k in self.keys}
        self.context = {k: b"" for k in self.keys}
        self.last = {}
        self.uncertain = set()
        self.calls = []
        self.current = None       # the endpoint of the call in progress
        self.crash = None
        self._clients = {}
        self._stopping = threading.Event()

    def client(self, endpoint):
        if endpoint not in self._clients:
            self._clients[endpoint] = WireClient(endpoint)
        return self._clients[endpoint]

    def call(self, kind, request):
        endpoint = self.rng.choice(self.live())
        self.current = endpoint
        started = time.monotonic()
        try:
            reply = self.client(endpoint).call_many([request], wait_ms=CALL_WAIT_MS)[0]
            expected = WireClient.PUT_REPLY if kind == "put" else WireClient.GET_REPLY
            error = None if reply[1] == expected else reply_error(reply)
        except AssertionError:
            reply, error = None, "no reply within %d ms" % CALL_WAIT_MS
            # A late reply must not be taken for the next call's.
            self._clients.pop(endpoint).close()
        self.calls.append((started, kind, time.monotonic() - started, endpoint, error))
        self.current = None
        return reply if error is None else None

    def step(self, n):
        key = self.keys[n % len(self.keys)]
        if key in self.uncertain:
            # Learn what the key holds before writing on (never a blind put).
            got = self.call("get", (WireClient.GET, key.encode(), 0, 0))
            if got is None:
                return
            items = set()
            for value in got[4]:
                items.update(v for v in value.decode().split(",") if v)
            self.items[key] = sorted(items)
            self.context[key] = got[5]
            self.uncertain.discard(key)
        item = "i%d" % n
        value = ",".join(self.items[key] + [item]).encode()
        rep = self.call("put", (WireClient.PUT, key.encode(), value, self.context[key], 0))
        if rep is None:
            self.uncertain.add(key)
            return
        self.items[key].append(item)
        self.context[key] = rep[3]
        self.last[key] = value
        self.call("get", (WireClient.GET, key.encode(), 0, 0))

    def run(self):
        try:
            n = 0
            while not self._stopping.is_set():
                self.step(n)
                n += 1
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.crash = e
        finally:
            for c in self._clients.values():
                c.close()

    def stop(self):
        self._stopping.set()
        self.join(CALL_WAIT_MS / 1000.0 * 3 + 10)
        if self.is_alive():
            raise AssertionError("%s did not stop" % self.name)
        if self.crash is not None:
            raise AssertionError("%s crashed: %r" % (self.name, self.crash))


class AvailabilityTest(DynamoTestCase):

    def cluster(self):
        nodes = self.start_cluster(5, backend="file", hosts=HOSTS, extra_args=NODE_ARGS)
        self.live_endpoints = [n.endpoint for n in nodes]
        return nodes

    def run_fault(self, nodes, faulted, begin, end):
        """Writers through the nodes not in faulted: CALM_S calm, begin(),
        FAULT_S, end(), AFTER_HEAL_S more. Returns (writers, fault start,
        fault end)."""
        lock = threading.Lock()
        live = [n.endpoint for n in nodes]

        def live_now():
            with lock:
                return list(live)
        writers = [CartWriter(i, live_now) for i in range(WRITERS)]
        for w in writers:
            self.addCleanup(lambda w=w: w._stopping.set())
            w.start()
        time.sleep(CALM_S)
        with lock:
            live[:] = [n.endpoint for n in nodes if n not in faulted]
        # Calls already on their way to a node about to fail are not calls
        # through a live node: let them finish first.
        gone = {n.endpoint for n in faulted}
        while any(w.current in gone for w in writers):
            time.sleep(0.001)
        fault_started = time.monotonic()
        begin()
        time.sleep(FAULT_S)
        end()
        fault_ended = time.monotonic()
        time.sleep(AFTER_HEAL_S)
        for w in writers:
            w.stop()
        return writers, fault_started, fault_ended

    def check(self, nodes, faulted, writers, fault_started, fault_ended):
        wait_converged(nodes, HEAL_DEADLINE)
        calls = [c for w in writers for c in w.calls]
        by = {}
        for started, kind, took, endpoint, error in calls:
            phase = "fault" if fault_started <= started < fault_ended else "calm"
            by.setdefault((kind, phase), []).append((took, error))
        for (kind, phase), rows in sorted(by.items()):
            failed = sum(1 for _, e in rows if e)
            report("%-3s %-5s %5d calls, %d failed, p50 %.1f ms, p99 %.1f ms" % (
                kind, phase, len(rows), failed, 1000 * percentile([t for t, _ in rows], 50),
                1000 * percentile([t for t, _ in rows], 99)))
        stats = [status_of(n) for n in nodes]
        report("forward_fallbacks %d, hints sent early %d, stand-ins read %d (counted %d)" % (
            sum(s.get("forward_fallbacks", 0) for s in stats),
            sum(s.get("hints", {}).get("sent_early", 0) for s in stats),
            sum(s.get("sloppy_reads", {}).get("asked", 0) for s in stats),
            sum(s.get("sloppy_reads", {}).get("counted", 0) for s in stats)))
        problems = []
        put_failures = [c for c in calls if c[1] == "put" and c[4]]
        get_failures = [c for c in calls if c[1] == "get" and c[4]]
        if put_failures:
            problems.append("%d of %d puts through live nodes failed: %s" % (
                len(put_failures), sum(1 for c in calls if c[1] == "put"),
                "; ".join("%s at +%.1f s: %s" % (c[3], c[0] - fault_started, c[4])
                          for c in put_failures[:5])))
        if get_failures:
            problems.append("%d of %d gets through live nodes failed: %s" % (
                len(get_failures), sum(1 for c in calls if c[1] == "get"),
                "; ".join("%s at +%.1f s: %s" % (c[3], c[0] - fault_started, c[4])
                          for c in get_failures[:5])))
        self.assertGreater(sum(len(w.last) for w in writers), 0, "nothing was acknowledged")

        # Every acknowledged list, whole, as one version: read at R=3 once
        # the hints are home (a read right after healing may still meet a
        # replica without them; R=3 then shows siblings or an older list).
        expected = {k: v for w in writers for k, v in w.last.items() if k not in w.uncertain}
        keys = sorted(expected)

        def mismatches():
            with WireClient(nodes[0].endpoint) as client:
                replies = client.get_many(keys, r=3)
            wrong = {}
            for key, rep in zip(keys, replies):
                if rep is None or rep[1] != WireClient.GET_REPLY or not rep[3]:
                    wrong[key] = reply_error(rep) if rep and rep[1] != WireClient.GET_REPLY \
                        else "not found"
                elif sorted(rep[4]) != [expected[key]]:
                    wrong[key] = sorted(rep[4])
            return wrong
        deadline = time.monotonic() + CONVERGE_DEADLINE
        wrong = mismatches()
        while wrong and time.monotonic() < deadline:
            pending = sum(s.get("hints_pending", 0) for s in (status_of(n) for n in nodes))
            if pending == 0:
                break
            time.sleep(0.5)
            wrong = mismatches()
        def shown(value):
            items = value.split(b",")
            return "[%d items, last %s]" % (len(items), items[-1].decode())
        for key, got in sorted(wrong.items())[:5]:
            got = [shown(v) for v in got] if isinstance(got, list) else got
            problems.append("%s: acknowledged %s, read at R=3 %s" % (key, shown(expected[key]),
                                                                     got))
        if wrong:
            problems.append("%d of %d keys did not read back as their last acknowledged "
                            "write, alone" % (len(wrong), len(keys)))
        if problems:
            self.fail("\n".join(problems))

    def test_a_paused_replica_costs_no_put_and_no_get(self):
        nodes = self.cluster()
        paused = nodes[2]

        def cont():
            os.kill(paused.proc.pid, signal.SIGCONT)
        self.addCleanup(lambda: paused.proc and paused.proc.poll() is None and cont())
        result = self.run_fault(nodes, [paused],
                                lambda: os.kill(paused.proc.pid, signal.SIGSTOP), cont)
        self.check(nodes, [paused], *result)

    def test_a_killed_replica_costs_no_put_and_no_get(self):
        nodes = self.cluster()
        killed = nodes[3]
        result = self.run_fault(nodes, [killed], killed.kill9, killed.restart)
        self.check(nodes, [killed], *result)

    def test_a_node_cut_off_costs_no_put_and_no_get(self):
        part = self.iptables_partition()
        nodes = self.cluster()
        cut = nodes[1]
        others = [n.host for n in nodes if n is not cut]
        result = self.run_fault(nodes, [cut], lambda: part.isolate(cut.host, others), part.heal)
        self.check(nodes, [cut], *result)

    def test_two_nodes_of_five_cut_off_cost_the_majority_side_no_put_and_no_get(self):
        part = self.iptables_partition()
        nodes = self.cluster()
        minority = nodes[3:]
        majority = [n.host for n in nodes[:3]]

        def cut():
            for n in minority:
                part.isolate(n.host, majority)
        result = self.run_fault(nodes, minority, cut, part.heal)
        self.check(nodes, minority, *result)


class CtlFailoverTest(DynamoTestCase):
    """dynamoctl with several --node: the next node only for a request that
    was never sent."""

    def test_a_request_goes_to_the_next_node_when_one_cannot_be_reached(self):
        nodes = self.start_cluster(3)
        dead = endpoint_of(free_port())  # nothing listens there
        paused = nodes[0]
        os.kill(paused.proc.pid, signal.SIGSTOP)
        self.addCleanup(lambda: paused.proc and paused.proc.poll() is None
                        and os.kill(paused.proc.pid, signal.SIGCONT))
        through = ["--node", dead, "--node", paused.endpoint, "--node", nodes[1].endpoint]
        r = run_ctl(None, *through, "put", "cart", "milk")
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        r = run_ctl(None, *through, "get", "cart")
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        self.assertEqual(r.stdout.splitlines()[0], b"milk", r.describe())
        r = run_ctl(None, *through, "--json", "status")
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        self.assertEqual(r.json()["node_id"], nodes[1].node_id, r.describe())

    def test_a_request_that_was_sent_is_never_sent_again(self):
        # A "node" that takes requests and answers none: dynamoctl gives up
        # (exit 4) rather than send the write to the next node too.
        import zmq
        ctx = zmq.Context()
        silent = ctx.socket(zmq.ROUTER)
        silent.setsockopt(zmq.LINGER, 0)
        port = silent.bind_to_random_port("tcp://127.0.0.1")
        self.addCleanup(ctx.term)
        self.addCleanup(silent.close, 0)
        node = self.start_node()
        r = run_ctl(None, "--node", "tcp://127.0.0.1:%d" % port, "--node", node.endpoint,
                    "put", "once", "v", timeout_ms=1500)
        self.assertExit(r, EXIT_QUORUM)
        self.assertOneErrorLine(r)
        self.assertTrue(silent.poll(1000), "the silent node got nothing")
        frames = silent.recv_multipart()
        self.assertEqual(len(frames), 2, frames)
        self.assertFalse(silent.poll(200), "the request came twice")
        r = run_ctl(node.endpoint, "get", "once", "--local")
        self.assertExit(r, EXIT_NOT_FOUND)

    def test_commands_for_one_node_take_one_node(self):
        a, b = endpoint_of(free_port()), endpoint_of(free_port())
        for args, needle in ((["join", a], "one --node"), (["leave"], "one --node"),
                             (["get", "k", "--local"], "one --node")):
            with self.subTest(command=args[0]):
                r = run_ctl(None, "--node", a, "--node", b, *args)
                self.assertExit(r, EXIT_USAGE)
                self.assertOneErrorLine(r, needle)
        r = run_ctl(None, "--node", a, "--node", a, "get", "k")
        self.assertExit(r, EXIT_USAGE)
        self.assertOneErrorLine(r, "twice")


if __name__ == "__main__":
    unittest.main()
