"""End-to-end attacks on the access proxy, event streams and the sign-in page.

Each test sends an attack that the contract (or, for one-time codes,
SystemAccessService's header) rules out and that got through when the test
was written. The systems run one product, a small stdlib server that responds
to HTTP requests with the method, path and headers it received, and accepts
WebSocket upgrades and echoes their text frames, so a test sees what reached
the product.

- A WebSocket upgrade with two Upgrade headers ("h2c", then "websocket")
  passed the Origin check, which read only the first, while the transport
  forwarded it as a WebSocket.
- An open WebSocket outlived the access it was opened with: after its user
  was disabled it kept reaching the product (with Jupyter: running code).
- An event stream opened by an admin kept delivering another user's system
  events after the admin was demoted.
- /login?next=/%09/evil.example sent the browser, once signed in, to
  "/\\t/evil.example", which browsers read as //evil.example. A newline in
  `next` gave a 500 after a successful sign-in.
- A one-time code tried on another system's origin stayed usable on its own.
- One user could hold every event stream the server allows, so nobody else
  could open one.

Run as root: /usr/bin/python3 tests/e2e/proxy_attack_test.py --binary build/puddle
"""

import json
import socket
import ssl
import time
import urllib.parse

import websocket

import e2e_support
from e2e_support import PuddleTestCase

OWNER = ("olga", "olga-password-1")
REVOKED = ("rita", "rita-password-1")
DEMOTED = ("carl", "carl-password-1")
SYSTEM_COOKIE = "__Host-puddle_system"
SYSTEMS_DOMAIN = "systems.localhost"

# Responds to HTTP requests with what it received, and accepts WebSocket
# upgrades and echoes their text frames. Its braces name no launch placeholder.
ECHO_WS_SCRIPT = r'''
import base64, hashlib, http.server, json, struct, sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_exact(stream, count):
    data = b""
    while len(data) < count:
        piece = stream.read(count - len(data))
        if not piece:
            raise EOFError
        data += piece
    return data


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        try:
            while True:
                first, second = read_exact(self.rfile, 2)
                length = second & 0x7F
                if length == 126:
                    length = struct.unpack(">H", read_exact(self.rfile, 2))[0]
                elif length == 127:
                    length = struct.unpack(">Q", read_exact(self.rfile, 8))[0]
                mask = read_exact(self.rfile, 4) if second & 0x80 else b"\0\0\0\0"
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(read_exact(self.rfile, length)))
                if first & 0x0F == 0x8:
                    return
                if first & 0x0F == 0x1:
                    header = bytes([0x81, len(payload)]) if len(payload) < 126 else \
                        bytes([0x81, 126]) + struct.pack(">H", len(payload))
                    self.wfile.write(header + payload)
                    self.wfile.flush()
        except (EOFError, OSError):
            return

    def answer(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"method": self.command, "path": self.path,
                           "headers": [[k.lower(), v] for k, v in self.headers.items()]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
'''

ECHO_WS_LAUNCH = {
    "command": ["/usr/bin/python3", "-c", ECHO_WS_SCRIPT, "{address}", "{port}"],
    "healthPath": "",
    "startTimeoutSeconds": 30,
}


