"""End-to-end tests of the access proxy: systems on their own origins.

A user opens a real Jupyter system in a "browser" (this test, keeping cookies
by hand): /api/v1/systems/<id>/open hands a one-time code to the system's
origin, which sets the system cookie; Jupyter's page loads, a kernel runs
`1+1` over the proxied WebSocket, and a 50 MB file goes up and comes back
intact. A second product, a small server that echoes the headers it gets,
shows that Puddle's cookies and tokens never reach a product. Other users get
404, requests without a session 401, cross-origin writes and WebSockets 403,
and a page on a system origin can neither use Puddle's session nor mint a code
for another system. Programs reach systems at /systems/<id>/ on Puddle's own
origin with a token.

The tests run twice: on the default addresses (Puddle on 127.0.0.1, systems
under systems.localhost), and with Puddle at https://puddle.localhost:<port>
and systems under systems.puddle.localhost, where system pages are same-site
with Puddle. Connections go to 127.0.0.1 with the right Host and TLS server
name, because Python's resolver does not resolve subdomains of localhost.
"""

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import time
import urllib.parse
import uuid

import websocket

import e2e_support
from e2e_support import PuddleTestCase

OWNER = ("olivia", "olivia-password-1")
OTHER = ("oscar", "oscar-password-1")

# A product that answers every request with the method, path and headers it
# received, and tries to set a cookie, so tests can see what Puddle forwards.
ECHO_SERVER_SCRIPT = """
import http.server
import json
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"method": self.command, "path": self.path,
                           "headers": [[k.lower(), v] for k, v in self.headers.items()]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "product-cookie=1; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
"""

ECHO_LAUNCH = {
    "command": ["/usr/bin/python3", "-c", ECHO_SERVER_SCRIPT, "{address}", "{port}"],
    "healthPath": "",
    "startTimeoutSeconds": 30,
}

LARGE_FILE_BYTES = 50 * 1024 * 1024
UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024


class HostConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with `host_name` as Host header and TLS server name."""

    def __init__(self, host_name, port, context, timeout=60):
        super().__init__(host_name, port, context=context, timeout=timeout)

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


class SystemOriginCases:
    """The tests; subclasses choose Puddle's address and the systems domain."""

    puddle_host = None      # Host of Puddle's own origin
    systems_domain = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.context = ssl.create_default_context(cafile=cls.server.cafile)
        cls.client.create_user(cls.admin_token, *OWNER)
        cls.client.create_user(cls.admin_token, *OTHER)
        cls.owner_token = cls.client.token_for_password(*OWNER)
        cls.other_token = cls.client.token_for_password(*OTHER)
        cls.jupyter = None
        cls.echo = None
        cls.setup_error = None

    # --- helpers ---------------------------------------------------------

    @property
    def port(self):
        return self.server.port

    def puddle_origin(self):
        return f"https://{self.puddle_host}:{self.port}"

    def redirect_origin(self):
        """Where system origins send browsers back to: backend.baseUrl, else localhost."""
        if self.puddle_host == "127.0.0.1":
            return f"https://localhost:{self.port}"
        return self.puddle_origin()

    def system_host(self, system_id):
        return f"{system_id}.{self.systems_domain}"

    def system_origin(self, system_id):
        return f"https://{self.system_host(system_id)}:{self.port}"

    def fetch(self, host, method, target, headers=None, body=None, timeout=60, context=None):
        """One request to `host` (Puddle's or a system's); returns a Reply."""
        connection = HostConnection(host, self.port, context or self.context, timeout)
        try:
            connection.request(method, target, body=body, headers=headers or {})
            response = connection.getresponse()
            reply_headers = {}
            for name, value in response.getheaders():
                name = name.lower()
                reply_headers[name] = (reply_headers[name] + "\n" + value
                                       if name in reply_headers else value)
            return e2e_support.Reply(response.status, reply_headers, response.read())
        finally:
            connection.close()

    def ready_systems(self):
        """Create (once) a running Jupyter and a running echo product, both the owner's."""
        cls = type(self)
        if cls.setup_error:
            self.fail(f"the systems could not be set up: {cls.setup_error}")
        if cls.jupyter is None:
            try:
                self.register_echo_product()
                products = {p["id"]: p for p in self.api(
                    "GET", "/api/v1/products", token=self.owner_token).json()["items"]}
                version = products["jupyter"]["versions"][0]["version"]
                jupyter = self.create_system(self.owner_token, "lab", product="jupyter",
                                             version=version)
                echo = self.create_system(self.owner_token, "echo", product="echo")
                cls.echo = self.wait_for_status(self.owner_token, echo["id"], "running")
                cls.jupyter = self.wait_for_status(self.owner_token, jupyter["id"], "running",
                                                   timeout=120)
            except AssertionError as error:
                cls.setup_error = str(error).splitlines()[0]
                raise
        return cls.jupyter, cls.echo

    def register_echo_product(self):
        for path, body in (("/api/v1/products", {"id": "echo", "label": "Echo"}),
                           ("/api/v1/products/echo/versions", {"version": "1.0"}),
                           ("/api/v1/images", {"product": "echo", "version": "1.0",
                                               "provider": "local", "launch": ECHO_LAUNCH})):
            reply = self.api("POST", path, body, self.admin_token)
            self.assertEqual(reply.status, 201, f"POST {path}: {reply!r}")

    def browser_session(self, user):
        """Sign in as a browser would; return the session cookie value."""
        body = json.dumps({"username": user[0], "password": user[1]}).encode()
        reply = self.fetch(self.puddle_host, "POST", "/api/v1/auth/login",
                           {"Content-Type": "application/json"}, body)
        self.assertEqual(reply.status, 200, f"sign-in of {user[0]}: {reply!r}")
        cookie = reply.header("set-cookie").split(";", 1)[0]
        self.assertTrue(cookie.startswith(e2e_support.SESSION_COOKIE + "="), cookie)
        return cookie.split("=", 1)[1]

    def navigate_open(self, system_id, session, next_path=None):
        """GET /open as a top-level navigation; return the reply."""
        target = f"/api/v1/systems/{system_id}/open"
        if next_path is not None:
            target += "?next=" + urllib.parse.quote(next_path, safe="")
        return self.fetch(self.puddle_host, "GET", target, {
            "Cookie": f"{e2e_support.SESSION_COOKIE}={session}",
            "Accept": "text/html,application/xhtml+xml",
            "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none", "Sec-Fetch-Dest": "document"})

    def enter_system(self, system_id, session, next_path=None):
        """Open a system and exchange the code; return (system cookie, where it sent us)."""
        opened = self.navigate_open(system_id, session, next_path)
        self.assertEqual(opened.status, 302, f"GET /open: {opened!r}")
        location = urllib.parse.urlsplit(opened.header("location"))
        self.assertEqual(f"{location.scheme}://{location.netloc}", self.system_origin(system_id),
                         opened.header("location"))
        self.assertEqual(location.path, "/.puddle/session")
        exchanged = self.fetch(self.system_host(system_id), "GET",
                               f"{location.path}?{location.query}",
                               {"Accept": "text/html", "Sec-Fetch-Mode": "navigate",
                                "Sec-Fetch-Site": "cross-site"})
        self.assertEqual(exchanged.status, 302, f"GET /.puddle/session: {exchanged!r}")
        set_cookie = exchanged.header("set-cookie")
        self.assertTrue(set_cookie.startswith("__Host-puddle_system="), set_cookie)
        attributes = [part.strip().lower() for part in set_cookie.split(";")[1:]]
        for attribute in ("path=/", "secure", "httponly", "samesite=lax"):
            self.assertIn(attribute, attributes, set_cookie)
        self.assertFalse([a for a in attributes if a.startswith("domain")], set_cookie)
        cookie = set_cookie.split(";", 1)[0].split("=", 1)[1]
        return cookie, exchanged.header("location")

    def on_system(self, system_id, method, target, cookie=None, headers=None, body=None,
                  same_origin=True):
        all_headers = {}
        if cookie:
            all_headers["Cookie"] = f"__Host-puddle_system={cookie}"
        if same_origin and method not in ("GET", "HEAD"):
            all_headers["Origin"] = self.system_origin(system_id)
        all_headers.update(headers or {})
        return self.fetch(self.system_host(system_id), method, target, all_headers, body)

    def kernel_socket(self, system_id, cookie, kernel_id, origin):
        """Open the kernel's channels WebSocket through the proxy."""
        raw = socket.create_connection(("127.0.0.1", self.port), 30)
        secure = self.context.wrap_socket(raw, server_hostname=self.system_host(system_id))
        url = (f"wss://{self.system_host(system_id)}:{self.port}/systems/{system_id}"
               f"/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}")
        options = {"socket": secure, "timeout": 60,
                   "cookie": f"__Host-puddle_system={cookie}"}
        if origin is None:
            options["suppress_origin"] = True
        else:
            options["origin"] = origin
        return websocket.create_connection(url, **options)

    # --- tests -----------------------------------------------------------

    def test_url_names_the_system_origin(self):
        jupyter, echo = self.ready_systems()
        system = self.api("GET", f"/api/v1/systems/{jupyter['id']}", token=self.owner_token).json()
        self.assertEqual(system["url"],
                         f"{self.system_origin(jupyter['id'])}/systems/{jupyter['id']}/")
        self.assertIsNone(system["directUrl"])

    def test_browser_opens_jupyter_on_its_own_origin(self):
        jupyter, _ = self.ready_systems()
        system_id = jupyter["id"]
        session = self.browser_session(OWNER)
        cookie, landing = self.enter_system(system_id, session)
        self.assertEqual(landing, f"/systems/{system_id}/")

        # Follow Jupyter's own redirects on the system origin to its file tree page.
        target = landing
        for _ in range(5):
            reply = self.on_system(system_id, "GET", target, cookie, {"Accept": "text/html"})
            if reply.status not in (301, 302, 303, 307):
                break
            target = urllib.parse.urlsplit(reply.header("location"))
            target = target.path + ("?" + target.query if target.query else "")
        self.assertEqual(reply.status, 200, f"GET {target}: {reply!r}")
        self.assertIn(b"Jupyter", reply.body)
        self.assertIn("text/html", reply.header("content-type"))

        # The code was single use.
        opened = self.navigate_open(system_id, session)
        location = urllib.parse.urlsplit(opened.header("location"))
        first = self.fetch(self.system_host(system_id), "GET", f"/.puddle/session?{location.query}")
        self.assertEqual(first.status, 302, repr(first))
        again = self.fetch(self.system_host(system_id), "GET", f"/.puddle/session?{location.query}")
        self.assertEqual(again.status, 401, f"a one-time code worked twice: {again!r}")

    def test_next_stays_on_the_system_origin(self):
        jupyter, _ = self.ready_systems()
        system_id = jupyter["id"]
        session = self.browser_session(OWNER)
        _, landing = self.enter_system(system_id, session, f"/systems/{system_id}/tree?x=1")
        self.assertEqual(landing, f"/systems/{system_id}/tree?x=1")
        for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            _, landing = self.enter_system(system_id, session, hostile)
            self.assertEqual(landing, f"/systems/{system_id}/", f"next={hostile!r}")

    def test_kernel_executes_over_the_proxied_websocket(self):
        jupyter, _ = self.ready_systems()
        system_id = jupyter["id"]
        cookie, _ = self.enter_system(system_id, self.browser_session(OWNER))
        reply = self.on_system(system_id, "POST", f"/systems/{system_id}/api/kernels", cookie,
                               {"Content-Type": "application/json"},
                               json.dumps({"name": "python3"}).encode())
        self.assertIn(reply.status, (200, 201), f"POST /api/kernels: {reply!r}")
        kernel_id = reply.json()["id"]
        try:
            channel = self.kernel_socket(system_id, cookie, kernel_id,
                                         self.system_origin(system_id))
            try:
                msg_id = uuid.uuid4().hex
                channel.send(json.dumps({
                    "header": {"msg_id": msg_id, "username": "e2e", "session": uuid.uuid4().hex,
                               "msg_type": "execute_request", "version": "5.3",
                               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                    "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                    "content": {"code": "1+1", "silent": False, "store_history": False,
                                "user_expressions": {}, "allow_stdin": False,
                                "stop_on_error": True}}))
                result = None
                deadline = time.monotonic() + 60
                while result is None and time.monotonic() < deadline:
                    message = json.loads(channel.recv())
                    if (message.get("msg_type") == "execute_result" and
                            message.get("parent_header", {}).get("msg_id") == msg_id):
                        result = message["content"]["data"]["text/plain"]
                self.assertEqual(result, "2", "the kernel's answer to 1+1")
            finally:
                channel.close()
        finally:
            self.on_system(system_id, "DELETE", f"/systems/{system_id}/api/kernels/{kernel_id}",
                           cookie)

    def test_large_file_goes_up_and_comes_back_intact(self):
        jupyter, _ = self.ready_systems()
        system_id = jupyter["id"]
        cookie, _ = self.enter_system(system_id, self.browser_session(OWNER))
        data = os.urandom(LARGE_FILE_BYTES)
        name = f"large-{uuid.uuid4().hex[:8]}.bin"
        chunks = [data[i:i + UPLOAD_CHUNK_BYTES]
                  for i in range(0, len(data), UPLOAD_CHUNK_BYTES)]
        for number, chunk in enumerate(chunks, start=1):
            body = json.dumps({"type": "file", "format": "base64", "name": name, "path": name,
                               "content": base64.b64encode(chunk).decode(),
                               "chunk": -1 if number == len(chunks) else number}).encode()
            reply = self.on_system(system_id, "PUT", f"/systems/{system_id}/api/contents/{name}",
                                   cookie, {"Content-Type": "application/json"}, body)
            self.assertIn(reply.status, (200, 201), f"upload chunk {number}: {reply!r}")

        reply = self.on_system(system_id, "GET", f"/systems/{system_id}/files/{name}", cookie)
        self.assertEqual(reply.status, 200, repr(reply))
        self.assertEqual(len(reply.body), LARGE_FILE_BYTES)
        self.assertEqual(hashlib.sha256(reply.body).hexdigest(), hashlib.sha256(data).hexdigest())
        self.on_system(system_id, "DELETE", f"/systems/{system_id}/api/contents/{name}", cookie)

    def test_other_user_gets_404_and_no_session_401(self):
        jupyter, _ = self.ready_systems()
        system_id = jupyter["id"]
        other_session = self.browser_session(OTHER)
        reply = self.navigate_open(system_id, other_session)
        self.assertError(reply, 404, "not_found", message="another user opens the system")
        reply = self.fetch(self.puddle_host, "GET", f"/systems/{system_id}/api/status",
                           {"X-Puddle-Token": self.other_token})
        self.assertError(reply, 404, "not_found", message="another user's token on /systems/")

        reply = self.on_system(system_id, "GET", f"/systems/{system_id}/api/status")
        self.assertError(reply, 401, "unauthenticated", message="no system cookie")
        reply = self.on_system(system_id, "GET", f"/systems/{system_id}/tree", None,
                               {"Accept": "text/html"})
        self.assertEqual(reply.status, 302, repr(reply))
        self.assertEqual(reply.header("location"),
                         f"{self.redirect_origin()}/api/v1/systems/{system_id}/open?next=/systems/"
                         f"{system_id}/tree")
        reply = self.on_system(system_id, "GET", "/", "made-up-cookie")
        self.assertError(reply, 401, "unauthenticated", message="a made-up system cookie")

        # A browser without a Puddle session is sent to sign in, then back to /open.
        reply = self.fetch(self.puddle_host, "GET", f"/api/v1/systems/{system_id}/open",
                           {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"})
        self.assertEqual(reply.status, 302, repr(reply))
        self.assertEqual(reply.header("location"),
                         f"/login?next=/api/v1/systems/{system_id}/open")

    def test_product_never_sees_puddles_credentials(self):
        _, echo = self.ready_systems()
        system_id = echo["id"]
        session = self.browser_session(OWNER)
        cookie, _ = self.enter_system(system_id, session)
        reply = self.on_system(system_id, "POST", "/anything?x=1", None, {
            "Cookie": (f"theme=dark; __Host-puddle_system={cookie}; "
                       f"{e2e_support.SESSION_COOKIE}={session}"),
            "X-Puddle-Token": self.owner_token,
            "Authorization": f"Bearer {self.owner_token}",
            "Content-Type": "application/json"}, b"{}")
        self.assertEqual(reply.status, 200, repr(reply))
        seen = reply.json()
        self.assertEqual(seen["path"], "/anything?x=1")
        headers = dict(seen["headers"])
        everything = json.dumps(seen)
        for secret in (cookie, session, self.owner_token):
            self.assertNotIn(secret, everything, "a Puddle credential reached the product")
        self.assertEqual(headers.get("cookie"), "theme=dark")
        self.assertTrue(headers.get("authorization", "").startswith("token "), headers)
        self.assertNotIn("x-puddle-token", headers)
        # Host is the product's own address, which Jupyter checks.
        self.assertNotIn(self.systems_domain, headers.get("host", ""))
        self.assertIn(":", headers.get("host", ""))
        self.assertEqual(headers.get("x-forwarded-proto"), "https")
        self.assertEqual(headers.get("x-forwarded-host"),
                         f"{self.system_host(system_id)}:{self.port}")
        # On its own origin a product may set its own cookies.
        self.assertEqual(reply.header("set-cookie"), "product-cookie=1; Path=/")

        # The programs' path: the token stays with Puddle, and the response
        # loses Set-Cookie and gains a sandbox policy.
        reply = self.fetch(self.puddle_host, "GET", f"/systems/{system_id}/x",
                           {"X-Puddle-Token": self.owner_token,
                            "Cookie": f"{e2e_support.SESSION_COOKIE}={session}"})
        self.assertEqual(reply.status, 200, repr(reply))
        everything = json.dumps(reply.json())
        self.assertNotIn(self.owner_token, everything)
        self.assertNotIn(session, everything)
        self.assertIsNone(reply.header("set-cookie"))
        self.assertEqual(reply.header("content-security-policy"), "sandbox")
        self.assertEqual(reply.header("x-content-type-options"), "nosniff")

    def test_cross_origin_writes_and_websockets_get_403(self):
        jupyter, echo = self.ready_systems()
        system_id = jupyter["id"]
        cookie, _ = self.enter_system(system_id, self.browser_session(OWNER))
        for origin in (self.system_origin(echo["id"]), self.puddle_origin(), None):
            headers = {"Content-Type": "application/json"}
            if origin:
                headers["Origin"] = origin
            reply = self.on_system(system_id, "POST", f"/systems/{system_id}/api/kernels", cookie,
                                   headers, b'{"name": "python3"}', same_origin=False)
            self.assertError(reply, 403, "forbidden", message=f"POST with Origin {origin}")

        for origin in (self.system_origin(echo["id"]), None):
            with self.assertRaises(websocket.WebSocketBadStatusException,
                                   msg=f"WebSocket with Origin {origin}") as raised:
                self.kernel_socket(system_id, cookie, "00000000-0000-0000-0000-000000000000",
                                   origin)
            self.assertEqual(raised.exception.status_code, 403, f"WebSocket with Origin {origin}")

    def test_system_page_cannot_use_puddles_session(self):
        jupyter, echo = self.ready_systems()
        system_id = jupyter["id"]
        session = self.browser_session(OWNER)
        cookie_header = f"{e2e_support.SESSION_COOKIE}={session}"
        page_origin = self.system_origin(system_id)
        site = "same-site" if self.puddle_host != "127.0.0.1" else "cross-site"

        # A fetch from the system's page to Puddle's API.
        for headers in ({"Origin": page_origin},
                        {"Origin": page_origin, "Sec-Fetch-Site": site, "Sec-Fetch-Mode": "cors"},
                        {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors"}):
            reply = self.fetch(self.puddle_host, "GET", "/api/v1/auth/me",
                               dict(headers, Cookie=cookie_header))
            self.assertError(reply, 403, "forbidden", message=f"GET /auth/me with {headers}")
            # Nor can it mint a code for another system.
            reply = self.fetch(self.puddle_host, "GET", f"/api/v1/systems/{echo['id']}/open",
                               dict(headers, Cookie=cookie_header))
            self.assertError(reply, 403, "forbidden", message=f"GET /open with {headers}")

        # The system origin does not serve Puddle's API, pages or /healthz,
        # even to a browser that holds both cookies.
        cookie, _ = self.enter_system(system_id, session)
        for path in ("/api/v1/auth/me", "/healthz", "/login"):
            reply = self.on_system(system_id, "GET", path, None,
                                   {"Cookie": f"__Host-puddle_system={cookie}; {cookie_header}"})
            self.assertNotEqual(reply.status, 200, f"GET {path} on a system origin: {reply!r}")
            self.assertNotIn(b'"csrfToken"', reply.body)
            self.assertNotIn(b'{"status":"ok"}', reply.body)

    def test_unknown_host_gets_404(self):
        # The certificate does not name the host, as with DNS rebinding.
        context = ssl.create_default_context(cafile=self.server.cafile)
        context.check_hostname = False
        reply = self.fetch("rebound.example", "GET", "/healthz", context=context)
        self.assertError(reply, 404, "not_found", message="a Host that is not Puddle's")

    def test_programs_path_with_a_token(self):
        jupyter, _ = self.ready_systems()
        system_id = jupyter["id"]
        reply = self.fetch(self.puddle_host, "GET", f"/systems/{system_id}/api/status",
                           {"Authorization": f"Bearer {self.owner_token}"})
        self.assertEqual(reply.status, 200, repr(reply))
        self.assertIn("started", reply.json())
        self.assertEqual(reply.header("content-security-policy"), "sandbox")

        session = self.browser_session(OWNER)
        reply = self.fetch(self.puddle_host, "GET", f"/systems/{system_id}/api/status",
                           {"Cookie": f"{e2e_support.SESSION_COOKIE}={session}"})
        self.assertError(reply, 401, "unauthenticated", message="a cookie on the programs' path")
        reply = self.fetch(self.puddle_host, "GET", f"/systems/{system_id}/tree",
                           {"Cookie": f"{e2e_support.SESSION_COOKIE}={session}",
                            "Accept": "text/html"})
        self.assertEqual(reply.status, 302, repr(reply))
        self.assertEqual(reply.header("location"), f"/api/v1/systems/{system_id}/open")


@e2e_support.require_root
class DefaultOriginsTest(SystemOriginCases, PuddleTestCase):
    config_text = e2e_support.port_range_config(29500)
    puddle_host = "127.0.0.1"
    systems_domain = "systems.localhost"


@e2e_support.require_root
class SameSiteOriginsTest(SystemOriginCases, PuddleTestCase):
    puddle_host = "puddle.localhost"
    systems_domain = "systems.puddle.localhost"

    @classmethod
    def setUpClass(cls):
        cls.server_port = e2e_support.free_port()
        cls.config_text = (e2e_support.port_range_config(29500) +
                           f"backend:\n  baseUrl: https://puddle.localhost:{cls.server_port}\n"
                           "proxy:\n  systemsDomain: systems.puddle.localhost\n")
        super().setUpClass()


if __name__ == "__main__":
    e2e_support.main()
