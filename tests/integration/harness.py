"""Test harness for the black-box integration tests.

Starts real `dynamod` processes on free loopback ports, each with its own
temporary data folder, drives them with `dynamoctl` (or a raw ZeroMQ client,
see test_protocol.py), and always cleans up: every process it starts is
stopped and every folder it makes is removed, also when a test fails.

Where the programs are comes from the environment (ctest sets it):
  DYNAMO_BIN_DIR          dynamod and dynamoctl      (default: <repo>/build/bin)
  DYNAMO_PLUGIN_DIR       the engine plugins         (default: <bin>/../lib/dynamo/plugins)
  DYNAMO_TEST_PLUGIN_DIR  deliberately broken plugins built for tests
                                                     (default: <bin>/../test-plugins)
  DYNAMO_TEST_TIME_SCALE  multiplies every deadline  (default: 1; e.g. 5 under valgrind)

Nodes only ever listen on loopback: 127.0.0.1 unless a test asks for another
127.0.0.x (so fault tests can cut nodes apart by address).

Clusters (test_cluster.py): DynamoTestCase.start_cluster starts node1 plain and
the others with --seed node1; wait_converged polls `ring --json` and
`status --json` until every node agrees; partition_of, replicas_of and
local_holders say where a key belongs and where it is; WireClient speaks the
wire protocol raw for checks over thousands of keys (one dynamoctl run costs
~30 ms of CPU).

Faults and load (test_handoff.py, test_partition.py, ...): Writer writes
distinct keys through one node in a background thread and records every
acknowledged write and every failure; read_mismatches reads many keys back
and returns what differs; wait_until polls a check and fails with the last
thing it observed; IptablesPartition (DynamoTestCase.iptables_partition)
drops packets between loopback hosts in its own iptables chain and always
removes it.
"""

import base64
import concurrent.futures
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))

BIN_DIR = os.environ.get("DYNAMO_BIN_DIR") or os.path.join(_REPO, "build", "bin")
PLUGIN_DIR = os.environ.get("DYNAMO_PLUGIN_DIR") or os.path.join(
    BIN_DIR, os.pardir, "lib", "dynamo", "plugins")
TEST_PLUGIN_DIR = os.environ.get("DYNAMO_TEST_PLUGIN_DIR") or os.path.join(
    BIN_DIR, os.pardir, "test-plugins")
LIB_DIR = os.environ.get("DYNAMO_LIB_DIR") or os.path.join(BIN_DIR, os.pardir, "lib")
DYNAMOD = os.path.join(BIN_DIR, "dynamod")
DYNAMOCTL = os.path.join(BIN_DIR, "dynamoctl")

TIME_SCALE = float(os.environ.get("DYNAMO_TEST_TIME_SCALE", "1"))
READY_DEADLINE = 10.0 * TIME_SCALE   # seconds for a node to answer `status`
STOP_DEADLINE = 10.0 * TIME_SCALE    # seconds for a node to exit after SIGTERM
CTL_DEADLINE = 30.0 * TIME_SCALE     # seconds for one dynamoctl run
CONVERGE_DEADLINE = 30.0 * TIME_SCALE  # seconds for a cluster to agree on one ring
WIRE_WAIT_MS = int(10000 * TIME_SCALE)  # one raw request's reply (WireClient), at most

# Sanitizer builds (-DDYNAMO_SANITIZE, docs/testing.md "Sanitizers"). In an
# ASan build this Python process may have started with ASan's runtime
# preloaded and leak checks off, so that it can load the C API library
# (tests/integration/CMakeLists.txt); the programs it starts get the plain
# environment back and run with the options built into them.
ASAN_PRELOAD = os.environ.get("DYNAMO_TEST_ASAN_PRELOAD")
if ASAN_PRELOAD:
    os.environ.pop("LD_PRELOAD", None)
    os.environ.pop("ASAN_OPTIONS", None)

# What a sanitizer prints when it finds something (the program then aborts).
_SANITIZER_REPORT = re.compile(
    r"ERROR: (?:Address|Leak)Sanitizer|WARNING: ThreadSanitizer|: runtime error: ")


# dynamoctl runs thousands of times per module: in an ASan build it skips
# the leak check at exit (some 40 ms a run); its client library is
# leak-checked by the C API's test program and the unit tests.
_CTL_ENV = dict(os.environ)
_CTL_ENV["ASAN_OPTIONS"] = ":".join(
    o for o in (os.environ.get("ASAN_OPTIONS"), "detect_leaks=0") if o)


def python_env(env=None):
    """The environment for a Python child process that loads the C API
    library (os.environ when env is None)."""
    env = dict(os.environ if env is None else env)
    if ASAN_PRELOAD:
        env["LD_PRELOAD"] = ASAN_PRELOAD
        env["ASAN_OPTIONS"] = "detect_leaks=0"
    return env


def sanitizer_report(text):
    """The sanitizer report in a program's output, from its first line on,
    or None."""
    m = _SANITIZER_REPORT.search(text)
    if m is None:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    return text[start:start + 6000]


class SanitizerFinding(AssertionError):
    """A program of a sanitizer build reported an error: whatever the test
    expected of it, the test fails."""

# dynamoctl exit codes (DESIGN.md 3.2).
EXIT_OK = 0
EXIT_OTHER = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_QUORUM = 4
EXIT_REJECTED = 5
EXIT_NOT_AUTHORIZED = 6

KEY_LIMIT = 64 * 1024
VALUE_LIMIT = 1024 * 1024

_BIND_FAILURE = re.compile(r"in use|eaddrinuse|cannot bind|can't bind|bind", re.I)


def free_port(host="127.0.0.1"):
    """A loopback TCP port that was free a moment ago (bind port 0, release).

    Another process may take it before the caller binds it; Node.start retries
    with a new port when dynamod reports a bind failure.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def redis_args(port, *more):
    return ["--redis-listen", "127.0.0.1:%d" % port] + list(more)


def _start_with_port(start, option, args_of, attempts):
    """start(args_of(port)) with a port picked just before; when another
    process took that port meanwhile (dynamod names `(--OPTION)` in its
    error), again with a new one. Returns (node, port)."""
    for attempt in range(attempts):
        port = free_port()
        try:
            return start(args_of(port)), port
        except AssertionError as e:
            if "(--%s)" % option not in str(e) or attempt == attempts - 1:
                raise


def start_with_redis(start, *more, attempts=5):
    """start(extra_args) with a RESP port of its own: (node, port)."""
    return _start_with_port(start, "redis-listen", lambda p: redis_args(p, *more), attempts)


def metrics_args(port):
    return ["--metrics-listen", "127.0.0.1:%d" % port]


def start_with_metrics(start, *more, attempts=5):
    """start(extra_args) with a metrics port of its own: (node, port)."""
    return _start_with_port(start, "metrics-listen", lambda p: metrics_args(p) + list(more),
                            attempts)


def http_get(port, path="/metrics", timeout=10.0):
    """GET http://127.0.0.1:PORT/PATH: (HTTP status, Content-Type, body as text)."""
    import urllib.error
    import urllib.request
    url = "http://127.0.0.1:%d%s" % (port, path)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8", "replace")


