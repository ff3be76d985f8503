"""The packages: built by CPack from this build tree, inspected, checked by
lintian and rpmlint, and the .deb installed, run as systemd would run it,
removed and purged (docs/operations.md "Installing from packages").

Installing needs root or a user whose sudo asks no password (harness.as_root):
every step that installs, removes, or reads what the packages made under
/var/lib/dynamo (0750, the dynamo user's) goes through it; without either the
install test fails with the reason. It refuses to touch a machine where dynamo
is already installed or /var/lib/dynamo exists, and leaves it as it found it:
packages purged, the system user it created deleted."""

import glob
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

import harness
from harness import TIME_SCALE, free_port, endpoint_of

BUILD_DIR = os.environ.get("DYNAMO_BUILD_DIR") or os.path.dirname(harness.BIN_DIR)
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE_DIR = os.path.join(BUILD_DIR, "packages")
# dynamoctl's options for the admin key pair the package makes on install.
ADMIN_CURVE = ("--curve-secret-key-file", "/etc/dynamo/admin.key",
               "--server-public-key", "/etc/dynamo/node.pub")
VERSION = None  # read from the built .deb
CPACK_DEADLINE = 600 * TIME_SCALE

DEB_PACKAGES = ["dynamo", "dynamo-mysql", "libdynamo-client0", "libdynamo-client-dev"]
RPM_PACKAGES = ["dynamo", "dynamo-mysql", "dynamo-client", "dynamo-client-devel"]


def run(argv, check=True, deadline=120 * TIME_SCALE, env=None, cwd=None):
    """harness.run_program, failing the test on a non-zero exit when check."""
    result = harness.run_program(argv, deadline, env=env, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(result.describe())
    return result


_built = {}


def build_packages():
    """Runs cpack once per test run; returns {(kind, name): path}."""
    if _built:
        return _built
    if not os.path.isfile(os.path.join(BUILD_DIR, "CPackConfig.cmake")):
        raise AssertionError("no CPackConfig.cmake in %s (DYNAMO_BUILD_DIR)" % BUILD_DIR)
    for tool in ("cpack", "dpkg-deb", "rpmbuild", "rpm"):
        if shutil.which(tool) is None:
            raise AssertionError("%s is not installed: run packaging/bootstrap.sh "
                                 "(Debian packages cmake, dpkg-dev, rpm)" % tool)
    shutil.rmtree(PACKAGE_DIR, ignore_errors=True)
    run(["cpack", "-G", "DEB;RPM", "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake")],
        cwd=BUILD_DIR, deadline=CPACK_DEADLINE)
    for path in glob.glob(os.path.join(PACKAGE_DIR, "*.deb")):
        name = run(["dpkg-deb", "-f", path, "Package"]).out.strip()
        _built[("deb", name)] = path
    for path in glob.glob(os.path.join(PACKAGE_DIR, "*.rpm")):
        name = run(["rpm", "-qp", "--queryformat", "%{NAME}", path]).out.strip()
        _built[("rpm", name)] = path
    return _built


def project_version():
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
        return re.search(r"project\(dynamo VERSION (\d+\.\d+\.\d+)", f.read()).group(1)


