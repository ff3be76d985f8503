"""The file engine on one node survives crashes (DESIGN.md 3.4): what was
acknowledged with sync=always is there after kill -9; a torn or garbage tail
of the newest segment is dropped at recovery, never served; SIGTERM exits 0
after flushing."""

import os
import random
import re
import signal
import unittest

from harness import DynamoTestCase, status_of

SEGMENT_NAME = re.compile(r"^\d{10}\.log$")


class DurabilityTest(DynamoTestCase):

    def start_file_node(self, sync="always"):
        return self.start_node(backend="file", extra_args=["--backend-opt", "sync=" + sync])

    def newest_segment(self, node):
        folder = os.path.join(node.data_dir, "file")
        self.assertTrue(os.path.isdir(folder), "the file engine keeps its data in %s" % folder)
        segments = sorted(n for n in os.listdir(folder) if SEGMENT_NAME.match(n))
        self.assertTrue(segments, "no NNNNNNNNNN.log segment in %s: %r"
                        % (folder, os.listdir(folder)))
        return os.path.join(folder, segments[-1])

    def write_keys(self, node, count, prefix="k"):
        expected = {}
        for i in range(count):
            key = "%s%d" % (prefix, i)
            value = ("value-%d-" % i).encode() + os.urandom(8).hex().encode()
            self.put(node, key, value.decode())
            expected[key] = value
        return expected

    def assert_served(self, node, expected):
        for key, value in expected.items():
            got = self.get_json(node, key)
            self.assertIsNotNone(got, "acknowledged key %s lost; node log:\n%s"
                                 % (key, node.log()[-3000:]))
            self.assertEqual(got[0], [value], "key %s" % key)

    def test_acknowledged_writes_survive_kill_9(self):
        node = self.start_file_node()
        expected = self.write_keys(node, 200)
        node.kill9()
        node.restart()
        self.assert_served(node, expected)

    def test_default_sync_interval_survives_kill_9_of_the_process(self):
        # sync=interval (the default) acknowledges after write(): the record is
        # in the page cache, which outlives the process (docs/file-engine.md).
        node = self.start_node(backend="file")
        expected = self.write_keys(node, 200)
        node.kill9()
        node.restart()
        self.assert_served(node, expected)

    def test_records_out_of_the_page_cache_are_read_from_the_disk_off_the_loop(self):
        # sync=interval: single-key calls run on the node's loop; a read the
        # page cache cannot answer runs again on a worker (docs/design.md).
        # (cache_bytes=0: without the engine's value cache, so reads go to the file.)
        node = self.start_node(backend="file",
                               extra_args=["--backend-opt", "sync_interval_ms=20",
                                           "--backend-opt", "cache_bytes=0"])
        self.assertEqual(status_of(node)["engine_calls"],
                         {"on": "loop_single_key", "retried_on_workers": 0})
        expected = self.write_keys(node, 100)
        # A page under writeback is locked, and preadv2(RWF_NOWAIT) gives
        # EAGAIN for it although it is in the cache: write the pages back
        # first, so that the reads below meet only clean, cached pages.
        self.sync_segments(node)
        contexts = {k: self.get_json(node, k)[1] for k in list(expected)[:20]}
        self.assert_served(node, expected)
        self.assertEqual(status_of(node)["engine_calls"]["retried_on_workers"], 0)
        self.evict_segments(node)
        self.assert_served(node, expected)
        # The first miss reads the page back (with read-ahead); later reads
        # of records on it are hits again.
        retried = status_of(node)["engine_calls"]["retried_on_workers"]
        self.assertGreater(retried, 0)
        # A put reads the stored set first: off the loop too after an eviction,
        # and it supersedes what its context saw (no sibling).
        for key, context in contexts.items():
            self.evict_segments(node)
            expected[key] = ("new-" + key).encode()
            self.put(node, key, expected[key].decode(), context=context)
        self.assertGreaterEqual(status_of(node)["engine_calls"]["retried_on_workers"],
                                retried + len(contexts))
        self.assert_served(node, expected)
        node.kill9()
        node.restart()
        self.assert_served(node, expected)

    def evict_segments(self, node):
        """Makes the node's segments clean and drops them from the page cache,
        as memory pressure would."""
        self.sync_segments(node, evict=True)

    def sync_segments(self, node, evict=False):
        """Writes the node's segments back (their pages clean and unlocked
        when this returns); with evict, drops them from the page cache too."""
        folder = node.file_engine_dir
        for name in os.listdir(folder):
            if SEGMENT_NAME.match(name):
                fd = os.open(os.path.join(folder, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                    if evict:
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)

    def test_a_node_with_sync_always_calls_its_engine_on_workers(self):
        node = self.start_file_node("always")
        self.assertEqual(status_of(node)["engine_calls"]["on"], "workers")
        memory = self.start_node(backend="memory")
        self.assertEqual(status_of(memory)["engine_calls"]["on"], "loop")

    def test_torn_tail_is_dropped(self):
        node = self.start_file_node()
        expected = self.write_keys(node, 100)
        node.kill9()
        segment = self.newest_segment(node)
        size = os.path.getsize(segment)
        self.assertGreater(size, 16, segment)
        # Tear the last record (the put of k99) by cutting its last bytes.
        with open(segment, "r+b") as f:
            f.truncate(size - 3)
        node.restart()

        last = expected.pop("k99")
        self.assert_served(node, expected)
        got = self.get_json(node, "k99")
        if got is not None:  # absent is right; a value must never be garbage
            self.assertEqual(got[0], [last])

        # Recovery must leave the log appendable: new writes after the torn
        # record survive the next crash too.
        expected.update(self.write_keys(node, 5, prefix="after"))
        node.kill9()
        node.restart()
        self.assert_served(node, expected)

    def test_garbage_tail_is_dropped(self):
        node = self.start_file_node()
        expected = self.write_keys(node, 100)
        node.kill9()
        segment = self.newest_segment(node)
        rng = random.Random(1234)
        garbage = bytes(rng.randrange(256) for _ in range(97))
        with open(segment, "ab") as f:
            f.write(garbage)
        node.restart()
        self.assert_served(node, expected)

        expected.update(self.write_keys(node, 5, prefix="after"))
        node.kill9()
        node.restart()
        self.assert_served(node, expected)

    def test_sigterm_and_sigint_exit_0_and_keep_the_data(self):
        # The default sync policy: a clean stop must flush what is buffered.
        node = self.start_node(backend="file")
        expected = self.write_keys(node, 50)
        rc = node.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, "dynamod exit status on SIGTERM; log:\n" + node.log()[-3000:])
        node.restart()
        self.assert_served(node, expected)

        expected.update(self.write_keys(node, 10, prefix="int"))
        rc = node.stop(signal.SIGINT)
        self.assertEqual(rc, 0, "dynamod exit status on SIGINT; log:\n" + node.log()[-3000:])
        node.restart()
        self.assert_served(node, expected)

    def test_sync_never_still_flushes_on_sigterm(self):
        node = self.start_file_node(sync="never")
        expected = self.write_keys(node, 20)
        self.assertEqual(node.stop(signal.SIGTERM), 0, node.log()[-3000:])
        node.restart()
        self.assert_served(node, expected)

    def test_deletes_survive_kill_9(self):
        node = self.start_file_node()
        self.put(node, "gone", "soon")
        _, ctx = self.get_json(node, "gone")
        self.delete(node, "gone", context=ctx)
        self.put(node, "stays", "here")
        node.kill9()
        node.restart()
        self.assertIsNone(self.get_json(node, "gone"))
        self.assertEqual(self.get_json(node, "stays")[0], [b"here"])


if __name__ == "__main__":
    unittest.main()
