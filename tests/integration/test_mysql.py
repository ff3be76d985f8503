"""Nodes on the mysql engine against a real MariaDB server (DESIGN.md 3.4):
a 3-node cluster whose nodes keep their replicas in tables of their own,
siblings through two coordinators, read repair of a row deleted behind a
node's back, a node that outlives a MariaDB outage and serves again once the
server is back, and refusals to start (wrong password, missing database) that
never show the password.

The shared server is the one test.sh starts (DYNAMO_TEST_MYSQL_*, see
tests/mariadb/mariadb.sh); the outage test stops a server of its own.
"""

import os
import time
import unittest

from harness import (EXIT_NOT_FOUND, EXIT_OK, EXIT_OTHER, EXIT_QUORUM, TIME_SCALE,
                     MySQLTestCase, delete_key_rows, endpoint_of, free_port,
                     local_holders, read_mismatches, put_all, run_dynamod, status_of,
                     unique_mysql_name, wait_converged, wait_until)

PLACEMENT_DEADLINE = 10.0 * TIME_SCALE  # the last of N replicas acknowledges a put
REPAIR_DEADLINE = 10.0 * TIME_SCALE     # a read repair reaches the stale replica
RECOVERY_DEADLINE = 30.0 * TIME_SCALE   # requests succeed again once MariaDB is back
REQUEST_TIMEOUT_MS = int(10000 * TIME_SCALE)


class MySQLClusterTest(MySQLTestCase):
    """Three nodes, each with its own table in the shared test database."""

    def setUp(self):
        super().setUp()
        self.tables = {}
        nodes = []
        for _ in range(3):
            table, args = self.mysql_node_args()
            node = self.start_cluster_node(seed=nodes[0] if nodes else None,
                                           backend="mysql", extra_args=args)
            self.tables[node.node_id] = table
            nodes.append(node)
        self.nodes = nodes
        self.ring = wait_converged(nodes)

    def test_put_through_one_node_get_through_every_other_node(self):
        for i, writer in enumerate(self.nodes):
            key, value = "mysql-any-%d" % i, "written through %s" % writer.name
            self.put(writer, key, value)
            for reader in self.nodes:
                if reader is not writer:
                    self.assert_values(reader, key, [value.encode()])
        # Binary keys and values up to the limits go through the engine as they are.
        key = "bin\x01\x7f-key"
        value = bytes(range(256)) * 4096  # 1 MiB
        self.put(self.nodes[0], key, value)
        self.assert_values(self.nodes[2], key, [value])
        # Every node's own table holds its replicas.
        for node in self.nodes:
            self.wait_local(node, "mysql-any-0", [b"written through node1"], PLACEMENT_DEADLINE)
            count = int(self.mysql.rows("SELECT COUNT(*) FROM `%s`"
                                        % self.tables[node.node_id])[0][0])
            self.assertGreaterEqual(count, 4, "%s's table %s" % (node.name,
                                                                 self.tables[node.node_id]))

    def test_same_context_through_two_coordinators_gives_siblings(self):
        n1, n2, n3 = self.nodes
        ctx0 = self.put(n1, "mysql-cart", "v0")
        self.put(n2, "mysql-cart", "left", context=ctx0)
        self.put(n3, "mysql-cart", "right", context=ctx0)
        merged = None
        for reader in self.nodes:
            merged = self.assert_values(reader, "mysql-cart", [b"left", b"right"])
        self.put(n1, "mysql-cart", "merged", context=merged)
        for reader in self.nodes:
            self.assert_values(reader, "mysql-cart", [b"merged"])
        for node in self.nodes:
            self.wait_local(node, "mysql-cart", [b"merged"], PLACEMENT_DEADLINE)

    def test_read_repair_restores_a_row_deleted_behind_a_nodes_back(self):
        n1, n2, n3 = self.nodes
        self.put(n1, "mysql-repair-me", "precious")
        self.wait_local(n3, "mysql-repair-me", [b"precious"], PLACEMENT_DEADLINE)
        delete_key_rows(self.mysql, self.tables[n3.node_id], "mysql-repair-me")
        r = self.ctl(n3, "get", "mysql-repair-me", "--local")
        self.assertExit(r, EXIT_NOT_FOUND)
        self.assertEqual(local_holders([n1, n2], "mysql-repair-me"),
                         {n1.node_id: [b"precious"], n2.node_id: [b"precious"]})
        # A get through another node (default R) repairs n3.
        self.assert_values(n1, "mysql-repair-me", [b"precious"])
        self.wait_local(n3, "mysql-repair-me", [b"precious"], REPAIR_DEADLINE)


