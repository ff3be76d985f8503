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

Nodes only ever listen on 127.0.0.1.
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))

BIN_DIR = os.environ.get("DYNAMO_BIN_DIR") or os.path.join(_REPO, "build", "bin")
PLUGIN_DIR = os.environ.get("DYNAMO_PLUGIN_DIR") or os.path.join(
    BIN_DIR, os.pardir, "lib", "dynamo", "plugins")
TEST_PLUGIN_DIR = os.environ.get("DYNAMO_TEST_PLUGIN_DIR") or os.path.join(
    BIN_DIR, os.pardir, "test-plugins")
DYNAMOD = os.path.join(BIN_DIR, "dynamod")
DYNAMOCTL = os.path.join(BIN_DIR, "dynamoctl")

TIME_SCALE = float(os.environ.get("DYNAMO_TEST_TIME_SCALE", "1"))
READY_DEADLINE = 10.0 * TIME_SCALE   # seconds for a node to answer `status`
STOP_DEADLINE = 10.0 * TIME_SCALE    # seconds for a node to exit after SIGTERM
CTL_DEADLINE = 30.0 * TIME_SCALE     # seconds for one dynamoctl run

# dynamoctl exit codes (DESIGN.md 3.2).
EXIT_OK = 0
EXIT_OTHER = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_QUORUM = 4
EXIT_REJECTED = 5

KEY_LIMIT = 64 * 1024
VALUE_LIMIT = 1024 * 1024

_BIND_FAILURE = re.compile(r"in use|eaddrinuse|cannot bind|can't bind|bind", re.I)


def free_port():
    """A loopback TCP port that was free a moment ago (bind port 0, release).

    Another process may take it before the caller binds it; Node.start retries
    with a new port when dynamod reports a bind failure.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def endpoint_of(port):
    return "tcp://127.0.0.1:%d" % port


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


def run_ctl(endpoint, *args, json_output=False, timeout_ms=None, input=None,
            deadline=CTL_DEADLINE):
    """Runs `dynamoctl [--node EP] [--json] [--timeout-ms MS] ARGS...`.

    endpoint None leaves --node out. input (bytes) goes to stdin; without it
    stdin is empty (never the test runner's terminal).
    """
    argv = [DYNAMOCTL]
    if endpoint is not None:
        argv += ["--node", endpoint]
    if json_output:
        argv.append("--json")
    if timeout_ms is not None:
        argv += ["--timeout-ms", str(timeout_ms)]
    argv += list(args)
    try:
        proc = subprocess.run(argv, input=input if input is not None else b"",
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=deadline)
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
                 data_dir=None, node_id=None, args_override=None):
        self.name = name
        self.backend = backend
        self.extra_args = list(extra_args)
        self.fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.node_id = node_id
        # When set, dynamod gets exactly these arguments (e.g. only --config).
        self.args_override = args_override
        self.data_dir = data_dir or os.path.join(work_dir, name + "-data")
        self.log_path = os.path.join(work_dir, name + ".log")
        self.proc = None
        self.starts = 0

    @property
    def endpoint(self):
        return endpoint_of(self.port)

    def argv(self):
        if self.args_override is not None:
            return [DYNAMOD] + list(self.args_override)
        argv = [DYNAMOD, "--listen", self.endpoint, "--data-dir", self.data_dir,
                "--backend", self.backend]
        if self.node_id is not None:
            argv += ["--node-id", self.node_id]
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
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log)

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
                self.port = free_port()
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
        self.addCleanup(node.cleanup)
        node.start(wait=wait)
        return node

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
