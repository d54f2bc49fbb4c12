#!/usr/bin/python3
"""Start a kernel on a Jupyter Notebook 6 server and make it run CODE.

Usage: busy_kernel.py ADDRESS BASE_PATH CODE, with the server's token in
JUPYTER_TOKEN. It creates a kernel (POST <base>api/kernels), sends an
execute_request over the kernel's WebSocket, waits until the kernel has
reported itself busy for 2 s (trying again, up to 3 times, when the execution
ends at once), and exits, leaving the code running. Prints the kernel id.
Standard library only; plain HTTP, as the product listens without TLS.
"""

import base64
import http.client
import json
import os
import select
import socket
import struct
import sys
import time
import uuid


def main():
    address, base_path, code = sys.argv[1], sys.argv[2], sys.argv[3]
    host, port = address.rsplit(":", 1)
    token = os.environ["JUPYTER_TOKEN"]
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}

    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("POST", f"{base_path}api/kernels", body=b'{"name": "python3"}',
                       headers=headers)
    response = connection.getresponse()
    body = response.read()
    if response.status != 201:
        sys.exit(f"POST {base_path}api/kernels answered {response.status}: {body!r}")
    kernel_id = json.loads(body)["id"]
    connection.close()

    sock = socket.create_connection((host, int(port)), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {base_path}api/kernels/{kernel_id}/channels HTTP/1.1\r\n"
                  f"Host: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Authorization: token {token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            sys.exit("the kernel WebSocket closed during the handshake")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0] + b" ":
        sys.exit(f"the kernel WebSocket answered {head!r}")
    buffered = b""

    def read_exact(count):
        nonlocal buffered
        while len(buffered) < count:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            buffered += chunk
        data, buffered = buffered[:count], buffered[count:]
        return data

    def send_execute():
        msg_id = uuid.uuid4().hex
        message = json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }).encode()
        mask = os.urandom(4)
        frame = bytes([0x81])
        frame += bytes([0x80 | 126]) + struct.pack("!H", len(message)) if len(message) >= 126 \
            else bytes([0x80 | len(message)])
        sock.sendall(frame + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(message)))
        return msg_id

    def read_message(timeout):
        """The next text message as JSON, or None when none began in `timeout` seconds."""
        while True:
            if not buffered and not select.select([sock], [], [], timeout)[0]:
                return None
            first, second = read_exact(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", read_exact(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", read_exact(8))[0]
            payload = read_exact(length)
            if first & 0x0F == 0x1:
                return json.loads(payload)

    # The code must still run a moment after the kernel reports itself busy:
    # an execution that ended at once (the kernel restarted, say) is tried
    # again, so the caller measures a kernel that really is busy.
    for attempt in range(3):
        msg_id = send_execute()
        busy_at = None
        ended = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ended is None:
            if busy_at is not None and time.monotonic() - busy_at >= 2:
                sock.close()
                print(kernel_id)
                return
            received = read_message(0.5)
            if received is None:
                continue
            # Jupyter sends requests of its own when a channel opens, so only
            # the messages caused by this execute_request count.
            if received.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = received.get("msg_type")
            content = received.get("content", {})
            if kind == "status" and content.get("execution_state") == "busy":
                busy_at = time.monotonic()
            elif kind == "status" and content.get("execution_state") == "idle":
                ended = "the execution ended at once"
            elif kind == "error" or (kind == "execute_reply" and content.get("status") != "ok"):
                ended = f"the execution failed: {content.get('ename')}: {content.get('evalue')}"
        sys.stderr.write(f"attempt {attempt + 1}: {ended or 'the kernel never reported itself busy'}\n")
    sys.exit("the kernel did not stay busy in 3 attempts")

if __name__ == "__main__":
    main()
