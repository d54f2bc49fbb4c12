"""Shared harness for Puddle's end-to-end tests.

Each test file starts its own `puddle serve` on a free loopback port with a
temporary data directory and talks to it over HTTPS, trusting the generated
certificate. A test class with store = "postgres" first starts a throwaway
PostgreSQL (tests/support/pg_throwaway.sh), points Puddle at it, and runs the
jobs in a separate `puddle worker` process. At the end it stops everything it
started: the systems it created (through the API), the server and worker
(SIGTERM), any product process left behind, found by PUDDLE_SYSTEM_ID or
PUDDLE_INSTALLATION_ID in its environment, and PostgreSQL.

Only the Python standard library is used. Run the tests with /usr/bin/python3
as root: the local provider drops privileges to an unprivileged uid, which
needs root.
"""

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

ADMIN_PASSWORD = "e2e-admin-password-1"
SESSION_COOKIE = "__Host-puddle_session"

# Set by parse_arguments() before unittest runs.
BINARY = None
KEEP_DATA = False

PG_THROWAWAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support",
                            "pg_throwaway.sh")
PSQL = "/usr/lib/postgresql/15/bin/psql"
REDIS_SERVER = "/usr/bin/redis-server"

# A product for tests that need a system but not Jupyter: a small HTTP server
# that returns 200 to every GET, so the health check at <basePath><healthPath>
# passes at once. Its braces name no launch placeholder, so Puddle passes the
# script unchanged.
FAST_SERVER_SCRIPT = """
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
"""

FAST_LAUNCH = {
    "command": ["/usr/bin/python3", "-c", FAST_SERVER_SCRIPT, "{address}", "{port}"],
    "healthPath": "",
    "startTimeoutSeconds": 30,
}


def port_range_config(first_port):
    """Return a config giving local products 100 ports from first_port.

    Puddle hands out the first free port of its range, so two servers on one
    host starting systems at the same time pick the same port and one product
    fails to bind. Test files that may run in parallel therefore use
    disjoint ranges.
    """
    return f"providers:\n  local:\n    portRange: {first_port}-{first_port + 99}\n"


def parse_arguments():
    """Read --binary (and --keep-data) and leave the rest to unittest."""
    global BINARY, KEEP_DATA
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--binary", required=True, help="path of the built puddle binary")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the temporary data directories for inspection")
    known, rest = parser.parse_known_args()
    BINARY = os.path.abspath(known.binary)
    KEEP_DATA = known.keep_data or os.environ.get("PUDDLE_E2E_KEEP") == "1"
    return [sys.argv[0]] + rest


def main():
    argv = parse_arguments()
    unittest.main(argv=argv, verbosity=2)


def require_root(test_case_class):
    """Skip a test class unless it runs as root: the local provider needs root."""
    if os.geteuid() != 0:
        return unittest.skip("e2e tests start systems under other uids and must run as root")(
            test_case_class)
    return test_case_class


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, timeout, interval=0.2):
    """Poll predicate() until it returns a true value or timeout seconds pass.

    Returns the last value of predicate(), true or not.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --- processes -----------------------------------------------------------

def read_environ(pid):
    """Return /proc/<pid>/environ as a dict, or None if unreadable or gone."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    result = {}
    for entry in raw.split(b"\0"):
        if b"=" in entry:
            name, value = entry.split(b"=", 1)
            result[name.decode(errors="replace")] = value.decode(errors="replace")
    return result


def read_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return None