class Metrics:
    """A scrape in the Prometheus text format (version 0.0.4), parsed
    strictly: a line that is neither a comment nor a well-formed sample
    fails the test.

    families: {name: type}; helps: {name: text}; samples: [(name, {label:
    value}, float)]."""

    _SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    _LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')

    def __init__(self, text):
        self.text = text
        self.families, self.helps, self.samples = {}, {}, []
        for line in text.splitlines():
            if line.startswith("# HELP "):
                name, _, help_text = line[7:].partition(" ")
                self.helps[name] = help_text
            elif line.startswith("# TYPE "):
                name, _, kind = line[7:].partition(" ")
                if name in self.families:
                    raise AssertionError("family %s declared twice" % name)
                self.families[name] = kind
            elif line.startswith("#") or not line:
                continue
            else:
                m = self._SAMPLE.match(line)
                if m is None:
                    raise AssertionError("malformed metrics line: %r" % line)
                labels = {}
                rest = m.group(2) or ""
                pos = 0
                while pos < len(rest):
                    lm = self._LABEL.match(rest, pos)
                    if lm is None:
                        raise AssertionError("malformed labels in %r" % line)
                    labels[lm.group(1)] = re.sub(r"\\(.)", lambda x: {"n": "\n"}.get(
                        x.group(1), x.group(1)), lm.group(2))
                    pos = lm.end()
                self.samples.append((m.group(1), labels, float(m.group(3))))

    def family_of(self, sample_name):
        """The family a sample belongs to (histograms' _bucket, _sum, _count)."""
        if sample_name in self.families:
            return sample_name
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample_name[:-len(suffix)]
            if sample_name.endswith(suffix) and self.families.get(base) == "histogram":
                return base
        return None

    def value(self, name, **labels):
        """The sum of the samples named name whose labels include labels;
        fails when there is none."""
        found = [v for n, ls, v in self.samples
                 if n == name and all(ls.get(k) == str(x) for k, x in labels.items())]
        if not found:
            raise AssertionError("no sample %s%r in the scrape" % (name, labels))
        return sum(found)


def scrape(port):
    """Metrics of the node serving them on port (fails on anything but 200)."""
    status, content_type, body = http_get(port)
    if status != 200:
        raise AssertionError("GET /metrics answered %d: %s" % (status, body[:500]))
    return Metrics(body)


def endpoint_of(port, host="127.0.0.1"):
    return "tcp://%s:%d" % (host, port)


def error_lines(text):
    """The non-empty lines of a program's stderr."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [line for line in text.splitlines() if line.strip()]


class Result:
    """What one finished process left: exit code, stdout (bytes), stderr (str)."""

    def __init__(self, argv, returncode, stdout, stderr):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
        report = sanitizer_report(self.stderr)
        if report is not None:
            raise SanitizerFinding("%r reported:\n%s" % (" ".join(map(str, argv[:6])), report))

    @property
    def out(self):
        """stdout as text."""
        return self.stdout.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.stdout.decode("utf-8"))

    def describe(self):
        argv = [a if len(a) <= 80 else a[:40] + "...(%d bytes)" % len(a)
                for a in (x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)
                          for x in self.argv)]
        out = self.stdout[:500]
        return "command %r exited %r\nstdout: %r\nstderr: %s" % (
            " ".join(argv), self.returncode, out, self.stderr[-2000:])

    def __repr__(self):
        return "<Result %s>" % self.describe()


# ---- privileges ------------------------------------------------------------------------
#
# Some tests change the machine: iptables rules (test_partition), installed
# packages (test_packages). They run as root, or as a user with sudo that asks
# no password (`sudo -n`); without either they fail with the reason, they are
# never skipped. A user's PATH often lacks /usr/sbin, where iptables, deluser
# and friends live, so system tools are looked up there too.

SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
NO_PRIVILEGE = ("this test changes the machine (iptables rules, installed packages) and runs "
                "as root or as a user whose sudo asks no password; `sudo -n true` failed")


def system_tool(name):
    """The path of a system program, also when PATH lacks the sbin folders; or None."""
    found = shutil.which(name)
    if found:
        return found
    for folder in SYSTEM_DIRS:
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


@functools.lru_cache(maxsize=None)
def _root_prefix():
    if os.geteuid() == 0:
        return ()
    sudo = system_tool("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL).returncode == 0:
        return (sudo, "-n")
    return None


def as_root():
    """The argv prefix that runs a command as root: [] as root, ["sudo", "-n"]
    for a user whose sudo asks no password, or None. Asked once a process."""
    prefix = _root_prefix()
    return None if prefix is None else list(prefix)


def require_root(test):
    """as_root() for a test that cannot run without it: fails the test (with
    the reason) when neither root nor password-less sudo is available."""
    prefix = as_root()
    if prefix is None:
        test.fail(NO_PRIVILEGE)
    return prefix


def run_program(argv, deadline, env=None, cwd=None):
    """Runs argv to its end with no input; returns a Result. Fails the test
    (AssertionError) when it runs past the deadline (seconds)."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, cwd=cwd, timeout=deadline)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s did not finish within %.0f s" % (" ".join(map(str, argv[:4])),
                                                                 deadline)) from e
    return Result(argv, proc.returncode, proc.stdout, proc.stderr)


# dynamoctl's CURVE options for a node that requires them (endpoint ->
# ["--curve-secret-key-file", F, "--server-public-key", K]); every helper
# that runs dynamoctl against that endpoint passes them (test_security.py).
CURVE_ARGS = {}


def run_ctl(endpoint, *args, json_output=False, timeout_ms=None, input=None,
            deadline=CTL_DEADLINE, curve=None):
    """Runs `dynamoctl [--node EP] [--json] [--timeout-ms MS] ARGS...`.

    endpoint None leaves --node out. input (bytes) goes to stdin; without it
    stdin is empty (never the test runner's terminal). curve: CURVE options
    to pass (None: those of CURVE_ARGS for the endpoint; () for none).
    """
    argv = [DYNAMOCTL]
    if endpoint is not None:
        argv += ["--node", endpoint]
    argv += list(CURVE_ARGS.get(endpoint, ()) if curve is None else curve)
    if json_output:
        argv.append("--json")
    if timeout_ms is not None:
        argv += ["--timeout-ms", str(timeout_ms)]
    argv += list(args)
    try:
        proc = subprocess.run(argv, input=input if input is not None else b"",
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=_CTL_ENV, timeout=deadline)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("dynamoctl did not finish within %.0f s: %r" % (deadline, argv[:8])) from e
    return Result(argv, proc.returncode, proc.stdout, proc.stderr)


def run_dynamod(args, deadline=15.0 * TIME_SCALE):
    """Runs dynamod expecting it to exit on its own (bad options and the like).

    Fails the test if it is still running after the deadline (it is killed).
    """
    argv = [DYNAMOD] + list(args)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("dynamod %r was expected to exit but still ran after %.0f s; "
                             "stderr: %s" % (args, deadline, err.decode("utf-8", "replace")[-2000:]))
    return Result(argv, proc.returncode, out, err)


