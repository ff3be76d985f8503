"""The wire protocol (DESIGN.md 3.5) spoken raw with a ZeroMQ DEALER against a
live node: exact reply shapes for valid requests, ERROR replies for unknown
or malformed ones, and a seeded fuzz loop after which the node still serves.

Every message is one frame holding one msgpack array
[protocol_version=1, type, request_id, fields...]."""

import os
import random
import unittest

import msgpack
import zmq

from harness import DynamoTestCase, TIME_SCALE, KEY_LIMIT, VALUE_LIMIT, status_of

VERSION = 1
GET, PUT, DEL, STATUS = 1, 2, 3, 4
GET_REPLY, PUT_REPLY, STATUS_REPLY, ERROR = 65, 66, 68, 127
# Node-to-node replies a fuzzed request may also draw (docs/protocol.md).
RING_REPLY, REPLICA_GET_REPLY, ACK, GOSSIP_REPLY, BATCH_REPLY = 69, 80, 81, 84, 94
BATCH = 30
REPLY_TYPES = {GET_REPLY, PUT_REPLY, STATUS_REPLY, RING_REPLY, REPLICA_GET_REPLY, ACK,
               GOSSIP_REPLY, BATCH_REPLY, ERROR}
E_NOT_FOUND, E_INVALID, E_UNAVAILABLE, E_TIMEOUT = 1, 2, 3, 4
E_CORRUPTION, E_IO, E_UNSUPPORTED, E_INTERNAL = 5, 6, 7, 8
ERROR_CODES = set(range(1, 9))

REPLY_WAIT_MS = int(5000 * TIME_SCALE)  # a reply that must come
SILENCE_WAIT_MS = int(1000 * TIME_SCALE)  # how long "no reply" is waited for


def pack(*items):
    return msgpack.packb(list(items), use_bin_type=True)


def unpack(frame):
    return msgpack.unpackb(frame, raw=False, strict_map_key=False)


