#!/usr/bin/env python3
"""The shopping cart of the Dynamo paper (section 4.4) in Python, through
ctypes over libdynamo-client: the same steps and output as ../c/cart.c.

A cart is a list of items stored as one value, "apple,book,pen". Two
shoppers add an item each from the same version of the cart, so the cluster
keeps both writes as siblings; the next reader merges them (the union of
their items) and writes the union back with its read's context, which
supersedes both.

    cart.py [--mode server|client] [--key KEY] [--timeout-ms MS] ENDPOINT...

The library is found through DYNAMO_LIB (its path), else DYNAMO_LIB_DIR (the
folder holding libdynamo-client.so), else the system's library search path.
Needs Python 3 only.
"""

import argparse
import ctypes
import ctypes.util
import os
import sys
import time

DYNAMO_OK = 0
DYNAMO_NOT_FOUND = 1
DYNAMO_ERROR = 5
MODES = {"server": 0, "client": 1}


class DynamoError(Exception):
    """A failed call: code (a dynamo_code), its name and the library's message."""

    def __init__(self, code, name, message):
        super().__init__("%s: %s" % (name, message))
        self.code = code
        self.name = name
        self.message = message


def load_library():
    """libdynamo-client with every function used here declared."""
    path = os.environ.get("DYNAMO_LIB")
    if not path and os.environ.get("DYNAMO_LIB_DIR"):
        path = os.path.join(os.environ["DYNAMO_LIB_DIR"], "libdynamo-client.so")
    if not path:
        path = ctypes.util.find_library("dynamo-client")
    if not path:
        raise OSError("libdynamo-client not found: set DYNAMO_LIB to its path or "
                      "DYNAMO_LIB_DIR to its folder, or install it")
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise OSError("cannot load %s: %s" % (path, e)) from None

    c_int, c_size_t, c_void_p, c_char_p = (ctypes.c_int, ctypes.c_size_t, ctypes.c_void_p,
                                           ctypes.c_char_p)
    errp = ctypes.POINTER(c_void_p)  # char **errptr, kept as a pointer to free it
    sizep = ctypes.POINTER(c_size_t)
    signatures = {
        "dynamo_version": (c_char_p, []),
        "dynamo_code_name": (c_char_p, [c_int]),
        "dynamo_free": (None, [c_void_p]),
        "dynamo_options_create": (c_void_p, []),
        "dynamo_options_destroy": (None, [c_void_p]),
        "dynamo_options_add_node": (c_int, [c_void_p, c_char_p, errp]),
        "dynamo_options_set_mode": (c_int, [c_void_p, c_int, errp]),
        "dynamo_options_set_timeout_ms": (c_int, [c_void_p, ctypes.c_uint32, errp]),
        "dynamo_client_create": (c_void_p, [c_void_p, errp]),
        "dynamo_client_destroy": (None, [c_void_p]),
        "dynamo_get": (c_int, [c_void_p, c_char_p, c_size_t, ctypes.POINTER(c_void_p), errp]),
        "dynamo_put": (c_int, [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, c_char_p,
                               c_size_t, ctypes.POINTER(c_void_p), sizep, errp]),
        "dynamo_del": (c_int, [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t,
                               ctypes.POINTER(c_void_p), sizep, errp]),
        "dynamo_result_count": (c_size_t, [c_void_p]),
        "dynamo_result_value": (c_void_p, [c_void_p, c_size_t, sizep]),
        "dynamo_result_context": (c_void_p, [c_void_p, sizep]),
        "dynamo_result_destroy": (None, [c_void_p]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


class Client:
    """A client of the cluster: get, put and delete with bytes keys, values
    and contexts; failures raise DynamoError."""

    def __init__(self, lib, endpoints, mode="server", timeout_ms=None):
        self._lib = lib
        self._client = None
        options = lib.dynamo_options_create()
        if not options:
            raise MemoryError("out of memory")
        try:
            for endpoint in endpoints:
                self._check(lib.dynamo_options_add_node, options, endpoint.encode())
            self._check(lib.dynamo_options_set_mode, options, MODES[mode])
            if timeout_ms is not None:
                self._check(lib.dynamo_options_set_timeout_ms, options, timeout_ms)
            err = ctypes.c_void_p()
            self._client = lib.dynamo_client_create(options, ctypes.byref(err))
            if not self._client:
                self._raise(DYNAMO_ERROR, err)
        finally:
            lib.dynamo_options_destroy(options)

    def close(self):
        if self._client:
            self._lib.dynamo_client_destroy(self._client)
            self._client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _raise(self, code, err):
        message = ctypes.string_at(err.value).decode("utf-8", "replace") if err.value else ""
        self._lib.dynamo_free(err)
        raise DynamoError(code, self._lib.dynamo_code_name(code).decode(), message)

    def _check(self, fn, *args, ok=(DYNAMO_OK,)):
        err = ctypes.c_void_p()
        code = fn(*args, ctypes.byref(err))
        if code not in ok:
            self._raise(code, err)
        return code

    def _take_context(self, ptr, length):
        try:
            return ctypes.string_at(ptr, length.value) if ptr.value else b""
        finally:
            self._lib.dynamo_free(ptr)

    def get(self, key):
        """(siblings as a list of bytes, context); no siblings when not found."""
        result = ctypes.c_void_p()
        self._check(self._lib.dynamo_get, self._client, key, len(key), ctypes.byref(result),
                    ok=(DYNAMO_OK, DYNAMO_NOT_FOUND))
        try:
            length = ctypes.c_size_t()
            values = []
            for i in range(self._lib.dynamo_result_count(result)):
                ptr = self._lib.dynamo_result_value(result, i, ctypes.byref(length))
                values.append(ctypes.string_at(ptr, length.value))
            ptr = self._lib.dynamo_result_context(result, ctypes.byref(length))
            return values, ctypes.string_at(ptr, length.value)
        finally:
            self._lib.dynamo_result_destroy(result)

    def put(self, key, value, context=b""):
        """Writes value; returns the new version's context."""
        ptr, length = ctypes.c_void_p(), ctypes.c_size_t()
        self._check(self._lib.dynamo_put, self._client, key, len(key), value, len(value),
                    context, len(context), ctypes.byref(ptr), ctypes.byref(length))
        return self._take_context(ptr, length)

    def delete(self, key, context=b""):
        """Writes a tombstone; returns its context."""
        ptr, length = ctypes.c_void_p(), ctypes.c_size_t()
        self._check(self._lib.dynamo_del, self._client, key, len(key), context, len(context),
                    ctypes.byref(ptr), ctypes.byref(length))
        return self._take_context(ptr, length)


def merge(siblings):
    """The paper's reconciliation of carts: the union of their items."""
    items = set()
    for value in siblings:
        items.update(item for item in value.split(b",") if item)
    return b",".join(sorted(items))


def text(value):
    return value.decode("utf-8", "replace")


class Failure(Exception):
    pass


def run(client, key):
    def call(what, fn, *args):
        try:
            return fn(*args)
        except DynamoError as e:
            raise Failure("%s %s: %s" % (what, text(key), e)) from None

    # 1. Read the cart (a new key is not found, yet has a context to write
    # with) and store a first version: one item.
    siblings, context = call("get", client.get, key)
    if siblings:
        print("existing cart: %d version(s), replaced" % len(siblings))
    else:
        print("empty cart (key not found)")
    first = call("put", client.put, key, b"apple", context)
    print("put: apple")

    # 2. Two shoppers add an item each from that version's context: neither
    # has seen the other's write, so the cluster keeps both.
    call("put", client.put, key, b"apple,book", first)
    print("concurrent put 1: apple,book")
    call("put", client.put, key, b"apple,pen", first)
    print("concurrent put 2: apple,pen")

    # 3. Read the siblings, merge them, write the union back with this read's
    # context: it supersedes every sibling.
    siblings, context = call("get", client.get, key)
    print("siblings: %d" % len(siblings))
    for value in sorted(siblings):
        print("  sibling: %s" % text(value))
    merged = merge(siblings)
    print("merged cart: %s" % text(merged))
    call("put", client.put, key, merged, context)

    # 4. Read again: one version, the union.
    siblings, _ = call("get", client.get, key)
    print("after write-back: %d version%s" % (len(siblings), "" if len(siblings) == 1 else "s"))
    if len(siblings) != 1:
        raise Failure("get %s: expected one version after the write-back, read %d"
                      % (text(key), len(siblings)))
    print("final cart: %s" % text(siblings[0]))
    if siblings[0] != merged:
        raise Failure("get %s: read '%s', wrote '%s'" % (text(key), text(siblings[0]),
                                                         text(merged)))


def fail(message):
    sys.stdout.flush()
    print("cart: %s" % message, file=sys.stderr)
    return 1


def main(argv):
    parser = argparse.ArgumentParser(
        prog="cart.py", description="The Dynamo paper's shopping cart: siblings and their merge.")
    parser.add_argument("--mode", choices=sorted(MODES), default="server")
    parser.add_argument("--key", help="the cart's key (default: cart-<pid>-<time>)")
    parser.add_argument("--timeout-ms", type=int, help="longest a call waits (1 to 86400000)")
    parser.add_argument("endpoints", nargs="+", metavar="ENDPOINT",
                        help="a node: tcp://HOST:PORT or ipc://PATH")
    args = parser.parse_args(argv)
    if args.key == "":
        parser.error("--key needs a non-empty key")
    if args.timeout_ms is not None and not 1 <= args.timeout_ms <= 86400000:
        parser.error("--timeout-ms is a number of milliseconds, 1 to 86400000")
    key = args.key or "cart-%d-%d" % (os.getpid(), int(time.time()))

    try:
        lib = load_library()
    except OSError as e:
        return fail(str(e))
    try:
        client = Client(lib, args.endpoints, args.mode, args.timeout_ms)
    except DynamoError as e:
        return fail("options: %s" % e)
    with client:
        n = len(args.endpoints)
        print("dynamo %s, %s mode, %d node%s" % (lib.dynamo_version().decode(), args.mode, n,
                                                 "" if n == 1 else "s"))
        print("cart key: %s" % key)
        try:
            run(client, key.encode())
        except Failure as e:
            return fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
