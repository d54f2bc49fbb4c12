"""Chaos: system lifecycles through two servers and two workers while parts crash.

One throwaway PostgreSQL and Redis back two `puddle serve` processes (each
also running one job worker) and two `puddle worker` processes that share
one config and data directory. Ten driver threads create, stop, start and
delete systems of the fast test product, at most three systems each, so at
most 30 exist at once. Each system's next request goes out only after its
previous one settled, through either server at random, and requests are
retried on connection errors and 5xx replies.

Meanwhile a chaos thread SIGKILLs servers and workers at random moments and
starts them again, restarts Redis once on the same port, empties it once
with FLUSHALL and restarts PostgreSQL once. At the end every process runs
again, the test waits until no job is queued or running, and it prints and
checks four counts:

- systems whose final status differs from what their last request asked;
- requests that got a 2xx reply but have no operation in the system's
  /operations;
- systems with more than one product process;
- product processes of this installation that belong to no system or to a
  stopped or deleted one.

The random seed is printed first; PUDDLE_CHAOS_SEED sets it. Thread timing
still varies between runs, so a seed reproduces the plan (which request
goes where, when each part crashes), not the exact interleaving. On failure
the server and worker logs are copied to a directory named in the output.

Limitations: a system that goes `failed` during the drive and is then
started or deleted successfully is printed, not failed on, because only the
end state is checked. A job held by a killed process waits for the job
runner's 60 s silent-heartbeat limit, which the config cannot shorten, so
the test takes about 2 minutes.
"""

import collections
import http.client
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import e2e_support
from e2e_support import (ADMIN_PASSWORD, PG_THROWAWAY, REDIS_SERVER, Client, PuddleServer,
                         PuddleTestCase, PuddleWorker, processes_with_env, read_cmdline,
                         read_environ, wait_until)

DRIVER_THREADS = 10
SYSTEMS_PER_THREAD = 3
MAX_REQUESTS = 400
DRIVE_SECONDS = 120
# Chaos events happen in this window of the drive phase, so that jobs a
# killed process held have time to be reaped (after 60 s of silent
# heartbeat) before the end.
CHAOS_WINDOW = (8, 75)
SETTLE_SECONDS = 100
# Gives up on one request after this long of connection errors and 5xx.
REQUEST_RETRY_SECONDS = 60

EXPECTED_STATUS = {"create": "running", "start": "running", "stop": "stopped",
                   "delete": "deleted"}
SETTLED_STATUSES = {"running", "stopped", "deleted", "failed"}
TRANSPORT_ERRORS = (OSError, http.client.HTTPException, ssl.SSLError)


