"""Metrics and admission control (DESIGN.md 3.9; docs/operations.md,
"Metrics" and "Admission control"): real dynamod nodes started with
--metrics-listen, scraped over HTTP after a known workload; the background
share under client load."""

import json
import os
import re
import socket
import threading
import unittest

from harness import (DynamoTestCase, EXIT_USAGE, KEY_LIMIT, Metrics, WireClient, free_port,
                     http_get, metrics_args, replicas_of, run_dynamod, scrape,
                     start_with_metrics, status_of, wait_until)

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                    "operations.md")


def documented_metrics():
    """{name: type} of the table in docs/operations.md, "Metrics"."""
    with open(DOCS, encoding="utf-8") as f:
        text = f.read()
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(dynamo_[a-z0-9_]+)` \| (counter|gauge|histogram) \|",
                           section, re.M))


class MetricsClusterTest(DynamoTestCase):
    """Three nodes, N=3 R=2 W=2, each serving /metrics."""

    def setUp(self):
        super().setUp()
        self.nodes, self.ports = [], []
        for _ in range(3):
            node, port = start_with_metrics(lambda args: self.start_cluster_node(
                seed=self.nodes[0] if self.nodes else None, extra_args=args))
            self.nodes.append(node)
            self.ports.append(port)
        self.wait_converged(self.nodes)

    def replica_puts(self, i):
        return scrape(self.ports[i]).value("dynamo_requests_total", op="put", role="replica",
                                           result="ok")

    def test_a_known_workload_is_counted_exactly(self):
        keys = ["metrics-%d" % i for i in range(30)]
        before = [scrape(p) for p in self.ports]
        for m in before:
            self.assertEqual(m.value("dynamo_requests_total", role="coordinator"), 0)
        with WireClient(self.nodes[0].endpoint) as c:
            replies = c.put_many([(k, "v-" + k) for k in keys])
            self.assertTrue(all(r[1] == WireClient.PUT_REPLY for r in replies), replies)
            deleted = c.call_many([(3, k.encode(), b"", 0) for k in keys[:4]])
            self.assertTrue(all(r[1] == WireClient.PUT_REPLY for r in deleted), deleted)
            # A key over the limit: refused by the node, counted as rejected.
            big = c.put_many([("k" * (KEY_LIMIT + 1), "v")])
            self.assertEqual(big[0][1], WireClient.ERROR, big)
        # Every write reaches the other two replicas (the third acknowledgement
        # may come after the client's reply).
        wait_until(lambda: None if all(self.replica_puts(i) == 34 for i in (1, 2)) else
                   [self.replica_puts(i) for i in (1, 2)], 10, "replica writes counted")
        with WireClient(self.nodes[1].endpoint) as c:
            got = c.get_many(keys[4:24])
            self.assertTrue(all(WireClient.values_of(r) is not None for r in got), got)
        with WireClient(self.nodes[2].endpoint) as c:
            missing = c.get_many(keys[:4] + ["never-written"])
            self.assertTrue(all(WireClient.values_of(r) is None for r in missing), missing)

        m = [scrape(p) for p in self.ports]
        coordinated = [(0, "put", "ok", 30), (0, "put", "rejected", 1), (0, "del", "ok", 4),
                       (1, "get", "ok", 20), (2, "get", "not_found", 5)]
        for i, op, result, count in coordinated:
            self.assertEqual(m[i].value("dynamo_requests_total", op=op, role="coordinator",
                                        result=result), count, (i, op, result))
        for i in range(3):
            total = m[i].value("dynamo_requests_total", role="coordinator")
            expected = sum(c for j, _, _, c in coordinated if j == i)
            self.assertEqual(total, expected, "node %d counted other requests" % i)
        # Each get asks the two other replicas (all three hold every key).
        wait_until(lambda: None if [scrape(p).value("dynamo_requests_total", op="get",
                                                    role="replica") for p in self.ports]
                   == [25, 5, 20] else "not yet", 10, "replica reads counted")
        for i in range(3):
            mi = scrape(self.ports[i])
            self.check_histograms(mi)
            self.assertEqual(mi.value("dynamo_members", state="up"), 3)
            self.assertEqual(mi.value("dynamo_members", state="down"), 0)
            self.assertEqual(mi.value("dynamo_engine_keys"), 30)  # tombstones too
            self.assertGreater(mi.value("dynamo_engine_bytes"), 30 * len("v-metrics-00"))
            self.assertEqual(mi.value("dynamo_hints_pending"), 0)
            self.assertEqual(mi.value("dynamo_node_info", node_id=self.nodes[i].node_id), 1)
        node0 = scrape(self.ports[0])
        # 34 writes, each sent to two replicas.
        self.assertGreaterEqual(node0.value("dynamo_peer_requests_total"), 68)
        self.assertGreaterEqual(node0.value("dynamo_peer_batch_size_sum"), 68)
        self.assertEqual(node0.value("dynamo_peer_batch_size_sum"),
                         node0.value("dynamo_peer_requests_total"))
        self.assertEqual(node0.value("dynamo_peer_batch_size_count"),
                         node0.value("dynamo_peer_messages_total"))
        self.assertEqual(node0.value("dynamo_error_replies_total") -
                         before[0].value("dynamo_error_replies_total"), 1)

    def test_a_forwarded_write_is_counted_once_by_the_node_its_client_chose(self):
        node, port = start_with_metrics(lambda args: self.start_cluster_node(
            seed=self.nodes[0], extra_args=args))
        self.nodes.append(node)
        self.ports.append(port)
        ring = self.wait_converged(self.nodes)
        # Keys the first node holds no replica of: it forwards their writes.
        keys = [k for k in ("forward-%d" % i for i in range(400))
                if self.nodes[0].node_id not in replicas_of(k, ring)][:40]
        self.assertEqual(len(keys), 40)
        before = [scrape(p) for p in self.ports]
        with WireClient(self.nodes[0].endpoint) as c:
            replies = c.put_many([(k, "v") for k in keys])
        self.assertTrue(all(r[1] == WireClient.PUT_REPLY for r in replies), replies)
        after = [scrape(p) for p in self.ports]

        def delta(i, name, **labels):
            return after[i].value(name, **labels) - before[i].value(name, **labels)

        self.assertEqual(delta(0, "dynamo_requests_total", op="put", role="coordinator",
                               result="ok"), 40)
        # One first send per write; a replica slower than its deadline (a
        # sanitizer build) makes a fallback send, counted in both.
        fallbacks = delta(0, "dynamo_forward_fallbacks_total")
        self.assertEqual(delta(0, "dynamo_puts_forwarded_total") - fallbacks, 40)
        self.assertLessEqual(fallbacks, 40)
        self.assertEqual(sum(delta(i, "dynamo_requests_total", role="coordinator")
                             for i in range(4)), 40)
        self.assertEqual(delta(0, "dynamo_request_duration_seconds_count", op="put",
                               role="coordinator"), 40)

    def check_histograms(self, m):
        """Buckets cumulative, +Inf equal to _count, _count equal to the
        requests counted for the same op and role."""
        for op, role in (("get", "coordinator"), ("get", "replica"), ("put", "coordinator"),
                         ("put", "replica"), ("del", "coordinator")):
            buckets = [(float(ls["le"]), v) for n, ls, v in m.samples
                       if n == "dynamo_request_duration_seconds_bucket" and ls["op"] == op
                       and ls["role"] == role]
            self.assertEqual(len(buckets), 17, (op, role))
            self.assertEqual([b for b, _ in buckets], sorted(b for b, _ in buckets))
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), (op, role, counts))
            count = m.value("dynamo_request_duration_seconds_count", op=op, role=role)
            self.assertEqual(counts[-1], count)
            self.assertEqual(count, m.value("dynamo_requests_total", op=op, role=role))
            total = m.value("dynamo_request_duration_seconds_sum", op=op, role=role)
            self.assertGreaterEqual(total, 0, (op, role))
            if count == 0:
                self.assertEqual(total, 0, (op, role))
            elif role == "coordinator":
                # A coordinator waits for replies from other nodes. Durations
                # are recorded in whole microseconds, and a replica's read of
                # a memory engine can take less than one (a sum of 0 over 5
                # reads was seen).
                self.assertGreater(total, 0, (op, role, count))

    def test_every_documented_metric_is_served_and_every_served_one_documented(self):
        documented = documented_metrics()
        self.assertGreater(len(documented), 30)
        status, content_type, body = http_get(self.ports[0])
        self.assertEqual(status, 200)
        self.assertIn("text/plain", content_type)
        self.assertIn("version=0.0.4", content_type)
        m = Metrics(body)
        self.assertEqual(m.families, documented)
        for name in m.families:
            self.assertTrue(m.helps.get(name), "no HELP for " + name)
        for name, labels, value in m.samples:
            self.assertIsNotNone(m.family_of(name), "sample %s of no declared family" % name)
            self.assertGreaterEqual(value, 0, (name, labels))

    def test_the_grafana_dashboard_asks_only_for_served_metrics(self):
        path = os.path.join(os.path.dirname(DOCS), "..", "packaging", "grafana", "dynamo.json")
        with open(path, encoding="utf-8") as f:
            dashboard = json.load(f)
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        self.assertGreaterEqual(len(exprs), 10)
        served = scrape(self.ports[0])
        for expr in exprs:
            for name in re.findall(r"\bdynamo_[a-z0-9_]+", expr):
                self.assertIsNotNone(served.family_of(name), "%s in %r" % (name, expr))
        titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
        for topic in ("requests", "latency", "failed", "hints", "repaired", "transfers",
                      "members", "background"):
            self.assertIn(topic, titles)

    def test_other_paths_are_not_found_and_the_node_keeps_serving(self):
        self.assertEqual(http_get(self.ports[0], "/")[0], 404)
        self.assertEqual(http_get(self.ports[0], "/metrics/x")[0], 404)
        # Garbage instead of HTTP: the connection is dropped, nothing else.
        with socket.create_connection(("127.0.0.1", self.ports[0]), timeout=5) as s:
            s.sendall(b"\x00\xff garbage\r\n\r\n" * 100)
            try:
                s.recv(1024)
            except OSError:
                pass
        self.assertEqual(http_get(self.ports[0])[0], 200)
        self.assertEqual(status_of(self.nodes[0])["members"][0]["state"], "up")


class MetricsOptionsTest(DynamoTestCase):

    def test_bad_metrics_listen_exits_2_with_one_line(self):
        for value in ("nonsense", "127.0.0.1:99999", ":9100", "127.0.0.1:"):
            r = run_dynamod(["--metrics-listen", value, "--data-dir", self.make_temp_dir()])
            self.assertEqual(r.returncode, EXIT_USAGE, r.describe())
            self.assertEqual(len([l for l in r.stderr.splitlines() if l.strip()]), 1,
                             r.describe())
            self.assertIn("HOST:PORT", r.stderr, r.describe())

    def test_a_metrics_port_in_use_is_named_and_the_node_does_not_start(self):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        self.addCleanup(taken.close)
        port = taken.getsockname()[1]
        r = run_dynamod(["--listen", "tcp://127.0.0.1:%d" % free_port(), "--backend", "memory",
                         "--data-dir", self.make_temp_dir()] + metrics_args(port))
        self.assertNotEqual(r.returncode, 0, r.describe())
        self.assertIn("127.0.0.1:%d (--metrics-listen)" % port, r.stderr, r.describe())

    def test_a_second_node_cannot_take_a_metrics_port_a_node_serves(self):
        _, port = start_with_metrics(lambda args: self.start_node(extra_args=args))
        r = run_dynamod(["--listen", "tcp://127.0.0.1:%d" % free_port(), "--backend", "memory",
                         "--data-dir", self.make_temp_dir()] + metrics_args(port))
        self.assertNotEqual(r.returncode, 0, r.describe())
        self.assertIn("127.0.0.1:%d (--metrics-listen)" % port, r.stderr, r.describe())
        self.assertEqual(http_get(port)[0], 200)

    def test_idle_connections_are_closed_and_do_not_stop_scrapes(self):
        _, port = start_with_metrics(lambda args: self.start_node(extra_args=args))
        idle = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.addCleanup(s.close)
            idle.append(s)
        status, _, body = http_get(port, timeout=60)
        self.assertEqual(status, 200)
        self.assertIn("dynamo_requests_total", body)
        # The server closes each silent connection; the node keeps serving.
        for s in idle:
            s.settimeout(60)
            self.assertEqual(s.recv(1), b"")
        self.assertEqual(http_get(port)[0], 200)

    def test_a_node_without_the_option_serves_no_http(self):
        node = self.start_node()
        self.assertNotIn("metrics", " ".join(node.argv()))
        self.assertIn("serving on", node.log())
        self.assertNotIn("serving metrics", node.log())


class AdmissionControlTest(DynamoTestCase):
    """Under client load slower than --background-target-p99-ms the
    background share goes down; without load it comes back (directions
    only, never a timing)."""

    def test_the_share_goes_down_under_load_and_comes_back(self):
        nodes = self.start_cluster(3, extra_args=["--background-target-p99-ms", "1"])
        node = nodes[0]
        background = status_of(node)["background"]
        self.assertEqual(background["target_p99_ms"], 1)
        self.assertEqual(background["share"], 1.0)
        self.assertEqual(background["cuts"], 0)
        stop = threading.Event()
        lowest = [1.0]

        def watch():
            while not stop.is_set():
                lowest[0] = min(lowest[0], status_of(node)["background"]["share"])
                stop.wait(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            # Pipelined writes, 256 in flight: requests queue in the node,
            # and their p99 is far above 1 ms.
            with WireClient(node.endpoint) as c:
                for round_ in range(40):
                    c.put_many([("load-%d-%d" % (round_, i), "x" * 100) for i in range(500)],
                               window=256)
                    if status_of(node)["background"]["cuts"] >= 2:
                        break
        finally:
            stop.set()
            watcher.join()
        self.assertGreaterEqual(status_of(node)["background"]["cuts"], 1)
        self.assertLess(lowest[0], 1.0)
        # No more clients: nothing to yield to; the share grows back to 1.
        wait_until(lambda: None if status_of(node)["background"]["share"] == 1.0 else
                   status_of(node)["background"], 30, "the background share back at 1")


if __name__ == "__main__":
    unittest.main()