def read_status_field(pid, field):
    """Return the value of one line of /proc/<pid>/status ("Uid", "State"...)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def is_zombie(pid):
    state = read_status_field(pid, "State")
    return state is None or state.startswith("Z")


def all_pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def processes_with_env(name, value):
    """Return the pids of live (non-zombie) processes whose environment has name=value."""
    matches = []
    for pid in all_pids():
        environ = read_environ(pid)
        if environ is not None and environ.get(name) == value and not is_zombie(pid):
            matches.append(pid)
    return matches


def remove_firewall_chain(installation_id):
    """Remove the iptables chain a test server installed for its systems' uids.

    Puddle leaves the chain in place when it stops, because its systems keep
    running; a test installation is gone for good, so its chain goes too.
    """
    chain = "PUDDLE-" + installation_id[:8]
    for tool in ("/usr/sbin/iptables", "/usr/sbin/ip6tables"):
        if not os.path.exists(tool):
            continue
        listed = subprocess.run([tool, "-w", "10", "-S", "OUTPUT"], capture_output=True, text=True)
        for line in listed.stdout.splitlines():
            if line.startswith("-A OUTPUT") and line.endswith("-j " + chain):
                rule = line.split()[2:]
                subprocess.run([tool, "-w", "10", "-D", "OUTPUT"] + rule, capture_output=True)
        subprocess.run([tool, "-w", "10", "-F", chain], capture_output=True)
        subprocess.run([tool, "-w", "10", "-X", chain], capture_output=True)
        # The chains of the systems' network namespaces, and their jumps.
        for table, builtin, suffix in (("filter", "INPUT", "-IN"), ("filter", "FORWARD", "-FWD"),
                                       ("nat", "POSTROUTING", "-NAT")):
            listed = subprocess.run([tool, "-w", "10", "-t", table, "-S", builtin],
                                    capture_output=True, text=True)
            for line in listed.stdout.splitlines():
                if line.startswith("-A " + builtin) and line.endswith("-j " + chain + suffix):
                    subprocess.run([tool, "-w", "10", "-t", table, "-D", builtin] +
                                   line.split()[2:], capture_output=True)
            subprocess.run([tool, "-w", "10", "-t", table, "-F", chain + suffix],
                           capture_output=True)
            subprocess.run([tool, "-w", "10", "-t", table, "-X", chain + suffix],
                           capture_output=True)
    # Namespaces of systems that were not deleted; their veths go with them.
    if os.path.isdir("/run/netns"):
        for name in os.listdir("/run/netns"):
            if name.startswith("puddle-" + installation_id + "-"):
                subprocess.run(["/usr/sbin/ip", "netns", "delete", name], capture_output=True)


def kill_processes(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- PostgreSQL ----------------------------------------------------------

def require_postgres(test_case_class):
    """Skip a test class unless the PostgreSQL 15 server binaries are installed."""
    if not os.access(PSQL, os.X_OK):
        return unittest.skip("PostgreSQL 15 is not installed; install postgresql-15 "
                             "(scripts/setup.sh does)")(test_case_class)
    return test_case_class


class ThrowawayRedis:
    """A password-protected redis-server on 127.0.0.1 in a temporary directory."""

    def __init__(self):
        self.process = None
        self.port = None
        self.password = None
        self.directory = None

    def start(self, timeout=15):
        self.directory = tempfile.mkdtemp(prefix="puddle-e2e-redis-")
        self.password = secrets.token_hex(16)
        self.port = free_port()
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.directory, "--requirepass", self.password],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(self._answers, timeout):
            self.stop()
            raise RuntimeError(f"redis-server did not accept connections on port {self.port}")

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                return b"PONG" in connection.recv(64) or b"PONG" in connection.recv(64)
        except OSError:
            return False

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def config_text(self):
        """Return the redis.connections section that points Puddle at this server."""
        return ("redis:\n"
                "  connections:\n"
                "    protocol: tcp\n"
                f"    address: 127.0.0.1:{self.port}\n"
                f"    password: '{self.password}'\n"
                "    tls: false\n")


def require_redis(test_case_class):
    """Skip a test class unless redis-server is installed."""
    if not os.access(REDIS_SERVER, os.X_OK):
        return unittest.skip("redis-server is not installed; install redis-server "
                             "(scripts/setup.sh does)")(test_case_class)
    return test_case_class


class ThrowawayPostgres:
    """A PostgreSQL server on 127.0.0.1 with a database `puddle`, in a temporary directory.

    With tls=True the server also accepts TLS, with a self-signed certificate.
    The script's watchdog stops the server if this test process dies first.
    """

    def __init__(self, tls=False):
        self.tls = tls
        self.values = {}

    @property
    def port(self):
        return int(self.values["PG_PORT"])

    @property
    def password(self):
        return self.values["PG_PASSWORD"]

    def start(self):
        last_error = None
        # Another process may take the port before the server binds it.
        for _ in range(3):
            command = [PG_THROWAWAY, "start"] + (["--tls"] if self.tls else []) + [
                str(free_port()), str(os.getpid())]
            result = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if result.returncode == 0:
                self.values = dict(line.split("=", 1) for line in result.stdout.splitlines()
                                   if "=" in line)
                return
            last_error = result.stderr
        raise RuntimeError(f"pg_throwaway.sh start failed:\n{last_error}")

    def stop(self):
        directory = self.values.get("PG_DIR")
        if directory:
            subprocess.run([PG_THROWAWAY, "stop", directory], capture_output=True, timeout=60)
            watchdog = self.values.get("PG_WATCHDOG_PID")
            if watchdog:
                try:
                    os.killpg(int(watchdog), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.values = {}

    def config_text(self, sslmode="disable", port=None):
        """Return the db.connection section that points Puddle at this server."""
        return ("db:\n"
                "  connection:\n"
                "    drivername: postgres\n"
                "    host: 127.0.0.1\n"
                f"    port: {port or self.port}\n"
                "    user: postgres\n"
                f"    password: '{self.password}'\n"
                "    dbname: puddle\n"
                f"    sslmode: {sslmode}\n")

    def query(self, sql):
        """Run one SQL statement in database puddle; return its rows as lists of text."""
        environment = dict(os.environ, PGPASSWORD=self.password, PGSSLMODE="disable")
        result = subprocess.run([PSQL, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                                 "-d", "puddle", "-qAt", "-F", "\t", "-c", sql],
                                capture_output=True, text=True, env=environment, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {result.stderr}")
        return [line.split("\t") for line in result.stdout.splitlines() if line]


# --- HTTP ----------------------------------------------------------------

class Reply:
    """One HTTP response: status, headers (lower-case names) and body."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode())

    def header(self, name):
        return self.headers.get(name.lower())

    def error(self):
        """Return the "error" object of an error body, or {} if there is none."""
        try:
            return self.json().get("error", {})
        except (ValueError, AttributeError):
            return {}

    def __repr__(self):
        text = self.body[:600].decode(errors="replace")
        return f"HTTP {self.status} {text}"


