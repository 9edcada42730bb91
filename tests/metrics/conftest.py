"""Real servers on 127.0.0.1 for digest delivery: an SMTP server (aiosmtpd) and a webhook."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class MailHandler:
    """Accepts mail, or answers RCPT or DATA with the reply it is given (e.g. '550 ...')."""

    rcpt_reply: str | None = None
    data_reply: str = "250 OK"
    messages: list[bytes] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.data_reply.startswith("250"):
            assert isinstance(envelope.content, bytes)
            self.messages.append(envelope.content)
        return self.data_reply


@dataclass
class MailServer:
    handler: MailHandler
    port: int

    def url(self, scheme: str = "smtp", userinfo: str = "", query: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{at}127.0.0.1:{self.port}{query}"


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., MailServer]]:
    """Starts real SMTP servers: smtp_server(handler, password=..., tls_context=...)."""
    started: list[Controller] = []

    def start(
        handler: MailHandler | None = None,
        *,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> MailServer:
        handler = handler or MailHandler()
        kwargs: dict[str, Any] = {}
        if password is not None:

            def authenticate(
                server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
            ) -> AuthResult:
                assert isinstance(data, LoginPassword)
                login, given = data.login.decode(), data.password.decode()
                handler.logins.append((login, given))
                return AuthResult(success=given == password, handled=False)

            kwargs.update(authenticator=authenticate, auth_require_tls=False)
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return MailServer(handler=handler, port=port)

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class Webhook:
    """What the webhook received, and what it answers next: (status, headers, body)."""

    port: int
    received: list[tuple[str, str, Any]] = field(default_factory=list)
    reply: tuple[int, dict[str, str], bytes] = (200, {}, b"ok")

    def url(self, path: str = "/services/T000/B000/s3cr3t") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A real HTTP server in a thread, standing in for Slack's incoming webhook."""
    hook = Webhook(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hook.received.append(
                (self.path, self.headers.get("Content-Type", ""), json.loads(body))
            )
            status, headers, text = hook.reply
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a hung server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on."""
    return free_port()
