"""A stand-in of the Mastodon REST API on 127.0.0.1 over real HTTP, in the shapes Mastodon
documents: GET /api/v1/accounts/verify_credentials, GET /api/v1/accounts/lookup?acct=,
GET /api/v1/notifications (types[], exclude_types[]), GET /api/v1/accounts/:id/statuses,
GET /api/v1/statuses/:id, GET /api/v1/statuses/:id/context and POST /api/v1/statuses (form or
JSON: status, in_reply_to_id, visibility; the Idempotency-Key header).

Lists honour max_id, since_id, min_id and limit (clamped to Mastodon's maxima: 80
notifications, 40 statuses), come newest first, and carry Link headers (rel="next": max_id of
the oldest item; rel="prev": min_id of the newest). Every answer sends X-RateLimit-Limit,
-Remaining and -Reset (ISO 8601). Content is HTML as Mastodon renders it (mentions as h-card
links). What the brand may see is what Mastodon shows its owner: public and unlisted posts, and
private or direct ones that mention it. A POST repeated with an Idempotency-Key already used
returns the status first made, for an hour (IDEMPOTENCY_SECONDS, as Mastodon keeps a key;
`forget_idempotency_keys()` lets that hour pass). With `markdown` set, content renders
**bold**, *italic* and `code` as markup, as some servers do (Akkoma, glitch-soc), so a status
reads back differently from what was sent. Every create is recorded in `creates`, `queries`
keeps each request's path and query for assertions, and `fail(endpoint, kinds...)` scripts
faults for the next requests to an endpoint: 500, 503, 429, drop (connection closed
unanswered), slow (answer after `slow_seconds`), malformed (a truncated JSON body), and for
creates after-drop, after-500 and after-slow (the status is made, then the answer is lost).
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.standins.mastodon_world import MENTION, Create, MastodonWorld, iso

LIMITS = {"notifications": (40, 80), "statuses": (20, 40)}  # (default, max)
WINDOW_SECONDS = 300
IDEMPOTENCY_SECONDS = 3600
ROUTES = [
    ("GET", re.compile(r"/api/v1/accounts/verify_credentials"), "verify_credentials"),
    ("GET", re.compile(r"/api/v1/accounts/lookup"), "lookup"),
    ("GET", re.compile(r"/api/v1/accounts/(\d+)/statuses"), "statuses"),
    ("GET", re.compile(r"/api/v1/notifications"), "notifications"),
    ("GET", re.compile(r"/api/v1/statuses/(\d+)/context"), "context"),
    ("GET", re.compile(r"/api/v1/statuses/(\d+)"), "status"),
    ("POST", re.compile(r"/api/v1/statuses"), "create"),
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: MastodonStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            self.standin.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.standin.handle(self)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MastodonStandIn(MastodonWorld):
    """The stand-in's HTTP server (start() and stop()) over its world."""

    rate_limit = 300

    def __init__(self, *, brand: str = "AcmeCare", token: str = "test-token") -> None:
        super().__init__(brand=brand)
        self.token, self.slow_seconds = token, 1.5
        self.links = True  # False: lists come without Link headers (as some servers send them)
        self.requests: Counter[str] = Counter()
        self.queries: list[tuple[str, dict[str, list[str]]]] = []
        self.errors: list[str] = []
        self._keys: dict[tuple[str, str], tuple[str, float]] = {}  # (account, key) -> id, when
        self._window = (0.0, 0)  # reset time, requests used
        self._server: _Server | None = None

    # -- HTTP -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> str:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True).start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, req: _Handler) -> None:
        url = urlsplit(req.path)
        query = parse_qs(url.query)
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        route = next(
            (
                (name, m)
                for method, rx, name in ROUTES
                if method == req.command
                for m in [rx.fullmatch(url.path)]
                if m
            ),
            None,
        )
        if route is None:
            return self._send(req, 404, {"error": "Record not found"})
        endpoint, match = route
        with self._lock:
            self.requests[endpoint] += 1
            self.queries.append((url.path, query))
            faults = self._faults.get(endpoint)
            fault = faults.popleft() if faults else None
        if req.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(req, 401, {"error": "The access token is invalid"})
        if fault and not fault.startswith("after-"):
            if fault == "slow":
                time.sleep(self.slow_seconds)
            elif fault != "malformed":
                return self._fail(req, fault)
        allowed, limits = self._rate()
        if not allowed:
            return self._send(req, 429, {"error": "Too many requests"}, limits)
        status, answer, links = self._answer(endpoint, match, query, req, body, fault)
        if fault and fault.startswith("after-"):
            if fault == "after-slow":
                time.sleep(self.slow_seconds)
            else:
                return self._fail(req, fault.removeprefix("after-"))
        if fault == "malformed":
            return self._send(req, 200, None, limits, raw=json.dumps(answer).encode()[:-7])
        self._send(req, status, answer, {**limits, **links})

    def _answer(
        self, endpoint: str, match: Any, query: Any, req: _Handler, body: bytes, fault: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            if endpoint == "verify_credentials":
                return 200, {**self.brand, "source": {"privacy": "public", "note": ""}}, {}
            if endpoint == "lookup":
                found = self._by_acct((query.get("acct") or [""])[0])
                return (200, found, {}) if found else (404, {"error": "Record not found"}, {})
            if endpoint == "notifications":
                types = set(query.get("types[]", [])) or {"mention", "favourite"}
                items = [n for n in self.notifications if n["type"] in types]
                items = [n for n in items if n["status"]["id"] in self.statuses]
                return self._page("notifications", items, query, req.path)
            if endpoint == "statuses":
                mine = [s for s in self.statuses.values() if s["account"]["id"] == match[1]]
                return self._page(
                    "statuses", sorted(mine, key=lambda s: int(s["id"])), query, req.path
                )
            status = self.statuses.get(match[1]) if endpoint != "create" else None
            if endpoint == "status":
                if status is None or not self._visible(status):
                    return 404, {"error": "Record not found"}, {}
                return 200, status, {}
            if endpoint == "context":
                if status is None or not self._visible(status):
                    return 404, {"error": "Record not found"}, {}
                return 200, {"ancestors": [], "descendants": self._descendants(status)}, {}
            return self._create(req, body, answered=fault is None)

    def _page(
        self, kind: str, items: list[Any], query: Any, path: str
    ) -> tuple[int, Any, dict[str, str]]:
        default, most = LIMITS[kind]
        try:
            limit = max(1, min(most, int((query.get("limit") or [default])[0])))
            bounds = {k: int(query[k][0]) for k in ("max_id", "since_id", "min_id") if k in query}
        except ValueError:
            return 400, {"error": "Validation failed: invalid id or limit"}, {}
        chosen = [
            i
            for i in items
            if int(i["id"]) < bounds.get("max_id", 2**63)
            and int(i["id"]) > max(bounds.get("since_id", -1), bounds.get("min_id", -1))
        ]
        # min_id (without since_id): the items right after it; otherwise the newest ones.
        chosen = (
            chosen[:limit] if "min_id" in bounds and "since_id" not in bounds else chosen[-limit:]
        )
        chosen.reverse()
        if not chosen:
            return 200, [], {}
        keep = {k: v for k, v in query.items() if k not in ("max_id", "since_id", "min_id")}

        def link(key: str, value: str, rel: str) -> str:
            params = urlencode({**keep, key: [value]}, doseq=True)
            return f'<{self.base_url}{urlsplit(path).path}?{params}>; rel="{rel}"'

        links = [link("max_id", chosen[-1]["id"], "next"), link("min_id", chosen[0]["id"], "prev")]
        return 200, chosen, {"Link": ", ".join(links)} if self.links else {}

    def _create(
        self, req: _Handler, raw: bytes, *, answered: bool
    ) -> tuple[int, Any, dict[str, str]]:
        if "json" in (req.headers.get("Content-Type") or ""):
            form = {k: str(v) for k, v in json.loads(raw or b"{}").items() if v is not None}
        else:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        key = req.headers.get("Idempotency-Key")
        made = self._keys.get((self.brand["id"], key)) if key else None
        if made and made[0] in self.statuses and time.time() - made[1] < IDEMPOTENCY_SECONDS:
            return 200, self.statuses[made[0]], {}
        text, visibility = form.get("status", ""), form.get("visibility", "public")
        if not text.strip():
            return 422, {"error": "Validation failed: Text can't be blank"}, {}
        counted = MENTION.sub(lambda m: "@" + m.group(1).split("@")[0], text)
        if len(counted) > 500:
            return 422, {"error": "Validation failed: Text character limit of 500 exceeded"}, {}
        if visibility not in ("public", "unlisted", "private", "direct"):
            return 422, {"error": "Validation failed: Visibility is not included in the list"}, {}
        parent = (
            self.statuses.get(form.get("in_reply_to_id", "")) if "in_reply_to_id" in form else None
        )
        if "in_reply_to_id" in form and (parent is None or not self._visible(parent)):
            return 404, {"error": "Record not found"}, {}
        status = self.post(self.brand, text, visibility=visibility, in_reply_to=parent)
        if key:
            self._keys[(self.brand["id"], key)] = (status["id"], time.time())
        self.creates.append(
            Create(status["id"], text, form.get("in_reply_to_id"), visibility, key, answered)
        )
        return 200, status, {}

    def forget_idempotency_keys(self) -> None:
        """The hour a server keeps Idempotency-Keys has passed."""
        with self._lock:
            self._keys.clear()

    def _rate(self) -> tuple[bool, dict[str, str]]:
        now = time.time()
        with self._lock:
            reset, used = self._window
            if now >= reset:
                reset, used = now + WINDOW_SECONDS, 0
            allowed = used < self.rate_limit
            self._window = (reset, used + allowed)
        return allowed, self._limits(self.rate_limit - used - allowed, reset)

    def _limits(self, remaining: int, reset: float) -> dict[str, str]:
        at = datetime.fromtimestamp(reset, UTC)
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": iso(at),
        }

    def _fail(self, req: _Handler, fault: str) -> None:
        if fault == "drop":
            req.close_connection = True
            req.connection.shutdown(socket.SHUT_RDWR)
        elif fault == "429":
            reset = datetime.now(UTC) + timedelta(seconds=120)
            self._send(req, 429, {"error": "Too many requests"}, self._limits(0, reset.timestamp()))
        else:
            self._send(req, int(fault), {"error": "We're sorry, but something went wrong"})

    def _send(
        self, req: _Handler, status: int, body: Any, headers: Any = None, raw: bytes | None = None
    ) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Length": str(len(data)),
        } | (headers or {})
        try:
            req.send_response(status)
            for name, value in headers.items():
                req.send_header(name, value)
            req.end_headers()
            req.wfile.write(data)
        except OSError:
            req.close_connection = True