class Client:
    """Minimal HTTPS client for one Puddle server, verifying its certificate."""

    def __init__(self, port, cafile, host="127.0.0.1"):
        self.host = host
        self.port = port
        self.context = ssl.create_default_context(cafile=cafile)

    @property
    def origin(self):
        return f"https://{self.host}:{self.port}"

    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                content_type="application/json", cookie=None, timeout=30):
        """Send one request and return a Reply.

        body is sent as JSON; raw (bytes) is sent as is, with content_type
        unless content_type is None.
        """
        all_headers = {}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
        elif raw is not None:
            payload = raw
        if payload is not None and content_type is not None:
            all_headers["Content-Type"] = content_type
        if token is not None:
            all_headers["X-Puddle-Token"] = token
        if cookie is not None:
            all_headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
        all_headers.update(headers or {})
        connection = http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                                 timeout=timeout)
        try:
            connection.request(method, path, body=payload, headers=all_headers)
            response = connection.getresponse()
            reply_headers = {name.lower(): value for name, value in response.getheaders()}
            return Reply(response.status, reply_headers, response.read())
        finally:
            connection.close()

    def token_for_password(self, username, password):
        reply = self.request("POST", "/api/v1/auth/token",
                             {"username": username, "password": password})
        if reply.status != 200:
            raise AssertionError(f"POST /api/v1/auth/token for {username}: {reply!r}")
        return reply.json()["token"]

    def token_for_api_key(self, key_id, secret):
        reply = self.request("POST", "/api/v1/auth/token",
                             {"apiKeyId": key_id, "apiSecretKey": secret})
        if reply.status != 200:
            raise AssertionError(f"POST /api/v1/auth/token with API key {key_id}: {reply!r}")
        return reply.json()["token"]

    def login(self, username, password):
        """Sign in with a password; return (session cookie value, csrfToken)."""
        reply = self.request("POST", "/api/v1/auth/login",
                             {"username": username, "password": password})
        if reply.status != 200:
            raise AssertionError(f"POST /api/v1/auth/login for {username}: {reply!r}")
        set_cookie = reply.header("set-cookie") or ""
        prefix = SESSION_COOKIE + "="
        if not set_cookie.startswith(prefix):
            raise AssertionError(f"login set no {SESSION_COOKIE} cookie: {set_cookie!r}")
        cookie = set_cookie[len(prefix):].split(";", 1)[0]
        return cookie, reply.json()["csrfToken"]

    def create_user(self, admin_token, username, password, role="user"):
        reply = self.request("POST", "/api/v1/users",
                             {"username": username, "password": password, "role": role},
                             token=admin_token)
        if reply.status != 201:
            raise AssertionError(f"POST /api/v1/users for {username}: {reply!r}")
        return reply.json()