class PackageContentsTest(unittest.TestCase):
    """What the .deb and .rpm files hold and declare."""

    @classmethod
    def setUpClass(cls):
        cls.pkgs = build_packages()
        cls.version = project_version()

    def deb(self, name):
        self.assertIn(("deb", name), self.pkgs, "no .deb %s among %s" % (name, sorted(self.pkgs)))
        return self.pkgs[("deb", name)]

    def rpm(self, name):
        self.assertIn(("rpm", name), self.pkgs, "no .rpm %s among %s" % (name, sorted(self.pkgs)))
        return self.pkgs[("rpm", name)]

    def deb_files(self, name):
        listing = run(["dpkg-deb", "-c", self.deb(name)]).out
        files = {}
        for line in listing.splitlines():
            parts = line.split(None, 5)
            path = parts[5].split(" -> ")[0]
            files[path.lstrip(".")] = (parts[0], parts[1])
        return files

    def test_deb_names_and_versions(self):
        for name in DEB_PACKAGES:
            fields = run(["dpkg-deb", "-f", self.deb(name), "Version", "Architecture",
                          "Maintainer", "Description"]).out
            self.assertIn("Version: %s-1" % self.version, fields, name)
            self.assertIn("Architecture: amd64", fields, name)
            self.assertRegex(fields, r"Maintainer: .+ <[^@ ]+@[^@ ]+>", name)

    def test_deb_contents(self):
        server = self.deb_files("dynamo")
        for path in ("/usr/bin/dynamod", "/usr/bin/dynamoctl", "/usr/bin/dynamo-bench",
                     "/usr/lib/dynamo/plugins/memory.so", "/usr/lib/dynamo/plugins/file.so",
                     "/etc/dynamo/dynamod.conf", "/lib/systemd/system/dynamod.service",
                     "/lib/systemd/system/dynamod@.service",
                     "/usr/share/man/man8/dynamod.8.gz", "/usr/share/man/man1/dynamoctl.1.gz",
                     "/usr/share/man/man1/dynamo-bench.1.gz",
                     "/usr/share/doc/dynamo/copyright", "/usr/share/doc/dynamo/changelog.Debian.gz",
                     "/usr/share/doc/dynamo/operations.md", "/usr/share/doc/dynamo/security.md",
                     "/usr/lib/dynamo/dynamo-setup-keys", "/usr/share/dynamo/grafana/dynamo.json"):
            self.assertIn(path, server, "dynamo lacks %s" % path)
        for path, (mode, owner) in server.items():
            self.assertEqual(owner, "root/root", path)
        self.assertEqual(server["/usr/bin/dynamod"][0], "-rwxr-xr-x")
        self.assertEqual(server["/usr/lib/dynamo/dynamo-setup-keys"][0], "-rwxr-xr-x")
        self.assertFalse([p for p in server if p.endswith(".key")], "a key pair is shipped")
        self.assertEqual(server["/etc/dynamo/dynamod.conf"][0], "-rw-r--r--")
        self.assertFalse([p for p in server if "mysql.so" in p], "the mysql engine is in dynamo")
        for resolver in ("lww", "union"):
            self.assertIn("/usr/lib/dynamo/plugins/resolvers/%s.so" % resolver, server)
        mysql = self.deb_files("dynamo-mysql")
        self.assertIn("/usr/lib/dynamo/plugins/mysql.so", mysql)
        client = self.deb_files("libdynamo-client0")
        self.assertTrue([p for p in client if re.search(r"/libdynamo-client\.so\.0$", p)], client)
        self.assertFalse([p for p in client if p.endswith(".h")])
        dev = self.deb_files("libdynamo-client-dev")
        self.assertIn("/usr/include/dynamo/dynamo.h", dev)
        self.assertIn("/usr/include/dynamo/resolver_plugin.h", dev)
        self.assertTrue([p for p in dev if p.endswith("/libdynamo-client.so")], dev)

    def test_deb_dependencies_come_from_the_libraries(self):
        def depends(name):
            return run(["dpkg-deb", "-f", self.deb(name), "Depends"]).out
        server = depends("dynamo")
        for lib in ("libc6", "libstdc++6", "libzmq5", "libssl3", "libboost-program-options",
                    "adduser"):
            self.assertIn(lib, server)
        self.assertNotIn("mysqlcppconn", server, "a node without MySQL would pull Connector/C++")
        mysql = depends("dynamo-mysql")
        self.assertIn("libmysqlcppconn", mysql)
        self.assertRegex(mysql, r"dynamo \(= %s-1\)" % re.escape(self.version))
        self.assertIn("libzmq5", depends("libdynamo-client0"))
        self.assertRegex(depends("libdynamo-client-dev"), r"libdynamo-client0 \(= ")
        shlibs = run(["dpkg-deb", "-I", self.deb("libdynamo-client0"), "shlibs"]).out
        self.assertRegex(shlibs, r"libdynamo-client 0 libdynamo-client0 \(>= ")

    def test_deb_conffiles_and_scripts(self):
        path = self.deb("dynamo")
        self.assertEqual(run(["dpkg-deb", "-I", path, "conffiles"]).out.split(),
                         ["/etc/dynamo/dynamod.conf"])
        postinst = run(["dpkg-deb", "-I", path, "postinst"]).out
        self.assertIn("adduser --system", postinst)
        self.assertIn("install -d -o dynamo -g dynamo -m 0750 /var/lib/dynamo", postinst)
        self.assertIn("/usr/lib/dynamo/dynamo-setup-keys /etc/dynamo dynamo", postinst)
        postrm = run(["dpkg-deb", "-I", path, "postrm"]).out
        # Data goes on purge only.
        purge = re.search(r"purge\)(.*?);;", postrm, re.S)
        self.assertIsNotNone(purge, postrm)
        self.assertIn("rm -rf /var/lib/dynamo", purge.group(1))
        self.assertIn("/etc/dynamo/node.key", purge.group(1))
        self.assertIn("/etc/dynamo/authorized_keys", purge.group(1))
        self.assertEqual(postrm.count("/var/lib/dynamo"), 1, postrm)
        with tempfile.TemporaryDirectory() as tmp:
            run(["dpkg-deb", "-e", path, tmp])
            for script in ("postinst", "prerm", "postrm"):
                mode = stat.S_IMODE(os.stat(os.path.join(tmp, script)).st_mode)
                self.assertEqual(mode, 0o755, script)

    def test_unit_runs_the_packaged_config_as_the_system_user(self):
        with tempfile.TemporaryDirectory() as tmp:
            run(["dpkg-deb", "-x", self.deb("dynamo"), tmp])
            for unit, conf in (("dynamod.service", "/etc/dynamo/dynamod.conf"),
                               ("dynamod@.service", "/etc/dynamo/%i.conf")):
                with open(os.path.join(tmp, "lib/systemd/system", unit)) as f:
                    text = f.read()
                self.assertIn("\nUser=dynamo\n", text)
                self.assertIn("\nExecStart=/usr/bin/dynamod --config %s\n" % conf, text)
                self.assertIn("\nExecStartPre=/usr/bin/dynamod --config %s --check-config\n" % conf,
                              text)
                self.assertIn("\nWantedBy=multi-user.target\n", text)
                self.assertIn("\nExecReload=/bin/kill -HUP $MAINPID\n", text)
            with open(os.path.join(tmp, "etc/dynamo/dynamod.conf")) as f:
                conf = f.read()
            self.assertIn("\ndata-dir = /var/lib/dynamo\n", conf)
            self.assertIn("\ncurve-secret-key-file = /etc/dynamo/node.key\n", conf)
            self.assertIn("\nauthorized-keys = /etc/dynamo/authorized_keys\n", conf)

    def test_rpm_contents_and_metadata(self):
        version = run(["rpm", "-qp", "--queryformat", "%{VERSION}-%{RELEASE} %{LICENSE}",
                       self.rpm("dynamo")]).out
        self.assertEqual(version, "%s-1 Apache-2.0" % self.version)
        files = run(["rpm", "-qpl", self.rpm("dynamo")]).out.split()
        for path in ("/usr/bin/dynamod", "/usr/bin/dynamoctl", "/usr/lib/dynamo/plugins/file.so",
                     "/etc/dynamo/dynamod.conf", "/lib/systemd/system/dynamod.service",
                     "/lib/systemd/system/dynamod@.service", "/usr/lib/dynamo/dynamo-setup-keys",
                     "/usr/share/dynamo/grafana/dynamo.json"):
            self.assertIn(path, files)
        self.assertNotIn("/usr/lib/dynamo/plugins/mysql.so", files)
        self.assertIn("/usr/lib/dynamo/plugins/mysql.so",
                      run(["rpm", "-qpl", self.rpm("dynamo-mysql")]).out.split())
        self.assertEqual(run(["rpm", "-qpc", self.rpm("dynamo")]).out.split(),
                         ["/etc/dynamo/dynamod.conf"])
        scripts = run(["rpm", "-qp", "--scripts", self.rpm("dynamo")]).out
        self.assertIn("useradd -r", scripts)
        self.assertIn("/usr/lib/dynamo/dynamo-setup-keys /etc/dynamo dynamo", scripts)
        self.assertNotIn("rm -rf", scripts, "an erase must not delete data")
        requires = run(["rpm", "-qp", "--requires", self.rpm("dynamo")]).out
        self.assertIn("libzmq.so.5", requires)
        self.assertNotIn("mysqlcppconn", requires)
        self.assertIn("libmysqlcppconn.so",
                      run(["rpm", "-qp", "--requires", self.rpm("dynamo-mysql")]).out)
        self.assertIn("dynamo/dynamo.h",
                      run(["rpm", "-qpl", self.rpm("dynamo-client-devel")]).out)

    def test_lintian_finds_no_error(self):
        if shutil.which("lintian") is None:
            self.fail("lintian is not installed: run packaging/bootstrap.sh")
        debs = [self.deb(n) for n in DEB_PACKAGES]
        r = run(["lintian", "--fail-on", "error", "--no-tag-display-limit"] + debs, check=False,
                deadline=600 * TIME_SCALE)
        errors = [line for line in r.out.splitlines() if line.startswith("E:")]
        self.assertEqual(errors, [], r.describe())
        self.assertEqual(r.returncode, 0, r.describe())

    def test_rpmlint_finds_no_error(self):
        for tool in ("rpmlint", "gpg", "rpmsign"):
            if shutil.which(tool) is None:
                self.fail("%s is not installed: run packaging/bootstrap.sh" % tool)
        # A distributor signs the packages with its key; here a key made for
        # the test signs copies, and a private RPM database trusts it, so
        # rpmlint checks signed packages as a user's system would.
        tmp = tempfile.mkdtemp(prefix="dynamo-rpmlint-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        gnupg, home = os.path.join(tmp, "gnupg"), os.path.join(tmp, "home")
        os.makedirs(gnupg, mode=0o700)
        os.makedirs(home)
        env = dict(os.environ, GNUPGHOME=gnupg, HOME=home)
        self.addCleanup(subprocess.run, ["gpgconf", "--kill", "all"], env=env,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        uid = "dynamo test packages <packages@dynamo-kv.org>"
        run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "rsa2048", "sign",
             "never"], env=env)
        with open(os.path.join(home, ".rpmmacros"), "w") as f:
            f.write("%%_dbpath %s\n" % os.path.join(tmp, "rpmdb"))
        key = os.path.join(tmp, "key.asc")
        with open(key, "wb") as f:
            f.write(run(["gpg", "--armor", "--export", "packages@dynamo-kv.org"], env=env).stdout)
        run(["rpm", "--initdb"], env=env)
        run(["rpm", "--import", key], env=env)
        rpms = []
        for name in RPM_PACKAGES:
            rpms.append(os.path.join(tmp, os.path.basename(self.rpm(name))))
            shutil.copy(self.rpm(name), rpms[-1])
        run(["rpmsign", "--define", "__gpg /usr/bin/gpg", "--define",
             "_gpg_name packages@dynamo-kv.org", "--addsign"] + rpms, env=env)
        r = run(["rpmlint"] + rpms, check=False, env=env, deadline=600 * TIME_SCALE)
        errors = [line for line in r.out.splitlines() if ": E: " in line]
        self.assertEqual(errors, [], r.describe())
        self.assertIn(" 0 errors", r.out, r.describe())