class Node:
    """One dynamod process: its arguments, port, data folder and log.

    Start with start(); stop(), kill9() and restart() keep the same arguments,
    port and data folder.
    """

    def __init__(self, work_dir, name, backend="memory", extra_args=(), port=None,
                 data_dir=None, node_id=None, args_override=None, host="127.0.0.1",
                 seeds=()):
        if not host.startswith("127."):
            raise ValueError("tests listen on loopback only, not %r" % host)
        self.name = name
        self.backend = backend
        self.extra_args = list(extra_args)
        self.host = host
        # Endpoints given as --seed; a test may clear them before a restart
        # (a node with saved state needs none).
        self.seeds = list(seeds)
        self.fixed_port = port is not None
        self.port = port if port is not None else free_port(host)
        self.node_id = node_id
        # When set, dynamod gets exactly these arguments (e.g. only --config).
        self.args_override = args_override
        self.data_dir = data_dir or os.path.join(work_dir, name + "-data")
        self.log_path = os.path.join(work_dir, name + ".log")
        self.proc = None
        self.starts = 0
        # Variables added to dynamod's environment (fault injection).
        self.env = {}

    @property
    def endpoint(self):
        return endpoint_of(self.port, self.host)

    @property
    def file_engine_dir(self):
        """Where the file engine keeps its segments (its default path,
        <data-dir>/file); the node's membership state lives beside it."""
        return os.path.join(self.data_dir, "file")

    def argv(self):
        if self.args_override is not None:
            return [DYNAMOD] + list(self.args_override)
        argv = [DYNAMOD, "--listen", self.endpoint, "--data-dir", self.data_dir,
                "--backend", self.backend]
        if self.node_id is not None:
            argv += ["--node-id", self.node_id]
        for seed in self.seeds:
            argv += ["--seed", seed]
        return argv + self.extra_args

    def log(self):
        """Everything the node wrote to stderr/stdout, over all its runs."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def _spawn(self):
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(b"==== start %d: %s\n" % (self.starts, " ".join(self.argv()).encode()))
            log.flush()
            env = dict(os.environ, **self.env) if self.env else None
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=env)

    def start(self, wait=True, attempts=5):
        """Starts the node and (by default) waits until it answers `status`.

        When the port was picked here and dynamod fails to bind it (another
        process took it meanwhile), retries on a new port.
        """
        if not os.path.isfile(DYNAMOD):
            raise AssertionError("dynamod is not built: %s does not exist" % DYNAMOD)
        for attempt in range(attempts):
            self._spawn()
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except NodeExited as e:
                bind_failure = _BIND_FAILURE.search(e.stderr_tail or "")
                if self.fixed_port or not bind_failure or attempt == attempts - 1:
                    raise AssertionError(str(e)) from None
                self.port = free_port(self.host)
        raise AssertionError("unreachable")

    def wait_ready(self, deadline=READY_DEADLINE):
        """Polls `dynamoctl --json status` until it exits 0."""
        end = time.monotonic() + deadline
        last = None
        while True:
            if self.proc.poll() is not None:
                raise NodeExited(self, "node %s exited with %r before it was ready"
                                 % (self.name, self.proc.returncode))
            last = run_ctl(self.endpoint, "status", json_output=True, timeout_ms=500,
                           deadline=10 * TIME_SCALE)
            if last.returncode == 0:
                return
            if time.monotonic() > end:
                raise AssertionError(
                    "node %s not ready after %.0f s (last status: %s)\nnode log:\n%s"
                    % (self.name, deadline, last.describe(), self.log()[-4000:]))
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, deadline=STOP_DEADLINE):
        """Sends sig, waits up to deadline, then SIGKILLs. Returns the exit code
        (negative: killed by that signal), or None if it was not running."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                raise AssertionError("node %s did not exit within %.0f s of signal %d; "
                                     "killed it" % (self.name, deadline, sig))
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill9(self):
        """A crash: SIGKILL, then reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, wait=True):
        """Starts the node again with the same arguments, port and data folder."""
        if self.alive():
            self.stop()
        return self.start(wait=wait)

    def cleanup(self):
        """Never fails: SIGTERM, short wait, SIGKILL."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.proc = None


class NodeExited(Exception):
    def __init__(self, node, message):
        log = node.log()
        # Only this run's part of the log.
        marker = log.rfind("==== start ")
        self.stderr_tail = log[marker:] if marker >= 0 else log
        super().__init__("%s\nnode log:\n%s" % (message, self.stderr_tail[-4000:]))


