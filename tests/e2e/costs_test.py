"""End-to-end tests of quotas, monthly budgets and the cost report.

A real `puddle serve` with the local provider and the fast test product:
quotas set with PATCH /users/{id}, twenty simultaneous creates against
runningSystems = 1 over HTTPS (exactly one is accepted), a start refused by
the quota, a create refused by the budget, and GET /reports/costs as JSON and
CSV checked against the sessions the API reports. Money must be plain
decimals in every body (0.05, never 5E-2). Runs on SQLite, then on a
throwaway PostgreSQL.
"""

import datetime
import re
import threading
import unittest
import urllib.parse

import e2e_support
from e2e_support import PuddleTestCase

USER = ("quota-user", "quota-user-password-1")
OTHER = ("other-user", "other-user-password-1")
THREADS = 20
# A number in exponent form outside a JSON string, such as 5E-2 or 1e0.
EXPONENT_NUMBER = re.compile(rb'[:\[,]\s*-?\d+(\.\d+)?[eE][-+]?\d+')


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


@e2e_support.require_root
class CostsTest(PuddleTestCase):
    # Ports 29700-29749 here and 29750-29799 for the PostgreSQL run below.
    config_text = "providers:\n  local:\n    portRange: 29700-29749\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user = cls.client.create_user(cls.admin_token, *USER)
        cls.token = cls.client.token_for_password(*USER)
        cls.client.create_user(cls.admin_token, *OTHER)
        cls.other_token = cls.client.token_for_password(*OTHER)

    def assertPlainNumbers(self, reply):
        self.assertIsNone(EXPONENT_NUMBER.search(reply.body),
                          f"a number in exponent form: {reply!r}")

    def set_quota(self, quota):
        reply = self.api("PATCH", f"/api/v1/users/{self.user['id']}", {"quota": quota},
                         token=self.admin_token)
        self.assertEqual(reply.status, 200, repr(reply))
        self.assertPlainNumbers(reply)
        return reply.json()["quota"]

    def test_1_quota_is_set_and_validated(self):
        quota = self.set_quota({"runningSystems": 1, "monthlyBudget": 0.05})
        self.assertEqual(quota, {"systems": None, "runningSystems": 1, "monthlyBudget": 0.05})
        reply = self.api("GET", f"/api/v1/users/{self.user['id']}", token=self.admin_token)
        self.assertIn(b'"monthlyBudget":0.05', reply.body)
        # A limit left out stays; null removes it.
        quota = self.set_quota({"monthlyBudget": None})
        self.assertEqual(quota, {"systems": None, "runningSystems": 1, "monthlyBudget": None})

        path = f"/api/v1/users/{self.user['id']}"
        for body, code, field in (
                ({"quota": {"runningSystems": -1}}, "validation_failed", "quota.runningSystems"),
                ({"quota": {"systems": 1.5}}, "validation_failed", "quota.systems"),
                ({"quota": {"monthlyBudget": "10"}}, "validation_failed", "quota.monthlyBudget"),
                ({"quota": {"monthlyBudget": -1}}, "validation_failed", "quota.monthlyBudget"),
                ({"quota": {"bogus": 1}}, "unknown_field", "quota.bogus"),
                ({"quota": 3}, "validation_failed", "quota")):
            reply = self.api("PATCH", path, body, token=self.admin_token)
            self.assertError(reply, 400, code, field, f"PATCH {body}")
        # Users cannot set their own quota.
        reply = self.api("PATCH", path, {"quota": {"runningSystems": 5}}, token=self.token)
        self.assertEqual(reply.status, 403, repr(reply))

    def test_2_concurrent_creates_let_one_through(self):
        self.register_fast_product(self.admin_token)
        self.set_quota({"runningSystems": 1})
        replies = [None] * THREADS
        barrier = threading.Barrier(THREADS)

        def create(index):
            barrier.wait()
            replies[index] = self.api(
                "POST", "/api/v1/systems",
                {"name": f"race-{index}", "product": "fast", "version": "1.0",
                 "systemType": "cpu-small"}, token=self.token)

        threads = [threading.Thread(target=create, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        created = [reply for reply in replies if reply is not None and reply.status == 201]
        for reply in created:
            self.track_system(reply.json()["id"])
        refused = [reply for reply in replies if reply is not None and reply.status == 409]
        self.assertEqual(len(created), 1, repr(replies))
        self.assertEqual(len(refused), THREADS - 1, repr(replies))
        for reply in refused:
            self.assertError(reply, 409, "quota_exceeded")
            self.assertIn("runningSystems", reply.error()["message"])
            self.assertIn("may run 1 system and runs 1", reply.error()["message"])
        listed = self.api("GET", "/api/v1/systems", token=self.token).json()["items"]
        self.assertEqual(len(listed), 1, repr(listed))

        system = created[0].json()
        type(self).first_id = system["id"]
        running = self.wait_for_status(self.token, system["id"], "running")
        self.assertEqual(running["pricePerHour"], 0.05)
        self.assertPlainNumbers(self.api("GET", f"/api/v1/systems/{system['id']}",
                                         token=self.token))

    def test_3_start_counts_against_running_systems(self):
        first = type(self).first_id
        reply = self.api("POST", f"/api/v1/systems/{first}/stop", token=self.token)
        self.assertEqual(reply.status, 202, repr(reply))
        self.wait_for_status(self.token, first, "stopped")

        # 36 per hour is 0.01 per second, so a few seconds cost something visible.
        reply = self.api("POST", "/api/v1/system-types",
                         {"id": "costly", "label": "Costly", "cpus": 1, "memoryMiB": 256,
                          "pricePerHour": 36}, token=self.admin_token)
        self.assertEqual(reply.status, 201, f"POST /system-types: {reply!r}")
        second = self.create_system(self.token, "second", system_type="costly")
        type(self).second_id = second["id"]
        self.wait_for_status(self.token, second["id"], "running")

        reply = self.api("POST", f"/api/v1/systems/{first}/start", token=self.token)
        self.assertError(reply, 409, "quota_exceeded", message="start past runningSystems")
        reply = self.api("POST", f"/api/v1/systems/{first}/start", token=self.admin_token)
        self.assertError(reply, 409, "quota_exceeded", message="admin start past the quota")

        # Let the costly system's session reach 3 whole seconds.
        def session_old_enough():
            sessions = self.api("GET", f"/api/v1/systems/{second['id']}/sessions",
                                token=self.token).json()["items"]
            if not sessions:
                return False
            start = parse_time(sessions[0]["start"])
            return datetime.datetime.now(datetime.timezone.utc) - start >= datetime.timedelta(
                seconds=3)

        self.assertTrue(e2e_support.wait_until(session_old_enough, 30), "no session of 3 s")
        reply = self.api("POST", f"/api/v1/systems/{second['id']}/stop", token=self.token)
        self.assertEqual(reply.status, 202, repr(reply))
        self.wait_for_status(self.token, second["id"], "stopped")

    def test_4_budget_refuses_create(self):
        self.set_quota({"runningSystems": None, "monthlyBudget": 0})
        reply = self.api("POST", "/api/v1/systems",
                         {"name": "over-budget", "product": "fast", "version": "1.0",
                          "systemType": "cpu-small"}, token=self.token)
        self.assertError(reply, 409, "budget_exceeded", message="create past the budget")
        self.assertIn("monthlyBudget", reply.error()["message"])
        self.assertIn("of 0.0000 USD", reply.error()["message"])
        reply = self.api("POST", f"/api/v1/systems/{type(self).first_id}/start",
                         token=self.token)
        self.assertError(reply, 409, "budget_exceeded", message="start past the budget")
        self.set_quota({"monthlyBudget": None})

    def expected_totals(self):
        """Whole seconds and cost of the user's closed sessions, from the API."""
        seconds = 0
        cost = 0.0
        for system_id in (type(self).first_id, type(self).second_id):
            reply = self.api("GET", f"/api/v1/systems/{system_id}/sessions", token=self.token)
            self.assertEqual(reply.status, 200, repr(reply))
            for session in reply.json()["items"]:
                self.assertIsNotNone(session["end"], "every system is stopped")
                length = parse_time(session["end"]) - parse_time(session["start"])
                whole = int(length.total_seconds())
                seconds += whole
                cost += whole * session["pricePerHour"] / 3600
        return seconds, cost

    def report(self, token, query="", accept=None):
        headers = {"Accept": accept} if accept else None
        return self.api("GET", "/api/v1/reports/costs" + query, token=token, headers=headers)

    def test_5_report_json_and_csv(self):
        seconds, cost = self.expected_totals()
        self.assertGreater(seconds, 0)
        window = "?" + urllib.parse.urlencode({"from": "2000-01-01",
                                               "to": "2100-01-01T00:00:00Z"})

        reply = self.report(self.token, window)
        self.assertEqual(reply.status, 200, repr(reply))
        self.assertPlainNumbers(reply)
        report = reply.json()
        self.assertEqual(report["from"], "2000-01-01T00:00:00.000Z")
        self.assertEqual(report["to"], "2100-01-01T00:00:00.000Z")
        self.assertEqual(report["groupBy"], "user")
        self.assertEqual(report["currency"], "USD")
        self.assertEqual(report["items"], [{"key": USER[0], "hours": round(seconds / 3600, 4),
                                            "cost": round(cost, 4)}])
        self.assertEqual(report["total"], round(cost, 4))

        self.assertGreater(report["total"], 0)

        reply = self.report(self.token, window + "&groupBy=product")
        self.assertEqual(reply.status, 200, repr(reply))
        self.assertEqual([item["key"] for item in reply.json()["items"]], ["fast"])
        reply = self.report(self.token, window + "&groupBy=systemType")
        self.assertEqual(reply.status, 200, repr(reply))
        keys = [item["key"] for item in reply.json()["items"]]
        # cpu-small appears only if the first system ran a whole second.
        self.assertIn("costly", keys)
        self.assertTrue(set(keys) <= {"costly", "cpu-small"}, keys)

        reply = self.report(self.token, window, accept="text/csv")
        self.assertEqual(reply.status, 200, repr(reply))
        self.assertTrue(reply.header("content-type").startswith("text/csv"), repr(reply.headers))
        self.assertEqual(reply.body.decode(),
                         "key,hours,cost\r\n"
                         f"{USER[0]},{seconds / 3600:.4f},{round(cost, 4):.4f}\r\n")

        # Defaults: this UTC month until now.
        reply = self.report(self.token)
        self.assertEqual(reply.status, 200, repr(reply))
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertEqual(reply.json()["from"], now.strftime("%Y-%m-01T00:00:00.000Z"))

        # Another user sees none of it; an admin sees it.
        other = self.report(self.other_token, window).json()
        self.assertEqual(other["items"], [])
        self.assertEqual(other["total"], 0)
        admin = self.report(self.admin_token, window).json()
        self.assertIn(USER[0], [item["key"] for item in admin["items"]])

    def test_6_report_rejects_bad_queries(self):
        for query, code, field in (
                ("?bogus=1", "unknown_field", "query.bogus"),
                ("?from=yesterday", "validation_failed", "query.from"),
                ("?to=2026-13-01", "validation_failed", "query.to"),
                ("?from=2026-03-02&to=2026-03-01", "validation_failed", "query.from"),
                ("?from=2026-03-01&to=2026-03-01", "validation_failed", "query.from"),
                ("?groupBy=team", "validation_failed", "query.groupBy")):
            reply = self.report(self.token, query)
            self.assertError(reply, 400, code, field, f"GET /reports/costs{query}")
        reply = self.api("GET", "/api/v1/reports/costs")
        self.assertEqual(reply.status, 401, repr(reply))

    def test_7_openapi_documents_the_report(self):
        document = self.api("GET", "/api/v1/openapi.json").json()
        operation = document["paths"]["/api/v1/reports/costs"]["get"]
        self.assertEqual(sorted(parameter["name"] for parameter in operation["parameters"]),
                         ["from", "groupBy", "to"])
        self.assertEqual(sorted(operation["responses"]["200"]["content"]),
                         ["application/json", "text/csv"])
        self.assertIn("quota", document["components"]["schemas"]["UserPatch"]["properties"])


@e2e_support.require_root
@e2e_support.require_postgres
class CostsPostgresTest(CostsTest):
    """The same on PostgreSQL, with the jobs in a separate `puddle worker`."""

    store = "postgres"
    config_text = "providers:\n  local:\n    portRange: 29750-29799\n"


if __name__ == "__main__":
    e2e_support.main()
