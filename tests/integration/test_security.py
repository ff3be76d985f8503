"""CURVE (DESIGN.md 3.7): keys made by `dynamoctl keygen`, nodes that admit
only the keys of their authorized-keys file, roles, SIGHUP, refusals that
say why, and traffic that carries no value in clear. Real dynamod processes,
real ZeroMQ CURVE handshakes (dynamoctl, and python3-zmq for long-lived
connections), a TCP proxy that records the bytes on the wire."""

import os
import re
import signal
import socket
import stat
import threading
import time
import unittest

from harness import (BIN_DIR, CURVE_ARGS, DynamoTestCase, EXIT_NOT_AUTHORIZED, EXIT_OK,
                     EXIT_OTHER, EXIT_USAGE, Node, WireClient, free_port, local_holders, replicas_of,
                     ring_of, run_ctl, run_dynamod, run_program, start_with_redis, status_of,
                     wait_converged, wait_until,
                     TEST_GOSSIP_INTERVAL_MS, TIME_SCALE)

ERROR_REPLY = 127
NOT_AUTHORIZED_CODE = 9  # Status::Code::kNotAuthorized on the wire (docs/protocol.md)
GOSSIP = 20


class Pair:
    """A key pair made by `dynamoctl keygen --out PREFIX`."""

    def __init__(self, prefix):
        self.key_file = prefix + ".key"
        self.pub_file = prefix + ".pub"
        fields = {}
        with open(self.key_file) as f:
            for line in f:
                if "=" in line and not line.startswith("#"):
                    name, value = line.split("=", 1)
                    fields[name.strip()] = value.strip()
        self.public = fields["public-key"]
        self.secret = fields["secret-key"]

    def ctl_args(self, server_public):
        return ["--curve-secret-key-file", self.key_file, "--server-public-key", server_public]

    def wire(self, server_public):
        return (self.public, self.secret, server_public)