class DynamoTestCase(unittest.TestCase):
    """Base class: temporary folders and nodes that are always cleaned up."""

    maxDiff = 4000

    def setUp(self):
        super().setUp()
        for prog in (DYNAMOD, DYNAMOCTL):
            if not os.path.isfile(prog):
                self.fail("%s is not built (DYNAMO_BIN_DIR=%s)" % (prog, BIN_DIR))
        self.work_dir = self.make_temp_dir()
        self._node_count = 0

    def make_temp_dir(self):
        path = tempfile.mkdtemp(prefix="dynamo-it-")
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path

    def start_node(self, backend="memory", extra_args=(), wait=True, node_id="",
                   **kwargs):
        """A running node (ready unless wait=False), stopped at cleanup.

        node_id "" names it after the node (node1, node2, ...); None leaves
        --node-id out (dynamod's default)."""
        self._node_count += 1
        name = "node%d" % self._node_count
        node = Node(self.work_dir, name, backend=backend, extra_args=extra_args,
                    node_id=name if node_id == "" else node_id, **kwargs)
        self.addCleanup(self.check_sanitizer_reports, node)  # runs after node.cleanup
        self.addCleanup(node.cleanup)
        node.start(wait=wait)
        return node

    def check_sanitizer_reports(self, node):
        """Fails the test when the node's log holds a sanitizer report (a
        sanitizer build finds leaks when the node exits)."""
        report = sanitizer_report(node.log())
        if report is not None:
            raise SanitizerFinding("node %s reported:\n%s" % (node.name, report))

    # ---- clusters ----------------------------------------------------------------

    def start_cluster_node(self, seed=None, backend="memory", extra_args=(),
                           host="127.0.0.1", gossip_interval_ms=None,
                           request_timeout_ms=None, wait=True):
        """One more cluster node: --seed seed's endpoint (none: a new cluster).
        gossip_interval_ms None takes TEST_GOSSIP_INTERVAL_MS, 0 leaves the
        option out (dynamod's default). Its port stays fixed across restarts."""
        if gossip_interval_ms is None:
            gossip_interval_ms = TEST_GOSSIP_INTERVAL_MS
        args = []
        if gossip_interval_ms:
            args += ["--gossip-interval-ms", str(gossip_interval_ms)]
        if request_timeout_ms is not None:
            args += ["--request-timeout-ms", str(request_timeout_ms)]
        node = self.start_node(backend=backend, extra_args=args + list(extra_args),
                               wait=wait, host=host,
                               seeds=[seed.endpoint] if seed is not None else [])
        node.fixed_port = True  # the cluster knows it by this endpoint
        return node

    def start_resp_cluster(self, count=3, **kwargs):
        """count cluster nodes, each also serving RESP on a port of its own
        (kwargs go to start_cluster_node); waits for convergence. Returns
        (nodes, RESP ports)."""
        nodes, ports = [], []
        for _ in range(count):
            node, port = start_with_redis(lambda args: self.start_cluster_node(
                seed=nodes[0] if nodes else None, extra_args=args, **kwargs))
            nodes.append(node)
            ports.append(port)
        self.wait_converged(nodes)
        return nodes, ports

    def start_cluster(self, count, backend="memory", extra_args=(), hosts=None,
                      converge=True, deadline=CONVERGE_DEADLINE, **kwargs):
        """count nodes: the first plain, the others with --seed <first>. hosts
        (a list, one 127.0.0.x per node) defaults to 127.0.0.1 for all.
        Waits for convergence unless converge=False. Returns the nodes."""
        hosts = list(hosts) if hosts else ["127.0.0.1"] * count
        nodes = []
        for i in range(count):
            nodes.append(self.start_cluster_node(
                seed=nodes[0] if nodes else None, backend=backend, extra_args=extra_args,
                host=hosts[i], **kwargs))
        if converge:
            wait_converged(nodes, deadline)
        return nodes

    def wait_converged(self, nodes, deadline=CONVERGE_DEADLINE):
        return wait_converged(nodes, deadline)

    def local_holders(self, nodes, key):
        return local_holders(nodes, key)

    # ---- faults --------------------------------------------------------------

    def iptables_partition(self):
        """An IptablesPartition whose chain is removed at cleanup whatever
        happens; fails the test (with the reason) when iptables cannot be
        used here: as root, or as a user with password-less sudo."""
        reason = IptablesPartition.unavailable_reason()
        if reason:
            self.fail(reason)
        part = IptablesPartition()
        try:
            part.open()
        except IptablesError as e:
            part.close()
            self.fail("iptables refused to set up a chain: %s" % e)
        self.addCleanup(part.close)
        return part

    def start_writer(self, node, **kwargs):
        """A started Writer through node (a Node or an endpoint), stopped at
        cleanup if the test has not stopped it."""
        endpoint = node.endpoint if isinstance(node, Node) else node
        writer = Writer(endpoint, **kwargs)
        self.addCleanup(writer.stop, False)
        writer.start()
        return writer

    # ---- dynamoctl -----------------------------------------------------------

    def ctl(self, node, *args, **kwargs):
        """Runs dynamoctl against node (a Node, an endpoint string, or None)."""
        endpoint = node.endpoint if isinstance(node, Node) else node
        return run_ctl(endpoint, *args, **kwargs)

    def ctl_ok(self, node, *args, **kwargs):
        r = self.ctl(node, *args, **kwargs)
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        return r

    def put(self, node, key, value, context=None, extra=()):
        """put KEY VALUE (bytes values go through stdin); returns the new context."""
        args = ["put", key]
        kwargs = {}
        if isinstance(value, bytes):
            args.append("-")
            kwargs["input"] = value
        else:
            args.append(value)
        if context is not None:
            args += ["--context", context]
        args += list(extra)
        r = self.ctl_ok(node, *args, **kwargs)
        lines = r.out.splitlines()
        self.assertEqual(len(lines), 1, "put prints exactly the new context: " + r.describe())
        self.assertTrue(lines[0].strip(), "empty context: " + r.describe())
        return lines[0].strip()

    def get_json(self, node, key, extra=()):
        """get --json; returns (values as a sorted list of bytes, context) or
        None when the key is not found (exit 3)."""
        r = self.ctl(node, "get", key, *extra, json_output=True)
        if r.returncode == EXIT_NOT_FOUND:
            self.assertOneErrorLine(r)
            return None
        self.assertEqual(r.returncode, EXIT_OK, r.describe())
        doc = r.json()
        self.assertIs(doc.get("found"), True, r.describe())
        self.assertIsInstance(doc.get("values_b64"), list, r.describe())
        self.assertIsInstance(doc.get("context"), str, r.describe())
        self.assertTrue(doc["context"], r.describe())
        values = sorted(base64.b64decode(v, validate=True) for v in doc["values_b64"])
        return values, doc["context"]

    def assert_values(self, node, key, expected, extra=()):
        """get through node returns exactly the values expected (bytes); returns
        the context."""
        got = self.get_json(node, key, extra=extra)
        self.assertIsNotNone(got, "%s not found through %s" % (key, node.name))
        self.assertEqual(got[0], sorted(expected), "%s through %s" % (key, node.name))
        return got[1]

    def wait_local(self, node, key, expected, deadline):
        """Polls node's engine (get --local) until it holds exactly expected."""
        end = time.monotonic() + deadline
        while True:
            holders = local_holders([node], key)
            got = holders.get(node.node_id)
            if got == sorted(expected):
                return
            if time.monotonic() > end:
                self.fail("%s's engine holds %r for %s, expected %r after %.0f s; log tail:\n%s"
                          % (node.name, got, key, sorted(expected), deadline,
                             node.log()[-2000:]))
            time.sleep(0.1)

    def delete(self, node, key, context=None):
        args = ["del", key]
        if context is not None:
            args += ["--context", context]
        r = self.ctl_ok(node, *args)
        lines = r.out.splitlines()
        self.assertEqual(len(lines), 1, "del prints exactly the new context: " + r.describe())
        return lines[0].strip()

    # ---- assertions ------------------------------------------------------------

    def assertOneErrorLine(self, result, *must_contain):
        """stderr is exactly one non-empty line, containing each of must_contain
        (case-insensitive)."""
        lines = error_lines(result.stderr)
        self.assertEqual(len(lines), 1, "expected exactly one line on stderr: "
                         + result.describe())
        for text in must_contain:
            self.assertIn(text.lower(), lines[0].lower(), result.describe())
        return lines[0]

    def assertExit(self, result, code):
        self.assertEqual(result.returncode, code, result.describe())


# ---- clusters ------------------------------------------------------------------------


# The gossip interval clusters are started with (dynamod's default is 1000 ms);
# shorter so convergence is quick. None leaves the option out.
TEST_GOSSIP_INTERVAL_MS = 200


def partition_of(key, q):
    """The partition of key on a ring of q partitions: the top log2(q) bits of
    MD5(key) read big-endian (DESIGN.md 1)."""
    if q < 1 or q & (q - 1):
        raise ValueError("Q must be a power of two, not %r" % q)
    if isinstance(key, str):
        key = key.encode("utf-8")
    bits = q.bit_length() - 1
    return int.from_bytes(hashlib.md5(key).digest(), "big") >> (128 - bits)


def replicas_of(key, ring_doc):
    """The preference list (node ids, owner first) of key in a `ring --json` document."""
    return list(ring_doc["owners"][partition_of(key, ring_doc["partitions"])])


def _parsed(result):
    if result.returncode != 0:
        return None
    try:
        return result.json()
    except ValueError:
        return None


