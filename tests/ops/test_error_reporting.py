"""Optional Sentry reporting: off by default; with SENTRY_DSN, errors reach the server named,
without local variables (post texts stay private)."""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from socialcare.config import load_settings
from socialcare.ops import errors


@pytest.fixture
def ingest() -> Iterator[tuple[str, list[bytes]]]:
    """A real HTTP server standing in for Sentry's ingest endpoint; the DSN and what it got."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            received.append(self.path.encode() + b"\n" + body)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://publickey@127.0.0.1:{server.server_address[1]}/42", received
    finally:
        import sentry_sdk

        sentry_sdk.get_client().close()
        sentry_sdk.init()  # a client that sends nothing, for the tests that follow
        errors._started.clear()
        server.shutdown()


def test_without_a_dsn_nothing_is_reported():
    assert errors.init_error_reporting(load_settings(SENTRY_DSN=""), component="web") is False


def test_an_error_reaches_sentry_without_local_variables(ingest):
    dsn, received = ingest
    settings = load_settings(SENTRY_DSN=dsn, SENTRY_ENVIRONMENT="staging")
    assert errors.init_error_reporting(settings, component="worker") is True
    assert errors.init_error_reporting(settings, component="worker") is True  # once per process

    def score(post_text: str) -> None:
        raise RuntimeError("model file unreadable")

    # Built at run time: a literal would be in the source lines Sentry shows around the frame.
    card = " ".join([str(4000 + 111)] + [str(1000 + 111)] * 3)
    try:
        score(f"my card {card} was charged twice")
    except RuntimeError:
        logging.getLogger("socialcare.flows").exception("scoring failed for post 17")
    import sentry_sdk

    sentry_sdk.flush(timeout=5)
    payload = b"\n".join(received)
    assert b"/api/42/envelope/" in payload
    assert b"scoring failed for post 17" in payload and b"model file unreadable" in payload
    assert b'"environment":"staging"' in payload and b'"component":"worker"' in payload
    assert b"4111" not in payload  # no local variables, no post text


def test_a_dsn_with_the_package_missing_names_the_setting(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sentry(name: str, *args: Any, **kw: Any) -> Any:
        if name.startswith("sentry_sdk"):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_sentry)
    with pytest.raises(errors.ConfigError, match="SENTRY_DSN"):
        errors.init_error_reporting(
            load_settings(SENTRY_DSN="http://k@127.0.0.1:9/1"), component="web"
        )
