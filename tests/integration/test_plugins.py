"""dynamod at startup (DESIGN.md 3.1, 3.4): engine plugins that cannot be
loaded or opened, bad options and a taken endpoint each stop it with exactly
one clear line on stderr and the documented exit code; --plugin-dir and
--config work."""

import os
import re
import socket
import unittest

from harness import (DynamoTestCase, Node, PLUGIN_DIR, TEST_PLUGIN_DIR, endpoint_of, free_port,
                     run_dynamod)

EXIT_OTHER = 1
EXIT_BAD_OPTION = 2


class StartupFailureTest(DynamoTestCase):

    def dynamod(self, *args, backend=None, data_dir=None, port=None):
        """Runs dynamod on a free port with a fresh data folder, expecting it to exit."""
        argv = ["--listen", endpoint_of(port or free_port()),
                "--data-dir", data_dir or os.path.join(self.make_temp_dir(), "data")]
        if backend is not None:
            argv += ["--backend", backend]
        return run_dynamod(argv + list(args))

    def assertFailsWithOneLine(self, result, code, *must_contain):
        if code is None:
            self.assertNotEqual(result.returncode, 0, result.describe())
            self.assertGreater(result.returncode, 0, "killed by a signal: " + result.describe())
        else:
            self.assertEqual(result.returncode, code, result.describe())
        return self.assertOneErrorLine(result, *must_contain)

    def test_plugin_dir_default_holds_the_engines(self):
        for engine in ("memory", "file"):
            self.assertTrue(os.path.isfile(os.path.join(PLUGIN_DIR, engine + ".so")),
                            "%s.so not in %s" % (engine, PLUGIN_DIR))

    def test_unknown_backend_name(self):
        r = self.dynamod(backend="nosuch")
        self.assertFailsWithOneLine(r, EXIT_OTHER, "nosuch")

    def test_plugin_path_that_does_not_exist(self):
        path = os.path.join(self.make_temp_dir(), "missing.so")
        r = self.dynamod(backend=path)
        self.assertFailsWithOneLine(r, EXIT_OTHER, "missing.so")

    def test_not_a_shared_object(self):
        path = os.path.join(self.make_temp_dir(), "junk.so")
        with open(path, "wb") as f:
            f.write(b"this is not an ELF file\n" * 10)
        r = self.dynamod(backend=path)
        self.assertFailsWithOneLine(r, EXIT_OTHER, "junk.so")

    def test_plugin_built_for_another_abi_version(self):
        path = self.built_test_plugin("bad_abi.so")
        r = self.dynamod(backend=path)
        line = self.assertFailsWithOneLine(r, EXIT_OTHER, "999")
        self.assertRegex(line, r"(?<![0-9])1(?![0-9])", "names the host's ABI version 1")

    def test_plugin_whose_open_fails(self):
        path = self.built_test_plugin("open_fails.so")
        r = self.dynamod(backend=path)
        self.assertFailsWithOneLine(r, EXIT_OTHER, "deliberate open failure")

    def test_unknown_file_engine_option(self):
        r = self.dynamod("--backend-opt", "no_such_engine_option=1", backend="file")
        self.assertFailsWithOneLine(r, None, "no_such_engine_option")

    def test_bad_file_engine_option_value(self):
        r = self.dynamod("--backend-opt", "sync=sometimes", backend="file")
        self.assertFailsWithOneLine(r, None, "sync")

    def test_file_engine_cannot_open_its_folder(self):
        not_a_dir = os.path.join(self.make_temp_dir(), "regular-file")
        with open(not_a_dir, "w") as f:
            f.write("I am a file, not a folder\n")
        r = self.dynamod(backend="file", data_dir=not_a_dir)
        self.assertFailsWithOneLine(r, EXIT_OTHER)

    def test_bad_options_exit_2(self):
        cases = {
            "--replicas abc": ["--replicas", "abc"],
            "--no-such-flag": ["--no-such-flag"],
            "--partitions not a number": ["--partitions", "many"],
            "--workers missing its value": ["--workers"],
            # Boost formats its messages by replacing %value% with the
            # value until none is left: these looped forever (fuzzing).
            "--replicas %value%": ["--replicas", "%value%"],
            "an option named %canonical_option%": ["--%canonical_option%"],
        }
        for name, args in cases.items():
            with self.subTest(case=name):
                r = self.dynamod(*args, backend="memory")
                self.assertFailsWithOneLine(r, EXIT_BAD_OPTION)

    def test_a_config_value_holding_a_placeholder_is_an_error_not_a_hang(self):
        config = os.path.join(self.make_temp_dir(), "dynamod.conf")
        with open(config, "w") as f:
            f.write("replicas = %value%\n")
        r = self.dynamod("--config", config, backend="memory")
        line = self.assertFailsWithOneLine(r, EXIT_BAD_OPTION)
        self.assertIn("%value%", line)
        self.assertIn("replicas", line)

    def test_missing_config_file(self):
        missing = os.path.join(self.make_temp_dir(), "nope.conf")
        r = self.dynamod("--config", missing, backend="memory")
        self.assertNotEqual(r.returncode, 0, r.describe())
        self.assertOneErrorLine(r, "nope.conf")

    def test_endpoint_already_in_use(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            port = holder.getsockname()[1]
            r = self.dynamod(backend="memory", port=port)
        line = self.assertFailsWithOneLine(r, None)
        self.assertTrue(re.search(r"in use|%d" % port, line, re.I),
                        "the line should say the endpoint is taken: " + line)

    def test_endpoint_taken_by_another_node(self):
        first = self.start_node(backend="memory")
        r = self.dynamod(backend="memory", port=first.port)
        self.assertFailsWithOneLine(r, None)
        self.assertTrue(first.alive())

    def built_test_plugin(self, name):
        path = os.path.join(TEST_PLUGIN_DIR, name)
        if not os.path.isfile(path):
            self.fail("test plugin %s is not built (DYNAMO_TEST_PLUGIN_DIR=%s)"
                      % (name, TEST_PLUGIN_DIR))
        return path


class StartupOptionsTest(DynamoTestCase):

    def test_plugin_dir_is_where_names_are_looked_up(self):
        empty = self.make_temp_dir()
        r = run_dynamod(["--listen", endpoint_of(free_port()), "--data-dir",
                         os.path.join(self.make_temp_dir(), "d"), "--backend", "memory",
                         "--plugin-dir", empty])
        self.assertEqual(r.returncode, EXIT_OTHER, r.describe())
        self.assertOneErrorLine(r, "memory")

        node = self.start_node(backend="memory", extra_args=["--plugin-dir", PLUGIN_DIR])
        self.assertEqual(self.ctl_ok(node, "status", json_output=True).json()["backend"],
                         "memory")

    def test_plugin_by_path(self):
        node = self.start_node(backend=os.path.join(PLUGIN_DIR, "memory.so"))
        self.put(node, "k", "v")
        self.assertEqual(self.get_json(node, "k")[0], [b"v"])

    def test_options_from_a_config_file(self):
        port = free_port()
        data = os.path.join(self.make_temp_dir(), "data")
        config = os.path.join(self.make_temp_dir(), "dynamod.conf")
        with open(config, "w") as f:
            f.write("# dynamod options, INI\n"
                    "node-id = from-config\n"
                    "listen = %s\n"
                    "data-dir = %s\n"
                    "backend = memory\n" % (endpoint_of(port), data))
        node = Node(self.work_dir, "configured", port=port, data_dir=data,
                    args_override=["--config", config])
        self.addCleanup(node.cleanup)
        node.start()
        doc = self.ctl_ok(node, "status", json_output=True).json()
        self.assertEqual(doc["node_id"], "from-config")
        self.assertEqual(doc["backend"], "memory")
        self.assertEqual(doc["endpoint"], endpoint_of(port))


if __name__ == "__main__":
    unittest.main()
