"""A stand-in of the X API v2 on 127.0.0.1 over real HTTP, in the shapes X documents:
GET /2/users/by/username/:username (the brand), GET /2/users/:id/mentions (the mentions released
so far, newest first; only the latest 800 are reachable: an older since_id is silently moved up
to the oldest of those), GET /2/users/:id/tweets (the brand's posts, every reply made through
POST included), GET /2/tweets/search/recent (`@handle OR to:handle` over the last 7 days: an
older since_id or start_time is a 400) and POST /2/tweets ({"text", "reply": {...}} -> 201).
Posts returned in `data` are billed as X bills them: once per post and UTC day (`billed`).

Timelines honour since_id, until_id, max_results (5 to 100) and pagination_token (meta.next_token),
expand authors and referenced posts into includes, return the tweet.fields and user.fields asked
for, and send x-rate-limit-limit, -remaining and -reset. Mentions are real customer tweets (the
inbound rows of a TWCS file) spread over a few hundred customers; release(n) publishes the next n
with time-ordered (snowflake) ids. Every create is recorded in `creates` (also one whose answer
was lost) so a test can count duplicate public replies; unlike X, duplicate text is not refused.
faults (off by default): the probability that a request fails with one of fault_kinds: HTTP 500,
503, 429 (resetting a couple of seconds ahead), a connection closed unanswered, and (opt-in)
"timeout" (no answer for timeout_after seconds), "malformed" (a 200 with a truncated JSON body)
and "partial" (a 200 whose data has an errors array beside it); a failing create fails before or
after the post is made (X's 503s sometimes come after it). create_latency: seconds a create
takes to answer after the post is made; read_latency: seconds each read takes; in_flight:
creates made but not answered yet; calls: (endpoint, started, ended) of every answered read.
"""

from __future__ import annotations

import csv
import html
import json
import random
import re
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

SNOWFLAKE_EPOCH_MS = 1288834974657
PROBLEMS = "https://api.twitter.com/2/problems"
WINDOW_SECONDS = 900
MENTIONS_WINDOW = 800
SEARCH_DAYS = 7
FAULTS = ("500", "503", "429", "drop")
ALL_FAULTS = (*FAULTS, "timeout", "malformed", "partial")
TWEET_ALWAYS = {"id", "text", "edit_history_tweet_ids"}
USER_ALWAYS = {"id", "name", "username"}
_TIMELINE = re.compile(r"/2/users/(\d+)/(mentions|tweets)")
_BY_USERNAME = re.compile(r"/2/users/by/username/(\w{1,15})")
_SEARCH = "/2/tweets/search/recent"
_LEADING_MENTIONS = re.compile(r"^(?:@\w+\s*)+")
INVALID = "One or more parameters to your request was invalid."

Answer = tuple[int, dict[str, Any]]


