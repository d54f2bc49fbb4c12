#!/usr/bin/python3
"""A stand-in product for the local provider's tests.

Serves GET <base path>api/status with 200 only when the Authorization header
is "token <PRODUCT_TOKEN>", 403 for any other credential and 404 elsewhere.
Before anything else it prints the descriptors it inherited.

Options for the failure modes under test:
  --exit-code N          print a message and exit with status N at once
  --ignore-sigterm       keep running on SIGTERM (stop must escalate)
  --spawn-session-child  start `sleep` in a new session, as Jupyter starts kernels
  --try-read PATH        print whether this process may read PATH (repeatable)
"""
import argparse
import http.server
import json
import os
import signal
import subprocess
import sys


def inherited_descriptors():
    # os.fstat opens nothing, so the probe does not add a descriptor itself.
    found = []
    for fd in range(1024):
        try:
            os.fstat(fd)
            found.append(fd)
        except OSError:
            pass
    return found


def main():
    print("descriptors at start:", " ".join(str(fd) for fd in inherited_descriptors()), flush=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base-path", required=True)
    parser.add_argument("--exit-code", type=int)
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--spawn-session-child", action="store_true")
    parser.add_argument("--try-read", action="append", default=[])
    args = parser.parse_args()

    for path in args.try_read:
        try:
            with open(path, "rb") as file:
                file.read(1)
            print(f"try-read {path}: allowed", flush=True)
        except OSError as error:
            print(f"try-read {path}: denied ({error.strerror})", flush=True)

    if args.exit_code is not None:
        print(f"test product: failing on purpose with exit code {args.exit_code}", flush=True)
        sys.exit(args.exit_code)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.spawn_session_child:
        child = subprocess.Popen(["/bin/sleep", "1000"], start_new_session=True)
        print(f"session child: {child.pid}", flush=True)

    token = os.environ.get("PRODUCT_TOKEN", "")
    status_path = args.base_path + "api/status"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != status_path:
                self.send_error(404)
                return
            if not token or self.headers.get("Authorization") != "token " + token:
                self.send_error(403)
                return
            body = json.dumps({"status": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.HTTPServer((args.address, args.port), Handler)
    print(f"listening on {args.address}:{args.port}{args.base_path}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
