"""Idle stop end to end: real Jupyter systems behind the access proxy, a
1-minute idle time-out and a 2-second idle check.

Four systems run side by side, so the whole test waits for one time-out:
- silent: nobody uses it. A warning event comes first, then Puddle stops it
  with reason idle.
- busy: a kernel runs `time.sleep(...)` and nobody watches. Jupyter reports
  the kernel busy, so it keeps running past the time-out.
- tab: a notebook page left open. Its kernel WebSocket stays open and the
  page's background polls keep coming, but it stops like the silent one.
- kept: a keep-alive after the warning postpones the stop to now + 2 min.
"""

import base64
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_support  # noqa: E402

USER = "idler"
USER_PASSWORD = "idler-password-1"
KEEP_ALIVE_MINUTES = 2
MAX_KEEP_ALIVE_MINUTES = 3


class WebSocket:
    """A minimal WebSocket client (RFC 6455) over TLS, standard library only.

    A reader thread replies to pings with pongs and keeps the text messages received.
    """

    def __init__(self, client, path, token):
        raw = socket.create_connection((client.host, client.port), timeout=30)
        self.sock = client.context.wrap_socket(raw, server_hostname=client.host)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {client.host}:{client.port}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                   f"X-Puddle-Token: {token}\r\n\r\n")
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise AssertionError(f"WebSocket {path}: connection closed during the handshake")
            head += chunk
        status_line = head.split(b"\r\n", 1)[0].decode()
        if " 101 " not in status_line + " ":
            raise AssertionError(f"WebSocket {path}: expected 101, got {status_line!r}")
        self.sock.settimeout(None)
        self.messages = []
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()

    def _read_exact(self, count):
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise OSError("connection closed")
            data += chunk
        return data

    def _read_loop(self):
        try:
            while True:
                first, second = self._read_exact(2)
                opcode = first & 0x0F
                length = second & 0x7F
                if length == 126:
                    length = struct.unpack("!H", self._read_exact(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", self._read_exact(8))[0]
                payload = self._read_exact(length)
                if opcode == 0x9:
                    self._send(0xA, payload)
                elif opcode == 0x8:
                    break
                elif opcode == 0x1:
                    with self.lock:
                        self.messages.append(payload.decode("utf-8", "replace"))
        except (OSError, ValueError):
            pass
        finally:
            self.closed.set()

    def _send(self, opcode, payload):
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        elif len(payload) < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        with self.lock:
            self.sock.sendall(header + mask + masked)

    def send_text(self, text):
        self._send(0x1, text.encode())

    def received(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        """Sends a close frame, ends the reader thread, then closes the socket.

        The reader thread must end before the socket closes: a thread still
        blocked in recv() keeps using the descriptor number, and reads (or
        replies to pings) on whatever connection the process opens next under
        that number, which breaks that connection's TLS.
        """
        try:
            self._send(0x8, b"")
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's recv()
        except OSError:
            pass
        if self.reader is not threading.current_thread():
            self.reader.join(10)
        try:
            self.sock.close()
        except OSError:
            pass


def kernel_message(msg_type, content, msg_id=None):
    """A Jupyter kernel message as Notebook 6 sends it over the channels WebSocket."""
    return json.dumps({
        "header": {"msg_id": msg_id or uuid.uuid4().hex, "username": USER, "session": uuid.uuid4().hex,
                   "msg_type": msg_type, "version": "5.3"},
        "parent_header": {}, "metadata": {}, "content": content, "buffers": [],
        "channel": "shell"})


@e2e_support.require_root
class IdleStopTest(e2e_support.PuddleTestCase):
    config_text = (
        "idleTimeout:\n"
        "  options:\n"
        "    1min: 1\n"
        "    Never: -1\n"
        f"  maxKeepAliveMinutes: {MAX_KEEP_ALIVE_MINUTES}\n"
        "  checkIntervalSeconds: 2\n"
        + e2e_support.port_range_config(29600))

    def setUp(self):
        self.sockets = []

    def tearDown(self):
        for websocket in self.sockets:
            websocket.close()

    def product_request(self, token, system_id, method, path, body=None):
        """A request to the product through the programs' path."""
        return self.api(method, f"/systems/{system_id}/{path}", body, token=token)

    def start_kernel(self, token, system_id):
        reply = self.product_request(token, system_id, "POST", "api/kernels", {"name": "python3"})
        self.assertEqual(reply.status, 201, f"POST api/kernels on {system_id}: {reply!r}")
        return reply.json()["id"]

    def open_channels(self, token, system_id, kernel_id):
        websocket = WebSocket(self.client, f"/systems/{system_id}/api/kernels/{kernel_id}/channels",
                              token)
        self.sockets.append(websocket)
        return websocket

    def get(self, token, system_id):
        reply = self.api("GET", f"/api/v1/systems/{system_id}", token=token)
        self.assertEqual(reply.status, 200, repr(reply))
        return reply.json()

    def events(self, token, system_id):
        reply = self.api("GET", f"/api/v1/systems/{system_id}/events?limit=200", token=token)
        self.assertEqual(reply.status, 200, repr(reply))
        return reply.json()["items"]

    def operations(self, token, system_id):
        reply = self.api("GET", f"/api/v1/systems/{system_id}/operations", token=token)
        self.assertEqual(reply.status, 200, repr(reply))
        return reply.json()["items"]

    def assertStoppedForIdle(self, token, system_id, name):
        stops = [operation for operation in self.operations(token, system_id)
                 if operation["action"] == "stop"]
        self.assertEqual(len(stops), 1, f"{name}: stop operations {stops}")
        self.assertEqual(stops[0]["reason"], "idle", f"{name}: {stops[0]}")
        self.assertIsNone(stops[0]["requestedBy"], f"{name}: {stops[0]}")
        events = self.events(token, system_id)
        warnings = [i for i, event in enumerate(events) if event["level"] == "warning"]
        stop_events = [i for i, event in enumerate(events)
                       if event["message"].startswith("Stop requested: the idle time-out")]
        self.assertEqual(len(stop_events), 1, f"{name}: events {events}")
        self.assertTrue(warnings, f"{name}: no warning before the stop: {events}")
        self.assertLess(warnings[0], stop_events[0], f"{name}: events {events}")
        self.assertIn("no browser activity", events[stop_events[0]]["message"])

    def test_idle_systems_stop_and_busy_ones_run(self):
        self.client.create_user(self.admin_token, USER, USER_PASSWORD)
        token = self.client.token_for_password(USER, USER_PASSWORD)
        reply = self.api("GET", "/api/v1/products/jupyter", token=token)
        self.assertEqual(reply.status, 200, repr(reply))
        version = reply.json()["versions"][0]["version"]

        names = ("silent", "busy", "tab", "kept")
        ids = {}
        for name in names:
            reply = self.api("POST", "/api/v1/systems",
                             {"name": name, "product": "jupyter", "version": version,
                              "systemType": "cpu-small", "idleTimeoutMinutes": 1}, token)
            self.assertEqual(reply.status, 201, f"create {name}: {reply!r}")
            ids[name] = reply.json()["id"]
            self.track_system(ids[name])
        # Each system's idle clock starts when it runs, so each scenario
        # starts as soon as its system runs, not when the slowest one does.
        self.wait_for_status(token, ids["busy"], "running", timeout=180)

        # busy: a kernel sleeps for longer than the whole test; nobody watches.
        busy_kernel = self.start_kernel(token, ids["busy"])
        channels = self.open_channels(token, ids["busy"], busy_kernel)
        execute_id = uuid.uuid4().hex
        channels.send_text(kernel_message("execute_request", {
            "code": "import time; time.sleep(400)", "silent": False, "store_history": True,
            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}, execute_id))

        # Jupyter sends requests of its own when a channel opens, so only the
        # status caused by this execute_request counts.
        def executing():
            for text in channels.received():
                message = json.loads(text)
                if (message.get("msg_type") == "status" and
                        message.get("parent_header", {}).get("msg_id") == execute_id and
                        message.get("content", {}).get("execution_state") == "busy"):
                    return True
            return False

        self.assertTrue(e2e_support.wait_until(executing, 30),
                        f"the kernel never ran the execute_request: {channels.received()}")
        # Nobody watches: the client leaves while Jupyter is still sending the
        # execute_request's first replies, so only the busy kernel keeps the
        # system running. The requests that follow use new connections, which
        # must work after such a close.
        channels.close()

        self.wait_for_status(token, ids["tab"], "running", timeout=180)

        # tab: the notebook page opens its kernel's WebSocket, asks kernel_info
        # as it does on load, and then only polls.
        tab_kernel = self.start_kernel(token, ids["tab"])
        tab = self.open_channels(token, ids["tab"], tab_kernel)
        tab.send_text(kernel_message("kernel_info_request", {}))
        for name in ("silent", "kept"):
            self.wait_for_status(token, ids[name], "running", timeout=180)

        states = {}
        tab_open_while_running = False
        warned_kept = False
        kept_until = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            for path in ("api/contents", "api/sessions", "api/kernels", "api/terminals"):
                self.product_request(token, ids["tab"], "GET", path)
            for name in names:
                states[name] = self.get(token, ids[name])
            if states["tab"]["status"] == "running":
                tab_open_while_running = not tab.closed.is_set()
            if not warned_kept and any(event["level"] == "warning"
                                       for event in self.events(token, ids["kept"])):
                warned_kept = True
                too_long = self.api("POST", f"/api/v1/systems/{ids['kept']}/keep-alive",
                                    {"minutes": MAX_KEEP_ALIVE_MINUTES + 1}, token)
                self.assertError(too_long, 400, "validation_failed", "minutes")
                kept = self.api("POST", f"/api/v1/systems/{ids['kept']}/keep-alive",
                                {"minutes": KEEP_ALIVE_MINUTES}, token)
                self.assertEqual(kept.status, 202, repr(kept))
                kept_until = kept.json()["activity"]["idleStopAt"]
                self.assertIsNotNone(kept_until, repr(kept))
                kept_at = time.time()
            stopped = {name for name in names if states[name]["status"] in ("stopping", "stopped")}
            if {"silent", "tab"} <= stopped:
                break
            time.sleep(2)

        self.assertIn(states["silent"]["status"], ("stopping", "stopped"),
                      f"silent system still {states['silent']}\n{self.logs_tail()}")
        self.assertIn(states["tab"]["status"], ("stopping", "stopped"),
                      f"system with an open tab still {states['tab']}\n{self.logs_tail()}")
        self.assertTrue(tab_open_while_running, "the tab's WebSocket closed before the stop")
        self.assertStoppedForIdle(token, ids["silent"], "silent")
        self.assertStoppedForIdle(token, ids["tab"], "tab")

        # The busy kernel keeps its system running, and says why.
        busy = self.get(token, ids["busy"])
        self.assertEqual(busy["status"], "running", repr(busy))
        self.assertEqual(busy["activity"]["state"], "busy", repr(busy["activity"]))
        self.assertIn("kernel busy for", busy["activity"]["reason"])
        self.assertIsNone(busy["activity"]["idleStopAt"], repr(busy["activity"]))
        product = [signal for signal in busy["activity"]["signals"]
                   if signal["source"] == "product"]
        self.assertTrue(product and product[0]["busy"], repr(busy["activity"]))
        self.assertFalse([event for event in self.events(token, ids["busy"])
                          if event["level"] == "warning"])

        # The kept system outlived the time-out and stops at the keep-alive's end.
        self.assertTrue(warned_kept, "the kept system was never warned")
        kept = self.get(token, ids["kept"])
        self.assertEqual(kept["status"], "running", repr(kept))
        self.assertEqual(kept["activity"]["idleStopAt"], kept_until)
        self.wait_for_status(token, ids["kept"], "stopped", timeout=KEEP_ALIVE_MINUTES * 60 + 60)
        self.assertGreaterEqual(time.time() - kept_at, KEEP_ALIVE_MINUTES * 60 - 5)
        messages = [event["message"] for event in self.events(token, ids["kept"])]
        self.assertTrue(any(message.startswith(f"Kept alive for {KEEP_ALIVE_MINUTES} minutes by")
                            for message in messages), messages)
        self.assertEqual([operation["reason"] for operation in self.operations(token, ids["kept"])
                          if operation["action"] == "stop"], ["idle"])

        # Deleting ends the busy kernel.
        for name in names:
            reply = self.api("DELETE", f"/api/v1/systems/{ids[name]}", token=token)
            self.assertEqual(reply.status, 202, f"delete {name}: {reply!r}")
        for name in names:
            self.wait_for_status(token, ids[name], "deleted", timeout=60)
            self.assertFalse(e2e_support.processes_with_env("PUDDLE_SYSTEM_ID", ids[name]),
                             f"{name}: processes left after delete")


@e2e_support.require_root
@e2e_support.require_postgres
class IdleStopPostgresTest(IdleStopTest):
    """The same on PostgreSQL, where the idle loop may run in the worker process
    while the proxy's activity reaches it through the store every 30 s."""

    store = "postgres"
    config_text = IdleStopTest.config_text.replace("portRange: 29600-29699",
                                                   "portRange: 29650-29699")


if __name__ == "__main__":
    unittest.main(argv=e2e_support.parse_arguments())
