"""CURVE (DESIGN.md 3.7): keys made by `dynamoctl keygen`, nodes that admit
only the keys of their authorized-keys file, roles, SIGHUP, refusals that
say why, and traffic that carries no value in clear. Real dynamod processes,
real ZeroMQ CURVE handshakes (dynamoctl, and python3-zmq for long-lived
connections), a TCP proxy that records the bytes on the wire."""

import os
import signal
import socket
import stat
import threading
import time
import unittest

from harness import (CURVE_ARGS, DynamoTestCase, EXIT_NOT_AUTHORIZED, EXIT_OK, EXIT_OTHER,
                     EXIT_USAGE, Node, WireClient, free_port, local_holders, replicas_of,
                     ring_of, run_ctl, run_dynamod, status_of, wait_converged, wait_until,
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
        for args in (["remove", "node9"], ["leave"], ["join", "tcp://127.0.0.1:9"]):
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


if __name__ == "__main__":
    unittest.main()
