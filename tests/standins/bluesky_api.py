"""A scripted stand-in of a Bluesky PDS on 127.0.0.1 over real HTTP, for the failures a real
network will not produce on demand (429 with rate-limit headers, 5xx, timeouts, bodies that are
not JSON). It answers com.atproto.server.createSession with a session (access and refresh JWTs
as the PDS shapes them, unsigned), and every other XRPC method from `script`: a list per method
of answers (status, headers, body bytes, delay seconds), the last one repeated; a method with no
script answers an empty page. Every request is recorded in `calls`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DID = "did:plc:standinbrandstandinbrand"
EMPTY = {
    "app.bsky.notification.listNotifications": {"notifications": []},
    "app.bsky.feed.getAuthorFeed": {"feed": []},
    "com.atproto.repo.listRecords": {"records": []},
}


def _jwt(scope: str, lifetime: int) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"scope": scope, "sub": DID, "iat": now, "exp": now + lifetime}
    return f"{part({'typ': 'at+jwt', 'alg': 'HS256'})}.{part(claims)}.c2ln"


@dataclass
class Answer:
    status: int = 200
    body: bytes | dict[str, Any] = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def error(status: int, name: str, message: str = "", **headers: str) -> Answer:
    return Answer(status, {"error": name, "message": message or name}, headers)


class BlueskyStandIn:
    def __init__(self) -> None:
        self.script: dict[str, list[Answer]] = defaultdict(list)
        self.calls: list[tuple[str, str]] = []
        self.logins = 0
        self.login_answer: Answer | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> BlueskyStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, method: str) -> Answer:
        if method == "com.atproto.server.createSession":
            self.logins += 1
            if self.login_answer is not None:
                return self.login_answer
            return Answer(
                body={
                    "accessJwt": _jwt("com.atproto.appPass", 7200),
                    "refreshJwt": _jwt("com.atproto.refresh", 86400),
                    "handle": "brand.test",
                    "did": DID,
                }
            )
        queue = self.script.get(method)
        if not queue:
            return Answer(body=EMPTY.get(method, {}))
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                method = self.path.split("?", 1)[0].removeprefix("/xrpc/")
                standin.calls.append((self.command, method))
                answer = standin._answer(method)
                time.sleep(answer.delay)
                body = answer.body
                raw = json.dumps(body).encode() if isinstance(body, dict) else body
                self.send_response(answer.status)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(raw)))
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                # A client that timed out has left: nothing to answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(raw)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