class HostConnection(e2e_support.http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with `host_name` as Host header and TLS server name."""

    def __init__(self, host_name, port, context, timeout=30):
        super().__init__(host_name, port, context=context, timeout=timeout)

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


@e2e_support.require_root
class ProxyAttackTest(PuddleTestCase):
    config_text = e2e_support.port_range_config(29800)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.context = ssl.create_default_context(cafile=cls.server.cafile)
        cls.users = {}
        for name, password in (OWNER, REVOKED, DEMOTED):
            cls.users[name] = cls.client.create_user(cls.admin_token, name, password)
        cls.systems = None
        cls.setup_error = None

    # --- helpers ---------------------------------------------------------

    @property
    def port(self):
        return self.server.port

    def system_host(self, system_id):
        return f"{system_id}.{SYSTEMS_DOMAIN}"

    def system_origin(self, system_id):
        return f"https://{self.system_host(system_id)}:{self.port}"

    def fetch(self, host, method, target, headers=None, body=None):
        connection = HostConnection(host, self.port, self.context)
        try:
            connection.request(method, target, body=body, headers=headers or {})
            response = connection.getresponse()
            reply_headers = {name.lower(): value for name, value in response.getheaders()}
            return e2e_support.Reply(response.status, reply_headers, response.read())
        finally:
            connection.close()

    def raw_exchange(self, host, data, timeout=10):
        """Send raw bytes over TLS to `host`; return the first response's status line."""
        raw = socket.create_connection(("127.0.0.1", self.port), timeout)
        with self.context.wrap_socket(raw, server_hostname=host) as connection:
            connection.sendall(data)
            received = b""
            while b"\r\n" not in received:
                piece = connection.recv(4096)
                if not piece:
                    break
                received += piece
        return received.split(b"\r\n", 1)[0].decode(errors="replace")

    def ready_systems(self):
        """Create (once) two running systems of OWNER and one of REVOKED."""
        cls = type(self)
        if cls.setup_error:
            self.fail(f"the systems could not be set up: {cls.setup_error}")
        if cls.systems is None:
            try:
                for path, body in (
                        ("/api/v1/products", {"id": "echows", "label": "Echo WS"}),
                        ("/api/v1/products/echows/versions", {"version": "1.0"}),
                        ("/api/v1/images", {"product": "echows", "version": "1.0",
                                            "provider": "local", "launch": ECHO_WS_LAUNCH})):
                    reply = self.api("POST", path, body, self.admin_token)
                    self.assertEqual(reply.status, 201, f"POST {path}: {reply!r}")
                owner_token = self.client.token_for_password(*OWNER)
                revoked_token = self.client.token_for_password(*REVOKED)
                created = {
                    "first": (owner_token, self.create_system(owner_token, "first", "echows")),
                    "second": (owner_token, self.create_system(owner_token, "second", "echows")),
                    "revoked": (revoked_token,
                                self.create_system(revoked_token, "revoked", "echows")),
                }
                cls.systems = {key: self.wait_for_status(token, system["id"], "running")["id"]
                               for key, (token, system) in created.items()}
            except AssertionError as error:
                cls.setup_error = str(error).splitlines()[0]
                raise
        return cls.systems

    def browser_session(self, user):
        body = json.dumps({"username": user[0], "password": user[1]}).encode()
        reply = self.fetch("127.0.0.1", "POST", "/api/v1/auth/login",
                           {"Content-Type": "application/json"}, body)
        self.assertEqual(reply.status, 200, f"sign-in of {user[0]}: {reply!r}")
        return reply.header("set-cookie").split(";", 1)[0].split("=", 1)[1]

    def issue_code(self, system_id, session):
        reply = self.fetch("127.0.0.1", "GET", f"/api/v1/systems/{system_id}/open", {
            "Cookie": f"{e2e_support.SESSION_COOKIE}={session}", "Accept": "text/html",
            "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none"})
        self.assertEqual(reply.status, 302, f"GET /open: {reply!r}")
        query = urllib.parse.urlsplit(reply.header("location")).query
        return dict(urllib.parse.parse_qsl(query))["code"]

    def exchange(self, system_id, code):
        return self.fetch(self.system_host(system_id), "GET", f"/.puddle/session?code={code}",
                          {"Accept": "text/html"})

    def enter(self, system_id, session):
        reply = self.exchange(system_id, self.issue_code(system_id, session))
        self.assertEqual(reply.status, 302, f"GET /.puddle/session: {reply!r}")
        return reply.header("set-cookie").split(";", 1)[0].split("=", 1)[1]

    def user_id(self, name):
        return self.users[name]["id"]

    def patch_user(self, name, body):
        reply = self.api("PATCH", f"/api/v1/users/{self.user_id(name)}", body, self.admin_token)
        self.assertEqual(reply.status, 200, f"PATCH user {name} {body}: {reply!r}")

    # --- tests -----------------------------------------------------------

    def test_split_upgrade_header_needs_origin(self):
        system_id = self.ready_systems()["first"]
        cookie = self.enter(system_id, self.browser_session(OWNER))
        host = self.system_host(system_id)
        head = (f"GET /socket HTTP/1.1\r\nHost: {host}:{self.port}\r\n"
                f"Cookie: {SYSTEM_COOKIE}={cookie}\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
        # The usual spelling is rejected without Origin, as the contract requires.
        plain = self.raw_exchange(host, (head + "Upgrade: websocket\r\n\r\n").encode())
        self.assertIn(" 403 ", plain, "a WebSocket upgrade without Origin")
        # The same upgrade behind a first Upgrade header of another protocol.
        split = self.raw_exchange(host, (head + "Upgrade: h2c\r\nUpgrade: websocket\r\n"
                                         f"Origin: {self.system_origin(self.ready_systems()['second'])}"
                                         "\r\n\r\n").encode())
        self.assertIn(" 403 ", split,
                      "a WebSocket upgrade from another system's origin, with its Upgrade header "
                      "second, reached the product")

    def test_websocket_ends_on_user_disable(self):
        system_id = self.ready_systems()["revoked"]
        session = self.browser_session(REVOKED)
        cookie = self.enter(system_id, session)
        raw = socket.create_connection(("127.0.0.1", self.port), 30)
        secure = self.context.wrap_socket(raw, server_hostname=self.system_host(system_id))
        channel = websocket.create_connection(
            f"wss://{self.system_host(system_id)}:{self.port}/socket", socket=secure, timeout=10,
            cookie=f"{SYSTEM_COOKIE}={cookie}", origin=self.system_origin(system_id))
        try:
            channel.send("before")
            self.assertEqual(channel.recv(), "before")
            self.patch_user(REVOKED[0], {"disabled": True})
            try:
                reply = self.fetch(self.system_host(system_id), "GET", "/x",
                                   {"Cookie": f"{SYSTEM_COOKIE}={cookie}"})
                self.assertEqual(reply.status, 401, f"the cookie after disabling: {reply!r}")

                # The connection opened before must not keep reaching the product.
                reached = []

                def still_echoes():
                    try:
                        channel.send("after")
                        reached.append(channel.recv() == "after")
                    except (websocket.WebSocketException, OSError):
                        reached.append(False)
                    return not reached[-1]

                e2e_support.wait_until(still_echoes, 10, interval=1)
                self.assertFalse(reached[-1], "a disabled user's open WebSocket still reaches "
                                              "the product 10 s after the user was disabled")
            finally:
                self.patch_user(REVOKED[0], {"disabled": False})
        finally:
            channel.close()

    def test_event_stream_ends_on_demotion(self):
        system_id = self.ready_systems()["first"]
        self.patch_user(DEMOTED[0], {"role": "admin"})
        token = self.client.token_for_password(*DEMOTED)
        raw = socket.create_connection(("127.0.0.1", self.port), 30)
        stream = self.context.wrap_socket(raw, server_hostname="localhost")
        try:
            stream.sendall(f"GET /api/v1/systems/{system_id}/events HTTP/1.1\r\n"
                           f"Host: 127.0.0.1:{self.port}\r\nX-Puddle-Token: {token}\r\n"
                           "Accept: text/event-stream\r\n\r\n".encode())
            stream.settimeout(5)
            received = stream.recv(65536)
            self.assertTrue(received.startswith(b"HTTP/1.1 200"), received[:200])

            self.patch_user(DEMOTED[0], {"role": "user"})
            reply = self.api("GET", f"/api/v1/systems/{system_id}/events", token=token)
            self.assertError(reply, 404, "not_found", message="a new request after demotion")
            reply = self.api("POST", f"/api/v1/systems/{system_id}/keep-alive", {"minutes": 17},
                             self.admin_token)
            self.assertEqual(reply.status, 202, repr(reply))

            later = b""
            deadline = time.monotonic() + 5
            stream.settimeout(1)
            while time.monotonic() < deadline:
                try:
                    piece = stream.recv(65536)
                except (socket.timeout, TimeoutError):
                    continue
                except (ssl.SSLError, OSError):
                    break
                if not piece:
                    break
                later += piece
            self.assertNotIn(b"Kept alive for 17 minutes", later,
                             "a demoted admin's open event stream still delivers events of "
                             "another user's system")
        finally:
            stream.close()
            self.patch_user(DEMOTED[0], {"role": "user"})

    def open_event_stream(self, system_id, token):
        raw = socket.create_connection(("127.0.0.1", self.port), 30)
        stream = self.context.wrap_socket(raw, server_hostname="localhost")
        stream.sendall(f"GET /api/v1/systems/{system_id}/events HTTP/1.1\r\n"
                       f"Host: 127.0.0.1:{self.port}\r\nX-Puddle-Token: {token}\r\n"
                       "Accept: text/event-stream\r\n\r\n".encode())
        stream.settimeout(5)
        return stream, stream.recv(65536).split(b"\r\n", 1)[0]

    def test_one_user_cannot_take_every_event_stream(self):
        systems = self.ready_systems()
        owner_token = self.client.token_for_password(*OWNER)
        streams = []
        try:
            for _ in range(2):
                stream, status = self.open_event_stream(systems["first"], owner_token)
                streams.append(stream)
                self.assertEqual(status, b"HTTP/1.1 200 OK")
            stream, status = self.open_event_stream(systems["first"], owner_token)
            streams.append(stream)
            self.assertEqual(status, b"HTTP/1.1 429 Too Many Requests",
                             "a third event stream of one user was accepted")
            # Another user (here the admin, on the same system) still gets one.
            stream, status = self.open_event_stream(systems["first"], self.admin_token)
            streams.append(stream)
            self.assertEqual(status, b"HTTP/1.1 200 OK",
                             "one user's streams kept another user from opening one")
        finally:
            for stream in streams:
                stream.close()

    def test_login_next_stays_on_puddle(self):
        for hostile in ("/\t/evil.example", "/\t\t/evil.example", "/\n/evil.example"):
            form = urllib.parse.urlencode({"username": OWNER[0], "password": OWNER[1],
                                           "next": hostile}).encode()
            reply = self.fetch("127.0.0.1", "POST", "/login", {
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": f"https://127.0.0.1:{self.port}", "Sec-Fetch-Site": "same-origin",
                "Sec-Fetch-Mode": "navigate"}, form)
            self.assertEqual(reply.status, 303, f"POST /login with next={hostile!r}: {reply!r}")
            location = reply.header("location")
            # Browsers drop ASCII tab and newline from a URL before resolving it.
            seen = location.replace("\t", "").replace("\n", "").replace("\r", "")
            message = f"next={hostile!r} sent the browser to {location!r}, read as {seen!r}"
            self.assertTrue(seen.startswith("/"), message)
            self.assertFalse(seen.startswith("//"), message)

    def test_code_used_up_on_other_system(self):
        systems = self.ready_systems()
        session = self.browser_session(OWNER)
        code = self.issue_code(systems["first"], session)
        reply = self.exchange(systems["second"], code)
        self.assertError(reply, 401, "unauthenticated", message="a code on another system")
        reply = self.exchange(systems["first"], code)
        self.assertError(reply, 401, "unauthenticated",
                         message="a code that failed on another system's origin still worked "
                                 "on its own (the code is to be used up even when the exchange "
                                 "fails)")


if __name__ == "__main__":
    e2e_support.main()