class MySQLOutageTest(MySQLTestCase):
    """MariaDB stops under a running node and comes back (a server of this
    test's own, so the shared one is not disturbed)."""

    def test_node_survives_a_mariadb_outage_and_keeps_acknowledged_keys(self):
        server = self.start_private_mariadb()
        config = server.config()
        table = unique_mysql_name()  # the server and its data go at cleanup
        node = self.start_node(backend="mysql", extra_args=config.backend_args(
            table, connect_timeout=2))
        items = [("outage-%03d" % i, b"before the outage %03d" % i) for i in range(50)]
        acked, failed = put_all(node.endpoint, items)
        self.assertEqual(failed, {})
        self.assertEqual(len(acked), len(items))

        server.stop()
        for args in (["put", "outage-during", "lost?"], ["get", "outage-001"]):
            with self.subTest(command=args[0]):
                started = time.monotonic()
                r = self.ctl(node, *args, timeout_ms=REQUEST_TIMEOUT_MS,
                             deadline=REQUEST_TIMEOUT_MS / 1000.0 + 30)
                self.assertIn(r.returncode, (EXIT_QUORUM, EXIT_OTHER), r.describe())
                self.assertEqual(r.stdout, b"", r.describe())
                self.assertOneErrorLine(r, "mysql")
                self.assertNotIn(config.password, r.stderr)
                self.assertLess(time.monotonic() - started, REQUEST_TIMEOUT_MS / 1000.0 + 15,
                                r.describe())
        self.assertTrue(node.alive(), node.log()[-3000:])
        status_of(node)  # still answers

        server.start()
        self.assertEqual(server.config().socket, config.socket)

        def put_succeeds():
            r = self.ctl(node, "put", "outage-after", "back", timeout_ms=REQUEST_TIMEOUT_MS)
            return None if r.returncode == EXIT_OK else r.describe()
        wait_until(put_succeeds, RECOVERY_DEADLINE, "a put after MariaDB is back",
                   interval=0.5)
        self.assertEqual(self.get_json(node, "outage-after")[0], [b"back"])
        wrong = read_mismatches(node.endpoint, acked)
        self.assertEqual(wrong, {}, "keys acknowledged before the outage")
        self.assertTrue(node.alive(), node.log()[-3000:])


class MySQLRefusalTest(MySQLTestCase):
    """A backend that cannot open: dynamod exits non-zero with one line that
    never shows the password."""

    def dynamod(self, backend_args):
        data_dir = os.path.join(self.work_dir, "refused-data")
        started = time.monotonic()
        r = run_dynamod(["--listen", endpoint_of(free_port()), "--data-dir", data_dir,
                         "--backend", "mysql", "--backend-opt", "connect_timeout=5"]
                        + backend_args)
        self.assertNotEqual(r.returncode, 0, r.describe())
        self.assertLess(time.monotonic() - started, 14 * TIME_SCALE, r.describe())
        return r

    def test_wrong_password(self):
        wrong = "wrong-" + os.urandom(6).hex()
        r = self.dynamod(self.mysql.backend_args(self.mysql_table(), password=wrong))
        self.assertOneErrorLine(r, "mysql")
        self.assertNotIn(wrong, r.stderr)
        self.assertNotIn(self.mysql.password, r.stderr)
        # Nor on the host/port path.
        r = self.dynamod(["--backend-opt", "host=" + self.mysql.host,
                          "--backend-opt", "port=%d" % self.mysql.port,
                          "--backend-opt", "user=" + self.mysql.user,
                          "--backend-opt", "password=" + wrong,
                          "--backend-opt", "database=" + self.mysql.database,
                          "--backend-opt", "table=" + self.mysql_table()])
        self.assertOneErrorLine(r, "mysql")
        self.assertNotIn(wrong, r.stderr)

    def test_missing_database(self):
        database = unique_mysql_name("dynamo_missing")
        r = self.dynamod(self.mysql.backend_args(self.mysql_table(), database=database))
        self.assertOneErrorLine(r, "mysql", database)
        self.assertNotIn(self.mysql.password, r.stderr)
        self.assertEqual(self.mysql.rows("SHOW DATABASES LIKE '%s'" % database), [],
                         "dynamod created the database")

    def test_a_table_of_another_layout_is_refused_and_left_alone(self):
        table = self.mysql_table()
        self.mysql.sql("CREATE TABLE `%s` (id INT PRIMARY KEY, payload TEXT) ENGINE=InnoDB; "
                       "INSERT INTO `%s` VALUES (1, 'kept')" % (table, table))
        before = self.mysql.rows("SHOW CREATE TABLE `%s`" % table)
        r = self.dynamod(self.mysql.backend_args(table))
        self.assertOneErrorLine(r, "mysql", table)
        self.assertEqual(self.mysql.rows("SHOW CREATE TABLE `%s`" % table), before,
                         "the table was altered")
        self.assertEqual(self.mysql.rows("SELECT payload FROM `%s`" % table), [["kept"]],
                         "the table's rows were touched")


class MySQLSecretsTest(MySQLTestCase):

    def test_status_never_shows_the_password(self):
        node = self.start_node(backend="mysql", extra_args=self.mysql_node_args()[1])
        self.put(node, "secret-check", "v")
        for json_output in (True, False):
            r = self.ctl_ok(node, "status", json_output=json_output)
            self.assertNotIn(self.mysql.password, r.out)
            self.assertNotIn(self.mysql.password, r.stderr)
        status_of(node)  # valid JSON

    def test_password_file(self):
        path = os.path.join(self.work_dir, "mysql-password")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.mysql.password)
        os.chmod(path, 0o600)
        table = self.mysql_table()
        node = self.start_node(backend="mysql", extra_args=self.mysql.backend_args(
            table, password=False, password_file=path))
        self.put(node, "from-password-file", "v")
        self.assertEqual(self.get_json(node, "from-password-file")[0], [b"v"])
        r = self.ctl_ok(node, "status", json_output=True)
        self.assertNotIn(self.mysql.password, r.out)


if __name__ == "__main__":
    unittest.main()
