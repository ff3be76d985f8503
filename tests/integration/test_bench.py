"""dynamo-bench, the load generator: a short fixed-size run against a live
memory-engine node and against a real redis-server (the reference target),
checking the JSON report's fields and that its counts add up. Never timings:
benchmarks are programs, not timed assertions (DESIGN.md 4)."""

import os
import shutil
import socket
import subprocess
import time
import unittest

from harness import (BIN_DIR, TIME_SCALE, DynamoTestCase, error_lines, forwarded_total,
                     free_port, run_program)

BENCH = os.path.join(BIN_DIR, "dynamo-bench")
BENCH_DEADLINE = 120.0 * TIME_SCALE
EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE = 0, 1, 2

OPS, KEYS, VALUE_SIZE = 2000, 200, 100
WORKLOAD = ["--ops", str(OPS), "--clients", "4", "--depth", "2", "--json", "--preload",
            "--keys", str(KEYS)]


def run_bench(*args, deadline=BENCH_DEADLINE):
    return run_program([BENCH] + list(args), deadline)


class _BenchChecks:
    """Checks shared by the dynamo and the redis cases."""

    def assertReport(self, result, kind, all_found=True):
        self.assertEqual(result.returncode, EXIT_OK, result.describe())
        lines = result.out.splitlines()
        self.assertEqual(len(lines), 1, "--json prints one line: " + result.describe())
        doc = result.json()
        self.assertEqual(doc["kind"], kind, result.describe())
        for field, value in (("clients", 4), ("depth", 2), ("threads", 1), ("keys", KEYS),
                             ("value_size", VALUE_SIZE), ("dist", "uniform"),
                             ("put_ratio", 0.5)):
            self.assertEqual(doc[field], value, field)
        for field in ("target", "seconds", "ops", "errors", "throughput", "get", "put",
                      "preload"):
            self.assertIn(field, doc)
        self.assertEqual(doc["preload"], {"enabled": True, "seconds": doc["preload"]["seconds"],
                                          "errors": 0}, result.describe())
        get, put = doc["get"], doc["put"]
        for op in (get, put):
            for field in ("count", "errors", "timeouts", "not_found", "conflicts", "throughput",
                          "latency_us"):
                self.assertIn(field, op)
            self.assertEqual(op["errors"], 0, result.describe())
            self.assertEqual(op["timeouts"], 0, result.describe())
            lat = op["latency_us"]
            for field in ("p50", "p99", "p999", "max", "mean"):
                self.assertIn(field, lat)
            if op["count"]:
                # Order only, never magnitudes.
                self.assertTrue(1 <= lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"], lat)
        self.assertEqual(get["count"] + put["count"], OPS, result.describe())
        self.assertEqual(doc["ops"], OPS)
        self.assertEqual(doc["errors"], 0, result.describe())
        # A 50/50 mix of 2000 operations: both kinds happen.
        self.assertGreater(get["count"], 0)
        self.assertGreater(put["count"], 0)
        if all_found:  # every key was preloaded, so every get finds a value
            self.assertEqual(get["not_found"], 0, result.describe())
        self.assertGreater(doc["throughput"], 0)
        self.assertNotIn("first_error", doc, result.describe())
        # The generator's own CPU per operation: it did work for every one.
        self.assertGreater(doc["generator_cpu_us_per_op"], 0, result.describe())
        return doc

    def assertServersCpu(self, doc, result):
        """--server-pids: the listed processes' CPU per operation."""
        self.assertIn("servers_cpu_us_per_op", doc, result.describe())
        self.assertGreaterEqual(doc["servers_cpu_us_per_op"], 0, result.describe())
        self.assertNotIn("servers_cpu_note", doc, result.describe())


class DynamoBenchTest(_BenchChecks, DynamoTestCase):

    def setUp(self):
        super().setUp()
        if not os.path.isfile(BENCH):
            self.fail("%s is not built (DYNAMO_BIN_DIR=%s)" % (BENCH, BIN_DIR))

    def test_counts_add_up_and_keys_are_readable(self):
        node = self.start_node(backend="memory")
        result = run_bench("--target", node.endpoint, *WORKLOAD)
        doc = self.assertReport(result, "dynamo")
        self.assertEqual(doc["target"], node.endpoint)
        self.assertEqual(doc["mode"], "server")  # the default
        self.assertNotIn("ring", doc)
        # The keys the bench wrote are ordinary keys: 16 bytes, "bench-" and
        # ten digits, holding value_size-byte values.
        for index in (0, 1, KEYS // 2, KEYS - 1):
            got = self.get_json(node, "bench-%010d" % index)
            self.assertIsNotNone(got, "key %d was preloaded but is not found" % index)
            values, _ = got
            self.assertGreaterEqual(len(values), 1)
            for value in values:
                self.assertEqual(len(value), VALUE_SIZE)
        # Beyond the key space nothing was written.
        self.assertIsNone(self.get_json(node, "bench-%010d" % KEYS))

    def test_two_targets_share_the_clients(self):
        first = self.start_node(backend="memory")
        second = self.start_node(backend="memory")
        result = run_bench("--target", "%s,%s" % (first.endpoint, second.endpoint), *WORKLOAD)
        # Two separate one-node clusters: a key preloaded through one is not
        # found through the other, so gets may miss.
        doc = self.assertReport(result, "dynamo", all_found=False)
        self.assertEqual(doc["target"], "%s,%s" % (first.endpoint, second.endpoint))
        for node in (first, second):
            held = [i for i in range(KEYS) if i % 10 == 0
                    and self.get_json(node, "bench-%010d" % i) is not None]
            self.assertTrue(held, "no client wrote to %s" % node.endpoint)

    def test_resp_front_ends_of_a_cluster_as_targets(self):
        """The RESP front ends of a 3-node cluster, clients spread over them;
        what was written through one node is read through the others."""
        nodes, ports = self.start_resp_cluster()
        target = ",".join("redis://127.0.0.1:%d" % p for p in ports)
        pids = ",".join(str(n.proc.pid) for n in nodes)
        result = run_bench("--target", target, "--server-pids", pids, *WORKLOAD)
        doc = self.assertReport(result, "redis")
        self.assertEqual(doc["target"], target)
        self.assertServersCpu(doc, result)
        # SETs racing through two nodes may leave siblings (DESIGN.md 3.6): a
        # GET of such a key answers CONFLICT, which is counted, not an error.
        self.assertEqual(doc["put"]["conflicts"], 0)
        self.assertLessEqual(doc["get"]["conflicts"], doc["get"]["count"])
        for index in range(0, KEYS, 20):
            got = self.get_json(nodes[index % 3], "bench-%010d" % index)
            self.assertIsNotNone(got, "key %d was preloaded but is not found" % index)
        self.assertIsNone(self.get_json(nodes[0], "bench-%010d" % KEYS))

    def test_server_pids_of_a_process_that_ends_are_noted(self):
        node = self.start_node(backend="memory")
        gone = subprocess.Popen(["true"])
        gone.wait()
        result = run_bench("--target", node.endpoint, "--server-pids",
                           "%d,%d" % (node.proc.pid, gone.pid), *WORKLOAD)
        doc = self.assertReport(result, "dynamo")
        self.assertIn("servers_cpu_note", doc, result.describe())

    def test_usage_errors_exit_2_with_one_line(self):
        for args in (["--clients", "0"], ["--no-such-option"], ["--dist", "pareto"],
                     ["--put-ratio", "1.5"], ["--target", "http://127.0.0.1:1"],
                     ["--target", "redis://127.0.0.1:1,tcp://127.0.0.1:2"],
                     ["--target", "tcp://127.0.0.1:1,redis://127.0.0.1:2"],
                     ["--target", "redis://127.0.0.1:x"], ["--server-pids", "1,,2"],
                     ["--server-pids", "abc"],
                     ["--ops", "10", "--duration", "1"], ["--threads", "3", "--clients", "2"]):
            result = run_bench(*args)
            self.assertEqual(result.returncode, EXIT_USAGE, result.describe())
            self.assertEqual(len(error_lines(result.stderr)), 1, result.describe())
            self.assertEqual(result.out, "", result.describe())

    def test_bad_mode_is_a_usage_error(self):
        for args in (["--mode", "peer"], ["--mode", ""],
                     ["--mode", "client", "--target", "redis://127.0.0.1:1"]):
            result = run_bench(*args)
            self.assertEqual(result.returncode, EXIT_USAGE, result.describe())
            lines = error_lines(result.stderr)
            self.assertEqual(len(lines), 1, result.describe())
            self.assertIn("--mode", lines[0], result.describe())
            self.assertEqual(result.out, "", result.describe())

    def test_unreachable_target_exits_1(self):
        port = free_port()  # nobody listens there
        result = run_bench("--target", "tcp://127.0.0.1:%d" % port, "--timeout-ms", "300",
                           "--ops", "10", "--json")
        self.assertEqual(result.returncode, EXIT_UNREACHABLE, result.describe())
        lines = error_lines(result.stderr)
        self.assertEqual(len(lines), 1, result.describe())
        self.assertIn("127.0.0.1:%d" % port, lines[0])


class CoordinationModeTest(_BenchChecks, DynamoTestCase):
    """--mode client against 4 nodes (N=3, so each node replicates only
    about three quarters of the keys and a node coordinating a put of a key
    it holds no replica of forwards it): the bench sends each key to its
    preference list, so no put is forwarded; through one target in server
    mode some are."""

    PUTS = ["--put-ratio", "1", "--ops", "1000", "--clients", "4", "--depth", "2",
            "--keys", str(KEYS), "--json"]

    def setUp(self):
        super().setUp()
        if not os.path.isfile(BENCH):
            self.fail("%s is not built (DYNAMO_BIN_DIR=%s)" % (BENCH, BIN_DIR))

    def assertClean(self, result, mode):
        self.assertEqual(result.returncode, EXIT_OK, result.describe())
        doc = result.json()
        self.assertEqual(doc["mode"], mode, result.describe())
        self.assertEqual(doc["errors"], 0, result.describe())
        self.assertEqual(doc["put"]["timeouts"], 0, result.describe())
        self.assertEqual(doc["put"]["count"], 1000, result.describe())
        self.assertNotIn("first_error", doc, result.describe())
        return doc

    def test_client_mode_is_never_forwarded_server_mode_is(self):
        nodes = self.start_cluster(4)
        endpoints = sorted(node.endpoint for node in nodes)
        before = forwarded_total(nodes)
        # Client mode: the ring from one node; every node then takes the
        # keys it is first in the preference list of.
        doc = self.assertClean(run_bench("--target", nodes[0].endpoint, "--mode", "client",
                                         *self.PUTS), "client")
        self.assertEqual(sorted(doc["ring"]["sent_to"]), endpoints, doc)
        self.assertEqual(sum(doc["ring"]["sent_to"].values()), 1000, doc)
        for endpoint, sent in doc["ring"]["sent_to"].items():
            self.assertGreater(sent, 0, "no request went to %s: %s" % (endpoint, doc))
        self.assertGreater(doc["ring"]["partitions"], 0, doc)
        after_client = forwarded_total(nodes)
        self.assertEqual(after_client, before,
                         "client-mode puts were forwarded: %d -> %d" % (before, after_client))
        # The same run through one node in server mode: it coordinates every
        # put, and passes on those of keys it holds no replica of.
        doc = self.assertClean(run_bench("--target", nodes[0].endpoint, "--mode", "server",
                                         *self.PUTS), "server")
        self.assertNotIn("ring", doc)
        after_server = forwarded_total(nodes)
        self.assertGreater(after_server, after_client,
                           "server-mode puts through one of 4 nodes were never forwarded")

    def test_client_mode_mixed_workload_counts_add_up(self):
        nodes = self.start_cluster(4)
        before = forwarded_total(nodes)
        result = run_bench("--target", nodes[1].endpoint, "--mode", "client", *WORKLOAD)
        doc = self.assertReport(result, "dynamo")
        self.assertEqual(doc["mode"], "client")
        self.assertEqual(sum(doc["ring"]["sent_to"].values()), OPS, doc)
        self.assertEqual(forwarded_total(nodes), before)
        # What was written is readable through any node.
        for index in (0, KEYS - 1):
            got = self.get_json(nodes[3], "bench-%010d" % index)
            self.assertIsNotNone(got, "key %d was preloaded but is not found" % index)


class RedisBenchTest(_BenchChecks, unittest.TestCase):
    """The same workload against a private redis-server on a free port."""

    maxDiff = 4000

    def setUp(self):
        super().setUp()
        if not os.path.isfile(BENCH):
            self.fail("%s is not built (DYNAMO_BIN_DIR=%s)" % (BENCH, BIN_DIR))
        self.redis_server = shutil.which("redis-server")
        if self.redis_server is None:
            self.fail("redis-server is not installed (Debian package redis-server; "
                      "packaging/bootstrap.sh installs it)")

    def start_redis(self, attempts=5):
        return self.start_redis_pid(attempts)[0]

    def start_redis_pid(self, attempts=5):
        """Starts a private redis-server; returns (port, pid)."""
        for _ in range(attempts):
            port = free_port()
            proc = subprocess.Popen(
                [self.redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.addCleanup(self.stop_redis, proc)
            deadline = time.monotonic() + 10 * TIME_SCALE
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    if self.redis_command(port, "PING") == b"+PONG":
                        return port, proc.pid
                except OSError:
                    pass
                time.sleep(0.05)
            self.stop_redis(proc)  # exited (port taken?) or never answered: next port
        self.fail("redis-server did not start on a free port in %d attempts" % attempts)

    @staticmethod
    def stop_redis(proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()

    @staticmethod
    def redis_command(port, command):
        """Sends one inline command; returns the first reply line (bytes)."""
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(command.encode() + b"\r\n")
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\r\n")[0]

    def test_counts_add_up_against_redis(self):
        port = self.start_redis()
        target = "redis://127.0.0.1:%d" % port
        doc = self.assertReport(run_bench("--target", target, *WORKLOAD), "redis")
        self.assertEqual(doc["target"], target)
        self.assertNotIn("servers_cpu_us_per_op", doc)  # none listed
        # Preload wrote every key once, and only those.
        self.assertEqual(self.redis_command(port, "DBSIZE"), b":%d" % KEYS)
        self.assertEqual(self.redis_command(port, "STRLEN bench-%010d" % (KEYS - 1)),
                         b":%d" % VALUE_SIZE)


    def test_two_redis_targets_share_the_clients(self):
        (first, first_pid), (second, second_pid) = self.start_redis_pid(), self.start_redis_pid()
        target = "redis://127.0.0.1:%d,redis://127.0.0.1:%d" % (first, second)
        result = run_bench("--target", target, "--server-pids", "%d,%d" % (first_pid, second_pid),
                           *WORKLOAD)
        # Two separate servers: a key preloaded through one is missing on the other.
        doc = self.assertReport(result, "redis", all_found=False)
        self.assertEqual(doc["target"], target)
        self.assertServersCpu(doc, result)
        # Every key was preloaded through one server or the other (and the
        # run's puts may have written it to the other one too); nothing else.
        sizes = [int(self.redis_command(p, "DBSIZE")[1:]) for p in (first, second)]
        self.assertTrue(all(0 < n <= KEYS for n in sizes), sizes)
        for index in range(0, KEYS, 10):
            key = "bench-%010d" % index
            self.assertIn(b":1", [self.redis_command(p, "EXISTS " + key) for p in (first, second)],
                          key)

if __name__ == "__main__":
    unittest.main()
