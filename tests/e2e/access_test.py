"""End-to-end tests of who may do what: ownership, roles, CSRF and origins.

One server, an admin and two users. The first user owns a system of the fast
test product; the second must not learn it exists.
"""

import urllib.parse

import e2e_support
from e2e_support import PuddleTestCase

OWNER = ("owner", "owner-password-1")
OTHER = ("other", "other-password-1")
ACTIONS = ("start", "stop", "reboot", "keep-alive", "restart-product", "fail")


@e2e_support.require_root
class AccessTest(PuddleTestCase):
    config_text = e2e_support.port_range_config(29100)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client.create_user(cls.admin_token, *OWNER)
        cls.client.create_user(cls.admin_token, *OTHER)
        cls.owner_token = cls.client.token_for_password(*OWNER)
        cls.other_token = cls.client.token_for_password(*OTHER)
        cls.system = None
        cls.system_error = None

    def owned_system(self):
        """Create (once) a running system owned by the first user."""
        cls = type(self)
        if cls.system_error:
            self.fail(f"the first user's system could not be set up: {cls.system_error}")
        if cls.system is None:
            try:
                self.register_fast_product(self.admin_token)
                created = self.create_system(self.owner_token, "private")
                cls.system = self.wait_for_status(self.owner_token, created["id"], "running")
            except AssertionError as error:
                cls.system_error = str(error).splitlines()[0]
                raise
        return cls.system

    def test_other_user_gets_404_on_system(self):
        system_id = self.owned_system()["id"]
        base = f"/api/v1/systems/{system_id}"

        self.assertError(self.api("GET", base, token=self.other_token), 404, "not_found",
                         message="GET another user's system")
        for suffix in ("/events", "/operations", "/logs", "/sessions"):
            self.assertError(self.api("GET", base + suffix, token=self.other_token), 404,
                             "not_found", message=f"GET {suffix} of another user's system")
        for action in ACTIONS:
            self.assertError(self.api("POST", f"{base}/{action}", token=self.other_token), 404,
                             "not_found", message=f"POST {action} on another user's system")
        self.assertError(self.api("DELETE", base, token=self.other_token), 404, "not_found",
                         message="DELETE another user's system")

        # The system is untouched, and the owner still sees it.
        mine = self.api("GET", base, token=self.owner_token)
        self.assertEqual(mine.status, 200, repr(mine))
        self.assertEqual(mine.json()["status"], "running")

    def test_other_user_does_not_list_system(self):
        system_id = self.owned_system()["id"]
        for query in ("", "?owner=me", "?status=running", "?product=fast"):
            reply = self.api("GET", "/api/v1/systems" + query, token=self.other_token)
            self.assertEqual(reply.status, 200, f"GET /systems{query}: {reply!r}")
            self.assertNotIn(system_id, [item["id"] for item in reply.json()["items"]],
                             f"GET /systems{query} shows another user's system")

        reply = self.api("GET", "/api/v1/systems", token=self.owner_token)
        self.assertIn(system_id, [item["id"] for item in reply.json()["items"]])
        reply = self.api("GET", "/api/v1/systems", token=self.admin_token)
        self.assertIn(system_id, [item["id"] for item in reply.json()["items"]])

    def test_non_admin_gets_403(self):
        token = self.other_token
        cases = [
            ("POST", "/api/v1/users", {"username": "mallory", "password": "mallory-pass-1",
                                       "role": "admin"}),
            ("GET", "/api/v1/users", None),
            ("GET", "/api/v1/images", None),
            ("POST", "/api/v1/system-types", {"id": "huge", "label": "Huge", "cpus": 64,
                                              "memoryMiB": 65536, "pricePerHour": 0}),
        ]
        for method, path, body in cases:
            self.assertError(self.api(method, path, body, token=token), 403, "forbidden",
                             message=f"{method} {path} as a non-admin")

        users = self.api("GET", "/api/v1/users", token=self.admin_token)
        self.assertNotIn("mallory", [user["username"] for user in users.json()["items"]])

    def test_no_credential_gets_401(self):
        cases = [
            ("GET", "/api/v1/systems", None),
            ("POST", "/api/v1/systems", {"name": "x", "product": "jupyter", "version": "1",
                                         "systemType": "cpu-small"}),
            ("GET", "/api/v1/auth/me", None),
            ("GET", "/api/v1/products", None),
            ("GET", "/api/v1/users", None),
            ("POST", "/api/v1/api-keys", {"name": "anonymous"}),
        ]
        for method, path, body in cases:
            self.assertError(self.api(method, path, body), 401, "unauthenticated",
                             message=f"{method} {path} without credentials")
        self.assertError(self.api("GET", "/api/v1/systems", token="not-a-real-token"), 401,
                         "unauthenticated", message="GET /systems with a made-up token")

    def test_cookie_post_needs_csrf_token(self):
        cookie, csrf = self.client.login(*OTHER)

        reply = self.api("POST", "/api/v1/api-keys", {"name": "no-csrf"}, cookie=cookie)
        self.assertError(reply, 403, "forbidden", message="cookie POST without X-CSRF-Token")
        reply = self.api("POST", "/api/v1/api-keys", {"name": "bad-csrf"}, cookie=cookie,
                         headers={"X-CSRF-Token": csrf + "x"})
        self.assertError(reply, 403, "forbidden", message="cookie POST with a wrong X-CSRF-Token")

        reply = self.api("POST", "/api/v1/api-keys", {"name": "with-csrf"}, cookie=cookie,
                         headers={"X-CSRF-Token": csrf})
        self.assertEqual(reply.status, 201, f"cookie POST with X-CSRF-Token: {reply!r}")

        keys = self.api("GET", "/api/v1/api-keys", token=self.other_token).json()["items"]
        names = [key["name"] for key in keys]
        self.assertIn("with-csrf", names)
        self.assertNotIn("no-csrf", names)
        self.assertNotIn("bad-csrf", names)

        # A safe method needs no CSRF token.
        reply = self.api("GET", "/api/v1/auth/me", cookie=cookie)
        self.assertEqual(reply.status, 200, repr(reply))

    def test_cookie_cross_site_request_gets_403(self):
        cookie, csrf = self.client.login(*OTHER)
        for site in ("cross-site", "same-site"):
            reply = self.api("GET", "/api/v1/auth/me", cookie=cookie,
                             headers={"Sec-Fetch-Site": site})
            self.assertError(reply, 403, "forbidden", message=f"cookie GET, Sec-Fetch-Site {site}")
            reply = self.api("POST", "/api/v1/api-keys", {"name": "cross"}, cookie=cookie,
                             headers={"Sec-Fetch-Site": site, "X-CSRF-Token": csrf})
            self.assertError(reply, 403, "forbidden",
                             message=f"cookie POST, Sec-Fetch-Site {site}")

        reply = self.api("GET", "/api/v1/auth/me", cookie=cookie,
                         headers={"Sec-Fetch-Site": "same-origin"})
        self.assertEqual(reply.status, 200, f"cookie GET, Sec-Fetch-Site same-origin: {reply!r}")

    def test_cookie_foreign_origin_gets_403(self):
        cookie, csrf = self.client.login(*OTHER)
        reply = self.api("POST", "/api/v1/api-keys", {"name": "evil"}, cookie=cookie,
                         headers={"Origin": "https://evil.example", "X-CSRF-Token": csrf})
        self.assertError(reply, 403, "forbidden", message="cookie POST from https://evil.example")

        reply = self.api("POST", "/api/v1/api-keys", {"name": "same-origin"}, cookie=cookie,
                         headers={"Origin": self.client.origin, "X-CSRF-Token": csrf})
        self.assertEqual(reply.status, 201, f"cookie POST from Puddle's own origin: {reply!r}")

        reply = self.api("POST", "/api/v1/auth/login",
                         {"username": OTHER[0], "password": OTHER[1]},
                         headers={"Origin": "https://evil.example"})
        self.assertError(reply, 403, "forbidden", message="login from https://evil.example")

        # The HTML sign-in form is checked the same way: no session cookie is set.
        form = urllib.parse.urlencode({"username": OTHER[0], "password": OTHER[1],
                                       "next": "/"}).encode()
        reply = self.api("POST", "/login", raw=form,
                         content_type="application/x-www-form-urlencoded",
                         headers={"Origin": "https://evil.example",
                                  "Sec-Fetch-Site": "cross-site"})
        self.assertEqual(reply.status, 403, f"form login from https://evil.example: {reply!r}")
        self.assertIsNone(reply.header("set-cookie"), "a cross-site form login set a cookie")

        names = [key["name"] for key in
                 self.api("GET", "/api/v1/api-keys", token=self.other_token).json()["items"]]
        self.assertNotIn("evil", names)

    def test_logout_with_token_revokes_it(self):
        token = self.client.token_for_password(*OTHER)
        self.assertEqual(self.api("GET", "/api/v1/auth/me", token=token).status, 200)
        reply = self.api("POST", "/api/v1/auth/logout", token=token, raw=b"", content_type=None)
        self.assertEqual(reply.status, 204, f"logout: {reply!r}")
        self.assertError(self.api("GET", "/api/v1/auth/me", token=token), 401, "unauthenticated",
                         message="the token still worked after logout")

    def test_disabled_user_loses_access_at_once(self):
        username, password = "leaving", "leaving-password-1"
        user = self.client.create_user(self.admin_token, username, password)
        token = self.client.token_for_password(username, password)
        cookie, _ = self.client.login(username, password)
        key = self.api("POST", "/api/v1/api-keys", {"name": "k"}, token=token).json()
        self.assertEqual(self.api("GET", "/api/v1/systems", token=token).status, 200)

        reply = self.api("PATCH", f"/api/v1/users/{user['id']}", {"disabled": True},
                         token=self.admin_token)
        self.assertEqual(reply.status, 200, f"PATCH disabled: {reply!r}")
        self.assertTrue(reply.json()["disabled"])

        self.assertError(self.api("GET", "/api/v1/systems", token=token), 401, "unauthenticated",
                         message="token of a disabled user")
        self.assertError(self.api("GET", "/api/v1/auth/me", cookie=cookie), 401,
                         "unauthenticated", message="session of a disabled user")
        reply = self.api("POST", "/api/v1/auth/token",
                         {"apiKeyId": key["apiKeyId"], "apiSecretKey": key["apiSecretKey"]})
        self.assertEqual(reply.status, 401, f"API key of a disabled user: {reply!r}")
        reply = self.api("POST", "/api/v1/auth/token", {"username": username, "password": password})
        self.assertEqual(reply.status, 401, f"password of a disabled user: {reply!r}")

    def test_last_admin_cannot_be_demoted(self):
        users = self.api("GET", "/api/v1/users", token=self.admin_token).json()["items"]
        admin = next(user for user in users if user["username"] == "admin")

        reply = self.api("PATCH", f"/api/v1/users/{admin['id']}", {"role": "user"},
                         token=self.admin_token)
        self.assertError(reply, 409, "conflict", message="demoting the last admin")
        reply = self.api("PATCH", f"/api/v1/users/{admin['id']}", {"disabled": True},
                         token=self.admin_token)
        self.assertError(reply, 409, "conflict", message="disabling the last admin")

        reply = self.api("GET", f"/api/v1/users/{admin['id']}", token=self.admin_token)
        self.assertEqual(reply.json()["role"], "admin")
        self.assertFalse(reply.json()["disabled"])


if __name__ == "__main__":
    e2e_support.main()
