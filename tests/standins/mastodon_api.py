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
returns the status first made. Every create is recorded in `creates`, `queries` keeps each
request's path and query for assertions, and `fail(endpoint, kinds...)` scripts faults for the
next requests to an endpoint: 500, 503, 429, drop (connection closed unanswered), slow (answer
after `slow_seconds`), malformed (a truncated JSON body), and for creates after-drop, after-500
and after-slow (the status is made, then the answer is lost).
"""

from __future__ import annotations

import html
import itertools
import json
import re
import socket
import sys
import threading
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

LIMITS = {"notifications": (40, 80), "statuses": (20, 40)}  # (default, max)
WINDOW_SECONDS = 300
_MENTION = re.compile(r"(?<![\w/@])@(\w+(?:@[\w-]+(?:\.[\w-]+)+)?)")
ROUTES = [
    ("GET", re.compile(r"/api/v1/accounts/verify_credentials"), "verify_credentials"),
    ("GET", re.compile(r"/api/v1/accounts/lookup"), "lookup"),
    ("GET", re.compile(r"/api/v1/accounts/(\d+)/statuses"), "statuses"),
    ("GET", re.compile(r"/api/v1/notifications"), "notifications"),
    ("GET", re.compile(r"/api/v1/statuses/(\d+)/context"), "context"),
    ("GET", re.compile(r"/api/v1/statuses/(\d+)"), "status"),
    ("POST", re.compile(r"/api/v1/statuses"), "create"),
]


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Create:
    """One POST /api/v1/statuses carried out (a repeat under a used Idempotency-Key is not)."""

    id: str
    text: str
    in_reply_to: str | None
    visibility: str
    idempotency_key: str | None
    answered: bool


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


class MastodonStandIn:
    """The stand-in's accounts, statuses and notifications, and its HTTP server."""

    rate_limit = 300

    def __init__(self, *, brand: str = "AcmeCare", token: str = "test-token") -> None:
        self.domain, self.token, self.slow_seconds = "social.example", token, 1.5
        self.links = True  # False: lists come without Link headers (as some servers send them)
        self._ids = itertools.count(110_000_000_000_000_000, 65_536)
        self._note_ids = itertools.count(1000)
        self.accounts: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []  # the brand's, oldest first
        self.creates: list[Create] = []
        self.requests: Counter[str] = Counter()
        self.queries: list[tuple[str, dict[str, list[str]]]] = []
        self.errors: list[str] = []
        self._faults: dict[str, deque[str]] = {}
        self._keys: dict[str, str] = {}  # Idempotency-Key -> status id
        self._window = (0.0, 0)  # reset time, requests used
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self.brand = self.account(brand, followers=250_000)

    # -- the world ------------------------------------------------------------------------

    def account(self, username: str, *, domain: str | None = None, followers: int = 10) -> Any:
        account_id = str(len(self.accounts) + 1)
        acct = f"{username}@{domain}" if domain else username
        host = domain or self.domain
        self.accounts[account_id] = {
            "id": account_id,
            "username": username,
            "acct": acct,
            "display_name": username.title(),
            "locked": False,
            "bot": False,
            "created_at": "2022-11-01T00:00:00.000Z",
            "note": "",
            "url": f"https://{host}/@{username}",
            "avatar": f"https://{self.domain}/avatars/{account_id}.png",
            "followers_count": followers,
            "following_count": 3,
            "statuses_count": 12,
            "fields": [],
            "emojis": [],
        }
        return self.accounts[account_id]

    def _by_acct(self, acct: str) -> Any:
        acct = acct.lower().removesuffix(f"@{self.domain}")
        return next((a for a in self.accounts.values() if a["acct"].lower() == acct), None)

    def render(self, text: str) -> tuple[str, list[Any]]:
        """Plain text as Mastodon's HTML, and the accounts it mentions."""
        mentions: list[Any] = []
        parts = []
        for paragraph in text.split("\n\n"):
            out, last = [], 0
            for m in _MENTION.finditer(paragraph):
                who = self._by_acct(m.group(1))
                if who is None:
                    continue
                mentions.append(who)
                out.append(html.escape(paragraph[last : m.start()]))
                link = f'<a href="{who["url"]}" class="u-url mention">@<span>{who["username"]}'
                out.append(f'<span class="h-card">{link}</span></a></span>')
                last = m.end()
            out.append(html.escape(paragraph[last:]))
            parts.append("<p>" + "".join(out).replace("\n", "<br />") + "</p>")
        return "".join(parts), mentions

    def post(
        self,
        author: Any,
        text: str,
        *,
        visibility: str = "public",
        in_reply_to: Any = None,
        html_content: str | None = None,
        spoiler: str = "",
        reblog_of: Any = None,
        at: datetime | None = None,
    ) -> Any:
        """A status by author (mention notifications for the brand when it mentions it)."""
        content, mentions = self.render(text)
        if html_content is not None:
            content = html_content
            mentions = [self.brand] if f"@{self.brand['username']}" in text else []
        with self._lock:
            status_id = str(next(self._ids))
            created = at or datetime.now(UTC)
            status = {
                "id": status_id,
                "uri": f"https://{self.domain}/users/{author['username']}/statuses/{status_id}",
                "url": f"https://{self.domain}/@{author['username']}/{status_id}",
                "created_at": iso(created),
                "account": author,
                "content": "" if reblog_of else content,
                "visibility": visibility,
                "sensitive": bool(spoiler),
                "spoiler_text": spoiler,
                "in_reply_to_id": in_reply_to["id"] if in_reply_to else None,
                "in_reply_to_account_id": in_reply_to["account"]["id"] if in_reply_to else None,
                "reblog": reblog_of,
                "language": "en",
                "replies_count": 0,
                "reblogs_count": 0,
                "favourites_count": 0,
                "edited_at": None,
                "media_attachments": [],
                "mentions": [
                    {"id": a["id"], "username": a["username"], "url": a["url"], "acct": a["acct"]}
                    for a in mentions
                ],
                "tags": [],
                "emojis": [],
                "card": None,
                "poll": None,
            }
            self.statuses[status_id] = status
            if in_reply_to:
                self.statuses[in_reply_to["id"]]["replies_count"] += 1
            if any(a["id"] == self.brand["id"] for a in mentions) and author is not self.brand:
                self._notify("mention", author, status, created)
        return status

    def favourite(self, who: Any, status: Any) -> None:
        """A favourite of a brand status: a notification that is not a mention."""
        with self._lock:
            status["favourites_count"] += 1
            self._notify("favourite", who, status, datetime.now(UTC))

    def delete(self, status: Any) -> None:
        with self._lock:
            self.statuses.pop(status["id"], None)

    def _notify(self, kind: str, who: Any, status: Any, at: datetime) -> None:
        self.notifications.append(
            {
                "id": str(next(self._note_ids)),
                "type": kind,
                "created_at": iso(at),
                "account": who,
                "status": status,
            }
        )

    def fail(self, endpoint: str, *kinds: str) -> None:
        """The next requests to endpoint fail in these ways, one each, in order."""
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend(kinds)

    def duplicate_replies(self) -> dict[tuple[str | None, str], int]:
        made = Counter((c.in_reply_to, c.text) for c in self.creates)
        return {key: n for key, n in made.items() if n > 1}

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

    def _visible(self, status: Any) -> bool:
        """Whether the brand may see status, as Mastodon shows it to its owner."""
        if status["visibility"] in ("public", "unlisted") or status["account"] is self.brand:
            return True
        return any(m["id"] == self.brand["id"] for m in status["mentions"])

    def _descendants(self, root: Any) -> list[Any]:
        below, frontier = [], {root["id"]}
        for status in sorted(self.statuses.values(), key=lambda s: int(s["id"])):
            if status["in_reply_to_id"] in frontier:
                frontier.add(status["id"])
                if self._visible(status):
                    below.append(status)
        return below

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
        if key and key in self._keys and self._keys[key] in self.statuses:
            return 200, self.statuses[self._keys[key]], {}
        text, visibility = form.get("status", ""), form.get("visibility", "public")
        if not text.strip():
            return 422, {"error": "Validation failed: Text can't be blank"}, {}
        counted = _MENTION.sub(lambda m: "@" + m.group(1).split("@")[0], text)
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
            self._keys[key] = status["id"]
        self.creates.append(
            Create(status["id"], text, form.get("in_reply_to_id"), visibility, key, answered)
        )
        return 200, status, {}

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