class Proxy:
    """A TCP proxy on a free loopback port to target_port that keeps every
    byte it forwards, both ways."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.captured = bytearray()
        self.lock = threading.Lock()
        self.closed = False
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self):
        return "tcp://127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, src, dst):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            with self.lock:
                self.captured += data
            try:
                dst.sendall(data)
            except OSError:
                return

    def bytes(self):
        with self.lock:
            return bytes(self.captured)

    def close(self):
        self.closed = True
        self.listener.close()
        for s in self.sockets:
            s.close()


class CurveTestCase(DynamoTestCase):
    """Nodes with CURVE on: each has a key pair; one authorized-keys file per
    node lists every node as a peer (with its endpoint), one admin and one
    client key. dynamoctl runs made by the harness (readiness, status,
    convergence) use the admin key."""

    def keygen(self, name):
        prefix = os.path.join(self.work_dir, name)
        r = run_ctl(None, "keygen", "--out", prefix, curve=())
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        return Pair(prefix)

    def setUp(self):
        super().setUp()
        self.admin = self.keygen("admin")
        self.client = self.keygen("client")
        self.nodes, self.pairs = [], {}

    def authorized_lines(self, nodes):
        lines = ["# peers, then the operator and an application"]
        for node in nodes:
            lines.append("%s peer %s" % (self.pairs[node.name].public, node.endpoint))
        lines.append("%s admin" % self.admin.public)
        lines.append("%s client  # the application" % self.client.public)
        return lines

    def write_authorized(self, node, lines):
        path = os.path.join(self.work_dir, node.name + ".authorized")
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(path + ".tmp", path)
        return path

    def new_node(self, seed=None, extra_args=()):
        """A node (not started) with its own key pair."""
        name = "curve%d" % (len(self.nodes) + 1)
        pair = self.keygen(name)
        path = os.path.join(self.work_dir, name + ".authorized")
        node = Node(self.work_dir, name, backend="memory", port=free_port(), node_id=name,
                    seeds=[seed.endpoint] if seed is not None else [],
                    extra_args=["--gossip-interval-ms", str(TEST_GOSSIP_INTERVAL_MS),
                                "--curve-secret-key-file", pair.key_file,
                                "--authorized-keys", path] + list(extra_args))
        self.pairs[name] = pair
        self.nodes.append(node)
        CURVE_ARGS[node.endpoint] = self.admin.ctl_args(pair.public)
        self.addCleanup(CURVE_ARGS.pop, node.endpoint, None)
        self.addCleanup(self.check_sanitizer_reports, node)
        self.addCleanup(node.cleanup)
        return node

    def start_curve_cluster(self, count):
        nodes = []
        for _ in range(count):
            nodes.append(self.new_node(seed=nodes[0] if nodes else None))
        for node in nodes:
            self.write_authorized(node, self.authorized_lines(nodes))
        for node in nodes:
            node.start()
        wait_converged(nodes)
        return nodes

    def as_client(self, node, *args, pair=None, server=None, **kwargs):
        """dynamoctl with the client key (or pair), against node."""
        pair = pair or self.client
        server = server or self.pairs[node.name].public
        return run_ctl(node.endpoint, *args, curve=pair.ctl_args(server), **kwargs)

    def assertRefused(self, result, *must_contain):
        self.assertEqual(result.returncode, EXIT_NOT_AUTHORIZED, result.describe())
        self.assertOneErrorLine(result, *must_contain)

    def assertNoSecretIn(self, text, where):
        for name, pair in list(self.pairs.items()) + [("admin", self.admin),
                                                       ("client", self.client)]:
            self.assertNotIn(pair.secret, text, "%s's secret key appears in %s" % (name, where))


class KeygenAndOptionsTest(DynamoTestCase):
    """dynamoctl keygen, and dynamod's checks of its key files."""

    def test_keygen_writes_a_private_pair_and_never_overwrites(self):
        prefix = os.path.join(self.work_dir, "n1")
        r = run_ctl(None, "keygen", "--out", prefix)
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        pair = Pair(prefix)
        self.assertEqual(stat.S_IMODE(os.stat(pair.key_file).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(pair.pub_file).st_mode), 0o644)
        with open(pair.pub_file) as f:
            self.assertEqual(f.read(), pair.public + "\n")
        self.assertEqual(len(pair.public), 40)
        self.assertEqual(len(pair.secret), 40)
        self.assertIn(pair.public, r.out)
        self.assertNotIn(pair.secret, r.out + r.stderr)
        before = open(pair.key_file).read()

        again = run_ctl(None, "keygen", "--out", prefix)
        self.assertEqual(again.returncode, EXIT_OTHER, again.describe())
        self.assertOneErrorLine(again, "exists")
        self.assertEqual(open(pair.key_file).read(), before)

        printed = run_ctl(None, "keygen", json_output=True)
        self.assertEqual(printed.returncode, EXIT_OK, printed.describe())
        doc = printed.json()
        self.assertEqual(len(doc["public_key"]), 40)
        self.assertNotEqual(doc["public_key"], pair.public)
        self.assertEqual(self.ctl(None, "keygen", "--out").returncode, EXIT_USAGE)
        self.assertEqual(self.ctl(None, "status", "--out", prefix).returncode, EXIT_USAGE)

    def test_dynamod_refuses_bad_key_files_with_one_line(self):
        prefix = os.path.join(self.work_dir, "n1")
        self.assertEqual(run_ctl(None, "keygen", "--out", prefix).returncode, EXIT_OK)
        pair = Pair(prefix)
        authorized = os.path.join(self.work_dir, "authorized")
        with open(authorized, "w") as f:
            f.write("%s peer tcp://127.0.0.1:7101\n" % pair.public)
        base = ["--listen", "tcp://127.0.0.1:%d" % free_port(), "--backend", "memory",
                "--data-dir", os.path.join(self.work_dir, "data")]

        alone = run_dynamod(base + ["--curve-secret-key-file", pair.key_file])
        self.assertEqual(alone.returncode, EXIT_USAGE, alone.describe())
        self.assertOneErrorLine(alone, "go together")

        os.chmod(pair.key_file, 0o644)
        loose = run_dynamod(base + ["--curve-secret-key-file", pair.key_file,
                                    "--authorized-keys", authorized])
        self.assertEqual(loose.returncode, EXIT_USAGE, loose.describe())
        self.assertOneErrorLine(loose, "chmod 600")
        os.chmod(pair.key_file, 0o600)

        cases = [
            ("%s superuser\n" % pair.public, "unknown role"),
            ("not-a-key peer\n", ":1:"),
            ("%s client tcp://127.0.0.1:7101\n" % pair.public, "only a peer"),
            ("%s peer\n%s admin\n" % (pair.public, pair.public), "listed already, on line 1"),
        ]
        for text, expected in cases:
            with open(authorized, "w") as f:
                f.write(text)
            r = run_dynamod(base + ["--curve-secret-key-file", pair.key_file,
                                    "--authorized-keys", authorized])
            self.assertEqual(r.returncode, EXIT_USAGE, r.describe())
            self.assertOneErrorLine(r, expected, authorized)
            self.assertNotIn(pair.secret, r.stderr)

        with open(pair.key_file, "a") as f:
            f.write("public-key = %s\n" % ("0" * 40))
        mismatch = run_dynamod(base + ["--curve-secret-key-file", pair.key_file,
                                       "--authorized-keys", authorized])
        self.assertEqual(mismatch.returncode, EXIT_USAGE, mismatch.describe())
        self.assertOneErrorLine(mismatch, "not the public key of secret-key")
        self.assertNotIn(pair.secret, mismatch.stderr)

    def test_a_node_without_curve_warns_once_and_refuses_curve_clients_clearly(self):
        node = self.start_node()
        self.assertEqual(node.log().count("CURVE is off"), 1, node.log())
        prefix = os.path.join(self.work_dir, "c")
        self.assertEqual(run_ctl(None, "keygen", "--out", prefix).returncode, EXIT_OK)
        pair = Pair(prefix)
        r = run_ctl(node.endpoint, "status", curve=pair.ctl_args(pair.public),
                    timeout_ms=int(20000 * TIME_SCALE))
        self.assertEqual(r.returncode, EXIT_NOT_AUTHORIZED, r.describe())
        self.assertOneErrorLine(r, "not use CURVE")
        self.ctl_ok(node, "status")


