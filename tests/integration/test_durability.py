"""The file engine on one node survives crashes (DESIGN.md 3.4): what was
acknowledged with sync=always is there after kill -9; a torn or garbage tail
of the newest segment is dropped at recovery, never served; SIGTERM exits 0
after flushing."""

import ctypes
import mmap
import os
import random
import re
import signal
import time
import unittest

from harness import DynamoTestCase, status_of

SEGMENT_NAME = re.compile(r"^\d{10}\.log$")


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_MAP_FAILED = ctypes.c_void_p(-1).value


def resident_pages(path):
    """How many pages of the file are in the page cache (mincore(2) on a
    mapping that is never touched, so it brings nothing in)."""
    size = os.path.getsize(path)
    if size == 0:
        return 0
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, _MAP_FAILED):
            raise OSError(ctypes.get_errno(), "mmap " + path)
        try:
            pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
            vec = ctypes.create_string_buffer(pages)
            if _libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore " + path)
            return sum(b & 1 for b in vec.raw)
        finally:
            _libc.munmap(addr, size)
    finally:
        os.close(fd)


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
                         {"on": "loop_single_key", "retried_on_workers": 0,
                          "worker_threads": 4})
        expected = self.write_keys(node, 100)
        # A page under writeback is locked, and preadv2(RWF_NOWAIT) gives
        # EAGAIN for it although it is in the cache: write the pages back
        # first, so that the reads below meet only clean, cached pages.
        self.sync_segments(node)
        contexts = {k: self.get_json(node, k)[1] for k in list(expected)[:20]}
        # The kernel may also refuse a NOWAIT read of a cached page that it
        # holds locked for a moment (reclaim, migration); under other I/O that
        # happens now and then. So the rule is shown by a pass of every read
        # with none retried, within a few passes; a node that sent cached
        # reads to workers retries in every pass.
        clean_pass = False
        for _ in range(5):
            before = status_of(node)["engine_calls"]["retried_on_workers"]
            self.sync_segments(node)
            self.assertEqual(self.resident_fraction(node), 1.0)
            self.assert_served(node, expected)
            if status_of(node)["engine_calls"]["retried_on_workers"] == before:
                clean_pass = True
                break
        self.assertTrue(clean_pass, "reads of cached records were retried on workers in "
                        "every pass: %r" % status_of(node)["engine_calls"])
        self.evict_segments(node)
        first_miss = status_of(node)["engine_calls"]["retried_on_workers"]
        self.assert_served(node, expected)
        # The first miss reads the page back (with read-ahead); later reads
        # of records on it are hits again.
        self.assertGreater(status_of(node)["engine_calls"]["retried_on_workers"], first_miss)
        # A put reads the stored set first: off the loop too after an eviction,
        # and it supersedes what its context saw (no sibling).
        for key, context in contexts.items():
            self.evict_segments(node)
            before = status_of(node)["engine_calls"]["retried_on_workers"]
            expected[key] = ("new-" + key).encode()
            self.put(node, key, expected[key].decode(), context=context)
            self.assertGreater(status_of(node)["engine_calls"]["retried_on_workers"], before,
                               "the put of %s after an eviction stayed on the loop" % key)
        self.assert_served(node, expected)
        node.kill9()
        node.restart()
        self.assert_served(node, expected)

    def evict_segments(self, node):
        """Makes the node's segments clean and drops them from the page cache,
        as memory pressure would. POSIX_FADV_DONTNEED skips a page that is
        still being read in (the read-ahead of a worker's read that just
        returned), so it is repeated until mincore(2) sees no page resident."""
        deadline = time.monotonic() + 10
        while True:
            self.sync_segments(node, evict=True)
            resident = sum(resident_pages(path) for path in self.segment_paths(node))
            if resident == 0:
                return
            self.assertLess(time.monotonic(), deadline,
                            "%d pages of the segments stay in the page cache" % resident)
            time.sleep(0.01)

    def resident_fraction(self, node):
        """The share of the segments' pages in the page cache."""
        paths = self.segment_paths(node)
        pages = sum((os.path.getsize(p) + mmap.PAGESIZE - 1) // mmap.PAGESIZE for p in paths)
        return sum(resident_pages(p) for p in paths) / pages if pages else 1.0

    def segment_paths(self, node):
        folder = node.file_engine_dir
        return [os.path.join(folder, n) for n in os.listdir(folder) if SEGMENT_NAME.match(n)]

    def sync_segments(self, node, evict=False):
        """Writes the node's segments back (their pages clean and unlocked
        when this returns); with evict, drops them from the page cache too."""
        for path in self.segment_paths(node):
            fd = os.open(path, os.O_RDONLY)
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