def status_of(node):
    """`status --json` of node as a dict; fails the test if it does not answer."""
    r = run_ctl(node.endpoint, "status", json_output=True, timeout_ms=int(2000 * TIME_SCALE))
    doc = _parsed(r)
    if doc is None:
        raise AssertionError("status of %s failed: %s" % (node.name, r.describe()))
    return doc


def ring_of(node):
    """`ring --json` of node as a dict; fails the test if it does not answer."""
    r = run_ctl(node.endpoint, "ring", json_output=True, timeout_ms=int(2000 * TIME_SCALE))
    doc = _parsed(r)
    if doc is None:
        raise AssertionError("ring of %s failed: %s" % (node.name, r.describe()))
    return doc


def _convergence_problem(nodes, rings, statuses):
    """None when the views agree, else what is still wrong (one line)."""
    expected = {n.node_id for n in nodes}
    for node in nodes:
        if _parsed(rings[node.name]) is None:
            return "%s: ring --json failed (exit %r)" % (node.name, rings[node.name].returncode)
        if _parsed(statuses[node.name]) is None:
            return "%s: status --json failed (exit %r)" % (node.name,
                                                         statuses[node.name].returncode)
    for node in nodes:
        status = _parsed(statuses[node.name])
        members = {m.get("node_id"): m.get("state") for m in status.get("members", [])}
        if set(members) != expected:
            return "%s sees members %s, expected %s" % (node.name, sorted(members),
                                                        sorted(expected))
        not_up = {k: v for k, v in members.items() if v != "up"}
        if not_up:
            return "%s sees members not up: %s" % (node.name, not_up)
    docs = [_parsed(rings[n.name]) for n in nodes]
    for node, doc in zip(nodes[1:], docs[1:]):
        if doc != docs[0]:
            return "%s's ring (version %r) differs from %s's (version %r)" % (
                node.name, doc.get("version"), nodes[0].name, docs[0].get("version"))
    owners = docs[0].get("owners")
    if not isinstance(owners, list) or not owners:
        return "ring has no owners list"
    if len(expected) <= len(owners):
        first = {entry[0] for entry in owners if entry}
        if first != expected:
            return "partition owners are %s, expected every member %s" % (sorted(first),
                                                                         sorted(expected))
    for node in nodes:
        status = _parsed(statuses[node.name])
        if "ring_version" in status and status["ring_version"] != docs[0].get("version"):
            return "%s's status says ring_version %r, its ring says %r" % (
                node.name, status["ring_version"], docs[0].get("version"))
    return None


def forwarded_total(nodes):
    """The writes the nodes forwarded to a replica (status "forwarded"),
    summed over the nodes."""
    total = 0
    for node in nodes:
        doc = status_of(node)
        if not isinstance(doc.get("forwarded"), int):
            raise AssertionError("status of %s has no integer \"forwarded\": %r"
                                 % (node.name, doc))
        total += doc["forwarded"]
    return total


def wait_converged(nodes, deadline=CONVERGE_DEADLINE):
    """Polls `ring --json` and `status --json` on every node until every node
    returns the identical ring document, every node's member list is exactly
    these nodes, all "up", and every node owns a partition. Returns the ring.

    On the deadline, fails with what was still wrong, every node's last ring and
    status and the tail of its log.
    """
    end = time.monotonic() + deadline
    while True:
        rings, statuses = {}, {}
        for node in nodes:
            if not node.alive():
                raise AssertionError("node %s is not running while waiting for convergence "
                                     "(exit %r); log:\n%s" % (
                                         node.name, node.proc and node.proc.returncode,
                                         node.log()[-3000:]))
            rings[node.name] = run_ctl(node.endpoint, "ring", json_output=True,
                                       timeout_ms=int(2000 * TIME_SCALE))
            statuses[node.name] = run_ctl(node.endpoint, "status", json_output=True,
                                          timeout_ms=int(2000 * TIME_SCALE))
        problem = _convergence_problem(nodes, rings, statuses)
        if problem is None:
            return _parsed(rings[nodes[0].name])
        if time.monotonic() > end:
            report = ["cluster of %d nodes did not converge within %.0f s: %s"
                      % (len(nodes), deadline, problem)]
            for node in nodes:
                ring = rings[node.name]
                report.append("---- %s (%s, %s)" % (node.name, node.endpoint,
                                                    "alive" if node.alive() else "exited"))
                report.append("ring: exit %r, %s%s" % (
                    ring.returncode, ring.out[:600], ring.stderr.strip()[-300:]))
                report.append("status: " + statuses[node.name].describe())
                report.append("log tail:\n" + node.log()[-1500:])
            raise AssertionError("\n".join(report))
        time.sleep(0.1)


def local_holders(nodes, key):
    """Which nodes' engines hold key, by `dynamoctl get KEY --local`:
    {node_id: sorted values} for the nodes that find it (exit 0); a node that
    answers anything but 0 or 3 fails the test."""
    def ask(node):
        return run_ctl(node.endpoint, "get", key, "--local", json_output=True,
                       timeout_ms=int(2000 * TIME_SCALE))

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        results = list(pool.map(ask, nodes))
    found = {}
    for node, r in zip(nodes, results):
        if r.returncode == EXIT_NOT_FOUND:
            continue
        doc = _parsed(r)
        if doc is None or doc.get("found") is not True:
            raise AssertionError("get --local on %s: %s" % (node.name, r.describe()))
        found[node.node_id] = sorted(base64.b64decode(v) for v in doc["values_b64"])
    return found