class CurveRefusalTest(CurveTestCase):
    """One node with CURVE: who gets in, who does not, and what each is told."""

    def setUp(self):
        super().setUp()
        self.node = self.start_curve_cluster(1)[0]
        self.server = self.pairs[self.node.name].public

    def test_listed_keys_get_in_and_others_are_refused_with_one_clear_line(self):
        node = self.node
        # A listed client key reads and writes.
        self.assertEqual(self.as_client(node, "put", "k", "v").returncode, EXIT_OK)
        got = self.as_client(node, "get", "k")
        self.assertEqual(got.returncode, EXIT_OK, got.describe())
        self.assertTrue(got.out.startswith("v\n"), got.describe())
        # Long timeouts: each refusal must come from the handshake, not a
        # timeout (which would exit 4).
        wait = int(20000 * TIME_SCALE)
        no_key = run_ctl(node.endpoint, "status", curve=(), timeout_ms=wait)
        self.assertRefused(no_key, "requires CURVE")
        stranger = self.keygen("stranger")
        unknown = self.as_client(node, "status", pair=stranger, timeout_ms=wait)
        self.assertRefused(unknown, "refused this client's CURVE key")
        wrong_server = self.as_client(node, "status", server=self.admin.public, timeout_ms=wait)
        self.assertRefused(wrong_server, "public key is not the one")
        self.assertIn("its key %s is not in the authorized keys" % stranger.public, node.log())

        # A client key may not change the membership; an admin key may.
        for args in (["remove", "node9"], ["leave"], ["join", "tcp://127.0.0.1:9"],
                     ["migrate", "--backend", "memory"]):
            r = self.as_client(node, *args)
            self.assertRefused(r, "needs an admin or peer key")
        admin_remove = self.ctl(node, "remove", "node9")
        self.assertNotEqual(admin_remove.returncode, EXIT_NOT_AUTHORIZED, admin_remove.describe())
        self.assertNotIn("needs an admin", admin_remove.stderr)

        # Between-node messages need a peer key, also on a connection that is in.
        with WireClient(node.endpoint, curve=self.client.wire(self.server)) as wire:
            reply, = wire.call_many([(GOSSIP, b"\x90")])
            self.assertEqual(reply[1], ERROR_REPLY, reply)
            self.assertEqual(reply[3], NOT_AUTHORIZED_CODE, reply)
            self.assertIn("peer key", reply[4])
            put, = wire.put_many([("wired", "value")])
            self.assertEqual(put[1], WireClient.PUT_REPLY, put)

        # The node kept serving, and counted what it refused.
        status = status_of(node)
        self.assertTrue(status["security"]["curve"])
        self.assertEqual(status["security"]["public_key"], self.server)
        self.assertGreaterEqual(status["security"]["requests_refused"], 4)
        self.assertNoSecretIn(node.log(), "the node's log")
        self.assertNoSecretIn(self.ctl_ok(node, "status", json_output=True).out, "status")
        self.assertNoSecretIn(self.ctl_ok(node, "ring", json_output=True).out, "ring")

    def test_sighup_adds_and_revokes_keys(self):
        node = self.node
        newcomer = self.keygen("newcomer")
        wait = int(20000 * TIME_SCALE)
        self.assertRefused(self.as_client(node, "status", pair=newcomer, timeout_ms=wait),
                           "refused")
        lines = self.authorized_lines([node])
        path = self.write_authorized(node, lines + ["%s client" % newcomer.public])
        node.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: None if (r := self.as_client(node, "status", pair=newcomer))
                   .returncode == EXIT_OK else r.describe(),
                   10 * TIME_SCALE, "the added key to be admitted after SIGHUP")
        self.assertIn("authorized keys reloaded", node.log())

        with WireClient(node.endpoint, curve=newcomer.wire(self.server)) as wire:
            put, = wire.put_many([("before", "revocation")])
            self.assertEqual(put[1], WireClient.PUT_REPLY, put)
            # Revoked: new connections are refused at the handshake, and
            # this connection, made before, is refused request by request.
            self.write_authorized(node, lines)
            node.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: None if (r := self.as_client(node, "status", pair=newcomer,
                                                            timeout_ms=wait))
                       .returncode == EXIT_NOT_AUTHORIZED else r.describe(),
                       10 * TIME_SCALE, "the removed key to be refused after SIGHUP")
            after, = wire.put_many([("after", "revocation")])
            self.assertEqual(after[1], ERROR_REPLY, after)
            self.assertEqual(after[3], NOT_AUTHORIZED_CODE, after)
            self.assertIn("no longer authorized", after[4])
        missing = self.as_client(node, "get", "after")
        self.assertEqual(missing.returncode, 3, missing.describe())

        # A file with a mistake keeps the keys in use, and says so.
        with open(path, "a") as f:
            f.write("garbage line\n")
        node.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: None if "keeping the authorized keys in use" in node.log()
                   else node.log()[-500:], 10 * TIME_SCALE, "the node to refuse the broken file")
        self.assertEqual(self.as_client(node, "status").returncode, EXIT_OK)

    def test_captured_traffic_holds_no_value_or_key_in_clear(self):
        value = "cleartext-value-%s" % os.urandom(8).hex()
        key = "cleartext-key-%s" % os.urandom(8).hex()
        # The capture works: to a node without CURVE, both are on the wire.
        plain = self.start_node()
        control = Proxy(plain.port)
        self.addCleanup(control.close)
        r = run_ctl(control.endpoint, "put", key, value, curve=())
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        self.assertIn(value.encode(), control.bytes())
        self.assertIn(key.encode(), control.bytes())

        proxy = Proxy(self.node.port)
        self.addCleanup(proxy.close)
        args = self.client.ctl_args(self.server)
        r = run_ctl(proxy.endpoint, "put", key, value, curve=args)
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        got = run_ctl(proxy.endpoint, "get", key, curve=args)
        self.assertEqual(got.returncode, EXIT_OK, got.describe())
        self.assertTrue(got.out.startswith(value + "\n"), got.describe())
        wire = proxy.bytes()
        self.assertGreater(len(wire), 2 * len(value))  # the traffic went through the proxy
        self.assertNotIn(value.encode(), wire)
        self.assertNotIn(key.encode(), wire)

    def test_refused_handshakes_are_logged_at_most_once_a_second_with_a_count(self):
        import zmq
        stranger = self.keygen("stranger")
        ctx = zmq.Context()
        self.addCleanup(ctx.destroy, 0)
        attempts = 30

        def refused_connection():
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RECONNECT_IVL, 600000)  # one handshake each
            sock.setsockopt_string(zmq.CURVE_SERVERKEY, self.server)
            sock.setsockopt_string(zmq.CURVE_PUBLICKEY, stranger.public)
            sock.setsockopt_string(zmq.CURVE_SECRETKEY, stranger.secret)
            sock.connect(self.node.endpoint)
            return sock

        def refusal_lines():
            return [line for line in self.node.log().splitlines()
                    if "refused a connection from" in line]

        def reported(lines):
            total = 0
            for line in lines:
                more = re.search(r"\((\d+) more refused since\)", line)
                total += 1 + (int(more.group(1)) if more else 0)
            return total

        started = time.monotonic()
        sockets = [refused_connection() for _ in range(attempts)]
        wait_until(lambda: None if reported(refusal_lines()) >= 1 else self.node.log()[-300:],
                   10 * TIME_SCALE, "the first refusal logged")
        # The last one, after a second, reports those not logged before it.
        time.sleep(1.1)
        sockets.append(refused_connection())
        wait_until(lambda: None if reported(lines := refusal_lines()) == attempts + 1
                   else lines, 20 * TIME_SCALE, "every refusal counted in the log")
        lines = refusal_lines()
        self.assertLessEqual(len(lines), int(time.monotonic() - started) + 2, lines)
        self.assertTrue(any("more refused since" in line for line in lines), lines)
        for line in lines:
            self.assertIn(stranger.public, line)
            self.assertNotIn(stranger.secret, line)
        for sock in sockets:
            sock.close()
        self.assertEqual(self.as_client(self.node, "status").returncode, EXIT_OK)

    def test_no_secret_in_resp_info_or_errors(self):
        password = "pw-" + os.urandom(8).hex()
        path = os.path.join(self.work_dir, "redis-password")
        with open(path, "w") as f:
            f.write(password + "\n")

        def start(extra):
            node = self.new_node(extra_args=extra)
            self.write_authorized(node, self.authorized_lines([node]))
            node.start()
            return node

        node, port = start_with_redis(start, "--redis-password-file", path)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"AUTH wrong-password\r\nAUTH " + password.encode() +
                         b"\r\nINFO\r\n")
            reply = b""
            while not re.search(rb"errors:\d+\r\n", reply):  # INFO's last line
                chunk = conn.recv(65536)
                self.assertTrue(chunk, "the node closed the connection: %r" % reply)
                reply += chunk
        text = reply.decode("utf-8", "replace")
        self.assertIn("WRONGPASS", text)
        self.assertIn("+OK", text)
        self.assertNotIn(password, text)
        self.assertNoSecretIn(text, "INFO")
        self.assertNotIn(password, node.log())
        self.assertNoSecretIn(node.log(), "the node's log")