class InstallTest(unittest.TestCase):
    """Installs the .deb packages on this machine, runs a node as systemd
    would, removes and purges them."""

    def setUp(self):
        self.root = harness.require_root(self)
        installed = [n for n in DEB_PACKAGES
                     if run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", n],
                            check=False).out.startswith("ii")]
        if installed or os.path.exists("/var/lib/dynamo"):
            self.fail("dynamo is already installed here (%s); this test installs and purges "
                      "it: remove it first (apt purge %s)" %
                      (", ".join(installed) or "/var/lib/dynamo exists", " ".join(DEB_PACKAGES)))
        self.user_existed = self.user_exists()
        self.pkgs = build_packages()
        self.addCleanup(self.restore)

    def user_exists(self):
        try:
            pwd.getpwnam("dynamo")
            return True
        except KeyError:
            return False

    def sudo(self, *argv, check=True):
        return run(self.root + list(argv), check=check, deadline=300 * TIME_SCALE)

    def data_files(self):
        """{name: owner uid} of what /var/lib/dynamo holds, read as root: the
        folder is 0750 and the dynamo user's, so a sudo user cannot list it."""
        listing = self.sudo("find", "/var/lib/dynamo", "-mindepth", "1", "-maxdepth", "1",
                            "-printf", "%P\\t%U\\n").out
        files = {}
        for line in listing.splitlines():
            name, uid = line.rsplit("\t", 1)
            files[name] = int(uid)
        return files

    def restore(self):
        for name in reversed(DEB_PACKAGES):
            self.sudo("dpkg", "--purge", name, check=False)
        if not self.user_existed and self.user_exists():
            self.sudo("deluser", "--system", "--quiet", "dynamo", check=False)
            self.sudo("delgroup", "--system", "--quiet", "dynamo", check=False)

    def exec_start(self, unit="/lib/systemd/system/dynamod.service"):
        with open(unit) as f:
            for line in f:
                if line.startswith("ExecStart="):
                    return shlex.split(line[len("ExecStart="):])
        self.fail("no ExecStart in %s" % unit)

    def as_dynamo(self, argv):
        return self.root + ["setpriv", "--reuid=dynamo", "--regid=dynamo", "--init-groups",
                            "--"] + argv

    def start_installed(self, argv):
        """The installed dynamod, run as the unit's user; answering on return."""
        endpoint = argv[argv.index("--listen") + 1]
        node = subprocess.Popen(self.as_dynamo(argv), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def stop():
            if node.poll() is None:
                # Through sudo, `node` is sudo itself: it passes SIGTERM on to
                # dynamod but cannot pass SIGKILL. A node that does not stop
                # is killed as root, by its user (setUp made sure that no
                # other dynamo installation runs here).
                node.terminate()
                try:
                    node.wait(timeout=harness.STOP_DEADLINE)
                except subprocess.TimeoutExpired:
                    self.sudo("pkill", "-KILL", "-u", "dynamo", "-x", "dynamod", check=False)
                    node.kill()
                    node.wait()
            node.stderr.close()
        self.addCleanup(stop)
        self.wait_answering(node, endpoint)
        return node

    def wait_answering(self, node, endpoint):
        def answering():
            if node.poll() is not None:
                self.fail("the installed dynamod exited %d: %s" %
                          (node.returncode, node.stderr.read().decode("utf-8", "replace")))
            r = self.ctl(endpoint, "status")
            return None if r.returncode == 0 else r.stderr
        harness.wait_until(answering, harness.READY_DEADLINE, "the installed dynamod to answer")

    def ctl(self, endpoint, *args, curve=ADMIN_CURVE):
        """dynamoctl against the installed node; by default as this host's
        operator: root, with the admin key pair the package made."""
        prefix = self.root if curve == ADMIN_CURVE else []
        return run(prefix + ["/usr/bin/dynamoctl", "--node", endpoint] + list(curve) + list(args),
                   check=False)

    def read_root_file(self, path):
        return self.sudo("cat", path).out

    def check_keys(self, added=()):
        """What dynamo-setup-keys made: the node's pair (its key file the
        dynamo user's, 0600), root's admin pair, and authorized keys that
        admit the admin key (and the lines `added` later), readable by the
        dynamo group. Returns the
        node's and the admin's public keys."""
        listing = self.sudo("stat", "-c", "%n %U %G %a", "/etc/dynamo/node.key",
                            "/etc/dynamo/node.pub", "/etc/dynamo/admin.key", "/etc/dynamo/admin.pub",
                            "/etc/dynamo/authorized_keys").out.split("\n")
        self.assertEqual([line for line in listing if line], [
            "/etc/dynamo/node.key dynamo dynamo 600", "/etc/dynamo/node.pub root root 644",
            "/etc/dynamo/admin.key root root 600", "/etc/dynamo/admin.pub root root 644",
            "/etc/dynamo/authorized_keys root dynamo 640"])
        with open("/etc/dynamo/node.pub") as f:
            node_key = f.read().strip()
        with open("/etc/dynamo/admin.pub") as f:
            admin_key = f.read().strip()
        self.assertEqual(len(node_key), 40)
        self.assertNotEqual(node_key, admin_key)
        authorized = []
        for line in self.read_root_file("/etc/dynamo/authorized_keys").splitlines():
            fields = line.split()
            # A Z85 key may hold '#': a comment is a first field that is not
            # a key, or the fields after one that starts with '#'.
            if not fields or (fields[0].startswith("#") and len(fields[0]) != 40):
                continue
            end = next((i for i, f in enumerate(fields) if i > 0 and f.startswith("#")),
                       len(fields))
            authorized.append(fields[:end])
        self.assertEqual(authorized, [[admin_key, "admin"]] + [list(a) for a in added])
        self.assertNotIn("secret", self.read_root_file("/etc/dynamo/node.pub"))
        return node_key, admin_key

    def test_install_run_remove_purge(self):
        debs = [self.pkgs[("deb", n)] for n in DEB_PACKAGES]
        self.sudo("dpkg", "-i", *debs)

        # What the maintainer scripts made.
        user = pwd.getpwnam("dynamo")
        self.assertEqual(user.pw_dir, "/var/lib/dynamo")
        st = os.stat("/var/lib/dynamo")
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (user.pw_uid, 0o750))
        self.assertTrue(os.access("/usr/bin/dynamod", os.X_OK))
        node_key, admin_key = self.check_keys()

        # The unit's ExecStartPre and ExecStart, as the unit's user. The
        # listen address comes from the command line (it overrides the
        # file), so the test never takes a fixed port.
        argv = self.exec_start()
        self.assertEqual(argv, ["/usr/bin/dynamod", "--config", "/etc/dynamo/dynamod.conf"])
        check = run(self.as_dynamo(argv + ["--check-config"]), check=False)
        self.assertEqual(check.returncode, 0, check.describe())
        self.assertIn("configuration OK", check.out)
        self.assertIn("/usr/lib/dynamo/plugins/file.so", check.out)
        mysql_check = run(self.as_dynamo(argv + ["--backend", "mysql", "--check-config"]),
                          check=False)
        self.assertEqual(mysql_check.returncode, 0, mysql_check.describe())

        endpoint = endpoint_of(free_port())
        node = self.start_installed(argv + ["--listen", endpoint])
        put = self.ctl(endpoint, "put", "packaged-key", "packaged-value")
        self.assertEqual(put.returncode, 0, put.describe())
        got = self.ctl(endpoint, "get", "packaged-key")
        self.assertEqual(got.returncode, 0, got.describe())
        self.assertEqual(got.out.splitlines()[0], "packaged-value")
        status = self.ctl(endpoint, "--json", "status")
        self.assertIn('"backend":"file"', status.out.replace(" ", ""))
        # CURVE is on, with the key the package made; a client without keys
        # is refused with one line.
        security = json.loads(status.out)["security"]
        self.assertEqual((security["curve"], security["public_key"]), (True, node_key))
        plain = self.ctl(endpoint, "status", curve=())
        self.assertEqual(plain.returncode, harness.EXIT_NOT_AUTHORIZED, plain.describe())
        self.assertIn("requires CURVE", plain.stderr)

        # An application's key, added to the authorized keys as the
        # operator would, is admitted on SIGHUP (systemctl reload).
        app_dir = tempfile.mkdtemp(prefix="dynamo-app-")
        self.addCleanup(shutil.rmtree, app_dir, ignore_errors=True)
        run(["/usr/bin/dynamoctl", "keygen", "--out", os.path.join(app_dir, "app")])
        with open(os.path.join(app_dir, "app.pub")) as f:
            app_key = f.read().strip()
        app_curve = ("--curve-secret-key-file", os.path.join(app_dir, "app.key"),
                     "--server-public-key", "/etc/dynamo/node.pub")
        self.sudo("sh", "-c", "echo '%s client' >> /etc/dynamo/authorized_keys" % app_key)
        node.send_signal(signal.SIGHUP)
        harness.wait_until(
            lambda: None if (r := self.ctl(endpoint, "status", curve=app_curve)).returncode == 0
            else r.describe(), 10 * TIME_SCALE, "the application's key to be admitted")
        refused = self.ctl(endpoint, "remove", "nobody", curve=app_curve)
        self.assertEqual(refused.returncode, harness.EXIT_NOT_AUTHORIZED, refused.describe())

        # A program built against the -dev package talks to it.
        with tempfile.TemporaryDirectory() as tmp:
            exe = os.path.join(tmp, "cart")
            run(["cc", "-std=c11", "-o", exe, os.path.join(SOURCE_DIR, "examples/c/cart.c"),
                 "-ldynamo-client"])
            cart = run([exe, "--key", "packaged-cart", "--key-pair",
                        os.path.join(app_dir, "app.key"), "--server-public-key",
                        "/etc/dynamo/node.pub", endpoint], check=False)
            self.assertEqual(cart.returncode, 0, cart.describe())
            self.assertIn("after write-back: 1 version", cart.out)

        node.send_signal(signal.SIGTERM)
        try:
            rc = node.wait(timeout=harness.STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.fail("the installed dynamod did not stop on SIGTERM")
        self.assertEqual(rc, 0, node.stderr.read().decode("utf-8", "replace"))
        node.stderr.close()
        data = self.data_files()
        self.assertTrue(data, "the node wrote nothing in /var/lib/dynamo")
        self.assertEqual(set(data.values()), {user.pw_uid}, data)

        # Remove: the programs go, the data and the configuration stay.
        self.sudo("dpkg", "-r", *reversed(DEB_PACKAGES))
        self.assertFalse(os.path.exists("/usr/bin/dynamod"))
        self.assertFalse(os.path.exists("/usr/lib/dynamo/plugins/file.so"))
        self.assertEqual(self.data_files(), data)
        self.assertTrue(os.path.isfile("/etc/dynamo/dynamod.conf"))

        # Reinstalled, the node finds its data again, and its keys: the
        # post-install script never replaces them.
        self.sudo("dpkg", "-i", self.pkgs[("deb", "dynamo")])
        self.assertEqual(self.check_keys(added=[(app_key, "client")]), (node_key, admin_key))
        node = self.start_installed(argv + ["--listen", endpoint])
        got = self.ctl(endpoint, "get", "packaged-key")
        self.assertEqual(got.returncode, 0, got.describe())
        self.assertEqual(got.out.splitlines()[0], "packaged-value")
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=harness.STOP_DEADLINE)

        # Purge: the data and the configuration go too.
        self.sudo("dpkg", "--purge", "dynamo")
        self.assertFalse(os.path.exists("/var/lib/dynamo"))
        self.assertFalse(os.path.exists("/etc/dynamo/dynamod.conf"))
        for name in ("node.key", "node.pub", "admin.key", "admin.pub", "authorized_keys"):
            self.assertFalse(os.path.exists("/etc/dynamo/" + name), name)


