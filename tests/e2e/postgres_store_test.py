"""Start-up against PostgreSQL: connection failures, TLS, and the commands that share it.

- serve with an unreachable PostgreSQL exits non-zero within seconds and names
  the address, never the password;
- serve with an unreachable Redis exits non-zero within seconds and names the
  address, never the password;
- `puddle worker` on the embedded SQLite store refuses to start;
- sslmode=require against a server without TLS fails with libpq's reason;
- sslmode=require against a server with TLS connects over TLS, and
  `puddle user reset-password` works on that store.
"""

import os
import subprocess
import tempfile
import time
import unittest

import e2e_support
from e2e_support import ADMIN_PASSWORD, PuddleTestCase, ThrowawayPostgres

PASSWORD_NEVER_SHOWN = "pg-password-never-shown"


def run_puddle(arguments, workdir, timeout=30, stdin_text=None):
    """Run the puddle binary with arguments; return (CompletedProcess, seconds taken)."""
    environment = dict(os.environ)
    for name in ("PUDDLE_CONFIG_DIR", "PUDDLE_config_dir", "PUDDLE_DATA_DIR", "PUDDLE_LISTEN"):
        environment.pop(name, None)
    started = time.monotonic()
    result = subprocess.run([e2e_support.BINARY, *arguments], input=stdin_text,
                            capture_output=True, text=True, timeout=timeout, env=environment,
                            cwd=workdir)
    return result, time.monotonic() - started


@e2e_support.require_root
class StartupFailureTest(unittest.TestCase):
    """Commands that must fail at start-up, each in its own temporary directory."""

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="puddle-e2e-pg-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.workdir])

    def write_config(self, text):
        path = os.path.join(self.workdir, "config.yaml")
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def serve(self, config_path, timeout=30):
        return run_puddle(["serve", "--config", config_path,
                           "--data-dir", os.path.join(self.workdir, "data"),
                           "--listen", f"127.0.0.1:{e2e_support.free_port()}"],
                          self.workdir, timeout=timeout)

    def test_unreachable_postgres_fails_fast(self):
        # A port that was free a moment ago: nothing listens there.
        port = e2e_support.free_port()
        config_path = self.write_config(
            "db:\n  connection:\n    drivername: postgres\n    host: 127.0.0.1\n"
            f"    port: {port}\n    user: postgres\n    password: {PASSWORD_NEVER_SHOWN}\n"
            "    sslmode: disable\n")

        result, seconds = self.serve(config_path)

        self.assertNotEqual(result.returncode, 0, result.stderr)
        self.assertLess(seconds, 5, f"serve took {seconds:.1f} s to give up")
        self.assertIn(f"127.0.0.1:{port}/puddle", result.stderr)
        self.assertIn("Connection refused", result.stderr)
        self.assertNotIn(PASSWORD_NEVER_SHOWN, result.stderr + result.stdout)

    def test_unreachable_redis_fails_fast(self):
        port = e2e_support.free_port()
        config_path = self.write_config(
            "redis:\n  connections:\n    protocol: tcp\n"
            f"    address: 127.0.0.1:{port}\n    password: {PASSWORD_NEVER_SHOWN}\n"
            "    tls: false\n")

        result, seconds = self.serve(config_path)

        self.assertNotEqual(result.returncode, 0, result.stderr)
        self.assertLess(seconds, 5, f"serve took {seconds:.1f} s to give up")
        self.assertIn(f"127.0.0.1:{port}", result.stderr)
        self.assertIn("Redis", result.stderr)
        self.assertNotIn(PASSWORD_NEVER_SHOWN, result.stderr)

    def test_worker_refuses_sqlite_store(self):
        result, _ = run_puddle(["worker", "--data-dir", os.path.join(self.workdir, "data")],
                               self.workdir)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("puddle worker needs a shared PostgreSQL store: set "
                      "db.connection.drivername to postgres", result.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "data", "puddle.db")),
                         "the refused worker created a SQLite store")

    @e2e_support.require_postgres
    def test_sslmode_require_without_server_tls_fails(self):
        postgres = ThrowawayPostgres(tls=False)
        self.addCleanup(postgres.stop)
        postgres.start()
        config_path = self.write_config(postgres.config_text(sslmode="require"))

        result, seconds = self.serve(config_path)

        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertLess(seconds, 5, f"serve took {seconds:.1f} s to give up")
        self.assertIn(f"127.0.0.1:{postgres.port}/puddle", result.stderr)
        self.assertIn("server does not support SSL, but SSL was required", result.stderr)
        self.assertNotIn(postgres.password, result.stderr + result.stdout)


@e2e_support.require_root
@e2e_support.require_postgres
class PostgresTlsTest(PuddleTestCase):
    """serve on a PostgreSQL server that has TLS on, with sslmode: require."""

    store = "postgres"
    postgres_tls = True
    postgres_sslmode = "require"
    start_worker = False

    def test_connections_use_tls(self):
        rows = self.postgres.query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid "
            "WHERE a.application_name = 'puddle'")
        self.assertTrue(rows, "Puddle holds no connection to PostgreSQL")
        self.assertEqual({row[0] for row in rows}, {"t"},
                         f"some of Puddle's connections are not encrypted: {rows}")

        # The store works: the admin signs in, and no SQLite file was made.
        token = self.client.token_for_password("admin", ADMIN_PASSWORD)
        reply = self.api("GET", "/api/v1/auth/me", token=token)
        self.assertEqual(reply.status, 200, repr(reply))
        self.assertFalse(os.path.exists(os.path.join(self.server.data_dir, "puddle.db")))

        # serve runs the periodic loops, each under its lease.
        def leases():
            return self.postgres.query("SELECT name FROM leases ORDER BY name")

        e2e_support.wait_until(lambda: len(leases()) == 4, 10)
        self.assertEqual(leases(), [["budget"], ["idle"], ["reaper"], ["reconcile"]])

    def test_reset_password_uses_postgres(self):
        self.client.create_user(self.admin_token, "bob", "bob-password-1")
        result, _ = run_puddle(["user", "reset-password", "bob", "--password-stdin",
                                "--config", self.server.config_path],
                               self.workdir, stdin_text="bob-password-2\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("The password of bob is reset", result.stdout)

        token = self.client.token_for_password("bob", "bob-password-2")
        self.assertTrue(token)
        reply = self.api("POST", "/api/v1/auth/token",
                         {"username": "bob", "password": "bob-password-1"})
        self.assertEqual(reply.status, 401, f"the old password still works: {reply!r}")


if __name__ == "__main__":
    e2e_support.main()