def log(message):
    sys.stdout.write(f"[chaos {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stdout.flush()


def is_fast_product(pid):
    """Return whether pid runs the fast test product's HTTP server."""
    command = read_cmdline(pid) or []
    return len(command) >= 3 and command[1] == "-c" and "HTTPServer" in command[2]


class SystemRecord:
    """What the test asked of one system, and what Puddle accepted."""

    def __init__(self, name):
        self.name = name
        self.system_id = None
        self.last_action = None
        # Actions that got a 2xx reply, in order.
        self.accepted = []
        self.last_seen_status = None
        self.failures = []  # (action, events text) for each time the system went failed


class ChaosState:
    """Counters and records shared by the driver threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.records = []
        self.requests_sent = 0
        self.transport_errors = 0
        self.server_errors = collections.Counter()
        self.unauthorized = 0
        self.conflicts_after_retry = 0
        self.gave_up = []
        self.stop_driving = threading.Event()

    def count_request(self):
        with self.lock:
            if self.requests_sent >= MAX_REQUESTS:
                return False
            self.requests_sent += 1
            return True


@e2e_support.require_root
@e2e_support.require_postgres
@e2e_support.require_redis
class ChaosTest(PuddleTestCase):
    # Its own products' ports, so it may run beside the other e2e tests.
    config_text = e2e_support.port_range_config(29400)
    store = "postgres"
    queue = "redis"
    serve_arguments = ("--workers", "1")
    server2 = None
    worker2 = None
    keep_logs = False

    @classmethod
    def setUpClass(cls):
        seed_text = os.environ.get("PUDDLE_CHAOS_SEED")
        cls.seed = int(seed_text) if seed_text else random.SystemRandom().randrange(1, 2**31)
        log(f"seed {cls.seed} (rerun with PUDDLE_CHAOS_SEED={cls.seed})")
        super().setUpClass()
        cls.worker.log_path = os.path.join(cls.workdir, "worker-1.log")
        # The first worker already writes to worker.log; later starts append to worker-1.log.
        os.rename(os.path.join(cls.workdir, "worker.log"), cls.worker.log_path)
        cls.server2 = PuddleServer(cls.workdir, None, cls.serve_arguments, cls.postgres)
        cls.server2.config_path = cls.server.config_path
        cls.server2.log_path = os.path.join(cls.workdir, "serve-2.log")
        cls.server2.start()
        cls.worker2 = PuddleWorker(cls.server)
        cls.worker2.log_path = os.path.join(cls.workdir, "worker-2.log")
        cls.worker2.start()

    @classmethod
    def _cleanup(cls):
        if cls.keep_logs:
            cls._copy_logs()
        for process in (cls.server2, cls.worker2):
            if process is not None:
                process.terminate()
        super()._cleanup()

    @classmethod
    def _copy_logs(cls):
        target = tempfile.mkdtemp(prefix=f"puddle-chaos-{cls.seed}-")
        for name in ("serve.log", "serve-2.log", "worker-1.log", "worker-2.log"):
            path = os.path.join(cls.workdir, name)
            if os.path.exists(path):
                shutil.copy(path, target)
        sys.stderr.write(f"chaos: server and worker logs kept in {target}\n")

    # --- processes under chaos -------------------------------------------

    def restart_server(self, server):
        server.kill()
        time.sleep(self.chaos_random.uniform(0.2, 2.0))
        deadline = time.monotonic() + 60
        while True:
            try:
                server.start(port=server.port)
                return
            except RuntimeError as error:
                if time.monotonic() > deadline:
                    raise
                log(f"restart of serve on port {server.port} failed, retrying: "
                    f"{str(error).splitlines()[0]}")
                time.sleep(1)

    def restart_worker(self, worker):
        worker.kill()
        time.sleep(self.chaos_random.uniform(0.2, 2.0))
        deadline = time.monotonic() + 60
        while True:
            try:
                worker.start()
                return
            except RuntimeError as error:
                if time.monotonic() > deadline:
                    raise
                log(f"restart of a worker failed, retrying: {str(error).splitlines()[0]}")
                time.sleep(1)

    def restart_redis(self):
        redis = self.redis
        redis.process.terminate()
        redis.process.wait(timeout=10)
        time.sleep(self.chaos_random.uniform(0.5, 2.0))
        redis.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(redis.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", redis.directory, "--requirepass", redis.password],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(redis._answers, 15):
            raise RuntimeError(f"redis-server did not come back on port {redis.port}")

    def flush_redis(self):
        with socket.create_connection(("127.0.0.1", self.redis.port), timeout=5) as connection:
            connection.sendall(f"AUTH {self.redis.password}\r\nFLUSHALL\r\n".encode())
            received = b""
            while received.count(b"\r\n") < 2:
                chunk = connection.recv(256)
                if not chunk:
                    break
                received += chunk
        if received != b"+OK\r\n+OK\r\n":
            raise RuntimeError(f"Redis FLUSHALL failed: {received!r}")

    def restart_postgres(self):
        result = subprocess.run([PG_THROWAWAY, "restart", self.postgres.values["PG_DIR"]],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"pg_throwaway.sh restart failed: {result.stderr}")

    def plan_chaos(self):
        """Return [(seconds after the drive starts, event name)], in time order."""
        events = ["restart-redis", "flush-redis", "restart-postgres"]
        for _ in range(self.chaos_random.randint(3, 4)):
            events.append(self.chaos_random.choice(["kill-server-1", "kill-server-2"]))
        for _ in range(self.chaos_random.randint(3, 4)):
            events.append(self.chaos_random.choice(["kill-worker-1", "kill-worker-2"]))
        times = sorted(self.chaos_random.uniform(*CHAOS_WINDOW) for _ in events)
        self.chaos_random.shuffle(events)
        return list(zip(times, events))

    def run_chaos(self, plan, start):
        actions = {
            "kill-server-1": lambda: self.restart_server(self.server),
            "kill-server-2": lambda: self.restart_server(self.server2),
            "kill-worker-1": lambda: self.restart_worker(self.worker),
            "kill-worker-2": lambda: self.restart_worker(self.worker2),
            "restart-redis": self.restart_redis,
            "flush-redis": self.flush_redis,
            "restart-postgres": self.restart_postgres,
        }
        for offset, event in plan:
            delay = start + offset - time.monotonic()
            if delay > 0 and self.state.stop_driving.wait(delay):
                return
            log(f"chaos: {event}")
            try:
                actions[event]()
            except Exception as error:  # noqa: BLE001 - recorded and checked at the end
                self.chaos_errors.append(f"{event}: {error}")
                log(f"chaos: {event} failed: {error}")
            self.chaos_done.append(event)

    # --- requests --------------------------------------------------------

    def send(self, rng, method, path, body=None):
        """Send one request through a random server, retrying on transport errors and 5xx.

        Returns (reply or None, whether a retry happened). None means the
        request never got a reply other than 5xx within REQUEST_RETRY_SECONDS.
        """
        deadline = time.monotonic() + REQUEST_RETRY_SECONDS
        retried = False
        while True:
            client = rng.choice(self.clients)
            try:
                reply = client.request(method, path, body, token=self.token, timeout=20)
            except TRANSPORT_ERRORS:
                with self.state.lock:
                    self.state.transport_errors += 1
                reply = None
            if reply is not None and reply.status == 401:
                with self.state.lock:
                    self.state.unauthorized += 1
                log(f"401 for {method} {path} through port {client.port}: {reply!r}")
                self.refresh_token()
                reply = None
            elif reply is not None and reply.status >= 500:
                with self.state.lock:
                    self.state.server_errors[reply.status] += 1
                reply = None
            if reply is not None:
                return reply, retried
            if time.monotonic() > deadline:
                return None, retried
            retried = True
            time.sleep(0.3)

    def refresh_token(self):
        for client in self.clients:
            try:
                self.token = client.token_for_password("admin", ADMIN_PASSWORD)
                return
            except (AssertionError,) + TRANSPORT_ERRORS:
                continue

    def read_system(self, rng, system_id):
        reply, _ = self.send(rng, "GET", f"/api/v1/systems/{system_id}")
        if reply is None or reply.status != 200:
            return None
        return reply.json()

    def read_operations(self, rng, system_id):
        """Return every operation of a system (all pages), or None if unreadable."""
        items = []
        cursor = None
        while True:
            path = f"/api/v1/systems/{system_id}/operations?limit=500"
            if cursor:
                path += f"&cursor={cursor}"
            reply, _ = self.send(rng, "GET", path)
            if reply is None or reply.status != 200:
                return None
            page = reply.json()
            items.extend(page["items"])
            cursor = page.get("nextCursor")
            if not cursor:
                return items

    def read_events(self, rng, system_id):
        reply, _ = self.send(rng, "GET", f"/api/v1/systems/{system_id}/events?limit=500")
        if reply is None or reply.status != 200:
            return "(events unreadable)"
        return "\n".join(f"    {event['time']} {event['level']} {event['message']}"
                         for event in reply.json()["items"])

    def find_system_by_name(self, rng, name):
        reply, _ = self.send(rng, "GET", "/api/v1/systems?limit=500")
        if reply is None or reply.status != 200:
            return None
        for system in reply.json()["items"]:
            if system["name"] == name:
                return system
        return None

    # --- one system's lifecycle ------------------------------------------

    def request_action(self, rng, record, action):
        """Send one lifecycle request; record it and return whether Puddle took it."""
        if action == "create":
            reply, retried = self.send(rng, "POST", "/api/v1/systems",
                                       {"name": record.name, "product": "fast",
                                        "version": "1.0", "systemType": "cpu-small"})
        elif action == "delete":
            reply, retried = self.send(rng, "DELETE", f"/api/v1/systems/{record.system_id}")
        else:
            reply, retried = self.send(rng, "POST",
                                       f"/api/v1/systems/{record.system_id}/{action}")
        if reply is None:
            with self.state.lock:
                self.state.gave_up.append(f"{action} {record.name} {record.system_id}")
            log(f"gave up on {action} of {record.name}: no reply but 5xx or errors")
            # Its effect is unknown; the final check reads what the system shows.
            record.last_action = action
            return record.system_id is not None

        if 200 <= reply.status < 300:
            if action == "create":
                record.system_id = reply.json()["id"]
                self.track_system(record.system_id)
            record.accepted.append(action)
            record.last_action = action
            return True

        # A retried request whose first attempt took effect without a reply.
        if retried and action == "create" and reply.status == 409:
            system = self.find_system_by_name(rng, record.name)
            if system is not None:
                record.system_id = system["id"]
                self.track_system(record.system_id)
                record.last_action = action
                with self.state.lock:
                    self.state.conflicts_after_retry += 1
                return True
        if retried and reply.status == 409 and record.system_id is not None:
            with self.state.lock:
                self.state.conflicts_after_retry += 1
            record.last_action = action
            return True
        self.unexpected_replies.append(f"{action} {record.name} {record.system_id}: {reply!r}")
        log(f"unexpected reply to {action} of {record.name}: {reply!r}")
        return False

    def wait_settled(self, rng, record):
        """Poll until the system's status is settled and no operation of it is pending."""
        while not self.state.stop_driving.is_set():
            system = self.read_system(rng, record.system_id)
            if system is not None:
                record.last_seen_status = system["status"]
                if system["status"] in SETTLED_STATUSES:
                    operations = self.read_operations(rng, record.system_id)
                    if operations is not None and not any(
                            item["state"] in ("queued", "running") for item in operations):
                        if system["status"] == "failed":
                            events = self.read_events(rng, record.system_id)
                            record.failures.append((record.last_action, events))
                            log(f"{record.name} {record.system_id} failed after "
                                f"{record.last_action}:\n{events}")
                        return True
            self.state.stop_driving.wait(0.5)
        return False

    def next_action(self, rng, record):
        status = record.last_seen_status
        if status == "running":
            return rng.choices(["stop", "delete"], [3, 1])[0]
        return rng.choices(["start", "delete"], [3, 1])[0]

    def drive(self, index):
        rng = random.Random(self.seed * 1000 + index)
        own = []
        counter = 0
        while not self.state.stop_driving.is_set():
            alive = [record for record in own if record.last_seen_status != "deleted"]
            if len(alive) < SYSTEMS_PER_THREAD and (not alive or rng.random() < 0.4):
                counter += 1
                record = SystemRecord(f"chaos-{index}-{counter}")
                own.append(record)
                with self.state.lock:
                    self.state.records.append(record)
                action = "create"
            else:
                record = rng.choice(alive)
                action = self.next_action(rng, record)
            if not self.state.count_request():
                return
            if not self.request_action(rng, record, action):
                if record.system_id is None:
                    record.last_seen_status = "deleted"  # never existed
                    continue
            if not self.wait_settled(rng, record):
                return

    # --- the final checks ------------------------------------------------

    def settle_everything(self):
        """Wait until no job is queued or running; return the jobs still pending."""
        def pending_jobs():
            try:
                return self.postgres.query(
                    "SELECT id, kind, system_id, state, attempt, claimed_by FROM jobs "
                    "WHERE state IN ('queued', 'running')")
            except RuntimeError:
                return [["(PostgreSQL unreadable)"]]

        wait_until(lambda: not pending_jobs(), SETTLE_SECONDS, interval=1)
        return pending_jobs()

    def product_processes(self):
        """Return {pid: system id or None} for this installation's fast-product processes."""
        result = {}
        for pid in processes_with_env("PUDDLE_INSTALLATION_ID", self.installation):
            if is_fast_product(pid):
                environ = read_environ(pid) or {}
                result[pid] = environ.get("PUDDLE_SYSTEM_ID")
        return result

    def test_lifecycles_survive_crashes(self):
        self.chaos_random = random.Random(self.seed)
        self.state = ChaosState()
        self.chaos_errors = []
        self.chaos_done = []
        self.unexpected_replies = []
        self.clients = [Client(self.server.port, self.server.cafile),
                        Client(self.server2.port, self.server.cafile)]
        self.token = self.admin_token
        self.installation = self.server.installation_id()
        self.assertTrue(self.installation, "no installation id in PostgreSQL")
        self.register_fast_product(self.token)
        log(f"installation {self.installation}; serve on ports {self.server.port} and "
            f"{self.server2.port}; PostgreSQL on {self.postgres.port}, Redis on "
            f"{self.redis.port}; work directory {self.workdir}")

        plan = self.plan_chaos()
        log("chaos plan: " + ", ".join(f"{offset:.0f}s {event}" for offset, event in plan))
        start = time.monotonic()
        chaos = threading.Thread(target=self.run_chaos, args=(plan, start), daemon=True)
        drivers = [threading.Thread(target=self.drive, args=(index,), daemon=True)
                   for index in range(DRIVER_THREADS)]
        chaos.start()
        for thread in drivers:
            thread.start()
        for thread in drivers:
            thread.join(max(0.0, start + DRIVE_SECONDS - time.monotonic()))
        self.state.stop_driving.set()
        for thread in drivers:
            thread.join(30)
        chaos.join(120)
        log(f"drive done after {time.monotonic() - start:.0f}s: {self.state.requests_sent} "
            f"requests, {self.state.transport_errors} connection errors, 5xx "
            f"{dict(self.state.server_errors)}, {self.state.unauthorized} 401, "
            f"{self.state.conflicts_after_retry} 409 after a retry; chaos events "
            f"{self.chaos_done}")

        # Everything runs again before the end state is judged.
        for server in (self.server, self.server2):
            if server.process is None or server.process.poll() is not None:
                self.restart_server(server)
        for worker in (self.worker, self.worker2):
            if worker.process is None or worker.process.poll() is not None:
                self.restart_worker(worker)
        still_pending = self.settle_everything()
        log(f"settled after {time.monotonic() - start:.0f}s; jobs still pending: "
            f"{still_pending}")

        rng = random.Random(self.seed + 1)
        mismatched = []
        lost = []
        records = [record for record in self.state.records if record.system_id is not None]
        final_status = {}
        for record in records:
            system = self.read_system(rng, record.system_id)
            status = system["status"] if system else "(unreadable)"
            final_status[record.system_id] = status
            expected = EXPECTED_STATUS[record.last_action]
            if status != expected:
                events = self.read_events(rng, record.system_id)
                mismatched.append(f"{record.name} {record.system_id}: {status}, expected "
                                  f"{expected} after {record.last_action}\n{events}")
            operations = self.read_operations(rng, record.system_id)
            if operations is None:
                lost.append(f"{record.name} {record.system_id}: operations unreadable")
                continue
            found = collections.Counter(item["action"] for item in operations
                                        if item["reason"] in ("user", "admin"))
            wanted = collections.Counter(record.accepted)
            for action, count in wanted.items():
                if found[action] < count:
                    lost.append(f"{record.name} {record.system_id}: {count} {action} accepted, "
                                f"{found[action]} in /operations {operations}")

        processes = self.product_processes()
        per_system = collections.Counter(system_id for system_id in processes.values())
        duplicated = [f"{system_id}: {count} product processes"
                      for system_id, count in per_system.items()
                      if system_id is not None and count > 1]
        orphaned = [f"pid {pid} of {system_id}: system is "
                    f"{final_status.get(system_id, 'unknown to the test')}"
                    for pid, system_id in processes.items()
                    if system_id is None
                    or final_status.get(system_id, "deleted") in ("stopped", "deleted")]
        running = [system_id for system_id, status in final_status.items() if status == "running"]
        missing = [system_id for system_id in running if per_system[system_id] == 0]
        intermediate = sum(len(record.failures) for record in self.state.records)

        log(f"systems: {len(records)}; final statuses "
            f"{dict(collections.Counter(final_status.values()))}")
        log(f"status mismatches: {len(mismatched)}")
        log(f"operations lost: {len(lost)}")
        log(f"systems with two or more product processes: {len(duplicated)}")
        log(f"product processes of no system or of a stopped or deleted one: {len(orphaned)}")
        log(f"running systems without a product process: {len(missing)}")
        log(f"times a system went failed during the drive: {intermediate}")
        log(f"requests given up: {len(self.state.gave_up)}; unexpected replies: "
            f"{len(self.unexpected_replies)}; chaos errors: {len(self.chaos_errors)}")

        problems = []
        for title, items in (("status mismatches", mismatched), ("operations lost", lost),
                             ("duplicate product processes", duplicated),
                             ("orphan product processes", orphaned),
                             ("running systems without a product process", missing),
                             ("requests given up", self.state.gave_up),
                             ("unexpected replies", self.unexpected_replies),
                             ("chaos events that failed", self.chaos_errors),
                             ("jobs still pending", [str(job) for job in still_pending])):
            if items:
                problems.append(f"{title} ({len(items)}):\n  " + "\n  ".join(items))
        if problems:
            type(self).keep_logs = True
            self.fail(f"seed {self.seed}:\n" + "\n".join(problems))


if __name__ == "__main__":
    e2e_support.main()
