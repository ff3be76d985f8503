"""The Redis-protocol front end (DESIGN.md 3.6, 3.7): real Redis clients
(python3-redis, redis-cli, redis-benchmark from Debian's packages) against
dynamod nodes started with --redis-listen, and raw sockets for what no
client library sends: truncated, oversized and garbage requests."""

import os
import socket
import subprocess
import time
import unittest

import redis

from harness import (DynamoTestCase, EXIT_USAGE, KEY_LIMIT, TIME_SCALE, VALUE_LIMIT, free_port,
                     redis_args, run_dynamod, start_with_redis, status_of, system_tool)

REDIS_CLI = system_tool("redis-cli")
REDIS_BENCHMARK = system_tool("redis-benchmark")


def client(port, **kwargs):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=10, **kwargs)


def raw(port, data, source=None, read_until_close=True, timeout=5):
    """Sends bytes on a fresh connection; returns what came back until the
    node closed it (or the timeout)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if source:
            s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        if data:
            s.sendall(data)
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            got += chunk
            if not read_until_close:
                break
        return got
    finally:
        s.close()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RedisClusterTest(DynamoTestCase):
    """Three nodes, N=3 R=2 W=2, each serving RESP."""

    def setUp(self):
        super().setUp()
        # A short request timeout makes the quorum failure below quick; it
        # grows with the time scale (sanitizer builds run several times
        # slower, and a replica slower than it fails a read at R=2).
        self.nodes, self.ports = self.start_resp_cluster(
            request_timeout_ms=int(500 * TIME_SCALE))
        self.clients = [client(p) for p in self.ports]
        for c in self.clients:
            self.addCleanup(c.close)

    def test_set_get_through_any_node(self):
        a, b, c = self.clients
        self.assertTrue(a.set("k1", b"v1"))
        self.assertEqual(b.get("k1"), b"v1")
        self.assertEqual(c.get("k1"), b"v1")
        self.assertIsNone(c.get("never-written"))
        binary = bytes(range(256)) * 4
        self.assertTrue(b.set(b"bin\x00key", binary))
        self.assertEqual(a.get(b"bin\x00key"), binary)
        # The native client sees the same data.
        self.assert_values(self.nodes[2], "k1", [b"v1"])

    def test_sets_through_one_node_never_make_siblings(self):
        a = self.clients[0]
        for i in range(20):
            self.assertTrue(a.set("counter", str(i)))
        self.assertEqual(a.get("counter"), b"19")
        ctx_and_values = a.execute_command("DYN.GET", "counter")
        self.assertEqual(ctx_and_values[1:], [b"19"])
        self.assert_values(self.nodes[1], "counter", [b"19"])

    def test_concurrent_writes_show_as_conflict_and_resolve_with_a_context(self):
        a, b, _ = self.clients
        a.execute_command("DYN.PUT", "cart", "apple")
        b.execute_command("DYN.PUT", "cart", "pear")  # no context: concurrent
        with self.assertRaises(redis.ResponseError) as e:
            a.get("cart")
        self.assertTrue(str(e.exception).startswith("CONFLICT 2 versions"), str(e.exception))
        reply = b.execute_command("DYN.GET", "cart")
        token, values = reply[0], sorted(reply[1:])
        self.assertEqual(values, [b"apple", b"pear"])
        new_token = a.execute_command("DYN.PUT", "cart", "apple,pear", token)
        self.assertTrue(new_token)
        self.assertEqual(b.get("cart"), b"apple,pear")
        # A delete with the latest context leaves nothing live.
        token = a.execute_command("DYN.GET", "cart")[0]
        a.execute_command("DYN.DEL", "cart", token)
        self.assertIsNone(b.get("cart"))
        self.assertEqual(b.execute_command("DYN.GET", "unwritten"), [b""])
        with self.assertRaises(redis.ResponseError) as e:
            a.execute_command("DYN.PUT", "cart", "x", "not a token!")
        self.assertIn("bad context", str(e.exception))

    def test_multi_key_commands(self):
        a, b, c = self.clients
        self.assertTrue(a.mset({"m1": "1", "m2": "2", "m3": "3"}))
        self.assertEqual(b.mget(["m1", "m2", "nope", "m3"]), [b"1", b"2", None, b"3"])
        self.assertEqual(c.exists("m1", "m2", "nope"), 2)
        self.assertEqual(c.delete("m1", "nope", "m2"), 2)
        self.assertEqual(a.mget(["m1", "m2", "m3"]), [None, None, b"3"])
        self.assertEqual(a.delete("m1"), 0)  # already gone: nothing counted
        self.assert_values(self.nodes[0], "m3", [b"3"])

    def test_pipelined_requests_are_answered_in_order(self):
        # More commands than a connection may run in one loop turn (1024):
        # the rest run in the turns after, still in order.
        a, b, _ = self.clients
        count = 1500
        pipe = a.pipeline(transaction=False)
        for i in range(count):
            pipe.set("p%d" % i, "v%d" % i)
        self.assertEqual(pipe.execute(), [True] * count)
        pipe = b.pipeline(transaction=False)
        for i in range(count):
            pipe.get("p%d" % i)
            pipe.ping()
        got = pipe.execute()
        self.assertEqual(got[0::2], [b"v%d" % i for i in range(count)])
        self.assertTrue(all(got[1::2]))

    def test_limits_refuse_store_nothing_and_keep_the_connection(self):
        a = self.clients[0]
        with self.assertRaises(redis.ResponseError) as e:
            a.set("k" * (KEY_LIMIT + 1), "v")
        self.assertIn("exceeds the limit", str(e.exception))
        with self.assertRaises(redis.ResponseError) as e:
            a.set("big", b"x" * (VALUE_LIMIT + 1))
        self.assertIn("exceeds the limit", str(e.exception))
        self.assertIsNone(a.get("big"))
        self.assertTrue(a.ping())  # the same connection goes on
        self.assertTrue(a.set("at-limit", b"y" * VALUE_LIMIT))
        self.assertEqual(len(a.get("at-limit")), VALUE_LIMIT)

    def test_errors_name_the_problem(self):
        a = self.clients[0]
        cases = [
            (("SET", "k", "v", "EX", "10"), "syntax error"),
            (("GET",), "wrong number of arguments"),
            (("NOSUCH", "x"), "unknown command 'NOSUCH'"),
            (("SELECT", "1"), "DB index is out of range"),
            (("HELLO", "3"), "NOPROTO"),
            (("AUTH", "pw"), "without any password configured"),
        ]
        for argv, text in cases:
            with self.assertRaises(redis.ResponseError, msg=argv) as e:
                a.execute_command(*argv)
            self.assertIn(text, str(e.exception), argv)
        self.assertIsNone(a.get("k"))  # the refused SET stored nothing
        self.assertEqual(a.echo("hi"), b"hi")
        self.assertTrue(a.execute_command("SELECT", "0"))
        self.assertIn("dynamo_version", a.info())
        self.assertTrue(a.client_setname("tester"))
        self.assertEqual(a.client_getname(), "tester")

    def test_quorum_failure_is_unavailable_and_a_crash_loses_no_set(self):
        a, b, c = self.clients
        for i in range(50):
            self.assertTrue(a.set("safe%d" % i, "v%d" % i))
        self.nodes[0].kill9()
        for i in range(50):
            self.assertEqual(b.get("safe%d" % i), b"v%d" % i, i)
        self.nodes[1].kill9()
        with self.assertRaises(redis.ResponseError) as e:
            c.set("lonely", "v")
        self.assertTrue(str(e.exception).startswith("UNAVAILABLE"), str(e.exception))
        with self.assertRaises(redis.ResponseError) as e:
            c.get("safe1")
        self.assertTrue(str(e.exception).startswith("UNAVAILABLE"), str(e.exception))

    def test_redis_cli(self):
        port = str(self.ports[1])
        run = lambda *a: subprocess.run([REDIS_CLI, "-p", port] + list(a), capture_output=True,
                                        timeout=30)
        self.assertEqual(run("SET", "cli", "hello").stdout.strip(), b"OK")
        self.assertEqual(run("GET", "cli").stdout.strip(), b"hello")
        out = run("DYN.GET", "cli").stdout.split(b"\n")
        self.assertEqual(out[1].strip(), b"hello", out)
        self.assertEqual(run("PING").stdout.strip(), b"PONG")
        # Several commands through one connection, as a script.
        r = subprocess.run([REDIS_CLI, "-p", port], input=b"SET a 1\nGET a\nDEL a\nGET a\n",
                           capture_output=True, timeout=30)
        self.assertEqual(r.stdout.split(b"\n")[:4], [b"OK", b"1", b"1", b""], r.stdout)

    def test_redis_benchmark_runs_without_errors(self):
        r = subprocess.run([REDIS_BENCHMARK, "-p", str(self.ports[0]), "-t", "set,get,ping,mset",
                            "-n", "3000", "-c", "20", "--csv"], capture_output=True, timeout=300)
        out = r.stdout.decode() + r.stderr.decode()
        self.assertEqual(r.returncode, 0, out)
        self.assertNotIn("Error from server", out)
        for test in ("SET", "GET", "PING_INLINE", "MSET (10 keys)"):
            self.assertIn('"%s"' % test, out)
        # The keys it wrote are there, through another node.
        self.assertEqual(self.clients[2].get("key:__rand_int__"), b"VXK")


class RedisFileClusterTest(DynamoTestCase):
    """Three nodes on the file engine with its default sync=interval, whose
    single-key engine calls run on each node's loop (docs/design.md,
    "Engines on the loop"): pipelined SETs acknowledged through every node
    survive kill -9 of a node and its restart."""

    def setUp(self):
        super().setUp()
        self.nodes, self.ports = self.start_resp_cluster(backend="file")

    def client_of(self, i):
        c = client(self.ports[i])
        self.addCleanup(c.close)
        return c

    def get_all(self, c, keys):
        pipe = c.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        return dict(zip(keys, pipe.execute()))

    def test_pipelined_sets_survive_kill_9_and_restart(self):
        self.assertEqual(status_of(self.nodes[0])["engine_calls"]["on"], "loop_single_key")
        expected = {}
        for i in range(3):
            pipe = self.client_of(i).pipeline(transaction=False)
            for n in range(150):
                key = "file-%d-%d" % (i, n)
                expected[key] = os.urandom(8).hex().encode() * (1 + n % 20)
                pipe.set(key, expected[key])
            self.assertTrue(all(pipe.execute()))
        # Overwrites through one node supersede (no sibling from a SET).
        c0 = self.client_of(0)
        for n in range(0, 150, 10):
            key = "file-1-%d" % n
            expected[key] = b"again-%d" % n
            self.assertTrue(c0.set(key, expected[key]))
        keys = sorted(expected)
        self.nodes[2].kill9()
        self.assertEqual(self.get_all(self.client_of(1), keys), expected)
        self.nodes[2].restart()
        self.nodes[0].kill9()
        # node3 came back from its own files; with node1 gone, R=2 needs it.
        self.assertEqual(self.get_all(self.client_of(2), keys), expected)


class RedisSingleNodeTest(DynamoTestCase):
    """One node: malformed input, connection limits, AUTH and protected mode."""

    def node_with(self, *args):
        return start_with_redis(lambda a: self.start_node(extra_args=a), *args)

    def test_malformed_requests_get_an_error_and_the_node_keeps_serving(self):
        node, port = self.node_with()
        cases = [
            b"*1\r\n$999999999999\r\nxx",  # a declared length beyond any limit
            b"*99999999999\r\n",  # a declared count beyond any limit
            b"*2\r\n$3\r\nGET\r\n:5\r\n",  # not a bulk string
            b"*1\r\n$3\r\nGETXX\r\n",  # no CRLF after the bulk
            b"x" * (70 * 1024),  # an inline line with no end
        ]
        for data in cases:
            got = raw(port, data)
            self.assertTrue(got.startswith(b"-ERR Protocol error"), (data[:30], got))
        # Truncated requests, binary garbage, and a request cut by a closed socket.
        raw(port, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nval", read_until_close=False, timeout=0.3)
        raw(port, bytes(range(256)) * 16, timeout=1)
        c = client(port)
        self.addCleanup(c.close)
        self.assertTrue(c.ping())
        self.assertIsNone(c.get("k"))  # the truncated SET stored nothing
        self.assertTrue(c.set("after", "ok"))
        # An inline request works as in Redis.
        self.assertEqual(raw(port, b"PING\r\n", read_until_close=False), b"+PONG\r\n")

    def test_command_describes_each_served_command_as_redis_does(self):
        node, port = self.node_with()
        c = client(port)
        self.addCleanup(c.close)
        table = c.command()  # COMMAND, parsed by redis-py
        self.assertEqual(c.command_count(), len(table))
        for name in ("get", "set", "del", "exists", "mget", "mset", "dyn.get", "dyn.put",
                     "dyn.del", "ping", "echo", "quit", "select", "info", "command", "client",
                     "hello", "auth"):
            self.assertIn(name, table)
        self.assertEqual(table["mset"], {"name": "mset", "arity": -3, "flags": ["write", "denyoom"],
                                         "first_key_pos": 1, "last_key_pos": -1,
                                         "step_count": 2})
        self.assertEqual((table["get"]["arity"], table["get"]["first_key_pos"]), (2, 1))
        self.assertIn("readonly", table["dyn.get"]["flags"])
        self.assertEqual(table["ping"]["first_key_pos"], 0)
        # COMMAND INFO: a served command's entry (any case), nil for another.
        got = raw(port, b"COMMAND INFO GeT nosuch\r\n", read_until_close=False)
        self.assertTrue(got.startswith(b"*2\r\n*6\r\n$3\r\nget\r\n:2\r\n"), got)
        self.assertTrue(got.endswith(b"$-1\r\n"), got)

    def test_info_answers_the_sections_asked_for(self):
        node, port = self.node_with()
        c = client(port)
        self.addCleanup(c.close)
        everything = c.info()
        for key in ("redis_version", "connected_clients", "node_id", "requests"):
            self.assertIn(key, everything)
        self.assertEqual(c.info("all"), everything)
        server = c.info("server")
        self.assertIn("redis_version", server)
        self.assertNotIn("connected_clients", server)
        both = c.info("CLUSTER", "stats")  # any case, several at once
        self.assertIn("node_id", both)
        self.assertIn("requests", both)
        self.assertNotIn("redis_version", both)
        self.assertEqual(c.execute_command("INFO", "keyspace"), {})  # none here

    def test_ten_thousand_connections_opened_and_dropped(self):
        node, port = self.node_with()
        c = client(port)
        self.addCleanup(c.close)
        c.set("warm", "up")
        before = rss_kib(node.proc.pid)
        for _ in range(20):
            socks = []
            for _ in range(500):
                s = socket.socket()
                s.connect(("127.0.0.1", port))
                s.sendall(b"*2\r\n$3\r\nGET\r\n$4\r\nwa")  # half a command
                socks.append(s)
            for s in socks:
                s.close()
        self.assertEqual(c.get("warm"), b"up")
        grown = rss_kib(node.proc.pid) - before
        self.assertLess(grown, 64 * 1024, "RSS grew by %d KiB" % grown)
        deadline = time.time() + 10 * TIME_SCALE
        while c.info()["connected_clients"] != 1 and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(c.info()["connected_clients"], 1)

    def test_a_client_that_does_not_read_its_replies_holds_bounded_memory(self):
        node, port = self.node_with()
        c = client(port)
        self.addCleanup(c.close)
        self.assertTrue(c.set("big", b"b" * VALUE_LIMIT))
        before = rss_kib(node.proc.pid)
        # 300 GETs of 1 MiB: 300 MiB of replies if the node kept running them.
        s = socket.socket()
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.connect(("127.0.0.1", port))
        s.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 300)
        time.sleep(2)
        grown = rss_kib(node.proc.pid) - before
        self.assertLess(grown, 160 * 1024, "RSS grew by %d KiB" % grown)
        # Others are served meanwhile: the node runs a share of the
        # pipeline per loop turn, not all of it before anyone else.
        self.assertTrue(c.ping())
        # Once the client reads, every reply arrives, in order.
        want = b"$%d\r\n%s\r\n" % (VALUE_LIMIT, b"b" * VALUE_LIMIT)
        got = 0
        buf = b""
        s.settimeout(30)
        while got < 300:
            chunk = s.recv(1 << 20)
            self.assertTrue(chunk, "closed after %d replies" % got)
            buf += chunk
            while len(buf) >= len(want):
                self.assertEqual(buf[:len(want)], want)
                buf = buf[len(want):]
                got += 1
        self.assertEqual(buf, b"")

    def test_max_clients(self):
        node, port = self.node_with("--redis-max-clients", "3")
        held = [client(port) for _ in range(3)]
        for h in held:
            self.assertTrue(h.ping())
        got = raw(port, b"")
        self.assertEqual(got, b"-ERR max number of clients reached\r\n")
        held[0].connection_pool.disconnect()
        deadline = time.time() + 10 * TIME_SCALE
        got = b""
        while got != b"+PONG\r\n" and time.time() < deadline:
            time.sleep(0.1)
            got = raw(port, b"PING\r\n", read_until_close=False)
        self.assertEqual(got, b"+PONG\r\n")
        for h in held[1:]:
            h.close()

    def test_auth_with_a_password_file(self):
        path = os.path.join(self.make_temp_dir(), "pw")
        with open(path, "w") as f:
            f.write("s3cret\n")
        node, port = self.node_with("--redis-password-file", path)
        anon = client(port)
        self.addCleanup(anon.close)
        with self.assertRaises(redis.AuthenticationError):
            anon.get("k")
        with self.assertRaises((redis.AuthenticationError, redis.ResponseError)) as e:
            client(port, password="wrong").ping()
        self.assertIn("WRONGPASS", str(e.exception))
        good = client(port, password="s3cret")
        self.addCleanup(good.close)
        self.assertTrue(good.set("k", "v"))
        self.assertEqual(good.get("k"), b"v")
        # A client from another address is served once it authenticates.
        got = raw(port, b"AUTH s3cret\r\nGET k\r\n", source="127.0.0.2", read_until_close=False)
        time.sleep(0.2)
        self.assertTrue(got.startswith(b"+OK\r\n"), got)
        self.assertNotIn(b"s3cret", node.log().encode())

    def test_protected_mode_serves_only_loopback_clients_without_a_password(self):
        node, port = self.node_with()
        got = raw(port, b"PING\r\n", source="127.0.0.2")
        self.assertTrue(got.startswith(b"-DENIED"), got)
        self.assertIn(b"protected mode", got)
        self.assertEqual(raw(port, b"PING\r\n", read_until_close=False), b"+PONG\r\n")

    def test_bad_redis_options_exit_2_with_one_line(self):
        for args, text in ((["--redis-listen", "nonsense"], "HOST:PORT"),
                           (["--redis-listen", "127.0.0.1:99999"], "HOST:PORT"),
                           (["--redis-listen", "localhost:6379"], "IPv4 address"),
                           (["--redis-listen", "::1:6379"], "IPv4 address"),
                           (["--redis-max-clients", "0"], "redis-max-clients"),
                           (["--redis-password-file", "/nonexistent/pw"], "cannot read")):
            for check in ([], ["--check-config"]):
                data_dir = self.make_temp_dir()
                r = run_dynamod(check + args + ["--data-dir", data_dir])
                self.assertEqual(r.returncode, EXIT_USAGE, r.describe())
                self.assertIn(text, r.stderr, r.describe())
                self.assertEqual(len([l for l in r.stderr.splitlines() if l.strip()]), 1,
                                 r.describe())
                # Refused before the node wrote anything.
                self.assertEqual(os.listdir(data_dir), [], r.describe())

    def test_a_port_in_use_is_named(self):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        self.addCleanup(taken.close)
        port = taken.getsockname()[1]
        r = run_dynamod(["--listen", "tcp://127.0.0.1:%d" % free_port(), "--backend", "memory",
                         "--data-dir", self.make_temp_dir()] + redis_args(port))
        self.assertNotEqual(r.returncode, 0, r.describe())
        self.assertIn("127.0.0.1:%d" % port, r.stderr, r.describe())


if __name__ == "__main__":
    unittest.main()
