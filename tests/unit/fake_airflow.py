"""A small HTTP server that answers like Airflow 3.3's REST API v2 for connections, variables and pools.

It is the boundary the modules talk to: token login, Bearer auth, pagination capped at 100,
"***" for hidden values (passwords, sensitive extras and variables), bulk PATCH with per-item
errors and Airflow's merge of "***" on update, default_pool rules. Faults can be injected.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

SENSITIVE = ("password", "secret", "token", "api_key", "apikey", "private_key", "passwd", "access_key")
MASK = "***"


def hidden(key: str) -> bool:
    return any(w in (key or "").lower() for w in SENSITIVE)


def redact(value, key=None):
    if key is not None and hidden(key) and not isinstance(value, (dict, list)):
        return MASK
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def merge(new, old):
    """Airflow's merge: a "***" sent back keeps the stored value."""
    if new == MASK:
        return old
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: merge(v, old.get(k)) for k, v in new.items()}
    return new


class FakeAirflow:
    KEYS = {"connections": "connection_id", "variables": "key", "pools": "name"}

    def __init__(self, username="admin", password="admin-pass"):
        self.username, self.password = username, password
        self.tokens: set[str] = set()
        self.store = {"connections": {}, "variables": {}, "pools": {
            "default_pool": {"name": "default_pool", "slots": 128, "description": "Default pool",
                             "include_deferred": False}}}
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[dict] = []
        self.fail_next: list[int] = []  # statuses answered before the real handling
        self.item_error: str | None = None  # an id whose bulk item fails
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = "http://127.0.0.1:%d" % self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def calls(self, method=None, prefix=""):
        return [r for r in self.requests if (method is None or r[0] == method) and r[1].startswith(prefix)]

    # -- the API ---------------------------------------------------------------
    def view(self, kind, obj):
        if kind == "connections":
            out = dict(obj)
            out["password"] = MASK if obj.get("password") else None
            out["extra"] = json.dumps(redact(obj["extra"])) if obj.get("extra") else None
            return out
        if kind == "variables":
            val = obj["value"]
            try:
                parsed = json.loads(val)
                if isinstance(parsed, dict):
                    val = json.dumps(redact(parsed, obj["key"]))
                elif hidden(obj["key"]):
                    val = MASK
            except ValueError:
                val = MASK if hidden(obj["key"]) else val
            return {"key": obj["key"], "value": val, "description": obj.get("description"), "is_encrypted": True}
        return dict(obj, occupied_slots=0, open_slots=obj["slots"])

    def stored(self, kind, body, old=None):
        if kind == "connections":
            extra = json.loads(body["extra"]) if body.get("extra") else {}
            new = {k: body.get(k) for k in ("connection_id", "conn_type", "description", "host", "login",
                                            "schema", "port")}
            new["password"] = body.get("password") if "password" in body else (old or {}).get("password")
            if old and new["password"] == MASK:
                new["password"] = old.get("password")
            new["extra"] = merge(extra, old.get("extra") or {}) if old else extra
            return new
        if kind == "variables":
            value = body["value"]
            if not isinstance(value, str):
                value = json.dumps(value, indent=2)
            return {"key": body["key"], "value": value, "description": body.get("description")}
        return {"name": body["name"], "slots": body["slots"], "description": body.get("description"),
                "include_deferred": bool(body.get("include_deferred"))}

    def bulk(self, kind, actions):
        key = self.KEYS[kind]
        store = self.store[kind]
        result = {}
        for action in actions:
            part = result.setdefault(action["action"], {"success": [], "errors": []})
            for ent in action["entities"]:
                ident = ent if isinstance(ent, str) else ent[key]
                if ident == self.item_error:
                    part["errors"].append({"error": "injected failure for %s" % ident, "status_code": 400})
                    continue
                if action["action"] == "create":
                    if ident in store and action.get("action_on_existence", "fail") == "fail":
                        part["errors"].append({"error": "%s already exists" % ident, "status_code": 409})
                        continue
                    store[ident] = self.stored(kind, ent)
                elif action["action"] == "update":
                    if ident not in store:
                        part["errors"].append({"error": "%s not found" % ident, "status_code": 404})
                        continue
                    mask = action.get("update_mask")
                    if kind == "pools" and ident == "default_pool" and not (
                            mask and set(mask) <= {"slots", "include_deferred"}):
                        part["errors"].append({"error": "Only slots and included_deferred can be modified on "
                                                        "Default Pool", "status_code": 400})
                        continue
                    new = self.stored(kind, ent, store[ident])
                    if mask:
                        new = dict(store[ident], **{m: new[m] for m in mask})
                    store[ident] = new
                else:
                    if ident not in store:
                        continue
                    del store[ident]
                part["success"].append(ident)
        return result

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, data=None):
                body = json.dumps(data).encode() if data is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n)) if n else None

            def _handle(self, method):
                url = urlparse(self.path)
                fake.requests.append((method, url.path))
                body = self._body()
                if body is not None:
                    fake.bodies.append(body)
                if fake.fail_next:
                    return self._send(fake.fail_next.pop(0), {"detail": "injected"})
                if url.path == "/auth/token" and method == "POST":
                    if body == {"username": fake.username, "password": fake.password}:
                        token = "tok-%d" % (len(fake.tokens) + 1)
                        fake.tokens.add(token)
                        return self._send(201, {"access_token": token})
                    return self._send(401, {"detail": "Invalid credentials"})
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth[7:] not in fake.tokens:
                    return self._send(401, {"detail": "Not authenticated"})
                parts = [unquote(p) for p in url.path.split("/")[3:]]
                kind = parts[0] if parts else ""
                if kind not in fake.KEYS:
                    return self._send(404, {"detail": "Not Found"})
                store = fake.store[kind]
                if method == "GET" and len(parts) == 1:
                    q = parse_qs(url.query)
                    limit = min(int(q.get("limit", ["50"])[0]), 100)
                    offset = int(q.get("offset", ["0"])[0])
                    ids = sorted(store)
                    page = [fake.view(kind, store[i]) for i in ids[offset:offset + limit]]
                    return self._send(200, {kind: page, "total_entries": len(ids)})
                if method == "GET" and len(parts) == 2:
                    if parts[1] not in store:
                        return self._send(404, {"detail": "not found"})
                    return self._send(200, fake.view(kind, store[parts[1]]))
                if method == "PATCH" and len(parts) == 1:
                    return self._send(200, fake.bulk(kind, body["actions"]))
                return self._send(405, {"detail": "Method Not Allowed"})

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PATCH(self):
                self._handle("PATCH")

        return Handler