class CurveClusterTest(CurveTestCase):
    """A cluster with CURVE on forms, replicates, hands off and repairs; a
    node added later is admitted by a SIGHUP on the others."""

    def test_cluster_replicates_hands_off_repairs_and_grows_with_curve(self):
        nodes = self.start_curve_cluster(3)
        for node in nodes:
            self.assertEqual(node.log().count("CURVE on"), 1, node.log())
            self.assertNotIn("CURVE is off", node.log())
        keys = ["k%02d" % i for i in range(20)]
        for k in keys:
            r = self.as_client(nodes[0], "put", k, "v-" + k)
            self.assertEqual(r.returncode, EXIT_OK, r.describe())
        # Replicated to all three (N=3) over peer connections that are CURVE
        # too: the nodes' ROUTERs take nothing else.
        for k in keys:
            wait_until(lambda k=k: None if len(h := local_holders(nodes, k)) == 3 else h,
                       20 * TIME_SCALE, "%s on every replica" % k)

        # A crash of node3; writes go on (hinted); node3 comes back empty
        # (memory engine) and gets everything back: hints for the new keys,
        # anti-entropy for the old.
        nodes[2].kill9()
        later = ["h%02d" % i for i in range(10)]
        for k in later:
            r = self.as_client(nodes[0], "put", k, "v-" + k)
            self.assertEqual(r.returncode, EXIT_OK, r.describe())
        nodes[2].start()
        for k in keys + later:
            wait_until(lambda k=k: None if nodes[2].node_id in (h := local_holders(nodes, k))
                       else h, 60 * TIME_SCALE, "%s back on the restarted node" % k)

        # A fourth node: the others admit its key on SIGHUP; it joins and
        # takes its partitions (transfers, over CURVE).
        node4 = self.new_node(seed=nodes[0])
        everyone = nodes + [node4]
        for node in everyone:
            self.write_authorized(node, self.authorized_lines(everyone))
        for node in nodes:
            node.proc.send_signal(signal.SIGHUP)
        for node in nodes:
            wait_until(lambda node=node: None if "authorized keys reloaded" in node.log()
                       else node.log()[-500:], 10 * TIME_SCALE, "%s to reload its keys" % node.name)
        node4.start()
        wait_converged(everyone)
        ring = ring_of(nodes[0])
        self.assertIn(node4.node_id, ring["public_keys"])
        self.assertEqual(ring["public_keys"][node4.node_id], self.pairs[node4.name].public)
        mine = [k for k in keys + later if node4.node_id in replicas_of(k, ring)]
        self.assertTrue(mine, "node4 replicates none of the keys")
        for k in mine:
            wait_until(lambda k=k: None if node4.node_id in (h := local_holders(everyone, k))
                       else h, 60 * TIME_SCALE, "%s transferred to node4" % k)
        for k in keys + later:
            got = self.as_client(node4, "get", k)
            self.assertEqual(got.returncode, EXIT_OK, got.describe())
            self.assertTrue(got.out.startswith("v-%s\n" % k), got.describe())
        for node in everyone:
            self.assertNoSecretIn(node.log(), node.name + "'s log")

    def test_dynamoctl_fails_over_between_nodes_with_keys_of_their_own(self):
        nodes = self.start_curve_cluster(3)
        servers = [self.pairs[n.name].public for n in nodes[:2]]
        nodes[0].stop()
        argv = ["--curve-secret-key-file", self.client.key_file]
        for key in servers:
            argv += ["--server-public-key", key]
        # The first node is down: the request, never sent there, goes to the
        # second with the second's key.
        r = run_ctl(None, "--node", nodes[0].endpoint, "--node", nodes[1].endpoint, "put", "k",
                    "v", curve=argv)
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        r = run_ctl(None, "--node", nodes[1].endpoint, "get", "k", "--local",
                    curve=self.client.ctl_args(servers[1]))
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        self.assertEqual(r.stdout.splitlines()[0], b"v", r.describe())
        # One key per --node, or one for all: anything else is a usage error.
        r = run_ctl(None, "--node", nodes[0].endpoint, "--node", nodes[1].endpoint, "get", "k",
                    curve=argv + ["--server-public-key", servers[0]])
        self.assertEqual(r.returncode, EXIT_USAGE, r.describe())
        self.assertOneErrorLine(r, "--server-public-key")

    def test_a_node_key_is_rotated_while_the_cluster_serves(self):
        """docs/operations.md "Rotating a node's key": admit the new key,
        restart the node with it, then point its endpoint at the new key and
        revoke the old one. Writes never fail; the other nodes' connections to
        the node are made again with its new key (hints reach it)."""
        nodes = self.start_curve_cluster(3)
        node3 = nodes[2]
        old, new = self.pairs[node3.name], self.keygen("curve3-rotated")
        written = []

        def put(tag):
            key = "%s-%02d" % (tag, len(written))
            r = self.as_client(nodes[0], "put", key, "v-" + key)
            self.assertEqual(r.returncode, EXIT_OK, r.describe())
            written.append(key)

        for _ in range(5):
            put("before")
        # 1. The others admit the new key as a peer's (no endpoint yet).
        for node in nodes[:2]:
            self.write_authorized(node, self.authorized_lines(nodes) + ["%s peer" % new.public])
            node.proc.send_signal(signal.SIGHUP)
        for node in nodes[:2]:
            wait_until(lambda node=node: None if "authorized keys reloaded" in node.log()
                       else node.log()[-500:], 10 * TIME_SCALE, "%s to reload" % node.name)
        # 2. The node restarts with its new key pair; the others, still
        # calling it with the old key, cannot reach it: writes are hinted.
        node3.stop()
        node3.extra_args[node3.extra_args.index(old.key_file)] = new.key_file
        self.pairs[node3.name] = new
        CURVE_ARGS[node3.endpoint] = self.admin.ctl_args(new.public)
        node3.start()
        for _ in range(5):
            put("during")
        # 3. Its endpoint now names the new key, and the old key is gone.
        for node in nodes[:2]:
            before = node.log().count("authorized keys reloaded")
            self.write_authorized(node, self.authorized_lines(nodes))
            node.proc.send_signal(signal.SIGHUP)
            wait_until(lambda node=node: None
                       if node.log().count("authorized keys reloaded") > before
                       else node.log()[-500:], 10 * TIME_SCALE, "%s to reload" % node.name)
        for _ in range(5):
            put("after")
        # Each of the others reaches the node with its new key: a write
        # through either needs node3's own acknowledgement at W=3.
        for node in nodes[:2]:
            wait_until(lambda node=node: None if (r := self.as_client(
                node, "put", "w3-" + node.name, "all", "--w", "3")).returncode == EXIT_OK
                else r.describe(), 30 * TIME_SCALE,
                "a W=3 write through %s, acknowledged by node3" % node.name)
        for k in written:
            wait_until(lambda k=k: None if len(h := local_holders(nodes, k)) == 3 else h,
                       60 * TIME_SCALE, "%s on every replica, node3 with its new key" % k)
        self.assertEqual(status_of(node3)["security"]["public_key"], new.public)
        self.assertEqual(ring_of(nodes[0])["public_keys"][node3.node_id], new.public)
        # The old key is refused by every node now, the new one served.
        wait = int(20000 * TIME_SCALE)
        for node in nodes[:2]:
            self.assertRefused(self.as_client(node, "status", pair=old, timeout_ms=wait),
                               "refused this client's CURVE key")
        for k in written:
            got = self.as_client(node3, "get", k, "--r", "3")
            self.assertEqual(got.returncode, EXIT_OK, got.describe())
            self.assertTrue(got.out.startswith("v-%s\n" % k), got.describe())

    def test_the_c_api_and_the_bench_talk_curve_in_both_modes_and_are_refused_clearly(self):
        """examples/c/cart.c over dynamo_options_set_curve: server-driven
        through one node, client-driven with every member's key from the
        ring; an unknown key gets DYNAMO_NOT_AUTHORIZED's name and one line.
        dynamo-bench likewise."""
        cart = os.path.join(BIN_DIR, "dynamo-example-cart")
        nodes = self.start_curve_cluster(3)
        server = self.pairs[nodes[0].name].pub_file

        def run_cart(pair, mode, key):
            return run_program([cart, "--mode", mode, "--key", key,
                                "--key-pair", pair.key_file, "--server-public-key", server,
                                "--timeout-ms", str(int(10000 * TIME_SCALE)),
                                nodes[0].endpoint], 60 * TIME_SCALE)

        for mode in ("server", "client"):
            r = run_cart(self.client, mode, "capi-cart-" + mode)
            self.assertEqual(r.returncode, 0, r.describe())
            self.assertIn("final cart: apple,book,pen", r.out, r.describe())
            got = self.as_client(nodes[2], "get", "capi-cart-" + mode)
            self.assertEqual(got.returncode, EXIT_OK, got.describe())
            self.assertTrue(got.out.startswith("apple,book,pen\n"), got.describe())
        stranger = self.keygen("stranger")
        refused = run_cart(stranger, "server", "capi-cart-refused")
        self.assertEqual(refused.returncode, 1, refused.describe())
        self.assertOneErrorLine(refused, "not authorized",
                                "refused this client's CURVE key")

        # dynamo-bench: the first target's key given, the others' from the
        # ring; every operation answered, in both modes.
        bench = os.path.join(BIN_DIR, "dynamo-bench")
        targets = ",".join(n.endpoint for n in nodes)
        for mode in ("server", "client"):
            r = run_program([bench, "--target", targets, "--mode", mode, "--ops", "600",
                             "--clients", "3", "--keys", "50", "--preload", "--json",
                             "--curve-secret-key-file", self.client.key_file,
                             "--server-public-key", server], 120 * TIME_SCALE)
            self.assertEqual(r.returncode, EXIT_OK, r.describe())
            doc = r.json()
            self.assertEqual((doc["ops"], doc["errors"]), (600, 0), r.describe())
            self.assertEqual(doc["preload"]["errors"], 0, r.describe())
        for args, text in ((["--curve-secret-key-file", self.client.key_file], "go together"),
                           (["--curve-secret-key-file", self.client.pub_file,
                             "--server-public-key", server], self.client.pub_file)):
            r = run_program([bench, "--target", targets, "--ops", "10"] + args, 60 * TIME_SCALE)
            self.assertEqual(r.returncode, EXIT_USAGE, r.describe())
            self.assertOneErrorLine(r, text)
        r = run_program([bench, "--target", targets, "--ops", "10", "--timeout-ms",
                         str(int(10000 * TIME_SCALE)), "--curve-secret-key-file",
                         stranger.key_file, "--server-public-key", server], 60 * TIME_SCALE)
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertOneErrorLine(r, "refused this client's CURVE key")


if __name__ == "__main__":
    unittest.main()