class WireClient:
    """The wire protocol (docs/protocol.md) spoken raw by one ZeroMQ DEALER to
    one node, with pipelining: for checks over thousands of keys. Not
    thread-safe (one per thread); close() it (or use `with`)."""

    VERSION = 1
    GET, PUT = 1, 2
    GET_REPLY, PUT_REPLY, ERROR = 65, 66, 127

    def __init__(self, endpoint, curve=None):
        """curve: (public key, secret key, the node's public key), Z85 text,
        for a node that requires CURVE."""
        import msgpack  # Debian's python3-msgpack and python3-zmq (see CMakeLists.txt)
        import zmq
        self._msgpack = msgpack
        self._zmq = zmq
        self.endpoint = endpoint
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            public, secret, server = (k.encode() if isinstance(k, str) else k for k in curve)
            self._sock.curve_publickey = public
            self._sock.curve_secretkey = secret
            self._sock.curve_serverkey = server
        self._sock.connect(endpoint)
        self._next_id = int.from_bytes(os.urandom(4), "big") << 16

    def close(self):
        if self._sock is not None:
            self._sock.close(0)
            self._ctx.term()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call_many(self, requests, window=32, wait_ms=WIRE_WAIT_MS):
        """Sends each request (a tuple: type, fields after the id), at most
        window at a time; returns the decoded replies in request order. Fails
        when no reply arrives for wait_ms while some are outstanding. Late
        replies to earlier calls are recognised by id and dropped."""
        replies = [None] * len(requests)
        pending = {}
        sent = 0
        while sent < len(requests) or pending:
            while sent < len(requests) and len(pending) < window:
                self._next_id += 1
                pending[self._next_id] = sent
                kind, *fields = requests[sent]
                self._sock.send(self._msgpack.packb([self.VERSION, kind, self._next_id] + list(fields),
                                                    use_bin_type=True))
                sent += 1
            if not self._sock.poll(wait_ms, self._zmq.POLLIN):
                raise AssertionError("%s: no reply within %d ms (%d of %d requests unanswered)"
                                     % (self.endpoint, wait_ms, len(pending) + len(requests) - sent,
                                        len(requests)))
            while self._sock.poll(0, self._zmq.POLLIN):
                reply = self._msgpack.unpackb(self._sock.recv(), raw=False,
                                              strict_map_key=False)
                index = pending.pop(reply[2], None) if len(reply) > 2 else None
                if index is not None:
                    replies[index] = reply
        return replies

    @staticmethod
    def _bytes(key):
        return key.encode("utf-8") if isinstance(key, str) else key

    def get_many(self, keys, local=False, r=0, **kwargs):
        return self.call_many([(self.GET, self._bytes(k), 1 if local else 0, r) for k in keys],
                              **kwargs)

    def put_many(self, items, w=0, **kwargs):
        """items: (key, value) pairs, written without a context."""
        return self.call_many([(self.PUT, self._bytes(k), self._bytes(v), b"", w)
                               for k, v in items], **kwargs)

    @classmethod
    def values_of(cls, reply):
        """Sorted values of a GET_REPLY, None when not found; an ERROR reply or
        anything else raises AssertionError."""
        if reply is None or reply[1] != cls.GET_REPLY:
            raise AssertionError("not a GET_REPLY: %r" % (reply,))
        return sorted(reply[4]) if reply[3] else None


def wire_local_holders(nodes, keys):
    """For each key, {node_id: sorted values} of the nodes whose engine holds
    it (local GETs over the wire protocol)."""
    holders = {k: {} for k in keys}
    for node in nodes:
        with WireClient(node.endpoint) as client:
            replies = client.get_many(keys, local=True)
        for key, reply in zip(keys, replies):
            values = WireClient.values_of(reply)
            if values is not None:
                holders[key][node.node_id] = values
    return holders


# ---- waiting, load and checks over many keys -------------------------------------------


def wait_until(check, deadline, what, interval=0.2):
    """Polls check() until it returns None; returns the seconds that took.

    check returns None when the condition holds, else what it observed (a
    short description or any printable value). On the deadline, fails with
    `what` and the last observation. Exceptions from check propagate.
    """
    started = time.monotonic()
    end = started + deadline
    while True:
        observed = check()
        if observed is None:
            return time.monotonic() - started
        if time.monotonic() > end:
            text = observed if isinstance(observed, str) else repr(observed)
            raise AssertionError("%s: still not true after %.1f s; last observed: %s"
                                 % (what, deadline, text[:3000]))
        time.sleep(interval)


def members_of(status):
    """{node_id: state} of a `status --json` document."""
    return {m.get("node_id"): m.get("state") for m in status.get("members", [])}


def reply_error(reply):
    """A reply that is not a GET_REPLY/PUT_REPLY, as one short line."""
    if reply is None:
        return "no reply"
    if len(reply) >= 5 and reply[1] == WireClient.ERROR:
        return "ERROR %r: %s" % (reply[3], reply[4])
    return "unexpected reply %r" % (repr(reply)[:200],)


class WriteFailure:
    """One write that was not acknowledged: when it started and ended
    (time.monotonic()), its key and why."""

    def __init__(self, started, ended, key, error):
        self.started = started
        self.ended = ended
        self.key = key
        self.error = error

    def __repr__(self):
        return "<write %s failed after %.2f s: %s>" % (self.key, self.ended - self.started,
                                                       self.error)


class Writer(threading.Thread):
    """Writes distinct keys with unique values through one node, one at a time
    over the wire protocol, until stopped (or until `keys` runs out).

    Records every acknowledged write (`acked`: {key: value bytes}, and
    `ack_times`: (time.monotonic() at the reply, key) in order) and every
    failure (`failures`: WriteFailure, with the error reply's text or "no
    reply within ..."). A write counts as acknowledged only when a PUT_REPLY
    came back; a write that got no answer is a failure (it may or may not
    have been stored: tests only check acknowledged ones).

    w: the write quorum sent with each put (0: the node's default).
    pause: seconds between two writes. keys: an iterable of keys to write
    instead of `prefix-NNNNNN`; value_of(key, i) -> bytes the values.
    """

    def __init__(self, endpoint, w=0, prefix="writer", pause=0.01, wait_ms=None,
                 keys=None, value_of=None):
        super().__init__(daemon=True, name="writer-" + prefix)
        self.endpoint = endpoint
        self.w = w
        self.prefix = prefix
        self.pause = pause
        self.wait_ms = wait_ms if wait_ms is not None else int(5000 * TIME_SCALE)
        self._keys = iter(keys) if keys is not None else None
        token = base64.b32encode(os.urandom(5)).decode().lower()
        self._value_of = value_of or (lambda key, i: ("%s=%d#%s" % (key, i, token)).encode())
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.acked = {}
        self.ack_times = []
        self.failures = []
        self.attempts = 0
        self.crash = None  # an exception that ended the thread early

    def _next_key(self, i):
        if self._keys is None:
            return "%s-%06d" % (self.prefix, i)
        return next(self._keys, None)

    def run(self):
        try:
            with WireClient(self.endpoint) as client:
                i = 0
                while not self._stopping.is_set():
                    key = self._next_key(i)
                    if key is None:
                        break
                    value = self._value_of(key, i)
                    i += 1
                    started = time.monotonic()
                    try:
                        reply = client.put_many([(key, value)], w=self.w,
                                                wait_ms=self.wait_ms)[0]
                        error = None if reply[1] == WireClient.PUT_REPLY else reply_error(reply)
                    except AssertionError:
                        error = "no reply within %d ms" % self.wait_ms
                    ended = time.monotonic()
                    with self._lock:
                        self.attempts += 1
                        if error is None:
                            self.acked[key] = value
                            self.ack_times.append((ended, key))
                        else:
                            self.failures.append(WriteFailure(started, ended, key, error))
                    if self.pause:
                        self._stopping.wait(self.pause)
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.crash = e

    def stop(self, check=True):
        """Stops the thread and waits for it; with check, fails if it crashed."""
        self._stopping.set()
        if self.is_alive():
            self.join(self.wait_ms / 1000.0 + 10 * TIME_SCALE)
        if check and self.is_alive():
            raise AssertionError("writer to %s did not stop" % self.endpoint)
        if check and self.crash is not None:
            raise AssertionError("writer to %s crashed: %r" % (self.endpoint, self.crash))
        return self

    def acked_count(self, since=None, until=None):
        """Writes acknowledged with since <= reply time < until."""
        with self._lock:
            return sum(1 for t, _ in self.ack_times
                       if (since is None or t >= since) and (until is None or t < until))

    def snapshot(self):
        """(acked dict copy, failures list copy, attempts)."""
        with self._lock:
            return dict(self.acked), list(self.failures), self.attempts

    def summary(self):
        with self._lock:
            return "%d writes to %s: %d acknowledged, %d failed" % (
                self.attempts, self.endpoint, len(self.acked), len(self.failures))


