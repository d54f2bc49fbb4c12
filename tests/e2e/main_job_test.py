"""End-to-end test of the main job: a user runs Jupyter through the CLI.

An admin creates a user. The user signs in, makes an API key and, through
the `puddle` CLI, creates a Jupyter system. The user writes a file into it,
stops and starts it, and finds the file again. Meanwhile the test checks that the
product never runs as root, keeps its token out of its command line, and that
the data directory is private to root. Then `puddle serve` is killed with
SIGKILL and restarted: it must adopt the running Jupyter, not start a second
one. Finally the user deletes the system and no process of it remains.

main_job_postgres_test.py runs the same steps on PostgreSQL, with the jobs in
a separate `puddle worker` process.

The steps run in order and share one server; a step whose predecessor failed
is skipped.
"""

import functools
import http.client
import json
import os
import re
import stat
import subprocess
import tempfile
import unittest
import urllib.parse

import e2e_support
from e2e_support import ADMIN_PASSWORD, PuddleTestCase, processes_with_env, read_cmdline

USER = "alice"
USER_PASSWORD = "alice-password-1"
SYSTEM_NAME = "notebook"
NOTE_NAME = "e2e-note.txt"
NOTE_TEXT = "written before the stop\n"
EVENT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  (info|warning|error)\s")


def step(method=None, *, blocking=True):
    """Run a test step only if every earlier blocking step passed.

    A failed step with blocking=False (a check that changes nothing) lets the
    later steps run.
    """

    def decorate(method):
        @functools.wraps(method)
        def run(self):
            cls = type(self)
            if cls.broken_step:
                self.skipTest(f"an earlier step failed: {cls.broken_step}")
            try:
                method(self)
            except unittest.SkipTest:
                raise
            except BaseException:
                if blocking:
                    cls.broken_step = method.__name__
                raise

        return run

    return decorate(method) if method is not None else decorate


def jupyter_processes(system_id):
    """Return the pids of the Jupyter server processes of a system."""
    pids = []
    for pid in processes_with_env("PUDDLE_SYSTEM_ID", system_id):
        command = read_cmdline(pid) or []
        if any("jupyter-notebook" in part for part in command):
            pids.append(pid)
    return pids


def system_processes(system_id):
    """Return every live process of a system, its supervisor included."""
    return processes_with_env("PUDDLE_SYSTEM_ID", system_id)