def escape(text: str) -> str:
    """Post text as X sends it: &, < and > escaped, nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def problem(status: int, detail: str = "") -> dict[str, Any]:
    """An X v2 error body (a problem object)."""
    if status == 400:
        kind, title = f"{PROBLEMS}/invalid-request", "Invalid Request"
    else:
        kind, title = "about:blank", HTTPStatus(status).phrase
    return {"title": title, "detail": detail or title, "type": kind, "status": status}


def _only(item: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in fields}


def _listed(query: dict[str, list[str]], name: str) -> set[str]:
    return {v for value in query.get(name, []) for v in value.split(",") if v}


@dataclass(frozen=True)
class Create:
    """One POST /2/tweets carried out: the new post's id, the text sent, what it answers."""

    id: str
    text: str
    in_reply_to: str | None
    answered: bool  # False when a fault replaced the answer after the post was made


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: XStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client gone (a killed worker) is not
            self.standin.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.standin.handle(self)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class XStandIn:
    """The stand-in's posts and its HTTP server (start() and stop())."""

    rate_limit = 10_000  # requests per endpoint and window
    window_seconds = WINDOW_SECONDS
    fault_kinds: tuple[str, ...] = FAULTS
    timeout_after = 3.0
    read_latency = 0.0

    def __init__(
        self, twcs_csv: Path, *, brand: str = "AcmeCare", mentions: int = 1500, customers: int = 300
    ) -> None:
        self.rng = random.Random(7)
        self.faults, self.create_latency, self.in_flight = 0.0, 0.0, 0
        self.brand = self._user("1500000000", brand, 250_000, verified=True)
        people = [
            self._user(str(4_000_000_000 + 37 * i), f"customer{i:04d}") for i in range(customers)
        ]
        self.users = {u["id"]: u for u in [self.brand, *people]}
        self.mentions: list[Any] = []  # released, oldest first
        self.timeline: list[Any] = []  # the brand's posts, oldest first
        self.tweets: dict[str, Any] = {}  # every post by id
        self.creates: list[Create] = []
        self.requests: Counter[str] = Counter()  # by endpoint
        self.injected: Counter[str] = Counter()  # faults by kind
        self.errors: list[str] = []  # the stand-in's own failures, for a test to assert none
        self.reads = 0  # posts returned in data, every time
        self.billed: dict[str, set[str]] = {}  # UTC day -> posts billed that day
        self.calls: list[tuple[str, float, float]] = []
        self.revoked = False  # every request answers 401 (credentials revoked)
        self.fail_at: set[int] = set()  # numbers of mentions requests that answer 500
        with twcs_csv.open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r["inbound"] == "True"][:mentions]
        if len(rows) < mentions:
            raise ValueError(f"{twcs_csv} has only {len(rows)} customer tweets")
        self._pending = [
            (
                f"@{brand} " + _LEADING_MENTIONS.sub("", html.unescape(r["text"]).strip())[:240],
                self.rng.choice(people)["id"],
                bool(r["in_response_to_tweet_id"]),
            )
            for r in rows
        ]
        self._last_by: dict[str, Any] = {}  # a customer's latest tweet
        self._answered: dict[str, Any] = {}  # the brand's latest reply to a customer
        self._windows: dict[str, tuple[int, int]] = {}  # rate windows: (reset, requests used)
        self._last_id = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None

    def _user(self, user_id: str, name: str, followers: int = 0, verified: bool = False) -> Any:
        """A user; a customer gets followers from 2 to 2 million, and 3 in 100 are verified."""
        followers = followers or int(10 ** self.rng.uniform(0.3, 6.3))
        verified = verified or self.rng.random() < 0.03
        metrics = {"followers_count": followers, "following_count": self.rng.randint(0, 900)}
        metrics.update(tweet_count=self.rng.randint(10, 9999), listed_count=0, like_count=7)
        user = {"id": user_id, "name": name.title(), "username": name, "verified": verified}
        return {**user, "public_metrics": metrics}

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def released(self) -> int:
        return len(self.mentions)

    @property
    def remaining(self) -> int:
        return len(self._pending)

    def release(self, n: int) -> int:
        """Publish the next n mentions now; returns how many were left to publish."""
        with self._lock:
            batch, self._pending = self._pending[:n], self._pending[n:]
            for text, author, was_reply in batch:
                # A reply in TWCS answers the brand's latest reply to its author, or else the
                # author's own previous tweet.
                parent = self._answered.get(author) or self._last_by.get(author)
                self._last_by[author] = self._post(author, escape(text), was_reply and parent)
                self.mentions.append(self._last_by[author])
            return len(batch)

    @property
    def billed_total(self) -> int:
        with self._lock:
            return sum(len(ids) for ids in self.billed.values())

    def publish_at(self, author: str, text: str, at: float) -> dict[str, Any]:
        """A mention published at an epoch time in the past (ids stay time-ordered)."""
        with self._lock:
            tweet = self._post(author, escape(text), None, at=at)
            self.mentions.append(tweet)
            self.mentions.sort(key=lambda t: int(t["id"]))
            return tweet

    def duplicate_creates(self) -> dict[tuple[str | None, str], int]:
        """(in_reply_to, text) of every public reply created more than once, and how often."""
        with self._lock:
            made = Counter((c.in_reply_to, c.text) for c in self.creates)
        return {key: n for key, n in made.items() if n > 1}

    def _post(self, author: str, text: str, parent: Any, at: float | None = None) -> dict[str, Any]:
        now = time.time() if at is None else at
        if at is None:
            self._last_id = max(self._last_id + 1, (int(now * 1000) - SNOWFLAKE_EPOCH_MS) << 22)
            tweet_id = str(self._last_id)
        else:
            tweet_id = str(
                ((int(now * 1000) - SNOWFLAKE_EPOCH_MS) << 22) + self.rng.randrange(4096)
            )
        created = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        metrics = {"retweet_count": self.rng.randint(0, 3), "reply_count": 0, "quote_count": 0}
        metrics.update(like_count=self.rng.randint(0, 12), impression_count=900)
        tweet = {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id], "lang": "en"}
        tweet.update(author_id=author, created_at=created.replace("+00:00", "Z"))
        conversation = parent["conversation_id"] if parent else tweet_id
        tweet.update(conversation_id=conversation, public_metrics=metrics)
        if parent:
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": parent["id"]}]
            tweet["in_reply_to_user_id"] = parent["author_id"]
        self.tweets[tweet_id] = tweet
        return tweet

    def start(self) -> str:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        threading.Thread(target=self._server.serve_forever, args=(0.2,), daemon=True).start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, req: _Handler) -> None:
        url = urlsplit(req.path)
        query = parse_qs(url.query)
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        timeline, by_name = _TIMELINE.fullmatch(url.path), _BY_USERNAME.fullmatch(url.path)
        started = time.monotonic()
        if req.command == "POST" and url.path == "/2/tweets":
            endpoint = "create"
        elif req.command == "GET" and url.path == _SEARCH:
            endpoint = "search"
        elif req.command == "GET" and (timeline or by_name):
            endpoint = timeline.group(2) if timeline else "users/by/username"
        else:
            return self._send(req, 404, problem(404, f"no route {req.command} {url.path}"))
        with self._lock:
            self.requests[endpoint] += 1
            kinds = self.fault_kinds
            if endpoint == "create":  # a create's answer is JSON X wrote; no partial errors
                kinds = tuple(k for k in kinds if k not in ("malformed", "partial")) or FAULTS
            fault = self.rng.choice(kinds) if self.rng.random() < self.faults else None
            if endpoint == "mentions" and self.requests[endpoint] in self.fail_at:
                fault = "500"
            after = endpoint == "create" and fault != "429" and self.rng.random() < 0.5
            if fault:
                self.injected[fault + (" after create" if after else "")] += 1
        if not req.headers.get("Authorization") or self.revoked:
            return self._send(req, 401, problem(401, "Unauthorized"))
        if fault and not after and fault not in ("partial", "malformed"):
            return self._fail(req, fault)
        allowed, headers = self._rate(endpoint)
        if not allowed:
            return self._send(req, 429, problem(429), headers)
        if endpoint == "create":
            status, answer = self._create(body, answered=fault is None)
            with self._lock:
                self.in_flight += 1
            try:
                time.sleep(self.create_latency)
                return self._fail(req, fault) if fault else self._send(req, status, answer, headers)
            finally:
                with self._lock:
                    self.in_flight -= 1
        time.sleep(self.read_latency)
        if endpoint == "search":
            status, answer = self._search(query)
        elif timeline:
            mine = timeline.group(1) == self.brand["id"]
            items = (self.mentions if endpoint == "mentions" else self.timeline) if mine else []
            if endpoint == "mentions":
                items = items[-MENTIONS_WINDOW:]
            status, answer = self._page(items, query)
        else:
            status, answer = self._user_by_name(by_name.group(1) if by_name else "", query)
        if fault in ("partial", "malformed") and status == 200 and answer.get("data"):
            self._bill(answer)  # X sent the posts: they are billed however the body ends
            if fault == "partial":
                ref = {"value": "1", "title": "Not Found Error", "resource_type": "tweet"}
                detail = "Could not find tweet with referenced_tweets.id: [1]."
                answer = {**answer, "errors": [{**ref, "detail": detail}]}
                return self._send(req, status, answer, headers, started=(endpoint, started))
            return self._send(req, status, answer, headers, truncate=True)
        if fault and fault not in ("partial", "malformed"):
            return self._fail(req, fault)
        if status == 200:
            self._bill(answer)
        self._send(req, status, answer, headers, started=(endpoint, started))

    def _bill(self, answer: dict[str, Any]) -> None:
        day = datetime.now(UTC).date().isoformat()
        ids = [t["id"] for t in answer.get("data") or [] if isinstance(answer.get("data"), list)]
        with self._lock:
            self.reads += len(ids)
            self.billed.setdefault(day, set()).update(ids)

    def _rate(self, endpoint: str) -> tuple[bool, dict[str, str]]:
        """One request of the endpoint's 15-minute window (as X counts them)."""
        now = int(time.time())
        with self._lock:
            reset, used = self._windows.get(endpoint, (0, 0))
            if now >= reset:
                reset, used = now + self.window_seconds, 0
            allowed = used < self.rate_limit
            self._windows[endpoint] = (reset, used + allowed)
        return allowed, self._limits(self.rate_limit - used - allowed, reset)

    def _limits(self, remaining: int, reset: int) -> dict[str, str]:
        return {
            "x-rate-limit-limit": str(self.rate_limit),
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(reset),
        }

    def _fail(self, req: _Handler, fault: str) -> None:
        if fault == "timeout":
            time.sleep(self.timeout_after)
            fault = "drop"
        if fault == "drop":
            req.close_connection = True
            req.connection.shutdown(socket.SHUT_RDWR)
        elif fault == "429":
            self._send(req, 429, problem(429), self._limits(0, int(time.time()) + 2))
        else:
            self._send(req, int(fault), problem(int(fault)))

    def _send(
        self,
        req: _Handler,
        status: int,
        body: Any,
        headers: Any = None,
        *,
        truncate: bool = False,
        started: tuple[str, float] | None = None,
    ) -> None:
        data = orjson.dumps(body)  # UTF-8, as X answers (and cheap: the stand-in shares the CPUs)
        if truncate:
            data = data[: len(data) // 2]
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data))} | (
            headers or {}
        )
        try:
            req.send_response(status)
            for name, value in headers.items():
                req.send_header(name, value)
            req.end_headers()
            req.wfile.write(data)
        except OSError:
            req.close_connection = True  # the client went away (a killed worker)
        if started is not None:
            with self._lock:
                self.calls.append((started[0], started[1], time.monotonic()))

    def _user_by_name(self, name: str, query: dict[str, list[str]]) -> Answer:
        if name.lower() == self.brand["username"].lower():
            return 200, {"data": _only(self.brand, USER_ALWAYS | _listed(query, "user.fields"))}
        detail = f"Could not find user with username: [{name}]."
        missing = {"title": "Not Found Error", "detail": detail, "value": name}
        missing.update(resource_type="user", parameter="username", resource_id=name)
        return 200, {"errors": [{**missing, "type": f"{PROBLEMS}/resource-not-found"}]}

    def _page(self, items: list[dict[str, Any]], query: dict[str, list[str]]) -> Answer:
        def one(name: str, default: int) -> int:
            value = query.get(name, [str(default)])[0]
            return int(value, 16 if name == "pagination_token" else 10)

        try:
            size, since, until = one("max_results", 10), one("since_id", 0), one("until_id", 2**64)
            until = min(until, one("pagination_token", 2**64))
        except ValueError:
            return 400, problem(400, INVALID)
        if not 5 <= size <= 100:
            return 400, problem(
                400, f"The `max_results` query parameter value [{size}] is not between 5 and 100"
            )
        with self._lock:
            newer = [t for t in reversed(items) if since < int(t["id"]) < until]
        chosen = newer[:size]
        if not chosen:
            return 200, {"meta": {"result_count": 0}}
        fields = TWEET_ALWAYS | _listed(query, "tweet.fields")
        expansions = _listed(query, "expansions")
        meta = {"result_count": len(chosen), "newest_id": chosen[0]["id"]}
        meta["oldest_id"] = chosen[-1]["id"]
        if len(newer) > size:
            meta["next_token"] = f"{int(chosen[-1]['id']):x}"
        refs = [self.tweets[r["id"]] for t in chosen for r in t.get("referenced_tweets", [])]
        refs = refs if "referenced_tweets.id" in expansions else []
        authors = [t["author_id"] for t in chosen] if "author_id" in expansions else []
        if "referenced_tweets.id.author_id" in expansions:
            authors += [t["author_id"] for t in refs]
        user_fields = USER_ALWAYS | _listed(query, "user.fields")
        includes: dict[str, Any] = {}
        if authors:
            includes["users"] = [_only(self.users[a], user_fields) for a in dict.fromkeys(authors)]
        if refs:
            includes["tweets"] = [_only(t, fields) for t in refs]
        answer = {"data": [_only(t, fields) for t in chosen], "meta": meta}
        return 200, {**answer, "includes": includes} if includes else answer

    def _search(self, query: dict[str, list[str]]) -> Answer:
        """Recent search for `@brand OR to:brand`: the brand's mentions of the last 7 days."""
        wanted = f"@{self.brand['username']} OR to:{self.brand['username']}".lower()
        if query.get("query", [""])[0].lower() != wanted:
            return 400, problem(400, "Only @brand OR to:brand is searchable here.")
        reach = time.time() - SEARCH_DAYS * 86400
        oldest_id = (int(reach * 1000) - SNOWFLAKE_EPOCH_MS) << 22
        start = query.get("start_time", [""])[0]
        since = query.get("since_id", ["0"])[0]
        try:
            start_at = (
                datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp() if start else reach
            )
            too_old = start_at < reach or (since.isdigit() and 0 < int(since) < oldest_id)
        except ValueError:
            return 400, problem(400, INVALID)
        if too_old:
            detail = "Invalid 'since_id' or 'start_time': must be within the last 7 days."
            return 400, problem(400, detail)
        start_id = (int(start_at * 1000) - SNOWFLAKE_EPOCH_MS) << 22
        size = query.get("max_results", ["10"])[0]
        if not size.isdigit() or not 10 <= int(size) <= 100:
            return 400, problem(
                400, f"The `max_results` query parameter value [{size}] is not between 10 and 100"
            )
        with self._lock:
            recent = [t for t in self.mentions if int(t["id"]) >= start_id]
        q = {k: v for k, v in query.items() if k != "next_token"}
        if "next_token" in query:
            q["pagination_token"] = query["next_token"]
        q["max_results"] = [str(max(5, int(size)))]
        return self._page(recent, q)

    def _create(self, raw: bytes, *, answered: bool) -> Answer:
        try:
            body = json.loads(raw)
            text, in_reply_to = body["text"], (body.get("reply") or {}).get("in_reply_to_tweet_id")
        except (ValueError, KeyError, TypeError, AttributeError):
            return 400, problem(400, INVALID)
        if not isinstance(text, str) or not text.strip() or len(text) > 280:
            return 403, problem(403, "The text of your post is empty or too long.")
        with self._lock:
            parent = self.tweets.get(str(in_reply_to)) if in_reply_to else None
            if in_reply_to and parent is None:
                detail = "You attempted to reply to a Tweet that is deleted or not visible to you."
                return 403, problem(403, detail)
            shown = text
            customer = parent["author_id"] if parent else self.brand["id"]
            if customer != self.brand["id"]:  # X puts the answered author's handle first
                shown = f"@{self.users[customer]['username']} {text}"
            tweet = self._post(self.brand["id"], escape(shown), parent)
            if customer != self.brand["id"]:
                self._answered[customer] = tweet
            self.timeline.append(tweet)
            self.creates.append(Create(tweet["id"], text, in_reply_to, answered))
        data = {"id": tweet["id"], "text": tweet["text"], "edit_history_tweet_ids": [tweet["id"]]}
        return 201, {"data": data}