def put_all(endpoint, items, w=0, window=32):
    """Writes (key, value) pairs through one node (pipelined, no context);
    returns (acked {key: value}, failed {key: error text})."""
    items = [(WireClient._bytes(k).decode("utf-8"), WireClient._bytes(v)) for k, v in items]
    with WireClient(endpoint) as client:
        replies = client.put_many(items, w=w, window=window)
    acked, failed = {}, {}
    for (key, value), reply in zip(items, replies):
        if reply is not None and reply[1] == WireClient.PUT_REPLY:
            acked[key] = value
        else:
            failed[key] = reply_error(reply)
    return acked, failed


def read_mismatches(endpoint, expected, r=0, local=False, window=32):
    """Reads every key of expected ({key: value bytes, or a list of sibling
    values}) through one node (default R unless r; local: that node's engine
    only) and returns {key: what came back} for every key whose sorted values
    differ: a list of values, None for not found, or an error text."""
    keys = sorted(expected)
    with WireClient(endpoint) as client:
        replies = client.get_many(keys, local=local, r=r, window=window)
    wrong = {}
    for key, reply in zip(keys, replies):
        want = expected[key]
        want = sorted(want) if isinstance(want, (list, tuple)) else [want]
        if reply is not None and reply[1] == WireClient.GET_REPLY:
            got = WireClient.values_of(reply)
        else:
            got = reply_error(reply)
        if got != want:
            wrong[key] = got
    return wrong


def describe_mismatches(wrong, expected, limit=5):
    """A few mismatches of read_mismatches as text: key, what came back, what
    was expected."""
    parts = []
    for key in sorted(wrong)[:limit]:
        want = expected[key]
        want = sorted(want) if isinstance(want, (list, tuple)) else [want]
        parts.append("%s: got %s, expected %s" % (key, repr(wrong[key])[:160],
                                                  repr(want)[:160]))
    return "; ".join(parts)


# ---- network partitions with iptables --------------------------------------------------


class IptablesError(Exception):
    pass


class IptablesPartition:
    """Drops packets between loopback hosts, in both directions, with rules in
    a chain of its own (jumped to from INPUT), so cleanup removes exactly what
    it added. Clients on 127.0.0.1 (not a node's host) still reach every node.

        part = self.iptables_partition()   # fails when iptables is unusable
        part.isolate("127.0.0.13", ["127.0.0.11", "127.0.0.12"])
        ...
        part.heal()                        # back to full connectivity

    close() (registered as a cleanup) flushes and deletes the chain and the
    jump, and never raises.
    """

    _count = 0

    def __init__(self):
        IptablesPartition._count += 1
        # iptables chain names are at most 28 characters.
        self.chain = ("DYNAMO-IT-%d-%d" % (os.getpid(), IptablesPartition._count))[:28]
        self.opened = False
        self.cut = []  # (host, host) pairs currently dropped, each direction

    @staticmethod
    def iptables():
        return system_tool("iptables")

    @classmethod
    def unavailable_reason(cls):
        """Why partitions cannot be made here, or None."""
        if as_root() is None:
            return "network partition tests need iptables: " + NO_PRIVILEGE
        if not cls.iptables():
            return "iptables is not installed: run packaging/bootstrap.sh"
        return None

    def _run(self, *args):
        argv = as_root() + [self.iptables(), "-w", "5"] + list(args)
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=30)
        if proc.returncode != 0:
            raise IptablesError("%s exited %d: %s" % (" ".join(argv), proc.returncode,
                                                      proc.stderr.decode("utf-8", "replace")
                                                      .strip()))
        return proc.stdout.decode("utf-8", "replace")

    def open(self):
        """Creates the chain and the jump to it, after removing chains that
        earlier runs of these tests left behind (killed before cleanup), and
        checks that a rule can be added. Raises IptablesError."""
        self._remove_stale_chains()
        self._run("-N", self.chain)
        self.opened = True
        self._run("-I", "INPUT", "1", "-j", self.chain)
        self._run("-A", self.chain, "-s", "127.0.0.254", "-d", "127.0.0.254", "-j", "DROP")
        self._run("-F", self.chain)
        return self

    def _remove_stale_chains(self):
        """Chains named DYNAMO-IT-<pid>-<n> whose process no longer exists."""
        try:
            listing = self._run("-S")
        except (IptablesError, OSError, subprocess.SubprocessError):
            return
        for name in sorted(set(re.findall(r"^-N (DYNAMO-IT-(\d+)-\d+)$", listing, re.M))):
            chain, pid = name[0], int(name[1])
            if pid == os.getpid() or os.path.exists("/proc/%d" % pid):
                continue
            stale = IptablesPartition.__new__(IptablesPartition)
            stale.chain, stale.opened, stale.cut = chain, True, []
            stale.close()

    def drop(self, src, dst):
        """Drops packets from src to dst (one direction)."""
        self._run("-A", self.chain, "-s", src, "-d", dst, "-j", "DROP")
        self.cut.append((src, dst))

    def isolate(self, host, others):
        """Cuts host off from every host of others, both directions."""
        for other in others:
            self.drop(host, other)
            self.drop(other, host)

    def heal(self):
        """Removes every rule of the chain (the chain and jump stay until close)."""
        self._run("-F", self.chain)
        self.cut = []

    def rules(self):
        """The chain's rules as iptables -S prints them."""
        return self._run("-S", self.chain)

    def close(self):
        """Removes the jump and the chain; never raises (returns the problems)."""
        problems = []
        if not self.opened:
            return problems
        steps = [("-F", self.chain)]
        # The jump may have been inserted more than once by nobody but us;
        # delete until it is gone.
        for _ in range(10):
            steps.append(("-D", "INPUT", "-j", self.chain))
        steps.append(("-X", self.chain))
        jump_gone = False
        for step in steps:
            if step[0] == "-D" and jump_gone:
                continue
            try:
                self._run(*step)
            except (IptablesError, OSError, subprocess.SubprocessError) as e:
                if step[0] == "-D":
                    jump_gone = True
                else:
                    problems.append(str(e))
        self.opened = bool(problems)
        self.cut = []
        return problems

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


# ---- the mysql engine against a private MariaDB server ----------------------------------
#
# test.sh starts a private MariaDB server (tests/mariadb/mariadb.sh) and exports
# where it is; tests give every node a table of its own in the shared test
# database, and a test that stops MariaDB starts a server of its own
# (MySQLTestCase.start_private_mariadb).

MARIADB_SH = os.path.join(_REPO, "tests", "mariadb", "mariadb.sh")
MYSQL_ENV = ("DYNAMO_TEST_MYSQL_SOCKET", "DYNAMO_TEST_MYSQL_HOST", "DYNAMO_TEST_MYSQL_PORT",
             "DYNAMO_TEST_MYSQL_USER", "DYNAMO_TEST_MYSQL_PASSWORD",
             "DYNAMO_TEST_MYSQL_DATABASE")
