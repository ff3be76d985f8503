"""Hosts, not just loopback ports: each node in a network namespace of its
own, with its own address on a bridge, through a partition and a crash.

The namespaces: one "switch" holding a bridge, one per node and one for the
client, each joined to the bridge by a veth pair created inside the
namespaces (the machine's own network is never touched). A partition takes
a node's bridge port down; a crash is kill -9 of what runs in its
namespace. Every namespace (and with it every link), process and folder is
removed at the end, also when the test fails; namespaces a killed run left
behind are removed by the next. Runs as root or through password-less sudo
(label privileged, docs/testing.md).
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import (DYNAMOCTL, DYNAMOD, TIME_SCALE, require_root, system_tool)

NODES = 3
PREFIX = "dyntest"
SUBNET = "10.213.77."
PORT = 7100
DEADLINE = 60.0 * TIME_SCALE


class NetnsTest(unittest.TestCase):

    def setUp(self):
        self.root = require_root(self)
        self.ip = system_tool("ip")
        if self.ip is None:
            self.fail("the ip command (iproute2) is not installed")
        self.tag = "%s%d" % (PREFIX, os.getpid() % 100000)
        self.namespaces = []
        self.procs = []
        self.remove_stale()
        self.work = tempfile.mkdtemp(prefix="dynamo-netns-")
        os.chmod(self.work, 0o755)
        self.addCleanup(self.cleanup)
        self.build_network()

    # ---- plumbing

    def run_root(self, *argv, check=True, timeout=30):
        proc = subprocess.run(list(self.root) + list(argv), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if check and proc.returncode != 0:
            self.fail("%s failed (%d): %s" % (" ".join(argv), proc.returncode,
                                              proc.stderr.decode("utf-8", "replace")))
        return proc

    def ns(self, name):
        return "%s-%s" % (self.tag, name)

    def remove_stale(self):
        """Namespaces of earlier runs whose process is gone."""
        out = self.run_root(self.ip, "netns", "list", check=False).stdout.decode()
        for line in out.splitlines():
            name = line.split()[0] if line.split() else ""
            if not name.startswith(PREFIX):
                continue
            pid = name[len(PREFIX):].split("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() % 100000 and \
                    not os.path.exists("/proc/%s" % pid):
                self.kill_all_in(name)
                self.run_root(self.ip, "netns", "del", name, check=False)

    def add_namespace(self, name):
        ns = self.ns(name)
        self.run_root(self.ip, "netns", "add", ns)
        self.namespaces.append(ns)
        self.run_root(self.ip, "-n", ns, "link", "set", "lo", "up")
        return ns

    def build_network(self):
        sw = self.add_namespace("sw")
        self.run_root(self.ip, "-n", sw, "link", "add", "br0", "type", "bridge")
        self.run_root(self.ip, "-n", sw, "link", "set", "br0", "up")
        for i in range(1, NODES + 2):  # the last one is the client's
            ns = self.add_namespace("n%d" % i)
            self.run_root(self.ip, "-n", sw, "link", "add", "p%d" % i, "type", "veth",
                          "peer", "name", "eth0", "netns", ns)
            self.run_root(self.ip, "-n", sw, "link", "set", "p%d" % i, "master", "br0", "up")
            self.run_root(self.ip, "-n", ns, "addr", "add", "%s%d/24" % (SUBNET, i), "dev", "eth0")
            self.run_root(self.ip, "-n", ns, "link", "set", "eth0", "up")

    def kill_all_in(self, ns):
        out = self.run_root(self.ip, "netns", "pids", ns, check=False).stdout.decode()
        for pid in out.split():
            self.run_root("kill", "-9", pid, check=False)

    def cleanup(self):
        for ns in self.namespaces:
            self.kill_all_in(ns)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.run_root("kill", "-9", str(proc.pid), check=False)
                proc.wait()
        for ns in self.namespaces:
            self.run_root(self.ip, "netns", "del", ns, check=False)
        # The nodes ran as root: their files may be root's.
        self.run_root("rm", "-rf", self.work, check=False)
        shutil.rmtree(self.work, ignore_errors=True)

    # ---- nodes and the client

    def endpoint(self, i):
        return "tcp://%s%d:%d" % (SUBNET, i, PORT)

    def start(self, i):
        args = [self.ip, "netns", "exec", self.ns("n%d" % i), DYNAMOD,
                "--node-id", "node%d" % i, "--listen", self.endpoint(i),
                "--data-dir", os.path.join(self.work, "node%d" % i),
                "--backend", "file", "--gossip-interval-ms", "200",
                "--failure-timeout-ms", "1500", "--anti-entropy-interval-ms", "100"]
        if i > 1:
            args += ["--seed", self.endpoint(1)]
        log = open(os.path.join(self.work, "node%d.log" % i), "ab")
        self.procs.append(subprocess.Popen(list(self.root) + args, stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=log, start_new_session=True))
        log.close()

    def crash(self, i):
        self.kill_all_in(self.ns("n%d" % i))

    def cut(self, i, down=True):
        self.run_root(self.ip, "-n", self.ns("sw"), "link", "set", "p%d" % i,
                      "down" if down else "up")

    def ctl(self, i, *args, timeout_ms=3000):
        argv = list(self.root) + [self.ip, "netns", "exec", self.ns("n%d" % (NODES + 1)),
                                  DYNAMOCTL, "--node", self.endpoint(i),
                                  "--timeout-ms", str(timeout_ms)] + list(args)
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60 * TIME_SCALE)
        return proc.returncode, proc.stdout.decode("utf-8", "replace"), \
            proc.stderr.decode("utf-8", "replace")

    def wait(self, check, what):
        end = time.monotonic() + DEADLINE
        while True:
            problem = check()
            if problem is None:
                return
            if time.monotonic() > end:
                logs = ""
                for i in range(1, NODES + 1):
                    path = os.path.join(self.work, "node%d.log" % i)
                    if os.path.exists(path):
                        with open(path, "rb") as f:
                            logs += "\n-- node%d:\n" % i + f.read()[-1500:].decode("utf-8", "replace")
                self.fail("%s: %s%s" % (what, problem, logs))
            time.sleep(0.3)

    def ring_of_everyone(self):
        for i in range(1, NODES + 1):
            rc, out, err = self.ctl(i, "--json", "status")
            if rc != 0:
                return "node%d: %s" % (i, err.strip())
            states = [m.get("state") for m in json.loads(out).get("members", [])]
            if states.count("up") != NODES:
                return "node%d sees members %r" % (i, states)
        return None

    def put_many(self, through, keys):
        acked = {}
        for k in keys:
            rc, out, err = self.ctl(through, "put", k, "value-of-" + k)
            if rc == 0:
                acked[k] = "value-of-" + k
        return acked

    def unreadable(self, expected, through):
        for k, v in sorted(expected.items()):
            rc, out, err = self.ctl(through, "get", k, "--r", "3")
            values = out.splitlines()[:-1] if rc == 0 else None
            if values != [v]:
                return "%s through node%d: %r (%s)" % (k, through, values, err.strip())
        return None

    # ---- the test

    def test_a_cluster_of_namespaced_hosts_loses_nothing_to_a_partition_or_a_crash(self):
        for i in range(1, NODES + 1):
            self.start(i)
        self.wait(self.ring_of_everyone, "the three hosts did not form one cluster")

        acked = self.put_many(1, ["calm-%02d" % k for k in range(20)])
        self.assertEqual(len(acked), 20, "writes failed with every host up")

        # node3's host is cut off: W=2 still holds with node1 and node2.
        self.cut(3)
        during = self.put_many(1, ["cut-%02d" % k for k in range(20)])
        self.assertEqual(len(during), 20, "writes failed while one host was cut off")
        acked.update(during)
        self.cut(3, down=False)

        # node2 crashes (kill -9): W=2 holds with node1 and node3.
        self.crash(2)
        crashed = self.put_many(1, ["crash-%02d" % k for k in range(20)])
        self.assertEqual(len(crashed), 20, "writes failed while one host was down")
        acked.update(crashed)
        self.start(2)
        self.wait(self.ring_of_everyone, "node2 did not come back")

        # Every acknowledged write, at R=3, through every host.
        for i in range(1, NODES + 1):
            self.wait(lambda i=i: self.unreadable(acked, i),
                      "acknowledged writes not readable at R=3 through node%d" % i)


if __name__ == "__main__":
    unittest.main()