class CheckConfigTest(harness.DynamoTestCase):
    """dynamod --check-config on the packaged configuration (build tree)."""

    def keys(self):
        """The CURVE files of a packaged node, made here by the package's
        dynamo-setup-keys; the options that point the packaged config at them."""
        keys_dir = os.path.join(self.work_dir, "etc")
        if not os.path.isdir(keys_dir):
            os.makedirs(keys_dir)
            r = run([os.path.join(SOURCE_DIR, "packaging/dynamo-setup-keys"), keys_dir,
                     pwd.getpwuid(os.getuid()).pw_name],
                    env=dict(os.environ, DYNAMOCTL=os.path.join(harness.BIN_DIR, "dynamoctl")))
            self.assertEqual(r.out + r.stderr, "", r.describe())
        return ["--curve-secret-key-file", os.path.join(keys_dir, "node.key"),
                "--authorized-keys", os.path.join(keys_dir, "authorized_keys")]

    def check(self, *args, data_dir=None):
        data_dir = data_dir or os.path.join(self.work_dir, "data")
        return harness.run_dynamod(["--config", os.path.join(SOURCE_DIR, "packaging/dynamod.conf"),
                                    "--data-dir", data_dir, "--plugin-dir", harness.PLUGIN_DIR,
                                    "--check-config"] + self.keys() + list(args))

    def test_setup_keys_makes_private_keys_once(self):
        self.keys()
        keys_dir = os.path.join(self.work_dir, "etc")
        modes = {name: stat.S_IMODE(os.stat(os.path.join(keys_dir, name)).st_mode)
                 for name in os.listdir(keys_dir)}
        self.assertEqual(modes, {"node.key": 0o600, "node.pub": 0o644, "admin.key": 0o600,
                                 "admin.pub": 0o644, "authorized_keys": 0o640})
        def contents():
            files = {}
            for name in modes:
                with open(os.path.join(keys_dir, name)) as f:
                    files[name] = f.read()
            return files

        before = contents()
        with open(os.path.join(keys_dir, "admin.pub")) as f:
            admin = f.read().strip()
        self.assertIn("\n%s admin " % admin, before["authorized_keys"])
        # A second run (an upgrade, a reinstall) changes nothing.
        r = run([os.path.join(SOURCE_DIR, "packaging/dynamo-setup-keys"), keys_dir,
                 pwd.getpwuid(os.getuid()).pw_name],
                env=dict(os.environ, DYNAMOCTL=os.path.join(harness.BIN_DIR, "dynamoctl")))
        self.assertEqual(r.out + r.stderr, "", r.describe())
        self.assertEqual(contents(), before)
        # The node serves with those keys: the admin key gets in, none other.
        node = harness.Node(self.work_dir, "packaged-keys", port=free_port(),
                            extra_args=self.keys())
        self.addCleanup(node.cleanup)
        harness.CURVE_ARGS[node.endpoint] = ["--curve-secret-key-file",
                                             os.path.join(keys_dir, "admin.key"),
                                             "--server-public-key",
                                             os.path.join(keys_dir, "node.pub")]
        self.addCleanup(harness.CURVE_ARGS.pop, node.endpoint, None)
        node.start()
        self.assertTrue(harness.status_of(node)["security"]["curve"])
        plain = harness.run_ctl(node.endpoint, "status", curve=())
        self.assertEqual(plain.returncode, harness.EXIT_NOT_AUTHORIZED, plain.describe())

    def test_names_a_missing_key_file(self):
        r = harness.run_dynamod(["--config", os.path.join(SOURCE_DIR, "packaging/dynamod.conf"),
                                 "--data-dir", os.path.join(self.work_dir, "data"),
                                 "--plugin-dir", harness.PLUGIN_DIR, "--check-config",
                                 "--curve-secret-key-file", os.path.join(self.work_dir, "no.key"),
                                 "--authorized-keys", os.path.join(self.work_dir, "none")])
        self.assertEqual(r.returncode, harness.EXIT_USAGE, r.describe())
        lines = harness.error_lines(r.stderr)
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(os.path.join(self.work_dir, "no.key"), lines[0])

    def test_accepts_the_packaged_config(self):
        r = self.check()
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertRegex(r.out, r"^configuration OK: .*engine file .*data folder .*\n$")
        self.assertEqual(r.stderr, "")
        # Opens nothing: no data folder made, no port taken.
        self.assertFalse(os.path.exists(os.path.join(self.work_dir, "data")))

    def test_rejects_a_missing_plugin(self):
        r = self.check("--backend", "nosuch")
        self.assertEqual(r.returncode, 1, r.describe())
        lines = harness.error_lines(r.stderr)
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("nosuch", lines[0])
        self.assertEqual(r.out, "")

    def test_rejects_a_config_file_naming_a_missing_plugin(self):
        conf = os.path.join(self.work_dir, "missing-plugin.conf")
        with open(os.path.join(SOURCE_DIR, "packaging/dynamod.conf")) as f:
            text = f.read().replace("\nbackend = file\n", "\nbackend = cassandra\n")
        self.assertIn("\nbackend = cassandra\n", text)
        with open(conf, "w") as f:
            f.write(text)
        r = harness.run_dynamod(["--config", conf, "--plugin-dir", harness.PLUGIN_DIR,
                                 "--data-dir", os.path.join(self.work_dir, "data"),
                                 "--check-config"] + self.keys())
        self.assertEqual(r.returncode, 1, r.describe())
        lines = harness.error_lines(r.stderr)
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("cassandra", lines[0])
        self.assertEqual(r.out, "")

    def test_rejects_a_plugin_of_another_abi(self):
        r = self.check("--backend", os.path.join(harness.TEST_PLUGIN_DIR, "bad_abi.so"))
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertEqual(len(harness.error_lines(r.stderr)), 1, r.stderr)

    def test_rejects_a_bad_file(self):
        conf = os.path.join(self.work_dir, "bad.conf")
        with open(conf, "w") as f:
            f.write("listen = tcp://127.0.0.1:7101\nreplicas = three\n")
        r = harness.run_dynamod(["--config", conf, "--check-config"])
        self.assertEqual(r.returncode, 2, r.describe())
        lines = harness.error_lines(r.stderr)
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(conf, lines[0])
        self.assertIn("replicas", lines[0])

    def test_rejects_a_data_folder_that_cannot_be_made(self):
        blocker = os.path.join(self.work_dir, "file")
        open(blocker, "w").close()
        r = self.check(data_dir=os.path.join(blocker, "data"))
        self.assertEqual(r.returncode, 1, r.describe())
        self.assertIn("not a writable folder", r.stderr)

    def test_engine_and_options_come_from_the_file(self):
        conf = os.path.join(self.work_dir, "mysql.conf")
        with open(conf, "w") as f:
            f.write("backend = mysql\nbackend-opt = host=127.0.0.1\nbackend-opt = user=dynamo\n"
                    "data-dir = %s\n" % os.path.join(self.work_dir, "d"))
        r = harness.run_dynamod(["--config", conf, "--plugin-dir", harness.PLUGIN_DIR,
                                 "--check-config"])
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertIn("engine mysql", r.out)


if __name__ == "__main__":
    unittest.main()