MARIADB_DEADLINE = 60.0 * TIME_SCALE  # one mariadb.sh or mariadb client run


class MySQLConfig:
    """Where a MariaDB server is and how to log in: socket, host, port, user,
    password, database (the DYNAMO_TEST_MYSQL_* variables, or a private
    server's env file)."""

    def __init__(self, values):
        self.socket = values["DYNAMO_TEST_MYSQL_SOCKET"]
        self.host = values["DYNAMO_TEST_MYSQL_HOST"]
        self.port = int(values["DYNAMO_TEST_MYSQL_PORT"])
        self.user = values["DYNAMO_TEST_MYSQL_USER"]
        self.password = values["DYNAMO_TEST_MYSQL_PASSWORD"]
        self.database = values["DYNAMO_TEST_MYSQL_DATABASE"]

    @classmethod
    def from_environment(cls):
        """The shared test server; raises AssertionError (the test fails, it
        is not skipped) when the environment does not say where it is."""
        missing = [name for name in MYSQL_ENV if not os.environ.get(name)]
        if missing:
            raise AssertionError(
                "the mysql engine tests need a MariaDB server, but %s %s not set: run "
                "./test.sh (it starts one), or `bash tests/mariadb/mariadb.sh start DIR` "
                "and `source <(bash tests/mariadb/mariadb.sh env DIR)` first"
                % (", ".join(missing), "is" if len(missing) == 1 else "are"))
        return cls(os.environ)

    @classmethod
    def from_env_file(cls, path):
        """The export lines mariadb.sh writes to DIR/env."""
        values = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"^export (\w+)=(.*)$", line.strip())
                if m:
                    # mariadb.sh quotes with printf %q; its values need no quoting.
                    values[m.group(1)] = m.group(2)
        return cls(values)

    def backend_args(self, table, password=True, database=None, **options):
        """--backend-opt arguments for a node on this server over the socket:
        socket, user, password (unless password is False or a string to use
        instead), database, table, then options (key=value, in order)."""
        opts = [("socket", self.socket), ("user", self.user)]
        if password is True:
            opts.append(("password", self.password))
        elif isinstance(password, str):
            opts.append(("password", password))
        opts += [("database", database or self.database), ("table", table)]
        opts += list(options.items())
        args = []
        for key, value in opts:
            args += ["--backend-opt", "%s=%s" % (key, value)]
        return args

    def sql(self, statements, database=None, check=True):
        """Runs statements with the `mariadb` client over the socket (as the
        test user); returns a Result (stdout: tab-separated rows, no header).
        With check, fails the test on a non-zero exit."""
        argv = ["mariadb", "--no-defaults", "--socket=" + self.socket, "--user=" + self.user,
                "--batch", "--skip-column-names", "--connect-timeout=5",
                "--database=" + (database or self.database), "-e", statements]
        env = dict(os.environ, MYSQL_PWD=self.password)
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env, timeout=MARIADB_DEADLINE)
        except FileNotFoundError as e:
            raise AssertionError("the mariadb client is not installed "
                                 "(Debian package mariadb-client)") from e
        result = Result(argv, proc.returncode, proc.stdout, proc.stderr)
        if check and result.returncode != 0:
            raise AssertionError("SQL failed: " + result.describe())
        return result

    def rows(self, statements, database=None):
        """The rows of a query, each a list of column texts."""
        return [line.split("\t") for line in self.sql(statements, database).out.splitlines()]


def mysql_quote_name(name):
    return "`" + name.replace("`", "``") + "`"


def unique_mysql_name(prefix="it"):
    """A table (or database) name no other test uses, [a-z0-9_] only."""
    return "%s_%d_%s" % (prefix, os.getpid(), os.urandom(5).hex())


def delete_key_rows(config, table, key):
    """Deletes the row(s) of key from an engine's table behind the node's
    back: tries each string or binary column of the table for one equal to
    key and returns the number of rows deleted (fails when none matched)."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    columns = config.rows(
        "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION"
        % table.replace("'", "''"))
    if not columns:
        raise AssertionError("table %s.%s does not exist" % (config.database, table))
    textual = ("binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob", "char",
               "varchar", "text", "tinytext", "mediumtext", "longtext")
    for name, data_type in columns:
        if data_type.lower() not in textual:
            continue
        out = config.sql("DELETE FROM %s WHERE %s = X'%s'; SELECT ROW_COUNT();"
                         % (mysql_quote_name(table), mysql_quote_name(name), key.hex())).out
        deleted = int(out.split()[-1])
        if deleted > 0:
            return deleted
    raise AssertionError("no column of %s holds the key %r; columns: %r"
                         % (table, key, columns))


class PrivateMariaDB:
    """A MariaDB server of one test's own (tests/mariadb/mariadb.sh in its
    folder): start, stop (the data stays) and destroy."""

    def __init__(self, folder):
        self.folder = folder

    def _run(self, command):
        argv = ["bash", MARIADB_SH, command, self.folder]
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=MARIADB_DEADLINE)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("%s did not finish within %.0f s" % (" ".join(argv),
                                                                     MARIADB_DEADLINE)) from e
        result = Result(argv, proc.returncode, proc.stdout, proc.stderr)
        if result.returncode != 0:
            raise AssertionError("MariaDB %s failed: %s" % (command, result.describe()))
        return result

    def start(self):
        self._run("start")
        return self

    def stop(self):
        self._run("stop")

    def destroy(self):
        """Never fails."""
        try:
            self._run("destroy")
        except AssertionError:
            pass

    def config(self):
        return MySQLConfig.from_env_file(os.path.join(self.folder, "env"))


class MySQLTestCase(DynamoTestCase):
    """DynamoTestCase plus the shared MariaDB server (self.mysql, a
    MySQLConfig; the test fails when the environment does not name one)."""

    def setUp(self):
        super().setUp()
        self.mysql = MySQLConfig.from_environment()

    def mysql_table(self, config=None, prefix="it"):
        """A fresh table name in config's database, dropped at cleanup (after
        the nodes started later have stopped)."""
        config = config or self.mysql
        table = unique_mysql_name(prefix)

        def drop():
            try:
                config.sql("DROP TABLE IF EXISTS %s" % mysql_quote_name(table), check=False)
            except (AssertionError, OSError, subprocess.SubprocessError):
                pass

        self.addCleanup(drop)
        return table

    def mysql_node_args(self, config=None, table=None, **kwargs):
        """(table, --backend-opt arguments) for a node with a table of its own."""
        config = config or self.mysql
        table = table or self.mysql_table(config)
        return table, config.backend_args(table, **kwargs)

    def start_private_mariadb(self):
        """A started MariaDB server of this test's own, destroyed at cleanup
        (after the nodes started later have stopped)."""
        server = PrivateMariaDB(os.path.join(self.make_temp_dir(), "mariadb"))
        self.addCleanup(server.destroy)
        return server.start()
