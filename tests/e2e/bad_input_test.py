"""End-to-end tests of bad input: bodies, names, catalog ids, queries,
illegal transitions and broken config files.

Every refusal is checked for its HTTP status, error code and field, and
nothing half-created may be left behind.
"""

import os
import subprocess
import tempfile
import textwrap
import unittest

import e2e_support
from e2e_support import PuddleTestCase

TESTER = ("tester", "tester-password-1")
MIB = 1024 * 1024
ERROR_400_CODES = ("invalid_json", "unknown_field", "validation_failed")


@e2e_support.require_root
class BadInputTest(PuddleTestCase):
    config_text = e2e_support.port_range_config(29200)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client.create_user(cls.admin_token, *TESTER)
        cls.token = cls.client.token_for_password(*TESTER)

    @classmethod
    def fast_product(cls, test):
        """Register the fast product once per server."""
        if not getattr(cls, "fast_registered", False):
            cls.fast_registered = True
            test.register_fast_product(cls.admin_token)

    def system_body(self, **changes):
        body = {"name": "valid", "product": "fast", "version": "1.0", "systemType": "cpu-small"}
        body.update(changes)
        return body

    def post_system(self, body=None, **options):
        return self.api("POST", "/api/v1/systems", body, token=self.token, **options)

    def test_bad_create_requests_create_nothing(self):
        self.fast_product(self)

        # Malformed JSON, checked before anything else.
        for raw in (b'{"name": ', b"not json", b'{"name": "a",}', b'{"name": "a"} x'):
            reply = self.post_system(raw=raw)
            self.assertError(reply, 400, "invalid_json", message=f"body {raw!r}")

        # Unknown fields, checked before the known ones are validated.
        reply = self.post_system(self.system_body(bogus=1))
        self.assertError(reply, 400, "unknown_field", "bogus", "unknown field")
        reply = self.post_system(self.system_body(name="Bad_Name", bogus=1))
        self.assertError(reply, 400, "unknown_field", "bogus",
                         "unknown field beside an invalid name")

        # Invalid names. The default name pattern ^[-0-9a-z]*[0-9a-z]$ allows
        # a leading hyphen, so "-x" is not among them.
        for name in ("Bad_Name", "a" * 64, "x-", "", "a b", "caf\u00e9"):
            reply = self.post_system(self.system_body(name=name))
            self.assertError(reply, 400, "validation_failed", "name", f"name {name!r}")
        reply = self.post_system(self.system_body(name=7))
        self.assertError(reply, 400, "validation_failed", "name", "name of the wrong type")

        # Catalog ids that do not exist.
        reply = self.post_system(self.system_body(systemType="cpu-gigantic"))
        self.assertError(reply, 400, "validation_failed", "systemType", "unknown system type")
        reply = self.post_system(self.system_body(product="no-such-product"))
        self.assertError(reply, 400, "validation_failed", "product", "unknown product")
        reply = self.post_system(self.system_body(version="9.9.9"))
        self.assertError(reply, 400, "validation_failed", "version", "unknown version")

        # Missing fields.
        for field in ("name", "product", "version", "systemType"):
            body = self.system_body()
            del body[field]
            reply = self.post_system(body)
            self.assertError(reply, 400, "validation_failed", field, f"missing {field}")

        reply = self.post_system(self.system_body(idleTimeoutMinutes=7))
        self.assertError(reply, 400, "validation_failed", "idleTimeoutMinutes",
                         "idle timeout that is not an option")

        # Oversized and wrongly typed bodies.
        reply = self.post_oversized("/api/v1/systems")
        self.assertError(reply, 413, "payload_too_large", message="body over 1 MiB")
        reply = self.post_system(raw=b'{"name": "valid"}', content_type=None)
        self.assertError(reply, 415, "unsupported_media_type", message="no Content-Type")
        reply = self.post_system(raw=b'{"name": "valid"}', content_type="text/plain")
        self.assertError(reply, 415, "unsupported_media_type", message="Content-Type text/plain")

        listed = self.api("GET", "/api/v1/systems", token=self.token)
        self.assertEqual(listed.status, 200, repr(listed))
        self.assertEqual(listed.json()["items"], [], "a refused create left a system behind")
        everything = self.api("GET", "/api/v1/systems?owner=me&status=failed", token=self.token)
        self.assertEqual(everything.json()["items"], [])

    def post_oversized(self, path):
        # A syntactically valid JSON object, so only its size is wrong.
        raw = b'{"name": "' + b"a" * (MIB + 16) + b'"}'
        return self.api("POST", path, raw=raw, token=self.token, timeout=60)

    def test_disabled_system_type_is_invalid(self):
        self.fast_product(self)
        reply = self.api("POST", "/api/v1/system-types",
                         {"id": "retired", "label": "Retired", "cpus": 1, "memoryMiB": 256,
                          "pricePerHour": 0, "enabled": False}, token=self.admin_token)
        self.assertEqual(reply.status, 201, f"POST /system-types: {reply!r}")
        reply = self.post_system(self.system_body(systemType="retired"))
        self.assertError(reply, 400, "validation_failed", "systemType", "disabled system type")

    def test_bad_admin_bodies(self):
        reply = self.api("POST", "/api/v1/users", raw=b"{", token=self.admin_token)
        self.assertError(reply, 400, "invalid_json", message="POST /users malformed")
        reply = self.api("POST", "/api/v1/users",
                         {"username": "u1", "password": "long-enough-1", "admin": True},
                         token=self.admin_token)
        self.assertError(reply, 400, "unknown_field", "admin", "POST /users unknown field")
        reply = self.api("POST", "/api/v1/images",
                         {"product": "jupyter", "version": "6.4.12",
                          "launch": {"command": ["/bin/true"], "shell": True}},
                         token=self.admin_token)
        self.assertError(reply, 400, "unknown_field", "launch.shell", "nested unknown field")
        reply = self.api("POST", "/api/v1/users", {"username": "u2", "password": "short"},
                         token=self.admin_token)
        self.assertError(reply, 400, "validation_failed", "password", "password under 8 chars")

    def test_bad_query_parameters(self):
        reply = self.api("GET", "/api/v1/systems?bogus=1", token=self.token)
        self.assertEqual(reply.status, 400, f"unknown query parameter: {reply!r}")
        self.assertIn(reply.error().get("code"), ERROR_400_CODES, repr(reply))
        self.assertEqual(reply.error().get("field"), "query.bogus", repr(reply))

        for limit in ("0", "501", "-1", "ten"):
            reply = self.api("GET", f"/api/v1/systems?limit={limit}", token=self.token)
            self.assertError(reply, 400, "validation_failed", "query.limit", f"limit={limit}")
        for limit in ("1", "500"):
            reply = self.api("GET", f"/api/v1/systems?limit={limit}", token=self.token)
            self.assertEqual(reply.status, 200, f"limit={limit}: {reply!r}")

        reply = self.api("GET", "/api/v1/systems?status=sleeping", token=self.token)
        self.assertError(reply, 400, "validation_failed", "query.status", "unknown status")

    def test_illegal_transitions_are_409(self):
        self.fast_product(self)
        system = self.create_system(self.token, "transitions")
        system_id = system["id"]
        base = f"/api/v1/systems/{system_id}"
        self.wait_for_status(self.token, system_id, "running")

        reply = self.api("POST", f"{base}/start", token=self.token)
        self.assertError(reply, 409, "conflict", message="start a running system")
        self.assertEqual(reply.error().get("status"), "running", repr(reply))

        reply = self.api("POST", f"{base}/stop", token=self.token)
        self.assertEqual(reply.status, 202, f"stop: {reply!r}")
        self.assertEqual(reply.json()["status"], "stopping")
        self.wait_for_status(self.token, system_id, "stopped")

        for action in ("stop", "reboot", "keep-alive"):
            reply = self.api("POST", f"{base}/{action}", token=self.token)
            self.assertError(reply, 409, "conflict", message=f"{action} a stopped system")
            self.assertEqual(reply.error().get("status"), "stopped", repr(reply))

        reply = self.api("DELETE", base, token=self.token)
        self.assertEqual(reply.status, 202, f"delete: {reply!r}")
        self.wait_for_status(self.token, system_id, "deleted")
        for method, path in (("POST", f"{base}/start"), ("DELETE", base)):
            reply = self.api(method, path, token=self.token)
            self.assertError(reply, 409, "conflict", message=f"{method} {path} when deleted")
            self.assertEqual(reply.error().get("status"), "deleted", repr(reply))


