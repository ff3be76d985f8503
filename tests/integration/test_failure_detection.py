"""Local failure detection (paper 4.8.3): a member that leaves requests
unanswered for longer than --failure-timeout-ms is down in the other nodes'
status; a shorter pause never marks it down; it comes back up once it
answers again."""

import os
import signal
import time
import unittest

from harness import DynamoTestCase, TIME_SCALE

FAILURE_TIMEOUT_MS = 2000


class FailureDetectionTest(DynamoTestCase):

    def setUp(self):
        super().setUp()
        self.nodes = self.start_cluster(
            3, extra_args=["--failure-timeout-ms", str(FAILURE_TIMEOUT_MS)])
        self.observer, _, self.paused = self.nodes
        self.addCleanup(self.resume)

    def resume(self):
        if self.paused.alive():
            os.kill(self.paused.proc.pid, signal.SIGCONT)

    def state_of(self, node_id):
        doc = self.ctl_ok(self.observer, "status", json_output=True).json()
        states = {m["node_id"]: m["state"] for m in doc["members"]}
        return states[node_id]

    def wait_state(self, node_id, want, deadline_s):
        end = time.monotonic() + deadline_s * TIME_SCALE
        seen = []
        while time.monotonic() < end:
            state = self.state_of(node_id)
            seen.append(state)
            if state == want:
                return time.monotonic()
            time.sleep(0.1)
        self.fail("%s never became %s; states seen: %s" % (node_id, want, seen[-10:]))

    def test_short_pause_is_not_down_long_pause_is_and_it_comes_back(self):
        paused_id = self.paused.node_id
        self.assertEqual(self.state_of(paused_id), "up")

        # A pause well under the timeout: never reported down, while the
        # observer keeps probing and writing through it.
        os.kill(self.paused.proc.pid, signal.SIGSTOP)
        end = time.monotonic() + FAILURE_TIMEOUT_MS / 1000 / 3
        written = []
        while time.monotonic() < end:
            self.assertEqual(self.state_of(paused_id), "up")
            written.append("short-pause-%d" % len(written))
            self.ctl_ok(self.observer, "put", written[-1], "v")
            time.sleep(0.05)
        os.kill(self.paused.proc.pid, signal.SIGCONT)
        time.sleep(FAILURE_TIMEOUT_MS / 1000 * 1.5)
        self.assertEqual(self.state_of(paused_id), "up")

        # A pause past the timeout: down, then up again after SIGCONT.
        os.kill(self.paused.proc.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        went_down = self.wait_state(paused_id, "down", FAILURE_TIMEOUT_MS / 1000 * 4)
        self.assertGreaterEqual(went_down - stopped, FAILURE_TIMEOUT_MS / 1000 * 0.9,
                                "marked down before the failure timeout")
        # Writes with W=2 keep succeeding meanwhile (two replicas answer).
        written.append("long-pause")
        self.ctl_ok(self.observer, "put", written[-1], "v")
        os.kill(self.paused.proc.pid, signal.SIGCONT)
        self.wait_state(paused_id, "up", FAILURE_TIMEOUT_MS / 1000 * 4)
        # Every acknowledged write is readable through the resumed node.
        for key in written:
            self.assertEqual(self.get_json(self.paused, key)[0], [b"v"])


if __name__ == "__main__":
    unittest.main()