@e2e_support.require_root
class MainJobTest(PuddleTestCase):
    # Every other setting keeps its default.
    config_text = e2e_support.port_range_config(29000)
    broken_step = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cli_home = tempfile.mkdtemp(prefix="cli-home-", dir=cls.workdir)
        cls.state = {}

    # --- helpers ---------------------------------------------------------

    def run_cli(self, *arguments, timeout=300):
        """Run the puddle CLI as the user; return the CompletedProcess."""
        environment = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": self.cli_home,
            "XDG_CONFIG_HOME": os.path.join(self.cli_home, "config"),
            "PUDDLE_URL": self.server.url,
            "PUDDLE_API_KEY_ID": self.state["api_key_id"],
            "PUDDLE_API_SECRET_KEY": self.state["api_secret"],
            "LANG": "C.UTF-8",
        }
        command = [e2e_support.BINARY, *arguments, "--ca-cert", self.server.cafile]
        return subprocess.run(command, env=environment, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)

    def assertCliSucceeded(self, result, what):
        self.assertEqual(result.returncode, 0,
                         f"{what} exited with {result.returncode}\nstdout:\n{result.stdout}\n"
                         f"stderr:\n{result.stderr}\n{self.logs_tail()}")

    def user_token(self):
        return self.state["user_token"]

    def get_system(self, token=None):
        reply = self.api("GET", f"/api/v1/systems/{self.state['system_id']}",
                         token=token or self.user_token())
        self.assertEqual(reply.status, 200, f"GET system: {reply!r}")
        return reply.json()

    def jupyter_request(self, method, path, body=None):
        """Send a request to the product through the proxy's programs' path, with the user's token."""
        system_id = self.state["system_id"]
        reply = self.api(method, f"/systems/{system_id}/{path}", body, token=self.user_token())
        return reply.status, reply.body

    def product_token(self, pid):
        """Return the product token from the environment of the product's process."""
        environment = e2e_support.read_environ(pid) or {}
        token = environment.get("JUPYTER_TOKEN", "")
        self.assertTrue(token, f"Jupyter (pid {pid}) has no JUPYTER_TOKEN in its environment")
        return token

    # --- steps -----------------------------------------------------------

    @step
    def test_01_user_signs_in_and_makes_api_key(self):
        created = self.client.create_user(self.admin_token, USER, USER_PASSWORD)
        self.assertEqual(created["username"], USER)
        self.assertEqual(created["role"], "user")
        self.assertFalse(created["disabled"])

        cookie, csrf = self.client.login(USER, USER_PASSWORD)
        self.assertTrue(csrf)
        me = self.api("GET", "/api/v1/auth/me", cookie=cookie)
        self.assertEqual(me.status, 200, f"GET /auth/me with the cookie: {me!r}")
        self.assertEqual(me.json()["user"]["username"], USER)

        reply = self.api("POST", "/api/v1/api-keys", {"name": "e2e"}, cookie=cookie,
                         headers={"X-CSRF-Token": csrf})
        self.assertEqual(reply.status, 201, f"POST /api-keys with cookie and CSRF token: {reply!r}")
        key = reply.json()
        self.assertEqual(key["name"], "e2e")
        self.assertTrue(key["apiKeyId"])
        self.assertTrue(key["apiSecretKey"])
        self.state["api_key_id"] = key["apiKeyId"]
        self.state["api_secret"] = key["apiSecretKey"]

        self.state["user_token"] = self.client.token_for_password(USER, USER_PASSWORD)
        key_token = self.client.token_for_api_key(key["apiKeyId"], key["apiSecretKey"])
        me = self.api("GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {key_token}"})
        self.assertEqual(me.status, 200, f"GET /auth/me with the API key's token: {me!r}")
        self.assertEqual(me.json()["user"]["username"], USER)

    @step
    def test_02_cli_creates_jupyter(self):
        reply = self.api("GET", "/api/v1/products", token=self.user_token())
        self.assertEqual(reply.status, 200, f"GET /products: {reply!r}")
        products = {product["id"]: product for product in reply.json()["items"]}
        self.assertIn("jupyter", products)
        versions = products["jupyter"]["versions"]
        self.assertTrue(versions, f"jupyter has no version users may run: {products['jupyter']}")
        version = versions[0]["version"]

        result = self.run_cli("systems", "create", "--name", SYSTEM_NAME, "--product", "jupyter",
                              "--version", version, "--system-type", "cpu-small", "--wait",
                              "--output", "json")
        self.assertCliSucceeded(result, "puddle systems create --wait")
        progress = [line for line in result.stderr.splitlines() if EVENT_LINE.match(line)]
        self.assertTrue(progress, f"no progress lines on stderr:\n{result.stderr}")

        system = json.loads(result.stdout)
        self.track_system(system["id"])
        self.state["system_id"] = system["id"]
        self.assertEqual(system["name"], SYSTEM_NAME)
        self.assertEqual(system["owner"], USER)
        self.assertEqual(system["product"], "jupyter")
        self.assertEqual(system["version"], version)
        self.assertEqual(system["status"], "running")
        self.assertEqual(system["productStatus"], "ready")

    @step
    def test_03_jupyter_answers_and_stores_file(self):
        status, body = self.jupyter_request("GET", "api/status")
        self.assertEqual(status, 200, body[:300])
        self.assertIn("started", json.loads(body))

        status, body = self.jupyter_request(
            "PUT", f"api/contents/{NOTE_NAME}",
            {"type": "file", "format": "text", "content": NOTE_TEXT})
        self.assertIn(status, (200, 201), body[:300])

        status, body = self.jupyter_request("GET", f"api/contents/{NOTE_NAME}?content=1")
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(json.loads(body)["content"], NOTE_TEXT)

    @step
    def test_04_product_process_is_unprivileged(self):
        system_id = self.state["system_id"]
        pids = jupyter_processes(system_id)
        self.assertEqual(len(pids), 1, f"Jupyter processes of {system_id}: {pids}")
        pid = pids[0]

        admin_view = self.get_system(token=self.admin_token)
        self.assertEqual(admin_view["provider"]["kind"], "local")
        self.assertEqual(admin_view["provider"]["state"]["pid"], pid)
        self.assertIsNone(admin_view.get("directUrl"),
                          "a local system has a directUrl although the proxy serves it")
        owner_view = self.get_system()
        self.assertIsNone(owner_view.get("directUrl"),
                          "a local system has a directUrl although the proxy serves it")
        self.assertEqual(owner_view.get("url"),
                         f"https://{system_id}.systems.localhost:{self.server.port}"
                         f"/systems/{system_id}/")
        self.state["pid"] = pid

        uids = e2e_support.read_status_field(pid, "Uid").split()
        gids = e2e_support.read_status_field(pid, "Gid").split()
        self.assertNotIn("0", uids, f"Jupyter (pid {pid}) runs with a root uid: {uids}")
        self.assertNotIn("0", gids, f"Jupyter (pid {pid}) runs with a root gid: {gids}")
        self.assertGreaterEqual(int(uids[0]), 200000, "uid below the default uidRange")
        self.assertLessEqual(int(uids[0]), 265535, "uid above the default uidRange")
        groups = (e2e_support.read_status_field(pid, "Groups") or "").split()
        self.assertNotIn("0", groups, f"Jupyter (pid {pid}) keeps supplementary group 0")

        token = self.product_token(pid)
        command_line = " ".join(read_cmdline(pid))
        self.assertNotIn(token, command_line, "the product token is on Jupyter's command line")
        for other_pid in system_processes(system_id):
            self.assertNotIn(token, " ".join(read_cmdline(other_pid) or []),
                             f"the product token is on the command line of pid {other_pid}")

    @step(blocking=False)
    def test_05_data_dir_is_private(self):
        data_dir = self.server.data_dir
        systems_dir = os.path.join(data_dir, "systems")
        system_tree = os.path.join(systems_dir, self.state["system_id"])
        self.assertTrue(os.path.isdir(system_tree), system_tree)

        for path, expected in ((data_dir, 0o711), (systems_dir, 0o711)):
            info = os.lstat(path)
            self.assertEqual(info.st_uid, 0, f"{path} is owned by uid {info.st_uid}")
            self.assertEqual(stat.S_IMODE(info.st_mode), expected,
                             f"{path} has mode {stat.S_IMODE(info.st_mode):o}")

        # The system's own tree belongs to its uid and is closed to others.
        tree_info = os.lstat(system_tree)
        self.assertNotEqual(tree_info.st_uid, 0, f"{system_tree} is owned by root")
        self.assertEqual(stat.S_IMODE(tree_info.st_mode) & 0o077, 0,
                         f"{system_tree} has mode {stat.S_IMODE(tree_info.st_mode):o}")

        checked = 0
        violations = []
        for root, directories, files in os.walk(data_dir):
            if root == systems_dir:
                # Each systems/<id>/ tree belongs to the system's uid.
                directories[:] = []
                violations += [f"unexpected file systems/{name}" for name in files]
                continue
            for name in directories + files:
                path = os.path.join(root, name)
                if path == systems_dir:
                    continue
                info = os.lstat(path)
                mode = stat.S_IMODE(info.st_mode)
                relative = os.path.relpath(path, data_dir)
                if info.st_uid != 0:
                    violations.append(f"{relative} is owned by uid {info.st_uid}")
                if mode & 0o077:
                    violations.append(f"{relative} has mode {mode:04o}")
                checked += 1
        self.assertEqual(violations, [], "files in the data directory open to other users")
        self.assertGreater(checked, 2, "the data directory walk checked almost nothing")

    @step
    def test_06_stop_and_start_keep_file(self):
        system_id = self.state["system_id"]
        result = self.run_cli("systems", "stop", system_id, "--wait", "--output", "json")
        self.assertCliSucceeded(result, "puddle systems stop --wait")
        self.assertEqual(json.loads(result.stdout)["status"], "stopped")
        self.assertEqual(system_processes(system_id), [],
                         "processes of the stopped system remain")

        result = self.run_cli("systems", "start", system_id, "--wait", "--output", "json")
        self.assertCliSucceeded(result, "puddle systems start --wait")
        self.assertEqual(json.loads(result.stdout)["status"], "running")

        status, body = self.jupyter_request("GET", f"api/contents/{NOTE_NAME}?content=1")
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(json.loads(body)["content"], NOTE_TEXT)

        pids = jupyter_processes(system_id)
        self.assertEqual(len(pids), 1, f"Jupyter processes after the start: {pids}")
        self.state["pid"] = pids[0]

    @step
    def test_07_restart_after_kill_adopts_product(self):
        system_id = self.state["system_id"]
        before = self.get_system(token=self.admin_token)
        self.assertEqual(before["status"], "running")
        pid = before["provider"]["state"]["pid"]
        self.assertEqual(pid, self.state["pid"])

        self.server.kill()
        if self.worker is not None:
            self.worker.kill()
        self.assertEqual(jupyter_processes(system_id), [pid],
                         "Jupyter did not outlive the killed server")
        # The same port, as a service manager restarting Puddle would use.
        self.server.start(port=self.server.port)
        if self.worker is not None:
            self.worker.start()
        type(self).client = self.server.client
        type(self).admin_token = self.client.token_for_password("admin", ADMIN_PASSWORD)

        after = self.wait_for_status(self.admin_token, system_id, "running", timeout=30)
        self.assertEqual(after["provider"]["state"]["pid"], pid,
                         "the restarted server does not show the same Jupyter process")
        self.assertEqual(after["productStatus"], "ready")

        # Give a reconcile pass the chance to start a duplicate, then count.
        e2e_support.wait_until(lambda: len(jupyter_processes(system_id)) > 1, 5)
        self.assertEqual(jupyter_processes(system_id), [pid],
                         "the restarted server did not adopt Jupyter as the only process")

        status, body = self.jupyter_request("GET", "api/status")
        self.assertEqual(status, 200, body[:300])

    @step
    def test_08_delete_leaves_nothing(self):
        system_id = self.state["system_id"]
        result = self.run_cli("systems", "delete", system_id, "--wait", "--output", "json")
        self.assertCliSucceeded(result, "puddle systems delete --wait")
        self.assertEqual(json.loads(result.stdout)["status"], "deleted")

        self.assertEqual(system_processes(system_id), [],
                         "processes of the deleted system remain")

        system = self.get_system()
        self.assertEqual(system["status"], "deleted")

        listed = self.api("GET", "/api/v1/systems", token=self.user_token())
        self.assertEqual(listed.status, 200, repr(listed))
        self.assertNotIn(system_id, [item["id"] for item in listed.json()["items"]])

        deleted = self.api("GET", "/api/v1/systems?status=deleted", token=self.user_token())
        self.assertEqual(deleted.status, 200, repr(deleted))
        self.assertIn(system_id, [item["id"] for item in deleted.json()["items"]])

        result = self.run_cli("systems", "list", "--output", "json")
        self.assertCliSucceeded(result, "puddle systems list")
        self.assertEqual(json.loads(result.stdout)["items"], [])


if __name__ == "__main__":
    e2e_support.main()