class ConfigFileTest(unittest.TestCase):
    """A broken config file stops `puddle serve`; `config check` reports a good one."""

    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="puddle-e2e-config-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.directory], check=False))

    def write_config(self, text):
        path = os.path.join(self.directory, "config.yaml")
        with open(path, "w") as handle:
            handle.write(textwrap.dedent(text))
        return path

    def serve_with(self, config_path):
        command = [e2e_support.BINARY, "serve", "--config", config_path,
                   "--data-dir", os.path.join(self.directory, "data"),
                   "--listen", f"127.0.0.1:{e2e_support.free_port()}"]
        environment = {"PATH": "/usr/bin:/bin", "PUDDLE_ADMIN_PASSWORD": "unused-password-1"}
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=environment)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.terminate()
            stdout, stderr = process.communicate(timeout=30)
            self.fail(f"puddle serve kept running with the broken {config_path}:\n{stderr}")
        return process.returncode, stderr

    def test_unknown_key_stops_serve(self):
        path = self.write_config("""\
            # a comment on line 1
            workers: 2
            providers:
              local:
                stopGraceSecs: 5
            """)
        code, stderr = self.serve_with(path)
        self.assertNotEqual(code, 0, stderr)
        self.assertIn(f"{path}:5:", stderr, "the message does not name the file and line")
        self.assertIn("providers.local.stopGraceSecs", stderr, "the message does not name the key")
        self.assertIn("stopGraceSeconds", stderr, "no suggestion of the close known key")

    def test_wrong_type_stops_serve(self):
        path = self.write_config("""\
            listen: 127.0.0.1:1
            workers: many
            """)
        code, stderr = self.serve_with(path)
        self.assertNotEqual(code, 0, stderr)
        self.assertIn(f"{path}:2:", stderr, "the message does not name the file and line")
        self.assertIn("workers", stderr, "the message does not name the key")

    def test_config_check_lists_keys(self):
        path = self.write_config("""\
            workers: 2
            backend:
              baseURL: https://127.0.0.1:8443
            license:
              file: /opt/h2oai/puddle/license.sig
            """)
        result = subprocess.run([e2e_support.BINARY, "config", "check", "--config", path],
                                capture_output=True, text=True, timeout=30,
                                env={"PATH": "/usr/bin:/bin"})
        self.assertEqual(result.returncode, 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        lines = result.stdout.splitlines()
        self.assertIn("workers\tworkers\tused", lines, result.stdout)
        self.assertIn("backend.baseUrl\tbackend.baseURL\tused", lines, result.stdout)
        self.assertIn("license.file\tlicense.file\tignored", lines, result.stdout)
        for line in lines:
            if line.startswith("#") or not line.strip() or "\t" not in line:
                continue
            fields = line.split("\t")
            self.assertEqual(len(fields), 3, f"line {line!r} is not key<TAB>spelling<TAB>class")
            self.assertIn(fields[2], ("used", "ignored", "refused"), line)


if __name__ == "__main__":
    e2e_support.main()