# --- the server ----------------------------------------------------------

class PuddleServer:
    """One `puddle serve` process with its own temporary data directory.

    serve_arguments are added to the command line, such as --workers 0. When
    the config points Puddle at postgres, a ThrowawayPostgres, installation_id()
    reads from it.
    """

    def __init__(self, workdir, config_text=None, serve_arguments=(), postgres=None):
        self.workdir = workdir
        self.serve_arguments = list(serve_arguments)
        self.postgres = postgres
        self.data_dir = os.path.join(workdir, "data")
        self.log_path = os.path.join(workdir, "serve.log")
        self.config_path = None
        if config_text is not None:
            self.config_path = os.path.join(workdir, "config.yaml")
            with open(self.config_path, "w") as handle:
                handle.write(config_text)
        self.port = None
        self.process = None
        self.client = None
        self._log = None

    @property
    def cafile(self):
        return os.path.join(self.data_dir, "tls", "cert.pem")

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout=30, port=None):
        """Start serve and wait for /healthz.

        Without port, a free port is picked, and another one if a race took it.
        """
        if port is not None:
            self.port = port
            self._start_once(timeout)
            return
        last_error = None
        for _ in range(3):
            self.port = free_port()
            try:
                self._start_once(timeout)
                return
            except RuntimeError as error:
                last_error = error
                if "in use" not in str(error):
                    raise
        raise last_error

    def _start_once(self, timeout):
        environment = dict(os.environ)
        environment["PUDDLE_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        for name in ("PUDDLE_CONFIG_DIR", "PUDDLE_config_dir", "PUDDLE_DATA_DIR", "PUDDLE_LISTEN"):
            environment.pop(name, None)
        command = [BINARY, "serve", "--data-dir", self.data_dir,
                   "--listen", f"127.0.0.1:{self.port}"] + self.serve_arguments
        if self.config_path:
            command += ["--config", self.config_path]
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, env=environment,
                                        cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"puddle serve exited with {self.process.returncode} before "
                                   f"answering /healthz:\n{self.log_tail()}")
            if os.path.exists(self.cafile):
                try:
                    client = Client(self.port, self.cafile)
                    reply = client.request("GET", "/healthz", timeout=2)
                    if reply.status == 200 and reply.json() == {"status": "ok"}:
                        self.client = client
                        return
                except (OSError, ssl.SSLError, http.client.HTTPException):
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"puddle serve did not answer /healthz within {timeout} s:\n"
                           f"{self.log_tail()}")

    def terminate(self, timeout=20):
        """Send SIGTERM and wait; SIGKILL if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            self._close_log()
            return None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._close_log()
        return self.process.returncode

    def kill(self):
        """SIGKILL the server, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_log()

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as handle:
                text = handle.read().decode(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def installation_id(self):
        """Read the installation id from the store, or None."""
        if self.postgres is not None:
            try:
                rows = self.postgres.query(
                    "SELECT value FROM settings WHERE key = 'installation_id'")
            except (RuntimeError, KeyError, subprocess.SubprocessError):
                return None
            return rows[0][0] if rows else None
        path = os.path.join(self.data_dir, "puddle.db")
        if not os.path.exists(path):
            return None
        try:
            database = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                row = database.execute(
                    "SELECT value FROM settings WHERE key = 'installation_id'").fetchone()
            finally:
                database.close()
        except sqlite3.Error:
            return None
        return row[0] if row else None


class PuddleWorker:
    """One `puddle worker` process sharing a server's config and data directory.

    It gets the server's listen address through PUDDLE_LISTEN, as it would read
    it from the shared config file, so both install the same firewall rules.
    """

    def __init__(self, server, workers=2):
        self.server = server
        self.workers = workers
        self.log_path = os.path.join(server.workdir, "worker.log")
        self.process = None
        self._log = None

    def start(self, timeout=30):
        """Start the worker and wait until it logs that it runs."""
        environment = dict(os.environ)
        for name in ("PUDDLE_CONFIG_DIR", "PUDDLE_config_dir", "PUDDLE_DATA_DIR"):
            environment.pop(name, None)
        environment["PUDDLE_LISTEN"] = f"127.0.0.1:{self.server.port}"
        command = [BINARY, "worker", "--data-dir", self.server.data_dir,
                   "--config", self.server.config_path, "--workers", str(self.workers)]
        start_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, env=environment,
                                        cwd=self.server.workdir)

        def running():
            if self.process.poll() is not None:
                return True
            with open(self.log_path, "rb") as handle:
                handle.seek(start_offset)
                return b"puddle worker is running" in handle.read()

        wait_until(running, timeout, interval=0.1)
        if self.process.poll() is not None:
            raise RuntimeError(f"puddle worker exited with {self.process.returncode}:\n"
                               f"{self.log_tail()}")
        if not running():
            raise RuntimeError(f"puddle worker did not start within {timeout} s:\n"
                               f"{self.log_tail()}")

    def terminate(self, timeout=20):
        """Send SIGTERM and wait; SIGKILL if it does not exit in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()
        return None if self.process is None else self.process.returncode

    def kill(self):
        """SIGKILL the worker, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_log()

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as handle:
                text = handle.read().decode(errors="replace")
        except OSError:
            return "(no worker log)"
        return "\n".join(text.splitlines()[-lines:])