class _ProtocolCases:
    BACKEND = None

    def setUp(self):
        super().setUp()
        self.node = self.start_node(backend=self.BACKEND)
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.term)
        self.sock = self.connect()
        self.next_id = 1000

    def connect(self):
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.node.endpoint)
        self.addCleanup(sock.close, 0)
        return sock

    def new_id(self):
        self.next_id += 1
        return self.next_id

    # ---- exchanges -------------------------------------------------------------

    def recv_reply(self, wait_ms=REPLY_WAIT_MS, sock=None):
        """The next reply, decoded and shape-checked, or None after wait_ms."""
        sock = sock or self.sock
        if not sock.poll(wait_ms, zmq.POLLIN):
            return None
        frames = sock.recv_multipart()
        self.assertEqual(len(frames), 1, "a reply is one frame: %r" % frames)
        try:
            reply = unpack(frames[0])
        except Exception as e:  # noqa: BLE001 - any decode failure is the node's bug
            self.fail("reply is not msgpack (%s): %r" % (e, frames[0][:200]))
        self.assert_reply_shape(reply)
        return reply

    def exchange(self, frame, wait_ms=REPLY_WAIT_MS):
        """Sends one frame and returns the decoded reply (fails without one)."""
        self.sock.send(frame)
        reply = self.recv_reply(wait_ms)
        self.assertIsNotNone(reply, "no reply within %d ms to %r; node alive: %s; log:\n%s"
                             % (wait_ms, frame[:100], self.node.alive(), self.node.log()[-2000:]))
        return reply

    def assert_reply_shape(self, reply):
        self.assertIsInstance(reply, list, "a reply is a msgpack array: %r" % (reply,))
        self.assertGreaterEqual(len(reply), 3, reply)
        self.assertEqual(reply[0], VERSION, reply)
        self.assertIn(reply[1], REPLY_TYPES, reply)
        self.assertIsInstance(reply[2], int, reply)
        self.assertTrue(0 <= reply[2] < 2 ** 64, reply)
        kind = reply[1]
        if kind == GET_REPLY:
            self.assertEqual(len(reply), 6, reply)
            self.assertIsInstance(reply[3], bool, reply)
            self.assertIsInstance(reply[4], list, reply)
            for value in reply[4]:
                self.assertIsInstance(value, bytes, "values are bin: %r" % (reply,))
            self.assertIsInstance(reply[5], bytes, "context is bin: %r" % (reply,))
        elif kind == PUT_REPLY:
            self.assertEqual(len(reply), 4, reply)
            self.assertIsInstance(reply[3], bytes, "context is bin: %r" % (reply,))
            self.assertTrue(reply[3], "a new version has a non-empty context: %r" % (reply,))
        elif kind in (STATUS_REPLY, RING_REPLY):
            self.assertEqual(len(reply), 4, reply)
            self.assertIsInstance(reply[3], dict, reply)
        elif kind in (REPLICA_GET_REPLY, GOSSIP_REPLY):
            self.assertEqual(len(reply), 4, reply)
            self.assertIsInstance(reply[3], bytes, reply)
        elif kind == BATCH_REPLY:
            self.assertEqual(len(reply), 4, reply)
            self.assertIsInstance(reply[3], list, reply)
            for frame in reply[3]:
                self.assertIsInstance(frame, bytes, reply)
                self.assert_reply_shape(unpack(frame))
        elif kind == ACK:
            self.assertEqual(len(reply), 3, reply)
        else:
            self.assertEqual(len(reply), 5, reply)
            self.assertIn(reply[3], ERROR_CODES, reply)
            self.assertIsInstance(reply[4], str, "message is str: %r" % (reply,))
            self.assertTrue(reply[4], "an error has a message: %r" % (reply,))

    def assertError(self, reply, code, request_id):
        self.assertEqual(reply[1], ERROR, reply)
        self.assertEqual(reply[3], code, reply)
        if request_id is not None:
            self.assertEqual(reply[2], request_id, reply)

    def put(self, key, value, context=b"", w=0):
        rid = self.new_id()
        reply = self.exchange(pack(VERSION, PUT, rid, key, value, context, w))
        self.assertEqual(reply[:3], [VERSION, PUT_REPLY, rid], reply)
        return reply[3]

    def get(self, key, local=False, r=0):
        rid = self.new_id()
        reply = self.exchange(pack(VERSION, GET, rid, key, 1 if local else 0, r))
        self.assertEqual(reply[:3], [VERSION, GET_REPLY, rid], reply)
        return reply

    def assert_values(self, key, expected):
        reply = self.get(key)
        self.assertIs(reply[3], True, reply)
        self.assertEqual(sorted(reply[4]), sorted(expected), reply)
        return reply[5]

    def assert_not_found(self, key):
        reply = self.get(key)
        self.assertIs(reply[3], False, reply)
        self.assertEqual(reply[4], [], reply)

    def assert_still_serving(self):
        self.assertTrue(self.node.alive(), "node died; log:\n" + self.node.log()[-3000:])
        key = b"alive-" + os.urandom(6).hex().encode()
        sock = self.connect()  # a fresh connection: the old one may hold junk replies
        rid = self.new_id()
        sock.send(pack(VERSION, PUT, rid, key, b"still here", b"", 0))
        reply = self.recv_reply(sock=sock)
        self.assertIsNotNone(reply, "no reply to a put after the abuse; log:\n"
                             + self.node.log()[-3000:])
        self.assertEqual(reply[:3], [VERSION, PUT_REPLY, rid], reply)
        rid = self.new_id()
        sock.send(pack(VERSION, GET, rid, key, 0, 0))
        reply = self.recv_reply(sock=sock)
        self.assertIsNotNone(reply)
        self.assertEqual(reply[:5], [VERSION, GET_REPLY, rid, True, [b"still here"]], reply)
        self.assertTrue(self.node.alive())

    def assert_error_or_silence(self, frame, code=E_INVALID, request_ids=(0,)):
        """frame gets an ERROR (code, with one of request_ids) or no reply at all."""
        self.sock.send(frame)
        reply = self.recv_reply(SILENCE_WAIT_MS)
        if reply is not None:
            self.assertError(reply, code, None)
            self.assertIn(reply[2], request_ids, reply)
        self.assertTrue(self.node.alive(), "node died on %r; log:\n%s"
                        % (frame[:60], self.node.log()[-3000:]))

    # ---- valid exchanges ---------------------------------------------------------

    def test_put_then_get(self):
        ctx = self.put(b"k1", b"v1")
        self.assertIsInstance(ctx, bytes)
        rid = self.new_id()
        reply = self.exchange(pack(VERSION, GET, rid, b"k1", 0, 0))
        self.assertEqual(len(reply), 6, reply)
        self.assertEqual(reply[:5], [VERSION, GET_REPLY, rid, True, [b"v1"]])
        self.assertTrue(reply[5], "a found key has a context")

    def test_a_batch_is_answered_by_a_batch_of_replies(self):
        # Nodes batch their requests to one peer per loop turn (docs/protocol.md).
        put = pack(VERSION, PUT, 11, b"bk", b"bv", b"", 0)
        status = pack(VERSION, STATUS, 12)
        # Replies ready in the same loop turn come back as one BATCH_REPLY;
        # an engine on worker threads may answer in two turns.
        self.sock.send(pack(VERSION, BATCH, 10, [put, status]))
        inner = []
        while len(inner) < 2:
            reply = self.recv_reply()
            self.assertIsNotNone(reply, "no reply to the batch; got %r" % inner)
            inner += [unpack(f) for f in reply[3]] if reply[1] == BATCH_REPLY else [reply]
        if self.BACKEND == "memory":  # answered inline: both in one turn
            self.assertEqual(reply[1], BATCH_REPLY, reply)
        self.assertEqual(sorted(r[2] for r in inner), [11, 12], inner)
        by_id = {r[2]: r for r in inner}
        self.assertEqual(by_id[11][1], PUT_REPLY, inner)
        self.assertEqual(by_id[12][1], STATUS_REPLY, inner)
        # A batch inside a batch is refused, and the node keeps serving.
        nested = pack(VERSION, BATCH, 21, [pack(VERSION, STATUS, 22)])
        reply = self.exchange(pack(VERSION, BATCH, 20, [nested]))
        self.assertError(reply, E_INVALID, 21)
        reply = self.exchange(pack(VERSION, GET, 30, b"bk", 0, 0))
        self.assertEqual(reply[1], GET_REPLY, reply)
        self.assertEqual(reply[4], [b"bv"], reply)

    def test_get_of_a_missing_key(self):
        rid = self.new_id()
        reply = self.exchange(pack(VERSION, GET, rid, b"missing", 0, 0))
        self.assertEqual(reply[:5], [VERSION, GET_REPLY, rid, False, []], reply)

    def test_local_get(self):
        self.put(b"lk", b"lv")
        reply = self.get(b"lk", local=True)
        self.assertEqual(reply[3:5], [True, [b"lv"]], reply)

    def test_binary_keys_and_values(self):
        key = bytes(range(256))
        value = b"\x00" * 10 + os.urandom(1000)
        self.put(key, value)
        self.assert_values(key, [value])

    def test_request_ids_are_echoed_exactly(self):
        for rid in (0, 1, 2 ** 32, 2 ** 64 - 1):
            reply = self.exchange(pack(VERSION, STATUS, rid))
            self.assertEqual(reply[:3], [VERSION, STATUS_REPLY, rid], reply)

    def test_pipelined_requests_are_all_answered(self):
        ids = [self.new_id() for _ in range(50)]
        for i, rid in enumerate(ids):
            self.sock.send(pack(VERSION, PUT, rid, b"pipe%d" % i, b"x", b"", 0))
        got = set()
        for _ in ids:
            reply = self.recv_reply()
            self.assertIsNotNone(reply, "answered %d of %d" % (len(got), len(ids)))
            self.assertEqual(reply[1], PUT_REPLY, reply)
            got.add(reply[2])
        self.assertEqual(got, set(ids))

    def test_siblings_and_contexts(self):
        ctx0 = self.put(b"cart", b"v0")
        self.put(b"cart", b"left", ctx0)
        self.put(b"cart", b"right", ctx0)
        merged = self.assert_values(b"cart", [b"left", b"right"])
        self.put(b"cart", b"merged", merged)
        self.assert_values(b"cart", [b"merged"])

    def test_delete(self):
        self.put(b"dk", b"dv")
        ctx = self.assert_values(b"dk", [b"dv"])
        rid = self.new_id()
        reply = self.exchange(pack(VERSION, DEL, rid, b"dk", ctx, 0))
        self.assertEqual(reply[:3], [VERSION, PUT_REPLY, rid], reply)
        del_ctx = reply[3]
        self.assert_not_found(b"dk")
        self.put(b"dk", b"back", del_ctx)
        self.assert_values(b"dk", [b"back"])

    def test_status(self):
        rid = self.new_id()
        reply = self.exchange(pack(VERSION, STATUS, rid))
        self.assertEqual(reply[:3], [VERSION, STATUS_REPLY, rid], reply)
        status = reply[3]
        for field in ("node_id", "endpoint", "backend", "members", "partitions_owned",
                      "hints_pending"):
            self.assertIn(field, status, status)
        self.assertEqual(status["node_id"], self.node.node_id)
        self.assertEqual(status["endpoint"], self.node.endpoint)
        self.assertEqual(status["backend"], self.BACKEND)
        self.assertEqual(len(status["members"]), 1, status)

    def test_two_clients_at_once(self):
        other = self.connect()
        a, b = self.new_id(), self.new_id()
        self.sock.send(pack(VERSION, STATUS, a))
        other.send(pack(VERSION, STATUS, b))
        self.assertEqual(self.recv_reply()[2], a)
        self.assertEqual(self.recv_reply(sock=other)[2], b)

    # ---- refused requests --------------------------------------------------------

    def test_unknown_type(self):
        rid = self.new_id()
        reply = self.exchange(pack(VERSION, 99, rid, b"whatever"))
        self.assertError(reply, E_UNSUPPORTED, rid)
        self.assert_still_serving()

    def test_reply_type_sent_as_a_request(self):
        # Not a request: refused as unsupported, or dropped (a node may take
        # peers' replies on the same socket).
        rid = self.new_id()
        self.assert_error_or_silence(pack(VERSION, PUT_REPLY, rid, b"ctx"), E_UNSUPPORTED,
                                     request_ids=(rid, 0))
        self.assert_still_serving()

    def test_wrong_protocol_version(self):
        rid = self.new_id()
        reply = self.exchange(pack(2, GET, rid, b"k", 0, 0))
        self.assertEqual(reply[1], ERROR, reply)
        self.assertEqual(reply[3], E_UNSUPPORTED, reply)
        self.assertIn(reply[2], (rid, 0), reply)
        self.assert_still_serving()

    def test_value_over_the_limit(self):
        rid = self.new_id()
        reply = self.exchange(pack(VERSION, PUT, rid, b"huge", b"x" * (2 * VALUE_LIMIT),
                                   b"", 0))
        self.assertError(reply, E_INVALID, rid)
        rid = self.new_id()
        reply = self.exchange(pack(VERSION, PUT, rid, b"huge", b"x" * (VALUE_LIMIT + 1),
                                   b"", 0))
        self.assertError(reply, E_INVALID, rid)
        self.assert_not_found(b"huge")
        self.assert_still_serving()

    def test_value_and_key_at_the_limit(self):
        key = b"K" * KEY_LIMIT
        value = os.urandom(VALUE_LIMIT)
        self.put(key, value)
        self.assert_values(key, [value])

    def test_key_over_the_limit(self):
        rid = self.new_id()
        reply = self.exchange(pack(VERSION, PUT, rid, b"k" * (KEY_LIMIT + 1), b"v", b"", 0))
        self.assertError(reply, E_INVALID, rid)
        rid = self.new_id()
        reply = self.exchange(pack(VERSION, GET, rid, b"k" * (KEY_LIMIT + 1), 0, 0))
        self.assertIn(reply[1], (ERROR, GET_REPLY), reply)
        if reply[1] == ERROR:
            self.assertError(reply, E_INVALID, rid)
        else:
            self.assertIs(reply[3], False, reply)

    def test_bad_context(self):
        rid = self.new_id()
        reply = self.exchange(pack(VERSION, PUT, rid, b"bc", b"v", b"\xc1not a clock\xc1", 0))
        self.assertError(reply, E_INVALID, rid)
        self.assert_not_found(b"bc")

    def test_wrong_field_types_with_a_readable_id(self):
        cases = {
            "key is an int": lambda rid: pack(VERSION, GET, rid, 123, 0, 0),
            "flags is a string": lambda rid: pack(VERSION, GET, rid, b"k", "local", 0),
            "value is a map": lambda rid: pack(VERSION, PUT, rid, b"k", {"a": 1}, b"", 0),
            "context is an int": lambda rid: pack(VERSION, PUT, rid, b"k", b"v", 7, 0),
            "w is negative": lambda rid: pack(VERSION, PUT, rid, b"k", b"v", b"", -1),
            "fields missing": lambda rid: pack(VERSION, PUT, rid, b"k"),
            "no fields at all": lambda rid: pack(VERSION, GET, rid),
            "del without context": lambda rid: pack(VERSION, DEL, rid, b"k"),
        }
        for name, make in cases.items():
            with self.subTest(case=name):
                rid = self.new_id()
                reply = self.exchange(make(rid))
                self.assertError(reply, E_INVALID, rid)
        self.assert_not_found(b"k")
        self.assert_still_serving()

    def test_bad_pulls_get_an_error_and_stream_nothing(self):
        # PULL (24): [v, 24, id, partition, node_id] asks this node to stream
        # a partition to a rebuilding replica (docs/protocol.md).
        PULL = 24
        me = status_of(self.node)["node_id"]
        cases = {
            "partition is a string": (lambda rid: pack(VERSION, PULL, rid, "7", "n3"), E_INVALID),
            "node id missing": (lambda rid: pack(VERSION, PULL, rid, 7), E_INVALID),
            "partition past the ring": (lambda rid: pack(VERSION, PULL, rid, 1 << 20, "n3"),
                                        E_INVALID),
            # A single node: no other member to stream to.
            "unknown puller": (lambda rid: pack(VERSION, PULL, rid, 0, "nobody"), E_UNAVAILABLE),
            "itself": (lambda rid: pack(VERSION, PULL, rid, 0, me), E_UNAVAILABLE),
        }
        for name, (make, code) in cases.items():
            with self.subTest(case=name):
                rid = self.new_id()
                reply = self.exchange(make(rid))
                self.assertError(reply, code, rid)
        self.assertIsNone(status_of(self.node)["transfer_sending"])
        self.assert_still_serving()

    def test_malformed_frames_get_an_error_or_nothing(self):
        valid = pack(VERSION, PUT, 77, b"key", b"value", b"", 0)
        cases = {
            "empty frame": b"",
            "an int, not an array": msgpack.packb(5),
            "a map, not an array": msgpack.packb({"v": 1, "t": 1}),
            "a string, not an array": msgpack.packb("hello"),
            "empty array": msgpack.packb([]),
            "array of one": msgpack.packb([1]),
            "id is a string": pack(VERSION, GET, "seven", b"k", 0, 0),
            "id is negative": pack(VERSION, GET, -5, b"k", 0, 0),
            "version is a string": pack("1", GET, 5, b"k", 0, 0),
            "truncated message": valid[: len(valid) // 2],
            "random bytes": random.Random(7).randbytes(64),
            "reserved byte 0xc1": b"\xc1",
        }
        for name, frame in cases.items():
            with self.subTest(case=name):
                self.assert_error_or_silence(frame, request_ids=(0, 5))
        self.assert_still_serving()

    def test_trailing_bytes_after_a_message(self):
        rid = self.new_id()
        self.sock.send(pack(VERSION, STATUS, rid) + b"\x00junk")
        reply = self.recv_reply(SILENCE_WAIT_MS)
        if reply is not None:
            self.assertIn(reply[1], (ERROR, STATUS_REPLY), reply)
            self.assertIn(reply[2], (rid, 0), reply)
            if reply[1] == ERROR:
                self.assertEqual(reply[3], E_INVALID, reply)
        self.assert_still_serving()

    def test_multi_frame_message(self):
        rid1, rid2 = self.new_id(), self.new_id()
        self.sock.send_multipart([pack(VERSION, STATUS, rid1), pack(VERSION, STATUS, rid2)])
        # A request is one frame: an ERROR, silence, or an answer to the first
        # frame are acceptable; a crash or a malformed reply is not.
        while True:
            reply = self.recv_reply(SILENCE_WAIT_MS)
            if reply is None:
                break
            self.assertIn(reply[2], (0, rid1, rid2), reply)
            if reply[1] == ERROR:
                self.assertEqual(reply[3], E_INVALID, reply)
            else:
                self.assertEqual(reply[1], STATUS_REPLY, reply)
        self.assert_still_serving()

    # ---- fuzzing -----------------------------------------------------------------

    def test_fuzz_then_still_serving(self):
        rng = random.Random(20240501)
        frames = list(fuzz_frames(rng, 3000))
        replies = 0
        for i, frame in enumerate(frames):
            self.sock.send(frame)
            # Drain replies as we go so neither side's queue fills up.
            while self.sock.poll(0, zmq.POLLIN):
                self.recv_reply(0)
                replies += 1
            if i % 250 == 0:
                self.assertTrue(self.node.alive(), "node died after fuzz frame %d (%r); log:\n%s"
                                % (i, frame[:80], self.node.log()[-3000:]))
        while True:
            reply = self.recv_reply(SILENCE_WAIT_MS)
            if reply is None:
                break
            replies += 1
        self.assertGreater(replies, 0, "not one fuzz frame got a reply")
        self.assert_still_serving()


def fuzz_frames(rng, count):
    """count frames: random bytes, every truncation of valid messages, valid
    arrays with wrong field types, declared lengths far beyond the frame."""
    valid = [
        pack(VERSION, GET, 11, b"fuzz-key", 0, 0),
        pack(VERSION, GET, 12, b"fuzz-key", 1, 3),
        pack(VERSION, PUT, 13, b"fuzz-key", b"fuzz-value" * 3, b"", 0),
        pack(VERSION, DEL, 14, b"fuzz-key", b"", 0),
        pack(VERSION, STATUS, 15),
    ]
    out = []
    # Every truncation of every valid message.
    for msg in valid:
        for cut in range(len(msg)):
            out.append(msg[:cut])
    # Bit flips and byte edits of valid messages.
    for _ in range(400):
        msg = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(msg))
            msg[pos] = rng.randrange(256)
        out.append(bytes(msg))
    # Declared lengths far beyond the frame: bin32, str32, array32, map32, ext32.
    huge = [
        b"\xc6\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff", b"\xdd\xff\xff\xff\xff",
        b"\xdf\xff\xff\xff\xff", b"\xc9\xff\xff\xff\xff\x01", b"\xc5\xff\xff",
        b"\xdc\xff\xff",
    ]
    for h in huge:
        out.append(h)
        out.append(b"\x96\x01\x02\x10" + h)                      # as the key of a PUT
        out.append(b"\x96\x01\x02\x10\xc4\x01k" + h)             # as the value
        out.append(b"\xdd\xff\xff\xff\xff\x01\x01\x10" + h)      # inside a huge array
    # Deep nesting.
    out.append(b"\x91" * 100000 + b"\xc0")
    out.append(b"\x96\x01\x02\x10" + b"\x91" * 10000 + b"\xc0" + b"\xc4\x01v\xc4\x00\x00")
    # Valid arrays with fields of random types.
    atoms = [None, True, False, 0, 1, -1, 2 ** 63, 2 ** 64 - 1, -2 ** 63, 1.5, "", "s",
             b"", b"k", [], {}, [1, 2], {"a": b"b"}, b"x" * 300, "y" * 70000]
    for _ in range(800):
        n = rng.randint(0, 8)
        fields = [rng.choice(atoms) for _ in range(n)]
        if fields and rng.random() < 0.7:
            fields[0] = VERSION
        if len(fields) > 1 and rng.random() < 0.7:
            fields[1] = rng.choice([GET, PUT, DEL, STATUS, 0, 5, 64, 65, 127, 255])
        out.append(msgpack.packb(fields, use_bin_type=True))
    # Random bytes of random lengths, some starting like an array.
    while len(out) < count:
        n = rng.choice([1, 2, 3, 5, 8, 16, 64, 256, 4096])
        blob = rng.randbytes(n)
        if rng.random() < 0.5:
            blob = bytes([0x90 | rng.randint(0, 15)]) + blob
        out.append(blob)
    rng.shuffle(out)
    return out


class ProtocolMemoryTest(_ProtocolCases, DynamoTestCase):
    BACKEND = "memory"


class ProtocolFileTest(_ProtocolCases, DynamoTestCase):
    BACKEND = "file"


if __name__ == "__main__":
    unittest.main()