# --- the test base class -------------------------------------------------

class PuddleTestCase(unittest.TestCase):
    """Base class that starts one server for the whole class and cleans up after it.

    Subclasses call self.track_system(id) for every system they create (the
    helpers here do it), so the class cleanup can delete it and kill what
    is left of it.

    With store = "postgres", the class starts a throwaway PostgreSQL (with TLS
    when postgres_tls is true), adds its db.connection section with
    postgres_sslmode to config_text, and starts a `puddle worker` beside the
    server unless start_worker is false. serve_arguments (such as
    ("--workers", "0")) go to serve.
    """

    config_text = None
    store = "sqlite"
    queue = "embedded"
    postgres_tls = False
    postgres_sslmode = "disable"
    start_worker = True
    serve_arguments = ()
    # Port for the server to listen on; None picks a free one.
    server_port = None
    server = None
    client = None
    worker = None
    postgres = None
    redis = None

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="puddle-e2e-")
        # Systems run under other uids and must reach their homes below it.
        os.chmod(cls.workdir, 0o755)
        cls.system_ids = set()
        cls.installation_ids = set()
        # Class cleanups run even when setUpClass (here or in a subclass) fails.
        cls.addClassCleanup(cls._cleanup)
        config_text = cls.config_text
        if cls.store == "postgres":
            cls.postgres = ThrowawayPostgres(tls=cls.postgres_tls)
            cls.postgres.start()
            config_text = (config_text or "") + cls.postgres.config_text(cls.postgres_sslmode)
        if cls.queue == "redis":
            cls.redis = ThrowawayRedis()
            cls.redis.start()
            config_text = (config_text or "") + cls.redis.config_text()
        cls.server = PuddleServer(cls.workdir, config_text, cls.serve_arguments, cls.postgres)
        cls.server.start(port=cls.server_port)
        if cls.store == "postgres" and cls.start_worker:
            cls.worker = PuddleWorker(cls.server)
            cls.worker.start()
        cls.client = cls.server.client
        cls.admin_token = cls.client.token_for_password("admin", ADMIN_PASSWORD)
        installation = cls.server.installation_id()
        if installation:
            cls.installation_ids.add(installation)

    @classmethod
    def _cleanup(cls):
        server = cls.server
        if server is not None and server.process is not None and server.process.poll() is None:
            cls._delete_systems_through_api()
        if server is not None:
            server.terminate()
            installation = server.installation_id()
            if installation:
                cls.installation_ids.add(installation)
        if cls.worker is not None:
            cls.worker.terminate()
        if cls.postgres is not None:
            cls.postgres.stop()
        if cls.redis is not None:
            cls.redis.stop()
        leftovers = set()
        for system_id in cls.system_ids:
            leftovers.update(processes_with_env("PUDDLE_SYSTEM_ID", system_id))
        for installation in cls.installation_ids:
            leftovers.update(processes_with_env("PUDDLE_INSTALLATION_ID", installation))
        leftovers.discard(os.getpid())
        for installation in cls.installation_ids:
            remove_firewall_chain(installation)
        if leftovers:
            sys.stderr.write(f"e2e cleanup: killing leftover product processes {sorted(leftovers)}\n")
            kill_processes(leftovers)
        if KEEP_DATA:
            sys.stderr.write(f"e2e: kept {cls.workdir}\n")
        else:
            shutil.rmtree(cls.workdir, ignore_errors=True)

    @classmethod
    def _delete_systems_through_api(cls):
        try:
            token = cls.client.token_for_password("admin", ADMIN_PASSWORD)
        except Exception:
            return
        pending = []
        for system_id in cls.system_ids:
            try:
                reply = cls.client.request("DELETE", f"/api/v1/systems/{system_id}", token=token)
                if reply.status == 202:
                    pending.append(system_id)
            except (OSError, http.client.HTTPException):
                pass

        def all_deleted():
            for system_id in pending:
                reply = cls.client.request("GET", f"/api/v1/systems/{system_id}", token=token)
                if reply.status == 200 and reply.json()["status"] not in ("deleted", "failed"):
                    return False
            return True

        try:
            wait_until(all_deleted, 30, interval=0.5)
        except (OSError, http.client.HTTPException):
            pass

    # Helpers used by several test files.

    def logs_tail(self):
        """Return the end of the server's log, and of the worker's when there is one."""
        text = f"server log:\n{self.server.log_tail()}"
        if self.worker is not None:
            text += f"\nworker log:\n{self.worker.log_tail()}"
        return text

    def track_system(self, system_id):
        type(self).system_ids.add(system_id)

    def api(self, method, path, body=None, token=None, **options):
        return self.client.request(method, path, body, token=token, **options)

    def assertError(self, reply, status, code, field=None, message=""):
        """Assert an error reply: HTTP status, error code and, if given, field."""
        self.assertEqual(reply.status, status, f"{message}: {reply!r}")
        error = reply.error()
        self.assertEqual(error.get("code"), code, f"{message}: {reply!r}")
        self.assertTrue(error.get("message"), f"{message}: error has no message: {reply!r}")
        self.assertTrue(error.get("requestId"), f"{message}: error has no requestId: {reply!r}")
        if field is not None:
            self.assertEqual(error.get("field"), field, f"{message}: {reply!r}")

    def register_fast_product(self, token, product_id="fast", version="1.0"):
        """Register the fast test product (admins); return its version string."""
        reply = self.api("POST", "/api/v1/products", {"id": product_id, "label": "Fast"}, token)
        self.assertEqual(reply.status, 201, f"POST /api/v1/products: {reply!r}")
        reply = self.api("POST", f"/api/v1/products/{product_id}/versions",
                         {"version": version}, token)
        self.assertEqual(reply.status, 201, f"POST /api/v1/products/{product_id}/versions: "
                                            f"{reply!r}")
        reply = self.api("POST", "/api/v1/images",
                         {"product": product_id, "version": version, "provider": "local",
                          "launch": FAST_LAUNCH}, token)
        self.assertEqual(reply.status, 201, f"POST /api/v1/images: {reply!r}")
        return version

    def create_system(self, token, name, product="fast", version="1.0",
                      system_type="cpu-small"):
        reply = self.api("POST", "/api/v1/systems",
                         {"name": name, "product": product, "version": version,
                          "systemType": system_type}, token)
        self.assertEqual(reply.status, 201, f"POST /api/v1/systems {name}: {reply!r}")
        system = reply.json()
        self.track_system(system["id"])
        self.assertEqual(system["status"], "queued", repr(reply))
        self.assertEqual(reply.header("location"), f"/api/v1/systems/{system['id']}", repr(reply))
        return system

    def wait_for_status(self, token, system_id, status, timeout=60):
        """Poll GET /systems/<id> until it shows status; fail with its events otherwise."""
        last = {}

        def reached():
            reply = self.api("GET", f"/api/v1/systems/{system_id}", token=token)
            if reply.status != 200:
                return False
            last["system"] = reply.json()
            current = last["system"]["status"]
            if current == "failed" and status != "failed":
                return True
            return current == status

        wait_until(reached, timeout, interval=0.2)
        system = last.get("system", {})
        if system.get("status") != status:
            events = self.api("GET", f"/api/v1/systems/{system_id}/events",
                              token=self.admin_token)
            self.fail(f"system {system_id} is {system.get('status')!r}, not {status!r}, "
                      f"after {timeout} s\nevents: {events!r}\n{self.logs_tail()}")
        return system
